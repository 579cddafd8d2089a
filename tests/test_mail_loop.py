"""Closing the loop by mail against real servers on loopback (dovecot for IMAP, aiosmtpd for SMTP): replies to every
file received, reminders, the watch loop, mail text templates. The servers are started once for the module; each
test has its own workspace and IMAP folder."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from conftest import fill, ledger_at
from mailservers import PASSWORD, deliver, dovecot, free_port, imap_settings, mail, set_addresses, smtp_server, smtp_settings
from tuanjian_xlsx import api
from tuanjian_xlsx.cli import cli
from tuanjian_xlsx.issues import TuanjianError
from tuanjian_xlsx.ledger import MIGRATIONS, Ledger
from tuanjian_xlsx.mail import NOT_ASCII
from tuanjian_xlsx.mailtext import parse
from tuanjian_xlsx.watch import LOG_FILE, WatchLock, next_retry
from tuanjian_xlsx.workspace import init_workspace

VISIT = {"报送单位": "源汇区团委", "报送期": "2026-03", "填表时间": dt.datetime(2026, 3, 5), "姓名": "张三",
         "单位职务": "书记", "走访团组织名称": "一中团委", "走访形式": "座谈交流", "团干部": 2, "团员青年": 15,
         "基层团组织工作开展情况": "好", "基层团组织工作亮点": "多"}
ADDRESSES = {"源汇区团委": "yuanhui@county.example", "郾城区团委": "yancheng@county.example",
             "舞阳县团委": "wuyang@county.example", "组织部": "zuzhi@city.example"}
REFUSED = "wuyang@county.example"
ARRIVED = dt.datetime(2026, 4, 9, 17, 0)  # 县区团委's 2026-03 visits are due 2026-04-10


@pytest.fixture(scope="module")
def servers():
    with dovecot() as imap, smtp_server() as (inbox, smtp):
        inbox.refuse.add(REFUSED)
        yield imap, inbox, smtp


@pytest.fixture
def workspace(tmp_path, servers, monkeypatch, request) -> tuple[Path, str]:
    """A workspace reading its own IMAP folder (the second value) and sending through the loopback SMTP server;
    reminders off unless a test turns them on."""
    imap, inbox, smtp = servers
    inbox.messages.clear()  # the server is shared: each test reads only its own mail
    monkeypatch.setenv("TUANJIAN_IMAP_PASSWORD", PASSWORD)
    root, folder = tmp_path / "ws", request.node.name.removeprefix("test_")[:30]
    init_workspace(root)
    imap_settings(root, imap, folder=folder)
    smtp_settings(root, smtp)
    set_addresses(root, ADDRESSES)
    _settings(root, "reminders = true", "reminders = false")
    return root, folder


def _settings(root: Path, old: str, new: str) -> None:
    toml = root / "tuanjian.toml"
    text = toml.read_text(encoding="utf-8")
    assert old in text
    toml.write_text(text.replace(old, new), encoding="utf-8")


def _form(templates, tmp_path, name: str, **values) -> bytes:
    return fill(templates["visit_report"], tmp_path / name, dict(VISIT, **values)).read_bytes()


def _cycle(root: Path, at: dt.datetime) -> tuple[api.Watched, list[str]]:
    said: list[str] = []
    return api.watch(root, once=True, say=said.append, clock=lambda: at, sleep=lambda s: None,
                     should_stop=lambda: False), said


def _states(root: Path) -> dict[str, str]:
    con = sqlite3.connect(root / ".tuanjian" / "ledger.sqlite")
    try:
        return dict(con.execute("SELECT f.name, r.state FROM replies r JOIN files f USING (sha256)"))
    finally:
        con.close()


def test_each_new_file_gets_one_reply_and_a_refused_recipient_stops_no_other(workspace, servers, templates, tmp_path):
    imap, inbox, _ = servers
    root, folder = workspace
    deliver(imap, mail("源汇区团委 <yuanhui@county.example>", {"源汇区三月.xlsx": _form(templates, tmp_path, "a.xlsx")},
                       ARRIVED), ARRIVED, folder)
    deliver(imap, mail("yancheng@county.example", {"郾城区三月.xlsx": _form(templates, tmp_path, "b.xlsx",
                                                                       报送单位="郾城区团委", 团干部=-2)}, ARRIVED), ARRIVED, folder)
    deliver(imap, mail(REFUSED, {"舞阳县三月.xlsx": _form(templates, tmp_path, "c.xlsx", 报送单位="舞阳县团委")}, ARRIVED),
            ARRIVED, folder)
    fill(templates["visit_report"], root / "收件箱" / "组织部三月.xlsx", dict(VISIT, 报送单位="组织部"))  # due 3月28日
    fill(templates["visit_report"], root / "收件箱" / "召陵区三月.xlsx", dict(VISIT, 报送单位="召陵区团委"))  # no address
    before = len(inbox.messages)

    result, said = _cycle(root, ARRIVED + dt.timedelta(minutes=10))
    assert said[0] == "2026-04-09 17:10 收信 3 封 · 新文件 5 份（有效 4，有错 1） · 回执 2 · 退回 1 · 有问题，见下"
    assert result.exit_code == 1  # one refused: the job is not wholly done
    (receipt,) = inbox.to("yuanhui@county.example")
    assert receipt["Subject"] == "【组织部】回执：已收到源汇区团委《附件1 团干部走基层情况报告单》（2026年3月）"
    assert receipt["Auto-Submitted"] == "auto-replied"  # so that no other robot answers it
    body = receipt.get_body(("plain",)).get_content()
    assert "（文件 源汇区三月.xlsx）已于 2026-04-09 17:00 收到，校验通过，按时报送（截止日期 2026-04-10）。" in body
    assert "另有" not in body and body.rstrip().endswith("—— 共青团漯河市委组织部")
    (late,) = inbox.to("zuzhi@city.example")  # a plain file: to the roster address; first registered now
    assert "校验通过，逾期 12 天（截止日期 2026-03-28）" in late.get_body(("plain",)).get_content()
    (returned,) = inbox.to("yancheng@county.example")
    assert returned["Subject"] == "【组织部】退回：《附件1 团干部走基层情况报告单》（2026年3月）有 1 处需要修改"  # no file name
    text = returned.get_body(("plain",)).get_content()
    assert text.startswith("郾城区团委：您单位报送的《附件1 团干部走基层情况报告单》（2026年3月）（文件 郾城区三月.xlsx）有 1 处需要修改：")
    assert "“团干部”不能为负数" in text and "截止日期：2026-04-10。报送邮箱：lhtswzxb@163.com。" in text
    (part,) = returned.iter_attachments()
    assert part.get_filename() == "郾城区团委_2026-03_附件1_团干部走基层情况报告单_退回.xlsx"
    book = openpyxl.load_workbook(io.BytesIO(part.get_content()))
    assert book.sheetnames[0] == "问题清单" and book["走基层报告单"]["C9"].comment is not None
    assert inbox.to(REFUSED) == []
    assert any(line.startswith(f"  被拒收 回执 → {REFUSED}：舞阳县团委 舞阳县三月.xlsx：服务器拒收（550）") for line in said)
    assert any(line.startswith("  无地址：召陵区团委 召陵区三月.xlsx：没有发件邮箱，名单中也没有该单位的邮箱，未发回执") for line in said)
    log = (root / LOG_FILE).read_text(encoding="utf-8-sig").splitlines()
    assert log == said

    result, said = _cycle(root, ARRIVED + dt.timedelta(minutes=20))  # nothing new: nothing sent, nobody retried
    assert said == ["2026-04-09 17:20 收信 0 封 · 没有新文件 · 回执 0 · 退回 0"] and result.exit_code == 0
    api.ledger_rebuild(root, now=ARRIVED + dt.timedelta(minutes=25))  # the rebuilt ledger owes nothing again
    r = CliRunner().invoke(cli, ["merge", "-w", str(root), "--reply", "--json"])  # nor does a re-merge
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["replies"]["sent"] == [] and len(inbox.messages) == before + 3
    assert _states(root) == {"源汇区三月.xlsx": "sent", "郾城区三月.xlsx": "sent", "舞阳县三月.xlsx": "refused",
                             "组织部三月.xlsx": "sent", "召陵区三月.xlsx": "no-address"}


def test_one_mail_gets_one_reply_mail_from_machines_or_ourselves_none_and_an_address_a_few_a_day(
        workspace, servers, templates, tmp_path):
    imap, inbox, _ = servers
    root, folder = workspace
    _settings(root, "reply_limit_per_day = 20", "reply_limit_per_day = 1")
    unit, many = "yuanhui@county.example", "many@county.example"
    junk = {f"看这里！点击领奖{n}.xlsx": b"not a workbook %d" % n for n in range(3)}  # a stranger's names and bytes
    deliver(imap, mail(unit, {"源汇区三月.xlsx": _form(templates, tmp_path, "a.xlsx"),
                              "源汇区错.xlsx": _form(templates, tmp_path, "b.xlsx", 团干部=-2)}, ARRIVED), ARRIVED, folder)
    deliver(imap, mail(unit, {"再一份.xlsx": _form(templates, tmp_path, "c.xlsx", 团员青年=17)}, ARRIVED), ARRIVED, folder)
    deliver(imap, mail("stranger@else.example", {**junk, "x.xlsx": b"x"}, ARRIVED), ARRIVED, folder)  # no unit: none
    deliver(imap, mail(many, {"郾城区.xlsx": _form(templates, tmp_path, "y.xlsx", 报送单位="郾城区团委")}, ARRIVED),
            ARRIVED, folder)  # not the unit's address: to the unit's, the sender in Cc
    for n, (sender, name, headers) in enumerate((("robot@county.example", "自动.xlsx", {"Auto-Submitted": "auto-replied"}),
                                                 ("list@county.example", "群发.xlsx", {"Precedence": "bulk"}),
                                                 ("lhtswzxb@city.example", "自己.xlsx", {}))):  # our own address
        form = _form(templates, tmp_path, name, 报送单位="舞阳县团委", 团员青年=20 + n)
        deliver(imap, mail(sender, {name: form}, ARRIVED, headers=headers), ARRIVED, folder)

    _, said = _cycle(root, ARRIVED + dt.timedelta(minutes=10))
    (reply,) = inbox.to(unit)  # the first mail's two files of the unit in one reply; the second mail's waits
    assert reply["Subject"] == "【组织部】已收到 2 份报表：校验通过 1 份，需要修改 1 份"  # no name from the mail
    assert reply["Auto-Submitted"] == "auto-replied" and reply["Cc"] is None
    body = reply.get_body(("plain",)).get_content()
    assert "1. 源汇区三月.xlsx：源汇区团委《附件1 团干部走基层情况报告单》2026年3月，校验通过，按时报送（截止日期 2026-04-10）。" in body
    assert ("源汇区错.xlsx：源汇区团委《附件1 团干部走基层情况报告单》2026年3月，有 1 处需要修改，"
            "见附件《源汇区团委_2026-03_附件1_团干部走基层情况报告单_退回.xlsx》：") in body
    assert not any(name in body for name in junk) and "请打开附件中的退回件" in body
    # a draft beside its corrected copy: sent back fixed it would replace the good one, and the unit is told so
    assert "同一封邮件里的 源汇区三月.xlsx 已校验通过并计入；如这份只是它的草稿，不必修改重报" in body
    assert [p.get_filename() for p in reply.iter_attachments()] == ["源汇区团委_2026-03_附件1_团干部走基层情况报告单_退回.xlsx"]
    (other,) = inbox.to("yancheng@county.example")
    assert other["To"] == "yancheng@county.example" and other["Cc"] == many and len(inbox.to(many)) == 1
    assert [m for m in inbox.messages if m[0][0] in ("robot@county.example", "list@county.example",
                                                      "lhtswzxb@city.example", "stranger@else.example")] == []
    text = "\n".join(said)
    assert "  不自动回复 自动.xlsx：来信是自动发送的（Auto-Submitted: auto-replied）" in text
    assert "  不自动回复 群发.xlsx：来信是群发或自动发送的（Precedence: bulk）" in text
    assert "  不自动回复 自己.xlsx：来信的发件人就是本工作区的发件邮箱" in text
    assert "  不自动回复 看这里！点击领奖0.xlsx、看这里！点击领奖1.xlsx、看这里！点击领奖2.xlsx 等 4 份：未能认出报送单位" in text
    assert f"  今天给 {unit} 的自动回复已满 1 封（tuanjian.toml 的 [watch] reply_limit_per_day），其余 1 份明天再发" in said
    states = _states(root)
    assert [states[n] for n in ("自动.xlsx", "群发.xlsx", "自己.xlsx", "看这里！点击领奖0.xlsx", "再一份.xlsx",
                                "源汇区三月.xlsx")] == ["no-reply"] * 4 + ["due", "sent"]
    _, said = _cycle(root, ARRIVED + dt.timedelta(minutes=20))  # listed once
    assert not any("不自动回复" in line for line in said) and len(inbox.to(unit)) == 1

    # the next day: the rest; a later copy of a report first sent in time is still 按时, as in the master
    _settings(root, "reply_limit_per_day = 1", "reply_limit_per_day = 20")
    later = dt.datetime(2026, 4, 12, 9, 0)
    deliver(imap, mail(unit, {"源汇区三月改.xlsx": _form(templates, tmp_path, "d.xlsx", 团员青年=16)}, later), later, folder)
    _cycle(root, later + dt.timedelta(minutes=10))
    (receipt,) = [m for m in inbox.to(unit)[1:] if "源汇区三月改.xlsx" in m.get_body(("plain",)).get_content()]
    assert len(inbox.to(unit)) == 3
    body = receipt.get_body(("plain",)).get_content()
    assert "校验通过，按时报送（截止日期 2026-04-10）。" in body
    assert "本期此前已于 2026-04-09 17:00 收到 源汇区三月.xlsx，是否按时以第一份有效文件为准" in body


def test_addresses_the_server_cannot_take_are_refused_alone_and_go_where_the_server_can(workspace, servers):
    _, inbox, smtp = servers
    root, _ = workspace
    _settings(root, 'start = ""', 'start = "2026-03"')
    _settings(root, "remind_every_days = 7", "remind_every_days = 1")
    set_addresses(root, {"源汇区团委": "张三@例子.中国", "郾城区团委": "李四@例子.中国"})  # first in the roster

    def send(now: dt.datetime) -> dict:
        return api.status(root, period="2026-03", as_of=now.date(), send=True, now=now).to_dict()["send"]

    with smtp_server(utf8=False) as (plain, port):  # no SMTPUTF8
        _settings(root, f"smtp_port = {smtp}", f"smtp_port = {port}")
        got = send(dt.datetime(2026, 4, 11, 9, 30))
    assert [(r["unit"], r["reason"]) for r in got["refused"]] == [
        ("源汇区团委", NOT_ASCII), ("郾城区团委", NOT_ASCII)]  # in Chinese, and the session goes on:
    assert [r["unit"] for r in got["sent"]] == ["舞阳县团委", "组织部"] and got["waiting"] == []
    assert sorted(rcpts[0] for rcpts, _ in plain.messages) == ["wuyang@county.example", "zuzhi@city.example"]
    _settings(root, f"smtp_port = {port}", f"smtp_port = {smtp}")  # a server that offers SMTPUTF8
    got = send(dt.datetime(2026, 4, 12, 9, 30))
    assert len(inbox.to("张三@例子.中国")) == len(inbox.to("李四@例子.中国")) == 1


def test_server_away_leaves_replies_owed_and_the_next_cycle_sends_them(workspace, servers, templates, tmp_path):
    imap, inbox, smtp = servers
    root, folder = workspace
    deliver(imap, mail("yuanhui@county.example", {"一.xlsx": _form(templates, tmp_path, "a.xlsx")}, ARRIVED),
            ARRIVED, folder)
    deliver(imap, mail("later@county.example", {"二.xlsx": _form(templates, tmp_path, "b.xlsx", 报送单位="郾城区团委")},
                       ARRIVED), ARRIVED, folder)
    closed = free_port()
    _settings(root, f"smtp_port = {smtp}", f"smtp_port = {closed}")
    result, said = _cycle(root, ARRIVED + dt.timedelta(minutes=10))
    assert said[0].endswith("回执 0 · 退回 0 · 邮件服务器连不上，稍后重试") and result.exit_code == 1
    assert "  回执 2 份未发出：发信服务器连不上，下次自动重试" in said
    assert f"  错误：无法连接发信服务器 127.0.0.1:{closed}（连接被拒绝），未发送任何邮件" in said
    assert _states(root) == {"一.xlsx": "due", "二.xlsx": "due"}

    _settings(root, f"smtp_port = {closed}", f"smtp_port = {smtp}")
    inbox.later.add("yancheng@county.example")  # 450 for the To (the unit's address; the sender in Cc): retried
    result, said = _cycle(root, ARRIVED + dt.timedelta(minutes=20))
    assert len(inbox.to("yuanhui@county.example")) == 1
    assert any(line.startswith("  未发出 回执 → yancheng@county.example（抄送 later@county.example）：郾城区团委 二.xlsx："
                               "yancheng@county.example：服务器拒收（450）") for line in said)
    inbox.later.clear()
    result, said = _cycle(root, ARRIVED + dt.timedelta(minutes=30))
    assert said[0].endswith("回执 1 · 退回 0") and len(inbox.to("yancheng@county.example")) == 1

    # every cycle again with the mailbox away: the next try comes sooner, then later, up to the interval
    _settings(root, f"imap_port = {imap}", f"imap_port = {closed}")
    waits: list[float] = []
    said.clear()
    result = api.watch(root, say=said.append, clock=lambda: ARRIVED + dt.timedelta(hours=1), sleep=waits.append,
                       should_stop=lambda: len(waits) >= 6)
    assert waits == [60, 120, 240, 480, 600, 600] and result.exit_code == 0
    assert said[0].startswith("2026-04-09 18:00 开始自动收发") and said[-1] == "2026-04-09 18:00 已停止"
    assert "  1 分钟后重试" in said and "  8 分钟后重试" in said
    assert f"  错误：无法连接收信服务器 127.0.0.1:{closed}（连接被拒绝），未收取任何邮件" in said


def test_the_wait_while_a_server_is_away_stays_at_the_interval_however_long_it_is_away():
    every, retry, waits = dt.timedelta(minutes=10), None, []
    for _ in range(100):  # 100 cycles ≈ 16 hours away: doubling without a cap overflows a timedelta after 41
        retry = next_retry(retry, every)
        waits.append(retry.total_seconds())
    assert waits == [60, 120, 240, 480] + [600] * 96


def test_a_cycle_killed_while_sending_sends_no_reply_twice_and_loses_none(workspace, servers, templates, tmp_path):
    imap, inbox, _ = servers
    root, folder = workspace
    inbox.stall, stall = "stall@county.example", "stall@county.example"
    deliver(imap, mail(stall, {"先.xlsx": _form(templates, tmp_path, "a.xlsx")}, ARRIVED), ARRIVED, folder)
    later = ARRIVED + dt.timedelta(minutes=1)
    deliver(imap, mail("yancheng@county.example", {"后.xlsx": _form(templates, tmp_path, "b.xlsx", 报送单位="郾城区团委")},
                       later), later, folder)
    script = ("import datetime as dt, sys; from pathlib import Path; from tuanjian_xlsx import api; "
              "api.watch(Path(sys.argv[1]), once=True, clock=lambda: dt.datetime(2026, 4, 9, 17, 10))")
    proc = subprocess.Popen([sys.executable, "-c", script, str(root)], env=dict(os.environ),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert inbox.stalled.wait(60), "the cycle never reached the server"
        assert _states(root) == {"先.xlsx": "sending", "后.xlsx": "due"}  # recorded before it was handed over
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        proc.kill()
        inbox.stall = None
        inbox.release.set()

    result, said = _cycle(root, ARRIVED + dt.timedelta(minutes=20))
    assert said[0].startswith("2026-04-09 17:20 上次的自动收发没有正常结束（tuanjian watch，进程 ")
    assert said[0].endswith("），已接管")
    assert f"  可能未送达 回执 → yuanhui@county.example（抄送 {stall}）：源汇区团委 先.xlsx（2026-04-09 17:10 发送时程序中断）：请向对方确认，需要重发时运行 " \
           f"tuanjian merge --reply --resend " in "\n".join(said)
    assert inbox.to(stall) == [] and len(inbox.to("yancheng@county.example")) == 1  # none twice, none lost
    result, said = _cycle(root, ARRIVED + dt.timedelta(minutes=30))
    assert len(said) == 1 and said[0].endswith("回执 0 · 退回 0")

    with Ledger(root) as ledger:
        (row,) = ledger.replies(["uncertain"])
    r = CliRunner().invoke(cli, ["merge", "-w", str(root), "--reply", "--resend", "0000000", "--json"])
    assert r.exit_code == 1 and json.loads(r.output)["error"]["code"] == "reply-not-found"
    r = CliRunner().invoke(cli, ["merge", "-w", str(root), "--reply", "--dry-run", "--resend", row.file.sha256[:8],
                                 "--json"])
    assert r.exit_code == 0 and [[f["file"] for f in x["files"]] for x in json.loads(r.output)["replies"]["would_send"]] \
        == [["先.xlsx"]]
    assert inbox.to(stall) == []
    r = CliRunner().invoke(cli, ["merge", "-w", str(root), "--reply", "--resend", row.file.sha256[:8]])
    assert r.exit_code == 0 and f"  已发 回执 → yuanhui@county.example（抄送 {stall}）：源汇区团委 先.xlsx" in r.output
    assert len(inbox.to(stall)) == 1


def test_reminders_go_to_the_right_units_on_the_right_day_and_never_twice(workspace, servers, templates, tmp_path,
                                                                          builtin):
    from tuanjian_xlsx.validate import validate_file

    _, inbox, _ = servers
    root, _ = workspace
    _settings(root, "reminders = false", "reminders = true")
    _settings(root, 'start = ""', 'start = "2026-03"')
    _settings(root, 'imap_host = "127.0.0.1"', 'imap_host = ""')  # no mailbox: the cycles only merge and send
    shutil.rmtree(root / "邮件模板")  # a workspace from before mail templates: they are written when first used
    fill(templates["visit_report"], root / "收件箱" / "源汇区.xlsx", VISIT)
    api.merge(root, now=ARRIVED)

    def send(now: dt.datetime, as_of: str, **kw) -> tuple[int, dict]:
        got = api.status(root, period=kw.pop("period", "2026-03"), as_of=dt.date.fromisoformat(as_of), send=True,
                         now=now, **kw)
        return got.exit_code, got.to_dict()["send"]

    code, sent = send(dt.datetime(2026, 4, 11, 9, 30), "2026-04-11")
    assert code == 1  # 舞阳县团委's server refuses
    assert sorted(p.name for p in (root / "邮件模板").iterdir()) == ["催报.txt", "回执.txt", "多份文件回复.txt",
                                                                 "提前提醒.txt", "退回.txt"]
    assert [s["unit"] for s in sent["sent"]] == ["郾城区团委", "组织部"]  # 源汇区团委 sent its form
    assert [s["unit"] for s in sent["refused"]] == ["舞阳县团委"] and "召陵区团委" in sent["no_address"]
    (msg,) = inbox.to("yancheng@county.example")
    assert msg["Subject"] == "【组织部】催报：郾城区团委有 1 份报表尚未报送" and msg["Auto-Submitted"] == "auto-generated"
    assert "1. 《附件1 团干部走基层情况报告单》2026年3月，截止 2026-04-10，已逾期 1 天" in msg.get_body(("plain",)).get_content()
    (part,) = msg.iter_attachments()
    assert part.get_filename() == "郾城区团委_2026年3月_附件1_团干部走基层情况报告单_v1.xlsx"
    (tmp_path / "blank.xlsx").write_bytes(part.get_content())
    blank = validate_file(tmp_path / "blank.xlsx", builtin)
    assert (blank.unit, blank.period) == ("郾城区团委", "2026-03")
    zuzhi = inbox.to("zuzhi@city.example")[0].get_body(("plain",)).get_content()
    assert "《附件2 共青团工作观摩情况报告单》2026年第1季度" not in zuzhi  # --period 2026-03: the month alone

    unaddressed = sent["no_address"]
    code, sent = send(dt.datetime(2026, 4, 11, 10, 0), "2026-04-12")  # another --as-of, the same day: nothing
    # units without an address were sent nothing: listed again under 没有邮箱, never counted as 已发过
    assert sent["sent"] == [] and sent["no_address"] == unaddressed and sent["already"] == 3
    code, sent = send(dt.datetime(2026, 4, 12, 9, 30), "2026-04-12")  # the next day: [watch] remind_every_days (7)
    assert sent["sent"] == [] and len(inbox.to("yancheng@county.example")) == 1
    code, sent = send(dt.datetime(2026, 4, 18, 9, 30), "2026-04-18")  # a week later: again
    assert [s["unit"] for s in sent["sent"]] == ["郾城区团委", "组织部"] and len(inbox.to("yancheng@county.example")) == 2

    r = CliRunner().invoke(cli, ["status", "-w", str(root), "--send", "--before", "3", "--as-of", "2026-04-25",
                                 "--period", "2026-04", "--dry-run"])
    assert r.exit_code == 0 and "  将发 提前提醒 → zuzhi@city.example：组织部（《附件1 团干部走基层情况报告单》2026年4月）" in r.output
    assert len(inbox.to("zuzhi@city.example")) == 2  # a dry run sends nothing
    send(dt.datetime(2026, 4, 25, 9, 30), "2026-04-25", before=3, period="2026-04")
    (advance,) = [m for m in inbox.to("zuzhi@city.example") if "提醒" in m["Subject"]]
    assert advance["Subject"] == "【组织部】提醒：组织部有 1 份报表将于 2026-04-28 截止"
    assert "1. 《附件1 团干部走基层情况报告单》2026年4月，截止 2026-04-28，还有 3 天" in advance.get_body(("plain",)).get_content()

    # the watch: not before remind_hour; each form again only after remind_every_days
    count = len(inbox.messages)
    _, said = _cycle(root, dt.datetime(2026, 4, 26, 8, 0))
    assert "催报" not in said[0] and len(inbox.messages) == count
    _, said = _cycle(root, dt.datetime(2026, 4, 26, 9, 5))
    assert "催报" in said[0] and "催报 0 " not in said[0] and len(inbox.messages) > count
    last = inbox.to("yancheng@county.example")[-1].get_body(("plain",)).get_content()
    assert "《附件1 团干部走基层情况报告单》2026年3月，截止 2026-04-10，已逾期 16 天" in last
    count = len(inbox.messages)
    _, said = _cycle(root, dt.datetime(2026, 4, 26, 9, 15))
    assert "催报 0 个单位" in said[0] and len(inbox.messages) == count


def test_mail_templates_are_the_workspace_files_and_a_broken_one_holds_only_its_kind(workspace, servers, templates,
                                                                                      tmp_path):
    imap, inbox, _ = servers
    root, folder = workspace
    receipt = root / "邮件模板" / "回执.txt"
    text = receipt.read_text(encoding="utf-8-sig")
    receipt.write_text(text.replace("{单位}：\n", "{单位名称}：\n"), encoding="utf-8")
    deliver(imap, mail("yuanhui@county.example", {"好.xlsx": _form(templates, tmp_path, "a.xlsx")}, ARRIVED),
            ARRIVED, folder)
    deliver(imap, mail("yancheng@county.example", {"坏.xlsx": _form(templates, tmp_path, "b.xlsx", 报送单位="郾城区团委",
                                                                  团干部=-1)}, ARRIVED), ARRIVED, folder)
    _, said = _cycle(root, ARRIVED + dt.timedelta(minutes=10))
    line = next(i for i, t in enumerate(text.splitlines(), 1) if t == "{单位}：")
    assert f"  错误：邮件模板/回执.txt · 第 {line} 行：不认识的占位符“{{单位名称}}”；这个模板可用的有：{{单位}} {{报表}}" \
           in "\n".join(said)
    assert "  回执 1 份因模板有误暂不发送，改正模板后自动补发（3 天内收到的）" in said
    assert inbox.to("yuanhui@county.example") == [] and len(inbox.to("yancheng@county.example")) == 1  # 退回 went

    receipt.write_text("# 我们的回执\n主题：收到 {单位} 的{报表}\n{单位}：收到了。\n{提醒}\n", encoding="gbk")  # Notepad's ANSI
    _, said = _cycle(root, ARRIVED + dt.timedelta(minutes=20))
    (msg,) = inbox.to("yuanhui@county.example")
    assert msg["Subject"] == "收到 源汇区团委 的附件1 团干部走基层情况报告单"
    assert msg.get_body(("plain",)).get_content().replace("\r\n", "\n") == "源汇区团委：收到了。\n"  # {提醒} empty: left out


def test_template_mistakes_are_named_by_file_and_line():
    cases = {"主题：{单位\n": "mail-template-brace", "主题：x\n正文 }\n": "mail-template-brace",
             "主题：x\n{未知}\n": "mail-template-placeholder", "主题：x\n{单位!r}\n": "mail-template-placeholder",
             "# 说明\n没有主题\n": "mail-template-subject", "": "mail-template-subject",
             "主题：收到 {文件}\n正文\n": "mail-template-subject-value"}  # a sender's words never in a subject
    for text, code in cases.items():
        with pytest.raises(TuanjianError) as exc:
            parse(text, "receipt", "邮件模板/回执.txt")
        (issue,) = exc.value.issues
        assert (issue.code, issue.file) == (code, "邮件模板/回执.txt"), text
    t = parse("主题：{{原样}} {单位}\n{提醒}\n{{ {单位} }}\n", "receipt", "x")
    assert t.render({"单位": "甲"}).subject == "{原样} 甲" and t.render({"单位": "甲"}).body == "{ 甲 }"


def test_one_watch_per_workspace_and_a_lock_left_behind_is_taken_over(tmp_path):
    init_workspace(tmp_path)
    now = dt.datetime(2026, 4, 9, 17, 0)
    hour = dt.timedelta(hours=1)
    lock = WatchLock.take(tmp_path, now=now, pid=os.getpid(), host="本机", stale_after=hour)
    with pytest.raises(TuanjianError) as exc:
        WatchLock.take(tmp_path, now=now, pid=os.getpid(), host="本机", stale_after=hour)
    assert exc.value.issues[0].code == "watch-running" and "tuanjian watch，进程" in exc.value.issues[0].message
    r = CliRunner().invoke(cli, ["watch", "-w", str(tmp_path), "--once", "--json"])
    assert r.exit_code == 1 and json.loads(r.output)["error"]["code"] == "watch-running"
    assert "未运行：已有程序在为这个工作区收发邮件（tuanjian watch，进程" in (tmp_path / LOG_FILE).read_text(encoding="utf-8-sig")
    lock.release()

    path = tmp_path / ".tuanjian" / "watch.lock"  # written by a process on another computer
    path.write_text(json.dumps({"what": "tuanjian watch", "pid": 4242, "host": "另一台电脑",
                                "started": "2026-04-09T08:00:00", "beat": "2026-04-09T16:50:00"}), encoding="utf-8")
    with pytest.raises(TuanjianError):  # refreshed ten minutes ago: alive there
        WatchLock.take(tmp_path, now=now, pid=os.getpid(), host="本机", stale_after=hour)
    lock = WatchLock.take(tmp_path, now=now + 2 * hour, pid=os.getpid(), host="本机", stale_after=hour)
    assert lock.took_over == "tuanjian watch，进程 4242，电脑 另一台电脑，2026-04-09 08:00:00 开始"
    lock.release()
    assert path.read_text() == ""  # emptied, not removed


def test_a_resend_waits_until_sent_and_replies_given_up_are_listed_once_by_file(workspace, servers, templates):
    _, inbox, smtp = servers
    root, _ = workspace
    fill(templates["visit_report"], root / "收件箱" / "组织部三月.xlsx", dict(VISIT, 报送单位="组织部"))
    closed = free_port()
    _settings(root, f"smtp_port = {smtp}", f"smtp_port = {closed}")
    day = dt.timedelta(days=1)
    assert api.merge(root, reply=True, now=ARRIVED).replies.waiting  # the server away: owed, why kept
    with Ledger(root) as ledger:
        (row,) = ledger.replies(["due"])
    number = row.file.sha256[:8]
    said = api.merge(root, reply=True, now=ARRIVED + 5 * day).lines()  # given up: named, with why it waited
    assert f"  不再回复 组织部三月.xlsx（组织部）：此前未能连上发信服务器（无法连接发信服务器 127.0.0.1:{closed}（连接被拒绝），" \
           f"未发送任何邮件）；确需回复时运行 tuanjian merge --reply --resend {number}" in said
    assert not any("不再回复" in line for line in api.merge(root, reply=True, now=ARRIVED + 5 * day).lines())  # once

    fill(templates["visit_report"], root / "收件箱" / "新.xlsx", dict(VISIT, 报送单位="组织部", 团员青年=30))
    with pytest.raises(TuanjianError) as exc:  # a mistyped number: said before merge registers anything
        api.merge(root, reply=True, resend=["0000000"], now=ARRIVED + 6 * day)
    assert exc.value.issues[0].code == "reply-not-found" and "新.xlsx" not in _states(root)
    (root / "收件箱" / "新.xlsx").unlink()
    assert api.merge(root, reply=True, resend=[number], now=ARRIVED + 6 * day).replies.waiting  # asked for, not sent
    got = api.merge(root, reply=True, now=ARRIVED + 9 * day).replies  # not forgotten: neither expired nor sent
    assert not got.expired and got.waiting and _states(root)["组织部三月.xlsx"] == "due"
    _settings(root, f"smtp_port = {closed}", f"smtp_port = {smtp}")
    assert [r.rows[0].file.name for r in api.merge(root, reply=True, now=ARRIVED + 10 * day).replies.sent] == ["组织部三月.xlsx"]
    assert len(inbox.to("zuzhi@city.example")) == 1
    with Ledger(root) as ledger:
        assert [r.forced for r in ledger.replies(["sent"])] == [False]  # done: the flag cleared
    _settings(root, "reply_limit_total = 200", "reply_limit_total = 1")  # one sent today already: all others wait
    fill(templates["visit_report"], root / "收件箱" / "源汇区.xlsx", dict(VISIT))
    said = api.merge(root, reply=True, now=ARRIVED + 10 * day).lines()
    assert "  今天的自动回复已满 1 封（tuanjian.toml 的 [watch] reply_limit_total），其余 1 份明天再发" in said
    assert inbox.to("yuanhui@county.example") == [] and _states(root)["源汇区.xlsx"] == "due"


def test_merge_reply_leaves_a_slow_watch_on_another_computer_its_lock(tmp_path):
    init_workspace(tmp_path)
    _settings(tmp_path, 'every = "10m"', 'every = "1h"')
    path = tmp_path / ".tuanjian" / "watch.lock"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({"what": "tuanjian watch", "pid": 4242, "host": "另一台电脑",
                                "started": "2026-04-09T08:00:00", "beat": "2026-04-09T15:00:00"}), encoding="utf-8")
    with pytest.raises(TuanjianError) as exc:  # two hours since its beat, every hour: still its cycle
        api.merge(tmp_path, reply=True, now=dt.datetime(2026, 4, 9, 17, 0))
    assert exc.value.issues[0].code == "watch-running"


def test_files_known_before_replies_existed_count_as_answered(tmp_path):
    version = next(n for n, m in enumerate(MIGRATIONS) if any("CREATE TABLE replies" in s for s in m))
    ledger_at(tmp_path / ".tuanjian" / "ledger.sqlite", version)  # a file recorded before replies existed
    with Ledger(tmp_path) as ledger:
        assert [(r.file.name, r.state) for r in ledger.replies(["before", "due"])] == [("甲.xlsx", "before")]


def test_usage_of_the_new_options_is_checked(tmp_path):
    init_workspace(tmp_path)
    r = CliRunner().invoke(cli, ["merge", "-w", str(tmp_path), "--dry-run"])
    assert r.exit_code == 2 and "--dry-run 和 --resend 只能与 --reply 一起使用" in r.output
    r = CliRunner().invoke(cli, ["watch", "-w", str(tmp_path), "--every", "5s"])
    assert r.exit_code == 2 and "在 10 秒到 1 天之间" in r.output
    _settings(tmp_path, 'every = "10m"', 'every = "10 天"')
    r = CliRunner().invoke(cli, ["watch", "-w", str(tmp_path), "--once"])
    assert r.exit_code == 1 and "watch.every" in r.output


def test_ctrl_c_stops_the_loop_cleanly(tmp_path):
    init_workspace(tmp_path)  # no mail server set up: each cycle merges the inbox, nothing to send
    proc = subprocess.Popen([sys.executable, "-m", "tuanjian_xlsx", "watch", "-w", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")
    try:
        first = proc.stdout.readline()  # the start line, then the first cycle
        cycle = proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert "开始自动收发" in first and "每 10 分钟一轮，按 Ctrl+C 停止" in first
    assert cycle.endswith("没有新文件 · 未设置发信服务器（[mail] smtp_host），不发回执和催报\n")
    assert proc.returncode == 0 and rest.rstrip().endswith("已停止") and err == ""
    assert (tmp_path / ".tuanjian" / "watch.lock").read_text() == ""  # released


def test_an_unreadable_file_from_a_units_own_address_is_returned_there_and_a_strangers_is_not(workspace, servers):
    """A file that names no unit is that unit's when it comes from the unit's roster address (its 退回 goes back
    there); from anyone else it gets no reply (never a machine that mails strangers)."""
    imap, inbox, _ = servers
    root, folder = workspace
    deliver(imap, mail("yuanhui@county.example", {"源汇区三月.xlsx": b"not a workbook"}, ARRIVED), ARRIVED, folder)
    deliver(imap, mail("stranger@else.example", {"点这里.xlsx": b"not a workbook either"}, ARRIVED), ARRIVED, folder)
    _, said = _cycle(root, ARRIVED + dt.timedelta(minutes=10))
    (returned,) = inbox.to("yuanhui@county.example")
    assert "退回" in returned["Subject"] and "源汇区三月.xlsx" in returned.get_body(("plain",)).get_content()
    assert inbox.to("stranger@else.example") == []
    assert any(line.startswith("  不自动回复 点这里.xlsx：未能认出报送单位") for line in said)
    assert _states(root) == {"源汇区三月.xlsx": "sent", "点这里.xlsx": "no-reply"}
