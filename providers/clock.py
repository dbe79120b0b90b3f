"""Time as the provider reads and spends it, and what time Qianfan's own clock shows.

`Clock` is the one seam through which the provider reads the time, sleeps and waits on a
condition. Production uses `REAL`; the unit tier's simulation (tests/unit/simulation.py) swaps in
a virtual clock so that every interleaving of concurrent creates can be run deterministically, in
milliseconds of real time. Code under `providers/` therefore never calls `time.sleep`,
`time.monotonic` or `Condition.wait` itself, and every wait re-checks its predicate (a simulated
wait may return early, as a real condition variable may wake spuriously).

`ServerClock` bounds the offset between Qianfan's clock and this machine's from the `Date` header
of every answer, so that a Describe item's `startTime` (Qianfan's clock) can be compared with the
moment a purchase was sent (this machine's clock) — see `purchase.py`, invariant I1.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from email.utils import parsedate_to_datetime


class Clock:
    """The real clock; subclassed by the simulation in the tests."""

    def monotonic(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        """Seconds since the epoch, for comparing with Qianfan's clock."""
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def wait(self, cond: threading.Condition, timeout: float | None) -> None:
        """Wait on `cond` (held by the caller) until notified or `timeout`; callers re-check."""
        cond.wait(timeout)


REAL = Clock()

#: Assumed bound on |Qianfan's clock − this machine's| until an answer's `Date` header measures it.
#: Machines that sign bce-auth-v1 requests keep time (a signature is only valid for minutes); five
#: minutes is the customary tolerance of signed protocols (Kerberos, AWS SigV4 allows 15).
DEFAULT_SKEW_SECONDS = 300.0
#: Samples older than this no longer bound the offset (clocks drift and are stepped).
_SAMPLE_LIFETIME_SECONDS = 600.0
_MAX_SAMPLES = 64


@dataclass(frozen=True)
class _Sample:
    taken: float  # this machine's wall clock
    low: float
    high: float


class ServerClock:
    """Bounds on (Qianfan's clock − this machine's clock), learnt from answers. Thread-safe.

    A `Date` header names the whole second D in which the server wrote the answer; that moment
    lies, on this machine's clock, between sending the request (s) and receiving the answer (r).
    So the offset lies in [D − r, D + 1 − s]. The bounds are the intersection over recent samples;
    samples that contradict each other (a clock was stepped) leave only the newest one.
    """

    def __init__(self, clock: Clock = REAL) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._samples: deque[_Sample] = deque(maxlen=_MAX_SAMPLES)

    def observe(self, sent_wall: float, received_wall: float, date_header: object) -> None:
        if not isinstance(date_header, str) or not date_header:
            return
        try:
            server = parsedate_to_datetime(date_header).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return
        sample = _Sample(received_wall, server - received_wall, server + 1.0 - sent_wall)
        if sample.low > sample.high:
            return
        with self._lock:
            self._samples.append(sample)

    def bounds(self) -> tuple[float, float]:
        """(lowest, highest) possible offset; ±DEFAULT_SKEW_SECONDS until something was measured."""
        now = self._clock.wall()
        with self._lock:
            recent = [s for s in self._samples if now - s.taken <= _SAMPLE_LIFETIME_SECONDS]
        if not recent:
            return -DEFAULT_SKEW_SECONDS, DEFAULT_SKEW_SECONDS
        low = max(s.low for s in recent)
        high = min(s.high for s in recent)
        if low > high:
            newest = max(recent, key=lambda s: s.taken)
            return newest.low, newest.high
        return low, high

    def earliest(self, local_wall: float) -> float:
        """The earliest moment Qianfan's clock may have shown at `local_wall` on this machine."""
        return local_wall + self.bounds()[0]

    def latest(self, local_wall: float) -> float:
        """The latest moment Qianfan's clock may have shown at `local_wall` on this machine."""
        return local_wall + self.bounds()[1]
