"""Spec -> .xlsx with XlsxWriter: the printed form's look, dropdowns, protection, 自查, names and passport."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from .cells import cell_name, parse_range, quote_sheet, range_name
from .config import Roster, Task, Unit, Workspace
from .selfcheck import DATE_MAX, DATE_MIN, Check, NotAbove, count_expr, summary_formula, summary_text
from .selfcheck import excel_number
from .specs import FormField, FormSpec, TableSpec
from .xlsxio import FONT_BODY, FONT_TITLE, atomic_write, close_workbook, new_workbook

LISTS_SHEET = "_lists"
PASSPORT_SHEET = "_passport"
PASSPORT_KEYS = ("form_id", "version", "fingerprint", "unit_id", "unit", "period", "due")
# Written only where it has a value (a 退回件): the sheets this product put in front of the form (问题清单), which
# the reader never takes for a form. Sheet names cannot hold "/", so it separates them.
NOT_FORMS_KEY = "not_forms"
PROPERTY_PREFIX = "tj."
DATE_FORMAT = 'yyyy"年"m"月"d"日"'
YES_NO = ("是", "否")


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
        "passport": {"font_name": "Arial", "font_size": 10},
        "due": {**body, "align": "right", "bold": True},
    }
    return Styles(wb, s)


BAD_FILL = {"bg_color": "#FF9999", "font_color": "#9C0006"}


class Styles(dict):
    """Named formats; `bad(name)` is the same format filled red, for a cell a 退回件 points at."""

    def __init__(self, wb, props: dict[str, dict]):
        super().__init__({k: wb.add_format(v) for k, v in props.items()})
        self.wb, self.props, self._bad = wb, props, {}

    def bad(self, name: str):
        if name not in self._bad:
            self._bad[name] = self.wb.add_format({**self.props[name], **BAD_FILL})
        return self._bad[name]


# --- the hidden sheets ----------------------------------------------------------------------------------


class Lists:
    """The hidden _lists sheet: one column per dropdown; validations point at ranges, never long inline lists."""

    def __init__(self, roster: Roster):
        self.columns: dict[str, tuple[str, list[str]]] = {}  # title -> (range, values)
        self.unit_names = tuple(u.name for u in roster.units)
        self.units = self.add("单位", list(self.unit_names))
        self.add("单位类型", [u.type for u in roster.units])  # beside the names: VLOOKUP finds a unit's type
        self.unit_table = f"{LISTS_SHEET}!$A$2:$B${max(len(roster.units), 1) + 1}"

    def add(self, title: str, values: list[str]) -> str:
        """The range that will hold `values` (the same column again for the same title)."""
        if title not in self.columns:
            col = len(self.columns)
            ref = f"{LISTS_SHEET}!{range_name(1, col, max(len(values), 1), col, absolute=True)}"
            self.columns[title] = (ref, list(values))
        return self.columns[title][0]

    def write(self, wb, password: str) -> None:
        ws = wb.add_worksheet(LISTS_SHEET)
        for col, (title, (_, values)) in enumerate(self.columns.items()):
            ws.write_string(0, col, title)
            for r, v in enumerate(values, start=1):
                ws.write_string(r, col, v)
        ws.hide()
        ws.protect(password)


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


# --- one-record forms -------------------------------------------------------------------------------


def _input_style(f: FormField, in_table: bool, fixed: bool) -> str:
    if fixed:
        return "head_fixed"
    if not in_table:
        return {"date": "head_date", "period": "head_period"}.get(f.type, "head_input")
    return {"integer": "input_int", "number": "input_num", "date": "input_date", "period": "input_period",
            "long_text": "input_long"}.get(f.type, "input")


def _validation(f: FormField, choices_ref: str | None) -> dict:
    title = f.label[:32]
    dv: dict = {"input_title": title, "error_title": title}
    if f.help:
        dv["input_message"] = f.help[:255]
    if f.type == "integer":
        dv |= {"validate": "integer", "criteria": ">=", "value": 0, "error_message": f"“{f.label}”请填写不小于 0 的整数。"}
    elif f.type == "number":
        dv |= {"validate": "decimal", "criteria": ">=", "value": 0, "error_message": f"“{f.label}”请填写不小于 0 的数。"}
    elif f.type == "date":
        dv |= {"validate": "date", "criteria": "between", "minimum": DATE_MIN, "maximum": DATE_MAX,
               "error_message": f"“{f.label}”请填写日期，如 2026-03-05。"}
    elif f.type == "choice":
        dv |= {"validate": "list", "source": "=" + choices_ref, "error_message": f"“{f.label}”请从下拉列表中选择。"}
    else:
        dv |= {"validate": "any"}
    return dv


def _write_range(ws, ref: str, value, style) -> None:
    r1, c1, r2, c2 = parse_range(ref)
    if (r1, c1) == (r2, c2):
        if value is None:
            ws.write_blank(r1, c1, None, style)
        else:
            ws.write(r1, c1, value, style)
    else:
        ws.merge_range(r1, c1, r2, c2, "" if value is None else value, style)
        if value is not None and not isinstance(value, str):
            ws.write(r1, c1, value, style)


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


def _header_fields(wb, ws, spec, lists: Lists, prefill: Prefill, fmt, table: tuple | None,
                   started: str, filled: Filled | None = None, local: bool = False) -> list[tuple[Check, object]]:
    """Labels, inputs, validations, names and conditional formats of spec.fields; returns (check, value written)."""
    checks: list[tuple[Check, object]] = []
    sheet = quote_sheet(ws.name)
    for f in spec.fields:
        r1, c1, _, _ = parse_range(f.input_range)
        in_table = table is not None and _inside((r1, c1), table)
        value = _prefill_value(f, prefill)
        fixed = value is not None
        if not fixed and filled is not None:
            value = filled.values.get(f.id)
        style = _input_style(f, in_table, fixed)
        bad = filled.marks.get(f.id) if filled is not None else None
        _write_range(ws, f.label_range, f.label_text, fmt["label" if in_table else "header"])
        _write_range(ws, f.input_range, value, fmt.bad(style) if bad else fmt[style])
        if bad:
            ws.write_comment(r1, c1, bad, {"author": "tuanjian", "x_scale": 2, "y_scale": 1.5})
        ref = None
        if f.type == "choice":
            if f.choices_from == "units":
                ref = lists.units
            else:
                ref = lists.add(f.label, f.choices)
        if not fixed:
            ws.data_validation(f.input_range, _validation(f, ref))
        wb.define_name(f"{sheet}!{f.name}" if local else f.name, f"={sheet}!{cell_name(r1, c1, absolute=True)}")
        choices = lists.unit_names if f.choices_from == "units" else tuple(f.choices)
        check = Check(cell_name(r1, c1, absolute=True), f.type, f.required, ref, choices)
        checks.append((check, value))
        _mark(ws, f.input_range, check, started, fmt)
    return checks


def _mark(ws, ref: str, check: Check, started: str, fmt) -> None:
    """Conditional formats with the very expressions the 自查 line counts.

    Empty required cells turn red only once the form has been started (`started`), so a blank form prints clean.
    """
    invalid = check.invalid_expr()
    if invalid:
        ws.conditional_format(ref, {"type": "formula", "criteria": "=" + invalid, "format": fmt["invalid_mark"]})
    if check.required:
        ws.conditional_format(ref, {"type": "formula", "criteria": f"=AND({started},{check.empty_expr()})",
                                    "format": fmt["empty_mark"]})


def started_expr(cells: list[str]) -> str:
    """TRUE once anything is typed into the form's own inputs (prefilled header cells do not count)."""
    return f"COUNTA({','.join(cells)})>0"


def _abs(cell: str) -> str:
    return cell_name(*parse_range(cell)[:2], absolute=True)


def _inside(rc: tuple[int, int], rng: tuple[int, int, int, int]) -> bool:
    return rng[0] <= rc[0] <= rng[2] and rng[1] <= rc[1] <= rng[3]


def _layout(ws, spec, fmt) -> None:
    """Column widths, row heights, the bordered grid, then the fixed texts over it."""
    for c, w in enumerate(spec.layout.columns):
        ws.set_column(c, c, w)
    for row, h in spec.layout.rows.items():
        ws.set_row(row - 1, h)
    if spec.layout.table:
        r1, c1, r2, c2 = parse_range(spec.layout.table)
        for r in range(r1, r2 + 1):  # labels and inputs overwrite their own cells later
            for c in range(c1, c2 + 1):
                ws.write_blank(r, c, None, fmt["grid"])
    for t in spec.layout.texts:
        _write_range(ws, t.range, t.text, fmt[t.style])


def _due(ws, spec, prefill: Prefill, fmt) -> None:
    """截止日期 on a distributed copy (blank in a blank template)."""
    if spec.layout.due:
        text = f"截止日期：{prefill.due.year}年{prefill.due.month}月{prefill.due.day}日" if prefill.due else None
        _write_range(ws, spec.layout.due, text, fmt["due"])


def _self_check(ws, spec, empty: str, invalid: str, text: str, fmt) -> None:
    r1, c1, r2, c2 = parse_range(spec.layout.self_check)
    if (r1, c1) != (r2, c2):
        ws.merge_range(r1, c1, r2, c2, "", fmt["self_check"])
    ws.write_formula(r1, c1, summary_formula(empty, invalid), fmt["self_check"], text)


def sheet_names(spec, n: int) -> list[str]:
    """The form sheet and its copies, named as Excel names a copied sheet: 走基层报告单 (2)…"""
    return [spec.sheet_name] + [f"{spec.sheet_name} ({i})" for i in range(2, n + 1)]


def _build_form(wb, spec: FormSpec, roster: Roster, prefill: Prefill, password: str, fmt,
                filled: list[Filled]) -> None:
    lists = Lists(roster)
    records = filled or [None]
    for i, (name, rec) in enumerate(zip(sheet_names(spec, len(records)), records)):
        ws = wb.add_worksheet(name)
        _layout(ws, spec, fmt)
        _due(ws, spec, prefill, fmt)
        own_inputs = [_abs(f.input_cell) for f in spec.fields if not f.header]
        checks = _header_fields(wb, ws, spec, lists, prefill, fmt, parse_range(spec.layout.table),
                                started_expr(own_inputs), rec, local=i > 0)
        empty = count_expr([c.empty_expr() for c, _ in checks if c.required])
        invalid = count_expr([c.invalid_expr() for c, _ in checks if c.invalid_expr()])
        n_empty = sum(c.is_empty(v) for c, v in checks if c.required)
        n_invalid = sum(c.is_invalid(v) for c, v in checks)
        _self_check(ws, spec, empty, invalid, summary_text(n_empty, n_invalid), fmt)
        _setup_page(ws, spec, spec.layout.print_area)
        _protect(ws, password)
    lists.write(wb, password)
    _passport(wb, wb.add_worksheet(PASSPORT_SHEET), spec, prefill, password, fmt)


# --- the table form (target tracker) --------------------------------------------------------------------


def _target_formula(task: Task, type_cell: str) -> str:
    """目标值 that follows the unit type chosen in a blank tracker: nested IF over the per-type targets."""
    expr = '""' if task.target is None else f"{task.target:.15g}"
    for ut, v in reversed(list(task.type_targets.items())):
        name = ut.replace('"', '""')
        expr = f'IF({type_cell}="{name}",{v:.15g},{expr})'
    return "=" + expr


def _build_table(wb, spec: TableSpec, roster: Roster, prefill: Prefill, password: str, fmt,
                 filled: list[Filled]) -> None:
    rec = filled[0] if filled else Filled({}, {})
    ws = wb.add_worksheet(spec.sheet_name)
    lists = Lists(roster)
    yes_no = lists.add("是否", list(YES_NO))
    unit_type = prefill.unit.type if prefill.unit else None
    tasks = roster.tasks_for(unit_type)
    for c, col in enumerate(spec.columns):
        ws.set_column(c, c, col.width)
    n_cols = len(spec.columns)
    helper_c = n_cols  # two helper columns after the table, outside the print area: 本行待填 / 本行有误
    ws.set_column(helper_c, helper_c + 1, 8)
    _layout(ws, spec, fmt)
    _due(ws, spec, prefill, fmt)
    hr = spec.header_row - 1
    first = hr + 1
    last = first + max(len(tasks), 1) - 1
    ci = {col.id: i for i, col in enumerate(spec.columns)}

    def col_range(col_id: str) -> str:
        return range_name(first, ci[col_id], last, ci[col_id], absolute=True)

    own = [_abs(f.input_cell) for f in spec.fields if not f.header]
    started = (f"OR({started_expr(own)},COUNT({col_range('done')},{col_range('base')})>0,"
               f"COUNTIF({col_range('done')},\"是\")+COUNTIF({col_range('done')},\"否\")>0,"
               f"COUNTA({col_range('progress')},{col_range('problems')})>0)")
    header_checks = _header_fields(wb, ws, spec, lists, prefill, fmt, None, started, rec)

    # the unit's type: looked up from the chosen unit in a blank template, written in a distributed copy
    tr1, tc1, tr2, tc2 = parse_range(spec.unit_type_range)
    type_cell = cell_name(tr1, tc1, absolute=True)
    unit_cell = spec.field("unit").input_cell
    type_formula = f'=IFERROR(VLOOKUP({unit_cell},{lists.unit_table},2,FALSE),"")'
    ws.merge_range(tr1, tc1, tr2, tc2, "", fmt["head_fixed"])
    if unit_type:
        ws.write_string(tr1, tc1, unit_type, fmt["head_fixed"])
    else:
        ws.write_formula(tr1, tc1, type_formula, fmt["head_fixed"], "")

    for c, col in enumerate(spec.columns):
        ws.write_string(hr, c, col.label, fmt["col_head"])
    ws.write_string(hr, helper_c, "本行待填", fmt["helper"])
    ws.write_string(hr, helper_c + 1, "本行有误", fmt["helper"])
    row_counts = []
    for i, task in enumerate(tasks):
        # in a blank tracker a row is required only once the chosen unit's type is one that reports it
        applies = None if unit_type else "OR(" + ",".join(f'{type_cell}="{t}"' for t in task.unit_types) + ")"
        row = _RowInput({c: rec.values.get(f"{task.code}:{c}") for c in INPUT_COLUMNS},
                        {c: rec.marks[f"{task.code}:{c}"] for c in INPUT_COLUMNS if f"{task.code}:{c}" in rec.marks})
        row_counts.append(_task_row(ws, spec, first + i, task, unit_type, type_cell, ci, helper_c, yes_no, started,
                                    applies, fmt, row))
    sheet = quote_sheet(spec.sheet_name)
    for col in spec.columns:
        c = ci[col.id]
        wb.define_name(NAME_COL_PREFIX + col.id, f"={sheet}!{range_name(first, c, last, c, absolute=True)}")

    h_empty = [c.empty_expr() for c, _ in header_checks if c.required]
    h_invalid = [c.invalid_expr() for c, _ in header_checks if c.invalid_expr()]
    rows = range_name(first, helper_c, last, helper_c, absolute=True)
    rows_bad = range_name(first, helper_c + 1, last, helper_c + 1, absolute=True)
    empty = count_expr(h_empty + [f"SUM({rows})"])
    invalid = count_expr(h_invalid + [f"SUM({rows_bad})"])
    n_empty = sum(c.is_empty(v) for c, v in header_checks if c.required) + sum(e for e, _ in row_counts)
    n_invalid = sum(c.is_invalid(v) for c, v in header_checks) + sum(i for _, i in row_counts)
    _self_check(ws, spec, empty, invalid, summary_text(n_empty, n_invalid), fmt)
    ws.repeat_rows(hr)
    ws.freeze_panes(first, 0)
    _setup_page(ws, spec, range_name(1, 0, last, n_cols - 1))
    _protect(ws, password)
    lists.write(wb, password)
    _passport(wb, wb.add_worksheet(PASSPORT_SHEET), spec, prefill, password, fmt)


NAME_COL_PREFIX = "tj_col_"
INPUT_COLUMNS = ("done", "base", "progress", "problems")


@dataclass
class _RowInput:
    values: dict[str, object]
    marks: dict[str, str]


# Python mirrors of the row formulas, so that a 退回件's cached results equal what Excel computes.

def _blank(v) -> bool:
    return v is None or v == ""


def _num(v) -> float | None:
    """A cell as Excel's arithmetic sees it: numbers, dates as serials, TRUE as 1; None for text."""
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float, dt.date, dt.time)):
        return excel_number(v)
    return None


def _n(v) -> float:
    """Excel's N(): numbers and dates as numbers, anything else 0."""
    n = _num(v)
    return 0.0 if n is None or isinstance(v, str) else n


def _div(a, b):
    x, y = _num(a), _num(b)
    if x is None or y is None:
        return "#VALUE!"
    return x / y


def _ge(a, b, op: str) -> bool:
    """Excel's comparison: any text is greater than any number; text compares case-insensitively."""
    ta, tb = isinstance(a, str), isinstance(b, str)
    if ta != tb:
        return ta if op == ">=" else False
    if ta:
        a, b = a.casefold(), b.casefold()
    else:
        a, b = _num(a), _num(b)
    return a >= b if op == ">=" else a == b


def _rate(done, base_or_target):
    if _blank(done) or _blank(base_or_target) or _n(base_or_target) == 0:
        return ""
    return _div(done, base_or_target)


def _met(value, target, op: str):
    if isinstance(value, str) and value.startswith("#"):
        return value
    if _blank(value) or _blank(target):
        return ""
    return "达标" if _ge(value, target, op) else "未达标"


def _put(ws, r: int, c: int, value, style: str, fmt, bad: str | None) -> None:
    """An input cell: blank or the submitter's value, red with a comment when a 退回件 marks it."""
    f = fmt.bad(style) if bad else fmt[style]
    if value is None:
        ws.write_blank(r, c, None, f)
    else:
        ws.write(r, c, value, f)
    if bad:
        ws.write_comment(r, c, bad, {"author": "tuanjian", "x_scale": 2, "y_scale": 1.5})


def _task_row(ws, spec, r, task: Task, unit_type, type_cell, ci, helper_c, yes_no, started, applies, fmt,
              row: _RowInput) -> tuple[int, int]:
    """One task's row; returns (required cells empty, cells invalid) for the sheet's 自查 cached value."""
    ws.set_row(r, 40)
    vals, marks = row.values, row.marks
    target = task.target_for(unit_type)
    for col in spec.columns:
        if col.role != "task":
            continue
        c = ci[col.id]
        if col.source == "target":
            style = fmt["task_pct"] if task.kind == "ratio" else fmt["task_num"]
            if unit_type is None and task.type_targets:
                ws.write_formula(r, c, _target_formula(task, type_cell), style, "" if target is None else target)
            elif target is None:
                ws.write_blank(r, c, None, style)
            else:
                ws.write_number(r, c, target, style)
        elif col.source == "deadline":
            if task.deadline:
                ws.write_datetime(r, c, dt.datetime.combine(task.deadline, dt.time()), fmt["task_date"])
            else:
                ws.write_string(r, c, "长期", fmt["task_c"])
        elif col.source == "target_text":
            ws.write_string(r, c, task.target_text(unit_type), fmt["task_c"])
        elif col.source == "basis":
            ws.write_string(r, c, task.basis, fmt["task"])
        else:
            v = getattr(task, col.source)
            ws.write_string(r, c, str(v), fmt["task_c" if col.id in ("code", "department", "owner") else "task"])

    done, base = cell_name(r, ci["done"], True), cell_name(r, ci["base"], True)
    tgt, rate = cell_name(r, ci["target"], True), cell_name(r, ci["rate"], True)
    checks: list[Check] = []
    pair: NotAbove | None = None
    # inputs: 完成数/完成值, 基数, 进展情况, 存在问题
    if task.kind in ("ratio", "count"):
        _put(ws, r, ci["done"], vals.get("done"), "cell_in", fmt, marks.get("done"))
        kind = "number" if task.kind == "ratio" else "integer"
        checks.append(Check(done, kind, True))
        ws.data_validation(r, ci["done"], r, ci["done"], _num_dv("完成数", kind))
    elif task.kind == "yesno":
        _put(ws, r, ci["done"], vals.get("done"), "cell_in", fmt, marks.get("done"))
        checks.append(Check(done, "choice", True, yes_no, YES_NO))
        ws.data_validation(r, ci["done"], r, ci["done"], {"validate": "list", "source": "=" + yes_no,
                                                          "error_title": "完成值", "error_message": "请选择“是”或“否”。"})
    else:
        ws.write_string(r, ci["done"], "—", fmt["cell_off"])
    if task.kind == "ratio":
        _put(ws, r, ci["base"], vals.get("base"), "cell_in", fmt, marks.get("base"))
        checks.append(Check(base, "number", True))
        ws.data_validation(r, ci["base"], r, ci["base"], _num_dv("基数", "number"))
        pair = NotAbove(done, base)
    else:
        ws.write_string(r, ci["base"], "—", fmt["cell_off"])
    _put(ws, r, ci["progress"], vals.get("progress"), "cell_text", fmt, marks.get("progress"))
    _put(ws, r, ci["problems"], vals.get("problems"), "cell_text", fmt, marks.get("problems"))
    progress = cell_name(r, ci["progress"], True)
    if task.kind == "qualitative":
        checks.append(Check(progress, "long_text", True))

    # formulas: 完成率 and 是否达标 (blank while inputs are blank); cached values from the mirrors above
    d, b = vals.get("done"), vals.get("base")
    t = "" if target is None else target
    op = ">=" if task.comparison == ">=" else "="
    if task.kind == "ratio":
        rate_v = _rate(d, b)
        ws.write_formula(r, ci["rate"], f'=IF(OR({done}="",{base}=""),"",IF(N({base})=0,"",{done}/{base}))',
                         fmt["rate"], rate_v)
        value, value_v = rate, rate_v
    elif task.kind == "count":
        ws.write_formula(r, ci["rate"], f'=IF(OR({done}="",{tgt}=""),"",IF(N({tgt})=0,"",{done}/{tgt}))',
                         fmt["rate"], _rate(d, t))
        value, value_v = done, ("" if d is None else d)
    else:
        ws.write_string(r, ci["rate"], "—", fmt["cell_off"])
        value = value_v = None
    if value is not None:
        ws.write_formula(r, ci["met"], f'=IF(OR({value}="",{tgt}=""),"",IF({value}{op}{tgt},"达标","未达标"))',
                         fmt["met"], _met(value_v, t, op))
    elif task.kind == "yesno":
        met_v = "" if _blank(d) else ("达标" if _ge(d, "是", "=") else "未达标")
        ws.write_formula(r, ci["met"], f'=IF({done}="","",IF({done}="是","达标","未达标"))', fmt["met"], met_v)
    else:
        ws.write_string(r, ci["met"], "—", fmt["cell_off"])

    # this row's 自查: helper cells beside the table, and red marks on the cells themselves
    empty_terms = [c.empty_expr() if applies is None else f"AND({applies},{c.empty_expr()})"
                   for c in checks if c.required]
    invalid_terms = [c.invalid_expr() for c in checks if c.invalid_expr()]
    if pair:
        invalid_terms.append(pair.invalid_expr())
        ws.conditional_format(r, ci["done"], r, ci["done"], {"type": "formula", "criteria": "=" + pair.invalid_expr(),
                                                             "format": fmt["invalid_mark"]})
    by_cell = {done: d, base: b, progress: vals.get("progress")}
    n_empty = 0 if applies else sum(c.is_empty(by_cell[c.cell]) for c in checks if c.required)
    n_invalid = sum(c.is_invalid(by_cell[c.cell]) for c in checks) + (pair.is_invalid(d, b) if pair else 0)
    ws.write_formula(r, helper_c, "=" + count_expr(empty_terms), fmt["helper"], n_empty)
    ws.write_formula(r, helper_c + 1, "=" + count_expr(invalid_terms), fmt["helper"], n_invalid)
    for c in checks:
        _mark(ws, c.cell.replace("$", ""), c, started if applies is None else f"AND({started},{applies})", fmt)
    return n_empty, n_invalid


def _num_dv(label: str, kind: str) -> dict:
    whole = kind == "integer"
    return {"validate": "integer" if whole else "decimal", "criteria": ">=", "value": 0,
            "error_title": label, "error_message": f"“{label}”请填写不小于 0 的{'整数' if whole else '数'}。"}


# --- entry points -------------------------------------------------------------------------------------


def build_template(spec: FormSpec | TableSpec, roster: Roster, *, prefill: Prefill | None = None,
                   password: str = "", filled: list[Filled] | None = None,
                   first_sheet: Callable | None = None) -> bytes:
    """The .xlsx bytes of one form version: a blank template, a prefilled copy for one unit and period, or
    (with `filled`) a 退回件 carrying the submitter's values. `first_sheet(wb)` may add a sheet in front."""
    prefill = prefill or Prefill()
    buf = io.BytesIO()
    wb = new_workbook(buf, title=spec.display_name)
    fmt = _styles(wb)
    if first_sheet is not None:  # the workbook's first sheet is the one selected and shown: never the form too
        first_sheet(wb)
        prefill = replace(prefill, not_forms=tuple(w.name for w in wb.worksheets()))
    if isinstance(spec, TableSpec):
        _build_table(wb, spec, roster, prefill, password, fmt, filled or [])
    else:
        _build_form(wb, spec, roster, prefill, password, fmt, filled or [])
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
