"""qianfan-tpm-guardrails: organisation-wide rules for Baidu Qianfan TPM quota, as a Pulumi policy pack.

The provider guards one quota at a time; these rules are about whole stacks: quota outside
long-lived stacks must be released on its own soon enough (a `releaseTime` or a `releaseAfter`),
quota in them must be protected, a stack stays within
its TPM budget, and only approved models are bought. The Pulumi CLI runs this file with
`python -u -m pulumi.policy <engine> <this directory>`; constructing the PolicyPack serves the
Analyzer gRPC interface and prints its port.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from pack_config import (
    MODELS,
    PROTECTED,
    RELEASE_TIME,
    SCHEMAS,
    STACK_BUDGET,
    budget_config,
    models_config,
    protected_config,
    release_time_config,
)
from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from tpm_inputs import (
    TPM_PER_UNIT,
    TPM_QUOTA_TYPE,
    Absent,
    parse_release_time,
    read,
    release_after_hours,
    show,
    stack_of,
    units,
)


def check_release_time(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Quota is billed by the hour until released; outside long-lived stacks a release is the dead-man switch:
    a `releaseTime` at most maxHoursAhead ahead, or a `releaseAfter` at most that long (the purchase is the
    preview's `up`, and the provider fixes the instant when it sends it)."""
    config = release_time_config(args.get_config())
    if args.resource_type != TPM_QUOTA_TYPE:
        args.not_applicable("not a TPMQuota")
        return
    stack = stack_of(args.urn)
    if stack in config.long_lived_stacks:
        args.not_applicable(f'stack "{stack}" is long-lived ({RELEASE_TIME}.longLivedStacks)')
        return
    value, after = read(args.props, "releaseTime"), read(args.props, "releaseAfter")
    if Absent.UNKNOWN in (value, after):
        return
    limit = (
        f"the limit is {config.max_hours_ahead:g} h ahead (policy config {RELEASE_TIME}.maxHoursAhead); "
        f"stacks in {RELEASE_TIME}.longLivedStacks {show(list(config.long_lived_stacks))} are exempt"
    )
    where = f'TPMQuota "{args.name}" in stack "{stack}"'
    given_time, given_after = value not in (Absent.MISSING, ""), after not in (Absent.MISSING, "")
    if not given_time and not given_after:
        report(
            f"{where} has no releaseTime or releaseAfter, so it is billed until someone deletes it; {limit}", args.urn
        )
    for problem in (
        _release_after_problem(after, config.max_hours_ahead) if given_after else None,
        _release_time_problem(value, config.max_hours_ahead) if given_time else None,
    ):
        if problem:
            report(f"{where}: {problem}; {limit}", args.urn)


def _release_after_problem(value: object, max_hours: float) -> str | None:
    try:
        hours = release_after_hours(value)
    except ValueError as exc:
        return f"releaseAfter {show(value)} {exc}"
    return f"releaseAfter {show(value)} is {hours:,.1f} h after the purchase" if hours > max_hours else None


def _release_time_problem(value: object, max_hours: float) -> str | None:
    try:
        moment = parse_release_time(value)
    except ValueError as exc:
        return f"releaseTime {show(value)} {exc}"
    hours = (moment - datetime.now(UTC)).total_seconds() / 3600
    return f"releaseTime {show(value)} is {hours:,.1f} h ahead" if hours > max_hours else None


def check_protected(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Production capacity must survive a `pulumi destroy` run in the wrong stack."""
    config = protected_config(args.get_config())
    if args.resource_type != TPM_QUOTA_TYPE:
        args.not_applicable("not a TPMQuota")
        return
    stack = stack_of(args.urn)
    if stack not in config.long_lived_stacks:
        args.not_applicable(f'stack "{stack}" is not long-lived ({PROTECTED}.longLivedStacks)')
        return
    if not args.opts.protect:
        report(
            f'TPMQuota "{args.name}" in long-lived stack "{stack}" is not protected (protect: false), so '
            f"`pulumi destroy` would release it; set protect: true, or change policy config "
            f"{PROTECTED}.longLivedStacks {show(list(config.long_lived_stacks))}",
            args.urn,
        )


def check_models(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """Buying quota switches a model's billing; the organisation decides which models that may happen to."""
    config = models_config(args.get_config())
    if config.allowed_models is None:
        args.not_applicable(f"no {MODELS}.allowedModels configured")
        return
    if args.resource_type != TPM_QUOTA_TYPE:
        args.not_applicable("not a TPMQuota")
        return
    model = read(args.props, "model")
    if model is Absent.UNKNOWN:
        return
    if isinstance(model, str) and model.strip() in config.allowed_models:
        return
    shown = "no model" if model is Absent.MISSING else f"model {show(model)}"
    report(
        f'TPMQuota "{args.name}" has {shown}, which is not in policy config {MODELS}.allowedModels '
        f"{show(list(config.allowed_models))}",
        args.urn,
    )


def check_stack_budget(args: StackValidationArgs, report: ReportViolation) -> None:
    """Per-quota caps cannot bound a stack; this sums it. Unknown counts are left out, never guessed."""
    config = budget_config(args.get_config())
    if config.max_stack_tpm is None and not config.max_model_tpm:
        args.not_applicable(f"no budget configured ({STACK_BUDGET}.maxStackTpm, {STACK_BUDGET}.maxModelTpm)")
        return
    counted: list[tuple[PolicyResource, int, object]] = []
    count_unknown: list[PolicyResource] = []
    for resource in args.resources:
        if resource.resource_type != TPM_QUOTA_TYPE:
            continue
        value = read(resource.props, "purchaseCount")
        if value is Absent.UNKNOWN:
            count_unknown.append(resource)
            continue
        try:
            count = units(value)
        except ValueError as exc:
            shown = "no purchaseCount" if value is Absent.MISSING else f"purchaseCount {show(value)}, which {exc}"
            report(
                f'TPMQuota "{resource.name}" has {shown}, so it cannot be counted against the TPM budget '
                f"(policy config {STACK_BUDGET}); 1 unit = {TPM_PER_UNIT:,} TPM",
                resource.urn,
            )
            continue
        model = read(resource.props, "model")
        counted.append((resource, count, model.strip() if isinstance(model, str) else model))
    if not counted:
        return
    stack = stack_of(counted[0][0].urn)
    if config.max_stack_tpm is not None:
        _report_over(
            report,
            f'stack "{stack}"',
            counted,
            config.max_stack_tpm,
            f"{STACK_BUDGET}.maxStackTpm",
            _not_counted(count_unknown, "purchaseCount"),
        )
    model_unknown = [r for r, _, m in counted if m is Absent.UNKNOWN]
    for model, limit in sorted(config.max_model_tpm.items()):
        _report_over(
            report,
            f'stack "{stack}", model "{model}",',
            [c for c in counted if c[2] == model],
            limit,
            f"{STACK_BUDGET}.maxModelTpm[{show(model)}]",
            _not_counted(count_unknown, "purchaseCount") + _not_counted(model_unknown, "model"),
        )


def _report_over(
    report: ReportViolation,
    scope: str,
    quotas: list[tuple[PolicyResource, int, object]],
    limit: int,
    key: str,
    note: str,
) -> None:
    total = sum(count for _, count, _ in quotas) * TPM_PER_UNIT
    if total <= limit:
        return
    parts = ", ".join(f'"{r.name}" {count * TPM_PER_UNIT:,}' for r, count, _ in quotas)
    report(
        f"{scope} holds {total:,} TPM ({parts}), more than the budget of {limit:,} TPM "
        f"(policy config {key}); 1 unit = {TPM_PER_UNIT:,} TPM{note}",
        None,
    )


def _not_counted(resources: Iterable[PolicyResource], field: str) -> str:
    names = [f'"{r.name}"' for r in resources]
    if not names:
        return ""
    return f"; not counted, {field} unknown until apply: {', '.join(names)}"


def policy_pack() -> None:
    PolicyPack(
        name="qianfan-tpm-guardrails",
        policies=[
            ResourceValidationPolicy(
                name=RELEASE_TIME,
                description="Outside long-lived stacks, every TPMQuota has a releaseTime or releaseAfter within "
                "maxHoursAhead.",
                validate=check_release_time,
                enforcement_level=EnforcementLevel.MANDATORY,
                config_schema=SCHEMAS[RELEASE_TIME],
            ),
            ResourceValidationPolicy(
                name=PROTECTED,
                description="In long-lived stacks, every TPMQuota is protected against `pulumi destroy`.",
                validate=check_protected,
                enforcement_level=EnforcementLevel.ADVISORY,
                config_schema=SCHEMAS[PROTECTED],
            ),
            StackValidationPolicy(
                name=STACK_BUDGET,
                description="A stack's TPMQuotas stay within its TPM budget, overall and per model.",
                validate=check_stack_budget,
                enforcement_level=EnforcementLevel.MANDATORY,
                config_schema=SCHEMAS[STACK_BUDGET],
            ),
            ResourceValidationPolicy(
                name=MODELS,
                description="TPMQuotas buy only the models in allowedModels.",
                validate=check_models,
                enforcement_level=EnforcementLevel.MANDATORY,
                config_schema=SCHEMAS[MODELS],
            ),
        ],
    )


if __name__ == "__main__":
    policy_pack()
