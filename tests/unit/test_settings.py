"""`providers.settings`: stack config first, environment second, defaults last, each checked.

`load_settings` gets the config mapping and the environment explicitly, so nothing here reads or
changes this process's environment.
"""

from __future__ import annotations

from typing import Any

import pytest
from pulumi.dynamic import ConfigureRequest
from pulumi.dynamic.config import Config

from providers.secrets import redact
from providers.settings import (
    LedgerSetting,
    Secret,
    SettingsError,
    StrayKey,
    load_settings,
    stray_keys,
)
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
        == "stack config qianfan:maxPurchaseCount must be a whole number, got '2.5'"
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
    assert "hunter2" not in message and "ter#2" not in message and "SKexample" not in message


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
    [
        {"qianfan:timeoutSeconds": "60"},
        {"qianfan-tpm:quotas": "[]"},
        {"qianfan:accessKey": "AK", "qianfan:secretKey": "SK"},
        {"aws:region": "x"},
    ],
)
def test_any_stack_config_key_allows_calls(config: dict[str, str]) -> None:
    assert load_settings(config, {}).calls_refused is None


#: A secret key's value, which no message may show.
KEY = "SKsecret-0123456789abcdef"


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


# -- keys that no setting reads -------------------------------------------------------------------
SETTING_NAMES = (
    "accessKey, secretKey, endpoint, extraModels, sandboxPath, timeoutSeconds, settleSeconds, maxPurchaseCount, "
    "listingMaxAgeSeconds, ledger"
)


def test_a_misspelt_setting_is_refused_naming_the_one_it_meant() -> None:
    """Silently ignored, `qianfan:maxPurchaseCnt: 50` would leave the cap at 20."""
    assert refused({"qianfan:maxPurchaseCnt": "50"}) == (
        "stack config qianfan:maxPurchaseCnt is not a setting; did you mean qianfan:maxPurchaseCount?"
    )


@pytest.mark.parametrize(
    "key, meant",
    [
        ("qianfan:maxpurchasecount", "qianfan:maxPurchaseCount"),
        ("qianfan:MaxPurchaseCount", "qianfan:maxPurchaseCount"),
        ("qianfan:maxPurchase", "qianfan:maxPurchaseCount"),
        ("qianfan:timeout", "qianfan:timeoutSeconds"),
        ("qianfan:settle", "qianfan:settleSeconds"),
        ("qianfan:access_key", "qianfan:accessKey"),
        ("qianfan:secretkey", "qianfan:secretKey"),
        ("qianfan:endpiont", "qianfan:endpoint"),
        ("qianfan:models", "qianfan:extraModels"),
        ("qianfan:sandbox", "qianfan:sandboxPath"),
        ("qianfan:listingMaxAge", "qianfan:listingMaxAgeSeconds"),
    ],
)
def test_an_unknown_name_in_the_namespace_names_the_closest_setting(key: str, meant: str) -> None:
    assert refused(SENT | {key: "5"}) == f"stack config {key} is not a setting; did you mean {meant}?"


@pytest.mark.parametrize("key", ["qianfan:region", "qianfan:quotas", "qianfan:", "qianfan:x"])
def test_an_unknown_name_like_no_setting_lists_the_settings(key: str) -> None:
    assert (
        refused(SENT | {key: "5"}) == f"stack config {key} is not a setting; the qianfan: settings are {SETTING_NAMES}"
    )


@pytest.mark.parametrize(
    "key, meant",
    [
        ("Qianfan:endpoint", "qianfan:endpoint"),
        ("QIANFAN:maxPurchaseCount", "qianfan:maxPurchaseCount"),
        ("qianfna:endpoint", "qianfan:endpoint"),
        ("qainfan:maxPurchaseCnt", "qianfan:maxPurchaseCount"),
        ("qianfa:timeoutSeconds", "qianfan:timeoutSeconds"),
        ("qiangan:settleSeconds", "qianfan:settleSeconds"),
    ],
)
def test_a_key_in_a_namespace_one_typo_away_is_refused(key: str, meant: str) -> None:
    """`qianfna:endpoint: sandbox` would otherwise leave the endpoint at Baidu's, real money."""
    assert refused(SENT | {key: "sandbox"}) == (
        f"stack config {key} is read by nothing: its namespace is not qianfan; did you mean {meant}?"
    )


def test_a_key_in_a_namespace_one_typo_away_with_no_close_name_lists_the_settings() -> None:
    assert refused(SENT | {"qianfna:region": "x"}) == (
        f"stack config qianfna:region is read by nothing: its namespace is not qianfan; the qianfan: settings are "
        f"{SETTING_NAMES}"
    )


@pytest.mark.parametrize(
    "key",
    [
        "aws:region",
        "pulumi:tags",
        "qianfan-tpm:quotas",  # the project's: the program checks those
        "qianfan-tpm:anything",
        "qian:endpoint",
        "openai:model",
        "qianfanx2:endpoint",
        "noNamespace",
        ":endpoint",
    ],
)
def test_keys_of_other_namespaces_are_left_alone(key: str) -> None:
    assert load_settings(SENT | {key: "x"}, {}).endpoint == "https://qianfan.baidubce.com"


def test_a_key_that_is_not_text_is_left_alone() -> None:
    assert load_settings({**SENT, 5: "x", None: "y", ("qianfan", "x"): "z"}, {}).max_purchase_count == 20  # type: ignore[dict-item]


@pytest.mark.parametrize(
    "key, shown",
    [
        ("qianfan:配额", "'qianfan:\\u914d\\u989d'"),
        ("qіanfan:endpoint", "'q\\u0456anfan:endpoint'"),  # a Cyrillic і: it must not read as qianfan
        ("qianfan:a\nb", "'qianfan:a\\nb'"),
        ("qianfan:a b", "'qianfan:a b'"),
        ("qianfan:\u202eyek", "'qianfan:\\u202eyek'"),
        ("qianfan:" + "k" * 10_000, "'qianfan:" + "k" * 71 + "… (10010 characters)"),
    ],
)
def test_an_unknown_key_is_shown_on_one_readable_line(key: str, shown: str) -> None:
    message = refused(SENT | {key: "x"})
    assert message.startswith(f"stack config {shown} is ") and "\n" not in message
    assert len(message) < 400


def test_no_value_of_an_unknown_key_is_echoed() -> None:
    message = refused({"qianfan:secretkey": KEY, "qianfan:accessKey": "AK", "qianfan:secretKey": "SK"})
    assert message == "stack config qianfan:secretkey is not a setting; did you mean qianfan:secretKey?"


class RecordingConfig(dict[str, Any]):
    """A stack config that notes which keys were read."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.read: list[str] = []

    def get(self, key: str, default: Any = None) -> Any:
        self.read.append(key)
        return super().get(key, default)


def test_every_setting_of_the_table_is_read_and_nothing_else() -> None:
    from providers.settings import SETTINGS

    config = RecordingConfig(SENT)
    load_settings(config, {})
    assert sorted(set(config.read)) == sorted(f"qianfan:{name}" for name in SETTINGS)


def test_every_setting_of_the_table_is_accepted() -> None:
    from providers.settings import SETTINGS

    assert stray_keys([f"qianfan:{name}" for name in SETTINGS], {"qianfan": SETTINGS}) == []


def test_a_guess_prefers_the_namespace_the_key_is_closest_to() -> None:
    known = {"qianfan": ("endpoint", "quotas"), "qianfan-tpm": ("quotas",)}
    [stray] = stray_keys(["qianfan-tmp:quotas"], known)
    assert stray == StrayKey(
        "qianfan-tmp:quotas",
        "qianfan-tpm:quotas",
        "stack config qianfan-tmp:quotas is read by nothing: its namespace is not qianfan or qianfan-tpm; did you "
        "mean qianfan-tpm:quotas?",
    )
    assert [s.guess for s in stray_keys(["qianfan:quota", "qianfan-tpm:endpiont"], known)] == [
        "qianfan:quotas",
        "qianfan:endpoint",
    ]


# -- half a key pair ------------------------------------------------------------------------------
@pytest.mark.parametrize("endpoint", ["https://qianfan.baidubce.com", "sandbox"])
def test_half_a_key_pair_in_the_stack_config_is_refused_naming_the_missing_key(endpoint: str) -> None:
    assert refused({"qianfan:endpoint": endpoint, "qianfan:accessKey": "AKonly"}) == (
        "stack config qianfan:secretKey is not set (nor QIANFAN_SECRET_KEY), but qianfan:accessKey is: only half a "
        "key pair is configured. Set it with `pulumi config set --secret qianfan:secretKey <SK>` or export "
        "QIANFAN_SECRET_KEY"
    )
    assert refused({"qianfan:endpoint": endpoint, "qianfan:secretKey": KEY}) == (
        "stack config qianfan:accessKey is not set (nor QIANFAN_ACCESS_KEY), but qianfan:secretKey is: only half a "
        "key pair is configured. Set it with `pulumi config set --secret qianfan:accessKey <AK>` or export "
        "QIANFAN_ACCESS_KEY"
    )


def test_half_a_key_pair_from_the_environment_says_where_the_half_came_from() -> None:
    """A key left exported in the shell is the usual cause: the message says where to look."""
    message = refused(SENT, {"QIANFAN_SECRET_KEY": KEY})
    assert message.startswith(
        "stack config qianfan:accessKey is not set (nor QIANFAN_ACCESS_KEY), but QIANFAN_SECRET_KEY (in the "
        "environment) is: only half a key pair is configured."
    )
    assert KEY not in message


@pytest.mark.parametrize(
    "config, environ",
    [
        ({"qianfan:accessKey": "AK", "qianfan:secretKey": KEY}, {}),
        ({"qianfan:accessKey": "AK"}, {"QIANFAN_SECRET_KEY": KEY}),
        ({}, {"QIANFAN_ACCESS_KEY": "AK", "QIANFAN_SECRET_KEY": KEY}),
        ({"qianfan:accessKey": " ", "qianfan:secretKey": ""}, {}),
        ({}, {}),
    ],
)
def test_a_whole_pair_or_none_is_fine(config: dict[str, str], environ: dict[str, str]) -> None:
    settings = load_settings(SENT | config, environ)
    assert bool(settings.access_key) == bool(settings.secret_key)


def test_a_blank_half_counts_as_missing() -> None:
    assert refused({"qianfan:accessKey": "AK", "qianfan:secretKey": "  "}).startswith(
        "stack config qianfan:secretKey is not set (nor QIANFAN_SECRET_KEY), but qianfan:accessKey is"
    )


# -- every problem at once ------------------------------------------------------------------------
def test_every_problem_is_reported_at_once_one_line_each() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(
            {
                "qianfan:maxPurchaseCnt": "50",
                "qianfan:accessKey": "AK",
                "qianfan:endpoint": "ftp://x",
                "qianfan:timeoutSeconds": "nan",
                "qianfan:settleSeconds": "-1",
                "qianfan:maxPurchaseCount": "2.5",
                "qianfan:listingMaxAgeSeconds": "61",
                "qianfan:extraModels": "a b",
            },
            {},
        )
    problems = caught.value.problems
    assert [p.split(" ")[2] for p in problems] == [
        "qianfan:maxPurchaseCnt",
        "qianfan:secretKey",
        "qianfan:endpoint",
        "qianfan:extraModels:",
        "qianfan:timeoutSeconds",
        "qianfan:settleSeconds",
        "qianfan:maxPurchaseCount",
        "qianfan:listingMaxAgeSeconds",
    ]
    assert all(p.startswith("stack config qianfan:") and "\n" not in p for p in problems)
    assert str(caught.value) == "; ".join(problems)


def test_settle_against_timeout_is_judged_only_when_both_are_usable() -> None:
    assert refused({"qianfan:timeoutSeconds": "nan", "qianfan:settleSeconds": "5"}) == (
        "stack config qianfan:timeoutSeconds must be a number from 1 to 3600, got 'nan'"
    )
    assert refused({"qianfan:settleSeconds": "700"}).startswith(
        "stack config qianfan:settleSeconds (700) must be less than qianfan:timeoutSeconds (600)"
    )


def test_thousands_of_problems_make_a_bounded_message() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({f"qianfan:k{i}": "x" for i in range(5_000)}, {})
    assert len(caught.value.problems) == 5_000
    assert str(caught.value).endswith("; … and 4970 more problems")


# -- qianfan:ledger -------------------------------------------------------------------------------------
def ledger_of(value: str | None, environ: dict[str, str] | None = None, **config: str) -> LedgerSetting:
    given = {"qianfan:endpoint": "http://127.0.0.1:9", **config}
    if value is not None:
        given["qianfan:ledger"] = value
    return load_settings(given, environ or {}).ledger


def test_the_ledger_defaults_to_a_file_per_user() -> None:
    assert ledger_of(None, {"XDG_STATE_HOME": "/state"}) == LedgerSetting("sqlite", "/state/qianfan-tpm/ledger.sqlite3")
    home = ledger_of(None, {})
    assert (
        home.kind == "sqlite"
        and home.path is not None
        and home.path.endswith(".local/state/qianfan-tpm/ledger.sqlite3")
    )


def test_the_dev_stacks_ledger_sits_beside_its_sandbox_and_never_on_it() -> None:
    beside = ledger_of(None, **{"qianfan:endpoint": "sandbox", "qianfan:sandboxPath": ".sandbox/qianfan.sqlite3"})
    assert beside == LedgerSetting("sqlite", ".sandbox/qianfan-ledger.sqlite3")
    named = ledger_of(None, **{"qianfan:endpoint": "sandbox", "qianfan:sandboxPath": "/x/ledger.sqlite3"})
    assert named.path == "/x/ledger-ledger.sqlite3"


@pytest.mark.parametrize(
    "value, expected",
    [
        ("off", LedgerSetting("off")),
        ("OFF", LedgerSetting("off")),
        ("/var/lib/tpm/ledger.db", LedgerSetting("sqlite", "/var/lib/tpm/ledger.db")),
        ("ledger.db", LedgerSetting("sqlite", "ledger.db")),
        ("sqlite:///ledger.db", LedgerSetting("sqlite", "ledger.db")),
        ("sqlite:////abs/ledger.db", LedgerSetting("sqlite", "/abs/ledger.db")),
    ],
)
def test_ledger_spellings(value: str, expected: LedgerSetting) -> None:
    assert ledger_of(value) == expected


def test_the_environment_names_the_ledger_when_the_stack_does_not() -> None:
    assert ledger_of(None, {"QIANFAN_TPM_LEDGER": "off"}) == LedgerSetting("off")
    assert ledger_of("/a.db", {"QIANFAN_TPM_LEDGER": "off"}).path == "/a.db"


def test_a_postgresql_ledger_url_is_a_secret_never_shown() -> None:
    url = "postgresql://tpm:p%40ss%2Fw%23rd@db.example:5432/ledger?sslmode=require"  # percent-encoded, as libpq wants
    settings = load_settings({"qianfan:endpoint": "http://127.0.0.1:9", "qianfan:ledger": url}, {})
    assert settings.ledger.kind == "postgresql" and settings.ledger.url == Secret(url)
    assert settings.ledger.describe() == "ledger postgresql://***@db.example:5432/ledger"
    assert url not in repr(settings) and "p%40ss" not in repr(settings)
    scrubbed = redact(f"failed for {url} with p@ss/w#rd", settings)  # decoded too, as a driver may show it
    assert "p@ss/w#rd" not in scrubbed and url not in scrubbed


def test_a_password_in_a_postgresql_ledger_urls_query_is_scrubbed_too() -> None:
    url = "postgresql://tpm@db.example/ledger?sslmode=require&password=s3cr%3Ft"  # libpq reads a password there too
    settings = load_settings({"qianfan:endpoint": "http://127.0.0.1:9", "qianfan:ledger": url}, {})
    assert settings.ledger.describe() == "ledger postgresql://***@db.example/ledger"
    scrubbed = redact("password s3cr%3Ft, decoded s3cr?t", settings)
    assert "s3cr" not in scrubbed


@pytest.mark.parametrize(
    "value, shown",
    [
        ("mysql://user:hunter2@db/ledger", "'mysql://***@db/ledger'"),
        ("postgresql://user:hun/ter#2@db/ledger", "'postgresql://***@db/ledger'"),  # not percent-encoded
        ("postgresql://user:hun?ter2@db/ledger", "'postgresql://***@db/ledger': an '@', '/', '?' or '#'"),
        ("postgresql://user:hun@ter2@db/ledger", "'postgresql://***@db/ledger': an '@', '/', '?' or '#'"),
        ("postgresql://user:1234/hunter2@db/ledger", "'postgresql://***@db/ledger': an '@', '/', '?' or '#'"),
        ("postgresql://user:hunter2@:99999/ledger", "'postgresql://***@:99999/ledger'"),
        ("postgresql:///ledger", "'postgresql:///ledger'"),
        ("sqlite://ledger.db", "'sqlite://ledger.db'"),
        ("ledger\n.db", "'ledger\\n.db'"),
    ],
)
def test_a_ledger_that_cannot_be_used_is_refused_without_its_password(value: str, shown: str) -> None:
    message = refused({"qianfan:endpoint": "http://127.0.0.1:9", "qianfan:ledger": value})
    assert message.startswith("stack config qianfan:ledger (or QIANFAN_TPM_LEDGER) must be 'off'") and shown in message
    assert "hunter2" not in message and "ter#2" not in message
