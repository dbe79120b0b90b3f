"""Speaking to a sandbox over HTTP: a signing client, the checks of an error answer, raw exchanges.

The client signs with Baidu's own signer (the one the qianfan SDK uses) and sends with
`requests`, so the tests see exactly what a client sees: statuses, codes, headers.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import requests
from baidubce.auth.bce_credentials import BceCredentials
from baidubce.auth.bce_v1_signer import sign
from baidubce.utils import get_canonical_time

from qianfan_sandbox import SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY

MODEL = "ernie-speed-8k"
OTHER_MODEL = "ernie-lite-8k"
TIMEOUT = 10
AUTH_CODES = ("AccessDenied", "InvalidHTTPAuthHeader", "InvalidAccessKeyId", "SignatureDoesNotMatch", "RequestExpired")


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
        assert set(payload) == {"requestId", "result"}
        assert payload["requestId"] == response.headers["X-Bce-Request-Id"]
        return payload["result"]

    def purchase(self, model: str = MODEL, count: int = 1, release_time: str | None = None) -> str:
        billing: dict[str, Any] = {"paymentTiming": "Postpaid"}
        if release_time is not None:
            billing["releaseTime"] = release_time
        result = self.ok("PurchaseTPMResource", {"model": model, "billing": billing, "purchaseCount": count})
        return str(result["instanceId"])

    def describe(self, model: str = MODEL, **filters: Any) -> list[dict[str, Any]]:
        instances = self.ok("DescribeTPMResource", {"model": model, **filters})["instances"]
        assert isinstance(instances, list)
        return instances


def purchase_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": MODEL, "billing": {"paymentTiming": "Postpaid"}, "purchaseCount": 1}
    body.update(changes)
    return body


def check_error_payload(status: int, headers: Any, payload: Any, want_status: int, code: str) -> dict[str, Any]:
    """Every documented part of an error answer: status, body, request id, and the auth headers."""
    assert status == want_status, payload
    assert headers["Content-Type"] == "application/json"
    assert set(payload) == {"requestId", "code", "message"}, payload
    assert payload["code"] == code, payload
    assert isinstance(payload["message"], str) and payload["message"]
    uuid.UUID(payload["requestId"])
    assert headers["X-Bce-Request-Id"] == payload["requestId"]
    if code in AUTH_CODES:
        assert headers["X-Bce-Error-Code"] == code
        assert headers["X-Bce-Error-Message"]
    else:
        assert "X-Bce-Error-Code" not in headers and "X-Bce-Error-Message" not in headers
    return dict(payload)


def assert_error(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    return check_error_payload(response.status_code, response.headers, response.json(), status, code)


def raw_exchange(port: int, data: bytes, *, timeout: float = TIMEOUT, shut_write: bool = False) -> bytes:
    """Send raw bytes to the sandbox and read everything it answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if shut_write:
            sock.shutdown(socket.SHUT_WR)
        return read_until_closed(sock, timeout)


def read_until_closed(sock: socket.socket, timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    received = bytearray()
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError as exc:
            raise AssertionError(f"the sandbox reset the connection after {bytes(received)[:200]!r}") from exc
        if not chunk:
            return bytes(received)
        received += chunk
    raise AssertionError(f"the sandbox did not close within {timeout} s; got {bytes(received)[:200]!r}")


def parse_raw_answer(data: bytes) -> tuple[int, dict[str, str], Any]:
    """(status, headers, JSON body) of one HTTP answer received raw."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert int(headers["Content-Length"]) == len(body), data[:300]
    return status, headers, json.loads(body)
