"""The whole TPMQuota lifecycle through Pulumi's provider host, against the embedded sandbox.

Each step asserts both what the host answered and the exact requests the sandbox received.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from typing import Any

import pytest

from hostdriver import HostError, ProviderHost
from tests.support.keys import ACCESS_KEY, SECRET_KEY
from tests.support.standalone import child_env, standalone

pytestmark = pytest.mark.slow  # provider hosts of its own per test

MODEL = "ernie-speed-8k"
RELEASE_1 = "2031-03-04T05:06:07+08:00"
RELEASE_2 = "2031-06-01T00:00:00+08:00"


def sent(sandbox_control) -> list[tuple[str, dict]]:
    """(action, body) of every request since the last call, then forget them."""
    requests = [(r["action"], r["body"]) for r in sandbox_control.requests()]
    sandbox_control.clear_requests()
    return requests


def test_full_lifecycle(host: ProviderHost, sandbox_control) -> None:
    # -- create ------------------------------------------------------------------------------
    inputs, failures = host.check({"model": MODEL, "purchaseCount": 2, "releaseTime": "2031-03-04 05:06:07"})
    assert failures == []
    id_, outs = host.create(inputs)
    assert re.fullmatch(r"tpm-[A-Za-z0-9]{8}", id_)
    assert outs["instanceId"] == id_
    assert outs["model"] == MODEL and outs["purchaseCount"] == 2 and outs["paymentTiming"] == "Postpaid"
    assert outs["releaseTime"] == RELEASE_1
    assert outs["tpm"] == 20_000 and outs["rpm"] == 66
    assert outs["status"] in ("Creating", "Running")
    assert sent(sandbox_control) == [
        ("DescribeTPMResource", {"model": MODEL}),
        (
            "PurchaseTPMResource",
            {"model": MODEL, "billing": {"paymentTiming": "Postpaid", "releaseTime": RELEASE_1}, "purchaseCount": 2},
        ),
        ("DescribeTPMResource", {"model": MODEL}),
    ]
    [row] = sandbox_control.instances(MODEL)
    assert row["instanceId"] == id_ and row["count"] == 2 and row["releaseTime"] == RELEASE_1

    # -- refresh: nothing changed ------------------------------------------------------------
    read_id, read_outs, read_inputs = host.read(id_, outs)
    assert read_id == id_
    assert {k: read_outs[k] for k in ("purchaseCount", "releaseTime", "tpm", "rpm")} == {
        "purchaseCount": 2,
        "releaseTime": RELEASE_1,
        "tpm": 20_000,
        "rpm": 66,
    }
    assert read_inputs == {
        "model": MODEL,
        "purchaseCount": 2,
        "releaseTime": RELEASE_1,
        "paymentTiming": "Postpaid",
        "__provider": host.blob,
    }
    assert sent(sandbox_control) == [("DescribeTPMResource", {"model": MODEL})]

    # -- update: resize ----------------------------------------------------------------------
    news, _ = host.check({"model": MODEL, "purchaseCount": 3, "releaseTime": RELEASE_1}, olds=read_inputs)
    assert host.diff(id_, read_outs, news)["changes"] == "DIFF_SOME"
    outs = host.update(id_, read_outs, news)
    assert outs["purchaseCount"] == 3 and outs["tpm"] == 30_000 and outs["rpm"] == 99
    # Describe first: an update never touches an instance it has not seen under the quota's model.
    assert sent(sandbox_control) == [
        ("DescribeTPMResource", {"model": MODEL}),
        ("ResizeTPMResource", {"instanceId": id_, "count": 3}),
        ("DescribeTPMResource", {"model": MODEL}),
    ]

    # -- update: move the release ------------------------------------------------------------
    news, _ = host.check({"model": MODEL, "purchaseCount": 3, "releaseTime": RELEASE_2}, olds=news)
    outs = host.update(id_, outs, news)
    assert outs["releaseTime"] == RELEASE_2
    assert sent(sandbox_control) == [
        ("DescribeTPMResource", {"model": MODEL}),
        ("AutoReleaseTPMResource", {"instanceId": id_, "releaseTime": RELEASE_2}),
        ("DescribeTPMResource", {"model": MODEL}),
    ]

    # -- update: cancel the release ----------------------------------------------------------
    news, _ = host.check({"model": MODEL, "purchaseCount": 3}, olds=news)
    outs = host.update(id_, outs, news)
    assert "releaseTime" not in outs
    assert sent(sandbox_control) == [
        ("DescribeTPMResource", {"model": MODEL}),
        ("AutoReleaseTPMResource", {"instanceId": id_}),
        ("DescribeTPMResource", {"model": MODEL}),
    ]
    assert sandbox_control.instances(MODEL)[0]["releaseTime"] is None

    # -- refresh after a change made outside Pulumi ------------------------------------------
    sandbox_control.update_instance(id_, count=5, release_time="2032-01-01 00:00:00")
    _, read_outs, read_inputs = host.read(id_, outs)
    assert read_outs["purchaseCount"] == 5 and read_outs["tpm"] == 50_000
    assert read_outs["releaseTime"] == "2032-01-01T00:00:00+08:00"
    assert read_inputs["purchaseCount"] == 5 and read_inputs["releaseTime"] == "2032-01-01T00:00:00+08:00"
    # The next `pulumi up` sees the drift and wants to put it back.
    assert host.diff(id_, read_outs, news)["changes"] == "DIFF_SOME"
    sent(sandbox_control)

    # -- delete, and delete again ------------------------------------------------------------
    host.delete(id_, read_outs)
    # Read after write: the release counts once a listing shows the instance stopped.
    assert sent(sandbox_control) == [
        ("ReleaseTPMResource", {"model": MODEL, "instanceId": id_}),
        ("DescribeTPMResource", {"model": MODEL}),
    ]
    assert sandbox_control.instances(MODEL)[0]["status"] == "Stopped"
    host.delete(id_, read_outs)
    again = sent(sandbox_control)
    assert again[0] == ("ReleaseTPMResource", {"model": MODEL, "instanceId": id_})
    assert [a for a, _ in again] == ["ReleaseTPMResource", "DescribeTPMResource"]

    # -- refresh after release: gone -----------------------------------------------------------
    gone_id, _, _ = host.read(id_, read_outs)
    assert gone_id == ""


def test_create_without_release_time_sends_no_release_time(host: ProviderHost, sandbox_control) -> None:
    id_, outs = host.up({"model": "ernie-lite-8k", "purchaseCount": 1})
    purchase = [r["body"] for r in sandbox_control.requests("PurchaseTPMResource")]
    assert purchase == [{"model": "ernie-lite-8k", "billing": {"paymentTiming": "Postpaid"}, "purchaseCount": 1}]
    assert "releaseTime" not in outs and outs["tpm"] == 10_000 and outs["rpm"] == 33


def test_expired_instance_is_dropped_on_refresh(host: ProviderHost, sandbox_control) -> None:
    id_, outs = host.up({"model": MODEL, "purchaseCount": 1, "releaseTime": RELEASE_1})
    sandbox_control.update_instance(id_, status="Stopped")
    assert host.read(id_, outs)[0] == ""


def test_expiry_by_release_time_is_dropped_on_refresh(host: ProviderHost, sandbox_control) -> None:
    id_, outs = host.up({"model": MODEL, "purchaseCount": 1, "releaseTime": RELEASE_1})
    sandbox_control.set_option("clock_offset_seconds", 10 * 365 * 86400)  # the sandbox's clock passes RELEASE_1
    assert host.read(id_, outs)[0] == ""


def test_unknown_instance_is_dropped_on_refresh_in_both_answer_styles(host: ProviderHost, sandbox_control) -> None:
    state = {"model": MODEL, "purchaseCount": 1, "paymentTiming": "Postpaid", "instanceId": "tpm-Nope1234"}
    assert host.read("tpm-Nope1234", state)[0] == ""
    sandbox_control.set_option("unknown_instance", "error")
    assert host.read("tpm-Nope1234", state)[0] == ""


def test_delete_without_a_model_in_state_refuses_rather_than_guessing(host: ProviderHost, sandbox_control) -> None:
    with pytest.raises(HostError) as caught:
        host.delete("tpm-AbCd1234", {"purchaseCount": 1})
    assert "holds no model" in caught.value.last_line
    assert sandbox_control.requests() == []


def test_delete_of_unknown_instance_succeeds(host: ProviderHost, sandbox_control) -> None:
    host.delete("tpm-Nope1234", {"model": MODEL, "purchaseCount": 1})
    requests = [(r["action"], r["body"]) for r in sandbox_control.requests()]
    # Refused, then absent from three consistent listings of its model, then from every other model's.
    assert requests[:4] == [
        ("ReleaseTPMResource", {"model": MODEL, "instanceId": "tpm-Nope1234"}),
        ("DescribeTPMResource", {"model": MODEL}),
        ("DescribeTPMResource", {"model": MODEL}),
        ("DescribeTPMResource", {"model": MODEL}),
    ]
    others = {body["model"] for action, body in requests[4:] if action == "DescribeTPMResource"}
    assert MODEL not in others and len(others) == len(requests[4:]) > 20


def sdk_call(db, action: str, body: dict[str, Any]) -> None:
    """Change an instance the way a script or the console would: the real `qianfan` SDK, in its own
    process (its config is process-wide), against a standalone sandbox on the same database."""
    script = textwrap.dedent(
        f"""
        from qianfan.resources.console.utils import call_action
        call_action("/v2/charge", {action!r}, {body!r})
        """
    )
    with standalone(db, "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY) as url:
        env = child_env(QIANFAN_ACCESS_KEY=ACCESS_KEY, QIANFAN_SECRET_KEY=SECRET_KEY, QIANFAN_CONSOLE_API_BASE_URL=url)
        done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("shape", ["documented", "rich"])
def test_changes_made_outside_pulumi_show_as_drift_in_either_answer_shape(
    host: ProviderHost, sandbox_control, sandbox_db, shape: str
) -> None:
    """Baidu's documented Describe item carries no count and no releaseTime: units come from `tpm`
    and the scheduled release from `expiredTime`. The rich shape carries both directly."""
    sandbox_control.set_option("describe_shape", shape)
    program = {"model": MODEL, "purchaseCount": 4, "releaseTime": RELEASE_1}
    id_, outs = host.up(program)
    assert outs["purchaseCount"] == 4 and outs["releaseTime"] == RELEASE_1 and outs["tpm"] == 40_000

    sdk_call(sandbox_db, "ResizeTPMResource", {"instanceId": id_, "count": 6})
    sdk_call(sandbox_db, "AutoReleaseTPMResource", {"instanceId": id_, "releaseTime": "2032-01-01T00:00:00+08:00"})
    _, read_outs, read_inputs = host.read(id_, outs)
    assert read_outs["purchaseCount"] == 6 and read_outs["tpm"] == 60_000 and read_outs["rpm"] == 198
    assert read_outs["releaseTime"] == read_inputs["releaseTime"] == "2032-01-01T00:00:00+08:00"
    news, _ = host.check(program, olds=read_inputs)
    assert host.diff(id_, read_outs, news)["changes"] == "DIFF_SOME"  # the next `pulumi up` puts it back

    sdk_call(sandbox_db, "AutoReleaseTPMResource", {"instanceId": id_})  # cancelled in the console
    _, read_outs, read_inputs = host.read(id_, read_outs)
    assert "releaseTime" not in read_outs and "releaseTime" not in read_inputs


def test_update_of_an_instance_gone_outside_pulumi_says_refresh(host: ProviderHost, sandbox_control) -> None:
    id_, outs = host.up({"model": MODEL, "purchaseCount": 1})
    sandbox_control.update_instance(id_, status="Stopped")
    news, _ = host.check({"model": MODEL, "purchaseCount": 2})
    with pytest.raises(HostError) as caught:
        host.update(id_, outs, news)
    assert "no longer exists" in caught.value.last_line and "pulumi refresh" in caught.value.last_line


# -- adoption -------------------------------------------------------------------------------------
def test_adopt_resizes_and_sets_release_without_buying(host: ProviderHost, sandbox_control, buy_elsewhere) -> None:
    existing = buy_elsewhere({"model": MODEL, "purchaseCount": 1})
    sandbox_control.clear_requests()
    inputs, failures = host.check(
        {"model": MODEL, "purchaseCount": 3, "releaseTime": RELEASE_1, "adoptInstanceId": existing}
    )
    assert failures == []
    id_, outs = host.create(inputs, name="adopted")
    assert id_ == existing
    assert outs["purchaseCount"] == 3 and outs["releaseTime"] == RELEASE_1 and outs["adoptInstanceId"] == existing
    actions = [r["action"] for r in sandbox_control.requests()]
    assert "PurchaseTPMResource" not in actions
    # Scheduling a release lowers the bill, growing to 3 units raises it: the cheaper change goes first.
    assert actions == ["DescribeTPMResource", "AutoReleaseTPMResource", "ResizeTPMResource", "DescribeTPMResource"]


def test_adopt_cancels_a_scheduled_release_the_inputs_do_not_have(
    host: ProviderHost, sandbox_control, buy_elsewhere
) -> None:
    existing = buy_elsewhere({"model": MODEL, "purchaseCount": 2, "releaseTime": RELEASE_1})
    sandbox_control.clear_requests()
    _, outs = host.up({"model": MODEL, "purchaseCount": 2, "adoptInstanceId": existing}, name="adopted")
    assert "releaseTime" not in outs
    assert [(r["action"], r["body"]) for r in sandbox_control.requests("AutoReleaseTPMResource")] == [
        ("AutoReleaseTPMResource", {"instanceId": existing})
    ]
    assert sandbox_control.requests("ResizeTPMResource") == []


@pytest.mark.parametrize("problem", ["unknown", "other-model", "expired"])
def test_adopt_refuses_what_cannot_be_adopted(host: ProviderHost, sandbox_control, buy_elsewhere, problem: str) -> None:
    existing = buy_elsewhere({"model": MODEL, "purchaseCount": 1})
    target, model = existing, MODEL
    if problem == "unknown":
        target = "tpm-Nope1234"
    elif problem == "other-model":
        model = "ernie-lite-8k"
    else:
        sandbox_control.update_instance(existing, status="Stopped")
    with pytest.raises(HostError) as caught:
        host.up({"model": model, "purchaseCount": 1, "adoptInstanceId": target}, name="adopted")
    assert f"adoptInstanceId {target}" in caught.value.last_line
    assert sandbox_control.requests("PurchaseTPMResource") == []  # nothing bought (the instance came from the console)


def test_missing_credentials_fail_the_first_call_naming_keys_and_env(make_host) -> None:
    host = make_host(config={"qianfan:endpoint": "http://127.0.0.1:9"})
    inputs, failures = host.check({"model": MODEL, "purchaseCount": 1})
    assert failures == []  # preview is unaffected
    with pytest.raises(HostError) as caught:
        host.create(inputs)
    line = caught.value.last_line
    for name in ("qianfan:accessKey", "qianfan:secretKey", "QIANFAN_ACCESS_KEY", "QIANFAN_SECRET_KEY"):
        assert name in line
