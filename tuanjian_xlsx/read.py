"""Reading a submitted workbook fast: one pass over the package, values by python-calamine,
defined names and the passport from the XML parts with defusedxml, fields found by name then by label.

Everything a file can do wrong comes back as an Issue; nothing here raises on bad input.
"""

from __future__ import annotations

import functools
import html
import io
import posixpath
import re
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xml.etree.ElementTree as CET

from defusedxml import ElementTree as ET

from . import guard, passport
from .cells import cell_name, parse_cell, parse_range
from .issues import Issue
from .specs import FormSpec, TableSpec

NS_MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
NS_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
NS_CUSTOM = "{http://schemas.openxmlformats.org/officeDocument/2006/custom-properties}"
NS_PKG_REL = "{http://schemas.openxmlformats.org/package/2006/relationships}"

MAX_FILE_BYTES = 50 * 1024 * 1024  # a report form is tens of KB
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .xls, and any password-protected workbook


@dataclass
class Package:
    """What one workbook file holds, read once."""

    file: str
    data: bytes
    names: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (sheet, 'B4'), workbook scope
    local_names: dict[tuple[str, str], str] = field(default_factory=dict)  # (sheet, name) -> 'B4'
    sheets: list[tuple[str, bool]] = field(default_factory=list)  # (name, visible)
    properties: dict[str, str] = field(default_factory=dict)  # tj.* custom properties
    # sheet -> {top-left (row, col): bottom-right (row, col)} of its merged ranges, read from its XML (sheet_xml)
    # the first time they are asked for (only a label that moved asks); a sheet in neither: not known
    merges: dict[str, dict[tuple[int, int], tuple[int, int]]] = field(default_factory=dict)
    sheet_xml: dict[str, bytes] = field(default_factory=dict)
    errors: dict[str, dict[tuple[int, int], str]] = field(default_factory=dict)  # see error_at
    issues: list[Issue] = field(default_factory=list)
    _rows: dict[str, list[list]] = field(default_factory=dict)
    _book: Any = None  # python_calamine's CalamineWorkbook, once opened
    _passport: dict[str, str] | None = None

    @property
    def ok(self) -> bool:
        return not any(i.severity == "error" for i in self.issues)

    def rows(self, sheet: str) -> list[list]:
        """All cell values of a sheet from A1, as calamine gives them (numbers as floats, '' for empty)."""
        if sheet not in self._rows:
            try:
                self._rows[sheet] = self._book.get_sheet_by_name(sheet).to_python(skip_empty_area=False)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException:  # calamine errors, and its Rust panics (e.g. -1E30 in a date cell)
                self._rows[sheet] = self._rows_by_openpyxl(sheet)
        return self._rows[sheet]

    def _rows_by_openpyxl(self, sheet: str) -> list[list]:
        """The full-fidelity fallback reader, in calamine's shape ('' for empty cells)."""
        try:
            import warnings

            import openpyxl

            with warnings.catch_warnings():  # openpyxl warns of out-of-range dates, which the checks report
                warnings.simplefilter("ignore")
                wb = openpyxl.load_workbook(io.BytesIO(self.data), data_only=True)
            return [["" if v is None else v for v in row] for row in wb[sheet].iter_rows(values_only=True)]
        except Exception:
            self.issues.append(Issue.make("file-unreadable", file=self.file, sheet=sheet,
                                          detail=f"工作表“{sheet}”无法读取"))
            return []

    def value(self, sheet: str, ref: str):
        r, c = parse_cell(ref)
        rows = self.rows(sheet)
        if r < len(rows) and c < len(rows[r]):
            return rows[r][c]
        return ""

    def passport(self) -> dict[str, str]:
        """The passport: custom properties first, the hidden _passport sheet for what they lack (read once). Both are
        written together, and programs keep custom properties whole or drop them all: when every key is there as a
        property, the sheet has nothing to add and is not read."""
        if self._passport is None:
            whole = all(passport.property_name(k) in self.properties for k in passport.PASSPORT_KEYS)
            rows = self.rows(passport.PASSPORT_SHEET) if not whole and passport.PASSPORT_SHEET in dict(self.sheets) \
                else []
            self._passport = passport.read(self.properties, rows)
        return self._passport

    def right_edge(self, sheet: str, r: int, c: int, default: int) -> int:
        """The last column of the merged range whose top-left cell is (r, c); `default` when merges are not known."""
        if sheet not in self.merges:
            if sheet not in self.sheet_xml:
                return default
            self.merges[sheet] = _merges_in(self.sheet_xml[sheet])
        return self.merges[sheet].get((r, c), (r, c))[1]

    def error_at(self, sheet: str, r: int, c: int) -> str | None:
        """The error a formula left in cell (r, c) (#VALUE!, #DIV/0!…), which calamine reads as an empty cell; None
        for any other cell, or where the sheet's XML is not known (an .ods)."""
        if sheet not in self.errors:
            body = self.sheet_xml.get(sheet, b"")
            self.errors[sheet] = _errors_in(body) if b't="e"' in body or b"t='e'" in body else {}
        return self.errors[sheet].get((r, c))

    def not_forms(self) -> set[str]:
        """Sheets never read as a form: this product's hidden sheets, those its passport calls not forms (a
        退回件's 问题清单), and a 问题清单 recognised by its heading row even where the passport was lost."""
        out = set(passport.HIDDEN_SHEETS) | passport.not_forms(self.passport())
        for sheet, visible in self.sheets:
            if visible and sheet not in out:
                rows = self.rows(sheet)
                if rows and passport.is_problem_heading(rows[0]):
                    out.add(sheet)
        return out


def open_package(path: Path, data: bytes | None = None) -> Package:
    """Open a submission; problems with the file itself become file-level issues on the Package."""
    path = path if isinstance(path, Path) else Path(path)
    pkg = Package(file=path.name, data=b"")
    try:
        if data is None and path.stat().st_size > MAX_FILE_BYTES:  # never read a huge file into memory
            pkg.issues.append(Issue.make("file-too-large", file=pkg.file, size=path.stat().st_size // 1048576))
            return pkg
        pkg.data = data if data is not None else path.read_bytes()
    except OSError as exc:
        from .xlsxio import os_reason

        pkg.issues.append(Issue.make("file-unreadable", file=pkg.file, detail=os_reason(exc)))
        return pkg
    problem = _file_problem(path, pkg.data)
    if problem:
        pkg.issues.append(Issue.make(problem[0], file=pkg.file, **problem[1]))
        return pkg
    try:
        if pkg.data.startswith(b"PK"):
            with zipfile.ZipFile(io.BytesIO(pkg.data)) as zf:
                z = guard.Parts(zf, pkg.data)  # what the checks inflate, the reader parses: each part read once
                unsafe = guard.problem(z)
                if unsafe:
                    pkg.issues.append(Issue.make(unsafe[0], file=pkg.file, **unsafe[1]))
                    return pkg
                members = set(z.namelist())
                if "xl/workbook.xml" in members:
                    odd = _read_workbook_xml(z, pkg, members)
                    if odd:
                        pkg.issues.append(Issue.make("file-unreadable", file=pkg.file,
                                                     detail=f"不是有效的 xlsx 文件（{odd}）"))
                        return pkg
                elif path.suffix.lower() not in (".ods", ".et"):
                    raise KeyError("xl/workbook.xml")
                elif "content.xml" in members:  # an .ods: calamine reads its values, its names are read here
                    _read_ods_names(z.read("content.xml"), pkg)
                if "docProps/custom.xml" in members:
                    _read_custom(z.read("docProps/custom.xml"), pkg)
    except KeyError:
        pkg.issues.append(Issue.make("file-unreadable", file=pkg.file, detail="不是有效的 xlsx 文件（缺少工作簿主体）"))
        return pkg
    except (zipfile.BadZipFile, EOFError, zlib.error, OSError, RuntimeError, NotImplementedError, ValueError):
        # truncated, corrupt, parts with a password or a compression method no Office program writes
        pkg.issues.append(Issue.make("file-unreadable", file=pkg.file, detail="不是有效的 xlsx 文件（文件不完整或已损坏）"))
        return pkg
    except ET.ParseError:
        pkg.issues.append(Issue.make("file-unreadable", file=pkg.file, detail="文件内部结构损坏"))
        return pkg
    except Exception as exc:  # defusedxml refuses entities and DTDs with its own exception types
        if type(exc).__module__.startswith("defusedxml"):
            pkg.issues.append(Issue.make("xml-attack", file=pkg.file))
            return pkg
        raise
    try:
        from python_calamine import CalamineWorkbook

        pkg._book = CalamineWorkbook.from_filelike(io.BytesIO(pkg.data))
    except Exception:  # calamine's own error types
        if path.suffix.lower() in (".et", ".ods"):
            pkg.issues.append(Issue.make("unsupported-format", file=pkg.file, ext=path.suffix.lower()))
        else:
            pkg.issues.append(Issue.make("file-unreadable", file=pkg.file, detail="文件已损坏，或不是 Excel 工作簿"))
        return pkg
    if not pkg.sheets:
        pkg.sheets = [(m.name, str(m.visible).endswith("Visible")) for m in pkg._book.sheets_metadata]
    seen: set[str] = set()
    for name, _ in pkg.sheets:  # sheet names are one per workbook, whatever the case (calamine reads each listing)
        key = str(name).casefold()
        if key in seen:
            pkg._book = None
            pkg.issues.append(Issue.make("file-unreadable", file=pkg.file,
                                         detail=f"不是有效的工作簿（工作表“{str(name)[:31]}”出现了两次）"))
            return pkg
        seen.add(key)
    return pkg


def _file_problem(path: Path, data: bytes) -> tuple[str, dict] | None:
    suffix = path.suffix.lower()
    if not data:
        return "empty-file", {}
    if suffix in (".xlsm", ".xltm"):
        return "macro-workbook", {}
    if suffix in (".csv", ".xlsb"):  # (an .xlsb's binary sheets cannot be checked before calamine reads them)
        return "unsupported-format", {"ext": suffix}
    if len(data) > MAX_FILE_BYTES:
        return "file-too-large", {"size": len(data) // 1048576}
    if data.startswith(OLE_MAGIC):
        # an encrypted .xlsx is an OLE file with an EncryptionInfo stream; any other OLE file is an old .xls (or an
        # old WPS .et, the same format), refused whatever it is called: no check reads its binary records before
        # calamine would, and one stray cell far away makes calamine take a gigabyte (no cap on Windows)
        return ("encrypted", {}) if "EncryptionInfo".encode("utf-16-le") in data else ("legacy-xls", {})
    if not data.startswith(b"PK"):
        return "file-unreadable", {"detail": "不是 Excel 工作簿（xlsx）"}
    return None


_NAME_REF = re.compile(r"^=?(?:'((?:[^']|'')+)'|([^!]+))!\$?([A-Z]{1,3})\$?([0-9]+)(?::\$?[A-Z]{1,3}\$?[0-9]+)?$")


def parse_name_ref(text: str) -> tuple[str, str] | None:
    """"'表'!$C$3", "表!$C$3" (LibreOffice drops the quotes), "表!$C$3:$D$3" -> ('表', 'C3')."""
    m = _NAME_REF.match((text or "").strip())
    if not m:
        return None
    sheet = m.group(1).replace("''", "'") if m.group(1) is not None else m.group(2)
    return (sheet, f"{m.group(3)}{m.group(4)}") if _on_a_sheet(m.group(3), m.group(4)) else None


def _on_a_sheet(letters: str, digits: str) -> bool:
    """Whether a name's cell lies on a sheet ($B$99999999, $XFE$6 do not: such a name points nowhere)."""
    try:
        parse_cell(f"{letters}{digits}")
    except ValueError:
        return False
    return True


def parse_xml(data: bytes):
    """An XML part as an element tree. Without a DTD there is nothing to expand, so a UTF-8 part that has none
    (no "<!DOCTYPE" among its bytes) goes to the C parser; anything else — a DTD, UTF-16 — to defusedxml, which
    refuses entities and DTDs (and is many times slower)."""
    if b"<!DOCTYPE" not in data and b"<!ENTITY" not in data and not data.startswith((b"\xff\xfe", b"\xfe\xff")) \
            and b"\0" not in data[:4]:  # no byte-order mark or NUL bytes of UTF-16/32, where a DTD could hide
        parser = CET.XMLParser(encoding="utf-8")  # read as UTF-8 whatever it declares (EBCDIC, say)
        try:
            parser.feed(data)
            return parser.close()
        except CET.ParseError:
            pass  # another encoding (UTF-16), or broken: the careful parser decides
    return ET.fromstring(data, forbid_dtd=True)


def _read_workbook_xml(z: guard.Parts, pkg: Package, members: set[str]) -> str | None:
    """The sheets, names and merged ranges workbook.xml gives; what makes it no workbook any Office program wrote
    (a sheet listed twice, which calamine reads twice), or None."""
    sheets, names, local_names = _workbook_facts(z.read("xl/workbook.xml"))
    rids = [rid for _, _, rid in sheets if rid is not None]
    if len(set(rids)) != len(rids):
        return "同一张工作表在工作簿里列了两次"
    pkg.sheets += [(name, visible) for name, visible, _ in sheets]
    _read_merges(z, pkg, members, {name: rid for name, visible, rid in sheets if visible})
    pkg.names.update(names)
    pkg.local_names.update(local_names)
    return None


@guard.by_content
def _workbook_facts(data: bytes) -> tuple[tuple, tuple, tuple]:
    """What workbook.xml says: its sheets as (name, visible, relationship id), its defined names of workbook scope
    as (name, (sheet, cell)) and of sheet scope as ((sheet, name), cell), in the order a dict keeps the last."""
    root = parse_xml(data)
    sheets = root.find(f"{NS_MAIN}sheets")
    order = []
    for s in sheets if sheets is not None else []:
        order.append((s.get("name"), s.get("state", "visible") == "visible", s.get(f"{NS_REL}id")))
    names: dict[str, tuple[str, str]] = {}
    local_names: dict[tuple[str, str], str] = {}
    defined = root.find(f"{NS_MAIN}definedNames")
    for dn in defined if defined is not None else []:
        ref = parse_name_ref(dn.text or "")
        if ref is None:
            continue
        local = dn.get("localSheetId")
        if local is not None and local.isdigit() and int(local) < len(order):
            sheet = order[int(local)][0]
            local_names[(sheet, dn.get("name"))] = ref[1] if ref[0] == sheet else ""
        else:
            names[dn.get("name")] = ref
    return tuple(order), tuple(names.items()), tuple(local_names.items())


_CELL_REF = rb"\$?([A-Za-z]{1,3}\$?[0-9]{1,7})"
_MERGE = re.compile(rb'<(?:[\w.-]+:)?mergeCell\b[^>]*?\bref="' + _CELL_REF + b":" + _CELL_REF + b'"')


def _read_merges(z: guard.Parts, pkg: Package, members: set[str], parts: dict[str, str]) -> None:
    """The XML of the visible sheets, for their merged ranges (calamine does not give them; see Package.merges)."""
    if "xl/_rels/workbook.xml.rels" not in members:
        return
    targets = dict(_rel_targets(z.read("xl/_rels/workbook.xml.rels")))
    for sheet, rid in parts.items():
        target = targets.get(rid, "")
        part = target.lstrip("/") if target.startswith("/") else posixpath.normpath("xl/" + target)
        if part in members:
            pkg.sheet_xml[sheet] = z.read(part)


def _merges_in(body: bytes) -> dict[tuple[int, int], tuple[int, int]]:
    """A sheet's merged ranges, by a regex over its XML. They follow the cells: the scan runs from the tag holding
    the first "mergeCell" to the end of the tag holding the last (a match lies within one tag and holds the word)."""
    merges = {}
    first = body.find(b"mergeCell")
    last = body.find(b">", body.rfind(b"mergeCell")) + 1 or len(body)
    for a, b in _MERGE.findall(body, max(body.rfind(b"<", 0, first), 0), last) if first >= 0 else ():
        corners = _merge_corners(a, b)
        if corners is not None:
            merges[corners[0]] = corners[1]
    return merges


_CELL_START = re.compile(rb"<(?:[\w.-]+:)?c(?=[\s/>])" + guard._attrs_group(2) + rb">")  # linear (see guard)
_CELL_CLOSE = re.compile(rb"</(?:[\w.-]+:)?c\s*>")
_CELL_VALUE = re.compile(rb"<(?:[\w.-]+:)?v(?:\s[^>]*)?>([^<]*)<")
_ERRORS_READ = 10_000  # error cells read per sheet: a form has a few dozen inputs (a crafted sheet, millions)


def _errors_in(body: bytes) -> dict[tuple[int, int], str]:
    """The cells of a sheet's XML holding a formula's error (t="e"), by (row, column): their text, #VALUE! say.
    Linear in the sheet's size whatever it holds: each cell's value is looked for within 4 KB of its start tag, and
    at most _ERRORS_READ such cells are looked at."""
    out: dict[tuple[int, int], str] = {}
    looked = 0
    for m in _CELL_START.finditer(body):
        if b"e" not in m.group(1) or m.group(1).endswith(b"/"):
            continue
        attrs = guard._attrs(m.group(1))
        if attrs.get(b"t") != b"e" or not attrs.get(b"r"):
            continue
        looked += 1
        if looked > _ERRORS_READ:
            break
        close = _CELL_CLOSE.search(body, m.end(), m.end() + 4096)
        v = _CELL_VALUE.search(body, m.end(), close.start() + 1) if close else None
        if v is None:
            continue
        try:
            out[parse_cell(attrs[b"r"].decode("ascii"))] = html.unescape(v.group(1).decode("utf-8", "replace"))[:20]
        except (ValueError, UnicodeDecodeError):
            continue
    return out


@guard.by_content
def _rel_targets(data: bytes) -> tuple[tuple[str | None, str], ...]:
    """workbook.xml.rels as (relationship id, target) pairs."""
    rels = parse_xml(data)
    return tuple((r.get("Id"), r.get("Target") or "") for r in rels.findall(f"{NS_PKG_REL}Relationship"))


@functools.lru_cache(maxsize=4096)  # a template's merged ranges are the same in every copy
def _merge_corners(a: bytes, b: bytes) -> tuple[tuple[int, int], tuple[int, int]] | None:
    try:
        return parse_cell(a.decode().replace("$", "")), parse_cell(b.decode().replace("$", ""))
    except ValueError:
        return None


_ODS_TAG = re.compile(rb'<table:table\s[^>]*>|</table:table>|<table:named-range\s[^>]*>')
_ODS_ATTR = re.compile(rb'table:([\w-]+)="([^"]*)"')
_ODS_REF = re.compile(r"^\$?(?:'((?:[^']|'')+)'|([^.]+))\.\$?([A-Za-z]{1,3})\$?([0-9]+)")


def _read_ods_names(xml: bytes, pkg: Package) -> None:
    """An .ods's named ranges into Package.names / local_names, as workbook.xml's defined names are read.

    <table:named-range table:name="tj_unit" table:cell-range-address="$表.$B$4"/> at the end of the document is
    workbook scope; inside a <table:table> it belongs to that sheet."""
    sheet = None
    for m in _ODS_TAG.finditer(xml):
        tag = m.group(0)
        if tag.startswith(b"</"):
            sheet = None
            continue
        attrs = {k.decode(): html.unescape(v.decode("utf-8", "replace")) for k, v in _ODS_ATTR.findall(tag)}
        if tag.startswith(b"<table:table"):
            sheet = attrs.get("name")
            continue
        ref = _ODS_REF.match(attrs.get("cell-range-address", ""))
        name = attrs.get("name")
        if not ref or not name or not _on_a_sheet(ref.group(3), ref.group(4)):
            continue
        target = (ref.group(1).replace("''", "'") if ref.group(1) is not None else ref.group(2),
                  f"{ref.group(3).upper()}{ref.group(4)}")
        if sheet is not None:
            pkg.local_names[(sheet, name)] = target[1] if target[0] == sheet else ""
        else:
            pkg.names[name] = target


def _read_custom(xml: bytes, pkg: Package) -> None:
    pkg.properties.update(_custom_properties(xml))


@guard.by_content
def _custom_properties(xml: bytes) -> tuple[tuple[str, str], ...]:
    """The tj.* custom properties as (name, text) pairs, in the order a dict keeps the last."""
    out: dict[str, str] = {}
    for prop in parse_xml(xml).findall(f"{NS_CUSTOM}property"):
        name = prop.get("name") or ""
        if name.startswith(passport.PROPERTY_PREFIX) and len(prop):
            out[name] = prop[0].text or ""
    return tuple(out.items())


# --- finding a form's fields on a sheet ------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)  # a template's labels are the same in every file
def norm_label(text) -> str:
    """Labels compare without spaces, line breaks, colons, and with full-width letters folded."""
    return _NOT_IN_LABEL.sub("", unicodedata.normalize("NFKC", str(text or "")))


_NOT_IN_LABEL = re.compile(r"[\s:：]")
_COLON = re.compile(r"[:：]")


class FormulaError(str):
    """An input cell holding a formula whose result is an error (its text: #VALUE!, #DIV/0!…)."""


@dataclass
class FieldValue:
    value: object
    sheet: str
    cell: str


@dataclass
class SheetForm:
    """One sheet read as one filled form; a table form also has its rows (column id -> value)."""

    sheet: str
    values: dict[str, FieldValue]
    issues: list[Issue]
    rows: list[dict[str, FieldValue]] = field(default_factory=list)


@functools.lru_cache(maxsize=4096)
def _split_label(v) -> tuple[str, str]:
    """A label cell as (label, value typed after its colon): "填表时间：2026年1月24日" -> ("填表时间", "2026年1月24日")."""
    parts = _COLON.split(v, maxsplit=1) if isinstance(v, str) else [v]
    return norm_label(parts[0]), parts[1].strip() if len(parts) > 1 else ""


class _Labels(dict):
    """Label text -> where it first stands; `more`: where else, for a text standing in several cells (a value
    typed the same as a label: 单位职务 “团干部”, before the label 团干部 itself)."""

    def __init__(self, first: dict[str, tuple[int, int]], more: dict[str, list[tuple[int, int]]]):
        super().__init__(first)
        self.more = more


def _find_labels(rows: list[list]) -> _Labels:
    """Where each label text stands; a cell typed "label：value" also stands for its label, after every exact one."""
    found: dict[str, tuple[int, int]] = {}
    typed: dict[str, tuple[int, int]] = {}
    more: dict[str, list[tuple[int, int]]] = {}
    for r, row in enumerate(rows):
        for c, v in enumerate(row):
            if isinstance(v, str) and v:
                # (a long text is no template's label: worked out without being remembered, so that crafted cells
                # cannot fill the caches)
                whole, label, value = _label_parts(v) if len(v) <= 64 else \
                    (norm_label.__wrapped__(v),) + _split_label.__wrapped__(v)
                if found.setdefault(whole, (r, c)) != (r, c):
                    more.setdefault(whole, []).append((r, c))
                if value:
                    typed.setdefault(label, (r, c))
    return _Labels(typed | found, more)


def _likeliest(p: _Place, spots: list[tuple[int, int]], shift: tuple[int, int]) -> tuple[int, int]:
    """Of the cells a label's text stands in, the one where the form's layout puts the label, the form being
    shifted by `shift` (rows and columns inserted above and before it) as its unambiguous labels are."""
    r0, c0 = p.label_at[0] + shift[0], p.label_at[1] + shift[1]
    return min(spots, key=lambda rc: abs(rc[0] - r0) + abs(rc[1] - c0))


def _shift(places: tuple[_Place, ...], labels: _Labels) -> tuple[int, int]:
    """How far the form stands from where its spec puts it: the median shift of the labels found once."""
    found = [(labels[p.label][0] - p.label_at[0], labels[p.label][1] - p.label_at[1])
             for p in places if p.label in labels and p.label not in labels.more]
    if not found:
        return 0, 0
    rows, cols = sorted(d for d, _ in found), sorted(d for _, d in found)
    return rows[len(rows) // 2], cols[len(cols) // 2]


@functools.lru_cache(maxsize=4096)
def _label_parts(v: str) -> tuple[str, str, str]:
    """A text cell as the label it reads as whole, and as _split_label's (label, value): one look-up per cell."""
    return (norm_label(v),) + _split_label(v)


def _input_beside(pkg: Package, sheet: str, rows: list[list], p: _Place, r: int, c: int) -> tuple[int, int]:
    """The input cell of a field whose label was found at (r, c): as far right of the label's right edge as the
    spec has it, so that a label merged across more (or fewer) columns still finds the cell to its right.

    A merge ends at the first cell in it that holds a value (a merge that no longer covers what it did)."""
    lr1, lc1, lc2 = p.label_at
    ir, ic = p.input_at
    if ic <= lc2:  # an input below its label: keep the spec's offset from the label's first cell
        return r + ir - lr1, c + ic - lc1
    right = pkg.right_edge(sheet, r, c, default=c + lc2 - lc1)
    right = next((k - 1 for k in range(c + 1, right + 1) if not _blank(_at(rows, r, k))), right)
    return r + ir - lr1, right + ic - lc2


def _blank(v) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


@dataclass(frozen=True)
class _Place:
    """Where a spec puts one field, worked out once per form version (every file of it asks the same)."""

    field: Any  # the spec's field
    name: str  # its defined name
    label: str  # its label as compared (norm_label)
    label_at: tuple[int, int, int]  # the label's first row and column, and its last column
    input_at: tuple[int, int]  # the input cell


_PLACES: dict[tuple[str, int, str], tuple[_Place, ...]] = {}


def _places(spec) -> tuple[_Place, ...]:
    key = (spec.form_id, spec.version, spec.fingerprint)
    if key not in _PLACES:
        _PLACES[key] = tuple(_place(f) for f in spec.fields)
    return _PLACES[key]


def _place(f) -> _Place:
    lr1, lc1, _, lc2 = parse_range(f.label_range)
    return _Place(f, passport.field_name(f.id), norm_label(f.label_text), (lr1, lc1, lc2), parse_cell(f.input_cell))


def _read_fields(pkg: Package, spec, sheet: str, rows: list[list],
                 labels: _Labels) -> tuple[dict, list[str], list[Issue]]:
    """Each field by its defined name where the label beside it still reads right, else by its label; an empty
    input whose label cell holds "label：value" is read from after the colon, with a warning saying so."""
    values: dict[str, FieldValue] = {}
    moved: list[str] = []
    notes: list[Issue] = []
    for p in _places(spec):
        f = p.field
        ref = _named_cell(pkg, sheet, p.name)
        lr1, lc1, _ = p.label_at
        ir, ic = p.input_at
        at = None
        if ref is not None:
            r, c = parse_cell(ref)
            lr, lc = r - (ir - lr1), c - (ic - lc1)
            if lr >= 0 and lc >= 0 and _split_label(_at(rows, lr, lc))[0] == p.label:
                at = (lr, lc), (r, c)
        if at is None:
            pos = labels.get(p.label)
            if pos is None:
                continue
            if p.label in labels.more:  # the text stands in several cells: not one that is another field's input
                # (a value typed the same as a label), and of the rest the one the layout puts it in
                inputs = {_input_beside(pkg, sheet, rows, q, *labels[q.label]) for q in _places(spec)
                          if q is not p and q.label in labels and q.label not in labels.more}
                spots = [rc for rc in [pos, *labels.more[p.label]] if rc not in inputs] or [pos]
                pos = _likeliest(p, spots, _shift(_places(spec), labels))
            at = pos, _input_beside(pkg, sheet, rows, p, *pos)
            if at != (p.label_at[:2], p.input_at):  # (a copied sheet keeps no names, its fields stand where they did)
                moved.append(f.label)
        (lr, lc), (r, c) = at
        value, cell = _at(rows, r, c), cell_name(r, c)
        error = pkg.error_at(sheet, r, c) if _blank(value) else None
        if error is not None:  # a formula typed in the input whose result is an error: not an empty cell
            values[f.id] = FieldValue(FormulaError(error), sheet, cell)
            continue
        typed = _split_label(_at(rows, lr, lc))[1] if _blank(value) else ""
        if typed:
            value, cell = typed, cell_name(lr, lc)
            notes.append(Issue.make("value-in-label", file=pkg.file, sheet=sheet, cell=cell, field=f.label,
                                    value=typed, input=cell_name(r, c)))
        values[f.id] = FieldValue(value, sheet, cell)
    return values, moved, notes


def read_form_sheet(pkg: Package, spec: FormSpec, sheet: str) -> SheetForm | None:
    """The spec's fields on one sheet; None when the sheet does not read as this form (under half its labels)."""
    rows = pkg.rows(sheet)
    labels = _find_labels(rows)
    present = sum(p.label in labels for p in _places(spec))
    if present * 2 < len(spec.fields):
        return None
    values, moved, notes = _read_fields(pkg, spec, sheet, rows, labels)
    issues = [Issue.make("template-modified", file=pkg.file, sheet=sheet, fields=moved)] if moved else []
    return SheetForm(sheet, values, issues + notes)


def read_table_sheet(pkg: Package, spec: TableSpec, sheet: str) -> SheetForm | None:
    """Header fields plus one row per task, columns found by their headings; None if the headings are absent."""
    rows = pkg.rows(sheet)
    want = {norm_label(c.label): c.id for c in spec.columns}
    header = None
    for r, row in enumerate(rows):
        cols = {want[norm_label(v)]: c for c, v in enumerate(row) if isinstance(v, str) and norm_label(v) in want}
        if "code" in cols and len(cols) * 2 >= len(spec.columns):
            header = r, cols
            break
    if header is None:
        return None
    hr, cols = header
    values, moved, notes = _read_fields(pkg, spec, sheet, rows, _find_labels(rows[:hr]))
    named = _named_cell(pkg, sheet, passport.column_name("code"))
    if named != cell_name(hr + 1, cols["code"]) or any(cols.get(c.id) != i for i, c in enumerate(spec.columns)):
        moved.append("任务表")
    table = []
    at = tuple(cols.items())
    for r in range(hr + 1, len(rows)):
        row = rows[r]
        got = [row[c] if c < len(row) else "" for _, c in at]
        if all(v in ("", None) for v in got):
            continue  # an empty row: nothing to read, and rows below it still count
        table.append({cid: FieldValue(v, sheet, cell_name(r, c)) for (cid, c), v in zip(at, got)})
    issues = [Issue.make("template-modified", file=pkg.file, sheet=sheet, fields=moved)] if moved else []
    return SheetForm(sheet, values, issues + notes, table)


def _named_cell(pkg: Package, sheet: str, name: str) -> str | None:
    local = pkg.local_names.get((sheet, name))
    if local:
        return local
    ref = pkg.names.get(name)
    if ref and ref[0] == sheet:
        return ref[1]
    return None


def _at(rows: list[list], r: int, c: int):
    if 0 <= r < len(rows) and 0 <= c < len(rows[r]):
        return rows[r][c]
    return ""


def read_forms(pkg: Package, spec: FormSpec | TableSpec) -> list[SheetForm]:
    """Every visible sheet that reads as the form is one record (staff copy the sheet for each visit)."""
    forms = []
    not_forms = pkg.not_forms()
    for sheet, visible in pkg.sheets:
        if not visible or sheet in not_forms:
            continue
        form = read_table_sheet(pkg, spec, sheet) if isinstance(spec, TableSpec) else read_form_sheet(pkg, spec, sheet)
        if form is not None:
            forms.append(form)
    return forms
