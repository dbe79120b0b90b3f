"""Bounded waiting: one deadline per lifecycle operation, exponential backoff with jitter, a poller.

The provider host ignores Pulumi's `customTimeouts`, so every wait and retry in the provider is
bounded by a `Deadline` built from `qianfan:timeoutSeconds`. A deadline carries the `Clock` it
is measured on, so everything that waits inside one operation waits on the same clock.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import TypeVar

from .clock import REAL, Clock

T = TypeVar("T")


class Deadline:
    """The time an operation may still spend; shared by every call and wait of that operation."""

    def __init__(self, seconds: float, clock: Clock = REAL) -> None:
        self.clock = clock
        self._end = clock.monotonic() + seconds

    def remaining(self) -> float:
        return max(0.0, self._end - self.clock.monotonic())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def sub(self, seconds: float) -> Deadline:
        """A shorter deadline inside this one (e.g. how long to wait for a change to show)."""
        return Deadline(min(seconds, self.remaining()), self.clock)

    def sleep(self, seconds: float, *, reserve: float = 0.5) -> bool:
        """Sleep up to `seconds`, leaving `reserve` for one more attempt; False when no time is left.

        Cutting the last pause short (rather than giving up because a full pause no longer fits)
        uses the whole deadline for attempts.
        """
        pause = min(seconds, self.remaining() - reserve)
        if pause <= 0:
            return False
        self.clock.sleep(pause)
        return True


def backoff(attempt: int, *, initial: float = 0.25, cap: float = 8.0) -> float:
    """Delay before retry number `attempt` (0-based): exponential, capped, with "equal jitter".

    Half of the delay is fixed so retries stay spaced out; half is random so that the 4 workers of
    one host (or several hosts) that were throttled together do not retry in lockstep.
    """
    delay = min(cap, initial * 2.0 ** min(attempt, 32))
    return delay / 2 + random.uniform(0, delay / 2)


def wait_for(fetch: Callable[[], T], done: Callable[[T], bool], deadline: Deadline) -> T:
    """Poll `fetch` until `done` holds or the deadline passes; return the last answer either way.

    New instances may show up late and resizes are orders that complete later: Qianfan does not
    say how late.
    """
    attempt = 0
    while True:
        answer = fetch()
        if done(answer):
            return answer
        if not deadline.sleep(backoff(attempt, initial=0.5, cap=5.0), reserve=0.0):
            return answer
        attempt += 1
