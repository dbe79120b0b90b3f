"""The five TPM console actions: validate the body, then read or change the instances.

Handlers run inside the caller's transaction (an IMMEDIATE one for the four that write), so the
server decides whether the change is committed or, for a `not_applied` fault, rolled back.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import bodies, pages
from .errors import invalid_instance_status, invalid_parameter, resource_not_found
from .faults import DUPLICATE, EMPTY, REORDER
from .instances import (
    Instance,
    get_instance,
    insert_instance,
    list_instances,
    mark_released,
    order_resize,
    set_release_at,
)
from .options import Options
from .times import parse_release_time


@dataclass(frozen=True)
class Context:
    """What a handler may use: the request's connection, the sandbox clock, options and models,
    and the kind of the fault this request met (Describe's `empty`, `reorder`, `duplicate`)."""

    conn: sqlite3.Connection
    now: float
    options: Options
    models: frozenset[str]
    fault: str | None = None

    def parse(self, kind: type[bodies.B], raw: bytes) -> bodies.B:
        return bodies.parse_body(kind, raw, bodies.Rules(self.models, self.now))


Handler = Callable[[Context, bytes], Any]


def purchase(ctx: Context, raw: bytes) -> dict[str, str]:
    """PurchaseTPMResource: a new Postpaid instance that shows Creating for a while."""
    body = ctx.parse(bodies.Purchase, raw)
    release_at = _moment(body.billing.releaseTime)
    instance_id = insert_instance(
        ctx.conn,
        body.model,
        body.purchaseCount,
        ctx.now,
        ctx.options.creating_seconds,
        release_at,
        ctx.options.id_style,
    )
    return {"instanceId": instance_id}


def describe(ctx: Context, raw: bytes) -> dict[str, Any]:
    """DescribeTPMResource: the model's instances (those old enough to be visible), narrowed by
    the optional filters, in creation order, in marker pages when `page_size` is set."""
    body = ctx.parse(bodies.Describe, raw)
    options = ctx.options
    start = pages.page_start(body.model, body.marker, options.page_size)
    hide_released = options.released_visibility == "hidden"
    found = [
        inst
        for inst in list_instances(ctx.conn, body.model)
        if inst.listed(ctx.now, options.visible_after_seconds, options.stopped_listed_seconds)
        and not (hide_released and inst.released)
    ]
    if ctx.fault == EMPTY:
        found = []  # a lagging replica: it knows none of them, the one asked for by id included
    if body.instanceId is not None:
        found = [inst for inst in found if inst.instance_id == body.instanceId]
        if not found and options.unknown_instance == "error":
            raise resource_not_found(body.instanceId)
    if body.status is not None:
        found = [inst for inst in found if inst.status(ctx.now) == body.status]
    if ctx.fault == REORDER:
        found = pages.reordered(found, start, options.page_size)
    items = [inst.describe_item(ctx.now, options.describe_shape) for inst in found]
    result = pages.page(body.model, items, start, body.marker, options.page_size)
    return pages.duplicated(result) if ctx.fault == DUPLICATE else result


def resize(ctx: Context, raw: bytes) -> bool:
    """ResizeTPMResource: `count` is the total after the resize; it shows after `resize_delay_seconds`."""
    body = ctx.parse(bodies.Resize, raw)
    instance = _changeable(ctx, body.instanceId)
    order_resize(ctx.conn, instance, body.count, ctx.now, ctx.options.resize_delay_seconds)
    return True


def auto_release(ctx: Context, raw: bytes) -> bool:
    """AutoReleaseTPMResource: a releaseTime sets or moves the release; none cancels it."""
    body = ctx.parse(bodies.AutoRelease, raw)
    _changeable(ctx, body.instanceId)
    set_release_at(ctx.conn, body.instanceId, _moment(body.releaseTime))
    return True


def release(ctx: Context, raw: bytes) -> bool:
    """ReleaseTPMResource: stop the instance now."""
    body = ctx.parse(bodies.Release, raw)
    instance = _existing(ctx, body.instanceId)
    if instance.model != body.model:
        raise invalid_parameter(
            "model", f"instance {body.instanceId!r} belongs to model {instance.model!r}, not {body.model!r}"
        )
    if instance.status(ctx.now) == "Stopped":
        if ctx.options.release_again == "ok":
            return True
        raise invalid_instance_status(body.instanceId, _stopped_reason(instance))
    mark_released(ctx.conn, body.instanceId, ctx.now)
    return True


def _moment(release_time: str | None) -> float | None:
    """Epoch seconds of a releaseTime the body model has already checked."""
    return None if release_time is None else parse_release_time(release_time)


def _existing(ctx: Context, instance_id: str) -> Instance:
    instance = get_instance(ctx.conn, instance_id)
    if instance is None:
        raise resource_not_found(instance_id)
    return instance


def _changeable(ctx: Context, instance_id: str) -> Instance:
    """An instance that Resize and AutoRelease may touch: one that exists and is not stopped."""
    instance = _existing(ctx, instance_id)
    if instance.status(ctx.now) == "Stopped":
        raise invalid_instance_status(instance_id, _stopped_reason(instance))
    return instance


def _stopped_reason(instance: Instance) -> str:
    return "already released" if instance.released else "Stopped (expired)"


HANDLERS: dict[str, Handler] = {
    "PurchaseTPMResource": purchase,
    "DescribeTPMResource": describe,
    "ResizeTPMResource": resize,
    "AutoReleaseTPMResource": auto_release,
    "ReleaseTPMResource": release,
}

#: Actions that only read, so they need no write lock.
READ_ONLY: frozenset[str] = frozenset({"DescribeTPMResource"})
