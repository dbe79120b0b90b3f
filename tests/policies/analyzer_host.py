"""Drive the policy pack the way the Pulumi CLI does: a subprocess and the Analyzer gRPC interface.

How the CLI starts a Python policy pack (pulumi/pulumi `pkg/resource/plugin/analyzer_plugin.go`,
`NewPolicyAnalyzer`; `sdk/python/cmd/pulumi-language-python/main.go`, `RunPlugin`; before CLI 3.221
the `pulumi-analyzer-policy-python` shim ran the same command): the pack's interpreter (the
`virtualenv` of PulumiPolicy.yaml; here this checkout's venv) runs
`python -u -m pulumi.policy <engine address> <pack directory>` with the pack directory as working
directory and PULUMI_ORGANIZATION, PULUMI_PROJECT, PULUMI_STACK, PULUMI_DRY_RUN and PULUMI_CONFIG
(the stack's config as JSON) added to the environment. pulumi-policy prints the port of its gRPC
server as the first line of stdout. The CLI then calls Handshake (pulumi-policy does not implement
it: UNIMPLEMENTED is accepted), ConfigureStack, GetAnalyzerInfo, GetPluginInfo and Configure; for
each resource Remediate and Analyze, and at the end AnalyzeStack.

Before Configure the CLI fills in each policy's schema defaults, overlays the config file and
validates the result against the schemas (`pkg/resource/analyzer/config.go`,
`ReconcilePolicyPackConfig`, with gojsonschema). `reconcile_config` does the same with the
`jsonschema` package, so tests see what the CLI would refuse before the pack is ever configured.
"""

from __future__ import annotations

import copy
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import jsonschema
import yaml
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from hostdriver.process import Plugin

PACK_DIR = Path(__file__).resolve().parents[2] / "policies"
TYPE = "pulumi-python:dynamic/qianfan:TPMQuota"
PROJECT = "qianfan-tpm"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
START_TIMEOUT = 30.0
CALL_TIMEOUT = 30.0
LEVELS = {
    analyzer_pb2.ADVISORY: "advisory",
    analyzer_pb2.MANDATORY: "mandatory",
    analyzer_pb2.DISABLED: "disabled",
    analyzer_pb2.REMEDIATE: "remediate",
}
LEVEL_CODES = {name: code for code, name in LEVELS.items()}


def pack_project() -> dict[str, Any]:
    """PulumiPolicy.yaml, which the CLI reads for the runtime and for the version it reports (over the SDK's 0.0.1)."""
    project: dict[str, Any] = yaml.safe_load((PACK_DIR / "PulumiPolicy.yaml").read_text())
    return project


def secret(value: Any) -> dict[str, Any]:
    """A property value as the engine marshals a secret (MarshalOptions.KeepSecrets)."""
    return {SECRET_SIG_KEY: SECRET_SIG, "value": value}


def urn(name: str, stack: str, type_: str = TYPE) -> str:
    return f"urn:pulumi:{stack}::{PROJECT}::{type_}::{name}"


def to_struct(props: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(props)
    return struct


@dataclass
class Resource:
    """One resource as the engine describes it to an analyzer."""

    name: str
    props: dict[str, Any]
    type: str = TYPE
    protect: bool = False
    stack: str = "dev"
    urn: str = ""

    def __post_init__(self) -> None:
        self.urn = self.urn or urn(self.name, self.stack, self.type)

    def options(self) -> analyzer_pb2.AnalyzerResourceOptions:
        return analyzer_pb2.AnalyzerResourceOptions(protect=self.protect)


@dataclass(frozen=True)
class Diagnostic:
    policy: str
    level: str
    message: str
    urn: str
    pack: str


@dataclass
class Analysis:
    diagnostics: list[Diagnostic] = field(default_factory=list)
    not_applicable: dict[str, str] = field(default_factory=dict)

    def of(self, policy: str) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.policy == policy]


class AnalyzerError(Exception):
    """The pack answered an RPC with an error."""

    def __init__(self, method: str, code: grpc.StatusCode, details: str) -> None:
        self.method, self.code, self.details = method, code, details
        super().__init__(f"{method}: {code.name}: {details}")


class CliConfigError(Exception):
    """What the CLI reports instead of running: `validating policy config: <pack> <version>  <policy>: <error>`."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("; ".join(errors))


class AnalyzerHost(Plugin):
    def __init__(
        self,
        stderr_path: Path,
        stack: str = "dev",
        organization: str = "acme",
        dry_run: bool = True,
        stack_config: str = "{}",
    ) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
        env.update(
            PULUMI_ORGANIZATION=organization,
            PULUMI_PROJECT=PROJECT,
            PULUMI_STACK=stack,
            PULUMI_DRY_RUN=str(dry_run).lower(),
            PULUMI_CONFIG=stack_config,
        )
        self.stack, self.organization, self.dry_run = stack, organization, dry_run
        # The engine address is the CLI's own gRPC server; pulumi.policy parses it and never dials it.
        super().__init__(
            [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", str(PACK_DIR)],
            cwd=PACK_DIR,
            env=env,
            stderr_path=stderr_path,
            what="policy pack",
            timeout=START_TIMEOUT,
        )
        self.stub = analyzer_pb2_grpc.AnalyzerStub(self.channel)

    # -- RPCs ----------------------------------------------------------------------------------
    def _rpc(self, method: str, request: Any) -> Any:
        try:
            return getattr(self.stub, method)(request, timeout=CALL_TIMEOUT)
        except grpc.RpcError as err:
            raise AnalyzerError(method, err.code(), err.details() or "") from None

    def start_session(self) -> None:
        """What the CLI sends before asking anything: Handshake (optional for the pack), ConfigureStack."""
        try:
            self._rpc(
                "Handshake",
                analyzer_pb2.AnalyzerHandshakeRequest(
                    engine_address="127.0.0.1:1", root_directory=str(PACK_DIR), program_directory=str(PACK_DIR)
                ),
            )
        except AnalyzerError as err:
            if err.code != grpc.StatusCode.UNIMPLEMENTED:
                raise
        self._rpc(
            "ConfigureStack",
            analyzer_pb2.AnalyzerStackConfigureRequest(
                stack=self.stack,
                project=PROJECT,
                organization=self.organization,
                dry_run=self.dry_run,
                tags={"pulumi:project": PROJECT},
            ),
        )

    def analyzer_info(self) -> analyzer_pb2.AnalyzerInfo:
        return self._rpc("GetAnalyzerInfo", empty_pb2.Empty())

    def plugin_info(self) -> str:
        return str(self._rpc("GetPluginInfo", empty_pb2.Empty()).version)

    def configure_raw(self, config: dict[str, tuple[str, dict[str, Any]]]) -> None:
        """Configure as the RPC allows it, unchecked: policy -> (enforcement level, properties)."""
        request = analyzer_pb2.ConfigureAnalyzerRequest()
        for policy, (level, props) in config.items():
            request.policyConfig[policy].CopyFrom(
                analyzer_pb2.PolicyConfig(enforcementLevel=LEVEL_CODES[level], properties=to_struct(props))
            )
        self._rpc("Configure", request)

    def configure(self, file_config: dict[str, Any] | None = None) -> None:
        """Configure as the CLI does with `--policy-pack-config`: defaults, overlay, validate, then Configure."""
        self.configure_raw(reconcile_config(self.analyzer_info(), file_config or {}))

    def remediate(self, resource: Resource) -> analyzer_pb2.RemediateResponse:
        request = analyzer_pb2.AnalyzeRequest(
            type=resource.type,
            properties=to_struct(resource.props),
            urn=resource.urn,
            name=resource.name,
            options=resource.options(),
        )
        return self._rpc("Remediate", request)

    def analyze(self, resource: Resource) -> Analysis:
        request = analyzer_pb2.AnalyzeRequest(
            type=resource.type,
            properties=to_struct(resource.props),
            urn=resource.urn,
            name=resource.name,
            options=resource.options(),
        )
        return _analysis(self._rpc("Analyze", request))

    def analyze_stack(self, resources: list[Resource]) -> Analysis:
        request = analyzer_pb2.AnalyzeStackRequest(
            resources=[
                analyzer_pb2.AnalyzerResource(
                    type=r.type,
                    properties=to_struct(r.props),
                    urn=r.urn,
                    name=r.name,
                    options=r.options(),
                )
                for r in resources
            ]
        )
        return _analysis(self._rpc("AnalyzeStack", request))


def _analysis(response: analyzer_pb2.AnalyzeResponse) -> Analysis:
    return Analysis(
        diagnostics=[
            Diagnostic(d.policyName, LEVELS[d.enforcementLevel], d.message, d.urn, d.policyPackName)
            for d in response.diagnostics
        ],
        not_applicable={n.policy_name: n.reason for n in response.not_applicable},
    )


def reconcile_config(info: analyzer_pb2.AnalyzerInfo, file_config: dict[str, Any]) -> dict[str, tuple[str, dict]]:
    """The CLI's ReconcilePolicyPackConfig: schema defaults < file config, then JSON-schema validation.

    `file_config` has the shape of a `--policy-pack-config` file: policy -> level string, or an object
    with an optional `enforcementLevel` and the policy's properties. Raises CliConfigError with the
    CLI's line layout (the error wording after the policy name is the `jsonschema` package's; the CLI's
    comes from gojsonschema, e.g. `maxHoursAhead: Invalid type. Expected: number, given: string`).
    """
    result: dict[str, tuple[str, dict[str, Any]]] = {}
    schemas: dict[str, dict[str, Any]] = {}
    for policy in info.policies:
        properties = {k: dict(v) for k, v in _plain(policy.configSchema.properties).items()}
        defaults = {k: v["default"] for k, v in properties.items() if "default" in v}
        result[policy.name] = (LEVELS[policy.enforcementLevel], defaults)
        properties["enforcementLevel"] = {"type": "string", "enum": list(LEVEL_CODES)}
        schemas[policy.name] = {"type": "object", "properties": properties}
        if policy.configSchema.required:
            schemas[policy.name]["required"] = list(policy.configSchema.required)
    for policy, given in copy.deepcopy(file_config).items():
        level, props = result.get(policy, ("advisory", {}))
        if isinstance(given, str):
            level = given
        else:
            level = given.pop("enforcementLevel", level)
            props = {**props, **given}
        if level not in LEVEL_CODES:
            raise CliConfigError(
                [f"parsing enforcement level for {policy!r}: {level!r} is not a valid enforcement level"]
            )
        result[policy] = (level, props)
    version = pack_project().get("version") or info.version
    errors = []
    for policy, schema in schemas.items():
        validator = jsonschema.Draft7Validator(schema)
        for error in sorted(validator.iter_errors(result[policy][1]), key=str):
            where = ".".join(str(p) for p in error.absolute_path)
            errors.append(
                f"validating policy config: {info.name} {version}  {policy}: "
                + (f"{where}: {error.message}" if where else error.message)
            )
    if errors:
        raise CliConfigError(sorted(errors))
    return result


def _plain(value: Any) -> Any:
    """A Struct as the CLI's Go code sees it after JSON: whole numbers print without `.0`."""
    if isinstance(value, struct_pb2.Struct):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, struct_pb2.ListValue):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
