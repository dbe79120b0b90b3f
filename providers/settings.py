"""Provider settings: stack config first, environment second, defaults last — each checked at the door.

Settings are read in `configure()`, inside the provider host, never in `__init__`, so nothing here
is pickled into `__provider` and no key reaches state. A value that cannot be used fails there
with a message naming the key and what is allowed, before anything is bought.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from .fields import MAX_UNITS
from .messages import NAME_CUTOFF, likeness, listed, show, show_name
from .models import parse_extra_models
from .secrets import Secret

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


class SettingsError(ValueError):
    """Stack config values that cannot be used: one problem per line, each naming its key.

    All are gathered before anything is reported, so that a stack with three mistakes takes one
    preview to fix, not three. As one message (an apply refusing to run) they are joined by "; ".
    """

    def __init__(self, *problems: str) -> None:
        self.problems = problems
        super().__init__("; ".join(listed(problems)))


#: `qianfan:ledger` value that turns the shared ledger off (this host coordinates with itself only).
LEDGER_OFF = "off"
#: The environment variable naming the ledger when the stack config does not (CI runners, say).
LEDGER_ENV = "QIANFAN_TPM_LEDGER"
#: The ledger's file, per user, when nothing names one and the endpoint is not the sandbox.
LEDGER_FILE = "qianfan-tpm/ledger.sqlite3"


@dataclass(frozen=True)
class LedgerSetting:
    """Where the hosts sharing a Qianfan account coordinate their purchases (`providers/ledger.py`)."""

    kind: str = LEDGER_OFF  # "off", "sqlite" or "postgresql"
    path: str | None = None  # a SQLite file
    url: Secret | None = None  # a PostgreSQL URL: it may hold a password, so it is a secret

    def describe(self) -> str:
        """How messages name it: the file, or the URL without its password."""
        if self.kind == "sqlite" and self.path is not None:
            return f"ledger {Path(self.path).expanduser().absolute()}"
        if self.kind == "postgresql" and self.url is not None:
            return f"ledger {_shown_postgres_url(self.url.reveal())}"
        return "ledger in memory (qianfan:ledger off)"


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
    ledger: LedgerSetting = LedgerSetting()

    @property
    def sandbox(self) -> bool:
        return self.endpoint == SANDBOX_ENDPOINT

    @property
    def redactions(self) -> tuple[Secret, ...]:
        """Secret values to scrub from any text that leaves the provider (defence in depth)."""
        secrets = [secret for secret in (self.access_key, self.secret_key) if secret]
        if self.ledger.url is not None:
            secrets.append(self.ledger.url)
            parts = urlsplit(self.ledger.url.reveal())
            query = (pair.partition("=") for pair in parts.query.split("&"))
            in_query = [value for key, _, value in query if unquote(key) == "password"]  # libpq reads one there too
            for password in (parts.password, *in_query):
                if password:
                    secrets.extend({Secret(password), Secret(unquote(password))})
        return tuple(secrets)


#: The provider's namespace in the stack config: its settings are `qianfan:<name>`.
NAMESPACE = "qianfan"

#: Every setting of the provider, by its name after `qianfan:`, with the environment variable read
#: when the stack config leaves it unset (None: the stack config only). This is the one list of
#: them: `load_settings` reads a key only through its row, and refuses any other `qianfan:` key,
#: naming the closest of these. A new setting is its row here and its parsing below.
SETTINGS: Mapping[str, str | None] = {
    "accessKey": "QIANFAN_ACCESS_KEY",
    "secretKey": "QIANFAN_SECRET_KEY",
    "endpoint": ENDPOINT_ENV,
    "extraModels": None,
    "sandboxPath": None,
    "timeoutSeconds": None,
    "settleSeconds": None,
    "maxPurchaseCount": None,
    "listingMaxAgeSeconds": None,
    "ledger": LEDGER_ENV,
}

_T = TypeVar("_T")


def load_settings(config: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Settings:
    """Resolve settings from the stack config the engine sent in Configure, and the environment.

    Every problem is gathered into one SettingsError: keys of the namespace that are no setting,
    half a key pair, and each value that cannot be used.

    An empty `config` means the engine sent none: Pulumi CLIs before 3.139 do not give dynamic
    providers the stack config. Falling back to the environment then would ignore the stack's
    `qianfan:endpoint: sandbox` and buy real quota with keys from the shell, so API calls are
    refused unless the endpoint is named explicitly in the environment.
    """
    env = os.environ if environ is None else environ
    problems = [stray.problem for stray in stray_keys(config, {NAMESPACE: SETTINGS})]

    def given(name: str) -> Any:
        if name not in SETTINGS:
            raise KeyError(f"{NAMESPACE}:{name} is read but has no row in SETTINGS")
        return config.get(f"{NAMESPACE}:{name}")

    def pick(name: str) -> str | None:
        value = given(name)
        env_name = SETTINGS[name]
        if value is None or str(value).strip() == "":
            value = env.get(env_name) if env_name else None
        return None if value is None or str(value).strip() == "" else str(value).strip()

    def checked(parse: Callable[[], _T], fallback: _T) -> _T:
        """The parsed value, or `fallback` with the problem noted: the fallback only lets the
        settings after it be checked too (any problem raises below, so it is never used)."""
        try:
            return parse()
        except SettingsError as err:
            problems.extend(err.problems)
            return fallback

    access_key = pick("accessKey")
    secret_key = pick("secretKey")
    if bool(access_key) != bool(secret_key):
        problems.append(_half_a_key_pair(given, "secretKey" if access_key else "accessKey"))
    endpoint = checked(lambda: _endpoint(pick("endpoint") or DEFAULT_ENDPOINT), DEFAULT_ENDPOINT)
    extra_models: tuple[str, ...] = checked(lambda: _extra_models(given("extraModels")), ())
    timeout = checked(
        lambda: _number(pick("timeoutSeconds"), "timeoutSeconds", DEFAULT_TIMEOUT_SECONDS, 1, MAX_TIMEOUT_SECONDS),
        None,
    )
    # Unset, the settle time defaults to 30 s but never more than half the operation's deadline
    # (nor less than its floor: every wait is cut short by the deadline anyway).
    explicit_settle = pick("settleSeconds")
    default_settle = max(MIN_SETTLE_SECONDS, min(DEFAULT_SETTLE_SECONDS, (timeout or DEFAULT_TIMEOUT_SECONDS) / 2))
    settle = checked(
        lambda: _number(explicit_settle, "settleSeconds", default_settle, MIN_SETTLE_SECONDS, MAX_TIMEOUT_SECONDS),
        None,
    )
    if explicit_settle is not None and timeout is not None and settle is not None and settle >= timeout:
        problems.append(
            f"stack config qianfan:settleSeconds ({settle:g}) must be less than qianfan:timeoutSeconds ({timeout:g}): "
            "the wait for Qianfan to show a change is part of one operation's time"
        )
    cap = checked(lambda: _whole(pick("maxPurchaseCount"), "maxPurchaseCount", DEFAULT_MAX_PURCHASE_COUNT), 0)
    max_age = checked(
        lambda: _number(
            pick("listingMaxAgeSeconds"),
            "listingMaxAgeSeconds",
            DEFAULT_LISTING_MAX_AGE_SECONDS,
            0,
            MAX_LISTING_MAX_AGE_SECONDS,
        ),
        0.0,
    )
    sandbox_path = pick("sandboxPath") or DEFAULT_SANDBOX_PATH
    ledger = checked(lambda: _ledger(pick("ledger"), endpoint == SANDBOX_ENDPOINT, sandbox_path, env), LedgerSetting())
    if problems or timeout is None or settle is None:
        raise SettingsError(*problems)
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
        sandbox_path=sandbox_path,
        timeout_seconds=timeout,
        max_purchase_count=cap,
        settle_seconds=settle,
        listing_max_age_seconds=max_age,
        calls_refused=refused,
        ledger=ledger,
    )


# -- keys that no setting reads ----------------------------------------------------------------------
#: A key shown as it is; anything else (spaces, control characters, 10 kB) is quoted by `show`.
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.:/-]{1,100}")


@dataclass(frozen=True)
class StrayKey:
    """A stack config key meant for one of our namespaces that no setting reads."""

    key: str
    #: The known key it most likely meant (None: nothing is close).
    guess: str | None
    #: One line naming the key, and the guess or else the settings there are.
    problem: str


def stray_keys(keys: Iterable[object], known: Mapping[str, Collection[str]]) -> list[StrayKey]:
    """The keys of `keys` that are meant for a namespace of `known` (namespace -> its setting names)
    but are none of its settings: an unknown name in one of them, or any name in a namespace one
    typo away from one (`qianfan-tmp:quotas`, `Qianfan:endpoint`), which nothing would ever read.

    Other namespaces (`aws:`, `pulumi:`, another project's) belong to someone else and are left alone.
    """
    strays: list[StrayKey] = []
    for key in keys:
        if not isinstance(key, str) or ":" not in key:
            continue
        namespace, name = key.split(":", 1)
        if namespace in known:
            if name in known[namespace]:
                continue
            where = "is not a setting"
        elif any(_one_typo_away(namespace, ours) for ours in known):
            where = f"is read by nothing: its namespace is not {' or '.join(known)}"
        else:
            continue
        guess = _closest(namespace, name, known)
        label = key_label(key)
        if guess is not None:
            problem = f"stack config {label} {where}; did you mean {guess}?"
        else:
            ours = namespace if namespace in known else min(known, key=lambda ns: _distance(namespace, ns))
            problem = f"stack config {label} {where}; the {ours}: settings are {', '.join(known[ours])}"
        strays.append(StrayKey(key, guess, problem))
    return strays


def key_label(key: str) -> str:
    """A config key as a message shows it: as it is, or quoted and escaped when it would not read as one."""
    return key if _PLAIN_KEY.fullmatch(key) else show_name(key)


def _closest(namespace: str, name: str, known: Mapping[str, Collection[str]]) -> str | None:
    """The known key whose name is most like `name`; between equally close names, the one in the
    namespace most like `namespace` (`qianfan:quotas` means `qianfan-tpm:quotas`)."""
    best: tuple[float, float, str] | None = None
    for ours, names in known.items():
        near = likeness(namespace, ours)
        for candidate in names:
            alike = likeness(name, candidate)
            if alike >= NAME_CUTOFF and (best is None or (alike, near) > best[:2]):
                best = (alike, near, f"{ours}:{candidate}")
    return best[2] if best else None


def _one_typo_away(namespace: str, ours: str) -> bool:
    """Case, `_` for `-`, or one or two slips of the keyboard (two for names longer than 7)."""
    if namespace == ours:
        return False
    return _distance(namespace, ours) <= (1 if len(ours) <= 7 else 2)


def _distance(text: str, ours: str) -> int:
    """Edits from `text` to `ours` (insert, delete, replace, swap two neighbours), ignoring case
    and `_` versus `-`; anything more than 2 is reported as 3, without computing it."""
    a, b = text.lower().replace("_", "-"), ours.lower().replace("_", "-")
    if abs(len(a) - len(b)) > 2:
        return 3
    # Optimal string alignment distance, row by row.
    previous: list[int] = []
    above = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            row[j] = min(above[j] + 1, row[j - 1] + 1, above[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], previous[j - 2] + 1)
        previous, above = above, row
    return min(above[len(b)], 3)


_UNSAFE_URL_CHARACTERS = re.compile(r"[\s\x00-\x1f\x7f]")
#: Everything between `//` and the last `@` of a URL: the user:password part, never echoed (it may be
#: a key). Greedy on purpose: a password may hold `/`, `?`, `#` or `@` itself.
_USERINFO = re.compile(r"//.*@", re.S)


def mask_url(raw: str) -> str:
    """A URL as it may be shown: whatever could be its credentials replaced by `***`."""
    return _USERINFO.sub("//***@", raw)


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
            f"such as {DEFAULT_ENDPOINT}, got {show(mask_url(raw))}: {problem}"
        )
    return endpoint


def _url_problem(url: str) -> str | None:
    if _UNSAFE_URL_CHARACTERS.search(url):
        return "it contains whitespace or control characters"
    if "@" in url:  # before parsing: a password holding `#` or `/` would be read as a path or fragment
        return "it must not carry credentials; use qianfan:accessKey and qianfan:secretKey"
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port that is not a number in 0-65535
    except ValueError:
        return "it is not a valid URL (its host or port cannot be read)"  # the parser's words may quote it
    if parts.scheme not in ("http", "https"):
        return "the scheme must be http or https"
    if not parts.hostname:
        return "it names no host"
    if port == 0:
        return "port 0 cannot be connected to"
    if parts.query or parts.fragment:
        return "it must not have a query or fragment"
    return None


_LEDGER_ALLOWED = (
    "stack config qianfan:ledger (or QIANFAN_TPM_LEDGER) must be 'off', a SQLite file's path, sqlite:///<path> "
    "or a postgresql://user:password@host:port/database URL"
)


def _ledger(raw: str | None, sandbox: bool, sandbox_path: str, env: Mapping[str, str]) -> LedgerSetting:
    """`off`, a SQLite file (a plain path or `sqlite:///path`, as SQLAlchemy spells it: four slashes
    for an absolute path), or PostgreSQL; unset, the machine's own file. A URL is never echoed."""
    if raw is None:
        if sandbox:  # the dev stack's ledger sits beside its sandbox, and goes when `.sandbox/` goes
            database = Path(sandbox_path)
            return LedgerSetting(
                "sqlite", str(database.with_name(f"{database.stem}-ledger{database.suffix or '.sqlite3'}"))
            )
        state = env.get("XDG_STATE_HOME", "").strip() or str(Path("~/.local/state").expanduser())
        return LedgerSetting("sqlite", str(Path(state) / LEDGER_FILE))
    if raw.lower() == LEDGER_OFF:
        return LedgerSetting(LEDGER_OFF)
    scheme = raw.split("://", 1)[0].lower() if "://" in raw else ""
    if scheme in ("postgresql", "postgres"):
        problem = _postgres_problem(raw)
        if problem:
            raise SettingsError(f"{_LEDGER_ALLOWED}, got {show(_shown_postgres_url(raw))}: {problem}")
        return LedgerSetting("postgresql", url=Secret(raw))
    if scheme == "sqlite":
        if not raw.lower().startswith("sqlite:///") or len(raw) <= len("sqlite:///"):
            raise SettingsError(f"{_LEDGER_ALLOWED}, got {show(mask_url(raw))}: a sqlite URL is sqlite:///<path>")
        return LedgerSetting("sqlite", raw[len("sqlite:///") :])
    if scheme or _UNSAFE_URL_CHARACTERS.search(raw):
        raise SettingsError(f"{_LEDGER_ALLOWED}, got {show(mask_url(raw))}")
    return LedgerSetting("sqlite", raw)


def _postgres_problem(url: str) -> str | None:
    if _UNSAFE_URL_CHARACTERS.search(url):
        return "it contains whitespace or control characters"
    # libpq ends the user and password at the first '@' or '/', Python's parser at the last '@' of
    # the host part: a raw '@', '/', '?' or '#' in them would be read as a host (and shown) by one.
    host_part = re.split(r"[/?#]", url.split("://", 1)[1], maxsplit=1)[0]
    if url.count("@") > 1 or url.count("@") != host_part.count("@"):
        return "an '@', '/', '?' or '#' in its user or password must be percent-encoded (%40, %2F, %3F, %23)"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "its host or port cannot be read"
    if not parts.hostname:
        return "it names no host"
    if port == 0:
        return "port 0 cannot be connected to"
    if parts.fragment:
        return "it must not have a fragment"
    return None


def _shown_postgres_url(url: str) -> str:
    """`postgresql://***@host:port/database`: what a message may say of a PostgreSQL URL (no user
    or password, whatever characters the password holds; no query, which may carry one too)."""
    return mask_url(url).split("?", 1)[0]  # masked first: a password may hold '?' itself


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


def _whole(raw: str | None, key: str, default: int) -> int:
    value = _number(raw, key, float(default), 1, MAX_UNITS)
    if not value.is_integer():
        raise SettingsError(f"stack config qianfan:{key} must be a whole number, got {show(raw)}")
    return int(value)


def _extra_models(raw: object) -> tuple[str, ...]:
    try:
        return parse_extra_models(raw)
    except ValueError as exc:
        raise SettingsError(f"stack config qianfan:extraModels: {exc}") from None


def _half_a_key_pair(given: Callable[[str], Any], missing: str) -> str:
    """Which half is missing, and where the other came from: a key left in the shell is a common cause."""
    present = "accessKey" if missing == "secretKey" else "secretKey"
    value = given(present)
    source = (
        f"{NAMESPACE}:{present}"
        if value is not None and str(value).strip()
        else f"{SETTINGS[present]} (in the environment)"
    )
    return (
        f"stack config {NAMESPACE}:{missing} is not set (nor {SETTINGS[missing]}), but {source} is: only half a key "
        f"pair is configured. Set it with `pulumi config set --secret {NAMESPACE}:{missing} "
        f"<{'SK' if missing == 'secretKey' else 'AK'}>` or export {SETTINGS[missing]}"
    )
