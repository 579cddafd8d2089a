"""Real mail servers on loopback for the tests: Debian's dovecot (IMAP) and aiosmtpd (SMTP), and mails to put in."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import imaplib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

import openpyxl
import pytest

from conftest import IN_CI

from tuanjian_xlsx.clock import BEIJING

USER, PASSWORD = "lhtswzxb@test.local", "s3cret-pass"
XLSX = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def dovecot() -> Iterator[int]:
    """A dovecot IMAP server on loopback with one user (USER, PASSWORD); yields its port."""
    binary = shutil.which("dovecot") or ("/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None)
    if not binary:
        (pytest.fail if IN_CI else pytest.skip)("dovecot (Debian's dovecot-imapd) is not installed; scripts/test installs it")
    base = Path(tempfile.mkdtemp(prefix="tj-imap-", dir="/tmp"))
    base.chmod(0o755)
    for d in ("run", "state", "home"):
        (base / d).mkdir()
    (base / "home").chmod(0o777)
    port = free_port()
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


def deliver(port: int, raw: bytes, arrived: dt.datetime, folder: str = "INBOX") -> None:
    """Put a mail into the IMAP folder (made if need be) as having arrived at `arrived`."""
    box = imaplib.IMAP4("127.0.0.1", port)
    box.login(USER, PASSWORD)
    if folder != "INBOX":
        box.create(folder)  # NO when it exists already: harmless
    box.append(folder, None, imaplib.Time2Internaldate(
        (arrived if arrived.tzinfo else arrived.replace(tzinfo=BEIJING)).timestamp()), raw)  # (the committee's time)
    box.logout()


def mail(sender: str, attachments: dict[str, bytes], date: dt.datetime, subject: str = "报送3月走基层报告单",
         headers: dict[str, str] | None = None) -> bytes:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = sender
    msg["To"] = USER
    msg["Date"] = format_datetime(date.replace(tzinfo=BEIJING))
    msg["Message-ID"] = make_msgid(domain="county.example")
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content("请查收")
    for name, body in attachments.items():
        msg.add_attachment(body, maintype=XLSX[0], subtype=XLSX[1], filename=name)
    return bytes(msg)


def imap_settings(root: Path, port: int, folder: str = "INBOX") -> None:
    """Point a workspace's [mail] at the dovecot on `port` (password in TUANJIAN_IMAP_PASSWORD)."""
    toml = root / "tuanjian.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('imap_host = ""', 'imap_host = "127.0.0.1"')
                    .replace("imap_port = 993", f"imap_port = {port}").replace('imap_security = "ssl"', 'imap_security = "none"')
                    .replace('imap_user = ""', f'imap_user = "{USER}"')
                    .replace('imap_folder = "INBOX"', f'imap_folder = "{folder}"'), encoding="utf-8")


def smtp_settings(root: Path, port: int) -> None:
    """Point a workspace's [mail] at the aiosmtpd on `port` (no login, no TLS)."""
    toml = root / "tuanjian.toml"
    text = toml.read_text(encoding="utf-8")
    text = text.replace('smtp_host = ""', 'smtp_host = "127.0.0.1"').replace('smtp_security = "ssl"', 'smtp_security = "none"')
    text = text.replace('sender = ""', 'sender = "lhtswzxb@city.example"')
    import re

    text = re.sub(r"(?m)^smtp_port = \d+", f"smtp_port = {port}", text)
    toml.write_text(text, encoding="utf-8")


def set_addresses(root: Path, addresses: dict[str, str]) -> None:
    """Write units' addresses into the workspace's roster (单位名单, column D), by unit name."""
    book = root / "名单与目标.xlsx"
    wb = openpyxl.load_workbook(book)
    for row in wb["单位名单"].iter_rows(min_row=2):
        if row[1].value in addresses:
            row[3].value = addresses[row[1].value]
    wb.save(book)


class Inbox:
    """An SMTP handler keeping what it accepts. Addresses in `refuse` get 550 at RCPT, in `later` 450; a message to
    `stall` makes DATA wait (after the whole message arrived) until `release` is set, `stalled` telling the test."""

    def __init__(self):
        self.messages: list[tuple[list[str], bytes]] = []
        self.refuse: set[str] = set()
        self.later: set[str] = set()
        self.stall: str | None = None
        self.stalled = threading.Event()
        self.release = threading.Event()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        if address in self.later:
            return "450 4.2.1 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.stall is not None and self.stall in envelope.rcpt_tos:
            self.stalled.set()
            while not self.release.is_set():
                await asyncio.sleep(0.05)
            return "451 4.3.0 aborted"
        self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted"

    def to(self, address: str) -> list:
        """The messages accepted for an address, parsed."""
        import email
        import email.policy

        return [email.message_from_bytes(raw, policy=email.policy.default) for rcpts, raw in self.messages
                if address in rcpts]


@contextlib.contextmanager
def smtp_server(utf8: bool = True) -> Iterator[tuple[Inbox, int]]:
    """An aiosmtpd on loopback; `utf8`: whether it offers SMTPUTF8 (addresses in Chinese characters)."""
    from aiosmtpd.controller import Controller

    port = free_port()
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, enable_SMTPUTF8=utf8)
    controller.start()
    try:
        yield inbox, port
    finally:
        inbox.release.set()
        controller.stop()
