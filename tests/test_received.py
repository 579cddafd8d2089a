"""When a file counts as received: the earliest arrival of the same content, whatever the order of reading; what
each time rests on; times stated by staff; and what merge tells staff to check."""

from __future__ import annotations

import datetime as dt
import io
import os
import sqlite3
import zipfile
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import fill
from tuanjian_xlsx.clock import BEIJING
from tuanjian_xlsx.cli import cli
from tuanjian_xlsx.merge import merge
from tuanjian_xlsx.workspace import init_workspace

VISIT = {"报送单位": "源汇区团委", "报送期": "2026-03", "填表时间": dt.datetime(2026, 3, 5), "姓名": "张三",
         "单位职务": "书记", "走访团组织名称": "一中团委", "走访形式": "座谈交流", "团干部": 2, "团员青年": 15,
         "基层团组织工作开展情况": "好", "基层团组织工作亮点": "多"}
DUE = dt.date(2026, 4, 10)  # 源汇区团委 (a county): 附件1 of March is due on 10 April
AS_OF = dt.date(2026, 4, 30)


@pytest.fixture
def ws(tmp_path) -> Path:
    init_workspace(tmp_path / "ws")
    return tmp_path / "ws"


@pytest.fixture
def filled(templates, tmp_path) -> bytes:
    return fill(templates["visit_report"], tmp_path / "filled.xlsx", VISIT).read_bytes()


def eml(data: bytes, when: dt.datetime, name: str = "走基层.xlsx") -> bytes:
    msg = EmailMessage()
    msg["From"] = "源汇区团委 <yuanhui@county.example>"
    msg["To"] = "lhtswzxb@163.com"
    msg["Subject"] = "三月走基层"
    msg["Date"] = format_datetime(when.replace(tzinfo=BEIJING))
    msg.set_content("请查收")
    msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return bytes(msg)


def ledger_rows(ws: Path) -> list[tuple]:
    con = sqlite3.connect(ws / ".tuanjian" / "ledger.sqlite")
    try:
        return con.execute("SELECT name, received_at, received_basis FROM files ORDER BY id").fetchall()
    finally:
        con.close()


def status_of(result, unit="源汇区团委", period="2026-03"):
    return next(i for i in result.items if i.unit == unit and i.period.code == period and i.form_id == "visit_report")


@pytest.mark.parametrize("names", [("a_收件箱副本.xlsx", "z_邮件.eml"), ("z_收件箱副本.xlsx", "a_邮件.eml")])
def test_the_same_content_twice_counts_from_its_earliest_arrival_in_either_order(ws, filled, names):
    """The attachment saved into 收件箱 after the deadline, and the mail that brought it on time: on time."""
    plain, mail = names
    (ws / "收件箱" / plain).write_bytes(filled)
    (ws / "收件箱" / mail).write_bytes(eml(filled, dt.datetime(2026, 4, 8, 10, 0)))
    result = merge(ws, as_of=AS_OF, now=dt.datetime(2026, 4, 20, 9, 0))
    assert status_of(result).status == "on_time"
    ((name, received, basis),) = ledger_rows(ws)
    assert (received, basis) == ("2026-04-08T10:00:00", "mail-date")


def test_a_later_run_that_sees_an_earlier_copy_corrects_the_ledger(ws, filled):
    (ws / "收件箱" / "附件.xlsx").write_bytes(filled)
    first = merge(ws, as_of=AS_OF, now=dt.datetime(2026, 4, 20, 9, 0))
    assert status_of(first).status == "late"
    assert any(n.code == "registered-after-due" and "附件.xlsx" in n.message for n in first.notes)
    (ws / "收件箱" / "原邮件.eml").write_bytes(eml(filled, dt.datetime(2026, 4, 9, 16, 30)))
    second = merge(ws, as_of=AS_OF, now=dt.datetime(2026, 4, 21, 9, 0))
    assert status_of(second).status == "on_time" and second.corrected == 1
    assert "收到时间更正 1" in second.summary()
    assert ledger_rows(ws) == [("附件.xlsx", "2026-04-09T16:30:00", "mail-date")]
    third = merge(ws, as_of=AS_OF, now=dt.datetime(2026, 4, 22, 9, 0))  # nothing earlier: nothing moves
    assert third.corrected == 0 and third.summary().startswith("没有新文件")


def test_a_mail_without_a_date_is_told_apart_from_a_file_put_in_by_hand(ws, filled):
    """A mail with no Date counts from its first registration, as a file put into 收件箱 by hand does; the advice
    fits it (it was told to use the mail itself, which it is)."""
    from email.message import EmailMessage

    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "someone@county.example", "lhtswzxb@163.com", "报表"
    msg.set_content("见附件")
    msg.add_attachment(filled, maintype="application", subtype="octet-stream", filename="无日期.xlsx")
    (ws / "收件箱" / "来信.eml").write_bytes(bytes(msg))
    result = merge(ws, as_of=AS_OF, now=dt.datetime(2026, 4, 20, 9, 0))
    assert status_of(result).status == "late"
    (note,) = [n for n in result.notes if "无日期.xlsx" in n.message]
    assert note.code == "undated-mail-after-due" and "--received-at" in note.message and ".eml" not in note.message


def test_a_stated_arrival_date(ws, filled):
    saved = ws.parent / "晚存的附件"
    saved.mkdir()
    (saved / "源汇区三月.xlsx").write_bytes(filled)
    r = CliRunner().invoke(cli, ["merge", str(saved), "-w", str(ws), "--as-of", AS_OF.isoformat(),
                                 "--received-at", "2026-04-09"])
    assert r.exit_code == 0, r.output
    assert ledger_rows(ws) == [("源汇区三月.xlsx", "2026-04-09T00:00:00", "stated")]
    r = CliRunner().invoke(cli, ["status", "-w", str(ws), "--as-of", AS_OF.isoformat(), "--json"])
    import json

    item = next(i for i in json.loads(r.output)["items"] if i["unit"] == "源汇区团委" and i["period"] == "2026-03"
                and i["form_id"] == "visit_report")
    assert item["status"] == "on_time"
    r = CliRunner().invoke(cli, ["merge", str(saved), "-w", str(ws), "--received-at", "去年"])
    assert r.exit_code == 2 and "应为日期或日期时间" in r.output


def test_a_time_stated_for_the_whole_inbox_is_only_for_what_is_new_and_brings_none(ws, filled, templates, tmp_path):
    """`merge --received-at` with no file named (staff saving one late attachment into the inbox) re-dated every file
    the inbox still held, a mail's own date included: a unit that had reported on time turned 逾期. Without names it
    is for the files new to this run that bring no time of their own; a file named still takes it."""
    inbox = ws / "收件箱"
    (inbox / "源汇区三月.eml").write_bytes(eml(filled, dt.datetime(2026, 4, 3, 9)))
    assert status_of(merge(ws, as_of=AS_OF)).status == "on_time"
    other = fill(templates["visit_report"], tmp_path / "郾城.xlsx", {**VISIT, "报送单位": "郾城区团委"})
    (inbox / "郾城区三月.xlsx").write_bytes(other.read_bytes())
    late = dt.datetime(2026, 4, 20, 8)
    r = merge(ws, as_of=AS_OF, received_at=late)
    assert status_of(r).status == "on_time" and status_of(r, "郾城区团委").status == "late"
    assert [(n, t, b) for n, t, b in ledger_rows(ws)] == [("走基层.xlsx", "2026-04-03T09:00:00", "mail-date"),
                                                          ("郾城区三月.xlsx", "2026-04-20T08:00:00", "stated")]
    r = merge(ws, [inbox / "郾城区三月.xlsx"], as_of=AS_OF, received_at=dt.datetime(2026, 4, 9))  # named: taken
    assert status_of(r, "郾城区团委").status == "on_time" and r.corrected == 1
    r = merge(ws, [inbox / "郾城区三月.xlsx"], as_of=AS_OF, received_at=dt.datetime(2026, 4, 16))  # sent again later:
    assert status_of(r, "郾城区团委").status == "on_time" and r.corrected == 0  # the earliest arrival still counts
    (kept,) = [n for n in r.notes if n.code == "stated-later-kept"]  # … and staff are told their time was not taken
    assert "2026-04-09 00:00" in kept.message and "2026-04-16 00:00" in kept.message


def test_a_mail_dated_in_the_future_counts_from_when_it_was_found(ws, filled):
    """A saved mail whose Date says 2035 was recorded as arriving in 2035: the valid report counted as 未报 and the
    unit got 催报. No arrival can be later than the run that finds it: it counts from then, and says why."""
    (ws / "收件箱" / "源汇区三月.eml").write_bytes(eml(filled, dt.datetime(2035, 1, 1)))
    r = merge(ws, as_of=AS_OF, now=dt.datetime(2026, 4, 5, 9))
    assert status_of(r).status == "on_time"
    assert ledger_rows(ws) == [("走基层.xlsx", "2026-04-05T09:00:00", "first-seen")]
    con = sqlite3.connect(ws / ".tuanjian" / "ledger.sqlite")
    stored = con.execute("SELECT result FROM files").fetchone()[0]
    con.close()
    assert "mail-date-future" in stored and "2035-01-01 00:00" in stored


def test_forms_for_a_period_long_past_are_named(ws, templates, tmp_path):
    jan = fill(templates["visit_report"], tmp_path / "一月.xlsx", dict(VISIT, 报送期="2026-01",
                                                                       填表时间=dt.datetime(2026, 1, 5)))
    (ws / "收件箱" / "一月.xlsx").write_bytes(jan.read_bytes())
    result = merge(ws, as_of=AS_OF, now=dt.datetime(2026, 4, 20, 9, 0))
    (note,) = [n for n in result.notes if n.code == "period-long-past"]
    assert note.file == "一月.xlsx" and "源汇区团委2026-01" in note.message and "截止 2026-02-10" in note.message


def test_a_visit_named_almost_like_one_already_received(ws, templates, tmp_path):
    first = fill(templates["visit_report"], tmp_path / "1.xlsx", dict(VISIT, 走访团组织名称="实验中学团委"))
    second = fill(templates["visit_report"], tmp_path / "2.xlsx", dict(VISIT, 走访团组织名称="实验中学团委会"))
    other = fill(templates["visit_report"], tmp_path / "3.xlsx", dict(VISIT, 走访团组织名称="二中团委"))
    (ws / "收件箱" / "1.xlsx").write_bytes(first.read_bytes())
    merge(ws, as_of=AS_OF, now=dt.datetime(2026, 4, 2, 9, 0))
    (ws / "收件箱" / "2.xlsx").write_bytes(second.read_bytes())
    (ws / "收件箱" / "3.xlsx").write_bytes(other.read_bytes())
    result = merge(ws, as_of=AS_OF, now=dt.datetime(2026, 4, 3, 9, 0))
    close = [n for n in result.notes if n.code == "visit-name-close"]
    assert [(n.file, "“实验中学团委会”" in n.message and "“实验中学团委”" in n.message) for n in close] == [("2.xlsx", True)]
    # said once on the console, and kept: the master's 问题清单 lists it on every later run
    later = merge(ws, as_of=dt.date(2026, 5, 10), now=dt.datetime(2026, 5, 10, 9, 0))
    assert not [n for n in later.notes if n.code == "visit-name-close"]
    assert _problem_rows(later.master, "visit-name-close") == [("2.xlsx", "提醒")]


def _problem_rows(master: Path, code: str) -> list[tuple]:
    import openpyxl

    sheet = openpyxl.load_workbook(master, read_only=True)["问题清单"]
    return [(r[0], r[5]) for r in sheet.iter_rows(min_row=2, values_only=True) if r[4] == code]


def test_two_versions_arriving_together_are_said_to_staff_and_go_with_a_void(ws, templates, tmp_path):
    """A draft and its correction in one mail or zip: the one listed later counted, with nothing said. Now it is
    said and kept in 问题清单 — for staff (it names what to run: it reached the unit's 回执), and after staff void
    the file as the note advises, no longer (问题清单 still said it counted)."""
    from tuanjian_xlsx.ledger import Ledger, ReplyRow
    from tuanjian_xlsx.replies import _notes

    draft = fill(templates["visit_report"], tmp_path / "d.xlsx", dict(VISIT, 团员青年=10))
    fixed = fill(templates["visit_report"], tmp_path / "f.xlsx", dict(VISIT, 团员青年=12))
    with zipfile.ZipFile(ws / "收件箱" / "源汇区.zip", "w") as z:
        z.write(fixed, "走基层（修改后）.xlsx")
        z.write(draft, "走基层.xlsx")
    result = merge(ws, as_of=AS_OF, now=dt.datetime(2026, 4, 2, 9, 0))
    (note,) = [n for n in result.notes if n.code == "replaced-together"]
    assert "同时收到" in note.message and "ledger void" in note.message
    assert _problem_rows(result.master, "replaced-together") == [(note.file, "提醒")]
    with Ledger(ws) as ledger:
        later = next(f for f in ledger.files() if f.name == note.file)
    assert any(i["code"] == "replaced-together" for i in later.issues)
    assert _notes(ReplyRow(later, "due", "receipt", None, dt.datetime(2026, 4, 2), None)) == []
    r = CliRunner().invoke(cli, ["ledger", "rebuild", "-w", str(ws)])  # worked out again, not lost
    assert r.exit_code == 0, r.output
    assert _problem_rows(merge(ws, as_of=AS_OF, now=dt.datetime(2026, 4, 2, 10, 0)).master, "replaced-together")
    r = CliRunner().invoke(cli, ["ledger", "void", "-w", str(ws), later.sha256[:12], "--reason", "草稿"])
    assert r.exit_code == 0, r.output
    assert _problem_rows(merge(ws, as_of=AS_OF, now=dt.datetime(2026, 4, 3, 9, 0)).master, "replaced-together") == []


def test_a_late_file_replacing_one_sent_on_time_is_said(ws, templates, tmp_path):
    """Last month's form filled again for this month: it replaced the on-time visit of last month, silently."""
    march = fill(templates["visit_report"], tmp_path / "m.xlsx", VISIT)
    (ws / "收件箱" / "三月.xlsx").write_bytes(march.read_bytes())
    merge(ws, as_of=AS_OF, now=dt.datetime(2026, 4, 2, 9, 0))
    again = fill(templates["visit_report"], tmp_path / "a.xlsx", dict(VISIT, 团员青年=9, 填表时间=dt.datetime(2026, 5, 6)))
    (ws / "收件箱" / "四月.xlsx").write_bytes(again.read_bytes())
    result = merge(ws, as_of=dt.date(2026, 5, 10), now=dt.datetime(2026, 5, 6, 9, 0))
    (note,) = [n for n in result.notes if n.code == "late-replaces-on-time"]
    assert note.file == "四月.xlsx" and "三月.xlsx" in note.message and "2026-04-10" in note.message


def test_validate_takes_mails_and_zips_and_works_without_a_workspace(filled, tmp_path):
    folder = tmp_path / "发送前自查"
    folder.mkdir()
    (folder / "邮件.eml").write_bytes(eml(filled, dt.datetime(2026, 4, 8, 10, 0), "邮件里的.xlsx"))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("压缩包里的.xlsx", filled)
    (folder / "打包.zip").write_bytes(buf.getvalue())
    runner = CliRunner()
    with runner.isolated_filesystem(temp_dir=tmp_path):  # a folder that is no workspace
        r = runner.invoke(cli, ["validate", str(folder)])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0] == "未找到工作区（tuanjian.toml），按内置的默认名单与目标（实施方案）校验。"
    assert sum(line.startswith("✓ 通过") for line in lines) == 2
    assert any("邮件里的.xlsx" in line for line in lines) and any("压缩包里的.xlsx" in line for line in lines)


def test_tracker_rows_are_rows_and_status_follows_the_plans_order(ws, templates, tmp_path):
    r = CliRunner().invoke(cli, ["status", "-w", str(ws), "--as-of", AS_OF.isoformat()])
    firsts = [line for line in r.output.splitlines() if "（截止" in line]
    order = [next(k for k, word in enumerate(("附件1", "附件2", "台账")) if word in line) for line in firsts]
    assert order == sorted(order) and order[0] == 0
    os.chdir(ws)
    try:
        tracker = fill(templates["target_tracker"], tmp_path / "台账.xlsx", {"报送单位": "源汇区团委", "报送期": "2026-Q1"},
                       sheet=None)
        r = CliRunner().invoke(cli, ["validate", str(tracker)])
    finally:
        os.chdir(Path(__file__).parent)
    head = next(line for line in r.output.splitlines() if line.startswith(("✓", "✗")))
    assert head.endswith(" 行）"), head  # a tracker's records are rows of one table


def test_a_later_return_for_the_same_unit_and_period_keeps_the_earlier(ws, templates, tmp_path):
    for n, people in enumerate((-1, -2), start=1):
        bad = fill(templates["visit_report"], tmp_path / f"错{n}.xlsx", dict(VISIT, 团干部=people))
        (ws / "收件箱" / f"错{n}.xlsx").write_bytes(bad.read_bytes())
        merge(ws, as_of=AS_OF, now=dt.datetime(2026, 4, n, 9, 0))
    books = sorted(p.name for p in (ws / "退回").glob("*.xlsx"))
    texts = sorted(p.name for p in (ws / "退回").glob("*.txt"))
    assert len(books) == 2 and len(texts) == 2 and books[1].endswith("_2.xlsx")


def test_a_backlog_of_long_past_forms_is_named_then_counted(ws, templates, tmp_path, monkeypatch):
    """A first merge of years of backlog names the first LONG_PAST_NAMED forms for periods long past and counts the
    rest in one note (with the first names), not one line each."""
    import tuanjian_xlsx.merge as merging

    monkeypatch.setattr(merging, "LONG_PAST_NAMED", 1)
    for n in range(3):
        jan = fill(templates["visit_report"], tmp_path / f"{n}.xlsx", dict(VISIT, 报送期="2026-01", 走访团组织名称=f"第{n}中学团委",
                                                                           填表时间=dt.datetime(2026, 1, 5)))
        (ws / "收件箱" / f"一月{n}.xlsx").write_bytes(jan.read_bytes())
    result = merge(ws, as_of=AS_OF, now=dt.datetime(2026, 4, 20, 9, 0))
    assert [n.file for n in result.notes if n.code == "period-long-past"] == ["一月0.xlsx"]
    (more,) = [n for n in result.notes if n.code == "period-long-past-more"]
    assert more.message.startswith("另有 2 份文件") and "一月1.xlsx、一月2.xlsx" in more.message


def test_an_ordinary_correction_or_a_stated_day_raises_no_alarm(ws, templates, tmp_path):
    """A correction after the deadline keeping its 填表时间 was told it might be next month's form; two files
    entered in two runs with the same --received-at were told they had come together."""
    march = fill(templates["visit_report"], tmp_path / "m.xlsx", VISIT)
    (ws / "收件箱" / "三月.xlsx").write_bytes(march.read_bytes())
    merge(ws, as_of=AS_OF, now=dt.datetime(2026, 4, 2, 9, 0))
    fixed = fill(templates["visit_report"], tmp_path / "f.xlsx", dict(VISIT, 团员青年=16))
    (ws / "收件箱" / "三月（更正）.xlsx").write_bytes(fixed.read_bytes())
    result = merge(ws, as_of=dt.date(2026, 5, 10), now=dt.datetime(2026, 4, 20, 9, 0))
    assert not [n for n in result.notes if n.code in ("late-replaces-on-time", "replaced-together")]
    other = tmp_path / "other"
    other.mkdir()
    for n, youth in enumerate((17, 18)):
        path = fill(templates["visit_report"], other / f"{n}.xlsx", dict(VISIT, 团员青年=youth))
        result = merge(ws, [path], as_of=dt.date(2026, 5, 10), received_at=dt.datetime(2026, 4, 8))
        assert not [n for n in result.notes if n.code == "replaced-together"]


def test_a_hash_in_a_folder_name_is_no_parcel(tmp_path, templates):
    """A # in the workspace's path made every loose file one parcel: two runs with one --received-at were told
    their files came together."""
    root = tmp_path / "ws#2026"
    init_workspace(root)
    for n, youth in enumerate((17, 18)):
        path = fill(templates["visit_report"], root / "收件箱" / f"{n}.xlsx", dict(VISIT, 团员青年=youth))
        result = merge(root, [path], as_of=dt.date(2026, 5, 10), received_at=dt.datetime(2026, 4, 8))
        assert not [n for n in result.notes if n.code == "replaced-together"]


def test_long_names_are_not_compared_a_character_at_a_time(ws, templates, tmp_path):
    """Visits named with 30,000 characters, a character apart, took the main process 0.7 s a pair (105 s for two
    files of twelve): names longer than any organisation's are told apart exactly only."""
    import time

    long = "团" * 20000
    for n in range(2):
        book = fill(templates["visit_report"], tmp_path / f"{n}.xlsx", dict(VISIT, 走访团组织名称=long + "甲乙"[n]))
        (ws / "收件箱" / f"{n}.xlsx").write_bytes(book.read_bytes())
        start = time.perf_counter()
        merge(ws, as_of=AS_OF, now=dt.datetime(2026, 4, 2 + n, 9, 0))
    assert time.perf_counter() - start < 5


def test_a_rebuild_keeps_what_each_received_time_rests_on(ws, templates, tmp_path):
    """ledger rebuild made every time 首次登记: two files given one --received-at in two runs then counted as
    arriving together."""
    other = tmp_path / "other"
    other.mkdir()
    for n, youth in enumerate((17, 18)):
        path = fill(templates["visit_report"], other / f"{n}.xlsx", dict(VISIT, 团员青年=youth))
        merge(ws, [path], as_of=dt.date(2026, 5, 10), received_at=dt.datetime(2026, 4, 8))
    r = CliRunner().invoke(cli, ["ledger", "rebuild", "-w", str(ws)])
    assert r.exit_code == 0, r.output
    assert {b for _, _, b in ledger_rows(ws)} == {"stated"}
    assert _problem_rows(merge(ws, as_of=dt.date(2026, 5, 10)).master, "replaced-together") == []


def test_a_draft_is_only_the_same_visits(ws, templates, tmp_path):
    """The reply told a unit that sent two different visits, one with a mistake, not to send the second again —
    as if it were a draft of the first; sent fixed it would have counted beside it."""
    from tuanjian_xlsx.ledger import Ledger
    from tuanjian_xlsx.plan import Workspace
    from tuanjian_xlsx.replies import _replaces

    for name, values in (("一中.xlsx", VISIT), ("一中草稿.xlsx", dict(VISIT, 团干部=-2)),
                         ("二中.xlsx", dict(VISIT, 走访团组织名称="二中团委", 团干部=-2))):
        (ws / "收件箱" / name).write_bytes(fill(templates["visit_report"], tmp_path / name, values).read_bytes())
    merge(ws, as_of=AS_OF, now=dt.datetime(2026, 4, 2, 9, 0))
    with Ledger(ws) as ledger:
        files = {f.name: f for f in ledger.files()}
    plan = Workspace.load(ws)
    assert _replaces(plan, files["一中.xlsx"], files["一中草稿.xlsx"])
    assert not _replaces(plan, files["一中.xlsx"], files["二中.xlsx"])


def test_a_fetched_mails_files_are_one_parcel_whatever_their_names():
    """An attachment named 定稿#2.xlsx made its mail two parcels: the note on which copy counted was lost."""
    from tuanjian_xlsx.ledger import FileRow
    from tuanjian_xlsx.merge import _parcel

    def row(origin: str) -> FileRow:
        return FileRow(1, "0" * 64, "x.xlsx", origin, ".xlsx", dt.datetime(2026, 4, 2), True, None, None, None,
                       None, None, [], [])

    mail = "imap://u@127.0.0.1/INBOX#<a#b@county.example>"
    assert _parcel(row(f"{mail}#草稿.xlsx")) == _parcel(row(f"{mail}#定稿#2.xlsx")) == mail
    assert _parcel(row("/ws#2026/收件箱/a.xlsx")) is None
    assert _parcel(row("/ws/收件箱/包.zip!a.xlsx")) == "/ws/收件箱/包.zip"


def test_a_quarters_tracker_sent_again_for_the_next_is_said(ws, tmp_path):
    """经开区 sent its Q1 tracker again in July with Q2's numbers: Q1's figures were replaced (and Q2 stayed 未报)
    with one console line, never kept — the tracker's 填表时间 stands in its heading, not in its rows."""
    import openpyxl

    from tuanjian_xlsx.build import Prefill, build_template
    from tuanjian_xlsx.plan import Workspace

    plan = Workspace.load(ws)
    spec = plan.registry.get("target_tracker")
    unit = plan.roster.unit_by_name("经济技术开发区团工委")
    blank = tmp_path / "q1.xlsx"
    blank.write_bytes(build_template(spec, plan.roster, prefill=Prefill(unit, "2026-Q1", "2026年第1季度")))

    def filled(name: str, done: int, day: dt.datetime) -> bytes:
        book = openpyxl.load_workbook(blank)
        sheet = book[spec.sheet_name]
        for r in range(spec.header_row + 1, sheet.max_row + 1):
            code = sheet.cell(r, 1).value
            task = next((t for t in plan.roster.tasks if t.code == code), None)
            if task is None:
                continue
            if task.kind == "qualitative":
                sheet.cell(r, spec.col_index("progress") + 1, "已开展")
                continue
            sheet.cell(r, spec.col_index("done") + 1, "是" if task.kind == "yesno" else done)
            if not sheet.cell(r, spec.col_index("base") + 1).protection.locked:
                sheet.cell(r, spec.col_index("base") + 1, 6)
        from conftest import beside_label

        sheet[beside_label(sheet, "填表时间")] = day
        book.save(tmp_path / name)
        return (tmp_path / name).read_bytes()

    (ws / "收件箱" / "一季度.xlsx").write_bytes(filled("a.xlsx", 3, dt.datetime(2026, 4, 8)))
    first = merge(ws, as_of=dt.date(2026, 4, 20), now=dt.datetime(2026, 4, 9, 9))
    assert first.valid == 1, [i.result.issues for i in first.invalid]
    (ws / "收件箱" / "二季度.xlsx").write_bytes(filled("b.xlsx", 4, dt.datetime(2026, 7, 6)))
    result = merge(ws, as_of=dt.date(2026, 7, 20), now=dt.datetime(2026, 7, 8, 9))
    assert [n.file for n in result.notes if n.code == "late-replaces-on-time"] == ["二季度.xlsx"]
