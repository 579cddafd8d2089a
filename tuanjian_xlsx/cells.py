"""A1 references <-> zero-based (row, col); the one converter the package uses."""

from __future__ import annotations

import re
from functools import lru_cache

MAX_ROW = 1_048_576
MAX_COL = 16_384  # XFD

_CELL = re.compile(r"^\$?([A-Za-z]{1,3})\$?([0-9]{1,7})$")


def col_to_letters(col: int) -> str:
    """0 -> 'A', 16383 -> 'XFD'."""
    if not 0 <= col < MAX_COL:
        raise ValueError(f"column out of range: {col}")
    letters = ""
    n = col + 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def letters_to_col(letters: str) -> int:
    """'A' -> 0, 'XFD' -> 16383."""
    n = 0
    for ch in letters.upper():
        if not "A" <= ch <= "Z":
            raise ValueError(f"not a column: {letters!r}")
        n = n * 26 + (ord(ch) - 64)
    if not 1 <= n <= MAX_COL:
        raise ValueError(f"column out of range: {letters!r}")
    return n - 1


@lru_cache(maxsize=8192)  # a form's cells are the same in every file read and every master written
def parse_cell(ref: str) -> tuple[int, int]:
    """'C7' or '$C$7' -> (6, 2)."""
    m = _CELL.match(ref.strip())
    if not m:
        raise ValueError(f"not a cell reference: {ref!r}")
    row = int(m.group(2))
    if not 1 <= row <= MAX_ROW:
        raise ValueError(f"row out of range: {ref!r}")
    return row - 1, letters_to_col(m.group(1))


@lru_cache(maxsize=65536)
def cell_name(row: int, col: int, absolute: bool = False) -> str:
    """(6, 2) -> 'C7' ('$C$7' when absolute)."""
    if not 0 <= row < MAX_ROW:
        raise ValueError(f"row out of range: {row}")
    d = "$" if absolute else ""
    return f"{d}{col_to_letters(col)}{d}{row + 1}"


@lru_cache(maxsize=4096)
def parse_range(ref: str) -> tuple[int, int, int, int]:
    """'B4:D4' -> (3, 1, 3, 3); a single cell is a 1x1 range."""
    first, _, last = ref.partition(":")
    r1, c1 = parse_cell(first)
    r2, c2 = parse_cell(last) if last else (r1, c1)
    if r2 < r1 or c2 < c1:
        raise ValueError(f"range is reversed: {ref!r}")
    return r1, c1, r2, c2


def range_name(r1: int, c1: int, r2: int, c2: int, absolute: bool = False) -> str:
    a = cell_name(r1, c1, absolute)
    return a if (r1, c1) == (r2, c2) else f"{a}:{cell_name(r2, c2, absolute)}"


def quote_sheet(sheet: str) -> str:
    """Sheet name as it stands in a formula: 'Sheet 1' -> "'Sheet 1'"."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", sheet) and not _CELL.match(sheet):
        return sheet
    return "'" + sheet.replace("'", "''") + "'"
