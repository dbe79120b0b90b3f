"""`python -m audit --ledger` over quotas made through real provider hosts that share a ledger, on
SQLite (the default file beside the sandbox) and on a real PostgreSQL: who bought each live
instance, a stack whose state was lost, uncertain purchases (a recovery whose listing failed, a host
killed with SIGKILL mid-purchase), `--forget-claim`, and a ledger URL's password never printed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from hostdriver import HostError, ProviderHost
from qianfan_sandbox import SandboxControl
from tests.audit.harness import (
    AuditRun,
    World,
    assert_read_only,
    create,
    host_config,
    keys_env,
    run_audit,
)
from tests.audit.pulumi_state import Quota, export_document

pytestmark = pytest.mark.slow  # provider hosts, the audit as a process, PostgreSQL

MODELS = ("ernie-speed-8k", "ernie-lite-8k", "ernie-tiny-8k", "ernie-char-8k")
PREFIX = "python -m audit: "


@dataclass
class Shared:
    """A sandbox, a ledger its hosts share (`location`: what `qianfan:ledger` says; None: the
    default file beside the sandbox), and the hosts started so far."""

    root: Path
    db: Path
    control: SandboxControl
    location: str | None
    hosts: list[ProviderHost] = field(default_factory=list)

    def host(self, stack: str, **config: str) -> ProviderHost:
        host = ProviderHost(self.root / f"host{len(self.hosts)}-{stack}.stderr", stack=stack)
        self.hosts.append(host)
        if self.location is not None:
            config = {"qianfan:ledger": self.location, **config}
        host.configure(host_config(self.db, **config))
        return host

    def state(self, stack: str, quotas: list[Quota]) -> Path:
        path = self.root / f"state-{stack}.json"
        path.write_text(json.dumps(export_document(stack, quotas)))
        return path

    def ledger_args(self) -> list[str]:
        return ["--ledger"] if self.location is None else ["--ledger", self.location]

    def audit(self, *args: str, ledger: list[str] | None = None, env: dict[str, str] | None = None) -> AuditRun:
        """The audit of these models with the ledger; it sends Describe only (unless it lists nothing)."""
        self.control.clear_requests()
        run = run_audit(
            "--endpoint",
            "sandbox",
            "--sandbox-path",
            str(self.db),
            "--models",
            ",".join(MODELS),
            *(self.ledger_args() if ledger is None else ledger),
            *args,
            env=env,
            secrets_to_scan=self.secrets(),
        )
        if self.control.requests():
            assert_read_only(self.control)
        return run

    def secrets(self) -> tuple[str, ...]:
        if self.location is None or "://" not in self.location:
            return ()
        password = urlsplit(self.location).password
        assert password
        return (self.location, password)

    def close(self) -> None:
        for host in self.hosts:
            host.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def shared(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Shared]:
    db = tmp_path / "project" / ".sandbox" / "qianfan.sqlite3"
    db.parent.mkdir(parents=True)
    control = SandboxControl(db)
    control.set_option("creating_seconds", 0)
    location = None if request.param == "sqlite" else request.getfixturevalue("fresh_postgres_db")
    world = Shared(tmp_path, db, control, location)
    try:
        yield world
    finally:
        world.close()
    if location is None:
        assert (db.parent / "qianfan-ledger.sqlite3").is_file()  # the hosts really used the default beside the sandbox
    for host in world.hosts:
        text = host.stderr_text() + "\n".join(host.transcript)
        for secret in world.secrets():
            assert secret not in text


def by_id(run: AuditRun) -> dict[str, dict[str, Any]]:
    return run.by_id()


def who(item: dict[str, Any] | None) -> tuple[Any, ...] | None:
    return None if item is None else (item["project"], item["stack"], item["resource"])


def test_each_live_instance_is_named_with_the_stack_whose_purchase_bought_it(shared: Shared) -> None:
    dev = shared.host("dev")
    chat = create(dev, "chat", {"model": "ernie-speed-8k", "purchaseCount": 1})
    prod = shared.host("prod")
    lost = create(prod, "lost", {"model": "ernie-lite-8k", "purchaseCount": 2}, stack="prod")
    dev_state = shared.state("dev", [chat])  # prod's state is lost: only dev's is given

    run = shared.audit("--state", str(dev_state), "--json")
    assert run.returncode == 1, run.stderr
    document = run.json()
    assert set(document) == {"instances", "missing", "totals", "ledger"}
    assert document["ledger"]["uncertain"] == [] and document["ledger"]["inFlight"] == []
    items = by_id(run)
    assert set(items) == {chat.id, lost.id}
    assert items[chat.id]["verdicts"] == ["managed"]
    facts = items[chat.id]["ledger"]
    assert who(facts["claim"]) == ("qianfan-tpm", "dev", "chat") and facts["claim"]["letGoAt"] is None
    bought = facts["boughtBy"]
    assert who(bought) == ("qianfan-tpm", "dev", "chat") and bought["state"] == "bought"
    assert facts["claim"]["purchaseId"] == bought["purchaseId"]
    assert (bought["instanceId"], bought["model"], bought["units"]) == (chat.id, "ernie-speed-8k", 1)
    assert re.fullmatch(r"[0-9a-f-]{36}", bought["requestId"]), bought  # Qianfan's requestId
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", bought["sentAt"])
    # An instance a stack's purchase bought that no state holds: the stack is named, so its owner can adopt it.
    assert items[lost.id]["verdicts"] == ["unmanaged", "ledger-mismatch"]
    assert who(items[lost.id]["ledger"]["claim"]) == ("qianfan-tpm", "prod", "lost")
    assert who(items[lost.id]["ledger"]["boughtBy"]) == ("qianfan-tpm", "prod", "lost")

    table = shared.audit("--state", str(dev_state))
    assert table.returncode == 1
    [row] = [line for line in table.stdout.splitlines() if line.startswith(lost.id + " ")]
    purchase_id = items[lost.id]["ledger"]["claim"]["purchaseId"]
    assert re.split(r"\s{2,}", row)[-2:] == [f"prod/lost (bought, #{purchase_id})", "unmanaged, ledger-mismatch"]
    assert (
        f"{lost.id}: the ledger says prod/lost holds it (bought by purchase #" in table.stdout
        and f"but no state audited does. If that stack lost it (a lost state, `pulumi state delete`), adopt it "
        f"there as lost (the ledger lets it take it back), or let go of the claim with --forget-claim {lost.id} "
        "and adopt it in any stack"
        in table.stdout
    )
    adopt = f'    - {{name: "lost", model: "ernie-lite-8k", purchaseCount: 2, adoptInstanceId: "{lost.id}"}}'
    assert adopt + "  # in stack prod, as the ledger says" in table.stdout.splitlines()

    # Another stack cannot adopt it while prod/lost holds it; the refusal names the way out.
    staging = shared.host("staging")
    rescue = {"model": "ernie-lite-8k", "purchaseCount": 2, "adoptInstanceId": lost.id}
    with pytest.raises(HostError) as refused:
        create(staging, "rescue", rescue, stack="staging")
    assert "TPMQuota 'lost' of stack prod already holds this instance" in refused.value.last_line
    assert f"`python -m audit --ledger … --forget-claim {lost.id}`" in refused.value.last_line

    # Not while a state given holds it ...
    kept = shared.audit("--state", str(dev_state), "--forget-claim", chat.id)
    assert (kept.returncode, kept.stdout) == (2, ""), kept.stderr
    assert kept.stderr.splitlines() == [
        f"{PREFIX}--forget-claim {chat.id}: dev/chat ({dev_state}) still holds it; a claim is let go only when no "
        "state holds the instance (remove that entry first, e.g. `pulumi state delete <urn>`); nothing changed"
    ]
    assert shared.control.requests() == []  # --forget-claim lists nothing, and sends nothing to Qianfan
    # ... but the lost stack's claim, yes.
    forgot = shared.audit("--state", str(dev_state), "--forget-claim", lost.id)
    assert forgot.returncode == 0, forgot.stderr
    assert shared.control.requests() == []
    location = (
        f"ledger {shared.db.parent / 'qianfan-ledger.sqlite3'}" if shared.location is None else "ledger postgresql://"
    )
    [line] = forgot.stdout.splitlines()
    assert line.startswith(f"{lost.id}: let go of prod/lost's claim in the {location}")
    assert line.endswith(
        f"(bought by purchase #{purchase_id}; journaled as forgotten). Any stack "
        f"may adopt it now with adoptInstanceId: {lost.id}. Nothing was sent to Qianfan"
    )
    again = shared.audit("--forget-claim", lost.id)
    assert again.returncode == 0 and "let go of prod/lost's claim already" in again.stdout
    unknown = shared.audit("--forget-claim", "tpm-nosuch")
    assert unknown.returncode == 2
    assert unknown.stderr.splitlines()[-1].endswith(
        "holds no claim of it for this account (the endpoint and key pair given); nothing changed"
    )
    let_go = shared.audit("--state", str(dev_state), "--json")
    assert by_id(let_go)[lost.id]["verdicts"] == ["unmanaged"]  # nobody's in the ledger now: no mismatch
    assert by_id(let_go)[lost.id]["ledger"]["claim"]["letGoBy"] == "forgotten"

    rescued = create(staging, "rescue", rescue, stack="staging")
    assert rescued.id == lost.id
    staging_state = shared.state("staging", [rescued])
    clean = shared.audit("--state", str(dev_state), "--state", str(staging_state), "--json")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    facts = by_id(clean)[lost.id]["ledger"]
    assert who(facts["claim"]) == ("qianfan-tpm", "staging", "rescue") and facts["claim"]["purchaseId"] is None
    assert who(facts["boughtBy"]) == ("qianfan-tpm", "prod", "lost")  # who bought it stays known
    assert [(e["action"], e["stack"], e["resource"]) for e in facts["journal"]] == [
        ("forgotten", "prod", "lost"),
        ("adopted", "staging", "rescue"),
    ]


def test_a_recovery_that_cannot_tell_leaves_a_purchase_the_audit_names(shared: Shared) -> None:
    """The answer is lost after Qianfan committed, and the recovery's listing fails: `unknown`."""
    host = shared.host("dev", **{"qianfan:timeoutSeconds": "20"})
    shared.control.add_fault("PurchaseTPMResource", "hang_after_commit", seconds=3)
    failed: list[BaseException] = []
    thread = threading.Thread(target=_create_catching, args=(host, "flaky", "ernie-tiny-8k", failed))
    thread.start()
    try:
        [bought] = _wait_for_instance(shared.control, "ernie-tiny-8k")
        shared.control.add_fault("DescribeTPMResource", "error", count=100, status=400)
    finally:
        thread.join(60)
    shared.control.clear_faults()
    assert not thread.is_alive()
    [error] = failed
    assert isinstance(error, HostError) and "Whether a quota was bought is unknown" in error.last_line

    run = shared.audit("--json")
    assert run.returncode == 1, run.stderr
    [uncertain] = run.json()["ledger"]["uncertain"]
    assert who(uncertain) == ("qianfan-tpm", "dev", "flaky")
    assert (uncertain["state"], uncertain["abandoned"], uncertain["model"], uncertain["units"]) == (
        "unknown",
        False,
        "ernie-tiny-8k",
        1,
    )
    assert uncertain["candidates"] == [bought] and uncertain["followedUp"] is None
    assert "listing failed too" in uncertain["detail"]
    item = by_id(run)[bought]
    assert item["verdicts"] == ["unmanaged"] and item["ledger"]["claim"] is None
    assert item["ledger"]["mayBeFrom"] == [uncertain["purchaseId"]]

    table = shared.audit()
    assert table.returncode == 1
    lines = table.stdout.splitlines()
    [row] = [line for line in lines if line.startswith(f"#{uncertain['purchaseId']} ")]
    cells = re.split(r"\s{2,}", row)
    assert cells[:6] == [f"#{uncertain['purchaseId']}", "unknown", "dev/flaky", "ernie-tiny-8k", "1", "none"]
    assert cells[-1] == f"may have bought {bought}"
    assert f"{bought} may be what purchase #{uncertain['purchaseId']} of dev/flaky bought (unknown: " in table.stdout
    assert f'    - {{name: "flaky", model: "ernie-tiny-8k", purchaseCount: 1, adoptInstanceId: "{bought}"}}' in (
        table.stdout
    )

    # Its create, run again with the instance adopted, follows it up: listed still, no finding.
    adopted = create(host, "flaky", {"model": "ernie-tiny-8k", "purchaseCount": 1, "adoptInstanceId": bought})
    state = shared.state("dev", [adopted])
    settled = shared.audit("--state", str(state), "--json")
    assert settled.returncode == 0, settled.stdout + settled.stderr
    [still] = settled.json()["ledger"]["uncertain"]
    assert still["purchaseId"] == uncertain["purchaseId"] and still["followedUp"]["instanceId"] == bought


def test_a_host_killed_mid_purchase_leaves_a_purchase_the_audit_names(shared: Shared) -> None:
    """SIGKILL while Qianfan holds the purchase's answer: the record stays `sending`, in flight until
    its deadline, abandoned after it; the instance it bought is live, and named as maybe its."""
    host = shared.host("dev", **{"qianfan:timeoutSeconds": "12"})
    shared.control.add_fault("PurchaseTPMResource", "hang_after_commit", seconds=120)
    failed: list[BaseException] = []
    thread = threading.Thread(target=_create_catching, args=(host, "doomed", "ernie-char-8k", failed))
    thread.start()
    try:
        [bought] = _wait_for_instance(shared.control, "ernie-char-8k")
        os.kill(host.process.pid, signal.SIGKILL)
    finally:
        thread.join(60)
    shared.control.clear_faults()
    assert not thread.is_alive() and failed, "the create outlived its host"

    early = shared.audit("--json")
    assert early.returncode == 1  # its instance is unmanaged
    ledger = early.json()["ledger"]
    if ledger["uncertain"] == []:  # on a busy machine the deadline may have passed already
        [flying] = ledger["inFlight"]
        assert (flying["state"], flying["abandoned"], who(flying)) == (
            "sending",
            False,
            ("qianfan-tpm", "dev", "doomed"),
        )
        assert "purchase(s) in flight (sent, not answered yet)" in early.stderr

    deadline = time.monotonic() + 90
    while True:
        run = shared.audit("--json")
        if run.json()["ledger"]["uncertain"] or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert run.returncode == 1, run.stderr
    document = run.json()
    [uncertain] = document["ledger"]["uncertain"]
    assert document["ledger"]["inFlight"] == []
    assert who(uncertain) == ("qianfan-tpm", "dev", "doomed")
    assert (uncertain["state"], uncertain["abandoned"], uncertain["model"], uncertain["units"]) == (
        "sending",
        True,
        "ernie-char-8k",
        1,
    )
    assert f"/{host.process.pid}/" in uncertain["host"]  # the host that died
    assert uncertain["candidates"] == [bought]
    assert by_id(run)[bought]["ledger"]["mayBeFrom"] == [uncertain["purchaseId"]]
    table = shared.audit()
    [row] = [line for line in table.stdout.splitlines() if line.startswith(f"#{uncertain['purchaseId']} ")]
    assert re.split(r"\s{2,}", row)[1:3] == ["abandoned", "dev/doomed"]
    assert (
        f"{bought} may be what purchase #{uncertain['purchaseId']} of dev/doomed bought (abandoned: its host "
        "stopped before the answer came, sent " in table.stdout
    )


def _create_catching(host: ProviderHost, name: str, model: str, failed: list[BaseException]) -> None:
    try:
        create(host, name, {"model": model, "purchaseCount": 1})
    except BaseException as exc:  # noqa: BLE001 - the test reads what the create raised
        failed.append(exc)


def _wait_for_instance(control: SandboxControl, model: str) -> list[str]:
    """The sandbox's instances of `model`, once it has one (bounded)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = [i["instanceId"] for i in control.instances(model)]
        if found:
            return found
        time.sleep(0.02)
    pytest.fail(f"the sandbox got no purchase of {model} within 60 s")


# -- a ledger that cannot be read ----------------------------------------------------------------
def test_a_missing_sqlite_ledger_is_refused_in_one_line_and_not_created(tmp_path: Path) -> None:
    db = tmp_path / "sandbox" / "qianfan.sqlite3"
    control = SandboxControl(db)
    control.set_option("creating_seconds", 0)
    control.clear_requests()
    nowhere = tmp_path / "nowhere" / "ledger.sqlite3"
    for ledger, path in ((["--ledger", str(nowhere)], nowhere), (["--ledger"], db.parent / "qianfan-ledger.sqlite3")):
        run = run_audit("--endpoint", "sandbox", "--sandbox-path", str(db), *ledger)
        assert (run.returncode, run.stdout) == (2, "")
        assert run.stderr.splitlines() == [
            f"{PREFIX}audit incomplete, nothing is reported: ledger {path}: does not exist (a provider host creates "
            "the ledger at its first purchase); the audit never creates one"
        ]
        assert not path.exists()
    assert not nowhere.parent.exists()
    assert control.requests() == []  # refused before anything was listed


def test_a_postgresql_database_without_a_ledger_is_refused_in_one_line(fresh_postgres_db: str, tmp_path: Path) -> None:
    import psycopg

    db = tmp_path / "sandbox" / "qianfan.sqlite3"
    SandboxControl(db).set_option("creating_seconds", 0)
    password = urlsplit(fresh_postgres_db).password or ""
    run = run_audit(
        "--endpoint", "sandbox", "--sandbox-path", str(db), "--ledger", fresh_postgres_db, secrets_to_scan=(password,)
    )
    assert (run.returncode, run.stdout) == (2, "")
    [line] = run.stderr.splitlines()
    assert re.fullmatch(
        rf"{re.escape(PREFIX)}audit incomplete, nothing is reported: ledger postgresql://\*\*\*@127\.0\.0\.1:\d+/\w+: "
        r"holds no ledger \(no schema qianfan_tpm\); the audit never creates one",
        line,
    ), line
    with psycopg.connect(fresh_postgres_db) as conn:
        schemas = conn.execute("SELECT schema_name FROM information_schema.schemata").fetchall()
    assert ("qianfan_tpm",) not in schemas


def test_a_ledger_urls_password_is_never_printed(fresh_postgres_db: str, tmp_path: Path) -> None:
    db = tmp_path / "sandbox" / "qianfan.sqlite3"
    SandboxControl(db).set_option("creating_seconds", 0)
    host = ProviderHost(tmp_path / "host.stderr")
    try:
        host.configure(host_config(db, **{"qianfan:ledger": fresh_postgres_db}))
        create(host, "chat", {"model": "ernie-speed-8k", "purchaseCount": 1})
    finally:
        host.close()
    parts = urlsplit(fresh_postgres_db)
    password = parts.password or ""
    wrong = fresh_postgres_db.replace(f":{password}@", ":Wr0ng-Passw0rd@")
    unreachable = f"postgresql://ledger:S3cret-Unreachable@127.0.0.1:9/{parts.path.lstrip('/')}"
    secrets = (fresh_postgres_db, password, "Wr0ng-Passw0rd", "S3cret-Unreachable")
    base = ["--endpoint", "sandbox", "--sandbox-path", str(db), "--models", "ernie-speed-8k"]
    from_env = keys_env() | {"QIANFAN_TPM_LEDGER": fresh_postgres_db}
    runs = {
        "table": run_audit(*base, "--ledger", fresh_postgres_db, secrets_to_scan=secrets),
        "json": run_audit(*base, "--ledger", fresh_postgres_db, "--json", secrets_to_scan=secrets),
        "env": run_audit(*base, "--ledger", "--json", env=from_env, secrets_to_scan=secrets),
        "help": run_audit("--help", env=from_env, secrets_to_scan=secrets),
        "wrong password": run_audit(*base, "--ledger", wrong, secrets_to_scan=secrets),
        "unreachable": run_audit(*base, "--ledger", unreachable, secrets_to_scan=secrets),
        "misplaced": run_audit(*base, "--warn-hours", fresh_postgres_db, secrets_to_scan=secrets),
        "bad scheme": run_audit(*base, "--ledger", "mysql://u:S3cret-Unreachable@h/db", secrets_to_scan=secrets),
    }
    assert runs["table"].returncode == 1 and "ledger: held by" in runs["table"].stdout, runs["table"].stderr
    assert "dev/chat (bought, #1)" in runs["table"].stdout  # no state given: unmanaged, and the ledger names it
    assert runs["json"].json()["ledger"]["location"].startswith("postgresql://***@127.0.0.1:")
    assert runs["env"].json() == runs["json"].json()  # --ledger alone reads QIANFAN_TPM_LEDGER
    assert runs["help"].returncode == 0 and "--ledger [LOCATION]" in runs["help"].stdout
    for name in ("wrong password", "unreachable", "misplaced", "bad scheme"):
        run = runs[name]
        assert (run.returncode, run.stdout) == (2, ""), name
        assert len(run.stderr.splitlines()) == 1, (name, run.stderr)
    assert "password authentication failed" in runs["wrong password"].stderr
    assert runs["unreachable"].stderr.startswith(
        f"{PREFIX}audit incomplete, nothing is reported: ledger postgresql://***@127.0.0.1:9/"
    )
    assert runs["bad scheme"].stderr.startswith(f"{PREFIX}--ledger (or QIANFAN_TPM_LEDGER) must be 'off', ")


def test_forget_claim_needs_a_ledger(tmp_path: Path) -> None:
    run = run_audit("--endpoint", "sandbox", "--sandbox-path", str(tmp_path / "x.sqlite3"), "--forget-claim", "tpm-x")
    assert (run.returncode, run.stdout) == (2, "")
    assert run.stderr.splitlines() == [f"{PREFIX}--forget-claim needs --ledger: the ledger whose claim to let go of"]


# -- the audit tier's world, read with its ledger -------------------------------------------------
def test_the_world_read_with_its_ledger_names_the_lost_stacks_quota(world: World) -> None:
    run = world.audit("--ledger", "--json")
    assert run.returncode == 1, run.stderr
    document = run.json()
    assert set(document) == {"instances", "missing", "totals", "ledger"}
    assert document["ledger"]["location"] == str(world.db.parent / "qianfan-ledger.sqlite3")
    items = by_id(run)
    assert all(set(item) == {*INSTANCE_KEYS, "ledger"} for item in items.values())
    ids = world.ids
    # Only the lost stack's quota disagrees, of what the world built (another test of this tier may
    # adopt the console's quota into a stack of its own, whose state this audit is not given).
    mismatched = {id_ for id_, item in items.items() if "ledger-mismatch" in item["verdicts"]}
    assert mismatched - {ids["console"]} == {ids["lost"]}
    assert who(items[ids["lost"]]["ledger"]["claim"]) == ("qianfan-tpm", "dev", "lost")
    console = items[ids["console"]]["ledger"]
    assert console["boughtBy"] is None and console["mayBeFrom"] == []
    if console["claim"] is None:
        assert ids["console"] not in mismatched and console["journal"] == []
    else:
        assert console["claim"]["resource"] == ids["console"] and console["claim"]["purchaseId"] is None
    # The claimed-twice instance was adopted a second time by a host that does not share the ledger:
    # the ledger still names the resource whose purchase bought it.
    assert who(items[ids["twin-a"]]["ledger"]["claim"]) == ("qianfan-tpm", "dev", "twin-a")
    assert who(items[ids["replaced-old"]]["ledger"]["boughtBy"]) == ("qianfan-tpm", "dev", "replaced")
    assert "instance(s) a state holds have no claim in the ledger" not in run.stderr


INSTANCE_KEYS = {"instanceId", "model", "units", "tpm", "rpm", "status", "releaseTime", "owners", "verdicts"}
