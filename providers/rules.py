"""The per-field rules for TPMQuota inputs, which `check` reports one failure at a time.

Each rule is a plain function that returns the normalised value or raises ValueError with a
reason that says what is allowed. The pydantic model in `inputs.py` applies the same functions,
so `check` (one failure per field, unknown values tolerated during preview) and `create` /
`update` (one typed object) can never disagree. This module does not import pydantic: it runs
in every preview, and pydantic would add about a third to the provider host's start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pulumi.output import Unknown

from .models import allowed_models, closest_model
from .release_time import format_release_time, parse_release_time

#: Pulumi's wire value for "not known until apply" (pulumi.runtime.rpc.UNKNOWN).
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def is_unknown(value: Any) -> bool:
    """During preview the host hands over `pulumi.output.Unknown` (or the raw wire sentinel)."""
    return isinstance(value, Unknown) or (isinstance(value, str) and value == UNKNOWN)


PROVIDER_KEY = "__provider"

INPUT_NAMES = ("model", "purchaseCount", "releaseTime", "paymentTiming", "adoptInstanceId")
REQUIRED = ("model", "purchaseCount")
#: Inputs whose change replaces the quota; the others are changed in place.
REPLACE_ON_CHANGE = ("model", "paymentTiming")
UNIT_NOTE = "1 unit = 10,000 TPM and 33 RPM"


@dataclass(frozen=True)
class Policy:
    """The rules of this stack: which models exist, how much one quota may buy, what "now" is."""

    extra_models: tuple[str, ...] = ()
    max_purchase_count: int | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: The releaseTime already stored; it may be in the past without failing check.
    previous_release_time: str | None = None


# -- one rule per field --------------------------------------------------------------------------
def rule_model(value: Any, policy: Policy | None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a Qianfan model id such as 'ernie-speed-8k'")
    model = value.strip()
    if policy is not None and model not in allowed_models(policy.extra_models):
        guess = closest_model(model, policy.extra_models)
        suggestion = f"did you mean '{guess}'? " if guess else ""
        raise ValueError(
            f"'{model}' is not a model TPM quota can be bought for; {suggestion}allowed: "
            f"{', '.join(allowed_models(policy.extra_models))}. Baidu adds models often: accept a new id "
            "with `pulumi config set qianfan:extraModels <id>[,<id>...]`"
        )
    return model


def rule_purchase_count(value: Any, policy: Policy | None) -> int:
    allowed = f"must be a whole number of units >= 1 ({UNIT_NOTE})"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{allowed}, got {value!r}")
    if isinstance(value, float) and not value.is_integer():
        raise ValueError(f"{allowed}, got {value!r}")
    count = int(value)
    if count < 1:
        raise ValueError(f"{allowed}, got {count}")
    if policy is not None and policy.max_purchase_count is not None and count > policy.max_purchase_count:
        raise ValueError(
            f"{count} units is above the cap qianfan:maxPurchaseCount = {policy.max_purchase_count}, which "
            "guards against a mistyped count on a paid quota; if you mean it, raise the cap with "
            f"`pulumi config set qianfan:maxPurchaseCount {count}`"
        )
    return count


def rule_release_time(value: Any, policy: Policy | None) -> str | None:
    if value is None:
        return None
    try:
        moment = parse_release_time(value)
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    normalised = format_release_time(moment)
    if policy is not None and normalised != policy.previous_release_time and moment <= policy.now:
        raise ValueError(
            f"{normalised} is not in the future (now is {format_release_time(policy.now)}); a new or "
            "changed releaseTime must be a future moment"
        )
    return normalised


def rule_payment_timing(value: Any, policy: Policy | None) -> str:
    if value is None:
        return "Postpaid"
    if value != "Postpaid":
        raise ValueError(f"must be 'Postpaid', the only payment timing Qianfan offers for TPM quota, got {value!r}")
    return "Postpaid"


def rule_adopt_instance_id(value: Any, policy: Policy | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value.strip()):
        raise ValueError(f"must be the instanceId of an existing quota, such as 'tpm-Vlxxxx3F', got {value!r}")
    return value.strip()


RULES = {
    "model": rule_model,
    "purchaseCount": rule_purchase_count,
    "releaseTime": rule_release_time,
    "paymentTiming": rule_payment_timing,
    "adoptInstanceId": rule_adopt_instance_id,
}


def check_props(news: Mapping[str, Any], policy: Policy) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Validate every field on its own: (normalised inputs, [(property, reason), ...]).

    Unknown values (preview) pass through unchecked; nothing here calls Qianfan.
    """
    failures: list[tuple[str, str]] = []
    inputs: dict[str, Any] = {}
    for name in news:
        if name != PROVIDER_KEY and name not in RULES:
            failures.append((name, f"is not a TPMQuota input; the inputs are {', '.join(INPUT_NAMES)}"))
    for name, rule in RULES.items():
        value = news.get(name)
        if is_unknown(value):
            inputs[name] = value
            continue
        if value is None and name in REQUIRED:
            failures.append((name, f"is required: {_required_hint(name)}"))
            continue
        try:
            normalised = rule(value, policy)
        except ValueError as exc:
            failures.append((name, str(exc)))
            inputs[name] = value
            continue
        if normalised is not None:
            inputs[name] = normalised
    return inputs, failures


def _required_hint(name: str) -> str:
    if name == "model":
        return "the Qianfan model id to buy TPM quota for, such as 'ernie-speed-8k'"
    return f"the number of units to buy, a whole number >= 1 ({UNIT_NOTE})"
