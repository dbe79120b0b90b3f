"""Never buy twice, never lose a quota: PurchaseTPMResource without an idempotency token.

A purchase whose answer is lost (timeout, dropped connection, 5xx, any answer that is not a
documented refusal) may or may not have bought a quota. Sending it again blindly can buy twice;
giving up can leave a paid quota in no state. So an *uncertain* purchase is recovered by listing
the model's instances; quotas of one spec (model, units, release time) are interchangeable.
Qianfan's answers may also disagree with each other (a lagging replica answers empty, pages
shift, an instance shows up late), so no single listing is trusted as the truth.

Invariants, for every host that shares one ledger (`ledger.py`; `qianfan:ledger: off` shares
none, and they then hold inside one host):

I1  A create returns only an instance that did not exist before its purchase was sent, and no
    instance is ever held by two resources. Evidence that instance X existed before purchase P was
    sent, any of which excludes X for P: a listing answered before P was sent showed X to P's
    host (`Listings.seen_before`); or X's `startTime` (Qianfan's clock, whole seconds) is more than
    `START_TIME_MARGIN_SECONDS` before the earliest moment Qianfan's clock may have shown when P
    was sent (`clock.ServerClock`, measured from every answer's `Date`; ±5 min until measured).
    Evidence that X is not P's, either: X started more than `LATE_COMMIT_SECONDS` after P's request
    ended. Claims are unique in the ledger, and an instance is claimed in the same step that
    records the answer, recovery or adoption that gives it to a resource. One case no evidence
    decides: two lost purchases of one spec sent within the start-time margin of each other with
    no listing between the sends. The earlier-sent takes the earlier-started instance, and within
    one second of Qianfan's clock the one the listing shows first, so the later create may hold
    the instance the earlier purchase bought just before it was sent; each still holds exactly one
    instance of its spec, and the two are interchangeable.
I4  A purchase's request leaves its recovery the time it needs (`recovery_seconds`): when less
    than that is left, the purchase is not sent at all.
I5  A purchase is sent again only when, after settling (`qianfan:settleSeconds`, at least 1 s),
    `CONFIRM_LOOKS` consistent listings at least `CONFIRM_GAP_SECONDS` apart still show its spec
    fewer unclaimed new instances than open purchases. A create sends at most two purchases that
    both went unanswered.

The recovery, per model: uncertain purchases recover together as one pool — every host's open
purchases of the model — and only while the model's gate is taken, which no host can take while a
purchase of the model is in flight anywhere, and while which no host sends one. Its listings
must be consistent (`listings.Listing`): nothing is assigned from, or concluded absent in, a
listing whose pages disagreed or that lost instances seen before. In each consistent listing, the
instances that are live, unclaimed and of a pool member's spec, and that some member could have
bought (I1), are matched to members — this host's first, then other hosts' live ones (left for
their hosts to take), then abandoned ones (a host died; their instance is claimed as `orphaned`
and named in the journal). When a spec has candidates no member can explain, none is guessed:
this host's members of that spec fail naming every candidate and how to adopt the right one.

Whatever goes wrong after a purchase was sent — an error, a listing that fails, time running out —
every create that may have bought fails naming what is known, its record says so (`unknown`, shown
by the audit), and the bookkeeping is released in `finally`, so the host keeps working.

What remains unknowable: an instance bought by someone who does not share the ledger (the console,
a stack with `qianfan:ledger: off` or another ledger) within seconds of a lost purchase of the same
spec, while every listing before that purchase lagged, can be taken for it (the one that purchase
bought is then unnamed, or taken by another lost purchase of the spec sent in the same seconds, whose
own is then unnamed: one unnamed instance at most per mistake); an instance that shows up later than
the settle time plus the confirmations is bought again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum
from typing import Protocol

from .client import QianfanClient, Receipt
from .clock import ServerClock
from .deadline import Deadline, backoff
from .errors import Kind, ProviderError, QianfanError
from .instances import Instance, describe_ids
from .ledger import Ledger, LedgerError, Owner, PurchaseRecord, State
from .listings import Lister, Listing, Listings
from .release_time import format_duration, release_after

#: How long past its own deadline a create waits for a recovery another create is running; the
#: round is bounded by the earliest deadline of the pool, so this only covers the hand-over.
HANDOVER_SECONDS = 2.0
#: `startTime` is written in whole seconds; an instance that started more than this before a
#: purchase was sent (on Qianfan's clock) is not that purchase's.
START_TIME_MARGIN_SECONDS = 2.0
#: Qianfan may still commit a purchase a while after the request gave up waiting: an instance that
#: started more than this after a purchase's request ended is not that purchase's.
LATE_COMMIT_SECONDS = 60.0
#: Consistent listings, after the settle time, that must agree before a purchase counts as not bought ...
CONFIRM_LOOKS = 2
#: ... the first and the last this far apart (an instance that shows just after settling is found).
CONFIRM_GAP_SECONDS = 1.0
#: Time the recovery's listings themselves take, beyond settle and gap, reserved from the purchase.
RECOVERY_LISTING_SECONDS = 2.0


@dataclass(frozen=True)
class Spec:
    """What a purchase asked for; instances of one spec are interchangeable."""

    model: str
    units: int
    release_time: str | None
    #: `releaseAfter`: the release is this long after the purchase is sent (see `sent_at`).
    release_after_seconds: float | None = None

    def describe(self) -> str:
        release = f", release at {self.release_time}" if self.release_time else ""
        if self.release_after_seconds is not None:
            release = f", release {format_duration(timedelta(seconds=self.release_after_seconds))} after purchase"
        return f"{self.model} instance(s) with {self.units} unit(s){release}"

    def sent_at(self, wall: float) -> Spec:
        """The spec as a purchase sent at `wall` (epoch seconds) asks for it: a relative release
        becomes its instant, which the ledger records and the recovery matches."""
        if self.release_after_seconds is None:
            return self
        return Spec(self.model, self.units, release_after(wall, self.release_after_seconds))

    @staticmethod
    def of(record: PurchaseRecord) -> Spec:
        return Spec(record.model, record.units, record.release_time)


@dataclass(frozen=True)
class Bought:
    """The instance a create got, the requestId of the answer that gave it (if it came), and the
    release its purchase was sent with (a `releaseAfter` resolved at sending)."""

    instance_id: str
    request_id: str | None
    release_time: str | None = None
    #: When the answer came (the clock's monotonic time), for a confirmation to list after it;
    #: None when a recovery found the instance.
    answered: float | None = None


class PurchaseApi(Lister, Protocol):
    """What a purchase needs of Qianfan: listings (`Lister.get`, freshness as `listings.Listings.get`
    says), purchases and what listings showed; a fake in the unit tests, the client and listings in
    the host."""

    @property
    def server_clock(self) -> ServerClock: ...

    def purchase(self, spec: Spec, deadline: Deadline, *, leave: float) -> Receipt: ...

    def seen_before(self, model: str, instance_id: str, moment: float) -> bool:
        """Did a listing answered before `moment` (the clock's monotonic time) show the instance?"""
        ...

    def seen_ids(self, model: str) -> frozenset[str]:
        """Every instance of the model a listing has shown to this host."""
        ...


class _Outcome(Enum):
    PENDING = "pending"
    BOUGHT = "bought"
    NOT_BOUGHT = "not bought"
    FAILED = "failed"


@dataclass(eq=False)
class _Ticket:
    """One uncertain purchase of this host, until a recovery round decides what it did."""

    record: int  # the ledger's purchase id
    spec: Spec
    sent: float  # the clock's monotonic time just before it was sent
    deadline: Deadline
    failure: str  # what the purchase answered
    outcome: _Outcome = _Outcome.PENDING
    instance_id: str | None = None
    message: str = ""


class Purchases:
    """The never-buy-twice bookkeeping of one provider host. Thread-safe; one per configured host."""

    def __init__(self, api: PurchaseApi, ledger: Ledger, settle_seconds: float) -> None:
        self._api = api
        self._ledger = ledger
        self._settle_seconds = settle_seconds
        self._cond = threading.Condition()
        self._leading: set[str] = set()
        self._tickets: dict[int, _Ticket] = {}

    @property
    def ledger(self) -> Ledger:
        return self._ledger

    @property
    def recovery_seconds(self) -> float:
        """What a recovery needs after a lost answer: the purchase request leaves it this (I4)."""
        return self._settle_seconds + CONFIRM_GAP_SECONDS + RECOVERY_LISTING_SECONDS

    # -- the interface -----------------------------------------------------------------------------
    def buy(self, spec: Spec, owner: Owner, deadline: Deadline) -> Bought:
        """Buy one quota of `spec` and return its instance (claimed), or raise naming what is known."""
        throttled = 0
        lost_once = False
        listed = False
        while True:
            outcome = self._attempt(spec, owner, deadline, listed)
            listed = True
            if isinstance(outcome, Bought):
                return outcome
            if outcome is None:  # throttled at the gate: nothing happened
                if not deadline.sleep(backoff(throttled)):
                    raise ProviderError(
                        f"PurchaseTPMResource was throttled until this create ran out of time; nothing was bought — "
                        f"raise qianfan:timeoutSeconds or run `pulumi up` again later ({spec.describe()})"
                    )
                throttled += 1
                continue
            if outcome.outcome is _Outcome.BOUGHT and outcome.instance_id:
                return Bought(outcome.instance_id, None, outcome.spec.release_time)
            if outcome.outcome is _Outcome.FAILED:
                raise ProviderError(outcome.message)
            if lost_once:
                raise ProviderError(
                    f"{outcome.failure}. Consistent listings of {spec.model}'s instances show that neither attempt "
                    "bought anything; nothing was recorded — run `pulumi up` again later"
                )
            lost_once = True

    def adopt(self, instance_id: str, model: str, owner: Owner) -> None:
        """Claim an instance for adoption; refuse one that another resource holds."""
        try:
            holder = self._ledger.adopt(instance_id, model, owner)
        except LedgerError as err:
            raise ProviderError(f"adoptInstanceId {instance_id}: {err}; nothing was changed") from None
        if holder is not None:
            raise ProviderError(
                f"adoptInstanceId {instance_id}: {holder.describe()} already holds this instance (bought or adopted "
                f"there, recorded in the {self._ledger.name}); one instance can belong to one resource only — "
                "remove adoptInstanceId from one of them, or, if that resource's state is gone (a lost stack, "
                f"`pulumi state delete`), let go of its claim with `python -m audit --ledger … --forget-claim "
                f"{instance_id}` (this stack's endpoint and keys; see docs/audit.md) and run `pulumi up` again"
            )

    # -- sending ----------------------------------------------------------------------------------
    def _attempt(self, spec: Spec, owner: Owner, deadline: Deadline, listed: bool) -> Bought | _Ticket | None:
        """One purchase: what it bought, the ticket of an uncertain outcome after its recovery, or
        None when it was throttled (refused at the gate). `listed`: an earlier attempt of this
        create listed the model already, and its sightings still count."""
        clock = deadline.clock
        model = spec.model
        while True:
            waited = self._wait_for_gate(model, deadline)
            if not listed or waited is not None:
                # Every instance this listing shows existed before the purchase below is sent (I1);
                # after a wait at the gate, only a listing requested since then shows what others
                # bought meanwhile.
                self._api.get(model, deadline, not_before=waited)
                listed = True
            sent, wall = clock.monotonic(), clock.wall()
            sending = spec.sent_at(wall)  # each purchase sent fixes its own release
            server = self._api.server_clock
            try:
                record = self._ledger.begin(
                    model,
                    sending.units,
                    sending.release_time,
                    owner,
                    seconds=deadline.remaining(),
                    server_sent=server.earliest(wall),
                    server_ended=server.latest(wall + deadline.remaining()),
                    seen=self._api.seen_ids(model),
                )
            except LedgerError as err:
                raise ProviderError(f"{err}; the purchase was not sent, nothing was bought") from None
            if record is not None:
                break
        try:
            receipt = self._api.purchase(sending, deadline, leave=self.recovery_seconds)
        except QianfanError as err:
            if err.kind is Kind.THROTTLED or err.definitive_refusal:
                self._end(record, State.REFUSED, detail=str(err))
                if err.kind is Kind.THROTTLED:
                    return None
                raise
            failure = str(err)
        except Exception as exc:  # noqa: BLE001 - anything raised after sending may have bought a quota
            failure = f"PurchaseTPMResource failed: {type(exc).__name__}"
        else:
            try:
                self._ledger.ended(record, State.BOUGHT, instance_id=receipt.instance_id, request_id=receipt.request_id)
            except LedgerError as err:
                raise ProviderError(
                    f"PurchaseTPMResource bought {receipt.instance_id} ({sending.describe()}), but {err}. It is "
                    f"billed by the hour: set adoptInstanceId: {receipt.instance_id} on this quota and run `pulumi up` "
                    "again"
                ) from None
            return Bought(receipt.instance_id, receipt.request_id, sending.release_time, receipt.answered)
        ticket = _Ticket(record, sending, sent, deadline, failure)
        with self._cond:
            self._tickets[record] = ticket  # before the ledger shows it open: a leader must find it here
        try:
            self._ledger.ended(record, State.UNCERTAIN, detail=failure, server_ended=server.latest(clock.wall()))
        except LedgerError as err:
            self._resolve(ticket, _Outcome.FAILED, self._unknown(ticket, f"the ledger failed ({err})"))
            return ticket
        self._recover(ticket)
        return ticket

    def _wait_for_gate(self, model: str, deadline: Deadline) -> float | None:
        """Wait while a recovery of the model holds its gate; when this waited, the moment it opened."""
        try:
            if self._ledger.gate_open(model):
                return None
            opened = self._ledger.wait_until(lambda: True if self._ledger.gate_open(model) else None, deadline)
        except LedgerError as err:
            raise ProviderError(f"{err}; the purchase was not sent, nothing was bought") from None
        if opened is None:
            raise ProviderError(
                f"timed out waiting for a purchase recovery of {model}; this create sent nothing and bought "
                "nothing — raise qianfan:timeoutSeconds or run `pulumi up` again"
            )
        return deadline.clock.monotonic()

    # -- recovering -------------------------------------------------------------------------------
    def _recover(self, ticket: _Ticket) -> None:
        """Settle the ticket: lead recovery rounds for its model, or wait for the one that runs."""
        model = ticket.spec.model
        clock = ticket.deadline.clock
        limit = Deadline(ticket.deadline.remaining() + HANDOVER_SECONDS, clock)
        with self._cond:
            while True:
                if ticket.outcome is not _Outcome.PENDING:
                    return
                if model not in self._leading:
                    self._leading.add(model)
                    break
                if limit.expired:
                    self._resolve(ticket, _Outcome.FAILED, self._unknown(ticket, "the recovery did not finish in time"))
                    self._end(ticket.record, State.UNKNOWN, detail=ticket.message)
                    return
                clock.wait(self._cond, limit.remaining())
        try:
            self._lead(model)
        finally:
            with self._cond:
                self._leading.discard(model)
                self._cond.notify_all()

    def _open_tickets(self, model: str) -> list[_Ticket]:
        with self._cond:
            return [t for t in self._tickets.values() if t.spec.model == model and t.outcome is _Outcome.PENDING]

    def _lead(self, model: str) -> None:
        """Take the model's gate and run rounds until every open ticket of this host is settled."""
        while True:
            tickets = self._open_tickets(model)
            if not tickets:
                return
            deadline = min((t.deadline for t in tickets), key=Deadline.remaining)
            hold = deadline.remaining() + HANDOVER_SECONDS
            try:
                pool = self._ledger.wait_until(lambda: self._ledger.take_gate(model, hold), deadline)  # noqa: B023
            except LedgerError as err:
                self._fail_open(tickets, f"the ledger failed ({err})")
                return
            if pool is None:
                self._fail_open(tickets, "other purchases of the model were still in flight")
                return
            try:
                self._round(model, deadline)
            finally:
                with contextlib.suppress(LedgerError):  # the gate lapses by itself at its deadline
                    self._ledger.leave_gate(model)

    def _round(self, model: str, deadline: Deadline) -> None:
        """List the model (gate taken) until this host's open tickets of it are settled (see the doc)."""
        settle = deadline.sub(self._settle_seconds)
        settled: list[float] = []  # request times of consistent listings after the settle time
        attempt = 0
        try:
            while True:
                if not self._open_tickets(model):
                    return
                listing = self._api.get(model, deadline, fresh=True)
                if listing.consistent:
                    self._assign(model, self._ledger.open_purchases(model), listing)
                    if settle.expired:
                        settled.append(listing.requested)
                        if len(settled) >= CONFIRM_LOOKS and settled[-1] - settled[0] >= CONFIRM_GAP_SECONDS:
                            self._conclude(model, listing)
                            return
                if not self._open_tickets(model):
                    return
                if not settle.expired:
                    settle.sleep(backoff(attempt, initial=0.5, cap=5.0), reserve=0.0)
                    attempt += 1
                    continue
                gap = CONFIRM_GAP_SECONDS if settled else backoff(attempt, initial=0.25, cap=1.0)
                if not deadline.sleep(gap, reserve=0.0):
                    why = "consistent listings could not confirm it before the deadline"
                    if not listing.consistent:
                        why = f"the listings disagreed ({listing.problem})"
                    self._fail_open(self._open_tickets(model), why)
                    return
                attempt += 1
        except Exception as exc:  # noqa: BLE001 - every pending create must hear what happened
            self._fail_open(self._open_tickets(model), f"listing failed too ({exc})")

    def _assign(self, model: str, pool: list[PurchaseRecord], listing: Listing) -> None:
        """Match the listing's unexplained instances to the pool's purchases; refuse to guess."""
        live = [i for i in listing.instances if not i.gone]
        claimed = self._ledger.claimed(i.instance_id for i in live)
        unclaimed = [i for i in live if i.instance_id not in claimed]
        with self._cond:
            tickets = {t.record: t for t in self._tickets.values() if t.outcome is _Outcome.PENDING}
        now = self._ledger.now()
        # Every host's evidence, not only this one's: a match that fits this host's sightings but
        # not another's would leave that host's purchase nothing it could have bought.
        sighted = self._ledger.sighted_before(model, pool)

        def possible(instance: Instance, record: PurchaseRecord) -> bool:
            if (record.id, instance.instance_id) in sighted:
                return False
            return self._possible(instance, record, tickets.get(record.id))

        for spec in sorted({Spec.of(r) for r in pool}, key=repr):
            members = self._by_priority([r for r in pool if Spec.of(r) == spec], tickets, now)
            if not any(r.id in tickets for r in members):
                continue
            candidates = [i for i in unclaimed if _matches(i, spec) and any(possible(i, r) for r in members)]
            matched = _match(members, candidates, possible)
            unexplained = [i for i in candidates if i.instance_id not in matched.values()]
            if unexplained:
                for record in members:
                    ticket = tickets.get(record.id)
                    if ticket is not None:
                        self._resolve(ticket, _Outcome.FAILED, self._ambiguous(ticket, candidates, len(members)))
                        self._end(record.id, State.UNKNOWN, detail=ticket.message)
                continue
            for record in members:
                instance_id = matched.get(record.id)
                if instance_id is None:
                    continue
                ticket = tickets.get(record.id)
                if ticket is not None:
                    self._ledger.ended(record.id, State.RECOVERED, instance_id=instance_id)
                    ticket.instance_id = instance_id
                    self._resolve(ticket, _Outcome.BOUGHT)
                elif record.abandoned(now):
                    self._ledger.ended(record.id, State.ORPHANED, instance_id=instance_id)

    def _by_priority(
        self, members: list[PurchaseRecord], tickets: dict[int, _Ticket], now: float
    ) -> list[PurchaseRecord]:
        """This host's open tickets first (oldest first), then other live hosts', then abandoned ones."""

        def rank(record: PurchaseRecord) -> tuple[int, int]:
            if record.id in tickets:
                return 0, record.id
            return (2 if record.abandoned(now) else 1), record.id

        return sorted(members, key=rank)

    def _possible(self, instance: Instance, record: PurchaseRecord, ticket: _Ticket | None) -> bool:
        """Could `instance` be what `record`'s purchase bought? (I1; no evidence means possible.)"""
        if ticket is not None and self._api.seen_before(record.model, instance.instance_id, ticket.sent):
            return False
        start = instance.start_time
        if start is None:
            return True
        if record.server_sent is not None and start + START_TIME_MARGIN_SECONDS < record.server_sent:
            return False
        return not (record.server_ended is not None and start > record.server_ended + LATE_COMMIT_SECONDS)

    def _conclude(self, model: str, listing: Listing) -> None:
        """After settling and confirming: this host's unmatched tickets bought nothing; abandoned
        purchases nobody's instance explained stay unknown (named by the audit)."""
        now = self._ledger.now()
        for ticket in self._open_tickets(model):
            self._end(ticket.record, State.NOT_BOUGHT, detail=f"confirmed by listings until {listing.requested:.1f}")
            self._resolve(ticket, _Outcome.NOT_BOUGHT)
        for record in self._ledger.open_purchases(model):
            if record.abandoned(now) and record.id not in self._tickets:
                self._end(record.id, State.UNKNOWN, detail="abandoned: no instance was found for it")

    def _fail_open(self, tickets: Sequence[_Ticket], why: str) -> None:
        for ticket in tickets:
            if ticket.outcome is _Outcome.PENDING:
                self._resolve(ticket, _Outcome.FAILED, self._unknown(ticket, why))
                self._end(ticket.record, State.UNKNOWN, detail=ticket.message)

    def _end(self, record: int, state: State, *, detail: str) -> None:
        """Record an outcome that claims nothing; a ledger failure here changes no create's result."""
        # On a failure the record stays open and lapses at its deadline; the create's error says what is known.
        with contextlib.suppress(LedgerError):
            self._ledger.ended(record, state, detail=detail)

    def _resolve(self, ticket: _Ticket, outcome: _Outcome, message: str = "") -> None:
        with self._cond:
            ticket.outcome, ticket.message = outcome, message
            self._tickets.pop(ticket.record, None)
            self._cond.notify_all()

    @staticmethod
    def _unknown(ticket: _Ticket, why: str) -> str:
        return (
            f"{ticket.failure}. Whether a quota was bought is unknown: {why}. Look for a new "
            f"{ticket.spec.describe()} in the Qianfan console (or run `python -m audit`) and put it under "
            "management with adoptInstanceId"
        )

    @staticmethod
    def _ambiguous(ticket: _Ticket, candidates: list[Instance], members: int) -> str:
        return (
            f"{ticket.failure}. Since the purchase, {len(candidates)} unexplained {ticket.spec.describe()} appeared "
            f"({describe_ids(candidates)}) for {members} lost purchase(s), and this provider cannot tell which one, "
            "if any, it bought; nothing was recorded. Set adoptInstanceId to the right one on this quota and run "
            "`pulumi up` again; release any other in the Qianfan console"
        )


def _matches(instance: Instance, spec: Spec) -> bool:
    """Could this instance be of `spec`? Fields Describe does not report do not exclude it."""
    if instance.units is not None and instance.units != spec.units:
        return False
    return not (instance.release_time_known and instance.release_time != spec.release_time)


def _match(
    members: Sequence[PurchaseRecord],
    candidates: Sequence[Instance],
    possible: Callable[[Instance, PurchaseRecord], bool],
) -> dict[int, str]:
    """A maximum matching of members to candidates they could have bought (Kuhn's algorithm).

    Members are tried in order, and a member once matched stays matched, so the matching covers
    the earliest members first: this host's tickets before other hosts' and abandoned ones. Each
    member takes the earliest-started candidate still free before any is moved (and the
    candidates are tried earliest first), so where the evidence cannot tell two purchases'
    instances apart, the earlier purchase gets the earlier instance rather than a swapped one.
    """
    ordered = sorted(candidates, key=lambda c: (c.start_time is None, c.start_time or 0.0))
    owner: dict[str, int] = {}  # instance id -> member id
    edges = {m.id: [c.instance_id for c in ordered if possible(c, m)] for m in members}

    def augment(member: int, visited: set[str]) -> bool:
        for instance_id in edges[member]:
            if instance_id in visited:
                continue
            visited.add(instance_id)
            if instance_id not in owner or augment(owner[instance_id], visited):
                owner[instance_id] = member
                return True
        return False

    for member in members:
        free = next((i for i in edges[member.id] if i not in owner), None)
        if free is not None:
            owner[free] = member.id
        else:
            augment(member.id, set())
    return {member: instance_id for instance_id, member in owner.items()}


class QianfanPurchaseApi:
    """The host's `PurchaseApi`: listings shared with its other operations, each purchase a write."""

    def __init__(self, client: QianfanClient, listings: Listings) -> None:
        self._client = client
        self._listings = listings

    @property
    def server_clock(self) -> ServerClock:
        return self._client.server_clock

    def get(
        self,
        model: str,
        deadline: Deadline,
        *,
        fresh: bool = False,
        not_before: float | None = None,
        since: float | None = None,
    ) -> Listing:
        return self._listings.get(model, deadline, fresh=fresh, not_before=not_before, since=since)

    def purchase(self, spec: Spec, deadline: Deadline, *, leave: float) -> Receipt:
        with self._listings.writing(spec.model, deadline) as write:
            receipt = self._client.purchase(spec.model, spec.units, spec.release_time, deadline, leave=leave)
        return dataclasses.replace(receipt, answered=write.ended)

    def seen_before(self, model: str, instance_id: str, moment: float) -> bool:
        return self._listings.seen_before(model, instance_id, moment)

    def seen_ids(self, model: str) -> frozenset[str]:
        return self._listings.seen_ids(model)
