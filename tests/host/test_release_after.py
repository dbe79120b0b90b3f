"""`releaseAfter` through Pulumi's provider host, against the embedded sandbox: the instant is
fixed when the purchase is sent, stored as the `releaseTime` output, and left alone by later runs
until the duration changes (docs/resources/tpm_quota.md, "Release rules").

Moments are read on this machine's clock around each call and compared with what the sandbox
stored, within the call's own duration plus the one second the instant is rounded up by.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from hostdriver import UNKNOWN, ProviderHost

pytestmark = pytest.mark.slow  # provider hosts of its own per test

MODEL = "ernie-speed-8k"
HOUR = 3600.0
BEIJING = timezone(timedelta(hours=8))
LATER = "2031-03-04T05:06:07+08:00"


def epoch(text: str) -> float:
    """A stored release (RFC3339 with offset) as epoch seconds; parsed here, not by providers/."""
    return datetime.fromisoformat(text).timestamp()


def assert_released_after(text: str | None, begun: float, ended: float, seconds: float) -> None:
    """`text` is a moment between `begun` and `ended` (plus the rounding up), `seconds` on."""
    assert text is not None and text.endswith("+08:00"), text
    moment = epoch(text)
    assert begun + seconds - 1 <= moment <= ended + seconds + 1, (text, begun, ended)


def releases_sent(sandbox_control) -> list[tuple[str, dict[str, Any]]]:
    """(action, body) of the purchases and release changes since the last call, then forget them."""
    sent = [
        (r["action"], r["body"])
        for r in sandbox_control.requests()
        if r["action"] in ("PurchaseTPMResource", "AutoReleaseTPMResource", "ResizeTPMResource")
    ]
    sandbox_control.clear_requests()
    return sent


def up(host: ProviderHost, program: dict[str, Any], name: str = "q") -> tuple[str, dict, dict, float, float]:
    """Check then Create: (id, checked inputs, outputs, moment before, moment after)."""
    inputs, failures = host.check(program, name=name)
    assert failures == []
    begun = time.time()
    id_, outs = host.create(inputs, name=name)
    return id_, inputs, outs, begun, time.time()


def next_up(host: ProviderHost, id_: str, state_inputs: dict, outs: dict, program: dict) -> tuple[dict, dict]:
    """A later `pulumi up`'s Check (against the stored inputs) and Diff (against the outputs)."""
    news, failures = host.check(program, olds=state_inputs)
    assert failures == []
    return news, host.diff(id_, outs, news)


def test_create_sends_the_instant_and_later_ups_show_no_diff(host: ProviderHost, sandbox_control) -> None:
    program = {"model": MODEL, "purchaseCount": 1, "releaseAfter": "480m"}
    id_, inputs, outs, begun, ended = up(host, program)
    assert inputs["releaseAfter"] == "8h" and "releaseTime" not in inputs  # the input, normalised
    [(action, body)] = releases_sent(sandbox_control)
    assert action == "PurchaseTPMResource" and body["billing"]["paymentTiming"] == "Postpaid"
    sent = body["billing"]["releaseTime"]
    assert_released_after(sent, begun, ended, 8 * HOUR)
    [row] = sandbox_control.instances(MODEL)
    assert row["instanceId"] == id_ and row["releaseTime"] == sent
    assert outs["releaseTime"] == sent and outs["releaseAfter"] == "8h"  # the instant is an output

    # The next `pulumi up`, a minute or a month later: nothing to do, nothing sent.
    for _ in range(2):
        news, diff = next_up(host, id_, inputs, outs, program)
        assert news == inputs
        assert diff == {"changes": "DIFF_NONE", "replaces": [], "deleteBeforeReplace": False}
    assert sandbox_control.requests() == []  # Check and Diff call no API


@pytest.mark.parametrize("shape", ["documented", "rich"])
def test_refresh_keeps_release_after_as_the_input_and_shows_the_servers_release(
    host: ProviderHost, sandbox_control, shape: str
) -> None:
    sandbox_control.set_option("describe_shape", shape)
    program = {"model": MODEL, "purchaseCount": 1, "releaseAfter": "1d"}
    id_, inputs, outs, _, _ = up(host, program)
    read_id, read_outs, read_inputs = host.read(id_, outs)
    assert read_id == id_
    assert read_outs["releaseTime"] == outs["releaseTime"] and read_outs["releaseAfter"] == "1d"
    assert read_inputs == {**inputs, "__provider": host.blob}  # releaseTime is no input
    assert next_up(host, id_, read_inputs, read_outs, program)[1]["changes"] == "DIFF_NONE"

    # Moved in the console: the output shows it, and the next `up` leaves it (the duration is the same).
    sandbox_control.update_instance(id_, release_time=LATER)
    _, read_outs, read_inputs = host.read(id_, read_outs)
    assert read_outs["releaseTime"] == LATER and "releaseTime" not in read_inputs
    assert next_up(host, id_, read_inputs, read_outs, program)[1]["changes"] == "DIFF_NONE"

    # Cancelled in the console: no release in the outputs, still no diff, and a warning that it bills.
    sandbox_control.update_instance(id_, release_time=None)
    _, read_outs, read_inputs = host.read(id_, read_outs)
    assert "releaseTime" not in read_outs and read_outs["releaseAfter"] == "1d"
    assert next_up(host, id_, read_inputs, read_outs, program)[1]["changes"] == "DIFF_NONE"
    assert (
        f"warning: TPM quota {id_} ({MODEL}) has releaseAfter 1d, but Qianfan shows no scheduled release (cancelled "
        "outside Pulumi): it is billed until released." in host.stderr_text()
    )


def test_a_changed_duration_moves_the_release_to_now_plus_the_new_one_in_place(
    host: ProviderHost, sandbox_control
) -> None:
    id_, inputs, outs, _, _ = up(host, {"model": MODEL, "purchaseCount": 1, "releaseAfter": "8h"})
    releases_sent(sandbox_control)
    program = {"model": MODEL, "purchaseCount": 1, "releaseAfter": "3d"}
    news, diff = next_up(host, id_, inputs, outs, program)
    assert diff == {"changes": "DIFF_SOME", "replaces": [], "deleteBeforeReplace": False}
    begun = time.time()
    outs = host.update(id_, outs, news)
    ended = time.time()
    [(action, body)] = releases_sent(sandbox_control)
    assert action == "AutoReleaseTPMResource" and body["instanceId"] == id_
    assert_released_after(body["releaseTime"], begun, ended, 72 * HOUR)
    assert outs["releaseTime"] == body["releaseTime"] == sandbox_control.instances(MODEL)[0]["releaseTime"]
    assert outs["releaseAfter"] == "3d"
    assert next_up(host, id_, news, outs, program)[1]["changes"] == "DIFF_NONE"


def test_a_count_change_keeps_the_instant_even_one_moved_in_the_console(host: ProviderHost, sandbox_control) -> None:
    """The duration did not change, so the release stays where it is: no AutoRelease is sent."""
    id_, inputs, outs, _, _ = up(host, {"model": MODEL, "purchaseCount": 1, "releaseAfter": "8h"})
    sandbox_control.update_instance(id_, release_time=LATER)
    _, outs, inputs = host.read(id_, outs)
    releases_sent(sandbox_control)
    news, diff = next_up(host, id_, inputs, outs, {"model": MODEL, "purchaseCount": 2, "releaseAfter": "8h"})
    assert diff["changes"] == "DIFF_SOME"
    updated = host.update(id_, outs, news)
    assert releases_sent(sandbox_control) == [("ResizeTPMResource", {"instanceId": id_, "count": 2})]
    assert updated["releaseTime"] == LATER and updated["purchaseCount"] == 2 and updated["releaseAfter"] == "8h"


def test_switching_to_a_fixed_time_to_none_and_back_is_in_place(host: ProviderHost, sandbox_control) -> None:
    id_, inputs, outs, _, _ = up(host, {"model": MODEL, "purchaseCount": 1, "releaseAfter": "8h"})
    releases_sent(sandbox_control)
    steps: list[tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]] = [
        # The very instant already scheduled, now fixed: a diff (the input changed), nothing sent.
        ({"releaseTime": outs["releaseTime"]}, []),
        ({"releaseTime": LATER}, [("AutoReleaseTPMResource", {"instanceId": id_, "releaseTime": LATER})]),
        ({}, [("AutoReleaseTPMResource", {"instanceId": id_})]),  # neither: cancelled
    ]
    for release, expected in steps:
        program = {"model": MODEL, "purchaseCount": 1, **release}
        news, diff = next_up(host, id_, inputs, outs, program)
        assert diff == {"changes": "DIFF_SOME", "replaces": [], "deleteBeforeReplace": False}, release
        outs = host.update(id_, outs, news)
        assert releases_sent(sandbox_control) == expected, release
        assert outs.get("releaseTime") == release.get("releaseTime") and "releaseAfter" not in outs
        inputs = news
    news, _ = next_up(host, id_, inputs, outs, {"model": MODEL, "purchaseCount": 1, "releaseAfter": "2h"})
    begun = time.time()
    outs = host.update(id_, outs, news)
    [(_, body)] = releases_sent(sandbox_control)
    assert_released_after(body["releaseTime"], begun, time.time(), 2 * HOUR)
    assert outs["releaseTime"] == body["releaseTime"] and outs["releaseAfter"] == "2h"


def test_adoption_counts_from_the_adoption(host: ProviderHost, sandbox_control, buy_elsewhere) -> None:
    existing = buy_elsewhere({"model": MODEL, "purchaseCount": 1, "releaseTime": LATER})
    sandbox_control.clear_requests()
    id_, inputs, outs, begun, ended = up(
        host, {"model": MODEL, "purchaseCount": 1, "releaseAfter": "12h", "adoptInstanceId": existing}, name="adopted"
    )
    assert id_ == existing
    [(action, body)] = releases_sent(sandbox_control)
    assert action == "AutoReleaseTPMResource"
    assert_released_after(body["releaseTime"], begun, ended, 12 * HOUR)
    assert outs["releaseTime"] == body["releaseTime"] and outs["releaseAfter"] == "12h"
    assert next_up(host, id_, inputs, outs, {k: v for k, v in inputs.items() if k != "__provider"})[1]["changes"] == (
        "DIFF_NONE"
    )


def test_a_replacement_buys_with_its_own_instant(host: ProviderHost, sandbox_control) -> None:
    id_, inputs, outs, _, _ = up(host, {"model": MODEL, "purchaseCount": 1, "releaseAfter": "8h"})
    program = {"model": "ernie-lite-8k", "purchaseCount": 1, "releaseAfter": "8h"}
    news, diff = next_up(host, id_, inputs, outs, program)
    assert diff["changes"] == "DIFF_SOME" and diff["replaces"] == ["model"]
    time.sleep(1.1)  # the new instant is a whole second later at least
    sandbox_control.clear_requests()
    begun = time.time()
    new_id, new_outs = host.create(news, name="q")
    [(action, body)] = releases_sent(sandbox_control)
    assert action == "PurchaseTPMResource" and new_id != id_
    assert_released_after(body["billing"]["releaseTime"], begun, time.time(), 8 * HOUR)
    assert new_outs["releaseTime"] == body["billing"]["releaseTime"] != outs["releaseTime"]


def test_check_refuses_both_and_bad_durations_and_lets_unknowns_pass(host: ProviderHost, sandbox_control) -> None:
    base = {"model": MODEL, "purchaseCount": 1}
    _, failures = host.check({**base, "releaseAfter": "8h", "releaseTime": LATER})
    assert failures == [
        (
            "releaseAfter",
            "cannot be set together with releaseTime: releaseTime is one fixed moment, releaseAfter a duration after "
            "the purchase; keep one of them",
        )
    ]
    _, failures = host.check({**base, "releaseAfter": 8})
    assert failures == [
        (
            "releaseAfter",
            "must be a duration as text, whole days, hours and minutes, largest unit first, such as 8h, 1h30m, 90m or "
            "2d, got 8",
        )
    ]
    inputs, failures = host.check({**base, "releaseAfter": UNKNOWN, "releaseTime": LATER})
    assert failures == [] and inputs["releaseAfter"] == UNKNOWN
    assert sandbox_control.requests() == []
