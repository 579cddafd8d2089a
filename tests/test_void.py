"""`tuanjian ledger void`: a file sent for the wrong period withdrawn by staff, through real merges into the master —
counted nowhere after, listed as 作废 in 来源 with the reason, restored by --undo, kept by a rebuild."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from conftest import fill
from tuanjian_xlsx import api
from tuanjian_xlsx.cli import cli
from tuanjian_xlsx.merge import MergeResult, merge
from tuanjian_xlsx.workspace import init_workspace

TEMPLATE = Path(__file__).resolve().parent.parent / "workbook_templates" / "visit_report" / "v1.xlsx"
UNIT = "源汇区团委"
VISIT = {"报送单位": UNIT, "报送期": "2026-03", "填表时间": dt.datetime(2026, 3, 5), "姓名": "张三", "单位职务": "书记",
         "走访团组织名称": "第一中学团委", "走访形式": "座谈交流", "团干部": 3, "团员青年": 15,
         "基层团组织工作开展情况": "好", "基层团组织工作亮点": "多"}
NAME = "源汇区团委_走基层.xlsx"  # the unit names every month's workbook alike
AS_OF = dt.date(2026, 4, 30)
REASON = "报送期填错（应为2026-04），已重报"


def _send(ws: Path, tmp_path: Path, day: dt.date, **values) -> MergeResult:
    """The unit's workbook filled as a person would, put in the inbox under NAME (over the last one) and merged."""
    filled = fill(TEMPLATE, tmp_path / f"{day.isoformat()}.xlsx", {**VISIT, **values})
    (ws / "收件箱" / NAME).write_bytes(filled.read_bytes())
    return merge(ws, as_of=AS_OF, now=dt.datetime.combine(day, dt.time(9, 0)))


def _visits(ws: Path) -> dict[str, int]:
    """走访次数 of the unit by period (those with any), as the master's 走基层统计 says."""
    sheet = openpyxl.load_workbook(ws / "汇总" / "汇总表.xlsx", data_only=True)["走基层统计"]
    head = [c.value for c in sheet[1]]
    return {r[3]: r[head.index("走访次数")] for r in sheet.iter_rows(min_row=2, values_only=True)
            if r[0] == UNIT and r[head.index("走访次数")]}


def _sources(ws: Path) -> list[dict]:
    sheet = openpyxl.load_workbook(ws / "汇总" / "汇总表.xlsx", data_only=True)["来源"]
    head = [c.value for c in sheet[1]]
    return [dict(zip(head, r)) for r in sheet.iter_rows(min_row=2, values_only=True) if r[0]]



def _void(ws: Path, *args: str):
    return CliRunner().invoke(cli, ["ledger", "void", *args, "-w", str(ws)])


@pytest.fixture
def sent(tmp_path) -> tuple[Path, str, str]:
    """March sent right; April's visit sent with 报送期 left at 2026-03 (填表时间 04-03 falls in March's window);
    then resent right as 2026-04 under the same name. The wrong and the right April files' sha256."""
    ws = tmp_path / "ws"
    init_workspace(ws)
    _send(ws, tmp_path, dt.date(2026, 3, 6))
    april = {"填表时间": dt.datetime(2026, 4, 3), "走访团组织名称": "第二中学团委"}
    wrong = _send(ws, tmp_path, dt.date(2026, 4, 3), **april)
    assert [(i.outcome, i.valid) for i in wrong.ingested] == [("new", True)]
    assert _visits(ws) == {"2026年3月": 2}  # the reviewer's finding: March counts April's visit, April 未报
    right = _send(ws, tmp_path, dt.date(2026, 4, 4), **april, 报送期="2026-04")
    assert _visits(ws) == {"2026年3月": 2, "2026年4月": 1}
    return ws, wrong.ingested[0].sha256, right.ingested[0].sha256


def test_a_file_sent_for_the_wrong_period_is_voided_and_counts_nowhere(sent):
    ws, wrong, right = sent
    r = _void(ws, wrong[:10], "--reason", REASON)
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[0] == (f"已作废：{NAME}（{UNIT}《附件1 团干部走基层情况报告单》2026年3月，2026-04-03 09:00 收到，"
                                        f"SHA-256 {wrong[:12]}）；原因：{REASON}")
    merge(ws, as_of=AS_OF, now=dt.datetime(2026, 4, 5, 9, 0))  # nothing new: the void alone makes a new master
    assert _visits(ws) == {"2026年3月": 1, "2026年4月": 1}
    rows = {row["SHA-256"].replace("\n", ""): row for row in _sources(ws)}
    assert (rows[wrong]["状态"], rows[wrong]["说明"]) == ("作废", f"作废原因：{REASON}")
    assert (rows[right]["状态"], rows[right]["说明"]) == ("有效", None)
    book = openpyxl.load_workbook(ws / "汇总" / "汇总表.xlsx", data_only=True)
    assert "作废 1 份" in book["总览"]["A2"].value
    details = [(r[3], r[10]) for r in book["走基层明细"].iter_rows(min_row=2, values_only=True) if r[0] == UNIT]
    assert details == [("2026年3月", "第一中学团委"), ("2026年4月", "第二中学团委")]
    status = api.status(ws, as_of=AS_OF).to_dict()
    march = [i for i in status["items"] if i["unit"] == UNIT and i["form_id"] == "visit_report"
             and i["period"] in ("2026-03", "2026-04")]
    assert {i["period"]: i["status"] for i in march} == {"2026-03": "on_time", "2026-04": "on_time"}
    with sqlite3.connect(ws / ".tuanjian" / "ledger.sqlite") as con:  # nothing deleted; who, when, why recorded
        assert con.execute("SELECT count(*) FROM files").fetchone()[0] == 3
        (action, reason, who, at), = con.execute("SELECT action, reason, who, at FROM voids").fetchall()
        assert (action, reason, bool(who)) == ("void", REASON, True)
    assert (ws / ".tuanjian" / "archive" / f"{wrong}.xlsx").exists()


def test_voiding_twice_changes_nothing_and_undo_counts_it_again(sent):
    ws, wrong, _ = sent
    assert _void(ws, wrong[:10], "--reason", REASON).exit_code == 0
    again = _void(ws, wrong[:10], "--reason", "再来一次")
    assert again.exit_code == 0 and "已是作废状态" in again.output and "未作改动" in again.output
    merge(ws, as_of=AS_OF, now=dt.datetime(2026, 4, 5, 9, 0))
    assert _visits(ws)["2026年3月"] == 1
    r = CliRunner().invoke(cli, ["ledger", "void", wrong[:10], "--undo", "--reason", "误作废", "-w", str(ws), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert (out["action"], out["changed"], out["void"], out["was_void"]) == ("undo", True, False, REASON)
    merge(ws, as_of=AS_OF, now=dt.datetime(2026, 4, 6, 9, 0))
    assert _visits(ws)["2026年3月"] == 2
    assert {row["状态"] for row in _sources(ws)} == {"有效"}


def test_content_of_a_voided_file_arriving_again_is_noted_and_still_not_counted(sent, tmp_path):
    ws, wrong, _ = sent
    _void(ws, wrong[:10], "--reason", REASON)
    archived = (ws / ".tuanjian" / "archive" / f"{wrong}.xlsx").read_bytes()
    (ws / "收件箱" / "又发了一次.xlsx").write_bytes(archived)
    result = merge(ws, as_of=AS_OF, now=dt.datetime(2026, 4, 7, 9, 0))
    (note,) = [n for n in result.notes if n.code == "void-arrived-again"]
    assert note.file.endswith("又发了一次.xlsx") and REASON in note.message and wrong[:12] in note.message
    assert _visits(ws)["2026年3月"] == 1


def test_a_rebuilt_ledger_keeps_the_void(sent):
    ws, wrong, _ = sent
    _void(ws, wrong[:10], "--reason", REASON)
    report = api.ledger_rebuild(ws, now=dt.datetime(2026, 4, 6, 9, 0))
    assert report.voids_recovered == 1 and "从原登记簿读回 1 条作废/恢复记录（作废的文件仍不计入）" in report.lines()
    merge(ws, as_of=AS_OF, now=dt.datetime(2026, 4, 6, 10, 0))
    assert _visits(ws) == {"2026年3月": 1, "2026年4月": 1}
    rows = {row["SHA-256"].replace("\n", ""): row for row in _sources(ws)}
    assert rows[wrong]["状态"] == "作废"


def test_refusals_say_why_in_chinese_and_change_nothing(sent):
    ws, wrong, right = sent
    unknown = _void(ws, "没有这个文件.xlsx", "--reason", REASON)
    assert unknown.exit_code == 1 and "登记簿中没有名为“没有这个文件.xlsx”的文件" in unknown.output
    ambiguous = _void(ws, NAME, "--reason", REASON)
    assert ambiguous.exit_code == 1 and f"“{NAME}”对应 3 个文件，未作改动" in ambiguous.output
    assert wrong[:12] in ambiguous.output and right[:12] in ambiguous.output and "2026年4月" in ambiguous.output
    no_reason = _void(ws, wrong[:10])
    assert no_reason.exit_code == 1 and "请用 --reason 写明作废的原因" in no_reason.output
    blank = _void(ws, wrong[:10], "--reason", "  ")
    assert blank.exit_code == 1 and "请用 --reason 写明作废的原因" in blank.output
    for r in (unknown, ambiguous, no_reason, blank):
        assert "Traceback" not in r.output and r.exception is None or isinstance(r.exception, SystemExit)
    with sqlite3.connect(ws / ".tuanjian" / "ledger.sqlite") as con:
        assert con.execute("SELECT count(*) FROM voids").fetchone()[0] == 0


def test_the_master_after_a_void_recalculates_in_libreoffice_to_its_cached_values(sent, libreoffice, tmp_path):
    ws, wrong, _ = sent
    _void(ws, wrong[:10], "--reason", REASON)
    master = merge(ws, as_of=AS_OF, now=dt.datetime(2026, 4, 5, 9, 0)).master
    assert master is not None
    checked, bad = libreoffice.disagreements(master, tmp_path / "lo")
    assert not bad, bad[:10]
    assert checked > 50


def test_a_voided_file_is_no_submission_for_on_time_or_late(tmp_path):
    ws = tmp_path / "ws"
    init_workspace(ws)
    first = _send(ws, tmp_path, dt.date(2026, 4, 3), 单位职务="错填的单位")  # in time for March (due 04-10)
    assert _void(ws, first.ingested[0].sha256[:8], "--reason", "单位填错").exit_code == 0

    def march() -> tuple[str, str | None]:
        (item,) = [i for i in api.status(ws, as_of=AS_OF).to_dict()["items"]
                   if i["unit"] == UNIT and i["form_id"] == "visit_report" and i["period"] == "2026-03"]
        return item["status"], item["received"]

    assert march() == ("missing", None)
    _send(ws, tmp_path, dt.date(2026, 4, 12))  # the real one, after the due date: late, not on time by the void one
    assert march() == ("late", "2026-04-12T09:00:00")


def test_a_file_a_voided_one_had_replaced_counts_again(tmp_path):
    ws = tmp_path / "ws"
    init_workspace(ws)
    _send(ws, tmp_path, dt.date(2026, 3, 6))
    later = _send(ws, tmp_path, dt.date(2026, 3, 7), 团干部=9)  # the same visit resent: it replaces the first
    assert later.superseded == 1
    assert _void(ws, later.ingested[0].sha256[:8], "--reason", "误发").exit_code == 0
    merge(ws, as_of=AS_OF, now=dt.datetime(2026, 3, 8, 9, 0))
    assert _visits(ws) == {"2026年3月": 1}
    book = openpyxl.load_workbook(ws / "汇总" / "汇总表.xlsx", data_only=True)
    (row,) = [r for r in book["走基层明细"].iter_rows(min_row=2, values_only=True) if r[0] == UNIT]
    assert row[12] == 3  # 团干部 of the first file, counting again
    assert sorted(r["状态"] for r in _sources(ws)) == ["作废", "有效"]


def test_a_voided_file_gets_no_reply(tmp_path, templates):
    """A file voided before its reply went out is answered by nobody: its receipt would say 校验通过 (or its 退回
    ask for a mend) for a file that counts nowhere. Restored, it is owed its reply again."""
    from conftest import fill
    from test_intake import VISIT, with_address

    from tuanjian_xlsx.plan import Workspace
    from tuanjian_xlsx.replies import answer

    root = with_address(tmp_path / "ws")
    fill(templates["visit_report"], root / "收件箱" / "三月.xlsx", VISIT)
    merge(root, as_of=dt.date(2026, 4, 20), now=dt.datetime(2026, 4, 9, 9))
    now = dt.datetime(2026, 4, 9, 10)
    assert len(answer(Workspace.load(root), now=now, dry_run=True).would) == 1
    r = CliRunner().invoke(cli, ["ledger", "void", "三月.xlsx", "--reason", "报送期填错", "-w", str(root)])
    assert r.exit_code == 0, r.output
    assert answer(Workspace.load(root), now=now, dry_run=True).would == []
    r = CliRunner().invoke(cli, ["ledger", "void", "三月.xlsx", "--undo", "--reason", "填对了", "-w", str(root)])
    assert r.exit_code == 0 and len(answer(Workspace.load(root), now=now, dry_run=True).would) == 1
