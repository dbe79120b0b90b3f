"""Every way a Qianfan call can fail, as one readable line.

The `qianfan` SDK's own exceptions carry the request headers (with the access key) and body in
their text, and the provider host shows any exception as a full traceback. So SDK exceptions are
converted here, once, into `QianfanError`, raised `from None` so that the SDK's text never appears
as the "direct cause" in a traceback.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from .settings import CREDENTIALS_HINT


class Kind(StrEnum):
    """How a failure should be handled, independent of Baidu's exact codes (many are undocumented)."""

    AUTH = "auth"  # credentials, signature, permission: retrying cannot help
    THROTTLED = "throttled"  # 429 or a rate-limit code: nothing happened, retry later
    SERVER = "server"  # 5xx: may or may not have happened
    NO_ANSWER = "no_answer"  # timeout / connection dropped: may or may not have happened
    BAD_ANSWER = "bad_answer"  # 2xx that is not Qianfan's envelope: may or may not have happened
    NOT_FOUND = "not_found"  # the instance does not exist (404 or a NotFound-like code)
    REJECTED = "rejected"  # any other 4xx: the request was refused, nothing happened
    CONFIG = "config"  # nothing was sent: the provider is not set up to call Qianfan


_AUTH_CODES = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "RequestExpired",
    "InvalidAuthorization",
    "Unauthorized",
    "IamAuthFailed",
}
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
    if status == 404 or any(h in squashed for h in _NOT_FOUND_HINTS):
        return Kind.NOT_FOUND
    if status == 403:
        return Kind.AUTH
    return Kind.REJECTED


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
    """A failed Qianfan action; `str()` is one line with everything a user needs to act."""

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
        self.code = code
        self.message = " ".join((message or "").split())
        self.request_id = request_id
        self.hint = _hint(kind, code) if hint is None else hint
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [f"{self.action} failed"]
        if self.status is not None:
            parts.append(f"HTTP {self.status}" + (f" {self.code}" if self.code else ""))
        elif self.code:
            parts.append(self.code)
        if self.message:
            parts.append(self.message)
        text = ": ".join(parts)
        if self.request_id:
            text += f" (requestId {self.request_id})"
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

    @property
    def retryable(self) -> bool:
        """Safe to retry for an idempotent action (everything but Purchase)."""
        return self.kind in (Kind.THROTTLED, Kind.SERVER, Kind.NO_ANSWER, Kind.BAD_ANSWER)

    @property
    def maybe_applied(self) -> bool:
        """True when the server may have carried the request out although it did not say so."""
        return self.kind in (Kind.SERVER, Kind.NO_ANSWER, Kind.BAD_ANSWER)


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
    except (ValueError, SyntaxError):
        return {}
    return body if isinstance(body, dict) else {}


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
        code = body.get("code") or headers.get("X-Bce-Error-Code")
        message = body.get("message") or headers.get("X-Bce-Error-Message")
        request_id = body.get("requestId") or headers.get("X-Bce-Request-Id")
        return QianfanError(
            action, classify(status, code), status=status, code=code, message=message, request_id=request_id
        )
    if isinstance(exc, sdk_errors.APIError):
        code = str(getattr(exc, "error_code", "") or "")
        return QianfanError(
            action,
            classify(200, code),
            status=200,
            code=code,
            message=getattr(exc, "error_msg", None),
            request_id=getattr(exc, "req_id", None),
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return QianfanError(action, Kind.NO_ANSWER, message="no answer before the request timeout")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return QianfanError(action, Kind.NO_ANSWER, message="the connection failed or was dropped before an answer")
    if isinstance(exc, requests.exceptions.RequestException):
        return QianfanError(action, Kind.NO_ANSWER, message=f"HTTP request failed ({type(exc).__name__})")
    return QianfanError(action, Kind.BAD_ANSWER, message=f"unexpected {type(exc).__name__} from the qianfan SDK")
