"""The sandbox's own releaseTime parsing and model list, checked against Baidu's text."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from hostdriver import PROJECT_ROOT
from qianfan_sandbox.models import DOCUMENTED_MODELS, accepted_models, parse_model_list
from qianfan_sandbox.times import beijing_text, parse_release_time, utc_text

#: The `model` values of the seed (Baidu's PurchaseTPMResource page), copied by hand.
SEED_MODELS = [
    "ernie-4.0-8k",
    "ernie-4.0-8k-preview",
    "ernie-4.0-turbo-8k",
    "ernie-4.0-turbo-8k-preview",
    "ernie-4.0-turbo-8k-0628",
    "ernie-4.0-turbo-128k",
    "ernie-3.5-8k",
    "ernie-3.5-8k-preview",
    "ernie-3.5-128k",
    "ernie-3.5-128k-preview",
    "ernie-speed-8k",
    "ernie-speed-128k",
    "ernie-speed-pro-128k",
    "ernie-lite-8k",
    "ernie-lite-pro-128k",
    "ernie-tiny-8k",
    "ernie-character-fiction-8k",
    "ernie-char-8k",
    "ernie-novel-8k",
    "ernie-speed-appbuilder-8k",
    "qianfan-agent-speed-8k",
    "qianfan-agent-speed-32k",
    "qianfan-agent-lite-8k",
]
SEED_PATH = PROJECT_ROOT.parent / "shared" / "seeds" / "purchase-tpm-resource.zh.txt"
BEIJING_NOON = datetime(2030, 1, 25, 4, 30, 30, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    "text",
    [
        "2030-01-25 12:30:30",  # the seed's standard spelling, read as Beijing time (the sandbox's choice)
        "2030-01-25T12:30:30+08:00",  # the seed's RFC3339 example
        "2030-01-25T04:30:30Z",
        "2030-01-25t04:30:30z",
        "2030-01-24T23:30:30-05:00",
        "2030-01-25T04:30:30.000Z",
    ],
)
def test_both_documented_spellings(text: str) -> None:
    assert parse_release_time(text) == BEIJING_NOON


def test_fractions_are_kept() -> None:
    assert parse_release_time("2030-01-25T04:30:30.25Z") == BEIJING_NOON + 0.25


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2030-01-25",
        "2030-01-25T12:30:30",  # RFC3339 needs an offset
        "2030-01-25 12:30:30+08:00",
        "2030-01-25  12:30:30",
        " 2030-01-25 12:30:30",
        "2030-01-25 12:30:30\n",
        "2030-1-25 12:30:30",
        "2030-02-30 12:00:00",
        "2030-01-25 24:00:00",
        "2030-01-25 12:30:60",
        "2030-01-25T12:30:30+24:00",
        "2030-01-25T12:30:30+08:60",
        "2030-01-25T12:30:30+0800",
        "0000-01-01 00:00:00",
        "0001-01-01T00:00:00+08:00",
        "9999-12-31 23:59:59",
        "２０３０-01-25 12:30:30",
        "1893556800",
    ],
)
def test_other_spellings_are_refused_with_the_allowed_forms(text: str) -> None:
    with pytest.raises(ValueError, match="RFC3339|valid|years"):
        parse_release_time(text)


def test_answer_spellings() -> None:
    assert utc_text(BEIJING_NOON) == "2030-01-25T04:30:30Z"
    assert utc_text(BEIJING_NOON + 0.9) == "2030-01-25T04:30:30Z"
    assert beijing_text(BEIJING_NOON) == "2030-01-25T12:30:30+08:00"


def test_documented_models_are_the_seeds_plus_one_later_id() -> None:
    assert list(DOCUMENTED_MODELS)[: len(SEED_MODELS)] == SEED_MODELS
    assert set(DOCUMENTED_MODELS) - set(SEED_MODELS) == {"ernie-4.5-turbo-128k"}
    assert DOCUMENTED_MODELS["ernie-4.5-turbo-128k"].startswith("DescribeTPMResource page")
    assert all(DOCUMENTED_MODELS[model].startswith("PurchaseTPMResource page") for model in SEED_MODELS)


@pytest.mark.skipif(not SEED_PATH.exists(), reason="the shared seed document is not beside this checkout")
def test_the_hand_copied_list_is_the_seeds() -> None:
    seed = SEED_PATH.read_text(encoding="utf-8")
    model_cell = seed[seed.index("model | string") : seed.index("billing | object")]
    assert re.findall(r"· ([a-z0-9.-]+):", model_cell) == SEED_MODELS


def test_extra_models() -> None:
    assert parse_model_list(" a, b,,a ,") == ("a", "b")
    assert parse_model_list("") == ()
    assert accepted_models(["my-model"]) == frozenset([*DOCUMENTED_MODELS, "my-model"])
    for bad in ("", "  ", "a\nb", "m" * 129):
        with pytest.raises(ValueError):
            accepted_models([bad])
