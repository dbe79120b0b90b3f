"""Bad policy pack config: what the CLI refuses from the schemas, and what the pack refuses itself.

The CLI validates `--policy-pack-config` against each policy's schema (from GetAnalyzerInfo) and
prints `error: validating policy config: <pack> <version>  <policy>: <error>` without running
anything. Config that reaches Configure unchecked (a misspelt key passes the CLI; any caller can
call Configure) fails the first analysis with the pack's own message naming policy, key and what is
allowed.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from tests.policies.analyzer_host import AnalyzerError, AnalyzerHost, CliConfigError, Resource

PREFIX = "validating policy config: qianfan-tpm-guardrails 0.1.0  "
QUOTA = Resource("chat", {"model": "ernie-speed-8k", "purchaseCount": 2.0})

BAD_VALUES = [
    # policy, key, value, the CLI's complaint (jsonschema wording), the pack's message
    pytest.param(
        "tpm-quota-release-time",
        "maxHoursAhead",
        "720",
        "maxHoursAhead: '720' is not of type 'number'",
        'a number of hours >= 1, got "720"',
    ),
    pytest.param(
        "tpm-quota-release-time",
        "maxHoursAhead",
        0,
        "maxHoursAhead: 0 is less than the minimum of 1",
        "a number of hours >= 1, got 0",
    ),
    pytest.param(
        "tpm-quota-release-time",
        "maxHoursAhead",
        None,
        "maxHoursAhead: None is not of type 'number'",
        "a number of hours >= 1, got null",
    ),
    pytest.param(
        "tpm-quota-release-time",
        "longLivedStacks",
        "prod",
        "longLivedStacks: 'prod' is not of type 'array'",
        'a list of stack names, got "prod"',
    ),
    pytest.param(
        "tpm-quota-protected",
        "longLivedStacks",
        [""],
        "longLivedStacks.0: '' should be non-empty",
        'a list of stack names, got [""]',
    ),
    pytest.param(
        "tpm-quota-protected",
        "longLivedStacks",
        [7],
        "longLivedStacks.0: 7 is not of type 'string'",
        "a list of stack names, got [7]",
    ),
    pytest.param(
        "tpm-quota-stack-budget",
        "maxStackTpm",
        -1,
        "maxStackTpm: -1 is less than the minimum of 0",
        "a whole number of TPM >= 0, got -1",
    ),
    pytest.param(
        "tpm-quota-stack-budget",
        "maxStackTpm",
        1.5,
        "maxStackTpm: 1.5 is not of type 'integer'",
        "a whole number of TPM >= 0, got 1.5",
    ),
    pytest.param(
        "tpm-quota-stack-budget",
        "maxStackTpm",
        "lots",
        "maxStackTpm: 'lots' is not of type 'integer'",
        'a whole number of TPM >= 0, got "lots"',
    ),
    pytest.param(
        "tpm-quota-stack-budget",
        "maxModelTpm",
        [1],
        "maxModelTpm: [1] is not of type 'object'",
        "an object of model id -> TPM, got [1]",
    ),
    pytest.param(
        "tpm-quota-models",
        "allowedModels",
        [],
        "allowedModels: [] should be non-empty",
        "a non-empty list of model ids, got []",
    ),
    pytest.param(
        "tpm-quota-models",
        "allowedModels",
        "ernie-speed-8k",
        "allowedModels: 'ernie-speed-8k' is not of type 'array'",
        'a non-empty list of model ids, got "ernie-speed-8k"',
    ),
]


def analyze_all(pack: AnalyzerHost) -> None:
    pack.analyze(QUOTA)
    pack.analyze_stack([QUOTA])


@pytest.mark.parametrize(("policy", "key", "value", "cli_error", "pack_error"), BAD_VALUES)
def test_cli_refuses_bad_values_from_the_schema(
    pack: AnalyzerHost, policy: str, key: str, value: Any, cli_error: str, pack_error: str
) -> None:
    with pytest.raises(CliConfigError) as caught:
        pack.configure({policy: {key: value}})
    assert caught.value.errors == [PREFIX + f"{policy}: {cli_error}"]


@pytest.mark.parametrize(("policy", "key", "value", "cli_error", "pack_error"), BAD_VALUES)
def test_pack_refuses_bad_values_that_reach_configure(
    pack: AnalyzerHost, policy: str, key: str, value: Any, cli_error: str, pack_error: str
) -> None:
    pack.configure_raw({policy: ("mandatory", {key: value})})
    with pytest.raises(AnalyzerError) as caught:
        analyze_all(pack)
    assert caught.value.code == grpc.StatusCode.UNKNOWN
    assert (
        caught.value.details == f"Exception calling application: policy pack config {policy}.{key} must be {pack_error}"
    )


def test_bad_model_budget_entry_is_named(pack: AnalyzerHost) -> None:
    with pytest.raises(CliConfigError) as caught:
        pack.configure({"tpm-quota-stack-budget": {"maxModelTpm": {"ernie-speed-8k": "100k"}}})
    assert caught.value.errors == [
        PREFIX + "tpm-quota-stack-budget: maxModelTpm.ernie-speed-8k: '100k' is not of type 'integer'"
    ]
    pack.configure_raw({"tpm-quota-stack-budget": ("mandatory", {"maxModelTpm": {"ernie-speed-8k": "100k"}})})
    with pytest.raises(AnalyzerError) as raised:
        pack.analyze_stack([QUOTA])
    assert raised.value.details.endswith(
        'policy pack config tpm-quota-stack-budget.maxModelTpm["ernie-speed-8k"] must be a whole number of TPM >= 0, '
        'got "100k"'
    )


def test_misspelt_key_passes_the_cli_but_not_the_pack(pack: AnalyzerHost) -> None:
    pack.configure({"tpm-quota-release-time": {"maxHourAhead": 24}})  # the CLI's schema has no additionalProperties
    with pytest.raises(AnalyzerError) as caught:
        pack.analyze(QUOTA)
    assert caught.value.details == (
        "Exception calling application: policy pack config tpm-quota-release-time: unknown key "
        '"maxHourAhead"; this policy takes longLivedStacks, maxHoursAhead'
    )


def test_bad_enforcement_level_is_refused_by_the_cli(pack: AnalyzerHost) -> None:
    with pytest.raises(CliConfigError) as caught:
        pack.configure({"tpm-quota-models": {"enforcementLevel": "strict"}})
    assert caught.value.errors == [
        "parsing enforcement level for 'tpm-quota-models': 'strict' is not a valid enforcement level"
    ]


def test_numbers_arrive_as_floats_and_whole_ones_are_accepted(pack: AnalyzerHost) -> None:
    pack.configure_raw(
        {
            "tpm-quota-release-time": ("mandatory", {"maxHoursAhead": 24.0, "longLivedStacks": []}),
            "tpm-quota-stack-budget": ("mandatory", {"maxStackTpm": 20000.0, "maxModelTpm": {"ernie-speed-8k": 0.0}}),
        }
    )
    prod_quota = Resource("chat", {"model": "m", "purchaseCount": 1.0}, stack="prod", protect=True)
    [release] = pack.analyze(prod_quota).diagnostics
    assert "the limit is 24 h ahead" in release.message
    assert "longLivedStacks [] are exempt" in release.message
    [model_budget] = pack.analyze_stack([QUOTA]).diagnostics
    assert "more than the budget of 0 TPM" in model_budget.message


def test_a_good_reconfigure_recovers_from_a_bad_one(pack: AnalyzerHost) -> None:
    pack.configure_raw({"tpm-quota-models": ("mandatory", {"allowedModels": "x"})})
    with pytest.raises(AnalyzerError):
        pack.analyze(QUOTA)
    pack.configure({"tpm-quota-models": {"allowedModels": ["ernie-speed-8k"]}})
    assert pack.analyze(Resource("chat", {**QUOTA.props, "releaseTime": "2020-01-01 00:00:00"})).diagnostics == []
