"""What one DescribeTPMResource answer says about instances: parsing only.

Baidu documents a Describe item as exactly `{instanceId, paymentTiming, rpm, tpm, status,
startTime, expiredTime}`: units come from `tpm / 10,000`, a scheduled release from
`expiredTime` (`"-"` when none is scheduled), and `startTime` (UTC) says when Qianfan's clock
saw the instance bought. Parsing also tolerates richer or other plausible shapes —
`{"instances": [...]}`, a bare list or one object; items with `model`, a unit count or
`releaseTime`. Fields the server does not report are `None` ("unknown"), never guessed.

A page is parsed as it came, duplicates included: whether a listing of several pages can be
believed is decided where pages are put together (`listings.list_instances`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .fields import RPM_PER_UNIT, TPM_PER_UNIT
from .release_time import normalise_release_time, parse_release_time

#: Statuses meaning the quota no longer exists; Baidu documents `Stopped` (expired).
GONE_STATUSES = frozenset({"stopped", "expired", "released", "releasing", "deleted", "terminated", "stopping"})
#: Release-time fields, in order of preference; `expiredTime` is the documented one.
RELEASE_FIELDS = ("releaseTime", "autoReleaseTime", "expiredTime")
#: How an item says "no release is scheduled".
NOTHING_SCHEDULED = (None, "", "-")


@dataclass(frozen=True)
class Instance:
    instance_id: str
    status: str
    model: str | None = None
    units: int | None = None
    release_time: str | None = None
    #: False when the answer says nothing usable about the release (not the same as "none set").
    release_time_known: bool = False
    #: `startTime`, seconds since the epoch on Qianfan's clock (whole seconds); None if unreadable.
    start_time: float | None = None

    @property
    def gone(self) -> bool:
        return self.status.lower() in GONE_STATUSES


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return int(number) if number.is_integer() else None


def _units(value: Any) -> int | None:
    """A unit count a quota can have (>= 1), or unknown."""
    units = _int(value)
    return units if units is not None and units >= 1 else None


def _release(item: dict[str, Any]) -> tuple[str | None, bool]:
    for key in RELEASE_FIELDS:
        if key in item:
            raw = item[key]
            if raw in NOTHING_SCHEDULED:
                return None, True
            try:
                return normalise_release_time(str(raw)), True
            except ValueError:
                return None, False  # a value nobody can read tells nothing about the release
    return None, False


def parse_instance(item: dict[str, Any]) -> Instance | None:
    instance_id = item.get("instanceId") or item.get("instanceID") or item.get("id")
    if not instance_id or isinstance(instance_id, bool) or not isinstance(instance_id, str | int):
        return None
    units = _units(item.get("count"))
    if units is None:
        units = _units(item.get("purchaseCount"))
    if units is None:
        tpm = _int(item.get("tpm"))
        if tpm is not None and tpm > 0 and tpm % TPM_PER_UNIT == 0:
            units = tpm // TPM_PER_UNIT
    release_time, known = _release(item)
    model = item.get("model")
    return Instance(
        instance_id=str(instance_id),
        status=str(item.get("status") or "Unknown"),
        model=model if isinstance(model, str) and model else None,
        units=units,
        release_time=release_time,
        release_time_known=known,
        start_time=_moment(item.get("startTime")),
    )


def _moment(value: Any) -> float | None:
    """`startTime` as epoch seconds; Baidu documents UTC with `Z`, other spellings are tolerated."""
    if not isinstance(value, str):
        return None
    try:
        return parse_release_time(value).timestamp()
    except ValueError:
        return None


def _items(result: Any) -> list[dict[str, Any]]:
    if isinstance(result, list):
        return [i for i in result if isinstance(i, dict)]
    if isinstance(result, dict):
        for key in ("instances", "instanceList", "items", "result"):
            if isinstance(result.get(key), list):
                return [i for i in result[key] if isinstance(i, dict)]
        if "instanceId" in result:
            return [result]
    return []


def parse_instances(result: Any) -> list[Instance]:
    """Every readable item of one answer, in order, an id listed twice kept twice."""
    parsed = (parse_instance(item) for item in _items(result))
    return [i for i in parsed if i is not None]


def next_marker(result: Any) -> str | None:
    """The marker of the next page, if the answer says it was cut (BCE's list style)."""
    if isinstance(result, dict) and result.get("isTruncated") and result.get("nextMarker"):
        return str(result["nextMarker"])
    return None


def reported_total(result: Any) -> int | None:
    """How many instances a page says the whole listing holds, if it says so."""
    if not isinstance(result, dict):
        return None
    for key in ("totalCount", "total"):
        value = result.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


def outputs_of(instance: Instance, fallback_units: int) -> dict[str, Any]:
    """The computed outputs; the unit count falls back to what we asked for when not reported."""
    units = instance.units if instance.units is not None else fallback_units
    return {
        "instanceId": instance.instance_id,
        "status": instance.status,
        "tpm": units * TPM_PER_UNIT,
        "rpm": units * RPM_PER_UNIT,
    }


def describe_ids(instances: Iterable[Instance]) -> str:
    return ", ".join(sorted(i.instance_id for i in instances)) or "none"
