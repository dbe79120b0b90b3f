"""Every error the sandbox can answer, with whether Baidu documents it, and the two exception types.

`SandboxError` is for the operator (the sandbox itself cannot run); `ApiError` is for the client
(an answer in Qianfan's error shape). Keeping them apart stops an operator problem from ever
being dressed up as an API answer, and vice versa.

`CATALOGUE` is the one place an error code is defined: `ApiError` takes its HTTP status from
here, and a test checks that docs/sandbox.md's table lists exactly these codes, statuses and the
"documented by Baidu / sandbox's choice" column.
"""

from __future__ import annotations

from dataclasses import dataclass

#: In Baidu Cloud's common error codes (e.g. cloud.baidu.com/doc/Reference/s/Bjz3uz3qj) or
#: Qianfan's error-code page, which lists SignatureDoesNotMatch as HTTP 400.
DOCUMENTED = "documented by Baidu"
CHOSEN = "sandbox's choice"


@dataclass(frozen=True)
class Code:
    """One error code: its HTTP status, when the sandbox answers it, and who decided that."""

    code: str
    status: int
    when: str
    origin: str
    #: Authentication failures also carry `X-Bce-Error-Code` / `X-Bce-Error-Message` headers.
    auth: bool = False


_CODES = (
    Code("AccessDenied", 403, "the request has no Authorization header", CHOSEN, auth=True),
    Code(
        "InvalidHTTPAuthHeader",
        400,
        "the Authorization header is not a well-formed bce-auth-v1 string",
        DOCUMENTED,
        auth=True,
    ),
    Code("InvalidAccessKeyId", 403, "the access key is not one the sandbox was given", DOCUMENTED, auth=True),
    Code("SignatureDoesNotMatch", 400, "the signature is not the one the secret key gives", DOCUMENTED, auth=True),
    Code(
        "RequestExpired",
        400,
        "the signature's timestamp plus expiry has passed, or the timestamp is over 15 minutes ahead",
        DOCUMENTED,
        auth=True,
    ),
    Code(
        "MalformedJSON",
        400,
        "the body is not JSON (empty, cut short, NaN, nested over 200 deep, a lone surrogate)",
        DOCUMENTED,
    ),
    Code(
        "InappropriateJSON",
        400,
        "the body is not an object, or a field is missing or of the wrong JSON type",
        DOCUMENTED,
    ),
    Code(
        "InvalidHTTPRequest",
        400,
        "the body is not UTF-8 (documented); a malformed request line or header, "
        "a body shorter than its Content-Length (chosen)",
        DOCUMENTED,
    ),
    Code("InvalidURI", 400, "the query repeats a parameter or has over 20", DOCUMENTED),
    Code("InternalError", 500, "a sandbox bug, or an injected `error` fault", DOCUMENTED),
    Code("NotFound", 404, "a path other than /v2/charge", CHOSEN),
    Code("MethodNotAllowed", 405, "a method other than POST", CHOSEN),
    Code("InvalidAction", 400, "an Action that is not one of the five", CHOSEN),
    Code("InvalidParameter", 400, "a field of the right type with a value Qianfan refuses (names the field)", CHOSEN),
    Code(
        "ResourceNotFound",
        404,
        "an instanceId the account never had (Resize, AutoRelease, Release; Describe with unknown_instance=error)",
        CHOSEN,
    ),
    Code("InvalidInstanceStatus", 400, "Resize, AutoRelease or Release of a Stopped instance", CHOSEN),
    Code(
        "RequestTimeout",
        408,
        "the request line, headers and body did not all arrive within the request timeout",
        CHOSEN,
    ),
    Code("LengthRequired", 411, "a Transfer-Encoding body (only Content-Length bodies are read)", CHOSEN),
    Code("RequestEntityTooLarge", 413, "Content-Length over 64 KiB (the body is not read)", CHOSEN),
    Code("URITooLong", 414, "a request line over 8 KiB", CHOSEN),
    Code(
        "RequestHeaderFieldsTooLarge", 431, "a header line over 8 KiB, headers over 64 KiB or over 100 of them", CHOSEN
    ),
    Code("HTTPVersionNotSupported", 505, "a protocol other than HTTP/1.0 or HTTP/1.1", CHOSEN),
    Code("RateLimitExceeded", 429, "an injected `throttle` fault (Baidu documents no throttling answer)", CHOSEN),
    Code("BadGateway", 502, "an injected `error` fault with status 502", CHOSEN),
    Code(
        "ServiceUnavailable",
        503,
        "an injected `error` fault with status 503; more connections at once than the sandbox serves",
        CHOSEN,
    ),
    Code("GatewayTimeout", 504, "an injected `error` fault with status 504", CHOSEN),
    Code("BadRequest", 400, "an injected `error` fault with any other 4xx status (answered with that status)", CHOSEN),
)

CATALOGUE: dict[str, Code] = {entry.code: entry for entry in _CODES}


class SandboxError(Exception):
    """The sandbox cannot use its database or its port; the message is one line naming which."""


class ApiError(Exception):
    """An error answer in Qianfan's shape: HTTP status, `code` and `message`."""

    def __init__(self, code: str, message: str, *, status: int | None = None) -> None:
        entry = CATALOGUE[code]
        self.code = code
        self.status = entry.status if status is None else status
        self.message = message
        self.auth = entry.auth
        super().__init__(f"{self.status} {code}: {message}")


def echo(value: object) -> str:
    """A client's value quoted for a message, cut short so no answer grows with the request."""
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**30 else "a number of over 30 digits"
    return text if len(text) <= 64 else text[:60] + "…" + text[-1]


def invalid_parameter(field: str, problem: str) -> ApiError:
    """A field has the right type but a value Qianfan refuses; the message names the field."""
    return ApiError("InvalidParameter", f"{field}: {problem}")


def resource_not_found(instance_id: str) -> ApiError:
    """The instance id is not one this account ever had."""
    return ApiError("ResourceNotFound", f"instanceId {echo(instance_id)} does not exist")


def invalid_instance_status(instance_id: str, state: str) -> ApiError:
    """The instance exists but its state forbids the change (released or expired)."""
    return ApiError("InvalidInstanceStatus", f"instance {instance_id!r} is {state} and cannot be changed")
