"""The two sides the audit compares: what a stack's state claims, and what Qianfan lists.

Plain data only, so the verdict logic can be tested without Pulumi, Qianfan or the provider.
`None` always means "not known" (a secret value, a field Qianfan did not report), never "none".
"""

from __future__ import annotations

from dataclasses import dataclass


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
