"""One function per command (as httpx's `_api.py`): each takes what the command line parses, does the job through
the library and returns a result with `lines()` (what a person reads, in Chinese), `errors()` (lines for the
error stream), `to_dict()` (the JSON a program reads) and `exit_code`. The command line only parses options,
calls one of these and renders the result. This is also the one layer that reads the clock: below it, the time
comes in as an argument."""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported lazily at run time, to keep `tuanjian --help` quick
    from .issues import Issue
    from .assess import Assessment
    from .demo import DemoResult
    from .distribute import Distribution
    from .fetchmail import FetchResult
    from .merge import MergeResult
    from .reminders import ReminderReport
    from .replies import ReplyReport
    from .versions import SpecDiff
    from .watch import WatchResult


def _now(root: Path | None = None, given: dt.datetime | None = None) -> dt.datetime:
    """`given`, else the committee's time now; either way the workspace's time zone in use from here on (clock.py:
    mail dates and arrivals are read in it)."""
    from . import clock

    clock.use(root)
    return given or clock.now()


@dataclass
class Result:
    """What every command returns."""

    def lines(self) -> list[str]:
        return []

    def errors(self) -> list[str]:
        return []

    def to_dict(self) -> dict:
        return {}

    @property
    def exit_code(self) -> int:
        return 0


# --- init and templates -----------------------------------------------------------------------------------------


@dataclass
class Initialised(Result):
    root: Path
    settings: Path
    roster: Path
    folders: list[str]
    shown: str  # the folder as the user typed it, for the next-step hint
    counted_from: str  # the first period counted as owed, as shown (the default start)
    this_month: str  # the current month's code, for the hint on counting only from now

    def lines(self) -> list[str]:
        return [f"已新建工作区：{self.root}", f"  设置：{self.settings}", f"  名单与目标：{self.roster}",
                f"  文件夹：{'、'.join(f'{f}/' for f in self.folders)}",
                f"  应报从{self.counted_from}起统计（此前的报送期不列为未报、不催报）；如只从本月起统计，"
                f"把 tuanjian.toml 的 [reporting] 中的 start = \"\" 改为 start = \"{self.this_month}\"",
                f"下一步：tuanjian templates build --workspace {self.shown}"]

    def to_dict(self) -> dict:
        return {"root": str(self.root), "settings": str(self.settings), "roster": str(self.roster),
                "folders": self.folders, "counted_from": self.counted_from, "this_month": self.this_month}


def init(directory: Path) -> Initialised:
    from .settings import FOLDER_KEYS
    from .workspace import init_workspace

    from .periods import Period
    from .status import reporting_start

    ws = init_workspace(directory)
    today = _now().date()
    return Initialised(ws.root, ws.root / "tuanjian.toml", ws.root / ws.settings.roster.file,
                       [getattr(ws.settings.folders, k) for k in FOLDER_KEYS], str(directory),
                       reporting_start(ws, today).label, Period(today.year, "month", today.month).code)


@dataclass
class Built(Result):
    written: list[Path]

    def lines(self) -> list[str]:
        return [f"已生成 {len(self.written)} 个模板："] + [f"  {p}" for p in self.written]

    def to_dict(self) -> dict:
        return {"written": [str(p) for p in self.written]}


def build_templates(root: Path, out_dir: Path | None = None) -> Built:
    from .workspace import build_workspace_templates

    return Built(build_workspace_templates(root, out_dir))


@dataclass
class TemplateList(Result):
    rows: list[dict]

    def lines(self) -> list[str]:
        return [f"{r['form_id']:<20} v{r['version']:<3} 字段 {r['fields']:>2} 个  指纹 {r['fingerprint'][:16]}  {r['title']}"
                for r in self.rows]

    def to_dict(self) -> dict:
        return {"templates": self.rows}


def list_templates() -> TemplateList:
    from .workspace import list_templates as rows

    return TemplateList(rows())


@dataclass
class TemplateDiff(Result):
    diff: SpecDiff  # change records, rendered by it

    def lines(self) -> list[str]:
        return self.diff.lines()

    def to_dict(self) -> dict:
        return self.diff.to_dict()


def diff_templates(form_id: str, old: int, new: int) -> TemplateDiff:
    from .specs import SpecRegistry
    from .versions import spec_changes

    return TemplateDiff(spec_changes(SpecRegistry(), form_id, old, new))


@dataclass
class Upgrades(Result):
    items: list  # versions.Upgraded

    def lines(self) -> list[str]:
        out = [f"已升级：{i.source.name} → {i.target}" for i in self.items if i.target]
        return out + [x.render() for i in self.items if not i.target for x in i.issues if x.severity != "error"]

    def errors(self) -> list[str]:
        return [x.render() for i in self.items if not i.target for x in i.issues if x.severity == "error"]

    def to_dict(self) -> dict:
        return {"files": [{"source": str(i.source), "target": str(i.target) if i.target else None,
                           "issues": [x.to_dict() for x in i.issues]} for i in self.items]}

    @property
    def exit_code(self) -> int:
        return 1 if self.errors() else 0


def upgrade(root: Path, files: list[Path], out: Path | None = None) -> Upgrades:
    from .versions import upgrade as run

    return Upgrades(run(root, files, out))


# --- validate, merge, fetch, status ---------------------------------------------------------------------------


def validate(paths: list[Path], root: Path | None = None, return_dir: Path | None = None,
             today: dt.date | None = None):
    """Files, zips, saved mails and folders checked, as received today (a mail: on its date); 退回件 with
    --return-dir (see workspace.ValidationOutcome)."""
    from .workspace import validate_submissions

    return validate_submissions(paths, root, return_dir, today or _now(root).date())


@dataclass
class Merged(Result):
    merge: MergeResult
    fetched: FetchResult | None = None  # with --fetch
    excel_note: str | None = None  # why the master was not opened in Excel, with --open
    replies: ReplyReport | None = None  # with --reply

    def lines(self) -> list[str]:
        m = self.merge
        out = list(self.fetched.lines(hint=False)) if self.fetched is not None else []  # (merged right after)
        out.append(m.summary())
        for item in m.invalid:
            assert item.result is not None  # a new invalid file keeps its FileResult (merge.Ingested)
            first = next(i for i in item.result.issues if i.severity == "error")
            out.append(f"  退回  {item.path.name}：{first.render()}")
        out += [f"  退回件：{piece.workbook or piece.message}" for piece in m.returns]
        out.append(f"汇总表：{m.master}")
        out += self.replies.lines() if self.replies is not None else []
        return out + ([self.excel_note] if self.excel_note else [])

    def errors(self) -> list[str]:
        return [note.render() for note in self.merge.notes]

    def to_dict(self) -> dict:
        out = self.merge.to_dict()
        if self.fetched is not None:
            out["fetch"] = self.fetched.to_dict()
        if self.excel_note:
            out["excel"] = self.excel_note
        if self.replies is not None:
            out["replies"] = self.replies.to_dict()
        return out

    @property
    def exit_code(self) -> int:
        return 0 if self.merge.master and not (self.replies and self.replies.failed) else 1


def merge(root: Path, paths: list[Path] | None = None, *, out: Path | None = None, as_of: dt.date | None = None,
          fetch: bool = False, received_at: dt.datetime | None = None, open_excel: bool = False,
          progress: Callable | None = None, now: dt.datetime | None = None, reply: bool = False,
          dry_run: bool = False, resend: list[str] | None = None) -> Merged:
    """Fetch (with `fetch`), ingest, validate, write 退回件 and the master; with `open_excel` show it in Excel; with
    `reply` answer every file received (回执/退回 by mail, see replies.py; `dry_run`: only say what would go)."""
    from .merge import MASTER_NAME
    from .merge import merge as run

    now = _now(root, now)
    excel_note = None
    if open_excel:
        from . import excel
        from .plan import Workspace

        excel_note = excel.unavailable()
        if excel_note is None:  # Excel would keep the old master locked: close it first, saving nothing
            try:
                excel.close_if_open(out or Workspace.load(root).folder("master") / MASTER_NAME)
            except Exception as exc:  # noqa: BLE001 — Excel/COM trouble must not cost the merge
                excel_note = f"未能通过 Excel 关闭旧的汇总表（{type(exc).__name__}）"
    if reply and resend:  # a mistyped number said before anything is written, not after the merge's output
        from .replies import check_resend

        check_resend(root, resend)
    with _sending(root, now, "tuanjian merge --reply") if reply else contextlib.nullcontext():
        fetched = fetch_mail(root, now=now) if fetch else None
        result = run(root, paths or None, out=out, as_of=as_of, now=now, progress=progress, received_at=received_at,
                     fetched=fetched.ingested if fetched else None)  # (counted, returned and noted with the rest)
        replied = _answer(root, now, result.ingested, dry_run, resend) if reply else None
    if open_excel and result.master:
        excel_note = _open_in_excel(result.master, excel_note)
    return Merged(result, fetched, excel_note, replied)


@contextlib.contextmanager
def _sending(root: Path, now: dt.datetime, what: str):
    """While replies or reminders are sent from a workspace, no other tuanjian sends from it (watch.WatchLock)."""
    import os
    import socket

    from .issues import TuanjianError
    from .plan import Workspace
    from .settings import Watch
    from .watch import WatchLock, stale_after

    try:  # a running watch beats only between its cycles: its own rule says when it is gone
        every = Workspace.load(root).settings.watch.interval
    except TuanjianError:  # a tuanjian.toml that cannot be read: said by what runs next; the default's rule here
        every = Watch().interval
    lock = WatchLock.take(root, now=now, pid=os.getpid(), host=socket.gethostname(), what=what,
                          stale_after=stale_after(every))
    try:
        yield
    finally:
        lock.release()


def _answer(root: Path, now: dt.datetime, ingested: list, dry_run: bool, resend: list[str] | None) -> ReplyReport:
    from .plan import Workspace
    from .replies import answer

    fresh = {i.sha256: i.result for i in ingested if i.outcome == "new" and i.result is not None}
    return answer(Workspace.load(root), now=now, dry_run=dry_run, resend=resend, results=fresh)


def _open_in_excel(master: Path, problem: str | None) -> str | None:
    if problem:
        return f"{problem}；请手动打开：{master}"
    from . import excel

    try:
        excel.open_and_calculate(master)
    except Exception as exc:  # noqa: BLE001 — Excel/COM trouble must not cost the merge
        return f"未能在 Excel 中打开（{type(exc).__name__}）；请手动打开：{master}"
    return None


def fetch_mail(root: Path, *, since: dt.date | None = None, folder: str | None = None, dry_run: bool = False,
               now: dt.datetime | None = None):
    """Reports attached to mails not taken before (see fetchmail.FetchResult)."""
    from .fetchmail import fetch_mail as run

    return run(root, since=since, folder=folder, dry_run=dry_run, now=_now(root, now))


@dataclass
class StatusReport(Result):
    as_of: dt.date
    items: list  # status.StatusItem
    form_names: dict[str, str]
    form_order: list[str]
    reminders: dict[str, str] = field(default_factory=dict)
    sent: ReminderReport | None = None  # with --send: the reminders mailed
    notes: list[Issue] = field(default_factory=list)  # what the list cannot count (files waiting in the inbox)

    def lines(self) -> list[str]:
        from .status import STATUS_ZH

        groups: dict[tuple, list] = {}
        for i in self.items:
            groups.setdefault((i.form_id, i.period), []).append(i)
        out = [f"报送情况（截至 {self.as_of.isoformat()}）", *(f"注意：{n.message}" for n in self.notes)]
        if not self.items:  # said, not left as a bare heading
            out.append("没有应报的报表：所问的报送期不在统计范围内（tuanjian.toml 的 [reporting] start 起），"
                       "或名单上没有单位要报它")
        for (form_id, p), rows in sorted(groups.items(), key=lambda kv: (self.form_order.index(kv[0][0]), kv[0][1])):
            counts = {s: [r.unit for r in rows if r.status == s] for s in STATUS_ZH}
            dues = " / ".join(sorted({r.due.isoformat() for r in rows}))  # unit types may be due on different days
            line = f"{self.form_names.get(form_id, form_id)} {p.label}（截止 {dues}）："
            out.append(line + "，".join(f"{STATUS_ZH[s]} {len(u)}" for s, u in counts.items() if u))
            out += [f"    {STATUS_ZH[s]}：{'、'.join(counts[s])}" for s in ("missing", "late") if counts[s]]
        if self.sent is not None:
            out += ["", *self.sent.lines()]
        elif self.reminders:
            out += ["", "催报文字（可直接复制发送）："]
            for text in self.reminders.values():
                out += ["", text]
        return out

    def to_dict(self) -> dict:
        out = {"as_of": self.as_of.isoformat(), "items": [i.to_dict() for i in self.items],
               "notes": [n.to_dict() for n in self.notes]}
        return out | ({"send": self.sent.to_dict()} if self.sent is not None else {})

    @property
    def exit_code(self) -> int:
        return 1 if self.sent is not None and self.sent.failed else 0


def status(root: Path, *, period: str | None = None, as_of: dt.date | None = None, send: bool = False,
           before: int | None = None, dry_run: bool = False, now: dt.datetime | None = None) -> StatusReport:
    """Who owes what as of a date (the ledger read only; works on a read-only workspace). With `send`, mail each
    unit its 催报 (every 未报), or with `before` its 提前提醒 (forms due within that many days), blank copies
    attached; `dry_run`: only say what would go (see reminders.py)."""
    from .filenames import display_name
    from .issues import Issue, TuanjianError
    from .merge import status as run
    from .status import reminders

    now = _now(root, now)
    waiting: list[str] = []
    day, items, ws = run(root, as_of=as_of or now.date(), period=period, waiting=waiting)
    names = {s.form_id: s.display_name for s in ws.registry.latest()}
    sent = None
    shown = "、".join([display_name(Path(w).name) for w in waiting[:10]] + (["……"] if len(waiting) > 10 else []))
    note = Issue.make("inbox-not-merged", count=len(waiting), names=shown) if waiting else None
    if send and note is not None and not dry_run:  # a 催报 to a unit whose file is waiting in the inbox: never
        raise TuanjianError(Issue.make("inbox-not-merged", severity="error", count=len(waiting), names=shown))
    if send:
        from .reminders import remind

        with _sending(root, now, "tuanjian status --send"):
            sent = remind(ws, items, day=day, now=now, kind="overdue" if before is None else "advance",
                          before_days=before or 0, repeat_days=ws.settings.watch.remind_every_days, dry_run=dry_run)
    return StatusReport(day, items, names, ws.registry.form_ids, reminders(ws, items, day), sent,
                        [note] if note is not None else [])


@dataclass
class Watched(Result):
    result: WatchResult  # its cycles were said as they ran (`say`); the last one's outcome sets the exit code

    def to_dict(self) -> dict:
        return self.result.to_dict()

    @property
    def exit_code(self) -> int:
        last = self.result.last
        return 0 if self.result.stopped or last is None or last.ok else 1


def watch(root: Path, *, every: dt.timedelta | None = None, once: bool = False, say: Callable | None = None,
          clock: Callable | None = None, sleep: Callable | None = None, should_stop: Callable | None = None) -> Watched:
    """fetch → merge → replies → reminders, every `every` (default: tuanjian.toml's [watch]), or once; each
    cycle's lines go to `say` and the workspace's log. Ctrl+C (or SIGTERM) stops it cleanly after the step under
    way; a second Ctrl+C stops at once. Tests give their own clock, sleep and stop."""
    import os
    import signal
    import socket
    import threading
    import time

    from .watch import run

    stopping: list[int] = []  # a signal handler may only set a flag: a lock taken in it can deadlock the loop

    def on_signal(signum, frame):
        if stopping:
            raise KeyboardInterrupt
        stopping.append(signum)

    def nap(seconds: float) -> None:
        end = time.monotonic() + seconds
        while not stopping and (left := end - time.monotonic()) > 0:
            time.sleep(min(left, 0.5))

    handlers = {}
    if should_stop is None and threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            handlers[sig] = signal.signal(sig, on_signal)
    try:
        return Watched(run(root, every=every, once=once, clock=clock or (lambda: _now(root)), sleep=sleep or nap,
                           should_stop=should_stop or (lambda: bool(stopping)), say=say, pid=os.getpid(),
                           host=socket.gethostname()))
    finally:
        for sig, previous in handlers.items():
            signal.signal(sig, previous)


@dataclass
class Assessed(Result):
    result: Assessment

    def lines(self) -> list[str]:
        a = self.result
        out = [f"已生成 {a.year} 年度考核表：{a.path}",
               f"  考核 {len(a.units)} 个单位；只计 {a.year} 年截至 {a.as_of.isoformat()} 已到截止日期的报送期"]
        if a.replaced:
            out.append(f"  保留了 {a.kept} 项手工加减分" + (f"；上一份另存为 {a.backup.name}" if a.backup else ""))
        ranked = sorted((u for u in a.units if u.total is not None), key=lambda u: (u.rank or 0, -(u.total or 0)))
        return out + [f"  {u.rank}. {u.unit}（{u.unit_type}）{u.total:.2f}" for u in ranked]

    def errors(self) -> list[str]:
        return [note.render() for note in self.result.notes]

    def to_dict(self) -> dict:
        return self.result.to_dict()


def assess(root: Path, *, year: int | None = None, as_of: dt.date | None = None, out: Path | None = None) -> Assessed:
    """The year-end assessment of `year` (default: the as-of date's year; in January the year before) as of a day
    (default today), keeping the manual 加减分 of the file it replaces."""
    from .assess import assess as run

    day = as_of or _now(root).date()
    if year is None:
        year = day.year - 1 if day.month == 1 else day.year
    return Assessed(run(root, year=year, as_of=day, out=out))


# --- distribute, demo, ledger ---------------------------------------------------------------------------------


@dataclass
class Distributed(Result):
    result: Distribution

    def lines(self) -> list[str]:
        r = self.result
        files = sum(len(p.files) for p in r.packages)
        out = [f"已为 {len(r.packages)} 个单位生成 {r.period.label} 的 {files} 份表：{r.folder}"]
        for pkg in r.packages:
            verb = "发送至" if r.sent is not None else "将发送至"
            where = f"{verb} {pkg.unit.email}" if pkg.unit.email else "名单中没有邮箱，请另行发送"
            out.append(f"  {pkg.unit.name}：{len(pkg.files)} 份（{where}）" + (f"  {pkg.zip.name}" if pkg.zip else ""))
        if r.without_address:
            out.append(f"没有邮箱的单位 {len(r.without_address)} 个：{'、'.join(u.name for u in r.without_address)}"
                       "（可在《名单与目标.xlsx》的“单位名单”中补填）")
        if r.sent is not None:
            out.append(f"已发送 {len(r.sent.sent)} 个单位：{'、'.join(u.name for u in r.sent.sent) or '无'}")
        out += [f"提醒：{was.name} 下发后被改动过，未覆盖，已改名保留为 {now.name}" for was, now in r.kept]
        return out

    def errors(self) -> list[str]:
        sent = self.result.sent
        return [f"  发送失败：{unit.name}（{unit.email}）：{why}" for unit, why in sent.failed] if sent else []

    def to_dict(self) -> dict:
        r = self.result
        return {"period": r.period.code, "folder": str(r.folder),
                "units": [{"unit": p.unit.name, "files": [str(f) for f in p.files], "email": p.unit.email or None,
                           "zip": str(p.zip) if p.zip else None} for p in r.packages],
                "sent": [u.name for u in r.sent.sent] if r.sent else None,
                "failed": [{"unit": u.name, "reason": why} for u, why in r.sent.failed] if r.sent else []}

    @property
    def exit_code(self) -> int:
        return 1 if self.result.sent is not None and self.result.sent.failed else 0


def distribute(root: Path, period: str, *, forms: list[str] | None = None, units: str | None = None,
               out: Path | None = None, make_zip: bool = False, send: bool = False,
               now: dt.datetime | None = None) -> Distributed:
    """Every unit's copies for a period (units: numbers or names, separated by commas as typed)."""
    from .distribute import distribute as run

    wanted = [u.strip() for u in units.replace("，", ",").split(",") if u.strip()] if units else None
    return Distributed(run(root, period, forms=forms or None, units=wanted, out=out, make_zip=make_zip, send=send,
                           now=_now(root, now)))


@dataclass
class Demo(Result):
    result: DemoResult
    shown: str

    def lines(self) -> list[str]:
        m, a = self.result.merge, self.result.assessment
        return ([f"演示工作区：{self.result.root}（模拟 2026 年 1—6 月的报送，统计日 {m.as_of.isoformat()}）", m.summary(),
                 f"汇总表：{m.master}"] + [f"退回件：{p.workbook or p.message}" for p in m.returns]
                + ([f"年度考核表（上半年）：{a.path}"] if a else [])
                + [f"催报文字：{len(self.result.reminders)} 个单位，运行 tuanjian status -w {self.shown} "
                   f"--as-of {m.as_of.isoformat()} 查看"])

    def to_dict(self) -> dict:
        a = self.result.assessment
        return {"root": str(self.result.root), **self.result.merge.to_dict(), "assessment": str(a.path) if a else None}


def demo(directory: Path) -> Demo:
    from .demo import run_demo

    return Demo(run_demo(directory), str(directory))


def ledger_check(root: Path):
    """The ledger's integrity, every archived original present and unchanged, torn temporary files."""
    from .ledger_tools import check

    return check(root)


def ledger_rebuild(root: Path, now: dt.datetime | None = None):
    """A new ledger from the archived originals (the damaged one kept aside); not while mail is sent from the
    workspace (the ledger says which replies are owed)."""
    from .ledger_tools import rebuild

    now = _now(root, now)
    with _sending(root, now, "tuanjian ledger rebuild"):
        return rebuild(root, now=now)


def ledger_void(root: Path, which: str, *, reason: str | None, undo: bool = False, now: dt.datetime | None = None):
    """Withdraw a file sent by mistake, or restore it (`undo`): recorded with who ran it, when and why."""
    import getpass

    from .voiding import void

    try:
        who: str | None = getpass.getuser()
    except (OSError, KeyError, ImportError):  # no account name to be had (a container without one)
        who = None
    return void(root, which, reason=reason, undo=undo, who=who, now=_now(root, now))


__all__ = ["assess", "build_templates", "demo", "diff_templates", "distribute", "fetch_mail", "init", "ledger_check",
           "ledger_rebuild", "ledger_void", "list_templates", "merge", "status", "upgrade", "validate", "watch"]
