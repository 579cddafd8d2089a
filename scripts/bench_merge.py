#!/usr/bin/env python3
"""Benchmark `tuanjian merge` on submissions shaped like the ones people send back (scripts/bench_corpus.py),
against what a user would write by hand and against the floor of reading.

    .venv/bin/python scripts/bench_merge.py                      # 1,000 and 10,000 files, medians of 3
    .venv/bin/python scripts/bench_merge.py --sizes 1000 --repeat 3
    .venv/bin/python scripts/bench_merge.py --huge               # also 100,000 once (the 10,000 ten times over)

Every figure is the wall time of a process of its own, started cold (a fresh Python), median of --repeat:
  merge      `python -m tuanjian_xlsx merge` on a fresh ledger, end to end (read, validate, archive, 退回件, master)
  re-merge   the same inbox again: everything already in the ledger, nothing new
  invalid    merge of a corpus where one file in five has a mistake (per file, against the all-valid corpus)
  openpyxl   a hand-written loop: load_workbook each .xlsx, copy its named cells into one sheet, save
  floor      python-calamine opening each file (zips and mails unpacked) and reading every sheet's cells
  memory     the peak of the merge process and its workers together (sampled), and of the largest single process:
             RSS summed (a page the workers share with the process they were forked from counts once per process)
             and PSS summed (each shared page divided among the processes sharing it: the memory the run takes)
The corpus is made once and cached under .bench/ (10,000 files take about ten minutes, LibreOffice most of it).
"""

from __future__ import annotations

import argparse
import email
import email.policy
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

AS_OF = "2026-12-31"
# Children run as an installed package runs: pip compiles every module to bytecode when it installs, so a user's
# `tuanjian` never compiles source at start. This machine sets PYTHONDONTWRITEBYTECODE; without bytecode each
# cold process would spend ~0.1 s compiling the tool, which no user pays. (main() compiles once before measuring.)
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
TRASH = ROOT / ".bench" / "trash"  # what fresh runs moved aside (see run_merge)
SPREADSHEETS = (".xlsx", ".ods")


# --- what runs in the child processes -----------------------------------------------------------------------


def floor_run(files: list[Path]) -> int:
    """Open every file with python-calamine and read all its sheets' cells; zips and mails unpacked in memory."""
    from python_calamine import CalamineWorkbook

    def read(wb) -> int:
        return sum(len(wb.get_sheet_by_name(s).to_python(skip_empty_area=False)) for s in wb.sheet_names)

    rows = 0
    for f in files:
        suffix = f.suffix.lower()
        if suffix in SPREADSHEETS:
            rows += read(CalamineWorkbook.from_path(str(f)))
        elif suffix == ".zip":
            with zipfile.ZipFile(f) as z:
                for info in z.infolist():
                    if info.filename.lower().endswith(SPREADSHEETS):
                        rows += read(CalamineWorkbook.from_filelike(io.BytesIO(z.read(info))))
        elif suffix == ".eml":
            msg = email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
            for part in msg.iter_attachments():
                if (part.get_filename() or "").lower().endswith(SPREADSHEETS):
                    rows += read(CalamineWorkbook.from_filelike(io.BytesIO(part.get_content())))
    return rows


def baseline_run(files: list[Path]) -> int:
    """What a user writes by hand: openpyxl opens each file and copies its named cells into one sheet."""
    import openpyxl

    out = openpyxl.Workbook()
    sheet = out.active
    for f in files:
        wb = openpyxl.load_workbook(f)
        row: list = [f.name]
        for dn in wb.defined_names.values():
            for title, ref in dn.destinations:
                if title in wb.sheetnames:
                    row.append(wb[title][ref.replace("$", "").split(":")[0]].value)
        sheet.append(row)
    out.save(Path("/tmp") / "bench-baseline.xlsx")
    return len(files)


# --- measuring ----------------------------------------------------------------------------------------------


def _tree_rss(pid: int, key: str = "VmRSS:", where: str = "status") -> int:
    """Resident memory (KiB) of a process and all its descendants: RSS, or with ("Pss:", "smaps_rollup") PSS."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/{where}") as f:
                total += next((int(line.split()[1]) for line in f if line.startswith(key)), 0)
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except (OSError, ValueError):
            continue
    return total


PSS_EVERY = 10  # samples: PSS costs the kernel a walk of the page tables, RSS is a counter


def timed(cmd: list[str], log: Path, pss: list[int] | None = None) -> tuple[float, int, int, str]:
    """Wall time, peak RSS of the process tree (KiB, sampled), peak RSS of the largest process (KiB), output;
    the tree's peak PSS (KiB, sampled less often) into `pss` when given."""
    peak = [0]
    errors = log.with_suffix(".err")
    with open(log, "wb") as sink, open(errors, "wb") as err:  # files, not pipes: a long listing must not block
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=sink, stderr=err, cwd=ROOT, env=CHILD_ENV)
        done = threading.Event()

        def sample() -> None:
            n = 0
            while not done.is_set():
                peak[0] = max(peak[0], _tree_rss(proc.pid))
                if pss is not None and n % PSS_EVERY == 0:
                    pss[0] = max(pss[0], _tree_rss(proc.pid, "Pss:", "smaps_rollup"))
                n += 1
                done.wait(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        done.set()
        sampler.join()
    out = log.read_text(encoding="utf-8", errors="replace")
    if status != 0 and not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 1 and out.lstrip().startswith("{")):
        raise SystemExit(f"{cmd[3:5]} failed ({status}): {out[-1000:]} {errors.read_text(errors='replace')[-1000:]}")
    return wall, peak[0], usage.ru_maxrss, out


def run_merge(ws_dir: Path, fresh: bool) -> dict:
    """One `tuanjian merge --json` in a fresh process: its wall time, memory and counts."""
    if fresh:  # the last run's ledger, archive, master and 退回件 moved aside, removed only when all is measured:
        # ext4 skips inodes freed in the last minute when it makes files, so removing thousands of files just before
        # a run would make that run's archiving slower than any user's (~0.4 s of 2 at 1,000 files)
        TRASH.mkdir(exist_ok=True)
        for d in (".tuanjian", "汇总", "退回"):
            if (ws_dir / d).exists():
                (ws_dir / d).rename(TRASH / f"{ws_dir.name}-{d}-{time.time_ns()}")
            if d != ".tuanjian":
                (ws_dir / d).mkdir()
    cmd = [sys.executable, "-m", "tuanjian_xlsx", "merge", "-w", str(ws_dir), "--as-of", AS_OF, "--json"]
    pss = [0]
    wall, tree, single, out = timed(cmd, ws_dir.parent / f"merge-{ws_dir.name}.log", pss)
    counts = json.loads(out)
    if fresh and counts["new"] == 0 or not fresh and counts["new"]:
        raise SystemExit(f"merge of {ws_dir.name}: {counts['new']} new files (fresh={fresh})")
    return {"wall": wall, "tree": tree, "single": single, "pss": pss[0], "valid": counts["valid"], "invalid": counts["invalid"],
            "received": counts["received"]}


def run_child(kind: str, files: list[Path], tag: str) -> float:
    listing = ROOT / ".bench" / f"{kind}-{tag}.txt"
    listing.write_text("\n".join(map(str, files)), encoding="utf-8")
    wall, *_ = timed([sys.executable, __file__, f"--_{kind}", str(listing)], ROOT / ".bench" / f"{kind}-{tag}.log")
    return wall


def measure(n: int, repeat: int, baseline_cap: int, invalid: bool, log, copies: int = 1) -> dict:
    from bench_corpus import corpus, describe

    t0 = time.perf_counter()
    ws_dir = corpus(n, 0.05, log=log, copies=copies)
    info = json.loads((ws_dir / "corpus.json").read_text(encoding="utf-8"))
    n = info["n"]
    log(f"[{n}] 语料就绪（{time.perf_counter() - t0:.0f} s）：{describe(info)}")
    entries = sorted(p for p in (ws_dir / "收件箱").rglob("*") if p.is_file())
    merges = [run_merge(ws_dir, fresh=True) for _ in range(repeat)]
    log(f"[{n}] 合并 {[round(m['wall'], 2) for m in merges]} s（有效 {merges[0]['valid']}，退回 {merges[0]['invalid']}）")
    again = [run_merge(ws_dir, fresh=False)["wall"] for _ in range(repeat)]
    log(f"[{n}] 再次合并 {[round(a, 2) for a in again]} s")
    flo = [run_child("floor", entries, str(n)) for _ in range(repeat)]
    log(f"[{n}] calamine 下限 {[round(f, 2) for f in flo]} s")
    plain = [f for f in entries if f.suffix == ".xlsx"][:baseline_cap]  # (zips and mails it could not open)
    base = [run_child("baseline", plain, str(n)) / len(plain) for _ in range(repeat)] if baseline_cap else [0.0]
    log(f"[{n}] openpyxl 循环每份 {[round(b * 1000, 1) for b in base]} ms（{len(plain)} 份）")
    row = {"n": n, "merge": statistics.median(m["wall"] for m in merges), "again": statistics.median(again),
           "floor": statistics.median(flo), "base_per": statistics.median(base), "base_files": len(plain),
           "tree_mb": max(m["tree"] for m in merges) / 1024, "single_mb": max(m["single"] for m in merges) / 1024,
           "pss_mb": max(m["pss"] for m in merges) / 1024,
           "valid": merges[0]["valid"], "invalid": merges[0]["invalid"], "corpus": describe(info)}
    if invalid:
        bad_dir = corpus(n, 0.2, log=log)
        bad = [run_merge(bad_dir, fresh=True) for _ in range(repeat)]
        row |= {"bad": statistics.median(m["wall"] for m in bad), "bad_invalid": bad[0]["invalid"],
                "bad_tree_mb": max(m["tree"] for m in bad) / 1024}
        log(f"[{n}] 五分之一有错 {[round(m['wall'], 2) for m in bad]} s（退回 {bad[0]['invalid']}）")
    return row


def table(rows: list[dict], repeat: int) -> str:
    head = ("| 份数 | 合并总耗时 | 每份 | openpyxl 循环每份 | 快几倍 | calamine 下限每份 | 相对下限 | 再次合并（无新文件） "
            "| 五分之一有错时每份 | 峰值内存 RSS 之和 | 峰值内存 PSS 之和 |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    lines = [head]
    for r in rows:
        per, flo = r["merge"] / r["n"] * 1000, r["floor"] / r["n"] * 1000
        base = f"{r['base_per'] * 1000:.1f} ms" if r["base_per"] else "—"
        times = f"{r['base_per'] * 1000 / per:.1f}×" if r["base_per"] else "—"
        bad = f"{r['bad'] / r['n'] * 1000:.2f} ms（{r['bad'] / r['merge']:.2f}×）" if "bad" in r else "—"
        lines.append(f"| {r['n']:,} | {r['merge']:.2f} s | {per:.2f} ms | {base} | {times} | {flo:.2f} ms | "
                     f"{per / flo:.1f}× | {r['again']:.2f} s | {bad} | {r['tree_mb']:.0f} MB | {r['pss_mb']:.0f} MB |")
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] in ("--_floor", "--_baseline"):
        files = [Path(p) for p in Path(sys.argv[2]).read_text(encoding="utf-8").split("\n") if p]
        (floor_run if sys.argv[1] == "--_floor" else baseline_run)(files)
        return
    ap = argparse.ArgumentParser(description="tuanjian merge 的性能基准（见文件开头的说明）")
    ap.add_argument("--sizes", default="1000,10000", help="份数，逗号分隔")
    ap.add_argument("--repeat", type=int, default=3, help="每项重复次数，取中位数")
    ap.add_argument("--huge", action="store_true", help="另测 100,000 份一次（10,000 份语料的 10 份复本）")
    ap.add_argument("--baseline-cap", type=int, default=1000, help="openpyxl 循环最多测这么多份（0 不测）")
    ap.add_argument("--no-invalid", action="store_true", help="不测五分之一有错的语料")
    args = ap.parse_args()
    (ROOT / ".bench").mkdir(exist_ok=True)
    import compileall

    compileall.compile_dir(str(ROOT / "tuanjian_xlsx"), quiet=1)  # what pip install does
    log = lambda text: print(text, flush=True)  # noqa: E731
    rows = [measure(int(s), args.repeat, args.baseline_cap, not args.no_invalid, log) for s in args.sizes.split(",")]
    if args.huge:  # the 10,000 corpus ten times over (see bench_corpus): once, it takes long
        rows.append(measure(10_000, 1, args.baseline_cap, False, log, copies=10))
    shutil.rmtree(TRASH, ignore_errors=True)
    start = time.perf_counter()
    for _ in range(5):
        subprocess.run([sys.executable, "-m", "tuanjian_xlsx", "--help"], capture_output=True, cwd=ROOT, check=True,
                       env=CHILD_ENV)
    help_s = (time.perf_counter() - start) / 5
    print()
    print(f"机器：{os.cpu_count()} 核；Python {sys.version.split()[0]}；每项 {args.repeat} 次取中位数，每次都是新进程")
    print(f"语料：{rows[0]['corpus']}")
    print(table(rows, args.repeat))
    for r in rows:
        print(f"{r['n']:,} 份：有效 {r['valid']}、退回 {r['invalid']}；峰值内存 主进程+工作进程 {r['tree_mb']:.0f} MB，"
              f"单个进程最多 {r['single_mb']:.0f} MB" + (f"；五分之一有错时 {r['bad_tree_mb']:.0f} MB（退回 "
                                                    f"{r['bad_invalid']}）" if "bad" in r else "")
              + f"；openpyxl 循环按 {r['base_files']} 份 .xlsx 测得")
    print(f"tuanjian --help：{help_s:.3f} s")


if __name__ == "__main__":
    main()
