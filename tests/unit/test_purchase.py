"""The never-buy-twice algorithm (providers/purchase.py), with a fake Qianfan and forced orderings.

Each test drives `Purchases` from threads whose purchases are scripted step by step (commit, then
lose the answer; block until the test says go; ...), so the interleavings that could break the
invariant happen deterministically, not by chance. The fake answers as Baidu documents Describe:
no model field, units and the scheduled release reported. Invariant checked throughout:

    every instance bought is returned by exactly one create or named in a create's error, and a
    purchase is sent again only when the listing shows it bought nothing.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

import providers.purchase as purchase_module
from providers.client import Receipt
from providers.clock import REAL, Clock
from providers.deadline import Deadline
from providers.errors import Kind, ProviderError, QianfanError
from providers.instances import Instance
from providers.ledger import Owner, PurchaseRecord, State, memory_ledger
from providers.listings import Listing
from providers.purchase import Bought, Purchases, Spec
from providers.release_time import parse_release_time, release_after

MODEL = "ernie-speed-8k"
ONE = Spec(MODEL, 1, None)
TWO = Spec(MODEL, 2, None)
WAIT = 10.0  # bound of every wait in these tests; none comes near it when the code is right


@pytest.fixture(autouse=True)
def quick_confirmations(monkeypatch: pytest.MonkeyPatch) -> None:
    """The provider confirms an absence over 1 s and reserves 2 s for the recovery's listings; this
    tier's fake answers at once, so a tenth of that keeps it fast (the host tier runs the real ones)."""
    monkeypatch.setattr(purchase_module, "CONFIRM_GAP_SECONDS", 0.1)
    monkeypatch.setattr(purchase_module, "RECOVERY_LISTING_SECONDS", 0.1)


def lost(status: int = 503) -> QianfanError:
    return QianfanError("PurchaseTPMResource", Kind.SERVER, status=status, code="ServiceUnavailable")


Step = Callable[["FakeQianfan", Spec], str]


def ok(fake: FakeQianfan, spec: Spec) -> str:
    return fake.commit(spec)


def bought_answer_lost(fake: FakeQianfan, spec: Spec) -> str:
    fake.commit(spec)
    raise lost()


def nothing_bought(fake: FakeQianfan, spec: Spec) -> str:
    raise QianfanError("PurchaseTPMResource", Kind.NO_ANSWER, message="the connection was dropped")


def refused(fake: FakeQianfan, spec: Spec) -> str:
    raise QianfanError("PurchaseTPMResource", Kind.AUTH, status=403, code="AccessDenied")


def throttled(fake: FakeQianfan, spec: Spec) -> str:
    raise QianfanError("PurchaseTPMResource", Kind.THROTTLED, status=429, code="RateLimitExceeded")


def after(event: threading.Event, step: Step, *, mark: threading.Event | None = None) -> Step:
    """Wait for `event` (the test's go), then do `step`; `mark` is set when the wait starts."""

    def run(fake: FakeQianfan, spec: Spec) -> str:
        if mark is not None:
            mark.set()
        assert event.wait(WAIT), "the test never said go"
        return step(fake, spec)

    return run


def commit_then(event: threading.Event, step: Step, *, committed: threading.Event) -> Step:
    """Commit the purchase at once, then hold the answer until `event`, then answer as `step`."""

    def run(fake: FakeQianfan, spec: Spec) -> str:
        instance_id = fake.commit(spec)
        committed.set()
        assert event.wait(WAIT), "the test never said go"
        if step is ok:
            return instance_id
        raise lost()

    return run


class ExactClock:
    """Qianfan's clock is this machine's, to the second (what `ServerClock` measures on a good day)."""

    def earliest(self, local_wall: float) -> float:
        return local_wall - 1.0

    def latest(self, local_wall: float) -> float:
        return local_wall + 1.0


@dataclass
class FakeQianfan:
    """Instances by id; purchases scripted per thread name; listings that may lag behind.

    Listings are Baidu's documented items reduced to what the algorithm reads: units, the release
    (Describe reports `expiredTime`), and `startTime` in whole seconds of Qianfan's clock.
    """

    instances: dict[str, Spec] = field(default_factory=dict)
    started: dict[str, float] = field(default_factory=dict)
    scripts: dict[str, list[Step]] = field(default_factory=dict)
    purchases: list[Spec] = field(default_factory=list)
    listings: int = 0
    #: Instance id -> how many more listings omit it (a new instance that shows up late).
    late: dict[str, int] = field(default_factory=dict)
    lag: int = 0  # every newly committed instance is omitted by this many listings
    list_error: Exception | None = None
    server_clock: ExactClock = field(default_factory=ExactClock)
    _seen: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _ids: Iterator[int] = field(default_factory=lambda: iter(range(1, 10_000)))

    def commit(self, spec: Spec, *, started: float | None = None) -> str:
        with self._lock:
            instance_id = f"tpm-{next(self._ids):08d}"
            self.instances[instance_id] = spec
            self.started[instance_id] = math.floor(time.time() if started is None else started)
            if self.lag:
                self.late[instance_id] = self.lag
            return instance_id

    def outsider(self, spec: Spec, *, started: float | None = None) -> str:
        """An instance bought by someone else (another stack, the console)."""
        return self.commit(spec, started=started)

    # -- the PurchaseApi ---------------------------------------------------------------------------
    def get(
        self,
        model: str,
        deadline: Deadline,
        *,
        fresh: bool = False,
        not_before: float | None = None,
        since: float | None = None,
    ) -> Listing:
        requested = time.monotonic()
        with self._lock:
            self.listings += 1
            if self.list_error is not None:
                raise self.list_error
            shown = []
            for instance_id, spec in self.instances.items():
                if self.late.get(instance_id, 0) > 0:
                    self.late[instance_id] -= 1
                    continue
                if spec.model == model:
                    shown.append(
                        Instance(
                            instance_id,
                            "Running",
                            None,
                            spec.units,
                            spec.release_time,
                            release_time_known=True,
                            start_time=self.started[instance_id],
                        )
                    )
            answered = time.monotonic()
            for instance in shown:
                self._seen.setdefault(instance.instance_id, answered)
            return Listing(model, tuple(shown), requested, answered)

    def purchase(self, spec: Spec, deadline: Deadline, *, leave: float) -> Receipt:
        with self._lock:
            self.purchases.append(spec)
            script = self.scripts.get(threading.current_thread().name, [])
            step = script.pop(0) if script else ok
        return Receipt(step(self, spec), "request-id")

    def seen_before(self, model: str, instance_id: str, moment: float) -> bool:
        with self._lock:
            seen = self._seen.get(instance_id)
        return seen is not None and seen < moment

    def seen_ids(self, model: str) -> frozenset[str]:
        with self._lock:
            return frozenset(i for i in self._seen if self.instances[i].model == model)


class Run:
    """Creates running in named threads, so that each follows its own script."""

    def __init__(self, purchases: Purchases) -> None:
        self.purchases = purchases
        self.results: dict[str, Future[str]] = {}
        self.bought: dict[str, Bought] = {}
        self._pool = ThreadPoolExecutor(max_workers=32)

    def start(self, name: str, spec: Spec, timeout: float = 20.0, clock: Clock | None = None) -> Future[str]:
        def create() -> str:
            threading.current_thread().name = name
            bought = self.purchases.buy(spec, Owner(), Deadline(timeout, clock or REAL))
            self.bought[name] = bought
            return bought.instance_id

        future = self._pool.submit(create)
        self.results[name] = future
        return future

    def outcome(self, name: str) -> str | Exception:
        try:
            return self.results[name].result(timeout=WAIT * 3)
        except (ProviderError, QianfanError) as exc:
            return exc

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def purchases_of(fake: FakeQianfan, settle: float = 0.6) -> Purchases:
    return Purchases(fake, memory_ledger("test-host"), settle)


@contextmanager
def running(fake: FakeQianfan, settle: float = 0.6) -> Iterator[Run]:
    run = Run(purchases_of(fake, settle))
    try:
        yield run
    finally:
        run.close()


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "condition never held"
        time.sleep(0.005)


def assert_accounted(fake: FakeQianfan, run: Run) -> None:
    """Every instance is returned by exactly one create or named in an error (no unnamed orphan)."""
    returned = [r for r in (run.outcome(name) for name in run.results) if isinstance(r, str)]
    assert len(returned) == len(set(returned)), f"two creates returned one instance: {returned}"
    errors = " ".join(str(r) for r in (run.outcome(name) for name in run.results) if isinstance(r, Exception))
    for instance_id in fake.instances:
        assert instance_id in returned or instance_id in errors, f"{instance_id} is paid for and nobody knows it"


# -- the orderings the issue names ----------------------------------------------------------------
def test_two_lost_answers_of_one_spec_recover_as_one_pool_without_buying_again() -> None:
    """A's purchase commits, its answer is lost later; C lists after A's instance exists, buys, and
    loses its answer too. Recovering each against its own listing bought a third instance and left
    A's orphaned; as one pool against A's earlier listing, each gets one, nothing is bought again."""
    fake = FakeQianfan()
    a_go, a_committed = threading.Event(), threading.Event()
    fake.scripts["A"] = [commit_then(a_go, bought_answer_lost, committed=a_committed)]
    fake.scripts["C"] = [bought_answer_lost]
    with running(fake) as run:
        run.start("A", ONE)
        assert a_committed.wait(WAIT)
        run.start("C", ONE)  # C's listing shows A's instance: it is in C's "before"
        wait_until(lambda: len(fake.purchases) == 2)
        time.sleep(0.05)  # C's recovery is now waiting for A's purchase to end
        a_go.set()
        outcomes = {run.outcome("A"), run.outcome("C")}
    assert outcomes == set(fake.instances), outcomes
    assert len(fake.purchases) == 2
    assert_accounted(fake, run)


def test_the_same_when_the_earlier_purchase_answers_last() -> None:
    """C's recovery starts before A's purchase has even failed: it must wait for A, not list."""
    fake = FakeQianfan()
    a_go, a_committed = threading.Event(), threading.Event()
    fake.scripts["A"] = [commit_then(a_go, bought_answer_lost, committed=a_committed)]
    fake.scripts["C"] = [bought_answer_lost]
    with running(fake) as run:
        run.start("A", ONE)
        assert a_committed.wait(WAIT)
        run.start("C", ONE)
        wait_until(lambda: len(fake.purchases) == 2)
        listings_while_in_flight = fake.listings
        time.sleep(0.2)
        assert fake.listings == listings_while_in_flight, "a recovery listed while a purchase was in flight"
        a_go.set()
        assert {run.outcome("A"), run.outcome("C")} == set(fake.instances)
    assert len(fake.purchases) == 2


def test_a_purchase_that_succeeds_while_a_recovery_waits_is_claimed_in_the_same_step() -> None:
    """B's answer arrives while A recovers: B's instance must never look unexplained to A."""
    fake = FakeQianfan()
    b_go, b_committed = threading.Event(), threading.Event()
    fake.scripts["B"] = [commit_then(b_go, ok, committed=b_committed)]
    fake.scripts["A"] = [bought_answer_lost]
    with running(fake) as run:
        run.start("B", ONE)
        assert b_committed.wait(WAIT)
        run.start("A", ONE)
        wait_until(lambda: len(fake.purchases) == 2)
        time.sleep(0.05)
        b_go.set()
        a, b = run.outcome("A"), run.outcome("B")
    assert isinstance(a, str) and isinstance(b, str) and a != b, (a, b)
    assert {a, b} == set(fake.instances)


def test_two_pools_of_different_specs_of_one_model_each_get_their_own() -> None:
    fake = FakeQianfan()
    fake.scripts["one"] = [bought_answer_lost]
    fake.scripts["two"] = [bought_answer_lost]
    with running(fake) as run:
        run.start("one", ONE)
        run.start("two", TWO)
        one, two = run.outcome("one"), run.outcome("two")
    assert isinstance(one, str) and isinstance(two, str)
    assert fake.instances[one] == ONE and fake.instances[two] == TWO
    assert len(fake.purchases) == 2


def test_an_outsiders_instance_of_another_spec_is_ignored() -> None:
    fake = FakeQianfan()
    fake.scripts["A"] = [bought_answer_lost]
    with running(fake) as run:
        fake.outsider(TWO)
        future = run.start("A", ONE)
        result = future.result(timeout=WAIT)
    assert fake.instances[result] == ONE
    assert len(fake.purchases) == 1


def test_a_late_listing_is_waited_for_within_the_settle_time() -> None:
    """The bought instance shows up two listings late: still found, not bought again."""
    fake = FakeQianfan(lag=2)
    fake.scripts["A"] = [bought_answer_lost]
    with running(fake, settle=5.0) as run:
        result = run.start("A", ONE).result(timeout=WAIT)
    assert result in fake.instances and len(fake.instances) == 1
    assert len(fake.purchases) == 1
    assert fake.listings >= 4  # the pre-purchase listing, two that missed it, the one that found it


def test_more_new_instances_than_lost_purchases_refuses_to_guess_and_names_them_all() -> None:
    fake = FakeQianfan()
    go, committed = threading.Event(), threading.Event()
    fake.scripts["A"] = [commit_then(go, bought_answer_lost, committed=committed)]
    with running(fake) as run:
        run.start("A", ONE)
        assert committed.wait(WAIT)
        stranger = fake.outsider(ONE)  # another stack bought the same spec in the same seconds
        go.set()
        outcome = run.outcome("A")
    assert isinstance(outcome, ProviderError), outcome
    text = str(outcome)
    assert "unexplained" in text and "adoptInstanceId" in text
    assert all(instance_id in text for instance_id in fake.instances) and stranger in text
    assert len(fake.purchases) == 1, "nothing may be bought while it is unclear what was"


# -- outcomes of one purchase ---------------------------------------------------------------------------
def test_a_lost_purchase_that_bought_nothing_is_sent_once_more() -> None:
    fake = FakeQianfan()
    fake.scripts["A"] = [nothing_bought]
    with running(fake, settle=0.3) as run:
        result = run.start("A", ONE).result(timeout=WAIT)
    assert list(fake.instances) == [result]
    assert len(fake.purchases) == 2


def test_two_lost_purchases_that_bought_nothing_fail_without_a_third() -> None:
    fake = FakeQianfan()
    fake.scripts["A"] = [nothing_bought, nothing_bought]
    with running(fake, settle=0.3) as run:
        run.start("A", ONE)
        outcome = run.outcome("A")
    assert isinstance(outcome, ProviderError) and "neither attempt bought anything" in str(outcome)
    assert fake.instances == {} and len(fake.purchases) == 2


def test_a_definitive_refusal_is_raised_without_listing_or_sending_again() -> None:
    fake = FakeQianfan()
    fake.scripts["A"] = [refused]
    with running(fake) as run:
        run.start("A", ONE)
        outcome = run.outcome("A")
    assert isinstance(outcome, QianfanError) and outcome.code == "AccessDenied"
    assert len(fake.purchases) == 1 and fake.listings == 1  # only the listing before the purchase


def test_a_throttled_purchase_is_sent_again_after_a_pause_without_recovery() -> None:
    fake = FakeQianfan()
    fake.scripts["A"] = [throttled, throttled]
    with running(fake) as run:
        result = run.start("A", ONE).result(timeout=WAIT)
    assert list(fake.instances) == [result] and len(fake.purchases) == 3 and fake.listings == 1


@pytest.mark.parametrize("error", [OverflowError("timestamp out of range"), RuntimeError("anything")])
def test_any_exception_after_sending_is_treated_as_a_purchase_that_may_have_bought(error: Exception) -> None:
    def boom(fake: FakeQianfan, spec: Spec) -> str:
        fake.commit(spec)
        raise error

    fake = FakeQianfan()
    fake.scripts["A"] = [boom]
    with running(fake) as run:
        result = run.start("A", ONE).result(timeout=WAIT)
    assert list(fake.instances) == [result] and len(fake.purchases) == 1


def test_a_listing_that_fails_during_recovery_names_the_doubt_and_frees_the_model() -> None:
    fake = FakeQianfan()
    fake.scripts["A"] = [bought_answer_lost]
    with running(fake) as run:
        original_list = fake.get

        def list_fails_after_the_first(
            model: str, deadline: Deadline, *, fresh: bool = False, not_before: float | None = None
        ) -> Listing:
            if fake.listings >= 1:
                fake.listings += 1
                raise QianfanError("DescribeTPMResource", Kind.SERVER, status=500, hint="gave up after 3 attempt(s)")
            return original_list(model, deadline, fresh=fresh)

        fake.get = list_fails_after_the_first  # type: ignore[method-assign]
        run.start("A", ONE)
        outcome = run.outcome("A")
        assert isinstance(outcome, ProviderError), outcome
        assert "Whether a quota was bought is unknown" in str(outcome) and "adoptInstanceId" in str(outcome)
        fake.get = original_list  # type: ignore[method-assign]
        # The model is not stuck in a recovery: the next create of it goes through.
        assert run.start("B", ONE).result(timeout=WAIT) in fake.instances
    assert len(fake.instances) == 2


def test_a_recovery_whose_time_runs_out_waiting_for_purchases_in_flight_fails_naming_the_doubt() -> None:
    fake = FakeQianfan()
    hold, started = threading.Event(), threading.Event()
    fake.scripts["slow"] = [after(hold, ok, mark=started)]
    fake.scripts["A"] = [bought_answer_lost]
    with running(fake) as run:
        run.start("slow", ONE, timeout=20)
        assert started.wait(WAIT)
        begun = time.monotonic()
        run.start("A", ONE, timeout=0.8)
        outcome = run.outcome("A")
        waited = time.monotonic() - begun
        hold.set()
        assert isinstance(run.outcome("slow"), str)
    assert isinstance(outcome, ProviderError) and "Whether a quota was bought is unknown" in str(outcome)
    assert waited < 0.8 + 3, f"the create waited {waited:.1f}s past a 0.8 s deadline"


# -- releaseAfter: the release is fixed when a purchase is sent ----------------------------------------
EIGHT_HOURS = 8 * 3600.0
RELATIVE = Spec(MODEL, 1, None, EIGHT_HOURS)


class ShiftedClock(Clock):
    """The real clock, its wall time moved on by `shift` seconds whenever a test says so."""

    def __init__(self) -> None:
        self.shift = 0.0
        self.walls: list[float] = []

    def wall(self) -> float:
        moment = time.time() + self.shift
        self.walls.append(moment)
        return moment


def release_of(text: str | None) -> float:
    assert text is not None
    return parse_release_time(text).timestamp()


def test_a_relative_release_is_computed_when_the_purchase_is_sent() -> None:
    """Not when the create starts: the listing before the purchase takes (here) ten minutes."""
    fake = FakeQianfan()
    clock = ShiftedClock()
    listed = fake.get

    def slow_list(model: str, deadline: Deadline, *, fresh: bool = False, not_before: float | None = None) -> Listing:
        clock.shift += 600.0
        return listed(model, deadline, fresh=fresh, not_before=not_before)

    fake.get = slow_list  # type: ignore[method-assign]
    purchases = purchases_of(fake)
    begun = time.time()
    bought = purchases.buy(RELATIVE, Owner(), Deadline(5, clock))
    [sent] = fake.purchases
    assert sent.release_after_seconds is None and sent.release_time is not None  # an instant, not a duration
    assert sent.release_time == release_after(clock.walls[0], EIGHT_HOURS)
    assert begun + 600 + EIGHT_HOURS <= release_of(sent.release_time) <= time.time() + 600 + EIGHT_HOURS + 1
    assert bought.release_time == sent.release_time == fake.instances[bought.instance_id].release_time
    assert purchases._ledger.record(1).release_time == sent.release_time  # what the recovery would match


def test_a_purchase_sent_again_after_buying_nothing_computes_its_own_release() -> None:
    fake = FakeQianfan()
    clock = ShiftedClock()

    def nothing_bought_ten_minutes_later(fake: FakeQianfan, spec: Spec) -> str:
        clock.shift += 600.0
        return nothing_bought(fake, spec)

    fake.scripts["A"] = [nothing_bought_ten_minutes_later]
    with running(fake, settle=0.3) as run:
        result = run.start("A", RELATIVE, clock=clock).result(timeout=WAIT)
    first, second = fake.purchases
    assert 600 <= release_of(second.release_time) - release_of(first.release_time) <= 600 + 10
    assert list(fake.instances) == [result] and fake.instances[result] == second


def test_a_lost_answer_is_recovered_by_the_instant_it_was_sent_with() -> None:
    """The listing shows the instant, not the duration: the recovery must compare the two, or it
    concludes that nothing was bought and buys again. An outsider of the same size with another
    release is not taken for it."""
    fake = FakeQianfan()
    fake.scripts["A"] = [bought_answer_lost]
    stranger = fake.outsider(Spec(MODEL, 1, release_after(time.time() + 3600, EIGHT_HOURS)))
    with running(fake) as run:
        result = run.start("A", RELATIVE).result(timeout=WAIT)
    assert result != stranger and len(fake.purchases) == 1
    [sent] = fake.purchases
    assert fake.instances[result] == sent and sent.release_time is not None
    assert run.bought["A"].release_time == sent.release_time  # what create stores as the releaseTime output


def test_a_relative_spec_describes_its_duration() -> None:
    assert RELATIVE.describe() == "ernie-speed-8k instance(s) with 1 unit(s), release 8h after purchase"
    assert RELATIVE.sent_at(1895545830.0).describe() == (
        "ernie-speed-8k instance(s) with 1 unit(s), release at 2030-01-25T20:30:30+08:00"
    )
    assert ONE.sent_at(1895545830.0) is ONE


# -- adoption claims ----------------------------------------------------------------------------------
def test_an_instance_bought_or_adopted_in_this_host_cannot_be_adopted_again() -> None:
    fake = FakeQianfan()
    purchases = purchases_of(fake, 0.3)
    bought = purchases.buy(ONE, Owner(), Deadline(5)).instance_id
    with pytest.raises(ProviderError, match="already holds this instance"):
        purchases.adopt(bought, MODEL, Owner())
    elsewhere = fake.outsider(ONE)
    purchases.adopt(elsewhere, MODEL, Owner())
    with pytest.raises(ProviderError, match="already holds this instance"):
        purchases.adopt(elsewhere, MODEL, Owner())


def test_an_adopted_instance_is_never_handed_to_a_recovery() -> None:
    fake = FakeQianfan()
    purchases = purchases_of(fake, 0.3)
    go, committed = threading.Event(), threading.Event()
    fake.scripts["A"] = [commit_then(go, bought_answer_lost, committed=committed)]
    run = Run(purchases)
    try:
        run.start("A", ONE)
        assert committed.wait(WAIT)
        adopted = fake.outsider(ONE)
        purchases.adopt(adopted, MODEL, Owner())  # another resource of this run adopts it meanwhile
        go.set()
        result = run.outcome("A")
    finally:
        run.close()
    assert isinstance(result, str) and result != adopted


# -- many at once -------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(8))
def test_sixteen_creates_of_one_spec_with_random_lost_answers_never_buy_twice(seed: int) -> None:
    """16 creates of one spec at once, each purchase randomly answered, lost after buying, or lost
    before buying, with random delays: exactly one instance per create, none bought twice."""
    rng = random.Random(seed)
    fake = FakeQianfan(lag=rng.choice([0, 0, 1]))

    def delayed(step: Step, delay: float) -> Step:
        def run(fake: FakeQianfan, spec: Spec) -> str:
            time.sleep(delay)
            return step(fake, spec)

        return run

    names = [f"q{n}" for n in range(16)]
    for name in names:
        first = rng.choice([ok, bought_answer_lost, bought_answer_lost, nothing_bought])
        fake.scripts[name] = [delayed(first, rng.uniform(0, 0.03)), delayed(ok, rng.uniform(0, 0.03))]
    with running(fake, settle=0.5) as run:
        for name in names:
            run.start(name, ONE)
        outcomes = {name: run.outcome(name) for name in names}
    failures = {n: o for n, o in outcomes.items() if isinstance(o, Exception)}
    assert not failures, failures
    assert sorted(outcomes.values()) == sorted(fake.instances), "an instance was bought twice or orphaned"
    assert_accounted(fake, run)


# -- the matching ------------------------------------------------------------------------------------------
def record(purchase_id: int) -> PurchaseRecord:
    return PurchaseRecord(
        purchase_id, MODEL, 1, None, "h", Owner(), float(purchase_id), 100.0, None, None, State.UNCERTAIN, None, None
    )


def started(instance_id: str, at: float) -> Instance:
    return Instance(instance_id, "Running", None, 1, None, True, start_time=at)


def test_where_evidence_cannot_tell_the_earlier_purchase_gets_the_earlier_instance() -> None:
    """Both purchases could have bought either instance: no swap — the earlier purchase takes the
    instance that started earlier."""
    first, second = record(1), record(2)
    x, y = started("tpm-x", 10.0), started("tpm-y", 11.0)
    assert purchase_module._match([first, second], [y, x], lambda i, r: True) == {1: "tpm-x", 2: "tpm-y"}


def test_the_matching_is_maximum_and_keeps_earlier_members_matched() -> None:
    """The first member could have either; the second only the first's free choice: both matched."""
    first, second = record(1), record(2)
    x, y = started("tpm-x", 10.0), started("tpm-y", 11.0)
    only_x_for_second = lambda i, r: r.id == 1 or i.instance_id == "tpm-x"  # noqa: E731
    assert purchase_module._match([first, second], [x, y], only_x_for_second) == {1: "tpm-y", 2: "tpm-x"}
    # More members than candidates: the earlier member is the one matched.
    assert purchase_module._match([first, second], [x], lambda i, r: True) == {1: "tpm-x"}
