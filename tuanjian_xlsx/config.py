"""Workspace configuration: settings (tuanjian.toml) and the roster with its targets (名单与目标.xlsx).

The plan's own roster, deadlines and targets are data files in tuanjian_xlsx/data/; nothing here is a constant of the plan.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Callable, Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from .issues import KINDS_ZH, ConfigError, Issue
from .specs import SpecRegistry
from .tomlfile import find_line, load_toml, pydantic_issues

DATA = Path(__file__).resolve().parent / "data"
SETTINGS_FILE = "tuanjian.toml"

Cadence = Literal["monthly", "quarterly", "yearly", "none"]
Kind = Literal["ratio", "count", "yesno", "qualitative"]
Comparison = Literal[">=", "="]
CADENCE_ZH = {"monthly": "按月", "quarterly": "按季", "yearly": "按年", "none": "不报送"}
COMPARISON_ZH = {">=": "≥", "=": "="}
_LIST_SPLIT = re.compile(r"[、,，;；/\s]+")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


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
    """A date from a cell or TOML: date objects, Excel-style text (2020-11-30, 2020/11/30, 2020.11.30, 2020年11月30日)."""
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
    rules: dict[str, "DueRule"] = {}
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
        if v is not None and not _EMAIL.match(v):
            raise PydanticCustomError("bad-email", "邮箱格式不对", {"value": v})
        return v


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
        if self.kind == "ratio":
            return f"完成数：{self.numerator_label}；基数：{self.denominator_label}"
        if self.kind == "count":
            return f"完成数：{self.indicator}"
        if self.kind == "yesno":
            return "完成值填“是”或“否”"
        return "在“进展情况”中填写"

    def target_text(self, unit_type: str | None = None) -> str:
        sign = "≥" if self.comparison == ">=" else ""

        def show(v: float) -> str:
            if self.kind == "ratio":
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

    def units_filing(self, form_id: str) -> list[Unit]:
        return [u for u in self.units if self.rule(u.type, form_id)]

    def tasks_for(self, unit_type: str | None) -> list[Task]:
        return [t for t in self.tasks if unit_type is None or unit_type in t.unit_types]


# --- cross checks, shared by the Excel roster and the built-in data -------------------------------

Locate = Callable[[str, int, str], dict]  # (section, index, field) -> Issue place kwargs


def check_roster(roster: Roster, locate: Locate, form_names: dict[str, str]) -> Iterator[Issue]:
    """Everything about a roster that one row alone cannot tell: duplicates, unknown types, missing targets."""
    types = roster.type_names
    if not roster.units:
        yield Issue.make("no-units", **locate("units", -1, "name"))
    seen_t: dict[str, int] = {}
    for i, t in enumerate(roster.unit_types):
        if t.name in seen_t:
            yield Issue.make("duplicate-unit", value=t.name, first=seen_t[t.name], **locate("unit_types", i, "name"))
        seen_t.setdefault(t.name, _row_no(locate, "unit_types", i))
        for form_id, name in form_names.items():
            if form_id not in t.rules:
                yield Issue.make("missing-rule", unit_type=t.name, form=name, **locate("unit_types", i, "name"))
    seen_id: dict[str, int] = {}
    seen_name: dict[str, int] = {}
    for i, u in enumerate(roster.units):
        for key, seen, fld in ((u.id, seen_id, "id"), (u.name, seen_name, "name")):
            if key in seen:
                yield Issue.make("duplicate-unit", value=key, first=seen[key], **locate("units", i, fld))
            seen.setdefault(key, _row_no(locate, "units", i))
        if u.type not in types:
            yield Issue.make("unknown-unit-type", value=u.type, known=types, **locate("units", i, "type"))
    seen_code: dict[str, int] = {}
    for i, t in enumerate(roster.tasks):
        if t.code in seen_code:
            yield Issue.make("duplicate-task", value=t.code, first=seen_code[t.code], **locate("tasks", i, "code"))
        seen_code.setdefault(t.code, _row_no(locate, "tasks", i))
        yield from _check_task(t, types, lambda f, i=i: locate("tasks", i, f))


def _check_task(t: Task, types: list[str], at: Callable[[str], dict]) -> Iterator[Issue]:
    if not t.unit_types:
        yield Issue.make("task-no-unit-types", task=t.code, **at("unit_types"))
    for ut in t.unit_types:
        if ut not in types:
            yield Issue.make("unknown-unit-type", value=ut, known=types, **at("unit_types"))
    for ut in t.type_targets:
        if ut not in types:
            yield Issue.make("unknown-unit-type", value=ut, known=types, **at(f"type_targets.{ut}"))
    if t.kind == "ratio" and not (t.numerator_label and t.denominator_label):
        yield Issue.make("ratio-needs-labels", task=t.code, **at("numerator_label"))
    if t.kind in ("ratio", "count"):
        lacking = [ut for ut in t.unit_types if t.target_for(ut) is None]
        if lacking:
            detail = "、".join(lacking) + " 没有目标值"
            yield Issue.make("task-without-target", task=t.code, kind=KINDS_ZH[t.kind], detail=detail, **at("target"))
    if t.kind == "ratio":
        for key, v in [("target", t.target)] + [(f"type_targets.{k}", v) for k, v in t.type_targets.items()]:
            if v is not None and not 0 <= v <= 1:
                yield Issue.make("ratio-target-range", task=t.code, value=f"{v:g}", **at(key))
    for key, v in [("target", t.target)] + [(f"type_targets.{k}", v) for k, v in t.type_targets.items()]:
        if v is not None and v < 0:
            yield Issue.make("negative", value=f"{v:g}", **at(key))


def _row_no(locate: Locate, section: str, index: int) -> int:
    """The row (sheet) or line (TOML) a record stands on, for 'first seen at' in messages."""
    place = locate(section, index, "name")
    if place.get("cell"):
        return int(re.sub(r"[^0-9]", "", place["cell"]))
    return place.get("line") or index + 1


# --- settings (tuanjian.toml) ---------------------------------------------------------------------


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Organisation(_Section):
    name: Annotated[str, Field(min_length=1)]
    department: Annotated[str, Field(min_length=1)]
    report_mailbox: str = ""
    publicity_mailbox: str = ""


class Folders(_Section):
    templates: str = "模板"
    outbox: str = "下发"
    inbox: str = "收件箱"
    returns: str = "退回"
    master: str = "汇总"


class RosterFile(_Section):
    file: str = "名单与目标.xlsx"


class FormUse(_Section):
    enabled: bool = True
    current_version: Annotated[int, Field(ge=1)] = 1
    accepted_versions: list[Annotated[int, Field(ge=1)]] = [1]
    accepted_until: dict[int, dt.date] = {}  # an older version is received until this day (inclusive)


class Protection(_Section):
    password: str = ""


class Mail(_Section):
    """Sending (SMTP); the password never sits in this file, only in the environment variable named here."""

    smtp_host: str = ""
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = 465
    smtp_security: Literal["ssl", "starttls", "none"] = "ssl"
    smtp_user: str = ""
    password_env: str = "TUANJIAN_SMTP_PASSWORD"
    sender: str = ""  # From address; empty = smtp_user
    imap_host: str = ""
    imap_port: Annotated[int, Field(ge=1, le=65535)] = 993
    imap_security: Literal["ssl", "starttls", "none"] = "ssl"
    imap_user: str = ""
    imap_password_env: str = "TUANJIAN_IMAP_PASSWORD"
    imap_folder: str = "INBOX"


class Reporting(_Section):
    start: str = ""  # first period counted as due, e.g. 2026-01; empty = January of the as-of year

    @field_validator("start")
    @classmethod
    def _period(cls, v: str) -> str:
        from .periods import parse_period

        if v and (parse_period(v) is None or parse_period(v).kind != "month"):
            raise ValueError("应为月份，如 2026-01")
        return v


class Settings(_Section):
    organisation: Organisation
    folders: Folders = Folders()
    roster: RosterFile = RosterFile()
    forms: dict[str, FormUse]
    protection: Protection = Protection()
    reporting: Reporting = Reporting()
    mail: Mail = Mail()


FOLDER_KEYS = ("templates", "outbox", "inbox", "returns", "master")


def load_settings(path: Path, registry: SpecRegistry) -> Settings:
    """Read and check tuanjian.toml; every problem is reported at once, with key and line."""
    data, lines = load_toml(path)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(pydantic_issues(exc, file=path.name, lines=lines, strip=())) from None
    issues = list(_check_forms(settings, registry, path.name, lines))
    if any(i.severity == "error" for i in issues):
        raise ConfigError(issues)
    return settings


def _check_forms(settings: Settings, registry: SpecRegistry, file: str, lines) -> Iterator[Issue]:
    known = registry.form_ids
    for form_id, use in settings.forms.items():
        loc = ("forms", form_id)
        if form_id not in known:
            yield Issue.make("unknown-form", file=file, line=find_line(loc, lines), field=f"forms.{form_id}",
                             value=form_id, known=known)
            continue
        versions = registry.versions(form_id)
        for key, vs in (("current_version", [use.current_version]), ("accepted_versions", use.accepted_versions)):
            for v in vs:
                if v not in versions:
                    yield Issue.make("unknown-version", file=file, line=find_line(loc + (key,), lines),
                                     field=f"forms.{form_id}.{key}", form=form_id, version=v)


def default_settings(registry: SpecRegistry) -> Settings:
    return load_settings(DATA / SETTINGS_FILE, registry)


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


# --- the workspace --------------------------------------------------------------------------------


@dataclass
class Workspace:
    """Settings + roster + specs; `root` is None for the built-in default."""

    root: Path | None
    settings: Settings
    roster: Roster
    registry: SpecRegistry

    @classmethod
    def builtin(cls, registry: SpecRegistry | None = None) -> "Workspace":
        registry = registry or SpecRegistry()
        return cls(None, default_settings(registry), default_roster(registry), registry)

    @classmethod
    def load(cls, root: Path, registry: SpecRegistry | None = None) -> "Workspace":
        """Load a workspace folder; all configuration problems come together in one ConfigError."""
        from .roster_book import read_roster_book

        registry = registry or SpecRegistry()
        root = Path(root)
        settings_path = root / SETTINGS_FILE
        if not settings_path.exists():
            raise ConfigError(Issue.make("file-missing", file=SETTINGS_FILE,
                                         detail=f"{settings_path}（这是工作区文件夹吗？可先运行 tuanjian init）"))
        settings = load_settings(settings_path, registry)
        roster = read_roster_book(root / settings.roster.file, registry)
        return cls(root, settings, roster, registry)

    def folder(self, key: str) -> Path:
        if self.root is None:
            raise ValueError("the built-in default has no folders")
        return self.root / getattr(self.settings.folders, key)

    def current_specs(self):
        return [self.registry.get(f, u.current_version) for f, u in self.settings.forms.items() if u.enabled]

    def distributed_on(self, form_id: str, version: int) -> str | None:
        """The day a version of a form was first distributed from this workspace, if the ledger knows."""
        import sqlite3

        ledger = self.root / ".tuanjian" / "ledger.sqlite" if self.root else None
        if ledger is None or not ledger.exists():
            return None
        try:
            con = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
            row = con.execute("SELECT value FROM meta WHERE key = ?", (f"first-distributed:{form_id}:{version}",)).fetchone()
            con.close()
        except sqlite3.Error:
            return None
        return row[0] if row else None

    def spec(self, form_id: str):
        """The version of a form this workspace distributes now."""
        use = self.settings.forms.get(form_id)
        return self.registry.get(form_id, use.current_version if use else None)
