"""A scripted stand-in for Qianfan's console, for answers the sandbox never gives.

Written from Baidu's documentation, not from the provider: the documented Describe item is the one
in Baidu's SDK mock server (`{instanceId, paymentTiming, rpm, tpm, status, startTime,
expiredTime}`, `expiredTime` "-" when nothing is scheduled), in the `{requestId, result}` envelope.
A test scripts the `result` per model (or a whole raw answer), and reads which requests came and
how many were in flight at once. It does not check signatures: that is the sandbox's job.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class Raw:
    """A whole answer: status and body bytes, exactly as sent."""

    status: int
    body: bytes


def documented_item(instance_id: str, units: int, expired: str = "-") -> dict[str, Any]:
    return {
        "instanceId": instance_id,
        "paymentTiming": "Postpaid",
        "rpm": 33 * units,
        "tpm": 10_000 * units,
        "status": "Running",
        "startTime": "2024-02-26T10:00:00Z",
        "expiredTime": expired,
    }


class FakeQianfan:
    def __init__(self, answers: dict[str, Any], delay: float = 0.0) -> None:
        self.answers = answers
        self.delay = delay
        self.requests: list[tuple[str | None, Any]] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                fake._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeQianfan:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        action = dict(parse_qsl(urlsplit(request.path).query)).get("Action")
        body = json.loads(request.rfile.read(int(request.headers.get("Content-Length") or 0)) or b"null")
        with self._lock:
            self.requests.append((action, body))
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            time.sleep(self.delay)
            if action != "DescribeTPMResource":
                answer = Raw(400, json.dumps({"requestId": "r", "code": "InvalidAction", "message": "no"}).encode())
            else:
                scripted = self.answers.get(body.get("model"), {"instances": []})
                answer = scripted if isinstance(scripted, Raw) else Raw(200, self._envelope(scripted))
            request.send_response(answer.status)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(answer.body)))
            request.send_header("Connection", "close")
            request.end_headers()
            request.wfile.write(answer.body)
        finally:
            with self._lock:
                self._in_flight -= 1

    @staticmethod
    def _envelope(result: Any) -> bytes:
        return json.dumps({"requestId": str(uuid.uuid4()), "result": result}).encode()
