"""A deterministic simulation of concurrent creates, explored exhaustively (FoundationDB-style).

The purchase recovery (providers/purchase.py) must keep its invariants however the API calls of
concurrent creates interleave and whatever each answer is. Random trials find the common
orderings; this harness enumerates *all* of them, within stated bounds, and checks every one.

**The engine.** Each create runs in a real thread (threads are reused from run to run), but only
one runs at a time: it holds the baton until it reaches a *yield point*, where it picks who runs
next and hands the baton over (or goes on, if it picked itself). Time is virtual
(`VirtualClock`, the `providers.clock.Clock` seam): it advances only when no thread can run —
every live thread sleeps or waits — and then jumps to the earliest wake-up, so a run takes
milliseconds of real time however many virtual seconds its settle times and backoffs span.
Every reading of the clock advances it by `TICK_SECONDS`, so two readings are never equal (as on
a real monotonic clock); it stands for the time computation takes. `Condition` waits go through
`Clock.wait`: the simulated wait releases the condition as `Condition.wait` does, and returns
when notified or at its timeout — never spuriously, which is safe because every `Clock.wait`
caller in providers/ re-checks its predicate in a loop (`Purchases._recover`,
`Ledger.wait_until`, `Listings._once` and `Listings._await`, read for this), so a spurious
wake-up could only add schedules that end the same. A thread that blocks outside the simulation
(a real lock held across a yield point) is reported with every thread's stack, not waited for;
a thread that busy-waits (reads the clock `SPIN_READS` times without reaching a yield point) is
reported too, and taken — at a reading where it holds no shared lock — as polling every
`SPIN_POLL_SECONDS` (growing pauses), which is what a real spinning thread amounts to for the
others.

**What "every schedule" covers.** A schedule is a sequence of decisions at these choice points;
the exploration runs each one once, depth first, every run from scratch (stateless model
checking: the decisions replay, and a run that does not replay is refused):

- *Who runs next*, whenever two or more threads can run: at the start, at every API call (a
  Describe before it is answered; a Purchase before Qianfan receives it, and again after Qianfan
  acted on it and before its answer arrives), and whenever a sleep ends or a waiter is woken
  while another thread can run. Running another thread where the last one could go on is a
  *preemption*; `Config.preemptions` bounds how many a schedule has (None: no bound, every
  interleaving). Switching at a thread's sleep, wait or end is free and always explored.
  Creates are identical but for their names, so of those not yet started at one moment only the
  first is offered (the schedule that starts B first is the same one with the names swapped).
- *What each API call answers*, from the configuration's menu: a Purchase answered, committed
  with its answer lost (a 5xx), lost before committing (the connection dropped, nothing bought),
  refused (403 AccessDenied, nothing bought), committed and then no answer until the request
  timeout, or throttled (429); a Describe consistent, empty (a lagging replica), with one item
  twice (`duplicated`: the real `listings.list_instances` sees it, marks the read not whole and
  reads again), lacking the newest instance (`stale`: an instance that shows up late), or
  failing (500). At most `Config.listing_faults` Describe answers of a schedule are not
  consistent and at most `Config.throttles` purchases throttled (without bounds, the polling and
  the retries make the tree endless); the other purchase answers are not bounded. A listing
  taken while another thread's purchase commits reads, to every reader, as a stale one answered
  after it, so a Describe is one yield point.

Code between two yield points runs atomically; interleavings *inside* it are not explored. That
is sound for the code under test because everything its threads share sits behind locks and
ledger transactions that no thread holds across a yield point (else the run would be reported
as blocked).

**The code under test is the host's own stack**, not a stand-in: `Purchases` over
`QianfanPurchaseApi` over the shared `Listings` (sightings and `seen_before` from the listings
actually served, lagging detection, sharing) over a real `QianfanClient` whose SDK call is the
fake `Qianfan` below, with the in-memory SQLite ledger. Qianfan's clock is the virtual wall clock
plus `Config.server_offset`; every answer carries its `Date` header (whole seconds), so
`ServerClock` measures the offset to ±1 s as on a good day, and every instance's `startTime` is
a whole second of Qianfan's clock. Backoff jitter is drawn from a generator seeded per run.

**Checked in every schedule** (`check`), each violation with its kind: every create ends within
its deadline plus `HANDOVER_SECONDS`; I1 — no instance goes to two creates, and an instance a
create returns was bought by a purchase that Qianfan received no earlier than that create's
last purchase; no instance that existed before (an *outsider*: another stack's, bought before
the creates started) is returned, except in the case purchase.py documents as unknowable (its
`startTime` is within the clock tolerance of the purchase and no answer before the purchase
showed it), which is counted as *excused*, and so is what that take displaces (the doc says so
too): the instance that create bought, left unnamed or returned to another lost purchase of the
spec that nothing could tell it from — whose own instance is displaced in turn — at most one
unnamed instance per such chain, bought in it; no unnamed orphan —
every instance a create's purchase bought is returned by exactly one create or named in a
create's error; a create sends at most two purchases that both went unanswered; the ledger is
left settled (no open purchase, the gate open); no create raises anything but the provider's
own errors.
"""

from __future__ import annotations

import functools
import math
import random
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import formatdate
from enum import Enum
from types import FrameType, ModuleType
from typing import Any, ClassVar

import requests

import providers.deadline as deadline_module
from providers.client import QianfanClient
from providers.clock import Clock
from providers.deadline import Deadline
from providers.errors import ProviderError, QianfanError
from providers.ledger import Ledger, Owner, SqliteBackend
from providers.listings import Listings
from providers.purchase import HANDOVER_SECONDS, START_TIME_MARGIN_SECONDS, Purchases, QianfanPurchaseApi, Spec
from providers.settings import Secret, Settings

#: Each reading of the virtual clock advances it this much (see the module doc).
TICK_SECONDS = 1e-6
#: Seconds since the epoch at virtual time 0 (a whole second: 2026-09-21T14:13:20Z).
WALL_EPOCH = 1_790_000_000.0
#: A thread holding the baton longer than this in real time blocks outside the simulation.
REAL_SECONDS_PER_STEP = 20.0
#: A thread that reads the clock this often without reaching a yield point busy-waits ...
SPIN_READS = 64
#: ... and is taken, at its next reading while it holds no shared lock, as polling with pauses
#: growing from the first to the second (as `Ledger.wait_until` means to poll);
SPIN_POLL_SECONDS = (0.05, 0.5)
#: one that reads it this often without ever being at such a point is cut short.
STUCK_READS = 100 * SPIN_READS


class SimulationError(Exception):
    """The harness itself failed (a thread blocked outside it, a run that did not replay)."""


def _taken_lock() -> threading.Lock:
    """A lock used as a binary semaphore (faster than threading.Semaphore): released to hand over."""
    lock = threading.Lock()
    lock.acquire()
    return lock


class _Worker:
    """A daemon thread that runs actor after actor: starting a thread costs about what a short
    schedule does, and an exploration runs thousands."""

    _idle: ClassVar[list[_Worker]] = []
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        self._task: tuple[Callable[[], None], threading.Event] | None = None
        self._ready = _taken_lock()
        threading.Thread(target=self._loop, name="simulated thread", daemon=True).start()

    @classmethod
    def start(cls, task: Callable[[], None]) -> threading.Event:
        """Run `task` on an idle worker (or a new one); the event is set when it has ended."""
        with cls._lock:
            worker = cls._idle.pop() if cls._idle else None
        worker = worker or cls()
        done = threading.Event()
        worker._task = (task, done)
        worker._ready.release()
        return done

    def _loop(self) -> None:
        while True:
            self._ready.acquire()
            assert self._task is not None
            task, done = self._task
            try:
                task()
            finally:
                with _Worker._lock:
                    _Worker._idle.append(self)
                done.set()


class _Abort(BaseException):
    """Unwinds a thread whose run was cut short (a BaseException: the product catches Exception)."""


class _State(Enum):
    READY = "ready"
    RUNNING = "running"
    SLEEPING = "sleeping"
    WAITING = "waiting"
    DONE = "done"


@dataclass(eq=False)
class Actor:
    """One simulated thread: its body, where it is, and how it ended."""

    name: str
    body: Callable[[], object]
    start: float
    go: threading.Lock = field(default_factory=lambda: _taken_lock())
    state: _State = _State.SLEEPING
    wake: float | None = None
    waiter: _Waiter | None = None
    result: object = None
    error: BaseException | None = None
    ended: float | None = None
    aborted: bool = False
    ident: int | None = None
    reads: int = 0  # clock readings since it last got the baton
    spinning: int = 0  # busy waits in a row, each taken as a poll
    started: bool = False


class _Waiter:
    """Stands in a Condition's waiter queue for an actor, where `Condition.wait` puts a lock:
    `notify` calls `release()`, synchronously, in the notifying thread."""

    def __init__(self, scheduler: Scheduler, actor: Actor) -> None:
        self._scheduler = scheduler
        self._actor = actor
        self.released = False

    def release(self) -> None:
        if self.released:
            raise RuntimeError("released twice")  # what a lock says; Condition.notify skips it
        self.released = True
        self._scheduler.wake(self._actor)


Decide = Callable[[str, Sequence[str]], int]


class Scheduler:
    """Runs actors one at a time in virtual time; `decide` picks at every choice point.

    The baton passes from thread to thread directly: a thread that reaches a yield point picks
    who runs next (advancing virtual time when nobody can run) and wakes it, or simply goes on if
    it picked itself. The thread that called `run` only starts the first one and watches.
    """

    def __init__(
        self,
        decide: Decide,
        preemptions: int | None = None,
        *,
        symmetric: bool = False,
        clock: VirtualClock | None = None,
    ) -> None:
        self._decide = decide
        #: The actors are identical but for their names: not-yet-started ones are interchangeable.
        self.symmetric = symmetric
        #: At most this many preemptions per run (None: no bound); see `_next`.
        self.preemptions = preemptions
        self.preempted = 0
        self.clock = clock or VirtualClock()
        self.clock.scheduler = self
        self.now = 0.0
        self.actors: list[Actor] = []
        self.journal: list[str] = []
        self.steps = 0
        #: True while the running thread holds no lock another thread may need (set by the scenario).
        self.quiet: Callable[[], bool] = lambda: False
        #: Where threads busy-waited, and threads cut short (both are findings of the run).
        self.spins: list[str] = []
        self.stuck: list[str] = []
        #: The most clock readings of a step that reached a yield point (to keep SPIN_READS honest).
        self.most_reads = 0
        self._by_thread: dict[int, Actor] = {}
        self._finished = threading.Event()
        self._aborting = False
        self._error: BaseException | None = None
        self._last: Actor | None = None
        self._horizon = math.inf
        self._max_steps = 0

    # -- for the scenario ------------------------------------------------------------------------
    def spawn(self, name: str, body: Callable[[], object], start: float = 0.0) -> Actor:
        actor = Actor(name, body, start, wake=start)
        self.actors.append(actor)
        return actor

    def choose(self, label: str, options: Sequence[str], *, note: bool = True) -> int:
        """A choice point: which of `options` happens (journalled unless the caller says what it did)."""
        if len(options) == 1:
            return 0
        try:
            picked = self._decide(label, options)
        except SimulationError as err:
            # Raised in an actor, it must not be taken for a failed API call by the product's handlers.
            self._error = self._error or err
            raise _Abort from None
        if note:
            self.note(f"{label}: {options[picked]}")
        return picked

    def note(self, text: str) -> None:
        self.journal.append(f"t={self.now:8.3f}  {text}")

    @property
    def current(self) -> Actor:
        actor = self._by_thread.get(threading.get_ident())
        if actor is None:
            raise SimulationError("a simulated call was made outside an actor thread")
        return actor

    def run(self, horizon: float, max_steps: int = 20_000) -> None:
        """Run until every actor ended, or none can run again (deadlock), or past `horizon`."""
        self._horizon, self._max_steps = horizon, max_steps
        workers = [_Worker.start(functools.partial(self._main, a)) for a in self.actors]
        try:
            self._hand_on(None)
            seen = -1
            while not self._finished.wait(REAL_SECONDS_PER_STEP):
                if self.steps == seen:
                    raise SimulationError(
                        f"no thread reached a yield point within {REAL_SECONDS_PER_STEP:g} s of real time: one blocks "
                        f"outside the simulation (a real lock held across a yield point, or a real sleep):\n"
                        + self._stacks()
                    )
                seen = self.steps
        finally:
            self._aborting = True
            for actor in self.actors:
                if actor.state is not _State.DONE and actor.go.locked():
                    actor.go.release()
            for ended in workers:
                ended.wait(REAL_SECONDS_PER_STEP)
        if self._error is not None:
            raise self._error

    def _stacks(self) -> str:
        frames = sys._current_frames()
        where = ""
        for actor in self.actors:
            frame = frames.get(actor.ident or 0)
            stack = "".join(traceback.format_stack(frame)[-6:]) if frame is not None else "(no stack)\n"
            where += f"--- {actor.name} ({actor.state.value}):\n{stack}"
        return where

    # -- the baton ---------------------------------------------------------------------------------
    def _main(self, actor: Actor) -> None:
        actor.ident = threading.get_ident()
        self._by_thread[actor.ident] = actor
        actor.go.acquire()
        try:
            if self._aborting:
                raise _Abort
            actor.result = actor.body()
        except _Abort:
            actor.aborted = True
        except BaseException as exc:  # noqa: BLE001 - the checks look at what a create raised
            actor.error = exc
        finally:
            if actor.reads <= SPIN_READS:
                self.most_reads = max(self.most_reads, actor.reads)
            actor.state = _State.DONE
            if not actor.aborted:
                actor.ended = self.now
            if not self._aborting:
                self._hand_on(actor)

    def _park(self, actor: Actor, state: _State, wake: float | None) -> None:
        """Give the baton on (perhaps to this very thread), and wait for it."""
        if actor.reads <= SPIN_READS:  # a proper yield point: any busy wait is over
            self.most_reads = max(self.most_reads, actor.reads)
            actor.spinning = 0
        actor.state, actor.wake = state, wake
        if self._hand_on(actor) is actor:
            return
        actor.go.acquire()
        if self._aborting:
            raise _Abort

    def _hand_on(self, current: Actor | None) -> Actor | None:
        """Pick who runs next and wake it (unless it is `current`); None when the run is over."""
        try:
            chosen = self._dispatch()
        except BaseException as exc:  # noqa: BLE001 - handed to the thread that called run()
            self._error = self._error or exc
            chosen = None
        if chosen is None:
            self._finished.set()
        elif chosen is not current:
            chosen.go.release()
        return chosen

    def _dispatch(self) -> Actor | None:
        while True:
            ready = [a for a in self.actors if a.state is _State.READY]
            if not ready:
                timed = [a for a in self.actors if a.state in (_State.SLEEPING, _State.WAITING) and a.wake is not None]
                if not timed:
                    return None  # every actor ended, or the rest wait for ever
                wake = min(a.wake for a in timed if a.wake is not None)
                if wake > self._horizon:
                    return None
                self.now = max(self.now, wake)
                for actor in timed:
                    if actor.wake is not None and actor.wake <= self.now:
                        self._time_out(actor)
                continue
            chosen = self._next(ready, self._last)
            self._last = chosen
            chosen.state, chosen.reads, chosen.started = _State.RUNNING, 0, True
            self.steps += 1
            if self.steps > self._max_steps:
                self.stuck.append(f"the run took more than {self._max_steps} steps (a livelock?)")
                return None
            return chosen

    def _next(self, ready: list[Actor], last: Actor | None) -> Actor:
        """Who runs next: the one that ran last, if it can go on, is the first option; running
        another instead is a preemption (at most `preemptions`). With `symmetric`, actors that
        have not started and start at the same moment are interchangeable: only the first of them
        is offered (a schedule that starts B before A is this one with the names swapped)."""
        options: list[Actor] = []
        fresh: set[float] = set()
        for actor in ready:
            if self.symmetric and not actor.started:
                if actor.start in fresh:
                    continue
                fresh.add(actor.start)
            options.append(actor)
        if last is not None and last in options:
            options.remove(last)
            if self.preemptions is not None and self.preempted >= self.preemptions:
                return last
            options.insert(0, last)
        if len(options) == 1:
            return options[0]
        picked = options[self.choose("runs next", [a.name for a in options])]
        if last is not None and last.state is _State.READY and picked is not last:
            self.preempted += 1
        return picked

    def wake(self, actor: Actor) -> None:
        if actor.state is _State.WAITING:
            actor.state, actor.wake = _State.READY, None

    def _time_out(self, actor: Actor) -> None:
        waiter = actor.waiter
        if waiter is not None and not waiter.released:
            waiter.released = True
            # The waiter leaves the condition's queue when its thread runs again (`wait`'s finally).
        actor.state, actor.wake = _State.READY, None

    # -- yield points (called in actor threads) ----------------------------------------------------
    def read(self) -> float:
        """The clock, advanced by a tick; a thread that reads it SPIN_READS times without yielding
        is busy-waiting, which on real threads burns a core while the others go on: it is parked
        as if it polled (SPIN_POLL_SECONDS), at a reading where that deadlocks nobody."""
        self.now += TICK_SECONDS
        actor = self._by_thread.get(threading.get_ident())
        if actor is None or self._aborting or actor.state is not _State.RUNNING:
            return self.now
        actor.reads += 1
        if actor.reads > SPIN_READS and self.quiet():
            if not actor.spinning:  # journalled once per busy wait, however long it lasts
                where = _product_frame()
                self.spins.append(f"{actor.name} at {where}")
                self.note(f"{actor.name} busy-waits ({actor.reads} clock readings without yielding, at {where})")
            low, high = SPIN_POLL_SECONDS
            pause = min(high, low * 2**actor.spinning)
            actor.spinning += 1
            self._park(actor, _State.SLEEPING, self.now + pause)
        elif actor.reads > STUCK_READS:
            self.stuck.append(
                f"{actor.name} read the clock {actor.reads} times without yielding, at {_product_frame()}"
            )
            raise _Abort
        return self.now

    def pause(self) -> None:
        """A yield point that blocks nothing: someone else may run first."""
        if self._aborting:
            raise _Abort
        self._park(self.current, _State.READY, None)

    def sleep(self, seconds: float) -> None:
        if self._aborting:
            raise _Abort
        if seconds > 0:
            self._park(self.current, _State.SLEEPING, self.now + seconds)

    def wait(self, cond: threading.Condition, timeout: float | None) -> None:
        """What `Condition.wait` does, in virtual time: release `cond` fully, wait for a notify or
        the timeout, take `cond` again. (Relies on CPython's pure-Python Condition.)"""
        if self._aborting:
            raise _Abort
        actor = self.current
        waiter = _Waiter(self, actor)
        waiters = cond._waiters  # type: ignore[attr-defined]
        waiters.append(waiter)
        saved = cond._release_save()  # type: ignore[attr-defined]
        actor.waiter = waiter
        try:
            self._park(actor, _State.WAITING, None if timeout is None else self.now + max(0.0, timeout))
        finally:
            actor.waiter = None
            cond._acquire_restore(saved)  # type: ignore[attr-defined]
            if waiter in waiters:
                waiters.remove(waiter)


def _product_frame() -> str:
    """Where in providers/ the running thread is: its three innermost frames there (past the
    clock and deadline helpers it reads the time through), innermost first."""
    shown: list[str] = []
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and len(shown) < 3:
        path = frame.f_code.co_filename
        if "/providers/" in path and not path.endswith(("/clock.py", "/deadline.py")):
            shown.append(f"{path.rsplit('/providers/', 1)[1]}:{frame.f_lineno} {frame.f_code.co_name}")
        frame = frame.f_back
    return " < ".join(shown) or "(outside providers/)"


class VirtualClock(Clock):
    """The `Clock` seam in virtual time: sleeps and waits are yield points of the scheduler."""

    #: The run it measures (one clock serves a whole exploration, run after run).
    scheduler: Scheduler

    def monotonic(self) -> float:
        return self.scheduler.read()

    def wall(self) -> float:
        return WALL_EPOCH + self.scheduler.read()

    def sleep(self, seconds: float) -> None:
        self.scheduler.sleep(seconds)

    def wait(self, cond: threading.Condition, timeout: float | None) -> None:
        self.scheduler.wait(cond, timeout)


# -- exhaustive exploration -------------------------------------------------------------------------
@dataclass(frozen=True)
class Decision:
    label: str
    options: tuple[str, ...]
    picked: int

    @property
    def option(self) -> str:
        return self.options[self.picked]


class Replay:
    """Decides as a schedule's prefix says, then the first option; records every decision."""

    def __init__(self, prefix: Sequence[Decision]) -> None:
        self._prefix = prefix
        self.decisions: list[Decision] = []

    def __call__(self, label: str, options: Sequence[str]) -> int:
        index = len(self.decisions)
        if index < len(self._prefix):
            expected = self._prefix[index]
            if (expected.label, expected.options) != (label, tuple(options)):
                raise SimulationError(
                    f"the run did not replay: decision {index} was {expected.label} {expected.options}, "
                    f"now {label} {tuple(options)} (something in the run is not deterministic)"
                )
            picked = expected.picked
        else:
            picked = 0
        self.decisions.append(Decision(label, tuple(options), picked))
        return picked


def schedules(run: Callable[[Replay], None], *, limit: int) -> Iterator[list[Decision]]:
    """Run every schedule once, depth first, each from scratch (stateless model checking): the
    next schedule replays the last one up to its deepest decision with an option left, and takes
    that option. Yields each schedule's decisions after its run."""
    prefix: list[Decision] = []
    for _ in range(limit):
        replay = Replay(prefix)
        run(replay)
        yield replay.decisions
        decisions = replay.decisions
        depth = len(decisions) - 1
        while depth >= 0 and decisions[depth].picked + 1 >= len(decisions[depth].options):
            depth -= 1
        if depth < 0:
            return
        last = decisions[depth]
        prefix = [*decisions[:depth], Decision(last.label, last.options, last.picked + 1)]
    raise SimulationError(f"more than {limit} schedules: the configuration is bigger than its bound")


# -- the world: Qianfan, as the SDK's call_action -----------------------------------------------------
MODEL = "ernie-speed-8k"
SPEC = Spec(MODEL, 1, None)
OUTSIDER = "outsider"
SETTINGS = Settings(access_key=Secret("AKsimulation"), secret_key=Secret("SKsimulation"), timeout_seconds=30.0)

# Purchase answers.
ANSWERED = "answered"
LOST = "committed, answer lost"
NOTHING = "lost before committing"
REFUSED = "refused"
HANG = "committed, then no answer until the request timeout"
THROTTLED = "throttled"
#: Outcomes after which Qianfan holds a new instance.
COMMITS = frozenset({ANSWERED, LOST, HANG})
#: Outcomes whose answer does not say what happened.
UNANSWERED = frozenset({LOST, NOTHING, HANG})

# Describe answers.
CONSISTENT = "consistent"
EMPTY = "empty"
DUPLICATED = "duplicated"
STALE = "stale"
FAILED = "failed"


@dataclass(frozen=True)
class Config:
    """One scenario and the bounds of its exploration."""

    name: str
    creates: int = 2
    purchase_outcomes: tuple[str, ...] = (ANSWERED, LOST, NOTHING)
    listing_outcomes: tuple[str, ...] = (CONSISTENT, EMPTY, DUPLICATED)
    #: At most this many Describe answers per schedule are not consistent.
    listing_faults: int = 1
    #: At most this many purchases per schedule are throttled (each is sent again after a pause).
    throttles: int = 1
    #: At most this many preemptions per schedule (`Scheduler._next`); None: every interleaving.
    preemptions: int | None = None
    #: None, "old" (another stack's, an hour old) or "recent" (bought a second before the creates).
    outsider: str | None = None
    #: `qianfan:settleSeconds`; its floor by default, where re-sending is likeliest (I5).
    settle_seconds: float = 1.0
    #: `qianfan:timeoutSeconds` of every create.
    timeout_seconds: float = 30.0
    #: `qianfan:listingMaxAgeSeconds` (0: every operation lists on its own).
    listing_max_age: float = 1.0
    #: When each create starts (virtual seconds); missing ones start at 0.
    starts: tuple[float, ...] = ()
    #: Qianfan's clock minus this machine's.
    server_offset: float = 0.0
    limit: int = 200_000

    @property
    def names(self) -> list[str]:
        return [chr(ord("A") + n) for n in range(self.creates)]

    def start(self, index: int) -> float:
        return self.starts[index] if index < len(self.starts) else 0.0


@dataclass
class Held:
    """An instance Qianfan holds, and how it came to be."""

    instance_id: str
    buyer: str
    committed: float  # virtual time
    start_time: int  # Qianfan's clock, whole seconds


@dataclass
class Received:
    """A purchase request as Qianfan received it, and when the client sent it."""

    buyer: str
    sent: float  # virtual time the client handed the request over (I1's "sent")
    at: float
    server_at: float
    outcome: str
    instance_id: str | None = None


@dataclass
class Served:
    """A Describe answer as Qianfan gave it."""

    at: float
    ids: tuple[str, ...]


@dataclass
class Response:
    """What the SDK's call_action returns: a status, the JSON body, the headers."""

    code: int
    body: dict[str, Any]
    headers: dict[str, str]


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


class Qianfan:
    """The fake Qianfan behind the real client: answers as the scheduler chooses, and remembers
    what it held, received and served (the checks read it, not the provider's bookkeeping).

    It lists instances in the order they were committed, a choice (Baidu documents no order), so
    the one case purchase.py's I1 names as undecidable (same-second instances of two lost
    purchases, ordered by the listing) is not explored here; the host tier's sandbox reorders."""

    def __init__(self, scheduler: Scheduler, config: Config) -> None:
        self._scheduler = scheduler
        self._config = config
        self.held: dict[str, Held] = {}
        self.received: list[Received] = []
        self.served: list[Served] = []
        self.listing_faults = 0
        self.throttles = 0
        self._ids = 0

    def server_now(self) -> float:
        return self._scheduler.clock.wall() + self._config.server_offset

    def commit(self, buyer: str, *, start_time: int | None = None, at: float | None = None) -> str:
        self._ids += 1
        instance_id = f"tpm-{self._ids:04d}"
        start = math.floor(self.server_now()) if start_time is None else start_time
        self.held[instance_id] = Held(instance_id, buyer, self._scheduler.now if at is None else at, start)
        return instance_id

    def __call__(self, route: str, action: str, body: dict[str, Any], **options: Any) -> Response:
        if action == "DescribeTPMResource":
            return self._describe()
        if action == "PurchaseTPMResource":
            return self._purchase(float(options.get("request_timeout") or 60.0))
        raise SimulationError(f"the simulation does not model {action}")

    def _answer(self, code: int, body: dict[str, Any]) -> Response:
        return Response(code, {"requestId": f"req-{len(self.received) + len(self.served)}", **body}, self._date())

    def _date(self) -> dict[str, str]:
        return {"Date": formatdate(self.server_now(), usegmt=True)}

    def _describe(self) -> Response:
        scheduler = self._scheduler
        who = scheduler.current.name
        scheduler.pause()
        shown = list(self.held.values())
        menu = [CONSISTENT]
        if self.listing_faults < self._config.listing_faults:
            offered = {
                EMPTY: bool(shown),
                DUPLICATED: bool(shown),
                STALE: len(shown) >= 2,  # with one instance, stale is empty
                FAILED: True,
            }
            menu += [o for o in self._config.listing_outcomes if o != CONSISTENT and offered[o]]
        outcome = menu[scheduler.choose(f"{who}: Describe", menu, note=False)]
        if outcome != CONSISTENT:
            self.listing_faults += 1
        if outcome == FAILED:
            return self._answer(500, {"code": "InternalError", "message": "simulated"})
        if outcome == EMPTY:
            shown = []
        elif outcome == STALE:
            newest = max(shown, key=lambda h: h.committed)
            shown = [h for h in shown if h is not newest]
        elif outcome == DUPLICATED:
            shown = [shown[0], *shown]
        self.served.append(Served(scheduler.now, tuple(h.instance_id for h in shown)))
        scheduler.note(f"{who}: Describe answers {outcome}: {', '.join(h.instance_id for h in shown) or 'nothing'}")
        items = [
            {
                "instanceId": h.instance_id,
                "paymentTiming": "Postpaid",
                "rpm": 33,
                "tpm": 10000,
                "status": "Running",
                "startTime": _iso(h.start_time),
                "expiredTime": "-",
            }
            for h in shown
        ]
        return self._answer(200, {"result": {"instances": items}})

    def _purchase(self, request_timeout: float) -> Response:
        scheduler = self._scheduler
        who = scheduler.current.name
        sent = scheduler.now
        scheduler.pause()  # on its way: others may act before Qianfan receives it
        outcomes = self._config.purchase_outcomes
        if self.throttles >= self._config.throttles:
            outcomes = tuple(o for o in outcomes if o != THROTTLED)
        outcome = outcomes[scheduler.choose(f"{who}: Purchase", outcomes, note=False)]
        self.throttles += outcome == THROTTLED
        received = Received(who, sent, scheduler.now, self.server_now(), outcome)
        self.received.append(received)
        if outcome in COMMITS:
            received.instance_id = self.commit(who)
        bought = f", commits {received.instance_id}" if received.instance_id else ""
        scheduler.note(f"{who}: Purchase received ({outcome}{bought})")
        scheduler.pause()  # the answer is on its way: others may act first
        if outcome == HANG:
            scheduler.sleep(request_timeout)
        scheduler.note(f"{who}: Purchase answer arrives")
        if outcome == ANSWERED:
            return self._answer(200, {"result": {"instanceId": received.instance_id}})
        if outcome == LOST:
            return self._answer(500, {"code": "InternalError", "message": "simulated"})
        if outcome == REFUSED:
            return self._answer(403, {"code": "AccessDenied", "message": "simulated"})
        if outcome == THROTTLED:
            return self._answer(429, {"code": "RateLimitExceeded", "message": "simulated"})
        if outcome == HANG:
            raise requests.exceptions.ReadTimeout("simulated")
        raise requests.exceptions.ConnectionError("simulated: connection reset by peer")


# -- one schedule -------------------------------------------------------------------------------------
@dataclass
class Create:
    name: str
    start: float
    ended: float | None
    instance_id: str | None
    error: BaseException | None


# Kinds of violation, so that each finding can be told apart (and pinned by its own test).
HANGS = "a create hangs or overruns its deadline"
CRASHES = "a create crashes"
HELD_TWICE = "I1: one instance returned to two creates"
PRE_EXISTING = "I1: a pre-existing instance returned"
EARLIER = "I1: an instance another purchase of the run bought before this one was sent"
ORPHAN = "an unnamed orphan"
RESENT = "more than two unanswered purchases"
UNSETTLED = "the ledger is left unsettled"


@dataclass(frozen=True)
class Violation:
    kind: str
    text: str


@dataclass
class Run:
    """What one schedule did, and what the checks found."""

    decisions: list[Decision]
    journal: list[str]
    creates: list[Create]
    qianfan: Qianfan
    violations: list[Violation]
    excused: list[str]
    spins: list[str]
    most_reads: int

    def kinds(self) -> set[str]:
        return {v.kind for v in self.violations}

    def story(self) -> str:
        """The schedule as it happened: every decision and API call in order, and the endings."""
        lines = ["schedule (decisions and API calls, in order):"]
        lines += [f"  {line}" for line in self.journal]
        for create in self.creates:
            if create.instance_id is not None:
                ending = f"returned {create.instance_id}"
            elif create.error is not None:
                ending = f"failed: {type(create.error).__name__}: {create.error}"
            else:
                ending = "never ended"
            lines.append(f"  create {create.name}: {ending}")
        lines += [f"  VIOLATION ({v.kind}): {v.text}" for v in self.violations]
        lines += [f"  excused: {e}" for e in self.excused]
        lines += [f"  busy-waited: {e}" for e in self.spins]
        return "\n".join(lines)


@contextmanager
def _patched(module: ModuleType, name: str, value: object) -> Iterator[None]:
    old = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, old)


class Reused:
    """What the runs of one exploration share: the virtual clock, and the in-memory database of
    the ledger, emptied before each run (`memory_ledger` builds the same; creating the database
    costs about as much as a short run)."""

    def __init__(self) -> None:
        self.clock = VirtualClock()
        self._backend: SqliteBackend | None = None

    def ledger(self, host: str) -> Ledger:
        if self._backend is None:
            self._backend = SqliteBackend(None, "ledger in memory", self.clock)
        else:
            with self._backend.transaction("") as cur:
                for table in ("purchases", "claims", "gates", "sightings", "events", "sqlite_sequence"):
                    cur.execute(f"DELETE FROM {table}")
        backend = self._backend
        return Ledger(lambda: backend, "ledger in memory", account="", host=host, clock=self.clock)


def run_once(config: Config, decide: Replay, jitter: random.Random, reused: Reused | None = None) -> Run:
    """One schedule of the scenario, from scratch: a new world, host, ledger and threads."""
    jitter.seed(0)  # backoff's jitter, drawn in an order the schedule fixes
    reused = reused or Reused()
    scheduler = Scheduler(decide, config.preemptions, symmetric=True, clock=reused.clock)
    clock = scheduler.clock
    qianfan = Qianfan(scheduler, config)
    if config.outsider == "old":
        qianfan.commit(OUTSIDER, start_time=math.floor(qianfan.server_now()) - 3600, at=-3600.0)
    elif config.outsider == "recent":
        qianfan.commit(OUTSIDER, start_time=math.floor(qianfan.server_now()) - 1, at=-1.0)
    elif config.outsider is not None:
        raise SimulationError(f"unknown outsider {config.outsider!r}")
    client = QianfanClient(SETTINGS, clock)
    client._call_action = qianfan  # the SDK's call_action, replaced
    listings = Listings(client, config.listing_max_age)
    ledger = reused.ledger("simulated-host")
    purchases = Purchases(QianfanPurchaseApi(client, listings), ledger, config.settle_seconds)
    scheduler.quiet = _holds_none(ledger, listings, purchases)

    def create(name: str) -> Callable[[], object]:
        def body() -> object:
            deadline = Deadline(config.timeout_seconds, clock)
            return purchases.buy(SPEC, Owner("sim", "sim", name), deadline).instance_id

        return body

    for index, name in enumerate(config.names):
        scheduler.spawn(name, create(name), config.start(index))
    horizon = max(config.start(i) for i in range(config.creates)) + config.timeout_seconds + HANDOVER_SECONDS + 60
    scheduler.run(horizon)
    creates = [
        Create(a.name, a.start, a.ended, a.result if isinstance(a.result, str) else None, a.error)
        for a in scheduler.actors
    ]
    violations, excused = check(config, qianfan, creates, ledger)
    violations += [Violation(HANGS, f"cut short: {s}") for s in scheduler.stuck]
    return Run(
        decide.decisions,
        scheduler.journal,
        creates,
        qianfan,
        violations,
        excused,
        scheduler.spins,
        scheduler.most_reads,
    )


def _holds_none(ledger: Ledger, listings: Listings, purchases: Purchases) -> Callable[[], bool]:
    """Does the running thread hold none of the locks the host's threads share?"""
    database = ledger.backend._lock  # type: ignore[attr-defined]
    conditions = (ledger._changed, listings._cond, purchases._cond)
    return lambda: not database.locked() and not any(c._is_owned() for c in conditions)  # type: ignore[attr-defined]


def check(
    config: Config, qianfan: Qianfan, creates: Sequence[Create], ledger: Ledger
) -> tuple[list[Violation], list[str]]:
    """The invariants (module doc): the violations, and the documented-unknowable cases excused."""
    found: list[Violation] = []
    excused: list[str] = []
    holders: dict[str, list[str]] = {}
    bound = config.timeout_seconds + HANDOVER_SECONDS + 1e-3
    for create in creates:
        if create.ended is None:
            found.append(Violation(HANGS, f"create {create.name} never ended"))
        elif create.ended - create.start > bound:
            found.append(
                Violation(
                    HANGS, f"create {create.name} took {create.ended - create.start:.3f} s, more than {bound:.3f} s"
                )
            )
        if create.error is not None and not isinstance(create.error, ProviderError | QianfanError):
            found.append(Violation(CRASHES, f"create {create.name}: {type(create.error).__name__}: {create.error}"))
        if create.instance_id is not None:
            holders.setdefault(create.instance_id, []).append(create.name)
        unanswered = [r for r in qianfan.received if r.buyer == create.name and r.outcome in UNANSWERED]
        if len(unanswered) > 2:
            found.append(
                Violation(RESENT, f"create {create.name} sent {len(unanswered)} purchases that went unanswered")
            )
    for instance_id, names in holders.items():
        if len(names) > 1:
            found.append(Violation(HELD_TWICE, f"{instance_id} was returned to {', '.join(names)}"))
    earlier: list[tuple[Create, Held, Received]] = []  # instances that existed before the purchase was sent
    for create in creates:
        if create.instance_id is None:
            continue
        held = qianfan.held.get(create.instance_id)
        sent = [r for r in qianfan.received if r.buyer == create.name]
        if held is None or not sent:
            found.append(Violation(CRASHES, f"create {create.name} returned {create.instance_id} out of nowhere"))
            continue
        if held.committed < sent[-1].sent:
            earlier.append((create, held, sent[-1]))
    # Creates that took an outsider's instance in the unknowable case: each starts a chain. The
    # instance its purchase bought is displaced, and ends unnamed or with another lost purchase of
    # the spec whose evidence cannot tell it from its own; that create's own instance, if it bought
    # one, is displaced in turn. Each chain may end in one unnamed instance, bought in the chain.
    mistaken = {c.name for c, held, last in earlier if held.buyer == OUTSIDER and _unknowable(qianfan, held, last)}
    chains = len(mistaken)
    passed_on: set[str] = set()
    while True:
        taking = {
            c.name
            for c, held, last in earlier
            if held.buyer in mistaken and c.name not in mistaken and _unknowable(qianfan, held, last)
        }
        if not taking:
            break
        mistaken |= taking
        passed_on |= taking
    for create, held, _ in earlier:
        what = f"{create.name} returned {held.instance_id} ({held.buyer}'s), which existed before its purchase was sent"
        if held.buyer == OUTSIDER:
            if create.name in mistaken and create.name not in passed_on:
                excused.append(f"{what}: the case purchase.py documents as unknowable")
            else:
                found.append(Violation(PRE_EXISTING, what))
        elif create.name in passed_on:
            excused.append(f"{what}: displaced by {held.buyer}'s take in the unknowable case; nothing told them apart")
        else:
            found.append(Violation(EARLIER, what))
    errors = " ".join(str(c.error) for c in creates if c.error is not None)
    for held in qianfan.held.values():
        if held.buyer == OUTSIDER or held.instance_id in holders or held.instance_id in errors:
            continue
        what = f"{held.instance_id} (bought by {held.buyer}'s purchase) is in no create's result or error"
        if chains > 0 and held.buyer in mistaken:
            chains -= 1
            excused.append(f"{what}: displaced by {held.buyer}'s take in the unknowable case, at the end of its chain")
        else:
            found.append(Violation(ORPHAN, what))
    still_open = ledger.open_purchases(MODEL)
    if still_open:
        states = ", ".join(r.state.value for r in still_open)
        found.append(Violation(UNSETTLED, f"{len(still_open)} purchase(s) left open ({states})"))
    if not ledger.gate_open(MODEL):
        found.append(Violation(UNSETTLED, "the model's gate is still taken after every create ended"))
    return found, excused


def _unknowable(qianfan: Qianfan, held: Held, purchase: Received) -> bool:
    """Whether nothing could tell `held` from what `purchase` bought: it started within the clock
    tolerance (START_TIME_MARGIN_SECONDS, plus 1 s: the offset is measured to ±1 s) of the
    purchase, and no answer Qianfan gave before the purchase was sent showed it."""
    close = held.start_time + START_TIME_MARGIN_SECONDS + 1.0 >= purchase.server_at
    shown = any(s.at < purchase.sent and held.instance_id in s.ids for s in qianfan.served)
    return close and not shown


# -- the exploration -----------------------------------------------------------------------------------
@dataclass
class Report:
    """What an exploration covered and found."""

    config: Config
    schedules: int = 0
    seconds: float = 0.0
    deepest: int = 0
    #: (decision label, option taken) -> schedules that took it.
    taken: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: violation kind -> schedules with it, and the first such schedule.
    kinds: Counter[str] = field(default_factory=Counter)
    examples: dict[str, Run] = field(default_factory=dict)
    excused: int = 0
    failed_creates: int = 0
    #: Schedules in which a thread busy-waited, and the first of them.
    spinning: int = 0
    first_spin: Run | None = None
    #: The most clock readings one step made before a yield point (SPIN_READS must stay well above).
    most_reads: int = 0

    @property
    def violating(self) -> int:
        return sum(self.kinds.values())

    def summary(self) -> str:
        found = "; ".join(f"{n} with {kind}" for kind, n in self.kinds.most_common()) or "no violation"
        return (
            f"{self.config.name}: {self.schedules} schedules in {self.seconds:.1f} s (up to {self.deepest} "
            f"decisions each): {found}; {self.excused} excused; {self.spinning} busy-waited"
        )


def explore(config: Config, *, stop: Callable[[Run], bool] | None = None) -> Report:
    """Every schedule of the configuration (module doc), each checked; or until `stop` holds for one."""
    report = Report(config)
    jitter = random.Random(0)
    begun = time.monotonic()
    runs: list[Run] = []
    reused = Reused()

    def run(replay: Replay) -> None:
        runs.append(run_once(config, replay, jitter, reused))

    with _patched(deadline_module, "random", jitter):
        for decisions in schedules(run, limit=config.limit):
            outcome = runs.pop()
            report.schedules += 1
            report.deepest = max(report.deepest, len(decisions))
            report.most_reads = max(report.most_reads, outcome.most_reads)
            report.taken.update({(d.label, d.option) for d in decisions})
            report.excused += bool(outcome.excused)
            report.failed_creates += sum(c.instance_id is None for c in outcome.creates)
            if outcome.spins:
                report.spinning += 1
                report.first_spin = report.first_spin or outcome
            for kind in outcome.kinds():
                report.kinds[kind] += 1
                report.examples.setdefault(kind, outcome)
            if stop is not None and stop(outcome):
                break
    report.seconds = time.monotonic() - begun
    return report
