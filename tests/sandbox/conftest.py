"""Fixtures for the sandbox's own tests: a running sandbox, its control, a signing client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from qianfan_sandbox import Sandbox, SandboxControl
from tests.sandbox.helpers import Client


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "qianfan.db"


@pytest.fixture
def sandbox(db_path: Path) -> Iterator[Sandbox]:
    with Sandbox(db_path, extra_models=["my-custom-model"]) as running:
        yield running


@pytest.fixture
def control(sandbox: Sandbox, db_path: Path) -> SandboxControl:
    return SandboxControl(db_path)


@pytest.fixture
def client(sandbox: Sandbox) -> Client:
    return Client(sandbox.url)
