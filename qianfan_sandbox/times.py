"""The sandbox's own reading and writing of times, from Baidu's documentation alone.

Baidu's PurchaseTPMResource page (the seed, `billing.releaseTime`) accepts two spellings:
RFC3339 (`2030-01-25T12:30:30+08:00`) and the "standard format" `2030-01-25 12:30:30`. The page
does not say which zone the second one is in. The sandbox's choice: Beijing time (UTC+08:00),
the zone Baidu's console shows. RFC3339's optional parts are accepted as RFC3339 defines them:
lower-case `t`/`z`, fractional seconds.

Answers use two spellings. Describe's `startTime` is UTC with `Z` (`2024-02-26T10:00:00Z`), as in
the Describe item of Baidu's SDK mock server (bce-qianfan-sdk, python/qianfan/tests/utils/
mock_server.py); the control's rows use RFC3339 in Beijing time (`2031-01-01T00:00:00+08:00`).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta, timezone

from .errors import echo

#: The zone of the `YYYY-MM-DD HH:MM:SS` spelling (the sandbox's choice; Baidu does not say).
BEIJING = timezone(timedelta(hours=8))

#: The instants the sandbox stores lie between these, so every stored time can be written in every zone.
EARLIEST = datetime(1, 1, 2, tzinfo=UTC).timestamp()
LATEST = datetime(9999, 12, 30, tzinfo=UTC).timestamp()

ACCEPTED = (
    "RFC3339 with an offset (2030-01-25T12:30:30+08:00, 2030-01-25T04:30:30Z) "
    "or YYYY-MM-DD HH:MM:SS, read as Beijing time (UTC+08:00)"
)

# [0-9], not \d: \d also matches other scripts' digits, which int() would then accept.
_DATE_TIME = r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
_RFC3339 = re.compile(_DATE_TIME + r"[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})")
_STANDARD = re.compile(_DATE_TIME + r" ([0-9]{2}):([0-9]{2}):([0-9]{2})")


def parse_release_time(text: str) -> float:
    """Epoch seconds of a releaseTime in either documented spelling; ValueError says what is allowed."""
    rfc = _RFC3339.fullmatch(text)
    standard = None if rfc else _STANDARD.fullmatch(text)
    if rfc is None and standard is None:
        raise ValueError(f"{echo(text)} is not a time Qianfan accepts; use {ACCEPTED}")
    match = rfc or standard
    assert match is not None
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    zone = BEIJING
    fraction = 0.0
    if rfc is not None:
        fraction = float(rfc.group(7) or 0)
        zone = _offset(rfc.group(8), text)
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=zone).timestamp() + fraction
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"{echo(text)} is not a valid date and time ({exc})") from None
    if not EARLIEST <= moment <= LATEST:
        raise ValueError(f"{echo(text)} is outside the years 0001 to 9999")
    return moment


def _offset(text: str, whole: str) -> timezone:
    if text in ("Z", "z"):
        return UTC
    hours, minutes = int(text[1:3]), int(text[4:6])
    if hours > 23 or minutes > 59:
        raise ValueError(f"{echo(whole)} has an impossible UTC offset {text}; use {ACCEPTED}")
    sign = 1 if text[0] == "+" else -1
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def utc_text(moment: float) -> str:
    """`2024-02-26T10:00:00Z`: Describe's spelling of a time (whole seconds, UTC)."""
    return datetime.fromtimestamp(math.floor(moment), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def beijing_text(moment: float) -> str:
    """`2031-01-01T00:00:00+08:00`: the control rows' spelling of a time (whole seconds)."""
    return datetime.fromtimestamp(math.floor(moment), BEIJING).isoformat()
