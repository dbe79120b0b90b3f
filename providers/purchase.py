"""Never buy twice: PurchaseTPMResource without an idempotency token, at any concurrency.

A purchase whose answer is lost (timeout, dropped connection, 5xx, any answer that is not a
documented refusal) may or may not have bought a quota. Sending it again blindly can buy twice;
giving up can leave a paid quota in no state. So an *uncertain* purchase is recovered by listing
the model's instances, and quotas of one spec (model, units, release time) are interchangeable.

The invariant, for each model, within one provider host:

    Uncertain purchases of one model recover together, as one pool, against one listing taken
    before the earliest of them was sent, and only while no purchase of that model is in flight
    (new ones wait at the gate). Every instance that is new since that listing, not claimed, and
    of a pending purchase's spec is assigned to exactly one pending purchase of that spec. A
    purchase is re-sent only when, after settling (`qianfan:settleSeconds`), its spec still has
    fewer new instances than pending purchases. When a spec has more new instances than pending
    purchases, none is guessed: each of those creates fails, naming every candidate.

Claiming is atomic with a purchase's answer: the instance a successful purchase returns is
claimed in the same step that ends its flight, so no recovery ever sees it unclaimed. Whatever
goes wrong after a purchase was sent — an error, a listing that fails, time running out — every
create that may have bought gets an error naming what is known (the candidates, or that the
listing failed), and the bookkeeping is released in `finally`, so the host keeps working.

The round deadline is the earliest deadline of the pool's creates, so every create's recovery is
settled before its own deadline passes. Two *different* hosts (stacks) buying the same spec in the
same seconds, one losing its answer, remain a confusion nobody can remove without an idempotency
token; the `audit` command shows what such a confusion leaves behind.
"""

from __future__ import annotations

import itertools
import threading
from collections import Counter
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from .client import QianfanClient
from .deadline import Deadline, backoff
from .errors import Kind, ProviderError, QianfanError
from .instances import Instance, describe_ids
from .listings import Listings

#: How long past its own deadline a create waits for a recovery another create is running; the
#: round is bounded by the earliest deadline of the pool, so this only covers lock hand-over.
_HANDOVER_SECONDS = 2.0


@dataclass(frozen=True)
class Spec:
    """What a purchase asked for; instances of one spec are interchangeable."""

    model: str
    units: int
    release_time: str | None

    def describe(self) -> str:
        release = f", release at {self.release_time}" if self.release_time else ""
        return f"{self.model} instance(s) with {self.units} unit(s){release}"


class PurchaseApi(Protocol):
    """The two Qianfan calls a purchase needs; a fake in the unit tests, the client in the host."""

    def list(self, model: str, deadline: Deadline, *, fresh: bool = False) -> list[Instance]: ...

    def purchase(self, spec: Spec, deadline: Deadline) -> str: ...


class QianfanPurchaseApi:
    """Listings shared with the host's other operations; each purchase marked as a write."""

    def __init__(self, client: QianfanClient, listings: Listings) -> None:
        self._client = client
        self._listings = listings

    def list(self, model: str, deadline: Deadline, *, fresh: bool = False) -> list[Instance]:
        return self._listings.get(model, deadline, fresh=fresh)

    def purchase(self, spec: Spec, deadline: Deadline) -> str:
        with self._listings.writing(spec.model):
            return self._client.purchase(spec.model, spec.units, spec.release_time, deadline)


class _Outcome(Enum):
    PENDING = "pending"
    BOUGHT = "bought"
    NOT_BOUGHT = "not bought"
    FAILED = "failed"


@dataclass(eq=False)
class _Ticket:
    """One uncertain purchase, until a recovery round decides what it did."""

    spec: Spec
    baseline: frozenset[str]  # instances listed before this purchase was sent
    seq: int  # order of sending
    deadline: Deadline
    failure: str  # what the purchase answered
    outcome: _Outcome = _Outcome.PENDING
    instance_id: str | None = None
    message: str = ""
    #: For a re-send after NOT_BOUGHT: the last listing, taken after this purchase failed.
    next_baseline: frozenset[str] = field(default_factory=frozenset)


class Purchases:
    """The never-buy-twice bookkeeping of one provider host. Thread-safe; one per configured host."""

    def __init__(self, api: PurchaseApi, settle_seconds: float) -> None:
        self._api = api
        self._settle_seconds = settle_seconds
        self._cond = threading.Condition()
        self._in_flight: Counter[str] = Counter()
        self._recovering: set[str] = set()
        self._pending: dict[str, list[_Ticket]] = {}
        self._claimed: set[str] = set()
        self._seq = itertools.count()

    # -- the interface -----------------------------------------------------------------------------
    def buy(self, spec: Spec, deadline: Deadline) -> str:
        """Buy one quota of `spec` and return its instanceId (claimed), or raise naming what is known.

        The baseline listing may be shared and up to `qianfan:listingMaxAgeSeconds` old: it only
        has to be requested before this purchase is sent (see the invariant).
        """
        baseline = frozenset(i.instance_id for i in self._api.list(spec.model, deadline))
        throttled = 0
        lost: _Ticket | None = None
        while True:
            try:
                sent = self._send(spec, baseline, deadline)
            except QianfanError as err:
                if err.kind is not Kind.THROTTLED:
                    raise  # refused: nothing was bought
                # Refused at the gate before anything happened: wait and send it again.
                if not deadline.sleep(backoff(throttled)):
                    raise
                throttled += 1
                continue
            if isinstance(sent, str):
                return sent
            self._recover(sent)
            if sent.outcome is _Outcome.BOUGHT and sent.instance_id:
                return sent.instance_id
            if sent.outcome is _Outcome.FAILED:
                raise ProviderError(sent.message)
            if lost is not None:
                raise ProviderError(
                    f"{sent.failure}. Listing {spec.model}'s instances shows that neither attempt bought anything; "
                    "nothing was recorded — run `pulumi up` again later"
                )
            lost, baseline = sent, sent.next_baseline

    def claim(self, instance_id: str) -> None:
        """Claim an instance for adoption; refuse one this host already bought or adopted."""
        with self._cond:
            if instance_id in self._claimed:
                raise ProviderError(
                    f"adoptInstanceId {instance_id}: another TPMQuota of this stack already owns this instance "
                    "(bought or adopted in this same run); one instance can belong to one resource only — "
                    "remove adoptInstanceId from one of them"
                )
            self._claimed.add(instance_id)

    # -- sending ----------------------------------------------------------------------------------
    def _send(self, spec: Spec, baseline: frozenset[str], deadline: Deadline) -> str | _Ticket:
        """Send one purchase: its instanceId (claimed), or the ticket of an uncertain outcome."""
        model = spec.model
        with self._cond:
            if not self._cond.wait_for(lambda: model not in self._recovering, timeout=deadline.remaining()):
                raise ProviderError(
                    f"timed out waiting for a purchase recovery of {model} in this host; this create sent nothing "
                    "and bought nothing — raise qianfan:timeoutSeconds or run `pulumi up` again"
                )
            self._in_flight[model] += 1
            seq = next(self._seq)
        bought: str | None = None
        ticket: _Ticket | None = None
        try:
            bought = self._api.purchase(spec, deadline)
        except QianfanError as err:
            if err.kind is not Kind.THROTTLED and not err.definitive_refusal:
                ticket = _Ticket(spec, baseline, seq, deadline, str(err))
                return ticket
            raise
        except Exception as exc:  # noqa: BLE001 - anything raised after sending may have bought a quota
            ticket = _Ticket(spec, baseline, seq, deadline, f"PurchaseTPMResource failed: {type(exc).__name__}")
            return ticket
        finally:
            with self._cond:
                self._in_flight[model] -= 1
                if bought is not None:
                    self._claimed.add(bought)
                if ticket is not None:
                    self._pending.setdefault(model, []).append(ticket)
                self._cond.notify_all()
        return bought

    # -- recovering -------------------------------------------------------------------------------
    def _recover(self, ticket: _Ticket) -> None:
        """Settle the ticket: lead a recovery round for its model, or wait for the one that runs."""
        model = ticket.spec.model
        limit = Deadline(ticket.deadline.remaining() + _HANDOVER_SECONDS)
        with self._cond:
            while ticket.outcome is _Outcome.PENDING:
                if model not in self._recovering:
                    self._recovering.add(model)
                    break
                if limit.expired:
                    self._resolve(ticket, _Outcome.FAILED, self._unknown(ticket, "the recovery did not finish in time"))
                else:
                    self._cond.wait(timeout=limit.remaining())
            else:
                return
        try:
            self._round(model)
        finally:
            with self._cond:
                self._recovering.discard(model)
                self._cond.notify_all()

    def _round(self, model: str) -> None:
        """List the model (gate closed) until every pending purchase of it is settled."""
        with self._cond:
            while self._in_flight[model] > 0:
                tickets = self._open(model)
                if not tickets:
                    return
                deadline = min((t.deadline for t in tickets), key=Deadline.remaining)
                if not self._cond.wait(timeout=deadline.remaining()) and deadline.expired:
                    for t in tickets:
                        self._resolve(t, _Outcome.FAILED, self._unknown(t, "other purchases were still in flight"))
                    return
            tickets = self._open(model)
            if not tickets:
                return
            baseline = min(tickets, key=lambda t: t.seq).baseline
            deadline = min((t.deadline for t in tickets), key=Deadline.remaining)
        settle = deadline.sub(self._settle_seconds)
        attempt = 0
        try:
            while True:
                listed = self._api.list(model, deadline, fresh=True)
                with self._cond:
                    self._assign(tickets, baseline, listed)
                    left = [t for t in tickets if t.outcome is _Outcome.PENDING]
                    if not left:
                        return
                if not settle.sleep(backoff(attempt, initial=0.5, cap=5.0), reserve=0.0):
                    with self._cond:
                        seen = frozenset(i.instance_id for i in listed)
                        for t in left:
                            t.next_baseline = seen
                            self._resolve(t, _Outcome.NOT_BOUGHT)
                    return
                attempt += 1
        except Exception as exc:  # noqa: BLE001 - every pending create must hear what happened
            with self._cond:
                for t in tickets:
                    if t.outcome is _Outcome.PENDING:
                        self._resolve(t, _Outcome.FAILED, self._unknown(t, f"listing failed too ({exc})"))

    def _assign(self, tickets: list[_Ticket], baseline: frozenset[str], listed: list[Instance]) -> None:
        """Give each pending purchase a new instance of its spec, or refuse to guess (lock held)."""
        remaining = [
            i for i in listed if i.instance_id not in baseline and i.instance_id not in self._claimed and not i.gone
        ]
        pending = [t for t in tickets if t.outcome is _Outcome.PENDING]
        for spec in sorted({t.spec for t in pending}, key=repr):
            members = sorted((t for t in pending if t.spec == spec), key=lambda t: t.seq)
            candidates = sorted((i for i in remaining if _matches(i, spec)), key=lambda i: i.instance_id)
            remaining = [i for i in remaining if i not in candidates]
            if len(candidates) > len(members):
                for t in members:
                    self._resolve(
                        t,
                        _Outcome.FAILED,
                        f"{t.failure}. Since the purchase, {len(candidates)} unexplained {spec.describe()} appeared "
                        f"({describe_ids(candidates)}) for {len(members)} lost purchase(s) of this host, and this "
                        "provider cannot tell which one, if any, it bought; nothing was recorded. Set "
                        "adoptInstanceId to the right one on this quota and run `pulumi up` again; release any "
                        "other in the Qianfan console",
                    )
                continue
            for t, instance in zip(members, candidates, strict=False):
                self._claimed.add(instance.instance_id)
                t.instance_id = instance.instance_id
                self._resolve(t, _Outcome.BOUGHT)

    def _open(self, model: str) -> list[_Ticket]:
        return [t for t in self._pending.get(model, []) if t.outcome is _Outcome.PENDING]

    def _resolve(self, ticket: _Ticket, outcome: _Outcome, message: str = "") -> None:
        ticket.outcome, ticket.message = outcome, message
        model = ticket.spec.model
        self._pending[model] = [t for t in self._pending.get(model, []) if t is not ticket]
        self._cond.notify_all()

    @staticmethod
    def _unknown(ticket: _Ticket, why: str) -> str:
        return (
            f"{ticket.failure}. Whether a quota was bought is unknown: {why}. Look for a new "
            f"{ticket.spec.describe()} in the Qianfan console (or run `python -m audit`) and put it under "
            "management with adoptInstanceId"
        )


def _matches(instance: Instance, spec: Spec) -> bool:
    """Could this instance be what `spec` bought? Fields Describe does not report do not exclude it."""
    if instance.units is not None and instance.units != spec.units:
        return False
    return not (instance.release_time_known and instance.release_time != spec.release_time)
