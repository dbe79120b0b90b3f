"""Printing an audit: a table for people, a fixed JSON document for machines.

The JSON carries exactly `instances`, `missing` and `totals` (schema in docs/audit.md); everything
else a person needs (what drifted, when a quota expires, how to adopt an unmanaged one) is in
the table's detail lines.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .reconcile import UNMANAGED, Audit, InstanceFinding

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


def to_json(audit: Audit) -> dict[str, Any]:
    return {
        "instances": [
            {
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
            for f in audit.instances
        ],
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
            ", ".join(f.verdicts),
        ]
        for f in audit.instances
    ]
    header = ["instance", "model", "units", "TPM", "status", "release", "owner stack/resource", "verdicts"]
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


def adopt_line(finding: InstanceFinding) -> str:
    """A quota-list entry (YAML flow mapping) that adopts the instance as it is: same size, same release."""
    live = finding.live
    name = live.instance_id if _QUOTA_NAME.match(live.instance_id) else _safe_name(live.instance_id)
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
