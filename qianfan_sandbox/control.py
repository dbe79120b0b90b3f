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
    insert_row,
    list_instances,
    mark_expired,
    mark_running,
    set_count,
    set_release_at,
)
from .models import MAX_MODEL_ID_LENGTH
from .options import OPTION_NAMES, Options, load_options, validate_option, write_option
from .store import Store, immediate
from .times import EARLIEST, LATEST, beijing_text, parse_release_time

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

    def add_fault(
        self, action: str, kind: str, count: int = 1, status: int | None = None, seconds: float | None = None
    ) -> None:
        """Make the next `count` calls of `action` ("*" = any) fail the way `kind` says; `seconds`
        is how long `hang_after_commit` holds each answer (default 30, at most 3600)."""
        with self._store.connection() as conn:
            faults.add_fault(conn, action, kind, count, status, seconds)

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

    def add_instance(
        self,
        model: str,
        count: int,
        *,
        release_time: str | datetime | None = None,
        start_time: str | datetime | None = None,
        status: str = "Running",
    ) -> str:
        """An instance bought in Baidu's console, outside the API; returns its id.

        No request is journaled (there was none). `start_time` (default: now on the sandbox
        clock) backdates the purchase, and Describe's `startTime` shows it; it may not be in the
        future. `status` is `Running`, `Creating` (for `creating_seconds` from now) or `Stopped`
        (expired now). `release_time` schedules the release; one that has passed needs
        `status="Stopped"`. The model is not checked against the server's list (the control
        does not know its extra models): an instance of an id no server accepts is never listed.
        """
        if not isinstance(model, str) or not model or model != model.strip() or not model.isprintable():
            raise ValueError(f"model must be a model id (non-empty printable text), not {model!r}")
        if len(model) > MAX_MODEL_ID_LENGTH:
            raise ValueError(f"model must be at most {MAX_MODEL_ID_LENGTH} characters, not {len(model)}")
        _check_count(count)
        if status not in _ADDED_STATUSES:
            raise ValueError(f"status must be one of {', '.join(_ADDED_STATUSES)}, not {status!r}")
        release_at = None if release_time is None else _moment("release_time", release_time)
        start_at = None if start_time is None else _moment("start_time", start_time)
        with self._store.connection() as conn, immediate(conn):
            options = load_options(conn)
            now = time.time() + options.clock_offset_seconds
            created_at = now if start_at is None else start_at
            if created_at > now:
                raise ValueError(f"start_time {beijing_text(created_at)} is in the future (now is {beijing_text(now)})")
            if release_at is not None and release_at <= created_at:
                raise ValueError(
                    f"release_time {beijing_text(release_at)} is not after start_time {beijing_text(created_at)}"
                )
            if release_at is not None and release_at <= now and status != "Stopped":
                raise ValueError(
                    f"release_time {beijing_text(release_at)} has passed, so the instance is Stopped; "
                    "pass status='Stopped'"
                )
            ready_at = now + options.creating_seconds if status == "Creating" else created_at
            # Stopped now, unless its release time (already passed) says when it stopped.
            expired_at = now if status == "Stopped" and (release_at is None or release_at > now) else None
            return insert_row(conn, model, count, created_at, ready_at, release_at, expired_at, options.id_style)

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
        if count is not None:
            _check_count(count)
        if status not in (None, "Stopped", "Running"):
            raise ValueError(f"status must be 'Stopped' or 'Running', not {status!r}")
        release_at: float | None = None
        if release_time is not _UNSET and release_time is not None:
            release_at = _moment("release_time", release_time)
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


#: What `add_instance` can make: a console purchase that is running, still creating, or expired.
_ADDED_STATUSES = ("Running", "Creating", "Stopped")


def _check_count(count: Any) -> None:
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise ValueError(f"count must be an int from 1 to {MAX_COUNT}, not {count!r}")


def _moment(name: str, value: Any) -> float:
    """Epoch seconds of an aware datetime or a releaseTime spelling; ValueError naming `name`."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} must be timezone-aware")
        moment = value.timestamp()
        if not EARLIEST <= moment <= LATEST:
            raise ValueError(f"{name} {value.isoformat()} is outside the years 0001 to 9999")
        return moment
    if isinstance(value, str):
        try:
            return parse_release_time(value)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
    raise ValueError(f"{name} must be a string, an aware datetime or None, not {value!r}")
