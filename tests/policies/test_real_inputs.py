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
from typing import Any

import pytest

from hostdriver import ProviderHost
from tests.conftest import plan_only_host
from tests.policies.analyzer_host import PACK_DIR, AnalyzerHost, Resource, secret

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
