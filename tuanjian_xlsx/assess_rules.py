"""The year-end assessment's rules (考核细则): which unit types are assessed, the items with their full marks and
what each is counted from. Configuration with defaults: the built-in rules are data in
tuanjian_xlsx/data/default_plan.toml beside the roster they go with; a workspace keeps its own in 名单与目标.xlsx
(roster_book.py reads and writes that sheet).
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from typing import Annotated, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from .issues import ConfigError, Issue
from .roster import (_LIST_SPLIT, Locate, Roster, _blank_to_none, _from_label, _Row, _row_no, default_roster,
                     form_names)
from .settings import DATA
from .specs import SpecRegistry
from .tomlfile import find_line, load_toml, pydantic_issues

Item = Literal["scope", "timeliness", "visits", "visit_week", "observation", "targets", "research", "adjustment"]
ITEMS_ZH: dict[str, str] = {"scope": "考核范围", "timeliness": "报送及时", "visits": "走基层", "visit_week": "走基层周",
                            "observation": "观摩交流", "targets": "目标完成", "research": "调研报告", "adjustment": "加减分"}
SCORED = ("timeliness", "visits", "visit_week", "observation", "targets", "research")  # counted from the ledger
ONE_FORM = ("visits", "visit_week", "observation", "targets", "research")  # counted from exactly one form


class Rule(_Row):
    """One row of 考核细则."""

    item: Item
    points: Annotated[float, Field(ge=0)] | None = None  # 满分; the bound of 加减分; none for 考核范围
    late_credit: Annotated[float, Field(ge=0, le=1)] | None = None  # 报送及时: a late report counts this much
    forms: list[str] = []  # form ids (the sheet also takes a form's name)
    task: str | None = None  # 调研报告: the task whose 完成数 is the number of reports
    unit_types: list[str] = []  # the types this item applies to; none = every assessed type
    note: str = ""

    _item = field_validator("item", mode="before")(lambda v: _from_label(v, ITEMS_ZH, "not-in-choices"))

    @field_validator("points", "late_credit", mode="before")
    @classmethod
    def _optional(cls, v):
        return _blank_to_none(v)

    @field_validator("task", mode="before")
    @classmethod
    def _code(cls, v):
        v = _blank_to_none(v)
        return str(int(v)) if isinstance(v, float) and v.is_integer() else v

    @field_validator("forms", "unit_types", mode="before")
    @classmethod
    def _list(cls, v):
        if v is None:
            return []
        if isinstance(v, str):
            return [p for p in _LIST_SPLIT.split(v.strip()) if p]
        return v

    @field_validator("note", mode="before")
    @classmethod
    def _text(cls, v):
        return "" if v is None else v

    @property
    def name(self) -> str:
        return ITEMS_ZH[self.item]

    def applies_to(self, unit_type: str) -> bool:
        return not self.unit_types or unit_type in self.unit_types


class Rules(BaseModel):
    """考核细则 as a whole: the rows in order, and whether they are the built-in default."""

    rows: list[Rule]
    builtin: bool = False  # the workspace's 名单与目标.xlsx has no 考核细则: the defaults stand in

    def rule(self, item: str) -> Rule | None:
        return next((r for r in self.rows if r.item == item), None)

    @property
    def scored(self) -> list[Rule]:
        """The items counted from the ledger, in the sheet's order."""
        return [r for r in self.rows if r.item in SCORED]

    @property
    def adjustment(self) -> Rule | None:
        return self.rule("adjustment")

    @property
    def late_credit(self) -> float:
        rule = self.rule("timeliness")
        return builtin_late_credit() if rule is None or rule.late_credit is None else rule.late_credit

    def assessed_types(self, roster: Roster) -> list[str]:
        """The unit types assessed, in the roster's order: the 考核范围 row's, or every type."""
        scope = self.rule("scope")
        wanted = scope.unit_types if scope and scope.unit_types else roster.type_names
        return [t for t in roster.type_names if t in wanted]

    def excluded_tasks(self) -> set[str]:
        """Tasks another item scores on its own (调研报告): left out of 目标完成."""
        return {r.task for r in self.rows if r.item != "targets" and r.task}


def form_id_of(name: str, registry: SpecRegistry) -> str | None:
    """A form named as staff name it — its id, sheet name, attachment (附件1), title or full name — as its id."""
    for spec in registry.latest():
        if name in (spec.form_id, spec.sheet_name, spec.attachment, spec.title, spec.display_name):
            return spec.form_id
    return None


def check_rules(rules: Rules, roster: Roster, registry: SpecRegistry, locate: Locate) -> Iterator[Issue]:
    """What one row alone cannot tell: an item twice, a form, task or unit type nobody knows, a missing basis."""
    seen: dict[str, int] = {}
    types = roster.type_names
    known_forms = "、".join(form_names(registry).values())
    codes = {t.code for t in roster.tasks}
    for i, r in enumerate(rules.rows):
        at = lambda key, i=i: locate("assessment", i, key)  # noqa: E731
        if r.item in seen:
            yield Issue.make("assess-item-twice", item=r.name, first=seen[r.item], **at("item"))
        seen.setdefault(r.item, _row_no(locate, "assessment", i))
        if r.item != "scope" and r.points is None:
            yield Issue.make("required-value", **at("points"))
        for ut in r.unit_types:
            if ut not in types:
                yield Issue.make("unknown-unit-type", value=ut, known=types, **at("unit_types"))
        for name in r.forms:
            if form_id_of(name, registry) is None:
                yield Issue.make("unknown-form", value=name, known=known_forms, **at("forms"))
        if r.item in ONE_FORM and len(r.forms) != 1:
            if not r.forms:
                yield Issue.make("required-value", **at("forms"))
            else:
                yield Issue.make("bad-cell", value="、".join(r.forms), detail=f"“{r.name}”只按一张报表计分", **at("forms"))
        if r.item == "research":
            if r.task is None:
                yield Issue.make("required-value", **at("task"))
            elif r.task not in codes:
                yield Issue.make("unknown-task", value=r.task, **at("task"))


def resolved(rules: Rules, registry: SpecRegistry) -> Rules:
    """The rules with every form named by its id (the sheet may name a form by its sheet name or attachment)."""
    rows = [r.model_copy(update={"forms": [form_id_of(f, registry) or f for f in r.forms]}) for r in rules.rows]
    return rules.model_copy(update={"rows": rows})


def rules_from_data(rows: list[dict], file: str, lines: dict, roster: Roster, registry: SpecRegistry) -> Rules:
    """Rules from the TOML shape of default_plan.toml's [[assessment]] tables."""
    try:
        rules = Rules(rows=[Rule.model_validate(r) for r in rows])
    except ValidationError as exc:
        raise ConfigError(pydantic_issues(exc, file=file, lines=lines, strip=())) from None

    def locate(section: str, index: int, key: str) -> dict:
        return {"file": file, "line": find_line((section, index), lines), "field": f"{section}[{index}].{key}"}

    issues = [i for i in check_rules(rules, roster, registry, locate) if i.severity == "error"]
    if issues:
        raise ConfigError(issues)
    return resolved(rules, registry)


@cache
def builtin_late_credit() -> float:
    """What a late report counts for where 考核细则 leaves 逾期计分 blank: the built-in 报送及时 row's, set in
    default_plan.toml and nowhere else."""
    data, _ = load_toml(DATA / "default_plan.toml")
    row = next(r for r in data.get("assessment", []) if r.get("item") == "timeliness")
    return float(row["late_credit"])


def default_rules(registry: SpecRegistry) -> Rules:
    """The built-in 考核细则 (tuanjian_xlsx/data/default_plan.toml), checked against the plan's own roster. In a
    workspace whose roster differs, a unit type or task they name that it lacks simply matches nothing."""
    path = DATA / "default_plan.toml"
    data, lines = load_toml(path)
    return rules_from_data(data.get("assessment", []), path.name, lines, default_roster(registry), registry)
