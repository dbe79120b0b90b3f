"""The sandbox's page (docs/sandbox.md) says what the code does: every error code, who decided it,
every option with its default, every fault kind."""

from __future__ import annotations

import re
from dataclasses import fields
from typing import Any

from hostdriver import PROJECT_ROOT
from qianfan_sandbox.__main__ import _STORED_OPTIONS
from qianfan_sandbox.errors import CATALOGUE
from qianfan_sandbox.faults import KINDS
from qianfan_sandbox.options import Options

PAGE = PROJECT_ROOT.joinpath("docs", "sandbox.md").read_text(encoding="utf-8")
ERROR_ROW = re.compile(r"^\| error `(\w+)` (\d{3}) \| .+ \| (documented by Baidu|sandbox's choice) \|$")
NAMED_ROW = re.compile(r"^\| `(\w+)` \| (.+?) \|")


def section(heading: str) -> list[str]:
    """The lines under one heading of the page, up to the next heading of the same or a higher level."""
    lines = PAGE.splitlines()
    assert heading in lines, f"docs/sandbox.md has no {heading!r} heading"
    start = lines.index(heading) + 1
    level = heading.split(" ", 1)[0]
    end = next(
        (i for i in range(start, len(lines)) if re.match(rf"^#{{1,{len(level)}}} ", lines[i])),
        len(lines),
    )
    return lines[start:end]


def test_every_error_code_is_in_the_one_table_with_its_status_and_origin() -> None:
    rows = [ERROR_ROW.match(line) for line in PAGE.splitlines() if line.startswith("| error ")]
    assert all(rows), "an error row is not `| error `Code` STATUS | when | origin |`"
    listed = {row.group(1): (int(row.group(2)), row.group(3)) for row in rows if row}
    assert len(listed) == len(rows), "an error code is listed twice"
    assert listed == {code: (entry.status, entry.origin) for code, entry in CATALOGUE.items()}


def spelled(default: Any) -> str:
    """How the options table spells a default: `1` for 1.0, every digit of a long one, `none` for an empty list."""
    if isinstance(default, float):
        return f"{default:g}" if default < 1e6 else f"{default:.0f}"
    if isinstance(default, tuple):
        return ", ".join(default) or "none"
    return str(default)


def test_every_option_is_listed_with_its_default_first() -> None:
    rows = [m for m in map(NAMED_ROW.match, section("### Options")) if m]
    listed = {m.group(1): m.group(2).split("`")[1] for m in rows}
    defaults = {f.name: f.default for f in fields(Options)}
    assert set(listed) == set(defaults)
    for name, default in defaults.items():
        assert listed[name] == spelled(default), name


def test_every_stored_command_line_option_is_named() -> None:
    running = "\n".join(section("## Running it"))
    for name in _STORED_OPTIONS:
        assert f"--{name.replace('_', '-')}" in running, name


def test_every_fault_kind_is_listed_once() -> None:
    rows = [m.group(1) for m in map(NAMED_ROW.match, section("### Faults")) if m]
    assert sorted(rows) == sorted(KINDS)


def test_the_page_names_the_package_not_the_old_copy() -> None:
    assert "python -m qianfan_sandbox" in PAGE
    assert "python -m providers.sandbox" not in PAGE
    assert "describe_mode" not in PAGE
