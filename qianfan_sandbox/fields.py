"""Reading fields out of a request body with Baidu's split between error codes.

A field that is missing or of the wrong JSON type is `InappropriateJSON`; a field of the
right type with a value Qianfan refuses is `InvalidParameter` naming the field. Providers
branch on that difference, so it is kept in one place.
"""

from __future__ import annotations

from typing import Any

from providers.release_time import parse_release_time

from .errors import inappropriate_json, invalid_parameter

#: Upper bound on units per instance, so absurd counts fail cleanly instead of overflowing SQLite.
MAX_COUNT = 1_000_000

_MISSING = object()


def require_object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise inappropriate_json(field, "a JSON object")
    return value


def required_object(body: dict[str, Any], name: str, field: str | None = None) -> dict[str, Any]:
    return require_object(body.get(name, _MISSING), field or name)


def required_str(body: dict[str, Any], name: str, field: str | None = None) -> str:
    value = body.get(name, _MISSING)
    if not isinstance(value, str):
        raise inappropriate_json(field or name, "a string")
    return value


def optional_str(body: dict[str, Any], name: str, field: str | None = None) -> str | None:
    """Absent and null both mean "not given"; any other non-string is a type error."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise inappropriate_json(field or name, "a string when given")
    return value


def required_count(body: dict[str, Any], name: str) -> int:
    """A whole number of units >= 1; JSON `true`, `1.5`, `2.0` and `"2"` are type errors."""
    value = body.get(name, _MISSING)
    if isinstance(value, bool) or not isinstance(value, int):
        raise inappropriate_json(name, "an integer")
    if value < 1:
        raise invalid_parameter(name, f"must be at least 1, got {value}")
    if value > MAX_COUNT:
        raise invalid_parameter(name, f"must be at most {MAX_COUNT}, got {value}")
    return value


def future_release_time(text: str, field: str, now: float) -> float:
    """Parse either releaseTime spelling and insist on a moment after `now` (epoch seconds)."""
    try:
        moment = parse_release_time(text).timestamp()
    except ValueError as exc:
        raise invalid_parameter(field, str(exc)) from None
    if moment <= now:
        raise invalid_parameter(field, f"{text!r} is not in the future")
    return moment
