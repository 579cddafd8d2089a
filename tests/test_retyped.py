"""Forms as units really type them: "2026年1月份", a date typed into the label cell as the plan prints it, labels
merged across two columns in a table of their own; and .ods re-saves, whose named ranges are read."""

from __future__ import annotations

import datetime as dt

import openpyxl
import pytest

from conftest import beside_label, fill, triples
from tuanjian_xlsx.periods import parse_period
from tuanjian_xlsx.read import open_package, read_forms
from tuanjian_xlsx.returns import write_returns
from tuanjian_xlsx.validate import validate_file

VISIT = {"报送单位": "源汇区团委", "报送期": "2026-01", "填表时间": dt.datetime(2026, 1, 24), "姓名": "张三",
         "单位职务": "组织部部长", "走访团组织名称": "源汇区第一中学团委", "走访形式": "座谈交流", "团干部": 2,
         "团员青年": 15, "基层团组织工作开展情况": "开展主题团日", "基层团组织工作亮点": "志愿服务"}


@pytest.mark.parametrize("text", ["2026年1月份", "2026 年 1 月份", "２０２６年１月份", "２０２６ 年　１ 月份", " 2026年01月份 "])
def test_a_month_written_with_fen_is_a_period(text):
    assert parse_period(text).code == "2026-01"


@pytest.mark.parametrize("text", ["2026年13月份", "2026年1份", "2026年1月份份"])
def test_what_is_not_a_month_stays_not_a_period(text):
    assert parse_period(text) is None


def test_a_form_with_its_period_as_2026_nian_1_yuefen_is_valid(templates, builtin, tmp_path):
    path = fill(templates["visit_report"], tmp_path / "一月.xlsx", {**VISIT, "报送期": "２０２６年 １ 月份"})
    result = validate_file(path, builtin)
    assert result.valid, [i.render() for i in result.issues]
    assert result.period == "2026-01"


# --- "填表时间：2026年1月24日" typed into the label cell ---------------------------------------------------------------


@pytest.mark.parametrize("typed", ["填表时间：2026年1月24日", "填表时间:2026年1月24日", "填表时间： 2026 年 1 月 24 日"])
def test_a_date_typed_after_the_labels_colon_is_read_with_a_warning(typed, templates, builtin, tmp_path):
    values = {k: v for k, v in VISIT.items() if k != "填表时间"}
    path = fill(templates["visit_report"], tmp_path / "a.xlsx", values)
    wb = openpyxl.load_workbook(path)
    ws = wb.worksheets[0]
    label = _cell_reading(ws, "填表时间：")
    assert ws[beside_label(ws, "填表时间")].value is None  # the input cell is left empty, as on the printed plan
    ws[label] = typed
    wb.save(path)

    result = validate_file(path, builtin)
    assert result.valid, [i.render() for i in result.issues]
    assert result.records[0].values["fill_date"] == dt.date(2026, 1, 24)
    assert triples(result) == [("a.xlsx", label, "normalised-date"), ("a.xlsx", label, "value-in-label")]
    (note,) = [i for i in result.issues if i.code == "value-in-label"]
    assert note.severity == "warning" and note.field == "填表时间" and "D5 为空" in note.message


def test_a_filled_input_wins_over_text_after_the_labels_colon(templates, builtin, tmp_path):
    path = fill(templates["visit_report"], tmp_path / "b.xlsx", VISIT)
    wb = openpyxl.load_workbook(path)
    ws = wb.worksheets[0]
    ws[_cell_reading(ws, "填表时间：")] = "填表时间：2026年1月2日"
    wb.save(path)
    result = validate_file(path, builtin)
    assert result.valid and result.records[0].values["fill_date"] == dt.date(2026, 1, 24)
    assert triples(result) == []  # the label still reads as the label: found by name, nothing to say


def _cell_reading(ws, text: str) -> str:
    (cell,) = [c.coordinate for row in ws.iter_rows() for c in row if c.value == text]
    return cell


# --- a unit's own retyped table: labels merged across two columns, values in the third --------------------------


def _own_table(path, rows: list[tuple[str, object]]):
    """Title, then one row per field: the label merged over A:B, the value in C (or typed after the label's colon)."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "一月走访"
    ws["A1"] = "团干部走基层情况报告单"
    ws.merge_cells("A1:C1")
    for r, (label, value) in enumerate(rows, start=3):
        ws.cell(row=r, column=1, value=label)
        ws.merge_cells(start_row=r, start_column=1, end_row=r, end_column=2)
        if value is not None:
            ws.cell(row=r, column=3, value=value)
    wb.save(path)
    return path


OWN = [("报送单位：源汇区团委", None), ("报送期", "2026年1月份"), ("填表时间：2026年1月24日", None), ("姓名", "张三"),
       ("单位职务", "组织部部长"), ("走访团组织名称", "源汇区第一中学团委"), ("走访形式", "座谈交流"), ("团干部", 2),
       ("团员青年", 15), ("基层团组织工作开展情况", "开展主题团日"), ("基层团组织工作亮点", "志愿服务"),
       ("基层团组织工作存在问题", "无"), ("帮扶措施及成效", "结对帮扶")]


def test_a_retyped_table_with_merged_labels_reads_the_value_right_of_the_merge(builtin, tmp_path):
    path = _own_table(tmp_path / "自制.xlsx", OWN)
    result = validate_file(path, builtin)
    assert result.valid, [i.render() for i in result.issues]
    assert (result.form_id, result.unit, result.period) == ("visit_report", "源汇区团委", "2026-01")
    (record,) = result.records
    assert record.values == {"unit": "源汇区团委", "period": "2026-01", "fill_date": dt.date(2026, 1, 24),
                             "name": "张三", "position": "组织部部长", "org_name": "源汇区第一中学团委",
                             "visit_form": "座谈交流", "cadre_count": 2, "youth_count": 15,
                             "work_status": "开展主题团日", "highlights": "志愿服务", "problems": "无",
                             "measures": "结对帮扶"}
    assert record.cells["name"] == "C6" and record.cells["unit"] == "A3" and record.cells["fill_date"] == "A5"
    codes = {(i.cell, i.code) for i in result.issues}
    assert {("A3", "value-in-label"), ("A5", "value-in-label"), (None, "no-passport")} <= codes
    assert all(i.severity == "warning" for i in result.issues)


def test_a_retyped_table_without_merges_still_reads_beside_the_label(builtin, tmp_path):
    """The same table with every label in one cell and its value in the next: no merge, no gap."""
    wb = openpyxl.Workbook()
    ws = wb.active
    for r, (label, value) in enumerate(OWN, start=2):
        ws.cell(row=r, column=1, value=label)
        ws.cell(row=r, column=2, value=value)
    wb.save(tmp_path / "无合并.xlsx")
    result = validate_file(tmp_path / "无合并.xlsx", builtin)
    assert result.valid, [i.render() for i in result.issues]
    assert result.records[0].values["youth_count"] == 15 and result.records[0].cells["youth_count"] == "B10"


# --- .ods: named ranges are read ---------------------------------------------------------------------------------


def test_an_ods_resave_is_read_by_its_names_without_a_template_warning(templates, builtin, tmp_path, libreoffice):
    path = fill(templates["visit_report"], tmp_path / "源汇区.xlsx", {**VISIT, "报送期": "2026-01"})
    ods = libreoffice.convert(path, tmp_path / "ods", to="ods")
    pkg = open_package(ods)
    assert pkg.names["tj_unit"] == ("走基层报告单", "B4") and pkg.names["tj_youth_count"] == ("走基层报告单", "C10")
    result = validate_file(ods, builtin)
    assert result.valid and result.records[0].values["youth_count"] == 15
    assert triples(result) == []


def test_an_ods_return_with_two_records_reads_each_sheets_local_names(templates, builtin, tmp_path, libreoffice):
    path = fill(templates["visit_report"], tmp_path / "两次.xlsx", {**VISIT, "团员青年": "五六人"})
    wb = openpyxl.load_workbook(path)
    wb.copy_worksheet(wb.worksheets[0])
    wb.save(path)
    (piece,) = write_returns([validate_file(path, builtin)], builtin, tmp_path / "退回")
    ods = libreoffice.convert(piece.workbook, tmp_path / "ods", to="ods")
    pkg = open_package(ods)
    assert pkg.local_names[("走基层报告单 (2)", "tj_youth_count")] == "C10"
    spec = builtin.registry.get("visit_report", 1)
    forms = read_forms(pkg, spec)
    assert [f.sheet for f in forms] == ["走基层报告单", "走基层报告单 (2)"]  # 问题清单 is not a form in .ods either
    assert all(f.issues == [] for f in forms)
