"""The test suite shares code through one door: what several tiers use lives in tests/support.

A tier (`tests/<tier>/`) imports from tests/support and from its own tier's helper modules, never
from another tier; nothing imports a conftest (pytest loads those itself, and an imported conftest
is a second copy of its module) or a test module (whose tests would be collected twice); and
tests/support imports no tier. The scan reads every `tests/**.py` file's imports, without running them.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
SUPPORT = "support"


def importer_of(path: Path) -> tuple[str, ...]:
    """The dotted module name of a file under tests/, as parts."""
    parts = path.relative_to(TESTS.parent).with_suffix("").parts
    return parts[:-1] if parts[-1] == "__init__" else parts


def imported(tree: ast.Module, module: tuple[str, ...], is_package: bool) -> list[tuple[int, tuple[str, ...]]]:
    """(line, module) for every module of the `tests` package the source imports, as parts. For
    `from X import name` both X and X.name are listed: the name may be a module (`from tests.e2e
    import conftest`)."""
    package = module if is_package else module[:-1]
    found: list[tuple[int, tuple[str, ...]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, tuple(alias.name.split("."))) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else ()
            source = base + tuple(node.module.split(".")) if node.module else base
            found.append((node.lineno, source))
            found += [(node.lineno, (*source, alias.name)) for alias in node.names if alias.name != "*"]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            called = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            if called in ("__import__", "import_module") and isinstance(node.args[0].value, str):
                found.append((node.lineno, tuple(node.args[0].value.split("."))))
    return [(line, parts) for line, parts in found if parts[:1] == ("tests",)]


def problems(module: tuple[str, ...], source: str, is_package: bool = False) -> list[str]:
    """What is wrong with the tests-package imports of `source`, the text of `module`."""
    where = ".".join(module)
    own = module[1] if len(module) > 2 or (is_package and len(module) == 2) else None
    found: dict[int, str] = {}  # one problem per line: `from X import y` lists X and X.y
    for line, target in imported(ast.parse(source), module, is_package):
        name = ".".join(target)
        if target[-1] == "conftest" or target[-1].startswith("test_"):
            problem = f"{where}:{line} imports {name}: conftest and test modules are never imported"
        elif len(target) >= 2 and target[1] not in (SUPPORT, own):
            allowed = "tests.support" if own in (None, SUPPORT) else f"tests.support or tests.{own}"
            problem = f"{where}:{line} imports {name}: only {allowed} may be imported here"
        else:
            continue
        found.setdefault(line, problem)
    return list(found.values())


def test_no_tier_imports_another_tiers_code_a_conftest_or_a_test_module() -> None:
    sources = sorted(TESTS.rglob("*.py"))
    assert len(sources) > 50 and TESTS / "support" / "__init__.py" in sources
    found = []
    for path in sources:
        found += problems(importer_of(path), path.read_text(), is_package=path.name == "__init__.py")
    assert found == [], "\n".join(found)


@pytest.mark.parametrize(
    "module, source, complaint",
    [
        (("tests", "host", "test_x"), "from tests.conftest import ACCESS_KEY", "imports tests.conftest:"),
        (("tests", "e2e", "test_x"), "from tests.e2e.conftest import state_text", "imports tests.e2e.conftest:"),
        (("tests", "e2e", "test_x"), "from tests.e2e import conftest", "imports tests.e2e.conftest:"),
        (("tests", "e2e", "test_x"), "from . import conftest", "imports tests.e2e.conftest:"),
        (("tests", "unit", "test_x"), "from tests.unit.test_y import CASES", "imports tests.unit.test_y:"),
        (("tests", "unit", "test_x"), "from .test_y import CASES", "imports tests.unit.test_y:"),
        (("tests", "host", "test_x"), "from tests.sandbox.helpers import Client", "only tests.support or tests.host"),
        (("tests", "host", "test_x"), "import tests.audit.harness", "only tests.support or tests.host"),
        (("tests", "host", "test_x"), "from ..audit import harness", "only tests.support or tests.host"),
        (("tests", "host", "test_x"), "def f():\n    from tests.e2e.dev_stack import RunHost", "tests.e2e.dev_stack"),
        (("tests", "host", "test_x"), "importlib.import_module('tests.audit.harness')", "only tests.support"),
        (("tests", "support", "keys"), "from tests.host.test_secrets import X", "imports tests.host.test_secrets:"),
        (("tests", "support", "keys"), "from tests.audit.harness import World", "only tests.support may"),
        (("tests", "conftest"), "from tests.e2e.dev_stack import RunHost", "only tests.support may"),
        (("tests", "figures"), "from tests.host import helpers", "only tests.support may"),
    ],
)
def test_the_scan_finds_each_kind_of_crossing(module: tuple[str, ...], source: str, complaint: str) -> None:
    [found] = problems(module, source)
    assert complaint in found, found


@pytest.mark.parametrize(
    "module, source",
    [
        (("tests", "host", "test_x"), "from tests.support.hosts import sandbox_config\nimport tests.support.keys"),
        (("tests", "audit", "test_x"), "from tests.audit.harness import World\nfrom tests.audit import pulumi_state"),
        (("tests", "unit", "test_x"), "from .simulation import Clock\nfrom tests.unit.stack_config_cases import CHAT"),
        (("tests", "support", "hosts"), "from tests.support.keys import ACCESS_KEY\nfrom . import figures"),
        (("tests", "conftest"), "from tests.support.figures import table"),
        (("tests", "host", "test_x"), "import json\nfrom hostdriver import ProviderHost\nfrom providers import tests"),
    ],
)
def test_the_scan_lets_the_allowed_imports_pass(module: tuple[str, ...], source: str) -> None:
    assert problems(module, source) == []
