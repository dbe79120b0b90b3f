"""`providers.client.QianfanClient` with the SDK's `call_action` replaced by a fake.

The fake answers as Baidu documents (written out here): success is `{"requestId", "result"}`,
Purchase's result `{"instanceId": "tpm-Vlxxxx3F"}`, the other changes `true`; a failure is a
non-2xx status with `{"requestId", "code", "message"}`, which the SDK raises as `RequestError`
(its text holding the request's headers and body, then the response body). No HTTP is made.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

import pytest
import requests

import providers.client as client_module
from providers.client import QianfanClient, Receipt
from providers.deadline import Deadline
from providers.errors import Kind, QianfanError
from providers.settings import Secret, Settings

logging.getLogger("qianfan").disabled = True
from qianfan import errors as sdk_errors  # noqa: E402

ACCESS_KEY = "AKclient0123456789abcdef"
SECRET_KEY = "SKclient0123456789abcdef0123456789"
SETTINGS = Settings(access_key=Secret(ACCESS_KEY), secret_key=Secret(SECRET_KEY), timeout_seconds=30.0)
MODEL = "ernie-speed-8k"


@dataclass
class Response:
    """What the SDK's call_action returns: the parsed JSON body, the HTTP status, the headers."""

    body: Any
    code: int = 200
    headers: dict[str, str] = field(default_factory=dict)


def ok(result: Any) -> Response:
    return Response({"requestId": "1bef3f87-c5b2-4419-936b-50f9884f10d4", "result": result})


def http_error(status: int, code: str, message: str = "refused", request_id: str = "r-1") -> Exception:
    """A non-2xx answer as the SDK raises it: the response body only inside the message text."""
    body = json.dumps({"requestId": request_id, "code": code, "message": message})
    text = (
        f"http request url http://127.0.0.1:1/v2/charge failed with http status code {status}\n"
        f"request headers: {{'Authorization': 'bce-auth-v1/{ACCESS_KEY}/2026-11-26T00:00:00Z/300/host/abc'}}\n"
        f"request body: '{{}}'\nresponse headers: {{}}\nresponse body: {body!r}"
    )
    return sdk_errors.RequestError(text, status_code=status, headers={"X-Bce-Request-Id": request_id})


class FakeCallAction:
    """Replays a script of answers (the last one repeats) and records every call."""

    def __init__(self, *answers: Response | Exception) -> None:
        self.answers = list(answers)
        self.calls: list[dict[str, Any]] = []

    def __call__(
        self, route: str, action: str, body: dict[str, Any], *, retry_count: int, request_timeout: float
    ) -> Any:
        self.calls.append(
            {
                "route": route,
                "action": action,
                "body": json.loads(json.dumps(body)),  # as it would go on the wire
                "retry_count": retry_count,
                "request_timeout": request_timeout,
            }
        )
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def client_with(*answers: Response | Exception, settings: Settings = SETTINGS) -> tuple[QianfanClient, FakeCallAction]:
    client = QianfanClient(settings)
    fake = FakeCallAction(*answers)
    client._call_action = fake
    return client, fake


@pytest.fixture
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Backoff of 10 ms, recording the attempt numbers it was asked for."""
    attempts: list[int] = []

    def backoff(attempt: int, **_: float) -> float:
        attempts.append(attempt)
        return 0.01

    monkeypatch.setattr(client_module, "backoff", backoff)
    return attempts


# -- the five actions, bodies exactly as Baidu documents them ---------------------------------------
def test_purchase_body_without_release_time() -> None:
    client, fake = client_with(ok({"instanceId": "tpm-Vlxxxx3F"}))
    assert client.purchase(MODEL, 2, None, Deadline(5)) == Receipt(
        "tpm-Vlxxxx3F", "1bef3f87-c5b2-4419-936b-50f9884f10d4"
    )
    (call,) = fake.calls
    assert (call["route"], call["action"]) == ("/v2/charge", "PurchaseTPMResource")
    assert call["body"] == {"model": MODEL, "billing": {"paymentTiming": "Postpaid"}, "purchaseCount": 2}


def test_purchase_body_with_release_time() -> None:
    client, fake = client_with(ok({"instanceId": "44961088f5xxxxx79f5daf"}))
    bought = client.purchase(MODEL, 1, "2030-01-25T12:30:30+08:00", Deadline(5))
    assert bought.instance_id == "44961088f5xxxxx79f5daf"
    assert fake.calls[0]["body"] == {
        "model": MODEL,
        "billing": {"paymentTiming": "Postpaid", "releaseTime": "2030-01-25T12:30:30+08:00"},
        "purchaseCount": 1,
    }


def test_describe_bodies_and_the_raw_result() -> None:
    listing = {"instances": [{"instanceId": "a0085162fxxxx0ad19e58e", "status": "Running"}]}
    client, fake = client_with(ok(listing))
    assert client.describe(MODEL, Deadline(5)) == listing
    assert client.describe(MODEL, Deadline(5), marker="m1") == listing
    assert [(c["action"], c["body"]) for c in fake.calls] == [
        ("DescribeTPMResource", {"model": MODEL}),
        ("DescribeTPMResource", {"model": MODEL, "marker": "m1"}),
    ]


def test_resize_sends_the_total_count() -> None:
    client, fake = client_with(ok(True))
    client.resize("tpm-Vlxxxx3F", 4, Deadline(5))
    assert [(c["action"], c["body"]) for c in fake.calls] == [
        ("ResizeTPMResource", {"instanceId": "tpm-Vlxxxx3F", "count": 4})
    ]


def test_auto_release_sets_or_cancels() -> None:
    client, fake = client_with(ok(True))
    client.auto_release("tpm-Vlxxxx3F", "2030-01-25T12:30:30+08:00", Deadline(5))
    client.auto_release("tpm-Vlxxxx3F", None, Deadline(5))  # no releaseTime: Baidu cancels the release
    assert [(c["action"], c["body"]) for c in fake.calls] == [
        ("AutoReleaseTPMResource", {"instanceId": "tpm-Vlxxxx3F", "releaseTime": "2030-01-25T12:30:30+08:00"}),
        ("AutoReleaseTPMResource", {"instanceId": "tpm-Vlxxxx3F"}),
    ]


def test_release_body() -> None:
    client, fake = client_with(ok(True))
    client.release(MODEL, "tpm-Vlxxxx3F", Deadline(5))
    assert [(c["action"], c["body"]) for c in fake.calls] == [
        ("ReleaseTPMResource", {"model": MODEL, "instanceId": "tpm-Vlxxxx3F"})
    ]


def test_no_key_ever_goes_into_a_body_and_the_sdk_never_retries() -> None:
    client, fake = client_with(ok({"instanceId": "tpm-Vlxxxx3F"}))
    client.purchase(MODEL, 1, "2030-01-25T12:30:30+08:00", Deadline(5))
    client.describe(MODEL, Deadline(5))
    client.resize("tpm-Vlxxxx3F", 2, Deadline(5))
    client.auto_release("tpm-Vlxxxx3F", None, Deadline(5))
    client.release(MODEL, "tpm-Vlxxxx3F", Deadline(5))
    for call in fake.calls:
        wire = json.dumps(call["body"])
        assert ACCESS_KEY not in wire and SECRET_KEY not in wire
        assert call["retry_count"] == 1


def test_request_timeout_is_inside_the_deadline() -> None:
    client, fake = client_with(ok(True))
    client.resize("tpm-a", 1, Deadline(5))
    client.resize("tpm-a", 1, Deadline(600))
    client.resize("tpm-a", 1, Deadline(0.2))
    first, long, short = (c["request_timeout"] for c in fake.calls)
    assert 4.5 < first <= 5.0
    assert long == 60.0  # one HTTP exchange never waits longer
    assert short == 1.0  # never below a second, so a call has a chance to finish


# -- Purchase: one attempt only ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "failure, kind",
    [
        (http_error(429, "RateLimitExceeded"), Kind.THROTTLED),
        (http_error(500, "InternalError"), Kind.SERVER),
        (http_error(503, "ServiceUnavailable"), Kind.SERVER),
        (http_error(408, "RequestTimeout"), Kind.UNSETTLED),
        (requests.exceptions.ReadTimeout("read timed out"), Kind.NO_ANSWER),
        (requests.exceptions.ConnectionError("connection reset"), Kind.NO_ANSWER),
        (Response({"requestId": "r"}), Kind.BAD_ANSWER),
        (Response("<html>"), Kind.BAD_ANSWER),
    ],
)
def test_purchase_is_sent_once_whatever_the_failure(
    failure: Response | Exception, kind: Kind, quick_backoff: list[int]
) -> None:
    client, fake = client_with(failure, ok({"instanceId": "tpm-second"}))
    with pytest.raises(QianfanError) as caught:
        client.purchase(MODEL, 1, None, Deadline(5))
    assert caught.value.kind is kind and caught.value.action == "PurchaseTPMResource"
    assert len(fake.calls) == 1 and quick_backoff == []


@pytest.mark.parametrize("result", [{}, {"instanceId": ""}, {"instanceId": 5}, True, None, ["tpm-a"]])
def test_purchase_without_an_instance_id_is_a_bad_answer(result: Any) -> None:
    client, fake = client_with(ok(result))
    with pytest.raises(QianfanError) as caught:
        client.purchase(MODEL, 1, None, Deadline(5))
    assert caught.value.kind is Kind.BAD_ANSWER and "the answer carried no instanceId" in str(caught.value)
    assert not caught.value.definitive_refusal
    assert len(fake.calls) == 1


# -- the idempotent four: retried with backoff inside the deadline ----------------------------------
def test_idempotent_actions_are_retried_on_throttling_5xx_and_408(quick_backoff: list[int]) -> None:
    client, fake = client_with(
        http_error(429, "RateLimitExceeded"),
        http_error(500, "InternalError"),
        http_error(408, "RequestTimeout"),
        requests.exceptions.ConnectionError("reset"),
        Response({"requestId": "r"}),  # no result: not Qianfan's envelope
        ok(True),
    )
    client.resize("tpm-a", 2, Deadline(5))
    assert len(fake.calls) == 6 and {c["action"] for c in fake.calls} == {"ResizeTPMResource"}
    assert quick_backoff == [0, 1, 2, 3, 4]  # the delay grows with each attempt


@pytest.mark.parametrize(
    "call",
    [
        lambda c, d: c.describe(MODEL, d),
        lambda c, d: c.resize("tpm-a", 2, d),
        lambda c, d: c.auto_release("tpm-a", None, d),
        lambda c, d: c.release(MODEL, "tpm-a", d),
    ],
    ids=["describe", "resize", "auto_release", "release"],
)
def test_each_idempotent_action_retries(call: Any, quick_backoff: list[int]) -> None:
    client, fake = client_with(http_error(503, "ServiceUnavailable"), ok(True))
    call(client, Deadline(5))
    assert len(fake.calls) == 2


def test_giving_up_names_the_attempts_and_the_setting(quick_backoff: list[int]) -> None:
    client, fake = client_with(http_error(503, "ServiceUnavailable"))
    started = time.monotonic()
    with pytest.raises(QianfanError) as caught:
        client.describe(MODEL, Deadline(0.6))  # 0.1 s to retry in, the last 0.5 s kept in reserve
    elapsed = time.monotonic() - started
    assert elapsed < 0.6
    message = str(caught.value)
    assert f"gave up after {len(fake.calls)} attempt(s) in " in message
    assert "the limit set by qianfan:timeoutSeconds (30s)" in message
    assert message.startswith("DescribeTPMResource failed: HTTP 503 ServiceUnavailable: refused (requestId r-1)")
    assert len(fake.calls) > 2 and caught.value.kind is Kind.SERVER


def test_real_backoff_stays_inside_the_deadline() -> None:
    client, fake = client_with(http_error(429, "RateLimitExceeded"))
    started = time.monotonic()
    with pytest.raises(QianfanError, match=r"gave up after \d+ attempt\(s\)"):
        client.release(MODEL, "tpm-a", Deadline(0.7))
    assert time.monotonic() - started < 0.7
    assert len(fake.calls) >= 2


def test_an_expired_deadline_sends_nothing() -> None:
    client, fake = client_with(ok(True))
    with pytest.raises(QianfanError) as caught:
        client.resize("tpm-a", 1, Deadline(0))
    assert caught.value.kind is Kind.NOT_SENT and caught.value.definitive_refusal
    assert "raise qianfan:timeoutSeconds (now 30s)" in str(caught.value)
    assert fake.calls == []


@pytest.mark.parametrize(
    "failure, kind",
    [
        (http_error(400, "InvalidParameter"), Kind.REJECTED),
        (http_error(400, "InvalidInstanceStatus"), Kind.REJECTED),
        (http_error(400, "SignatureDoesNotMatch"), Kind.AUTH),
        (http_error(403, "AccessDenied"), Kind.AUTH),
        (http_error(403, "InvalidAccessKeyId"), Kind.AUTH),
        (http_error(404, "ResourceNotFound"), Kind.NOT_FOUND),
    ],
)
def test_refusals_are_not_retried(failure: Exception, kind: Kind, quick_backoff: list[int]) -> None:
    client, fake = client_with(failure, ok(True))
    with pytest.raises(QianfanError) as caught:
        client.auto_release("tpm-a", None, Deadline(5))
    assert caught.value.kind is kind
    assert len(fake.calls) == 1 and quick_backoff == []


# -- answers that are not the envelope --------------------------------------------------------------
@pytest.mark.parametrize(
    "response, kind, text",
    [
        (
            Response({"requestId": "r-9", "code": "InvalidParameter", "message": "bad count"}, 200),
            Kind.REJECTED,
            "ResizeTPMResource failed: HTTP 200 InvalidParameter: bad count (requestId r-9)",
        ),
        (
            Response({"code": 336100, "message": "odd"}, 400),
            Kind.REJECTED,
            "ResizeTPMResource failed: HTTP 400 336100: odd",
        ),
        (
            Response({"requestId": "r-4", "code": "ResourceNotFound", "message": "no such instance"}, 404),
            Kind.NOT_FOUND,
            "ResizeTPMResource failed: HTTP 404 ResourceNotFound: no such instance (requestId r-4)",
        ),
    ],
)
def test_an_answer_with_a_code_but_no_result(response: Response, kind: Kind, text: str) -> None:
    client, fake = client_with(response, ok(True))
    with pytest.raises(QianfanError) as caught:
        client.resize("tpm-a", 1, Deadline(5))
    assert caught.value.kind is kind and str(caught.value) == text
    assert len(fake.calls) == 1


def test_a_throttling_code_in_a_200_answer_is_retried(quick_backoff: list[int]) -> None:
    client, fake = client_with(Response({"requestId": "r", "code": "RateLimitExceeded", "message": "slow"}), ok(True))
    client.describe(MODEL, Deadline(5))
    assert len(fake.calls) == 2


@pytest.mark.parametrize("body", [{"requestId": "r"}, {"code": "", "message": "x"}, None, "text", [1]])
def test_an_answer_with_neither_result_nor_code(body: Any, quick_backoff: list[int]) -> None:
    client, fake = client_with(Response(body))
    with pytest.raises(QianfanError) as caught:
        client.resize("tpm-a", 1, Deadline(0.55))
    assert caught.value.kind is Kind.BAD_ANSWER
    assert str(caught.value).startswith("ResizeTPMResource failed: the answer has no 'result'")


def test_result_may_be_any_json_value() -> None:
    client, _ = client_with(Response({"requestId": "r", "result": None}))
    assert client.describe(MODEL, Deadline(5)) is None


# -- keys never leave in an error -------------------------------------------------------------------
def test_a_key_echoed_in_any_field_of_an_error_body_is_redacted() -> None:
    echoed = f"bce-auth-v1/{ACCESS_KEY}/2026 {SECRET_KEY}"
    client, _ = client_with(http_error(400, f"Bad-{ACCESS_KEY}", message=echoed, request_id=f"{SECRET_KEY}-r"))
    with pytest.raises(QianfanError) as caught:
        client.resize("tpm-a", 1, Deadline(5))
    err = caught.value
    for text in (str(err), err.code or "", err.message, err.request_id or "", err.hint, *map(str, err.args)):
        assert ACCESS_KEY not in text and SECRET_KEY not in text
    assert (err.code, err.request_id) == ("Bad-***", "***-r")


def test_a_key_echoed_in_a_200_answer_is_redacted() -> None:
    body = {"requestId": ACCESS_KEY, "code": f"X{SECRET_KEY}", "message": f"sk={SECRET_KEY}"}
    client, _ = client_with(Response(body, 400))
    with pytest.raises(QianfanError) as caught:
        client.release(MODEL, "tpm-a", Deadline(5))
    assert ACCESS_KEY not in str(caught.value) and SECRET_KEY not in str(caught.value)
    assert str(caught.value) == "ReleaseTPMResource failed: HTTP 400 X***: sk=*** (requestId ***)"


def test_the_sdks_own_text_never_reaches_the_error() -> None:
    """The SDK's exception text carries the Authorization header with the access key."""
    client, _ = client_with(http_error(400, "InvalidParameter"))
    with pytest.raises(QianfanError) as caught:
        client.resize("tpm-a", 1, Deadline(5))
    assert "Authorization" not in str(caught.value) and ACCESS_KEY not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


# -- what the answers say besides their result ----------------------------------------------------------
@pytest.mark.parametrize("action", ["resize", "auto_release", "release"])
def test_a_write_answered_false_is_a_failure_naming_the_instance(action: str) -> None:
    """Baidu answers `true` for a change; an explicit `false` changed nothing (I2), and it is not
    sent again (it was an answer, not a lost one)."""
    client, fake = client_with(ok(False))
    calls = {
        "resize": lambda: client.resize("tpm-a", 2, Deadline(5)),
        "auto_release": lambda: client.auto_release("tpm-a", None, Deadline(5)),
        "release": lambda: client.release(MODEL, "tpm-a", Deadline(5)),
    }
    with pytest.raises(QianfanError) as caught:
        calls[action]()
    assert caught.value.kind is Kind.REJECTED and "answered false for tpm-a" in str(caught.value)
    assert len(fake.calls) == 1


@pytest.mark.parametrize("result", [True, None, {"success": True}, "ok"])
def test_other_write_answers_are_taken_and_left_to_the_read_back(result: Any) -> None:
    client, _ = client_with(ok(result))
    assert client.resize("tpm-a", 2, Deadline(5)) == "1bef3f87-c5b2-4419-936b-50f9884f10d4"


def test_a_purchase_leaves_its_recovery_the_time_it_asked_for() -> None:
    """I4: the request may not use the time the recovery of a lost answer needs."""
    client, fake = client_with(ok({"instanceId": "tpm-a"}))
    client.purchase(MODEL, 1, None, Deadline(20), leave=12.0)
    assert 7.0 <= fake.calls[0]["request_timeout"] <= 8.0


def test_a_purchase_with_too_little_time_left_is_not_sent() -> None:
    client, fake = client_with(ok({"instanceId": "tpm-a"}))
    with pytest.raises(QianfanError) as caught:
        client.purchase(MODEL, 1, None, Deadline(5), leave=4.5)
    assert caught.value.kind is Kind.NOT_SENT and caught.value.definitive_refusal
    assert "recovering a lost answer needs 4.5s" in str(caught.value) and fake.calls == []


def test_every_answers_date_header_bounds_qianfans_clock() -> None:
    ahead = time.time() + 3600  # Qianfan's clock an hour ahead of this machine's
    client, _ = client_with(
        Response({"requestId": "r", "result": {"instances": []}}, headers={"Date": formatdate(ahead, usegmt=True)})
    )
    client.describe(MODEL, Deadline(5))
    low, high = client.server_clock.bounds()
    assert 3598 <= low <= high <= 3602 and high - low <= 1.5


def test_a_request_id_that_echoes_a_key_is_scrubbed_before_it_is_kept() -> None:
    client, _ = client_with(Response({"requestId": f"id-{ACCESS_KEY}", "result": True}))
    kept = client.resize("tpm-a", 2, Deadline(5))
    assert kept is not None and ACCESS_KEY not in kept
