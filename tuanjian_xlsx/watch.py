"""`tuanjian watch`: the loop that runs the mail by itself — fetch → merge → replies → reminders (on their schedule
from tuanjian.toml's [watch]) — once (`--once`, for the Windows 任务计划程序 or cron) or every so often.

One instance per workspace: a lock file (.tuanjian/watch.lock) holding pid, host and start time, locked with the
system's file lock while the instance lives. A crash releases the system lock with the process, so the next
instance takes the file over (and says so); from another computer (a shared folder, where the system lock may not
reach) a lock not refreshed for longer than the limit counts as left behind. Each cycle is one Chinese line with
its time, to the caller and to 自动收发日志.txt in the workspace. A mail server away means the next try comes
sooner and then later (1, 2, 4… minutes up to the interval), never a traceback. The clock, the sleeping and the
question "stop now?" come from the caller (api.py): nothing here reads the clock."""

from __future__ import annotations

import datetime as dt
import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from .issues import Issue, TuanjianError
from .ledger import LEDGER_DIR
from .locks import holder, open_lock, try_lock, unlock, who

if TYPE_CHECKING:
    from .fetchmail import FetchResult
    from .merge import MergeResult
    from .reminders import ReminderReport
    from .replies import ReplyReport

T = TypeVar("T")
LOCK_FILE = "watch.lock"
LOG_FILE = "自动收发日志.txt"
FIRST_RETRY = dt.timedelta(minutes=1)
AWAY = {"mail-connect", "mail-disconnected", "mail-server-error"}  # a server away: retried sooner


# --- one instance per workspace ------------------------------------------------------------------------------

class WatchLock:
    """The workspace's one-instance lock. `take` raises TuanjianError (watch-running) when another instance lives;
    `took_over` says whose lock a crash left behind, if any. The file is emptied, never removed, on release (a
    removed lock file could be locked by two processes at once)."""

    def __init__(self, path: Path, fd: int, holder: dict, took_over: str | None):
        self.path, self.fd, self.holder, self.took_over = path, fd, holder, took_over

    @classmethod
    def take(cls, root: Path, *, now: dt.datetime, pid: int, host: str, stale_after: dt.timedelta,
             what: str = "tuanjian watch") -> WatchLock:
        path = Path(root) / LEDGER_DIR / LOCK_FILE
        fd = open_lock(path)
        if not try_lock(fd):
            held = holder(fd)
            os.close(fd)
            raise TuanjianError(Issue.make("watch-running", file=f"{LEDGER_DIR}/{LOCK_FILE}", holder=who(held)))
        held = holder(fd)
        took_over = None
        if held:
            beat = _when(held.get("beat"))
            if held.get("host") != host and beat is not None and now - beat < stale_after:  # alive on another computer
                unlock(fd)
                os.close(fd)
                raise TuanjianError(Issue.make("watch-running", file=f"{LEDGER_DIR}/{LOCK_FILE}", holder=who(held)))
            took_over = who(held)
        mine = {"what": what, "pid": pid, "host": host, "started": now.isoformat(timespec="seconds"),
                "beat": now.isoformat(timespec="seconds")}
        lock = cls(path, fd, mine, took_over)
        lock._write(mine)
        return lock

    def beat(self, now: dt.datetime) -> None:
        """Still alive: the time in the lock file is how another computer tells a live lock from a left one."""
        self.holder["beat"] = now.isoformat(timespec="seconds")
        self._write(self.holder)

    def _write(self, data: dict) -> None:
        try:
            text = json.dumps(data, ensure_ascii=False).encode("utf-8")
            os.lseek(self.fd, 0, os.SEEK_SET)
            os.write(self.fd, text)
            os.ftruncate(self.fd, len(text))
        except OSError:  # the lock itself holds; only what it says of us is out of date
            pass

    def release(self) -> None:
        try:
            os.ftruncate(self.fd, 0)
            unlock(self.fd)
        except OSError:
            pass
        finally:
            os.close(self.fd)


def _when(text) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(text))
    except ValueError:
        return None


# --- one cycle -------------------------------------------------------------------------------------------------

@dataclass
class Cycle:
    """What one cycle did: each step's result, the problems met (none stops the others)."""

    at: dt.datetime
    fetched: FetchResult | None = None
    merged: MergeResult | None = None
    replies: ReplyReport | None = None
    reminders: list[ReminderReport] = field(default_factory=list)
    problems: list[Issue] = field(default_factory=list)
    away: bool = False  # a mail server could not be reached: the next cycle comes sooner
    sending: bool = True  # False: no mail server to send with is set up (no replies, no reminders)

    def summary(self) -> str:
        from .reminders import KIND_ZH

        parts = []
        if self.fetched is not None:
            parts.append(f"收信 {len(self.fetched.taken)} 封")
        if self.merged is not None:
            new = [i for i in self.merged.ingested if i.outcome == "new"]  # (the mailbox's among them)
            valid = sum(1 for i in new if i.valid)
            parts.append(f"新文件 {len(new)} 份（有效 {valid}，有错 {len(new) - valid}）" if new else "没有新文件")
        if self.replies is not None:
            parts.append(f"回执 {self.replies.files('receipt')} · 退回 {self.replies.files('return')}")
        parts += [f"{KIND_ZH[r.kind]} {len(r.sent)} 个单位" for r in self.reminders]
        if not self.sending:
            parts.append("未设置发信服务器（[mail] smtp_host），不发回执和催报")
        if self.away:
            parts.append("邮件服务器连不上，稍后重试")
        elif not self.ok:
            parts.append("有问题，见下")
        return f"{self.at:%Y-%m-%d %H:%M} " + " · ".join(parts)

    def lines(self) -> list[str]:
        """The summary, then what staff should know: each reply and reminder sent or not, each problem."""
        out = [self.summary()]
        if self.fetched is not None:
            out += self.fetched.lines(hint=False)[1:]
        steps: list = [self.replies, *self.reminders]
        for step in steps:
            if step is not None:
                out += [line if line.startswith("  ") else f"  {line}" for line in step.lines()[1:]]
        if self.merged is not None:
            out += [f"  {n.render()}" for n in self.merged.notes]
        return out + [f"  {i.render()}" for i in self.problems]

    @property
    def ok(self) -> bool:
        failed = (self.replies is not None and self.replies.failed) or any(r.failed for r in self.reminders)
        return not (self.problems or self.away or failed)

    def to_dict(self) -> dict:
        return {"at": self.at.isoformat(), "ok": self.ok, "away": self.away,
                "fetch": self.fetched.to_dict() if self.fetched is not None else None,
                "merge": self.merged.to_dict() if self.merged is not None else None,
                "replies": self.replies.to_dict() if self.replies is not None else None,
                "reminders": [r.to_dict() for r in self.reminders],
                "problems": [i.to_dict() for i in self.problems]}


def _step(cycle: Cycle, run: Callable[[], T]) -> T | None:
    """One step; what stops it is recorded and the cycle goes on."""
    try:
        return run()
    except TuanjianError as exc:
        cycle.problems += exc.issues
        cycle.away = cycle.away or any(i.code in AWAY for i in exc.issues)
    except OSError as exc:  # the system refused something (a full disk, a folder gone): said, never a traceback
        from .xlsxio import os_reason

        cycle.problems.append(Issue.make("system-error", reason=os_reason(exc)))
    except Exception as exc:  # noqa: BLE001 — a bug must not end the loop that staff rely on; said in Chinese
        cycle.problems.append(Issue(code="internal", severity="error",
                                    message=f"内部错误（{type(exc).__name__}：{exc}），本步跳过，下一轮再试"))
    return None


def cycle(root: Path, now: dt.datetime) -> Cycle:
    """fetch (when a mailbox is set up) → merge → replies → reminders (from remind_hour on; each form once a
    day at most, again after remind_every_days)."""
    from .fetchmail import fetch_mail
    from .merge import merge
    from .plan import Workspace
    from .reminders import owed_reminders
    from .replies import answer

    c = Cycle(now)
    ws = _step(c, lambda: Workspace.load(root))
    if ws is None:
        return c
    if ws.settings.mail.imap_host:
        c.fetched = _step(c, lambda: fetch_mail(root, now=now))
    c.merged = _step(c, lambda: merge(root, now=now, as_of=now.date(),
                                      fetched=c.fetched.ingested if c.fetched else None))
    ingested = c.merged.ingested if c.merged else (c.fetched.ingested if c.fetched else [])
    fresh = {i.sha256: i.result for i in ingested if i.outcome == "new" and i.result is not None}
    c.sending = bool(ws.settings.mail.smtp_host)
    if not c.sending:  # replies stay owed (and run out after reply_within_days), reminders wait: said each cycle
        return c
    c.replies = _step(c, lambda: answer(ws, now=now, results=fresh))
    w = ws.settings.watch
    if w.reminders and now.hour >= w.remind_hour:
        kinds = [("overdue", 0)] + ([("advance", w.before_days)] if w.before_days else [])
        for kind, before in kinds:
            got = _step(c, functools.partial(owed_reminders, root, day=now.date(), now=now, kind=kind,
                                             before_days=before, repeat_days=w.remind_every_days))
            if got is not None:
                c.reminders.append(got)
    c.away = c.away or (c.replies is not None and c.replies.away) or any(r.away for r in c.reminders)
    return c


# --- the loop --------------------------------------------------------------------------------------------------

@dataclass
class WatchResult:
    cycles: int = 0
    last: Cycle | None = None
    stopped: bool = False  # asked to stop (Ctrl+C)

    def to_dict(self) -> dict:
        return {"cycles": self.cycles, "stopped": self.stopped, "last": self.last.to_dict() if self.last else None}


def human(span: dt.timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600} 小时"
    if seconds % 60 == 0:
        return f"{seconds // 60} 分钟"
    return f"{seconds} 秒"


class Log:
    """The lines said, also appended to 自动收发日志.txt in the workspace (UTF-8, with a BOM for Notepad)."""

    def __init__(self, root: Path, say: Callable[[str], None] | None):
        self.path, self.say, self.broken = Path(root) / LOG_FILE, say, False

    def __call__(self, line: str) -> None:
        if self.say is not None:
            self.say(line)
        try:
            new = not self.path.exists()
            with open(self.path, "a", encoding="utf-8-sig" if new else "utf-8", newline="\n") as f:
                f.write(line + "\n")
        except OSError as exc:
            if not self.broken and self.say is not None:
                from .xlsxio import os_reason

                self.say(f"  无法写入日志 {self.path}（{os_reason(exc)}）")
            self.broken = True


def stale_after(every: dt.timedelta) -> dt.timedelta:
    """How long a lock may go without a beat before its holder counts as gone: a watch beats between cycles, so
    twice its interval and a margin (the same rule for a watch and for merge --reply / status --send)."""
    return 2 * every + dt.timedelta(minutes=30)


def next_retry(retry: dt.timedelta | None, every: dt.timedelta) -> dt.timedelta:
    """The wait before the next try while a mail server is away: 1, 2, 4… minutes, never more than the interval
    (the wait itself is capped, so it cannot grow without end however long the server stays away)."""
    return min(FIRST_RETRY if retry is None else retry * 2, every)


def run(root: Path, *, every: dt.timedelta | None = None, once: bool = False, clock: Callable[[], dt.datetime],
        sleep: Callable[[float], object], should_stop: Callable[[], bool], say: Callable[[str], None] | None = None,
        pid: int = 0, host: str = "") -> WatchResult:
    """Cycles until `should_stop()` (checked after each cycle and each wait), or one with `once`. A second instance
    on the workspace is refused (TuanjianError) before anything is done."""
    from .plan import Workspace

    ws = Workspace.load(root)  # a broken configuration is said now, with its place, before the lock
    every = every or ws.settings.watch.interval
    started = clock()
    log = Log(root, None)  # until the lock is ours, only a refusal is written (what the scheduler shows no one)
    try:
        lock = WatchLock.take(root, now=started, pid=pid, host=host, stale_after=stale_after(every))
    except TuanjianError as exc:
        log(f"{started:%Y-%m-%d %H:%M} 未运行：{exc.issues[0].message}")
        raise
    log.say = say
    result = WatchResult()
    try:
        if lock.took_over:
            log(f"{started:%Y-%m-%d %H:%M} 上次的自动收发没有正常结束（{lock.took_over}），已接管")
        if not once:
            log(f"{started:%Y-%m-%d %H:%M} 开始自动收发（{Path(root).resolve()}）：每 {human(every)}一轮，按 Ctrl+C 停止")
        retry: dt.timedelta | None = None
        while True:
            c = cycle(root, clock())
            result.cycles, result.last = result.cycles + 1, c
            for line in c.lines():
                log(line)
            if once or should_stop():
                break
            retry = next_retry(retry, every) if c.away else None
            wait = retry if retry is not None else every
            if retry is not None:
                log(f"  {human(wait)}后重试")
            lock.beat(clock())
            sleep(wait.total_seconds())
            if should_stop():
                break
        result.stopped = not once
    finally:
        lock.release()
    if result.stopped:
        log(f"{clock():%Y-%m-%d %H:%M} 已停止")
    return result
