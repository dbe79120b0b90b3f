"""Injected failures: what each kind does, and taking one unit of a fault atomically.

A fault is stored with a remaining count and consumed inside `BEGIN IMMEDIATE`, so when eight
requests race for a fault with count 1, exactly one of them gets it.
"""

from __future__ import annotations

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
#: DescribeTPMResource only: a successful answer that lists nothing, as a lagging replica would.
EMPTY = "empty"
KINDS: tuple[str, ...] = (*BEFORE_HANDLING, *AFTER_COMMIT, NOT_APPLIED, EMPTY)

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


def add_fault(conn: sqlite3.Connection, action: str, kind: str, count: int, status: int | None) -> None:
    """Queue `count` units of a fault for `action` ("*" matches every action)."""
    if action != "*" and action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; use one of {', '.join(ACTIONS)} or '*'")
    if kind not in KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; use one of {', '.join(KINDS)}")
    if kind == EMPTY and action != "DescribeTPMResource":
        raise ValueError(f"fault kind {EMPTY!r} is for DescribeTPMResource only, not {action!r}")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 2**62:
        raise ValueError(f"fault count must be an int from 1 to 2**62, not {count!r}")
    if status is not None and (isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599):
        raise ValueError(f"fault status must be an HTTP error status (400-599), not {status!r}")
    with immediate(conn):
        conn.execute(
            "INSERT INTO faults (action, kind, remaining, status) VALUES (?, ?, ?, ?)",
            (action, kind, count, status),
        )


def take_fault(conn: sqlite3.Connection, action: str) -> Fault | None:
    """Consume one unit of the oldest fault that matches `action`, if any."""
    # A cheap unlocked look first: most requests meet no fault and need no write lock.
    if conn.execute("SELECT 1 FROM faults WHERE remaining > 0 LIMIT 1").fetchone() is None:
        return None
    with immediate(conn):
        row = conn.execute(
            "SELECT id, kind, remaining, status FROM faults "
            "WHERE remaining > 0 AND action IN (?, '*') ORDER BY id LIMIT 1",
            (action,),
        ).fetchone()
        if row is None:
            return None
        if row["remaining"] <= 1:
            conn.execute("DELETE FROM faults WHERE id = ?", (row["id"],))
        else:
            conn.execute("UPDATE faults SET remaining = remaining - 1 WHERE id = ?", (row["id"],))
        return Fault(kind=row["kind"], status=row["status"])


def clear_faults(conn: sqlite3.Connection) -> None:
    """Forget every queued fault."""
    with immediate(conn):
        conn.execute("DELETE FROM faults")
