"""Running a sandbox: bind 127.0.0.1, serve from a daemon thread, stop cleanly.

Nothing happens at construction or import; `start()` opens (and checks) the database first so
a bad path fails there, with the path in the message, rather than on the first request.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType

from providers.models import allowed_models

from .auth import SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY
from .errors import SandboxError
from .handler import App, SandboxHTTPServer
from .store import Store

#: The only interface the sandbox ever listens on: it must never be reachable from elsewhere.
LOOPBACK = "127.0.0.1"


class Sandbox:
    """A local Qianfan TPM console backed by one SQLite file."""

    def __init__(
        self,
        db_path: str | Path,
        credentials: Mapping[str, str] | None = None,
        *,
        port: int = 0,
        extra_models: Iterable[str] = (),
    ) -> None:
        self.db_path = Path(db_path)
        self._credentials = dict(credentials) if credentials is not None else {SANDBOX_ACCESS_KEY: SANDBOX_SECRET_KEY}
        self._requested_port = port
        self._models = frozenset(allowed_models(extra_models))
        self._server: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Sandbox:
        """Open the database, bind the port and serve in a daemon thread; returns self."""
        if self._server is not None:
            return self
        store = Store.open(self.db_path)
        app = App(store=store, credentials=self._credentials, models=self._models)
        try:
            server = SandboxHTTPServer((LOOPBACK, self._requested_port), app)
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
