"""The master's sheets with a row per record or file are streamed (master.Sheet with stream=True): their rows are
the ones XlsxWriter's constant_memory mode writes, byte for byte, with heights, tricky text and every kind of value;
rows come in order and hold no formula; the grid keeps only the columns formulas read, and reading another is a
mistake, never a blank."""

from __future__ import annotations

import datetime as dt
import io
import re
import tempfile
import zipfile

import pytest
import xlsxwriter

from tuanjian_xlsx import formulas as F
from tuanjian_xlsx import master as M

ROWS = [  # (value, style) per cell; a row of text, one of numbers and dates, blanks, text needing XlsxWriter's escaping
    [("单位", "head"), ("SHA-256", "head"), ("收到时间", "head")],
    [("源汇区团委", "cell"), (3, "int"), (dt.datetime(2026, 3, 5, 9, 30), "time")],
    [(dt.date(2026, 3, 5), "date"), (None, "num"), ("", "cell")],
    [("a & b < c > d", "cell"), ("_x0041_ stays", "cell"), ("tab\there\x01", "wrap")],
    [("  leading", "cell"), ("trailing\n", "wrap"), ("第一行\n第二行", "wrap")],
    [("长" * 200, "wrap"), (1.5e-7, "num"), (12345678901234567, "num")],
]


def _sheet_xml(data: bytes, name: str = "xl/worksheets/sheet1.xml") -> bytes:
    return zipfile.ZipFile(io.BytesIO(data)).read(name)


def _ours() -> tuple[bytes, dict[int, float]]:
    buf = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp:
        wb = xlsxwriter.Workbook(buf, {"in_memory": False, "tmpdir": tmp})
        sh = M.Sheet(wb, "明细", M._styles(wb), M._Kept(), stream=True)
        sh.width(0, 2, 10)
        sh.header(0, [v for v, _ in ROWS[0]])
        for r, row in enumerate(ROWS[1:], start=1):
            for c, (v, style) in enumerate(row):
                sh.put(r, c, v, style)
        sh.end_rows()
        wb.close()
        sh.ws._opt_close()
    rows = re.finditer(rb'<row r="(\d+)"[^>]*? ht="([0-9.]+)"', _sheet_xml(buf.getvalue()))
    return buf.getvalue(), {int(m[1]) - 1: float(m[2]) for m in rows}  # the heights it gave its rows


def _xlsxwriters(heights: dict[int, float]) -> bytes:
    """The same cells through XlsxWriter's own constant_memory writers."""
    buf = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp:
        wb = xlsxwriter.Workbook(buf, {"constant_memory": True, "tmpdir": tmp})
        fmt = M._styles(wb)
        ws = wb.add_worksheet("明细")
        ws.set_column(0, 2, 10)
        for r, row in enumerate(ROWS):
            if r in heights:
                ws.set_row(r, heights[r])
            for c, (v, style) in enumerate(row):
                f = fmt[style]
                if v is None or v == "":
                    ws.write_blank(r, c, None, f)
                elif isinstance(v, str):
                    ws.write_string(r, c, v, f)
                elif isinstance(v, dt.datetime):
                    ws.write_datetime(r, c, v, f)
                elif isinstance(v, dt.date):
                    ws.write_datetime(r, c, dt.datetime.combine(v, dt.time()), f)
                else:
                    ws.write_number(r, c, float(v), f)
        wb.close()
    return buf.getvalue()


def test_streamed_rows_are_what_xlsxwriters_constant_memory_writes():
    ours, heights = _ours()
    assert heights  # the header and the long texts make rows taller: heights go with the streamed rows
    theirs = _sheet_xml(_xlsxwriters(heights))
    assert _sheet_xml(ours) == theirs
    assert b"_x005F_x0041_" in theirs and b"&amp; b &lt; c &gt; d" in theirs and b'xml:space="preserve"' in theirs


def test_a_streamed_sheet_takes_its_rows_in_order_and_no_formula():
    with tempfile.TemporaryDirectory() as tmp:
        wb = xlsxwriter.Workbook(io.BytesIO(), {"in_memory": False, "tmpdir": tmp})
        sh = M.Sheet(wb, "来源", M._styles(wb), M._Kept(), stream=True)
        sh.put(0, 0, "文件")
        sh.put(2, 0, "b.xlsx")
        with pytest.raises(ValueError, match="row 2 written after row 3"):
            sh.put(1, 0, "a.xlsx")
        with pytest.raises(ValueError, match="no formula"):
            sh.formula(3, 0, F.lit(1))
        sh.ws._opt_close()


def test_the_grid_keeps_only_the_columns_formulas_read():
    grid = M._Kept()
    with tempfile.TemporaryDirectory() as tmp:
        wb = xlsxwriter.Workbook(io.BytesIO(), {"in_memory": False, "tmpdir": tmp})
        sh = M.Sheet(wb, "明细", M._styles(wb), grid, stream=True)
        sh.keep_only(frozenset({1}))
        sh.put(1, 0, "源汇区团委")
        sh.put(1, 1, 7, "int")
        assert F.COUNTIF(sh.col(1, 1, 1), 7).value(grid, "统计") == 1.0
        with pytest.raises(AssertionError, match="does not keep"):
            F.COUNTIF(sh.col(0, 1, 1), "源汇区团委").value(grid, "统计")
        sh.ws._opt_close()
