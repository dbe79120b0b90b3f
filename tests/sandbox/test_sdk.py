"""The real `qianfan` SDK against the standalone sandbox (`python -m qianfan_sandbox`).

Both run as child processes: the SDK reads its endpoint and keys from the environment and
keeps a process-wide config singleton, which must not leak into other tests.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hostdriver import PROJECT_ROOT
from qianfan_sandbox import SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY, SandboxControl
from tests.support.standalone import child_env, standalone

pytestmark = pytest.mark.slow  # a standalone sandbox and the SDK in child processes

CHILD_TIMEOUT = 60


@pytest.fixture
def server(served_db: Path) -> Iterator[str]:
    with standalone(served_db, "--creating-seconds", "0", "--extra-models", "sdk-test-model, other-model") as url:
        yield url


def run_sdk(url: str, script: str, access_key: str = SANDBOX_ACCESS_KEY, secret_key: str = SANDBOX_SECRET_KEY) -> Any:
    """Run `script` with the SDK configured for the sandbox; it prints one JSON value last."""
    env = child_env(QIANFAN_ACCESS_KEY=access_key, QIANFAN_SECRET_KEY=secret_key, QIANFAN_CONSOLE_API_BASE_URL=url)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_sdk_purchase_describe_resize_auto_release_release(server: str, served_db: Path) -> None:
    result = run_sdk(
        server,
        """
        import json
        from qianfan.resources.console.utils import call_action
        from qianfan.resources.console.charge import Charge

        bought = call_action("/v2/charge", "PurchaseTPMResource", {
            "model": "ernie-3.5-8k",
            "billing": {"paymentTiming": "Postpaid", "releaseTime": "2030-01-25 12:30:30"},
            "purchaseCount": 2,
        })
        instance_id = bought.body["result"]["instanceId"]
        listed = call_action("/v2/charge", "DescribeTPMResource", {"model": "ernie-3.5-8k"})
        resized = Charge.resize_tpm_resource(instance_id=instance_id, count=3)
        cancelled = Charge.auto_release_tpm_resource(instance_id=instance_id, release_time=None)
        after = Charge.tpm_credit_info(model="ernie-3.5-8k", instance_id=instance_id)
        custom = Charge.charge_tpm_credit(
            model="sdk-test-model", purchase_count=1, billing={"paymentTiming": "Postpaid"})
        released = Charge.stop_tpm_credit_charging(model="ernie-3.5-8k", instance_id=instance_id)
        final = Charge.tpm_credit_info(model="ernie-3.5-8k")
        print(json.dumps({
            "code": bought.code,
            "request_id_header": bought.headers.get("X-Bce-Request-Id"),
            "request_id": bought.body["requestId"],
            "instance_id": instance_id,
            "listed": listed.body["result"]["instances"],
            "resized": resized.body["result"],
            "cancelled": cancelled.body["result"],
            "after": after.body["result"]["instances"],
            "custom": custom.body["result"]["instanceId"],
            "released": released.body["result"],
            "final": final.body["result"]["instances"],
        }))
    """,
    )
    assert result["code"] == 200
    assert result["request_id_header"] == result["request_id"]
    instance_id = result["instance_id"]
    assert re.fullmatch(r"tpm-[A-Za-z0-9]{8}", instance_id)
    [listed] = result["listed"]
    assert set(listed) == {"instanceId", "paymentTiming", "rpm", "tpm", "status", "startTime", "expiredTime"}
    assert (listed["instanceId"], listed["tpm"], listed["rpm"], listed["status"]) == (instance_id, 20000, 66, "Running")
    assert listed["expiredTime"] == "2030-01-25T04:30:30Z"
    assert result["resized"] is True and result["cancelled"] is True and result["released"] is True
    [after] = result["after"]
    assert (after["tpm"], after["expiredTime"], after["status"]) == (30000, "-", "Running")
    assert [i["status"] for i in result["final"]] == ["Stopped"]
    rows = {row["instanceId"]: row for row in SandboxControl(served_db).instances()}
    assert rows[instance_id]["released"] is True and rows[instance_id]["count"] == 3
    assert rows[result["custom"]]["model"] == "sdk-test-model"
    assert [r["action"] for r in SandboxControl(served_db).requests()] == [
        "PurchaseTPMResource",
        "DescribeTPMResource",
        "ResizeTPMResource",
        "AutoReleaseTPMResource",
        "DescribeTPMResource",
        "PurchaseTPMResource",
        "ReleaseTPMResource",
        "DescribeTPMResource",
    ]


REFUSED_PURCHASE = """
    import json
    import qianfan.errors
    from qianfan.resources.console.utils import call_action

    try:
        call_action("/v2/charge", "PurchaseTPMResource", {
            "model": "ernie-3.5-8k", "billing": {"paymentTiming": "Postpaid"}, "purchaseCount": 1})
    except qianfan.errors.RequestError as exc:
        print(json.dumps({"status": exc.status_code,
                          "code": exc.headers.get("X-Bce-Error-Code"),
                          "explained": "可能的原因" in str(exc),
                          "blames": "Secret Key" if "Secret Key(" in str(exc) else
                                    "Access Key" if "Access Key(" in str(exc) else None}))
    else:
        print(json.dumps(None))
"""


@pytest.mark.parametrize(
    ("access_key", "secret_key", "status", "code", "blames"),
    [
        (SANDBOX_ACCESS_KEY, "definitely-wrong", 400, "SignatureDoesNotMatch", "Secret Key"),
        ("unknown-access-key", SANDBOX_SECRET_KEY, 403, "InvalidAccessKeyId", "Access Key"),
    ],
)
def test_sdk_explains_refused_keys(
    server: str, served_db: Path, access_key: str, secret_key: str, status: int, code: str, blames: str
) -> None:
    result = run_sdk(server, REFUSED_PURCHASE, access_key=access_key, secret_key=secret_key)
    assert result is not None, "the purchase was accepted with wrong keys"
    # The SDK recognises Baidu's exact messages and names the key to check.
    assert result == {"status": status, "code": code, "explained": True, "blames": blames}
    assert SandboxControl(served_db).instances() == []
    assert SandboxControl(served_db).requests() == []  # refused requests are not journaled


def test_sdk_sees_invalid_parameter_as_a_request_error(server: str) -> None:
    result = run_sdk(
        server,
        """
        import json
        import qianfan.errors
        from qianfan.resources.console.charge import Charge

        try:
            Charge.charge_tpm_credit(model="ernie-9000", purchase_count=1, billing={"paymentTiming": "Postpaid"})
        except qianfan.errors.RequestError as exc:
            print(json.dumps({"status": exc.status_code, "body": "InvalidParameter" in str(exc)}))
        """,
    )
    assert result == {"status": 400, "body": True}


def test_sdk_reads_marker_pages_and_sees_disagreeing_answers(server: str, served_db: Path) -> None:
    control = SandboxControl(served_db)
    control.set_option("page_size", 2)
    control.set_option("retired_models", "ernie-4.0-8k")
    control.set_option("clock_offset_seconds", -7200)
    bought = [control.add_instance("ernie-speed-8k", 1) for _ in range(5)]
    control.add_fault("ReleaseTPMResource", "false_result")
    control.add_fault("DescribeTPMResource", "duplicate")
    result = run_sdk(
        server,
        """
        import json, time
        from email.utils import parsedate_to_datetime
        import qianfan.errors
        from qianfan.resources.console.utils import call_action
        from qianfan.resources.console.charge import Charge

        duplicated = call_action("/v2/charge", "DescribeTPMResource", {"model": "ernie-speed-8k"}).body["result"]
        pages, marker = [], None
        while len(pages) < 10:
            body = {"model": "ernie-speed-8k", **({"marker": marker} if marker else {})}
            answer = call_action("/v2/charge", "DescribeTPMResource", body)
            pages.append(answer.body["result"])
            if not pages[-1]["isTruncated"]:
                break
            marker = pages[-1]["nextMarker"]
        skew = parsedate_to_datetime(answer.headers["Date"]).timestamp() - time.time()
        first = pages[0]["instances"][0]["instanceId"]
        released = Charge.stop_tpm_credit_charging(model="ernie-speed-8k", instance_id=first)
        try:
            Charge.tpm_credit_info(model="ernie-4.0-8k")
            retired = None
        except qianfan.errors.RequestError as exc:
            retired = [exc.status_code, "InvalidParameter" in str(exc)]
        print(json.dumps({
            "duplicated": [i["instanceId"] for i in duplicated["instances"]],
            "pages": [[i["instanceId"] for i in page["instances"]] for page in pages],
            "truncated": [page["isTruncated"] for page in pages],
            "skew": skew,
            "released": released.body["result"],
            "retired": retired,
        }))
        """,
    )
    assert result["duplicated"] == [bought[0], bought[1], bought[0]]
    assert result["pages"] == [bought[:2], bought[2:4], bought[4:]]
    assert result["truncated"] == [True, True, False]
    assert abs(result["skew"] + 7200) <= 5  # the server's Date is on the sandbox clock
    assert result["released"] is False
    assert result["retired"] == [400, True]
    assert [row["status"] for row in control.instances()] == ["Running"] * 5
