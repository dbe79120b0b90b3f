"""TPMQuota's inputs and outputs, each declared once: name, type, default, rule, replace-on-change.

`check`, `diff`, the `TPMQuota` class, the typed inputs model, the stack-config parser and the
inputs table of docs/resources/tpm_quota.md are all derived from `INPUTS` (and `OUTPUTS`). Adding
an input means adding one `Field` row with its rule below, and the rule's unit test.

This module imports neither pydantic nor the `qianfan` SDK: it runs in every preview, and the
provider host's start-up is part of the preview's cost (see `python -m bench`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pulumi.dynamic.dynamic import PROVIDER_KEY  # the reserved property that carries the provider
from pulumi.output import Unknown
from pulumi.runtime.rpc import UNKNOWN  # the wire's "not known until apply"

from .messages import show
from .models import DOCUMENTED_MODELS, MODEL_ID, allowed_models, closest_model
from .release_time import (
    ALLOWED_FORMS,
    DURATION_FORMS,
    MAX_RELEASE_AFTER,
    MIN_RELEASE_AFTER,
    format_duration,
    format_release_time,
    normalise_duration,
    parse_release_time,
)

#: The only payment timing Qianfan offers for TPM quota.
PAYMENT_TIMING = "Postpaid"
#: What one unit of `purchaseCount` (and of ResizeTPMResource's `count`) buys.
TPM_PER_UNIT = 10_000
RPM_PER_UNIT = 33
UNIT_NOTE = "1 unit = 10,000 TPM and 33 RPM"
#: The most units one quota may hold, whatever `qianfan:maxPurchaseCount` says. Qianfan documents
#: no maximum; this is this provider's choice, far above any real quota and far below a typo of 1e30.
MAX_UNITS = 10_000


def is_unknown(value: Any) -> bool:
    """During preview the host hands over `pulumi.output.Unknown` (or the raw wire sentinel)."""
    return isinstance(value, Unknown) or (isinstance(value, str) and value == UNKNOWN)


@dataclass(frozen=True)
class Policy:
    """The rules of this stack: which models exist, how much one quota may buy, what "now" is."""

    extra_models: tuple[str, ...] = ()
    max_purchase_count: int | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: The releaseTime already stored; it may be in the past without failing check.
    previous_release_time: str | None = None


#: A rule takes a present (non-None) value and returns it normalised, or raises ValueError with a
#: reason that says what is allowed. With `policy=None` only the value's shape is checked.
Rule = Callable[[Any, Policy | None], Any]


# -- one rule per input -----------------------------------------------------------------------------
def rule_model(value: Any, policy: Policy | None) -> str:
    if not isinstance(value, str) or not MODEL_ID.fullmatch(value.strip()):
        raise ValueError(f"must be a Qianfan model id such as 'ernie-speed-8k', got {show(value)}")
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
    allowed = f"must be a whole number of units >= 1 and <= {MAX_UNITS} ({UNIT_NOTE})"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{allowed}, got {show(value)}")
    if isinstance(value, float) and not value.is_integer():  # NaN and the infinities included
        raise ValueError(f"{allowed}, got {show(value)}")
    count = int(value)
    if not 1 <= count <= MAX_UNITS:
        raise ValueError(f"{allowed}, got {show(value)}")
    if policy is not None and policy.max_purchase_count is not None and count > policy.max_purchase_count:
        raise ValueError(
            f"{count} units is above the cap qianfan:maxPurchaseCount = {policy.max_purchase_count}, which "
            "guards against a mistyped count on a paid quota; if you mean it, raise the cap with "
            f"`pulumi config set qianfan:maxPurchaseCount {count}`"
        )
    return count


def rule_release_time(value: Any, policy: Policy | None) -> str:
    moment = parse_release_time(value)
    normalised = format_release_time(moment)
    if policy is not None and normalised != policy.previous_release_time and moment <= policy.now:
        raise ValueError(
            f"{normalised} is not in the future (now is {format_release_time(policy.now)}); a new or "
            "changed releaseTime must be a future moment"
        )
    return normalised


def rule_release_after(value: Any, policy: Policy | None) -> str:
    # Relative, so no clock is needed: the instant it gives is fixed when the purchase is sent.
    return normalise_duration(value)


def rule_payment_timing(value: Any, policy: Policy | None) -> str:
    if not isinstance(value, str) or value.strip() != PAYMENT_TIMING:
        raise ValueError(
            f"must be '{PAYMENT_TIMING}', the only payment timing Qianfan offers for TPM quota, got {show(value)}"
        )
    return PAYMENT_TIMING


#: What an instance id may look like: Baidu shows `tpm-Vlxxxx3F` and 24 hex digits; any letters,
#: digits, `.`, `_`, `-` up to 128 characters are accepted (Baidu documents no format).
INSTANCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def rule_adopt_instance_id(value: Any, policy: Policy | None) -> str:
    if not isinstance(value, str) or not INSTANCE_ID.fullmatch(value.strip()):
        raise ValueError(
            f"must be the instanceId of an existing quota, such as 'tpm-Vlxxxx3F' (letters, digits, '.', '_', '-'), "
            f"got {show(value)}"
        )
    return value.strip()


#: What a URN looks like: `urn:pulumi:<stack>::<project>::<type>::<name>` (the type may hold `$`).
_URN = re.compile(r"urn:pulumi:[^:\s]+::[^:\s]+::\S+::\S.*")


def rule_owner_urn(value: Any, policy: Policy | None) -> str:
    if not isinstance(value, str) or len(value) > 2048 or not value.isprintable() or not _URN.fullmatch(value):
        raise ValueError(
            "is set by TPMQuota itself (the resource's URN, `urn:pulumi:<stack>::<project>::<type>::<name>`), "
            f"got {show(value)}"
        )
    return value


# -- the table ----------------------------------------------------------------------------------------
class OnChange(StrEnum):
    REPLACE = "replace"  # a new quota is bought, the old one released
    UPDATE = "update"  # changed in place on the existing instance
    IGNORE = "ignore"  # read at create only; a later change makes no diff


@dataclass(frozen=True)
class Field:
    """One input of TPMQuota, everything about it in one place."""

    wire: str  # the name in state, on the wire, in the stack config's quota list
    python: str  # the keyword of `TPMQuota(...)` and its Output attribute
    type: type
    required: bool
    default: Any
    on_change: OnChange
    rule: Rule
    #: What to give, in a phrase: "is required: <what>" says it, and the docs' description starts with it.
    what: str
    #: The rest of the docs' description (may use {models} and {forms}).
    details: str = ""
    #: Set by the `TPMQuota` class itself, not a keyword users give (nor a key of a stack's quota list).
    internal: bool = False
    #: The input (by wire name) this one computes when set: the two exclude each other, and the
    #: computed value is an output only — never compared with the absent input, never an input.
    computes: str | None = None


INPUTS: tuple[Field, ...] = (
    Field(
        "model",
        "model",
        str,
        required=True,
        default=None,
        on_change=OnChange.REPLACE,
        rule=rule_model,
        what="the Qianfan model id to buy TPM quota for, such as 'ernie-speed-8k'",
        details="The documented ids ({models}) plus any in `qianfan:extraModels`; a typo gets the closest id "
        "suggested.",
    ),
    Field(
        "purchaseCount",
        "purchase_count",
        int,
        required=True,
        default=None,
        on_change=OnChange.UPDATE,
        rule=rule_purchase_count,
        what=f"the number of units to hold, a whole number >= 1 ({UNIT_NOTE})",
        details=f"At most `qianfan:maxPurchaseCount` (and never above {MAX_UNITS}). Changed in place with "
        "`ResizeTPMResource`.",
    ),
    Field(
        "releaseTime",
        "release_time",
        str,
        required=False,
        default=None,
        on_change=OnChange.UPDATE,
        rule=rule_release_time,
        what="when Qianfan releases the quota on its own",
        details="{forms}. Stored normalised to RFC3339 in +08:00, so two spellings of one instant never make a "
        "diff. Must be in the future when new, changed, or on a replacement. Changed in place with "
        "`AutoReleaseTPMResource`; removing it cancels the scheduled release.",
    ),
    Field(
        "releaseAfter",
        "release_after",
        str,
        required=False,
        default=None,
        on_change=OnChange.UPDATE,
        rule=rule_release_after,
        what="how long after its purchase Qianfan releases the quota on its own (a dead-man switch)",
        details=f"{DURATION_FORMS[0].upper()}{DURATION_FORMS[1:]}; at least {format_duration(MIN_RELEASE_AFTER)}, "
        f"at most {format_duration(MAX_RELEASE_AFTER)}, stored in one spelling (`90m` is `1h30m`). The instant is "
        "computed when the purchase is sent (rounded up to the second), sent with it and kept as the `releaseTime` "
        "output; later runs leave it alone. A changed duration moves the release to the moment of that `pulumi up` "
        "plus the new duration, in place with `AutoReleaseTPMResource`. Not together with `releaseTime`; see "
        "[Release rules](#release-rules).",
        computes="releaseTime",
    ),
    Field(
        "paymentTiming",
        "payment_timing",
        str,
        required=False,
        default=PAYMENT_TIMING,
        on_change=OnChange.REPLACE,
        rule=rule_payment_timing,
        what="how the quota is billed",
        details=f"Only `{PAYMENT_TIMING}` (hourly, after use) exists for TPM quota.",
    ),
    Field(
        "adoptInstanceId",
        "adopt_instance_id",
        str,
        required=False,
        default=None,
        on_change=OnChange.IGNORE,
        rule=rule_adopt_instance_id,
        what="an existing instance to manage instead of buying one",
        details="Read at create only; see [Adoption](#adoption). One resource per instance.",
    ),
    Field(
        "ownerUrn",
        "owner_urn",
        str,
        required=False,
        default=None,
        on_change=OnChange.IGNORE,
        rule=rule_owner_urn,
        what="the resource's own URN, set by `TPMQuota` (not a keyword)",
        details="Recorded in the purchase ledger with each purchase, adoption and change, so the audit can name "
        "the stack and resource that bought each quota. Never makes a diff.",
        internal=True,
    ),
)


@dataclass(frozen=True)
class Output:
    """A computed output of TPMQuota (every input is an output too)."""

    wire: str
    python: str
    type: type
    doc: str


OUTPUTS: tuple[Output, ...] = (
    Output("instanceId", "instance_id", str, "Qianfan instance id (also the resource id)."),
    Output(
        "status",
        "status",
        str,
        "As Qianfan reports it: `Creating`, `Running` (`Pending` if a fresh purchase was not yet listed).",
    ),
    Output("tpm", "tpm", int, f"`purchaseCount × {TPM_PER_UNIT:,}`."),
    Output("rpm", "rpm", int, f"`purchaseCount × {RPM_PER_UNIT}`."),
)

BY_WIRE: dict[str, Field] = {f.wire: f for f in INPUTS}
INPUT_NAMES: tuple[str, ...] = tuple(BY_WIRE)


# -- what check and diff do with the table ---------------------------------------------------------------
def check_props(news: Mapping[str, Any], policy: Policy) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Validate every input on its own: (normalised inputs, [(property, reason), ...]).

    Unknown values (preview) pass through unchecked; nothing here calls Qianfan.
    """
    failures: list[tuple[str, str]] = []
    inputs: dict[str, Any] = {}
    for name in news:
        if name != PROVIDER_KEY and name not in BY_WIRE:
            given = ", ".join(spec.wire for spec in INPUTS if not spec.internal)
            failures.append((name, f"is not a TPMQuota input; the inputs are {given}"))
    for spec in INPUTS:
        value = news.get(spec.wire)
        if is_unknown(value):
            inputs[spec.wire] = value
            continue
        if value is None:
            value = spec.default
        if value is None:
            if spec.required:
                failures.append((spec.wire, f"is required: {spec.what}"))
            continue
        try:
            inputs[spec.wire] = spec.rule(value, policy)
        except ValueError as exc:
            failures.append((spec.wire, str(exc)))
            inputs[spec.wire] = value
    failures.extend(conflicts(news))
    return inputs, failures


def conflicts(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """An input given together with the one it computes: [(property, reason)]. A value unknown in
    preview may still turn out absent, so only known values conflict."""
    return [
        (
            spec.wire,
            f"cannot be set together with {spec.computes}: {spec.computes} is one fixed moment, {spec.wire} a "
            "duration after the purchase; keep one of them",
        )
        for spec in INPUTS
        if spec.computes is not None
        and all(values.get(name) is not None and not is_unknown(values[name]) for name in (spec.wire, spec.computes))
    ]


def comparable(props: Mapping[str, Any], spec: Field) -> Any:
    """The value as it would be stored, for comparing state with a plan; never refuses anything."""
    value = props.get(spec.wire)
    if value is None:
        value = spec.default
    if value is None or is_unknown(value):
        return value
    try:
        return spec.rule(value, None)
    except ValueError:
        return value


def changed(olds: Mapping[str, Any], news: Mapping[str, Any], *, unknown_is_change: bool = True) -> list[Field]:
    """The inputs whose change matters; an unknown value (preview) might be a change, for diff.

    An output computed by an input the new inputs set (the `releaseTime` of a `releaseAfter`) is
    not theirs to change: only a change of the input that computes it is.
    """
    computed = _computed_by(news)
    return [
        spec
        for spec in INPUTS
        if spec.on_change is not OnChange.IGNORE
        and spec.wire not in computed
        and (unknown_is_change if is_unknown(news.get(spec.wire)) else comparable(olds, spec) != comparable(news, spec))
    ]


def _computed_by(props: Mapping[str, Any]) -> set[str]:
    """The inputs that are outputs here, computed by another input that is set (or unknown)."""
    return {spec.computes for spec in INPUTS if spec.computes is not None and props.get(spec.wire) is not None}


def replaces(olds: Mapping[str, Any], news: Mapping[str, Any], *, unknown_is_change: bool = True) -> list[str]:
    """The inputs whose change replaces the quota."""
    changes = changed(olds, news, unknown_is_change=unknown_is_change)
    return [spec.wire for spec in changes if spec.on_change is OnChange.REPLACE]


def known_inputs(props: Mapping[str, Any]) -> dict[str, Any]:
    """The inputs present in a property bag (state, or outputs), by wire name; a value computed by
    another input (the `releaseTime` of a `releaseAfter`) is an output, not an input."""
    computed = _computed_by(props)
    return {name: props[name] for name in INPUT_NAMES if props.get(name) is not None and name not in computed}


def computed_outputs(props: Mapping[str, Any]) -> dict[str, Any]:
    """The values in a property bag that its inputs computed (the `releaseTime` of a `releaseAfter`):
    kept from state when Qianfan does not report them."""
    return {name: props[name] for name in _computed_by(props) if props.get(name) is not None}


def _description(spec: Field) -> str:
    details = spec.details.format(models=", ".join(f"`{m}`" for m in DOCUMENTED_MODELS), forms=ALLOWED_FORMS)
    return f"{spec.what[0].upper()}{spec.what[1:]}. {details}"


def reference_table() -> list[str]:
    """The inputs table of docs/resources/tpm_quota.md, rendered from INPUTS (a unit test keeps the page in step)."""
    on_change = {OnChange.REPLACE: "**replaces**", OnChange.UPDATE: "in place", OnChange.IGNORE: "no diff"}
    rows = [
        "| Python | wire (state) | type | required | on change | description |",
        "|---|---|---|---|---|---|",
    ]
    for spec in INPUTS:
        required = "yes" if spec.required else ("no" if spec.default is None else f"no (`{spec.default}`)")
        rows.append(
            f"| `{spec.python}` | `{spec.wire}` | {spec.type.__name__} | {required} | {on_change[spec.on_change]} | "
            f"{_description(spec)} |"
        )
    return rows


def outputs_table() -> list[str]:
    """The computed outputs table of docs/resources/tpm_quota.md, rendered from OUTPUTS."""
    rows = ["| Python | wire | type | description |", "|---|---|---|---|"]
    rows += [f"| `{out.python}` | `{out.wire}` | {out.type.__name__} | {out.doc} |" for out in OUTPUTS]
    return rows
