"""The operating system's lock on a file in a workspace's .tuanjian folder: one watch (or sender) per workspace
(watch.WatchLock), one merge at a time (merge._one_at_a_time). The lock dies with its process; the file only says
who took it (JSON), for the message another one gets."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from .issues import Issue, TuanjianError

_LOCK_AT = 1 << 20  # the byte locked on Windows: beyond the content, so that others can still read who holds it


def open_lock(path: Path) -> int:
    """The lock file, made if need be, open to lock and to say who took it; TuanjianError (cannot-write) when the
    folder cannot hold it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o666)
    except OSError as exc:
        from .xlsxio import os_reason

        raise TuanjianError(Issue.make("cannot-write", file=path.name, detail=str(path), reason=os_reason(exc))) from None


def try_lock(fd: int) -> bool:
    """Take the lock on an open file if no other process holds it (never waits)."""
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, _LOCK_AT, os.SEEK_SET)
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


def unlock(fd: int) -> None:
    """Give the lock back."""
    if sys.platform == "win32":
        import msvcrt

        os.lseek(fd, _LOCK_AT, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    else:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_UN)


def holder(fd: int) -> dict:
    """What the lock file says of who took it ({} when it says nothing readable)."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = json.loads(os.read(fd, 4096).decode("utf-8") or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def who(held: dict) -> str:
    """Who holds a lock, in Chinese, for the message the one refused gets."""
    if not held:
        return "另一个进程"
    started = str(held.get("started", "?")).replace("T", " ")
    return f"{held.get('what', 'tuanjian')}，进程 {held.get('pid', '?')}，电脑 {held.get('host', '?')}，{started} 开始"
