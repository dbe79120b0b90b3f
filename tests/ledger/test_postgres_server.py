"""The PostgreSQL test server is what the ledger's tests take it for: a real server that enforces
constraints across connections, answers on 127.0.0.1 only, wants the URL's password, and hands out
databases that do not see each other."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import psycopg
import pytest
from psycopg import errors

from hostdriver.postgres import PostgresServer, PostgresUnavailable
from tests.support.figures import record

pytestmark = pytest.mark.slow  # the PostgreSQL server


def _database(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def test_unique_constraint_holds_across_connections(fresh_postgres_db: str) -> None:
    with psycopg.connect(fresh_postgres_db, autocommit=True) as setup:
        setup.execute("CREATE TABLE claims (resource text NOT NULL, instance_id text NOT NULL UNIQUE)")
    outcome: list[Exception | None] = []

    def claim_as_second_host() -> None:
        try:
            with psycopg.connect(fresh_postgres_db) as second:
                second.execute("INSERT INTO claims VALUES ('second', 'tpm-1')")
            outcome.append(None)
        except Exception as error:  # noqa: BLE001 - handed to the test's thread, which reports it
            outcome.append(error)

    with psycopg.connect(fresh_postgres_db) as first:
        first.execute("INSERT INTO claims VALUES ('first', 'tpm-1')")  # open transaction, not committed
        other_host = threading.Thread(target=claim_as_second_host)
        other_host.start()
        # The second insert must wait on the first's uncommitted row, not succeed beside it.
        deadline = time.monotonic() + 30
        with psycopg.connect(fresh_postgres_db, autocommit=True) as watcher:
            while time.monotonic() < deadline:
                waiting = watcher.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE wait_event_type = 'Lock' AND datname = current_database()"
                ).fetchone()
                if waiting == (1,) or outcome:
                    break
                time.sleep(0.02)
        assert not outcome, f"the second insert finished while the first was uncommitted: {outcome}"
        assert waiting == (1,), "the second insert never waited for the first"
    other_host.join(30)
    assert not other_host.is_alive(), "the second insert was still waiting after the first committed"
    assert len(outcome) == 1 and isinstance(outcome[0], errors.UniqueViolation), outcome
    with psycopg.connect(fresh_postgres_db) as check:
        assert check.execute("SELECT resource, instance_id FROM claims").fetchall() == [("first", "tpm-1")]


def test_listens_on_loopback_only(postgres_server: PostgresServer) -> None:
    # Every socket of the postmaster (TCP, UDP, Unix): exactly one, listening on 127.0.0.1.
    sockets = psutil.Process(postgres_server.pid).net_connections(kind="all")
    assert [(s.family, s.status, tuple(s.laddr)) for s in sockets] == [
        (socket.AF_INET, psutil.CONN_LISTEN, ("127.0.0.1", postgres_server.port))
    ]
    others = [
        a.address
        for addresses in psutil.net_if_addrs().values()
        for a in addresses
        if a.family == socket.AF_INET and not a.address.startswith("127.")
    ]
    for address in others:
        with pytest.raises(ConnectionRefusedError), socket.create_connection((address, postgres_server.port), 5):
            pass
    with psycopg.connect(postgres_server.url) as conn:
        settings = conn.execute(
            "SELECT current_setting('listen_addresses'), current_setting('unix_socket_directories')"
        ).fetchone()
    assert settings == ("127.0.0.1", "")


def test_the_urls_password_is_required(
    postgres_server: PostgresServer, fresh_postgres_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    parts = urlsplit(fresh_postgres_db)
    assert parts.password and len(parts.password) >= 32
    for url in (
        fresh_postgres_db.replace(f":{parts.password}@", ":wrong-password@"),
        fresh_postgres_db.replace(f":{parts.password}@", "@"),
    ):
        with pytest.raises(psycopg.OperationalError) as refused:
            psycopg.connect(url, passfile="/dev/null", connect_timeout=10)
        message = str(refused.value)
        assert "password authentication failed" in message or "no password supplied" in message, message
        assert parts.password not in message
    assert parts.password not in repr(postgres_server)
    with psycopg.connect(fresh_postgres_db) as conn:
        assert conn.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user").fetchone() == (
            "ledger",
            False,
        )


def test_fresh_databases_are_empty_and_isolated(postgres_server: PostgresServer, fresh_postgres_db: str) -> None:
    started = time.monotonic()
    other = postgres_server.create_database()
    record("PostgreSQL test server", "fresh database (CREATE DATABASE)", f"{time.monotonic() - started:.3f} s")
    try:
        for url in (fresh_postgres_db, other):
            with psycopg.connect(url) as conn:
                tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()
                assert tables == (0,), f"{_database(url)} is not empty"
        with psycopg.connect(fresh_postgres_db) as conn:
            conn.execute("CREATE TABLE claims (instance_id text PRIMARY KEY)")
            conn.execute("INSERT INTO claims VALUES ('tpm-1')")
        with psycopg.connect(other) as conn:
            assert conn.execute("SELECT to_regclass('claims')").fetchone() == (None,)
            conn.execute("CREATE TABLE claims (instance_id text PRIMARY KEY)")
            conn.execute("INSERT INTO claims VALUES ('tpm-1')")  # no conflict with the other database's row
    finally:
        postgres_server.drop_database(_database(other))
    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        psycopg.connect(other, connect_timeout=10)


def test_stop_leaves_nothing_behind() -> None:
    with PostgresServer() as server:
        directory, port, pid = server.log_path.parent, server.port, server.pid
        assert server.log_path.exists()
    assert not directory.exists()
    assert not psutil.pid_exists(pid)
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), 5):
        pass


def test_missing_binaries_are_named(tmp_path: Path) -> None:
    with pytest.raises(PostgresUnavailable, match=f"no PostgreSQL server binary in {tmp_path}"):
        PostgresServer(bin_dir=tmp_path).start()
