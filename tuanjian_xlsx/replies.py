"""Answering every file received, by mail: a 回执 for a valid file; a 退回 for an invalid one, its 退回件 attached and
its explanation as the body. The files that came in one mail are answered by one mail (each file's verdict, the
退回件 of the invalid ones attached); files put in the inbox by hand, by one mail per address and run.

Only a file that names a unit on the roster is answered by itself (anyone can send anything under any From: a
reply to a file of no known unit would be backscatter, our own mailbox sending their attachment back to whoever
they pretend to be): the others are 'no-reply', 未能认出报送单位, listed once. A known unit's reply goes to the From
of the mail when that is the unit's roster address or the unit has none; when they differ, to the roster address
with the From in Cc, so that the unit's own mailbox always sees what is said in its name; with no From (a file put
in the inbox by hand), to the roster address.

At most once per file, never lost silently:
- a new file is owed its reply from the moment it is recorded: the ledger's `replies` row ('due') is written in the
  same transaction as the file, keyed by its sha256, with the address and the mail it came in (fetchmail.py) — so a
  re-merge, a rebuilt ledger, or a restored copy of the ledger that already knows the file never owes it again, and
  a run killed after taking a file answers it next time, at the right address;
- before a reply is handed to the server its files are marked 'sending' in their own committed transaction, and
  'sent' once the server has accepted it. A reply found 'sending' later (the process died in between), or whose
  connection was lost after the whole message had been handed over, is not sent again: it becomes 'uncertain',
  listed as 可能未送达 for a person to check (and resent with `tuanjian merge --reply --resend <编号>` if need be);
- refused by the server for good (5xx, an address it cannot take): 'refused', listed; the server away or a
  temporary refusal (4xx): still 'due', tried again next time; no address: 'no-address', listed;
- a file received longer ago than [watch] reply_within_days is not answered any more ('expired', each listed once
  with why it waited, in the run that gives it up), so that an old mailbox fetched for the first time, an outage or
  a long pause never turns into a storm of receipts;
- a reply staff ask for by number (--resend) is 'forced' in the ledger until it is sent or given up for good: it
  never expires, is never held back as no-reply and counts against no daily limit, however many runs it waits.
A duplicate of content already received is not a new file: it gets no reply.

Never a machine that mails strangers on demand: a mail that was itself sent by a machine (Auto-Submitted, Precedence:
bulk/junk/list, a delivery report) or that came from our own address gets no reply ('no-reply', listed once with
why: answering robots is how mail loops start); one address gets at most [watch] reply_limit_per_day replies a day, all addresses
together at most reply_limit_total (the rest wait for the next day, said); what we send says Auto-Submitted: auto-replied; a subject says only what
tuanjian knows, never a file's name (mailtext.py).
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import io
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .issues import STAFF_ONLY, Issue, TuanjianError
from .ledger import FileRow, Ledger, ReplyRow
from .plan import Workspace
from .validate import FileResult

if TYPE_CHECKING:
    from .intake import MailHead
    from .mailtext import Template

KIND_ZH = {"receipt": "回执", "return": "退回"}

SHORT = 8  # the characters of a file's sha256 that name its reply (--resend)
MAX_ATTACHED = 30  # 退回件 attached to one reply: a unit sends a few forms; hundreds are no report
MAX_LISTED = 10  # problems of one file listed in a reply answering several (its 退回件 has them all)
OWN_ADDRESS = "来信的发件人就是本工作区的发件邮箱"
UNKNOWN_UNIT = "未能认出报送单位"


def _kind(row: ReplyRow) -> str:
    return row.kind or ("receipt" if row.file.valid else "return")


def _resend(rows: list[ReplyRow]) -> str:
    """The command that sends these files' reply again."""
    return "tuanjian merge --reply " + " ".join(f"--resend {r.file.sha256[:SHORT]}" for r in rows)


@dataclass
class Reply:
    """One mail answering one file, or all the files of one mail (or of one address, for files without a mail)."""

    rows: list[ReplyRow]
    to: str | None
    cc: str | None = None  # the mail's From, when it is not the unit's roster address (the To)
    subject: str = ""
    body: str = ""
    attachments: list[tuple[str, bytes]] = field(default_factory=list)

    @property
    def template(self) -> str:
        """mailtext's kind: a 回执 or 退回 for one file, else the reply for several."""
        return _kind(self.rows[0]) if len(self.rows) == 1 else "batch"

    def count(self, kind: str) -> int:
        return sum(1 for r in self.rows if _kind(r) == kind)

    def shown(self) -> str:
        to = (self.to or "（无地址）") + (f"（抄送 {self.cc}）" if self.cc else "")
        if len(self.rows) == 1:
            f = self.rows[0].file
            return f"{KIND_ZH[_kind(self.rows[0])]} → {to}：{f.unit or '单位不明'} {f.name}"
        names = "、".join(r.file.name for r in self.rows[:3]) + (f" 等 {len(self.rows)} 份" if len(self.rows) > 3 else "")
        counts = "、".join(f"{zh} {self.count(k)} 份" for k, zh in KIND_ZH.items() if self.count(k))
        return f"一封回复 → {to}：{names}（{counts}）"

    def to_dict(self) -> dict:
        return {"to": self.to, "cc": self.cc, "subject": self.subject or None, "attachments": [name for name, _ in self.attachments],
                "files": [{"id": r.file.sha256[:SHORT], "sha256": r.file.sha256, "file": r.file.name,
                           "unit": r.file.unit, "kind": _kind(r)} for r in self.rows]}


@dataclass
class ReplyReport:
    """What one round of replies did (or, with dry_run, would do)."""

    dry_run: bool = False
    within_days: int = 3
    limit: int = 20
    limit_total: int = 200
    sent: list[Reply] = field(default_factory=list)
    would: list[Reply] = field(default_factory=list)
    refused: list[tuple[Reply, str]] = field(default_factory=list)
    waiting: list[tuple[Reply, str]] = field(default_factory=list)  # not sent, tried again next time
    uncertain: list[tuple[Reply, str]] = field(default_factory=list)
    no_address: list[Reply] = field(default_factory=list)
    quiet: list[tuple[Reply, str]] = field(default_factory=list)  # no automatic reply, and why
    deferred: list[Reply] = field(default_factory=list)  # over the day's limit for their address: tomorrow
    over_total: list[Reply] = field(default_factory=list)  # over the day's limit for all addresses: tomorrow
    held: list[Reply] = field(default_factory=list)  # their template is broken: sent once it is corrected
    expired: list[ReplyRow] = field(default_factory=list)  # given up in this run, each with why it waited
    problems: list[Issue] = field(default_factory=list)  # broken templates, the server not set up or away
    away: bool = False  # the mail server could not be reached

    @property
    def failed(self) -> bool:
        return bool(self.refused or self.waiting or self.held)

    def files(self, kind: str, replies: list[Reply] | None = None) -> int:
        """Files of a kind these replies answer (default: those sent, or with dry_run those that would go)."""
        chosen = replies if replies is not None else self.would if self.dry_run else self.sent
        return sum(r.count(kind) for r in chosen)

    def _kinds(self, replies: list[Reply]) -> str:
        counts = [f"{zh} {self.files(k, replies)} 份" for k, zh in KIND_ZH.items() if self.files(k, replies)]
        return "、".join(counts) or "0 份"

    def summary(self) -> str:
        done = self.would if self.dry_run else self.sent
        head = "回执/退回（试运行，不发送、不记录）：将发出 " if self.dry_run else "回执/退回：已发出 "
        mails = f"（{len(done)} 封邮件）" if any(len(r.rows) > 1 for r in done) else ""
        out = [head + self._kinds(done) + mails]
        for n, what in ((len(self.refused), "被拒收"), (len(self.waiting), "待重试"), (len(self.uncertain), "可能未送达"),
                        (len(self.no_address), "无地址"), (sum(len(r.rows) for r, _ in self.quiet), "不自动回复"),
                        (sum(len(r.rows) for r in self.deferred + self.over_total), "明天再发"), (len(self.held), "模板有误暂不发送"),
                        (len(self.expired), f"收到超过 {self.within_days} 天不再回复")):
            if n:
                out.append(f"{what} {n}")
        return " · ".join(out)

    def lines(self) -> list[str]:
        out = [self.summary()]
        verb = "将发" if self.dry_run else "已发"
        for r in self.would if self.dry_run else self.sent:
            extra = f"（附 {'、'.join(n for n, _ in r.attachments)}）" if r.attachments else ""
            out.append(f"  {verb} {r.shown()}{extra}")
        out += [f"  被拒收 {r.shown()}：{why}；不再重发（核对地址后可运行 {_resend(r.rows)}）" for r, why in self.refused]
        if self.away and self.waiting:
            out.append(f"  {self._kinds([r for r, _ in self.waiting])}未发出：发信服务器连不上，下次自动重试")
        else:
            out += [f"  未发出 {r.shown()}：{why}；下次自动重试" for r, why in self.waiting]
        out += [f"  可能未送达 {r.shown()}（{why}）：请向对方确认，需要重发时运行 {_resend(r.rows)}"
                for r, why in self.uncertain]
        out += [f"  无地址：{r.rows[0].file.unit or '单位不明'} {r.rows[0].file.name}：没有发件邮箱，名单中也没有该单位的邮箱，"
                f"未发{KIND_ZH[_kind(r.rows[0])]}（补填邮箱后可运行 {_resend(r.rows)}）" for r in self.no_address]
        out += self._quiet_lines()
        for to, n in _per_address(self.deferred).items():
            out.append(f"  今天给 {to} 的自动回复已满 {self.limit} 封（tuanjian.toml 的 [watch] reply_limit_per_day），"
                       f"其余 {n} 份明天再发")
        if self.over_total:
            out.append(f"  今天的自动回复已满 {self.limit_total} 封（tuanjian.toml 的 [watch] reply_limit_total），"
                       f"其余 {sum(len(d.rows) for d in self.over_total)} 份明天再发")
        out += [f"  {i.render()}" for i in self.problems]
        if self.held:
            out.append(f"  {self._kinds(self.held)}因模板有误暂不发送，改正模板后自动补发（{self.within_days} 天内收到的）")
        if self.expired:
            out.append(f"  {len(self.expired)} 份文件收到已超过 {self.within_days} 天，不再自动回复"
                       "（tuanjian.toml 的 [watch] reply_within_days）：")
            out += [f"  不再回复 {r.file.name}（{r.file.unit or '单位不明'}）：{'此前' + r.detail if r.detail else '一直没有发过'}；"
                    f"确需回复时运行 {_resend([r])}" for r in self.expired]
        return out

    def _quiet_lines(self) -> list[str]:
        """Files that get no automatic reply: one line per reason, naming the files (a few)."""
        by_why: dict[str, list[ReplyRow]] = {}
        for r, why in self.quiet:
            by_why.setdefault(why, []).extend(r.rows)
        out = []
        for why, rows in by_why.items():
            names = "、".join(r.file.name for r in rows[:3]) + (f" 等 {len(rows)} 份" if len(rows) > 3 else "")
            out.append(f"  不自动回复 {names}：{why}（确需回复时运行 {_resend(rows[:3])}{' …' if len(rows) > 3 else ''}）")
        return out

    def to_dict(self) -> dict:
        return {"dry_run": self.dry_run, "sent": [r.to_dict() for r in self.sent],
                "would_send": [r.to_dict() for r in self.would],
                "refused": [dict(r.to_dict(), reason=why) for r, why in self.refused],
                "waiting": [dict(r.to_dict(), reason=why) for r, why in self.waiting],
                "uncertain": [dict(r.to_dict(), reason=why) for r, why in self.uncertain],
                "no_address": [r.to_dict() for r in self.no_address],
                "no_reply": [dict(r.to_dict(), reason=why) for r, why in self.quiet],
                "deferred": [r.to_dict() for r in self.deferred + self.over_total], "held": [r.to_dict() for r in self.held],
                "expired": [{"id": r.file.sha256[:SHORT], "sha256": r.file.sha256, "file": r.file.name,
                             "unit": r.file.unit, "reason": r.detail} for r in self.expired], "problems": [i.to_dict() for i in self.problems]}


def _per_address(replies: list[Reply]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in replies:
        out[r.to or ""] = out.get(r.to or "", 0) + len(r.rows)
    return out


def answer(ws: Workspace, *, now: dt.datetime, dry_run: bool = False, resend: list[str] | None = None,
           results: Mapping[str, FileResult | None] | None = None) -> ReplyReport:
    """Send every reply owed (see the module's docstring). `results`: files validated in this run, by sha256, so
    that their 退回件 need not be made again; `resend`: reply numbers (a sha256's first characters) to owe again."""
    from .mailtext import ensure_defaults

    w = ws.settings.watch
    report = ReplyReport(dry_run=dry_run, within_days=w.reply_within_days, limit=w.reply_limit_per_day,
                         limit_total=w.reply_limit_total)
    if not dry_run:
        ensure_defaults(ws)
    with Ledger(ws.root) as ledger:
        again = _owe_again(ledger, resend or [], now, dry_run)
        _interrupted(ledger, now, report)
        owed = ledger.replies(["due"]) + [r for r in again.values() if r.state != "due" and dry_run]
        # a file staff withdrew (tuanjian ledger void) is answered by nobody: its reply stays owed, should it be
        # restored (a void file's receipt would say 校验通过, or return it to be mended, for a file that counts nowhere)
        owed = [r for r in owed if r.file.void is None]
        forced = set(again) | {r.file.sha256 for r in owed if r.forced}  # asked for by staff, now or in a run before
        cutoff = now - dt.timedelta(days=w.reply_within_days)
        fresh = []
        for row in owed:
            if row.file.received_at < cutoff and row.file.sha256 not in forced:
                report.expired.append(row)
                if not dry_run:
                    ledger.set_replies([row.file.sha256], "expired", now, was=["due"], detail=row.detail)
            else:
                fresh.append(row)
        groups = _within_limit(ledger, _groups(ws, ledger, fresh, forced, now, report), forced, now, report)
        drafts = _drafts(ws, ledger, groups, report, results or {}, now)
        if dry_run:
            report.would = drafts
        elif drafts:
            _send(ws, ledger, drafts, now, report)
    return report


def check_resend(root: Path, wanted: list[str]) -> None:
    """Raise reply-not-found for a --resend number that names no reply: said before merge writes anything, so that
    a mistyped number does not hide what merge did."""
    if wanted:
        with Ledger(root) as ledger:
            _named(ledger, wanted)


def _owe_again(ledger: Ledger, wanted: list[str], now: dt.datetime, dry_run: bool) -> dict[str, ReplyRow]:
    """The replies staff ask to be sent again (by number), owed again (and 'forced', until sent or given up)."""
    found = _named(ledger, wanted)
    if not dry_run:
        for sha, row in found.items():
            ledger.set_replies([sha], "due", now, was=[row.state], forced=True)
    return found


def _named(ledger: Ledger, wanted: list[str]) -> dict[str, ReplyRow]:
    """The replies these numbers name, by sha256; a number that names none (or several) is an error."""
    if not wanted:
        return {}
    rows = ledger.replies(["due", "sent", "refused", "uncertain", "no-address", "no-reply", "expired", "before"])
    found: dict[str, ReplyRow] = {}
    missing = []
    for prefix in wanted:
        hits = [r for r in rows if r.file.sha256.startswith(prefix.strip().lower())] if prefix.strip() else []
        if len(hits) != 1:
            missing.append(prefix)
        else:
            found[hits[0].file.sha256] = hits[0]
    if missing:
        raise TuanjianError([Issue.make("reply-not-found", field="--resend", value=p) for p in missing])
    return found


def _interrupted(ledger: Ledger, now: dt.datetime, report: ReplyReport) -> None:
    """Replies left 'sending' by a run that died: 'uncertain', one line per mail they went in."""
    mails: dict[str, list[ReplyRow]] = {}
    for row in ledger.replies(["sending"]):
        mails.setdefault(row.message or row.file.sha256, []).append(row)
    for rows in mails.values():
        shas = [r.file.sha256 for r in rows]
        if report.dry_run or ledger.set_replies(shas, "uncertain", now, was=["sending"]):
            report.uncertain.append((Reply(rows, rows[0].recipient, rows[0].cc), f"{rows[0].at:%Y-%m-%d %H:%M} 发送时程序中断"))


def _groups(ws: Workspace, ledger: Ledger, rows: list[ReplyRow], again: set[str], now: dt.datetime,
            report: ReplyReport) -> list[Reply]:
    """The replies owed, one per mail the files came in (or per address, for files without a mail); files without
    an address, files naming no unit on the roster and files of mail that gets no automatic reply, recorded and
    listed instead (see the module's docstring for who gets a reply)."""
    units = {u.id: u for u in ws.roster.units}
    by_address = {a: u for u in ws.roster.units for a in u.emails}
    own = (ws.settings.mail.sender or ws.settings.mail.smtp_user or "").strip().lower()
    saved: dict[str, tuple[str, MailHead] | None] = {}
    groups: dict[tuple, Reply] = {}
    for row in rows:
        f = row.file
        eml = _saved_mail(f.origin, saved) if row.mail is None else None
        sender = (row.cc or row.recipient or (eml[1].sender if eml else None) or "").strip() or None
        # a file that names no unit (unreadable, say) sent from a unit's own roster address is that unit's: its
        # 退回 goes back there; from any other address it gets none (never a machine that mails strangers)
        unit = units.get(f.unit_id or "") or (by_address.get(sender.lower()) if sender else None)
        roster = ((unit.email or "").strip() or None) if unit else None
        to, cc = sender or roster, None
        if roster and sender and unit and sender.lower() not in unit.emails:  # its own mailbox sees what is said in its name
            to, cc = roster, sender
        why = (row.automatic or (eml[1].automatic if eml else None) or (OWN_ADDRESS if sender and sender.lower() == own
               else None) or (None if unit else UNKNOWN_UNIT))
        if why and f.sha256 not in again:  # asked for by number: staff know best
            report.quiet.append((Reply([row], to, cc), why))
            if not report.dry_run:
                ledger.set_replies([f.sha256], "no-reply", now, was=["due"], kinds={f.sha256: _kind(row)}, detail=why)
        elif not to:
            report.no_address.append(Reply([row], None))
            if not report.dry_run:
                ledger.set_replies([f.sha256], "no-address", now, was=["due"], kinds={f.sha256: _kind(row)})
        else:
            mail = row.mail or (eml[0] if eml else None)
            key = (to.lower(), (cc or "").lower())
            groups.setdefault(("mail", mail, *key) if mail else ("to", *key), Reply([], to, cc)).rows.append(row)
    return list(groups.values())


def _within_limit(ledger: Ledger, groups: list[Reply], again: set[str], now: dt.datetime,
                  report: ReplyReport) -> list[Reply]:
    """The replies that go today: at most [watch] reply_limit_per_day to one address and reply_limit_total in all
    (staff's --resend aside); the rest stay owed, not even written, the limit they met kept as why they wait."""
    used: dict[str, int] = {}
    total = ledger.replies_sent(None, now.date())
    out = []
    for d in groups:
        assert d.to is not None  # the groups are the replies with an address
        key = d.to.lower()
        if key not in used:
            used[key] = ledger.replies_sent(d.to, now.date())
        if any(r.file.sha256 in again for r in d.rows):
            pass
        elif used[key] >= report.limit:
            report.deferred.append(d)
            _waits(ledger, d, f"当天给 {d.to} 的自动回复已满 {report.limit} 封", now, report)
            continue
        elif total >= report.limit_total:
            report.over_total.append(d)
            _waits(ledger, d, f"当天的自动回复已满 {report.limit_total} 封", now, report)
            continue
        used[key] += 1
        total += 1
        out.append(d)
    return out


def _waits(ledger: Ledger, reply: Reply, why: str, now: dt.datetime, report: ReplyReport) -> None:
    """A reply that stays owed: why it waits kept with it (what an expired reply's line says, days later)."""
    if not report.dry_run:
        ledger.set_replies([r.file.sha256 for r in reply.rows], "due", now, was=["due"], detail=why)


def _drafts(ws: Workspace, ledger: Ledger, groups: list[Reply], report: ReplyReport,
            known: Mapping[str, FileResult | None], now: dt.datetime) -> list[Reply]:
    """Each reply written; those whose template is broken held back."""
    from .mailtext import load

    templates: dict[str, Template] = {}
    for kind in dict.fromkeys(g.template for g in groups):
        try:
            templates[kind] = load(ws, kind)
        except TuanjianError as exc:
            report.problems += exc.issues
    out: list[Reply] = []
    for g in groups:
        if g.template in templates:
            out.append(g)
        else:
            report.held.append(g)
            _waits(ledger, g, "回复模板有误", now, report)
    results = _results(ws, ledger, [r for g in out for r in g.rows if not r.file.valid], known)
    for reply in out:
        _write(ws, ledger, reply, templates[reply.template], results)
    return out


def _write(ws: Workspace, ledger: Ledger, reply: Reply, template: Template, results: dict[str, FileResult]) -> None:
    """A reply's subject, body and attachments. The subject names the unit as the roster does, never as a file
    says (a file's own words stay in the body)."""
    units = {u.id: u.name for u in ws.roster.units}
    rostered = "、".join(dict.fromkeys(units[r.file.unit_id] for r in reply.rows if r.file.unit_id in units))
    if reply.template == "receipt":
        values = _receipt_values(ws, ledger, reply.rows[0])
    elif reply.template == "return":
        values, attached = _return(ws, reply.rows[0], results)
        reply.attachments = [attached] if attached else []
    else:
        values = _batch(ws, ledger, reply, results)
    text = template.render(values, {"单位": rostered or ("报送单位" if reply.template == "return" else "")})
    reply.subject, reply.body = text.subject, text.body + "\n"


def _names(ws: Workspace) -> dict[str, str]:
    return {s.form_id: s.display_name for s in ws.registry.latest()}


def _timely(ws: Workspace, ledger: Ledger, row: ReplyRow) -> tuple[str, str, str]:
    """A valid file's (按时或逾期, 截止日期, 此前收到): whether its unit's form for the period came in time, by the
    rule status.py keeps for the master and the assessment — the first valid file's arrival counts."""
    from .periods import parse_period
    from .status import timeliness

    f = row.file
    period = parse_period(f.period) if f.period else None
    unit = next((u for u in ws.roster.units if u.id == f.unit_id), None)
    due = ws.roster.due(unit, f.form_id, period) if f.form_id and unit and period else None
    if due is None:
        return "", "", ""
    first = ledger.first_valid(f.unit_id or "", f.form_id or "", f.period or "")
    received = first[0] if first else f.received_at
    late = (received.date() - due).days
    verdict = "按时报送" if timeliness(received, due, received.date()) == "on_time" else f"逾期 {late} 天"
    earlier = (f"本期此前已于 {first[0]:%Y-%m-%d %H:%M} 收到 {first[1]}，是否按时以第一份有效文件为准，内容以最后收到的为准。"
               if first and first[2] != f.sha256 else "")
    return verdict, due.isoformat(), earlier


def _notes(row: ReplyRow) -> list[str]:
    """The warnings a unit should check in a valid file (not those for staff about how it came)."""
    notes = [i for i in row.file.issues if i.get("severity") == "warning" and i.get("code") not in STAFF_ONLY]
    out = []
    for n, i in enumerate(notes, start=1):
        place = " ".join(str(x) for x in (i.get("sheet"), i.get("cell")) if x)
        out.append(f"{n}. {place + ' ' if place else ''}{i.get('message', '')}")
    return out


def _receipt_values(ws: Workspace, ledger: Ledger, row: ReplyRow) -> dict[str, str]:
    from .mailtext import common_values
    from .periods import parse_period

    f = row.file
    period = parse_period(f.period) if f.period else None
    verdict, due, earlier = _timely(ws, ledger, row)
    notes = _notes(row)
    return {**common_values(ws), "单位": f.unit or "", "报表": _names(ws).get(f.form_id or "", f.form_id or "报表"),
            "报送期": period.label if period else "", "文件": f.name, "收到时间": f"{f.received_at:%Y-%m-%d %H:%M}",
            "截止日期": due, "按时或逾期": verdict, "此前收到": earlier,
            "提醒": f"另有 {len(notes)} 处请核对（不影响接收）：\n" + "\n".join(notes) if notes else ""}


def _return(ws: Workspace, row: ReplyRow, results: dict[str, FileResult]) -> tuple[dict[str, str], tuple[str, bytes] | None]:
    """A 退回's words, and its 退回件 (None when it cannot be made: the words still go)."""
    from .returns import ProblemRow, message_values, prepare_return, return_stem

    f = row.file
    result = results[f.sha256]
    stem = return_stem(result, ws)
    try:
        data, rows, spec = prepare_return(result, ws)
    except Exception:  # noqa: BLE001 — as write_returns: one file's 退回件 must not stop the others; its words still go
        data, spec = None, None
        rows = [ProblemRow(i.sheet, i.cell, i.field, "", i.message, "", i.severity) for i in result.issues]
    values = {**message_values(result, ws, spec, rows, stem), "收到时间": f"{f.received_at:%Y-%m-%d %H:%M}"}
    return values, ((f"{stem}.xlsx", data) if data is not None else None)


def _batch(ws: Workspace, ledger: Ledger, reply: Reply, results: dict[str, FileResult]) -> dict[str, str]:
    """The reply to several files: one paragraph per file (its verdict; a 退回's problems, its 退回件 attached)."""
    from .mailtext import common_values
    from .periods import parse_period

    names = _names(ws)
    lines: list[str] = []
    left_out = 0
    for n, row in enumerate(reply.rows, start=1):
        f = row.file
        period = parse_period(f.period) if f.period else None
        what = (f"{f.unit or '单位不明'}《{names.get(f.form_id, f.form_id)}》{period.label if period else ''}，"
                if f.form_id else "")  # a file that is no report of ours: its name alone
        if f.valid:
            verdict, due, earlier = _timely(ws, ledger, row)
            timing = f"，{verdict}（截止日期 {due}）" if verdict else ""
            lines.append(f"{n}. {f.name}：{what}校验通过{timing}。{earlier}")
            notes = _notes(row)
            if notes:
                lines += [f"   另有 {len(notes)} 处请核对（不影响接收）："] + [f"   {x}" for x in notes[:MAX_LISTED]]
            continue
        values, attached = _return(ws, row, results)
        if attached and len(reply.attachments) < MAX_ATTACHED:
            reply.attachments.append(attached)
            where = f"，见附件《{attached[0]}》"
        else:
            left_out += attached is not None
            where = ""
        problems = values["问题清单"].splitlines()
        lines.append(f"{n}. {f.name}：{what}有 {values['问题数']} 处需要修改{where}：")
        lines += [f"   {p}" for p in problems[:MAX_LISTED]]
        if len(problems) > MAX_LISTED:
            lines.append(f"   ……另有 {len(problems) - MAX_LISTED} 处，见退回件")
        twin = next((r.file for r in reply.rows if r.file.valid and f.form_id and f.unit_id
                     and (r.file.unit_id, r.file.form_id, r.file.period) == (f.unit_id, f.form_id, f.period)
                     and _replaces(ws, r.file, f)), None)
        if twin is not None:  # a draft beside its corrected copy: sent back fixed, it would replace the good one
            lines.append(f"   同一封邮件里的 {twin.name} 已校验通过并计入；如这份只是它的草稿，不必修改重报"
                         "（再报会替换已计入的内容）。")
    invalid = sum(1 for r in reply.rows if not r.file.valid)
    how = ""
    if reply.attachments:
        how = "请打开附件中的退回件，按红色单元格的批注修改后，重新报送需要修改的报表。"
    elif invalid:
        how = "请使用下发的模板重新填写需要修改的报表后报送。"
    if left_out:
        how += f"（退回件较多，只附了前 {MAX_ATTACHED} 份，其余 {left_out} 份请联系我们索取。）"
    units = "、".join(dict.fromkeys(r.file.unit for r in reply.rows if r.file.unit))
    return {**common_values(ws), "单位": units, "份数": str(len(reply.rows)), "通过数": str(len(reply.rows) - invalid),
            "退回数": str(invalid), "收到时间": f"{min(r.file.received_at for r in reply.rows):%Y-%m-%d %H:%M}",
            "逐份结果": "\n".join(lines), "修改办法": how}


def _replaces(ws: Workspace, valid: FileRow, invalid: FileRow) -> bool:
    """Whether the valid file holds what the invalid one would, sent again corrected (a draft beside its corrected
    copy): the same report for a form counted whole per period; for one counted per record (附件1: per visit), the
    same record keys — another visit sent fixed would count beside it, and must be."""
    from .normalise import fold

    keys = ws.spec(valid.form_id).supersede_by if valid.form_id else ()
    if not keys:
        return True

    def of(f: FileRow) -> set[str]:
        return {fold(str(r["values"].get(keys[0]) or "")) for r in f.records}

    return bool(of(invalid)) and of(invalid) <= of(valid)


def _results(ws: Workspace, ledger: Ledger, rows: list[ReplyRow], known: Mapping[str, FileResult | None]
             ) -> dict[str, FileResult]:
    """What validation found for each invalid file: this run's, else its archived original read again (isolated,
    as merge does), else what the ledger kept (a refusal has no original)."""
    from .checking import validate_many
    from .intake import Submission

    out: dict[str, FileResult] = {}
    again: list[tuple[ReplyRow, Submission]] = []
    for row in rows:
        f = row.file
        done = known.get(f.sha256)
        if done is not None and not done.partial:
            out[f.sha256] = replace(done, path=Path(f.name), file=f.name)
            continue
        path = ledger.archive_path(f.sha256, f.ext)
        if path.exists():
            again.append((row, Submission(path, str(path), member=f.name, received_at=f.received_at)))
        else:
            out[f.sha256] = FileResult(path=Path(f.name), file=f.name, form_id=f.form_id, unit=f.unit,
                                       unit_id=f.unit_id, period=f.period, issues=[Issue(**i) for i in f.issues])
    for (row, _), result in zip(again, validate_many(ws, [sub for _, sub in again])):
        # what was found when it arrived (its sender, how it came: not in the original), with its records read again
        done = known.get(row.file.sha256)
        out[row.file.sha256] = replace(result, path=Path(row.file.name), file=row.file.name,
                                       issues=done.issues if done is not None else result.issues)
    return out


def _saved_mail(origin: str, cache: dict[str, tuple[str, MailHead] | None]) -> tuple[str, MailHead] | None:
    """The saved mail (.eml) a file was taken out of, if that mail is still where it was: its path and what its
    headers say (From; whether a machine sent it). Files fetched from the mailbox have these in the ledger."""
    from .intake import read_head

    cut = origin.lower().find(".eml#")
    if cut < 0:
        return None
    where = origin[:cut + 4]
    if where not in cache:
        cache[where] = None
        try:
            data = _saved_bytes(where)
            if data is not None:
                cache[where] = (where, read_head(email.message_from_bytes(data, policy=email.policy.default)))
        except OSError:
            pass
        except Exception:  # noqa: BLE001 — read_head guards each header; this is the parser itself
            pass
    return cache[where]


def _saved_bytes(where: str) -> bytes | None:
    """A saved mail's bytes: a file on disk, or a member of a zip on disk (zip!mail.eml, zip!inner.zip!mail.eml, as
    intake names them); None when it is no longer there or larger than a mail may be."""
    import zipfile

    from .intake import MAX_MAIL_BYTES, MAX_MEMBER_BYTES, zip_name

    if Path(where).is_file():  # a mail saved on its own (its folder's name may hold a "!")
        return Path(where).read_bytes() if Path(where).stat().st_size <= MAX_MAIL_BYTES else None
    cuts = [k for k, ch in enumerate(where) if ch == "!" and Path(where[:k]).is_file()]
    if not cuts:
        return None
    path, members = where[:cuts[0]], where[cuts[0] + 1:].split("!")
    source: Path | io.BytesIO = Path(path)
    data = None
    for k, member in enumerate(members):
        with zipfile.ZipFile(source) as z:
            info = next((i for i in z.infolist() if zip_name(i) == member), None)
            limit = MAX_MAIL_BYTES if k == len(members) - 1 else MAX_MEMBER_BYTES
            if info is None or info.file_size > limit:
                return None
            data = z.read(info)
        source = io.BytesIO(data)
    return data


def _send(ws: Workspace, ledger: Ledger, drafts: list[Reply], now: dt.datetime, report: ReplyReport) -> None:
    """Each reply: its files 'sending' committed, handed to the server, then what became of it recorded."""
    from .mail import Session

    org = ws.settings.organisation
    try:
        session = Session(ws.settings.mail, f"{org.name}{org.department}")
        session.open()
    except TuanjianError as exc:  # not set up, or the server away: every reply stays owed
        report.problems += exc.issues
        report.away = any(i.code == "mail-connect" for i in exc.issues)
        report.waiting += [(d, exc.issues[0].message) for d in drafts]
        for d in drafts:
            _waits(ledger, d, f"未能连上发信服务器（{exc.issues[0].message}）", now, report)
        return
    try:
        for d in drafts:
            assert d.to is not None  # drafts are the replies with an address
            shas = [r.file.sha256 for r in d.rows]
            kinds = {r.file.sha256: _kind(r) for r in d.rows}
            try:
                msg = session.compose(d.to, d.subject, d.body, d.attachments, auto="auto-replied", cc=d.cc)
            except (ValueError, TypeError):  # an address no mail header can carry
                why = f"收件地址无效（{d.to}）"
                ledger.set_replies(shas, "refused", now, was=["due"], kinds=kinds, detail=why)
                report.refused.append((d, why))
                continue
            taken = ledger.set_replies(shas, "sending", now, was=["due"], kinds=kinds, recipient=d.to,
                                       message=str(msg["Message-ID"]), cc=d.cc)
            if len(taken) < len(shas):  # another run has some of them: theirs to answer, these stay owed
                ledger.set_replies(taken, "due", now, was=["sending"])
                continue
            got = session.deliver(msg)
            state = {"sent": "sent", "refused": "refused", "retry": "due", "uncertain": "uncertain"}[got.outcome]
            ledger.set_replies(shas, state, now, was=["sending"], detail=got.why or None)
            got.tally(report, d, (d, got.why))
    finally:
        session.close()
