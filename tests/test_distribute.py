"""Distribution: each unit's own copy, filled by a person, re-saved by LibreOffice, validates as that unit and merges."""

from __future__ import annotations

import datetime as dt
import zipfile

import openpyxl
from click.testing import CliRunner

from conftest import fill
from tuanjian_xlsx.cli import cli
from tuanjian_xlsx.distribute import distribute
from tuanjian_xlsx.merge import merge
from tuanjian_xlsx.read import open_package
from tuanjian_xlsx.validate import validate_file
from tuanjian_xlsx.workspace import init_workspace


def test_month_copies_per_unit_with_passport_and_locked_header(tmp_path, builtin):
    init_workspace(tmp_path)
    result = distribute(tmp_path, "2026-03")
    assert result.folder == tmp_path / "下发" / "2026年3月"
    assert len(result.packages) == len(builtin.roster.units_filing("visit_report"))
    pkg = next(p for p in result.packages if p.unit.name == "组织部")
    (path,) = pkg.files
    assert path.name == "组织部_2026年3月_附件1_团干部走基层情况报告单_v1.xlsx"
    passport = open_package(path).passport()
    assert (passport["unit"], passport["unit_id"], passport["period"], passport["due"]) == (
        "组织部", "zuzhi", "2026-03", "2026-03-28")  # 部室: the 28th of the same month
    ws = openpyxl.load_workbook(path).worksheets[0]
    assert (ws["B4"].value, ws["B5"].value, ws["C2"].value) == ("组织部", "2026年3月", "截止日期：2026年3月28日")
    assert ws["B4"].protection.locked and ws["B5"].protection.locked
    text = pkg.instructions.read_text(encoding="utf-8-sig")
    assert "截止日期：2026年3月28日；首次下发本表。" in text and "lhtswzxb@163.com" in text
    again = distribute(tmp_path, "2026-03", units=["zuzhi"])
    assert "与上次下发的第 1 版相同。" in again.packages[0].instructions.read_text(encoding="utf-8-sig")


def test_tracker_copy_holds_only_the_units_tasks(tmp_path, builtin):
    init_workspace(tmp_path)
    result = distribute(tmp_path, "2026-Q1", forms=["target_tracker"], units=["西城区团工委"])
    (pkg,) = result.packages
    spec = builtin.registry.get("target_tracker")
    ws = openpyxl.load_workbook(pkg.files[0])[spec.sheet_name]
    codes = [ws[f"A{r}"].value for r in range(spec.header_row + 1, ws.max_row + 1) if ws[f"A{r}"].value]
    assert codes == [t.code for t in builtin.roster.tasks_for("功能区团工委")]


def test_filled_resaved_copy_validates_as_its_unit_and_merges(tmp_path, builtin, libreoffice):
    init_workspace(tmp_path)
    (pkg,) = distribute(tmp_path, "2026-03", units=["舞阳县团委"]).packages
    filled = fill(pkg.files[0], tmp_path / "filled.xlsx", {
        "填表时间": dt.datetime(2026, 3, 4), "姓名": "李四", "单位职务": "书记", "走访团组织名称": "舞阳县一中团委",
        "走访形式": "实地走访", "团干部": 3, "团员青年": 20, "基层团组织工作开展情况": "好", "基层团组织工作亮点": "多"})
    resaved = libreoffice.convert(filled, tmp_path / "lo")
    result = validate_file(resaved, builtin)
    assert result.valid, [i.render() for i in result.issues]
    assert (result.form_id, result.unit, result.period) == ("visit_report", "舞阳县团委", "2026-03")
    merged = merge(tmp_path, [resaved], as_of=dt.date(2026, 4, 1), now=dt.datetime(2026, 4, 1, 9))
    detail = openpyxl.load_workbook(merged.master, data_only=True)["走基层明细"]
    assert [r[0] for r in detail.iter_rows(min_row=2, values_only=True)] == ["舞阳县团委"]
    by = {(i.unit, i.form_id, i.period.code): i.status for i in merged.items}
    assert by[("舞阳县团委", "visit_report", "2026-03")] == "on_time"


def test_zip_per_unit_with_utf8_names_and_cli(tmp_path):
    init_workspace(tmp_path)
    r = CliRunner().invoke(cli, ["distribute", "-w", str(tmp_path), "--period", "2026-Q1", "--zip",
                                 "--units", "源汇区团委,社联部"])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == f"已为 2 个单位生成 2026年第1季度 的 4 份表：{tmp_path / '下发' / '2026年第1季度'}"
    assert lines[-1].startswith("没有邮箱的单位 2 个：源汇区团委、社联部")
    with zipfile.ZipFile(tmp_path / "下发" / "2026年第1季度" / "源汇区团委_2026年第1季度.zip") as z:
        infos = z.infolist()
        assert sorted(i.filename for i in infos) == ["填报说明.txt", "源汇区团委_2026年第1季度_活力团建目标任务台账_v1.xlsx",
                                                     "源汇区团委_2026年第1季度_附件2_共青团工作观摩情况报告单_v1.xlsx"]
        assert all(i.flag_bits & 0x800 for i in infos)  # the UTF-8 flag: Explorer shows the Chinese names
    r = CliRunner().invoke(cli, ["distribute", "-w", str(tmp_path), "--period", "2026-13"])
    assert r.exit_code == 2 and "应为报送期" in r.output  # a usage error
    r = CliRunner().invoke(cli, ["distribute", "-w", str(tmp_path), "--period", "2026-03", "--units", "不存在"])
    assert r.exit_code == 1 and "不在单位名单中" in r.output


def test_a_period_no_form_is_filed_for_says_why(tmp_path):
    """distribute --period 2026-03 --form observation_report (观摩 happens in March) made 0 forms, said nothing and
    exited 0."""
    from click.testing import CliRunner

    from tuanjian_xlsx.cli import cli
    from tuanjian_xlsx.workspace import init_workspace

    init_workspace(tmp_path / "ws")
    r = CliRunner().invoke(cli, ["distribute", "-w", str(tmp_path / "ws"), "--period", "2026-03", "--form",
                                 "observation_report"])
    assert r.exit_code == 1 and "2026年3月没有要下发的表" in r.output and "按季报送" in r.output


def test_a_unit_is_sent_nothing_before_its_own_start(tmp_path):
    """A unit with 起报期 2026-03 was given (and with --send mailed) a 2026-02 form that status never counts."""
    import openpyxl

    from tuanjian_xlsx.distribute import distribute
    from tuanjian_xlsx.workspace import init_workspace

    root = tmp_path / "ws"
    init_workspace(root)
    book = openpyxl.load_workbook(root / "名单与目标.xlsx")
    sheet = book["单位名单"]
    head = [c.value for c in sheet[1]]
    row = sheet.max_row + 1
    for key, value in (("单位编号", "xinqu"), ("单位名称", "新区团委"), ("单位类型", "县区团委"), ("起报期", "2026-03")):
        sheet.cell(row, head.index(key) + 1, value)
    book.save(root / "名单与目标.xlsx")
    assert "新区团委" not in {p.unit.name for p in distribute(root, "2026-02").packages}
    assert "新区团委" in {p.unit.name for p in distribute(root, "2026-03").packages}
    assert "新区团委" in {p.unit.name for p in distribute(root, "2026-Q1").packages}  # the quarter holding March


def test_distributing_again_keeps_a_copy_changed_since_and_says_a_moved_deadline(tmp_path):
    """Run again, distribute overwrote a copy staff had filled in place in 下发, and after the 部室' deadline moved
    from the 28th to the 25th its 填报说明 still said 与上次下发的第 1 版相同."""
    import openpyxl

    from tuanjian_xlsx import api
    from tuanjian_xlsx.workspace import init_workspace

    root = tmp_path / "ws"
    init_workspace(root)
    first = api.distribute(root, "2026-03")
    copy = next(f for p in first.result.packages if p.unit.name == "组织部" for f in p.files)
    untouched = next(f for p in first.result.packages if p.unit.name == "宣传部" for f in p.files)
    book = openpyxl.load_workbook(copy)
    book.worksheets[0]["B6"] = "李四"
    book.save(copy)
    filled = copy.read_bytes()
    types = openpyxl.load_workbook(root / "名单与目标.xlsx")
    row = next(c.row for c in types["单位类型"]["A"] if c.value == "机关部室")
    types["单位类型"].cell(row, 4, 25)
    types.save(root / "名单与目标.xlsx")
    again = api.distribute(root, "2026-03")
    kept = copy.with_name(f"{copy.stem}（改动过的副本）.xlsx")
    assert kept.read_bytes() == filled and copy.read_bytes() != filled
    assert [(a.name, b.name) for a, b in again.result.kept] == [(copy.name, kept.name)]
    assert any("未覆盖" in line for line in again.lines())
    assert not untouched.with_name(f"{untouched.stem}（改动过的副本）.xlsx").exists()  # ours: simply written again
    note = (copy.parent / "填报说明.txt").read_text(encoding="utf-8-sig")
    assert "截止日期由 3月28日改为 3月25日" in note


def test_copies_from_before_hashes_were_kept_are_written_over_as_before(tmp_path):
    """After upgrading, distributing again moved aside every copy the older release wrote (no hash kept for them)
    and called each one changed."""
    import sqlite3

    from tuanjian_xlsx import api
    from tuanjian_xlsx.workspace import init_workspace

    root = tmp_path / "ws"
    init_workspace(root)
    api.distribute(root, "2026-Q1")
    con = sqlite3.connect(root / ".tuanjian" / "ledger.sqlite")
    with con:
        con.execute("DELETE FROM meta WHERE key LIKE 'distributed-copy:%'")  # as the older release left it
    con.close()
    import openpyxl

    copy = next((root / "下发").rglob("*.xlsx"))
    openpyxl.load_workbook(copy).save(copy)  # other bytes, as the older release's templates were
    again = api.distribute(root, "2026-Q1")
    assert again.result.kept == [] and not list((root / "下发").rglob("*改动过的副本*"))
