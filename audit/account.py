"""The account side: every instance Qianfan lists, model by model, through the provider's own client.

This is the audit's door to the provider's Qianfan pieces (`journal` is its door to the ledger),
and it imports only the stable ones (settings, client, deadline, list_instances, model ids, errors,
the release-time normaliser), so the audit talks to Qianfan exactly as `pulumi refresh` does:
same signing, same endpoint rules, same retries of throttling and 5xx within one deadline, same
parsing of Describe's sparse answers.

Read-only by construction: the only client method called is `describe` (DescribeTPMResource).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from providers.client import DESCRIBE, QianfanClient
from providers.deadline import Deadline
from providers.errors import Kind, QianfanError
from providers.fields import RPM_PER_UNIT, TPM_PER_UNIT
from providers.instances import Instance
from providers.listings import list_instances
from providers.models import DOCUMENTED_MODELS, parse_extra_models
from providers.release_time import normalise_if_possible
from providers.secrets import redact
from providers.settings import ENDPOINT_ENV, LEDGER_ENV, MAX_TIMEOUT_SECONDS, Settings, load_settings

from .records import LiveInstance

__all__ = [
    "DOCUMENTED_MODELS",
    "LEDGER_ENV",
    "MAX_TIMEOUT_SECONDS",
    "Account",
    "AccountError",
    "AuditIncomplete",
    "normalise_time",
    "parse_model_list",
]

#: Failures that concern one model only (Qianfan refused the request for that model): the other
#: models are still asked, so one run names every model to leave out. After any other failure
#: (keys, throttling or errors until the deadline, an endpoint that cannot be reached) the next
#: model cannot go better, and no other model is asked.
_PER_MODEL = (Kind.REJECTED, Kind.NOT_FOUND)

#: How long connections that cannot be made at all (refused, no such host) are tried again before
#: the audit stops, if --timeout-seconds is longer: an endpoint or proxy that restarts is back
#: within seconds, a wrong URL never is, and a user at a terminal need not wait the whole deadline.
UNREACHABLE_GRACE_SECONDS = 10.0

#: The advice after Qianfan refused the keys: the audit reads them from the environment only, and
#: needs only read access (the provider's own advice names stack config and write policies).
KEYS_HINT = (
    "check QIANFAN_ACCESS_KEY and QIANFAN_SECRET_KEY: they must be one valid pair, and the key needs "
    "QianfanServiceReadAccessPolicy (read-only access is enough for the audit)"
)
_NO_KEYS = (
    "no Qianfan credentials: export QIANFAN_ACCESS_KEY and QIANFAN_SECRET_KEY "
    "(a key with QianfanServiceReadAccessPolicy is enough), or use --endpoint sandbox"
)
_HALF_PAIR = (
    "only half a key pair: {missing} is not set ({present} is); export both "
    "(a key with QianfanServiceReadAccessPolicy is enough)"
)
_SHOWN_MODELS = 4


class AccountError(Exception):
    """The account cannot be reached as configured; one line, no secret."""


class AuditIncomplete(Exception):
    """Some models could not be listed; `lines` says which and why (one line per cause, no secret)."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


class _GarbageAnswer(Exception):
    """A Describe answer that is not a list of instances: reading it as "none" would invent findings."""


class _Unreachable(Exception):
    """No connection to the endpoint could be made for UNREACHABLE_GRACE_SECONDS: stop listing."""


class _Reachability:
    """Whether the endpoint can be connected to at all, learnt from every model's attempts together.

    All models go to one endpoint, so a refused connection for one model is one for all: the streak
    of attempts that made no connection is counted across models, and any answer (even an error)
    ends it.
    """

    def __init__(self, grace_seconds: float) -> None:
        self._grace = grace_seconds
        self._lock = threading.Lock()
        self._since: float | None = None
        self.attempts = 0
        self.waited = 0.0

    def connected(self) -> None:
        with self._lock:
            self._since, self.attempts, self.waited = None, 0, 0.0

    def not_connected(self) -> bool:
        """Count an attempt that made no connection; True once such attempts have lasted the grace."""
        now = time.monotonic()
        with self._lock:
            if self._since is None:
                self._since = now
            self.attempts += 1
            self.waited = now - self._since
            return self.waited >= self._grace


def normalise_time(text: str | None) -> str | None:
    """A release time in the one spelling the provider stores (RFC3339, +08:00), when it is one."""
    return None if text is None else normalise_if_possible(text)


def parse_model_list(raw: str | None) -> tuple[str, ...]:
    """`a,b` (or a JSON list) as model ids, the way `qianfan:extraModels` is read."""
    return parse_extra_models(raw)


class _ReadOnlyClient(QianfanClient):
    """The provider's client, refusing Describe answers the parser would silently read as empty, and
    giving up on an endpoint nothing can be connected to once `reach` says so."""

    def __init__(self, settings: Settings, reach: _Reachability) -> None:
        super().__init__(settings)
        self._reach = reach

    def describe(self, model: str, deadline: Deadline, *, retry: bool = True, **extra: Any) -> Any:
        once = super().describe

        def attempt() -> Any:
            try:
                answer = once(model, deadline, retry=False, **extra)
            except QianfanError as err:
                if err.not_connected is None:
                    self._reach.connected()
                elif self._reach.not_connected():
                    raise _Unreachable(err.not_connected) from None
                raise
            self._reach.connected()
            return answer

        result = self.with_retries(DESCRIBE, attempt, deadline) if retry else attempt()
        problem = _shape_problem(result)
        if problem:
            raise _GarbageAnswer(f"{DESCRIBE} answered {problem}")
        return result


def _shape_problem(result: Any) -> str | None:
    """Why `result` cannot be Baidu's `{"instances": [...]}` (nor a bare list of instances), else None.

    `{"instances": null}` and `{}` are read as "no instances" (what a server that drops empty lists
    sends); an object holding lists or objects under other names is not, since it may hold
    instances this audit cannot see.
    """
    items: Any
    if isinstance(result, list):
        items = result
    elif isinstance(result, dict):
        items = result.get("instances")
        if items is None:
            nested = sorted(str(k) for k, v in result.items() if isinstance(v, (list, dict)))
            if nested:
                return f"an object without an 'instances' list (it holds {', '.join(nested[:5])})"
            items = []
        elif not isinstance(items, list):
            return f"'instances' as a {type(items).__name__}, not a list"
    else:
        return f"a {type(result).__name__}, not a list of instances"
    for position, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("instanceId"), str) or not item["instanceId"]:
            return f"an item without an instanceId (instances[{position}])"
    return None


@dataclass(frozen=True)
class Account:
    """One Qianfan account (or sandbox) as the provider would reach it."""

    settings: Settings

    @classmethod
    def connect(
        cls,
        environ: Mapping[str, str],
        *,
        endpoint: str | None,
        sandbox_path: str | None,
        extra_models: str | None,
        timeout_seconds: float,
        ledger: str | None = None,
    ) -> Account:
        """Settings as the provider reads them: these options first, then the environment.

        `ledger`: None reads no ledger (QIANFAN_TPM_LEDGER is then ignored); "" the one the provider
        would use with no stack config (QIANFAN_TPM_LEDGER, else its default file); else its location.
        """
        config = {
            "qianfan:endpoint": endpoint,
            "qianfan:sandboxPath": sandbox_path,
            "qianfan:extraModels": extra_models,
            "qianfan:timeoutSeconds": str(timeout_seconds),
            "qianfan:ledger": ledger or None,
        }
        if ledger is None:
            environ = {name: value for name, value in environ.items() if name != LEDGER_ENV}
        # The audit reads keys from the environment only: its own words for half a pair, before the
        # provider's (which speak of stack config).
        access_key, secret_key = (
            environ.get(name, "").strip() for name in ("QIANFAN_ACCESS_KEY", "QIANFAN_SECRET_KEY")
        )
        if bool(access_key) != bool(secret_key):
            names = ("QIANFAN_SECRET_KEY", "QIANFAN_ACCESS_KEY")
            missing, present = names if access_key else names[::-1]
            raise AccountError(_HALF_PAIR.format(missing=missing, present=present))
        try:
            settings = load_settings({key: value for key, value in config.items() if value is not None}, environ)
        except ValueError as exc:
            source = "--endpoint" if endpoint else "QIANFAN_CONSOLE_API_BASE_URL"
            message = str(exc).replace("stack config qianfan:endpoint (or QIANFAN_CONSOLE_API_BASE_URL)", source)
            message = message.replace(f"stack config qianfan:ledger (or {LEDGER_ENV})", f"--ledger (or {LEDGER_ENV})")
            raise AccountError(message) from None
        if settings.sandbox:
            path = Path(settings.sandbox_path).expanduser()
            if not path.is_file():
                where = "" if path.is_absolute() else f" (that is {path.absolute()})"
                raise AccountError(
                    f"--sandbox-path {settings.sandbox_path}{where}: no sandbox database there (the dev stack "
                    "creates it in its project directory on its first `pulumi up`); the audit never creates one"
                )
        if not settings.sandbox and not settings.access_key:
            raise AccountError(_NO_KEYS)
        return cls(settings)

    @property
    def endpoint(self) -> str:
        return self.settings.endpoint

    def scrub(self, text: str) -> str:
        """Any configured key, and the ledger's URL and password, replaced by ***: the last guard
        before a line is printed."""
        return redact(text, self.settings)

    def list_models(self, models: Iterable[str], concurrency: int) -> dict[str, list[LiveInstance]]:
        """Every instance of every model, `concurrency` models at a time, within one deadline.

        Raises AuditIncomplete unless every model was listed: a model missing from the answer
        would turn its stacks' quotas into false "missing" findings.
        """
        wanted = list(dict.fromkeys(models))
        reach = _Reachability(min(UNREACHABLE_GRACE_SECONDS, self.settings.timeout_seconds))
        client = _ReadOnlyClient(self.settings, reach)
        deadline = Deadline(self.settings.timeout_seconds)
        stop = threading.Event()
        listed: dict[str, list[LiveInstance]] = {}
        failures: dict[str, _Failure] = {}

        def one(model: str) -> None:
            if stop.is_set():
                return
            try:
                found = list(list_instances(client, model, deadline).instances)
            except (QianfanError, _Unreachable, _GarbageAnswer) as exc:
                failure = self._failure(exc, reach)
                if not failure.per_model:
                    stop.set()
                failures[model] = failure
                return
            listed[model] = [_live(model, instance) for instance in found]

        if wanted:
            with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(wanted)))) as pool:
                list(pool.map(one, wanted))
        if failures or len(listed) != len(wanted):
            unexplained = f"audit incomplete, nothing is reported: {len(wanted) - len(listed)} model(s) not listed"
            lines = _report(wanted, listed, failures) or [unexplained]
            raise AuditIncomplete([self.scrub(line) for line in lines])
        return {model: listed[model] for model in wanted}

    def _failure(self, exc: QianfanError | _Unreachable | _GarbageAnswer, reach: _Reachability) -> _Failure:
        """What went wrong for one model, as the audit says it (its options, its advice), no secret."""
        if isinstance(exc, _GarbageAnswer):
            return _Failure(("garbage", str(exc)), str(exc), per_model=True)
        if isinstance(exc, _Unreachable) or exc.not_connected is not None:
            # Stopped by the grace period, or by the deadline when that came first.
            reason, limit = (str(exc), "") if isinstance(exc, _Unreachable) else (exc.not_connected, self._limit())
            text = (
                f"cannot reach {self.endpoint} ({reason}; {reach.attempts} attempt(s) in {reach.waited:.1f}s{limit}) "
                f"— check --endpoint (or {ENDPOINT_ENV}) and the network"
            )
            return _Failure(("unreachable", reason), text, per_model=False)
        hint = exc.hint.replace("qianfan:timeoutSeconds", "--timeout-seconds")
        if exc.kind is Kind.AUTH and exc.code != "RequestExpired":
            hint = KEYS_HINT
        if exc.kind is Kind.REJECTED:
            hint = "if Qianfan no longer offers this model, leave it out with --models"
        text = str(exc.replace(hint=hint))
        return _Failure((exc.kind, exc.status, exc.code, exc.message), text, per_model=exc.kind in _PER_MODEL)

    def _limit(self) -> str:
        return f", the limit set by --timeout-seconds ({self.settings.timeout_seconds:g}s)"


@dataclass(frozen=True)
class _Failure:
    """One model's failure: `key` is its cause (models that failed alike share one line)."""

    key: tuple[Any, ...]
    text: str
    per_model: bool


def _report(wanted: list[str], listed: Mapping[str, object], failures: Mapping[str, _Failure]) -> list[str]:
    """One line per distinct cause, naming the models it kept unlisted; the models never asked are
    counted with the cause that stopped the audit."""
    by_cause: dict[tuple[Any, ...], list[str]] = {}
    for model in wanted:
        if model in failures:
            by_cause.setdefault(failures[model].key, []).append(model)
    not_asked = len([m for m in wanted if m not in listed and m not in failures])
    stopping = [key for key, models in by_cause.items() if not failures[models[0]].per_model]
    lines = []
    for key, models in by_cause.items():
        skipped = not_asked if stopping and key == stopping[-1] else 0
        if len(models) + skipped == len(wanted) > 1:
            scope = f"none of the {len(wanted)} models listed"
        elif len(models) == 1:
            scope = f"model {models[0]} not listed"
        else:
            more = len(models) - _SHOWN_MODELS
            shown = ", ".join(models[:_SHOWN_MODELS]) + (f" and {more} more" if more > 0 else "")
            scope = f"{len(models)} models not listed ({shown})"
        if skipped and len(models) + skipped < len(wanted):
            scope += f", {skipped} other(s) not asked after that"
        lines.append(f"audit incomplete, nothing is reported: {scope}: {failures[models[0]].text}")
    return lines


def _live(model: str, instance: Instance) -> LiveInstance:
    units = instance.units
    return LiveInstance(
        instance_id=instance.instance_id,
        model=model,
        status=instance.status,
        gone=instance.gone,
        units=units,
        tpm=None if units is None else units * TPM_PER_UNIT,
        rpm=None if units is None else units * RPM_PER_UNIT,
        release_time=instance.release_time,
        release_known=instance.release_time_known,
        reported_model=instance.model,
        start_time=instance.start_time,
    )
