"""Fixtures of the end-to-end tier: the dev stack's config as the engine sends it, one provider host
per rehearsed CLI run, and at the end a scan of everything the hosts emitted for the sandbox's keys.

The dev stack configures no keys, so the embedded sandbox runs with its fixed pair — the one a user
of `pulumi up` on `dev` gets — and those are what must never leave the provider.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hostdriver import PROJECT_ROOT, ProviderHost
from hostdriver.program import Deployment, engine_config

DEV_STACK_FILE = PROJECT_ROOT / "stacks" / "Pulumi.dev.yaml"


def dev_stack_config() -> dict[str, Any]:
    """The `config:` section of stacks/Pulumi.dev.yaml, as YAML reads it."""
    document = yaml.safe_load(DEV_STACK_FILE.read_text())
    config = document["config"]
    assert isinstance(config, dict), f"{DEV_STACK_FILE}: config is not a mapping"
    return config


def sandbox_keys() -> dict[str, str]:
    from qianfan_sandbox import SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY

    return {"sandbox access key": SANDBOX_ACCESS_KEY, "sandbox secret key": SANDBOX_SECRET_KEY}


def assert_no_keys(texts: dict[str, str]) -> None:
    for where, text in texts.items():
        for label, key in sandbox_keys().items():
            assert key not in text, f"the {label} leaked into {where}"


def state_text(deployment: Deployment) -> str:
    """The state as a checkpoint would hold it (resources only: the config is ours, not the provider's)."""
    return json.dumps(
        [{"urn": r.urn, "id": r.id, "inputs": r.inputs, "outputs": r.outputs} for r in deployment.resources]
    )


@pytest.fixture
def sandbox_db(tmp_path: Path) -> Path:
    return tmp_path / "sandbox" / "qianfan.sqlite3"


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


HostFactory = Callable[[str, dict[str, str]], ProviderHost]


@pytest.fixture
def run_host(tmp_path: Path, sandbox_db: Path) -> Iterator[HostFactory]:
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
        texts.update({f"{label} host RPC answer #{i}": t for i, t in enumerate(host.transcript)})
        texts[f"{label} host stderr"] = host.stderr_text()
    if sandbox_db.exists():
        from qianfan_sandbox import SandboxControl

        for i, request in enumerate(SandboxControl(sandbox_db).requests()):
            texts[f"request body #{i} ({request['action']})"] = json.dumps(request["body"])
    assert_no_keys(texts)
