"""The apply-time work of a TPM quota: buy or adopt, converge, confirm, and the outputs.

`TPMQuotaProvider` (tpm_quota.py) does plan-time work itself — check and diff, no API call — and
hands every apply to one `Lifecycle`, built at the first apply of a configured provider host (a
preview never builds it, so it never imports pydantic, the client or the `qianfan` SDK). It holds
what an apply needs for the host's life: the client, the shared listings, the ledger and the
purchase bookkeeping.

Every write is confirmed by a read (I2 in docs/design/failure-semantics.md): a change counts once
a listing requested after its answer shows it, a release once a listing shows the instance stopped
or consistent listings lack it. The change that lowers the bill goes first; a half-way failure
names what was applied (I8). An instance Qianfan answered as bought is kept as `Pending` until it
is listed or shown stopped (I3). A model Qianfan refuses to list is skipped, and named (I7).
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .client import AUTO_RELEASE, RELEASE, RESIZE, QianfanClient
from .clock import REAL, Clock
from .deadline import Deadline, wait_for
from .errors import Kind, ProviderError, QianfanError
from .fields import BY_WIRE, PAYMENT_TIMING, comparable, computed_outputs, known_inputs
from .inputs import Desired, desired
from .instances import Instance, outputs_of
from .ledger import LedgerError, Owner, ledger_for
from .listings import Listings, find_elsewhere, find_instance, look
from .messages import warn
from .models import allowed_models
from .purchase import Purchases, QianfanPurchaseApi, Spec
from .release_time import parse_duration, release_after
from .settings import Settings

#: The status of a quota Qianfan answered as bought but has not listed yet.
PENDING = "Pending"


@dataclass(frozen=True)
class Holding:
    """What an instance has now, as far as is known: its size and its scheduled release."""

    units: Any
    release: Any
    #: False when nothing usable is known about the release (not the same as "none scheduled").
    release_known: bool = True


@dataclass(frozen=True)
class _Change:
    """One in-place change of an update or adoption, and which way it moves the bill."""

    action: str
    apply: Callable[[], str | None]  # returns Qianfan's requestId, for the journal
    done: str  # "ResizeTPMResource to 4 unit(s)", for a half-way failure's message
    bill: int  # -1 lowers the bill, +1 raises it, 0 unknown


class NotShown(ProviderError):
    """A change Qianfan accepted does not show within the settle time (nothing was recorded)."""


class Lifecycle:
    """Create, read, update and delete of TPM quotas in one configured provider host. Thread-safe."""

    def __init__(
        self,
        settings: Settings,
        client: QianfanClient,
        listings: Listings,
        purchases: Purchases,
        clock: Clock = REAL,
    ) -> None:
        self.settings = settings
        self.clock = clock  # every operation's deadline is measured on it (the unit tests' jumps in time)
        self.client = client
        self.listings = listings
        self.purchases = purchases
        self._lock = threading.Lock()
        self._journal_said = False

    @classmethod
    def build(cls, settings: Settings) -> Lifecycle:
        client = QianfanClient(settings)
        listings = Listings(client, settings.listing_max_age_seconds)
        host = f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
        purchases = Purchases(QianfanPurchaseApi(client, listings), ledger_for(settings, host), settings.settle_seconds)
        return cls(settings, client, listings, purchases)

    def deadline(self) -> Deadline:
        return Deadline(self.settings.timeout_seconds, self.clock)

    # -- the four operations ---------------------------------------------------------------------
    def create(self, props: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        deadline = self.deadline()
        inputs = desired(props)
        if inputs.adopt_instance_id:
            instance, release = self._adopt(inputs, inputs.adopt_instance_id, deadline)
            return instance.instance_id, self._outputs(_asked(inputs, release), instance)
        after = parse_duration(inputs.release_after).total_seconds() if inputs.release_after else None
        bought = self.purchases.buy(
            Spec(inputs.model, inputs.purchase_count, inputs.release_time, after), Owner.of(inputs.owner_urn), deadline
        )
        instance_id, release = bought.instance_id, bought.release_time
        try:
            instance = self._wait_visible(inputs, instance_id, release, bought.answered, deadline)
            return instance_id, self._outputs(_asked(inputs, release), instance)
        except Exception as exc:  # noqa: BLE001 - a paid quota must never fail without its id
            spec = Spec(inputs.model, inputs.purchase_count, release)
            raise ProviderError(
                f"TPM quota {instance_id} ({spec.describe()}) was bought, but recording it failed "
                f"({type(exc).__name__}: {exc}). It is billed by the hour: set adoptInstanceId: {instance_id} on "
                "this quota and run `pulumi up` again"
            ) from None

    def read(self, id_: str, model: str, props: Mapping[str, Any]) -> tuple[str | None, dict[str, Any], dict[str, Any]]:
        """(id, outputs, inputs) as Qianfan has them; id None when the quota is gone."""
        deadline = self.deadline()
        instance = find_instance(self.listings, model, id_, deadline)
        if instance is None and props.get("status") == PENDING:
            # Qianfan answered that it bought this instance and has not listed it yet: it is billed,
            # and dropping it would lose it (I3). Only Qianfan showing it Stopped ends it.
            warn(
                f"TPM quota {id_} ({model}) was answered as bought but Qianfan does not list it yet; it stays in "
                "state as Pending (it may be billed). Run `pulumi refresh` again later"
            )
            return id_, dict(props), known_inputs(props)
        if instance is None:
            self._refuse_other_model(id_, model, deadline, "refresh cannot correct the model in state")
            return None, {}, {}
        if instance.gone:
            return None, {}, {}
        after = props.get("releaseAfter")
        if after and instance.release_time_known and not instance.release_time:
            warn(
                f"TPM quota {id_} ({model}) has releaseAfter {after}, but Qianfan shows no scheduled release "
                "(cancelled outside Pulumi): it is billed until released. `pulumi up` leaves the release as it is "
                "while releaseAfter is unchanged; change releaseAfter to schedule one again"
            )
        # A release that releaseAfter computed is an output: kept from state if Qianfan does not say.
        outputs = self._outputs({**known_inputs(props), **computed_outputs(props)}, instance)
        return id_, outputs, known_inputs(outputs)

    def update(self, id_: str, olds: Mapping[str, Any], news: Mapping[str, Any]) -> dict[str, Any]:
        deadline = self.deadline()
        inputs = desired(news)
        self._owned(id_, inputs.model, deadline)
        now = Holding(comparable(olds, BY_WIRE["purchaseCount"]), comparable(olds, BY_WIRE["releaseTime"]))
        if inputs.release_after is not None and comparable(olds, BY_WIRE["releaseAfter"]) == inputs.release_after:
            wanted = now.release  # the same duration: its instant stands, even one moved outside Pulumi
        else:
            wanted = _release_from_now(inputs, deadline)
        instance = self._converge(id_, inputs, now, wanted, deadline)
        return self._outputs(_asked(inputs, wanted), instance)

    def delete(self, id_: str, model: str, props: Mapping[str, Any]) -> None:
        deadline = self.deadline()
        owner = Owner.of(props.get("ownerUrn"))
        try:
            with self.listings.writing(model, deadline) as write:
                request_id = self.client.release(model, id_, deadline)
            answered = write.ended
        except QianfanError as err:
            if err.kind not in (Kind.NOT_FOUND, Kind.REJECTED):
                raise
            # Already released, expired or unknown is what destroy wants; a refusal of a live
            # instance — or of one that belongs to another model — is not.
            instance = find_instance(self.listings, model, id_, deadline)
            if instance is not None and not instance.gone:
                raise ProviderError(
                    f"{err}. TPM quota {id_} is still {instance.status}: nothing was released"
                ) from None
            if instance is None:
                self._refuse_other_model(id_, model, deadline, f"{err}. Nothing was released")
            self.listings.released(model, id_)
            self.journal(RELEASE, model, id_, owner, err.request_id)
            return
        # Read after write (I2): the release counts once Qianfan shows the instance stopped or gone.
        window = self.settings.settle_seconds
        shown = wait_for(
            self._looks(model, id_, answered, deadline), lambda found: found is None or found.gone, deadline.sub(window)
        )
        if shown is None:
            shown = find_instance(self.listings, model, id_, deadline)
        if shown is not None and not shown.gone:
            raise ProviderError(
                f"ReleaseTPMResource answered true for TPM quota {id_}, but Qianfan still lists it {shown.status} "
                f"after {window:g}s: it is still billed and stays in state — run `pulumi destroy` again (or release "
                "it in the Qianfan console)"
            )
        self.listings.released(model, id_)
        self.journal(RELEASE, model, id_, owner, request_id)

    # -- create paths ----------------------------------------------------------------------------
    def _wait_visible(
        self, inputs: Desired, instance_id: str, release: str | None, answered: float | None, deadline: Deadline
    ) -> Instance:
        """Wait (bounded) until Describe shows the bought instance, which may be `Creating` first.

        If it never shows, the id is still returned: failing here would drop a paid quota from
        state. The next refresh settles what exists.
        """
        try:
            shown = wait_for(
                self._looks(inputs.model, instance_id, answered, deadline),
                lambda found: found is not None,
                deadline.sub(self.settings.settle_seconds),
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

    def _adopt(self, inputs: Desired, instance_id: str, deadline: Deadline) -> tuple[Instance, str | None]:
        """Bring an existing instance under management: buy nothing, make it match the inputs (a
        `releaseAfter` counts from the adoption). Returns the instance and the release asked for."""
        found = find_instance(self.listings, inputs.model, instance_id, deadline)
        if found is None:
            elsewhere = find_elsewhere(self.listings, instance_id, self._other_models(inputs.model), deadline)
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
        self.purchases.adopt(instance_id, inputs.model, owner)
        self.journal("adopted", inputs.model, instance_id, owner)
        release = _release_from_now(inputs, deadline)
        now = Holding(found.units, found.release_time, found.release_time_known)
        return self._converge(instance_id, inputs, now, release, deadline), release

    # -- shared by update and adoption -----------------------------------------------------------
    def _converge(
        self, instance_id: str, inputs: Desired, now: Holding, release: str | None, deadline: Deadline
    ) -> Instance:
        """Resize and/or (re)schedule the release to `release` (what the inputs stand for now), the
        change that lowers the bill first, then confirm on the server that what was changed stuck
        (and only that)."""
        changes = self._plan(instance_id, inputs, now, release, deadline)
        applied: list[_Change] = []
        owner = Owner.of(inputs.owner_urn)
        answered: float | None = None
        for change in changes:
            try:
                with self.listings.writing(inputs.model, deadline) as write:
                    request_id = change.apply()
                answered = write.ended
            except QianfanError as err:
                if applied:
                    raise ProviderError(
                        f"{' and '.join(c.done for c in applied)} was applied; {err}. Run `pulumi refresh` before "
                        "anything else: the state still shows the old values, and Qianfan bills what it now has"
                    ) from None
                if err.kind in (Kind.NOT_FOUND, Kind.REJECTED):
                    found = find_instance(self.listings, inputs.model, instance_id, deadline)
                    if found is None or found.gone:
                        raise _vanished(instance_id) from None
                raise
            applied.append(change)
            self.journal(change.action, inputs.model, instance_id, owner, request_id)
        try:
            return self._confirm(instance_id, inputs, release, {c.action for c in applied}, answered, deadline)
        except (QianfanError, ProviderError) as err:
            if not applied or isinstance(err, NotShown):
                raise
            # I8: whatever fails after a change was made, the change is named.
            raise ProviderError(
                f"{' and '.join(c.done for c in applied)} was applied, but reading it back failed: {err}. Run "
                "`pulumi refresh` before anything else: the state still shows the old values, and Qianfan bills "
                "what it now has"
            ) from None

    def _plan(
        self, instance_id: str, inputs: Desired, now: Holding, release: str | None, deadline: Deadline
    ) -> list[_Change]:
        """The changes from `now` to the inputs, the one that lowers the bill first."""
        changes: list[_Change] = []
        units = inputs.purchase_count
        if now.units != units:
            bill = (units > now.units) - (units < now.units) if now.units else 0
            changes.append(
                _Change(
                    RESIZE,
                    lambda: self.client.resize(instance_id, units, deadline),
                    f"{RESIZE} to {units} unit(s)",
                    bill,
                )
            )
        if not now.release_known or now.release != release:
            if not now.release_known:
                bill = 0
            elif release is None or now.release is None:
                bill = 1 if release is None else -1  # cancelling a release keeps the quota billing longer
            else:
                bill = 1 if release > now.release else -1  # one spelling (RFC3339 +08:00) orders by time
            changes.append(
                _Change(
                    AUTO_RELEASE,
                    lambda: self.client.auto_release(instance_id, release, deadline),
                    f"{AUTO_RELEASE} to " + (f"release at {release}" if release else "cancel the scheduled release"),
                    bill,
                )
            )
        return sorted(changes, key=lambda c: c.bill)

    def _confirm(
        self,
        instance_id: str,
        inputs: Desired,
        release: str | None,
        sent: set[str],
        answered: float | None,
        deadline: Deadline,
    ) -> Instance:
        """Read after write: Describe must show each change that was sent within settleSeconds."""

        def settled(found: Instance | None) -> bool:
            return found is not None and (found.gone or not _mismatches(found, inputs, release, sent))

        window = self.settings.settle_seconds
        found = wait_for(self._looks(inputs.model, instance_id, answered, deadline), settled, deadline.sub(window))
        if found is None:  # not one answer listed it: look once more, model-wide, before concluding
            found = find_instance(self.listings, inputs.model, instance_id, deadline)
        if found is None or found.gone:
            raise _vanished(instance_id)
        problems = _mismatches(found, inputs, release, sent)
        if problems:
            raise NotShown(
                f"Qianfan accepted the change to {instance_id} but does not show it after {window:g}s: "
                f"{'; '.join(problems)}. Nothing was recorded as done; run `pulumi refresh` to record what "
                "Qianfan has, then `pulumi up` to try again (qianfan:settleSeconds sets how long to wait)"
            )
        return found

    def _looks(
        self, model: str, instance_id: str, answered: float | None, deadline: Deadline
    ) -> Callable[[], Instance | None]:
        """Looks after a write: the first at a listing requested after its answer came (so the
        confirmations of a wave of writes share one), each later one at a listing of its own."""
        first = [answered]

        def one() -> Instance | None:
            since = first.pop() if first else None
            if since is None:
                return look(self.listings, model, instance_id, deadline, fresh=True)
            return look(self.listings, model, instance_id, deadline, since=since)

        return one

    # -- ownership -------------------------------------------------------------------------------
    def _owned(self, instance_id: str, model: str, deadline: Deadline) -> Instance:
        """The live instance, confirmed under the quota's model before anything changes it."""
        found = find_instance(self.listings, model, instance_id, deadline)
        if found is None:
            self._refuse_other_model(instance_id, model, deadline, "nothing was changed")
            raise _vanished(instance_id)
        if found.gone:
            raise _vanished(instance_id)
        return found

    def _refuse_other_model(self, instance_id: str, model: str, deadline: Deadline, outcome: str) -> None:
        """Fail when an instance missing under `model` is alive under another one (an edited state).

        A model Qianfan refuses to list is skipped and named in a warning (I7): one retired id must
        not block every absence check.
        """
        elsewhere = find_elsewhere(self.listings, instance_id, self._other_models(model), deadline)
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

    def _other_models(self, model: str) -> list[str]:
        return [m for m in allowed_models(self.settings.extra_models) if m != model]

    # -- the journal -----------------------------------------------------------------------------
    def journal(self, action: str, model: str, instance_id: str, owner: Owner, request_id: str | None = None) -> None:
        """Write a change to the ledger's journal, best effort: a ledger that cannot be reached must
        not fail a change Qianfan made (nor a destroy, which never needs the ledger); it is said once."""
        try:
            self.purchases.ledger.journal(action, model, instance_id, owner, request_id=request_id)
        except LedgerError as err:
            with self._lock:
                said, self._journal_said = self._journal_said, True
            if not said:
                warn(f"{err}; the purchase journal misses what this run changed (the changes themselves were made)")

    # -- outputs ---------------------------------------------------------------------------------
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
        outputs.setdefault("paymentTiming", PAYMENT_TIMING)
        outputs.update(outputs_of(instance, int(comparable(outputs, BY_WIRE["purchaseCount"]))))
        return outputs


def _mismatches(found: Instance, inputs: Desired, release: str | None, sent: set[str]) -> list[str]:
    """What the listing does not show of the changes that were sent."""
    problems = []
    if RESIZE in sent and found.units is not None and found.units != inputs.purchase_count:
        problems.append(f"{RESIZE} asked for {inputs.purchase_count} units, DescribeTPMResource reports {found.units}")
    if AUTO_RELEASE in sent and found.release_time_known and found.release_time != release:
        problems.append(
            f"{AUTO_RELEASE} asked for release at {release or 'no scheduled time'}, "
            f"DescribeTPMResource reports {found.release_time or 'none'}"
        )
    return problems


def _vanished(instance_id: str) -> ProviderError:
    return ProviderError(
        f"TPM quota {instance_id} no longer exists (expired or released outside Pulumi); run `pulumi refresh` "
        "to drop it from state, then `pulumi up` buys a new one"
    )


def _release_from_now(inputs: Desired, deadline: Deadline) -> str | None:
    """The release the inputs ask for when set at this moment: `releaseTime` as given, or now (the
    deadline's clock, as the purchase reads it) plus `releaseAfter`."""
    if inputs.release_after is None:
        return inputs.release_time
    return release_after(deadline.clock.wall(), parse_duration(inputs.release_after).total_seconds())


def _asked(inputs: Desired, release: str | None) -> dict[str, Any]:
    """The inputs, and the release they stand for: a `releaseAfter`'s instant is the `releaseTime` output."""
    props = inputs.to_props()
    if release is not None:
        props["releaseTime"] = release
    return props
