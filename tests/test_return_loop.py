"""The 退回件 loop closes: a unit corrects the red cells of the product's own 退回件, sends it back with 问题清单
still in it, and the file is valid with exactly its own records. Every 退回件 opens on 问题清单, the one selected sheet.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import subprocess

import openpyxl
import pytest

from conftest import _norm, fill
from tuanjian_xlsx.build import Prefill, build_template
from tuanjian_xlsx.cells import parse_cell
from tuanjian_xlsx.periods import parse_period
from tuanjian_xlsx.passport import PROBLEM_SHEET
from tuanjian_xlsx.read import open_package, read_forms
from tuanjian_xlsx.returns import write_returns
from tuanjian_xlsx.validate import validate_file

UNIT = "源汇区团委"  # 县区团委: files all three forms; its tracker has ratio, count and qualitative rows
PERIOD = {"visit_report": "2026-03", "observation_report": "2026-Q1", "target_tracker": "2026-Q1"}
HOW_MANY = ("one", "half", "all")


# --- what a unit types: right values, and a wrong one for each kind of field -------------------------------------


def _good(f, form_id: str):
    period = parse_period(PERIOD[form_id])
    return {"unit": UNIT, "period": PERIOD[form_id]}.get(f.id) or {
        "date": dt.datetime.combine(period.first_day + dt.timedelta(days=2), dt.time()),
        "integer": 3, "number": 1.5, "choice": f.choices[0] if f.choices else None,
    }.get(f.type) or f"{f.label}的内容"


def _bad(f):
    if f.choices_from == "units":
        return "不在名单里的单位"
    return {"choice": "不在列表中", "period": "2026年13月", "date": "不是日期", "integer": 2.5, "number": -1}.get(f.type)


def _wrongable(f) -> bool:
    """Any text is a right text: an optional text field cannot be wrong."""
    return f.required or f.type not in ("text", "long_text")


def _pick(items: list, how_many: str, total: int) -> list:
    """The last one, the last half of all fields (so that 问题清单 names at least half the form), or all."""
    n = {"one": 1, "half": math.ceil(total / 2), "all": len(items)}[how_many]
    return items[len(items) - min(n, len(items)):]


def _expected(f, form_id: str):
    v = _good(f, form_id)
    return v.date() if isinstance(v, dt.datetime) else v


# --- checks on every 退回件 ---------------------------------------------------------------------------------------


def one_selected_sheet_and_it_is_the_problem_list(path) -> None:
    wb = openpyxl.load_workbook(path)
    assert wb.active.title == PROBLEM_SHEET
    assert [ws.title for ws in wb.worksheets if ws.sheet_view.tabSelected] == [PROBLEM_SHEET]


def _label_left_of(ws, cell) -> str:
    """What a person reads to know what a red cell wants: the nearest text to its left."""
    for col in range(cell.column - 1, 0, -1):
        v = ws.cell(row=cell.row, column=col).value
        if isinstance(v, str) and v.strip():
            return _norm(v)
    raise KeyError(cell.coordinate)


def _red_cells(ws):
    return [c for row in ws.iter_rows() for c in row if c.comment is not None]


# --- one-record forms ------------------------------------------------------------------------------------------


def _form_case(form_id, how_many, templates, builtin, tmp_path):
    spec = builtin.registry.get(form_id, builtin.settings.forms[form_id].current_version)
    wrong = {f.id for f in _pick([f for f in spec.fields if _wrongable(f)], how_many, len(spec.fields))}
    typed = {f.label: (_bad(f) if f.id in wrong else _good(f, form_id)) for f in spec.fields}
    sent = fill(templates[form_id], tmp_path / "报送.xlsx", {k: v for k, v in typed.items() if v is not None})
    first = validate_file(sent, builtin)
    assert not first.valid
    assert {i.field for i in first.issues if i.severity == "error"} == {f.label for f in spec.fields if f.id in wrong}
    (piece,) = write_returns([first], builtin, tmp_path / "退回")
    return spec, wrong, piece


@pytest.mark.parametrize("how_many", HOW_MANY)
@pytest.mark.parametrize("form_id", ["visit_report", "observation_report"])
def test_corrected_return_of_a_form_is_valid_with_exactly_its_own_record(form_id, how_many, templates, builtin,
                                                                         tmp_path):
    spec, wrong, piece = _form_case(form_id, how_many, templates, builtin, tmp_path)
    one_selected_sheet_and_it_is_the_problem_list(piece.workbook)
    by_label = {_norm(f.label): f for f in spec.fields}
    wb = openpyxl.load_workbook(piece.workbook)  # the person corrects each red cell, 问题清单 stays in the file
    ws = wb[spec.sheet_name]
    red = _red_cells(ws)
    assert {by_label[_label_left_of(ws, c)].id for c in red} == wrong
    for c in red:
        ws[c.coordinate] = _good(by_label[_label_left_of(ws, c)], form_id)
    wb.save(tmp_path / "改好.xlsx")

    again = validate_file(tmp_path / "改好.xlsx", builtin)
    assert again.valid, [i.render() for i in again.issues]
    (record,) = again.records
    assert record.sheet == spec.sheet_name
    assert record.values == {f.id: _expected(f, form_id) for f in spec.fields}
    assert (again.unit, again.period) == (UNIT, PERIOD[form_id])
    assert not [i for i in again.issues if i.sheet == PROBLEM_SHEET]


# --- the target tracker ---------------------------------------------------------------------------------------

ROW_GOOD = {"done": {"ratio": 1, "growth": -1, "count": 3, "yesno": "是"}, "base": {"ratio": 2, "growth": 2},
            "progress": "进展情况"}
ROW_BAD = {"done": {"ratio": "三两个", "growth": "三两个", "count": 2.5, "yesno": "可能"},
           "base": {"ratio": -1, "growth": -1}}


def _row_inputs(task) -> list[str]:
    """The cells of a task's row that can be wrong: its numbers, or its progress for a qualitative task."""
    return {"ratio": ["done", "base"], "growth": ["done", "base"], "count": ["done"], "yesno": ["done"], "qualitative": ["progress"]}[task.kind]


def _row_value(task, col: str, good: bool):
    table = ROW_GOOD if good else ROW_BAD
    v = table.get(col)
    return v.get(task.kind) if isinstance(v, dict) else v


@pytest.mark.parametrize("how_many", HOW_MANY)
def test_corrected_return_of_the_tracker_is_valid_with_exactly_its_own_rows(how_many, builtin, tmp_path):
    spec = builtin.registry.get("target_tracker", builtin.settings.forms["target_tracker"].current_version)
    unit = builtin.roster.unit_by_name(UNIT)
    period = parse_period(PERIOD["target_tracker"])
    tasks = builtin.roster.tasks_for(unit.type)
    copy = tmp_path / "下发.xlsx"
    copy.write_bytes(build_template(spec, builtin.roster, prefill=Prefill(unit, period.code, period.label)))

    cells = [("fill_date", None)] + [(t.code, col) for t in tasks for col in _row_inputs(t)]
    wrong = set(_pick(cells, how_many, len(cells)))
    wb = openpyxl.load_workbook(copy)
    ws = wb[spec.sheet_name]
    date_cell = spec.field("fill_date").input_cell
    ws[date_cell] = "不是日期" if ("fill_date", None) in wrong else _good(spec.field("fill_date"), "target_tracker")
    row_of = {ws.cell(row=r, column=1).value: r for r in range(spec.header_row + 1, ws.max_row + 1)}
    for t in tasks:
        ws.cell(row=row_of[t.code], column=spec.col_index("progress") + 1, value=ROW_GOOD["progress"])
        for col in _row_inputs(t):
            cell = ws.cell(row=row_of[t.code], column=spec.col_index(col) + 1)
            cell.value = _row_value(t, col, (t.code, col) not in wrong)
    wb.save(tmp_path / "报送.xlsx")
    first = validate_file(tmp_path / "报送.xlsx", builtin)
    assert len({(i.cell, i.field) for i in first.issues if i.severity == "error"}) == len(wrong)
    (piece,) = write_returns([first], builtin, tmp_path / "退回")
    one_selected_sheet_and_it_is_the_problem_list(piece.workbook)

    wb = openpyxl.load_workbook(piece.workbook)
    ws = wb[spec.sheet_name]
    heading = {_norm(c.label): c.id for c in spec.columns}
    task_of = {t.code: t for t in tasks}
    red = _red_cells(ws)
    assert len(red) == len(wrong)
    for c in red:
        if c.row > spec.header_row:  # a task's row: its code on the left, the column's heading above
            task = task_of[ws.cell(row=c.row, column=1).value]
            c.value = _row_value(task, heading[_norm(ws.cell(row=spec.header_row, column=c.column).value)], True)
        else:
            assert _label_left_of(ws, c) == "填表时间"
            c.value = _good(spec.field("fill_date"), "target_tracker")
    wb.save(tmp_path / "改好.xlsx")

    again = validate_file(tmp_path / "改好.xlsx", builtin)
    assert again.valid, [i.render() for i in again.issues]
    assert [r.values["code"] for r in again.records] == [t.code for t in tasks]
    for r in again.records:
        t = task_of[r.values["code"]]
        assert {col: r.values[col] for col in ("done", "base", "progress")} == {
            col: _row_value(t, col, True) for col in ("done", "base", "progress")}
    assert {r.sheet for r in again.records} == {spec.sheet_name}


# --- a 退回件 sent back as it is, or stripped of its passport ----------------------------------------------------


def test_a_return_sent_back_uncorrected_is_one_form_again(templates, builtin, tmp_path):
    _, _, piece = _form_case("observation_report", "all", templates, builtin, tmp_path)
    again = validate_file(piece.workbook, builtin)
    assert len(again.records) == 1 and again.records[0].sheet == "观摩报告单"
    assert not [i for i in again.issues if i.sheet == PROBLEM_SHEET]
    (second,) = write_returns([again], builtin, tmp_path / "再退回")
    assert openpyxl.load_workbook(second.workbook).sheetnames == [PROBLEM_SHEET, "观摩报告单", "_lists", "_passport"]
    one_selected_sheet_and_it_is_the_problem_list(second.workbook)


def test_the_passport_calls_the_problem_list_not_a_form(templates, builtin, tmp_path):
    _, _, piece = _form_case("observation_report", "all", templates, builtin, tmp_path)
    wb = openpyxl.load_workbook(piece.workbook)
    assert dict(wb["_passport"].iter_rows(values_only=True))["not_forms"] == PROBLEM_SHEET
    assert open_package(piece.workbook).passport()["not_forms"] == PROBLEM_SHEET
    blank = openpyxl.load_workbook(templates["observation_report"])  # a template has no such entry
    assert "not_forms" not in dict(blank["_passport"].iter_rows(values_only=True))


def test_a_problem_list_is_not_a_form_even_without_the_passport(templates, builtin, tmp_path):
    """A unit that copies the 退回件's sheets into a workbook of its own: no passport, read by labels."""
    spec, _, piece = _form_case("observation_report", "all", templates, builtin, tmp_path)
    wb = openpyxl.load_workbook(piece.workbook)
    own = openpyxl.Workbook()
    own.remove(own.active)
    for name in (PROBLEM_SHEET, spec.sheet_name):
        target = own.create_sheet(name)
        for row in wb[name].iter_rows():
            for c in row:
                target[c.coordinate] = c.value
        for rng in wb[name].merged_cells.ranges:
            target.merge_cells(str(rng))
    own.save(tmp_path / "自己的表.xlsx")
    forms = read_forms(open_package(tmp_path / "自己的表.xlsx"), spec)
    assert [f.sheet for f in forms] == [spec.sheet_name]


# --- LibreOffice opens a 退回件 on 问题清单, and the loop survives its re-save ----------------------------------------


def test_libreoffice_opens_the_return_on_the_problem_list(templates, builtin, tmp_path, libreoffice):
    spec, _, piece = _form_case("visit_report", "half", templates, builtin, tmp_path)
    back = libreoffice.convert(piece.workbook, tmp_path / "lo")
    one_selected_sheet_and_it_is_the_problem_list(back)
    again = validate_file(back, builtin)  # re-saved by LibreOffice with 问题清单 in it: still one form
    assert [r.sheet for r in again.records] == [spec.sheet_name]
    assert not [i for i in again.issues if i.sheet == PROBLEM_SHEET]


# --- a wrong number shows as typed -------------------------------------------------------------------------------


def _as_shown(lo, src, outdir, sheet_number: int) -> list[list[str]]:
    """One sheet as LibreOffice shows it (cell contents "as shown"), through its CSV export."""
    outdir.mkdir(parents=True, exist_ok=True)
    options = f"44,34,76,1,,0,false,true,true,false,false,{sheet_number}"
    cmd = [lo.binary, f"-env:UserInstallation={lo.profile.as_uri()}", "--headless", "--norestore", "--convert-to",
           f"csv:Text - txt - csv (StarCalc):{options}", "--outdir", str(outdir), str(src)]
    subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=180)
    (out,) = outdir.glob("*.csv")
    with out.open(encoding="utf-8") as f:
        return list(csv.reader(f))


def test_an_integer_cell_holding_2_5_shows_2_5_while_marked_wrong(templates, builtin, tmp_path, libreoffice):
    spec = builtin.registry.get("visit_report", builtin.settings.forms["visit_report"].current_version)
    typed = {f.label: _good(f, "visit_report") for f in spec.fields}
    sent = fill(templates["visit_report"], tmp_path / "报送.xlsx", {**typed, "团干部": 2.5, "团员青年": 4})
    (piece,) = write_returns([validate_file(sent, builtin)], builtin, tmp_path / "退回")
    cell = spec.field("cadre_count").input_cell
    ws = openpyxl.load_workbook(piece.workbook)[spec.sheet_name]
    assert ws[cell].value == "2.5" and ws[cell].comment is not None  # as typed, and marked
    assert [c.coordinate for c in _red_cells(ws)] == [cell]
    r, c = parse_cell(cell)
    shown = _as_shown(libreoffice, piece.workbook, tmp_path / "csv", 2)
    assert shown[r][c] == "2.5"
    assert shown[r + 1][c] == "4"  # a right integer still shows as one
