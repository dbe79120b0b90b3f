"""The keys no test output may hold, and the scan for them.

`ACCESS_KEY` and `SECRET_KEY` are the test key pair, new for every session, so a hit in a scan can
only come from a leak. `SANDBOX_KEYS` are the embedded sandbox's fixed pair: what a stack that
configures no keys (the dev stack) runs with, and what must then never leave the provider.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from qianfan_sandbox import SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY

ACCESS_KEY = "AKtest" + secrets.token_hex(10)
SECRET_KEY = "SKtest" + secrets.token_hex(16)

#: label in a failure -> key
TEST_KEYS = {"access key": ACCESS_KEY, "secret key": SECRET_KEY}
SANDBOX_KEYS = {"sandbox access key": SANDBOX_ACCESS_KEY, "sandbox secret key": SANDBOX_SECRET_KEY}


def assert_no_secrets(texts: Mapping[str, str], keys: Mapping[str, str] = TEST_KEYS) -> None:
    """`texts`: where a text was found -> the text."""
    for where, text in texts.items():
        for label, key in keys.items():
            assert key not in text, f"the {label} leaked into {where}"
