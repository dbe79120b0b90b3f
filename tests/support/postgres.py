"""The PostgreSQL test server's fixtures, exposed to every tier by tests/conftest.py; the server
itself is `hostdriver.postgres.PostgresServer` (shared with the benchmark).

`postgres_server`: one server per session, started by the first test that asks (its `url` is the
superuser's); `fresh_postgres_db`: a new empty database per test. A server that cannot start fails the test with
the reason: CI must prove PostgreSQL. Only with QIANFAN_TPM_NO_POSTGRES=1 does it skip instead,
with the same reason.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator

import pytest

from hostdriver.postgres import PostgresServer, PostgresUnavailable

NO_POSTGRES_ENV = "QIANFAN_TPM_NO_POSTGRES"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One server for the whole session, started when the first test asks for it."""
    from tests.support.figures import record

    server = PostgresServer()
    started = time.monotonic()
    try:
        server.start()
        reason = None
    except PostgresUnavailable as error:
        reason = f"the PostgreSQL test server could not start: {error}"
    if reason is not None:  # outside the except: the report is the reason, not a chain of tracebacks
        if os.environ.get(NO_POSTGRES_ENV) == "1":
            pytest.skip(f"{reason} ({NO_POSTGRES_ENV}=1)")
        pytest.fail(f"{reason} (set {NO_POSTGRES_ENV}=1 to skip these tests instead)", pytrace=False)
    record("PostgreSQL test server", "start (initdb, ready on 127.0.0.1)", f"{time.monotonic() - started:.2f} s")
    yield server
    stopping = time.monotonic()
    server.stop()
    record("PostgreSQL test server", "fast shutdown", f"{time.monotonic() - stopping:.2f} s")


@pytest.fixture
def fresh_postgres_db(postgres_server: PostgresServer) -> Iterator[str]:
    """A new, empty database for this test only, as the non-superuser `ledger`; dropped afterwards."""
    name = "test_" + secrets.token_hex(6)
    url = postgres_server.create_database(name)
    yield url
    postgres_server.drop_database(name)
