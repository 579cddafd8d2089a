"""The formula builders: each formula's cached value equals what LibreOffice computes from the same cells.

Hypothesis draws batches of inputs (decimals at and around target boundaries, numeric text, blanks, zeros,
negatives, large and tiny numbers, the words the forms use); the product writes them with every builder's formula
and cached value, LibreOffice recalculates the batch in one call, and every value must agree. A fixed table holds
the cases that once disagreed."""

from __future__ import annotations

import io
import math
from decimal import Decimal

import openpyxl
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tuanjian_xlsx import formulas as F
from tuanjian_xlsx.xlsxio import close_workbook, new_workbook

SHEET = "t"
INPUTS = 4  # columns A..D hold the inputs of a row; formulas follow from E


def row_formulas(r: int, last: int) -> list[F.Expr]:
    """Every builder shape the product uses, over the inputs of row r (and the input columns for ranges)."""
    a, b, c, d = (F.ref(r, k) for k in range(INPUTS))
    col_a = F.rng(0, 0, last, 0)
    col_b = F.rng(0, 1, last, 1)
    rate = F.IF(F.OR(F.cmp(a, "=", ""), F.cmp(b, "=", "")), "", F.IF(F.cmp(F.N(b), "=", 0), "", a / b))
    out = [
        rate,
        F.IF(F.OR(F.cmp(a, "=", ""), F.cmp(c, "=", "")), "", F.IF(F.cmp(a / b, ">=", c), "达标", "未达标")),
        F.IF(F.cmp(a, ">=", c), "达标", "未达标"),
        F.IF(F.cmp(a, "=", "是"), "达标", "未达标"),
        a + b, a - b, a * b, a / b,
        a & b,
        F.ISNUMBER(a), F.N(a), F.LEN(F.TRIM(a)), F.INT(a),
        F.IF(F.ISNUMBER(a), F.OR(F.cmp(a, "<", 0), F.cmp(a, "<>", F.INT(a))), F.cmp(F.LEN(F.TRIM(a)), ">", 0)),
        F.AND(F.ISNUMBER(a), F.ISNUMBER(b), F.cmp(F.N(a), ">", F.N(b))),
        F.COUNTIF(col_a, "按时"), F.COUNTIF(col_a, a), F.COUNTIF(col_a, ">=0.4"), F.COUNTIF(col_a, ""),
        F.COUNTIFS(col_a, a, col_b, b),
        F.SUMIFS(col_b, col_a, a),
        F.SUM(col_a), F.COUNT(col_a), F.COUNTA(col_a),
        F.COUNT_EQUAL(col_a, a),
        F.IF(F.cmp(F.SUM(col_b), "=", 0), "", F.SUM(col_a) / F.SUM(col_b)),
        F.count_true([F.cmp(F.LEN(F.TRIM(a)), "=", 0), F.cmp(F.LEN(F.TRIM(b)), "=", 0)]),
        F.IFERROR(a / b, "—"),
        F.MIN(a, b), F.MAX(a, c), F.MIN(col_a), F.MAX(col_b, 0), F.MIN(1, a / b), F.ROUND(a / b, 1),
    ]
    # the year-end assessment's ranks: a value rounded to two places, ranked among the column of them
    k = INPUTS + len(out)
    out.append(F.ROUND(a, 2))
    mine, ranked = F.ref(r, k), F.rng(0, k, last, k)
    out += [F.IF(F.ISNUMBER(mine), F.COUNTIF(ranked, F.concat(">", mine)) + 1, ""),
            F.IF(F.ISNUMBER(mine), F.COUNTIFS(col_a, a, ranked, F.concat(">", mine)) + 1, "")]
    return out


def write_batch(rows: list[list]) -> tuple[bytes, list[list]]:
    """The inputs and every formula with its cached value; returns the file and the cached values."""
    buf = io.BytesIO()
    wb = new_workbook(buf)
    ws = wb.add_worksheet(SHEET)
    grid = F.Grid()
    last = len(rows) - 1
    for r, values in enumerate(rows):
        for c, v in enumerate(values):
            grid.set(SHEET, r, c, v)
            if v is None:
                continue
            if isinstance(v, str):
                ws.write_string(r, c, v)
            else:
                ws.write_number(r, c, float(v))
    formulas = [row_formulas(r, last) for r in range(len(rows))]
    for r, exprs in enumerate(formulas):  # every formula in place first: some refer to other rows' formulas
        for k, expr in enumerate(exprs):
            grid.set(SHEET, r, INPUTS + k, expr)
    expected = []
    for r in range(len(rows)):
        out = []
        for k, expr in enumerate(formulas[r]):
            value = grid.value(SHEET, r, INPUTS + k)
            ws.write_formula(r, INPUTS + k, expr.formula(SHEET), None, F.cached(value))
            out.append(value)
        expected.append(out)
    return close_workbook(wb, buf), expected


def same(ours, theirs) -> bool:
    if isinstance(ours, F.Error):
        return isinstance(theirs, str) and theirs.startswith("#")
    if ours is None or ours == "":
        return theirs in (None, "")
    if isinstance(ours, bool):
        return theirs is ours or theirs == ours
    if isinstance(ours, float):
        return isinstance(theirs, (int, float)) and not isinstance(theirs, bool) and math.isclose(
            ours, theirs, rel_tol=1e-12, abs_tol=1e-300)
    return ours == theirs


def recalculated(libreoffice, tmp_path, data: bytes, name: str) -> list[list]:
    src = tmp_path / f"{name}.xlsx"
    src.write_bytes(data)
    out = libreoffice.convert(src, tmp_path / f"lo-{name}")
    ws = openpyxl.load_workbook(out, data_only=True)[SHEET]
    return [[cell.value for cell in row] for row in ws.iter_rows()]


def check(libreoffice, tmp_path, rows: list[list], name: str) -> None:
    data, expected = write_batch(rows)
    theirs = recalculated(libreoffice, tmp_path, data, name)
    bad = []
    for r, values in enumerate(expected):
        for k, ours in enumerate(values):
            got = theirs[r][INPUTS + k] if INPUTS + k < len(theirs[r]) else None
            if not same(ours, got):
                bad.append((rows[r], row_formulas(r, len(rows) - 1)[k].formula(SHEET), ours, got))
    assert not bad, "\n".join(map(str, bad[:20]))


# a value as a unit might type it, or as the product writes it
_boundary = st.sampled_from([0.2, 0.4, 1.0, 12.6, 63.0, 0.6, 1.5, 3.0, 0.1 + 0.2, 1 / 3, 2 / 3])
_decimal = st.decimals(min_value=Decimal("-1000"), max_value=Decimal("1000"), places=2).map(float)
_number = st.one_of(_boundary, _decimal, st.integers(-5, 100).map(float), st.sampled_from([0.0, 1e15, 1e-12, -0.0]))
_text = st.sampled_from(["按时", "逾期", "未报", "是", "否", "达标", "", " ", "　", "12", " 12 ", "1.5", "40%", "1e3",
                         "5人", "abc", "A*", "a?c", "~*", "=1+1", ">0.4", "<>", "TRUE"])
_cell = st.one_of(st.none(), _number, _text, _number.map(lambda x: f"{x:g}"))


# column C holds what the product compares against with < > (targets): numbers or blank, never text (text is
# ordered by the engines' locale collation, which no formula of the product relies on)
_row = st.tuples(_cell, _cell, st.one_of(st.none(), _number), _cell).map(list)


@settings(max_examples=3, deadline=None, phases=[Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(_row, min_size=120, max_size=120))
def test_every_builder_agrees_with_libreoffice(libreoffice, tmp_path_factory, rows):
    check(libreoffice, tmp_path_factory.mktemp("formulas"), rows, "batch")


EDGES = [
    [12.6, 63.0, 0.2, None],     # exactly 20 %: 达标 at 15 significant digits
    [0.6, 1.5, 0.4, None],       # exactly 40 %
    ["12", 10.0, 1.0, None],     # a number typed as text: arithmetic reads it
    ["12", "10", 1.2, None],
    [None, 5.0, 0.5, None],      # blank
    [3.0, 0.0, 1.0, None],       # division by zero
    ["是", None, None, None],
    ["　", "", None, None],      # a full-width space is text, not blank
    [1e15, 1e-12, -3.5, 2.5],
    ["abc", 2.0, 1.0, None],
    [0.1 + 0.2, 1.0, 0.3, None],
    ["按时", "逾期", "A*", "~*"],
    [2.675, 1.005, None, None],  # ROUND half away from zero as the number shows: 2.68, not 2.67
    [-2.5, "3", 2.0, None],      # MIN/MAX skip text in a cell, count it when computed
    [16.67, 16.67, None, None],  # equal ranks
    ["0.3", 0.1 + 0.2, None, None],  # a - b and a + (-b) of operands equal to 15 digits: exactly 0 in both programs
    [0.1 + 0.2, "0.3", -0.3, 0.3],
    [1e8, 1e-305, 0.2, None],    # a quotient beyond any double: #NUM! in both programs (it was cached as inf)
    [1.5e19, 9.9e-15, 1.23456789e-13, None],  # joined as text: 1.5E+019, 9.9E-015, 20 decimals at most
]


def test_edge_cases_agree_with_libreoffice(libreoffice, tmp_path):
    check(libreoffice, tmp_path, EDGES, "edges")


def test_the_edge_cases_say_what_users_saw_wrong():
    """12.6/63 against 20 % and 0.6/1.5 against 40 % are 达标; "12" as text is a number in arithmetic."""
    _, expected = write_batch(EDGES)
    assert expected[0][1] == "达标" and expected[1][1] == "达标"
    assert expected[2][0] == pytest.approx(1.2) and expected[2][1] == "达标"
    assert isinstance(expected[5][0], str) and isinstance(expected[5][7], F.Error)  # "" from the guard, #DIV/0!


def test_text_is_never_a_formula():
    e = F.IF(F.cmp(F.ref(0, 0), "=", '=HYPERLINK("x")'), "是", "否")
    assert e.formula() == '=IF(A1="=HYPERLINK(""x"")","是","否")'


def test_a_reference_to_the_formulas_own_row_keeps_only_its_column():
    """absolute="col" gives $J10: Excel moves it with the row when rows are sorted (a $J$10 would stay on row 10)."""
    assert F.ref(9, 9, absolute="col").formula() == "=$J10"
    assert F.rng(9, 3, 9, 8, sheet="考核得分", absolute="col").formula() == "='考核得分'!$D10:$I10"
    assert F.ref(9, 9, absolute=True).formula() == "=$J$10" and F.ref(9, 9).formula() == "=J10"


def test_a_sum_spelt_as_plus_is_bracketed_as_an_operand():
    """COUNTA(…)-plus(a, b, c) was written COUNTA(…)-a+b+c: every program reads that as (COUNTA-a)+b+c, so a fresh
    tracker's “started?” test was true and every required cell opened red; the value cached was the other one."""
    e = F.lit(10) - F.plus(F.lit(1), F.lit(2), F.lit(3))
    assert e.formula("S") == "=10-(1+2+3)" and e.value(F.Grid(), "S") == 4.0
