"""Form specs: pydantic models of one version of a form, loaded from workbook_templates/<form_id>/vN.toml."""

from __future__ import annotations

import hashlib
import json
import os
import re
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from .cells import parse_range
from .fieldtypes import FIELD_TYPES, TRACKER_FORMULAS
from .issues import ConfigError, Issue
from .passport import field_name
from .tomlfile import load_toml, pydantic_issues

if TYPE_CHECKING:  # built from data, so a type checker sees plain text; pydantic checks the entries at run time
    FieldType = str
    TrackerFormula = str
else:
    FieldType = Literal[tuple(FIELD_TYPES)]  # the entries of fieldtypes.FIELD_TYPES
    TrackerFormula = Literal[TRACKER_FORMULAS]
TYPE_ZH = {t.id: t.zh for t in FIELD_TYPES.values()}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FormField(_Strict):
    """One input of the form: its exact label, its type, where label and input stand."""

    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    label: str
    display: str | None = None  # the label cell's text when it differs (line breaks, spacing, colon)
    type: FieldType
    required: bool = False
    choices: list[str] = []
    choices_from: Literal["units"] | None = None
    header: bool = False  # 报送单位/报送期…: prefilled and locked in a distributed copy
    window: Literal["filing", "period"] = "filing"  # a date: within the period itself, or up to after it was due
    first_week: bool = False  # a date that should fall in 走基层周, the month's first week (a warning if not)
    help: str = ""
    label_range: str
    input_range: str

    @field_validator("label_range", "input_range")
    @classmethod
    def _is_range(cls, v: str) -> str:
        parse_range(v)
        return v.upper()

    @model_validator(mode="after")
    def _choices(self) -> FormField:
        if self.type == "choice" and not (self.choices or self.choices_from):
            raise ValueError(f"选项字段“{self.label}”没有 choices 或 choices_from")
        if self.type != "choice" and (self.choices or self.choices_from):  # 是否 (yes_no) brings its own
            raise ValueError(f"字段“{self.label}”不是选项类型，不能有 choices")
        return self

    @property
    def name(self) -> str:
        """The defined name that points at the input cell."""
        return field_name(self.id)

    @property
    def label_text(self) -> str:
        return self.display if self.display is not None else self.label

    @property
    def input_cell(self) -> str:
        return self.input_range.split(":")[0]


def _range(v: str | None) -> str | None:
    if v is not None:
        parse_range(v)
        return v.upper()
    return v


class Text(_Strict):
    range: str
    text: str
    style: Literal["attachment", "title", "label", "header"] = "label"

    _range = field_validator("range")(lambda v: _range(v))


class Layout(_Strict):
    columns: list[float]
    rows: dict[int, float] = {}
    self_check: str
    print_area: str | None = None  # a table form computes it from its rows
    table: str | None = None  # the bordered grid of a one-record form
    due: str | None = None  # where a distributed copy shows its deadline (截止日期)
    texts: list[Text] = []

    _ranges = field_validator("self_check", "print_area", "table", "due")(lambda v: _range(v))


class Column(_Strict):
    """A column of a table form: a locked task attribute, an input, or a formula.

    The builder follows each key: `source` picks the task attribute shown; `type` is an input column's field
    type, which a task's kind may narrow or set aside (fieldtypes.TaskKind.inputs: a count's 完成数 is an integer,
    a 是否 task's is 是/否, a qualitative task has none); `formula` names the row formula of the task's kind
    (fieldtypes.TASK_KINDS), "—" where the kind has none."""

    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    label: str
    width: float
    role: Literal["task", "input", "formula"]
    source: Literal["code", "project", "content", "indicator", "basis", "target_text", "target", "deadline",
                    "department", "owner"] | None = None  # task attribute, for role = task
    type: FieldType | None = None  # for role = input
    formula: TrackerFormula | None = None  # for role = formula

    @model_validator(mode="after")
    def _role(self) -> Column:
        need = {"task": "source", "input": "type", "formula": "formula"}[self.role]
        if getattr(self, need) is None:
            raise ValueError(f"列“{self.label}”的 role={self.role} 需要 {need}")
        return self


class Migration(_Strict):
    """How a filled workbook of the previous version becomes this one."""

    from_version: Annotated[int, Field(ge=1)]
    renamed: dict[str, str] = {}  # old field id -> new field id
    added: dict[str, str] = {}  # new field id -> default ("" = left blank for the unit to fill)
    removed: list[str] = []


SheetName = Annotated[str, Field(min_length=1, max_length=31, pattern=r"^[^\[\]:*?/\\']+$")]


class Sum(_Strict):
    """A number field summed per unit and period in the statistics sheet."""

    field: str
    heading: str
    width: float = 6


class Statistics(_Strict):
    """A sheet of formulas counting the detail sheet's records per unit and period.

    `rows = "unit_period"`: a row per unit and period with the count, the `sums`, and — when `minimum` names a
    unit-type attribute of the roster (records owed per period) — that number and 是否达标. `rows = "unit"`: a row
    per unit, a count column per period, and `note` under the table."""

    sheet: SheetName
    rows: Literal["unit_period", "unit"] = "unit"
    period_heading: str = "报送期"
    count_heading: str = "份数"
    sums: list[Sum] = []
    minimum: str | None = None
    minimum_heading: str = "应报次数"
    note: str = ""

    @model_validator(mode="after")
    def _layout(self) -> Statistics:
        if self.rows == "unit" and (self.sums or self.minimum):
            raise ValueError("rows = \"unit\" 的统计表只计份数，不能有 sums 或 minimum")
        return self


class Master(_Strict):
    """The form's sheets in the master (汇总表), after 总览 and 报送情况 (every form has its block there).

    A one-record form: `detail_sheet` (a row per record that counts, every field of every version) and optionally
    `statistics` over it. A table form: `progress_sheet` (a row per task and unit) and `summary_sheet` (a row per
    task, city-wide)."""

    detail_sheet: SheetName | None = None
    statistics: Statistics | None = None
    progress_sheet: SheetName | None = None
    summary_sheet: SheetName | None = None

    @property
    def sheet_names(self) -> list[str]:
        names = [self.detail_sheet, self.statistics.sheet if self.statistics else None, self.progress_sheet,
                 self.summary_sheet]
        return [n for n in names if n]


# How a form is used — its place in the plan, which records a later file replaces, the master's sheets, the line in
# 填报说明 — does not change the workbook: these keys are left out of the fingerprint a filled file carries.
USE_KEYS = frozenset({"order", "supersede_by", "close_names", "instructions", "master"})


class _SpecBase(_Strict):
    form_id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    version: Annotated[int, Field(ge=1)]
    title: str
    attachment: str = ""
    sheet_name: Annotated[str, Field(min_length=1, max_length=31)]
    orientation: Literal["portrait", "landscape"] = "portrait"
    fields: list[FormField]
    layout: Layout
    migration: Migration | None = None
    order: int | None = None  # the form's place in the plan's list of forms (unset: after those that have one)
    supersede_by: list[str] = []  # per unit and period, a later file replaces the earlier records with the same
    #                               values of these fields; empty: it replaces the earlier file as a whole
    close_names: str | None = None  # a text field whose near-identical spellings in new records are pointed out
    instructions: str = ""  # a line added to the form's entry in 填报说明.txt
    master: Master = Master()

    @model_validator(mode="after")
    def _unique(self):
        for attr in ("id", "label"):
            seen: set[str] = set()
            for f in self.fields:
                v = getattr(f, attr)
                if v in seen:
                    raise ValueError(f"字段的 {attr} 重复：{v}")
                seen.add(v)
        ids = {f.id for f in self.fields}
        for required in ("unit", "period"):
            if required not in ids:
                raise ValueError(f"每张表都须有表头字段 {required}（报送单位/报送期）")
        return self

    @model_validator(mode="after")
    def _use(self):
        ids = {f.id for f in self.fields}
        named = [*self.supersede_by, *([self.close_names] if self.close_names else []),
                 *(s.field for s in (self.master.statistics.sums if self.master.statistics else []))]
        unknown = [n for n in named if n not in ids]
        if unknown:
            raise ValueError("没有这些字段：" + "、".join(unknown))
        return self

    @cached_property
    def fingerprint(self) -> str:
        """sha256 of the normalised spec: comments, key order and spacing of the TOML do not count."""
        return _digest(self.model_dump(mode="json", exclude=set(USE_KEYS)))

    @cached_property
    def digest(self) -> str:
        """sha256 of the whole normalised spec, how the form is used included (what the master depends on)."""
        return _digest(self.model_dump(mode="json"))

    def field(self, field_id: str) -> FormField:
        for f in self.fields:
            if f.id == field_id:
                return f
        raise KeyError(field_id)

    @property
    def display_name(self) -> str:
        return f"{self.attachment} {self.title}".strip()

    @property
    def file_stem(self) -> str:
        return f"{self.attachment}_{self.title}" if self.attachment else self.title


def _digest(doc: dict) -> str:
    text = json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class FormSpec(_SpecBase):
    """A one-record form laid out like the printed attachment."""

    kind: Literal["form"] = "form"

    @model_validator(mode="after")
    def _master(self) -> FormSpec:
        if self.master.progress_sheet or self.master.summary_sheet:
            raise ValueError("progress_sheet/summary_sheet 只用于表格式报表（kind = \"table\"）")
        if self.master.statistics and not self.master.detail_sheet:
            raise ValueError("统计表按明细表计数：须先有 detail_sheet")
        return self

    @model_validator(mode="after")
    def _grid(self) -> FormSpec:
        if not (self.layout.table and self.layout.print_area):
            raise ValueError("表单须在 [layout] 中给出 table 和 print_area")
        cells: dict[tuple[int, int], str] = {}
        for f in self.fields:
            for ref in (f.label_range, f.input_range):
                r1, c1, r2, c2 = parse_range(ref)
                for rc in ((r, c) for r in range(r1, r2 + 1) for c in range(c1, c2 + 1)):
                    if rc in cells:
                        raise ValueError(f"字段“{f.label}”与“{cells[rc]}”占用了同一单元格")
                    cells[rc] = f.label
        return self


class TableSpec(_SpecBase):
    """A table form: one row per task of the roster (the target tracker)."""

    kind: Literal["table"]
    header_row: Annotated[int, Field(ge=1)]  # 1-based row of the column headings; tasks follow
    unit_type_range: str  # where the reporting unit's type is shown (a formula in a blank template)
    columns: list[Column]

    @model_validator(mode="after")
    def _columns(self) -> TableSpec:
        ids = [c.id for c in self.columns]
        if len(ids) != len(set(ids)):
            raise ValueError("列 id 重复")
        missing = {"code", "target", "done", "base", "rate", "met", "progress", "problems"} - set(ids)
        if missing:
            raise ValueError("台账缺少这些列：" + "、".join(sorted(missing)))
        return self

    @model_validator(mode="after")
    def _use_of_rows(self) -> TableSpec:
        if self.supersede_by or self.close_names:
            raise ValueError("表格式报表按整份替换：不能有 supersede_by 或 close_names")
        if self.master.detail_sheet or self.master.statistics:
            raise ValueError("表格式报表在汇总表中用 progress_sheet/summary_sheet")
        if bool(self.master.progress_sheet) != bool(self.master.summary_sheet):
            raise ValueError("progress_sheet 与 summary_sheet 须同时给出")
        return self

    _type_range = field_validator("unit_type_range")(lambda v: _range(v))

    def column(self, col_id: str) -> Column:
        for c in self.columns:
            if c.id == col_id:
                return c
        raise KeyError(col_id)

    def col_index(self, col_id: str) -> int:
        return [c.id for c in self.columns].index(col_id)


Spec = Annotated[FormSpec | TableSpec, Field(discriminator="kind")]
_SPEC = TypeAdapter(Spec)


def specs_root() -> Path:
    """workbook_templates/: inside the installed package, or beside it in a source checkout."""
    here = Path(__file__).resolve().parent
    for cand in (here / "workbook_templates", here.parent / "workbook_templates"):
        if cand.is_dir():
            return cand
    raise FileNotFoundError("workbook_templates")


_VERSION_FILE = re.compile(r"^v([0-9]+)\.toml$")


def is_spec_file(path: Path) -> bool:
    """A form folder's file the registry reads as one version of the form (vN.toml)."""
    return bool(_VERSION_FILE.match(path.name))


def load_spec(path: Path) -> FormSpec | TableSpec:
    data, lines = load_toml(path)
    try:
        spec = _SPEC.validate_python(data)
    except Exception as exc:  # pydantic.ValidationError
        raise ConfigError(pydantic_issues(exc, file=path.name, lines=lines)) from None
    expected = f"v{spec.version}.toml"
    if path.name != expected or path.parent.name != spec.form_id:
        raise ConfigError(
            Issue.make("bad-value", file=path.name, key="form_id/version", detail=f"文件应位于 {spec.form_id}/{expected}")
        )
    return spec


FORMS_PATH = "TUANJIAN_FORMS"  # more spec folders, separated like PATH: forms of one's own beside the plan's


def extra_spec_dirs() -> list[Path]:
    """The folders named by the TUANJIAN_FORMS environment variable, each holding <form_id>/vN.toml like
    workbook_templates/."""
    return [Path(p) for p in os.environ.get(FORMS_PATH, "").split(os.pathsep) if p.strip()]


class SpecRegistry:
    """Every spec version found under a root and the extra folders (by default those TUANJIAN_FORMS names), keyed by
    (form_id, version). A form's versions live in one folder."""

    def __init__(self, root: Path | None = None, extra_dirs: list[Path] | None = None):
        self.root = root or specs_root()
        self.specs: dict[tuple[str, int], FormSpec | TableSpec] = {}
        self.folders: dict[str, Path] = {}  # form_id -> the folder holding its versions
        self.bases = [Path(self.root), *(extra_spec_dirs() if extra_dirs is None else extra_dirs)]
        for base in self.bases:
            for form_dir in sorted(p for p in Path(base).iterdir() if p.is_dir()):
                self._load_form(form_dir)

    def _load_form(self, form_dir: Path) -> None:
        for f in sorted(form_dir.iterdir()):
            if not is_spec_file(f):
                continue
            spec = load_spec(f)
            where = self.folders.setdefault(spec.form_id, form_dir)
            if where != form_dir:
                raise ConfigError(Issue.make("bad-value", file=f.name, key="form_id",
                                             detail=f"报表 {spec.form_id} 已在 {where} 中定义"))
            self.specs[(spec.form_id, spec.version)] = spec

    @property
    def form_ids(self) -> list[str]:
        """In the plan's order (each form's latest `order`), forms without one last, by id."""
        def place(form_id: str) -> tuple:
            order = self.get(form_id).order
            return (order is None, order or 0, form_id)

        return sorted({k[0] for k in self.specs}, key=place)

    def versions(self, form_id: str) -> list[int]:
        return sorted(v for f, v in self.specs if f == form_id)

    def get(self, form_id: str, version: int | None = None) -> FormSpec | TableSpec:
        if version is None:
            version = self.versions(form_id)[-1]
        return self.specs[(form_id, version)]

    def latest(self) -> list[FormSpec | TableSpec]:
        return [self.get(f) for f in self.form_ids]

    def template_path(self, spec: FormSpec | TableSpec) -> Path:
        return self.folders[spec.form_id] / f"v{spec.version}.xlsx"
