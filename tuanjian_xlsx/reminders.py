"""Reminders by mail: a 催报 to each unit that has not sent a report already due (未报, from status.py), and — some days
before a due date — a 提前提醒 to each unit that has not sent it yet. One mail per unit naming every form and period
it owes, each with its blank copy as distributed (distribute.py makes it), to the unit's roster address.

Each reminder is recorded per unit, form, period, kind and the day it was sent (the real day, whatever date the
statuses are taken as of): the same reminder never goes twice on one day (nor again within `repeat_days`). As with
replies, a reminder is marked 'sending' in its own committed transaction before it is handed to the server; one
found 'sending' later (the process died in between) is not sent again but listed as 可能未送达. Refused for good
(5xx): recorded for the day, listed; the server away or 4xx: not recorded, so the next run sends it. One reminder
that cannot be made (its blank copy unreadable, an address no mail header can carry) stops no other. Reminders say
Auto-Submitted: auto-generated."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from .issues import Issue, TuanjianError
from .ledger import Ledger
from .plan import Workspace
from .roster import Unit
from .status import StatusItem, reminder_values

KIND_ZH = {"overdue": "催报", "advance": "提前提醒"}
TEMPLATE = {"overdue": "reminder", "advance": "advance"}  # mailtext's kinds


@dataclass
class Reminder:
    unit: Unit
    kind: str  # overdue | advance
    items: list[StatusItem]
    labels: list[str]  # each item as staff read it: 《附件1 团干部走基层情况报告单》2026年3月
    subject: str = ""
    body: str = ""
    attachments: list[Path] = field(default_factory=list)

    def shown(self) -> str:
        return f"{KIND_ZH[self.kind]} → {self.unit.email or '（无地址）'}：{self.unit.name}（{'、'.join(self.labels)}）"

    def to_dict(self) -> dict:
        return {"unit": self.unit.name, "kind": self.kind, "to": self.unit.email or None, "subject": self.subject or None,
                "items": [{"form_id": i.form_id, "period": i.period.code, "due": i.due.isoformat()} for i in self.items],
                "attachments": [p.name for p in self.attachments]}


@dataclass
class ReminderReport:
    kind: str
    day: dt.date
    dry_run: bool = False
    repeat_days: int = 1
    sent: list[Reminder] = field(default_factory=list)
    would: list[Reminder] = field(default_factory=list)
    refused: list[tuple[Reminder, str]] = field(default_factory=list)
    waiting: list[tuple[Reminder, str]] = field(default_factory=list)
    uncertain: list[str] = field(default_factory=list)  # what was being sent when a run died, as staff read it
    no_address: list[Reminder] = field(default_factory=list)
    held: list[Reminder] = field(default_factory=list)
    already: int = 0  # forms reminded today (or within repeat_days): not again
    problems: list[Issue] = field(default_factory=list)
    away: bool = False

    @property
    def failed(self) -> bool:
        return bool(self.refused or self.waiting or self.held)

    def summary(self) -> str:
        zh = KIND_ZH[self.kind]
        done = self.would if self.dry_run else self.sent
        head = (f"{zh}（{self.day.isoformat()}，试运行，不发送、不记录）：将发给" if self.dry_run
                else f"{zh}（{self.day.isoformat()}）：已发给")
        out = [f"{head} {len(done)} 个单位（{sum(len(r.items) for r in done)} 份报表）"]
        for n, what in ((len(self.refused), "被拒收"), (len(self.waiting), "待重试"), (len(self.uncertain), "可能未送达"),
                        (len(self.no_address), "没有邮箱"), (len(self.held), "模板有误暂不发送")):
            if n:
                out.append(f"{what} {n}")
        if self.already:
            out.append(f"{'今天' if self.repeat_days == 1 else f'{self.repeat_days} 天内'}已发过 {self.already} 份")
        return " · ".join(out)

    def lines(self) -> list[str]:
        out = [self.summary()]
        verb = "将发" if self.dry_run else "已发"
        out += [f"  {verb} {r.shown()}" for r in (self.would if self.dry_run else self.sent)]
        out += [f"  被拒收 {r.shown()}：{why}" for r, why in self.refused]
        if self.away and self.waiting:
            out.append(f"  {len(self.waiting)} 个单位的{KIND_ZH[self.kind]}未发出：发信服务器连不上，下次自动重试")
        else:
            out += [f"  未发出 {r.shown()}：{why}；下次自动重试" for r, why in self.waiting]
        out += [f"  可能未送达 {line}：请向对方确认" for line in self.uncertain]
        if self.no_address:
            out.append(f"  没有邮箱的单位 {len(self.no_address)} 个：{'、'.join(r.unit.name for r in self.no_address)}"
                       "（可在《名单与目标.xlsx》的“单位名单”中补填）")
        out += [f"  {i.render()}" for i in self.problems]
        if self.held:
            out.append(f"  {len(self.held)} 个单位的{KIND_ZH[self.kind]}因模板有误暂不发送，改正模板后再发")
        return out

    def to_dict(self) -> dict:
        return {"kind": self.kind, "day": self.day.isoformat(), "dry_run": self.dry_run,
                "sent": [r.to_dict() for r in self.sent], "would_send": [r.to_dict() for r in self.would],
                "refused": [dict(r.to_dict(), reason=why) for r, why in self.refused],
                "waiting": [dict(r.to_dict(), reason=why) for r, why in self.waiting],
                "uncertain": self.uncertain, "no_address": [r.unit.name for r in self.no_address],
                "held": [r.to_dict() for r in self.held], "already": self.already,
                "problems": [i.to_dict() for i in self.problems]}


def remind(ws: Workspace, items: list[StatusItem], *, day: dt.date, now: dt.datetime, kind: str,
           before_days: int = 0, repeat_days: int = 1, dry_run: bool = False) -> ReminderReport:
    """Send the reminders of one kind owed as of `day` for these statuses: "overdue" — every 未报; "advance" — every
    form not yet in whose due date is at most `before_days` away. A form already reminded of today (`now`'s date),
    or less than `repeat_days` before, is left out."""
    from .mailtext import ensure_defaults, load

    report = ReminderReport(kind, day, dry_run, repeat_days)
    today = now.date()  # what a reminder is recorded under: the day it goes, not the day the statuses are as of
    names = {s.form_id: s.display_name for s in ws.registry.latest()}
    if not dry_run:
        ensure_defaults(ws)
    with Ledger(ws.root) as ledger:
        stuck = ledger.reminders_in("sending")
        if stuck and not dry_run:
            ledger.set_reminders([row[:5] for row in stuck], "uncertain", now)
        units = {u.id: u.name for u in ws.roster.units}
        report.uncertain = [f"{KIND_ZH.get(k, k)} → {to}：{units.get(u, u)}《{names.get(f, f)}》{p}"
                            f"（{at:%Y-%m-%d %H:%M} 发送时程序中断）" for u, f, p, k, _, to, at in stuck]
        todo = []
        for i in items:
            if not _owed(i, kind, day, before_days):
                continue
            last = ledger.reminded(i.unit_id, i.form_id, i.period.code, kind)
            # a unit without an address was never sent anything: listed under 没有邮箱 every time, never 已发过
            if last is not None and (today - last[0]).days < repeat_days and last[1] != "no-address":
                report.already += 1
            else:
                todo.append(i)
        reminders = _per_unit(ws, todo, kind, report, names)
        if report.no_address and not dry_run:  # (what the ledger knows of them: no mail went)
            ledger.set_reminders([(r.unit.id, i.form_id, i.period.code, kind, today) for r in report.no_address
                                  for i in r.items], "no-address", now)
        if not reminders:
            return report
        try:
            template = load(ws, TEMPLATE[kind])
        except TuanjianError as exc:
            report.problems += exc.issues
            report.held = reminders
            return report
        for r in reminders:
            text = template.render(reminder_values(ws, r.unit.name, r.items, day))
            r.subject, r.body = text.subject, text.body + "\n"
        if dry_run:
            report.would = reminders
            return report
        _attach(ws, reminders, report)
        _send(ws, ledger, reminders, now, report)
    return report


def _owed(item: StatusItem, kind: str, day: dt.date, before_days: int) -> bool:
    if kind == "overdue":
        return item.status == "missing"
    return item.status == "not_due" and 0 <= (item.due - day).days <= before_days


def _per_unit(ws: Workspace, items: list[StatusItem], kind: str, report: ReminderReport,
              names: dict[str, str]) -> list[Reminder]:
    """One reminder per unit, in roster order; units without an address set aside."""
    groups: dict[str, list[StatusItem]] = {}
    for i in items:
        groups.setdefault(i.unit_id, []).append(i)
    out: list[Reminder] = []
    for unit in ws.roster.units:
        if unit.id in groups:
            rows = groups[unit.id]
            r = Reminder(unit, kind, rows, [f"《{names.get(i.form_id, i.form_id)}》{i.period.label}" for i in rows])
            (out if unit.email else report.no_address).append(r)
    return out


def _attach(ws: Workspace, reminders: list[Reminder], report: ReminderReport) -> None:
    """Each form's blank copy as distributed for its unit and period (written to 下发/ as `distribute` does)."""
    from .distribute import distribute

    by_period: dict[str, list[Reminder]] = {}
    for r in reminders:
        for i in r.items:
            by_period.setdefault(i.period.code, []).append(r)
    copies: dict[tuple[str, str, str], Path] = {}
    for code, rs in by_period.items():
        forms = sorted({i.form_id for r in rs for i in r.items if i.period.code == code})
        units = sorted({r.unit.id for r in rs})
        try:
            made = distribute(ws.root, code, forms=forms, units=units)
        except TuanjianError as exc:  # the reminder still goes, without the copy
            report.problems += exc.issues
            continue
        for pkg in made.packages:
            for (spec, _, _), path in zip(pkg.forms, pkg.files):
                copies[(pkg.unit.id, spec.form_id, code)] = path
    for r in reminders:
        r.attachments = [p for i in r.items if (p := copies.get((r.unit.id, i.form_id, i.period.code)))]


def _send(ws: Workspace, ledger: Ledger, reminders: list[Reminder], now: dt.datetime, report: ReminderReport) -> None:
    """Each reminder: 'sending' committed, handed to the server, then what became of it recorded under today."""
    from .mail import Session

    org = ws.settings.organisation
    try:
        session = Session(ws.settings.mail, f"{org.name}{org.department}")
        session.open()
    except TuanjianError as exc:
        report.problems += exc.issues
        report.away = any(i.code == "mail-connect" for i in exc.issues)
        report.waiting += [(r, exc.issues[0].message) for r in reminders]
        return
    try:
        for r in reminders:
            assert r.unit.email  # reminders without an address are set aside
            keys = [(r.unit.id, i.form_id, i.period.code, r.kind, now.date()) for i in r.items]
            try:
                files = [(p.name, p.read_bytes()) for p in r.attachments]
            except OSError as exc:  # this unit's blank copy: the others still go; this one next time
                from .xlsxio import os_reason

                report.waiting.append((r, f"无法读取附件（{os_reason(exc)}）"))
                continue
            try:
                msg = session.compose(r.unit.email, r.subject, r.body, files, auto="auto-generated")
            except (ValueError, TypeError):  # an address no mail header can carry
                ledger.set_reminders(keys, "refused", now, r.unit.email, detail="收件地址无效")
                report.refused.append((r, f"收件地址无效（{r.unit.email}）"))
                continue
            ledger.set_reminders(keys, "sending", now, r.unit.email)
            got = session.deliver(msg)
            state = {"sent": "sent", "refused": "refused", "retry": None, "uncertain": "uncertain"}[got.outcome]
            ledger.set_reminders(keys, state, now, detail=got.why or None)
            got.tally(report, r, f"{r.shown()}（{got.why}）")
    finally:
        session.close()


def owed_reminders(root: Path, *, day: dt.date, now: dt.datetime, kind: str, before_days: int = 0,
                   repeat_days: int = 1, period: str | None = None, dry_run: bool = False) -> ReminderReport:
    """The statuses as of `day` (status.py's 未报 / 未到期), then `remind`."""
    from .merge import status

    _, items, ws = status(root, as_of=day, period=period)
    return remind(ws, items, day=day, now=now, kind=kind, before_days=before_days, repeat_days=repeat_days,
                  dry_run=dry_run)
