"""`tuanjian distribute`: each unit's own ready-to-fill copy for a period — unit, period and deadline filled and
locked, the passport set — with a 填报说明.txt, optionally zipped per unit."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .build import Prefill, build_template
from .plan import Workspace
from .roster import CADENCE_ZH, Unit
from .issues import Issue, TuanjianError
from .ledger import Ledger
from .mail import Outgoing, SendReport, send_all
from .periods import PERIOD_KIND, Period, parse_period
from .filenames import safe_filename
from .xlsxio import BUILD_DATE, atomic_write


@dataclass
class UnitPackage:
    """What one unit gets for the period."""

    unit: Unit
    files: list[Path] = field(default_factory=list)
    forms: list[tuple] = field(default_factory=list)  # (spec, due date, what changed) per file
    instructions: Path | None = None
    zip: Path | None = None


@dataclass
class Distribution:
    period: Period
    folder: Path
    packages: list[UnitPackage]
    sent: SendReport | None = None  # with --send: who got their mail, who did not and why
    kept: list[tuple[Path, Path]] = field(default_factory=list)  # copies changed since written, moved aside

    @property
    def without_address(self) -> list[Unit]:
        return [p.unit for p in self.packages if not p.unit.email]


def distribute(root: Path, period: str, *, forms: list[str] | None = None, units: list[str] | None = None,
               out: Path | None = None, make_zip: bool = False, send: bool = False,
               now: dt.datetime | None = None) -> Distribution:
    """Write every unit's copies of the forms due for `period` (those whose due rule has the period's kind).
    `now` is when this happens: the day a version was first distributed is recorded from it (not without it)."""
    ws = Workspace.load(root)
    p = parse_period(period)
    if p is None:
        raise TuanjianError(Issue.make("not-a-period", field="--period", value=period))
    specs = [s for s in ws.current_specs() if forms is None or s.form_id in forms]
    unknown = [f for f in forms or [] if f not in {s.form_id for s in ws.current_specs()}]
    if unknown:
        raise TuanjianError([Issue.make("unknown-form", field="--form", value=f, known=ws.registry.form_ids)
                             for f in unknown])
    chosen = _units(ws, units)
    folder = Path(out) if out else ws.folder("outbox") / p.label
    packages: dict[str, UnitPackage] = {}
    cadences: dict[str, set[str]] = {}  # what each chosen form is filed by, for when nothing is for this period
    kept: list[tuple[Path, Path]] = []  # copies changed since they were written here, moved aside: (was, now)
    with Ledger(ws.root) as ledger:
        for spec in specs:
            for unit in chosen:
                rule = ws.roster.rule(unit.type, spec.form_id)
                if rule is None or rule.cadence not in PERIOD_KIND:
                    continue
                cadences.setdefault(spec.display_name, set()).add(rule.cadence)
                if PERIOD_KIND[rule.cadence] != p.kind or not _owes(unit, p):
                    continue
                due = ws.roster.due(unit, spec.form_id, p)
                data = build_template(spec, ws.roster, prefill=Prefill(unit, p.code, p.label, due),
                                      password=ws.settings.protection.password)
                name = safe_filename(f"{unit.name}_{p.label}_{spec.file_stem}_v{spec.version}") + ".xlsx"
                pkg = packages.setdefault(unit.id, UnitPackage(unit))
                pkg.files.append(_written(ledger, ws.root, folder / safe_filename(unit.name) / name, data, kept))
                pkg.forms.append((spec, due, _changed(ledger, unit, spec, ws.registry, p, due)))
        if not packages:  # (a month asked for a quarterly form, a year, units that start later)
            raise TuanjianError(Issue.make("nothing-to-distribute", period=p.label, detail="；".join(
                f"《{name}》{'、'.join(CADENCE_ZH[c] for c in sorted(cs))}报送" for name, cs in cadences.items())
                or "所选单位都不报送所选的表"))
        for pkg in packages.values():
            text = _instructions(ws, pkg, p)
            pkg.instructions = atomic_write(folder / safe_filename(pkg.unit.name) / "填报说明.txt",
                                            text.encode("utf-8-sig"))
            if make_zip:
                pkg.zip = atomic_write(folder / (safe_filename(f"{pkg.unit.name}_{p.label}") + ".zip"), _zip(pkg))
    result = Distribution(p, folder, list(packages.values()), kept=kept)
    if send:
        org = ws.settings.organisation
        outgoing = [Outgoing(pkg.unit, _subject(ws, pkg, p), _instructions_of(pkg).read_text(encoding="utf-8-sig"),
                             pkg.files) for pkg in result.packages]
        result.sent = send_all(ws.settings.mail, outgoing, f"{org.name}{org.department}")
    # what each unit has received, for "what changed" next time: with --send only the units whose mail went out
    delivered = {u.id for u in result.sent.sent} if result.sent else {pkg.unit.id for pkg in result.packages}
    with Ledger(ws.root) as ledger:
        for pkg in result.packages:
            if pkg.unit.id not in delivered:
                continue
            for spec, due, _ in pkg.forms:
                ledger.note_sent(pkg.unit.id, spec.form_id, spec.version, p.code, now.date() if now else None, due)
    return result


def _owes(unit: Unit, p: Period) -> bool:
    """Whether a unit owes this period: not one wholly before its 起报期 (a unit added mid-year), as status counts."""
    from .status import periods_between

    start = parse_period(unit.start) if unit.start else None
    return start is None or p in periods_between(p.kind, start, p.last_day)


def _subject(ws: Workspace, pkg: UnitPackage, p: Period) -> str:
    due = min(d for _, d, _ in pkg.forms)
    names = "、".join(f"《{spec.display_name}》" for spec, _, _ in pkg.forms)
    return f"【{ws.settings.organisation.department}】请于{due.month}月{due.day}日前报送{p.label}{names}"


def _units(ws: Workspace, wanted: list[str] | None) -> list[Unit]:
    if not wanted:
        return list(ws.roster.units)
    by = {u.id: u for u in ws.roster.units} | {u.name: u for u in ws.roster.units}
    missing = [w for w in wanted if w not in by]
    if missing:
        raise TuanjianError([Issue.make("unknown-unit", field="--units", value=w) for w in missing])
    return [by[w] for w in wanted]


def _written(ledger: Ledger, root: Path, path: Path, data: bytes, kept: list[tuple[Path, Path]]) -> Path:
    """A copy written over the last one distributed there — unless that one was changed since (filled in place by
    staff, say): it is moved aside first, under a name of its own, never overwritten."""
    import hashlib

    try:
        key = path.resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:  # (written outside the workspace: --out)
        key = path.resolve().as_posix()
    try:
        there = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    except OSError:
        there = None
    sha = hashlib.sha256(data).hexdigest()
    known = ledger.copy_sha(key)  # (None: written by a release that kept no hash: taken as written, as then)
    if there is not None and known is not None and there not in (sha, known):
        n = 1
        while (aside := path.with_name(f"{path.stem}（改动过的副本{'' if n == 1 else n}）{path.suffix}")).exists():
            n += 1
        try:
            path.rename(aside)
        except OSError as exc:  # (open in Excel, on Windows): said, and nothing overwritten
            from .xlsxio import os_reason

            raise TuanjianError(Issue.make("cannot-write", detail=str(path), reason=os_reason(exc))) from None
        kept.append((path, aside))
    atomic_write(path, data)
    ledger.copy_written(key, sha)
    return path


def _changed(ledger: Ledger, unit: Unit, spec, registry, p: Period, due: dt.date | None) -> str:
    """What changed since the version this unit last received (where a field moved is for the template to show),
    and the deadline, when the same period is sent again with another."""
    from .versions import spec_changes

    last = ledger.last_distribution(unit.id, spec.form_id)
    if last is None:
        return "首次下发本表。"
    version, period, was_due = last
    if version == spec.version:
        if period == p.code and was_due is not None and due is not None and was_due != due:
            return (f"与上次下发的第 {version} 版相同；截止日期由 {was_due.month}月{was_due.day}日"
                    f"改为 {due.month}月{due.day}日。")
        return f"与上次下发的第 {version} 版相同。"
    changes = [c.text() for c in spec_changes(registry, spec.form_id, version, spec.version).changes
               if c.kind != "moved"]
    return (f"模板由第 {version} 版更新为第 {spec.version} 版，请改用本次附上的新表，不要再用旧表。变化："
            + ("；".join(changes) or "字段没有变化") + "。")


def _instructions(ws: Workspace, pkg: UnitPackage, p: Period) -> str:
    org = ws.settings.organisation
    lines = [f"{pkg.unit.name}：", "", f"现将 {p.label} 需报送的报表发给您，请按以下要求填写："]
    for n, ((spec, due, changed), path) in enumerate(zip(pkg.forms, pkg.files), start=1):
        required = "、".join(f.label for f in spec.fields if f.required and not f.header)
        lines += [
            f"{n}. 《{spec.display_name}》（文件 {path.name}）",
            f"   截止日期：{due.year}年{due.month}月{due.day}日；{changed}",
            f"   必填：{required}。" if spec.kind == "form" else "   按行填写本单位各项任务的完成数、基数和进展情况。",
        ]
        if spec.instructions:
            lines.append(f"   {spec.instructions}")
    lines += [
        "",
        "填写说明：单位、报送期和截止日期已填好，不要改动；表格最上方的“自查”一行会提示还有几项没填、几项格式有误，变红的格子需要修改。",
        "请直接在本文件中填写后保存为 .xlsx，不要另存为 .xls，也不要改文件结构。",
        f"填好后请发送至：{org.report_mailbox or org.department}。",
        "",
        f"{org.name}{org.department}",
    ]
    return "\n".join(lines) + "\n"


def _instructions_of(pkg: UnitPackage) -> Path:
    assert pkg.instructions is not None  # distribute writes every package's 填报说明 before zipping or sending
    return pkg.instructions


def _zip(pkg: UnitPackage) -> bytes:
    """One zip per unit; Python sets the UTF-8 flag on Chinese names, which Windows Explorer then shows correctly."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path in pkg.files + [_instructions_of(pkg)]:
            info = zipfile.ZipInfo(path.name, BUILD_DATE.timetuple()[:6])  # fixed, like every output: same bytes
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, path.read_bytes())
    return buf.getvalue()
