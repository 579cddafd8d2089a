"""Settings: the models of tuanjian.toml (organisation, folders, forms in use, protection, mail, reporting).

The built-in defaults are a data file, tuanjian_xlsx/data/tuanjian.toml, which `tuanjian init` copies.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .issues import ConfigError, Issue
from .periods import parse_period
from .specs import SpecRegistry
from .tomlfile import find_line, load_toml, pydantic_issues

DATA = Path(__file__).resolve().parent / "data"  # the plan's own defaults: tuanjian.toml, default_plan.toml
SETTINGS_FILE = "tuanjian.toml"
FOLDER_KEYS = ("templates", "outbox", "inbox", "returns", "master")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Organisation(_Section):
    name: Annotated[str, Field(min_length=1)]
    department: Annotated[str, Field(min_length=1)]
    report_mailbox: str = ""
    publicity_mailbox: str = ""


class Folders(_Section):
    templates: str = "模板"
    outbox: str = "下发"
    inbox: str = "收件箱"
    returns: str = "退回"
    master: str = "汇总"


class RosterFile(_Section):
    file: str = "名单与目标.xlsx"


class FormUse(_Section):
    enabled: bool = True
    current_version: Annotated[int, Field(ge=1)] = 1
    accepted_versions: list[Annotated[int, Field(ge=1)]] = [1]
    accepted_until: dict[int, dt.date] = {}  # an older version is received until this day (inclusive)


class Protection(_Section):
    password: str = ""


class Mail(_Section):
    """Sending (SMTP); the password never sits in this file, only in the environment variable named here."""

    smtp_host: str = ""
    smtp_port: Annotated[int, Field(ge=1, le=65535)] = 465
    smtp_security: Literal["ssl", "starttls", "none"] = "ssl"
    smtp_user: str = ""
    password_env: str = "TUANJIAN_SMTP_PASSWORD"
    sender: str = ""  # From address; empty = smtp_user
    imap_host: str = ""
    imap_port: Annotated[int, Field(ge=1, le=65535)] = 993
    imap_security: Literal["ssl", "starttls", "none"] = "ssl"
    imap_user: str = ""
    imap_password_env: str = "TUANJIAN_IMAP_PASSWORD"
    imap_folder: str = "INBOX"


class Reporting(_Section):
    start: str = ""  # first period counted as due, e.g. 2026-01; empty = January of the as-of year

    @field_validator("start")
    @classmethod
    def _period(cls, v: str) -> str:
        if v:
            period = parse_period(v)
            if period is None or period.kind != "month":
                raise ValueError("应为月份，如 2026-01")
        return v


class Settings(_Section):
    organisation: Organisation
    folders: Folders = Folders()
    roster: RosterFile = RosterFile()
    forms: dict[str, FormUse]
    protection: Protection = Protection()
    reporting: Reporting = Reporting()
    mail: Mail = Mail()


def load_settings(path: Path, registry: SpecRegistry) -> Settings:
    """Read and check tuanjian.toml; every problem is reported at once, with key and line."""
    data, lines = load_toml(path)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(pydantic_issues(exc, file=path.name, lines=lines, strip=())) from None
    issues = list(_check_forms(settings, registry, path.name, lines))
    if any(i.severity == "error" for i in issues):
        raise ConfigError(issues)
    return settings


def _check_forms(settings: Settings, registry: SpecRegistry, file: str, lines) -> Iterator[Issue]:
    known = registry.form_ids
    for form_id, use in settings.forms.items():
        loc = ("forms", form_id)
        if form_id not in known:
            yield Issue.make("unknown-form", file=file, line=find_line(loc, lines), field=f"forms.{form_id}",
                             value=form_id, known=known)
            continue
        versions = registry.versions(form_id)
        for key, vs in (("current_version", [use.current_version]), ("accepted_versions", use.accepted_versions)):
            for v in vs:
                if v not in versions:
                    yield Issue.make("unknown-version", file=file, line=find_line(loc + (key,), lines),
                                     field=f"forms.{form_id}.{key}", form=form_id, version=v)


def default_settings(registry: SpecRegistry) -> Settings:
    """The plan's own settings (tuanjian_xlsx/data/tuanjian.toml)."""
    return load_settings(DATA / SETTINGS_FILE, registry)
