"""Reading what the stacks claim: Pulumi state as `pulumi stack export` prints it or a file backend stores it.

Formats, from pulumi/pulumi `sdk/go/common/apitype/core.go` and `pkg/backend/diy`:
- an export is an UntypedDeployment, `{"version": 3, "deployment": DeploymentV3}`;
- a stack file in a file backend is a VersionedCheckpoint, `{"version": 3, "checkpoint": CheckpointV3}`,
  whose `latest` is the DeploymentV3 (absent until the stack's first update);
- version 4 is the same shape plus `features`; versions 0-2 predate 2019 and are refused;
- a backend keeps stacks in `.pulumi/stacks/<project>/<stack>.json` (project-scoped layout) or
  `.pulumi/stacks/<stack>.json` (legacy layout, any project), optionally `.gz` or `.zst` compressed;
  when several variants exist Pulumi uses the most recently written one, and so does this module.

Every problem with a file raises StateError with one line that names the file and says what is
wrong, before any API call is made. Secret values (`{"4dabf1...": "1b4706...", "ciphertext": ...}`)
are never decrypted and never copied out: a field that is an encrypted secret counts as unknown.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from providers.resource import TYPE

from .records import PROJECT, Claim

#: The type token TPMQuota resources have in state (the provider's own, written once there).
TPM_QUOTA_TYPE = TYPE
SUPPORTED_VERSIONS = (3, 4)
#: A stack of thousands of resources is a few MB; this only stops a wrong file from eating memory.
MAX_STATE_BYTES = 512 * 1024 * 1024
_SECRET_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_STACK_SUFFIXES = (".json", ".json.gz", ".json.zst")
#: How standard input (`--state -`) is named in messages.
STDIN = "<stdin>"
_EXPECTED = (
    'expected the JSON of `pulumi stack export` ({"version": 3, "deployment": ...}) '
    'or a stack file of a file backend ({"version": 3, "checkpoint": ...})'
)


class StateError(Exception):
    """A state file or backend the audit cannot use; the message is one line naming it."""


@dataclass(frozen=True)
class StackState:
    """The TPMQuota claims of one stack, and remarks worth a line in the report."""

    source: str
    stack: str | None
    project: str | None
    claims: tuple[Claim, ...] = ()
    notes: tuple[str, ...] = field(default=())


# -- files -----------------------------------------------------------------------------------------
def read_bytes(path: str, limit: int = MAX_STATE_BYTES) -> bytes:
    """The file's content, decompressed when gzip; `-` is standard input."""
    if path == "-":
        raw = sys.stdin.buffer.read(limit + 1)
        path = STDIN
    else:
        try:
            size = os.stat(path).st_size
            if size > limit:
                raise StateError(f"{path}: {size:,} bytes, more than the {limit:,} a state file may have")
            with open(path, "rb") as handle:
                raw = handle.read(limit + 1)
        except IsADirectoryError:
            raise StateError(f"{path}: is a directory; pass a backend directory with --backend") from None
        except OSError as exc:
            raise StateError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    if len(raw) > limit:
        raise StateError(f"{path}: more than the {limit:,} bytes a state file may have")
    if raw.startswith(_ZSTD_MAGIC):
        raise StateError(
            f"{path}: zstd-compressed, which this Python cannot read; decompress it first (zstd -d) "
            "or export the stack with `pulumi stack export`"
        )
    if raw.startswith(_GZIP_MAGIC):
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as unzipped:
                raw = unzipped.read(limit + 1)
        except (OSError, EOFError, zlib.error):
            raise StateError(f"{path}: a damaged gzip file") from None
        if len(raw) > limit:
            raise StateError(f"{path}: decompresses to more than the {limit:,} bytes a state file may have")
    return raw


def read_state_file(path: str, limit: int = MAX_STATE_BYTES) -> StackState:
    """A state given with --state: it must belong to project qianfan-tpm."""
    label = STDIN if path == "-" else path
    state = parse_state(read_bytes(path, limit), label)
    if state.project not in (None, PROJECT):
        raise StateError(f"{label}: a state of project {state.project!r}, not {PROJECT!r}; pass only {PROJECT} stacks")
    return state


def read_backend(directory: str, limit: int = MAX_STATE_BYTES) -> tuple[list[StackState], list[str]]:
    """Every stack of project qianfan-tpm in a file backend (the DIR of `pulumi login file://DIR`)."""
    root = Path(directory).expanduser()
    stacks_dir = root / ".pulumi" / "stacks"
    if not stacks_dir.is_dir() and root.name == ".pulumi" and (root / "stacks").is_dir():
        stacks_dir = root / "stacks"
    if not stacks_dir.is_dir():
        raise StateError(
            f"{directory}: not a Pulumi file backend (no .pulumi/stacks directory in it); "
            "pass the DIR of `pulumi login file://DIR`"
        )
    states: list[StackState] = []
    notes: list[str] = []
    try:
        for path in _newest_stack_files(stacks_dir / PROJECT):
            states.append(read_state_file(str(path), limit))
        for path in _newest_stack_files(stacks_dir):
            state = parse_state(read_bytes(str(path), limit), str(path))
            if state.project == PROJECT:
                states.append(state)
            elif state.project is not None:
                notes.append(f"{path}: skipped, a legacy-layout stack of project {state.project!r}")
    except OSError as exc:
        raise StateError(f"{directory}: cannot be listed ({exc.strerror or type(exc).__name__})") from None
    if not states:
        notes.append(f"{directory}: holds no stack of project {PROJECT}")
    return states, notes


def _newest_stack_files(directory: Path) -> list[Path]:
    """One file per stack: of `x.json`, `x.json.gz`, `x.json.zst`, the newest (as Pulumi picks it)."""
    if not directory.is_dir():
        return []
    candidates: dict[str, list[Path]] = {}
    for path in directory.iterdir():
        suffix = next((s for s in _STACK_SUFFIXES if path.name.endswith(s)), None)
        if suffix is None or not path.is_file():
            continue  # `.bak` backups, `.attrs` side files, project directories
        candidates.setdefault(path.name[: -len(suffix)], []).append(path)
    # Pulumi keeps the newest variant; on a tie, the last in its listing order (.json, .json.gz, .json.zst).
    rank = {suffix: i for i, suffix in enumerate(_STACK_SUFFIXES)}
    return [
        max(paths, key=lambda p: (p.stat().st_mtime_ns, max(rank[s] for s in rank if p.name.endswith(s))))
        for _, paths in sorted(candidates.items())
    ]


# -- content ---------------------------------------------------------------------------------------
def parse_state(raw: bytes, source: str) -> StackState:
    """The TPMQuota claims in one export or checkpoint; StateError when it is not one."""
    if not raw.strip():
        raise StateError(f"{source}: the file is empty; {_EXPECTED}")
    try:
        document = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise StateError(f"{source}: not UTF-8 text; {_EXPECTED}") from None
    except json.JSONDecodeError as exc:
        raise StateError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise StateError(f"{source}: JSON nested too deeply to be a Pulumi state") from None
    if not isinstance(document, dict):
        raise StateError(f"{source}: not a Pulumi state (the top level is a JSON {_json_type(document)}); {_EXPECTED}")
    deployment, checkpoint_stack = _deployment(document, source)
    resources = deployment.get("resources")
    if resources is None:
        resources = []
    if not isinstance(resources, list):
        raise StateError(f'{source}: "resources" is a JSON {_json_type(resources)}, not a list')
    return _claims(source, resources, deployment.get("pending_operations"), checkpoint_stack)


def _deployment(document: dict[str, Any], source: str) -> tuple[dict[str, Any], str | None]:
    """The DeploymentV3 inside an export or checkpoint, and the checkpoint's `stack` field."""
    if "deployment" in document:
        body, where = document["deployment"], '"deployment"'
    elif "checkpoint" in document:
        body, where = document["checkpoint"], '"checkpoint"'
    else:
        keys = ", ".join(sorted(map(str, document))[:5]) or "none"
        raise StateError(f"{source}: not a Pulumi state (top-level keys: {keys}); {_EXPECTED}")
    version = document.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise StateError(f'{source}: "version" is missing or not a number; {_EXPECTED}')
    if version not in SUPPORTED_VERSIONS:
        raise StateError(
            f"{source}: deployment version {version} is not supported (3 and 4 are); "
            "export the stack again with a current Pulumi CLI"
        )
    if body is None:
        return {}, None
    if not isinstance(body, dict):
        raise StateError(f"{source}: {where} is a JSON {_json_type(body)}, not an object; {_EXPECTED}")
    if where == '"deployment"':
        return body, None
    stack = body.get("stack") if isinstance(body.get("stack"), str) else None
    latest = body.get("latest")
    if latest is None:
        return {}, stack
    if not isinstance(latest, dict):
        raise StateError(f'{source}: "checkpoint.latest" is a JSON {_json_type(latest)}, not an object')
    return latest, stack


def parse_urn(urn: str) -> tuple[str, str, str, str] | None:
    """(stack, project, qualified type, name) of `urn:pulumi:<stack>::<project>::<type>::<name>`."""
    if not urn.startswith("urn:pulumi:"):
        return None
    parts = urn[len("urn:pulumi:") :].split("::", 3)  # a resource name may itself contain "::"
    if len(parts) != 4 or not all(parts[:3]):
        return None
    stack, project, qualified_type, name = parts
    return stack, project, qualified_type, name


def _claims(source: str, resources: list[Any], pending_operations: Any, checkpoint_stack: str | None) -> StackState:
    stacks: set[str] = set()
    projects: set[str] = set()
    quotas: list[tuple[int, dict[str, Any], str]] = []
    for index, resource in enumerate(resources):
        if not isinstance(resource, dict) or not isinstance(resource.get("urn"), str):
            raise StateError(f'{source}: resources[{index}] has no "urn"; not a Pulumi state')
        parsed = parse_urn(resource["urn"])
        if parsed is None:
            raise StateError(f"{source}: resources[{index}].urn {resource['urn'][:200]!r} is not a Pulumi URN")
        stacks.add(parsed[0])
        projects.add(parsed[1])
        name = parsed[3]
        if resource.get("type") == TPM_QUOTA_TYPE:
            quotas.append((index, resource, name))
    if not resources and checkpoint_stack and checkpoint_stack.count("/") == 2:
        _, checkpoint_project, checkpoint_name = checkpoint_stack.split("/")
        projects.add(checkpoint_project)
        stacks.add(checkpoint_name)
    if len(projects) > 1:
        raise StateError(f"{source}: resources of several projects ({', '.join(sorted(projects))}); not one stack")
    if len(stacks) > 1:
        raise StateError(f"{source}: resources of several stacks ({', '.join(sorted(stacks))}); not one stack")
    stack = next(iter(stacks), None)
    project = next(iter(projects), None)
    if stack is None:
        return StackState(source, None, None)
    claims: list[Claim] = []
    notes: list[str] = []
    seen_urns: dict[str, int] = {}
    for index, resource, name in quotas:
        where = f"{source}: {stack}/{name}"
        if resource.get("external"):
            notes.append(f"{where} is read with .get() (external), not managed by the stack: not counted as an owner")
            continue
        if resource.get("pendingReplacement"):
            notes.append(f"{where} was released for a replacement not yet created: not counted as an owner")
            continue
        claim = _claim(source, stack, name, resource)
        if not resource.get("delete"):
            if resource["urn"] in seen_urns:
                notes.append(f"{where}: the URN appears twice (resources[{seen_urns[resource['urn']]}] and [{index}])")
            seen_urns.setdefault(resource["urn"], index)
        claims.append(claim)
    notes.extend(_interrupted_creates(source, stack, pending_operations))
    return StackState(source, stack, project, tuple(claims), tuple(notes))


def _claim(source: str, stack: str, name: str, resource: dict[str, Any]) -> Claim:
    outputs = _object(resource.get("outputs"))
    inputs = _object(resource.get("inputs"))
    recorded = outputs or inputs  # outputs are what the provider last saw; inputs only before any
    instance_id = resource.get("id") if isinstance(resource.get("id"), str) and resource["id"] else None
    if instance_id is None:
        instance_id = _string(outputs.get("instanceId"))
    release_known, release_time = False, None
    if recorded:
        if "releaseTime" not in recorded:
            release_known = True
        else:
            known, value = _plain(recorded["releaseTime"])
            # null or "" is "none scheduled"; a value of another type is not a time at all: unknown.
            release_known = known and (value is None or isinstance(value, str))
            release_time = value if release_known and value else None
    return Claim(
        source=source,
        stack=stack,
        resource=name,
        urn=resource["urn"],
        instance_id=instance_id,
        model=_string(outputs.get("model")) or _string(inputs.get("model")),
        units=_first_known(_units(outputs.get("purchaseCount")), _units(inputs.get("purchaseCount"))),
        release_time=release_time,
        release_known=release_known,
        pending_delete=bool(resource.get("delete")),
    )


def _interrupted_creates(source: str, stack: str, operations: Any) -> list[str]:
    """Creates the engine started but never saw finish: a purchase may have happened."""
    notes = []
    for operation in operations if isinstance(operations, list) else []:
        resource = operation.get("resource") if isinstance(operation, dict) else None
        if not isinstance(resource, dict) or resource.get("type") != TPM_QUOTA_TYPE:
            continue
        if operation.get("type") != "creating":
            continue
        parsed = parse_urn(str(resource.get("urn", "")))
        name = parsed[3] if parsed else "?"
        model = _string(_object(resource.get("inputs")).get("model")) or "unknown model"
        notes.append(
            f"{source}: stack {stack} has an interrupted create of {name!r} ({model}); an unmanaged "
            "instance of that model may be its purchase: adopt it with adoptInstanceId"
        )
    return notes


def _plain(value: Any) -> tuple[bool, Any]:
    """(known, value): a secret shown with --show-secrets is unwrapped, an encrypted one is unknown."""
    if isinstance(value, dict) and value.get(_SECRET_KEY) == _SECRET_SIG:
        plaintext = value.get("plaintext")
        if isinstance(plaintext, str):
            try:
                return True, json.loads(plaintext)
            except ValueError:
                return False, None
        return False, None
    if isinstance(value, dict) and _SECRET_KEY in value:
        return False, None  # an asset, archive or resource reference: not a plain value
    return True, value


def _string(value: Any) -> str | None:
    known, plain = _plain(value)
    return plain if known and isinstance(plain, str) and plain.strip() else None


def _units(value: Any) -> int | None:
    known, plain = _plain(value)
    if not known or isinstance(plain, bool) or not isinstance(plain, (int, float)):
        return None
    if isinstance(plain, float) and not plain.is_integer():
        return None
    return int(plain) if plain >= 0 else None


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _first_known(*values: int | None) -> int | None:
    return next((v for v in values if v is not None), None)


def _json_type(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", int: "number", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
