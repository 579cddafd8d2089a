"""退回件: the submitter's values in the current template, exactly the bad cells marked, and a message."""

from __future__ import annotations

import datetime as dt
import hashlib
import zipfile

import openpyxl
import pytest

from conftest import fill
from tuanjian_xlsx.build import Prefill, build_template
from tuanjian_xlsx.filenames import safe_filename
from tuanjian_xlsx.passport import PROBLEM_COLUMNS
from tuanjian_xlsx.returns import write_returns
from tuanjian_xlsx.validate import validate_file

BAD = {"报送单位": "源汇区团委", "报送期": "2026-03", "填表时间": "2026年3月5日", "姓名": "张三",
       "走访团组织名称": "源汇区第一中学团委", "走访形式": "步行", "团干部": -2, "团员青年": "五六人",
       "基层团组织工作开展情况": "开展主题团日"}
ERROR_CELLS = {"D6", "B8", "C9", "C10", "B12"}  # 单位职务 and 工作亮点 empty; 步行, -2, 五六人 wrong


@pytest.fixture
def bad_file(templates, tmp_path):
    return fill(templates["visit_report"], tmp_path / "源汇区三月.xlsx", BAD)


def _red(cell) -> bool:
    return (cell.fill.fgColor.rgb or "").upper().endswith("FF9999")


def test_return_carries_values_and_marks_exactly_the_bad_cells(bad_file, builtin, tmp_path):
    before = hashlib.sha256(bad_file.read_bytes()).hexdigest()
    result = validate_file(bad_file, builtin)
    (piece,) = write_returns([result], builtin, tmp_path / "退回")
    assert piece.workbook.name == "源汇区团委_2026-03_附件1_团干部走基层情况报告单_退回.xlsx"
    assert hashlib.sha256(bad_file.read_bytes()).hexdigest() == before  # the original is never changed
    # its parts stored, not compressed (xlsxio.StoredBuffer): test_return_loop sends one back as it is and opens
    # one in LibreOffice
    assert {i.compress_type for i in zipfile.ZipFile(piece.workbook).infolist()} == {zipfile.ZIP_STORED}

    wb = openpyxl.load_workbook(piece.workbook)
    assert wb.sheetnames == ["问题清单", "走基层报告单", "_lists", "_passport"]
    ws = wb["走基层报告单"]
    assert (ws["B4"].value, ws["B5"].value) == ("源汇区团委", "2026年3月")  # prefilled and locked
    assert ws["B4"].protection.locked
    assert (ws["B6"].value, ws["B7"].value, ws["B8"].value) == ("张三", "源汇区第一中学团委", "步行")
    assert (ws["C9"].value, ws["C10"].value) == (-2, "五六人")
    assert ws["D5"].value == dt.datetime(2026, 3, 5)  # read with a warning: written back as the date it means
    marked = {c.coordinate for row in ws.iter_rows() for c in row if c.comment is not None}
    assert marked == ERROR_CELLS
    assert {c.coordinate for row in ws.iter_rows() for c in row if _red(c)} == ERROR_CELLS
    assert "不能为负数" in ws["C9"].comment.text

    listing = [[c.value or "" for c in row] for row in wb["问题清单"].iter_rows()]
    assert tuple(listing[0]) == PROBLEM_COLUMNS
    got = sorted((r[1], r[2], r[4]) for r in listing[1:])
    want = sorted((i.cell, i.field, i.message if i.severity == "error" else "提醒：" + i.message) for i in result.issues)
    assert got == want
    assert [r for r in listing if r[1] == "C10"][0][1:4] == ["C10", "团员青年", "五六人"]

    text = piece.message.read_text(encoding="utf-8-sig")
    assert text.startswith("源汇区团委：您单位报送的《附件1 团干部走基层情况报告单》（2026年3月）（文件 源汇区三月.xlsx）有 5 处需要修改：")
    assert "截止日期：2026-04-10。报送邮箱：lhtswzxb@163.com。" in text


def test_return_validates_clean_once_corrected(bad_file, builtin, tmp_path):
    (piece,) = write_returns([validate_file(bad_file, builtin)], builtin, tmp_path)
    fixed = fill(piece.workbook, tmp_path / "改好.xlsx", {"单位职务": "书记", "走访形式": "座谈交流", "团干部": 2,
                                                        "团员青年": 15, "基层团组织工作亮点": "有亮点"},
                 sheet="走基层报告单")
    again = validate_file(fixed, builtin)
    assert again.valid, [i.render() for i in again.issues]
    assert (again.unit, again.period, again.records[0].values["name"]) == ("源汇区团委", "2026-03", "张三")


def test_several_sheets_come_back_as_several_sheets(templates, builtin, tmp_path):
    path = fill(templates["visit_report"], tmp_path / "a.xlsx", {**BAD, "单位职务": "书记", "基层团组织工作亮点": "有",
                                                                "走访形式": "实地走访", "团员青年": 3})
    wb = openpyxl.load_workbook(path)
    wb.copy_worksheet(wb.worksheets[0])["C9"] = 1
    wb.save(tmp_path / "b.xlsx")
    (piece,) = write_returns([validate_file(tmp_path / "b.xlsx", builtin)], builtin, tmp_path / "r")
    wb = openpyxl.load_workbook(piece.workbook)
    assert wb.sheetnames[:3] == ["问题清单", "走基层报告单", "走基层报告单 (2)"]
    assert wb["走基层报告单"]["C9"].comment is not None and wb["走基层报告单 (2)"]["C9"].comment is None
    assert wb["走基层报告单 (2)"].defined_names["tj_cadre_count"].attr_text.endswith("$C$9")
    again = validate_file(piece.workbook, builtin)
    assert len(again.records) == 2


def test_unrecognised_file_gets_a_message_only(builtin, tmp_path):
    (tmp_path / "随便.xlsx").write_bytes(b"")
    (piece,) = write_returns([validate_file(tmp_path / "随便.xlsx", builtin)], builtin, tmp_path / "r")
    assert piece.workbook is None
    assert "文件是空的" in piece.message.read_text(encoding="utf-8-sig")


def test_tracker_return_cached_values_equal_libreoffice(builtin, tmp_path, libreoffice):
    spec = builtin.registry.get("target_tracker")
    src = tmp_path / "t0.xlsx"
    src.write_bytes(build_template(spec, builtin.roster, prefill=Prefill(builtin.roster.unit_by_name("源汇区团委"),
                                                                          "2026-Q1", "2026年第1季度")))
    wb = openpyxl.load_workbook(src)
    ws = wb[spec.sheet_name]
    rows = {ws[f"A{r}"].value: r for r in range(spec.header_row + 1, ws.max_row + 1) if ws[f"A{r}"].value}
    ws["O3"] = dt.datetime(2026, 4, 3)
    ws[f"K{rows['1-3-2']}"], ws[f"L{rows['1-3-2']}"] = 9, 5      # above the base
    ws[f"K{rows['1-2']}"], ws[f"L{rows['1-2']}"] = 3, 4
    ws[f"K{rows['2-3']}"] = "三两个"
    ws[f"K{rows['1-6']}"], ws[f"L{rows['1-6']}"] = 2, 0
    ws[f"K{rows['1-3-1']}"], ws[f"L{rows['1-3-1']}"] = dt.datetime(2026, 3, 5), 4  # "3/5" typed: Excel made a date
    wb.save(tmp_path / "t.xlsx")
    (piece,) = write_returns([validate_file(tmp_path / "t.xlsx", builtin)], builtin, tmp_path / "r")
    ours = openpyxl.load_workbook(piece.workbook, data_only=True)[spec.sheet_name]
    theirs = openpyxl.load_workbook(libreoffice.convert(piece.workbook, tmp_path / "lo"), data_only=True)[spec.sheet_name]
    for r in rows.values():
        for col in "GMNQR":
            a, b = ours[f"{col}{r}"].value, theirs[f"{col}{r}"].value
            assert (a in (None, "") and b in (None, "")) or a == pytest.approx(b), (col, r, a, b)
    assert ours["A1"].value == theirs["A1"].value
    assert (theirs[f"M{rows['1-2']}"].value, theirs[f"N{rows['1-2']}"].value) == (0.75, "未达标")  # 3/4 < 100%
    assert theirs[f"N{rows['1-3-2']}"].value == "达标" and theirs[f"R{rows['1-3-2']}"].value == 1


@pytest.mark.parametrize("name, safe", [("市青年创业服务中心（市志愿者服务中心）", "市青年创业服务中心（市志愿者服务中心）"),
                                        ('a/b\\c:d*e?f"g<h>i|j', "a_b_c_d_e_f_g_h_i_j_"), ("结尾. ", "结尾_")])
def test_safe_file_names(name, safe):
    """Unchanged when already safe; otherwise made safe, with a tag of the original that keeps names apart."""
    got = safe_filename(name)
    assert got == safe if safe == name else (got.startswith(safe) and len(got) == len(safe) + 6)


def test_tracker_return_lists_cells_where_they_are_in_the_return(templates, builtin, tmp_path):
    spec = builtin.registry.get("target_tracker")
    path = fill(templates["target_tracker"], tmp_path / "blank.xlsx", {"报送单位": "西城区团工委", "报送期": "2026-Q1",
                                                                       "填表时间": dt.datetime(2026, 4, 2)})
    (piece,) = write_returns([validate_file(path, builtin)], builtin, tmp_path / "r")
    wb = openpyxl.load_workbook(piece.workbook)
    listed = {r[1] for r in wb["问题清单"].iter_rows(min_row=2, values_only=True)}
    commented = {c.coordinate for row in wb[spec.sheet_name].iter_rows() for c in row if c.comment}
    assert listed == commented and len(commented) == sum(
        {"ratio": 2, "growth": 2}.get(t.kind, 1) for t in builtin.roster.tasks_for("功能区团工委"))
    assert wb[spec.sheet_name]["O3"].value == dt.datetime(2026, 4, 2)  # header values carried over


def test_a_questioned_unit_is_not_locked_in_the_return(templates, builtin, tmp_path):
    spec = builtin.registry.get("visit_report", 1)
    src = tmp_path / "copy.xlsx"
    src.write_bytes(build_template(spec, builtin.roster, prefill=Prefill(builtin.roster.unit_by_name("舞阳县团委"),
                                                                          "2026-03", "2026年3月")))
    path = fill(src, tmp_path / "改了单位.xlsx", {**BAD, "单位职务": "书记", "走访形式": "实地走访", "团干部": 1,
                                               "团员青年": 3, "基层团组织工作亮点": "有", "报送期": "2026年3月"})
    result = validate_file(path, builtin)
    assert [(i.cell, i.code) for i in result.issues if i.severity == "error"] == [("B4", "passport-mismatch")]
    (piece,) = write_returns([result], builtin, tmp_path / "r")
    ws = openpyxl.load_workbook(piece.workbook)["走基层报告单"]
    assert ws["B4"].value == "源汇区团委" and ws["B4"].protection.locked is False and ws["B4"].comment


def test_two_returns_with_one_name_each_name_their_own_file(bad_file, builtin, tmp_path):
    other = tmp_path / "again.xlsx"
    other.write_bytes(bad_file.read_bytes())
    pieces = write_returns([validate_file(p, builtin) for p in (bad_file, other)], builtin, tmp_path / "r")
    assert [p.workbook.name for p in pieces] == ["源汇区团委_2026-03_附件1_团干部走基层情况报告单_退回.xlsx",
                                                 "源汇区团委_2026-03_附件1_团干部走基层情况报告单_退回_2.xlsx"]
    assert "退回_2.xlsx》" in pieces[1].message.read_text(encoding="utf-8-sig")


def test_a_formula_whose_result_is_an_error_is_said_to_be_and_comes_back_as_typed(templates, builtin, tmp_path):
    """A unit typed a formula in 团干部 and its result is an error (#VALUE!): calamine reads such a cell as empty,
    and it was reported as 必须填写 with an empty 原值 and an empty cell in the 退回件. It is said to be a formula
    error, and the 退回件 shows what the cell showed."""
    good = fill(templates["visit_report"], tmp_path / "好.xlsx", {**BAD, "走访形式": "实地走访", "团干部": 2,
                                                                   "团员青年": 9, "单位职务": "书记",
                                                                   "基层团组织工作亮点": "有"})
    wb = openpyxl.load_workbook(good)
    cell = wb.worksheets[0]["C9"]
    cell.value, cell.data_type = "#VALUE!", "e"  # as Excel or LibreOffice save =A1+"人" typed there
    wb.save(tmp_path / "公式.xlsx")
    result = validate_file(tmp_path / "公式.xlsx", builtin)
    (error,) = [i for i in result.issues if i.severity == "error"]
    assert (error.code, error.cell, error.field) == ("formula-error", "C9", "团干部") and "#VALUE!" in error.message
    (piece,) = write_returns([result], builtin, tmp_path / "退回")
    back = openpyxl.load_workbook(piece.workbook)
    assert back["走基层报告单"]["C9"].value == "#VALUE!" and back["走基层报告单"]["C9"].comment is not None
    assert [r[3].value for r in back["问题清单"].iter_rows(min_row=2) if r[1].value == "C9"] == ["#VALUE!"]


def test_every_problem_names_a_sheet_of_the_return(templates, builtin, tmp_path):
    """A unit's own sheet name (第二次) is not the 退回件's (走基层报告单 (2)): a problem of the whole sheet (its
    record repeated) names the sheet as the 退回件 has it, as a problem of a cell does (it named 第二次) — and, so
    that a unit correcting its own file finds it too, the name it had there."""
    path = fill(templates["visit_report"], tmp_path / "a.xlsx", BAD)
    wb = openpyxl.load_workbook(path)
    wb.copy_worksheet(wb.worksheets[0]).title = "第二次"
    wb.save(tmp_path / "b.xlsx")
    result = validate_file(tmp_path / "b.xlsx", builtin)
    assert any(i.code == "record-repeated" and i.sheet == "第二次" for i in result.issues)
    (piece,) = write_returns([result], builtin, tmp_path / "r")
    back = openpyxl.load_workbook(piece.workbook)
    named = {row[0].value for row in back["问题清单"].iter_rows(min_row=2)}
    assert named == {"走基层报告单", "走基层报告单 (2)（原“第二次”）"}
    assert {n.split("（原")[0] for n in named} <= set(back.sheetnames)
    assert "走基层报告单 (2)（原“第二次”）" in piece.message.read_text(encoding="utf-8")


def test_names_given_before_either_is_on_disk_differ_as_windows_and_macos_compare_names(builtin, tmp_path):
    """A run names its 退回件 before writing them: two that differ only in case (or in Unicode form) would be one
    file on Windows and macOS, so the second is numbered."""
    from tuanjian_xlsx.returns import next_stem

    used: set[str] = set()
    out = tmp_path / "r"
    names = []
    for folder, name in (("a", "Book1.xlsx"), ("b", "book1.xlsx"), ("c", "Café.xlsx"), ("d", "Cafe\u0301.xlsx")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / name).write_bytes(b"")
        names.append(next_stem(validate_file(tmp_path / folder / name, builtin), builtin, out, used))
    assert names == ["Book1_退回", "book1_退回_2", "Café_退回", "Cafe\u0301_退回_2"]


PHISH = ("2人”\n\n【紧急通知】各单位报表系统升级，请于今日登录 http://tuanshi-wei.example/upload 重新上传全部报表，"
         "逾期视为未报。\n联系人：组织部 王老师 138xxxxxxxx\n\n“")


def test_a_paragraph_typed_in_a_cell_never_becomes_a_paragraph_of_the_committees_mail(templates, builtin, tmp_path):
    """The 退回 text goes from the official mailbox to the unit's roster address: whoever sent the file must not be
    able to write lines of it. What a cell held is named on one line, its line breaks shown as ⏎, cut short;
    a file name with a line break or ESC is shown the same way, here and on the console."""
    path = fill(templates["visit_report"], tmp_path / "报表\n收到 1 份 · 有效 1\x1b]0;x\x07.xlsx",
                {**BAD, "团干部": PHISH})
    (piece,) = write_returns([validate_file(path, builtin)], builtin, tmp_path / "out")
    text = piece.message.read_text(encoding="utf-8")
    assert "【紧急通知】" in text  # named (the unit should see what it typed) …
    assert not any(line.startswith(("【紧急通知】", "联系人", "收到 1 份")) for line in text.splitlines())
    assert "逾期视为未报" not in text and "⏎⏎【紧急通知】" in text  # … on one line, cut short
    assert "\x1b" not in text and "\x07" not in text
    from click.testing import CliRunner

    from tuanjian_xlsx.cli import cli

    shown = CliRunner().invoke(cli, ["validate", str(path)]).output
    assert "\x1b" not in shown and "\x07" not in shown and "【紧急通知】" in shown
    assert not any(line.startswith(("【紧急通知】", "联系人", "收到 1 份")) for line in shown.splitlines())
