"""Fixtures for the sandbox's own tests: a running sandbox, its control, a signing client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from qianfan_sandbox import Sandbox, SandboxControl
from tests.support.sandbox_http import Client


@pytest.fixture
def served_db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "qianfan.db"


@pytest.fixture
def sandbox(served_db: Path) -> Iterator[Sandbox]:
    with Sandbox(served_db, extra_models=["my-custom-model"]) as running:
        yield running


@pytest.fixture
def served_control(sandbox: Sandbox, served_db: Path) -> SandboxControl:
    return SandboxControl(served_db)


@pytest.fixture
def client(sandbox: Sandbox) -> Client:
    return Client(sandbox.url)
