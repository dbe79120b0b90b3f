"""Provider configuration through the host: bad values are refused at the door, by name, and a
lost stack config never turns a rehearsal into a purchase."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostdriver import HostError, ProviderHost
from tests.support.hosts import plan_only_host, sandbox_config, scan_host
from tests.support.keys import ACCESS_KEY, SECRET_KEY
from tests.support.standalone import standalone

pytestmark = pytest.mark.slow  # provider hosts of its own per test

QUOTA = {"model": "ernie-speed-8k", "purchaseCount": 1}


# -- a lost stack config -----------------------------------------------------------------------------------
def test_without_stack_config_nothing_is_called_even_with_keys_in_the_environment(make_host) -> None:
    """A Pulumi CLI older than 3.139 sends a dynamic provider no stack config: the dev stack's
    `qianfan:endpoint: sandbox` never arrives, and keys exported in the shell would buy real quota."""
    host = make_host(config={}, env={"QIANFAN_ACCESS_KEY": ACCESS_KEY, "QIANFAN_SECRET_KEY": SECRET_KEY})
    inputs, failures = host.check(QUOTA)
    assert failures == []  # a preview still works: it calls nothing
    with pytest.raises(HostError) as caught:
        host.create(inputs)
    line = caught.value.last_line
    assert "received no stack configuration" in line and "3.139" in line and "QIANFAN_CONSOLE_API_BASE_URL" in line
    for operation in (lambda: host.read("tpm-AbCd1234", QUOTA), lambda: host.delete("tpm-AbCd1234", QUOTA)):
        with pytest.raises(HostError) as caught:
            operation()
        assert "received no stack configuration" in caught.value.last_line


def test_without_stack_config_an_endpoint_named_in_the_environment_is_used(make_host, sandbox_db: Path) -> None:
    with standalone(sandbox_db, "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY) as url:
        host = make_host(
            config={},
            env={
                "QIANFAN_ACCESS_KEY": ACCESS_KEY,
                "QIANFAN_SECRET_KEY": SECRET_KEY,
                "QIANFAN_CONSOLE_API_BASE_URL": url,
            },
        )
        id_, outs = host.up(QUOTA)
        host.delete(id_, outs)


# -- keys -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "given_key, missing", [("qianfan:accessKey", "qianfan:secretKey"), ("qianfan:secretKey", "qianfan:accessKey")]
)
def test_half_a_key_pair_is_refused_at_preview_in_sandbox_mode_too(
    make_host, sandbox_db: Path, given_key: str, missing: str
) -> None:
    """Before: the preview passed, and the first API call failed with a 29-line traceback."""
    config = sandbox_config(sandbox_db)
    del config[missing]
    host = make_host(config=config)
    _, failures = host.check(QUOTA)
    [(prop, reason)] = failures
    assert prop == "" and reason.startswith(f"stack config {missing} is not set"), reason
    assert f"but {given_key} is: only half a key pair is configured" in reason
    with pytest.raises(HostError) as caught:
        host.create({**QUOTA, "paymentTiming": "Postpaid"})
    assert caught.value.last_line.endswith(reason)
    assert not sandbox_db.exists(), "nothing may run on a key pair the user did not finish configuring"


def test_half_a_key_pair_from_the_environment_is_refused_at_preview(tmp_path: Path) -> None:
    config = {k: v for k, v in sandbox_config(tmp_path / "sandbox.sqlite3").items() if not k.endswith("Key")}
    db = tmp_path / "sandbox.sqlite3"
    host = ProviderHost(tmp_path / "host.stderr", {"QIANFAN_ACCESS_KEY": ACCESS_KEY})
    try:
        host.configure(config)
        _, failures = host.check(QUOTA)
    finally:
        host.close()
    scan_host(host, db)
    assert failures == [
        (
            "",
            "stack config qianfan:secretKey is not set (nor QIANFAN_SECRET_KEY), but QIANFAN_ACCESS_KEY (in the "
            "environment) is: only half a key pair is configured. Set it with `pulumi config set --secret "
            "qianfan:secretKey <SK>` or export QIANFAN_SECRET_KEY",
        )
    ]
    assert not db.exists()


# -- keys that no setting reads ----------------------------------------------------------------------------
def test_a_misspelt_setting_is_refused_at_preview_naming_the_one_meant(tmp_path: Path) -> None:
    """Before: `qianfan:maxPurchaseCnt: 50` was silently ignored and the cap stayed 20."""
    with plan_only_host(tmp_path, **{"qianfan:maxPurchaseCnt": "50"}) as host:
        _, failures = host.check({**QUOTA, "purchaseCount": 30})
        assert failures == [
            ("", "stack config qianfan:maxPurchaseCnt is not a setting; did you mean qianfan:maxPurchaseCount?")
        ]
        for operation in (
            lambda: host.create({**QUOTA, "paymentTiming": "Postpaid"}),
            lambda: host.read("tpm-x", QUOTA),
        ):
            with pytest.raises(HostError) as caught:
                operation()
            assert caught.value.last_line.endswith(failures[0][1])


def test_a_setting_in_a_misspelt_namespace_is_refused_at_preview(tmp_path: Path) -> None:
    """`qianfna:endpoint: sandbox` read by nothing would leave the endpoint at Baidu's."""
    with plan_only_host(
        tmp_path, **{"qianfna:endpoint": "sandbox", "aws:region": "x", "qianfan-tpm:quotas": "[]"}
    ) as host:
        _, failures = host.check(QUOTA)
    assert failures == [
        (
            "",
            "stack config qianfna:endpoint is read by nothing: its namespace is not qianfan; did you mean "
            "qianfan:endpoint?",
        )
    ]


def test_every_problem_of_the_settings_is_reported_at_preview_one_failure_each(tmp_path: Path) -> None:
    overrides = {
        "qianfan:maxPurchaseCnt": "50",
        "qianfan:timeoutSeconds": "nan",
        "qianfan:endpoint": "ftp://x",
        "qianfan:secretKey": "",
    }
    with plan_only_host(tmp_path, **overrides) as host:
        _, failures = host.check(QUOTA)
    assert [prop for prop, _ in failures] == ["", "", "", ""]
    assert [reason.split(" ")[2] for _, reason in failures] == [
        "qianfan:maxPurchaseCnt",
        "qianfan:secretKey",
        "qianfan:endpoint",
        "qianfan:timeoutSeconds",
    ]


# -- the sandbox database ------------------------------------------------------------------------------------
def test_another_programs_sqlite_file_at_sandbox_path_is_refused_untouched(make_host, tmp_path: Path) -> None:
    foreign = tmp_path / "app.sqlite3"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO users (name) VALUES ('ada')")
    conn.close()
    before = foreign.read_bytes()
    host = make_host(config=sandbox_config(foreign))
    inputs, _ = host.check(QUOTA)
    with pytest.raises(HostError) as caught:
        host.create(inputs)
    assert str(foreign) in caught.value.last_line
    assert foreign.read_bytes() == before
    assert not Path(f"{foreign}-wal").exists()


# -- values refused at the door --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "key, value",
    [
        ("qianfan:timeoutSeconds", "1e10"),
        ("qianfan:timeoutSeconds", "inf"),
        ("qianfan:timeoutSeconds", "nan"),
        ("qianfan:settleSeconds", "nan"),
        ("qianfan:settleSeconds", "-1"),
        ("qianfan:maxPurchaseCount", "1e30"),
        ("qianfan:endpoint", "http://[::1"),
        ("qianfan:endpoint", "http://:80"),
        ("qianfan:extraModels", '["a", 1, null]'),
    ],
)
def test_a_bad_setting_fails_check_with_one_line_naming_the_key(
    make_host, sandbox_db: Path, key: str, value: str
) -> None:
    host = make_host(config=sandbox_config(sandbox_db, **{key: value}))
    inputs, failures = host.check(QUOTA)
    [(prop, reason)] = failures
    assert prop == "" and reason.startswith(f"stack config {key}"), reason
    with pytest.raises(HostError) as caught:
        host.create({**QUOTA, "paymentTiming": "Postpaid"})
    assert caught.value.last_line.endswith(reason)  # apply refuses with the same line, having sent nothing
    assert not sandbox_db.exists()


KEYS = (
    "qianfan:timeoutSeconds",
    "qianfan:settleSeconds",
    "qianfan:maxPurchaseCount",
    "qianfan:endpoint",
    "qianfan:extraModels",
)
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from(["", " ", "1e10", "NaN", "-0", "3600", "3601", "0.5", "½", "١٠"]),
)
endpoints = st.one_of(
    st.sampled_from(["sandbox", "http://127.0.0.1:9", "https://qianfan.baidubce.com/", "http://[::1", "ftp://x"]),
    st.text(max_size=30),
)
model_lists = st.one_of(st.text(max_size=30), st.sampled_from(['["a",1,null]', "a,b", "[", "ernie x"]))


@st.composite
def configurations(draw: st.DrawFn) -> dict[str, str]:
    chosen = draw(st.sets(st.sampled_from(KEYS), min_size=1))
    values = {"qianfan:endpoint": endpoints, "qianfan:extraModels": model_lists}
    return {key: draw(values.get(key, numbers)) for key in chosen}


@settings(max_examples=24, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(overrides=configurations())
def test_every_setting_is_accepted_or_refused_by_name_never_with_a_traceback(
    tmp_path: Path, overrides: dict[str, Any]
) -> None:
    db = tmp_path / "never.sqlite3"
    host = ProviderHost(tmp_path / "host.stderr")
    try:
        host.configure(sandbox_config(db, **overrides))
        _, failures = host.check(QUOTA)  # a HostError here is the traceback this test forbids
    finally:
        host.close()
    scan_host(host, db)
    assert len(failures) <= len(overrides), failures
    for prop, reason in failures:
        # Each names a key given (or, for settle >= timeout, both keys, one of them given).
        assert prop == "" and reason.startswith("stack config qianfan:") and "\n" not in reason, reason
        assert any(key in reason for key in overrides), reason
    assert not db.exists()


# -- release times at the edges -----------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["9999-12-31T20:00:00Z", "9999-12-31T23:59:59-08:00", "0001-01-01T00:00:00+09:00"])
def test_release_times_python_cannot_show_are_refused_by_name_in_check_and_tolerated_in_diff(
    host: ProviderHost, sandbox_control, value: str
) -> None:
    _, failures = host.check({**QUOTA, "releaseTime": value})
    assert [prop for prop, _ in failures] == ["releaseTime"] and "outside the range" in failures[0][1]
    state = {**QUOTA, "paymentTiming": "Postpaid", "releaseTime": value, "instanceId": "tpm-AbCd1234"}
    assert host.diff("tpm-AbCd1234", state, {**QUOTA, "paymentTiming": "Postpaid"})["changes"] == "DIFF_SOME"
    assert sandbox_control.requests() == []


def test_a_replacement_is_a_new_quota_whose_release_must_be_in_the_future(host: ProviderHost) -> None:
    past = "2001-01-01T00:00:00+08:00"
    stored = {**QUOTA, "paymentTiming": "Postpaid", "releaseTime": past}
    _, failures = host.check({**QUOTA, "releaseTime": past}, olds=stored)
    assert failures == []  # unchanged on the same quota: it may have passed
    _, failures = host.check({**QUOTA, "model": "ernie-lite-8k", "releaseTime": past}, olds=stored)
    assert [prop for prop, _ in failures] == ["releaseTime"] and "not in the future" in failures[0][1]
