"""The audit's records as the verdict tests build them: a live instance and a claim with ordinary
defaults (change any field by name), and the moment they are judged at."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from audit.records import Claim, LiveInstance

NOW = datetime(2030, 1, 1, tzinfo=UTC)


def live(id_: str, model: str = "ernie-speed-8k", units: int | None = 1, **changes: object) -> LiveInstance:
    base = LiveInstance(
        instance_id=id_,
        model=model,
        status="Running",
        gone=False,
        units=units,
        tpm=None if units is None else units * 10_000,
        rpm=None if units is None else units * 33,
        release_time=None,
        release_known=True,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def claim(id_: str | None, stack: str = "dev", resource: str = "q", **changes: object) -> Claim:
    base = Claim(
        source=f"{stack}.json",
        stack=stack,
        resource=resource,
        urn=f"urn:pulumi:{stack}::qianfan-tpm::t::{resource}",
        instance_id=id_,
        model="ernie-speed-8k",
        units=1,
        release_time=None,
        release_known=True,
    )
    return replace(base, **changes)  # type: ignore[arg-type]
