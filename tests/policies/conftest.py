"""One policy pack process per test module, started and spoken to as the Pulumi CLI does.

Each test gets it freshly configured with the CLI's defaults (Configure replaces the whole
configuration), so tests cannot leak configuration into each other.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.policies.analyzer_host import AnalyzerHost


@pytest.fixture(scope="module")
def pack_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnalyzerHost]:
    host = AnalyzerHost(tmp_path_factory.mktemp("pack") / "pack.stderr")
    try:
        host.start_session()
        yield host
    finally:
        host.close()
    assert "Traceback" not in host.stderr_text(), host.stderr_text()


@pytest.fixture
def pack(pack_process: AnalyzerHost) -> AnalyzerHost:
    pack_process.configure()
    return pack_process
