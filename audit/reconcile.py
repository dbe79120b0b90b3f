"""The verdicts: each live instance and each state entry, judged against the other side.

- managed: live, claimed by exactly one state entry, which records it as Qianfan has it;
- unmanaged: live and claimed by no state entry: paid by the hour and nobody's;
- claimed-twice: claimed by two or more entries (two stacks, or twice in one);
- drift: a claiming entry records other units, another scheduled release or another model;
- expiring: the scheduled release falls within the warning window;
- missing: a state entry whose instance is stopped or not listed (that stack needs `pulumi refresh`);
- ledger-mismatch (with a ledger): the resource the purchase ledger says holds the instance is not
  the one the states say (a stack's state lost it, or an adoption that did not share the ledger took
  it), or the ledger let go of a claim a state still holds.

With a ledger, every purchase whose outcome stayed uncertain is listed, and is a finding until it
is followed up: `unknown` (its recovery could not tell) and abandoned (sent, never answered nor
recovered, past its deadline: its host died), with the live instances it may have bought, until its
resource gets an instance since (its create run again: adopted or bought); `orphaned` (abandoned,
and a recovery found its instance) while that instance is live and no state holds it.

Only what both sides report is compared: a release time Qianfan's answer does not carry, or a
state value that is an encrypted secret, is unknown and never counts as drift.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone

from .records import Claim, Journal, LedgerClaim, LedgerEvent, LedgerPurchase, LiveInstance

MANAGED = "managed"
UNMANAGED = "unmanaged"
CLAIMED_TWICE = "claimed-twice"
DRIFT = "drift"
EXPIRING = "expiring"
MISSING = "missing"
LEDGER_MISMATCH = "ledger-mismatch"
#: Verdicts that make the audit unclean (exit 1); `expiring` alone is a heads-up.
FINDINGS = frozenset({UNMANAGED, CLAIMED_TWICE, DRIFT, LEDGER_MISMATCH})
#: Ledger states of purchases that ended uncertain for good (abandoned open ones are found by deadline).
UNKNOWN, ORPHANED = "unknown", "orphaned"
_OPEN = frozenset({"sending", "uncertain"})
#: Ledger states of purchases that bought the instance they name.
_BOUGHT = frozenset({"bought", "recovered", ORPHANED})
_BEIJING = timezone(timedelta(hours=8))


@dataclass(frozen=True)
class LedgerFacts:
    """What the purchase ledger says of one live instance."""

    #: Who holds it (or last held it: see `let_go_at`); None: no purchase or adoption recorded it.
    claim: LedgerClaim | None
    #: The purchase that bought it, when one recorded its instance.
    bought_by: LedgerPurchase | None
    #: Uncertain purchases that may have bought it.
    may_be: tuple[LedgerPurchase, ...]
    #: Its journal: adoptions, resizes, release changes, releases, forgotten claims.
    events: tuple[LedgerEvent, ...]


@dataclass(frozen=True)
class InstanceFinding:
    live: LiveInstance
    owners: tuple[Claim, ...]
    verdicts: tuple[str, ...]
    details: tuple[str, ...]
    #: None when the audit read no ledger.
    ledger: LedgerFacts | None = None


@dataclass(frozen=True)
class UncertainPurchase:
    """A purchase whose outcome stayed uncertain, and the live instances it may have bought (for an
    orphaned one, the instance its recovery found)."""

    purchase: LedgerPurchase
    candidates: tuple[str, ...]
    #: For an unknown or abandoned one: the instance its resource got since (bought or adopted), its
    #: create having been run again. Its record stays uncertain, but it is no finding any more: what it
    #: may have bought, if no state holds it, is `unmanaged` (and named as maybe its).
    followed_up: LedgerClaim | None = None


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
    #: The ledger read (as messages name it), or None.
    ledger: str | None = None
    uncertain: tuple[UncertainPurchase, ...] = ()
    #: Purchases sent and not yet answered, within their deadline.
    in_flight: tuple[LedgerPurchase, ...] = ()

    @property
    def findings(self) -> int:
        instances = sum(1 for f in self.instances if FINDINGS.intersection(f.verdicts))
        return len(self.missing) + instances + sum(1 for u in self.uncertain if u.followed_up is None)

    @property
    def clean(self) -> bool:
        return self.findings == 0


def reconcile(
    listings: Mapping[str, Sequence[LiveInstance]],
    claims: Sequence[Claim],
    *,
    warn_hours: float,
    now: datetime,
    journal: Journal | None = None,
) -> Audit:
    """Judge every instance `listings` holds (model -> Describe's items) against every claim, and,
    with a `journal`, against what the purchase ledger recorded."""
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
    audit = Audit(
        instances=tuple(sorted(findings, key=lambda f: (f.live.model, f.live.instance_id))),
        missing=tuple(sorted(missing, key=lambda m: (m.claim.stack, m.claim.resource, m.claim.source))),
        totals=totals,
        notes=tuple(notes),
    )
    return audit if journal is None else _with_ledger(audit, journal, set(listings))


def _with_ledger(audit: Audit, journal: Journal, audited: set[str]) -> Audit:
    """Each live instance beside what the ledger says of it; the purchases whose outcome stayed uncertain."""
    claims = {c.instance_id: c for c in journal.claims}
    purchases = {p.id: p for p in journal.purchases}
    bought = {p.instance_id: p for p in journal.purchases if p.instance_id and p.state in _BOUGHT}
    events: dict[str, list[LedgerEvent]] = {}
    for event in journal.events:
        events.setdefault(event.instance_id, []).append(event)
    owned = {f.live.instance_id for f in audit.instances if f.owners}
    unheld = [f.live for f in audit.instances if not (f.live.instance_id in claims and claims[f.live.instance_id].held)]
    live = {f.live.instance_id for f in audit.instances}

    uncertain: list[UncertainPurchase] = []
    in_flight: list[LedgerPurchase] = []
    may_be: dict[str, list[LedgerPurchase]] = {}
    not_audited = 0
    for purchase in journal.purchases:
        open_ = purchase.state in _OPEN
        if not (purchase.state in (UNKNOWN, ORPHANED) or open_):
            continue
        if purchase.model not in audited:
            not_audited += 1
        elif open_ and not purchase.abandoned:
            in_flight.append(purchase)
        elif purchase.state == ORPHANED:
            if purchase.instance_id in live and purchase.instance_id not in owned:
                uncertain.append(UncertainPurchase(purchase, (purchase.instance_id or "",)))
        else:
            candidates = tuple(i.instance_id for i in unheld if _could_be(i, purchase))
            for instance_id in candidates:
                may_be.setdefault(instance_id, []).append(purchase)
            later = [
                c
                for c in journal.claims
                if c.who == purchase.who
                and c.who.resource
                and c.model == purchase.model
                and c.claimed_at > purchase.sent_at
            ]
            uncertain.append(
                UncertainPurchase(purchase, candidates, min(later, key=lambda c: c.claimed_at, default=None))
            )

    findings = []
    unrecorded = 0
    for finding in audit.instances:
        instance_id = finding.live.instance_id
        claim = claims.get(instance_id)
        facts = LedgerFacts(
            claim=claim,
            bought_by=bought.get(instance_id),
            may_be=tuple(may_be.get(instance_id, ())),
            events=tuple(events.get(instance_id, ())),
        )
        if claim is None and finding.owners:
            unrecorded += 1
        verdicts, details = list(finding.verdicts), list(finding.details)
        for line in _ledger_details(finding, facts, purchases):
            if line.mismatch and LEDGER_MISMATCH not in verdicts:
                verdicts.append(LEDGER_MISMATCH)
            details.append(line.text)
        findings.append(replace(finding, verdicts=tuple(verdicts), details=tuple(details), ledger=facts))

    notes = list(audit.notes)
    if unrecorded:
        notes.append(
            f"{unrecorded} instance(s) a state holds have no claim in the ledger: their stacks "
            "do not share it (qianfan:ledger off, or another ledger), or they were bought or adopted before it existed"
        )
    if in_flight:
        latest = max(p.deadline for p in in_flight)
        notes.append(
            f"{len(in_flight)} purchase(s) in flight (sent, not answered yet): the audit may show their instances "
            f"as unmanaged; run it again after {_stamp(latest)}"
        )
    if not_audited:
        notes.append(f"{not_audited} uncertain or in-flight purchase(s) of models not audited: not checked")
    if journal.other_accounts:
        mine = bool(journal.claims or journal.purchases)
        notes.append(
            f"the ledger also holds records of {journal.other_accounts} other account(s), not shown"
            if mine
            else f"the ledger holds nothing for this account but records of {journal.other_accounts} other "
            "account(s): audit with the endpoint (for the sandbox, the same database) and key pair the stacks use"
        )
    return replace(
        audit,
        instances=tuple(findings),
        notes=tuple(notes),
        ledger=journal.location,
        uncertain=tuple(uncertain),
        in_flight=tuple(in_flight),
    )


@dataclass(frozen=True)
class _Line:
    text: str
    mismatch: bool


def _ledger_details(
    finding: InstanceFinding, facts: LedgerFacts, purchases: Mapping[int, LedgerPurchase]
) -> list[_Line]:
    instance_id = finding.live.instance_id
    lines = []
    claim = facts.claim
    owners = ", ".join(o.owner for o in finding.owners)
    if claim is not None:
        who = claim.who.label
        how = _how(claim, purchases)
        if claim.held and not finding.owners:
            lines.append(
                _Line(
                    f"{instance_id}: the ledger says {who} holds it ({how}), but no state audited does. If that "
                    f"stack lost it (a lost state, `pulumi state delete`), adopt it there as "
                    f"{claim.who.resource or 'that resource'} (the ledger lets it take it back), or let go of the "
                    f"claim with --forget-claim {instance_id} and adopt it in any stack",
                    mismatch=True,
                )
            )
        elif claim.held and not any(claim.who.holds(o) for o in finding.owners):
            lines.append(
                _Line(
                    f"{instance_id}: the ledger says {who} holds it ({how}), the states say {owners}: an adoption "
                    f"that did not share this ledger took it, or {who}'s entry was lost; keep one owner, and if it "
                    f"is not {who}, let go of the ledger's claim with --forget-claim {instance_id}",
                    mismatch=True,
                )
            )
        elif not claim.held and finding.owners:
            lines.append(
                _Line(
                    f"{instance_id}: the ledger let go of {who}'s claim ({_let_go(claim)}), yet {owners} "
                    "holds it: another stack sharing the ledger could adopt it too",
                    mismatch=True,
                )
            )
        elif not claim.held:
            lines.append(
                _Line(
                    f"{instance_id}: {how[0].upper()}{how[1:]} for {who}; the ledger let go of its claim "
                    f"({_let_go(claim)}): any stack may adopt it",
                    mismatch=False,
                )
            )
    for purchase in facts.may_be:
        lines.append(
            _Line(
                f"{instance_id} may be what purchase #{purchase.id} of {purchase.who.label} bought "
                f"({_uncertainty(purchase)}, sent {_stamp(purchase.sent_at)} by {purchase.host})",
                mismatch=False,
            )
        )
    return lines


def _how(claim: LedgerClaim, purchases: Mapping[int, LedgerPurchase]) -> str:
    if claim.purchase_id is None:
        return f"adopted {_stamp(claim.claimed_at)}"
    purchase = purchases.get(claim.purchase_id)
    sent = f", sent {_stamp(purchase.sent_at)}" if purchase is not None else ""
    state = purchase.state if purchase is not None else "bought"
    return f"{state} by purchase #{claim.purchase_id}{sent}"


def _let_go(claim: LedgerClaim) -> str:
    by = {"ReleaseTPMResource": "released", "forgotten": "forgotten"}.get(claim.let_go_by or "", "let go")
    return f"{by} {_stamp(claim.let_go_at)}" if claim.let_go_at else by


def _uncertainty(purchase: LedgerPurchase) -> str:
    """How the audit names an uncertain purchase's state."""
    if purchase.state in _OPEN:
        return "abandoned: its host stopped before the answer came"
    if purchase.state == ORPHANED:
        return "orphaned: its host stopped; a later recovery found this instance"
    return "unknown: its recovery could not tell"


def _could_be(live: LiveInstance, purchase: LedgerPurchase) -> bool:
    """Could this live instance be what the purchase bought? What is not known does not exclude it."""
    if live.model != purchase.model or (live.units is not None and live.units != purchase.units):
        return False
    if live.release_known and _instant(live.release_time) != _instant(purchase.release_time):
        return False
    if live.start_time is None:
        return True
    if purchase.earliest_start is not None and live.start_time < purchase.earliest_start:
        return False
    return purchase.latest_start is None or live.start_time <= purchase.latest_start


def _stamp(moment: datetime | None) -> str:
    return "?" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
