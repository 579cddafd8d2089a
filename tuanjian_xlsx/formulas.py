"""Formulas as values: one definition gives a formula's Excel text and its cached value.

A formula is built from the small expression types below (`ref`, `rng`, `lit`, the functions IF, COUNTIF, … and
the operators). `Expr.text(sheet)` renders what Excel, WPS and LibreOffice evaluate; `Expr.value(grid, sheet)`
evaluates the same tree in Python with Excel's semantics, over the cell values *as they stand in the written
file* (a `Grid`: literals as written, other formulas evaluated in turn). Nothing else in the package writes formula
text beside a value worked out another way.

Excel's semantics, as far as the product's formulas use them:
- arithmetic takes a blank as 0, TRUE/FALSE as 1/0 and numeric text ("12", " 1.5 ", "40%") as its number; other
  text is #VALUE!; division by zero is #DIV/0!; an error passes through whatever it meets;
- comparison takes a blank as 0 beside a number and "" beside text; text compares without case; numbers compare
  at 15 significant digits (0.6/1.5 >= 0.4 is TRUE); numbers sort before text, text before TRUE/FALSE (the order
  of two texts by < or > follows each program's locale collation: no formula here relies on it);
- COUNTIF(S)/SUMIF(S) match criteria as Excel does: an operator prefix, numbers against numbers (and numeric
  text), text with the wildcards * ? ~ and without case, "" for blank cells.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from collections.abc import Callable, Iterable

from .cells import cell_name


# --- values ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Error:
    """An Excel error value (#DIV/0!, #VALUE!, #N/A)."""

    code: str

    def __str__(self) -> str:
        return self.code


DIV0, VALUE, NA, NUM = Error("#DIV/0!"), Error("#VALUE!"), Error("#N/A"), Error("#NUM!")
_EPOCH = dt.datetime(1899, 12, 30)


def stored(v):
    """A Python value as a spreadsheet file stores it: dates and times as serial numbers, ints as floats,
    "" and None as blank."""
    if v is None or isinstance(v, (bool, Error)):
        return v
    if isinstance(v, dt.datetime):
        return (v - _EPOCH).total_seconds() / 86400
    if isinstance(v, dt.date):
        return float((v - _EPOCH.date()).days)
    if isinstance(v, (int, float)):
        return float(v)
    return None if v == "" else str(v)


def cached(v):
    """A computed value as XlsxWriter's write_formula takes it (an error as its code, a whole number as int)."""
    if isinstance(v, Error):
        return v.code
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return int(v)
    return v


# ASCII digits only: LibreOffice reads "５" (full-width) in arithmetic as #VALUE!, not 5
_NUMERIC_TEXT = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?%?$", re.ASCII)


_ISO_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$", re.ASCII)


def text_number(s: str) -> float | None:
    """Numeric text as the engines convert it in arithmetic ("12", " 1.5 ", "1e3", "40%", "2026-03-05" as its
    date serial); None for other text."""
    t = s.strip(" ")
    if _NUMERIC_TEXT.match(t):
        return float(t[:-1]) / 100 if t.endswith("%") else float(t)
    if t.upper() in ("TRUE", "FALSE"):  # LibreOffice reads these as 1 and 0 (Excel says #VALUE!)
        return 1.0 if t.upper() == "TRUE" else 0.0
    m = _ISO_DATE.match(t)
    if m:
        try:
            return float((dt.date(int(m[1]), int(m[2]), int(m[3])) - _EPOCH.date()).days)
        except ValueError:
            return None
    return None


_E44, _E48 = 2.0 ** -44, 2.0 ** -48


def approx_equal(a: float, b: float) -> bool:
    """Equal but for the last 4 bits of their magnitude (LibreOffice's rtl::math::approxEqual): a + and a - whose
    operands are equal so are exactly 0, as in Excel and LibreOffice — "0.3" typed as text minus 0.1+0.2 is 0, not
    -5.55e-17 (both programs cancel such operands; a cached value must say what they show)."""
    if a == b:
        return True
    if a == 0 or b == 0:
        return False
    d = abs(a - b)
    if not math.isfinite(d):
        return False
    a, b = abs(a), abs(b)
    if d > a * _E44 or d > b * _E44:
        return False
    if all(v.is_integer() and v <= 2.0 ** 53 for v in (d, a, b)):
        return False  # integers that differ: different
    return d < a * _E48 and d < b * _E48


def to_number(v) -> float | Error:
    if isinstance(v, Error):
        return v
    if v is None:
        return 0.0
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    if isinstance(v, (int, float)):
        return float(v)
    n = text_number(str(v))
    return VALUE if n is None else n


def to_text(v) -> str | Error:
    if isinstance(v, Error):
        return v
    if v is None:
        return ""
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        text = f"{v:.15g}"
        if "e" in text:
            mantissa, exponent = text.split("e")
            if not -15 < int(exponent) < 16:  # 1E+016, 9.9E-015: as LibreOffice's General joins them
                return f"{mantissa}E{exponent[0]}{abs(int(exponent)):03d}"
            # written out in full (1E+15 -> 1000000000000000), to 20 decimals at most
            d = Decimal(text)
            text = format(d.quantize(Decimal(1).scaleb(-20), ROUND_HALF_UP) if int(exponent) < 0 else d, "f")
            text = text.rstrip("0").rstrip(".") if "." in text else text
        return text
    return str(v)


def to_bool(v) -> bool | Error:
    if isinstance(v, Error):
        return v
    if v is None:
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, float):
        return v != 0
    up = str(v).strip().upper()
    return {"TRUE": True, "FALSE": False}.get(up, VALUE)


def round15(x: float) -> float:
    """A number at Excel's 15 significant digits, as its comparisons see it."""
    if x == 0 or not math.isfinite(x) or (float(x).is_integer() and -1e15 < x < 1e15):  # (15 digits or fewer: itself)
        return x
    return float(f"{x:.15g}")


def _rank(v) -> int:
    return 0 if isinstance(v, float) else 1 if isinstance(v, str) else 2


def compare(a, b) -> int | Error:
    """-1, 0 or 1 as Excel orders two values (blank beside a number is 0, beside text is "")."""
    for v in (a, b):
        if isinstance(v, Error):
            return v
    if a is None and b is None:
        return 0
    if a is None:
        a = 0.0 if isinstance(b, float) else "" if isinstance(b, str) else False
    if b is None:
        b = 0.0 if isinstance(a, float) else "" if isinstance(a, str) else False
    if _rank(a) != _rank(b):
        return -1 if _rank(a) < _rank(b) else 1
    if isinstance(a, float):
        a, b = round15(a), round15(b)
    elif isinstance(a, str):
        a, b = a.lower(), b.lower()
    return (a > b) - (a < b)


# --- the grid: cell values as they stand in the written file --------------------------------------------------


class Grid:
    """The workbook's cells as the engines will see them: literals as written (see `stored`), formulas as their
    expressions, evaluated on demand (each once)."""

    def __init__(self) -> None:
        self._cells: dict[tuple[str, int, int], object] = {}
        self._done: dict[tuple[str, int, int], object] = {}
        self._ranges: dict[tuple, list] = {}  # a range's values, once all its cells are known
        self._matches: dict[tuple, frozenset[int]] = {}  # (range, criterion) -> positions it matches
        self._numbers: dict[tuple, dict[float, frozenset[int]]] = {}  # range -> its numbers' positions

    def set(self, sheet: str, r: int, c: int, value) -> None:
        self._cells[(sheet, r, c)] = value if isinstance(value, Expr) else stored(value)
        if self._done or self._ranges:
            self._done.clear()
            self._ranges.clear()
            self._matches.clear()
            self._numbers.clear()

    def absent(self, sheet: str, r: int, c: int) -> None:
        """A formula reads a cell holding nothing: a blank (a grid that keeps only some cells may say otherwise)."""

    def range_values(self, sheet: str, r1: int, c1: int, r2: int, c2: int) -> list:
        key = (sheet, r1, c1, r2, c2)
        if key not in self._ranges:
            self._ranges[key] = [self.value(sheet, r, c) for r in range(r1, r2 + 1) for c in range(c1, c2 + 1)]
        return self._ranges[key]

    def matching(self, sheet: str, range_: Range, criterion) -> frozenset[int]:
        """Positions in the range that a COUNTIF criterion matches; each (range, criterion) worked out once, so a
        sheet of COUNTIFS over the same columns costs a scan per distinct criterion, not per formula."""
        s = range_.sheet or sheet
        if criterion is None or isinstance(criterion, float):  # a number (blank means 0) matches equal numbers:
            return self._number_positions(s, range_).get(round15(criterion or 0.0), frozenset())  # looked up
        key = (s, range_.r1, range_.c1, range_.r2, range_.c2, type(criterion).__name__, criterion)
        if key not in self._matches:
            test = matcher(criterion)
            values = self.range_values(s, range_.r1, range_.c1, range_.r2, range_.c2)
            self._matches[key] = frozenset(i for i, v in enumerate(values) if test(v))
        return self._matches[key]

    def _number_positions(self, s: str, range_: Range) -> dict[float, frozenset[int]]:
        """The range's numbers at Excel's 15 digits -> where they stand (as `matcher` compares a number), made once
        per range: a sheet of COUNTIFS by unit and period number costs one scan per column."""
        key = (s, range_.r1, range_.c1, range_.r2, range_.c2)
        if key not in self._numbers:
            where: dict[float, list[int]] = {}
            for i, v in enumerate(self.range_values(*key)):
                if isinstance(v, float) and v == v:  # NaN equals nothing
                    where.setdefault(round15(v), []).append(i)
            self._numbers[key] = {k: frozenset(p) for k, p in where.items()}
        return self._numbers[key]

    def value(self, sheet: str, r: int, c: int):
        key = (sheet, r, c)
        v = self._cells.get(key)
        if not isinstance(v, Expr):
            if v is None:
                self.absent(sheet, r, c)
            return v
        if key not in self._done:
            self._done[key] = VALUE  # a circular reference evaluates to an error, not a hang
            self._done[key] = v.value(self, sheet)
        return self._done[key]


# --- expressions ------------------------------------------------------------------------------------------------


class Expr:
    """A formula (or part of one). Operators build bigger expressions: + - * / and & (text join)."""

    def text(self, sheet: str | None = None) -> str:
        raise NotImplementedError

    def value(self, grid: Grid, sheet: str):
        raise NotImplementedError

    def formula(self, sheet: str | None = None) -> str:
        return "=" + self.text(sheet)

    def __add__(self, other):
        return Op("+", self, _e(other))

    def __radd__(self, other):
        return Op("+", _e(other), self)

    def __sub__(self, other):
        return Op("-", self, _e(other))

    def __mul__(self, other):
        return Op("*", self, _e(other))

    def __truediv__(self, other):
        return Op("/", self, _e(other))

    def __and__(self, other):
        return Op("&", self, _e(other))

    def __rand__(self, other):
        return Op("&", _e(other), self)


def _e(v) -> Expr:
    return v if isinstance(v, Expr) else Lit(v)


@dataclass(frozen=True, eq=False)
class Lit(Expr):
    v: object

    def text(self, sheet=None) -> str:
        v = self.v
        if isinstance(v, bool):
            return "TRUE" if v else "FALSE"
        if isinstance(v, (int, float)):
            return f"{float(v):.15g}" if isinstance(v, float) and not float(v).is_integer() else str(int(v))
        return '"' + str(v).replace('"', '""') + '"'

    def value(self, grid, sheet):
        v = self.v
        return float(v) if isinstance(v, int) and not isinstance(v, bool) else v


def _cell(r: int, c: int, absolute: bool | str) -> str:
    """C7, $C$7, or with absolute="col" $C7: a reference to the formula's own row that Excel moves with the row
    when the rows are sorted (it leaves $C$7 pointing at row 7, whichever row now stands there)."""
    return "$" + cell_name(r, c) if absolute == "col" else cell_name(r, c, bool(absolute))


def _qualified(target: str | None, sheet: str | None) -> str:
    if target is None or target == sheet:
        return ""
    return "'" + target.replace("'", "''") + "'!"


@dataclass(frozen=True, eq=False)
class Ref(Expr):
    sheet: str | None
    r: int
    c: int
    absolute: bool | str = False  # True: $C$7; "col": $C7, the column fixed and the row the formula's own

    def text(self, sheet=None) -> str:
        return _qualified(self.sheet, sheet) + _cell(self.r, self.c, self.absolute)

    def value(self, grid, sheet):
        return grid.value(self.sheet or sheet, self.r, self.c)


@dataclass(frozen=True, eq=False)
class Range(Expr):
    sheet: str | None
    r1: int
    c1: int
    r2: int
    c2: int
    absolute: bool | str = True  # as Ref's

    def text(self, sheet=None) -> str:
        return _qualified(self.sheet, sheet) + self._cells

    @functools.cached_property
    def _cells(self) -> str:
        """C7:C9 (worked out once: a range of a detail sheet is read by thousands of formulas)."""
        return _cell(self.r1, self.c1, self.absolute) + ":" + _cell(self.r2, self.c2, self.absolute)

    def values(self, grid, sheet) -> list:
        return grid.range_values(self.sheet or sheet, self.r1, self.c1, self.r2, self.c2)

    def value(self, grid, sheet):
        return VALUE  # a range is not a single value (no implicit intersection in our formulas)


def ref(r: int, c: int, sheet: str | None = None, absolute: bool | str = False) -> Ref:
    return Ref(sheet, r, c, absolute)


def rng(r1: int, c1: int, r2: int, c2: int, sheet: str | None = None, absolute: bool | str = True) -> Range:
    return Range(sheet, r1, c1, r2, c2, absolute)


def lit(v) -> Lit:
    return Lit(v)


@dataclass(frozen=True, eq=False)
class Op(Expr):
    op: str
    a: Expr
    b: Expr

    def text(self, sheet=None) -> str:
        return f"{_paren(self.a, sheet)}{self.op}{_paren(self.b, sheet)}"

    def value(self, grid, sheet):
        a, b = self.a.value(grid, sheet), self.b.value(grid, sheet)
        if self.op == "&":
            ta, tb = to_text(a), to_text(b)
            return ta if isinstance(ta, Error) else tb if isinstance(tb, Error) else ta + tb
        if self.op in _COMPARE:
            c = compare(a, b)
            return c if isinstance(c, Error) else _COMPARE[self.op](c)
        x, y = to_number(a), to_number(b)
        if isinstance(x, Error):
            return x
        if isinstance(y, Error):
            return y
        if self.op == "+":
            out = 0.0 if ((x < 0 < y) or (y < 0 < x)) and approx_equal(x, -y) else x + y
        elif self.op == "-":
            out = 0.0 if ((x < 0 and y < 0) or (x > 0 and y > 0)) and approx_equal(x, y) else x - y
        elif self.op == "*":
            out = x * y
        elif y == 0:
            return DIV0
        else:
            out = x / y
        return out if math.isfinite(out) else NUM  # beyond what a double holds (1E8 / 1E-305): #NUM!, as both show


_COMPARE: dict[str, Callable[[int], bool]] = {
    "=": lambda c: c == 0, "<>": lambda c: c != 0, "<": lambda c: c < 0, "<=": lambda c: c <= 0,
    ">": lambda c: c > 0, ">=": lambda c: c >= 0,
}


def _paren(e: Expr, sheet) -> str:
    """An operand's text, bracketed when it is an operation — one spelt its own way (plus) included: a-b+c for
    a-(b+c) reads otherwise in every program."""
    return f"({e.text(sheet)})" if isinstance(e, Op) or (isinstance(e, _Rendered) and isinstance(e.inner, Op)) \
        else e.text(sheet)


def cmp(a, op: str, b) -> Op:
    """A comparison: cmp(x, ">=", y) is x>=y."""
    if op not in _COMPARE:
        raise ValueError(op)
    return Op(op, _e(a), _e(b))


@dataclass(frozen=True, eq=False)
class Call(Expr):
    name: str
    args: tuple
    fn: Callable

    def text(self, sheet=None) -> str:
        return f"{self.name}(" + ",".join(a.text(sheet) for a in self.args) + ")"

    def value(self, grid, sheet):
        return self.fn(grid, sheet, *self.args)


def _values(grid, sheet, args) -> Iterable:
    """Values of function arguments: a range gives each of its cells."""
    for a in args:
        if isinstance(a, Range):
            yield from ((v, True) for v in a.values(grid, sheet))
        else:
            yield a.value(grid, sheet), False


def _if(grid, sheet, cond, yes, no):
    c = to_bool(cond.value(grid, sheet))
    if isinstance(c, Error):
        return c
    return (yes if c else no).value(grid, sheet)


def IF(cond, yes, no="") -> Call:
    return Call("IF", (_e(cond), _e(yes), _e(no)), _if)


def _logical(combine):
    def fn(grid, sheet, *args):
        seen = []
        for v, from_range in _values(grid, sheet, args):
            if isinstance(v, Error):
                return v
            if from_range and (v is None or isinstance(v, str)):
                continue  # text and blanks in references are ignored
            b = to_bool(v)
            if isinstance(b, Error):
                return b
            seen.append(b)
        return combine(seen) if seen else VALUE
    return fn


def AND(*args) -> Call:
    return Call("AND", tuple(_e(a) for a in args), _logical(all))


def OR(*args) -> Call:
    return Call("OR", tuple(_e(a) for a in args), _logical(any))


def _not(grid, sheet, a):
    b = to_bool(a.value(grid, sheet))
    return b if isinstance(b, Error) else not b


def NOT(a) -> Call:
    return Call("NOT", (_e(a),), _not)


def ISNUMBER(a) -> Call:
    return Call("ISNUMBER", (_e(a),), lambda g, s, x: isinstance(x.value(g, s), float))


def _n(grid, sheet, a):
    v = a.value(grid, sheet)
    if isinstance(v, Error):
        return v
    if isinstance(v, bool):
        return 1.0 if v else 0.0
    return v if isinstance(v, float) else 0.0


def N(a) -> Call:
    return Call("N", (_e(a),), _n)


def _len(grid, sheet, a):
    t = to_text(a.value(grid, sheet))
    return t if isinstance(t, Error) else float(len(t))


def LEN(a) -> Call:
    return Call("LEN", (_e(a),), _len)


def _trim(grid, sheet, a):
    t = to_text(a.value(grid, sheet))
    return t if isinstance(t, Error) else re.sub(" +", " ", t.strip(" "))


def TRIM(a) -> Call:
    """Excel's TRIM: the ASCII space only (a full-width space stays)."""
    return Call("TRIM", (_e(a),), _trim)


def _int(grid, sheet, a):
    x = to_number(a.value(grid, sheet))
    return x if isinstance(x, Error) else float(math.floor(x))


def INT(a) -> Call:
    return Call("INT", (_e(a),), _int)


def _iferror(grid, sheet, a, alt):
    v = a.value(grid, sheet)
    return alt.value(grid, sheet) if isinstance(v, Error) else v


def IFERROR(a, alt) -> Call:
    return Call("IFERROR", (_e(a), _e(alt)), _iferror)


def _sum(grid, sheet, *args):
    total = 0.0
    for v, from_range in _values(grid, sheet, args):
        if isinstance(v, Error):
            return v
        if from_range:
            if isinstance(v, float):
                total += v
            continue
        x = to_number(v)
        if isinstance(x, Error):
            return x
        total += x
    return total


def SUM(*args) -> Call:
    return Call("SUM", tuple(_e(a) for a in args), _sum)


def COUNT(*args) -> Call:
    return Call("COUNT", tuple(_e(a) for a in args),
                lambda g, s, *a: float(sum(isinstance(v, float) for v, _ in _values(g, s, a))))


def COUNTA(*args) -> Call:
    """Cells that are not blank; a formula's "" counts (it is not blank), as in Excel."""
    return Call("COUNTA", tuple(_e(a) for a in args),
                lambda g, s, *a: float(sum(v is not None for v, _ in _values(g, s, a))))


def _extreme(pick):
    """MIN/MAX as LibreOffice computes them: in a cell or range only numbers count (text and blanks are skipped);
    a value given directly is a number, TRUE/FALSE as 1/0, and text — even "3" — is #VALUE!; none at all is 0."""
    def fn(grid, sheet, *args):
        seen = []
        for a in args:
            if isinstance(a, (Range, Ref)):
                for v in a.values(grid, sheet) if isinstance(a, Range) else [a.value(grid, sheet)]:
                    if isinstance(v, Error):
                        return v
                    if isinstance(v, float):
                        seen.append(v)
                continue
            v = a.value(grid, sheet)
            if isinstance(v, (Error, str)):
                return v if isinstance(v, Error) else VALUE
            seen.append(to_number(v))
        return pick(seen) if seen else 0.0
    return fn


def MIN(*args) -> Call:
    return Call("MIN", tuple(_e(a) for a in args), _extreme(min))


def MAX(*args) -> Call:
    return Call("MAX", tuple(_e(a) for a in args), _extreme(max))


def _round(grid, sheet, x, digits):
    n = to_number(x.value(grid, sheet))
    d = to_number(digits.value(grid, sheet))
    if isinstance(n, Error) or isinstance(d, Error):
        return n if isinstance(n, Error) else d
    # half away from zero on the number as shown to 15 digits, as both engines do: ROUND(2.675,2) is 2.68
    try:
        return float(Decimal(f"{n:.15g}").quantize(Decimal(1).scaleb(-int(d)), rounding=ROUND_HALF_UP))
    except InvalidOperation:  # more digits than a number has (1E300 to two places): nothing to round
        return n


def ROUND(x, digits: int = 0) -> Call:
    return Call("ROUND", (_e(x), _e(digits)), _round)


# --- criteria (COUNTIF, COUNTIFS, SUMIFS) ---------------------------------------------------------------------------

_OPS = ("<=", ">=", "<>", "<", ">", "=")


def _wildcard(pattern: str) -> re.Pattern:
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "~" and i + 1 < len(pattern) and pattern[i + 1] in "*?~":
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "*" else "." if ch == "?" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def matcher(criterion) -> Callable[[object], bool]:
    """What a COUNTIF criterion matches (as LibreOffice and Excel agree): a number matches equal numbers; a blank
    criterion matches 0; text is an optional operator and a value — a number-like value matches equal numbers
    and the same text, other text matches text cells by wildcard pattern without case; "" and "=" match empty
    cells, "<>" the others."""
    if isinstance(criterion, Error):
        return lambda v: False
    if isinstance(criterion, bool):
        return lambda v: isinstance(v, bool) and v == criterion
    if criterion is None:
        criterion = 0.0
    if isinstance(criterion, float):
        return lambda v: isinstance(v, float) and round15(v) == round15(criterion)
    text = str(criterion)
    op = next((o for o in _OPS if text.startswith(o)), None)
    rest = text[len(op):] if op else text
    if rest == "" and op in (None, "=", "<>"):
        empty = lambda v: v is None or v == ""  # noqa: E731
        return (lambda v: not empty(v)) if op == "<>" else empty
    number = text_number(rest)
    pattern = _wildcard(rest)
    if op in (None, "=", "<>"):
        def equal(v) -> bool:
            if isinstance(v, float):
                return number is not None and round15(v) == round15(number)
            return isinstance(v, str) and pattern.fullmatch(v) is not None
        return (lambda v: not equal(v)) if op == "<>" else equal
    test = _COMPARE[op]
    if number is not None:
        def ordered(v) -> bool:
            c = compare(v, number) if isinstance(v, float) else None  # two numbers: never an Error
            return isinstance(c, int) and test(c)
        return ordered
    def ordered_text(v) -> bool:
        c = compare(v, rest) if isinstance(v, str) else None  # two texts: never an Error
        return isinstance(c, int) and test(c)
    return ordered_text


def _matched(grid, sheet, args) -> frozenset[int]:
    """Positions every (range, criterion) pair matches."""
    sets = [grid.matching(sheet, r, c.value(grid, sheet)) for r, c in zip(args[::2], args[1::2])]
    return frozenset.intersection(*sets) if sets else frozenset()


def _countifs(grid, sheet, *args):
    return float(len(_matched(grid, sheet, args)))


def COUNTIF(range_: Range, criterion) -> Call:
    return Call("COUNTIF", (range_, _e(criterion)), _countifs)


def COUNTIFS(*pairs) -> Call:
    """COUNTIFS(range1, criterion1, range2, criterion2, …)."""
    return Call("COUNTIFS", tuple(_e(a) for a in pairs), _countifs)


def _sumifs(grid, sheet, total, *args):
    values = total.values(grid, sheet)
    return sum((values[i] for i in sorted(_matched(grid, sheet, args)) if isinstance(values[i], float)), 0.0)


def SUMIFS(sum_range: Range, *pairs) -> Call:
    return Call("SUMIFS", (sum_range,) + tuple(_e(a) for a in pairs), _sumifs)


def _count_equal(grid, sheet, range_, x):
    target = x.value(grid, sheet)
    return float(sum(compare(v, target) == 0 for v in range_.values(grid, sheet)))


def COUNT_EQUAL(range_: Range, x) -> Expr:
    """SUMPRODUCT(--(range=x)): how many cells equal x by plain comparison (no wildcards, unlike COUNTIF)."""
    call = Call("SUMPRODUCT", (range_, _e(x)), _count_equal)
    return _Rendered(call, lambda sheet: f"SUMPRODUCT(--({range_.text(sheet)}={_e(x).text(sheet)}))")


@dataclass(frozen=True, eq=False)
class _Rendered(Expr):
    """An expression whose Excel text is spelt differently from its plain function form."""

    inner: Expr
    render: Callable

    def text(self, sheet=None) -> str:
        return self.render(sheet)

    def value(self, grid, sheet):
        return self.inner.value(grid, sheet)


def _vlookup(grid, sheet, x, table, col, exact):
    target = x.value(grid, sheet)
    if isinstance(target, Error):
        return target
    n = int(to_number(col.value(grid, sheet)))
    width = table.c2 - table.c1 + 1
    s = table.sheet or sheet
    for r in range(table.r1, table.r2 + 1):
        if compare(grid.value(s, r, table.c1), target) == 0 and grid.value(s, r, table.c1) is not None:
            return grid.value(s, r, table.c1 + n - 1) if n <= width else Error("#REF!")
    return NA


def VLOOKUP(x, table: Range, col: int) -> Call:
    """Exact match only (FALSE as the fourth argument)."""
    return Call("VLOOKUP", (_e(x), table, _e(col), Lit(False)), _vlookup)


def count_true(terms: list[Expr]) -> Expr:
    """Conditions added as numbers: (a)+(b)+…; one alone gets 0+ so the result is a number, not TRUE."""
    if not terms:
        return lit(0)
    total: Expr = Op("+", lit(0), terms[0]) if len(terms) == 1 else terms[0]
    for t in terms[1:]:
        total = Op("+", total, t)
    return total


def plus(*terms) -> Expr:
    """a+b+c…: the terms added left to right, written without the parentheses nested operators would get."""
    exprs = [_e(t) for t in terms]
    if not exprs:
        return lit(0)
    total = exprs[0]
    for t in exprs[1:]:
        total = Op("+", total, t)
    return total if len(exprs) == 1 else _Rendered(total, lambda sheet: "+".join(_paren(t, sheet) for t in exprs))


def rate(done, base) -> Expr:
    """完成率 as the forms spell it: blank while either is blank or the base is 0 (N(): text is not a base)."""
    done, base = _e(done), _e(base)
    return IF(OR(cmp(done, "=", ""), cmp(base, "=", "")), "", IF(cmp(N(base), "=", 0), "", done / base))


def met(value, target, op: str = ">=") -> Expr:
    """是否达标 as the forms spell it: blank while the value (or a target cell) is blank; the comparison at Excel's
    15 significant digits, so 12.6/63 meets 20 %. A literal target needs no blank test."""
    value, target = _e(value), _e(target)
    blank = cmp(value, "=", "") if isinstance(target, Lit) else OR(cmp(value, "=", ""), cmp(target, "=", ""))
    return IF(blank, "", IF(cmp(value, op, target), "达标", "未达标"))


# --- text functions (the 自查 of typed values) ---------------------------------------------------------------------
# Checked against LibreOffice in tests/test_fieldtypes.py. Arguments are joined as `&` joins them (numbers as their
# text); an error argument gives that error.


def _texts(grid, sheet, args) -> list | Error:
    out = []
    for a in args:
        t = to_text(a.value(grid, sheet))
        if isinstance(t, Error):
            return t
        out.append(t)
    return out


def _counts(grid, sheet, args) -> list | Error:
    """Whole-number arguments (lengths, positions) as Excel truncates them."""
    out = []
    for a in args:
        x = to_number(a.value(grid, sheet))
        if isinstance(x, Error):
            return x
        out.append(int(x))
    return out


def _substitute(grid, sheet, text, old, new):
    t = _texts(grid, sheet, (text, old, new))
    if isinstance(t, Error):
        return t
    return t[0] if t[1] == "" else t[0].replace(t[1], t[2])


def SUBSTITUTE(text, old, new) -> Call:
    """Every occurrence of old replaced (case-sensitive); an empty old changes nothing."""
    return Call("SUBSTITUTE", (_e(text), _e(old), _e(new)), _substitute)


def _abs(grid, sheet, a):
    x = to_number(a.value(grid, sheet))
    return x if isinstance(x, Error) else abs(x)


def ABS(a) -> Call:
    return Call("ABS", (_e(a),), _abs)


def _left(grid, sheet, text, n=None):
    t = _texts(grid, sheet, (text,))
    k = _counts(grid, sheet, (n,)) if n is not None else [1]
    for v in (t, k):
        if isinstance(v, Error):
            return v
    return VALUE if k[0] < 0 else t[0][: k[0]]


def LEFT(text, n=None) -> Call:
    """The first n characters (one without n); a negative n is #VALUE!."""
    return Call("LEFT", (_e(text),) + (() if n is None else (_e(n),)), _left)


def _right(grid, sheet, text, n=None):
    t = _texts(grid, sheet, (text,))
    k = _counts(grid, sheet, (n,)) if n is not None else [1]
    for v in (t, k):
        if isinstance(v, Error):
            return v
    return VALUE if k[0] < 0 else (t[0][len(t[0]) - k[0]:] if k[0] else "")


def RIGHT(text, n=None) -> Call:
    """The last n characters (one without n); a negative n is #VALUE!."""
    return Call("RIGHT", (_e(text),) + (() if n is None else (_e(n),)), _right)


def _mid(grid, sheet, text, start, n):
    t = _texts(grid, sheet, (text,))
    k = _counts(grid, sheet, (start, n))
    for v in (t, k):
        if isinstance(v, Error):
            return v
    if k[0] < 1 or k[1] < 0:
        return VALUE
    return t[0][k[0] - 1: k[0] - 1 + k[1]]


def MID(text, start, n) -> Call:
    return Call("MID", (_e(text), _e(start), _e(n)), _mid)


def _find(grid, sheet, needle, hay, start=None):
    t = _texts(grid, sheet, (needle, hay))
    k = _counts(grid, sheet, (start,)) if start is not None else [1]
    for v in (t, k):
        if isinstance(v, Error):
            return v
    if t[0] == "" or not 1 <= k[0] <= len(t[1]):  # an empty needle: LibreOffice #VALUE!, Excel the start
        return VALUE
    i = t[1].find(t[0], k[0] - 1)
    return VALUE if i < 0 else float(i + 1)


def FIND(needle, hay, start=None) -> Call:
    """The 1-based position of needle in hay (case-sensitive), #VALUE! if absent. No formula here looks for an
    empty text, where Excel and LibreOffice differ."""
    return Call("FIND", (_e(needle), _e(hay)) + (() if start is None else (_e(start),)), _find)


# --- defined names ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Named(Range):
    """A range through a workbook-level defined name: written as the name, evaluated as the cells it names (Excel
    before 2010 and some WPS builds refuse another sheet's cells in a conditional format, but take a name)."""

    name: str = ""

    def text(self, sheet=None) -> str:
        return self.name

    @property
    def target(self) -> Range:
        """The cells themselves: `named.target.formula()` is what the workbook defines the name as."""
        return Range(self.sheet, self.r1, self.c1, self.r2, self.c2, True)


def named(name: str, target: Range) -> Named:
    """`target` under a workbook-level name; `target.formula()` is what the name is defined as."""
    return Named(target.sheet, target.r1, target.c1, target.r2, target.c2, True, name)


def concat(*parts) -> Expr:
    """a&b&c…: joined left to right, written without the parentheses nested operators would get."""
    exprs = [_e(p) for p in parts]
    total = exprs[0]
    for p in exprs[1:]:
        total = Op("&", total, p)
    return total if len(exprs) == 1 else _Rendered(total, lambda sheet: "&".join(_paren(p, sheet) for p in exprs))
