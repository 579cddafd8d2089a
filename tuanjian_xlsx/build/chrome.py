"""What every sheet the builder writes shares: what a build is given (Prefill, Filled), the formats, the Book and
Sheet that write a cell and its grid value together (formulas wait for `Book.finish`), page setup and protection,
the hidden _lists and _passport sheets, and the header fields with their 自查 state and marks.

A build is recorded before it is written: the builders describe a workbook to a `Book`, which keeps each step as a
`Program`; `Program.write` then makes it with XlsxWriter, with the formats, a copy's unit, period and due date
(`Slot`s in the program) and a 退回件's values and marks. Everything else — the layout, every formula's text, the
validations, names and marks — is the same for every copy of one shape (`Shape`), so a program is made once per
form version, shape and number of record sheets and written as often as needed (see build_template)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from .. import formulas as F
from .. import passport
from ..cells import parse_range, quote_sheet
from ..fieldtypes import FIELD_TYPES, RETYPE, WRONG, FieldType
from ..roster import Roster, Unit
from ..selfcheck import TO_FILL, is_state, state
from ..specs import FormField
from ..xlsxio import FONT_BODY, FONT_TITLE

DATE_FORMAT = 'yyyy"年"m"月"d"日"'


@dataclass(frozen=True)
class Slot:
    """A value a recorded build leaves open, given when the program is written: one of `Prefill.values()`."""

    key: str


@dataclass(frozen=True)
class Shape:
    """What a build knows of a Prefill: which parts are given and the unit's type (a tracker's rows follow it).
    Copies of one shape differ only in the values their `Slot`s stand for."""

    unit: bool = False
    unit_type: str | None = None
    period: bool = False
    due: bool = False
    not_forms: tuple[str, ...] = ()

    def fixed(self, field_id: str) -> Slot | None:
        """The prefilled value of a header field (locked in a distributed copy), or None where it is an input."""
        if field_id == "unit" and self.unit:
            return Slot("unit")
        if field_id == "period" and self.period:
            return Slot("period_shown")
        return None

    @property
    def due_line(self) -> Slot | None:
        return Slot("due_line") if self.due else None

    def passport(self, spec) -> dict[str, object]:
        """The passport entries this copy carries, in the order written (see passport.entries)."""
        out = passport.entries(spec, not_forms=self.not_forms)
        for key, given in (("unit_id", self.unit), ("unit", self.unit), ("period", self.period), ("due", self.due)):
            if given:
                out[key] = Slot(key)
        return out


@dataclass(frozen=True)
class Prefill:
    """What a distributed copy carries: blank in a blank template."""

    unit: Unit | None = None
    period: str = ""  # period code, e.g. 2026-03
    period_label: str = ""  # what the cell shows, e.g. 2026年3月
    due: dt.date | None = None
    not_forms: tuple[str, ...] = ()  # set by build_template for the sheets `first_sheet` adds

    def shape(self) -> Shape:
        return Shape(self.unit is not None, self.unit.type if self.unit else None, bool(self.period),
                     self.due is not None, self.not_forms)

    def passport(self, spec) -> dict[str, object]:
        """The passport entries this copy carries, in the order written (see passport.entries)."""
        values = self.values()
        return {k: values[v.key] if isinstance(v, Slot) else v for k, v in self.shape().passport(spec).items()}

    def values(self) -> dict[str, object]:
        """What the `Slot`s of this copy's shape hold."""
        unit, due = self.unit, self.due
        return {"unit": unit.name if unit else "", "unit_id": unit.id if unit else "", "period": self.period,
                "period_shown": self.period_label or self.period, "due": due.isoformat() if due else "",
                "due_line": f"截止日期：{due.year}年{due.month}月{due.day}日" if due else None}


@dataclass(frozen=True)
class Filled:
    """A submitter's values written back into a template (a 退回件), and the cells to mark with why.

    Keys are field ids, or 'code:column' for a tracker row (e.g. '1-3-2:done').
    """

    values: dict[str, object]
    marks: dict[str, str]


# --- styles -------------------------------------------------------------------------------------------

_GRID = {"border": 1}


def _style_props() -> dict[str, dict]:
    """The named formats every sheet of a template draws from."""
    body = {"font_name": FONT_BODY, "font_size": 12, "valign": "vcenter", "text_wrap": True}
    label = {**body, "font_size": 13, "align": "center", **_GRID}
    inp = {**body, "locked": False, "align": "left", **_GRID}
    head_in = {**body, "locked": False, "align": "left", "bottom": 1}
    return {
        "title": {"font_name": FONT_TITLE, "font_size": 20, "bold": True, "align": "center", "valign": "vcenter"},
        "attachment": {"font_name": "黑体", "font_size": 14, "align": "left", "valign": "vcenter"},
        "label": label,
        "header": {**body, "align": "right"},
        "grid": {**body, **_GRID},
        "input": inp,
        "input_long": {**inp, "valign": "top"},
        # General, not "0": 2.5 typed where a whole number belongs shows 2.5 (marked wrong), never a rounded 3
        "input_int": {**inp, "num_format": "General", "align": "center"},
        "input_num": {**inp, "num_format": "General", "align": "center"},
        "input_date": {**inp, "num_format": DATE_FORMAT, "align": "center"},
        "input_period": {**inp, "num_format": "@"},
        "head_input": head_in,
        "head_date": {**head_in, "num_format": DATE_FORMAT},
        "head_period": {**head_in, "num_format": "@"},
        "head_fixed": {**body, "bottom": 1, "align": "left"},  # prefilled and locked
        "self_check": {"font_name": FONT_BODY, "font_size": 11, "bold": True, "font_color": "#9C5700",
                       "bg_color": "#FFF2CC", "valign": "vcenter", "text_wrap": True},
        "col_head": {**body, "bold": True, "align": "center", "bg_color": "#DDEBF7", **_GRID},
        "task": {**body, "font_size": 10, **_GRID},
        "task_c": {**body, "font_size": 10, "align": "center", **_GRID},
        "task_pct": {**body, "font_size": 10, "align": "center", "num_format": "0%", **_GRID},
        "task_num": {**body, "font_size": 10, "align": "center", "num_format": "General", **_GRID},
        "task_date": {**body, "font_size": 10, "align": "center", "num_format": "yyyy-mm-dd", **_GRID},
        "cell_in": {**body, "font_size": 10, "locked": False, "align": "center", "num_format": "General", **_GRID},
        "cell_text": {**body, "font_size": 10, "locked": False, "valign": "top", **_GRID},
        "cell_off": {**body, "font_size": 10, "bg_color": "#F2F2F2", **_GRID},
        "rate": {**body, "font_size": 10, "align": "center", "num_format": "0.00%", **_GRID},
        "met": {**body, "font_size": 10, "align": "center", **_GRID},
        "helper": {"font_name": FONT_BODY, "font_size": 9, "font_color": "#808080", "align": "center"},
        "empty_mark": {"bg_color": "#FDE9E7"},
        "invalid_mark": {"bg_color": "#FFC7CE", "font_color": "#9C0006"},
        "retype_mark": {"bg_color": "#FFEB9C", "font_color": "#9C5700"},
        "passport": {"font_name": "Arial", "font_size": 10},
        "due": {**body, "align": "right", "bold": True},
    }


STYLES = _style_props()
BAD_FILL = {"bg_color": "#FF9999", "font_color": "#9C0006"}


class Style(NamedTuple):
    """A named format in a recorded build (`bad`: the same filled red, for a cell a 退回件 points at)."""

    name: str
    bad: bool = False


class StyleNames:
    """The formats a build names: `fmt["label"]` (a cell a 退回件 points at is its style with `bad` set)."""

    def __getitem__(self, name: str) -> Style:
        if name not in STYLES:
            raise KeyError(name)
        return Style(name)


class Styles:
    """The workbook's format of each Style, made on its first use (XlsxWriter numbers and writes only formats that
    cells use, in the order they are first used, so when a format is made changes nothing in the file)."""

    def __init__(self, wb):
        self.wb = wb
        self._made: dict[Style, object] = {}

    def __getitem__(self, style: Style):
        made = self._made.get(style)
        if made is None:
            props = STYLES[style.name]
            made = self._made[style] = self.wb.add_format({**props, **BAD_FILL} if style.bad else props)
        return made


# --- the recorded build: a Book describes the workbook, its Program writes it ----------------------------------


class Input(NamedTuple):
    """An input cell's value in a record sheet (`rec`: which of a 退回件's records; none in a blank copy)."""

    rec: int
    key: str


class _Calls:
    """Stands for an XlsxWriter workbook (sheet -1) or worksheet while a build is recorded: a call is a step."""

    def __init__(self, program: Program, sheet: int, name: str = ""):
        self._program, self._sheet, self.name = program, sheet, name

    def __getattr__(self, method: str) -> Callable[..., None]:
        def call(*args, **kwargs) -> None:
            self._program.steps.append(("call", self._sheet, method, args, kwargs, _given(args), _given(kwargs)))
        return call


Given = Callable[[Styles, dict], Any]


def _given(x) -> Given | None:
    """How to make an argument that holds a Style or Slot when the program is written (None: it holds neither)."""
    if isinstance(x, Style):
        return lambda fmt, values: fmt[x]
    if isinstance(x, Slot):
        return lambda fmt, values: values[x.key]
    if isinstance(x, (dict, tuple, list)):
        items = list(x.items()) if isinstance(x, dict) else list(enumerate(x))
        open_ = [(k, _given(v)) for k, v in items]
        if all(g is None for _, g in open_):
            return None
        parts = [(k, g if g is not None else (lambda fmt, values, v=v: v)) for (k, v), (_, g) in zip(items, open_)]
        if isinstance(x, dict):
            return lambda fmt, values: {k: g(fmt, values) for k, g in parts}
        return lambda fmt, values: type(x)(g(fmt, values) for _, g in parts)
    return None


def _writer(value) -> str:
    """The XlsxWriter method write() uses for a value in our workbooks (new_workbook: text stays text, never a
    formula or a link), called directly: a recorded value's is chosen once, when it is recorded."""
    kind = type(value)
    if value is None or value == "":
        return "_write_blank"
    if kind is str:
        return "_write_string"
    if kind is float or kind is int:
        return "_write_number"
    if kind is dt.datetime or kind is dt.date or kind is dt.time:
        return "_write_datetime"
    if kind is bool:
        return "_write_boolean"
    return "write"


_SECTIONS = {"conditional_format": "conditional_formats", "data_validation": "data_validations"}


class Program:
    """A recorded build: XlsxWriter calls in order, the cells as the grid holds them, the formulas' texts.

    Its conditional formats and validations are the same XML every time it is written: XlsxWriter writes them the
    first time (`keep` takes them from the closed workbook), later copies carry that text instead of making them
    again (`xlsxio.Worksheet.frozen_sections`) — as long as no sheet before the program's has a conditional
    format, so that theirs are numbered (dxf) as the first time. Its formulas' texts, checked when first written,
    are stored as they were then (`xlsxio.Worksheet.write_formula_again`)."""

    def __init__(self) -> None:
        self.steps: list[tuple] = []
        self.sheets: list[str] = []
        self.cells: dict[tuple[str, int, int], object] = {}  # the grid: a value, an Expr, a Slot or an Input
        self.frozen: list[dict[str, str]] | None = None  # per sheet: XlsxWriter's text of each of _SECTIONS
        self.stored: list[str] | None = None  # per formula step: the text XlsxWriter stored for it

    def write(self, wb, values: dict[str, object], filled: list[Filled]) -> list:
        """Make the recorded workbook in `wb`, with `values` for its Slots and `filled` for its Inputs; its
        worksheets, for `keep` once the workbook is closed."""
        fmt = Styles(wb)
        grid = F.Grid()
        for (name, r, c), v in self.cells.items():
            if isinstance(v, Input):
                v = _as_stored(_input(filled, v)[0])
            elif isinstance(v, Slot):
                v = _as_stored(values[v.key])
            grid.set(name, r, c, v)

        first = not wb.dxf_format_indices  # the program's conditional formats number the workbook's dxf formats
        frozen = self.frozen if first else None
        stored = iter(self.stored) if self.stored is not None else None
        sheets: list[Any] = []
        for step in self.steps:
            kind = step[0]
            if kind == "put":
                _, i, r, c, value, method, style = step
                if method is None:  # a Slot
                    value = values[value.key]
                    method = _writer(value)
                getattr(sheets[i], method)(r, c, value, fmt[style] if style is not None else None)
            elif kind == "call":
                _, i, method, args, kwargs, open_args, open_kwargs = step
                if frozen is not None and method in _SECTIONS:
                    if "format" in args[-1]:  # numbered as the conditional format would have numbered it
                        fmt[args[-1]["format"]]._get_dxf_index()
                    continue
                if open_args is not None:
                    args = open_args(fmt, values)
                if open_kwargs is not None:
                    kwargs = open_kwargs(fmt, values)
                getattr(wb if i < 0 else sheets[i], method)(*args, **kwargs)
            elif kind == "input":
                _, i, (r1, c1, r2, c2), where, style = step
                value, mark = _input(filled, where)
                style = fmt[style._replace(bad=True) if mark else style]
                ws = sheets[i]
                if (r1, c1) != (r2, c2):
                    ws.merge_range(r1, c1, r2, c2, "", style)
                getattr(ws, _writer(value))(r1, c1, value, style)
                if mark:
                    ws.write_comment(r1, c1, mark, {"author": "tuanjian", "x_scale": 2, "y_scale": 1.5})
            elif kind == "formula":
                _, i, r, c, text, style = step
                value = F.cached(grid.value(self.sheets[i], r, c))
                if stored is not None:
                    sheets[i].write_formula_again(r, c, next(stored), fmt[style] if style is not None else None, value)
                else:
                    sheets[i].write_formula(r, c, text, fmt[style] if style is not None else None, value)
            else:  # "sheet"
                ws = wb.add_worksheet(step[1])
                if frozen is not None:
                    ws.frozen_sections = frozen[len(sheets)]
                elif first:
                    ws.captured_sections = {}
                sheets.append(ws)
        return sheets

    def keep(self, sheets: list) -> None:
        """The sections XlsxWriter wrote for each sheet and the formulas' texts as it stored them (see `write`), once
        its workbook is closed."""
        captured = [ws.captured_sections for ws in sheets]
        if self.frozen is None and all(c is not None and set(c) == set(_SECTIONS.values()) for c in captured):
            self.frozen = captured
        if self.stored is None:
            texts = [sheets[s[1]].stored_formula(s[2], s[3]) for s in self.steps if s[0] == "formula"]
            if None not in texts:
                self.stored = texts


def _input(filled: list[Filled], where: Input) -> tuple[object, str | None]:
    """An input's value and mark in a 退回件 (nothing in a blank or distributed copy)."""
    rec = filled[where.rec] if where.rec < len(filled) else None
    if rec is None:
        return None, None
    return rec.values.get(where.key), rec.marks.get(where.key)


class Book:
    """A workbook described for its Program. Values are recorded at once; formulas wait for `finish`, when every
    cell is known, and are written with the value their expression computes over the grid."""

    def __init__(self) -> None:
        self.program = Program()
        self.wb = _Calls(self.program, -1)
        self.fmt = StyleNames()
        self._formulas: list[tuple[Sheet, int, int, F.Expr, Style | None]] = []

    def sheet(self, name: str) -> Sheet:
        return Sheet(self, self.add_worksheet(name))

    def add_worksheet(self, name: str) -> _Calls:
        self.program.steps.append(("sheet", name))
        self.program.sheets.append(name)
        return _Calls(self.program, len(self.program.sheets) - 1, name)

    def finish(self) -> Program:
        """The program, every formula written last with its text (the one place the package writes formula
        cells: Program.write, with the value computed over the grid)."""
        for sh, r, c, expr, style in self._formulas:
            self.program.steps.append(("formula", sh.ws._sheet, r, c, expr.formula(sh.name), style))
        self._formulas.clear()
        return self.program


def _as_stored(value):
    """A time of day as the number the file stores (formulas.stored knows dates, not times)."""
    if isinstance(value, dt.time):
        return (value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6) / 86400
    return value


class Sheet:
    def __init__(self, book: Book, ws: _Calls):
        self.book, self.ws, self.name = book, ws, ws.name

    @property
    def fmt(self) -> StyleNames:
        return self.book.fmt

    def put(self, r: int, c: int, value, style: Style | None = None) -> None:
        """A value (None or "" for a blank cell; a Slot for a copy's own) as XlsxWriter writes it: text stays text."""
        slot = isinstance(value, Slot)
        self.book.program.cells[(self.name, r, c)] = value if slot else _as_stored(value)
        self.book.program.steps.append(("put", self.ws._sheet, r, c, value, None if slot else _writer(value), style))

    def put_range(self, ref: str, value, style: Style) -> None:
        r1, c1, r2, c2 = parse_range(ref)
        if (r1, c1) != (r2, c2):
            self.ws.merge_range(r1, c1, r2, c2, "", style)
        self.put(r1, c1, value, style)

    def input(self, ref: str | tuple[int, int], rec: int, key: str, style: str) -> None:
        """An input cell (a range is merged): empty in a blank copy; in a 退回件 the submitter's value, the format
        filled red and a comment saying why where it was wrong."""
        rng = parse_range(ref) if isinstance(ref, str) else (*ref, *ref)
        where = Input(rec, key)
        self.book.program.cells[(self.name, rng[0], rng[1])] = where
        self.book.program.steps.append(("input", self.ws._sheet, rng, where, self.fmt[style]))

    def formula(self, r: int, c: int, expr: F.Expr, style: Style | None = None) -> None:
        self.book.program.cells[(self.name, r, c)] = expr
        self.book._formulas.append((self, r, c, expr, style))

    def formula_range(self, ref: str, expr: F.Expr, style: Style) -> None:
        r1, c1, r2, c2 = parse_range(ref)
        if (r1, c1) != (r2, c2):
            self.ws.merge_range(r1, c1, r2, c2, "", style)
        self.formula(r1, c1, expr, style)

    def mark(self, rng: tuple[int, int, int, int], condition: F.Expr, style: str) -> None:
        """A conditional format whose condition is an expression of this sheet's cells."""
        self.ws.conditional_format(*rng, {"type": "formula", "criteria": condition.formula(self.name),
                                          "format": self.fmt[style]})


# --- page setup and protection ----------------------------------------------------------------------------


def setup_page(ws, spec, print_area: str) -> None:
    """A4 in the spec's orientation; a one-record form on one page, a tracker one page wide."""
    ws.set_paper(9)  # A4
    if spec.orientation == "landscape":
        ws.set_landscape()
    else:
        ws.set_portrait()
    ws.print_area(print_area)
    ws.fit_to_pages(1, 1 if spec.kind == "form" else 0)
    ws.center_horizontally()
    ws.set_margins(left=0.6, right=0.6, top=0.7, bottom=0.7)
    ws.hide_gridlines(2)


def protect(ws, password: str) -> None:
    """Locked cells stay locked; rows and columns may still be resized (long answers need room)."""
    ws.protect(password, {"format_rows": True, "format_columns": True, "select_locked_cells": True,
                          "select_unlocked_cells": True})


# --- the hidden sheets ----------------------------------------------------------------------------------


class Lists:
    """The hidden _lists sheet: one column per dropdown, each under a workbook-level name (tj_list_…) that
    validations and 自查 use; never long inline lists, never another sheet's cells in a conditional format."""

    def __init__(self, roster: Roster):
        self.columns: dict[str, tuple[str, list[str], F.Named]] = {}  # name -> (title, values, range)
        self.unit_names = tuple(u.name for u in roster.units)
        self.units = self.add("units", "单位", list(self.unit_names))
        types = self.add("unit_types", "单位类型", [u.type for u in roster.units])  # VLOOKUP's second column
        self.unit_table = F.named(passport.list_name("unit_table"),
                                  F.rng(1, self.units.c1, types.r2, types.c1, sheet=passport.LISTS_SHEET))

    def add(self, key: str, title: str, values: list[str]) -> F.Named:
        """The named range that will hold `values` (the same one again for the same key)."""
        name = passport.list_name(key)
        if name not in self.columns:
            col = len(self.columns)
            target = F.rng(1, col, max(len(values), 1), col, sheet=passport.LISTS_SHEET)
            self.columns[name] = (title, list(values), F.named(name, target))
        elif self.columns[name][1] != list(values):
            raise ValueError(f"two lists under one name: {name}")
        return self.columns[name][2]

    def for_field(self, f: FormField, ftype: FieldType) -> F.Named | None:
        if not ftype.listed:
            return None
        if f.choices_from == "units":
            return self.units
        if ftype.choices:
            return self.add(ftype.list_name, ftype.zh, list(ftype.choices))
        return self.add(f.id, f.label, f.choices)

    def write(self, book: Book, password: str) -> None:
        sh = book.sheet(passport.LISTS_SHEET)
        for col, (title, values, _) in enumerate(self.columns.values()):
            sh.put(0, col, title)
            for r, v in enumerate(values, start=1):
                sh.put(r, col, v)
        for named in [named for _, _, named in self.columns.values()] + [self.unit_table]:
            book.wb.define_name(named.name, named.target.formula())
        sh.ws.hide()
        sh.ws.protect(password)


def write_passport(book: Book, spec, shape: Shape, password: str) -> None:
    """The hidden _passport sheet (key | value rows) and the same entries as tj.* custom properties."""
    wb, fmt = book.wb, book.fmt
    ws = book.add_worksheet(passport.PASSPORT_SHEET)
    ws.set_column(0, 0, 14)
    ws.set_column(1, 1, 70)
    for r, (key, v) in enumerate(shape.passport(spec).items()):
        ws.write_string(r, 0, key, fmt["passport"])
        if isinstance(v, int):
            ws.write_number(r, 1, v, fmt["passport"])
        else:  # text, or a Slot for text given when the program is written
            ws.write_string(r, 1, v if isinstance(v, Slot) else str(v), fmt["passport"])
        wb.set_custom_property(passport.property_name(key), v)
    ws.hide()
    ws.protect(password)


# --- 自查: a state cell per input, marks on the input, one line counting them ------------------------------------


def checked(sh: Sheet, at: tuple[int, int], rng: tuple[int, int, int, int], ftype: FieldType,
            expr: F.Expr | None, started: F.Expr, required: bool | F.Expr) -> None:
    """The input's state at `at`, and conditional formats on the input comparing it. An empty required cell turns
    red only once the form has been started, so a blank form prints clean."""
    if expr is None:
        return
    sh.formula(*at, expr, sh.fmt["helper"])
    cell = F.ref(*at, absolute=True)
    if ftype.classify is not None:
        sh.mark(rng, is_state(cell, WRONG), "invalid_mark")
        sh.mark(rng, is_state(cell, RETYPE), "retype_mark")
    if required is not False:
        sh.mark(rng, F.AND(started, is_state(cell, TO_FILL)), "empty_mark")


def state_column(sh: Sheet, col: int) -> None:
    """State cells are for formulas and marks, not for reading: their column is hidden (outside the print area)."""
    sh.ws.set_column(col, col, 8, sh.fmt["helper"], {"hidden": True})


# --- the printed form around the inputs: layout, 截止日期, header fields ---------------------------------------


def layout(sh: Sheet, spec) -> None:
    """Column widths, row heights, the bordered grid, then the fixed texts over it."""
    ws, fmt = sh.ws, sh.fmt
    for c, w in enumerate(spec.layout.columns):
        ws.set_column(c, c, w)
    for row, h in spec.layout.rows.items():
        ws.set_row(row - 1, h)
    if spec.layout.table:
        r1, c1, r2, c2 = parse_range(spec.layout.table)
        for r in range(r1, r2 + 1):  # labels and inputs overwrite their own cells later
            for c in range(c1, c2 + 1):
                sh.put(r, c, None, fmt["grid"])
    for t in spec.layout.texts:
        sh.put_range(t.range, t.text, fmt[t.style])


def due_line(sh: Sheet, spec, shape: Shape) -> None:
    """截止日期 on a distributed copy (blank in a blank template)."""
    if spec.layout.due:
        sh.put_range(spec.layout.due, shape.due_line, sh.fmt["due"])


def own_inputs(spec) -> list[F.Ref]:
    """The inputs a unit fills itself (prefilled header cells do not count as starting the form)."""
    return [F.ref(*parse_range(f.input_range)[:2], absolute=True) for f in spec.fields if not f.header]


def _inside(rc: tuple[int, int], rng: tuple[int, int, int, int]) -> bool:
    return rng[0] <= rc[0] <= rng[2] and rng[1] <= rc[1] <= rng[3]


def header_fields(book: Book, sh: Sheet, spec, lists: Lists, shape: Shape, table: tuple | None,
                  started: F.Expr, state_at: Callable[[int], tuple[int, int]], rec: int = 0,
                  local: bool = False) -> None:
    """Labels, inputs (record `rec`'s in a 退回件), validations, names, states and marks of spec.fields (field i's
    state at state_at(i))."""
    fmt = sh.fmt
    for i, f in enumerate(spec.fields):
        ftype = FIELD_TYPES[f.type]
        rng = parse_range(f.input_range)
        r1, c1 = rng[:2]
        in_table = table is not None and _inside((r1, c1), table)
        value = shape.fixed(f.id)
        fixed = value is not None
        sh.put_range(f.label_range, f.label_text, fmt["label" if in_table else "header"])
        if fixed:
            sh.put_range(f.input_range, value, fmt["head_fixed"])
        else:
            sh.input(f.input_range, rec, f.id, ftype.style if in_table else ftype.head_style)
        choices = lists.for_field(f, ftype)
        if not fixed:
            sh.ws.data_validation(f.input_range, ftype.data_validation(f.label, f.help, choices))
        x = F.ref(r1, c1, absolute=True)
        name = passport.field_name(f.id)
        book.wb.define_name(f"{quote_sheet(sh.name)}!{name}" if local else name,
                            F.ref(r1, c1, sheet=sh.name, absolute=True).formula())
        checked(sh, state_at(i), rng, ftype, state(f.type, x, required=f.required, choices=choices), started,
                f.required)
