"""年底考核 (`tuanjian assess`): each assessed unit's year scored from what the ledger knows, by the rules of 考核细则.

`assess_facts` gathers the facts behind the scores from the ledger; `assess_book` writes the workbook, where every
score is a formula over those facts; this module reads back the manual 加减分 of the previous assessment at the
output path (a file there that is not one is never overwritten, nor one whose 加减分 the new rules have no column
for) and writes the new one the way merge writes the master, keeping the old one as .bak.xlsx.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path

from .assess_book import HEADINGS, KIND, SCORES, Kept, UnitScore, render_assessment
from .assess_facts import Basis, gather
from .formulas import text_number
from .issues import Issue, TuanjianError
from .ledger import Ledger
from .merge import write_master
from .plan import Workspace
from .read import open_package
from .roster import Unit


# --- the previous assessment's 加减分 ------------------------------------------------------------------------------


def read_kept(path: Path, year: int, sheet: str, headings: dict[str, str]) -> tuple[list[Kept], str | None]:
    """The 加减分 and 原因 typed into the previous assessment at `path` (read by the project's reader, found by the
    headings, never by row), and what could not be found there when its 考核得分 was renamed or its headings
    changed (None when nothing is missing). A file there that is not this year's assessment is refused, never
    overwritten."""
    if not path.exists():
        return [], None
    pkg = open_package(path)
    card = pkg.passport() if pkg.ok else {}
    if card.get("form_id") != KIND:
        raise TuanjianError(Issue.make("assess-not-ours", file=path.name,
                                       detail=f"{path} 已存在，但不是 tuanjian 生成的年度考核表"))
    if card.get("period") != str(year):
        raise TuanjianError(Issue.make("assess-not-ours", file=path.name,
                                       detail=f"{path} 是 {card.get('period')} 年的考核表"))
    if sheet not in dict(pkg.sheets):
        return [], f"没有“{sheet}”工作表"
    rows = pkg.rows(sheet)
    head = next((r for r, row in enumerate(rows) if headings["unit"] in row), None)
    if head is None:
        return [], f"“{sheet}”中找不到“{headings['unit']}”这一列"
    if headings["adjustment"] not in rows[head]:
        # no 原因 either: written by rules without 加减分, nothing typed to keep; 原因 alone: 加减分 renamed
        return [], f"“{sheet}”中找不到“{headings['adjustment']}”这一列" if headings["reason"] in rows[head] else None
    col = {key: rows[head].index(title) if title in rows[head] else None for key, title in headings.items()
           if key != "weights"}

    def cell(row: list, key: str):
        c = col[key]
        v = row[c] if c is not None and c < len(row) else ""
        return "" if v is None else v

    out = []
    for row in rows[head + 1:]:
        unit, adj, why = str(cell(row, "unit")).strip(), cell(row, "adjustment"), _text(cell(row, "reason"))
        if not unit or unit == headings["weights"] or (adj == "" and not why):
            continue
        if isinstance(adj, str):
            number = text_number(adj.strip())
            adj = number if number is not None else adj.strip() or None
        out.append(Kept(_text(cell(row, "unit_id")), unit, adj, why))
    return out, None


def _text(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v).strip()


def match_kept(kept: list[Kept], units: list[Unit], bound: float | None) -> tuple[dict[str, Kept], list[Issue]]:
    """The kept entries by the unit they belong to now (by its 单位编号, else its name), and what could not be kept
    or is kept but cannot count as typed (text; beyond ±`bound`, the rules' 上限)."""
    by_id = {u.id: u for u in units}
    by_name = {u.name: u for u in units}
    out: dict[str, Kept] = {}
    notes = []
    for k in kept:
        unit = by_id.get(k.unit_id) or by_name.get(k.unit)
        shown = "" if k.adjustment is None else f"{k.adjustment:g}" if isinstance(k.adjustment, float) else k.adjustment
        if unit is None:
            notes.append(Issue.make("assess-adjustment-dropped", unit=k.unit, value=shown or "（空）",
                                    reason=k.reason or "未写原因"))
            continue
        if isinstance(k.adjustment, str):
            notes.append(Issue.make("assess-adjustment-text", unit=unit.name, value=k.adjustment))
        elif isinstance(k.adjustment, float) and bound is not None and abs(k.adjustment) > bound:
            notes.append(Issue.make("assess-adjustment-range", unit=unit.name, value=shown, bound=f"{bound:g}",
                                    counted=f"{math.copysign(bound, k.adjustment):+g}"))
        out[unit.id] = k
    return out, notes


def nothing_scored(ws: Workspace, basis: Basis) -> Issue | None:
    """Why an assessment has no score at all, if it has none."""
    if basis.facts:
        return None
    roster = ws.settings.roster.file
    if not basis.rules.scored:
        reason = f"《{roster}》的“考核细则”中没有计分的项目（报送及时、走基层、观摩交流、目标完成等）"
    elif not basis.units:
        reason = f"“考核细则”的考核范围内没有单位（《{roster}》的“单位名单”中没有这些类型的单位）"
    elif not basis.owed:
        start = ws.settings.reporting.start
        reason = (f"截至统计日 {basis.as_of.isoformat()}，{basis.year} 年没有已到截止日期的报送期"
                  + (f"（tuanjian.toml 的报送起始期是 {start}）" if start else ""))
    else:
        reason = "“考核细则”中的计分项目对考核范围内的单位都不适用（原因见年度考核表的“评分说明”）"
    return Issue.make("assess-nothing-scored", reason=reason)


# --- the command -------------------------------------------------------------------------------------------------


@dataclass
class Assessment:
    path: Path
    year: int
    as_of: dt.date
    units: list[UnitScore]
    kept: int  # manual adjustments carried over from the previous file
    replaced: bool  # a previous assessment stood at the path
    notes: list[Issue] = field(default_factory=list)
    backup: Path | None = None  # where the replaced assessment was kept

    def to_dict(self) -> dict:
        return {"file": str(self.path), "year": self.year, "as_of": self.as_of.isoformat(), "kept": self.kept,
                "replaced": self.replaced, "backup": str(self.backup) if self.backup else None,
                "units": [u.to_dict() for u in self.units], "notes": [n.to_dict() for n in self.notes]}


def assess(root: Path, *, year: int, as_of: dt.date, out: Path | None = None) -> Assessment:
    """Score `year` as of `as_of` and write the assessment (default: 年度考核表（year年）.xlsx beside the master),
    keeping the manual 加减分 of the one it replaces, and that one as 年度考核表（year年）.bak.xlsx."""
    if as_of < dt.date(year, 1, 1):
        raise TuanjianError(Issue.make("assess-too-early", field="--as-of", as_of=as_of.isoformat(), year=year))
    ws = Workspace.load(root)
    rules = ws.assessment_rules()
    notes = [Issue.make("assess-rules-default", file=ws.settings.roster.file)] if rules.builtin else []
    target = Path(out) if out else ws.assessment_path(year)
    replaced = target.exists()
    previous, unreadable = read_kept(target, year, SCORES, HEADINGS)
    with Ledger(ws.root, readonly=True) as ledger:  # assessing writes nothing to the ledger
        files = ledger.files()
    basis = gather(ws, files, rules, year, as_of)
    adjust = rules.adjustment
    kept, kept_notes = match_kept(previous, basis.units, adjust.points if adjust else None)
    if kept and adjust is None:  # the new table would have no column for them: never overwrite what staff typed
        names = "、".join(u.name for u in basis.units if u.id in kept)
        raise TuanjianError(Issue.make("assess-adjustment-nowhere", file=target.name, count=len(kept), units=names,
                                       roster=ws.settings.roster.file))
    data, units = render_assessment(ws, basis, kept)
    backup = target.with_name(target.stem + ".bak" + target.suffix)
    path, written = write_master(target, data)  # the master's way: the old one kept as .bak, a locked one beside
    kept_back = replaced and not any(n.code == "backup-failed" for n in written)
    if unreadable:
        notes.append(Issue.make("assess-previous-unreadable", file=target.name, detail=unreadable, backup=backup.name))
    nothing = nothing_scored(ws, basis)
    return Assessment(path, year, as_of, units, len(kept), replaced,
                      notes + kept_notes + written + ([nothing] if nothing else []), backup if kept_back else None)
