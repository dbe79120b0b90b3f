"""The qianfan-tpm program: one TPMQuota per entry of the stack's `quotas` list.

Stack config (stacks/Pulumi.<stack>.yaml) -> this program -> TPMQuota resources -> the provider.
"""

import pulumi

from providers import TPMQuota
from providers.stack_config import QuotaPlanError, parse_quota_plan


def main() -> None:
    try:
        plan = parse_quota_plan(pulumi.Config().require_object("quotas"))
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
