"""The qianfan-tpm program: one TPMQuota per entry of the stack's `quotas` list.

Stack config (stacks/Pulumi.<stack>.yaml) -> this program -> TPMQuota resources -> the provider.
Every mistake the program can see in the stack config — each bad entry and field, a setting no one
reads, a misspelt namespace, half a key pair — fails the run at once, one line each.
"""

from typing import Any

import pulumi
import pulumi.runtime
from pulumi.runtime import config as runtime_config

from providers import TPMQuota
from providers.stack_config import CONFIG_KEY, QuotaPlanError, read_stack_config


def stack_config() -> dict[str, Any]:
    """Every key of the stack config with its value. `pulumi.Config` reads one key at a time and
    cannot list them; the runtime's config map can: the language host fills it from PULUMI_CONFIG
    (also read here, through its public function), `set_all_config` under mocks and the automation API."""
    config = {**pulumi.runtime.get_config_env(), **runtime_config.CONFIG.get()}
    quotas = pulumi.runtime.get_config(CONFIG_KEY)  # as pulumi.Config reads it: PULUMI_CONFIG_<KEY> too
    if quotas is not None:
        config[CONFIG_KEY] = quotas
    return config


def main() -> None:
    try:
        plan = read_stack_config(stack_config())
    except QuotaPlanError as exc:
        raise pulumi.RunError(str(exc)) from None
    for entry in plan:
        quota = TPMQuota(
            entry.name,
            **entry.inputs,
            opts=pulumi.ResourceOptions(protect=entry.protect, delete_before_replace=entry.delete_before_replace),
        )
        pulumi.export(
            entry.name,
            {"instanceId": quota.instance_id, "status": quota.status, "tpm": quota.tpm, "rpm": quota.rpm},
        )


main()
