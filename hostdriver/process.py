"""The child processes the tests, the benchmark and the audit's tests start: a plugin host, a
standalone sandbox. Each prints one line when it is ready (its port, or its URL); every wait for
it, and for its end, is bounded."""

from __future__ import annotations

import queue
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, AnyStr

import grpc


def first_line(process: subprocess.Popen[AnyStr], timeout: float) -> AnyStr | None:
    """The first line the process prints, or None if it prints none within `timeout` seconds (or
    exits first: then the line is empty)."""
    stdout: IO[AnyStr] | None = process.stdout
    assert stdout is not None, "the process must be started with stdout=subprocess.PIPE"
    lines: queue.Queue[AnyStr] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return None


def read_port(process: subprocess.Popen[bytes], timeout: float, what: str, stderr_path: Path) -> int:
    """The port a plugin (provider host, policy pack) prints first; stops it and says why if none."""
    line = first_line(process, timeout)
    if line is None or not line.strip():
        stop(process)
        if line is None:
            raise RuntimeError(f"{what} printed no port within {timeout:g}s")
        raise RuntimeError(f"{what} exited: {stderr_path.read_text(errors='replace')}")
    return int(line)


def stop(process: subprocess.Popen[AnyStr], timeout: float = 10) -> None:
    """Terminate the process, kill it if it will not go, and close its pipes."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)
    for stream in (process.stdout, process.stderr):
        if stream is not None:
            stream.close()


class Plugin:
    """A Pulumi plugin as the engine runs it (a provider host, a policy pack): a child process whose
    stderr goes to a file, serving gRPC on 127.0.0.1 at the port it prints first."""

    def __init__(
        self, command: Sequence[str], *, cwd: Path, env: Mapping[str, str], stderr_path: Path, what: str, timeout: float
    ) -> None:
        self.stderr_path = stderr_path
        self._stderr = open(stderr_path, "wb")  # noqa: SIM115 - held for the plugin's lifetime, closed in close()
        self.process = subprocess.Popen(
            list(command), cwd=cwd, env=dict(env), stdout=subprocess.PIPE, stderr=self._stderr
        )
        self.port = read_port(self.process, timeout, what, stderr_path)
        self.channel: Any = grpc.insecure_channel(f"127.0.0.1:{self.port}")

    def stderr_text(self) -> str:
        if not self._stderr.closed:
            self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def close(self) -> None:
        stop(self.process)
        if getattr(self, "channel", None) is not None:
            self.channel.close()
        self._stderr.close()
