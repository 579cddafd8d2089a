"""Spec -> .xlsx with XlsxWriter: the printed form's look, dropdowns, protection, 自查, names and passport.

Every cell the builder writes also goes into a `formulas.Grid`; every formula is a `formulas` expression written
once all cells are known, with the value it computes over that grid as its cached result — so a distributed copy,
a blank template and a 退回件 (with the submitter's own values, typed text and chosen unit) all open showing what
Excel, WPS and LibreOffice will compute. What an input accepts and how 自查 judges it come from `fieldtypes`; the
names and hidden sheets a reader finds come from `passport`.

  chrome   what every sheet shares: Prefill/Filled, formats, Book/Sheet (cell + grid) and the Program they record,
           page setup, protection, the hidden _lists and _passport sheets, header fields and their 自查
  forms    one-record forms, a sheet per record
  tracker  the table form: a row per task, as its kind asks
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from ..plan import Workspace
from ..roster import Roster
from ..specs import FormSpec, TableSpec
from ..xlsxio import StoredBuffer, atomic_write, close_workbook, new_workbook
from .chrome import Book, Filled, Prefill, Program, Shape
from .forms import build_form, sheet_names
from .tracker import build_table

__all__ = ["Filled", "Prefill", "build_template", "build_templates", "sheet_names", "template_filename"]


def build_template(spec: FormSpec | TableSpec, roster: Roster, *, prefill: Prefill | None = None,
                   password: str = "", filled: list[Filled] | None = None,
                   first_sheet: Callable | None = None, compress: bool = True) -> bytes:
    """The .xlsx bytes of one form version: a blank template, a prefilled copy for one unit and period, or
    (with `filled`) a 退回件 carrying the submitter's values. `first_sheet(wb)` may add a sheet in front;
    `compress=False` stores the package's parts as they are (see xlsxio.StoredBuffer)."""
    prefill = prefill or Prefill()
    buf = io.BytesIO() if compress else StoredBuffer()
    wb = new_workbook(buf, title=spec.display_name)
    if first_sheet is not None:  # the workbook's first sheet is the one selected and shown: never the form too
        first_sheet(wb)
        prefill = replace(prefill, not_forms=tuple(w.name for w in wb.worksheets()))
    made = program(spec, roster, prefill.shape(), password, len(filled or ()))
    sheets = made.write(wb, prefill.values(), filled or [])
    data = close_workbook(wb, buf)
    made.keep(sheets)
    return data


_PROGRAMS: OrderedDict[tuple, Program] = OrderedDict()
_KEPT = 24  # programs kept per process: a form's shapes (blank, distributed, 退回件 of 1–3 records) for a few forms
_LOCK = threading.Lock()


def _forked() -> None:  # a worker forked while another thread held the lock must not inherit it held
    global _LOCK
    _LOCK = threading.Lock()
    _PROGRAMS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


def program(spec: FormSpec | TableSpec, roster: Roster, shape: Shape, password: str, records: int) -> Program:
    """The recorded build of a form version for copies of one shape (with a sheet per record of a one-record form),
    made once per process and kept while it is used; keyed by what the spec and the roster hold (their content, not
    the objects: a roster changed in place is another roster). A one-record form does not depend on the unit's type,
    nor a tracker on the number of records."""
    if isinstance(spec, TableSpec):
        records = 1
    else:
        shape = replace(shape, unit_type=None)
    key = (spec.digest, hashlib.sha256(roster.model_dump_json().encode()).digest(), shape, password, max(records, 1))
    with _LOCK:
        kept = _PROGRAMS.get(key)
        if kept is not None:
            _PROGRAMS.move_to_end(key)
            return kept
    book = Book()
    if isinstance(spec, TableSpec):
        build_table(book, spec, roster, shape, password)
    else:
        build_form(book, spec, roster, shape, password, records)
    made = book.finish()
    with _LOCK:
        _PROGRAMS[key] = made
        while len(_PROGRAMS) > _KEPT:
            _PROGRAMS.popitem(last=False)
    return made


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
