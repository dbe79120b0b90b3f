"""The sandbox's HTTP protocol, faults, options and storage, driven in-process.

Requests are signed with Baidu's own signer (the one the qianfan SDK uses) and sent with
`requests`, so these tests see exactly what a client sees: statuses, codes, headers.
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from baidubce.auth.bce_credentials import BceCredentials
from baidubce.auth.bce_v1_signer import sign
from baidubce.utils import get_canonical_time

from providers.release_time import BEIJING, format_release_time, parse_release_time
from providers.sandbox import (
    SANDBOX_ACCESS_KEY,
    SANDBOX_SECRET_KEY,
    Sandbox,
    SandboxControl,
    SandboxError,
    start_sandbox,
)

MODEL = "ernie-speed-8k"
OTHER_MODEL = "ernie-lite-8k"
TIMEOUT = 10
RFC3339_BEIJING = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+08:00$")


class Client:
    """A minimal Qianfan console client: signs like the SDK, returns the raw response."""

    def __init__(self, url: str, ak: str = SANDBOX_ACCESS_KEY, sk: str = SANDBOX_SECRET_KEY) -> None:
        self.url = url
        self.ak = ak
        self.sk = sk

    def headers(
        self, action: str, *, timestamp: float | None = None, expiry: int = 300, host: str | None = None
    ) -> dict[str, str]:
        moment = time.time() if timestamp is None else timestamp
        headers = {
            "host": host or urlsplit(self.url).netloc,
            "content-type": "application/json",
            "x-bce-date": get_canonical_time(moment).decode(),
        }
        authorization = sign(
            BceCredentials(self.ak, self.sk),
            b"POST",
            b"/v2/charge",
            {k.encode(): v.encode() for k, v in headers.items()},
            {b"Action": action.encode()},
            timestamp=moment,
            expiration_in_seconds=expiry,
            headers_to_sign={k.encode() for k in headers},
        )
        headers["authorization"] = authorization.decode()
        return headers

    def call(
        self,
        action: str,
        body: Any,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
        **sign_options: Any,
    ) -> requests.Response:
        data = raw if raw is not None else json.dumps(body).encode()
        sent = self.headers(action, **sign_options) if headers is None else headers
        return requests.post(
            f"{self.url}/v2/charge", params={"Action": action}, data=data, headers=sent, timeout=TIMEOUT
        )

    def ok(self, action: str, body: Any) -> Any:
        response = self.call(action, body)
        assert response.status_code == 200, response.text
        payload = response.json()
        assert payload["requestId"] == response.headers["X-Bce-Request-Id"]
        return payload["result"]

    def purchase(self, model: str = MODEL, count: int = 1, release_time: str | None = None) -> str:
        billing: dict[str, Any] = {"paymentTiming": "Postpaid"}
        if release_time is not None:
            billing["releaseTime"] = release_time
        result = self.ok("PurchaseTPMResource", {"model": model, "billing": billing, "purchaseCount": count})
        return result["instanceId"]

    def describe(self, model: str = MODEL, **filters: Any) -> list[dict[str, Any]]:
        return self.ok("DescribeTPMResource", {"model": model, **filters})["instances"]


def assert_error(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    """Every documented part of an error answer: status, body, request id and headers."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    payload = response.json()
    assert payload["code"] == code
    assert isinstance(payload["message"], str) and payload["message"]
    uuid.UUID(payload["requestId"])
    assert response.headers["X-Bce-Request-Id"] == payload["requestId"]
    assert response.headers["X-Bce-Error-Code"] == code
    assert response.headers["X-Bce-Error-Message"]
    return payload


def in_hours(hours: float) -> str:
    return format_release_time(datetime.now(BEIJING) + timedelta(hours=hours))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "qianfan.db"


@pytest.fixture
def sandbox(db_path: Path) -> Iterator[Sandbox]:
    with Sandbox(db_path, extra_models=["my-custom-model"]) as running:
        yield running


@pytest.fixture
def control(sandbox: Sandbox, db_path: Path) -> SandboxControl:
    return SandboxControl(db_path)


@pytest.fixture
def client(sandbox: Sandbox) -> Client:
    return Client(sandbox.url)


# -- success shapes ---------------------------------------------------------------------------


def test_purchase_answers_an_instance_id_and_request_id(client: Client, control: SandboxControl) -> None:
    response = client.call(
        "PurchaseTPMResource",
        {"model": MODEL, "billing": {"paymentTiming": "Postpaid"}, "purchaseCount": 2},
    )
    assert response.status_code == 200
    payload = response.json()
    uuid.UUID(payload["requestId"])
    assert response.headers["X-Bce-Request-Id"] == payload["requestId"]
    assert re.fullmatch(r"tpm-[A-Za-z0-9]{8}", payload["result"]["instanceId"])
    assert "X-Bce-Error-Code" not in response.headers
    [row] = control.instances()
    assert row["instanceId"] == payload["result"]["instanceId"]
    assert (row["model"], row["count"], row["paymentTiming"]) == (MODEL, 2, "Postpaid")


def test_describe_full_item(client: Client) -> None:
    instance_id = client.purchase(count=3, release_time="2030-01-25 12:30:30")
    [item] = client.describe()
    assert item == {
        "instanceId": instance_id,
        "model": MODEL,
        "paymentTiming": "Postpaid",
        "count": 3,
        "tpm": 30000,
        "rpm": 99,
        "status": "Creating",
        "startTime": item["startTime"],
        "releaseTime": "2030-01-25T12:30:30+08:00",
        "expiredTime": "2030-01-25T12:30:30+08:00",
    }
    assert RFC3339_BEIJING.match(item["startTime"])
    started = parse_release_time(item["startTime"]).timestamp()
    assert abs(started - time.time()) < 5


def test_describe_without_release_time_and_across_models(client: Client) -> None:
    mine = client.purchase(release_time="2030-01-25T04:30:30Z")
    other = client.purchase(model=OTHER_MODEL)
    [item] = client.describe()
    assert item["instanceId"] == mine
    assert item["releaseTime"] == "2030-01-25T12:30:30+08:00"
    [other_item] = client.describe(OTHER_MODEL)
    assert other_item["releaseTime"] is None and other_item["expiredTime"] == ""
    assert client.describe(instanceId=other) == []
    assert [i["instanceId"] for i in client.describe(instanceId=mine)] == [mine]
    assert client.describe("ernie-tiny-8k") == []


def test_extra_models_are_accepted(client: Client) -> None:
    instance_id = client.purchase(model="my-custom-model")
    assert [i["instanceId"] for i in client.describe("my-custom-model")] == [instance_id]


# -- authentication ---------------------------------------------------------------------------


def test_missing_authorization_is_access_denied_before_the_body(client: Client) -> None:
    headers = client.headers("PurchaseTPMResource")
    del headers["authorization"]
    response = client.call("PurchaseTPMResource", None, raw=b"{not json", headers=headers)
    assert_error(response, 403, "AccessDenied")


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer abc",
        "bce-auth-v1/only/three",
        "bce-auth-v1/ak/yesterday/300/host/" + "0" * 64,
        "bce-auth-v1/ak/2026-01-01T00:00:00Z/300/host/not-hex",
    ],
)
def test_garbled_authorization_is_access_denied(client: Client, authorization: str) -> None:
    headers = client.headers("DescribeTPMResource")
    headers["authorization"] = authorization
    assert_error(client.call("DescribeTPMResource", {"model": MODEL}, headers=headers), 403, "AccessDenied")


def test_unknown_access_key(sandbox: Sandbox) -> None:
    stranger = Client(sandbox.url, ak="someone-else", sk=SANDBOX_SECRET_KEY)
    assert_error(stranger.call("DescribeTPMResource", {"model": MODEL}), 403, "InvalidAccessKeyId")


def test_wrong_secret_key_is_signature_mismatch(sandbox: Sandbox, control: SandboxControl) -> None:
    wrong = Client(sandbox.url, sk="not-the-secret")
    body = {"model": MODEL, "billing": {"paymentTiming": "Postpaid"}, "purchaseCount": 1}
    assert_error(wrong.call("PurchaseTPMResource", body), 403, "SignatureDoesNotMatch")
    assert control.instances() == []


def test_tampered_request_is_signature_mismatch(client: Client) -> None:
    # Signed for Describe but sent as Purchase: the query is part of the signature.
    headers = client.headers("DescribeTPMResource")
    body = {"model": MODEL, "billing": {"paymentTiming": "Postpaid"}, "purchaseCount": 1}
    assert_error(client.call("PurchaseTPMResource", body, headers=headers), 403, "SignatureDoesNotMatch")
    # Signed for another host (the port is part of the host header).
    headers = client.headers("DescribeTPMResource", host="127.0.0.1:1")
    headers["host"] = urlsplit(client.url).netloc
    assert_error(client.call("DescribeTPMResource", {"model": MODEL}, headers=headers), 403, "SignatureDoesNotMatch")


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


def test_clock_offset_does_not_affect_signatures(client: Client, control: SandboxControl) -> None:
    control.set_option("clock_offset_seconds", 7 * 24 * 3600)
    assert client.call("DescribeTPMResource", {"model": MODEL}).status_code == 200


def test_custom_credentials_replace_the_sandbox_pair(db_path: Path) -> None:
    with Sandbox(db_path, {"AK1": "SK1", "AK2": "SK2"}) as sandbox:
        assert Client(sandbox.url, "AK1", "SK1").describe() == []
        assert Client(sandbox.url, "AK2", "SK2").describe() == []
        assert_error(Client(sandbox.url).call("DescribeTPMResource", {"model": MODEL}), 403, "InvalidAccessKeyId")


# -- routing ----------------------------------------------------------------------------------


def test_unknown_path_method_and_action(client: Client, sandbox: Sandbox) -> None:
    headers = client.headers("PurchaseTPMResource")
    response = requests.post(
        f"{sandbox.url}/v2/other",
        params={"Action": "PurchaseTPMResource"},
        data=b"{}",
        headers=headers,
        timeout=TIMEOUT,
    )
    assert_error(response, 404, "NotFound")
    response = requests.get(f"{sandbox.url}/v2/charge", params={"Action": "DescribeTPMResource"}, timeout=TIMEOUT)
    assert_error(response, 405, "MethodNotAllowed")
    assert_error(client.call("BuyEverything", {"model": MODEL}), 400, "InvalidAction")


# -- body validation --------------------------------------------------------------------------


def purchase_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": MODEL, "billing": {"paymentTiming": "Postpaid"}, "purchaseCount": 1}
    body.update(changes)
    return body


@pytest.mark.parametrize("raw", [b"{not json", b"", b'{"model": '])
def test_malformed_json(client: Client, control: SandboxControl, raw: bytes) -> None:
    assert_error(client.call("PurchaseTPMResource", None, raw=raw), 400, "MalformedJSON")
    assert control.instances() == []


@pytest.mark.parametrize(
    "body",
    [
        purchase_body(purchaseCount="two"),
        purchase_body(purchaseCount=1.5),
        purchase_body(purchaseCount=2.0),
        purchase_body(purchaseCount=True),
        purchase_body(purchaseCount=None),
        purchase_body(model=None),
        purchase_body(model=7),
        purchase_body(billing="Postpaid"),
        purchase_body(billing={"releaseTime": "2030-01-25 12:30:30"}),
        purchase_body(billing={"paymentTiming": "Postpaid", "releaseTime": 1893556800}),
        {"billing": {"paymentTiming": "Postpaid"}, "purchaseCount": 1},
        [purchase_body()],
    ],
)
def test_inappropriate_json(client: Client, control: SandboxControl, body: Any) -> None:
    assert_error(client.call("PurchaseTPMResource", body), 400, "InappropriateJSON")
    assert control.instances() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (purchase_body(model="ernie-9000"), "model"),
        (purchase_body(purchaseCount=0), "purchaseCount"),
        (purchase_body(purchaseCount=-3), "purchaseCount"),
        (purchase_body(billing={"paymentTiming": "Prepaid"}), "billing.paymentTiming"),
        (purchase_body(billing={"paymentTiming": "Postpaid", "releaseTime": "next tuesday"}), "billing.releaseTime"),
        (
            purchase_body(billing={"paymentTiming": "Postpaid", "releaseTime": "2030-02-30 12:00:00"}),
            "billing.releaseTime",
        ),
        (
            purchase_body(billing={"paymentTiming": "Postpaid", "releaseTime": "2020-01-25T12:30:30+08:00"}),
            "billing.releaseTime",
        ),
    ],
)
def test_invalid_parameter_names_the_field(
    client: Client, control: SandboxControl, body: dict[str, Any], field: str
) -> None:
    payload = assert_error(client.call("PurchaseTPMResource", body), 400, "InvalidParameter")
    assert field in payload["message"]
    assert control.instances() == []


def test_describe_filter_validation(client: Client) -> None:
    assert_error(client.call("DescribeTPMResource", {}), 400, "InappropriateJSON")
    assert_error(client.call("DescribeTPMResource", {"model": MODEL, "status": "Dead"}), 400, "InvalidParameter")
    assert_error(
        client.call("DescribeTPMResource", {"model": MODEL, "paymentTiming": "Prepaid"}), 400, "InvalidParameter"
    )


# -- resize, auto-release, release -------------------------------------------------------------


def test_resize_sets_the_total(client: Client, control: SandboxControl) -> None:
    instance_id = client.purchase(count=2)
    assert client.ok("ResizeTPMResource", {"instanceId": instance_id, "count": 5}) is True
    [item] = client.describe(instanceId=instance_id)
    assert (item["count"], item["tpm"], item["rpm"]) == (5, 50000, 165)
    assert_error(client.call("ResizeTPMResource", {"instanceId": instance_id, "count": 0}), 400, "InvalidParameter")
    assert_error(client.call("ResizeTPMResource", {"instanceId": instance_id, "count": "5"}), 400, "InappropriateJSON")
    assert_error(client.call("ResizeTPMResource", {"instanceId": "tpm-nothere", "count": 1}), 404, "ResourceNotFound")
    assert control.instances()[0]["count"] == 5


def test_auto_release_sets_moves_and_cancels(client: Client) -> None:
    instance_id = client.purchase()
    assert client.ok("AutoReleaseTPMResource", {"instanceId": instance_id, "releaseTime": "2031-03-04 05:06:07"})
    assert client.describe()[0]["releaseTime"] == "2031-03-04T05:06:07+08:00"
    assert client.ok("AutoReleaseTPMResource", {"instanceId": instance_id, "releaseTime": "2032-01-01T00:00:00Z"})
    assert client.describe()[0]["releaseTime"] == "2032-01-01T08:00:00+08:00"
    assert client.ok("AutoReleaseTPMResource", {"instanceId": instance_id})
    assert client.describe()[0]["releaseTime"] is None
    assert client.describe()[0]["expiredTime"] == ""
    client.ok("AutoReleaseTPMResource", {"instanceId": instance_id, "releaseTime": "2031-03-04 05:06:07"})
    assert client.ok("AutoReleaseTPMResource", {"instanceId": instance_id, "releaseTime": None})
    assert client.describe()[0]["releaseTime"] is None
    payload = assert_error(
        client.call("AutoReleaseTPMResource", {"instanceId": instance_id, "releaseTime": "2001-01-01 00:00:00"}),
        400,
        "InvalidParameter",
    )
    assert "releaseTime" in payload["message"]
    assert_error(client.call("AutoReleaseTPMResource", {"instanceId": "tpm-nothere"}), 404, "ResourceNotFound")


def test_release_checks_model_and_stops(client: Client, control: SandboxControl) -> None:
    instance_id = client.purchase()
    payload = assert_error(
        client.call("ReleaseTPMResource", {"model": OTHER_MODEL, "instanceId": instance_id}), 400, "InvalidParameter"
    )
    assert "model" in payload["message"]
    assert control.instances()[0]["status"] == "Creating"
    assert_error(
        client.call("ReleaseTPMResource", {"model": MODEL, "instanceId": "tpm-nothere"}), 404, "ResourceNotFound"
    )
    assert client.ok("ReleaseTPMResource", {"model": MODEL, "instanceId": instance_id}) is True
    assert client.describe()[0]["status"] == "Stopped"
    assert control.instances()[0]["released"] is True
    assert_error(
        client.call("ReleaseTPMResource", {"model": MODEL, "instanceId": instance_id}), 400, "InvalidInstanceStatus"
    )
    assert_error(
        client.call("ResizeTPMResource", {"instanceId": instance_id, "count": 2}), 400, "InvalidInstanceStatus"
    )
    assert_error(client.call("AutoReleaseTPMResource", {"instanceId": instance_id}), 400, "InvalidInstanceStatus")


# -- faults -----------------------------------------------------------------------------------


def test_throttle_changes_nothing_and_is_used_up(client: Client, control: SandboxControl) -> None:
    control.add_fault("PurchaseTPMResource", "throttle")
    assert_error(client.call("PurchaseTPMResource", purchase_body()), 429, "RateLimitExceeded")
    assert control.instances() == []
    client.purchase()
    assert len(control.instances()) == 1
    assert [(r["status"], r["code"]) for r in control.requests("PurchaseTPMResource")] == [
        (429, "RateLimitExceeded"),
        (200, None),
    ]


def test_error_fault_statuses(client: Client, control: SandboxControl) -> None:
    control.add_fault("PurchaseTPMResource", "error")
    control.add_fault("PurchaseTPMResource", "error", status=503)
    assert_error(client.call("PurchaseTPMResource", purchase_body()), 500, "InternalError")
    assert_error(client.call("PurchaseTPMResource", purchase_body()), 503, "ServiceUnavailable")
    assert control.instances() == []


def test_error_after_commit_applies_the_change(client: Client, control: SandboxControl) -> None:
    control.add_fault("PurchaseTPMResource", "error_after_commit")
    assert_error(client.call("PurchaseTPMResource", purchase_body(purchaseCount=4)), 500, "InternalError")
    [row] = control.instances()
    assert row["count"] == 4


def test_drop_loses_the_request(client: Client, control: SandboxControl) -> None:
    control.add_fault("PurchaseTPMResource", "drop")
    with pytest.raises(requests.ConnectionError):
        client.call("PurchaseTPMResource", purchase_body())
    assert control.instances() == []
    assert control.requests()[-1]["status"] == 0


def test_drop_after_commit_loses_only_the_answer(client: Client, control: SandboxControl) -> None:
    control.add_fault("PurchaseTPMResource", "drop_after_commit")
    with pytest.raises(requests.ConnectionError):
        client.call("PurchaseTPMResource", purchase_body(purchaseCount=2))
    [row] = control.instances()
    assert row["count"] == 2
    assert control.requests()[-1]["status"] == 0


def test_not_applied_answers_true_and_changes_nothing(client: Client, control: SandboxControl) -> None:
    instance_id = client.purchase(count=2)
    control.add_fault("ResizeTPMResource", "not_applied")
    control.add_fault("AutoReleaseTPMResource", "not_applied")
    control.add_fault("ReleaseTPMResource", "not_applied")
    assert client.ok("ResizeTPMResource", {"instanceId": instance_id, "count": 7}) is True
    assert client.ok("AutoReleaseTPMResource", {"instanceId": instance_id, "releaseTime": in_hours(5)}) is True
    assert client.ok("ReleaseTPMResource", {"model": MODEL, "instanceId": instance_id}) is True
    [row] = control.instances()
    assert (row["count"], row["releaseTime"], row["released"]) == (2, None, False)
    # Used up: the same calls now take effect.
    assert client.ok("ResizeTPMResource", {"instanceId": instance_id, "count": 7}) is True
    assert control.instances()[0]["count"] == 7


def test_wildcard_fault_and_count(client: Client, control: SandboxControl) -> None:
    control.add_fault("*", "throttle", count=2)
    assert_error(client.call("DescribeTPMResource", {"model": MODEL}), 429, "RateLimitExceeded")
    assert_error(client.call("PurchaseTPMResource", purchase_body()), 429, "RateLimitExceeded")
    assert client.describe() == []
    control.add_fault("*", "error", count=5)
    control.clear_faults()
    assert client.describe() == []


def test_fault_for_another_action_does_not_fire(client: Client, control: SandboxControl) -> None:
    control.add_fault("ReleaseTPMResource", "error")
    client.purchase()
    assert len(client.describe()) == 1


def test_fault_arguments_are_checked(control: SandboxControl) -> None:
    with pytest.raises(ValueError):
        control.add_fault("PurchaseTPMResource", "explode")
    with pytest.raises(ValueError):
        control.add_fault("BuyTPM", "error")
    with pytest.raises(ValueError):
        control.add_fault("PurchaseTPMResource", "error", count=0)
    with pytest.raises(ValueError):
        control.add_fault("PurchaseTPMResource", "error", status=200)


def test_concurrent_requests_never_share_a_fault_unit(client: Client, control: SandboxControl) -> None:
    control.add_fault("PurchaseTPMResource", "throttle", count=3)
    statuses = run_concurrently(8, lambda: client.call("PurchaseTPMResource", purchase_body()).status_code)
    assert sorted(statuses) == [200] * 5 + [429] * 3
    assert len(control.instances()) == 5


# -- options ----------------------------------------------------------------------------------


def test_creating_then_running_via_clock_offset(client: Client, control: SandboxControl) -> None:
    assert control.get_option("creating_seconds") == 1.0
    instance_id = client.purchase()
    assert client.describe(instanceId=instance_id)[0]["status"] == "Creating"
    assert client.describe(status="Running") == []
    control.set_option("clock_offset_seconds", 5)
    assert client.describe(instanceId=instance_id)[0]["status"] == "Running"
    assert [i["instanceId"] for i in client.describe(status="Running")] == [instance_id]


def test_creating_seconds_zero_is_running_at_once(client: Client, control: SandboxControl) -> None:
    control.set_option("creating_seconds", 0)
    client.purchase()
    assert client.describe()[0]["status"] == "Running"


def test_creating_turns_running_in_real_time(client: Client, control: SandboxControl) -> None:
    control.set_option("creating_seconds", 0.3)
    client.purchase()
    assert client.describe()[0]["status"] == "Creating"
    time.sleep(0.4)
    assert client.describe()[0]["status"] == "Running"


def test_release_time_expiry_via_clock_offset(client: Client, control: SandboxControl) -> None:
    instance_id = client.purchase(release_time=in_hours(1))
    assert client.describe()[0]["status"] == "Creating"
    control.set_option("clock_offset_seconds", 2 * 3600)
    [item] = client.describe()
    assert item["status"] == "Stopped"
    assert client.describe(status="Stopped")[0]["instanceId"] == instance_id
    assert control.instances()[0]["status"] == "Stopped"
    assert_error(
        client.call("ResizeTPMResource", {"instanceId": instance_id, "count": 2}), 400, "InvalidInstanceStatus"
    )
    assert_error(
        client.call("ReleaseTPMResource", {"model": MODEL, "instanceId": instance_id}), 400, "InvalidInstanceStatus"
    )
    # "In the future" is judged on the sandbox clock too.
    payload = assert_error(
        client.call(
            "PurchaseTPMResource", purchase_body(billing={"paymentTiming": "Postpaid", "releaseTime": in_hours(1.5)})
        ),
        400,
        "InvalidParameter",
    )
    assert "billing.releaseTime" in payload["message"]


def test_latency_delays_every_request(client: Client, control: SandboxControl) -> None:
    control.set_option("latency_ms", 300)
    started = time.monotonic()
    client.describe()
    assert time.monotonic() - started >= 0.3
    control.set_option("latency_ms", 0)
    started = time.monotonic()
    client.describe()
    assert time.monotonic() - started < 0.3


def test_sparse_describe_mode(client: Client, control: SandboxControl) -> None:
    client.purchase(release_time=in_hours(3))
    control.set_option("describe_mode", "sparse")
    [item] = client.describe()
    assert set(item) == {"instanceId", "paymentTiming", "tpm", "rpm", "status", "startTime", "expiredTime"}
    assert RFC3339_BEIJING.match(item["expiredTime"])


def test_released_visibility(client: Client, control: SandboxControl) -> None:
    instance_id = client.purchase()
    client.ok("ReleaseTPMResource", {"model": MODEL, "instanceId": instance_id})
    assert client.describe()[0]["status"] == "Stopped"
    control.set_option("released_visibility", "hidden")
    assert client.describe() == []
    assert client.describe(instanceId=instance_id) == []
    assert control.instances()[0]["status"] == "Stopped"


def test_unknown_instance_option(client: Client, control: SandboxControl) -> None:
    other = client.purchase(model=OTHER_MODEL)
    assert client.describe(instanceId="tpm-nothere") == []
    control.set_option("unknown_instance", "error")
    assert_error(
        client.call("DescribeTPMResource", {"model": MODEL, "instanceId": "tpm-nothere"}), 404, "ResourceNotFound"
    )
    assert_error(client.call("DescribeTPMResource", {"model": MODEL, "instanceId": other}), 404, "ResourceNotFound")


def test_release_again_option(client: Client, control: SandboxControl) -> None:
    instance_id = client.purchase()
    client.ok("ReleaseTPMResource", {"model": MODEL, "instanceId": instance_id})
    control.set_option("release_again", "ok")
    assert client.ok("ReleaseTPMResource", {"model": MODEL, "instanceId": instance_id}) is True
    # Still checked: unknown ids and wrong models are errors whatever the option says.
    assert_error(
        client.call("ReleaseTPMResource", {"model": OTHER_MODEL, "instanceId": instance_id}), 400, "InvalidParameter"
    )


def test_option_names_and_values_are_checked(control: SandboxControl) -> None:
    assert control.get_option("describe_mode") == "full"
    assert control.get_option("released_visibility") == "stopped"
    assert control.get_option("unknown_instance") == "empty"
    assert control.get_option("release_again") == "error"
    for name, value in [
        ("describe_mode", "tiny"),
        ("latency_ms", -1),
        ("creating_seconds", "1"),
        ("clock_offset_seconds", float("nan")),
        ("no_such_option", 1),
    ]:
        with pytest.raises(ValueError):
            control.set_option(name, value)
    with pytest.raises(ValueError):
        control.get_option("no_such_option")


# -- control ----------------------------------------------------------------------------------


def test_out_of_band_updates(client: Client, control: SandboxControl) -> None:
    instance_id = client.purchase(count=1)
    control.update_instance(instance_id, count=6, release_time="2033-05-06 07:08:09")
    [item] = client.describe()
    assert (item["count"], item["releaseTime"]) == (6, "2033-05-06T07:08:09+08:00")
    control.update_instance(instance_id, release_time=None)
    assert client.describe()[0]["releaseTime"] is None
    control.update_instance(instance_id, status="Stopped")
    assert client.describe()[0]["status"] == "Stopped"
    assert control.instances()[0]["released"] is False
    assert_error(
        client.call("ResizeTPMResource", {"instanceId": instance_id, "count": 2}), 400, "InvalidInstanceStatus"
    )
    control.update_instance(instance_id, status="Running")
    assert client.describe()[0]["status"] == "Running"
    with pytest.raises(KeyError):
        control.update_instance("tpm-nothere", count=2)
    with pytest.raises(ValueError):
        control.update_instance(instance_id, status="Exploded")


def test_instances_lists_every_model_and_released_ones(client: Client, control: SandboxControl) -> None:
    first = client.purchase()
    second = client.purchase(model=OTHER_MODEL, release_time=in_hours(2))
    client.ok("ReleaseTPMResource", {"model": MODEL, "instanceId": first})
    rows = control.instances()
    assert [r["instanceId"] for r in rows] == [first, second]
    assert {r["instanceId"]: r["status"] for r in rows} == {first: "Stopped", second: "Creating"}
    assert [r["instanceId"] for r in control.instances(OTHER_MODEL)] == [second]
    assert set(rows[0]) >= {"instanceId", "model", "count", "paymentTiming", "status", "releaseTime", "startTime"}
    assert rows[0]["releaseTime"] is None and RFC3339_BEIJING.match(rows[1]["releaseTime"])


def test_request_journal(client: Client, control: SandboxControl) -> None:
    client.purchase()
    client.call("PurchaseTPMResource", None, raw=b"{oops")
    client.describe()
    rows = control.requests()
    assert [(r["action"], r["status"], r["code"]) for r in rows] == [
        ("PurchaseTPMResource", 200, None),
        ("PurchaseTPMResource", 400, "MalformedJSON"),
        ("DescribeTPMResource", 200, None),
    ]
    assert rows[0]["body"] == purchase_body()
    assert rows[1]["body"] == "{oops"
    assert set(rows[0]) == {"action", "body", "status", "code"}
    assert SANDBOX_ACCESS_KEY not in json.dumps(rows)
    assert len(control.requests("DescribeTPMResource")) == 1
    control.clear_requests()
    assert control.requests() == []


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


def test_eight_concurrent_purchases(client: Client, control: SandboxControl) -> None:
    ids = run_concurrently(8, lambda: client.purchase(count=1))
    assert len(set(ids)) == 8
    assert sorted(r["instanceId"] for r in control.instances()) == sorted(ids)
    assert [r["status"] for r in control.requests("PurchaseTPMResource")] == [200] * 8


def test_concurrent_resizes_are_not_lost(client: Client, control: SandboxControl) -> None:
    ids = [client.purchase() for _ in range(4)]
    counter = iter(range(8))
    lock = threading.Lock()

    def resize() -> bool:
        with lock:
            index = next(counter)
        return client.ok("ResizeTPMResource", {"instanceId": ids[index % 4], "count": 10 + index})

    assert run_concurrently(8, resize) == [True] * 8
    assert [r["status"] for r in control.requests("ResizeTPMResource")] == [200] * 8
    final = {r["instanceId"]: r["count"] for r in control.instances()}
    assert all(final[ids[i]] in (10 + i, 14 + i) for i in range(4))


def test_two_sandboxes_share_one_database(db_path: Path) -> None:
    with Sandbox(db_path) as first, start_sandbox(db_path) as second:
        assert first.url != second.url
        instance_id = Client(first.url).purchase()
        assert [i["instanceId"] for i in Client(second.url).describe()] == [instance_id]
        SandboxControl(db_path).set_option("describe_mode", "sparse")
        assert "model" not in Client(first.url).describe()[0]
        Client(second.url).ok("ReleaseTPMResource", {"model": MODEL, "instanceId": instance_id})
        assert Client(first.url).describe()[0]["status"] == "Stopped"


# -- lifecycle and storage errors -------------------------------------------------------------


def test_lifecycle(db_path: Path) -> None:
    sandbox = Sandbox(db_path)
    assert not db_path.exists()  # nothing happens before start()
    sandbox.start()
    try:
        assert db_path.exists()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", sandbox.url)
        assert sandbox.url.endswith(f":{sandbox.port}")
        assert Client(sandbox.url).describe() == []
    finally:
        sandbox.stop()
    sandbox.stop()  # twice is fine
    assert not sandbox.running


def test_stopped_sandbox_refuses_connections(db_path: Path) -> None:
    with Sandbox(db_path) as sandbox:
        url = sandbox.url
    with pytest.raises(requests.ConnectionError):
        Client(url).call("DescribeTPMResource", {"model": MODEL})


def test_port_in_use_is_a_sandbox_error(sandbox: Sandbox, tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match=f"127.0.0.1:{sandbox.port}"):
        Sandbox(tmp_path / "other.db", port=sandbox.port).start()


def test_corrupt_database_is_a_sandbox_error(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    path.write_bytes(b"this is not a SQLite database, just some bytes " * 200)
    sandbox = Sandbox(path)  # constructing does not touch the file
    with pytest.raises(SandboxError) as caught:
        sandbox.start()
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(SandboxError, match=re.escape(str(path))):
        SandboxControl(path)
    assert path.read_bytes().startswith(b"this is not a SQLite database")


def test_foreign_sqlite_database_is_a_sandbox_error(tmp_path: Path) -> None:
    path = tmp_path / "foreign.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE instances (id INTEGER, name TEXT)")
    with pytest.raises(SandboxError, match=re.escape(str(path))):
        Sandbox(path).start()


def test_unwritable_location_is_a_sandbox_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    path = blocker / "sub" / "qianfan.db"
    with pytest.raises(SandboxError) as caught:
        Sandbox(path).start()
    assert str(path) in str(caught.value)
    directory = tmp_path / "a-directory.db"
    directory.mkdir()
    with pytest.raises(SandboxError, match=re.escape(str(directory))):
        Sandbox(directory).start()
