"""The benchmark stays runnable (`python -m bench`); its timings are not asserted here — a
benchmark prints figures, tests do not time things. Its counted figures are exact, so they are."""

from __future__ import annotations

import re
import subprocess
import sys

from hostdriver import PROJECT_ROOT


def test_benchmark_runs_and_prints_its_table() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            *("--quotas", "8", "--creates", "4", "--refreshes", "8", "--latency-ms", "5", "--repeat", "1"),
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode in (0, 1), out.stderr  # 1 = a timing goal missed on this tiny, noisy run
    table = out.stdout
    assert "| measure " in table and "machine:" in table
    assert "; 0 calls " in table, "a preview must make no API call"
    assert re.search(r"\| qianfan SDK imported by import \+ Check +\| no ", table), "a preview imported the SDK"
    # Each operation alone: exact counts.
    assert "| 3 (Describe, Purchase, Describe)" in table
    assert "| 4 (Describe, Resize, AutoRelease, Describe)" in table
    assert "| size of __provider per resource" in table
    # Shared listings: 4 creates of one model cost at most one listing before and one after besides
    # the purchases (more if the host's workers drift apart); 8 refreshes over 4 models, one each.
    creates = re.search(r"4 creates of one model at once.*?\| [0-9.]+ s \((\d+) calls", table)
    assert creates and 5 <= int(creates.group(1)) <= 12, table
    refresh = re.search(r"refresh of 8 quotas over 4 models.*?\| [0-9.]+ s \((\d+) calls\)", table)
    assert refresh and int(refresh.group(1)) == 4, table
    assert "audit of 24 models x 50 instances" in table and "(1200 instances, 24 calls)" in table
