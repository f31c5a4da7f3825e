"""``ruff check .`` and ``ruff format --check .`` are clean over the repository (README's
code blocks included: ruff formats Markdown), with the ruff that the dev extra pins."""

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _ruff() -> str:
    pinned = next(
        d
        for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
            "optional-dependencies"
        ]["dev"]
        if d.startswith("ruff")
    )
    version = re.fullmatch(r"ruff==([\d.]+)", pinned)
    assert version, f"the dev extra must pin ruff exactly (its formatting changes), got {pinned!r}"
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    installed = subprocess.run([ruff, "--version"], capture_output=True, text=True).stdout
    if installed.split()[-1] != version.group(1):
        pytest.skip(f"ruff {version.group(1)} is pinned, {installed.strip()} is installed")
    return ruff


@pytest.mark.parametrize("command", [["check", "."], ["format", "--check", "."]])
def test_ruff_is_clean(command):
    done = subprocess.run([_ruff(), *command], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
