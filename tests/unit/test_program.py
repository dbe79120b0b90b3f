"""`__main__.py` under Pulumi's mocks: the stack's quota list becomes resources and exports.

Mocks never run provider code; they only show what the program declares. The stack files in
`stacks/` are parsed the same way, so a broken stack file fails here rather than at `pulumi up`.
"""

from __future__ import annotations

import json
import os
import runpy
from typing import Any

import pulumi
import pytest
import yaml

from hostdriver import PROJECT_ROOT, TYPE
from providers.stack_config import parse_quota_plan, read_stack_config
from tests.unit.stack_config_cases import CHAT, MALFORMED


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


def run_program(
    quotas: Any, monkeypatch: pytest.MonkeyPatch, config: dict[str, str] | None = None
) -> tuple[RecordingMocks, dict[str, Any]]:
    """Run __main__.py on a stack config: `quotas` as `qianfan-tpm:quotas` (None: not set), plus `config`."""
    for name in [name for name in os.environ if name.startswith(("QIANFAN_", "PULUMI_CONFIG"))]:
        monkeypatch.delenv(name)
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="qianfan-tpm", stack="dev", preview=False)
    stack = {} if quotas is None else {"qianfan-tpm:quotas": json.dumps(quotas)}
    pulumi.runtime.set_all_config({**stack, **(config or {})})
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


def program_refusal(quotas: Any, monkeypatch: pytest.MonkeyPatch, config: dict[str, str] | None = None) -> str:
    with pytest.raises(pulumi.RunError) as caught:
        run_program(quotas, monkeypatch, config)
    return str(caught.value)


def test_every_problem_of_the_stack_file_fails_the_program_in_one_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: one problem per run; an entry with four bad fields took four rounds."""
    message = program_refusal(
        [
            {"name": "chat", "model": "gpt 4", "purchaseCount": -3, "releaseTime": "soon", "protect": "yes"},
            {"name": "batch", "model": "ernie-lite-8k", "purchasecount": 2},
        ],
        monkeypatch,
        {"qianfan:maxPurchaseCnt": "50", "qianfan-tpm:quota": "[]"},
    )
    lines = message.splitlines()
    assert lines[0] == "8 problems in the stack config:"
    assert [line.split(" ")[4:6] for line in lines[1:]] == [
        ["qianfan:maxPurchaseCnt", "is"],
        ["qianfan-tpm:quota", "is"],
        ["qianfan-tpm:quotas[0]", "('chat'):"],
        ["qianfan-tpm:quotas[0]", "('chat'):"],
        ["qianfan-tpm:quotas[0]", "('chat'):"],
        ["qianfan-tpm:quotas[0]", "('chat'):"],
        ["qianfan-tpm:quotas[1]", "('batch'):"],
        ["qianfan-tpm:quotas[1]", "('batch'):"],
    ]
    assert "  stack config qianfan-tpm:quotas[0] ('chat'): purchaseCount must be a whole number of units" in message
    assert message.endswith(
        "  stack config qianfan-tpm:quotas[1] ('batch'): purchaseCount is required: the number of units to hold, a "
        "whole number >= 1 (1 unit = 10,000 TPM and 33 RPM)"
    )
    assert "got -3," not in message and "got -3.0" not in message


@pytest.mark.parametrize("misplaced", ["qianfan-tmp:quotas", "qianfan:quotas", "another-project:quotas"])
def test_a_misspelt_namespace_gets_the_rename_not_pulumis_missing_variable(
    misplaced: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: `Missing required configuration variable 'qianfan-tpm:quotas'`, with no hint why."""
    message = program_refusal(None, monkeypatch, {misplaced: json.dumps([CHAT]), "aws:region": "cn-north-1"})
    assert message == (
        f"stack config qianfan-tpm:quotas is not set, but {misplaced} is: rename it to qianfan-tpm:quotas (the "
        "namespace is this project's name, qianfan-tpm)"
    )


def test_a_stack_without_quotas_says_what_the_key_is(monkeypatch: pytest.MonkeyPatch) -> None:
    assert program_refusal(None, monkeypatch, {"qianfan:endpoint": "sandbox"}) == (
        "stack config qianfan-tpm:quotas is not set: it is the list of quotas this stack holds, each with name, "
        "model and purchaseCount; declare it in stacks/Pulumi.<stack>.yaml (`[]` for none)"
    )


def test_a_misspelt_setting_fails_the_program_naming_the_one_meant(monkeypatch: pytest.MonkeyPatch) -> None:
    assert program_refusal([CHAT], monkeypatch, {"qianfan:maxPurchaseCnt": "50"}) == (
        "stack config qianfan:maxPurchaseCnt is not a setting; did you mean qianfan:maxPurchaseCount?"
    )


def test_half_a_key_pair_fails_the_program_without_showing_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    message = program_refusal([CHAT], monkeypatch, {"qianfan:secretKey": "SKsecret-0123"})
    assert message.startswith("stack config qianfan:accessKey is not set (nor QIANFAN_ACCESS_KEY), but ")
    assert "SKsecret-0123" not in message


def test_other_namespaces_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    _, exports = run_program([CHAT], monkeypatch, {"aws:region": "cn-north-1", "pulumi:tags": "{}", "qian:x": "1"})
    assert set(exports) == {"chat"}


def test_the_program_sees_keys_from_pulumi_config_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the language host hands a program outside `set_all_config`: the PULUMI_CONFIG variable."""
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project="qianfan-tpm", stack="dev", preview=False)
    pulumi.runtime.set_all_config({})
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"qianfan-tmp:quotas": json.dumps([CHAT])}))
    with pytest.raises(pulumi.RunError, match="but qianfan-tmp:quotas is: rename it to qianfan-tpm:quotas"):
        runpy.run_path(str(PROJECT_ROOT / "__main__.py"), run_name="__main__")


def test_pulumis_runtime_still_keeps_the_whole_config_in_one_map() -> None:
    """`__main__.stack_config` lists the keys from `pulumi.runtime.config.CONFIG`, which pulumi does
    not document: if a release renames it, every key would look unset and this fails first."""
    from pulumi.runtime import config as runtime_config

    pulumi.runtime.set_all_config({"qianfan-tpm:quotas": "[]", "aws:region": "x"})
    assert runtime_config.CONFIG.get() == {"qianfan-tpm:quotas": "[]", "aws:region": "x"}


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_stack_files_hold_valid_quota_plans(stack: str) -> None:
    config = yaml.safe_load((PROJECT_ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]
    plan = parse_quota_plan(config["qianfan-tpm:quotas"])
    assert plan, "every stack declares quotas"
    # No key the program or the provider would refuse (a misspelt setting, half a key pair).
    assert read_stack_config(config, {}) == plan
    if stack == "prod":
        assert all(entry.protect for entry in plan)
    if stack == "dev":
        assert config["qianfan:endpoint"] == "sandbox"
        assert "qianfan:accessKey" not in config and "qianfan:secretKey" not in config
    else:
        for key in ("qianfan:accessKey", "qianfan:secretKey"):
            assert set(config[key]) == {"secure"} and "PLACEHOLDER" in config[key]["secure"]
