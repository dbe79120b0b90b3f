"""Shared listings (providers/listings.py): the freshness rules, one at a time.

A real `QianfanClient` whose SDK call is replaced by a fake that answers Describe as Baidu
documents it (items of exactly instanceId, paymentTiming, rpm, tpm, status, startTime,
expiredTime), counts calls per model, and can hold an answer until the test lets it go.
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

import providers.listings as listings_module
from providers.client import QianfanClient
from providers.deadline import Deadline
from providers.errors import Kind, QianfanError
from providers.listings import Listings
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

    def __call__(self, route: str, action: str, body: dict[str, Any], **_: Any) -> Response:
        assert action == "DescribeTPMResource" and set(body) == {"model"}, body
        model = body["model"]
        with self._lock:
            self.calls[model] += 1
            failing = self.fail > 0
            self.fail -= failing
            ids = list(self.instances.get(model, []))
        self.started.set()
        assert self.hold.wait(10), "the test never let the answer go"
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


def ids(found: list[Any]) -> list[str]:
    return [i.instance_id for i in found]


def together(*calls: Callable[[], Any]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(call) for call in calls]
        return [f.result(timeout=20) for f in futures]


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
    with shared.writing(SPEED):
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
        with shared.writing(SPEED):
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
    with shared.writing(SPEED):  # a write still in flight while we list
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
