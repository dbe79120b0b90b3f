"""Printing an audit: a table for people, a fixed JSON document for machines.

The JSON carries exactly `instances`, `missing` and `totals`, and with a ledger each instance's
`ledger` and the document's `ledger` too (schema in docs/audit.md); everything else a person needs
(what drifted, when a quota expires, how to adopt an unmanaged one) is in the table's detail lines.
"""

from __future__ import annotations

import json
import re
from datetime import UTC
from typing import Any

from .reconcile import UNMANAGED, Audit, InstanceFinding, LedgerFacts, UncertainPurchase
from .records import LedgerClaim, LedgerPurchase, Who

#: A Pulumi resource name the quota list accepts (see providers/stack_config.py).
_QUOTA_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
#: Cells longer than this are cut: ids and names come from state files and answers, not from us.
_CELL = 64


def visible(text: str) -> str:
    """One line with every control character (newline, escape sequences) shown as an escape."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _cell(text: str, limit: int = _CELL) -> str:
    shown = visible(text)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _stamp(moment: Any) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _who(who: Who) -> dict[str, Any]:
    return {"project": who.project, "stack": who.stack, "resource": who.resource}


def _purchase_json(p: LedgerPurchase) -> dict[str, Any]:
    return {
        "purchaseId": p.id,
        **_who(p.who),
        "model": p.model,
        "units": p.units,
        "releaseTime": p.release_time,
        "state": p.state,
        "abandoned": p.abandoned,
        "sentAt": _stamp(p.sent_at),
        "deadline": _stamp(p.deadline),
        "host": p.host,
        "instanceId": p.instance_id,
        "requestId": p.request_id,
        "detail": p.detail,
    }


def _claim_json(claim: LedgerClaim) -> dict[str, Any]:
    return {
        **_who(claim.who),
        "purchaseId": claim.purchase_id,
        "claimedAt": _stamp(claim.claimed_at),
        "letGoAt": _stamp(claim.let_go_at),
        "letGoBy": claim.let_go_by if claim.let_go_at else None,
    }


def _facts_json(facts: LedgerFacts) -> dict[str, Any]:
    return {
        "claim": None if facts.claim is None else _claim_json(facts.claim),
        "boughtBy": None if facts.bought_by is None else _purchase_json(facts.bought_by),
        "mayBeFrom": [p.id for p in facts.may_be],
        "journal": [
            {
                "action": e.action,
                **_who(e.who),
                "at": _stamp(e.at),
                "host": e.host,
                "requestId": e.request_id,
                "detail": e.detail,
            }
            for e in facts.events
        ],
    }


def _instance_json(f: InstanceFinding) -> dict[str, Any]:
    item: dict[str, Any] = {
        "instanceId": f.live.instance_id,
        "model": f.live.model,
        "units": f.live.units,
        "tpm": f.live.tpm,
        "rpm": f.live.rpm,
        "status": f.live.status,
        "releaseTime": f.live.release_time if f.live.release_known else None,
        "owners": [{"stack": o.stack, "resource": o.resource} for o in f.owners],
        "verdicts": list(f.verdicts),
    }
    if f.ledger is not None:
        item["ledger"] = _facts_json(f.ledger)
    return item


def to_json(audit: Audit) -> dict[str, Any]:
    document = _base_json(audit)
    if audit.ledger is not None:
        document["ledger"] = {
            "location": audit.ledger,
            "uncertain": [
                {
                    **_purchase_json(u.purchase),
                    "candidates": list(u.candidates),
                    "followedUp": None
                    if u.followed_up is None
                    else {"instanceId": u.followed_up.instance_id, "at": _stamp(u.followed_up.claimed_at)},
                }
                for u in audit.uncertain
            ],
            "inFlight": [_purchase_json(p) for p in audit.in_flight],
        }
    return document


def _base_json(audit: Audit) -> dict[str, Any]:
    return {
        "instances": [_instance_json(f) for f in audit.instances],
        "missing": [
            {
                "stack": m.claim.stack,
                "resource": m.claim.resource,
                "instanceId": m.claim.instance_id,
                "model": m.claim.model,
            }
            for m in audit.missing
        ],
        "totals": {model: {"tpm": t.tpm, "unmanagedTpm": t.unmanaged_tpm} for model, t in audit.totals.items()},
    }


def render_json(audit: Audit) -> str:
    return json.dumps(to_json(audit), indent=2, sort_keys=False)


def render_table(audit: Audit, *, models: int, entries: int, stacks: int, warn_hours: float) -> str:
    lines = [
        f"Qianfan TPM audit: {len(audit.instances)} live instance(s) in {models} model(s); "
        f"{entries} state entr{'y' if entries == 1 else 'ies'} in {stacks} stack(s)",
        "",
    ]
    rows = [
        [
            _cell(f.live.instance_id),
            _cell(f.live.model),
            _or_unknown(f.live.units),
            _or_unknown(f.live.tpm, thousands=True),
            _cell(f.live.status),
            _cell(_release(f)),
            _cell(", ".join(o.owner + (" (pending delete)" if o.pending_delete else "") for o in f.owners) or "-", 160),
            *([_cell(_ledger_cell(f.ledger), 100)] if audit.ledger is not None else []),
            ", ".join(f.verdicts),
        ]
        for f in audit.instances
    ]
    header = ["instance", "model", "units", "TPM", "status", "release", "owner stack/resource", "verdicts"]
    if audit.ledger is not None:
        header.insert(-1, "ledger: held by")
    lines += _grid(header, rows) if rows else ["No live TPM instance in the audited models."]
    if audit.missing:
        lines += ["", "Missing: in a state, but not live at Qianfan (run `pulumi refresh` on that stack):"]
        lines += _grid(
            ["stack", "resource", "instance", "model", "Qianfan", "state file"],
            [
                [
                    _cell(m.claim.stack),
                    _cell(m.claim.resource) + (" (pending delete)" if m.claim.pending_delete else ""),
                    _cell(m.claim.instance_id or "(no id recorded)"),
                    _cell(m.claim.model or "?"),
                    _cell(m.seen_status or "not listed"),
                    visible(m.claim.source),
                ]
                for m in audit.missing
            ],
        )
    if audit.uncertain:
        lines += ["", f"Uncertain purchases, recorded in the ledger {audit.ledger} (what they bought is not known):"]
        lines += _grid(
            ["purchase", "state", "stack/resource", "model", "units", "release", "sent (UTC)", "host", "what is known"],
            [_uncertain_row(u) for u in audit.uncertain],
        )
        lines += [
            "Each is a finding until followed up: adopt the instance it bought on the resource named (adoptInstanceId,",
            "the adoption lines below), or run that resource's `pulumi up` again; release in the console what nobody",
            "should hold. The record itself stays, as the journal of what happened.",
        ]
    lines += ["", "Totals per model (live instances):"]
    held = [[_cell(model), f"{t.tpm:,}", f"{t.unmanaged_tpm:,}"] for model, t in audit.totals.items() if t.tpm]
    total = [
        "all models",
        f"{sum(t.tpm for t in audit.totals.values()):,}",
        f"{sum(t.unmanaged_tpm for t in audit.totals.values()):,}",
    ]
    lines += _grid(["model", "TPM held", "TPM unmanaged"], [*held, total])
    details = [line for f in audit.instances for line in f.details]
    if details:
        lines += ["", "Details:"] + [f"  {visible(line)}" for line in details]
    unmanaged = [f for f in audit.instances if UNMANAGED in f.verdicts]
    if unmanaged:
        lines += [
            "",
            "To bring an unmanaged instance under a stack, add its line to that stack's qianfan-tpm:quotas",
            "list (stacks/Pulumi.<stack>.yaml) and run `pulumi up`; nothing is bought:",
        ]
        lines += [f"    {visible(adopt_line(f))}" for f in unmanaged]
    if audit.notes:
        lines += ["", "Notes:"] + [f"  {visible(note)}" for note in audit.notes]
    verdict = (
        "clean: every live instance has exactly one owner and every state entry is live as recorded"
        if audit.clean
        else f"{audit.findings} finding(s)"
    )
    lines += ["", f"Result: {verdict} (expiring = released within {warn_hours:g} h)."]
    return "\n".join(lines)


def _ledger_cell(facts: LedgerFacts | None) -> str:
    """Who the ledger says holds the instance, and how it got it."""
    if facts is None:
        return "-"
    claim = facts.claim
    if claim is not None:
        how = "adopted" if claim.purchase_id is None else f"bought, #{claim.purchase_id}"
        if facts.bought_by is not None and claim.purchase_id == facts.bought_by.id:
            how = f"{facts.bought_by.state}, #{claim.purchase_id}"
        if claim.held:
            return f"{claim.who.label} ({how})"
        return f"nobody (let go of {claim.who.label})"
    if facts.may_be:
        return "maybe " + ", ".join(f"#{p.id} of {p.who.label}" for p in facts.may_be)
    return "-"


def _uncertain_row(uncertain: UncertainPurchase) -> list[str]:
    p = uncertain.purchase
    if p.state == "orphaned":
        known = f"bought {uncertain.candidates[0]}, which no state holds"
    elif uncertain.candidates:
        known = "may have bought " + ", ".join(uncertain.candidates)
    else:
        known = "no live instance of its spec that nobody holds"
    if uncertain.followed_up is not None:
        later = uncertain.followed_up
        known += f"; followed up: {later.who.resource} got {later.instance_id} at {_stamp(later.claimed_at)}"
    return [
        f"#{p.id}",
        "abandoned" if p.abandoned else p.state,
        _cell(p.who.label),
        _cell(p.model),
        str(p.units),
        _cell(p.release_time or "none"),
        _stamp(p.sent_at) or "?",
        _cell(p.host),
        _cell(known, 160),
    ]


def _adopt_as(finding: InstanceFinding) -> Who | None:
    """The resource the ledger says should adopt it: its holder, or the one uncertain purchase's."""
    facts = finding.ledger
    if facts is None:
        return None
    if facts.claim is not None and facts.claim.held:
        return facts.claim.who
    owners = {p.who for p in facts.may_be}
    return owners.pop() if len(owners) == 1 else None


def adopt_line(finding: InstanceFinding) -> str:
    """A quota-list entry (YAML flow mapping) that adopts the instance as it is: same size, same release;
    named as the resource the ledger says it is for, when it says."""
    live = finding.live
    adopter = _adopt_as(finding)
    wanted = adopter.resource if adopter is not None and adopter.resource else live.instance_id
    name = wanted if _QUOTA_NAME.match(wanted) else _safe_name(wanted)
    fields = [
        f"name: {json.dumps(name)}",
        f"model: {json.dumps(live.model)}",
        f"purchaseCount: {_or_unknown(live.units)}",
    ]
    if live.release_known and live.release_time:
        fields.append(f'releaseTime: "{live.release_time}"')
    fields.append(f"adoptInstanceId: {json.dumps(live.instance_id)}")
    line = "- {" + ", ".join(fields) + "}"
    if not live.release_known:
        line += "  # Qianfan does not report its release: add releaseTime if one is scheduled, or adoption cancels it"
    elif adopter is not None and adopter.stack:
        line += f"  # in stack {adopter.stack}, as the ledger says"
    return line


def _safe_name(instance_id: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", instance_id).strip("-._")
    return ("adopted-" + cleaned)[:63].rstrip("-._") or "adopted"


def _release(finding: InstanceFinding) -> str:
    if not finding.live.release_known:
        return "not reported"
    return finding.live.release_time or "none"


def _or_unknown(value: int | None, *, thousands: bool = False) -> str:
    if value is None:
        return "?"
    return f"{value:,}" if thousands else str(value)


def _grid(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def render(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [render(header), render(["-" * w for w in widths]), *(render(row) for row in rows)]
