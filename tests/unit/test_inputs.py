"""`providers.inputs`: the pydantic model of TPMQuota's inputs, built from the field table, and
`desired()`, the typed inputs the lifecycle reads (failures name the field, as check does)."""

from __future__ import annotations

from typing import Any

import pytest

from providers.errors import ProviderError
from providers.fields import INPUTS
from providers.inputs import TPMQuotaInputs, desired


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
