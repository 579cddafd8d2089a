"""One-record forms (走基层报告单, 观摩报告单…): the printed form, one sheet per record (copies named as Excel
names a copied sheet), each field's state in a hidden column right of the form, and one 自查 line."""

from __future__ import annotations

from .. import formulas as F
from ..cells import parse_range
from ..roster import Roster
from ..selfcheck import summary_over
from ..specs import FormSpec
from .chrome import (Book, Lists, Shape, due_line, header_fields, layout, own_inputs, protect, setup_page,
                     state_column, write_passport)


def sheet_names(spec, n: int) -> list[str]:
    """The form sheet and its copies, named as Excel names a copied sheet: 走基层报告单 (2)…"""
    return [spec.sheet_name] + [f"{spec.sheet_name} ({i})" for i in range(2, n + 1)]


def build_form(book: Book, spec: FormSpec, roster: Roster, shape: Shape, password: str, records: int) -> None:
    """A one-record form: a sheet per record of a 退回件 (one in a blank or distributed copy), then _lists and
    _passport."""
    lists = Lists(roster)
    # FormSpec's validator requires both for a one-record form
    assert spec.layout.table is not None and spec.layout.print_area is not None
    state_c = len(spec.layout.columns) + 1  # a hidden column, one row per field, right of the printed form
    for i, name in enumerate(sheet_names(spec, max(records, 1))):
        sh = book.sheet(name)
        layout(sh, spec)
        due_line(sh, spec, shape)
        state_column(sh, state_c)
        started = F.cmp(F.COUNTA(*own_inputs(spec)), ">", 0)
        header_fields(book, sh, spec, lists, shape, parse_range(spec.layout.table), started,
                      lambda k: (1 + k, state_c), i, local=i > 0)
        states = F.rng(1, state_c, len(spec.fields), state_c)
        sh.formula_range(spec.layout.self_check, summary_over(states), sh.fmt["self_check"])
        setup_page(sh.ws, spec, spec.layout.print_area)
        protect(sh.ws, password)
    lists.write(book, password)
    write_passport(book, spec, shape, password)
