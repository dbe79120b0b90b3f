"""The verdicts: each live instance and each state entry, judged against the other side.

- managed: live, claimed by exactly one state entry, which records it as Qianfan has it;
- unmanaged: live and claimed by no state entry: paid by the hour and nobody's;
- claimed-twice: claimed by two or more entries (two stacks, or twice in one);
- drift: a claiming entry records other units, another scheduled release or another model;
- expiring: the scheduled release falls within the warning window;
- missing: a state entry whose instance is stopped or not listed (that stack needs `pulumi refresh`).

Only what both sides report is compared: a release time Qianfan's answer does not carry, or a
state value that is an encrypted secret, is unknown and never counts as drift.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .records import Claim, LiveInstance

MANAGED = "managed"
UNMANAGED = "unmanaged"
CLAIMED_TWICE = "claimed-twice"
DRIFT = "drift"
EXPIRING = "expiring"
MISSING = "missing"
#: Verdicts that make the audit unclean (exit 1); `expiring` alone is a heads-up.
FINDINGS = frozenset({UNMANAGED, CLAIMED_TWICE, DRIFT})
_BEIJING = timezone(timedelta(hours=8))


@dataclass(frozen=True)
class InstanceFinding:
    live: LiveInstance
    owners: tuple[Claim, ...]
    verdicts: tuple[str, ...]
    details: tuple[str, ...]


@dataclass(frozen=True)
class MissingEntry:
    claim: Claim
    #: The status Qianfan lists (e.g. Stopped), or None when it does not list the instance at all.
    seen_status: str | None


@dataclass(frozen=True)
class Totals:
    tpm: int
    unmanaged_tpm: int


@dataclass(frozen=True)
class Audit:
    instances: tuple[InstanceFinding, ...]
    missing: tuple[MissingEntry, ...]
    totals: dict[str, Totals]
    notes: tuple[str, ...]

    @property
    def findings(self) -> int:
        return len(self.missing) + sum(1 for f in self.instances if FINDINGS.intersection(f.verdicts))

    @property
    def clean(self) -> bool:
        return self.findings == 0


def reconcile(
    listings: Mapping[str, Sequence[LiveInstance]],
    claims: Sequence[Claim],
    *,
    warn_hours: float,
    now: datetime,
) -> Audit:
    """Judge every instance `listings` holds (model -> Describe's items) against every claim."""
    notes: list[str] = []
    claims_by_id: dict[str, list[Claim]] = {}
    for claim in claims:
        if claim.instance_id is not None:
            claims_by_id.setdefault(claim.instance_id, []).append(claim)
    instances = _one_per_id(listings, claims_by_id, notes)

    findings: list[InstanceFinding] = []
    missing: list[MissingEntry] = []
    for live in instances.values():
        owners = tuple(sorted(claims_by_id.get(live.instance_id, ()), key=lambda c: (c.stack, c.resource, c.source)))
        if live.gone:
            missing.extend(MissingEntry(owner, live.status) for owner in owners)
        else:
            findings.append(_judge(live, owners, warn_hours, now))
    out_of_scope = 0
    for claim in claims:
        if claim.instance_id is None:
            missing.append(MissingEntry(claim, None))
        elif claim.instance_id not in instances:
            if claim.model is None or claim.model in listings:
                missing.append(MissingEntry(claim, None))
            else:
                out_of_scope += 1
    if out_of_scope:
        notes.append(
            f"{out_of_scope} state entr{'y' if out_of_scope == 1 else 'ies'} of models not audited: not checked"
        )
    unknown_units = sum(1 for f in findings if f.live.tpm is None)
    if unknown_units:
        notes.append(f"{unknown_units} instance(s) with a size Qianfan did not report: left out of the TPM totals")

    totals: dict[str, Totals] = {}
    for model in sorted(listings):
        held = [f for f in findings if f.live.model == model and f.live.tpm is not None]
        totals[model] = Totals(
            tpm=sum(f.live.tpm or 0 for f in held),
            unmanaged_tpm=sum(f.live.tpm or 0 for f in held if UNMANAGED in f.verdicts),
        )
    return Audit(
        instances=tuple(sorted(findings, key=lambda f: (f.live.model, f.live.instance_id))),
        missing=tuple(sorted(missing, key=lambda m: (m.claim.stack, m.claim.resource, m.claim.source))),
        totals=totals,
        notes=tuple(notes),
    )


def _one_per_id(
    listings: Mapping[str, Sequence[LiveInstance]], claims_by_id: Mapping[str, list[Claim]], notes: list[str]
) -> dict[str, LiveInstance]:
    """One record per instance id, even if Qianfan lists an id under several models (it should not).

    The model kept is the one a state records, else the one the item itself names, else the first
    listed: a quota is paid once, so it is counted once.
    """
    seen: dict[str, list[LiveInstance]] = {}
    for model in listings:
        for live in listings[model]:
            seen.setdefault(live.instance_id, []).append(live)
    chosen: dict[str, LiveInstance] = {}
    for instance_id, copies in seen.items():
        claimed = {c.model for c in claims_by_id.get(instance_id, ())}
        chosen[instance_id] = next(
            (c for c in copies if c.model in claimed),
            next((c for c in copies if c.reported_model == c.model), copies[0]),
        )
        models = list(dict.fromkeys(c.model for c in copies))
        if len(models) > 1:
            notes.append(
                f"Qianfan lists {instance_id} under {len(models)} models ({', '.join(models)}); "
                f"counted once, under {chosen[instance_id].model}"
            )
    return chosen


def _judge(live: LiveInstance, owners: tuple[Claim, ...], warn_hours: float, now: datetime) -> InstanceFinding:
    verdicts: list[str] = []
    details: list[str] = []
    if not owners:
        verdicts.append(UNMANAGED)
    elif len(owners) > 1:
        verdicts.append(CLAIMED_TWICE)
        details.append(f"{live.instance_id} claimed by {', '.join(o.owner for o in owners)}")
    drift = [line for owner in owners for line in _differences(live, owner)]
    if drift:
        verdicts.append(DRIFT)
        details.extend(drift)
    elif len(owners) == 1:
        verdicts.insert(0, MANAGED)
    release = _release_to_watch(live, owners)
    if release is not None:
        moment, origin = release
        hours = (moment - now).total_seconds() / 3600
        if hours <= warn_hours:
            verdicts.append(EXPIRING)
            details.append(f"{live.instance_id} is released at {moment.isoformat()} (in {hours:.1f} h{origin})")
    return InstanceFinding(live, owners, tuple(verdicts), tuple(details))


def _differences(live: LiveInstance, owner: Claim) -> list[str]:
    lines = []
    who = f"{live.instance_id}: {owner.owner} records"
    if owner.model is not None and owner.model != live.model:
        lines.append(f"{who} model {owner.model}, Qianfan lists it under {live.model}")
    if owner.units is not None and live.units is not None and owner.units != live.units:
        lines.append(f"{who} {owner.units} unit(s), Qianfan has {live.units}")
    if owner.release_known and live.release_known and owner.release_time != live.release_time:
        lines.append(
            f"{who} release {owner.release_time or 'none'}, Qianfan has {live.release_time or 'none scheduled'}"
        )
    return lines


def _release_to_watch(live: LiveInstance, owners: tuple[Claim, ...]) -> tuple[datetime, str] | None:
    """The scheduled release: Qianfan's, or when its answer has none at all, the state's."""
    if live.release_known:
        moment = _instant(live.release_time)
        return None if moment is None else (moment, "")
    for owner in owners:
        moment = _instant(owner.release_time) if owner.release_known else None
        if moment is not None:
            return moment, ", as the state records it; Qianfan does not report it"
    return None


def _instant(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=_BEIJING)
