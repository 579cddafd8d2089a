"""`tuanjian init`: a new workspace folder with commented settings, the roster workbook and the folders."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from .build import build_templates
from .issues import Issue, TuanjianError
from .mailtext import write_defaults
from .plan import Plan, Workspace
from .roster_book import write_roster_book
from .settings import DATA, FOLDER_KEYS, SETTINGS_FILE
from .specs import SpecRegistry
from .xlsxio import atomic_write


def init_workspace(root: Path, registry: SpecRegistry | None = None) -> Workspace:
    """Write tuanjian.toml, 名单与目标.xlsx (the plan's defaults), the folders and the mail templates; never
    overwrite a file."""
    root = Path(root)
    builtin = Plan.builtin(registry)
    settings_path = root / SETTINGS_FILE
    roster_path = root / builtin.settings.roster.file
    existing = [p for p in (settings_path, roster_path) if p.exists()]
    if existing:
        raise TuanjianError([Issue.make("workspace-exists", file=p.name) for p in existing])
    root.mkdir(parents=True, exist_ok=True)
    atomic_write(settings_path, (DATA / SETTINGS_FILE).read_bytes())
    atomic_write(roster_path, write_roster_book(builtin.roster, builtin.registry))
    ws = Workspace.of(builtin, root)
    for key in FOLDER_KEYS:
        ws.folder(key).mkdir(exist_ok=True)
    write_defaults(ws.folder("mail_templates"))  # the mails' words, for staff to edit
    return ws


def build_workspace_templates(root: Path, out_dir: Path | None = None) -> list[Path]:
    """Load the workspace at `root` and build the current version of each form in use."""
    return build_templates(Workspace.load(root), out_dir)


def list_templates(registry: SpecRegistry | None = None) -> list[dict]:
    """Every spec version: form, version, title, fingerprint, number of fields."""
    registry = registry or SpecRegistry()
    rows = []
    for (form_id, version), spec in sorted(registry.specs.items(), key=lambda kv: (registry.form_ids.index(kv[0][0]), kv[0][1])):
        n = len(spec.fields) + (len([c for c in spec.columns if c.role == "input"]) if spec.kind == "table" else 0)
        rows.append({"form_id": form_id, "version": version, "title": spec.display_name,
                     "fingerprint": spec.fingerprint, "fields": n})
    return rows


@dataclass
class ValidationOutcome:
    """What `tuanjian validate` reports: one result per file, and the 退回件 written."""

    results: list
    returns: list
    builtin: bool = False  # no workspace: checked against the plan's own roster and targets

    @property
    def all_valid(self) -> bool:
        return all(r.valid for r in self.results)

    def to_dict(self) -> dict:
        errors = [i.to_dict() for r in self.results for i in r.issues if i.severity == "error"]
        return {**({"error": errors[0]} if errors else {}), "files": [r.to_dict() for r in self.results],
                "builtin_plan": self.builtin}

    def errors(self) -> list[str]:
        return []

    @property
    def exit_code(self) -> int:
        return 0 if self.all_valid else 1

    table_forms: frozenset = frozenset()  # forms whose records are rows of one table (counted as 行, not 份)

    def _unit_of(self, r) -> str:
        return "行" if r.form_id in self.table_forms else "份"

    def lines(self) -> list[str]:
        """The Chinese report a person reads: grouped by file, errors then warnings, then a summary line."""
        out = ["未找到工作区（tuanjian.toml），按内置的默认名单与目标（实施方案）校验。"] if self.builtin else []
        for r in self.results:
            head = "✓ 通过" if r.valid else "✗ 有错误"
            what = "，".join(x for x in (r.unit, r.period, r.form_id and f"{r.form_id} v{r.version}") if x)
            out.append(f"{head}  {r.path}" + (f"（{what}，{len(r.records)} {self._unit_of(r)}）" if what else ""))
            for issue in sorted(r.issues, key=lambda i: i.severity != "error"):
                place = " · ".join(x for x in (issue.sheet, issue.cell) if x)
                label = "错误" if issue.severity == "error" else "提醒"
                out.append(f"    {label}  {place + '  ' if place else ''}{issue.message}")
        bad = sum(not r.valid for r in self.results)
        out.append(f"共 {len(self.results)} 个文件：通过 {len(self.results) - bad} 个，有错误 {bad} 个。")
        for piece in self.returns:
            out.append(f"已生成退回件：{piece.workbook or piece.message}")
        return out


def validate_submissions(paths: list[Path], root: Path | None, return_dir: Path | None = None,
                         today: dt.date | None = None) -> ValidationOutcome:
    """Validate files, zips, saved mails and folders against the workspace at `root` (None: the current folder's
    if it is one, else the built-in default plan, so a unit can check its file before sending); 退回件 for files
    with errors."""
    from .checking import validate_many
    from .intake import expand
    from .returns import write_returns

    builtin = root is None and not (Path(".") / SETTINGS_FILE).exists()
    ws = Plan.builtin() if builtin else Workspace.load(Path(root or "."))
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise TuanjianError([Issue.make("file-missing", file=Path(p).name, detail=str(p)) for p in missing])
    results = validate_many(ws, list(expand([Path(p) for p in paths])), today)
    pieces = write_returns(results, ws, return_dir) if return_dir else []
    tables = frozenset(s.form_id for s in ws.registry.latest() if s.kind == "table")
    return ValidationOutcome(results, pieces, builtin, tables)
