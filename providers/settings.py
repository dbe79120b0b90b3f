"""Provider settings: stack config first, environment second, defaults last — each checked at the door.

Settings are read in `configure()`, inside the provider host, never in `__init__`, so nothing here
is pickled into `__provider` and no key reaches state. A value that cannot be used fails there
with a message naming the key and what is allowed, before anything is bought.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .fields import MAX_UNITS
from .messages import show
from .models import parse_extra_models

DEFAULT_ENDPOINT = "https://qianfan.baidubce.com"
#: `qianfan:endpoint` value that starts the embedded sandbox instead of calling Baidu.
SANDBOX_ENDPOINT = "sandbox"
DEFAULT_SANDBOX_PATH = ".sandbox/qianfan.sqlite3"
DEFAULT_TIMEOUT_SECONDS = 600.0
MAX_TIMEOUT_SECONDS = 3600.0
DEFAULT_SETTLE_SECONDS = 30.0
#: Below this a purchase's own instance would have less than a second to show before a recovery
#: concludes it bought nothing (purchase.py, I5).
MIN_SETTLE_SECONDS = 1.0
DEFAULT_MAX_PURCHASE_COUNT = 20
DEFAULT_LISTING_MAX_AGE_SECONDS = 1.0
MAX_LISTING_MAX_AGE_SECONDS = 60.0
#: The environment variable that names the endpoint (the `qianfan` SDK's own).
ENDPOINT_ENV = "QIANFAN_CONSOLE_API_BASE_URL"
#: The first Pulumi CLI that hands a dynamic provider the stack config in Configure.
MIN_PULUMI_CLI = "3.139"

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
    #: How old a shared listing may be for a refresh or a pre-purchase listing (0: no sharing).
    listing_max_age_seconds: float = DEFAULT_LISTING_MAX_AGE_SECONDS
    #: Why API calls are refused although the settings are valid (None: they are allowed).
    calls_refused: str | None = None

    @property
    def sandbox(self) -> bool:
        return self.endpoint == SANDBOX_ENDPOINT

    @property
    def redactions(self) -> tuple[Secret, ...]:
        """Secret values to scrub from any text that leaves the provider (defence in depth)."""
        return tuple(secret for secret in (self.access_key, self.secret_key) if secret)


def load_settings(config: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Settings:
    """Resolve settings from the stack config the engine sent in Configure, and the environment.

    An empty `config` means the engine sent none: Pulumi CLIs before 3.139 do not give dynamic
    providers the stack config. Falling back to the environment then would ignore the stack's
    `qianfan:endpoint: sandbox` and buy real quota with keys from the shell, so API calls are
    refused unless the endpoint is named explicitly in the environment.
    """
    env = os.environ if environ is None else environ

    def pick(key: str, env_name: str | None = None) -> str | None:
        value = config.get(key)
        if value is None or str(value).strip() == "":
            value = env.get(env_name) if env_name else None
        return None if value is None or str(value).strip() == "" else str(value).strip()

    access_key = pick("qianfan:accessKey", "QIANFAN_ACCESS_KEY")
    secret_key = pick("qianfan:secretKey", "QIANFAN_SECRET_KEY")
    endpoint = _endpoint(pick("qianfan:endpoint", ENDPOINT_ENV) or DEFAULT_ENDPOINT)
    try:
        extra_models = parse_extra_models(config.get("qianfan:extraModels"))
    except ValueError as exc:
        raise SettingsError(f"stack config qianfan:extraModels: {exc}") from None
    timeout = _number(pick("qianfan:timeoutSeconds"), "timeoutSeconds", DEFAULT_TIMEOUT_SECONDS, 1, MAX_TIMEOUT_SECONDS)
    # Unset, the settle time defaults to 30 s but never more than half the operation's deadline
    # (nor less than its floor: every wait is cut short by the deadline anyway).
    explicit_settle = pick("qianfan:settleSeconds")
    settle = _number(
        explicit_settle,
        "settleSeconds",
        max(MIN_SETTLE_SECONDS, min(DEFAULT_SETTLE_SECONDS, timeout / 2)),
        MIN_SETTLE_SECONDS,
        MAX_TIMEOUT_SECONDS,
    )
    if explicit_settle is not None and settle >= timeout:
        raise SettingsError(
            f"stack config qianfan:settleSeconds ({settle:g}) must be less than qianfan:timeoutSeconds ({timeout:g}): "
            "the wait for Qianfan to show a change is part of one operation's time"
        )
    cap = _number(pick("qianfan:maxPurchaseCount"), "maxPurchaseCount", DEFAULT_MAX_PURCHASE_COUNT, 1, MAX_UNITS)
    if not float(cap).is_integer():
        raise SettingsError(f"stack config qianfan:maxPurchaseCount must be a whole number, got {cap:g}")
    max_age = _number(
        pick("qianfan:listingMaxAgeSeconds"),
        "listingMaxAgeSeconds",
        DEFAULT_LISTING_MAX_AGE_SECONDS,
        0,
        MAX_LISTING_MAX_AGE_SECONDS,
    )
    refused = None
    if not config and not env.get(ENDPOINT_ENV, "").strip():
        refused = (
            "the provider received no stack configuration from the Pulumi CLI (CLIs older than "
            f"{MIN_PULUMI_CLI} send none to dynamic providers), so it cannot tell whether this stack means the "
            f"sandbox or Baidu, and calls nothing. Upgrade the Pulumi CLI to {MIN_PULUMI_CLI} or later, or name the "
            f"endpoint explicitly with {ENDPOINT_ENV}"
        )
    return Settings(
        access_key=Secret(access_key) if access_key else None,
        secret_key=Secret(secret_key) if secret_key else None,
        endpoint=endpoint,
        extra_models=extra_models,
        sandbox_path=pick("qianfan:sandboxPath") or DEFAULT_SANDBOX_PATH,
        timeout_seconds=timeout,
        max_purchase_count=int(cap),
        settle_seconds=settle,
        listing_max_age_seconds=max_age,
        calls_refused=refused,
    )


_UNSAFE_URL_CHARACTERS = re.compile(r"[\s\x00-\x1f\x7f]")
#: The user:password part of a URL, never echoed: it may be a key.
_USERINFO = re.compile(r"//[^/?#]*@")
#: A plain decimal number in ASCII (float() would also take '1_000', '١٠', 'inf', 'nan').
_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _endpoint(raw: str) -> str:
    """`sandbox`, or an http(s) base URL that can really be connected to; nothing else."""
    endpoint = raw.rstrip("/")
    if endpoint == SANDBOX_ENDPOINT:
        return endpoint
    problem = _url_problem(endpoint)
    if problem:
        raise SettingsError(
            f"stack config qianfan:endpoint (or {ENDPOINT_ENV}) must be '{SANDBOX_ENDPOINT}' or an http(s) base URL "
            f"such as {DEFAULT_ENDPOINT}, got {show(_USERINFO.sub('//***@', raw))}: {problem}"
        )
    return endpoint


def _url_problem(url: str) -> str | None:
    if _UNSAFE_URL_CHARACTERS.search(url):
        return "it contains whitespace or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port that is not a number in 0-65535
    except ValueError as exc:
        return f"it is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https"):
        return "the scheme must be http or https"
    if not parts.hostname:
        return "it names no host"
    if parts.username is not None or parts.password is not None:
        return "it must not carry credentials; use qianfan:accessKey and qianfan:secretKey"
    if port == 0:
        return "port 0 cannot be connected to"
    if parts.query or parts.fragment:
        return "it must not have a query or fragment"
    return None


def _number(raw: str | None, key: str, default: float, minimum: float, maximum: float) -> float:
    """A finite number within [minimum, maximum]; NaN, infinities and 1e10 are refused by name."""
    if raw is None:
        return default
    allowed = f"stack config qianfan:{key} must be a number from {minimum:g} to {maximum:g}"
    if not _DECIMAL.fullmatch(raw):
        raise SettingsError(f"{allowed}, got {show(raw)}")
    value = float(raw)
    if not math.isfinite(value) or not minimum <= value <= maximum:
        raise SettingsError(f"{allowed}, got {show(raw)}")
    return value


def redact(text: str, settings: Settings) -> str:
    """Replace any configured secret that appears in text; the last line of defence for errors."""
    for secret in settings.redactions:
        value = secret.reveal()
        if value and value in text:
            text = text.replace(value, "***")
    return text
