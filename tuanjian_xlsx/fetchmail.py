"""`tuanjian fetch-mail`: take the spreadsheets from the committee's mailbox (IMAP), once each, with each mail's
arrival time as the received time, through the same ingest as merge."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import imaplib
import os
import re
import ssl
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path

from .config import Mail, Workspace
from .intake import Submission, attachments
from .issues import Issue, TuanjianError
from .ledger import Ledger

_INTERNALDATE = re.compile(rb'INTERNALDATE "([^"]+)"')
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")


@dataclass
class Mailed:
    key: str
    arrived: dt.datetime
    sender: str | None
    subject: str
    submissions: list[Submission]


@dataclass
class FetchResult:
    folder: str
    taken: list[Mailed] = field(default_factory=list)
    already: int = 0
    failed: list[str] = field(default_factory=list)  # mails the server would not hand over this time
    dry_run: bool = False
    ingested: list = field(default_factory=list)

    def summary(self) -> str:
        files = sum(len(m.submissions) for m in self.taken)
        verb = "可收取" if self.dry_run else "收取"
        text = f"{verb} {len(self.taken)} 封邮件 · 报表附件 {files} 份 · 已收过 {self.already} 封（{self.folder}）"
        return text + (f" · 未能取回 {len(self.failed)} 封，下次再试" if self.failed else "")


def _connect(mail: Mail) -> imaplib.IMAP4:
    if not mail.imap_host:
        raise TuanjianError(Issue.make("mail-not-configured", file="tuanjian.toml", field="mail.imap_host",
                                       what="收信服务器", key="imap_host"))
    password = os.environ.get(mail.imap_password_env, "")
    if not password:
        raise TuanjianError(Issue.make("mail-no-password", field=mail.imap_password_env, what="收信",
                                       env=mail.imap_password_env))
    where = f"{mail.imap_host}:{mail.imap_port}"
    try:
        if mail.imap_security == "ssl":
            box = imaplib.IMAP4_SSL(mail.imap_host, mail.imap_port, ssl_context=ssl.create_default_context(), timeout=30)
        else:
            box = imaplib.IMAP4(mail.imap_host, mail.imap_port, timeout=30)
            if mail.imap_security == "starttls":
                box.starttls(ssl_context=ssl.create_default_context())
    except (OSError, imaplib.IMAP4.error) as exc:
        raise TuanjianError(Issue.make("mail-connect", field="mail", what="收信", where=where,
                                       reason=f"{type(exc).__name__}：{exc}", verb="收取")) from None
    try:
        box.login(mail.imap_user, password)
    except imaplib.IMAP4.error:
        raise TuanjianError(Issue.make("mail-login", field="mail.imap_user", where=where, user=mail.imap_user)) from None
    return box


def fetch_mail(root: Path, *, since: dt.date | None = None, folder: str | None = None, dry_run: bool = False,
               now: dt.datetime | None = None) -> FetchResult:
    """Take every spreadsheet attached to mails not taken before; record each mail once it is in the ledger."""
    ws = Workspace.load(root)
    mail = ws.settings.mail
    folder = folder or mail.imap_folder
    now = now or dt.datetime.now().replace(microsecond=0)
    result = FetchResult(folder, dry_run=dry_run)
    box = _connect(mail)
    try:
        return _fetch(box, ws, mail, folder, since, dry_run, now, result)
    except (imaplib.IMAP4.abort, OSError) as exc:
        raise TuanjianError(Issue.make("mail-disconnected", field="mail", reason=type(exc).__name__)) from None
    finally:
        try:
            box.logout()
        except (OSError, imaplib.IMAP4.error):
            pass


def _fetch(box, ws: Workspace, mail: Mail, folder: str, since, dry_run: bool, now: dt.datetime,
           result: FetchResult) -> FetchResult:
    from .merge import ingest_many

    typ, data = box.select(_quote(folder), readonly=True)
    if typ != "OK":
        raise TuanjianError(Issue.make("mail-folder", field="--folder", name=folder))
    validity = _UIDVALIDITY.search(b" ".join(x for x in box.response("UIDVALIDITY")[1] if x) or b"")
    criteria = ["SINCE", since.strftime("%d-%b-%Y")] if since else ["ALL"]
    typ, data = box.uid("SEARCH", None, *criteria)
    uids = data[0].split() if typ == "OK" and data and data[0] else []
    with Ledger(ws.root) as ledger:
        for uid in uids:
            typ, head = box.uid("FETCH", uid, "(INTERNALDATE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
            if typ != "OK" or not head or head[0] is None:
                continue
            meta = b" ".join(p if isinstance(p, bytes) else p[0] for p in head if p)  # INTERNALDATE may come last
            header = next((p[1] for p in head if isinstance(p, tuple)), b"")
            message_id = email.message_from_bytes(header, policy=email.policy.default)["Message-ID"]
            key = str(message_id).strip() if message_id else f"{folder}/{validity and validity.group(1).decode()}/{uid.decode()}"
            if ledger.mail_taken(key):
                result.already += 1
                continue
            arrived = _arrival(meta) or now
            typ, body = box.uid("FETCH", uid, "(BODY.PEEK[])")
            raw = next((part[1] for part in body or [] if isinstance(part, tuple)), None)
            if typ != "OK" or not raw:  # not taken: the next run tries this mail again
                result.failed.append(key)
                continue
            msg = email.message_from_bytes(raw, policy=email.policy.default)
            sender = parseaddr(str(msg["From"] or ""))[1] or None
            subject = str(msg["Subject"] or "")
            origin = f"imap://{mail.imap_user}@{mail.imap_host}/{folder}#{key}"
            subs = list(attachments(msg, Path(f"邮件{uid.decode()}"), origin, arrived, sender))
            taken = Mailed(key, arrived, sender, subject, subs)
            result.taken.append(taken)
            if dry_run:
                continue
            result.ingested += ingest_many(ledger, ws, subs, now=now)
            ledger.take_mail(key, folder, arrived, sender, subject, len(subs), now)  # only once it is all in
    return result


def _arrival(meta: bytes) -> dt.datetime | None:
    m = _INTERNALDATE.search(meta or b"")
    if not m:
        return None
    parsed = imaplib.Internaldate2tuple(b'INTERNALDATE "' + m.group(1) + b'"')
    return dt.datetime(*parsed[:6]) if parsed else None


def _utf7(name: str) -> str:
    """IMAP's modified UTF-7 for folder names (RFC 3501 5.1.3): 团建报表 -> &Vebl+mKlYgg-."""
    import base64

    out, buf = [], []

    def flush():
        if buf:
            b = base64.b64encode("".join(buf).encode("utf-16-be")).decode().rstrip("=").replace("/", ",")
            out.append(f"&{b}-")
            buf.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            buf.append(ch)
    flush()
    return "".join(out)


def _quote(folder: str) -> str:
    return '"' + _utf7(folder).replace("\\", "\\\\").replace('"', '\\"') + '"'
