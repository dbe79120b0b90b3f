"""TPM quota instances as rows, and how their state reads at a given moment.

Status and size are never stored as "now": they are derived from timestamps each time they are
read (Creating until `ready_at`; Stopped once released, expired or past `release_at`; the
ordered size once `resize_at` has passed). That needs no background thread, survives restarts,
and makes the sandbox clock offset fast-forward everything at once.
"""

from __future__ import annotations

import secrets
import sqlite3
import string
from dataclasses import dataclass
from typing import Any

from .bodies import PAYMENT_TIMING
from .times import beijing_text, utc_text

#: Quota granted per unit (the seed: 1 unit = 10,000 TPM and 33 RPM; the SDK mock's item agrees).
TPM_PER_UNIT = 10_000
RPM_PER_UNIT = 33

#: Describe's `expiredTime` when no release is scheduled, as in Baidu's SDK mock server.
NOTHING_SCHEDULED = "-"

_ID_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True)
class Instance:
    """One row of the `instances` table; times are epoch seconds on the sandbox clock."""

    instance_id: str
    model: str
    count: int
    payment_timing: str
    created_at: float
    ready_at: float
    release_at: float | None
    released_at: float | None
    expired_at: float | None
    #: A resize order: the size Describe shows from `resize_at` on.
    resize_count: int | None
    resize_at: float | None

    @property
    def released(self) -> bool:
        """Ended by ReleaseTPMResource (as opposed to expiring)."""
        return self.released_at is not None

    def stopped_at(self, now: float) -> float | None:
        """When the instance stopped (released, expired, or its release time passed), if it has."""
        ends = [t for t in (self.released_at, self.expired_at, self.release_at) if t is not None and t <= now]
        return min(ends) if ends else None

    def listed(self, now: float, visible_after: float, stopped_listed: float) -> bool:
        """Whether Describe shows it: from its purchase, or `visible_after` seconds after it, until
        `stopped_listed` seconds after it stopped."""
        stopped = self.stopped_at(now)
        if stopped is not None and now > stopped + stopped_listed:
            return False
        return visible_after <= 0 or now >= self.created_at + visible_after

    def status(self, now: float) -> str:
        """Creating, Running or Stopped, as Qianfan would report it at `now`."""
        if self.stopped_at(now) is not None:
            return "Stopped"
        return "Creating" if self.ready_at > now else "Running"

    def units(self, now: float) -> int:
        """The size Qianfan shows at `now`: a resize order counts once its time has come."""
        if self.resize_count is not None and self.resize_at is not None and self.resize_at <= now:
            return self.resize_count
        return self.count

    def expired_time(self, now: float) -> str:
        """Describe's `expiredTime`: when the instance stops or stopped, in UTC, else `-`.

        Baidu documents `-` for "nothing scheduled" (SDK mock) but no spelling for a scheduled
        release; the sandbox's choice is `startTime`'s spelling, UTC with `Z`.
        """
        end = self.stopped_at(now)
        if end is None:
            end = self.release_at
        return NOTHING_SCHEDULED if end is None else utc_text(end)

    def describe_item(self, now: float, shape: str) -> dict[str, Any]:
        """One DescribeTPMResource item: Baidu's seven fields, or with `rich` also model, count, releaseTime."""
        units = self.units(now)
        item: dict[str, Any] = {
            "instanceId": self.instance_id,
            "paymentTiming": self.payment_timing,
            "rpm": units * RPM_PER_UNIT,
            "tpm": units * TPM_PER_UNIT,
            "status": self.status(now),
            "startTime": utc_text(self.created_at),
            "expiredTime": self.expired_time(now),
        }
        if shape == "rich":
            item["model"] = self.model
            item["count"] = units
            item["releaseTime"] = None if self.release_at is None else beijing_text(self.release_at)
        return item

    def control_item(self, now: float) -> dict[str, Any]:
        """What SandboxControl.instances() reports about the instance at `now`."""
        return {
            "instanceId": self.instance_id,
            "model": self.model,
            "count": self.units(now),
            "paymentTiming": self.payment_timing,
            "status": self.status(now),
            "releaseTime": None if self.release_at is None else beijing_text(self.release_at),
            "startTime": beijing_text(self.created_at),
            "released": self.released,
        }


def new_instance_id(style: str) -> str:
    """`tpm-` + 8 letters/digits (the seed's `tpm-Vlxxxx3F`), or 24 hex digits for `hex`.

    The hex length is that of the id on Baidu's DescribeTPMResource page (`a0085162fxxxx0a49d19e58e`);
    the SDK mock's ids are shorter because their `x`s stand for an unknown number of characters.
    """
    if style == "hex":
        return secrets.token_hex(12)
    return "tpm-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))


def _from_row(row: sqlite3.Row) -> Instance:
    return Instance(
        instance_id=row["instance_id"],
        model=row["model"],
        count=row["count"],
        payment_timing=row["payment_timing"],
        created_at=row["created_at"],
        ready_at=row["ready_at"],
        release_at=row["release_at"],
        released_at=row["released_at"],
        expired_at=row["expired_at"],
        resize_count=row["resize_count"],
        resize_at=row["resize_at"],
    )


def get_instance(conn: sqlite3.Connection, instance_id: str) -> Instance | None:
    """The instance with this id, whatever its model or state."""
    row = conn.execute("SELECT * FROM instances WHERE instance_id = ?", (instance_id,)).fetchone()
    return None if row is None else _from_row(row)


def list_instances(conn: sqlite3.Connection, model: str | None = None) -> list[Instance]:
    """Instances in creation order, optionally of one model."""
    if model is None:
        rows = conn.execute("SELECT * FROM instances ORDER BY seq")
    else:
        rows = conn.execute("SELECT * FROM instances WHERE model = ? ORDER BY seq", (model,))
    return [_from_row(row) for row in rows]


def insert_instance(
    conn: sqlite3.Connection,
    model: str,
    count: int,
    now: float,
    creating_seconds: float,
    release_at: float | None,
    id_style: str,
) -> str:
    """Create a new instance and return its id; the caller holds the write transaction."""
    return insert_row(conn, model, count, now, now + creating_seconds, release_at, None, id_style)


def insert_row(
    conn: sqlite3.Connection,
    model: str,
    count: int,
    created_at: float,
    ready_at: float,
    release_at: float | None,
    expired_at: float | None,
    id_style: str,
) -> str:
    """An instance with every time given (the control backdates console purchases); returns its id."""
    while True:
        instance_id = new_instance_id(id_style)
        try:
            conn.execute(
                "INSERT INTO instances (instance_id, model, count, payment_timing, created_at, "
                "ready_at, release_at, expired_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (instance_id, model, count, PAYMENT_TIMING, created_at, ready_at, release_at, expired_at),
            )
        except sqlite3.IntegrityError:
            continue  # an id collision; draw again
        return instance_id


def order_resize(conn: sqlite3.Connection, instance: Instance, count: int, now: float, delay: float) -> None:
    """Resize: a due order is applied first; the new size shows at once, or after `delay` seconds."""
    current = instance.units(now)
    if delay <= 0:
        conn.execute(
            "UPDATE instances SET count = ?, resize_count = NULL, resize_at = NULL WHERE instance_id = ?",
            (count, instance.instance_id),
        )
    else:
        conn.execute(
            "UPDATE instances SET count = ?, resize_count = ?, resize_at = ? WHERE instance_id = ?",
            (current, count, now + delay, instance.instance_id),
        )


def set_count(conn: sqlite3.Connection, instance_id: str, count: int) -> None:
    """Change the size at once, cancelling any resize order (a change made in Baidu's console)."""
    conn.execute(
        "UPDATE instances SET count = ?, resize_count = NULL, resize_at = NULL WHERE instance_id = ?",
        (count, instance_id),
    )


def set_release_at(conn: sqlite3.Connection, instance_id: str, release_at: float | None) -> None:
    conn.execute("UPDATE instances SET release_at = ? WHERE instance_id = ?", (release_at, instance_id))


def mark_released(conn: sqlite3.Connection, instance_id: str, now: float) -> None:
    conn.execute("UPDATE instances SET released_at = ? WHERE instance_id = ?", (now, instance_id))


def mark_expired(conn: sqlite3.Connection, instance_id: str, now: float) -> None:
    conn.execute("UPDATE instances SET expired_at = ? WHERE instance_id = ?", (now, instance_id))


def mark_running(conn: sqlite3.Connection, instance_id: str, now: float) -> None:
    """Undo a stop and finish creating, as if Baidu's console had revived the instance."""
    conn.execute(
        "UPDATE instances SET released_at = NULL, expired_at = NULL, "
        "ready_at = MIN(ready_at, ?), "
        "release_at = CASE WHEN release_at IS NOT NULL AND release_at <= ? THEN NULL "
        "ELSE release_at END WHERE instance_id = ?",
        (now, now, instance_id),
    )
