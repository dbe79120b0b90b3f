"""Issue 16's eleven scenarios, each staged with the sandbox and run through the provider host.

Qianfan's answers do not always agree with each other: a lagging replica answers empty, pages
shift while they are read, a write is answered and not applied, a new instance shows up late, a
model id is refused. Each test below stages one such answer the way the issue describes it and
asserts what the provider promises (invariants I1-I8 in `providers/purchase.py` and
`providers/listings.py`): a create returns only its own new instance, no instance is held twice,
nothing bought is left unnamed, a write counts once Describe shows it, a quota Qianfan answered as
bought stays in state, and a half-way update names what it applied.

Every test fails on the provider as it was before issue 16 (commit 2940b5f, run with this
sandbox, conftest and file copied in). Timings are staged with margins of seconds, never asserted
tightly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hostdriver import HostError
from tests.support.hosts import plan_only_host

pytestmark = pytest.mark.slow  # provider hosts per test, real deadlines

MODEL = "ernie-speed-8k"
SPEC = {"model": MODEL, "purchaseCount": 1}
FAST = {"qianfan:settleSeconds": "1", "qianfan:timeoutSeconds": "30"}
#: Ten minutes: far beyond any clock-skew margin, so `startTime` alone says "existed before".
LONG_AGO_SECONDS = 600.0


# -- staging helpers ------------------------------------------------------------------------------
def long_ago() -> datetime:
    return datetime.now(UTC) - timedelta(seconds=LONG_AGO_SECONDS)


@contextmanager
def ten_minutes_ago(sandbox_control) -> Iterator[None]:
    """What is bought inside happened ten minutes ago: the sandbox clock is moved back meanwhile,
    so `startTime` says so. (An instance bought by a host that shares no ledger within seconds of
    a lost purchase, while every listing before it lagged, is the documented unknowable case.)"""
    sandbox_control.set_option("clock_offset_seconds", -LONG_AGO_SECONDS)
    try:
        yield
    finally:
        sandbox_control.set_option("clock_offset_seconds", 0)


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"staging: the condition did not hold within {timeout:g}s")
        time.sleep(0.01)


def answered(sandbox_control, action: str) -> int:
    """Requests of `action` the sandbox has finished with (answered, or their answer dropped)."""
    return sum(1 for r in sandbox_control.requests(action) if r["status"] is not None)


def outcome(future: Future[Any]) -> Any:
    """The call's result, or the HostError it raised."""
    try:
        return future.result(timeout=150)
    except HostError as err:
        return err


def concurrently(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls at once (the engine's parallel steps); each result or HostError, in order."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = [pool.submit(call) for call in calls]
        return [outcome(f) for f in futures]


def created_ids(results: list[Any]) -> list[str]:
    """The ids creates returned; a failed create makes the test fail with its message."""
    for result in results:
        assert not isinstance(result, HostError), result.last_line
    return [result[0] for result in results]


def watch_then(
    sandbox_control, action: str, then: Callable[[], None], *, delay: float = 0.0, answered_count: int = 0
) -> threading.Thread:
    """Once a request of `action` reaches the sandbox (or, with `answered_count`, that many were
    answered), wait `delay` seconds and run `then`; the watch is bounded."""

    def ready() -> bool:
        return (
            answered(sandbox_control, action) >= answered_count
            if answered_count
            else bool(sandbox_control.requests(action))
        )

    def watch() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not ready():
            time.sleep(0.005)
        time.sleep(delay)
        then()

    watcher = threading.Thread(target=watch)
    watcher.start()
    return watcher


# -- 1. an empty pre-purchase listing ---------------------------------------------------------------
@pytest.mark.parametrize("existing", ["console", "another stack"])
def test_1_an_empty_listing_before_a_purchase_that_bought_nothing_hands_over_no_existing_instance(
    make_host, sandbox_control, buy_elsewhere, existing: str
) -> None:
    """The same spec exists already, bought ten minutes ago: in the console, or by another stack
    whose host shares no ledger with this one (so only its `startTime` tells). The listing before
    the purchase answers empty once, the purchase fails with a 500 having bought nothing: the
    create must re-send after confirming, and end with an instance of its own."""
    with ten_minutes_ago(sandbox_control):
        if existing == "console":
            old = buy_elsewhere(SPEC)
        else:
            old = make_host(**{**FAST, "qianfan:ledger": "off"}).up(SPEC, name="elsewhere")[0]
    host = make_host(**FAST)
    sandbox_control.clear_requests()
    sandbox_control.add_fault("DescribeTPMResource", "empty")
    sandbox_control.add_fault("PurchaseTPMResource", "error", status=500)
    id_, outs = host.up(SPEC)
    assert id_ != old, f"the create was handed the {existing} instance {old}"
    rows = {row["instanceId"]: row for row in sandbox_control.instances()}
    assert set(rows) == {old, id_}
    assert rows[old]["status"] == "Running" and outs["instanceId"] == id_
    assert [req["status"] for req in sandbox_control.requests("PurchaseTPMResource")] == [500, 200]


def test_1_a_refresh_and_two_creates_sharing_one_empty_answer_each_buy_their_own(make_host, sandbox_control) -> None:
    """The stack's quotas x and y were bought in an earlier run; in this run a refresh of x and two
    creates of the same spec share one listing (sharing on, 300 ms per answer keeps it in flight
    while all three ask), which answers empty; both purchases fail with a 500 having bought
    nothing. Neither create may be handed x or y."""
    with ten_minutes_ago(sandbox_control):
        earlier = make_host(**FAST)
        x, x_outs = earlier.up(SPEC, name="x")
        y, _ = earlier.up(SPEC, name="y")
    host = make_host(**{**FAST, "qianfan:listingMaxAgeSeconds": "1"})
    inputs, _ = host.check(SPEC, name="a")
    sandbox_control.clear_requests()
    sandbox_control.set_option("latency_ms", 300)
    sandbox_control.add_fault("DescribeTPMResource", "empty")
    sandbox_control.add_fault("PurchaseTPMResource", "error", status=500, count=2)
    refreshed, a, b = concurrently(
        lambda: host.read(x, x_outs, name="x"),
        lambda: host.create(inputs, name="a"),
        lambda: host.create(inputs, name="b"),
    )
    assert not isinstance(refreshed, HostError), refreshed.last_line
    assert refreshed[0] == x and refreshed[1]["status"] == "Running"
    a_id, b_id = created_ids([a, b])
    assert a_id != b_id and not {a_id, b_id} & {x, y}, f"creates got {a_id}, {b_id}; the stack held {x}, {y}"
    assert {row["instanceId"] for row in sandbox_control.instances()} == {x, y, a_id, b_id}
    assert sorted(req["status"] for req in sandbox_control.requests("PurchaseTPMResource")) == [200, 200, 500, 500]


# -- 2. pages shifting ------------------------------------------------------------------------------
def test_2_pages_shifting_while_lost_purchases_recover_and_a_resize_runs(make_host, sandbox_control) -> None:
    """Two-item pages, reordered between page requests (one instance on two pages, another on
    none), while two creates lose their purchase answers (both bought) and the stack's quota r is
    resized; while the purchases recover, pages also list an instance twice. Each create gets its
    own new instance, no pre-existing one is claimed, nothing bought is left unnamed, and the
    resize never reports r gone."""
    host = make_host(**FAST)
    r, r_outs = host.up(SPEC, name="r")
    existing = {sandbox_control.add_instance(MODEL, 1, start_time=long_ago()) for _ in range(3)}
    a_inputs, _ = host.check(SPEC, name="a")
    r_news, _ = host.check({**SPEC, "purchaseCount": 2}, olds=SPEC, name="r")
    sandbox_control.clear_requests()
    sandbox_control.set_option("page_size", 2)
    sandbox_control.add_fault("DescribeTPMResource", "reorder", count=8)
    sandbox_control.add_fault("PurchaseTPMResource", "drop_after_commit", count=2)

    def shift_again() -> None:  # while the lost purchases recover: pages naming one instance twice, shifting
        sandbox_control.add_fault("DescribeTPMResource", "duplicate", count=6)
        sandbox_control.add_fault("DescribeTPMResource", "reorder", count=6)

    watcher = watch_then(sandbox_control, "PurchaseTPMResource", shift_again, answered_count=2)
    a, b, resized = concurrently(
        lambda: host.create(a_inputs, name="a"),
        lambda: host.create(a_inputs, name="b"),
        lambda: host.update(r, r_outs, r_news, name="r"),
    )
    watcher.join()
    assert not isinstance(resized, HostError), resized.last_line
    assert resized["purchaseCount"] == 2
    a_id, b_id = created_ids([a, b])
    assert a_id != b_id, f"one instance {a_id} was returned to two creates"
    assert not {a_id, b_id} & (existing | {r}), f"a create claimed an instance that existed before: {a_id}, {b_id}"
    rows = {row["instanceId"]: row for row in sandbox_control.instances()}
    assert set(rows) == existing | {r, a_id, b_id}, "an instance was bought that no create returned"
    assert rows[r]["count"] == 2 and all(rows[i]["status"] == "Running" for i in existing)
    # Both purchases bought, both answers lost.
    assert [req["status"] for req in sandbox_control.requests("PurchaseTPMResource")] == [0, 0]


# -- 3. destroy reads back --------------------------------------------------------------------------
@pytest.mark.parametrize("fault", ["false_result", "not_applied"])
def test_3_a_release_that_did_not_happen_fails_the_destroy_naming_the_instance(
    make_host, sandbox_control, fault: str
) -> None:
    host = make_host(**FAST)
    id_, outs = host.up(SPEC)
    sandbox_control.add_fault("ReleaseTPMResource", fault)
    with pytest.raises(HostError) as caught:
        host.delete(id_, outs)
    line = caught.value.last_line
    assert id_ in line, line
    [row] = sandbox_control.instances()
    assert row["status"] != "Stopped" and not row["released"]  # still billed, as the error says


# -- 4. a purchase that commits and then hangs ------------------------------------------------------
def test_4_a_purchase_that_commits_then_hangs_is_recovered_within_the_deadline(make_host, sandbox_control) -> None:
    """The answer is held far longer than the operation's 10 s: the request must leave the
    recovery its time, so the create returns the bought instance."""
    host = make_host(**{"qianfan:settleSeconds": "1", "qianfan:timeoutSeconds": "10"})
    inputs, _ = host.check(SPEC)
    sandbox_control.add_fault("PurchaseTPMResource", "hang_after_commit", seconds=60)
    started = time.monotonic()
    id_, outs = host.create(inputs)
    elapsed = time.monotonic() - started
    assert [row["instanceId"] for row in sandbox_control.instances()] == [id_] and outs["instanceId"] == id_
    assert len(sandbox_control.requests("PurchaseTPMResource")) == 1
    assert elapsed < 10 + 5, f"the create took {elapsed:.1f}s with a 10 s deadline"  # slack for a busy machine


# -- 5. a create answered with an id but not yet listed --------------------------------------------
def test_5_a_bought_quota_not_yet_listed_stays_pending_until_qianfan_shows_it_stopped(
    make_host, sandbox_control
) -> None:
    host = make_host(**{"qianfan:settleSeconds": "1", "qianfan:timeoutSeconds": "20"})
    sandbox_control.set_option("visible_after_seconds", 3600)
    id_, pending = host.up(SPEC)
    assert pending["status"] == "Pending" and pending["instanceId"] == id_
    for _ in range(2):  # each refresh sees the absence in three consistent listings
        got, outs, _ = host.read(id_, pending)
        assert got == id_ and outs["status"] == "Pending"
    warnings = [line for line in host.stderr_text().splitlines() if "warning" in line and id_ in line]
    assert warnings and "Pending" in warnings[0], host.stderr_text()
    sandbox_control.set_option("visible_after_seconds", 0)  # Qianfan lists it now
    got, running, _ = host.read(id_, pending)
    assert got == id_ and running["status"] == "Running"
    sandbox_control.update_instance(id_, status="Stopped")
    got, _, _ = host.read(id_, pending)
    assert got == "", "a quota Qianfan shows Stopped is dropped from state"


# -- 6. re-sending after settle ---------------------------------------------------------------------
def test_6_settle_seconds_0_is_refused_at_check(tmp_path: Path) -> None:
    with plan_only_host(tmp_path, **{"qianfan:settleSeconds": "0"}) as host:
        _, failures = host.check(SPEC)
    assert failures and all("qianfan:settleSeconds" in reason for _, reason in failures), failures


def empty_until_just_after(sandbox_control, settle: float) -> threading.Thread:
    """From the purchase on, Describe answers empty for `settle` seconds and once more after: one
    `empty` fault is kept armed (re-armed as each Describe arrives) while that time runs, and the
    one armed last is left for the first Describe after it. The window starts when the purchase
    arrives, before the provider's own settle time starts, so no second empty answer falls after
    the provider's settle time. 100 ms of latency per request let each re-arming come first."""

    def watch() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not sandbox_control.requests("PurchaseTPMResource"):
            time.sleep(0.005)
        purchased = time.monotonic()
        sandbox_control.add_fault("DescribeTPMResource", "empty")
        seen = len(sandbox_control.requests("DescribeTPMResource"))
        while time.monotonic() < min(deadline, purchased + settle):
            count = len(sandbox_control.requests("DescribeTPMResource"))
            if count > seen:
                seen = count
                sandbox_control.add_fault("DescribeTPMResource", "empty")
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    return watcher


@pytest.mark.parametrize("staging", ["listed just after settle", "one empty answer after settle"])
def test_6_an_instance_listed_after_settle_is_found_not_bought_again(make_host, sandbox_control, staging: str) -> None:
    """The purchase bought, its answer was lost, and Describe shows nothing during the 1 s settle
    time: the instance is listed only 1.5 s after its purchase, or Describe answers empty until
    the settle time has passed and once more after it."""
    host = make_host(**{"qianfan:settleSeconds": "1", "qianfan:timeoutSeconds": "30"})
    sandbox_control.add_fault("PurchaseTPMResource", "error_after_commit", status=500)
    if staging == "listed just after settle":
        sandbox_control.set_option("visible_after_seconds", 1.5)
        watcher = None
    else:
        sandbox_control.set_option("latency_ms", 100)
        watcher = empty_until_just_after(sandbox_control, 1.0)
    id_, _ = host.up(SPEC)
    if watcher is not None:
        watcher.join()
    assert [row["instanceId"] for row in sandbox_control.instances()] == [id_], "bought again"
    assert len(sandbox_control.requests("PurchaseTPMResource")) == 1


# -- 7. the baseline is taken after the wait at the purchase gate ---------------------------------
def test_7_an_instance_bought_elsewhere_while_a_create_waits_at_the_gate_is_not_its_own(
    make_host, sandbox_control
) -> None:
    """Create a (2 units) loses its answer and its instance is listed late, so a's recovery holds
    the model's purchase gate; create b (1 unit) waits there; meanwhile a 1-unit instance is bought
    in the console; then a's instance shows, the gate opens, and b's purchase fails with a 500
    having bought nothing. b must buy its own, not take the console's."""
    host = make_host(**{"qianfan:settleSeconds": "4", "qianfan:timeoutSeconds": "40"})
    a_inputs, _ = host.check({"model": MODEL, "purchaseCount": 2}, name="a")
    b_inputs, _ = host.check(SPEC, name="b")
    sandbox_control.set_option("visible_after_seconds", 3600)
    sandbox_control.add_fault("PurchaseTPMResource", "error_after_commit", status=500)  # a's: bought, answer lost
    sandbox_control.add_fault("PurchaseTPMResource", "error", status=500)  # b's: bought nothing
    with ThreadPoolExecutor(max_workers=2) as pool:
        a = pool.submit(host.create, a_inputs, "a")
        wait_until(lambda: answered(sandbox_control, "PurchaseTPMResource") >= 1)
        time.sleep(0.5)  # a's recovery has taken the gate
        b = pool.submit(host.create, b_inputs, "b")
        time.sleep(1.0)  # b waits at the gate
        console = sandbox_control.add_instance(MODEL, 1)
        sandbox_control.set_option("visible_after_seconds", 0)  # a's instance (and the console's) show now
        a_id, b_id = created_ids([outcome(a), outcome(b)])
    assert b_id != console, f"create b took the instance {console} bought in the console while it waited"
    rows = {row["instanceId"]: row for row in sandbox_control.instances()}
    assert set(rows) == {a_id, b_id, console} and rows[a_id]["count"] == 2 and rows[b_id]["count"] == 1
    assert [req["status"] for req in sandbox_control.requests("PurchaseTPMResource")] == [500, 500, 200]


# -- 8. a half-way update names what it applied -----------------------------------------------------
def test_8_an_update_whose_read_back_fails_names_the_resize_it_applied(make_host, sandbox_control) -> None:
    id_, outs = make_host(**FAST).up(SPEC)
    host = make_host(**{"qianfan:settleSeconds": "1", "qianfan:timeoutSeconds": "6"})
    news, _ = host.check({**SPEC, "purchaseCount": 3}, olds=SPEC)
    # 300 ms per request leave the watcher time to break Describe while the resize is handled.
    sandbox_control.set_option("latency_ms", 300)
    watcher = watch_then(
        sandbox_control,
        "ResizeTPMResource",
        lambda: sandbox_control.add_fault("DescribeTPMResource", "error", count=100_000),
    )
    with pytest.raises(HostError) as caught:
        host.update(id_, outs, news)
    watcher.join()
    line = caught.value.last_line
    assert "ResizeTPMResource to 3 unit(s) was applied" in line, line
    assert sandbox_control.instances()[0]["count"] == 3  # what Qianfan bills now, as the message says


# -- 9. a shared listing carries the deadline of the operation that started it ---------------------
def test_9_a_refresh_joining_a_listing_whose_starter_runs_out_of_time_lists_itself(make_host, sandbox_control) -> None:
    """Refresh `first` starts a listing of eight one-item pages whose first page takes 8 s of its
    10 s; refresh `second` starts then, with its whole 10 s, and joins that listing (sharing on).
    `first` runs out between pages (each takes 0.5 s now); `second` must not fail with first's
    "ran out of time". (The unit tier has the same with a create as the starter:
    tests/unit/test_listings.py::test_a_starters_short_deadline_does_not_fail_a_waiter_with_time_left.)"""
    ids = [sandbox_control.add_instance(MODEL, 1, start_time=long_ago()) for _ in range(8)]
    quota = ids[-1]
    props = {**SPEC, "instanceId": quota, "status": "Running"}
    host = make_host(
        **{"qianfan:settleSeconds": "1", "qianfan:timeoutSeconds": "10", "qianfan:listingMaxAgeSeconds": "30"}
    )
    sandbox_control.set_option("page_size", 1)
    sandbox_control.set_option("latency_ms", 8000)
    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(host.read, quota, props, "first")
        wait_until(lambda: len(sandbox_control.requests("DescribeTPMResource")) >= 1)
        sandbox_control.set_option("latency_ms", 500)  # every later page: half a second
        wait_until(lambda: answered(sandbox_control, "DescribeTPMResource") >= 1)  # first has about 2 s left
        second = pool.submit(host.read, quota, props, "second")
        first_result = outcome(first)
        sandbox_control.set_option("latency_ms", 0)  # second's own listing, if it lists, is quick
        second_result = outcome(second)
    assert isinstance(first_result, HostError) and "ran out of time" in first_result.last_line, (
        "staging: the first refresh was meant to run out of time between pages"
    )
    assert not isinstance(second_result, HostError), second_result.last_line
    assert second_result[0] == quota and second_result[1]["status"] == "Running"


# -- 10. one model refused by Describe --------------------------------------------------------------
def test_10_a_model_describe_refuses_is_named_and_does_not_block_absence_checks(make_host, sandbox_control) -> None:
    """The quota was released outside this run and Qianfan no longer lists it; Describe refuses
    ernie-4.0-8k (Baidu's newer pages drop the id). Refresh and destroy still succeed, saying which
    model could not be searched."""
    id_, outs = make_host(**FAST).up(SPEC)
    make_host(**FAST).delete(id_, outs)  # released by another run
    sandbox_control.set_option("released_visibility", "hidden")
    sandbox_control.set_option("retired_models", "ernie-4.0-8k")
    refresh = make_host(**FAST)
    got, _, _ = refresh.read(id_, outs)
    assert got == "", "a released quota is dropped from state"
    destroy = make_host(**FAST)
    destroy.delete(id_, outs)
    for host in (refresh, destroy):
        warnings = [line for line in host.stderr_text().splitlines() if line.startswith("warning:")]
        assert any("ernie-4.0-8k" in line and id_ in line for line in warnings), host.stderr_text()


# -- 11. an endpoint whose password holds URL delimiters ---------------------------------------------
@pytest.mark.parametrize("password", ["p#ss/w?rd", "pa/ss", "pa?ss"])
def test_11_an_endpoint_password_with_url_delimiters_is_refused_without_echoing_it(
    tmp_path: Path, password: str
) -> None:
    endpoint = f"https://user:{password}@host.example"
    with plan_only_host(tmp_path, **{"qianfan:endpoint": endpoint}) as host:
        _, failures = host.check(SPEC)
        stderr = host.stderr_text()
    assert failures and any("qianfan:endpoint" in reason for _, reason in failures), failures
    shown = " ".join(reason for _, reason in failures) + stderr
    for secret in (password, password[:4], password[-4:], "could not be cast"):
        assert secret not in shown, f"{secret!r} was echoed: {shown}"
