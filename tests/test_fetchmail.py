"""Fetching from a real IMAP server on loopback (Debian's dovecot, started by the test)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import fill
from mailservers import PASSWORD, USER, dovecot, imap_settings, set_addresses
from mailservers import deliver as _deliver
from mailservers import mail as _mail
from tuanjian_xlsx.cli import cli
from tuanjian_xlsx.merge import merge
from tuanjian_xlsx.workspace import init_workspace

VISIT = {"报送单位": "源汇区团委", "报送期": "2026-03", "填表时间": dt.datetime(2026, 3, 5), "姓名": "张三",
         "单位职务": "书记", "走访团组织名称": "一中团委", "走访形式": "座谈交流", "团干部": 2, "团员青年": 15,
         "基层团组织工作开展情况": "好", "基层团组织工作亮点": "多"}


@pytest.fixture
def imap_server():
    with dovecot() as port:
        yield port


def _workspace(root: Path, port: int) -> Path:
    init_workspace(root)
    imap_settings(root, port)
    set_addresses(root, {"源汇区团委": "yuanhui@county.example"})
    return root


def test_fetch_twice_takes_once_and_lateness_comes_from_arrival(tmp_path, imap_server, templates, monkeypatch):
    monkeypatch.setenv("TUANJIAN_IMAP_PASSWORD", PASSWORD)
    root = _workspace(tmp_path / "ws", imap_server)
    on_time = fill(templates["visit_report"], tmp_path / "a.xlsx", VISIT).read_bytes()
    other = dict(VISIT, 报送单位="郾城区团委")
    late = fill(templates["visit_report"], tmp_path / "b.xlsx", other).read_bytes()
    # written the day before, arrived on 4月9日 (due 4月10日) / arrived 4月12日, two days late
    _deliver(imap_server, _mail("源汇区团委 <yuanhui@county.example>", {"源汇区团委_3月_走基层.xlsx": on_time},
                                dt.datetime(2026, 4, 8, 9)), dt.datetime(2026, 4, 9, 17, 0))
    _deliver(imap_server, _mail("someone@else.example", {"郾城区3月.xlsx": late}, dt.datetime(2026, 4, 1, 9)),
             dt.datetime(2026, 4, 12, 8, 0))
    _deliver(imap_server, _mail("x@y.example", {}, dt.datetime(2026, 4, 2)), dt.datetime(2026, 4, 2, 8, 0))
    r = CliRunner().invoke(cli, ["fetch-mail", "-w", str(root)])
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[0] == "收取 3 封邮件 · 报表附件 2 份 · 已收过 0 封（INBOX）"
    r = CliRunner().invoke(cli, ["fetch-mail", "-w", str(root)])
    assert r.output.splitlines()[0] == "收取 0 封邮件 · 报表附件 0 份 · 已收过 3 封（INBOX）"
    result = merge(root, as_of=dt.date(2026, 4, 20), now=dt.datetime(2026, 4, 20, 9))
    status = {(i.unit, i.period.code): i for i in result.items if i.form_id == "visit_report"}
    assert status[("源汇区团委", "2026-03")].status == "on_time"
    assert status[("郾城区团委", "2026-03")].status == "late"
    assert status[("郾城区团委", "2026-03")].received == dt.datetime(2026, 4, 12, 8, 0)
    import sqlite3

    con = sqlite3.connect(root / ".tuanjian" / "ledger.sqlite")
    rows = dict(con.execute("SELECT unit, result FROM files"))
    assert "sender-mismatch" not in rows["源汇区团委"] and "sender-mismatch" not in rows["郾城区团委"]  # 郾城 has no address
    origins = [o for (o,) in con.execute("SELECT origin FROM files")]
    assert all(o.startswith(f"imap://{USER}@127.0.0.1/INBOX#<") for o in origins)


def test_dry_run_takes_nothing_and_a_wrong_password_is_chinese(tmp_path, imap_server, templates, monkeypatch):
    root = _workspace(tmp_path / "ws", imap_server)
    data = fill(templates["visit_report"], tmp_path / "a.xlsx", VISIT).read_bytes()
    _deliver(imap_server, _mail("yuanhui@county.example", {"表.xlsx": data}, dt.datetime(2026, 4, 8)),
             dt.datetime(2026, 4, 8, 10))
    r = CliRunner().invoke(cli, ["fetch-mail", "-w", str(root)])
    assert r.exit_code == 1 and "未找到收信密码：请设置环境变量 TUANJIAN_IMAP_PASSWORD" in r.output
    monkeypatch.setenv("TUANJIAN_IMAP_PASSWORD", "wrong")
    r = CliRunner().invoke(cli, ["fetch-mail", "-w", str(root)])
    assert r.exit_code == 1 and f"拒绝登录：请核对用户名 {USER} 和密码" in r.output
    monkeypatch.setenv("TUANJIAN_IMAP_PASSWORD", PASSWORD)
    r = CliRunner().invoke(cli, ["fetch-mail", "-w", str(root), "--dry-run"])
    assert r.output.splitlines()[0] == "可收取 1 封邮件 · 报表附件 1 份 · 已收过 0 封（INBOX）"
    assert not (root / ".tuanjian" / "archive").exists() or not any((root / ".tuanjian" / "archive").iterdir())
    r = CliRunner().invoke(cli, ["merge", "-w", str(root), "--fetch", "--as-of", "2026-04-20"])
    assert r.exit_code == 0 and r.output.splitlines()[0].startswith("收取 1 封邮件")


def test_malformed_mails_on_a_real_server_are_refused_once_and_never_block(tmp_path, imap_server, templates, monkeypatch):
    import re

    monkeypatch.setenv("TUANJIAN_IMAP_PASSWORD", PASSWORD)
    root = _workspace(tmp_path / "ws", imap_server)
    data = fill(templates["visit_report"], tmp_path / "a.xlsx", VISIT).read_bytes()
    other = fill(templates["visit_report"], tmp_path / "b.xlsx", dict(VISIT, 报送单位="郾城区团委")).read_bytes()
    spoil = lambda raw, header, value: re.sub(rb"(?mi)^" + header + rb":.*\r?\n", header + b": " + value + b"\r\n",  # noqa: E731
                                              raw, count=1)
    when = dt.datetime(2026, 4, 9, 17, 0)
    _deliver(imap_server, spoil(_mail("a@county.example", {"坏.xlsx": data}, when), b"From", b'"'), when)
    _deliver(imap_server, spoil(_mail("b@county.example", {"好.xlsx": other}, when), b"Message-ID", b"<>"), when)
    _deliver(imap_server, spoil(_mail("c@county.example", {"坏2.xlsx": data}, when), b"From", b"<a@[>"), when)
    r = CliRunner().invoke(cli, ["fetch-mail", "-w", str(root)])
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[0] == "收取 3 封邮件 · 报表附件 1 份 · 已收过 0 封（INBOX） · 无法解析 2 封，已登记为退回"
    r = CliRunner().invoke(cli, ["fetch-mail", "-w", str(root)])
    assert r.exit_code == 0 and r.output.splitlines()[0] == "收取 0 封邮件 · 报表附件 0 份 · 已收过 3 封（INBOX）"
    import sqlite3

    con = sqlite3.connect(root / ".tuanjian" / "ledger.sqlite")
    assert sorted(con.execute("SELECT name, valid FROM files")) == [("好.xlsx", 1), ("邮件1.eml", 0), ("邮件3.eml", 0)]
    keys = sorted(k for (k,) in con.execute("SELECT key FROM mails"))
    assert len(keys) == 3 and re.fullmatch(r"INBOX/\d+/2", keys[-1])  # no usable Message-ID: folder/UIDVALIDITY/UID


def test_a_mail_bringing_only_a_word_copy_is_refused_and_said_as_a_saved_one_is(tmp_path, imap_server, monkeypatch):
    """A mail from the mailbox whose only attachment is a Word copy of the form (or a scan, a RAR) was dropped with
    "（无报表附件）" in the log: nothing in the ledger, no 退回, the unit 未报 and chased. It is refused, naming what
    it brought, as the same mail saved into 收件箱 is; a mail of text alone (a "收到，谢谢") is still nothing."""
    import sqlite3

    monkeypatch.setenv("TUANJIAN_IMAP_PASSWORD", PASSWORD)
    root = _workspace(tmp_path / "ws", imap_server)
    _deliver(imap_server, _mail("源汇区团委 <yuanhui@county.example>", {"走基层报告单3月.docx": b"PK\x03\x04 word"},
                                dt.datetime(2026, 4, 8, 9)), dt.datetime(2026, 4, 8, 9, 5))
    _deliver(imap_server, _mail("源汇区团委 <yuanhui@county.example>", {}, dt.datetime(2026, 4, 8, 10)),
             dt.datetime(2026, 4, 8, 10, 5))
    r = CliRunner().invoke(cli, ["fetch-mail", "-w", str(root)])
    assert r.exit_code == 0, r.output
    rows = sqlite3.connect(root / ".tuanjian" / "ledger.sqlite").execute("SELECT name, valid, result FROM files").fetchall()
    assert len(rows) == 1 and rows[0][1] == 0
    assert "mail-no-report" in rows[0][2] and "走基层报告单3月.docx" in rows[0][2]


def test_two_different_mails_with_one_message_id_are_both_taken(tmp_path, imap_server, templates, monkeypatch):
    """An OA gateway gave two units' mails the same Message-ID: the second was taken for the first (already
    taken) and never read — its report lost, the unit chased with a 催报. Mails are keyed by the ID and their
    size; the same mail met again (a second run) is still taken once."""
    import re

    monkeypatch.setenv("TUANJIAN_IMAP_PASSWORD", PASSWORD)
    root = _workspace(tmp_path / "ws", imap_server)
    for n, unit in enumerate(("源汇区团委", "郾城区团委")):
        body = fill(templates["visit_report"], tmp_path / f"{n}.xlsx", dict(VISIT, 报送单位=unit)).read_bytes()
        raw = _mail(f"u{n}@county.example", {f"{unit}3月.xlsx": body}, dt.datetime(2026, 4, 8, 9 + n))
        raw = re.sub(rb"(?mi)^Message-ID:.*$", b"Message-ID: <same@oa.county.example>", raw, count=1)
        _deliver(imap_server, raw, dt.datetime(2026, 4, 8, 9 + n, 5))
    r = CliRunner().invoke(cli, ["fetch-mail", "-w", str(root)])
    assert r.output.splitlines()[0] == "收取 2 封邮件 · 报表附件 2 份 · 已收过 0 封（INBOX）", r.output
    r = CliRunner().invoke(cli, ["fetch-mail", "-w", str(root)])
    assert r.output.splitlines()[0] == "收取 0 封邮件 · 报表附件 0 份 · 已收过 2 封（INBOX）", r.output


def test_merge_fetch_counts_notes_and_returns_what_the_mailbox_brought(tmp_path, imap_server, templates, monkeypatch):
    """merge --fetch said 没有新文件 beside the 退回件 it wrote for a fetched file, and what files fetched from the
    mailbox did to earlier ones (two versions of one report in one mail) was never noted: only the inbox's were."""
    from tuanjian_xlsx import api

    monkeypatch.setenv("TUANJIAN_IMAP_PASSWORD", PASSWORD)
    root = _workspace(tmp_path / "ws", imap_server)
    draft = fill(templates["visit_report"], tmp_path / "d.xlsx", dict(VISIT, 团员青年=10)).read_bytes()
    fixed = fill(templates["visit_report"], tmp_path / "f.xlsx", dict(VISIT, 团员青年=12)).read_bytes()
    bad = fill(templates["visit_report"], tmp_path / "b.xlsx", dict(VISIT, 报送单位="郾城区团委", 团干部=-1)).read_bytes()
    _deliver(imap_server, _mail("源汇区团委 <yuanhui@county.example>", {"走基层（定稿）.xlsx": fixed, "走基层.xlsx": draft},
                                dt.datetime(2026, 4, 8, 9)), dt.datetime(2026, 4, 8, 9, 5))
    _deliver(imap_server, _mail("郾城 <yc@county.example>", {"郾城.xlsx": bad}, dt.datetime(2026, 4, 8, 10)),
             dt.datetime(2026, 4, 8, 10, 5))
    got = api.merge(root, fetch=True, as_of=dt.date(2026, 4, 20), now=dt.datetime(2026, 4, 20, 9))
    m = got.merge
    assert (m.received, m.valid, len(m.invalid)) == (3, 2, 1)
    assert [n.code for n in m.notes].count("replaced-together") == 1
    lines = got.lines()
    assert not any("运行 tuanjian merge" in line for line in lines) and any("退回  郾城.xlsx" in line for line in lines)


def test_fetch_mail_then_merge_notes_what_the_mail_brought(tmp_path, imap_server, templates, monkeypatch):
    """fetch-mail records the files itself: the merge after it took them for old ones, and what they did to the
    files before them (two versions of one report in one mail) was never noted."""
    monkeypatch.setenv("TUANJIAN_IMAP_PASSWORD", PASSWORD)
    root = _workspace(tmp_path / "ws", imap_server)
    draft = fill(templates["visit_report"], tmp_path / "d.xlsx", dict(VISIT, 团员青年=10)).read_bytes()
    fixed = fill(templates["visit_report"], tmp_path / "f.xlsx", dict(VISIT, 团员青年=12)).read_bytes()
    _deliver(imap_server, _mail("源汇区团委 <yuanhui@county.example>", {"走基层（定稿）.xlsx": fixed, "走基层.xlsx": draft},
                                dt.datetime(2026, 4, 8, 9)), dt.datetime(2026, 4, 8, 9, 5))
    assert CliRunner().invoke(cli, ["fetch-mail", "-w", str(root)]).exit_code == 0
    result = merge(root, as_of=dt.date(2026, 4, 20), now=dt.datetime(2026, 4, 20, 9))
    assert [n.code for n in result.notes].count("replaced-together") == 1
    (elsewhere,) = [n for n in result.notes if n.code == "recorded-elsewhere"]  # not only 没有新文件
    assert "另有 2 份文件" in elsewhere.message and "有效 2 份" in elsewhere.message
    again = merge(root, as_of=dt.date(2026, 4, 21), now=dt.datetime(2026, 4, 21, 9))  # said once, kept
    assert "replaced-together" not in [n.code for n in again.notes]
