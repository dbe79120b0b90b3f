"""The account side: every instance Qianfan lists, model by model, through the provider's own client.

This is the only module of `audit/` that imports the provider, and only its stable pieces
(settings, client, deadline, list_instances, model ids, errors, the release-time normaliser), so
the audit talks to Qianfan exactly as `pulumi refresh` does: same signing, same endpoint rules,
same retries of throttling and 5xx within one deadline, same parsing of Describe's sparse answers.

Read-only by construction: the only client method called is `describe` (DescribeTPMResource).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from providers.client import QianfanClient
from providers.deadline import Deadline
from providers.errors import Kind, QianfanError
from providers.fields import RPM_PER_UNIT, TPM_PER_UNIT
from providers.instances import Instance
from providers.listings import list_instances
from providers.models import DOCUMENTED_MODELS, parse_extra_models
from providers.release_time import normalise_if_possible
from providers.settings import Settings, load_settings

from .records import LiveInstance

__all__ = [
    "DOCUMENTED_MODELS",
    "Account",
    "AccountError",
    "AuditIncomplete",
    "normalise_time",
    "parse_model_list",
]

#: Kinds after which asking about the next model cannot go better: stop instead of repeating it.
_HOPELESS = (Kind.AUTH, Kind.CONFIG)


class AccountError(Exception):
    """The account cannot be reached as configured; one line, no secret."""


class AuditIncomplete(Exception):
    """Some models could not be listed; `lines` says which and why (one line each, no secret)."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = lines


class _GarbageAnswer(Exception):
    """A Describe answer that is not a list of instances: reading it as "none" would invent findings."""


def normalise_time(text: str | None) -> str | None:
    """A release time in the one spelling the provider stores (RFC3339, +08:00), when it is one."""
    return None if text is None else normalise_if_possible(text)


def parse_model_list(raw: str | None) -> tuple[str, ...]:
    """`a,b` (or a JSON list) as model ids, the way `qianfan:extraModels` is read."""
    return parse_extra_models(raw)


class _ReadOnlyClient(QianfanClient):
    """The provider's client, refusing Describe answers the parser would silently read as empty."""

    def describe(self, model: str, deadline: Deadline, *, retry: bool = True, **extra: Any) -> Any:
        result = super().describe(model, deadline, retry=retry, **extra)
        problem = _shape_problem(result)
        if problem:
            raise _GarbageAnswer(f"DescribeTPMResource for {model} answered {problem}")
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
    ) -> Account:
        """Settings as the provider reads them: these options first, then the environment."""
        config = {
            "qianfan:endpoint": endpoint,
            "qianfan:sandboxPath": sandbox_path,
            "qianfan:extraModels": extra_models,
            "qianfan:timeoutSeconds": str(timeout_seconds),
        }
        try:
            settings = load_settings({key: value for key, value in config.items() if value is not None}, environ)
        except ValueError as exc:
            source = "--endpoint" if endpoint else "QIANFAN_CONSOLE_API_BASE_URL"
            message = str(exc).replace("stack config qianfan:endpoint (or QIANFAN_CONSOLE_API_BASE_URL)", source)
            raise AccountError(message) from None
        if settings.sandbox:
            path = Path(settings.sandbox_path).expanduser()
            if not path.is_file():
                raise AccountError(
                    f"--sandbox-path {settings.sandbox_path}: no sandbox database there (the dev stack "
                    "creates it on its first `pulumi up`); the audit never creates one"
                )
        elif not (settings.access_key and settings.secret_key):
            raise AccountError(
                "no Qianfan credentials: export QIANFAN_ACCESS_KEY and QIANFAN_SECRET_KEY "
                "(a key with QianfanServiceReadAccessPolicy is enough), or use --endpoint sandbox"
            )
        return cls(settings)

    @property
    def endpoint(self) -> str:
        return self.settings.endpoint

    def scrub(self, text: str) -> str:
        """Any configured key replaced by ***: the last guard before a line is printed."""
        for secret in (self.settings.access_key, self.settings.secret_key):
            value = secret.reveal() if secret else ""
            if value:
                text = text.replace(value, "***")
        return text

    def list_models(self, models: Iterable[str], concurrency: int) -> dict[str, list[LiveInstance]]:
        """Every instance of every model, `concurrency` models at a time, within one deadline.

        Raises AuditIncomplete unless every model was listed: a model missing from the answer
        would turn its stacks' quotas into false "missing" findings.
        """
        wanted = list(dict.fromkeys(models))
        client = _ReadOnlyClient(self.settings)
        deadline = Deadline(self.settings.timeout_seconds)
        stop = threading.Event()
        listed: dict[str, list[LiveInstance]] = {}
        failures: dict[str, str] = {}

        def one(model: str) -> None:
            if stop.is_set():
                return
            try:
                found = list(list_instances(client, model, deadline).instances)
            except QianfanError as err:
                if err.kind in _HOPELESS:
                    stop.set()
                text = str(err).replace("qianfan:timeoutSeconds", "--timeout-seconds")
                if err.kind is Kind.REJECTED:
                    text += " (if Qianfan no longer offers this model, leave it out with --models)"
                failures[model] = text
                return
            except _GarbageAnswer as exc:
                failures[model] = str(exc)
                return
            listed[model] = [_live(model, instance) for instance in found]

        if wanted:
            with ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(wanted)))) as pool:
                list(pool.map(one, wanted))
        if failures or len(listed) != len(wanted):
            lines = [self.scrub(f"model {model}: {failures[model]}") for model in wanted if model in failures]
            skipped = [m for m in wanted if m not in listed and m not in failures]
            if skipped:
                lines.append(f"{len(skipped)} other model(s) not asked after that failure")
            raise AuditIncomplete(lines)
        return {model: listed[model] for model in wanted}


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
    )
