"""Spec -> .xlsx with XlsxWriter: the printed form's look, dropdowns, protection, 自查, names and passport.

Every cell the builder writes also goes into a `formulas.Grid`; every formula is a `formulas` expression written
once all cells are known, with the value it computes over that grid as its cached result — so a distributed copy,
a blank template and a 退回件 (with the submitter's own values, typed text and chosen unit) all open showing what
Excel, WPS and LibreOffice will compute. What an input accepts and how 自查 judges it come from `fieldtypes`; the
names and hidden sheets a reader finds come from `passport`.

  chrome   what every sheet shares: Prefill/Filled, formats, Book/Sheet (cell + grid), page setup, protection,
           the hidden _lists and _passport sheets, header fields and their 自查
  forms    one-record forms, a sheet per record
  tracker  the table form: a row per task, as its kind asks
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from ..plan import Workspace
from ..roster import Roster
from ..specs import FormSpec, TableSpec
from ..xlsxio import atomic_write, close_workbook, new_workbook
from .chrome import Book, Filled, Prefill, styles
from .forms import build_form, sheet_names
from .tracker import build_table

__all__ = ["Filled", "Prefill", "build_template", "build_templates", "sheet_names", "template_filename"]


def build_template(spec: FormSpec | TableSpec, roster: Roster, *, prefill: Prefill | None = None,
                   password: str = "", filled: list[Filled] | None = None,
                   first_sheet: Callable | None = None) -> bytes:
    """The .xlsx bytes of one form version: a blank template, a prefilled copy for one unit and period, or
    (with `filled`) a 退回件 carrying the submitter's values. `first_sheet(wb)` may add a sheet in front."""
    prefill = prefill or Prefill()
    buf = io.BytesIO()
    wb = new_workbook(buf, title=spec.display_name)
    book = Book(wb, styles(wb))
    if first_sheet is not None:  # the workbook's first sheet is the one selected and shown: never the form too
        first_sheet(wb)
        prefill = replace(prefill, not_forms=tuple(w.name for w in wb.worksheets()))
    if isinstance(spec, TableSpec):
        build_table(book, spec, roster, prefill, password, filled or [])
    else:
        build_form(book, spec, roster, prefill, password, filled or [])
    book.finish()
    return close_workbook(wb, buf)


def template_filename(spec) -> str:
    """The file name a blank template is written under, e.g. 附件1_团干部走基层情况报告单_v1.xlsx."""
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
