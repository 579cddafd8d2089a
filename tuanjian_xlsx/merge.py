"""`tuanjian merge`: inbox -> ledger -> master. Ingest is idempotent; invalid files get their 退回件 and never stop
the run; the master is replaced atomically with the previous one kept beside it."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from collections.abc import Callable

from .plan import Workspace
from .issues import Issue, TuanjianError
from .checking import ext_of, ingest_jobs, row, validate_many
from .intake import Submission, containers, expand, load
from .ledger import Ledger, archive_file, refusal_key
from .master import render_master
from .read import MAX_FILE_BYTES
from .returns import ReturnPiece, write_returns
from .status import StatusItem
from .validate import FileResult
from .xlsxio import atomic_write

MASTER_NAME = "汇总表.xlsx"


@dataclass
class Ingested:
    path: Path
    outcome: str  # new | duplicate
    file_id: int
    valid: bool = True
    result: FileResult | None = None  # kept for an invalid file only: its 退回件 is made from it
    sha256: str = ""
    arrival: tuple[dt.datetime, str] | None = None  # a duplicate's own received time and its basis
    moved: bool = False  # a duplicate that arrived earlier than the copy recorded: the ledger now says so


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


BATCH = 256  # files per ledger transaction: a killed run loses at most one batch, which the next run redoes


def ingest_many(ledger: Ledger, ws: Workspace, items: list, *, now: dt.datetime,
                received: dict[Path, dt.datetime] | None = None, parse_counter: list | None = None,
                progress: Callable[[int, int, Ingested], None] | None = None,
                received_basis: str = "stated") -> list[Ingested]:
    """Submissions into the ledger, a batch at a time so memory stays flat: each read and hashed once; content
    already known is a duplicate and is not parsed (its original archived again if the archive lost it); new
    content is validated and archived in crash-isolated worker processes, then recorded in one transaction per
    batch. A file that cannot be read, or kills its reader, is recorded as refused: never retried, never a stop."""
    items = [i if isinstance(i, Submission) else Submission(Path(i), str(i)) for i in items]
    out: list[tuple[int, Ingested]] = []
    ids: dict[str, int] = {}  # sha256 -> file id, for copies within this run
    archive_dir = str(ledger.archive_dir)
    def when(sub: Submission) -> tuple[dt.datetime, str]:
        """The submission's received time and what it rests on (ledger.RECEIVED_BASES)."""
        if received and sub.path in received:
            return received[sub.path], received_basis
        if sub.received_at is not None:
            return sub.received_at, sub.basis or "first-seen"
        return now, "first-seen"

    for start in range(0, len(items), BATCH):
        jobs: list[tuple[int, Submission, str, bytes]] = []
        refused: list[tuple[int, Submission, str, FileResult]] = []
        for k, sub in enumerate(items[start:start + BATCH], start=start):
            sub, data = _read(sub)
            if sub.refusal is not None:  # nothing to read: recorded under a key made from where it was
                sha = refusal_key(sub.origin)
            else:
                assert data is not None  # _read gives the bytes whenever it gives no refusal
                sha = hashlib.sha256(data).hexdigest()
            known = ledger.known(sha) or ids.get(sha)
            if known is None and sha not in ids and all(sha != j[2] for j in jobs + refused):
                if sub.refusal is not None:
                    r = FileResult(path=sub.path.with_name(sub.name), file=sub.name, issues=[sub.refusal])
                    refused.append((k, sub, sha, r))
                else:
                    assert data is not None  # _read gives the bytes whenever it gives no refusal
                    jobs.append((k, sub, sha, data))
            else:
                if data is not None:
                    ledger.rearchive(sha, data)
                out.append((k, Ingested(sub.path.with_name(sub.name), "duplicate", known or -1, sha256=sha,
                                        arrival=when(sub))))
        if parse_counter is not None:
            parse_counter.extend(sub.name for _, sub, _, _ in jobs)
        checked: list = [None] * len(jobs)
        arrivals = {k: when(sub) for k, sub, _, _ in jobs} | {k: when(sub) for k, sub, _, _ in refused}
        for i, answer in ingest_jobs(ws, [(sub, sha, data, arrivals[k][0].date()) for k, sub, sha, data in jobs],
                                     archive_dir):
            checked[i] = answer
        checked += [(row(r, sha, sub.name, ext_of(sub.name), 0), r) for _, sub, sha, r in refused]
        batch = [(k, sub, sha) for k, sub, sha, _ in jobs] + [(k, sub, sha) for k, sub, sha, _ in refused]
        rows = [dict(r, origin=sub.origin, received_at=arrivals[k][0], received_basis=arrivals[k][1], now=now)
                for (k, sub, _), (r, _) in zip(batch, checked)]
        for (k, sub, sha), (r, result), (file_id, new) in zip(batch, checked, ledger.add_many(rows)):
            ids[sha] = file_id
            # not new: another run recorded the same content first; like any duplicate it keeps its own arrival
            out.append((k, Ingested(sub.path.with_name(sub.name), "new" if new else "duplicate", file_id, r["valid"],
                                    result if new else None, sha, arrival=None if new else arrivals[k])))
        if progress and out:
            progress(len(out), len(items), out[-1][1])
    out.sort(key=lambda ki: ki[0])
    for k, item in out:  # a second copy within this run: count it once, as a sighting of the first
        if item.file_id == -1:
            item.file_id = ids[item.sha256]
        if item.outcome == "duplicate":  # the earliest arrival of the same content counts
            assert item.arrival is not None  # every duplicate is made with its arrival
            item.moved = ledger.seen_again(item.file_id, item.path.name, items[k].origin, now, *item.arrival)
    return [item for _, item in out]


def _read(sub: Submission) -> tuple[Submission, bytes | None]:
    """The submission's bytes, or the submission turned into a refusal saying why they cannot be read."""
    if sub.refusal is not None:
        return sub, None
    data, problem = load(sub)
    if problem is not None:
        return replace(sub, refusal=problem), None
    assert data is not None  # load gives the bytes whenever it gives no problem
    if len(data) > MAX_FILE_BYTES:  # never hold a huge file longer than needed
        return replace(sub, refusal=Issue.make("file-too-large", file=sub.name, size=len(data) // 1048576)), None
    return sub, data


def write_master(path: Path, data: bytes) -> tuple[Path, list[Issue]]:
    """Replace the master atomically, keeping the previous one as 汇总表.bak.xlsx; if it is locked (open in
    Excel on Windows), write beside it under a new name instead and say so."""
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
          received_at: dt.datetime | None = None, received_basis: str = "stated") -> MergeResult:
    """Ingest every file under `paths` (default: the inbox), write 退回件 for new invalid files, render the master.

    `received_at`: the arrival staff state for every file of this run (saved late from a mail, say); it replaces
    what the ledger knew for them (shown as 人工指定). `received`: the same, per file, resting on
    `received_basis` (see ledger.RECEIVED_BASES)."""
    ws = Workspace.load(root)
    now = now or dt.datetime.now().replace(microsecond=0)
    as_of = as_of or now.date()
    sources = [Path(p) for p in paths] if paths else [ws.folder("inbox")]
    missing = [p for p in sources if not p.exists()]
    if missing:
        raise TuanjianError([Issue.make("file-missing", file=p.name, detail=str(p)) for p in missing])
    result = MergeResult(master=None, as_of=as_of)
    todo = list(expand(sources))
    if received_at is not None:
        received = {**{sub.path: received_at for sub in todo}, **(received or {})}
    target = Path(out) if out else ws.folder("master") / MASTER_NAME
    with Ledger(ws.root) as ledger:
        for box in containers(sources):  # the zip or mail as received is an original too: kept by its hash
            try:
                archive_file(ledger.archive_dir, box, box.suffix.lower(), mode=box.stat().st_mode)
            except OSError:  # unreadable: its contents are refused with the reason, one by one
                continue
        result.ingested = ingest_many(ledger, ws, todo, now=now, received=received, parse_counter=parse_counter,
                                      progress=progress, received_basis=received_basis)
        new_ids = {i.file_id for i in result.ingested if i.outcome == "new"}
        result.returns = _returns(ledger, ws, {i.file_id: i.result for i in result.invalid})
        files = ledger.files()
        inputs = _inputs_key(ws, files, as_of)
        unchanged = ledger.master_made_from() == f"{inputs} {target.resolve()} {_digest(target)}"
        data, eff, items = render_master(ws, files, as_of, counts_only=unchanged)
        result.items = items
        result.superseded = sum(1 for by in eff.superseded_by.values() if by in new_ids)
        result.notes += arrival_notes(ws, files, new_ids, items)
        if unchanged:  # same ledger, same configuration, same date: the master on disk is already this master
            result.master = target
        else:
            assert data is not None  # render_master leaves the bytes out only with counts_only
            result.master, written = write_master(target, data)
            result.notes += written
            if result.master == target:  # with the written file's hash: a master damaged on disk is written again
                ledger.note_master(f"{inputs} {target.resolve()} {hashlib.sha256(data).hexdigest()}")
    return result


LONG_PAST_DAYS = 30  # a form received this long after its due date is named, in case it is the wrong copy


def arrival_notes(ws: Workspace, files: list, new_ids: set[int], items: list[StatusItem]) -> list[Issue]:
    """What staff should check about this run's new files: plain files first registered after their due date
    (their real arrival may have been earlier), forms for a period long past, and visits whose organisation is
    named almost like one already received (counted as a second visit)."""
    from .status import close_names, forms_in_use

    due = {(i.unit_id, i.form_id, i.period.code): i.due for i in items}
    fresh = [f for f in files if f.id in new_ids and f.valid and f.unit_id]
    notes = []
    late_plain = [f for f in fresh if f.received_basis == "first-seen"
                  and due.get((f.unit_id, f.form_id, f.period), f.received_at.date()) < f.received_at.date()]
    if late_plain:
        notes.append(Issue.make("registered-after-due", count=len(late_plain),
                                names=[f.name for f in late_plain[:10]] + (["……"] if len(late_plain) > 10 else [])))
    names = {s.form_id: s.display_name for s in ws.registry.latest()}
    for f in fresh:
        d = due.get((f.unit_id, f.form_id, f.period))
        if d is not None and (f.received_at.date() - d).days > LONG_PAST_DAYS:
            notes.append(Issue.make("period-long-past", file=f.name, unit=f.unit, period=f.period,
                                    form=names.get(f.form_id, f.form_id), due=d.isoformat(),
                                    days=(f.received_at.date() - d).days))
    for f, new_name, old_name in close_names(files, new_ids, forms_in_use(ws)):
        notes.append(Issue.make("visit-name-close", file=f.name, unit=f.unit, period=f.period, new=new_name,
                                old=old_name))
    return notes


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _inputs_key(ws: Workspace, files: list, as_of: dt.date) -> str:
    """Everything the master is a function of: the ledger's files, the configuration, the date, the tool."""
    from . import __version__

    h = hashlib.sha256()
    h.update(f"{__version__}|{as_of.isoformat()}|{len(files)}".encode())
    for f in files:  # received times move when an earlier copy turns up
        h.update(f"{f.id}|{f.received_at.isoformat()}|{f.received_basis}\n".encode())
    h.update(ws.settings.model_dump_json().encode())
    h.update(ws.roster.model_dump_json().encode())
    for spec in ws.registry.specs.values():
        h.update(spec.digest.encode())  # the whole spec: a change to its [master] section re-renders
    return h.hexdigest()


def _returns(ledger: Ledger, ws: Workspace, fresh: dict[int, FileResult | None]) -> list[ReturnPiece]:
    """退回件 for every invalid file that has none yet — this run's, and any a killed run left without one."""
    todo = ledger.unreturned()
    known = [fresh.get(file_id) for file_id, *_ in todo]
    results = [r for r in known if r is not None]
    if len(results) < len(known):  # some validated by an earlier run that stopped before writing them
        rows = {f.id: f for f in ledger.files()}
        again = [Submission(ledger.archive_path(sha, ext), name, member=name, received_at=rows[file_id].received_at)
                 for (file_id, sha, ext, name), r in zip(todo, known)
                 if r is None and ledger.archive_path(sha, ext).exists()]
        redone = iter(validate_many(ws, again))  # the archived originals read again, isolated
        results = [r if r is not None else next(redone) if ledger.archive_path(sha, ext).exists()
                   else _stored(rows[file_id]) for r, (file_id, sha, ext, name) in zip(known, todo)]
    pieces = write_returns(results, ws, ws.folder("returns"))
    ledger.mark_returned([file_id for file_id, *_ in todo])
    return pieces


def _stored(f) -> FileResult:
    """A refusal recorded without bytes (nothing archived): its result as the ledger keeps it."""
    return FileResult(path=Path(f.name), file=f.name, issues=[Issue(**i) for i in f.issues])


def status(root: Path, *, as_of: dt.date | None = None, period: str | None = None) -> tuple[dt.date, list[StatusItem], Workspace]:
    """Who owes what as of a date, from the ledger (nothing is ingested)."""
    from .periods import parse_period
    from .status import effective, forms_in_use, statuses

    ws = Workspace.load(root)
    as_of = as_of or dt.date.today()
    with Ledger(ws.root, readonly=True) as ledger:  # status writes nothing: it works on a read-only workspace
        files = ledger.files()
    items = statuses(ws, effective(files, forms_in_use(ws)), as_of)
    if period:
        p = parse_period(period)
        if p is None:
            raise TuanjianError(Issue.make("not-a-period", field="--period", value=period))
        items = [i for i in items if i.period == p]
    return as_of, items, ws
