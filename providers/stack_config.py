"""The stack's quota plan (`qianfan-tpm:quotas`), validated before any resource is declared.

An entry holds a resource name, Pulumi options, and TPMQuota's inputs by their wire names — the
fields and their rules come from the field table. The stack policy (allowed models, the purchase
cap, "in the future") is applied by the provider's `check`, per resource, with the stored state
in view. Here the job is to name the entry and field of a malformed list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .fields import INPUTS
from .messages import show

CONFIG_KEY = "qianfan-tpm:quotas"
#: Pulumi resource options an entry may set, by their key in the entry.
_OPTIONS = ("protect", "deleteBeforeReplace")
_ENTRY_KEYS = ("name", *(spec.wire for spec in INPUTS), *_OPTIONS)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_NAME_RULE = "1-63 letters, digits, '-', '_' or '.', starting with a letter or digit"


class QuotaPlanError(ValueError):
    """A malformed quota list; the message names the entry and the field."""


@dataclass(frozen=True)
class QuotaEntry:
    name: str
    #: TPMQuota keyword arguments (Python names), normalised by each field's rule.
    inputs: dict[str, Any] = field(default_factory=dict)
    protect: bool = False
    delete_before_replace: bool = False


def _entry_error(index: int, name: Any, key: str, reason: str) -> QuotaPlanError:
    label = f"{CONFIG_KEY}[{index}]" + (f" ({name!r})" if isinstance(name, str) and _NAME.fullmatch(name) else "")
    return QuotaPlanError(f"stack config {label}: {key} {reason}")


def parse_quota_plan(raw: Any) -> list[QuotaEntry]:
    """Turn the config value into entries, or raise QuotaPlanError for the first problem found."""
    if not isinstance(raw, list):
        raise QuotaPlanError(
            f"stack config {CONFIG_KEY} must be a list of objects with name, model and purchaseCount, "
            f"got {type(raw).__name__}"
        )
    entries: list[QuotaEntry] = []
    names: set[str] = set()
    adopted: dict[str, str] = {}
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise _entry_error(index, None, "entry", f"must be an object, got {type(item).__name__}")
        name = item.get("name")
        for key in item:
            if key not in _ENTRY_KEYS:
                label = key if isinstance(key, str) and _NAME.fullmatch(key) else show(key)
                raise _entry_error(index, name, label, f"is not a quota field; the fields are {', '.join(_ENTRY_KEYS)}")
        if name is None:
            raise _entry_error(index, None, "name", f"is required: {_NAME_RULE}")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise _entry_error(index, None, "name", f"must be {_NAME_RULE}, got {show(name)}")
        if name in names:
            raise _entry_error(index, name, "name", "is used by an earlier entry; names must be unique")
        names.add(name)
        inputs: dict[str, Any] = {}
        for spec in INPUTS:
            value = item.get(spec.wire)
            if value is None:
                if spec.required:
                    raise _entry_error(index, name, spec.wire, f"is required: {spec.what}")
                continue
            try:
                inputs[spec.python] = spec.rule(value, None)
            except ValueError as exc:
                raise _entry_error(index, name, spec.wire, str(exc)) from None
        adopt = inputs.get("adopt_instance_id")
        if adopt is not None:
            if adopt in adopted:
                raise _entry_error(
                    index,
                    name,
                    "adoptInstanceId",
                    f"{adopt!r} is already adopted by entry {adopted[adopt]!r}; one instance can belong to one quota",
                )
            adopted[adopt] = name
        options = {}
        for key in _OPTIONS:
            value = item.get(key)
            value = False if value is None else value
            if not isinstance(value, bool):
                raise _entry_error(index, name, key, f"must be true or false, got {show(value)}")
            options[key] = value
        entries.append(QuotaEntry(name, inputs, options["protect"], options["deleteBeforeReplace"]))
    return entries
