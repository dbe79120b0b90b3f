"""The real `qianfan` SDK against the standalone sandbox (`python -m providers.sandbox`).

Both run as child processes: the SDK reads its endpoint and keys from the environment and
keeps a process-wide config singleton, which must not leak into other tests.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from providers.sandbox import SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY, SandboxControl

PROJECT_ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT = 20
CHILD_TIMEOUT = 60
URL_LINE = re.compile(r"http://127\.0\.0\.1:(\d+)")


def _read_first_line(process: subprocess.Popen[str], timeout: float) -> str:
    """The child's first stdout line, or a failure after `timeout` seconds."""
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        process.kill()
        pytest.fail(f"the sandbox printed no URL line within {timeout} s")


def _child_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "NO_PROXY": "127.0.0.1,localhost"}
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(name, None)
    env.update(extra)
    return env


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "sandbox" / "qianfan.db"


@pytest.fixture
def standalone(db_path: Path) -> Iterator[str]:
    """A standalone sandbox on a free port; yields its URL and checks it stops cleanly."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "providers.sandbox",
            "--port",
            "0",
            "--db",
            str(db_path),
            "--creating-seconds",
            "0",
            "--extra-models",
            "sdk-test-model",
        ],
        cwd=PROJECT_ROOT,
        env=_child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = _read_first_line(process, STARTUP_TIMEOUT)
        match = URL_LINE.search(line)
        assert match, f"unexpected first line {line!r}"
        yield match.group(0)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
            raise
        assert code == 0, process.stderr.read() if process.stderr else ""


def run_sdk(url: str, script: str, secret_key: str = SANDBOX_SECRET_KEY) -> Any:
    """Run `script` with the SDK configured for the sandbox; it prints one JSON value last."""
    env = _child_env(
        QIANFAN_ACCESS_KEY=SANDBOX_ACCESS_KEY,
        QIANFAN_SECRET_KEY=secret_key,
        QIANFAN_CONSOLE_API_BASE_URL=url,
    )
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_sdk_purchase_describe_resize_release(standalone: str, db_path: Path) -> None:
    result = run_sdk(
        standalone,
        """
        import json
        from qianfan.resources.console.utils import call_action
        from qianfan.resources.console.charge import Charge

        bought = call_action("/v2/charge", "PurchaseTPMResource", {
            "model": "ernie-3.5-8k",
            "billing": {"paymentTiming": "Postpaid", "releaseTime": "2030-01-25 12:30:30"},
            "purchaseCount": 2,
        })
        instance_id = bought.body["result"]["instanceId"]
        listed = call_action("/v2/charge", "DescribeTPMResource", {"model": "ernie-3.5-8k"})
        resized = Charge.resize_tpm_resource(instance_id=instance_id, count=3)
        cancelled = Charge.auto_release_tpm_resource(instance_id=instance_id, release_time=None)
        after = Charge.tpm_credit_info(model="ernie-3.5-8k", instance_id=instance_id)
        custom = Charge.charge_tpm_credit(
            model="sdk-test-model", purchase_count=1, billing={"paymentTiming": "Postpaid"})
        released = Charge.stop_tpm_credit_charging(model="ernie-3.5-8k", instance_id=instance_id)
        final = Charge.tpm_credit_info(model="ernie-3.5-8k")
        print(json.dumps({
            "code": bought.code,
            "request_id_header": bought.headers.get("X-Bce-Request-Id"),
            "request_id": bought.body["requestId"],
            "instance_id": instance_id,
            "listed": listed.body["result"]["instances"],
            "resized": resized.body["result"],
            "cancelled": cancelled.body["result"],
            "after": after.body["result"]["instances"],
            "custom": custom.body["result"]["instanceId"],
            "released": released.body["result"],
            "final": final.body["result"]["instances"],
        }))
    """,
    )
    assert result["code"] == 200
    assert result["request_id_header"] == result["request_id"]
    instance_id = result["instance_id"]
    assert re.fullmatch(r"tpm-[A-Za-z0-9]{8}", instance_id)
    [listed] = result["listed"]
    assert listed["instanceId"] == instance_id
    assert (listed["count"], listed["tpm"], listed["rpm"], listed["status"]) == (2, 20000, 66, "Running")
    assert listed["releaseTime"] == "2030-01-25T12:30:30+08:00"
    assert result["resized"] is True and result["cancelled"] is True and result["released"] is True
    [after] = result["after"]
    assert (after["count"], after["releaseTime"], after["status"]) == (3, None, "Running")
    assert [i["status"] for i in result["final"]] == ["Stopped"]
    rows = {row["instanceId"]: row for row in SandboxControl(db_path).instances()}
    assert rows[instance_id]["released"] is True
    assert rows[result["custom"]]["model"] == "sdk-test-model"
    actions = [r["action"] for r in SandboxControl(db_path).requests()]
    assert actions == [
        "PurchaseTPMResource",
        "DescribeTPMResource",
        "ResizeTPMResource",
        "AutoReleaseTPMResource",
        "DescribeTPMResource",
        "PurchaseTPMResource",
        "ReleaseTPMResource",
        "DescribeTPMResource",
    ]


def test_sdk_with_wrong_secret_key_is_refused(standalone: str, db_path: Path) -> None:
    result = run_sdk(
        standalone,
        """
        import json
        import qianfan.errors
        from qianfan.resources.console.utils import call_action

        try:
            call_action("/v2/charge", "PurchaseTPMResource", {
                "model": "ernie-3.5-8k", "billing": {"paymentTiming": "Postpaid"}, "purchaseCount": 1})
        except qianfan.errors.RequestError as exc:
            print(json.dumps({"status": exc.status_code,
                              "code": exc.headers.get("X-Bce-Error-Code"),
                              "message": exc.headers.get("X-Bce-Error-Message")}))
        else:
            print(json.dumps(None))
    """,
        secret_key="definitely-wrong",
    )
    assert result is not None, "the purchase was accepted with a wrong secret key"
    assert result["status"] == 403
    assert result["code"] == "SignatureDoesNotMatch"
    assert SandboxControl(db_path).instances() == []
    assert [(r["status"], r["code"]) for r in SandboxControl(db_path).requests()] == [(403, "SignatureDoesNotMatch")]


def test_standalone_corrupt_database_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    path.write_bytes(b"garbage, not SQLite " * 100)
    done = subprocess.run(
        [sys.executable, "-m", "providers.sandbox", "--port", "0", "--db", str(path)],
        cwd=PROJECT_ROOT,
        env=_child_env(),
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert str(path) in line
