"""`providers.messages.show`: a value is quoted as the user wrote it, and never breaks the message.

Pulumi's wire carries every number as a float, so a `purchaseCount: -3` from a stack file or a
program reaches `check` as `-3.0`; the message must say `got -3`.
"""

from __future__ import annotations

from typing import Any

import pytest

from providers.messages import MAX_LISTED, closest, listed, show, show_name


@pytest.mark.parametrize(
    "value, shown",
    [
        (-3.0, "-3"),
        (2.0, "2"),
        (0.0, "0"),
        (-0.0, "-0"),
        (1e15, "1000000000000000"),
        (1.5, "1.5"),
        (-2.25, "-2.25"),
        (1e30, "1e+30"),
        (1e-7, "1e-07"),
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        (float("-inf"), "-inf"),
        (-3, "-3"),
        (True, "True"),
        (False, "False"),
        (None, "None"),
        ("-3", "'-3'"),
        ("2.0", "'2.0'"),
        ("", "''"),
        ("配额", "'配额'"),
        ("a\nb\u2028c\u202e", "'a\\nb\\u2028c\\u202e'"),
        ([1.0, 2.5, "x"], "[1, 2.5, 'x']"),
        ((4.0,), "(4,)"),
        ((), "()"),
        ({"purchaseCount": 3.0, 1.0: [None]}, "{'purchaseCount': 3, 1: [None]}"),
        ({}, "{}"),
    ],
)
def test_values_are_shown_as_written(value: Any, shown: str) -> None:
    assert show(value) == shown


def test_an_integer_python_will_not_print_is_still_shown() -> None:
    assert show(10**5000) == "<a int too long to show>"
    assert show([1.0, 10**5000]) == "[1, <a int too long to show>]"


def test_a_float_subclass_keeps_its_own_repr() -> None:
    class Celsius(float):
        def __repr__(self) -> str:
            return f"Celsius({float(self)!r})"

    assert show(Celsius(2.0)) == "Celsius(2.0)"


def test_a_value_that_contains_itself_is_shown_like_repr_shows_it() -> None:
    loop: list[Any] = [1.0]
    loop.append(loop)
    mapping: dict[str, Any] = {}
    mapping["me"] = mapping
    assert show(loop) == "[1, [...]]"
    assert show(mapping) == "{'me': {...}}"


def test_a_repeated_but_not_circular_value_is_shown_each_time() -> None:
    item = [2.0]
    assert show([item, item]) == "[[2], [2]]"


def test_a_long_value_is_cut_short_and_says_how_long_it_was() -> None:
    text = show("x" * 100_000)
    assert text == "'" + "x" * 79 + "… (100002 characters)"


@pytest.mark.parametrize("depth", [30, 2_000, pytest.param(100_000, marks=pytest.mark.slow)])
def test_deeply_nested_garbage_never_raises(depth: int) -> None:
    value: Any = 1.0
    for _ in range(depth):
        value = [value]
    text = show(value)
    assert "\n" not in text and len(text) < 200
    if depth == 30:
        assert text == "[" * 30 + "1" + "]" * 30


@pytest.mark.parametrize(
    "name, shown",
    [
        ("q\u0456anfan:endpoint", "'q\\u0456anfan:endpoint'"),  # Cyrillic і, not i
        ("配额", "'\\u914d\\u989d'"),
        ("a\nb", "'a\\nb'"),
        ("k" * 200, "'" + "k" * 79 + "… (202 characters)"),
    ],
)
def test_a_name_is_shown_escaped_so_a_look_alike_does_not_pass_for_the_real_one(name: str, shown: str) -> None:
    assert show_name(name) == shown


def test_a_listing_of_many_problems_is_bounded() -> None:
    assert listed(["a", "b"]) == ["a", "b"]
    many = [f"p{i}" for i in range(MAX_LISTED + 5)]
    assert listed(many) == [*many[:MAX_LISTED], "… and 5 more problems"]
    assert listed(many[:MAX_LISTED]) == many[:MAX_LISTED]


@pytest.mark.parametrize(
    "typed, names, meant",
    [
        ("maxPurchaseCnt", ["endpoint", "maxPurchaseCount"], "maxPurchaseCount"),
        ("ENDPOINT", ["endpoint", "maxPurchaseCount"], "endpoint"),
        ("region", ["endpoint", "maxPurchaseCount"], None),
        ("x" * 100_000, ["endpoint"], None),
        ("anything", [], None),
    ],
)
def test_closest_names_the_known_name_a_typo_meant(typed: str, names: list[str], meant: str | None) -> None:
    assert closest(typed, names) == meant
