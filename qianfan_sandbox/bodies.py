"""The five request bodies as pydantic models, and Baidu's split between their error codes.

A body that is not JSON is `MalformedJSON`; JSON that is not an object, or a field that is
missing or of the wrong JSON type, is `InappropriateJSON`; a field of the right type with a
value Qianfan refuses is `InvalidParameter` naming the field (the sandbox's choice of code).
Fields the sandbox does not know are ignored, as Baidu's common rules ask ("all unrecognisable
items should be ignored directly").

Types are strict (`2.0`, `true` and `"2"` are not counts) and parsing is pydantic's own JSON
parser, which refuses lone surrogates and nesting deeper than 200 instead of failing later.
Value rules that depend on the sandbox (its model list, its clock) read them from the
validation context.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, StrictInt, StrictStr, ValidationError, ValidationInfo
from pydantic_core import PydanticCustomError, from_json

from .errors import ApiError, echo
from .times import parse_release_time

#: Upper bound on units per instance, so absurd counts fail cleanly instead of overflowing SQLite.
MAX_COUNT = 1_000_000
PAYMENT_TIMING = "Postpaid"
STATUSES = ("Creating", "Running", "Stopped")

_INVALID = "invalid_parameter"


@dataclass(frozen=True)
class Rules:
    """What value rules need from the sandbox: the accepted models and its clock (epoch seconds)."""

    models: frozenset[str]
    now: float


def _refuse(problem: str) -> PydanticCustomError:
    return PydanticCustomError(_INVALID, "{problem}", {"problem": problem})


def _rules(info: ValidationInfo) -> Rules:
    rules = info.context
    assert isinstance(rules, Rules), "bodies are parsed with parse_body(), which passes the rules"
    return rules


def _known_model(model: str, info: ValidationInfo) -> str:
    if model not in _rules(info).models:
        raise _refuse(f"{echo(model)} is not a model TPM quota can be bought for")
    return model


def _postpaid(value: str) -> str:
    if value != PAYMENT_TIMING:
        raise _refuse(f"must be {PAYMENT_TIMING!r} (the only payment timing for TPM quota), got {echo(value)}")
    return value


def _units(value: int) -> int:
    if not 1 <= value <= MAX_COUNT:
        raise _refuse(f"must be a whole number of units from 1 to {MAX_COUNT}, got {echo(value)}")
    return value


def _future_time(text: str, info: ValidationInfo) -> str:
    try:
        moment = parse_release_time(text)
    except ValueError as exc:
        raise _refuse(str(exc)) from None
    if moment <= _rules(info).now:
        raise _refuse(f"{echo(text)} is not in the future")
    return text


def _status(value: str) -> str:
    if value not in STATUSES:
        raise _refuse(f"must be one of {', '.join(STATUSES)}, got {echo(value)}")
    return value


Model = Annotated[StrictStr, AfterValidator(_known_model)]
PaymentTiming = Annotated[StrictStr, AfterValidator(_postpaid)]
Units = Annotated[StrictInt, AfterValidator(_units)]
ReleaseTime = Annotated[StrictStr, AfterValidator(_future_time)]
Status = Annotated[StrictStr, AfterValidator(_status)]


class Body(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class Billing(Body):
    paymentTiming: PaymentTiming
    releaseTime: ReleaseTime | None = None


class Purchase(Body):
    model: Model
    billing: Billing
    purchaseCount: Units


class Describe(Body):
    model: Model
    instanceId: StrictStr | None = None
    paymentTiming: PaymentTiming | None = None
    status: Status | None = None
    #: Where the page starts, as the previous answer's `nextMarker` (pagination is the sandbox's
    #: choice, in the style of Baidu Cloud's list APIs; absent, null or "" is the first page).
    marker: StrictStr | None = None


class Resize(Body):
    instanceId: StrictStr
    #: Baidu's page marks `count` optional; what Resize without it means is not documented, so
    #: the sandbox requires it (its choice).
    count: Units


class AutoRelease(Body):
    instanceId: StrictStr
    #: Absent or null cancels the scheduled release (Baidu: omit it to cancel).
    releaseTime: ReleaseTime | None = None


class Release(Body):
    model: Model
    instanceId: StrictStr


B = TypeVar("B", bound=Body)

_TYPE_WORDS = {
    "missing": "is required",
    "string_type": "must be a string",
    "int_type": "must be a whole number (a JSON integer)",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
}
#: How many field problems one answer lists.
_MAX_LISTED = 5


def parse_body(kind: type[B], raw: bytes, rules: Rules) -> B:
    """Validate a raw body; ApiError in Baidu's codes, naming every refused field."""
    try:
        from_json(raw, allow_inf_nan=False)  # NaN and Infinity are not JSON (RFC 8259)
    except ValueError:
        raise ApiError("MalformedJSON", "the request body is not valid JSON") from None
    try:
        return kind.model_validate_json(raw, strict=True, context=rules)
    except ValidationError as exc:
        raise _api_error(exc.errors(include_url=False, include_input=False)) from None


def _api_error(errors: list[Any]) -> ApiError:
    if any(error["type"] == "json_invalid" for error in errors):
        return ApiError("MalformedJSON", "the request body is not valid JSON")
    type_errors = [error for error in errors if error["type"] != _INVALID]
    chosen = type_errors or errors
    problems = [_describe(error) for error in chosen[:_MAX_LISTED]]
    if type_errors:
        return ApiError("InappropriateJSON", "; ".join(problems))
    return ApiError("InvalidParameter", "; ".join(problems))


def _describe(error: Any) -> str:
    field = ".".join(str(part) for part in error["loc"]) or "the request body"
    if error["type"] == _INVALID:
        return f"{field}: {error['ctx']['problem']}"
    return f"{field} {_TYPE_WORDS.get(error['type'], 'is not acceptable: ' + str(error['msg']))}"
