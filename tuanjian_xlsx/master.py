"""The master workbook (汇总表): a pure rendering of the ledger and the configuration as of a date.

Every formula is an expression of `formulas`: its text and its cached value come from the one definition, the value
evaluated over the workbook's cells as written (a `formulas.Grid` the sheets share), so previews that do not
calculate (phones, WeChat) show what Excel shows. Only functions Excel 2010, WPS and LibreOffice 7.4 all have.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gc
import io
import math
import re
import shutil
import tempfile
import time
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from pathlib import Path

from . import formulas as F
from .plan import Workspace
from .roster import Task
from .fieldtypes import KINDS_ZH, NOT_ASKED, TASK_KINDS
from .issues import STAFF_NOTES, ConfigError, Issue, TuanjianError
from .ledger import FILE_PAGE, LEDGER_DIR, RECEIVED_BASES, FileRow, Ledger
from .periods import Period, parse_period_kept
from .specs import FormSpec, SpecRegistry, Statistics, TableSpec
from .status import STATUS_ZH, StatusItem, Supersession, forms_in_use, period_order, statuses, supersession_in
from .xlsxio import FONT_BODY, FONT_TITLE, Worksheet, close_workbook, new_workbook, os_reason

from xlsxwriter.utility import _preserve_whitespace, _utf16_len, _utf16_truncate, xl_rowcol_to_cell_fast
from xlsxwriter.worksheet import CellFormulaTuple

OVERVIEW, STATUS, ISSUES, SOURCES = "总览", "报送情况", "问题清单", "来源"  # every form's sheets stand between
# Column widths, in characters. A landscape A4 page holds about DETAIL_BUDGET of them at a readable scale: the
# detail sheets' long texts share what the other columns leave, and wrap.
UNIT_WIDTH, TYPE_WIDTH = 21, 12  # 城乡一体化示范区团工委, 功能区团工委 on one line
DETAIL_WIDTHS = {"integer": 5, "number": 7, "date": 10.5}  # text and choices 8
DETAIL_BUDGET = 165
STATUS_COLOURS = {"按时": "#C6EFCE", "逾期": "#FFEB9C", "未报": "#FFC7CE", "未到期": "#EDEDED"}


_period = parse_period_kept  # the ledger's period codes, each parsed once


def period_key(p: Period) -> int:
    """A number for a period (202603, 20261 for Q1, 2026): criteria on numbers match exactly in every program,
    where text like 2026-03 may be read as a date."""
    return p.year * 100 + p.index if p.kind == "month" else p.year * 10 + p.index if p.kind == "quarter" else p.year


def _styles(wb) -> dict:
    base = {"font_name": FONT_BODY, "font_size": 11, "valign": "vcenter"}
    grid = {**base, "border": 1, "border_color": "#BFBFBF"}
    s = {
        "title": {"font_name": FONT_TITLE, "font_size": 18, "bold": True},
        "note": {**base, "font_color": "#595959"},
        "head": {**grid, "bold": True, "bg_color": "#DDEBF7", "align": "center", "text_wrap": True},
        "cell": {**grid, "text_wrap": True},  # wrapped, never cut off on paper
        "wrap": {**grid, "text_wrap": True, "valign": "top"},
        "center": {**grid, "align": "center", "text_wrap": True},
        "hash": {**grid, "font_name": "Courier New", "font_size": 8, "text_wrap": True},
        "int": {**grid, "num_format": "0", "align": "center"},
        "num": {**grid, "num_format": "General", "align": "center"},
        "pct": {**grid, "num_format": "0.00%", "align": "center"},
        "date": {**grid, "num_format": "yyyy-mm-dd", "align": "center"},
        "time": {**grid, "num_format": "yyyy-mm-dd hh:mm", "align": "center"},
        "kpi": {**grid, "num_format": "0", "align": "center", "font_size": 14, "bold": True},
        "block": {**base, "bold": True, "font_size": 12},
    }
    out = {k: wb.add_format(v) for k, v in s.items()}
    out["status"] = {k: wb.add_format({"bg_color": v}) for k, v in STATUS_COLOURS.items()}
    return out


class Sheet:
    """A worksheet with the writes the master needs; strings are always strings. Every value written goes into the
    workbook's grid (of a sheet with `keep`, only those columns: the ones formulas read); a formula is an expression
    whose writing waits for `write_formulas`, when every sheet is filled (总览 refers to sheets filled after it),
    and its cached value is its evaluation over that grid.
    A streamed sheet (`stream=True`: the sheets with a row per file or record) goes to disk row by row as it is
    written (XlsxWriter's constant_memory, its strings inline): its rows must come in order and it holds no formula.
    It remembers the last row and column written (the print area), the columns' widths and the height each row's
    wrapped text needs: neither Excel nor LibreOffice grows a row for wrapped text on opening a file."""

    def __init__(self, wb, name: str, fmt: dict, grid: F.Grid, banner: tuple[str, str] = ("", ""), *,
                 stream: bool = False, keep: frozenset[int] | None = None):
        wb.constant_memory = stream  # XlsxWriter reads it as it adds the sheet (see _render)
        try:
            self.ws = wb.add_worksheet(name)
        finally:
            wb.constant_memory = False
        self._rows = _Rows(self.ws) if stream else None
        self.name = name
        self.fmt = fmt
        self.grid = grid
        self.banner = banner  # the printed page header's left and right parts
        self.stream = stream
        self.keep: frozenset[int] | None = None
        if keep is not None:
            self.keep_only(keep)
        self.row = -1  # the row being written
        self.last_row = self.last_col = 0
        self.widths: dict[int, float] = {}
        self._fits: dict[tuple[int, str], int] = {}  # (column, style) -> the longest text sure to fit on one line
        self._columns: dict[tuple[int, str], _Column] = {}  # of a streamed sheet: (column, style) -> how it writes
        self.heights: dict[int, float] = {}  # points, only rows taller than the default (of a streamed sheet, only
        #                                      the row being written)
        self._formulas: list[tuple[int, int, F.Expr, str]] = []

    def keep_only(self, cols: frozenset[int]) -> None:
        """Only these columns go into the grid: the ones formulas read (reading another is an error)."""
        self.keep = cols
        if isinstance(self.grid, _Kept):
            self.grid.kept[self.name] = cols

    def at(self, r: int, c: int) -> F.Ref:
        """A cell of this sheet as other sheets' formulas refer to it."""
        return F.ref(r, c, sheet=self.name, absolute=True)

    def col(self, c: int, r1: int, r2: int) -> F.Range:
        """Rows r1..r2 of a column of this sheet, as formulas and charts refer to them."""
        return F.rng(r1, c, max(r1, r2), c, sheet=self.name)

    def width(self, c1: int, c2: int, w: float) -> None:
        self.ws.set_column(c1, c2, w)
        self.widths.update(dict.fromkeys(range(c1, c2 + 1), w))
        self._fits.clear()
        self._columns.clear()

    def _next_row(self, r: int) -> None:
        """Row r is written next: a streamed sheet's row before it gets its height before XlsxWriter writes it out
        (and comes never again: its height is let go)."""
        if self._rows is not None:
            if r < self.row:
                raise ValueError(f"{self.name}: row {r + 1} written after row {self.row + 1}")
            self._rows.write(self.row, self.heights.pop(self.row, None))
            self._rows.start(r)
        self.row = r
        if r > self.last_row:
            self.last_row = r

    def _seen(self, r: int, c: int) -> None:
        if r != self.row:
            self._next_row(r)
        if c > self.last_col:
            self.last_col = c

    def _grow(self, r: int, c: int, text: str, style: str, minimum: float = 0) -> None:
        size, per_line = WRAPPED[style]
        lines = text_lines(text, self.widths.get(c, DEFAULT_WIDTH), size)
        if lines > 1 or minimum:
            self.heights[r] = max(self.heights.get(r, 0), minimum, lines * per_line + 2)

    def _fit(self, c: int, style: str) -> int:
        """How many characters of any width surely take one line in column c (a text no longer, without a line
        break, leaves the row's height alone): worked out once per column and style, not per cell."""
        key = (c, style)
        if key not in self._fits:
            size = WRAPPED[style][0]
            room = max(self.widths.get(c, DEFAULT_WIDTH) - 0.3, 1)
            n = int(room * 12 / size / 2)  # every character wide (two half-width units)
            while n > 0 and math.ceil(2 * n * (size / 12) / room) > 1:
                n -= 1
            self._fits[key] = n
        return self._fits[key]

    def _column(self, c: int, style: str) -> _Column:
        """How a streamed sheet writes a cell of column c in `style`, worked out on the first such cell: the
        format's index is taken then, where each cell would take it (XlsxWriter numbers formats in the order of
        their first use)."""
        f = self.fmt[style]
        wrapped = WRAPPED.get(style)
        col = _Column(_letters(c), f, f._get_xf_index(), self._fit(c, style) if wrapped else -1,
                      self.widths.get(c, DEFAULT_WIDTH), *(wrapped or (0, 0)))
        self._columns[(c, style)] = col
        return col

    def put(self, r: int, c: int, v, style: str = "cell") -> None:
        # (XlsxWriter's undecorated writers: the master writes tens of thousands of cells, always by number)
        if r != self.row:
            self._next_row(r)
        if c > self.last_col:
            self.last_col = c
        rows = self._rows
        if rows is not None:  # a streamed sheet: most of the master's cells, each written here as its XML
            col = self._columns.get((c, style)) or self._column(c, style)
            kind = type(v)
            if v is None or v == "":
                v = None
                rows.cells[c] = f'<c r="{col.letters}{rows.number_of_row}" s="{col.xf}"/>'
            elif kind is str or isinstance(v, str):
                rows.text(c, v, col)
                if col.fit >= 0 and (len(v) > col.fit or "\n" in v):
                    lines = text_lines(v, col.width, col.size)
                    if lines > 1:
                        self.heights[r] = max(self.heights.get(r, 0), lines * col.per_line + 2)
            elif kind is float or kind is int or not isinstance(v, dt.date):
                v = float(v)  # as the file stores it (TRUE would be written as the number 1)
                if math.isfinite(v):
                    rows.cells[c] = f'<c r="{col.letters}{rows.number_of_row}" s="{col.xf}"><v>{v:.16G}</v></c>'
                else:
                    self.ws._write_number(r, c, v, col.format)
            else:
                moment = v if isinstance(v, dt.datetime) else dt.datetime.combine(v, dt.time())
                x = self.ws._convert_date_time(moment)
                rows.cells[c] = f'<c r="{col.letters}{rows.number_of_row}" s="{col.xf}"><v>{x:.16G}</v></c>'
            keep = self.keep
            if keep is None or c in keep:
                self.grid.set(self.name, r, c, v)
            return
        f = self.fmt[style]
        ws = self.ws
        if v is None or v == "":
            v = None
            ws._write_blank(r, c, None, f)
        elif isinstance(v, str):
            ws._write_string(r, c, v, f)  # never a formula, whatever it starts with
            if style in WRAPPED and (len(v) > self._fit(c, style) or "\n" in v):
                self._grow(r, c, v, style)
        elif isinstance(v, dt.date):
            moment = v if isinstance(v, dt.datetime) else dt.datetime.combine(v, dt.time())
            ws._write_datetime(r, c, moment, f)
        else:
            v = float(v)  # as the file stores it (TRUE would be written as the number 1)
            ws._write_number(r, c, v, f)
        keep = self.keep
        if keep is None or c in keep:
            self.grid.set(self.name, r, c, v)

    def end_rows(self) -> None:
        """A streamed sheet's last row written out (before the workbook closes)."""
        if self._rows is not None:
            self._rows.write(self.row, self.heights.pop(self.row, None))

    def formula(self, r: int, c: int, expr: F.Expr, style: str = "cell") -> None:
        if self.stream:
            raise ValueError(f"{self.name}: a streamed sheet holds no formula")
        self._seen(r, c)
        self.grid.set(self.name, r, c, expr)
        self._formulas.append((r, c, expr, style))

    def write_formulas(self) -> None:
        """Each formula with its value over the whole workbook's grid: once every sheet is filled."""
        ws, name, grid, fmt = self.ws, self.name, self.grid, self.fmt
        for r, c, expr, style in self._formulas:
            ws.write_formula(r, c, expr.formula(name), fmt[style], F.cached(grid.value(name, r, c)))
        self._formulas.clear()

    def header(self, r: int, titles: list[str], widths: list[float] | None = None) -> None:
        self._seen(r, len(titles) - 1)
        for c, t in enumerate(titles):
            if widths:
                self.width(c, c, widths[c])
            if self._rows is not None:
                self._rows.text(c, t, self._columns.get((c, "head")) or self._column(c, "head"))
            else:
                self.ws.write_string(r, c, t, self.fmt["head"])
            if self.keep is None or c in self.keep:
                self.grid.set(self.name, r, c, t)
            self._grow(r, c, t, "head", minimum=30)

    def row_px(self, r: int) -> int:
        """A row's height in XlsxWriter's pixels, which place the charts."""
        return int(self.heights.get(r, 15) * 4 / 3)

    def table(self, head_row: int, last_row: int, n_cols: int, *, landscape: bool = True, key_cols: int = 1,
              last_col: int | None = None) -> None:
        self.ws.freeze_panes(head_row + 1, 0)
        self.ws.autofilter(head_row, 0, max(head_row, last_row), n_cols - 1)
        self.print_setup(landscape=landscape, title_rows=(head_row, head_row), key_cols=key_cols, last_col=last_col)

    def print_setup(self, *, landscape: bool, title_rows: tuple[int, int] | None, key_cols: int = 1,
                    last_col: int | None = None, breaks: Sequence[int] = ()) -> None:
        """A4, one page wide, the heading rows and the first key_cols columns (the unit's name) on every page,
        the sheet's name in the page header and 第 n 页 / 共 m 页 in the footer; breaks are rows that start a page.
        The last step of a sheet: it also sets the rows' heights."""
        ws = self.ws
        for r, h in sorted(self.heights.items()) if self._rows is None else ():  # (a streamed one's go with its rows)
            ws.set_row(r, h)
        ws.set_paper(9)
        ws.set_landscape() if landscape else ws.set_portrait()
        ws.fit_to_pages(1, 0)  # as wide as one page, as many pages tall as it takes
        ws.print_area(0, 0, self.last_row, self.last_col if last_col is None else last_col)
        if title_rows:
            ws.repeat_rows(*title_rows)
        if key_cols:
            ws.repeat_columns(0, key_cols - 1)
        if breaks:
            ws.set_h_pagebreaks(list(breaks))
        ws.center_horizontally()
        ws.set_margins(left=0.4, right=0.4, top=0.7, bottom=0.6)
        left, right = (t.replace("&", "&&") for t in self.banner)
        ws.set_header(f"&L&9{left}&C&11&A&R&9{right}", {"margin": 0.3})
        ws.set_footer("&C&9第 &P 页 / 共 &N 页", {"margin": 0.3})


_ERROR_CODES = frozenset(("#DIV/0!", "#N/A", "#NAME?", "#NULL!", "#NUM!", "#REF!", "#VALUE!"))


class _Worksheet(Worksheet):
    """The master's worksheets: a formula (thousands of them) stored and written as XlsxWriter and `xlsxio.Worksheet`
    store and write it, in one step each."""

    def write_formula(self, row: int, col: int, formula: str, cell_format, value) -> None:
        """XlsxWriter's, without its look at the text for array formulas (ours, `_prepare_formula`, refuses every
        function it looks for) and for A1 references in the arguments (always numbers here)."""
        if not self._check_dimensions(row, col):
            self.table[row][col] = CellFormulaTuple(self._prepare_formula(formula), cell_format, value)

    def _write_cell(self, row: int, col: int, cell) -> None:
        """A formula cell with its cached value's type: t="b", "e" or "str" (also for "")."""
        if cell.__class__ is not CellFormulaTuple or cell.format is None or self.constant_memory:
            return super()._write_cell(row, col, cell)
        value, kind = cell.value, ""
        if isinstance(value, bool):
            value, kind = int(value), ' t="b"'
        elif isinstance(value, str):
            kind = ' t="e"' if value in _ERROR_CODES else ' t="str"'
            if "&" in value or "<" in value or ">" in value:
                value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        formula = cell.formula
        if "&" in formula or "<" in formula or ">" in formula:
            formula = formula.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        self.fh.write(f'<c r="{xl_rowcol_to_cell_fast(row, col)}" s="{cell.format._get_xf_index()}"{kind}>'
                      f'<f>{formula}</f><v>{value}</v></c>')
        return None


# What a string written inline needs XlsxWriter's own escaping for: XML's specials, control characters, the
# _xHHHH_ escape itself (a text starting or ending with a space is left to it too)
_ESCAPED = re.compile("[&<>\\x00-\\x08\\x0b-\\x1f\\ufffe\\uffff]|_x[0-9a-fA-F]{4}_")


class _Parts:
    """A file that keeps what is written to it in a list."""

    def __init__(self, parts: list[str]):
        self.write = parts.append


@functools.lru_cache(maxsize=256)
def _letters(c: int) -> str:
    """A column's letters in a cell reference (0 -> A)."""
    return xl_rowcol_to_cell_fast(0, c)[:-1]


class _Column(NamedTuple):
    """How a streamed sheet writes the cells of one column in one style (see Sheet._column)."""

    letters: str  # the column's letters in a cell reference
    format: Any
    xf: int  # the format's index
    fit: int  # a wrapped style's longest text sure to take one line (-1: not wrapped)
    width: float
    size: float  # a wrapped style's font size and points per line, as WRAPPED gives them
    per_line: float


class _Rows:
    """A streamed sheet's current row, its cells as XlsxWriter writes them in constant_memory mode (strings inline),
    written to XlsxWriter's file of the sheet's rows in one piece when the next row begins — without going through
    the table XlsxWriter keeps of a row (tuples per cell, written out cell by cell). The row's own element and any
    text that needs escaping are XlsxWriter's own writers'."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.cells: dict[int, str] = {}
        self.number_of_row = ""  # the row's number as cell references spell it
        self._half = ws.xls_strmax // 2
        self._row_tags: dict[float | None, str] = {}  # a row's height -> its element after r="…", as XlsxWriter wrote it

    def start(self, r: int) -> None:
        self.number_of_row = str(r + 1)

    def text(self, c: int, text: str, col: _Column) -> None:
        if len(text) > self._half and _utf16_len(text) > self.ws.xls_strmax:
            text = _utf16_truncate(text, self.ws.xls_strmax)
        # letters and digits alone (the names of units and periods) need no escaping: a quick test before the regex
        if text and (text.isalnum() or (not _ESCAPED.search(text) and not text[0].isspace()
                                        and not text[-1].isspace())):
            self.cells[c] = (f'<c r="{col.letters}{self.number_of_row}" s="{col.xf}" t="inlineStr"><is><t>{text}'
                             '</t></is></c>')
            return
        ws = self.ws
        text = ws._escape_control_characters(text)
        self.cells[c] = self._xml(ws._xml_inline_string, text, _preserve_whitespace(text),
                                  [("r", f"{col.letters}{self.number_of_row}"), ("s", col.xf)])

    def _xml(self, writer, *args) -> str:
        """What one of XlsxWriter's writers writes, as text."""
        ws, parts = self.ws, list[str]()
        fh, ws.fh = ws.fh, _Parts(parts)
        try:
            writer(*args)
        finally:
            ws.fh = fh
        return "".join(parts)

    def write(self, r: int, height: float | None) -> None:
        """Row r, with its height if it has one of its own."""
        if not self.cells:
            return
        ws = self.ws
        cols = sorted(self.cells)
        if ws._check_dimensions(r, cols[0]) or ws._check_dimensions(r, cols[-1]):  # past the sheet's last row
            self.cells = {}
            return
        start = f'<row r="{r + 1}"'
        tag = self._row_tags.get(height)
        if tag is None:  # XlsxWriter's own element for a row of this height, once per height
            info = None
            if height is not None:
                ws.set_row(r, height)
                info = ws.row_info.pop(r)  # written here, never again by XlsxWriter
                ws.row_sizes.pop(r, None)  # (kept to place images: a streamed sheet has none)
            element = self._xml(ws._write_row, r, None, info)
            if not element.startswith(start):
                raise AssertionError(f"XlsxWriter wrote a row as {element!r}")
            tag = self._row_tags[height] = element[len(start):]
        cells = self.cells
        ws.fh.write(start + tag + "".join([cells[c] for c in cols]) + "</row>")
        self.cells = {}


# Wrapped styles: (font size as 仿宋 would take the room, points per line); bold headings are a little wider and
# 8-point Courier's 0.6 em letters count as 9.6-point 仿宋's 0.5 em.
WRAPPED = {"cell": (11, 14), "center": (11, 14), "wrap": (11, 14), "head": (11.5, 14), "hash": (9.6, 10)}
DEFAULT_WIDTH = 8.43


@dataclass(frozen=True)
class Col:
    id: str
    title: str
    width: float | None = None


class Columns:
    """A sheet's columns by id: where each stands, its heading, its width. Code says PROGRESS["done"], never 6."""

    def __init__(self, *cols: Col):
        self.cols = cols
        self._at = {c.id: i for i, c in enumerate(cols)}

    def __getitem__(self, col_id: str) -> int:
        return self._at[col_id]

    def __len__(self) -> int:
        return len(self.cols)

    @property
    def titles(self) -> list[str]:
        return [c.title for c in self.cols]

    @property
    def widths(self) -> list[float]:
        out = [c.width for c in self.cols if c.width is not None]
        if len(out) != len(self.cols):
            raise ValueError("a column without a width")
        return out


@functools.lru_cache(maxsize=8192)  # names of units, periods and states come back on every row
def text_lines(text: str, width: float, size: float = 11) -> int:
    """How many lines `text` takes wrapped in a column `width` characters wide, as Excel shows it with 仿宋: a
    Chinese character is as wide as its point size, a Latin one half that, a width unit is 6 points (a digit of
    12-point 仿宋) and the cell's padding about what XlsxWriter adds to the width."""
    room = max(width - 0.3, 1)
    lines = 0
    for part in text.split("\n"):
        halves = len(part) if part.isascii() else sum(map(_HALVES.__getitem__, part))  # half-width units
        lines += max(1, math.ceil(halves * (size / 12) / room))
    return lines


class _Halves(dict):
    """A character's width in half-width units (2 for wide and full-width ones), looked up once per character."""

    def __missing__(self, ch: str) -> int:
        self[ch] = n = 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        return n


_HALVES = _Halves()


def _count_of(area: F.Range, words: tuple[str, ...]) -> F.Expr:
    """How many cells of `area` read one of `words`: COUNTIF(area,"按时")+COUNTIF(area,"逾期")+…"""
    return F.plus(*(F.COUNTIF(area, w) for w in words))


DUE, FILED = ("按时", "逾期", "未报"), ("按时", "逾期")  # 应报 and 已报 as counts of the statuses


# --- 报送情况 ---------------------------------------------------------------------------------------------


@dataclass
class FormBlock:
    """Where one form's status block stands, for the sheets that refer to it."""

    form_id: str
    name: str
    periods: list[Period]
    first_row: int
    units: list[str]
    period_col: dict[str, int]
    count_cols: dict[str, int]  # 应报 已报 按时 逾期 未报 -> column


def _status_sheet(sh: Sheet, ws: Workspace, items: list[StatusItem]) -> list[FormBlock]:
    blocks = []
    r = 0
    sh.put(r, 0, "各单位报送情况（按时 / 逾期 / 未报 / 未到期）", "title")
    sh.width(0, 0, UNIT_WIDTH)
    sh.width(1, 1, TYPE_WIDTH)
    r = 2
    order = ws.registry.form_ids
    for spec in sorted(ws.current_specs(), key=lambda s: order.index(s.form_id)):  # the plan's order
        mine = [i for i in items if i.form_id == spec.form_id]
        if not mine:
            continue
        periods = sorted({i.period for i in mine}, key=period_order)
        units = list(dict.fromkeys(i.unit for i in mine))
        by = {(i.unit, i.period.code): i for i in mine}
        sh.put(r, 0, spec.display_name, "block")
        head = r + 1
        counts_titles = ["应报", "已报", "按时", "逾期", "未报", "按时率"]
        titles = ["单位", "单位类型"] + [p.label for p in periods] + counts_titles
        period_col = {p.code: 2 + j for j, p in enumerate(periods)}
        count_cols = {t: 2 + len(periods) + j for j, t in enumerate(counts_titles)}
        for c in range(2, count_cols["按时率"] + 1):  # blocks share columns: one width for periods and counts
            if c not in sh.widths:
                sh.width(c, c, 8.5)
        sh.header(head, titles)
        first = head + 1
        for k, unit in enumerate(units):
            row = first + k
            utype = next(i.unit_type for i in mine if i.unit == unit)
            sh.put(row, 0, unit)
            sh.put(row, 1, utype, "center")
            for p in periods:
                item = by.get((unit, p.code))
                sh.put(row, period_col[p.code], STATUS_ZH[item.status] if item else "—", "center")
            area = F.rng(row, 2, row, 1 + len(periods))
            sh.formula(row, count_cols["应报"], _count_of(area, DUE), "int")
            sh.formula(row, count_cols["已报"], _count_of(area, FILED), "int")
            for s in DUE:
                sh.formula(row, count_cols[s], F.COUNTIF(area, s), "int")
            due, on_time = F.ref(row, count_cols["应报"]), F.ref(row, count_cols["按时"])
            sh.formula(row, count_cols["按时率"], F.rate(on_time, due), "pct")
        last = first + len(units) - 1
        for j, (label, words) in enumerate((("已报", FILED), ("未报", ("未报",)))):  # per-period totals
            row = last + 1 + j
            sh.put(row, 0, f"合计·{label}", "head")
            sh.put(row, 1, "", "head")
            for p in periods:
                col = period_col[p.code]
                sh.formula(row, col, _count_of(F.rng(first, col, last, col), words), "int")
        for text, colour in sh.fmt["status"].items():
            sh.ws.conditional_format(first, 2, last, 1 + len(periods),
                                     {"type": "cell", "criteria": "==", "value": f'"{text}"', "format": colour})
        blocks.append(FormBlock(spec.form_id, spec.display_name, periods, first, units, period_col, count_cols))
        r = last + 4
    sh.ws.freeze_panes(0, 1)
    # each form's block starts a page: its heading row is then at the top of it, with the units' names beside
    sh.print_setup(landscape=True, title_rows=None, key_cols=2, breaks=[b.first_row - 2 for b in blocks[1:]])
    return blocks


# --- 明细 sheets -------------------------------------------------------------------------------------------


def _detail_columns(ws: Workspace, form_id: str) -> list[tuple[str, str, str]]:
    """(field id, heading, type) of every field any version of the form has, current version's order first."""
    out: dict[str, tuple[str, str]] = {}
    for v in reversed(ws.registry.versions(form_id)):
        for f in ws.registry.get(form_id, v).fields:
            if f.id not in ("unit", "period"):
                out.setdefault(f.id, (f.label, f.type))
    return [(fid, label, t) for fid, (label, t) in out.items()]


DETAIL_LEAD = Columns(Col("unit", "单位", 12), Col("unit_no", "单位序号", 4), Col("unit_type", "单位类型", 7),
                      Col("period", "报送期", 8.5), Col("period_key", "期序", 6.5))
DETAIL_TAIL = Columns(Col("version", "版本", 4), Col("file", "来源文件", 14), Col("received", "收到时间", 16.5))


def _detail_widths(types: list[str]) -> list[float]:
    """The detail sheet's widths for its fields' types: what the page has left goes to the long texts."""
    lead = DETAIL_LEAD.widths
    fixed = [DETAIL_WIDTHS.get(t, 8) for t in types if t != "long_text"]
    n_long = types.count("long_text")
    long = min(26, max(14, (DETAIL_BUDGET - sum(lead) - sum(fixed)) / max(n_long, 1)))
    return lead + [long if t == "long_text" else DETAIL_WIDTHS.get(t, 8) for t in types] + DETAIL_TAIL.widths


def _value(v, ftype: str):
    if v in (None, ""):
        return None
    if ftype == "date" and isinstance(v, str):
        try:
            return dt.date.fromisoformat(v[:10])
        except ValueError:
            return v
    return v


@dataclass
class Detail:
    """Where a detail sheet's records stand, for the statistics' formulas over it."""

    sheet: Sheet
    first: int
    last: int
    cols: dict[str, int]  # 'unit_no', 'period_key' and each field id -> column
    _ranges: dict[str, F.Range] = field(default_factory=dict, repr=False)

    def rng(self, col_id: str) -> F.Range:
        """A column's records as a range: one object however many formulas read it."""
        if col_id not in self._ranges:
            self._ranges[col_id] = self.sheet.col(self.cols[col_id], self.first, self.last)
        return self._ranges[col_id]


def _detail_sheet(sh: Sheet, ws: Workspace, form_id: str, rows: Iterable[tuple[FileRow, dict]],
                  reads: tuple[str, ...]) -> Detail:
    """One row per record, every field; 单位序号 and 期序 are numbers for the statistics' criteria (a unit's name
    could hold * or ? and a period like 2026-03 may be read as a date: numbers match exactly everywhere).
    `reads` are the columns (`Detail.rng`'s ids) the statistics will read: the grid keeps only those."""
    fields = _detail_columns(ws, form_id)
    cols = Columns(*DETAIL_LEAD.cols, *(Col("field:" + fid, label) for fid, label, _ in fields), *DETAIL_TAIL.cols)
    sh.keep_only(frozenset(cols[c if c in ("unit_no", "period_key") else "field:" + c] for c in reads))
    sh.header(0, cols.titles, _detail_widths([t for _, _, t in fields]))
    units: dict[str | None, tuple[int | None, str]] = {u.id: (n, u.type) for n, u in enumerate(ws.roster.units, start=1)}
    # each field's column and style, and the lead and tail columns, looked up once
    by_field = [(fid, cols["field:" + fid], t, "date" if t == "date" else "num" if t in ("integer", "number") else
                 "wrap" if t == "long_text" else "cell") for fid, _, t in fields]
    c_unit, c_no, c_type, c_period, c_key = (cols[c] for c in ("unit", "unit_no", "unit_type", "period", "period_key"))
    c_version, c_file, c_received = cols["version"], cols["file"], cols["received"]
    put = sh.put
    k = 0
    for k, (f, rec) in enumerate(rows, start=1):
        assert f.period is not None  # status.supersession keeps only files with a unit and a period
        p = _period(f.period)
        number, utype = units.get(f.unit_id, (None, GONE))  # (a unit since taken off the roster: said, not blank)
        put(k, c_unit, f.unit)
        put(k, c_no, number, "int")
        put(k, c_type, utype, "center")
        put(k, c_period, p.label if p else f.period, "center")
        put(k, c_key, period_key(p) if p else None, "int")
        for fid, c, t, style in by_field:
            put(k, c, _value(rec.get(fid), t), style)
        put(k, c_version, f.version, "int")
        put(k, c_file, f.name)
        put(k, c_received, f.received_at, "time")
    last = max(k, 1)
    # 版本, 来源文件 and 收到时间 are on screen and in 来源, not on paper
    sh.table(0, last, len(cols), last_col=cols["version"] - 1)
    keys = {"unit_no": cols["unit_no"], "period_key": cols["period_key"]}
    return Detail(sh, 1, last, keys | {fid: cols["field:" + fid] for fid, _, _ in fields})


GONE = "已不在名单中"  # the 单位类型 of a detail row whose unit the roster no longer holds (not counted in 统计)


def _form_periods(spec, items: list[StatusItem]) -> list[Period]:
    return sorted({i.period for i in items if i.form_id == spec.form_id}, key=period_order)


def _stats_by_period(sh: Sheet, ws: Workspace, spec, stats: Statistics, detail: Detail,
                     items: list[StatusItem], as_of: dt.date) -> None:
    """A row per unit and period: the count of its records, the sums, and against the unit type's minimum 是否达标:
    — where the minimum is 0 or none (not assessed); short of it, 未到期 while the period's form is not yet due
    (more may come), else 未达标."""
    cols = Columns(Col("unit", "单位", UNIT_WIDTH), Col("unit_no", "单位序号", 4.5), Col("unit_type", "单位类型", TYPE_WIDTH),
                   Col("period", stats.period_heading, 9), Col("period_key", "期序", 6.5),
                   Col("count", stats.count_heading, 6), *(Col("sum:" + s.field, s.heading, s.width) for s in stats.sums),
                   *((Col("minimum", stats.minimum_heading, 6), Col("met", "是否达标", 6.5)) if stats.minimum else ()))
    sh.header(0, cols.titles, cols.widths)
    periods = _form_periods(spec, items)
    number = {u.id: n for n, u in enumerate(ws.roster.units, start=1)}
    due = {(i.unit_id, i.period.code): i.due for i in items if i.form_id == spec.form_id}
    r = 1
    for u in ws.roster.units_filing(spec.form_id):
        utype = ws.roster.unit_type(u.type)
        owed = (getattr(utype, stats.minimum) or None) if stats.minimum and utype else None  # 0: not assessed
        for p in periods:
            sh.put(r, cols["unit"], u.name)
            sh.put(r, cols["unit_no"], number[u.id], "int")
            sh.put(r, cols["unit_type"], u.type, "center")
            sh.put(r, cols["period"], p.label, "center")
            sh.put(r, cols["period_key"], period_key(p), "int")
            crit = (detail.rng("unit_no"), F.ref(r, cols["unit_no"], absolute=True), detail.rng("period_key"),
                    F.ref(r, cols["period_key"], absolute=True))
            sh.formula(r, cols["count"], F.COUNTIFS(*crit), "int")
            for s in stats.sums:
                sh.formula(r, cols["sum:" + s.field], F.SUMIFS(detail.rng(s.field), *crit),
                           "int" if spec.field(s.field).type == "integer" else "num")
            if stats.minimum:
                d = due.get((u.id, p.code))  # None: a period the unit does not owe (before its 起报期): not judged
                sh.put(r, cols["minimum"], owed if d is not None else None, "int")
                n, i = F.ref(r, cols["count"], absolute=True), F.ref(r, cols["minimum"], absolute=True)
                short = "未到期" if d is not None and as_of <= d else "未达标"
                sh.formula(r, cols["met"], F.IF(F.cmp(i, "=", ""), "—", F.IF(F.cmp(n, ">=", i), "达标", short)),
                           "center")
            r += 1
    sh.table(0, r - 1, len(cols), landscape=False)


def _stats_by_unit(sh: Sheet, ws: Workspace, spec, stats: Statistics, detail: Detail,
                   items: list[StatusItem]) -> None:
    """A row per unit, a column per period: how many records it filed for that period."""
    periods = _form_periods(spec, items)
    lead = Columns(Col("unit", "单位", UNIT_WIDTH), Col("unit_no", "单位序号", 4.5), Col("unit_type", "单位类型", TYPE_WIDTH))
    titles = lead.titles + [f"{q.label}（期序 {period_key(q)}）" for q in periods]
    sh.header(0, titles, lead.widths + [12] * len(periods))
    number = {u.id: n for n, u in enumerate(ws.roster.units, start=1)}
    units = ws.roster.units_filing(spec.form_id)
    for r, u in enumerate(units, start=1):
        sh.put(r, lead["unit"], u.name)
        sh.put(r, lead["unit_no"], number[u.id], "int")
        sh.put(r, lead["unit_type"], u.type, "center")
        unit = F.ref(r, lead["unit_no"], absolute=True)
        for j, q in enumerate(periods, start=len(lead)):
            sh.formula(r, j, F.COUNTIFS(detail.rng("unit_no"), unit, detail.rng("period_key"), period_key(q)), "int")
    if stats.note:
        sh.put(len(units) + 2, 0, stats.note, "note")
    sh.ws.freeze_panes(1, 1)
    sh.print_setup(landscape=len(periods) > 4, title_rows=(0, 0), last_col=len(lead) - 1 + len(periods))


# --- targets ------------------------------------------------------------------------------------------------

PROGRESS = Columns(Col("code", "编号", 6), Col("indicator", "量化指标", 25), Col("kind", "指标类型", 5.5),
                   Col("unit", "单位", UNIT_WIDTH), Col("unit_type", "单位类型", TYPE_WIDTH), Col("period", "报送期", 13),
                   Col("done", "完成数/完成值", 7), Col("base", "基数", 6), Col("rate", "完成率", 7.5),
                   Col("target", "目标值", 7), Col("met", "是否达标", 6.5), Col("progress", "进展情况", 24),
                   Col("problems", "存在问题", 18))
SUMMARY = Columns(Col("code", "编号", 6), Col("indicator", "量化指标", 24), Col("kind", "指标类型", 5.5),
                  Col("target", "目标", 28), Col("units", "报送单位数", 7), Col("done", "全市完成数", 8),
                  Col("base", "全市基数", 7), Col("rate", "全市完成率", 8), Col("met_units", "达标单位数", 7),
                  Col("met", "全市是否达标", 8))


def _period_key(code: str) -> tuple:
    p = _period(code)
    assert p is not None  # a valid file's period is a parsed Period's code
    return period_order(p)


def _tracker_rows(ws: Workspace, form_id: str, tables: dict[tuple[str, str], tuple[FileRow, list[dict]]],
                  as_of: dt.date):
    """Per task, per unit that reports it: the latest tracker row received for a period up to the as-of date."""
    latest: dict[str, tuple[FileRow, list[dict]]] = {}
    for (unit_id, period), (f, recs) in sorted(tables.items(), key=lambda kv: _period_key(kv[0][1])):
        p = _period(period)
        if p and p.first_day <= as_of:
            latest[unit_id] = (f, recs)
    out = []
    for task in ws.roster.tasks:
        rows = []
        for u in ws.roster.units:
            if u.type not in task.unit_types or ws.roster.rule(u.type, form_id) is None:
                continue
            got, recs = latest.get(u.id, (None, []))
            rec = next((r for r in recs if r.get("code") == task.code), {})
            rows.append((u, got, rec))
        out.append((task, rows))
    return out


def _targets(sh: Sheet, city: Sheet, ws: Workspace, form_id: str, tables: dict, as_of: dt.date) -> list[tuple[Task, F.Ref]]:
    """目标进度 (per task × unit) and 目标汇总 (city-wide); returns the ratio tasks' (task, 全市完成率 cell) for 总览.
    完成率 and 是否达标 are spelt as the tracker spells them (`formulas.rate`, `formulas.met`)."""
    P = PROGRESS
    sh.header(0, P.titles, P.widths)
    city.header(0, SUMMARY.titles, SUMMARY.widths)
    r, cr = 1, 1
    ratio_rows = []
    for task, rows in _tracker_rows(ws, form_id, tables, as_of):
        if not rows:
            continue
        first = r
        kind = TASK_KINDS[task.kind]
        for u, f, rec in rows:
            sh.put(r, P["code"], task.code, "center")
            sh.put(r, P["indicator"], task.indicator)
            sh.put(r, P["kind"], KINDS_ZH[task.kind], "center")
            sh.put(r, P["unit"], u.name)
            sh.put(r, P["unit_type"], u.type, "center")
            p = _period(f.period) if f else None
            sh.put(r, P["period"], p.label if p else "未报", "center")
            asked = {c: kind.inputs.get(c, c) is not None for c in ("done", "base")}
            sh.put(r, P["done"], rec.get("done") if asked["done"] else None, "num" if kind.numeric else "center")
            sh.put(r, P["base"], rec.get("base") if asked["base"] else None, "num")
            sh.put(r, P["target"], task.target_for(u.type), "pct" if kind.percent else "num")
            cells: dict[str, F.Expr] = {c: F.ref(r, P[c], absolute=True) for c in ("done", "base", "rate", "target")}
            for c, style, none in (("rate", "pct", None), ("met", "center", NOT_ASKED)):
                make = kind.formulas.get(c)  # as the tracker's row spells it
                if make is None:
                    sh.put(r, P[c], none, style)
                else:
                    sh.formula(r, P[c], make(cells, task.comparison), style)
            sh.put(r, P["progress"], rec.get("progress"), "wrap")
            sh.put(r, P["problems"], rec.get("problems"), "wrap")
            r += 1
        _city_row(city, cr, task, sh, first, r - 1)
        if kind.pair:
            ratio_rows.append((task, city.at(cr, SUMMARY["rate"])))
        cr += 1
    sh.table(0, r - 1, len(P), key_cols=P["unit"] + 1)  # 编号 … 单位
    city.table(0, cr - 1, len(SUMMARY), key_cols=SUMMARY["indicator"] + 1)
    return ratio_rows


def _city_row(city: Sheet, r: int, task: Task, sh: Sheet, first: int, last: int) -> None:
    """Σ完成数 / Σ基数 over the units' rows of 目标进度 (`sh`), never an average of their ratios."""
    C = SUMMARY
    kind = TASK_KINDS[task.kind]
    city.put(r, C["code"], task.code, "center")
    city.put(r, C["indicator"], task.indicator)
    city.put(r, C["kind"], KINDS_ZH[task.kind], "center")
    city.put(r, C["target"], task.target_text(None) or "—", "center")
    done_rng, base_rng = sh.col(PROGRESS["done"], first, last), sh.col(PROGRESS["base"], first, last)
    met_rng, prog_rng = sh.col(PROGRESS["met"], first, last), sh.col(PROGRESS["progress"], first, last)
    if task.kind == "qualitative":
        city.formula(r, C["units"], F.COUNTA(prog_rng), "int")
    elif task.kind == "yesno":
        city.formula(r, C["units"], _count_of(done_rng, ("是", "否")), "int")
    else:
        city.formula(r, C["units"], F.COUNT(done_rng), "int")
    if kind.numeric:
        city.formula(r, C["done"], F.SUM(done_rng), "num")
    else:
        city.put(r, C["done"], None, "num")
    # a pair's city-wide 完成率 and 是否达标: the kind's own formulas over the sums and the general target
    cells: dict[str, F.Expr] = {c: F.ref(r, C[c], absolute=True) for c in ("done", "base", "rate")}
    if kind.pair:
        city.formula(r, C["base"], F.SUM(base_rng), "num")
        city.formula(r, C["rate"], kind.formulas["rate"](cells, task.comparison), "pct")
    else:
        city.put(r, C["base"], None, "num")
        city.put(r, C["rate"], None, "pct")
    if task.kind == "qualitative":
        city.put(r, C["met_units"], None, "int")
        city.put(r, C["met"], "—", "center")
        return
    city.formula(r, C["met_units"], F.COUNTIF(met_rng, "达标"), "int")
    if kind.pair and task.target is not None:
        met = kind.formulas["met"]({**cells, "target": F.lit(task.target)}, task.comparison)
    else:  # per-type targets, counts and yes/no: the city is 达标 when every unit is
        every = F.cmp(F.ref(r, C["met_units"], absolute=True), "=", last - first + 1)
        met = F.IF(every, "达标", "未达标")
    # no unit has reported it yet: nothing is known (not 未达标, nor a 0 of 0 that is 达标)
    city.formula(r, C["met"], F.IF(F.cmp(F.ref(r, C["units"], absolute=True), "=", 0), "", met), "center")


# --- 总览 ---------------------------------------------------------------------------------------------------


def _current(block: FormBlock, items: list[StatusItem], as_of: dt.date) -> Period:
    """The period a KPI line shows: the latest one whose deadline has passed for some unit (on the deadline day
    itself a period is still 未到期, as `status` says), else the first."""
    due = [i.period for i in items if i.form_id == block.form_id and i.due < as_of]
    return max(due, key=period_order) if due else block.periods[0]


KPIS = Columns(Col("form", "报表"), Col("period", "报送期"), *(Col(t, t) for t in ("应报", "已报", "按时", "逾期", "未报")))
ON_TIME = Columns(Col("unit", "单位"), Col("due", "应报"), Col("on_time", "按时"), Col("rate", "按时率"))
RATIOS = Columns(Col("task", "指标"), Col("rate", "全市完成率"), Col("target", "目标"))


def _overview(sh: Sheet, wb, ws: Workspace, blocks: list[FormBlock], status_sheet: Sheet, items: list[StatusItem],
              sup: Supersession, as_of: dt.date, ratio_rows: list[tuple[Task, F.Ref]]) -> None:
    org = ws.settings.organisation
    sh.width(0, 0, OVERVIEW_WIDTHS[0])
    sh.width(1, 1, 14)  # 报送期: 2026年第2季度
    sh.width(2, OVERVIEW_LAST_COL, OVERVIEW_WIDTHS[1])
    sh.put(0, 0, f"{org.name} 活力团建报表汇总", "title")
    valid, last = sup.valid, sup.last
    void = f"，作废 {sup.void} 份" if sup.void else ""
    made = (f"数据截至 {as_of.isoformat()}；据 {sup.files} 份文件生成（有效 {valid} 份，退回 {sup.files - valid - sup.void} 份"
            f"{void}）"
            + (f"；最后收到 {last:%Y-%m-%d %H:%M}" if last else ""))
    sh.put(1, 0, made, "note")
    if as_of.month in (12, 1):  # the year-end assessment (tuanjian assess), written beside the master
        from .plan import assessment_name

        year = as_of.year if as_of.month == 12 else as_of.year - 1
        sh.ws.write_url(2, 0, f"external:{assessment_name(year)}", None,
                        f"{year}年度考核表：{assessment_name(year)}（还没有时，运行 tuanjian assess --year {year} 生成）")
    sh.header(3, KPIS.titles)
    r = 4
    for b in blocks:
        p = _current(b, items, as_of)
        col = b.period_col[p.code]
        area = status_sheet.col(col, b.first_row, b.first_row + len(b.units) - 1)
        sh.put(r, KPIS["form"], b.name)
        sh.put(r, KPIS["period"], p.label, "center")
        sh.formula(r, KPIS["应报"], _count_of(area, DUE), "kpi")
        sh.formula(r, KPIS["已报"], _count_of(area, FILED), "kpi")
        for s in DUE:
            sh.formula(r, KPIS[s], F.COUNTIF(area, s), "kpi")
        r += 1

    # each unit's on-time rate over every form: Σ按时 / Σ应报 from 报送情况
    r += 2
    since = min((i.period.first_day for i in items), default=as_of)  # the range counted, said in the heading
    sh.put(r, 0, f"各单位按时报送率（全部报表，{since.year}年{since.month}月起至统计日 {as_of.isoformat()}，"
                 "不含未到期的）", "block")
    head = r + 1
    sh.header(head, ON_TIME.titles)
    first = head + 1
    units = list(dict.fromkeys(u for b in blocks for u in b.units))
    for k, unit in enumerate(units):
        row = first + k
        rows = [(b, b.first_row + b.units.index(unit)) for b in blocks if unit in b.units]
        sh.put(row, ON_TIME["unit"], unit)
        sh.formula(row, ON_TIME["due"], F.plus(*(status_sheet.at(br, b.count_cols["应报"]) for b, br in rows)), "int")
        sh.formula(row, ON_TIME["on_time"], F.plus(*(status_sheet.at(br, b.count_cols["按时"]) for b, br in rows)),
                   "int")
        sh.formula(row, ON_TIME["rate"], F.rate(F.ref(row, ON_TIME["on_time"]), F.ref(row, ON_TIME["due"])), "pct")
    last_unit = first + len(units) - 1
    chart = wb.add_chart({"type": "bar"})
    chart.add_series({"name": "按时报送率", "categories": sh.col(ON_TIME["unit"], first, last_unit).text(),
                      "values": sh.col(ON_TIME["rate"], first, last_unit).text(), "fill": {"color": "#5B9BD5"},
                      "gap": 60,
                      "data_labels": _chart_labels()})
    _chart_look(chart, "各单位按时报送率")
    chart.set_x_axis({"min": 0, "max": 1, "num_format": "0%", "major_gridlines": {"visible": True},
                      "num_font": _chart_font(9)})
    chart.set_y_axis({"reverse": True, "num_font": _chart_font(9)})
    chart.set_legend({"none": True})
    # beside the table, from its heading row down to the row before the next block (which starts a page)
    _beside(sh, chart, head, last_unit + 2)

    breaks = []
    if ratio_rows:
        r = last_unit + 3
        breaks.append(r)
        sh.put(r, 0, f"目标完成情况（{'、'.join(k.zh for k in TASK_KINDS.values() if k.pair)}指标，全市 Σ完成数 ÷ Σ基数）",
               "block")
        head = r + 1
        sh.header(head, RATIOS.titles)
        for k, (task, city_rate) in enumerate(ratio_rows, start=head + 1):
            sh.put(k, RATIOS["task"], f"{task.code} {task.indicator}")
            sh.formula(k, RATIOS["rate"], city_rate, "pct")
            sh.put(k, RATIOS["target"], task.target, "pct")
        # bars, not columns: the indicators' names are long and read across, never rotated
        chart = wb.add_chart({"type": "bar"})
        n = head + len(ratio_rows)
        names = sh.col(RATIOS["task"], head + 1, n).text()
        chart.add_series({"name": "全市完成率", "categories": names,
                          "values": sh.col(RATIOS["rate"], head + 1, n).text(), "fill": {"color": "#70AD47"},
                          "data_labels": _chart_labels()})
        chart.add_series({"name": "目标", "categories": names,
                          "values": sh.col(RATIOS["target"], head + 1, n).text(),
                          "fill": {"color": "#D9D9D9"}, "border": {"color": "#7F7F7F"}, "gap": 60,
                          "data_labels": _chart_labels("#7F7F7F")})
        _chart_look(chart, "全市目标完成率与目标")
        # no fixed minimum: a growth may be negative
        chart.set_x_axis({"num_format": "0%", "major_gridlines": {"visible": True}, "num_font": _chart_font(9)})
        chart.set_y_axis({"reverse": True, "num_font": _chart_font(9)})
        chart.set_legend({"position": "top", "font": _chart_font(9)})
        _beside(sh, chart, head, n, minimum=60 + 36 * len(ratio_rows))
    sh.print_setup(landscape=True, title_rows=(0, 2), key_cols=0, last_col=OVERVIEW_LAST_COL, breaks=breaks)
    sh.ws.activate()


# The charts stand right of the tables under the KPIs (A:D at most), in E:K: one landscape page wide.
OVERVIEW_WIDTHS = (30, 11)
OVERVIEW_LAST_COL = 10
_CHART_COL, _CHART_X = 4, 12


def _beside(sh: Sheet, chart, first: int, last: int, minimum: int = 0) -> None:
    """Insert a chart in columns E:K over rows first..last (more rows if it needs `minimum` pixels): beside the
    table, as wide as what the tables leave of the page."""
    px = lambda w: int(w * 7 + 0.5) + 5  # noqa: E731  XlsxWriter's pixels for a column width
    width = px(OVERVIEW_WIDTHS[1]) * (OVERVIEW_LAST_COL - _CHART_COL + 1) - _CHART_X - 6
    height = sum(sh.row_px(r) for r in range(first, last + 1))
    while height < minimum:
        last += 1
        height += sh.row_px(last)
    chart.set_size({"width": width, "height": height - 4})  # a hair short of the next row
    sh.ws.insert_chart(first, _CHART_COL, chart, {"x_offset": _CHART_X})
    sh.last_row = max(sh.last_row, last)


def _chart_font(size: int, colour: str = "#404040") -> dict:
    return {"name": FONT_BODY, "size": size, "color": colour}


def _chart_labels(colour: str = "#404040") -> dict:
    return {"value": True, "num_format": "0.00%", "position": "outside_end", "font": _chart_font(9, colour)}


def _chart_look(chart, title: str) -> None:
    chart.set_title({"name": title, "name_font": {"name": FONT_BODY, "size": 11, "bold": True}})
    chart.set_chartarea({"border": {"none": True}})


# --- 问题清单 and 来源 -----------------------------------------------------------------------------------------


ISSUE_COLUMNS = Columns(Col("file", "文件", 22), Col("sheet", "工作表", 10), Col("cell", "单元格", 6), Col("field", "字段", 12),
                        Col("code", "问题代码", 16), Col("severity", "类别", 5), Col("message", "说明", 56),
                        Col("received", "收到时间", 16.5))
SEVERITY_ZH = {"error": "错误", "warning": "提醒"}
SOURCE_COLUMNS = Columns(Col("file", "文件", 22), Col("sha256", "SHA-256", 18), Col("received", "收到时间", 16.5),
                         Col("basis", "时间依据", 8), Col("unit", "单位", 14), Col("form", "报表", 16),
                         Col("period", "报送期", 9), Col("version", "版本", 4), Col("state", "状态", 6),
                         Col("replaced_by", "被替换为", 20), Col("note", "说明", 24))  # SHA-256 in three lines


def _issues(sh: Sheet, files: Iterable[FileRow]) -> None:
    """Every issue the ledger keeps, its severity as it was recorded."""
    C = ISSUE_COLUMNS
    sh.header(0, C.titles, C.widths)
    r = 1
    for f in files:
        for i in f.issues:
            if f.void is not None and i.get("code") in STAFF_NOTES:  # what it did to others: undone with it
                continue
            sh.put(r, C["file"], f.name)
            sh.put(r, C["sheet"], i.get("sheet"))
            sh.put(r, C["cell"], i.get("cell"), "center")
            sh.put(r, C["field"], i.get("field"))
            sh.put(r, C["code"], i.get("code"))
            sh.put(r, C["severity"], SEVERITY_ZH.get(i.get("severity") or "", "提醒"), "center")
            sh.put(r, C["message"], i.get("message"), "wrap")
            sh.put(r, C["received"], f.received_at, "time")
            r += 1
    sh.table(0, r - 1, len(C))


def _pages(files: Iterable[FileRow]) -> Iterator[list[FileRow]]:
    """Files FILE_PAGE at a time."""
    page: list[FileRow] = []
    for f in files:
        page.append(f)
        if len(page) == FILE_PAGE:
            yield page
            page = []
    if page:
        yield page


def _sources(sh: Sheet, ws: Workspace, ledger: Ledger, as_of: dt.date, sup: Supersession) -> None:
    """A row per file; a replaced one names the file that replaced it, one replaced in part (some of its records,
    附件1's visits, still count) the latest file that replaced any (names looked up a page of rows at a time)."""
    C = SOURCE_COLUMNS
    sh.header(0, C.titles, C.widths)
    forms = {s.form_id: s.display_name for s in ws.registry.latest()}
    c_file, c_sha, c_received, c_basis, c_unit, c_form, c_period, c_version, c_state, c_by, c_note = (
        C[c] for c in ("file", "sha256", "received", "basis", "unit", "form", "period", "version", "state",
                       "replaced_by", "note"))  # looked up once, not per row
    put = sh.put
    r = 0
    superseded_by, partly_by = sup.superseded_by, sup.partly_by
    for page in _pages(ledger.iter_files(records=False, issues=False, until=as_of)):
        names = ledger.names({by for f in page if (by := superseded_by.get(f.id, partly_by.get(f.id))) is not None})
        for f in page:
            r += 1
            p = _period(f.period) if f.period else None
            state = ("作废" if f.void is not None else "退回" if not f.valid else "被替换" if f.id in superseded_by
                     else "部分被替换" if f.id in partly_by else "有效")
            put(r, c_file, f.name)
            put(r, c_sha, f.sha256, "hash")
            put(r, c_received, f.received_at, "time")
            put(r, c_basis, RECEIVED_BASES.get(f.received_basis, f.received_basis), "center")
            put(r, c_unit, f.unit)
            put(r, c_form, forms.get(f.form_id or "", f.form_id))
            put(r, c_period, p.label if p else f.period, "center")
            put(r, c_version, f.version, "int")
            put(r, c_state, state, "center")
            by = superseded_by.get(f.id, partly_by.get(f.id))
            put(r, c_by, names.get(by) if by is not None else None)
            put(r, c_note, f"作废原因：{f.void}" if f.void is not None else None)
    sh.table(0, r, len(C))


# --- the whole workbook -------------------------------------------------------------------------------------


def master_forms(ws: Workspace) -> list[FormSpec | TableSpec]:
    """The forms the master shows, in the plan's order: each the workspace's settings list (a form set aside keeps its
    records on view), as the workspace uses it now."""
    return [ws.spec(f) for f in ws.registry.form_ids if f in ws.settings.forms]


def master_sheets(specs: list[FormSpec | TableSpec]) -> list[str]:
    """总览 and 报送情况, each form's own sheets (its spec's [master]) in order, 问题清单 and 来源."""
    names = [OVERVIEW, STATUS, *(name for spec in specs for name in spec.master.sheet_names), ISSUES, SOURCES]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(Issue.make("bad-value", key="master", detail="汇总表中的工作表重名：" + "、".join(twice)))
    return names


def __getattr__(name: str):
    if name == "SHEETS":  # the sheets of a master of every form the specs define, in order (for tests and docs)
        return tuple(master_sheets(SpecRegistry().latest()))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _form_sheets(sheets: dict[str, Sheet], ws: Workspace, spec: FormSpec | TableSpec, ledger: Ledger,
                 sup: Supersession, items: list[StatusItem], as_of: dt.date) -> list[tuple[Task, F.Ref]]:
    """One form's sheets as its spec's [master] asks; a table form's ratio tasks (task, 全市完成率 cell) for 总览.
    The records that count are read from the ledger as the detail sheet is written: a file at a time."""
    m = spec.master

    def files() -> Iterator[FileRow]:
        return ledger.iter_files(issues=False, ids=sup.live.get(spec.form_id, set()), until=as_of)

    if m.detail_sheet:
        reads = ("unit_no", "period_key", *(s.field for s in m.statistics.sums)) if m.statistics else ()
        rows = sup.records_of(files()) if not isinstance(spec, TableSpec) else iter(())  # (a table has none)
        detail = _detail_sheet(sheets[m.detail_sheet], ws, spec.form_id, rows, reads)
        if m.statistics:
            if m.statistics.rows == "unit_period":
                _stats_by_period(sheets[m.statistics.sheet], ws, spec, m.statistics, detail, items, as_of)
            else:
                _stats_by_unit(sheets[m.statistics.sheet], ws, spec, m.statistics, detail, items)
    if m.progress_sheet and m.summary_sheet:
        tables = sup.tables_of(files()) if isinstance(spec, TableSpec) else {}
        return _targets(sheets[m.progress_sheet], sheets[m.summary_sheet], ws, spec.form_id, tables, as_of)
    return []


def render_master(ws: Workspace, ledger: Ledger, as_of: dt.date, *,
                  counts_only: bool = False) -> tuple[bytes | None, Supersession, list[StatusItem]]:
    """The master's bytes from the ledger's files and the configuration: same inputs, same bytes.
    With counts_only, just the supersession and statuses (the master on disk is already current).
    The ledger is read in passes, a page of files at a time, never whole (one read transaction: one state of it);
    looking back, files received after the as-of date did not exist yet."""
    with ledger.reading():
        sup = supersession_in(ledger, forms_in_use(ws), until=as_of)
        items = statuses(ws, sup, as_of)
        if counts_only:
            return None, sup, items
        with _collector_paused():
            return _render(ws, ledger, as_of, sup, items), sup, items


class _Kept(F.Grid):
    """The workbook's grid, holding of some sheets only the columns formulas read (`kept`): the detail sheets'
    units, periods and summed fields, nothing of 问题清单 and 来源. Reading any other cell of them is a mistake
    in this module, never a blank."""

    def __init__(self) -> None:
        super().__init__()
        self.kept: dict[str, frozenset[int]] = {}

    def absent(self, sheet: str, r: int, c: int) -> None:
        cols = self.kept.get(sheet)
        if cols is not None and c not in cols:
            raise AssertionError(f"a formula reads {sheet}!{r},{c}, a cell the grid does not keep")


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cycle collector off while the workbook is built: the build makes tens of thousands of objects that
    live until it ends and no cycles worth collecting, and each collection would scan them all again (a quarter
    of the rendering time for 1,000 files)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


SCRATCH_PREFIX = "tj-master-"
SCRATCH_STALE_SECONDS = 6 * 3600  # a render takes seconds: a folder this old was left by a run that was killed


def _scratch(root: Path) -> str | None:
    """Where a render keeps its parts: inside the workspace's own folder (they hold what units submitted, so they
    stay where the ledger and the originals are), after clearing what a killed run left there."""
    folder = Path(root) / LEDGER_DIR
    if not folder.is_dir():
        return None
    now = time.time()
    for old in folder.glob(SCRATCH_PREFIX + "*"):
        try:
            if now - old.stat().st_mtime > SCRATCH_STALE_SECONDS:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            continue
    return str(folder)


def _render(ws: Workspace, ledger: Ledger, as_of: dt.date, sup: Supersession, items: list[StatusItem]) -> bytes:
    """The sheets with a row per record or file are streamed: each row goes to a file in a temporary folder as the
    next begins, and the package's parts wait there too until zipped, so memory does not grow with the ledger."""
    buf = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix=SCRATCH_PREFIX, dir=_scratch(ws.root)) as tmp:
        wb = new_workbook(buf, title="活力团建报表汇总", company=ws.settings.organisation.name)
        wb.worksheet_class = _Worksheet
        wb.in_memory, wb.tmpdir = False, tmp
        sheets: dict[str, Sheet] = {}
        try:
            _fill(wb, sheets, ws, ledger, as_of, sup, items)
            for sheet in sheets.values():
                sheet.end_rows()
            return close_workbook(wb, buf)
        except OSError as exc:  # the scratch files of the streamed sheets (a full disk): said with their folder
            raise TuanjianError(Issue.make("cannot-write", detail=f"汇总表的临时文件（{tmp}）",
                                           reason=os_reason(exc))) from None
        finally:
            for sheet in sheets.values():  # XlsxWriter leaves a streamed sheet's file open
                if sheet.stream:
                    sheet.ws._opt_close()


def _fill(wb, sheets: dict[str, Sheet], ws: Workspace, ledger: Ledger, as_of: dt.date, sup: Supersession,
          items: list[StatusItem]) -> None:
    fmt = _styles(wb)
    banner = (f"{ws.settings.organisation.name} 活力团建报表汇总", f"数据截至 {as_of.isoformat()}")
    grid = _Kept()  # every sheet's cells that formulas read, for the formulas' values
    specs = master_forms(ws)
    details = {spec.master.detail_sheet for spec in specs if spec.master.detail_sheet}
    for name in master_sheets(specs):
        # no formula reads 问题清单 or 来源 (a row per issue, a row per file): their cells stay out of the grid
        stream = name in details or name in (ISSUES, SOURCES)
        sheets[name] = Sheet(wb, name, fmt, grid, banner, stream=stream,
                             keep=frozenset() if name in (ISSUES, SOURCES) else None)
    blocks = _status_sheet(sheets[STATUS], ws, items)
    ratio_rows = [row for spec in specs for row in _form_sheets(sheets, ws, spec, ledger, sup, items, as_of)]
    _overview(sheets[OVERVIEW], wb, ws, blocks, sheets[STATUS], items, sup, as_of, ratio_rows)
    _issues(sheets[ISSUES], ledger.iter_files(records=False, until=as_of, with_issues=True))
    _sources(sheets[SOURCES], ws, ledger, as_of, sup)
    for sheet in sheets.values():
        sheet.write_formulas()
