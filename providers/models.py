"""Qianfan model ids that TPM quota can be bought for.

Baidu keeps changing this list, so the documented ids are only the default: stack config
`qianfan:extraModels` extends it without a release of this project.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from .messages import show

#: The ids listed on Baidu's PurchaseTPMResource page, plus ids that later pages add.
DOCUMENTED_MODELS: tuple[str, ...] = (
    "ernie-4.0-8k",
    "ernie-4.0-8k-preview",
    "ernie-4.0-turbo-8k",
    "ernie-4.0-turbo-8k-preview",
    "ernie-4.0-turbo-8k-0628",
    "ernie-4.0-turbo-128k",
    "ernie-3.5-8k",
    "ernie-3.5-8k-preview",
    "ernie-3.5-128k",
    "ernie-3.5-128k-preview",
    "ernie-speed-8k",
    "ernie-speed-128k",
    "ernie-speed-pro-128k",
    "ernie-lite-8k",
    "ernie-lite-pro-128k",
    "ernie-tiny-8k",
    "ernie-character-fiction-8k",
    "ernie-char-8k",
    "ernie-novel-8k",
    "ernie-speed-appbuilder-8k",
    "qianfan-agent-speed-8k",
    "qianfan-agent-speed-32k",
    "qianfan-agent-lite-8k",
    "ernie-4.5-turbo-128k",
)
#: What an id added by `qianfan:extraModels` may look like: the shape of every documented id.
MODEL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def parse_extra_models(raw: object) -> tuple[str, ...]:
    """Read `qianfan:extraModels`, which the engine hands over as a string.

    A comma-separated string is the documented form; a JSON list of strings (what `pulumi config
    set --path` produces) is accepted too. Anything else raises ValueError naming the bad item.
    """
    if raw is None:
        return ()
    text = str(raw).strip()
    items: Iterable[object]
    if text.startswith("["):
        try:
            items = json.loads(text)
        except (ValueError, RecursionError):
            raise ValueError(f"looks like a JSON list but is not valid JSON: {show(text)}") from None
        if not isinstance(items, list):
            raise ValueError(f"must be a comma-separated list of model ids, got {show(text)}")
    else:
        items = [item.strip() for item in text.split(",") if item.strip()]
    models: list[str] = []
    for item in items:
        if not isinstance(item, str) or not MODEL_ID.fullmatch(item):
            raise ValueError(
                f"{show(item)} is not a model id (1-64 letters, digits, '.', '_' or '-', starting with a letter "
                "or digit)"
            )
        models.append(item)
    return tuple(dict.fromkeys(models))


def allowed_models(extra: Iterable[str] = ()) -> tuple[str, ...]:
    """Documented ids first, then the configured extras, without repeats."""
    return tuple(dict.fromkeys((*DOCUMENTED_MODELS, *extra)))


def closest_model(model: str, extra: Iterable[str] = ()) -> str | None:
    """The allowed id a typo most likely meant, for the error message (only ever on a failure)."""
    import difflib

    matches = difflib.get_close_matches(model.strip().lower(), allowed_models(extra), n=1, cutoff=0.6)
    return matches[0] if matches else None
