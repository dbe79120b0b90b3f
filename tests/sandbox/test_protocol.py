"""The sandbox's HTTP protocol, actions, faults and options, driven in-process over real HTTP."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from qianfan_sandbox import SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY, Sandbox, SandboxControl, start_sandbox
from tests.support.sandbox_http import (
    MODEL,
    OTHER_MODEL,
    TIMEOUT,
    Client,
    assert_error,
    parse_raw_answer,
    purchase_body,
    raw_exchange,
)

pytestmark = pytest.mark.slow  # a sandbox server per test

UTC_Z = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
BEIJING_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00")
#: How far an answer's Date may be from the expected moment on a busy machine.
DATE_SLACK = 5.0
DOCUMENTED_FIELDS = {"instanceId", "paymentTiming", "rpm", "tpm", "status", "startTime", "expiredTime"}


def in_hours(hours: float) -> str:
    """A releaseTime `hours` from now, spelled the standard (Beijing) way."""
    moment = datetime.now(UTC) + timedelta(hours=hours, minutes=1)
    return (moment + timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S")


def utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


# -- success shapes ---------------------------------------------------------------------------


def test_purchase_answers_an_instance_id_and_request_id(client: Client, served_control: SandboxControl) -> None:
    response = client.call("PurchaseTPMResource", purchase_body(purchaseCount=2))
    assert response.status_code == 200
    payload = response.json()
    assert set(payload) == {"requestId", "result"} and set(payload["result"]) == {"instanceId"}
    assert response.headers["X-Bce-Request-Id"] == payload["requestId"]
    assert re.fullmatch(r"tpm-[A-Za-z0-9]{8}", payload["result"]["instanceId"])
    assert "X-Bce-Error-Code" not in response.headers
    [row] = served_control.instances()
    assert row["instanceId"] == payload["result"]["instanceId"]
    assert (row["model"], row["count"], row["paymentTiming"]) == (MODEL, 2, "Postpaid")


def test_describe_item_is_baidus_seven_fields(client: Client) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    instance_id = client.purchase(count=3, release_time="2030-01-25 12:30:30")
    [item] = client.describe()
    assert list(item) == ["instanceId", "paymentTiming", "rpm", "tpm", "status", "startTime", "expiredTime"]
    assert item["instanceId"] == instance_id
    assert (item["paymentTiming"], item["tpm"], item["rpm"], item["status"]) == ("Postpaid", 30000, 99, "Creating")
    assert UTC_Z.fullmatch(item["startTime"])
    assert before <= utc(item["startTime"]) <= datetime.now(UTC)
    # 12:30:30 Beijing time is 04:30:30 UTC.
    assert item["expiredTime"] == "2030-01-25T04:30:30Z"


def test_expired_time_is_a_dash_when_nothing_is_scheduled(client: Client) -> None:
    client.purchase()
    assert client.describe()[0]["expiredTime"] == "-"


def test_rich_shape_adds_model_count_and_release_time(client: Client, served_control: SandboxControl) -> None:
    client.purchase(count=2, release_time="2030-01-25T04:30:30Z")
    served_control.set_option("describe_shape", "rich")
    [item] = client.describe()
    assert set(item) == DOCUMENTED_FIELDS | {"model", "count", "releaseTime"}
    assert (item["model"], item["count"], item["releaseTime"]) == (MODEL, 2, "2030-01-25T12:30:30+08:00")
    assert item["expiredTime"] == "2030-01-25T04:30:30Z"
    client.ok("AutoReleaseTPMResource", {"instanceId": item["instanceId"]})
    assert client.describe()[0]["releaseTime"] is None


def test_describe_filters_by_model_and_instance(client: Client) -> None:
    mine = client.purchase(release_time="2030-01-25T04:30:30Z")
    other = client.purchase(model=OTHER_MODEL)
    assert [i["instanceId"] for i in client.describe()] == [mine]
    assert [i["instanceId"] for i in client.describe(OTHER_MODEL)] == [other]
    assert client.describe(instanceId=other) == []
    assert [i["instanceId"] for i in client.describe(instanceId=mine)] == [mine]
    assert client.describe("ernie-tiny-8k") == []
    assert [i["instanceId"] for i in client.describe(paymentTiming="Postpaid")] == [mine]


def test_hex_id_style(client: Client, served_control: SandboxControl) -> None:
    served_control.set_option("id_style", "hex")
    instance_id = client.purchase()
    assert re.fullmatch(r"[0-9a-f]{24}", instance_id)
    assert client.describe()[0]["instanceId"] == instance_id
    served_control.set_option("id_style", "tpm")
    assert client.purchase().startswith("tpm-")


def test_extra_models_are_accepted(client: Client) -> None:
    instance_id = client.purchase(model="my-custom-model")
    assert [i["instanceId"] for i in client.describe("my-custom-model")] == [instance_id]


# -- authentication ---------------------------------------------------------------------------


def test_missing_authorization_is_access_denied_before_the_body(client: Client, served_control: SandboxControl) -> None:
    headers = client.headers("PurchaseTPMResource")
    del headers["authorization"]
    response = client.call("PurchaseTPMResource", None, raw=b"{not json", headers=headers)
    assert_error(response, 403, "AccessDenied")
    assert served_control.requests() == []


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Bearer abc",
        "bce-auth-v1/only/three",
        "bce-auth-v1//2026-01-01T00:00:00Z/300/host/" + "0" * 64,
        "bce-auth-v1/ak/yesterday/300/host/" + "0" * 64,
        "bce-auth-v1/ak/2026-02-30T00:00:00Z/300/host/" + "0" * 64,
        "bce-auth-v1/ak/2026-01-01T00:00:00Z/0/host/" + "0" * 64,
        "bce-auth-v1/ak/2026-01-01T00:00:00Z/-5/host/" + "0" * 64,
        "bce-auth-v1/ak/2026-01-01T00:00:00Z/" + "9" * 5000 + "/host/" + "0" * 64,
        "bce-auth-v1/ak/2026-01-01T00:00:00Z/300/host/not-hex",
        "bce-auth-v1/ak/2026-01-01T00:00:00Z/300/host/" + "0" * 64 + "/extra",
    ],
)
def test_malformed_authorization_is_invalid_http_auth_header(client: Client, authorization: str) -> None:
    headers = client.headers("DescribeTPMResource")
    headers["authorization"] = authorization
    response = client.call("DescribeTPMResource", {"model": MODEL}, headers=headers)
    assert_error(response, 400, "InvalidHTTPAuthHeader")


def test_unknown_access_key(sandbox: Sandbox) -> None:
    stranger = Client(sandbox.url, ak="someone-else", sk=SANDBOX_SECRET_KEY)
    payload = assert_error(stranger.call("DescribeTPMResource", {"model": MODEL}), 403, "InvalidAccessKeyId")
    assert payload["message"] == "NotFound, cause: Could not find credential."


def test_wrong_secret_key_is_signature_mismatch_400(sandbox: Sandbox, served_control: SandboxControl) -> None:
    wrong = Client(sandbox.url, sk="not-the-secret")
    response = wrong.call("PurchaseTPMResource", purchase_body())
    payload = assert_error(response, 400, "SignatureDoesNotMatch")
    # The exact text the qianfan SDK compares to explain the failure.
    assert response.headers["X-Bce-Error-Message"] == payload["message"]
    assert payload["message"] == "SignatureDoesNotMatch, cause: Fail to authn user: Signature does not match"
    assert served_control.instances() == []
    assert served_control.requests() == []  # nothing unauthenticated is journaled


def test_tampered_request_is_signature_mismatch(client: Client) -> None:
    # Signed for Describe but sent as Purchase: the query is part of the signature.
    headers = client.headers("DescribeTPMResource")
    assert_error(client.call("PurchaseTPMResource", purchase_body(), headers=headers), 400, "SignatureDoesNotMatch")
    # Signed for another host (the port is part of the host header).
    headers = client.headers("DescribeTPMResource", host="127.0.0.1:1")
    headers["host"] = urlsplit(client.url).netloc
    response = client.call("DescribeTPMResource", {"model": MODEL}, headers=headers)
    assert_error(response, 400, "SignatureDoesNotMatch")
    # A signed header changed after signing.
    headers = client.headers("DescribeTPMResource")
    headers["x-bce-date"] = "2001-01-01T00:00:00Z"
    assert_error(client.call("DescribeTPMResource", {"model": MODEL}, headers=headers), 400, "SignatureDoesNotMatch")


def test_the_body_is_not_signed(client: Client) -> None:
    # Baidu's SDK signs headers only; a body changed in flight still passes (as at Baidu).
    headers = client.headers("DescribeTPMResource")
    response = client.call("DescribeTPMResource", {"model": OTHER_MODEL}, headers=headers)
    assert response.status_code == 200


def test_signed_header_order_does_not_matter(client: Client) -> None:
    headers = client.headers("DescribeTPMResource")
    prefix, names, signature = headers["authorization"].rsplit("/", 2)
    headers["authorization"] = "/".join([prefix, ";".join(reversed(names.split(";"))), signature])
    assert client.call("DescribeTPMResource", {"model": MODEL}, headers=headers).status_code == 200


@pytest.mark.parametrize("age_seconds", [3600, -3600])
def test_stale_or_far_future_timestamp_is_request_expired(client: Client, age_seconds: int) -> None:
    response = client.call("DescribeTPMResource", {"model": MODEL}, timestamp=time.time() - age_seconds)
    assert_error(response, 400, "RequestExpired")


def test_timestamp_window(client: Client) -> None:
    # A client clock 10 minutes fast is tolerated; a signature is good for its expiry.
    assert client.call("DescribeTPMResource", {"model": MODEL}, timestamp=time.time() + 600).status_code == 200
    old = time.time() - 1000
    assert client.call("DescribeTPMResource", {"model": MODEL}, timestamp=old, expiry=1800).status_code == 200
    assert_error(client.call("DescribeTPMResource", {"model": MODEL}, timestamp=old, expiry=300), 400, "RequestExpired")


def test_clock_offset_does_not_affect_signatures(client: Client, served_control: SandboxControl) -> None:
    served_control.set_option("clock_offset_seconds", 7 * 24 * 3600)
    assert client.call("DescribeTPMResource", {"model": MODEL}).status_code == 200


def test_custom_credentials_replace_the_sandbox_pair(served_db: Path) -> None:
    with Sandbox(served_db, {"AK1": "SK1", "AK2": "SK2"}) as sandbox:
        assert Client(sandbox.url, "AK1", "SK1").describe() == []
        assert Client(sandbox.url, "AK2", "SK2").describe() == []
        assert_error(Client(sandbox.url).call("DescribeTPMResource", {"model": MODEL}), 403, "InvalidAccessKeyId")


# -- routing ----------------------------------------------------------------------------------


def test_unknown_path_method_and_action(client: Client, sandbox: Sandbox) -> None:
    headers = client.headers("PurchaseTPMResource")
    response = requests.post(
        f"{sandbox.url}/v2/other", params={"Action": "PurchaseTPMResource"}, data=b"{}", headers=headers, timeout=5
    )
    assert_error(response, 404, "NotFound")
    response = requests.get(f"{sandbox.url}/v2/charge", params={"Action": "DescribeTPMResource"}, timeout=TIMEOUT)
    assert_error(response, 405, "MethodNotAllowed")
    response = requests.head(f"{sandbox.url}/v2/charge", timeout=TIMEOUT)
    assert response.status_code == 405 and response.content == b""
    assert_error(client.call("BuyEverything", {"model": MODEL}), 400, "InvalidAction")


def test_missing_and_repeated_action(client: Client, sandbox: Sandbox) -> None:
    headers = client.headers("DescribeTPMResource")
    url = f"{sandbox.url}/v2/charge?Action=DescribeTPMResource&Action=PurchaseTPMResource"
    assert_error(requests.post(url, data=b"{}", headers=headers, timeout=TIMEOUT), 400, "InvalidURI")
    url = f"{sandbox.url}/v2/charge?" + "&".join(f"p{i}=1" for i in range(30))
    assert_error(requests.post(url, data=b"{}", headers=headers, timeout=TIMEOUT), 400, "InvalidURI")


# -- body validation --------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"{not json", b"", b'{"model": ', b"[" * 50_000, b'{"model": "\\ud800"}', b"NaN"])
def test_malformed_json(client: Client, served_control: SandboxControl, raw: bytes) -> None:
    assert_error(client.call("PurchaseTPMResource", None, raw=raw), 400, "MalformedJSON")
    assert served_control.instances() == []


def test_body_that_is_not_utf8(client: Client, served_control: SandboxControl) -> None:
    raw = json.dumps(purchase_body(model="ernie-speed-8k")).encode().replace(b"speed", b"sp\xffed")
    assert_error(client.call("PurchaseTPMResource", None, raw=raw), 400, "InvalidHTTPRequest")
    assert served_control.instances() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (purchase_body(purchaseCount="two"), "purchaseCount"),
        (purchase_body(purchaseCount=1.5), "purchaseCount"),
        (purchase_body(purchaseCount=2.0), "purchaseCount"),
        (purchase_body(purchaseCount=True), "purchaseCount"),
        (purchase_body(purchaseCount=None), "purchaseCount"),
        (purchase_body(model=None), "model"),
        (purchase_body(model=7), "model"),
        (purchase_body(model=["ernie-speed-8k"]), "model"),
        (purchase_body(billing="Postpaid"), "billing"),
        (purchase_body(billing={"releaseTime": "2030-01-25 12:30:30"}), "billing.paymentTiming"),
        (purchase_body(billing={"paymentTiming": "Postpaid", "releaseTime": 1893556800}), "billing.releaseTime"),
        ({"billing": {"paymentTiming": "Postpaid"}, "purchaseCount": 1}, "model"),
        ([purchase_body()], "request body"),
        ("a string", "request body"),
        (None, "request body"),
    ],
)
def test_inappropriate_json_names_the_field(
    client: Client, served_control: SandboxControl, body: Any, field: str
) -> None:
    payload = assert_error(client.call("PurchaseTPMResource", body), 400, "InappropriateJSON")
    assert field in payload["message"]
    assert served_control.instances() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (purchase_body(model="ernie-9000"), "model"),
        (purchase_body(model=""), "model"),
        (purchase_body(purchaseCount=0), "purchaseCount"),
        (purchase_body(purchaseCount=-3), "purchaseCount"),
        (purchase_body(purchaseCount=1_000_001), "purchaseCount"),
        (purchase_body(purchaseCount=10**100), "purchaseCount"),
        (purchase_body(billing={"paymentTiming": "Prepaid"}), "billing.paymentTiming"),
        (purchase_body(billing={"paymentTiming": "Postpaid", "releaseTime": "next tuesday"}), "billing.releaseTime"),
        (
            purchase_body(billing={"paymentTiming": "Postpaid", "releaseTime": "2030-02-30 12:00:00"}),
            "billing.releaseTime",
        ),
        (
            purchase_body(billing={"paymentTiming": "Postpaid", "releaseTime": "2030-01-25T12:30:30"}),
            "billing.releaseTime",
        ),
        (
            purchase_body(billing={"paymentTiming": "Postpaid", "releaseTime": "2030-01-25T12:30:30+24:00"}),
            "billing.releaseTime",
        ),
        (
            purchase_body(billing={"paymentTiming": "Postpaid", "releaseTime": "9999-12-31T23:59:59-23:59"}),
            "billing.releaseTime",
        ),
        (
            purchase_body(billing={"paymentTiming": "Postpaid", "releaseTime": "2020-01-25T12:30:30+08:00"}),
            "billing.releaseTime",
        ),
        (purchase_body(billing={"paymentTiming": "Postpaid", "releaseTime": "x" * 10_000}), "billing.releaseTime"),
    ],
)
def test_invalid_parameter_names_the_field(
    client: Client, served_control: SandboxControl, body: dict[str, Any], field: str
) -> None:
    payload = assert_error(client.call("PurchaseTPMResource", body), 400, "InvalidParameter")
    assert payload["message"].startswith(field + ":")
    assert len(payload["message"]) < 400  # the client's text is echoed cut short
    assert served_control.instances() == []


def test_every_refused_field_is_named_at_once(client: Client) -> None:
    body = purchase_body(model="ernie-9000", purchaseCount=0, billing={"paymentTiming": "Prepaid"})
    message = assert_error(client.call("PurchaseTPMResource", body), 400, "InvalidParameter")["message"]
    assert all(field in message for field in ("model:", "purchaseCount:", "billing.paymentTiming:"))


def test_type_errors_come_before_value_errors(client: Client) -> None:
    body = purchase_body(model="ernie-9000", purchaseCount="1")
    message = assert_error(client.call("PurchaseTPMResource", body), 400, "InappropriateJSON")["message"]
    assert message == "purchaseCount must be a whole number (a JSON integer)"


def test_unknown_fields_are_ignored(client: Client) -> None:
    body = purchase_body(futureField={"x": 1}, billing={"paymentTiming": "Postpaid", "coupon": "free"})
    assert client.ok("PurchaseTPMResource", body)["instanceId"].startswith("tpm-")


@pytest.mark.parametrize(
    "spelling",
    ["2031-03-04 05:06:07", "2031-03-04T05:06:07+08:00", "2031-03-03T21:06:07Z", "2031-03-03t21:06:07.000z"],
)
def test_release_time_spellings_name_one_instant(client: Client, served_control: SandboxControl, spelling: str) -> None:
    client.purchase(release_time=spelling)
    assert served_control.instances()[0]["releaseTime"] == "2031-03-04T05:06:07+08:00"
    assert client.describe()[0]["expiredTime"] == "2031-03-03T21:06:07Z"


def test_describe_validation(client: Client) -> None:
    assert_error(client.call("DescribeTPMResource", {}), 400, "InappropriateJSON")
    assert_error(client.call("DescribeTPMResource", {"model": "ernie-9000"}), 400, "InvalidParameter")
    assert_error(client.call("DescribeTPMResource", {"model": MODEL, "status": "Dead"}), 400, "InvalidParameter")
    assert_error(client.call("DescribeTPMResource", {"model": MODEL, "status": 1}), 400, "InappropriateJSON")
    assert_error(
        client.call("DescribeTPMResource", {"model": MODEL, "paymentTiming": "Prepaid"}), 400, "InvalidParameter"
    )
    assert_error(client.call("DescribeTPMResource", {"model": MODEL, "instanceId": 5}), 400, "InappropriateJSON")


# -- the server's clock ------------------------------------------------------------------------


def date_of(headers: Any) -> datetime:
    return parsedate_to_datetime(headers["Date"])


@pytest.mark.parametrize("offset", [0, 5 * 3600, -86400])
def test_every_answers_date_is_on_the_sandbox_clock(
    sandbox: Sandbox, served_control: SandboxControl, offset: int
) -> None:
    served_control.set_option("clock_offset_seconds", offset)
    client = Client(sandbox.url)
    expected = datetime.now(UTC) + timedelta(seconds=offset)
    answers = [
        client.call("DescribeTPMResource", {"model": MODEL}),  # success: signed on real time still
        client.call("DescribeTPMResource", {"model": "ernie-9000"}),  # refused after reading the body
        client.call("DescribeTPMResource", {}, headers={"content-type": "application/json"}),  # no signature
        requests.get(f"{sandbox.url}/v1/other", timeout=TIMEOUT),  # a route that does not exist
    ]
    assert [answer.status_code for answer in answers] == [200, 400, 403, 404]
    for answer in answers:
        assert abs((date_of(answer.headers) - expected).total_seconds()) <= DATE_SLACK, answer.headers["Date"]
    status, headers, _ = parse_raw_answer(raw_exchange(sandbox.port, b"GARBAGE\r\n\r\n"))
    assert status == 400
    assert abs((date_of(headers) - expected).total_seconds()) <= DATE_SLACK


# -- resize, auto-release, release -------------------------------------------------------------


def test_resize_sets_the_total(client: Client, served_control: SandboxControl) -> None:
    instance_id = client.purchase(count=2)
    assert client.ok("ResizeTPMResource", {"instanceId": instance_id, "count": 5}) is True
    [item] = client.describe(instanceId=instance_id)
    assert (item["tpm"], item["rpm"]) == (50000, 165)
    assert_error(client.call("ResizeTPMResource", {"instanceId": instance_id, "count": 0}), 400, "InvalidParameter")
    assert_error(client.call("ResizeTPMResource", {"instanceId": instance_id, "count": "5"}), 400, "InappropriateJSON")
    assert_error(client.call("ResizeTPMResource", {"instanceId": instance_id}), 400, "InappropriateJSON")
    assert_error(client.call("ResizeTPMResource", {"instanceId": "tpm-nothere", "count": 1}), 404, "ResourceNotFound")
    assert served_control.instances()[0]["count"] == 5


def test_resize_is_an_order_that_shows_after_the_delay(client: Client, served_control: SandboxControl) -> None:
    served_control.set_option("resize_delay_seconds", 0.5)
    instance_id = client.purchase(count=2)
    started = time.monotonic()
    assert client.ok("ResizeTPMResource", {"instanceId": instance_id, "count": 5}) is True
    shown = client.describe()[0]["tpm"]
    if time.monotonic() - started < 0.5:
        assert shown == 20000
        assert served_control.instances()[0]["count"] == 2
    deadline = time.monotonic() + 5
    while client.describe()[0]["tpm"] != 50000:
        assert time.monotonic() < deadline, "the resize never showed"
        time.sleep(0.05)
    assert time.monotonic() - started >= 0.5
    assert served_control.instances()[0]["count"] == 5


def test_resize_order_follows_the_sandbox_clock(client: Client, served_control: SandboxControl) -> None:
    served_control.set_option("resize_delay_seconds", 600)
    served_control.set_option("describe_shape", "rich")
    instance_id = client.purchase(count=2)
    client.ok("ResizeTPMResource", {"instanceId": instance_id, "count": 4})
    assert client.describe()[0]["count"] == 2
    # A second order replaces the first; the size shown stays until it is due.
    client.ok("ResizeTPMResource", {"instanceId": instance_id, "count": 7})
    assert client.describe()[0]["count"] == 2
    served_control.set_option("clock_offset_seconds", 601)
    assert client.describe()[0]["count"] == 7
    # An order that is due is kept when the next one is placed.
    client.ok("ResizeTPMResource", {"instanceId": instance_id, "count": 9})
    assert client.describe()[0]["count"] == 7
    # A change in Baidu's console (the control) cancels the pending order.
    served_control.update_instance(instance_id, count=3)
    served_control.set_option("clock_offset_seconds", 2000)
    assert client.describe()[0]["count"] == 3


def test_auto_release_sets_moves_and_cancels(client: Client, served_control: SandboxControl) -> None:
    instance_id = client.purchase()
    assert client.ok("AutoReleaseTPMResource", {"instanceId": instance_id, "releaseTime": "2031-03-04 05:06:07"})
    assert client.describe()[0]["expiredTime"] == "2031-03-03T21:06:07Z"
    assert client.ok("AutoReleaseTPMResource", {"instanceId": instance_id, "releaseTime": "2032-01-01T00:00:00Z"})
    assert served_control.instances()[0]["releaseTime"] == "2032-01-01T08:00:00+08:00"
    assert client.ok("AutoReleaseTPMResource", {"instanceId": instance_id})
    assert client.describe()[0]["expiredTime"] == "-"
    client.ok("AutoReleaseTPMResource", {"instanceId": instance_id, "releaseTime": "2031-03-04 05:06:07"})
    assert client.ok("AutoReleaseTPMResource", {"instanceId": instance_id, "releaseTime": None})
    assert served_control.instances()[0]["releaseTime"] is None
    payload = assert_error(
        client.call("AutoReleaseTPMResource", {"instanceId": instance_id, "releaseTime": "2001-01-01 00:00:00"}),
        400,
        "InvalidParameter",
    )
    assert payload["message"].startswith("releaseTime:")
    assert_error(client.call("AutoReleaseTPMResource", {"instanceId": "tpm-nothere"}), 404, "ResourceNotFound")


def test_release_checks_model_and_stops(client: Client, served_control: SandboxControl) -> None:
    instance_id = client.purchase()
    payload = assert_error(
        client.call("ReleaseTPMResource", {"model": OTHER_MODEL, "instanceId": instance_id}), 400, "InvalidParameter"
    )
    assert payload["message"].startswith("model:")
    assert served_control.instances()[0]["status"] == "Creating"
    assert_error(
        client.call("ReleaseTPMResource", {"model": MODEL, "instanceId": "tpm-nothere"}), 404, "ResourceNotFound"
    )
    assert client.ok("ReleaseTPMResource", {"model": MODEL, "instanceId": instance_id}) is True
    [item] = client.describe()
    assert item["status"] == "Stopped"
    # A released instance's expiredTime is the moment it was released.
    assert abs((utc(item["expiredTime"]) - datetime.now(UTC)).total_seconds()) < 5
    assert served_control.instances()[0]["released"] is True
    assert_error(
        client.call("ReleaseTPMResource", {"model": MODEL, "instanceId": instance_id}), 400, "InvalidInstanceStatus"
    )
    assert_error(
        client.call("ResizeTPMResource", {"instanceId": instance_id, "count": 2}), 400, "InvalidInstanceStatus"
    )
    assert_error(client.call("AutoReleaseTPMResource", {"instanceId": instance_id}), 400, "InvalidInstanceStatus")


# -- faults -----------------------------------------------------------------------------------


def test_throttle_changes_nothing_and_is_used_up(client: Client, served_control: SandboxControl) -> None:
    served_control.add_fault("PurchaseTPMResource", "throttle")
    assert_error(client.call("PurchaseTPMResource", purchase_body()), 429, "RateLimitExceeded")
    assert served_control.instances() == []
    client.purchase()
    assert len(served_control.instances()) == 1
    assert [(r["status"], r["code"]) for r in served_control.requests("PurchaseTPMResource")] == [
        (429, "RateLimitExceeded"),
        (200, None),
    ]


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (None, "InternalError"),
        (500, "InternalError"),
        (502, "BadGateway"),
        (503, "ServiceUnavailable"),
        (504, "GatewayTimeout"),
        (507, "InternalError"),
        (418, "BadRequest"),
    ],
)
def test_error_fault_statuses(client: Client, served_control: SandboxControl, status: int | None, code: str) -> None:
    served_control.add_fault("PurchaseTPMResource", "error", status=status)
    assert_error(client.call("PurchaseTPMResource", purchase_body()), status or 500, code)
    assert served_control.instances() == []


def test_error_after_commit_applies_the_change(client: Client, served_control: SandboxControl) -> None:
    served_control.add_fault("PurchaseTPMResource", "error_after_commit")
    assert_error(client.call("PurchaseTPMResource", purchase_body(purchaseCount=4)), 500, "InternalError")
    [row] = served_control.instances()
    assert row["count"] == 4


def test_drop_loses_the_request(client: Client, served_control: SandboxControl) -> None:
    served_control.add_fault("PurchaseTPMResource", "drop")
    with pytest.raises(requests.ConnectionError):
        client.call("PurchaseTPMResource", purchase_body())
    assert served_control.instances() == []
    assert served_control.requests()[-1]["status"] == 0


def test_drop_after_commit_loses_only_the_answer(client: Client, served_control: SandboxControl) -> None:
    served_control.add_fault("PurchaseTPMResource", "drop_after_commit")
    with pytest.raises(requests.ConnectionError):
        client.call("PurchaseTPMResource", purchase_body(purchaseCount=2))
    [row] = served_control.instances()
    assert row["count"] == 2
    assert served_control.requests()[-1]["status"] == 0


def test_not_applied_answers_true_and_changes_nothing(client: Client, served_control: SandboxControl) -> None:
    instance_id = client.purchase(count=2)
    for action in ("ResizeTPMResource", "AutoReleaseTPMResource", "ReleaseTPMResource"):
        served_control.add_fault(action, "not_applied")
    assert client.ok("ResizeTPMResource", {"instanceId": instance_id, "count": 7}) is True
    assert client.ok("AutoReleaseTPMResource", {"instanceId": instance_id, "releaseTime": in_hours(5)}) is True
    assert client.ok("ReleaseTPMResource", {"model": MODEL, "instanceId": instance_id}) is True
    [row] = served_control.instances()
    assert (row["count"], row["releaseTime"], row["released"]) == (2, None, False)
    assert client.ok("ResizeTPMResource", {"instanceId": instance_id, "count": 7}) is True
    assert served_control.instances()[0]["count"] == 7


def test_empty_fault_lists_nothing_once_and_only_for_describe(client: Client, served_control: SandboxControl) -> None:
    instance_id = client.purchase()
    served_control.add_fault("DescribeTPMResource", "empty")
    assert client.describe() == []
    assert [item["instanceId"] for item in client.describe()] == [instance_id]
    for action in ("*", "PurchaseTPMResource", "ReleaseTPMResource"):
        with pytest.raises(ValueError, match="for DescribeTPMResource only"):
            served_control.add_fault(action, "empty")


def test_wildcard_fault_and_count(client: Client, served_control: SandboxControl) -> None:
    served_control.add_fault("*", "throttle", count=2)
    assert_error(client.call("DescribeTPMResource", {"model": MODEL}), 429, "RateLimitExceeded")
    assert_error(client.call("PurchaseTPMResource", purchase_body()), 429, "RateLimitExceeded")
    assert client.describe() == []
    served_control.add_fault("*", "error", count=5)
    served_control.clear_faults()
    assert client.describe() == []


def test_fault_for_another_action_does_not_fire(client: Client, served_control: SandboxControl) -> None:
    served_control.add_fault("ReleaseTPMResource", "error")
    client.purchase()
    assert len(client.describe()) == 1


@pytest.mark.parametrize(
    ("action", "kind", "count", "status"),
    [
        ("PurchaseTPMResource", "explode", 1, None),
        ("BuyTPM", "error", 1, None),
        ("PurchaseTPMResource", "error", 0, None),
        ("PurchaseTPMResource", "error", True, None),
        ("PurchaseTPMResource", "error", 2**70, None),
        ("PurchaseTPMResource", "error", 1, 200),
        ("PurchaseTPMResource", "error", 1, 600),
    ],
)
def test_fault_arguments_are_checked(
    served_control: SandboxControl, action: str, kind: str, count: int, status: int | None
) -> None:
    with pytest.raises(ValueError):
        served_control.add_fault(action, kind, count, status)


def test_concurrent_requests_never_share_a_fault_unit(client: Client, served_control: SandboxControl) -> None:
    served_control.add_fault("PurchaseTPMResource", "throttle", count=3)
    statuses = run_concurrently(8, lambda: client.call("PurchaseTPMResource", purchase_body()).status_code)
    assert sorted(statuses) == [200] * 5 + [429] * 3
    assert len(served_control.instances()) == 5


# -- options ----------------------------------------------------------------------------------


def test_creating_then_running_via_clock_offset(client: Client, served_control: SandboxControl) -> None:
    assert served_control.get_option("creating_seconds") == 1.0
    instance_id = client.purchase()
    assert client.describe(instanceId=instance_id)[0]["status"] == "Creating"
    assert client.describe(status="Running") == []
    served_control.set_option("clock_offset_seconds", 5)
    assert client.describe(instanceId=instance_id)[0]["status"] == "Running"
    assert [i["instanceId"] for i in client.describe(status="Running")] == [instance_id]


def test_creating_seconds_zero_is_running_at_once(client: Client, served_control: SandboxControl) -> None:
    served_control.set_option("creating_seconds", 0)
    client.purchase()
    assert client.describe()[0]["status"] == "Running"


def test_release_time_expiry_via_clock_offset(client: Client, served_control: SandboxControl) -> None:
    instance_id = client.purchase(release_time=in_hours(1))
    expired_time = client.describe()[0]["expiredTime"]
    served_control.set_option("clock_offset_seconds", 2 * 3600)
    [item] = client.describe()
    assert item["status"] == "Stopped" and item["expiredTime"] == expired_time
    assert client.describe(status="Stopped")[0]["instanceId"] == instance_id
    assert served_control.instances()[0]["status"] == "Stopped"
    assert_error(
        client.call("ResizeTPMResource", {"instanceId": instance_id, "count": 2}), 400, "InvalidInstanceStatus"
    )
    # "In the future" is judged on the sandbox clock too.
    body = purchase_body(billing={"paymentTiming": "Postpaid", "releaseTime": in_hours(1.5)})
    payload = assert_error(client.call("PurchaseTPMResource", body), 400, "InvalidParameter")
    assert payload["message"].startswith("billing.releaseTime:")


def test_latency_delays_every_request(client: Client, served_control: SandboxControl) -> None:
    served_control.set_option("latency_ms", 300)
    started = time.monotonic()
    client.describe()
    assert time.monotonic() - started >= 0.3
    served_control.set_option("latency_ms", 0)
    started = time.monotonic()
    client.describe()
    assert time.monotonic() - started < 0.3


def test_released_visibility(client: Client, served_control: SandboxControl) -> None:
    instance_id = client.purchase()
    client.ok("ReleaseTPMResource", {"model": MODEL, "instanceId": instance_id})
    assert client.describe()[0]["status"] == "Stopped"
    served_control.set_option("released_visibility", "hidden")
    assert client.describe() == []
    assert client.describe(instanceId=instance_id) == []
    assert served_control.instances()[0]["status"] == "Stopped"


def test_a_stopped_instance_is_listed_for_stopped_listed_seconds_then_no_more(
    client: Client, served_control: SandboxControl
) -> None:
    released = client.purchase()
    client.ok("ReleaseTPMResource", {"model": MODEL, "instanceId": released})
    expired = client.purchase()
    served_control.update_instance(expired, status="Stopped")
    running = client.purchase()
    served_control.set_option("stopped_listed_seconds", 60)
    assert {item["instanceId"] for item in client.describe()} == {released, expired, running}
    served_control.set_option("clock_offset_seconds", 61)  # a minute later, on the sandbox clock
    assert [item["instanceId"] for item in client.describe()] == [running]
    assert client.describe(instanceId=released) == []
    assert {row["instanceId"] for row in served_control.instances()} == {released, expired, running}  # still held


def test_unknown_instance_option(client: Client, served_control: SandboxControl) -> None:
    other = client.purchase(model=OTHER_MODEL)
    assert client.describe(instanceId="tpm-nothere") == []
    served_control.set_option("unknown_instance", "error")
    assert_error(
        client.call("DescribeTPMResource", {"model": MODEL, "instanceId": "tpm-nothere"}), 404, "ResourceNotFound"
    )
    assert_error(client.call("DescribeTPMResource", {"model": MODEL, "instanceId": other}), 404, "ResourceNotFound")


def test_release_again_option(client: Client, served_control: SandboxControl) -> None:
    instance_id = client.purchase()
    client.ok("ReleaseTPMResource", {"model": MODEL, "instanceId": instance_id})
    served_control.set_option("release_again", "ok")
    assert client.ok("ReleaseTPMResource", {"model": MODEL, "instanceId": instance_id}) is True
    assert_error(
        client.call("ReleaseTPMResource", {"model": OTHER_MODEL, "instanceId": instance_id}), 400, "InvalidParameter"
    )


def test_option_defaults(served_control: SandboxControl) -> None:
    options = served_control.options()
    assert (options.describe_shape, options.id_style, options.resize_delay_seconds) == ("documented", "tpm", 0.0)
    assert (options.released_visibility, options.unknown_instance, options.release_again) == (
        "stopped",
        "empty",
        "error",
    )
    assert (options.creating_seconds, options.latency_ms, options.clock_offset_seconds) == (1.0, 0.0, 0.0)
    assert (options.page_size, options.visible_after_seconds, options.retired_models) == (0, 0.0, ())
    assert options.stopped_listed_seconds == 100 * 366 * 86400.0  # for ever


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("describe_shape", "sparse"),
        ("describe_mode", "full"),
        ("id_style", "uuid"),
        ("latency_ms", -1),
        ("latency_ms", 10**400),
        ("creating_seconds", "1"),
        ("creating_seconds", True),
        ("resize_delay_seconds", -0.5),
        ("resize_delay_seconds", float("inf")),
        ("clock_offset_seconds", float("nan")),
        ("clock_offset_seconds", 1e300),
        ("no_such_option", 1),
    ],
)
def test_option_names_and_values_are_checked(served_control: SandboxControl, name: str, value: Any) -> None:
    before = served_control.options()
    with pytest.raises(ValueError, match=name):
        served_control.set_option(name, value)
    assert served_control.options() == before


def test_unknown_option_name_on_read(served_control: SandboxControl) -> None:
    with pytest.raises(ValueError, match="describe_shape"):
        served_control.get_option("describe_mode")


# -- control ----------------------------------------------------------------------------------


def test_out_of_band_updates(client: Client, served_control: SandboxControl) -> None:
    instance_id = client.purchase(count=1)
    served_control.update_instance(instance_id, count=6, release_time="2033-05-06 07:08:09")
    [row] = served_control.instances()
    assert (row["count"], row["releaseTime"]) == (6, "2033-05-06T07:08:09+08:00")
    assert client.describe()[0]["tpm"] == 60000
    served_control.update_instance(instance_id, release_time=datetime(2034, 1, 1, tzinfo=UTC))
    assert served_control.instances()[0]["releaseTime"] == "2034-01-01T08:00:00+08:00"
    served_control.update_instance(instance_id, release_time=None)
    assert client.describe()[0]["expiredTime"] == "-"
    served_control.update_instance(instance_id, status="Stopped")
    assert client.describe()[0]["status"] == "Stopped"
    assert served_control.instances()[0]["released"] is False
    served_control.update_instance(instance_id, status="Running")
    assert client.describe()[0]["status"] == "Running"
    with pytest.raises(KeyError):
        served_control.update_instance("tpm-nothere", count=2)
    for bad in (
        {"status": "Exploded"},
        {"count": 0},
        {"count": True},
        {"release_time": "soon"},
        {"release_time": datetime(2034, 1, 1)},
        {"release_time": 1893456000},
    ):
        with pytest.raises(ValueError):
            served_control.update_instance(instance_id, **bad)


def test_instances_rows(client: Client, served_control: SandboxControl) -> None:
    first = client.purchase()
    second = client.purchase(model=OTHER_MODEL, release_time="2031-01-01 00:00:00")
    client.ok("ReleaseTPMResource", {"model": MODEL, "instanceId": first})
    rows = served_control.instances()
    assert [r["instanceId"] for r in rows] == [first, second]
    assert {r["instanceId"]: r["status"] for r in rows} == {first: "Stopped", second: "Creating"}
    assert [r["instanceId"] for r in served_control.instances(OTHER_MODEL)] == [second]
    assert set(rows[0]) == {
        "instanceId",
        "model",
        "count",
        "paymentTiming",
        "status",
        "releaseTime",
        "startTime",
        "released",
    }
    assert rows[0]["releaseTime"] is None and rows[1]["releaseTime"] == "2031-01-01T00:00:00+08:00"
    assert BEIJING_RFC3339.fullmatch(rows[0]["startTime"])


def test_request_journal(client: Client, served_control: SandboxControl) -> None:
    client.purchase()
    client.call("PurchaseTPMResource", None, raw=b"{oops")
    client.call("PurchaseTPMResource", None, raw=b"[" * 5000)
    Client(client.url, sk="wrong").call("PurchaseTPMResource", purchase_body())
    client.describe()
    rows = served_control.requests()
    assert [(r["action"], r["status"], r["code"]) for r in rows] == [
        ("PurchaseTPMResource", 200, None),
        ("PurchaseTPMResource", 400, "MalformedJSON"),
        ("PurchaseTPMResource", 400, "MalformedJSON"),
        ("DescribeTPMResource", 200, None),
    ]
    assert rows[0]["body"] == purchase_body()
    assert rows[1]["body"] == "{oops"
    assert rows[2]["body"] == "[" * 5000
    assert set(rows[0]) == {"action", "body", "status", "code"}
    assert SANDBOX_ACCESS_KEY not in json.dumps(rows)
    assert len(served_control.requests("DescribeTPMResource")) == 1
    served_control.clear_requests()
    assert served_control.requests() == []


# -- concurrency and sharing ------------------------------------------------------------------


def run_concurrently(n: int, work: Any) -> list[Any]:
    """Run `work` in n threads released at once; re-raise the first failure."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=TIMEOUT)
            results[index] = work()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    if errors:
        raise errors[0]
    return results


def test_eight_concurrent_purchases(client: Client, served_control: SandboxControl) -> None:
    ids = run_concurrently(8, lambda: client.purchase(count=1))
    assert len(set(ids)) == 8
    assert sorted(r["instanceId"] for r in served_control.instances()) == sorted(ids)
    assert [r["status"] for r in served_control.requests("PurchaseTPMResource")] == [200] * 8


def test_concurrent_resizes_are_not_lost(client: Client, served_control: SandboxControl) -> None:
    ids = [client.purchase() for _ in range(4)]
    counter = iter(range(8))
    lock = threading.Lock()

    def resize() -> bool:
        with lock:
            index = next(counter)
        return bool(client.ok("ResizeTPMResource", {"instanceId": ids[index % 4], "count": 10 + index}))

    assert run_concurrently(8, resize) == [True] * 8
    final = {r["instanceId"]: r["count"] for r in served_control.instances()}
    assert all(final[ids[i]] in (10 + i, 14 + i) for i in range(4))


def test_two_sandboxes_share_one_database(served_db: Path) -> None:
    with Sandbox(served_db) as first, start_sandbox(served_db) as second:
        assert first.url != second.url
        instance_id = Client(first.url).purchase()
        assert [i["instanceId"] for i in Client(second.url).describe()] == [instance_id]
        SandboxControl(served_db).set_option("describe_shape", "rich")
        assert Client(first.url).describe()[0]["model"] == MODEL
        Client(second.url).ok("ReleaseTPMResource", {"model": MODEL, "instanceId": instance_id})
        assert Client(first.url).describe()[0]["status"] == "Stopped"


# -- lifecycle --------------------------------------------------------------------------------


def test_lifecycle(served_db: Path) -> None:
    sandbox = Sandbox(served_db)
    assert not served_db.exists()  # nothing happens before start()
    sandbox.start()
    try:
        assert served_db.exists()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", sandbox.url)
        assert sandbox.url.endswith(f":{sandbox.port}")
        assert Client(sandbox.url).describe() == []
        assert sandbox.start() is sandbox  # starting twice is harmless
    finally:
        sandbox.stop()
    sandbox.stop()  # twice is fine
    assert not sandbox.running
    with pytest.raises(RuntimeError):
        _ = sandbox.url


def test_stopped_sandbox_refuses_connections(served_db: Path) -> None:
    with Sandbox(served_db) as sandbox:
        url = sandbox.url
    with pytest.raises(requests.ConnectionError):
        Client(url).call("DescribeTPMResource", {"model": MODEL})
