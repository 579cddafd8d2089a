"""Template versions: what changed between two, and carrying a filled older workbook onto the current one."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from .build import Filled, Prefill, build_template
from .checking import validate_many
from .intake import Submission
from .plan import Workspace
from .filenames import safe_filename
from .issues import Issue, TuanjianError
from .periods import parse_period
from .specs import TYPE_ZH, SpecRegistry
from .xlsxio import atomic_write


ChangeKind = Literal["added", "renamed", "type", "required", "choices", "moved", "removed"]


@dataclass(frozen=True)
class Change:
    """One change to a field between two versions: `kind` says which, `old` and `new` what it was and is."""

    kind: ChangeKind
    field: str  # the field's id in the new version (in the old one, if removed)
    label: str  # its label in the new version (in the old one, if removed)
    old: Any = None
    new: Any = None

    def text(self) -> str:
        """The change in Chinese."""
        if self.kind == "added":
            need = "必填" if self.new["required"] else "选填"
            return f"新增：“{self.label}”（{TYPE_ZH[self.new['type']]}，{need}，位置 {self.new['cell']}）"
        if self.kind == "renamed":
            return f"改名：“{self.old}” → “{self.new}”"
        if self.kind == "type":
            return f"“{self.label}”类型：{TYPE_ZH[self.old]} → {TYPE_ZH[self.new]}"
        if self.kind == "required":
            return f"“{self.label}”改为{'必填' if self.new else '选填'}"
        if self.kind == "choices":
            return f"“{self.label}”可选项：{'、'.join(self.old) or '（无）'} → {'、'.join(self.new) or '（无）'}"
        if self.kind == "moved":
            return f"“{self.label}”位置：{self.old} → {self.new}"
        return f"删除：“{self.label}”"


@dataclass
class SpecDiff:
    """What changed from version `old` to `new` of a form, field by field."""

    form_id: str
    form: str  # the form's display name
    old: int
    new: int
    changes: list[Change]
    upgradable: bool  # the new version says how a filled old one becomes it (tuanjian upgrade)

    def lines(self) -> list[str]:
        """The change in Chinese lines a person can read."""
        out = [f"《{self.form}》第 {self.old} 版 → 第 {self.new} 版："]
        out += [f"  {c.text()}" for c in self.changes] or ["  字段没有变化。"]
        if self.upgradable:
            out.append(f"  第 {self.old} 版已填的表可用 tuanjian upgrade 转为第 {self.new} 版：原有内容照搬，新增项留空待填。")
        return out

    def to_dict(self) -> dict:
        return {"form_id": self.form_id, "old": self.old, "new": self.new, "upgradable": self.upgradable,
                "changes": [asdict(c) for c in self.changes]}


def spec_changes(registry: SpecRegistry, form_id: str, old: int, new: int) -> SpecDiff:
    """The change from version `old` to `new` of a form, as records."""
    missing = [v for v in (old, new) if (form_id, v) not in registry.specs]
    if missing:
        raise TuanjianError([Issue.make("unknown-version", form=form_id, version=v) for v in missing])
    a, b = registry.get(form_id, old), registry.get(form_id, new)
    upgradable = bool(b.migration and b.migration.from_version == old)
    renamed = dict(b.migration.renamed) if b.migration and upgradable else {}
    old_fields = {f.id: f for f in a.fields}
    new_fields = {f.id: f for f in b.fields}
    changes = []
    for fid, f in new_fields.items():
        was = old_fields.get(fid) or old_fields.get(next((o for o, n in renamed.items() if n == fid), ""))
        if was is None:
            changes.append(Change("added", fid, f.label, None,
                                  {"type": f.type, "required": f.required, "cell": f.input_cell}))
            continue
        if was.id != fid or was.label != f.label:
            changes.append(Change("renamed", fid, f.label, was.label, f.label))
        checks: list[tuple[ChangeKind, Any, Any]] = [
            ("type", was.type, f.type), ("required", was.required, f.required), ("choices", was.choices, f.choices),
            ("moved", was.input_cell, f.input_cell)]
        for kind, old_v, new_v in checks:
            if old_v != new_v:
                changes.append(Change(kind, fid, f.label, old_v, new_v))
    changes += [Change("removed", fid, f.label) for fid, f in old_fields.items()
                if fid not in new_fields and fid not in renamed]
    return SpecDiff(form_id, b.display_name, old, new, changes, upgradable)


def diff_specs(registry: SpecRegistry, form_id: str, old: int, new: int) -> list[str]:
    """The change from version `old` to `new` of a form, in Chinese lines (rendered from `spec_changes`)."""
    return spec_changes(registry, form_id, old, new).lines()


@dataclass
class Upgraded:
    source: Path
    target: Path | None
    issues: list[Issue]


def upgrade(root: Path, files: list[Path], out: Path | None = None) -> list[Upgraded]:
    """Each filled older-version workbook rewritten onto the current template for the same unit and period:
    values carried over, new fields blank and marked. The originals are never touched. Each file is read in a
    worker process of its own (checking.validate_many), as every command reads what others sent: a file that
    kills its reader is refused alone ("reader-crashed") and the others are upgraded."""
    ws = Workspace.load(root)
    done = []
    results = validate_many(ws, [Submission(Path(p), str(p), source=Path(p)) for p in files])
    for path, result in zip(files, results):
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
        due = ws.roster.due(unit, current.form_id, period)
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
