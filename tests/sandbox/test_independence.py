"""The witness shares no code with the accused: qianfan_sandbox imports nothing from providers."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import qianfan_sandbox
from hostdriver import PROJECT_ROOT
from tests.support.standalone import child_env

PACKAGE_DIR = Path(qianfan_sandbox.__file__).parent
FORBIDDEN = "providers"


def test_no_source_file_imports_providers() -> None:
    sources = sorted(PACKAGE_DIR.rglob("*.py"))
    assert len(sources) >= 10
    for source in sources:
        tree = ast.parse(source.read_text(), filename=str(source))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level <= 1, f"{source.name} imports from outside the package (level {node.level})"
                names = [node.module or ""] if node.level == 0 else []
            elif isinstance(node, ast.Call) and isinstance(node.func, (ast.Name, ast.Attribute)):
                called = node.func.id if isinstance(node.func, ast.Name) else node.func.attr
                assert called not in ("__import__", "import_module"), f"{source.name} imports dynamically"
                continue
            else:
                continue
            for name in names:
                assert name.split(".")[0] != FORBIDDEN, f"{source.name} imports {name}"


@pytest.mark.slow
def test_the_package_works_with_providers_unimportable(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import importlib, pkgutil, sys

        class RefuseProviders:
            def find_spec(self, name, path=None, target=None):
                if name == {FORBIDDEN!r} or name.startswith({FORBIDDEN!r} + "."):
                    raise ImportError("qianfan_sandbox must not import " + name)
                return None

        sys.meta_path.insert(0, RefuseProviders())
        import qianfan_sandbox
        for module in pkgutil.walk_packages(qianfan_sandbox.__path__, "qianfan_sandbox."):
            if module.name != "qianfan_sandbox.__main__":
                importlib.import_module(module.name)
        from qianfan_sandbox import Sandbox, SandboxControl
        with Sandbox({str(tmp_path / "q.db")!r}) as sandbox:
            SandboxControl({str(tmp_path / "q.db")!r}).set_option("describe_shape", "rich")
        assert not any(name.split(".")[0] == {FORBIDDEN!r} for name in sys.modules), sorted(sys.modules)
        print("independent")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, env=child_env(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "independent"


@pytest.mark.slow
def test_the_standalone_entry_point_works_with_providers_unimportable(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import runpy, sys

        class RefuseProviders:
            def find_spec(self, name, path=None, target=None):
                if name == {FORBIDDEN!r} or name.startswith({FORBIDDEN!r} + "."):
                    raise ImportError("qianfan_sandbox must not import " + name)
                return None

        sys.meta_path.insert(0, RefuseProviders())
        sys.argv = ["qianfan_sandbox", "--port", "70000", "--db", {str(tmp_path / "q.db")!r}]
        try:
            runpy.run_module("qianfan_sandbox", run_name="__main__")
        except SystemExit as exit:
            print("exit", exit.code)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_ROOT, env=child_env(), capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "exit 2", done.stderr  # the bad port is refused, after every import
    assert "port" in done.stderr and "Traceback" not in done.stderr
