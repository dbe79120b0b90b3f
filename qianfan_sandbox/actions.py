"""The five TPM console actions: validate the body, then read or change the instances.

Handlers run inside the caller's transaction (an IMMEDIATE one for the four that write), so the
server decides whether the change is committed or, for a `not_applied` fault, rolled back.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import fields
from .errors import (
    invalid_instance_status,
    invalid_parameter,
    resource_not_found,
)
from .instances import (
    PAYMENT_TIMING,
    STATUSES,
    Instance,
    get_instance,
    insert_instance,
    list_instances,
    mark_released,
    set_count,
    set_release_at,
)
from .options import Options


@dataclass(frozen=True)
class Context:
    """What a handler may use: the request's connection, the sandbox clock and the options."""

    conn: sqlite3.Connection
    now: float
    options: Options
    models: frozenset[str]


Handler = Callable[[Context, Any], Any]


def purchase(ctx: Context, body: Any) -> dict[str, str]:
    """PurchaseTPMResource: a new Postpaid instance that shows Creating for a while."""
    body = fields.require_object(body, "request body")
    model = fields.required_str(body, "model")
    billing = fields.required_object(body, "billing")
    payment_timing = fields.required_str(billing, "paymentTiming", "billing.paymentTiming")
    release_text = fields.optional_str(billing, "releaseTime", "billing.releaseTime")
    count = fields.required_count(body, "purchaseCount")
    if model not in ctx.models:
        raise invalid_parameter("model", f"{model!r} is not a model TPM quota can be bought for")
    if payment_timing != PAYMENT_TIMING:
        raise invalid_parameter("billing.paymentTiming", f"must be {PAYMENT_TIMING!r}, got {payment_timing!r}")
    release_at = None
    if release_text is not None:
        release_at = fields.future_release_time(release_text, "billing.releaseTime", ctx.now)
    instance_id = insert_instance(ctx.conn, model, count, ctx.now, ctx.options.creating_seconds, release_at)
    return {"instanceId": instance_id}


def describe(ctx: Context, body: Any) -> dict[str, list[dict[str, Any]]]:
    """DescribeTPMResource: the model's instances, narrowed by the optional filters."""
    body = fields.require_object(body, "request body")
    model = fields.required_str(body, "model")
    instance_id = fields.optional_str(body, "instanceId")
    payment_timing = fields.optional_str(body, "paymentTiming")
    status = fields.optional_str(body, "status")
    if payment_timing is not None and payment_timing != PAYMENT_TIMING:
        raise invalid_parameter("paymentTiming", f"must be {PAYMENT_TIMING!r}, got {payment_timing!r}")
    if status is not None and status not in STATUSES:
        raise invalid_parameter("status", f"must be one of {', '.join(STATUSES)}, got {status!r}")
    hide_released = ctx.options.released_visibility == "hidden"
    found = [inst for inst in list_instances(ctx.conn, model) if not (hide_released and inst.released)]
    if instance_id is not None:
        found = [inst for inst in found if inst.instance_id == instance_id]
        if not found and ctx.options.unknown_instance == "error":
            raise resource_not_found(instance_id)
    if status is not None:
        found = [inst for inst in found if inst.status(ctx.now) == status]
    sparse = ctx.options.describe_mode == "sparse"
    return {"instances": [inst.describe_item(ctx.now, sparse) for inst in found]}


def resize(ctx: Context, body: Any) -> bool:
    """ResizeTPMResource: `count` is the total after the resize, not a delta."""
    body = fields.require_object(body, "request body")
    instance_id = fields.required_str(body, "instanceId")
    count = fields.required_count(body, "count")
    _changeable(ctx, instance_id)
    set_count(ctx.conn, instance_id, count)
    return True


def auto_release(ctx: Context, body: Any) -> bool:
    """AutoReleaseTPMResource: a releaseTime sets or moves the release; none cancels it."""
    body = fields.require_object(body, "request body")
    instance_id = fields.required_str(body, "instanceId")
    release_text = fields.optional_str(body, "releaseTime")
    release_at = None
    if release_text is not None:
        release_at = fields.future_release_time(release_text, "releaseTime", ctx.now)
    _changeable(ctx, instance_id)
    set_release_at(ctx.conn, instance_id, release_at)
    return True


def release(ctx: Context, body: Any) -> bool:
    """ReleaseTPMResource: stop the instance now."""
    body = fields.require_object(body, "request body")
    model = fields.required_str(body, "model")
    instance_id = fields.required_str(body, "instanceId")
    instance = _existing(ctx, instance_id)
    if instance.model != model:
        raise invalid_parameter("model", f"instance {instance_id!r} belongs to model {instance.model!r}, not {model!r}")
    if instance.status(ctx.now) == "Stopped":
        if ctx.options.release_again == "ok":
            return True
        raise invalid_instance_status(instance_id, _stopped_reason(instance))
    mark_released(ctx.conn, instance_id, ctx.now)
    return True


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
