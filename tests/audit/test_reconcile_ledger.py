"""The ledger's verdict rules on their own: who holds what beside the states, uncertain purchases,
what may be whose, and when an uncertain purchase stops being a finding."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

from audit.reconcile import Audit, reconcile
from audit.records import Claim, Journal, LedgerClaim, LedgerPurchase, LiveInstance, Who
from audit.report import render_table, to_json
from tests.audit.records import NOW, claim, live

SENT = NOW - timedelta(hours=1)
DEV = Who("qianfan-tpm", "dev", "q")
PROD = Who("qianfan-tpm", "prod", "q")


def purchase(id_: int, state: str, who: Who = DEV, **changes: object) -> LedgerPurchase:
    base = LedgerPurchase(
        id=id_,
        model="ernie-speed-8k",
        units=1,
        release_time=None,
        who=who,
        host="machine/123/abcd",
        sent_at=SENT,
        deadline=SENT + timedelta(seconds=30),
        state=state,
        abandoned=False,
        instance_id=None,
        request_id=None,
        detail=None,
        earliest_start=SENT.timestamp() - 2,
        latest_start=SENT.timestamp() + 30 + 60,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def held(id_: str, who: Who = DEV, purchase_id: int | None = 1, **changes: object) -> LedgerClaim:
    base = LedgerClaim(
        instance_id=id_,
        model="ernie-speed-8k",
        purchase_id=purchase_id,
        who=who,
        claimed_at=SENT + timedelta(seconds=1),
        let_go_at=None,
        let_go_by=None,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def journal(claims: Sequence[LedgerClaim] = (), purchases: Sequence[LedgerPurchase] = ()) -> Journal:
    return Journal("/ledger.sqlite3", tuple(claims), tuple(purchases), (), other_accounts=0)


def audit_of(listed: list[LiveInstance], states: list[Claim], book: Journal) -> Audit:
    listings: dict[str, list[LiveInstance]] = {"ernie-speed-8k": []}
    for item in listed:
        listings.setdefault(item.model, []).append(item)
    return reconcile(listings, states, warn_hours=24, now=NOW, journal=book)


def verdicts(audit: Audit) -> dict[str, list[str]]:
    return {f.live.instance_id: list(f.verdicts) for f in audit.instances}


def test_the_ledgers_holder_beside_the_states_owners() -> None:
    book = journal(
        claims=[
            held("agree"),
            held("other", who=PROD),
            held("lost", who=PROD),
            held("let-go", let_go_at=SENT + timedelta(minutes=5), let_go_by="forgotten"),
            held("free", let_go_at=SENT + timedelta(minutes=5), let_go_by="ReleaseTPMResource"),
            held("elsewhere", who=Who("billing", "dev", "q")),
        ]
    )
    listed = [live(i) for i in ("agree", "other", "lost", "let-go", "free", "elsewhere", "unrecorded")]
    states = [claim("agree"), claim("other"), claim("let-go"), claim("elsewhere"), claim("unrecorded")]
    audit = audit_of(listed, states, book)
    assert verdicts(audit) == {
        "agree": ["managed"],
        "other": ["managed", "ledger-mismatch"],  # an adoption that did not share the ledger
        "lost": ["unmanaged", "ledger-mismatch"],  # bought by a stack whose state lost it
        "let-go": ["managed", "ledger-mismatch"],  # forgotten while a state still holds it
        "free": ["unmanaged"],  # let go, and nobody's: anyone may adopt it, no mismatch
        "elsewhere": ["managed", "ledger-mismatch"],  # another project's resource of the same name
        "unrecorded": ["managed"],  # its stack does not share the ledger: a note, no finding
    }
    assert audit.findings == 5
    details = [line for f in audit.instances for line in f.details]
    assert "other: the ledger says prod/q holds it (bought by purchase #1), the states say dev/q" in " ".join(details)
    assert any(
        line.startswith("let-go: the ledger let go of dev/q's claim (forgotten 2029-12-31T23:05:00Z)")
        for line in details
    )
    assert any(line.startswith("elsewhere: the ledger says dev/q (project billing) holds it") for line in details)
    assert any("1 instance(s) a state holds have no claim in the ledger" in note for note in audit.notes)


def test_an_unknown_purchase_names_the_live_instances_it_may_have_bought() -> None:
    start = SENT.timestamp()
    book = journal(
        claims=[held("taken", who=PROD, purchase_id=2)],
        purchases=[purchase(1, "unknown"), purchase(2, "bought", PROD, instance_id="taken")],
    )
    listed = [
        live("maybe", start_time=start + 5),
        live("unreported-start"),
        live("taken", start_time=start + 5),  # held by another purchase: explained
        live("before", start_time=start - 10),  # started before it was sent
        live("long-after", start_time=start + 30 + 60 + 1),  # started after it could have committed
        live("bigger", units=2, start_time=start + 5),
        live("scheduled", release_time="2031-01-01T00:00:00+08:00", start_time=start + 5),
        live("other-model", model="ernie-lite-8k", start_time=start + 5),
    ]
    audit = audit_of(listed, [], book)
    [uncertain] = audit.uncertain
    assert uncertain.candidates == ("maybe", "unreported-start")
    may_be = {f.live.instance_id: [p.id for p in f.ledger.may_be] for f in audit.instances if f.ledger}
    assert may_be["maybe"] == [1] and may_be["before"] == [] and may_be["taken"] == []
    assert audit.findings == len(listed) + 1  # every instance is unmanaged here, and the purchase is a finding


def test_open_purchases_are_in_flight_until_their_deadline_then_abandoned() -> None:
    flying = purchase(1, "sending")
    abandoned = purchase(2, "uncertain", abandoned=True)
    elsewhere = purchase(3, "unknown", model="ernie-4.0-8k")
    audit = audit_of([], [], journal(purchases=[flying, abandoned, elsewhere, purchase(4, "not bought")]))
    assert audit.in_flight == (flying,)
    assert [u.purchase.id for u in audit.uncertain] == [2]
    assert audit.findings == 1
    assert any("1 purchase(s) in flight" in note for note in audit.notes)
    assert any("1 uncertain or in-flight purchase(s) of models not audited" in note for note in audit.notes)


def test_an_orphaned_purchase_is_a_finding_while_no_state_holds_its_instance() -> None:
    orphan = purchase(1, "orphaned", instance_id="found")
    gone = purchase(2, "orphaned", instance_id="released-since")
    book = journal(claims=[held("found", purchase_id=1)], purchases=[orphan, gone])
    unheld = audit_of([live("found")], [], book)
    assert [(u.purchase.id, u.candidates) for u in unheld.uncertain] == [(1, ("found",))]
    adopted = audit_of([live("found")], [claim("found")], book)
    assert adopted.uncertain == () and adopted.clean


def test_an_uncertain_purchase_followed_up_by_its_resource_is_listed_but_no_finding() -> None:
    unknown = purchase(1, "unknown")
    later = held("adopted", purchase_id=None, claimed_at=SENT + timedelta(minutes=10))
    earlier = held("older", purchase_id=None, claimed_at=SENT - timedelta(minutes=10))
    followed = audit_of([live("adopted")], [claim("adopted")], journal([later], [unknown]))
    [uncertain] = followed.uncertain
    assert uncertain.followed_up == later and followed.clean
    other = audit_of([live("older")], [claim("older")], journal([earlier], [unknown]))
    assert other.uncertain[0].followed_up is None and other.findings == 1
    someone_else = replace(later, who=PROD)
    assert audit_of([live("adopted")], [], journal([someone_else], [unknown])).uncertain[0].followed_up is None


def test_json_and_table_carry_the_ledger_only_when_it_was_read() -> None:
    without = reconcile({"ernie-speed-8k": [live("a")]}, [claim("a")], warn_hours=24, now=NOW)
    assert set(to_json(without)) == {"instances", "missing", "totals"}
    assert "ledger" not in to_json(without)["instances"][0]
    assert "ledger: held by" not in render_table(without, models=1, entries=1, stacks=1, warn_hours=24)
    book = journal(claims=[held("a")], purchases=[purchase(1, "bought", instance_id="a"), purchase(2, "unknown", PROD)])
    audit = audit_of([live("a")], [claim("a")], book)
    document = to_json(audit)
    assert document["ledger"]["location"] == "/ledger.sqlite3"
    [uncertain] = document["ledger"]["uncertain"]
    assert uncertain["purchaseId"] == 2 and uncertain["sentAt"] == "2029-12-31T23:00:00Z"
    assert uncertain["candidates"] == [] and uncertain["followedUp"] is None
    assert document["instances"][0]["ledger"]["claim"]["claimedAt"] == "2029-12-31T23:00:01Z"
    table = render_table(audit, models=1, entries=1, stacks=1, warn_hours=24)
    assert "Uncertain purchases, recorded in the ledger /ledger.sqlite3 (what they bought is not known):" in table
    assert "no live instance of its spec that nobody holds" in table
    assert "dev/q (bought, #1)" in table
