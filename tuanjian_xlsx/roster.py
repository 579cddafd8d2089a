"""The roster: units, unit types with their due rules, target tasks, the checks across them, and the built-in plan.

One roster, two sources: a workspace's 名单与目标.xlsx (roster_book.py) and the plan's own
tuanjian_xlsx/data/default_plan.toml. Nothing here is a constant of the plan.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from .fieldtypes import KINDS_ZH, TASK_KINDS
from .issues import ConfigError, Issue
from .periods import Period
from .settings import DATA
from .specs import SpecRegistry
from .tomlfile import find_line, load_toml, pydantic_issues

Cadence = Literal["monthly", "quarterly", "yearly", "none"]
if TYPE_CHECKING:
    Kind = str
else:
    Kind = Literal[tuple(TASK_KINDS)]  # the entries of fieldtypes.TASK_KINDS
Comparison = Literal[">=", "="]
CADENCE_ZH = {"monthly": "按月", "quarterly": "按季", "yearly": "按年", "none": "不报送"}
COMPARISON_ZH = {">=": "≥", "=": "="}
_LIST_SPLIT = re.compile(r"[、,，;；/\s]+")
_OFFICIAL = re.compile(r"共青团(.+?)(工作)?委员会")  # 共青团源汇区委员会 = 源汇区团委; …工作委员会 = …团工委
_BRACKET = re.compile(r"[（(]|[）)]")


def _after_place(before: str, name: str, city: str | None) -> bool:
    """Whether what stands before a roster name is a place: the committee's own city, 河南省 before it or not
    (漯河市 + 源汇区团委, 漯河 + 市教育局青工委); without a city told by the committee's name, any 市, 省, 县 or 州 for a
    name that does not itself start with 市 (a name that does needs the committee's city: 舞钢市教育局青工委 is
    another city's)."""
    if not before:
        return False
    if name[:1] == "市" and not before.endswith("市"):
        before = before + "市"
    elif name[:1] == "市":
        return False  # 漯河市 + 市教育局…: no one writes 市 twice
    if city:
        return before.endswith(city) and not _BODY.search(before[:-len(city)])
    return name[:1] != "市" and _PLACE.fullmatch(before) is not None


_BODY = re.compile(r"[团委部局]")  # (a body's name, not a place: 源汇区委)
_PLACE = re.compile(r"[^团委部局]*[市省县州]")


def city_of(organisation: str) -> str | None:
    """The city (or county) a committee is of, from its name: 共青团漯河市委, 漯河团市委, 共青团河南省漯河市委员会,
    共青团漯河市委组织部 -> 漯河市; 共青团团风县委 -> 团风县; None when the name tells none."""
    text = re.sub(r"^(?:共青团)?(?:.{1,4}?省)?", "", organisation.strip())
    m = re.match(r"(.{1,6}?)团?([市县州])委", text)
    return m.group(1) + m.group(2) if m and m.group(1) != "团" else None  # (团市委: no city named)


def _called(name: str) -> set[str]:
    """A name as compared, with its bracketed part and the rest each on their own (three characters at least):
    市青年创业服务中心（市志愿者服务中心）."""
    name = _folded(name)
    return {name} | {n for n in _BRACKET.sub("\n", name).split("\n") if len(n) >= 3}


def _folded(name: str) -> str:
    """A name as compared: width-folded, spaces gone, letters in one case."""
    from .normalise import fold

    return fold(name).casefold()


_EMAIL = re.compile(r"^[^@\s,;，；、<>]+@[^@\s,;，；、<>]+\.[^@\s,;，；、<>]+$")
_EMAIL_APART = re.compile(r"[\s,;，；、]+")  # what stands between two addresses in one cell


def _from_label(value, table: dict[str, str], error: str):
    """Accept a code ('monthly') or its Chinese label ('按月'); other text is an error of kind `error`."""
    if isinstance(value, str):
        v = value.strip().replace("＞＝", ">=").replace("≥", ">=").replace("＝", "=")
        if v in table:
            return v
        for code, label in table.items():
            if v == label:
                return code
        raise PydanticCustomError(error, "取值应为：{choices}", {"choices": "、".join(table.values()), "value": value})
    return value


def parse_date(value) -> dt.date | None:
    """A date from a cell or TOML: a date, or text as Excel shows it (2020-11-30, 2020/11/30, 2020年11月30日)."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?\s*", value)
        if m:
            try:
                return dt.date(*map(int, m.groups()))
            except ValueError:
                pass
    raise PydanticCustomError("bad-date", "不是有效日期", {"value": value})


def _blank_to_none(v):
    return None if isinstance(v, str) and not v.strip() else v


class _Row(BaseModel):
    # cells typed as numbers in a text column (a contact's phone, a name that is a number) are text
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, coerce_numbers_to_str=True)


class DueRule(_Row):
    """Due date = day `day` of the `month_offset`-th month after the period's last month."""

    cadence: Cadence
    day: Annotated[int, Field(ge=1, le=31)] = 10
    month_offset: Annotated[int, Field(ge=0, le=12)] = 0

    _cadence = field_validator("cadence", mode="before")(lambda v: _from_label(v, CADENCE_ZH, "not-in-choices"))

    @field_validator("day", "month_offset", mode="before")
    @classmethod
    def _whole(cls, v):
        if isinstance(v, float) and v.is_integer():
            return int(v)
        return v


class UnitType(_Row):
    """A unit type and, per form, how often it reports and when it is due."""

    name: Annotated[str, Field(min_length=1)]
    rules: dict[str, DueRule] = {}
    min_visits: Annotated[int, Field(ge=0)] | None = None  # 走基层: visits a unit of this type owes each month

    @field_validator("min_visits", mode="before")
    @classmethod
    def _whole(cls, v):
        v = _blank_to_none(v)
        return int(v) if isinstance(v, float) and v.is_integer() else v


class Unit(_Row):
    id: Annotated[str, Field(min_length=1)]
    name: Annotated[str, Field(min_length=1)]
    type: Annotated[str, Field(min_length=1)]
    email: str | None = None
    contact: str | None = None
    phone: str | None = None
    start: str | None = None  # the month it owes reports from (a unit added mid-year), as 2026-07; None: as all
    aliases: str | None = None  # other names it goes by (its full name, a short one, an old one), 、 between them

    @field_validator("aliases", mode="before")
    @classmethod
    def _aliases(cls, v):
        v = _blank_to_none(v)
        return "、".join(p for p in _LIST_SPLIT.split(str(v).strip()) if p) or None if v is not None else None

    @property
    def alias_list(self) -> list[str]:
        return [a for a in (self.aliases or "").split("、") if a]

    @field_validator("start", mode="before")
    @classmethod
    def _start(cls, v):
        """A period as staff write it (2026-07, 2026年7月, 2026-Q3), or a date Excel made of it: its first month."""
        from .periods import Period, parse_period

        v = _blank_to_none(v)
        if v is None:
            return None
        if isinstance(v, dt.date):
            return Period(v.year, "month", v.month).code
        period = parse_period(str(v)) if isinstance(v, str) else None
        if period is None:
            raise PydanticCustomError("not-a-period", "不是报送期", {"value": v})
        return Period(period.year, "month", period.months[0]).code

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, v):
        if isinstance(v, float) and v.is_integer():
            v = str(int(v))
        if isinstance(v, str) and not re.fullmatch(r"[A-Za-z0-9_-]+", v.strip()):
            raise PydanticCustomError("bad-id", "编号格式不对", {"value": v})
        return v

    @field_validator("email", "contact", "phone", mode="before")
    @classmethod
    def _optional(cls, v):
        v = _blank_to_none(v)
        if isinstance(v, float) and v.is_integer():
            v = str(int(v))
        return v

    @field_validator("email")
    @classmethod
    def _email(cls, v):
        """One address, or several as units give them (yh@163.com；yhtw@qq.com), kept as one To line."""
        if v is None:
            return None
        addresses = [a for a in _EMAIL_APART.split(v.strip()) if a]
        if not addresses or not all(_EMAIL.match(a) for a in addresses):
            raise PydanticCustomError("bad-email", "邮箱格式不对", {"value": v})
        return ", ".join(addresses)

    @property
    def emails(self) -> set[str]:
        """Its addresses, lower-cased (mail from any of them is the unit's own)."""
        return {a.lower() for a in _EMAIL_APART.split(self.email or "") if a}


class Task(_Row):
    code: Annotated[str, Field(min_length=1)]
    project: str = ""
    content: str = ""
    indicator: Annotated[str, Field(min_length=1)]
    kind: Kind
    numerator_label: str = ""
    denominator_label: str = ""
    comparison: Comparison = ">="
    target: float | None = None
    type_targets: dict[str, float] = {}
    unit_types: list[str] = []
    deadline: dt.date | None = None
    department: str = ""
    owner: str = ""

    _kind = field_validator("kind", mode="before")(lambda v: _from_label(v, KINDS_ZH, "not-in-choices"))
    _cmp = field_validator("comparison", mode="before")(
        lambda v: ">=" if _blank_to_none(v) is None else _from_label(v, COMPARISON_ZH, "not-in-choices")
    )
    _deadline = field_validator("deadline", mode="before")(parse_date)

    @field_validator("code", mode="before")
    @classmethod
    def _code(cls, v):
        return str(int(v)) if isinstance(v, float) and v.is_integer() else v

    @field_validator("target", mode="before")
    @classmethod
    def _target(cls, v):
        return _blank_to_none(v)

    @field_validator("unit_types", mode="before")
    @classmethod
    def _types(cls, v):
        if v is None:
            return []
        if isinstance(v, str):
            return [p for p in _LIST_SPLIT.split(v.strip()) if p]
        return v

    @field_validator("numerator_label", "denominator_label", "project", "content", "department", "owner", mode="before")
    @classmethod
    def _text(cls, v):
        return "" if v is None else v

    def target_for(self, unit_type: str | None) -> float | None:
        """This task's target for a unit type (a per-type value wins over the general one)."""
        if unit_type is not None and unit_type in self.type_targets:
            return self.type_targets[unit_type]
        return self.target

    @property
    def basis(self) -> str:
        """How to fill the row, shown in the tracker's 填报口径 column."""
        return TASK_KINDS[self.kind].basis.format_map(dict(self))

    def target_text(self, unit_type: str | None = None) -> str:
        sign = "≥" if self.comparison == ">=" else ""

        def show(v: float) -> str:
            if TASK_KINDS[self.kind].percent:
                pct = f"{v * 100:.10g}%"
                return pct if v == 1 else f"{sign}{pct}"
            return f"{sign}{v:g}"

        if self.kind == "yesno":
            return "是"
        if self.kind == "qualitative":
            return "定性"
        if unit_type is not None:
            v = self.target_for(unit_type)
            return "" if v is None else show(v)
        parts = [f"{t}{show(v)}" for t, v in self.type_targets.items()]
        if self.target is not None:
            parts.insert(0, show(self.target) if not parts else f"其他{show(self.target)}")
        return "；".join(parts)


class Roster(BaseModel):
    """Units, their types with due rules, and the target tasks."""

    unit_types: list[UnitType]
    units: list[Unit]
    tasks: list[Task]

    @property
    def type_names(self) -> list[str]:
        return [t.name for t in self.unit_types]

    def unit_type(self, name: str) -> UnitType | None:
        return next((t for t in self.unit_types if t.name == name), None)

    def rule(self, unit_type: str, form_id: str) -> DueRule | None:
        t = self.unit_type(unit_type)
        rule = t.rules.get(form_id) if t else None
        return None if rule is None or rule.cadence == "none" else rule

    def unit_by_name(self, name: str) -> Unit | None:
        return next((u for u in self.units if u.name == name), None)

    def unit_called(self, text: str, place: str | None = None) -> Unit | None:
        """The one unit a name not on the roster stands for, as units write their own: a 别名 staff listed; the
        official name (共青团源汇区委员会, 共青团…工作委员会 for a 团工委); the name with `place` (the committee's own
        city, 漯河市) before it (漯河市源汇区团委, 漯河市教育局青工委 — not 舞钢市教育局青工委, nor 郾城区团委宣传部); the
        name without its bracketed part or that part alone (市青年创业服务中心); the start of one name only
        (源汇区, 西城区: three characters at least). None when no unit, or more than one, fits."""
        text = _folded(text)
        official = _OFFICIAL.fullmatch(text)
        wanted = {text} | ({official[1] + ("团工委" if official[2] else "团委")} if official else set())
        named: list[set[str]] = [{c for n in (u.name, *u.alias_list) for c in _called(n)} for u in self.units]
        city = _folded(place) if place else None
        for test in (lambda w, n: w == n, lambda w, n: w.endswith(n) and _after_place(w[:-len(n)], n, city),
                     lambda w, n: len(w) >= 3 and n.startswith(w)):
            hits = {k for k, names in enumerate(named) for n in names for w in wanted if test(w, n)}
            if hits:
                return self.units[hits.pop()] if len(hits) == 1 else None
        return None

    def units_filing(self, form_id: str) -> list[Unit]:
        return [u for u in self.units if self.rule(u.type, form_id)]

    def tasks_for(self, unit_type: str | None) -> list[Task]:
        return [t for t in self.tasks if unit_type is None or unit_type in t.unit_types]

    def due(self, unit: Unit | None, form_id: str, period: Period | None) -> dt.date | None:
        """The day `unit`'s `form_id` for `period` is due; None when the unit does not file that form (or the unit
        or period is not known). The one place a due date is worked out."""
        rule = self.rule(unit.type, form_id) if unit is not None else None
        if rule is None or period is None:
            return None
        return period.due(rule.day, rule.month_offset)


# --- cross checks, shared by the Excel roster and the built-in data -------------------------------

Locate = Callable[[str, int, str], dict]  # (section, index, field) -> Issue place kwargs


def check_roster(roster: Roster, locate: Locate, form_names: dict[str, str]) -> Iterator[Issue]:
    """Everything about a roster that one row alone cannot tell: duplicates, unknown types, missing targets."""
    types = roster.type_names
    if not roster.units:
        yield Issue.make("no-units", **locate("units", -1, "name"))
    seen_t: dict[str, int] = {}
    ruled = {form_id for ut in roster.unit_types for form_id in ut.rules}  # forms some type has a rule for
    for i, ut in enumerate(roster.unit_types):
        if ut.name in seen_t:
            yield Issue.make("duplicate-unit", value=ut.name, first=seen_t[ut.name], **locate("unit_types", i, "name"))
        seen_t.setdefault(ut.name, _row_no(locate, "unit_types", i))
        for form_id, name in form_names.items():
            if form_id in ut.rules:
                continue
            if form_id in ruled:  # a blank among the other types' rules: a cell cleared by mistake takes a whole
                # type off the form without a word (不报送 is written out)
                yield Issue.make("rule-blank", unit_type=ut.name, form=name,
                                 **locate("unit_types", i, f"rules.{form_id}.cadence"))
            else:  # no type has one: a form added after this workbook was made
                yield Issue.make("missing-rule", unit_type=ut.name, form=name, **locate("unit_types", i, "name"))
    seen_id: dict[str, int] = {}
    seen_name: dict[str, int] = {}
    taken: dict[str, str] = {}  # every name a unit goes by (its name, its bracketed parts) -> the unit
    for u in roster.units:
        taken.update(dict.fromkeys(_called(u.name), u.name))
    for i, u in enumerate(roster.units):
        for alias in u.alias_list:  # one name, one unit: an alias no other unit's name or alias may also be
            others = [taken.get(key, u.name) for key in _called(alias)]  # (its bracketed parts too, as read)
            other = next((o for o in others if o != u.name), None)
            if other is not None:
                yield Issue.make("alias-taken", value=alias, unit=u.name, other=other, **locate("units", i, "aliases"))
            for key in _called(alias):
                taken.setdefault(key, u.name)
    for i, u in enumerate(roster.units):
        for key, seen, fld in ((u.id, seen_id, "id"), (u.name, seen_name, "name")):
            if key in seen:
                yield Issue.make("duplicate-unit", value=key, first=seen[key], **locate("units", i, fld))
            seen.setdefault(key, _row_no(locate, "units", i))
        if u.type not in types:
            yield Issue.make("unknown-unit-type", value=u.type, known=types, **locate("units", i, "type"))
    seen_code: dict[str, int] = {}
    for i, task in enumerate(roster.tasks):
        code = task.code
        if code in seen_code:
            yield Issue.make("duplicate-task", value=code, first=seen_code[code], **locate("tasks", i, "code"))
        seen_code.setdefault(code, _row_no(locate, "tasks", i))
        yield from _check_task(task, types, partial(locate, "tasks", i))


def _check_task(t: Task, types: list[str], at: Callable[[str], dict]) -> Iterator[Issue]:
    if not t.unit_types:
        yield Issue.make("task-no-unit-types", task=t.code, **at("unit_types"))
    for ut in t.unit_types:
        if ut not in types:
            yield Issue.make("unknown-unit-type", value=ut, known=types, **at("unit_types"))
    for ut in t.type_targets:
        if ut not in types:
            yield Issue.make("unknown-unit-type", value=ut, known=types, **at(f"type_targets.{ut}"))
    kind = TASK_KINDS[t.kind]
    if kind.pair and not (t.numerator_label and t.denominator_label):
        yield Issue.make("ratio-needs-labels", task=t.code, task_kind=kind.zh, **at("numerator_label"))
    if kind.numeric:
        lacking = [ut for ut in t.unit_types if t.target_for(ut) is None]
        if lacking:
            detail = "、".join(lacking) + " 没有目标值"
            yield Issue.make("task-without-target", task=t.code, kind=KINDS_ZH[t.kind], detail=detail, **at("target"))
    if kind.target_max is not None:
        for key, v in [("target", t.target)] + [(f"type_targets.{k}", v) for k, v in t.type_targets.items()]:
            if v is not None and not 0 <= v <= kind.target_max:
                yield Issue.make("ratio-target-range", task=t.code, task_kind=kind.zh, most=f"{kind.target_max:.0%}",
                                 value=f"{v:g}", **at(key))
    for key, v in [("target", t.target)] + [(f"type_targets.{k}", v) for k, v in t.type_targets.items()]:
        if v is not None and v < 0:
            yield Issue.make("negative", value=f"{v:g}", **at(key))


def _row_no(locate: Locate, section: str, index: int) -> int:
    """The row (sheet) or line (TOML) a record stands on, for 'first seen at' in messages."""
    place = locate(section, index, "name")
    if place.get("cell"):
        return int(re.sub(r"[^0-9]", "", place["cell"]))
    return place.get("line") or index + 1


# --- the built-in roster ----------------------------------------------------------------------------


def roster_from_data(data: dict, file: str, lines: dict, form_names: dict[str, str]) -> Roster:
    """Build a Roster from the TOML shape of default_plan.toml (rules listed separately, one per type × form)."""
    try:
        types = {name: {"name": name, "rules": {}} for name in data.get("unit_types", [])}
        for name, n in data.get("min_visits", {}).items():
            types.setdefault(name, {"name": name, "rules": {}})["min_visits"] = n
        for r in data.get("rules", []):
            rule = dict(r)
            ut, form_id = rule.pop("unit_type"), rule.pop("form_id")
            types.setdefault(ut, {"name": ut, "rules": {}})["rules"][form_id] = rule
        roster = Roster.model_validate(
            {"unit_types": list(types.values()), "units": data.get("units", []), "tasks": data.get("tasks", [])}
        )
    except ValidationError as exc:
        raise ConfigError(pydantic_issues(exc, file=file, lines=lines, strip=())) from None
    except (KeyError, TypeError) as exc:
        raise ConfigError(Issue.make("missing-key", file=file, key=str(exc), field=str(exc))) from None

    def locate(section: str, index: int, fld: str) -> dict:
        return {"file": file, "line": find_line((section, index), lines), "field": f"{section}[{index}].{fld}"}

    issues = list(check_roster(roster, locate, form_names))
    if any(i.severity == "error" for i in issues):
        raise ConfigError(issues)
    return roster


def default_roster(registry: SpecRegistry) -> Roster:
    """The plan's own roster and targets (tuanjian_xlsx/data/default_plan.toml)."""
    path = DATA / "default_plan.toml"
    data, lines = load_toml(path)
    return roster_from_data(data, path.name, lines, form_names(registry))


def form_names(registry: SpecRegistry) -> dict[str, str]:
    return {s.form_id: s.sheet_name for s in registry.latest()}
