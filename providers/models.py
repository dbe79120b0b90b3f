"""Qianfan model ids that TPM quota can be bought for.

Baidu keeps changing this list, so the documented ids are only the default: stack config
`qianfan:extraModels` extends it without a release of this project.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

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


def parse_extra_models(raw: object) -> tuple[str, ...]:
    """Read `qianfan:extraModels`, which the engine hands over as a string.

    A comma-separated string is the documented form; a JSON list (what `pulumi config set
    --path` produces) is accepted too so that either spelling works.
    """
    if raw is None:
        return ()
    if isinstance(raw, (list, tuple)):
        items: Iterable[object] = raw
    else:
        text = str(raw).strip()
        if text.startswith("["):
            import json

            try:
                items = json.loads(text)
            except ValueError:
                items = text.strip("[]").split(",")
        else:
            items = text.split(",")
    return tuple(dict.fromkeys(str(item).strip().strip('"') for item in items if str(item).strip()))


def allowed_models(extra: Iterable[str] = ()) -> tuple[str, ...]:
    """Documented ids first, then the configured extras, without repeats."""
    return tuple(dict.fromkeys((*DOCUMENTED_MODELS, *extra)))


def closest_model(model: str, extra: Iterable[str] = ()) -> str | None:
    """The allowed id a typo most likely meant, for the error message."""
    matches = difflib.get_close_matches(model.strip().lower(), allowed_models(extra), n=1, cutoff=0.6)
    return matches[0] if matches else None
