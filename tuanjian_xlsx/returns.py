"""退回件: the submitter's own values in the current template, bad cells red with a comment saying why,
a first sheet 问题清单, and a short message ready to paste into WeChat or an e-mail."""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .build import Filled, Prefill, build_template, sheet_names
from .plan import Plan
from .fieldtypes import FIELD_TYPES, NOT_ABOVE_EXPECTED, TASK_KINDS
from .filenames import safe_filename
from .issues import STAFF_ONLY, Issue
from .passport import PROBLEM_COLUMNS, PROBLEM_SHEET
from .periods import parse_period
from .specs import FormSpec, TableSpec
from .validate import FileResult
from .xlsxio import atomic_write


@dataclass
class ReturnPiece:
    """One 退回件: the workbook (None when the form could not be recognised) and the message."""

    source: str
    workbook: Path | None
    message: Path


def _expected(spec, field_id: str | None, code: str, ws: Plan) -> str:
    """What the cell wants, in the words of its field type."""
    if code in ("required-value",):
        return "必须填写"
    if spec is None or field_id is None:
        return ""
    field_type, tail = _field_type(spec, field_id, ws), ""
    if isinstance(spec, TableSpec) and ":" in field_id:
        code, col = field_id.split(":")
        kind = TASK_KINDS[_task(ws, code).kind] if _task(ws, code) else None
        tail = NOT_ABOVE_EXPECTED if kind and kind.not_above and kind.pair and col == kind.pair[1] else ""
    elif field_type == "choice":
        f = spec.field(field_id)
        return "从下拉列表选择" + ("：" + "、".join(f.choices) if f.choices else "本单位名称")
    return FIELD_TYPES[field_type].expected + tail if field_type else ""


def _task(ws: Plan, code: str):
    return next((t for t in ws.roster.tasks if t.code == code), None)


def _field_type(spec, key: str, ws: Plan) -> str | None:
    """The field type of a form field, or of a tracker cell ('code:column') in its task's row."""
    if isinstance(spec, TableSpec) and ":" in key:
        code, col = key.split(":")
        task = _task(ws, code)
        return TASK_KINDS[task.kind].input_type(spec.column(col)) if task else None
    return spec.field(key).type


def _locate(result: FileResult, spec, issue: Issue) -> tuple[int, str] | None:
    """(record index, field key) of an issue's cell, if it points into a record."""
    if issue.cell is None:
        return None
    if isinstance(spec, TableSpec) and result.header and issue.sheet == result.header["sheet"]:
        for key, cell in result.header["cells"].items():
            if cell == issue.cell:
                return -1, key  # a tracker header field (填表时间…)
    for i, rec in enumerate(result.records):
        if rec.sheet != issue.sheet:
            continue
        for key, cell in rec.cells.items():
            if cell == issue.cell:
                if isinstance(spec, TableSpec):
                    return i, f"{rec.values['code']}:{key}"
                return i, key
    return None


def _fills(result: FileResult, spec, ws: Plan) -> tuple[list[Filled], dict[tuple[int, str], list[Issue]]]:
    """Per record: the values to write (normalised where they were fine, as typed where not) and the marks."""
    bad: dict[tuple[int, str], list[Issue]] = {}
    for issue in result.issues:
        where = _locate(result, spec, issue)
        if where is not None:
            bad.setdefault(where, []).append(issue)
    wrong = {k for k, issues in bad.items() if any(i.severity == "error" for i in issues)}
    if isinstance(spec, TableSpec):
        values: dict[str, object] = {}
        marks: dict[str, str] = {}
        head = result.header or {"values": {}, "raw": {}}
        for fid in head["values"]:
            values[fid] = _value(head["values"].get(fid), head["raw"].get(fid), (-1, fid) in wrong,
                                 spec.field(fid).type)
            if (-1, fid) in wrong:
                marks[fid] = _why(bad[(-1, fid)])
        for i, rec in enumerate(result.records):
            code = rec.values["code"]
            for col in _input_columns(spec):
                key = f"{code}:{col}"
                values[key] = _value(rec.values.get(col), rec.raw.get(col), (i, key) in wrong,
                                     _field_type(spec, key, ws))
                if (i, key) in wrong:
                    marks[key] = _why(bad[(i, key)])
        return [Filled(values, marks)], bad
    filled = []
    for i, rec in enumerate(result.records):
        values = {fid: _value(rec.values.get(fid), rec.raw.get(fid), (i, fid) in wrong, spec.field(fid).type)
                  for fid in rec.cells}
        marks = {fid: _why(bad[(i, fid)]) for fid in rec.cells if (i, fid) in wrong}
        filled.append(Filled(values, marks))
    return filled, bad


def _input_columns(spec: TableSpec) -> list[str]:
    return [c.id for c in spec.columns if c.role == "input"]


def _value(normalised, raw, flagged: bool, field_type: str | None = None):
    """What goes back into the cell: the value read where it was fine, else what was typed — as text where the
    cell would show a number otherwise (2.5 where a whole number belongs, a date serial out of range)."""
    if flagged or normalised is None:
        if raw in ("", None):
            return None
        return f"{raw:.15g}" if field_type and FIELD_TYPES[field_type].shown_as_typed(raw) else raw
    if isinstance(normalised, dt.date) and not isinstance(normalised, dt.datetime):
        return dt.datetime.combine(normalised, dt.time())
    return normalised


def _why(issues: list[Issue]) -> str:
    return "\n".join(i.message for i in issues if i.severity == "error")


@dataclass(frozen=True)
class ProblemRow:
    """One line of 问题清单, its severity kept as data (never read back from the wording)."""

    sheet: str | None
    cell: str | None
    field: str | None
    raw: str
    message: str
    expected: str
    severity: str

    def cells(self) -> tuple:
        """As 问题清单 shows it (PROBLEM_COLUMNS): a warning is marked 提醒."""
        shown = self.message if self.severity == "error" else "提醒：" + self.message
        return self.sheet, self.cell, self.field, self.raw, shown, self.expected


def _problem_sheet(rows: list[ProblemRow]):
    def add(wb):
        ws = wb.add_worksheet(PROBLEM_SHEET)
        head = wb.add_format({"bold": True, "bg_color": "#FFC7CE", "border": 1, "font_name": "仿宋", "align": "center"})
        cell = wb.add_format({"border": 1, "text_wrap": True, "valign": "top", "font_name": "仿宋"})
        for c, (title, width) in enumerate(zip(PROBLEM_COLUMNS, (16, 8, 22, 20, 50, 28))):
            ws.set_column(c, c, width)
            ws.write_string(0, c, title, head)
        for r, row in enumerate(rows, start=1):
            for c, v in enumerate(row.cells()):
                ws.write_string(r, c, "" if v is None else str(v), cell)
        ws.freeze_panes(1, 0)
        ws.set_paper(9)
        ws.set_landscape()
        ws.fit_to_pages(1, 0)
        ws.repeat_rows(0)
        ws.activate()

    return add


def build_return(result: FileResult, ws: Plan, stem: str | None = None) -> tuple[bytes | None, list[ProblemRow], str]:
    """The 退回件 workbook bytes (None if the form is unknown), its 问题清单 rows, and the message text."""
    stem = stem or return_stem(result, ws)
    data, rows, spec = prepare_return(result, ws)
    return data, rows, _message(result, ws, spec, rows, stem)


def prepare_return(result: FileResult, ws: Plan) -> tuple[bytes | None, list[ProblemRow], object]:
    """The part of a 退回件 that does not depend on its file name: the workbook and its 问题清单."""
    spec = None
    if result.form_id in ws.settings.forms and result.form_id in ws.registry.form_ids:
        spec = ws.registry.get(result.form_id, ws.settings.forms[result.form_id].current_version)
    data = None
    rows: list[ProblemRow] = []
    if spec is not None and result.records:
        unit = ws.roster.unit_by_name(result.unit) if result.unit else None
        period = parse_period(result.period) if result.period else None
        header_wrong = any(i.severity == "error" and i.field in ("报送单位", "报送期") for i in result.issues)
        fixed = unit is not None and period is not None and not header_wrong
        filled, bad = _fills(result, spec, ws)
        new_sheets = sheet_names(spec, len(result.records)) if isinstance(spec, FormSpec) else [spec.sheet_name]
        cells = (_tracker_cells(spec, ws, unit.type if fixed and unit is not None else None)
                 if isinstance(spec, TableSpec) else {})
        where = {id(i): k for k, issues in bad.items() for i in issues}
        # a record's sheet as the 退回件 names it (a one-record form's sheets are named anew, in order)
        renamed = ({rec.sheet: new for rec, new in zip(result.records, new_sheets)} if isinstance(spec, FormSpec)
                   else {})
        # … and as the unit knows it from its own file, when that differs ("第二次" copied for a second visit)
        shown = {old: new if new == old else f"{new}（原“{old}”）" for old, new in renamed.items()}
        originally = {new: shown[old] for old, new in renamed.items()}
        for issue in result.issues:
            if issue.code in STAFF_ONLY:  # (how it came, what staff may run: not the unit's to read)
                continue
            k = where.get(id(issue))
            sheet, cell = shown.get(issue.sheet or "", issue.sheet), issue.cell
            raw: object = ""
            if k is not None:
                rec_i, key = k
                sheet = new_sheets[max(rec_i, 0) if isinstance(spec, FormSpec) else 0]
                sheet = originally.get(sheet, sheet)
                col = key.split(":")[-1]
                if rec_i < 0:  # a tracker header field: _locate finds those only in a result with a header
                    assert result.header is not None
                    raw = result.header["raw"].get(col)
                else:
                    raw = result.records[rec_i].raw.get(col)
                cell = cells.get(key) or _new_cell(spec, key) or cell
            rows.append(ProblemRow(sheet, cell, issue.field, _show(raw), issue.message,
                                   _expected(spec, k[1] if k else None, issue.code, ws), issue.severity))
        rows += _added_since(result, spec, ws, filled, [originally.get(n, n) for n in new_sheets])
        # a unit or period in question is not locked in: the submitter must be able to correct it
        due = ws.roster.due(unit, spec.form_id, period)
        prefill = Prefill(unit, period.code, period.label, due) if fixed and period is not None else Prefill()
        # stored, not compressed: made by the hundred in a merge, each a few tens of KB (see xlsxio.StoredBuffer)
        data = build_template(spec, ws.roster, prefill=prefill, password=ws.settings.protection.password,
                              filled=filled, first_sheet=_problem_sheet(rows), compress=False)
    else:
        rows = [ProblemRow(i.sheet, i.cell, i.field, "", i.message, "", i.severity) for i in result.issues
                if i.code not in STAFF_ONLY]
    return data, rows, spec


def _added_since(result: FileResult, spec, ws: Plan, filled: list[Filled], sheets: list[str]) -> list[ProblemRow]:
    """A file of an older version comes back on the current template: the required fields that version added
    are asked for too, marked in each record's sheet (else the unit corrects what it was told and is refused
    again for what it was never told)."""
    if not isinstance(spec, FormSpec) or result.version is None or result.version >= spec.version:
        return []
    try:
        old = {f.id for f in ws.registry.get(spec.form_id, result.version).fields}
    except KeyError:
        return []
    added = [f for f in spec.fields if f.id not in old and f.required and not f.header]
    rows = []
    for fill, sheet in zip(filled, sheets):
        for f in added:
            if fill.values.get(f.id) in (None, ""):
                why = f"第 {spec.version} 版新增的必填项，请填写"
                fill.marks[f.id] = why
                rows.append(ProblemRow(sheet, f.input_cell, f.label, "", f"“{f.label}”是{why}",
                                       _expected(spec, f.id, "required-value", ws), "error"))
    return rows


def _new_cell(spec, key: str) -> str | None:
    """Where a field stands in the current template."""
    try:
        return spec.field(key).input_cell
    except KeyError:
        return None


def _tracker_cells(spec: TableSpec, ws: Plan, unit_type: str | None) -> dict[str, str]:
    """'code:column' -> cell in the rebuilt tracker, whose rows are that unit type's tasks (all, if unknown)."""
    from .cells import cell_name

    out = {}
    for i, task in enumerate(ws.roster.tasks_for(unit_type)):
        for col in _input_columns(spec):
            out[f"{task.code}:{col}"] = cell_name(spec.header_row + i, spec.col_index(col))
    return out


def _show(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, dt.datetime):
        return v.date().isoformat()
    return str(v)


def return_stem(result: FileResult, ws: Plan) -> str:
    if result.unit and result.period and result.form_id in ws.registry.form_ids:
        spec = ws.registry.get(result.form_id)
        return safe_filename(f"{result.unit}_{result.period}_{spec.file_stem}_退回")
    return safe_filename(f"{Path(result.file).stem}_退回")


def _message(result: FileResult, ws: Plan, spec, rows: list[ProblemRow], stem: str) -> str:
    from .mailtext import render_or_default

    return render_or_default(ws, "return", message_values(result, ws, spec, rows, stem)).body + "\n"


def message_values(result: FileResult, ws: Plan, spec, rows: list[ProblemRow], stem: str) -> dict[str, str]:
    """What the 退回 text says (the placeholders of mailtext's "return" template), for the .txt beside the 退回件
    and the mail that takes it back."""
    from .mailtext import common_values

    errors = [r for r in rows if r.severity == "error"]
    period = parse_period(result.period) if result.period else None
    problems = []
    for n, r in enumerate(errors, start=1):
        place = " ".join(str(x) for x in (r.sheet, r.cell) if x)
        problems.append(f"{n}. {place + ' ' if place else ''}{r.message}")
    if spec is not None and result.records:
        how = f"请打开附件《{stem}.xlsx》，按红色单元格的批注修改后重新报送。"
    else:
        how = "请使用下发的模板重新填写后报送。"
    unit = ws.roster.unit_by_name(result.unit) if result.unit else None
    due = ws.roster.due(unit, spec.form_id, period) if spec else None
    return {**common_values(ws), "单位": result.unit or "报送单位", "报表": spec.display_name if spec else "报表",
            "报送期": period.label if period else "报送期不明", "文件": Path(result.file).name,
            "收到时间": result.received.isoformat() if result.received else "", "截止日期": due.isoformat() if due else "见下发通知", "问题数": str(len(errors)),
            "问题清单": "\n".join(problems), "修改办法": how}


def _plain_message(result: FileResult) -> str:
    lines = [f"文件 {Path(result.file).name} 有以下问题（未能生成退回件表格，请对照以下说明修改原表）："]
    lines += [f"{n}. {i.render()}" for n, i in enumerate(result.issues, start=1) if i.severity == "error"]
    return "\n".join(lines) + "\n"


def write_returns(results: Iterable[FileResult], ws: Plan, out_dir: Path) -> list[ReturnPiece]:
    """For every file with errors: its 退回件 (.xlsx) and message (.txt) in out_dir; originals untouched (see
    next_stem and write_return)."""
    used: set[str] = set()
    return [write_return(r, ws, out_dir, next_stem(r, ws, out_dir, used)) for r in results if not r.valid]


def next_stem(result: FileResult, ws: Plan, out_dir: Path, used: set[str]) -> str:
    """The name of a file's 退回件 and message, without suffix. A later 退回件 for the same unit and period never
    replaces an earlier one, on disk or in `used` (the names given so far, as name_key makes them; the new one is
    added): it gets the next number (_2, _3, …)."""
    stem = base = return_stem(result, ws)
    n = 2
    while name_key(stem) in used or (Path(out_dir) / f"{stem}.xlsx").exists() or (Path(out_dir) / f"{stem}.txt").exists():
        stem, n = f"{base}_{n}", n + 1
    used.add(name_key(stem))
    return stem


def name_key(stem: str) -> str:
    """A name as Windows and macOS folders compare names: without case, and in one Unicode form (so that two names
    given before either is on disk can never be one file there)."""
    return unicodedata.normalize("NFC", stem).casefold()


def write_return(result: FileResult, ws: Plan, out_dir: Path, stem: str, whole: bool = True) -> ReturnPiece:
    """One file's 退回件 and message written as `stem` in out_dir; only the message when not `whole` (making the
    workbook went wrong before). A 退回件 that cannot be made must not stop the others: its message still goes
    out."""
    data = None
    try:
        if whole:
            data, _, text = build_return(result, ws, stem)
        else:
            text = _plain_message(result)
    except Exception:
        data = None
        text = _plain_message(result)
    book = atomic_write(Path(out_dir) / f"{stem}.xlsx", data) if data is not None else None
    msg = atomic_write(Path(out_dir) / f"{stem}.txt", text.encode("utf-8-sig"))
    return ReturnPiece(result.file, book, msg)
