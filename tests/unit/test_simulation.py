"""Every schedule of concurrent creates, explored deterministically (tests/unit/simulation.py).

First the engine, on toy threads whose schedules can be counted by hand: each interleaving is run
exactly once, the preemption bound keeps exactly the schedules it says, time is virtual, a wait
releases its condition, and a thread that blocks or spins outside the simulation is reported.
Then the purchase recovery: every schedule of small configurations of concurrent creates, each
checked for I1, no unnamed orphan and no hang (see the simulation's module doc for what "every"
covers). The default run takes seconds; `QIANFAN_TPM_EXPLORE=large` adds bigger configurations
(marked `slow`).

What the exploration found in providers/ is fixed, and each finding is kept as a test on the
smallest configuration that showed it; every exploration allows no violation at all. A new
finding is pinned the same way: a strict xfail on its smallest configuration, and its kind in
`KNOWN` until it is fixed.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

import pytest

import providers.purchase as purchase_module
import tests.unit.simulation as simulation
from providers.instances import Instance
from providers.ledger import Ledger, PurchaseRecord
from providers.purchase import Purchases
from tests.support.figures import record
from tests.unit.simulation import (
    ANSWERED,
    CONSISTENT,
    DUPLICATED,
    EMPTY,
    FAILED,
    HANG,
    LOST,
    NOTHING,
    ORPHAN,
    PRE_EXISTING,
    REFUSED,
    STALE,
    THROTTLED,
    Config,
    Replay,
    Report,
    Run,
    Scheduler,
    SimulationError,
    explore,
    schedules,
)

LARGE = os.environ.get("QIANFAN_TPM_EXPLORE") == "large"

#: Violation kinds providers/ is known to show, each pinned by a strict xfail (none now).
KNOWN: set[str] = set()


# -- the engine, on toy threads ------------------------------------------------------------------------
def merges(*runs: tuple[str, ...]) -> set[tuple[str, ...]]:
    """Every interleaving of the runs that keeps each run's own order (computed independently)."""
    runs = tuple(r for r in runs if r)
    if not runs:
        return {()}
    found: set[tuple[str, ...]] = set()
    for index, run in enumerate(runs):
        rest = runs[:index] + (run[1:],) + runs[index + 1 :]
        found |= {(run[0], *tail) for tail in merges(*rest)}
    return found


def preemptions(order: tuple[str, ...], lengths: dict[str, int]) -> int:
    """Switches away from an actor that still had steps to run."""
    done: dict[str, int] = dict.fromkeys(lengths, 0)
    count = 0
    for previous, step in zip(order, order[1:], strict=False):
        done[previous[0]] += 1
        if step[0] != previous[0] and done[previous[0]] < lengths[previous[0]]:
            count += 1
    return count


def toy_orders(pauses: dict[str, int], *, bound: int | None = None, symmetric: bool = False) -> list[tuple[str, ...]]:
    """The order of steps of every schedule of actors that each run `pauses[name] + 1` steps."""
    orders: list[tuple[str, ...]] = []

    def run(replay: Replay) -> None:
        scheduler = Scheduler(replay, bound, symmetric=symmetric)
        log: list[str] = []

        def body(name: str, count: int) -> Callable[[], object]:
            def steps() -> object:
                for step in range(count + 1):
                    log.append(f"{name}{step}")
                    if step < count:
                        scheduler.pause()
                return None

            return steps

        for name, count in pauses.items():
            scheduler.spawn(name, body(name, count))
        scheduler.run(horizon=10.0)
        orders.append(tuple(log))

    for _ in schedules(run, limit=10_000):
        pass
    return orders


def steps_of(name: str, pauses: int) -> tuple[str, ...]:
    return tuple(f"{name}{step}" for step in range(pauses + 1))


def test_every_interleaving_of_two_threads_is_run_exactly_once() -> None:
    orders = toy_orders({"A": 2, "B": 2})
    assert len(orders) == len(set(orders)) == 20  # C(6, 3): three steps each
    assert set(orders) == merges(steps_of("A", 2), steps_of("B", 2))


def test_every_interleaving_of_three_threads_is_run_exactly_once() -> None:
    orders = toy_orders({"A": 1, "B": 1, "C": 0})
    assert len(orders) == len(set(orders)) == 30  # 5! / (2! 2! 1!)
    assert set(orders) == merges(steps_of("A", 1), steps_of("B", 1), steps_of("C", 0))


@pytest.mark.parametrize("bound", [0, 1, 2])
def test_a_preemption_bound_keeps_exactly_the_schedules_with_that_many_preemptions_at_most(bound: int) -> None:
    lengths = {"A": 3, "B": 3}
    every = merges(steps_of("A", 2), steps_of("B", 2))
    expected = {order for order in every if preemptions(order, lengths) <= bound}
    orders = toy_orders({"A": 2, "B": 2}, bound=bound)
    assert len(orders) == len(set(orders)) and set(orders) == expected
    assert len(expected) < len(every)


def test_identical_threads_not_yet_started_are_interchangeable_under_symmetry() -> None:
    every = merges(steps_of("A", 1), steps_of("B", 1))
    orders = toy_orders({"A": 1, "B": 1}, symmetric=True)
    assert len(orders) == len(set(orders)) == len(every) // 2
    renamed = {tuple(step.translate(str.maketrans("AB", "BA")) for step in order) for order in orders}
    assert set(orders) | renamed == every and not set(orders) & renamed


def test_time_is_virtual_and_a_wait_releases_its_condition_until_notified_or_timed_out() -> None:
    seen: dict[str, float] = {}

    def run(replay: Replay) -> None:
        scheduler = Scheduler(replay)
        clock = scheduler.clock
        cond = threading.Condition()
        ready: list[bool] = []

        def sleeper() -> object:
            clock.sleep(500.0)
            with cond:  # would block for ever if the waiter still held it
                ready.append(True)
                cond.notify_all()
            return None

        def waiter() -> object:
            with cond:
                while not ready:
                    clock.wait(cond, 3600.0)
            seen["notified"] = clock.monotonic()
            with cond:
                clock.wait(cond, 7.5)  # nobody notifies: returns at its timeout
            seen["timed out"] = clock.monotonic()
            return None

        scheduler.spawn("sleeper", sleeper)
        scheduler.spawn("waiter", waiter)
        scheduler.run(horizon=10_000.0)
        assert all(a.error is None and a.ended is not None for a in scheduler.actors)

    for _ in schedules(run, limit=10):
        pass
    assert seen["notified"] == pytest.approx(500.0, abs=1e-3)
    assert seen["timed out"] == pytest.approx(507.5, abs=1e-3)


def test_a_thread_that_busy_waits_is_taken_as_polling_and_reported() -> None:
    def run(replay: Replay) -> None:
        scheduler = Scheduler(replay)
        clock = scheduler.clock
        scheduler.quiet = lambda: True
        flag: list[bool] = []

        def spinner() -> object:
            while not flag:  # no yield point: on real threads this burns a core
                clock.monotonic()
            return clock.monotonic()

        def setter() -> object:
            clock.sleep(1.0)
            flag.append(True)
            return None

        scheduler.spawn("spinner", spinner)
        scheduler.spawn("setter", setter)
        scheduler.run(horizon=100.0)
        spinner_actor = scheduler.actors[0]
        assert isinstance(spinner_actor.result, float) and spinner_actor.result >= 1.0
        assert scheduler.spins and scheduler.spins[0].startswith("spinner")

    for _ in schedules(run, limit=10):
        pass


def test_a_thread_that_blocks_outside_the_simulation_is_reported_not_waited_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(simulation, "REAL_SECONDS_PER_STEP", 0.5)
    real = threading.Lock()
    picks = iter([0, 1])  # the holder first; once it paused, the other one
    scheduler = Scheduler(lambda label, options: next(picks))

    def holder() -> object:
        with real:
            scheduler.pause()  # holds a real lock across a yield point
        return None

    def blocked() -> object:
        with real:
            return None

    scheduler.spawn("holder", holder)
    scheduler.spawn("blocked", blocked)
    try:
        with pytest.raises(SimulationError, match="no thread reached a yield point") as raised:
            scheduler.run(horizon=10.0)
        assert "--- blocked (running):" in str(raised.value) and "with real:" in str(raised.value)
    finally:
        if real.locked():
            real.release()  # lets the stuck thread end


def test_a_run_that_does_not_replay_is_refused() -> None:
    calls: list[int] = []

    def run(replay: Replay) -> None:
        calls.append(1)
        replay(f"choice {len(calls)}", ["x", "y"])

    with pytest.raises(SimulationError, match="did not replay"):
        for _ in schedules(run, limit=10):
            pass


# -- the purchase recovery ------------------------------------------------------------------------------
def explored(config: Config) -> Report:
    """Explore every schedule, record the figures, and check the harness kept its own bound."""
    report = explore(config)
    found = ", ".join(f"{kind}: {n}" for kind, n in report.kinds.most_common()) or "none"
    record(
        "exploration",
        config.name,
        f"{report.schedules} schedules in {report.seconds:.1f} s, up to {report.deepest} decisions; "
        f"violations: {found}; excused: {report.excused}; busy-waited: {report.spinning}",
    )
    assert report.most_reads * 2 < simulation.SPIN_READS, "a step read the clock nearly as often as a busy wait"
    return report


def assert_only_known(report: Report) -> None:
    unknown = {kind: run for kind, run in report.examples.items() if kind not in KNOWN}
    assert not unknown, "\n\n".join(run.story() for run in unknown.values())


def assert_covered(report: Report) -> None:
    """Every create ran at a choice point, every purchase answer and every listing answer of the
    configuration happened in some schedule: an exploration that explores nothing fails here."""
    config = report.config
    for name in config.names[1:]:
        assert report.taken[("runs next", name)] > 0, f"{name} never ran at a choice point"
    for outcome in config.purchase_outcomes:
        assert any(label.endswith("Purchase") and option == outcome for label, option in report.taken), (
            f"no purchase was {outcome}"
        )
    if config.listing_faults:
        for outcome in config.listing_outcomes:
            assert any(label.endswith("Describe") and option == outcome for label, option in report.taken), (
                f"no listing was {outcome}"
            )
    assert report.schedules >= len(config.purchase_outcomes) ** config.creates


def test_one_create_meets_every_outcome_of_its_purchases_exactly_once() -> None:
    """One create, consistent listings: its purchase is answered, lost after committing (recovered),
    refused (fails), or lost before committing — then sent once more, with the same four outcomes
    (a second loss that bought nothing fails). 3 + 4 = 7 schedules, three of them failing."""
    config = Config(
        "one create, every purchase answer",
        creates=1,
        listing_faults=0,
        purchase_outcomes=(ANSWERED, LOST, REFUSED, NOTHING),
    )
    runs: list[Run] = []

    def keep(run: Run) -> bool:
        runs.append(run)
        return False  # never stop: every schedule

    report = explore(config, stop=keep)
    assert report.schedules == 7 and not report.kinds, report.summary()
    answers = sorted(tuple(r.outcome for r in run.qianfan.received) for run in runs)
    assert answers == sorted(
        [(ANSWERED,), (LOST,), (REFUSED,), (NOTHING, ANSWERED), (NOTHING, LOST), (NOTHING, REFUSED), (NOTHING, NOTHING)]
    )
    failed = sorted(tuple(r.outcome for r in run.qianfan.received) for run in runs if run.creates[0].error is not None)
    assert failed == sorted([(REFUSED,), (NOTHING, REFUSED), (NOTHING, NOTHING)])


DEFAULT = Config(
    "2 creates, answers lost or not, a listing empty or duplicated, 1 preemption",
    creates=2,
    purchase_outcomes=(ANSWERED, LOST, NOTHING),
    listing_outcomes=(CONSISTENT, EMPTY, DUPLICATED),
    listing_faults=1,
    preemptions=1,
)
TWO_PREEMPTIONS = Config(
    "2 creates, answers lost or not, consistent listings, 2 preemptions",
    creates=2,
    purchase_outcomes=(ANSWERED, LOST, NOTHING),
    listing_faults=0,
    preemptions=2,
)


EVERY_ANSWER = Config(
    "1 create, an outsider an hour old, every kind of answer (2 throttled), a listing not consistent",
    creates=1,
    purchase_outcomes=(ANSWERED, LOST, NOTHING, REFUSED, HANG, THROTTLED),
    listing_outcomes=(CONSISTENT, EMPTY, DUPLICATED, STALE, FAILED),
    listing_faults=1,
    throttles=2,
    outsider="old",
)


@pytest.mark.parametrize(
    "config", [DEFAULT, TWO_PREEMPTIONS, EVERY_ANSWER], ids=["faults", "preemptions", "every answer"]
)
def test_creates_keep_the_invariants_in_every_schedule(config: Config) -> None:
    report = explored(config)
    assert_covered(report)
    assert_only_known(report)
    assert report.excused == 0  # no outsider: nothing is unknowable


@pytest.mark.parametrize(
    ("outsider", "excusable"), [("old", False), ("recent", True)], ids=["an hour old", "a second old"]
)
def test_a_pre_existing_instance_is_never_taken_unless_nothing_could_tell(outsider: str, excusable: bool) -> None:
    """Another stack's instance of the same spec exists, visible or hidden by a lagging listing.
    An hour old, its startTime excludes it always; a second old, only a listing that showed it
    before the purchase can, and where none did the case is the documented unknowable one."""
    config = Config(
        f"1 create, an outsider {outsider}, up to 2 listings empty, duplicated or stale",
        creates=1,
        purchase_outcomes=(ANSWERED, LOST, NOTHING),
        listing_outcomes=(CONSISTENT, EMPTY, DUPLICATED, STALE),
        listing_faults=2,
        outsider=outsider,
    )
    report = explored(config)
    assert_covered(report)
    assert_only_known(report)
    assert (report.excused > 0) is excusable


@pytest.mark.parametrize(
    ("answers", "preempted", "ending"),
    [((LOST,), 1, "unnamed"), ((LOST, NOTHING), 0, "taken")],
    ids=["B bought too", "B bought nothing"],
)
def test_an_outsiders_instance_taken_in_the_unknowable_case_displaces_one_chain_and_no_more(
    answers: tuple[str, ...], preempted: int, ending: str
) -> None:
    """Found by the large exploration: A's listings lag (empty, then lacking the newest), A takes the
    second-old outsider's instance, and B, whose purchase was sent in the same second, takes A's:
    nothing B's evidence holds tells A's instance from its own. B's own instance, if one shows up
    later, is then the one left unnamed. Each step of that chain is excused, and nothing else is."""
    config = Config(
        f"2 creates, answers {' or '.join(answers)}, an outsider a second old, up to 2 listings empty or stale, "
        f"{preempted} preemption(s)",
        creates=2,
        purchase_outcomes=answers,
        listing_outcomes=(CONSISTENT, EMPTY, STALE),
        listing_faults=2,
        outsider="recent",
        preemptions=preempted,
    )
    endings: set[str] = set()

    def keep(run: Run) -> bool:
        passed = [e for e in run.excused if "nothing told them apart" in e]
        if passed:
            takes = [e for e in run.excused if "documents as unknowable" in e]
            unnamed = [e for e in run.excused if "at the end of its chain" in e]
            assert len(takes) == 1 and len(passed) == 1 and len(unnamed) <= 1, run.story()
            endings.add("unnamed" if unnamed else "taken")
        return False

    report = explore(config, stop=keep)
    assert not report.kinds, report.summary()
    assert ending in endings, endings


# -- the harness can fail: the same explorations find a deliberately broken recovery ------------------
def test_a_recovery_without_the_i1_evidence_is_caught_and_its_schedule_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mutant: no I1 evidence at all (`Purchases._possible` always true, the ledger's sightings
    empty). A second-old outsider that every listing shows: the real recovery never takes it; the
    mutant takes it for a purchase that bought nothing."""
    config = Config(
        "1 create, an outsider a second old, consistent listings",
        creates=1,
        listing_faults=0,
        outsider="recent",
    )
    assert not explore(config).kinds  # the control: the unmodified code

    def anything(self: Purchases, instance: Instance, record: PurchaseRecord, ticket: object) -> bool:
        return True

    def nothing_sighted(self: Ledger, model: str, records: object) -> set[tuple[int, str]]:
        return set()

    monkeypatch.setattr(Purchases, "_possible", anything)
    monkeypatch.setattr(Ledger, "sighted_before", nothing_sighted)
    report = explore(config, stop=lambda run: PRE_EXISTING in run.kinds())
    story = report.examples[PRE_EXISTING].story()
    print(story)
    assert story.splitlines()[1:4] == [
        "  t=   0.000  A: Describe answers consistent: tpm-0001",
        "  t=   0.000  A: Purchase received (lost before committing)",
        "  t=   0.000  A: Purchase answer arrives",
    ], story
    assert "create A: returned tpm-0001" in story and "VIOLATION (I1: a pre-existing instance returned)" in story


def test_a_recovery_that_excludes_every_instance_is_caught_as_an_orphan(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mutant: START_TIME_MARGIN_SECONDS hugely negative, so every instance "started before" the
    purchase: a lost answer that bought is concluded not bought, sent again, and its first instance
    is paid for and named nowhere."""
    config = Config("1 create, consistent listings", creates=1, listing_faults=0)
    assert not explore(config).kinds
    monkeypatch.setattr(purchase_module, "START_TIME_MARGIN_SECONDS", -1e9)
    report = explore(config, stop=lambda run: ORPHAN in run.kinds())
    story = report.examples[ORPHAN].story()
    print(story)
    assert "A: Purchase received (committed, answer lost, commits tpm-0001)" in story
    assert "VIOLATION (an unnamed orphan): tpm-0001 (bought by A's purchase)" in story


# -- what the exploration found in providers/, fixed; each on the smallest configuration that showed it ----
def test_no_recovery_busy_waits_for_a_purchase_in_flight() -> None:
    """Found: a look at the ledger bumped its version even when it changed nothing, so a recovery
    waiting for the gate (`Ledger.wait_until(take_gate)`) never slept and spun through tens of
    thousands of transactions a second while a purchase of the model was in flight."""
    config = Config(
        "2 creates, answers lost",
        creates=2,
        purchase_outcomes=(LOST,),
        listing_faults=0,
        preemptions=1,
    )
    report = explore(config, stop=lambda run: bool(run.spins))
    assert report.schedules > 1
    assert report.first_spin is None, report.first_spin.story()


def test_an_instance_shown_by_a_read_that_was_read_again_counts_as_seen() -> None:
    """Found: `list_instances` reads again when pages disagree, and only the last read was
    remembered, so an instance a not-whole read showed before the purchase was no evidence for
    `seen_before`, and a second-old outsider was taken for a purchase that bought nothing (I1)."""
    config = Config(
        "1 create, an outsider a second old, up to 2 listings empty or duplicated",
        creates=1,
        purchase_outcomes=(NOTHING,),
        listing_outcomes=(CONSISTENT, EMPTY, DUPLICATED),
        listing_faults=2,
        outsider="recent",
    )
    report = explore(config, stop=lambda run: PRE_EXISTING in run.kinds())
    assert report.taken[("A: Describe", DUPLICATED)] > 0
    assert PRE_EXISTING not in report.kinds, report.examples[PRE_EXISTING].story()


# -- the large exploration (QIANFAN_TPM_EXPLORE=large) ------------------------------------------------------
LARGE_CONFIGS = [
    Config(
        "3 creates, answers lost or not, a listing empty or duplicated, 1 preemption",
        creates=3,
        listing_faults=1,
        preemptions=1,
    ),
    Config(
        "2 creates, every kind of answer, a listing empty, duplicated, stale or failed, 1 preemption",
        creates=2,
        purchase_outcomes=(ANSWERED, LOST, NOTHING, REFUSED, HANG, THROTTLED),
        listing_outcomes=(CONSISTENT, EMPTY, DUPLICATED, STALE, FAILED),
        listing_faults=1,
        preemptions=1,
    ),
    Config(
        "2 creates, an outsider a second old, up to 2 listings empty, duplicated or stale, 1 preemption",
        creates=2,
        listing_outcomes=(CONSISTENT, EMPTY, DUPLICATED, STALE),
        listing_faults=2,
        outsider="recent",
        preemptions=1,
    ),
    Config("2 creates, answers lost or not, consistent listings, every interleaving", creates=2, listing_faults=0),
    Config(
        "2 creates, B 0.5 s after A, Qianfan's clock 0.7 s ahead, a listing empty or duplicated, 2 preemptions",
        creates=2,
        starts=(0.0, 0.5),
        server_offset=0.7,
        listing_faults=1,
        preemptions=2,
    ),
    Config(
        "2 creates, listings not shared, a listing empty or duplicated, 1 preemption",
        creates=2,
        listing_max_age=0.0,
        listing_faults=1,
        preemptions=1,
    ),
]


@pytest.mark.slow
@pytest.mark.skipif(not LARGE, reason="the large exploration takes minutes: set QIANFAN_TPM_EXPLORE=large")
@pytest.mark.parametrize("config", LARGE_CONFIGS, ids=[c.name for c in LARGE_CONFIGS])
def test_large_explorations_keep_the_invariants(config: Config) -> None:
    report = explored(config)
    assert_covered(report)
    assert_only_known(report)
