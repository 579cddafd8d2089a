"""A saved mail counts as received when its own mailbox's server stamped it (the topmost Received: header), not
at the Date the sender's computer wrote; a Date far from that time is pointed out."""

from __future__ import annotations

import datetime as dt
import email
import email.policy

import pytest

from conftest import fill
from tuanjian_xlsx import clock
from tuanjian_xlsx.intake import read_head, received_date
from tuanjian_xlsx.merge import merge
from tuanjian_xlsx.workspace import init_workspace

VISIT = {"报送单位": "源汇区团委", "报送期": "2026-03", "填表时间": dt.datetime(2026, 3, 5), "姓名": "张三",
         "单位职务": "书记", "走访团组织名称": "一中团委", "走访形式": "座谈交流", "团干部": 2, "团员青年": 15,
         "基层团组织工作开展情况": "好", "基层团组织工作亮点": "多"}

HEAD = """Received: from mx.county.example (mx.county.example [10.1.2.3])
\tby mxhz.163.com (Coremail) with SMTP id abc
\tfor <lhtswzxb@163.com>; {server} +0800 (CST)
Received: from PC-01 ([192.168.1.5]) by mx.county.example with ESMTPA; Thu, 9 Apr 2026 16:29:58 +0800
From: 源汇区团委 <yuanhui@county.example>
To: lhtswzxb@163.com
Subject: =?utf-8?b?5LiJ5pyI6LWw5Z+65bGC?=
Date: {date}
MIME-Version: 1.0
"""


def _local(text: str) -> dt.datetime:
    from email.utils import parsedate_to_datetime

    return clock.local(parsedate_to_datetime(text))


@pytest.mark.parametrize("raw, expected", [
    ("from a by b; Thu, 9 Apr 2026 16:30:05 +0800 (CST)", "Thu, 9 Apr 2026 16:30:05 +0800"),
    ("from a (b [1.2.3.4]) by c (Postfix) with ESMTPS id X for <x@y>; Thu, 9 Apr 2026 08:30:05 +0000",
     "Thu, 9 Apr 2026 08:30:05 +0000"),
    # "-0000" is UTC (qmail writes it; RFC 5322 3.3), not the local time Python's parser leaves it as
    ("by mail.example.com; 9 Apr 2026 16:30:05 -0000", "9 Apr 2026 16:30:05 +0000"),
    ("(qmail 1234 invoked by uid 0); 10 Apr 2026 16:30:05 -0000 (GMT)", "10 Apr 2026 16:30:05 +0000"),
    ("from a by b with SMTP id 1", None),                 # no date at all
    ("from a by b; Thu, 99 Foo 2026 25:61:00 +0800", None),  # malformed
    ("from a by b; Thu, 9 Apr 9999 16:30:05 +0800", None),   # out of range
])
def test_the_time_a_received_header_was_stamped(raw, expected):
    assert received_date(raw) == (_local(expected) if expected else None)


def test_the_topmost_received_header_is_the_mailboxs_own(tmp_path):
    raw = HEAD.format(date="Mon, 30 Mar 2026 08:00:00 +0800", server="Thu, 9 Apr 2026 16:30:05") + "\nhello\n"
    head = read_head(email.message_from_string(raw, policy=email.policy.default))
    assert head.server_date == _local("Thu, 9 Apr 2026 16:30:05 +0800")
    assert head.date == _local("Mon, 30 Mar 2026 08:00:00 +0800")


def _mail(data: bytes, date: str, received: bool = True, server: str = "Thu, 9 Apr 2026 16:30:05") -> bytes:
    from email.message import EmailMessage

    msg = EmailMessage()
    head = email.message_from_string(HEAD.format(date=date, server=server), policy=email.policy.default)
    for key, value in head.items():
        if received or key != "Received":
            msg[key] = value
    msg.set_content("请查收")
    msg.add_attachment(data, maintype="application", subtype="octet-stream", filename="三月走基层.xlsx")
    return bytes(msg)


def test_a_unit_with_a_wrong_pc_clock_is_judged_by_the_servers_time(tmp_path, templates):
    """The county's PC says 8 April (on time); the mail reached the committee's server on 12 April (after the
    10 April deadline): late, with a warning about the clock; 来源 says 服务器收信时间."""
    import openpyxl

    root = tmp_path / "ws"
    init_workspace(root)
    data = fill(templates["visit_report"], tmp_path / "f.xlsx", VISIT).read_bytes()
    raw = _mail(data, "Wed, 8 Apr 2026 09:00:00 +0800", server="Sun, 12 Apr 2026 10:15:00")
    (root / "收件箱" / "来信.eml").write_bytes(raw)
    result = merge(root, as_of=dt.date(2026, 4, 30), now=dt.datetime(2026, 4, 30, 9))
    item = next(i for i in result.items if i.unit == "源汇区团委" and i.period.code == "2026-03"
                and i.form_id == "visit_report")
    assert item.status == "late" and item.received == _local("Sun, 12 Apr 2026 10:15:00 +0800")
    (ingested,) = result.ingested
    import sqlite3

    con = sqlite3.connect(root / ".tuanjian" / "ledger.sqlite")
    basis, stored = con.execute("SELECT received_basis, result FROM files").fetchone()
    assert basis == "server" and "mail-clock" in stored and "发件电脑时间可能不准" in stored
    sources = openpyxl.load_workbook(result.master, data_only=True)["来源"]
    assert [row[3] for row in sources.iter_rows(min_row=2, values_only=True)] == ["服务器收信时间"]


def test_without_received_headers_the_date_is_used(tmp_path, templates):
    root = tmp_path / "ws"
    init_workspace(root)
    data = fill(templates["visit_report"], tmp_path / "f.xlsx", VISIT).read_bytes()
    (root / "收件箱" / "来信.eml").write_bytes(_mail(data, "Wed, 8 Apr 2026 09:00:00 +0800", received=False))
    result = merge(root, as_of=dt.date(2026, 4, 30), now=dt.datetime(2026, 4, 30, 9))
    item = next(i for i in result.items if i.unit == "源汇区团委" and i.period.code == "2026-03"
                and i.form_id == "visit_report")
    assert item.status == "on_time" and item.received == _local("Wed, 8 Apr 2026 09:00:00 +0800")


def _machine_zone(monkeypatch, name: str):
    """The machine's zone set to `name` for one test (whatever this machine's is), then set back, with the
    committee's clock as it was."""
    import time

    monkeypatch.setenv("TZ", name)
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()
    clock.set_zone(clock.BEIJING)


@pytest.fixture
def in_beijing(monkeypatch):
    yield from _machine_zone(monkeypatch, "Asia/Shanghai")


def test_a_mail_stamped_minus_0000_half_an_hour_after_the_deadline_is_late(in_beijing):
    """qmail stamps its Received: header in UTC as "-0000": 16:30 UTC on 10 April is 00:30 on 11 April in Beijing,
    half an hour after a deadline of 10 April (it was read as 16:30 Beijing time, on time)."""
    from tuanjian_xlsx.intake import mail_date

    assert received_date("(qmail 1234 invoked by uid 0); 10 Apr 2026 16:30:05 -0000") == dt.datetime(2026, 4, 11, 0, 30, 5)
    assert mail_date("Fri, 10 Apr 2026 16:30:05 -0000") == dt.datetime(2026, 4, 11, 0, 30, 5)
    assert mail_date("Fri, 10 Apr 2026 16:30:05 +0800") == dt.datetime(2026, 4, 10, 16, 30, 5)
    assert mail_date("Fri, 10 Apr 2026 16:30:05") == dt.datetime(2026, 4, 10, 16, 30, 5)  # no zone: local time


@pytest.fixture
def on_another_zone(monkeypatch):
    """A server far from Beijing (on New York time, say)."""
    yield from _machine_zone(monkeypatch, "America/New_York")


def test_arrivals_are_beijing_time_whatever_zone_the_computer_is_set_to(tmp_path, templates, on_another_zone):
    """A Linux server is often on UTC (or elsewhere): a mail sent at 07:00 Beijing time on the day after the deadline
    was taken as sent the evening before, on time, and every arrival shown hours off. The committee's clock is
    Beijing time by default (tuanjian.toml [reporting] timezone), whatever the machine's zone; "本机" keeps the
    machine's own."""
    from tuanjian_xlsx import api

    root = tmp_path / "ws"
    init_workspace(root)
    body = fill(templates["visit_report"], tmp_path / "f.xlsx", VISIT).read_bytes()
    msg = email.message.EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "源汇区团委 <yuanhui@county.example>", "lhtswzxb@163.com", "走基层"
    msg["Date"] = "Sat, 11 Apr 2026 07:00:00 +0800"  # due 2026-04-10: late, by an hour past midnight in Beijing
    msg.add_attachment(body, maintype="application", subtype="octet-stream", filename="三月.xlsx")
    (root / "收件箱" / "三月.eml").write_bytes(bytes(msg))
    result = api.merge(root, as_of=dt.date(2026, 4, 20)).merge
    item = next(i for i in result.items if i.unit == "源汇区团委" and i.period.code == "2026-03"
                and i.form_id == "visit_report")
    assert (item.status, item.received) == ("late", dt.datetime(2026, 4, 11, 7, 0))
    assert clock.now() - dt.datetime.now(clock.BEIJING).replace(tzinfo=None) < dt.timedelta(seconds=5)

    toml = root / "tuanjian.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('timezone = "+08:00"', 'timezone = "本机"'),
                    encoding="utf-8")
    other = tmp_path / "ws2"
    import shutil

    shutil.copytree(root, other, ignore=shutil.ignore_patterns(".tuanjian", "汇总", "退回"))
    result = api.merge(other, as_of=dt.date(2026, 4, 20)).merge
    item = next(i for i in result.items if i.unit == "源汇区团委" and i.period.code == "2026-03"
                and i.form_id == "visit_report")
    assert (item.status, item.received) == ("on_time", dt.datetime(2026, 4, 10, 19, 0))  # New York's evening


def test_a_time_zone_setting_that_is_no_zone_is_named(tmp_path):
    from tuanjian_xlsx.issues import ConfigError
    from tuanjian_xlsx.plan import Workspace

    init_workspace(tmp_path)
    toml = tmp_path / "tuanjian.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('timezone = "+08:00"', 'timezone = "北京"'),
                    encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        Workspace.load(tmp_path)
    assert any("timezone" in (i.field or "") and "+08:00" in i.message for i in exc.value.issues)


@pytest.mark.parametrize("text", ["Fri, 10 Apr 2026 16:30:00 CST", "Fri Apr 10 16:30:00 CST 2026",
                                  "Fri, 10 Apr 2026 16:30:00 cst"])
def test_cst_in_a_mail_date_is_china_standard_time(text):
    """Java (and so many OA systems and Chinese mail servers) writes Beijing time as "CST"; Python reads CST as US
    Central Time, 14 hours behind — a mail sent at 16:30 on the due date was taken as sent at 06:30 the next day,
    late by a day, with no clock warning (the shift is under a day)."""
    from tuanjian_xlsx.intake import mail_date

    assert mail_date(text) == dt.datetime(2026, 4, 10, 16, 30)
    assert mail_date("Fri, 10 Apr 2026 16:30:00 -0600") == dt.datetime(2026, 4, 11, 6, 30)  # a numeric zone stands


@pytest.mark.parametrize("written, offset", [("北京时间", 8), ("Asia/Shanghai", 8), ("UTC", 0), ("+09:00", 9)])
def test_a_time_zone_is_taken_as_staff_write_it(written, offset):
    """The settings' own comment calls it 北京时间, and the old README told servers Asia/Shanghai: both are taken."""
    zone = clock.parse_zone(written)
    assert zone is not False and zone is not None
    assert zone.utcoffset(None) == dt.timedelta(hours=offset)
