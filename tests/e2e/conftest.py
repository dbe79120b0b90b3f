"""Fixtures of the end-to-end tier: the dev stack's config as the engine sends it, one provider host
per rehearsed CLI run, and at the end a scan of everything the hosts emitted for the sandbox's keys.

The dev stack configures no keys, so the embedded sandbox runs with its fixed pair — the one a user
of `pulumi up` on `dev` gets — and those are what must never leave the provider. The sandbox's
database is `sandbox_db` (tests/conftest.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hostdriver import ProviderHost
from hostdriver.program import engine_config
from tests.e2e.dev_stack import RunHost, dev_stack_config
from tests.support.hosts import emitted_texts, received_texts
from tests.support.keys import SANDBOX_KEYS, assert_no_secrets


@pytest.fixture
def dev_config(sandbox_db: Path) -> dict[str, str]:
    """The dev stack's config, with the sandbox database moved into this test's tmp dir — as
    `pulumi config set qianfan:sandboxPath …` would, for the program and the provider alike."""
    return engine_config({**dev_stack_config(), "qianfan:sandboxPath": str(sandbox_db)})


@pytest.fixture(autouse=True)
def no_qianfan_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The program runs in this process and reads the environment as the provider does (a key left
    in the shell counts); the hosts get none of it (ProviderHost drops QIANFAN_*), nor does the program."""
    for name in [name for name in os.environ if name.startswith("QIANFAN_")]:
        monkeypatch.delenv(name)


@pytest.fixture
def run_host(tmp_path: Path, sandbox_db: Path) -> Iterator[RunHost]:
    """A new provider host process per rehearsed CLI run, configured as the engine configures it;
    at teardown, stopped and scanned (RPC answers, stderr, request bodies) for the sandbox keys."""
    hosts: list[tuple[str, ProviderHost]] = []

    def start(label: str, config: dict[str, str]) -> ProviderHost:
        host = ProviderHost(tmp_path / f"{label}.stderr")
        hosts.append((label, host))
        host.configure(config)
        return host

    yield start
    for _, host in hosts:
        host.close()
    texts: dict[str, str] = {}
    for label, host in hosts:
        texts.update(emitted_texts(host, label))
    texts.update(received_texts(sandbox_db))
    assert_no_secrets(texts, SANDBOX_KEYS)
