"""`providers.resource.TPMQuota` and `providers.inputs`: both held to the field table.

`TPMQuota`'s keywords and Output attributes are written out by hand (for editors and type
checkers), and the pydantic model is built from the table: these tests make a new row in
`fields.INPUTS` or `fields.OUTPUTS` fail here until both follow, saying what to add.
"""

from __future__ import annotations

import inspect
from typing import Any

import pulumi
import pytest

import providers.resource as resource_module
from providers.errors import ProviderError
from providers.fields import INPUTS, OUTPUTS, Field
from providers.inputs import TPMQuotaInputs, desired
from providers.resource import TPMQuota


def evaluate(annotation: str) -> Any:
    """The annotation as Python sees it (the module uses `from __future__ import annotations`)."""
    return eval(annotation, vars(resource_module))  # our own module's annotations, nothing external


def keyword_of(spec: Field) -> tuple[str, Any]:
    """The keyword `TPMQuota.__init__` should have for this input: its annotation and default."""
    type_name = spec.type.__name__
    if spec.required:
        return f"pulumi.Input[{type_name}]", inspect.Parameter.empty
    if spec.default is None:
        return f"pulumi.Input[{type_name}] | None", None
    return f"pulumi.Input[{type_name}]", spec.default


def output_of(python_type: type, optional: bool) -> str:
    return f"pulumi.Output[{python_type.__name__}{' | None' if optional else ''}]"


def test_init_keywords_are_the_table_in_order() -> None:
    parameters = inspect.signature(TPMQuota.__init__).parameters
    keywords = [p.name for p in parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "opts"]
    given = [spec for spec in INPUTS if not spec.internal]  # internal ones TPMQuota sets itself
    expected = [spec.python for spec in given]
    missing = [
        f"{spec.python}: {keyword_of(spec)[0]}"
        + ("" if keyword_of(spec)[1] is inspect.Parameter.empty else f" = {keyword_of(spec)[1]!r}")
        for spec in given
        if spec.python not in keywords
    ]
    assert not missing, f"add to TPMQuota.__init__ (keyword-only, before opts): {', '.join(missing)}"
    assert keywords == expected, f"TPMQuota.__init__'s keywords should be {expected}, in the table's order"
    assert list(parameters)[:2] == ["self", "resource_name"] and list(parameters)[-1] == "opts"


@pytest.mark.parametrize("spec", [spec for spec in INPUTS if not spec.internal], ids=lambda spec: spec.python)
def test_init_keyword_annotation_and_default_follow_the_table(spec: Field) -> None:
    parameter = inspect.signature(TPMQuota.__init__).parameters[spec.python]
    annotation, default = keyword_of(spec)
    assert evaluate(parameter.annotation) == evaluate(annotation), (
        f"TPMQuota.__init__'s {spec.python} should be annotated {annotation}"
    )
    assert parameter.default == default, f"TPMQuota.__init__'s {spec.python} should default to {default!r}"


def test_output_attributes_are_the_inputs_then_the_outputs() -> None:
    annotations = TPMQuota.__annotations__
    expected = {spec.python: output_of(spec.type, not spec.required and spec.default is None) for spec in INPUTS} | {
        output.python: output_of(output.type, False) for output in OUTPUTS
    }
    missing = [f"{name}: {annotation}" for name, annotation in expected.items() if name not in annotations]
    assert not missing, f"declare on TPMQuota: {', '.join(missing)}"
    assert list(annotations) == list(expected), "TPMQuota's Output attributes: the inputs, then the outputs"
    for name, annotation in expected.items():
        assert evaluate(annotations[name]) == evaluate(annotation), f"TPMQuota.{name} should be {annotation}"


def test_output_annotations_are_pulumi_outputs() -> None:
    for name, annotation in TPMQuota.__annotations__.items():
        assert getattr(evaluate(annotation), "__origin__", None) is pulumi.Output, name


# An instance would need a Pulumi runtime; the translations read module tables only.
QUOTA = object.__new__(TPMQuota)
NAMES = [(spec.python, spec.wire) for spec in INPUTS] + [(output.python, output.wire) for output in OUTPUTS]


@pytest.mark.parametrize("python, wire", NAMES, ids=[python for python, _ in NAMES])
def test_property_names_round_trip(python: str, wire: str) -> None:
    assert QUOTA.translate_input_property(python) == wire
    assert QUOTA.translate_output_property(wire) == python
    assert QUOTA.translate_output_property(QUOTA.translate_input_property(python)) == python


def test_property_names_are_written_as_pulumi_does() -> None:
    assert QUOTA.translate_input_property("purchase_count") == "purchaseCount"
    assert QUOTA.translate_input_property("adopt_instance_id") == "adoptInstanceId"
    assert QUOTA.translate_output_property("instanceId") == "instance_id"
    # Names outside the table (Pulumi's own, like `id` and `urn`) pass through unchanged.
    for name in ("id", "urn", "__provider", "somethingElse"):
        assert QUOTA.translate_input_property(name) == name
        assert QUOTA.translate_output_property(name) == name


# -- the pydantic model -------------------------------------------------------------------------
def test_inputs_model_has_exactly_the_tables_fields() -> None:
    fields = TPMQuotaInputs.model_fields
    assert list(fields) == [spec.python for spec in INPUTS]
    for spec in INPUTS:
        info = fields[spec.python]
        assert info.alias == spec.wire, spec.python
        assert info.is_required() == spec.required, spec.python
        if not spec.required:
            assert info.default == spec.default, spec.python


def test_inputs_model_refuses_other_fields() -> None:
    with pytest.raises(ValueError, match="instanceId"):
        TPMQuotaInputs.model_validate({"model": "ernie-speed-8k", "purchaseCount": 1, "instanceId": "tpm-1"})


def test_desired_normalises_and_fills_defaults() -> None:
    inputs = desired(
        {
            "model": " ernie-speed-8k ",
            "purchaseCount": 2.0,
            "releaseTime": "2030-01-25T04:30:30Z",
            "adoptInstanceId": " tpm-Vlxxxx3F ",
            "instanceId": "tpm-Vlxxxx3F",  # outputs in a stored property bag are ignored
            "tpm": 20_000,
        }
    )
    assert (inputs.model, inputs.purchase_count, inputs.release_time, inputs.adopt_instance_id) == (
        "ernie-speed-8k",
        2,
        "2030-01-25T12:30:30+08:00",
        "tpm-Vlxxxx3F",
    )
    assert inputs.to_props() == {
        "model": "ernie-speed-8k",
        "purchaseCount": 2,
        "releaseTime": "2030-01-25T12:30:30+08:00",
        "paymentTiming": "Postpaid",
        "adoptInstanceId": "tpm-Vlxxxx3F",
    }


def test_desired_omits_absent_optionals() -> None:
    assert desired({"model": "ernie-speed-8k", "purchaseCount": 1, "releaseTime": None}).to_props() == {
        "model": "ernie-speed-8k",
        "purchaseCount": 1,
        "paymentTiming": "Postpaid",
    }


@pytest.mark.parametrize(
    "props, expected",
    [
        (
            {"model": "ernie-speed-8k", "purchaseCount": 0},
            "TPMQuota inputs are not valid: purchaseCount must be a whole number of units >= 1 and <= 10000 "
            "(1 unit = 10,000 TPM and 33 RPM), got 0",
        ),
        (
            {"model": "ernie-speed-8k", "purchaseCount": True},
            "TPMQuota inputs are not valid: purchaseCount must be a whole number of units >= 1 and <= 10000 "
            "(1 unit = 10,000 TPM and 33 RPM), got True",
        ),
        (
            {"model": "ernie speed", "purchaseCount": 1},
            "TPMQuota inputs are not valid: model must be a Qianfan model id such as 'ernie-speed-8k', "
            "got 'ernie speed'",
        ),
        (
            {"model": "ernie-speed-8k", "purchaseCount": 1, "paymentTiming": "Prepaid"},
            "TPMQuota inputs are not valid: paymentTiming must be 'Postpaid', the only payment timing Qianfan offers "
            "for TPM quota, got 'Prepaid'",
        ),
    ],
)
def test_desired_names_the_field(props: dict[str, Any], expected: str) -> None:
    with pytest.raises(ProviderError) as caught:
        desired(props)
    assert str(caught.value) == expected


def test_desired_names_a_missing_field_and_every_bad_one() -> None:
    with pytest.raises(ProviderError) as caught:
        desired({"purchaseCount": 1.5, "releaseTime": "soon"})
    message = str(caught.value)
    assert message.startswith("TPMQuota inputs are not valid: ")
    for fragment in (
        "model Field required",
        "purchaseCount must be a whole number",
        "releaseTime 'soon' is not a time",
    ):
        assert fragment in message


def test_desired_quotes_a_value_with_braces_as_given() -> None:
    with pytest.raises(ProviderError) as caught:
        desired({"model": "a{b}", "purchaseCount": 1})
    assert str(caught.value) == (
        "TPMQuota inputs are not valid: model must be a Qianfan model id such as 'ernie-speed-8k', got 'a{b}'"
    )
