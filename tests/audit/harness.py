"""The audit's test harness: running `python -m audit` as a user does, the standalone sandbox and
the real SDK, and the world of quotas made through Pulumi's provider host, changed behind the
stacks' backs, bought directly with the `qianfan` SDK, with the stacks' state in Pulumi's formats.

The sandbox is imported here and nowhere else in tests/audit (it moves to `qianfan_sandbox`).
Every run of the audit is a child process, and its output is scanned for the keys.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from hostdriver import PROJECT_ROOT, ProviderHost, urn
from hostdriver.process import first_line, stop
from qianfan_sandbox import SandboxControl
from tests.audit.pulumi_state import Quota, checkpoint_document, encrypted, export_document, shown
from tests.support.hosts import sandbox_config as host_config
from tests.support.keys import ACCESS_KEY, SECRET_KEY

#: How to start the standalone sandbox (`python -m <this>`); the one other place its name appears.
SANDBOX_MODULE = "qianfan_sandbox"
BEIJING = timezone(timedelta(hours=8))
DESCRIBE = "DescribeTPMResource"
CHILD_TIMEOUT = 120


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child process: no inherited Qianfan settings, no proxy for 127.0.0.1."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QIANFAN_")}
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(name, None)
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


def keys_env(access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> dict[str, str]:
    return child_env(QIANFAN_ACCESS_KEY=access_key, QIANFAN_SECRET_KEY=secret_key)


@dataclass
class AuditRun:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> dict[str, Any]:
        document = json.loads(self.stdout)
        assert isinstance(document, dict)
        return document

    def by_id(self) -> dict[str, dict[str, Any]]:
        return {item["instanceId"]: item for item in self.json()["instances"]}


def run_audit(
    *args: str, env: dict[str, str] | None = None, cwd: Path = PROJECT_ROOT, secrets_to_scan: tuple[str, ...] = ()
) -> AuditRun:
    """`python -m audit ARGS` as a user runs it (with this interpreter); its output never holds a key."""
    out = subprocess.run(
        [sys.executable, "-m", "audit", *args],
        cwd=cwd,
        env=env if env is not None else keys_env(),
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
    )
    for secret in (ACCESS_KEY, SECRET_KEY, *secrets_to_scan):
        assert secret not in out.stdout and secret not in out.stderr, "a key leaked into the audit's output"
    return AuditRun(out.returncode, out.stdout, out.stderr)


def assert_read_only(control: SandboxControl) -> list[dict[str, Any]]:
    """Every request the sandbox received since the last clear was a plain Describe of a model."""
    requests = control.requests()
    assert requests, "the audit sent nothing"
    for request in requests:
        assert request["action"] == DESCRIBE, request
        assert set(request["body"]) == {"model"}, request
    return requests


def beijing(moment: datetime) -> str:
    """RFC3339 in +08:00, whole seconds: how the provider stores a release time."""
    return moment.astimezone(BEIJING).replace(microsecond=0).isoformat()


# -- the standalone sandbox and the real SDK ---------------------------------------------------------
class Standalone:
    """`python -m qianfan_sandbox --port 0 --db DB` in a child process, with the test keys."""

    def __init__(self, db: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", SANDBOX_MODULE, "--port", "0", "--db", str(db)]
            + ["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY],
            cwd=PROJECT_ROOT,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = first_line(self.process, 30)
        if not line:
            self.close()
            pytest.fail("the standalone sandbox printed no URL within 30 s")
        self.url = next(word for word in line.split() if word.startswith("http://127.0.0.1:"))

    def close(self) -> None:
        stop(self.process)


_SDK_SCRIPT = textwrap.dedent(
    """
    import json, logging, sys
    logging.getLogger("qianfan").disabled = True
    from qianfan.resources.console.utils import call_action
    results = []
    for action, body in json.loads(sys.argv[1]):
        results.append(call_action("/v2/charge", action, body).body["result"])
    print(json.dumps(results))
    """
)


def sdk_calls(url: str, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """Console actions made with the real `qianfan` SDK, as someone outside any stack would."""
    out = subprocess.run(
        [sys.executable, "-c", _SDK_SCRIPT, json.dumps(calls)],
        env=keys_env() | {"QIANFAN_CONSOLE_API_BASE_URL": url},
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads(out.stdout)
    assert isinstance(results, list)
    return results


def create(host: ProviderHost, name: str, props: dict[str, Any], *, stack: str = "dev", **extra: Any) -> Quota:
    """Check then Create through the host, keeping both what the engine would store. As a program's
    TPMQuota does, the inputs name the resource (`ownerUrn`), which the ledger records."""
    inputs, failures = host.check({"ownerUrn": urn(name, stack), **props}, name=name)
    assert not failures, failures
    id_, outputs = host.create(inputs, name=name)
    return Quota(name, id_, inputs, outputs, dict(extra))


# -- the world -----------------------------------------------------------------------------------------
@dataclass
class World:
    """A project directory, a home with a file backend, a sandbox, and who holds what."""

    root: Path
    project: Path
    home: Path
    db: Path
    control: SandboxControl
    standalone: Standalone
    dev: dict[str, Quota]
    staging_export: Path
    ids: dict[str, str]

    @property
    def backend(self) -> Path:
        return self.home

    def sandbox_args(self) -> list[str]:
        return ["--endpoint", "sandbox", "--sandbox-path", str(self.db)]

    def audit(self, *args: str, **options: Any) -> AuditRun:
        """The audit of this world: dev from the backend, staging from its export, every model."""
        self.control.clear_requests()
        run = run_audit(
            "--backend", str(self.backend), "--state", str(self.staging_export), *self.sandbox_args(), *args, **options
        )
        assert_read_only(self.control)
        return run


@contextmanager
def world_in(root: Path) -> Iterator[World]:
    """Build the world under `root`; the standalone sandbox runs until the context ends."""
    project, home = root / "project", root / "home"
    db = project / ".sandbox" / "qianfan.sqlite3"
    db.parent.mkdir(parents=True)
    control = SandboxControl(db)
    control.set_option("creating_seconds", 0)
    soon = beijing(datetime.now(UTC) + timedelta(hours=2))

    with ExitStack() as cleanup:
        standalone = Standalone(db)
        cleanup.callback(standalone.close)  # also when building the world fails half-way
        host = ProviderHost(root / "host.stderr")
        try:
            host.configure(host_config(db))
            dev = {
                "chat-speed": create(host, "chat-speed", {"model": "ernie-speed-8k", "purchaseCount": 2}),
                "batch-lite": create(host, "batch-lite", {"model": "ernie-lite-8k", "purchaseCount": 1}),
                "nightly": create(
                    host, "nightly", {"model": "ernie-speed-8k", "purchaseCount": 1, "releaseTime": soon}
                ),
                "old": create(host, "old", {"model": "ernie-tiny-8k", "purchaseCount": 1}),
                "moved": create(
                    host, "moved", {"model": "ernie-4.0-8k", "purchaseCount": 1, "releaseTime": "2031-01-01 00:00:00"}
                ),
                "shared": create(host, "shared", {"model": "ernie-char-8k", "purchaseCount": 1}),
                "twin-a": create(host, "twin-a", {"model": "ernie-novel-8k", "purchaseCount": 1}),
                "replaced-old": create(
                    host, "replaced", {"model": "ernie-speed-128k", "purchaseCount": 1}, delete=True
                ),
                "replaced": create(host, "replaced", {"model": "ernie-speed-128k", "purchaseCount": 2}),
                "dbr": create(
                    host, "dbr", {"model": "ernie-lite-pro-128k", "purchaseCount": 1}, pendingReplacement=True
                ),
            }
            # A later `pulumi up` that does not share the ledger (`qianfan:ledger: off`, say on another
            # machine: a shared ledger refuses a second owner) adopts the same instance for a second
            # resource of the same stack ...
            later = ProviderHost(root / "later.stderr")
            try:
                later.configure(host_config(db, **{"qianfan:ledger": "off"}))
                dev["twin-b"] = create(
                    later,
                    "twin-b",
                    {"model": "ernie-novel-8k", "purchaseCount": 1, "adoptInstanceId": dev["twin-a"].id},
                )
                # ... and a resource of another stack adopts one too.
                staging_shared = create(
                    later,
                    "shared",
                    {"model": "ernie-char-8k", "purchaseCount": 1, "adoptInstanceId": dev["shared"].id},
                    stack="staging",
                )
            finally:
                later.close()
            staging_shared.outputs["__provider"] = encrypted("provider")
            # A stack whose state was lost after it bought a quota.
            lost = create(host, "lost", {"model": "ernie-lite-8k", "purchaseCount": 1})
            # Delete-before-replace: the engine released the old instance and keeps the entry pending.
            host.delete(dev["dbr"].id, dev["dbr"].outputs, name="dbr")

            # Changes made in Baidu's console, behind the stacks' backs.
            control.update_instance(dev["batch-lite"].id, count=3)
            control.update_instance(dev["moved"].id, release_time="2032-02-02T00:00:00+08:00")
            [console, _] = sdk_calls(
                standalone.url,
                [
                    (
                        "PurchaseTPMResource",
                        {
                            "model": "ernie-speed-8k",
                            "billing": {"paymentTiming": "Postpaid", "releaseTime": "2031-05-05T05:05:05+08:00"},
                            "purchaseCount": 2,
                        },
                    ),
                    ("ReleaseTPMResource", {"model": "ernie-tiny-8k", "instanceId": dev["old"].id}),
                ],
            )
        finally:
            host.close()
        stderr = (root / "host.stderr").read_text(errors="replace")
        assert ACCESS_KEY not in stderr and SECRET_KEY not in stderr

        backend_file = home / ".pulumi" / "stacks" / "qianfan-tpm" / "dev.json"
        backend_file.parent.mkdir(parents=True)
        config = {
            "qianfan:endpoint": "sandbox",
            "qianfan:accessKey": encrypted("ak"),
            "qianfan:secretKey": encrypted("sk"),
        }
        backend_file.write_text(json.dumps(checkpoint_document("dev", list(dev.values()), provider_config=config)))
        staging_export = root / "staging-export.json"
        interrupted = Quota("late", "", {"model": "ernie-lite-8k", "purchaseCount": 1}, {})
        staging_export.write_text(
            json.dumps(
                export_document(
                    "staging",
                    [staging_shared],
                    # As `pulumi stack export --show-secrets` prints it: the keys in plain text.
                    provider_config={"qianfan:accessKey": shown(ACCESS_KEY), "qianfan:secretKey": shown(SECRET_KEY)},
                    pending_operations=[{"resource": interrupted.resource("staging"), "type": "creating"}],
                )
            )
        )
        ids = {name: quota.id for name, quota in dev.items()}
        ids.update({"lost": lost.id, "console": console["instanceId"]})
        yield World(root, project, home, db, control, standalone, dev, staging_export, ids)
