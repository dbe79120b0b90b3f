"""`python -m qianfan_sandbox`: run the sandbox standalone until SIGINT or SIGTERM.

It prints exactly one line with its URL (and flushes) so a parent process can read the port
it picked; a problem with the arguments, the database or the port prints one line to stderr
and exits 2. The secret key is never printed.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import NoReturn

from .auth import SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY
from .control import SandboxControl
from .errors import SandboxError
from .models import parse_model_list
from .server import DEFAULT_REQUEST_TIMEOUT_SECONDS, Sandbox

EXIT_SANDBOX_ERROR = 2

#: Options that can be set from the command line (stored in the database, like SandboxControl's).
_STORED_OPTIONS = (
    "creating_seconds",
    "latency_ms",
    "resize_delay_seconds",
    "describe_shape",
    "id_style",
    "page_size",
    "visible_after_seconds",
    "retired_models",
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr like every other error here, not usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_SANDBOX_ERROR, f"qianfan sandbox: {' '.join(message.split())} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m qianfan_sandbox",
        description="Local emulator of Baidu Qianfan's TPM quota console API.",
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = any free)")
    parser.add_argument("--db", required=True, help="SQLite database file (created if missing)")
    parser.add_argument("--access-key", default=SANDBOX_ACCESS_KEY)
    parser.add_argument("--secret-key", default=SANDBOX_SECRET_KEY)
    parser.add_argument(
        "--extra-models", default="", help="comma-separated model ids accepted besides the documented ones"
    )
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=DEFAULT_REQUEST_TIMEOUT_SECONDS,
        help="seconds a client has to send a whole request",
    )
    stored = parser.add_argument_group("options stored in the database (as SandboxControl.set_option)")
    stored.add_argument("--creating-seconds", type=float, help="how long new instances stay Creating")
    stored.add_argument("--latency-ms", type=float, help="delay added to every request")
    stored.add_argument("--resize-delay-seconds", type=float, help="how long until a resize shows in Describe")
    stored.add_argument("--describe-shape", choices=("documented", "rich"), help="fields of Describe items")
    stored.add_argument("--id-style", choices=("tpm", "hex"), help="spelling of new instance ids")
    stored.add_argument("--page-size", type=int, help="most items per Describe answer, in marker pages (0 = all)")
    stored.add_argument(
        "--visible-after-seconds", type=float, help="how long after its purchase a new instance shows in Describe"
    )
    stored.add_argument("--retired-models", help="comma-separated model ids refused as unknown")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        sandbox = Sandbox(
            args.db,
            {args.access_key: args.secret_key},
            port=args.port,
            extra_models=parse_model_list(args.extra_models),
            request_timeout_seconds=args.request_timeout,
        )
        control = SandboxControl(args.db)
        for name in _STORED_OPTIONS:
            value = getattr(args, name)
            if value is not None:
                control.set_option(name, value)
        sandbox.start()
    except (SandboxError, ValueError) as exc:
        print(f"qianfan sandbox: {exc}", file=sys.stderr)
        return EXIT_SANDBOX_ERROR
    print(f"Qianfan sandbox listening on {sandbox.url} (database {sandbox.db_path})", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
