"""What DescribeTPMResource says about instances: parse, find, wait.

Baidu documents a Describe item as exactly `{instanceId, paymentTiming, rpm, tpm, status,
startTime, expiredTime}`: units come from `tpm / 10,000` and a scheduled release from
`expiredTime` (`"-"` when none is scheduled). Parsing also tolerates richer or other plausible
shapes — `{"instances": [...]}`, a bare list or one object; items with `model`, a unit count or
`releaseTime` — and an unknown id answered with an empty list, a `Stopped` item or a not-found
error. Fields the server does not report are `None` ("unknown"), never guessed.

One empty answer is not proof that an instance is gone (a transient glitch, a lagging replica):
`find_instance` looks a second time, model-wide, before it reports an absence, because an
instance wrongly dropped from state goes on billing with no owner.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from .client import DESCRIBE, QianfanClient
from .deadline import Deadline, backoff
from .errors import Kind, QianfanError
from .fields import RPM_PER_UNIT, TPM_PER_UNIT
from .release_time import normalise_release_time

#: Statuses meaning the quota no longer exists; Baidu documents `Stopped` (expired).
GONE_STATUSES = frozenset({"stopped", "expired", "released", "releasing", "deleted", "terminated", "stopping"})
#: Release-time fields, in order of preference; `expiredTime` is the documented one.
RELEASE_FIELDS = ("releaseTime", "autoReleaseTime", "expiredTime")
#: How an item says "no release is scheduled".
NOTHING_SCHEDULED = (None, "", "-")
#: The pause before a second look confirms that an instance is absent.
ABSENCE_RECHECK_SECONDS = 0.5
_MAX_PAGES = 100


@dataclass(frozen=True)
class Instance:
    instance_id: str
    status: str
    model: str | None = None
    units: int | None = None
    release_time: str | None = None
    #: False when the answer says nothing usable about the release (not the same as "none set").
    release_time_known: bool = False

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
def list_instances(client: QianfanClient, model: str, deadline: Deadline, *, retry: bool = True) -> list[Instance]:
    """Every instance Qianfan lists for the model, following marker pages if it ever paginates."""
    found: list[Instance] = []
    marker: str | None = None
    for _ in range(_MAX_PAGES):
        extra = {"marker": marker} if marker else {}
        result = client.describe(model, deadline, retry=retry, **extra)
        found.extend(parse_instances(result))
        marker = _next_marker(result)
        if not marker:
            return found
    # A partial listing would make a live instance look absent, or a bought one look missing.
    raise QianfanError(
        DESCRIBE,
        Kind.BAD_ANSWER,
        message=f"the listing of {model} had more than {_MAX_PAGES} pages; it was not read whole",
    )


class Lister(Protocol):
    """Where finders get a model's instances from: `listings.Listings` in the host."""

    def get(self, model: str, deadline: Deadline, *, fresh: bool = False) -> list[Instance]: ...


def look(lister: Lister, model: str, instance_id: str, deadline: Deadline, *, fresh: bool = False) -> Instance | None:
    """One look: the instance in a listing of its model, or None when this listing lacks it."""
    return next((i for i in lister.get(model, deadline, fresh=fresh) if i.instance_id == instance_id), None)


def find_instance(
    lister: Lister, model: str, instance_id: str, deadline: Deadline, *, fresh: bool = False
) -> Instance | None:
    """The instance as Qianfan reports it, or None after two consistent absences.

    The second look is a listing requested after a short pause, so neither a glitch of one answer
    nor a lagging replica can make a live, billing instance look gone.
    """
    instance = look(lister, model, instance_id, deadline, fresh=fresh)
    if instance is not None:
        return instance
    deadline.sleep(ABSENCE_RECHECK_SECONDS, reserve=0.0)
    return look(lister, model, instance_id, deadline, fresh=True)


def find_elsewhere(
    lister: Lister, instance_id: str, models: Iterable[str], deadline: Deadline
) -> tuple[str, Instance] | None:
    """The live instance with this id under another model, if any (state edited, or a wrong model).

    Describe needs a model, so this costs one listing per model: it runs only on the rare path where
    an instance is missing under the model the state names.
    """
    for model in models:
        instance = look(lister, model, instance_id, deadline)
        if instance is not None and not instance.gone:
            return model, instance
    return None


# -- waiter ------------------------------------------------------------------------------------
def wait_for(
    fetch: Callable[[], Instance | None],
    done: Callable[[Instance | None], bool],
    deadline: Deadline,
) -> Instance | None:
    """Poll `fetch` until `done` holds or the deadline passes; return the last answer either way.

    New instances may show up late and resizes are orders that complete later: Qianfan does not
    say how late.
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
