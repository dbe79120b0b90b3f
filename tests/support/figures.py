"""Figures the tests measure, printed as one table at the end of the run (see conftest).

docs/design/failure-semantics.md quotes these; they come from the run, not from memory.
"""

from __future__ import annotations

FIGURES: list[tuple[str, str, str]] = []


def record(section: str, name: str, value: object) -> None:
    FIGURES.append((section, name, str(value)))


def table() -> list[str]:
    if not FIGURES:
        return []
    width = max(len(name) for _, name, _ in FIGURES)
    lines: list[str] = []
    section = None
    for sec, name, value in FIGURES:
        if sec != section:
            lines.append(f"[{sec}]")
            section = sec
        lines.append(f"  {name.ljust(width)}  {value}")
    return lines
