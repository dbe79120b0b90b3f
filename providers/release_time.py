"""The two spellings of `releaseTime` Qianfan accepts, and the one this project stores; the
`releaseAfter` durations, and the instant one of them gives.

Qianfan takes RFC3339 (`2030-01-25T12:30:30+08:00`) or `2030-01-25 12:30:30`; the zone of the
second form is not stated, and Baidu's console runs on Beijing time, so it is read as UTC+08:00.
Everything is normalised to RFC3339 in Beijing time so that two spellings of one instant compare
equal in `diff` and never cause a spurious update.

A `releaseAfter` is this project's own: a duration after the purchase, in whole minutes, hours and
days (Qianfan bills by the hour, so seconds are refused), stored in one spelling (`90m` is `1h30m`).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, timezone

from .messages import show

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")

ALLOWED_FORMS = (
    "RFC3339 with an explicit offset (2030-01-25T12:30:30+08:00 or 2030-01-25T04:30:30Z) "
    "or 'YYYY-MM-DD HH:MM:SS' read as Beijing time (UTC+08:00)"
)
#: What a release time may be. Python cannot show moments near year 1 or 9999 in every zone, and
#: Qianfan documents no range; these bounds leave every instant between them representable.
EARLIEST = datetime(2000, 1, 1, tzinfo=BEIJING)
LATEST = datetime(9998, 12, 31, 23, 59, 59, tzinfo=BEIJING)

# ASCII digits only: `\d` would also take other scripts' digits, which int() then accepts.
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.(0+))?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
_BEIJING_LOCAL = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})")


def parse_release_time(text: object) -> datetime:
    """Parse either accepted spelling into an aware datetime; ValueError says what is allowed."""
    if not isinstance(text, str):
        raise ValueError(f"must be a string in {ALLOWED_FORMS}, got {show(text)}")
    value = text.strip()
    match = _RFC3339.fullmatch(value)
    if match:
        year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
        offset = match.group(8)
        if offset in ("Z", "z"):
            zone = UTC
        else:
            sign = 1 if offset[0] == "+" else -1
            hours, minutes = int(offset[1:3]), int(offset[4:6])
            if hours > 23 or minutes > 59:
                raise ValueError(f"{show(text)} has an impossible UTC offset; use {ALLOWED_FORMS}")
            zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
    else:
        match = _BEIJING_LOCAL.fullmatch(value)
        if not match:
            raise ValueError(f"{show(text)} is not a time Qianfan accepts; use {ALLOWED_FORMS}")
        year, month, day, hour, minute, second = (int(g) for g in match.groups())
        zone = BEIJING
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=zone)
        in_range = EARLIEST <= moment <= LATEST
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"{show(text)} is not a valid date and time ({exc})") from None
    if not in_range:
        raise ValueError(
            f"{show(text)} is outside the range this provider accepts, {format_release_time(EARLIEST)} to "
            f"{format_release_time(LATEST)}"
        )
    return moment


def format_release_time(moment: datetime) -> str:
    """RFC3339 in Beijing time, whole seconds: the one stored spelling."""
    return moment.astimezone(BEIJING).replace(microsecond=0).isoformat()


def normalise_release_time(text: object) -> str:
    """Map any accepted spelling to the stored one."""
    return format_release_time(parse_release_time(text))


def normalise_if_possible(text: str) -> str:
    """The stored spelling when `text` is one Qianfan accepts, else `text` unchanged.

    For values that come from state or from Qianfan's answers, which must be compared but never
    refused here.
    """
    try:
        return normalise_release_time(text)
    except ValueError:
        return text


DURATION_FORMS = "whole days, hours and minutes, largest unit first, such as 8h, 1h30m, 90m or 2d"
#: No shorter release: Qianfan bills a started hour in full, and one create never takes longer
#: than `qianfan:timeoutSeconds` (at most an hour), so the release cannot pass while the create
#: that sent it still waits for the instance or recovers a lost answer (a test holds the two).
MIN_RELEASE_AFTER = timedelta(hours=1)
#: About ten years: a quota meant to live longer should have no release at all. Now plus this
#: stays far inside `LATEST`.
MAX_RELEASE_AFTER = timedelta(days=3650)
_DURATION = re.compile(r"(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?")
#: A number with more digits than this is far above the maximum: not converted (Python refuses
#: to convert more than 4300 digits, and timedelta overflows long before).
_MAX_DIGITS = 12
_SECONDS = re.compile(r"[0-9dhm]*[0-9]+s")


def parse_duration(text: object) -> timedelta:
    """A `releaseAfter` as a timedelta within the bounds; ValueError says what is allowed."""
    if not isinstance(text, str):
        raise ValueError(f"must be a duration as text, {DURATION_FORMS}, got {show(text)}")
    value = text.strip()
    match = _DURATION.fullmatch(value)
    if not value or match is None:
        if _SECONDS.fullmatch(value):
            raise ValueError(
                f"{show(text)} counts seconds; Qianfan bills by the hour, so the smallest unit is m (minutes): "
                f"use {DURATION_FORMS}"
            )
        raise ValueError(f"{show(text)} is not a duration; use {DURATION_FORMS}")
    days, hours, minutes = (_number(g) for g in match.groups())
    longest = MAX_RELEASE_AFTER // timedelta(minutes=1)
    duration = timedelta(minutes=min((days * 24 + hours) * 60 + minutes, longest + 1))
    if duration < MIN_RELEASE_AFTER:
        raise ValueError(
            f"{show(text)} is shorter than {format_duration(MIN_RELEASE_AFTER)}, the least this provider accepts "
            "(Qianfan bills a started hour in full)"
        )
    if duration > MAX_RELEASE_AFTER:
        raise ValueError(
            f"{show(text)} is longer than {format_duration(MAX_RELEASE_AFTER)}, the most this provider accepts; "
            "for a quota that lives on, leave releaseAfter out"
        )
    return duration


def _number(digits: str | None) -> int:
    significant = (digits or "").lstrip("0")
    return int(significant or "0") if len(significant) <= _MAX_DIGITS else 10**_MAX_DIGITS


def format_duration(duration: timedelta) -> str:
    """The one stored spelling: days, hours, minutes, largest first, zero parts left out."""
    minutes = int(duration.total_seconds()) // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    return "".join(parts) or "0m"


def normalise_duration(text: object) -> str:
    """Map any accepted spelling of a `releaseAfter` to the stored one."""
    return format_duration(parse_duration(text))


def release_after(wall: float, seconds: float) -> str:
    """The release `seconds` after the moment `wall` (epoch seconds), in the stored spelling.

    Rounded up to the whole second: the quota is held at least as long as asked.
    """
    return format_release_time(datetime.fromtimestamp(math.ceil(wall + seconds), UTC))
