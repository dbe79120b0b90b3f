"""The ledger side: what the provider hosts sharing a purchase ledger recorded (`providers/ledger.py`).

The audit's second door to the provider, beside `account`: it opens the ledger the stacks share
only if it exists (never creating, initialising or migrating one) and read-only — SQLite with
`mode=ro`, PostgreSQL in a read-only session the server enforces. `forget_claim` is the one
exception, the audit's only write, to the ledger alone: it lets go of a claim so another resource
may adopt the instance.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from providers.ledger import (
    FORGOTTEN,
    ClaimRecord,
    JournalEvent,
    JournalView,
    Ledger,
    LedgerError,
    Owner,
    existing_ledger,
)
from providers.purchase import LATE_COMMIT_SECONDS, START_TIME_MARGIN_SECONDS
from providers.settings import Settings

from .records import Journal, LedgerClaim, LedgerEvent, LedgerPurchase, Who

__all__ = ["FORGOTTEN", "LedgerError", "Opened", "open_ledger"]

#: Why a claim was forgotten, as the journal records it.
FORGET_REASON = "let go with python -m audit --forget-claim: its holder's state is gone"
#: The journal's action that releases an instance (and lets go of its claim).
RELEASE = "ReleaseTPMResource"


def _host() -> str:
    return f"audit/{socket.gethostname()}/{os.getpid()}"


def _when(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _who(owner: Owner) -> Who:
    return Who(owner.project, owner.stack, owner.resource)


@dataclass
class Opened:
    """An existing ledger, opened for this audit's account (the stacks' endpoint and key pair)."""

    ledger: Ledger

    @property
    def location(self) -> str:
        return self.ledger.name.removeprefix("ledger ")

    def read(self) -> Journal:
        return to_journal(self.location, self.ledger.view())

    def forget_claim(self, instance_id: str) -> LedgerClaim | None:
        """The claim as it was before (None: no claim of it); already let go: left as it is."""
        before = self.ledger.forget_claim(instance_id, FORGET_REASON)
        if before is None:
            return None
        return _claim(before, _last_let_go(self.ledger.events()))

    def close(self) -> None:
        self.ledger.close()


def open_ledger(settings: Settings, *, writable: bool = False) -> Opened:
    """The ledger `settings.ledger` names, opened now, so a missing or foreign one is refused before
    anything else is done (LedgerError: one line naming it, never its password)."""
    ledger = existing_ledger(settings, _host(), writable=writable)
    ledger.backend  # noqa: B018 - opened now: refused before Qianfan is listed, not after
    return Opened(ledger)


def to_journal(location: str, view: JournalView) -> Journal:
    purchases = tuple(
        LedgerPurchase(
            id=entry.record.id,
            model=entry.record.model,
            units=entry.record.units,
            release_time=entry.record.release_time,
            who=_who(entry.record.owner),
            host=entry.record.host,
            sent_at=_when(entry.record.sent_at),
            deadline=_when(entry.record.deadline),
            state=entry.record.state.value,
            abandoned=entry.record.abandoned(view.now),
            instance_id=entry.record.instance_id,
            request_id=entry.request_id,
            detail=entry.record.detail,
            earliest_start=None
            if entry.record.server_sent is None
            else entry.record.server_sent - START_TIME_MARGIN_SECONDS,
            latest_start=None if entry.record.server_ended is None else entry.record.server_ended + LATE_COMMIT_SECONDS,
        )
        for entry in view.purchases
    )
    let_go = _last_let_go(view.events)
    return Journal(
        location=location,
        claims=tuple(_claim(claim, let_go) for claim in view.claims),
        purchases=purchases,
        events=tuple(
            LedgerEvent(
                instance_id=e.instance_id,
                model=e.model,
                action=e.action,
                who=_who(e.owner),
                host=e.host,
                at=_when(e.at),
                request_id=e.request_id,
                detail=e.detail,
            )
            for e in view.events
        ),
        other_accounts=view.other_accounts,
    )


def _last_let_go(events: Iterable[JournalEvent]) -> dict[str, JournalEvent]:
    """The last event that released or forgot each instance."""
    return {e.instance_id: e for e in events if e.action in (RELEASE, FORGOTTEN)}


def _claim(claim: ClaimRecord, let_go: Mapping[str, JournalEvent]) -> LedgerClaim:
    event = let_go.get(claim.instance_id) if claim.released_at is not None else None
    return LedgerClaim(
        instance_id=claim.instance_id,
        model=claim.model,
        purchase_id=claim.purchase_id,
        who=_who(claim.owner),
        claimed_at=_when(claim.claimed_at),
        let_go_at=None if claim.released_at is None else _when(claim.released_at),
        let_go_by=None if event is None else event.action,
    )
