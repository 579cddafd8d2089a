"""Writing .xlsx files: deterministic XlsxWriter workbooks, honest cached values, atomic replacement."""

from __future__ import annotations

import datetime as dt
import errno
import io
import os
import re
import tempfile
from pathlib import Path

import xlsxwriter
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
        with a format) in one step: the same bytes (the reference and the format's index need no escaping)."""
        kind = cell.__class__.__name__
        if cell.format is None or kind not in ("String", "Number", "Datetime") or self.constant_memory:
            return super()._write_cell(row, col, cell)
        ref, xf = xl_rowcol_to_cell_fast(row, col), cell.format._get_xf_index()
        if kind == "String":
            self.fh.write(f'<c r="{ref}" s="{xf}" t="s"><v>{cell.string}</v></c>')
        else:
            self.fh.write(f'<c r="{ref}" s="{xf}"><v>{cell.number:.16G}</v></c>')
        return None

    def _xml_formula_element(self, formula, result, attributes=()):
        if isinstance(result, str) and result == "" and all(k != "t" for k, _ in attributes):
            attributes = [*attributes, ("t", "str")]
        super()._xml_formula_element(formula, result, list(attributes))


def new_workbook(buffer: io.BytesIO, *, title: str = "", company: str = "") -> xlsxwriter.Workbook:
    wb = xlsxwriter.Workbook(
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
    """The finished package (XlsxWriter's zip, fixed entry times: the same workbook gives the same bytes)."""
    wb.close()
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
