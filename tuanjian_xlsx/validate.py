"""Validation: a submitted workbook -> records + issues. Never raises on bad data; every problem is an Issue."""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
from dataclasses import dataclass, field
from typing import Any
from pathlib import Path
from collections.abc import Iterator

from pydantic import BaseModel, create_model

from .plan import Plan
from .roster import Roster, Task, Unit, city_of
from .fieldtypes import FIELD_TYPES, NOT_ASKED, TASK_KINDS
from .filenames import display_name
from .issues import Issue
from .normalise import Place, as_text, fold, is_blank
from .periods import Period, in_visit_week
from .read import FieldValue, FormulaError, Package, SheetForm, open_package, read_forms
from .specs import FormSpec, TableSpec

_KIND_OF_CADENCE = {"monthly": ("month", "月份", "2026-03"), "quarterly": ("quarter", "季度", "2026-Q1"),
                    "yearly": ("year", "年度", "2026")}


@dataclass
class Record:
    """One filled form (or one tracker row), typed by the version's record model."""

    sheet: str
    values: dict[str, object]
    cells: dict[str, str]
    raw: dict[str, object]


@dataclass
class FileResult:
    path: Path
    file: str
    sha256: str = ""
    form_id: str | None = None
    version: int | None = None
    unit: str | None = None
    unit_id: str | None = None
    period: str | None = None
    records: list[Record] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    header: dict | None = None  # a tracker's header fields as read (values, cells, raw, sheet)
    received: dt.date | None = None  # the day it arrived, when known
    partial: bool = False  # its records were let go (merge.KEEP_WHOLE): what was wrong is all it still says

    @property
    def valid(self) -> bool:
        return not any(i.severity == "error" for i in self.issues)

    def to_dict(self) -> dict:
        return {
            "file": str(self.path), "sha256": self.sha256 or None, "form_id": self.form_id, "version": self.version,
            "unit": self.unit, "period": self.period, "records": len(self.records), "valid": self.valid,
            "issues": [{k: getattr(i, k) for k in ("code", "severity", "sheet", "cell", "field", "message", "note")}
                       for i in self.issues],
        }


_MODELS: dict[tuple[str, int, str], type[BaseModel]] = {}


def record_model(spec: FormSpec | TableSpec) -> type[BaseModel]:
    """The pydantic model of one record of this form version, derived from the spec (made once)."""
    key = (spec.form_id, spec.version, spec.fingerprint)
    if key not in _MODELS:
        _MODELS[key] = _make_model(spec)
    return _MODELS[key]


def _make_model(spec: FormSpec | TableSpec) -> type[BaseModel]:
    fields: dict[str, Any]  # field name -> (type, default), as create_model takes them
    if isinstance(spec, TableSpec):
        fields = {c.id: (object, None) for c in spec.columns if c.role == "input"} | {"code": (str, ...)}
    else:
        fields = {f.id: (FIELD_TYPES[f.type].python | None, None) for f in spec.fields}
    return create_model(f"{spec.form_id}_v{spec.version}", **fields)


def validate_file(path: Path, workspace: Plan, *, data: bytes | None = None, display: str | None = None,
                  received: dt.date | None = None, sha256: str | None = None) -> FileResult:
    """Read and check one submission. Whatever the file holds, this returns a result and never raises.
    `received` is the day it arrived: an old template version is judged by it (not by the day of the run);
    without it, a version's last accepted day is not applied. `sha256`, when the caller has already hashed `data`,
    spares hashing it again."""
    path = path if isinstance(path, Path) else Path(path)
    result = FileResult(path=path, file=display_name(display or path.name), received=received)
    try:
        _validate(result, workspace, data, sha256)
    except MemoryError:  # under the worker's memory cap (see isolation.py)
        result.issues.append(Issue.make("reader-crashed", file=result.file, reason="读取时内存不足（文件可能含异常内容）"))
    except Exception:  # a bug must not stop the batch; say so plainly with the file's name
        result.issues.append(Issue.make("file-unreadable", file=result.file,
                                        detail="读取时出现意外错误，请将此文件转交技术人员"))
    return result


def _validate(result: FileResult, ws: Plan, data: bytes | None, sha256: str | None = None) -> None:
    pkg = open_package(result.path, data)
    pkg.file = result.file
    for i, issue in enumerate(pkg.issues):
        pkg.issues[i] = _renamed(issue, result.file)
    if not pkg.data:
        result.sha256 = ""
    else:
        result.sha256 = sha256 if sha256 is not None and pkg.data is data else hashlib.sha256(pkg.data).hexdigest()
    if not pkg.ok:
        result.issues += pkg.issues
        return
    passport = pkg.passport()
    spec, forms = _identify(pkg, passport, ws, result)
    if spec is None:
        result.issues += pkg.issues  # a sheet that could not be read may be why no form was found
        return
    result.form_id, result.version = spec.form_id, spec.version
    for form in forms:
        result.issues += form.issues
    _check_version(spec, passport, ws, result)
    if isinstance(spec, TableSpec):
        _check_table(spec, forms, passport, ws, result)
    else:
        _check_forms(spec, forms, passport, ws, result)
    result.issues += pkg.issues  # sheets that could not be read


def _renamed(issue: Issue, file: str) -> Issue:
    from dataclasses import replace

    return replace(issue, file=file)


# --- which form, which version -------------------------------------------------------------------------


def _identify(pkg: Package, passport: dict, ws: Plan, result: FileResult):
    at: Place = {"file": result.file}
    form_id = passport.get("form_id") or ""
    registry = ws.registry

    def name(f: str) -> str:
        return registry.get(f).display_name

    def names() -> list[str]:  # only where a file is refused: the happy path never sorts the forms
        return [name(f) for f in registry.form_ids]

    if form_id and not any(f == form_id for f, _ in registry.specs):
        result.issues.append(Issue.make("unknown-form", value=form_id, known=registry.form_ids, **at))
        return None, []
    if form_id:
        version = _int(passport.get("version"))
        versions = registry.versions(form_id)
        if version is None or version not in versions:
            latest = versions[-1]
            if version is not None and version > latest:
                result.issues.append(Issue.make("newer-version", form=name(form_id), version=version, latest=latest, **at))
            else:
                result.issues.append(Issue.make("unknown-version", form=name(form_id), version=passport.get("version"), **at))
            result.form_id, result.version = form_id, version
            return None, []
        spec = registry.get(form_id, version)
        forms = read_forms(pkg, spec)
        if forms:
            return spec, forms
        other = _sniff(pkg, ws)
        if other:
            result.issues.append(Issue.make("passport-other-form", claimed=name(form_id),
                                            actual=other[0].display_name, **at))
        else:
            result.issues.append(Issue.make("not-a-form", known=names(), **at))
        return None, []
    found = _sniff(pkg, ws)
    if not found:
        result.issues.append(Issue.make("not-a-form", known=names(), **at))
        return None, []
    result.issues.append(Issue.make("no-passport", form=found[0].display_name, **at))
    return found


def _sniff(pkg: Package, ws: Plan):
    """A workbook without passport: the current version of whichever form its labels read as."""
    for form_id in ws.registry.form_ids:
        use = ws.settings.forms.get(form_id)
        spec = ws.registry.get(form_id, use.current_version if use else None)
        forms = read_forms(pkg, spec)
        if forms:
            return spec, forms
    return None


MAX_VERSION = 9999  # a form's version number: a larger one in a passport is no version (and no SQLite integer)


def _int(v) -> int | None:
    try:
        f = float(v)
        return int(f) if f.is_integer() and abs(f) <= MAX_VERSION else None
    except (TypeError, ValueError):
        return None


def _check_version(spec, passport: dict, ws: Plan, result: FileResult) -> None:
    at: Place = {"file": result.file}
    use = ws.settings.forms.get(spec.form_id)
    if use is None or not use.enabled:
        result.issues.append(Issue.make("form-disabled", form=spec.display_name, **at))
    elif spec.version not in use.accepted_versions:
        result.issues.append(Issue.make("version-not-accepted", form=spec.display_name, version=spec.version,
                                        current=use.current_version, **at))
    elif spec.version != use.current_version:
        until = use.accepted_until.get(spec.version)
        if until is not None and result.received is not None and result.received > until:
            current = ws.registry.get(spec.form_id, use.current_version)
            sent = ws.distributed_on(spec.form_id, use.current_version)
            result.issues.append(Issue.make(
                "version-expired", form=spec.display_name, version=spec.version, until=until.isoformat(),
                current=use.current_version, template=f"{current.file_stem}_v{current.version}.xlsx",
                since=f"（{sent} 起下发）" if sent else "", **at))
        else:
            result.issues.append(Issue.make("old-version", form=spec.display_name, version=spec.version,
                                            current=use.current_version, **at))
    fp = passport.get("fingerprint")
    if fp and fp != spec.fingerprint:
        result.issues.append(Issue.make("fingerprint-mismatch", form=spec.display_name, version=spec.version, **at))


# --- header: unit and period ------------------------------------------------------------------------------


@dataclass
class Header:
    unit: Unit | None
    period: Period | None
    due: dt.date | None


def _place(result: FileResult, fv: FieldValue | None, label: str, sheet: str) -> Place:
    return {"file": result.file, "sheet": fv.sheet if fv else sheet, "cell": fv.cell if fv else None, "field": label}


def _header(spec, form: SheetForm, passport: dict, ws: Plan, result: FileResult) -> Header:
    roster: Roster = ws.roster
    uf, pf = spec.field("unit"), spec.field("period")
    u_val, p_val = form.values.get("unit"), form.values.get("period")
    u_at, p_at = _place(result, u_val, uf.label, form.sheet), _place(result, p_val, pf.label, form.sheet)
    unit = None
    name, issues = FIELD_TYPES[uf.type].normaliser(choices=[u.name for u in roster.units])(
        u_val.value if u_val else None, u_at)
    passport_unit = passport.get("unit") or ""
    if name is None and not issues and passport_unit:
        name = passport_unit  # a distributed copy whose unit cell was cleared
    if issues and issues[0].code == "not-in-choices":  # say it in roster terms, not as a dropdown
        assert u_val is not None  # a blank unit cell is never "not-in-choices"
        typed = str(u_val.value).strip()
        called = roster.unit_called(typed, city_of(ws.settings.organisation.name))  # official, short, 别名…
        if called is not None:
            name, issues = called.name, [Issue.make("normalised-unit", value=called.name, raw=typed, **u_at)]
        else:
            near = _nearest(typed, [u.name for u in roster.units])
            issues = [Issue.make("unknown-unit", value=typed, **u_at)] if near is None else [
                Issue.make("unknown-unit-near", value=typed, near=near, **u_at)]
    result.issues += issues
    if name is None and not issues:
        result.issues.append(Issue.make("required-value", **u_at))
    if name is not None:
        unit = roster.unit_by_name(name)
        if passport_unit and passport_unit != name:
            result.issues.append(Issue.make("passport-mismatch", value=name, expected=passport_unit, **u_at))
    period, issues = FIELD_TYPES[pf.type].normaliser()(p_val.value if p_val else None, p_at)
    result.issues += issues
    if period is None and not issues:
        if passport.get("period"):
            from .periods import parse_period

            period = parse_period(passport["period"])
        else:
            result.issues.append(Issue.make("required-value", **p_at))
    if period is not None and passport.get("period") and period.code != passport["period"]:
        result.issues.append(Issue.make("passport-mismatch", value=period.label, expected=passport["period"], **p_at))
    due = None
    if unit is not None:
        rule = roster.rule(unit.type, spec.form_id)
        if rule is None:
            result.issues.append(Issue.make("form-not-filed", unit=unit.name, unit_type=unit.type,
                                            form=spec.display_name, **u_at))
        elif period is not None:
            kind, word, example = _KIND_OF_CADENCE[rule.cadence]
            if period.kind != kind:
                result.issues.append(Issue.make("wrong-period-kind", kind=word, example=example,
                                                value=p_val.value if p_val else period.code, **p_at))
            else:
                due = roster.due(unit, spec.form_id, period)
    return Header(unit, period, due)


def _nearest(typed: str, names: list[str]) -> str | None:
    """The one name most like what was typed (a slip: 源汇区团委会); None when none is near, or two are as near."""
    scored = sorted(((difflib.SequenceMatcher(None, typed, n).ratio(), n) for n in names), reverse=True)
    if not scored or scored[0][0] < 0.6 or (len(scored) > 1 and scored[1][0] == scored[0][0]):
        return None
    return scored[0][1]


def _agree(result: FileResult, unit: Unit | None, period: Period | None, form: SheetForm, spec) -> None:
    """The first form's unit and period are the file's; later sheets must agree."""
    if result.unit is None and result.period is None:
        result.unit, result.unit_id = (unit.name, unit.id) if unit else (None, None)
        result.period = period.code if period else None
        return
    for fid, mine, theirs in (("unit", unit.name if unit else None, result.unit),
                              ("period", period.code if period else None, result.period)):
        if mine and theirs and mine != theirs:
            fv = form.values.get(fid)
            result.issues.append(Issue.make("record-mismatch", value=mine, expected=theirs,
                                            **_place(result, fv, spec.field(fid).label, form.sheet)))


# --- one-record forms ------------------------------------------------------------------------------------


def _date_window(period: Period, due: dt.date | None, received: dt.date | None) -> tuple[dt.date, dt.date]:
    """A date on the form may fall from the period's first day to a month after it was due — or, for a form sent
    later than that (a unit catching up after a 催报), to the day it arrived: a form filled late is late, not wrong."""
    end = max(period.last_day, due or period.last_day) + dt.timedelta(days=31)
    return period.first_day, max(end, received) if received is not None else end


def _check_fields(spec, form: SheetForm, head: Header, result: FileResult) -> tuple[dict, dict, dict]:
    """Each field of a form (or a tracker's header) read, normalised and checked: (values, cells, raw)."""
    values, cells, raw = {}, {}, {}
    for f in spec.fields:
        fv = form.values.get(f.id)
        at = _place(result, fv, f.label, form.sheet)
        raw[f.id] = fv.value if fv else None
        cells[f.id] = at["cell"]
        if f.id == "unit":
            values[f.id] = head.unit.name if head.unit else None
            continue
        if f.id == "period":
            values[f.id] = head.period.code if head.period else None
            continue
        if fv is None:
            if f.required:
                result.issues.append(Issue.make("required-value", **at, note="表格中找不到这一项"))
            continue
        if isinstance(fv.value, FormulaError):  # what was typed is a formula whose result is an error
            raw[f.id] = str(fv.value)
            result.issues.append(Issue.make("formula-error", value=str(fv.value), **at))
            values[f.id] = None
            continue
        value, issues = FIELD_TYPES[f.type].normaliser(choices=f.choices, period=head.period)(fv.value, at)
        result.issues += issues
        if value is None and not issues and f.required:
            result.issues.append(Issue.make("required-value", **at))
        if f.type == "date" and value is not None and head.period is not None:
            start, end = ((head.period.first_day, head.period.last_day) if f.window == "period"
                          else _date_window(head.period, head.due, result.received))
            if f.first_week and start <= value <= end and not in_visit_week(value):
                result.issues.append(Issue.make("not-in-visit-week", value=f"{value.month}月{value.day}日", **at))
            if not start <= value <= end:
                result.issues.append(Issue.make("date-outside-period", value=value.isoformat(),
                                                period=head.period.label, start=start.isoformat(),
                                                end=end.isoformat(), **at))
            elif result.received is not None and value > result.received + dt.timedelta(days=1):
                # a day no one can have written on a form already received (a typed 5 for 4?): said, not refused
                # (a received time staff stated, or a sender's clock, may be the one that is off)
                result.issues.append(Issue.make("date-after-received", value=value.isoformat(),
                                                received=result.received.isoformat(), **at))
        values[f.id] = value
    return values, cells, raw


def _check_forms(spec: FormSpec, forms: list[SheetForm], passport: dict, ws: Plan, result: FileResult) -> None:
    model = record_model(spec)
    first: dict[tuple, str] = {}  # a record's values as typed -> the sheet that first held them
    for form in forms:
        head = _header(spec, form, passport, ws, result)
        _agree(result, head.unit, head.period, form, spec)
        values, cells, raw = _check_fields(spec, form, head, result)
        same = first.setdefault(tuple(raw.items()), form.sheet)
        if same != form.sheet:  # a sheet copied for the next visit and not changed: counted twice unless corrected
            result.issues.append(Issue.make("record-repeated", file=result.file, sheet=form.sheet, first=same))
        result.records.append(Record(form.sheet, model(**values).model_dump(), cells, raw))


# --- the target tracker ----------------------------------------------------------------------------------


def _check_table(spec: TableSpec, forms: list[SheetForm], passport: dict, ws: Plan, result: FileResult) -> None:
    tasks = {t.code: t for t in ws.roster.tasks}
    for form in forms:
        head = _header(spec, form, passport, ws, result)
        _agree(result, head.unit, head.period, form, spec)
        h_values, h_cells, h_raw = _check_fields(spec, form, head, result)
        result.header = {"values": h_values, "cells": h_cells, "raw": h_raw, "sheet": form.sheet}
        unit_type = head.unit.type if head.unit else None
        formula_targets = not passport.get("unit")  # a blank tracker computes per-type targets by formula
        seen: dict[str, str] = {}
        inputs = [c.id for c in spec.columns if c.role == "input"]
        for row in form.rows:
            code_fv = row["code"]
            code, _ = as_text(code_fv.value, {})
            at: Place = {"file": result.file, "sheet": form.sheet, "cell": code_fv.cell, "field": "编号"}
            task = tasks.get(code or "")
            if task is None:
                result.issues.append(Issue.make("unknown-task", value=code or "（空）", **at))
                continue
            if task.code in seen:
                result.issues.append(Issue.make("duplicate-row", task=task.code, first=seen[task.code], **at))
                continue
            seen[task.code] = code_fv.cell
            if unit_type is not None and unit_type not in task.unit_types:
                # a blank tracker lists every task: another type's row is fine as long as it was left empty
                if any(not is_blank(row[c].value) and row[c].value != NOT_ASKED for c in inputs if c in row):
                    result.issues.append(Issue.make("task-not-for-unit", task=task.code, unit_type=unit_type, **at))
                continue
            record = _tracker_row(spec, task, row, unit_type, result, formula_targets)
            if record is not None:
                record.sheet = form.sheet
                result.records.append(record)
        if unit_type is not None:
            for t in ws.roster.tasks_for(unit_type):
                if t.code not in seen:
                    result.issues.append(Issue.make("task-missing", task=t.code, file=result.file, sheet=form.sheet))


def _tracker_row(spec: TableSpec, task: Task, row: dict[str, FieldValue], unit_type, result: FileResult,
                 formula_targets: bool):
    def at(col_id: str) -> dict:
        fv = row.get(col_id)
        return {"file": result.file, "sheet": fv.sheet if fv else None, "cell": fv.cell if fv else None,
                "field": f"{task.code} {spec.column(col_id).label}"}

    kind = TASK_KINDS[task.kind]
    issues: list[Issue] = list(_locked_changes(spec, task, row, unit_type, at, formula_targets))
    values: dict[str, object] = {"code": task.code}
    raw = {cid: fv.value for cid, fv in row.items()}
    cells = {cid: fv.cell for cid, fv in row.items()}
    read: dict[str, list[Issue]] = {}
    for col in (c for c in spec.columns if c.role == "input"):
        field_type = kind.input_type(col)
        if field_type is None:
            values[col.id] = None
            continue
        fv = row.get(col.id)
        values[col.id], read[col.id] = FIELD_TYPES[field_type].normaliser()(fv.value if fv else None, at(col.id))
        if fv is not None and any(i.code == "not-a-number" for i in read[col.id]) \
                and fold(str(fv.value)).strip("（）()") in _NOT_APPLICABLE:  # "不适用": what to write instead
            read[col.id] = [Issue.make("not-applicable-number", value=str(fv.value).strip(), **at(col.id))]
        issues += read[col.id]
    missing = [c for c in kind.required if values.get(c) is None and not read.get(c)]
    if kind.pair:  # 完成数 and 基数 go together: nothing said of a missing one while the other is wrong
        if any(i.severity == "error" for c in kind.pair for i in read.get(c, [])):
            missing = []
        elif len(missing) == 1:
            issues.append(Issue.make("ratio-incomplete", task=task.code, task_kind=kind.zh, **at(missing[0])))
            missing = []
    issues += [Issue.make("required-value", **at(c)) for c in missing]
    if kind.not_above and kind.above(values):
        assert kind.pair is not None  # TaskKind.not_above compares the pair
        done, base = kind.pair
        issues.append(Issue.make("done-above-base", task=task.code, done=values[done], base=values[base],
                                 **at(done)))
    result.issues += issues
    return Record("", record_model(spec)(**values).model_dump(), cells, raw)


_NOT_APPLICABLE = {"不适用", "无", "没有", "无此项", "暂无", "不涉及", "—", "-", "--", "——", "/", "\\", "NA", "N/A", "n/a"}


def _locked_changes(spec: TableSpec, task: Task, row: dict[str, FieldValue], unit_type, at,
                    formula_targets: bool) -> Iterator[Issue]:
    """Targets and task columns typed over: compared with the roster, not trusted from the file.

    A per-type target in a blank tracker is a formula whose cached result depends on the spreadsheet's own
    lookup of the unit; it is not compared (the roster's target is what counts anyway)."""
    target = task.target_for(unit_type)
    expected = {"indicator": task.indicator, "target": target}
    for cid, want in expected.items():
        fv = row.get(cid)
        if fv is None or (cid == "target" and (unit_type is None or (formula_targets and task.type_targets))):
            continue
        got = fv.value
        if cid == "target":
            same = (want is None and is_blank(got)) or (
                isinstance(got, (int, float)) and isinstance(want, (int, float)) and abs(float(got) - want) < 1e-9)
        else:
            same = fold(str(got or "")) == fold(str(want or ""))
        if not same:
            show = lambda v: "" if v is None else (f"{v:.0%}" if TASK_KINDS[task.kind].percent and isinstance(v, float) else str(v))  # noqa: E731
            yield Issue.make("locked-changed", expected=show(want), value=show(got), **at(cid))


# --- many files ------------------------------------------------------------------------------------------
