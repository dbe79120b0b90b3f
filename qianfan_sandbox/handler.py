"""The HTTP side: one request in, one Qianfan-shaped answer (or a deliberately lost one) out.

The order of checks follows Baidu's gateway: route, method, signature, action, then the body.
Every request gets its own SQLite connection and re-reads options and faults, so a test in
another process can change behaviour between two requests.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import sys
import time
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .actions import HANDLERS, READ_ONLY, Context
from .auth import verify_request
from .errors import ApiError
from .faults import AFTER_COMMIT, BEFORE_HANDLING, NOT_APPLIED, Fault, take_fault
from .journal import record_answer, record_arrival
from .options import Options, load_options
from .store import Store, immediate

#: The one route the TPM console actions live under.
CHARGE_PATH = "/v2/charge"
#: Bodies larger than this are refused unread; real requests are a few hundred bytes.
MAX_BODY_BYTES = 1 << 20


@dataclass(frozen=True)
class App:
    """What every request handler shares: the database and who may call."""

    store: Store
    credentials: Mapping[str, str]
    models: frozenset[str]


@dataclass(frozen=True)
class Answer:
    """An HTTP answer to send, or `dropped`: close the connection without a word."""

    status: int
    payload: Any = None
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    dropped: bool = False


def success(result: Any) -> Answer:
    return Answer(200, {"requestId": str(uuid.uuid4()), "result": result})


def failure(status: int, code: str, message: str, **headers: str) -> Answer:
    request_id = str(uuid.uuid4())
    payload = {"requestId": request_id, "code": code, "message": message}
    return Answer(
        status,
        payload,
        code,
        {"X-Bce-Error-Code": code, "X-Bce-Error-Message": _header_safe(message), **headers},
    )


def from_api_error(exc: ApiError) -> Answer:
    return failure(exc.status, exc.code, exc.message)


DROPPED = Answer(0, dropped=True)


class SandboxHTTPServer(ThreadingHTTPServer):
    """A threading server that carries the shared `App` for its handlers."""

    daemon_threads = True
    # The default backlog of 5 makes bursts of concurrent clients wait on SYN retransmits.
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], app: App) -> None:
        super().__init__(address, QianfanHandler)
        self.app = app


class QianfanHandler(BaseHTTPRequestHandler):
    """Answers like qianfan.baidubce.com; closes every connection after one answer."""

    server: SandboxHTTPServer
    server_version = "QianfanSandbox/1.0"
    sys_version = ""

    def do_POST(self) -> None:
        self._serve()

    do_GET = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the embedding provider host's stderr is not a place for access logs."""

    def _serve(self) -> None:
        try:
            answer = self._answer()
        except Exception:  # a sandbox bug must still produce an answer, never a hung client
            traceback.print_exc(file=sys.stderr)
            answer = failure(500, "InternalError", "the sandbox failed to handle the request")
        self._send(answer)

    def _answer(self) -> Answer:
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        action = query.get("Action")
        raw, too_large = self._read_body()
        conn = self.server.app.store.connect()
        try:
            row_id = record_arrival(conn, action, raw)
            options = load_options(conn)
            if options.latency_ms > 0:
                time.sleep(options.latency_ms / 1000)
            if too_large:
                answer = failure(413, "RequestEntityTooLarge", "the request body is too large")
            else:
                try:
                    answer = self._route(conn, url.path, query, action, raw, options)
                except ApiError as exc:
                    answer = from_api_error(exc)
            # Recorded before sending, so a client holding its answer always finds the record.
            record_answer(conn, row_id, answer.status, answer.code)
        finally:
            conn.close()
        return answer

    def _route(
        self,
        conn: sqlite3.Connection,
        path: str,
        query: dict[str, str],
        action: str | None,
        raw: bytes,
        options: Options,
    ) -> Answer:
        app = self.server.app
        if path != CHARGE_PATH:
            return failure(404, "NotFound", f"no such route {path!r}; use POST {CHARGE_PATH}")
        if self.command != "POST":
            return failure(405, "MethodNotAllowed", f"{self.command} is not allowed", Allow="POST")
        headers = {name.lower(): value for name, value in self.headers.items()}
        verify_request(self.headers.get("Authorization"), "POST", path, headers, query, app.credentials)
        if action is None or action not in HANDLERS:
            return failure(400, "InvalidAction", f"unknown Action {action!r}")
        fault = take_fault(conn, action)
        if fault is not None and fault.kind in BEFORE_HANDLING:
            return self._faulted(fault)
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            return failure(400, "MalformedJSON", "the request body is not valid JSON")
        context = Context(conn, time.time() + options.clock_offset_seconds, options, app.models)
        handler = HANDLERS[action]
        if action in READ_ONLY:
            result = handler(context, body)
        else:
            with immediate(conn):
                result = handler(context, body)
                if fault is not None and fault.kind == NOT_APPLIED:
                    conn.execute("ROLLBACK")
        if fault is not None and fault.kind in AFTER_COMMIT:
            return self._faulted(fault)
        return success(result)

    def _faulted(self, fault: Fault) -> Answer:
        if fault.drops:
            return DROPPED
        status, code, message = fault.answer()
        return failure(status, code, message)

    def _read_body(self) -> tuple[bytes, bool]:
        """The body (b"" when there is none), and whether it was too large to read."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            return b"", True
        return (self.rfile.read(length) if length > 0 else b""), False

    def _send(self, answer: Answer) -> None:
        self.close_connection = True
        if answer.dropped:
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        data = json.dumps(answer.payload, ensure_ascii=False).encode("utf-8")
        request_id = answer.payload["requestId"]
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Bce-Request-Id", request_id)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except OSError:
            pass  # the client went away; the journal already has the answer


def _header_safe(message: str) -> str:
    """HTTP headers are Latin-1 and one line: escape the rest so no value can break them."""
    one_line = " ".join(message.splitlines())
    return one_line.encode("ascii", "backslashreplace").decode("ascii")
