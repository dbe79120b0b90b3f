"""Update, refresh and destroy when Qianfan is slow, half-done or not what the state says.

- an update that fails half-way says exactly what it applied, and orders its calls so that the
  change lowering the bill goes first;
- an update confirms only what it changed: drift it did not cause is refresh's business;
- a resize is an order: Describe may show it later (the sandbox's `resize_delay_seconds`);
- one empty Describe answer never drops a live quota from state;
- an instance that belongs to another model than the state says is never resized, never counted
  as released, never dropped.
"""

from __future__ import annotations

import pytest

from hostdriver import HostError, ProviderHost

pytestmark = pytest.mark.slow  # provider hosts of its own per test

MODEL = "ernie-speed-8k"
T1 = "2031-03-04T05:06:07+08:00"
T2 = "2031-06-01T00:00:00+08:00"
FAST = {"qianfan:settleSeconds": "1", "qianfan:timeoutSeconds": "20"}


def actions(sandbox_control) -> list[str]:
    found = [r["action"] for r in sandbox_control.requests() if r["action"] != "DescribeTPMResource"]
    sandbox_control.clear_requests()
    return found


def update(host: ProviderHost, id_: str, outs: dict, program: dict) -> dict:
    news, failures = host.check(program, olds={k: v for k, v in outs.items() if k in program or k == "model"})
    assert failures == []
    return host.update(id_, outs, news)


# -- half-way -------------------------------------------------------------------------------------
@pytest.mark.parametrize("fault, status", [("error", 400), ("error", 503)])
def test_an_update_that_fails_half_way_says_what_it_applied(
    make_host, sandbox_control, fault: str, status: int
) -> None:
    id_, outs = make_host(**FAST).up({"model": MODEL, "purchaseCount": 2, "releaseTime": T1})
    host = make_host(**{**FAST, "qianfan:timeoutSeconds": "4"})  # the next `pulumi up`, a short deadline
    sandbox_control.add_fault("AutoReleaseTPMResource", fault, count=100, status=status)
    with pytest.raises(HostError) as caught:
        update(host, id_, outs, {"model": MODEL, "purchaseCount": 4, "releaseTime": T2})
    line = caught.value.last_line
    assert "ResizeTPMResource to 4 unit(s) was applied" in line, line
    assert (
        f"AutoReleaseTPMResource failed: HTTP {status}" in line and "Run `pulumi refresh` before anything else" in line
    )
    row = sandbox_control.instances()[0]
    assert row["count"] == 4 and row["releaseTime"] == T1  # what Qianfan bills now, as the message says


@pytest.mark.parametrize(
    "before, after, order",
    [
        # Fewer units lower the bill, cancelling the release raises it: resize first.
        (
            {"purchaseCount": 4, "releaseTime": T1},
            {"purchaseCount": 2},
            ["ResizeTPMResource", "AutoReleaseTPMResource"],
        ),
        # More units raise it, an earlier release lowers it: the release first.
        (
            {"purchaseCount": 2, "releaseTime": T2},
            {"purchaseCount": 4, "releaseTime": T1},
            ["AutoReleaseTPMResource", "ResizeTPMResource"],
        ),
        # A release where there was none lowers it.
        (
            {"purchaseCount": 2},
            {"purchaseCount": 3, "releaseTime": T1},
            ["AutoReleaseTPMResource", "ResizeTPMResource"],
        ),
    ],
)
def test_the_change_that_lowers_the_bill_goes_first(
    make_host, sandbox_control, before: dict, after: dict, order: list
) -> None:
    host = make_host(**FAST)
    id_, outs = host.up({"model": MODEL, **before})
    sandbox_control.clear_requests()
    update(host, id_, outs, {"model": MODEL, **after})
    assert actions(sandbox_control) == order


def test_a_count_only_update_ignores_a_release_cancelled_outside_pulumi(host: ProviderHost, sandbox_control) -> None:
    """It sends no AutoRelease, so it does not fail on one: the drift shows up in its outputs and the
    next plan, which is refresh's and the next `pulumi up`'s business."""
    id_, outs = host.up({"model": MODEL, "purchaseCount": 1, "releaseTime": T1})
    sandbox_control.update_instance(id_, release_time=None)  # cancelled in the console, not yet refreshed
    sandbox_control.clear_requests()
    outs = update(host, id_, outs, {"model": MODEL, "purchaseCount": 2, "releaseTime": T1})
    assert actions(sandbox_control) == ["ResizeTPMResource"]
    assert outs["purchaseCount"] == 2 and "releaseTime" not in outs  # what Qianfan has, recorded


# -- resize as an order -------------------------------------------------------------------------------
def test_a_resize_order_shown_within_the_settle_time_succeeds(make_host, sandbox_control) -> None:
    host = make_host(**{"qianfan:settleSeconds": "4", "qianfan:timeoutSeconds": "20"})
    id_, outs = host.up({"model": MODEL, "purchaseCount": 1})
    sandbox_control.set_option("resize_delay_seconds", 1.5)
    outs = update(host, id_, outs, {"model": MODEL, "purchaseCount": 3})
    assert outs["purchaseCount"] == 3 and outs["tpm"] == 30_000


def test_a_resize_order_slower_than_the_settle_time_is_reported_not_recorded(make_host, sandbox_control) -> None:
    host = make_host(**{"qianfan:settleSeconds": "1", "qianfan:timeoutSeconds": "20"})
    id_, outs = host.up({"model": MODEL, "purchaseCount": 1})
    sandbox_control.set_option("resize_delay_seconds", 30)
    with pytest.raises(HostError) as caught:
        update(host, id_, outs, {"model": MODEL, "purchaseCount": 3})
    line = caught.value.last_line
    assert (
        "accepted the change" in line and "ResizeTPMResource asked for 3 units, DescribeTPMResource reports 1" in line
    )
    assert "Nothing was recorded as done" in line


# -- absences -------------------------------------------------------------------------------------------
def test_empty_answers_never_drop_a_live_quota(make_host, sandbox_control) -> None:
    settings = {"qianfan:listingMaxAgeSeconds": "0", "qianfan:timeoutSeconds": "10"}  # each look its own Describe
    host = make_host(**settings)
    id_, outs = host.up({"model": MODEL, "purchaseCount": 1})
    sandbox_control.add_fault("DescribeTPMResource", "empty")  # a lagging replica, once
    read_id, read_outs, _ = host.read(id_, outs)
    assert read_id == id_ and read_outs["purchaseCount"] == 1
    sandbox_control.add_fault("DescribeTPMResource", "empty", count=3)  # three times: this host saw it live, so
    assert host.read(id_, outs)[0] == id_  # those answers lag; a fresh look finds it
    # Empty answers without end: still a lagging replica to this host, however many come; it says
    # so rather than drop a quota it saw live (a model's only instance, released outside and hidden
    # by Qianfan, looks the same: it is dropped by the next run, below).
    sandbox_control.add_fault("DescribeTPMResource", "empty", count=1_000)
    with pytest.raises(HostError) as caught:
        host.read(id_, outs)
    line = caught.value.last_line
    assert f"could not tell whether TPM quota {id_} still exists" in line and "listed live before" in line, line
    # A later run's host never saw it live: consistent listings that lack it are believed.
    assert make_host(**settings).read(id_, outs)[0] == ""


# -- another model than the state says -------------------------------------------------------------------
def edited(outs: dict, model: str) -> dict:
    return {**outs, "model": model}


def test_destroy_of_an_instance_of_another_model_fails_and_releases_nothing(
    host: ProviderHost, sandbox_control
) -> None:
    id_, outs = host.up({"model": MODEL, "purchaseCount": 1})
    with pytest.raises(HostError) as caught:
        host.delete(id_, edited(outs, "ernie-lite-8k"))
    line = caught.value.last_line
    assert f"{id_} belongs to model {MODEL}, not ernie-lite-8k" in line and "Nothing was released" in line
    assert sandbox_control.instances()[0]["status"] != "Stopped"


def test_update_of_an_instance_of_another_model_touches_nothing(host: ProviderHost, sandbox_control) -> None:
    id_, outs = host.up({"model": MODEL, "purchaseCount": 1})
    sandbox_control.clear_requests()
    with pytest.raises(HostError) as caught:
        update(host, id_, edited(outs, "ernie-lite-8k"), {"model": "ernie-lite-8k", "purchaseCount": 3})
    assert f"{id_} belongs to model {MODEL}, not ernie-lite-8k" in caught.value.last_line
    assert actions(sandbox_control) == [] and sandbox_control.instances()[0]["count"] == 1


def test_refresh_of_an_instance_of_another_model_keeps_it_and_says_so(host: ProviderHost, sandbox_control) -> None:
    id_, outs = host.up({"model": MODEL, "purchaseCount": 1})
    with pytest.raises(HostError) as caught:
        host.read(id_, edited(outs, "ernie-lite-8k"))
    assert f"{id_} belongs to model {MODEL}" in caught.value.last_line


# -- adoption within one run -------------------------------------------------------------------------------
def test_one_run_never_gives_one_instance_to_two_resources(host: ProviderHost, sandbox_control, buy_elsewhere) -> None:
    bought, _ = host.up({"model": MODEL, "purchaseCount": 1}, name="bought")
    with pytest.raises(HostError) as caught:
        host.up({"model": MODEL, "purchaseCount": 1, "adoptInstanceId": bought}, name="adopter")
    assert "TPMQuota 'bought' of stack dev already holds this instance" in caught.value.last_line
    other = buy_elsewhere({"model": MODEL, "purchaseCount": 1})
    host.up({"model": MODEL, "purchaseCount": 1, "adoptInstanceId": other}, name="first")
    with pytest.raises(HostError) as caught:
        host.up({"model": MODEL, "purchaseCount": 1, "adoptInstanceId": other}, name="second")
    assert "TPMQuota 'first' of stack dev already holds this instance" in caught.value.last_line
    assert sandbox_control.requests("ResizeTPMResource") == []
