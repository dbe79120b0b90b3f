"""Every SDK failure becomes one readable line (action, status, code, message, requestId, hint).

The RequestError cases are produced by the real SDK against the sandbox (see test_secrets and
test_failure_semantics); these cover the shapes the sandbox cannot produce: a 2xx answer carrying
`error_code` (APIError), raw `requests` exceptions, and Baidu's undocumented codes.
"""

from __future__ import annotations

import logging

import pytest
import requests

from providers.errors import Kind, QianfanError, classify, from_sdk_exception

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
