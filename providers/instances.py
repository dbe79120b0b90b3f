"""What DescribeTPMResource says about instances: finder, status and waiter functions.

Describe's answer is sparse and only partly documented, so parsing tolerates every shape seen or
plausible: `{"instances": [...]}`, a bare list, or a single object; items with or without `model`,
a unit count, or `releaseTime`; an unknown id answered with an empty list, a `Stopped` item, or a
not-found error. Fields the server does not report are `None` ("unknown"), never guessed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .client import QianfanClient
from .deadline import Deadline, backoff
from .errors import Kind, QianfanError
from .release_time import normalise_if_possible

TPM_PER_UNIT = 10_000
RPM_PER_UNIT = 33

#: Statuses meaning the quota no longer exists; Baidu documents `Stopped` (expired).
GONE_STATUSES = frozenset({"stopped", "expired", "released", "releasing", "deleted", "terminated", "stopping"})
_MAX_PAGES = 100


@dataclass(frozen=True)
class Instance:
    instance_id: str
    status: str
    model: str | None = None
    units: int | None = None
    release_time: str | None = None
    #: False when the server's answer has no release-time field at all (not the same as "none set").
    release_time_known: bool = False
    start_time: str | None = None

    @property
    def gone(self) -> bool:
        return self.status.lower() in GONE_STATUSES

    @property
    def creating(self) -> bool:
        return self.status.lower() == "creating"


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if number.is_integer() else None


def _release(item: dict[str, Any]) -> tuple[str | None, bool]:
    for key in ("releaseTime", "autoReleaseTime"):
        if key in item:
            raw = item[key]
            if raw in (None, ""):
                return None, True
            return normalise_if_possible(str(raw)), True
    return None, False


def parse_instance(item: dict[str, Any]) -> Instance | None:
    instance_id = item.get("instanceId") or item.get("instanceID") or item.get("id")
    if not instance_id:
        return None
    units = _int(item.get("count"))
    if units is None:
        units = _int(item.get("purchaseCount"))
    if units is None:
        tpm = _int(item.get("tpm"))
        if tpm is not None and tpm % TPM_PER_UNIT == 0:
            units = tpm // TPM_PER_UNIT
    release_time, known = _release(item)
    return Instance(
        instance_id=str(instance_id),
        status=str(item.get("status") or "Unknown"),
        model=item.get("model") or None,
        units=units,
        release_time=release_time,
        release_time_known=known,
        start_time=item.get("startTime") or None,
    )


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
    parsed = (parse_instance(item) for item in _items(result))
    return [i for i in parsed if i is not None]


def _next_marker(result: Any) -> str | None:
    if isinstance(result, dict) and result.get("isTruncated") and result.get("nextMarker"):
        return str(result["nextMarker"])
    return None


# -- finders -----------------------------------------------------------------------------------
def list_instances(client: QianfanClient, model: str, deadline: Deadline) -> list[Instance]:
    """Every instance Qianfan lists for the model, following marker pages if it ever paginates."""
    found: list[Instance] = []
    marker: str | None = None
    for _ in range(_MAX_PAGES):
        extra = {"marker": marker} if marker else {}
        result = client.describe(model, deadline, **extra)
        found.extend(parse_instances(result))
        marker = _next_marker(result)
        if not marker:
            break
    return found


def find_instance(client: QianfanClient, model: str, instance_id: str, deadline: Deadline) -> Instance | None:
    """The instance as Qianfan reports it, or None when Qianfan does not know the id."""
    try:
        result = client.describe(model, deadline, instance_id=instance_id)
    except QianfanError as err:
        if err.kind is Kind.NOT_FOUND:
            return None
        raise
    for instance in parse_instances(result):
        if instance.instance_id == instance_id:
            return instance
    return None


def find_live_instance(client: QianfanClient, model: str, instance_id: str, deadline: Deadline) -> Instance | None:
    """Like `find_instance`, but an expired or released instance counts as absent."""
    instance = find_instance(client, model, instance_id, deadline)
    return None if instance is None or instance.gone else instance


# -- waiter ------------------------------------------------------------------------------------
def wait_for(
    fetch: Callable[[], Instance | None],
    done: Callable[[Instance | None], bool],
    deadline: Deadline,
) -> Instance | None:
    """Poll `fetch` until `done` holds or the deadline passes; return the last answer either way.

    New instances may show up late and resizes may be asynchronous: Qianfan does not say.
    """
    attempt = 0
    while True:
        instance = fetch()
        if done(instance):
            return instance
        if not deadline.sleep(backoff(attempt, initial=0.5, cap=5.0), reserve=0.0):
            return instance
        attempt += 1


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
