"""Walking what staff point the tool at (files and folders, the inbox by default): every spreadsheet and container
in a stable order, and a refusal, never silence, for what cannot or must not be read — a link leading out of the
folder, a link that loops or leads nowhere, a file or folder the user may not read."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterable, Iterator

from .filenames import display_name
from .issues import Issue

SPREADSHEET_SUFFIXES = {".xlsx", ".xlsm", ".xltx", ".xltm", ".xls", ".xlsb", ".et", ".ods", ".csv"}
CONTAINERS = {".zip", ".eml"}
MAX_FOLDER_DEPTH = 32


@dataclass(frozen=True)
class Refused:
    """A path that is not read, and why (an issue naming it)."""

    path: Path
    issue: Issue


@dataclass(frozen=True)
class Other:
    """A file in a folder that is neither a spreadsheet nor a container — a Word copy of the form, a scan, a photo, a
    RAR, an Outlook .msg: not read; merge says once that it lies there (a unit that sent only that is not taken
    for one that sent nothing), without counting it received or returning it (photos come beside reports)."""

    path: Path
    kind: str


def _refuse(path: Path, reason: str) -> Refused:
    return Refused(path, Issue.make("path-refused", file=display_name(path.name), detail=display_name(str(path)),
                                    reason=reason))


def _inside(path: Path, top: Path) -> bool:
    try:
        path.relative_to(top)
        return True
    except ValueError:
        return False


def _wanted(name: str, suffixes: set[str]) -> bool:
    return _sorted_out(name, suffixes) is True


_REAL_SUFFIX = re.compile(r"\.[A-Za-z][A-Za-z0-9]{0,8}")
_NOT_MINE = {"thumbs.db", "desktop.ini"}  # what Windows leaves in a folder
_UNFINISHED = {".tmp", ".crdownload", ".part", ".partial", ".download", ".filepart"}  # a download under way
_OTHER_KINDS = (({".doc", ".docx", ".wps", ".rtf", ".odt", ".docm"}, "Word 文档"),
                ({".pdf", ".ofd"}, "PDF"),
                ({".jpg", ".jpeg", ".png", ".gif", ".bmp", ".heic", ".webp", ".tif", ".tiff"}, "图片"),
                ({".rar", ".7z", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".cab"}, "zip 以外的压缩包，请解压后发送或改用 zip"),
                ({".ppt", ".pptx", ".dps"}, "演示文稿"),
                ({".msg"}, "Outlook 邮件，请在 Outlook 中另存为 .eml"))


def _sorted_out(name: str, suffixes: set[str]) -> bool | str:
    """What a file found in a folder is: True to read (a spreadsheet or container by its suffix, or a name without a
    real suffix — a report whose extension a mail or OA system dropped: its content decides, see intake), False to
    pass over in silence (what Windows, a Mac, Excel and a browser leave beside files, and any other kind of file:
    a note staff keep there), or the kind of file a unit may send in place of the form (a Word copy, a scan, a
    photo, a RAR): an `Other`, said once by merge."""
    if name.startswith(("~$", "._")) or name.lower() in _NOT_MINE:
        return False
    suffix = os.path.splitext(name)[1].lower()
    if suffix in _UNFINISHED:
        return False
    if suffix in suffixes:
        return True
    if name.startswith("."):  # (a hidden file that is no spreadsheet: .DS_Store, a program's own)
        return False
    if not _REAL_SUFFIX.fullmatch(suffix) or os.path.splitext(name[:-len(suffix)])[1].lower() in suffixes:
        return True  # (报表.xlsx.txt: an extension Windows hid, then typed again — its content decides)
    return next((said for kinds, said in _OTHER_KINDS if suffix in kinds), False)


def walk(paths: Iterable[Path], suffixes: set[str] = SPREADSHEET_SUFFIXES | CONTAINERS, *,
         check_access: bool = True) -> Iterator[Path | Refused | Other]:
    """Files given by name are taken as they are; folders are searched (sub-folders too, names in sorted order).
    Inside a folder a symbolic link is followed only when it stays inside that folder. Excel's lock files ~$…
    and what a Mac leaves beside a file it copied (._name) are skipped silently. A file found in a folder that
    this user may not read is refused (`unreadable`) — with `check_access` False the caller asks that itself, for
    the files it will read."""
    for found in _walk(paths, suffixes, check_access, False):
        yield Path(found) if isinstance(found, str) else found


def walk_texts(paths: Iterable[Path], *, check_access: bool = True) -> Iterator[str | Refused | Other]:
    """As `walk`, each file as the text of its path (what str() of walk's Path gives): for merge's walk of an
    inbox of thousands of files, which keeps them all, no Path object is made for a file in a folder."""
    for found in _walk(paths, SPREADSHEET_SUFFIXES | CONTAINERS, check_access, True):
        yield str(found) if isinstance(found, Path) else found


def _walk(paths: Iterable[Path], suffixes: set[str], check_access: bool, text: bool) -> Iterator[Path | str | Refused | Other]:
    for p in paths:
        p = Path(p)
        try:
            if p.is_dir():
                yield from _folder(p, p.resolve(), suffixes, 0, check_access, text)
            elif p.exists() and not p.is_file():  # given by name: a named pipe would hold the run for ever
                yield _refuse(p, NOT_A_FILE)
            elif not p.name.startswith("~$"):
                yield p
        except OSError as exc:
            yield _refuse(p, read_reason(exc))


def _folder(folder: Path, top: Path, suffixes: set[str], depth: int, check_access: bool,
            text: bool) -> Iterator[Path | str | Refused | Other]:
    if depth > MAX_FOLDER_DEPTH:
        yield _refuse(folder, f"文件夹层数超过 {MAX_FOLDER_DEPTH} 层")
        return
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as exc:
        yield _refuse(folder, read_reason(exc))
        return
    base = str(folder)
    join = "" if base == "." else base if base.endswith(os.sep) else base + os.sep  # (what str(folder / name) gives)
    for entry in entries:
        if text and _plain(entry):  # the common case, quickly: a plain file, its path's text without a Path
            sorted_out = _sorted_out(entry.name, suffixes)
            if sorted_out is True:
                yield (unreadable(_child(folder, entry.name)) if check_access else None) or join + entry.name
            elif sorted_out:
                yield Other(_child(folder, entry.name), sorted_out)
            continue
        path = _child(folder, entry.name)  # (an inbox holds thousands of files: each step here counts)
        try:
            if entry.is_symlink():
                try:
                    target = path.resolve(strict=True)
                except (OSError, RuntimeError):  # dangling, or a loop
                    if _wanted(entry.name, suffixes) or not Path(entry.name).suffix:
                        yield _refuse(path, "链接指向的文件不存在或形成循环")
                    continue
                if not _inside(target, top):
                    yield _refuse(path, "链接指向收件文件夹以外的位置，为安全起见不予读取")
                    continue
                if target.is_dir():
                    continue  # a link to a folder inside the folder: that folder is walked anyway
            if entry.is_dir(follow_symlinks=False):
                yield from _folder(path, top, suffixes, depth + 1, check_access, text)
            elif (sorted_out := _sorted_out(entry.name, suffixes)) is True and entry.is_file():
                yield (unreadable(path) if check_access else None) or path
            elif sorted_out is True:  # a named pipe, a socket, a device: said, never opened
                yield _refuse(path, NOT_A_FILE)
            elif sorted_out and entry.is_file():
                yield Other(path, sorted_out)
        except OSError as exc:
            yield _refuse(path, read_reason(exc))


NOT_A_FILE = "不是普通文件（可能是管道或设备），不予读取"


def _plain(entry: os.DirEntry) -> bool:
    """A regular file, not a link (False too when that cannot be told: the careful path then says why)."""
    try:
        return not entry.is_symlink() and entry.is_file(follow_symlinks=False)
    except OSError:
        return False


def unreadable(path: Path) -> Refused | None:
    """A file this user may not read, refused with the reason; None for one that can be read."""
    return None if os.access(path, os.R_OK) else _refuse(path, "没有读取权限")


def _child(folder: Path, name: str) -> Path:
    """folder / name, made without parsing the whole path again (three times quicker, where pathlib offers it)."""
    make = getattr(folder, "_make_child_relpath", None)
    return make(name) if make is not None else folder / name


def read_reason(exc: OSError) -> str:
    """Why a file or folder could not be read, in Chinese."""
    if isinstance(exc, PermissionError):  # here we only read: the system's "access denied" means reading
        return "没有读取权限"
    from .xlsxio import os_reason

    return os_reason(exc)
