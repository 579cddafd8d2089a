#!/usr/bin/env python3
"""Benchmark `tuanjian merge` against what a user would write by hand and against the floor of reading.

    .venv/bin/python scripts/bench_merge.py [--sizes 1000,10000] [--repeat 3] [--lo-share 0.02]

For each size N it generates N realistic submissions once (cached under .bench/): a mix of units, months and the
three forms, a share re-saved through LibreOffice (shared strings, unquoted names, as from Excel/WPS), ~4% invalid.
Then, medians over --repeat runs:
  merge      `python -m tuanjian_xlsx merge` in a fresh process on a fresh ledger (cold), end to end
  re-merge   the same inbox again (everything already in the ledger)
  baseline   an openpyxl loop: load_workbook each file, copy the named cells into one sheet, save
  floor      python-calamine opening each file and reading its cells, nothing else
  peak RSS   of the merge process
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tuanjian_xlsx.build import Filled, Prefill, build_template  # noqa: E402
from tuanjian_xlsx.plan import Plan, Workspace  # noqa: E402
from tuanjian_xlsx.periods import Period  # noqa: E402
from tuanjian_xlsx.workspace import init_workspace  # noqa: E402

AS_OF = "2026-12-31"
ORGS = ["第一中学", "实验中学", "职业学校", "工业园区", "人民医院", "城关镇", "商务区", "农商银行", "交通局", "文明实践站"]


def generate(n: int, lo_share: float, dest: Path) -> Path:
    """A workspace whose inbox holds n submissions (cached: reused when it exists)."""
    ws_dir = dest / f"ws-{n}"
    stamp = ws_dir / "specs.stamp"  # a corpus made from other template versions would all be refused: remake it
    fingerprints = ",".join(s.fingerprint for s in Plan.builtin().current_specs())
    if stamp.exists() and stamp.read_text() == fingerprints and len(list((ws_dir / "收件箱").iterdir())) >= n:
        return ws_dir
    shutil.rmtree(ws_dir, ignore_errors=True)
    init_workspace(ws_dir)
    toml = ws_dir / "tuanjian.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('start = ""', 'start = "2020-01"'), encoding="utf-8")
    ws = Workspace.load(ws_dir)
    rng = random.Random(n)
    inbox = ws_dir / "收件箱"
    visit, obs, tracker = (ws.spec(f) for f in ("visit_report", "observation_report", "target_tracker"))
    v_units, o_units, t_units = (ws.roster.units_filing(f) for f in ("visit_report", "observation_report",
                                                                      "target_tracker"))
    for i in range(n):
        year = 2020 + (i // 2000) % 7
        kind = rng.random()
        bad = rng.random() < 0.04
        if kind < 0.8:
            unit, month = rng.choice(v_units), rng.randint(1, 12)
            p = Period(year, "month", month)
            values = {"fill_date": dt.datetime(year, month, rng.randint(1, 7)), "name": "张三", "position": "书记",
                      "org_name": f"{rng.choice(ORGS)}团委{i % 97}", "visit_form": "座谈交流",
                      "cadre_count": -1 if bad else rng.randint(1, 6), "youth_count": rng.randint(3, 40),
                      "work_status": f"第{i}次：" + "开展主题团日活动，团员参与积极。" * rng.randint(1, 4),
                      "highlights": "志愿服务",
                      "problems": "经费不足", "measures": "协调支持"}
            data = build_template(visit, ws.roster, prefill=Prefill(unit, p.code, p.label), filled=[Filled(values, {})])
        elif kind < 0.9:
            unit, q = rng.choice(o_units), rng.randint(1, 4)
            p = Period(year, "quarter", q)
            values = {"fill_date": dt.datetime(year, 3 * q, 20), "department": unit.name, "participants": "王、李、张",
                      "sites": f"第一中学：主题团日（{i}）", "highlights": "规范", "problems": "" if not bad else None,
                      "measures": "整改"}
            if bad:
                values["sites"] = None
            data = build_template(obs, ws.roster, prefill=Prefill(unit, p.code, p.label), filled=[Filled(values, {})])
        else:
            unit, q = rng.choice(t_units), rng.randint(1, 4)
            p = Period(year, "quarter", q)
            values = {"fill_date": dt.datetime(year, 3 * q, 28), "_n": i}
            for t in ws.roster.tasks_for(unit.type):
                base = rng.randint(5, 40)
                if t.kind == "ratio":
                    values[f"{t.code}:done"], values[f"{t.code}:base"] = (base + 1 if bad else rng.randint(0, base)), base
                elif t.kind == "count":
                    values[f"{t.code}:done"] = rng.randint(0, 4)
                elif t.kind == "yesno":
                    values[f"{t.code}:done"] = "是"
                values[f"{t.code}:progress"] = f"按计划推进（{i}）"
            data = build_template(tracker, ws.roster, prefill=Prefill(unit, p.code, p.label),
                                  filled=[Filled(values, {})])
        (inbox / f"{i:05d}_{unit.id}_{p.code}.xlsx").write_bytes(data)
    _resave_share(inbox, lo_share, rng)
    stamp.write_text(fingerprints)
    return ws_dir


def _resave_share(inbox: Path, share: float, rng: random.Random) -> None:
    soffice = shutil.which("soffice")
    files = sorted(inbox.iterdir())
    chosen = rng.sample(files, int(len(files) * share)) if soffice else []
    out = inbox.parent / ".lo-out"
    for k in range(0, len(chosen), 200):  # LibreOffice silently stops after ~248 files in one call
        batch = chosen[k:k + 200]
        subprocess.run([soffice, "--headless", "--convert-to", "xlsx:Calc MS Excel 2007 XML", "--outdir", str(out)]
                       + [str(p) for p in batch], capture_output=True, check=False)
        for p in batch:
            if (out / p.name).exists():
                shutil.move(str(out / p.name), p)
    shutil.rmtree(out, ignore_errors=True)


def run_merge(ws_dir: Path, fresh: bool) -> tuple[float, int]:
    """Wall time and peak RSS (KiB) of one `tuanjian merge` process."""
    if fresh:
        shutil.rmtree(ws_dir / ".tuanjian", ignore_errors=True)
        for d in ("汇总", "退回"):
            shutil.rmtree(ws_dir / d, ignore_errors=True)
            (ws_dir / d).mkdir()
    cmd = [sys.executable, "-m", "tuanjian_xlsx", "merge", "-w", str(ws_dir), "--as-of", AS_OF]
    log = ws_dir.parent / f"merge-{ws_dir.name}.log"
    with open(log, "wb") as sink:  # a file, not a pipe: the listing of hundreds of 退回 lines must not block it
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    out = log.read_text(encoding="utf-8", errors="replace")
    if status != 0 or not out.startswith(("收到", "没有新文件")):
        raise SystemExit(f"merge failed: {out[-2000:]}")
    return wall, usage.ru_maxrss


def baseline(files: list[Path]) -> float:
    """What a user writes by hand: openpyxl opens each file and copies its named cells into one sheet."""
    import openpyxl

    start = time.perf_counter()
    out = openpyxl.Workbook()
    sheet = out.active
    for f in files:
        wb = openpyxl.load_workbook(f)
        row = [f.name]
        for dn in wb.defined_names.values():
            for title, ref in dn.destinations:
                if title in wb.sheetnames:
                    cell = wb[title][ref.replace("$", "").split(":")[0]]
                    row.append(cell.value)
        sheet.append(row)
    out.save(Path("/tmp") / "bench-baseline.xlsx")
    return time.perf_counter() - start


def floor(files: list[Path]) -> float:
    from python_calamine import CalamineWorkbook

    start = time.perf_counter()
    for f in files:
        wb = CalamineWorkbook.from_path(str(f))
        for name in wb.sheet_names:
            wb.get_sheet_by_name(name).to_python(skip_empty_area=False)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000,10000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--lo-share", type=float, default=0.02)
    ap.add_argument("--baseline-cap", type=int, default=2000, help="openpyxl baseline on at most this many files")
    args = ap.parse_args()
    cache = ROOT / ".bench"
    cache.mkdir(exist_ok=True)
    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        t0 = time.perf_counter()
        ws_dir = generate(n, args.lo_share, cache)
        print(f"[{n}] 语料就绪（{time.perf_counter() - t0:.0f} s）", flush=True)
        files = sorted((ws_dir / "收件箱").iterdir())
        merges = [run_merge(ws_dir, fresh=True) for _ in range(args.repeat)]
        again = [run_merge(ws_dir, fresh=False)[0] for _ in range(args.repeat)]
        sample = files[: args.baseline_cap]
        base = statistics.median(baseline(sample) for _ in range(max(1, args.repeat // 2))) / len(sample)
        flo = statistics.median(floor(files) for _ in range(args.repeat)) / len(files)
        wall = statistics.median(m[0] for m in merges)
        rss = max(m[1] for m in merges) / 1024
        rows.append((n, wall, wall / n * 1000, base * 1000, flo * 1000, statistics.median(again), rss, len(sample)))
        print(f"[{n}] merge {wall:.2f} s", flush=True)
    start = time.perf_counter()
    for _ in range(5):
        subprocess.run([sys.executable, "-m", "tuanjian_xlsx", "--help"], capture_output=True, cwd=ROOT, check=True)
    help_s = (time.perf_counter() - start) / 5
    print()
    print(f"机器：{os.cpu_count()} 核；Python {sys.version.split()[0]}；重复 {args.repeat} 次取中位数")
    print(f"{'份数':>7} {'合并总耗时':>10} {'每份 ms':>8} {'openpyxl 每份 ms':>16} {'倍数':>6} {'calamine 下限 ms':>16} "
          f"{'相对下限':>8} {'再次合并 s':>10} {'峰值内存 MB':>11}")
    for n, wall, per, base, flo, again, rss, _sampled in rows:
        print(f"{n:>7} {wall:>10.2f} {per:>8.3f} {base:>16.3f} {base / per:>6.1f} {flo:>16.3f} {per / flo:>8.2f} "
              f"{again:>10.2f} {rss:>11.0f}")
    print(f"tuanjian --help：{help_s:.3f} s（openpyxl 基线按前 {rows[0][7]} 份测得）")


if __name__ == "__main__":
    main()
