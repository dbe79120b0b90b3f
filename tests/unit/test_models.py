"""`providers.models`: the model ids TPM quota can be bought for, and `qianfan:extraModels`.

The documented list is checked against Baidu's own page (the seed) and against the sandbox's list,
which was transcribed from that page independently: two copies of one source must agree.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from providers.models import DOCUMENTED_MODELS, allowed_models, closest_model, parse_extra_models

PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: Baidu's PurchaseTPMResource page; CI copies `../shared` beside the clone.
SEED_PATH = PROJECT_ROOT.parent / "shared" / "seeds" / "purchase-tpm-resource.zh.txt"


# -- qianfan:extraModels ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw, expected",
    [
        (None, ()),
        ("", ()),
        ("   ", ()),
        ("ernie-x1-turbo-32k", ("ernie-x1-turbo-32k",)),
        ("a, b,,c ,", ("a", "b", "c")),
        ("a,a,b,a", ("a", "b")),  # repeats dropped, first order kept
        ('["ernie-x1-turbo-32k", "deepseek-v3"]', ("ernie-x1-turbo-32k", "deepseek-v3")),
        ("  []  ", ()),
        ('["a", "a"]', ("a",)),
        ("A.b_c-9", ("A.b_c-9",)),
        ("x" * 64, ("x" * 64,)),
    ],
)
def test_extra_models_accepted_forms(raw: object, expected: tuple[str, ...]) -> None:
    assert parse_extra_models(raw) == expected


@pytest.mark.parametrize(
    "raw, named",
    [
        ('["a",1,null]', "1 is not a model id"),
        ('["a",null]', "None is not a model id"),
        ('["a",["b"]]', "['b'] is not a model id"),
        ('[" a"]', "' a' is not a model id"),  # inside JSON the id is taken as written
        ("a, b c", "'b c' is not a model id"),
        ("a,-b", "'-b' is not a model id"),
        ("ernie/8k", "'ernie/8k' is not a model id"),
        ("x" * 65, f"'{'x' * 65}' is not a model id"),
        ("模型", "'模型' is not a model id"),
    ],
)
def test_extra_models_refuse_a_bad_item_by_name(raw: str, named: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_extra_models(raw)
    assert named in str(caught.value)
    assert "1-64 letters, digits" in str(caught.value)


@pytest.mark.parametrize("raw", ["[a, b]", '["a",', "[", "[1,]", "[NaN"])
def test_extra_models_invalid_json_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="looks like a JSON list but is not valid JSON"):
        parse_extra_models(raw)


def test_a_deeply_nested_json_list_is_refused_as_value_error() -> None:
    with pytest.raises(ValueError):
        parse_extra_models("[" * 1_000 + "]" * 1_000)


def test_extra_models_huge_value_is_not_echoed_whole() -> None:
    raw = "[" + "1," * 50_000
    with pytest.raises(ValueError) as caught:
        parse_extra_models(raw)
    assert len(str(caught.value)) < 300


def test_a_100k_model_id_is_not_echoed_whole() -> None:
    with pytest.raises(ValueError) as caught:
        parse_extra_models("m" * 100_000)
    assert "(100002 characters)" in str(caught.value) and len(str(caught.value)) < 300


# -- allowed_models / closest_model -----------------------------------------------------------
def test_allowed_models_are_the_documented_then_the_extras_without_repeats() -> None:
    allowed = allowed_models(("ernie-speed-8k", "ernie-x1-turbo-32k", "ernie-x1-turbo-32k"))
    assert allowed[: len(DOCUMENTED_MODELS)] == DOCUMENTED_MODELS
    assert allowed[len(DOCUMENTED_MODELS) :] == ("ernie-x1-turbo-32k",)
    assert allowed_models() == DOCUMENTED_MODELS


@pytest.mark.parametrize(
    "typo, extra, expected",
    [
        ("ernie-sped-8k", (), "ernie-speed-8k"),
        ("ERNIE-Speed-8K", (), "ernie-speed-8k"),
        ("  ernie-speed-8k ", (), "ernie-speed-8k"),
        ("ernie-4.0-turbo-8", (), "ernie-4.0-turbo-8k"),
        ("qianfan-agent-speed-32", (), "qianfan-agent-speed-32k"),
        ("ernie-x1-turbo-23k", ("ernie-x1-turbo-32k",), "ernie-x1-turbo-32k"),
        ("gpt-4o", (), None),
        ("zzzzzzzz", ("ernie-x1-turbo-32k",), None),
    ],
)
def test_closest_model(typo: str, extra: tuple[str, ...], expected: str | None) -> None:
    assert closest_model(typo, extra) == expected


# -- the documented list against Baidu's page and the sandbox's transcription -----------------
def seed_model_ids(seed: str) -> list[str]:
    """The ids of the `model` row of Baidu's request-parameter table: `· ernie-4.0-8k:模型版本为…`."""
    rows = [line for line in seed.splitlines() if line.startswith("model | string |")]
    assert len(rows) == 1, "the seed's request table has one `model` row"
    return re.findall(r"·\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*[:：]", rows[0])


@pytest.mark.skipif(
    not SEED_PATH.exists(), reason=f"Baidu's seed page is not at {SEED_PATH} (CI copies ../shared beside the clone)"
)
def test_every_model_on_baidus_page_is_documented_here() -> None:
    ids = seed_model_ids(SEED_PATH.read_text(encoding="utf-8"))
    assert len(ids) == 23 and "ernie-4.0-8k" in ids and "qianfan-agent-lite-8k" in ids
    missing = [model for model in ids if model not in DOCUMENTED_MODELS]
    assert not missing, f"Baidu's PurchaseTPMResource page lists {missing}; add them to DOCUMENTED_MODELS"
    # In the page's order: a reader comparing the two lists side by side sees the same sequence.
    assert [m for m in DOCUMENTED_MODELS if m in ids] == ids


def test_the_sandbox_transcribed_the_same_models() -> None:
    from qianfan_sandbox.models import DOCUMENTED_MODELS as SANDBOX_MODELS

    assert list(DOCUMENTED_MODELS) == list(SANDBOX_MODELS), (
        "providers/models.py and qianfan_sandbox/models.py transcribe the same Baidu pages; "
        f"only in the provider: {sorted(set(DOCUMENTED_MODELS) - set(SANDBOX_MODELS))}, "
        f"only in the sandbox: {sorted(set(SANDBOX_MODELS) - set(DOCUMENTED_MODELS))}"
    )


def test_documented_ids_have_the_shape_extra_models_require() -> None:
    """An id that `qianfan:extraModels` would refuse could not be a documented one either."""
    assert parse_extra_models(",".join(DOCUMENTED_MODELS)) == DOCUMENTED_MODELS
