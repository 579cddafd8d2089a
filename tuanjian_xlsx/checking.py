"""Checking many submissions at once, each in isolation (see isolation.py): validate, and for merge also archive
the original and make its 退回件, in worker processes. A file that kills its worker is refused alone, with a
Chinese reason, and the rest go on."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING
from collections.abc import Callable, Iterable, Iterator

from .plan import Plan, Workspace
from .intake import Submission, load
from .isolation import FORKS, Crashed, Workers
from .issues import Issue
from .ledger import _json_default, archive, source_mode
from .validate import FileResult, validate_file

if TYPE_CHECKING:
    from .returns import ReturnPiece

PARALLEL_FROM = 64  # below this, a second worker process costs more than it saves


def worker_workspace(root: str | None) -> Plan:
    """What a worker loads once: the workspace at `root`, or the built-in default plan."""
    return Workspace.load(Path(root)) if root else Plan.builtin()


def _workers(ws: Plan, n_jobs: int | Callable[[], int], fn) -> Workers:
    """The pool for `n_jobs` jobs (or as many as the callable says there are so far: an inbox whose zips and mails
    are opened as the workers go learns its count as it goes)."""
    cores = _cores()
    return _pool(ws, (lambda: cores if n_jobs() >= PARALLEL_FROM else 1) if callable(n_jobs) else
                 cores if n_jobs >= PARALLEL_FROM else 1, fn)


def _cores() -> int:
    return min(os.cpu_count() or 1, 8)


def _pool(ws: Plan, count: int | Callable[[], int], fn) -> Workers:
    import python_calamine  # noqa: F401 — loaded once here, so forked workers start with it

    if FORKS:  # the workspace this process loaded, as it is (the workers never load another version of it)
        return Workers(count, _as_is, (ws,), fn)
    return Workers(count, worker_workspace, (str(ws.root) if isinstance(ws, Workspace) else None,), fn)


def _as_is(ws: Plan) -> Plan:
    return ws


def job(sub: Submission, data: bytes, received: dt.date | None) -> tuple:
    """What a worker needs of a submission: the bytes this process read (and hashed) — never read again, so a file
    changed meanwhile cannot be recorded under another content's hash — and the day it arrived."""
    return str(sub.source or sub.path), data, sub.name, sub.sender, sub.notes, received


def validated(ws: Plan, job: tuple, sha256: str | None = None) -> FileResult:
    """In a worker: one submission read and checked (and its sender compared with the roster's address); what
    intake noticed about its arrival is added to its issues. `sha256`: the bytes' hash, when already known."""
    path_text, data, name, sender, notes, received = job
    path = Path(path_text)
    if name != path.name:
        path = path.with_name(name)  # the suffix and name of the member itself
    result = validate_file(path, ws, data=data, display=name, received=received, sha256=sha256)
    result.issues += list(notes)
    if sender and result.unit_id:
        unit = next((u for u in ws.roster.units if u.id == result.unit_id), None)
        if unit is not None and unit.email and sender.lower() not in unit.emails:
            result.issues.append(Issue.make("sender-mismatch", file=name, sender=sender, unit=unit.name,
                                            expected=unit.email))
    return result


def crashed(name: str, path: str, reason: str) -> FileResult:
    return FileResult(path=Path(path), file=name, issues=[Issue.make("reader-crashed", file=name, reason=reason)])


def validate_many(ws: Plan, subs: list[Submission], today: dt.date | None = None,
                  progress=None) -> list[FileResult]:
    """Every submission validated in isolation, results in the order given (refusals need no reading); each
    counts as received on its mail's date, else `today`."""
    results: list[FileResult | None] = [None] * len(subs)
    todo = []
    for k, sub in enumerate(subs):
        if sub.refusal is not None:
            results[k] = FileResult(path=sub.path, file=sub.name, issues=[sub.refusal])
            continue
        data, problem = load(sub)
        if problem is not None:
            results[k] = FileResult(path=sub.path, file=sub.name, issues=[problem])
        else:
            assert data is not None  # load gives the bytes whenever it gives no problem
            todo.append((k, job(sub, data, sub.received_at.date() if sub.received_at else today)))
    from .intake import release

    release()  # (every submission's bytes are read: the last zip need not stay open)
    with _workers(ws, len(todo), validated) as pool:
        for i, answer in pool.run([j for _, j in todo]):
            k = todo[i][0]
            if isinstance(answer, Crashed):
                answer = crashed(subs[k].name, str(subs[k].path), answer.reason)
            answer.path = subs[k].path
            answer.file = str(subs[k].path)
            results[k] = answer
            if progress:
                progress(answer)
    return [r for r in results if r is not None]


# --- merge: validate and archive in the workers; then the 退回件, in workers of their own -----------------------


def checked(ws: Workspace, job: tuple) -> tuple[dict, FileResult | None]:
    """In a worker: validate and archive one new file; its ledger row (JSON already made) and, when it is invalid,
    the result its 退回件 is made from."""
    path_text, data, name, sender, notes, received, sha, archive_dir = job
    result = validated(ws, (path_text, data, name, sender, notes, received), sha)
    ext = ext_of(name)
    archive(Path(archive_dir), sha, ext, data, mode=source_mode(Path(path_text)))
    return row(result, sha, name, ext, len(data)), None if result.valid else result


def ingest_jobs(ws: Workspace, jobs: Iterable[tuple], archive_dir: str,
                expected: int | Callable[[], int]) -> Iterator[tuple[tuple, tuple[dict, FileResult | None]]]:
    """(job, (row, result)) for each job (submission, sha256, bytes, day received, …anything else) drawn from `jobs`,
    in the order answers come. A generator is drawn on only as a worker has room, so the caller's reading of the
    next file overlaps with the workers' checking; `expected` (how many jobs there may be) decides how many workers.
    A crash becomes a refused row and the original is still archived (by this process)."""
    given: dict[int, tuple] = {}  # the jobs in the workers' hands

    def sent() -> Iterator[tuple]:
        for n, j in enumerate(jobs):
            given[n] = j
            sub, sha, data, day = j[:4]
            yield job(sub, data, day) + (sha, archive_dir)

    with _workers(ws, expected, checked) as pool:
        for i, answer in pool.run(sent()):
            j = given.pop(i)
            if isinstance(answer, Crashed):
                sub, sha, data = j[:3]
                result = crashed(sub.name, str(sub.path), answer.reason)
                archive(Path(archive_dir), sha, ext_of(sub.name), data, mode=source_mode(sub.source or sub.path))
                answer = row(result, sha, sub.name, ext_of(sub.name), len(data)), result
            yield j, answer


def ext_of(name: str) -> str:
    return Path(name).suffix.lower() or ".bin"


def row(result: FileResult, sha: str, name: str, ext: str, size: int) -> dict:
    """A file's ledger row: its facts and what validation found, as JSON."""
    return dict(sha256=sha, name=name, ext=ext, size=size, valid=result.valid, form_id=result.form_id,
                version=result.version, unit_id=result.unit_id, unit=result.unit, period=result.period,
                result=json.dumps({"records": [{"sheet": r.sheet, "values": r.values} for r in result.records],
                                   "issues": [i.to_dict() for i in result.issues]},
                                  ensure_ascii=False, default=_json_default))


RETURNS_FORKED_FROM = 4  # 退回件 written by worker processes from this many at once; fewer, by the calling thread


def written_returns(ws: Plan, jobs: list[tuple[FileResult, str]], out_dir: Path, free: Callable[[], bool],
                    stopping: Callable[[], bool], written: Callable[[int, ReturnPiece], None]) -> list[ReturnPiece]:
    """The 退回件 and message of each (invalid result, name without suffix), written in out_dir, each told to
    `written(index, piece)` as soon as it is on disk; none begun once `stopping()` says so. They are made by worker
    processes of their own: one while the other cores are busy (checking, or rendering the master), one per core
    once `free()` says they are not. One whose making kills its worker (twice) gets its message alone (its
    workbook is not made again here). A handful, or where workers cannot start as copies of this process, are
    written by the calling thread."""
    from . import cells, mailtext  # noqa: F401 — what writing one imports, imported here: the workers fork from
    from .returns import write_return  # this thread while another renders (never a child waiting on a lock)

    pieces: list[ReturnPiece | None] = [None] * len(jobs)
    todo = itertools.takewhile(lambda _: not stopping(), jobs)
    if not FORKS or len(jobs) < RETURNS_FORKED_FROM:
        answers: Iterable[tuple[int, ReturnPiece | Crashed]] = ((i, write_return(result, ws, out_dir, stem))
                                                                for i, (result, stem) in enumerate(todo))
        pool = None
    else:
        cores = _cores()
        pool = _pool(ws, lambda: cores if free() else 1, _written)
        answers = pool.run((result, stem, str(out_dir)) for result, stem in todo)
    try:
        for i, answer in answers:
            if isinstance(answer, Crashed):
                answer = write_return(jobs[i][0], ws, out_dir, jobs[i][1], whole=False)
            pieces[i] = answer
            written(i, answer)
    finally:
        if pool is not None:
            pool.close()
    return [p for p in pieces if p is not None]


def _written(ws: Plan, job: tuple[FileResult, str, str]) -> ReturnPiece:
    from .returns import write_return

    result, stem, out_dir = job
    return write_return(result, ws, Path(out_dir), stem)
