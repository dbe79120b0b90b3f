"""Listings (providers/listings.py): pagination and its consistency, the freshness rules of
shared listings one at a time, what a host remembers of the instances it saw, and the finders.

A real `QianfanClient` whose SDK call is replaced by a fake that answers Describe as Baidu
documents it (items of exactly instanceId, paymentTiming, rpm, tpm, status, startTime,
expiredTime), counts calls per model, and can hold an answer until the test lets it go. Baidu
documents no pagination for Describe: the fakes follow Baidu Cloud's usual list convention
(`isTruncated`, `nextMarker`, sent back as `marker`), the stand-in's choice, written down here.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

import providers.listings as listings_module
from providers.client import QianfanClient
from providers.deadline import Deadline
from providers.errors import Kind, ProviderError, QianfanError
from providers.instances import Instance
from providers.listings import Elsewhere, Listing, Listings, find_elsewhere, find_instance, list_instances, look
from providers.settings import Secret, Settings

SETTINGS = Settings(access_key=Secret("AKlistings"), secret_key=Secret("SKlistings"), timeout_seconds=30.0)
SPEED, LITE = "ernie-speed-8k", "ernie-lite-8k"


@dataclass
class Response:
    body: Any
    code: int = 200


@dataclass
class FakeDescribe:
    """Describe answered from `instances` per model; `hold` keeps answers until set; `fail` the next N."""

    instances: dict[str, list[str]] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    hold: threading.Event = field(default_factory=threading.Event)
    started: threading.Event = field(default_factory=threading.Event)
    fail: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.hold.set()

    def __call__(self, route: str, action: str, body: dict[str, Any], **options: Any) -> Response:
        assert action == "DescribeTPMResource" and set(body) == {"model"}, body
        model = body["model"]
        with self._lock:
            self.calls[model] += 1
            failing = self.fail > 0
            self.fail -= failing
            ids = list(self.instances.get(model, []))
        self.started.set()
        # A held answer ends, as a real request does, at the request timeout the client asked for.
        if not self.hold.wait(min(10.0, options.get("request_timeout", 10.0))):
            raise requests.exceptions.Timeout("held past the request timeout")
        if failing:
            return Response({"requestId": "r", "code": "InternalError", "message": "injected"}, code=500)
        items = [
            {
                "instanceId": i,
                "paymentTiming": "Postpaid",
                "rpm": 33,
                "tpm": 10000,
                "status": "Running",
                "startTime": "2026-11-26T10:00:00Z",
                "expiredTime": "-",
            }
            for i in ids
        ]
        return Response({"requestId": "r", "result": {"instances": items}})


def listings(fake: FakeDescribe, max_age: float = 1.0) -> Listings:
    client = QianfanClient(SETTINGS)
    client._call_action = fake  # the SDK's call_action, replaced
    return Listings(client, max_age)


def ids(found: Listing) -> list[str]:
    return [i.instance_id for i in found.instances]


# -- sharing ------------------------------------------------------------------------------------------
def test_operations_asking_at_once_share_one_describe() -> None:
    fake = FakeDescribe({SPEED: ["tpm-a"]})
    fake.hold.clear()
    shared = listings(fake)
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = [pool.submit(shared.get, SPEED, Deadline(10)) for _ in range(8)]
        assert fake.started.wait(5)
        time.sleep(0.05)  # all eight are waiting on the one listing in flight
        fake.hold.set()
        results = [f.result(timeout=10) for f in futures]
    assert all(ids(r) == ["tpm-a"] for r in results)
    assert fake.calls[SPEED] == 1 and shared.fetches == 1


def test_a_recent_listing_is_reused_and_an_old_one_is_not() -> None:
    fake = FakeDescribe({SPEED: ["tpm-a"]})
    shared = listings(fake, max_age=0.3)
    shared.get(SPEED, Deadline(5))
    shared.get(SPEED, Deadline(5))
    assert fake.calls[SPEED] == 1
    time.sleep(0.35)  # nothing outlives its age limit
    shared.get(SPEED, Deadline(5))
    assert fake.calls[SPEED] == 2


def test_models_are_listed_separately() -> None:
    fake = FakeDescribe({SPEED: ["tpm-a"], LITE: ["tpm-b"]})
    shared = listings(fake)
    assert ids(shared.get(SPEED, Deadline(5))) == ["tpm-a"] and ids(shared.get(LITE, Deadline(5))) == ["tpm-b"]
    assert fake.calls == Counter({SPEED: 1, LITE: 1})


def test_max_age_zero_turns_sharing_off() -> None:
    fake = FakeDescribe({SPEED: ["tpm-a"]})
    fake.hold.clear()
    shared = listings(fake, max_age=0)
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(shared.get, SPEED, Deadline(10)) for _ in range(3)]
        time.sleep(0.1)
        fake.hold.set()
        [f.result(timeout=10) for f in futures]
    shared.get(SPEED, Deadline(5))
    assert fake.calls[SPEED] == 4


# -- freshness ------------------------------------------------------------------------------------------
def test_a_fresh_get_never_uses_a_listing_requested_before_it_asked() -> None:
    fake = FakeDescribe({SPEED: ["tpm-a"]})
    shared = listings(fake, max_age=30)
    shared.get(SPEED, Deadline(5))
    fake.instances[SPEED].append("tpm-b")  # what a purchase just answered has made
    assert ids(shared.get(SPEED, Deadline(5), fresh=True)) == ["tpm-a", "tpm-b"]
    assert fake.calls[SPEED] == 2


def test_a_fresh_get_does_not_join_a_listing_in_flight_requested_before_it_asked() -> None:
    fake = FakeDescribe({SPEED: ["tpm-a"]})
    shared = listings(fake, max_age=30)
    fake.hold.clear()
    first = threading.Thread(target=shared.get, args=(SPEED, Deadline(10)), kwargs={"fresh": True})
    first.start()
    assert fake.started.wait(5)
    # A listing requested before this confirmation asked may not serve it: a second one is made.
    second = threading.Thread(target=shared.get, args=(SPEED, Deadline(10)), kwargs={"fresh": True})
    second.start()
    time.sleep(0.1)
    fake.hold.set()
    first.join(10), second.join(10)
    assert fake.calls[SPEED] == 2


def test_a_write_invalidates_every_listing_requested_before_it() -> None:
    fake = FakeDescribe({SPEED: ["tpm-a"], LITE: ["tpm-b"]})
    shared = listings(fake, max_age=30)
    shared.get(SPEED, Deadline(5)), shared.get(LITE, Deadline(5))
    with shared.writing(SPEED, Deadline(5)):
        fake.instances[SPEED].append("tpm-c")
    assert ids(shared.get(SPEED, Deadline(5))) == ["tpm-a", "tpm-c"]  # not the listing from before the write
    assert ids(shared.get(LITE, Deadline(5))) == ["tpm-b"]  # another model's listing is still good
    assert fake.calls == Counter({SPEED: 2, LITE: 1})


def test_a_listing_waits_briefly_for_writes_in_flight_so_confirmations_share_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Four purchases answered a few milliseconds apart: their confirmations share one listing."""
    monkeypatch.setattr(listings_module, "BATCH_SECONDS", 2.0)
    fake = FakeDescribe({SPEED: []})
    shared = listings(fake, max_age=30)
    answered = [threading.Event() for _ in range(4)]

    def purchase_then_confirm(n: int) -> list[str]:
        with shared.writing(SPEED, Deadline(5)):
            assert answered[n].wait(10)
            fake.instances[SPEED].append(f"tpm-{n}")
        return ids(shared.get(SPEED, Deadline(10), fresh=True))

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(purchase_then_confirm, n) for n in range(4)]
        for event in answered:
            time.sleep(0.03)
            event.set()
        results = [f.result(timeout=10) for f in futures]
    assert all(sorted(r) == ["tpm-0", "tpm-1", "tpm-2", "tpm-3"] for r in results)
    assert fake.calls[SPEED] == 1


def test_the_wait_for_writes_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listings_module, "BATCH_SECONDS", 0.1)
    fake = FakeDescribe({SPEED: ["tpm-a"]})
    shared = listings(fake)
    with shared.writing(SPEED, Deadline(5)):  # a write still in flight while we list
        started = time.monotonic()
        assert ids(shared.get(SPEED, Deadline(5), fresh=True)) == ["tpm-a"]
        assert time.monotonic() - started < 1.0


# -- faults and deadlines -------------------------------------------------------------------------------------
def test_a_fault_on_the_shared_call_reaches_every_waiter_and_each_retries_on_its_own() -> None:
    fake = FakeDescribe({SPEED: ["tpm-a"]}, fail=1)
    fake.hold.clear()
    shared = listings(fake)
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(shared.get, SPEED, Deadline(10)) for _ in range(3)]
        assert fake.started.wait(5)
        time.sleep(0.05)
        fake.hold.set()
        results = [f.result(timeout=10) for f in futures]
    assert all(ids(r) == ["tpm-a"] for r in results)
    # One failed attempt shared by three, then retries after each one's own backoff: at least one
    # more call, and never more than one per waiter.
    assert 2 <= fake.calls[SPEED] <= 4


@pytest.mark.slow
def test_an_endless_fault_gives_up_inside_each_operations_deadline() -> None:
    fake = FakeDescribe({SPEED: ["tpm-a"]}, fail=10_000)
    shared = listings(fake)
    started = time.monotonic()
    with pytest.raises(QianfanError) as caught:
        shared.get(SPEED, Deadline(1.5))
    assert time.monotonic() - started < 2.0
    assert caught.value.kind is Kind.SERVER and "gave up after" in str(caught.value)


def test_joining_a_slow_listing_never_waits_past_ones_own_deadline() -> None:
    fake = FakeDescribe({SPEED: ["tpm-a"]})
    fake.hold.clear()
    shared = listings(fake)
    slow = threading.Thread(target=shared.get, args=(SPEED, Deadline(10)))
    slow.start()
    assert fake.started.wait(5)
    started = time.monotonic()
    with pytest.raises(QianfanError) as caught:
        shared.get(SPEED, Deadline(0.3))
    assert time.monotonic() - started < 1.0
    assert "did not answer before this operation's deadline" in str(caught.value)
    fake.hold.set()
    slow.join(10)


def test_a_confirmation_joins_the_listing_its_wave_started_as_its_answer_came(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The last write of a wave to be answered may ask for its confirmation a moment after the
    others started theirs (its own bookkeeping first): a listing requested after its write ended
    serves it, so the wave shares one listing."""
    monkeypatch.setattr(listings_module, "BATCH_SECONDS", 2.0)
    fake = FakeDescribe({SPEED: []})
    shared = listings(fake, max_age=30)
    with shared.writing(SPEED, Deadline(5)) as write:
        fake.instances[SPEED].append("tpm-a")
    first = shared.get(SPEED, Deadline(5), since=write.ended)
    time.sleep(0.05)  # the late asker's bookkeeping
    assert write.ended is not None and first.requested >= write.ended
    assert ids(shared.get(SPEED, Deadline(5), since=write.ended)) == ["tpm-a"]
    assert fake.calls[SPEED] == 1
    # Asked as "after now" instead, it would have needed a listing of its own.
    shared.get(SPEED, Deadline(5), fresh=True)
    assert fake.calls[SPEED] == 2


@pytest.mark.slow
def test_a_starters_short_deadline_does_not_fail_a_waiter_with_time_left() -> None:
    """I6: a refresh with time left that joins a listing started by a create with almost none must
    not inherit the create's "ran out of time": it lists on its own."""
    fake = FakeDescribe({SPEED: ["tpm-a"]})
    fake.hold.clear()
    shared = listings(fake)
    starter_error: list[Exception] = []

    def short() -> None:
        try:
            shared.get(SPEED, Deadline(0.4))
        except QianfanError as exc:
            starter_error.append(exc)

    first = threading.Thread(target=short)
    first.start()
    assert fake.started.wait(5)
    with ThreadPoolExecutor(max_workers=1) as pool:
        joined = pool.submit(shared.get, SPEED, Deadline(10))
        time.sleep(0.6)  # the starter's deadline has passed while its listing is held
        first.join(5)
        fake.hold.set()
        assert ids(joined.result(timeout=10)) == ["tpm-a"]
    assert starter_error, "the starter itself must fail: its deadline passed"


# -- pages: read whole, or marked ------------------------------------------------------------------------------
Script = Any | Exception | Callable[[str, dict[str, Any]], Any]


def item(
    instance_id: str, status: str = "Running", units: int = 1, start: str = "2026-11-26T10:00:00Z"
) -> dict[str, Any]:
    """A Describe item in Baidu's documented shape (1 unit = 10,000 TPM and 33 RPM, per Baidu)."""
    return {
        "instanceId": instance_id,
        "paymentTiming": "Postpaid",
        "rpm": 33 * units,
        "tpm": 10_000 * units,
        "status": status,
        "startTime": start,
        "expiredTime": "-",
    }


class FakePages:
    """Stands in for `QianfanClient.describe`: answers from a script, records every call's extras."""

    def __init__(self, *answers: Script) -> None:
        self.answers = list(answers)
        self.calls: list[dict[str, Any]] = []

    def describe(self, model: str, deadline: Deadline, *, retry: bool = True, **extra: Any) -> Any:
        self.calls.append(extra)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(model, extra)
        return answer


def server_error() -> QianfanError:
    return QianfanError("DescribeTPMResource", Kind.SERVER, status=500, code="InternalError")


def page(*items: dict[str, Any], marker: str | None = None, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"instances": list(items), **fields}
    if marker is not None:
        body.update(isTruncated=True, nextMarker=marker)
    return body


def test_list_instances_one_page() -> None:
    fake = FakePages(page(item("tpm-a"), item("tpm-b", "Stopped")))
    found = list_instances(fake, SPEED, Deadline(5))  # type: ignore[arg-type]
    assert [(i.instance_id, i.status) for i in found.instances] == [("tpm-a", "Running"), ("tpm-b", "Stopped")]
    assert found.whole and found.consistent and fake.calls == [{}]


def test_list_instances_follows_markers() -> None:
    fake = FakePages(
        page(item("tpm-a"), marker="m1"),
        page(item("tpm-b"), marker="m2"),
        {"instances": [item("tpm-c")], "isTruncated": False, "nextMarker": "ignored"},
        AssertionError("no fourth page was asked for"),
    )
    found = list_instances(fake, SPEED, Deadline(5))  # type: ignore[arg-type]
    assert ids(found) == ["tpm-a", "tpm-b", "tpm-c"] and found.whole
    assert fake.calls == [{}, {"marker": "m1"}, {"marker": "m2"}]


def test_list_instances_stops_at_a_truncated_page_without_a_marker() -> None:
    fake = FakePages({"instances": [item("tpm-a")], "isTruncated": True}, AssertionError("not asked"))
    assert ids(list_instances(fake, SPEED, Deadline(5))) == ["tpm-a"]  # type: ignore[arg-type]
    assert len(fake.calls) == 1


def test_list_instances_is_bounded_at_100_pages() -> None:
    pages = iter(range(1_000))

    def endless(model: str, extra: dict[str, Any]) -> Any:
        n = next(pages)
        return page(item(f"tpm-{n:08d}"), marker=f"m{n}")

    fake = FakePages(endless)
    with pytest.raises(QianfanError) as caught:  # a partial listing is never taken for the whole
        list_instances(fake, SPEED, Deadline(5))  # type: ignore[arg-type]
    assert len(fake.calls) == 100 and caught.value.kind is Kind.BAD_ANSWER and "100 pages" in str(caught.value)


def test_list_instances_passes_errors_on() -> None:
    with pytest.raises(QianfanError) as caught:
        list_instances(FakePages(server_error()), SPEED, Deadline(5))  # type: ignore[arg-type]
    assert caught.value.kind is Kind.SERVER


def test_pages_that_shifted_are_read_again_until_they_agree() -> None:
    """Pages shifting between requests list tpm-b twice (and would lose tpm-c); the listing is read
    again from the first page, and the read that agrees is the one returned."""
    fake = FakePages(
        page(item("tpm-a"), item("tpm-b"), marker="2"),
        page(item("tpm-b"), item("tpm-d")),  # shifted: tpm-b again, tpm-c lost
        page(item("tpm-a"), item("tpm-b"), marker="2"),
        page(item("tpm-c"), item("tpm-d")),
    )
    found = list_instances(fake, SPEED, Deadline(5))  # type: ignore[arg-type]
    assert ids(found) == ["tpm-a", "tpm-b", "tpm-c", "tpm-d"] and found.whole
    assert len(fake.calls) == 4


def test_pages_that_never_agree_are_deduplicated_and_marked() -> None:
    fake = FakePages(page(item("tpm-a"), item("tpm-a")))
    found = list_instances(fake, SPEED, Deadline(5))  # type: ignore[arg-type]
    assert ids(found) == ["tpm-a"]
    assert not found.whole and not found.consistent and "listed twice" in (found.problem or "")
    assert len(fake.calls) == listings_module.MAX_READS


@pytest.mark.parametrize(
    "pages, problem",
    [
        ([page(item("tpm-a"), marker="2", totalCount=3), page(item("tpm-b"), totalCount=2)], "total changed"),
        ([page(item("tpm-a"), totalCount=2)], "not the 2"),
        ([page(item("tpm-a"), marker="x"), page(item("tpm-b"), marker="x")], "repeated a marker"),
    ],
)
def test_disagreeing_counts_and_markers_mark_a_listing(pages: list[dict[str, Any]], problem: str) -> None:
    script = pages * listings_module.MAX_READS
    found = list_instances(FakePages(*script), SPEED, Deadline(5))  # type: ignore[arg-type]
    assert not found.whole and problem in (found.problem or "")


def test_a_reported_total_that_agrees_is_whole() -> None:
    fake = FakePages(page(item("tpm-a"), marker="2", totalCount=2), page(item("tpm-b"), totalCount=2))
    assert list_instances(fake, SPEED, Deadline(5)).whole  # type: ignore[arg-type]


# -- what a host has seen ------------------------------------------------------------------------------------
def test_a_listing_that_lost_an_instance_seen_live_before_is_lagging() -> None:
    fake = FakeDescribe({SPEED: ["tpm-a", "tpm-b"]})
    shared = listings(fake, max_age=0)
    assert shared.get(SPEED, Deadline(5)).consistent
    fake.instances[SPEED] = []  # a lagging replica answers empty
    lagging = shared.get(SPEED, Deadline(5))
    assert lagging.whole and lagging.lagging and not lagging.consistent and "tpm-a" in (lagging.problem or "")


def test_an_instance_this_host_released_may_be_missing() -> None:
    fake = FakeDescribe({SPEED: ["tpm-a", "tpm-b"]})
    shared = listings(fake, max_age=0)
    shared.get(SPEED, Deadline(5))
    shared.released(SPEED, "tpm-a")
    fake.instances[SPEED] = ["tpm-b"]
    assert shared.get(SPEED, Deadline(5)).consistent


def test_an_instance_missing_from_several_whole_listings_in_a_row_is_no_longer_expected() -> None:
    """Released outside and hidden by Qianfan: after FORGET_AFTER_MISSES whole listings lack it, a
    listing without it is consistent again (else one outside release would freeze every absence)."""
    fake = FakeDescribe({SPEED: ["tpm-a", "tpm-b"]})
    shared = listings(fake, max_age=0)
    shared.get(SPEED, Deadline(5))
    fake.instances[SPEED] = ["tpm-b"]
    marks = [shared.get(SPEED, Deadline(5)).lagging for _ in range(listings_module.FORGET_AFTER_MISSES + 1)]
    assert marks == [True] * listings_module.FORGET_AFTER_MISSES + [False]


def test_empty_answers_in_a_row_never_make_an_instance_seen_live_forgotten() -> None:
    """Found by the 500 host trials (trial 314): five empty answers in a row made the console's live
    instances forgotten after three, so the fourth and fifth looked consistent, the recovery took
    them as the absence of three lost purchases' instances and bought again. An empty answer is
    what a lagging replica gives; it never counts toward forgetting."""
    fake = FakeDescribe({SPEED: ["tpm-a", "tpm-b"]})
    shared = listings(fake, max_age=0)
    shared.get(SPEED, Deadline(5))
    fake.instances[SPEED] = []
    marks = [shared.get(SPEED, Deadline(5)).consistent for _ in range(listings_module.FORGET_AFTER_MISSES * 3)]
    assert marks == [False] * (listings_module.FORGET_AFTER_MISSES * 3)
    fake.instances[SPEED] = ["tpm-b", "tpm-c"]  # one that lists others: tpm-a's absence now counts
    marks = [shared.get(SPEED, Deadline(5)).lagging for _ in range(listings_module.FORGET_AFTER_MISSES + 1)]
    assert marks == [True] * listings_module.FORGET_AFTER_MISSES + [False]


def test_seen_before_is_about_answers_before_the_moment() -> None:
    fake = FakeDescribe({SPEED: ["tpm-a"]})
    shared = listings(fake, max_age=0)
    before = time.monotonic()
    listing = shared.get(SPEED, Deadline(5))
    assert not shared.seen_before(SPEED, "tpm-a", before)  # answered after that moment
    assert shared.seen_before(SPEED, "tpm-a", listing.answered + 0.001)
    assert not shared.seen_before(SPEED, "tpm-b", time.monotonic())
    assert not shared.seen_before(LITE, "tpm-a", time.monotonic())


# -- finders, over a lister (in the host: the shared listings) -------------------------------------------------
class FakeLister:
    """Stands in for `Listings`: scripted listings per call, recording `fresh` and when."""

    def __init__(self, *answers: list[Instance] | Listing | Exception) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, bool]] = []
        self.times: list[float] = []

    def get(
        self,
        model: str,
        deadline: Deadline,
        *,
        fresh: bool = False,
        not_before: float | None = None,
        since: float | None = None,
    ) -> Listing:
        self.calls.append((model, fresh))
        self.times.append(time.monotonic())
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, Listing):
            return answer
        return Listing(model, tuple(answer), time.monotonic(), time.monotonic())


def running(instance_id: str, units: int = 1, status: str = "Running") -> Instance:
    return Instance(instance_id, status, units=units, release_time_known=True)


@pytest.fixture
def quick_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pauses between absence looks are 0.5 s and 1 s in the provider; 20 ms keeps this tier fast."""
    monkeypatch.setattr(listings_module, "ABSENCE_PAUSES_SECONDS", (0.02, 0.02))


def test_look_picks_the_instance_from_one_listing() -> None:
    lister = FakeLister([running("tpm-other"), running("tpm-a", units=2)])
    found = look(lister, SPEED, "tpm-a", Deadline(5))
    assert found is not None and found.units == 2
    assert look(lister, SPEED, "tpm-b", Deadline(5), fresh=True) is None
    assert lister.calls == [(SPEED, False), (SPEED, True)]


@pytest.mark.usefixtures("quick_pauses")
def test_find_instance_found_at_once_asks_once() -> None:
    lister = FakeLister([running("tpm-a")])
    assert find_instance(lister, SPEED, "tpm-a", Deadline(5)) is not None
    assert lister.calls == [(SPEED, False)]


@pytest.mark.usefixtures("quick_pauses")
def test_find_instance_looks_again_in_fresh_listings_after_an_absence() -> None:
    lister = FakeLister([], [running("tpm-other"), running("tpm-a", units=5)])
    found = find_instance(lister, SPEED, "tpm-a", Deadline(5))
    assert found is not None and (found.instance_id, found.units) == ("tpm-a", 5)
    # The second look may not reuse the listing that lacked it: it is requested after a pause.
    assert lister.calls == [(SPEED, False), (SPEED, True)]
    assert lister.times[1] - lister.times[0] >= 0.02


@pytest.mark.usefixtures("quick_pauses")
def test_find_instance_believes_an_absence_only_after_enough_consistent_listings() -> None:
    lister = FakeLister([], [running("tpm-other")])
    assert find_instance(lister, SPEED, "tpm-a", Deadline(5)) is None
    assert len(lister.calls) == listings_module.ABSENCE_LOOKS


@pytest.mark.usefixtures("quick_pauses")
def test_two_empty_answers_of_a_lagging_replica_do_not_make_a_live_instance_gone() -> None:
    """The issue's trials mix one or two empty answers in: the third look finds the instance."""
    lister = FakeLister([], [], [running("tpm-a")])
    assert find_instance(lister, SPEED, "tpm-a", Deadline(5)) is not None


@pytest.mark.usefixtures("quick_pauses")
def test_listings_that_cannot_be_believed_are_no_evidence_of_absence() -> None:
    shifted = Listing(SPEED, (), 0.0, 0.0, whole=False, problem="instance tpm-b was listed twice")
    lagging = Listing(SPEED, (), 0.0, 0.0, lagging=True, problem="it lacks tpm-c, listed live before")
    lister = FakeLister(shifted, lagging, shifted, [], [], [])
    assert find_instance(lister, SPEED, "tpm-a", Deadline(5)) is None
    assert len(lister.calls) == 3 + listings_module.ABSENCE_LOOKS


def test_find_instance_raises_rather_than_guess_when_time_runs_out() -> None:
    lister = FakeLister([])
    started = time.monotonic()
    with pytest.raises(ProviderError) as caught:
        find_instance(lister, SPEED, "tpm-a", Deadline(0.1))
    assert time.monotonic() - started < 0.5  # not the full pauses
    assert "could not tell whether TPM quota tpm-a still exists" in str(caught.value)


@pytest.mark.usefixtures("quick_pauses")
def test_find_instance_passes_a_failed_look_on() -> None:
    lister = FakeLister([], server_error())
    with pytest.raises(QianfanError):
        find_instance(lister, SPEED, "tpm-a", Deadline(5))


def by_model(answers: dict[str, list[str] | Exception]) -> Listings:
    """Real Listings over a fake Describe answering per model (documented items)."""

    def describe(route: str, action: str, body: dict[str, Any], **_: Any) -> Response:
        answer = answers[body["model"]]
        if isinstance(answer, Exception):
            return Response({"requestId": "r", "code": "InvalidParameter", "message": "invalid model"}, code=400)
        return Response({"requestId": "r", "result": {"instances": [item(i) for i in answer]}})

    client = QianfanClient(SETTINGS)
    client._call_action = describe
    return Listings(client, 0)


def test_find_elsewhere_returns_the_first_live_other_model() -> None:
    shared = by_model({"ernie-lite-8k": [], "ernie-novel-8k": ["tpm-a"], "ernie-3.5-8k": ["tpm-a"]})
    found = find_elsewhere(shared, "tpm-a", ["ernie-lite-8k", "ernie-novel-8k", "ernie-3.5-8k"], Deadline(5))
    assert found.found is not None and found.found[0] == "ernie-novel-8k" and found.skipped == ()


def test_find_elsewhere_nowhere() -> None:
    shared = by_model({"a": [], "b": []})
    assert find_elsewhere(shared, "tpm-a", ["a", "b"], Deadline(5)) == Elsewhere(None, ())


def test_a_model_qianfan_refuses_is_skipped_named_and_not_asked_again() -> None:
    """I7: Baidu's newer pages drop the ernie-4.0/3.5 ids; one refused model must not fail the search."""
    refused = QianfanError("DescribeTPMResource", Kind.REJECTED, status=400, code="InvalidParameter")
    shared = by_model({"ernie-4.0-8k": refused, "ernie-lite-8k": []})
    first = find_elsewhere(shared, "tpm-a", ["ernie-4.0-8k", "ernie-lite-8k"], Deadline(5))
    assert first.found is None and [m for m, _ in first.skipped] == ["ernie-4.0-8k"]
    assert "ernie-4.0-8k could not be searched" in first.note() and "InvalidParameter" in first.note()
    fetches = shared.fetches
    again = find_elsewhere(shared, "tpm-a", ["ernie-4.0-8k"], Deadline(5))
    assert [m for m, _ in again.skipped] == ["ernie-4.0-8k"] and shared.fetches == fetches


def test_instances_a_read_that_was_read_again_showed_count_as_seen() -> None:
    """Pages that disagreed are read again; what the first read showed existed all the same, and is
    evidence that it existed before a purchase sent after the listing (I1)."""
    pages = [
        {"result": {"instances": [item("tpm-early"), item("tpm-early")]}},  # listed twice: read again
        {"result": {"instances": [item("tpm-other")]}},
    ]

    def describe(route: str, action: str, body: dict[str, Any], **_: Any) -> Response:
        return Response({"requestId": "r", **(pages.pop(0) if pages else {"result": {"instances": []}})})

    client = QianfanClient(SETTINGS)
    client._call_action = describe
    shared = Listings(client, 0)
    listing = shared.get(SPEED, Deadline(5))
    assert ids(listing) == ["tpm-other"] and listing.also_seen == {"tpm-early"}
    assert shared.seen_before(SPEED, "tpm-early", time.monotonic() + 1)
    assert "tpm-early" in shared.seen_ids(SPEED)
