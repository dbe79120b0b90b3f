"""The purchase ledger (providers/ledger.py) on both backends: SQLite files and a real PostgreSQL.

Two `Ledger` objects with different host ids on one database stand for two provider hosts (two
stacks, two machines); every guarantee the purchase algorithm relies on is checked across them:
the gate, claims unique by constraint, abandoned records, the journal, and a ledger that cannot be
used refused in one line that names it and no secret.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from providers.deadline import Deadline
from providers.ledger import (
    GRACE_SECONDS,
    Ledger,
    LedgerError,
    Owner,
    State,
    ledger_for,
)
from providers.settings import Secret, Settings, load_settings

MODEL = "ernie-speed-8k"
OWNER_A = Owner("qianfan-tpm", "dev", "chat")
OWNER_B = Owner("qianfan-tpm", "prod", "chat")

Factory = Callable[[str], Ledger]


def settings_for(location: str) -> Settings:
    return load_settings(
        {
            "qianfan:endpoint": "http://127.0.0.1:9",
            "qianfan:accessKey": "AKledger",
            "qianfan:secretKey": "SKledger",
            "qianfan:ledger": location,
        },
        {},
    )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def ledgers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Factory]:
    """Make ledgers of hosts that share one database, on each backend."""
    if request.param == "sqlite":
        location = str(tmp_path / "ledger.sqlite3")
    else:
        location = request.getfixturevalue("fresh_postgres_db")
    made: list[Ledger] = []

    def make(host: str) -> Ledger:
        ledger = ledger_for(settings_for(location), host)
        made.append(ledger)
        return ledger

    yield make
    for ledger in made:
        ledger.close()


def begin(ledger: Ledger, seconds: float = 30.0, owner: Owner = OWNER_A, units: int = 1) -> int | None:
    return ledger.begin(MODEL, units, None, owner, seconds=seconds, server_sent=None, server_ended=None)


# -- the gate ---------------------------------------------------------------------------------------
def test_a_purchase_in_flight_anywhere_keeps_every_host_from_taking_the_gate(ledgers: Factory) -> None:
    a, b = ledgers("host-a"), ledgers("host-b")
    purchase = begin(a)
    assert purchase is not None
    assert b.take_gate(MODEL, 10) is None and a.take_gate(MODEL, 10) is None
    a.ended(purchase, State.UNCERTAIN, detail="lost")
    pool = b.take_gate(MODEL, 10)
    assert pool is not None and [r.id for r in pool] == [purchase] and pool[0].host == "host-a"


def test_no_host_sends_while_another_holds_the_gate(ledgers: Factory) -> None:
    a, b = ledgers("host-a"), ledgers("host-b")
    assert b.take_gate(MODEL, 10) == []
    assert begin(a) is None and not a.gate_open(MODEL)
    assert a.take_gate(MODEL, 10) is None  # nor takes it
    b.leave_gate(MODEL)
    assert a.gate_open(MODEL) and begin(a) is not None


def test_another_model_is_another_gate(ledgers: Factory) -> None:
    a, b = ledgers("host-a"), ledgers("host-b")
    assert b.take_gate(MODEL, 10) == []
    assert a.begin("ernie-lite-8k", 1, None, OWNER_A, seconds=30, server_sent=None, server_ended=None) is not None


@pytest.mark.slow
def test_a_host_that_died_blocks_nobody_past_its_deadline(ledgers: Factory) -> None:
    a, b = ledgers("host-a"), ledgers("host-b")
    begin(a, seconds=0.2)  # host A dies mid-purchase: its record stays `sending`
    assert b.take_gate(MODEL, 10) is None
    time.sleep(0.2 + GRACE_SECONDS + 0.2)
    pool = b.take_gate(MODEL, 10)
    assert pool is not None and len(pool) == 1 and pool[0].abandoned(b.now())


@pytest.mark.slow
def test_a_gate_whose_holder_died_lapses(ledgers: Factory) -> None:
    a, b = ledgers("host-a"), ledgers("host-b")
    assert a.take_gate(MODEL, 0.2) == []
    assert begin(b) is None
    time.sleep(0.2 + GRACE_SECONDS + 0.2)
    assert begin(b) is not None


@pytest.mark.slow
def test_the_gate_holds_under_a_race_of_many_hosts(ledgers: Factory) -> None:
    """Eight hosts at once begin purchases, end them, and take and leave the gate: no purchase is
    ever begun while a gate is held, and no gate is taken while a purchase is in flight."""
    hosts = [ledgers(f"host-{n}") for n in range(8)]
    events: list[tuple[str, float, float]] = []  # (kind, start, end) of each exclusive span
    lock = threading.Lock()

    def work(ledger: Ledger, n: int) -> None:
        for round_ in range(6):
            if (n + round_) % 3 == 0:
                # A recovery waits until it gets the gate (bounded), as purchase.py's does.
                if ledger.wait_until(lambda: ledger.take_gate(MODEL, 10), Deadline(20)) is not None:
                    start = time.monotonic()
                    time.sleep(0.005)
                    end = time.monotonic()
                    ledger.leave_gate(MODEL)
                    with lock:
                        events.append(("gate", start, end))
            else:
                purchase = begin(ledger)
                if purchase is not None:
                    start = time.monotonic()
                    time.sleep(0.005)
                    end = time.monotonic()
                    ledger.ended(purchase, State.REFUSED, detail="test")
                    with lock:
                        events.append(("purchase", start, end))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda pair: work(*pair), [(h, n) for n, h in enumerate(hosts)]))
    gates = [(s, e) for kind, s, e in events if kind == "gate"]
    purchases = [(s, e) for kind, s, e in events if kind == "purchase"]
    assert gates and purchases
    for gs, ge in gates:
        for ps, pe in purchases:
            assert pe <= gs or ge <= ps, "a purchase was in flight while a gate was held"
        assert sum(1 for s, e in gates if s < ge and gs < e) == 1, "two gates held at once"


# -- claims -----------------------------------------------------------------------------------------
def test_an_instance_is_claimed_with_the_answer_and_never_twice(ledgers: Factory) -> None:
    a, b = ledgers("host-a"), ledgers("host-b")
    first, second = begin(a), begin(b, owner=OWNER_B)
    assert first is not None and second is not None
    a.ended(first, State.BOUGHT, instance_id="tpm-00000001", request_id="r-1")
    assert b.claimed(["tpm-00000001", "tpm-00000002"]) == {"tpm-00000001"}
    with pytest.raises(LedgerError, match="tpm-00000001 is already held by TPMQuota 'chat' of stack dev"):
        b.ended(second, State.RECOVERED, instance_id="tpm-00000001")
    assert b.record(second).state is State.SENDING, "a refused claim changes nothing"


def test_an_adoption_of_an_instance_another_resource_holds_is_refused(ledgers: Factory) -> None:
    a, b = ledgers("host-a"), ledgers("host-b")
    purchase = begin(a)
    assert purchase is not None
    a.ended(purchase, State.BOUGHT, instance_id="tpm-00000001")
    assert b.adopt("tpm-00000001", MODEL, OWNER_B) == OWNER_A
    assert a.adopt("tpm-00000001", MODEL, OWNER_A) is None  # its own resource adopting it again
    assert b.adopt("tpm-console1", MODEL, OWNER_B) is None  # nobody held it
    assert a.adopt("tpm-console1", MODEL, OWNER_A) == OWNER_B


def test_a_released_instance_may_be_adopted(ledgers: Factory) -> None:
    a, b = ledgers("host-a"), ledgers("host-b")
    assert a.adopt("tpm-00000001", MODEL, OWNER_A) is None
    a.journal("ReleaseTPMResource", MODEL, "tpm-00000001", OWNER_A, request_id="r-9")
    assert b.adopt("tpm-00000001", MODEL, OWNER_B) is None
    assert a.adopt("tpm-00000001", MODEL, OWNER_A) == OWNER_B


def test_claims_hold_under_a_race_of_many_hosts(ledgers: Factory) -> None:
    """Sixteen hosts claim the same eight instances at once: each is held by exactly one."""
    hosts = [ledgers(f"host-{n}") for n in range(16)]
    ids = [f"tpm-{n:08d}" for n in range(8)]

    def claim_all(n: int) -> list[str]:
        won = []
        owner = Owner("p", f"stack-{n}", "r")
        for instance_id in ids:
            if hosts[n].adopt(instance_id, MODEL, owner) is None:
                won.append(instance_id)
        return won

    with ThreadPoolExecutor(max_workers=16) as pool:
        won = [w for ws in pool.map(claim_all, range(16)) for w in ws]
    assert sorted(won) == ids


# -- what a record says -------------------------------------------------------------------------------
def test_a_record_keeps_who_what_and_when(ledgers: Factory) -> None:
    a = ledgers("host-a")
    before = a.now()
    purchase = a.begin(MODEL, 3, "2031-01-01T00:00:00+08:00", OWNER_A, seconds=30, server_sent=1.5, server_ended=2.5)
    assert purchase is not None
    record = a.record(purchase)
    assert (record.model, record.units, record.release_time, record.owner, record.host) == (
        MODEL,
        3,
        "2031-01-01T00:00:00+08:00",
        OWNER_A,
        "host-a",
    )
    assert before - 1 <= record.sent_at <= a.now() + 1 and record.deadline == pytest.approx(record.sent_at + 30)
    assert (record.server_sent, record.server_ended, record.state) == (1.5, 2.5, State.SENDING)
    a.ended(purchase, State.UNCERTAIN, detail="HTTP 503", server_ended=9.0)
    record = a.record(purchase)
    assert (record.state, record.detail, record.server_ended) == (State.UNCERTAIN, "HTTP 503", 9.0)


def test_accounts_do_not_see_each_other(tmp_path: Path) -> None:
    location = str(tmp_path / "ledger.sqlite3")
    mine = ledger_for(settings_for(location), "host-a")
    other_settings = load_settings(
        {
            "qianfan:endpoint": "http://127.0.0.1:9",
            "qianfan:accessKey": "AKother",
            "qianfan:secretKey": "SKother",
            "qianfan:ledger": location,
        },
        {},
    )
    other = ledger_for(other_settings, "host-b")
    assert begin(other) is not None
    assert mine.take_gate(MODEL, 10) == [], "another account's purchase is not this account's"
    assert mine.account != other.account
    for key in ("AKledger", "SKledger", "AKother", "SKother"):
        assert key not in mine.account and key not in other.account
    raw = (tmp_path / "ledger.sqlite3").read_bytes()
    assert b"AKledger" not in raw and b"SKledger" not in raw


# -- a ledger that cannot be used ---------------------------------------------------------------------
def test_a_foreign_sqlite_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "theirs.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    ledger = ledger_for(settings_for(str(path)), "host-a")
    with pytest.raises(LedgerError) as caught:
        begin(ledger)
    assert "another program's SQLite database" in str(caught.value) and str(path) in str(caught.value)
    assert path.read_bytes() == before


def test_a_corrupt_sqlite_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    path.write_bytes(b"not a database at all, " * 100)
    with pytest.raises(LedgerError) as caught:
        begin(ledger_for(settings_for(str(path)), "host-a"))
    assert str(path) in str(caught.value) and "corrupt" in str(caught.value)
    assert len(str(caught.value).splitlines()) == 1


@pytest.mark.parametrize(
    ("name", "problem"),
    [("", "it is a directory"), ("x" * 300 + ".sqlite3", "File name too long")],
    ids=["a directory", "a name too long"],
)
def test_a_path_that_cannot_be_a_file_is_refused_naming_it(tmp_path: Path, name: str, problem: str) -> None:
    path = tmp_path / name if name else tmp_path
    with pytest.raises(LedgerError) as caught:
        begin(ledger_for(settings_for(str(path)), "host-a"))
    message = str(caught.value)
    assert message.startswith(f"ledger {path}: cannot be used") and problem in message, message
    assert len(message.splitlines()) == 1 and list(tmp_path.iterdir()) == []


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    begin(ledger_for(settings_for(str(path)), "host-a"))
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(LedgerError, match="made by a newer qianfan-tpm"):
        begin(ledger_for(settings_for(str(path)), "host-b"))


@pytest.mark.slow
def test_a_locked_sqlite_ledger_is_refused_within_its_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import providers.ledger as ledger_module

    path = tmp_path / "ledger.sqlite3"
    begin(ledger_for(settings_for(str(path)), "host-a"))
    monkeypatch.setattr(ledger_module, "BUSY_TIMEOUT_SECONDS", 0.5)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds it and never lets go
    try:
        started = time.monotonic()
        with pytest.raises(LedgerError) as caught:
            begin(ledger_for(settings_for(str(path)), "host-b"))
        assert time.monotonic() - started < 10
        assert str(path) in str(caught.value) and "locked" in str(caught.value)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


@pytest.mark.slow
def test_a_foreign_postgresql_schema_is_refused(fresh_postgres_db: str) -> None:
    import psycopg

    with psycopg.connect(fresh_postgres_db, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA qianfan_tpm")
        conn.execute("CREATE TABLE qianfan_tpm.purchases (id INTEGER)")
    with pytest.raises(LedgerError, match="another program's tables"):
        begin(ledger_for(settings_for(fresh_postgres_db), "host-a"))


def test_an_unreachable_postgresql_is_one_line_without_its_password() -> None:
    url = "postgresql://ledger:s3cr3t-p%40ss@127.0.0.1:9/ledger"
    ledger = ledger_for(settings_for(url), "host-a")
    started = time.monotonic()
    with pytest.raises(LedgerError) as caught:
        begin(ledger)
    text = str(caught.value)
    assert time.monotonic() - started < 15
    assert "s3cr3t" not in text and "p@ss" not in text and "p%40ss" not in text
    assert text.startswith("ledger postgresql://***@127.0.0.1:9/ledger: cannot connect") and "\n" not in text


@pytest.mark.slow
def test_a_wrong_postgresql_password_is_refused_without_echoing_it(fresh_postgres_db: str) -> None:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(fresh_postgres_db)
    wrong = urlunsplit(parts._replace(netloc=f"{parts.username}:not-the-password@{parts.hostname}:{parts.port}"))
    with pytest.raises(LedgerError) as caught:
        begin(ledger_for(settings_for(wrong), "host-a"))
    assert "not-the-password" not in str(caught.value) and "password authentication failed" in str(caught.value)


@pytest.mark.slow
def test_postgresql_time_is_the_servers(fresh_postgres_db: str) -> None:
    ledger = ledger_for(settings_for(fresh_postgres_db), "host-a")
    assert abs(ledger.now() - time.time()) < 5  # the same machine here: the same clock, within the RTT


@pytest.mark.slow
def test_waiting_for_the_gate_is_bounded_and_wakes_when_it_opens(ledgers: Factory) -> None:
    a, b = ledgers("host-a"), ledgers("host-b")
    assert a.take_gate(MODEL, 30) == []
    started = time.monotonic()
    assert b.wait_until(lambda: True if b.gate_open(MODEL) else None, Deadline(0.5)) is None
    assert 0.4 <= time.monotonic() - started < 3
    threading.Timer(0.3, lambda: a.leave_gate(MODEL)).start()
    assert b.wait_until(lambda: True if b.gate_open(MODEL) else None, Deadline(10)) is True


@pytest.mark.slow
def test_the_secret_url_is_redacted_from_settings(fresh_postgres_db: str) -> None:
    settings = settings_for(fresh_postgres_db)
    assert settings.ledger.url == Secret(fresh_postgres_db)
    assert "postgresql://***@127.0.0.1" in settings.ledger.describe()
    assert fresh_postgres_db not in repr(settings)
