"""Checking a `bce-auth-v1` Authorization header the way Baidu's gateway does.

The signature is recomputed with Baidu's own signer (`baidubce.auth.bce_v1_signer.sign`) over
exactly the header values the client said it signed, so anything the real SDK produces is
accepted and any drift in host, path, query or a signed header is caught.
"""

from __future__ import annotations

import calendar
import hmac
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass

from baidubce.auth.bce_credentials import BceCredentials
from baidubce.auth.bce_v1_signer import sign

from .errors import ApiError

#: The documented credentials a sandbox accepts when it is given none.
SANDBOX_ACCESS_KEY = "sandbox-access-key"
SANDBOX_SECRET_KEY = "sandbox-secret-key"

#: How far a client's clock may run ahead of the sandbox's before the request is refused.
CLOCK_SKEW_SECONDS = 15 * 60

_TIMESTAMP = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$")
# Messages Baidu's gateway sends; the qianfan SDK matches the last two to explain the failure.
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


def parse_authorization(value: str | None) -> AuthString:
    """Split the header, refusing anything that is not a well-formed bce-auth-v1 string."""
    if not value:
        raise ApiError(403, "AccessDenied", "the Authorization header is missing")
    parts = value.strip().split("/")
    if len(parts) != 6 or parts[0] != "bce-auth-v1":
        raise ApiError(403, "AccessDenied", "the Authorization header is not bce-auth-v1/...")
    _, access_key, timestamp_text, expiry_text, header_text, signature = parts
    match = _TIMESTAMP.match(timestamp_text)
    if not access_key or not match:
        raise ApiError(403, "AccessDenied", "the Authorization header has a garbled key or time")
    try:
        timestamp = calendar.timegm(tuple(int(g) for g in match.groups()) + (0, 0, 0))
        expiry = int(expiry_text)
    except (ValueError, OverflowError):
        raise ApiError(403, "AccessDenied", "the Authorization header has a garbled time") from None
    if expiry <= 0 or not re.fullmatch(r"[0-9a-f]{64}", signature):
        raise ApiError(403, "AccessDenied", "the Authorization header has a garbled signature")
    names = tuple(name.strip().lower() for name in header_text.split(";") if name.strip())
    return AuthString(access_key, timestamp_text, timestamp, expiry, names, signature)


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
        raise ApiError(403, "InvalidAccessKeyId", _MESSAGE_UNKNOWN_KEY)
    names = auth.signed_headers or _default_signed_headers(headers)
    signed = {name.encode(): headers[name].encode("latin-1", "replace") for name in names if name in headers}
    expected = sign(
        BceCredentials(auth.access_key, secret_key),
        method.encode(),
        path.encode(),
        signed,
        {key.encode(): value.encode() for key, value in query.items()},
        timestamp=auth.timestamp,
        expiration_in_seconds=auth.expiry,
        headers_to_sign={name.encode() for name in auth.signed_headers} or None,
    )
    expected_signature = expected.rsplit(b"/", 1)[-1]
    if not hmac.compare_digest(expected_signature, auth.signature.encode()):
        raise ApiError(403, "SignatureDoesNotMatch", _MESSAGE_BAD_SIGNATURE)
    current = time.time() if now is None else now
    if not auth.timestamp - CLOCK_SKEW_SECONDS <= current <= auth.timestamp + auth.expiry:
        raise ApiError(
            400,
            "RequestExpired",
            f"the request was signed at {auth.timestamp_text} for {auth.expiry} s and has expired",
        )
    return auth.access_key


def _default_signed_headers(headers: Mapping[str, str]) -> tuple[str, ...]:
    """What baidubce signs when the client names no headers: a fixed few plus every x-bce-*."""
    defaults = ("host", "content-md5", "content-length", "content-type")
    return tuple(name for name in headers if name in defaults or name.startswith("x-bce-"))
