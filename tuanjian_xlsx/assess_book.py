"""The year-end assessment workbook (年度考核表): 考核得分 (a row per unit, each item's score, the total and the ranks,
with a chart of the totals), 考核依据 (every fact behind the scores, with its files) and 评分说明 (the rules in
words, from 考核细则).

Every score is a formula of `formulas`, written with its cached value by master.Sheet: a fact's 计分 from the fact
(and the 逾期计分 cell of 评分说明), an item's score = 满分 × the average 计分 of the unit's facts for that item
(SUMIFS/COUNTIFS over 考核依据, the 满分 a cell of 考核得分's 满分 row), the total over the items that apply, the ranks
by COUNTIF(S). Change a 满分, a 结果 or the 逾期计分 in Excel and everything follows.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

from . import formulas as F
from . import passport
from .assess_facts import Basis, Fact
from .assess_rules import ITEMS_ZH, Rule
from .fieldtypes import TASK_KINDS
from .master import TYPE_WIDTH, UNIT_WIDTH, Col, Columns, Sheet, text_lines
from .plan import Workspace
from .xlsxio import FONT_BODY, FONT_TITLE, close_workbook, new_workbook

SCORES, BASIS, EXPLAIN = "考核得分", "考核依据", "评分说明"
KIND = "annual_assessment"  # the passport's form id: what marks a workbook as a year's assessment
LAYOUT = 1  # the passport's version: the layout of this workbook
UNIT_ALL = "全部"
# The headings by which the previous file's manual columns are found again (never by position).
HEADINGS = {"unit": "单位", "unit_id": "单位编号", "adjustment": "加减分", "reason": "原因",
            "weights": "满分（可改）"}  # the last: what the 满分 row says in the 单位 column (not a unit)
HEAD, WEIGHTS, FIRST = 3, 4, 5  # 考核得分: the heading row, the 满分 row, the first unit's row
LATE_AT = (4, 1)  # 评分说明: the 逾期计分 cell


@dataclass
class Kept:
    """A manual 加减分 and its 原因 from the previous assessment."""

    unit_id: str
    unit: str
    adjustment: float | str | None
    reason: str


@dataclass
class UnitScore:
    """A unit's row of 考核得分 as the formulas compute it."""

    unit: str
    unit_id: str
    unit_type: str
    scores: dict[str, float | None]  # item -> score; None where the item does not apply
    applicable: float  # the full marks of the items that apply
    scaled: float | None  # out of 100
    adjustment: float | str | None
    reason: str
    total: float | None
    rank_in_type: int | None
    rank: int | None

    def to_dict(self) -> dict:
        return dict(vars(self))


def _styles(wb) -> dict:
    base = {"font_name": FONT_BODY, "font_size": 11, "valign": "vcenter"}
    grid = {**base, "border": 1, "border_color": "#BFBFBF"}
    mark = {**grid, "align": "center", "bold": True, "bg_color": "#FFF2CC"}  # what staff may change: 满分
    typed = {**grid, "bg_color": "#FFFBEA"}  # what staff type: 加减分, 原因
    s = {
        "title": {"font_name": FONT_TITLE, "font_size": 18, "bold": True},
        "note": {**base, "font_color": "#595959"},
        "para": {**base, "text_wrap": True, "valign": "top"},
        "head": {**grid, "bold": True, "bg_color": "#DDEBF7", "align": "center", "text_wrap": True},
        "cell": {**grid, "text_wrap": True},
        "wrap": {**grid, "text_wrap": True, "valign": "top"},
        "center": {**grid, "align": "center", "text_wrap": True},
        "int": {**grid, "num_format": "0", "align": "center"},
        "num": {**grid, "num_format": "General", "align": "center"},
        "score": {**grid, "num_format": "0.00", "align": "center"},
        "total": {**grid, "num_format": "0.00", "align": "center", "bold": True},
        "pct": {**grid, "num_format": "0%", "align": "center"},
        "date": {**grid, "num_format": "yyyy-mm-dd", "align": "center"},
        "time": {**grid, "num_format": "yyyy-mm-dd hh:mm", "align": "center"},
        "weight": {**mark, "num_format": "General"},
        "limit": {**mark, "num_format": '"±"General'},
        "adjust": {**typed, "num_format": "General", "align": "center"},
        "reason": {**typed, "text_wrap": True},
        "id": {**base, "font_size": 9, "font_color": "#808080"},
    }
    return {k: wb.add_format(v) for k, v in s.items()}


# --- 考核依据: one row per fact ---------------------------------------------------------------------------------

BASIS_COLS = Columns(Col("unit", "单位", 16), Col("no", "序号", 4.5), Col("unit_type", "单位类型", 10),
                     Col("item", "考核项目", 8), Col("source", "报表", 18), Col("content", "内容", 16),
                     Col("period", "报送期", 10.5), Col("due", "截止日期", 10.5), Col("received", "收到时间", 15.5),
                     Col("result", "结果", 6.5), Col("value", "数值", 9), Col("base", "基数", 6),
                     Col("standard", "标准", 6.5), Col("score", "计分", 6), Col("files", "来源文件", 26))


@dataclass
class Row:
    """A fact's cells, as its 计分 formula refers to them."""

    result: F.Ref
    value: F.Ref
    base: F.Ref
    standard: F.Ref
    score: F.Ref
    late: F.Ref  # 评分说明's 逾期计分


def _task_met(x: Row) -> F.Expr:
    return F.IF(F.cmp(x.score, ">=", 1), "达标", F.IF(F.cmp(x.value, "=", ""), "未填", "未达标"))


# how -> (计分, the 结果 when it follows from the numbers). A ratio task counts 完成率 ÷ 目标 (a base of 0 or a
# target of 0 is met), a growth the same but a decline counts 0 and a base of 0 counts 0, a count 完成数 ÷ 目标值, each at most 1; 是否
# counts 是. A task's how is its kind (fieldtypes.TASK_KINDS).
SCORE_OF: dict[str, tuple[Callable[[Row], F.Expr], Callable[[Row], F.Expr] | None]] = {
    "status": (lambda x: F.IF(F.cmp(x.result, "=", "按时"), 1, F.IF(F.cmp(x.result, "=", "逾期"), x.late, 0)), None),
    "minimum": (lambda x: F.IF(F.cmp(x.value, ">=", x.standard), 1, 0),
                lambda x: F.IF(F.cmp(x.score, "=", 1), "达标", "未达标")),
    "week": (lambda x: F.IF(F.cmp(x.result, "=", "周内"), 1, 0), None),
    "filed": (lambda x: F.IF(F.cmp(x.result, "=", "已报"), 1, 0), None),
    "ratio": (lambda x: F.IF(F.OR(F.cmp(x.value, "=", ""), F.cmp(x.base, "=", "")), 0,
                             F.IF(F.OR(F.cmp(x.base, "=", 0), F.cmp(x.standard, "=", 0)), 1,
                                  F.MIN(1, x.value / x.base / x.standard))), _task_met),
    # (a growth over a base of 0 cannot be worked out — the master leaves its 完成率 blank — so it scores nothing;
    # against a target of 0, any growth that is no decline meets it)
    "growth": (lambda x: F.IF(F.OR(F.cmp(x.value, "=", ""), F.cmp(x.base, "=", ""), F.cmp(x.base, "=", 0)), 0,
                              F.IF(F.cmp(x.standard, "=", 0), F.IF(F.cmp(x.value, ">=", 0), 1, 0),
                                   F.MAX(0, F.MIN(1, x.value / x.base / x.standard)))), _task_met),
    "count": (lambda x: F.IF(F.cmp(x.value, "=", ""), 0, F.IF(F.cmp(x.standard, "=", 0), 1,
                                                               F.MIN(1, x.value / x.standard))), _task_met),
    "yesno": (lambda x: F.IF(F.cmp(x.value, "=", "是"), 1, 0), _task_met),
    "research": (lambda x: F.IF(F.cmp(x.value, "=", ""), 0, F.IF(F.cmp(x.value, ">=", x.standard), 1, 0)), _task_met),
}


@dataclass
class Facts:
    """Where 考核依据's columns stand, for the scores' SUMIFS/COUNTIFS."""

    sheet: Sheet
    last: int

    def col(self, col_id: str) -> F.Range:
        return self.sheet.col(BASIS_COLS[col_id], 1, self.last)


def _basis_sheet(sh: Sheet, facts: list[Fact]) -> Facts:
    C = BASIS_COLS
    sh.header(0, C.titles, C.widths)
    late = F.ref(*LATE_AT, sheet=EXPLAIN, absolute=True)
    for r, f in enumerate(facts, start=1):
        # the fact's own cells by row-relative references ($J2): sorting 考核依据 in Excel keeps each 计分 on its row
        at = {k: F.ref(r, C[k], absolute="col") for k in ("result", "value", "base", "standard", "score")}
        x = Row(**at, late=late)
        score, result = SCORE_OF[f.how]
        sh.put(r, C["unit"], f.unit.name)
        sh.put(r, C["no"], f.unit_no, "int")
        sh.put(r, C["unit_type"], f.unit.type, "center")
        sh.put(r, C["item"], ITEMS_ZH[f.item], "center")
        sh.put(r, C["source"], f.source)
        sh.put(r, C["content"], f.content)
        sh.put(r, C["period"], f.period, "center")
        sh.put(r, C["due"], f.due, "date")
        sh.put(r, C["received"], f.received, "time")
        if result is None:
            sh.put(r, C["result"], f.result, "center")
        else:
            sh.formula(r, C["result"], result(x), "center")
        sh.put(r, C["value"], f.value, "date" if f.how == "week" else "num")
        sh.put(r, C["base"], f.base, "num")
        sh.put(r, C["standard"], f.standard, "pct" if f.how in TASK_KINDS and TASK_KINDS[f.how].percent else "num")
        sh.formula(r, C["score"], score(x), "score")
        sh.put(r, C["files"], "、".join(f.files))
    last = max(len(facts), 1)
    sh.table(0, last, len(C))
    return Facts(sh, last)


# --- 考核得分 --------------------------------------------------------------------------------------------------


def _ids(C: Columns) -> set[str]:
    return {c.id for c in C.cols}


def _score_columns(basis: Basis) -> Columns:
    adjust = (Col("adjustment", HEADINGS["adjustment"], 6.5), Col("reason", HEADINGS["reason"], 20)) \
        if basis.rules.adjustment else ()
    return Columns(Col("no", "序号", 4.5), Col("unit", HEADINGS["unit"], UNIT_WIDTH), Col("unit_type", "单位类型", TYPE_WIDTH),
                   *(Col(r.item, r.name, 8) for r in basis.rules.scored),
                   Col("applicable", "适用满分", 6.5), Col("scaled", "折算得分", 8), *adjust,
                   Col("total", "总分", 8), Col("rank_in_type", "类型内排名", 8), Col("rank", "总排名", 6.5),
                   Col("unit_id", HEADINGS["unit_id"], 10))


def _scores_sheet(sh: Sheet, wb, ws: Workspace, basis: Basis, kept: dict[str, Kept], facts: Facts,
                  C: Columns) -> None:
    scored = basis.rules.scored
    adjust = basis.rules.adjustment
    org = ws.settings.organisation.name
    sh.put(0, 0, f"{org} {basis.year}年度活力团建工作考核得分", "title")
    sh.put(1, 0, f"数据截至 {basis.as_of.isoformat()}：只计 {basis.year} 年截至该日已到截止日期的报送期"
           f"{'（阶段性结果）' if basis.as_of.year == basis.year and basis.as_of.month < 12 else ''}。"
           "总分 = 适用项目折算成百分制，再加减分；计分方法见“评分说明”，逐条依据见“考核依据”。", "note")
    sh.header(HEAD, C.titles, C.widths)
    sh.put(WEIGHTS, C["no"], "", "head")
    sh.put(WEIGHTS, C["unit"], HEADINGS["weights"], "head")
    sh.put(WEIGHTS, C["unit_type"], "", "head")
    for rule in scored:
        sh.put(WEIGHTS, C[rule.item], rule.points, "weight")
    for key in ("applicable", "scaled", "reason", "total", "rank_in_type", "rank"):
        if key in _ids(C):
            sh.put(WEIGHTS, C[key], "", "head")
    if adjust:
        sh.put(WEIGHTS, C["adjustment"], adjust.points, "limit")
    last = FIRST + len(basis.units) - 1
    types, totals = sh.col(C["unit_type"], FIRST, last), sh.col(C["total"], FIRST, last)
    for k, u in enumerate(basis.units):
        r = FIRST + k
        cell = {key: F.ref(r, C[key], absolute="col") for key in _ids(C)}  # its own row: sorting keeps it
        sh.put(r, C["no"], k + 1, "int")
        sh.put(r, C["unit"], u.name)
        sh.put(r, C["unit_type"], u.type, "center")
        for rule in scored:
            crit = (facts.col("item"), rule.name, facts.col("no"), cell["no"])
            n = F.COUNTIFS(*crit)
            weight = F.ref(WEIGHTS, C[rule.item], absolute=True)
            sh.formula(r, C[rule.item], F.IF(F.cmp(n, "=", 0), "不适用",
                                             F.ROUND(weight * F.SUMIFS(facts.col("score"), *crit) / n, 2)), "score")
        sh.formula(r, C["applicable"], F.plus(*(F.IF(F.ISNUMBER(cell[rule.item]), F.ref(WEIGHTS, C[rule.item],
                                                                                         absolute=True), 0)
                                                for rule in scored)), "num")
        items = F.rng(r, C[scored[0].item], r, C[scored[-1].item], absolute="col") if scored else None
        sum_items = F.SUM(items) if items is not None else F.lit(0)
        sh.formula(r, C["scaled"], F.IF(F.cmp(cell["applicable"], "=", 0), "",
                                        F.ROUND(sum_items * 100 / cell["applicable"], 2)), "score")
        total: F.Expr = cell["scaled"]
        if adjust:  # 加减分 as typed, counted within ±上限 (the 满分 row's bound)
            limit = F.ref(WEIGHTS, C["adjustment"], absolute=True)
            total = F.ROUND(cell["scaled"] + F.MAX(F.lit(0) - limit, F.MIN(limit, F.N(cell["adjustment"]))), 2)
        if adjust:
            mine = kept.get(u.id)
            sh.put(r, C["adjustment"], mine.adjustment if mine else None, "adjust")
            sh.put(r, C["reason"], mine.reason if mine else None, "reason")
        sh.formula(r, C["total"], F.IF(F.cmp(cell["scaled"], "=", ""), "", total), "total")
        above = F.concat(">", cell["total"])
        sh.formula(r, C["rank_in_type"], F.IF(F.ISNUMBER(cell["total"]),
                                              F.COUNTIFS(types, cell["unit_type"], totals, above) + 1, ""), "int")
        sh.formula(r, C["rank"], F.IF(F.ISNUMBER(cell["total"]), F.COUNTIF(totals, above) + 1, ""), "int")
        sh.put(r, C["unit_id"], u.id, "id")
    if adjust and basis.units:
        bound = adjust.points or 0
        sh.ws.data_validation(FIRST, C["adjustment"], last, C["adjustment"], {
            "validate": "decimal", "criteria": "between", "minimum": -bound, "maximum": bound,
            "error_title": "加减分", "error_message": f"请填写 -{bound:g}～{bound:g} 之间的数（考核细则的上限）"})
    breaks = _chart(sh, wb, C, basis, last)
    sh.ws.freeze_panes(FIRST, C["unit"] + 1)
    sh.print_setup(landscape=True, title_rows=(HEAD, WEIGHTS), key_cols=0, last_col=C["rank"], breaks=breaks)
    sh.ws.activate()


def _chart(sh: Sheet, wb, C: Columns, basis: Basis, last: int) -> list[int]:
    """Totals by unit, below the table on a page of its own; the rows it starts on."""
    if not basis.units:
        return []
    font = {"name": FONT_BODY, "size": 9, "color": "#404040"}
    chart = wb.add_chart({"type": "bar"})
    chart.add_series({"name": "总分", "categories": sh.col(C["unit"], FIRST, last).text(),
                      "values": sh.col(C["total"], FIRST, last).text(), "fill": {"color": "#5B9BD5"}, "gap": 60,
                      "data_labels": {"value": True, "num_format": "0.00", "position": "outside_end", "font": font}})
    chart.set_title({"name": f"{basis.year}年度考核总分", "name_font": {"name": FONT_BODY, "size": 11, "bold": True}})
    chart.set_chartarea({"border": {"none": True}})
    chart.set_x_axis({"min": 0, "major_gridlines": {"visible": True}, "num_font": font})
    chart.set_y_axis({"reverse": True, "num_font": font})
    chart.set_legend({"none": True})
    top = last + 2
    height = 70 + 24 * len(basis.units)
    px = lambda w: int(w * 7 + 0.5) + 5  # noqa: E731  XlsxWriter's pixels for a column width
    chart.set_size({"width": sum(px(w) for w in C.widths[:C["rank"] + 1]) - 20, "height": height})
    sh.ws.insert_chart(top, 0, chart, {"x_offset": 10})
    sh.last_row = max(sh.last_row, top + height // 20 + 1)
    return [top]


# --- 评分说明 ---------------------------------------------------------------------------------------------------

EXPLAIN_COLS = Columns(Col("item", "考核项目", 10), Col("points", "满分", 7), Col("unit_types", "适用单位类型", 18),
                       Col("basis", "依据", 18), Col("note", "计分方法", 52))


def _para(sh: Sheet, r: int, text: str, style: str = "para") -> None:
    """A paragraph across the sheet's columns, as tall as its lines."""
    width = sum(EXPLAIN_COLS.widths)
    sh.ws.merge_range(r, 0, r, len(EXPLAIN_COLS) - 1, text, sh.fmt[style])
    sh.heights[r] = max(sh.heights.get(r, 0), text_lines(text, width) * 15 + 4)
    sh.last_row = max(sh.last_row, r)


def _basis_text(ws: Workspace, rule: Rule) -> str:
    names = [ws.registry.get(f).display_name for f in rule.forms] if rule.forms else ["全部在用的报表"]
    if rule.task:
        task = next((t for t in ws.roster.tasks if t.code == rule.task), None)
        names.append(f"任务 {rule.task}" + (f" {task.indicator}" if task else ""))
    return "；".join(names) if rule.item != "adjustment" else "考核组"


def _minimums(ws: Workspace, rule: Rule, types: list[str]) -> str:
    """走基层: each assessed type's monthly minimum of visits, as 单位类型 sets it."""
    counted: list[str] = []
    not_counted: list[str] = []
    for t in (t for t in types if rule.applies_to(t)):
        ut = ws.roster.unit_type(t)
        n = ut.min_visits if ut else None
        (counted if n else not_counted).append(f"{t} {n} 次" if n else t)
    text = f"“走基层”的每月至少走访次数（《{ws.settings.roster.file}》的“单位类型”表）：{'、'.join(counted) or '（无）'}"
    if not_counted:
        text += f"；{'、'.join(not_counted)}留空或为 0，不考核走访次数，本项不适用"
    return text + "。"


def _explain_sheet(sh: Sheet, ws: Workspace, basis: Basis, C: Columns) -> None:
    E = EXPLAIN_COLS
    rules, year = basis.rules, basis.year
    for c, w in enumerate(E.widths):
        sh.width(c, c, w)
    sh.put(0, 0, f"{year}年度活力团建工作考核 · 评分说明", "title")
    stage = "；统计日在年底之前，为阶段性结果" if basis.as_of.year == year and basis.as_of.month < 12 else ""
    _para(sh, 1, f"考核年度：{year} 年；统计日：{basis.as_of.isoformat()}。只计 {year} 年截至统计日已到截止日期的各期报表"
                 f"（截止日期未到的不计入应报）{stage}。")
    types = rules.assessed_types(ws.roster)
    _para(sh, 2, f"考核对象：{'、'.join(types) or '（无）'}，共 {len(basis.units)} 个单位（“考核细则”的考核范围）。")
    source = ("内置默认细则（《名单与目标.xlsx》中没有“考核细则”工作表）" if rules.builtin
              else "《名单与目标.xlsx》的“考核细则”")
    _para(sh, 3, f"细则来源：{source}。")
    sh.put(LATE_AT[0], 0, "逾期计分", "head")
    sh.put(*LATE_AT, rules.late_credit, "weight")
    sh.ws.merge_range(LATE_AT[0], 2, LATE_AT[0], len(E) - 1, "“报送及时”中逾期报送的一期按几期计（按时计 1，未报计 0）。"
                      "在此改动，“考核依据”的计分和各项得分随之重算。", sh.fmt["para"])
    head = 6
    sh.header(head, E.titles)
    r = head + 1
    for rule in rules.rows:
        if rule.item == "scope":
            continue
        sh.put(r, E["item"], rule.name, "center")
        if rule.item in _ids(C):
            sh.formula(r, E["points"], F.ref(WEIGHTS, C[rule.item], sheet=SCORES, absolute=True), "num")
        elif rule.item == "adjustment" and "adjustment" in _ids(C):
            sh.formula(r, E["points"], F.ref(WEIGHTS, C["adjustment"], sheet=SCORES, absolute=True), "limit")
        else:
            sh.put(r, E["points"], rule.points, "num")
        sh.put(r, E["unit_types"], "、".join(rule.unit_types) or "全部", "cell")
        sh.put(r, E["basis"], _basis_text(ws, rule), "cell")
        sh.put(r, E["note"], rule.note, "wrap")
        r += 1
    r += 1
    paras = [
        "总分 = 各适用项目得分之和 ÷ 适用项目满分之和 × 100（百分制，保留两位小数），再加“加减分”。某项不适用（该单位类型不考核此项、"
        "不报送此表，或当年尚无到期的报送）时，既不计分也不计入满分，其余项目按比例折算。",
        "排名按总分从高到低，同分同名次；“类型内排名”只在同一单位类型中比较。",
        "各项得分、总分和排名都是公式：改“考核得分”第 5 行的满分、本表的逾期计分，或“考核依据”中的结果、数值，Excel 会重新计算。"
        "这些改动只在本文件中；要长期修改，请改《名单与目标.xlsx》的“考核细则”，下次运行 tuanjian assess 时生效。",
    ]
    if rules.adjustment:
        paras.append(f"“加减分”每个单位不超过 ±上限（“考核得分”第 {WEIGHTS + 1} 行）：超出的原样保留，总分中按上限计。"
                     f"重新运行 tuanjian assess --year {year} 时，“加减分”和“原因”两列按单位保留（旧表另存为 .bak.xlsx），"
                     "其他手工改动不保留。")
    else:
        paras.append("“考核细则”中没有“加减分”一项，本表不设加减分。")
    visits = rules.rule("visits")
    if visits is not None:
        paras.append(_minimums(ws, visits, types))
    for form_id in basis.no_week_date:
        spec = ws.spec(form_id)
        paras.append(f"{spec.display_name}在用的第 {spec.version} 版没有走访日期，“走基层周”一项对所有单位不适用（改用有走访日期的新版后计分）。")
    for text in paras:
        _para(sh, r, text)
        r += 1
    sh.print_setup(landscape=False, title_rows=None, key_cols=0, last_col=len(E) - 1)


# --- the whole workbook ------------------------------------------------------------------------------------------


def _passport(wb, basis: Basis) -> None:
    """The hidden _passport sheet and the same entries as tj.* properties: this year's assessment, of every unit."""
    digest = hashlib.sha256(basis.rules.model_dump_json().encode()).hexdigest()
    card = passport.entries(SimpleNamespace(form_id=KIND, version=LAYOUT, fingerprint=digest), unit=UNIT_ALL,
                            period=str(basis.year))
    ws = wb.add_worksheet(passport.PASSPORT_SHEET)
    for r, (key, v) in enumerate(card.items()):
        ws.write_string(r, 0, key)
        ws.write(r, 1, v)
        wb.set_custom_property(passport.property_name(key), v)
    ws.hide()


def _number(v) -> float | None:
    return v if isinstance(v, float) else None


def render_assessment(ws: Workspace, basis: Basis, kept: dict[str, Kept]) -> tuple[bytes, list[UnitScore]]:
    """The workbook's bytes, and each unit's row as its formulas compute it."""
    buf = io.BytesIO()
    org = ws.settings.organisation.name
    wb = new_workbook(buf, title=f"{basis.year}年度活力团建工作考核", company=org)
    fmt = _styles(wb)
    grid = F.Grid()
    banner = (f"{org} {basis.year}年度活力团建工作考核", f"数据截至 {basis.as_of.isoformat()}")
    sheets = {name: Sheet(wb, name, fmt, grid, banner) for name in (SCORES, BASIS, EXPLAIN)}
    C = _score_columns(basis)
    facts = _basis_sheet(sheets[BASIS], basis.facts)
    _scores_sheet(sheets[SCORES], wb, ws, basis, kept, facts, C)
    _explain_sheet(sheets[EXPLAIN], ws, basis, C)
    _passport(wb, basis)
    for sheet in sheets.values():
        sheet.write_formulas()
    out = []
    for k, u in enumerate(basis.units):
        r = FIRST + k
        value = lambda key, r=r: grid.value(SCORES, r, C[key]) if key in _ids(C) else None  # noqa: E731
        mine = kept.get(u.id)
        rank_t, rank = _number(value("rank_in_type")), _number(value("rank"))
        out.append(UnitScore(u.name, u.id, u.type, {rule.name: _number(value(rule.item)) for rule in basis.rules.scored},
                             _number(value("applicable")) or 0.0, _number(value("scaled")),
                             mine.adjustment if mine else None, mine.reason if mine else "", _number(value("total")),
                             int(rank_t) if rank_t is not None else None, int(rank) if rank is not None else None))
    return close_workbook(wb, buf), out
