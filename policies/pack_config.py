"""The pack's configuration: a JSON schema per policy for the Pulumi CLI, and the same rules checked here again.

The CLI fills in each schema's `default`s, validates `--policy-pack-config` (or the organisation's
config in Pulumi Cloud) against the schemas and refuses to run on an error, before it calls
`Configure`; pulumi-policy itself checks nothing. The pack checks again because the CLI builds the
object schema from `properties` and `required` only, so a misspelt key passes it silently, and
because numbers reach the pack as floats and `Configure` can be called without the CLI. A bad value
raises PackConfigError, which fails the analysis with a message naming the policy, the key and what
is allowed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pulumi_policy import PolicyConfigSchema
from tpm_inputs import show

RELEASE_TIME = "tpm-quota-release-time"
PROTECTED = "tpm-quota-protected"
STACK_BUDGET = "tpm-quota-stack-budget"
MODELS = "tpm-quota-models"

DEFAULT_LONG_LIVED_STACKS = ("prod",)
DEFAULT_MAX_HOURS_AHEAD = 720

_LONG_LIVED_STACKS = {
    "type": "array",
    "items": {"type": "string", "minLength": 1},
    "default": list(DEFAULT_LONG_LIVED_STACKS),
    "description": "Stack names (as in resource URNs) whose quotas live on: no release needed, protect needed.",
}

SCHEMAS = {
    RELEASE_TIME: PolicyConfigSchema(
        properties={
            "longLivedStacks": _LONG_LIVED_STACKS,
            "maxHoursAhead": {
                "type": "number",
                "minimum": 1,
                "default": DEFAULT_MAX_HOURS_AHEAD,
                "description": "How far ahead of the preview a releaseTime may be, and the longest releaseAfter, in "
                "hours.",
            },
        }
    ),
    PROTECTED: PolicyConfigSchema(properties={"longLivedStacks": _LONG_LIVED_STACKS}),
    STACK_BUDGET: PolicyConfigSchema(
        properties={
            "maxStackTpm": {
                "type": "integer",
                "minimum": 0,
                "description": "Most TPM all TPMQuotas of one stack may hold together (1 unit = 10,000 TPM).",
            },
            "maxModelTpm": {
                "type": "object",
                "additionalProperties": {"type": "integer", "minimum": 0},
                "description": 'Most TPM per model id in one stack, e.g. {"ernie-speed-8k": 100000}.',
            },
        }
    ),
    MODELS: PolicyConfigSchema(
        properties={
            "allowedModels": {
                "type": "array",
                "items": {"type": "string", "minLength": 1},
                "minItems": 1,
                "description": "The only model ids a TPMQuota may buy; unset, every model is allowed.",
            },
        }
    ),
}


class PackConfigError(ValueError):
    """The policy pack configuration cannot be used; the message names policy, key and what is allowed."""


@dataclass(frozen=True)
class ReleaseTimeConfig:
    long_lived_stacks: tuple[str, ...]
    max_hours_ahead: float


@dataclass(frozen=True)
class ProtectedConfig:
    long_lived_stacks: tuple[str, ...]


@dataclass(frozen=True)
class BudgetConfig:
    max_stack_tpm: int | None
    max_model_tpm: dict[str, int]


@dataclass(frozen=True)
class ModelsConfig:
    allowed_models: tuple[str, ...] | None


def release_time_config(raw: Mapping[str, Any]) -> ReleaseTimeConfig:
    _known_keys(RELEASE_TIME, raw)
    hours = raw.get("maxHoursAhead", DEFAULT_MAX_HOURS_AHEAD)
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not math.isfinite(hours) or hours < 1:
        raise _error(RELEASE_TIME, "maxHoursAhead", "a number of hours >= 1", hours)
    return ReleaseTimeConfig(_stack_names(RELEASE_TIME, raw), float(hours))


def protected_config(raw: Mapping[str, Any]) -> ProtectedConfig:
    _known_keys(PROTECTED, raw)
    return ProtectedConfig(_stack_names(PROTECTED, raw))


def budget_config(raw: Mapping[str, Any]) -> BudgetConfig:
    _known_keys(STACK_BUDGET, raw)
    max_stack = None
    if "maxStackTpm" in raw:
        max_stack = _tpm("maxStackTpm", raw["maxStackTpm"])
    per_model = raw.get("maxModelTpm", {})
    if not isinstance(per_model, Mapping):
        raise _error(STACK_BUDGET, "maxModelTpm", "an object of model id -> TPM", per_model)
    max_model = {}
    for model, tpm in per_model.items():
        if not model.strip():
            raise _error(STACK_BUDGET, "maxModelTpm", "keyed by non-empty model ids", dict(per_model))
        max_model[model.strip()] = _tpm(f"maxModelTpm[{show(model)}]", tpm)
    return BudgetConfig(max_stack, max_model)


def models_config(raw: Mapping[str, Any]) -> ModelsConfig:
    _known_keys(MODELS, raw)
    if "allowedModels" not in raw:
        return ModelsConfig(None)
    models = raw["allowedModels"]
    what = "a non-empty list of model ids"
    if not isinstance(models, list) or not models:
        raise _error(MODELS, "allowedModels", what, models)
    if not all(isinstance(m, str) and m.strip() for m in models):
        raise _error(MODELS, "allowedModels", what, models)
    return ModelsConfig(tuple(m.strip() for m in models))


def _known_keys(policy: str, raw: Mapping[str, Any]) -> None:
    allowed = sorted(SCHEMAS[policy].properties)
    unknown = sorted(k for k in raw if k not in allowed)
    if unknown:
        raise PackConfigError(
            f"policy pack config {policy}: unknown key {show(unknown[0])}; this policy takes {', '.join(allowed)}"
        )


def _stack_names(policy: str, raw: Mapping[str, Any]) -> tuple[str, ...]:
    stacks = raw.get("longLivedStacks", list(DEFAULT_LONG_LIVED_STACKS))
    if not isinstance(stacks, list) or not all(isinstance(s, str) and s.strip() for s in stacks):
        raise _error(policy, "longLivedStacks", "a list of stack names", stacks)
    return tuple(s.strip() for s in stacks)


def _tpm(key: str, value: Any) -> int:
    whole = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not whole or not float(value).is_integer() or value < 0:
        raise _error(STACK_BUDGET, key, "a whole number of TPM >= 0", value)
    return int(value)


def _error(policy: str, key: str, what: str, value: Any) -> PackConfigError:
    return PackConfigError(f"policy pack config {policy}.{key} must be {what}, got {show(value)}")
