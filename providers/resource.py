"""TPMQuota: the resource users declare in their Pulumi program.

Its keywords and Output attributes are written out so that editors and type checkers know them;
everything else — which keyword maps to which wire name, what is computed — comes from the field
table (`fields.INPUTS`, `fields.OUTPUTS`), and a unit test holds this signature to that table.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import Resource

from .fields import INPUTS, OUTPUTS, PAYMENT_TIMING
from .tpm_quota import TPMQuotaProvider

#: Python attribute name -> wire (state) name, and back.
_WIRE_NAMES = {spec.python: spec.wire for spec in INPUTS} | {output.python: output.wire for output in OUTPUTS}
_PYTHON_NAMES = {wire: python for python, wire in _WIRE_NAMES.items()}


#: The resource's module and name: its type token is `pulumi-python:dynamic/qianfan:TPMQuota`.
MODULE, NAME = "qianfan", "TPMQuota"
TYPE = f"pulumi-python:dynamic/{MODULE}:{NAME}"


class TPMQuota(Resource, module=MODULE, name=NAME):
    """Tokens-per-minute quota for one Qianfan model, bought by the hour (post-paid).

    Changing `model` or `payment_timing` replaces the quota: Pulumi buys the new one before it
    releases the old one (two bills for a while) unless `delete_before_replace=True` is set in
    `opts`. `purchase_count`, `release_time` and `release_after` change in place; with
    `release_after`, the `release_time` Output is the instant it gave.
    """

    model: pulumi.Output[str]
    purchase_count: pulumi.Output[int]
    release_time: pulumi.Output[str | None]
    release_after: pulumi.Output[str | None]
    payment_timing: pulumi.Output[str]
    adopt_instance_id: pulumi.Output[str | None]
    owner_urn: pulumi.Output[str | None]
    instance_id: pulumi.Output[str]
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
        release_after: pulumi.Input[str] | None = None,
        payment_timing: pulumi.Input[str] = PAYMENT_TIMING,
        adopt_instance_id: pulumi.Input[str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        given = locals()
        props: dict[str, Any] = {spec.python: given[spec.python] for spec in INPUTS if not spec.internal}
        # Who this quota is, for the purchase ledger and the audit (never a diff).
        props["owner_urn"] = pulumi.resource.create_urn(resource_name, TYPE, parent=opts.parent if opts else None)
        # Outputs computed by the provider: declared (as None) so that they resolve as attributes.
        props.update({output.python: None for output in OUTPUTS})
        super().__init__(TPMQuotaProvider(), resource_name, props, opts)

    def translate_input_property(self, prop: str) -> str:
        return _WIRE_NAMES.get(prop, prop)

    def translate_output_property(self, prop: str) -> str:
        return _PYTHON_NAMES.get(prop, prop)
