"""`providers.deadline`: every wait is bounded, backoff stays within its bounds for any attempt, the poller.

Sleeps here are at most ~0.3 s; the clock is read around them to prove nothing overruns.
"""

from __future__ import annotations

import os
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from providers.deadline import Deadline, backoff, wait_for

PROFILE = settings(max_examples=300, deadline=None, derandomize=os.environ.get("CI") == "true")
#: Scheduling noise allowed on top of a measured sleep (the machine is shared).
SLACK = 0.08


def bounds(attempt: int, initial: float, cap: float) -> tuple[float, float]:
    """Equal jitter, written out: the full delay doubles from `initial` up to `cap`; half of it is fixed."""
    full = cap
    if attempt < 64 and initial * 2**attempt < cap:
        full = initial * 2**attempt
    return full / 2, full


@pytest.mark.parametrize("attempt", [0, 1, 2, 3, 4, 5, 6, 10, 31, 32, 33, 100, 1_000, 10_000])
def test_backoff_within_bounds_for_the_defaults(attempt: int) -> None:
    low, high = bounds(attempt, 0.25, 8.0)
    for _ in range(50):
        assert low <= backoff(attempt) <= high


def test_backoff_starts_small_and_is_capped() -> None:
    assert all(0.125 <= backoff(0) <= 0.25 for _ in range(50))
    assert all(4.0 <= backoff(10_000) <= 8.0 for _ in range(50))


def test_backoff_is_jittered() -> None:
    assert len({backoff(5) for _ in range(20)}) > 1


@PROFILE
@given(
    attempt=st.integers(min_value=0, max_value=10_000),
    initial=st.floats(min_value=0.001, max_value=10.0),
    cap=st.floats(min_value=0.001, max_value=60.0),
)
def test_backoff_never_overflows_and_stays_in_bounds(attempt: int, initial: float, cap: float) -> None:
    low, high = bounds(attempt, initial, cap)
    delay = backoff(attempt, initial=initial, cap=cap)
    assert low * (1 - 1e-9) <= delay <= high * (1 + 1e-9)


def test_backoff_for_every_attempt_up_to_10000() -> None:
    assert max(backoff(attempt) for attempt in range(10_001)) <= 8.0


# -- Deadline ---------------------------------------------------------------------------------------
def test_remaining_and_expired() -> None:
    deadline = Deadline(10.0)
    assert 9.5 < deadline.remaining() <= 10.0 and not deadline.expired
    assert Deadline(0.0).expired and Deadline(0.0).remaining() == 0.0
    assert Deadline(-5.0).expired and Deadline(-5.0).remaining() == 0.0


def test_sleep_is_cut_to_the_deadline() -> None:
    deadline = Deadline(0.2)
    started = time.monotonic()
    assert deadline.sleep(60.0, reserve=0.0) is True  # cut short, but it did pause
    assert time.monotonic() - started <= 0.2 + SLACK
    assert deadline.sleep(60.0, reserve=0.0) is False  # nothing left
    assert deadline.expired


def test_sleep_leaves_the_reserve() -> None:
    deadline = Deadline(0.3)
    started = time.monotonic()
    assert deadline.sleep(60.0, reserve=0.2) is True
    elapsed = time.monotonic() - started
    assert elapsed <= 0.1 + SLACK
    assert deadline.remaining() >= 0.2 - SLACK


def test_sleep_refuses_when_only_the_reserve_is_left() -> None:
    deadline = Deadline(0.3)
    started = time.monotonic()
    assert deadline.sleep(0.1) is False  # the default reserve is 0.5 s
    assert time.monotonic() - started < SLACK
    assert not deadline.expired  # the time is kept for one more attempt


def test_a_short_sleep_sleeps_its_own_length() -> None:
    deadline = Deadline(5.0)
    started = time.monotonic()
    assert deadline.sleep(0.05) is True
    assert 0.05 <= time.monotonic() - started <= 0.05 + SLACK


@pytest.mark.parametrize("seconds", [0.0, -1.0])
def test_a_zero_or_negative_sleep_does_not_sleep(seconds: float) -> None:
    assert Deadline(5.0).sleep(seconds, reserve=0.0) is False


def test_sub_is_never_longer_than_its_parent() -> None:
    parent = Deadline(0.5)
    assert 0.4 < parent.sub(60.0).remaining() <= 0.5
    assert parent.sub(0.1).remaining() <= 0.1
    assert Deadline(0.0).sub(60.0).expired


def test_sub_and_parent_run_out_independently() -> None:
    parent = Deadline(5.0)
    child = parent.sub(0.1)
    assert child.sleep(1.0, reserve=0.0) is True
    assert child.expired and not parent.expired


# -- wait_for -------------------------------------------------------------------------------------------
def test_wait_for_returns_as_soon_as_done() -> None:
    answers = iter([None, "Creating", "Running"])
    seen: list[str | None] = []

    def fetch() -> str | None:
        seen.append(next(answers))
        return seen[-1]

    started = time.monotonic()
    result = wait_for(fetch, lambda found: found is not None, Deadline(0.2))
    assert result == "Creating" and len(seen) == 2
    assert time.monotonic() - started < 0.3


def test_wait_for_gives_up_at_the_deadline_with_the_last_answer() -> None:
    calls = 0

    def fetch() -> str:
        nonlocal calls
        calls += 1
        return "Creating"

    started = time.monotonic()
    result = wait_for(fetch, lambda found: found == "Running", Deadline(0.2))
    elapsed = time.monotonic() - started
    assert result == "Creating"
    assert calls >= 2 and elapsed < 0.3


def test_wait_for_on_an_expired_deadline_fetches_once() -> None:
    calls: list[int] = []
    assert wait_for(lambda: calls.append(1), lambda found: False, Deadline(0)) is None
    assert calls == [1]
