"""Answers the sandbox never gives, from a scripted stand-in: Baidu's exact item shape, garbage for one
model, one id under two models, a model Qianfan refuses; and how many models are asked at once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from audit.account import _shape_problem
from tests.audit.fake_qianfan import FakeQianfan, Raw, documented_item
from tests.audit.harness import run_audit
from tests.audit.pulumi_state import Quota, export_document


def state(tmp_path: Path, *quotas: tuple[str, str, str, int]) -> str:
    """A dev stack export holding (name, instanceId, model, units) quotas with no scheduled release."""
    path = tmp_path / "dev.json"
    entries = [
        Quota(name, id_, {"model": model, "purchaseCount": units}, {"model": model, "purchaseCount": units})
        for name, id_, model, units in quotas
    ]
    path.write_text(json.dumps(export_document("dev", entries)))
    return str(path)


def audit(fake: FakeQianfan, *args: str) -> Any:
    run = run_audit("--endpoint", fake.url, *args)
    assert {action for action, _ in fake.requests} == {"DescribeTPMResource"}
    return run


@pytest.mark.slow
def test_baidus_documented_item_shape(tmp_path: Path) -> None:
    """No model, no unit count, no releaseTime: units from tpm, release unknown (never drift)."""
    answers = {
        "ernie-speed-8k": {"instances": [documented_item("a0085162fxxxx0ad19e58e", 1), documented_item("b1", 2)]}
    }
    dev = state(tmp_path, ("chat", "a0085162fxxxx0ad19e58e", "ernie-speed-8k", 1), ("batch", "b1", "ernie-speed-8k", 1))
    with FakeQianfan(answers) as fake:
        run = audit(fake, "--state", dev, "--json")
    assert run.returncode == 1, run.stderr
    by_id = run.by_id()
    assert {i: (item["units"], item["tpm"], item["verdicts"]) for i, item in by_id.items()} == {
        "a0085162fxxxx0ad19e58e": (1, 10_000, ["managed"]),
        "b1": (2, 20_000, ["drift"]),
    }
    assert {item["releaseTime"] for item in by_id.values()} == {None}


@pytest.mark.slow
def test_garbage_for_one_model_leaves_the_audit_incomplete(tmp_path: Path) -> None:
    dev = state(tmp_path, ("lite", "tpm-Lite0001", "ernie-lite-8k", 1))
    garbage = {"data": {"items": [documented_item("tpm-Lite0001", 1)]}}
    with FakeQianfan({"ernie-lite-8k": garbage, "ernie-speed-8k": {"instances": [documented_item("s", 1)]}}) as fake:
        run = audit(fake, "--state", dev, "--json")
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.splitlines() == [
        "python -m audit: audit incomplete, nothing is reported: model ernie-lite-8k not listed: DescribeTPMResource "
        "answered an object without an 'instances' list (it holds data)"
    ]


@pytest.mark.parametrize(
    ("result", "problem"),
    [
        ("garbage", "a str, not a list of instances"),
        (None, "a NoneType, not a list of instances"),
        ({"instances": "none"}, "'instances' as a str, not a list"),
        ({"instanceList": []}, "an object without an 'instances' list (it holds instanceList)"),
        ({"instances": [{"id": "x", "tpm": 10000}]}, "an item without an instanceId (instances[0])"),
        ({"instances": [documented_item("a", 1), {"instanceId": ""}]}, "an item without an instanceId (instances[1])"),
        ([1, 2], "an item without an instanceId (instances[0])"),
        ({"instances": None}, None),
        ({"totalCount": 0}, None),
        ([documented_item("a", 1)], None),
    ],
)
def test_which_answers_count_as_garbage(result: Any, problem: str | None) -> None:
    assert _shape_problem(result) == problem


@pytest.mark.slow
def test_answers_that_are_not_json_are_retried_until_the_deadline() -> None:
    with FakeQianfan({"ernie-lite-8k": Raw(200, b"<html>gateway</html>")}) as fake:
        run = audit(fake, "--timeout-seconds", "2")
    assert run.returncode == 2 and run.stdout == ""
    assert (
        "model ernie-lite-8k not listed: DescribeTPMResource failed: Qianfan answered with something that is not JSON"
    ) in run.stderr
    assert sum(1 for _, body in fake.requests if body["model"] == "ernie-lite-8k") > 1


@pytest.mark.slow
def test_empty_answers_in_any_plausible_spelling_mean_no_instances() -> None:
    answers = {"ernie-lite-8k": {"instances": None}, "ernie-speed-8k": {}, "ernie-tiny-8k": {"totalCount": 0}}
    with FakeQianfan(answers) as fake:
        run = audit(fake, "--json")
    assert run.returncode == 0, run.stderr
    assert run.json()["instances"] == []


@pytest.mark.slow
def test_one_id_under_two_models_is_counted_once(tmp_path: Path) -> None:
    item = documented_item("tpm-Twice001", 1)
    dev = state(tmp_path, ("lite", "tpm-Twice001", "ernie-lite-8k", 1))
    with FakeQianfan({"ernie-speed-8k": {"instances": [item]}, "ernie-lite-8k": {"instances": [item]}}) as fake:
        run = audit(fake, "--state", dev, "--json")
    assert run.returncode == 0, run.stderr
    document = run.json()
    assert [(i["instanceId"], i["model"], i["verdicts"]) for i in document["instances"]] == [
        ("tpm-Twice001", "ernie-lite-8k", ["managed"])
    ]
    assert document["totals"]["ernie-lite-8k"] == {"tpm": 10_000, "unmanagedTpm": 0}
    assert document["totals"]["ernie-speed-8k"] == {"tpm": 0, "unmanagedTpm": 0}
    assert "Qianfan lists tpm-Twice001 under 2 models" in run.stderr


@pytest.mark.slow
def test_a_model_qianfan_refuses_names_the_model_and_the_way_out() -> None:
    refusal = {"requestId": "r-1", "code": "InvalidParameter", "message": "model ernie-4.0-8k is offline"}
    with FakeQianfan({"ernie-4.0-8k": Raw(400, json.dumps(refusal).encode())}) as fake:
        run = audit(fake)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.splitlines() == [
        "python -m audit: audit incomplete, nothing is reported: model ernie-4.0-8k not listed: DescribeTPMResource "
        "failed: HTTP 400 InvalidParameter: model ernie-4.0-8k is offline (requestId r-1) — if Qianfan no longer "
        "offers this model, leave it out with --models"
    ]


@pytest.mark.slow
@pytest.mark.parametrize(("option", "bound"), [((), 4), (("--concurrency", "2"), 2)])
def test_models_are_listed_concurrently_within_the_bound(option: tuple[str, ...], bound: int) -> None:
    with FakeQianfan({}, delay=0.08) as fake:
        run = audit(fake, *option)
    assert run.returncode == 0, run.stderr
    assert fake.max_in_flight == bound
    assert len(fake.requests) == 24
