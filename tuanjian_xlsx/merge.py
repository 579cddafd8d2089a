"""`tuanjian merge`: inbox -> ledger -> master. Ingest is idempotent; invalid files get their 退回件 and never stop
the run; the master is replaced atomically with the previous one kept beside it."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .config import Workspace
from .issues import Issue, TuanjianError
from .ledger import Ledger, _json_default, archive
from .master import render_master
from .returns import ReturnPiece, prepare_return, write_returns
from .status import StatusItem
from .intake import CONTAINERS, Submission, expand
from .validate import FileResult, iter_submissions, validate_file
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

    def summary(self) -> str:
        units = len({i.unit for i in self.missing})
        return (f"收到 {self.received} 份 · 有效 {self.valid} · 退回 {len(self.invalid)} · 重复 {self.duplicates} · "
                f"被替换 {self.superseded} · 未报 {units} 家")

    def to_dict(self) -> dict:
        return {
            "master": str(self.master) if self.master else None,
            "received": self.received, "valid": self.valid, "invalid": len(self.invalid),
            "duplicates": self.duplicates, "superseded": self.superseded,
            "missing": [{"unit": i.unit, "form_id": i.form_id, "period": i.period.code} for i in self.missing],
            "late": [{"unit": i.unit, "form_id": i.form_id, "period": i.period.code, "due": i.due.isoformat(),
                      "received": i.received.isoformat()} for i in self.late],
        }


BATCH = 256  # files per ledger transaction: a killed run loses at most one batch, which the next run redoes
PARALLEL_FROM = 64  # below this, starting worker processes costs more than it saves

_WORKER_WS: Workspace | None = None


def _init_worker(root: str, parent: int) -> None:
    global _WORKER_WS
    _WORKER_WS = Workspace.load(Path(root))
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """A worker whose merge was killed must not wait for work forever: leave when the parent is gone."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _check(job: tuple) -> tuple[dict, FileResult | None]:
    """In a worker: validate and archive one new file; return its ledger row (JSON already made) and, when it is
    invalid, the result with its 退回件 made right here (on this core, not the main one)."""
    return _check_with(_WORKER_WS, *job)


def _check_with(ws: Workspace, path_text: str, sha: str, archive_dir: str, data: bytes | None = None,
                sender: str | None = None, name: str | None = None) -> tuple[dict, FileResult | None]:
    path = Path(path_text)
    data = path.read_bytes() if data is None else data
    name = name or path.name
    path = path.with_name(name) if name != path.name else path  # suffix and name of the member itself
    result = validate_file(path, ws, data=data, display=name)
    if sender and result.unit_id:
        unit = next((u for u in ws.roster.units if u.id == result.unit_id), None)
        if unit is not None and unit.email and unit.email.lower() != sender.lower():
            result.issues.append(Issue.make("sender-mismatch", file=name, sender=sender, unit=unit.name,
                                            expected=unit.email))
    ext = path.suffix.lower() or ".bin"
    archive(Path(archive_dir), sha, ext, data)
    return _row(result, sha, name, ext, len(data)), _keep_invalid(result, ws)


def _row(result: FileResult, sha: str, name: str, ext: str, size: int) -> dict:
    return dict(sha256=sha, name=name, ext=ext, size=size, valid=result.valid, form_id=result.form_id,
                version=result.version, unit_id=result.unit_id, unit=result.unit, period=result.period,
                result=json.dumps({"records": [{"sheet": r.sheet, "values": r.values} for r in result.records],
                                   "issues": [i.to_dict() for i in result.issues]},
                                  ensure_ascii=False, default=_json_default))


def _keep_invalid(result: FileResult, ws: Workspace) -> FileResult | None:
    if result.valid:
        return None
    try:
        result.prepared_return = prepare_return(result, ws)
    except Exception:  # the main process tries again and reports what goes wrong
        result.prepared_return = None
    return result


def ingest_many(ledger: Ledger, ws: Workspace, items: list, *, now: dt.datetime,
                received: dict[Path, dt.datetime] | None = None, parse_counter: list | None = None,
                progress: Callable[[int, int, Ingested], None] | None = None) -> list[Ingested]:
    """Submissions into the ledger, a batch at a time so memory stays flat: each read and hashed once; content
    already known is a duplicate and is not parsed; new content is validated and archived (in worker processes
    on a multi-core machine when there is enough of it), then recorded in one transaction per batch."""
    items = [i if isinstance(i, Submission) else Submission(Path(i), str(i)) for i in items]
    out: list[tuple[int, Ingested]] = []
    ids: dict[str, int] = {}  # sha256 -> file id, for copies within this run
    workers = min(os.cpu_count() or 1, 8)
    pool = None
    if len(items) >= PARALLEL_FROM and workers > 1 and ws.root is not None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method),
                                   initializer=_init_worker, initargs=(str(ws.root), os.getpid()))
    archive_dir = str(ledger.dir / "archive")
    when = lambda sub: (received or {}).get(sub.path) or sub.received_at or now  # noqa: E731
    try:
        for start in range(0, len(items), BATCH):
            jobs: list[tuple[int, Submission, str]] = []
            refused: list[tuple[int, Submission, str, FileResult]] = []
            for k, sub in enumerate(items[start:start + BATCH], start=start):
                if sub.refusal is not None:  # nothing to read: recorded under a key made from where it was
                    sha = hashlib.sha256(b"refused\0" + sub.origin.encode()).hexdigest()
                else:
                    sha = hashlib.sha256(sub.read()).hexdigest()
                known = ledger.known(sha) or ids.get(sha)
                if known is None and sha not in ids and all(sha != j[2] for j in jobs + refused):
                    if sub.refusal is not None:
                        r = FileResult(path=sub.path.with_name(sub.name), file=sub.name, issues=[sub.refusal])
                        refused.append((k, sub, sha, r))
                    else:
                        jobs.append((k, sub, sha))
                else:
                    out.append((k, Ingested(sub.path.with_name(sub.name), "duplicate", known or -1, sha256=sha)))
            if parse_counter is not None:
                parse_counter.extend(sub.name for _, sub, _ in jobs)
            args = [(str(sub.path), sha, archive_dir, sub.data, sub.sender, sub.name) for _, sub, sha in jobs]
            checked = list(pool.map(_check, args, chunksize=16)) if pool else [_check_with(ws, *a) for a in args]
            checked += [(_row(r, sha, sub.name, sub.path.suffix.lower() or ".bin", 0), r) for _, sub, sha, r in refused]
            batch = [(k, sub, sha) for k, sub, sha in jobs] + [(k, sub, sha) for k, sub, sha, _ in refused]
            rows = [dict(row, origin=sub.origin, received_at=when(sub), now=now)
                    for (_, sub, _), (row, _) in zip(batch, checked)]
            for (k, sub, sha), (row, result), (file_id, new) in zip(batch, checked, ledger.add_many(rows)):
                ids[sha] = file_id
                out.append((k, Ingested(sub.path.with_name(sub.name), "new" if new else "duplicate", file_id, row["valid"],
                                        result if new else None, sha)))
            if progress:
                progress(len(out), len(items), out[-1][1])
    finally:
        if pool is not None:
            pool.shutdown()
    out.sort(key=lambda ki: ki[0])
    for k, item in out:  # a second copy within this run: count it once, as a sighting of the first
        if item.file_id == -1:
            item.file_id = ids[item.sha256]
        if item.outcome == "duplicate":
            ledger.seen_again(item.file_id, item.path.name, items[k].origin, now)
    return [item for _, item in out]


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
    except TuanjianError:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        other = path.with_name(f"{path.stem}_{stamp}{path.suffix}")
        notes.append(Issue.make("master-locked", file=path.name, name=path.name, other=other.name))
        return atomic_write(other, data), notes


def merge(root: Path, paths: list[Path] | None = None, *, out: Path | None = None, as_of: dt.date | None = None,
          now: dt.datetime | None = None, progress: Callable[[int, int, Ingested], None] | None = None,
          received: dict[Path, dt.datetime] | None = None, parse_counter: list | None = None) -> MergeResult:
    """Ingest every file under `paths` (default: the inbox), write 退回件 for new invalid files, render the master."""
    ws = Workspace.load(root)
    now = now or dt.datetime.now().replace(microsecond=0)
    as_of = as_of or now.date()
    sources = [Path(p) for p in paths] if paths else [ws.folder("inbox")]
    missing = [p for p in sources if not p.exists()]
    if missing:
        raise TuanjianError([Issue.make("file-missing", file=p.name, detail=str(p)) for p in missing])
    result = MergeResult(master=None, as_of=as_of)
    todo = list(expand(sources))
    containers = [p for p in iter_submissions(sources, extra_suffixes=CONTAINERS) if p.suffix.lower() in CONTAINERS]
    target = Path(out) if out else ws.folder("master") / MASTER_NAME
    with Ledger(ws.root) as ledger:
        for box in containers:  # the zip or mail as received is an original too: kept by its hash
            data = box.read_bytes()
            ledger.archive(hashlib.sha256(data).hexdigest(), box.suffix.lower(), data)
        result.ingested = ingest_many(ledger, ws, todo, now=now, received=received, parse_counter=parse_counter,
                                      progress=progress)
        new_ids = {i.file_id for i in result.ingested if i.outcome == "new"}
        result.returns = _returns(ledger, ws, {i.file_id: i.result for i in result.invalid})
        files = ledger.files()
        inputs = _inputs_key(ws, files, as_of)
        unchanged = ledger.get("master") == f"{inputs} {target.resolve()}" and target.exists()
        data, eff, items = render_master(ws, files, as_of, counts_only=unchanged)
        result.items = items
        result.superseded = sum(1 for by in eff.superseded_by.values() if by in new_ids)
        if unchanged:  # same ledger, same configuration, same date: the master on disk is already this master
            result.master = target
        else:
            result.master, result.notes = write_master(target, data)
            if result.master == target:
                ledger.put("master", f"{inputs} {target.resolve()}")
    return result


def _inputs_key(ws: Workspace, files: list, as_of: dt.date) -> str:
    """Everything the master is a function of: the ledger's files, the configuration, the date, the tool."""
    from . import __version__

    h = hashlib.sha256()
    h.update(f"{__version__}|{as_of.isoformat()}|{len(files)}|{files[-1].id if files else 0}".encode())
    h.update(ws.settings.model_dump_json().encode())
    h.update(ws.roster.model_dump_json().encode())
    for spec in ws.registry.specs.values():
        h.update(spec.fingerprint.encode())
    return h.hexdigest()


def _returns(ledger: Ledger, ws: Workspace, fresh: dict[int, FileResult]) -> list[ReturnPiece]:
    """退回件 for every invalid file that has none yet — this run's, and any a killed run left without one."""
    todo = ledger.unreturned()
    results = []
    for file_id, sha, ext, name in todo:
        result = fresh.get(file_id)
        if result is None:  # validated by an earlier run that stopped before writing: read the archived original
            result = validate_file(ledger.archive_path(sha, ext), ws, display=name)
        results.append(result)
    pieces = write_returns(results, ws, ws.folder("returns"))
    ledger.mark_returned([file_id for file_id, *_ in todo])
    return pieces


def status(root: Path, *, as_of: dt.date | None = None, period: str | None = None) -> tuple[dt.date, list[StatusItem], Workspace]:
    """Who owes what as of a date, from the ledger (nothing is ingested)."""
    from .periods import parse_period
    from .status import effective, statuses

    ws = Workspace.load(root)
    as_of = as_of or dt.date.today()
    with Ledger(ws.root) as ledger:
        files = ledger.files()
    items = statuses(ws, effective(files), as_of)
    if period:
        p = parse_period(period)
        if p is None:
            raise TuanjianError(Issue.make("not-a-period", field="--period", value=period))
        items = [i for i in items if i.period == p]
    return as_of, items, ws
