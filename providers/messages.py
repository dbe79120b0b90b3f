"""How values are quoted in messages: whatever a user typed, the message stays readable."""

from __future__ import annotations

import sys

_SHOWN = 80


def show(value: object) -> str:
    """`repr(value)`, cut short so that a 100 kB input is not echoed whole into an error."""
    text = repr(value)
    if len(text) <= _SHOWN:
        return text
    return f"{text[:_SHOWN]}… ({len(text)} characters)"


def warn(text: str) -> None:
    """A warning the user should read although the operation goes on; the provider host prints
    its stderr beside the resource. Only texts built from redacted errors may be passed."""
    print(f"warning: {' '.join(text.split())}", file=sys.stderr, flush=True)
