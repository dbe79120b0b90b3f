"""Check and Diff through the provider host: plan-time validation, unknowns, and the diff rules.

These run in every preview, so they must make no API call: each test ends by asserting that the
sandbox received no request at all.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hostdriver import UNKNOWN, ProviderHost
from tests.support.hosts import plan_only_host

VALID = {"model": "ernie-speed-8k", "purchaseCount": 2}


@pytest.fixture(scope="module")
def plan_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProviderHost]:
    overrides = {"qianfan:extraModels": "ernie-x1-turbo-32k, ernie-5.0", "qianfan:maxPurchaseCount": "10"}
    with plan_only_host(tmp_path_factory.mktemp("plan"), **overrides) as host:
        yield host


def failures_of(host: ProviderHost, news: dict, olds: dict | None = None) -> dict[str, str]:
    _, failures = host.check(news, olds)
    return dict(failures)


def test_valid_inputs_are_normalised(plan_host: ProviderHost) -> None:
    inputs, failures = plan_host.check({**VALID, "purchaseCount": 2.0, "releaseTime": "2031-03-04 05:06:07"})
    assert failures == []
    assert inputs["model"] == "ernie-speed-8k"
    assert inputs["purchaseCount"] == 2
    assert inputs["releaseTime"] == "2031-03-04T05:06:07+08:00"
    assert inputs["paymentTiming"] == "Postpaid"
    assert "__provider" in inputs


def test_two_spellings_of_one_instant_normalise_equal(plan_host: ProviderHost) -> None:
    spellings = [
        "2031-03-04 05:06:07",
        "2031-03-04T05:06:07+08:00",
        "2031-03-03T21:06:07Z",
        "2031-03-03T23:06:07+02:00",
    ]
    normalised = {plan_host.check({**VALID, "releaseTime": s})[0]["releaseTime"] for s in spellings}
    assert normalised == {"2031-03-04T05:06:07+08:00"}


@pytest.mark.parametrize(
    "model, fragment",
    [
        ("ernie-speed-8K", "did you mean 'ernie-speed-8k'"),
        ("ernie-4.5-turbo-12k", "did you mean 'ernie-4.5-turbo-128k'"),
        ("gpt-4o", "allowed: ernie-4.0-8k"),
        ("", "must be a Qianfan model id"),
        (7, "must be a Qianfan model id"),
    ],
)
def test_bad_model_names_the_field_and_suggests(plan_host: ProviderHost, model: object, fragment: str) -> None:
    failures = failures_of(plan_host, {**VALID, "model": model})
    assert list(failures) == ["model"]
    assert fragment in failures["model"]


def test_extra_models_from_config_are_accepted(plan_host: ProviderHost) -> None:
    assert failures_of(plan_host, {**VALID, "model": "ernie-5.0"}) == {}
    assert failures_of(plan_host, {**VALID, "model": "ernie-x1-turbo-32k"}) == {}
    assert "qianfan:extraModels" in failures_of(plan_host, {**VALID, "model": "ernie-6.0"})["model"]


@pytest.mark.parametrize("count", [1.5, 0, -3, "two", "2", True])
def test_bad_purchase_count(plan_host: ProviderHost, count: object) -> None:
    failures = failures_of(plan_host, {**VALID, "purchaseCount": count})
    assert list(failures) == ["purchaseCount"]
    assert "whole number of units >= 1" in failures["purchaseCount"]


@pytest.mark.parametrize("count, shown", [(-3, "-3"), (0, "0"), (1.5, "1.5"), (10_001, "10001"), (True, "True")])
def test_a_count_is_quoted_as_written_although_the_wire_made_it_a_float(
    plan_host: ProviderHost, count: object, shown: str
) -> None:
    """Pulumi's wire carries numbers as floats: the host receives -3.0 for the -3 the user wrote."""
    failures = failures_of(plan_host, {**VALID, "purchaseCount": count})
    assert failures["purchaseCount"].endswith(f", got {shown}")


def test_purchase_count_above_the_cap_names_the_cap(plan_host: ProviderHost) -> None:
    failures = failures_of(plan_host, {**VALID, "purchaseCount": 11})
    assert "qianfan:maxPurchaseCount = 10" in failures["purchaseCount"]
    assert "pulumi config set qianfan:maxPurchaseCount 11" in failures["purchaseCount"]
    assert failures_of(plan_host, {**VALID, "purchaseCount": 10}) == {}


@pytest.mark.parametrize(
    "release, fragment",
    [
        ("2031-03-04", "is not a time Qianfan accepts"),
        ("2031-03-04T05:06:07", "is not a time Qianfan accepts"),
        ("next tuesday", "is not a time Qianfan accepts"),
        ("2031-02-30 00:00:00", "is not a valid date"),
        ("2020-01-01 00:00:00", "is not in the future"),
        (12345, "must be a string"),
    ],
)
def test_bad_release_time(plan_host: ProviderHost, release: object, fragment: str) -> None:
    failures = failures_of(plan_host, {**VALID, "releaseTime": release})
    assert list(failures) == ["releaseTime"]
    assert fragment in failures["releaseTime"]


def test_past_release_time_is_fine_when_unchanged(plan_host: ProviderHost) -> None:
    old = {**VALID, "releaseTime": "2020-01-01T00:00:00+08:00"}
    assert failures_of(plan_host, {**VALID, "releaseTime": "2020-01-01 00:00:00"}, olds=old) == {}
    assert (
        "not in the future"
        in failures_of(plan_host, {**VALID, "releaseTime": "2020-01-02 00:00:00"}, olds=old)["releaseTime"]
    )


def test_only_postpaid(plan_host: ProviderHost) -> None:
    failures = failures_of(plan_host, {**VALID, "paymentTiming": "Prepaid"})
    assert list(failures) == ["paymentTiming"] and "'Postpaid'" in failures["paymentTiming"]


def test_missing_required_fields_are_failures_not_exceptions(plan_host: ProviderHost) -> None:
    failures = failures_of(plan_host, {})
    assert set(failures) == {"model", "purchaseCount"}
    assert all(reason.startswith("is required") for reason in failures.values())


def test_unknown_property_is_refused(plan_host: ProviderHost) -> None:
    failures = failures_of(plan_host, {**VALID, "purchasecount": 3})
    assert list(failures) == ["purchasecount"]


def test_one_failure_per_bad_field(plan_host: ProviderHost) -> None:
    failures = failures_of(
        plan_host,
        {
            "model": "nope",
            "purchaseCount": 0,
            "releaseTime": "soon",
            "paymentTiming": "Prepaid",
            "adoptInstanceId": " ",
        },
    )
    assert sorted(failures) == ["adoptInstanceId", "model", "paymentTiming", "purchaseCount", "releaseTime"]


def test_unknown_values_pass_through_during_preview(plan_host: ProviderHost) -> None:
    inputs, failures = plan_host.check({"model": UNKNOWN, "purchaseCount": UNKNOWN, "releaseTime": UNKNOWN})
    assert failures == []
    assert inputs["model"] == UNKNOWN and inputs["purchaseCount"] == UNKNOWN and inputs["releaseTime"] == UNKNOWN
    # An unknown field does not hide a bad known one.
    assert list(failures_of(plan_host, {"model": UNKNOWN, "purchaseCount": 0})) == ["purchaseCount"]


# -- Diff ---------------------------------------------------------------------------------------
STATE = {
    "model": "ernie-speed-8k",
    "purchaseCount": 2,
    "releaseTime": "2031-03-04T05:06:07+08:00",
    "paymentTiming": "Postpaid",
    "instanceId": "tpm-AbCd1234",
    "status": "Running",
    "tpm": 20000,
    "rpm": 66,
}
DESIRED = {k: STATE[k] for k in ("model", "purchaseCount", "releaseTime", "paymentTiming")}


@pytest.mark.parametrize(
    "change, expected, replaces",
    [
        ({}, "DIFF_NONE", []),
        ({"releaseTime": "2031-03-03T21:06:07Z"}, "DIFF_NONE", []),  # same instant, other spelling
        ({"purchaseCount": 2.0}, "DIFF_NONE", []),
        ({"adoptInstanceId": "tpm-Other123"}, "DIFF_NONE", []),  # only meaningful at create
        ({"purchaseCount": 3}, "DIFF_SOME", []),
        ({"releaseTime": "2031-03-05T05:06:07+08:00"}, "DIFF_SOME", []),  # moved
        ({"releaseTime": None}, "DIFF_SOME", []),  # cancelled
        ({"model": "ernie-lite-8k"}, "DIFF_SOME", ["model"]),
        ({"paymentTiming": "Prepaid"}, "DIFF_SOME", ["paymentTiming"]),
        ({"model": UNKNOWN}, "DIFF_SOME", ["model"]),
        ({"purchaseCount": UNKNOWN}, "DIFF_SOME", []),
    ],
)
def test_diff_rules(plan_host: ProviderHost, change: dict, expected: str, replaces: list[str]) -> None:
    news = {k: v for k, v in {**DESIRED, **change}.items() if v is not None}
    diff = plan_host.diff("tpm-AbCd1234", STATE, news)
    assert diff["changes"] == expected
    assert diff["replaces"] == replaces
    assert diff["deleteBeforeReplace"] is False


def test_set_release_time_where_there_was_none_is_an_update(plan_host: ProviderHost) -> None:
    olds = {k: v for k, v in STATE.items() if k != "releaseTime"}
    news = {**DESIRED}
    assert plan_host.diff("tpm-AbCd1234", olds, news) == {
        "changes": "DIFF_SOME",
        "replaces": [],
        "deleteBeforeReplace": False,
    }


def test_a_changed_provider_blob_alone_is_no_diff(plan_host: ProviderHost) -> None:
    olds = {**STATE, "__provider": "c29tZSBvbGRlciBwcm92aWRlcg=="}
    diff = plan_host.diff("tpm-AbCd1234", {k: v for k, v in olds.items() if k != "__provider"}, DESIRED)
    assert diff["changes"] == "DIFF_NONE"
