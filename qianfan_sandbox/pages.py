"""DescribeTPMResource in marker pages, and the listing faults that make pages disagree.

Baidu documents no pagination for DescribeTPMResource; when `page_size` is set, the sandbox
answers in the style of Baidu Cloud's list APIs (BCC, BCI, RDS, SCS `list` pages): the request
may carry `marker`, and each answer carries `marker` (the one given, `""` on the first page),
`maxKeys`, `isTruncated` and, only while more follow, `nextMarker`.

A marker stands for an offset into the model's listing, not for an instance: the next page is
"the items from position N on" of whatever order the listing has when that page is asked for.
That is what lets the `reorder` fault make pages overlap and skip, as pages of a real listing
shift when instances come and go between page requests. Markers name their model, so one from
another model's listing (or any made-up text) is refused.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from typing import Any, TypeVar

from .errors import echo, invalid_parameter

#: Highest offset a marker may carry (a listing of a model never comes near it).
MAX_OFFSET = 10**9
_MARKER = re.compile(r"([0-9a-f]{1,8})-([0-9a-f]{12})")

T = TypeVar("T")


def _digest(model: str, offset: int) -> str:
    return hashlib.sha256(f"qianfan-sandbox-marker\0{model}\0{offset}".encode()).hexdigest()[:12]


def make_marker(model: str, offset: int) -> str:
    """The opaque `nextMarker` that continues `model`'s listing at `offset`."""
    return f"{offset:x}-{_digest(model, offset)}"


def read_marker(model: str, marker: str) -> int:
    """The offset a marker of `model`'s listing stands for; InvalidParameter naming `marker` otherwise."""
    match = _MARKER.fullmatch(marker)
    offset = int(match.group(1), 16) if match else -1
    if match is None or not 0 < offset <= MAX_OFFSET or match.group(2) != _digest(model, offset):
        raise invalid_parameter(
            "marker", f"{echo(marker)} is not a marker of this model's listing; pass the previous page's nextMarker"
        )
    return offset


def page_start(model: str, marker: str | None, page_size: int) -> int:
    """Where the page asked for starts: 0 without pagination or on the first page (no marker,
    or an empty one). With pagination off a marker is ignored, as any field the sandbox does not use."""
    return 0 if page_size <= 0 or not marker else read_marker(model, marker)


def page(model: str, items: Sequence[Any], start: int, marker: str | None, page_size: int) -> dict[str, Any]:
    """One Describe `result`: every item when `page_size` is 0, else the page from `start` on."""
    if page_size <= 0:
        return {"instances": list(items)}
    end = start + page_size
    result: dict[str, Any] = {"marker": marker or "", "isTruncated": end < len(items)}
    if end < len(items):
        result["nextMarker"] = make_marker(model, end)
    result["maxKeys"] = page_size
    result["instances"] = list(items[start:end])
    return result


def reordered(items: Sequence[T], start: int, page_size: int) -> list[T]:
    """`items` shuffled so that the page asked for differs from the one creation order gives.

    Random, but never harmless: when the model has instances outside the page asked for, the
    shuffled page holds at least one of them (so, beside pages read in creation order, one
    instance is listed twice and another not at all); when the page is the whole listing, its
    order differs from creation order (with two items or more).
    """
    order = list(items)
    random.shuffle(order)
    count = len(order)
    end = count if page_size <= 0 else min(start + page_size, count)
    if start >= end:
        return order
    if end - start == count:
        if count >= 2 and order == list(items):
            order = order[1:] + order[:1]
        return order
    inside = range(start, end)
    if {id(item) for item in order[start:end]} == {id(item) for item in items[start:end]}:
        outside = [i for i in range(count) if i not in inside]
        i, j = random.choice(inside), random.choice(outside)
        order[i], order[j] = order[j], order[i]
    return order


def duplicated(result: dict[str, Any]) -> dict[str, Any]:
    """The answer with its first listed item listed again at the end (nothing to repeat if empty)."""
    instances = result["instances"]
    if instances:
        result["instances"] = [*instances, dict(instances[0])]
    return result
