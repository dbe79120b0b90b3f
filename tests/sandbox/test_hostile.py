"""A careless or hostile local client: every request gets a Baidu-shaped answer, nothing hangs.

Raw sockets and http.client send what `requests` never would. Each test also checks that the
server wrote nothing to stderr (no traceback) and still answers a normal request afterwards.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from qianfan_sandbox import Sandbox, SandboxControl
from tests.support.sandbox_http import (
    MODEL,
    TIMEOUT,
    Client,
    assert_error,
    check_error_payload,
    parse_raw_answer,
    purchase_body,
    raw_exchange,
    read_until_closed,
)

pytestmark = pytest.mark.slow  # a sandbox server per test, real timeouts

#: The request timeout of the sandbox under attack, short so the tests are quick.
REQUEST_TIMEOUT = 0.5


@pytest.fixture
def sandbox(served_db: Path, capfd: pytest.CaptureFixture[str]) -> Iterator[Sandbox]:
    with Sandbox(served_db, request_timeout_seconds=REQUEST_TIMEOUT) as running:
        yield running
        # Still serving, and nothing was printed: no traceback, no access log.
        assert Client(running.url).call("DescribeTPMResource", {"model": MODEL}).status_code == 200
    assert capfd.readouterr().err == ""


def signed_head(client: Client, action: str, length: int, extra: str = "") -> bytes:
    headers = client.headers(action)
    lines = [f"POST /v2/charge?Action={action} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


def expect_answer(data: bytes, status: int, code: str) -> dict[str, object]:
    got_status, headers, payload = parse_raw_answer(data)
    return check_error_payload(got_status, headers, payload, status, code)


# -- bodies that used to crash the handler -----------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b'{"model": ' * 6_000,
        b"[" * 60_000,
        b'{"model": "\\ud800", "billing": {"paymentTiming": "Postpaid"}, "purchaseCount": 1}',
        b'{"model": "\\udfff"}',
        b'{"purchaseCount": 1e999999}',
        b'{"purchaseCount": ' + b"9" * 6000 + b"}",
    ],
)
def test_pathological_json_is_answered_and_journaled(
    client: Client, served_control: SandboxControl, raw: bytes
) -> None:
    response = client.call("PurchaseTPMResource", None, raw=raw)
    assert response.status_code == 400
    assert response.json()["code"] in ("MalformedJSON", "InappropriateJSON", "InvalidParameter")
    [row] = served_control.requests()
    assert (row["status"], row["code"]) == (400, response.json()["code"])  # never left "in flight"
    assert served_control.instances() == []


def test_lone_surrogate_in_an_instance_id(client: Client, served_control: SandboxControl) -> None:
    raw = b'{"model": "ernie-speed-8k", "instanceId": "tpm-\\ud800"}'
    assert_error(client.call("ReleaseTPMResource", None, raw=raw), 400, "MalformedJSON")
    assert [r["status"] for r in served_control.requests()] == [400]


def test_huge_and_odd_strings_are_refused_briefly(client: Client) -> None:
    for value in ("x" * 60_000, "\x00\u202e\n\r", "é" * 100):
        payload = assert_error(client.call("PurchaseTPMResource", purchase_body(model=value)), 400, "InvalidParameter")
        assert len(payload["message"]) < 300
    response = client.call("ReleaseTPMResource", {"model": MODEL, "instanceId": "\r\nX-Evil: 1" + "y" * 60_000})
    assert_error(response, 404, "ResourceNotFound")
    assert "X-Evil" not in response.headers


# -- malformed HTTP ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"GARBAGE\r\n\r\n", 400, "InvalidHTTPRequest"),
        (b"POST /v2/charge HTTP/1.1 extra\r\n\r\n", 400, "InvalidHTTPRequest"),
        (b"POST  /v2/charge HTTP/1.1\r\n\r\n", 400, "InvalidHTTPRequest"),
        (b"P(ST /v2/charge HTTP/1.1\r\n\r\n", 400, "InvalidHTTPRequest"),
        (b"POST /v2/charge HTTP/2.0\r\n\r\n", 505, "HTTPVersionNotSupported"),
        (b"POST /v2/charge HTTX/1.1\r\n\r\n", 400, "InvalidHTTPRequest"),
        (b"POST /v2/ch\xc3\xa4rge HTTP/1.1\r\n\r\n", 400, "InvalidURI"),
        (b"POST http://[::1/v2/charge HTTP/1.1\r\n\r\n", 400, "InvalidURI"),
        (b"POST //[/v2/charge HTTP/1.1\r\n\r\n", 400, "InvalidURI"),
        (b"POST /v2/charge HTTP/1.1\r\nNo colon here\r\n\r\n", 400, "InvalidHTTPRequest"),
        (b"POST /v2/charge HTTP/1.1\r\nBad Name: x\r\n\r\n", 400, "InvalidHTTPRequest"),
        (b"POST /v2/charge HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400, "InvalidHTTPRequest"),
        (b"POST /v2/charge HTTP/1.1\r\nX-A: a\x00b\r\n\r\n", 400, "InvalidHTTPRequest"),
        (b"POST /v2/charge HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400, "InvalidHTTPRequest"),
        (b"POST /v2/charge HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, "InvalidHTTPRequest"),
        (b"POST /v2/charge HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n", 400, "InvalidHTTPRequest"),
        (b"POST /v2/charge HTTP/1.1\r\nContent-Length: " + b"9" * 40 + b"\r\n\r\n", 400, "InvalidHTTPRequest"),
        (b"POST /v2/charge HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411, "LengthRequired"),
        (b"POST /v2/charge HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 413, "RequestEntityTooLarge"),
        (b"POST /v2/charge HTTP/1.1\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n", 400, "InvalidHTTPRequest"),
        (b"POST /v2/charge HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", 403, "AccessDenied"),
        (b"GET / HTTP/1.1\r\n\r\n", 404, "NotFound"),
        (b"BREW /v2/charge HTTP/1.1\r\n\r\n", 405, "MethodNotAllowed"),
        (b"\r\n\r\nPOST /v2/charge HTTP/1.0\r\n\r\n", 403, "AccessDenied"),
        (b"POST /v2/charge\n\n", 400, "InvalidHTTPRequest"),
    ],
)
def test_malformed_requests_get_baidu_shaped_answers(
    sandbox: Sandbox, served_control: SandboxControl, request_bytes: bytes, status: int, code: str
) -> None:
    expect_answer(raw_exchange(sandbox.port, request_bytes), status, code)
    assert served_control.requests() == []


def test_oversized_url_header_and_head(sandbox: Sandbox) -> None:
    long_url = b"POST /v2/charge?Action=" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n"
    expect_answer(raw_exchange(sandbox.port, long_url), 414, "URITooLong")
    long_header = b"POST /v2/charge HTTP/1.1\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n"
    expect_answer(raw_exchange(sandbox.port, long_header), 431, "RequestHeaderFieldsTooLarge")
    many = b"POST /v2/charge HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(101)) + b"\r\n"
    expect_answer(raw_exchange(sandbox.port, many), 431, "RequestHeaderFieldsTooLarge")
    wide = b"POST /v2/charge HTTP/1.1\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"w" * 800) for i in range(90)) + b"\r\n"
    expect_answer(raw_exchange(sandbox.port, wide), 431, "RequestHeaderFieldsTooLarge")


def test_oversized_url_through_http_client(sandbox: Sandbox) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", sandbox.port, timeout=TIMEOUT)
    try:
        conn.request("POST", "/v2/charge?Action=" + "x" * 20_000, body=b"{}")
        response = conn.getresponse()
        payload = json.loads(response.read())
        check_error_payload(response.status, response.headers, payload, 414, "URITooLong")
    finally:
        conn.close()


# -- bodies too large, too short, too slow ------------------------------------------------------


def test_fifty_megabytes_get_a_readable_413(client: Client, served_control: SandboxControl) -> None:
    body = b"x" * (50 * 1024 * 1024)
    assert_error(client.call("PurchaseTPMResource", None, raw=body), 413, "RequestEntityTooLarge")
    response = requests.post(f"{client.url}/v2/charge?Action=PurchaseTPMResource", data=body, timeout=TIMEOUT)
    assert_error(response, 413, "RequestEntityTooLarge")
    # http.client gives up on a broken pipe before reading: the body must be drained, not refused mid-send.
    conn = http.client.HTTPConnection("127.0.0.1", int(client.url.rsplit(":", 1)[1]), timeout=TIMEOUT)
    try:
        conn.request("POST", "/v2/charge?Action=PurchaseTPMResource", body=body)
        answer = conn.getresponse()
        check_error_payload(answer.status, answer.headers, json.loads(answer.read()), 413, "RequestEntityTooLarge")
    finally:
        conn.close()
    assert served_control.requests() == []


def test_unauthenticated_bodies_are_not_read_or_stored(client: Client, served_control: SandboxControl) -> None:
    secret_looking = json.dumps({"model": MODEL, "note": "planted text " * 1000}).encode()
    headers = client.headers("PurchaseTPMResource")
    headers["authorization"] = headers["authorization"][:-1] + ("0" if headers["authorization"][-1] != "0" else "1")
    assert_error(
        client.call("PurchaseTPMResource", None, raw=secret_looking, headers=headers), 400, "SignatureDoesNotMatch"
    )
    del headers["authorization"]
    assert_error(client.call("PurchaseTPMResource", None, raw=secret_looking, headers=headers), 403, "AccessDenied")
    assert served_control.requests() == []


def test_idle_connection_gets_408_and_is_closed(sandbox: Sandbox) -> None:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", sandbox.port), timeout=TIMEOUT) as sock:
        data = read_until_closed(sock, TIMEOUT)
    assert REQUEST_TIMEOUT <= time.monotonic() - started < REQUEST_TIMEOUT + 3
    expect_answer(data, 408, "RequestTimeout")


def test_short_body_gets_408(client: Client, sandbox: Sandbox, served_control: SandboxControl) -> None:
    with socket.create_connection(("127.0.0.1", sandbox.port), timeout=TIMEOUT) as sock:
        sock.sendall(signed_head(client, "DescribeTPMResource", 100) + b'{"model"')
        data = read_until_closed(sock, TIMEOUT)
    expect_answer(data, 408, "RequestTimeout")
    assert served_control.requests() == []


def test_body_cut_short_by_a_half_close_gets_400(client: Client, sandbox: Sandbox) -> None:
    data = raw_exchange(sandbox.port, signed_head(client, "DescribeTPMResource", 100) + b"{", shut_write=True)
    expect_answer(data, 400, "InvalidHTTPRequest")


def test_slow_drip_is_cut_off_at_the_deadline(sandbox: Sandbox) -> None:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", sandbox.port), timeout=TIMEOUT) as sock:
        request = b"POST /v2/charge HTTP/1.1\r\n" + b"X-Drip: " + b"d" * 100
        answered = b""
        for byte in request:
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            time.sleep(0.02)
            if time.monotonic() - started > REQUEST_TIMEOUT + 0.5:
                break
        answered = read_until_closed(sock, TIMEOUT)
    assert time.monotonic() - started < REQUEST_TIMEOUT + 3
    expect_answer(answered, 408, "RequestTimeout")


def test_threads_are_released_after_timeouts(sandbox: Sandbox) -> None:
    before = threading.active_count()
    sockets = [socket.create_connection(("127.0.0.1", sandbox.port), timeout=TIMEOUT) for _ in range(20)]
    try:
        deadline = time.monotonic() + 5
        while threading.active_count() < before + 20 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert threading.active_count() >= before + 20  # one thread per connection
        deadline = time.monotonic() + REQUEST_TIMEOUT + 5
        while threading.active_count() > before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert threading.active_count() <= before
    finally:
        for sock in sockets:
            sock.close()


def test_client_that_vanishes_mid_request(sandbox: Sandbox, client: Client) -> None:
    for cut in (0, 10, 60):
        with socket.create_connection(("127.0.0.1", sandbox.port), timeout=TIMEOUT) as sock:
            sock.sendall(signed_head(client, "DescribeTPMResource", 50)[:cut])
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    assert client.describe() == []


def test_expect_100_continue(client: Client, sandbox: Sandbox) -> None:
    body = json.dumps({"model": MODEL}).encode()
    with socket.create_connection(("127.0.0.1", sandbox.port), timeout=TIMEOUT) as sock:
        sock.sendall(signed_head(client, "DescribeTPMResource", len(body), "Expect: 100-continue\r\n"))
        interim = sock.recv(1024)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        data = read_until_closed(sock, TIMEOUT)
    status, _, payload = parse_raw_answer(data)
    assert status == 200 and payload["result"] == {"instances": []}


def test_http_1_0_and_absolute_form(client: Client, sandbox: Sandbox) -> None:
    body = json.dumps({"model": MODEL}).encode()
    head = signed_head(client, "DescribeTPMResource", len(body)).replace(b"HTTP/1.1", b"HTTP/1.0", 1)
    status, _, payload = parse_raw_answer(raw_exchange(sandbox.port, head + body))
    assert status == 200 and payload["result"] == {"instances": []}
    absolute = head.replace(b"POST /v2/charge", f"POST http://127.0.0.1:{sandbox.port}/v2/charge".encode(), 1)
    assert parse_raw_answer(raw_exchange(sandbox.port, absolute + body))[0] == 200


def test_connection_cap_answers_503(served_db: Path, capfd: pytest.CaptureFixture[str]) -> None:
    with Sandbox(served_db, request_timeout_seconds=1.0, max_connections=2) as sandbox:
        idle = [socket.create_connection(("127.0.0.1", sandbox.port), timeout=TIMEOUT) for _ in range(2)]
        try:
            time.sleep(0.1)
            expect_answer(raw_exchange(sandbox.port, b"", timeout=TIMEOUT), 503, "ServiceUnavailable")
        finally:
            for sock in idle:
                sock.close()
        deadline = time.monotonic() + 5
        while True:
            response = Client(sandbox.url).call("DescribeTPMResource", {"model": MODEL})
            if response.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert response.status_code == 200
    assert capfd.readouterr().err == ""


def test_random_bytes_never_break_the_server(sandbox: Sandbox) -> None:
    rng = random.Random(20261126)
    prefixes = [b"", b"POST /v2/charge HTTP/1.1\r\n", b"POST /v2/charge?Action=PurchaseTPMResource HTTP/1.1\r\n"]
    for _ in range(60):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        data = rng.choice(prefixes) + junk + rng.choice([b"", b"\r\n\r\n"])
        with socket.create_connection(("127.0.0.1", sandbox.port), timeout=TIMEOUT) as sock:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            answer = read_until_closed(sock, TIMEOUT)
        if answer:  # nothing at all only when the client said nothing the server could answer
            status, headers, payload = parse_raw_answer(answer)
            assert 400 <= status < 600 and set(payload) == {"requestId", "code", "message"}
            assert headers["X-Bce-Request-Id"] == payload["requestId"]
