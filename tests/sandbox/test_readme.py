"""The README's Sandbox section says what the code does: every error code, who decided it, every option."""

from __future__ import annotations

import re
from dataclasses import fields
from typing import Any

from qianfan_sandbox.__main__ import _STORED_OPTIONS
from qianfan_sandbox.errors import CATALOGUE
from qianfan_sandbox.faults import KINDS
from qianfan_sandbox.options import Options
from tests.sandbox.helpers import PROJECT_ROOT

SECTION = PROJECT_ROOT.joinpath("README.md").read_text(encoding="utf-8").split("\n## Sandbox\n", 1)[1]
ERROR_ROW = re.compile(r"^\| error `(\w+)` (\d{3}) \| .+ \| (documented by Baidu|sandbox's choice) \|$")
OPTION_ROW = re.compile(r"^\s*\| `(\w+)` \| `([^`]+)`")


def test_every_error_code_is_in_the_one_table_with_its_status_and_origin() -> None:
    rows = [ERROR_ROW.match(line) for line in SECTION.splitlines() if line.startswith("| error ")]
    assert all(rows), "an error row is not `| error `Code` STATUS | when | origin |`"
    listed = {row.group(1): (int(row.group(2)), row.group(3)) for row in rows if row}
    assert len(listed) == len(rows), "an error code is listed twice"
    assert listed == {code: (entry.status, entry.origin) for code, entry in CATALOGUE.items()}


def spelled(default: Any) -> str:
    """How the options table spells a default: `1` for 1.0, `none` for an empty list."""
    if isinstance(default, float):
        return f"{default:g}"
    if isinstance(default, tuple):
        return ", ".join(default) or "none"
    return str(default)


def test_every_option_is_listed_with_its_default_first() -> None:
    listed = {m.group(1): m.group(2) for m in map(OPTION_ROW.match, SECTION.splitlines()) if m}
    defaults = {f.name: f.default for f in fields(Options)}
    assert set(listed) == set(defaults)
    for name, default in defaults.items():
        assert listed[name] == spelled(default), name


def test_every_fault_kind_is_listed() -> None:
    faults_paragraph = SECTION.split("with kinds", 1)[1].split("Options:", 1)[0]
    named = set(re.findall(r"`(\w+)`", faults_paragraph))
    assert set(KINDS) <= named, set(KINDS) - named


def test_every_stored_command_line_option_is_named() -> None:
    for name in _STORED_OPTIONS:
        assert f"--{name.replace('_', '-')}" in SECTION, name


def test_the_section_names_the_package_not_the_old_copy() -> None:
    assert "python -m qianfan_sandbox" in SECTION
    assert "python -m providers.sandbox" not in SECTION
    assert "describe_mode" not in SECTION
