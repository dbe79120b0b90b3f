"""The two spellings of `releaseTime` Qianfan accepts, and the one this project stores.

Qianfan takes RFC3339 (`2030-01-25T12:30:30+08:00`) or `2030-01-25 12:30:30`; the zone of the
second form is not stated, and Baidu's console runs on Beijing time, so it is read as UTC+08:00.
Everything is normalised to RFC3339 in Beijing time so that two spellings of one instant compare
equal in `diff` and never cause a spurious update.
"""

from __future__ import annotations

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
