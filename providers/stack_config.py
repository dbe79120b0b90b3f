"""The stack's quota plan (`qianfan-tpm:quotas`), validated before any resource is declared.

The same per-field rules as the provider's `check` are used, without the stack policy (allowed
models, the purchase cap, "in the future"), which `check` applies per resource with the stored
state in view. Here the job is to name the entry and field of a malformed list.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .rules import RULES

CONFIG_KEY = "qianfan-tpm:quotas"
_ENTRY_KEYS = {
    "name",
    "model",
    "purchaseCount",
    "releaseTime",
    "protect",
    "adoptInstanceId",
    "deleteBeforeReplace",
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class QuotaPlanError(ValueError):
    """A malformed quota list; the message names the entry and the field."""


@dataclass(frozen=True)
class QuotaEntry:
    name: str
    model: str
    purchase_count: int
    release_time: str | None = None
    adopt_instance_id: str | None = None
    protect: bool = False
    delete_before_replace: bool = False


def _entry_error(index: int, name: Any, field: str, reason: str) -> QuotaPlanError:
    label = f"{CONFIG_KEY}[{index}]" + (f" ({name!r})" if isinstance(name, str) and name else "")
    return QuotaPlanError(f"stack config {label}: {field} {reason}")


def parse_quota_plan(raw: Any) -> list[QuotaEntry]:
    """Turn the config value into entries, or raise QuotaPlanError for the first problem found."""
    if not isinstance(raw, list):
        raise QuotaPlanError(
            f"stack config {CONFIG_KEY} must be a list of objects with name, model and purchaseCount, "
            f"got {type(raw).__name__}"
        )
    entries: list[QuotaEntry] = []
    seen: set[str] = set()
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise _entry_error(index, None, "entry", f"must be an object, got {type(item).__name__}")
        name = item.get("name")
        for key in item:
            if key not in _ENTRY_KEYS:
                raise _entry_error(
                    index, name, key, f"is not a quota field; the fields are {', '.join(sorted(_ENTRY_KEYS))}"
                )
        if not isinstance(name, str) or not _NAME.match(name):
            raise _entry_error(
                index,
                None,
                "name",
                "is required: 1-63 letters, digits, '-', '_' or '.', starting with a letter or digit",
            )
        if name in seen:
            raise _entry_error(index, name, "name", "is used by an earlier entry; names must be unique")
        seen.add(name)
        values: dict[str, Any] = {}
        for field in ("model", "purchaseCount", "releaseTime", "adoptInstanceId"):
            if field in ("model", "purchaseCount") and item.get(field) is None:
                raise _entry_error(index, name, field, "is required")
            try:
                values[field] = RULES[field](item.get(field), None)
            except ValueError as exc:
                raise _entry_error(index, name, field, str(exc)) from None
        flags = {}
        for flag in ("protect", "deleteBeforeReplace"):
            value = item.get(flag, False)
            if not isinstance(value, bool):
                raise _entry_error(index, name, flag, f"must be true or false, got {value!r}")
            flags[flag] = value
        entries.append(
            QuotaEntry(
                name=name,
                model=values["model"],
                purchase_count=values["purchaseCount"],
                release_time=values["releaseTime"],
                adopt_instance_id=values["adoptInstanceId"],
                protect=flags["protect"],
                delete_before_replace=flags["deleteBeforeReplace"],
            )
        )
    return entries
