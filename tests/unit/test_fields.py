"""`providers.fields`: one rule per input, the table, and what check and diff do with it.

Each rule is tried with `policy=None` (shape only, as `comparable` and the stack-config parser use
it) and with a `Policy` (the stack's models, cap and clock, as `check` uses it). Expected values
are written out by hand.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pulumi.output import Unknown

from providers.fields import (
    BY_WIRE,
    INPUT_NAMES,
    INPUTS,
    MAX_UNITS,
    OUTPUTS,
    PROVIDER_KEY,
    UNKNOWN,
    OnChange,
    Policy,
    changed,
    check_props,
    comparable,
    computed_outputs,
    conflicts,
    known_inputs,
    outputs_table,
    reference_table,
    replaces,
    rule_adopt_instance_id,
    rule_model,
    rule_payment_timing,
    rule_purchase_count,
    rule_release_after,
    rule_release_time,
)
from providers.messages import show

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PROFILE = settings(max_examples=200, deadline=None, derandomize=os.environ.get("CI") == "true")

#: A fixed "now" (Beijing 2027-06-01 08:00), so "in the future" does not depend on the clock.
NOW = datetime(2027, 6, 1, 0, 0, 0, tzinfo=UTC)
POLICY = Policy(extra_models=("ernie-x1-turbo-32k",), max_purchase_count=20, now=NOW)
COUNT_RULE = "must be a whole number of units >= 1 and <= 10000 (1 unit = 10,000 TPM and 33 RPM)"


# -- model --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, expected",
    [
        ("ernie-speed-8k", "ernie-speed-8k"),
        ("  ernie-speed-8k\n", "ernie-speed-8k"),
        ("qianfan-agent-lite-8k", "qianfan-agent-lite-8k"),
        ("ernie-x1-turbo-32k", "ernie-x1-turbo-32k"),  # an extra model of the policy
    ],
)
def test_model_accepted_with_policy(value: str, expected: str) -> None:
    assert rule_model(value, POLICY) == expected


def test_model_without_policy_checks_the_shape_only() -> None:
    assert rule_model("not-listed-anywhere", None) == "not-listed-anywhere"
    with pytest.raises(ValueError, match="is not a model TPM quota can be bought for"):
        rule_model("not-listed-anywhere", POLICY)


@pytest.mark.parametrize(
    "value",
    ["", "   ", "ernie speed", "-ernie", "ernie/8k", "x" * 65, "模型", 8, 8.0, True, None, ["ernie-speed-8k"]],
)
@pytest.mark.parametrize("policy", [None, POLICY], ids=["shape", "policy"])
def test_model_refused_shapes(value: Any, policy: Policy | None) -> None:
    with pytest.raises(ValueError) as caught:
        rule_model(value, policy)
    assert str(caught.value) == f"must be a Qianfan model id such as 'ernie-speed-8k', got {show(value)}"


def test_model_typo_gets_the_closest_id_and_the_way_to_add_one() -> None:
    with pytest.raises(ValueError) as caught:
        rule_model("ernie-sped-8k", POLICY)
    message = str(caught.value)
    assert message.startswith(
        "'ernie-sped-8k' is not a model TPM quota can be bought for; did you mean 'ernie-speed-8k'?"
    )
    assert "ernie-x1-turbo-32k" in message  # the extras are listed as allowed too
    assert "`pulumi config set qianfan:extraModels <id>[,<id>...]`" in message


def test_model_without_a_close_match_suggests_nothing() -> None:
    with pytest.raises(ValueError) as caught:
        rule_model("gpt-4o", POLICY)
    assert "did you mean" not in str(caught.value)


def test_a_100k_model_id_is_echoed_cut_short() -> None:
    with pytest.raises(ValueError) as caught:
        rule_model("m" * 100_000, POLICY)
    assert len(str(caught.value)) < 300
    assert "… (100002 characters)" in str(caught.value)


# -- purchaseCount ------------------------------------------------------------------------------
@pytest.mark.parametrize("value, expected", [(1, 1), (2, 2), (2.0, 2), (20, 20), (20.0, 20)])
def test_purchase_count_accepted(value: float, expected: int) -> None:
    for policy in (None, POLICY):
        count = rule_purchase_count(value, policy)
        assert count == expected and type(count) is int


def test_purchase_count_shape_alone_allows_up_to_the_hard_maximum() -> None:
    assert rule_purchase_count(MAX_UNITS, None) == 10_000
    assert rule_purchase_count(float(MAX_UNITS), Policy(max_purchase_count=None, now=NOW)) == 10_000


@pytest.mark.parametrize(
    "value, shown",
    [
        (0, "0"),
        (-1, "-1"),
        (1.5, "1.5"),
        (-0.0, "-0"),  # not "0": the message shows what was given
        (0.0, "0"),  # Pulumi's wire makes every number a float: `got 0`, as the user wrote it
        (-3.0, "-3"),
        (10_001, "10001"),
        (10_001.0, "10001"),
        (1e30, "1e+30"),
        (math.nan, "nan"),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
        (True, "True"),  # a bool is an int to Python, not a count to a user
        (False, "False"),
        ("2", "'2'"),
        ("", "''"),
        ([2], "[2]"),
        (None, "None"),
    ],
)
@pytest.mark.parametrize("policy", [None, POLICY], ids=["shape", "policy"])
def test_purchase_count_refused_showing_the_value(value: Any, shown: str, policy: Policy | None) -> None:
    with pytest.raises(ValueError) as caught:
        rule_purchase_count(value, policy)
    assert str(caught.value) == f"{COUNT_RULE}, got {shown}"


def test_purchase_count_above_the_cap_suggests_raising_it() -> None:
    with pytest.raises(ValueError) as caught:
        rule_purchase_count(25, POLICY)
    assert str(caught.value) == (
        "25 units is above the cap qianfan:maxPurchaseCount = 20, which guards against a mistyped count on a "
        "paid quota; if you mean it, raise the cap with `pulumi config set qianfan:maxPurchaseCount 25`"
    )


@pytest.mark.parametrize(
    "value, shown", [(1e30, "1e+30"), (1e300, "1e+300"), (10**31, str(10**31)), (10_001.0, "10001")]
)
def test_a_huge_count_is_refused_without_suggesting_a_huge_cap(value: float, shown: str) -> None:
    with pytest.raises(ValueError) as caught:
        rule_purchase_count(value, POLICY)
    # Only the value given is echoed: no "raise the cap to 1000000000000000019884624838656".
    assert str(caught.value) == f"{COUNT_RULE}, got {shown}"


@PROFILE
@given(count=st.integers(min_value=1, max_value=MAX_UNITS), cap=st.integers(min_value=1, max_value=MAX_UNITS))
def test_purchase_count_against_any_cap(count: int, cap: int) -> None:
    policy = Policy(max_purchase_count=cap, now=NOW)
    if count <= cap:
        assert rule_purchase_count(count, policy) == count
        assert rule_purchase_count(float(count), policy) == count
    else:
        with pytest.raises(
            ValueError, match=f"raise the cap with `pulumi config set qianfan:maxPurchaseCount {count}`"
        ):
            rule_purchase_count(count, policy)


@PROFILE
@given(value=st.floats())
def test_purchase_count_any_float_is_a_whole_count_or_refused(value: float) -> None:
    try:
        count = rule_purchase_count(value, None)
    except ValueError as exc:
        assert not (value.is_integer() and 1 <= value <= MAX_UNITS)
        assert str(exc).startswith(COUNT_RULE)
    else:
        assert count == value and 1 <= count <= MAX_UNITS


# -- releaseTime --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "value, stored",
    [
        ("2030-01-25 12:30:30", "2030-01-25T12:30:30+08:00"),
        ("2030-01-25T04:30:30Z", "2030-01-25T12:30:30+08:00"),
        ("2030-01-25T12:30:30+08:00", "2030-01-25T12:30:30+08:00"),
    ],
)
def test_release_time_normalised(value: str, stored: str) -> None:
    assert rule_release_time(value, None) == stored
    assert rule_release_time(value, POLICY) == stored


def test_release_time_shape_alone_accepts_the_past() -> None:
    assert rule_release_time("2020-01-01 00:00:00", None) == "2020-01-01T00:00:00+08:00"


@pytest.mark.parametrize("value", ["2027-06-01 08:00:00", "2027-06-01T00:00:00Z", "2020-01-01 00:00:00"])
def test_release_time_not_in_the_future_is_refused(value: str) -> None:
    with pytest.raises(ValueError) as caught:
        rule_release_time(value, POLICY)
    assert "is not in the future (now is 2027-06-01T08:00:00+08:00)" in str(caught.value)
    assert "a new or changed releaseTime must be a future moment" in str(caught.value)


def test_release_time_one_second_ahead_is_in_the_future() -> None:
    assert rule_release_time("2027-06-01 08:00:01", POLICY) == "2027-06-01T08:00:01+08:00"


def test_a_stored_past_release_time_may_stay_in_any_spelling() -> None:
    policy = Policy(now=NOW, previous_release_time="2020-01-01T00:00:00+08:00")
    assert rule_release_time("2019-12-31T16:00:00Z", policy) == "2020-01-01T00:00:00+08:00"
    with pytest.raises(ValueError, match="is not in the future"):
        rule_release_time("2020-01-01 00:00:01", policy)  # a change to another past time is not


@pytest.mark.parametrize(
    "value, fragment",
    [
        ("soon", "'soon' is not a time Qianfan accepts"),
        ("9999-12-31T20:00:00Z", "is outside the range this provider accepts"),
        ("2030-02-30 00:00:00", "is not a valid date and time"),
        (2030, "must be a string"),
        (True, "must be a string"),
    ],
)
@pytest.mark.parametrize("policy", [None, POLICY], ids=["shape", "policy"])
def test_release_time_refused(value: Any, fragment: str, policy: Policy | None) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        rule_release_time(value, policy)


# -- paymentTiming, adoptInstanceId -------------------------------------------------------------
# -- releaseAfter (its spellings: tests/unit/test_release_time.py) ---------------------------------
@pytest.mark.parametrize("policy", [None, POLICY], ids=["shape", "policy"])
def test_release_after_is_normalised_whatever_the_clock(policy: Policy | None) -> None:
    assert rule_release_after(" 480m ", policy) == "8h"
    assert rule_release_after("3d", policy) == "3d"


@pytest.mark.parametrize("policy", [None, POLICY], ids=["shape", "policy"])
def test_release_after_refused(policy: Policy | None) -> None:
    with pytest.raises(ValueError, match=r"^'30m' is shorter than 1h, the least this provider accepts"):
        rule_release_after("30m", policy)


def test_release_after_with_release_time_is_one_failure_naming_both() -> None:
    news = {"model": "ernie-speed-8k", "purchaseCount": 1, "releaseTime": "2030-01-25 12:30:30", "releaseAfter": "8h"}
    inputs, failures = check_props(news, POLICY)
    assert failures == [
        (
            "releaseAfter",
            "cannot be set together with releaseTime: releaseTime is one fixed moment, releaseAfter a duration "
            "after the purchase; keep one of them",
        )
    ]
    assert inputs["releaseAfter"] == "8h" and inputs["releaseTime"] == "2030-01-25T12:30:30+08:00"


@pytest.mark.parametrize("unknown", [UNKNOWN, Unknown()], ids=["wire-sentinel", "Unknown"])
def test_an_unknown_release_after_or_time_conflicts_with_nothing_yet(unknown: Any) -> None:
    """Unknown in preview may turn out absent: check runs again at apply with the values."""
    for news in (
        {"releaseTime": "2030-01-25 12:30:30", "releaseAfter": unknown},
        {"releaseTime": unknown, "releaseAfter": "8h"},
    ):
        assert conflicts(news) == []
        assert check_props({"model": "ernie-speed-8k", "purchaseCount": 1, **news}, POLICY)[1] == []


def test_check_props_keeps_release_after_as_the_input() -> None:
    inputs, failures = check_props({"model": "ernie-speed-8k", "purchaseCount": 1, "releaseAfter": "1440m"}, POLICY)
    assert failures == []
    assert inputs == {"model": "ernie-speed-8k", "purchaseCount": 1, "releaseAfter": "1d", "paymentTiming": "Postpaid"}


@pytest.mark.parametrize("policy", [None, POLICY], ids=["shape", "policy"])
def test_payment_timing(policy: Policy | None) -> None:
    assert rule_payment_timing("Postpaid", policy) == "Postpaid"
    assert rule_payment_timing(" Postpaid\n", policy) == "Postpaid"  # trimmed, as every other rule does
    for value in ("postpaid", "Prepaid", "", 1, True):
        with pytest.raises(ValueError) as caught:
            rule_payment_timing(value, policy)
        assert str(caught.value) == (
            f"must be 'Postpaid', the only payment timing Qianfan offers for TPM quota, got {value!r}"
        )


@pytest.mark.parametrize(
    "value, expected",
    [
        ("tpm-Vlxxxx3F", "tpm-Vlxxxx3F"),  # the seed's example id
        ("a0085162fxxxx0a49d19e58e", "a0085162fxxxx0a49d19e58e"),  # the Describe page's
        (" tpm-Vlxxxx3F\n", "tpm-Vlxxxx3F"),
    ],
)
@pytest.mark.parametrize("policy", [None, POLICY], ids=["shape", "policy"])
def test_adopt_instance_id_accepted(value: str, expected: str, policy: Policy | None) -> None:
    assert rule_adopt_instance_id(value, policy) == expected


@pytest.mark.parametrize("value", ["", "tpm x", "tpm/1", "-tpm", "i" * 129, 12, True, None])
def test_adopt_instance_id_refused(value: Any) -> None:
    with pytest.raises(ValueError) as caught:
        rule_adopt_instance_id(value, POLICY)
    assert str(caught.value) == (
        "must be the instanceId of an existing quota, such as 'tpm-Vlxxxx3F' (letters, digits, '.', '_', '-'), "
        f"got {show(value)}"
    )


# -- check_props --------------------------------------------------------------------------------
def test_check_props_normalises_and_fills_the_default() -> None:
    inputs, failures = check_props(
        {"model": " ernie-speed-8k", "purchaseCount": 2.0, "releaseTime": "2030-01-25 12:30:30"}, POLICY
    )
    assert failures == []
    assert inputs == {
        "model": "ernie-speed-8k",
        "purchaseCount": 2,
        "releaseTime": "2030-01-25T12:30:30+08:00",
        "paymentTiming": "Postpaid",
    }


def test_check_props_missing_required_inputs_say_what_to_give() -> None:
    inputs, failures = check_props({}, POLICY)
    assert failures == [
        ("model", "is required: the Qianfan model id to buy TPM quota for, such as 'ernie-speed-8k'"),
        (
            "purchaseCount",
            "is required: the number of units to hold, a whole number >= 1 (1 unit = 10,000 TPM and 33 RPM)",
        ),
    ]
    assert inputs == {"paymentTiming": "Postpaid"}


def test_check_props_reports_every_bad_field_at_once_keeping_what_was_given() -> None:
    news = {"model": "ernie-sped-8k", "purchaseCount": 1.5, "paymentTiming": "Prepaid", "purchasecount": 2}
    inputs, failures = check_props(news, POLICY)
    assert [name for name, _ in failures] == ["purchasecount", "model", "purchaseCount", "paymentTiming"]
    assert failures[0] == (
        "purchasecount",
        "is not a TPMQuota input; the inputs are model, purchaseCount, releaseTime, releaseAfter, paymentTiming, "
        "adoptInstanceId",
    )
    assert failures[2] == ("purchaseCount", f"{COUNT_RULE}, got 1.5")
    assert inputs == {"model": "ernie-sped-8k", "purchaseCount": 1.5, "paymentTiming": "Prepaid"}


@pytest.mark.parametrize("unknown", [UNKNOWN, Unknown()], ids=["wire-sentinel", "Unknown"])
def test_check_props_lets_unknown_values_pass(unknown: Any) -> None:
    news = {name: unknown for name in INPUT_NAMES}
    inputs, failures = check_props(news, POLICY)
    assert failures == []
    assert all(inputs[name] is unknown for name in INPUT_NAMES)


def test_check_props_ignores_the_provider_blob() -> None:
    inputs, failures = check_props({PROVIDER_KEY: "blob", "model": "ernie-speed-8k", "purchaseCount": 1}, POLICY)
    assert failures == [] and PROVIDER_KEY not in inputs


def test_check_props_applies_the_policy() -> None:
    _, failures = check_props(
        {"model": "ernie-speed-8k", "purchaseCount": 21, "releaseTime": "2027-01-01 00:00:00"}, POLICY
    )
    assert [name for name, _ in failures] == ["purchaseCount", "releaseTime"]


# -- comparable / changed / replaces / known_inputs ---------------------------------------------
STATE = {
    "model": "ernie-speed-8k",
    "purchaseCount": 2,
    "releaseTime": "2030-01-25T12:30:30+08:00",
    "paymentTiming": "Postpaid",
    "adoptInstanceId": "tpm-Vlxxxx3F",
}


@pytest.mark.parametrize(
    "wire, props, expected",
    [
        ("releaseTime", {"releaseTime": "2030-01-25T04:30:30Z"}, "2030-01-25T12:30:30+08:00"),
        ("releaseTime", {"releaseTime": "2020-01-01 00:00:00"}, "2020-01-01T00:00:00+08:00"),  # the past: no policy
        ("releaseTime", {"releaseTime": "garbage"}, "garbage"),  # never refuses
        ("releaseTime", {}, None),
        ("paymentTiming", {}, "Postpaid"),  # the default
        ("purchaseCount", {"purchaseCount": 3.0}, 3),
        ("purchaseCount", {"purchaseCount": 1.5}, 1.5),
        ("model", {"model": "not-in-any-list"}, "not-in-any-list"),
        ("model", {"model": UNKNOWN}, UNKNOWN),
    ],
)
def test_comparable(wire: str, props: dict[str, Any], expected: Any) -> None:
    assert comparable(props, BY_WIRE[wire]) == expected


def test_two_spellings_of_the_same_inputs_make_no_change() -> None:
    news = {
        "model": " ernie-speed-8k ",
        "purchaseCount": 2.0,
        "releaseTime": "2030-01-25 12:30:30",
        "adoptInstanceId": "tpm-other",  # read at create only
    }
    assert changed(STATE, news) == [] and replaces(STATE, news) == []


@pytest.mark.parametrize(
    "change, changes, replaced",
    [
        ({"purchaseCount": 3}, ["purchaseCount"], []),
        ({"releaseTime": "2031-01-01 00:00:00"}, ["releaseTime"], []),
        ({"releaseTime": None}, ["releaseTime"], []),
        ({"model": "ernie-lite-8k"}, ["model"], ["model"]),
        ({"paymentTiming": "Prepaid"}, ["paymentTiming"], ["paymentTiming"]),
        ({"model": UNKNOWN}, ["model"], ["model"]),  # an unknown model might be another one
        ({"purchaseCount": UNKNOWN}, ["purchaseCount"], []),
        ({"adoptInstanceId": UNKNOWN}, [], []),
        ({"model": "ernie-lite-8k", "purchaseCount": 5}, ["model", "purchaseCount"], ["model"]),
    ],
)
def test_changed_and_replaces(change: dict[str, Any], changes: list[str], replaced: list[str]) -> None:
    news = {**STATE, **change}
    assert [spec.wire for spec in changed(STATE, news)] == changes
    assert replaces(STATE, news) == replaced


def test_a_release_time_added_where_there_was_none_is_a_change() -> None:
    olds = {k: v for k, v in STATE.items() if k != "releaseTime"}
    assert [spec.wire for spec in changed(olds, STATE)] == ["releaseTime"]


def test_known_inputs_keeps_present_inputs_only() -> None:
    outputs = {**STATE, "releaseTime": None, "instanceId": "tpm-Vlxxxx3F", "tpm": 20_000, PROVIDER_KEY: "blob"}
    assert known_inputs(outputs) == {
        "model": "ernie-speed-8k",
        "purchaseCount": 2,
        "paymentTiming": "Postpaid",
        "adoptInstanceId": "tpm-Vlxxxx3F",
    }


# -- releaseAfter in diff: its instant is an output --------------------------------------------------
#: State after a create with releaseAfter: the input, and the instant it gave as the releaseTime output.
AFTER_STATE = {
    **{k: v for k, v in STATE.items() if k != "adoptInstanceId"},
    "releaseAfter": "8h",
    "releaseTime": "2027-06-01T16:00:01+08:00",
    "instanceId": "tpm-Vlxxxx3F",
}
AFTER_NEWS = {"model": "ernie-speed-8k", "purchaseCount": 2, "releaseAfter": "8h", "paymentTiming": "Postpaid"}


@pytest.mark.parametrize(
    "change, changes",
    [
        ({}, []),  # a later `pulumi up`: the computed instant is not compared with the absent releaseTime
        ({"releaseAfter": "480m"}, []),  # another spelling of the same duration
        ({"purchaseCount": 3}, ["purchaseCount"]),
        ({"releaseAfter": "9h"}, ["releaseAfter"]),
        ({"releaseAfter": UNKNOWN}, ["releaseAfter"]),
        ({"releaseAfter": None}, ["releaseTime", "releaseAfter"]),  # cancelled
        ({"releaseAfter": None, "releaseTime": "2027-06-01T16:00:01+08:00"}, ["releaseAfter"]),  # the same, fixed
        ({"releaseAfter": None, "releaseTime": "2031-01-01 00:00:00"}, ["releaseTime", "releaseAfter"]),
    ],
)
def test_a_release_after_diffs_on_its_duration_only(change: dict[str, Any], changes: list[str]) -> None:
    news = {k: v for k, v in {**AFTER_NEWS, **change}.items() if v is not None}
    assert [spec.wire for spec in changed(AFTER_STATE, news)] == changes
    assert replaces(AFTER_STATE, news) == []


def test_a_release_after_where_there_was_a_release_time_is_a_change() -> None:
    assert [spec.wire for spec in changed(STATE, {**STATE, "releaseTime": None, "releaseAfter": "8h"})] == [
        "releaseAfter"
    ]


def test_the_instant_a_release_after_gave_is_an_output_not_an_input() -> None:
    assert known_inputs(AFTER_STATE) == {
        "model": "ernie-speed-8k",
        "purchaseCount": 2,
        "releaseAfter": "8h",
        "paymentTiming": "Postpaid",
    }
    assert computed_outputs(AFTER_STATE) == {"releaseTime": "2027-06-01T16:00:01+08:00"}
    assert computed_outputs(STATE) == {}  # a releaseTime given as an input is an input
    assert computed_outputs({"releaseAfter": "8h"}) == {}  # none computed yet


# -- the table itself ---------------------------------------------------------------------------
def test_the_table_is_consistent() -> None:
    assert len({spec.wire for spec in INPUTS}) == len(INPUTS) == len({spec.python for spec in INPUTS})
    for spec in INPUTS:
        assert not (spec.required and spec.default is not None), f"{spec.wire}: a required input has no default"
        if spec.default is not None:
            assert spec.rule(spec.default, None) == spec.default, f"{spec.wire}: its default breaks its own rule"
        assert spec.what and spec.what[0].islower(), f"{spec.wire}: `what` reads after 'is required: '"
    assert {spec.wire for spec in INPUTS if spec.on_change is OnChange.REPLACE} == {"model", "paymentTiming"}


INPUTS_START, INPUTS_END = "<!-- inputs-table -->", "<!-- /inputs-table -->"
OUTPUTS_START, OUTPUTS_END = "<!-- outputs-table -->", "<!-- /outputs-table -->"


@pytest.mark.parametrize(
    ("heading", "markers", "render"),
    [
        ("## Argument Reference", (INPUTS_START, INPUTS_END), reference_table),
        ("## Attribute Reference", (OUTPUTS_START, OUTPUTS_END), outputs_table),
    ],
    ids=["inputs", "outputs"],
)
def test_the_resource_pages_tables_are_the_rendered_tables(
    heading: str, markers: tuple[str, str], render: Callable[[], list[str]]
) -> None:
    page = "docs/resources/tpm_quota.md"
    lines = (PROJECT_ROOT / page).read_text(encoding="utf-8").splitlines()
    section = lines.index(heading)
    start, end = lines.index(markers[0], section), lines.index(markers[1], section)
    assert not any(line.startswith("#") for line in lines[section + 1 : start]), f"the table belongs under {heading}"
    expected = render()
    paste = "\n".join([markers[0], *expected, markers[1]])
    assert lines[start + 1 : end] == expected, (
        f"{page}'s table under {heading} differs from fields.{render.__name__}(); paste these lines in place of "
        f"the page's, from marker to marker:\n{paste}"
    )
    assert all(output.doc in "\n".join(lines) for output in OUTPUTS)


@pytest.mark.parametrize("instance_id", ["tpm-Vlxxxx3F", "a0085162fxxxx0ad19e58e", "x" * 128, "44961088f5xxxxx79f5daf"])
def test_instance_ids_as_baidu_shows_them_are_accepted(instance_id: str) -> None:
    assert rule_adopt_instance_id(instance_id, None) == instance_id


@pytest.mark.parametrize("instance_id", ["x" * 129, "-tpm", "tpm a", "tpm/../a", "", "tpm\nx", "tpm-\u00e9"])
def test_other_instance_ids_are_refused(instance_id: str) -> None:
    with pytest.raises(ValueError, match="instanceId of an existing quota"):
        rule_adopt_instance_id(instance_id, None)
