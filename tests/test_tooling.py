"""The linters as the project configures them (pyproject.toml [tool.ruff] and [tool.mypy]) are clean: issue 14."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def _said(done: subprocess.CompletedProcess) -> str:
    return f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"


def test_ruff_is_clean():
    done = _run("ruff", "check", "--no-cache", "tuanjian_xlsx", "tests", "scripts")
    assert done.returncode == 0, _said(done)


def test_mypy_is_clean(tmp_path):
    # a fresh cache: nothing written into the checkout, and no stale result from another version of the code
    done = _run("mypy", "--cache-dir", str(tmp_path / "mypy_cache"), "tuanjian_xlsx")
    assert done.returncode == 0, _said(done)
