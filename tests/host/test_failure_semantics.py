"""Money safety, proven with the sandbox's fault injection, through the provider host.

- a purchase whose answer is lost is recovered from the listing, never bought twice (the
  randomized trials at concurrency are in test_concurrency.py);
- throttling and 5xx on the idempotent actions are survived, inside a deadline that is honoured;
- a change answered `true` but not applied is reported, never recorded as done;
- 20 quotas created, resized and destroyed concurrently all end as declared.

The `make_host` fixture scans every scenario for leaked keys.
"""

from __future__ import annotations

import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from hostdriver import HostError
from tests.support.figures import record

pytestmark = pytest.mark.slow  # provider hosts per test, real deadlines

SEED = int(os.environ.get("QIANFAN_TPM_SEED", "20261126"))
MODELS = ["ernie-speed-8k", "ernie-lite-8k", "ernie-speed-128k", "ernie-tiny-8k"]
FAST = {"qianfan:settleSeconds": "1", "qianfan:timeoutSeconds": "30"}


# -- deterministic cases of the purchase recovery ------------------------------------------------
@pytest.mark.parametrize(
    "fault, status, purchases",
    [
        ("drop_after_commit", None, 1),  # bought: adopted from the listing, never bought again
        ("error_after_commit", 500, 1),
        ("drop", None, 2),  # nothing bought: one retry
        ("error", 503, 2),
        ("throttle", 429, 2),  # refused at the gate: retried after a backoff
    ],
)
def test_one_failed_purchase(make_host, sandbox_control, fault: str, status: int | None, purchases: int) -> None:
    host = make_host(**FAST)
    sandbox_control.add_fault("PurchaseTPMResource", fault, status=status)
    id_, outs = host.up({"model": "ernie-speed-8k", "purchaseCount": 2})
    assert [row["instanceId"] for row in sandbox_control.instances()] == [id_]
    assert len(sandbox_control.requests("PurchaseTPMResource")) == purchases
    assert outs["purchaseCount"] == 2


def test_two_lost_purchases_that_bought_nothing_fail_without_buying(make_host, sandbox_control) -> None:
    host = make_host(**FAST)
    sandbox_control.add_fault("PurchaseTPMResource", "drop", count=2)
    with pytest.raises(HostError) as caught:
        host.up({"model": "ernie-speed-8k", "purchaseCount": 1})
    assert "neither attempt bought anything" in caught.value.last_line
    assert sandbox_control.instances() == []
    assert len(sandbox_control.requests("PurchaseTPMResource")) == 2


def break_describe_once_purchase_arrives(sandbox_control) -> threading.Thread:
    """Fail every Describe from the moment a purchase reaches the sandbox (the pre-purchase
    listing passes). 300 ms of latency leaves room to do so while the purchase is handled."""
    sandbox_control.set_option("latency_ms", 300)

    def watch() -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not sandbox_control.requests("PurchaseTPMResource"):
            time.sleep(0.005)
        sandbox_control.add_fault("DescribeTPMResource", "error", count=100_000)

    watcher = threading.Thread(target=watch)
    watcher.start()
    return watcher


def test_listing_failure_after_a_lost_purchase_says_what_to_check(make_host, sandbox_control) -> None:
    host = make_host(**{**FAST, "qianfan:timeoutSeconds": "8"})
    inputs, _ = host.check({"model": "ernie-speed-8k", "purchaseCount": 1})
    sandbox_control.add_fault("PurchaseTPMResource", "drop_after_commit")
    watcher = break_describe_once_purchase_arrives(sandbox_control)
    with pytest.raises(HostError) as caught:
        host.create(inputs)
    watcher.join()
    line = caught.value.last_line
    assert "Whether a quota was bought is unknown" in line and "adoptInstanceId" in line, line
    assert len(sandbox_control.instances()) == 1  # it was bought; the message says how to adopt it


def test_describe_failing_after_a_successful_purchase_still_records_the_quota(make_host, sandbox_control) -> None:
    host = make_host(**{**FAST, "qianfan:timeoutSeconds": "8"})
    inputs, _ = host.check({"model": "ernie-speed-8k", "purchaseCount": 2})
    watcher = break_describe_once_purchase_arrives(sandbox_control)
    id_, outs = host.create(inputs)
    watcher.join()
    assert [row["instanceId"] for row in sandbox_control.instances()] == [id_]
    assert outs["status"] == "Pending" and outs["purchaseCount"] == 2 and outs["tpm"] == 20_000


# -- idempotent actions: retried with backoff inside a deadline ----------------------------------
@pytest.mark.parametrize(
    "action",
    ["DescribeTPMResource", "ResizeTPMResource", "AutoReleaseTPMResource", "ReleaseTPMResource"],
)
@pytest.mark.parametrize(
    "fault, status", [("throttle", 429), ("error", 500), ("error", 503), ("drop", None), ("error_after_commit", 500)]
)
def test_safe_actions_survive_throttling_and_5xx(
    make_host, sandbox_control, action: str, fault: str, status: int | None
) -> None:
    host = make_host(**FAST)
    model = "ernie-speed-8k"
    id_, outs = host.up({"model": model, "purchaseCount": 1})
    sandbox_control.clear_requests()
    sandbox_control.add_fault(action, fault, count=3, status=status)
    if action == "DescribeTPMResource":
        assert host.read(id_, outs)[0] == id_
    elif action == "ReleaseTPMResource":
        host.delete(id_, outs)
        assert sandbox_control.instances()[0]["status"] == "Stopped"
    else:
        change = {"purchaseCount": 2} if action == "ResizeTPMResource" else {"releaseTime": "2031-01-01 00:00:00"}
        news, _ = host.check({"model": model, "purchaseCount": 1, **change})
        outs = host.update(id_, outs, news)
        row = sandbox_control.instances()[0]
        assert row["count"] == outs["purchaseCount"] and row["releaseTime"] == outs.get("releaseTime")
    attempts = len(sandbox_control.requests(action))
    if (action, fault) == ("ReleaseTPMResource", "error_after_commit"):
        # The first release went through; the retry is refused as "already released", and a
        # Describe confirms the instance is gone, which is what destroy wants.
        assert attempts == 2 and sandbox_control.requests("DescribeTPMResource")
    else:
        assert attempts >= 4, "three faults, then the attempt that succeeds"
    record(
        "retries", f"{action} after 3x {fault}{' ' + str(status) if status else ''}", f"succeeded on attempt {attempts}"
    )


@pytest.mark.parametrize("operation", ["read", "update", "delete"])
def test_deadline_is_honoured_when_faults_never_stop(make_host, sandbox_control, operation: str) -> None:
    id_, outs = make_host(**FAST).up({"model": "ernie-speed-8k", "purchaseCount": 1})
    host = make_host(**{**FAST, "qianfan:timeoutSeconds": "3"})  # the next `pulumi` run, a short deadline
    sandbox_control.add_fault("*", "throttle", count=100_000)
    news, _ = host.check({"model": "ernie-speed-8k", "purchaseCount": 2})
    started = time.monotonic()
    with pytest.raises(HostError) as caught:
        {
            "read": lambda: host.read(id_, outs),
            "update": lambda: host.update(id_, outs, news),
            "delete": lambda: host.delete(id_, outs),
        }[operation]()
    elapsed = time.monotonic() - started
    assert 1.5 <= elapsed < 3 + 2.5, f"{operation} took {elapsed:.1f}s with a 3s deadline"
    assert "gave up after" in caught.value.last_line and "qianfan:timeoutSeconds" in caught.value.last_line
    record("deadline", f"{operation} under endless 429, deadline 3s", f"failed after {elapsed:.1f}s")


# -- read after write ------------------------------------------------------------------------------
@pytest.mark.parametrize("action", ["ResizeTPMResource", "AutoReleaseTPMResource"])
def test_change_answered_but_not_applied_is_reported_and_not_recorded(make_host, sandbox_control, action: str) -> None:
    host = make_host(**FAST)
    model = "ernie-speed-8k"
    id_, outs = host.up({"model": model, "purchaseCount": 1, "releaseTime": "2031-01-01 00:00:00"})
    sandbox_control.add_fault(action, "not_applied")
    change = {"purchaseCount": 4} if action == "ResizeTPMResource" else {"releaseTime": "2031-02-02 00:00:00"}
    news, _ = host.check({"model": model, "purchaseCount": 1, "releaseTime": "2031-01-01 00:00:00", **change})
    with pytest.raises(HostError) as caught:
        host.update(id_, outs, news)
    line = caught.value.last_line
    assert action in line and "Nothing was recorded as done" in line, line
    # Qianfan still has the old values, and so does the state (a failed update keeps it); a
    # refresh confirms the state agrees with the server.
    row = sandbox_control.instances()[0]
    assert row["count"] == 1 and row["releaseTime"] == "2031-01-01T00:00:00+08:00"
    _, refreshed, _ = host.read(id_, outs)
    assert refreshed["purchaseCount"] == 1 and refreshed["releaseTime"] == "2031-01-01T00:00:00+08:00"


def test_adoption_whose_resize_does_not_stick_fails(make_host, sandbox_control, buy_elsewhere) -> None:
    host = make_host(**FAST)
    existing = buy_elsewhere({"model": "ernie-speed-8k", "purchaseCount": 1})
    sandbox_control.add_fault("ResizeTPMResource", "not_applied")
    with pytest.raises(HostError) as caught:
        host.up({"model": "ernie-speed-8k", "purchaseCount": 3, "adoptInstanceId": existing}, name="adopted")
    assert "ResizeTPMResource asked for 3 units, DescribeTPMResource reports 1" in caught.value.last_line


# -- concurrency -----------------------------------------------------------------------------------
def test_twenty_quotas_created_resized_destroyed_concurrently(make_host, sandbox_control) -> None:
    host = make_host(**FAST)
    rng = random.Random(SEED + 1)
    declared = {f"q{n}": {"model": MODELS[n % len(MODELS)], "purchaseCount": 1 + n % 3} for n in range(20)}
    sandbox_control.add_fault("*", "throttle", count=12)  # some throttling while 4 workers run at once
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=20) as pool:
        created = dict(
            zip(declared, pool.map(lambda item: host.up(item[1], name=item[0]), declared.items()), strict=True)
        )
    rows = {row["instanceId"]: row for row in sandbox_control.instances()}
    assert len(rows) == 20 and {id_ for id_, _ in created.values()} == set(rows)
    for name, (id_, outs) in created.items():
        assert rows[id_]["count"] == declared[name]["purchaseCount"] == outs["purchaseCount"]

    resized = {name: {**props, "purchaseCount": rng.randint(1, 5)} for name, props in declared.items()}

    def resize(name: str) -> dict[str, Any]:
        id_, outs = created[name]
        news, _ = host.check(resized[name], olds=declared[name], name=name)
        return host.update(id_, outs, news, name=name)

    sandbox_control.add_fault("*", "throttle", count=12)
    with ThreadPoolExecutor(max_workers=20) as pool:
        updated = dict(zip(resized, pool.map(resize, resized), strict=True))
    rows = {row["instanceId"]: row for row in sandbox_control.instances()}
    for name, outs in updated.items():
        assert rows[created[name][0]]["count"] == resized[name]["purchaseCount"] == outs["purchaseCount"]

    sandbox_control.add_fault("*", "throttle", count=12)
    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(lambda name: host.delete(created[name][0], updated[name], name=name), created))
    assert all(row["status"] == "Stopped" for row in sandbox_control.instances())
    assert (
        len(sandbox_control.requests("PurchaseTPMResource"))
        - sum(1 for r in sandbox_control.requests("PurchaseTPMResource") if r["status"] == 429)
        == 20
    )
    record(
        "concurrency",
        "20 quotas created+resized+destroyed, 4 host workers, 36 throttles",
        f"{time.monotonic() - started:.1f}s, all as declared",
    )
