"""One world for the whole audit tier: building it (provider host, SDK, sandbox) is the slow part."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.audit.harness import World, world_in


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with world_in(tmp_path_factory.mktemp("audit-world")) as built:
        yield built
