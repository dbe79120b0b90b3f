"""`providers.settings`: stack config first, environment second, defaults last, each checked.

`load_settings` gets the config mapping and the environment explicitly, so nothing here reads or
changes this process's environment.
"""

from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest
from pulumi.dynamic import ConfigureRequest
from pulumi.dynamic.config import Config

from providers.settings import Secret, Settings, SettingsError, load_settings, redact
from providers.tpm_quota import _stack_config

#: Any key present tells `load_settings` the engine did send the stack config.
SENT = {"qianfan:endpoint": "https://qianfan.baidubce.com"}


def refused(config: dict[str, Any], environ: dict[str, str] | None = None) -> str:
    with pytest.raises(SettingsError) as caught:
        load_settings(config, environ or {})
    return str(caught.value)


# -- defaults and precedence --------------------------------------------------------------------
def test_defaults() -> None:
    settings = load_settings(SENT, {})
    assert (
        settings.access_key,
        settings.secret_key,
        settings.endpoint,
        settings.extra_models,
        settings.sandbox_path,
        settings.timeout_seconds,
        settings.settle_seconds,
        settings.max_purchase_count,
        settings.calls_refused,
        settings.sandbox,
    ) == (None, None, "https://qianfan.baidubce.com", (), ".sandbox/qianfan.sqlite3", 600.0, 30.0, 20, None, False)


def test_stack_config_wins_over_the_environment() -> None:
    settings = load_settings(
        {
            "qianfan:accessKey": "AK-config",
            "qianfan:secretKey": "SK-config",
            "qianfan:endpoint": "sandbox",
        },
        {
            "QIANFAN_ACCESS_KEY": "AK-env",
            "QIANFAN_SECRET_KEY": "SK-env",
            "QIANFAN_CONSOLE_API_BASE_URL": "http://127.0.0.1:9",
        },
    )
    assert settings.access_key == Secret("AK-config") and settings.secret_key == Secret("SK-config")
    assert settings.endpoint == "sandbox" and settings.sandbox


def test_the_environment_fills_what_the_stack_config_leaves_empty() -> None:
    settings = load_settings(
        {"qianfan:accessKey": "", "qianfan:secretKey": "   ", "qianfan:timeoutSeconds": "60"},
        {
            "QIANFAN_ACCESS_KEY": "AK-env",
            "QIANFAN_SECRET_KEY": "SK-env",
            "QIANFAN_CONSOLE_API_BASE_URL": "http://[::1]:8",
        },
    )
    assert settings.access_key == Secret("AK-env") and settings.secret_key == Secret("SK-env")
    assert settings.endpoint == "http://[::1]:8"


def test_only_documented_keys_come_from_the_environment() -> None:
    settings = load_settings(SENT, {"QIANFAN_TIMEOUT_SECONDS": "5", "qianfan:timeoutSeconds": "5"})
    assert settings.timeout_seconds == 600.0


def test_every_setting_from_the_stack_config() -> None:
    settings = load_settings(
        {
            "qianfan:endpoint": "http://127.0.0.1:8765/",
            "qianfan:extraModels": "ernie-x1-turbo-32k, deepseek-v3",
            "qianfan:sandboxPath": "/tmp/qf.sqlite3",
            "qianfan:timeoutSeconds": "120",
            "qianfan:settleSeconds": "7.5",
            "qianfan:maxPurchaseCount": "50",
        },
        {},
    )
    assert settings.endpoint == "http://127.0.0.1:8765"
    assert settings.extra_models == ("ernie-x1-turbo-32k", "deepseek-v3")
    assert settings.sandbox_path == "/tmp/qf.sqlite3"
    assert (settings.timeout_seconds, settings.settle_seconds, settings.max_purchase_count) == (120.0, 7.5, 50)
    assert type(settings.max_purchase_count) is int


# -- numbers ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "key, value, allowed",
    [
        ("timeoutSeconds", "nan", "1 to 3600"),
        ("timeoutSeconds", "inf", "1 to 3600"),
        ("timeoutSeconds", "-inf", "1 to 3600"),
        ("timeoutSeconds", "1e10", "1 to 3600"),
        ("timeoutSeconds", "-5", "1 to 3600"),
        ("timeoutSeconds", "0", "1 to 3600"),
        ("timeoutSeconds", "0.5", "1 to 3600"),
        ("timeoutSeconds", "3601", "1 to 3600"),
        ("timeoutSeconds", "ten", "1 to 3600"),
        ("timeoutSeconds", "60s", "1 to 3600"),
        ("settleSeconds", "nan", "1 to 3600"),
        ("settleSeconds", "inf", "1 to 3600"),
        ("settleSeconds", "1e10", "1 to 3600"),
        ("settleSeconds", "-1", "1 to 3600"),
        ("settleSeconds", "0", "1 to 3600"),
        ("settleSeconds", "0.5", "1 to 3600"),
        ("settleSeconds", "3601", "1 to 3600"),
        ("settleSeconds", "soon", "1 to 3600"),
        ("maxPurchaseCount", "nan", "1 to 10000"),
        ("maxPurchaseCount", "inf", "1 to 10000"),
        ("maxPurchaseCount", "1e10", "1 to 10000"),
        ("maxPurchaseCount", "1e30", "1 to 10000"),
        ("maxPurchaseCount", "-3", "1 to 10000"),
        ("maxPurchaseCount", "0", "1 to 10000"),
        ("maxPurchaseCount", "10001", "1 to 10000"),
        ("maxPurchaseCount", "twenty", "1 to 10000"),
        ("maxPurchaseCount", "True", "1 to 10000"),
    ],
)
def test_bad_numbers_are_refused_naming_the_key(key: str, value: str, allowed: str) -> None:
    assert (
        refused({f"qianfan:{key}": value})
        == f"stack config qianfan:{key} must be a number from {allowed}, got {value!r}"
    )


def test_a_huge_number_text_is_not_echoed_whole() -> None:
    message = refused({"qianfan:timeoutSeconds": "9" * 100_000})
    assert message.startswith("stack config qianfan:timeoutSeconds") and len(message) < 300


def test_max_purchase_count_must_be_whole() -> None:
    assert (
        refused({"qianfan:maxPurchaseCount": "2.5"})
        == "stack config qianfan:maxPurchaseCount must be a whole number, got 2.5"
    )
    assert load_settings({"qianfan:maxPurchaseCount": "5.0"}, {}).max_purchase_count == 5


def test_the_settle_floor_is_allowed() -> None:
    """I5: a recovery that lists once and gives up re-sends on one lagging answer; 1 s is the floor."""
    assert load_settings({"qianfan:settleSeconds": "1"}, {}).settle_seconds == 1.0


@pytest.mark.parametrize(
    "timeout, settle", [("600", 30.0), ("3600", 30.0), ("60", 30.0), ("40", 20.0), ("3", 1.5), ("1", 1.0)]
)
def test_settle_defaults_to_30s_but_at_most_half_the_timeout(timeout: str, settle: float) -> None:
    assert load_settings({"qianfan:timeoutSeconds": timeout}, {}).settle_seconds == settle


@pytest.mark.parametrize("settle", ["10", "11", "3600"])
def test_an_explicit_settle_not_below_the_timeout_is_refused(settle: str) -> None:
    message = refused({"qianfan:timeoutSeconds": "10", "qianfan:settleSeconds": settle})
    assert message.startswith(
        f"stack config qianfan:settleSeconds ({float(settle):g}) must be less than qianfan:timeoutSeconds (10)"
    )


def test_an_explicit_settle_just_below_the_timeout_is_allowed() -> None:
    settings = load_settings({"qianfan:timeoutSeconds": "10", "qianfan:settleSeconds": "9.5"}, {})
    assert (settings.timeout_seconds, settings.settle_seconds) == (10.0, 9.5)


# -- endpoint -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw, endpoint",
    [
        ("sandbox", "sandbox"),
        ("sandbox/", "sandbox"),
        (" sandbox ", "sandbox"),
        ("https://qianfan.baidubce.com/", "https://qianfan.baidubce.com"),
        ("https://qianfan.baidubce.com///", "https://qianfan.baidubce.com"),
        ("http://127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("http://[::1]:8765", "http://[::1]:8765"),
        ("http://localhost:65535/prefix", "http://localhost:65535/prefix"),
        ("  http://127.0.0.1:8765\n", "http://127.0.0.1:8765"),  # surrounding whitespace is trimmed
    ],
)
def test_endpoints_accepted(raw: str, endpoint: str) -> None:
    assert load_settings({"qianfan:endpoint": raw}, {}).endpoint == endpoint


@pytest.mark.parametrize(
    "raw, problem",
    [
        ("http://[::1", "it is not a valid URL"),
        ("http://:80", "it names no host"),
        ("http://", "it names no host"),
        ("ftp://x", "the scheme must be http or https"),
        ("qianfan.baidubce.com", "the scheme must be http or https"),
        ("SANDBOX", "the scheme must be http or https"),
        ("file:///etc/passwd", "the scheme must be http or https"),
        ("http://user:pw@host", "it must not carry credentials; use qianfan:accessKey and qianfan:secretKey"),
        ("http://user@host", "it must not carry credentials"),
        ("http://qianfan .baidubce.com", "it contains whitespace or control characters"),
        ("http://host\tname", "it contains whitespace or control characters"),
        ("http://host\x00", "it contains whitespace or control characters"),
        ("http://host:0", "port 0 cannot be connected to"),
        ("http://host:65536", "it is not a valid URL"),
        ("http://host:http", "it is not a valid URL"),
        ("http://host?Action=x", "it must not have a query or fragment"),
        ("http://host/#top", "it must not have a query or fragment"),
    ],
)
def test_endpoints_refused_naming_the_key(raw: str, problem: str) -> None:
    message = refused({"qianfan:endpoint": raw})
    assert message.startswith(
        "stack config qianfan:endpoint (or QIANFAN_CONSOLE_API_BASE_URL) must be 'sandbox' or an http(s) base URL "
        "such as https://qianfan.baidubce.com, got "
    )
    assert problem in message


def test_an_endpoint_from_the_environment_is_checked_too() -> None:
    assert "it must not carry credentials" in refused(
        SENT | {"qianfan:endpoint": ""}, {"QIANFAN_CONSOLE_API_BASE_URL": "http://u:p@h"}
    )


def test_a_url_refused_for_carrying_credentials_does_not_echo_them() -> None:
    message = refused({"qianfan:endpoint": "https://AKexample:SKexample-hunter2@qianfan.baidubce.com"})
    assert "it must not carry credentials" in message
    assert "hunter2" not in message and "SKexample" not in message


# -- extraModels --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw, fragment",
    [
        ("a b", "'a b' is not a model id"),
        ('["a",1,null]', "1 is not a model id"),
        ('["a"', "looks like a JSON list but is not valid JSON"),
    ],
)
def test_extra_models_errors_name_the_key(raw: str, fragment: str) -> None:
    message = refused({"qianfan:extraModels": raw})
    assert message.startswith("stack config qianfan:extraModels: ") and fragment in message


def test_a_deeply_nested_extra_models_list_names_the_key() -> None:
    message = refused({"qianfan:extraModels": "[" * 1_000 + "]" * 1_000})
    assert message.startswith("stack config qianfan:extraModels: ")


# -- no stack config at all ---------------------------------------------------------------------
def test_no_stack_config_refuses_calls_naming_the_cli_and_the_variable() -> None:
    settings = load_settings({}, {"QIANFAN_ACCESS_KEY": "AK", "QIANFAN_SECRET_KEY": "SK"})
    assert settings.calls_refused is not None
    assert "3.139" in settings.calls_refused and "QIANFAN_CONSOLE_API_BASE_URL" in settings.calls_refused
    assert "Upgrade the Pulumi CLI" in settings.calls_refused


@pytest.mark.parametrize("value", ["", "   "])
def test_a_blank_endpoint_variable_does_not_count_as_naming_one(value: str) -> None:
    assert load_settings({}, {"QIANFAN_CONSOLE_API_BASE_URL": value}).calls_refused is not None


@pytest.mark.parametrize("endpoint", ["sandbox", "http://127.0.0.1:8765", "https://qianfan.baidubce.com"])
def test_an_endpoint_named_in_the_environment_allows_calls(endpoint: str) -> None:
    settings = load_settings({}, {"QIANFAN_CONSOLE_API_BASE_URL": endpoint})
    assert settings.calls_refused is None and settings.endpoint == endpoint


@pytest.mark.parametrize(
    "config",
    [{"qianfan:timeoutSeconds": "60"}, {"qianfan-tpm:quotas": "[]"}, {"qianfan:accessKey": "AK"}, {"aws:region": "x"}],
)
def test_any_stack_config_key_allows_calls(config: dict[str, str]) -> None:
    assert load_settings(config, {}).calls_refused is None


# -- secrets ------------------------------------------------------------------------------------
KEY = "SKsecret-0123456789abcdef"


def test_a_secret_never_shows_its_value() -> None:
    secret = Secret(KEY)
    settings = load_settings({"qianfan:accessKey": "AK" + KEY, "qianfan:secretKey": KEY}, {})
    for text in (
        repr(secret),
        str(secret),
        f"{secret}",
        f"{secret!r}",
        f"{secret!s}",
        "%s %r" % (secret, secret),  # noqa: UP031 - the old spelling must hide it too
        "{}".format(secret),  # noqa: UP032
        repr(settings),
        str(settings),
        f"{settings}",
        repr([secret, {"k": secret}]),
    ):
        assert KEY not in text and "SKsecret" not in text
    assert secret.reveal() == KEY


@pytest.mark.parametrize("spec", [">40", "s", "r", "!<60"])
def test_a_format_spec_does_not_reveal_a_secret(spec: str) -> None:
    try:
        text = format(Secret(KEY), spec)
    except (TypeError, ValueError):
        return  # refusing to format is fine; showing the value is not
    assert KEY not in text


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_a_secret_refuses_pickling(protocol: int) -> None:
    with pytest.raises(TypeError, match="never pickled"):
        pickle.dumps(Secret(KEY), protocol=protocol)
    with pytest.raises(TypeError, match="never pickled"):
        pickle.dumps(load_settings({"qianfan:secretKey": KEY}, {}), protocol=protocol)


def test_a_secret_refuses_dill_and_copy() -> None:
    import dill  # what Pulumi pickles dynamic providers with

    with pytest.raises(TypeError, match="never pickled"):
        dill.dumps(Secret(KEY))
    with pytest.raises(TypeError, match="never pickled"):
        copy.deepcopy(Secret(KEY))


def test_secrets_compare_by_value() -> None:
    assert Secret(KEY) == Secret(KEY) and Secret(KEY) != Secret(KEY + "x") and Secret(KEY) != KEY
    assert hash(Secret(KEY)) == hash(Secret(KEY))


def test_redact_replaces_every_configured_secret() -> None:
    settings = load_settings({"qianfan:accessKey": "AKexample123", "qianfan:secretKey": KEY}, {})
    text = f"Authorization: bce-auth-v1/AKexample123/2026 sk={KEY} again {KEY}"
    assert redact(text, settings) == "Authorization: bce-auth-v1/***/2026 sk=*** again ***"
    assert redact("nothing here", settings) == "nothing here"
    assert redact(text, Settings()) == text


# -- the stack config as the engine hands it over -------------------------------------------------
def test_pulumi_config_still_keeps_the_raw_stack_config() -> None:
    """`tpm_quota._stack_config` reads `Config._props`, a private attribute of pulumi's Config:
    if a pulumi release renames it, every stack would look config-less and refuse every call."""
    raw = {"qianfan:endpoint": "sandbox", "qianfan:timeoutSeconds": "60", "qianfan-tpm:quotas": "[]"}
    assert dict(_stack_config(ConfigureRequest(Config(raw, "qianfan-tpm")))) == raw
    assert dict(_stack_config(ConfigureRequest(Config({}, "qianfan-tpm")))) == {}


@pytest.mark.parametrize("raw", ["1_000", "١٠", "1e1_0", "0x10"])
def test_numbers_are_plain_ascii_decimals(raw: str) -> None:
    with pytest.raises(SettingsError, match="stack config qianfan:timeoutSeconds"):
        load_settings({"qianfan:timeoutSeconds": raw}, {})
