"""`providers.resource.TPMQuota`, held to the field table.

`TPMQuota`'s keywords and Output attributes are written out by hand (for editors and type
checkers): these tests make a new row in `fields.INPUTS` or `fields.OUTPUTS` fail here until the
class follows, saying what to add. (The pydantic inputs model, built from the table, is
test_inputs.py's.)
"""

from __future__ import annotations

import inspect
from typing import Any

import pulumi
import pytest

import providers.resource as resource_module
from providers.fields import INPUTS, OUTPUTS, Field
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
