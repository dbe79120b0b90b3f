"""Shared fixtures: provider hosts configured against an embedded sandbox, a secrets scan, and the
PostgreSQL test server (tests/support/postgres.py, the server itself in hostdriver/postgres.py).

Every test that starts a host ends with a scan of everything that left the provider (RPC answers,
error texts, the host's stderr, request bodies the sandbox received) for the test credentials.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from hostdriver import ProviderHost

# pytest finds fixtures by name in a conftest: the PostgreSQL test server's, for every tier that asks.
from tests.support.postgres import fresh_postgres_db, postgres_server, postgres_url  # noqa: F401

#: Unique per test session, so a hit in the scan can only come from a leak.
ACCESS_KEY = "AKtest" + secrets.token_hex(10)
SECRET_KEY = "SKtest" + secrets.token_hex(16)


def sandbox_config(db: Path, **overrides: str) -> dict[str, str]:
    config = {
        "qianfan:endpoint": "sandbox",
        "qianfan:sandboxPath": str(db),
        "qianfan:accessKey": ACCESS_KEY,
        "qianfan:secretKey": SECRET_KEY,
        "qianfan:settleSeconds": "2",
        "qianfan:timeoutSeconds": "30",
        # One host often stands for several `pulumi` runs here (up, then a console change, then
        # refresh), which real runs do in separate hosts: no listing is shared between steps.
        # The tests of sharing itself, and the concurrency trials, turn it back on.
        "qianfan:listingMaxAgeSeconds": "0",
    }
    config.update(overrides)
    return config


def assert_no_secrets(texts: dict[str, str]) -> None:
    for where, text in texts.items():
        for label, secret in (("access key", ACCESS_KEY), ("secret key", SECRET_KEY)):
            assert secret not in text, f"the {label} leaked into {where}"


def scan_host(host: ProviderHost, db: Path | None) -> None:
    texts = {f"host RPC answer #{i}": t for i, t in enumerate(host.transcript)}
    texts["host stderr"] = host.stderr_text()
    if db is not None and db.exists():
        from qianfan_sandbox import SandboxControl

        for i, request in enumerate(SandboxControl(db).requests()):
            texts[f"request body #{i} ({request['action']})"] = json.dumps(request["body"])
    assert_no_secrets(texts)


@contextmanager
def plan_only_host(root: Path, **overrides: str) -> Iterator[ProviderHost]:
    """A host for Check/Diff only: at the end, scanned for secrets and proven to have made no API
    call (the embedded sandbox would have created its database on the first one)."""
    db = root / "sandbox.sqlite3"
    host = ProviderHost(root / "host.stderr")
    try:
        host.configure(sandbox_config(db, **overrides))
        yield host
    finally:
        host.close()
    scan_host(host, db)
    assert not db.exists(), "Check/Diff made an API call (the sandbox was started)"


@pytest.fixture(autouse=True, scope="session")
def private_state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The provider's per-user ledger (`~/.local/state/qianfan-tpm/`) is this session's own: no test
    writes to the home directory, and no earlier run's ledger is seen. Provider hosts inherit it."""
    import os

    state = tmp_path_factory.mktemp("state-home")
    before = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(state)
    yield state
    if before is None:
        os.environ.pop("XDG_STATE_HOME", None)
    else:
        os.environ["XDG_STATE_HOME"] = before


@pytest.fixture
def sandbox_db(tmp_path: Path) -> Path:
    return tmp_path / "sandbox" / "qianfan.sqlite3"


@pytest.fixture
def control(sandbox_db: Path):
    from qianfan_sandbox import SandboxControl

    return SandboxControl(sandbox_db)


HostFactory = Callable[..., ProviderHost]


@pytest.fixture
def make_host(tmp_path: Path, sandbox_db: Path) -> Iterator[HostFactory]:
    """Start configured hosts; at teardown, stop them and scan what they emitted for secrets."""
    hosts: list[ProviderHost] = []

    def make(
        config: dict[str, str] | None = None, env: dict[str, str] | None = None, stack: str = "dev", **overrides: str
    ) -> ProviderHost:
        host = ProviderHost(tmp_path / f"host{len(hosts)}.stderr", env, stack=stack)
        hosts.append(host)
        host.configure(config if config is not None else sandbox_config(sandbox_db, **overrides))
        return host

    yield make
    for host in hosts:
        host.close()
    for host in hosts:
        scan_host(host, sandbox_db)


@pytest.fixture
def host(make_host: HostFactory) -> ProviderHost:
    return make_host()


@pytest.fixture
def buy_elsewhere(control) -> Callable[[dict[str, Any]], str]:
    """Buy a quota outside any stack, as Baidu's console would: an instance no ledger records, for a
    stack to adopt. (One bought by another stack's resource is held by it: see test_ledger_claims.)"""

    def buy(props: dict[str, Any]) -> str:
        instance_id: str = control.add_instance(
            props["model"], int(props["purchaseCount"]), release_time=props.get("releaseTime")
        )
        return instance_id

    return buy


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001 - pytest hook
    from tests.figures import table

    lines = table()
    if lines:
        terminalreporter.section("measured figures")
        for line in lines:
            terminalreporter.write_line(line)
