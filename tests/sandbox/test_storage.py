"""The database file: what the sandbox creates, upgrades, and refuses to touch."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from hostdriver import PROJECT_ROOT
from hostdriver.process import first_line
from qianfan_sandbox import Sandbox, SandboxControl, SandboxError
from tests.support.sandbox_http import MODEL, Client
from tests.support.standalone import child_env

#: The schema of the sandbox's earlier copy (providers/sandbox), written out so this test does
#: not depend on that copy, which goes away.
EARLIER_SCHEMA = """
CREATE TABLE options (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE faults (id INTEGER PRIMARY KEY AUTOINCREMENT, action TEXT NOT NULL, kind TEXT NOT NULL,
    remaining INTEGER NOT NULL, status INTEGER);
CREATE TABLE instances (seq INTEGER PRIMARY KEY AUTOINCREMENT, instance_id TEXT NOT NULL UNIQUE,
    model TEXT NOT NULL, count INTEGER NOT NULL, payment_timing TEXT NOT NULL, created_at REAL NOT NULL,
    ready_at REAL NOT NULL, release_at REAL, released_at REAL, expired_at REAL);
CREATE TABLE requests (id INTEGER PRIMARY KEY AUTOINCREMENT, action TEXT, body TEXT NOT NULL,
    body_is_json INTEGER NOT NULL, status INTEGER, code TEXT);
"""


def snapshot(path: Path, siblings: bool = True) -> tuple[bytes, list[str]]:
    """The file's bytes and every file beside it, to prove nothing was written."""
    return path.read_bytes(), sorted(p.name for p in path.parent.iterdir()) if siblings else []


def schema(path: Path) -> list[Any]:
    with sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()


def assert_refused(path: Path, *words: str, siblings: bool = True) -> None:
    """Refused with one line naming the path and `words`; not a byte written, no file added beside
    it (`siblings=False` for a WAL database, whose readers always add -wal and -shm files)."""
    before = snapshot(path, siblings)
    try:
        before_schema: list[Any] | None = schema(path)
    except sqlite3.DatabaseError:
        before_schema = None  # not SQLite at all
    for attempt in (lambda: Sandbox(path).start(), lambda: SandboxControl(path)):
        with pytest.raises(SandboxError) as caught:
            attempt()
        message = str(caught.value)
        assert str(path) in message and "\n" not in message
        for word in words:
            assert word in message
    assert snapshot(path, siblings) == before
    if before_schema is not None:
        assert schema(path) == before_schema


def make_db(path: Path, script: str) -> Path:
    conn = sqlite3.connect(path)
    try:
        conn.executescript(script)
        conn.commit()
    finally:
        conn.close()
    return path


def test_another_programs_database_is_refused_untouched(tmp_path: Path) -> None:
    path = make_db(
        tmp_path / "app.db",
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);"
        "CREATE TABLE orders (id INTEGER, total REAL);"
        "INSERT INTO users (name) VALUES ('ada');",
    )
    assert_refused(path, "another program's", "orders", "users")
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_a_foreign_table_named_like_ours_is_refused(tmp_path: Path) -> None:
    path = make_db(tmp_path / "instances.db", "CREATE TABLE instances (id INTEGER, name TEXT);")
    assert_refused(path, "instances")


def test_our_table_names_with_other_columns_are_refused(tmp_path: Path) -> None:
    script = EARLIER_SCHEMA.replace("model TEXT NOT NULL,", "modelname TEXT NOT NULL,")
    path = make_db(tmp_path / "lookalike.db", script)
    assert_refused(path, "instances")


def test_another_application_id_is_refused(tmp_path: Path) -> None:
    path = make_db(tmp_path / "marked.db", "PRAGMA application_id = 1234;")
    assert_refused(path, "1234")


def test_a_newer_sandbox_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "newer.db"
    SandboxControl(path)
    make_db(path, "PRAGMA user_version = 99;")
    assert_refused(path, "newer", siblings=False)


def test_a_file_that_is_not_sqlite_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    path.write_bytes(b"this is not a SQLite database, just some bytes " * 200)
    assert_refused(path, "not a SQLite database")


def test_an_empty_file_becomes_a_sandbox_database(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    with Sandbox(path) as sandbox:
        assert Client(sandbox.url).describe() == []
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA application_id").fetchone()[0] == 0x51465342
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_the_earlier_copys_database_is_upgraded(tmp_path: Path) -> None:
    path = make_db(
        tmp_path / "earlier.db",
        EARLIER_SCHEMA + "INSERT INTO instances (instance_id, model, count, payment_timing, created_at, ready_at) "
        "VALUES ('tpm-Old00001', 'ernie-speed-8k', 3, 'Postpaid', 1700000000, 1700000001);"
        "INSERT INTO options (name, value) VALUES ('describe_mode', '\"sparse\"');",
    )
    with Sandbox(path) as sandbox:
        [item] = Client(sandbox.url).describe()
        assert (item["instanceId"], item["tpm"], item["startTime"]) == ("tpm-Old00001", 30000, "2023-11-14T22:13:20Z")
    control = SandboxControl(path)
    assert control.options().describe_shape == "documented"  # the old option is ignored
    assert control.instances()[0]["count"] == 3
    with sqlite3.connect(path) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(instances)")}
        assert {"resize_count", "resize_at"} <= columns
        assert conn.execute("PRAGMA application_id").fetchone()[0] == 0x51465342


def test_a_schema_2_database_gets_the_fault_seconds_column(tmp_path: Path) -> None:
    path = make_db(
        tmp_path / "schema2.db",
        EARLIER_SCHEMA + "ALTER TABLE instances ADD COLUMN resize_count INTEGER;"
        "ALTER TABLE instances ADD COLUMN resize_at REAL;"
        "PRAGMA application_id = 1363563330; PRAGMA user_version = 2;"
        "INSERT INTO faults (action, kind, remaining, status) VALUES ('DescribeTPMResource', 'error', 1, 503);",
    )
    with Sandbox(path) as sandbox:
        client = Client(sandbox.url)
        assert client.call("DescribeTPMResource", {"model": MODEL}).status_code == 503  # the queued fault
        SandboxControl(path).add_fault("PurchaseTPMResource", "hang_after_commit", seconds=0.1)
    with sqlite3.connect(path) as conn:
        assert "seconds" in {row[1] for row in conn.execute("PRAGMA table_info(faults)")}
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
        assert conn.execute("SELECT kind, seconds FROM faults").fetchall() == [("hang_after_commit", 0.1)]


#: Processes that open each new file at once, and how many new files they race for.
RACERS = 8
RACE_ROUNDS = 25
#: One racer: it imports first (so imports do not spread the racers out), says `ready`, then for
#: each round meets the others at a file barrier and opens that round's new file.
RACER = """
import pathlib, sys, time
from qianfan_sandbox import SandboxControl

base, worker, racers, rounds = pathlib.Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
print("ready", flush=True)
for round_ in range(rounds):
    (base / "barrier" / f"{round_}-{worker}").touch()
    deadline = time.monotonic() + 60
    while len(list((base / "barrier").glob(f"{round_}-*"))) < racers:
        if (base / "failed").exists():
            sys.exit(f"round {round_}: another racer failed")
        if time.monotonic() > deadline:
            sys.exit(f"round {round_}: the other racers never came")
        time.sleep(0.001)
    try:
        SandboxControl(base / f"round-{round_}" / "q.db").set_option("latency_ms", round_ + 1)
    except Exception as exc:
        (base / "failed").touch()
        sys.exit(f"round {round_}: {exc}")
print("ok", flush=True)
"""


@pytest.mark.slow
def test_concurrent_first_opens_of_one_new_file(tmp_path: Path) -> None:
    """Eight processes creating one new file at the same moment all wait their turn and succeed
    (SQLite refuses the switch to WAL at once while another holds the file: that is retried)."""
    (tmp_path / "barrier").mkdir()
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(tmp_path), str(worker), str(RACERS), str(RACE_ROUNDS)],
            cwd=PROJECT_ROOT,
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for worker in range(RACERS)
    ]
    try:
        for racer in racers:
            assert first_line(racer, 60) == "ready\n"
        outcomes = [racer.communicate(timeout=120) for racer in racers]
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.kill()
                racer.wait(timeout=10)
    assert [(racer.returncode, err) for racer, (_, err) in zip(racers, outcomes, strict=True)] == [(0, "")] * RACERS
    assert [out for out, _ in outcomes] == ["ok\n"] * RACERS
    for round_ in range(RACE_ROUNDS):
        assert SandboxControl(tmp_path / f"round-{round_}" / "q.db").get_option("latency_ms") == round_ + 1


def test_concurrent_first_opens_in_threads(tmp_path: Path) -> None:
    path = tmp_path / "race" / "q.db"
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def open_it() -> None:
        try:
            barrier.wait(timeout=10)
            SandboxControl(path).set_option("latency_ms", 1)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert SandboxControl(path).get_option("latency_ms") == 1.0


def test_unwritable_locations_are_sandbox_errors(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    path = blocker / "sub" / "qianfan.db"
    with pytest.raises(SandboxError) as caught:
        Sandbox(path).start()
    assert str(path) in str(caught.value)
    directory = tmp_path / "a-directory.db"
    directory.mkdir()
    with pytest.raises(SandboxError, match=re.escape(str(directory))):
        Sandbox(directory).start()


def test_port_in_use_is_a_sandbox_error(tmp_path: Path) -> None:
    with Sandbox(tmp_path / "one.db") as running, pytest.raises(SandboxError, match=f"127.0.0.1:{running.port}"):
        Sandbox(tmp_path / "other.db", port=running.port).start()


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ({"port": 70000}, "port"),
        ({"port": -1}, "port"),
        ({"port": True}, "port"),
        ({"credentials": {}}, "credentials"),
        ({"credentials": {"AK/1": "SK"}}, "access key"),
        ({"credentials": {"": "SK"}}, "access key"),
        ({"credentials": {"AK": ""}}, "secret key"),
        ({"extra_models": [""]}, "model"),
        ({"extra_models": ["a\nb"]}, "model"),
        ({"extra_models": ["m" * 200]}, "model"),
        ({"request_timeout_seconds": 0}, "timeout"),
        ({"request_timeout_seconds": float("nan")}, "timeout"),
        ({"max_connections": 0}, "max_connections"),
    ],
)
def test_bad_arguments_are_one_clear_error(tmp_path: Path, arguments: dict[str, Any], words: str) -> None:
    path = tmp_path / "never.db"
    credentials = arguments.pop("credentials", None)
    with pytest.raises(SandboxError, match=words):
        Sandbox(path, credentials, **arguments)
    assert not path.exists()


def test_secret_key_never_appears_in_errors(tmp_path: Path) -> None:
    with pytest.raises(SandboxError) as caught:
        Sandbox(tmp_path / "x.db", {"AK/bad": "super-secret-value"})
    assert "super-secret-value" not in str(caught.value)


def test_control_sees_instances_created_through_the_api(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    with Sandbox(path) as sandbox:
        instance_id = Client(sandbox.url).purchase(model=MODEL, count=2)
    assert [row["instanceId"] for row in SandboxControl(path).instances(MODEL)] == [instance_id]
