"""Measure what the TPMQuota provider costs on top of Pulumi's host and Qianfan's own latency.

Every figure is printed beside a baseline measured in the same run, on the same machine:
- preview of N quotas (Check + Diff each) through the host vs a do-nothing dynamic provider;
- cold start, from spawning the host to the first Check answered, vs the do-nothing provider;
- the size of `__provider` stored per resource;
- API calls per create, update, refresh and delete, each on its own;
- M creates of one model issued at once through the host against a sandbox with latency, vs the
  2 calls a create cannot avoid (the floor) and vs the 3 calls it needs without sharing, both made
  with the `qianfan` SDK from 4 threads (the host's worker count);
- the same M creates with the purchase ledger in a SQLite file and on a PostgreSQL server the run
  starts, each vs the same run with `qianfan:ledger: off`, with their Purchase and Describe calls;
- a refresh of N quotas over 4 models, vs one Describe per quota from 4 threads with the SDK;
- the audit of every documented model, vs the same Describe calls from one thread.

Timings are noisy on a shared machine, so each is measured as interleaved pairs (the figure, then
its baseline, again and again) and judged by the pairs' ratios: a goal is met when the median
ratio meets it, missed only when every pair misses it (a sign test: were the truth at the goal,
`n` pairs would all miss with probability 0.5^n), and within the run's noise in between. The exit
code is 1 only when a goal is missed; progress goes to stderr, the table to stdout.

Usage: `venv/bin/python -m bench [--quotas 100] [--creates 40] [--refreshes 100] [--latency-ms 50] [--repeat 5]`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, closing, contextmanager
from dataclasses import dataclass
from datetime import date
from enum import Enum
from pathlib import Path
from typing import Any, NoReturn

from pulumi.dynamic.dynamic import serialize_provider

from bench.noop_provider import NoopProvider
from hostdriver import PROJECT_ROOT, ProviderHost
from hostdriver.postgres import PostgresServer, PostgresUnavailable
from hostdriver.process import first_line, stop
from providers import TPMQuotaProvider
from providers.ledger import PG_SCHEMA
from providers.models import DOCUMENTED_MODELS
from qianfan_sandbox import SandboxControl

PROG = "python -m bench"
AK, SK = "bench-access-key", "bench-secret-key"
PROJECT = PROJECT_ROOT
AUDITED = list(DOCUMENTED_MODELS)
MODELS = ["ernie-speed-8k", "ernie-lite-8k", "ernie-speed-128k", "ernie-tiny-8k"]
INPUTS = {"model": "ernie-speed-8k", "purchaseCount": 2, "releaseTime": "2031-03-04 05:06:07"}
STATE = {
    "model": "ernie-speed-8k",
    "purchaseCount": 2,
    "releaseTime": "2031-03-04T05:06:07+08:00",
    "paymentTiming": "Postpaid",
    "instanceId": "tpm-AbCd1234",
    "status": "Running",
    "tpm": 20000,
    "rpm": 66,
}
#: The table and every line printed under it fit a terminal this wide.
WIDTH = 120
#: What a row shows when its figure could not be measured in this run (the reason in a note).
NOT_MEASURED = "not measured"


class Met(Enum):
    """How a figure stands against its goal."""

    YES = "✔"
    NOISE = "~"  # the median misses, some pair meets: not distinguishable from the goal in this run
    NO = "✘"


@dataclass(frozen=True)
class Row:
    measure: str
    ours: str
    baseline: str = ""
    ratio: str = ""
    goal: str = ""
    met: Met | None = None

    @property
    def cells(self) -> list[str]:
        return [self.measure, self.ours, self.baseline, self.ratio, self.goal, self.met.value if self.met else ""]


def count_row(measure: str, ours: object, goal: str, met: bool | None, baseline: str = "") -> Row:
    """A figure that is counted, not timed: exact, so a miss is a miss."""
    return Row(measure, str(ours), baseline, "", goal, None if met is None else Met.YES if met else Met.NO)


@dataclass(frozen=True)
class Pairs:
    """A timed figure and its baseline, measured in turn `len(ours)` times."""

    ours: list[float]
    base: list[float]

    @property
    def ratios(self) -> list[float]:
        return [o / b for o, b in zip(self.ours, self.base, strict=True)]

    def judge(self, goal: float) -> Met:
        """Met when the median ratio is at most `goal`; missed only when every pair misses it."""
        ratios = self.ratios
        if statistics.median(ratios) <= goal:
            return Met.YES
        return Met.NOISE if min(ratios) <= goal else Met.NO

    def ratio_text(self) -> str:
        ratios = self.ratios
        median = f"{statistics.median(ratios):.2f}x"
        return median if len(ratios) == 1 else f"{median} {min(ratios):.2f}-{max(ratios):.2f}"


def timed_row(measure: str, pairs: Pairs, show: Callable[[float], str], baseline_note: str, goal: float) -> Row:
    ours, base = statistics.median(pairs.ours), statistics.median(pairs.base)
    return Row(
        measure, show(ours), f"{show(base)} {baseline_note}", pairs.ratio_text(), f"<= {goal:g}x", pairs.judge(goal)
    )


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def secs(seconds: float) -> str:
    return f"{seconds:.2f} s"


def table(rows: Sequence[Row]) -> list[str]:
    header = ["measure", "qianfan-tpm", "baseline", "ratio, range", "goal", "met"]
    widths = [max(len(cell) for cell in column) for column in zip(header, *(r.cells for r in rows), strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *(line(r.cells) for r in rows)]


def wrapped(text: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, subsequent_indent="    ", break_on_hyphens=False)


class Progress:
    """One line on stderr per step, so a run of ~40 s shows where it is."""

    def __init__(self, prog: str, steps: int) -> None:
        self._prog = prog
        self._steps = steps
        self._done = 0
        self._started = time.perf_counter()

    @contextmanager
    def step(self, label: str) -> Iterator[None]:
        self._done += 1
        print(f"{self._prog}: [{self._done}/{self._steps}] {label} ...", end="", file=sys.stderr, flush=True)
        began = time.perf_counter()
        try:
            yield
        finally:
            now = time.perf_counter()
            total = now - self._started
            print(f" {now - began:.1f} s (total {total:.0f} s)", file=sys.stderr, flush=True)


@contextmanager
def host(workdir: Path, name: str, config: dict[str, str], blob: str | None = None) -> Iterator[ProviderHost]:
    h = ProviderHost(workdir / f"{name}.stderr")
    if blob is not None:
        h.blob = blob
    try:
        h.configure(config)
        yield h
    finally:
        h.close()


def sandbox_config(db: Path, endpoint: str = "sandbox", **overrides: str) -> dict[str, str]:
    return {
        "qianfan:endpoint": endpoint,
        "qianfan:sandboxPath": str(db),
        "qianfan:accessKey": AK,
        "qianfan:secretKey": SK,
        "qianfan:settleSeconds": "5",
        **overrides,
    }


# -- preview ---------------------------------------------------------------------------------------
def preview_seconds(h: ProviderHost, quotas: int, workers: int) -> float:
    """Check + Diff for every quota, `workers` at a time like the engine (which runs 4 x CPUs)."""

    def one(i: int) -> None:
        inputs, failures = h.check({**INPUTS, "purchaseCount": 1 + i % 5}, olds=STATE, name=f"q{i}")
        assert not failures, failures
        h.diff(str(STATE["instanceId"]), STATE, inputs, name=f"q{i}")

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, range(quotas)))
    return time.perf_counter() - started


def bench_preview(workdir: Path, quotas: int, repeat: int) -> list[Row]:
    db = workdir / "preview.sqlite3"
    noop_blob = serialize_provider(NoopProvider())
    ours, base = [], []
    with (
        host(workdir, "preview-ours", sandbox_config(db)) as h_ours,
        host(workdir, "preview-noop", {}, noop_blob) as h_noop,
    ):
        preview_seconds(h_ours, 10, 8), preview_seconds(h_noop, 10, 8)  # warm both
        for _ in range(repeat):
            base.append(preview_seconds(h_noop, quotas, 8))
            ours.append(preview_seconds(h_ours, quotas, 8))
    calls = len(SandboxControl(db).requests()) if db.exists() else 0
    return [
        timed_row(f"preview of {quotas} quotas (Check+Diff)", Pairs(ours, base), ms, "[a]", 1.5),
        count_row("preview: API calls", calls, "0", calls == 0),
    ]


# -- cold start ------------------------------------------------------------------------------------
def cold_start_seconds(workdir: Path, name: str, config: dict[str, str], blob: str, news: dict[str, Any]) -> float:
    started = time.perf_counter()
    h = ProviderHost(workdir / f"{name}.stderr")
    h.blob = blob
    try:
        h.configure(config)
        h.check(news)
        return time.perf_counter() - started
    finally:
        h.close()


def bench_cold_start(workdir: Path, repeat: int) -> Row:
    db = workdir / "cold.sqlite3"
    ours_blob, noop_blob = serialize_provider(TPMQuotaProvider()), serialize_provider(NoopProvider())
    ours, base = [], []
    for i in range(repeat):
        base.append(cold_start_seconds(workdir, f"cold-noop-{i}", {}, noop_blob, INPUTS))
        ours.append(cold_start_seconds(workdir, f"cold-ours-{i}", sandbox_config(db), ours_blob, INPUTS))
    return timed_row("cold start: spawn host to first Check", Pairs(ours, base), ms, "[a]", 1.2)


def bench_import_is_lazy() -> Row:
    code = (
        "import sys, providers; from pulumi.dynamic import ConfigureRequest; from pulumi.dynamic.config import Config; "
        "p = providers.TPMQuotaProvider(); "
        "p.configure(ConfigureRequest(Config({'qianfan:endpoint': 'sandbox'}, 'x'))); "
        "r = p.check({}, {'model': 'ernie-speed-8k', 'purchaseCount': 1}); assert not r.failures, r.failures; "
        "print('qianfan' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT, timeout=60)
    lazy = out.stdout.strip() == "False"
    return count_row("qianfan SDK imported by import + Check", "no" if lazy else "yes", "no", lazy)


def bench_first_apply_cost(workdir: Path) -> Row:
    """The one-time cost a `pulumi up` pays on its first API call: importing qianfan, starting the
    embedded sandbox. Measured on two refreshes of existing quotas, one Describe each."""
    db = workdir / "first.sqlite3"
    unshared = {"qianfan:listingMaxAgeSeconds": "0"}
    with host(workdir, "first-setup", sandbox_config(db)) as h:
        quotas = [h.up({"model": model, "purchaseCount": 1}, name=f"first{n}") for n, model in enumerate(MODELS[:2])]
    with host(workdir, "first", sandbox_config(db, **unshared)) as h:
        started = time.perf_counter()
        h.read(*quotas[0], name="first0")
        first = time.perf_counter() - started
        started = time.perf_counter()
        h.read(*quotas[1], name="first1")
        second = time.perf_counter() - started
    return Row("first API call of a host (paid once) [b]", ms(first), f"{ms(second)} [b]")


# -- state size ------------------------------------------------------------------------------------
def bench_state_size() -> Row:
    ours, noop = serialize_provider(TPMQuotaProvider()), serialize_provider(NoopProvider())
    return count_row(
        "size of __provider per resource", f"{len(ours)} chars", "<= 300", len(ours) <= 300, f"{len(noop)} chars [a]"
    )


# -- API calls per operation -----------------------------------------------------------------------
def bench_calls_per_operation(workdir: Path) -> tuple[list[Row], str]:
    """Each operation on its own, listings not shared: what one quota costs when nothing else runs."""
    db = workdir / "calls.sqlite3"
    control = SandboxControl(db)
    rows: list[Row] = []
    with host(workdir, "calls", sandbox_config(db, **{"qianfan:listingMaxAgeSeconds": "0"})) as h:
        control.clear_requests()
        id_, outs = h.up(INPUTS)
        create = [r["action"] for r in control.requests()]
        control.clear_requests()
        news, _ = h.check({**INPUTS, "purchaseCount": 3, "releaseTime": "2031-05-05 05:05:05"})
        outs = h.update(id_, outs, news)
        update = [r["action"] for r in control.requests()]
        control.clear_requests()
        h.read(id_, outs)
        read = [r["action"] for r in control.requests()]
        control.clear_requests()
        h.delete(id_, outs)
        delete = [r["action"] for r in control.requests()]

    def short(actions: list[str]) -> str:
        return ", ".join(a.replace("TPMResource", "") for a in actions)

    rows.append(count_row("API calls per create, alone [c]", len(create), "<= 3", len(create) <= 3))
    rows.append(count_row("API calls per update, alone [c]", len(update), "", None))
    rows.append(count_row("API calls per refresh, alone [c]", len(read), "", None))
    rows.append(count_row("API calls per delete, alone [c]", len(delete), "", None))
    spelled = "; ".join(
        f"{name} = {short(actions)}"
        for name, actions in (("create", create), ("update", update), ("refresh", read), ("delete", delete))
    )
    return rows, f"each operation on its own, listings not shared: {spelled}"


# -- apply at the SDK's pace -----------------------------------------------------------------------
@contextmanager
def standalone_sandbox(db: Path, latency_ms: int, extra_models: Sequence[str] = ()) -> Iterator[str]:
    command = [sys.executable, "-m", "qianfan_sandbox", "--port", "0", "--db", str(db)]
    command += ["--access-key", AK, "--secret-key", SK, "--latency-ms", str(latency_ms)]
    if extra_models:
        command += ["--extra-models", ",".join(extra_models)]
    process = subprocess.Popen(command, cwd=PROJECT, stdout=subprocess.PIPE, text=True)
    try:
        line = first_line(process, 30)
        if line is None:
            raise RuntimeError("the standalone sandbox printed no URL within 30 s")
        if not line:
            raise RuntimeError("the standalone sandbox exited without printing its URL (its reason is above)")
        yield next(word for word in line.split() if word.startswith("http://127.0.0.1:"))
    finally:
        stop(process)


def _purchase_body(model: str) -> dict[str, Any]:
    return {"model": model, "billing": {"paymentTiming": "Postpaid"}, "purchaseCount": 1}


def _sdk_creates_seconds(url: str, creates: int, model: str, actions: tuple[str, ...]) -> tuple[float, int]:
    """`creates` creates made of `actions` each, straight from the SDK, 4 threads."""
    call_action = _sdk(url)
    bodies = {"DescribeTPMResource": {"model": model}, "PurchaseTPMResource": _purchase_body(model)}

    def one(_: int) -> int:
        for action in actions:
            call_action("/v2/charge", action, bodies[action])
        return len(actions)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        calls = sum(pool.map(one, range(creates)))
    return time.perf_counter() - started, calls


def sdk_baseline_seconds(url: str, creates: int, model: str) -> tuple[float, int]:
    """A create without shared listings: list, purchase, confirm."""
    actions = ("DescribeTPMResource", "PurchaseTPMResource", "DescribeTPMResource")
    return _sdk_creates_seconds(url, creates, model, actions)


def sdk_floor_seconds(url: str, creates: int, model: str) -> tuple[float, int]:
    """The 2 calls a create cannot avoid (the purchase, then a listing that shows it): the
    provider's floor, since it never records an id before Qianfan has listed it."""
    return _sdk_creates_seconds(url, creates, model, ("PurchaseTPMResource", "DescribeTPMResource"))


def sdk_refresh_seconds(url: str, quotas: list[list[str]]) -> tuple[float, int]:
    """One Describe per quota, by id, from 4 threads: a refresh without sharing."""
    call_action = _sdk(url)

    def one(quota: list[str]) -> int:
        call_action("/v2/charge", "DescribeTPMResource", {"model": quota[0], "instanceId": quota[1]})
        return 1

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        calls = sum(pool.map(one, quotas))
    return time.perf_counter() - started, calls


def _sdk(url: str) -> Callable[..., Any]:
    logging.getLogger("qianfan").disabled = True
    from qianfan import get_config
    from qianfan.resources.console.utils import call_action

    config = get_config()
    config.ACCESS_KEY, config.SECRET_KEY, config.CONSOLE_API_BASE_URL = AK, SK, url
    config.CONSOLE_API_RETRY_COUNT = 1
    return call_action


#: What an SdkWorker may be asked to run.
BASELINES: dict[str, Callable[..., tuple[float, int]]] = {
    "naive": sdk_baseline_seconds,
    "floor": sdk_floor_seconds,
    "refresh": sdk_refresh_seconds,
}


def serve_baselines(url: str) -> None:
    """The SdkWorker's child: one JSON request per line in, `seconds calls` per line out."""
    for line in sys.stdin:
        name, args = json.loads(line)
        seconds, calls = BASELINES[name](url, *args)
        print(seconds, calls, flush=True)


class SdkWorker:
    """A child process running the SDK baselines on demand: the SDK's global config stays out of
    this process, its import (about 0.5 s) is paid once, and each baseline still runs right beside
    the figure it is paired with."""

    def __init__(self, url: str) -> None:
        code = f"from bench.run import serve_baselines; serve_baselines({url!r})"
        self._process = subprocess.Popen(
            [sys.executable, "-c", code], cwd=PROJECT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def run(self, name: str, *args: object) -> tuple[float, int]:
        stdin = self._process.stdin
        assert stdin is not None
        stdin.write(json.dumps([name, list(args)]) + "\n")
        stdin.flush()
        line = first_line(self._process, 600)
        if not line:
            raise RuntimeError(f"the SDK baseline {name!r} gave no answer (its process exited or hung)")
        seconds, calls = line.split()
        return float(seconds), int(calls)

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        stop(self._process)


@contextmanager
def sdk_worker(url: str) -> Iterator[SdkWorker]:
    worker = SdkWorker(url)
    try:
        yield worker
    finally:
        worker.close()


def provider_apply_seconds(
    workdir: Path, url: str, db: Path, creates: int, model: str, ledger: str
) -> tuple[float, Counter[str]]:
    """`creates` creates of `model` at once through a new host; the time, and the API calls by action."""
    control = SandboxControl(db)
    config = sandbox_config(db, endpoint=url, **{"qianfan:extraModels": model, "qianfan:ledger": ledger})
    with host(workdir, f"apply-{model}", config) as h:
        # One create first, untimed and of another model: the baseline process has imported the SDK
        # before its clock starts too. The one-time import is reported on its own row.
        h.up({"model": "ernie-char-8k", "purchaseCount": 1}, name="warm-up")
        control.clear_requests()
        checked = [h.check({"model": model, "purchaseCount": 1}, name=f"q{i}")[0] for i in range(creates)]
        started = time.perf_counter()
        # The engine issues all creates at once; the host serves 4 at a time.
        with ThreadPoolExecutor(max_workers=creates) as pool:
            list(pool.map(lambda i: h.create(checked[i], name=f"q{i}"), range(creates)))
        elapsed = time.perf_counter() - started
    return elapsed, Counter(str(r["action"]) for r in control.requests())


def bench_apply(workdir: Path, creates: int, latency_ms: int, repeat: int) -> list[Row]:
    """The floor, the client without sharing, then the provider, in turn, `repeat` times; each
    measurement buys a model of its own, so every one starts from an empty listing."""
    models = [[f"bench-{kind}-{i}" for kind in ("floor", "naive", "ours")] for i in range(repeat)]
    ours: list[float] = []
    floor: list[float] = []
    naive: list[float] = []
    calls_ours = calls_naive = 0
    db = workdir / "apply.sqlite3"
    ledger = str(workdir / "apply-ledger.sqlite3")  # the default, a SQLite file, but not the user's own
    with standalone_sandbox(db, latency_ms, [m for triple in models for m in triple]) as url, sdk_worker(url) as sdk:
        for floor_model, naive_model, ours_model in models:
            floor.append(sdk.run("floor", creates, floor_model)[0])
            seconds, calls_naive = sdk.run("naive", creates, naive_model)
            naive.append(seconds)
            seconds, actions = provider_apply_seconds(workdir, url, db, creates, ours_model, ledger)
            ours.append(seconds)
            calls_ours = actions.total()
    per_create = calls_ours / creates
    return [
        timed_row(f"{creates} creates at once, vs the floor [d]", Pairs(ours, floor), secs, "[d]", 1.25),
        timed_row(f"{creates} creates at once, vs no sharing [e]", Pairs(ours, naive), secs, "[e]", 0.9),
        count_row(
            f"{creates} creates: API calls per create",
            f"{per_create:.2f} ({calls_ours})",
            "<= 1.5",
            per_create <= 1.5,
            f"{calls_naive / creates:g} ({calls_naive}) [e]",
        ),
    ]


# -- the purchase ledger's cost ----------------------------------------------------------------------
@dataclass(frozen=True)
class LedgerRun:
    """One measurement of the creates with a ledger: its calls, and the claims its ledger holds."""

    purchases: int
    describes: int
    others: int
    claims: int | None  # None with the ledger off: it was in the host's memory

    def calls(self) -> str:
        return f"{self.purchases} + {self.describes}" + (f" + {self.others} other" if self.others else "")


def ledger_run(actions: Counter[str], claims: int | None) -> LedgerRun:
    purchases, describes = actions["PurchaseTPMResource"], actions["DescribeTPMResource"]
    return LedgerRun(purchases, describes, actions.total() - purchases - describes, claims)


def ledger_claims(ledger: str, model: str) -> int:
    """How many instances of `model` the ledger holds as claimed: proof that the hosts used it."""
    if ledger.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(ledger, connect_timeout=10) as conn:
            found = conn.execute(f"SELECT count(*) FROM {PG_SCHEMA}.claims WHERE model = %s", (model,)).fetchone()
    else:
        with closing(sqlite3.connect(ledger, timeout=10)) as conn:
            found = conn.execute("SELECT count(*) FROM claims WHERE model = ?", (model,)).fetchone()
    return int(found[0]) if found else 0


def bench_ledger(workdir: Path, creates: int, latency_ms: int, repeat: int) -> tuple[list[Row], str | None]:
    """The creates of `bench_apply` (same sandbox latency, same warm-up) with the ledger in a SQLite
    file, off, and on PostgreSQL, in turn, `repeat` times: each ledger's run sits beside a run with
    it off. The PostgreSQL server is the run's own, durable (fsync on) as a real server is, with a
    fresh database; when it cannot start, its rows are not measured and the reason is returned."""
    kinds = ("sqlite", "off", "postgresql")
    models = [{kind: f"bench-ledger-{kind}-{i}" for kind in kinds} for i in range(repeat)]
    seconds: dict[str, list[float]] = {kind: [] for kind in kinds}
    runs: dict[str, list[LedgerRun]] = {kind: [] for kind in kinds}
    db = workdir / "ledger-sandbox.sqlite3"
    ledgers = {"sqlite": str(workdir / "ledger-sqlite.sqlite3"), "off": "off"}
    unmeasured: str | None = None
    every_model = [m for run in models for m in run.values()]
    with ExitStack() as stack:
        try:
            server = stack.enter_context(PostgresServer(durable=True))
            ledgers["postgresql"] = server.create_database("bench_ledger")
        except PostgresUnavailable as error:
            unmeasured = f"the PostgreSQL server could not start: {str(error).splitlines()[0]}"
        url = stack.enter_context(standalone_sandbox(db, latency_ms, every_model))
        for run in models:
            for kind in kinds:
                if kind not in ledgers:
                    continue
                elapsed, actions = provider_apply_seconds(workdir, url, db, creates, run[kind], ledgers[kind])
                seconds[kind].append(elapsed)
                claims = None if kind == "off" else ledger_claims(ledgers[kind], run[kind])
                runs[kind].append(ledger_run(actions, claims))
    rows: list[Row] = []
    off = runs["off"]
    for kind, name in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")):
        timed = f"{creates} creates, ledger {name} vs off [h]"
        counted = f"{creates} creates, ledger {name}: calls [h]"
        claimed = f"{creates} creates, ledger {name}: claims [h]"
        if kind not in ledgers:
            rows += [Row(measure, f"{NOT_MEASURED} [i]") for measure in (timed, counted, claimed)]
            continue
        rows.append(timed_row(timed, Pairs(seconds[kind], seconds["off"]), secs, "[h]", 1.1))
        # Exact figures, shown from a run that missed if any did (the last run otherwise).
        bought = [r.purchases == creates for r in runs[kind]]
        shown = runs[kind][bought.index(False) if not all(bought) else -1]
        rows.append(count_row(counted, shown.calls(), f"{creates} purchases", all(bought), f"{off[-1].calls()} [h]"))
        held = [r.claims == creates for r in runs[kind]]
        shown = runs[kind][held.index(False) if not all(held) else -1]
        rows.append(count_row(claimed, shown.claims, f"{creates}", all(held)))
    return rows, unmeasured


def bench_refresh(workdir: Path, quotas: int, latency_ms: int, repeat: int) -> list[Row]:
    """A `pulumi refresh` of `quotas` quotas over 4 models: a new host reads them all, in resource order."""
    ours: list[float] = []
    base: list[float] = []
    calls_ours = calls_base = 0
    db = workdir / "refresh.sqlite3"
    control = SandboxControl(db)
    with standalone_sandbox(db, 0) as url:
        with host(workdir, "refresh-up", sandbox_config(db, endpoint=url)) as h:
            created = [
                h.up({"model": MODELS[i % len(MODELS)], "purchaseCount": 1}, name=f"q{i}") for i in range(quotas)
            ]
            warm_up = h.up({"model": "ernie-char-8k", "purchaseCount": 1}, name="warm-up")
        control.set_option("latency_ms", latency_ms)
        state = [[outs["model"], id_] for id_, outs in created]
        with sdk_worker(url) as sdk:
            for run in range(repeat):
                seconds, calls_base = sdk.run("refresh", state)
                base.append(seconds)
                with host(workdir, f"refresh-{run}", sandbox_config(db, endpoint=url)) as h:
                    h.read(*warm_up, name="warm-up")  # untimed, another model: the SDK's import
                    control.clear_requests()
                    started = time.perf_counter()
                    with ThreadPoolExecutor(max_workers=quotas) as pool:
                        reads = list(pool.map(lambda q: h.read(q[1][0], q[1][1], name=f"q{q[0]}"), enumerate(created)))
                    ours.append(time.perf_counter() - started)
                    calls_ours = len(control.requests())
                assert all(read_id == id_ for (read_id, _, _), (id_, _) in zip(reads, created, strict=True))
    return [
        timed_row(f"refresh of {quotas} quotas over {len(MODELS)} models [f]", Pairs(ours, base), secs, "[f]", 0.3),
        count_row("refresh: API calls", calls_ours, "<= 10", calls_ours <= 10, f"{calls_base} [f]"),
    ]


# -- audit ---------------------------------------------------------------------------------------------
# The two SDK helpers run in child processes whose environment names the sandbox and the keys.
def seed_instances(per_model: int) -> None:
    """Buy `per_model` quotas of every documented model (the sandbox has no latency yet)."""
    logging.getLogger("qianfan").disabled = True
    from qianfan.resources.console.utils import call_action

    def buy(model: str) -> None:
        body = {"model": model, "billing": {"paymentTiming": "Postpaid"}, "purchaseCount": 1}
        call_action("/v2/charge", "PurchaseTPMResource", body)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(buy, AUDITED * per_model))


def sequential_describes() -> None:
    """The baseline: the same Describe calls, one after another from one thread, with the SDK."""
    logging.getLogger("qianfan").disabled = True
    from qianfan.resources.console.utils import call_action

    for model in AUDITED:
        call_action("/v2/charge", "DescribeTPMResource", {"model": model})


def bench_audit(workdir: Path, per_model: int, latency_ms: int, repeat: int) -> list[Row]:
    """`python -m audit` over every documented model vs the sequential SDK calls; whole processes timed."""
    db = workdir / "audit.sqlite3"
    control, ours, base = SandboxControl(db), [], []
    with standalone_sandbox(db, 0) as url:
        env = {**os.environ, "QIANFAN_ACCESS_KEY": AK, "QIANFAN_SECRET_KEY": SK, "QIANFAN_CONSOLE_API_BASE_URL": url}

        def timed(*command: str) -> tuple[float, subprocess.CompletedProcess[str]]:
            started = time.perf_counter()
            out = subprocess.run(command, env=env, cwd=PROJECT, capture_output=True, text=True, timeout=600)
            return time.perf_counter() - started, out

        _, seeded = timed(sys.executable, "-c", f"from bench.run import seed_instances; seed_instances({per_model})")
        assert seeded.returncode == 0, seeded.stderr
        control.set_option("latency_ms", latency_ms)
        for _ in range(repeat):
            seconds, sequential = timed(sys.executable, "-c", "from bench.run import sequential_describes as s; s()")
            assert sequential.returncode == 0, sequential.stderr
            base.append(seconds)
            control.clear_requests()
            seconds, out = timed(sys.executable, "-m", "audit", "--json")
            ours.append(seconds)
    assert out.returncode == 1, out.stderr  # findings: every instance is unmanaged
    listed, calls = len(json.loads(out.stdout)["instances"]), len(control.requests())
    label = f"audit of {len(AUDITED)} models x {per_model} instances"
    seeded_count = len(AUDITED) * per_model
    return [
        timed_row(f"{label} [g]", Pairs(ours, base), secs, "[g]", 0.8),
        count_row("audit: API calls", calls, f"{len(AUDITED)}", calls == len(AUDITED), f"{len(AUDITED)} [g]"),
        count_row("audit: instances listed", listed, f"{seeded_count}", listed == seeded_count),
    ]


class _Parser(argparse.ArgumentParser):
    """A bad option in one line (argparse prints the usage too), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see --help)\n")


def _whole(minimum: int, maximum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be a whole number from {minimum} to {maximum}, got {text!r}"
            ) from None
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"must be from {minimum} to {maximum}, got {text!r}")
        return value

    return parse


def prog_name(argv0: str) -> str:
    """How the user called the benchmark: `python -m bench`, or the console script's own name."""
    name = os.path.basename(argv0)
    return PROG if name in ("", "-c", "__main__.py") else name


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = _Parser(
        prog=prog,
        description=__doc__.splitlines()[0],
        epilog="Exit codes: 0 every goal met or within the run's noise, 1 a goal missed, 2 bad options.",
    )
    option = parser.add_argument
    option("--quotas", type=_whole(1, 10_000), default=100, metavar="N", help="quotas in the preview row (100)")
    option("--creates", type=_whole(1, 1_000), default=40, metavar="N", help="creates issued at once (40)")
    option("--refreshes", type=_whole(1, 1_000), default=100, metavar="N", help="quotas in the refresh row (100)")
    option("--latency-ms", type=_whole(0, 10_000), default=50, metavar="MS", help="sandbox latency per request (50)")
    option(
        "--repeat",
        type=_whole(1, 50),
        default=5,
        metavar="N",
        help="pairs (figure, baseline) per fast timing, at least 7 for the cold start; N//2 (at least 1) for "
        "creates, refresh and audit (5)",
    )
    option(
        "--audit-instances",
        type=_whole(1, 1_000),
        default=50,
        metavar="N",
        help="instances per model in the audit row (50)",
    )
    return parser


NOTES = {
    "a": "a do-nothing dynamic provider in the same provider host",
    "b": "the first call pays the qianfan SDK's import and the sandbox's start, once per host; baseline: the next call",
    "d": "creates of one model, issued at once (the host serves 4 at a time), with the default ledger (a SQLite "
    "file, here in the run's temporary directory); the floor: the 2 calls a create cannot avoid (the purchase, then "
    "a listing that shows it) with the SDK from 4 threads, since the provider never records an id Qianfan has not "
    "listed",
    "e": "a client without shared listings: 3 calls per create (Describe, Purchase, Describe), SDK from 4 threads",
    "f": "1 Describe per quota, by id, with the SDK from 4 threads; the provider shares one listing per model",
    "g": "the same Describe calls one after another with the SDK from 1 thread; whole processes timed",
    "h": "the creates of [d] (same latency, same warm-up) with qianfan:ledger a SQLite file in the run's temporary "
    "directory, or a fresh database on a PostgreSQL server the run starts (fsync on, as a real server); baseline: "
    "the same creates with the ledger off, measured in turn; calls: Purchase + Describe, beside those with the ledger "
    "off; claims: the created instances the ledger holds as claimed",
}


def report(rows: Sequence[Row], notes: dict[str, str]) -> tuple[list[str], int]:
    """The table, the notes its rows refer to, and the verdict; with the exit code, 1 only when a
    goal is missed (a figure not measured is not a miss: the verdict counts it apart)."""
    missed = [row for row in rows if row.met is Met.NO]
    noisy = [row for row in rows if row.met is Met.NOISE]
    met = [row for row in rows if row.met is Met.YES]
    unmeasured = [row for row in rows if row.ours.startswith(NOT_MEASURED)]
    lines = table(rows)
    lines += wrapped(
        "ratio, range: the median of the pairs' ratios (figure / baseline, measured in turn), then the lowest and "
        "highest. met: ✔ the median meets the goal; ~ within this run's noise (the median misses, some pair meets); "
        "✘ every pair misses."
    )
    for key in sorted(notes):
        if f"[{key}]" in "".join("".join(row.cells) for row in rows):
            lines += wrapped(f"[{key}] {notes[key]}")
    verdict = f"result: {len(met)} goal(s) met, {len(noisy)} within noise, {len(missed)} missed"
    if unmeasured:
        verdict += f", {len(unmeasured)} not measured"
    if missed:
        verdict += ": " + "; ".join(row.measure for row in missed) + " (exit 1)"
    lines += wrapped(verdict)
    return lines, 1 if missed else 0


def main(argv: Sequence[str] | None = None) -> int:
    prog = prog_name(sys.argv[0]) if argv is None else PROG
    args = build_parser(prog).parse_args(argv)
    slow = max(1, args.repeat // 2)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; date {date.today()}; sandbox latency {args.latency_ms} ms"
    )
    rows: list[Row] = []
    notes = dict(NOTES)
    with tempfile.TemporaryDirectory(prefix="qianfan-tpm-bench-") as tmp:
        workdir = Path(tmp)

        def calls_alone() -> list[Row]:
            rows, spelled = bench_calls_per_operation(workdir)
            notes["c"] = spelled
            return rows

        def ledger() -> list[Row]:
            rows, unmeasured = bench_ledger(workdir, args.creates, args.latency_ms, slow)
            if unmeasured is not None:
                notes["i"] = f"{unmeasured}; not counted as a missed goal"
            return rows

        steps: list[tuple[str, Callable[[], list[Row]]]] = [
            (
                f"preview of {args.quotas} quotas, {args.repeat} pairs",
                lambda: bench_preview(workdir, args.quotas, args.repeat),
            ),
            (f"cold start, {max(args.repeat, 7)} pairs", lambda: [bench_cold_start(workdir, max(args.repeat, 7))]),
            ("SDK import at preview", lambda: [bench_import_is_lazy()]),
            ("first API call", lambda: [bench_first_apply_cost(workdir)]),
            ("size of __provider", lambda: [bench_state_size()]),
            ("API calls per operation", calls_alone),
            (
                f"{args.creates} creates, {slow} x (floor, no sharing, provider)",
                lambda: bench_apply(workdir, args.creates, args.latency_ms, slow),
            ),
            (f"{args.creates} creates, {slow} x (ledger SQLite, off, PostgreSQL)", ledger),
            (
                f"refresh of {args.refreshes} quotas, {slow} pairs",
                lambda: bench_refresh(workdir, args.refreshes, args.latency_ms, slow),
            ),
            (
                f"audit of {len(AUDITED)} models, {slow} pairs",
                lambda: bench_audit(workdir, args.audit_instances, args.latency_ms, slow),
            ),
        ]
        progress = Progress(prog, len(steps))
        try:
            for label, step in steps:
                with progress.step(label):
                    rows.extend(step())
        except KeyboardInterrupt:
            print(f"\n{prog}: interrupted; no table", file=sys.stderr)
            return 130
    lines, code = report(rows, notes)
    print("\n".join(lines))
    return code
