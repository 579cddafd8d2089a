"""One table of typed values, judged by both sides of each field type: the sheet's 自查 (its expressions evaluated
by formulas.Grid, and the same cells recalculated by LibreOffice in one batch) and the validator's normaliser (on
the values as the reader reads them back from the file). Each row agrees, or is a difference its field type
declares — and every declared difference is in the table and holds."""

from __future__ import annotations

import datetime as dt
import io
import math

import openpyxl
import pytest

from tuanjian_xlsx import formulas as F
from tuanjian_xlsx.fieldtypes import FIELD_TYPES, RETYPE, RIGHT, TASK_KINDS, WRONG, YES_NO, empty
from tuanjian_xlsx.periods import parse_period
from tuanjian_xlsx.read import open_package
from tuanjian_xlsx.specs import FieldType, TableSpec
from tuanjian_xlsx.xlsxio import close_workbook, new_workbook

SHEET, LISTS = "t", "_lists"
CHOICES = ("实地走访", "座谈交流", "其他", "ABC")
PERIOD = parse_period("2026-03")  # what a date without its year is read in
D = dt.datetime

# (field type, typed value, sheet verdict, validator verdict) — the verdicts each side gives; a row whose two
# verdicts disagree must be a declared difference of its type. No TRUE/FALSE: LibreOffice takes them for numbers
# and Excel does not (formulas.ISNUMBER follows Excel); a number cell's validation refuses them anyway.
TABLE = [
    ("text", None, "empty", "blank"),
    ("text", " ", "empty", "blank"),
    ("text", "\u3000", "empty", "blank"),  # a full-width space is blank to both
    ("text", " \u3000 \u3000", "empty", "blank"),
    ("text", "张三", "ok", "ok"),
    ("text", "=1+1", "ok", "ok"),
    ("text", 5.0, "ok", "ok"),
    ("long_text", "\u3000", "empty", "blank"),
    ("long_text", "多行\n文字", "ok", "ok"),
    ("integer", None, "empty", "blank"),
    ("integer", "\u3000", "empty", "blank"),
    ("integer", 3.0, "ok", "ok"),
    ("integer", 0.0, "ok", "ok"),
    ("integer", -1.0, "wrong", "error"),
    ("integer", 2.5, "wrong", "error"),
    ("integer", "12", "retype", "warned"),
    ("integer", " 12 ", "retype", "warned"),
    ("integer", "5人", "retype", "warned"),
    ("integer", "3 次", "retype", "warned"),
    ("integer", "5\u3000人", "retype", "warned"),
    ("integer", "1 2", "retype", "error"),  # 自查 drops every space; the validator refuses two numbers (15 20 ≠ 1520)
    ("integer", "2.5", "wrong", "error"),
    ("integer", "-5", "wrong", "error"),
    ("integer", "五人", "wrong", "warned"),  # a Chinese numeral: read with a warning (issue 18)
    ("integer", "人5", "wrong", "error"),
    ("integer", "abc", "wrong", "error"),
    ("integer", "1e3", "wrong", "error"),
    ("integer", "40%", "wrong", "error"),
    ("integer", "1,000", "wrong", "warned"),  # thousands apart: read as 1000 with a warning
    ("integer", "3/5", "wrong", "error"),
    ("number", 1.5, "ok", "ok"),
    ("number", 0.6, "ok", "ok"),
    ("number", "1.5", "retype", "warned"),
    ("number", "12", "retype", "warned"),
    ("number", "0.6 人", "retype", "warned"),
    ("number", -1.0, "wrong", "error"),
    ("number", "-1", "wrong", "error"),
    ("number", "三个", "wrong", "warned"),
    ("number", "12345678901234567", "wrong", "error"),  # beyond any amount (and more digits than a number keeps)
    ("integer", 1000000.0, "ok", "ok"),
    ("integer", 1000001.0, "wrong", "error"),  # a count beyond any visit's: a slip of zeros, a phone number
    ("integer", "13812345678", "wrong", "error"),
    ("integer", 1e20, "wrong", "error"),
    ("number", 100000000.0, "ok", "ok"),
    ("number", 100000001.0, "wrong", "error"),
    ("signed_number", -100000001.0, "wrong", "error"),
    ("signed_number", "-100000001", "wrong", "error"),
    ("signed_number", 1.5, "ok", "ok"),
    ("signed_number", -5.0, "ok", "ok"),
    ("signed_number", -0.5, "ok", "ok"),
    ("signed_number", 0.0, "ok", "ok"),
    ("signed_number", "-5", "retype", "warned"),
    ("signed_number", "-0.5", "retype", "warned"),
    ("signed_number", " -5 人", "retype", "warned"),
    ("signed_number", "12", "retype", "warned"),
    ("signed_number", "--5", "wrong", "error"),
    ("signed_number", "5-", "wrong", "error"),
    ("signed_number", "abc", "wrong", "error"),
    ("signed_number", "1e3", "wrong", "error"),
    ("signed_number", "-40%", "wrong", "error"),
    ("signed_number", "\u3000", "empty", "blank"),
    ("date", D(2026, 3, 5), "ok", "ok"),
    ("date", "2026年3月5日", "retype", "warned"),
    ("date", "2026-3-5", "retype", "warned"),
    ("date", "2026-03-05", "retype", "warned"),
    ("date", "2026/3/5", "retype", "warned"),
    ("date", "2026.3.5", "retype", "warned"),
    ("date", " 2026 年 3 月 5 日 ", "retype", "warned"),
    ("date", "2026年3月", "wrong", "error"),
    ("date", "2026-13-5", "wrong", "error"),
    ("date", "2026-2-30", "wrong", "error"),
    ("date", "26-3-5", "wrong", "error"),
    ("date", "不是日期", "wrong", "error"),
    ("date", "\u3000", "empty", "blank"),
    ("choice", "实地走访", "ok", "ok"),
    ("choice", " 实地走访", "retype", "warned"),
    ("choice", "实地走访\u3000", "retype", "warned"),
    ("choice", "实 地 走 访", "retype", "warned"),
    ("choice", "步行", "wrong", "error"),
    ("choice", "实*", "wrong", "error"),  # no wildcard: an equality, not COUNTIF
    ("choice", "<>", "wrong", "error"),
    ("choice", 3.0, "wrong", "error"),
    ("choice", "\u3000", "empty", "blank"),
    ("yes_no", "是", "ok", "ok"),
    ("yes_no", "否", "ok", "ok"),
    ("yes_no", " 是 ", "retype", "warned"),
    ("yes_no", "可能", "wrong", "error"),
    ("yes_no", "是的", "wrong", "error"),
    ("date", "2026-03-05 15:30", "wrong", "warned"),  # a date-time typed as text: the date, with a warning
    ("period", "2026-03", "ok", "ok"),
    ("period", "2026年3月", "ok", "ok"),
    ("period", "2026-Q1", "ok", "ok"),
    ("period", "2026年第1季度", "ok", "ok"),
    ("period", 2026.03, "wrong", "error"),
    ("period", D(2026, 3, 1), "wrong", "warned"),  # "2026年3月" that Excel turned into a date: that month
    ("period", D(2026, 3, 15), "wrong", "error"),
    ("period", "\u3000", "empty", "blank"),
]
DECLARED = [(t, v) for t, ftype in FIELD_TYPES.items() for d in ftype.differences for v in d.examples]
ROWS = [(t, v) for t, v, _, _ in TABLE] + [r for r in DECLARED if r not in [(t, v) for t, v, _, _ in TABLE]]
AGREE = {("empty", "blank"), ("ok", "ok"), ("retype", "warned"), ("wrong", "error")}


def _written(rows) -> tuple[bytes, dict[tuple[int, int], object]]:
    """Each typed value in column A, its empty test in B and its verdict in C, cached values from a Grid."""
    buf = io.BytesIO()
    wb = new_workbook(buf)
    ws = wb.add_worksheet(SHEET)
    lists = wb.add_worksheet(LISTS)
    datefmt = wb.add_format({"num_format": "yyyy-mm-dd"})
    grid = F.Grid()
    named = {}
    for col, (key, values) in enumerate((("choice", CHOICES), ("yes_no", YES_NO))):
        for r, v in enumerate(values):
            lists.write_string(r, col, v)
            grid.set(LISTS, r, col, v)
        target = F.rng(0, col, len(values) - 1, col, sheet=LISTS)
        named[key] = F.named(f"tj_list_{key}", target)
        wb.define_name(f"tj_list_{key}", target.formula())
    for r, (t, v) in enumerate(rows):
        grid.set(SHEET, r, 0, v)
        if isinstance(v, dt.datetime):
            ws.write_datetime(r, 0, v, datefmt)
        elif v is not None:
            ws.write(r, 0, v)
        x = F.ref(r, 0, absolute=True)
        for c, expr in ((1, empty(x)), (2, FIELD_TYPES[t].verdict(x, named.get(t)))):
            grid.set(SHEET, r, c, expr)
    cached = {}
    for r in range(len(rows)):
        for c in (1, 2):
            expr = grid._cells[(SHEET, r, c)]
            cached[(r, c)] = grid.value(SHEET, r, c)
            ws.write_formula(r, c, expr.formula(SHEET), None, F.cached(cached[(r, c)]))
    return close_workbook(wb, buf), cached


@pytest.fixture(scope="module")
def judged(libreoffice, tmp_path_factory):
    """Per row: (Grid's empty and verdict, LibreOffice's, the value as read back, the validator's verdict)."""
    tmp = tmp_path_factory.mktemp("fieldtypes")
    data, cached = _written(ROWS)
    path = tmp / "typed.xlsx"
    path.write_bytes(data)
    theirs = openpyxl.load_workbook(libreoffice.convert(path, tmp / "lo"), data_only=True)[SHEET]
    read_back = open_package(path).rows(SHEET)
    out = []
    for r, (t, _v) in enumerate(ROWS):
        raw = read_back[r][0] if r < len(read_back) else None
        ours = (cached[(r, 1)], cached[(r, 2)])
        lo = (theirs.cell(r + 1, 2).value, theirs.cell(r + 1, 3).value)
        out.append((ours, lo, raw, _validator(t, raw)))
    return out


def _validator(t: str, raw) -> str:
    choices = CHOICES if t == "choice" else ()
    value, issues = FIELD_TYPES[t].normaliser(choices=choices, period=PERIOD)(raw, {"field": "x"})
    if any(i.severity == "error" for i in issues):
        return "error"
    if value is None:
        return "blank"
    return "warned" if issues else "ok"


def _sheet(is_empty: bool, verdict) -> str:
    if is_empty:
        return "empty"
    return {RIGHT: "ok", None: "ok", RETYPE: "retype", WRONG: "wrong"}[verdict]


def test_grid_equals_libreoffice_on_every_typed_value(judged):
    bad = [(ROWS[r], ours, lo) for r, (ours, lo, _, _) in enumerate(judged)
           if ours[0] != lo[0] or (ours[1] or "") != (lo[1] or "")]
    assert not bad, "\n".join(map(str, bad))


def test_each_row_has_the_verdicts_the_table_says(judged):
    got = [(t, v, _sheet(*ours), val) for (t, v), (ours, _, _, val) in zip(ROWS, judged)]
    assert got[: len(TABLE)] == TABLE


def test_sheet_and_validator_agree_or_the_field_type_declares_why(judged):
    undeclared = []
    for (t, v), (ours, _, raw, val) in zip(ROWS, judged):
        sheet = _sheet(*ours)
        if (sheet, val) in AGREE:
            continue
        declared = [d for d in FIELD_TYPES[t].differences if v in d.examples and d.validator == val
                    and d.sheet in (sheet, "filled" if sheet != "empty" else "")]
        if not declared:
            undeclared.append((t, v, raw, sheet, val))
    assert not undeclared, "\n".join(map(str, undeclared))


def test_every_declared_difference_holds(judged):
    verdicts = {(t, v): (_sheet(*ours), val) for (t, v), (ours, _, _, val) in zip(ROWS, judged)}
    for t, ftype in FIELD_TYPES.items():
        for d in ftype.differences:
            for v in d.examples:
                sheet, val = verdicts[(t, v)]
                assert val == d.validator and d.sheet in (sheet, "filled"), (t, v, sheet, val, d.why)
                assert (sheet, val) not in AGREE, (t, v)


def test_what_the_validator_reads_with_a_warning_the_sheet_asks_to_retype_and_says_so():
    """The declared leniency is in words, for the types that have it."""
    for t in ("integer", "number", "date", "choice", "yes_no"):
        assert FIELD_TYPES[t].lenient and FIELD_TYPES[t].lenient.isprintable()


def test_the_spec_types_are_the_table(registry):
    assert set(FieldType.__args__) == set(FIELD_TYPES)
    tracker = next(s for s in registry.specs.values() if isinstance(s, TableSpec))
    for kind in TASK_KINDS.values():
        for col in tracker.columns:
            if col.role == "input" and kind.input_type(col) is not None:
                assert kind.input_type(col) in FIELD_TYPES
            if col.role == "formula":
                assert col.formula in ("rate", "met")


TEXT_FUNCTIONS = [
    (F.SUBSTITUTE("a\u3000b\u3000", "\u3000", ""), "ab"),
    (F.SUBSTITUTE(12.5, "5", "x"), "12.x"),
    (F.SUBSTITUTE("abc", "", "x"), "abc"),
    (F.LEFT("abc"), "a"), (F.LEFT("abc", 5), "abc"), (F.LEFT("abc", -1), F.VALUE),
    (F.RIGHT("abc"), "c"), (F.RIGHT("abc", 0), ""), (F.RIGHT("abc", 2), "bc"),
    (F.MID("2026-3-5", 5, 1), "-"), (F.MID("abc", 0, 1), F.VALUE), (F.MID("abc", 9, 1), ""),
    (F.FIND("-", "2026-3-5"), 5.0), (F.FIND("-", "2026-3-5", 7), 7.0), (F.FIND("x", "abc"), F.VALUE),
    (F.FIND("-", "2026-3", 7), F.VALUE), (F.FIND("A", "abc"), F.VALUE),
    (F.ABS("-2.5"), 2.5), (F.ABS("x"), F.VALUE),
    (F.lit(0) + "\uff15", F.VALUE),  # a full-width digit is no number to LibreOffice
    (F.concat("a", 1, "b", 2.5), "a1b2.5"),
]


def test_text_functions_agree_with_libreoffice(libreoffice, tmp_path):
    buf = io.BytesIO()
    wb = new_workbook(buf)
    ws = wb.add_worksheet(SHEET)
    for r, (expr, value) in enumerate(TEXT_FUNCTIONS):
        got = expr.value(F.Grid(), SHEET)
        assert got == value, expr.formula()
        ws.write_formula(r, 0, expr.formula(SHEET), None, F.cached(got))
    (tmp_path / "f.xlsx").write_bytes(close_workbook(wb, buf))
    lo = openpyxl.load_workbook(libreoffice.convert(tmp_path / "f.xlsx", tmp_path / "lo"), data_only=True)[SHEET]
    for r, (expr, value) in enumerate(TEXT_FUNCTIONS, start=1):
        theirs = lo.cell(r, 1).value
        if isinstance(value, F.Error):
            assert str(theirs).startswith("#"), expr.formula()
        elif isinstance(value, float):
            assert math.isclose(theirs, value), expr.formula()
        else:
            assert (theirs or "") == value, expr.formula()


def test_a_task_kinds_declared_differences_hold():
    """完成数 above 基数: the sheet compares numbers only, the validator the numbers it read."""
    from tuanjian_xlsx.selfcheck import state

    for kind in TASK_KINDS.values():
        for d in kind.differences:
            for done, base in d.examples:
                grid = F.Grid()
                grid.set(SHEET, 0, 0, done)
                grid.set(SHEET, 0, 1, base)
                cells = {"done": F.ref(0, 0), "base": F.ref(0, 1)}
                col_types = {c: kind.inputs.get(c, "number") for c in kind.pair or ()}
                sheet = state(col_types["done"], cells["done"], required=True, wrong_also=kind.over(cells))
                verdict = sheet.value(grid, SHEET)
                assert {RETYPE: "retype", WRONG: "wrong", RIGHT: "ok"}[verdict] == d.sheet
                read = {c: FIELD_TYPES[col_types[c]].normaliser()(v, {"field": c})[0]
                        for c, v in zip(kind.pair or (), (done, base))}
                assert kind.above(read) and d.validator == "error"
