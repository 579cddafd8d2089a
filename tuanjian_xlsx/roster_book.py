"""名单与目标.xlsx: the roster, unit types with due rules, and target tasks, kept by staff in Excel."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ValidationError

from . import guard
from .assess_rules import ITEMS_ZH, Rule, Rules, builtin_late_credit, check_rules, default_rules, resolved
from .cells import cell_name, col_to_letters
from .fieldtypes import KINDS_ZH, TASK_KINDS
from .issues import ConfigError, Issue
from .roster import CADENCE_ZH, COMPARISON_ZH, Roster, Task, Unit, UnitType, check_roster, form_names
from .specs import SpecRegistry
from .tomlfile import pydantic_detail
from .xlsxio import close_workbook, new_workbook

SHEET_UNITS = "单位名单"
SHEET_TYPES = "单位类型"
SHEET_TASKS = "目标任务"
SHEET_RULES = "考核细则"
SHEET_HELP = "说明"
MAX_ROWS = 500  # rows left open for staff to add to


@dataclass(frozen=True)
class Col:
    key: str  # dotted path into the record: 'name', 'rules.visit_report.day', 'type_targets.县区团委'
    header: str
    width: float
    required: bool = True
    note: str = ""


def unit_cols() -> list[Col]:
    return [
        Col("id", "单位编号", 12, note="英文字母、数字或下划线，如 yuanhui；定下后不要改"),
        Col("name", "单位名称", 34),
        Col("type", "单位类型", 14, note="从下拉列表选，列表来自“单位类型”表"),
        Col("email", "电子邮箱", 26, required=False),
        Col("contact", "联系人", 10, required=False),
        Col("phone", "联系电话", 16, required=False),
        Col("start", "起报期", 11, required=False,
            note="年中新加入的单位从哪一期起应报，如 2026-07 或 2026年7月（此前各期不列为未报、不催报）；留空 = 与其他单位相同"),
        Col("aliases", "别名", 24, required=False,
            note="单位的其他叫法（简称、旧名），多个用、隔开；报表的“报送单位”写成这些名称也认作本单位"),
    ]


def type_cols(registry: SpecRegistry) -> list[Col]:
    cols = [Col("name", "单位类型", 14),
            Col("min_visits", "每月至少走访次数", 12, required=False,
                note="走基层每月至少几次（年底考核“走基层”按它计分）；留空或 0 = 不考核走访次数，该项对此类型不适用")]
    for form_id, name in form_names(registry).items():
        cols += [
            Col(f"rules.{form_id}.cadence", f"{name}·报送周期", 13, note="按月 / 按季 / 按年 / 不报送"),
            Col(f"rules.{form_id}.day", f"{name}·截止日", 11, note="截止日期是几号（1～31）"),
            Col(f"rules.{form_id}.month_offset", f"{name}·顺延月数", 11,
                note="0 = 报送期最后一个月当月截止；1 = 次月截止"),
        ]
    return cols


def task_cols(type_names: list[str]) -> list[Col]:
    cols = [
        Col("code", "编号", 7),
        Col("project", "工程", 11, required=False),
        Col("content", "任务内容", 36, required=False),
        Col("indicator", "量化指标", 24),
        Col("kind", "指标类型", 9, note=" / ".join(KINDS_ZH.values())),
        Col("numerator_label", "完成数口径", 22, required=False, note="比率、增长指标的分子，如“已建团的非公企业数”“活跃度较基期增加数”"),
        Col("denominator_label", "基数口径", 22, required=False, note="比率、增长指标的分母，如“已建立党组织的非公企业数”“基期活跃度”"),
        Col("comparison", "比较", 6, required=False, note="≥ 或 ="),
        Col("target", "目标值", 8, required=False, note="比率、增长填百分数（如 40%），数量填个数；各类型不同时填右侧各列"),
    ]
    cols += [Col(f"type_targets.{t}", f"目标值·{t}", 10, required=False) for t in type_names]
    cols += [
        Col("unit_types", "报送单位类型", 26, note="哪些单位类型填报此项，用顿号分隔"),
        Col("deadline", "完成时限", 12, required=False),
        Col("department", "责任部室", 9, required=False),
        Col("owner", "责任人", 9, required=False),
    ]
    return cols


def rule_cols() -> list[Col]:
    return [
        Col("item", "考核项目", 10, note="从下拉列表选：" + "、".join(ITEMS_ZH.values()) + "；每项一行"),
        Col("points", "满分", 7, note="本项满分；“加减分”填上限（5 即 ±5 分）；“考核范围”不填"),
        Col("late_credit", "逾期计分", 8, required=False,
            note=f"只用于“报送及时”：逾期报送的一期按几期计（0～1）；留空按 {builtin_late_credit():g}"),
        Col("forms", "依据报表", 14, required=False,
            note="按哪张表计分（如 走基层报告单）；“报送及时”不填 = 全部在用的报表"),
        Col("task", "依据任务", 8, required=False, note="“调研报告”：目标任务中调研报告篇数的编号（如 3-2）"),
        Col("unit_types", "适用单位类型", 22, required=False,
            note="用顿号分隔；不填 = 全部参加考核的单位类型。“考核范围”一行写参加年底考核的单位类型"),
        Col("note", "说明", 60, required=False, note="计分方法，原样写进年度考核表的“评分说明”"),
    ]


# --- writing --------------------------------------------------------------------------------------


def write_roster_book(roster: Roster, registry: SpecRegistry, rules: Rules | None = None) -> bytes:
    """The workbook staff edit: headers locked, rows open, dropdowns from the type list; 考核细则 from `rules`
    (default: the built-in rules)."""
    buf = io.BytesIO()
    wb = new_workbook(buf, title="名单与目标")
    fmt = _formats(wb)
    types = roster.type_names

    ws = _sheet(wb, SHEET_UNITS, unit_cols(), fmt)
    ws.set_column(0, 0, unit_cols()[0].width, fmt["text"])  # 单位编号 stays text as typed
    for r, u in enumerate(roster.units, start=1):
        for c, v in enumerate([u.id, u.name, u.type, u.email, u.contact, u.phone, u.start, u.aliases]):
            ws.write_string(r, c, v or "", fmt["text" if c == 0 else "cell"])
    ws.data_validation(1, 2, MAX_ROWS, 2, _list_from(f"={SHEET_TYPES}!$A$2:$A${MAX_ROWS + 1}", "单位类型"))

    tcols = type_cols(registry)
    ws = _sheet(wb, SHEET_TYPES, tcols, fmt)
    for r, ut in enumerate(roster.unit_types, start=1):
        ws.write_string(r, 0, ut.name, fmt["cell"])
        if ut.min_visits is None:
            ws.write_blank(r, 1, None, fmt["int"])
        else:
            ws.write_number(r, 1, ut.min_visits, fmt["int"])
        for c, col in enumerate(tcols[2:], start=2):
            _, form_id, attr = col.key.split(".")
            rule = ut.rules.get(form_id)
            if rule is None:
                ws.write_blank(r, c, None, fmt["cell"])
            elif attr == "cadence":
                ws.write_string(r, c, CADENCE_ZH[rule.cadence], fmt["cell"])
            else:
                ws.write_number(r, c, getattr(rule, attr), fmt["int"])
    for c, col in enumerate(tcols):
        if col.key.endswith(".cadence"):
            ws.data_validation(1, c, MAX_ROWS, c, _inline(list(CADENCE_ZH.values()), col.header))
        elif col.key.endswith(".day"):
            ws.data_validation(1, c, MAX_ROWS, c, _whole(1, 31, col.header))
        elif col.key.endswith(".month_offset"):
            ws.data_validation(1, c, MAX_ROWS, c, _whole(0, 12, col.header))
        elif col.key == "min_visits":
            ws.data_validation(1, c, MAX_ROWS, c, _whole(0, 31, col.header))

    kcols = task_cols(types)
    ws = _sheet(wb, SHEET_TASKS, kcols, fmt)
    ws.set_column(0, 0, kcols[0].width, fmt["text"])  # 编号 like 2-3 must not turn into a date
    for r, t in enumerate(roster.tasks, start=1):
        for c, col in enumerate(kcols):
            _write_task_cell(ws, r, c, col, t, fmt)
    for c, col in enumerate(kcols):
        if col.key == "kind":
            ws.data_validation(1, c, MAX_ROWS, c, _inline(list(KINDS_ZH.values()), col.header))
        elif col.key == "comparison":
            ws.data_validation(1, c, MAX_ROWS, c, _inline(list(COMPARISON_ZH.values()), col.header))
        elif col.key == "target" or col.key.startswith("type_targets."):
            ws.data_validation(1, c, MAX_ROWS, c, {"validate": "decimal", "criteria": ">=", "value": 0,
                                                   "error_title": col.header, "error_message": "请填写不小于 0 的数"})
        elif col.key == "deadline":
            ws.data_validation(1, c, MAX_ROWS, c, {"validate": "date", "criteria": ">=",
                                                   "value": dt.date(2000, 1, 1),
                                                   "error_title": col.header, "error_message": "请填写日期，如 2026-12-31"})

    _rules_sheet(wb, fmt, roster, registry, rules or default_rules(registry))
    _help_sheet(wb, fmt)
    return close_workbook(wb, buf)


def _rules_sheet(wb, fmt, roster: Roster, registry: SpecRegistry, rules: Rules) -> None:
    cols = rule_cols()
    ws = _sheet(wb, SHEET_RULES, cols, fmt)
    sheet_of = form_names(registry)
    for r, rule in enumerate(rules.rows, start=1):
        types = rule.unit_types or (roster.type_names if rule.item == "scope" else [])
        values = {"item": rule.name, "points": rule.points, "late_credit": rule.late_credit,
                  "forms": "、".join(sheet_of.get(f, f) for f in rule.forms), "task": rule.task or "",
                  "unit_types": "、".join(types), "note": rule.note}
        for c, col in enumerate(cols):
            v = values[col.key]
            if col.key in ("points", "late_credit"):
                ws.write_blank(r, c, None, fmt["num"]) if v is None else ws.write_number(r, c, v, fmt["num"])
            else:
                ws.write_string(r, c, v, fmt["text" if col.key == "task" else "cell"])
    for c, col in enumerate(cols):
        if col.key == "item":
            ws.data_validation(1, c, MAX_ROWS, c, _inline(list(ITEMS_ZH.values()), col.header))
        elif col.key == "points":
            ws.data_validation(1, c, MAX_ROWS, c, {"validate": "decimal", "criteria": ">=", "value": 0,
                                                   "error_title": col.header, "error_message": "请填写不小于 0 的数"})
        elif col.key == "late_credit":
            ws.data_validation(1, c, MAX_ROWS, c, {"validate": "decimal", "criteria": "between", "minimum": 0,
                                                   "maximum": 1, "error_title": col.header,
                                                   "error_message": "请填写 0～1 之间的数，如 0.5"})


def _write_task_cell(ws, r: int, c: int, col: Col, t: Task, fmt) -> None:
    key = col.key
    if key == "kind":
        ws.write_string(r, c, KINDS_ZH[t.kind], fmt["cell"])
    elif key == "comparison":
        ws.write_string(r, c, COMPARISON_ZH[t.comparison], fmt["cell"])
    elif key == "unit_types":
        ws.write_string(r, c, "、".join(t.unit_types), fmt["cell"])
    elif key == "deadline":
        if t.deadline:
            ws.write_datetime(r, c, dt.datetime.combine(t.deadline, dt.time()), fmt["date"])
        else:
            ws.write_blank(r, c, None, fmt["date"])
    elif key == "target" or key.startswith("type_targets."):
        v = t.target if key == "target" else t.type_targets.get(key.split(".", 1)[1])
        style = fmt["pct"] if TASK_KINDS[t.kind].percent else fmt["num"]
        if v is None:
            ws.write_blank(r, c, None, style)
        else:
            ws.write_number(r, c, v, style)
    else:
        ws.write_string(r, c, str(getattr(t, key) or ""), fmt["text" if key == "code" else "cell"])


def _formats(wb) -> dict:
    base = {"font_name": "仿宋", "font_size": 11, "valign": "vcenter", "border": 1, "border_color": "#BFBFBF"}
    open_ = {**base, "locked": False, "text_wrap": True}
    return {
        "head": wb.add_format({**base, "bold": True, "bg_color": "#DDEBF7", "text_wrap": True, "align": "center"}),
        "cell": wb.add_format(open_),
        "int": wb.add_format({**open_, "num_format": "0"}),
        "text": wb.add_format({**open_, "num_format": "@"}),
        "num": wb.add_format({**open_, "num_format": "General"}),
        "pct": wb.add_format({**open_, "num_format": "0%"}),
        "date": wb.add_format({**open_, "num_format": "yyyy-mm-dd"}),
        "help_title": wb.add_format({"font_name": "宋体", "font_size": 16, "bold": True}),
        "help": wb.add_format({"font_name": "仿宋", "font_size": 12, "text_wrap": True, "valign": "top"}),
    }


def _sheet(wb, name: str, cols: list[Col], fmt):
    ws = wb.add_worksheet(name)
    ws.freeze_panes(1, 0)
    ws.set_row(0, 32)
    for c, col in enumerate(cols):
        ws.set_column(c, c, col.width, fmt["cell"])
        ws.write_string(0, c, col.header, fmt["head"])
        if col.note:
            ws.write_comment(0, c, col.note, {"author": "tuanjian", "x_scale": 1.6})
    ws.protect("", {"insert_rows": True, "delete_rows": True, "format_columns": True, "format_rows": True,
                    "sort": True, "autofilter": True})
    return ws


def _list_from(source: str, title: str) -> dict:
    return {"validate": "list", "source": source, "error_title": title,
            "error_message": f"请从下拉列表中选择{title}"}


def _inline(choices: list[str], title: str) -> dict:
    return {"validate": "list", "source": choices, "error_title": title[:32],
            "error_message": "请从下拉列表中选择：" + "、".join(choices)}


def _whole(lo: int, hi: int, title: str) -> dict:
    return {"validate": "integer", "criteria": "between", "minimum": lo, "maximum": hi,
            "error_title": title[:32], "error_message": f"请填写 {lo}～{hi} 的整数"}


_HELP = [
    "本文件由 tuanjian 维护的数据：单位名单、单位类型（报送周期与截止日）、目标任务。",
    "· 单位名单：每个报送单位一行。单位编号用英文字母，定下后不要改；单位类型从下拉列表选。年中新加入的单位在“起报期”"
    "写从哪一期起应报（如 2026-07），此前各期不列为未报、不催报。",
    "· 单位类型：每种类型一行，逐表设置报送周期（按月/按季/按年/不报送）、截止日（几号）、顺延月数"
    "（0 = 报送期最后一个月当月，1 = 次月）。例如县区团委附件1“按月、10、1”即次月10日前报送。",
    "· 目标任务：每项量化指标一行。比率、增长指标须填完成数口径和基数口径，全市完成率按 Σ完成数 ÷ Σ基数 计算；"
    "增长指标（如活跃度提升率）的完成数是较基期的增加数，可以大于基数，下降时填负数；"
    "目标值因单位类型不同时填“目标值·类型”各列；报送单位类型用顿号分隔。",
    "· 考核细则：年底考核（tuanjian assess）的考核范围、各项满分和计分方法，每项一行；不需要的项目可删去该行。"
    "“说明”写进年度考核表的“评分说明”。",
    "· 可以插入、删除行，表头（第 1 行）受保护。改完保存后运行 tuanjian templates build 重新生成模板。",
]


def _help_sheet(wb, fmt) -> None:
    ws = wb.add_worksheet(SHEET_HELP)
    ws.set_column(0, 0, 100)
    ws.write_string(0, 0, "填写说明", fmt["help_title"])
    for r, line in enumerate(_HELP, start=2):
        ws.set_row(r, 36)
        ws.write_string(r, 0, line, fmt["help"])
    ws.protect()


# --- reading --------------------------------------------------------------------------------------


class _Sheet:
    """One sheet's rows with a header map; every value comes back with its cell."""

    def __init__(self, file: str, name: str, rows: list[list], cols: list[Col], issues: list[Issue]):
        self.file, self.name = file, name
        self.cols = {c.key: c for c in cols}
        header = [str(v).strip() for v in (rows[0] if rows else [])]
        by_header = {c.header: c.key for c in cols}
        self.col_of: dict[str, int] = {}
        for i, h in enumerate(header):
            if h in by_header:
                self.col_of[by_header[h]] = i
            elif h:
                issues.append(Issue.make("unknown-column", file=file, sheet=name, cell=cell_name(0, i), column=h))
        for c in cols:
            if c.required and c.key not in self.col_of:
                issues.append(Issue.make("column-missing", file=file, sheet=name,
                                         cell=f"{col_to_letters(len(header))}1", column=c.header))
        self.records: list[tuple[int, dict]] = []  # (0-based sheet row, {key: value})
        for r, row in enumerate(rows[1:], start=1):
            values = {k: _clean(row[i]) if i < len(row) else None for k, i in self.col_of.items()}
            if any(v is not None for v in values.values()):
                self.records.append((r, values))

    def place(self, row: int, key: str) -> dict:
        col = self.col_of.get(key)
        header = self.cols[key].header if key in self.cols else key
        cell = cell_name(row, col) if col is not None else None
        return {"file": self.file, "sheet": self.name, "cell": cell, "field": header}


def _clean(v):
    if isinstance(v, str):
        v = v.strip()
        return v or None
    return v


def _nest(values: dict) -> dict:
    out: dict = {}
    for key, v in values.items():
        if v is None:
            continue
        parts = key.split(".")
        d = out
        for p in parts[:-1]:
            d = d.setdefault(p, {})
        d[parts[-1]] = v
    return out


def _cell_issues(exc: ValidationError, sheet: _Sheet, row: int, values: dict) -> list[Issue]:
    issues = []
    for err in exc.errors(include_url=False):
        key = ".".join(str(p) for p in err["loc"])
        while key not in sheet.cols and "." in key:
            key = key.rsplit(".", 1)[0]
        place = sheet.place(row, key)
        value = values.get(key)
        kind = err["type"]
        if value is None or kind in ("missing", "string_too_short"):
            issues.append(Issue.make("required-value", **place))
        elif kind in ("bad-date", "bad-email", "bad-id", "not-a-period"):
            issues.append(Issue.make(kind, value=value, **place))
        elif kind == "not-in-choices":
            issues.append(Issue.make(kind, value=value, choices=err["ctx"]["choices"], **place))
        elif kind in ("int_parsing", "int_from_float", "int_type"):
            issues.append(Issue.make("not-an-integer", value=value, **place))
        elif kind in ("float_parsing", "float_type"):
            issues.append(Issue.make("not-a-number", value=value, **place))
        else:
            shown = int(value) if isinstance(value, float) and value.is_integer() else value  # calamine's 40.0 is 40
            issues.append(Issue.make("bad-cell", value=shown, detail=pydantic_detail(err), **place))
    return issues


def _open_book(path: Path):
    """名单与目标.xlsx opened with calamine, after the same checks as a submission; ConfigError if it cannot be."""
    from python_calamine import CalamineWorkbook

    file = path.name
    if not path.exists():
        raise ConfigError(Issue.make("file-missing", file=file, detail=str(path)))
    try:
        data = path.read_bytes()
        with zipfile.ZipFile(io.BytesIO(data)) as z:  # a stray value at XFD1048576 would abort calamine
            unsafe = guard.problem(guard.Parts(z, data))
        if unsafe:
            raise ConfigError(Issue.make(unsafe[0], file=file, **unsafe[1]))
        wb = CalamineWorkbook.from_filelike(io.BytesIO(data))
    except ConfigError:
        raise
    except OSError as exc:
        from .xlsxio import os_reason

        raise ConfigError(Issue.make("file-unreadable", file=file, detail=f"{path}（{os_reason(exc)}）")) from None
    except Exception:  # not a zip, or calamine's own error types for broken files
        raise ConfigError(Issue.make("file-unreadable", file=file, detail="不是有效的 Excel 工作簿（xlsx）")) from None
    return wb


def read_roster_book(path: Path, registry: SpecRegistry) -> Roster:
    """Read 名单与目标.xlsx with calamine; all problems come together in one ConfigError."""
    file = path.name
    wb = _open_book(path)
    issues: list[Issue] = []

    def rows(name: str) -> list[list]:
        if name not in wb.sheet_names:
            issues.append(Issue.make("sheet-missing", file=file, sheet=name, name=name))
            return []
        return wb.get_sheet_by_name(name).to_python(skip_empty_area=False)

    types_sheet = _Sheet(file, SHEET_TYPES, rows(SHEET_TYPES), type_cols(registry), issues)
    type_names = [str(v.get("name")) for _, v in types_sheet.records if v.get("name") is not None]
    sheets = {
        "unit_types": types_sheet,
        "units": _Sheet(file, SHEET_UNITS, rows(SHEET_UNITS), unit_cols(), issues),
        "tasks": _Sheet(file, SHEET_TASKS, rows(SHEET_TASKS), task_cols(type_names), issues),
    }
    models: dict[str, type[BaseModel]] = {"unit_types": UnitType, "units": Unit, "tasks": Task}
    parsed: dict[str, list] = {k: [] for k in sheets}
    kept_rows: dict[str, list[int]] = {k: [] for k in sheets}
    for section, sheet in sheets.items():
        for row, values in sheet.records:
            record = _nest(values)
            if section == "unit_types":
                record["rules"] = _rules(record.get("rules", {}))
            try:
                parsed[section].append(models[section].model_validate(record))
                kept_rows[section].append(row)
            except ValidationError as exc:
                issues.extend(_cell_issues(exc, sheet, row, values))
                if section == "unit_types" and record.get("name"):
                    # keep the type itself, so its units are not all reported as of an unknown type
                    parsed[section].append(UnitType(name=str(record["name"])))
                    kept_rows[section].append(row)
    roster = Roster(unit_types=parsed["unit_types"], units=parsed["units"], tasks=parsed["tasks"])

    def locate(section: str, index: int, key: str) -> dict:
        sheet = sheets[section]
        row = kept_rows[section][index] if 0 <= index < len(kept_rows[section]) else 1
        return sheet.place(row, key if key in sheet.cols else "name" if "name" in sheet.cols else "code")

    wrong_rows = {(i.sheet, _row_of(i.cell)) for i in issues if i.severity == "error"}
    # (a rule whose cells are wrong is said once, as what is wrong, not again as blank)
    issues.extend(i for i in check_roster(roster, locate, form_names(registry))
                  if i.code != "rule-blank" or (i.sheet, _row_of(i.cell)) not in wrong_rows)
    if any(i.severity == "error" for i in issues):
        raise ConfigError(issues)
    return roster


def _row_of(cell: str | None) -> str:
    return "".join(ch for ch in cell or "" if ch.isdigit())


def _rules(rules: dict) -> dict:
    """A form with no cadence has no rule; 不报送 needs no day."""
    out = {}
    for form_id, rule in rules.items():
        if rule.get("cadence") is None:
            continue
        if rule["cadence"] in ("不报送", "none"):
            rule = {"cadence": "none", "day": rule.get("day", 1), "month_offset": rule.get("month_offset", 0)}
        out[form_id] = rule
    return out


def read_rules(path: Path, registry: SpecRegistry, roster: Roster) -> Rules:
    """考核细则 of 名单与目标.xlsx, checked against its roster; the built-in rules (marked so) for a workbook that
    predates the sheet. Read only by the assessment, so a mistake here never stops the monthly work."""
    file = path.name
    wb = _open_book(path)
    if SHEET_RULES not in wb.sheet_names:
        return default_rules(registry).model_copy(update={"builtin": True})
    issues: list[Issue] = []
    sheet = _Sheet(file, SHEET_RULES, wb.get_sheet_by_name(SHEET_RULES).to_python(skip_empty_area=False), rule_cols(),
                   issues)
    rows: list[Rule] = []
    kept: list[int] = []
    for row, values in sheet.records:
        try:
            rows.append(Rule.model_validate(_nest(values)))
            kept.append(row)
        except ValidationError as exc:
            issues.extend(_cell_issues(exc, sheet, row, values))
    rules = Rules(rows=rows)

    def locate(section: str, index: int, key: str) -> dict:
        return sheet.place(kept[index] if 0 <= index < len(kept) else 1, key if key in sheet.cols else "item")

    issues.extend(check_rules(rules, roster, registry, locate))
    if any(i.severity == "error" for i in issues):
        raise ConfigError(issues)
    return resolved(rules, registry)
