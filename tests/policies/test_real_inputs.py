"""The pack on inputs the provider itself produced: Check through Pulumi's provider host, then Analyze.

The engine runs analyzers on a resource's checked inputs, so these are exactly the values a
`pulumi preview --policy-pack policies` would show the pack (normalised releaseTime, float counts,
the serialized provider, which the Python SDK marks secret). The pack never imports the provider;
only this test connects the two.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml

from hostdriver import PROJECT_ROOT, ProviderHost, from_struct
from hostdriver.program import engine_config, run_program
from providers.stack_config import read_stack_config
from tests.policies.analyzer_host import PACK_DIR, AnalyzerHost, Resource, secret
from tests.support.hosts import plan_only_host

BEIJING = timezone(timedelta(hours=8))
CONFIG = {
    "tpm-quota-stack-budget": {"maxStackTpm": 60000, "maxModelTpm": {"ernie-speed-8k": 30000}},
    "tpm-quota-models": {"allowedModels": ["ernie-speed-8k", "ernie-lite-8k"]},
}


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProviderHost]:
    with plan_only_host(tmp_path_factory.mktemp("provider")) as host:
        yield host


def checked(provider: ProviderHost, name: str, stack: str, protect: bool = False, **inputs: Any) -> Resource:
    props, failures = provider.check(inputs, name=name)
    assert failures == []
    assert "__provider" in props
    return Resource(name, {**props, "__provider": secret(props["__provider"])}, stack=stack, protect=protect)


def in_hours(hours: float) -> str:
    return (datetime.now(BEIJING) + timedelta(hours=hours)).strftime("%Y-%m-%d %H:%M:%S")


@pytest.mark.slow
def test_clean_dev_and_prod_stacks_have_no_violation(provider: ProviderHost, pack: AnalyzerHost) -> None:
    pack.configure(CONFIG)
    dev = [
        checked(provider, "chat", "dev", model="ernie-speed-8k", purchaseCount=3, releaseTime=in_hours(48)),
        checked(provider, "batch", "dev", model="ernie-lite-8k", purchaseCount=1, releaseTime=in_hours(700)),
    ]
    prod = [
        checked(provider, "chat", "prod", protect=True, model="ernie-speed-8k", purchaseCount=3),
        checked(provider, "batch", "prod", protect=True, model="ernie-lite-8k", purchaseCount=3),
    ]
    assert dev[0].props["releaseTime"].endswith("+08:00")  # the provider normalised the Beijing spelling
    for stack in (dev, prod):
        for resource in stack:
            assert pack.remediate(resource).remediations == []
            assert pack.analyze(resource).diagnostics == []
        assert pack.analyze_stack(stack).diagnostics == []


def test_checked_inputs_that_break_every_policy(provider: ProviderHost, pack: AnalyzerHost) -> None:
    pack.configure(CONFIG)
    dev = [
        checked(provider, "chat", "dev", model="ernie-speed-8k", purchaseCount=5),
        checked(provider, "pro", "dev", model="ernie-4.0-8k", purchaseCount=2, releaseTime="2030-01-25 12:30:30"),
    ]
    found = {(r.name, d.policy, d.level) for r in dev for d in pack.analyze(r).diagnostics}
    assert found == {
        ("chat", "tpm-quota-release-time", "mandatory"),
        ("pro", "tpm-quota-release-time", "mandatory"),
        ("pro", "tpm-quota-models", "mandatory"),
    }
    [too_far] = [d for d in pack.analyze(dev[1]).diagnostics if d.policy == "tpm-quota-release-time"]
    assert 'releaseTime "2030-01-25T12:30:30+08:00" is' in too_far.message
    budget = pack.analyze_stack(dev).diagnostics
    assert [d.message.splitlines()[1].split(" holds ")[0] for d in budget] == [
        'stack "dev"',
        'stack "dev", model "ernie-speed-8k",',
    ]
    prod = checked(provider, "chat", "prod", model="ernie-speed-8k", purchaseCount=1)
    assert [(d.policy, d.level) for d in pack.analyze(prod).diagnostics] == [("tpm-quota-protected", "advisory")]


def test_the_pack_imports_only_itself_pulumi_policy_and_the_standard_library() -> None:
    imported = set()
    for source in PACK_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
    local = {source.stem for source in PACK_DIR.glob("*.py")}
    assert imported - local - set(sys.stdlib_module_names) == {"pulumi_policy"}


class CheckRecordingHost(ProviderHost):
    """A provider host that keeps what each Check answered: the inputs the engine hands the pack."""

    def __init__(self, stderr_path: Path) -> None:
        super().__init__(stderr_path)
        self.checked: dict[str, dict[str, Any]] = {}

    def _rpc(self, method: str, request: Any) -> Any:
        response = super()._rpc(method, request)
        if method == "Check":
            self.checked[request.urn] = from_struct(response.inputs)
        return response


@pytest.mark.slow
@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_the_projects_own_stacks_pass_the_pack_at_its_defaults(stack: str, pack: AnalyzerHost, tmp_path: Path) -> None:
    """`pulumi preview --policy-pack policies` of each committed stack file, rehearsed: the program
    declares its quotas, the provider checks them, the pack judges the checked inputs. Encrypted
    keys cannot be rehearsed and are left out (Check needs none); the endpoint is the sandbox, so
    that no call could reach Qianfan (and none is made: the preview buys nothing)."""
    raw = yaml.safe_load((PROJECT_ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]
    plain = {key: value for key, value in raw.items() if not (isinstance(value, dict) and "secure" in value)}
    db = tmp_path / "sandbox.sqlite3"
    config = engine_config({**plain, "qianfan:endpoint": "sandbox", "qianfan:sandboxPath": str(db)})
    host = CheckRecordingHost(tmp_path / "host.stderr")
    try:
        host.configure(config)
        plan = run_program(host, config, preview=True, stack=stack)
    finally:
        host.close()
    assert not db.exists(), "the preview called the API"
    protect = {entry.name: entry.protect for entry in read_stack_config(config, {})}  # as __main__ passes it
    names = {step.urn: step.urn.rsplit("::", 1)[1] for step in plan.steps if step.op == "create"}
    assert sorted(names.values()) == sorted(protect), "every quota of the stack file is declared"
    quotas = [
        # The engine sends Analyze no `__`-prefixed property (docs/policy-pack.md, "Edge cases").
        Resource(
            name,
            {k: v for k, v in host.checked[urn].items() if not k.startswith("__")},
            stack=stack,
            protect=protect[name],
        )
        for urn, name in names.items()
    ]
    if stack != "prod":
        assert all("releaseAfter" in q.props and "releaseTime" not in q.props for q in quotas)
    pack.configure()  # the defaults: maxHoursAhead 720, longLivedStacks ["prod"]
    for quota in quotas:
        assert pack.analyze(quota).diagnostics == [], quota.name
    assert pack.analyze_stack(quotas).diagnostics == []
