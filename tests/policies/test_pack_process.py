"""The pack as the CLI meets it: how it starts, what it says about itself, its config file, Remediate."""

from __future__ import annotations

import json
import os
from importlib.metadata import version
from pathlib import Path

from google.protobuf import json_format
from pulumi.runtime.proto import analyzer_pb2

from tests.policies.analyzer_host import (
    LEVELS,
    PACK_DIR,
    AnalyzerHost,
    Resource,
    pack_project,
    reconcile_config,
    secret,
)

POLICIES = {
    "tpm-quota-release-time": ("mandatory", "POLICY_TYPE_RESOURCE"),
    "tpm-quota-protected": ("advisory", "POLICY_TYPE_RESOURCE"),
    "tpm-quota-stack-budget": ("mandatory", "POLICY_TYPE_STACK"),
    "tpm-quota-models": ("mandatory", "POLICY_TYPE_RESOURCE"),
}


def test_pulumi_policy_yaml_is_a_python_pack_with_its_own_venv_and_version() -> None:
    project = pack_project()
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": "venv"}}
    assert project["version"] == "0.1.0"
    requirements = (PACK_DIR / "requirements.txt").read_text().splitlines()
    assert "pulumi-policy==1.21.0" in requirements


def test_started_in_the_pack_directory_it_serves_on_loopback(pack_process: AnalyzerHost) -> None:
    assert Path(os.readlink(f"/proc/{pack_process.process.pid}/cwd")) == PACK_DIR
    assert 0 < pack_process.port < 65536
    assert pack_process.process.poll() is None


def test_plugin_info_is_the_pinned_pulumi_policy_on_the_installed_pulumi(pack_process: AnalyzerHost) -> None:
    assert pack_process.plugin_info() == "1.21.0" == version("pulumi-policy")
    assert version("pulumi").startswith("3.")


def test_analyzer_info_lists_the_four_policies_with_levels_and_config_schemas(pack_process: AnalyzerHost) -> None:
    info = pack_process.analyzer_info()
    assert info.name == "qianfan-tpm-guardrails"
    assert info.supportsConfig
    found = {p.name: (LEVELS[p.enforcementLevel], analyzer_pb2.PolicyType.Name(p.policy_type)) for p in info.policies}
    assert found == POLICIES
    schemas = {p.name: json_format.MessageToDict(p.configSchema) for p in info.policies}
    assert schemas["tpm-quota-release-time"]["properties"]["maxHoursAhead"]["default"] == 720
    assert schemas["tpm-quota-release-time"]["properties"]["longLivedStacks"]["default"] == ["prod"]
    assert schemas["tpm-quota-protected"]["properties"]["longLivedStacks"]["default"] == ["prod"]
    assert set(schemas["tpm-quota-stack-budget"]["properties"]) == {"maxStackTpm", "maxModelTpm"}
    assert schemas["tpm-quota-models"]["properties"]["allowedModels"]["minItems"] == 1
    for policy in info.policies:
        assert policy.description


def test_cli_defaults_are_what_configure_receives(pack_process: AnalyzerHost) -> None:
    config = reconcile_config(pack_process.analyzer_info(), {})
    assert config == {
        "tpm-quota-release-time": ("mandatory", {"longLivedStacks": ["prod"], "maxHoursAhead": 720}),
        "tpm-quota-protected": ("advisory", {"longLivedStacks": ["prod"]}),
        "tpm-quota-stack-budget": ("mandatory", {}),
        "tpm-quota-models": ("mandatory", {}),
    }


def test_example_config_file_passes_the_cli_and_drives_every_policy(pack: AnalyzerHost) -> None:
    pack.configure(json.loads((PACK_DIR / "config.example.json").read_text()))
    quota = Resource("chat", {"model": "ernie-4.0-8k", "purchaseCount": 12.0}, stack="prod")
    analysis = pack.analyze(quota)
    assert {(d.policy, d.level) for d in analysis.diagnostics} == {
        ("tpm-quota-protected", "mandatory"),
        ("tpm-quota-models", "mandatory"),
    }
    stack = pack.analyze_stack([quota, Resource("speed", {"model": "ernie-speed-8k", "purchaseCount": 9.0})])
    assert [d.policy for d in stack.diagnostics] == ["tpm-quota-stack-budget"]


def test_remediate_changes_nothing_even_with_the_internal_provider_property(pack: AnalyzerHost) -> None:
    # Unlike Analyze, the engine sends Remediate the internal `__provider` property too.
    quota = Resource("chat", {"model": "ernie-speed-8k", "purchaseCount": 1.0, "__provider": secret("gASVMgAA")})
    response = pack.remediate(quota)
    assert list(response.remediations) == []
