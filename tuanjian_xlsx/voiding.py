"""`tuanjian ledger void`: staff withdraw a file sent by mistake (the wrong period, the wrong unit), or restore it.

Nothing is deleted: the file's row and its archived original stay, and the void is one more row in the ledger (who,
when, why; an undo another), keyed by the file's sha256 so that a rebuilt ledger keeps it. A void file is no
submission (ledger.FileRow.counts): its records count nowhere, replace nothing, and its arrival is no 报送 time;
the master's 来源 lists it as 作废 with the reason. The next merge renders the master again (the void is part of
what it is made from: merge._inputs_key)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from .issues import Issue, TuanjianError
from .ledger import FileRow, Ledger
from .periods import parse_period
from .plan import Workspace

CANDIDATES_SHOWN = 10  # an ambiguous name lists at most this many of its files


@dataclass
class VoidReport:
    """What `void` did to one file."""

    file: FileRow
    form: str  # the form's display name
    undo: bool  # restoring, not withdrawing
    reason: str
    was: str | None  # why it was void before the command (None: it counted)

    @property
    def changed(self) -> bool:
        return (self.was is None) != self.undo

    @property
    def exit_code(self) -> int:
        return 0

    def errors(self) -> list[str]:
        return []

    def lines(self) -> list[str]:
        what = f"{self.file.name}（{describe(self.file, self.form)}）"
        if not self.changed:
            return [f"{what}本来就未作废，未作改动"] if self.undo else [
                f"{what}已是作废状态（作废原因：{self.was}），未作改动"]
        if self.undo:
            return [f"已恢复：{what}；恢复原因：{self.reason}（原作废原因：{self.was}）",
                    "原件与登记都在；下次运行 tuanjian merge 时重新计入汇总表"]
        return [f"已作废：{what}；原因：{self.reason}",
                "原件与登记保留（未删除）；下次运行 tuanjian merge 时汇总表不再计入此文件，“来源”表中标为作废"]

    def to_dict(self) -> dict:
        f = self.file
        return {"file": f.name, "sha256": f.sha256, "unit": f.unit, "form_id": f.form_id, "period": f.period,
                "received": f.received_at.isoformat(), "action": "undo" if self.undo else "void",
                "reason": self.reason, "changed": self.changed, "void": not self.undo,
                "was_void": self.was}


def describe(f: FileRow, form: str) -> str:
    """A file as a person tells it from others: unit, form, period, when it came, the start of its sha256."""
    p = parse_period(f.period) if f.period else None
    period = p.label if p else f.period or "报送期不明"
    return (f"{f.unit or '单位不明'}《{form}》{period}，{f.received_at:%Y-%m-%d %H:%M} 收到，"
            f"SHA-256 {f.sha256[:12]}")


def void(root: Path, which: str, *, reason: str | None, undo: bool = False, who: str | None = None,
         now: dt.datetime) -> VoidReport:
    """Withdraw the file `which` names (its name as received, or the start of its sha256, as 来源 shows them) for
    `reason`, or restore it (`undo`); doing it twice changes nothing. Raises TuanjianError (in Chinese) when no
    reason is given, or `which` names no file or several."""
    reason = (reason or "").strip()
    if not reason:
        raise TuanjianError(Issue.make("void-no-reason", what="恢复" if undo else "作废"))
    ws = Workspace.load(root)
    forms = {s.form_id: s.display_name for s in ws.registry.latest()}
    with Ledger(ws.root) as ledger:
        found = ledger.find(which)
        if not found:
            raise TuanjianError(Issue.make("void-unknown-file", value=which.strip()))
        if len(found) > 1:
            shown = "；".join(f"{f.sha256[:12]}（{describe(f, _form(forms, f))}{'，已作废' if f.void else ''}）"
                             for f in found[:CANDIDATES_SHOWN])
            more = f"；另有 {len(found) - CANDIDATES_SHOWN} 个" if len(found) > CANDIDATES_SHOWN else ""
            raise TuanjianError(Issue.make("void-ambiguous", value=which.strip(), count=len(found),
                                           candidates=shown + more))
        f = found[0]
        was = ledger.set_void(f.sha256, not undo, reason, who, now)
    return VoidReport(f, _form(forms, f), undo, reason, was)


def _form(forms: dict[str, str], f: FileRow) -> str:
    return forms.get(f.form_id or "", f.form_id or "报表不明")
