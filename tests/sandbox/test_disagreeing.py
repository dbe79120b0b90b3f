"""A Qianfan whose answers disagree with each other, staged: a new instance that shows up late,
writes answered `false` or `true` but not applied, a purchase that commits and then hangs,
retired model ids and instances bought in the console."""

from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from qianfan_sandbox import Sandbox, SandboxControl
from tests.support.sandbox_http import MODEL, OTHER_MODEL, TIMEOUT, Client, assert_error, purchase_body

pytestmark = pytest.mark.slow  # a sandbox server per test, real delays

#: Generous slack for timings on a busy machine.
SLACK = 5.0


def utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def listed(client: Client, model: str = MODEL, **filters: Any) -> list[str]:
    return [item["instanceId"] for item in client.describe(model, **filters)]


# -- a new instance that shows up late -----------------------------------------------------------


def test_a_new_instance_exists_at_once_but_is_listed_late(client: Client, served_control: SandboxControl) -> None:
    served_control.set_option("visible_after_seconds", 30)
    bought_at = datetime.now(UTC).replace(microsecond=0)
    instance_id = client.purchase(count=1)
    assert listed(client) == [] and listed(client, instanceId=instance_id) == []
    [row] = served_control.instances()
    assert row["instanceId"] == instance_id  # the control sees the truth
    # It exists: every write works on it while it is not listed.
    assert client.ok("ResizeTPMResource", {"instanceId": instance_id, "count": 3}) is True
    assert client.ok("AutoReleaseTPMResource", {"instanceId": instance_id, "releaseTime": "2035-01-01 00:00:00"})
    served_control.set_option("clock_offset_seconds", 29)
    assert listed(client) == []
    served_control.set_option("clock_offset_seconds", 31)
    [item] = client.describe()
    assert (item["instanceId"], item["tpm"]) == (instance_id, 30000)
    assert abs((utc(item["startTime"]) - bought_at).total_seconds()) <= SLACK  # the purchase moment


def test_release_works_on_an_instance_not_yet_listed(client: Client, served_control: SandboxControl) -> None:
    served_control.set_option("visible_after_seconds", 60)
    instance_id = client.purchase()
    assert client.ok("ReleaseTPMResource", {"model": MODEL, "instanceId": instance_id}) is True
    assert served_control.instances()[0]["status"] == "Stopped"
    served_control.set_option("visible_after_seconds", 0)
    assert client.describe()[0]["status"] == "Stopped"


def test_late_instances_are_unknown_to_describe_by_id(client: Client, served_control: SandboxControl) -> None:
    old = client.purchase()
    served_control.set_option("visible_after_seconds", 60)
    served_control.set_option("unknown_instance", "error")
    served_control.set_option("clock_offset_seconds", 61)  # `old` is old enough now
    new = client.purchase()
    assert listed(client) == [old]
    assert_error(client.call("DescribeTPMResource", {"model": MODEL, "instanceId": new}), 404, "ResourceNotFound")


@pytest.mark.parametrize("value", [-1, float("inf"), "30", True])
def test_visible_after_values_are_checked(served_control: SandboxControl, value: Any) -> None:
    with pytest.raises(ValueError, match="visible_after_seconds"):
        served_control.set_option("visible_after_seconds", value)


# -- writes answered false, or true and not applied ---------------------------------------------


def test_false_result_answers_false_and_changes_nothing(client: Client, served_control: SandboxControl) -> None:
    served_control.set_option("creating_seconds", 0)
    instance_id = client.purchase(count=2)
    calls = {
        "ResizeTPMResource": {"instanceId": instance_id, "count": 7},
        "AutoReleaseTPMResource": {"instanceId": instance_id, "releaseTime": "2035-01-01 00:00:00"},
        "ReleaseTPMResource": {"model": MODEL, "instanceId": instance_id},
    }
    for action, body in calls.items():
        served_control.add_fault(action, "false_result")
        response = client.call(action, body)
        assert response.status_code == 200
        payload = response.json()
        assert payload == {"requestId": response.headers["X-Bce-Request-Id"], "result": False}
    [row] = served_control.instances()
    assert (row["count"], row["releaseTime"], row["status"], row["released"]) == (2, None, "Running", False)
    assert [r["status"] for r in served_control.requests()][-3:] == [200, 200, 200]
    for action, body in calls.items():  # used up: the next calls apply
        assert client.ok(action, body) is True
    assert served_control.instances()[0]["status"] == "Stopped"


def test_false_result_still_validates_the_request(client: Client, served_control: SandboxControl) -> None:
    served_control.add_fault("ResizeTPMResource", "false_result")
    assert_error(client.call("ResizeTPMResource", {"instanceId": "tpm-nothere", "count": 2}), 404, "ResourceNotFound")


@pytest.mark.parametrize("action", ["*", "PurchaseTPMResource", "DescribeTPMResource"])
def test_false_result_is_for_the_three_writes_that_answer_true(served_control: SandboxControl, action: str) -> None:
    with pytest.raises(ValueError, match="ResizeTPMResource, AutoReleaseTPMResource, ReleaseTPMResource"):
        served_control.add_fault(action, "false_result")


def test_a_release_answered_true_but_not_applied_leaves_it_running(
    client: Client, served_control: SandboxControl
) -> None:
    served_control.set_option("creating_seconds", 0)
    instance_id = client.purchase()
    served_control.add_fault("ReleaseTPMResource", "not_applied")
    assert client.ok("ReleaseTPMResource", {"model": MODEL, "instanceId": instance_id}) is True
    [item] = client.describe()
    assert (item["instanceId"], item["status"], item["expiredTime"]) == (instance_id, "Running", "-")
    assert served_control.instances()[0]["released"] is False
    assert client.ok("ReleaseTPMResource", {"model": MODEL, "instanceId": instance_id}) is True
    assert client.describe()[0]["status"] == "Stopped"


# -- a write that commits and then hangs ---------------------------------------------------------


def post(client: Client, action: str, body: Any, timeout: float) -> requests.Response:
    return requests.post(
        f"{client.url}/v2/charge", params={"Action": action}, json=body, headers=client.headers(action), timeout=timeout
    )


def test_hang_after_commit_holds_then_drops_with_no_answer(client: Client, served_control: SandboxControl) -> None:
    served_control.add_fault("PurchaseTPMResource", "hang_after_commit", seconds=1.5)
    started = time.monotonic()
    with pytest.raises(requests.ConnectionError):
        post(client, "PurchaseTPMResource", purchase_body(purchaseCount=3), timeout=1.5 + 30)
    waited = time.monotonic() - started
    assert 1.4 <= waited < 1.5 + 20, waited
    [row] = served_control.instances()  # committed before the hang
    assert row["count"] == 3
    assert [(r["status"], r["code"]) for r in served_control.requests()] == [(0, None)]
    client.purchase()  # used up
    assert len(served_control.instances()) == 2


def test_a_client_that_gives_up_first_sees_no_answer_and_frees_the_thread(served_db: Path) -> None:
    # One connection at a time: the next request is served only once the hang has let go.
    with Sandbox(served_db, max_connections=1) as sandbox:
        served_control, client = SandboxControl(served_db), Client(sandbox.url)
        served_control.add_fault("ResizeTPMResource", "hang_after_commit")  # the default: 30 s
        instance_id = client.purchase(count=1)
        deadline = time.monotonic() + 20
        with pytest.raises(requests.ReadTimeout):
            # The purchase's thread may hold the one slot a moment longer: a 503 is asked again.
            while post(client, "ResizeTPMResource", {"instanceId": instance_id, "count": 5}, 0.5).status_code == 503:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        started = time.monotonic()
        assert served_control.instances()[0]["count"] == 5  # committed
        deadline = time.monotonic() + 20
        while client.call("DescribeTPMResource", {"model": MODEL}).status_code == 503:
            assert time.monotonic() < deadline, "the hanging connection was never let go"
            time.sleep(0.1)
        assert time.monotonic() - started < 25  # well before the 30 s the fault holds
        assert [r["status"] for r in served_control.requests("ResizeTPMResource")] == [0]


def test_a_hang_ends_when_the_sandbox_stops(served_db: Path) -> None:
    sandbox = Sandbox(served_db).start()
    served_control, client = SandboxControl(served_db), Client(sandbox.url)
    served_control.add_fault("PurchaseTPMResource", "hang_after_commit", seconds=600)
    sock = socket.create_connection(("127.0.0.1", sandbox.port), timeout=TIMEOUT)
    body = b'{"model": "ernie-speed-8k", "billing": {"paymentTiming": "Postpaid"}, "purchaseCount": 1}'
    headers = client.headers("PurchaseTPMResource")
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request = f"POST /v2/charge?Action=PurchaseTPMResource HTTP/1.1\r\n{head}Content-Length: {len(body)}\r\n\r\n"
    sock.sendall(request.encode() + body)
    deadline = time.monotonic() + 20
    while not served_control.instances():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    closed = threading.Event()

    def wait_for_close() -> None:
        sock.settimeout(60)
        try:
            while sock.recv(65536):
                pass
        except OSError:
            pass
        closed.set()

    threading.Thread(target=wait_for_close, daemon=True).start()
    sandbox.stop()
    assert closed.wait(10), "the held connection outlived the sandbox"
    sock.close()


@pytest.mark.parametrize(
    ("action", "kind", "seconds", "words"),
    [
        ("PurchaseTPMResource", "hang_after_commit", 0, "seconds"),
        ("PurchaseTPMResource", "hang_after_commit", -1, "seconds"),
        ("PurchaseTPMResource", "hang_after_commit", 3601, "seconds"),
        ("PurchaseTPMResource", "hang_after_commit", float("inf"), "seconds"),
        ("PurchaseTPMResource", "hang_after_commit", float("nan"), "seconds"),
        ("PurchaseTPMResource", "hang_after_commit", 10**400, "seconds"),
        ("PurchaseTPMResource", "hang_after_commit", True, "seconds"),
        ("PurchaseTPMResource", "hang_after_commit", "5", "seconds"),
        ("PurchaseTPMResource", "drop_after_commit", 5, "hang_after_commit"),
        ("DescribeTPMResource", "hang_after_commit", 5, "PurchaseTPMResource"),
        ("*", "hang_after_commit", 5, "PurchaseTPMResource"),
    ],
)
def test_hang_arguments_are_checked(
    client: Client, served_control: SandboxControl, action: str, kind: str, seconds: Any, words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        served_control.add_fault(action, kind, seconds=seconds)
    client.purchase()  # nothing was queued
    assert served_control.requests()[-1]["status"] == 200


def test_hang_after_commit_for_every_write(client: Client, served_control: SandboxControl) -> None:
    served_control.set_option("creating_seconds", 0)
    instance_id = client.purchase(count=1)
    calls = [
        ("ResizeTPMResource", {"instanceId": instance_id, "count": 4}),
        ("AutoReleaseTPMResource", {"instanceId": instance_id, "releaseTime": "2035-01-01 00:00:00"}),
        ("ReleaseTPMResource", {"model": MODEL, "instanceId": instance_id}),
    ]
    for action, body in calls:
        served_control.add_fault(action, "hang_after_commit", seconds=0.2)
        with pytest.raises(requests.ConnectionError):
            post(client, action, body, timeout=30)
    [row] = served_control.instances()
    assert (row["count"], row["releaseTime"], row["status"]) == (4, "2035-01-01T00:00:00+08:00", "Stopped")


# -- retired model ids ---------------------------------------------------------------------------


def test_retired_models_are_refused_as_unknown_ones(client: Client, served_control: SandboxControl) -> None:
    retired = "ernie-4.0-8k"
    kept = client.purchase(model=retired, count=2)
    served_control.set_option("retired_models", f" {retired}, ernie-3.5-8k ,")
    assert served_control.get_option("retired_models") == (retired, "ernie-3.5-8k")
    unknown = assert_error(client.call("DescribeTPMResource", {"model": "ernie-9000"}), 400, "InvalidParameter")
    for action, body in [
        ("DescribeTPMResource", {"model": retired}),
        ("PurchaseTPMResource", purchase_body(model=retired)),
        ("ReleaseTPMResource", {"model": retired, "instanceId": kept}),
    ]:
        payload = assert_error(client.call(action, body), 400, "InvalidParameter")
        assert payload["message"] == unknown["message"].replace("ernie-9000", retired)
    # Other models are untouched, and so is the instance itself: Resize names no model.
    assert listed(client, OTHER_MODEL) == []
    assert client.ok("ResizeTPMResource", {"instanceId": kept, "count": 3}) is True
    served_control.set_option("retired_models", [])
    assert client.describe(retired)[0]["tpm"] == 30000


def test_retired_models_as_a_list(client: Client, served_control: SandboxControl) -> None:
    served_control.set_option("retired_models", ["my-custom-model"])
    assert_error(client.call("PurchaseTPMResource", purchase_body(model="my-custom-model")), 400, "InvalidParameter")
    client.purchase()


@pytest.mark.parametrize("value", [5, ["a,b"], [""], ["x" * 200], ["a\nb"], [1], None])
def test_retired_models_values_are_checked(served_control: SandboxControl, value: Any) -> None:
    with pytest.raises(ValueError, match="retired_models"):
        served_control.set_option("retired_models", value)
    assert served_control.get_option("retired_models") == ()


# -- instances bought in Baidu's console ---------------------------------------------------------


def test_add_instance_is_a_console_purchase(client: Client, served_control: SandboxControl) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    instance_id = served_control.add_instance(MODEL, 4, start_time=start)
    assert served_control.requests() == []  # no request was made
    [item] = client.describe()
    assert (item["instanceId"], item["tpm"], item["status"], item["expiredTime"]) == (
        instance_id,
        40000,
        "Running",
        "-",
    )
    assert utc(item["startTime"]) == start
    assert client.ok("ResizeTPMResource", {"instanceId": instance_id, "count": 5}) is True
    assert client.describe()[0]["tpm"] == 50000


def test_add_instance_spellings_statuses_and_release(client: Client, served_control: SandboxControl) -> None:
    served_control.set_option("id_style", "hex")
    scheduled = served_control.add_instance(
        OTHER_MODEL, 1, start_time="2024-02-26T10:00:00Z", release_time="2035-01-01 00:00:00"
    )
    stopped = served_control.add_instance(OTHER_MODEL, 2, start_time="2024-02-26 18:00:00", status="Stopped")
    expired = served_control.add_instance(
        OTHER_MODEL, 1, start_time="2024-02-26T10:00:00Z", release_time="2024-03-01T00:00:00Z", status="Stopped"
    )
    creating = served_control.add_instance(OTHER_MODEL, 1, status="Creating")
    stopped_early = served_control.add_instance(OTHER_MODEL, 1, release_time="2035-01-01 00:00:00", status="Stopped")
    items = {item["instanceId"]: item for item in client.describe(OTHER_MODEL)}
    assert list(items) == [scheduled, stopped, expired, creating, stopped_early]
    assert len(scheduled) == 24
    assert (items[scheduled]["startTime"], items[scheduled]["expiredTime"]) == (
        "2024-02-26T10:00:00Z",
        "2034-12-31T16:00:00Z",
    )
    assert (items[stopped]["startTime"], items[stopped]["status"]) == ("2024-02-26T10:00:00Z", "Stopped")
    assert (items[expired]["status"], items[expired]["expiredTime"]) == ("Stopped", "2024-03-01T00:00:00Z")
    assert items[creating]["status"] == "Creating"
    assert items[stopped_early]["status"] == "Stopped"  # stopped now, before its scheduled release
    assert utc(items[stopped_early]["expiredTime"]) <= datetime.now(UTC)
    assert [row["released"] for row in served_control.instances()] == [False] * 5


def test_add_instance_respects_the_sandbox_clock(client: Client, served_control: SandboxControl) -> None:
    served_control.set_option("clock_offset_seconds", 86400)
    tomorrow = datetime.now(UTC) + timedelta(hours=23)
    instance_id = served_control.add_instance(MODEL, 1, start_time=tomorrow)  # not in the future on the sandbox clock
    assert listed(client) == [instance_id]
    with pytest.raises(ValueError, match="start_time .* is in the future"):
        served_control.add_instance(MODEL, 1, start_time=tomorrow + timedelta(hours=2))


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ({"model": ""}, "model"),
        ({"model": " ernie-speed-8k"}, "model"),
        ({"model": 5}, "model"),
        ({"model": "m" * 200}, "model"),
        ({"count": 0}, "count"),
        ({"count": True}, "count"),
        ({"count": 2.0}, "count"),
        ({"status": "Released"}, "status"),
        ({"start_time": "yesterday"}, "start_time"),
        ({"start_time": datetime(2024, 1, 1)}, "start_time must be timezone-aware"),
        ({"start_time": 1700000000}, "start_time"),
        ({"start_time": "2999-01-01T00:00:00Z"}, "start_time .* is in the future"),
        ({"release_time": "never"}, "release_time"),
        ({"start_time": "2024-02-26T10:00:00Z", "release_time": "2024-02-26T09:00:00Z"}, "not after start_time"),
        ({"start_time": "2024-02-26T10:00:00Z", "release_time": "2024-03-01T00:00:00Z"}, "status='Stopped'"),
        ({"release_time": "2024-03-01T00:00:00Z"}, "not after start_time"),
    ],
)
def test_add_instance_arguments_are_checked(
    served_control: SandboxControl, arguments: dict[str, Any], words: str
) -> None:
    call: dict[str, Any] = {"model": MODEL, "count": 1, **arguments}
    model, count = call.pop("model"), call.pop("count")
    with pytest.raises(ValueError, match=words):
        served_control.add_instance(model, count, **call)
    assert served_control.instances() == []
