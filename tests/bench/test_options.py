"""The benchmark's options and verdicts, without running it: bad values are refused in one line,
every option says what it is, and a goal counts as missed only when every pair misses it."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from bench.run import Met, Pairs, build_parser
from hostdriver import PROJECT_ROOT


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "line"),
    [
        (("--repeat", "0"), "argument --repeat: must be from 1 to 50, got '0'"),
        (("--repeat", "-1"), "argument --repeat: must be from 1 to 50, got '-1'"),
        (("--repeat", "x"), "argument --repeat: must be a whole number from 1 to 50, got 'x'"),
        (("--creates", "1.5"), "argument --creates: must be a whole number from 1 to 1000, got '1.5'"),
        (("--latency-ms", "-5"), "argument --latency-ms: must be from 0 to 10000, got '-5'"),
        (("--quotas", "0"), "argument --quotas: must be from 1 to 10000, got '0'"),
        (("--bogus",), "unrecognized arguments: --bogus"),
    ],
)
def test_a_bad_value_is_refused_in_one_line(args: tuple[str, ...], line: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.splitlines() == [f"python -m bench: {line} (see --help)"]


def test_every_option_says_what_it_is() -> None:
    parser = build_parser()
    options = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    assert options
    for action in options:
        assert action.help and action.help.strip(), f"{action.option_strings} has no help"
    text = parser.format_help()
    assert "Exit codes:" in text and all(a.option_strings[0] in text for a in options)


@pytest.mark.parametrize(
    ("ours", "base", "met", "shown"),
    [
        ([1.0, 1.1, 0.9], [1.0, 1.0, 1.0], Met.YES, "1.00x 0.90-1.10"),  # the median meets 1.0
        ([1.3, 0.9, 1.2], [1.0, 1.0, 1.0], Met.NOISE, "1.20x 0.90-1.30"),  # one pair meets it
        ([1.3, 1.1, 1.2], [1.0, 1.0, 1.0], Met.NO, "1.20x 1.10-1.30"),  # every pair misses
        ([2.0], [1.0], Met.NO, "2.00x"),
        ([1.0], [2.0], Met.YES, "0.50x"),
    ],
)
def test_a_goal_is_missed_only_when_every_pair_misses_it(
    ours: list[float], base: list[float], met: Met, shown: str
) -> None:
    pairs = Pairs(ours, base)
    assert pairs.judge(1.0) is met
    assert pairs.ratio_text() == shown
