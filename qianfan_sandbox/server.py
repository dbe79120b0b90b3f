"""Running a sandbox: bind 127.0.0.1, serve from a daemon thread, stop cleanly.

Nothing happens at construction or import; `start()` opens (and checks) the database first so
a bad path fails there, with the path in the message, rather than on the first request.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType

from .auth import SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY
from .errors import SandboxError
from .handler import App, SandboxServer
from .models import accepted_models
from .store import Store

#: The only interface the sandbox ever listens on: it must never be reachable from elsewhere.
LOOPBACK = "127.0.0.1"
#: How long a client has to send a whole request (line, headers, body) once connected.
DEFAULT_REQUEST_TIMEOUT_SECONDS = 10.0
#: Connections served at once; more get 503 ServiceUnavailable at once.
DEFAULT_MAX_CONNECTIONS = 256


def _checked_credentials(credentials: Mapping[str, str] | None) -> dict[str, str]:
    if credentials is None:
        return {SANDBOX_ACCESS_KEY: SANDBOX_SECRET_KEY}
    checked = dict(credentials)
    if not checked:
        raise SandboxError("sandbox credentials: give at least one access key / secret key pair")
    for access_key, secret_key in checked.items():
        if not isinstance(access_key, str) or not access_key or "/" in access_key or not access_key.isprintable():
            raise SandboxError("sandbox credentials: an access key must be printable text without '/'")
        if not isinstance(secret_key, str) or not secret_key:
            raise SandboxError("sandbox credentials: a secret key must be non-empty text")
    return checked


class Sandbox:
    """A local Qianfan TPM console backed by one SQLite file."""

    def __init__(
        self,
        db_path: str | Path,
        credentials: Mapping[str, str] | None = None,
        *,
        port: int = 0,
        extra_models: Iterable[str] = (),
        request_timeout_seconds: float = DEFAULT_REQUEST_TIMEOUT_SECONDS,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise SandboxError(f"sandbox port must be a whole number from 0 to 65535, not {port!r}")
        if not isinstance(request_timeout_seconds, (int, float)) or not (
            math.isfinite(request_timeout_seconds) and 0 < request_timeout_seconds <= 3600
        ):
            raise SandboxError(
                f"sandbox request timeout must be from 0 to 3600 seconds, not {request_timeout_seconds!r}"
            )
        if isinstance(max_connections, bool) or not isinstance(max_connections, int) or max_connections < 1:
            raise SandboxError(f"sandbox max_connections must be a whole number >= 1, not {max_connections!r}")
        try:
            self._models = accepted_models(extra_models)
        except ValueError as exc:
            raise SandboxError(f"sandbox models: {exc}") from None
        self.db_path = Path(db_path)
        self._credentials = _checked_credentials(credentials)
        self._requested_port = port
        self._request_timeout = float(request_timeout_seconds)
        self._max_connections = max_connections
        self._server: SandboxServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Sandbox:
        """Open the database, bind the port and serve in a daemon thread; returns self."""
        if self._server is not None:
            return self
        store = Store.open(self.db_path)
        app = App(store, self._credentials, self._models, self._request_timeout, self._max_connections)
        try:
            server = SandboxServer((LOOPBACK, self._requested_port), app)
        except OSError as exc:
            raise SandboxError(
                f"sandbox cannot listen on {LOOPBACK}:{self._requested_port} "
                f"({exc.strerror or exc}); database {store.path}"
            ) from None
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"qianfan-sandbox-{server.server_address[1]}",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()
        return self

    @property
    def port(self) -> int:
        """The bound port (useful when 0 asked for a free one)."""
        if self._server is None:
            raise RuntimeError("the sandbox is not running; call start() first")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`, the value for QIANFAN_CONSOLE_API_BASE_URL."""
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def stop(self) -> None:
        """Stop accepting requests and release the port; safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "stopped"
        return f"Sandbox({str(self.db_path)!r}, {where})"


def start_sandbox(
    db_path: str | Path,
    credentials: Mapping[str, str] | None = None,
    *,
    port: int = 0,
    extra_models: Iterable[str] = (),
) -> Sandbox:
    """Construct and start a sandbox in one call."""
    return Sandbox(db_path, credentials, port=port, extra_models=extra_models).start()
