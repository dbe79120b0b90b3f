"""One connection: one request in, one Qianfan-shaped answer (or a deliberately lost one) out.

The order of checks: the request head, route, method, the body's declared length, signature,
then (only for a signed request) the body is read, the request journaled, the action and its
body handled. So a stranger's body is never read or stored, and every refusal on the way is an
answer `{requestId, code, message}`; authentication failures also carry `X-Bce-Error-Code` /
`X-Bce-Error-Message`. Every request opens its own SQLite connection and re-reads options and
faults, so a test in another process can change behaviour between two requests. Every answer's
`Date` header is on the sandbox clock (real time plus `clock_offset_seconds`), as a server's own
clock would be; signatures are still checked against real time.
"""

from __future__ import annotations

import socket
import socketserver
import sqlite3
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from . import wire
from .actions import HANDLERS, READ_ONLY, Context
from .auth import verify_request
from .errors import ApiError
from .faults import AFTER_COMMIT, BEFORE_HANDLING, FALSE_RESULT, HANG_AFTER_COMMIT, NOT_APPLIED, Fault, take_fault
from .journal import record_answer, record_arrival
from .options import Options, load_options
from .store import Store, immediate

#: The one route the TPM console actions live under.
CHARGE_PATH = "/v2/charge"
#: Most query parameters read (the SDK sends one, `Action`).
MAX_QUERY_FIELDS = 20


@dataclass(frozen=True)
class App:
    """What every connection shares: the database, who may call, and the connection limits."""

    store: Store
    credentials: Mapping[str, str]
    models: frozenset[str]
    request_timeout_seconds: float
    max_connections: int

    def sandbox_now(self) -> float:
        """The sandbox clock, for an answer given before the request's options were read."""
        try:
            with self.store.connection() as conn:
                return time.time() + load_options(conn).clock_offset_seconds
        except sqlite3.Error:
            return time.time()  # the database is failing; the answer still goes out, on real time


@dataclass(frozen=True)
class Answer:
    """An HTTP answer to send, or `dropped`: close the connection without a word."""

    status: int
    payload: dict[str, Any] = field(default_factory=dict)
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    dropped: bool = False
    #: For a dropped answer: how long to hold the connection open first (`hang_after_commit`).
    hold_seconds: float = 0.0


def success(result: Any) -> Answer:
    request_id = str(uuid.uuid4())
    return Answer(200, {"requestId": request_id, "result": result}, headers={"X-Bce-Request-Id": request_id})


def failure(exc: ApiError) -> Answer:
    request_id = str(uuid.uuid4())
    headers = {"X-Bce-Request-Id": request_id}
    if exc.auth:
        headers["X-Bce-Error-Code"] = exc.code
        headers["X-Bce-Error-Message"] = wire.header_safe(exc.message)
    payload = {"requestId": request_id, "code": exc.code, "message": exc.message}
    return Answer(exc.status, payload, exc.code, headers)


def internal_error() -> Answer:
    """A sandbox bug still gets an answer, and its traceback goes to stderr for whoever runs it."""
    traceback.print_exc(file=sys.stderr)
    return failure(ApiError("InternalError", "the sandbox failed to handle the request"))


DROPPED = Answer(0, dropped=True)


class SandboxServer(socketserver.ThreadingTCPServer):
    """One thread per connection, at most `max_connections` at once; the rest get a quick 503."""

    daemon_threads = True
    allow_reuse_address = True
    # The default backlog of 5 makes bursts of concurrent clients wait on SYN retransmits.
    request_queue_size = 64

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        self._slots = threading.BoundedSemaphore(app.max_connections)
        #: Set when the server closes, so a held (hanging) answer lets its connection go at once.
        self.closing = threading.Event()
        super().__init__(address, Connection)

    def server_close(self) -> None:
        self.closing.set()
        super().server_close()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            busy = failure(ApiError("ServiceUnavailable", "too many connections at once; retry later"))
            wire.send_answer(request, busy.status, busy.payload, busy.headers, now=self.app.sandbox_now())
            wire.close_gracefully(request, unread=False)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def shutdown_request(self, request: Any) -> None:
        """The connection closed itself already (gracefully or dropped); just make sure."""
        self.close_request(request)


class Connection(socketserver.BaseRequestHandler):
    """Answers like qianfan.baidubce.com; closes every connection after one answer."""

    server: SandboxServer
    request: socket.socket

    def handle(self) -> None:
        app = self.server.app
        reader = wire.Reader(self.request, time.monotonic() + app.request_timeout_seconds)
        self._unread = True
        self._head_only = False
        self._clock_offset: float | None = None
        try:
            answer = self._answer(reader, app)
        except ApiError as exc:
            answer = failure(exc)
            if exc.code == "RequestTimeout":
                self._unread = False  # a client too slow to send is not waited for again
        except wire.EndOfStream:
            if reader.received == 0:
                wire.close_gracefully(self.request, unread=False)
                return
            answer = failure(ApiError("InvalidHTTPRequest", "the request ended before it was complete"))
        except wire.ClientGone:
            wire.drop(self.request)
            return
        except Exception:  # noqa: BLE001 - a sandbox bug answers InternalError; the server keeps serving
            answer = internal_error()
        if answer.dropped:
            if answer.hold_seconds > 0:
                wire.hold(self.request, answer.hold_seconds, self.server.closing)
            wire.drop(self.request)
            return
        now = app.sandbox_now() if self._clock_offset is None else time.time() + self._clock_offset
        wire.send_answer(self.request, answer.status, answer.payload, answer.headers, not self._head_only, now=now)
        wire.close_gracefully(self.request, unread=self._unread)

    def _answer(self, reader: wire.Reader, app: App) -> Answer:
        head = wire.read_head(reader)
        self._head_only = head.method == "HEAD"
        try:
            url = urlsplit(head.target)
        except ValueError:  # e.g. an unclosed IPv6 bracket in an absolute-form target
            raise ApiError("InvalidURI", "the request target cannot be parsed as a URI") from None
        if url.path != CHARGE_PATH:
            raise ApiError("NotFound", f"no such route {url.path[:64]!r}; use POST {CHARGE_PATH}")
        if head.method != "POST":
            raise ApiError("MethodNotAllowed", f"{head.method[:16]} is not allowed; use POST {CHARGE_PATH}")
        query = _query(url.query)
        length = wire.body_length(head.headers)
        verify_request(head.headers.get("authorization"), "POST", url.path, head.headers, query, app.credentials)
        if length and head.headers.get("expect", "").lower() == "100-continue" and head.version == "HTTP/1.1":
            wire.send_continue(self.request)
        try:
            raw = reader.read(length)
        except wire.EndOfStream:
            raise ApiError("InvalidHTTPRequest", f"the body ended before its Content-Length of {length}") from None
        self._unread = False
        return self._journaled(app, query.get("Action"), raw)

    def _journaled(self, app: App, action: str | None, raw: bytes) -> Answer:
        """Handle a signed request between two journal writes, whatever happens in between."""
        conn = app.store.connect()
        try:
            options = load_options(conn)
            self._clock_offset = options.clock_offset_seconds
            row_id = record_arrival(conn, action, raw)
            answer = DROPPED
            try:
                if options.latency_ms > 0:
                    time.sleep(options.latency_ms / 1000)
                answer = self._act(conn, app, action, raw, options)
            except ApiError as exc:
                answer = failure(exc)
            except Exception:  # noqa: BLE001 - a sandbox bug answers InternalError, journaled like any answer
                answer = internal_error()
            finally:
                # Recorded before sending, so a client holding its answer always finds the record.
                record_answer(conn, row_id, answer.status, answer.code)
            return answer
        finally:
            conn.close()

    def _act(self, conn: sqlite3.Connection, app: App, action: str | None, raw: bytes, options: Options) -> Answer:
        if action is None or action not in HANDLERS:
            detail = "the query has no Action" if action is None else f"unknown Action {action[:64]!r}"
            raise ApiError("InvalidAction", f"{detail}; use one of {', '.join(HANDLERS)}")
        fault = take_fault(conn, action)
        kind = None if fault is None else fault.kind
        if fault is not None and kind in BEFORE_HANDLING:
            return _faulted(fault)
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError("InvalidHTTPRequest", "the request body is not UTF-8") from None
        models = app.models - frozenset(options.retired_models)
        context = Context(conn, time.time() + options.clock_offset_seconds, options, models, kind)
        handler = HANDLERS[action]
        if action in READ_ONLY:
            result = handler(context, raw)
        else:
            with immediate(conn):
                result = handler(context, raw)
                if kind in (NOT_APPLIED, FALSE_RESULT):
                    conn.execute("ROLLBACK")
        if fault is not None and kind in AFTER_COMMIT:
            return _faulted(fault)
        if fault is not None and kind == HANG_AFTER_COMMIT:
            return Answer(0, dropped=True, hold_seconds=fault.seconds or 0.0)
        return success(False if kind == FALSE_RESULT else result)


def _query(text: str) -> dict[str, str]:
    """The query parameters; a repeated one is refused rather than silently picked."""
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS)
    except ValueError:
        raise ApiError("InvalidURI", f"the query has more than {MAX_QUERY_FIELDS} parameters") from None
    query = dict(pairs)
    if len(query) != len(pairs):
        raise ApiError("InvalidURI", "the query repeats a parameter")
    return query


def _faulted(fault: Fault) -> Answer:
    return DROPPED if fault.drops else failure(fault.error())
