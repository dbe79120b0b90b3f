"""The dev stack's set-up changes nothing outside this checkout: `scripts/dev` and the committed salt.

No Pulumi CLI can be installed here, so `scripts/dev` runs against a stand-in `pulumi` that reports
the environment, directory and arguments it was started with. The salt is checked the way Pulumi's
passphrase secrets manager checks a passphrase (PBKDF2-SHA256, 1,000,000 rounds, then AES-256-GCM
must open the sealed word "pulumi"); the algorithm is held to a state string from Pulumi's own tests.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
from pathlib import Path

import pytest
import yaml
from Crypto.Cipher import AES

from hostdriver import PROJECT_ROOT
from tests.e2e.dev_stack import DEV_STACK_FILE

SCRIPT = PROJECT_ROOT / "scripts" / "dev"
STAND_IN = """#!/bin/sh
printf 'cwd=%s\\n' "$(pwd)"
printf 'backend=%s\\n' "${PULUMI_BACKEND_URL-<unset>}"
printf 'passphrase=%s\\n' "${PULUMI_CONFIG_PASSPHRASE-<unset>}"
printf 'args=%s\\n' "$*"
"""


def run_dev(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """scripts/dev from an unrelated directory, in a shell that has a login and a passphrase of its own."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    stand_in = bin_dir / "pulumi"
    stand_in.write_text(STAND_IN)
    stand_in.chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PULUMI_BACKEND_URL": "s3://team-state-bucket",
        "PULUMI_CONFIG_PASSPHRASE": "the prod passphrase",
    }
    return subprocess.run(
        ["bash", str(SCRIPT), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )


def reported(run: subprocess.CompletedProcess[str]) -> dict[str, str]:
    assert run.returncode == 0, run.stderr
    return dict(line.split("=", 1) for line in run.stdout.splitlines())


def test_dev_runs_pulumi_on_the_dev_stack_with_state_in_the_checkout(tmp_path: Path) -> None:
    seen = reported(run_dev(tmp_path, "up", "--yes"))
    assert seen == {
        "cwd": str(PROJECT_ROOT),
        "backend": f"file://{PROJECT_ROOT}",
        "passphrase": "",
        "args": "up --yes --stack dev",
    }


@pytest.mark.parametrize("alias", ["rm", "remove", "delete"])
def test_removing_the_dev_stack_keeps_the_tracked_stack_file(tmp_path: Path, alias: str) -> None:
    assert reported(run_dev(tmp_path, "stack", alias, "--yes"))["args"] == (
        f"stack {alias} --yes --preserve-config --stack dev"
    )


@pytest.mark.parametrize(
    "args", [["up", "-s", "prod"], ["up", "-sprod"], ["up", "--stack", "prod"], ["up", "--stack=prod"], ["up", "--"]]
)
def test_dev_refuses_another_stack_in_one_line_and_starts_nothing(tmp_path: Path, args: list[str]) -> None:
    run = run_dev(tmp_path, *args)
    assert run.returncode == 2
    assert run.stdout == ""  # the stand-in never ran
    assert len(run.stderr.splitlines()) == 1 and run.stderr.startswith("scripts/dev: ")


def passphrase_opens(salt_state: str, passphrase: str) -> bool:
    """Whether Pulumi would accept the passphrase for this `encryptionsalt` (v1 only)."""
    version, salt, sealed = salt_state.split(":", 2)
    assert version == "v1", salt_state
    sealed_version, nonce, ciphertext = sealed.split(":")
    assert sealed_version == "v1", salt_state
    key = hashlib.pbkdf2_hmac("sha256", passphrase.encode(), base64.b64decode(salt), 1_000_000, 32)
    data = base64.b64decode(ciphertext)
    cipher = AES.new(key, AES.MODE_GCM, nonce=base64.b64decode(nonce))
    try:
        return bool(cipher.decrypt_and_verify(data[:-16], data[-16:]) == b"pulumi")
    except ValueError:  # the tag does not match: another passphrase
        return False


@pytest.mark.slow
def test_the_check_is_pulumis_own() -> None:
    # pkg/secrets/passphrase/manager_test.go in pulumi/pulumi: this state, passphrase "password".
    state = "v1:fozI5u6B030=:v1:F+6ZduKKd8G0/V7L:PGMFeIzwobWRKmEAzUdaQHqC5mMRIQ=="
    assert passphrase_opens(state, "password")
    assert not passphrase_opens(state, "")


@pytest.mark.slow
def test_the_dev_stack_file_carries_the_salt_of_the_empty_passphrase() -> None:
    document = yaml.safe_load(DEV_STACK_FILE.read_text())
    salt = document.get("encryptionsalt")
    assert isinstance(salt, str), f"{DEV_STACK_FILE} has no encryptionsalt: `pulumi stack init` would write one"
    assert passphrase_opens(salt, ""), "scripts/dev's empty passphrase does not open the committed salt"
    assert not passphrase_opens(salt, "the prod passphrase")
