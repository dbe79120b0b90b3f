"""`__main__.py` under Pulumi's mocks: the stack's quota list becomes resources and exports.

Mocks never run provider code; they only show what the program declares. The stack files in
`stacks/` are parsed the same way, so a broken stack file fails here rather than at `pulumi up`.
"""

from __future__ import annotations

import json
import runpy
from typing import Any

import pulumi
import pytest
import yaml

from hostdriver import PROJECT_ROOT, TYPE
from providers.stack_config import parse_quota_plan
from tests.unit.test_stack_config import MALFORMED


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.resources: list[pulumi.runtime.MockResourceArgs] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(args)
        units = int(args.inputs["purchaseCount"])
        outputs = {
            **args.inputs,
            "instanceId": f"tpm-{args.name[:8]:0<8}",
            "status": "Running",
            "tpm": units * 10_000,
            "rpm": units * 33,
        }
        return outputs["instanceId"], outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list]:
        return {}, []


def run_program(quotas: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[RecordingMocks, dict[str, Any]]:
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="qianfan-tpm", stack="dev", preview=False)
    pulumi.runtime.set_all_config({"qianfan-tpm:quotas": json.dumps(quotas)})
    exports: dict[str, Any] = {}
    monkeypatch.setattr(pulumi, "export", lambda name, value: exports.__setitem__(name, value))
    runpy.run_path(str(PROJECT_ROOT / "__main__.py"), run_name="__main__")
    return mocks, exports


@pulumi.runtime.test
def test_quota_list_becomes_resources_and_exports(monkeypatch: pytest.MonkeyPatch) -> Any:
    quotas = [
        {"name": "chat", "model": "ernie-speed-8k", "purchaseCount": 2, "releaseTime": "2031-01-01 08:00:00"},
        {"name": "agent", "model": "qianfan-agent-speed-8k", "purchaseCount": 1, "protect": True},
    ]
    mocks, exports = run_program(quotas, monkeypatch)
    assert set(exports) == {"chat", "agent"}

    def check(values: list[Any]) -> None:
        # Registrations finish before their outputs resolve, so the mocks have seen them by now.
        # Registrations are asynchronous: their order is not the program's.
        by_name = {r.name: r for r in mocks.resources}
        assert sorted(by_name) == ["agent", "chat"]
        assert {r.typ for r in mocks.resources} == {TYPE}
        chat, agent = by_name["chat"], by_name["agent"]
        assert chat.inputs["model"] == "ernie-speed-8k" and chat.inputs["purchaseCount"] == 2
        assert chat.inputs["releaseTime"] == "2031-01-01T08:00:00+08:00"
        assert chat.inputs["paymentTiming"] == "Postpaid"
        assert "releaseTime" not in agent.inputs
        chat_out, agent_out = values
        assert chat_out == {"instanceId": "tpm-chat0000", "status": "Running", "tpm": 20_000, "rpm": 66}
        assert agent_out == {"instanceId": "tpm-agent000", "status": "Running", "tpm": 10_000, "rpm": 33}

    return pulumi.Output.all(
        pulumi.Output.from_input(exports["chat"]), pulumi.Output.from_input(exports["agent"])
    ).apply(check)


def test_protect_and_delete_before_replace_reach_the_resource_options(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[pulumi.ResourceOptions] = []
    import providers.resource as resource_module

    original = resource_module.TPMQuota.__init__

    def spy(self: Any, name: str, **kwargs: Any) -> None:
        seen.append(kwargs["opts"])
        original(self, name, **kwargs)

    monkeypatch.setattr(resource_module.TPMQuota, "__init__", spy)
    run_program(
        [
            {"name": "a", "model": "ernie-speed-8k", "purchaseCount": 1, "protect": True},
            {"name": "b", "model": "ernie-speed-8k", "purchaseCount": 1, "deleteBeforeReplace": True},
        ],
        monkeypatch,
    )
    assert [(o.protect, o.delete_before_replace) for o in seen] == [(True, False), (False, True)]


@pytest.mark.parametrize("quotas, fragment", MALFORMED)
def test_malformed_list_fails_the_program_naming_entry_and_field(
    quotas: Any, fragment: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parser's message (tests/unit/test_stack_config.py) reaches the user through the program."""
    with pytest.raises(pulumi.RunError) as from_program:
        run_program(quotas, monkeypatch)
    assert fragment in str(from_program.value)


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_stack_files_hold_valid_quota_plans(stack: str) -> None:
    config = yaml.safe_load((PROJECT_ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]
    plan = parse_quota_plan(config["qianfan-tpm:quotas"])
    assert plan, "every stack declares quotas"
    if stack == "prod":
        assert all(entry.protect for entry in plan)
    if stack == "dev":
        assert config["qianfan:endpoint"] == "sandbox"
        assert "qianfan:accessKey" not in config and "qianfan:secretKey" not in config
    else:
        for key in ("qianfan:accessKey", "qianfan:secretKey"):
            assert set(config[key]) == {"secure"} and "PLACEHOLDER" in config[key]["secure"]
