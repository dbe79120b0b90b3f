"""TPMQuota: the resource users declare in their Pulumi program."""

from __future__ import annotations

import pulumi
from pulumi.dynamic import Resource

from .tpm_quota import TPMQuotaProvider

#: Python attribute name -> wire (state) name, both ways.
_WIRE_NAMES = {
    "model": "model",
    "purchase_count": "purchaseCount",
    "release_time": "releaseTime",
    "payment_timing": "paymentTiming",
    "adopt_instance_id": "adoptInstanceId",
    "instance_id": "instanceId",
    "status": "status",
    "tpm": "tpm",
    "rpm": "rpm",
}
_PYTHON_NAMES = {wire: py for py, wire in _WIRE_NAMES.items()}


class TPMQuota(Resource, module="qianfan", name="TPMQuota"):
    """Tokens-per-minute quota for one Qianfan model, bought by the hour (post-paid).

    Changing `model` or `payment_timing` replaces the quota: Pulumi buys the new one before it
    releases the old one (two bills for a while) unless `delete_before_replace=True` is set in
    `opts`. `purchase_count` and `release_time` change in place.
    """

    instance_id: pulumi.Output[str]
    model: pulumi.Output[str]
    purchase_count: pulumi.Output[int]
    release_time: pulumi.Output[str | None]
    payment_timing: pulumi.Output[str]
    adopt_instance_id: pulumi.Output[str | None]
    status: pulumi.Output[str]
    tpm: pulumi.Output[int]
    rpm: pulumi.Output[int]

    def __init__(
        self,
        resource_name: str,
        *,
        model: pulumi.Input[str],
        purchase_count: pulumi.Input[int],
        release_time: pulumi.Input[str] | None = None,
        payment_timing: pulumi.Input[str] = "Postpaid",
        adopt_instance_id: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            "model": model,
            "purchase_count": purchase_count,
            "release_time": release_time,
            "payment_timing": payment_timing,
            "adopt_instance_id": adopt_instance_id,
            # Outputs computed by the provider: declared so that they resolve as attributes.
            "instance_id": None,
            "status": None,
            "tpm": None,
            "rpm": None,
        }
        super().__init__(TPMQuotaProvider(), resource_name, props, opts)

    def translate_input_property(self, prop: str) -> str:
        return _WIRE_NAMES.get(prop, prop)

    def translate_output_property(self, prop: str) -> str:
        return _PYTHON_NAMES.get(prop, prop)
