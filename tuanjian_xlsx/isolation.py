"""Untrusted files are read in worker processes, so that whatever a file does to the reader costs only that file.

python-calamine is Rust: a file that makes it allocate too much, or hits one of its panics on the wrong path,
aborts the process, and no `except` can catch that. Each worker here has a memory cap; when a worker dies (a
signal, an abort, the cap) or takes too long, the job it was on becomes a `Crashed` result for that job alone, the
worker is replaced, and the others go on. Jobs are handed out a couple at a time per worker and come back in the
order each worker took them, so the job a dead worker was on is always known.

Jobs travel on one pipe and answers on another, and a thread per worker does the sending: the loop that collects
answers never waits on a full pipe, so a few jobs can wait in line at each worker (it never sits idle while this
process is busy or descheduled) and a large job and a large answer can never wait on each other.
"""

from __future__ import annotations

import collections
import faulthandler
import gc
import multiprocessing
import multiprocessing.connection
import os
import queue
import signal
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any
from collections.abc import Callable, Iterable, Iterator

from .issues import TuanjianError

WORKER_MEMORY_MB = 2048  # address space a worker may add to what it starts with (TUANJIAN_WORKER_MEMORY_MB)
JOB_SECONDS = 120.0  # a form is read in milliseconds; a file still being read after this is given up
DEPTH = 8  # jobs in line at each worker (sent by its feeding thread, so a full pipe holds up nothing else):
# enough for the worker to go on while this process records a batch in the ledger
FORKS = "fork" in multiprocessing.get_all_start_methods() and sys.platform != "darwin"  # workers start as copies
# of this process (so a setup argument is handed over as it is, never pickled); else each starts afresh
_STOP = object()  # tells a worker's feeding thread to send the worker home and end


@dataclass(frozen=True)
class Crashed:
    """The job's worker died or ran out of time: `reason` says which, in Chinese."""

    reason: str


def _serve(jobs, answers, setup: Callable, setup_args: tuple, fn: Callable, memory: int | None, parent: int) -> None:
    """A worker: set its limits, build its state once, then answer jobs until the parent says stop or is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the parent's to handle
    # a forked worker also holds the parent's ends of the pipes, so their closing is no sign: watch the parent
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    _limit(memory)
    faulthandler.disable()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)  # a Rust panic's message is ours to report, in Chinese, not the user's console's
    state = setup(*setup_args)
    gc.freeze()  # what the worker holds for good (modules, the workspace): no collection scans it again
    while True:
        try:
            job = jobs.recv()
        except (EOFError, OSError):  # the parent is gone (finished, or killed): leave with it
            return
        if job is None:
            return
        try:
            answer: tuple = ("ok", fn(state, job))
        except TuanjianError as exc:  # a fault of the workspace (a full disk), not of the file: the run stops
            answer = ("fault", exc.issues)
        except MemoryError:
            answer = ("crash", "读取时内存不足（文件可能含异常内容）")
        except Exception as exc:  # fn is expected to turn bad input into results; anything else is reported
            answer = ("crash", f"读取时出现意外错误（{type(exc).__name__}）")
        answers.send(answer)


def _feed(outbox: queue.SimpleQueue, jobs) -> None:
    """A worker's feeding thread (in the parent): sends it its jobs in order; after _STOP, None (go home)."""
    while True:
        job = outbox.get()
        try:
            jobs.send(None if job is _STOP else job)
        except OSError:  # the worker is gone: the jobs it was given come back through Workers._lost
            return
        if job is _STOP:
            return


def _exit_with_parent(parent: int) -> None:
    """A worker whose merge was killed must not wait for work for ever: leave when the parent is gone."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _limit(memory: int | None) -> None:
    try:
        import resource
    except ImportError:  # Windows: no rlimits; the timeout and crash handling still apply
        return
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # an abort must not leave a core file in the user's folder
    if memory is None:
        return
    try:
        with open("/proc/self/statm") as f:  # what the worker already maps (inherited from the parent on fork)
            current = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        current = 0
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    want = current + memory
    if hard != resource.RLIM_INFINITY:
        want = min(want, hard)
    resource.setrlimit(resource.RLIMIT_AS, (want, hard))


class _Worker:
    def __init__(self, ctx, setup, setup_args, fn, memory):
        jobs_in, self._jobs_out = ctx.Pipe(duplex=False)
        self.conn, answers_out = ctx.Pipe(duplex=False)  # answers, read here
        gc.freeze()  # what exists now is the worker's too: its collector leaves it alone (no copy-on-write)
        try:
            self.proc = ctx.Process(target=_serve, args=(jobs_in, answers_out, setup, setup_args, fn, memory,
                                                         os.getpid()), daemon=True)
            self.proc.start()
        finally:
            gc.unfreeze()
        jobs_in.close()
        answers_out.close()
        self._outbox: queue.SimpleQueue = queue.SimpleQueue()
        self._feeder = threading.Thread(target=_feed, args=(self._outbox, self._jobs_out), daemon=True)
        self._feeder.start()
        self.jobs: collections.deque = collections.deque()  # (index, job) in the order sent
        self.since = time.monotonic()  # when the job at the head of the queue started

    def send(self, job) -> None:
        self._outbox.put(job)

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.proc.kill()
        self._outbox.put(_STOP)
        self._feeder.join(timeout=5)  # a feeder stuck on a dead worker's pipe fails as the pipe closes
        self.proc.join(timeout=5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        self._feeder.join()
        self._jobs_out.close()
        self.conn.close()


class Workers:
    """A small pool of crash-isolated workers. `fn(state, job)` runs in a worker, with `state = setup(*args)`
    made once per worker; `run(jobs)` yields (index, result) as results come, a `Crashed` for a job that killed its
    worker. A `TuanjianError` raised by `fn` (the workspace's fault, not the file's) is raised again here. Use it as
    a context manager."""

    def __init__(self, count: int | Callable[[], int], setup: Callable, setup_args: tuple, fn: Callable, *,
                 memory: int | None = None, timeout: float = JOB_SECONDS):
        self._ctx = multiprocessing.get_context("fork" if FORKS else "spawn")
        if memory is None:
            memory = int(os.environ.get("TUANJIAN_WORKER_MEMORY_MB") or WORKER_MEMORY_MB) * 1024 * 1024
        self._args = (setup, setup_args, fn, memory)
        self._timeout = timeout
        self._count = count  # a callable: asked again whenever another worker could start
        self._workers: list[_Worker] = []
        self.crashes = 0
        self._tried: set[int] = set()  # jobs that already lost one worker

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for w in self._workers:
            w.stop(kill=bool(w.jobs))
        self._workers = []

    def _spawn(self) -> _Worker:
        w = _Worker(self._ctx, *self._args)
        self._workers.append(w)
        return w

    def run(self, jobs: Iterable[Any]) -> Iterator[tuple[int, Any]]:
        """(index, result) per job, in the order results come. `jobs` may be a generator: it is drawn on only as a
        worker has room, so that making the next job (reading a file) overlaps with the workers' work; a worker is
        started when a job is waiting that no running worker has room for."""
        source = enumerate(jobs)
        todo: collections.deque = collections.deque()  # drawn (or given back by a lost worker), not yet sent
        drawn_all = False

        def waiting() -> bool:
            nonlocal drawn_all
            if not todo and not drawn_all:
                item = next(source, None)
                if item is None:
                    drawn_all = True
                else:
                    todo.append(item)
            return bool(todo)

        while True:
            for w in self._workers:
                while len(w.jobs) < DEPTH and waiting():
                    if not w.jobs:
                        w.since = time.monotonic()
                    index, job = todo.popleft()
                    w.jobs.append((index, job))
                    w.send(job)  # a worker that died before taking it is found below through its sentinel
            if waiting() and len(self._workers) < max(1, self._count() if callable(self._count) else self._count):
                self._spawn()
                continue
            busy = [w for w in self._workers if w.jobs]
            if not busy:
                return
            waits = [w.conn for w in busy] + [w.proc.sentinel for w in busy]
            multiprocessing.connection.wait(waits, timeout=1.0)
            for w in busy:
                yield from self._collect(w)
                if not w.jobs:
                    continue
                if not w.proc.is_alive():
                    yield from self._lost(w, todo, "读取时程序异常终止，文件可能损坏或含异常内容")
                elif time.monotonic() - w.since > self._timeout:
                    yield from self._lost(w, todo, f"读取超过 {int(self._timeout)} 秒仍未完成，文件可能含异常内容")

    def _collect(self, w: _Worker) -> Iterator[tuple[int, Any]]:
        """Every answer already waiting in the worker's pipe."""
        while w.jobs:
            try:
                if not w.conn.poll():
                    return
                kind, answer = w.conn.recv()
            except (EOFError, OSError):
                return
            index, _ = w.jobs.popleft()
            w.since = time.monotonic()
            if kind == "fault":
                raise TuanjianError(answer)
            yield index, answer if kind == "ok" else Crashed(answer)

    def _lost(self, w: _Worker, todo: collections.deque, reason: str) -> Iterator[tuple[int, Any]]:
        """The worker died or hung on its head job. The first time, the job goes back in line for a fresh worker
        (the machine, not the file, may have been at fault: a sleeping laptop, a slow share); the second time it
        is reported. The jobs behind it go back in line."""
        index, job = w.jobs.popleft()
        self.crashes += 1
        for item in reversed(w.jobs):
            todo.appendleft(item)
        w.jobs.clear()
        w.stop(kill=True)
        self._workers.remove(w)
        if index not in self._tried:
            self._tried.add(index)
            todo.appendleft((index, job))
        else:
            yield index, Crashed(reason)
