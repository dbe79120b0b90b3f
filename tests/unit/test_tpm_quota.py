"""`providers.tpm_quota.TPMQuotaProvider`: plan time (check and diff, no API call) and its seams —
what is pickled into state, bad settings reported by check, applies refused before configure.
The apply paths themselves are test_lifecycle.py's; the host tier drives all of it over gRPC."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from pulumi.dynamic import ConfigureRequest
from pulumi.dynamic.dynamic import serialize_provider

from providers.errors import ProviderError
from providers.tpm_quota import TPMQuotaProvider

MODEL = "ernie-speed-8k"


class StackConfig:
    """What the provider host hands `configure`: pulumi's dynamic Config, with its raw mapping."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._props = values


def configured(values: dict[str, Any]) -> TPMQuotaProvider:
    provider = TPMQuotaProvider()
    provider.configure(ConfigureRequest(StackConfig(values)))  # type: ignore[arg-type]
    return provider


SANDBOX = {"qianfan:endpoint": "sandbox"}


def test_check_normalises_and_refuses_field_by_field_without_calling_anything() -> None:
    provider = configured(SANDBOX)
    result = provider.check(
        {}, {"model": " ernie-speed-8k ", "purchaseCount": 2.0, "releaseTime": "2031-01-01 00:00:00"}
    )
    assert result.failures == []
    assert result.inputs == {
        "model": MODEL,
        "purchaseCount": 2,
        "releaseTime": "2031-01-01T00:00:00+08:00",
        "paymentTiming": "Postpaid",
    }
    bad = provider.check({}, {"model": "ernie-sped-8k", "purchaseCount": 1.5})
    assert sorted(f.property for f in bad.failures) == ["model", "purchaseCount"]
    assert provider._lifecycle is None, "check built the lifecycle: a preview would pay for it"


def test_check_applies_the_stacks_cap() -> None:
    result = configured({**SANDBOX, "qianfan:maxPurchaseCount": "3"}).check({}, {"model": MODEL, "purchaseCount": 4})
    assert [f.property for f in result.failures] == ["purchaseCount"]
    assert "qianfan:maxPurchaseCount = 3" in result.failures[0].reason


def test_a_stored_release_in_the_past_is_kept_but_a_replacement_needs_a_future_one() -> None:
    provider = configured(SANDBOX)
    old = {"model": MODEL, "purchaseCount": 1, "releaseTime": "2001-01-01T00:00:00+08:00"}
    assert provider.check(old, dict(old)).failures == []  # stored: no reason to refuse it now
    replaced = provider.check(old, {**old, "model": "ernie-lite-8k"})  # a new quota: must be future
    assert [f.property for f in replaced.failures] == ["releaseTime"]


def test_bad_settings_are_every_check_failure_and_refuse_every_apply() -> None:
    provider = configured({**SANDBOX, "qianfan:timeoutSeconds": "nan", "qianfan:maxPurchaseCnt": "5"})
    failures = provider.check({}, {"model": MODEL, "purchaseCount": 1}).failures
    assert [f.property for f in failures] == ["", ""]
    reasons = " ".join(f.reason for f in failures)
    assert "qianfan:timeoutSeconds" in reasons and "did you mean qianfan:maxPurchaseCount?" in reasons
    with pytest.raises(ProviderError, match="qianfan:timeoutSeconds"):
        provider.create({"model": MODEL, "purchaseCount": 1})


def test_an_apply_before_configure_says_so() -> None:
    with pytest.raises(ProviderError, match="before Pulumi's provider host called configure"):
        TPMQuotaProvider().delete("tpm-a", {"model": MODEL})


@pytest.mark.parametrize(
    "olds, news, changes, replaces",
    [
        ({"model": MODEL, "purchaseCount": 1}, {"model": MODEL, "purchaseCount": 1.0}, False, []),
        ({"model": MODEL, "purchaseCount": 1}, {"model": MODEL, "purchaseCount": 2}, True, []),
        ({"model": MODEL, "purchaseCount": 1}, {"model": "ernie-lite-8k", "purchaseCount": 1}, True, ["model"]),
        (
            {"model": MODEL, "purchaseCount": 1, "releaseTime": "2031-01-01T00:00:00+08:00"},
            {"model": MODEL, "purchaseCount": 1, "releaseTime": "2030-12-31T16:00:00Z"},  # the same instant
            False,
            [],
        ),
        (
            {"model": MODEL, "purchaseCount": 1},
            {"model": MODEL, "purchaseCount": 1, "adoptInstanceId": "tpm-a"},
            False,
            [],
        ),
        (
            {"model": MODEL, "purchaseCount": 1, "__provider": "a"},
            {"model": MODEL, "purchaseCount": 1, "__provider": "b"},
            False,
            [],
        ),
    ],
)
def test_diff(olds: dict[str, Any], news: dict[str, Any], changes: bool, replaces: list[str]) -> None:
    result = configured(SANDBOX).diff("tpm-a", olds, news)
    assert (result.changes, result.replaces) == (changes, replaces)


def test_state_holds_a_reference_to_the_class_and_nothing_configured() -> None:
    provider = configured({**SANDBOX, "qianfan:accessKey": "AKpickled", "qianfan:secretKey": "SKpickled"})
    blob = serialize_provider(provider)
    assert blob == serialize_provider(TPMQuotaProvider()) and len(blob) < 120
    assert b"AKpickled" not in base64.b64decode(blob) and b"SKpickled" not in base64.b64decode(blob)


def test_an_unpickled_provider_starts_unconfigured() -> None:
    import dill

    provider = dill.loads(base64.b64decode(serialize_provider(configured(SANDBOX))))
    with pytest.raises(ProviderError, match="before Pulumi's provider host called configure"):
        provider.create({"model": MODEL, "purchaseCount": 1})
