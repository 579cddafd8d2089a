"""Fetching from a real IMAP server on loopback (Debian's dovecot, started by the test)."""

from __future__ import annotations

import datetime as dt
import imaplib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from conftest import IN_CI, fill
from tuanjian_xlsx.cli import cli
from tuanjian_xlsx.merge import merge
from tuanjian_xlsx.workspace import init_workspace

USER, PASSWORD = "lhtswzxb@test.local", "s3cret-pass"
VISIT = {"报送单位": "源汇区团委", "报送期": "2026-03", "填表时间": dt.datetime(2026, 3, 5), "姓名": "张三",
         "单位职务": "书记", "走访团组织名称": "一中团委", "走访形式": "座谈交流", "团干部": 2, "团员青年": 15,
         "基层团组织工作开展情况": "好", "基层团组织工作亮点": "多"}


@pytest.fixture
def imap_server():
    binary = shutil.which("dovecot") or ("/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None)
    if not binary:
        (pytest.fail if IN_CI else pytest.skip)("dovecot (Debian's dovecot-imapd) is not installed; scripts/test installs it")
    base = Path(tempfile.mkdtemp(prefix="tj-imap-", dir="/tmp"))
    base.chmod(0o755)
    for d in ("run", "state", "home"):
        (base / d).mkdir()
    (base / "home").chmod(0o777)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    uid = os.getuid() or 65534  # dovecot refuses to keep mail as root
    gid = os.getgid() or 65534
    (base / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n", encoding="utf-8")
    (base / "dovecot.conf").write_text(f"""
protocols = imap
listen = 127.0.0.1
base_dir = {base}/run
state_dir = {base}/state
log_path = {base}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{base}/home/%u/Maildir
first_valid_uid = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {base}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={base}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
""", encoding="utf-8")
    proc = subprocess.Popen([binary, "-c", str(base / "dovecot.conf"), "-F"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail(f"dovecot did not start: {(base / 'dovecot.log').read_text(errors='replace')[-500:]}")
    try:
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(base, ignore_errors=True)


def _deliver(port: int, raw: bytes, arrived: dt.datetime) -> None:
    box = imaplib.IMAP4("127.0.0.1", port)
    box.login(USER, PASSWORD)
    box.append("INBOX", None, imaplib.Time2Internaldate(arrived.timestamp()), raw)
    box.logout()


def _mail(sender: str, attachments: dict[str, bytes], date: dt.datetime) -> bytes:
    msg = EmailMessage()
    msg["Subject"] = "报送3月走基层报告单"
    msg["From"] = sender
    msg["To"] = USER
    msg["Date"] = format_datetime(date.astimezone())
    msg["Message-ID"] = make_msgid(domain="county.example")
    msg.set_content("请查收")
    for name, body in attachments.items():
        msg.add_attachment(body, maintype="application", subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                           filename=name)
    return bytes(msg)


def _workspace(root: Path, port: int) -> Path:
    init_workspace(root)
    toml = root / "tuanjian.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('imap_host = ""', 'imap_host = "127.0.0.1"')
                    .replace("imap_port = 993", f"imap_port = {port}").replace('imap_security = "ssl"', 'imap_security = "none"')
                    .replace('imap_user = ""', f'imap_user = "{USER}"'), encoding="utf-8")
    book = root / "名单与目标.xlsx"
    wb = openpyxl.load_workbook(book)
    wb["单位名单"]["D2"] = "yuanhui@county.example"  # 源汇区团委's address
    wb.save(book)
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
