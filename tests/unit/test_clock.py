"""`providers.clock`: the one seam for time, and the bounds on Qianfan's clock that `Date` headers give.

A `Date` header names the whole second in which the server wrote its answer; on this machine's
clock that moment lies between sending and receiving. The bounds are the intersection over recent
answers, which I1 (purchase.py) uses to compare a Describe item's `startTime` with a purchase's
sending.
"""

from __future__ import annotations

import threading
from email.utils import formatdate

import pytest

from providers.clock import DEFAULT_SKEW_SECONDS, REAL, Clock, ServerClock


class FixedClock(Clock):
    def __init__(self, now: float) -> None:
        self.now = now

    def wall(self) -> float:
        return self.now


def date(moment: float) -> str:
    return formatdate(moment, usegmt=True)  # whole seconds, as HTTP writes it


def test_nothing_measured_is_the_assumed_skew() -> None:
    assert ServerClock(FixedClock(1000.0)).bounds() == (-DEFAULT_SKEW_SECONDS, DEFAULT_SKEW_SECONDS)


def test_one_answer_bounds_the_offset_to_the_round_trip_and_the_second() -> None:
    clock = ServerClock(FixedClock(1_800_000_100.0))
    # Qianfan's clock 60 s ahead; the answer took 0.2 s; the header names the whole second.
    clock.observe(1_800_000_000.0, 1_800_000_000.2, date(1_800_000_060.5))
    low, high = clock.bounds()
    assert low <= 60.5 <= high and high - low <= 1.2 + 1e-6
    assert clock.earliest(1_800_000_000.0) == pytest.approx(1_800_000_000.0 + low)
    assert clock.latest(1_800_000_000.0) == pytest.approx(1_800_000_000.0 + high)


def test_answers_together_narrow_the_bounds() -> None:
    clock = ServerClock(FixedClock(1_800_000_100.0))
    clock.observe(1_800_000_000.0, 1_800_000_001.0, date(1_800_000_000.9))  # offset in [-0.1, 1]
    clock.observe(1_800_000_010.0, 1_800_000_010.1, date(1_800_000_010.4))  # offset in [-0.1, 1]
    clock.observe(1_800_000_020.4, 1_800_000_020.5, date(1_800_000_020.5))  # offset in [-0.5, 0.6]
    low, high = clock.bounds()
    assert (low, high) == pytest.approx((-0.1, 0.6))


def test_answers_that_contradict_each_other_leave_the_newest() -> None:
    """A clock stepped between two answers: the newest one is believed alone."""
    clock = ServerClock(FixedClock(1_800_000_100.0))
    clock.observe(1_800_000_000.0, 1_800_000_000.1, date(1_800_000_000.0))
    clock.observe(1_800_000_050.0, 1_800_000_050.1, date(1_800_003_650.0))  # an hour ahead now
    low, high = clock.bounds()
    assert 3599 <= low <= high <= 3601


def test_old_answers_no_longer_count() -> None:
    now = FixedClock(1_800_000_000.0)
    clock = ServerClock(now)
    clock.observe(1_800_000_000.0, 1_800_000_000.1, date(1_800_000_000.0))
    assert clock.bounds() != (-DEFAULT_SKEW_SECONDS, DEFAULT_SKEW_SECONDS)
    now.now += 601
    assert clock.bounds() == (-DEFAULT_SKEW_SECONDS, DEFAULT_SKEW_SECONDS)


@pytest.mark.parametrize("header", [None, "", "yesterday", "Tue, 99 Foo 2026 99:99:99 GMT", 12, "Tue"])
def test_a_header_nobody_can_read_tells_nothing(header: object) -> None:
    clock = ServerClock(FixedClock(1000.0))
    clock.observe(999.0, 999.5, header)
    assert clock.bounds() == (-DEFAULT_SKEW_SECONDS, DEFAULT_SKEW_SECONDS)


def test_the_real_clock_sleeps_and_waits_within_bounds() -> None:
    before = REAL.monotonic()
    REAL.sleep(0.01)
    REAL.sleep(-1)  # a negative pause is no pause
    cond = threading.Condition()
    with cond:
        REAL.wait(cond, 0.01)  # returns at its timeout (nobody notifies)
    assert 0.015 <= REAL.monotonic() - before < 5
    assert abs(REAL.wall() - __import__("time").time()) < 1
