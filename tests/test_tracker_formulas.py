"""The templates, distributed copies and 退回件 open showing what the programs compute: every formula's cached value
equals LibreOffice's forced recalculation (one soffice call for the whole set) — trackers from a distributed copy
and from the blank template (unit chosen, period missing or wrong), values exactly at target, numbers typed as text,
是否 rows, and filled forms with typed values the validator reads with a warning. And no formula text is written
outside `formulas`."""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path

import openpyxl
import pytest

from conftest import fill
from tuanjian_xlsx.build import Prefill, build_template
from tuanjian_xlsx.periods import parse_period
from tuanjian_xlsx.returns import write_returns
from tuanjian_xlsx.validate import validate_file

PACKAGE = Path(__file__).resolve().parent.parent / "tuanjian_xlsx"
TRACKER = "target_tracker"


def _same(ours, theirs) -> bool:
    if ours in (None, "") or theirs in (None, ""):
        return ours in (None, "") and theirs in (None, "")
    if isinstance(ours, (int, float)) and isinstance(theirs, (int, float)):
        return math.isclose(ours, theirs, rel_tol=1e-12, abs_tol=1e-12)
    return ours == theirs


def _copy(builtin, tmp: Path, name: str, unit: str, period: str, form_id: str = TRACKER) -> Path:
    spec = builtin.registry.get(form_id)
    p = parse_period(period)
    path = tmp / f"{name}.xlsx"
    path.write_bytes(build_template(spec, builtin.roster, prefill=Prefill(builtin.roster.unit_by_name(unit), p.code,
                                                                          p.label, dt.date(2026, 4, 10))))
    return path


def _fill_rows(src: Path, dst: Path, builtin, header: dict, rows: dict[str, dict[str, object]]) -> Path:
    """Type into a tracker as a person does: header cells by label, task rows by their code in column A."""
    spec = builtin.registry.get(TRACKER)
    fill(src, dst, header)
    wb = openpyxl.load_workbook(dst)
    ws = wb[spec.sheet_name]
    at = {ws.cell(r, 1).value: r for r in range(spec.header_row + 1, ws.max_row + 1)}
    for code, cols in rows.items():
        for col, value in cols.items():
            ws.cell(at[code], spec.col_index(col) + 1, value)
    wb.save(dst)
    return dst


def _return(path: Path, builtin, out: Path) -> Path:
    (piece,) = write_returns([validate_file(path, builtin)], builtin, out)
    assert piece.workbook is not None
    return piece.workbook


@pytest.fixture(scope="module")
def generated(builtin, templates, tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("generated")
    sent = tmp / "sent"
    sent.mkdir()
    files: dict[str, Path] = {f"模板_{k}": v for k, v in templates.items()}
    files["下发_台账"] = _copy(builtin, tmp, "下发_台账", "源汇区团委", "2026-Q1")
    files["下发_台账_部室"] = _copy(builtin, tmp, "下发_台账_部室", "组织部", "2026-Q1")
    files["下发_走基层"] = _copy(builtin, tmp, "下发_走基层", "源汇区团委", "2026-03", "visit_report")

    # a distributed tracker: ratios exactly at target, numbers typed as text, 完成数 above 基数, a count as text
    at_target = _fill_rows(files["下发_台账"], sent / "at_target.xlsx", builtin, {"填表时间": dt.datetime(2026, 4, 2)}, {
        "2-1": {"done": 12.6, "base": 63},          # exactly 20 %
        "1-3-2": {"done": 2, "base": 5},            # exactly 40 %
        "1-1-1": {"done": "12", "base": 10},        # text above the base: flagged, kept as typed
        "1-1-2": {"done": "12", "base": "10"},
        "1-1-3": {"done": "3", "base": "4"},        # read with warnings, written back as numbers
        "2-3": {"done": "3.5"},                     # not a whole number: kept as typed text
        "1-2": {"done": 3, "base": 4},
        "1-6": {"done": 9, "base": 4},
        "2-4": {"done": " 5人", "base": "5"},
        "1-3-1": {"done": 0, "base": 0},            # nothing to cover: met (as the assessment scores it)
        "1-3-3": {"done": 0, "base": "无"},         # a base typed as text is no base of 0
    })
    files["退回_台账_下发"] = _return(at_target, builtin, tmp / "r1")
    # 机关部室: 是否 and a count
    dept = _fill_rows(files["下发_台账_部室"], sent / "dept.xlsx", builtin, {"填表时间": "2026年4月2日"}, {
        "3-1": {"done": "可能"}, "3-2": {"done": "1"}, "5": {"done": " 是"}})
    files["退回_台账_部室"] = _return(dept, builtin, tmp / "r2")
    # the blank template, unit chosen from the dropdown, period missing / wrong
    missing = _fill_rows(templates[TRACKER], sent / "blank_no_period.xlsx", builtin,
                         {"报送单位": "西城区团工委", "填表时间": dt.datetime(2026, 4, 2)},
                         {"1-2": {"done": 3, "base": 4}, "2-3": {"done": "1"}})
    files["退回_空白_缺报送期"] = _return(missing, builtin, tmp / "r3")
    wrong = _fill_rows(templates[TRACKER], sent / "blank_bad_period.xlsx", builtin,
                       {"报送单位": "源汇区团委", "报送期": "2026-13"}, {"2-1": {"done": 12.6, "base": 63}})
    files["退回_空白_错报送期"] = _return(wrong, builtin, tmp / "r4")
    # forms: values read with a warning, a full-width space in a required cell, 2.5 where a whole number belongs
    visit = fill(templates["visit_report"], sent / "visit.xlsx", {
        "报送单位": "源汇区团委", "报送期": "2026-03", "填表时间": "2026年3月5日", "姓名": "\u3000",
        "单位职务": "书记", "走访团组织名称": "一中团委", "走访形式": " 实地走访", "团干部": "5人", "团员青年": 2.5,
        "基层团组织工作开展情况": "有", "基层团组织工作亮点": "有"})
    files["退回_走基层"] = _return(visit, builtin, tmp / "r5")
    observe = fill(templates["observation_report"], sent / "observe.xlsx", {
        "报送单位": "源汇区团委", "报送期": "2026年13月", "填表时间": "2026.4.3"})
    files["退回_观摩"] = _return(observe, builtin, tmp / "r6")
    return files


@pytest.fixture(scope="module")
def recalculated(generated, libreoffice, tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("lo")
    named = {}
    for key, path in generated.items():
        named[key] = tmp / "in" / f"{key}.xlsx"
        named[key].parent.mkdir(exist_ok=True)
        named[key].write_bytes(path.read_bytes())
    outs = libreoffice.convert_many(list(named.values()), tmp / "out")
    return dict(zip(named, outs))


def _formula_cells(path: Path):
    wb = openpyxl.load_workbook(path)
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                if isinstance(c.value, str) and c.value.startswith("="):
                    yield ws.title, c.coordinate


def test_every_cached_value_equals_libreoffice(generated, recalculated):
    bad, seen = [], 0
    for key, path in generated.items():
        ours = openpyxl.load_workbook(path, data_only=True)
        theirs = openpyxl.load_workbook(recalculated[key], data_only=True)
        for sheet, cell in _formula_cells(path):
            seen += 1
            a, b = ours[sheet][cell].value, theirs[sheet][cell].value
            if not _same(a, b):
                bad.append((key, sheet, cell, a, b))
    assert seen > 500
    assert not bad, "\n".join(map(str, bad[:30]))


def _rows(path: Path, builtin):
    spec = builtin.registry.get(TRACKER)
    ws = openpyxl.load_workbook(path, data_only=True)[spec.sheet_name]
    col = {c.id: i + 1 for i, c in enumerate(spec.columns)}
    at = {ws.cell(r, 1).value: r for r in range(spec.header_row + 1, ws.max_row + 1)}
    return ws, lambda code, c: ws.cell(at[code], col[c]).value


def test_values_at_target_and_typed_text_cache_what_the_programs_say(generated, builtin):
    ws, v = _rows(generated["退回_台账_下发"], builtin)
    assert (v("2-1", "rate"), v("2-1", "met")) == (pytest.approx(0.2), "达标")
    assert (v("1-3-2", "rate"), v("1-3-2", "met")) == (pytest.approx(0.4), "达标")
    assert v("1-1-1", "done") == "12"  # kept as typed (marked: above its base) …
    assert (v("1-1-1", "rate"), v("1-1-1", "met")) == (pytest.approx(1.2), "达标")  # … and counted as 12
    assert (v("1-2", "rate"), v("1-2", "met")) == (0.75, "未达标")
    assert (v("1-3-1", "rate"), v("1-3-1", "met")) == (None, "达标")  # 0 of 0: no division, nothing left to cover
    assert v("1-3-3", "met") in (None, "")
    assert v("2-3", "done") == "3.5" and v("2-3", "rate") == pytest.approx(3.5 / 3)


@pytest.mark.parametrize("key, unit_type, target", [("退回_空白_缺报送期", "功能区团工委", 1),
                                                    ("退回_空白_错报送期", "县区团委", 3)])
def test_a_blank_template_return_follows_the_chosen_unit(key, unit_type, target, generated, builtin):
    """Unit type, per-type targets and the rows it must fill come from the unit chosen in the file."""
    ws, v = _rows(generated[key], builtin)
    assert ws["G3"].value == unit_type
    assert v("2-3", "target") == target
    line = ws["A1"].value
    assert line.startswith("自查：还有") and "必填项已填齐" not in line
    empty = int(re.match(r"自查：还有(\d+)项", line).group(1))
    assert empty >= 2 * sum(t.kind in ("ratio", "growth") for t in builtin.roster.tasks_for(unit_type)) - 2


def test_no_tracker_with_empty_required_cells_says_it_is_complete(generated, builtin):
    spec = builtin.registry.get(TRACKER)
    for key, path in generated.items():
        if "台账" in key or "空白" in key or key == f"模板_{TRACKER}":
            line = openpyxl.load_workbook(path, data_only=True)[spec.sheet_name]["A1"].value
            assert "必填项已填齐" not in line, (key, line)


def test_the_forms_self_check_says_what_to_retype(generated):
    ws = openpyxl.load_workbook(generated["退回_走基层"], data_only=True)["走基层报告单"]
    line = ws["A1"].value
    # 姓名 holds a full-width space: empty, as the validator says; 2.5 is wrong
    assert line.startswith("自查：还有1项必填未填，1项格式有误"), line
    assert ws["B6"].value == "\u3000"


# --- no formula text outside formulas.py ---------------------------------------------------------------------------

WRITERS = ("build/__init__.py", "build/chrome.py", "build/forms.py", "build/tracker.py", "selfcheck.py", "returns.py",
           "fieldtypes.py")


@pytest.mark.parametrize("module", WRITERS)
def test_no_formula_text_outside_the_formulas_module(module):
    src = (PACKAGE / module).read_text(encoding="utf-8")
    assert src.count("write_formula(") == (1 if module == "build/chrome.py" else 0)  # Book.finish
    assert "=IF(" not in src and "=COUNT" not in src and "=SUM" not in src
    assert not re.search(r"""["']=\s*[A-Z][A-Z.]*\(""", src), "formula text in a string"
    assert not re.search(r"""["']criteria["']\s*:\s*(f?["']=|["']=["']\s*\+)""", src), "a criteria string"
    assert not re.search(r"""["']source["']\s*:\s*(f?["']=|["']=["']\s*\+)""", src), "a list source string"


# --- the hidden list sheet is reached through names ----------------------------------------------------------------


@pytest.mark.parametrize("key", ["模板_visit_report", "模板_observation_report", f"模板_{TRACKER}", "下发_台账_部室",
                                 "退回_走基层"])
def test_dropdowns_and_marks_reach_the_lists_through_workbook_names(key, generated):
    """Excel before 2010 and some WPS builds refuse another sheet's cells in a conditional format."""
    wb = openpyxl.load_workbook(generated[key])
    for ws in wb.worksheets:
        for cf in ws.conditional_formatting:
            for rule in cf.rules:
                assert all("!" not in f for f in rule.formula), (ws.title, cf.sqref, rule.formula)
        for dv in ws.data_validations.dataValidation:
            if dv.type == "list":
                name = wb.defined_names[dv.formula1]  # a workbook-level name …
                ((sheet, _),) = list(name.destinations)
                assert sheet == "_lists"  # … of the hidden list sheet
    for ws in wb.worksheets:  # and the 自查 itself names no other sheet either
        for row in ws.iter_rows():
            for c in row:
                if isinstance(c.value, str) and c.value.startswith("=") and ws.title != "_lists":
                    assert "_lists!" not in c.value, (ws.title, c.coordinate)


def test_a_share_is_of_whole_things(builtin, tmp_path):
    """A 比率 task counts things (firms with a league branch, of all firms): 45% typed into 完成数 (0.45 in the
    cell) or 12.5 firms passed and bent the city's Σ完成数 ÷ Σ基数; a growth task may still hold a fraction."""
    copy = _copy(builtin, tmp_path, "c", "源汇区团委", "2026-Q1")
    filled = _fill_rows(copy, tmp_path / "f.xlsx", builtin, {"填表时间": dt.datetime(2026, 4, 2)},
                        {"1-3-2": {"done": 0.45, "base": 1}, "1-3-1": {"done": 12.5, "base": 30},
                         "2-1": {"done": 12.6, "base": 63}})
    r = validate_file(filled, builtin)
    wrong = {(i.field, i.code) for i in r.issues if i.severity == "error" and i.field and i.field[:5] in ("1-3-2", "1-3-1", "2-1 ")}
    assert wrong == {("1-3-2 完成数/完成值", "not-an-integer"), ("1-3-1 完成数/完成值", "not-an-integer")}



def test_a_rate_just_under_its_target_does_not_show_as_the_target(generated):
    """39.99% was shown as 40.0% beside 未达标 (one decimal place): rates show two."""
    sheet = openpyxl.load_workbook(generated["下发_台账"])["目标任务台账"]
    row = next(c.row for c in sheet["A"] if c.value == "1-3-2")
    assert sheet.cell(row, 13).number_format == "0.00%"


def test_not_applicable_typed_in_a_number_says_what_to_write(builtin, tmp_path):
    """不适用, 无, — in a row that does not apply were refused as 应填数字, with no word of writing 0 (0 of 0 is met)."""
    copy = _copy(builtin, tmp_path, "c", "源汇区团委", "2026-Q1")
    filled = _fill_rows(copy, tmp_path / "f.xlsx", builtin, {"填表时间": dt.datetime(2026, 4, 2)},
                        {"1-3-2": {"done": "不适用", "base": "—"}, "1-3-1": {"done": "abc", "base": 3}})
    r = validate_file(filled, builtin)
    got = {(i.field, i.code) for i in r.issues if i.field and i.field[:5] in ("1-3-2", "1-3-1")}
    assert got == {("1-3-2 完成数/完成值", "not-applicable-number"), ("1-3-2 基数", "not-applicable-number"),
                   ("1-3-1 完成数/完成值", "not-a-number")}
    assert "都填 0" in next(i.message for i in r.issues if i.code == "not-applicable-number")
