"""The request journal: what each authenticated request asked for and how it was answered.

Only requests that passed the signature check are recorded, so a stranger can neither fill the
file nor plant text in it; bodies are at most the 64 KiB the server reads. A row is written when
the request is accepted (so the order is arrival order) and completed just before the answer is
sent (so a client that has its answer always finds it recorded); the server completes it even
when handling fails. Headers are never stored: the Authorization header carries the access key.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from .store import immediate


def _parsed(text: str) -> tuple[bool, Any]:
    """(True, value) for JSON Python can read back, else (False, text): nesting, huge numbers, garbage."""
    try:
        return True, json.loads(text)
    except (ValueError, RecursionError):
        return False, text


def record_arrival(conn: sqlite3.Connection, action: str | None, raw_body: bytes) -> int:
    """Store the request body (as JSON when it parses) and return the row id."""
    text = raw_body.decode("utf-8", "replace")
    is_json, _ = _parsed(text)
    with immediate(conn):
        cursor = conn.execute(
            "INSERT INTO requests (action, body, body_is_json) VALUES (?, ?, ?)",
            (action, text, int(is_json)),
        )
    return int(cursor.lastrowid or 0)


def record_answer(conn: sqlite3.Connection, row_id: int, status: int, code: str | None) -> None:
    """Complete a row: the HTTP status answered (0 when the connection was dropped)."""
    with immediate(conn):
        conn.execute("UPDATE requests SET status = ?, code = ? WHERE id = ?", (status, code, row_id))


def read_requests(conn: sqlite3.Connection, action: str | None = None) -> list[dict[str, Any]]:
    """Rows in arrival order, optionally of one action; one still being handled has status None."""
    if action is None:
        rows = conn.execute("SELECT * FROM requests ORDER BY id")
    else:
        rows = conn.execute("SELECT * FROM requests WHERE action = ? ORDER BY id", (action,))
    return [
        {
            "action": row["action"],
            "body": _parsed(row["body"])[1] if row["body_is_json"] else row["body"],
            "status": row["status"],
            "code": row["code"],
        }
        for row in rows
    ]


def clear_requests(conn: sqlite3.Connection) -> None:
    with immediate(conn):
        conn.execute("DELETE FROM requests")
