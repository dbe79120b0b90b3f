"""Malformed quota lists, for the parser alone (test_stack_config.py) and through the program
(test_program.py): the same lists, the same message."""

from __future__ import annotations

from typing import Any

CHAT = {"name": "chat", "model": "ernie-speed-8k", "purchaseCount": 1}

#: (quota list, a fragment of the error)
MALFORMED: list[tuple[Any, str]] = [
    ({"name": "x"}, "must be a list"),
    (["chat"], "qianfan-tpm:quotas[0]: entry must be an object"),
    ([{"model": "ernie-speed-8k", "purchaseCount": 1}], "qianfan-tpm:quotas[0]: name is required"),
    ([{"name": "chat", "purchaseCount": 1}], "qianfan-tpm:quotas[0] ('chat'): model is required"),
    ([{**CHAT, "purchaseCount": 1.5}], "('chat'): purchaseCount must be a whole number"),
    ([{**CHAT, "releaseTime": "soon"}], "('chat'): releaseTime 'soon' is not a time"),
    ([{**CHAT, "protect": "yes"}], "('chat'): protect must be true or false"),
    ([{"name": "chat", "model": "ernie-speed-8k", "purchasecount": 1}], "('chat'): purchasecount is not a quota field"),
    (
        [{**CHAT, "name": "a"}, {"name": "a", "model": "ernie-lite-8k", "purchaseCount": 1}],
        "qianfan-tpm:quotas[1] ('a'): name is used by an earlier entry",
    ),
]
