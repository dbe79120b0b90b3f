"""TPM quota instances as rows, and how their state reads at a given moment.

Status is never stored: it is derived from timestamps each time it is read (Creating until
`ready_at`, Stopped once released, expired or past `release_at`). That needs no background
thread, survives restarts, and makes the sandbox clock offset fast-forward everything at once.
"""

from __future__ import annotations

import secrets
import sqlite3
import string
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from providers.release_time import BEIJING, format_release_time

#: Quota granted per purchased unit.
TPM_PER_UNIT = 10_000
RPM_PER_UNIT = 33
PAYMENT_TIMING = "Postpaid"
STATUSES = ("Creating", "Running", "Stopped")

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

    @property
    def released(self) -> bool:
        """Ended by ReleaseTPMResource (as opposed to expiring)."""
        return self.released_at is not None

    def status(self, now: float) -> str:
        """Creating, Running or Stopped, as Qianfan would report it at `now`."""
        if self.released_at is not None:
            return "Stopped"
        if self.expired_at is not None and self.expired_at <= now:
            return "Stopped"
        if self.release_at is not None and self.release_at <= now:
            return "Stopped"
        if self.ready_at > now:
            return "Creating"
        return "Running"

    def release_time_text(self) -> str | None:
        """The scheduled release as RFC3339 +08:00, or None when none is scheduled."""
        return None if self.release_at is None else format_epoch(self.release_at)

    def describe_item(self, now: float, sparse: bool) -> dict[str, Any]:
        """One DescribeTPMResource item; `sparse` keeps only the fields Baidu documents."""
        release_time = self.release_time_text()
        item: dict[str, Any] = {"instanceId": self.instance_id}
        if not sparse:
            item["model"] = self.model
        item["paymentTiming"] = self.payment_timing
        if not sparse:
            item["count"] = self.count
        item["tpm"] = self.count * TPM_PER_UNIT
        item["rpm"] = self.count * RPM_PER_UNIT
        item["status"] = self.status(now)
        item["startTime"] = format_epoch(self.created_at)
        if not sparse:
            item["releaseTime"] = release_time
        item["expiredTime"] = release_time or ""
        return item

    def control_item(self, now: float) -> dict[str, Any]:
        """What SandboxControl.instances() reports: Describe's view plus `released`."""
        return {
            "instanceId": self.instance_id,
            "model": self.model,
            "count": self.count,
            "paymentTiming": self.payment_timing,
            "status": self.status(now),
            "releaseTime": self.release_time_text(),
            "startTime": format_epoch(self.created_at),
            "released": self.released,
        }


def format_epoch(moment: float) -> str:
    """RFC3339 in Beijing time, the spelling Qianfan uses for every time it returns."""
    return format_release_time(datetime.fromtimestamp(moment, BEIJING))


def new_instance_id() -> str:
    """`tpm-` and eight random letters or digits, like the id in Baidu's example answer."""
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
) -> str:
    """Create a new instance and return its id; the caller holds the write transaction."""
    while True:
        instance_id = new_instance_id()
        try:
            conn.execute(
                "INSERT INTO instances (instance_id, model, count, payment_timing, created_at, "
                "ready_at, release_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    instance_id,
                    model,
                    count,
                    PAYMENT_TIMING,
                    now,
                    now + creating_seconds,
                    release_at,
                ),
            )
        except sqlite3.IntegrityError:
            continue  # a 62**8 collision; draw again
        return instance_id


def set_count(conn: sqlite3.Connection, instance_id: str, count: int) -> None:
    conn.execute("UPDATE instances SET count = ? WHERE instance_id = ?", (count, instance_id))


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
