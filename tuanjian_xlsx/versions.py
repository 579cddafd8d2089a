"""Template versions: what changed between two, and carrying a filled older workbook onto the current one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .build import Filled, Prefill, build_template
from .config import Workspace
from .issues import Issue, TuanjianError
from .periods import parse_period
from .returns import safe_filename
from .specs import TYPE_ZH, SpecRegistry
from .validate import validate_file
from .xlsxio import atomic_write


def diff_specs(registry: SpecRegistry, form_id: str, old: int, new: int) -> list[str]:
    """The change from version `old` to `new` of a form, in Chinese lines a person can read."""
    missing = [v for v in (old, new) if (form_id, v) not in registry.specs]
    if missing:
        raise TuanjianError([Issue.make("unknown-version", form=form_id, version=v) for v in missing])
    a, b = registry.get(form_id, old), registry.get(form_id, new)
    renamed = dict(b.migration.renamed) if b.migration and b.migration.from_version == old else {}
    lines = [f"《{b.display_name}》第 {old} 版 → 第 {new} 版："]
    old_fields = {f.id: f for f in a.fields}
    new_fields = {f.id: f for f in b.fields}
    for fid, f in new_fields.items():
        was = old_fields.get(fid) or old_fields.get(next((o for o, n in renamed.items() if n == fid), ""))
        if was is None:
            need = "必填" if f.required else "选填"
            lines.append(f"  新增：“{f.label}”（{TYPE_ZH[f.type]}，{need}，位置 {f.input_cell}）")
            continue
        if was.id != fid or was.label != f.label:
            lines.append(f"  改名：“{was.label}” → “{f.label}”")
        if was.type != f.type:
            lines.append(f"  “{f.label}”类型：{TYPE_ZH[was.type]} → {TYPE_ZH[f.type]}")
        if was.required != f.required:
            lines.append(f"  “{f.label}”改为{'必填' if f.required else '选填'}")
        if was.choices != f.choices:
            lines.append(f"  “{f.label}”可选项：{'、'.join(was.choices) or '（无）'} → {'、'.join(f.choices) or '（无）'}")
        if was.input_cell != f.input_cell:
            lines.append(f"  “{f.label}”位置：{was.input_cell} → {f.input_cell}")
    gone = [f for fid, f in old_fields.items() if fid not in new_fields and fid not in renamed]
    for f in gone:
        lines.append(f"  删除：“{f.label}”")
    if len(lines) == 1:
        lines.append("  字段没有变化。")
    if b.migration and b.migration.from_version == old:
        lines.append(f"  第 {old} 版已填的表可用 tuanjian upgrade 转为第 {new} 版：原有内容照搬，新增项留空待填。")
    return lines


@dataclass
class Upgraded:
    source: Path
    target: Path | None
    issues: list[Issue]


def upgrade(root: Path, files: list[Path], out: Path | None = None) -> list[Upgraded]:
    """Each filled older-version workbook rewritten onto the current template for the same unit and period:
    values carried over, new fields blank and marked. The originals are never touched."""
    ws = Workspace.load(root)
    done = []
    for path in files:
        result = validate_file(path, ws)
        if result.form_id is None or result.version is None or not result.records:
            errors = [i for i in result.issues if i.severity == "error"] or [
                Issue.make("not-a-form", file=path.name, known=ws.registry.form_ids)]
            done.append(Upgraded(path, None, errors))
            continue
        current = ws.spec(result.form_id)
        old = ws.registry.get(result.form_id, result.version)
        if current.version == old.version:
            done.append(Upgraded(path, None, [Issue.make("already-current", file=path.name, version=current.version)]))
            continue
        chain = current.migration if current.migration and current.migration.from_version == old.version else None
        renamed = dict(chain.renamed) if chain else {}
        added = dict(chain.added) if chain else {f.id: "" for f in current.fields if f.id not in {x.id for x in old.fields}}
        filled = []
        for rec in result.records:
            values = {renamed.get(k, k): (rec.raw.get(k) if rec.raw.get(k) not in ("", None) else None)
                      for k in rec.values}
            values.update({k: (v or None) for k, v in added.items()})
            marks = {k: f"第 {current.version} 版新增的项目，请填写" for k in added}
            filled.append(Filled(values, marks))
        unit = ws.roster.unit_by_name(result.unit) if result.unit else None
        period = parse_period(result.period) if result.period else None
        rule = ws.roster.rule(unit.type, current.form_id) if unit else None
        due = period.due(rule.day, rule.month_offset) if rule and period else None
        prefill = Prefill(unit, period.code, period.label, due) if unit and period else Prefill()
        data = build_template(current, ws.roster, prefill=prefill, password=ws.settings.protection.password,
                              filled=filled)
        folder = Path(out) if out else path.parent
        stem = safe_filename(f"{path.stem}_升级为v{current.version}")
        target, n = folder / f"{stem}.xlsx", 2
        while target.exists():  # an earlier upgrade may already be filled in: never write over it
            target, n = folder / f"{stem}_{n}.xlsx", n + 1
        done.append(Upgraded(path, atomic_write(target, data), []))
    return done
