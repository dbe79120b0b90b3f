"""`python -m audit` against the sandbox, over quotas made through Pulumi's provider host.

The world (conftest) holds one instance per verdict; every run is a child process, its request
log is checked to be nothing but DescribeTPMResource, and its output is scanned for the keys.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from hostdriver import PROJECT_ROOT, ProviderHost
from providers.models import DOCUMENTED_MODELS
from tests.audit.harness import (
    ACCESS_KEY,
    DESCRIBE,
    SECRET_KEY,
    World,
    assert_read_only,
    child_env,
    create,
    host_config,
    keys_env,
    run_audit,
)
from tests.audit.pulumi_state import export_document

pytestmark = pytest.mark.slow  # the world's hosts and sandbox, the audit as a process

INSTANCE_KEYS = {"instanceId", "model", "units", "tpm", "rpm", "status", "releaseTime", "owners", "verdicts"}


def verdicts(run_by_id: dict[str, dict[str, Any]]) -> dict[str, tuple[list[str], list[tuple[str, str]]]]:
    return {
        id_: (item["verdicts"], sorted((o["stack"], o["resource"]) for o in item["owners"]))
        for id_, item in run_by_id.items()
    }


def expected(world: World) -> dict[str, tuple[list[str], list[tuple[str, str]]]]:
    ids = world.ids
    return {
        ids["chat-speed"]: (["managed"], [("dev", "chat-speed")]),
        ids["batch-lite"]: (["drift"], [("dev", "batch-lite")]),
        ids["nightly"]: (["managed", "expiring"], [("dev", "nightly")]),
        ids["moved"]: (["drift"], [("dev", "moved")]),
        ids["shared"]: (["claimed-twice"], [("dev", "shared"), ("staging", "shared")]),
        ids["twin-a"]: (["claimed-twice"], [("dev", "twin-a"), ("dev", "twin-b")]),
        ids["replaced-old"]: (["managed"], [("dev", "replaced")]),
        ids["replaced"]: (["managed"], [("dev", "replaced")]),
        ids["lost"]: (["unmanaged"], []),
        ids["console"]: (["unmanaged"], []),
    }


def test_every_verdict_from_real_provider_flows(world: World) -> None:
    run = world.audit("--json")
    assert run.returncode == 1, run.stderr
    document = run.json()
    assert set(document) == {"instances", "missing", "totals"}
    assert all(set(item) == INSTANCE_KEYS for item in document["instances"])
    by_id = run.by_id()
    assert verdicts(by_id) == expected(world)
    ids = world.ids
    # A stopped instance (released with the SDK behind dev's back) is reported once, as missing;
    # the entry awaiting re-creation after delete-before-replace is no claim at all.
    assert document["missing"] == [
        {"stack": "dev", "resource": "old", "instanceId": ids["old"], "model": "ernie-tiny-8k"}
    ]
    assert ids["dbr"] not in by_id
    # What Qianfan has, not what the state recorded.
    resized = by_id[ids["batch-lite"]]
    assert (resized["units"], resized["tpm"], resized["rpm"], resized["status"]) == (3, 30_000, 99, "Running")
    assert by_id[ids["moved"]]["releaseTime"] == "2032-02-02T00:00:00+08:00"
    assert by_id[ids["console"]]["releaseTime"] == "2031-05-05T05:05:05+08:00"
    assert by_id[ids["chat-speed"]]["releaseTime"] is None
    assert document["totals"]["ernie-speed-8k"] == {"tpm": 50_000, "unmanagedTpm": 20_000}
    assert document["totals"]["ernie-lite-8k"] == {"tpm": 40_000, "unmanagedTpm": 10_000}
    assert document["totals"]["ernie-tiny-8k"] == {"tpm": 0, "unmanagedTpm": 0}
    assert set(DOCUMENTED_MODELS) <= set(document["totals"])
    for model, totals in document["totals"].items():
        live = [i for i in document["instances"] if i["model"] == model]
        assert totals["tpm"] == sum(i["tpm"] for i in live)
        assert totals["unmanagedTpm"] == sum(i["tpm"] for i in live if "unmanaged" in i["verdicts"])
    assert "interrupted create of 'late' (ernie-lite-8k)" in run.stderr


def test_table_shows_owners_details_and_the_line_that_adopts(world: World) -> None:
    run = world.audit()
    assert run.returncode == 1, run.stderr
    lines = run.stdout.splitlines()
    ids = world.ids

    def row(instance_id: str) -> list[str]:
        [line] = [line for line in lines if line.startswith(instance_id + " ")]
        return re.split(r"\s{2,}", line)

    assert row(ids["console"]) == [
        ids["console"],
        "ernie-speed-8k",
        "2",
        "20,000",
        "Running",
        "2031-05-05T05:05:05+08:00",
        "-",
        "unmanaged",
    ]
    assert row(ids["shared"])[-2:] == ["dev/shared, staging/shared", "claimed-twice"]
    assert row(ids["replaced-old"])[-2:] == ["dev/replaced (pending delete)", "managed"]
    assert row(ids["chat-speed"])[5] == "none"
    [missing] = [line for line in lines if ids["old"] in line and "Stopped" in line]
    assert re.split(r"\s{2,}", missing)[:5] == ["dev", "old", ids["old"], "ernie-tiny-8k", "Stopped"]
    text = run.stdout
    assert f"{ids['batch-lite']}: dev/batch-lite records 1 unit(s), Qianfan has 3" in text
    assert (
        f"{ids['moved']}: dev/moved records release 2031-01-01T00:00:00+08:00, Qianfan has 2032-02-02T00:00:00+08:00"
        in text
    )
    assert f"{ids['twin-a']} claimed by dev/twin-a, dev/twin-b" in text
    assert re.search(re.escape(ids["nightly"]) + r" is released at \S+ \(in [12]\.\d h\)", text)
    assert re.search(r"^ernie-speed-8k\s+50,000\s+20,000$", text, re.M)
    adopt = {ids["lost"], ids["console"]}
    entries = [yaml.safe_load(line.strip()) for line in lines if line.startswith("    - {")]
    assert {entry[0]["adoptInstanceId"] for entry in entries} == adopt
    [console] = [e[0] for e in entries if e[0]["adoptInstanceId"] == ids["console"]]
    assert console == {
        "name": ids["console"],
        "model": "ernie-speed-8k",
        "purchaseCount": 2,
        "releaseTime": "2031-05-05T05:05:05+08:00",
        "adoptInstanceId": ids["console"],
    }
    assert "Result: 7 finding(s)" in text


def test_adopting_the_printed_line_brings_the_instance_under_a_stack(world: World, tmp_path: Path) -> None:
    run = world.audit()
    [line] = [line for line in run.stdout.splitlines() if f'adoptInstanceId: "{world.ids["console"]}"' in line]
    [entry] = yaml.safe_load(line.strip())
    host = ProviderHost(tmp_path / "host.stderr")
    try:
        host.configure(host_config(world.db))
        world.control.clear_requests()
        quota = create(host, entry.pop("name"), entry)
    finally:
        host.close()
    assert quota.id == world.ids["console"]
    assert {r["action"] for r in world.control.requests()} == {DESCRIBE}, "adoption bought or changed something"
    platform = tmp_path / "platform.json"
    platform.write_text(json.dumps(export_document("platform", [quota])))

    world.control.clear_requests()
    run = run_audit(
        "--backend", str(world.backend), "--state", str(platform), "--models", "ernie-speed-8k", *world.sandbox_args()
    )
    assert_read_only(world.control)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Result: clean" in run.stdout
    assert "state entries of models not audited: not checked" in run.stdout
    run = run_audit(
        "--backend",
        str(world.backend),
        "--state",
        str(platform),
        "--models",
        "ernie-speed-8k",
        "--json",
        *world.sandbox_args(),
    )
    assert verdicts(run.by_id()) == {
        world.ids["chat-speed"]: (["managed"], [("dev", "chat-speed")]),
        world.ids["nightly"]: (["managed", "expiring"], [("dev", "nightly")]),
        world.ids["console"]: (["managed"], [("platform", entry["adoptInstanceId"])]),
    }
    assert run.returncode == 0


def test_only_describe_is_sent_and_faults_are_retried(world: World) -> None:
    control = world.control
    for kind, count, status in (("throttle", 3, None), ("error", 2, 500), ("error", 1, 503), ("drop", 2, None)):
        control.add_fault(DESCRIBE, kind, count, status)
    control.add_fault("*", "error_after_commit", 1, 502)
    try:
        run = world.audit("--json")
    finally:
        control.clear_faults()
    assert run.returncode == 1, run.stderr
    assert verdicts(run.by_id()) == expected(world)
    requests = assert_read_only(control)  # also: nothing but DescribeTPMResource, under faults too
    statuses = [r["status"] for r in requests]
    assert (statuses.count(429), statuses.count(500), statuses.count(503), statuses.count(0)) == (3, 2, 1, 2)
    assert statuses.count(502) == 1
    assert len(requests) == len(DOCUMENTED_MODELS) + 9
    assert sorted({r["body"]["model"] for r in requests}) == sorted(DOCUMENTED_MODELS)


def test_a_model_that_keeps_failing_leaves_the_audit_incomplete(world: World) -> None:
    world.control.add_fault(DESCRIBE, "throttle", 100_000)
    try:
        run = world.audit("--json", "--timeout-seconds", "2")
    finally:
        world.control.clear_faults()
    assert run.returncode == 2
    assert run.stdout == ""
    [line] = run.stderr.splitlines()  # one cause, one line, however many models it stopped
    assert line.startswith(
        f"python -m audit: audit incomplete, nothing is reported: none of the {len(DOCUMENTED_MODELS)} models listed: "
        "DescribeTPMResource failed: HTTP 429 RateLimitExceeded"
    ), line
    assert re.search(r"gave up after \d+ attempt\(s\) in [\d.]+s, the limit set by --timeout-seconds \(2s\)$", line)


def test_the_provider_settings_reach_a_url_and_bad_keys_stop_the_audit(world: World) -> None:
    """The same settings as the provider: QIANFAN_CONSOLE_API_BASE_URL and the two keys."""
    url = world.standalone.url
    world.control.clear_requests()
    env = keys_env() | {"QIANFAN_CONSOLE_API_BASE_URL": url}
    run = run_audit("--backend", str(world.backend), "--state", str(world.staging_export), "--json", env=env)
    assert run.returncode == 1, run.stderr
    assert verdicts(run.by_id()) == expected(world)
    assert_read_only(world.control)

    wrong_secret = "SKwrong" + SECRET_KEY[7:][::-1]
    unknown_key = "AKunknown" + ACCESS_KEY[9:][::-1]
    for access_key, secret_key, code in (
        (ACCESS_KEY, wrong_secret, "400 SignatureDoesNotMatch"),  # the statuses of Baidu's error page
        (unknown_key, SECRET_KEY, "403 InvalidAccessKeyId"),
    ):
        world.control.clear_requests()
        run = run_audit(
            "--endpoint",
            url,
            "--backend",
            str(world.backend),
            env=keys_env(access_key, secret_key),
            secrets_to_scan=(access_key, secret_key),
        )
        assert run.returncode == 2 and run.stdout == ""
        [line] = run.stderr.splitlines()
        assert f"none of the {len(DOCUMENTED_MODELS)} models listed: DescribeTPMResource failed: HTTP {code}" in line
        assert "check QIANFAN_ACCESS_KEY and QIANFAN_SECRET_KEY" in line and "pulumi config" not in line
        # The sandbox journals only authenticated requests (as a witness should), so a refused key
        # leaves no row; tests/audit/test_failures.py counts the requests a refused key costs.
        assert world.control.requests() == []

    world.control.clear_requests()
    run = run_audit("--endpoint", url, env=child_env())
    assert run.returncode == 2 and run.stdout == ""
    assert "no Qianfan credentials: export QIANFAN_ACCESS_KEY and QIANFAN_SECRET_KEY" in run.stderr
    assert world.control.requests() == []


def test_hidden_releases_are_missing_and_the_rich_shape_agrees(world: World) -> None:
    """A released instance Qianfan stops listing is `missing` as a Stopped one is; the sandbox's rich
    answer shape (model, count, releaseTime besides Baidu's documented fields) gives the same verdicts."""
    control = world.control
    control.set_option("released_visibility", "hidden")
    try:
        hidden = world.audit("--json")
        control.set_option("describe_shape", "rich")
        rich = world.audit("--json")
    finally:
        control.set_option("released_visibility", "stopped")
        control.set_option("describe_shape", "documented")
    for run in (hidden, rich):
        assert run.returncode == 1, run.stderr
        assert verdicts(run.by_id()) == expected(world)
        assert run.json()["missing"] == [
            {"stack": "dev", "resource": "old", "instanceId": world.ids["old"], "model": "ernie-tiny-8k"}
        ]
    assert hidden.by_id()[world.ids["batch-lite"]]["units"] == 3  # from tpm / 10,000


AUDIT_COMMAND = re.compile(r"<!-- audit-command -->\n```sh\n(.+)\n```")


def test_the_documented_command_audits_the_dev_stack_from_a_fresh_clone(world: World) -> None:
    pages = {page: (PROJECT_ROOT / page).read_text() for page in ("docs/audit.md", "README.md")}
    commands = {page: AUDIT_COMMAND.findall(text) for page, text in pages.items()}
    assert commands["docs/audit.md"], "docs/audit.md has no command after <!-- audit-command -->"
    found = {c for cs in commands.values() for c in cs}
    assert len(found) == 1, f"the marked audit commands differ: {found}"
    [command] = found
    venv_python = "venv/bin/python"
    assert command.startswith(f"{venv_python} -m audit ")
    # A clone: the project's packages at the top, the dev stack's sandbox under .sandbox/, and the
    # state scripts/dev keeps with the project as file backend, in .pulumi/. Its venv/bin/python is
    # the interpreter running this test (a checkout need not have a venv/ to be tested).
    line = shlex.quote(sys.executable) + command.removeprefix(venv_python)
    for package in PROJECT_ROOT.iterdir():
        link = world.project / package.name
        if (package / "__init__.py").is_file() and not link.exists():
            link.symlink_to(package)
    if not (world.project / ".pulumi").exists():
        (world.project / ".pulumi").symlink_to(world.home / ".pulumi")
    empty_home = world.root / "empty-home"  # nothing in ~/.pulumi: the command must read the project's
    empty_home.mkdir(exist_ok=True)
    world.control.clear_requests()
    out = subprocess.run(
        ["bash", "-c", line],
        cwd=world.project,
        env=child_env(HOME=str(empty_home)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1, out.stderr  # first: a run that failed to start says why
    assert_read_only(world.control)
    assert ACCESS_KEY not in out.stdout + out.stderr and SECRET_KEY not in out.stdout + out.stderr
    lines = out.stdout.splitlines()
    [shared] = [line for line in lines if line.startswith(world.ids["shared"] + " ")]
    assert re.split(r"\s{2,}", shared)[-2:] == ["dev/shared", "managed"]  # staging is not in this backend
    assert "Result: 6 finding(s)" in out.stdout
