"""The committee's clock: every time the product records or compares (a file's arrival, a mail's date, a due date's
last minute, "9 点后发催报") is wall-clock time in one zone, the committee's — Beijing time unless tuanjian.toml's
[reporting] timezone says otherwise — whatever zone the computer running it is set to (a Linux server is often on
UTC: a mail sent at 07:00 on the day after the due date, Beijing time, would otherwise be taken as sent the evening
before). Times are kept naive, in that zone.

The zone is the process's (as a computer's own zone is): `use` sets it from a workspace's settings, once per
command, before anything is read; the library's functions below read it."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Literal

BEIJING = dt.timezone(dt.timedelta(hours=8), "北京时间")  # China keeps no summer time: a fixed offset is exact
MACHINE = "本机"  # the setting for the computer's own zone
DEFAULT = "+08:00"

_zone: dt.tzinfo | None = BEIJING  # None: the computer's own zone
_OFFSET = re.compile(r"(?:UTC|GMT)?\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?", re.IGNORECASE)


def parse_zone(text: str) -> dt.tzinfo | None | Literal[False]:
    """A zone as tuanjian.toml writes it: "+08:00", "UTC+8", "-05:30"; "本机" (or "local") for the computer's own
    zone (None). False when it is none of these."""
    text = str(text).strip()
    if text in (MACHINE, "local", "本地"):
        return None
    if text in ("北京时间", "Asia/Shanghai", "Asia/Chongqing", "Asia/Harbin", "PRC", "CST", "Beijing"):
        return BEIJING
    if text.upper() in ("UTC", "GMT", "Z"):
        return dt.timezone.utc
    m = _OFFSET.fullmatch(text)
    if not m:
        return False
    hours, minutes = int(m.group(2)), int(m.group(3) or 0)
    if hours > 14 or minutes >= 60:
        return False
    offset = dt.timedelta(hours=hours, minutes=minutes) * (-1 if m.group(1) == "-" else 1)
    return BEIJING if offset == dt.timedelta(hours=8) else dt.timezone(offset)


def set_zone(zone: dt.tzinfo | None) -> None:
    global _zone
    _zone = zone


def use(root: Path | None) -> None:
    """The zone a workspace's tuanjian.toml names (default: Beijing time), read without loading the workspace (a
    run that finds nothing new loads nothing); a setting that cannot be read leaves the default, and loading the
    workspace says what is wrong with it."""
    zone: dt.tzinfo | None | Literal[False] = BEIJING
    if root is not None:
        try:
            from .tomlfile import load_toml  # (its guards: a crafted file costs no time here either)

            reporting = load_toml(Path(root) / "tuanjian.toml")[0].get("reporting", {})
            zone = parse_zone(reporting.get("timezone", DEFAULT) if isinstance(reporting, dict) else DEFAULT)
        except Exception:  # noqa: BLE001 — no workspace, unreadable or odd settings: the default, said elsewhere
            zone = BEIJING
    set_zone(BEIJING if zone is False else zone)


def now() -> dt.datetime:
    """The committee's wall-clock time now, to the second."""
    if _zone is None:
        return dt.datetime.now().replace(microsecond=0)
    return dt.datetime.now(_zone).replace(tzinfo=None, microsecond=0)


def local(value: dt.datetime) -> dt.datetime:
    """A time with a zone (a mail's Date, a server's arrival) as the committee's wall-clock time; a naive one as it
    is. May raise OverflowError, ValueError or OSError at the ends of the calendar."""
    if value.tzinfo is None:
        return value
    return value.astimezone(_zone).replace(tzinfo=None) if _zone is not None else \
        value.astimezone().replace(tzinfo=None)


def from_timestamp(seconds: float) -> dt.datetime:
    """A file's modification time as the committee's wall-clock time, to the second."""
    if _zone is None:
        return dt.datetime.fromtimestamp(seconds).replace(microsecond=0)
    return dt.datetime.fromtimestamp(seconds, _zone).replace(tzinfo=None, microsecond=0)
