"""For the staff's desk: no Excel here (Linux), the Windows console's GBK code page, Windows-safe file names."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import openpyxl
from click.testing import CliRunner

from conftest import fill
from tuanjian_xlsx.cli import cli
from tuanjian_xlsx.distribute import distribute
from tuanjian_xlsx.workspace import init_workspace

ROOT = Path(__file__).resolve().parent.parent


def test_open_without_excel_says_so_and_gives_the_path(tmp_path):
    root = tmp_path / "有 空格 的 工作区"
    init_workspace(root)
    r = CliRunner().invoke(cli, ["merge", "-w", str(root), "--open", "--as-of", "2026-04-20"])
    assert r.exit_code == 0, r.output
    master = root / "汇总" / "汇总表.xlsx"
    assert f"本机不是 Windows 或 macOS，无法直接在 Excel 中打开；请手动打开：{master}" in r.output
    assert master.exists()


def test_library_never_imports_xlwings():
    import ast

    for path in (ROOT / "tuanjian_xlsx").rglob("*.py"):
        if path.name == "excel.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                assert all(a.name != "xlwings" for a in node.names), path.name
            if isinstance(node, ast.ImportFrom):
                assert node.module != "xlwings", path.name


def test_gbk_console_narrow_terminal(tmp_path, templates):
    root = tmp_path / "工作 区"
    init_workspace(root)
    bad = fill(templates["visit_report"], tmp_path / "源汇区 三月.xlsx", {"报送单位": "源汇区团委", "报送期": "2026-03",
                                                                     "团干部": -1})
    good = fill(templates["visit_report"], tmp_path / "好.xlsx", {
        "报送单位": "源汇区团委", "报送期": "2026-03", "填表时间": dt.datetime(2026, 3, 5), "姓名": "张", "单位职务": "书记",
        "走访团组织名称": "一中", "走访形式": "座谈交流", "团干部": 1, "团员青年": 2, "基层团组织工作开展情况": "好",
        "基层团组织工作亮点": "多"})
    env = {**os.environ, "PYTHONIOENCODING": "gbk", "COLUMNS": "40", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "tuanjian_xlsx", "validate", str(bad), str(good), "-w", str(root)],
                          capture_output=True, env=env)
    assert proc.returncode == 1, proc.stderr.decode("gbk", errors="replace")
    out = proc.stdout.decode("gbk")  # every byte is GBK: no mojibake, no crash
    assert "× 有错误" in out and "√ 通过" in out and "“团干部”不能为负数，现为 -1" in out
    help_out = subprocess.run([sys.executable, "-m", "tuanjian_xlsx", "--help"], capture_output=True, env=env)
    assert help_out.returncode == 0 and "用法：tuanjian" in help_out.stdout.decode("gbk")


def test_unit_names_with_characters_windows_forbids(tmp_path):
    init_workspace(tmp_path)
    book = tmp_path / "名单与目标.xlsx"
    wb = openpyxl.load_workbook(book)
    wb["单位名单"]["B2"] = '源汇区/团委:"试点"*?<>|'
    wb.save(book)
    result = distribute(tmp_path, "2026-03", units=["yuanhui"], make_zip=True)
    (pkg,) = result.packages
    name = pkg.files[0].name
    # made safe, with a tag of the real name so that two units never share a file name
    assert name.startswith("源汇区_团委__试点_______2026年3月_附件1_团干部走基层情况报告单_v1_") and len(name) == 55
    assert not any(ch in name for ch in '\\/:*?"<>|') and pkg.files[0].exists() and pkg.zip.exists()
