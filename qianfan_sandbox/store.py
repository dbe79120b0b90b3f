"""The SQLite file that holds all sandbox state, and how to open it without harming anyone else's.

Everything (instances, options, faults, the request journal) lives in one file so that a test
process can steer and inspect a sandbox that runs inside another process. Every request opens
its own connection; WAL plus a long busy timeout plus `BEGIN IMMEDIATE` for every
read-modify-write lets many threads and processes share the file without lost updates.

Before writing anything, the file is looked at read-only. It is used only if it is missing,
empty, a sandbox database (marked with `PRAGMA application_id`), or an unmarked one made by the
sandbox's earlier copy in providers/sandbox (same tables; it gets the new columns and the mark).
Any other SQLite file is another program's and is refused untouched, with one error naming it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import SandboxError

#: How long a writer waits for another writer before giving up (SQLite's busy timeout).
BUSY_TIMEOUT_SECONDS = 30.0
#: `PRAGMA application_id` of a sandbox database: "QFSB" in ASCII.
APPLICATION_ID = 0x51465342
#: `PRAGMA user_version`: bumped whenever the tables change.
SCHEMA_VERSION = 2

_TABLES: dict[str, str] = {
    "options": "name TEXT PRIMARY KEY, value TEXT NOT NULL",
    "faults": "id INTEGER PRIMARY KEY AUTOINCREMENT, action TEXT NOT NULL, kind TEXT NOT NULL, "
    "remaining INTEGER NOT NULL, status INTEGER",
    "instances": "seq INTEGER PRIMARY KEY AUTOINCREMENT, instance_id TEXT NOT NULL UNIQUE, model TEXT NOT NULL, "
    "count INTEGER NOT NULL, payment_timing TEXT NOT NULL, created_at REAL NOT NULL, ready_at REAL NOT NULL, "
    "release_at REAL, released_at REAL, expired_at REAL, resize_count INTEGER, resize_at REAL",
    "requests": "id INTEGER PRIMARY KEY AUTOINCREMENT, action TEXT, body TEXT NOT NULL, "
    "body_is_json INTEGER NOT NULL, status INTEGER, code TEXT",
}
#: Columns added since the copy in providers/sandbox, which an old database gets on first open.
_ADDED_COLUMNS: dict[str, dict[str, str]] = {"instances": {"resize_count": "INTEGER", "resize_at": "REAL"}}
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
        if path.exists():
            store._inspect()  # read-only: nothing is written to a file that turns out to be foreign
        _make_parent(path)
        try:
            conn = store.connect()
        except sqlite3.Error as exc:
            raise SandboxError(f"sandbox database {path}: cannot open it ({_describe(exc)})") from None
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            with immediate(conn):
                store._initialise(conn)
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

    def _inspect(self) -> None:
        """Refuse, without writing a byte, a file that is not SQLite or is another program's database."""
        try:
            conn = sqlite3.connect(f"{self.path.as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_SECONDS)
        except sqlite3.Error as exc:
            raise SandboxError(f"sandbox database {self.path}: cannot open it ({_describe(exc)})") from None
        try:
            self._refuse_foreign(conn)
        except sqlite3.Error as exc:
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
