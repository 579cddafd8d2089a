"""The words of every mail tuanjian writes by itself — 回执, 退回, 催报, 提前提醒 — from templates staff can edit.

A template is a text file in the workspace's 邮件模板 folder: lines starting with # are notes (never sent), the first
other line is `主题：…` (the subject), the rest the body. Placeholders such as {单位} are filled in; `{{` and `}}`
write a brace itself. A body line whose placeholders are all empty is left out (a receipt without 提醒, say).
A missing file means the built-in default below, which is also what `tuanjian init` writes. A broken template (a
placeholder it does not offer, a lone brace, no subject) is an Issue naming the file and line: mail of that kind is
not sent until it is corrected, the other kinds go on; the texts written beside 退回件 fall back to the default.
A subject carries only what tuanjian itself knows (the unit as the roster names it, the form, the period, counts):
nothing written by whoever sent a file — its name, its problems — goes into a subject, where a stranger's text
would be the first thing a mailbox shows.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .issues import Issue, TuanjianError

if TYPE_CHECKING:
    from .plan import Plan

SUBJECT = "主题："
_COMMON = ("报送邮箱", "部室", "落款")


@dataclass(frozen=True)
class Kind:
    """One kind of mail: its file, the placeholders it offers (and of those, the ones a subject may use), its default
    text."""

    file: str
    title: str
    placeholders: tuple[str, ...]
    default: str
    subject: tuple[str, ...] = ()


def _note(title: str, when: str, names: tuple[str, ...]) -> str:
    return (f"# {title}：{when}。第一行“主题：”后面是邮件主题，其余是正文。\n"
            f"# 可用的占位符：{' '.join('{' + n + '}' for n in names)}\n"
            "# 以 # 开头的行是说明，不会发出；某一行里的占位符都为空时，这一行不发出。删除本文件则使用内置的默认文字。\n")


_RECEIPT = ("单位", "报表", "报送期", "文件", "收到时间", "截止日期", "按时或逾期", "此前收到", "提醒") + _COMMON
_RETURN = ("单位", "报表", "报送期", "文件", "收到时间", "截止日期", "问题数", "问题清单", "修改办法") + _COMMON
_BATCH = ("单位", "份数", "通过数", "退回数", "收到时间", "逐份结果", "修改办法") + _COMMON
_REMINDER = ("单位", "日期", "份数", "未报清单", "截止日期") + _COMMON
_ADVANCE = ("单位", "日期", "份数", "待报清单", "截止日期") + _COMMON
# what a subject may say: never a file's name or its problems (see the module's docstring)
_SUBJECT = {"receipt": ("单位", "报表", "报送期", "收到时间", "截止日期", "按时或逾期") + _COMMON,
            "return": ("单位", "报表", "报送期", "收到时间", "截止日期", "问题数") + _COMMON,
            "batch": ("单位", "份数", "通过数", "退回数", "收到时间") + _COMMON,
            "reminder": ("单位", "日期", "份数", "截止日期") + _COMMON,
            "advance": ("单位", "日期", "份数", "截止日期") + _COMMON}

KINDS: dict[str, Kind] = {
    "receipt": Kind("回执.txt", "回执", _RECEIPT, _note("回执", "收到校验通过的报表后，自动回复报送单位（邮件发来的回复到发件邮箱）", _RECEIPT) + """\
主题：【{部室}】回执：已收到{单位}《{报表}》（{报送期}）
{单位}：
您单位报送的《{报表}》（{报送期}）（文件 {文件}）已于 {收到时间} 收到，校验通过，{按时或逾期}（截止日期 {截止日期}）。
{此前收到}
{提醒}
谢谢！
—— {落款}
""", _SUBJECT["receipt"]),
    "return": Kind("退回.txt", "退回", _RETURN, _note("退回", "收到有错误的报表后，连同退回件自动回复报送单位（邮件发来的回复到发件邮箱）", _RETURN) + """\
主题：【{部室}】退回：《{报表}》（{报送期}）有 {问题数} 处需要修改
{单位}：您单位报送的《{报表}》（{报送期}）（文件 {文件}）有 {问题数} 处需要修改：
{问题清单}
{修改办法}
截止日期：{截止日期}。报送邮箱：{报送邮箱}。
—— {落款}
""", _SUBJECT["return"]),
    "batch": Kind("多份文件回复.txt", "多份文件的回复", _BATCH,
                  _note("多份文件的回复", "一封邮件带来多份报表时，只回一封，逐份说明（有错的附退回件）", _BATCH) + """\
主题：【{部室}】已收到 {份数} 份报表：校验通过 {通过数} 份，需要修改 {退回数} 份
{单位}：
您于 {收到时间} 发来的 {份数} 份报表已收到，逐份结果如下：
{逐份结果}
{修改办法}
报送邮箱：{报送邮箱}。
—— {落款}
""", _SUBJECT["batch"]),
    "reminder": Kind("催报.txt", "催报", _REMINDER, _note("催报", "过了截止日期仍未报送时，发给该单位（附空白表）", _REMINDER) + """\
主题：【{部室}】催报：{单位}有 {份数} 份报表尚未报送
{单位}：截至 {日期}，您单位以下报表尚未报送：
{未报清单}
请尽快报送至 {报送邮箱}。谢谢！
—— {落款}
""", _SUBJECT["reminder"]),
    "advance": Kind("提前提醒.txt", "提前提醒", _ADVANCE,
                    _note("提前提醒", "截止日期前几天仍未报送时，发给该单位（附空白表）", _ADVANCE) + """\
主题：【{部室}】提醒：{单位}有 {份数} 份报表将于 {截止日期} 截止
{单位}：截至 {日期}，您单位以下报表尚未报送，截止日期临近：
{待报清单}
附件是本期的空白表（单位、报送期已填好），请按时报送至 {报送邮箱}。谢谢！
—— {落款}
""", _SUBJECT["advance"]),
}


@dataclass(frozen=True)
class MailText:
    subject: str
    body: str


@dataclass(frozen=True)
class Template:
    """A checked template: its subject and body lines, each with the placeholders it uses."""

    kind: str
    shown: str  # how messages name it: 邮件模板/回执.txt, or 内置的默认文字
    subject: str
    body: tuple[tuple[str, tuple[str, ...]], ...]

    def render(self, values: Mapping[str, object], subject: Mapping[str, object] | None = None) -> MailText:
        """The mail: placeholders filled in; a body line whose placeholders are all empty left out. `subject`: the
        values for the subject where they differ (the unit as the roster names it, not as a file says)."""
        text = _Blank({k: "" if v is None else str(v) for k, v in values.items()})
        lines = []
        for line, names in self.body:
            if names and not any(text.get(n, "") for n in names):
                continue
            lines.append(line.format_map(text))
        head = _Blank({**text, **{k: "" if v is None else str(v) for k, v in (subject or {}).items()}})
        return MailText(" ".join(self.subject.format_map(head).split()),  # one line, whatever the values hold
                        "\n".join(lines).strip("\n"))


class _Blank(dict):
    """Values for a template: a placeholder a caller left out reads as empty."""

    def __missing__(self, key: str) -> str:
        return ""


def parse(text: str, kind: str, shown: str) -> Template:
    """A template's text checked: every problem raised at once as TuanjianError, with the file and line."""
    allowed = KINDS[kind].placeholders
    issues: list[Issue] = []
    subject: str | None = None
    body: list[tuple[str, tuple[str, ...]]] = []
    for n, raw in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), start=1):
        line = raw.rstrip()
        if line.lstrip().startswith("#") or (subject is None and not line.strip()):
            continue
        names = _placeholders(line, allowed, shown, n, issues)
        if subject is None:
            head = line.strip()
            if not head.startswith((SUBJECT, "主题:")):
                issues.append(Issue.make("mail-template-subject", file=shown, line=n, value=_short(head)))
                subject = ""
                continue
            subject = head[len(SUBJECT):].strip()
            safe = KINDS[kind].subject
            issues += [Issue.make("mail-template-subject-value", file=shown, line=n, value=name,
                                  known=" ".join("{" + a + "}" for a in safe)) for name in names if name not in safe]
            continue
        body.append((line, names))
    if subject is None:
        issues.append(Issue.make("mail-template-subject", file=shown, line=1, value="（空）"))
    if issues:
        raise TuanjianError(issues)
    assert subject is not None  # a missing subject is an issue above
    return Template(kind, shown, subject, tuple(body))


def _placeholders(line: str, allowed: tuple[str, ...], shown: str, n: int, issues: list[Issue]) -> tuple[str, ...]:
    try:
        parts = list(string.Formatter().parse(line))
    except ValueError:
        issues.append(Issue.make("mail-template-brace", file=shown, line=n, value=_short(line)))
        return ()
    names = []
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in allowed or spec or conversion:
            whole = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            issues.append(Issue.make("mail-template-placeholder", file=shown, line=n, value=whole,
                                     known=" ".join("{" + a + "}" for a in allowed)))
            continue
        names.append(name)
    return tuple(names)


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:40] + "…"


def default(kind: str) -> Template:
    return parse(KINDS[kind].default, kind, "内置的默认文字")


def folder(ws: Plan) -> Path | None:
    """The workspace's template folder; None for a plan without a workspace (the defaults then)."""
    root = getattr(ws, "root", None)
    return Path(root) / ws.settings.folders.mail_templates if root is not None else None


def load(ws: Plan, kind: str) -> Template:
    """The workspace's template of a kind, or the default when it has none; TuanjianError when it is broken."""
    where = folder(ws)
    path = where / KINDS[kind].file if where is not None else None
    if path is None or not path.is_file():
        return default(kind)
    from .tomlfile import read_text

    shown = f"{ws.settings.folders.mail_templates}/{KINDS[kind].file}"
    try:
        text = read_text(path)
    except TuanjianError as exc:  # unreadable, or in no known encoding: named as the template it is
        raise TuanjianError([replace(i, file=shown) for i in exc.issues]) from None
    return parse(text, kind, shown)


def render_or_default(ws: Plan, kind: str, values: Mapping[str, object]) -> MailText:
    """For texts that are written whatever happens (the .txt beside a 退回件, the 催报 text shown by `status`): the
    workspace's template, or the default when the workspace's is broken."""
    try:
        template = load(ws, kind)
    except TuanjianError:
        template = default(kind)
    return template.render(values)


def write_defaults(where: Path) -> list[Path]:
    """Each kind's default template into `where` (tuanjian init); a file already there is left as it is."""
    from .xlsxio import atomic_write

    where.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in KINDS.values():
        path = where / kind.file
        if not path.exists():
            written.append(atomic_write(path, kind.default.encode("utf-8-sig")))
    return written


def ensure_defaults(ws: Plan) -> None:
    """A workspace made before mail templates existed gets the default files the first time it sends mail, so that
    staff find them to edit (a file deleted on purpose from an existing folder is not written again)."""
    where = folder(ws)
    if where is not None and not where.exists():
        try:
            write_defaults(where)
        except (OSError, TuanjianError):  # a read-only workspace: the built-in defaults serve as well
            pass


def common_values(ws: Plan) -> dict[str, str]:
    """What every kind of mail says the same way: who sends it, where reports go."""
    org = ws.settings.organisation
    return {"报送邮箱": org.report_mailbox or org.department, "部室": org.department,
            "落款": f"{org.name}{org.department}"}
