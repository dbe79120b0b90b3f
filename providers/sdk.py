"""The `qianfan` SDK's process-wide set-up, done once and only when the first call is made.

Importing `qianfan` costs about half a second and logs a "No redis installed" warning, so it is
imported lazily (a preview never pays for it). The SDK reads credentials and the endpoint from a
process-wide config singleton; it is written exactly once, under a lock, because the provider
host runs up to four operations at once. Credentials are never passed as `ak=`/`sk=` keywords:
some SDK functions spread their keywords into the request body.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from typing import Any

_LOCK = threading.Lock()
_configured: tuple[str, str, str] | None = None

CallAction = Callable[..., Any]


class SdkConfigConflict(RuntimeError):
    """One process can only talk to one endpoint with one key pair (the SDK config is global)."""


def quiet_sdk_logging() -> None:
    """Keep the SDK's logs (which print request headers and bodies) out of `pulumi up` output.

    Must run before `qianfan` is imported: its logger prints a warning at import time.
    """
    logging.getLogger("qianfan").disabled = True
    logging.getLogger("baidubce").setLevel(logging.CRITICAL + 1)


def call_action_for(endpoint: str, access_key: str, secret_key: str) -> CallAction:
    """Configure the SDK for this endpoint and key pair (first use) and return `call_action`."""
    global _configured
    wanted = (endpoint, access_key, hashlib.sha256(secret_key.encode()).hexdigest())
    with _LOCK:
        if _configured is None:
            quiet_sdk_logging()
            from qianfan import get_config

            config = get_config()
            config.ACCESS_KEY = access_key
            config.SECRET_KEY = secret_key
            config.CONSOLE_API_BASE_URL = endpoint
            # The SDK's own retry would repeat a purchase blindly; retries are decided here.
            config.CONSOLE_API_RETRY_COUNT = 1
            _configured = wanted
        elif _configured != wanted:
            raise SdkConfigConflict(
                "this provider host is already talking to another Qianfan endpoint or key pair; "
                "one host serves one stack configuration"
            )
    from qianfan.resources.console.utils import call_action

    return call_action
