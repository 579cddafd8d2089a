"""tuanjian-xlsx: 活力团建报表 — templates from form specs, workspace configuration, and (later) intake and merge."""

__version__ = "0.1.0"

# What the package offers, imported when first asked for (PEP 562): `tuanjian merge` or `tuanjian --help` need not
# load the template builder, pydantic's models and XlsxWriter before doing anything.
_EXPORTS = {
    "Prefill": "build", "build_template": "build", "build_templates": "build",
    "ConfigError": "issues", "Issue": "issues", "Report": "issues", "TuanjianError": "issues",
    "Period": "periods", "parse_period": "periods",
    "Plan": "plan", "Workspace": "plan",
    "Roster": "roster",
    "Settings": "settings",
    "FormSpec": "specs", "SpecRegistry": "specs", "TableSpec": "specs", "load_spec": "specs",
    "build_workspace_templates": "workspace", "init_workspace": "workspace", "list_templates": "workspace",
}


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


__all__ = sorted(_EXPORTS)
