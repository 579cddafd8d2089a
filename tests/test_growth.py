"""A growth over a base (task kind "growth", 2-1 青年之家云平台活跃度提升率 in the plan): 完成数 is the change since the
base, so it may be more than the base (an increase of more than 100 %) or below 0 (a decline). Both are read,
merged and judged against the target (60 over 50 = 120 % 达标; −5 over 50 = −10 % 未达标), the tracker's own 自查
does not mark them, and the master's cached values are what LibreOffice recalculates. A ratio (a share such as a
coverage rate) still refuses 完成数 above 基数."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import openpyxl
import pytest

from tuanjian_xlsx.build import Prefill, build_template
from tuanjian_xlsx.cells import col_to_letters
from tuanjian_xlsx.fieldtypes import TASK_KINDS
from tuanjian_xlsx.merge import merge
from tuanjian_xlsx.plan import Plan, Workspace
from tuanjian_xlsx.validate import validate_file
from tuanjian_xlsx.workspace import init_workspace

GROWTH, RATIO = "2-1", "1-6"  # 青年之家云平台活跃度提升率 (≥20 %), 团属协会建团率 (a share, 100 %)
AS_OF = dt.date(2026, 4, 20)
UNITS = {"yuanhui": {GROWTH: (60, 50)}, "yancheng": {GROWTH: (-5, 50)}}  # both 县区团委


def _tracker(ws: Plan, unit_id: str, values: dict, path: Path) -> Path:
    """A distributed tracker for 2026 Q1 typed in as the unit would: every task filled (1 of 1, 是), but `values`."""
    unit = next(u for u in ws.roster.units if u.id == unit_id)
    spec = ws.registry.get("target_tracker")
    book = openpyxl.load_workbook(io.BytesIO(build_template(spec, ws.roster, prefill=Prefill(unit, "2026-Q1",
                                                                                              "2026年第1季度"))))
    sh = book[spec.sheet_name]
    sh[spec.field("fill_date").input_cell] = dt.datetime(2026, 4, 2)
    col = {c: col_to_letters(spec.col_index(c)) for c in ("done", "base", "progress")}
    for r, task in enumerate(ws.roster.tasks_for(unit.type), start=spec.header_row + 1):
        assert sh[f"A{r}"].value == task.code
        kind = TASK_KINDS[task.kind]
        done, base = values.get(task.code, ("是" if task.kind == "yesno" else 1, 1))
        if kind.input_type(spec.column("done")) is not None:
            sh[f"{col['done']}{r}"] = done
        if kind.input_type(spec.column("base")) is not None:
            sh[f"{col['base']}{r}"] = base
        sh[f"{col['progress']}{r}"] = "进行中"
    book.save(path)
    return path


def _errors(result) -> list[tuple]:
    return [(i.code, i.cell, i.message) for i in result.issues if i.severity == "error"]


def test_the_plan_makes_2_1_a_growth(builtin):
    task = next(t for t in builtin.roster.tasks if t.code == GROWTH)
    assert task.kind == "growth"
    assert task.basis == "完成数：活跃度较基期增加数；基数：基期活跃度"
    assert TASK_KINDS["growth"].input_type(builtin.registry.get("target_tracker").column("done")) == "signed_number"


@pytest.mark.parametrize("done", [60, -5])
def test_a_growth_above_its_base_or_below_zero_is_read(builtin, tmp_path, done):
    path = _tracker(builtin, "yuanhui", {GROWTH: (done, 50)}, tmp_path / "t.xlsx")
    result = validate_file(path, builtin)
    assert _errors(result) == []
    rec = next(r for r in result.records if r.values["code"] == GROWTH)
    assert (rec.values["done"], rec.values["base"]) == (done, 50)


def test_a_ratio_still_refuses_done_above_base(builtin, tmp_path):
    path = _tracker(builtin, "yuanhui", {GROWTH: (60, 50), RATIO: (60, 50)}, tmp_path / "t.xlsx")
    errors = _errors(validate_file(path, builtin))
    assert [(code, message) for code, _, message in errors] == [
        ("done-above-base", f"任务“{RATIO}”的完成数 60 大于基数 50")], errors


def test_a_growth_of_text_below_zero_is_read_with_a_warning(builtin, tmp_path):
    path = _tracker(builtin, "yuanhui", {GROWTH: ("-5", 50)}, tmp_path / "t.xlsx")
    result = validate_file(path, builtin)
    assert _errors(result) == []
    assert [i.code for i in result.issues if "2-1" in (i.field or "")] == ["normalised-number"]


@pytest.fixture(scope="module")
def lo_trackers(builtin, libreoffice, tmp_path_factory) -> dict[str, openpyxl.Workbook]:
    """The filled trackers as LibreOffice recalculates them (their 自查 computed by the spreadsheet itself)."""
    tmp = tmp_path_factory.mktemp("growth_selfcheck")
    paths = [_tracker(builtin, "yuanhui", {GROWTH: (60, 50), RATIO: (60, 50)}, tmp / "over.xlsx"),
             _tracker(builtin, "yuanhui", {GROWTH: (-5, 50)}, tmp / "negative.xlsx")]
    outs = libreoffice.convert_many(paths, tmp / "lo")
    return {p.stem: openpyxl.load_workbook(o, data_only=True) for p, o in zip(paths, outs)}


def _row_counts(builtin, book, code: str) -> dict[str, object]:
    spec = builtin.registry.get("target_tracker")
    sh = book[spec.sheet_name]
    head = {sh.cell(spec.header_row, c).value: c for c in range(1, sh.max_column + 1)}
    r = next(r for r in range(spec.header_row + 1, sh.max_row + 1) if sh.cell(r, 1).value == code)
    return {k: sh.cell(r, head[k]).value for k in ("本行有误", "本行需改", "完成率", "是否达标")}


def test_the_trackers_own_selfcheck_marks_neither_growth(builtin, lo_trackers):
    over, negative = (_row_counts(builtin, lo_trackers[k], GROWTH) for k in ("over", "negative"))
    assert over["本行有误"] == 0 and over["本行需改"] == 0
    assert over["完成率"] == pytest.approx(1.2) and over["是否达标"] == "达标"
    assert negative["本行有误"] == 0 and negative["本行需改"] == 0
    assert negative["完成率"] == pytest.approx(-0.1) and negative["是否达标"] == "未达标"


def test_the_trackers_own_selfcheck_still_marks_a_ratio_above_its_base(builtin, lo_trackers):
    assert _row_counts(builtin, lo_trackers["over"], RATIO)["本行有误"] == 1


@pytest.fixture(scope="module")
def merged(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("growth") / "ws"
    init_workspace(root)
    ws = Workspace.load(root)
    received = {}
    for n, (uid, values) in enumerate(UNITS.items()):
        path = _tracker(ws, uid, values, root / "收件箱" / f"{uid}.xlsx")
        received[path] = dt.datetime(2026, 4, 3 + n, 10)
    result = merge(root, as_of=AS_OF, now=dt.datetime(2026, 4, 20, 9), received=received)
    assert result.valid == len(UNITS), [i.message for i in result.notes]
    return result.master


def _rows(sh, key_cols: tuple[int, ...]) -> dict[tuple, dict]:
    head = [c.value for c in sh[1]]
    return {tuple(r[k] for k in key_cols): dict(zip(head, r)) for r in sh.iter_rows(min_row=2, values_only=True)
            if r[0] is not None}


def test_the_master_shows_each_growth_against_its_target(merged):
    book = openpyxl.load_workbook(merged, data_only=True)
    progress = _rows(book["目标进度"], (0, 3))
    up, down = progress[(GROWTH, "源汇区团委")], progress[(GROWTH, "郾城区团委")]
    assert (up["指标类型"], up["完成数/完成值"], up["基数"], up["是否达标"]) == ("增长", 60, 50, "达标")
    assert up["完成率"] == pytest.approx(1.2)
    assert (down["完成数/完成值"], down["基数"], down["是否达标"]) == (-5, 50, "未达标")
    assert down["完成率"] == pytest.approx(-0.1)
    city = _rows(book["目标汇总"], (0,))[(GROWTH,)]
    assert (city["全市完成数"], city["全市基数"], city["全市是否达标"], city["达标单位数"]) == (55, 100, "达标", 1)
    assert city["全市完成率"] == pytest.approx(0.55)


def test_the_masters_growth_rows_recalculate_in_libreoffice_to_their_cached_values(merged, libreoffice, tmp_path):
    checked, bad = libreoffice.disagreements(
        merged, tmp_path / "lo", rows=lambda sheet, row: sheet in ("目标进度", "目标汇总") and row[0].value == GROWTH)
    assert not bad, bad
    assert checked >= 2 * 2 + 6  # 完成率 and 是否达标 of two units; the city row's sums, rate, counts and verdict


def test_a_workspace_chooses_the_kind_per_task_in_its_roster_book(tmp_path):
    root = tmp_path / "ws"
    init_workspace(root)
    assert next(t for t in Workspace.load(root).roster.tasks if t.code == GROWTH).kind == "growth"
    book = openpyxl.load_workbook(root / "名单与目标.xlsx")
    sh = book["目标任务"]
    head = {c.value: c.column for c in sh[1]}
    r = next(c.row for c in sh["A"] if c.value == RATIO)
    assert sh.cell(r, head["指标类型"]).value == "比率"
    sh.cell(r, head["指标类型"]).value = "增长"
    book.save(root / "名单与目标.xlsx")
    assert next(t for t in Workspace.load(root).roster.tasks if t.code == RATIO).kind == "growth"


def test_a_returned_growth_row_asks_for_a_signed_done_and_never_a_base_above_it(builtin, tmp_path):
    from tuanjian_xlsx.passport import PROBLEM_COLUMNS
    from tuanjian_xlsx.returns import write_returns

    path = _tracker(builtin, "yuanhui", {GROWTH: ("三两个", -1), RATIO: ("三两个", -1)}, tmp_path / "t.xlsx")
    (piece,) = write_returns([validate_file(path, builtin)], builtin, tmp_path / "r")
    assert piece.workbook is not None
    sheet = openpyxl.load_workbook(piece.workbook)["问题清单"]
    wants = {(r[PROBLEM_COLUMNS.index("字段")], r[PROBLEM_COLUMNS.index("应为")])
             for r in sheet.iter_rows(min_row=2, values_only=True)}
    assert {(f, w) for f, w in wants if f.startswith(GROWTH)} == {
        (f"{GROWTH} 完成数/完成值", "数，可为负数，如 12 或 -3"), (f"{GROWTH} 基数", "不小于 0 的数，如 12")}
    assert (f"{RATIO} 基数", "不小于 0 的整数，如 5，且不小于完成数") in wants  # a share counts whole things


def test_a_growth_without_its_base_is_named_as_a_growth(builtin, tmp_path):
    path = _tracker(builtin, "yuanhui", {GROWTH: (60, None)}, tmp_path / "t.xlsx")
    assert [(code, message) for code, _, message in _errors(validate_file(path, builtin))] == [
        ("ratio-incomplete", f"任务“{GROWTH}”是增长指标，“完成数”和“基数”须同时填写")]


def test_a_growth_over_a_base_of_0_scores_nothing_in_the_assessment(tmp_path):
    """A growth over a base of 0 cannot be worked out: the master leaves its 完成率 blank, and the 年度考核表 scores
    it 0, 未达标 (it scored full marks, 达标, as a ratio over a base of 0 does); 60 over 50 still scores in full."""
    from tuanjian_xlsx.assess import assess

    root = tmp_path / "ws"
    init_workspace(root)
    ws = Workspace.load(root)
    received = {}
    for n, (uid, values) in enumerate({"yuanhui": {GROWTH: (60, 50)}, "yancheng": {GROWTH: (-5, 0)}}.items()):
        path = _tracker(ws, uid, values, root / "收件箱" / f"{uid}.xlsx")
        received[path] = dt.datetime(2026, 4, 3 + n, 10)
    merge(root, as_of=AS_OF, now=dt.datetime(2026, 4, 20, 9), received=received)
    result = assess(root, year=2026, as_of=dt.date(2026, 12, 31))
    by_unit = {r[0]: r for r in openpyxl.load_workbook(result.path, data_only=True)["考核依据"].iter_rows(values_only=True)
               if r and any(isinstance(v, str) and v.startswith(f"{GROWTH} ") for v in r)}
    assert "达标" in by_unit["源汇区团委"] and 1 in by_unit["源汇区团委"]
    assert "未达标" in by_unit["郾城区团委"] and "达标" not in by_unit["郾城区团委"] and 1 not in by_unit["郾城区团委"]
