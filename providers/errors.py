"""Every way a Qianfan call can fail, mapped once, and rendered as one self-sufficient line.

The `qianfan` SDK's own exceptions carry the request headers (with the access key) and body in
their text, and the provider host shows any exception as a full traceback. So SDK exceptions are
converted here, once, into `QianfanError`, raised `from None` so that the SDK's text never appears
as the "direct cause" in a traceback.

The question that matters most is what a failed PurchaseTPMResource means: only the answers in
`DEFINITIVE_REFUSALS` (Baidu's documented authentication and request-format errors) prove that
nothing was bought. Everything else — 408, 409, 425, 499, any 5xx, an unknown 4xx, no answer — may
have bought a quota, and the purchase is recovered by listing, never retried blindly.
"""

from __future__ import annotations

import ast
import json
import re
import socket
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from .secrets import HasSecrets, redact


class Kind(StrEnum):
    """How a failure is handled, independent of Baidu's exact codes (many are undocumented)."""

    AUTH = "auth"  # credentials, signature, permission: retrying cannot help
    THROTTLED = "throttled"  # 429 or a rate-limit code: refused at the gate, retry later
    SERVER = "server"  # 5xx: may or may not have happened
    UNSETTLED = "unsettled"  # 408, 409, 425, 499: interrupted or conflicting, may have happened
    NO_ANSWER = "no_answer"  # timeout / connection dropped: may or may not have happened
    BAD_ANSWER = "bad_answer"  # 2xx that is not Qianfan's envelope: may or may not have happened
    NOT_FOUND = "not_found"  # the instance does not exist (404 or a NotFound-like code)
    REJECTED = "rejected"  # any other 4xx: refused, for a reason Baidu does not document
    CONFIG = "config"  # nothing was sent: the provider is not set up to call Qianfan
    NOT_SENT = "not_sent"  # nothing was sent: the operation ran out of time first


#: How the message of a request that never reached the endpoint begins: no connection was made
#: (refused, no such host, no answer to the connection attempt). The Kind stays NO_ANSWER.
NOT_CONNECTED = "could not connect"


#: What to do about missing or refused credentials (a hint, written here once).
CREDENTIALS_HINT = (
    "set them with `pulumi config set --secret qianfan:accessKey <AK>` and "
    "`pulumi config set --secret qianfan:secretKey <SK>`, or export QIANFAN_ACCESS_KEY and "
    "QIANFAN_SECRET_KEY"
)

#: Kinds after which an idempotent action (everything but Purchase) is sent again.
RETRYABLE = frozenset({Kind.THROTTLED, Kind.SERVER, Kind.UNSETTLED, Kind.NO_ANSWER, Kind.BAD_ANSWER})

#: (HTTP status, code) answers that prove a request was refused before anything happened: Baidu's
#: documented common errors for authentication and request format. Nothing else does.
DEFINITIVE_REFUSALS = frozenset(
    {
        (403, "AccessDenied"),
        (403, "InvalidAccessKeyId"),
        (400, "SignatureDoesNotMatch"),
        (403, "SignatureDoesNotMatch"),
        (400, "InvalidHTTPAuthHeader"),
        (400, "RequestExpired"),
        (400, "MalformedJSON"),
        (400, "InappropriateJSON"),
    }
)

_AUTH_CODES = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "RequestExpired",
    "InvalidHTTPAuthHeader",
    "InvalidAuthorization",
    "Unauthorized",
    "IamAuthFailed",
}
_UNSETTLED_STATUSES = {408, 409, 425, 499}
_RATE_LIMIT_HINTS = ("ratelimit", "rate_limit", "throttl", "toomanyrequests", "qpslimit", "limitexceeded")
_NOT_FOUND_HINTS = ("notfound", "not_found", "notexist", "not_exist", "nosuch")


def classify(status: int | None, code: str | None) -> Kind:
    """Decide the Kind from HTTP status and Qianfan code, tolerating codes nobody documented."""
    squashed = (code or "").replace("-", "").replace(".", "").lower()
    if code in _AUTH_CODES or status == 401:
        return Kind.AUTH
    if status == 429 or any(h in squashed for h in _RATE_LIMIT_HINTS):
        return Kind.THROTTLED
    if status is not None and status >= 500:
        return Kind.SERVER
    if status in _UNSETTLED_STATUSES:
        return Kind.UNSETTLED
    if status == 404 or any(h in squashed for h in _NOT_FOUND_HINTS):
        return Kind.NOT_FOUND
    if status == 403:
        return Kind.AUTH
    return Kind.REJECTED


_MESSAGE_LIMIT = 500


def _one_line(text: str | None) -> str | None:
    return None if text is None else " ".join(text.split()) or None


def _shorten(text: str, limit: int = _MESSAGE_LIMIT) -> str:
    """A server's text, cut so that a misbehaving endpoint cannot flood the error line."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def _hint(kind: Kind, code: str | None) -> str:
    if code == "RequestExpired":
        return "the request's signature was outside its 300 s validity: check this machine's clock"
    if kind is Kind.AUTH:
        return (
            "check the access key / secret key pair (" + CREDENTIALS_HINT + "); the key needs "
            "QianfanFullControlAccessPolicy or QianfanServiceOperateAccessPolicy"
        )
    if kind is Kind.THROTTLED:
        return "Qianfan is throttling this account; raise qianfan:timeoutSeconds to wait longer"
    return ""


class QianfanError(Exception):
    """A failed Qianfan action; `str()` is one line with everything a user needs to act.

    `code`, `message` and `request_id` may come from the answer (see `redacted`); `hint` is this
    provider's own advice and never carries text from an answer or a key.
    """

    def __init__(
        self,
        action: str,
        kind: Kind,
        *,
        status: int | None = None,
        code: str | None = None,
        message: str | None = None,
        request_id: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.action = action
        self.kind = kind
        self.status = status
        # Any field may carry line breaks from a misbehaving endpoint; the error stays one line.
        self.code = _one_line(code)
        self.message = " ".join((message or "").split())
        self.request_id = _one_line(request_id)
        self.hint = _hint(kind, code) if hint is None else hint
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [f"{self.action} failed"]
        if self.status is not None:
            parts.append(f"HTTP {self.status}" + (f" {_shorten(self.code, 100)}" if self.code else ""))
        elif self.code:
            parts.append(_shorten(self.code, 100))
        if self.message:
            parts.append(_shorten(self.message))
        text = ": ".join(parts)
        if self.request_id:
            text += f" (requestId {_shorten(self.request_id, 100)})"
        if self.hint:
            text += f" — {self.hint}"
        return text

    def replace(self, **changes: Any) -> QianfanError:
        """The same failure with some fields changed (a hint added, text scrubbed)."""
        fields = {
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "request_id": self.request_id,
            "hint": self.hint,
            **changes,
        }
        return QianfanError(self.action, self.kind, **fields)

    def redacted(self, settings: HasSecrets) -> QianfanError:
        """The same failure with every configured secret scrubbed from every field the answer filled.

        A misbehaving endpoint may echo the Authorization header into any field of its answer —
        the code and the requestId included — so none of them is trusted, whatever a key's length.
        The whole fields are scrubbed, before any is cut short for display, so a cut can never leave
        part of a key behind. The hint is not scrubbed: it is this provider's own advice, written
        from constants and numbers, never from the answer or a key, and scrubbing it would turn
        the placeholder `<AK>` into `<***>` when the access key happens to be `AK`.
        """
        fields = {"code": self.code, "message": self.message, "request_id": self.request_id}
        scrubbed = {name: redact(value, settings) if value else value for name, value in fields.items()}
        return self if scrubbed == fields else self.replace(**scrubbed)

    @property
    def not_connected(self) -> str | None:
        """Why no connection to the endpoint could be made (so nothing was sent), or None."""
        prefix = f"{NOT_CONNECTED} ("
        if self.kind is Kind.NO_ANSWER and self.message.startswith(prefix) and self.message.endswith(")"):
            return self.message[len(prefix) : -1]
        return None

    @property
    def retryable(self) -> bool:
        """Safe to send again for an idempotent action (everything but Purchase)."""
        return self.kind in RETRYABLE

    @property
    def definitive_refusal(self) -> bool:
        """True only when the answer proves nothing happened (see DEFINITIVE_REFUSALS)."""
        return self.kind in (Kind.CONFIG, Kind.NOT_SENT) or (self.status, self.code) in DEFINITIVE_REFUSALS


class ProviderError(Exception):
    """A lifecycle failure that is not one HTTP call: a change that did not stick, a bad adoption."""


_RESPONSE_BODY = re.compile(r"response body: ('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")", re.S)


def _body_from_sdk_text(text: str) -> Mapping[str, Any]:
    """The SDK keeps the response body only inside its message text; fish it out, or give {}."""
    match = _RESPONSE_BODY.search(text)
    if not match:
        return {}
    try:
        raw = ast.literal_eval(match.group(1))
        body = json.loads(raw)
    except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError):
        return {}
    return body if isinstance(body, dict) else {}


def _text(value: Any) -> str | None:
    """A field of Qianfan's error body as text, whatever type the server put there."""
    return None if value is None or value == "" else str(value)


def from_sdk_exception(action: str, exc: BaseException) -> QianfanError:
    """Convert whatever the SDK or `requests` raised into a QianfanError, discarding SDK text.

    Only Qianfan's own fields (code, message, requestId) are kept: the SDK's text also holds the
    request headers (access key) and request body.
    """
    import requests  # a dependency of qianfan; only imported once a call has been made
    from qianfan import errors as sdk_errors

    if isinstance(exc, sdk_errors.RequestError):
        status = getattr(exc, "status_code", None)
        headers = getattr(exc, "headers", None) or {}
        body = _body_from_sdk_text(str(exc))
        if status is None:  # invalid JSON in a 2xx answer, raised without a status
            return QianfanError(action, Kind.BAD_ANSWER, message="Qianfan answered with something that is not JSON")
        code = _text(body.get("code")) or _text(headers.get("X-Bce-Error-Code"))
        message = _text(body.get("message")) or _text(headers.get("X-Bce-Error-Message"))
        request_id = _text(body.get("requestId")) or _text(headers.get("X-Bce-Request-Id"))
        return QianfanError(
            action, classify(status, code), status=status, code=code, message=message, request_id=request_id
        )
    if isinstance(exc, sdk_errors.APIError):
        code = _text(getattr(exc, "error_code", None))
        return QianfanError(
            action,
            classify(200, code),
            status=200,
            code=code,
            message=_text(getattr(exc, "error_msg", None)),
            request_id=_text(getattr(exc, "req_id", None)),
        )
    unconnected = _why_not_connected(exc, requests.exceptions)
    if unconnected:
        return QianfanError(action, Kind.NO_ANSWER, message=f"{NOT_CONNECTED} ({unconnected})")
    if isinstance(exc, requests.exceptions.Timeout):
        return QianfanError(action, Kind.NO_ANSWER, message="no answer before the request timeout")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return QianfanError(action, Kind.NO_ANSWER, message="the connection failed or was dropped before an answer")
    if isinstance(exc, requests.exceptions.RequestException):
        return QianfanError(action, Kind.NO_ANSWER, message=f"HTTP request failed ({type(exc).__name__})")
    return QianfanError(action, Kind.BAD_ANSWER, message=f"unexpected {type(exc).__name__} from the qianfan SDK")


def _why_not_connected(exc: BaseException, errors: Any) -> str | None:
    """Why no connection to the endpoint was made at all, when `requests` says so; else None.

    `requests` wraps the socket's error two or three levels deep (ConnectionError → MaxRetryError →
    NewConnectionError → ConnectionRefusedError), so the chain is walked, a bounded number of steps.
    """
    if isinstance(exc, errors.ProxyError):
        return "the HTTP proxy could not be used"
    if isinstance(exc, errors.ConnectTimeout):
        return "the connection attempt timed out"
    if not isinstance(exc, errors.ConnectionError):
        return None
    pending: list[BaseException] = [exc]
    seen: set[int] = set()
    while pending and len(seen) < 32:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return "connection refused"
        if isinstance(current, socket.gaierror):
            return "host name not found"
        linked = (*current.args, getattr(current, "reason", None), current.__cause__, current.__context__)
        pending.extend(link for link in linked if isinstance(link, BaseException))
    return None
