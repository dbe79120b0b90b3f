"""The standalone sandbox (`python -m qianfan_sandbox`) as a child process, and the environment
every such child gets: this project importable, no proxy between it and 127.0.0.1.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hostdriver import PROJECT_ROOT
from hostdriver.process import first_line

STARTUP_TIMEOUT = 20
URL_LINE = re.compile(r"http://127\.0\.0\.1:(\d+)")


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a child process: this project importable, no proxy for loopback."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "NO_PROXY": "127.0.0.1,localhost"}
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(name, None)
    env.update(extra)
    return env


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    line = first_line(process, timeout)
    if line is None:
        process.kill()
        raise AssertionError(f"the sandbox printed no URL line within {timeout} s")
    return line


@contextmanager
def standalone(db_path: Path, *args: str) -> Iterator[str]:
    """`python -m qianfan_sandbox` on a free port; yields its URL, then checks it stops cleanly."""
    process = subprocess.Popen(
        [sys.executable, "-m", "qianfan_sandbox", "--port", "0", "--db", str(db_path), *args],
        cwd=PROJECT_ROOT,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = _first_line(process, STARTUP_TIMEOUT)
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
        stderr = process.stderr.read() if process.stderr else ""
        assert code == 0, stderr
        assert stderr == "", stderr
