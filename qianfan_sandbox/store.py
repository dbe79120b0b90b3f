"""The SQLite file that holds all sandbox state, and how to open it without harming anyone else's.

Everything (instances, options, faults, the request journal) lives in one file so that a test
process can steer and inspect a sandbox that runs inside another process. Every request opens
its own connection; WAL plus a long busy timeout plus `BEGIN IMMEDIATE` for every
read-modify-write lets many threads and processes share the file without lost updates. Opening
a file that another process is creating at the same moment waits for it (bounded by the busy
timeout): SQLite refuses the switch to WAL at once while anyone else holds the file, so that step
is retried rather than reported.

Before writing anything, the file is looked at read-only. It is used only if it is missing,
empty, a sandbox database (marked with `PRAGMA application_id`), or an unmarked one made by the
sandbox's earlier copy in providers/sandbox (same tables; it gets the new columns and the mark).
Any other SQLite file is another program's and is refused untouched, with one error naming it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import SandboxError

#: How long a writer waits for another writer before giving up (SQLite's busy timeout).
BUSY_TIMEOUT_SECONDS = 30.0
#: Back-off between attempts to open a file another process is creating: doubling, capped.
_FIRST_RETRY_SECONDS = 0.005
_LAST_RETRY_SECONDS = 0.25
#: SQLite's primary result codes for "another connection holds the lock".
_BUSY_CODES = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED
#: `PRAGMA application_id` of a sandbox database: "QFSB" in ASCII.
APPLICATION_ID = 0x51465342
#: `PRAGMA user_version`: bumped whenever the tables change (3: faults.seconds).
SCHEMA_VERSION = 3

_TABLES: dict[str, str] = {
    "options": "name TEXT PRIMARY KEY, value TEXT NOT NULL",
    "faults": "id INTEGER PRIMARY KEY AUTOINCREMENT, action TEXT NOT NULL, kind TEXT NOT NULL, "
    "remaining INTEGER NOT NULL, status INTEGER, seconds REAL",
    "instances": "seq INTEGER PRIMARY KEY AUTOINCREMENT, instance_id TEXT NOT NULL UNIQUE, model TEXT NOT NULL, "
    "count INTEGER NOT NULL, payment_timing TEXT NOT NULL, created_at REAL NOT NULL, ready_at REAL NOT NULL, "
    "release_at REAL, released_at REAL, expired_at REAL, resize_count INTEGER, resize_at REAL",
    "requests": "id INTEGER PRIMARY KEY AUTOINCREMENT, action TEXT, body TEXT NOT NULL, "
    "body_is_json INTEGER NOT NULL, status INTEGER, code TEXT",
}
#: Columns added since the copy in providers/sandbox, which an old database gets on first open
#: (the resize order in schema 2, a fault's `seconds` in schema 3).
_ADDED_COLUMNS: dict[str, dict[str, str]] = {
    "instances": {"resize_count": "INTEGER", "resize_at": "REAL"},
    "faults": {"seconds": "REAL"},
}
#: Tables SQLite itself keeps.
_SQLITE_TABLES = frozenset({"sqlite_sequence", "sqlite_stat1", "sqlite_stat4"})


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def _wanted_columns(table: str) -> set[str]:
    return {part.strip().split()[0] for part in _TABLES[table].split(",")}


class Store:
    """One sandbox database file; hands out fresh connections, never shares one across threads."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def open(cls, db_path: str | Path) -> Store:
        """Create or check the database now, so a bad path fails at start and not mid-request."""
        path = Path(db_path).expanduser().absolute()
        if path.is_dir():
            raise SandboxError(f"sandbox database {path}: is a directory, not a database file")
        store = cls(path)
        deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
        delay = _FIRST_RETRY_SECONDS
        while True:
            try:
                store._open_once()
            except _Busy as busy:
                # Another process is creating or converting the file right now: wait for it, bounded.
                if time.monotonic() + delay > deadline:
                    raise SandboxError(
                        f"sandbox database {path}: still locked by another process after "
                        f"{BUSY_TIMEOUT_SECONDS:g} s ({busy})"
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, _LAST_RETRY_SECONDS)
                continue
            return store

    def _open_once(self) -> None:
        """One attempt to check, create or upgrade the file; `_Busy` when another process holds it."""
        if self.path.exists():
            self._inspect()  # read-only: nothing is written to a file that turns out to be foreign
        _make_parent(self.path)
        try:
            conn = self.connect()
        except sqlite3.Error as exc:
            _raise_busy(exc)
            raise SandboxError(f"sandbox database {self.path}: cannot open it ({_describe(exc)})") from None
        try:
            # Switching a new file to WAL needs an exclusive lock and does not wait for one (SQLite
            # answers SQLITE_BUSY at once, busy timeout or not), so it is only tried when needed and
            # retried by the caller; an unchanged mode is answered, not raised, and is a retry too.
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
                if mode != "wal":
                    raise _Busy(f"journal mode still {mode}")
            with immediate(conn):
                self._initialise(conn)
        except sqlite3.Error as exc:
            _raise_busy(exc)
            raise SandboxError(f"sandbox database {self.path}: unusable ({_describe(exc)})") from None
        finally:
            conn.close()

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

    def _inspect(self) -> None:
        """Refuse, without writing a byte, a file that is not SQLite or is another program's database."""
        try:
            conn = sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_SECONDS)
        except sqlite3.Error as exc:
            _raise_busy(exc)
            raise SandboxError(f"sandbox database {self.path}: cannot open it ({_describe(exc)})") from None
        try:
            self._refuse_foreign(conn)
        except sqlite3.Error as exc:
            _raise_busy(exc)
            raise SandboxError(f"sandbox database {self.path}: unusable ({_describe(exc)})") from None
        finally:
            conn.close()

    def _refuse_foreign(self, conn: sqlite3.Connection) -> None:
        application_id = conn.execute("PRAGMA application_id").fetchone()[0]
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        tables -= _SQLITE_TABLES
        marked = application_id == APPLICATION_ID
        empty = application_id == 0 and not tables
        earlier_copy = application_id == 0 and tables == set(_TABLES)
        if not (marked or empty or earlier_copy):
            listed = ", ".join(sorted(tables)[:8]) or "none"
            raise SandboxError(
                f"sandbox database {self.path}: another program's SQLite database (application id "
                f"{application_id}, tables: {listed}); the sandbox leaves it untouched, give it a path of its own"
            )
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise SandboxError(
                f"sandbox database {self.path}: made by a newer sandbox (schema {version}, this one knows "
                f"{SCHEMA_VERSION}); give this one a path of its own"
            )
        for table in sorted(tables & set(_TABLES)):
            found = _columns(conn, table)
            if found not in (_wanted_columns(table), _wanted_columns(table) - set(_ADDED_COLUMNS.get(table, {}))):
                raise SandboxError(
                    f"sandbox database {self.path}: table {table!r} has columns {', '.join(sorted(found))}, "
                    "not a sandbox's; the sandbox leaves it untouched, give it a path of its own"
                )

    def _initialise(self, conn: sqlite3.Connection) -> None:
        """Inside the write lock: check again (another process may have been first), then create or upgrade."""
        self._refuse_foreign(conn)
        for table, columns in _TABLES.items():
            conn.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns})")
            for column, kind in _ADDED_COLUMNS.get(table, {}).items():
                if column not in _columns(conn, table):
                    conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


class _Busy(Exception):
    """Another connection holds a lock that this step could not wait for; try the open again."""


def _raise_busy(exc: sqlite3.Error) -> None:
    """Turn SQLite's "locked" answers into `_Busy`; leave every other error to the caller."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and code & 0xFF in _BUSY_CODES:
        raise _Busy(_describe(exc)) from None


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


def _describe(exc: sqlite3.Error) -> str:
    text = " ".join(str(exc).split())
    if "not a database" in text or "malformed" in text:
        return f"{text}; the file is corrupt or not a SQLite database"
    if "readonly" in text or "read-only" in text:
        return f"{text}; the file or its directory is not writable"
    return text
