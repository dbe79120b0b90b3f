"""Where the provider hosts that share a Qianfan account coordinate their purchases.

Every purchase is recorded here before it is sent and when its answer comes; every instance a
purchase bought, a recovery found or an adoption took is *claimed* here, and a claim is unique (a
primary key, not a convention). A recovery of a model takes the model's gate, which no host can
take while a purchase of that model is in flight anywhere, and no host sends a purchase of the
model while the gate is taken. So the never-buy-twice algorithm (`purchase.py`) works the same
for four RPCs of one host and for many hosts on many machines.

Backends: a SQLite database in memory (`off`: this host only), a SQLite file (every stack run
from one machine; the default) or PostgreSQL (hosts on many machines). Each keeps one connection
per host process, guarded by a lock, and serialises its transactions across hosts (SQLite's
`BEGIN IMMEDIATE`, a PostgreSQL transaction-level advisory lock per account), so each method
below is atomic. Times are seconds on the ledger's clock (`now()`): this machine's for SQLite,
the server's for PostgreSQL, so that hosts on machines with different clocks agree on deadlines.

A host that dies mid-purchase leaves a record `sending`; past its deadline (plus `GRACE_SECONDS`)
it is *abandoned*: it blocks nobody, and the next recovery of its model treats it as an
uncertain purchase whose instance, if one turns up, is named in the journal (`orphaned`).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, TypeVar

from .clock import REAL, Clock
from .deadline import Deadline

T = TypeVar("T")

#: How long past its deadline a purchase in flight still blocks a recovery (the host's own
#: bookkeeping after its request ended), and a taken gate still blocks purchases.
GRACE_SECONDS = 2.0
#: How long a waiter sleeps between looks at a ledger other hosts may change.
POLL_SECONDS = (0.05, 0.5)


class LedgerError(Exception):
    """The ledger cannot be used; the message names the ledger (never a password) and says why."""


class State(StrEnum):
    SENDING = "sending"  # recorded before it was sent; the answer has not come
    BOUGHT = "bought"  # answered with an instance id, claimed
    REFUSED = "refused"  # refused before anything happened (nothing bought)
    UNCERTAIN = "uncertain"  # answer lost: to be recovered
    RECOVERED = "recovered"  # uncertain, and a recovery found its instance (claimed)
    NOT_BOUGHT = "not bought"  # uncertain, and consistent listings showed it bought nothing
    UNKNOWN = "unknown"  # uncertain, and the recovery could not tell (named in the audit)
    ORPHANED = "orphaned"  # abandoned, and a recovery found the instance it bought (claimed, no resource)


#: Purchases a recovery still has to account for.
OPEN_STATES = (State.SENDING, State.UNCERTAIN)


@dataclass(frozen=True)
class Owner:
    """Who a purchase or claim is for: a resource of a stack of a project (any may be unknown)."""

    project: str | None = None
    stack: str | None = None
    resource: str | None = None

    def describe(self) -> str:
        if self.resource is None:
            return "another TPMQuota" + (f" of stack {self.stack}" if self.stack else "")
        return f"TPMQuota {self.resource!r}" + (f" of stack {self.stack}" if self.stack else "")


@dataclass(frozen=True)
class PurchaseRecord:
    id: int
    model: str
    units: int
    release_time: str | None
    host: str
    owner: Owner
    sent_at: float
    deadline: float
    #: Qianfan's clock: the earliest it may have shown when the purchase was sent ...
    server_sent: float | None
    #: ... and the latest it may have shown when its request ended (or could have ended).
    server_ended: float | None
    state: State
    instance_id: str | None
    detail: str | None

    def abandoned(self, now: float) -> bool:
        return self.state in OPEN_STATES and now > self.deadline + GRACE_SECONDS


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Backend(Protocol):
    """A database that holds ledgers; `transaction()` is atomic and serialised across hosts."""

    #: What messages call it, e.g. "ledger /home/u/.local/state/qianfan-tpm/ledger.sqlite3".
    name: str

    def transaction(self, account: str) -> Any: ...
    def now(self) -> float: ...
    def close(self) -> None: ...


SCHEMA_VERSION = 1
#: `PRAGMA application_id` of a SQLite ledger: "QFLG" in ASCII.
SQLITE_APPLICATION_ID = 0x51464C47

_COLUMNS = (
    "id, model, units, release_time, host, project, stack, resource, sent_at, deadline, "
    "server_sent, server_ended, state, instance_id, detail"
)


def _record(row: Sequence[Any]) -> PurchaseRecord:
    return PurchaseRecord(
        id=int(row[0]),
        model=row[1],
        units=int(row[2]),
        release_time=row[3],
        host=row[4],
        owner=Owner(row[5], row[6], row[7]),
        sent_at=float(row[8]),
        deadline=float(row[9]),
        server_sent=None if row[10] is None else float(row[10]),
        server_ended=None if row[11] is None else float(row[11]),
        state=State(row[12]),
        instance_id=row[13],
        detail=row[14],
    )


class Ledger:
    """One account's view of a ledger, for one provider host. Thread-safe."""

    def __init__(self, backend: Backend, account: str, host: str, clock: Clock = REAL) -> None:
        self.backend = backend
        self.account = account
        self.host = host
        self._clock = clock
        self._changed = threading.Condition()
        self._version = 0

    @property
    def name(self) -> str:
        return self.backend.name

    def now(self) -> float:
        return self.backend.now()

    @contextmanager
    def _tx(self) -> Iterator[Cursor]:
        with self.backend.transaction(self.account) as cur:
            yield cur
        with self._changed:
            self._version += 1
            self._changed.notify_all()

    # -- purchases ------------------------------------------------------------------------------
    def begin(
        self,
        model: str,
        units: int,
        release_time: str | None,
        owner: Owner,
        *,
        seconds: float,
        server_sent: float | None,
        server_ended: float | None,
    ) -> int | None:
        """Record a purchase about to be sent; None (nothing recorded) while the model's gate is taken."""
        with self._tx() as cur:
            now = self.now()
            if self._gate_holder(cur, model, now) is not None:
                return None
            cur.execute(
                "INSERT INTO purchases (account, model, units, release_time, host, project, stack, resource, "
                "sent_at, deadline, server_sent, server_ended, state, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    self.account,
                    model,
                    units,
                    release_time,
                    self.host,
                    owner.project,
                    owner.stack,
                    owner.resource,
                    now,
                    now + seconds,
                    server_sent,
                    server_ended,
                    State.SENDING.value,
                    now,
                ),
            )
            return int(cur.fetchone()[0])

    def ended(
        self,
        purchase_id: int,
        state: State,
        *,
        instance_id: str | None = None,
        request_id: str | None = None,
        detail: str | None = None,
        server_ended: float | None = None,
    ) -> None:
        """Record how a purchase (or its recovery) ended; an instance is claimed in the same step.

        Raises LedgerError if the instance is claimed already: that would hold it twice.
        """
        with self._tx() as cur:
            now = self.now()
            if instance_id is not None:
                row = self._purchase(cur, purchase_id)
                self._claim(cur, instance_id, row.model, purchase_id, row.owner, now)
            cur.execute(
                "UPDATE purchases SET state = ?, instance_id = COALESCE(?, instance_id), "
                "request_id = COALESCE(?, request_id), detail = COALESCE(?, detail), "
                "server_ended = COALESCE(?, server_ended), updated_at = ? WHERE account = ? AND id = ?",
                (state.value, instance_id, request_id, detail, server_ended, now, self.account, purchase_id),
            )

    def record(self, purchase_id: int) -> PurchaseRecord:
        with self.backend.transaction(self.account) as cur:
            return self._purchase(cur, purchase_id)

    # -- the gate and recoveries ----------------------------------------------------------------
    def gate_open(self, model: str) -> bool:
        with self.backend.transaction(self.account) as cur:
            return self._gate_holder(cur, model, self.now()) is None

    def take_gate(self, model: str, seconds: float) -> list[PurchaseRecord] | None:
        """Take the model's gate for a recovery, if no purchase of it is in flight in any host and no
        other recovery holds it: the open purchases of the model (every host's), oldest first."""
        with self._tx() as cur:
            now = self.now()
            holder = self._gate_holder(cur, model, now)
            if holder is not None and holder != self.host:
                return None
            cur.execute(
                "SELECT COUNT(*) FROM purchases WHERE account = ? AND model = ? AND state = ? AND deadline >= ?",
                (self.account, model, State.SENDING.value, now - GRACE_SECONDS),
            )
            if int(cur.fetchone()[0]) > 0:
                return None
            cur.execute(
                "INSERT INTO gates (account, model, holder, until) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (account, model) DO UPDATE SET holder = excluded.holder, until = excluded.until",
                (self.account, model, self.host, now + seconds),
            )
            cur.execute(
                f"SELECT {_COLUMNS} FROM purchases WHERE account = ? AND model = ? AND state IN (?, ?) ORDER BY id",
                (self.account, model, *(s.value for s in OPEN_STATES)),
            )
            return [_record(row) for row in cur.fetchall()]

    def open_purchases(self, model: str) -> list[PurchaseRecord]:
        """The model's open purchases, every host's, oldest first (for a gate holder's later rounds)."""
        with self.backend.transaction(self.account) as cur:
            cur.execute(
                f"SELECT {_COLUMNS} FROM purchases WHERE account = ? AND model = ? AND state IN (?, ?) ORDER BY id",
                (self.account, model, *(s.value for s in OPEN_STATES)),
            )
            return [_record(row) for row in cur.fetchall()]

    def leave_gate(self, model: str) -> None:
        with self._tx() as cur:
            cur.execute(
                "UPDATE gates SET holder = NULL, until = NULL WHERE account = ? AND model = ? AND holder = ?",
                (self.account, model, self.host),
            )

    # -- claims ---------------------------------------------------------------------------------
    def claimed(self, instance_ids: Iterable[str]) -> frozenset[str]:
        """Which of these instances some purchase, recovery or adoption holds."""
        wanted = sorted(set(instance_ids))
        if not wanted:
            return frozenset()
        found: set[str] = set()
        with self.backend.transaction(self.account) as cur:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ", ".join("?" for _ in chunk)
                cur.execute(
                    f"SELECT instance_id FROM claims WHERE account = ? AND instance_id IN ({marks})",
                    (self.account, *chunk),
                )
                found.update(row[0] for row in cur.fetchall())
        return frozenset(found)

    def adopt(self, instance_id: str, model: str, owner: Owner) -> Owner | None:
        """Claim an instance for an adoption: None, or the owner that already holds it (refused)."""
        with self._tx() as cur:
            cur.execute(
                "SELECT project, stack, resource FROM claims WHERE account = ? AND instance_id = ?",
                (self.account, instance_id),
            )
            row = cur.fetchone()
            if row is not None:
                holder = Owner(row[0], row[1], row[2])
                return None if holder == owner and owner.resource is not None else holder
            self._claim(cur, instance_id, model, None, owner, self.now())
            return None

    # -- waiting --------------------------------------------------------------------------------
    def wait_until(self, ready: Callable[[], T | None], deadline: Deadline) -> T | None:
        """Look with `ready` until it gives something or the deadline passes (then None).

        This host's changes wake the waiter at once; other hosts' changes, and deadlines of records
        passing, are found by looking again at pauses growing from POLL_SECONDS[0] to POLL_SECONDS[1].
        """
        low, high = POLL_SECONDS
        attempt = 0
        while True:
            with self._changed:
                version = self._version
            found = ready()
            if found is not None or deadline.expired:
                return found
            pause = min(deadline.remaining(), high, low * 2**attempt)
            with self._changed:
                if self._version == version:
                    self._clock.wait(self._changed, pause)
            attempt = min(attempt + 1, 16)

    # -- inside transactions --------------------------------------------------------------------
    def _gate_holder(self, cur: Cursor, model: str, now: float) -> str | None:
        cur.execute("SELECT holder, until FROM gates WHERE account = ? AND model = ?", (self.account, model))
        row = cur.fetchone()
        if row is None or row[0] is None or row[1] is None or float(row[1]) + GRACE_SECONDS < now:
            return None
        return str(row[0])

    def _purchase(self, cur: Cursor, purchase_id: int) -> PurchaseRecord:
        cur.execute(f"SELECT {_COLUMNS} FROM purchases WHERE account = ? AND id = ?", (self.account, purchase_id))
        row = cur.fetchone()
        if row is None:
            raise LedgerError(f"{self.name}: purchase record {purchase_id} is missing (was the ledger replaced?)")
        return _record(row)

    def _claim(
        self, cur: Cursor, instance_id: str, model: str, purchase_id: int | None, owner: Owner, now: float
    ) -> None:
        cur.execute(
            "SELECT purchase_id, project, stack, resource FROM claims WHERE account = ? AND instance_id = ?",
            (self.account, instance_id),
        )
        row = cur.fetchone()
        if row is not None:
            if row[0] is not None and purchase_id is not None and int(row[0]) == purchase_id:
                return
            raise LedgerError(
                f"{self.name}: instance {instance_id} is already held by {Owner(row[1], row[2], row[3]).describe()}; "
                "one instance can belong to one resource only"
            )
        cur.execute(
            "INSERT INTO claims (account, instance_id, model, purchase_id, project, stack, resource, claimed_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (self.account, instance_id, model, purchase_id, owner.project, owner.stack, owner.resource, now),
        )


# -- SQLite ---------------------------------------------------------------------------------------
_SQLITE_TABLES = (
    "CREATE TABLE IF NOT EXISTS purchases (id INTEGER PRIMARY KEY AUTOINCREMENT, account TEXT NOT NULL, "
    "model TEXT NOT NULL, units INTEGER NOT NULL, release_time TEXT, host TEXT NOT NULL, project TEXT, stack TEXT, "
    "resource TEXT, sent_at REAL NOT NULL, deadline REAL NOT NULL, server_sent REAL, server_ended REAL, "
    "state TEXT NOT NULL, instance_id TEXT, request_id TEXT, detail TEXT, updated_at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS purchases_by_model ON purchases (account, model, state)",
    "CREATE TABLE IF NOT EXISTS claims (account TEXT NOT NULL, instance_id TEXT NOT NULL, model TEXT NOT NULL, "
    "purchase_id INTEGER, project TEXT, stack TEXT, resource TEXT, claimed_at REAL NOT NULL, released_at REAL, "
    "PRIMARY KEY (account, instance_id))",
    "CREATE TABLE IF NOT EXISTS gates (account TEXT NOT NULL, model TEXT NOT NULL, holder TEXT, until REAL, "
    "PRIMARY KEY (account, model))",
    "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, account TEXT NOT NULL, "
    "model TEXT NOT NULL, instance_id TEXT NOT NULL, action TEXT NOT NULL, project TEXT, stack TEXT, resource TEXT, "
    "host TEXT NOT NULL, at REAL NOT NULL, request_id TEXT, detail TEXT)",
)


class SqliteBackend:
    """A ledger in one SQLite database: in memory (this process only) or a file (this machine)."""

    def __init__(self, path: str | None, clock: Clock = REAL) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.name = f"ledger {path}" if path is not None else "ledger in memory"
        try:
            self._conn = sqlite3.connect(
                path or ":memory:", timeout=30.0, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA busy_timeout=30000")
            if path is not None:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
            self._initialise()
        except sqlite3.Error as exc:
            raise LedgerError(f"{self.name}: cannot be used ({' '.join(str(exc).split())})") from None

    def now(self) -> float:
        return self._clock.wall()

    @contextmanager
    def transaction(self, account: str) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            cur = self._conn.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
                try:
                    yield cur
                except BaseException:
                    cur.execute("ROLLBACK")
                    raise
                cur.execute("COMMIT")
            except sqlite3.Error as exc:
                raise LedgerError(f"{self.name}: {' '.join(str(exc).split())}") from None
            finally:
                cur.close()

    def _initialise(self) -> None:
        with self.transaction("") as cur:
            application_id = cur.execute("PRAGMA application_id").fetchone()[0]
            version = cur.execute("PRAGMA user_version").fetchone()[0]
            tables = {row[0] for row in cur.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            tables.discard("sqlite_sequence")
            if application_id != SQLITE_APPLICATION_ID and (application_id != 0 or tables):
                raise LedgerError(
                    f"{self.name}: another program's SQLite database (application id {application_id}, tables: "
                    f"{', '.join(sorted(tables)[:8]) or 'none'}); give the ledger a file of its own"
                )
            if version > SCHEMA_VERSION:
                raise LedgerError(
                    f"{self.name}: made by a newer qianfan-tpm (ledger schema {version}, this one knows "
                    f"{SCHEMA_VERSION}); upgrade this project or give it a ledger of its own"
                )
            for statement in _SQLITE_TABLES:
                cur.execute(statement)
            cur.execute(f"PRAGMA application_id = {SQLITE_APPLICATION_ID}")
            cur.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def memory_ledger(host: str, clock: Clock = REAL) -> Ledger:
    """This host's own ledger (`qianfan:ledger: off`): coordination inside one host only."""
    return Ledger(SqliteBackend(None, clock), account="", host=host, clock=clock)
