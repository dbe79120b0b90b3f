"""The sides the audit compares: what a stack's state claims, what Qianfan lists, and what the
purchase ledger recorded (who bought, adopted and let go of each instance; uncertain purchases).

Plain data only, so the verdict logic can be tested without Pulumi, Qianfan or the provider.
`None` always means "not known" (a secret value, a field Qianfan did not report), never "none".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

#: The Pulumi project whose stacks the audit reads.
PROJECT = "qianfan-tpm"


@dataclass(frozen=True)
class Claim:
    """One TPMQuota resource in one stack's state: the instance it says it holds, as recorded."""

    source: str
    stack: str
    resource: str
    urn: str
    instance_id: str | None
    model: str | None
    units: int | None
    #: The scheduled release as recorded; None with `release_known` means "none scheduled".
    release_time: str | None
    release_known: bool
    #: `delete: true` in the state: replaced, to be released by the stack's next `pulumi up`.
    pending_delete: bool = False

    @property
    def owner(self) -> str:
        return f"{self.stack}/{self.resource}"


@dataclass(frozen=True)
class LiveInstance:
    """One item of a DescribeTPMResource listing, under the model it was listed for."""

    instance_id: str
    model: str
    status: str
    gone: bool
    units: int | None
    tpm: int | None
    rpm: int | None
    #: The scheduled release; None with `release_known` means "none scheduled".
    release_time: str | None
    #: False when the answer carried no release field at all: unknown, not "none".
    release_known: bool
    #: The `model` field of the item itself, when Qianfan sends one.
    reported_model: str | None = None
    #: When Qianfan says it started (epoch seconds, Qianfan's clock; None: not reported).
    start_time: float | None = None


@dataclass(frozen=True)
class Who:
    """A resource of a stack of a project, as the ledger records it (any part may be unknown)."""

    project: str | None
    stack: str | None
    resource: str | None

    @property
    def label(self) -> str:
        """`stack/resource`, as the audit names state entries; another project's owner says so."""
        label = f"{self.stack or '?'}/{self.resource or '?'}"
        return label if self.project in (None, PROJECT) else f"{label} (project {self.project})"

    def holds(self, claim: Claim) -> bool:
        """Is this the resource of that state entry?"""
        return (
            self.project in (None, PROJECT)
            and self.resource is not None
            and (self.stack, self.resource) == (claim.stack, claim.resource)
        )


@dataclass(frozen=True)
class LedgerPurchase:
    """A purchase the ledger recorded before it was sent, and how it ended."""

    id: int
    model: str
    units: int
    release_time: str | None
    who: Who
    host: str
    sent_at: datetime
    deadline: datetime
    #: The ledger's state: sending, bought, refused, uncertain, recovered, not bought, unknown, orphaned.
    state: str
    #: Sent and never answered nor recovered, past its deadline: its host died or gave up on it.
    abandoned: bool
    instance_id: str | None
    request_id: str | None
    detail: str | None
    #: The earliest and latest `startTime` (epoch seconds, Qianfan's clock) an instance it bought can
    #: have, by the provider's own rules (None: not known).
    earliest_start: float | None
    latest_start: float | None


@dataclass(frozen=True)
class LedgerClaim:
    """An instance a purchase, a recovery or an adoption gave to a resource."""

    instance_id: str
    model: str
    #: The purchase that bought it; None when it was adopted.
    purchase_id: int | None
    who: Who
    claimed_at: datetime
    #: When it was let go (released, or forgotten with the audit), and by which action; None: held.
    let_go_at: datetime | None
    let_go_by: str | None

    @property
    def held(self) -> bool:
        return self.let_go_at is None


@dataclass(frozen=True)
class LedgerEvent:
    """A change journaled for an instance: adopted, resized, rescheduled, released, forgotten."""

    instance_id: str
    model: str
    action: str
    who: Who
    host: str
    at: datetime
    request_id: str | None
    detail: str | None


@dataclass(frozen=True)
class Journal:
    """One account's records in the purchase ledger, as one transaction read them."""

    #: The ledger, as messages may name it (a path, or a URL without its password).
    location: str
    claims: tuple[LedgerClaim, ...]
    purchases: tuple[LedgerPurchase, ...]
    events: tuple[LedgerEvent, ...]
    #: How many other accounts (endpoints, key pairs) the ledger holds records of.
    other_accounts: int
