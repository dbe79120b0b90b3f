"""TPMQuotaProvider: the lifecycle of one Qianfan TPM quota, as Pulumi's provider host drives it.

Pulumi stores this class *by reference* (module `providers.tpm_quota`, class `TPMQuotaProvider`)
in every resource's `__provider`; destroy and refresh of existing stacks import it from here, so
its module path and name are part of the state format and must not change.

Nothing is kept on the instance before it is pickled (`__getstate__` is empty): settings are read
in `configure()`, inside the host, so keys never reach state. The methods follow the engine's
order: check, diff, create, read, update, delete. Every preview runs check and diff in a freshly
started host, so the modules only apply needs (the client, the shared listings, the purchase
bookkeeping, the finders, pydantic) are imported where apply first uses them, not above.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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

from .errors import Kind, ProviderError, QianfanError
from .fields import (
    BY_WIRE,
    PAYMENT_TIMING,
    Policy,
    changed,
    check_props,
    comparable,
    computed_outputs,
    known_inputs,
    replaces,
)
from .messages import listed, warn
from .models import allowed_models
from .release_time import parse_duration, release_after
from .settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from .client import QianfanClient
    from .deadline import Deadline
    from .inputs import Desired
    from .instances import Instance
    from .ledger import Owner
    from .listings import Listings
    from .purchase import Purchases


class _Runtime:
    """What one configured provider uses; lives only in the host process. The client, the shared
    listings, the ledger and the purchase bookkeeping are built at the first apply."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._parts: tuple[QianfanClient, Listings, Purchases] | None = None
        self._journal_said = False

    def _built(self) -> tuple[QianfanClient, Listings, Purchases]:
        with self._lock:
            if self._parts is None:
                import os
                import socket
                import uuid

                from .client import QianfanClient
                from .ledger import ledger_for
                from .listings import Listings
                from .purchase import Purchases, QianfanPurchaseApi

                client = QianfanClient(self.settings)
                listings = Listings(client, self.settings.listing_max_age_seconds)
                ledger = ledger_for(self.settings, host=f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}")
                purchases = Purchases(QianfanPurchaseApi(client, listings), ledger, self.settings.settle_seconds)
                self._parts = (client, listings, purchases)
            return self._parts

    @property
    def client(self) -> QianfanClient:
        return self._built()[0]

    @property
    def listings(self) -> Listings:
        return self._built()[1]

    @property
    def purchases(self) -> Purchases:
        return self._built()[2]

    def deadline(self) -> Deadline:
        from .deadline import Deadline

        return Deadline(self.settings.timeout_seconds)

    def journal(self, action: str, model: str, instance_id: str, owner: Owner, request_id: str | None = None) -> None:
        """Write a change to the ledger's journal, best effort: a ledger that cannot be reached must
        not fail a change Qianfan made (nor a destroy, which never needs the ledger); it is said once."""
        from .ledger import LedgerError

        try:
            self.purchases.ledger.journal(action, model, instance_id, owner, request_id=request_id)
        except LedgerError as err:
            with self._lock:
                said, self._journal_said = self._journal_said, True
            if not said:
                warn(f"{err}; the purchase journal misses what this run changed (the changes themselves were made)")

    def other_models(self, model: str) -> list[str]:
        return [m for m in allowed_models(self.settings.extra_models) if m != model]


def _stack_config(req: ConfigureRequest) -> Mapping[str, Any]:
    """The stack config the engine sent; pulumi's `Config` offers `get` only, and an empty config
    must be told apart from an absent key (see `settings.load_settings`)."""
    raw = vars(req.config).get("_props")
    return raw if isinstance(raw, Mapping) else {}


def _desired(props: Mapping[str, Any]) -> Desired:
    """The typed inputs, imported on first apply: a preview never loads pydantic."""
    from .inputs import desired

    return desired(props)


#: The status of a quota Qianfan answered as bought but has not listed yet.
PENDING = "Pending"


class _NotShown(ProviderError):
    """A change Qianfan accepted does not show within the settle time (nothing was recorded)."""


@dataclass(frozen=True)
class _Change:
    """One in-place change of an update or adoption, and which way it moves the bill."""

    action: str
    apply: Callable[[], object]
    done: str  # "ResizeTPMResource to 4 units", for a half-way failure's message
    bill: int  # -1 lowers the bill, +1 raises it, 0 unknown


class TPMQuotaProvider(ResourceProvider):
    """Buys, resizes, reschedules and releases Qianfan TPM quota."""

    # `__provider` holds only a reference to this class (see __getstate__), no secret.
    serialize_as_secret_always = False

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        pass

    def configure(self, req: ConfigureRequest) -> None:
        # Bad settings are kept, not raised: the host would show a traceback, where `check` can
        # report each problem in one line naming its key (and every other method refuses to run).
        self._config_error: SettingsError | None = None
        try:
            self._runtime = _Runtime(load_settings(_stack_config(req)))
        except SettingsError as err:
            self._config_error = err

    def _rt(self) -> _Runtime:
        error: SettingsError | None = self.__dict__.get("_config_error")
        if error is not None:
            raise ProviderError(str(error))
        runtime: _Runtime | None = self.__dict__.get("_runtime")
        if runtime is None:
            raise ProviderError("TPMQuotaProvider was used before Pulumi's provider host called configure()")
        return runtime

    # -- plan time: no API calls -----------------------------------------------------------------
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        error: SettingsError | None = self.__dict__.get("_config_error")
        if error is not None:  # reported on the resource, not on a property: it is the stack's config
            return CheckResult(news, [CheckFailure("", problem) for problem in listed(error.problems)])
        settings = self._rt().settings
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
        rt = self._rt()
        deadline = rt.deadline()
        inputs = _desired(props)
        if inputs.adopt_instance_id:
            instance, release = self._adopt(rt, inputs, inputs.adopt_instance_id, deadline)
            return CreateResult(instance.instance_id, self._outputs(self._asked(inputs, release), instance))
        from .ledger import Owner
        from .purchase import Spec

        after = parse_duration(inputs.release_after).total_seconds() if inputs.release_after else None
        bought = rt.purchases.buy(
            Spec(inputs.model, inputs.purchase_count, inputs.release_time, after), Owner.of(inputs.owner_urn), deadline
        )
        instance_id, release = bought.instance_id, bought.release_time
        try:
            instance = self._wait_visible(rt, inputs, instance_id, release, deadline)
            return CreateResult(instance_id, self._outputs(self._asked(inputs, release), instance))
        except Exception as exc:  # noqa: BLE001 - a paid quota must never fail without its id
            spec = Spec(inputs.model, inputs.purchase_count, release)
            raise ProviderError(
                f"TPM quota {instance_id} ({spec.describe()}) was bought, but recording it failed "
                f"({type(exc).__name__}: {exc}). It is billed by the hour: set adoptInstanceId: {instance_id} on "
                "this quota and run `pulumi up` again"
            ) from None

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        model = props.get("model")
        if not isinstance(model, str) or not model:
            raise ProviderError(
                f"cannot read TPM quota {id_} without its model: `pulumi import` does not work for dynamic "
                "resources; declare the quota with adoptInstanceId instead"
            )
        from .listings import find_instance

        rt = self._rt()
        deadline = rt.deadline()
        instance = find_instance(rt.listings, model, id_, deadline)
        if instance is None and props.get("status") == PENDING:
            # Qianfan answered that it bought this instance and has not listed it yet: it is billed,
            # and dropping it would lose it (I3). Only Qianfan showing it Stopped ends it.
            warn(
                f"TPM quota {id_} ({model}) was answered as bought but Qianfan does not list it yet; it stays in "
                "state as Pending (it may be billed). Run `pulumi refresh` again later"
            )
            return ReadResult(id_, dict(props), known_inputs(props))
        if instance is None:
            self._refuse_other_model(rt, id_, model, deadline, "refresh cannot correct the model in state")
            return ReadResult(None, {})
        if instance.gone:
            return ReadResult(None, {})
        after = props.get("releaseAfter")
        if after and instance.release_time_known and not instance.release_time:
            warn(
                f"TPM quota {id_} ({model}) has releaseAfter {after}, but Qianfan shows no scheduled release "
                "(cancelled outside Pulumi): it is billed until released. `pulumi up` leaves the release as it is "
                "while releaseAfter is unchanged; change releaseAfter to schedule one again"
            )
        # A release that releaseAfter computed is an output: kept from state if Qianfan does not say.
        outputs = self._outputs({**known_inputs(props), **computed_outputs(props)}, instance)
        return ReadResult(id_, outputs, known_inputs(outputs))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        rt = self._rt()
        deadline = rt.deadline()
        inputs = _desired(news)
        self._owned(rt, id_, inputs.model, deadline)
        units, release, after = BY_WIRE["purchaseCount"], BY_WIRE["releaseTime"], BY_WIRE["releaseAfter"]
        release_now = comparable(olds, release)
        if inputs.release_after is not None and comparable(olds, after) == inputs.release_after:
            wanted = release_now  # the same duration: its instant stands, even one moved outside Pulumi
        else:
            wanted = self._release_from_now(inputs, deadline)
        instance = self._converge(
            rt,
            id_,
            inputs,
            units_now=comparable(olds, units),
            release_now=release_now,
            release_known=True,
            release=wanted,
            deadline=deadline,
        )
        return UpdateResult(self._outputs(self._asked(inputs, wanted), instance))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        model = props.get("model")
        if not isinstance(model, str) or not model:
            raise ProviderError(f"cannot release TPM quota {id_}: the state holds no model for it")
        from .client import RELEASE
        from .deadline import wait_for
        from .ledger import Owner
        from .listings import find_instance, look

        rt = self._rt()
        deadline = rt.deadline()
        owner = Owner.of(props.get("ownerUrn"))
        try:
            with rt.listings.writing(model, deadline):
                request_id = rt.client.release(model, id_, deadline)
        except QianfanError as err:
            if err.kind not in (Kind.NOT_FOUND, Kind.REJECTED):
                raise
            # Already released, expired or unknown is what destroy wants; a refusal of a live
            # instance — or of one that belongs to another model — is not.
            instance = find_instance(rt.listings, model, id_, deadline)
            if instance is not None and not instance.gone:
                raise ProviderError(
                    f"{err}. TPM quota {id_} is still {instance.status}: nothing was released"
                ) from None
            if instance is None:
                self._refuse_other_model(rt, id_, model, deadline, f"{err}. Nothing was released")
            rt.listings.released(model, id_)
            rt.journal(RELEASE, model, id_, owner, err.request_id)
            return
        # Read after write (I2): the release counts once Qianfan shows the instance stopped or gone.
        window = rt.settings.settle_seconds
        shown = wait_for(
            lambda: look(rt.listings, model, id_, deadline, fresh=True),
            lambda found: found is None or found.gone,
            deadline.sub(window),
        )
        if shown is None:
            shown = find_instance(rt.listings, model, id_, deadline)
        if shown is not None and not shown.gone:
            raise ProviderError(
                f"ReleaseTPMResource answered true for TPM quota {id_}, but Qianfan still lists it {shown.status} "
                f"after {window:g}s: it is still billed and stays in state — run `pulumi destroy` again (or release "
                "it in the Qianfan console)"
            )
        rt.listings.released(model, id_)
        rt.journal(RELEASE, model, id_, owner, request_id)

    # -- create paths ----------------------------------------------------------------------------
    def _wait_visible(
        self, rt: _Runtime, inputs: Desired, instance_id: str, release: str | None, deadline: Deadline
    ) -> Instance:
        """Wait (bounded) until Describe shows the bought instance, which may be `Creating` first.

        If it never shows, the id is still returned: failing here would drop a paid quota from
        state. The next refresh settles what exists.
        """
        from .deadline import wait_for
        from .instances import Instance
        from .listings import look

        try:
            shown = wait_for(
                lambda: look(rt.listings, inputs.model, instance_id, deadline, fresh=True),
                lambda found: found is not None,
                deadline.sub(rt.settings.settle_seconds),
            )
        except QianfanError:
            shown = None  # Describe failing now must not turn a paid purchase into a failed create
        if shown is not None:
            return shown
        return Instance(
            instance_id=instance_id,
            status=PENDING,
            model=inputs.model,
            units=inputs.purchase_count,
            release_time=release,
            release_time_known=True,
        )

    def _adopt(
        self, rt: _Runtime, inputs: Desired, instance_id: str, deadline: Deadline
    ) -> tuple[Instance, str | None]:
        """Bring an existing instance under management: buy nothing, make it match the inputs (a
        `releaseAfter` counts from the adoption). Returns the instance and the release asked for."""
        from .ledger import Owner
        from .listings import find_elsewhere, find_instance

        found = find_instance(rt.listings, inputs.model, instance_id, deadline)
        if found is None:
            elsewhere = find_elsewhere(rt.listings, instance_id, rt.other_models(inputs.model), deadline)
            where = f"; it is an instance of {elsewhere.found[0]}: set model to that" if elsewhere.found else ""
            raise ProviderError(
                f"adoptInstanceId {instance_id}: Qianfan lists no instance with that id for model {inputs.model}"
                f"{where or '; check the id and the model'}{elsewhere.note()}"
            )
        if found.gone:
            raise ProviderError(
                f"adoptInstanceId {instance_id}: the instance is {found.status} (expired or released) and cannot "
                "be adopted; remove adoptInstanceId to buy a new quota"
            )
        owner = Owner.of(inputs.owner_urn)
        rt.purchases.adopt(instance_id, inputs.model, owner)
        rt.journal("adopted", inputs.model, instance_id, owner)
        release = self._release_from_now(inputs, deadline)
        instance = self._converge(
            rt,
            instance_id,
            inputs,
            units_now=found.units,
            release_now=found.release_time,
            release_known=found.release_time_known,
            release=release,
            deadline=deadline,
        )
        return instance, release

    # -- shared by update and adoption -----------------------------------------------------------
    def _converge(
        self,
        rt: _Runtime,
        instance_id: str,
        inputs: Desired,
        *,
        units_now: Any,
        release_now: Any,
        release_known: bool,
        release: str | None,
        deadline: Deadline,
    ) -> Instance:
        """Resize and/or (re)schedule the release to `release` (what the inputs stand for now), the
        change that lowers the bill first, then confirm on the server that what was changed stuck
        (and only that)."""
        from .ledger import Owner
        from .listings import find_instance

        changes = self._plan(rt, instance_id, inputs, units_now, release_now, release_known, release, deadline)
        applied: list[_Change] = []
        owner = Owner.of(inputs.owner_urn)
        for change in changes:
            try:
                with rt.listings.writing(inputs.model, deadline):
                    request_id = change.apply()
            except QianfanError as err:
                if applied:
                    raise ProviderError(
                        f"{' and '.join(c.done for c in applied)} was applied; {err}. Run `pulumi refresh` before "
                        "anything else: the state still shows the old values, and Qianfan bills what it now has"
                    ) from None
                if err.kind in (Kind.NOT_FOUND, Kind.REJECTED):
                    found = find_instance(rt.listings, inputs.model, instance_id, deadline)
                    if found is None or found.gone:
                        raise self._vanished(instance_id) from None
                raise
            applied.append(change)
            rt.journal(
                change.action, inputs.model, instance_id, owner, request_id if isinstance(request_id, str) else None
            )
        try:
            return self._confirm(rt, instance_id, inputs, release, {c.action for c in applied}, deadline)
        except (QianfanError, ProviderError) as err:
            if not applied or isinstance(err, _NotShown):
                raise
            # I8: whatever fails after a change was made, the change is named.
            raise ProviderError(
                f"{' and '.join(c.done for c in applied)} was applied, but reading it back failed: {err}. Run "
                "`pulumi refresh` before anything else: the state still shows the old values, and Qianfan bills "
                "what it now has"
            ) from None

    @staticmethod
    def _plan(
        rt: _Runtime,
        instance_id: str,
        inputs: Desired,
        units_now: Any,
        release_now: Any,
        release_known: bool,
        release: str | None,
        deadline: Deadline,
    ) -> list[_Change]:
        from .client import AUTO_RELEASE, RESIZE

        changes: list[_Change] = []
        if units_now != inputs.purchase_count:
            bill = (inputs.purchase_count > units_now) - (inputs.purchase_count < units_now) if units_now else 0
            changes.append(
                _Change(
                    RESIZE,
                    lambda: rt.client.resize(instance_id, inputs.purchase_count, deadline),
                    f"{RESIZE} to {inputs.purchase_count} unit(s)",
                    bill,
                )
            )
        if not release_known or release_now != release:
            wanted = release
            if not release_known:
                bill = 0
            elif wanted is None or release_now is None:
                bill = 1 if wanted is None else -1  # cancelling a release keeps the quota billing longer
            else:
                bill = 1 if wanted > release_now else -1  # one spelling (RFC3339 +08:00) orders by time
            changes.append(
                _Change(
                    AUTO_RELEASE,
                    lambda: rt.client.auto_release(instance_id, wanted, deadline),
                    f"{AUTO_RELEASE} to " + (f"release at {wanted}" if wanted else "cancel the scheduled release"),
                    bill,
                )
            )
        return sorted(changes, key=lambda c: c.bill)

    def _confirm(
        self, rt: _Runtime, instance_id: str, inputs: Desired, release: str | None, sent: set[str], deadline: Deadline
    ) -> Instance:
        """Read after write: Describe must show each change that was sent within settleSeconds."""
        from .deadline import wait_for
        from .listings import find_instance, look

        def settled(found: Instance | None) -> bool:
            return found is not None and (found.gone or not self._mismatches(found, inputs, release, sent))

        window = rt.settings.settle_seconds
        found = wait_for(
            lambda: look(rt.listings, inputs.model, instance_id, deadline, fresh=True), settled, deadline.sub(window)
        )
        if found is None:  # not one answer listed it: look once more, model-wide, before concluding
            found = find_instance(rt.listings, inputs.model, instance_id, deadline)
        if found is None or found.gone:
            raise self._vanished(instance_id)
        problems = self._mismatches(found, inputs, release, sent)
        if problems:
            raise _NotShown(
                f"Qianfan accepted the change to {instance_id} but does not show it after {window:g}s: "
                f"{'; '.join(problems)}. Nothing was recorded as done; run `pulumi refresh` to record what "
                "Qianfan has, then `pulumi up` to try again (qianfan:settleSeconds sets how long to wait)"
            )
        return found

    @staticmethod
    def _mismatches(found: Instance, inputs: Desired, release: str | None, sent: set[str]) -> list[str]:
        from .client import AUTO_RELEASE, RESIZE

        problems = []
        if RESIZE in sent and found.units is not None and found.units != inputs.purchase_count:
            problems.append(
                f"{RESIZE} asked for {inputs.purchase_count} units, DescribeTPMResource reports {found.units}"
            )
        if AUTO_RELEASE in sent and found.release_time_known and found.release_time != release:
            problems.append(
                f"{AUTO_RELEASE} asked for release at {release or 'no scheduled time'}, "
                f"DescribeTPMResource reports {found.release_time or 'none'}"
            )
        return problems

    # -- ownership -------------------------------------------------------------------------------
    def _owned(self, rt: _Runtime, instance_id: str, model: str, deadline: Deadline) -> Instance:
        """The live instance, confirmed under the quota's model before anything changes it."""
        from .listings import find_instance

        found = find_instance(rt.listings, model, instance_id, deadline)
        if found is None:
            self._refuse_other_model(rt, instance_id, model, deadline, "nothing was changed")
            raise self._vanished(instance_id)
        if found.gone:
            raise self._vanished(instance_id)
        return found

    @staticmethod
    def _refuse_other_model(rt: _Runtime, instance_id: str, model: str, deadline: Deadline, outcome: str) -> None:
        """Fail when an instance missing under `model` is alive under another one (an edited state).

        A model Qianfan refuses to list is skipped and named in a warning (I7): one retired id must
        not block every absence check.
        """
        from .listings import find_elsewhere

        elsewhere = find_elsewhere(rt.listings, instance_id, rt.other_models(model), deadline)
        if elsewhere.found is not None:
            raise ProviderError(
                f"TPM quota {instance_id} belongs to model {elsewhere.found[0]}, not {model} as the state says; "
                f"{outcome}. Correct the model in the state (`pulumi stack export`, edit, `pulumi stack import`) "
                "or manage the instance from a quota declared with that model"
            )
        if elsewhere.skipped:
            warn(
                f"TPM quota {instance_id} is not listed under {model}, nor under the other models searched"
                + elsewhere.note()
            )

    @staticmethod
    def _vanished(instance_id: str) -> ProviderError:
        return ProviderError(
            f"TPM quota {instance_id} no longer exists (expired or released outside Pulumi); run `pulumi refresh` "
            "to drop it from state, then `pulumi up` buys a new one"
        )

    @staticmethod
    def _release_from_now(inputs: Desired, deadline: Deadline) -> str | None:
        """The release the inputs ask for when set at this moment: `releaseTime` as given, or now
        (the deadline's clock, as the purchase reads it) plus `releaseAfter`."""
        if inputs.release_after is None:
            return inputs.release_time
        return release_after(deadline.clock.wall(), parse_duration(inputs.release_after).total_seconds())

    @staticmethod
    def _asked(inputs: Desired, release: str | None) -> dict[str, Any]:
        """The inputs, and the release they stand for: a `releaseAfter`'s instant is the
        `releaseTime` output."""
        props = inputs.to_props()
        if release is not None:
            props["releaseTime"] = release
        return props

    @staticmethod
    def _outputs(inputs: dict[str, Any], instance: Instance) -> dict[str, Any]:
        """Every input plus the computed outputs; what the server reports wins over what was asked."""
        from .instances import outputs_of

        outputs = dict(inputs)
        if instance.model:
            outputs["model"] = instance.model
        if instance.units is not None:
            outputs["purchaseCount"] = instance.units
        if instance.release_time_known:
            if instance.release_time:
                outputs["releaseTime"] = instance.release_time
            else:
                outputs.pop("releaseTime", None)
        outputs.setdefault("paymentTiming", PAYMENT_TIMING)
        outputs.update(outputs_of(instance, int(comparable(outputs, BY_WIRE["purchaseCount"]))))
        return outputs


__all__ = ["TPMQuotaProvider"]
