"""A second version of 附件1: both versions accepted side by side, the old one until its date; diff; upgrade."""

from __future__ import annotations

import datetime as dt
import hashlib

import openpyxl
import pytest
from click.testing import CliRunner

from conftest import fill, triples
from tuanjian_xlsx.clock import BEIJING
from tuanjian_xlsx.cli import cli
from tuanjian_xlsx.plan import Workspace
from tuanjian_xlsx.distribute import distribute
from tuanjian_xlsx.merge import merge
from tuanjian_xlsx.validate import validate_file
from tuanjian_xlsx.versions import upgrade
from tuanjian_xlsx.workspace import init_workspace

V1 = {"填表时间": dt.datetime(2026, 3, 5), "姓名": "张三", "单位职务": "书记", "走访团组织名称": "一中团委",
      "走访形式": "座谈交流", "团干部": 2, "团员青年": 15, "基层团组织工作开展情况": "好", "基层团组织工作亮点": "多"}
V2 = {**V1, "走访日期": dt.datetime(2026, 3, 3), "联系电话": "0395-1234567"}


def _workspace(tmp_path, until="2099-12-31"):
    init_workspace(tmp_path)
    return _workspace_settings_to_v2(tmp_path, until)


def _workspace_settings_to_v2(tmp_path, until="2099-12-31"):
    toml = tmp_path / "tuanjian.toml"
    text = toml.read_text(encoding="utf-8").replace(
        "current_version = 1\naccepted_versions = [1]",
        f"current_version = 2\naccepted_versions = [1, 2]\naccepted_until = {{ 1 = {until} }}", 1)
    toml.write_text(text, encoding="utf-8")
    return Workspace.load(tmp_path)


def _v1_copy(ws, tmp_path, unit="郾城区团委"):
    from tuanjian_xlsx.build import Prefill, build_template

    spec = ws.registry.get("visit_report", 1)
    src = tmp_path / "v1-copy.xlsx"
    src.write_bytes(build_template(spec, ws.roster, prefill=Prefill(ws.roster.unit_by_name(unit), "2026-03", "2026年3月")))
    return fill(src, tmp_path / f"{unit}_v1.xlsx", V1)


def test_diff_in_chinese():
    r = CliRunner().invoke(cli, ["templates", "diff", "visit_report", "1", "2"])
    assert r.exit_code == 0
    lines = r.output.splitlines()
    assert lines[0] == "《附件1 团干部走基层情况报告单》第 1 版 → 第 2 版："
    assert "  新增：“走访日期”（日期，必填，位置 B7）" in lines and "  新增：“联系电话”（文本，必填，位置 D7）" in lines
    assert "  “团干部”位置：C9 → C10" in lines
    r = CliRunner().invoke(cli, ["templates", "diff", "visit_report", "1", "9"])
    assert r.exit_code == 1 and "没有第 9 版模板" in r.output


def test_instructions_say_what_changed_since_the_last_version(tmp_path):
    init_workspace(tmp_path)
    distribute(tmp_path, "2026-02", units=["源汇区团委"])  # version 1 goes out first
    _workspace_settings_to_v2(tmp_path)
    (pkg,) = distribute(tmp_path, "2026-03", units=["源汇区团委"]).packages
    text = pkg.instructions.read_text(encoding="utf-8-sig")
    assert ("模板由第 1 版更新为第 2 版，请改用本次附上的新表，不要再用旧表。变化：新增：“走访日期”（日期，必填，位置 B7）；"
            "新增：“联系电话”（文本，必填，位置 D7）。") in text


def test_v1_and_v2_merge_into_one_detail(tmp_path):
    ws = _workspace(tmp_path)
    (pkg,) = distribute(tmp_path, "2026-03", units=["源汇区团委"]).packages
    assert pkg.files[0].name.endswith("_v2.xlsx")
    v2 = fill(pkg.files[0], tmp_path / "源汇区团委_v2.xlsx", V2)
    v1 = _v1_copy(ws, tmp_path)
    r2, r1 = validate_file(v2, ws), validate_file(v1, ws)
    assert r2.valid and r2.issues == [] and r2.records[0].values["visit_date"] == dt.date(2026, 3, 3)
    assert r1.valid and [(i.code, i.message) for i in r1.issues] == [
        ("old-version", "使用的是“附件1 团干部走基层情况报告单”第 1 版模板（当前为第 2 版），仍可接收；下次请用新模板")]
    result = merge(tmp_path, [v1, v2], as_of=dt.date(2026, 4, 20), now=dt.datetime(2026, 4, 1, 9))
    detail = openpyxl.load_workbook(result.master, data_only=True)["走基层明细"]
    head = [c.value for c in detail[1]]
    rows = {r[0]: dict(zip(head, r)) for r in detail.iter_rows(min_row=2, values_only=True)}
    assert rows["源汇区团委"]["走访日期"] == dt.datetime(2026, 3, 3) and rows["源汇区团委"]["版本"] == 2
    assert rows["郾城区团委"]["走访日期"] is None and rows["郾城区团委"]["版本"] == 1
    assert rows["郾城区团委"]["团员青年"] == 15 and rows["源汇区团委"]["联系电话"] == "0395-1234567"


@pytest.mark.parametrize("typed, code", [(dt.datetime(2026, 3, 12), "not-in-visit-week"),
                                         (dt.datetime(2026, 4, 2), "date-outside-period")])
def test_visit_date_checks(tmp_path, typed, code):
    ws = _workspace(tmp_path)
    (pkg,) = distribute(tmp_path, "2026-03", units=["源汇区团委"]).packages
    result = validate_file(fill(pkg.files[0], tmp_path / "f.xlsx", {**V2, "走访日期": typed}), ws)
    assert triples(result) == [("f.xlsx", "B7", code)]


def test_an_old_version_past_its_date_is_refused_with_the_template_to_use(tmp_path):
    ws = _workspace(tmp_path, until="2020-01-01")
    distribute(tmp_path, "2026-03", units=["源汇区团委"], now=dt.datetime(2026, 2, 20, 9))  # version 2 first sent
    v1 = _v1_copy(ws, tmp_path)
    r = CliRunner().invoke(cli, ["validate", str(v1), "-w", str(tmp_path)])
    assert r.exit_code == 1
    assert ("    错误  “附件1 团干部走基层情况报告单”第 1 版只接收到 2020-01-01，此后收到的不再接收，请改用第 2 版模板"
            "《附件1_团干部走基层情况报告单_v2.xlsx》（2026-02-20 起下发）") in r.output.splitlines()


def test_upgrade_carries_values_and_marks_new_fields(tmp_path):
    ws = _workspace(tmp_path)
    v1 = _v1_copy(ws, tmp_path)
    before = hashlib.sha256(v1.read_bytes()).hexdigest()
    (done,) = upgrade(tmp_path, [v1], tmp_path / "升级")
    assert hashlib.sha256(v1.read_bytes()).hexdigest() == before
    sheet = openpyxl.load_workbook(done.target)["走基层报告单"]
    assert (sheet["B4"].value, sheet["B8"].value, sheet["C10"].value, sheet["C11"].value) == ("郾城区团委", "一中团委", 2, 15)
    assert sheet["B7"].value is None and sheet["D7"].value is None
    assert sheet["B7"].comment and sheet["D7"].comment and "新增" in sheet["B7"].comment.text
    result = validate_file(done.target, ws)
    assert (result.version, triples(result)) == (2, [(done.target.name, "B7", "required-value"),
                                                     (done.target.name, "D7", "required-value")])
    r = CliRunner().invoke(cli, ["upgrade", str(v1), "-w", str(tmp_path), "--out", str(tmp_path / "cli")])
    assert r.exit_code == 0 and r.output.startswith("已升级：郾城区团委_v1.xlsx → ")


def test_a_file_received_before_the_last_day_is_accepted_when_merged_after_it(tmp_path):
    """One clock: an old version is judged by the day the file arrived, not the day of the run; and merging in the
    past (--as-of) gives the verdicts of that day."""
    from email.message import EmailMessage
    from email.utils import format_datetime

    ws = _workspace(tmp_path, until="2026-03-31")
    v1 = _v1_copy(ws, tmp_path)
    msg = EmailMessage()
    msg["From"] = "郾城区团委 <yancheng@county.example>"
    msg["Date"] = format_datetime(dt.datetime(2026, 3, 30, 10, 0).replace(tzinfo=BEIJING))
    msg.set_content("请查收")
    msg.add_attachment(v1.read_bytes(), maintype="application", subtype="octet-stream", filename="旧版.xlsx")
    (tmp_path / "收件箱" / "三月.eml").write_bytes(bytes(msg))
    result = merge(tmp_path, as_of=dt.date(2026, 4, 20), now=dt.datetime(2026, 4, 20, 9))  # run after the day
    (item,) = result.ingested
    assert item.valid and result.invalid == []
    r = CliRunner().invoke(cli, ["validate", str(v1), "-w", str(tmp_path)])  # received today: past the day
    assert r.exit_code == 1 and "不再接收" in r.output


def test_upgrade_reads_each_file_apart_so_one_that_kills_its_reader_costs_only_itself(tmp_path):
    """A file whose reading aborts the reader (here: a legal sheet of 450,000 numbers under a memory cap too small
    for it, as a crafted file would make python-calamine abort) is refused alone, in Chinese; the good file given
    in the same call is upgraded. Run as staff run it, in a fresh process (the cap counts from what a worker
    starts with)."""
    import io
    import json
    import os
    import random
    import subprocess
    import sys
    import zipfile
    from pathlib import Path

    ws = _workspace(tmp_path)
    good = _v1_copy(ws, tmp_path)
    rng = random.Random(1)
    columns = [b"A" + bytes([65 + i]) for i in range(26)] + [b"B" + bytes([65 + i]) for i in range(4)]  # AA..BD
    rows = b"".join(b'<row r="%d">' % r + b"".join(b'<c r="%s%d"><v>%d</v></c>' % (col, r, rng.randrange(10 ** 6))
                                                  for col in columns) + b"</row>" for r in range(30, 15030))
    src, out = zipfile.ZipFile(good), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info)
            dst.writestr(info.filename, body.replace(b"</sheetData>", rows + b"</sheetData>")
                         if info.filename == "xl/worksheets/sheet1.xml" else body)
    big = tmp_path / "大表_v1.xlsx"
    big.write_bytes(out.getvalue())
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, TUANJIAN_WORKER_MEMORY_MB="12", PYTHONPATH=str(root))
    cmd = [sys.executable, "-m", "tuanjian_xlsx", "upgrade", str(big), str(good), "-w", str(tmp_path),
           "--out", str(tmp_path / "升级"), "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    refused, done = json.loads(proc.stdout)["files"]
    assert refused["target"] is None and [i["code"] for i in refused["issues"]] == ["reader-crashed"]
    assert "已单独拒收此文件" in refused["issues"][0]["message"] and refused["issues"][0]["file"] == big.name
    assert done["target"] and Path(done["target"]).exists() and done["issues"] == []


def test_a_return_of_an_older_version_asks_for_what_the_current_one_added(tmp_path):
    """A v1 file with one mistake, returned on the v2 template: its 问题清单 named the mistake only, the new
    required 走访日期 and 联系电话 blank and unmarked — the unit mended what it was told and was refused again."""
    from tuanjian_xlsx.returns import build_return

    ws = _workspace(tmp_path)
    path = _v1_copy(ws, tmp_path)
    book = openpyxl.load_workbook(path)
    book.worksheets[0]["C9"] = -2  # 团干部 in v1
    book.save(path)
    result = validate_file(path, ws)
    assert not result.valid and result.version == 1
    data, rows, message = build_return(result, ws)
    assert {(r.cell, r.field) for r in rows if "新增的必填项" in r.message} == {("B7", "走访日期"), ("D7", "联系电话")}
    assert "3 处需要修改" in message
