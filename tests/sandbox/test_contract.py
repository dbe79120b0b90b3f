"""Contract: the sandbox's default answers have exactly the shape Baidu's own answers have.

The expected answers below are literal JSON copied from Baidu, never produced by the sandbox:
- the seed (Baidu's PurchaseTPMResource page, /work/shared/seeds/purchase-tpm-resource.zh.txt),
  "返回示例": two Purchase answers;
- Baidu's SDK mock server (github.com/baidubce/bce-qianfan-sdk,
  python/qianfan/tests/utils/mock_server.py, route /v2/charge): Purchase, Describe, Release;
- Baidu Cloud's error format (e.g. cloud.baidu.com/doc/BCC/s/Ojwvyo6nc, "错误返回"): its example.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from qianfan_sandbox import SandboxControl
from tests.support.sandbox_http import MODEL, Client, purchase_body

pytestmark = pytest.mark.slow  # a sandbox server per test

SEED_PURCHASE_ANSWERS = [
    json.loads('{"requestId": "3684ca27-4880-4b9f-a3cc-0d3d20431b99", "result": {"instanceId": "tpm-Vlxxxx3F"}}'),
    json.loads('{"requestId":"1bef3f87-c5b2-4419-936b-50f9884f10d4","result":{"instanceId":"44961088f5xxxxx79f5daf"}}'),
]
MOCK_PURCHASE_ANSWER = json.loads(
    '{"requestId": "1bef3f87-c5b2-4419-936b-50f9884f10d4", "result": {"instanceId": "44961088f5xxxxx79f5daf"}}'
)
MOCK_DESCRIBE_ANSWER = json.loads(
    """{"requestId": "1bef3f87-c5b2-4419-936b-50f9884f10d4",
        "result": {"instances": [{"instanceId": "a0085162fxxxx0ad19e58e", "paymentTiming": "Postpaid",
                                  "rpm": 33, "tpm": 10000, "status": "Running",
                                  "startTime": "2024-02-26T10:00:00Z", "expiredTime": "-"}]}}"""
)
MOCK_RELEASE_ANSWER = json.loads('{"requestId": "1bef3f87-c5b2-4419-936b-50f9884f10d4", "result": true}')
BAIDU_ERROR_EXAMPLE = json.loads(
    '{"requestId" : "ae2225f7-1c2e-427a-a1ad-5413b762957d", "code" : "NoSuchKey",'
    ' "message" : "The resource you requested does not exist"}'
)
#: The id on Baidu's DescribeTPMResource page; its `x`s redact characters.
DESCRIBE_PAGE_INSTANCE_ID = "a0085162fxxxx0a49d19e58e"


def shape(value: Any) -> Any:
    """Keys and JSON types, recursively; a list by the shape of its first item."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def spelling(example: str, hexadecimal: bool = False) -> re.Pattern[str]:
    """A pattern for strings spelled like `example`: each digit (or hex digit) stands for any."""
    if hexadecimal:
        return re.compile(re.sub(r"[0-9a-f]", "[0-9a-f]", re.escape(example)))
    return re.compile(re.sub(r"\d", r"\\d", re.escape(example)))


@pytest.fixture
def running_now(served_control: SandboxControl) -> SandboxControl:
    served_control.set_option("creating_seconds", 0)  # the mock's instance is Running
    return served_control


def test_purchase_answer_has_the_documented_shape(client: Client) -> None:
    answer = client.call("PurchaseTPMResource", purchase_body()).json()
    for documented in (*SEED_PURCHASE_ANSWERS, MOCK_PURCHASE_ANSWER):
        assert shape(answer) == shape(documented)
        assert spelling(documented["requestId"], hexadecimal=True).fullmatch(answer["requestId"])
    # The default id is spelled like the seed's first example.
    seed_id = SEED_PURCHASE_ANSWERS[0]["result"]["instanceId"]
    assert len(answer["result"]["instanceId"]) == len(seed_id)
    assert answer["result"]["instanceId"][:4] == seed_id[:4]


def test_hex_ids_are_spelled_like_baidus(client: Client, served_control: SandboxControl) -> None:
    served_control.set_option("id_style", "hex")
    instance_id = client.call("PurchaseTPMResource", purchase_body()).json()["result"]["instanceId"]
    assert len(instance_id) == len(DESCRIBE_PAGE_INSTANCE_ID)
    hex_digits = set("0123456789abcdef")
    assert set(instance_id) <= hex_digits
    assert set(DESCRIBE_PAGE_INSTANCE_ID) - {"x"} <= hex_digits  # Baidu's, once its redaction is set aside


def test_describe_answer_is_the_mocks_exactly_but_for_values(client: Client, running_now: SandboxControl) -> None:
    client.purchase(count=1)
    answer = client.call("DescribeTPMResource", {"model": MODEL}).json()
    assert shape(answer) == shape(MOCK_DESCRIBE_ANSWER)
    [item] = answer["result"]["instances"]
    [documented] = MOCK_DESCRIBE_ANSWER["result"]["instances"]
    assert list(item) == list(documented)
    for field in ("paymentTiming", "rpm", "tpm", "status", "expiredTime"):
        assert item[field] == documented[field], field
    assert spelling(documented["startTime"]).fullmatch(item["startTime"])
    assert spelling(MOCK_DESCRIBE_ANSWER["requestId"], hexadecimal=True).fullmatch(answer["requestId"])


def test_a_scheduled_release_keeps_the_shape(client: Client, running_now: SandboxControl) -> None:
    client.purchase(count=2, release_time="2030-01-25 12:30:30")
    answer = client.call("DescribeTPMResource", {"model": MODEL}).json()
    assert shape(answer) == shape(MOCK_DESCRIBE_ANSWER)
    [item] = answer["result"]["instances"]
    [documented] = MOCK_DESCRIBE_ANSWER["result"]["instances"]
    # Baidu documents no spelling for a scheduled expiredTime; the sandbox's choice is startTime's.
    assert spelling(documented["startTime"]).fullmatch(item["expiredTime"])
    assert (item["tpm"], item["rpm"]) == (2 * documented["tpm"], 2 * documented["rpm"])


def test_release_answer_has_the_documented_shape(client: Client) -> None:
    instance_id = client.purchase()
    answer = client.call("ReleaseTPMResource", {"model": MODEL, "instanceId": instance_id}).json()
    assert answer == {"requestId": answer["requestId"], "result": True}
    assert shape(answer) == shape(MOCK_RELEASE_ANSWER)


def test_error_answer_has_baidus_error_shape(client: Client) -> None:
    answer = client.call("ReleaseTPMResource", {"model": MODEL, "instanceId": "tpm-nothere"}).json()
    assert shape(answer) == shape(BAIDU_ERROR_EXAMPLE)
    assert spelling(BAIDU_ERROR_EXAMPLE["requestId"], hexadecimal=True).fullmatch(answer["requestId"])


def test_the_rich_shape_is_only_a_superset(client: Client, running_now: SandboxControl) -> None:
    running_now.set_option("describe_shape", "rich")
    client.purchase()
    [item] = client.describe()
    [documented] = MOCK_DESCRIBE_ANSWER["result"]["instances"]
    assert set(item) - set(documented) == {"model", "count", "releaseTime"}
    assert {key: shape(item[key]) for key in documented} == shape(documented)
