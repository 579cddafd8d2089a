#!/usr/bin/env python3
"""Time one small submission: tuanjian's reader (calamine + XML parts), reader + validation, and
openpyxl.load_workbook alone (what a hand-written loop pays before it does anything).

    .venv/bin/python scripts/bench_read.py [N]
Prints the median per-file cost over 5 rounds of N reads (default 300) of a filled 附件1, plain and LibreOffice-resaved
when soffice is available.
"""

from __future__ import annotations

import datetime as dt
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import openpyxl

from tuanjian_xlsx.plan import Plan
from tuanjian_xlsx.read import open_package, read_forms
from tuanjian_xlsx.validate import validate_file


def filled_file(tmp: Path) -> Path:
    ws = Plan.builtin()
    src = ws.registry.template_path(ws.spec("visit_report"))
    wb = openpyxl.load_workbook(src)
    sh = wb.worksheets[0]
    for ref, v in {"B4": "源汇区团委", "B5": "2026-03", "D5": dt.datetime(2026, 3, 5), "B6": "张三", "D6": "部长",
                   "B7": "第一中学团委", "B8": "座谈交流", "C9": 2, "C10": 15, "B11": "开展主题团日" * 20, "B12": "志愿服务"}.items():
        sh[ref] = v
    out = tmp / "filled.xlsx"
    wb.save(out)
    return out


def per_file_ms(fn, path: Path, n: int) -> float:
    rounds = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(n):
            fn(path)
        rounds.append((time.perf_counter() - t) / n * 1000)
    return statistics.median(rounds)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    workspace = Plan.builtin()
    spec = workspace.spec("visit_report")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        files = {"openpyxl 写出": filled_file(tmp)}
        soffice = shutil.which("soffice")
        if soffice:
            subprocess.run([soffice, "--headless", "--convert-to", "xlsx:Calc MS Excel 2007 XML", "--outdir",
                            str(tmp / "lo"), str(files["openpyxl 写出"])], capture_output=True, check=True)
            files["LibreOffice 另存"] = tmp / "lo" / "filled.xlsx"

        def ours(p):
            pkg = open_package(p)
            pkg.passport()
            return read_forms(pkg, spec)

        def checked(p):
            result = validate_file(p, workspace)
            assert result.valid, [i.render() for i in result.issues]

        print(f"{'文件':<14}{'读取 ms':>10}{'读取+校验 ms':>14}{'openpyxl 打开 ms':>18}{'倍数':>7}")
        for label, path in files.items():
            a = per_file_ms(ours, path, n)
            v = per_file_ms(checked, path, n)
            b = per_file_ms(lambda p: openpyxl.load_workbook(p), path, max(n // 10, 10))
            print(f"{label:<14}{a:>10.3f}{v:>14.3f}{b:>18.3f}{b / v:>7.1f}")


if __name__ == "__main__":
    main()
