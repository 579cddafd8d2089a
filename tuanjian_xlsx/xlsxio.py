"""Writing .xlsx files: deterministic XlsxWriter workbooks, honest cached values, atomic replacement."""

from __future__ import annotations

import datetime as dt
import errno
import io
import os
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import xlsxwriter
import xlsxwriter.exceptions
import xlsxwriter.packager
import xlsxwriter.workbook
import xlsxwriter.worksheet
from xlsxwriter.utility import xl_rowcol_to_cell_fast

from .issues import Issue, TuanjianError
from .periods import excel_serial  # noqa: F401 — where writers look for it

# Pinned so that the same inputs give byte-identical files (the plan's own date).
BUILD_DATE = dt.datetime(2020, 7, 3, 0, 0, 0)

FONT_BODY = "仿宋"
FONT_TITLE = "宋体"


# Functions that exist only in Excel 365 (dynamic arrays and newer): XlsxWriter would rewrite them to _xlfn.
# names; our files must work in Excel 2010, WPS and LibreOffice 7.4, so they are refused outright.
_NEWER_FUNCTIONS = re.compile(
    r"\b(?:ANCHORARRAY|BYCOL|BYROW|CHOOSECOLS|CHOOSEROWS|DROP|EXPAND|FILTER|HSTACK|LAMBDA|LET|MAKEARRAY|MAP|"
    r"RANDARRAY|REDUCE|SCAN|SINGLE|SEQUENCE|SORT|SORTBY|SWITCH|TAKE|TEXTSPLIT|TOCOL|TOROW|UNIQUE|VSTACK|"
    r"WRAPCOLS|WRAPROWS|XLOOKUP|XMATCH|IFS|MAXIFS|MINIFS|CONCAT|TEXTJOIN)\(")


_FAST_CELLS = ("String", "Number", "Datetime", "Blank")


class Worksheet(xlsxwriter.worksheet.Worksheet):
    """XlsxWriter's worksheet without its per-formula pass of ~30 regular expressions (a tenth of the master's
    rendering time): our formulas use only functions every target program has, which is checked here instead.
    A formula whose cached result is "" is written t="str": XlsxWriter writes <v></v> with no type, which readers
    take for a number; the result is the empty string, as Excel itself marks it."""

    def _prepare_formula(self, formula, expand_future_functions=False):
        if formula.startswith("="):
            formula = formula[1:]
        if _NEWER_FUNCTIONS.search(formula):
            raise ValueError(f"formula uses a function Excel 2010/WPS/LibreOffice 7.4 lack: {formula[:80]}")
        return formula

    def _write_cell(self, row: int, col: int, cell) -> None:
        """XlsxWriter's own, for the cells a master holds by the ten thousand (a shared string, a number or a date
        with a format) and a template's bordered blanks in one step: the same bytes (the reference and the format's
        index need no escaping)."""
        kind = cell.__class__.__name__
        if cell.format is None or kind not in _FAST_CELLS or self.constant_memory:
            return super()._write_cell(row, col, cell)
        ref, xf = xl_rowcol_to_cell_fast(row, col), cell.format._get_xf_index()
        if kind == "String":
            self.fh.write(f'<c r="{ref}" s="{xf}" t="s"><v>{cell.string}</v></c>')
        elif kind == "Blank":
            self.fh.write(f'<c r="{ref}" s="{xf}"/>')
        else:
            self.fh.write(f'<c r="{ref}" s="{xf}"><v>{cell.number:.16G}</v></c>')
        return None

    # A recorded build's conditional formats and validations are the same text in every copy of it (see
    # build.chrome.Program): XlsxWriter writes them once into `captured_sections`, later copies are given them.
    frozen_sections: dict[str, str] | None = None
    captured_sections: dict[str, str] | None = None

    def _write_conditional_formats(self) -> None:
        self._section("conditional_formats", super()._write_conditional_formats)

    def _write_data_validations(self) -> None:
        self._section("data_validations", super()._write_data_validations)

    def _section(self, name: str, write) -> None:
        sheet: Any = self  # XlsxWriter's attributes are untyped
        if self.frozen_sections is not None:
            sheet.fh.write(self.frozen_sections[name])
        elif self.captured_sections is None:
            write()
        else:
            fh, sheet.fh = sheet.fh, io.StringIO()
            try:
                write()
                text = sheet.fh.getvalue()
            finally:
                sheet.fh = fh
            fh.write(text)
            self.captured_sections[name] = text

    def stored_formula(self, row: int, col: int) -> str | None:
        """The text write_formula stored for a cell, if it stored a plain formula there (not an array formula)."""
        cell = self.table.get(row, {}).get(col)
        return cell.formula if type(cell) is xlsxwriter.worksheet.CellFormulaTuple else None

    def write_formula_again(self, row: int, col: int, stored: str, cell_format, value) -> None:
        """write_formula for a formula written before, `stored` being the text it stored then: its checks (XlsxWriter's
        and ours) look at the text alone and took the plain way, so it is stored as they stored it."""
        if not self._check_dimensions(row, col):
            self.table[row][col] = xlsxwriter.worksheet.CellFormulaTuple(stored, cell_format, value)

    def _xml_formula_element(self, formula, result, attributes=()):
        if isinstance(result, str) and result == "" and all(k != "t" for k, _ in attributes):
            attributes = [*attributes, ("t", "str")]
        super()._xml_formula_element(formula, result, list(attributes))


class Workbook(xlsxwriter.Workbook):
    """XlsxWriter's workbook, each format knowing the properties it was made from (`_tj_props`): a styles part is
    then a function of its formats' properties in order, and made once per process (see _Packager)."""

    def add_format(self, properties=None):
        made = super().add_format(properties)
        made._tj_props = tuple((properties or {}).items())
        return made

    def _get_packager(self):  # XlsxWriter's hook for its own packager
        return _Packager()


class _Packager(xlsxwriter.packager.Packager):
    _STYLES: dict[tuple, str] = {}  # the styles part by what it is made from (bounded: see _write_styles_file)

    def _write_styles_file(self) -> None:
        """XlsxWriter's styles.xml, which depends only on the formats in use (in their order), the properties they
        were made from with the workbook's defaults (never changed after: nothing here calls a Format's set_
        methods), the palette and whether there are comments: written once, then the same text for every workbook
        made of the same formats."""
        wb = self.workbook
        if not self.in_memory:  # the parts go to files (the master): XlsxWriter's own
            super()._write_styles_file()
            return
        try:
            key = (tuple(wb.default_format_properties.items()), wb.excel2003_style,
                   tuple(f._tj_props for f in wb.xf_formats), tuple(f._tj_props for f in wb.dxf_formats),
                   tuple(wb.palette), tuple(wb.custom_colors), wb.has_comments)
            text = self._STYLES.get(key)
        except (AttributeError, TypeError):  # a format not made by Workbook.add_format, or not a key
            super()._write_styles_file()
            return
        if text is None:
            super()._write_styles_file()
            text = self.filenames[-1][0].getvalue()
            if len(self._STYLES) < 256:
                self._STYLES[key] = text
        else:
            self._filename("xl/styles.xml").write(text)


class StoredBuffer(io.BytesIO):
    """A buffer for a workbook whose package is stored, not compressed: about 4 × the bytes (tens of KB for a
    form), written in a fraction of the time — for workbooks made by the hundred and read once (退回件)."""


class _Package(zipfile.ZipFile):
    """The zip XlsxWriter makes a package with (always ZIP_DEFLATED, it has no option for it): the same, except
    that a workbook written into a StoredBuffer has its parts stored."""

    def __init__(self, file, mode="r", compression=zipfile.ZIP_STORED, *args, **kwargs):
        super().__init__(file, mode, zipfile.ZIP_STORED if isinstance(file, StoredBuffer) else compression,
                         *args, **kwargs)
        if isinstance(file, io.BytesIO):
            file._tj_package = self  # (what close_workbook lets go of when writing the package fails)


xlsxwriter.workbook.ZipFile = _Package  # the name XlsxWriter's _store_workbook makes its zip with


def new_workbook(buffer: io.BytesIO, *, title: str = "", company: str = "") -> xlsxwriter.Workbook:
    wb = Workbook(
        buffer,
        {
            "in_memory": True,
            "strings_to_formulas": False,  # user text starting with '=' stays text
            "strings_to_urls": False,
            "default_format_properties": {"font_name": FONT_BODY, "font_size": 12},
        },
    )
    wb.set_properties({"title": title, "company": company, "author": "tuanjian-xlsx", "created": BUILD_DATE})
    wb.worksheet_class = Worksheet
    return wb


def close_workbook(wb: xlsxwriter.Workbook, buffer: io.BytesIO) -> bytes:
    """The finished package (XlsxWriter's zip, fixed entry times: the same workbook gives the same bytes). A part
    that cannot be written to its temporary file (a workbook made on disk: the master) fails as the OSError it is,
    which callers say in Chinese, not as XlsxWriter's own exception."""
    try:
        wb.close()
    except BaseException as exc:
        package = getattr(buffer, "_tj_package", None)
        if package is not None:  # half written: dropped, not finished later by its __del__ (a traceback on the
            package.fp = None    # console when the disk is full)
        if isinstance(exc, xlsxwriter.exceptions.FileCreateError):
            cause = exc.args[0] if exc.args and isinstance(exc.args[0], OSError) else OSError(str(exc))
            raise cause from None
        raise
    return buffer.getvalue()


def atomic_write(path: Path, data: bytes) -> Path:
    """Write to a temporary file beside `path`, then rename over it: readers never see half a file. Any failure
    raises TuanjianError in Chinese and leaves no temporary file behind."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".~tj-", suffix=path.suffix, dir=path.parent)
    except OSError as exc:  # the folder cannot be made or written in: nothing was created
        # no file name: the folder is what is wrong (and a caller may retry under another name)
        raise TuanjianError(Issue.make("folder-not-writable", detail=str(path.absolute().parent),
                                       reason=os_reason(exc))) from None
    try:
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; others on a shared folder must read it
        except OSError as exc:  # disk full, quota, a network share gone
            raise _refused("cannot-write", path, exc) from None
        try:
            os.replace(tmp, path)
        except OSError as exc:  # most often on Windows: Excel holds an open workbook locked
            raise _refused("file-locked", path, exc) from None
    except BaseException:
        _remove(tmp)
        raise
    return path


def _refused(code: str, path: Path, exc: OSError) -> TuanjianError:
    return TuanjianError(Issue.make(code, file=path.name, detail=str(path), reason=os_reason(exc)))


def _remove(tmp: str) -> None:
    try:
        Path(tmp).unlink(missing_ok=True)
    except OSError:
        pass


_REASONS = {getattr(errno, name): text for names, text in (
    ("EACCES EPERM EROFS", "没有写入权限"),
    ("ENOSPC EDQUOT", "磁盘空间不足"),
    ("EFBIG", "文件过大"),
    ("ENAMETOOLONG", "文件名过长"),
    ("ENOENT", "找不到文件或文件夹"),
    ("EEXIST", "已有同名的文件"),
    ("ENOTDIR", "路径中有一段不是文件夹"),
    ("EISDIR", "这是一个文件夹"),
    ("EBUSY ETXTBSY", "文件正被其他程序占用"),
    ("EIO", "读写出错（磁盘或网络故障）"),
    ("ECONNREFUSED", "连接被拒绝"),
    ("ECONNRESET ECONNABORTED EPIPE", "连接被中断"),
    ("ETIMEDOUT", "连接超时"),
    ("ENETUNREACH EHOSTUNREACH ENETDOWN", "网络不通"),
) for name in names.split() if hasattr(errno, name)}  # not every platform has every name
# Windows' own codes come first where they say more than errno (a sharing violation is EACCES there too).
_WINERRORS = {32: "文件正被其他程序占用", 33: "文件正被其他程序占用", 123: "文件名中有不允许的字符",
              206: "文件名过长"}


def os_reason(exc: OSError) -> str:
    """The reason for an OSError in Chinese, by its error number; else the system's own words."""
    winerror: int | None = getattr(exc, "winerror", None)  # Windows only
    reason = (_WINERRORS.get(winerror) if winerror is not None else None) or _REASONS.get(exc.errno)
    if reason is None and isinstance(exc, TimeoutError):
        reason = "超时"
    return reason or exc.strerror or type(exc).__name__


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
