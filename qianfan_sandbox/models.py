"""The model ids TPM quota can be bought for, as Baidu's pages list them, each with its source.

This list is the sandbox's own, written from Baidu's documentation, so that a mistake in the
provider's list cannot be repeated here and go unnoticed. Baidu keeps changing the list; the
sandbox accepts more ids when started with `extra_models` (`--extra-models`).
"""

from __future__ import annotations

from collections.abc import Iterable

#: The seed: Baidu's PurchaseTPMResource page, `model` parameter (updated 2025-05-16),
#: /work/shared/seeds/purchase-tpm-resource.zh.txt.
PURCHASE_PAGE = "PurchaseTPMResource page (2025-05-16), model parameter"
#: Baidu's DescribeTPMResource page as updated 2025-09-15 / 2025-10-30
#: (cloud.baidu.com/doc/WENXINWORKSHOP/s/ultmls9l9), `model` parameter: it adds this id.
DESCRIBE_PAGE_2025 = "DescribeTPMResource page (2025-09-15), model parameter"

#: Every documented id and the page it comes from, in the order the pages list them.
DOCUMENTED_MODELS: dict[str, str] = {
    "ernie-4.0-8k": PURCHASE_PAGE,
    "ernie-4.0-8k-preview": PURCHASE_PAGE,
    "ernie-4.0-turbo-8k": PURCHASE_PAGE,
    "ernie-4.0-turbo-8k-preview": PURCHASE_PAGE,
    "ernie-4.0-turbo-8k-0628": PURCHASE_PAGE,
    "ernie-4.0-turbo-128k": PURCHASE_PAGE,
    "ernie-3.5-8k": PURCHASE_PAGE,
    "ernie-3.5-8k-preview": PURCHASE_PAGE,
    "ernie-3.5-128k": PURCHASE_PAGE,
    "ernie-3.5-128k-preview": PURCHASE_PAGE,
    "ernie-speed-8k": PURCHASE_PAGE,
    "ernie-speed-128k": PURCHASE_PAGE,
    "ernie-speed-pro-128k": PURCHASE_PAGE,
    "ernie-lite-8k": PURCHASE_PAGE,
    "ernie-lite-pro-128k": PURCHASE_PAGE,
    "ernie-tiny-8k": PURCHASE_PAGE,
    "ernie-character-fiction-8k": PURCHASE_PAGE,
    "ernie-char-8k": PURCHASE_PAGE,
    "ernie-novel-8k": PURCHASE_PAGE,
    "ernie-speed-appbuilder-8k": PURCHASE_PAGE,
    "qianfan-agent-speed-8k": PURCHASE_PAGE,
    "qianfan-agent-speed-32k": PURCHASE_PAGE,
    "qianfan-agent-lite-8k": PURCHASE_PAGE,
    "ernie-4.5-turbo-128k": DESCRIBE_PAGE_2025,
}

#: Longest extra model id accepted; Baidu's ids are about 30 characters.
MAX_MODEL_ID_LENGTH = 128


def parse_model_list(text: str) -> tuple[str, ...]:
    """`a, b,,c` → ("a", "b", "c"): the comma-separated form of `--extra-models`."""
    return tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))


def accepted_models(extra: Iterable[str] = ()) -> frozenset[str]:
    """The documented ids plus `extra`; ValueError names an extra id that cannot be a model id."""
    extras: list[str] = []
    for item in extra:
        if not isinstance(item, str) or not item.strip():
            raise ValueError(f"extra model ids must be non-empty strings, got {item!r}")
        model = item.strip()
        if len(model) > MAX_MODEL_ID_LENGTH or not model.isprintable():
            raise ValueError(
                f"extra model id {model[:40]!r} must be printable and at most {MAX_MODEL_ID_LENGTH} characters"
            )
        extras.append(model)
    return frozenset((*DOCUMENTED_MODELS, *extras))
