"""The single-file executable from scripts/build_exe runs with no Python on PATH: demo and validate."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def exe(tmp_path_factory) -> Path:
    """Built once per session, in a temporary folder (nothing is left in the repository)."""
    out = tmp_path_factory.mktemp("exe")
    before = {p.name for p in ROOT.iterdir()}
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "build_exe"), str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    binary = out / "tuanjian"
    assert binary.exists() and {p.name for p in ROOT.iterdir()} - before == set()
    return binary


def _run(exe: Path, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    empty = cwd / "empty-path"
    empty.mkdir(exist_ok=True)
    env = {"PATH": str(empty), "HOME": str(cwd), "LANG": "C.UTF-8"}  # no Python anywhere on PATH
    return subprocess.run([str(exe), *args], cwd=cwd, env=env, capture_output=True, timeout=300)


def test_binary_runs_demo_and_validate_without_python(exe, tmp_path):
    r = _run(exe, ["demo", "演示"], tmp_path)
    out = r.stdout.decode("utf-8")
    assert r.returncode == 0, out + r.stderr.decode("utf-8", errors="replace")
    assert "收到 153 份 · 有效 152 · 退回 1" in out
    master = tmp_path / "演示" / "汇总" / "汇总表.xlsx"
    assert master.exists() and (tmp_path / "演示" / "模板" / "附件1_团干部走基层情况报告单_v1.xlsx").exists()
    bad = next((tmp_path / "演示" / "收件箱").glob("临颍县团委_2026-04_*初报*"))
    r = _run(exe, ["validate", str(bad), "-w", "演示"], tmp_path)
    assert r.returncode == 1
    assert "“团员青年”的“十几人”不是确切的数，请填写具体数字（如 32）" in r.stdout.decode("utf-8")
    r = _run(exe, ["templates", "list"], tmp_path)
    assert r.returncode == 0 and "visit_report" in r.stdout.decode("utf-8")
