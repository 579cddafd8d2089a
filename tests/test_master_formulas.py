"""The master's formulas come from `formulas` alone: a ratio exactly at its target is 达标 in 目标进度 and 目标汇总
(12.6/63 against 20 %, 0.6/1.5 against 40 %, as Excel and LibreOffice compare at 15 significant digits), a count
task's 完成率 is done ÷ the unit type's target as in the tracker, every cached value is what LibreOffice
recalculates, and master.py writes no formula text of its own."""

from __future__ import annotations

import ast
import datetime as dt
import io
import re
import shutil
from pathlib import Path

import openpyxl
import pytest

from tuanjian_xlsx import master as master_module
from tuanjian_xlsx.build import Prefill, build_template
from tuanjian_xlsx.cells import col_to_letters
from tuanjian_xlsx.plan import Workspace
from tuanjian_xlsx.merge import merge
from tuanjian_xlsx.workspace import init_workspace

AS_OF = dt.date(2026, 4, 20)
# per unit id: task code -> (完成数/完成值, 基数); tasks not named here are filled as 1 of 1
VALUES = {
    "yuanhui": {"2-1": (12.6, 63), "1-3-2": (2, 5), "2-3": (3, None)},  # 县区团委: 2-3's target is 3
    "yancheng": {"2-1": (12.6, 63), "1-3-2": (2, 5), "2-3": (2, None)},  # 2 of 3: 未达标
    "jingkai": {"2-1": (12.6, 63), "1-3-2": (2, 5), "2-3": (1, None)},  # 功能区团工委: 2-3's target is 1
    "zuzhi": {"3-1": ("是", None), "5": ("否", None), "3-2": (1, None)},  # 机关部室
}


def _tracker(ws: Workspace, unit, values: dict, path: Path) -> Path:
    """A distributed tracker for 2026 Q1, typed in as the unit would."""
    spec = ws.registry.get("target_tracker")
    data = build_template(spec, ws.roster, prefill=Prefill(unit, "2026-Q1", "2026年第1季度"))
    book = openpyxl.load_workbook(io.BytesIO(data))
    sh = book[spec.sheet_name]
    sh[spec.field("fill_date").input_cell] = dt.datetime(2026, 4, 2)
    col = {c: col_to_letters(spec.col_index(c)) for c in ("done", "base", "progress")}
    for r, task in enumerate(ws.roster.tasks_for(unit.type), start=spec.header_row + 1):
        done, base = values.get(task.code, ("是" if task.kind == "yesno" else 1, 1))
        if task.kind in ("ratio", "growth", "count", "yesno"):
            sh[f"{col['done']}{r}"] = done
        if task.kind in ("ratio", "growth"):
            sh[f"{col['base']}{r}"] = base
        sh[f"{col['progress']}{r}"] = "进行中"
    book.save(path)
    return path


@pytest.fixture(scope="module")
def ledger_master(tmp_path_factory) -> tuple[Path, Path]:
    """A workspace whose trackers hold ratios exactly at their targets, merged; (workspace, master)."""
    root = tmp_path_factory.mktemp("targets") / "ws"
    init_workspace(root)
    ws = Workspace.load(root)
    units = {u.id: u for u in ws.roster.units}
    received = {}
    for n, (uid, values) in enumerate(VALUES.items()):
        path = _tracker(ws, units[uid], values, root / "收件箱" / f"{uid}.xlsx")
        received[path] = dt.datetime(2026, 4, 3 + n, 10)
    result = merge(root, as_of=AS_OF, now=dt.datetime(2026, 4, 20, 9), received=received)
    assert result.valid == len(VALUES), [i.message for i in result.notes]
    return root, result.master


def _rows(ws, key_cols: tuple[int, ...]) -> dict[tuple, tuple]:
    head = [c.value for c in ws[1]]
    return {tuple(r[k] for k in key_cols): dict(zip(head, r)) for r in ws.iter_rows(min_row=2, values_only=True)
            if r[0] is not None}


def test_ratios_exactly_at_their_targets_are_met(ledger_master):
    _, master = ledger_master
    book = openpyxl.load_workbook(master, data_only=True)
    progress = _rows(book["目标进度"], (0, 3))
    for unit in ("源汇区团委", "郾城区团委", "经济技术开发区团工委"):
        assert progress[("2-1", unit)]["完成率"] == pytest.approx(0.2)
        assert progress[("2-1", unit)]["是否达标"] == "达标"
        assert progress[("1-3-2", unit)]["完成率"] == pytest.approx(0.4)
        assert progress[("1-3-2", unit)]["是否达标"] == "达标"
    city = _rows(book["目标汇总"], (0,))
    # Σ 37.8 / Σ 189 and Σ 1.7999999999999998 / Σ 4.5: both meet the target at 15 significant digits
    assert city[("2-1",)]["全市完成率"] == pytest.approx(0.2) and city[("2-1",)]["全市是否达标"] == "达标"
    assert city[("1-3-2",)]["全市完成率"] == pytest.approx(0.4) and city[("1-3-2",)]["全市是否达标"] == "达标"
    assert city[("2-1",)]["达标单位数"] == 3


def test_a_count_tasks_rate_is_done_over_the_unit_types_target(ledger_master):
    _, master = ledger_master
    book = openpyxl.load_workbook(master, data_only=True)
    progress = _rows(book["目标进度"], (0, 3))
    got = {unit: (progress[("2-3", unit)]["完成率"], progress[("2-3", unit)]["是否达标"])
           for unit in ("源汇区团委", "郾城区团委", "经济技术开发区团工委")}
    assert got == {"源汇区团委": (1, "达标"), "郾城区团委": (pytest.approx(2 / 3), "未达标"),
                   "经济技术开发区团工委": (1, "达标")}
    assert progress[("3-2", "组织部")]["完成率"] == 1 and progress[("3-2", "组织部")]["是否达标"] == "达标"
    assert progress[("3-1", "组织部")]["是否达标"] == "达标" and progress[("5", "组织部")]["是否达标"] == "未达标"
    formulas = openpyxl.load_workbook(master)["目标进度"]
    rate = next(r[8].value for r in formulas.iter_rows(min_row=2) if r[0].value == "2-3")
    assert re.fullmatch(r'=IF\(OR\((\$G\$\d+)="",(\$J\$\d+)=""\),"",IF\(N\(\2\)=0,"",\1/\2\)\)', rate), rate


def test_every_cached_value_is_what_libreoffice_recalculates(ledger_master, libreoffice, tmp_path):
    _, master = ledger_master
    checked, bad = libreoffice.disagreements(master, tmp_path / "lo")
    formulas = openpyxl.load_workbook(master)
    theirs = openpyxl.load_workbook(tmp_path / "lo" / master.name, data_only=True)  # (as the helper converted it)
    assert not bad, bad[:10]
    assert checked > 100
    met = [theirs["目标进度"][f"K{r}"].value for r in range(2, formulas["目标进度"].max_row + 1)
           if formulas["目标进度"][f"A{r}"].value in ("2-1", "1-3-2") and formulas["目标进度"][f"G{r}"].value]
    assert met == ["达标"] * 6  # LibreOffice says so too
    city = [theirs["目标汇总"][f"J{r}"].value for r in range(2, formulas["目标汇总"].max_row + 1)
            if formulas["目标汇总"][f"A{r}"].value in ("2-1", "1-3-2")]
    assert city == ["达标"] * 2


def test_the_same_ledger_gives_the_same_bytes(ledger_master, tmp_path):
    root, master = ledger_master
    copy = tmp_path / "ws"
    shutil.copytree(root, copy)
    (copy / "汇总" / "汇总表.xlsx").unlink()
    again = merge(copy, as_of=AS_OF, now=dt.datetime(2026, 4, 20, 9))
    assert again.master.read_bytes() == master.read_bytes()


# --- no formula text outside the expressions --------------------------------------------------------------

OPERATORS = {"=", "==", "<>", "<", ">", "<=", ">="}  # comparison operators given to formulas.cmp (and one criterion)


def _strings(tree: ast.AST) -> list[tuple[int, str]]:
    """Every string literal but docstrings (an f-string by its literal parts) with its line."""
    docs = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            out.append((node.lineno, node.value))
        elif isinstance(node, ast.JoinedStr):
            out.append((node.lineno, "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)))
    return out


def test_master_writes_no_formula_text_of_its_own():
    source = Path(master_module.__file__).read_text(encoding="utf-8")
    tree = ast.parse(source)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
             and n.func.attr == "write_formula"]
    writer = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "write_formulas")
    assert len(calls) == 1 and calls[0] in list(ast.walk(writer))  # only the generic writer
    assert source.count("write_formula(") == 2  # that call, and the master's worksheets' own (storing it)
    texts = [(line, s) for line, s in _strings(tree) if s.startswith("=") and s not in OPERATORS]
    assert texts == []
    functions = re.compile(r"\b(IF|AND|OR|N|SUM|COUNT|COUNTA|COUNTIFS?|SUMIFS|SUMPRODUCT|VLOOKUP|IFERROR)\(")
    assert [(line, s) for line, s in _strings(tree) if functions.search(s)] == []


@pytest.mark.parametrize("unit_id, unreported", [("zuzhi", {"比率", "增长", "数量"}), ("yuanhui", {"是否", "数量"})])
def test_a_task_no_unit_has_reported_is_not_judged_city_wide(tmp_path, unit_id, unreported):
    """目标汇总 said 未达标 city-wide for tasks nobody had reported yet (and a ratio of Σ0 to Σ0 would read as met):
    with no unit's figures, nothing is known, and the cell says nothing."""
    root = tmp_path / "ws"
    init_workspace(root)
    ws = Workspace.load(root)
    unit = next(u for u in ws.roster.units if u.id == unit_id)
    path = _tracker(ws, unit, VALUES[unit_id], root / "收件箱" / f"{unit_id}.xlsx")
    result = merge(root, as_of=AS_OF, now=dt.datetime(2026, 4, 20, 9), received={path: dt.datetime(2026, 4, 3, 10)})
    assert result.valid == 1
    city = _rows(openpyxl.load_workbook(result.master, data_only=True)["目标汇总"], (0,))
    nobody = [row for row in city.values() if row["报送单位数"] == 0 and row["指标类型"] != "定性"]
    assert {row["指标类型"] for row in nobody} == unreported
    assert all(row["全市是否达标"] in (None, "") for row in nobody), nobody
    assert all(row["全市是否达标"] in ("达标", "未达标") for row in city.values()
               if row["报送单位数"] and row["指标类型"] != "定性")
