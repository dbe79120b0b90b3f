"""Never buy twice across stacks: several provider hosts share one ledger, on SQLite and PostgreSQL.

Three host processes (three stacks, or three CI runners) each create 6–8 quotas of one spec at once,
against one stand-in (each host's embedded sandbox serves the same database), while the sandbox
loses purchase answers after committing them, fails purchases that bought nothing, and answers
Describe empty or with an item twice. Every trial must end with every create succeeding, each
with its own new instance: 0 double purchases, 0 unnamed orphans, 0 instances held twice, no
instance that existed before the trial taken. And a host killed with SIGKILL in the middle of a
purchase blocks the others only until its own deadline.

`QIANFAN_TPM_LEDGER_TRIALS` sets the number of trials per backend ("sqlite=200,postgresql=50" for
the figures in docs/design/failure-semantics.md; CI runs the default share).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from hostdriver import HostError, ProviderHost
from providers.ledger import State, ledger_for
from providers.settings import load_settings
from tests.support.figures import record
from tests.support.hosts import HostFactory, sandbox_config

pytestmark = pytest.mark.slow  # provider hosts sharing a ledger, trials, PostgreSQL

SEED = int(os.environ.get("QIANFAN_TPM_SEED", "20261201"))
MODELS = ["ernie-speed-8k", "ernie-lite-8k", "ernie-speed-128k", "ernie-tiny-8k", "ernie-char-8k", "ernie-novel-8k"]
HOSTS = 3

#: Purchase faults that bought a quota and lost its answer, and ones that bought nothing (uncertain).
LOST_AFTER_COMMIT = [("drop_after_commit", None), ("error_after_commit", 503), ("error_after_commit", 500)]
BOUGHT_NOTHING = [("drop", None), ("error", 502)]
DESCRIBE_FAULTS = [("empty", None), ("duplicate", None)]


def trials(backend: str) -> int:
    spec = dict(
        part.split("=", 1) for part in os.environ.get("QIANFAN_TPM_LEDGER_TRIALS", "").split(",") if "=" in part
    )
    return int(spec.get(backend, {"sqlite": "4", "postgresql": "2"}[backend]))


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_location(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    if request.param == "sqlite":
        return "sqlite", str(tmp_path / "shared-ledger.sqlite3")
    return "postgresql", str(request.getfixturevalue("fresh_postgres_db"))


def hosts_sharing(make_host: HostFactory, location: str, **overrides: str) -> list[ProviderHost]:
    config = {
        "qianfan:ledger": location,
        "qianfan:settleSeconds": "1",
        "qianfan:timeoutSeconds": "90",
        "qianfan:listingMaxAgeSeconds": "1",
        **overrides,
    }
    return [make_host(stack=f"stack-{n}", **config) for n in range(HOSTS)]


def live(sandbox_control, model: str) -> set[str]:
    return {row["instanceId"] for row in sandbox_control.instances(model) if row["status"] != "Stopped"}


def create_everywhere(hosts: list[ProviderHost], plans: list[list[tuple[str, dict[str, Any]]]]) -> list[str | str]:
    """Every host creates its quotas at once; the results (ids, or the error's last line)."""
    jobs = [(host, name, props) for host, plan in zip(hosts, plans, strict=True) for name, props in plan]

    def one(job: tuple[ProviderHost, str, dict[str, Any]]) -> str:
        host, name, props = job
        try:
            return host.up(props, name=name)[0]
        except HostError as err:
            return f"FAILED: {err.last_line}"

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return list(pool.map(one, jobs))


def test_stacks_sharing_a_ledger_never_buy_twice(make_host, sandbox_control, ledger_location) -> None:
    backend, location = ledger_location
    hosts = hosts_sharing(make_host, location)
    rng = random.Random(SEED + (0 if backend == "sqlite" else 1))
    stats: Counter[str] = Counter()
    started = time.monotonic()
    for trial in range(trials(backend)):
        sandbox_control.clear_requests()
        sandbox_control.set_option("latency_ms", rng.choice([0, 10, 30]))
        model = MODELS[trial % len(MODELS)]
        spec = {"model": model, "purchaseCount": rng.choice([1, 2])}
        before = {row["instanceId"] for row in sandbox_control.instances(model)}
        plans = [[(f"t{trial}h{h}q{n}", spec) for n in range(rng.randint(6, 8))] for h in range(HOSTS)]
        for _ in range(rng.randint(2, 5)):
            kind, status = rng.choice(LOST_AFTER_COMMIT)
            sandbox_control.add_fault("PurchaseTPMResource", kind, count=rng.randint(1, 3), status=status)
        # At most one purchase that bought nothing: a create that met two would fail, cleanly
        # ("neither attempt bought anything"), and this test asks every create to succeed.
        if rng.random() < 0.6:
            kind, status = rng.choice(BOUGHT_NOTHING)
            sandbox_control.add_fault("PurchaseTPMResource", kind, count=1, status=status)
        if rng.random() < 0.7:
            kind, _ = rng.choice(DESCRIBE_FAULTS)
            sandbox_control.add_fault("DescribeTPMResource", kind, count=rng.randint(1, 2))

        results = create_everywhere(hosts, plans)
        sandbox_control.clear_faults()

        failed = [r for r in results if r.startswith("FAILED")]
        assert not failed, f"trial {trial} ({backend}): {failed}"
        assert len(set(results)) == len(results), f"trial {trial}: an instance is held by two resources"
        assert not set(results) & before, f"trial {trial}: an instance that existed before was taken"
        bought = live(sandbox_control, model) - before
        unnamed = bought - set(results)
        assert not unnamed, (
            f"trial {trial}: {sorted(unnamed)} bought and held by nobody (double purchases)\n"
            + diagnosis(sandbox_control, location, model)
        )
        assert bought == set(results)
        purchases = sandbox_control.requests("PurchaseTPMResource")
        stats["trials"] += 1
        stats["creates"] += len(results)
        stats["purchase requests"] += len(purchases)
        stats["answers lost or failed"] += sum(1 for r in purchases if r["status"] != 200)
    holders = Counter(
        instance for instance, _ in query(sandbox_control, location, "SELECT instance_id, stack FROM claims")
    )
    assert all(n == 1 for n in holders.values())
    assert set(results) <= set(holders), "every instance a create returned is claimed in the ledger"
    states = Counter(state for (state,) in query(sandbox_control, location, "SELECT state FROM purchases"))
    assert not {State.SENDING, State.UNCERTAIN, State.UNKNOWN} & {State(s) for s in states}, states
    label = f"{HOSTS} hosts x 6-8 creates of one spec, one ledger ({backend})"
    record("shared ledger", f"{label}: trials", stats["trials"])
    for key in ("creates", "purchase requests", "answers lost or failed"):
        record("shared ledger", f"{label}: {key}", stats[key])
    record("shared ledger", f"{label}: double / unnamed / held twice / failed", "0 / 0 / 0 / 0 (asserted)")
    record("shared ledger", f"{label}: wall time", f"{time.monotonic() - started:.1f}s")


def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {seconds:g}s"
        time.sleep(0.05)


def test_a_host_killed_mid_purchase_blocks_the_others_only_until_its_deadline(
    make_host, sandbox_control, ledger_location
) -> None:
    backend, location = ledger_location
    model = "ernie-speed-8k"
    spec = {"model": model, "purchaseCount": 1}
    doomed = make_host(stack="doomed", **{"qianfan:ledger": location, "qianfan:timeoutSeconds": "12"})
    doomed.check(spec)  # configured and warm; its first API call starts its sandbox
    sandbox_control.add_fault("PurchaseTPMResource", "hang_after_commit", seconds=120)
    thread = threading.Thread(target=lambda: _swallow(lambda: doomed.up(spec, name="doomed")), daemon=True)
    thread.start()
    wait_until(lambda: len(sandbox_control.requests("PurchaseTPMResource")) == 1, 30, "the doomed purchase")
    killed_at = time.monotonic()
    os.kill(doomed.process.pid, signal.SIGKILL)
    doomed.process.wait(10)

    # Another stack's purchase loses its answer: its recovery must wait for the doomed record's
    # deadline (12 s, plus the grace), then find both instances: its own, and the doomed one's,
    # which it names in the ledger as orphaned.
    others = hosts_sharing(make_host, location)
    sandbox_control.add_fault("PurchaseTPMResource", "error_after_commit", status=503)
    id_, _ = others[0].up(spec, name="survivor")
    waited = time.monotonic() - killed_at
    assert waited < 12 + 30, f"the survivor waited {waited:.1f}s for a host dead since then"
    rows = live(sandbox_control, model)
    assert id_ in rows and len(rows) == 2
    doomed_records = query(sandbox_control, location, "SELECT state, instance_id FROM purchases WHERE stack = 'doomed'")
    assert len(doomed_records) == 1
    ((state, instance_id),) = doomed_records
    # The survivor's recovery met the doomed purchase abandoned, and gave it the instance it bought.
    assert (state, instance_id) == (State.ORPHANED.value, (rows - {id_}).pop())
    record(
        "shared ledger",
        f"host killed mid-purchase ({backend}): the next recovery",
        f"{waited:.1f}s after the kill, doomed purchase {state}",
    )


def _swallow(call: Callable[[], Any]) -> None:
    with contextlib.suppress(HostError):
        call()


def diagnosis(sandbox_control, location: str, model: str) -> str:
    """What the ledger and the sandbox say, for a failed trial's message."""
    rows = query(
        sandbox_control,
        location,
        f"SELECT id, host, stack, resource, state, instance_id, server_sent, server_ended, detail FROM purchases "
        f"WHERE model = '{model}'",
    )
    lines = ["ledger purchases:", *(f"  {row}" for row in rows), "sandbox instances:"]
    lines += [f"  {row}" for row in sandbox_control.instances(model)]
    lines += ["sandbox purchase requests:"]
    lines += [f"  {r['status']} {r['code']}" for r in sandbox_control.requests("PurchaseTPMResource")]
    return "\n".join(lines)


def query(sandbox_control, location: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows of the shared ledger, for this account only, read as the test's own witness."""
    settings = load_settings(sandbox_config(sandbox_control.db_path, **{"qianfan:ledger": location}), {})
    ledger = ledger_for(settings, "test-witness")
    try:
        with ledger.backend.transaction(ledger.account) as cur:
            cur.execute(f"{sql} {'AND' if ' WHERE ' in sql else 'WHERE'} account = ?", (ledger.account,))
            return [tuple(row) for row in cur.fetchall()]
    finally:
        ledger.close()
