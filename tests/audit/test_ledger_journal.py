"""The ledger's journal as the audit reads it (providers/ledger.py), on SQLite and a real PostgreSQL:
the read-only queries, an existing ledger opened without creating or changing anything, and the
audit's one write, a forgotten claim.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from providers.ledger import (
    FORGOTTEN,
    GRACE_SECONDS,
    PG_SCHEMA,
    Ledger,
    LedgerError,
    Owner,
    State,
    existing_ledger,
    ledger_for,
)
from providers.settings import Settings, load_settings

MODEL = "ernie-speed-8k"
DEV = Owner("qianfan-tpm", "dev", "chat")
PROD = Owner("qianfan-tpm", "prod", "chat")
LOST = Owner("qianfan-tpm", "prod", "lost")


def settings_for(location: str, access_key: str = "AKjournal") -> Settings:
    return load_settings(
        {
            "qianfan:endpoint": "http://127.0.0.1:9",
            "qianfan:accessKey": access_key,
            "qianfan:secretKey": "SKjournal",
            "qianfan:ledger": location,
        },
        {},
    )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "ledger.sqlite3")
    url: str = request.getfixturevalue("fresh_postgres_db")
    return url


@pytest.fixture
def opened() -> Iterator[Callable[[Ledger], Ledger]]:
    made: list[Ledger] = []

    def keep(ledger: Ledger) -> Ledger:
        made.append(ledger)
        return ledger

    yield keep
    for ledger in made:
        ledger.close()


def buy(ledger: Ledger, owner: Owner, instance_id: str | None, *, seconds: float = 30.0, units: int = 1) -> int:
    purchase = ledger.begin(MODEL, units, None, owner, seconds=seconds, server_sent=None, server_ended=None)
    assert purchase is not None
    if instance_id is not None:
        ledger.ended(purchase, State.BOUGHT, instance_id=instance_id, request_id=f"req-{instance_id}")
    return purchase


def test_the_journal_names_who_bought_adopted_and_let_go_of_what(
    location: str, opened: Callable[[Ledger], Ledger]
) -> None:
    host_a = opened(ledger_for(settings_for(location), "host-a"))
    host_b = opened(ledger_for(settings_for(location), "host-b"))
    bought = buy(host_a, DEV, "tpm-a")
    lost = buy(host_b, LOST, None)
    host_b.ended(lost, State.UNKNOWN, detail="the listing failed")
    assert host_b.adopt("tpm-console", MODEL, PROD) is None
    host_a.journal("ResizeTPMResource", MODEL, "tpm-a", DEV, request_id="req-resize")
    host_b.journal("ReleaseTPMResource", MODEL, "tpm-console", PROD, request_id="req-release")
    opened(ledger_for(settings_for(location, access_key="AKother"), "host-c")).adopt("tpm-x", MODEL, DEV)

    audit = opened(existing_ledger(settings_for(location), "audit"))
    claims = {c.instance_id: c for c in audit.claims()}
    assert set(claims) == {"tpm-a", "tpm-console"}  # another account's claim is not this account's
    assert (claims["tpm-a"].owner, claims["tpm-a"].purchase_id, claims["tpm-a"].released_at) == (DEV, bought, None)
    assert claims["tpm-console"].purchase_id is None and claims["tpm-console"].released_at is not None
    entries = audit.purchases()
    assert [(e.record.id, e.record.state, e.record.owner, e.request_id) for e in entries] == [
        (bought, State.BOUGHT, DEV, "req-tpm-a"),
        (lost, State.UNKNOWN, LOST, None),
    ]
    assert entries[1].record.host == "host-b" and entries[1].record.detail == "the listing failed"
    assert [e.record.id for e in audit.purchases(states=[State.UNKNOWN, State.ORPHANED])] == [lost]
    assert audit.purchases(states=[]) == []
    events = audit.events()
    assert [(e.action, e.instance_id, e.owner, e.host, e.request_id) for e in events] == [
        ("ResizeTPMResource", "tpm-a", DEV, "host-a", "req-resize"),
        ("ReleaseTPMResource", "tpm-console", PROD, "host-b", "req-release"),
    ]
    view = audit.view()
    assert (view.claims, view.purchases, view.events) == (tuple(audit.claims()), tuple(entries), tuple(events))
    assert view.other_accounts == 1 and abs(view.now - host_a.now()) < 5


def test_a_forgotten_claim_lets_another_resource_adopt_the_instance(
    location: str, opened: Callable[[Ledger], Ledger]
) -> None:
    host = opened(ledger_for(settings_for(location), "host-a"))
    buy(host, LOST, "tpm-lost")
    assert host.adopt("tpm-lost", MODEL, DEV) == LOST  # refused: prod/lost holds it
    audit = opened(existing_ledger(settings_for(location), "audit/1", writable=True))
    before = audit.forget_claim("tpm-lost", "its holder's state is gone")
    assert before is not None and before.owner == LOST and before.released_at is None
    [claim] = audit.claims()
    assert claim.released_at is not None
    [event] = audit.events()
    assert (event.action, event.owner, event.host, event.detail) == (
        FORGOTTEN,
        LOST,
        "audit/1",
        "its holder's state is gone",
    )
    assert audit.forget_claim("tpm-lost", "again") == claim  # let go already: nothing more is written
    assert audit.forget_claim("tpm-none", "no such claim") is None
    assert len(audit.events()) == 1
    assert host.adopt("tpm-lost", MODEL, DEV) is None
    [taken] = audit.claims()
    assert (taken.owner, taken.released_at, taken.purchase_id) == (DEV, None, None)


def test_an_abandoned_purchase_reads_as_abandoned(location: str, opened: Callable[[Ledger], Ledger]) -> None:
    host = opened(ledger_for(settings_for(location), "host-dead"))
    buy(host, DEV, None, seconds=0.1)
    audit = opened(existing_ledger(settings_for(location), "audit"))
    [entry] = audit.purchases(states=[State.SENDING])
    assert not entry.record.abandoned(audit.now())
    assert entry.record.abandoned(audit.now() + 0.1 + GRACE_SECONDS + 0.1)


def test_the_reading_audit_changes_not_a_byte_of_a_sqlite_ledger(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    host = ledger_for(settings_for(str(path)), "host-a")
    buy(host, DEV, "tpm-a")
    host.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    audit = existing_ledger(settings_for(str(path)), "audit")
    try:
        audit.view()
        with pytest.raises(LedgerError, match="readonly"):
            audit.forget_claim("tpm-a", "a reader may not write")
    finally:
        audit.close()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


@pytest.mark.slow
def test_a_reading_audit_cannot_write_to_postgresql(fresh_postgres_db: str) -> None:
    host = ledger_for(settings_for(fresh_postgres_db), "host-a")
    audit = existing_ledger(settings_for(fresh_postgres_db), "audit")
    try:
        buy(host, DEV, "tpm-a")
        with pytest.raises(LedgerError, match="read-only transaction"):
            audit.forget_claim("tpm-a", "a reader may not write")
        [claim] = audit.claims()
        assert claim.released_at is None and audit.events() == []
    finally:
        host.close()
        audit.close()


@pytest.mark.parametrize("writable", [False, True])
def test_a_missing_sqlite_ledger_is_refused_and_not_created(tmp_path: Path, writable: bool) -> None:
    path = tmp_path / "nowhere" / "ledger.sqlite3"
    ledger = existing_ledger(settings_for(str(path)), "audit", writable=writable)
    with pytest.raises(LedgerError) as refused:
        ledger.claims()
    assert str(refused.value) == (
        f"ledger {path}: does not exist (a provider host creates the ledger at its first purchase); "
        "the audit never creates one"
    )
    assert not path.parent.exists()


def test_a_sqlite_file_without_a_ledger_is_refused_unchanged(tmp_path: Path) -> None:
    empty = tmp_path / "empty.sqlite3"
    empty.write_bytes(b"")
    with pytest.raises(LedgerError, match="holds no ledger"):
        existing_ledger(settings_for(str(empty)), "audit", writable=True).claims()
    assert empty.read_bytes() == b""
    foreign = tmp_path / "foreign.sqlite3"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.close()
    before = foreign.read_bytes()
    with pytest.raises(LedgerError, match="another program's SQLite database"):
        existing_ledger(settings_for(str(foreign)), "audit").claims()
    assert foreign.read_bytes() == before


@pytest.mark.slow
def test_a_postgresql_database_without_a_ledger_is_refused_and_nothing_is_created(fresh_postgres_db: str) -> None:
    import psycopg

    ledger = existing_ledger(settings_for(fresh_postgres_db), "audit", writable=True)
    with pytest.raises(LedgerError) as refused:
        ledger.claims()
    message = str(refused.value)
    assert message.endswith(f"holds no ledger (no schema {PG_SCHEMA}); the audit never creates one")
    assert message.startswith("ledger postgresql://***@127.0.0.1:")
    with psycopg.connect(fresh_postgres_db) as conn:
        assert conn.execute(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = %s", (PG_SCHEMA,)
        ).fetchone() == (0,)


def test_an_off_ledger_has_nothing_to_read() -> None:
    with pytest.raises(LedgerError, match="gone; there is no ledger to read"):
        existing_ledger(settings_for("off"), "audit")
