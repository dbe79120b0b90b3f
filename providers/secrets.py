"""Secrets and their scrubbing: a value that never shows itself, and the last line of defence.

Every text that leaves the provider — an error's fields, a requestId kept in the journal, a ledger
driver's message — is scrubbed of every configured secret (the keys, a ledger URL and its password)
before it is shown. Errors, the client and the ledger share this small piece; none of them needs
the settings themselves for it.
"""

from __future__ import annotations

from typing import Any, Protocol


class Secret:
    """A string that never shows itself in repr, str or f-strings (tracebacks print those)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:
        raise TypeError("a Secret is never pickled: it would end up in Pulumi state")


class HasSecrets(Protocol):
    """Whatever knows the secrets to scrub (the provider's settings)."""

    @property
    def redactions(self) -> tuple[Secret, ...]: ...


def redact(text: str, holder: HasSecrets) -> str:
    """Replace any configured secret that appears in text; the last line of defence for errors."""
    for secret in holder.redactions:
        value = secret.reveal()
        if value and value in text:
            text = text.replace(value, "***")
    return text
