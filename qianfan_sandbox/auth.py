"""Checking a `bce-auth-v1` Authorization header the way Baidu's gateway does.

The signature is recomputed with Baidu's own signer (`baidubce.auth.bce_v1_signer.sign`) over
exactly the header values the client said it signed, so anything the real SDK produces is
accepted and any drift in host, path, query or a signed header is caught.
"""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from baidubce.auth.bce_credentials import BceCredentials
from baidubce.auth.bce_v1_signer import sign

from .errors import ApiError

#: The documented credentials a sandbox accepts when it is given none.
SANDBOX_ACCESS_KEY = "sandbox-access-key"
SANDBOX_SECRET_KEY = "sandbox-secret-key"

#: How far a client's clock may run ahead of the sandbox's before the request is refused (the
#: sandbox's choice; Baidu documents RequestExpired but not its window).
CLOCK_SKEW_SECONDS = 15 * 60

_TIMESTAMP = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})Z")
_EXPIRY = re.compile(r"[1-9][0-9]{0,9}")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
# The messages Baidu's gateway sends: the qianfan SDK compares X-Bce-Error-Message with exactly
# these two to explain a failure (qianfan/resources/requestor/base.py).
_MESSAGE_UNKNOWN_KEY = "NotFound, cause: Could not find credential."
_MESSAGE_BAD_SIGNATURE = "SignatureDoesNotMatch, cause: Fail to authn user: Signature does not match"


@dataclass(frozen=True)
class AuthString:
    """The parts of `bce-auth-v1/{ak}/{timestamp}/{expiry}/{signed headers}/{signature}`."""

    access_key: str
    timestamp_text: str
    timestamp: int
    expiry: int
    signed_headers: tuple[str, ...]
    signature: str


def _malformed(problem: str) -> ApiError:
    return ApiError("InvalidHTTPAuthHeader", f"the Authorization header {problem}")


def parse_authorization(value: str | None) -> AuthString:
    """Split the header, refusing anything that is not a well-formed bce-auth-v1 string."""
    if value is None:
        raise ApiError("AccessDenied", "the request has no Authorization header")
    parts = value.strip().split("/")
    if len(parts) != 6 or parts[0] != "bce-auth-v1":
        raise _malformed("is not bce-auth-v1/{accessKey}/{timestamp}/{expiry}/{signedHeaders}/{signature}")
    _, access_key, timestamp_text, expiry_text, header_text, signature = parts
    match = _TIMESTAMP.fullmatch(timestamp_text)
    if not access_key:
        raise _malformed("has no access key")
    if match is None:
        raise _malformed("has a timestamp that is not YYYY-MM-DDTHH:MM:SSZ")
    try:
        year, month, day, hour, minute, second = (int(group) for group in match.groups())
        moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        raise _malformed("has a timestamp that is not a real date and time") from None
    if not _EXPIRY.fullmatch(expiry_text):
        raise _malformed("has an expiry that is not a whole number of seconds from 1 to 9999999999")
    if not _SIGNATURE.fullmatch(signature):
        raise _malformed("has a signature that is not 64 lower-case hex digits")
    names = tuple(name.strip().lower() for name in header_text.split(";") if name.strip())
    return AuthString(access_key, timestamp_text, int(moment.timestamp()), int(expiry_text), names, signature)


def verify_request(
    authorization: str | None,
    method: str,
    path: str,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    credentials: Mapping[str, str],
    now: float | None = None,
) -> str:
    """Return the access key of a correctly signed, current request; raise ApiError otherwise.

    `headers` maps lower-case names to values as received; `now` is real time (the sandbox
    clock offset deliberately does not apply, or fast-forwarding would break every signature).
    """
    auth = parse_authorization(authorization)
    secret_key = credentials.get(auth.access_key)
    if secret_key is None:
        raise ApiError("InvalidAccessKeyId", _MESSAGE_UNKNOWN_KEY)
    names = auth.signed_headers or _default_signed_headers(headers)
    signed = {name.encode(): headers[name].encode("latin-1", "replace") for name in names if name in headers}
    expected = sign(
        BceCredentials(auth.access_key, secret_key),
        method.encode(),
        path.encode("utf-8", "replace"),
        signed,
        {key.encode("utf-8", "replace"): value.encode("utf-8", "replace") for key, value in query.items()},
        timestamp=auth.timestamp,
        expiration_in_seconds=auth.expiry,
        headers_to_sign={name.encode() for name in auth.signed_headers} or None,
    )
    expected_signature = expected.rsplit(b"/", 1)[-1]
    if not hmac.compare_digest(expected_signature, auth.signature.encode()):
        raise ApiError("SignatureDoesNotMatch", _MESSAGE_BAD_SIGNATURE)
    current = time.time() if now is None else now
    if not auth.timestamp - CLOCK_SKEW_SECONDS <= current <= auth.timestamp + auth.expiry:
        raise ApiError(
            "RequestExpired",
            f"the request was signed at {auth.timestamp_text} for {auth.expiry} s and has expired",
        )
    return auth.access_key


def _default_signed_headers(headers: Mapping[str, str]) -> tuple[str, ...]:
    """What baidubce signs when the client names no headers: a fixed few plus every x-bce-*."""
    defaults = ("host", "content-md5", "content-length", "content-type")
    return tuple(name for name in headers if name in defaults or name.startswith("x-bce-"))
