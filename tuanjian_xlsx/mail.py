"""Sending mail (SMTP): each unit its copies, and the replies and reminders tuanjian sends by itself. Chinese subject
and body, attachments with RFC 2231-encoded Chinese names. One message's failure never stops the others, and each
delivery says how it ended — accepted, refused for good (5xx), to be tried again (4xx, the connection lost before
the message was handed over), or uncertain (the connection lost after the whole message was handed over and
before the server answered: it may have been delivered). An address the server cannot take — one in Chinese
characters on a server without SMTPUTF8 — is that message refused, never the session's end. What went wrong is said
in Chinese (`reason`, the one place an exception becomes words).

Mail tuanjian sends by itself says so (RFC 3834's Auto-Submitted), so that other robots do not answer it."""

from __future__ import annotations

import os
import smtplib
import socket
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Literal

from .roster import Unit
from .settings import Mail
from .issues import Issue, TuanjianError

XLSX = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")


@dataclass
class Outgoing:
    unit: Unit
    subject: str
    body: str
    attachments: list  # Paths


@dataclass
class SendReport:
    sent: list[Unit] = field(default_factory=list)
    failed: list[tuple[Unit, str]] = field(default_factory=list)
    no_address: list[Outgoing] = field(default_factory=list)


@dataclass(frozen=True)
class Delivery:
    """How handing one message to the server ended."""

    outcome: Literal["sent", "refused", "retry", "uncertain"]
    why: str = ""

    def tally(self, report, item, uncertain) -> None:
        """This outcome in a report's sent / refused / waiting / uncertain lists (replies and reminders keep the
        same four): `item` sent, or with the reason; `uncertain` as that report lists it."""
        if self.outcome == "sent":
            report.sent.append(item)
        elif self.outcome == "refused":
            report.refused.append((item, self.why))
        elif self.outcome == "retry":
            report.waiting.append((item, self.why))
        else:
            report.uncertain.append(uncertain)


def compose(to: str, subject: str, body: str, attachments: list[tuple[str, bytes]], sender: str,
            sender_name: str, auto: str | None = None, cc: str | None = None) -> EmailMessage:
    """One message; `auto` ("auto-replied", "auto-generated") marks mail sent by itself (Auto-Submitted, and the
    header that keeps Exchange's out-of-office answers away)."""
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = formataddr((sender_name, sender))
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Message-ID"] = make_msgid(domain=sender.split("@")[-1] or "tuanjian.local")
    if auto:
        msg["Auto-Submitted"] = auto
        msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(body)
    for name, data in attachments:
        maintype, subtype = XLSX if name.lower().endswith(".xlsx") else ("application", "octet-stream")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg


def message(out: Outgoing, sender: str, sender_name: str) -> EmailMessage:
    assert out.unit.email  # only units with an address are sent anything
    return compose(out.unit.email, out.subject, out.body, [(p.name, p.read_bytes()) for p in out.attachments],
                   sender, sender_name)


class _Watched:
    """An SMTP connection that knows whether the message of the transaction under way has been handed over whole
    (smtplib's DATA sends it with one send() ending in CRLF.CRLF): a failure before that is no delivery, after it
    the server may have the message."""

    handed_over = False
    _in_data = False

    def data(self, msg):
        self.handed_over, self._in_data = False, True
        try:
            return super().data(msg)
        finally:
            self._in_data = False

    def send(self, s):
        super().send(s)
        if self._in_data and isinstance(s, bytes) and s.endswith(b"\r\n.\r\n"):
            self.handed_over = True


class _SMTP(_Watched, smtplib.SMTP):
    pass


class _SMTPS(_Watched, smtplib.SMTP_SSL):
    pass


class Session:
    """One connection to the configured server for many messages. Opening raises TuanjianError in Chinese (not set
    up, no password, cannot connect or log in); `deliver` never raises. After a lost connection the next delivery
    connects again, once: if that fails too, the rest are told so at once."""

    def __init__(self, mail: Mail, sender_name: str):
        if not mail.smtp_host:
            raise TuanjianError(Issue.make("mail-not-configured", file="tuanjian.toml", field="mail.smtp_host",
                                           what="发信服务器", key="smtp_host"))
        self.password = os.environ.get(mail.password_env, "") if mail.smtp_user else ""
        if mail.smtp_user and not self.password:
            raise TuanjianError(Issue.make("mail-no-password", field=mail.password_env, what="发信",
                                           env=mail.password_env))
        self.sender = mail.sender or mail.smtp_user
        if not self.sender:
            raise TuanjianError(Issue.make("mail-not-configured", file="tuanjian.toml", field="mail.sender",
                                           what="发件人", key="sender 或 smtp_user"))
        self.mail, self.sender_name = mail, sender_name
        self.server: _SMTP | _SMTPS | None = None
        self.gone: str | None = None  # why the connection is lost for good (a reconnection failed)
        self.reconnected = False

    def __enter__(self) -> Session:
        self.open()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self) -> None:
        try:
            self.server = self._connect()
        except (OSError, smtplib.SMTPException) as exc:
            where = f"{self.mail.smtp_host}:{self.mail.smtp_port}"
            raise TuanjianError(Issue.make("mail-connect", what="发信", where=where, reason=reason(exc),
                                           verb="发送")) from None

    def _connect(self) -> _SMTP | _SMTPS:
        mail = self.mail
        server: _SMTP | _SMTPS
        if mail.smtp_security == "ssl":
            server = _SMTPS(mail.smtp_host, mail.smtp_port, timeout=30, context=ssl.create_default_context())
        else:
            server = _SMTP(mail.smtp_host, mail.smtp_port, timeout=30)
            if mail.smtp_security == "starttls":
                server.starttls(context=ssl.create_default_context())
        if mail.smtp_user:
            server.login(mail.smtp_user, self.password)
        server.ehlo_or_helo_if_needed()  # what it offers (SMTPUTF8) is known before the first message
        return server

    def compose(self, to: str, subject: str, body: str, attachments: list[tuple[str, bytes]],
                auto: str | None = None, cc: str | None = None) -> EmailMessage:
        return compose(to, subject, body, attachments, self.sender, self.sender_name, auto, cc)

    def deliver(self, msg: EmailMessage) -> Delivery:
        if self.server is None:
            if self.gone is not None or self.reconnected:
                return Delivery("retry", self.gone or "连接中断")
            self.reconnected = True
            try:
                self.server = self._connect()
            except (OSError, smtplib.SMTPException) as exc:
                self.gone = f"连接中断后无法重连：{reason(exc)}"
                return Delivery("retry", self.gone)
        server = self.server
        if not _ascii(msg) and not server.has_extn("smtputf8"):  # smtplib would refuse it: said before, in Chinese
            return Delivery("refused", NOT_ASCII)
        try:
            refused = server.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            code = next(iter(exc.recipients.values()))[0]
            return Delivery("refused" if code >= 500 else "retry", reason(exc))
        except smtplib.SMTPSenderRefused as exc:  # the server will take nothing from us now: not this recipient's fault
            return Delivery("retry", reason(exc))
        except smtplib.SMTPResponseException as exc:  # DATA refused, or the message refused after it
            return Delivery("refused" if exc.smtp_code >= 500 else "retry", reason(exc))
        except (smtplib.SMTPNotSupportedError, UnicodeError) as exc:  # this message, not the session: refused
            self._reset()
            return Delivery("refused", reason(exc))
        except (smtplib.SMTPException, OSError) as exc:  # the connection is lost
            self._drop()
            if server.handed_over:
                return Delivery("uncertain", f"服务器收下邮件后、确认之前连接中断（{reason(exc)}）")
            return Delivery("retry", reason(exc))
        if refused:  # some of several recipients (To and Cc): what became of the To decides, the rest is said
            said = "、".join(f"{who}：{reason(why)}" for who, why in refused.items())
            to = {a.addr_spec.lower() for a in msg["To"].addresses}
            got = next((why[0] for who, why in refused.items() if who.lower() in to), None)
            return Delivery("sent" if got is None else "refused" if got >= 500 else "retry", said)
        return Delivery("sent")

    def _reset(self) -> None:
        """After a message refused half-way: the transaction begun for it ended, the connection kept."""
        if self.server is not None:
            try:
                self.server.rset()
            except (OSError, smtplib.SMTPException):
                self._drop()

    def _drop(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            try:
                server.close()
            except OSError:
                pass

    def close(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            try:
                server.quit()
            except (OSError, smtplib.SMTPException):
                pass


def send_all(mail: Mail, outgoing: list[Outgoing], sender_name: str) -> SendReport:
    """Connect once, send one message per unit; refusals and errors are recorded per unit."""
    report = SendReport()
    todo: list[Outgoing] = []
    for out in outgoing:
        (todo if out.unit.email else report.no_address).append(out)
    if not todo:
        return report
    with Session(mail, sender_name) as session:
        for out in todo:
            got = session.deliver(message(out, session.sender, sender_name))
            if got.outcome == "sent":
                report.sent.append(out.unit)
            else:
                report.failed.append((out.unit, got.why))
    return report


NOT_ASCII = "收件地址含中文等非英文字符，而发信服务器不支持这样的地址（SMTPUTF8），无法发送；请改用英文字母的邮箱地址"


def _ascii(msg: EmailMessage) -> bool:
    """Whether the message's addresses (not the names shown with them) are plain ASCII."""
    try:
        specs = [a.addr_spec for header in ("From", "To") for a in msg[header].addresses]
    except Exception:  # noqa: BLE001 — a header the parser trips on: smtplib says what it makes of it
        return True
    return all(spec.isascii() for spec in specs)


def reason(exc) -> str:
    """What went wrong in sending, in Chinese: the server's own words with its code, or the failure named."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        exc = next(iter(exc.recipients.values()))
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"发信服务器拒绝登录（{exc.smtp_code}）：请核对 smtp_user 和密码（授权码）"
    if isinstance(exc, smtplib.SMTPResponseException):
        exc = (exc.smtp_code, exc.smtp_error)
    if isinstance(exc, tuple) and len(exc) == 2:
        code, text = exc
        said = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
        return f"服务器拒收（{code}）：{said}"
    if isinstance(exc, (smtplib.SMTPNotSupportedError, UnicodeError)):
        return NOT_ASCII
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return "服务器断开了连接"
    if isinstance(exc, socket.gaierror):
        return "找不到这个服务器（地址有误，或网络不通）"
    if isinstance(exc, ssl.SSLError):
        return "加密连接失败（请核对 tuanjian.toml [mail] 中的加密方式与端口是否相符）"
    if isinstance(exc, OSError):
        from .xlsxio import os_reason

        said = os_reason(exc)
        return said if not said.isascii() else f"网络错误（{said}）"
    return "发信服务器的应答无法识别"
