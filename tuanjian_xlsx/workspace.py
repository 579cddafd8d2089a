"""`tuanjian init`: a new workspace folder with commented settings, the roster workbook and the folders."""

from __future__ import annotations

from pathlib import Path

from .build import build_templates
from .config import DATA, FOLDER_KEYS, SETTINGS_FILE, Workspace
from .issues import Issue, TuanjianError
from .roster_book import write_roster_book
from .specs import SpecRegistry
from .xlsxio import atomic_write


def init_workspace(root: Path, registry: SpecRegistry | None = None) -> Workspace:
    """Write tuanjian.toml, 名单与目标.xlsx (the plan's defaults) and the folders; never overwrite a file."""
    root = Path(root)
    builtin = Workspace.builtin(registry)
    settings_path = root / SETTINGS_FILE
    roster_path = root / builtin.settings.roster.file
    existing = [p for p in (settings_path, roster_path) if p.exists()]
    if existing:
        raise TuanjianError([Issue.make("workspace-exists", file=p.name) for p in existing])
    root.mkdir(parents=True, exist_ok=True)
    atomic_write(settings_path, (DATA / SETTINGS_FILE).read_bytes())
    atomic_write(roster_path, write_roster_book(builtin.roster, builtin.registry))
    ws = Workspace(root, builtin.settings, builtin.roster, builtin.registry)
    for key in FOLDER_KEYS:
        ws.folder(key).mkdir(exist_ok=True)
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
