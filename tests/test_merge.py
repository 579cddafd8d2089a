"""From inbox to master: ledger, supersession, statuses, the master's formulas and totals, and nothing lost."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from tuanjian_xlsx.clock import BEIJING
from tuanjian_xlsx.cli import cli
from tuanjian_xlsx.demo import AS_OF
from tuanjian_xlsx.merge import merge
from tuanjian_xlsx.normalise import fold

NOW = dt.datetime.combine(AS_OF, dt.time(9, 0))


def _copy(demo, tmp_path) -> Path:
    dst = tmp_path / "ws"
    shutil.copytree(demo.root, dst)
    return dst


def test_demo_command(tmp_path):
    r = CliRunner().invoke(cli, ["demo", str(tmp_path / "演示")])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[1] == "收到 153 份 · 有效 152 · 退回 1 · 重复 0 · 被替换 1 · 未报 7 家"
    assert (tmp_path / "演示" / "汇总" / "汇总表.xlsx").exists()
    assert any(line.startswith("退回件：") and line.endswith("临颍县团委_2026-04_附件1_团干部走基层情况报告单_退回.xlsx")
               for line in lines)


def test_every_formula_recalculates_to_its_cached_value(demo, libreoffice, tmp_path):
    checked, bad = libreoffice.disagreements(demo.merge.master, tmp_path / "lo")
    assert not bad, bad[:10]
    assert checked > 1000


def _independent_visits(manifest) -> dict[tuple[str, str], list[int]]:
    """Per unit and month, from what the demo sent: invalid files out; a later file's visits to a place replace an
    earlier file's visits to that place, while two visits to one place in the same file both count."""
    visits: dict[tuple, list[dict]] = {}
    for m in sorted(manifest, key=lambda m: m["received"]):
        if m["form_id"] != "visit_report":
            continue
        if any(not isinstance(r["youth_count"], int) for r in m["records"]):  # the one sent with 十几人
            continue
        places = {fold(r["org_name"]) for r in m["records"]}
        for place in places:
            visits[(m["unit"], m["period"], place)] = [r for r in m["records"] if fold(r["org_name"]) == place]
    totals: dict[tuple[str, str], list[int]] = {}
    for (unit, period, _), rs in visits.items():
        t = totals.setdefault((unit, period), [0, 0, 0])
        for r in rs:
            t[0] += 1
            t[1] += r["cadre_count"]
            t[2] += r["youth_count"]
    return totals


def test_visit_totals_equal_totals_from_the_submissions(demo):
    expected = _independent_visits(demo.manifest)
    ws = openpyxl.load_workbook(demo.merge.master, data_only=True)["走基层统计"]
    got = {}
    for row in ws.iter_rows(min_row=2, values_only=True):
        unit, _, _, label, key, n, cadres, youth, _, _ = row
        if n:
            got[(unit, f"{key // 100}-{key % 100:02d}")] = [n, cadres, youth]
    assert got == expected
    assert sum(v[0] for v in got.values()) == sum(1 for _ in openpyxl.load_workbook(
        demo.merge.master)["走基层明细"].iter_rows(min_row=2))


def test_visit_minimum_says_not_due_for_a_month_not_yet_due_and_nothing_for_a_type_not_assessed(demo, tmp_path):
    """走基层统计's 是否达标: short of the minimum, 未到期 while the month's form is not yet due (more visits may
    come), 未达标 once it is; "—" for a unit type whose 每月至少走访次数 is 0 (not assessed), never 达标 for nothing."""
    root = _copy(demo, tmp_path)
    book = root / "名单与目标.xlsx"
    wb = openpyxl.load_workbook(book)
    for c in wb["单位类型"]["A"]:
        if c.value == "直属单位":
            wb["单位类型"][f"B{c.row}"] = 0
    wb.save(book)
    master = merge(root, as_of=AS_OF, now=NOW).master
    rows = {(r[0], r[3]): r for r in openpyxl.load_workbook(master, data_only=True)["走基层统计"].iter_rows(
        min_row=2, values_only=True)}
    # 源汇区团委 (县区团委: due the 10th of the next month): July is not yet due on 15 July, June is
    july, june = rows[("源汇区团委", "2026年7月")], rows[("源汇区团委", "2026年6月")]
    assert (july[5], july[8], july[9]) == (0, 1, "未到期")
    assert june[5] >= 1 and june[9] == "达标"
    late = [r for (unit, _), r in rows.items() if r[2] != "直属单位" and r[5] == 0 and r[9] == "未达标"]
    assert late and all(r[3] != "2026年7月" for r in late)
    direct = [r for r in rows.values() if r[2] == "直属单位"]
    assert direct and all(r[8] is None and r[9] == "—" for r in direct)


def test_the_on_time_rate_says_which_months_it_counts(demo):
    """总览's 各单位按时报送率 counts every period from the reporting start: its heading says from when, to when."""
    cells = [c.value for row in openpyxl.load_workbook(demo.merge.master)["总览"].iter_rows() for c in row]
    assert f"各单位按时报送率（全部报表，2026年1月起至统计日 {AS_OF.isoformat()}，不含未到期的）" in cells


def test_status_says_files_wait_in_the_inbox_and_sends_no_reminder_until_they_are_merged(demo, tmp_path, templates):
    """A unit's file dropped in the inbox and not merged yet: `status` still lists the unit as 未报 (it reads the
    ledger), so it says files are waiting, and `status --send` mails no 催报 until a merge has taken them. A file
    merged moments after it was saved (so not in merge's stat cache) is not taken for waiting."""
    from conftest import fill
    from test_intake import VISIT

    root = _copy(demo, tmp_path)
    fill(templates["visit_report"], root / "收件箱" / "舞阳补报.xlsx",
         {**VISIT, "报送单位": "舞阳县团委", "报送期": "2026-05", "填表时间": dt.datetime(2026, 5, 20)})
    args = ["status", "-w", str(root), "--as-of", AS_OF.isoformat(), "--period", "2026-05"]
    r = CliRunner().invoke(cli, args)
    def listed(output: str, state: str) -> bool:
        return any(line.strip().startswith(f"{state}：") and "舞阳县团委" in line for line in output.splitlines())

    assert r.exit_code == 0 and "收件箱里有 1 份文件还没有汇总：舞阳补报.xlsx" in r.output and listed(r.output, "未报")
    r = CliRunner().invoke(cli, [*args, "--send"])
    assert r.exit_code != 0 and "收件箱里有 1 份文件还没有汇总" in r.output and "Traceback" not in r.output
    big = root / "收件箱" / "大文件.xlsx"  # refused for its size, by path: taken, never waiting for ever
    with open(big, "wb") as f:
        f.truncate(50 * 1024 * 1024 + 1)
    os.utime(big, (time.time() - 3600, time.time() - 3600))
    merge(root, as_of=AS_OF, now=NOW)
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0 and "还没有汇总" not in r.output and listed(r.output, "逾期")


def test_the_charts_label_rates_as_their_cells_show_them(demo):
    """A chart's labels show a rate as its cell does (0.00%): 99.6% labelled "100%" beside a 100% target read as
    met, though the cell says 未达标."""
    import re
    import zipfile

    with zipfile.ZipFile(demo.merge.master) as z:
        charts = [z.read(n).decode() for n in z.namelist() if n.startswith("xl/charts/chart")]
    labels = [re.search(r'<c:numFmt formatCode="([^"]*)"', c[c.index("<c:dLbls>"):]) for c in charts if "<c:dLbls>" in c]
    assert labels and all(m is not None and m.group(1) == "0.00%" for m in labels)


def test_resubmission_supersedes_and_sources_say_so(demo):
    ws = openpyxl.load_workbook(demo.merge.master, data_only=True)["来源"]
    rows = {r[0]: r for r in ws.iter_rows(min_row=2, values_only=True)}
    first = next(n for n in rows if n.startswith("源汇区团委_2026-05_附件1_走基层"))
    assert rows[first][8] == "被替换" and rows[first][9].startswith("源汇区团委_2026-05_附件1_重报")
    assert rows[first][3] == "邮箱到达"  # the demo's files stand for mails fetched from the mailbox
    bad = next(n for n in rows if n.startswith("临颍县团委_2026-04_附件1_初报"))
    assert rows[bad][8] == "退回"
    resent = next(m for m in demo.manifest if m["tag"] == "重报")
    detail = openpyxl.load_workbook(demo.merge.master, data_only=True)["走基层明细"]
    head = [c.value for c in detail[1]]
    org, cadres = head.index("走访团组织名称"), head.index("团干部")
    mine = [r for r in detail.iter_rows(min_row=2, values_only=True)
            if r[0] == "源汇区团委" and r[3] == "2026年5月" and r[org] == resent["records"][0]["org_name"]]
    assert [r[cadres] for r in mine] == [resent["records"][0]["cadre_count"]]


def test_a_file_replaced_in_part_says_so_in_the_sources(tmp_path, templates):
    """附件1 is replaced visit by visit: a file of two visits, one of them sent again later, still counts for the
    other — 来源 says 部分被替换 and names the later file (it said 有效 and named nothing)."""
    from conftest import beside_label, fill
    from test_intake import VISIT

    from tuanjian_xlsx.workspace import init_workspace

    root = tmp_path / "ws"
    init_workspace(root)
    two = fill(templates["visit_report"], tmp_path / "两次.xlsx", {**VISIT, "走访团组织名称": "一中团委"})
    wb = openpyxl.load_workbook(two)
    other = wb.copy_worksheet(wb.worksheets[0])
    other[beside_label(other, "走访团组织名称")] = "二中团委"
    wb.save(root / "收件箱" / "两次.xlsx")
    fill(templates["visit_report"], root / "收件箱" / "更正.xlsx", {**VISIT, "走访团组织名称": "一中团委", "团干部": 5})
    received = {root / "收件箱" / "两次.xlsx": dt.datetime(2026, 3, 5, 9), root / "收件箱" / "更正.xlsx": dt.datetime(2026, 3, 6, 9)}
    result = merge(root, as_of=dt.date(2026, 4, 20), now=dt.datetime(2026, 4, 20, 9), received=received)
    assert result.valid == 2
    book = openpyxl.load_workbook(result.master, data_only=True)
    sources = {r[0]: r for r in book["来源"].iter_rows(min_row=2, values_only=True)}
    head = [c.value for c in book["来源"][1]]
    state, by = head.index("状态"), head.index("被替换为")
    assert (sources["两次.xlsx"][state], sources["两次.xlsx"][by]) == ("部分被替换", "更正.xlsx")
    assert (sources["更正.xlsx"][state], sources["更正.xlsx"][by]) == ("有效", None)
    visits = [r for r in book["走基层统计"].iter_rows(min_row=2, values_only=True) if r[0] == "源汇区团委" and r[5]]
    assert [(r[3], r[5], r[6]) for r in visits] == [("2026年3月", 2, 5 + VISIT["团干部"])]


def test_statuses_from_the_roster_and_deadlines(demo):
    by = {(i.unit, i.form_id, i.period.code): i.status for i in demo.merge.items}
    assert by[("舞阳县团委", "visit_report", "2026-05")] == "missing"
    assert by[("召陵区团委", "visit_report", "2026-03")] == "late"
    assert by[("源汇区团委", "visit_report", "2026-03")] == "on_time"
    corrected = next(m for m in demo.manifest if m["tag"] == "更正")  # the invalid first file does not count
    due = dt.date(2026, 5, 10)
    assert by[("临颍县团委", "visit_report", "2026-04")] == ("on_time" if corrected["received"].date() <= due else "late")
    assert by[("源汇区团委", "visit_report", "2026-07")] == "not_due"  # due 2026-08-10
    assert ("市青年创业服务中心（市志愿者服务中心）", "target_tracker", "2026-Q1") not in by  # 直属单位 files no tracker


def test_second_merge_changes_nothing_and_parses_nothing(demo, tmp_path):
    root = _copy(demo, tmp_path)
    before = (root / "汇总" / "汇总表.xlsx").read_bytes()
    parsed: list = []
    again = merge(root, as_of=AS_OF, now=NOW, parse_counter=parsed)
    assert parsed == [] and again.duplicates == again.received == 153 and again.valid == 0
    assert again.summary() == "没有新文件（已登记过的 153 份未重复计数） · 未报 7 家"
    assert again.master.read_bytes() == before  # same ledger, same configuration, same date: same master
    assert (root / "汇总" / "汇总表.bak.xlsx").read_bytes() == before


def test_a_duplicate_under_another_name_is_counted_once(demo, tmp_path):
    root = _copy(demo, tmp_path)
    src = next((root / "收件箱").glob("组织部_2026-03_*"))
    extra = tmp_path / "extra"
    extra.mkdir()
    shutil.copy(src, extra / "再发一次.xlsx")
    result = merge(root, [extra], as_of=AS_OF, now=NOW)
    assert (result.received, result.duplicates, result.valid) == (1, 1, 0)
    con = sqlite3.connect(root / ".tuanjian" / "ledger.sqlite")
    assert con.execute("SELECT COUNT(*) FROM files").fetchone()[0] == 153
    assert con.execute("SELECT COUNT(*) FROM sightings").fetchone()[0] == 154
    archived = list((root / ".tuanjian" / "archive").iterdir())
    assert len(archived) == 153 and all(p.name[:64].isalnum() for p in archived)


def test_merge_cli_json_and_summary(demo, tmp_path):
    root = _copy(demo, tmp_path)
    r = CliRunner().invoke(cli, ["merge", "-w", str(root), "--as-of", AS_OF.isoformat(), "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert set(data) == {"ok", "master", "received", "valid", "invalid", "duplicates", "superseded", "missing", "late",
                         "new", "received_time_corrected", "notes"}
    assert {"unit": "舞阳县团委", "form_id": "visit_report", "period": "2026-05"} in data["missing"]
    late = next(x for x in data["late"] if x["unit"] == "召陵区团委" and x["period"] == "2026-03")
    assert late["due"] == "2026-04-10" and late["received"] > "2026-04-10"
    r = CliRunner().invoke(cli, ["merge", "-w", str(root), "--as-of", "2026-13-01"])
    assert r.exit_code == 2 and "应为日期" in r.output


def test_status_cli(demo):
    r = CliRunner().invoke(cli, ["status", "-w", str(demo.root), "--as-of", AS_OF.isoformat(), "--json"])
    data = json.loads(r.output)
    assert data["as_of"] == "2026-07-15"
    item = next(i for i in data["items"] if i["unit"] == "舞阳县团委" and i["period"] == "2026-05")
    assert item == {"unit": "舞阳县团委", "form_id": "visit_report", "period": "2026-05", "status": "missing",
                    "due": "2026-06-10", "received": None}
    r = CliRunner().invoke(cli, ["status", "-w", str(demo.root), "--as-of", AS_OF.isoformat(), "--period", "2026-05"])
    assert r.exit_code == 0
    assert "附件1 团干部走基层情况报告单 2026年5月（截止 2026-05-28 / 2026-06-10）：" in r.output
    assert "    未报：舞阳县团委" in r.output.splitlines()
    assert "舞阳县团委：截至 7月15日，您单位以下报表尚未报送：" in r.output
    r = CliRunner().invoke(cli, ["status", "-w", str(demo.root), "--as-of", AS_OF.isoformat(), "--period", "2025-12"])
    assert r.exit_code == 0 and "没有应报的报表：所问的报送期不在统计范围内" in r.output  # (not a bare heading)


def test_user_text_stays_text_in_the_master(demo, tmp_path, templates):
    from conftest import fill

    root = _copy(demo, tmp_path)
    path = fill(templates["visit_report"], tmp_path / "h.xlsx", {
        "报送单位": "组织部", "报送期": "2026-07", "填表时间": dt.datetime(2026, 7, 3), "姓名": "王", "单位职务": "部长",
        "走访团组织名称": "某团委", "走访形式": "座谈交流", "团干部": 1, "团员青年": 2,
        "基层团组织工作开展情况": "好", "基层团组织工作亮点": "多"})
    wb = openpyxl.load_workbook(path)
    cell = wb.worksheets[0]["B13"]
    cell.value, cell.data_type = '=HYPERLINK("http://example.invalid","点我")', "s"
    wb.save(path)
    result = merge(root, [path], as_of=AS_OF, now=NOW)
    detail = openpyxl.load_workbook(result.master)["走基层明细"]
    texts = [c for row in detail.iter_rows() for c in row if c.value == '=HYPERLINK("http://example.invalid","点我")']
    assert len(texts) == 1 and texts[0].data_type == "s"


def test_locked_master_goes_to_a_new_name(demo, tmp_path):
    root = _copy(demo, tmp_path)
    target = tmp_path / "锁住的汇总表.xlsx"
    target.mkdir()  # cannot be replaced, like a workbook Excel holds open on Windows
    (target / "x").write_text("x")
    result = merge(root, out=target, as_of=AS_OF, now=NOW)
    assert result.master != target and result.master.name.startswith("锁住的汇总表_")
    assert openpyxl.load_workbook(result.master)["总览"]["A1"].value.endswith("活力团建报表汇总")
    assert any("可能正在 Excel/WPS 中打开" in n.message for n in result.notes)


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and text in (proc / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def test_killed_merge_leaves_the_old_master_and_a_sound_ledger(demo, tmp_path):
    root = _copy(demo, tmp_path)
    shutil.rmtree(root / ".tuanjian")  # ingest everything again, so each run has work to be killed in
    rng = random.Random(7)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    timing = _copy(demo, tmp_path / "timing")
    shutil.rmtree(timing / ".tuanjian")
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "tuanjian_xlsx", "merge", "-w", str(timing), "--as-of", AS_OF.isoformat()],
                   env=env, capture_output=True, check=True)
    whole = time.monotonic() - start  # kill anywhere from start-up to the master's rename
    cmd = [sys.executable, "-m", "tuanjian_xlsx", "merge", "-w", str(root), "--as-of", AS_OF.isoformat()]
    for _ in range(5):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        time.sleep(rng.uniform(0.15, 1.0) * whole)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10  # its worker processes notice and leave (within a second or so)
        while _processes_mentioning(str(root)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _processes_mentioning(str(root)) == [], "worker processes outlived the killed merge"
        master = root / "汇总" / "汇总表.xlsx"
        assert openpyxl.load_workbook(master)["总览"] is not None  # the previous master, whole
        ledger = root / ".tuanjian" / "ledger.sqlite"
        if ledger.exists():  # (a kill during start-up comes before the ledger exists)
            con = sqlite3.connect(ledger)
            assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            con.close()
        archive = root / ".tuanjian" / "archive"
        if archive.exists():  # every archived original is whole: its name is its content's hash
            import hashlib

            assert all(hashlib.sha256(p.read_bytes()).hexdigest() == p.name[:64] for p in archive.iterdir()
                       if not p.name.startswith("."))  # a temporary file a kill left is not an archived original
    final = merge(root, as_of=AS_OF, now=NOW)
    con = sqlite3.connect(root / ".tuanjian" / "ledger.sqlite")
    assert con.execute("SELECT COUNT(*) FROM files").fetchone()[0] == 153  # nothing twice, nothing lost
    assert final.received == 153 and len(final.invalid) + final.valid + final.duplicates == 153
    assert openpyxl.load_workbook(final.master)["总览"]["A1"].value.endswith("活力团建报表汇总")


def test_odd_names_zero_bases_and_empty_sheets_recalculate_to_cached_values(tmp_path, libreoffice):
    """Unit names that COUNTIF would read as patterns or comparisons, a zero 基数, and a form nobody sent."""
    import openpyxl as ox

    from tuanjian_xlsx.build import Prefill, build_template
    from tuanjian_xlsx.plan import Workspace
    from tuanjian_xlsx.workspace import init_workspace

    root = tmp_path / "ws"
    init_workspace(root)
    book = root / "名单与目标.xlsx"
    wb = ox.load_workbook(book)
    names = {"A2": "团委*", "A3": ">5", "A4": "~其他", "A5": "团?"}  # ids stay; the names change
    for ref, name in names.items():
        wb["单位名单"][ref.replace("A", "B")] = name
    wb.save(book)
    ws = Workspace.load(root)
    units = ws.roster.units[:4]
    visit = ws.registry.get("visit_report", 1)
    tracker = ws.registry.get("target_tracker")
    received = {}
    for n, unit in enumerate(units):
        p = root / "收件箱" / f"{unit.id}.xlsx"
        data = build_template(visit, ws.roster, prefill=Prefill(unit, "2026-03", "2026年3月"))
        book = ox.load_workbook(__import__("io").BytesIO(data))
        sh = book[visit.sheet_name]
        for f, v in {"fill_date": dt.datetime(2026, 3, 3), "name": "甲", "position": "乙", "org_name": "丙",
                     "visit_form": "其他", "cadre_count": n + 1, "youth_count": 2 * n, "work_status": "丁",
                     "highlights": "戊"}.items():
            sh[visit.field(f).input_cell] = v
        book.save(p)
        received[p] = dt.datetime(2026, 4, 1 + n)
    t = root / "收件箱" / "tracker.xlsx"
    data = build_template(tracker, ws.roster, prefill=Prefill(units[0], "2026-Q1", "2026年第1季度"))
    book = ox.load_workbook(__import__("io").BytesIO(data))
    sh = book[tracker.sheet_name]
    sh["O3"] = dt.datetime(2026, 4, 2)
    for r, task in enumerate(ws.roster.tasks_for(units[0].type), start=tracker.header_row + 1):
        if task.kind in ("ratio", "growth"):
            sh[f"K{r}"], sh[f"L{r}"] = 0, 0  # 基数 0: rates blank, never #DIV/0!
        elif task.kind == "count":
            sh[f"K{r}"] = 1
        elif task.kind == "yesno":
            sh[f"K{r}"] = "是"
        sh[f"O{r}"] = "进行中"
    book.save(t)
    received[t] = dt.datetime(2026, 4, 5)
    result = merge(root, as_of=dt.date(2026, 4, 20), now=dt.datetime(2026, 4, 20, 9), received=received)
    master = result.master
    ours, formulas = ox.load_workbook(master, data_only=True), ox.load_workbook(master)
    theirs = ox.load_workbook(libreoffice.convert(master, tmp_path / "lo"), data_only=True)
    for sheet in formulas.worksheets:
        for row in sheet.iter_rows():
            for c in row:
                if isinstance(c.value, str) and c.value.startswith("="):
                    a, b = ours[sheet.title][c.coordinate].value, theirs[sheet.title][c.coordinate].value
                    assert (a in (None, "") and b in (None, "")) or a == pytest.approx(b), (sheet.title, c.coordinate, a, b)
    stats = ours["走基层统计"]
    got = {r[0]: r[5] for r in stats.iter_rows(min_row=2, values_only=True) if r[3] == "2026年3月"}
    assert [got[u.name] for u in units] == [1, 1, 1, 1]


def test_remerge_in_place_keeps_the_master_and_parses_nothing(demo, tmp_path):
    root = _copy(demo, tmp_path)
    first = merge(root, as_of=AS_OF, now=NOW)  # in this folder, the ledger now knows which master it made
    stamp = first.master.stat().st_mtime_ns
    parsed: list = []
    again = merge(root, as_of=AS_OF, now=NOW, parse_counter=parsed)
    assert parsed == [] and again.master == first.master and first.master.stat().st_mtime_ns == stamp
    assert (again.duplicates, again.valid, len(again.invalid)) == (153, 0, 0)
    later = merge(root, as_of=AS_OF + dt.timedelta(days=30), now=NOW)  # another date: a new master
    assert later.master.stat().st_mtime_ns != stamp


def test_a_large_run_keeps_what_was_wrong_with_each_file_but_not_every_record(tmp_path, templates, monkeypatch):
    """Past KEEP_WHOLE invalid files in one run, a result keeps its issues (the report lists every one) but lets its
    records go once the 退回件 is written; replies read such a file's archived original again."""
    from conftest import fill
    from test_intake import VISIT

    import tuanjian_xlsx.merge as merging
    from tuanjian_xlsx.api import Merged
    from tuanjian_xlsx.workspace import init_workspace

    monkeypatch.setattr(merging, "KEEP_WHOLE", 1)
    root = tmp_path / "ws"
    init_workspace(root)
    for n in range(3):  # text in a count cell: invalid
        fill(templates["visit_report"], root / "收件箱" / f"{n}.xlsx", {**VISIT, "走访团组织名称": f"第{n}中学团委", "团干部": "很多"})
    result = merge(root, as_of=dt.date(2026, 4, 20), now=dt.datetime(2026, 4, 1, 9))
    bad = result.invalid
    assert len(bad) == 3 and len(result.returns) == 3 and [i.result.partial for i in bad if i.result].count(False) == 1
    for i in bad:
        assert i.result is not None and any(x.code == "vague-number" for x in i.result.issues)
        assert bool(i.result.records) != i.result.partial
    assert sum(line.startswith("  退回  ") for line in Merged(merge=result).lines()) == 3


def test_returns_made_by_their_own_workers_are_the_ones_made_here_and_a_worker_killed_costs_none(tmp_path, templates,
                                                                                              monkeypatch):
    """退回件 are made by worker processes after the checking (while the master renders), or at once when
    RETURNS_HELD records are waiting: each is the workbook this process would make, they are numbered in the order
    the files came, and each is recorded as returned (the next run makes none). One whose making kills its worker
    (twice) gets its message alone, and the others are made as ever."""
    from conftest import fill
    from test_intake import VISIT

    import tuanjian_xlsx.merge as merging
    import tuanjian_xlsx.returns as returning
    from tuanjian_xlsx.plan import Workspace
    from tuanjian_xlsx.workspace import init_workspace

    monkeypatch.setattr(merging, "RETURNS_HELD", 4)
    monkeypatch.setattr(merging, "BATCH", 5)  # two lots: 5 files at once, then 4 (after the first is written)
    here, made = os.getpid(), returning.prepare_return

    def killing(result, ws):
        if os.getpid() != here and result.file.startswith("2"):
            (tmp_path / f"killed-{os.getpid()}").touch()
            os.abort()
        return made(result, ws)

    monkeypatch.setattr(returning, "prepare_return", killing)
    lots, start = [], merging._Returns.start

    def starting(self):  # how many lots are being written when another is handed over: memory stays flat
        if self._waiting:
            lots.append(len(self._writing))
        start(self)

    monkeypatch.setattr(merging._Returns, "start", starting)
    root = tmp_path / "ws"
    init_workspace(root)
    for n in range(9):  # text in a count cell: invalid, one unit and period, so numbered _2 … _9 in order
        fill(templates["visit_report"], root / "收件箱" / f"{n}.xlsx", {**VISIT, "走访团组织名称": f"第{n}中学团委", "团干部": "很多"})
    result = merge(root, as_of=dt.date(2026, 4, 20), now=dt.datetime(2026, 4, 1, 9))
    assert [p.source for p in result.returns] == [f"{n}.xlsx" for n in range(9)] and lots == [0, 0]
    assert len(list(tmp_path.glob("killed-*"))) == 2  # (a worker lost is replaced, and the file tried once more)
    stems = [p.message.stem for p in result.returns]
    assert stems == [stems[0]] + [f"{stems[0]}_{n}" for n in range(2, 10)]
    ws = Workspace.load(root)
    for n, (item, piece) in enumerate(zip(result.invalid, result.returns)):
        assert item.result is not None
        if n == 2:  # its message, saying the workbook could not be made
            assert piece.workbook is None and "未能生成退回件表格" in piece.message.read_text(encoding="utf-8-sig")
            continue
        assert returning.build_return(item.result, ws, piece.message.stem)[0] == piece.workbook.read_bytes()
        sheet = openpyxl.load_workbook(piece.workbook).worksheets[1]
        assert f"第{n}中学团委" in {c.value for row in sheet.iter_rows() for c in row}
    again = merge(root, as_of=dt.date(2026, 4, 20), now=dt.datetime(2026, 4, 1, 10))
    assert again.returns == [] and len(list((root / "退回").glob("*.txt"))) == 9


@pytest.mark.parametrize("written", [1, 6])
def test_a_run_killed_while_the_master_renders_leaves_no_return_to_be_written_twice(tmp_path, templates, written):
    """退回件 are written while the master renders, each recorded as written as soon as it is on disk, each named
    in the ledger before any is written: a run killed then — even with some half way, or still being written by a
    worker that has not yet noticed — leaves none for the next run to write a second time under the next number."""
    from conftest import fill
    from test_intake import VISIT

    from tuanjian_xlsx.workspace import init_workspace

    root = tmp_path / "ws"
    init_workspace(root)
    for n in range(6):
        fill(templates["visit_report"], root / "收件箱" / f"{n}.xlsx", {**VISIT, "走访团组织名称": f"第{n}中学团委", "团干部": "很多"})
    script = f"""
import os, signal, sys, time
from pathlib import Path
import tuanjian_xlsx.master as master
from tuanjian_xlsx.merge import merge

def render(*args, **kwargs):  # killed in the middle of the master, once that many 退回件 are on disk
    while len(list(Path({str(root / "退回")!r}).glob("*.txt"))) < {written}:
        time.sleep(0.005)
    os.kill(os.getpid(), signal.SIGKILL)

master.render_master = render
merge(Path({str(root)!r}))
"""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    time.sleep(1.5)  # a worker still holding jobs writes them until it sees its merge gone
    again = merge(root, as_of=dt.date(2026, 4, 20), now=dt.datetime(2026, 4, 1, 10))
    assert merge(root, as_of=dt.date(2026, 4, 20), now=dt.datetime(2026, 4, 1, 11)).returns == []
    assert {p.message.name for p in again.returns} <= {p.name for p in (root / "退回").glob("*.txt")}
    assert sorted(p.name for p in (root / "退回").iterdir()) == sorted(
        f"源汇区团委_2026-03_附件1_团干部走基层情况报告单_退回{n}.{ext}" for n in ["", *(f"_{k}" for k in range(2, 7))]
        for ext in ("txt", "xlsx"))


def test_a_second_merge_of_a_workspace_waits_for_the_first_and_makes_no_second_return(tmp_path, templates):
    """A scheduled watch's merge and a manual one at once: the second waits for the first to finish (it held the
    ledger while its master rendered and its 退回件 were written), then finds everything recorded — one 退回件 per
    file, not a second copy under the next number. One that waits too long says who holds the workspace."""
    from conftest import fill
    from test_intake import VISIT

    import tuanjian_xlsx.merge as merging
    from tuanjian_xlsx.issues import TuanjianError
    from tuanjian_xlsx.workspace import init_workspace

    root = tmp_path / "ws"
    init_workspace(root)
    for n in range(6):
        fill(templates["visit_report"], root / "收件箱" / f"{n}.xlsx", {**VISIT, "走访团组织名称": f"第{n}中学团委", "团干部": "很多"})
    script = f"""
import time
from pathlib import Path
import tuanjian_xlsx.master as master
from tuanjian_xlsx.merge import merge

render = master.render_master
def slow(*args, **kwargs):  # a master that takes a while: the other merge comes meanwhile
    Path({str(tmp_path / "rendering")!r}).touch()
    time.sleep(2)
    return render(*args, **kwargs)

master.render_master = slow
merge(Path({str(root)!r}))
"""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    first = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (tmp_path / "rendering").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.raises(TuanjianError) as refused, merging._one_at_a_time(root, wait=0.5):
        pass
    assert refused.value.issues[0].code == "merge-running" and "tuanjian merge，进程" in refused.value.issues[0].message
    second = merge(root)  # waits for the first
    assert first.wait(timeout=60) == 0, first.stderr.read() if first.stderr else ""
    assert second.returns == [] and second.received == 6 and second.duplicates == 6
    assert len(list((root / "退回").glob("*.txt"))) == 6


def test_a_reply_for_a_result_past_keep_whole_attaches_the_same_return(tmp_path, templates, monkeypatch):
    """A result whose records were let go is read again from the archive for its reply, keeping what was found when
    it arrived: the attached 退回件 says what the one in 退回/ says — neither says the sender is not on the roster
    (staff's note: it went to that sender, with the unit's own addresses in it)."""
    import io
    from email.message import EmailMessage
    from email.utils import format_datetime

    from conftest import fill
    from test_intake import VISIT, with_address

    import tuanjian_xlsx.merge as merging
    from tuanjian_xlsx.plan import Workspace
    from tuanjian_xlsx.replies import answer

    monkeypatch.setattr(merging, "KEEP_WHOLE", 0)
    root = with_address(tmp_path / "ws")
    msg = EmailMessage()
    msg["Subject"], msg["From"], msg["To"] = "走基层", "someone@else.example", "lhtswzxb@163.com"
    msg["Date"] = format_datetime(dt.datetime(2026, 4, 19, 9).replace(tzinfo=BEIJING))
    msg.set_content("请查收。")
    bad = fill(templates["visit_report"], tmp_path / "b.xlsx", {**VISIT, "团干部": -2}).read_bytes()
    msg.add_attachment(bad, maintype="application", subtype="octet-stream", filename="表.xlsx")
    (root / "收件箱" / "来信.eml").write_bytes(bytes(msg))
    result = merge(root, as_of=dt.date(2026, 4, 20), now=dt.datetime(2026, 4, 20, 9))
    (item,) = result.invalid
    assert item.result is not None and item.result.partial
    fresh = {i.sha256: i.result for i in result.ingested if i.outcome == "new" and i.result is not None}
    (reply,) = answer(Workspace.load(root), now=dt.datetime(2026, 4, 20, 9), dry_run=True, results=fresh).would

    def cells(book) -> dict:
        return {sh.title: {(c.coordinate, c.value) for row in sh.iter_rows() for c in row if c.value is not None}
                for sh in book.worksheets}

    (attached,) = [data for name, data in reply.attachments if name.endswith(".xlsx")]
    (written,) = (root / "退回").glob("*.xlsx")
    assert cells(openpyxl.load_workbook(io.BytesIO(attached))) == cells(openpyxl.load_workbook(written))
    assert not any("someone@else.example" in str(v)
                   for _, v in set().union(*cells(openpyxl.load_workbook(written)).values()))


def test_a_reply_never_tried_and_now_too_late_is_not_said_to_have_failed(templates, tmp_path):
    """A file merged without --reply and, days later, too old for an automatic reply: the list says it was never
    sent (it said 此前一直未能发出, as if sending had been tried and failed)."""
    from conftest import fill
    from test_intake import VISIT, with_address
    from tuanjian_xlsx.plan import Workspace
    from tuanjian_xlsx.replies import answer

    root = with_address(tmp_path / "ws")
    fill(templates["visit_report"], root / "收件箱" / "表.xlsx", VISIT)
    merge(root, as_of=dt.date(2026, 4, 10), now=dt.datetime(2026, 4, 10, 9))
    report = answer(Workspace.load(root), now=dt.datetime(2026, 4, 30, 9), dry_run=True)
    (line,) = [line for line in report.lines() if line.startswith("  不再回复")]
    assert "一直没有发过" in line and "未能发出" not in line


def test_a_changed_unit_type_or_deadline_that_moves_past_due_dates_is_said(demo, tmp_path):
    """Staff who change a unit's type (or a deadline) in 名单与目标.xlsx meaning "from now on" are told that periods
    already due were judged again by the new date — which 按时 became 逾期 — not left to find a changed master."""
    root = _copy(demo, tmp_path)
    before = {(i.unit, i.form_id, i.period.code): i for i in demo.merge.items}
    wb = openpyxl.load_workbook(root / "名单与目标.xlsx")
    sheet = wb["单位名单"]
    row = next(c.row for c in sheet["B"] if c.value == "西城区团工委")
    assert sheet.cell(row, 3).value == "功能区团工委"
    sheet.cell(row, 3).value = "机关部室"  # due earlier in the month than a 功能区团工委's
    wb.save(root / "名单与目标.xlsx")
    moved = merge(root, as_of=AS_OF, now=NOW)
    (note,) = [n for n in moved.notes if n.code == "due-changed"]
    after = {(i.unit, i.form_id, i.period.code): i for i in moved.items}
    flipped = [k for k, i in after.items() if k[0] == "西城区团工委" and k in before
               and (before[k].status, i.status) == ("on_time", "late")]
    assert flipped, "the demo has on-time forms of 西城区团工委 that the earlier deadline makes late"
    unit, form, period = flipped[0]
    assert f"西城区团工委 {before[flipped[0]].period.label}" in note.message and "（按时 → 逾期）" in note.message
    assert f"截止日 {before[flipped[0]].due.isoformat()} → {after[flipped[0]].due.isoformat()}" in note.message
    assert f"其中 {len(flipped)} 项由按时变为逾期" in note.message
    again = merge(root, as_of=AS_OF, now=NOW)  # said once: nothing moved since
    assert not [n for n in again.notes if n.code == "due-changed"]


def test_a_unit_taken_off_the_roster_keeps_its_detail_rows_marked_as_such(demo, tmp_path):
    """A unit removed from 单位名单 kept its rows in 走基层明细 with 单位序号 and 单位类型 blank, no longer counted in
    走基层统计 and nothing saying why: its rows say the unit is no longer on the roster."""
    root = _copy(demo, tmp_path)
    wb = openpyxl.load_workbook(root / "名单与目标.xlsx")
    sheet = wb["单位名单"]
    row = next(c.row for c in sheet["B"] if c.value == "西城区团工委")
    sheet.delete_rows(row)
    wb.save(root / "名单与目标.xlsx")
    result = merge(root, as_of=AS_OF, now=NOW)
    detail = openpyxl.load_workbook(result.master, data_only=True)["走基层明细"]
    head = [c.value for c in detail[1]]
    gone = [r for r in detail.iter_rows(min_row=2, values_only=True) if r[0] == "西城区团工委"]
    assert gone and all(r[head.index("单位类型")] == "已不在名单中" for r in gone)


def test_a_word_copy_in_the_inbox_holds_the_reminders_until_a_merge_has_named_it(demo, tmp_path):
    """A unit that answered with a Word copy is not chased by `status --send` before a merge has told staff of
    the file (the note names it once); after that, the reminder goes as for any unit that has not reported."""
    root = _copy(demo, tmp_path)
    (root / "收件箱" / "舞阳县团委走基层5月.docx").write_bytes(b"PK\x03\x04 word")
    args = ["status", "-w", str(root), "--as-of", AS_OF.isoformat(), "--period", "2026-05"]
    r = CliRunner().invoke(cli, args)
    assert "收件箱里有 1 份文件还没有汇总：舞阳县团委走基层5月.docx" in r.output
    merged = merge(root, as_of=AS_OF, now=NOW)
    assert any(n.code == "not-a-report-file" and "舞阳县团委走基层5月.docx" in n.message for n in merged.notes)
    r = CliRunner().invoke(cli, args)
    assert "还没有汇总" not in r.output


def test_the_overview_on_a_deadline_day_shows_the_period_still_owed(tmp_path):
    """On 28 February (the 部室' deadline for February, still 未到期 all that day) 总览's line jumped to February —
    应报 1 where one unit had sent early — and January's 14 missing units left the page."""
    from tuanjian_xlsx.workspace import init_workspace

    root = tmp_path / "ws"
    init_workspace(root)
    for day, period, owed in ((dt.date(2026, 2, 28), "2026年1月", 16), (dt.date(2026, 3, 1), "2026年2月", 6)):
        wb = openpyxl.load_workbook(merge(root, as_of=day).master, data_only=True)
        kpi = next(r for r in wb["总览"].iter_rows(values_only=True) if str(r[0] or "").startswith("附件1"))
        assert kpi[1:3] == (period, owed) and kpi[6] == owed  # 报送期, 应报 … 未报


def test_the_masters_rates_show_two_decimal_places(tmp_path):
    """A city rate of 39.99% showed as 40.0% next to 未达标."""
    from tuanjian_xlsx.workspace import init_workspace

    root = tmp_path / "ws"
    init_workspace(root)
    sheet = openpyxl.load_workbook(merge(root, as_of=dt.date(2026, 4, 30)).master)["目标汇总"]
    head = [c.value for c in sheet[1]]
    rates = [row[head.index("全市完成率")].number_format for row in sheet.iter_rows(min_row=2) if row[0].value]
    assert rates and set(rates) == {"0.00%"}
