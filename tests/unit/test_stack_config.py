"""`providers.stack_config.parse_quota_plan`: a malformed quota list names the entry and the field.

This is the parser alone; `test_program.py` runs `__main__.py` on the same malformed lists
(`stack_config_cases.MALFORMED`) to show the message reaches the user through the program.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from providers.fields import INPUTS
from providers.stack_config import QuotaEntry, QuotaPlanError, parse_quota_plan, read_stack_config
from tests.unit.stack_config_cases import CHAT, MALFORMED


def problems_of(raw: Any) -> list[str]:
    with pytest.raises(QuotaPlanError) as caught:
        parse_quota_plan(raw)
    problems = list(caught.value.problems)
    assert problems and all("\n" not in problem for problem in problems)
    return problems


def refusal(raw: Any) -> str:
    """The one problem of a list with one mistake (the message is then that line alone)."""
    with pytest.raises(QuotaPlanError) as caught:
        parse_quota_plan(raw)
    assert len(caught.value.problems) == 1, caught.value.problems
    assert str(caught.value) == caught.value.problems[0]
    return str(caught.value)


@pytest.mark.parametrize("quotas, fragment", MALFORMED)
def test_malformed_list_names_entry_and_field(quotas: Any, fragment: str) -> None:
    assert any(fragment in problem for problem in problems_of(quotas))


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
    "releaseAfter": "90m",
    "paymentTiming": "Postpaid",
    "adoptInstanceId": "tpm-Vlxxxx3F",
}


#: The inputs an entry of the quota list gives (the internal ones, TPMQuota sets itself).
GIVEN = [spec for spec in INPUTS if not spec.internal]


def samples_with(wire: str) -> dict[str, Any]:
    """SAMPLES that can be given together, `wire` among them: of an input and the one it computes
    (releaseAfter, releaseTime), the input unless `wire` is the computed one's."""
    excluded = {spec.computes if spec.wire == wire else spec.wire for spec in INPUTS if spec.computes is not None}
    return {k: v for k, v in SAMPLES.items() if k not in excluded}


def test_every_input_of_the_table_is_accepted_by_its_wire_name() -> None:
    wires = [spec.wire for spec in GIVEN]
    assert sorted(SAMPLES) == sorted(wires), f"give SAMPLES a valid value for {sorted(set(wires) - set(SAMPLES))}"
    for spec in GIVEN:
        sample = samples_with(spec.wire)
        (entry,) = parse_quota_plan([{"name": "all", **sample}])
        assert set(entry.inputs) == {s.python for s in GIVEN if s.wire in sample}
        assert entry.inputs[spec.python] == spec.rule(SAMPLES[spec.wire], None)


def test_an_internal_input_is_no_key_of_an_entry() -> None:
    message = refusal([{"name": "all", **samples_with("model"), "ownerUrn": "urn:pulumi:dev::p::t::all"}])
    assert "ownerUrn is not a quota field" in message


@pytest.mark.parametrize("spec", GIVEN, ids=lambda spec: spec.wire)
def test_a_bad_value_of_any_input_names_the_entry_and_the_field(spec: Any) -> None:
    message = refusal([{"name": "all", **samples_with(spec.wire), spec.wire: ["not", "a", "value"]}])
    assert message.startswith(f"stack config qianfan-tpm:quotas[0] ('all'): {spec.wire} ")


def test_release_after_is_normalised_and_refused_with_release_time() -> None:
    (entry,) = parse_quota_plan([{**CHAT, "releaseAfter": "180m"}])
    assert entry.inputs == {"model": "ernie-speed-8k", "purchase_count": 1, "release_after": "3h"}
    assert refusal([{**CHAT, "releaseAfter": "8h", "releaseTime": "2030-01-25 12:30:30"}]) == (
        "stack config qianfan-tpm:quotas[0] ('chat'): releaseAfter cannot be set together with releaseTime: "
        "releaseTime is one fixed moment, releaseAfter a duration after the purchase; keep one of them"
    )
    assert refusal([{**CHAT, "releaseAfter": "30s"}]) == (
        "stack config qianfan-tpm:quotas[0] ('chat'): releaseAfter '30s' counts seconds; Qianfan bills by the "
        "hour, so the smallest unit is m (minutes): use whole days, hours and minutes, largest unit first, such as "
        "8h, 1h30m, 90m or 2d"
    )


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
    [
        (5, "5"),
        (None, "None"),
        (("a", "b"), "('a', 'b')"),
        ("k" * 200, "'" + "k" * 79 + "… (202 characters)"),
        ("", "''"),
        ("模型", "'\\u6a21\\u578b'"),
        ("a\nb", "'a\\nb'"),
    ],
)
def test_a_key_that_is_not_a_field_name(key: Any, shown: str) -> None:
    message = refusal([{**CHAT, key: 1}])
    assert message == (
        f"stack config qianfan-tpm:quotas[0] ('chat'): {shown} is not a quota field; the fields are name, model, "
        "purchaseCount, releaseTime, releaseAfter, paymentTiming, adoptInstanceId, protect, deleteBeforeReplace"
    )


@pytest.mark.parametrize(
    "key, meant",
    [
        ("releasetime", "releaseTime"),
        ("release_after", "releaseAfter"),
        ("release_time", "releaseTime"),
        ("purchase_count", "purchaseCount"),
        ("Model", "model"),
        ("protected", "protect"),
        ("deleteBeforeReplacement", "deleteBeforeReplace"),
        ("adoptInstance", "adoptInstanceId"),
    ],
)
def test_a_misspelt_field_names_the_one_it_meant(key: str, meant: str) -> None:
    problems = problems_of([{**CHAT, key: CHAT.get(meant, 1)}])
    assert f"stack config qianfan-tpm:quotas[0] ('chat'): {key} is not a quota field; did you mean {meant}?" in problems


def test_a_look_alike_field_is_shown_escaped() -> None:
    """`mоdel` with a Cyrillic о reads as `model`; escaped, the message shows why it is refused."""
    problems = problems_of([{**CHAT, "m\u043edel": "ernie-speed-8k"}])
    assert problems[0] == (
        "stack config qianfan-tpm:quotas[0] ('chat'): 'm\\u043edel' is not a quota field; did you mean model?"
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


# -- every problem in one run ---------------------------------------------------------------------
def test_an_entry_with_four_bad_fields_reports_all_four_at_once() -> None:
    """Before: one per run, four rounds to fix one entry."""
    problems = problems_of(
        [{"name": "chat", "model": "gpt 4", "purchaseCount": -3.0, "releaseTime": "soon", "protect": "yes"}]
    )
    label = "stack config qianfan-tpm:quotas[0] ('chat'): "
    assert problems == [
        f"{label}model must be a Qianfan model id such as 'ernie-speed-8k', got 'gpt 4'",
        f"{label}purchaseCount must be a whole number of units >= 1 and <= 10000 (1 unit = 10,000 TPM and 33 RPM), "
        "got -3",
        f"{label}releaseTime 'soon' is not a time Qianfan accepts; use RFC3339 with an explicit offset "
        "(2030-01-25T12:30:30+08:00 or 2030-01-25T04:30:30Z) or 'YYYY-MM-DD HH:MM:SS' read as Beijing time "
        "(UTC+08:00)",
        f"{label}protect must be true or false, got 'yes'",
    ]


def test_problems_of_several_entries_are_all_reported_in_order() -> None:
    problems = problems_of(
        [
            {**CHAT, "purchasecount": 2},
            "chat",
            {**CHAT, "name": "ok"},
            {"name": "bad name", "model": "ernie-speed-8k"},
            {**CHAT},  # the name of entry [0], which had problems of its own
        ]
    )
    assert problems == [
        "stack config qianfan-tpm:quotas[0] ('chat'): purchasecount is not a quota field; did you mean purchaseCount?",
        "stack config qianfan-tpm:quotas[1]: entry must be an object, got str",
        "stack config qianfan-tpm:quotas[3]: name must be 1-63 letters, digits, '-', '_' or '.', starting with a "
        "letter or digit, got 'bad name'",
        "stack config qianfan-tpm:quotas[3]: purchaseCount is required: the number of units to hold, a whole number "
        ">= 1 (1 unit = 10,000 TPM and 33 RPM)",
        "stack config qianfan-tpm:quotas[4] ('chat'): name is used by an earlier entry; names must be unique",
    ]


def test_several_problems_make_one_message_one_line_each() -> None:
    with pytest.raises(QuotaPlanError) as caught:
        parse_quota_plan([{"name": "chat"}, 5])
    assert str(caught.value) == (
        "3 problems in the stack config:\n"
        "  stack config qianfan-tpm:quotas[0] ('chat'): model is required: the Qianfan model id to buy TPM quota "
        "for, such as 'ernie-speed-8k'\n"
        "  stack config qianfan-tpm:quotas[0] ('chat'): purchaseCount is required: the number of units to hold, a "
        "whole number >= 1 (1 unit = 10,000 TPM and 33 RPM)\n"
        "  stack config qianfan-tpm:quotas[1]: entry must be an object, got int"
    )


def test_a_generated_list_of_thousands_of_bad_entries_makes_a_bounded_message() -> None:
    with pytest.raises(QuotaPlanError) as caught:
        parse_quota_plan([{"name": f"q{i}", "model": "ernie-speed-8k", "purchaseCount": 0} for i in range(10_000)])
    assert len(caught.value.problems) == 10_000
    lines = str(caught.value).splitlines()
    assert lines[0] == "10000 problems in the stack config:" and lines[-1] == "  … and 9970 more problems"
    assert len(lines) == 32


def test_an_adoption_by_an_entry_with_a_bad_name_is_still_counted() -> None:
    problems = problems_of(
        [{**CHAT, "name": "bad name", "adoptInstanceId": "tpm-a"}, {**CHAT, "name": "b", "adoptInstanceId": "tpm-a"}]
    )
    assert problems[-1] == (
        "stack config qianfan-tpm:quotas[1] ('b'): adoptInstanceId 'tpm-a' is already adopted by entry [0]; one "
        "instance can belong to one quota"
    )


@pytest.mark.parametrize(
    "garbage",
    [
        {"a": [{"b": [1.0] * 3}]},
        [[[[[[[[[[[["deep"]]]]]]]]]]]],
        "\x00\x1b[31mred\u202e",
        10**400,
        10**5000,
        float("-inf"),
        {"": None},
    ],
    ids=["nested", "deep", "control", "huge-int", "unprintable-int", "-inf", "empty-key"],
)
def test_nested_garbage_in_every_field_is_named_field_by_field(garbage: Any) -> None:
    entry = {"name": "g", **{spec.wire: garbage for spec in GIVEN}, "protect": garbage}
    problems = problems_of([entry])
    # Each field, then releaseAfter again: given together with releaseTime, whatever their values.
    assert [p.split(": ", 1)[1].split(" ", 1)[0] for p in problems] == [
        *(spec.wire for spec in GIVEN),
        "releaseAfter",
        "protect",
    ]
    assert all(len(p) < 600 and "\x1b" not in p and "\x00" not in p for p in problems)


# -- the whole stack config, as the program reads it --------------------------------------------------
VALID = {"qianfan-tpm:quotas": json.dumps([CHAT])}


def stack_refusal(config: dict[str, Any], environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(QuotaPlanError) as caught:
        read_stack_config(config, environ or {})
    problems = list(caught.value.problems)
    assert all("\n" not in problem for problem in problems)
    return problems


def test_a_valid_stack_config_is_the_plan() -> None:
    config = {**VALID, "qianfan:endpoint": "sandbox", "aws:region": "cn-north-1", "pulumi:tags": "{}"}
    assert read_stack_config(config, {}) == [QuotaEntry("chat", {"model": "ernie-speed-8k", "purchase_count": 1})]


def test_the_stack_files_list_is_read_as_the_engine_sends_it() -> None:
    """Lists arrive as JSON text; the same list as an object (the automation API's form) works too."""
    assert read_stack_config({"qianfan-tpm:quotas": [CHAT]}, {}) == read_stack_config(VALID, {})


@pytest.mark.parametrize(
    "key, meant",
    [("qianfan-tpm:quota", "qianfan-tpm:quotas"), ("qianfan-tpm:Quotas", "qianfan-tpm:quotas")],
)
def test_an_unknown_project_setting_names_the_closest(key: str, meant: str) -> None:
    assert stack_refusal({**VALID, key: "[]"}) == [f"stack config {key} is not a setting; did you mean {meant}?"]


def test_an_unknown_project_setting_like_no_other_lists_them() -> None:
    assert stack_refusal({**VALID, "qianfan-tpm:budget": "5"}) == [
        "stack config qianfan-tpm:budget is not a setting; the qianfan-tpm: settings are quotas"
    ]


def test_a_misspelt_provider_setting_is_named_by_the_program_too() -> None:
    """The program sees it first: one line, rather than one check failure per quota."""
    assert stack_refusal({**VALID, "qianfan:maxPurchaseCnt": "50"}) == [
        "stack config qianfan:maxPurchaseCnt is not a setting; did you mean qianfan:maxPurchaseCount?"
    ]


@pytest.mark.parametrize(
    "misplaced",
    ["qianfan-tmp:quotas", "qianfan:quotas", "qianfan_tpm:quotas", "Qianfan-TPM:quotas", "my-project:quotas"],
)
def test_a_quota_list_under_another_namespace_is_named_with_the_rename(misplaced: str) -> None:
    """Before: Pulumi's generic `Missing required configuration variable 'qianfan-tpm:quotas'`."""
    assert stack_refusal({misplaced: json.dumps([CHAT]), "aws:region": "x"}) == [
        f"stack config qianfan-tpm:quotas is not set, but {misplaced} is: rename it to qianfan-tpm:quotas (the "
        "namespace is this project's name, qianfan-tpm)"
    ]


def test_a_list_given_as_null_is_missing_not_misplaced() -> None:
    assert stack_refusal({"qianfan-tpm:quotas": None}) == [
        "stack config qianfan-tpm:quotas is not set: it is the list of quotas this stack holds, each with name, "
        "model and purchaseCount; declare it in stacks/Pulumi.<stack>.yaml (`[]` for none)"
    ]


def test_several_candidates_for_the_missing_list_are_all_named() -> None:
    assert stack_refusal({"qianfan-tmp:quotas": "[]", "qianfan-tpm:quota": "[]"}) == [
        "stack config qianfan-tpm:quotas is not set, but qianfan-tmp:quotas, qianfan-tpm:quota are: rename the one "
        "you mean to qianfan-tpm:quotas"
    ]


def test_a_missing_list_with_nothing_like_it_says_what_it_is() -> None:
    assert stack_refusal({"qianfan:endpoint": "sandbox", "aws:region": "x"}) == [
        "stack config qianfan-tpm:quotas is not set: it is the list of quotas this stack holds, each with name, "
        "model and purchaseCount; declare it in stacks/Pulumi.<stack>.yaml (`[]` for none)"
    ]


@pytest.mark.parametrize("raw, shown", [("foo", "'foo'"), ("[{", "'[{'"), ("", "''"), ("[" * 100_000, "'[[[")])
def test_a_list_that_is_not_json_names_the_key(raw: str, shown: str) -> None:
    [problem] = stack_refusal({"qianfan-tpm:quotas": raw})
    assert problem.startswith(
        "stack config qianfan-tpm:quotas must be a list of objects with name, model and purchaseCount, got " + shown
    )
    assert len(problem) < 300


def test_every_problem_of_the_stack_config_in_one_run_in_order() -> None:
    config = {
        "qianfan-tpm:quotas": json.dumps([{"name": "chat", "model": "ernie-speed-8k", "purchaseCount": 0}]),
        "qianfan-tpm:quota": "[]",
        "qianfan:maxPurchaseCnt": "50",
        "qianfna:endpoint": "sandbox",
        "qianfan:timeoutSeconds": "-3",
        "qianfan:accessKey": "AKsecret-value",
        "aws:region": "x",
    }
    assert stack_refusal(config) == [
        "stack config qianfan-tpm:quota is not a setting; did you mean qianfan-tpm:quotas?",
        "stack config qianfan:maxPurchaseCnt is not a setting; did you mean qianfan:maxPurchaseCount?",
        "stack config qianfna:endpoint is read by nothing: its namespace is not qianfan or qianfan-tpm; did you mean "
        "qianfan:endpoint?",
        "stack config qianfan:secretKey is not set (nor QIANFAN_SECRET_KEY), but qianfan:accessKey is: only half a "
        "key pair is configured. Set it with `pulumi config set --secret qianfan:secretKey <SK>` or export "
        "QIANFAN_SECRET_KEY",
        "stack config qianfan:timeoutSeconds must be a number from 1 to 3600, got '-3'",
        "stack config qianfan-tpm:quotas[0] ('chat'): purchaseCount must be a whole number of units >= 1 and <= "
        "10000 (1 unit = 10,000 TPM and 33 RPM), got 0",
    ]


def test_half_a_key_pair_from_the_environment_is_named_by_the_program() -> None:
    [problem] = stack_refusal(VALID, {"QIANFAN_ACCESS_KEY": "AKsecret-value"})
    assert problem.startswith("stack config qianfan:secretKey is not set (nor QIANFAN_SECRET_KEY), but ")
    assert "AKsecret-value" not in problem


def test_keys_that_are_not_text_are_left_alone() -> None:
    assert read_stack_config({**VALID, 5: "x", None: "y"}, {})[0].name == "chat"  # type: ignore[dict-item]
