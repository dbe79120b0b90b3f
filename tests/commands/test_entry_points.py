"""The console commands the set-up installs (`pulumi install`, or the README's test command, both
install requirements.txt, whose `-e .` installs this project) answer from any directory, and run
this checkout's code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hostdriver import PROJECT_ROOT

pytestmark = pytest.mark.slow  # the console commands as processes

BIN = Path(sys.executable).parent
#: Each command and the `python -m` form it stands for (both keep working).
COMMANDS = {"qianfan-tpm-audit": "audit", "qianfan-sandbox": "qianfan_sandbox", "qianfan-tpm-bench": "bench"}


def command(name: str) -> Path:
    path = BIN / name
    if not path.is_file():
        pytest.fail(
            f"{path} is not installed: this virtualenv lacks the project itself; install it from the project "
            f"directory with `{BIN / 'pip'} install -r requirements.txt` (its `-e .` line installs the commands)"
        )
    return path


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_command_answers_help_from_any_directory(name: str, tmp_path: Path) -> None:
    out = subprocess.run([command(name), "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage: ") and "--help" in out.stdout
    module = subprocess.run(
        [sys.executable, "-m", COMMANDS[name], "--help"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert module.returncode == 0 and module.stdout.startswith("usage: ")


def test_the_commands_run_this_checkouts_code(tmp_path: Path) -> None:
    """An editable install: the commands import the packages of this checkout, not a copy."""
    code = "import audit, bench, hostdriver, providers, qianfan_sandbox as s; print(s.__file__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, (
        f"the project's packages cannot be imported outside the project directory: {out.stderr.strip()[-300:]}"
    )
    assert Path(out.stdout.strip()).resolve().is_relative_to(PROJECT_ROOT.resolve()), (
        f"this virtualenv runs {out.stdout.strip()}, not this checkout ({PROJECT_ROOT}): reinstall with "
        f"`{BIN / 'pip'} install -r requirements.txt` from here"
    )


def test_the_audit_reads_a_relative_sandbox_path_from_where_it_is_run(tmp_path: Path) -> None:
    out = subprocess.run(
        [command("qianfan-tpm-audit"), "--endpoint", "sandbox", "--sandbox-path", "here.sqlite3"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.startswith(
        f"qianfan-tpm-audit: --sandbox-path here.sqlite3 (that is {tmp_path / 'here.sqlite3'}): no sandbox database"
    ), out.stderr
    assert not (tmp_path / "here.sqlite3").exists()
