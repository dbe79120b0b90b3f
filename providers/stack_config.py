"""The stack config as the program sees it: the quota plan (`qianfan-tpm:quotas`), validated before
any resource is declared, and every other mistake the program can see at the same time.

An entry holds a resource name, Pulumi options, and TPMQuota's inputs by their wire names — the
fields and their rules come from the field table. The stack policy (allowed models, the purchase
cap, "in the future") is applied by the provider's `check`, per resource, with the stored state
in view. Here the job is to name the entry and field of a malformed list — every one of them in
one run, so that a stack file with four mistakes takes one round to fix, not four.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .fields import INPUTS, conflicts
from .messages import closest, listed, show, show_name
from .settings import NAMESPACE, SETTINGS, SettingsError, key_label, load_settings, stray_keys

#: The project's namespace in the stack config (the `name:` of Pulumi.yaml).
PROJECT = "qianfan-tpm"
#: The project's own settings, by their name after `qianfan-tpm:` (the provider's are
#: `settings.SETTINGS`). Any other `qianfan-tpm:` key is refused naming the closest: a new setting
#: is its row here and its reading in `read_stack_config`.
PROJECT_SETTINGS: tuple[str, ...] = ("quotas",)
CONFIG_KEY = f"{PROJECT}:quotas"
#: Where a stack's config lives (Pulumi.yaml's `stackConfigDir`), for the messages.
STACK_FILE = "stacks/Pulumi.<stack>.yaml"
#: Pulumi resource options an entry may set, by their key in the entry.
_OPTIONS = ("protect", "deleteBeforeReplace")
_ENTRY_KEYS = ("name", *(spec.wire for spec in INPUTS if not spec.internal), *_OPTIONS)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_NAME_RULE = "1-63 letters, digits, '-', '_' or '.', starting with a letter or digit"
_LIST_RULE = "must be a list of objects with name, model and purchaseCount"


class QuotaPlanError(ValueError):
    """The stack config cannot become a plan: one problem per line, each naming the key (and for a
    quota, the entry and the field) and what is allowed."""

    def __init__(self, *problems: str) -> None:
        self.problems = problems
        lines = listed(problems)
        if len(lines) == 1:
            super().__init__(lines[0])
        else:
            super().__init__(f"{len(problems)} problems in the stack config:\n" + "\n".join(f"  {p}" for p in lines))


@dataclass(frozen=True)
class QuotaEntry:
    name: str
    #: TPMQuota keyword arguments (Python names), normalised by each field's rule.
    inputs: dict[str, Any] = field(default_factory=dict)
    protect: bool = False
    delete_before_replace: bool = False


def read_stack_config(config: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> list[QuotaEntry]:
    """The plan, from the whole stack config as Pulumi hands it to a program (every key, namespaced;
    values as strings, lists as JSON) — or one QuotaPlanError with every problem found: keys of the
    project's or the provider's namespace that nothing reads, a missing or misplaced quota list,
    the provider's settings (the same check its `configure` makes), and each bad entry and field.
    """
    strays = stray_keys(config, {NAMESPACE: SETTINGS, PROJECT: PROJECT_SETTINGS})
    raw = config.get(CONFIG_KEY)
    misplaced: list[str] = []
    if raw is None:  # say where the list went, rather than only that it is missing
        misplaced = [stray.key for stray in strays if stray.guess == CONFIG_KEY]
        misplaced += [
            key
            for key in config
            if isinstance(key, str)
            and key.partition(":")[2].lower() == "quotas"
            and key not in (*misplaced, CONFIG_KEY)
        ]
    problems = [stray.problem for stray in strays if stray.key not in misplaced]
    unread = {stray.key for stray in strays}
    try:
        load_settings({key: value for key, value in config.items() if key not in unread}, environ)
    except SettingsError as err:
        problems.extend(err.problems)
    plan: list[QuotaEntry] = []
    if raw is None:
        problems.append(_missing(misplaced))
    else:
        try:
            plan = parse_quota_plan(_decoded(raw))
        except QuotaPlanError as err:
            problems.extend(err.problems)
    if problems:
        raise QuotaPlanError(*problems)
    return plan


def _missing(misplaced: list[str]) -> str:
    if not misplaced:
        return (
            f"stack config {CONFIG_KEY} is not set: it is the list of quotas this stack holds, each with name, model "
            f"and purchaseCount; declare it in {STACK_FILE} (`[]` for none)"
        )
    if len(misplaced) == 1:
        return (
            f"stack config {CONFIG_KEY} is not set, but {key_label(misplaced[0])} is: rename it to {CONFIG_KEY} "
            f"(the namespace is this project's name, {PROJECT})"
        )
    shown = ", ".join(key_label(key) for key in misplaced[:5]) + (", …" if len(misplaced) > 5 else "")
    return f"stack config {CONFIG_KEY} is not set, but {shown} are: rename the one you mean to {CONFIG_KEY}"


def _decoded(raw: Any) -> Any:
    """The value as the program reads it: Pulumi hands a list over as JSON text."""
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise QuotaPlanError(f"stack config {CONFIG_KEY} {_LIST_RULE}, got {show(raw)}") from None


def parse_quota_plan(raw: Any) -> list[QuotaEntry]:
    """Turn the config value into entries, or raise QuotaPlanError listing every problem found."""
    if not isinstance(raw, list):
        raise QuotaPlanError(f"stack config {CONFIG_KEY} {_LIST_RULE}, got {type(raw).__name__}")
    entries: list[QuotaEntry] = []
    problems: list[str] = []
    names: set[str] = set()
    adopted: dict[str, str] = {}
    for index, item in enumerate(raw):
        entry = _entry(index, item, names, adopted, problems)
        if entry is not None:
            entries.append(entry)
    if problems:
        raise QuotaPlanError(*problems)
    return entries


def _entry(index: int, item: Any, names: set[str], adopted: dict[str, str], problems: list[str]) -> QuotaEntry | None:
    """One entry, or None with its problems (every one of them) added to `problems`."""
    if not isinstance(item, dict):
        problems.append(_problem(index, None, "entry", f"must be an object, got {type(item).__name__}"))
        return None
    found: list[str] = []
    name = item.get("name")

    def fail(key: str, reason: str) -> None:
        found.append(_problem(index, name, key, reason))

    for key in item:
        if key not in _ENTRY_KEYS:
            if isinstance(key, str):
                label, guess = key if _NAME.fullmatch(key) else show_name(key), closest(key, _ENTRY_KEYS)
            else:
                label, guess = show(key), None
            fail(
                label,
                f"is not a quota field; did you mean {guess}?"
                if guess
                else f"is not a quota field; the fields are {', '.join(_ENTRY_KEYS)}",
            )
    if name is None:
        fail("name", f"is required: {_NAME_RULE}")
    elif not isinstance(name, str) or not _NAME.fullmatch(name):
        fail("name", f"must be {_NAME_RULE}, got {show(name)}")
    elif name in names:
        fail("name", "is used by an earlier entry; names must be unique")
    else:
        names.add(name)
    inputs: dict[str, Any] = {}
    for spec in INPUTS:
        if spec.internal:
            continue
        value = item.get(spec.wire)
        if value is None:
            if spec.required:
                fail(spec.wire, f"is required: {spec.what}")
            continue
        try:
            inputs[spec.python] = spec.rule(value, None)
        except ValueError as exc:
            fail(spec.wire, str(exc))
    for key, reason in conflicts(item):
        fail(key, reason)
    adopt = inputs.get("adopt_instance_id")
    if adopt is not None:
        if adopt in adopted:
            fail(
                "adoptInstanceId",
                f"{adopt!r} is already adopted by entry {adopted[adopt]}; one instance can belong to one quota",
            )
        else:
            adopted[adopt] = repr(name) if isinstance(name, str) and _NAME.fullmatch(name) else f"[{index}]"
    options: dict[str, bool] = {}
    for key in _OPTIONS:
        value = item.get(key)
        value = False if value is None else value
        if isinstance(value, bool):
            options[key] = value
        else:
            fail(key, f"must be true or false, got {show(value)}")
    problems.extend(found)
    if found or not isinstance(name, str):
        return None
    return QuotaEntry(name, inputs, options["protect"], options["deleteBeforeReplace"])


def _problem(index: int, name: Any, key: str, reason: str) -> str:
    label = f"{CONFIG_KEY}[{index}]" + (f" ({name!r})" if isinstance(name, str) and _NAME.fullmatch(name) else "")
    return f"stack config {label}: {key} {reason}"
