"""Field types: one entry per kind of input, and one per kind of target task.

A `FieldType` holds everything the product does with one kind of input: the data validation the template puts on
the cell, the in-sheet 自查 verdict (a `formulas` expression over the cell: its text goes into the sheet, its value
is the cached result), the validator's normaliser, and the Chinese words for it. The builder, the 自查 line and the
validator all take them from here. Where the sheet and the validator judge a value differently on purpose, the entry
declares it (`lenient`, `differences`); tests/test_fieldtypes.py holds every other value to agreement.

A `TaskKind` says which inputs a tracker row of that kind asks for, with which field type, which of them are
required, and the row's formulas (完成率, 是否达标).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any

from . import formulas as F
from .normalise import MAX_SERIAL, UNIT_WORDS, as_choice, as_date, as_number, as_period, as_text
from .passport import list_name
from .periods import excel_serial

# A filled cell's 自查 verdict: right (""), to be retyped though the validator will read it (需改), or wrong (有误).
RIGHT, RETYPE, WRONG = "", "需改", "有误"
YES_NO = ("是", "否")
NOT_ASKED = "—"  # a tracker cell the row's kind does not ask for (locked)
DATE_MIN, DATE_MAX = dt.date(2000, 1, 1), dt.date(2099, 12, 31)

# How the two sides call a value in the declarations below: the sheet's 自查 says empty / ok / retype / wrong
# ("filled" = any of the last three); the validator says blank / ok / warned (read, with a warning) / error.
SHEET_VERDICTS = ("empty", "ok", "retype", "wrong", "filled")
VALIDATOR_VERDICTS = ("blank", "ok", "warned", "error")


@dataclass(frozen=True)
class Difference:
    """Values that 自查 and the validator judge differently, on purpose, and why."""

    sheet: str
    validator: str
    examples: tuple[object, ...]
    why: str

    def __post_init__(self) -> None:
        assert self.sheet in SHEET_VERDICTS and self.validator in VALIDATOR_VERDICTS, self


# --- the sheet side: expressions over an input cell --------------------------------------------------------------


def empty(x: F.Expr) -> F.Expr:
    """Blank to 自查: nothing but spaces, the full-width space (U+3000) included, as the validator sees it."""
    return F.cmp(F.LEN(F.TRIM(F.SUBSTITUTE(x, "\u3000", ""))), "=", 0)


def _squeezed(x: F.Expr) -> F.Expr:
    """The cell's text without any space (ASCII or full-width), as the validator folds it."""
    return F.SUBSTITUTE(F.SUBSTITUTE(x, " ", ""), "\u3000", "")


_UNIT_CHARS = "".join(w for w in UNIT_WORDS if len(w) == 1)


def _number_part(x: F.Expr) -> F.Expr:
    """The text without its spaces and one trailing measure word (5 人 -> 5)."""
    s = _squeezed(x)
    return F.LEFT(s, F.LEN(s) - F.ISNUMBER(F.FIND(F.RIGHT(s), _UNIT_CHARS)))


def _plain_number_text(x: F.Expr, whole: bool, limit: float, signed: bool = False) -> F.Expr:
    """TRUE for text that is a plain non-negative number once spaces and a measure word go ("12", "5人", "1.5"):
    the number written back as text must give the same text, so "1e3", "40%", "1,000", "3/5", "-5" are not (each
    program reads those differently; "-5" is, for a signed number). Fifteen digits at most (longer numbers are
    rounded), and no further from 0 than `limit`."""
    c = _number_part(x)
    n = F.lit(0) + c if signed else F.ABS(c)
    if whole:
        n = F.INT(n)
    return F.IFERROR(F.AND(F.cmp(F.LEN(c), "<", 16), F.cmp(n & "", "=", c), F.cmp(F.ABS(F.lit(0) + c), "<=", limit)),
                     False)


def _date_text(x: F.Expr, lo: float, hi: float) -> F.Expr:
    """TRUE for text that is a date written year first (2026年3月5日, 2026/3/5, 2026.3.5, 2026-3-5) within the
    sheet's dates: rewritten as 2026-3-5, which every program reads as the same date. The first dash must
    follow a four-digit year and a second must follow (Excel would read "2026-3" as a month)."""
    t = F.SUBSTITUTE(_squeezed(x), "日", "")
    for sep in ("年", "月", "/", "."):
        t = F.SUBSTITUTE(t, sep, "-")
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    return F.IFERROR(F.AND(F.cmp(F.FIND("-", t), "=", 5), F.ISNUMBER(F.FIND("-", t, 7)),
                           F.cmp(F.ABS(F.lit(0) + t - mid), "<=", half)), False)  # lo <= t <= hi, t once


Classify = Callable[[F.Expr, "F.Range | None"], F.Expr]


# the largest number a count (people at a visit, a task's count) or an amount (a task's 完成数 and 基数) may be: a
# phone number pasted, a slip of extra zeros, 1e20 would otherwise pass and swell the city's totals
INTEGER_MAX = 1_000_000
AMOUNT_MAX = 100_000_000


def _integer(x, _choices) -> F.Expr:
    return F.IF(F.ISNUMBER(x), F.IF(F.OR(F.cmp(x, "<", 0), F.cmp(x, "<>", F.INT(x)), F.cmp(x, ">", INTEGER_MAX)),
                                    WRONG, RIGHT),
                F.IF(_plain_number_text(x, whole=True, limit=INTEGER_MAX), RETYPE, WRONG))


def _number(x, _choices) -> F.Expr:
    return F.IF(F.ISNUMBER(x), F.IF(F.OR(F.cmp(x, "<", 0), F.cmp(x, ">", AMOUNT_MAX)), WRONG, RIGHT),
                F.IF(_plain_number_text(x, whole=False, limit=AMOUNT_MAX), RETYPE, WRONG))


def _signed_number(x, _choices) -> F.Expr:
    return F.IF(F.ISNUMBER(x), F.IF(F.cmp(F.ABS(x), ">", AMOUNT_MAX), WRONG, RIGHT),
                F.IF(_plain_number_text(x, whole=False, limit=AMOUNT_MAX, signed=True), RETYPE, WRONG))


_DMIN, _DMAX = excel_serial(DATE_MIN), excel_serial(DATE_MAX)


def _date(x, _choices) -> F.Expr:
    return F.IF(F.ISNUMBER(x), F.IF(F.OR(F.cmp(x, "<", _DMIN), F.cmp(x, ">", _DMAX)), WRONG, RIGHT),
                F.IF(_date_text(x, _DMIN, _DMAX), RETYPE, WRONG))


def _choice(x, choices) -> F.Expr:
    # an equality count, not COUNTIF: COUNTIF would read * ? ~ < > in the typed value as patterns
    return F.IF(F.cmp(F.COUNT_EQUAL(choices, x), ">", 0), RIGHT,
                F.IF(F.cmp(F.COUNT_EQUAL(choices, _squeezed(x)), ">", 0), RETYPE, WRONG))


def _period(x, _choices) -> F.Expr:
    return F.IF(F.ISNUMBER(x), WRONG, RIGHT)


# --- the entries ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldType:
    """One kind of input: the template's validation, 自查's verdict, the validator's reading, the words for it."""

    id: str
    zh: str  # its name in Chinese (版本说明, docs)
    expected: str  # what the cell wants, as a 退回件's 问题清单 says it
    python: type  # a record's value of this type
    style: str  # the builder's cell format inside a form's table
    head_style: str  # … and as a header field above it
    normalise: Callable  # (raw, place, choices, period) -> (value, issues)
    classify: Classify | None = None  # 自查 of a filled cell: RIGHT / RETYPE / WRONG (None: anything goes)
    validation: dict = field(default_factory=lambda: {"validate": "any"})  # XlsxWriter's, less titles and source
    error: str = ""  # the data validation's message, "{label}" filled in
    choices: tuple[str, ...] = ()  # fixed choices (是/否)
    list_name: str = ""  # the defined name of fixed choices' list
    lenient: str = ""  # what the validator reads (with a warning) that the sheet asks to retype
    shown_as_typed: Callable[[object], bool] = lambda raw: False  # a wrong number the cell's format would misshow
    differences: tuple[Difference, ...] = ()

    @property
    def listed(self) -> bool:
        return self.validation.get("validate") == "list"

    def verdict(self, x: F.Expr, choices: F.Range | None = None) -> F.Expr:
        """"" for an empty or right cell, RETYPE or WRONG."""
        if self.classify is None:
            return F.lit(RIGHT)
        return F.IF(empty(x), RIGHT, self.classify(x, choices))

    def invalid(self, x: F.Expr, choices: F.Range | None = None) -> F.Expr:
        """TRUE where the validator will refuse what x holds."""
        return F.cmp(self.verdict(x, choices), "=", WRONG)

    def to_retype(self, x: F.Expr, choices: F.Range | None = None) -> F.Expr:
        """TRUE where the validator will read x with a warning but the sheet asks for it plainly (`lenient`)."""
        return F.cmp(self.verdict(x, choices), "=", RETYPE)

    def data_validation(self, label: str, help: str = "", source: F.Named | None = None) -> dict:
        """XlsxWriter's data validation for an input labelled `label`; a dropdown's list through its name."""
        title = label[:32]
        dv: dict = {"input_title": title, "error_title": title, **self.validation}
        if help:
            dv["input_message"] = help[:255]
        if self.error:
            dv["error_message"] = self.error.format(label=label)
        if self.listed:
            assert source is not None  # a listed type's callers always pass its list's name
            dv["source"] = source.formula()
        return dv

    def normaliser(self, *, choices=(), period=None) -> Callable:
        """The validator's reading of one value of this type: (raw, place) -> (value, issues)."""
        return lambda raw, at: self.normalise(raw, at, list(choices or self.choices), period)


_SPACES_ONLY = Difference(
    "filled", "blank", ("\t", "\n", "\xa0"),
    "只有制表符、换行或不间断空格：表内公式只能去掉半角和全角空格，按已填处理；系统按未填处理")

_NUMBER_DIFFERENCES = (
    _SPACES_ONLY,
    Difference("wrong", "warned", ("１２", "+5", "12.0", "012", "5人次", "十五", "二十三人", "两", "五人", "三个", "1,000"),
               "系统还能读出的其他写法（全角数字、正号、多余的零、两字量词、中文数字、千分位逗号）："
               "表内自查只认纯数字（可带一个量词），请改为纯数字"),
    Difference("retype", "error", ("1 2",),
               "数字之间隔着空格（“15 20”可能是两个数）：表内公式去掉空格后提示改为纯数字；系统拒收，不猜是哪个数"),
    Difference("ok", "error", (dt.datetime(2026, 3, 5),),
               "数字格填成了日期：表内公式看不出单元格格式（日期就是一个数），系统拒收"),
)


def _misshown_integer(raw) -> bool:
    return isinstance(raw, (int, float)) and not isinstance(raw, bool) and not float(raw).is_integer()


def _misshown_date(raw) -> bool:
    return isinstance(raw, (int, float)) and not isinstance(raw, bool) and not 1 <= raw <= MAX_SERIAL


_LENIENT_NUMBER = ("写成文字的数（“12”“5人”“3 次”“十五人”）：系统按数读取并提醒；表内自查请改为纯数字；"
                   "“三十余人”“十几”之类不是确切的数，系统拒收")

FIELD_TYPES: dict[str, FieldType] = {t.id: t for t in (
    FieldType(
        "text", "文本", "文字", str, "input", "head_input",
        normalise=lambda raw, at, choices, period: as_text(raw, at),
        differences=(_SPACES_ONLY,)),
    FieldType(
        "long_text", "长文本", "文字", str, "input_long", "head_input",
        normalise=lambda raw, at, choices, period: as_text(raw, at),
        differences=(_SPACES_ONLY,)),
    FieldType(
        "integer", "非负整数", "不小于 0 的整数，如 5", int, "input_int", "head_input",
        normalise=lambda raw, at, choices, period: as_number(raw, at, whole=True, limit=INTEGER_MAX),
        classify=_integer,
        validation={"validate": "integer", "criteria": "between", "minimum": 0, "maximum": INTEGER_MAX},
        error="“{label}”请填写不小于 0 的整数（不超过 100 万）。",
        lenient=_LENIENT_NUMBER, shown_as_typed=_misshown_integer, differences=_NUMBER_DIFFERENCES),
    FieldType(
        "number", "非负数", "不小于 0 的数，如 12", float, "input_num", "head_input",
        normalise=lambda raw, at, choices, period: as_number(raw, at, whole=False, limit=AMOUNT_MAX),
        classify=_number,
        validation={"validate": "decimal", "criteria": "between", "minimum": 0, "maximum": AMOUNT_MAX},
        error="“{label}”请填写不小于 0 的数（不超过 1 亿）。",
        lenient=_LENIENT_NUMBER, differences=_NUMBER_DIFFERENCES),
    FieldType(
        "signed_number", "数（可为负）", "数，可为负数，如 12 或 -3", float, "input_num", "head_input",
        normalise=lambda raw, at, choices, period: as_number(raw, at, whole=False, limit=AMOUNT_MAX, signed=True),
        classify=_signed_number,
        validation={"validate": "decimal", "criteria": "between", "minimum": -AMOUNT_MAX, "maximum": AMOUNT_MAX},
        error="“{label}”请填写数（可为负数，绝对值不超过 1 亿）。",
        lenient=_LENIENT_NUMBER, differences=_NUMBER_DIFFERENCES),
    FieldType(
        "date", "日期", "日期，如 2026-03-05", dt.date, "input_date", "head_date",
        normalise=lambda raw, at, choices, period: as_date(raw, at, period),
        classify=_date,
        validation={"validate": "date", "criteria": "between", "minimum": DATE_MIN, "maximum": DATE_MAX},
        error="“{label}”请填写日期，如 2026-03-05。",
        lenient="写成文字的日期（“2026年3月5日”“2026/3/5”“2026.3.5”）：系统按日期读取并提醒；表内自查请改为日期",
        shown_as_typed=_misshown_date,
        differences=(
            _SPACES_ONLY,
            Difference("wrong", "warned", ("２０２６年３月５日", "3月5日", "2026-03-05 15:30"),
                       "全角数字的日期、不写年份的日期（系统按报送期补年份）、写成文字又带时间的日期（系统只取日期）："
                       "表内自查请写成带年份的日期"),
            Difference("wrong", "ok", (dt.datetime(1999, 12, 31), dt.datetime(2100, 1, 1)),
                       "表内只收 2000—2099 年的日期；系统收任何日期，再按报送期核对是否在填报时段内"),
            Difference("wrong", "warned", ("1999-12-31",),
                       "写成文字、在 2000—2099 年以外的日期：同上，表内按超出范围处理"),
            Difference("ok", "warned", (46086.0,),
                       "日期格里的序号数（单元格格式丢失时）：表内看作日期，系统按日期读取并提醒"),
        )),
    FieldType(
        "choice", "选项", "从下拉列表选择", str, "input", "head_input",
        normalise=lambda raw, at, choices, period: as_choice(raw, at, choices),
        classify=_choice,
        validation={"validate": "list"},
        error="“{label}”请从下拉列表中选择。",
        lenient="多了空格的选项（“ 实地走访”）：系统按选项读取并提醒；表内自查请从下拉列表选择",
        differences=(
            _SPACES_ONLY,
            Difference("wrong", "warned", ("ＡＢＣ",),
                       "全角字母或数字写的选项：系统折算后认得，表内公式不能折算"),
            Difference("ok", "warned", ("abc",),
                       "大小写不同的选项：表内比较不分大小写，系统读取并提醒"),
        )),
    FieldType(
        "yes_no", "是否", "“是”或“否”", str, "input", "head_input",
        normalise=lambda raw, at, choices, period: as_choice(raw, at, choices),
        classify=_choice,
        validation={"validate": "list"},
        error="“{label}”请选择“是”或“否”。",
        choices=YES_NO, list_name=list_name("yes_no"),
        lenient="多了空格的“是”“否”：系统读取并提醒；表内自查请从下拉列表选择",
        differences=(_SPACES_ONLY,)),
    FieldType(
        "period", "报送期", "报送期，如 2026-03 或 2026-Q1", str, "input_period", "head_period",
        normalise=lambda raw, at, choices, period: as_period(raw, at),
        classify=_period,
        differences=(
            _SPACES_ONLY,
            Difference("ok", "error", ("2026-13", "三月"),
                       "报送期的写法很多（2026-03、2026年3月、2026-Q1、2026年第1季度…），只由系统辨认；表内只查它不是数字或日期"),
            Difference("wrong", "warned", (dt.datetime(2026, 3, 1),),
                       "某月 1 日的日期（Excel、WPS 把填进常规格的“2026年3月”变成了日期）：系统按该月读取并提醒；"
                       "表内自查请改成文字"),
        )),
)}


# --- the target tracker: what a row of each kind of task asks for -------------------------------------------------


@dataclass(frozen=True)
class TaskKind:
    """One kind of task (roster.Task.kind): the inputs its tracker row asks for and its formulas, and everything
    else that differs by kind (its name, how its target is shown and checked, what its 填报口径 says).

    `inputs` overrides the spec's column types: a column listed with None is not asked (locked, NOT_ASKED), a
    column listed with a type takes that type, any other input column keeps the type the spec gives it."""

    id: str
    zh: str  # its name in Chinese (名单与目标.xlsx's 指标类型, the master's 指标类型, messages)
    inputs: dict[str, str | None]
    required: tuple[str, ...]
    pair: tuple[str, str] | None = None  # (完成数, 基数): filled together, the rate is the one over the other
    not_above: bool = False  # … and the first may not exceed the second
    formulas: dict[str, Callable[[dict[str, F.Expr], str], F.Expr]] = field(default_factory=dict)
    percent: bool = False  # its target and 完成率 are percentages (目标值 0.2 = 20%)
    target_max: float | None = None  # the largest target it takes (1 = 100% for a share)
    basis: str = ""  # the tracker's 填报口径, over the task's fields ({numerator_label}, {indicator}…)
    differences: tuple[Difference, ...] = ()  # examples are (完成数, 基数) as typed

    def input_type(self, col) -> str | None:
        """The field type of an input column (a specs.Column) in a row of this kind; None if not asked."""
        return self.inputs.get(col.id, col.type)

    @property
    def numeric(self) -> bool:
        """Whether its 完成数 is a number, against a target value, summed city-wide: a kind with a 完成率."""
        return "rate" in self.formulas

    def over(self, cells: dict[str, F.Expr]) -> F.Expr:
        """自查 of 完成数 ≤ 基数: wrong when both are numbers and the first is the larger."""
        assert self.not_above and self.pair is not None  # asked only of a kind with the rule (TaskKind.not_above)
        low, high = (cells[c] for c in self.pair)
        return F.AND(F.ISNUMBER(low), F.ISNUMBER(high), F.cmp(F.N(low), ">", F.N(high)))

    def above(self, values: dict[str, Any]) -> bool:
        """The validator's test of the same rule, on the values it read (numbers, or None)."""
        assert self.not_above and self.pair is not None  # asked only of a kind with the rule (TaskKind.not_above)
        low, high = (values.get(c) for c in self.pair)
        return low is not None and high is not None and low > high


NOT_ABOVE_EXPECTED = "，且不小于完成数"
GROWTH_TARGET_MAX = 10.0  # 1000 %: a growth target above it is surely a percentage typed as a number (20 for 20 %)
_OVER_BASE = {"rate": lambda c, op: F.rate(c["done"], c["base"]),  # 完成数 ÷ 基数 against the target
              "met": lambda c, op: F.met(c["rate"], c["target"], op)}
_PAIR_BASIS = "完成数：{numerator_label}；基数：{denominator_label}"
# a ratio of nothing to cover (0 of a base of 0: no such firms in the unit) is met, as the assessment scores it;
# its 完成率 stays blank (no division). A growth over a base of 0 cannot be worked out: blank, as _OVER_BASE says.
_RATIO = {"rate": _OVER_BASE["rate"],
          "met": lambda c, op: F.IF(F.AND(F.ISNUMBER(c["done"]), F.ISNUMBER(c["base"]), F.cmp(c["base"], "=", 0),
                                          F.cmp(c["done"], "=", 0)), "达标", F.met(c["rate"], c["target"], op))}

TASK_KINDS: dict[str, TaskKind] = {k.id: k for k in (
    # a share of things counted (firms with a league branch of all firms): both whole numbers
    TaskKind("ratio", "比率", {"done": "integer", "base": "integer"}, ("done", "base"), ("done", "base"), True, _RATIO, True, 1.0, _PAIR_BASIS, (
        Difference("retype", "error", (("12", 10.0),),
                   "完成数大于基数：表内只在两格都是数时比较，写成文字的数先提示改为纯数字（改后即比较）；"
                   "系统按读出的数比较"),)),
    # growth over a base (活跃度提升率): 完成数 is the change since the base, more than the base or below 0
    TaskKind("growth", "增长", {"done": "signed_number"}, ("done", "base"), ("done", "base"), False, _OVER_BASE,
             True, GROWTH_TARGET_MAX, _PAIR_BASIS),
    TaskKind("count", "数量", {"done": "integer", "base": None}, ("done",), formulas={
        "rate": lambda c, op: F.rate(c["done"], c["target"]),
        "met": lambda c, op: F.met(c["done"], c["target"], op)}, basis="完成数：{indicator}"),
    TaskKind("yesno", "是否", {"done": "yes_no", "base": None}, ("done",), formulas={
        "met": lambda c, op: F.met(c["done"], YES_NO[0], "=")}, basis="完成值填“是”或“否”"),
    TaskKind("qualitative", "定性", {"done": None, "base": None}, ("progress",), basis="在“进展情况”中填写"),
)}
KINDS_ZH = {k.id: k.zh for k in TASK_KINDS.values()}
TRACKER_FORMULAS = ("rate", "met")  # what a tracker column's `formula` may name
