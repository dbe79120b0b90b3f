"""Pulumi state documents as the CLI writes them, built around resources the provider host really made.

Shapes from pulumi/pulumi `sdk/go/common/apitype/core.go`: `pulumi stack export` prints an
UntypedDeployment (`{"version": 3, "deployment": DeploymentV3}`); a file backend stores a
VersionedCheckpoint (`{"version": 3, "checkpoint": {"stack": "organization/<project>/<stack>",
"latest": DeploymentV3}}`). Each deployment holds the root stack resource, the default
`pulumi-python` provider (whose inputs hold the stack config, secrets included) and the quotas.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

PROJECT = "qianfan-tpm"
TPM_TYPE = "pulumi-python:dynamic/qianfan:TPMQuota"
SECRET_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
PROVIDER_ID = "5f3b8e7e-2b8c-4d63-9a1e-1c0d3f4a5b6c"
TIME = "2026-11-26T06:00:00.000000Z"


def urn(stack: str, type_: str, name: str, project: str = PROJECT) -> str:
    return f"urn:pulumi:{stack}::{project}::{type_}::{name}"


def plain(value: Any) -> Any:
    """Numbers the way Pulumi writes them: a whole float (the wire's 2.0) as 2."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def encrypted(tag: str) -> dict[str, str]:
    """A secret as a passphrase-encrypted state holds it (the audit must not need it)."""
    return {SECRET_KEY: SECRET_SIG, "ciphertext": f"v1:{tag}:ZmFrZS1jaXBoZXJ0ZXh0"}


def shown(value: Any) -> dict[str, str]:
    """A secret as `pulumi stack export --show-secrets` prints it: the JSON text of the value."""
    return {SECRET_KEY: SECRET_SIG, "plaintext": json.dumps(value)}


@dataclass
class Quota:
    """A TPMQuota as the engine records it after Check and Create through the provider host."""

    name: str
    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    def resource(self, stack: str, project: str = PROJECT) -> dict[str, Any]:
        return {
            "urn": urn(stack, TPM_TYPE, self.name, project),
            "custom": True,
            **({"id": self.id} if self.id else {}),  # `omitempty`: no id before a create finished
            "type": TPM_TYPE,
            "inputs": plain(self.inputs),
            "outputs": plain(self.outputs),
            "parent": urn(stack, "pulumi:pulumi:Stack", f"{project}-{stack}", project),
            "provider": urn(stack, "pulumi:providers:pulumi-python", "default", project) + "::" + PROVIDER_ID,
            "propertyDependencies": {key: [] for key in self.inputs if key != "__provider"},
            "created": TIME,
            "modified": TIME,
            **self.extra,
        }


def deployment(
    stack: str,
    quotas: list[Quota],
    *,
    project: str = PROJECT,
    provider_config: dict[str, Any] | None = None,
    pending_operations: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    stack_urn = urn(stack, "pulumi:pulumi:Stack", f"{project}-{stack}", project)
    resources: list[dict[str, Any]] = [
        {
            "urn": stack_urn,
            "custom": False,
            "type": "pulumi:pulumi:Stack",
            "outputs": {q.name: {"instanceId": q.id} for q in quotas},
            "created": TIME,
            "modified": TIME,
        },
        {
            "urn": urn(stack, "pulumi:providers:pulumi-python", "default", project),
            "custom": True,
            "id": PROVIDER_ID,
            "type": "pulumi:providers:pulumi-python",
            "inputs": provider_config or {"qianfan:endpoint": "sandbox"},
            "outputs": provider_config or {"qianfan:endpoint": "sandbox"},
            "created": TIME,
            "modified": TIME,
        },
        *(q.resource(stack, project) for q in quotas),
    ]
    body: dict[str, Any] = {
        "manifest": {"time": TIME, "magic": "0" * 64, "version": "v3.207.0"},
        "secrets_providers": {"type": "passphrase", "state": {"salt": "v1:c2FsdA==:v1:Zm9v:YmFy"}},
        "resources": resources,
    }
    if pending_operations:
        body["pending_operations"] = pending_operations
    return body


def export_document(stack: str, quotas: list[Quota], **options: Any) -> dict[str, Any]:
    """What `pulumi stack export` prints."""
    return {"version": 3, "deployment": deployment(stack, quotas, **options)}


def checkpoint_document(stack: str, quotas: list[Quota], **options: Any) -> dict[str, Any]:
    """What a file backend keeps in `.pulumi/stacks/<project>/<stack>.json`."""
    project = options.get("project", PROJECT)
    return {
        "version": 3,
        "checkpoint": {"stack": f"organization/{project}/{stack}", "latest": deployment(stack, quotas, **options)},
    }
