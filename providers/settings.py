"""Provider settings: stack config first, environment second, defaults last.

Settings are read in `configure()` (or from the environment when a provider is used outside the
host), never in `__init__`, so nothing here is pickled into `__provider` and no key reaches state.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .models import parse_extra_models

DEFAULT_ENDPOINT = "https://qianfan.baidubce.com"
#: `qianfan:endpoint` value that starts the embedded sandbox instead of calling Baidu.
SANDBOX_ENDPOINT = "sandbox"
DEFAULT_SANDBOX_PATH = ".sandbox/qianfan.sqlite3"
DEFAULT_TIMEOUT_SECONDS = 600.0
DEFAULT_MAX_PURCHASE_COUNT = 20
DEFAULT_SETTLE_SECONDS = 30.0

CREDENTIALS_HINT = (
    "set them with `pulumi config set --secret qianfan:accessKey <AK>` and "
    "`pulumi config set --secret qianfan:secretKey <SK>`, or export QIANFAN_ACCESS_KEY and "
    "QIANFAN_SECRET_KEY"
)


class SettingsError(ValueError):
    """A stack config value that cannot be used; the message names the key."""


class Secret:
    """A string that never shows itself in repr, str or f-strings (tracebacks print those)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:
        raise TypeError("a Secret is never pickled: it would end up in Pulumi state")


@dataclass(frozen=True)
class Settings:
    """Everything the provider needs to talk to Qianfan, resolved once per provider host."""

    access_key: Secret | None = None
    secret_key: Secret | None = None
    endpoint: str = DEFAULT_ENDPOINT
    extra_models: tuple[str, ...] = ()
    sandbox_path: str = DEFAULT_SANDBOX_PATH
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    max_purchase_count: int = DEFAULT_MAX_PURCHASE_COUNT
    settle_seconds: float = DEFAULT_SETTLE_SECONDS

    @property
    def sandbox(self) -> bool:
        return self.endpoint == SANDBOX_ENDPOINT

    @property
    def has_credentials(self) -> bool:
        return bool(self.access_key and self.secret_key)

    @property
    def redactions(self) -> tuple[Secret, ...]:
        """Secret values to scrub from any text that leaves the provider (defence in depth)."""
        return tuple(secret for secret in (self.access_key, self.secret_key) if secret)


def _number(raw: Any, key: str, cast: Callable[[str], float | int], minimum: float) -> Any:
    try:
        value = cast(str(raw).strip())
    except ValueError:
        raise SettingsError(f"stack config {key} must be a number >= {minimum:g}, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"stack config {key} must be a number >= {minimum:g}, got {raw!r}")
    return value


def load_settings(config: Callable[[str], Any] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Resolve settings from a config getter (`ConfigureRequest.config.get`) and the environment."""
    get = config or (lambda _key: None)
    env = os.environ if environ is None else environ

    def pick(key: str, env_name: str | None = None) -> str | None:
        value = get(key)
        if value is None or str(value).strip() == "":
            value = env.get(env_name) if env_name else None
        return None if value is None or str(value).strip() == "" else str(value).strip()

    access_key = pick("qianfan:accessKey", "QIANFAN_ACCESS_KEY")
    secret_key = pick("qianfan:secretKey", "QIANFAN_SECRET_KEY")
    endpoint = (pick("qianfan:endpoint", "QIANFAN_CONSOLE_API_BASE_URL") or DEFAULT_ENDPOINT).rstrip("/")
    if endpoint != SANDBOX_ENDPOINT and not endpoint.startswith(("http://", "https://")):
        raise SettingsError(
            f"stack config qianfan:endpoint must be an http(s) URL or '{SANDBOX_ENDPOINT}', got {endpoint!r}"
        )
    timeout = pick("qianfan:timeoutSeconds")
    cap = pick("qianfan:maxPurchaseCount")
    settle = pick("qianfan:settleSeconds")
    return Settings(
        access_key=Secret(access_key) if access_key else None,
        secret_key=Secret(secret_key) if secret_key else None,
        endpoint=endpoint,
        extra_models=parse_extra_models(get("qianfan:extraModels")),
        sandbox_path=pick("qianfan:sandboxPath") or DEFAULT_SANDBOX_PATH,
        timeout_seconds=_number(timeout, "qianfan:timeoutSeconds", float, 1) if timeout else DEFAULT_TIMEOUT_SECONDS,
        max_purchase_count=_number(cap, "qianfan:maxPurchaseCount", int, 1) if cap else DEFAULT_MAX_PURCHASE_COUNT,
        settle_seconds=_number(settle, "qianfan:settleSeconds", float, 0) if settle else DEFAULT_SETTLE_SECONDS,
    )


def redact(text: str, settings: Settings) -> str:
    """Replace any configured secret that appears in text; the last line of defence for errors."""
    for secret in settings.redactions:
        value = secret.reveal()
        if value and value in text:
            text = text.replace(value, "***")
    return text
