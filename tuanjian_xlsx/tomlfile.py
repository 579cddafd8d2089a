"""TOML reading that remembers where each key stands, and pydantic errors turned into located Chinese issues."""

from __future__ import annotations

import codecs
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from .issues import ConfigError, Issue

Loc = tuple  # ('forms', 'visit_report', 'accepted_versions') or ('fields', 3, 'label')

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*=""")
_PART = re.compile(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""")
_TOML_POS = re.compile(r"at line (\d+), column (\d+)")
# tomllib takes time quadratic in the number of parts of a dotted key (100,000 parts: minutes), and no settings
# key has more than a handful: a key this deep is refused before parsing.
_DEEP_KEY = re.compile(r"""(?:(?:[A-Za-z0-9_-]+|"[^"\n]*"|'[^'\n]*')[ \t]*\.[ \t]*){100}""")
_TOO_DEEP = "嵌套层数过多（方括号或花括号套得太深，或键名中的点太多）"


def _split_key(text: str) -> tuple:
    parts = []
    for p in _PART.findall(text):
        if p[0] in "\"'":
            parts.append(p[1:-1])
        else:
            parts.append(int(p) if p.isascii() and p.isdigit() else p)
    return tuple(parts)


def key_lines(text: str) -> dict[Loc, int]:
    """Map each key path of a TOML text to its 1-based line (tables to their header line)."""
    lines: dict[Loc, int] = {}
    counts: dict[Loc, int] = {}
    table: Loc = ()
    in_multiline = False
    for n, line in enumerate(text.splitlines(), start=1):
        if in_multiline:
            if line.count('"""') % 2 == 1 or line.count("'''") % 2 == 1:
                in_multiline = False
            continue
        m = _HEADER.match(line)
        if m and not _KEY.match(line):
            path = _split_key(m.group(2))
            if m.group(1) == "[[":
                idx = counts.get(path, 0)
                counts[path] = idx + 1
                table = path + (idx,)
            else:
                table = path
            lines.setdefault(table, n)
            continue
        k = _KEY.match(line)
        if k:
            lines.setdefault(table + _split_key(k.group(1)), n)
            rest = line[k.end():]
            if rest.count('"""') == 1 or rest.count("'''") == 1:
                in_multiline = True
    return lines


def load_toml(path: Path) -> tuple[dict, dict[Loc, int]]:
    """Parse a TOML file; a missing, unreadable or malformed file raises ConfigError with its place."""
    text = read_text(path)
    deep = _DEEP_KEY.search(text)
    if deep:
        line: int | None = text.count("\n", 0, deep.start()) + 1
        raise ConfigError(Issue.make("toml-syntax", file=path.name, line=line, detail=_TOO_DEEP))
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = _TOML_POS.search(str(exc))
        line = int(m.group(1)) if m else None
        detail = f"第 {m.group(1)} 行第 {m.group(2)} 列附近写法不对" if m else "写法不对"
        raise ConfigError(Issue.make("toml-syntax", file=path.name, line=line, detail=detail)) from None
    except RecursionError:  # tomllib recurses once per nested [ or {
        raise ConfigError(Issue.make("toml-syntax", file=path.name, detail=_TOO_DEEP)) from None
    return data, key_lines(text)


def read_text(path: Path) -> str:
    """A TOML file's text: UTF-8 (with or without BOM) as TOML requires; else UTF-16 with its BOM, or GBK (read
    as its superset GB18030), which is what Notepad on Chinese Windows saves as "ANSI". The settings have no
    channel for warnings, so such a file is simply read; only text in none of these is a ConfigError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(Issue.make("file-missing", file=path.name, detail=str(path))) from None
    except OSError as exc:
        from .xlsxio import os_reason

        reason = "没有读取权限" if isinstance(exc, PermissionError) else os_reason(exc)  # os_reason speaks of writing
        detail = f"{path}（{reason}）"
        raise ConfigError(Issue.make("file-unreadable", file=path.name, detail=detail)) from None
    utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    for encoding in ("utf-16",) if utf16 else ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ConfigError(Issue.make("toml-encoding", file=path.name))


def dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def find_line(loc: Loc, lines: dict[Loc, int]) -> int | None:
    """The line of a key, or of the nearest enclosing table when the key itself is absent."""
    loc = tuple(loc)
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return None


_DETAIL = {
    "int_parsing": "应为整数",
    "int_type": "应为整数",
    "int_from_float": "应为整数",
    "float_parsing": "应为数字",
    "float_type": "应为数字",
    "bool_parsing": "应为 true 或 false",
    "bool_type": "应为 true 或 false",
    "string_type": "应为文本（加引号）",
    "date_parsing": "应为日期，如 2026-01-31",
    "date_type": "应为日期，如 2026-01-31",
    "date_from_datetime_parsing": "应为日期，如 2026-01-31",
    "date_from_datetime_inexact": "应为日期，不带时间，如 2026-01-31",
    "date_past": "应为过去的日期",
    "date_future": "应为将来的日期",
    "datetime_parsing": "应为日期时间，如 2026-01-31T18:00:00",
    "datetime_type": "应为日期时间，如 2026-01-31T18:00:00",
    "finite_number": "应为有限的数",
    "less_than": "太大",
    "missing": "必须填写",
    "too_long": "项数太多",
    "set_type": "应为列表，如 [1, 2]",
    "tuple_type": "应为列表，如 [1, 2]",
    "int_from_string": "应为整数",
    "float_from_string": "应为数字",
    "list_type": "应为列表，如 [1, 2]",
    "dict_type": "应为一节设置",
    "model_type": "应为一节设置",
    "string_pattern_mismatch": "只能用小写英文字母、数字和下划线，且以字母开头",
    "string_too_long": "太长",
    "string_too_short": "不能为空",
    "too_short": "不能为空",
}


def pydantic_detail(err: Mapping[str, Any]) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    if kind in ("literal_error", "enum"):
        return f"可选值为 {ctx.get('expected', '')}"
    if kind == "union_tag_invalid":
        return f"kind 可选值为 {ctx.get('expected_tags', '')}"
    if kind == "greater_than_equal":
        return f"应不小于 {ctx.get('ge')}"
    if kind == "less_than_equal":
        return f"应不大于 {ctx.get('le')}"
    if kind == "greater_than":
        return f"应大于 {ctx.get('gt')}"
    if kind == "less_than":
        return f"应小于 {ctx.get('lt')}"
    return _DETAIL.get(kind, "取值不符合要求")


def pydantic_issues(exc, *, file: str, lines: dict[Loc, int], strip: tuple[str, ...] = ("form", "table")) -> list[Issue]:
    """Turn a pydantic ValidationError on TOML data into issues naming key and line."""
    issues = []
    for err in exc.errors(include_url=False):
        loc = tuple(err["loc"])
        if loc and loc[0] in strip and loc not in lines:
            loc = loc[1:]  # the discriminated union's tag is not a key in the file
        key = dotted(loc) or "（整个文件）"
        line = find_line(loc, lines)
        kind = err["type"]
        if kind == "missing":
            issues.append(Issue.make("missing-key", file=file, line=line, field=key, key=key))
        elif kind == "extra_forbidden":
            issues.append(Issue.make("unknown-key", file=file, line=line, field=key, key=key))
        else:
            issues.append(Issue.make("bad-value", file=file, line=line, field=key, key=key, detail=pydantic_detail(err)))
    return issues
