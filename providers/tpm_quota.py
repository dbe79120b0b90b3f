"""TPMQuotaProvider: a Qianfan TPM quota, as Pulumi's provider host drives it.

Pulumi stores this class *by reference* (module `providers.tpm_quota`, class `TPMQuotaProvider`)
in every resource's `__provider`; destroy and refresh of existing stacks import it from here, so
its module path and name are part of the state format and must not change.

Nothing is kept on the instance before it is pickled (`__getstate__` is empty): settings are read
in `configure()`, inside the host, so keys never reach state. Plan-time work is here — check and
diff, from the field table, no API call; every apply is handed to the host's one `Lifecycle`
(lifecycle.py), built at the first apply. That is the one lazy import: every preview runs check
and diff in a freshly started host, which never pays for pydantic, the client or the SDK.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    ResourceProvider,
    UpdateResult,
)

from .errors import ProviderError
from .fields import BY_WIRE, Policy, changed, check_props, comparable, replaces
from .messages import listed
from .settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from .lifecycle import Lifecycle


def _stack_config(req: ConfigureRequest) -> Mapping[str, Any]:
    """The stack config the engine sent; pulumi's `Config` offers `get` only, and an empty config
    must be told apart from an absent key (see `settings.load_settings`)."""
    raw = vars(req.config).get("_props")
    return raw if isinstance(raw, Mapping) else {}


def _model(props: Mapping[str, Any], missing: str) -> str:
    """The quota's model from its state; Describe and Release need it."""
    model = props.get("model")
    if not isinstance(model, str) or not model:
        raise ProviderError(missing)
    return model


class TPMQuotaProvider(ResourceProvider):
    """Buys, resizes, reschedules and releases Qianfan TPM quota."""

    # `__provider` holds only a reference to this class (see __getstate__), no secret.
    serialize_as_secret_always = False

    def __init__(self) -> None:
        self._init()

    def _init(self) -> None:
        self._settings: Settings | None = None
        self._config_error: SettingsError | None = None
        self._lifecycle: Lifecycle | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._init()  # unpickling skips __init__: the host's copy starts unconfigured too

    def configure(self, req: ConfigureRequest) -> None:
        # Bad settings are kept, not raised: the host would show a traceback, where `check` can
        # report each problem in one line naming its key (and every other method refuses to run).
        try:
            self._settings = load_settings(_stack_config(req))
        except SettingsError as err:
            self._config_error = err

    def _configured(self) -> Settings:
        if self._config_error is not None:
            raise ProviderError(str(self._config_error))
        if self._settings is None:
            raise ProviderError("TPMQuotaProvider was used before Pulumi's provider host called configure()")
        return self._settings

    def _apply(self) -> Lifecycle:
        """The host's lifecycle, built at the first apply (the one lazy import of this module)."""
        settings = self._configured()
        with self._lock:
            if self._lifecycle is None:
                from .lifecycle import Lifecycle

                self._lifecycle = Lifecycle.build(settings)
            return self._lifecycle

    # -- plan time: no API calls -----------------------------------------------------------------
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        if self._config_error is not None:  # reported on the resource, not a property: it is the stack's config
            return CheckResult(news, [CheckFailure("", problem) for problem in listed(self._config_error.problems)])
        settings = self._configured()
        release = BY_WIRE["releaseTime"]
        # A replacement buys a new quota, whose release must be in the future like any new one;
        # a value unknown in preview is no reason to refuse a release that is already stored.
        replacement = bool(replaces(olds, news, unknown_is_change=False))
        previous = comparable(olds, release) if olds and not replacement else None
        policy = Policy(
            extra_models=settings.extra_models,
            max_purchase_count=settings.max_purchase_count,
            previous_release_time=previous if isinstance(previous, str) else None,
        )
        inputs, failures = check_props(news, policy)
        return CheckResult(inputs, [CheckFailure(prop, reason) for prop, reason in failures])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=bool(changed(olds, news)), replaces=replaces(olds, news))

    # -- apply -----------------------------------------------------------------------------------
    def create(self, props: dict[str, Any]) -> CreateResult:
        id_, outputs = self._apply().create(props)
        return CreateResult(id_, outputs)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        model = _model(
            props,
            f"cannot read TPM quota {id_} without its model: `pulumi import` does not work for dynamic "
            "resources; declare the quota with adoptInstanceId instead",
        )
        found, outputs, inputs = self._apply().read(id_, model, props)
        return ReadResult(found, outputs, inputs if found else None)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(self._apply().update(id_, olds, news))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        model = _model(props, f"cannot release TPM quota {id_}: the state holds no model for it")
        self._apply().delete(id_, model, props)


__all__ = ["TPMQuotaProvider"]
