"""`providers.secrets`: a value that never shows itself (nor is pickled into state), and the
scrubbing every text that leaves the provider goes through."""

from __future__ import annotations

import copy
import pickle

import pytest

from providers.secrets import Secret, redact
from providers.settings import Settings, load_settings

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
        pickle.dumps(load_settings({"qianfan:accessKey": "AK", "qianfan:secretKey": KEY}, {}), protocol=protocol)


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
