"""The verdict rules on their own: boundaries, unknowns, and instances Qianfan lists oddly."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import yaml

from audit.reconcile import reconcile
from audit.records import Claim, LiveInstance
from audit.report import adopt_line, render_json, render_table, to_json
from tests.audit.records import NOW, claim, live

AT = "2030-01-01T18:00:00+08:00"  # NOW + 10 h


def judge(listed: list[LiveInstance], claims: list[Claim], warn_hours: float = 24) -> dict[str, list[str]]:
    listings: dict[str, list[LiveInstance]] = {}
    for item in listed:
        listings.setdefault(item.model, []).append(item)
    audit = reconcile(listings, claims, warn_hours=warn_hours, now=NOW)
    return {f.live.instance_id: list(f.verdicts) for f in audit.instances}


def test_expiring_is_inclusive_at_the_window_and_not_a_finding() -> None:
    at_edge = live("a", release_time=AT)
    assert judge([at_edge], [claim("a", release_time=AT)], warn_hours=10) == {"a": ["managed", "expiring"]}
    assert judge([at_edge], [claim("a", release_time=AT)], warn_hours=9.99) == {"a": ["managed"]}
    audit = reconcile({"ernie-speed-8k": [at_edge]}, [claim("a", release_time=AT)], warn_hours=24, now=NOW)
    assert audit.clean and audit.findings == 0
    past = live("p", release_time="2029-12-31T00:00:00+08:00")  # not yet shown as stopped
    assert judge([past], []) == {"p": ["unmanaged", "expiring"]}


def test_a_release_qianfan_does_not_report_is_unknown_not_drift() -> None:
    unknown = live("a", release_known=False)
    assert judge([unknown], [claim("a", release_time=AT)]) == {"a": ["managed", "expiring"]}  # the state's time
    assert judge([unknown], [claim("a", release_time=None)]) == {"a": ["managed"]}
    assert judge([live("a")], [claim("a", release_time=AT)]) == {"a": ["drift"]}  # reported: none scheduled
    assert judge([live("a", release_time=AT)], [claim("a", release_known=False)]) == {"a": ["managed", "expiring"]}


def test_drift_in_units_model_and_release_with_unknown_sizes_skipped() -> None:
    assert judge([live("a", units=3)], [claim("a", units=1)]) == {"a": ["drift"]}
    assert judge([live("a", units=None)], [claim("a", units=1)]) == {"a": ["managed"]}
    assert judge([live("a")], [claim("a", units=None)]) == {"a": ["managed"]}
    assert judge([live("a", model="ernie-lite-8k")], [claim("a")]) == {"a": ["drift"]}
    assert judge([live("a", units=2)], [claim("a", stack="x"), claim("a", stack="y", units=2)]) == {
        "a": ["claimed-twice", "drift"]
    }


def test_missing_gone_unknown_ids_and_models_not_audited() -> None:
    stopped = live("s", status="Stopped", gone=True)
    listings = {"ernie-speed-8k": [stopped, live("g", status="Stopped", gone=True)]}
    claims = [
        claim("s", resource="stopped"),
        claim("n", resource="not-listed"),
        claim(None, resource="no-id"),
        claim("u", resource="secret-model", model=None),
        claim("o", resource="other-model", model="ernie-lite-8k"),
    ]
    audit = reconcile(listings, claims, warn_hours=24, now=NOW)
    assert audit.instances == ()  # gone and unclaimed: not paid, not reported
    assert [(m.claim.resource, m.seen_status) for m in audit.missing] == [
        ("no-id", None),
        ("not-listed", None),
        ("secret-model", None),
        ("stopped", "Stopped"),
    ]
    assert audit.notes == ("1 state entry of models not audited: not checked",)
    assert audit.findings == 4
    assert to_json(audit)["missing"][0] == {
        "stack": "dev",
        "resource": "no-id",
        "instanceId": None,
        "model": "ernie-speed-8k",
    }


def test_an_id_listed_under_two_models_is_counted_once() -> None:
    under_speed = live("x", model="ernie-speed-8k", units=2)
    under_lite = live("x", model="ernie-lite-8k", units=2)
    audit = reconcile(
        {"ernie-speed-8k": [under_speed], "ernie-lite-8k": [under_lite]},
        [claim("x", model="ernie-lite-8k", units=2)],
        warn_hours=24,
        now=NOW,
    )
    [finding] = audit.instances
    assert (finding.live.model, finding.verdicts) == ("ernie-lite-8k", ("managed",))
    assert audit.notes == (
        "Qianfan lists x under 2 models (ernie-speed-8k, ernie-lite-8k); counted once, under ernie-lite-8k",
    )
    assert {m: (t.tpm, t.unmanaged_tpm) for m, t in audit.totals.items()} == {
        "ernie-lite-8k": (20_000, 0),
        "ernie-speed-8k": (0, 0),
    }
    named = replace(under_lite, reported_model="ernie-lite-8k")
    unclaimed = reconcile({"ernie-speed-8k": [under_speed], "ernie-lite-8k": [named]}, [], warn_hours=24, now=NOW)
    assert unclaimed.instances[0].live.model == "ernie-lite-8k"  # the item's own model field decides


def test_unknown_sizes_are_left_out_of_totals_and_said_so() -> None:
    audit = reconcile({"m": [live("a", model="m", units=None), live("b", model="m")]}, [], warn_hours=1, now=NOW)
    assert (audit.totals["m"].tpm, audit.totals["m"].unmanaged_tpm) == (10_000, 10_000)
    assert "1 instance(s) with a size Qianfan did not report: left out of the TPM totals" in audit.notes
    assert '"units": null' in render_json(audit)


def test_adopt_lines_are_valid_quota_entries() -> None:
    audit = reconcile(
        {
            "ernie-speed-8k": [
                live("tpm-Ab12Cd34", units=2, release_time=AT),
                live("44961088f5xxxxx79f5daf"),
                live("weird id: with/slash\n", release_known=False),
            ]
        },
        [],
        warn_hours=1,
        now=NOW,
    )
    [hexadecimal, normal, weird] = [adopt_line(f) for f in audit.instances]
    assert yaml.safe_load(normal) == [
        {
            "name": "tpm-Ab12Cd34",
            "model": "ernie-speed-8k",
            "purchaseCount": 2,
            "releaseTime": AT,
            "adoptInstanceId": "tpm-Ab12Cd34",
        }
    ]
    assert yaml.safe_load(hexadecimal)[0]["name"] == "44961088f5xxxxx79f5daf"
    entry = yaml.safe_load(weird)[0]
    assert entry["name"] == "adopted-weird-id--with-slash" and entry["adoptInstanceId"] == "weird id: with/slash\n"
    assert "Qianfan does not report its release: add releaseTime if one is scheduled" in weird


def test_time_spellings_and_garbage_release_times() -> None:
    naive_beijing = live("a", release_time="2030-01-01 18:00:00")
    assert judge([naive_beijing], [], warn_hours=10) == {"a": ["unmanaged", "expiring"]}
    garbage = live("b", release_time="soon")
    assert judge([garbage], [claim("b", release_time="soon")]) == {"b": ["managed"]}
    assert judge([garbage], [claim("b", release_time=AT)]) == {"b": ["drift"]}
    in_utc = datetime(2030, 1, 1, 10, tzinfo=UTC)
    assert judge([live("c", release_time=in_utc.isoformat())], [], warn_hours=10) == {"c": ["unmanaged", "expiring"]}


def test_the_table_keeps_hostile_names_on_one_line() -> None:
    audit = reconcile(
        {"m" * 5000: [live("tpm-\x1b[2J", model="m" * 5000)]},
        [claim("gone", resource="evil\x1b[31m\nname", model=None)],
        warn_hours=1,
        now=NOW,
    )
    text = render_table(audit, models=1, entries=1, stacks=1, warn_hours=1)
    assert all(line.isprintable() for line in text.splitlines())
    [row] = [line for line in text.splitlines() if line.startswith("dev ")]
    assert "evil\\x1b[31m\\nname" in row and "gone" in row
    [instance] = [line for line in text.splitlines() if line.startswith("tpm-\\x1b[2J ")]
    assert "m" * 61 + "..." in instance and "m" * 62 not in instance
