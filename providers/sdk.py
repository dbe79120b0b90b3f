"""Connecting to Qianfan: credentials, the endpoint (or the embedded sandbox), and the `qianfan`
SDK's process-wide set-up, done once and only when the first call is made.

Importing `qianfan` costs about half a second and logs a "No redis installed" warning, so it is
imported lazily (a preview never pays for it). The SDK reads credentials and the endpoint from a
process-wide config singleton; it is written exactly once, under a lock, because the provider
host runs up to four operations at once. Credentials are never passed as `ak=`/`sk=` keywords:
some SDK functions spread their keywords into the request body. With `qianfan:endpoint: sandbox`
the sandbox is started inside the provider host, once per process and database, with the
configured key pair or, when none is configured, the sandbox's own fixed pair.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import CREDENTIALS_HINT, Kind, QianfanError
from .settings import Settings

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


def connect(settings: Settings, action: str) -> CallAction:
    """`call_action`, set up for these settings: credentials resolved, the endpoint (or the
    embedded sandbox) reached. Refusals are QianfanErrors of kind CONFIG: nothing was sent."""
    if settings.calls_refused:
        raise QianfanError(action, Kind.CONFIG, message="not sent", hint=settings.calls_refused)
    access_key = settings.access_key.reveal() if settings.access_key else None
    secret_key = settings.secret_key.reveal() if settings.secret_key else None
    if bool(access_key) != bool(secret_key):  # load_settings refuses this too: defence in depth
        missing = "qianfan:secretKey" if access_key else "qianfan:accessKey"
        raise QianfanError(
            action,
            Kind.CONFIG,
            message=f"only half a key pair is configured ({missing} is not set)",
            hint=CREDENTIALS_HINT,
        )
    if settings.sandbox:
        from qianfan_sandbox import SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY, SandboxError

        if not access_key or not secret_key:
            access_key, secret_key = SANDBOX_ACCESS_KEY, SANDBOX_SECRET_KEY
        try:
            endpoint = embedded_sandbox_url(settings, access_key, secret_key)
        except SandboxError as exc:
            raise QianfanError(action, Kind.CONFIG, message=str(exc), hint="") from None
    else:
        endpoint = settings.endpoint
        if not access_key or not secret_key:
            raise QianfanError(
                action,
                Kind.CONFIG,
                message="no Qianfan credentials (qianfan:accessKey, qianfan:secretKey not set)",
                hint=CREDENTIALS_HINT,
            )
    try:
        return call_action_for(endpoint, access_key, secret_key)
    except SdkConfigConflict as exc:
        raise QianfanError(action, Kind.CONFIG, message=str(exc), hint="") from None


_SANDBOX_LOCK = threading.Lock()
_SANDBOXES: dict[Path, Any] = {}


def embedded_sandbox_url(settings: Settings, access_key: str, secret_key: str) -> str:
    """Start (once per process and database) the sandbox inside the provider host; give its URL."""
    from qianfan_sandbox import start_sandbox

    path = Path(settings.sandbox_path).expanduser().resolve()
    with _SANDBOX_LOCK:
        sandbox = _SANDBOXES.get(path)
        if sandbox is None:
            sandbox = start_sandbox(path, {access_key: secret_key}, extra_models=settings.extra_models)
            _SANDBOXES[path] = sandbox
    return str(sandbox.url)
