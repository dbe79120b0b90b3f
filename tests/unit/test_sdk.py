"""`providers.sdk`: connecting to Qianfan — credentials, the endpoint or the embedded sandbox, and
the `qianfan` SDK's one-time, process-wide set-up — refusing before anything is sent."""

from __future__ import annotations

from typing import Any

import pytest

import providers.sdk as sdk_module
from providers.client import QianfanClient
from providers.deadline import Deadline
from providers.errors import Kind, QianfanError
from providers.sdk import SdkConfigConflict, connect, quiet_sdk_logging
from providers.settings import Secret, Settings, load_settings

MODEL = "ernie-speed-8k"


# -- connect: refusals before any HTTP, through the client as every call reaches them ------------------
@pytest.fixture
def no_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    """Configuring the SDK would be the step before HTTP: fail loudly if it is ever reached."""
    import providers.sdk

    def refuse(*_: Any) -> Any:
        raise AssertionError("the SDK was configured: a request could have been sent")

    monkeypatch.setattr(providers.sdk, "call_action_for", refuse)


@pytest.mark.usefixtures("no_sdk")
def test_no_stack_config_refuses_naming_the_cli() -> None:
    client = QianfanClient(load_settings({}, {"QIANFAN_ACCESS_KEY": "AK", "QIANFAN_SECRET_KEY": "SK"}))
    with pytest.raises(QianfanError) as caught:
        client.purchase(MODEL, 1, None, Deadline(5))
    err = caught.value
    assert err.kind is Kind.CONFIG and err.definitive_refusal
    assert "3.139" in str(err) and "QIANFAN_CONSOLE_API_BASE_URL" in str(err)
    assert str(err).startswith("PurchaseTPMResource failed: not sent — ")


@pytest.mark.usefixtures("no_sdk")
@pytest.mark.parametrize("endpoint", ["https://qianfan.baidubce.com", "sandbox"])
@pytest.mark.parametrize(
    "keys, missing",
    [({"access_key": Secret("AKonly")}, "qianfan:secretKey"), ({"secret_key": Secret("SKonly")}, "qianfan:accessKey")],
)
def test_half_a_key_pair_names_the_missing_one(endpoint: str, keys: dict[str, Secret], missing: str) -> None:
    """Defence in depth: load_settings refuses half a pair at preview (test_settings.py); a client
    given one anyway still refuses to connect."""
    client = QianfanClient(Settings(endpoint=endpoint, **keys))
    with pytest.raises(QianfanError) as caught:
        client.describe(MODEL, Deadline(5))
    err = caught.value
    assert err.kind is Kind.CONFIG
    assert f"only half a key pair is configured ({missing} is not set)" in str(err)
    assert "AKonly" not in str(err) and "SKonly" not in str(err)


@pytest.mark.usefixtures("no_sdk")
def test_no_keys_for_a_real_endpoint_names_the_config_keys_and_variables() -> None:
    client = QianfanClient(load_settings({"qianfan:endpoint": "https://qianfan.baidubce.com"}, {}))
    with pytest.raises(QianfanError) as caught:
        client.release(MODEL, "tpm-a", Deadline(5))
    text = str(caught.value)
    assert caught.value.kind is Kind.CONFIG
    assert "no Qianfan credentials (qianfan:accessKey, qianfan:secretKey not set)" in text
    for name in ("pulumi config set --secret qianfan:accessKey", "QIANFAN_ACCESS_KEY", "QIANFAN_SECRET_KEY"):
        assert name in text


@pytest.mark.usefixtures("no_sdk")
def test_a_refused_connection_is_asked_again_next_time() -> None:
    """A refusal is not cached as a connection: fixing nothing gives the same refusal, no call."""
    client = QianfanClient(load_settings({"qianfan:endpoint": "https://qianfan.baidubce.com"}, {}))
    for _ in range(2):
        with pytest.raises(QianfanError, match="no Qianfan credentials"):
            client.describe(MODEL, Deadline(5))
    assert client._call_action is None


# -- the SDK's global config: one endpoint and key pair per process -------------------------------------
def test_the_sdk_is_configured_once_and_a_second_pair_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sdk_module, "_configured", None)
    import qianfan

    config = qianfan.get_config()
    before = (config.ACCESS_KEY, config.SECRET_KEY, config.CONSOLE_API_BASE_URL, config.CONSOLE_API_RETRY_COUNT)
    try:
        call = sdk_module.call_action_for("http://127.0.0.1:9", "AKsdk", "SKsdk")
        assert callable(call) and config.CONSOLE_API_RETRY_COUNT == 1, "the SDK must never retry a purchase"
        assert sdk_module.call_action_for("http://127.0.0.1:9", "AKsdk", "SKsdk") is call
        with pytest.raises(SdkConfigConflict, match="one host serves one stack configuration") as caught:
            sdk_module.call_action_for("http://127.0.0.1:9", "AKsdk", "SKother")
        assert "SKother" not in str(caught.value) and "SKsdk" not in str(caught.value)
    finally:
        config.ACCESS_KEY, config.SECRET_KEY, config.CONSOLE_API_BASE_URL, config.CONSOLE_API_RETRY_COUNT = before


def test_a_conflicting_pair_reaches_the_caller_as_a_config_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    def conflict(*_: Any) -> Any:
        raise SdkConfigConflict("this provider host is already talking to another Qianfan endpoint or key pair")

    monkeypatch.setattr(sdk_module, "call_action_for", conflict)
    with pytest.raises(QianfanError) as caught:
        connect(Settings(endpoint="http://127.0.0.1:9", access_key=Secret("A"), secret_key=Secret("S")), "X")
    assert caught.value.kind is Kind.CONFIG and caught.value.definitive_refusal


def test_the_sdks_logs_are_silenced() -> None:
    import logging

    quiet_sdk_logging()
    assert logging.getLogger("qianfan").disabled
    assert logging.getLogger("baidubce").getEffectiveLevel() > logging.CRITICAL
