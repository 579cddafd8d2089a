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
from pathlib import Path

from .clock import now as clock_now
from .plan import Workspace
from .settings import Mail
from .intake import Submission, local_time, mail_budget_reset, message_id, no_report, read_head, read_mail
from .issues import Issue, TuanjianError
from .ledger import Ledger
from .mail import reason

_INTERNALDATE = re.compile(rb'INTERNALDATE "([^"]*)"')
_DATE_TIME = re.compile(r"(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([-+])(\d\d)(\d\d)")
_MONTHS = {m: n for n, m in enumerate(
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], start=1)}
_UIDVALIDITY = re.compile(rb"\d+")


@dataclass
class Mailed:
    key: str
    arrived: dt.datetime
    sender: str | None
    subject: str
    submissions: list[Submission]
    refusal: Issue | None = None  # the mail could not be read: taken, recorded as one refused file


@dataclass
class FetchResult:
    folder: str
    taken: list[Mailed] = field(default_factory=list)
    already: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (mail, why): not handed over; tried again next run
    notes: list[Issue] = field(default_factory=list)  # warnings, e.g. an arrival time that is no date
    dry_run: bool = False
    ingested: list = field(default_factory=list)

    @property
    def refused(self) -> list[Mailed]:
        return [m for m in self.taken if m.refusal is not None]

    def summary(self) -> str:
        files = sum(len(m.submissions) for m in self.taken if m.refusal is None)
        verb = "可收取" if self.dry_run else "收取"
        text = f"{verb} {len(self.taken)} 封邮件 · 报表附件 {files} 份 · 已收过 {self.already} 封（{self.folder}）"
        if self.refused:
            text += f" · 无法解析 {len(self.refused)} 封，已登记为退回"
        return text + (f" · 未能取回 {len(self.failed)} 封，下次再试" if self.failed else "")

    def lines(self, hint: bool = True) -> list[str]:
        """The summary, each mail taken, each mail refused or not handed over, each warning, in Chinese; with
        `hint`, what to run next when some files need returning."""
        out = [self.summary()]
        for m in self.taken:
            names = "、".join(s.name for s in m.submissions) or "（无报表附件）"
            out.append(f"  {m.arrived:%Y-%m-%d %H:%M}  {m.sender or '?'}  {m.subject}：{names}")
        out += [f"  {m.refusal.render()}" for m in self.refused if m.refusal is not None]  # (each has one)
        out += [f"  未能取回 {mail}：{why}" for mail, why in self.failed]
        out += [f"  {note.render()}" for note in self.notes]
        bad = [i for i in self.ingested if i.outcome == "new" and not i.valid]
        if bad and hint:
            out.append(f"其中 {len(bad)} 份有错误，运行 tuanjian merge 生成退回件和汇总表。")
        return out

    def errors(self) -> list[str]:
        return []

    @property
    def exit_code(self) -> int:
        return 0

    def to_dict(self) -> dict:
        return {"folder": self.folder, "dry_run": self.dry_run, "already": self.already,
                "taken": [{"key": m.key, "arrived": m.arrived.isoformat(), "sender": m.sender, "subject": m.subject,
                           "files": [s.name for s in m.submissions],
                           "refusal": m.refusal.to_dict() if m.refusal else None} for m in self.taken],
                "failed": [{"mail": mail, "reason": why} for mail, why in self.failed],
                "notes": [n.to_dict() for n in self.notes]}


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
        box: imaplib.IMAP4
        if mail.imap_security == "ssl":
            box = imaplib.IMAP4_SSL(mail.imap_host, mail.imap_port, ssl_context=ssl.create_default_context(), timeout=30)
        else:
            box = imaplib.IMAP4(mail.imap_host, mail.imap_port, timeout=30)
            if mail.imap_security == "starttls":
                box.starttls(ssl_context=ssl.create_default_context())
    except (OSError, imaplib.IMAP4.error) as exc:
        raise TuanjianError(Issue.make("mail-connect", what="收信", where=where,
                                       reason=_said(exc), verb="收取")) from None
    try:
        box.login(mail.imap_user, password)
    except imaplib.IMAP4.error:
        raise TuanjianError(Issue.make("mail-login", field="mail.imap_user", where=where, user=mail.imap_user)) from None
    _identify(box)
    return box


def _identify(box: imaplib.IMAP4) -> None:
    """Say who we are (RFC 2971 ID): 163, 126 and yeah.net mailboxes refuse SELECT ("Unsafe Login") from a client
    that has not. A server that does not know the command answers BAD, and nothing else changes."""
    imaplib.Commands.setdefault("ID", ("AUTH", "SELECTED"))
    try:
        box._simple_command("ID", '("name" "tuanjian" "vendor" "tuanjian-xlsx" "version" "1")')
    except (imaplib.IMAP4.error, OSError):
        pass


def fetch_mail(root: Path, *, since: dt.date | None = None, folder: str | None = None, dry_run: bool = False,
               now: dt.datetime | None = None) -> FetchResult:
    """Take every spreadsheet attached to mails not taken before; record each mail once it is in the ledger.
    One mail never stops the others: a mail that cannot be read is recorded as refused and taken, a mail the
    server will not hand over is reported in `failed` and tried again next run."""
    ws = Workspace.load(root)
    mail = ws.settings.mail
    folder = folder or mail.imap_folder
    now = now or clock_now()
    mail_budget_reset()
    result = FetchResult(folder, dry_run=dry_run)
    box = _connect(mail)
    try:
        return _fetch(box, ws, mail, folder, since, dry_run, now, result)
    except (imaplib.IMAP4.abort, OSError) as exc:
        raise TuanjianError(Issue.make("mail-disconnected", reason=_said(exc))) from None
    except imaplib.IMAP4.error as exc:  # a session command (SELECT, SEARCH) answered BAD
        raise TuanjianError(Issue.make("mail-server-error", reason=_said(exc))) from None
    finally:
        try:
            box.logout()
        except (OSError, imaplib.IMAP4.error):
            pass


def _fetch(box, ws: Workspace, mail: Mail, folder: str, since, dry_run: bool, now: dt.datetime,
           result: FetchResult) -> FetchResult:
    typ, data = box.select(_quote(folder), readonly=True)
    if typ != "OK":  # (the server's own words: "no such folder" is not the only reason it gives)
        said = b" ".join(x for x in data if isinstance(x, bytes)).decode("utf-8", "replace") if data else ""
        raise TuanjianError(Issue.make("mail-folder", field="--folder", name=folder,
                                       said=f"（服务器回答：{said[:200]}）" if said.strip() else ""))
    # imaplib files the [UIDVALIDITY n] response code under its name, value alone
    found = _UIDVALIDITY.search(b" ".join(x for x in box.response("UIDVALIDITY")[1] if isinstance(x, bytes)))
    validity = found.group().decode() if found else None
    criteria = ["SINCE", since.strftime("%d-%b-%Y")] if since else ["ALL"]
    typ, data = box.uid("SEARCH", None, *criteria)
    uids = data[0].split() if typ == "OK" and data and data[0] else []
    with Ledger(ws.root) as ledger:
        for uid in uids:
            try:
                _one(box, ledger, ws, mail, folder, f"{folder}/{validity}/{uid.decode()}", uid, dry_run, now, result)
            except imaplib.IMAP4.abort:
                raise  # the connection is gone: what was taken is kept, the caller says so
            except imaplib.IMAP4.error as exc:  # BAD on this mail's FETCH: the session goes on
                result.failed.append((f"UID {uid.decode()}", _not_fetched(exc)))
    return result


def _one(box, ledger: Ledger, ws: Workspace, mail: Mail, folder: str, uid_key: str, uid: bytes, dry_run: bool,
         now: dt.datetime, result: FetchResult) -> None:
    """One mail: keyed, fetched, read, ingested and marked taken, or reported as not handed over."""
    from .merge import ingest_many

    typ, head = _uid_fetch(box, uid, "(INTERNALDATE RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
    if typ != "OK":
        result.failed.append((f"UID {uid.decode()}", _not_fetched(head)))
        return
    if not head or head[0] is None:  # expunged since the search
        return
    meta = b" ".join(p if isinstance(p, bytes) else p[0] for p in head if p)  # INTERNALDATE may come last
    header = next((p[1] for p in head if isinstance(p, tuple) and len(p) > 1), b"")
    mid = message_id(email.message_from_bytes(header or b"", policy=email.policy.default))
    # keyed by its Message-ID, size and arrival in the mailbox: an OA gateway or a scan-to-mail device that gives every
    # mail the same Message-ID must not make a second, different mail pass for one taken (the same mail met again,
    # in this folder or a copy in another, keeps all three; a ledger of before keyed by the ID alone is still read)
    extra = [m.group(1).decode("ascii", "replace") for m in (_SIZE.search(meta), _INTERNALDATE.search(meta)) if m]
    key = mid or uid_key  # (how the mail is named to staff and in its files' origin)
    taken_as = "#".join([mid, *extra]) if mid else uid_key
    if ledger.mail_taken(taken_as) or (taken_as != key and ledger.mail_taken(key)):
        result.already += 1
        return
    try:
        typ, body = _uid_fetch(box, uid, "(BODY.PEEK[])")
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error as exc:  # BAD: reported under the mail's key, tried again next run
        typ, body = "BAD", exc
    raw = next((p[1] for p in body if isinstance(p, tuple) and len(p) > 1), None) if typ == "OK" and body else None
    if typ != "OK" or not raw:  # not taken: the next run tries this mail again
        result.failed.append((key, _not_fetched(body if typ != "OK" else "服务器返回的邮件为空")))
        return
    arrived, basis, note = _arrival(meta, raw, now, key)
    origin = f"imap://{mail.imap_user}@{mail.imap_host}/{folder}#{key}"
    parsed = read_mail(raw, Path(f"邮件{uid.decode()}"), origin, received=arrived, basis=basis)
    subs, sender, subject = parsed.submissions, parsed.head.sender, parsed.head.subject
    if any(s.deferred for s in subs):  # this run's budget for heavy mails spent: fetched again next run
        result.failed.append((key, "结构复杂的邮件本次已读过太多，这封下次再取"))
        return
    if not subs and parsed.others and not parsed.head.automatic:  # only a Word copy, a scan, a RAR: refused
        subs = [no_report(Path(f"邮件{uid.decode()}.eml"), parsed, origin=origin)]  # and said, as a saved mail is
    #                                                                              (a mail of text alone is none)
    result.taken.append(Mailed(key, arrived, sender, subject, subs, parsed.refusal))
    if note is not None:
        result.notes.append(note)
    if dry_run:
        return
    # each file recorded with where its reply goes: the mail's From, one reply for the mail, none if a machine sent it
    ledger.expect_mail(origin, sender, parsed.head.automatic)
    try:
        result.ingested += ingest_many(ledger, ws, subs, now=now)
    finally:
        ledger.expect_mail(None)
    ledger.take_mail(taken_as, folder, arrived, sender, subject, len(subs), now)  # only once it is all in


_SIZE = re.compile(rb"RFC822\.SIZE (\d{1,12})")


def _uid_fetch(box, uid: bytes, what: str):
    # FETCH data a failed command left behind (BAD after partial data) must not pass for the next mail's
    box.untagged_responses.pop("FETCH", None)
    return box.uid("FETCH", uid, what)


def _arrival(meta: bytes, raw: bytes, now: dt.datetime, key: str) -> tuple[dt.datetime, str, Issue | None]:
    """When the mail arrived, and what that rests on (see ledger.RECEIVED_BASES): the server's INTERNALDATE.
    When that is no date (an unknown month, year 9999, a 20-digit year) the mail's own Date, if it is one and not
    after `now`, else `now` — with a warning either way. A missing INTERNALDATE (a server that sends none) is
    `now`, as it always was."""
    m = _INTERNALDATE.search(meta or b"")
    if not m:
        return now, "first-seen", None
    text = m.group(1).decode("ascii", "replace")
    arrived = _internaldate(text)
    if arrived is not None:
        return arrived, "mailbox", None
    try:
        head = read_head(email.message_from_bytes(raw, policy=email.policy.default))
        fallback = head.date if head.date is not None and head.date <= now else None
    except Exception:  # noqa: BLE001 — read_head guards each header; this is the parser itself
        fallback = None
    when = fallback or now
    how = "邮件的发信时间" if fallback else "本次收信时间"
    return when, "mail-date" if fallback else "first-seen", Issue.make("mail-bad-date", file=key, what="到达时间", value=text,
                            fallback=f"{how}（{when:%Y-%m-%d %H:%M}）")


def _internaldate(text: str) -> dt.datetime | None:
    """IMAP's "17-Jul-1996 02:44:25 -0700" as local naive time; None for anything else (imaplib's own
    Internaldate2tuple raises KeyError on an unknown month and overflows on year 9999)."""
    m = _DATE_TIME.fullmatch(text.strip())
    if not m or m.group(2).title() not in _MONTHS:
        return None
    day, mon, year, hh, mm, ss, sign, zh, zm = m.groups()
    try:
        offset = dt.timedelta(hours=int(zh), minutes=int(zm)) * (-1 if sign == "-" else 1)
        when = dt.datetime(int(year), _MONTHS[mon.title()], int(day), int(hh), int(mm), int(ss),
                           tzinfo=dt.timezone(offset))
    except (ValueError, OverflowError):
        return None
    return local_time(when)


def _not_fetched(what) -> str:
    return Issue.make("mail-not-fetched", reason=_said(what)).message


_NETWORK: dict[type[BaseException], str] = {TimeoutError: "超时", ConnectionResetError: "连接被重置", ConnectionAbortedError: "连接中断",
            BrokenPipeError: "连接中断", EOFError: "连接被关闭"}


def _said(what) -> str:
    """What went wrong, short, for a Chinese message: the server's own words, or a network failure named."""
    if isinstance(what, imaplib.IMAP4.error):  # imaplib's text quotes the server's bytes: keep only its words
        found = re.findall(r"b'([^']*)'|b\"([^\"]*)\"", str(what))
        text = " ".join(a or b for a, b in found) or str(what) or "服务器拒绝了该命令"
    elif isinstance(what, BaseException):
        text = _NETWORK.get(type(what)) or (reason(what) if isinstance(what, OSError) else str(what)) or "网络错误"
    elif isinstance(what, list):
        text = b" ".join(p for p in what if isinstance(p, bytes)).decode("utf-8", "replace") or "未说明原因"
    else:
        text = str(what)
    return text if len(text) <= 160 else text[:160] + "…"


def _utf7(name: str) -> str:
    """IMAP's modified UTF-7 for folder names (RFC 3501 5.1.3): 团建报表 -> &VuJe+mKliGg-."""
    import base64

    out: list[str] = []
    buf: list[str] = []

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
