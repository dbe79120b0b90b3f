"""Behaviour knobs that tests turn while a sandbox runs, stored in the database.

They live in SQLite rather than in memory because the sandbox often runs inside another
process (the provider host embeds it); the server re-reads them on every request.
"""

from __future__ import annotations

import json
import math
import sqlite3
from dataclasses import dataclass, fields
from typing import Any

from .store import immediate


@dataclass(frozen=True)
class Options:
    """The options in force for one request; defaults mimic what Baidu is believed to do."""

    #: How long a new instance reports `Creating` before `Running`.
    creating_seconds: float = 1.0
    #: Delay added to every request before it is handled.
    latency_ms: float = 0.0
    #: Added to "now" for expiry, status and releaseTime checks (not for signatures).
    clock_offset_seconds: float = 0.0
    #: "full" items carry model/count/releaseTime; "sparse" items only the documented fields.
    describe_mode: str = "full"
    #: "stopped": a released instance is listed as Stopped; "hidden": it is not listed.
    released_visibility: str = "stopped"
    #: "empty": Describe of an unknown instanceId lists nothing; "error": 404 ResourceNotFound.
    unknown_instance: str = "empty"
    #: "error": releasing a stopped instance is 400 InvalidInstanceStatus; "ok": answers true.
    release_again: str = "error"


_CHOICES: dict[str, tuple[str, ...]] = {
    "describe_mode": ("full", "sparse"),
    "released_visibility": ("stopped", "hidden"),
    "unknown_instance": ("empty", "error"),
    "release_again": ("error", "ok"),
}
_NON_NEGATIVE = ("creating_seconds", "latency_ms")
OPTION_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Options))


def validate_option(name: str, value: Any) -> Any:
    """Reject unknown names and impossible values here, so a typo in a test fails loudly."""
    if name not in OPTION_NAMES:
        raise ValueError(f"unknown sandbox option {name!r}; known: {', '.join(OPTION_NAMES)}")
    if name in _CHOICES:
        if value not in _CHOICES[name]:
            raise ValueError(f"option {name} must be one of {_CHOICES[name]}, not {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"option {name} must be a finite number, not {value!r}")
    if name in _NON_NEGATIVE and value < 0:
        raise ValueError(f"option {name} must not be negative, not {value!r}")
    return float(value)


def write_option(conn: sqlite3.Connection, name: str, value: Any) -> None:
    """Store one validated option."""
    checked = validate_option(name, value)
    with immediate(conn):
        conn.execute(
            "INSERT INTO options (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (name, json.dumps(checked)),
        )


def load_options(conn: sqlite3.Connection) -> Options:
    """Read every option at once; stored values that are no longer valid fall back to defaults."""
    values: dict[str, Any] = {}
    for row in conn.execute("SELECT name, value FROM options"):
        try:
            values[row["name"]] = validate_option(row["name"], json.loads(row["value"]))
        except ValueError:
            continue
    return Options(**values)
