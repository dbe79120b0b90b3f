"""TPMQuotaInputs: the typed, validated inputs of one quota, as `create` and `update` use them.

Imported only at apply time (see `tpm_quota._typed`): a preview validates with `rules.py` alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from .rules import INPUT_NAMES, RULES


def _custom(exc: ValueError) -> PydanticCustomError:
    return PydanticCustomError("tpm_quota_input", str(exc).replace("{", "{{").replace("}", "}}"))


class TPMQuotaInputs(BaseModel):
    """Validated, normalised inputs of one TPMQuota (wire names as aliases)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    model: str
    purchase_count: int = Field(alias="purchaseCount")
    release_time: str | None = Field(default=None, alias="releaseTime")
    payment_timing: str = Field(default="Postpaid", alias="paymentTiming")
    adopt_instance_id: str | None = Field(default=None, alias="adoptInstanceId")

    @field_validator("*", mode="before")
    @classmethod
    def _apply_rule(cls, value: Any, info: ValidationInfo) -> Any:
        policy = (info.context or {}).get("policy")
        wire = cls.model_fields[info.field_name].alias or info.field_name
        try:
            return RULES[wire](value, policy)
        except ValueError as exc:
            raise _custom(exc) from None

    @classmethod
    def from_props(cls, props: Mapping[str, Any]) -> TPMQuotaInputs:
        """Typed inputs from stored or checked properties (shape only; policy was applied in check)."""
        return cls.model_validate({k: props.get(k) for k in INPUT_NAMES if props.get(k) is not None})

    def to_props(self) -> dict[str, Any]:
        """Wire-named inputs; absent optionals are omitted (Pulumi drops None anyway)."""
        return self.model_dump(by_alias=True, exclude_none=True)
