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

import hashlib
import hmac
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, TypeVar

from .clock import REAL, Clock
from .deadline import Deadline
from .secrets import redact
from .settings import Settings

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

    @classmethod
    def of(cls, urn: object) -> Owner:
        """The owner a resource's URN names (`urn:pulumi:<stack>::<project>::<type>::<name>`)."""
        if not isinstance(urn, str) or not urn.startswith("urn:pulumi:"):
            return cls()
        parts = urn[len("urn:pulumi:") :].split("::")
        if len(parts) < 4:
            return cls()
        return cls(project=parts[1], stack=parts[0], resource="::".join(parts[3:]))

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


@dataclass(frozen=True)
class PurchaseEntry:
    """A purchase as the journal shows it: its record, Qianfan's requestId (when the answer came)
    and when the record last changed."""

    record: PurchaseRecord
    request_id: str | None
    updated_at: float


#: The journal's action for a claim the audit let go (`python -m audit --forget-claim`).
FORGOTTEN = "forgotten"


@dataclass(frozen=True)
class ClaimRecord:
    """Who holds an instance: the owner, and the purchase that bought it (None: adopted)."""

    instance_id: str
    model: str
    purchase_id: int | None
    owner: Owner
    claimed_at: float
    #: When it was let go (released, or forgotten with the audit); None while it is held.
    released_at: float | None


@dataclass(frozen=True)
class JournalEvent:
    """A change made to an instance: adopted, resized, rescheduled, released, forgotten."""

    id: int
    model: str
    instance_id: str
    action: str
    owner: Owner
    host: str
    at: float
    request_id: str | None
    detail: str | None


@dataclass(frozen=True)
class JournalView:
    """One account's journal as one transaction saw it, for the audit."""

    now: float
    claims: tuple[ClaimRecord, ...]
    purchases: tuple[PurchaseEntry, ...]
    events: tuple[JournalEvent, ...]
    #: How many other accounts (endpoints or key pairs) the ledger holds records of.
    other_accounts: int


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Backend(Protocol):
    """A database that holds ledgers; `transaction()` is atomic and serialised across hosts."""

    def transaction(self, account: str) -> AbstractContextManager[Cursor]: ...
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
    """One account's view of a ledger, for one provider host. Thread-safe.

    The database is opened at the first method that needs it (a purchase or an adoption), never at
    a preview, a refresh or a destroy; a ledger that cannot be opened raises LedgerError each time.
    """

    def __init__(
        self, open_backend: Callable[[], Backend], name: str, account: str, host: str, clock: Clock = REAL
    ) -> None:
        self._open_backend = open_backend
        self.name = name
        self.account = account
        self.host = host
        self._clock = clock
        self._opening = threading.Lock()
        self._backend: Backend | None = None
        self._changed = threading.Condition()
        self._version = 0
        self._quiet = threading.local()
        self._sighted_lock = threading.Lock()
        self._sighted: dict[str, set[str]] = {}  # per model: the sightings this host has written

    @property
    def backend(self) -> Backend:
        with self._opening:
            if self._backend is None:
                self._backend = self._open_backend()
            return self._backend

    def now(self) -> float:
        return self.backend.now()

    def close(self) -> None:
        with self._opening:
            if self._backend is not None:
                self._backend.close()
                self._backend = None

    @contextmanager
    def _tx(self) -> Iterator[Cursor]:
        """A transaction that may change the ledger; this host's waiters are woken when it did.
        One that turned out to change nothing says so (`_unchanged`): waking a waiter then would only
        make it look again at once, in a loop, while nothing can have changed."""
        self._quiet.value = False
        with self.backend.transaction(self.account) as cur:
            yield cur
        if self._quiet.value:
            return
        with self._changed:
            self._version += 1
            self._changed.notify_all()

    def _unchanged(self) -> None:
        self._quiet.value = True

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
        seen: Iterable[str] = (),
    ) -> int | None:
        """Record a purchase about to be sent; None (nothing recorded) while the model's gate is taken.

        `seen`: the instances this host has seen listed so far. They are recorded in the same step,
        as this host's sightings, so that every host's recovery knows they existed before this
        purchase was sent (a sighting at or before a purchase's `sent_at`, by its host, excludes the
        instance for it). Only ids this host has not recorded before are written.
        """
        with self._sighted_lock:
            known = self._sighted.setdefault(model, set())
            new = sorted(set(seen) - known)
        with self._tx() as cur:
            now = self.now()
            if self._gate_holder(cur, model, now) is not None:
                self._unchanged()
                return None
            for instance_id in new:
                cur.execute(
                    "INSERT INTO sightings (account, model, host, instance_id, seen_at) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (account, host, instance_id) DO NOTHING",
                    (self.account, model, self.host, instance_id, now),
                )
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
            purchase_id = int(cur.fetchone()[0])
        with self._sighted_lock:
            known.update(new)
        return purchase_id

    def sighted_before(self, model: str, records: Sequence[PurchaseRecord]) -> set[tuple[int, str]]:
        """(purchase id, instance id) for every instance the purchase's host had seen listed by the
        time it was sent: instances that cannot be that purchase's, whichever host asks."""
        hosts = sorted({r.host for r in records})
        if not hosts:
            return set()
        marks = ", ".join("?" for _ in hosts)
        with self.backend.transaction(self.account) as cur:
            cur.execute(
                "SELECT host, instance_id, seen_at FROM sightings "
                f"WHERE account = ? AND model = ? AND host IN ({marks})",
                (self.account, model, *hosts),
            )
            rows = cur.fetchall()
        by_host: dict[str, list[tuple[str, float]]] = {}
        for host, instance_id, seen_at in rows:
            by_host.setdefault(host, []).append((instance_id, float(seen_at)))
        return {
            (r.id, instance_id)
            for r in records
            for instance_id, seen_at in by_host.get(r.host, [])
            if seen_at <= r.sent_at
        }

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

    # -- the journal ----------------------------------------------------------------------------
    def journal(
        self,
        action: str,
        model: str,
        instance_id: str,
        owner: Owner,
        *,
        request_id: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Record a change made to an instance (resized, rescheduled, released), for the audit."""
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO events (account, model, instance_id, action, project, stack, resource, host, at, "
                "request_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    self.account,
                    model,
                    instance_id,
                    action,
                    owner.project,
                    owner.stack,
                    owner.resource,
                    self.host,
                    self.now(),
                    request_id,
                    detail,
                ),
            )
            if action == "ReleaseTPMResource":
                cur.execute(
                    "UPDATE claims SET released_at = ? WHERE account = ? AND instance_id = ? AND released_at IS NULL",
                    (self.now(), self.account, instance_id),
                )

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
                self._unchanged()
                return None
            cur.execute(
                "SELECT COUNT(*) FROM purchases WHERE account = ? AND model = ? AND state = ? AND deadline >= ?",
                (self.account, model, State.SENDING.value, now - GRACE_SECONDS),
            )
            if int(cur.fetchone()[0]) > 0:
                self._unchanged()
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
                "SELECT project, stack, resource, released_at FROM claims WHERE account = ? AND instance_id = ?",
                (self.account, instance_id),
            )
            row = cur.fetchone()
            if row is None:
                self._claim(cur, instance_id, model, None, owner, self.now())
                return None
            holder = Owner(row[0], row[1], row[2])
            if row[3] is None and not (holder == owner and owner.resource is not None):
                self._unchanged()
                return holder
            # Let go of (released, or forgotten with the audit), or this very resource's: it takes it.
            cur.execute(
                "UPDATE claims SET project = ?, stack = ?, resource = ?, purchase_id = NULL, claimed_at = ?, "
                "released_at = NULL WHERE account = ? AND instance_id = ?",
                (owner.project, owner.stack, owner.resource, self.now(), self.account, instance_id),
            )
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

    # -- the journal, read by the audit: each query one transaction, none writes ---------------
    def claims(self) -> list[ClaimRecord]:
        """Every instance a purchase, recovery or adoption claimed, held or let go, oldest first."""
        with self.backend.transaction(self.account) as cur:
            return self._claims(cur)

    def purchases(self, states: Iterable[State] | None = None) -> list[PurchaseEntry]:
        """Every purchase recorded (or those in `states`), oldest first, with Qianfan's requestId."""
        with self.backend.transaction(self.account) as cur:
            return self._purchases(cur, states)

    def events(self) -> list[JournalEvent]:
        """Every change journaled (adoptions, resizes, release changes, releases, forgotten claims), in order."""
        with self.backend.transaction(self.account) as cur:
            return self._events(cur)

    def view(self) -> JournalView:
        """Claims, purchases and events as one transaction saw them, with the ledger's time then."""
        with self.backend.transaction(self.account) as cur:
            cur.execute(
                "SELECT COUNT(*) FROM (SELECT account FROM purchases UNION SELECT account FROM claims) AS seen "
                "WHERE account <> ?",
                (self.account,),
            )
            others = int(cur.fetchone()[0])
            return JournalView(
                now=self.now(),
                claims=tuple(self._claims(cur)),
                purchases=tuple(self._purchases(cur, None)),
                events=tuple(self._events(cur)),
                other_accounts=others,
            )

    def forget_claim(self, instance_id: str, why: str) -> ClaimRecord | None:
        """Let go of a claim whose holder's state is gone, so another resource may adopt the instance:
        the claim as it was (None: the ledger has none; already let go: left as it is). The audit's
        `--forget-claim`, the one change made to a ledger outside a purchase; journaled as `forgotten`."""
        with self._tx() as cur:
            found = self._claims(cur, instance_id)
            if not found or found[0].released_at is not None:
                return found[0] if found else None
            claim = found[0]
            now = self.now()
            cur.execute(
                "UPDATE claims SET released_at = ? WHERE account = ? AND instance_id = ? AND released_at IS NULL",
                (now, self.account, instance_id),
            )
            cur.execute(
                "INSERT INTO events (account, model, instance_id, action, project, stack, resource, host, at, "
                "request_id, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    self.account,
                    claim.model,
                    instance_id,
                    FORGOTTEN,
                    claim.owner.project,
                    claim.owner.stack,
                    claim.owner.resource,
                    self.host,
                    now,
                    None,
                    why,
                ),
            )
            return claim

    def _claims(self, cur: Cursor, instance_id: str | None = None) -> list[ClaimRecord]:
        where, params = ("AND instance_id = ? ", (instance_id,)) if instance_id is not None else ("", ())
        cur.execute(
            "SELECT instance_id, model, purchase_id, project, stack, resource, claimed_at, released_at FROM claims "
            f"WHERE account = ? {where}ORDER BY claimed_at, instance_id",
            (self.account, *params),
        )
        return [
            ClaimRecord(
                instance_id=row[0],
                model=row[1],
                purchase_id=None if row[2] is None else int(row[2]),
                owner=Owner(row[3], row[4], row[5]),
                claimed_at=float(row[6]),
                released_at=None if row[7] is None else float(row[7]),
            )
            for row in cur.fetchall()
        ]

    def _purchases(self, cur: Cursor, states: Iterable[State] | None) -> list[PurchaseEntry]:
        wanted = None if states is None else sorted({State(s).value for s in states})
        if wanted == []:
            return []
        where = "" if wanted is None else f"AND state IN ({', '.join('?' for _ in wanted)}) "
        cur.execute(
            f"SELECT {_COLUMNS}, request_id, updated_at FROM purchases WHERE account = ? {where}ORDER BY id",
            (self.account, *(wanted or ())),
        )
        return [PurchaseEntry(_record(row), row[15], float(row[16])) for row in cur.fetchall()]

    def _events(self, cur: Cursor) -> list[JournalEvent]:
        cur.execute(
            "SELECT id, model, instance_id, action, project, stack, resource, host, at, request_id, detail "
            "FROM events WHERE account = ? ORDER BY id",
            (self.account,),
        )
        return [
            JournalEvent(
                id=int(row[0]),
                model=row[1],
                instance_id=row[2],
                action=row[3],
                owner=Owner(row[4], row[5], row[6]),
                host=row[7],
                at=float(row[8]),
                request_id=row[9],
                detail=row[10],
            )
            for row in cur.fetchall()
        ]

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
    "CREATE TABLE IF NOT EXISTS sightings (account TEXT NOT NULL, model TEXT NOT NULL, host TEXT NOT NULL, "
    "instance_id TEXT NOT NULL, seen_at REAL NOT NULL, PRIMARY KEY (account, host, instance_id))",
    "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, account TEXT NOT NULL, "
    "model TEXT NOT NULL, instance_id TEXT NOT NULL, action TEXT NOT NULL, project TEXT, stack TEXT, resource TEXT, "
    "host TEXT NOT NULL, at REAL NOT NULL, request_id TEXT, detail TEXT)",
)


_SQLITE_TABLE_NAMES = frozenset({"purchases", "claims", "gates", "sightings", "events"})


class SqliteBackend:
    """A ledger in one SQLite database: in memory (this process only) or a file (this machine)."""

    def __init__(self, path: str | None, name: str, clock: Clock = REAL) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.name = name
        if path is not None:
            _make_parent(path, name)
            try:
                exists, directory = Path(path).exists(), Path(path).is_dir()
            except OSError as exc:  # a name too long, say
                raise LedgerError(f"{name}: cannot be used ({exc.strerror or exc})") from None
            if directory:
                raise LedgerError(f"{name}: cannot be used (it is a directory; name a file in it)")
            if exists:
                self._inspect(path)  # read-only first: not a byte is written to another program's file
        try:
            self._conn = sqlite3.connect(
                path or ":memory:", timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
            )
            self._conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
            if path is not None:
                _wal(self._conn, name)
                self._conn.execute("PRAGMA synchronous=NORMAL")
            self._initialise()
        except sqlite3.Error as exc:
            raise LedgerError(f"{self.name}: cannot be used ({_sqlite_problem(exc)})") from None

    def now(self) -> float:
        return self._clock.wall()

    @contextmanager
    def transaction(self, account: str) -> Iterator[Cursor]:
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
                raise LedgerError(f"{self.name}: {_sqlite_problem(exc)}") from None
            finally:
                cur.close()

    def _inspect(self, path: str) -> None:
        try:
            conn = sqlite3.connect(f"{Path(path).absolute().as_uri()}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_SECONDS)
        except sqlite3.Error as exc:
            raise LedgerError(f"{self.name}: cannot be used ({_sqlite_problem(exc)})") from None
        try:
            self._refuse_foreign(conn.cursor())
        except sqlite3.Error as exc:
            raise LedgerError(f"{self.name}: cannot be used ({_sqlite_problem(exc)})") from None
        finally:
            conn.close()

    def _refuse_foreign(self, cur: Cursor) -> None:
        application_id = cur.execute("PRAGMA application_id").fetchone()[0]
        version = cur.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in cur.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        tables.discard("sqlite_sequence")
        # Unmarked but with only the ledger's own tables: another host's first open, seen mid-way.
        if application_id != SQLITE_APPLICATION_ID and (application_id != 0 or not tables <= _SQLITE_TABLE_NAMES):
            raise LedgerError(
                f"{self.name}: another program's SQLite database (application id {application_id}, tables: "
                f"{', '.join(sorted(tables)[:8]) or 'none'}); give the ledger a file of its own"
            )
        _check_version(version, self.name)

    def _initialise(self) -> None:
        with self.transaction("") as cur:
            self._refuse_foreign(cur)  # again, inside the write lock: another host may have been first
            for statement in _SQLITE_TABLES:
                cur.execute(statement)
            cur.execute(f"PRAGMA application_id = {SQLITE_APPLICATION_ID}")
            cur.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._conn.close()


#: How long a SQLite ledger waits for another host's transaction (they last milliseconds).
BUSY_TIMEOUT_SECONDS = 10.0


def _wal(conn: sqlite3.Connection, name: str) -> None:
    """Switch to WAL once; SQLite answers "locked" at once (no busy wait) while another connection
    opens the same new file, so that moment is waited out, bounded."""
    deadline = Deadline(BUSY_TIMEOUT_SECONDS)
    attempt = 0
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or not deadline.sleep(min(0.5, 0.02 * 2**attempt), reserve=0.0):
                raise
            attempt += 1


def _make_parent(path: str, name: str) -> None:
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LedgerError(f"{name}: cannot create its directory ({exc.strerror or exc})") from None


def _sqlite_problem(exc: sqlite3.Error) -> str:
    text = " ".join(str(exc).split())
    if "not a database" in text or "malformed" in text:
        return f"{text}: the file is corrupt or not a SQLite database"
    if "locked" in text or "busy" in text:
        return f"{text}: another process held it for more than {BUSY_TIMEOUT_SECONDS:g}s"
    if "readonly" in text or "read-only" in text:
        return f"{text}: the file or its directory is not writable"
    return text


def _check_version(version: int, name: str) -> None:
    if version > SCHEMA_VERSION:
        raise LedgerError(
            f"{name}: made by a newer qianfan-tpm (ledger schema {version}, this one knows {SCHEMA_VERSION}); "
            "upgrade this project or give it a ledger of its own"
        )


def memory_ledger(host: str, clock: Clock = REAL) -> Ledger:
    """This host's own ledger (`qianfan:ledger: off`): coordination inside one host only."""
    name = "ledger in memory"
    return Ledger(lambda: SqliteBackend(None, name, clock), name, account="", host=host, clock=clock)


# -- PostgreSQL -----------------------------------------------------------------------------------------
#: The PostgreSQL schema (namespace) the ledger's tables live in, so a shared database is not cluttered.
PG_SCHEMA = "qianfan_tpm"
_PG_TABLES = (
    f"CREATE TABLE IF NOT EXISTS {PG_SCHEMA}.meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    f"CREATE TABLE IF NOT EXISTS {PG_SCHEMA}.purchases (id BIGSERIAL PRIMARY KEY, account TEXT NOT NULL, "
    "model TEXT NOT NULL, units INTEGER NOT NULL, release_time TEXT, host TEXT NOT NULL, project TEXT, stack TEXT, "
    "resource TEXT, sent_at DOUBLE PRECISION NOT NULL, deadline DOUBLE PRECISION NOT NULL, "
    "server_sent DOUBLE PRECISION, server_ended DOUBLE PRECISION, state TEXT NOT NULL, instance_id TEXT, "
    "request_id TEXT, detail TEXT, updated_at DOUBLE PRECISION NOT NULL)",
    f"CREATE INDEX IF NOT EXISTS purchases_by_model ON {PG_SCHEMA}.purchases (account, model, state)",
    f"CREATE TABLE IF NOT EXISTS {PG_SCHEMA}.claims (account TEXT NOT NULL, instance_id TEXT NOT NULL, "
    "model TEXT NOT NULL, purchase_id BIGINT, project TEXT, stack TEXT, resource TEXT, "
    "claimed_at DOUBLE PRECISION NOT NULL, released_at DOUBLE PRECISION, PRIMARY KEY (account, instance_id))",
    f"CREATE TABLE IF NOT EXISTS {PG_SCHEMA}.gates (account TEXT NOT NULL, model TEXT NOT NULL, holder TEXT, "
    "until DOUBLE PRECISION, PRIMARY KEY (account, model))",
    f"CREATE TABLE IF NOT EXISTS {PG_SCHEMA}.sightings (account TEXT NOT NULL, model TEXT NOT NULL, "
    "host TEXT NOT NULL, instance_id TEXT NOT NULL, seen_at DOUBLE PRECISION NOT NULL, "
    "PRIMARY KEY (account, host, instance_id))",
    f"CREATE TABLE IF NOT EXISTS {PG_SCHEMA}.events (id BIGSERIAL PRIMARY KEY, account TEXT NOT NULL, "
    "model TEXT NOT NULL, instance_id TEXT NOT NULL, action TEXT NOT NULL, project TEXT, stack TEXT, "
    "resource TEXT, host TEXT NOT NULL, at DOUBLE PRECISION NOT NULL, request_id TEXT, detail TEXT)",
)
_PG_APPLICATION = "qianfan-tpm ledger"
#: Bounds of one PostgreSQL connection attempt and of one wait for another host's transaction.
PG_CONNECT_TIMEOUT_SECONDS = 5
PG_LOCK_TIMEOUT_SECONDS = 10


class _QmarkCursor:
    """A psycopg cursor that takes the `?` placeholders the ledger's SQL is written with."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> Any:
        return self._cursor.execute(sql.replace("?", "%s"), tuple(params))

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self._cursor.fetchall())


class PostgresBackend:
    """A ledger in a PostgreSQL database, for hosts on many machines (psycopg 3).

    Transactions of one account are serialised by a transaction-level advisory lock on the account,
    as SQLite's single writer serialises them. Times are the server's clock (measured once, at
    connect, against this machine's), so hosts whose clocks differ agree on every deadline.
    """

    def __init__(self, url: str, name: str, scrub: Callable[[str], str], clock: Clock = REAL) -> None:
        import psycopg  # the ledger's PostgreSQL driver; only imported for a postgresql:// ledger

        self._psycopg = psycopg
        self._clock = clock
        self._lock = threading.Lock()
        self.name = name
        self._scrub = scrub
        try:
            self._conn = psycopg.connect(
                url,
                autocommit=True,
                connect_timeout=PG_CONNECT_TIMEOUT_SECONDS,
                options=f"-c lock_timeout={PG_LOCK_TIMEOUT_SECONDS * 1000} -c search_path={PG_SCHEMA}",
                application_name="qianfan-tpm",
            )
        except psycopg.Error as exc:
            raise LedgerError(f"{name}: cannot connect ({self._problem(exc)})") from None
        try:
            before = clock.wall()
            row = self._conn.execute("SELECT extract(epoch from clock_timestamp())").fetchone()
            after = clock.wall()
            if row is None:
                raise LedgerError(f"{name}: the server did not say what time it is")
            self._offset = float(row[0]) - (before + after) / 2
            self._initialise()
        except psycopg.Error as exc:
            self._conn.close()
            raise LedgerError(f"{name}: cannot be used ({self._problem(exc)})") from None

    def _problem(self, exc: Exception) -> str:
        """The driver's words, one line, scrubbed of the URL's secrets (defence in depth)."""
        return self._scrub(" ".join(str(exc).split())[:300]) or type(exc).__name__

    def now(self) -> float:
        return self._clock.wall() + self._offset

    @contextmanager
    def transaction(self, account: str) -> Iterator[Cursor]:
        with self._lock:
            try:
                with self._conn.transaction():
                    cur = self._conn.cursor()
                    cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{_PG_APPLICATION}/{account}",))
                    yield _QmarkCursor(cur)
            except self._psycopg.Error as exc:
                raise LedgerError(f"{self.name}: {self._problem(exc)}") from None

    def _initialise(self) -> None:
        with self._lock, self._conn.transaction():
            cur = self._conn.cursor()
            cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"{_PG_APPLICATION}/schema",))
            cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (PG_SCHEMA,))
            tables = {row[0] for row in cur.fetchall()}
            if tables:
                application = version = None
                if "meta" in tables:
                    cur.execute(f"SELECT name, value FROM {PG_SCHEMA}.meta")
                    meta: dict[str, str] = {str(row[0]): str(row[1]) for row in cur.fetchall()}
                    application, version = meta.get("application"), meta.get("schema")
                if application != _PG_APPLICATION or version is None or not version.isdigit():
                    raise LedgerError(
                        f"{self.name}: schema {PG_SCHEMA} holds another program's tables "
                        f"({', '.join(sorted(tables)[:8])}); give the ledger a database of its own"
                    )
                _check_version(int(version), self.name)
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {PG_SCHEMA}")
            for statement in _PG_TABLES:
                cur.execute(statement)
            cur.execute(
                f"INSERT INTO {PG_SCHEMA}.meta (name, value) VALUES ('application', %s), ('schema', %s) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                (_PG_APPLICATION, str(SCHEMA_VERSION)),
            )

    def close(self) -> None:
        with self._lock:
            self._conn.close()


def postgres_ledger(
    url: str, name: str, scrub: Callable[[str], str], account: str, host: str, clock: Clock = REAL
) -> Ledger:
    """The ledger of hosts on many machines: `name` shows the URL without its password."""
    return Ledger(lambda: PostgresBackend(url, name, scrub, clock), name, account, host, clock)


# -- which ledger, for which account ----------------------------------------------------------------------
def account_key(settings: Settings) -> str:
    """Hosts coordinate per endpoint and account: the endpoint (for the sandbox, its database) and a
    keyed hash of the access key — HMAC-SHA256 keyed by the secret key, so the ledger holds nothing
    from which the key pair, or even the access key, can be read back or confirmed without the secret key."""
    where = f"sandbox:{Path(settings.sandbox_path).expanduser().absolute()}" if settings.sandbox else settings.endpoint
    access = settings.access_key.reveal() if settings.access_key else ""
    secret = settings.secret_key.reveal() if settings.secret_key else ""
    digest = hmac.new(secret.encode(), f"qianfan-tpm ledger account\n{access}".encode(), hashlib.sha256)
    return f"{where}#{digest.hexdigest()[:32]}"


def ledger_for(settings: Settings, host: str, clock: Clock = REAL) -> Ledger:
    """The ledger `qianfan:ledger` names, opened at its first use."""
    where = settings.ledger
    if where.kind == "postgresql" and where.url is not None:
        url = where.url.reveal()
        return postgres_ledger(
            url, where.describe(), lambda text: redact(text, settings), account_key(settings), host, clock
        )
    if where.kind == "sqlite" and where.path is not None:
        path = str(Path(where.path).expanduser())
        return Ledger(
            lambda: SqliteBackend(path, where.describe(), clock), where.describe(), account_key(settings), host, clock
        )
    return memory_ledger(host, clock)


# -- an existing ledger, for the audit ----------------------------------------------------------------------
def existing_ledger(settings: Settings, host: str, *, writable: bool = False, clock: Clock = REAL) -> Ledger:
    """The ledger `qianfan:ledger` names, as the audit opens it: only if it exists, never created,
    initialised or migrated (LedgerError naming it otherwise), and read-only unless `writable` (the
    audit's `--forget-claim`, which changes rows but never the schema)."""
    where = settings.ledger
    name = where.describe()
    if where.kind == "postgresql" and where.url is not None:
        url = where.url.reveal()
        return Ledger(
            lambda: _ExistingPostgresBackend(url, name, lambda text: redact(text, settings), writable, clock),
            name,
            account_key(settings),
            host,
            clock,
        )
    if where.kind == "sqlite" and where.path is not None:
        path = str(Path(where.path).expanduser())
        return Ledger(
            lambda: _ExistingSqliteBackend(path, name, writable, clock), name, account_key(settings), host, clock
        )
    raise LedgerError(f"{name}: it lived in a provider host's memory and is gone; there is no ledger to read")


_NEVER_CREATED = "the audit never creates one"
_LEDGER_TABLES = frozenset({"purchases", "claims", "gates", "events"})


class _ExistingSqliteBackend(SqliteBackend):
    """A SQLite ledger that exists already, opened without creating or changing anything in it: no
    directory, file, table or pragma is written; read-only (`mode=ro`) unless `writable` (`mode=rw`)."""

    def __init__(self, path: str, name: str, writable: bool, clock: Clock = REAL) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.name = name
        self._writable = writable
        file = Path(path)
        if not file.is_file():
            problem = "is a directory" if file.is_dir() else "does not exist"
            raise LedgerError(
                f"{name}: {problem} (a provider host creates the ledger at its first purchase); {_NEVER_CREATED}"
            )
        mode = "rw" if writable else "ro"
        try:
            self._conn = sqlite3.connect(
                f"{file.absolute().as_uri()}?mode={mode}",
                uri=True,
                timeout=BUSY_TIMEOUT_SECONDS,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise LedgerError(f"{name}: cannot be used ({_sqlite_problem(exc)})") from None
        try:
            self._conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
            cur = self._conn.cursor()
            self._refuse_foreign(cur)
            tables = {row[0] for row in cur.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not tables >= _LEDGER_TABLES:
                raise LedgerError(f"{name}: holds no ledger (an empty or half-made file); {_NEVER_CREATED}")
        except sqlite3.Error as exc:
            self._conn.close()
            raise LedgerError(f"{name}: cannot be used ({_sqlite_problem(exc)})") from None
        except LedgerError:
            self._conn.close()
            raise

    @contextmanager
    def transaction(self, account: str) -> Iterator[Cursor]:
        if self._writable:
            with super().transaction(account) as cur:
                yield cur
            return
        with self._lock:  # a read: a deferred transaction is one snapshot, and blocks no writer
            cur = self._conn.cursor()
            try:
                cur.execute("BEGIN")
                try:
                    yield cur
                finally:
                    cur.execute("ROLLBACK")
            except sqlite3.Error as exc:
                raise LedgerError(f"{self.name}: {_sqlite_problem(exc)}") from None
            finally:
                cur.close()


class _ExistingPostgresBackend(PostgresBackend):
    """A PostgreSQL ledger that exists already: its schema is checked, never created or migrated, and
    unless `writable` the session is read-only, so the server itself refuses any write."""

    def __init__(self, url: str, name: str, scrub: Callable[[str], str], writable: bool, clock: Clock = REAL) -> None:
        self._writable = writable
        super().__init__(url, name, scrub, clock)

    def _initialise(self) -> None:
        try:
            with self._lock, self._conn.transaction():
                cur = self._conn.cursor()
                cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (PG_SCHEMA,))
                tables = {str(row[0]) for row in cur.fetchall()}
                if not tables:
                    raise LedgerError(f"{self.name}: holds no ledger (no schema {PG_SCHEMA}); {_NEVER_CREATED}")
                meta: dict[str, str] = {}
                if "meta" in tables:
                    cur.execute(f"SELECT name, value FROM {PG_SCHEMA}.meta")
                    meta = {str(row[0]): str(row[1]) for row in cur.fetchall()}
                version = meta.get("schema")
                if meta.get("application") != _PG_APPLICATION or version is None or not version.isdigit():
                    raise LedgerError(
                        f"{self.name}: schema {PG_SCHEMA} holds another program's tables "
                        f"({', '.join(sorted(tables)[:8])}), not a ledger"
                    )
                _check_version(int(version), self.name)
                if not tables >= _LEDGER_TABLES:
                    raise LedgerError(f"{self.name}: schema {PG_SCHEMA} holds a half-made ledger; {_NEVER_CREATED}")
            if not self._writable:
                self._conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        except LedgerError:
            self._conn.close()
            raise
