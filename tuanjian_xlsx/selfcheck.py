"""自查 without macros: formula text for Excel/WPS/LibreOffice and the same rule in Python for cached values.

Each check is written twice on purpose, side by side: `*_expr` is what the spreadsheet evaluates, `is_*` gives
the identical result in Python so every formula can carry its true cached value. The LibreOffice tests hold
the two together.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .xlsxio import excel_serial

DATE_MIN = dt.date(2000, 1, 1)
DATE_MAX = dt.date(2099, 12, 31)
_DMIN, _DMAX = excel_serial(DATE_MIN), excel_serial(DATE_MAX)


def _is_number(v) -> bool:
    return isinstance(v, (int, float, dt.date, dt.time)) and not isinstance(v, bool)


def excel_number(v) -> float:
    """A number, date, datetime or time as the number Excel stores (dates as 1900-system serials)."""
    if isinstance(v, dt.datetime):
        return excel_serial(v.date()) + (v - dt.datetime.combine(v.date(), dt.time())).total_seconds() / 86400
    if isinstance(v, dt.date):
        return excel_serial(v)
    if isinstance(v, dt.time):
        return (v.hour * 3600 + v.minute * 60 + v.second + v.microsecond / 1e6) / 86400
    return float(v)


def _nonblank(v) -> bool:
    """LEN(TRIM(x))>0: Excel's TRIM removes only the ASCII space."""
    if v is None:
        return False
    if _is_number(v) or isinstance(v, bool):
        return True
    return len(str(v).strip(" ")) > 0


@dataclass(frozen=True)
class Check:
    """One input cell: is it required, and what makes its content invalid."""

    cell: str  # absolute, e.g. $B$4
    type: str
    required: bool = False
    choices_ref: str | None = None  # e.g. _lists!$C$2:$C$6
    choices: tuple[str, ...] = ()

    def empty_expr(self) -> str:
        return f"LEN(TRIM({self.cell}))=0"

    def invalid_expr(self) -> str | None:
        a = self.cell
        if self.type == "integer":
            return f"IF(ISNUMBER({a}),OR({a}<0,{a}<>INT({a})),LEN(TRIM({a}))>0)"
        if self.type == "number":
            return f"IF(ISNUMBER({a}),{a}<0,LEN(TRIM({a}))>0)"
        if self.type == "date":
            return f"IF(ISNUMBER({a}),OR({a}<{_DMIN},{a}>{_DMAX}),LEN(TRIM({a}))>0)"
        if self.type == "choice":
            # SUMPRODUCT of an equality, not COUNTIF: COUNTIF reads * ? ~ < > in the value as patterns
            return f"AND(LEN(TRIM({a}))>0,SUMPRODUCT(--({self.choices_ref}={a}))=0)"
        if self.type == "period":
            return f"ISNUMBER({a})"
        return None

    def is_empty(self, v) -> bool:
        return not _nonblank(v)

    def is_invalid(self, v) -> bool:
        if self.type == "integer":
            return (excel_number(v) < 0 or excel_number(v) != int(excel_number(v))) if _is_number(v) else _nonblank(v)
        if self.type == "number":
            return excel_number(v) < 0 if _is_number(v) else _nonblank(v)
        if self.type == "date":
            return not (_DMIN <= excel_number(v) <= _DMAX) if _is_number(v) else _nonblank(v)
        if self.type == "choice":
            return _nonblank(v) and str(v).casefold() not in {c.casefold() for c in self.choices}
        if self.type == "period":
            return _is_number(v)
        return False


@dataclass(frozen=True)
class NotAbove:
    """完成数 must not exceed 基数 when both are numbers."""

    done: str
    base: str

    def invalid_expr(self) -> str:
        return f"AND(ISNUMBER({self.done}),ISNUMBER({self.base}),N({self.done})>N({self.base}))"

    def is_invalid(self, done, base) -> bool:
        return _is_number(done) and _is_number(base) and excel_number(done) > excel_number(base)


def count_expr(terms: list[str]) -> str:
    """Booleans added as numbers: (a)+(b)+…; one term alone gets 0+ so the result is a number, not TRUE."""
    if not terms:
        return "0"
    joined = "+".join(f"({t})" for t in terms)
    return joined if len(terms) > 1 else "0+" + joined


def summary_formula(empty: str, invalid: str) -> str:
    return (
        f'=IF(({empty})+({invalid})=0,"自查：必填项已填齐，未发现格式错误。",'
        f'"自查：还有"&({empty})&"项必填未填，"&({invalid})&"项格式有误（见红色单元格）。")'
    )


def summary_text(empty: int, invalid: int) -> str:
    if empty + invalid == 0:
        return "自查：必填项已填齐，未发现格式错误。"
    return f"自查：还有{empty}项必填未填，{invalid}项格式有误（见红色单元格）。"
