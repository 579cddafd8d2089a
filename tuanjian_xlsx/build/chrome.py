"""What every sheet the builder writes shares: what a build is given (Prefill, Filled), the formats, the Book and
Sheet that write a cell and its grid value together (formulas wait for `Book.finish`), page setup and protection,
the hidden _lists and _passport sheets, and the header fields with their 自查 state and marks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

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
class Prefill:
    """What a distributed copy carries: blank in a blank template."""

    unit: Unit | None = None
    period: str = ""  # period code, e.g. 2026-03
    period_label: str = ""  # what the cell shows, e.g. 2026年3月
    due: dt.date | None = None
    not_forms: tuple[str, ...] = ()  # set by build_template for the sheets `first_sheet` adds

    def passport(self, spec) -> dict[str, object]:
        """The passport entries this copy carries, in the order written (see passport.entries)."""
        return passport.entries(spec, unit_id=self.unit.id if self.unit else "",
                                unit=self.unit.name if self.unit else "", period=self.period,
                                due=self.due.isoformat() if self.due else "", not_forms=self.not_forms)


@dataclass(frozen=True)
class Filled:
    """A submitter's values written back into a template (a 退回件), and the cells to mark with why.

    Keys are field ids, or 'code:column' for a tracker row (e.g. '1-3-2:done').
    """

    values: dict[str, object]
    marks: dict[str, str]


# --- styles -------------------------------------------------------------------------------------------

_GRID = {"border": 1}


def styles(wb) -> Styles:
    """The named formats every sheet of a template draws from."""
    body = {"font_name": FONT_BODY, "font_size": 12, "valign": "vcenter", "text_wrap": True}
    label = {**body, "font_size": 13, "align": "center", **_GRID}
    inp = {**body, "locked": False, "align": "left", **_GRID}
    head_in = {**body, "locked": False, "align": "left", "bottom": 1}
    s: dict[str, dict] = {
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
        "rate": {**body, "font_size": 10, "align": "center", "num_format": "0.0%", **_GRID},
        "met": {**body, "font_size": 10, "align": "center", **_GRID},
        "helper": {"font_name": FONT_BODY, "font_size": 9, "font_color": "#808080", "align": "center"},
        "empty_mark": {"bg_color": "#FDE9E7"},
        "invalid_mark": {"bg_color": "#FFC7CE", "font_color": "#9C0006"},
        "retype_mark": {"bg_color": "#FFEB9C", "font_color": "#9C5700"},
        "passport": {"font_name": "Arial", "font_size": 10},
        "due": {**body, "align": "right", "bold": True},
    }
    return Styles(wb, s)


BAD_FILL = {"bg_color": "#FF9999", "font_color": "#9C0006"}


class Styles(dict):
    """Named formats; `bad(name)` is the same format filled red, for a cell a 退回件 points at."""

    def __init__(self, wb, props: dict[str, dict]):
        super().__init__({k: wb.add_format(v) for k, v in props.items()})
        self.wb, self.props = wb, props
        self._bad: dict[str, object] = {}

    def bad(self, name: str):
        if name not in self._bad:
            self._bad[name] = self.wb.add_format({**self.props[name], **BAD_FILL})
        return self._bad[name]


# --- writing cells: the sheet and the grid together -----------------------------------------------------------


class Book:
    """The workbook and its cells as the programs will see them. Values are written at once; formulas wait for
    `finish`, when every cell is known, and carry the value their expression computes over the grid."""

    def __init__(self, wb, fmt: Styles):
        self.wb, self.fmt, self.grid = wb, fmt, F.Grid()
        self._formulas: list[tuple[Sheet, int, int, F.Expr, object]] = []

    def sheet(self, name: str) -> Sheet:
        return Sheet(self, self.wb.add_worksheet(name))

    def finish(self) -> None:
        """Write every formula with its cached value (the one place the package writes formula cells)."""
        for sh, r, c, expr, style in self._formulas:
            value = F.cached(self.grid.value(sh.name, r, c))
            sh.ws.write_formula(r, c, expr.formula(sh.name), style, value)
        self._formulas.clear()


def _as_stored(value):
    """A time of day as the number the file stores (formulas.stored knows dates, not times)."""
    if isinstance(value, dt.time):
        return (value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6) / 86400
    return value


class Sheet:
    def __init__(self, book: Book, ws):
        self.book, self.ws, self.name = book, ws, ws.name

    @property
    def fmt(self) -> Styles:
        return self.book.fmt

    def put(self, r: int, c: int, value, style=None) -> None:
        """A value (None or "" for a blank cell) as XlsxWriter writes it: text stays text."""
        self.book.grid.set(self.name, r, c, _as_stored(value))
        if value is None or value == "":
            self.ws.write_blank(r, c, None, style)
        else:
            self.ws.write(r, c, value, style)

    def put_range(self, ref: str, value, style) -> None:
        r1, c1, r2, c2 = parse_range(ref)
        if (r1, c1) != (r2, c2):
            self.ws.merge_range(r1, c1, r2, c2, "", style)
        self.put(r1, c1, value, style)

    def formula(self, r: int, c: int, expr: F.Expr, style=None) -> None:
        self.book.grid.set(self.name, r, c, expr)
        self.book._formulas.append((self, r, c, expr, style))

    def formula_range(self, ref: str, expr: F.Expr, style) -> None:
        r1, c1, r2, c2 = parse_range(ref)
        if (r1, c1) != (r2, c2):
            self.ws.merge_range(r1, c1, r2, c2, "", style)
        self.formula(r1, c1, expr, style)

    def mark(self, rng: tuple[int, int, int, int], condition: F.Expr, style: str) -> None:
        """A conditional format whose condition is an expression of this sheet's cells."""
        self.ws.conditional_format(*rng, {"type": "formula", "criteria": condition.formula(self.name),
                                          "format": self.fmt[style]})

    def comment(self, r: int, c: int, text: str) -> None:
        self.ws.write_comment(r, c, text, {"author": "tuanjian", "x_scale": 2, "y_scale": 1.5})


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


def write_passport(book: Book, spec, prefill: Prefill, password: str) -> None:
    """The hidden _passport sheet (key | value rows) and the same entries as tj.* custom properties."""
    wb, fmt = book.wb, book.fmt
    ws = wb.add_worksheet(passport.PASSPORT_SHEET)
    ws.set_column(0, 0, 14)
    ws.set_column(1, 1, 70)
    for r, (key, v) in enumerate(prefill.passport(spec).items()):
        ws.write_string(r, 0, key, fmt["passport"])
        if isinstance(v, int):
            ws.write_number(r, 1, v, fmt["passport"])
        else:
            ws.write_string(r, 1, str(v), fmt["passport"])
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


def due_line(sh: Sheet, spec, prefill: Prefill) -> None:
    """截止日期 on a distributed copy (blank in a blank template)."""
    if spec.layout.due:
        text = f"截止日期：{prefill.due.year}年{prefill.due.month}月{prefill.due.day}日" if prefill.due else None
        sh.put_range(spec.layout.due, text, sh.fmt["due"])


def own_inputs(spec) -> list[F.Ref]:
    """The inputs a unit fills itself (prefilled header cells do not count as starting the form)."""
    return [F.ref(*parse_range(f.input_range)[:2], absolute=True) for f in spec.fields if not f.header]


def _prefill_value(f: FormField, prefill: Prefill):
    if f.id == "unit" and prefill.unit:
        return prefill.unit.name
    if f.id == "period" and prefill.period:
        return prefill.period_label or prefill.period
    return None


def _inside(rc: tuple[int, int], rng: tuple[int, int, int, int]) -> bool:
    return rng[0] <= rc[0] <= rng[2] and rng[1] <= rc[1] <= rng[3]


def header_fields(book: Book, sh: Sheet, spec, lists: Lists, prefill: Prefill, table: tuple | None,
                  started: F.Expr, state_at: Callable[[int], tuple[int, int]], filled: Filled | None = None,
                  local: bool = False) -> None:
    """Labels, inputs, validations, names, states and marks of spec.fields (field i's state at state_at(i))."""
    fmt = sh.fmt
    for i, f in enumerate(spec.fields):
        ftype = FIELD_TYPES[f.type]
        rng = parse_range(f.input_range)
        r1, c1 = rng[:2]
        in_table = table is not None and _inside((r1, c1), table)
        value = _prefill_value(f, prefill)
        fixed = value is not None
        if not fixed and filled is not None:
            value = filled.values.get(f.id)
        style = "head_fixed" if fixed else ftype.style if in_table else ftype.head_style
        bad = filled.marks.get(f.id) if filled is not None else None
        sh.put_range(f.label_range, f.label_text, fmt["label" if in_table else "header"])
        sh.put_range(f.input_range, value, fmt.bad(style) if bad else fmt[style])
        if bad:
            sh.comment(r1, c1, bad)
        choices = lists.for_field(f, ftype)
        if not fixed:
            sh.ws.data_validation(f.input_range, ftype.data_validation(f.label, f.help, choices))
        x = F.ref(r1, c1, absolute=True)
        name = passport.field_name(f.id)
        book.wb.define_name(f"{quote_sheet(sh.name)}!{name}" if local else name,
                            F.ref(r1, c1, sheet=sh.name, absolute=True).formula())
        checked(sh, state_at(i), rng, ftype, state(f.type, x, required=f.required, choices=choices), started,
                f.required)
