"""`python -m qianfan_sandbox`: arguments, errors, and options shared with another process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hostdriver import PROJECT_ROOT
from qianfan_sandbox import SandboxControl
from tests.support.sandbox_http import Client
from tests.support.standalone import child_env, standalone

pytestmark = pytest.mark.slow  # a standalone sandbox process per test

CHILD_TIMEOUT = 60


def run_main(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qianfan_sandbox", *args],
        cwd=PROJECT_ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
    )


def test_options_from_the_command_line_are_stored(served_db: Path) -> None:
    args = ("--describe-shape", "rich", "--id-style", "hex", "--resize-delay-seconds", "30", "--latency-ms", "1")
    with standalone(served_db, "--access-key", "AK9", "--secret-key", "SK9", *args) as url:
        client = Client(url, "AK9", "SK9")
        instance_id = client.purchase(count=1)
        assert len(instance_id) == 24
        client.ok("ResizeTPMResource", {"instanceId": instance_id, "count": 3})
        assert client.describe()[0]["count"] == 1  # the order is not due yet
        options = SandboxControl(served_db).options()
        assert (options.describe_shape, options.id_style, options.resize_delay_seconds) == ("rich", "hex", 30.0)


def test_options_set_by_another_process_steer_the_server(served_db: Path) -> None:
    with standalone(served_db, "--creating-seconds", "0") as url:
        control = SandboxControl(served_db)
        client = Client(url)
        control.set_option("resize_delay_seconds", 60)
        instance_id = client.purchase(count=1)
        client.ok("ResizeTPMResource", {"instanceId": instance_id, "count": 4})
        assert client.describe()[0]["tpm"] == 10000
        control.set_option("clock_offset_seconds", 61)
        assert client.describe()[0]["tpm"] == 40000
        control.set_option("describe_shape", "rich")
        assert client.describe()[0]["count"] == 4
        control.add_fault("DescribeTPMResource", "throttle")
        assert client.call("DescribeTPMResource", {"model": "ernie-speed-8k"}).status_code == 429


def test_consistency_options_from_the_command_line(served_db: Path) -> None:
    args = ("--page-size", "1", "--visible-after-seconds", "3600", "--retired-models", "ernie-4.0-8k, ernie-3.5-8k")
    with standalone(served_db, *args) as url:
        client = Client(url)
        first, second = client.purchase(), client.purchase()
        assert client.describe() == []  # bought, not listed yet
        SandboxControl(served_db).set_option("visible_after_seconds", 0)
        page = client.ok("DescribeTPMResource", {"model": "ernie-speed-8k"})
        assert ([i["instanceId"] for i in page["instances"]], page["isTruncated"]) == ([first], True)
        page = client.ok("DescribeTPMResource", {"model": "ernie-speed-8k", "marker": page["nextMarker"]})
        assert ([i["instanceId"] for i in page["instances"]], page["isTruncated"]) == ([second], False)
        assert client.call("DescribeTPMResource", {"model": "ernie-3.5-8k"}).status_code == 400
    options = SandboxControl(served_db).options()
    assert (options.page_size, options.retired_models) == (1, ("ernie-4.0-8k", "ernie-3.5-8k"))


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--port", "abc"), "argument --port: invalid int value: 'abc'"),
        (("--describe-shape", "wide"), "argument --describe-shape: invalid choice: 'wide'"),
        (("--no-such-flag",), "unrecognized arguments: --no-such-flag"),
        (("--page-size", "2.5"), "argument --page-size: invalid int value"),
        (("--page-size", "5000"), "page_size"),
        (("--visible-after-seconds", "-1"), "visible_after_seconds"),
        (("--retired-models", "a\tb"), "retired_models"),
        (("--port", "70000"), "port"),
        (("--creating-seconds", "nan"), "creating_seconds"),
        (("--latency-ms", "-5"), "latency_ms"),
        (("--resize-delay-seconds", "inf"), "resize_delay_seconds"),
        (("--request-timeout", "0"), "timeout"),
        (("--extra-models", "ok,a\tb"), "model"),
        (("--access-key", "a/b"), "access key"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path: Path, args: tuple[str, ...], words: str) -> None:
    done = run_main("--port", "0", "--db", str(tmp_path / "q.db"), *args)
    assert done.returncode == 2
    assert done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("qianfan sandbox: ") and words in line


def test_a_missing_database_argument_is_one_line(tmp_path: Path) -> None:
    done = run_main("--port", "0")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "qianfan sandbox: the following arguments are required: --db (see --help)\n"


def test_help_still_shows_usage(tmp_path: Path) -> None:
    done = run_main("--help")
    assert done.returncode == 0
    assert "usage: python -m qianfan_sandbox" in done.stdout and "--page-size" in done.stdout


def test_corrupt_database_exits_2_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    path.write_bytes(b"garbage, not SQLite " * 100)
    done = run_main("--port", "0", "--db", str(path))
    assert done.returncode == 2
    assert done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert str(path) in line


def test_the_secret_key_is_never_printed(tmp_path: Path) -> None:
    secret = "sk-never-print-me-8d1f"
    with standalone(tmp_path / "q.db", "--secret-key", secret) as url:
        assert Client(url, sk=secret).describe() == []
    done = run_main("--port", "70000", "--db", str(tmp_path / "q.db"), "--secret-key", secret)
    assert secret not in done.stdout + done.stderr
