"""HTTP/1.1 on one socket, read by hand so that every limit and every failure has an answer.

The standard library's server answers a malformed request line, an oversized header or URL
with an HTML page, reads with no time limit, and closes on a body it did not read, which makes
the client see a reset instead of the answer. Here reading the request (line, headers, body) has
one deadline, every refusal is an `ApiError` the caller turns into Baidu's JSON, and a
connection whose body was not read is closed gracefully: the answer is sent, the sending side
shut, and whatever the client still sends is read and dropped for a bounded time.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

from .errors import ApiError

#: Longest request line or header line, in bytes (the sandbox's choice).
MAX_LINE = 8 * 1024
#: Longest request head (request line and headers) and most headers (the sandbox's choice).
MAX_HEAD = 64 * 1024
MAX_HEADERS = 100
#: Largest body read; real requests are a few hundred bytes (the sandbox's choice).
MAX_BODY = 64 * 1024
#: How long a connection whose body was not read is drained before it is closed.
LINGER_SECONDS = 2.0
#: How long sending one answer may take.
SEND_TIMEOUT_SECONDS = 10.0
#: How often a held answer looks whether the server is stopping.
HOLD_POLL_SECONDS = 0.2

_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_TARGET = re.compile(rb"[\x21-\x7e]+")
_VERSION = re.compile(rb"HTTP/([0-9])\.([0-9])")
_BAD_VALUE_BYTES = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
#: Headers that must not be given twice: the signature, the body length and the signed ones.
_SINGLE = frozenset({"authorization", "content-length", "transfer-encoding", "host", "content-type", "x-bce-date"})


class ClientGone(Exception):
    """The client reset the connection or closed it before saying anything: nobody to answer."""


class EndOfStream(Exception):
    """The client closed its sending side; it may still read an answer."""


class Reader:
    """Buffered reads from a socket, every one of them bounded by the same deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline
        self._buffer = bytearray()
        self.received = 0

    def _fill(self) -> None:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise _timeout()
        self._sock.settimeout(remaining)
        try:
            chunk = self._sock.recv(65536)
        except TimeoutError:
            raise _timeout() from None
        except OSError:
            raise ClientGone from None
        if not chunk:
            raise EndOfStream
        self.received += len(chunk)
        self._buffer += chunk

    def readline(self, too_long: ApiError) -> bytes:
        """One line with its line end; `too_long` when it passes MAX_LINE bytes."""
        while True:
            end = self._buffer.find(b"\n", 0, MAX_LINE)
            if end >= 0:
                line = bytes(self._buffer[: end + 1])
                del self._buffer[: end + 1]
                return line
            if len(self._buffer) >= MAX_LINE:
                raise too_long
            self._fill()

    def read(self, size: int) -> bytes:
        """Exactly `size` bytes (EndOfStream when the client stops short)."""
        while len(self._buffer) < size:
            self._fill()
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data


def _timeout() -> ApiError:
    return ApiError("RequestTimeout", "the request did not arrive in time; the connection is closed")


def _bad(problem: str) -> ApiError:
    return ApiError("InvalidHTTPRequest", problem)


@dataclass(frozen=True)
class Head:
    """A request line and its headers (names lower-cased, values decoded as Latin-1)."""

    method: str
    target: str
    version: str
    headers: dict[str, str]


def read_head(reader: Reader) -> Head:
    """The request line and headers, or an ApiError saying what is wrong with them."""
    line = b"\r\n"
    for _ in range(4):  # a few empty lines before a request are tolerated (RFC 9112, 2.2)
        line = reader.readline(ApiError("URITooLong", f"the request line is longer than {MAX_LINE} bytes"))
        if line.strip(b"\r\n"):
            break
    parts = line.rstrip(b"\r\n").split(b" ")
    if len(parts) != 3 or not _TOKEN.fullmatch(parts[0]):
        raise _bad("the request line is not METHOD TARGET HTTP/1.1")
    method, target, version = parts
    if not _TARGET.fullmatch(target):
        raise ApiError("InvalidURI", "the request target has characters a URI cannot have")
    matched = _VERSION.fullmatch(version)
    if matched is None:
        raise _bad("the request line does not end in HTTP/1.1")
    if matched.groups() not in ((b"1", b"0"), (b"1", b"1")):
        raise ApiError("HTTPVersionNotSupported", f"only HTTP/1.0 and HTTP/1.1 are served, not {version.decode()}")
    return Head(method.decode(), target.decode(), version.decode(), _read_headers(reader, len(line)))


def _read_headers(reader: Reader, used: int) -> dict[str, str]:
    too_large = ApiError(
        "RequestHeaderFieldsTooLarge",
        f"headers are limited to {MAX_HEADERS} lines of {MAX_LINE} bytes, {MAX_HEAD} bytes in all",
    )
    headers: dict[str, str] = {}
    count = 0
    while True:
        line = reader.readline(too_large)
        used += len(line)
        if used > MAX_HEAD:
            raise too_large
        if line in (b"\r\n", b"\n"):
            return headers
        count += 1
        if count > MAX_HEADERS:
            raise too_large
        if line[:1] in (b" ", b"\t"):
            raise _bad("a header line starts with white space (line folding is not allowed)")
        name_bytes, colon, value_bytes = line.rstrip(b"\r\n").partition(b":")
        if not colon or not _TOKEN.fullmatch(name_bytes):
            raise _bad("a header line is not NAME: VALUE")
        value_bytes = value_bytes.strip(b" \t")
        if _BAD_VALUE_BYTES.search(value_bytes):
            raise _bad("a header value has control characters")
        name, value = name_bytes.decode().lower(), value_bytes.decode("latin-1")
        if name in headers:
            if name in _SINGLE:
                raise _bad(f"the {name} header is given more than once")
            value = f"{headers[name]}, {value}"
        headers[name] = value


def body_length(headers: dict[str, str]) -> int:
    """The declared body length, refusing what the sandbox does not read."""
    if "transfer-encoding" in headers:
        raise ApiError("LengthRequired", "send the body with a Content-Length, not a Transfer-Encoding")
    text = headers.get("content-length", "0")
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise _bad("the Content-Length header is not a whole number of bytes")
    length = int(text)
    if length > MAX_BODY:
        raise ApiError("RequestEntityTooLarge", f"the body is {length} bytes; at most {MAX_BODY} are read")
    return length


def send_answer(
    sock: socket.socket,
    status: int,
    payload: dict[str, Any],
    headers: dict[str, str],
    with_body: bool = True,
    *,
    now: float,
) -> None:
    """Write one complete answer, its `Date` at `now` (the sandbox clock); a client that has gone
    away is not an error."""
    data = json.dumps(payload, ensure_ascii=True).encode("ascii")
    try:
        reason = HTTPStatus(status).phrase
    except ValueError:
        reason = "Error"
    lines = [
        f"HTTP/1.1 {status} {reason}",
        "Content-Type: application/json",
        f"Content-Length: {len(data)}",
        *(f"{name}: {value}" for name, value in headers.items()),
        f"Date: {formatdate(now, usegmt=True)}",
        "Server: QianfanSandbox",
        "Connection: close",
    ]
    message = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (data if with_body else b"")
    with contextlib.suppress(OSError):
        sock.settimeout(SEND_TIMEOUT_SECONDS)
        sock.sendall(message)


def send_continue(sock: socket.socket) -> None:
    """`100 Continue`, for a client that waits for it before sending the body."""
    with contextlib.suppress(OSError):
        sock.settimeout(SEND_TIMEOUT_SECONDS)
        sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")


def close_gracefully(sock: socket.socket, unread: bool) -> None:
    """Shut the sending side, then drop what the client still sends (briefly, or for a while if
    its body was not read) so that closing never turns into a reset that destroys the answer."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
        if unread:
            deadline = time.monotonic() + LINGER_SECONDS
            while (remaining := deadline - time.monotonic()) > 0:
                sock.settimeout(remaining)
                if not sock.recv(65536):
                    break
        else:
            sock.settimeout(0.0)  # only what has already arrived
            for _ in range(16):
                if not sock.recv(65536):
                    break
    with contextlib.suppress(OSError):
        sock.close()


def hold(sock: socket.socket, seconds: float, stop: threading.Event) -> None:
    """Keep the connection open without answering for `seconds` at most: less when the client
    gives up (closes or resets) or the server stops, so a hang never holds a thread longer."""
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0 and not stop.is_set():
        try:
            sock.settimeout(min(remaining, HOLD_POLL_SECONDS))
            if not sock.recv(65536):
                return  # the client closed its side: nobody is waiting any more
        except TimeoutError:
            continue
        except OSError:
            return  # reset, or the socket is already closed


def drop(sock: socket.socket) -> None:
    """Close without a word, as a lost answer looks to the client."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


def header_safe(message: str) -> str:
    """HTTP headers are Latin-1 and one line: escape the rest so no value can break them."""
    one_line = " ".join(message.split())
    return one_line.encode("ascii", "backslashreplace").decode("ascii")[:512]
