"""自查 without macros: each checked input gets a state cell, and one line above the form counts them.

A state is 待填 (required and empty), 有误, 需改 (the validator will read it, with a warning, but the sheet asks for a
plain number, date or choice) or "". It is a `formulas` expression built from the input's field type (see
`fieldtypes`), so its text and its cached value come from one definition; the red and yellow marks on the inputs are
conditional formats that compare the state cell, and the 自查 line counts the states.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import formulas as F
from .cells import parse_range
from .fieldtypes import FIELD_TYPES, RETYPE, RIGHT, TASK_KINDS, WRONG, empty

TO_FILL = "待填"
STATES = (TO_FILL, WRONG, RETYPE)
ALL_GOOD = "自查：必填项已填齐，未发现格式错误。"
_RETYPE_NOTE = "项需改为纯数字、日期或下拉列表中的写法（系统会按读出的值接收并提醒，见黄色单元格）"


def state(field_type: str, x: F.Expr, *, required: bool | F.Expr, choices: F.Range | None = None,
          wrong_also: F.Expr | None = None) -> F.Expr | None:
    """The 自查 state of input x; None when there is nothing to check (optional free text). `required` may be a
    condition (a tracker row only some unit types report); `wrong_also` is one more reason to call a filled cell
    wrong (完成数 above 基数)."""
    ftype = FIELD_TYPES[field_type]
    if required is False and ftype.classify is None and wrong_also is None:
        return None
    filled: F.Expr = ftype.classify(x, choices) if ftype.classify else F.lit(RIGHT)
    if wrong_also is not None:
        filled = F.IF(wrong_also, WRONG, filled)
    if required is True:
        when_empty: object = TO_FILL
    elif required is False:
        when_empty = RIGHT
    else:
        when_empty = F.IF(required, TO_FILL, RIGHT)
    return F.IF(empty(x), when_empty, filled)


def is_state(cell: F.Expr, which: str) -> F.Expr:
    """A conditional format's condition: the state cell says `which`."""
    return F.cmp(cell, "=", which)


def summary(to_fill: F.Expr, wrong: F.Expr, retype: F.Expr) -> F.Expr:
    """The 自查 line from the three counts."""
    head = F.IF(F.cmp(F.plus(to_fill, wrong), "=", 0), "自查：必填项已填齐",
                F.concat("自查：还有", to_fill, "项必填未填，", wrong, "项格式有误（见红色单元格）"))
    tail = F.IF(F.cmp(retype, "=", 0), "。", F.concat("；", retype, _RETYPE_NOTE + "。"))
    return F.IF(F.cmp(F.plus(to_fill, wrong, retype), "=", 0), ALL_GOOD, F.concat(head, tail))


def summary_over(states: F.Range) -> F.Expr:
    """The 自查 line over a block of state cells."""
    return summary(*(F.COUNTIF(states, s) for s in STATES))


def summary_text(to_fill: int, wrong: int, retype: int = 0) -> str:
    """What the 自查 line says for these counts (the same expression, evaluated)."""
    return summary(F.lit(to_fill), F.lit(wrong), F.lit(retype)).value(F.Grid(), "")


# --- one cell's expressions as text and as values, for callers that write their own sheets ------------------------
# (tests/test_libreoffice.py holds them to LibreOffice). The expressions are built over stand-in cells, rendered with
# the caller's cell text (which may be a template such as "$A${r}") and evaluated over a grid holding the values.

_X, _Y = F.ref(1048575, 16383, absolute=True), F.ref(1048574, 16383, absolute=True)


def _render(expr: F.Expr, **cells: str) -> str:
    text = expr.text()
    for stand_in, cell in ((_X, cells.get("x")), (_Y, cells.get("y"))):
        if cell is not None:
            text = text.replace(stand_in.text(), cell)
    return text


def _holds(expr: F.Expr, x, y=None, listed: dict | None = None) -> bool:
    grid = F.Grid()
    grid.set("", _X.r, _X.c, x)
    grid.set("", _Y.r, _Y.c, y)
    for (r, c), v in (listed or {}).items():
        grid.set("", r, c, v)
    return expr.value(grid, "") is True


@dataclass(frozen=True)
class Check:
    """One input cell's 自查 (from its field type), as formula text and evaluated."""

    cell: str  # e.g. $B$4
    type: str
    required: bool = False
    choices_ref: str | None = None  # e.g. $Z$1:$Z$3
    choices: tuple[str, ...] = ()

    def _invalid(self) -> F.Expr | None:
        ftype = FIELD_TYPES[self.type]
        choices = F.rng(*parse_range(self.choices_ref)) if self.choices_ref else None
        return None if ftype.classify is None else ftype.invalid(_X, choices)

    def _listed(self) -> dict:
        if not self.choices_ref:
            return {}
        r1, c1, r2, _ = parse_range(self.choices_ref)
        return {(r, c1): v for r, v in zip(range(r1, r2 + 1), self.choices)}

    def empty_expr(self) -> str:
        return _render(empty(_X), x=self.cell)

    def invalid_expr(self) -> str | None:
        e = self._invalid()
        return None if e is None else _render(e, x=self.cell)

    def is_empty(self, v) -> bool:
        return _holds(empty(_X), v)

    def is_invalid(self, v) -> bool:
        e = self._invalid()
        return e is not None and _holds(e, v, listed=self._listed())


@dataclass(frozen=True)
class NotAbove:
    """完成数 above 基数 when both are numbers (fieldtypes.TaskKind.over), as formula text and evaluated."""

    done: str
    base: str

    @staticmethod
    def _expr() -> F.Expr:
        return TASK_KINDS["ratio"].over({"done": _X, "base": _Y})

    def invalid_expr(self) -> str:
        return _render(self._expr(), x=self.done, y=self.base)

    def is_invalid(self, done, base) -> bool:
        return _holds(self._expr(), done, base)
