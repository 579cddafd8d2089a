"""The plan and the workspace that keeps it.

A `Plan` is what the reporting runs on: settings, the roster (units, due rules, targets) and the form specs.
`Plan.builtin()` is the plan's own default, used where there is no workspace (a unit checking its file before
sending it). A `Workspace` is a plan kept in a folder: tuanjian.toml, 名单与目标.xlsx, the working folders and the
ledger; its root is always a folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .assess_rules import Rules, default_rules
from .issues import ConfigError, Issue, TuanjianError
from .ledger import Ledger
from .roster import Roster, default_roster
from .roster_book import read_roster_book, read_rules
from .settings import SETTINGS_FILE, Settings, default_settings, load_settings
from .specs import SpecRegistry


def assessment_name(year: int) -> str:
    """The year-end assessment's file, beside the master: 年度考核表（2026年）.xlsx."""
    return f"年度考核表（{year}年）.xlsx"


@dataclass
class Plan:
    """Settings + roster + specs, without a folder."""

    settings: Settings
    roster: Roster
    registry: SpecRegistry

    @classmethod
    def builtin(cls, registry: SpecRegistry | None = None) -> Plan:
        """The plan's own settings, roster and targets (tuanjian_xlsx/data/)."""
        registry = registry or SpecRegistry()
        return Plan(default_settings(registry), default_roster(registry), registry)

    def current_specs(self):
        return [self.registry.get(f, u.current_version) for f, u in self.settings.forms.items() if u.enabled]

    def spec(self, form_id: str):
        """The version of a form this plan distributes now."""
        use = self.settings.forms.get(form_id)
        return self.registry.get(form_id, use.current_version if use else None)

    def distributed_on(self, form_id: str, version: int) -> str | None:
        """The day a version of a form was first distributed; a plan without a workspace has distributed nothing."""
        return None

    def assessment_rules(self) -> Rules:
        """The year-end assessment's rules (考核细则): the plan's own."""
        return default_rules(self.registry)


@dataclass
class Workspace(Plan):
    """A plan kept in the folder `root`."""

    root: Path

    @classmethod
    def of(cls, plan: Plan, root: Path) -> Workspace:
        """`plan` kept in the folder `root`."""
        return cls(plan.settings, plan.roster, plan.registry, Path(root))

    @classmethod
    def load(cls, root: Path, registry: SpecRegistry | None = None) -> Workspace:
        """Load a workspace folder; all configuration problems come together in one ConfigError."""
        registry = registry or SpecRegistry()
        root = Path(root)
        settings_path = root / SETTINGS_FILE
        if not settings_path.exists():
            raise ConfigError(Issue.make("file-missing", file=SETTINGS_FILE,
                                         detail=f"{settings_path}（这是工作区文件夹吗？可先运行 tuanjian init）"))
        settings = load_settings(settings_path, registry)
        roster = read_roster_book(root / settings.roster.file, registry)
        return cls(settings, roster, registry, root)

    def folder(self, key: str) -> Path:
        return self.root / getattr(self.settings.folders, key)

    def config_files(self) -> list[Path]:
        """What this workspace's configuration is read from: its tuanjian.toml and 名单与目标.xlsx, the plan's own
        defaults, and the folders of form specs — each folder for its listing (a form or a version added) and each
        spec file in them."""
        from .settings import DATA
        from .specs import is_spec_file

        forms = sorted(p for base in self.registry.bases for p in Path(base).iterdir() if p.is_dir())
        specs = [p for f in forms for p in sorted(f.iterdir()) if is_spec_file(p)]
        return [self.root / SETTINGS_FILE, self.root / self.settings.roster.file, *sorted(DATA.iterdir()),
                *self.registry.bases, *forms, *specs]

    def assessment_rules(self) -> Rules:
        """考核细则 of the workspace's 名单与目标.xlsx (read only when asked: its mistakes stop nothing else); the
        plan's own, marked `builtin`, where the workbook has no such sheet."""
        return read_rules(self.root / self.settings.roster.file, self.registry, self.roster)

    def assessment_path(self, year: int) -> Path:
        """Where a year's assessment is written by default: beside the master."""
        return self.folder("master") / assessment_name(year)

    def distributed_on(self, form_id: str, version: int) -> str | None:
        """The day a version of a form was first distributed from this workspace, if the ledger knows."""
        try:
            with Ledger(self.root, readonly=True) as ledger:
                return ledger.first_distributed(form_id, version)
        except TuanjianError:  # a ledger that cannot be read only takes the date out of a message
            return None
