"""Measure what the TPMQuota provider costs on top of Pulumi's host and Qianfan's own latency.

Every figure is printed beside a baseline measured in the same run, on the same machine:
- preview of N quotas (Check + Diff each) through the host vs a do-nothing dynamic provider;
- cold start, from spawning the host to the first Check answered, vs the do-nothing provider;
- the size of `__provider` stored per resource;
- API calls per create, update, refresh and delete, each on its own;
- M creates of one model issued at once through the host against a sandbox with latency, vs the
  3 calls a create needs without sharing, made with the `qianfan` SDK from 4 threads (the host's
  worker count);
- a refresh of N quotas over 4 models, vs one Describe per quota from 4 threads with the SDK;
- the audit of every documented model, vs the same Describe calls from one thread.

Usage: `venv/bin/python -m bench [--quotas 100] [--creates 40] [--refreshes 100] [--latency-ms 50] [--repeat 5]`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from pulumi.dynamic.dynamic import serialize_provider

from bench.noop_provider import NoopProvider
from hostdriver import ProviderHost
from hostdriver.process import first_line, stop
from providers import TPMQuotaProvider
from providers.models import DOCUMENTED_MODELS
from qianfan_sandbox import SandboxControl

AK, SK = "bench-access-key", "bench-secret-key"
PROJECT = Path(__file__).resolve().parents[1]
AUDITED = list(DOCUMENTED_MODELS)
MODELS = ["ernie-speed-8k", "ernie-lite-8k", "ernie-speed-128k", "ernie-tiny-8k"]
APPLY_MODEL = MODELS[0]
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


class Row:
    def __init__(
        self, measure: str, ours: str, baseline: str, ratio: float | None, goal: str, met: bool | None
    ) -> None:
        self.cells = [
            measure,
            ours,
            baseline,
            f"{ratio:.2f}x" if ratio is not None else "",
            goal,
            {True: "yes", False: "NO", None: ""}[met],
        ]


def print_table(rows: list[Row]) -> None:
    header = ["measure", "qianfan-tpm", "baseline", "ratio", "goal", "met"]
    widths = [max(len(r.cells[i]) for r in rows) for i in range(6)]
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row.cells, widths, strict=True)) + " |")


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


def bench_preview(workdir: Path, quotas: int, repeat: int) -> Row:
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
    o, b = statistics.median(ours), statistics.median(base)
    return Row(
        f"preview of {quotas} quotas (Check+Diff), median of {repeat}; API calls",
        f"{o * 1000:.0f} ms; {calls} calls",
        f"{b * 1000:.0f} ms (do-nothing provider)",
        o / b,
        "<= 1.5x; 0 calls",
        o / b <= 1.5 and calls == 0,
    )


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
    o, b = statistics.median(ours), statistics.median(base)
    return Row(
        f"cold start: spawn host to first Check answered, median of {repeat}",
        f"{o * 1000:.0f} ms",
        f"{b * 1000:.0f} ms (do-nothing provider)",
        o / b,
        "<= 1.2x",
        o / b <= 1.2,
    )


def bench_import_is_lazy() -> Row:
    code = (
        "import sys, providers; from pulumi.dynamic import ConfigureRequest; from pulumi.dynamic.config import Config; "
        "p = providers.TPMQuotaProvider(); "
        "p.configure(ConfigureRequest(Config({'qianfan:endpoint': 'sandbox'}, 'x'))); "
        "r = p.check({}, {'model': 'ernie-speed-8k', 'purchaseCount': 1}); assert not r.failures, r.failures; "
        "print('qianfan' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        timeout=60,
    )
    lazy = out.stdout.strip() == "False"
    return Row("qianfan SDK imported by import + Check", "no" if lazy else "yes", "", None, "no", lazy)


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
    return Row(
        "first API call of a host run vs the next (SDK import, sandbox start)",
        f"{first * 1000:.0f} ms",
        f"{second * 1000:.0f} ms (second call)",
        None,
        "paid once, at apply",
        None,
    )


# -- state size ------------------------------------------------------------------------------------
def bench_state_size() -> Row:
    ours, noop = serialize_provider(TPMQuotaProvider()), serialize_provider(NoopProvider())
    return Row(
        "size of __provider per resource",
        f"{len(ours)} chars",
        f"{len(noop)} chars (do-nothing provider)",
        len(ours) / len(noop),
        "<= 300 chars",
        len(ours) <= 300,
    )


# -- API calls per operation -----------------------------------------------------------------------
def bench_calls_per_operation(workdir: Path) -> list[Row]:
    """Each operation on its own, listings not shared: what one quota costs when nothing else runs."""
    db = workdir / "calls.sqlite3"
    control = SandboxControl(db)
    rows = []
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

    alone = "alone, no sharing"
    rows.append(
        Row(f"API calls per create ({alone})", f"{len(create)} ({short(create)})", "", None, "<= 3", len(create) <= 3)
    )
    rows.append(
        Row(
            f"API calls per update, resize + move release ({alone})",
            f"{len(update)} ({short(update)})",
            "",
            None,
            "",
            None,
        )
    )
    rows.append(Row(f"API calls per refresh ({alone})", f"{len(read)} ({short(read)})", "", None, "", None))
    rows.append(Row(f"API calls per delete ({alone})", f"{len(delete)} ({short(delete)})", "", None, "", None))
    return rows


# -- apply at the SDK's pace -----------------------------------------------------------------------
@contextmanager
def standalone_sandbox(db: Path, latency_ms: int) -> Iterator[str]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "qianfan_sandbox",
            "--port",
            "0",
            "--db",
            str(db),
            "--access-key",
            AK,
            "--secret-key",
            SK,
            "--latency-ms",
            str(latency_ms),
        ],
        cwd=Path(__file__).resolve().parents[1],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = first_line(process, 30)
        if not line:
            raise RuntimeError("the standalone sandbox printed no URL within 30 s")
        yield next(word for word in line.split() if word.startswith("http://127.0.0.1:"))
    finally:
        stop(process)


def sdk_baseline_seconds(url: str, creates: int) -> tuple[float, int]:
    """The 3-call floor of a create without sharing (list, purchase, confirm), straight from the SDK."""
    call_action = _sdk(url)

    def one(_: int) -> int:
        call_action("/v2/charge", "DescribeTPMResource", {"model": APPLY_MODEL})
        body = {"model": APPLY_MODEL, "billing": {"paymentTiming": "Postpaid"}, "purchaseCount": 1}
        call_action("/v2/charge", "PurchaseTPMResource", body)
        call_action("/v2/charge", "DescribeTPMResource", {"model": APPLY_MODEL})
        return 3

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        calls = sum(pool.map(one, range(creates)))
    return time.perf_counter() - started, calls


def sdk_refresh_seconds(url: str, ids_json: str) -> tuple[float, int]:
    """One Describe per quota, by id, from 4 threads: a refresh without sharing."""
    call_action = _sdk(url)
    quotas: list[tuple[str, str]] = [tuple(pair) for pair in json.loads(ids_json)]

    def one(quota: tuple[str, str]) -> int:
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


def provider_apply_seconds(workdir: Path, url: str, db: Path, creates: int) -> tuple[float, int]:
    control = SandboxControl(db)
    control.clear_requests()
    with host(workdir, "apply", sandbox_config(db, endpoint=url)) as h:
        # One create first, untimed and of another model: the baseline process has imported the SDK
        # before its clock starts too. The one-time import is reported on its own row.
        h.up({"model": "ernie-char-8k", "purchaseCount": 1}, name="warm-up")
        control.clear_requests()
        checked = [h.check({"model": APPLY_MODEL, "purchaseCount": 1}, name=f"q{i}")[0] for i in range(creates)]
        started = time.perf_counter()
        # The engine issues all creates at once; the host serves 4 at a time.
        with ThreadPoolExecutor(max_workers=creates) as pool:
            list(pool.map(lambda i: h.create(checked[i], name=f"q{i}"), range(creates)))
        elapsed = time.perf_counter() - started
    return elapsed, len(control.requests())


def bench_apply(workdir: Path, creates: int, latency_ms: int, repeat: int) -> Row:
    ours, base = [], []
    calls_ours = calls_base = 0
    for i in range(repeat):
        db = workdir / f"apply-{i}.sqlite3"
        with standalone_sandbox(db, latency_ms) as url:
            seconds, calls_base = sdk_in_child("sdk_baseline_seconds", url, creates)
            base.append(seconds)
            seconds, calls_ours = provider_apply_seconds(workdir, url, db, creates)
            ours.append(seconds)
    o, b = statistics.median(ours), statistics.median(base)
    per_create = calls_ours / creates
    return Row(
        f"{creates} creates of one model at once, latency {latency_ms} ms, median of {repeat}",
        f"{o:.2f} s ({calls_ours} calls, {per_create:.2f} per create)",
        f"{b:.2f} s ({calls_base} calls: 3 per create, SDK, 4 threads)",
        o / b,
        "<= 0.7x; <= 1.5 calls per create",
        o / b <= 0.7 and per_create <= 1.5,
    )


def bench_refresh(workdir: Path, quotas: int, latency_ms: int, repeat: int) -> Row:
    """A `pulumi refresh` of `quotas` quotas over 4 models: a new host reads them all, in resource order."""
    ours, base = [], []
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
        state = json.dumps([[outs["model"], id_] for id_, outs in created])
        for run in range(repeat):
            seconds, calls_base = sdk_in_child("sdk_refresh_seconds", url, state)
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
    o, b = statistics.median(ours), statistics.median(base)
    return Row(
        f"refresh of {quotas} quotas over {len(MODELS)} models, latency {latency_ms} ms, median of {repeat}",
        f"{o:.2f} s ({calls_ours} calls)",
        f"{b:.2f} s ({calls_base} calls: 1 per quota, SDK, 4 threads)",
        o / b,
        "<= 0.3x; <= 10 calls",
        o / b <= 0.3 and calls_ours <= 10,
    )


def sdk_in_child(function: str, *args: object) -> tuple[float, int]:
    """Run an SDK baseline in a fresh process so the SDK's global config stays clean here."""
    code = f"from bench.run import {function}; s, c = {function}(*{args!r}); print(s, c)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
        timeout=600,
        check=True,
    )
    seconds, calls = out.stdout.split()
    return float(seconds), int(calls)


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


def bench_audit(workdir: Path, per_model: int, latency_ms: int, repeat: int) -> Row:
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
    o, b = statistics.median(ours), statistics.median(base)
    return Row(
        f"audit of {len(AUDITED)} models x {per_model} instances, latency {latency_ms} ms, median of {repeat}",
        f"{o:.2f} s ({listed} instances, {calls} calls)",
        f"{b:.2f} s (same calls, SDK, 1 thread)",
        o / b,
        "<= 0.8x",
        o / b <= 0.8,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quotas", type=int, default=100)
    parser.add_argument("--creates", type=int, default=40)
    parser.add_argument("--refreshes", type=int, default=100, help="quotas in the refresh row")
    parser.add_argument("--latency-ms", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--audit-instances", type=int, default=50, help="instances per model in the audit row")
    args = parser.parse_args(argv)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; date {date.today()}"
    )
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="qianfan-tpm-bench-") as tmp:
        workdir = Path(tmp)
        steps: list[Callable[[], list[Row]]] = [
            lambda: [bench_preview(workdir, args.quotas, args.repeat)],
            lambda: [bench_cold_start(workdir, max(args.repeat, 7))],
            lambda: [bench_import_is_lazy()],
            lambda: [bench_first_apply_cost(workdir)],
            lambda: [bench_state_size()],
            lambda: bench_calls_per_operation(workdir),
            lambda: [bench_apply(workdir, args.creates, args.latency_ms, max(1, args.repeat // 2))],
            lambda: [bench_refresh(workdir, args.refreshes, args.latency_ms, max(1, args.repeat // 2))],
            lambda: [bench_audit(workdir, args.audit_instances, args.latency_ms, max(1, args.repeat // 2))],
        ]
        for step in steps:
            rows.extend(step())
    print_table(rows)
    return 0 if all(r.cells[5] != "NO" for r in rows) else 1
