"""Every workbook the product writes carries, in each formula cell, the value LibreOffice computes when it is forced
to recalculate: the master, the templates, distributed copies, 退回件 (from distributed copies and from the blank
template, with a wrong period, with numbers typed as text), upgraded forms, 名单与目标.xlsx and the year's assessment
(年度考核表, the demo's half year). One soffice call recalculates the whole generated set."""

from __future__ import annotations

import datetime as dt
import math
import shutil
from pathlib import Path

import openpyxl

from conftest import fill
from tuanjian_xlsx.distribute import distribute
from tuanjian_xlsx.workspace import init_workspace, validate_submissions

TEMPLATES = Path(__file__).resolve().parent.parent / "workbook_templates"


def _same(ours, theirs) -> bool:
    if ours in (None, "") or theirs in (None, ""):
        return ours in (None, "") and theirs in (None, "")
    if isinstance(ours, bool) or isinstance(theirs, bool):
        return ours == theirs
    if isinstance(ours, (int, float)) and isinstance(theirs, (int, float)):
        return math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(ours, dt.datetime) and isinstance(theirs, dt.datetime):
        return abs((ours - theirs).total_seconds()) < 1
    return ours == theirs


def _adjusted(demo, tmp_path: Path) -> Path:
    """The demo's assessment made again over one with 加减分 typed beyond ±上限 both ways, within it and as text."""
    from tuanjian_xlsx.assess import assess

    path = tmp_path / "考核_加减分.xlsx"
    shutil.copy(demo.assessment.path, path)
    wb = openpyxl.load_workbook(path)
    sh = wb["考核得分"]
    col = [c.value for c in sh[4]].index("加减分") + 1
    for row, v in ((6, 50), (7, -8), (8, 2.5), (9, "三分")):
        sh.cell(row=row, column=col, value=v)
    wb.save(path)
    a = demo.assessment
    return assess(demo.root, year=a.year, as_of=a.as_of, out=path).path


def _generated(tmp_path: Path, demo, templates) -> list[Path]:
    """One of each kind of workbook the product writes, copied under distinct names."""
    out = tmp_path / "generated"
    out.mkdir()
    files: dict[str, Path] = {"汇总表": demo.merge.master, "年度考核表": demo.assessment.path,
                              "年度考核表_加减分": _adjusted(demo, tmp_path)}
    for path in sorted(TEMPLATES.glob("*/v*.xlsx")):
        files[f"模板_{path.parent.name}_{path.stem}"] = path
    ws = tmp_path / "ws"
    init_workspace(ws)
    files["名单与目标"] = ws / "名单与目标.xlsx"
    copies = distribute(ws, "2026-Q1", units=["yuanhui", "xuexiao"]).packages
    copies += distribute(ws, "2026-03", units=["yuanhui", "xuexiao"]).packages
    for pkg in copies:
        for f in pkg.files:
            files[f"下发_{pkg.unit.id}_{f.stem[-12:]}"] = f
    # what units send back, wrong in the usual ways
    sent = tmp_path / "sent"
    sent.mkdir()
    tracker = next(f for p in copies if p.unit.id == "yuanhui" for f in p.files if "台账" in f.name)
    fill(tracker, sent / "台账_文字数字.xlsx", {"填表时间": "四月三十一日"})  # also one real mistake: a 退回件
    wb = openpyxl.load_workbook(sent / "台账_文字数字.xlsx")
    sheet = wb.worksheets[0]
    for row in sheet.iter_rows():
        for cell in row:
            if (cell.value is None and not isinstance(cell, openpyxl.cell.cell.MergedCell)
                    and cell.protection.locked is False and cell.column > 5):
                cell.value = "12"  # numbers typed as text, everywhere an input is open
    wb.save(sent / "台账_文字数字.xlsx")
    fill(templates["target_tracker"], sent / "台账_空白模板_缺报送期.xlsx", {"报送单位": "西城区团工委"})
    fill(templates["target_tracker"], sent / "台账_空白模板_错报送期.xlsx", {"报送单位": "源汇区团委", "报送期": "2026-13"})
    fill(templates["visit_report"], sent / "走基层_错报送期.xlsx",
         {"报送单位": "源汇区团委", "报送期": "2026年13月", "姓名": "张三", "团干部": "两人", "团员青年": 2.5})
    observation = next(f for p in copies if p.unit.id == "xuexiao" for f in p.files if "附件2" in f.name)
    shutil.copy(observation, sent / "观摩_未填.xlsx")
    returns = tmp_path / "退回"
    validate_submissions([sent], ws, returns)
    for n, book in enumerate(sorted(returns.glob("*.xlsx"))):
        files[f"退回件_{n}"] = book
    assert sum(k.startswith("退回件_") for k in files) == 5
    # an upgrade: a filled 附件1 v1 onto v2
    toml = ws / "tuanjian.toml"
    text = toml.read_text(encoding="utf-8")
    toml.write_text(text.replace("current_version = 1\naccepted_versions = [1]",
                                 "current_version = 2\naccepted_versions = [1, 2]", 1), encoding="utf-8")
    v1 = fill(TEMPLATES / "visit_report" / "v1.xlsx", sent / "旧版.xlsx",
              {"报送单位": "源汇区团委", "报送期": "2026-03", "姓名": "张三"})
    from tuanjian_xlsx.versions import upgrade

    (done,) = upgrade(ws, [v1], out=tmp_path / "升级")
    if done.target:
        files["升级"] = done.target
    copied = []
    for name, src in files.items():
        dst = out / f"{name}.xlsx"
        shutil.copy(src, dst)
        copied.append(dst)
    return copied


def test_every_workbook_written_caches_what_libreoffice_computes(demo, templates, libreoffice, tmp_path):
    ours = _generated(tmp_path, demo, templates)
    theirs = libreoffice.convert_many(ours, tmp_path / "lo")
    bad, checked = [], 0
    for mine, lo in zip(ours, theirs):
        formulas = openpyxl.load_workbook(mine)
        cached = openpyxl.load_workbook(mine, data_only=True)
        recalculated = openpyxl.load_workbook(lo, data_only=True)
        for sheet in formulas.worksheets:
            for row in sheet.iter_rows():
                for cell in row:
                    if not (isinstance(cell.value, str) and cell.value.startswith("=")):
                        continue
                    checked += 1
                    a = cached[sheet.title][cell.coordinate].value
                    b = recalculated[sheet.title][cell.coordinate].value
                    if not _same(a, b):
                        bad.append(f"{mine.stem} · {sheet.title} · {cell.coordinate}: {cell.value[:70]} → 缓存 {a!r}，"
                                   f"LibreOffice {b!r}")
    assert checked > 1000
    assert not bad, f"{len(bad)} of {checked}:\n" + "\n".join(bad[:40])
