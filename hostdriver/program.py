"""Rehearse `pulumi preview`, `up`, `refresh` and `destroy` of this project without the Pulumi CLI.

The program (`__main__.py`) runs under Pulumi's mock runtime, but the mocks stand in for the engine
rather than for the provider: every TPMQuota registration is sent to a real provider host
(`ProviderHost`, i.e. `python -m pulumi.dynamic`) the way the engine sends it — Check, then Create
for a new resource, or Diff (and Update) against the state of an earlier run — and what the host
answers is what the program's outputs resolve to. The result is a `Deployment`: what the engine
would write to state. `refresh` and `destroy` replay that state through another host, as a later
`pulumi refresh` / `pulumi destroy` would (they do not run the program).

Only what the engine does for this project's one resource type is rehearsed; the differences from
the real engine are listed in tests/e2e's docstring.
"""

from __future__ import annotations

import asyncio
import gc
import json
import runpy
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import pulumi
import pulumi.runtime
from pulumi.dynamic.dynamic import PROVIDER_KEY
from pulumi.runtime import rpc, settings
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.proto import provider_pb2
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from providers.resource import TYPE

from .provider import PROJECT_ROOT, ProviderHost, from_struct, to_struct

ROOT_STACK_TYPE = "pulumi:pulumi:Stack"
PROGRAM = PROJECT_ROOT / "__main__.py"


class RehearsalError(Exception):
    """What the engine would stop the run with (a check failure, a protected resource, …)."""


def engine_config(raw: Mapping[str, Any]) -> dict[str, str]:
    """A stack file's `config:` section as the engine hands it to the program and, since Pulumi
    3.139, to Configure: every value a string, objects and lists as JSON (Go's encoding: compact,
    keys sorted). Encrypted values cannot be rehearsed: there is no secrets provider here."""
    config: dict[str, str] = {}
    for key, value in raw.items():
        if isinstance(value, Mapping) and "secure" in value:
            raise RehearsalError(f"config {key} is encrypted (secure:); the rehearsal cannot decrypt it")
        config[key] = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), sort_keys=True)
    return config


@dataclass(frozen=True)
class StateResource:
    """One resource as the engine records it after a step."""

    urn: str
    type: str
    name: str
    id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    protect: bool = False


@dataclass(frozen=True)
class Deployment:
    """A stack's state: its resources in the order their steps finished, and the provider config
    stored with them (what `refresh` and `destroy` configure the provider with)."""

    config: dict[str, str]
    resources: tuple[StateResource, ...] = ()

    def by_name(self) -> dict[str, StateResource]:
        return {r.name: r for r in self.resources}


class Step(NamedTuple):
    """One engine step: `create`, `same`, `update` or `delete` (planned in a preview)."""

    op: str
    urn: str


@dataclass(frozen=True)
class RunResult:
    """A program run: the stack outputs (the wire sentinel `UNKNOWN` where a preview does not
    know a value), the steps, Diff's answer per URN diffed (`DIFF_NONE`, `DIFF_SOME`,
    `DIFF_UNKNOWN`), and the state the engine would save (the prior state in a preview)."""

    exports: dict[str, Any]
    steps: tuple[Step, ...]
    diffs: dict[str, str]
    deployment: Deployment


def _engine_urn(stack: str, project: str, parent: str, type_: str, name: str) -> str:
    """The engine leaves the root stack's type out of its children's URNs (Pulumi's mock monitor
    does not: it would give `pulumi:pulumi:Stack$pulumi-python:…`)."""
    parent_type = parent.split("::")[2] if parent else ""
    qualified = type_ if parent_type in ("", ROOT_STACK_TYPE) else f"{parent_type}${type_}"
    return f"urn:pulumi:{stack}::{project}::{qualified}::{name}"


class _EngineMonitor(MockMonitor):
    """Pulumi's mock monitor with the engine's URNs, and the registration being served on this
    thread made visible to the mocks (MockResourceArgs carries neither parent nor `protect`)."""

    def __init__(self, mocks: EngineMocks) -> None:
        super().__init__(mocks)
        self._serving = threading.local()

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        return _engine_urn(settings.get_stack(), settings.get_project(), parent, type_, name)

    def registration(self) -> Any:
        return self._serving.request

    def RegisterResource(self, request: Any) -> Any:  # the gRPC method's name
        self._serving.request = request
        try:
            return super().RegisterResource(request)  # type: ignore[no-untyped-call]
        finally:
            del self._serving.request


class EngineMocks(pulumi.runtime.Mocks):
    """`pulumi.runtime.Mocks` whose registrations go to a real provider host, as the engine's do."""

    def __init__(self, host: ProviderHost, *, preview: bool, prior: Deployment) -> None:
        self.host, self.preview, self.prior = host, preview, prior
        self.monitor = _EngineMonitor(self)
        self.steps: list[Step] = []
        self.resources: list[StateResource] = []
        self.diffs: dict[str, str] = {}
        self._lock = threading.Lock()

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        raise RehearsalError(f"the program invoked {args.token}; this rehearsal drives no invokes")

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[Any, Any]]:
        request = self.monitor.registration()
        urn = self.monitor.make_urn(request.parent, args.typ, args.name)
        if args.typ != TYPE or not args.custom:
            raise RehearsalError(f"{urn}: the rehearsal drives only custom resources of type {TYPE}")
        news = dict(args.inputs)
        if PROVIDER_KEY not in news:
            raise RehearsalError(f"{urn}: the registration carries no {PROVIDER_KEY}")
        old = next((r for r in self.prior.resources if r.urn == urn), None)
        checked = self._check(urn, args.name, old.inputs if old else {}, news)
        if old is None:
            if self.preview:  # the host cannot preview a create: the engine plans one from the inputs
                self._record(Step("create", urn), None)
                return "", checked
            id_, outputs = self._create(urn, args.name, checked)
            self._record(
                Step("create", urn), StateResource(urn, TYPE, args.name, id_, checked, outputs, request.protect)
            )
            return id_, outputs
        diff = self._diff(old, checked)
        with self._lock:
            self.diffs[urn] = provider_pb2.DiffResponse.DiffChanges.Name(diff.changes)
        changed = diff.changes == provider_pb2.DiffResponse.DIFF_SOME or (
            diff.changes == provider_pb2.DiffResponse.DIFF_UNKNOWN and checked != old.inputs  # the engine diffs
        )
        if not changed:
            self._record(
                Step("same", urn), StateResource(urn, TYPE, args.name, old.id, checked, old.outputs, request.protect)
            )
            return old.id, old.outputs
        if diff.replaces:
            raise RehearsalError(f"{urn}: replacing ({', '.join(diff.replaces)}) is not rehearsed")
        if self.preview:
            self._record(Step("update", urn), None)
            return old.id, checked
        outputs = self._update(old, checked)
        self._record(
            Step("update", urn), StateResource(urn, TYPE, args.name, old.id, checked, outputs, request.protect)
        )
        return old.id, outputs

    def _record(self, step: Step, resource: StateResource | None) -> None:
        with self._lock:
            self.steps.append(step)
            if resource is not None:
                self.resources.append(resource)

    # -- the engine's requests -------------------------------------------------------------------
    def _check(self, urn: str, name: str, olds: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
        response = self.host._rpc(
            "Check",
            provider_pb2.CheckRequest(urn=urn, name=name, type=TYPE, olds=to_struct(olds), news=to_struct(news)),
        )
        if response.failures:
            # The engine's wording: "property X value {Y} has a problem: reason"; "" = the resource.
            problems = [
                f"property {f.property} value {{{_shown(news.get(f.property))}}} has a problem: {f.reason}"
                if f.property
                else f.reason
                for f in response.failures
            ]
            raise RehearsalError(f"{urn}: " + "; ".join(problems))
        return from_struct(response.inputs)

    def _create(self, urn: str, name: str, checked: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        response = self.host._rpc(
            "Create", provider_pb2.CreateRequest(urn=urn, name=name, type=TYPE, properties=to_struct(checked))
        )
        if not response.id:
            raise RehearsalError(f"{urn}: Create returned no id")
        return str(response.id), from_struct(response.properties)

    def _diff(self, old: StateResource, checked: dict[str, Any]) -> Any:
        return self.host._rpc("Diff", provider_pb2.DiffRequest(**_change_of(old, checked)))

    def _update(self, old: StateResource, checked: dict[str, Any]) -> dict[str, Any]:
        response = self.host._rpc("Update", provider_pb2.UpdateRequest(**_change_of(old, checked)))
        return from_struct(response.properties)


def _shown(value: Any) -> str:
    """A property value as the engine prints it in a check failure (numbers arrive as floats)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value) if not isinstance(value, str) else value


def _mark_reported(error: BaseException) -> None:
    """Retrieve `error` from every future of the failed run that holds it.

    Otherwise each logs "Future exception was never retrieved", traceback included, whenever the
    garbage collector frees it — later, inside unrelated code; on Python 3.11 a traceback formatted
    while pytest's ast.parse of an import is under way breaks that parse ("AST constructor
    recursion depth mismatch"). The error is raised to the caller: it has been reported.
    """
    for obj in gc.get_objects():
        held = isinstance(obj, asyncio.Future) and obj.done() and not obj.cancelled()
        if held and getattr(obj, "_exception", None) is error:
            obj.exception()


def _reset_runtime() -> None:
    """Forget the root stack, the settings and the config of an earlier run (Pulumi's runtime
    keeps them in globals and context variables)."""
    settings.reset_options()
    pulumi.runtime.set_all_config({}, [])


def _run_under_mocks(
    mocks: EngineMocks, config: Mapping[str, str], *, project: str, stack: str, program: Path
) -> dict[str, Any]:
    """Run the program to its end under `mocks`; its stack outputs as the engine would receive them."""
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=mocks.preview, monitor=mocks.monitor)
    pulumi.runtime.set_all_config(dict(config), [])

    def run() -> None:
        runpy.run_path(str(program), run_name="__main__")

    _sync_await(run_pulumi_func(run))
    outputs = getattr(settings.get_root_resource(), "outputs", None)
    if not isinstance(outputs, dict):
        raise RehearsalError("the program ran without a root stack")
    return from_struct(_sync_await(rpc.serialize_properties(outputs, {})))


def run_program(
    host: ProviderHost,
    config: Mapping[str, str],
    *,
    preview: bool,
    prior: Deployment | None = None,
    project: str = "qianfan-tpm",
    stack: str = "dev",
    program: Path = PROGRAM,
) -> RunResult:
    """Run the program once as `pulumi preview` (preview=True) or `pulumi up` would, against the
    state `prior` (None: a new stack). The host must already be configured. What stops the run
    is raised: RehearsalError for what the engine refuses (a check failure), or the program's or
    the host's own error."""
    prior = prior if prior is not None else Deployment(dict(config))
    mocks = EngineMocks(host, preview=preview, prior=prior)
    _reset_runtime()
    try:
        exports = _run_under_mocks(mocks, config, project=project, stack=stack, program=program)
    except Exception as exc:
        _mark_reported(exc)
        raise
    finally:
        _reset_runtime()
    registered = {r.urn for r in mocks.resources} | {s.urn for s in mocks.steps}
    dropped = [r for r in reversed(prior.resources) if r.urn not in registered]
    for resource in dropped:  # the engine deletes what the program no longer declares, last first
        if not preview:
            delete(host, resource)
        mocks.steps.append(Step("delete", resource.urn))
    deployment = prior if preview else Deployment(dict(config), tuple(mocks.resources))
    return RunResult(exports, tuple(mocks.steps), dict(mocks.diffs), deployment)


@dataclass(frozen=True)
class ReadResult:
    """What Read answered for one resource of the state ("" id: it is gone)."""

    urn: str
    id: str
    outputs: dict[str, Any]
    inputs: dict[str, Any] | None


def read(host: ProviderHost, resource: StateResource) -> ReadResult:
    response = host._rpc(
        "Read",
        provider_pb2.ReadRequest(
            id=resource.id,
            urn=resource.urn,
            name=resource.name,
            type=resource.type,
            properties=to_struct(resource.outputs),
            inputs=to_struct(resource.inputs),
        ),
    )
    inputs = from_struct(response.inputs) if response.HasField("inputs") else None
    return ReadResult(resource.urn, str(response.id), from_struct(response.properties), inputs)


def refresh(host: ProviderHost, deployment: Deployment) -> tuple[Deployment, list[ReadResult]]:
    """`pulumi refresh`: Read every resource; a gone one leaves the state, the others take what
    Read reports (its inputs too, when it returns them)."""
    results = [read(host, resource) for resource in deployment.resources]
    kept = tuple(
        StateResource(
            r.urn, r.type, r.name, res.id, res.inputs if res.inputs is not None else r.inputs, res.outputs, r.protect
        )
        for r, res in zip(deployment.resources, results, strict=True)
        if res.id
    )
    return Deployment(deployment.config, kept), results


def delete(host: ProviderHost, resource: StateResource) -> None:
    if resource.protect:
        raise RehearsalError(f"{resource.urn}: resource is protected; `pulumi destroy` refuses to delete it")
    host._rpc(
        "Delete",
        provider_pb2.DeleteRequest(
            id=resource.id,
            urn=resource.urn,
            name=resource.name,
            type=resource.type,
            properties=to_struct(resource.outputs),
            old_inputs=to_struct(resource.inputs),
        ),
    )


def destroy(host: ProviderHost, deployment: Deployment) -> list[str]:
    """`pulumi destroy`: refuse if anything is protected, else Delete every resource, last first.
    Returns the URNs deleted, in order."""
    protected = [r.urn for r in deployment.resources if r.protect]
    if protected:
        raise RehearsalError(f"{', '.join(protected)}: protected; `pulumi destroy` deletes nothing")
    order = list(reversed(deployment.resources))
    for resource in order:
        delete(host, resource)
    return [r.urn for r in order]


__all__ = [
    "PROGRAM",
    "PROVIDER_KEY",
    "Deployment",
    "EngineMocks",
    "ReadResult",
    "RehearsalError",
    "RunResult",
    "StateResource",
    "Step",
    "delete",
    "destroy",
    "engine_config",
    "read",
    "refresh",
    "run_program",
]


def _change_of(old: StateResource, checked: dict[str, Any]) -> dict[str, Any]:
    """What Diff and Update both carry: the resource as in state, and the checked new inputs."""
    return {
        "id": old.id,
        "urn": old.urn,
        "name": old.name,
        "type": TYPE,
        "olds": to_struct(old.outputs),
        "news": to_struct(checked),
        "old_inputs": to_struct(old.inputs),
    }
