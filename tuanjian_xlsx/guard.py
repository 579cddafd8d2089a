"""Checks made before a workbook is handed to python-calamine, which aborts the whole process (it cannot be caught)
when a file makes it allocate too much: a cell far away (it fills the rectangle from A1), a row of an .ods
repeated a million times, a zip member that inflates a thousandfold. Each check streams the XML as bytes, whatever
the attribute order, prefixes or omitted references, and says in Chinese what it found.

The same checks serve submissions and the workspace's own 名单与目标.xlsx."""

from __future__ import annotations

import re
import zipfile

MAX_MEMBER_BYTES = 50 * 1024 * 1024  # one XML part of a report form is a few KB
MAX_TOTAL_BYTES = 200 * 1024 * 1024
MAX_RATIO = 200  # uncompressed / compressed; XlsxWriter's sheets compress ~5-10x
MAX_SHEET_CELLS = 2_000_000  # calamine allocates the whole rectangle from A1 to the last cell with a value
MAX_BOOK_CELLS = 4_000_000  # all sheets together (each sheet read is kept while the file is checked)

# start tags (any namespace prefix; quoted attribute values may hold '>'), and the end of the element after them
_ATTRS = rb"""((?:[^>"']|"[^"]*"|'[^']*')*?)"""
_XLSX_TAG = re.compile(rb"<(?:[\w.-]+:)?(row|c)(?=[\s/>])" + _ATTRS + rb"(/?)>")
_R_ATTR = re.compile(rb"""(?:^|\s)r\s*=\s*["']([A-Za-z]{0,3})([0-9]*)["']""")
_ODS_TAG = re.compile(rb"<(/?)(?:[\w.-]+:)?(table|table-row|table-cell|covered-table-cell)(?=[\s/>])" + _ATTRS
                      + rb"(/?)>")
_ROWS_REPEATED = re.compile(rb"""number-rows-repeated\s*=\s*["']([0-9]+)["']""")
_COLS_REPEATED = re.compile(rb"""number-columns-repeated\s*=\s*["']([0-9]+)["']""")
_VALUE_TYPE = re.compile(rb"""value-type\s*=""")
_MACRO_PARTS = re.compile(r"(?i)(?:^|/)(?:vbaProject[^/]*\.bin|vbaData\.xml|[^/]*\.vba)$|^xl/macrosheets/|"
                          r"^(?:Basic|Scripts)/")
_MACRO_TYPES = re.compile(rb"(?i)macroEnabled|vbaProject|ms-excel\.(?:intl)?macrosheet|ms-office\.vba")


def _letters(text: bytes) -> int:
    n = 0
    for ch in text.upper():
        n = n * 26 + ch - 64
    return n


def xlsx_extent(body: bytes) -> tuple[int, int]:
    """(rows, columns) of the rectangle from A1 to the farthest cell holding something, as calamine will read it.

    A cell's position is its r attribute; without one, the next column of its row (and a row without r is the
    next row). Empty cells (<c r="XFD9" s="1"/>, formatting only) hold nothing and do not count."""
    rows = cols = 0
    row = col = 0
    for m in _XLSX_TAG.finditer(body):
        ref = _R_ATTR.search(m.group(2))
        if m.group(1) == b"row":
            row = int(ref.group(2)) if ref and ref.group(2) else row + 1
            col = 0
            continue
        if ref and ref.group(1):
            col = _letters(ref.group(1))
            if ref.group(2):
                row = int(ref.group(2))
        else:
            col += 1
        if m.group(3) or body.startswith(b"</", m.end()):
            continue  # <c .../> or <c ...></c>: nothing in it
        rows, cols = max(rows, row or 1), max(cols, col)
    return rows, cols


def ods_extent(body: bytes) -> tuple[int, int]:
    """(rows, columns) of the largest table of an .ods content.xml, repeats counted, only cells holding something:
    LibreOffice writes its trailing empty rows as one row repeated a million times, which is harmless."""
    best_rows = best_cols = 0
    rows = cols = 0  # of the current table
    row_at = 0
    row_repeat = 1
    row_has = False
    col_at = 0
    row_last_col = 0
    for m in _ODS_TAG.finditer(body):
        closing, tag, attrs, empty = m.group(1), m.group(2), m.group(3), m.group(4)
        if tag == b"table":
            if not closing:
                rows = cols = row_at = 0
            best_rows, best_cols = max(best_rows, rows), max(best_cols, cols)
            continue
        if tag == b"table-row":
            if closing:
                if row_has:
                    rows = row_at + row_repeat
                    cols = max(cols, row_last_col)
                row_at += row_repeat
                continue
            rep = _ROWS_REPEATED.search(attrs)
            row_repeat = int(rep.group(1)) if rep else 1
            row_has, col_at, row_last_col = False, 0, 0
            if empty:
                row_at += row_repeat
            continue
        if closing:
            continue
        rep = _COLS_REPEATED.search(attrs)
        n = int(rep.group(1)) if rep else 1
        filled = _VALUE_TYPE.search(attrs) is not None or (not empty and not body.startswith(b"</", m.end()))
        if filled:
            row_has, row_last_col = True, col_at + n
        col_at += n
    return max(best_rows, rows), max(best_cols, cols)


def zip_bomb(z: zipfile.ZipFile) -> str | None:
    """A member (or the whole) that would inflate far beyond what any form needs."""
    total = 0
    for info in z.infolist():
        total += info.file_size
        if info.file_size > MAX_MEMBER_BYTES:
            return f"{info.filename} 解压后 {info.file_size // 1048576} MB"
        if info.compress_size and info.file_size / info.compress_size > MAX_RATIO and info.file_size > 1_048_576:
            return f"{info.filename} 压缩比 {info.file_size // info.compress_size}:1"
    if total > MAX_TOTAL_BYTES:
        return f"解压后共 {total // 1048576} MB"
    return None


def huge_sheet(z: zipfile.ZipFile) -> str | None:
    """A sheet whose used area is too large to read (a stray value far away, on purpose or not): in Chinese."""
    total = 0
    for name in z.namelist():
        if name.startswith("xl/worksheets/") and name.endswith(".xml"):
            rows, cols = xlsx_extent(z.read(name))
        elif name == "content.xml":
            rows, cols = ods_extent(z.read(name))
        else:
            continue
        if rows * cols > MAX_SHEET_CELLS:
            return f"有内容远至第 {rows} 行、第 {cols} 列"
        total += rows * cols
        if total > MAX_BOOK_CELLS:
            return f"各工作表合计超过 {MAX_BOOK_CELLS // 10000} 万个单元格"
    return None


def has_macros(z: zipfile.ZipFile) -> bool:
    """Macros by content, whatever the file is called: a VBA project, Excel 4 macro sheets, LibreOffice Basic,
    or a content type that says so."""
    names = z.namelist()
    if any(_MACRO_PARTS.search(n) for n in names):
        return True
    if "[Content_Types].xml" in names:
        info = z.getinfo("[Content_Types].xml")
        if info.file_size <= MAX_MEMBER_BYTES and _MACRO_TYPES.search(z.read(info)):
            return True
    return False


def xml_entities(z: zipfile.ZipFile) -> bool:
    """Any XML part with a DTD: entity definitions are how "billion laughs" expands a few KB into gigabytes, and
    calamine parses sharedStrings itself. A DTD must come before the root element, so the head of a part suffices."""
    for info in z.infolist():
        if info.filename.endswith((".xml", ".rels")) and info.file_size:
            with z.open(info) as f:
                head = f.read(4096)
            if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
                return True
    return False


def problem(z: zipfile.ZipFile) -> tuple[str, dict] | None:
    """The first reason not to hand this package to calamine, as (issue code, its parameters); None when safe."""
    bomb = zip_bomb(z)
    if bomb:
        return "zip-bomb", {"detail": bomb}
    if xml_entities(z):
        return "xml-attack", {}
    if has_macros(z):
        return "macro-workbook", {}
    huge = huge_sheet(z)
    if huge:
        return "sheet-too-large", {"detail": huge}
    return None
