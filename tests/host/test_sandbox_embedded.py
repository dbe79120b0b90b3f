"""The sandbox embedded in the provider host: `qianfan:endpoint: sandbox`.

State lives in SQLite, so separate `pulumi up` / `refresh` / `destroy` runs (separate host
processes) see the same instances.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from hostdriver import HostError, ProviderHost
from qianfan_sandbox import SANDBOX_ACCESS_KEY, SandboxControl
from tests.support.hosts import sandbox_config, scan_host

pytestmark = pytest.mark.slow  # provider hosts of its own per test

MODEL = "ernie-speed-8k"


def test_two_host_processes_share_one_sandbox_database(tmp_path: Path, sandbox_db: Path) -> None:
    control = SandboxControl(sandbox_db)
    # `pulumi up`: create, then resize.
    first = ProviderHost(tmp_path / "first.stderr")
    try:
        first.configure(sandbox_config(sandbox_db))
        id_, outs = first.up({"model": MODEL, "purchaseCount": 1})
        news, _ = first.check({"model": MODEL, "purchaseCount": 3})
        outs = first.update(id_, outs, news)
        assert outs["purchaseCount"] == 3
    finally:
        first.close()
    scan_host(first, sandbox_db)
    assert first.process.returncode is not None, "the first host (and its embedded sandbox) is gone"

    # `pulumi refresh` then `pulumi destroy` then `pulumi refresh`, in another process.
    second = ProviderHost(tmp_path / "second.stderr")
    try:
        second.configure(sandbox_config(sandbox_db))
        stale = {**outs, "purchaseCount": 1, "tpm": 10_000}  # what an older state would hold
        read_id, read_outs, _ = second.read(id_, stale)
        assert read_id == id_ and read_outs["purchaseCount"] == 3 and read_outs["tpm"] == 30_000
        second.delete(id_, read_outs)
        assert second.read(id_, read_outs)[0] == ""
    finally:
        second.close()
    scan_host(second, sandbox_db)
    [row] = control.instances(MODEL)
    assert row["instanceId"] == id_ and row["status"] == "Stopped"
    assert [r["action"] for r in control.requests("PurchaseTPMResource")] == ["PurchaseTPMResource"]


def test_default_database_lives_under_the_project_directory_and_fixed_keys_work(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    host = ProviderHost(tmp_path / "host.stderr", cwd=project)
    try:
        host.configure({"qianfan:endpoint": "sandbox"})  # no keys, no path: the documented defaults
        id_, outs = host.up({"model": MODEL, "purchaseCount": 2})
        assert outs["tpm"] == 20_000
    finally:
        host.close()
    db = project / ".sandbox" / "qianfan.sqlite3"
    assert db.is_file()
    assert [row["instanceId"] for row in SandboxControl(db).instances()] == [id_]
    assert SANDBOX_ACCESS_KEY == "sandbox-access-key"


def test_sandbox_is_not_started_unless_asked_for(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    host = ProviderHost(tmp_path / "host.stderr", cwd=project)
    try:
        host.configure(
            {
                "qianfan:endpoint": "http://127.0.0.1:9",
                "qianfan:accessKey": "a",
                "qianfan:secretKey": "b",
                "qianfan:timeoutSeconds": "1",
            }
        )
        inputs, _ = host.check({"model": MODEL, "purchaseCount": 1})
        with pytest.raises(HostError, match="DescribeTPMResource failed"):  # nothing listens on port 9
            host.create(inputs)
    finally:
        host.close()
    assert not (project / ".sandbox").exists()


def test_unusable_database_gives_one_clear_error_naming_the_path(make_host, tmp_path: Path) -> None:
    bad = tmp_path / "not-a-database.sqlite3"
    bad.write_bytes(b"this is not SQLite" * 100)
    host = make_host(**{"qianfan:sandboxPath": str(bad)})
    inputs, _ = host.check({"model": MODEL, "purchaseCount": 1})
    with pytest.raises(HostError) as caught:  # a corrupt sandbox database fails the first call
        host.create(inputs)
    line = caught.value.last_line
    assert str(bad) in line, line
