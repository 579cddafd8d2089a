"""Sending the distribution by e-mail through a real SMTP server on loopback (aiosmtpd, started here)."""

from __future__ import annotations

import email
import email.policy
import re
import socket
import tempfile
from pathlib import Path

import openpyxl
import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner

from tuanjian_xlsx.cli import cli
from tuanjian_xlsx.validate import validate_file
from tuanjian_xlsx.workspace import init_workspace

REFUSED = "nobody@county.example"


class Inbox:
    """An SMTP handler that keeps what it receives and refuses one recipient."""

    def __init__(self):
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address == REFUSED:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted"


@pytest.fixture
def smtp():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


ADDRESSES = {"源汇区团委": "yuanhui@county.example", "郾城区团委": "yancheng@county.example",
             "组织部": "zuzhi@city.example", "舞阳县团委": REFUSED}


def _workspace(tmp_path: Path, port: int) -> Path:
    init_workspace(tmp_path)
    book = tmp_path / "名单与目标.xlsx"
    wb = openpyxl.load_workbook(book)
    ws = wb["单位名单"]
    for row in ws.iter_rows(min_row=2):
        if row[1].value in ADDRESSES:
            row[3].value = ADDRESSES[row[1].value]
    wb.save(book)
    toml = tmp_path / "tuanjian.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('smtp_host = ""', 'smtp_host = "127.0.0.1"')
                    .replace("smtp_port = 465", f"smtp_port = {port}")
                    .replace('smtp_security = "ssl"', 'smtp_security = "none"')
                    .replace('sender = ""', 'sender = "lhtswzxb@city.example"'), encoding="utf-8")
    return tmp_path


def test_each_unit_with_an_address_gets_one_message_that_validates(tmp_path, smtp, builtin):
    inbox, port = smtp
    root = _workspace(tmp_path, port)
    r = CliRunner().invoke(cli, ["distribute", "-w", str(root), "--period", "2026-03", "--send"])
    assert r.exit_code == 1, r.output  # one recipient refused: the job is not wholly done
    assert "已发送 3 个单位：源汇区团委、郾城区团委、组织部" in r.output
    assert f"  发送失败：舞阳县团委（{REFUSED}）：服务器拒收（550）：5.1.1 mailbox unavailable" in r.output
    assert "没有邮箱的单位 12 个：" in r.output
    got = {}
    for rcpts, raw in inbox.messages:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        (to,) = rcpts
        assert to not in got, "one message per unit"
        got[to] = msg
        assert re.search(rb"filename\*(0\*)?=utf-8''", raw)  # RFC 2231 names (continued when long)
    assert set(got) == {a for a in ADDRESSES.values() if a != REFUSED}
    msg = got["zuzhi@city.example"]
    assert msg["Subject"] == "【组织部】请于3月28日前报送2026年3月《附件1 团干部走基层情况报告单》"
    assert "截止日期：2026年3月28日" in msg.get_body(("plain",)).get_content()
    (part,) = list(msg.iter_attachments())
    assert part.get_filename() == "组织部_2026年3月_附件1_团干部走基层情况报告单_v1.xlsx"
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / part.get_filename()
        path.write_bytes(part.get_content())
        result = validate_file(path, builtin)
    assert (result.form_id, result.unit, result.period) == ("visit_report", "组织部", "2026-03")


def test_without_send_nothing_is_sent_and_a_dead_server_is_a_chinese_message(tmp_path, smtp):
    inbox, port = smtp
    root = _workspace(tmp_path, port)
    r = CliRunner().invoke(cli, ["distribute", "-w", str(root), "--period", "2026-03"])
    assert r.exit_code == 0 and inbox.messages == []
    assert "  组织部：1 份（将发送至 zuzhi@city.example）" in r.output
    toml = root / "tuanjian.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace(f"smtp_port = {port}", "smtp_port = 1"), encoding="utf-8")
    r = CliRunner().invoke(cli, ["distribute", "-w", str(root), "--period", "2026-03", "--send"])
    assert r.exit_code == 1 and "无法连接发信服务器 127.0.0.1:1" in r.output and "未发送任何邮件" in r.output
