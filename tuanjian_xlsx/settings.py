"""Settings: the models of tuanjian.toml (organisation, folders, forms in use, protection, mail, reporting).

The built-in defaults are a data file, tuanjian_xlsx/data/tuanjian.toml, which `tuanjian init` copies.
"""

from __future__ import annotations

import datetime as dt
import re
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
FOLDER_KEYS = ("templates", "outbox", "inbox", "returns", "master", "mail_templates")


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
    mail_templates: str = "邮件模板"  # 回执.txt, 退回.txt, 多份文件回复.txt, 催报.txt, 提前提醒.txt (mailtext.py)


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
    timezone: str = "+08:00"  # the committee's clock (clock.py): arrivals and due dates in Beijing time; 本机 = the
    #                            computer's own zone

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        from .clock import parse_zone

        if parse_zone(v) is False:
            raise ValueError("应为时区，如 +08:00（北京时间），或“本机”（用这台电脑的时区）")
        return v

    @field_validator("start")
    @classmethod
    def _period(cls, v: str) -> str:
        if v:
            period = parse_period(v)
            if period is None or period.kind != "month":
                raise ValueError("应为月份，如 2026-01")
        return v


_INTERVAL = re.compile(r"\s*(\d{1,6})\s*(s|秒|m|min|分|分钟|h|小时)?\s*", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "秒": 1, "m": 60, "min": 60, "分": 60, "分钟": 60, "h": 3600, "小时": 3600}
MIN_INTERVAL, MAX_INTERVAL = dt.timedelta(seconds=10), dt.timedelta(days=1)


def parse_interval(text: str) -> dt.timedelta | None:
    """"10m", "1h", "30s", "10分钟" (a bare number is minutes), between 10 seconds and a day; None otherwise."""
    m = _INTERVAL.fullmatch(str(text))
    if not m:
        return None
    span = dt.timedelta(seconds=int(m.group(1)) * _UNIT_SECONDS[(m.group(2) or "m").lower()])
    return span if MIN_INTERVAL <= span <= MAX_INTERVAL else None


class Watch(_Section):
    """`tuanjian watch` and the mail it sends by itself: how often, when reminders go, which files get a reply."""

    every: str = "10m"  # a cycle (fetch, merge, replies, reminders) this often
    reminders: bool = True  # reminders go out by themselves (催报 after the due date, 提前提醒 before it)
    remind_hour: Annotated[int, Field(ge=0, le=23)] = 9  # not before this hour of the day
    before_days: Annotated[int, Field(ge=0, le=60)] = 3  # 提前提醒 this many days before the due date; 0 = none
    remind_every_days: Annotated[int, Field(ge=1, le=366)] = 7  # the same form and period reminded again after this
    reply_within_days: Annotated[int, Field(ge=1, le=366)] = 3  # a file received longer ago gets no reply any more
    reply_limit_per_day: Annotated[int, Field(ge=1, le=1000)] = 20  # replies to one address a day; more wait
    reply_limit_total: Annotated[int, Field(ge=1, le=100000)] = 200  # replies to all addresses a day; more wait

    @field_validator("every")
    @classmethod
    def _every(cls, v: str) -> str:
        if parse_interval(v) is None:
            raise ValueError("应为时间间隔，如 10m（10 分钟）、1h（1 小时）、30s（30 秒），在 10 秒到 1 天之间")
        return v

    @property
    def interval(self) -> dt.timedelta:
        every = parse_interval(self.every)
        assert every is not None  # checked when read
        return every


class Settings(_Section):
    organisation: Organisation
    folders: Folders = Folders()
    roster: RosterFile = RosterFile()
    forms: dict[str, FormUse]
    protection: Protection = Protection()
    reporting: Reporting = Reporting()
    mail: Mail = Mail()
    watch: Watch = Watch()


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
        if use.current_version not in use.accepted_versions:  # the copies just sent out would all come back refused
            want = sorted({*use.accepted_versions, use.current_version})
            yield Issue.make("current-not-accepted", file=file, line=find_line(loc + ("accepted_versions",), lines),
                             field=f"forms.{form_id}.accepted_versions", version=use.current_version,
                             suggest=", ".join(map(str, want)))
        for v in use.accepted_until:
            if v == use.current_version or v not in use.accepted_versions:
                yield Issue.make("accepted-until-unused", file=file, line=find_line(loc + ("accepted_until",), lines),
                                 field=f"forms.{form_id}.accepted_until", version=v)


def default_settings(registry: SpecRegistry) -> Settings:
    """The plan's own settings (tuanjian_xlsx/data/tuanjian.toml)."""
    return load_settings(DATA / SETTINGS_FILE, registry)
