"""The baseline: a dynamic provider that does nothing, run in the same provider host.

It lives in an importable module, like TPMQuotaProvider, so both are pickled by reference and
the comparison measures only what the TPMQuota provider itself adds.
"""

from __future__ import annotations

from typing import Any

from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ResourceProvider


class NoopProvider(ResourceProvider):
    serialize_as_secret_always = False

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        return CheckResult(news, [])

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult("noop", props)
