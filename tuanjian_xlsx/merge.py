"""`tuanjian merge`: inbox -> ledger -> master. Ingest is idempotent; invalid files get their 退回件 and never stop
the run; the master is replaced atomically with the previous one kept beside it."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import itertools
import json
import os
import re
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING
from collections.abc import Callable, Iterable, Iterator

from .clock import now as clock_now
from .issues import Issue, TuanjianError
from .filenames import display_name
from .inbox import CONTAINERS, SPREADSHEET_SUFFIXES, Other, Refused, unreadable, walk_texts
from .intake import Submission, expand_one, load, mail_budget_reset, other_kind, release, sniffed
from .ledger import LEDGER_DIR, LEDGER_FILE, RECEIVED_BASES, FileRow, Ledger, archive_file, refusal_key
from .periods import Period, parse_period

if TYPE_CHECKING:  # (reading and checking are imported when there is something to read: a merge that finds
    # nothing new starts quicker)
    from concurrent.futures import Future

    from .plan import Workspace
    from .returns import ReturnPiece
    from .status import StatusItem
    from .validate import FileResult

MASTER_NAME = "汇总表.xlsx"


@dataclass(slots=True)
class Ingested:
    shown: str  # the submission as people see it (`path`): a text, lighter than a Path for 100,000 of them
    outcome: str  # new | duplicate
    file_id: int
    valid: bool = True
    result: FileResult | None = None  # kept for an invalid file only: its 退回件 is made from it
    sha256: str = ""
    arrival: tuple[dt.datetime, str] | None = None  # a duplicate's own received time and its basis
    moved: bool = False  # a duplicate that arrived earlier than the copy recorded: the ledger now says so
    said: list[Issue] | None = None  # what a new valid file's check found that staff must hear of at once (LOUD)

    @property
    def path(self) -> Path:
        return Path(self.shown)


@dataclass(slots=True)
class Seen:
    """A submission an earlier run read from a file unchanged since (same path, size, modification time to the
    nanosecond and inode): known by the sha256 recorded then, not read again."""

    shown: str  # as Submission.path shows it, with the member's own name (Ingested.shown)
    origin: str
    name: str
    sha256: str
    file_id: int

    @property
    def path(self) -> Path:
        return Path(self.shown)


@dataclass
class MergeResult:
    master: Path | None
    as_of: dt.date
    ingested: list[Ingested] = field(default_factory=list)
    returns: list[ReturnPiece] = field(default_factory=list)
    items: list[StatusItem] = field(default_factory=list)
    superseded: int = 0
    notes: list[Issue] = field(default_factory=list)

    @property
    def received(self) -> int:
        return len(self.ingested)

    @property
    def valid(self) -> int:
        return sum(1 for i in self.ingested if i.outcome == "new" and i.valid)

    @property
    def invalid(self) -> list[Ingested]:
        return [i for i in self.ingested if i.outcome == "new" and not i.valid]

    @property
    def duplicates(self) -> int:
        return sum(1 for i in self.ingested if i.outcome == "duplicate")

    @property
    def missing(self) -> list[StatusItem]:
        return [i for i in self.items if i.status == "missing"]

    @property
    def late(self) -> list[StatusItem]:
        return [i for i in self.items if i.status == "late"]

    @property
    def new(self) -> int:
        return sum(1 for i in self.ingested if i.outcome == "new")

    @property
    def corrected(self) -> int:
        """Files whose received time moved earlier: a copy that arrived sooner was seen in this run."""
        return sum(1 for i in self.ingested if i.moved)

    def summary(self) -> str:
        units = len({i.unit for i in self.missing})
        if not self.new:
            seen = f"（已登记过的 {self.duplicates} 份未重复计数）" if self.duplicates else ""
            moved = f" · 收到时间更正 {self.corrected} 份" if self.corrected else ""
            return f"没有新文件{seen}{moved} · 未报 {units} 家"
        moved = f" · 收到时间更正 {self.corrected}" if self.corrected else ""
        return (f"收到 {self.received} 份 · 有效 {self.valid} · 退回 {len(self.invalid)} · 重复 {self.duplicates} · "
                f"被替换 {self.superseded}{moved} · 未报 {units} 家")

    def to_dict(self) -> dict:
        return {
            "master": str(self.master) if self.master else None,
            "received": self.received, "valid": self.valid, "invalid": len(self.invalid),
            "duplicates": self.duplicates, "superseded": self.superseded,
            "missing": [{"unit": i.unit, "form_id": i.form_id, "period": i.period.code} for i in self.missing],
            "late": [{"unit": i.unit, "form_id": i.form_id, "period": i.period.code, "due": i.due.isoformat(),
                      "received": i.received.isoformat() if i.received else None} for i in self.late],
            "new": self.new, "received_time_corrected": self.corrected,
            "notes": [n.to_dict() for n in self.notes],
        }


BATCH = 256  # files per ledger transaction: a killed run loses at most a batch (and the few files in the
# workers' hands), which the next run redoes


def ingest_many(ledger: Ledger, ws: Workspace | None, items: Iterable, *, now: dt.datetime,
                received: dict[Path, dt.datetime] | None = None, parse_counter: list | None = None,
                progress: Callable[[int, int, Ingested], None] | None = None,
                received_basis: str = "stated", received_all: dt.datetime | None = None,
                batch_done: Callable[[list[Ingested]], None] | None = None,
                total: Callable[[], int] | None = None,
                answered: Callable[[int, Ingested], None] | None = None, stated_new_only: bool = False) -> list[Ingested]:
    """Submissions into the ledger: each read and hashed once; content already known is a duplicate and is not
    parsed (its original archived again if the archive lost it); new content is validated and archived in
    crash-isolated worker processes — each file read only as a worker has room for it, so reading overlaps with
    checking and memory stays flat — and recorded BATCH at a time in one transaction, `batch_done` getting what
    each batch brought (merge gathers the invalid ones for their 退回件). A file that cannot be read, or kills its
    reader, is recorded as refused: never retried, never a stop. A `Seen` item is a duplicate without reading; it counts
    as arriving again only when a received time is stated for it: `received` (per path) or `received_all`.
    `items` may be a generator, drawn on as the workers have room; `total` then says how many there are so far
    (for `progress`). The answers are in the order of `items`; `answered(k, answer)` hears of each as it comes
    (k: its place in `items`; a copy of content another file of this run brought has file id -1 until the end).
    `stated_new_only`: a received time stated for the whole inbox (no file named) is for what arrives new and
    brings no time of its own (a mail's date): files already recorded, and mailed ones, keep the time they have."""
    expected: int | Callable[[], int]  # how many jobs there may be (so far: a generator's grows), for the workers
    if isinstance(items, list):
        listed = items
        total = total or (lambda: len(listed))
        expected = sum(1 for i in listed if not isinstance(i, Seen))
    else:
        expected = total or (lambda: PARALLEL_HINT)
    out: list[tuple[int, Ingested]] = []
    # sha256 -> file id: what the ledger held when the run began (one query, not one per file, made when the first
    # submission to read comes), then this run's. A file another run records meanwhile is checked here too, and the
    # ledger then counts it as that run's.
    ids: dict[str, int] = {}
    loaded = False
    taken: set[str] = set()  # the shas this run has handed to a worker or refused
    origins: dict[int, str] = {}  # the duplicates stated or known to have arrived at a time of their own: origin
    pending: list[tuple[int, Submission, str, dict, FileResult | None, tuple[dt.datetime, str]]] = []

    def put(k: int, item: Ingested) -> None:
        out.append((k, item))
        if answered is not None:
            answered(k, item)

    def stated(path: Path) -> dt.datetime | None:
        return received[path] if received and path in received else received_all

    def when(sub: Submission, known: bool = False) -> tuple[dt.datetime, str]:
        """The submission's received time and what it rests on (ledger.RECEIVED_BASES)."""
        said = None if stated_new_only and (known or sub.received_at is not None) else stated(sub.path)
        if said is not None:
            return said, received_basis
        if sub.received_at is not None:
            return sub.received_at, sub.basis or "first-seen"
        return now, "first-seen"

    def record() -> None:
        """What is checked so far into the ledger, in one transaction."""
        rows = [dict(r, origin=sub.origin, received_at=arrival[0], received_basis=arrival[1], now=now)
                for _, sub, _, r, _, arrival in pending]
        fresh = []
        for (k, sub, sha, r, result, arrival), (file_id, new) in zip(pending, ledger.add_many(rows) if rows else []):
            ids[sha] = file_id
            taken.discard(sha)  # (known by `ids` from now on: `taken` holds only what is in the workers' hands)
            # not new: another run recorded the same content first; like any duplicate it keeps its own arrival
            item = Ingested(_shown(sub.path, sub.name), "new" if new else "duplicate", file_id, r["valid"],
                            result if new else None, sha, arrival=None if new else arrival,
                            said=_loud(r) if new and r["valid"] else None)
            if not new:
                origins[k] = sub.origin
            put(k, item)
            fresh.append(item)
        pending.clear()
        if batch_done is not None and fresh:
            batch_done(fresh)
        if progress and out:
            progress(len(out), max(total() if total else 0, len(out)), out[-1][1])

    def to_check() -> Iterator[tuple]:
        """The jobs for the workers, one file at a time; duplicates and refusals are settled here."""
        nonlocal loaded
        for k, sub in enumerate(items):
            if isinstance(sub, Seen):
                said = None if stated_new_only else stated(sub.path) if received else received_all
                put(k, Ingested(sub.shown, "duplicate", sub.file_id, sha256=sub.sha256,
                                arrival=(said, received_basis) if said else None))
                if said:
                    origins[k] = sub.origin
                continue
            if not isinstance(sub, Submission):
                sub = Submission(Path(sub), str(sub))
            if ws is None:
                raise ValueError("submissions to check need the workspace")
            if not loaded:
                ids.update(ledger.file_ids())
                loaded = True
            sub, data = _read(sub)
            if sub.received_at is not None and sub.received_at > now + FUTURE_SLACK:  # a date no arrival can have
                sub = replace(sub, received_at=None, basis=None, notes=(*sub.notes, Issue.make(
                    "mail-date-future", file=sub.name, date=f"{sub.received_at:%Y-%m-%d %H:%M}")))
            if sub.refusal is not None:  # nothing to read: recorded under a key made from where it was
                sha = refusal_key(sub.origin)
            else:
                assert data is not None  # _read gives the bytes whenever it gives no refusal
                sha = hashlib.sha256(data).hexdigest()
            known = ids.get(sha)
            if known is None and sha not in taken:
                taken.add(sha)
                arrival = when(sub)
                if sub.refusal is not None:
                    r = FileResult(path=sub.path.with_name(sub.name), file=sub.name, issues=[sub.refusal])
                    pending.append((k, sub, sha, row(r, sha, sub.name, ext_of(sub.name), 0), r, arrival))
                    if len(pending) >= BATCH:
                        record()
                else:
                    assert data is not None  # _read gives the bytes whenever it gives no refusal
                    if parse_counter is not None:
                        parse_counter.append(sub.name)
                    yield sub, sha, data, arrival[0].date(), k, arrival
            else:
                if data is not None:
                    ledger.rearchive(sha, data)
                put(k, Ingested(_shown(sub.path, sub.name), "duplicate", known or -1, sha256=sha,
                                arrival=when(sub, known=known is not None)))
                origins[k] = sub.origin

    if ws is not None:
        from .checking import ext_of, ingest_jobs, row
        from .validate import FileResult
    try:
        for (sub, sha, _, _, k, arrival), (r, result) in (ingest_jobs(ws, to_check(), str(ledger.archive_dir),
                                                                      expected) if ws is not None else to_check()):
            pending.append((k, sub, sha, r, result, arrival))
            if len(pending) >= BATCH:
                record()
    finally:
        release()  # (the last zip read, kept open for its members)
    record()
    out.sort(key=lambda ki: ki[0])
    for k, item in out:  # a second copy within this run: count it once, as a sighting of the first
        if item.file_id == -1:
            item.file_id = ids[item.sha256]
        if item.outcome == "duplicate" and item.arrival is not None:  # the earliest arrival of the same content counts
            item.moved = ledger.seen_again(item.file_id, item.path.name, origins[k], now, *item.arrival)
            if not item.moved and item.arrival[1] == received_basis == "stated" \
                    and not ledger.void_reasons([item.file_id]):  # staff's time, not taken: said (a void one: moot)
                known = ledger.received_of(item.file_id)
                if known is not None and known[0] < item.arrival[0]:
                    item.said = [Issue.make("stated-later-kept", file=item.path.name, known=f"{known[0]:%Y-%m-%d %H:%M}",
                                            stated=f"{item.arrival[0]:%Y-%m-%d %H:%M}",
                                            basis=RECEIVED_BASES.get(known[1], known[1]))]
    return [item for _, item in out]


# a mail dated later than now (a sender's clock years ahead, or a Date set on purpose) cannot have arrived then:
# it counts from when it was found (a unit's clock minutes fast is let be)
FUTURE_SLACK = dt.timedelta(hours=1)
PARALLEL_HINT = 1 << 20  # a generator of unknown length: as many workers as there are cores
# warnings about a valid file that merge says aloud, not only in the master's 问题清单: a file sent from another
# unit's address is counted for the unit it names — the wrong unit's copy, perhaps
LOUD = ("sender-mismatch", "mail-archive-skipped", "forward-earlier")


OTHERS_KEY = "others-noted"


def others_noted(ledger: Ledger, others: list[Other]) -> list[Issue]:
    """One note naming the files no earlier run has named that lie in the inbox and are no spreadsheet (a unit that
    sent only a Word copy or a scan must be asked again; a photo beside a report needs nothing): said once each,
    never received, counted or returned."""
    if not others:
        return []
    before = set(json.loads(ledger.get(OTHERS_KEY) or "[]"))
    new = [o for o in others if _noted_as(o.path) not in before]
    if new:
        ledger.put(OTHERS_KEY, json.dumps(sorted(before | {_noted_as(o.path) for o in others}), ensure_ascii=False))
    if not new:
        return []
    names = [f"{display_name(o.path.name)}（{o.kind}）" for o in new[:10]] + (["……"] if len(new) > 10 else [])
    return [Issue.make("not-a-report-file", count=len(new), names=names)]


def _noted_as(path: Path) -> str:
    """How a noted file is remembered: by its absolute path (a watch names the workspace one way, staff another)."""
    return os.path.abspath(path)


def _loud(row: dict) -> list[Issue] | None:
    """The LOUD warnings of a new valid file's ledger row (looked for in its JSON before it is parsed)."""
    if not any(f'"{code}"' in row["result"] for code in LOUD):
        return None
    return [Issue(**i) for i in json.loads(row["result"])["issues"] if i["code"] in LOUD] or None


def _shown(path: Path, name: str) -> str:
    """How a submission is shown: its path, with the member's own name for a zip member or attachment."""
    return str(path) if path.name == name else str(path.with_name(name))


def _read(sub: Submission) -> tuple[Submission, bytes | None]:
    """The submission's bytes, or the submission turned into a refusal saying why they cannot be read."""
    if sub.refusal is not None:
        return sub, None
    data, problem = load(sub)
    if problem is not None:
        return replace(sub, refusal=problem), None
    assert data is not None  # load gives the bytes whenever it gives no problem
    from .read import MAX_FILE_BYTES

    if len(data) > MAX_FILE_BYTES:  # never hold a huge file longer than needed
        return replace(sub, refusal=Issue.make("file-too-large", file=sub.name, size=len(data) // 1048576)), None
    return sub, data


def write_master(path: Path, data: bytes) -> tuple[Path, list[Issue]]:
    """Replace the master atomically, keeping the previous one as 汇总表.bak.xlsx; if it is locked (open in
    Excel on Windows), write beside it under a new name instead and say so."""
    from .xlsxio import atomic_write

    notes: list[Issue] = []
    if path.exists():
        try:
            atomic_write(path.with_name(path.stem + ".bak" + path.suffix), path.read_bytes())
        except (OSError, TuanjianError):
            notes.append(Issue.make("backup-failed", file=path.name, name=f"{path.stem}.bak{path.suffix}"))
    try:
        return atomic_write(path, data), notes
    except TuanjianError:  # if the other name cannot be written either (a full disk), that error is raised
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        other = path.with_name(f"{path.stem}_{stamp}{path.suffix}")
        notes.append(Issue.make("master-locked", file=path.name, name=path.name, other=other.name))
        return atomic_write(other, data), notes


def merge(root: Path, paths: list[Path] | None = None, *, out: Path | None = None, as_of: dt.date | None = None,
          now: dt.datetime | None = None, progress: Callable[[int, int, Ingested], None] | None = None,
          received: dict[Path, dt.datetime] | None = None, parse_counter: list | None = None,
          received_at: dt.datetime | None = None, received_basis: str = "stated",
          fetched: list[Ingested] | None = None) -> MergeResult:
    """Ingest every file under `paths` (default: the inbox), write 退回件 for new invalid files, render the master.

    `received_at`: the arrival staff state for every file of this run (saved late from a mail, say); it replaces
    what the ledger knew for them (shown as 人工指定). `received`: the same, per file, resting on
    `received_basis` (see ledger.RECEIVED_BASES). `fetched`: what the mailbox brought just before, in the same
    command (merge --fetch, watch): counted, returned and noted as this run's own.

    The workspace's configuration is loaded only when something needs it: a run that finds nothing new, with the
    configuration files as they were when the master was last made, rests on what the ledger stored then (see
    `_known_config`) and is done in a fraction of a second."""
    root = Path(root)
    now = now or clock_now()
    as_of = as_of or now.date()
    mail_budget_reset()
    # no ledger yet: load first, so that a folder that is no workspace is said to be one before anything is made
    ws: Workspace | None = None if (root / LEDGER_DIR / LEDGER_FILE).is_file() else _load(root)
    result = MergeResult(master=None, as_of=as_of)
    with Ledger(root) as ledger, _one_at_a_time(root):  # (the ledger first: it says what is wrong with a folder)
        known = _known_config(ledger, root) if ws is None else None
        if known is None:
            known, ws = _note_config(ledger, ws or _load(root))
        sources = [Path(p) for p in paths] if paths else [Path(_located(known["inbox"], root))]
        missing = [p for p in sources if not p.exists()]
        if missing:
            raise TuanjianError([Issue.make("file-missing", file=p.name, detail=str(p)) for p in missing])
        target = Path(out) if out else Path(_located(known["master"], root))
        remembering = _Remembering(ledger)
        gathering = _Gathering(ledger, sources, remembering.found, counted=progress is not None)
        todo, fresh = _first_fresh(iter(gathering))
        fetched = list(fetched or [])
        if ws is None and (received or received_at is not None or fresh or ledger.unreturned()
                           or any(i.outcome == "new" for i in fetched)):
            # something to read, check or return: the configuration as it is now
            known, ws = _note_config(ledger, _load(root))
        with contextlib.ExitStack() as stack:
            returns: _Returns | None = None
            if ws is None:  # every file known and unchanged: only sightings, nothing to validate or return
                result.ingested = ingest_many(ledger, None, todo, now=now, progress=progress)
            else:  # 退回件 made while the master renders (see _Returns), and any a killed run left without one
                returns = stack.enter_context(_Returns(ledger, ws))
                result.ingested = ingest_many(ledger, ws, todo, now=now, received=received, received_all=received_at,
                                              parse_counter=parse_counter, progress=progress,
                                              received_basis=received_basis, batch_done=returns.add,
                                              stated_new_only=received_at is not None and not paths,
                                              total=lambda: gathering.total, answered=remembering.answered)
                returns.start()
                remembering.finish()
            result.ingested = fetched + result.ingested
            if ws is not None:
                result.notes += [issue for item in result.ingested if item.said for issue in item.said]
            result.notes += _recorded_elsewhere(ledger, result.ingested)
            result.notes += others_noted(ledger, gathering.others)
            if gathering.deferred:
                result.notes.append(Issue.make("mail-deferred", count=gathering.deferred))
            _render(ledger, root, known, target, as_of, ws, result)
            if returns is not None:
                returns.finish()
                result.returns += returns.pieces
                result.returns += _returns(ledger, returns.ws, returns.used)
    return result


MERGE_LOCK = "merge.lock"
MERGE_WAIT = 900.0  # seconds a merge waits for another merge of the same workspace to finish


@contextlib.contextmanager
def _one_at_a_time(root: Path, wait: float = MERGE_WAIT) -> Iterator[None]:
    """One merge of a workspace at a time (a scheduled watch's and a manual one, say: two at once would each make
    退回件 for the same files): a second waits for the first to finish, then finds what it recorded; after `wait`
    seconds it gives up, saying who holds the workspace. The lock is the operating system's, so a merge that dies
    holds nothing; the file only says who took it."""
    import socket

    from .locks import holder, open_lock, try_lock, unlock, who

    fd = open_lock(Path(root) / LEDGER_DIR / MERGE_LOCK)
    try:
        deadline = time.monotonic() + wait
        while not try_lock(fd):
            if time.monotonic() > deadline:
                raise TuanjianError(Issue.make("merge-running", file=f"{LEDGER_DIR}/{MERGE_LOCK}", holder=who(holder(fd)),
                                               minutes=max(1, round(wait / 60))))
            time.sleep(0.2)
        try:
            held = json.dumps({"what": "tuanjian merge", "pid": os.getpid(), "host": socket.gethostname(),
                               "started": dt.datetime.now().isoformat(timespec="seconds")}, ensure_ascii=False)
            with contextlib.suppress(OSError):  # (what it says of us; the lock holds either way)
                os.lseek(fd, 0, os.SEEK_SET)
                os.write(fd, held.encode("utf-8"))
                os.ftruncate(fd, len(held.encode("utf-8")))
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
                unlock(fd)
    finally:
        os.close(fd)


def _render(ledger: Ledger, root: Path, known: dict, target: Path, as_of: dt.date, ws: Workspace | None,
            result: MergeResult) -> None:
    """The master and the run's notes (into `result`), unless the master on disk is already the one this ledger,
    configuration and date make."""
    new_ids = {i.file_id for i in result.ingested if i.outcome == "new"}
    result.notes += voided_again(ledger, result.ingested)
    inputs = _inputs_key(known["content"], ledger.arrivals(), as_of)
    made_from = ledger.master_made_from()
    unchanged = made_from is not None and made_from == f"{inputs} {target.resolve()} {_digest(target)}"
    items = _stored_items(ledger, inputs) if unchanged else None
    if items is not None:  # same ledger, same configuration, same date: the master on disk is already this one
        result.items, result.master = items, target
        return
    from .master import render_master

    ws = ws or _load(root)
    pending = ledger.ids_after(ledger.notes_through() or 0) if not unchanged else set()
    if pending:  # every file recorded since (fetch-mail's too), kept with the files before the master is drawn
        result.notes += stored_notes(ws, ledger, pending)
        ledger.note_notes_through(max(pending))
    before = _last_items(ledger)
    with ledger.reading():  # the master and the notes from one state of the ledger, read in passes
        data, sup, items = render_master(ws, ledger, as_of, counts_only=unchanged)
        result.items = items
        result.notes += due_changes(ws, before, items, as_of)
        result.superseded = sum(1 for by in sup.superseded_by.values() if by in new_ids)
        result.notes += arrival_notes(ws, ledger, new_ids, items) if new_ids else []
    if unchanged:
        result.master = target
        _store_items(ledger, inputs, items)
    else:
        assert data is not None  # render_master leaves the bytes out only with counts_only
        result.master, written = write_master(target, data)
        result.notes += written
        if result.master == target:  # with the written file's hash: a master damaged on disk is written again
            ledger.note_master(f"{inputs} {target.resolve()} {hashlib.sha256(data).hexdigest()}")
            _store_items(ledger, inputs, items)


# --- what the configuration was, without loading it -----------------------------------------------------------
#
# Loading a workspace (tuanjian.toml, 名单与目标.xlsx, every form spec, validated by their models) costs more than
# the rest of a merge that finds nothing new. So the ledger keeps, from the last run that loaded it: the files the
# configuration was read from (Workspace.config_files: named relative to the workspace or to the tool's own folder,
# so that the same workspace reached by another path, or the tool unpacked elsewhere, is the same), one digest of
# their bytes and of the spec folders' listings, the environment variables it read, the inbox and master paths, and
# `content`, a digest of the configuration as loaded (the models themselves: what the master is a function of). A
# run whose files hash the same (and whose variables are the same) takes `content` and the paths from there; any
# byte changed, a file gone, unreadable or added, and the workspace is loaded as always (and says what is wrong with
# it, if anything is). The digest of the bytes is taken between two loads that agree, so a file saved while merge
# was loading it is never taken for what was loaded.

CONFIG_KEY = "merge-config"
_TOOL = Path(__file__).resolve().parent.parent  # the folder holding the package (and workbook_templates/)


def _load(root: Path) -> Workspace:
    from .plan import Workspace

    return Workspace.load(root)


def _named(path: Path, root: Path) -> str:
    """A path as stored: relative to the workspace ("ws:…") or to the tool ("tool:…") where it is inside one."""
    for tag, base in (("ws", root), ("tool", _TOOL)):
        try:
            return f"{tag}:{Path(os.path.abspath(path)).relative_to(os.path.abspath(base)).as_posix()}"
        except ValueError:
            continue
    return f"abs:{os.path.abspath(path)}"


def _located(name: str, root: Path) -> str:
    tag, _, rest = name.partition(":")
    return os.path.join(root, rest) if tag == "ws" else os.path.join(_TOOL, rest) if tag == "tool" else rest


def config_print(names: list[str], root: Path) -> str | None:
    """One digest of the tool's version and, for each stored name, its bytes (a folder: its listing); None if one
    cannot be read (then nothing is taken as known)."""
    from . import __version__

    h = hashlib.sha256(__version__.encode())
    for name in names:
        h.update(b"\0" + name.encode("utf-8", "surrogateescape") + b"\0")
        path = _located(name, root)
        try:
            if os.path.isdir(path):
                h.update("\0".join(sorted(os.listdir(path))).encode("utf-8", "surrogateescape"))
            else:
                with open(path, "rb") as f:
                    h.update(f.read())
        except OSError:
            return None
    return h.hexdigest()


def _content(ws: Workspace) -> str:
    """The configuration as loaded, whatever files and paths it came from."""
    h = hashlib.sha256()
    h.update(ws.settings.model_dump_json().encode())
    h.update(ws.roster.model_dump_json().encode())
    for spec in ws.registry.specs.values():
        h.update(spec.digest.encode())  # the whole spec: a change to its [master] section re-renders
    return h.hexdigest()


def _note_config(ledger: Ledger, ws: Workspace) -> tuple[dict, Workspace]:
    """What this run loaded, for the next run to rest on (stored only when it changed), and the workspace to go on
    with: when the record changes, the files are hashed and the workspace loaded once more, and the digest is kept
    only if both loads agree (else the newer load is used and nothing is taken as known next time)."""
    from .specs import FORMS_PATH

    root = Path(ws.root)
    names = [_named(p, root) for p in ws.config_files()]
    known = {"files": names, "print": config_print(names, root) or "", "content": _content(ws),
             "inbox": _named(ws.folder("inbox"), root), "master": _named(ws.folder("master") / MASTER_NAME, root),
             "env": {FORMS_PATH: os.environ.get(FORMS_PATH, "")}}  # the variables the configuration reads
    if ledger.get(CONFIG_KEY) == json.dumps(known, ensure_ascii=False):
        return known, ws
    again = _load(root)  # a file saved meanwhile: the bytes hashed may not be the ones loaded
    if _content(again) != known["content"]:
        known = dict(known, print="", content=_content(again))
    ledger.put(CONFIG_KEY, json.dumps(known, ensure_ascii=False))
    return known, again


def _known_config(ledger: Ledger, root: Path) -> dict | None:
    """The stored configuration, if every file it was read from is as it was."""
    try:
        known = json.loads(ledger.get(CONFIG_KEY) or "null")
    except ValueError:
        return None
    if not isinstance(known, dict) or not known.get("print") or not known.get("content") \
            or not isinstance(known.get("files"), list) or not isinstance(known.get("env"), dict):
        return None
    if any(os.environ.get(name, "") != value for name, value in known["env"].items()):
        return None  # another folder of form specs named, say
    if config_print([str(n) for n in known["files"]], root) != known["print"]:
        return None
    return known


# --- a file unchanged since an earlier run is not read again ------------------------------------------------
#
# The ledger keeps, for each file merge read (by its path), the size, modification time (to the nanosecond) and
# inode it had, and the sha256 of what it held — a zip's or a mail's submissions too. A file found again with all
# three unchanged, whose contents the ledger and the archive still hold, is taken as what it was: a duplicate,
# neither read nor hashed (for 10,000 files, seconds saved on every run). The risk: a file rewritten in place with
# the same size and the same modification time to the nanosecond would be taken for its former self. Saving,
# copying or downloading a file sets a new time, so that takes a tool that copies times onto different content
# of the same size (`cp -p`, `rsync -t`) or a clock set back; a file modified less than SETTLE_SECONDS before it is
# read is not remembered (a file system whose clock ticks coarsely could give two quick writes the same time).

SETTLE_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Found:
    """A file walked and read in this run, and where its submissions stand in the run's sequence."""

    path: str
    key: tuple[int, int, int]  # size, modification time (ns) and inode when it was looked at
    mtime: float
    first: int
    count: int
    box_sha: str | None  # a zip's or a mail's own sha256 (archived as received)
    seen_at: float  # when `key` was taken (time.time())
    # a container's submissions as _remember records them: (shown, origin, name, refused for what it holds) each
    members: tuple[tuple[str, str, str, bool], ...] | None = None


class _Gathering:
    """What to ingest, drawn on as the workers have room (so that opening zips and mails overlaps with checking,
    and nothing is held for the whole inbox at once): a file unchanged since an earlier run read it as `Seen`
    entries, every other one opened into its submissions (a zip or mail archived first, as received). The inbox is
    walked as it is drawn on, so no list of it is held (nor inherited by the workers, forked when the first file
    is ready). `total` says how many submissions there are so far: with `counted`, the files are counted first by a
    walk of their own (for a progress bar: ~3 ms per 1,000 files), a container's members added as it is opened;
    without, those drawn so far. `found` hears of each file read, before its submissions are handed out (for the
    stat cache: _Remembering)."""

    def __init__(self, ledger: Ledger, sources: list[Path], found: Callable[[Found], None], *, counted: bool = False):
        self.ledger, self.found, self.sources = ledger, found, sources
        self.named = set(sources)
        self.counted = sum(1 for _ in walk_texts(sources, check_access=False)) if counted else 0
        self.drawn = self.walked = 0  # submissions handed out, files walked, so far
        self.others: list[Other] = []  # files that are no spreadsheet nor container (inbox.Other)
        self.deferred = 0  # mails left for the next run

    @property
    def total(self) -> int:
        return max(self.counted - self.walked, 0) + self.drawn

    def __iter__(self) -> Iterator[Submission | Seen]:
        ledger = self.ledger
        cache = ledger.seen_paths()
        ids = ledger.file_ids() if cache else {}
        kept = _archived(ledger) if cache else set()
        for entry in walk_texts(self.sources, check_access=False):  # (readability asked of the files to be read)
            subs = self._entry(entry, cache, ids, kept)
            self.walked += 1
            self.drawn += len(subs)
            yield from subs

    def _entry(self, text: str | Refused | Other, cache: dict, ids: dict[str, int],
               kept: set[str]) -> list[Submission | Seen]:
        if isinstance(text, Other):  # a Word copy, a photo: not read, said once (others_noted)
            self.others.append(text)
            return []
        if isinstance(text, Refused):  # (one refused by an earlier run, a Word file say, is known: nothing to load)
            (said,) = expand_one(text)
            key = refusal_key(said.origin)
            if key in ids:
                return [Seen(str(said.path), said.origin, said.name, key, ids[key])]
            return [said]
        try:
            st, seen_at = os.stat(text), time.time()
        except FileNotFoundError:  # gone since its folder was listed (moved away meanwhile): not this run's
            return []
        except OSError:
            st, seen_at = None, time.time()
        seen = _unchanged(text, cache.get(text), st, ids, kept) if st is not None else None
        if seen is not None:
            return seen
        path = Path(text)
        if path.suffix.lower() not in SPREADSHEET_SUFFIXES | CONTAINERS and (kind := other_kind(path)) is not None:
            self.others.append(Other(path, kind))  # (a Word file or a note whose extension is gone: by its bytes)
            return []
        refused = unreadable(path) if path not in self.named else None  # (walk takes a file named as it is)
        if refused is not None:
            return list(expand_one(refused))
        box_sha = None
        kind = path.suffix.lower() if path.suffix.lower() in SPREADSHEET_SUFFIXES | CONTAINERS else sniffed(path)
        container = kind in CONTAINERS  # (a mail or zip whose extension is gone too: by its bytes)
        if st is not None and container:  # the zip or mail as received is an original too
            try:
                box_sha = archive_file(self.ledger.archive_dir, path, kind or ".bin", mode=st.st_mode)
            except OSError:  # unreadable: its contents are refused with the reason, one by one
                st = None
        subs: list[Submission | Seen] = list(expand_one(path))
        left = [s for s in subs if isinstance(s, Submission) and s.deferred]
        if left:  # mails left for the next run (this run's budget for heavy mails spent): nothing of them recorded,
            self.deferred += len(left)  # and the file not remembered as read, so the next run opens it again
            return [s for s in subs if not (isinstance(s, Submission) and s.deferred)]
        if st is not None:
            members = tuple((str(s.path), s.origin, s.name, _refused_for_content(s)) for s in subs
                            if isinstance(s, Submission)) if container else None
            self.found(Found(text, (st.st_size, st.st_mtime_ns, st.st_ino), st.st_mtime, self.drawn, len(subs), box_sha,
                             seen_at, members))
        return subs


def _storable(text: str) -> bool:
    """Whether a path can be kept in the ledger: a name that is not UTF-8 on disk reaches Python with surrogate
    escapes, which SQLite cannot store."""
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def _first_fresh(items: Iterator[Submission | Seen]) -> tuple[Iterator[Submission | Seen], bool]:
    """The same items, and whether any is to be read: drawn until the first that is not a `Seen` (a run that finds
    only files it knows draws them all, and loads nothing)."""
    head: list[Submission | Seen] = []
    for item in items:
        head.append(item)
        if not isinstance(item, Seen):
            return itertools.chain(head, items), True
    return iter(head), False


def _stat(path: Path | str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


def _archived(ledger: Ledger) -> set[str]:
    """The sha256s the archive holds an original for (one listing of the folder)."""
    try:
        return {n[:64] for n in os.listdir(ledger.archive_dir) if not n.startswith(".")}
    except OSError:
        return set()


def _unchanged(text: str, entry, st: os.stat_result, ids: dict[str, int],
               kept: set[str]) -> list[Submission | Seen] | None:
    """The file's submissions as an earlier run recorded them, if the file is as it was then and the ledger and
    the archive still hold what it brought; else None (read it)."""
    if entry is None or tuple(entry[:3]) != (st.st_size, st.st_mtime_ns, st.st_ino):
        return None
    sha, members = entry[3], entry[4]
    if sha not in kept or (members is None and sha not in ids):  # the file itself, recorded and archived
        return None
    if members is None:  # a spreadsheet, shown as intake.expand_one shows it
        shown_text = display_name(text)  # (the same as Path(text).name and str(Path(text)) would give, quicker)
        shown_text = shown_text if shown_text == text else str(Path(shown_text))
        return [Seen(shown_text, shown_text, os.path.basename(shown_text), sha, ids[sha])]
    out: list[Submission | Seen] = []
    for shown_text, origin, name, member_sha, refused in json.loads(members):
        if member_sha not in ids or not (refused or member_sha in kept):
            return None
        out.append(Seen(_shown(Path(shown_text), name), origin, name, member_sha, ids[member_sha]))
    return out


class _Remembering:
    """The stat-cache rows for the files read in this run, written as each file's submissions are all settled:
    only files whose every submission is now in the ledger — read, or refused for what it holds; never one that
    could not be read, which may be readable next time. Nor one modified less than SETTLE_SECONDS before it was
    looked at, or changed since (looked at again now, after its bytes were read): the bytes recorded are then surely
    the ones its size, time and inode stand for. Only files still in the workers' hands are held here."""

    def __init__(self, ledger: Ledger):
        self.ledger = ledger
        self.open: dict[int, tuple[Found, list[Ingested | None]]] = {}  # first index -> the file, its answers so far
        self.owner: dict[int, int] = {}  # index of a submission of an open file -> that file's first index
        self.left: dict[int, int] = {}  # first index -> answers still to come
        self.later: list[tuple[Found, list[Ingested | None]]] = []  # holding a copy whose file id comes at the end
        self.rows: list[tuple] = []

    def found(self, f: Found) -> None:
        if not f.count:  # a zip with no spreadsheet in it: nothing to wait for
            self._settled(f, [])
            return
        self.open[f.first] = (f, [None] * f.count)
        self.left[f.first] = f.count
        for k in range(f.first, f.first + f.count):
            self.owner[k] = f.first

    def answered(self, k: int, item: Ingested) -> None:
        first = self.owner.pop(k, None)
        if first is None:
            return
        f, got = self.open[first]
        got[k - first] = item
        self.left[first] -= 1
        if self.left[first]:
            return
        del self.open[first], self.left[first]
        # a copy whose file id comes at the end, or one arriving at a time of its own (ingest_many records that
        # sighting at the end): remembered only then, so a run killed before still reads it again next time
        if any(i is not None and (i.file_id == -1 or i.outcome == "duplicate" and i.arrival is not None) for i in got):
            self.later.append((f, got))
        else:
            self._settled(f, got)

    def finish(self) -> None:
        for f, got in self.later:
            self._settled(f, got)
        self.later = []
        self._flush()

    def _settled(self, f: Found, got: list[Ingested | None]) -> None:
        row = _remembered(f, got)
        if row is not None:
            self.rows.append(row)
            if len(self.rows) >= BATCH:
                self._flush()

    def _flush(self) -> None:
        if self.rows:
            self.ledger.note_seen(self.rows)
            self.rows = []


def _remembered(f: Found, got: list) -> tuple | None:
    """The stat-cache row of one file read in this run, its submissions' answers in `got` (see _Remembering)."""
    if f.mtime > f.seen_at - SETTLE_SECONDS:  # file ages, not business time: the clock is right here
        return None
    if not _storable(f.path):  # a name not UTF-8 on disk: read again each time
        return None
    again = _stat(f.path)
    if again is None or (again.st_size, again.st_mtime_ns, again.st_ino) != f.key:
        return None
    if f.members is None:  # a spreadsheet: its one submission, read (a failed read is kept under its refusal key)
        ok = len(got) == 1 and got[0].file_id > 0 and got[0].sha256 != refusal_key(str(Path(display_name(f.path))))
        return (f.path, *f.key, got[0].sha256, None) if ok else None
    if len(f.members) != len(got) or not all(
            i.file_id > 0 and (refused or i.sha256 != refusal_key(origin))
            for (_, origin, _, refused), i in zip(f.members, got)):
        return None
    members = [[shown, origin, name, i.sha256, refused] for (shown, origin, name, refused), i in zip(f.members, got)]
    return (f.path, *f.key, f.box_sha, json.dumps(members, ensure_ascii=False))


def _refused_for_content(sub: Submission) -> bool:
    """Refused for what the container holds (an unsafe path, a zip bomb, a password…), not for a failed read."""
    return sub.refusal is not None and sub.refusal.code != "path-refused"


def _stored_items(ledger: Ledger, inputs: str) -> list[StatusItem] | None:
    """The statuses worked out with the master last made from these very inputs (they are a function of them)."""
    from .status import StatusItem

    text = ledger.get("master-items")
    if not text or not text.startswith(inputs + "\n"):
        return None
    out = []
    periods: dict[str, Period | None] = {}
    for d in json.loads(text[len(inputs) + 1:]):
        period = periods[d["period"]] if d["period"] in periods else periods.setdefault(d["period"],
                                                                                          parse_period(d["period"]))
        if period is None:
            return None
        out.append(StatusItem(d["unit_id"], d["unit"], d["unit_type"], d["form_id"], period,
                              dt.date.fromisoformat(d["due"]), d["status"],
                              dt.datetime.fromisoformat(d["received"]) if d["received"] else None))
    return out


def _last_items(ledger: Ledger) -> list[StatusItem] | None:
    """The statuses worked out with the master last made, whatever it was made from (None: none kept)."""
    text = ledger.get("master-items")
    return _stored_items(ledger, text.split("\n", 1)[0]) if text else None


DUE_CHANGES_NAMED = 10


def due_changes(ws: Workspace, before: list[StatusItem] | None, items: list[StatusItem],
                as_of: dt.date) -> list[Issue]:
    """The periods already due whose due date moved since the master was last made (a unit's type, a deadline or
    a rule changed in 名单与目标.xlsx or tuanjian.toml): their 按时/逾期 are judged again by the new date, silently
    unless said — staff who meant "from now on" must hear that the past moved too. The first few are named."""
    if not before:
        return []
    old = {(i.unit_id, i.form_id, i.period.code): i for i in before}
    names = {s.form_id: s.display_name for s in ws.registry.latest()}
    shown = {"on_time": "按时", "late": "逾期", "missing": "未报", "not_due": "未到期"}
    moved: list[str] = []
    flipped = 0
    for i in items:
        was = old.get((i.unit_id, i.form_id, i.period.code))
        if was is None or was.due == i.due or min(was.due, i.due) >= as_of:
            continue
        change = f"{i.unit} {i.period.label} {names.get(i.form_id, i.form_id)} 截止日 {was.due.isoformat()} → " \
                 f"{i.due.isoformat()}"
        if was.status != i.status and {was.status, i.status} <= {"on_time", "late"}:
            change += f"（{shown[was.status]} → {shown[i.status]}）"
            flipped += was.status == "on_time"
            moved.insert(flipped - 1 if was.status == "on_time" else len(moved), change)  # (those first)
            continue
        moved.append(change)
    if not moved:
        return []
    more = len(moved) - DUE_CHANGES_NAMED
    return [Issue.make("due-changed", count=len(moved), flipped=f"，其中 {flipped} 项由按时变为逾期" if flipped else "",
                       changes="；".join(moved[:DUE_CHANGES_NAMED]) + (f"；另有 {more} 项" if more > 0 else ""))]


def _store_items(ledger: Ledger, inputs: str, items: list[StatusItem]) -> None:
    rows = [{**i.to_dict(), "unit_id": i.unit_id, "unit_type": i.unit_type} for i in items]
    ledger.put("master-items", inputs + "\n" + json.dumps(rows, ensure_ascii=False))


LONG_PAST_DAYS = 30  # a form received this long after its due date is named, in case it is the wrong copy
LONG_PAST_NAMED = 20  # named one by one in a run; any more are counted in one note (a backlog of years: thousands)


def arrival_notes(ws: Workspace, ledger: Ledger, new_ids: set[int], items: list[StatusItem]) -> list[Issue]:
    """What staff should check about this run's new files: plain files first registered after their due date
    (their real arrival may have been earlier), forms for a period long past, and visits whose organisation is
    named almost like one already received, or exactly so with another 走访日期 (each counted as a second visit).
    The new files are read from the ledger a page at a time, and every file of the forms with `close_names` or a
    `supersede_by` of more than one field a group (form, unit, period) at a time."""
    due: dict[tuple[str | None, ...], dt.date] = {(i.unit_id, i.form_id, i.period.code): i.due for i in items}
    names: dict[str | None, str] = {s.form_id: s.display_name for s in ws.registry.latest()}
    late_plain, first_late = 0, list[str]()  # plain files registered after their due date; the first ten's names
    late_mail, first_mail = 0, list[str]()  # the same for files of mails that carry no date
    long_past: list[Issue] = []
    more, more_names = 0, list[str]()  # long past beyond LONG_PAST_NAMED: how many, the first ten's names
    for f in ledger.iter_files(records=False, issues=False, ids=new_ids):  # in order received
        if not f.valid or not f.unit_id:
            continue
        d = due.get((f.unit_id, f.form_id, f.period))
        if f.received_basis == "first-seen" and (d if d is not None else f.received_at.date()) < f.received_at.date():
            if ".eml#" in f.origin.lower():  # a mail without a date: no mail to go back to for an earlier time
                late_mail += 1
                if len(first_mail) < 10:
                    first_mail.append(f.name)
            else:
                late_plain += 1
                if len(first_late) < 10:
                    first_late.append(f.name)
        if d is not None and (f.received_at.date() - d).days > LONG_PAST_DAYS and len(long_past) >= LONG_PAST_NAMED:
            more += 1
            if len(more_names) < 10:
                more_names.append(f.name)
        elif d is not None and (f.received_at.date() - d).days > LONG_PAST_DAYS:
            long_past.append(Issue.make("period-long-past", file=f.name, unit=f.unit, period=f.period,
                                        form=names.get(f.form_id, f.form_id), due=d.isoformat(),
                                        days=(f.received_at.date() - d).days))
    notes = [Issue.make("registered-after-due", count=late_plain,
                        names=first_late + (["……"] if late_plain > 10 else []))] if late_plain else []
    notes += [Issue.make("undated-mail-after-due", count=late_mail,
                         names=first_mail + (["……"] if late_mail > 10 else []))] if late_mail else []
    if more:
        long_past.append(Issue.make("period-long-past-more", count=more, days=LONG_PAST_DAYS,
                                    names=more_names + (["……"] if more > 10 else [])))
    return notes + long_past


def stored_notes(ws: Workspace, ledger: Ledger, new_ids: set[int]) -> list[Issue]:
    """What this run's new files say about the files already received, kept with each new file (the master's
    问题清单 shows it on every later run, not this run's console alone): visits named almost like one received, or
    the same one on another 走访日期 (each counted as a second visit); a report that replaced one that arrived with
    it (the same mail, zip or run: the one listed later counts); one that replaced a report sent on time, itself
    arriving after the deadline (last month's form filled again for this month?). Every form's files are read a
    group (form, unit, period) at a time."""
    from .status import close_names, forms_in_use, group_key, named_again, supersession

    forms = forms_in_use(ws)
    names: dict[str | None, str] = {s.form_id: s.display_name for s in ws.registry.latest()}
    units = {u.id: u for u in ws.roster.units}
    found: list[tuple[FileRow, Issue]] = []
    for _, group in itertools.groupby(ledger.iter_files(issues=False, forms=list(forms), grouped=True), key=group_key):
        files = list(group)  # one form's files of one unit and period
        if new_ids.isdisjoint(f.id for f in files):
            continue
        found += [(f, Issue.make("visit-name-close", file=f.name, unit=f.unit, period=f.period, new=new, old=old))
                  for f, new, old in close_names(files, new_ids, forms)]
        found += [(f, Issue.make("visit-other-date", file=f.name, unit=f.unit, period=f.period, org=org, new=new,
                                 old="、".join(old))) for f, org, new, old in named_again(files, new_ids, forms)]
        sup = supersession(files, forms)
        by_id = {f.id: f for f in files}
        for old_id, new_id in sorted({**sup.partly_by, **sup.superseded_by}.items()):
            old, f = by_id[old_id], by_id[new_id]
            if new_id not in new_ids:
                continue
            form = names.get(f.form_id, f.form_id)
            if [r["values"] for r in f.records] == [r["values"] for r in old.records]:
                continue  # the same report again (saved in another format): nothing to choose between
            if f.received_at == old.received_at and (_parcel(f) is not None and _parcel(f) == _parcel(old) or
                                                     f.received_basis == old.received_basis == "first-seen"):
                found.append((f, Issue.make("replaced-together", file=f.name, name=f.name, old=old.name, unit=f.unit,
                                            period=f.period, form=form)))
                continue
            period = parse_period(f.period) if f.period else None
            due = ws.roster.due(units.get(f.unit_id or ""), f.form_id or "", period)
            # filled after the deadline too (not a correction of the on-time form, which keeps its 填表时间); for a
            # form whose records hold no 填表时间 (the tracker's is in its heading): arriving long after the deadline
            filled = _filled_on(f, forms.get(f.form_id or ""))
            if due is not None and old.received_at.date() <= due < f.received_at.date() \
                    and (any(day > due for day in filled) if filled
                         else (f.received_at.date() - due).days > LONG_PAST_DAYS):
                found.append((f, Issue.make("late-replaces-on-time", file=f.name, name=f.name, old=old.name, unit=f.unit,
                                            period=f.period, form=form, due=due.isoformat())))
    found.sort(key=lambda hit: (hit[0].received_at, hit[0].id))  # stable: a file's own stay in their order
    kept: dict[int, list[dict]] = {}
    for f, issue in found:
        kept.setdefault(f.id, []).append(issue.to_dict())
    if kept:
        ledger.add_notes(kept)
    return [issue for _, issue in found]


def _recorded_elsewhere(ledger: Ledger, ingested: list[Ingested]) -> list[Issue]:
    """Files another command recorded since the last merge (fetch-mail, a watch whose fetch broke off), merged
    now: said, so that 没有新文件 beside their 退回件 is not all staff read."""
    since = ledger.ids_after(ledger.notes_through() or 0) - {i.file_id for i in ingested}
    if not since:
        return []
    valid = sum(1 for f in ledger.iter_files(records=False, issues=False, ids=since) if f.valid)
    return [Issue.make("recorded-elsewhere", count=len(since), valid=valid, invalid=len(since) - valid)]


def _parcel(f: FileRow) -> str | None:
    """The zip or mail a file came in (its origin up to the container's name, before ! or #); None for a file on
    its own (a ! or # in a folder's name is no container)."""
    m = _PARCEL.match(f.origin) or _FETCHED.match(f.origin)
    return m.group(1) if m else None


_PARCEL = re.compile(r"(.*?\.(?:zip|eml))[!#]", re.IGNORECASE)
_FETCHED = re.compile(r"(imap://[^#]*#(?:<[^>]*>|[^#]*))#")  # a fetched mail: the folder and the mail's key


def _filled_on(f: FileRow, spec) -> list[dt.date]:
    """The days its records say they were filled in (the spec's 填表时间: date fields of the filing window)."""
    fields = [x.id for x in getattr(spec, "fields", ()) if x.type == "date" and getattr(x, "window", None) == "filing"]
    out = []
    for r in f.records:
        for fid in fields:
            value = r["values"].get(fid)
            try:
                out.append(dt.date.fromisoformat(str(value)[:10]))
            except ValueError:
                continue
    return out


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _inputs_key(config: str, arrivals: list[tuple[int, str, str, str | None]], as_of: dt.date) -> str:
    """Everything the master is a function of: the ledger's files (`Ledger.arrivals`: a file's records never
    change, its received time may, and staff may withdraw it), the configuration (`_content`), the date, the tool.
    A file that is not void adds nothing for it, so a ledger without voids keeps the key it had before them."""
    from . import __version__

    h = hashlib.sha256()
    h.update(f"{__version__}|{config}|{as_of.isoformat()}|{len(arrivals)}".encode())
    iso = dt.datetime.fromisoformat  # received times move when an earlier copy turns up
    h.update("".join(f"{file_id}|{iso(received_at).isoformat()}|{basis}{'' if void is None else '|void|' + void}\n"
                     for file_id, received_at, basis, void in arrivals).encode())
    return h.hexdigest()


def voided_again(ledger: Ledger, ingested: list[Ingested]) -> list[Issue]:
    """Content staff withdrew (tuanjian ledger void) arriving again: still void, so counted nowhere — said, so that
    a unit resending it (or a copy left in the inbox) is neither counted nor dropped without a word."""
    again = {i.file_id: i for i in ingested if i.outcome == "duplicate" and i.file_id > 0}
    if not again:
        return []
    reasons = ledger.void_reasons(again)
    return [Issue.make("void-arrived-again", file=again[i].shown, reason=reason, sha=again[i].sha256[:12])
            for i, reason in reasons.items()]


KEEP_WHOLE = 256  # invalid files of one run whose results keep their records after their 退回件 is written: what
# the day's replies attach (replies.py reads the archived original again for any other, as for an earlier run's)


RETURNS_HELD = 1024  # records of invalid results waiting for their 退回件 (≈ 8 KB each): past this many, they are
# handed over at once, and never more than one such lot is being written while the next one gathers


class _Returns:
    """退回件 of a run. The invalid results are gathered as their batches are recorded, and named in that order;
    their 退回件 are made and written by worker processes of their own after the checking (which has every core
    until then), while this process renders the master — or at once when RETURNS_HELD records are waiting, so that
    memory stays flat. A thread of its own hands them to the workers and records each as written as soon as it is
    on disk (ledger.ReturnedMarks): a run stopped or killed meanwhile leaves no 退回件 for the next to write again.
    A run stopped by an error (or Ctrl+C) begins no more of them; the next run writes those left."""

    def __init__(self, ledger: Ledger, ws: Workspace):
        from concurrent.futures import ThreadPoolExecutor

        from .ledger import ReturnedMarks

        self.ledger, self.ws = ledger, ws
        self.pieces: list[ReturnPiece] = []
        self._marks = ReturnedMarks(ledger)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="tuanjian-returns")
        self._waiting: list[Ingested] = []
        self._held = 0  # records in the results waiting
        # the names given so far, as returns.name_key makes them (some not yet on disk), and those an earlier run
        # gave to 退回件 it left unwritten (written under them at the end: _returns)
        from .returns import name_key

        self.used: set[str] = {name_key(t[4]) for t in ledger.unreturned() if t[4]}
        self._writing: list[tuple[Future, list[Ingested]]] = []
        self.kept = 0  # results kept whole once their 退回件 is written
        self.free = False  # every core may make 退回件 now (nothing else is being done)
        self.stopping = False  # the run stops: no more 退回件 begun

    def __enter__(self) -> _Returns:
        return self

    def __exit__(self, *exc) -> None:
        try:
            if exc[0] is None:
                self.finish()
        finally:
            if exc[0] is not None:  # those in the workers' hands are finished, on every core; no more begun
                self.stopping = self.free = True
            self._pool.shutdown(wait=True, cancel_futures=True)
            if exc[0] is not None:  # (a ledger not in WAL mode: what was written meanwhile, recorded now)
                with contextlib.suppress(Exception):  # (never in place of what stopped the run)
                    self.ledger.mark_returned(self._marks.taken())
            self._marks.close()

    def add(self, batch: list[Ingested]) -> None:
        bad = [i for i in batch if i.outcome == "new" and not i.valid and i.result is not None]
        self._waiting += bad
        self._held += sum(max(1, len(i.result.records)) for i in bad if i.result is not None)
        if self._held >= RETURNS_HELD:
            self.free = True  # the lot before is finished first, on every core (the checking waits meanwhile)
            try:
                self._settle(wait=True)
            finally:
                self.free = False
            self.start()
        self._settle(wait=False)

    def start(self) -> None:
        """Have the 退回件 waiting made and written (by the thread; this returns at once)."""
        from .returns import next_stem

        if not self._waiting:
            return
        bad, self._waiting, self._held = self._waiting, [], 0
        out = self.ws.folder("returns")
        bad = [i for i in bad if i.result is not None]
        jobs = [(i.result, next_stem(i.result, self.ws, out, self.used)) for i in bad if i.result is not None]
        self.ledger.name_returns([(i.file_id, stem) for i, (_, stem) in zip(bad, jobs)])  # before any is written
        self._writing.append((self._pool.submit(self._write, jobs, [i.file_id for i in bad], out), bad))

    def _write(self, jobs: list[tuple[FileResult, str]], file_ids: list[int], out: Path) -> list[ReturnPiece]:
        """In the thread: the 退回件 written, each recorded as such once on disk."""
        from .checking import written_returns

        return written_returns(self.ws, jobs, out, lambda: self.free, lambda: self.stopping,
                               lambda k, piece: self._marks.mark([file_ids[k]]))

    def finish(self) -> None:
        """Every 退回件 of the run written and recorded as such (by every core: nothing else is left to do)."""
        self.free = True
        self.start()
        self._settle(wait=True)

    def _settle(self, wait: bool) -> None:
        while self._writing and (wait or self._writing[0][0].done()):
            future, bad = self._writing.pop(0)
            self.pieces += future.result()  # a disk that failed them stops the run here, as any write would
            waiting = self._marks.taken()  # (a ledger not in WAL mode: recorded here)
            if waiting:
                self.ledger.mark_returned(waiting)
            for i in bad:
                if i.result is None:
                    continue
                if self.kept < KEEP_WHOLE:
                    self.kept += 1
                else:  # what was wrong stays (the run's report lists it); the records go: memory stays flat
                    i.result = replace(i.result, records=[], header=None, partial=True)


def _returns(ledger: Ledger, ws: Workspace, used: set[str]) -> list[ReturnPiece]:
    """退回件 for every invalid file another run left without one (killed, or still writing them): the archived
    original read again (isolated), written under the name that run gave it — in place of a copy it may have
    written, never a second one — or, if none was given, a new name (not one in `used`); each recorded as written."""
    from .checking import validate_many
    from .returns import next_stem, write_return

    todo = ledger.unreturned()
    if not todo:
        return []
    rows = {f.id: f for f in ledger.iter_files(records=False, ids={t[0] for t in todo})}
    kept = [ledger.archive_path(sha, ext).exists() for _, sha, ext, _, _ in todo]
    redone = iter(validate_many(ws, [Submission(ledger.archive_path(sha, ext), name, member=name,
                                                received_at=rows[file_id].received_at)
                                     for (file_id, sha, ext, name, _), k in zip(todo, kept) if k]))
    out, pieces = ws.folder("returns"), []
    for (file_id, _, _, name, stem), k in zip(todo, kept):
        result = _again(next(redone), name, rows[file_id]) if k else _stored(rows[file_id])
        if not result.valid:
            pieces.append(write_return(result, ws, out, stem or next_stem(result, ws, out, used)))
        ledger.mark_returned([file_id])
    return pieces


def _again(result: FileResult, name: str, f) -> FileResult:
    """An archived original read again, shown under the name it arrived with and saying what was found when it
    arrived (the ledger's issues: its sender and how it came are not in the original)."""
    return replace(result, path=Path(name), file=name, issues=[Issue(**i) for i in f.issues])


def _stored(f) -> FileResult:
    """A refusal recorded without bytes (nothing archived): its result as the ledger keeps it."""
    from .validate import FileResult

    return FileResult(path=Path(f.name), file=f.name, issues=[Issue(**i) for i in f.issues])


def status(root: Path, *, as_of: dt.date | None = None, period: str | None = None,
           waiting: list[str] | None = None) -> tuple[dt.date, list[StatusItem], Workspace]:
    """Who owes what as of a date, from the ledger (nothing is ingested). `waiting` gets the inbox's files no merge
    has taken yet (see unmerged): what the list cannot count."""
    from .periods import parse_period
    from .status import forms_in_use, statuses, supersession_in

    ws = _load(root)
    as_of = as_of or dt.date.today()
    with Ledger(ws.root, readonly=True) as ledger:  # status writes nothing: it works on a read-only workspace
        items = statuses(ws, supersession_in(ledger, forms_in_use(ws)), as_of)
        if waiting is not None:
            waiting += unmerged(ledger, ws.folder("inbox"))
    if period:
        p = parse_period(period)
        if p is None:
            raise TuanjianError(Issue.make("not-a-period", field="--period", value=period))
        items = [i for i in items if i.period == p]
    return as_of, items, ws



def unmerged(ledger: Ledger, inbox: Path) -> list[str]:
    """The inbox's files (their paths) that no merge has taken as they are now: new, or changed since. A file the
    stat cache holds as it is now was taken (read, or refused for what it holds); any other is hashed, and taken if
    the ledger or the archive holds its content (one merged moments after it was saved is not in the cache). A file
    that cannot be read is left out: merge refuses it, with the reason. A file that is no spreadsheet (a Word copy
    a unit sent in place of its report) is unmerged until a merge has named it."""
    from .read import MAX_FILE_BYTES

    if not Path(inbox).is_dir():
        return []
    cache = ledger.seen_paths()
    ids, kept = ledger.file_ids(), _archived(ledger)
    noted = set(json.loads(ledger.get(OTHERS_KEY) or "[]"))
    out = []
    for text in walk_texts([Path(inbox)], check_access=False):
        if isinstance(text, Other):  # a Word copy, a photo: "merged" once a merge has named it (others_noted)
            if _noted_as(text.path) not in noted:
                out.append(str(text.path))
            continue
        if isinstance(text, Refused) or (st := _stat(text)) is None:
            continue
        if Path(text).suffix.lower() not in SPREADSHEET_SUFFIXES | CONTAINERS and other_kind(Path(text)) is not None:
            if _noted_as(Path(text)) not in noted:  # (a note or a Word file without an extension: as an Other)
                out.append(text)
            continue
        entry = cache.get(text)
        if entry is not None and tuple(entry[:3]) == (st.st_size, st.st_mtime_ns, st.st_ino):
            continue
        if refusal_key(str(Path(display_name(text)))) in ids:  # refused by path (too large, unreadable): merge
            continue  # takes it as known from then on (see _remembered), so it waits for nothing
        if st.st_size > MAX_FILE_BYTES:  # never read whole here: no merge has taken it as it is now
            out.append(text)
            continue
        sha = _digest(Path(text))
        if sha is not None and sha not in ids and sha not in kept:
            out.append(text)
    return out
