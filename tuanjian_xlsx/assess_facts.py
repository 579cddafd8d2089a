"""The facts behind the year-end assessment: one `Fact` per report owed, month of visits, dated visit, quarter of
observation and target task of each assessed unit, read from the ledger through the functions the master uses
(`status.effective`, `status.statuses`, whose due dates are `Roster.due`'s). Scores are not computed here: the
workbook (assess_book) scores each fact by a formula and each item over its facts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from .assess_rules import Rule, Rules
from .fieldtypes import TASK_KINDS
from .ledger import FileRow
from .periods import Period, in_visit_week, parse_period
from .plan import Workspace
from .roster import Task, Unit
from .specs import FormSpec, TableSpec
from .status import STATUS_ZH, Effective, StatusItem, effective, forms_in_use, period_order, statuses


@dataclass
class Fact:
    """One line of 考核依据: something owed or reported that an item's score counts, with the files it came from.
    `how` says how its 计分 is worked out (assess_book.SCORE_OF)."""

    unit_no: int
    unit: Unit
    item: str
    how: str  # status | minimum | week | filed | ratio | count | yesno | research
    source: str  # the form or task list it comes from
    content: str = ""  # a visit's organisation, a task's number and indicator
    period: str = ""
    due: dt.date | None = None
    received: dt.datetime | None = None
    result: str = ""  # 按时/逾期/未报, 周内/周外, 已报/未报; a formula where the result follows from numbers
    value: object = None  # 走访次数, 走访日期, 完成数
    base: object = None
    standard: object = None  # 每月应走访次数, the target
    files: list[str] = field(default_factory=list)


@dataclass
class Basis:
    """Everything the workbook shows: whom, by which rules, on which facts."""

    year: int
    as_of: dt.date
    rules: Rules
    units: list[Unit]
    facts: list[Fact]
    no_week_date: list[str]  # forms of 走基层周 whose version in use has no date to check against the first week
    owed: int = 0  # reports of the year due by the as-of date from the assessed units


# --- the facts -------------------------------------------------------------------------------------------------


def owed(ws: Workspace, eff: Effective, year: int, as_of: dt.date) -> list[StatusItem]:
    """Every report of `year`'s periods due by the as-of date, with its status as `status` works it out; from the
    workspace's reporting start when that lies later in the year."""
    first = Period(year, "month", 1)
    start = parse_period(ws.settings.reporting.start) if ws.settings.reporting.start else None
    if start is not None and start > first:
        first = start
    reporting = ws.settings.reporting.model_copy(update={"start": first.code})
    view = replace(ws, settings=ws.settings.model_copy(update={"reporting": reporting}))
    return [i for i in statuses(view, eff, as_of) if i.period.year == year and i.status != "not_due"]


@dataclass
class _Ledger:
    """What the facts are read from: the ledger as of the as-of date."""

    ws: Workspace
    eff: Effective
    owed: dict[tuple[str, str], list[StatusItem]]  # (unit id, form id) -> its reports owed, in period order
    first: dict[tuple[str, str, str], FileRow]  # (unit id, form id, period) -> the first valid file
    year: int
    as_of: dt.date
    rules: Rules

    def name(self, form_id: str) -> str:
        return self.ws.registry.get(form_id).display_name

    def records(self, unit: Unit, form_id: str, period: Period) -> list[tuple[FileRow, dict]]:
        return [(f, rec) for f, rec in self.eff.records.get(form_id, [])
                if f.unit_id == unit.id and f.period == period.code]

    def latest_table(self, unit: Unit, form_id: str) -> tuple[FileRow, list[dict]] | None:
        """The unit's table (台账) for the latest period of the year begun by the as-of date."""
        got = [(p, v) for (uid, code), v in self.eff.tables.get(form_id, {}).items()
               if uid == unit.id and (p := parse_period(code)) and p.year == self.year and p.first_day <= self.as_of]
        return max(got, key=lambda pv: period_order(pv[0]))[1] if got else None


def _timeliness(led: _Ledger, no: int, unit: Unit, rule: Rule) -> list[Fact]:
    forms = rule.forms or led.ws.registry.form_ids
    out = []
    for form_id in forms:
        for i in led.owed.get((unit.id, form_id), []):
            f = led.first.get((unit.id, form_id, i.period.code))
            out.append(Fact(no, unit, rule.item, "status", led.name(form_id), period=i.period.label, due=i.due,
                            received=i.received, result=STATUS_ZH[i.status], files=[f.name] if f else []))
    return out


def _visits(led: _Ledger, no: int, unit: Unit, rule: Rule) -> list[Fact]:
    form_id = rule.forms[0]
    utype = led.ws.roster.unit_type(unit.type)
    minimum = utype.min_visits if utype else None
    if not minimum:  # 每月至少走访次数 left blank or 0: the type's visits are not counted (不适用)
        return []
    out = []
    for i in led.owed.get((unit.id, form_id), []):
        recs = led.records(unit, form_id, i.period)
        out.append(Fact(no, unit, rule.item, "minimum", led.name(form_id), period=i.period.label, due=i.due,
                        value=len(recs), standard=minimum, files=_names(recs)))
    return out


def _week_field(spec: FormSpec | TableSpec) -> str | None:
    return next((f.id for f in spec.fields if f.first_week), None)


def _visit_week(led: _Ledger, no: int, unit: Unit, rule: Rule) -> list[Fact]:
    form_id = rule.forms[0]
    out = []
    for i in led.owed.get((unit.id, form_id), []):
        for f, rec in led.records(unit, form_id, i.period):
            spec = led.ws.registry.get(form_id, f.version)
            day = _date(rec.get(_week_field(spec) or ""))
            if day is None:  # a version without the date (附件1 v1), or a date not given
                continue
            visited = str(rec.get(spec.close_names or "") or "")  # the organisation visited (附件1's 走访团组织名称)
            out.append(Fact(no, unit, rule.item, "week", led.name(form_id), content=visited, period=i.period.label,
                            result="周内" if in_visit_week(day) else "周外", value=day, files=[f.name]))
    return out


def _observation(led: _Ledger, no: int, unit: Unit, rule: Rule) -> list[Fact]:
    form_id = rule.forms[0]
    out = []
    for i in led.owed.get((unit.id, form_id), []):
        f = led.first.get((unit.id, form_id, i.period.code))
        out.append(Fact(no, unit, rule.item, "filed", led.name(form_id), period=i.period.label, due=i.due,
                        received=i.received, result="已报" if f else "未报", files=[f.name] if f else []))
    return out


def _task_fact(led: _Ledger, no: int, unit: Unit, rule: Rule, form_id: str, task: Task, how: str) -> Fact:
    got = led.latest_table(unit, form_id)
    f, recs = got if got else (None, [])
    rec = next((r for r in recs if r.get("code") == task.code), {})
    p = parse_period(f.period) if f and f.period else None
    target = task.target_for(unit.type)
    return Fact(no, unit, rule.item, how, led.name(form_id), content=f"{task.code} {task.indicator}",
                period=p.label if p else "未报", value=rec.get("done"),
                base=rec.get("base") if TASK_KINDS[task.kind].pair else None,
                standard=target if target is not None else 1 if how == "research" else None,
                files=[f.name] if f else [])


def _tracked(led: _Ledger, unit: Unit, form_id: str) -> bool:
    """Whether the unit files the table form and one of the year's periods has come due."""
    return led.ws.roster.rule(unit.type, form_id) is not None and bool(led.owed.get((unit.id, form_id)))


def _targets(led: _Ledger, no: int, unit: Unit, rule: Rule) -> list[Fact]:
    form_id = rule.forms[0]
    if not _tracked(led, unit, form_id):
        return []
    skip = led.rules.excluded_tasks()
    return [_task_fact(led, no, unit, rule, form_id, t, t.kind) for t in led.ws.roster.tasks_for(unit.type)
            if t.kind != "qualitative" and t.code not in skip]


def _research(led: _Ledger, no: int, unit: Unit, rule: Rule) -> list[Fact]:
    form_id = rule.forms[0]
    task = next((t for t in led.ws.roster.tasks if t.code == rule.task), None)
    if task is None or unit.type not in task.unit_types or not _tracked(led, unit, form_id):
        return []
    return [_task_fact(led, no, unit, rule, form_id, task, "research")]


FACTS: dict[str, Callable[[_Ledger, int, Unit, Rule], list[Fact]]] = {
    "timeliness": _timeliness, "visits": _visits, "visit_week": _visit_week, "observation": _observation,
    "targets": _targets, "research": _research}


def _names(recs: list[tuple[FileRow, dict]]) -> list[str]:
    return list(dict.fromkeys(f.name for f, _ in recs))


def _date(v) -> dt.date | None:
    if isinstance(v, dt.datetime):
        return v.date()
    if isinstance(v, dt.date):
        return v
    if isinstance(v, str):
        try:
            return dt.date.fromisoformat(v[:10])
        except ValueError:
            return None
    return None


def gather(ws: Workspace, files: list[FileRow], rules: Rules, year: int, as_of: dt.date) -> Basis:
    """The assessed units (by unit type, then the roster's order) and every fact their scores count, as of a day."""
    files = [f for f in files if f.received_at.date() <= as_of]  # looking back, later arrivals did not exist yet
    eff = effective(files, forms_in_use(ws))
    by_unit: dict[tuple[str, str], list[StatusItem]] = {}
    for i in sorted(owed(ws, eff, year, as_of), key=lambda i: period_order(i.period)):
        by_unit.setdefault((i.unit_id, i.form_id), []).append(i)
    first: dict[tuple[str, str, str], FileRow] = {}
    for f in files:  # in order received
        if f.counts and f.unit_id and f.form_id and f.period:
            first.setdefault((f.unit_id, f.form_id, f.period), f)
    led = _Ledger(ws, eff, by_unit, first, year, as_of, rules)
    units = [u for t in rules.assessed_types(ws.roster) for u in ws.roster.units if u.type == t]
    facts = [fact for no, u in enumerate(units, start=1) for rule in rules.scored if rule.applies_to(u.type)
             for fact in FACTS[rule.item](led, no, u, rule)]
    no_week = [form_id for r in rules.scored if r.item == "visit_week" for form_id in r.forms
               if _week_field(ws.spec(form_id)) is None]
    ids = {u.id for u in units}
    return Basis(year, as_of, rules, units, facts, no_week, sum(len(v) for (uid, _), v in by_unit.items() if uid in ids))
