"""How values are quoted in messages: whatever a user typed, the message stays readable.

`show` is the one place a user's value is echoed into an error, so it is where "as written" is
decided: Pulumi's wire carries every number as a float, and a `purchaseCount: -3` arrives as
`-3.0` — the message says `got -3`. Other values keep `repr`'s spelling (strings in quotes, `True`,
`nan`, `1e+30`), one line, cut short.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence

_SHOWN = 80
_CONTAINERS = (list, tuple, dict)
#: How each container shows itself when met again inside itself, as `repr` does.
_AGAIN: dict[type, str] = {list: "[...]", tuple: "(...)", dict: "{...}"}


class _Text(str):
    """A piece of punctuation, as opposed to a value still to be shown."""


def show(value: object) -> str:
    """The value as written, cut short so that a 100 kB input is not echoed whole into an error."""
    kept: list[str] = []
    length = 0
    for piece in _pieces(value):
        if length <= _SHOWN:
            kept.append(piece)
        length += len(piece)
    return _cut("".join(kept), length)


def show_name(name: str) -> str:
    """A name (a config key) that is not plain ASCII, with every other character escaped: a
    look-alike `qіanfan` (Cyrillic і) must not read as the `qianfan` it is not."""
    text = ascii(name)
    return _cut(text[: _SHOWN + 1], len(text))


def _cut(text: str, length: int) -> str:
    if length <= _SHOWN:
        return text
    return f"{text[:_SHOWN]}… ({length} characters)"


def _scalar(value: object) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int of more than 4300 digits (sys.set_int_max_str_digits) has no repr
        return f"<a {type(value).__name__} too long to show>"
    # Exactly float: a subclass (numpy's, say) has a repr of its own to keep.
    if type(value) is float and text.endswith(".0"):
        return text[:-2]  # an integral number of ordinary size, as the user wrote it (1e+30 keeps its form)
    return text


def _pieces(value: object) -> Iterator[str]:
    """The text of `value` piece by piece. Nesting depth is the user's input, so this walks with a
    stack of its own rather than recursing (a list 100,000 deep must not raise RecursionError)."""
    end = object()
    stack: list[tuple[Iterator[object], int]] = [(iter((value,)), 0)]
    showing: set[int] = set()  # the containers being shown, for `[...]` when one contains itself
    while stack:
        item = next(stack[-1][0], end)
        if item is end:
            showing.discard(stack.pop()[1])
        elif isinstance(item, _Text):
            yield item
        elif type(item) in _CONTAINERS:
            if id(item) in showing:
                yield _AGAIN[type(item)]
            else:
                stack.append((_parts(item), id(item)))
                showing.add(id(item))
        else:
            yield _scalar(item)


def _parts(container: object) -> Iterator[object]:
    if isinstance(container, dict):
        yield _Text("{")
        for index, (key, item) in enumerate(container.items()):
            if index:
                yield _Text(", ")
            yield key
            yield _Text(": ")
            yield item
        yield _Text("}")
        return
    assert isinstance(container, list | tuple)
    yield _Text("[" if isinstance(container, list) else "(")
    for index, item in enumerate(container):
        if index:
            yield _Text(", ")
        yield item
    if isinstance(container, tuple):
        yield _Text(",)" if len(container) == 1 else ")")
    else:
        yield _Text("]")


#: How many problems one report lists; the rest are counted (a generated list may hold thousands).
MAX_LISTED = 30


def listed(problems: Sequence[str]) -> list[str]:
    """The problems to print, one line each: the first MAX_LISTED, then how many more there are."""
    if len(problems) <= MAX_LISTED:
        return list(problems)
    return [*problems[:MAX_LISTED], f"… and {len(problems) - MAX_LISTED} more problems"]


#: How alike a mistyped name and the one it meant are at least (difflib's ratio, case ignored).
NAME_CUTOFF = 0.6


def likeness(typed: str, name: str) -> float:
    """How alike a name the user typed is to a known one, case ignored (difflib's ratio, 0 to 1)."""
    import difflib  # only ever on a mistake: not part of every preview's start-up

    return difflib.SequenceMatcher(None, typed.lower()[:100], name.lower()).ratio()


def closest(typed: str, names: Iterable[str]) -> str | None:
    """The known name a typo most likely meant, if any is alike enough."""
    scored = [(likeness(typed, name), name) for name in names]
    best = max(scored, default=(0.0, ""), key=lambda pair: pair[0])
    return best[1] if best[0] >= NAME_CUTOFF else None


def warn(text: str) -> None:
    """A warning the user should read although the operation goes on; the provider host prints
    its stderr beside the resource. Only texts built from redacted errors may be passed."""
    print(f"warning: {' '.join(text.split())}", file=sys.stderr, flush=True)
