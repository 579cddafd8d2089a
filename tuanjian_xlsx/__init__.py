"""tuanjian-xlsx: 活力团建报表 — templates from form specs, workspace configuration, and (later) intake and merge."""

__version__ = "0.1.0"

from .build import Prefill, build_template, build_templates
from .issues import ConfigError, Issue, Report, TuanjianError
from .periods import Period, parse_period
from .plan import Plan, Workspace
from .roster import Roster
from .settings import Settings
from .specs import FormSpec, SpecRegistry, TableSpec, load_spec
from .workspace import build_workspace_templates, init_workspace, list_templates

__all__ = [
    "ConfigError",
    "FormSpec",
    "Issue",
    "Period",
    "Plan",
    "Prefill",
    "Report",
    "Roster",
    "Settings",
    "SpecRegistry",
    "TableSpec",
    "TuanjianError",
    "Workspace",
    "build_template",
    "build_templates",
    "build_workspace_templates",
    "init_workspace",
    "list_templates",
    "load_spec",
    "parse_period",
]
