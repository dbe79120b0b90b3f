"""A thin Qianfan TPM client: one function per console action, errors mapped in one place.

Purchase is sent exactly once per call (it has no idempotency token, so a blind retry can buy
twice); the other four actions are idempotent and are retried on throttling, 5xx and dropped
connections with backoff, inside the operation's deadline. A write answered `false` is a failure
that names the instance. Every answer's `Date` header feeds `server_clock` (see clock.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .clock import REAL, Clock, ServerClock
from .deadline import Deadline, backoff
from .errors import Kind, QianfanError, classify, from_sdk_exception
from .fields import PAYMENT_TIMING
from .sdk import connect
from .secrets import redact
from .settings import Settings

ROUTE = "/v2/charge"
PURCHASE = "PurchaseTPMResource"
DESCRIBE = "DescribeTPMResource"
RESIZE = "ResizeTPMResource"
AUTO_RELEASE = "AutoReleaseTPMResource"
RELEASE = "ReleaseTPMResource"

#: Upper bound of one HTTP exchange; the operation deadline can make it shorter.
REQUEST_TIMEOUT_SECONDS = 60.0
#: The shortest purchase request worth sending; with less time left it is not sent at all.
MIN_PURCHASE_REQUEST_SECONDS = 1.0

T = TypeVar("T")


@dataclass(frozen=True)
class Answer:
    """A successful answer: its `result`, and Qianfan's requestId for the journal."""

    result: Any
    request_id: str | None


@dataclass(frozen=True)
class Receipt:
    """What a purchase answered, and when (set by whoever marked the purchase as a write)."""

    instance_id: str
    request_id: str | None
    answered: float | None = None


class QianfanClient:
    """Calls Qianfan's TPM actions through the `qianfan` SDK; thread-safe, cheap to share."""

    def __init__(self, settings: Settings, clock: Clock = REAL) -> None:
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._call_action: Callable[..., Any] | None = None
        self.server_clock = ServerClock(clock)

    # -- the five actions -------------------------------------------------------------------
    def purchase(
        self, model: str, count: int, release_time: str | None, deadline: Deadline, *, leave: float = 0.0
    ) -> Receipt:
        """Buy `count` units; one attempt only. The request may use the deadline's time except
        `leave` seconds, which the caller keeps for recovering a lost answer."""
        timeout = min(REQUEST_TIMEOUT_SECONDS, deadline.remaining() - leave)
        if timeout < MIN_PURCHASE_REQUEST_SECONDS:
            raise QianfanError(
                PURCHASE,
                Kind.NOT_SENT,
                message=f"not sent: {deadline.remaining():.1f}s left, and recovering a lost answer needs {leave:.1f}s",
                hint=f"raise qianfan:timeoutSeconds (now {self._settings.timeout_seconds:g}s)",
            )
        billing: dict[str, Any] = {"paymentTiming": PAYMENT_TIMING}
        if release_time:
            billing["releaseTime"] = release_time
        body = {"model": model, "billing": billing, "purchaseCount": count}
        answer = self._send(PURCHASE, body, deadline, timeout=timeout)
        result = answer.result
        instance_id = result.get("instanceId") if isinstance(result, dict) else None
        if not instance_id or not isinstance(instance_id, str):
            raise QianfanError(
                PURCHASE, Kind.BAD_ANSWER, message="the answer carried no instanceId", request_id=answer.request_id
            )
        return Receipt(instance_id, answer.request_id)

    def describe(self, model: str, deadline: Deadline, *, retry: bool = True, **extra: Any) -> Any:
        """The raw `result` of DescribeTPMResource (one attempt unless `retry`); see
        `instances.parse_instances` for its shapes."""
        body: dict[str, Any] = {"model": model, **extra}
        if not retry:
            return self._send(DESCRIBE, body, deadline).result
        return self._call_with_retry(DESCRIBE, body, deadline).result

    def resize(self, instance_id: str, count: int, deadline: Deadline) -> str | None:
        """Set the unit count (the total after the resize, not a delta); returns the requestId."""
        return self._write(RESIZE, instance_id, {"instanceId": instance_id, "count": count}, deadline)

    def auto_release(self, instance_id: str, release_time: str | None, deadline: Deadline) -> str | None:
        """Schedule or move the release; `None` omits `releaseTime`, which cancels it."""
        body: dict[str, Any] = {"instanceId": instance_id}
        if release_time:
            body["releaseTime"] = release_time
        return self._write(AUTO_RELEASE, instance_id, body, deadline)

    def release(self, model: str, instance_id: str, deadline: Deadline) -> str | None:
        """End the hourly post-paid quota now."""
        return self._write(RELEASE, instance_id, {"model": model, "instanceId": instance_id}, deadline)

    # -- plumbing ------------------------------------------------------------------------------
    def _write(self, action: str, instance_id: str, body: dict[str, Any], deadline: Deadline) -> str | None:
        """An idempotent write; Baidu answers `true`, and an explicit `false` changed nothing."""
        answer = self._call_with_retry(action, body, deadline)
        if answer.result is False:
            raise QianfanError(
                action,
                Kind.REJECTED,
                message=f"Qianfan answered false for {instance_id}: the change was not made",
                request_id=answer.request_id,
            ).redacted(self._settings)
        return answer.request_id

    def _call_with_retry(self, action: str, body: dict[str, Any], deadline: Deadline) -> Answer:
        return self.with_retries(action, lambda: self._send(action, body, deadline), deadline)

    def with_retries(self, action: str, attempt: Callable[[], T], deadline: Deadline) -> T:
        """Run `attempt` until it succeeds, retrying throttling, 5xx and lost answers with backoff
        inside the deadline; the last failure names the attempts and qianfan:timeoutSeconds."""
        tries = 0
        started = deadline.clock.monotonic()
        while True:
            try:
                return attempt()
            except QianfanError as err:
                if not err.retryable:
                    raise
                delay = backoff(tries)
                tries += 1
                if not deadline.sleep(delay):
                    waited = deadline.clock.monotonic() - started
                    raise err.replace(
                        hint=(
                            f"gave up after {tries} attempt(s) in {waited:.1f}s, the limit set by "
                            f"qianfan:timeoutSeconds ({self._settings.timeout_seconds:g}s)"
                        )
                    ) from None

    def _send(self, action: str, body: dict[str, Any], deadline: Deadline, *, timeout: float | None = None) -> Answer:
        if deadline.expired:
            raise QianfanError(
                action,
                Kind.NOT_SENT,
                message="not sent: the operation ran out of time",
                hint=f"raise qianfan:timeoutSeconds (now {self._settings.timeout_seconds:g}s)",
            )
        call_action = self._sdk(action)
        if timeout is None:
            timeout = max(1.0, min(REQUEST_TIMEOUT_SECONDS, deadline.remaining()))
        sent = self._clock.wall()
        try:
            response = call_action(ROUTE, action, body, retry_count=1, request_timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - every SDK failure is mapped, none escapes raw
            raise from_sdk_exception(action, exc).redacted(self._settings) from None
        headers = getattr(response, "headers", None)
        if isinstance(headers, dict):
            self.server_clock.observe(sent, self._clock.wall(), headers.get("Date") or headers.get("date"))
        answer = getattr(response, "body", None)
        if isinstance(answer, dict) and "result" in answer:
            request_id = answer.get("requestId")
            # Kept in the journal: scrubbed like every text a misbehaving endpoint could fill.
            kept = redact(" ".join(request_id.split())[:100], self._settings) if isinstance(request_id, str) else ""
            return Answer(answer["result"], kept or None)
        if isinstance(answer, dict) and answer.get("code"):
            status = getattr(response, "code", None)
            code = str(answer["code"])
            known = status if isinstance(status, int) else None
            raise QianfanError(
                action,
                classify(200 if known is None else known, code),
                status=known,
                code=code,
                message=str(answer.get("message", "")),
                request_id=str(answer.get("requestId") or "") or None,
            ).redacted(self._settings)
        raise QianfanError(action, Kind.BAD_ANSWER, message="the answer has no 'result'")

    def _sdk(self, action: str) -> Callable[..., Any]:
        """Resolve credentials and endpoint (and start the sandbox) on the first call only."""
        if self._call_action is not None:
            return self._call_action
        with self._lock:
            if self._call_action is None:
                self._call_action = connect(self._settings, action)
        return self._call_action
