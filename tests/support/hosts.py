"""Provider hosts against an embedded sandbox: their configuration, and the scan of everything that
left the provider (RPC answers, error texts, the host's stderr, the request bodies the sandbox
received) for keys. The fixtures that start such hosts are in tests/conftest.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from hostdriver import ProviderHost
from qianfan_sandbox import SandboxControl
from tests.support.keys import ACCESS_KEY, SECRET_KEY, TEST_KEYS, assert_no_secrets

#: `make_host`: (config=None, env=None, stack="dev", **overrides) -> a configured host.
HostFactory = Callable[..., ProviderHost]


def sandbox_config(db: Path, **overrides: str) -> dict[str, str]:
    """A provider configuration for the embedded sandbox at `db`, with the test keys."""
    config = {
        "qianfan:endpoint": "sandbox",
        "qianfan:sandboxPath": str(db),
        "qianfan:accessKey": ACCESS_KEY,
        "qianfan:secretKey": SECRET_KEY,
        "qianfan:settleSeconds": "2",
        "qianfan:timeoutSeconds": "30",
        # One host often stands for several `pulumi` runs here (up, then a console change, then
        # refresh), which real runs do in separate hosts: no listing is shared between steps.
        # The tests of sharing itself, and the concurrency trials, turn it back on.
        "qianfan:listingMaxAgeSeconds": "0",
    }
    config.update(overrides)
    return config


def emitted_texts(host: ProviderHost, label: str = "") -> dict[str, str]:
    """What a host emitted: every RPC answer and error text, and its stderr."""
    prefix = f"{label} " if label else ""
    texts = {f"{prefix}host RPC answer #{i}": t for i, t in enumerate(host.transcript)}
    texts[f"{prefix}host stderr"] = host.stderr_text()
    return texts


def received_texts(db: Path | None) -> dict[str, str]:
    """The request bodies the sandbox at `db` received (none if it was never started)."""
    if db is None or not db.exists():
        return {}
    requests = SandboxControl(db).requests()
    return {
        f"request body #{i} ({request['action']})": json.dumps(request["body"]) for i, request in enumerate(requests)
    }


def scan_host(host: ProviderHost, db: Path | None, keys: Mapping[str, str] = TEST_KEYS) -> None:
    assert_no_secrets({**emitted_texts(host), **received_texts(db)}, keys)


@contextmanager
def plan_only_host(root: Path, **overrides: str) -> Iterator[ProviderHost]:
    """A host for Check/Diff only: at the end, scanned for secrets and proven to have made no API
    call (the embedded sandbox would have created its database on the first one)."""
    db = root / "sandbox.sqlite3"
    host = ProviderHost(root / "host.stderr")
    try:
        host.configure(sandbox_config(db, **overrides))
        yield host
    finally:
        host.close()
    scan_host(host, db)
    assert not db.exists(), "Check/Diff made an API call (the sandbox was started)"
