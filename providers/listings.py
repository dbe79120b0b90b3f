"""Listing a model's instances: pagination, what one host has seen, shared listings, the finders.

Qianfan's answers do not always agree with each other: a lagging replica can answer empty, pages
can shift while they are read, a new instance can show up late. So a listing is not simply "the
instances": it is a `Listing`, which says whether it can be believed.

- **Whole** — its pages agree: no instance listed twice, no change of the reported total between
  pages, no marker repeated. A listing that is not whole is read again (at most `MAX_READS`
  times); if it never agrees, it is returned deduplicated and marked, and nothing is assigned or
  concluded absent from it.
- **Not lagging** — it lists every instance this host saw live in a listing answered before this
  one was requested, except those it has seen stopped, released itself, or found missing from
  `FORGET_AFTER_MISSES` whole listings in a row that list other instances (released outside, and
  hidden by Qianfan; an empty answer never counts, however many come in a row).

A listing that is whole and not lagging is *consistent*. Presence in any listing is evidence that an
instance exists; absence counts only in consistent listings (`find_instance`).

`Listings` also remembers, per model, when this host first saw each instance (`seen_before`): an
instance this host saw in a listing answered before a purchase was sent is not that purchase's.

**Sharing.** The host serves four RPCs at once, and the engine issues every create or refresh of a
stack at once: forty creates of one model used to cost forty listings before their purchases and
forty confirmations after. An operation that needs "the instances model M has" joins a listing of
M in flight, or reuses one that is recent enough, under these freshness rules:

- a confirmation after a write (purchase, resize, release change, release) uses only a listing
  requested after its write was answered (`since=` that moment), and a purchase recovery only one
  requested after it asked (`fresh=True`);
- no operation uses a listing requested before a write of this host to the same model was made,
  a write counting as made when it ended (Qianfan answered it, or the attempt failed);
- a refresh, a pre-purchase listing or an ownership check may use a listing at most
  `qianfan:listingMaxAgeSeconds` old, and no older than `not_before` when the caller gives one
  (0 turns sharing off: every operation lists on its own).

A listing that must be new and must be requested while writes of its model are in flight waits a
moment for them (at most `BATCH_SECONDS`), so that the confirmations of a wave of purchases share
one listing: the last purchase of the wave to be answered joins the listing the others started as
its answer came, however long its own bookkeeping took before it asked.
Each waiter keeps its own deadline and retry policy: a shared attempt that failed only because its
starter's deadline was short is not handed to a waiter with more time — that waiter lists itself.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from .client import DESCRIBE, QianfanClient
from .clock import ServerClock
from .deadline import Deadline
from .errors import Kind, ProviderError, QianfanError
from .instances import Instance, next_marker, parse_instances, reported_total

#: How long a listing that must be new waits for the writes of its model in flight to be answered.
BATCH_SECONDS = 0.2
#: A listing whose pages disagree is read this many times at most before it is given up as such.
MAX_READS = 3
#: The pause before reading a listing again whose pages disagreed.
REREAD_PAUSE_SECONDS = 0.2
#: Whole listings in a row that must lack an instance before this host stops expecting it.
FORGET_AFTER_MISSES = 3
#: What `find_instance` keeps for one more look after a pause; with less left it says what it saw.
LOOK_RESERVE_SECONDS = 1.0
#: An absence is believed after this many consistent listings lack the instance, ...
ABSENCE_LOOKS = 3
#: ... the later ones requested after these pauses (so a replica lagging for a moment cannot do it).
ABSENCE_PAUSES_SECONDS = (0.5, 1.0)
_MAX_PAGES = 100


@dataclass(frozen=True)
class Listing:
    """One read of a model's instances, and whether it can be believed (see the module doc)."""

    model: str
    instances: tuple[Instance, ...]
    requested: float  # the clock's monotonic time when the read began
    answered: float  # ... and when its last page arrived
    whole: bool = True
    lagging: bool = False
    problem: str | None = None
    #: Instances earlier reads of this listing showed (their pages disagreed, so they were read
    #: again): not this listing's, but proof that they existed by the time it answered.
    also_seen: frozenset[str] = frozenset()

    @property
    def consistent(self) -> bool:
        return self.whole and not self.lagging

    def find(self, instance_id: str) -> Instance | None:
        return next((i for i in self.instances if i.instance_id == instance_id), None)

    def ids(self) -> frozenset[str]:
        return frozenset(i.instance_id for i in self.instances)


def list_instances(client: QianfanClient, model: str, deadline: Deadline, *, retry: bool = True) -> Listing:
    """Every instance Qianfan lists for the model, following marker pages, read again while the
    pages disagree (at most MAX_READS times); duplicates are removed either way."""
    clock = deadline.clock
    shown: set[str] = set()
    for read in range(1, MAX_READS + 1):
        requested = clock.monotonic()
        instances, problem = _read_pages(client, model, deadline, retry)
        if problem is None or read == MAX_READS or not deadline.sleep(REREAD_PAUSE_SECONDS, reserve=0.0):
            also = frozenset(shown - {i.instance_id for i in instances})
            return Listing(
                model, instances, requested, clock.monotonic(), whole=problem is None, problem=problem, also_seen=also
            )
        shown.update(i.instance_id for i in instances)
    raise AssertionError("unreachable: the last read returns")  # pragma: no cover


def _read_pages(
    client: QianfanClient, model: str, deadline: Deadline, retry: bool
) -> tuple[tuple[Instance, ...], str | None]:
    """One pass over the pages: the instances (first sighting of each id) and what disagreed."""
    found: dict[str, Instance] = {}
    problem: str | None = None
    total: int | None = None
    markers: set[str] = set()
    marker: str | None = None
    for _ in range(_MAX_PAGES):
        extra = {"marker": marker} if marker else {}
        result = client.describe(model, deadline, retry=retry, **extra)
        for instance in parse_instances(result):
            if instance.instance_id in found:
                problem = problem or f"instance {instance.instance_id} was listed twice"
            else:
                found[instance.instance_id] = instance
        page_total = reported_total(result)
        if page_total is not None:
            if total is not None and page_total != total:
                problem = problem or f"the reported total changed from {total} to {page_total} between pages"
            total = page_total
        marker = next_marker(result)
        if not marker:
            if problem is None and total is not None and total != len(found):
                problem = f"the pages listed {len(found)} instances, not the {total} they reported"
            return tuple(found.values()), problem
        if marker in markers:
            return tuple(found.values()), problem or "the pages repeated a marker"
        markers.add(marker)
    # A partial listing would make a live instance look absent, or a bought one look missing.
    raise QianfanError(
        DESCRIBE,
        Kind.BAD_ANSWER,
        message=f"the listing of {model} had more than {_MAX_PAGES} pages; it was not read whole",
    )


class Lister(Protocol):
    """Where finders and the purchase recovery get listings from: `Listings` in the host."""

    def get(
        self,
        model: str,
        deadline: Deadline,
        *,
        fresh: bool = False,
        not_before: float | None = None,
        since: float | None = None,
    ) -> Listing: ...


@dataclass
class Write:
    """A write of this host to a model; `ended` is set (the clock's monotonic time) as it ends."""

    ended: float | None = None


@dataclass
class _Fetch:
    """One attempt at listing a model, shared by whoever asked while it was usable."""

    requested_at: float
    done: bool = False
    #: True when the attempt failed as its starter's deadline ran out: not Qianfan's answer.
    limited: bool = False
    listing: Listing | None = None
    error: Exception | None = None


@dataclass
class _Seen:
    """What this host has seen of one model's instances (monotonic times of answers)."""

    first: dict[str, float] = field(default_factory=dict)
    live: dict[str, float] = field(default_factory=dict)
    misses: Counter[str] = field(default_factory=Counter)
    gone: set[str] = field(default_factory=set)


class Listings:
    """The listings of one provider host. Thread-safe; `fetches` counts the listings read."""

    def __init__(self, client: QianfanClient, max_age_seconds: float) -> None:
        self._client = client
        self._max_age = max_age_seconds
        self._cond = threading.Condition()
        self._latest: dict[str, _Fetch] = {}
        self._writes: Counter[str] = Counter()
        self._last_write: dict[str, float] = {}
        self._seen: dict[str, _Seen] = {}
        self._refused: dict[str, str] = {}
        self.fetches = 0

    @property
    def server_clock(self) -> ServerClock:
        return self._client.server_clock

    # -- writes and what they tell --------------------------------------------------------------
    @contextmanager
    def writing(self, model: str, deadline: Deadline) -> Iterator[Write]:
        """Mark a write to `model` in flight; once it ends, listings requested before are not used.
        The `Write` says when it ended: the moment a confirmation's listing must be requested after."""
        write = Write()
        with self._cond:
            self._writes[model] += 1
        try:
            yield write
        finally:
            with self._cond:
                self._writes[model] -= 1
                write.ended = self._last_write[model] = deadline.clock.monotonic()
                self._cond.notify_all()

    def released(self, model: str, instance_id: str) -> None:
        """This host released the instance: later listings may lack it without lagging."""
        with self._cond:
            self._seen.setdefault(model, _Seen()).gone.add(instance_id)

    def seen_ids(self, model: str) -> frozenset[str]:
        """Every instance of the model this host has seen listed, live or not."""
        with self._cond:
            return frozenset(self._seen.get(model, _Seen()).first)

    def seen_before(self, model: str, instance_id: str, moment: float) -> bool:
        """Did a listing answered before `moment` (monotonic) show this instance to this host?"""
        with self._cond:
            first = self._seen.get(model, _Seen()).first.get(instance_id)
        return first is not None and first < moment

    # -- reading --------------------------------------------------------------------------------
    def get(
        self,
        model: str,
        deadline: Deadline,
        *,
        fresh: bool = False,
        not_before: float | None = None,
        since: float | None = None,
    ) -> Listing:
        """A listing of `model` requested recently enough (see the module doc): `fresh`, requested
        after this call; `since`, requested after that moment (a write's answer); `not_before`, a
        shared listing no older than that moment nor than the age limit."""
        asked = deadline.clock.monotonic()
        newer = asked if fresh else since
        return self._client.with_retries(DESCRIBE, lambda: self._once(model, deadline, newer, not_before), deadline)

    def _once(self, model: str, deadline: Deadline, newer: float | None, not_before: float | None) -> Listing:
        clock = deadline.clock
        while True:
            with self._cond:
                floor = self._floor(model, clock.monotonic(), newer, not_before)
                fetch = self._usable(model, floor)
                if fetch is None and newer is not None and self._writes[model] > 0:
                    batch = deadline.sub(BATCH_SECONDS)
                    while self._writes[model] > 0 and not batch.expired:
                        clock.wait(self._cond, batch.remaining())
                    floor = self._floor(model, clock.monotonic(), newer, not_before)
                    fetch = self._usable(model, floor)
                starter = fetch is None
                if fetch is None:
                    fetch = self._latest[model] = _Fetch(clock.monotonic())
                    self.fetches += 1
            if starter:
                self._run(fetch, model, deadline)
            elif not self._await(fetch, deadline):
                raise QianfanError(
                    DESCRIBE, Kind.NOT_SENT, message="a shared listing did not answer before this operation's deadline"
                )
            error = fetch.error
            if not starter and fetch.limited:
                continue  # the starter ran out of its own time: list with this operation's own
            if isinstance(error, QianfanError):
                raise error.replace()  # each waiter raises its own copy of the shared failure
            if error is not None:
                raise error
            assert fetch.listing is not None
            return fetch.listing

    def _run(self, fetch: _Fetch, model: str, deadline: Deadline) -> None:
        listing: Listing | None = None
        error: Exception | None = None
        try:
            listing = list_instances(self._client, model, deadline, retry=False)
        except Exception as exc:  # noqa: BLE001 - handed to every operation that waited on it
            error = exc
        with self._cond:
            if listing is not None:
                listing = self._record(listing)
            fetch.limited = (
                isinstance(error, QianfanError) and error.kind in _CUT_SHORT and deadline.remaining() < _CUT_MARGIN
            )
            fetch.listing, fetch.error, fetch.done = listing, error, True
            self._cond.notify_all()

    def _await(self, fetch: _Fetch, deadline: Deadline) -> bool:
        with self._cond:
            while not fetch.done:
                if deadline.expired:
                    return False
                deadline.clock.wait(self._cond, deadline.remaining())
        return True

    def _record(self, listing: Listing) -> Listing:
        """Remember what the listing showed; mark it lagging if it lost instances seen before (lock held)."""
        seen = self._seen.setdefault(listing.model, _Seen())
        shown = listing.ids()
        expected = {i for i, at in seen.live.items() if at < listing.requested and i not in seen.gone}
        missing = sorted(expected - shown)
        for instance_id in listing.also_seen:
            seen.first.setdefault(instance_id, listing.answered)
        for instance in listing.instances:
            seen.first.setdefault(instance.instance_id, listing.answered)
            if instance.gone:
                seen.gone.add(instance.instance_id)
                seen.live.pop(instance.instance_id, None)
            else:
                seen.live[instance.instance_id] = listing.answered
                seen.misses.pop(instance.instance_id, None)
        # An empty answer is what a lagging replica gives, any number of times in a row: only a
        # listing that shows other instances is evidence that one it lacks is really gone.
        if listing.whole and listing.instances:
            for instance_id in missing:
                seen.misses[instance_id] += 1
                if seen.misses[instance_id] >= FORGET_AFTER_MISSES:
                    seen.live.pop(instance_id, None)
                    del seen.misses[instance_id]
        if not missing:
            return listing
        shown_missing = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
        return Listing(
            listing.model,
            listing.instances,
            listing.requested,
            listing.answered,
            whole=listing.whole,
            lagging=True,
            problem=listing.problem or f"it lacks {shown_missing}, listed live before",
            also_seen=listing.also_seen,
        )

    def _floor(self, model: str, now: float, newer: float | None, not_before: float | None) -> float:
        """The earliest request time a listing may have to serve this operation."""
        oldest = newer if newer is not None else now - self._max_age
        if not_before is not None:
            oldest = max(oldest, not_before)
        return max(oldest, self._last_write.get(model, -math.inf))

    def _usable(self, model: str, floor: float) -> _Fetch | None:
        """The latest listing of `model`, if this operation may share it (never with sharing off)."""
        if self._max_age <= 0:
            return None
        fetch = self._latest.get(model)
        if fetch is None or fetch.requested_at < floor or fetch.error is not None:
            return None
        return fetch

    # -- models Qianfan refuses -------------------------------------------------------------------
    def refusal(self, model: str) -> str | None:
        with self._cond:
            return self._refused.get(model)

    def refused(self, model: str, reason: str) -> None:
        with self._cond:
            self._refused[model] = reason


#: Failures of a shared attempt that its starter's short deadline may have caused ...
_CUT_SHORT = frozenset({Kind.NOT_SENT, Kind.NO_ANSWER})
#: ... when it had less than this left as the attempt failed.
_CUT_MARGIN = 1.0


# -- finders ----------------------------------------------------------------------------------------
def look(
    lister: Lister,
    model: str,
    instance_id: str,
    deadline: Deadline,
    *,
    fresh: bool = False,
    since: float | None = None,
) -> Instance | None:
    """One look: the instance in a listing of its model, or None when this listing lacks it."""
    return lister.get(model, deadline, fresh=fresh, since=since).find(instance_id)


def find_instance(
    lister: Lister, model: str, instance_id: str, deadline: Deadline, *, fresh: bool = False
) -> Instance | None:
    """The instance as Qianfan reports it, or None once its absence is believable.

    Presence in any listing is believed at once. An absence is believed only after ABSENCE_LOOKS
    consistent listings lack it, the later ones requested after pauses, so that neither a glitch
    of one answer, a lagging replica nor shifting pages can make a live, billing instance look
    gone. If the deadline ends first, this raises rather than guess.
    """
    absences = 0
    pauses = iter(ABSENCE_PAUSES_SECONDS)
    problems: list[str] = []
    while True:
        listing = lister.get(model, deadline, fresh=fresh)
        instance = listing.find(instance_id)
        if instance is not None:
            return instance
        if listing.consistent:
            absences += 1
            if absences >= ABSENCE_LOOKS:
                return None
        elif listing.problem:
            problems.append(listing.problem)
        fresh = True
        # A look needs time of its own: one begun with nothing left would fail as "not sent" and
        # hide what the looks so far showed.
        if not deadline.sleep(next(pauses, ABSENCE_PAUSES_SECONDS[-1]), reserve=LOOK_RESERVE_SECONDS):
            why = f" (listings disagreed: {problems[-1]})" if problems else ""
            raise ProviderError(
                f"could not tell whether TPM quota {instance_id} still exists: {absences} of {ABSENCE_LOOKS} "
                f"listings of {model} needed lacked it before the operation's deadline{why}; nothing was changed — "
                "raise qianfan:timeoutSeconds or try again"
            )


@dataclass(frozen=True)
class Elsewhere:
    """Where else an instance lives, and which models could not be looked at."""

    found: tuple[str, Instance] | None
    skipped: tuple[tuple[str, str], ...] = ()

    def note(self) -> str:
        """What a message says about the models that could not be looked at."""
        if not self.skipped:
            return ""
        names = ", ".join(model for model, _ in self.skipped)
        them = "it" if len(self.skipped) == 1 else "them"
        return f"; {names} could not be searched (Qianfan refused to list {them}: {self.skipped[0][1]})"


def find_elsewhere(listings: Listings, instance_id: str, models: Iterable[str], deadline: Deadline) -> Elsewhere:
    """The live instance with this id under another model, if any (state edited, or a wrong model).

    Describe needs a model, so this costs one listing per model: it runs only on the rare path where
    an instance is missing under the model the state names. A model Qianfan refuses to list (Baidu
    retires ids) is skipped and named, once per host, instead of failing the whole search.
    """
    skipped: list[tuple[str, str]] = []
    for model in models:
        refusal = listings.refusal(model)
        if refusal is None:
            try:
                instance = look(listings, model, instance_id, deadline)
            except QianfanError as err:
                if err.kind is not Kind.REJECTED:
                    raise
                refusal = str(err)
                listings.refused(model, refusal)
            else:
                if instance is not None and not instance.gone:
                    return Elsewhere((model, instance), tuple(skipped))
                continue
        skipped.append((model, refusal))
    return Elsewhere(None, tuple(skipped))
