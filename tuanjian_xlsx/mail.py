"""Sending each unit its copies by e-mail (SMTP): one message per unit, Chinese subject and body, attachments with
RFC 2231-encoded Chinese names. One unit's failure never stops the others."""

from __future__ import annotations

import os
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

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


def message(out: Outgoing, sender: str, sender_name: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = out.subject
    msg["From"] = formataddr((sender_name, sender))
    msg["To"] = out.unit.email
    msg["Message-ID"] = make_msgid(domain=sender.split("@")[-1] or "tuanjian.local")
    msg.set_content(out.body)
    for path in out.attachments:
        maintype, subtype = XLSX if path.suffix == ".xlsx" else ("application", "octet-stream")
        msg.add_attachment(path.read_bytes(), maintype=maintype, subtype=subtype, filename=path.name)
    return msg


def send_all(mail: Mail, outgoing: list[Outgoing], sender_name: str) -> SendReport:
    """Connect once, send one message per unit; refusals and errors are recorded per unit."""
    report = SendReport()
    todo: list[Outgoing] = []
    for out in outgoing:
        (todo if out.unit.email else report.no_address).append(out)
    if not todo:
        return report
    if not mail.smtp_host:
        raise TuanjianError(Issue.make("mail-not-configured", file="tuanjian.toml", field="mail.smtp_host",
                                       what="发信服务器", key="smtp_host"))
    password = os.environ.get(mail.password_env, "") if mail.smtp_user else ""
    if mail.smtp_user and not password:
        raise TuanjianError(Issue.make("mail-no-password", field=mail.password_env, what="发信", env=mail.password_env))
    sender = mail.sender or mail.smtp_user
    if not sender:
        raise TuanjianError(Issue.make("mail-not-configured", file="tuanjian.toml", field="mail.sender",
                                       what="发件人", key="sender 或 smtp_user"))
    try:
        server = _connect(mail)
        if mail.smtp_user:
            server.login(mail.smtp_user, password)
    except (OSError, smtplib.SMTPException) as exc:
        raise TuanjianError(Issue.make("mail-connect", field="mail", what="发信", where=f"{mail.smtp_host}:{mail.smtp_port}",
                                       reason=_why(exc), verb="发送")) from None
    try:
        for n, out in enumerate(todo):
            try:
                refused = server.send_message(message(out, sender, sender_name))
                if refused:
                    report.failed.append((out.unit, _why(next(iter(refused.values())))))
                else:
                    report.sent.append(out.unit)
            except smtplib.SMTPServerDisconnected as exc:
                report.failed.append((out.unit, _why(exc)))
                try:  # one reconnection; if that fails too, the rest are reported, not lost
                    server = _connect(mail)
                    if mail.smtp_user:
                        server.login(mail.smtp_user, password)
                except (smtplib.SMTPException, OSError) as again:
                    report.failed += [(o.unit, f"连接中断后无法重连：{_why(again)}") for o in todo[n + 1:]]
                    break
            except (smtplib.SMTPException, OSError) as exc:
                report.failed.append((out.unit, _why(exc)))
    finally:
        try:
            server.quit()
        except (OSError, smtplib.SMTPException):
            pass
    return report


def _connect(mail: Mail) -> smtplib.SMTP:
    if mail.smtp_security == "ssl":
        return smtplib.SMTP_SSL(mail.smtp_host, mail.smtp_port, timeout=30, context=ssl.create_default_context())
    server = smtplib.SMTP(mail.smtp_host, mail.smtp_port, timeout=30)
    if mail.smtp_security == "starttls":
        server.starttls(context=ssl.create_default_context())
    return server


def _why(exc) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(exc.recipients.values()))
        return f"服务器拒收（{code}）：{text.decode(errors='replace') if isinstance(text, bytes) else text}"
    if isinstance(exc, smtplib.SMTPResponseException):
        said = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
        return f"服务器拒收（{exc.smtp_code}）：{said}"
    if isinstance(exc, tuple) and len(exc) == 2:
        code, text = exc
        return f"服务器拒收（{code}）：{text.decode(errors='replace') if isinstance(text, bytes) else text}"
    if isinstance(exc, OSError):
        from .xlsxio import os_reason

        return os_reason(exc)
    return f"发送失败（{exc}）" if str(exc) else "发送失败"
