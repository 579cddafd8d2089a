"""The table form (the target tracker): header fields, then one row per task of the unit's type with its locked
cells, its inputs and formulas as the task's kind asks (`fieldtypes.TASK_KINDS`, named by the spec's columns),
its 自查 state per input in hidden columns and the row's counts beside the table."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .. import formulas as F
from .. import passport
from ..cells import parse_range, range_name
from ..fieldtypes import FIELD_TYPES, NOT_ASKED, RETYPE, TASK_KINDS, WRONG
from ..roster import Roster, Task
from ..selfcheck import TO_FILL, state, summary_over
from ..specs import TableSpec
from .chrome import (Book, Lists, Shape, Sheet, checked, due_line, header_fields, layout, own_inputs, protect,
                     setup_page, state_column, write_passport)

ROW_COUNTS = ((TO_FILL, "本行待填"), (WRONG, "本行有误"), (RETYPE, "本行需改"))  # helper columns beside the table
FORMULA_STYLES = {"rate": "rate", "met": "met"}  # a tracker formula column's format, by its spec `formula`


def _target(task: Task, unit_type: str | None, type_cell: F.Expr) -> F.Expr | float | str | None:
    """目标值: the unit type's number, or in a blank tracker a formula following the chosen unit's type."""
    if unit_type is not None or not task.type_targets:
        return task.target_for(unit_type)
    expr: F.Expr | float | str = "" if task.target is None else task.target
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


def build_table(book: Book, spec: TableSpec, roster: Roster, shape: Shape, password: str) -> None:
    """The tracker: header fields, a row per task of the unit's type (all tasks in a blank one), _lists, _passport;
    a 退回件's values are its one record's."""
    sh = book.sheet(spec.sheet_name)
    fmt = sh.fmt
    lists = Lists(roster)
    yes_no = FIELD_TYPES["yes_no"]
    lists.add(yes_no.list_name, yes_no.zh, list(yes_no.choices))
    unit_type = shape.unit_type
    tasks = roster.tasks_for(unit_type)
    hr = spec.header_row - 1
    tab = _Table(spec, hr + 1, hr + max(len(tasks), 1), len(spec.columns) + len(ROW_COUNTS))
    for c, col in enumerate(spec.columns):
        sh.ws.set_column(c, c, col.width)
    sh.ws.set_column(tab.counts_c, tab.counts_c + len(ROW_COUNTS) - 1, 8)
    for k in range(max(len(tab.inputs), len(spec.fields))):
        state_column(sh, tab.state_c + k)
    layout(sh, spec)
    due_line(sh, spec, shape)

    filled_in = [tab.col(col.id) for col in tab.inputs]
    not_asked = [F.COUNTIF(r, NOT_ASKED) for r in filled_in]
    started = F.OR(F.cmp(F.COUNTA(*own_inputs(spec)), ">", 0),
                   F.cmp(F.COUNTA(*filled_in) - F.plus(*not_asked), ">", 0))
    header_fields(book, sh, spec, lists, shape, None, started, lambda k: (hr - 1, tab.state_c + k))

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
        _task_row(sh, tab, tab.first + i, task, unit_type, type_cell, lists, started, applies)
    for col in spec.columns:
        book.wb.define_name(passport.column_name(col.id),
                            F.rng(tab.first, tab.ci[col.id], tab.last, tab.ci[col.id], sheet=sh.name).formula())

    states = F.rng(hr - 1, tab.state_c, tab.last, tab.state_c + max(len(tab.inputs), len(spec.fields)) - 1)
    sh.formula_range(spec.layout.self_check, summary_over(states), fmt["self_check"])
    sh.ws.repeat_rows(hr)
    sh.ws.freeze_panes(tab.first, 0)
    setup_page(sh.ws, spec, range_name(1, 0, tab.last, len(spec.columns) - 1))
    protect(sh.ws, password)
    lists.write(book, password)
    write_passport(book, spec, shape, password)


def _task_cell(sh: Sheet, r: int, c: int, task: Task, source: str, unit_type: str | None, target) -> None:
    """A locked cell of the task itself (编号, 任务内容, 目标, 目标值…)."""
    fmt = sh.fmt
    if source == "target":
        style = fmt["task_pct"] if TASK_KINDS[task.kind].percent else fmt["task_num"]
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
              started: F.Expr, applies: F.Expr | None) -> None:
    """One task's row: its locked cells, its inputs as its kind asks for them, its formulas, and its 自查 (a
    state per input in the hidden columns, and the row's counts beside the table)."""
    sh.ws.set_row(r, 40)
    fmt = sh.fmt
    kind = TASK_KINDS[task.kind]
    cells: dict[str, F.Expr] = {col.id: F.ref(r, tab.ci[col.id], absolute=True) for col in tab.spec.columns}
    target = _target(task, unit_type, type_cell)
    for col in tab.spec.columns:
        c = tab.ci[col.id]
        if col.role == "task":
            assert col.source is not None  # specs.Column: a task column names its source
            _task_cell(sh, r, c, task, col.source, unit_type, target)
        elif col.role == "formula":
            assert col.formula is not None  # specs.Column: a formula column names its formula
            make = kind.formulas.get(col.formula)
            if make is None:
                sh.put(r, c, NOT_ASKED, fmt["cell_off"])
            else:
                sh.formula(r, c, make(cells, task.comparison), fmt[FORMULA_STYLES[col.formula]])
        else:
            _task_input(sh, tab, r, col, task, cells, lists, started, applies)
    block = F.rng(r, tab.state_c, r, tab.state_c + len(tab.inputs) - 1)
    for k, (which, _) in enumerate(ROW_COUNTS):
        sh.formula(r, tab.counts_c + k, F.COUNTIF(block, which), fmt["helper"])


def _task_input(sh: Sheet, tab: _Table, r: int, col, task: Task, cells: dict[str, F.Expr], lists: Lists,
                started: F.Expr, applies: F.Expr | None) -> None:
    """An input cell of a task's row, typed as the task's kind asks (NOT_ASKED where it asks for none)."""
    fmt = sh.fmt
    kind = TASK_KINDS[task.kind]
    c = tab.ci[col.id]
    field_type = kind.input_type(col)
    if field_type is None:
        sh.put(r, c, NOT_ASKED, fmt["cell_off"])
        return
    ftype = FIELD_TYPES[field_type]
    sh.input((r, c), 0, f"{task.code}:{col.id}", "cell_text" if ftype.classify is None else "cell_in")
    choices = lists.add(ftype.list_name, ftype.zh, list(ftype.choices)) if ftype.choices else None
    if ftype.validation.get("validate") != "any":
        sh.ws.data_validation(r, c, r, c, ftype.data_validation(col.label, source=choices))
    # in a blank tracker a row is required only once the chosen unit's type is one that reports it
    required: bool | F.Expr = col.id in kind.required and (applies if applies is not None else True)
    over = kind.over(cells) if kind.not_above and kind.pair and col.id == kind.pair[0] else None
    at = (r, tab.state_c + tab.inputs.index(col))
    checked(sh, at, (r, c, r, c), ftype,
            state(field_type, cells[col.id], required=required, choices=choices, wrong_also=over),
            started if applies is None else F.AND(started, applies), required)
