"""`providers.stack_config.parse_quota_plan`: a malformed quota list names the entry and the field.

This is the parser alone; `test_program.py` runs `__main__.py` on the same malformed lists
(`MALFORMED`) to show the message reaches the user through the program.
"""

from __future__ import annotations

from typing import Any

import pytest

from providers.fields import INPUTS
from providers.stack_config import QuotaEntry, QuotaPlanError, parse_quota_plan

CHAT = {"name": "chat", "model": "ernie-speed-8k", "purchaseCount": 1}

#: (quota list, a fragment of the error) — shared with test_program.py.
MALFORMED: list[tuple[Any, str]] = [
    ({"name": "x"}, "must be a list"),
    (["chat"], "qianfan-tpm:quotas[0]: entry must be an object"),
    ([{"model": "ernie-speed-8k", "purchaseCount": 1}], "qianfan-tpm:quotas[0]: name is required"),
    ([{"name": "chat", "purchaseCount": 1}], "qianfan-tpm:quotas[0] ('chat'): model is required"),
    ([{**CHAT, "purchaseCount": 1.5}], "('chat'): purchaseCount must be a whole number"),
    ([{**CHAT, "releaseTime": "soon"}], "('chat'): releaseTime 'soon' is not a time"),
    ([{**CHAT, "protect": "yes"}], "('chat'): protect must be true or false"),
    ([{"name": "chat", "model": "ernie-speed-8k", "purchasecount": 1}], "('chat'): purchasecount is not a quota field"),
    (
        [{**CHAT, "name": "a"}, {"name": "a", "model": "ernie-lite-8k", "purchaseCount": 1}],
        "qianfan-tpm:quotas[1] ('a'): name is used by an earlier entry",
    ),
]


def refusal(raw: Any) -> str:
    with pytest.raises(QuotaPlanError) as caught:
        parse_quota_plan(raw)
    assert "\n" not in str(caught.value)
    return str(caught.value)


@pytest.mark.parametrize("quotas, fragment", MALFORMED)
def test_malformed_list_names_entry_and_field(quotas: Any, fragment: str) -> None:
    assert fragment in refusal(quotas)


def test_a_valid_plan_is_normalised_by_each_fields_rule() -> None:
    plan = parse_quota_plan(
        [
            {"name": "chat", "model": " ernie-speed-8k ", "purchaseCount": 2.0, "releaseTime": "2030-01-25 12:30:30"},
            {"name": "agent.v2", "model": "qianfan-agent-speed-8k", "purchaseCount": 1, "protect": True},
            {**CHAT, "name": "old_one", "adoptInstanceId": "tpm-Vlxxxx3F", "deleteBeforeReplace": True},
        ]
    )
    assert plan == [
        QuotaEntry(
            "chat",
            {"model": "ernie-speed-8k", "purchase_count": 2, "release_time": "2030-01-25T12:30:30+08:00"},
        ),
        QuotaEntry("agent.v2", {"model": "qianfan-agent-speed-8k", "purchase_count": 1}, protect=True),
        QuotaEntry(
            "old_one",
            {"model": "ernie-speed-8k", "purchase_count": 1, "adopt_instance_id": "tpm-Vlxxxx3F"},
            delete_before_replace=True,
        ),
    ]
    assert type(plan[0].inputs["purchase_count"]) is int


def test_an_empty_list_is_an_empty_plan() -> None:
    assert parse_quota_plan([]) == []


def test_the_stack_policy_is_left_to_check() -> None:
    """Allowed models and the purchase cap are the provider's `check`'s job, with state in view."""
    plan = parse_quota_plan([{**CHAT, "model": "ernie-x1-turbo-32k", "purchaseCount": 500}])
    assert plan[0].inputs == {"model": "ernie-x1-turbo-32k", "purchase_count": 500}


#: One valid value per input, by wire name. A new row in fields.INPUTS fails the test below
#: until it gets a sample here.
SAMPLES: dict[str, Any] = {
    "model": "ernie-speed-8k",
    "purchaseCount": 3,
    "releaseTime": "2030-01-25T04:30:30Z",
    "paymentTiming": "Postpaid",
    "adoptInstanceId": "tpm-Vlxxxx3F",
}


def test_every_input_of_the_table_is_accepted_by_its_wire_name() -> None:
    wires = [spec.wire for spec in INPUTS]
    assert sorted(SAMPLES) == sorted(wires), f"give SAMPLES a valid value for {sorted(set(wires) - set(SAMPLES))}"
    (entry,) = parse_quota_plan([{"name": "all", **SAMPLES}])
    assert set(entry.inputs) == {spec.python for spec in INPUTS}
    for spec in INPUTS:
        assert entry.inputs[spec.python] == spec.rule(SAMPLES[spec.wire], None)


@pytest.mark.parametrize("spec", INPUTS, ids=lambda spec: spec.wire)
def test_a_bad_value_of_any_input_names_the_entry_and_the_field(spec: Any) -> None:
    message = refusal([{"name": "all", **SAMPLES, spec.wire: ["not", "a", "value"]}])
    assert message.startswith(f"stack config qianfan-tpm:quotas[0] ('all'): {spec.wire} ")


# -- names ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name",
    [
        "chat\n",  # what a YAML block scalar (`name: |`) yields
        " chat",
        "x" * 64,
        "配额",
        "a::b",
        "a b",
        "-chat",
        ".chat",
        "",
        5,
        True,
        ["chat"],
    ],
)
def test_a_present_but_invalid_name_is_reported_with_its_value(name: Any) -> None:
    message = refusal([{**CHAT, "name": name}])
    assert message == (
        "stack config qianfan-tpm:quotas[0]: name must be 1-63 letters, digits, '-', '_' or '.', starting with a "
        f"letter or digit, got {name!r}"
    )
    assert "is required" not in message


def test_a_63_character_name_is_fine() -> None:
    assert parse_quota_plan([{**CHAT, "name": "x" * 63}])[0].name == "x" * 63


def test_a_null_name_is_missing() -> None:
    assert refusal([{**CHAT, "name": None}]).startswith("stack config qianfan-tpm:quotas[0]: name is required: ")


def test_a_huge_name_is_not_echoed_whole() -> None:
    message = refusal([{**CHAT, "name": "n" * 100_000}])
    assert len(message) < 300 and "(100002 characters)" in message


# -- adoption ------------------------------------------------------------------------------------
def test_one_instance_adopted_twice_is_refused_naming_both_entries() -> None:
    message = refusal(
        [
            {**CHAT, "name": "first", "adoptInstanceId": "tpm-Vlxxxx3F"},
            {**CHAT, "name": "other"},
            {**CHAT, "name": "second", "adoptInstanceId": " tpm-Vlxxxx3F "},  # the same id, spelt loosely
        ]
    )
    assert message == (
        "stack config qianfan-tpm:quotas[2] ('second'): adoptInstanceId 'tpm-Vlxxxx3F' is already adopted by entry "
        "'first'; one instance can belong to one quota"
    )


def test_two_different_adoptions_are_fine() -> None:
    plan = parse_quota_plan(
        [{**CHAT, "name": "a", "adoptInstanceId": "tpm-aaaaaaaa"}, {**CHAT, "name": "b", "adoptInstanceId": "tpm-b"}]
    )
    assert [entry.inputs["adopt_instance_id"] for entry in plan] == ["tpm-aaaaaaaa", "tpm-b"]


# -- values that must never escape as anything but QuotaPlanError -------------------------------
@pytest.mark.parametrize(
    "release",
    ["9999-12-31T20:00:00Z", "9999-12-31T23:59:59-08:00", "0001-01-01T00:00:00+09:00"],
)
def test_an_out_of_range_release_time_names_the_entry_and_field(release: str) -> None:
    message = refusal([{**CHAT, "releaseTime": release}])
    assert message.startswith(
        f"stack config qianfan-tpm:quotas[0] ('chat'): releaseTime {release!r} is outside the range"
    )


@pytest.mark.parametrize(
    "count, shown",
    [
        (1e30, "1e+30"),
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        (-0.0, "-0"),
        (-3.0, "-3"),
        (True, "True"),
        ("2", "'2'"),
    ],
)
def test_a_bad_count_names_the_entry_and_field(count: Any, shown: str) -> None:
    message = refusal([{**CHAT, "purchaseCount": count}])
    assert message.startswith("stack config qianfan-tpm:quotas[0] ('chat'): purchaseCount must be a whole number")
    assert message.endswith(f"got {shown}")


@pytest.mark.parametrize("raw", [None, "chat", 5, {"quotas": []}, ("a",)])
def test_a_plan_that_is_not_a_list(raw: Any) -> None:
    assert refusal(raw) == (
        "stack config qianfan-tpm:quotas must be a list of objects with name, model and purchaseCount, "
        f"got {type(raw).__name__}"
    )


@pytest.mark.parametrize("entry, kind", [(None, "NoneType"), ("chat", "str"), (5, "int"), ([CHAT], "list")])
def test_an_entry_that_is_not_an_object(entry: Any, kind: str) -> None:
    assert refusal([CHAT, entry]) == f"stack config qianfan-tpm:quotas[1]: entry must be an object, got {kind}"


@pytest.mark.parametrize(
    "key, shown",
    [(5, "5"), (None, "None"), (("a", "b"), "('a', 'b')"), ("k" * 200, "'" + "k" * 79 + "… (202 characters)")],
)
def test_a_key_that_is_not_a_field_name(key: Any, shown: str) -> None:
    message = refusal([{**CHAT, key: 1}])
    assert message.startswith(
        f"stack config qianfan-tpm:quotas[0] ('chat'): {shown} is not a quota field; the fields are"
    )


@pytest.mark.parametrize("option", ["protect", "deleteBeforeReplace"])
def test_an_option_given_as_null_is_absent(option: str) -> None:
    [entry] = parse_quota_plan([{**CHAT, option: None}])
    assert (entry.protect, entry.delete_before_replace) == (False, False)


@pytest.mark.parametrize("option", ["protect", "deleteBeforeReplace"])
@pytest.mark.parametrize("value", ["true", 1, 0, "yes"])
def test_options_take_booleans_only(option: str, value: Any) -> None:
    assert refusal([{**CHAT, option: value}]) == (
        f"stack config qianfan-tpm:quotas[0] ('chat'): {option} must be true or false, got {value!r}"
    )
