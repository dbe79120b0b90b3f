"""Reading a TPMQuota as the Pulumi engine hands it to a policy pack, without the provider's code.

The pack must work on any stack that declares the resource, so it relies only on the wire contract:
the type token, the input names (`model`, `purchaseCount`, `releaseTime`, `releaseAfter`), numbers
as floats, secrets already unwrapped by pulumi-policy, and values not known until apply raising
pulumi-policy's `UnknownValueError` when read. The two `releaseTime` spellings are parsed here from
Qianfan's documentation, and the `releaseAfter` durations from the resource's documentation
(docs/resources/tpm_quota.md), not from `providers/`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum
from typing import Any

from pulumi_policy.proxy import UnknownValueError

TPM_QUOTA_TYPE = "pulumi-python:dynamic/qianfan:TPMQuota"
TPM_PER_UNIT = 10_000
BEIJING = timezone(timedelta(hours=8))

RELEASE_TIME_FORMS = (
    "RFC3339 with an offset (2030-01-25T12:30:30+08:00, 2030-01-25T04:30:30Z) "
    "or 'YYYY-MM-DD HH:MM:SS' read as Beijing time (UTC+08:00)"
)

RELEASE_AFTER_FORMS = "whole days, hours and minutes, largest unit first, such as 8h, 1h30m or 3d"

_DURATION = re.compile(r"(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?")
_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:([Zz])|([+-])(\d{2}):(\d{2}))$")
_BEIJING_LOCAL = re.compile(r"^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$")
_URN = re.compile(r"^urn:pulumi:([^:]+)::[^:]+::.+$")


class Absent(Enum):
    """Why a property has no value the policy can judge."""

    MISSING = "missing"
    UNKNOWN = "unknown until apply"


def read(props: Mapping[str, Any], key: str) -> Any:
    """The property's value, or Absent.MISSING / Absent.UNKNOWN (a preview value that a policy must not judge)."""
    try:
        value = props[key]
    except KeyError:
        return Absent.MISSING
    except UnknownValueError:
        return Absent.UNKNOWN
    return Absent.MISSING if value is None else value


def show(value: Any) -> str:
    """A value as the user wrote it in JSON/YAML terms, so messages quote `"2"` and `2` differently."""
    if isinstance(value, float) and value.is_integer() and math.isfinite(value):
        return str(int(value))
    return json.dumps(_plain(value), ensure_ascii=False, default=repr)


def _plain(value: Any) -> Any:
    """pulumi-policy's read-only proxies as plain lists and dicts; nested unknowns shown as such."""
    if isinstance(value, Mapping):
        return {str(k): _entry(value, k) for k in value}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_entry(value, i) for i in range(len(value))]
    if isinstance(value, float) and value.is_integer() and math.isfinite(value):
        return int(value)
    return value


def _entry(container: Any, key: Any) -> Any:
    try:
        return _plain(container[key])
    except UnknownValueError:
        return Absent.UNKNOWN.value


def parse_release_time(value: Any) -> datetime:
    """Either Qianfan spelling as an aware datetime; ValueError names what is allowed."""
    if not isinstance(value, str):
        raise ValueError(f"is not a string; use {RELEASE_TIME_FORMS}")
    text = value.strip()
    zone: timezone
    match = _RFC3339.match(text)
    if match:
        if match.group(7):
            zone = UTC
        else:
            hours, minutes = int(match.group(9)), int(match.group(10))
            if hours > 23 or minutes > 59:
                raise ValueError(f"has an impossible UTC offset; use {RELEASE_TIME_FORMS}")
            sign = 1 if match.group(8) == "+" else -1
            zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
    else:
        match = _BEIJING_LOCAL.match(text)
        if not match:
            raise ValueError(f"is not a time Qianfan accepts; use {RELEASE_TIME_FORMS}")
        zone = BEIJING
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=zone)
    except ValueError as exc:
        raise ValueError(f"is not a valid date and time ({exc})") from None


def release_after_hours(value: Any) -> float:
    """A `releaseAfter` (a duration after the purchase) in hours; ValueError names what is allowed.

    Only the spelling is judged: the provider's own bounds (1h to 3650d) are its `check`'s business.
    """
    if not isinstance(value, str):
        raise ValueError(f"is not a string; use {RELEASE_AFTER_FORMS}")
    text = value.strip()
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        raise ValueError(f"is not a duration; use {RELEASE_AFTER_FORMS} (seconds are not accepted)")
    # float() of a digit string of any length is finite or inf, never an error.
    days, hours, minutes = (float(g) if g else 0.0 for g in match.groups())
    return days * 24 + hours + minutes / 60


def units(value: Any) -> int:
    """`purchaseCount` as whole units; ValueError for anything Qianfan could not sell (bool, text, NaN, 1.5, 0)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("is not a number")
    if not math.isfinite(value) or not float(value).is_integer() or value < 1:
        raise ValueError("is not a whole number of units >= 1")
    return int(value)


def stack_of(urn: str) -> str:
    """The stack name in a resource URN (`urn:pulumi:<stack>::<project>::<type>::<name>`)."""
    match = _URN.match(urn)
    if not match:
        raise ValueError(f"cannot tell the stack from the resource URN {urn!r}")
    return match.group(1)
