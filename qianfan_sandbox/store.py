"""The SQLite file that holds all sandbox state, and how to open it safely.

Everything (instances, options, faults, the request journal) lives in one file so that a test
process can steer and inspect a sandbox that runs inside another process. Every request opens
its own connection; WAL plus a long busy timeout plus `BEGIN IMMEDIATE` for every
read-modify-write lets many threads and processes share the file without lost updates or
"database is locked" errors.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import SandboxError

#: How long a writer waits for another writer before giving up (SQLite's busy timeout).
BUSY_TIMEOUT_SECONDS = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS options (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS faults (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    action TEXT NOT NULL,
    kind TEXT NOT NULL,
    remaining INTEGER NOT NULL,
    status INTEGER
);
CREATE TABLE IF NOT EXISTS instances (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL UNIQUE,
    model TEXT NOT NULL,
    count INTEGER NOT NULL,
    payment_timing TEXT NOT NULL,
    created_at REAL NOT NULL,
    ready_at REAL NOT NULL,
    release_at REAL,
    released_at REAL,
    expired_at REAL
);
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    action TEXT,
    body TEXT NOT NULL,
    body_is_json INTEGER NOT NULL,
    status INTEGER,
    code TEXT
);
"""

_EXPECTED_COLUMNS: dict[str, set[str]] = {
    "options": {"name", "value"},
    "faults": {"id", "action", "kind", "remaining", "status"},
    "instances": {
        "seq",
        "instance_id",
        "model",
        "count",
        "payment_timing",
        "created_at",
        "ready_at",
        "release_at",
        "released_at",
        "expired_at",
    },
    "requests": {"id", "action", "body", "body_is_json", "status", "code"},
}


class Store:
    """One sandbox database file; hands out fresh connections, never shares one across threads."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def open(cls, db_path: str | Path) -> Store:
        """Create or check the database now, so a bad path fails at start and not mid-request."""
        path = Path(db_path).expanduser().absolute()
        _make_parent(path)
        if path.is_dir():
            raise SandboxError(f"sandbox database {path}: is a directory, not a database file")
        store = cls(path)
        try:
            conn = store.connect()
        except sqlite3.Error as exc:
            raise SandboxError(f"sandbox database {path}: cannot open it ({_describe(exc)})") from None
        try:
            store._check_columns(conn)  # before creating anything in somebody else's file
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise SandboxError(f"sandbox database {path}: unusable ({_describe(exc)})") from None
        finally:
            conn.close()
        return store

    def connect(self) -> sqlite3.Connection:
        """A new autocommit connection; callers open transactions explicitly."""
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """A connection that is closed afterwards, for short-lived callers such as the control."""
        conn = self.connect()
        try:
            yield conn
        finally:
            conn.close()

    def _check_columns(self, conn: sqlite3.Connection) -> None:
        """Refuse a SQLite file that some other program made, instead of corrupting it."""
        for table, expected in _EXPECTED_COLUMNS.items():
            found = {row["name"] for row in conn.execute(f"PRAGMA table_info({table})")}
            if found and not expected <= found:
                missing = ", ".join(sorted(expected - found))
                raise SandboxError(
                    f"sandbox database {self.path}: table {table!r} lacks columns {missing}; "
                    "it is not a Qianfan sandbox database"
                )


def _make_parent(path: Path) -> None:
    """Create the directory the database goes in, explaining the usual ways that fails."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise SandboxError(f"sandbox database {path}: a parent of it is a file, not a directory") from None
    except OSError as exc:
        raise SandboxError(f"sandbox database {path}: cannot create its directory ({exc.strerror or exc})") from None


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """`BEGIN IMMEDIATE` ... `COMMIT`: take the write lock before reading what will be changed."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    else:
        if conn.in_transaction:
            conn.execute("COMMIT")


def _describe(exc: sqlite3.DatabaseError) -> str:
    text = str(exc)
    if "not a database" in text or "malformed" in text:
        return f"{text}; the file is corrupt or not a SQLite database"
    if "readonly" in text or "read-only" in text:
        return f"{text}; the file or its directory is not writable"
    return text
