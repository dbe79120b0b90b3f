"""The live test, rehearsed where it costs nothing: it skips unless opted in, and opted in it names
the endpoint it calls before it buys anything. Here that endpoint is a local sandbox."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hostdriver import PROJECT_ROOT
from hostdriver.process import first_line, stop

pytestmark = pytest.mark.slow  # the live test as a process against a standalone sandbox

LIVE_TEST = "tests/live/test_live.py"
AK, SK = "AKrehearsal0123456789", "SKrehearsal0123456789abcdef"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QIANFAN_")}
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(name, None)
    env["NO_PROXY"] = "127.0.0.1,localhost"
    return env | extra


def run_live_test(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest", LIVE_TEST, "-m", "live", "-s", "-q", "-rs", "-p", "no:cacheprovider"]
    return subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture
def sandbox_url(tmp_path: Path) -> Iterator[str]:
    command = [sys.executable, "-m", "qianfan_sandbox", "--port", "0", "--db", str(tmp_path / "live.sqlite3")]
    process = subprocess.Popen(
        [*command, "--access-key", AK, "--secret-key", SK], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        line = first_line(process, 30)
        if not line:
            pytest.fail("the standalone sandbox printed no URL within 30 s")
        yield next(word for word in line.split() if word.startswith("http://127.0.0.1:"))
    finally:
        stop(process)


def test_the_live_test_skips_unless_opted_in() -> None:
    out = run_live_test(clean_env(QIANFAN_ACCESS_KEY=AK, QIANFAN_SECRET_KEY=SK, QIANFAN_LIVE_MODEL="ernie-speed-8k"))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 skipped" in out.stdout and "live test: spends money; set QIANFAN_LIVE_TEST=1" in out.stdout
    assert "LIVE TEST" not in out.stdout


def test_opted_in_it_names_the_endpoint_before_it_buys(sandbox_url: str) -> None:
    env = clean_env(
        QIANFAN_LIVE_TEST="1",
        QIANFAN_LIVE_MODEL="ernie-speed-8k",
        QIANFAN_ACCESS_KEY=AK,
        QIANFAN_SECRET_KEY=SK,
        QIANFAN_CONSOLE_API_BASE_URL=sandbox_url,
    )
    out = run_live_test(env)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "1 passed" in out.stdout
    lines = out.stdout.splitlines()
    calling = lines.index(f"*** LIVE TEST: calling {sandbox_url} ***")
    bought = next(i for i, line in enumerate(lines) if re.match(r"\*\*\* bought \S+;", line))
    assert calling < bought
    assert "THIS SPENDS MONEY" in lines[calling + 1]
    assert AK not in out.stdout + out.stderr and SK not in out.stdout + out.stderr
