"""Live Excel through xlwings (optional extra `tuanjian-xlsx[excel]`, Windows and macOS only).

The only module that imports xlwings. On Linux xlwings imports but cannot drive Excel, and its file reader needs a
paid licence, so it is never used for reading."""

from __future__ import annotations

import sys
from pathlib import Path


def unavailable() -> str | None:
    """Why live Excel cannot be used here, in Chinese; None when it can."""
    if sys.platform not in ("win32", "darwin"):
        return "本机不是 Windows 或 macOS，无法直接在 Excel 中打开"
    try:
        import xlwings  # noqa: F401
    except ImportError:
        return "未安装 Excel 联动组件（pip install \"tuanjian-xlsx[excel]\"）"
    return None


def _book(path: Path):
    import xlwings as xw

    target = str(Path(path).resolve()).lower()
    for app in xw.apps:
        for book in app.books:
            if str(book.fullname).lower() == target:
                return book
    return None


def close_if_open(path: Path) -> bool:
    """Close the workbook if Excel has it open, saving nothing (Excel locks open files on Windows)."""
    if unavailable():
        return False
    book = _book(path)
    if book is None:
        return False
    book.close()
    return True


def open_and_calculate(path: Path) -> None:
    import xlwings as xw

    book = xw.Book(str(Path(path).resolve()))
    book.app.calculate()
    book.activate()
