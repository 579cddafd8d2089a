"""Spec -> .xlsx with XlsxWriter: the printed form's look, dropdowns, protection, 自查, names and passport.

Every cell the builder writes also goes into a `formulas.Grid`; every formula is a `formulas` expression written
once all cells are known, with the value it computes over that grid as its cached result — so a distributed copy,
a blank template and a 退回件 (with the submitter's own values, typed text and chosen unit) all open showing what
Excel, WPS and LibreOffice will compute. What an input accepts and how 自查 judges it come from `fieldtypes`; a
tracker row's inputs and formulas from its task kind (`fieldtypes.TASK_KINDS`), named by the spec's columns.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from . import formulas as F
from .cells import parse_range, quote_sheet, range_name
from .config import Roster, Task, Unit, Workspace
from .fieldtypes import FIELD_TYPES, NOT_ASKED, RETYPE, TASK_KINDS, WRONG, FieldType
from .selfcheck import TO_FILL, is_state, state, summary_over
from .specs import FormField, FormSpec, TableSpec
from .xlsxio import FONT_BODY, FONT_TITLE, atomic_write, close_workbook, new_workbook

LISTS_SHEET = "_lists"
PASSPORT_SHEET = "_passport"
PASSPORT_KEYS = ("form_id", "version", "fingerprint", "unit_id", "unit", "period", "due")
# Written only where it has a value (a 退回件): the sheets this product put in front of the form (问题清单), which
# the reader never takes for a form. Sheet names cannot hold "/", so it separates them.
NOT_FORMS_KEY = "not_forms"
PROPERTY_PREFIX = "tj."
LIST_NAME_PREFIX = "tj_list_"
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
        return {
            "form_id": spec.form_id,
            "version": spec.version,
            "fingerprint": spec.fingerprint,
            "unit_id": self.unit.id if self.unit else "",
            "unit": self.unit.name if self.unit else "",
            "period": self.period,
            "due": self.due.isoformat() if self.due else "",
            NOT_FORMS_KEY: "/".join(self.not_forms),
        }


@dataclass(frozen=True)
class Filled:
    """A submitter's values written back into a template (a 退回件), and the cells to mark with why.

    Keys are field ids, or 'code:column' for a tracker row (e.g. '1-3-2:done').
    """

    values: dict[str, object]
    marks: dict[str, str]


# --- styles -------------------------------------------------------------------------------------------

_GRID = {"border": 1}


def _styles(wb) -> dict:
    body = {"font_name": FONT_BODY, "font_size": 12, "valign": "vcenter", "text_wrap": True}
    label = {**body, "font_size": 13, "align": "center", **_GRID}
    inp = {**body, "locked": False, "align": "left", **_GRID}
    head_in = {**body, "locked": False, "align": "left", "bottom": 1}
    s = {
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
FORMULA_STYLES = {"rate": "rate", "met": "met"}  # a tracker formula column's format, by its spec `formula`


class Styles(dict):
    """Named formats; `bad(name)` is the same format filled red, for a cell a 退回件 points at."""

    def __init__(self, wb, props: dict[str, dict]):
        super().__init__({k: wb.add_format(v) for k, v in props.items()})
        self.wb, self.props, self._bad = wb, props, {}

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

    def sheet(self, name: str) -> "Sheet":
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


# --- the hidden sheets ----------------------------------------------------------------------------------


class Lists:
    """The hidden _lists sheet: one column per dropdown, each under a workbook-level name (tj_list_…) that
    validations and 自查 use; never long inline lists, never another sheet's cells in a conditional format."""

    def __init__(self, roster: Roster):
        self.columns: dict[str, tuple[str, list[str], F.Named]] = {}  # name -> (title, values, range)
        self.unit_names = tuple(u.name for u in roster.units)
        self.units = self.add("units", "单位", list(self.unit_names))
        types = self.add("unit_types", "单位类型", [u.type for u in roster.units])  # VLOOKUP's second column
        self.unit_table = F.named(LIST_NAME_PREFIX + "unit_table",
                                  F.rng(1, self.units.c1, types.r2, types.c1, sheet=LISTS_SHEET))

    def add(self, key: str, title: str, values: list[str]) -> F.Named:
        """The named range that will hold `values` (the same one again for the same key)."""
        name = key if key.startswith(LIST_NAME_PREFIX) else LIST_NAME_PREFIX + key
        if name not in self.columns:
            col = len(self.columns)
            target = F.rng(1, col, max(len(values), 1), col, sheet=LISTS_SHEET)
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
        sh = book.sheet(LISTS_SHEET)
        for col, (title, values, _) in enumerate(self.columns.values()):
            sh.put(0, col, title)
            for r, v in enumerate(values, start=1):
                sh.put(r, col, v)
        for named in [named for _, _, named in self.columns.values()] + [self.unit_table]:
            book.wb.define_name(named.name, named.target.formula())
        sh.ws.hide()
        sh.ws.protect(password)


def _passport(wb, ws, spec, prefill: Prefill, password: str, fmt) -> None:
    values = prefill.passport(spec)
    ws.set_column(0, 0, 14)
    ws.set_column(1, 1, 70)
    for r, key in enumerate(PASSPORT_KEYS + ((NOT_FORMS_KEY,) if values[NOT_FORMS_KEY] else ())):
        ws.write_string(r, 0, key, fmt["passport"])
        v = values[key]
        if isinstance(v, int):
            ws.write_number(r, 1, v, fmt["passport"])
        else:
            ws.write_string(r, 1, str(v), fmt["passport"])
        wb.set_custom_property(PROPERTY_PREFIX + key, v)
    ws.hide()
    ws.protect(password)


# --- 自查: a state cell per input, marks on the input, one line counting them ------------------------------------


def _checked(sh: Sheet, at: tuple[int, int], rng: tuple[int, int, int, int], ftype: FieldType,
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


def _state_column(sh: Sheet, col: int) -> None:
    """State cells are for formulas and marks, not for reading: their column is hidden (outside the print area)."""
    sh.ws.set_column(col, col, 8, sh.fmt["helper"], {"hidden": True})


# --- one-record forms -------------------------------------------------------------------------------


def _prefill_value(f: FormField, prefill: Prefill):
    if f.id == "unit" and prefill.unit:
        return prefill.unit.name
    if f.id == "period" and prefill.period:
        return prefill.period_label or prefill.period
    return None


def _setup_page(ws, spec, print_area: str) -> None:
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


def _protect(ws, password: str) -> None:
    ws.protect(password, {"format_rows": True, "format_columns": True, "select_locked_cells": True,
                          "select_unlocked_cells": True})


def _header_fields(book: Book, sh: Sheet, spec, lists: Lists, prefill: Prefill, table: tuple | None,
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
        book.wb.define_name(f"{quote_sheet(sh.name)}!{f.name}" if local else f.name,
                            F.ref(r1, c1, sheet=sh.name, absolute=True).formula())
        _checked(sh, state_at(i), rng, ftype, state(f.type, x, required=f.required, choices=choices), started,
                 f.required)


def _inside(rc: tuple[int, int], rng: tuple[int, int, int, int]) -> bool:
    return rng[0] <= rc[0] <= rng[2] and rng[1] <= rc[1] <= rng[3]


def _layout(sh: Sheet, spec) -> None:
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


def _due(sh: Sheet, spec, prefill: Prefill) -> None:
    """截止日期 on a distributed copy (blank in a blank template)."""
    if spec.layout.due:
        text = f"截止日期：{prefill.due.year}年{prefill.due.month}月{prefill.due.day}日" if prefill.due else None
        sh.put_range(spec.layout.due, text, sh.fmt["due"])


def sheet_names(spec, n: int) -> list[str]:
    """The form sheet and its copies, named as Excel names a copied sheet: 走基层报告单 (2)…"""
    return [spec.sheet_name] + [f"{spec.sheet_name} ({i})" for i in range(2, n + 1)]


def _own_inputs(spec) -> list[F.Ref]:
    """The inputs a unit fills itself (prefilled header cells do not count as starting the form)."""
    return [F.ref(*parse_range(f.input_range)[:2], absolute=True) for f in spec.fields if not f.header]


def _build_form(book: Book, spec: FormSpec, roster: Roster, prefill: Prefill, password: str,
                filled: list[Filled]) -> None:
    lists = Lists(roster)
    records = filled or [None]
    state_c = len(spec.layout.columns) + 1  # a hidden column, one row per field, right of the printed form
    for i, (name, rec) in enumerate(zip(sheet_names(spec, len(records)), records)):
        sh = book.sheet(name)
        _layout(sh, spec)
        _due(sh, spec, prefill)
        _state_column(sh, state_c)
        started = F.cmp(F.COUNTA(*_own_inputs(spec)), ">", 0)
        _header_fields(book, sh, spec, lists, prefill, parse_range(spec.layout.table), started,
                       lambda k: (1 + k, state_c), rec, local=i > 0)
        states = F.rng(1, state_c, len(spec.fields), state_c)
        sh.formula_range(spec.layout.self_check, summary_over(states), sh.fmt["self_check"])
        _setup_page(sh.ws, spec, spec.layout.print_area)
        _protect(sh.ws, password)
    lists.write(book, password)
    _passport(book.wb, book.wb.add_worksheet(PASSPORT_SHEET), spec, prefill, password, book.fmt)


# --- the table form (target tracker) --------------------------------------------------------------------

NAME_COL_PREFIX = "tj_col_"
ROW_COUNTS = ((TO_FILL, "本行待填"), (WRONG, "本行有误"), (RETYPE, "本行需改"))  # helper columns beside the table


def _target(task: Task, unit_type: str | None, type_cell: F.Expr) -> F.Expr | float | None:
    """目标值: the unit type's number, or in a blank tracker a formula following the chosen unit's type."""
    if unit_type is not None or not task.type_targets:
        return task.target_for(unit_type)
    expr: object = "" if task.target is None else task.target
    for ut, v in reversed(list(task.type_targets.items())):
        expr = F.IF(F.cmp(type_cell, "=", ut), v, expr)
    return expr


@dataclass
class _Table:
    """Where the tracker's parts stand (0-based)."""

    spec: TableSpec
    first: int  # first task row
    last: int
    state_c: int  # first hidden state column; an input column's state is state_c + its index among inputs

    @property
    def ci(self) -> dict[str, int]:
        return {col.id: i for i, col in enumerate(self.spec.columns)}

    @property
    def inputs(self) -> list:
        return [col for col in self.spec.columns if col.role == "input"]

    @property
    def counts_c(self) -> int:
        return len(self.spec.columns)

    def col(self, col_id: str) -> F.Range:
        c = self.ci[col_id]
        return F.rng(self.first, c, self.last, c)


def _build_table(book: Book, spec: TableSpec, roster: Roster, prefill: Prefill, password: str,
                 filled: list[Filled]) -> None:
    rec = filled[0] if filled else Filled({}, {})
    sh = book.sheet(spec.sheet_name)
    fmt = sh.fmt
    lists = Lists(roster)
    yes_no = FIELD_TYPES["yes_no"]
    lists.add(yes_no.list_name, yes_no.zh, list(yes_no.choices))
    unit_type = prefill.unit.type if prefill.unit else None
    tasks = roster.tasks_for(unit_type)
    hr = spec.header_row - 1
    tab = _Table(spec, hr + 1, hr + max(len(tasks), 1), len(spec.columns) + len(ROW_COUNTS))
    for c, col in enumerate(spec.columns):
        sh.ws.set_column(c, c, col.width)
    sh.ws.set_column(tab.counts_c, tab.counts_c + len(ROW_COUNTS) - 1, 8)
    for k in range(max(len(tab.inputs), len(spec.fields))):
        _state_column(sh, tab.state_c + k)
    _layout(sh, spec)
    _due(sh, spec, prefill)

    filled_in = [tab.col(col.id) for col in tab.inputs]
    not_asked = [F.COUNTIF(r, NOT_ASKED) for r in filled_in]
    started = F.OR(F.cmp(F.COUNTA(*_own_inputs(spec)), ">", 0),
                   F.cmp(F.COUNTA(*filled_in) - F.plus(*not_asked), ">", 0))
    _header_fields(book, sh, spec, lists, prefill, None, started, lambda k: (hr - 1, tab.state_c + k), rec)

    # the unit's type: looked up from the chosen unit in a blank template, written in a distributed copy
    type_range = parse_range(spec.unit_type_range)
    type_cell = F.ref(*type_range[:2], absolute=True)
    if unit_type:
        sh.put_range(spec.unit_type_range, unit_type, fmt["head_fixed"])
    else:
        unit_cell = F.ref(*parse_range(spec.field("unit").input_range)[:2], absolute=True)
        sh.formula_range(spec.unit_type_range, F.IFERROR(F.VLOOKUP(unit_cell, lists.unit_table, 2), ""),
                         fmt["head_fixed"])

    for c, col in enumerate(spec.columns):
        sh.put(hr, c, col.label, fmt["col_head"])
    for k, (_, title) in enumerate(ROW_COUNTS):
        sh.put(hr, tab.counts_c + k, title, fmt["helper"])
    for i, task in enumerate(tasks):
        applies = None if unit_type else F.OR(*(F.cmp(type_cell, "=", t) for t in task.unit_types))
        _task_row(sh, tab, tab.first + i, task, unit_type, type_cell, lists, started, applies, rec)
    for col in spec.columns:
        book.wb.define_name(NAME_COL_PREFIX + col.id, F.rng(tab.first, tab.ci[col.id], tab.last, tab.ci[col.id],
                                                            sheet=sh.name).formula())

    states = F.rng(hr - 1, tab.state_c, tab.last, tab.state_c + max(len(tab.inputs), len(spec.fields)) - 1)
    sh.formula_range(spec.layout.self_check, summary_over(states), fmt["self_check"])
    sh.ws.repeat_rows(hr)
    sh.ws.freeze_panes(tab.first, 0)
    _setup_page(sh.ws, spec, range_name(1, 0, tab.last, len(spec.columns) - 1))
    _protect(sh.ws, password)
    lists.write(book, password)
    _passport(book.wb, book.wb.add_worksheet(PASSPORT_SHEET), spec, prefill, password, fmt)


def _task_cell(sh: Sheet, r: int, c: int, task: Task, source: str, unit_type: str | None, target) -> None:
    """A locked cell of the task itself (编号, 任务内容, 目标, 目标值…)."""
    fmt = sh.fmt
    if source == "target":
        style = fmt["task_pct"] if task.kind == "ratio" else fmt["task_num"]
        if isinstance(target, F.Expr):
            sh.formula(r, c, target, style)
        else:
            sh.put(r, c, target, style)
    elif source == "deadline":
        if task.deadline:
            sh.put(r, c, dt.datetime.combine(task.deadline, dt.time()), fmt["task_date"])
        else:
            sh.put(r, c, "长期", fmt["task_c"])
    elif source == "target_text":
        sh.put(r, c, task.target_text(unit_type), fmt["task_c"])
    else:
        v = task.basis if source == "basis" else getattr(task, source)
        sh.put(r, c, str(v), fmt["task_c" if source in ("code", "department", "owner") else "task"])


def _task_row(sh: Sheet, tab: _Table, r: int, task: Task, unit_type: str | None, type_cell: F.Expr, lists: Lists,
              started: F.Expr, applies: F.Expr | None, rec: Filled) -> None:
    """One task's row: its locked cells, its inputs as its kind asks for them, its formulas, and its 自查 (a
    state per input in the hidden columns, and the row's counts beside the table)."""
    sh.ws.set_row(r, 40)
    fmt = sh.fmt
    kind = TASK_KINDS[task.kind]
    cells = {col.id: F.ref(r, tab.ci[col.id], absolute=True) for col in tab.spec.columns}
    target = _target(task, unit_type, type_cell)
    for col in tab.spec.columns:
        c = tab.ci[col.id]
        if col.role == "task":
            _task_cell(sh, r, c, task, col.source, unit_type, target)
        elif col.role == "formula":
            make = kind.formulas.get(col.formula)
            if make is None:
                sh.put(r, c, NOT_ASKED, fmt["cell_off"])
            else:
                sh.formula(r, c, make(cells, task.comparison), fmt[FORMULA_STYLES[col.formula]])
        else:
            _task_input(sh, tab, r, col, task, cells, lists, started, applies, rec)
    block = F.rng(r, tab.state_c, r, tab.state_c + len(tab.inputs) - 1)
    for k, (which, _) in enumerate(ROW_COUNTS):
        sh.formula(r, tab.counts_c + k, F.COUNTIF(block, which), fmt["helper"])


def _task_input(sh: Sheet, tab: _Table, r: int, col, task: Task, cells: dict[str, F.Ref], lists: Lists,
                started: F.Expr, applies: F.Expr | None, rec: Filled) -> None:
    """An input cell of a task's row, typed as the task's kind asks (NOT_ASKED where it asks for none)."""
    fmt = sh.fmt
    kind = TASK_KINDS[task.kind]
    c = tab.ci[col.id]
    field_type = kind.input_type(col)
    if field_type is None:
        sh.put(r, c, NOT_ASKED, fmt["cell_off"])
        return
    ftype = FIELD_TYPES[field_type]
    key = f"{task.code}:{col.id}"
    bad = rec.marks.get(key)
    style = "cell_text" if ftype.classify is None else "cell_in"
    sh.put(r, c, rec.values.get(key), fmt.bad(style) if bad else fmt[style])
    if bad:
        sh.comment(r, c, bad)
    choices = lists.add(ftype.list_name, ftype.zh, list(ftype.choices)) if ftype.choices else None
    if ftype.validation.get("validate") != "any":
        sh.ws.data_validation(r, c, r, c, ftype.data_validation(col.label, source=choices))
    # in a blank tracker a row is required only once the chosen unit's type is one that reports it
    required: bool | F.Expr = col.id in kind.required and (applies if applies is not None else True)
    over = kind.over(cells) if kind.not_above and col.id == kind.not_above[0] else None
    at = (r, tab.state_c + tab.inputs.index(col))
    _checked(sh, at, (r, c, r, c), ftype,
             state(field_type, cells[col.id], required=required, choices=choices, wrong_also=over),
             started if applies is None else F.AND(started, applies), required)


# --- entry points -------------------------------------------------------------------------------------


def build_template(spec: FormSpec | TableSpec, roster: Roster, *, prefill: Prefill | None = None,
                   password: str = "", filled: list[Filled] | None = None,
                   first_sheet: Callable | None = None) -> bytes:
    """The .xlsx bytes of one form version: a blank template, a prefilled copy for one unit and period, or
    (with `filled`) a 退回件 carrying the submitter's values. `first_sheet(wb)` may add a sheet in front."""
    prefill = prefill or Prefill()
    buf = io.BytesIO()
    wb = new_workbook(buf, title=spec.display_name)
    book = Book(wb, _styles(wb))
    if first_sheet is not None:  # the workbook's first sheet is the one selected and shown: never the form too
        first_sheet(wb)
        prefill = replace(prefill, not_forms=tuple(w.name for w in wb.worksheets()))
    if isinstance(spec, TableSpec):
        _build_table(book, spec, roster, prefill, password, filled or [])
    else:
        _build_form(book, spec, roster, prefill, password, filled or [])
    book.finish()
    return close_workbook(wb, buf)


def template_filename(spec) -> str:
    return f"{spec.file_stem}_v{spec.version}.xlsx"


def build_templates(workspace: Workspace, out_dir: Path | None = None) -> list[Path]:
    """Build the current version of every form in use into the workspace's 模板/ (or out_dir)."""
    out = Path(out_dir) if out_dir else workspace.folder("templates")
    password = workspace.settings.protection.password
    written = []
    for spec in workspace.current_specs():
        data = build_template(spec, workspace.roster, password=password)
        written.append(atomic_write(out / template_filename(spec), data))
    return written
