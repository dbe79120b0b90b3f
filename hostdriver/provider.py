"""Drive Pulumi's own dynamic-provider host the way the engine does: a subprocess and gRPC.

`python -m pulumi.dynamic` is started with the project root as working directory (as the
`pulumi-resource-pulumi-python` shim does), prints its port, and serves
`pulumirpc.ResourceProvider`. Every answer and error text is kept in `transcript`, and the host's
stderr in a file, so tests can scan them for secrets.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import struct_pb2, text_format
from pulumi.dynamic.dynamic import PROVIDER_KEY, serialize_provider
from pulumi.runtime.proto import provider_pb2, provider_pb2_grpc

from providers.resource import TYPE

from .process import Plugin

PROJECT_ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 30.0
#: The engine waits for an RPC as long as it takes; this bound only makes a hung host fail a test.
#: It must exceed a call's queueing too: the host serves 4 RPCs at once (pulumi.dynamic's thread
#: pool), so a 16th concurrent create may wait behind three rounds of others' full deadlines, and a
#: call given up on here would still run in the host, buying what nobody receives.
CALL_TIMEOUT = 600.0


def provider_blob() -> str:
    """What a program's TPMQuota stores in `__provider`."""
    from providers import TPMQuotaProvider

    return str(serialize_provider(TPMQuotaProvider()))


def to_struct(props: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update({k: v for k, v in props.items() if v is not None})
    return struct


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    """Plain Python values (numbers stay floats, as on the wire; inf and NaN survive)."""

    def plain(value: Any) -> Any:
        if isinstance(value, struct_pb2.Struct):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, struct_pb2.ListValue):
            return [plain(v) for v in value]
        return value

    plain_struct: dict[str, Any] = plain(struct)
    return plain_struct


def urn(name: str, stack: str = "dev") -> str:
    return f"urn:pulumi:{stack}::qianfan-tpm::{TYPE}::{name}"


class HostError(Exception):
    """The host answered an RPC with an error (the provider raised)."""

    def __init__(self, method: str, code: grpc.StatusCode, details: str) -> None:
        self.method, self.code, self.details = method, code, details
        super().__init__(f"{method}: {code.name}: {details}")

    @property
    def last_line(self) -> str:
        """What the user reads last: the exception line of the traceback."""
        lines = [line for line in self.details.strip().splitlines() if line.strip()]
        return lines[-1] if lines else ""


class ProviderHost(Plugin):
    def __init__(
        self, stderr_path: Path, env: dict[str, str] | None = None, cwd: Path = PROJECT_ROOT, stack: str = "dev"
    ) -> None:
        self.stack = stack
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("QIANFAN_")}
        full_env.update(env or {})
        if cwd != PROJECT_ROOT:  # another project directory that uses this checkout's package
            full_env["PYTHONPATH"] = str(PROJECT_ROOT)
        full_env["PULUMI_PROJECT"] = "qianfan-tpm"
        super().__init__(
            [sys.executable, "-u", "-m", "pulumi.dynamic", "127.0.0.1:1"],
            cwd=cwd,
            env=full_env,
            stderr_path=stderr_path,
            what="provider host",
            timeout=START_TIMEOUT,
        )
        self.stub = provider_pb2_grpc.ResourceProviderStub(self.channel)
        self.blob = provider_blob()
        self.transcript: list[str] = []

    # -- RPCs ----------------------------------------------------------------------------------
    def _rpc(self, method: str, request: Any) -> Any:
        try:
            response = getattr(self.stub, method)(request, timeout=CALL_TIMEOUT)
        except grpc.RpcError as err:
            details = err.details() or ""
            self.transcript.append(details)
            raise HostError(method, err.code(), details) from None
        self.transcript.append(text_format.MessageToString(response))
        return response

    def with_provider(self, props: dict[str, Any]) -> dict[str, Any]:
        return {**props, PROVIDER_KEY: self.blob}

    def configure(self, config: dict[str, str]) -> None:
        self._rpc("Configure", provider_pb2.ConfigureRequest(args=to_struct(config), acceptSecrets=True))

    def check(
        self, news: dict[str, Any], olds: dict[str, Any] | None = None, name: str = "q"
    ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        response = self._rpc(
            "Check",
            provider_pb2.CheckRequest(
                urn=urn(name, self.stack),
                olds=to_struct(self.with_provider(olds) if olds else {}),
                news=to_struct(self.with_provider(news)),
            ),
        )
        failures = [(f.property, f.reason) for f in response.failures]
        return from_struct(response.inputs), failures

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any], name: str = "q") -> dict[str, Any]:
        response = self._rpc(
            "Diff",
            provider_pb2.DiffRequest(
                id=id_,
                urn=urn(name, self.stack),
                olds=to_struct(self.with_provider(olds)),
                news=to_struct(self.with_provider(news)),
            ),
        )
        return {
            "changes": provider_pb2.DiffResponse.DiffChanges.Name(response.changes),
            "replaces": list(response.replaces),
            "deleteBeforeReplace": response.deleteBeforeReplace,
        }

    def create(self, props: dict[str, Any], name: str = "q") -> tuple[str, dict[str, Any]]:
        response = self._rpc(
            "Create",
            provider_pb2.CreateRequest(urn=urn(name, self.stack), properties=to_struct(self.with_provider(props))),
        )
        return response.id, from_struct(response.properties)

    def read(self, id_: str, props: dict[str, Any], name: str = "q") -> tuple[str, dict[str, Any], dict[str, Any]]:
        response = self._rpc(
            "Read",
            provider_pb2.ReadRequest(
                id=id_, urn=urn(name, self.stack), properties=to_struct(self.with_provider(props))
            ),
        )
        return response.id, from_struct(response.properties), from_struct(response.inputs)

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any], name: str = "q") -> dict[str, Any]:
        response = self._rpc(
            "Update",
            provider_pb2.UpdateRequest(
                id=id_,
                urn=urn(name, self.stack),
                olds=to_struct(self.with_provider(olds)),
                news=to_struct(self.with_provider(news)),
            ),
        )
        return from_struct(response.properties)

    def delete(self, id_: str, props: dict[str, Any], name: str = "q") -> None:
        self._rpc(
            "Delete",
            provider_pb2.DeleteRequest(
                id=id_, urn=urn(name, self.stack), properties=to_struct(self.with_provider(props))
            ),
        )

    # -- lifecycle as `pulumi up` runs it ------------------------------------------------------
    def up(self, news: dict[str, Any], name: str = "q") -> tuple[str, dict[str, Any]]:
        """Check then Create, failing loudly on check failures. As a program's `TPMQuota` does, the
        inputs name the resource (`ownerUrn`) unless the caller gives its own."""
        inputs, failures = self.check({"ownerUrn": urn(name, self.stack), **news}, name=name)
        assert not failures, failures
        return self.create(inputs, name=name)
