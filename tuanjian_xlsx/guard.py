"""Checks made before a workbook is handed to python-calamine, which aborts the whole process (it cannot be caught)
when a file makes it allocate too much: a cell far away (it fills the rectangle from A1), a row of an .ods
repeated a million times, a zip member that inflates a thousandfold. Each check streams the XML as bytes, whatever
the attribute order, prefixes or omitted references, and says in Chinese what it found.

The same checks serve submissions and the workspace's own 名单与目标.xlsx."""

from __future__ import annotations

import functools
import posixpath
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import Any, TypeVar
from collections.abc import Callable

T = TypeVar("T")

MAX_MEMBER_BYTES = 50 * 1024 * 1024  # one XML part of a report form is a few KB
MAX_TOTAL_BYTES = 200 * 1024 * 1024
MAX_RATIO = 200  # uncompressed / compressed; XlsxWriter's sheets compress ~5-10x
MAX_SHEET_CELLS = 2_000_000  # calamine allocates the whole rectangle from A1 to the last cell with a value
MAX_BOOK_CELLS = 4_000_000  # all sheets together (each sheet read is kept while the file is checked)
# sheets in one workbook: a month's visits are a sheet each, far fewer; 2,000 sheets naming one small part passed the
# cell count (the part counted once) and made a 40 MB 退回件 in 44 s
MAX_SHEETS = 255

# start tags (any namespace prefix). An attribute value holds no '<' in well-formed XML, so '<' ends every attempt:
# the scan stays linear on hostile input (an unclosed tag repeated), never quadratic. A run of plain characters is
# taken whole and never given back — (?=(x+))\N is an atomic group — so the engine neither steps through it one
# character at a time nor backtracks into it.


def _attrs_group(n: int) -> bytes:
    """A tag's attributes as group n-1 of the pattern it stands in (group n is its inner run)."""
    return rb"""((?:(?=([^<>"']+))\%d|"[^"<]*"|'[^'<]*')*)""" % n


_XLSX_TAG = re.compile(rb"<(?:[\w.-]+:)?(row|c)(?=[\s/>])" + _attrs_group(3) + rb">")
_ATTR = re.compile(rb"""([\w:.-]+)\s*=\s*(?:"([^"<]*)"|'([^'<]*)')""")
_REF = re.compile(rb"^([A-Za-z]{0,3})([0-9]*)$")
_CELL_END = re.compile(rb"</(?:[\w.-]+:)?c\s*>")
_HAS_VALUE = re.compile(rb"<(?:[\w.-]+:)?(?:v|t)(?:\s[^>]*)?>[^<]")  # a <v> or an inline string's <t> with text
_COMMENT = re.compile(rb"<!--.*?-->", re.S)  # not tags to an XML reader
_CDATA = re.compile(rb"<!\[CDATA\[.*?\]\]>", re.S)  # text to an XML reader, whatever it looks like
_ODS_TAG = re.compile(rb"<(/?)(?:[\w.-]+:)?(table|table-row|table-cell|covered-table-cell)(?=[\s/>])"
                      + _attrs_group(4) + rb">")
_MACRO_PARTS = re.compile(r"(?i)(?:^|/)(?:vbaProject[^/]*\.bin|vbaData\.xml|[^/]*\.vba)$|^xl/macrosheets/|"
                          r"^(?:Basic|Scripts)/")
_MACRO_TYPES = (b"macroenabled", b"vbaproject", b"ms-excel.macrosheet", b"ms-excel.intlmacrosheet", b"ms-office.vba")


def _letters(text: bytes) -> int:
    n = 0
    for ch in text.upper():
        n = n * 26 + ch - 64
    return n


def _attrs(text: bytes) -> dict[bytes, bytes]:
    """A start tag's attributes by local name (prefixes dropped), read one by one, never out of a quoted value."""
    out: dict[bytes, bytes] = {}
    for m in _ATTR.finditer(text):
        name = m.group(1).rsplit(b":", 1)[-1]
        out.setdefault(name, m.group(2) if m.group(2) is not None else m.group(3))
    return out


def _visible(body: bytes) -> bytes:
    if b"!" not in body or b"<!" not in body:  # a one-byte search runs at memchr speed, a two-byte one does not
        return body
    return _CDATA.sub(b"x", _COMMENT.sub(b"", body))


def xlsx_extent(body: bytes) -> tuple[int, int]:
    """(rows, columns) of the rectangle from A1 to the farthest cell holding a value, as calamine will read it.

    A cell's position is its r attribute; without one, the next column of its row (and a row without r is the
    next row). Cells with no value (<c r="XFD9" s="1"/>, an empty <v/>, a formula never calculated) hold nothing
    and do not count. Comments and CDATA are no tags."""
    body = _visible(body)
    rows = cols = 0
    row = col = 0
    for m in _XLSX_TAG.finditer(body):
        attrs = m.group(2)
        empty = attrs.endswith(b"/")
        found = _attrs(attrs)
        ref = _REF.match(found.get(b"r", b"").strip())
        if (b"r" in found and ref is None) or b"&" in attrs or attrs.count(b"r=") + attrs.count(b"r =") > 1:
            return _extent_parsed(body)  # written oddly (a character reference, $, two r's): read it as XML
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
        if empty:
            continue
        end = _CELL_END.search(body, m.end())
        inner = body[m.end():end.start() if end else len(body)]
        if not _HAS_VALUE.search(inner):
            continue  # <c ...></c>, <c><v/></c>, <c><f>…</f></c>: nothing calamine keeps
        rows, cols = max(rows, row or 1), max(cols, col)
    return rows, cols


def _extent_parsed(body: bytes) -> tuple[int, int]:
    """xlsx_extent by a real XML parser (expat: character references decoded, duplicate attributes refused), for
    the rare sheet written in a way the quick scan does not read for sure. Unparseable XML counts as too large:
    calamine would not read it either."""
    import xml.parsers.expat

    state: dict[str, Any] = {"rows": 0, "cols": 0, "row": 0, "col": 0, "cell": None, "text": False}

    def start(name, attrs):
        local = name.rsplit(":", 1)[-1]
        r = next((v for k, v in attrs.items() if k.rsplit(":", 1)[-1] == "r"), None)
        ref = _REF.match((r or "").strip().encode()) if r is not None else None
        if local == "row":
            state["row"] = int(ref.group(2)) if ref and ref.group(2) else state["row"] + 1
            state["col"] = 0
        elif local == "c":
            if r is not None and ref is None:
                raise ValueError("a cell reference that is not one")
            if ref and ref.group(1):
                state["col"] = _letters(ref.group(1))
                if ref.group(2):
                    state["row"] = int(ref.group(2))
            else:
                state["col"] += 1
            state["cell"] = (state["row"], state["col"])
        elif local in ("v", "t") and state["cell"] is not None:
            state["text"] = True

    def end(name):
        local = name.rsplit(":", 1)[-1]
        if local in ("v", "t"):
            state["text"] = False
        elif local == "c":
            state["cell"] = None

    def text(data):
        if state["text"] and data and state["cell"] is not None:
            r, c = state["cell"]
            state["rows"], state["cols"] = max(state["rows"], r or 1), max(state["cols"], c)

    parser = xml.parsers.expat.ParserCreate(namespace_separator=None)
    parser.StartElementHandler, parser.EndElementHandler, parser.CharacterDataHandler = start, end, text
    try:
        parser.Parse(body, True)
    except (xml.parsers.expat.ExpatError, ValueError):
        return 1 << 20, 1 << 14
    return state["rows"], state["cols"]


@dataclass
class _Table:
    rows: int = 0  # rectangle of the cells holding something
    cols: int = 0
    row_at: int = 0  # rows passed so far (repeats counted)
    row_repeat: int = 1
    row_has: bool = False
    col_at: int = 0
    row_last: int = 0


def ods_tables(body: bytes) -> list[tuple[int, int]]:
    """(rows, columns) of each table of an .ods content.xml, repeats counted, only cells holding something:
    LibreOffice writes its trailing empty rows as one row repeated a million times, which is harmless. A table
    inside a cell is a table of its own."""
    body = _visible(body)
    done: list[tuple[int, int]] = []
    stack: list[_Table] = []
    for m in _ODS_TAG.finditer(body):
        closing, tag, attrs = m.group(1), m.group(2), m.group(3)
        empty = attrs.endswith(b"/")
        if tag == b"table":
            if not closing and not empty:
                stack.append(_Table())
            elif closing and stack:
                t = stack.pop()
                done.append((t.rows, t.cols))
            continue
        if not stack:
            continue
        t = stack[-1]
        if tag == b"table-row":
            if closing:
                if t.row_has:
                    t.rows = t.row_at + t.row_repeat
                    t.cols = max(t.cols, t.row_last)
                t.row_at += t.row_repeat
                continue
            # attributes parsed only where a repeat may stand (most rows and cells have none)
            t.row_repeat = _count(_attrs(attrs).get(b"number-rows-repeated")) if b"repeated" in attrs else 1
            t.row_has, t.col_at, t.row_last = False, 0, 0
            if empty:
                t.row_at += t.row_repeat
            continue
        if closing:
            continue
        n = _count(_attrs(attrs).get(b"number-columns-repeated")) if b"repeated" in attrs else 1
        # "value-type" anywhere in the tag counts (as an attribute it always does): never less than calamine reads
        if b"value-type" in attrs or (not empty and not body.startswith(b"</", m.end())):
            t.row_has, t.row_last = True, t.col_at + n
        t.col_at += n
    done += [(t.rows, t.cols) for t in stack]  # a table never closed
    return done


def _count(text: bytes | None) -> int:
    """A repeat count as calamine reads it (digits, a leading + allowed); one it could not read counts as very
    many, so that a count written some other way is never taken for 1."""
    if text is None:
        return 1
    digits = text[1:] if text.startswith(b"+") else text
    return int(digits) if digits.isdigit() else MAX_SHEET_CELLS


def ods_extent(body: bytes) -> tuple[int, int]:
    """The largest table's (rows, columns); see ods_tables."""
    return max(ods_tables(body), key=lambda rc: rc[0] * rc[1], default=(0, 0))


# the parts the reader parses after the checks: kept once inflated, so each is read from the zip once
_KEPT = re.compile(r"(?i)^(?:xl/worksheets/[^/]*\.xml|xl/workbook\.xml|xl/_rels/workbook\.xml\.rels|docProps/custom\.xml"
                   r"|\[Content_Types\]\.xml|content\.xml)$")


class Parts:
    """A zip's members as the checks and then the reader use them, each part inflated once: the checks look at the
    head of every part, read [Content_Types].xml, the relationships and every sheet whole, and the reader then
    parses workbook.xml, custom.xml and the sheets' merged ranges from the same bytes. Reads like the ZipFile it
    wraps (infolist, namelist, getinfo, read); lives as long as the package is being opened.

    Given the package's bytes, a stored or deflated member is inflated straight from them with zipfile's own checks
    (the local header's signature and name, the CRC and the size; never more than the size the directory states),
    without zipfile's per-read machinery; anything else (a password, another method) goes through zipfile."""

    def __init__(self, z: zipfile.ZipFile, data: bytes | None = None):
        self.zip = z
        self._infos = z.infolist()
        self._names = [i.filename for i in self._infos]
        self._kept: dict[str, bytes] = {}
        self._data = memoryview(data) if data is not None else None

    def infolist(self) -> list[zipfile.ZipInfo]:
        return self._infos

    def namelist(self) -> list[str]:
        return self._names

    def getinfo(self, name: str) -> zipfile.ZipInfo:
        return self.zip.getinfo(name)

    def read(self, name: str) -> bytes:
        data = self._kept.get(name)
        if data is None:
            info = self.zip.getinfo(name)
            data = self._member(info)
            self._kept[name] = data = self.zip.read(name) if data is None else data
        return data

    def head(self, info: zipfile.ZipInfo, size: int = 4096) -> bytes:
        """The first `size` bytes of a member (that very member, where two share a name)."""
        if self.zip.getinfo(info.filename) is info and (info.filename in self._kept or _KEPT.match(info.filename)):
            return self.read(info.filename)[:size]
        data = self._member(info, size)
        if data is None:
            with self.zip.open(info) as f:
                data = f.read(size)
        return data

    def _member(self, info: zipfile.ZipInfo, size: int | None = None) -> bytes | None:
        """The member (its first `size` bytes) from the package's bytes; None where zipfile must read it."""
        if self._data is None or info.flag_bits & 0x61 or info.compress_type not in (zipfile.ZIP_STORED,
                                                                                     zipfile.ZIP_DEFLATED):
            return None  # encrypted (0x01), patched (0x20), strongly encrypted (0x40), another method
        at = info.header_offset
        header = self._data[at:at + 30]
        if len(header) != 30 or header[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile("Bad magic number for file header")
        flags, name_len, extra_len = struct.unpack("<6xH18xHH", header)
        name = bytes(self._data[at + 30:at + 30 + name_len]).decode(
            "utf-8" if flags & 0x800 else getattr(self.zip, "metadata_encoding", None) or "cp437")
        if name != info.orig_filename:
            raise zipfile.BadZipFile(f"File name in directory {info.orig_filename!r} and header {name!r} differ.")
        start = at + 30 + name_len + extra_len
        raw = self._data[start:start + info.compress_size]
        limit = info.file_size if size is None else min(size, info.file_size)
        if limit <= 0:
            data, crc = b"", 0
        elif info.compress_type == zipfile.ZIP_STORED:
            data = bytes(raw[:limit])
            crc = zlib.crc32(data) if size is None else 0
        elif len(raw) <= 8192 and limit <= 32768:
            data, crc = _inflated(bytes(raw), limit)
        else:
            data = zlib.decompressobj(-15).decompress(raw, limit)
            crc = zlib.crc32(data) if size is None else 0
        if size is None and (len(data) != info.file_size or crc != info.CRC):
            raise zipfile.BadZipFile(f"Bad CRC-32 for file {info.filename!r}")
        return data


@functools.lru_cache(maxsize=128)
def _inflated(raw: bytes, limit: int) -> tuple[bytes, int]:
    """A small deflated member's first `limit` bytes and their CRC-32, remembered by its compressed bytes: copies of
    one template saved by one program share their theme, styles, relationships and workbook.xml byte for byte, and
    equal compressed bytes inflate to equal bytes. (Parts whose bytes are new each time only pass through.)"""
    data = zlib.decompressobj(-15).decompress(raw, limit)
    return data, zlib.crc32(data)


Zip = zipfile.ZipFile | Parts


def _head(z: Zip, info: zipfile.ZipInfo, size: int = 4096) -> bytes:
    if isinstance(z, Parts):
        return z.head(info, size)
    with z.open(info) as f:
        return f.read(size)


def zip_bomb(z: Zip) -> str | None:
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


def sheet_parts(z: Zip) -> list[str]:
    """The parts a reader opens as sheets: every part workbook.xml's relationships point to as a sheet (wherever
    and however it is named), and anything under xl/worksheets/ besides."""
    names = z.namelist()
    found = {n for n in names if n.lower().startswith("xl/worksheets/") and n.lower().endswith(".xml")}
    rels = "xl/_rels/workbook.xml.rels"
    if rels in names and z.getinfo(rels).file_size <= MAX_MEMBER_BYTES:
        lowered = {n.lower(): n for n in names}
        for path in _sheet_targets(z.read(rels)):
            if path.lower() in lowered:
                found.add(lowered[path.lower()])
    return sorted(found)


def by_content(fn: Callable[[bytes], T]) -> Callable[[bytes], T]:
    """`fn` of a part's bytes, remembered for the last 64 small parts seen in this process: copies of one template
    saved by one program carry the same workbook.xml and relationships, read once. The bytes themselves are the key
    (equal bytes, equal answer); a part over 64 KB is read every time (and never kept in memory)."""
    cached = functools.lru_cache(maxsize=64)(fn)

    @functools.wraps(fn)
    def call(data: bytes) -> T:
        return cached(data) if len(data) <= 65536 else fn(data)

    return call


@by_content
def _sheet_targets(rels: bytes) -> tuple[str, ...]:
    """The parts workbook.xml's relationships point to as sheets, as paths in the package."""
    out = []
    for m in _ATTRS_RELATIONSHIP.finditer(rels):
        a = _attrs(m.group(1))
        if not a.get(b"Type", b"").endswith((b"/worksheet", b"/chartsheet", b"/dialogsheet", b"/macrosheet")):
            continue
        target = a.get(b"Target", b"").decode("utf-8", "replace").replace("\\", "/")
        out.append(target.lstrip("/") if target.startswith("/") else posixpath.normpath("xl/" + target))
    return tuple(out)


_ATTRS_RELATIONSHIP = re.compile(rb"<(?:[\w.-]+:)?Relationship(?=[\s/>])" + _attrs_group(2) + rb">")


_REF_VALUE = re.compile(rb"""r(?<=\sr)\s*=\s*["']([^"']*)""")  # any attribute named r, its value up to a quote
# the values joined by '"' (which no value holds): one that is not letters and digits, and those shaped A1
_ODD_VALUE = re.compile(rb'[^A-Za-z0-9"]')
_REF_SHAPE = re.compile(rb'(?<![^"])([A-Za-z]{0,3})([0-9]{0,9})(?![^"])')


def bound(body: bytes) -> int | None:
    """An upper bound of the cells calamine could allocate for this sheet, found in one cheap pass: the farthest
    row and column any r="…" names (wherever it stands), plus one row per <row and one column per <c that could
    lack a reference. None when a reference is written in a way this pass does not read (the full scan decides).
    (Patterns that start with a letter let the regex engine skip ahead at C speed; no Python code runs per cell.)"""
    return _bound(body, body.count(b"<row") + body.count(b":row"), body.count(b"<c") + body.count(b":c"))


def _bound(body: bytes, row_tags: int, cell_tags: int) -> int | None:
    """bound() with the counts of tags that may lack a reference given (exact, or more for a quicker upper bound)."""
    values = b'"'.join(_REF_VALUE.findall(body))
    if _ODD_VALUE.search(values):
        return None
    rows = cols = 0
    shape = values.translate(_SHAPE)  # letters as a, digits as 0: is every value shaped A1?
    if b"0a" in shape or b"aaaa" in shape or b"0" * 10 in shape:
        shapes = _REF_SHAPE.findall(values)  # letters and digits in another order: no reference, counted below
        if len(shapes) != values.count(b'"') + 1:  # a value of more letters or digits than any reference holds
            return None  # (XFD0001048576, AAAA1: calamine reads them as far cells): the full scan decides
        letters = {a for a, _ in shapes if a}
        digits = {d for _, d in shapes if d}
    else:  # the usual case: each value's letters and digits, duplicates (a row's cells, a column's) dropped in C
        letters = set(values.translate(None, _DIGITS).split(b'"'))
        digits = set(values.translate(None, _ALPHA).split(b'"'))
        letters.discard(b"")
        digits.discard(b"")
    if letters:
        cols = _letters(max(letters, key=lambda a: (len(a), a.upper())))
    if digits:
        rows = max(map(int, digits))
    return (rows + row_tags) * (cols + cell_tags)


_DIGITS = b"0123456789"
_ALPHA = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SHAPE = bytes.maketrans(_ALPHA + _DIGITS, b"a" * 52 + b"0" * 10)


def _quick_bound(body: bytes) -> int | None:
    """An upper bound of bound(), quicker: every <row and :row holds a "w", every <c and :c a "c" (one-byte counts
    run at memchr speed where two-byte ones do not)."""
    return _bound(body, body.count(b"w"), body.count(b"c"))


def _extent(body: bytes) -> tuple[int, int]:
    """The sheet's extent, or for the usual small sheet a bound on it (the full scan only when the bound is large)."""
    limit = bound(body)
    if limit is not None and limit <= MAX_SHEET_CELLS // 4:
        return limit, 1
    return xlsx_extent(body)


def huge_sheet(z: Zip) -> str | None:
    """A sheet whose used area is too large to read (a stray value far away, on purpose or not): in Chinese."""
    bodies = [z.read(name) for name in sheet_parts(z)]
    tables = ods_tables(z.read("content.xml")) if "content.xml" in z.namelist() else []
    # A quicker, larger bound first: when even it leaves every sheet and the whole book within the limits, so do
    # the exact figures below, and they would find nothing.
    quick = [q for q in map(_quick_bound, bodies) if q is not None and q <= MAX_SHEET_CELLS // 4]
    if len(quick) == len(bodies) and sum(quick) + sum(r * c for r, c in tables) <= MAX_BOOK_CELLS \
            and all(r * c <= MAX_SHEET_CELLS for r, c in tables):
        return None
    extents = [_extent(body) for body in bodies] + tables
    total = 0
    for rows, cols in extents:
        if rows * cols > MAX_SHEET_CELLS:
            return f"有内容远至第 {rows} 行、第 {cols} 列"
        total += rows * cols
        if total > MAX_BOOK_CELLS:
            return f"各工作表合计超过 {MAX_BOOK_CELLS // 10000} 万个单元格"
    return None


def has_macros(z: Zip) -> bool:
    """Macros by content, whatever the file is called: a VBA project, Excel 4 macro sheets, LibreOffice Basic,
    or a content type that says so."""
    names = z.namelist()
    cached = len(names) <= 256 and sum(map(len, names)) <= 16384  # (what a crafted package names is not kept)
    if (_macro_parts if cached else _macro_parts.__wrapped__)(tuple(names)):
        return True
    if "[Content_Types].xml" in names:
        info = z.getinfo("[Content_Types].xml")
        if info.file_size <= MAX_MEMBER_BYTES and _macro_types(z.read("[Content_Types].xml")):
            return True
    return False


@functools.lru_cache(maxsize=64)  # copies of one template hold the same parts
def _macro_parts(names: tuple[str, ...]) -> bool:
    return any(_MACRO_PARTS.search(n) for n in names)


@by_content
def _macro_types(types: bytes) -> bool:
    types = types.lower()  # ASCII case folded, as the words are ASCII
    return any(word in types for word in _MACRO_TYPES)


def odd_names(z: Zip) -> str | None:
    """Member names no Office program writes, which two readers may resolve differently: a backslash (calamine
    reads it as a folder separator where Python does not), or two names that differ only in case (calamine looks
    names up case-blind)."""
    seen: set[str] = set()
    for name in z.namelist():
        if "\\" in name:
            return f"文件名含反斜杠：{name[:60]}"
        key = name.lower()
        if key in seen:
            return f"有两个同名的部件：{name[:60]}"
        seen.add(key)
    return None


_SST = re.compile(rb"<(?:[\w.-]+:)?sst(?=[\s/>])" + _attrs_group(2) + rb">")


def shared_strings(z: Zip) -> str | None:
    """A shared-strings part announcing more strings than any workbook this product reads holds: calamine reserves
    room for `uniqueCount` strings (of its first <sst> element) before reading one, so 4,000,000,000 is ~100 GB
    asked for at once. Every <sst> start tag counts, wherever it stands (one in a comment or a processing
    instruction is no decoy then), in every part named sharedStrings.xml, in whatever folder (the one calamine reads
    is found through relationships)."""
    for info in z.infolist():
        if not info.filename.lower().endswith("sharedstrings.xml") or not info.file_size:
            continue
        for m in _SST.finditer(z.read(info.filename)):
            count = _attrs(m.group(1)).get(b"uniqueCount")
            if count is not None and (not count.isdigit() or len(count) > 12 or int(count) > MAX_BOOK_CELLS):
                return f"共享字符串表声明有 {count[:20].decode('ascii', 'replace')} 个字符串"
    return None


def xml_entities(z: Zip) -> bool:
    """Any XML part with a DTD: entity definitions are how "billion laughs" expands a few KB into gigabytes, and
    calamine parses sharedStrings itself. A DTD stands before the root element, after nothing but the XML
    declaration, comments, processing instructions and white space: the part is read as far as its root element
    (a head first, more only where that prolog runs on), however long the comments before a DTD."""
    sheets = set(sheet_parts(z))
    return any(_dtd(z, info) for info in z.infolist()
               if info.file_size and (info.filename.lower().endswith((".xml", ".rels")) or info.filename in sheets))


def _dtd(z: Zip, info: zipfile.ZipInfo) -> bool:
    size = 4096
    while True:
        head = _head(z, info, size)
        if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
            return True
        found = _prolog_dtd(head)
        if found is not None:
            return found
        if len(head) < size or size >= info.file_size:
            return False  # the whole part is prolog: no element, nothing a reader could expand
        size *= 16


_WHITE = re.compile("[ \t\r\n\ufeff]*")
_PLAIN_PROLOG = re.compile(rb"(?:<\?xml[^<>]*\?>)?[ \t\r\n]*<[A-Za-z_]")


def _prolog_dtd(head: bytes) -> bool | None:
    """Whether the prolog at the start of a part holds a DTD: True, False (the root element starts first, or the
    part is no XML), None (the prolog runs on past `head`). UTF-16 parts are read as such."""
    if _PLAIN_PROLOG.match(head):  # the usual: the XML declaration, a line break, the root element
        return False
    if head[:2] in (b"\xff\xfe", b"\xfe\xff") or (len(head) >= 2 and 0 in head[:2]):
        encoding = "utf-16-be" if head[:2] == b"\xfe\xff" or head[:1] == b"\0" else "utf-16-le"
        text = head[:len(head) & ~1].decode(encoding, "replace")
    else:
        text = head.decode("latin-1")  # markup is ASCII: every byte stands where it was
    i = 0
    while True:
        i = _WHITE.match(text, i).end()  # type: ignore[union-attr]  # (matches the empty run too)
        if i >= len(text) - 1:
            return None
        if text.startswith("<?", i):
            end = text.find("?>", i + 2)
            if end < 0:
                return None
            i = end + 2
        elif text.startswith("<!--", i):
            end = text.find("-->", i + 4)
            if end < 0:
                return None
            i = end + 3
        elif text.startswith("<!", i):
            return True  # a DOCTYPE (written however: the case, the spaces), or another declaration
        elif text[i] == "<":
            return False  # the root element: no DTD can follow
        else:  # text before the root (no XML, but a lenient reader reads on): look past it
            i = text.find("<", i)
            if i < 0:
                return None


_EOCD = 22  # the end-of-central-directory record without its comment


def zip_layout(z: Parts, tail: bytes, size: int) -> str | None:
    """Why two zip readers might see two different archives in these bytes (None when they cannot): Python's zipfile,
    which the checks use, takes the last end record, allows data before the archive and a comment running past the
    end of the file; calamine's reader may then fall back to another end record and read a workbook no check saw.
    Only the layout every Office program writes is let through: one archive from the first byte, its directory right
    before its end record, the end record's comment reaching exactly to the end of the file, no volumes, no ZIP64.
    `tail` is the file's last bytes (at most 22 + 65535), `size` its length."""
    at = tail.rfind(b"PK\x05\x06")
    if at < 0:
        return "找不到压缩目录"
    disk, cd_disk, here, total, cd_size, cd_offset, comment = struct.unpack("<HHHHIIH", tail[at + 4:at + _EOCD])
    pos = size - len(tail) + at  # the end record's place in the file
    if pos + _EOCD + comment != size:
        return "压缩目录的结尾与文件长度不符"
    if disk or cd_disk or here != total:
        return "分卷压缩"
    if 0xFFFFFFFF in (cd_size, cd_offset) or total == 0xFFFF:
        return "ZIP64 格式"
    if cd_offset + cd_size != pos or total != len(z.infolist()):
        return "压缩目录的位置或条目数不符，文件里夹有别的数据"
    return None


def problem(z: Zip) -> tuple[str, dict] | None:
    """The first reason not to hand this package to calamine, as (issue code, its parameters); None when safe.
    Pass a `Parts` to keep what the checks inflate for the reader."""
    z = z if isinstance(z, Parts) else Parts(z)
    if z._data is not None:
        odd = zip_layout(z, bytes(z._data[-(_EOCD + 0xFFFF):]), len(z._data))
        if odd:
            return "file-unreadable", {"detail": f"不是有效的 xlsx 文件（压缩结构不规范：{odd}）"}
    odd = odd_names(z)
    if odd:
        return "file-unreadable", {"detail": f"不是有效的 xlsx 文件（压缩结构不规范：{odd}）"}
    if any(n.lower() == "xl/workbook.bin" for n in z.namelist()):  # an .xlsb, whatever it is called
        return "unsupported-format", {"ext": ".xlsb"}
    bomb = zip_bomb(z) or shared_strings(z)
    if bomb:
        return "zip-bomb", {"detail": bomb}
    if xml_entities(z):
        return "xml-attack", {}
    if has_macros(z):
        return "macro-workbook", {}
    sheets = sheet_count(z)
    if sheets > MAX_SHEETS:
        return "too-many-sheets", {"count": sheets, "most": MAX_SHEETS}
    huge = huge_sheet(z)
    if huge:
        return "sheet-too-large", {"detail": huge}
    return None


_SHEET_ENTRY = re.compile(rb"<(?:[\w.-]+:)?sheet(?=[\s/>])")  # a <sheet> of workbook.xml (not <sheets>, <sheetPr>)
_ODS_TABLE = re.compile(rb"<table:table(?=[\s/>])")


def sheet_count(z: Zip) -> int:
    """How many sheets the workbook lists (each read and written back in a 退回件, whichever part it names)."""
    names = z.namelist()
    count = 0
    for part, pattern in (("xl/workbook.xml", _SHEET_ENTRY), ("content.xml", _ODS_TABLE)):
        if part in names and z.getinfo(part).file_size <= MAX_MEMBER_BYTES:
            count += len(pattern.findall(z.read(part)))
    return count
