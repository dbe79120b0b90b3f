"""The typed, validated inputs of one quota, as `create` and `update` use them.

The pydantic model is built from the field table (`fields.INPUTS`): names, aliases, types,
defaults and rules come from there, so it can never disagree with `check`. It is imported only at
apply time (`tpm_quota._desired`): pydantic adds about a third to the provider host's start-up,
which every preview would pay.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, cast

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, create_model, field_validator
from pydantic import Field as Attribute
from pydantic_core import PydanticCustomError

from .errors import ProviderError
from .fields import INPUTS


class Desired(Protocol):
    """The inputs the lifecycle reads, typed; `TPMQuotaInputs` has exactly the table's fields."""

    @property
    def model(self) -> str: ...
    @property
    def purchase_count(self) -> int: ...
    @property
    def release_time(self) -> str | None: ...
    @property
    def release_after(self) -> str | None: ...
    @property
    def adopt_instance_id(self) -> str | None: ...
    @property
    def owner_urn(self) -> str | None: ...

    def to_props(self) -> dict[str, Any]: ...


_BY_PYTHON = {spec.python: spec for spec in INPUTS}


class _Inputs(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True, extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _apply_rule(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None or info.field_name is None:
            return value
        try:
            return _BY_PYTHON[info.field_name].rule(value, None)
        except ValueError as exc:
            raise PydanticCustomError("tpm_quota_input", str(exc)) from None  # no context: nothing is formatted

    def to_props(self) -> dict[str, Any]:
        """Wire-named inputs; absent optionals are omitted (Pulumi drops None anyway)."""
        return self.model_dump(by_alias=True, exclude_none=True)


TPMQuotaInputs: type[_Inputs] = create_model(  # type: ignore[call-overload]
    "TPMQuotaInputs",
    __base__=_Inputs,
    **{
        spec.python: (
            spec.type if spec.required or spec.default is not None else spec.type | None,
            Attribute(default=... if spec.required else spec.default, alias=spec.wire),
        )
        for spec in INPUTS
    },
)


def desired(props: Mapping[str, Any]) -> Desired:
    """Typed inputs from checked (or stored) properties; a failure names the field, as check does."""
    try:
        parsed = TPMQuotaInputs.model_validate(
            {spec.wire: props[spec.wire] for spec in INPUTS if props.get(spec.wire) is not None}
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])} {e['msg']}" for e in exc.errors())
        raise ProviderError(f"TPMQuota inputs are not valid: {problems}") from None
    return cast(Desired, parsed)
