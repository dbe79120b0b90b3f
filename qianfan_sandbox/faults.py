"""Injected failures: what each kind does, and taking one unit of a fault atomically.

A fault is stored with a remaining count and consumed inside `BEGIN IMMEDIATE`, so when eight
requests race for a fault with count 1, exactly one of them gets it.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass

from .errors import ApiError
from .store import immediate

ACTIONS: tuple[str, ...] = (
    "PurchaseTPMResource",
    "DescribeTPMResource",
    "ResizeTPMResource",
    "AutoReleaseTPMResource",
    "ReleaseTPMResource",
)

#: Answer with an error and change nothing.
BEFORE_HANDLING = ("throttle", "error", "drop")
#: Handle the request (changes are committed) and then lose or spoil the answer.
AFTER_COMMIT = ("error_after_commit", "drop_after_commit")
#: Answer success but roll the change back.
NOT_APPLIED = "not_applied"
#: Answer HTTP 200 with `result: false` and roll the change back (Resize, AutoRelease, Release).
FALSE_RESULT = "false_result"
#: Handle the request (committed), hold the answer for `seconds`, then close with no answer.
HANG_AFTER_COMMIT = "hang_after_commit"
#: DescribeTPMResource only: a successful answer that lists nothing, as a lagging replica would.
EMPTY = "empty"
#: DescribeTPMResource only: the instances in a shuffled order, so marker pages overlap and skip.
REORDER = "reorder"
#: DescribeTPMResource only: the answer lists its first item a second time, at its end.
DUPLICATE = "duplicate"
KINDS: tuple[str, ...] = (
    *BEFORE_HANDLING,
    *AFTER_COMMIT,
    NOT_APPLIED,
    FALSE_RESULT,
    HANG_AFTER_COMMIT,
    EMPTY,
    REORDER,
    DUPLICATE,
)

WRITES: tuple[str, ...] = tuple(action for action in ACTIONS if action != "DescribeTPMResource")
#: Kinds that only make sense for some actions ("*" is refused for them: it would match others).
_ONLY_FOR: dict[str, tuple[str, ...]] = {
    EMPTY: ("DescribeTPMResource",),
    REORDER: ("DescribeTPMResource",),
    DUPLICATE: ("DescribeTPMResource",),
    FALSE_RESULT: ("ResizeTPMResource", "AutoReleaseTPMResource", "ReleaseTPMResource"),
    HANG_AFTER_COMMIT: WRITES,
}
#: How long `hang_after_commit` holds an answer unless told, and the most it may.
DEFAULT_HANG_SECONDS = 30.0
MAX_HANG_SECONDS = 3600.0

_CODES_BY_STATUS = {
    429: "RateLimitExceeded",
    500: "InternalError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


@dataclass(frozen=True)
class Fault:
    """One consumed unit of a fault."""

    kind: str
    status: int | None
    #: How long `hang_after_commit` holds the answer (None for every other kind).
    seconds: float | None = None

    @property
    def drops(self) -> bool:
        """The connection is closed with no answer at all."""
        return self.kind in ("drop", "drop_after_commit")

    def error(self) -> ApiError:
        """The error answer an error-answering fault sends."""
        status = self.status or (429 if self.kind == "throttle" else 500)
        code = _CODES_BY_STATUS.get(status, "InternalError" if status >= 500 else "BadRequest")
        if self.kind == "throttle":
            message = "request rate exceeded, retry later"
        else:
            message = "internal error injected by the sandbox"
        return ApiError(code, message, status=status)


def add_fault(
    conn: sqlite3.Connection,
    action: str,
    kind: str,
    count: int,
    status: int | None,
    seconds: float | None = None,
) -> None:
    """Queue `count` units of a fault for `action` ("*" matches every action)."""
    if action != "*" and action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; use one of {', '.join(ACTIONS)} or '*'")
    if kind not in KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; use one of {', '.join(KINDS)}")
    allowed = _ONLY_FOR.get(kind)
    if allowed is not None and action not in allowed:
        only = "DescribeTPMResource only" if allowed == ("DescribeTPMResource",) else ", ".join(allowed)
        raise ValueError(f"fault kind {kind!r} is for {only}, not {action!r}")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 2**62:
        raise ValueError(f"fault count must be an int from 1 to 2**62, not {count!r}")
    if status is not None and (isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599):
        raise ValueError(f"fault status must be an HTTP error status (400-599), not {status!r}")
    held = _hang_seconds(kind, seconds)
    with immediate(conn):
        conn.execute(
            "INSERT INTO faults (action, kind, remaining, status, seconds) VALUES (?, ?, ?, ?, ?)",
            (action, kind, count, status, held),
        )


def _hang_seconds(kind: str, seconds: float | None) -> float | None:
    """The stored `seconds`: only `hang_after_commit` has one, finite and at most an hour."""
    if kind != HANG_AFTER_COMMIT:
        if seconds is not None:
            raise ValueError(f"fault seconds are for {HANG_AFTER_COMMIT!r} only, not {kind!r}")
        return None
    if seconds is None:
        return DEFAULT_HANG_SECONDS
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise ValueError(f"fault seconds must be a number, not {seconds!r}")
    try:
        held = float(seconds)
    except OverflowError:
        held = math.inf
    if not (math.isfinite(held) and 0 < held <= MAX_HANG_SECONDS):
        raise ValueError(f"fault seconds must be over 0 and at most {MAX_HANG_SECONDS:g}, not {seconds!r}")
    return held


def take_fault(conn: sqlite3.Connection, action: str) -> Fault | None:
    """Consume one unit of the oldest fault that matches `action`, if any."""
    # A cheap unlocked look first: most requests meet no fault and need no write lock.
    if conn.execute("SELECT 1 FROM faults WHERE remaining > 0 LIMIT 1").fetchone() is None:
        return None
    with immediate(conn):
        row = conn.execute(
            "SELECT id, kind, remaining, status, seconds FROM faults "
            "WHERE remaining > 0 AND action IN (?, '*') ORDER BY id LIMIT 1",
            (action,),
        ).fetchone()
        if row is None:
            return None
        if row["remaining"] <= 1:
            conn.execute("DELETE FROM faults WHERE id = ?", (row["id"],))
        else:
            conn.execute("UPDATE faults SET remaining = remaining - 1 WHERE id = ?", (row["id"],))
        return Fault(kind=row["kind"], status=row["status"], seconds=row["seconds"])


def clear_faults(conn: sqlite3.Connection) -> None:
    """Forget every queued fault."""
    with immediate(conn):
        conn.execute("DELETE FROM faults")
