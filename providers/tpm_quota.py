"""TPMQuotaProvider: the lifecycle of one Qianfan TPM quota, as Pulumi's provider host drives it.

Pulumi stores this class *by reference* (module `providers.tpm_quota`, class `TPMQuotaProvider`)
in every resource's `__provider`; destroy and refresh of existing stacks import it from here, so
its module path and name are part of the state format and must not change.

Nothing is kept on the instance before it is pickled (`__getstate__` is empty): settings and the
client are built in `configure()`, inside the host, so keys never reach state.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
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

from .client import AUTO_RELEASE, RESIZE, QianfanClient
from .deadline import Deadline, backoff
from .errors import Kind, ProviderError, QianfanError
from .instances import (
    Instance,
    describe_ids,
    find_instance,
    find_live_instance,
    list_instances,
    outputs_of,
    wait_for,
)
from .purchases import PurchaseLedger, Spec
from .release_time import normalise_if_possible
from .rules import INPUT_NAMES, REPLACE_ON_CHANGE, UNKNOWN, Policy, check_props, is_unknown
from .settings import Settings, load_settings

if TYPE_CHECKING:
    from .inputs import TPMQuotaInputs

_RUNTIME_LOCK = threading.Lock()
#: Failures after which a purchase may or may not have happened.
_UNCERTAIN = (Kind.SERVER, Kind.NO_ANSWER, Kind.BAD_ANSWER)


@dataclass
class _Runtime:
    """What one configured provider uses; lives only in the host process."""

    settings: Settings
    client: QianfanClient
    ledger: PurchaseLedger

    @classmethod
    def build(cls, settings: Settings) -> _Runtime:
        return cls(settings, QianfanClient(settings), PurchaseLedger())

    def deadline(self) -> Deadline:
        return Deadline(self.settings.timeout_seconds)


def _typed(props: Mapping[str, Any]) -> TPMQuotaInputs:
    """The pydantic inputs model, imported on first apply: a preview never loads pydantic."""
    from .inputs import TPMQuotaInputs

    return TPMQuotaInputs.from_props(props)


def _normal_time(value: Any) -> Any:
    if not isinstance(value, str) or is_unknown(value):
        return value
    return normalise_if_possible(value)


def _normal_count(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


_NORMALISE = {"purchaseCount": _normal_count, "releaseTime": _normal_time}
_DEFAULTS = {"paymentTiming": "Postpaid"}


def _comparable(props: Mapping[str, Any], name: str) -> Any:
    value = props.get(name, _DEFAULTS.get(name))
    return _NORMALISE.get(name, lambda v: v)(value)


class TPMQuotaProvider(ResourceProvider):
    """Buys, resizes, reschedules and releases Qianfan TPM quota."""

    # `__provider` holds only a reference to this class (see __getstate__), no secret.
    serialize_as_secret_always = False

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        pass

    # -- set-up ----------------------------------------------------------------------------------
    def configure(self, req: ConfigureRequest) -> None:
        self._runtime = _Runtime.build(load_settings(req.config.get))

    def _rt(self) -> _Runtime:
        """The configured runtime; outside the host (no configure call), settings from the env."""
        runtime = self.__dict__.get("_runtime")
        if runtime is None:
            with _RUNTIME_LOCK:
                runtime = self.__dict__.get("_runtime")
                if runtime is None:
                    runtime = self._runtime = _Runtime.build(load_settings())
        return runtime

    # -- plan time: no API calls -----------------------------------------------------------------
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        settings = self._rt().settings
        previous = _normal_time(olds.get("releaseTime")) if olds else None
        policy = Policy(
            extra_models=settings.extra_models,
            max_purchase_count=settings.max_purchase_count,
            previous_release_time=previous if isinstance(previous, str) else None,
        )
        inputs, failures = check_props(news, policy)
        return CheckResult(inputs, [CheckFailure(prop, reason) for prop, reason in failures])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [
            name
            for name in INPUT_NAMES
            if name != "adoptInstanceId"
            and (is_unknown(news.get(name)) or _comparable(olds, name) != _comparable(news, name))
        ]
        replaces = [name for name in changed if name in REPLACE_ON_CHANGE]
        return DiffResult(changes=bool(changed), replaces=replaces)

    # -- apply -----------------------------------------------------------------------------------
    def create(self, props: dict[str, Any]) -> CreateResult:
        rt = self._rt()
        deadline = rt.deadline()
        inputs = _typed(props)
        instance = self._adopt(rt, inputs, deadline) if inputs.adopt_instance_id else self._buy(rt, inputs, deadline)
        return CreateResult(instance.instance_id, self._outputs(inputs.to_props(), instance))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        rt = self._rt()
        deadline = rt.deadline()
        inputs = _typed(news)
        instance = self._converge(
            rt,
            id_,
            inputs,
            units_now=_normal_count(olds.get("purchaseCount")),
            release_now=_normal_time(olds.get("releaseTime")),
            deadline=deadline,
        )
        return UpdateResult(self._outputs(inputs.to_props(), instance))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        model = props.get("model")
        if not model:
            raise ProviderError(
                f"cannot read TPM quota {id_} without its model: `pulumi import` does not work for dynamic "
                "resources; declare the quota with adoptInstanceId instead"
            )
        rt = self._rt()
        instance = find_instance(rt.client, model, id_, rt.deadline())
        if instance is None or instance.gone:
            return ReadResult(None, {})
        known_inputs = {name: props[name] for name in INPUT_NAMES if props.get(name) is not None}
        outputs = self._outputs(known_inputs, instance)
        inputs = {name: outputs[name] for name in INPUT_NAMES if outputs.get(name) is not None}
        return ReadResult(id_, outputs, inputs)

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        model = props.get("model")
        if not model:
            raise ProviderError(f"cannot release TPM quota {id_}: the state holds no model for it")
        rt = self._rt()
        deadline = rt.deadline()
        try:
            rt.client.release(model, id_, deadline)
        except QianfanError as err:
            # Already released, expired or unknown is what destroy wants; anything else is real.
            if self._refused_because_gone(rt, err, model, id_, deadline):
                return
            raise

    # -- create paths ----------------------------------------------------------------------------
    def _buy(self, rt: _Runtime, inputs: TPMQuotaInputs, deadline: Deadline) -> Instance:
        """Purchase once; after an uncertain failure, find the bought instance instead of buying again."""
        spec = Spec(inputs.model, inputs.purchase_count, inputs.release_time)
        before = {i.instance_id for i in list_instances(rt.client, spec.model, deadline)}
        uncertain_failures = 0
        throttled = 0
        while True:
            failure: QianfanError | None = None
            with rt.ledger.purchasing(spec, deadline) as mark_uncertain:
                try:
                    instance_id: str | None = rt.client.purchase(spec.model, spec.units, spec.release_time, deadline)
                except QianfanError as err:
                    instance_id, failure = None, err
                    if err.kind in _UNCERTAIN:
                        mark_uncertain()
            if failure is None:
                assert instance_id is not None
                rt.ledger.claim(instance_id)
                break
            if failure.kind is Kind.THROTTLED:
                # Refused at the gate before anything happened: wait and send it again.
                if not deadline.sleep(backoff(throttled)):
                    raise failure
                throttled += 1
                continue
            if failure.kind not in _UNCERTAIN:
                raise failure  # refused: nothing was bought
            instance_id = self._recover_purchase(rt, spec, before, failure, deadline)
            if instance_id:
                break
            uncertain_failures += 1
            if uncertain_failures >= 2:
                raise ProviderError(
                    f"{failure}. Listing {spec.model}'s instances shows that neither attempt bought anything; "
                    "nothing was recorded — run `pulumi up` again later"
                )
        return self._wait_visible(rt, inputs, instance_id, deadline)

    def _recover_purchase(
        self, rt: _Runtime, spec: Spec, before: set[str], failure: QianfanError, deadline: Deadline
    ) -> str | None:
        """After an uncertain purchase failure: the id it bought, or None if it bought nothing.

        Looks for new instances of the same spec, for up to `qianfan:settleSeconds` in case the
        purchase shows up late; refuses to guess when more appeared than purchases are pending.
        """
        settle = deadline.sub(rt.settings.settle_seconds)
        with rt.ledger.recovering(spec, deadline) as window:
            attempt = 0
            while True:
                try:
                    listed = list_instances(rt.client, spec.model, deadline)
                except QianfanError as err:
                    raise ProviderError(
                        f"{failure}. Whether a quota was bought is unknown: listing {spec.model}'s instances to "
                        f"find out failed too ({err}). Look for a new {spec.model} instance in the Qianfan console "
                        "and put it under management with adoptInstanceId"
                    ) from None
                new = sorted(
                    (
                        i
                        for i in listed
                        if i.instance_id not in before
                        and i.instance_id not in window.claimed
                        and not i.gone
                        and self._matches(i, spec)
                    ),
                    key=lambda i: i.instance_id,
                )
                if 0 < len(new) <= window.pending_same_spec:
                    rt.ledger.claim(new[0].instance_id)
                    return new[0].instance_id
                if new:
                    raise ProviderError(
                        f"{failure}. Since the purchase, {len(new)} unexplained {spec.model} instance(s) with "
                        f"{spec.units} unit(s) appeared ({describe_ids(new)}) and this provider cannot tell which "
                        "one, if any, it bought; nothing was recorded. Set adoptInstanceId to the right one on this "
                        "quota and run `pulumi up` again; release any other in the Qianfan console"
                    )
                if not settle.sleep(backoff(attempt, initial=0.5, cap=5.0), reserve=0.0):
                    return None
                attempt += 1

    @staticmethod
    def _matches(instance: Instance, spec: Spec) -> bool:
        if instance.units is not None and instance.units != spec.units:
            return False
        return not (instance.release_time_known and instance.release_time != spec.release_time)

    def _wait_visible(self, rt: _Runtime, inputs: TPMQuotaInputs, instance_id: str, deadline: Deadline) -> Instance:
        """Wait (bounded) until Describe shows the bought instance, which may be `Creating` first.

        If it never shows, the id is still returned: failing here would drop a paid quota from
        state. The next refresh settles what exists.
        """
        try:
            shown = wait_for(
                lambda: find_instance(rt.client, inputs.model, instance_id, deadline),
                lambda found: found is not None,
                deadline.sub(rt.settings.settle_seconds),
            )
        except QianfanError:
            shown = None  # Describe failing now must not turn a paid purchase into a failed create
        if shown is not None:
            return shown
        return Instance(
            instance_id=instance_id,
            status="Pending",
            model=inputs.model,
            units=inputs.purchase_count,
            release_time=inputs.release_time,
            release_time_known=True,
        )

    def _adopt(self, rt: _Runtime, inputs: TPMQuotaInputs, deadline: Deadline) -> Instance:
        """Bring an existing instance under management: buy nothing, make it match the inputs."""
        instance_id = inputs.adopt_instance_id
        assert instance_id is not None
        found = find_instance(rt.client, inputs.model, instance_id, deadline)
        if found is None:
            raise ProviderError(
                f"adoptInstanceId {instance_id}: Qianfan lists no instance with that id for model "
                f"{inputs.model}; check the id and the model"
            )
        if found.gone:
            raise ProviderError(
                f"adoptInstanceId {instance_id}: the instance is {found.status} (expired or released) and cannot "
                "be adopted; remove adoptInstanceId to buy a new quota"
            )
        rt.ledger.claim(instance_id)
        return self._converge(
            rt,
            instance_id,
            inputs,
            units_now=found.units,
            # When Describe does not report a release time, set it (or cancel it) anyway.
            release_now=found.release_time if found.release_time_known else UNKNOWN,
            deadline=deadline,
        )

    # -- shared by update and adoption -----------------------------------------------------------
    def _converge(
        self,
        rt: _Runtime,
        instance_id: str,
        inputs: TPMQuotaInputs,
        *,
        units_now: Any,
        release_now: Any,
        deadline: Deadline,
    ) -> Instance:
        """Resize and/or (re)schedule the release, then confirm on the server that both stuck."""
        try:
            if units_now != inputs.purchase_count:
                rt.client.resize(instance_id, inputs.purchase_count, deadline)
            if release_now != inputs.release_time:
                rt.client.auto_release(instance_id, inputs.release_time, deadline)
        except QianfanError as err:
            if self._refused_because_gone(rt, err, inputs.model, instance_id, deadline):
                raise self._vanished(instance_id) from None
            raise
        return self._confirm(rt, instance_id, inputs, deadline)

    def _confirm(self, rt: _Runtime, instance_id: str, inputs: TPMQuotaInputs, deadline: Deadline) -> Instance:
        def applied(found: Instance | None) -> bool:
            return found is None or found.gone or not self._mismatches(found, inputs)

        window = rt.settings.settle_seconds
        found = wait_for(
            lambda: find_instance(rt.client, inputs.model, instance_id, deadline), applied, deadline.sub(window)
        )
        if found is None or found.gone:
            raise self._vanished(instance_id)
        problems = self._mismatches(found, inputs)
        if problems:
            raise ProviderError(
                f"Qianfan accepted the change to {instance_id} but does not show it after {window:g}s: "
                f"{'; '.join(problems)}. Nothing was recorded as done; run `pulumi refresh` to record what "
                "Qianfan has, then `pulumi up` to try again (qianfan:settleSeconds sets how long to wait)"
            )
        return found

    @staticmethod
    def _mismatches(found: Instance, inputs: TPMQuotaInputs) -> list[str]:
        problems = []
        if found.units is not None and found.units != inputs.purchase_count:
            problems.append(
                f"{RESIZE} asked for {inputs.purchase_count} units, DescribeTPMResource reports {found.units}"
            )
        if found.release_time_known and found.release_time != inputs.release_time:
            problems.append(
                f"{AUTO_RELEASE} asked for release at {inputs.release_time or 'no scheduled time'}, "
                f"DescribeTPMResource reports {found.release_time or 'none'}"
            )
        return problems

    @staticmethod
    def _refused_because_gone(
        rt: _Runtime, err: QianfanError, model: str, instance_id: str, deadline: Deadline
    ) -> bool:
        """Was a change refused because the instance is released, expired or unknown?

        Qianfan's codes for that are not documented, so any refusal is checked with Describe.
        """
        return err.kind in (Kind.NOT_FOUND, Kind.REJECTED) and not find_live_instance(
            rt.client, model, instance_id, deadline
        )

    @staticmethod
    def _vanished(instance_id: str) -> ProviderError:
        return ProviderError(
            f"TPM quota {instance_id} no longer exists (expired or released outside Pulumi); run `pulumi refresh` "
            "to drop it from state, then `pulumi up` buys a new one"
        )

    @staticmethod
    def _outputs(inputs: dict[str, Any], instance: Instance) -> dict[str, Any]:
        """Every input plus the computed outputs; what the server reports wins over what was asked."""
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
        outputs.setdefault("paymentTiming", "Postpaid")
        outputs.update(outputs_of(instance, int(_normal_count(outputs["purchaseCount"]))))
        return outputs


__all__ = ["TPMQuotaProvider"]
