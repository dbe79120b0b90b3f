"""The benchmark stays runnable (`python -m bench`); its timings are not asserted here — a
benchmark prints figures, tests do not time things. Its counted figures are exact, so they are."""

from __future__ import annotations

import subprocess
import sys

from hostdriver import PROJECT_ROOT


def test_benchmark_runs_and_prints_its_table() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench", "--quotas", "8", "--creates", "4", "--latency-ms", "5", "--repeat", "1"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode in (0, 1), out.stderr  # 1 = a timing goal missed on this tiny, noisy run
    table = out.stdout
    assert "| measure " in table and "machine:" in table
    assert "; 0 calls " in table, "a preview must make no API call"
    assert "| API calls per create                " in table and "| 3 (Describe, Purchase, Describe)" in table
    assert "| size of __provider per resource" in table
    assert "4 creates at once" in table and "(12 calls)" in table
    assert "audit of 24 models x 50 instances" in table and "(1200 instances, 24 calls)" in table
