"""An audit that cannot be completed says so in one line per cause, within its deadline, and exits 2.

Unreachable endpoints, refused keys, half a key pair, models Qianfan refuses, bad options: each is
named once, with the audit's own advice (environment variables, the read-only policy), and nothing
is reported.
"""

from __future__ import annotations

import json
import socket
import time

import pytest

from audit.account import KEYS_HINT, UNREACHABLE_GRACE_SECONDS, _Failure, _Reachability, _report
from providers.models import DOCUMENTED_MODELS
from tests.audit.fake_qianfan import FakeQianfan, Raw
from tests.audit.harness import child_env, keys_env, run_audit

PREFIX = "python -m audit: audit incomplete, nothing is reported: "


def unused_port() -> int:
    """A port on 127.0.0.1 nothing listens on: bound once to learn it, then closed."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.slow
def test_an_unreachable_endpoint_stops_every_model_at_once_in_one_line() -> None:
    """The deadline is 300 s; a refused connection is tried for the grace period only, for all models
    together, and the answer is one line, not one per model."""
    url = f"http://127.0.0.1:{unused_port()}"
    started = time.monotonic()
    run = run_audit("--endpoint", url)
    elapsed = time.monotonic() - started
    assert run.returncode == 2 and run.stdout == ""
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith(
        f"{PREFIX}none of the {len(DOCUMENTED_MODELS)} models listed: cannot reach {url} (connection refused; "
    ), lines[0]
    assert lines[0].endswith("— check --endpoint (or QIANFAN_CONSOLE_API_BASE_URL) and the network")
    assert "--timeout-seconds" not in lines[0]  # it stopped before the deadline, not at it
    # The grace plus one backoff pause (at most 8 s) plus process start-up, with room for a busy machine.
    assert elapsed < UNREACHABLE_GRACE_SECONDS + 40, elapsed


@pytest.mark.slow
def test_an_unreachable_endpoint_within_a_shorter_deadline_names_the_deadline() -> None:
    url = f"http://127.0.0.1:{unused_port()}"
    run = run_audit("--endpoint", url, "--timeout-seconds", "2")
    assert run.returncode == 2 and run.stdout == ""
    [line] = run.stderr.splitlines()
    assert line.startswith(f"{PREFIX}none of the {len(DOCUMENTED_MODELS)} models listed: cannot reach {url} ")
    assert "the limit set by --timeout-seconds (2s)" in line


@pytest.mark.slow
def test_refused_keys_get_the_audits_advice_in_one_line_and_stop_the_other_models() -> None:
    """The provider's advice (stack config, write policies) does not fit the audit; a short access key
    such as `AK` mangles nothing in the line."""
    refusal = {
        "requestId": "r-9",
        "code": "InvalidAccessKeyId",
        "message": "NotFound, cause: Could not find credential.",
    }
    answers = {model: Raw(403, json.dumps(refusal).encode()) for model in DOCUMENTED_MODELS}
    with FakeQianfan(answers) as fake:
        run = run_audit("--endpoint", fake.url, env=keys_env("AK", "SKshort"), secrets_to_scan=("SKshort",))
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.splitlines() == [
        f"{PREFIX}none of the {len(DOCUMENTED_MODELS)} models listed: DescribeTPMResource failed: HTTP 403 "
        f"InvalidAccessKeyId: NotFound, cause: Could not find credential. (requestId r-9) — {KEYS_HINT}"
    ]
    assert "QianfanServiceReadAccessPolicy" in KEYS_HINT and "QIANFAN_SECRET_KEY" in KEYS_HINT
    assert len(fake.requests) <= 4  # the models in flight when the first refusal came; no more


@pytest.mark.slow
@pytest.mark.parametrize(
    ("present", "missing"), [("QIANFAN_ACCESS_KEY", "QIANFAN_SECRET_KEY"), ("QIANFAN_SECRET_KEY", "QIANFAN_ACCESS_KEY")]
)
@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:9", "sandbox"])
def test_half_a_key_pair_names_the_missing_key(present: str, missing: str, endpoint: str) -> None:
    run = run_audit("--endpoint", endpoint, env=child_env(**{present: "AKhalf0123"}), secrets_to_scan=("AKhalf0123",))
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.splitlines() == [
        f"python -m audit: only half a key pair: {missing} is not set ({present} is); export both "
        "(a key with QianfanServiceReadAccessPolicy is enough)"
    ]


@pytest.mark.slow
def test_models_refused_alike_share_one_line_and_every_other_model_is_still_asked() -> None:
    refusal = Raw(400, json.dumps({"requestId": "r-1", "code": "InvalidParameter", "message": "offline"}).encode())
    answers = {"ernie-4.0-8k": refusal, "ernie-3.5-8k": refusal}
    with FakeQianfan(answers) as fake:
        run = run_audit("--endpoint", fake.url)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.splitlines() == [
        f"{PREFIX}2 models not listed (ernie-4.0-8k, ernie-3.5-8k): DescribeTPMResource failed: HTTP 400 "
        "InvalidParameter: offline (requestId r-1) — if Qianfan no longer offers this model, leave it out with --models"
    ]
    assert len(fake.requests) == len(DOCUMENTED_MODELS)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ("--timeout-seconds", "5000"),
            "python -m audit: argument --timeout-seconds: must be between 1 and 3600, got '5000' (see --help)",
        ),
        (("--concurrency", "x"), "python -m audit: argument --concurrency: 'x' is not a number (see --help)"),
        (("--bogus",), "python -m audit: unrecognized arguments: --bogus (see --help)"),
        (
            ("--extra-models", "[1"),
            "python -m audit: --extra-models: looks like a JSON list but is not valid JSON: '[1'",
        ),
    ],
)
def test_a_bad_option_is_refused_in_one_line(args: tuple[str, ...], line: str) -> None:
    run = run_audit(*args, "--endpoint", "sandbox")
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.splitlines() == [line]


# -- the pieces, without a process ------------------------------------------------------------------
def test_reachability_gives_up_only_after_the_grace_and_any_answer_ends_the_streak() -> None:
    patient = _Reachability(60.0)
    assert not patient.not_connected() and not patient.not_connected()
    assert patient.attempts == 2
    patient.connected()
    assert patient.attempts == 0 and patient.waited == 0.0
    assert _Reachability(0.0).not_connected()


def test_report_counts_the_models_not_asked_with_the_cause_that_stopped_the_audit() -> None:
    wanted = ["a", "b", "c", "d", "e", "f", "g", "h"]
    rejected = _Failure(("rejected",), "refused", per_model=True)
    throttled = _Failure(("throttled",), "throttled", per_model=False)
    failures = {"b": rejected, "c": throttled, "d": throttled}
    listed = {"a": [], "e": []}
    assert _report(wanted, listed, failures) == [
        "audit incomplete, nothing is reported: model b not listed: refused",
        "audit incomplete, nothing is reported: 2 models not listed (c, d), 3 other(s) not asked after that: throttled",
    ]
    many = {m: throttled for m in wanted[:6]}
    assert _report(wanted, {}, many) == [
        "audit incomplete, nothing is reported: none of the 8 models listed: throttled"
    ]
    assert _report(wanted, {"g": [], "h": []}, many) == [
        "audit incomplete, nothing is reported: 6 models not listed (a, b, c, d and 2 more): throttled"
    ]
