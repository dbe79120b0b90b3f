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

from .errors import echo
from .models import MAX_MODEL_ID_LENGTH
from .store import immediate


@dataclass(frozen=True)
class Options:
    """The options in force for one request; each default is Baidu's documented behaviour or, where
    Baidu documents none, the sandbox's choice (docs/sandbox.md)."""

    #: How long a new instance reports `Creating` before `Running`.
    creating_seconds: float = 1.0
    #: Delay added to every authenticated request before it is handled.
    latency_ms: float = 0.0
    #: Added to "now" for expiry, status and releaseTime checks (not for signatures).
    clock_offset_seconds: float = 0.0
    #: "documented": Describe items carry exactly Baidu's seven fields; "rich": also model, count, releaseTime.
    describe_shape: str = "documented"
    #: "tpm": ids like `tpm-Vlxxxx3F`; "hex": 24 hex digits like `a0085162fxxxx0a49d19e58e`.
    id_style: str = "tpm"
    #: How long after a Resize its new size shows in Describe (Baidu: Resize creates an order).
    resize_delay_seconds: float = 0.0
    #: "stopped": a released instance is listed as Stopped; "hidden": it is not listed.
    released_visibility: str = "stopped"
    #: How long a stopped instance (released or expired) stays listed, then is listed no more
    #: (Baidu documents no such limit: the default, a century, lists it for ever).
    stopped_listed_seconds: float = 100 * 366 * 86400.0
    #: "empty": Describe of an unknown instanceId lists nothing; "error": 404 ResourceNotFound.
    unknown_instance: str = "empty"
    #: "error": releasing a stopped instance is 400 InvalidInstanceStatus; "ok": answers true.
    release_again: str = "error"
    #: Most items in one Describe answer, with marker pages beyond (0: everything in one answer).
    page_size: int = 0
    #: How long after its purchase a new instance first shows in Describe (it exists at once).
    visible_after_seconds: float = 0.0
    #: Model ids refused as unknown, as Baidu's newer pages drop the ernie-4.0/3.5 ids.
    retired_models: tuple[str, ...] = ()


_CHOICES: dict[str, tuple[str, ...]] = {
    "describe_shape": ("documented", "rich"),
    "id_style": ("tpm", "hex"),
    "released_visibility": ("stopped", "hidden"),
    "unknown_instance": ("empty", "error"),
    "release_again": ("error", "ok"),
}
_CENTURY = 100 * 366 * 86400.0
#: Inclusive bounds of the numeric options, so no sum or date built from them can overflow.
_RANGES: dict[str, tuple[float, float]] = {
    "creating_seconds": (0.0, _CENTURY),
    "latency_ms": (0.0, 600_000.0),
    "clock_offset_seconds": (-_CENTURY, _CENTURY),
    "resize_delay_seconds": (0.0, _CENTURY),
    "visible_after_seconds": (0.0, _CENTURY),
    "stopped_listed_seconds": (0.0, _CENTURY),
}
#: Inclusive bounds of the whole-number options (BCE list APIs cap `maxKeys` at 1000).
_WHOLE_RANGES: dict[str, tuple[int, int]] = {"page_size": (0, 1000)}
#: Options that hold model ids, given as one comma-separated string or a list of strings.
_MODEL_LISTS = frozenset({"retired_models"})
OPTION_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Options))


def validate_option(name: str, value: Any) -> Any:
    """Reject unknown names and impossible values here, so a typo in a test fails loudly."""
    if name not in OPTION_NAMES:
        raise ValueError(f"unknown sandbox option {name!r}; known: {', '.join(OPTION_NAMES)}")
    if name in _CHOICES:
        if value not in _CHOICES[name]:
            raise ValueError(f"option {name} must be one of {', '.join(_CHOICES[name])}, not {value!r}")
        return value
    if name in _WHOLE_RANGES:
        return _whole(name, value, *_WHOLE_RANGES[name])
    if name in _MODEL_LISTS:
        return _model_list(name, value)
    low, high = _RANGES[name]
    number = _finite(value)
    if number is None:
        raise ValueError(f"option {name} must be a finite number, not {value!r}")
    if not low <= number <= high:
        raise ValueError(f"option {name} must be from {low:g} to {high:g}, not {value!r}")
    return number


def _whole(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"option {name} must be a whole number, not {echo(value)}")
    if not low <= value <= high:
        raise ValueError(f"option {name} must be from {low} to {high}, not {echo(value)}")
    return value


def _model_list(name: str, value: Any) -> tuple[str, ...]:
    """`"a, b"` or `["a", "b"]` as `("a", "b")`: each id printable, without commas, at most 128 characters."""
    if isinstance(value, str):
        parts = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, (list, tuple)) and all(isinstance(part, str) for part in value):
        parts = [part.strip() for part in value]
    else:
        raise ValueError(f"option {name} must be a comma-separated string or a list of model ids, not {value!r}")
    for part in parts:
        if not part or "," in part or len(part) > MAX_MODEL_ID_LENGTH or not part.isprintable():
            raise ValueError(
                f"option {name}: {part[:40]!r} is not a model id (printable, no comma, "
                f"1 to {MAX_MODEL_ID_LENGTH} characters)"
            )
    return tuple(dict.fromkeys(parts))


def _finite(value: Any) -> float | None:
    """`value` as a finite float, or None for anything else (bool, text, NaN, an int too big for a float)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


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
