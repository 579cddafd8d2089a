"""`tuanjian ledger check` and `tuanjian ledger rebuild`: whether the ledger is sound and the archive holds every
original it lists; and, when the ledger is lost, a new one made from the archived originals.

The archive is the ground truth: each original is kept under the sha256 of its bytes, and containers (.zip, .eml)
as received beside the spreadsheets taken out of them. What lives only in the ledger — file names, where a file came
from, which mails were taken, refusals recorded without bytes, repeat sightings — is read back from the damaged
ledger where it still can be, and said to be lost where it cannot.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import re
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from .clock import from_timestamp
from .intake import CONTAINERS, Submission, expand  # containers are kept as received; not rows themselves
from .issues import Issue, TuanjianError
from .ledger import (ARCHIVE_DIR, LEDGER_DIR, LEDGER_FILE, LEDGER_SHOWN, MIGRATIONS, REMINDER_COLUMNS, REPLY_COLUMNS,
                     TEMP_MAX_AGE, VOID_COLUMNS, Ledger, _fault, _os_issue, connect_readonly, refusal_key, temp_files)
from .plan import Workspace

_ARCHIVED = re.compile(r"([0-9a-f]{64})(\.[^.]+)?")
ARCHIVE_SHOWN = f"{LEDGER_DIR}/{ARCHIVE_DIR}"


@dataclass(frozen=True)
class Original:
    """A file in the archive, named by its hash."""

    path: Path
    sha256: str
    ext: str

    @property
    def shown(self) -> str:
        """A readable stand-in for a name the ledger no longer knows."""
        return f"原件_{self.sha256[:8]}{self.ext}"

    @property
    def place(self) -> str:
        return f"{ARCHIVE_SHOWN}/{self.path.name}"


def originals(archive: Path) -> tuple[list[Original], list[Path]]:
    """The archived originals (sorted by the time they were archived), and the other files found there."""
    found, other = [], []
    try:
        entries = sorted(Path(archive).iterdir(), key=_mtime)
    except OSError:
        return [], []
    for p in entries:
        if p.name.startswith(".") or not p.is_file():
            continue  # temporary files: see temp_files
        m = _ARCHIVED.fullmatch(p.name)
        if m:
            found.append(Original(p, m.group(1), m.group(2) or ""))
        else:
            other.append(p)
    return found, other


def _mtime(p: Path) -> float:
    try:
        return p.stat().st_mtime
    except OSError:
        return 0.0


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _refusal(sha256: str, origin: str) -> bool:
    """A member refused before reading (unsafe path, zip bomb): recorded without bytes, nothing archived."""
    return sha256 == refusal_key(origin)


def _age(seconds: float) -> str:
    if seconds < 3600:
        return f"{max(1, int(seconds // 60))} 分钟"
    if seconds < 86400 * 2:
        return f"{int(seconds // 3600)} 小时"
    return f"{int(seconds // 86400)} 天"


# --- check -------------------------------------------------------------------------------------------------


class _Verdict:
    """What both reports share: fine unless an issue is an error; the command's exit code follows."""

    issues: list[Issue]

    @property
    def ok(self) -> bool:
        return not any(i.severity == "error" for i in self.issues)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def errors(self) -> list[str]:
        return []


@dataclass
class CheckReport(_Verdict):
    """What `check` found: counts for the summary, and one issue per finding, each naming its file."""

    ledger_exists: bool
    schema_version: int | None
    known_version: int = len(MIGRATIONS)
    files: int = 0  # rows in the ledger
    refusals: int = 0  # of which refused before reading: no archived bytes expected
    archived: int = 0  # originals in the archive
    containers: int = 0  # of which zips and mails as received (not rows of their own)
    unlisted: int = 0  # other originals the ledger does not list (a run killed before recording them)
    temps: int = 0
    issues: list[Issue] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = []
        if not self.ledger_exists:
            out.append(f"{LEDGER_SHOWN}：还没有登记簿（尚未登记任何文件）")
        elif self.schema_version is not None:
            shape = f"结构第 {self.schema_version} 版"
            if self.schema_version < self.known_version:
                shape += f"，下次登记时自动升级到第 {self.known_version} 版"
            out.append(f"{LEDGER_SHOWN}：{shape} · 登记 {self.files} 个文件（其中 {self.refusals} 个拒收件没有原件）")
        out.append(f"{ARCHIVE_SHOWN}：{self.archived} 个原件（压缩包/邮件 {self.containers} 个 · "
                   f"不在登记簿中的 {self.unlisted} 个）· 临时文件 {self.temps} 个")
        out += [i.render() for i in self.issues]
        errors = sum(1 for i in self.issues if i.severity == "error")
        out.append("检查通过" if self.ok else f"发现 {errors} 个问题")
        return out

    def to_dict(self) -> dict:
        return {"ok": self.ok, "ledger": LEDGER_SHOWN, "ledger_exists": self.ledger_exists,
                "schema_version": self.schema_version, "known_version": self.known_version, "files": self.files,
                "refusals": self.refusals, "archived": self.archived, "containers": self.containers,
                "unlisted": self.unlisted, "temps": self.temps, "issues": [i.to_dict() for i in self.issues]}


def check(root: Path, *, now: float | None = None) -> CheckReport:
    """Read-only: the ledger's integrity and schema version; every original it lists present in the archive with the
    bytes its sha256 names; torn temporary files; originals nobody lists (counted, harmless). `now` (epoch seconds,
    default the clock) dates the temporary files."""
    now = time.time() if now is None else now
    led = Path(root) / LEDGER_DIR
    path, archive = led / LEDGER_FILE, led / ARCHIVE_DIR
    found, _ = originals(archive)
    report = CheckReport(ledger_exists=path.exists(), schema_version=None, archived=len(found))
    listed: set[str] = set()
    if report.ledger_exists:
        listed = _check_ledger(path, archive, report)
    elif found:
        report.issues.append(Issue.make("ledger-missing", file=LEDGER_SHOWN, count=len(found)))
    for o in found:
        if o.sha256 not in listed:
            if o.ext in CONTAINERS:
                report.containers += 1
            else:
                report.unlisted += 1
    for tmp in temp_files(archive):
        report.temps += 1
        age = now - _mtime(tmp)
        detail = ("已超过 1 小时，下次登记时自动清除" if age > TEMP_MAX_AGE
                  else "可能正在写入，请勿删除；超过 1 小时后下次登记时自动清除")
        report.issues.append(Issue.make("archive-temp", file=f"{ARCHIVE_SHOWN}/{tmp.name}", age=_age(age),
                                        detail=detail))
    return report


def _check_ledger(path: Path, archive: Path, report: CheckReport) -> set[str]:
    """The ledger's own findings into `report`; the sha256s it lists."""
    listed: set[str] = set()
    try:
        db = connect_readonly(path)
    except sqlite3.Error as exc:
        report.issues.append(_fault(exc, path, writing=False))
        return listed
    try:
        report.schema_version = db.execute("PRAGMA user_version").fetchone()[0]
        if report.schema_version > len(MIGRATIONS):  # its tables may mean other things: read no further
            report.issues.append(Issue.make("ledger-newer", file=LEDGER_SHOWN, version=report.schema_version,
                                            known=len(MIGRATIONS)))
            return listed
        problems = [r[0] for r in db.execute("PRAGMA integrity_check(10)")]
        if problems != ["ok"]:
            first = " ".join(str(problems[0]).replace("*** in database main ***", "").split())
            more = f"，共 {len(problems)} 处" if len(problems) > 1 else ""
            report.issues.append(Issue.make("ledger-integrity", file=LEDGER_SHOWN,
                                            detail=f"数据库内部结构损坏（SQLite：{first}）{more}"))
        for sha, name, origin, ext in db.execute("SELECT sha256, name, origin, ext FROM files ORDER BY id"):
            report.files += 1
            listed.add(sha)
            if _refusal(sha, origin):
                report.refusals += 1
                continue
            _check_original(archive / f"{sha}{ext}", sha, name, report)
    except sqlite3.Error as exc:
        report.issues.append(_fault(exc, path, writing=False))
    finally:
        db.close()
    return listed


def _check_original(p: Path, sha: str, name: str, report: CheckReport) -> None:
    place = f"{ARCHIVE_SHOWN}/{p.name}"
    try:
        actual = sha256_file(p)
    except FileNotFoundError:
        report.issues.append(Issue.make("archive-missing", file=place, shown=name))
        return
    except OSError as exc:
        from .xlsxio import os_reason

        report.issues.append(Issue.make("file-unreadable", file=place, detail=f"{name}（{os_reason(exc)}）"))
        return
    if actual != sha:
        report.issues.append(Issue.make("archive-altered", file=place, shown=name))


# --- rebuild -----------------------------------------------------------------------------------------------


@dataclass
class Salvage:
    """What could still be read from the damaged ledger."""

    files: dict[str, dict] = field(default_factory=dict)  # sha256 -> the row (name, origin, received_at…)
    files_complete: bool = False  # every row read, to the end of the table
    mails: list[tuple] = field(default_factory=list)
    mails_complete: bool = False
    meta: dict[str, str] = field(default_factory=dict)
    replies: list[tuple] = field(default_factory=list)  # rows of ledger.REPLY_COLUMNS: what became of each reply
    replies_complete: bool = False
    reminders: list[tuple] = field(default_factory=list)  # rows of ledger.REMINDER_COLUMNS
    voids: list[tuple] = field(default_factory=list)  # rows of ledger.VOID_COLUMNS: files staff withdrew, restored


@dataclass
class RebuildReport(_Verdict):
    broken: Path | None  # where the old ledger was moved; None when there was none
    registered: int = 0
    valid: int = 0
    invalid: int = 0
    containers: int = 0
    names_recovered: int = 0
    mails_recovered: int = 0
    refusals_recovered: int = 0
    replies_recovered: int = 0
    voids_recovered: int = 0
    issues: list[Issue] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = []
        if self.broken is not None:
            out.append(f"原登记簿已移到 {LEDGER_DIR}/{self.broken.name}（保留，未删除）")
        out.append(f"从原件存档重新登记 {self.registered} 个文件：有效 {self.valid} · 无效 {self.invalid}"
                   f"（无效的视为已退回，不再重新生成退回件）；重新展开了 {self.containers} 个压缩包/邮件")
        if self.names_recovered or self.mails_recovered or self.refusals_recovered or self.replies_recovered:
            out.append(f"从原登记簿读回：{self.names_recovered} 个文件的原名、来源和收到时间 · "
                       f"{self.mails_recovered} 封邮件的收取记录 · {self.refusals_recovered} 个拒收记录 · "
                       f"{self.replies_recovered} 个文件的自动回复记录（其余文件算作已回复）")
        if self.voids_recovered:
            out.append(f"从原登记簿读回 {self.voids_recovered} 条作废/恢复记录（作废的文件仍不计入）")
        out += [i.render() for i in self.issues]
        return out

    def to_dict(self) -> dict:
        return {"ok": self.ok, "broken": str(self.broken) if self.broken else None, "registered": self.registered,
                "valid": self.valid, "invalid": self.invalid, "containers": self.containers,
                "names_recovered": self.names_recovered, "mails_recovered": self.mails_recovered,
                "refusals_recovered": self.refusals_recovered, "replies_recovered": self.replies_recovered,
                "voids_recovered": self.voids_recovered, "issues": [i.to_dict() for i in self.issues]}


def rebuild(root: Path, *, now: dt.datetime) -> RebuildReport:
    """Move the ledger aside (ledger.broken-<time>.sqlite, never deleted) and register every archived original
    again into a new one; containers are opened again, so their spreadsheets keep their own names.

    Received times: what the old ledger still says; else a mail's date; else when the original was archived (its
    mtime: it was archived when first registered). Invalid files count as returned: their 退回件 were written when
    they first came. Replies by mail: what the old ledger says of each is written first (a reply still owed stays
    owed), then every file is registered as answered already, in the transaction that registers it — so a rebuild
    stopped anywhere never owes a reply it did not owe before. Run it while no other tuanjian uses the workspace
    (api.ledger_rebuild takes the workspace's sending lock)."""
    ws = Workspace.load(root)
    led = ws.root / LEDGER_DIR
    path = led / LEDGER_FILE
    broken = _move_aside(path, now) if path.exists() else None
    old = _salvage(broken) if broken else Salvage(files_complete=True, mails_complete=True, replies_complete=True)
    report = RebuildReport(broken)
    found, other = originals(led / ARCHIVE_DIR)
    report.issues += [Issue.make("rebuild-skipped", file=f"{ARCHIVE_SHOWN}/{p.name}", detail="不是原件存档的文件")
                      for p in other]
    sound = []
    for o in found:
        if sha256_file(o.path) == o.sha256:
            sound.append(o)
        else:
            report.issues.append(Issue.make("rebuild-skipped", file=o.place, detail="内容与文件名中的 sha256 不符"))
    with Ledger(ws.root) as ledger:
        ledger.restore_replies(old.replies, old.reminders)
        ledger.note_voids(old.voids)  # by sha256: they hold for the files as registered again
        ledger.answered = True
        ledger.mark_returned(_register(ledger, ws, sound, old, now, report))
        for key, folder, arrived, sender, subject, files, taken_at in old.mails:
            ledger.take_mail(key, folder, dt.datetime.fromisoformat(arrived), sender, subject, files,
                             dt.datetime.fromisoformat(taken_at))
        for key, value in old.meta.items():
            ledger.put(key, value)
        from .merge import stored_notes  # what each file said of those before it, worked out again in their order

        stored_notes(ws, ledger, ledger.ids_after(0))
        ledger.note_notes_through(ledger.last_id())
    report.mails_recovered = len(old.mails)
    report.replies_recovered = len(old.replies)
    report.voids_recovered = len(old.voids)
    _say_what_is_lost(report, broken, old)
    return report


def _register(ledger: Ledger, ws, sound: list[Original], old: Salvage, now: dt.datetime,
              report: RebuildReport) -> list[int]:
    """Every sound original into the ledger; the ids of the invalid ones (to count as returned)."""
    from .merge import ingest_many

    invalid: list[int] = []
    refusals = [row for row in old.files.values() if _refusal(row["sha256"], row["origin"])]
    if old.files_complete and refusals:  # refusals recorded without bytes, as they were
        rows = [dict({k: row[k] for k in _ROW_KEYS}, received_at=dt.datetime.fromisoformat(row["received_at"]),
                     received_basis=row.get("received_basis") or "first-seen", now=now) for row in refusals]
        invalid += [file_id for file_id, new in ledger.add_many(rows) if new]
        report.refusals_recovered = len(refusals)
    ingested = []
    for box in (o for o in sound if o.ext in CONTAINERS):  # one at a time: their members are held in memory
        subs = [_member(sub, box, old) for sub in _expand(box)]
        if old.files_complete:
            subs = [s for s in subs if s.refusal is None]  # restored above, under their own keys
        ingested += ingest_many(ledger, ws, subs, now=now)
        report.containers += 1
    rest = [o for o in sound if o.ext not in CONTAINERS and ledger.known(o.sha256) is None]
    plain = sorted((_plain(o, old) for o in rest), key=lambda s: s.received_at or dt.datetime.min)  # _plain sets it
    ingested += ingest_many(ledger, ws, plain, now=now)
    new = [i for i in ingested if i.outcome == "new"]
    invalid += [i.file_id for i in new if not i.valid]
    report.registered = len(new) + report.refusals_recovered
    report.valid = sum(1 for i in new if i.valid)
    report.invalid = len(new) - report.valid + report.refusals_recovered
    report.names_recovered = sum(1 for i in new if i.sha256 in old.files)
    unnamed = [o for o in rest if o.sha256 not in old.files]
    gone = [row for sha, row in old.files.items() if not _refusal(sha, row["origin"]) and ledger.known(sha) is None]
    report.issues += [Issue.make("rebuild-skipped", file=f"{ARCHIVE_SHOWN}/{row['sha256']}{row['ext']}",
                                 detail=f"原登记簿中的“{row['name']}”在原件存档中找不到或已损坏") for row in gone]
    if unnamed:
        report.issues.append(Issue.make("rebuild-names", file=ARCHIVE_SHOWN, count=len(unnamed),
                                        example=unnamed[0].shown))
    return invalid


_ROW_KEYS = ("sha256", "name", "origin", "ext", "size", "valid", "form_id", "version", "unit_id", "unit", "period",
             "result")


def _expand(box: Original) -> list[Submission]:
    return list(expand([box.path]))


def _member(sub: Submission, box: Original, old: Salvage) -> Submission:
    """A container's spreadsheet under a readable name; its old name, origin and time when the old ledger has them."""
    prefix = str(box.path)
    shown = f"{ARCHIVE_SHOWN}/{box.shown}"
    path = Path(shown + str(sub.path)[len(prefix):]) if str(sub.path).startswith(prefix) else sub.path
    origin = shown + sub.origin[len(prefix):] if sub.origin.startswith(prefix) else sub.origin
    received = sub.received_at or from_timestamp(_mtime(box.path))
    sub = dataclasses.replace(sub, path=path, origin=origin, received_at=received)
    was = old.files.get(hashlib.sha256(sub.data).hexdigest()) if sub.data is not None else None
    if was is not None:
        sub = dataclasses.replace(sub, origin=was["origin"], member=was["name"],
                                  received_at=dt.datetime.fromisoformat(was["received_at"]),
                                  basis=was.get("received_basis") or sub.basis)
    return sub


def _plain(o: Original, old: Salvage) -> Submission:
    """An archived spreadsheet as a submission: read from the archive, shown under its old name or a stand-in."""
    was = old.files.get(o.sha256)
    if was is not None:
        return Submission(o.path, was["origin"], member=was["name"],
                          received_at=dt.datetime.fromisoformat(was["received_at"]), basis=was.get("received_basis"))
    received = from_timestamp(_mtime(o.path))
    return Submission(o.path, f"{ARCHIVE_SHOWN}/{o.shown}", member=o.shown, received_at=received)


def _move_aside(path: Path, now: dt.datetime) -> Path:
    """ledger.sqlite -> ledger.broken-<time>.sqlite, with its -wal and -shm (a WAL left beside a new ledger could be
    replayed into it); never over an earlier one."""
    stem = f"ledger.broken-{now.strftime('%Y%m%d-%H%M%S')}"
    target, n = path.with_name(f"{stem}.sqlite"), 2
    while target.exists():
        target, n = path.with_name(f"{stem}-{n}.sqlite"), n + 1
    try:
        for suffix in ("-wal", "-shm"):  # first: a crash in between must not leave the old WAL beside a new ledger
            side = path.with_name(path.name + suffix)
            if side.exists():
                os.replace(side, target.with_name(target.name + suffix))
        os.replace(path, target)
    except OSError as exc:
        raise TuanjianError(_os_issue(exc, path)) from None
    return target


def _salvage(path: Path) -> Salvage:
    """Read what still reads; each table up to the first damaged page."""
    out = Salvage()
    try:
        db = connect_readonly(path)
    except sqlite3.Error:
        return out
    try:
        try:  # what each received time rests on, in a ledger new enough to say
            based = any(r[1] == "received_basis" for r in db.execute("PRAGMA table_info(files)"))
        except sqlite3.Error:
            based = False
        salvaged = _SALVAGED + (("received_basis",) if based else ())
        files, out.files_complete = _rows(
            db, f"SELECT sha256, {', '.join(salvaged)} FROM files", lambda r: (r[0], dict(zip(("sha256",) + salvaged, r))))
        out.files = dict(files)
        out.mails, out.mails_complete = _rows(
            db, "SELECT key, folder, arrived, sender, subject, files, taken_at FROM mails", lambda r: r)
        meta, _ = _rows(db, "SELECT key, value FROM meta WHERE key != 'master'", lambda r: r)
        out.meta = dict(meta)
        tables, _ = _rows(db, "SELECT name FROM sqlite_master WHERE type = 'table'", lambda r: r[0])
        if tables and "replies" not in tables:  # a ledger from before replies: its files count as answered anyway
            out.replies_complete = True
        else:
            out.replies, out.replies_complete = _rows(db, f"SELECT {', '.join(REPLY_COLUMNS)} FROM replies", tuple)
            out.reminders, _ = _rows(db, f"SELECT {', '.join(REMINDER_COLUMNS)} FROM reminders", tuple)
        out.voids, _ = _rows(db, f"SELECT {', '.join(VOID_COLUMNS)} FROM voids ORDER BY id", tuple)  # none before v7
    finally:
        db.close()
    return out


_SALVAGED = ("name", "origin", "ext", "size", "received_at", "valid", "form_id", "version", "unit_id", "unit",
             "period", "result")


def _rows(db: sqlite3.Connection, sql: str, make) -> tuple[list, bool]:
    out = []
    try:
        for row in db.execute(sql):
            out.append(make(row))
    except sqlite3.Error:  # damaged further on, or a table an older schema lacks
        return out, False
    return out, True


def _say_what_is_lost(report: RebuildReport, broken: Path | None, old: Salvage) -> None:
    if broken is None:
        return
    if not old.mails_complete:
        detail = f"只读回了 {len(old.mails)} 封" if old.mails else "原登记簿已无法读出"
        report.issues.append(Issue.make("rebuild-mails", file=LEDGER_SHOWN, detail=detail))
    if not old.files_complete:
        report.issues.append(Issue.make("rebuild-refusals", file=LEDGER_SHOWN, detail="原登记簿已无法完整读出"))
    if not old.replies_complete:
        detail = f"只读回了 {len(old.replies)} 个文件的记录" if old.replies else "原登记簿已无法读出"
        report.issues.append(Issue.make("rebuild-replies", file=LEDGER_SHOWN, detail=detail))
    report.issues.append(Issue.make("rebuild-sightings", file=LEDGER_SHOWN))
