"""The dev stack's `pulumi preview`, `up`, `refresh` and `destroy`, rehearsed as closely as this
machine allows (no Pulumi CLI can be installed here).

`__main__.py` runs under Pulumi's mock runtime with the dev stack's config; every TPMQuota it
registers goes to a real provider host (`python -m pulumi.dynamic`, cwd = project root) exactly as
the engine sends it — the registration's inputs with the program's own `__provider`, Check, then
Create (or Diff, and Update, against the state of an earlier run) — and the host's answers are what
the program's exports resolve to. Each CLI run gets its own host process, configured with the stack
config as the engine sends it since Pulumi 3.139; refresh and destroy use the config saved in state.
The provider starts its embedded sandbox (a real HTTP server on 127.0.0.1 speaking Qianfan's
console protocol, with its fixed key pair, because `dev` has no keys) at the first API call.

What the real engine does that this does not:
- no CLI and no language host: the program runs in the test process (`runpy`, not `python -m` in
  the project directory), with Pulumi's mock monitor in place of the engine's resource monitor;
- no default-provider resource (`pulumi:providers:pulumi-python`) is registered or put in state,
  no checkpoint is written (the state is kept in memory), nothing is encrypted, no secrets
  provider runs (the dev stack has no secrets), and the stack resource's outputs are read from the
  program's root stack rather than from RegisterResourceOutputs;
- `pulumi up` here is the update phase only (as with `--skip-preview`); its preview phase is the
  preview test, run on its own;
- Configure carries only `args` and `acceptSecrets`; Check carries no random seed; refresh and
  destroy call Read and Delete one resource at a time (the engine runs independent ones in
  parallel); a replacement is refused, not rehearsed; no plugin discovery, no `pulumi-resource-
  pulumi-python` shim, no policy packs, no `customTimeouts`, `retainOnDelete` or `ignoreChanges`.
"""

from __future__ import annotations

import base64
import json
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pulumi
import pytest

from hostdriver import TYPE, UNKNOWN, provider_blob
from hostdriver.program import Deployment, RehearsalError, destroy, engine_config, refresh, run_program
from qianfan_sandbox import SandboxControl
from tests.e2e.dev_stack import RunHost, dev_stack_config, state_text
from tests.support.keys import SANDBOX_KEYS, assert_no_secrets

pytestmark = pytest.mark.slow  # a provider host per rehearsed CLI run

BEIJING = timezone(timedelta(hours=8))
UNIT_TPM, UNIT_RPM = 10_000, 33
DESCRIBE, PURCHASE, RELEASE, RESIZE = (
    "DescribeTPMResource",
    "PurchaseTPMResource",
    "ReleaseTPMResource",
    "ResizeTPMResource",
)


def release_time(text: str) -> str:
    """A stack file's releaseTime as Qianfan and the state spell it: RFC3339 in +08:00 (a time
    without an offset is Beijing time). Written here, not imported from providers/."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=BEIJING)
    return moment.astimezone(BEIJING).isoformat()


def release_after_seconds(text: str) -> int:
    """A stack file's releaseAfter (`8h`, `1h30m`, `3d`) in seconds, as the resource page defines it."""
    match = re.fullmatch(r"(?:([0-9]+)d)?(?:([0-9]+)h)?(?:([0-9]+)m)?", text)
    assert match and text, f"not a releaseAfter: {text!r}"
    days, hours, minutes = (int(g or 0) for g in match.groups())
    return ((days * 24 + hours) * 60 + minutes) * 60


def declared() -> dict[str, dict[str, Any]]:
    """What stacks/Pulumi.dev.yaml declares, per quota name: model, units, release time or None,
    release after (as written, and in seconds) or None."""
    return {
        q["name"]: {
            "model": q["model"],
            "count": q["purchaseCount"],
            "releaseTime": release_time(q["releaseTime"]) if "releaseTime" in q else None,
            "releaseAfter": q.get("releaseAfter"),
            "seconds": release_after_seconds(q["releaseAfter"]) if "releaseAfter" in q else None,
        }
        for q in dev_stack_config()["qianfan-tpm:quotas"]
    }


def assert_release_of(row: dict[str, Any], want: dict[str, Any]) -> str | None:
    """The sandbox row's release is what the stack file asks for: the fixed time, or the moment the
    purchase arrived (its startTime, whole seconds) plus releaseAfter, within the second the
    provider rounds up by and the second a request takes. Returns the row's release."""
    if want["seconds"] is None:
        assert row["releaseTime"] == want["releaseTime"]
        return row["releaseTime"]
    after = datetime.fromisoformat(row["releaseTime"]) - datetime.fromisoformat(row["startTime"])
    assert abs(after.total_seconds() - want["seconds"]) <= 2, (row, want)
    assert row["releaseTime"].endswith("+08:00")
    return str(row["releaseTime"])


def urn_of(name: str) -> str:
    return f"urn:pulumi:dev::qianfan-tpm::{TYPE}::{name}"


def journal(control: SandboxControl, since: int = 0) -> list[tuple[str, dict[str, Any]]]:
    """(action, body) of every request the sandbox received, from the `since`-th on."""
    return [(r["action"], r["body"]) for r in control.requests()[since:]]


def wait_until_running(control: SandboxControl, count: int, timeout: float = 10.0) -> None:
    """A refresh comes later than the `up`: let the sandbox's `Creating` (1 s) pass, bounded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = control.instances()
        if len(rows) == count and all(r["status"] == "Running" for r in rows):
            return
        time.sleep(0.1)
    raise AssertionError(f"the sandbox's instances are not Running after {timeout}s: {control.instances()}")


@pytest.fixture
def deployed(run_host: RunHost, dev_config: dict[str, str]) -> tuple[Any, Deployment]:
    """`pulumi up` of the dev stack on a new stack: (its run result, the state it saved)."""
    result = run_program(run_host("up", dev_config), dev_config, preview=False)
    return result, result.deployment


def test_up_buys_one_instance_per_quota(
    deployed: tuple[Any, Deployment], dev_config: dict[str, str], sandbox_db: Path
) -> None:
    result, state = deployed
    plan = declared()
    assert sorted(result.steps, key=lambda s: s.urn) == sorted(
        (("create", urn_of(name)) for name in plan), key=lambda s: s[1]
    )
    assert result.diffs == {}  # nothing to diff against on a new stack

    # -- the sandbox: one instance per quota, as declared -----------------------------------------
    control = SandboxControl(sandbox_db)
    rows = {row["instanceId"]: row for row in control.instances()}
    assert len(rows) == len(plan)
    resources = state.by_name()
    assert sorted(resources) == sorted(plan)
    released: dict[str, str | None] = {}  # the release each instance got, by quota name
    for name, want in plan.items():
        row = rows[resources[name].id]
        assert (row["model"], row["count"]) == (want["model"], want["count"])
        released[name] = assert_release_of(row, want)
        assert row["paymentTiming"] == "Postpaid" and row["status"] in ("Creating", "Running") and not row["released"]

    # -- the program's exports resolved to what the host created ----------------------------------
    assert result.exports == {
        name: {
            "instanceId": resources[name].id,
            "status": resources[name].outputs["status"],
            "tpm": want["count"] * UNIT_TPM,
            "rpm": want["count"] * UNIT_RPM,
        }
        for name, want in plan.items()
    }

    # -- the state: urn, id, checked inputs, outputs ----------------------------------------------
    blob = provider_blob()
    pickled = base64.b64decode(blob)
    assert b"providers.tpm_quota" in pickled and b"TPMQuotaProvider" in pickled and len(blob) < 300
    assert state.config == dev_config
    for name, want in plan.items():
        resource = resources[name]
        assert resource.urn == urn_of(name) and resource.type == TYPE and not resource.protect
        inputs = {"model": want["model"], "purchaseCount": want["count"], "paymentTiming": "Postpaid"}
        if want["releaseTime"]:
            inputs["releaseTime"] = want["releaseTime"]
        if want["releaseAfter"]:
            inputs["releaseAfter"] = want["releaseAfter"]  # the input; the instant it gave is an output
        # TPMQuota names itself (its URN) for the purchase ledger: the same URN the engine gave it.
        assert resource.inputs == {**inputs, "ownerUrn": resource.urn, "__provider": blob}
        assert resource.outputs == {
            **resource.inputs,
            **({"releaseTime": released[name]} if released[name] else {}),
            "instanceId": resource.id,
            "status": resource.outputs["status"],
            "tpm": want["count"] * UNIT_TPM,
            "rpm": want["count"] * UNIT_RPM,
        }
    assert_no_secrets({"state": state_text(state)}, SANDBOX_KEYS)

    # -- the calls: per create, as the resource page's lifecycle says (Describe, Purchase, Describe)
    sent = journal(control)
    assert len(sent) == 3 * len(plan)  # creates run concurrently: their requests interleave
    for name, want in plan.items():
        billing = {"paymentTiming": "Postpaid"}
        if released[name]:
            billing["releaseTime"] = released[name]  # the instant, sent with the purchase
        assert [(a, b) for a, b in sent if b.get("model") == want["model"]] == [
            (DESCRIBE, {"model": want["model"]}),
            (PURCHASE, {"model": want["model"], "billing": billing, "purchaseCount": want["count"]}),
            (DESCRIBE, {"model": want["model"]}),  # the confirmation: a listing requested after the purchase
        ]
    assert all(r["status"] == 200 for r in control.requests())


def test_second_up_changes_nothing(
    deployed: tuple[Any, Deployment], run_host: RunHost, dev_config: dict[str, str], sandbox_db: Path
) -> None:
    first, state = deployed
    calls = len(SandboxControl(sandbox_db).requests())
    again = run_program(run_host("up-again", dev_config), dev_config, preview=False, prior=state)
    assert sorted(again.steps, key=lambda s: s.urn) == sorted(
        (("same", r.urn) for r in state.resources), key=lambda s: s[1]
    )
    assert again.diffs == {r.urn: "DIFF_NONE" for r in state.resources}
    assert again.exports == first.exports
    assert {r.urn: (r.id, r.inputs, r.outputs) for r in again.deployment.resources} == {
        r.urn: (r.id, r.inputs, r.outputs) for r in state.resources
    }
    assert journal(SandboxControl(sandbox_db), calls) == [], "a second `pulumi up` without changes called Qianfan"


def test_refresh_then_destroy(
    deployed: tuple[Any, Deployment], run_host: RunHost, dev_config: dict[str, str], sandbox_db: Path
) -> None:
    _, state = deployed
    control = SandboxControl(sandbox_db)
    wait_until_running(control, len(state.resources))
    # `pulumi refresh` and `pulumi destroy` do not run the program: a new host, the config of state.
    later = run_host("refresh-destroy", state.config)

    # -- refresh: nothing changed but the status Qianfan reports ----------------------------------
    calls = len(control.requests())
    refreshed, reads = refresh(later, state)
    for resource, got in zip(state.resources, reads, strict=True):
        assert got.id == resource.id
        assert got.outputs == {**resource.outputs, "status": "Running"}  # was Creating or Running
        assert got.inputs == resource.inputs
    assert journal(control, calls) == [(DESCRIBE, {"model": r.inputs["model"]}) for r in state.resources]
    assert [(r.urn, r.id, r.inputs) for r in refreshed.resources] == [(r.urn, r.id, r.inputs) for r in state.resources]

    # -- a change made in the console shows as drift ----------------------------------------------
    changed = refreshed.by_name()["chat-speed"]
    control.update_instance(changed.id, count=3)
    # The next `pulumi refresh` is another run: another host, whose listings start empty.
    later = run_host("refresh-again", state.config)
    drifted, reads = refresh(later, refreshed)
    by_urn = {got.urn: got for got in reads}
    got = by_urn[changed.urn]
    assert got.id == changed.id
    assert (got.outputs["purchaseCount"], got.outputs["tpm"], got.outputs["rpm"]) == (3, 3 * UNIT_TPM, 3 * UNIT_RPM)
    assert got.inputs == {**changed.inputs, "purchaseCount": 3}
    for other in refreshed.resources:
        if other.urn != changed.urn:
            assert by_urn[other.urn].outputs == other.outputs and by_urn[other.urn].inputs == other.inputs
    # The refreshed state records what Read reported, inputs included (so the drift is a diff).
    assert [(r.urn, r.id, r.inputs, r.outputs) for r in drifted.resources] == [
        (got.urn, got.id, got.inputs, got.outputs) for got in reads
    ]

    # ... and the next preview wants to put it back, without calling Qianfan.
    calls = len(control.requests())
    plan = run_program(run_host("preview-drift", dev_config), dev_config, preview=True, prior=drifted)
    assert sorted(plan.steps, key=lambda s: s.urn) == sorted(
        (("update" if r.urn == changed.urn else "same", r.urn) for r in drifted.resources), key=lambda s: s[1]
    )
    assert plan.diffs == {r.urn: "DIFF_SOME" if r.urn == changed.urn else "DIFF_NONE" for r in drifted.resources}
    assert plan.deployment == drifted
    assert journal(control, calls) == []

    # -- destroy: Release, last first; every instance stopped ----------------------------------
    calls = len(control.requests())
    order = destroy(later, drifted)
    assert order == [r.urn for r in reversed(drifted.resources)]
    # Each release is read back: a listing of its model must show the instance stopped.
    assert journal(control, calls) == [
        step
        for r in reversed(drifted.resources)
        for step in (
            (RELEASE, {"model": r.inputs["model"], "instanceId": r.id}),
            (DESCRIBE, {"model": r.inputs["model"]}),
        )
    ]
    rows = control.instances()
    assert len(rows) == len(state.resources)
    assert all(row["status"] == "Stopped" and row["released"] for row in rows)

    # -- destroy again (as after a destroy whose state was not saved): nothing left to release ----
    calls = len(control.requests())
    destroy(later, drifted)
    again = control.requests()[calls:]
    assert [(r["action"], r["status"], r["code"]) for r in again] == [
        step for _ in drifted.resources for step in ((RELEASE, 400, "InvalidInstanceStatus"), (DESCRIBE, 200, None))
    ]

    # -- a final refresh finds every quota gone and empties the state -----------------------------
    emptied, reads = refresh(later, drifted)
    assert [got.id for got in reads] == ["" for _ in drifted.resources]
    assert emptied.resources == ()
    assert_no_secrets({"state after up": state_text(state), "state after drift": state_text(drifted)}, SANDBOX_KEYS)


def test_preview_calls_no_api(run_host: RunHost, dev_config: dict[str, str], sandbox_db: Path) -> None:
    host = run_host("preview", dev_config)
    plan = run_program(host, dev_config, preview=True)
    assert sorted(plan.steps, key=lambda s: s.urn) == sorted(
        (("create", urn_of(name)) for name in declared()), key=lambda s: s[1]
    )
    assert plan.exports == {
        name: {"instanceId": UNKNOWN, "status": UNKNOWN, "tpm": UNKNOWN, "rpm": UNKNOWN} for name in declared()
    }
    assert plan.diffs == {} and plan.deployment.resources == ()
    assert host.process.poll() is None, "the host died during the preview"
    # The embedded sandbox creates its database at the first API call: there was none.
    assert not sandbox_db.exists(), "the preview called Qianfan"
    # Pulumi's runtime is left as it was found: no root stack, no config for the next test.
    assert pulumi.runtime.get_root_resource() is None
    assert pulumi.Config("qianfan-tpm").get("quotas") is None


def test_check_failure_stops_the_run_before_anything_is_bought(
    run_host: RunHost, dev_config: dict[str, str], sandbox_db: Path
) -> None:
    # The dev stack with a cap below batch-lite's 2 units: `pulumi up` stops in its preview.
    config = {**dev_config, "qianfan:maxPurchaseCount": "1"}
    with pytest.raises(RehearsalError) as caught:
        run_program(run_host("capped", config), config, preview=True)
    message = str(caught.value)
    assert message.startswith(urn_of("batch-lite") + ": property purchaseCount value {2} has a problem: ")
    assert "qianfan:maxPurchaseCount" in message
    assert not sandbox_db.exists()
    assert pulumi.runtime.get_root_resource() is None


def test_a_stack_file_with_several_mistakes_fails_the_preview_naming_each(
    run_host: RunHost, dev_config: dict[str, str], sandbox_db: Path
) -> None:
    """All of them in one run, from the program, before any resource is declared or any call made."""
    quotas = json.loads(dev_config["qianfan-tpm:quotas"])
    quotas[0] = {**quotas[0], "purchaseCount": -3, "releaseTime": "soon", "protect": "yes"}
    assert "releaseAfter" in quotas[0]  # so releaseTime is one release too many
    config = {
        **dev_config,
        "qianfan-tpm:quotas": json.dumps(quotas),
        "qianfan:maxPurchaseCnt": "50",
        "qianfan:accessKey": "AK-half-a-pair",
    }
    with pytest.raises(pulumi.RunError) as caught:
        run_program(run_host("mistakes", config), config, preview=True)
    lines = str(caught.value).splitlines()
    name = quotas[0]["name"]
    assert lines == [
        "6 problems in the stack config:",
        "  stack config qianfan:maxPurchaseCnt is not a setting; did you mean qianfan:maxPurchaseCount?",
        "  stack config qianfan:secretKey is not set (nor QIANFAN_SECRET_KEY), but qianfan:accessKey is: only half a "
        "key pair is configured. Set it with `pulumi config set --secret qianfan:secretKey <SK>` or export "
        "QIANFAN_SECRET_KEY",
        f"  stack config qianfan-tpm:quotas[0] ('{name}'): purchaseCount must be a whole number of units >= 1 and "
        "<= 10000 (1 unit = 10,000 TPM and 33 RPM), got -3",
        f"  stack config qianfan-tpm:quotas[0] ('{name}'): releaseTime 'soon' is not a time Qianfan accepts; use "
        "RFC3339 with an explicit offset (2030-01-25T12:30:30+08:00 or 2030-01-25T04:30:30Z) or 'YYYY-MM-DD "
        "HH:MM:SS' read as Beijing time (UTC+08:00)",
        f"  stack config qianfan-tpm:quotas[0] ('{name}'): releaseAfter cannot be set together with releaseTime: "
        "releaseTime is one fixed moment, releaseAfter a duration after the purchase; keep one of them",
        f"  stack config qianfan-tpm:quotas[0] ('{name}'): protect must be true or false, got 'yes'",
    ]
    assert not sandbox_db.exists()
    assert pulumi.runtime.get_root_resource() is None


def test_a_misspelt_namespace_fails_the_preview_with_the_rename(
    run_host: RunHost, dev_config: dict[str, str], sandbox_db: Path
) -> None:
    config = {("qianfan-tmp:quotas" if k == "qianfan-tpm:quotas" else k): v for k, v in dev_config.items()}
    with pytest.raises(pulumi.RunError) as caught:
        run_program(run_host("namespace", config), config, preview=True)
    assert str(caught.value) == (
        "stack config qianfan-tpm:quotas is not set, but qianfan-tmp:quotas is: rename it to qianfan-tpm:quotas (the "
        "namespace is this project's name, qianfan-tpm)"
    )
    assert not sandbox_db.exists()


def test_edited_stack_resizes_and_releases(
    deployed: tuple[Any, Deployment], run_host: RunHost, dev_config: dict[str, str], sandbox_db: Path
) -> None:
    """The stack file edited: chat-speed grows to 2 units, batch-lite is removed."""
    _, state = deployed
    raw = dev_stack_config()
    quotas = [{**q, "purchaseCount": 2} for q in raw["qianfan-tpm:quotas"] if q["name"] == "chat-speed"]
    config = engine_config(
        {**raw, "qianfan-tpm:quotas": quotas, "qianfan:sandboxPath": dev_config["qianfan:sandboxPath"]}
    )
    control = SandboxControl(sandbox_db)
    calls = len(control.requests())
    result = run_program(run_host("up-edited", config), config, preview=False, prior=state)

    chat, lite = state.by_name()["chat-speed"], state.by_name()["batch-lite"]
    assert result.steps == (("update", chat.urn), ("delete", lite.urn))
    assert result.diffs == {chat.urn: "DIFF_SOME"}
    assert journal(control, calls) == [
        (DESCRIBE, {"model": chat.inputs["model"]}),  # the instance is under the quota's model
        (RESIZE, {"instanceId": chat.id, "count": 2}),
        (DESCRIBE, {"model": chat.inputs["model"]}),  # and shows the new size
        (RELEASE, {"model": lite.inputs["model"], "instanceId": lite.id}),
        (DESCRIBE, {"model": lite.inputs["model"]}),  # which a listing shows stopped
    ]
    [kept] = result.deployment.resources
    assert (kept.urn, kept.id, kept.outputs["purchaseCount"], kept.outputs["tpm"]) == (
        chat.urn,
        chat.id,
        2,
        2 * UNIT_TPM,
    )
    assert result.exports == {
        "chat-speed": {
            "instanceId": chat.id,
            "status": kept.outputs["status"],
            "tpm": 2 * UNIT_TPM,
            "rpm": 2 * UNIT_RPM,
        }
    }
    rows = {row["instanceId"]: row for row in control.instances()}
    assert rows[chat.id]["count"] == 2 and rows[chat.id]["status"] != "Stopped"
    assert rows[lite.id]["status"] == "Stopped"


def test_config_reaches_the_run_as_the_engine_sends_it(dev_config: dict[str, str], sandbox_db: Path) -> None:
    """Strings throughout: the quota list as compact JSON (what `pulumi.Config().require_object`
    and the provider both parse), the sandbox override included; encrypted values are refused."""
    assert dev_config == {
        **{k: v for k, v in dev_stack_config().items() if isinstance(v, str)},
        "qianfan-tpm:quotas": json.dumps(
            dev_stack_config()["qianfan-tpm:quotas"], separators=(",", ":"), sort_keys=True
        ),
        "qianfan:sandboxPath": str(sandbox_db),
    }
    assert json.loads(dev_config["qianfan-tpm:quotas"]) == dev_stack_config()["qianfan-tpm:quotas"]
    with pytest.raises(RehearsalError, match=r"^config qianfan:secretKey is encrypted"):
        engine_config({"qianfan:endpoint": "sandbox", "qianfan:secretKey": {"secure": "v1:abc"}})
