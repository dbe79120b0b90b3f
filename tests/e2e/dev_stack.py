"""The dev stack as the end-to-end tier reads it: its stack file's config, and a state as a
checkpoint would hold it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import yaml

from hostdriver import PROJECT_ROOT, ProviderHost
from hostdriver.program import Deployment

DEV_STACK_FILE = PROJECT_ROOT / "stacks" / "Pulumi.dev.yaml"

#: `run_host`: (label, config) -> a provider host for one rehearsed CLI run.
RunHost = Callable[[str, dict[str, str]], ProviderHost]


def dev_stack_config() -> dict[str, Any]:
    """The `config:` section of stacks/Pulumi.dev.yaml, as YAML reads it."""
    document = yaml.safe_load(DEV_STACK_FILE.read_text())
    config = document["config"]
    assert isinstance(config, dict), f"{DEV_STACK_FILE}: config is not a mapping"
    return config


def state_text(deployment: Deployment) -> str:
    """The state as a checkpoint would hold it (resources only: the config is ours, not the provider's)."""
    return json.dumps(
        [{"urn": r.urn, "id": r.id, "inputs": r.inputs, "outputs": r.outputs} for r in deployment.resources]
    )
