"""`python -m qianfan_sandbox`: run the sandbox standalone until SIGINT or SIGTERM.

It prints exactly one line with its URL (and flushes) so a parent process can read the port
it picked; problems with the database or port print one line to stderr and exit 2.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from providers.models import parse_extra_models

from .auth import SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY
from .control import SandboxControl
from .errors import SandboxError
from .server import Sandbox

EXIT_SANDBOX_ERROR = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m qianfan_sandbox",
        description="Local emulator of Baidu Qianfan's TPM quota console API.",
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 = any free)")
    parser.add_argument("--db", required=True, help="SQLite database file (created if missing)")
    parser.add_argument("--access-key", default=SANDBOX_ACCESS_KEY)
    parser.add_argument("--secret-key", default=SANDBOX_SECRET_KEY)
    parser.add_argument(
        "--creating-seconds",
        type=float,
        default=None,
        help="how long new instances stay Creating (stored in the database)",
    )
    parser.add_argument(
        "--latency-ms", type=float, default=None, help="delay added to every request (stored in the database)"
    )
    parser.add_argument(
        "--extra-models", default="", help="comma-separated model ids accepted besides the documented ones"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        control = SandboxControl(args.db)
        try:
            if args.creating_seconds is not None:
                control.set_option("creating_seconds", args.creating_seconds)
            if args.latency_ms is not None:
                control.set_option("latency_ms", args.latency_ms)
        except ValueError as exc:
            print(f"qianfan sandbox: {exc}", file=sys.stderr)
            return EXIT_SANDBOX_ERROR
        sandbox = Sandbox(
            args.db,
            {args.access_key: args.secret_key},
            port=args.port,
            extra_models=parse_extra_models(args.extra_models),
        ).start()
    except SandboxError as exc:
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
