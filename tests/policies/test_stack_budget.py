"""tpm-quota-stack-budget through AnalyzeStack: the stack's total TPM, overall and per model."""

from __future__ import annotations

from typing import Any

import pytest

from tests.policies.analyzer_host import UNKNOWN, AnalyzerError, AnalyzerHost, Resource, secret

BUDGET = "tpm-quota-stack-budget"
DESCRIPTION = "A stack's TPMQuotas stay within its TPM budget, overall and per model.\n"
PROVIDER_BLOB = secret("gASVMgAAAAAAAACME3Byb3ZpZGVycy50cG1fcXVvdGGUjBBUUE1RdW90YVByb3ZpZGVylJOUKYGUfZRi")


def quota(name: str, model: Any, count: Any, **extra: Any) -> Resource:
    return Resource(name, {"model": model, "purchaseCount": count, "__provider": PROVIDER_BLOB, **extra})


def budget(pack: AnalyzerHost, **config: Any) -> None:
    pack.configure({BUDGET: config})


def test_unconfigured_budget_is_not_applicable(pack: AnalyzerHost) -> None:
    analysis = pack.analyze_stack([quota("a", "ernie-speed-8k", 1000.0)])
    assert analysis.diagnostics == []
    assert analysis.not_applicable == {
        BUDGET: f"no budget configured ({BUDGET}.maxStackTpm, {BUDGET}.maxModelTpm)",
    }


def test_stack_at_its_budget_passes(pack: AnalyzerHost) -> None:
    budget(pack, maxStackTpm=200000, maxModelTpm={"ernie-speed-8k": 150000})
    stack = [quota("a", "ernie-speed-8k", 15.0), quota("b", "ernie-lite-8k", 5.0)]
    analysis = pack.analyze_stack(stack)
    assert analysis.diagnostics == []
    assert analysis.not_applicable == {}


def test_stack_over_its_budget_is_a_mandatory_violation(pack: AnalyzerHost) -> None:
    budget(pack, maxStackTpm=200000)
    [violation] = pack.analyze_stack([quota("a", "ernie-speed-8k", 15.0), quota("b", "ernie-lite-8k", 6.0)]).diagnostics
    assert (violation.policy, violation.level, violation.urn) == (BUDGET, "mandatory", "")
    assert violation.message == DESCRIPTION + (
        'stack "dev" holds 210,000 TPM ("a" 150,000, "b" 60,000), more than the budget of 200,000 TPM '
        "(policy config tpm-quota-stack-budget.maxStackTpm); 1 unit = 10,000 TPM"
    )


def test_model_over_its_budget_is_a_violation_and_other_models_are_unlimited(pack: AnalyzerHost) -> None:
    budget(pack, maxModelTpm={"ernie-speed-8k": 100000, "ernie-lite-8k": 10000})
    stack = [
        quota("a", "ernie-speed-8k", 8.0),
        quota("b", " ernie-speed-8k", 3.0),
        quota("c", "ernie-4.0-8k", 90.0),
        quota("d", "ernie-lite-8k", 1.0),
    ]
    [violation] = pack.analyze_stack(stack).diagnostics
    assert violation.message == DESCRIPTION + (
        'stack "dev", model "ernie-speed-8k", holds 110,000 TPM ("a" 80,000, "b" 30,000), more than the budget '
        'of 100,000 TPM (policy config tpm-quota-stack-budget.maxModelTpm["ernie-speed-8k"]); 1 unit = 10,000 TPM'
    )


def test_zero_budget_forbids_any_quota(pack: AnalyzerHost) -> None:
    budget(pack, maxStackTpm=0)
    [violation] = pack.analyze_stack([quota("a", "ernie-speed-8k", 1.0)]).diagnostics
    assert 'holds 10,000 TPM ("a" 10,000), more than the budget of 0 TPM' in violation.message


def test_other_resource_types_do_not_count(pack: AnalyzerHost) -> None:
    budget(pack, maxStackTpm=10000)
    stack = [
        quota("a", "ernie-speed-8k", 1.0),
        Resource("other", {"model": "ernie-speed-8k", "purchaseCount": 99.0}, type="acme:index:Quota"),
        Resource("dev", {}, type="pulumi:pulumi:Stack", urn="urn:pulumi:dev::qianfan-tpm::pulumi:pulumi:Stack::dev"),
    ]
    assert pack.analyze_stack(stack).diagnostics == []


def test_secret_counts_are_counted(pack: AnalyzerHost) -> None:
    budget(pack, maxStackTpm=100000)
    [violation] = pack.analyze_stack([quota("a", secret("ernie-speed-8k"), secret(11.0))]).diagnostics
    assert 'holds 110,000 TPM ("a" 110,000)' in violation.message


def test_unknown_counts_are_not_violations(pack: AnalyzerHost) -> None:
    budget(pack, maxStackTpm=100000)
    stack = [quota("a", "ernie-speed-8k", 5.0), quota("b", "ernie-speed-8k", UNKNOWN), quota("c", UNKNOWN, UNKNOWN)]
    assert pack.analyze_stack(stack).diagnostics == []


def test_known_counts_over_budget_are_reported_naming_the_unknown_ones(pack: AnalyzerHost) -> None:
    budget(pack, maxStackTpm=100000, maxModelTpm={"ernie-speed-8k": 50000})
    stack = [
        quota("a", "ernie-speed-8k", 11.0),
        quota("b", "ernie-speed-8k", secret(UNKNOWN)),
        quota("c", UNKNOWN, 1.0),
    ]
    messages = [d.message.removeprefix(DESCRIPTION) for d in pack.analyze_stack(stack).diagnostics]
    assert messages == [
        'stack "dev" holds 120,000 TPM ("a" 110,000, "c" 10,000), more than the budget of 100,000 TPM '
        "(policy config tpm-quota-stack-budget.maxStackTpm); 1 unit = 10,000 TPM; "
        'not counted, purchaseCount unknown until apply: "b"',
        'stack "dev", model "ernie-speed-8k", holds 110,000 TPM ("a" 110,000), more than the budget of 50,000 TPM '
        '(policy config tpm-quota-stack-budget.maxModelTpm["ernie-speed-8k"]); 1 unit = 10,000 TPM; '
        'not counted, purchaseCount unknown until apply: "b"; not counted, model unknown until apply: "c"',
    ]


@pytest.mark.parametrize(
    ("count", "shown"),
    [
        ("2", 'purchaseCount "2", which is not a number'),
        (True, "purchaseCount true, which is not a number"),
        ([2.0], "purchaseCount [2], which is not a number"),
        (-1.0, "purchaseCount -1, which is not a whole number of units >= 1"),
        (0.0, "purchaseCount 0, which is not a whole number of units >= 1"),
        (1.5, "purchaseCount 1.5, which is not a whole number of units >= 1"),
        (None, "no purchaseCount"),
    ],
)
def test_unreadable_count_is_a_violation_of_that_quota(pack: AnalyzerHost, count: Any, shown: str) -> None:
    budget(pack, maxStackTpm=1000000)
    props = {"model": "ernie-speed-8k"} if count is None else {"model": "ernie-speed-8k", "purchaseCount": count}
    bad = Resource("bad", props)
    analysis = pack.analyze_stack([quota("good", "ernie-speed-8k", 1.0), bad])
    [violation] = analysis.diagnostics
    assert (violation.level, violation.urn) == ("mandatory", bad.urn)
    assert violation.message == DESCRIPTION + (
        f'TPMQuota "bad" has {shown}, so it cannot be counted against the TPM budget '
        "(policy config tpm-quota-stack-budget); 1 unit = 10,000 TPM"
    )


def test_huge_count_is_counted_exactly(pack: AnalyzerHost) -> None:
    budget(pack, maxStackTpm=200000)
    [violation] = pack.analyze_stack([quota("a", "ernie-speed-8k", 1e15)]).diagnostics
    assert 'holds 10,000,000,000,000,000,000 TPM ("a" 10,000,000,000,000,000,000)' in violation.message


@pytest.mark.parametrize("count", [float("nan"), float("inf")])
def test_nan_or_infinite_count_fails_the_analysis_rather_than_passing(pack: AnalyzerHost, count: float) -> None:
    # pulumi-policy turns the request into JSON before any policy runs, and JSON has no NaN or Infinity.
    budget(pack, maxStackTpm=200000)
    with pytest.raises(AnalyzerError) as caught:
        pack.analyze_stack([quota("a", "ernie-speed-8k", count)])
    assert "Fail to serialize" in caught.value.details
