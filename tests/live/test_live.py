"""Live acceptance test against the real Qianfan. IT SPENDS MONEY.

Skipped unless QIANFAN_LIVE_TEST=1, QIANFAN_ACCESS_KEY, QIANFAN_SECRET_KEY and QIANFAN_LIVE_MODEL are
set. Prints the endpoint it calls (QIANFAN_CONSOLE_API_BASE_URL, else Baidu's), then buys 1 unit of
QIANFAN_LIVE_MODEL with a releaseTime about an hour ahead (a dead-man switch if the test dies),
resizes it to 2, moves and then cancels the release, releases it and checks that it is gone. Run it
alone:

    QIANFAN_LIVE_TEST=1 QIANFAN_LIVE_MODEL=ernie-speed-8k QIANFAN_ACCESS_KEY=... QIANFAN_SECRET_KEY=... \
        venv/bin/python -m pytest tests/live/test_live.py -m live -s

tests/live/test_rehearsal.py runs this very test against a local sandbox, which costs nothing.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hostdriver import HostError, ProviderHost
from providers.release_time import format_release_time
from providers.settings import DEFAULT_ENDPOINT, load_settings

REQUIRED = ("QIANFAN_ACCESS_KEY", "QIANFAN_SECRET_KEY", "QIANFAN_LIVE_MODEL")
pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        os.environ.get("QIANFAN_LIVE_TEST") != "1" or not all(os.environ.get(k) for k in REQUIRED),
        reason="live test: spends money; set QIANFAN_LIVE_TEST=1 and " + ", ".join(REQUIRED),
    ),
]
#: The stack config the host is given; the rest comes from the environment, as in a real stack.
CONFIG = {"qianfan:settleSeconds": "120"}


def test_live_lifecycle_against_real_qianfan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = os.environ["QIANFAN_LIVE_MODEL"]
    env = {
        k: os.environ[k]
        for k in ("QIANFAN_ACCESS_KEY", "QIANFAN_SECRET_KEY", "QIANFAN_CONSOLE_API_BASE_URL")
        if k in os.environ
    }
    # Resolved as the provider resolves it, from the same config and environment, before anything is bought.
    endpoint = load_settings(CONFIG, env).endpoint
    where = f"{endpoint} (Baidu's console API)" if endpoint == DEFAULT_ENDPOINT else endpoint
    with capsys.disabled():
        print(f"\n*** LIVE TEST: calling {where} ***")
        print(f"*** buying 1 unit of {model} TPM quota there. THIS SPENDS MONEY. ***")
    host = ProviderHost(tmp_path / "host.stderr", env=env)
    now = datetime.now(UTC)
    in_one_hour = format_release_time(now + timedelta(hours=1))
    in_two_hours = format_release_time(now + timedelta(hours=2))
    id_ = None
    outs: dict = {}
    try:
        host.configure(CONFIG)
        id_, outs = host.up({"model": model, "purchaseCount": 1, "releaseTime": in_one_hour})
        with capsys.disabled():
            print(f"*** bought {id_}; it releases itself at {in_one_hour} if this test dies ***")
        assert outs["purchaseCount"] == 1 and outs["tpm"] == 10_000

        for desired in (
            {"purchaseCount": 2, "releaseTime": in_one_hour},  # resize
            {"purchaseCount": 2, "releaseTime": in_two_hours},  # move the release
            {"purchaseCount": 2},  # cancel the release
        ):
            news, failures = host.check({"model": model, **desired})
            assert failures == []
            outs = host.update(id_, outs, news)
            assert outs["purchaseCount"] == 2 and outs.get("releaseTime") == desired.get("releaseTime")

        read_id, read_outs, _ = host.read(id_, outs)
        assert read_id == id_ and read_outs["purchaseCount"] == 2

        host.delete(id_, read_outs)
        released = id_
        id_ = None
        assert host.read(released, read_outs)[0] == "", "the released quota must be gone on refresh"
    finally:
        if id_ is not None:
            try:
                host.delete(id_, outs)
            except HostError as err:
                with capsys.disabled():
                    print(f"*** COULD NOT RELEASE {id_}: {err.last_line} — release it in the console ***")
        host.close()
        texts = {f"answer #{i}": t for i, t in enumerate(host.transcript)}
        texts["stderr"] = host.stderr_text()
        for label, secret in (
            ("access key", os.environ["QIANFAN_ACCESS_KEY"]),
            ("secret key", os.environ["QIANFAN_SECRET_KEY"]),
        ):
            for where, text in texts.items():
                assert secret not in text, f"the {label} leaked into {where}"
