"""Every SDK failure becomes one readable line (action, status, code, message, requestId, hint).

The RequestError cases are produced by the real SDK against the sandbox (see test_secrets and
test_failure_semantics); these cover the shapes the sandbox cannot produce: a 2xx answer carrying
`error_code` (APIError), raw `requests` exceptions, and Baidu's undocumented codes.
"""

from __future__ import annotations

import json
import logging
import socket

import pytest
import requests

from providers.errors import DEFINITIVE_REFUSALS, Kind, QianfanError, classify, from_sdk_exception
from providers.settings import Secret, Settings

logging.getLogger("qianfan").disabled = True
from qianfan import errors as sdk_errors  # noqa: E402


def test_api_error_in_a_2xx_answer() -> None:
    err = from_sdk_exception("DescribeTPMResource", sdk_errors.APIError(336501, "rate limit reached", "log-42"))
    assert str(err) == "DescribeTPMResource failed: HTTP 200 336501: rate limit reached (requestId log-42)"
    assert err.kind is Kind.REJECTED and not err.retryable


@pytest.mark.parametrize(
    "exc, kind, text",
    [
        (
            requests.exceptions.ReadTimeout("HTTPConnectionPool(host='x'): Read timed out"),
            Kind.NO_ANSWER,
            "no answer before the request timeout",
        ),
        (requests.exceptions.ConnectionError("Connection aborted"), Kind.NO_ANSWER, "connection failed or was dropped"),
        (requests.exceptions.TooManyRedirects("loop"), Kind.NO_ANSWER, "HTTP request failed (TooManyRedirects)"),
        (ValueError("something odd"), Kind.BAD_ANSWER, "unexpected ValueError"),
    ],
)
def test_transport_failures(exc: Exception, kind: Kind, text: str) -> None:
    err = from_sdk_exception("PurchaseTPMResource", exc)
    assert err.kind is kind and not err.definitive_refusal
    assert text in str(err) and "\n" not in str(err)
    assert "HTTPConnectionPool" not in str(err)


def unused_port() -> int:
    """A port on 127.0.0.1 nothing listens on: bound once to get it, then closed."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_a_refused_connection_is_named_as_such() -> None:
    """What `requests` really raises for a port nothing listens on (three levels of wrapping)."""
    with pytest.raises(requests.exceptions.ConnectionError) as caught:
        requests.get(f"http://127.0.0.1:{unused_port()}/v2/charge", timeout=5)
    err = from_sdk_exception("DescribeTPMResource", caught.value)
    assert str(err) == "DescribeTPMResource failed: could not connect (connection refused)"
    assert err.kind is Kind.NO_ANSWER and err.retryable and err.not_connected == "connection refused"
    assert err.replace(hint="later").not_connected == "connection refused"


@pytest.mark.parametrize(
    "exc, reason",
    [
        (
            requests.exceptions.ConnectionError(OSError(socket.gaierror(-2, "Name or service not known"))),
            "host name not found",
        ),
        (requests.exceptions.ConnectTimeout("connect timed out"), "the connection attempt timed out"),
        (requests.exceptions.ProxyError("Unable to connect to proxy"), "the HTTP proxy could not be used"),
        (requests.exceptions.ConnectionError("Connection aborted"), None),
        (requests.exceptions.ReadTimeout("Read timed out"), None),
    ],
)
def test_only_a_connection_never_made_counts_as_not_connected(exc: Exception, reason: str | None) -> None:
    err = from_sdk_exception("DescribeTPMResource", exc)
    assert err.kind is Kind.NO_ANSWER and err.not_connected == reason
    assert QianfanError("DescribeTPMResource", Kind.SERVER, message="could not connect (x)").not_connected is None


def test_request_error_keeps_qianfan_fields_and_drops_the_sdk_text() -> None:
    sdk_text = (
        "http request url http://127.0.0.1:1/v2/charge?Action=ResizeTPMResource failed with http status code 400\n"
        "request headers: {'Authorization': 'bce-auth-v1/AKsecret/2026-11-26T00:00:00Z/300/host/abc'}\n"
        'request body: \'{"instanceId": "tpm-x"}\'\n'
        "response headers: {}\n"
        'response body: \'{"requestId": "r-1", "code": "InvalidInstanceStatus", "message": "instance is Stopped"}\''
    )
    exc = sdk_errors.RequestError(sdk_text, status_code=400, headers={"X-Bce-Request-Id": "r-1"})
    err = from_sdk_exception("ResizeTPMResource", exc)
    assert str(err) == "ResizeTPMResource failed: HTTP 400 InvalidInstanceStatus: instance is Stopped (requestId r-1)"
    assert "AKsecret" not in str(err)


def test_request_error_without_a_json_body_falls_back_to_headers() -> None:
    exc = sdk_errors.RequestError(
        "response body: '<html>gateway</html>'",
        status_code=502,
        headers={"X-Bce-Error-Code": "BadGateway", "X-Bce-Error-Message": "upstream", "X-Bce-Request-Id": "r-2"},
    )
    err = from_sdk_exception("ReleaseTPMResource", exc)
    assert (err.kind, err.code, err.message, err.request_id) == (Kind.SERVER, "BadGateway", "upstream", "r-2")


@pytest.mark.parametrize(
    "status, code, kind",
    [
        (403, "AccessDenied", Kind.AUTH),
        (400, "RequestExpired", Kind.AUTH),
        (403, "SomethingNew", Kind.AUTH),
        (429, None, Kind.THROTTLED),
        (400, "RequestRateLimitExceeded", Kind.THROTTLED),
        (400, "Throttling.User", Kind.THROTTLED),
        (500, "InternalError", Kind.SERVER),
        (503, None, Kind.SERVER),
        (404, None, Kind.NOT_FOUND),
        (400, "InstanceNotFound", Kind.NOT_FOUND),
        (400, "ResourceNotExist", Kind.NOT_FOUND),
        (400, "InvalidParameter", Kind.REJECTED),
    ],
)
def test_classification_tolerates_undocumented_codes(status: int, code: str | None, kind: Kind) -> None:
    assert classify(status, code) is kind


def test_auth_hint_names_keys_and_policies() -> None:
    text = str(
        QianfanError("PurchaseTPMResource", Kind.AUTH, status=403, code="InvalidAccessKeyId", message="no such key")
    )
    for name in (
        "qianfan:accessKey",
        "qianfan:secretKey",
        "QIANFAN_ACCESS_KEY",
        "QIANFAN_SECRET_KEY",
        "QianfanFullControlAccessPolicy",
    ):
        assert name in text
    expired = str(QianfanError("DescribeTPMResource", Kind.AUTH, status=400, code="RequestExpired"))
    assert "clock" in expired


# -- classify: every family ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "status, code, kind",
    [
        (401, None, Kind.AUTH),
        (401, "Whatever", Kind.AUTH),
        (403, None, Kind.AUTH),
        (403, "InvalidAccessKeyId", Kind.AUTH),
        (400, "SignatureDoesNotMatch", Kind.AUTH),
        (400, "InvalidHTTPAuthHeader", Kind.AUTH),
        (500, "AccessDenied", Kind.AUTH),  # an auth code wins over the status
        (None, "IamAuthFailed", Kind.AUTH),
        (404, None, Kind.NOT_FOUND),
        (404, "ResourceNotFound", Kind.NOT_FOUND),
        (400, "NoSuchInstance", Kind.NOT_FOUND),
        (400, "Instance.Not_Found", Kind.NOT_FOUND),
        (400, "instance-not-exist", Kind.NOT_FOUND),
        (408, None, Kind.UNSETTLED),
        (409, "Conflict", Kind.UNSETTLED),
        (425, None, Kind.UNSETTLED),
        (499, None, Kind.UNSETTLED),
        (409, "ResourceNotFound", Kind.UNSETTLED),  # the status says it may have happened
        (429, None, Kind.THROTTLED),
        (429, "InvalidParameter", Kind.THROTTLED),
        (400, "QpsLimit", Kind.THROTTLED),
        (400, "TooManyRequests", Kind.THROTTLED),
        (400, "rate_limit", Kind.THROTTLED),
        (200, "Rate-Limit.Exceeded", Kind.THROTTLED),
        (404, "RateLimitExceeded", Kind.THROTTLED),
        (503, "Throttling", Kind.THROTTLED),
        (500, None, Kind.SERVER),
        (502, "BadGateway", Kind.SERVER),
        (503, "ServiceUnavailable", Kind.SERVER),
        (504, "GatewayTimeout", Kind.SERVER),
        (599, None, Kind.SERVER),
        (500, "InstanceNotFound", Kind.SERVER),  # a 5xx says nothing certain about the instance
        (400, None, Kind.REJECTED),
        (400, "InvalidParameter", Kind.REJECTED),
        (400, "MalformedJSON", Kind.REJECTED),
        (400, "InvalidInstanceStatus", Kind.REJECTED),
        (410, None, Kind.REJECTED),
        (418, "Teapot", Kind.REJECTED),
        (422, None, Kind.REJECTED),
        (200, "336501", Kind.REJECTED),
        (None, None, Kind.REJECTED),
    ],
)
def test_classify_every_family(status: int | None, code: str | None, kind: Kind) -> None:
    assert classify(status, code) is kind


# -- definitive refusals: only what proves nothing happened ---------------------------------------
#: Baidu's documented common errors for authentication and request format, written out here from
#: /work/shared/qianfan-tpm-api.md (the witness), not read from the module under test.
BAIDU_DEFINITIVE = {
    (403, "AccessDenied"),
    (403, "InvalidAccessKeyId"),
    (400, "SignatureDoesNotMatch"),
    (403, "SignatureDoesNotMatch"),
    (400, "InvalidHTTPAuthHeader"),
    (400, "RequestExpired"),
    (400, "MalformedJSON"),
    (400, "InappropriateJSON"),
}


def test_the_definitive_pairs_are_baidus_documented_refusals() -> None:
    assert set(DEFINITIVE_REFUSALS) == BAIDU_DEFINITIVE


@pytest.mark.parametrize("status, code", sorted(BAIDU_DEFINITIVE))
def test_documented_refusals_are_definitive(status: int, code: str) -> None:
    err = QianfanError("PurchaseTPMResource", classify(status, code), status=status, code=code)
    assert err.definitive_refusal and not err.retryable


@pytest.mark.parametrize("kind", [Kind.CONFIG, Kind.NOT_SENT])
def test_nothing_sent_is_definitive(kind: Kind) -> None:
    assert QianfanError("PurchaseTPMResource", kind, message="not sent").definitive_refusal


@pytest.mark.parametrize(
    "status, code",
    [
        (408, None),
        (409, "Conflict"),
        (425, None),
        (499, None),
        (500, "InternalError"),
        (502, None),
        (503, "ServiceUnavailable"),
        (504, None),
        (400, "InvalidParameter"),  # an unknown 4xx: refused for a reason nobody documented
        (400, "InvalidInstanceStatus"),
        (418, None),
        (404, "ResourceNotFound"),
        (429, "RateLimitExceeded"),
        (401, "AccessDenied"),  # the right code with a status Baidu does not document for it
        (400, "AccessDenied"),
        (403, "SomethingNew"),
        (500, "MalformedJSON"),
        (200, "MalformedJSON"),
        (None, "MalformedJSON"),
    ],
)
def test_other_answers_are_not_definitive(status: int | None, code: str | None) -> None:
    err = QianfanError("PurchaseTPMResource", classify(status, code), status=status, code=code)
    assert not err.definitive_refusal


@pytest.mark.parametrize("kind", [Kind.NO_ANSWER, Kind.BAD_ANSWER])
def test_no_answer_is_not_definitive(kind: Kind) -> None:
    assert not QianfanError("PurchaseTPMResource", kind, message="no answer").definitive_refusal


@pytest.mark.parametrize(
    "kind, retryable",
    [
        (Kind.THROTTLED, True),
        (Kind.SERVER, True),
        (Kind.UNSETTLED, True),
        (Kind.NO_ANSWER, True),
        (Kind.BAD_ANSWER, True),
        (Kind.AUTH, False),
        (Kind.NOT_FOUND, False),
        (Kind.REJECTED, False),
        (Kind.CONFIG, False),
        (Kind.NOT_SENT, False),
    ],
)
def test_retryable(kind: Kind, retryable: bool) -> None:
    assert QianfanError("DescribeTPMResource", kind).retryable is retryable


# -- rendering: one line, cut short ---------------------------------------------------------------
def test_a_huge_answer_renders_cut_short_on_one_line() -> None:
    err = QianfanError(
        "DescribeTPMResource",
        Kind.REJECTED,
        status=400,
        code="C" * 100_000,
        message="word\n" * 100_000,
        request_id="r" * 100_000,
    )
    text = str(err)
    assert "\n" not in text and len(text) < 1_000
    assert "C" * 100 + "… (100000 characters)" in text
    assert "(requestId " + "r" * 100 + "… (100000 characters))" in text
    assert "word word" in text and "… (499999 characters)" in text


def test_whitespace_in_a_message_is_collapsed() -> None:
    err = QianfanError("DescribeTPMResource", Kind.SERVER, status=500, message="line1\r\n\tline2   line3\n")
    assert str(err) == "DescribeTPMResource failed: HTTP 500: line1 line2 line3"


@pytest.mark.parametrize("field", ["code", "request_id"])
def test_a_line_break_in_code_or_request_id_stays_on_one_line(field: str) -> None:
    err = QianfanError("DescribeTPMResource", Kind.REJECTED, status=400, **{field: "first\nsecond\u2028third"})
    assert len(str(err).splitlines()) == 1


def test_replace_keeps_everything_but_the_changes() -> None:
    err = QianfanError("ResizeTPMResource", Kind.SERVER, status=503, code="X", message="m", request_id="r")
    changed = err.replace(hint="try later")
    assert (changed.action, changed.kind, changed.status, changed.code, changed.message, changed.request_id) == (
        "ResizeTPMResource",
        Kind.SERVER,
        503,
        "X",
        "m",
        "r",
    )
    assert str(changed) == "ResizeTPMResource failed: HTTP 503 X: m (requestId r) — try later"


# -- redaction ------------------------------------------------------------------------------------
ACCESS_KEY = "AKunit0123456789abcdef"
SECRET_KEY = "SKunit0123456789abcdef0123456789"
SETTINGS = Settings(access_key=Secret(ACCESS_KEY), secret_key=Secret(SECRET_KEY))


def fields_of(err: QianfanError) -> list[str]:
    return [str(err), err.code or "", err.message, err.request_id or "", err.hint, *map(str, err.args)]


def test_redacted_scrubs_a_key_from_every_field_of_the_answer() -> None:
    err = QianfanError(
        "DescribeTPMResource",
        Kind.AUTH,
        status=403,
        code=f"Bad{SECRET_KEY}",
        message=f"Authorization: bce-auth-v1/{ACCESS_KEY}/2026 with {SECRET_KEY}",
        request_id=f"{ACCESS_KEY}-1",
    )
    clean = err.redacted(SETTINGS)
    for text in fields_of(clean):
        assert ACCESS_KEY not in text and SECRET_KEY not in text
    assert (clean.code, clean.request_id) == ("Bad***", "***-1")
    assert clean.message == "Authorization: bce-auth-v1/***/2026 with ***"
    assert (clean.action, clean.kind, clean.status, clean.hint) == ("DescribeTPMResource", Kind.AUTH, 403, err.hint)


def test_redacted_keeps_the_placeholders_of_the_hint_whatever_the_keys() -> None:
    """Keys as short as the placeholders: the answer's echo of them is scrubbed, the advice is not."""
    short = Settings(access_key=Secret("AK"), secret_key=Secret("SK"))
    err = QianfanError("DescribeTPMResource", Kind.AUTH, status=403, code="InvalidAccessKeyId", message="key AK, SK")
    clean = err.redacted(short)
    assert clean.message == "key ***, ***"
    assert "qianfan:accessKey <AK>" in clean.hint and "qianfan:secretKey <SK>" in clean.hint
    assert clean.hint == err.hint and "<***>" not in str(clean)


def test_redacted_leaves_a_clean_error_alone() -> None:
    err = QianfanError("DescribeTPMResource", Kind.SERVER, status=500, message="nothing secret")
    assert err.redacted(SETTINGS) is err
    assert str(err.redacted(Settings())) == str(err)


def _across_the_cut(field: str) -> dict[str, str]:
    """The access key (which every request's Authorization header carries, so any endpoint can echo it)
    placed where the rendered line cuts the field: its start shown, its end not."""
    limit = 500 if field == "message" else 100
    return {field: "x" * (limit - 10) + ACCESS_KEY + "y" * 50}


@pytest.mark.parametrize("field", ["message", "code", "request_id"])
def test_redacted_scrubs_a_key_across_the_display_cut(field: str) -> None:
    err = QianfanError("DescribeTPMResource", Kind.REJECTED, status=400, **_across_the_cut(field))
    clean = err.redacted(SETTINGS)
    for text in fields_of(clean):
        assert ACCESS_KEY not in text
    assert ACCESS_KEY[:8] not in str(clean)


def test_redacted_scrubs_a_key_past_the_display_cut() -> None:
    err = QianfanError("DescribeTPMResource", Kind.REJECTED, status=400, message="x" * 600 + ACCESS_KEY)
    assert ACCESS_KEY not in err.redacted(SETTINGS).message


# -- from_sdk_exception with odd bodies -----------------------------------------------------------
def request_error(status: int, body: str, headers: dict[str, str] | None = None) -> Exception:
    """A RequestError as the SDK builds it: the answer's body only inside its text, after the
    request's headers (with the key) and body."""
    text = (
        f"http request url http://127.0.0.1:1/v2/charge?Action=DescribeTPMResource failed with http status code "
        f"{status}\nrequest headers: {{'Authorization': 'bce-auth-v1/{ACCESS_KEY}/2026-11-26T00:00:00Z/300/host/x'}}\n"
        f'request body: \'{{"model": "ernie-speed-8k"}}\'\nresponse headers: {{}}\nresponse body: {body!r}'
    )
    return sdk_errors.RequestError(text, status_code=status, headers=headers or {})


@pytest.mark.parametrize(
    "status, body, expected",
    [
        (
            400,
            json.dumps({"requestId": 7, "code": 336100, "message": "bad"}),
            (Kind.REJECTED, "336100", "bad", "7"),  # non-string fields become text
        ),
        (
            404,
            json.dumps({"code": 404, "message": None}),
            (Kind.NOT_FOUND, "404", "", None),
        ),
        (
            400,
            json.dumps({"code": {"inner": "X"}, "message": ["a", "b"]}),
            (Kind.REJECTED, "{'inner': 'X'}", "['a', 'b']", None),
        ),
        (
            503,
            json.dumps({"code": "", "message": ""}),
            (Kind.SERVER, "FromHeader", "from header", "hdr-1"),  # empty fields fall back to headers
        ),
        (
            400,
            "[" * 100_000 + "]" * 100_000,  # too deep for json: headers only, no RecursionError
            (Kind.REJECTED, "FromHeader", "from header", "hdr-1"),
        ),
        (
            400,
            '{"a":' * 5_000 + "1" + "}" * 5_000,
            (Kind.REJECTED, "FromHeader", "from header", "hdr-1"),
        ),
        (
            400,
            json.dumps(["InvalidParameter"]),  # JSON, but not an object
            (Kind.REJECTED, "FromHeader", "from header", "hdr-1"),
        ),
        (
            500,
            json.dumps({"code": "Say \"hi\" 'there'", "message": "q\\uote"}),
            (Kind.SERVER, "Say \"hi\" 'there'", "q\\uote", "hdr-1"),
        ),
    ],
)
def test_from_sdk_exception_with_odd_bodies(
    status: int, body: str, expected: tuple[Kind, str | None, str, str | None]
) -> None:
    headers = {"X-Bce-Error-Code": "FromHeader", "X-Bce-Error-Message": "from header", "X-Bce-Request-Id": "hdr-1"}
    uses_headers = expected[1] == "FromHeader" or expected[3] == "hdr-1"
    err = from_sdk_exception("DescribeTPMResource", request_error(status, body, headers if uses_headers else None))
    assert (err.kind, err.code, err.message, err.request_id) == expected
    assert err.status == status
    assert ACCESS_KEY not in str(err) and "\n" not in str(err)
