"""`providers.lifecycle.Lifecycle`: bill ordering, half-way failures, confirmations and outputs,
in milliseconds, against a fake console.

The fake is the five TPM actions as Baidu documents them (written out here, not the provider's
parsers): success `{"requestId", "result"}`; Purchase answers `{"instanceId"}`; Describe lists
items of exactly instanceId, paymentTiming, rpm, tpm, status, startTime, expiredTime (`"-"` when
no release is scheduled, else the release moment in UTC — the sandbox's choice, which this fake
shares); Resize, AutoRelease and Release answer `true`. A test scripts what an action answers
next: an error, `false`, or `true` without applying the change.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from providers.client import QianfanClient
from providers.clock import Clock
from providers.errors import ProviderError, QianfanError
from providers.ledger import memory_ledger
from providers.lifecycle import PENDING, Lifecycle, NotShown
from providers.listings import Listings
from providers.purchase import Purchases, QianfanPurchaseApi
from providers.settings import Secret, Settings

MODEL = "ernie-speed-8k"
BEIJING = timezone(timedelta(hours=8))
T1, T2 = "2031-01-01T00:00:00+08:00", "2031-02-02T00:00:00+08:00"
SETTINGS = Settings(
    access_key=Secret("AKlifecycle"),
    secret_key=Secret("SKlifecycle"),
    endpoint="http://127.0.0.1:9",
    timeout_seconds=10.0,
    settle_seconds=0.3,
    listing_max_age_seconds=0.0,
)


@dataclass
class Response:
    body: Any
    code: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Row:
    model: str
    count: int
    release: str | None  # RFC3339 in +08:00, or None
    status: str = "Running"


def utc(release: str) -> str:
    return datetime.fromisoformat(release).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class FakeConsole:
    rows: dict[str, Row] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    #: action -> what its next calls answer: "error", "false", "not_applied", or "hidden" (Purchase:
    #: bought, answered, not listed yet)
    script: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    hidden: set[str] = field(default_factory=set)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, model: str = MODEL, count: int = 1, release: str | None = None) -> str:
        instance_id = f"tpm-{next(self._ids):08d}"
        self.rows[instance_id] = Row(model, count, release)
        return instance_id

    def __call__(self, route: str, action: str, body: dict[str, Any], **_: Any) -> Response:
        with self._lock:
            self.calls.append((action, dict(body)))
            step = self.script[action].pop(0) if self.script[action] else "ok"
        if step == "error":
            return Response({"requestId": "r", "code": "InternalError", "message": "injected"}, code=500)
        if action == "DescribeTPMResource":
            return self.ok({"instances": [self.item(i, r) for i, r in self.rows.items() if self.listed(i, body)]})
        if step == "false":
            return self.ok(False)
        if action == "PurchaseTPMResource":
            instance_id = self.add(body["model"], body["purchaseCount"], body["billing"].get("releaseTime"))
            if step == "hidden":
                self.hidden.add(instance_id)
            return self.ok({"instanceId": instance_id})
        row = self.rows.get(body["instanceId"])
        if row is None:
            return Response({"requestId": "r", "code": "ResourceNotFound", "message": "no such"}, code=404)
        if step != "not_applied":
            if action == "ResizeTPMResource":
                row.count = body["count"]
            elif action == "AutoReleaseTPMResource":
                release = body.get("releaseTime")
                row.release = (
                    None if release is None else datetime.fromisoformat(release).astimezone(BEIJING).isoformat()
                )
            elif action == "ReleaseTPMResource":
                row.status = "Stopped"
        return self.ok(True)

    def listed(self, instance_id: str, body: dict[str, Any]) -> bool:
        return self.rows[instance_id].model == body["model"] and instance_id not in self.hidden

    @staticmethod
    def ok(result: Any) -> Response:
        return Response({"requestId": "req-1", "result": result})

    @staticmethod
    def item(instance_id: str, row: Row) -> dict[str, Any]:
        return {
            "instanceId": instance_id,
            "paymentTiming": "Postpaid",
            "rpm": 33 * row.count,
            "tpm": 10_000 * row.count,
            "status": row.status,
            "startTime": "2026-11-26T10:00:00Z",
            "expiredTime": utc(row.release) if row.release else "-",
        }

    def writes(self) -> list[str]:
        return [action for action, _ in self.calls if action != "DescribeTPMResource"]


@pytest.fixture
def console() -> FakeConsole:
    return FakeConsole()


class JumpClock(Clock):
    """Time that jumps: a pause or a wait passes at once, so a test that runs out the operation's
    deadline through retries and settle waits takes milliseconds (one thread; nobody notifies)."""

    def __init__(self) -> None:
        self.elapsed = 0.0
        self._epoch = time.time()

    def monotonic(self) -> float:
        return self.elapsed

    def wall(self) -> float:
        return self._epoch + self.elapsed

    def sleep(self, seconds: float) -> None:
        self.elapsed += max(0.0, seconds)

    def wait(self, cond: threading.Condition, timeout: float | None) -> None:
        self.elapsed += 0.05 if timeout is None else max(0.0, timeout)


@pytest.fixture
def clock() -> JumpClock:
    return JumpClock()


@pytest.fixture
def life(console: FakeConsole, clock: JumpClock) -> Lifecycle:
    client = QianfanClient(SETTINGS, clock)
    client._call_action = console
    listings = Listings(client, SETTINGS.listing_max_age_seconds)
    ledger = memory_ledger("unit", clock)
    purchases = Purchases(QianfanPurchaseApi(client, listings), ledger, SETTINGS.settle_seconds)
    return Lifecycle(SETTINGS, client, listings, purchases, clock)


def state(instance_id: str, count: int, release: str | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {"model": MODEL, "purchaseCount": count, "paymentTiming": "Postpaid"}
    if release:
        props["releaseTime"] = release
    return {**props, "instanceId": instance_id, "status": "Running"}


# -- the bill goes down before it goes up -------------------------------------------------------------
@pytest.mark.parametrize(
    "before, after, order",
    [
        ((4, T1), (2, None), ["ResizeTPMResource", "AutoReleaseTPMResource"]),  # fewer units first
        ((2, T2), (4, T1), ["AutoReleaseTPMResource", "ResizeTPMResource"]),  # an earlier release first
        ((2, None), (4, T1), ["AutoReleaseTPMResource", "ResizeTPMResource"]),  # a new release first
        ((4, T1), (2, T2), ["ResizeTPMResource", "AutoReleaseTPMResource"]),  # a later release last
    ],
)
def test_an_update_lowers_the_bill_first(
    life: Lifecycle,
    console: FakeConsole,
    before: tuple[int, str | None],
    after: tuple[int, str | None],
    order: list[str],
) -> None:
    instance_id = console.add(count=before[0], release=before[1])
    news = {"model": MODEL, "purchaseCount": after[0], **({"releaseTime": after[1]} if after[1] else {})}
    outputs = life.update(instance_id, state(instance_id, *before), news)
    assert console.writes() == order
    assert (outputs["purchaseCount"], outputs.get("releaseTime")) == after
    assert console.rows[instance_id].count == after[0] and console.rows[instance_id].release == after[1]


def test_an_update_that_changes_nothing_writes_nothing(life: Lifecycle, console: FakeConsole) -> None:
    instance_id = console.add(count=2, release=T1)
    life.update(instance_id, state(instance_id, 2, T1), {"model": MODEL, "purchaseCount": 2, "releaseTime": T1})
    assert console.writes() == []


# -- half-way failures name what was applied (I8) -----------------------------------------------------
def test_a_second_change_that_fails_names_the_first(life: Lifecycle, console: FakeConsole) -> None:
    instance_id = console.add(count=2, release=T1)
    console.script["AutoReleaseTPMResource"] = ["error"] * 100
    with pytest.raises(ProviderError) as caught:
        life.update(instance_id, state(instance_id, 2, T1), {"model": MODEL, "purchaseCount": 4, "releaseTime": T2})
    assert "ResizeTPMResource to 4 unit(s) was applied; AutoReleaseTPMResource failed" in str(caught.value)
    assert console.rows[instance_id].count == 4 and console.rows[instance_id].release == T1


def test_a_read_back_that_fails_after_a_change_names_the_change(life: Lifecycle, console: FakeConsole) -> None:
    instance_id = console.add(count=2)
    # The ownership check lists fine; every listing after the resize fails.
    original = console.__call__

    def after_resize_describe_fails(route: str, action: str, body: dict[str, Any], **kw: Any) -> Response:
        if action == "DescribeTPMResource" and "ResizeTPMResource" in console.writes():
            console.calls.append((action, dict(body)))
            return Response({"requestId": "r", "code": "InternalError", "message": "injected"}, code=500)
        return original(route, action, body, **kw)

    life.client._call_action = after_resize_describe_fails
    with pytest.raises(ProviderError) as caught:
        life.update(instance_id, state(instance_id, 2), {"model": MODEL, "purchaseCount": 5})
    text = str(caught.value)
    assert "ResizeTPMResource to 5 unit(s) was applied, but reading it back failed" in text
    assert "Run `pulumi refresh` before anything else" in text


# -- confirmations ------------------------------------------------------------------------------------
@pytest.mark.parametrize("action", ["ResizeTPMResource", "AutoReleaseTPMResource"])
def test_a_change_answered_true_but_not_applied_is_not_recorded(
    life: Lifecycle, console: FakeConsole, action: str
) -> None:
    instance_id = console.add(count=2, release=T1)
    console.script[action] = ["not_applied"]
    news = {"model": MODEL, "purchaseCount": 3 if action == "ResizeTPMResource" else 2, "releaseTime": T1}
    if action == "AutoReleaseTPMResource":
        news["releaseTime"] = T2
    with pytest.raises(NotShown, match="Nothing was recorded as done"):
        life.update(instance_id, state(instance_id, 2, T1), news)


@pytest.mark.parametrize("step", ["false", "not_applied"])
def test_a_release_is_read_back(life: Lifecycle, console: FakeConsole, step: str) -> None:
    """I2: answered `false`, or `true` but not applied, a destroy fails naming the instance."""
    instance_id = console.add()
    console.script["ReleaseTPMResource"] = [step]
    with pytest.raises(ProviderError) as caught:
        life.delete(instance_id, MODEL, state(instance_id, 1))
    assert instance_id in str(caught.value) and "still" in str(caught.value)
    assert console.rows[instance_id].status == "Running"


def test_a_release_that_shows_stopped_succeeds(life: Lifecycle, console: FakeConsole) -> None:
    instance_id = console.add()
    life.delete(instance_id, MODEL, state(instance_id, 1))
    assert console.rows[instance_id].status == "Stopped"
    assert [a for a, _ in console.calls] == ["ReleaseTPMResource", "DescribeTPMResource"]


# -- create, adopt, read --------------------------------------------------------------------------------
def test_a_create_returns_the_listed_instance_with_every_output(life: Lifecycle, console: FakeConsole) -> None:
    instance_id, outputs = life.create({"model": MODEL, "purchaseCount": 3, "releaseTime": T1})
    assert console.rows[instance_id].count == 3
    assert outputs == {
        "model": MODEL,
        "purchaseCount": 3,
        "releaseTime": T1,
        "paymentTiming": "Postpaid",
        "instanceId": instance_id,
        "status": "Running",
        "tpm": 30_000,
        "rpm": 99,
    }


def test_a_bought_instance_not_listed_yet_is_pending_and_kept_by_a_refresh(
    life: Lifecycle, console: FakeConsole, capsys: pytest.CaptureFixture[str]
) -> None:
    """I3: Qianfan answered it bought; a refresh never drops it on absences alone."""
    console.script["PurchaseTPMResource"] = ["hidden"]
    instance_id, outputs = life.create({"model": MODEL, "purchaseCount": 1})
    assert outputs["status"] == PENDING and outputs["instanceId"] == instance_id
    found, kept, _ = life.read(instance_id, MODEL, outputs)
    assert found == instance_id and kept["status"] == PENDING
    assert f"TPM quota {instance_id} ({MODEL}) was answered as bought" in capsys.readouterr().err
    console.hidden.clear()
    found, shown, _ = life.read(instance_id, MODEL, kept)
    assert found == instance_id and shown["status"] == "Running"
    console.rows[instance_id].status = "Stopped"
    assert life.read(instance_id, MODEL, shown)[0] is None


def test_an_adoption_converges_without_buying(life: Lifecycle, console: FakeConsole) -> None:
    existing = console.add(count=1, release=T2)
    instance_id, outputs = life.create(
        {"model": MODEL, "purchaseCount": 2, "releaseTime": T1, "adoptInstanceId": existing}
    )
    assert instance_id == existing and "PurchaseTPMResource" not in console.writes()
    assert console.writes() == ["AutoReleaseTPMResource", "ResizeTPMResource"]  # an earlier release first
    assert (outputs["purchaseCount"], outputs["releaseTime"]) == (2, T1)


def test_a_refresh_takes_what_qianfan_has(life: Lifecycle, console: FakeConsole) -> None:
    instance_id = console.add(count=2, release=T1)
    console.rows[instance_id].count = 5  # changed in the console
    console.rows[instance_id].release = None
    found, outputs, inputs = life.read(instance_id, MODEL, state(instance_id, 2, T1))
    assert found == instance_id and outputs["purchaseCount"] == 5 and "releaseTime" not in outputs
    assert inputs == {"model": MODEL, "purchaseCount": 5, "paymentTiming": "Postpaid"}
    assert (outputs["tpm"], outputs["rpm"]) == (50_000, 165)


def test_describe_failing_after_a_purchase_still_returns_the_id(life: Lifecycle, console: FakeConsole) -> None:
    console.script["DescribeTPMResource"] = ["ok"] + ["error"] * 100  # the pre-purchase listing passes
    instance_id, outputs = life.create({"model": MODEL, "purchaseCount": 2})
    assert outputs["status"] == PENDING and outputs["tpm"] == 20_000 and instance_id in console.rows


def test_an_update_of_an_instance_gone_says_so(life: Lifecycle, console: FakeConsole) -> None:
    instance_id = console.add()
    console.rows[instance_id].status = "Stopped"
    with pytest.raises(ProviderError, match="no longer exists"):
        life.update(instance_id, state(instance_id, 1), {"model": MODEL, "purchaseCount": 2})
    assert console.writes() == []


def test_a_qianfan_error_passes_through_unchanged(life: Lifecycle, console: FakeConsole, clock: JumpClock) -> None:
    instance_id = console.add()
    console.script["ResizeTPMResource"] = ["error"] * 100
    with pytest.raises(QianfanError, match="ResizeTPMResource failed: HTTP 500"):
        life.update(instance_id, state(instance_id, 1), {"model": MODEL, "purchaseCount": 2})
    resizes = [action for action, _ in console.calls if action == "ResizeTPMResource"]
    assert 1 < len(resizes) < 100 and clock.elapsed <= SETTINGS.timeout_seconds  # retried, within the deadline
