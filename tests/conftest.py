"""The fixtures every tier may ask for: provider hosts configured against an embedded sandbox, the
sandbox's database and control, and the PostgreSQL test server. What they are built from lives in
tests/support (the test keys and the secrets scan, the host configuration, the PostgreSQL server).

Every test that starts a host ends with a scan of everything that left the provider (RPC answers,
error texts, the host's stderr, request bodies the sandbox received) for the test credentials.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hostdriver import ProviderHost
from qianfan_sandbox import SandboxControl
from tests.support.figures import table
from tests.support.hosts import HostFactory, sandbox_config, scan_host

# pytest finds fixtures by name in a conftest: the PostgreSQL test server's, for every tier that asks.
from tests.support.postgres import fresh_postgres_db, postgres_server  # noqa: F401


@pytest.fixture(autouse=True, scope="session")
def private_state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The provider's per-user ledger (`~/.local/state/qianfan-tpm/`) is this session's own: no test
    writes to the home directory, and no earlier run's ledger is seen. Provider hosts inherit it."""
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
    """The database of the embedded sandbox this test's provider hosts use (created by their first call)."""
    return tmp_path / "sandbox" / "qianfan.sqlite3"


@pytest.fixture
def sandbox_control(sandbox_db: Path) -> SandboxControl:
    """The embedded sandbox's control, as Baidu's console would change things behind the hosts' backs."""
    return SandboxControl(sandbox_db)


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
def buy_elsewhere(sandbox_control: SandboxControl) -> Callable[[dict[str, Any]], str]:
    """Buy a quota outside any stack, as Baidu's console would: an instance no ledger records, for a
    stack to adopt. (One bought by another stack's resource is held by it: see tests/ledger/test_ledger.py.)"""

    def buy(props: dict[str, Any]) -> str:
        instance_id: str = sandbox_control.add_instance(
            props["model"], int(props["purchaseCount"]), release_time=props.get("releaseTime")
        )
        return instance_id

    return buy


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    lines = table()
    if lines:
        terminalreporter.section("measured figures")
        for line in lines:
            terminalreporter.write_line(line)
