"""Steering and inspecting a sandbox through its database file alone.

The sandbox under test often runs in another process (embedded in the Pulumi provider host),
so every knob here is a write to SQLite that the server reads on its next request, and every
inspection is a read of the same file. No connection is kept between calls.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

from . import faults, journal
from .bodies import MAX_COUNT
from .instances import (
    get_instance,
    list_instances,
    mark_expired,
    mark_running,
    set_count,
    set_release_at,
)
from .options import OPTION_NAMES, Options, load_options, validate_option, write_option
from .store import Store, immediate
from .times import EARLIEST, LATEST, parse_release_time

_UNSET: Any = object()


class SandboxControl:
    """Options, faults, out-of-band changes and the request journal of one sandbox database."""

    def __init__(self, db_path: str | Path) -> None:
        self._store = Store.open(db_path)

    @property
    def db_path(self) -> Path:
        return self._store.path

    # -- options ---------------------------------------------------------------------------

    def set_option(self, name: str, value: Any) -> None:
        """Change one option; ValueError for an unknown name or an impossible value."""
        with self._store.connection() as conn:
            write_option(conn, name, value)

    def get_option(self, name: str) -> Any:
        """The option in force (the default when never set)."""
        if name not in OPTION_NAMES:
            validate_option(name, None)  # raises the helpful "unknown option" error
        with self._store.connection() as conn:
            return getattr(load_options(conn), name)

    def options(self) -> Options:
        """Every option in force, at once."""
        with self._store.connection() as conn:
            return load_options(conn)

    # -- faults ----------------------------------------------------------------------------

    def add_fault(self, action: str, kind: str, count: int = 1, status: int | None = None) -> None:
        """Make the next `count` calls of `action` ("*" = any) fail the way `kind` says."""
        with self._store.connection() as conn:
            faults.add_fault(conn, action, kind, count, status)

    def clear_faults(self) -> None:
        with self._store.connection() as conn:
            faults.clear_faults(conn)

    # -- instances -------------------------------------------------------------------------

    def now(self) -> float:
        """The sandbox clock: real time plus `clock_offset_seconds`."""
        with self._store.connection() as conn:
            return time.time() + load_options(conn).clock_offset_seconds

    def instances(self, model: str | None = None) -> list[dict[str, Any]]:
        """Every instance ever created, released ones included, with its status as of now."""
        with self._store.connection() as conn:
            now = time.time() + load_options(conn).clock_offset_seconds
            return [inst.control_item(now) for inst in list_instances(conn, model)]

    def update_instance(
        self,
        instance_id: str,
        *,
        count: int | None = None,
        release_time: str | datetime | None = _UNSET,
        status: str | None = None,
    ) -> None:
        """Change an instance behind the API's back, as Baidu's web console would.

        `count` changes the size at once (cancelling a pending resize order); `release_time=None`
        cancels the scheduled release (a time in the past is allowed: the instance is then
        expired); `status="Stopped"` expires the instance now; `status="Running"` revives it
        (undoes a stop or release, ends Creating).
        """
        if count is not None and (isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT):
            raise ValueError(f"count must be an int from 1 to {MAX_COUNT}, not {count!r}")
        if status not in (None, "Stopped", "Running"):
            raise ValueError(f"status must be 'Stopped' or 'Running', not {status!r}")
        release_at: float | None = None
        if isinstance(release_time, datetime):
            if release_time.tzinfo is None or release_time.utcoffset() is None:
                raise ValueError("release_time must be timezone-aware")
            release_at = release_time.timestamp()
            if not EARLIEST <= release_at <= LATEST:
                raise ValueError(f"release_time {release_time.isoformat()} is outside the years 0001 to 9999")
        elif isinstance(release_time, str):
            release_at = parse_release_time(release_time)
        elif release_time is not _UNSET and release_time is not None:
            raise ValueError(f"release_time must be a string, an aware datetime or None, not {release_time!r}")
        with self._store.connection() as conn, immediate(conn):
            now = time.time() + load_options(conn).clock_offset_seconds
            if get_instance(conn, instance_id) is None:
                raise KeyError(f"no sandbox instance {instance_id!r} in {self.db_path}")
            if count is not None:
                set_count(conn, instance_id, count)
            if release_time is not _UNSET:
                set_release_at(conn, instance_id, release_at)
            if status == "Stopped":
                mark_expired(conn, instance_id, now)
            elif status == "Running":
                mark_running(conn, instance_id, now)

    # -- request journal -------------------------------------------------------------------

    def requests(self, action: str | None = None) -> list[dict[str, Any]]:
        """Every request received, in arrival order: action, body, status (0 = dropped), code."""
        with self._store.connection() as conn:
            return journal.read_requests(conn, action)

    def clear_requests(self) -> None:
        with self._store.connection() as conn:
            journal.clear_requests(conn)
