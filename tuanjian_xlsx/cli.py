"""The `tuanjian` command: parses options, calls one library function, prints the result in Chinese."""

from __future__ import annotations

import contextlib
import functools
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

import click

from . import api
from .issues import without_controls

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class ChineseFormatter(click.HelpFormatter):
    _HEADINGS = {"Options": "选项", "Commands": "命令", "Arguments": "参数"}

    def write_usage(self, prog, args="", prefix=None):
        super().write_usage(prog, args.replace("[OPTIONS]", "[选项]").replace("COMMAND", "命令")
                            .replace("[ARGS]...", "[参数]..."), prefix="用法：")

    def write_heading(self, heading):
        self.write(f"{'':>{self.current_indent}}{self._HEADINGS.get(heading, heading)}：\n")


class ChineseContext(click.Context):
    formatter_class = ChineseFormatter


def _help_option(self, ctx):
    option = click.Command.get_help_option(self, ctx)
    if option is not None:
        option.help = "显示本帮助"
    return option


def _short_help(self, limit: int = 45) -> str:
    """A command's line in its group's list: its help up to the first 。 or ；, cut at `limit` characters. (click cuts
    between words; Chinese has no spaces between them, so a long first sentence showed as “...” alone.)"""
    if self.short_help:
        return self.short_help
    text = " ".join((self.help or "").split())
    for mark in ("。", "；"):
        text = text.split(mark, 1)[0]
    return text if len(text) <= limit else text[:limit - 1] + "…"


class Command(click.Command):
    context_class = ChineseContext
    get_help_option = _help_option
    get_short_help_str = _short_help


class Group(click.Group):
    context_class = ChineseContext
    command_class = Command
    get_help_option = _help_option
    get_short_help_str = _short_help

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.group_class = Group


_QUOTED = r"""(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")"""  # a value as click shows it: Python's repr of a str
_Q = f"({_QUOTED})"
_HINT = f"({_QUOTED}(?: / {_QUOTED})*)"  # '-o' / '--output', or '文件...'
_PATH_KIND = {"File": "文件", "Directory": "文件夹", "Path": "路径"}


def _unq(text: str) -> str:
    """A value as click quotes it (Python's repr, backslashes doubled) as the user typed it."""
    import ast

    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text.strip("'\"")
    return value if isinstance(value, str) else text


def _hint(hint: str) -> str:
    """The place click names: '-o' / '--output' becomes 选项 -o / --output, '文件...' becomes 参数 文件...."""
    names = " / ".join(_unq(h.strip()) for h in hint.split(" / "))
    return f"选项 {names}" if names.startswith("-") else f"参数 {names}"


# click's own messages (8.1 to 8.5; see click/exceptions.py, parser.py, core.py, types.py), in Chinese. Applied in
# order to the whole message, so "Invalid value for X: File 'y' does not exist." is translated piece by piece.
_CLICK_ZH: list[tuple[str, str | Callable[[re.Match[str]], str]]] = [
    (r"Invalid value for " + _HINT + ": ", lambda m: f"{_hint(m[1])} 的值无效："),
    (r"Invalid value for (.+?): ", lambda m: f"{_hint(m[1])} 的值无效："),
    (r"Invalid value: ", "值无效："),
    (r"Missing argument " + _HINT + r"\.", lambda m: f"缺少{_hint(m[1])}。"),
    (r"Missing option " + _HINT + r"\.", lambda m: f"缺少{_hint(m[1])}。"),
    (r"Missing parameter(?: " + _HINT + r")?\.", lambda m: f"缺少{_hint(m[1])}。" if m[1] else "缺少参数。"),
    (r"Missing command\.", "缺少命令。"),
    (r"\s*Choose from:\s*(.+)", lambda m: f"可选：{_unq_list(m[1])}"),
    (r"No such option:? " + _Q + r"\.?", lambda m: f"没有这个选项：{_unq(m[1])}。"),
    (r"No such option: (\S+)", lambda m: f"没有这个选项：{m[1]}。"),
    (r"No such command " + _Q + r"\.", lambda m: f"没有这个命令：{_unq(m[1])}。"),
    (r"\(Did you mean one of: (.+?)\?\)", lambda m: f"（是否想用：{_unq_list(m[1])}？）"),
    (r"\(Possible options: (.+?)\)", lambda m: f"（可能是：{_unq_list(m[1])}）"),
    (r"Did you mean (.+?)\?", lambda m: f"是否想用 {_unq_list(m[1])}？"),
    (r"Got unexpected extra arguments? \((.+)\)", r"多余的参数：\1"),
    (r"Option " + _Q + r" requires an argument\.", lambda m: f"选项 {_unq(m[1])} 需要一个值。"),
    (r"Option " + _Q + r" requires (\d+) arguments\.", lambda m: f"选项 {_unq(m[1])} 需要 {m[2]} 个值。"),
    (r"Option " + _Q + r" does not take a value\.", lambda m: f"选项 {_unq(m[1])} 不需要值。"),
    (r"Argument " + _Q + r" takes (\d+) values\.", lambda m: f"参数 {_unq(m[1])} 需要 {m[2]} 个值。"),
    (r"(File|Directory|Path) " + _Q + r" does not exist\.", lambda m: f"{_PATH_KIND[m[1]]}不存在：{_unq(m[2])}"),
    (r"(File|Directory|Path) " + _Q + r" is a file\.", lambda m: f"{_unq(m[2])} 是文件，这里应为文件夹"),
    (r"(File|Directory|Path) " + _Q + r" is a directory\.", lambda m: f"{_unq(m[2])} 是文件夹，这里应为文件"),
    (r"(File|Directory|Path) " + _Q + r" is not readable\.", lambda m: f"无法读取 {_unq(m[2])}（没有读取权限）"),
    (r"(File|Directory|Path) " + _Q + r" is not writable\.", lambda m: f"无法写入 {_unq(m[2])}（没有写入权限）"),
    (r"(File|Directory|Path) " + _Q + r" is not executable\.", lambda m: f"{_unq(m[2])} 不可执行"),
    (r"Could not open file " + _Q + r": (.*)", lambda m: f"无法打开文件 {_unq(m[1])}：{m[2]}"),
    (_Q + r" is not a valid (?:integer|integer range)\.", lambda m: f"应为整数，现为“{_unq(m[1])}”"),
    (_Q + r" is not a valid (?:float|float range)\.", lambda m: f"应为数字，现为“{_unq(m[1])}”"),
    (_Q + r" is not a valid boolean\..*", lambda m: f"应为 true 或 false，现为“{_unq(m[1])}”"),
    (_Q + r" is not a valid UUID\.", lambda m: f"应为 UUID，现为“{_unq(m[1])}”"),
    (r"(\S+) is not in the range (.+?)\.$", lambda m: f"{m[1]} 不在范围 {m[2]} 内"),
    (_Q + r" is not (?:one of )?(.+?)\.$", lambda m: f"“{_unq(m[1])}”不是可选的值（可选：{_unq_list(m[2])}）"),
    (_Q + r" does not match the formats? (.+?)\.$", lambda m: f"“{_unq(m[1])}”的格式不对（应为 {_unq_list(m[2])}）"),
    (r"Takes (\d+) values but (\d+) (?:was|were) given\.", r"需要 \1 个值，现为 \2 个。"),
    (r"(\d+) values are required, but (\d+) (?:was|were) given\.", r"需要 \1 个值，现为 \2 个。"),
    (r"Value must be an iterable\.", "应为多个值。"),
]


def _unq_list(text: str) -> str:
    """'a', 'b' (or a, b) becomes a、b."""
    return "、".join(_unq(x) for x in re.findall(_QUOTED + r"|[^,\s]+", text))


def _usage_zh(message: str) -> str:
    for pattern, repl in _CLICK_ZH:
        message = re.sub(pattern, repl, message, flags=re.DOTALL)
    return re.sub(r"([。？）]) +", r"\1", message)  # click joins its sentences with a space


_CONSOLE_FALLBACK = str.maketrans({"✓": "√", "✗": "×", "·": "·", "—": "—", "～": "~"})


def _echo(text: str = "", err: bool = False) -> None:
    """Print a line the console can show: a Windows console's GBK code page lacks ✓ and ✗, so those become √ and ×,
    and anything else it cannot show becomes ? instead of a crash."""
    stream = sys.stderr if err else sys.stdout
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        text = text.translate(_CONSOLE_FALLBACK).encode(encoding, errors="replace").decode(encoding, errors="replace")
    click.echo(text, err=err)


def _json(data: dict) -> None:
    _echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _failed(issues: list, as_json: bool) -> None:
    """Say why the job stopped: the Chinese lines on stderr, or with --json one object on stdout; exit 1."""
    if as_json:
        _json({"ok": False, "error": issues[0].to_dict(), "issues": [i.to_dict() for i in issues]})
    else:
        for issue in issues:
            _echo(issue.render(), err=True)
    sys.exit(EXIT_FAILED)


def _bare_issue(code: str, message: str):
    """An Issue for what is not the library's (a usage error, a cancel, a bug), so --json has one shape."""
    from .issues import Issue

    return Issue(code=code, severity="error", message=message)


def _os_issue(exc: OSError):
    """What the system refused (permissions, disk full…), in Chinese, naming the path when there is one."""
    from .issues import Issue
    from .xlsxio import os_reason

    if exc.filename is None:
        return Issue.make("system-error", reason=os_reason(exc))
    return Issue.make("os-error", file=Path(exc.filename).name, detail=exc.filename, reason=os_reason(exc))


def _internal(exc: Exception) -> str:
    return f"内部错误（{type(exc).__name__}：{exc}）。加 --debug 可查看详细信息。"


def reports_errors(fn):
    """One place that turns the library's errors into Chinese lines (or JSON with --json) and exit codes."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from .issues import TuanjianError

        as_json = kwargs.get("as_json", False)
        try:
            return fn(*args, **kwargs)
        except TuanjianError as exc:
            _failed(exc.issues, as_json)
        except (click.exceptions.Exit, click.ClickException, KeyboardInterrupt, BrokenPipeError):
            raise
        except OSError as exc:  # refused by the system: not a bug, so no 内部错误
            _failed([_os_issue(exc)], as_json)
        except Exception as exc:  # an unexpected failure: say so plainly; the traceback only with --debug
            if click.get_current_context().find_root().params.get("debug"):
                raise
            _failed([_bare_issue("internal", _internal(exc))], as_json)

    return wrapper


def workspace_option(fn):
    return click.option("--workspace", "-w", "workspace", type=click.Path(file_okay=False, path_type=Path),
                        default=".", metavar="文件夹", help="工作区文件夹（含 tuanjian.toml），默认为当前文件夹")(fn)


def json_option(fn):
    return click.option("--json", "as_json", is_flag=True, help="以 JSON 输出结果（供程序读取）")(fn)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]},
             help="活力团建报表工具：生成模板、下发、收件校验、汇总。")
@click.option("--debug", is_flag=True, help="出错时显示详细的技术信息")
@click.version_option(package_name="tuanjian-xlsx", message="tuanjian %(version)s", help="显示版本号")
def cli(debug: bool) -> None:
    pass


def _finish(result, as_json: bool = False) -> None:
    """Render a command's result (the lines, or with --json one object) and leave with its exit code."""
    if as_json:
        _json({"ok": result.exit_code == 0, **result.to_dict()})
    else:
        for line in result.lines():  # (no ESC or CR from a file's name or a cell reaches the console as such)
            _echo(without_controls(line))
        for line in result.errors():
            _echo(without_controls(line), err=True)
    sys.exit(result.exit_code)


@contextlib.contextmanager
def _progress(quiet: bool):
    """A progress bar on a terminal; yields the callback the library calls, None with --json or when piped (the
    library then need not count what it will do)."""
    bar = None

    def step(n: int, total: int, item) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total, label="登记与校验", show_pos=True)
            bar.__enter__()
        bar.length = total  # (a zip or mail opened meanwhile adds its members; a file gone since the walk, none)
        bar.update(n - bar.pos)  # (called once per batch of files recorded, with how many are done)

    try:
        yield None if quiet or not sys.stdout.isatty() else step
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)


def _as_of(ctx, param, value):
    """A day for --as-of and --since, within the days the date arithmetic below can handle."""
    if value is None:
        return None
    import datetime as dt

    from .periods import FIRST_DAY, LAST_DAY

    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"应为日期，如 2026-04-20，现为“{value}”") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise click.BadParameter(f"日期应在 {FIRST_DAY} 至 {LAST_DAY} 之间，现为 {value}")
    return day


def _moment(ctx, param, value):
    """A date, or a date and time, for --received-at (a date alone is that day at 00:00)."""
    if value is None:
        return None
    import datetime as dt

    from .periods import FIRST_DAY, LAST_DAY

    try:
        moment = dt.datetime.fromisoformat(value.strip().replace("/", "-"))
    except ValueError:
        raise click.BadParameter(f"应为日期或日期时间，如 2026-04-09 或 \"2026-04-09 15:30\"，现为“{value}”") from None
    if not FIRST_DAY <= moment.date() <= LAST_DAY:
        raise click.BadParameter(f"日期应在 {FIRST_DAY} 至 {LAST_DAY} 之间，现为 {value}")
    return moment.replace(tzinfo=None)


def _period(ctx, param, value):
    """A reporting period as the library takes it (text), refused here when it is not one."""
    if value is None:
        return None
    from .periods import FIRST_YEAR, LAST_YEAR, parse_period

    if parse_period(value) is None:
        raise click.BadParameter(f"应为报送期，如 2026-03、2026-Q1 或 2026（年份在 {FIRST_YEAR}—{LAST_YEAR} 之间），"
                                 f"现为“{value}”")
    return value


def as_of_option(fn):
    return click.option("--as-of", "as_of", callback=_as_of, metavar="日期",
                        help="按哪一天判断按时/逾期/未报（默认今天），如 2026-04-20")(fn)


@cli.command(help="新建工作区：写入 tuanjian.toml、《名单与目标.xlsx》（实施方案的默认名单与目标）和各文件夹。")
@click.argument("directory", metavar="文件夹", type=click.Path(file_okay=False, path_type=Path))
@json_option
@reports_errors
def init(directory: Path, as_json: bool) -> None:
    _finish(api.init(directory), as_json)


@cli.group(help="报表模板：生成、列出。")
def templates() -> None:
    pass


@templates.command("build", help="按工作区的名单与设置生成各报表当前版本的空白模板（默认放在“模板”文件夹）。")
@workspace_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="文件夹",
              help="输出文件夹（默认为工作区的“模板”文件夹）")
@json_option
@reports_errors
def templates_build(workspace: Path, out_dir: Path | None, as_json: bool) -> None:
    _finish(api.build_templates(workspace, out_dir), as_json)


@templates.command("list", help="列出所有报表模板的版本、指纹和字段数。")
@json_option
@reports_errors
def templates_list(as_json: bool) -> None:
    _finish(api.list_templates(), as_json)


@templates.command("diff", help="列出一张报表两个版本之间的变化，如：tuanjian templates diff visit_report 1 2")
@click.argument("form_id", metavar="报表")
@click.argument("old", metavar="旧版本", type=int)
@click.argument("new", metavar="新版本", type=int)
@json_option
@reports_errors
def templates_diff(form_id: str, old: int, new: int, as_json: bool) -> None:
    _finish(api.diff_templates(form_id, old, new), as_json)


@cli.command(help="把已填写的旧版本报表转到当前版本的模板上：原有内容照搬，新增项留空并标出；原文件不动。")
@click.argument("files", metavar="文件...", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False,
                                                                                     path_type=Path))
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="文件夹",
              help="输出文件夹（默认：与原文件相同）")
@workspace_option
@json_option
@reports_errors
def upgrade(files: tuple[Path, ...], out: Path | None, workspace: Path, as_json: bool) -> None:
    _finish(api.upgrade(workspace, list(files), out), as_json)


@cli.command(help="校验收到的报表文件（xlsx、zip、另存的邮件 .eml，或含有它们的文件夹），列出每个问题的位置；"
                  "有错的可生成退回件。不在工作区里时按内置的默认名单与目标（实施方案）校验，各单位可在发送前自查。")
@click.argument("paths", metavar="路径...", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--workspace", "-w", "workspace", type=click.Path(file_okay=False, path_type=Path), default=None,
              metavar="文件夹", help="工作区文件夹（含 tuanjian.toml）；默认为当前文件夹，没有则用内置的默认名单与目标")
@click.option("--return-dir", "return_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              metavar="文件夹", help="为有错误的文件生成退回件和说明，放在此文件夹")
@json_option
@reports_errors
def validate(paths: tuple[Path, ...], workspace: Path | None, return_dir: Path | None, as_json: bool) -> None:
    _finish(api.validate(list(paths), workspace, return_dir), as_json)


@cli.command(help="一键汇总：把收件箱（或给定路径）里的文件登记、校验，生成汇总表和退回件，并统计未报、逾期。")
@click.argument("paths", metavar="[路径...]", nargs=-1, type=click.Path(path_type=Path))
@workspace_option
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="文件",
              help="汇总表保存为（默认：工作区“汇总”文件夹里的 汇总表.xlsx）")
@as_of_option
@click.option("--fetch", is_flag=True, help="先从邮箱收取新邮件的报表附件（设置见 tuanjian.toml 的 [mail]）")
@click.option("--received-at", "received_at", callback=_moment, metavar="日期",
              help="本次给出的文件实际收到的日期（如附件晚些才保存到收件箱），如 2026-04-09 或 \"2026-04-09 15:30\"；"
                   "不写文件时只用于本次新收到、又不是邮件带来的文件；只会把收到时间往前改，不会往后改；"
                   "汇总表“来源”中注明“人工指定”")
@click.option("--open", "open_excel", is_flag=True, help="汇总后在 Excel 中打开汇总表（Windows/macOS，需要 Excel 联动组件）")
@click.option("--reply", is_flag=True, help="给新收到的文件回邮件：有效的发回执，有错的发退回（附退回件）；一封来信只回一封，"
                                             "每个文件只回一次（发信设置见 tuanjian.toml 的 [mail]，文字见“邮件模板”文件夹）")
@click.option("--dry-run", is_flag=True, help="与 --reply 一起用：只列出会发出的回执和退回，不发送、不记录（汇总照常）")
@click.option("--resend", multiple=True, metavar="编号", help="与 --reply 一起用：重发这个编号的回复（编号见输出中的“可能未送达”等行）；可重复")
@json_option
@reports_errors
def merge(paths: tuple[Path, ...], workspace: Path, out: Path | None, as_of, fetch: bool, received_at,
          open_excel: bool, reply: bool, dry_run: bool, resend: tuple[str, ...], as_json: bool) -> None:
    if (dry_run or resend) and not reply:
        raise click.UsageError("--dry-run 和 --resend 只能与 --reply 一起使用", click.get_current_context())
    with _progress(as_json) as progress:
        result = api.merge(workspace, list(paths), out=out, as_of=as_of, fetch=fetch, received_at=received_at,
                           open_excel=open_excel, progress=progress, reply=reply, dry_run=dry_run, resend=list(resend))
    _finish(result, as_json)


@cli.command("fetch-mail", help="从团市委邮箱收取报表附件（每封邮件只收一次，以到达时间为收到时间）。")
@click.option("--since", callback=_as_of, metavar="日期", default=None, help="只看这一天及以后到达的邮件，如 2026-04-01")
@click.option("--folder", default=None, metavar="文件夹", help="邮箱文件夹（默认见 tuanjian.toml，一般为 INBOX）")
@click.option("--dry-run", is_flag=True, help="只列出会收取的邮件和附件，不登记")
@workspace_option
@json_option
@reports_errors
def fetch_mail_command(since, folder: str | None, dry_run: bool, workspace: Path, as_json: bool) -> None:
    _finish(api.fetch_mail(workspace, since=since, folder=folder, dry_run=dry_run), as_json)


@cli.group(help="登记簿（.tuanjian/ledger.sqlite）与原件存档：检查、重建、作废误报的文件。")
def ledger() -> None:
    pass


@ledger.command("check", help="检查登记簿是否完好、每份原件是否都在存档中且未被改动，以及中断留下的临时文件。")
@workspace_option
@json_option
@reports_errors
def ledger_check(workspace: Path, as_json: bool) -> None:
    _finish(api.ledger_check(workspace), as_json)


@ledger.command("rebuild", help="登记簿损坏时，从原件存档重建（旧登记簿改名保留，不删除），并说明哪些信息无法恢复。")
@workspace_option
@json_option
@reports_errors
def ledger_rebuild(workspace: Path, as_json: bool) -> None:
    _finish(api.ledger_rebuild(workspace), as_json)


@ledger.command("void", help="作废误报的文件（如报送期或单位填错）：此后汇总、报送情况和考核都不再计入它，汇总表“来源”表中标为作废并写明原因；"
                             "原件和登记保留，不删除。文件用收到时的文件名或“来源”表中 SHA-256 的前 8 位以上指明；"
                             "加 --undo 恢复。之后运行 tuanjian merge 重新生成汇总表。")
@click.argument("which", metavar="文件")
@click.option("--reason", metavar="原因", default=None, help="作废（或恢复）的原因，必填，记入登记簿并显示在汇总表中")
@click.option("--undo", is_flag=True, help="恢复一个已作废的文件，重新计入")
@workspace_option
@json_option
@reports_errors
def ledger_void(which: str, reason: str | None, undo: bool, workspace: Path, as_json: bool) -> None:
    _finish(api.ledger_void(workspace, which, reason=reason, undo=undo), as_json)


@cli.command(help="报送情况：按报表和报送期列出未报、逾期的单位，并给出可直接发送的催报文字；加 --send 直接发催报邮件。")
@workspace_option
@click.option("--period", metavar="报送期", default=None, callback=_period, help="只看某一期，如 2026-03 或 2026-Q1")
@as_of_option
@click.option("--send", is_flag=True, help="给未报的单位发催报邮件（按名单中的邮箱，附空白表）；同一份报表催过后隔 "
                                            "[watch] remind_every_days 天才再催")
@click.option("--before", type=click.IntRange(0, 60), default=None, metavar="天数",
              help="与 --send 一起用：改为给截止日期在这几天之内、尚未报送的单位发提前提醒")
@click.option("--dry-run", is_flag=True, help="与 --send 一起用：只列出会发出的邮件，不发送、不记录")
@json_option
@reports_errors
def status(workspace: Path, period: str | None, as_of, send: bool, before: int | None, dry_run: bool,
           as_json: bool) -> None:
    if (before is not None or dry_run) and not send:
        raise click.UsageError("--before 和 --dry-run 只能与 --send 一起使用", click.get_current_context())
    _finish(api.status(workspace, period=period, as_of=as_of, send=send, before=before, dry_run=dry_run), as_json)


def _interval(ctx, param, value):
    """A span for --every: 10m, 1h, 30s (a bare number is minutes)."""
    if value is None:
        return None
    from .settings import parse_interval

    span = parse_interval(value)
    if span is None:
        raise click.BadParameter(f"应为时间间隔，如 10m（分钟）、1h（小时）、30s（秒），在 10 秒到 1 天之间，现为“{value}”")
    return span


@cli.command(help="自动收发：每隔一段时间 收信 → 汇总 → 给新收到的文件发回执/退回 → 到时发催报和提前提醒"
                  "（设置见 tuanjian.toml 的 [watch]，每一轮记入工作区的“自动收发日志.txt”）；按 Ctrl+C 停止。"
                  "--once 只运行一轮，供 Windows 任务计划程序或 cron 定时调用。")
@workspace_option
@click.option("--every", callback=_interval, default=None, metavar="间隔",
              help="多久一轮，如 10m、1h（默认见 tuanjian.toml 的 [watch] every）")
@click.option("--once", is_flag=True, help="只运行一轮就退出（这一轮有问题时退出码为 1）")
@json_option
@reports_errors
def watch(workspace: Path, every, once: bool, as_json: bool) -> None:
    _finish(api.watch(workspace, every=every, once=once, say=None if as_json else _echo), as_json)


@cli.command(help="下发：为每个报送单位生成本期的表（单位、报送期、截止日期已填好并锁定）和填报说明。")
@click.option("--period", required=True, metavar="报送期", callback=_period, help="如 2026-03（附件1）或 2026-Q1（附件2、目标任务台账）")
@click.option("--form", "forms", multiple=True, metavar="报表", help="只下发某张表，如 visit_report；可重复")
@click.option("--units", default=None, metavar="单位,...", help="只下发给这些单位（编号或名称，逗号分隔）")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="文件夹",
              help="输出文件夹（默认：工作区“下发/报送期”）")
@click.option("--zip", "make_zip", is_flag=True, help="每个单位另打一个 zip 包（文件名用 UTF-8，Windows 可正常显示）")
@click.option("--send", is_flag=True, help="按名单中的邮箱发送（发信设置见 tuanjian.toml 的 [mail]）；不加则只生成文件")
@workspace_option
@json_option
@reports_errors
def distribute(period: str, forms: tuple[str, ...], units: str | None, out: Path | None, make_zip: bool,
               send: bool, workspace: Path, as_json: bool) -> None:
    _finish(api.distribute(workspace, period, forms=list(forms), units=units, out=out, make_zip=make_zip,
                           send=send), as_json)


def _year(ctx, param, value):
    """A calendar year for --year, within the years a period may have."""
    if value is None:
        return None
    from .periods import FIRST_YEAR, LAST_YEAR

    if not FIRST_YEAR <= value <= LAST_YEAR:
        raise click.BadParameter(f"年份应在 {FIRST_YEAR}—{LAST_YEAR} 之间，现为 {value}")
    return value


@cli.command(help="年底考核：按登记簿和《名单与目标.xlsx》的“考核细则”为各单位打分，生成年度考核表"
                  "（考核得分、考核依据、评分说明）；重新生成时保留手工填写的加减分。")
@click.option("--year", type=int, callback=_year, default=None, metavar="年份",
              help="考核哪一年，如 2026（默认：统计日所在的年份，1 月为上一年）")
@workspace_option
@click.option("--as-of", "as_of", callback=_as_of, metavar="日期",
              help="统计到哪一天（默认今天）：只计截至这一天已到截止日期的报送期，如 2026-12-31")
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="文件",
              help="考核表保存为（默认：工作区“汇总”文件夹里的 年度考核表（年份年）.xlsx）")
@json_option
@reports_errors
def assess(year: int | None, workspace: Path, as_of, out: Path | None, as_json: bool) -> None:
    _finish(api.assess(workspace, year=year, as_of=as_of, out=out), as_json)


@cli.command(help="演示：在新文件夹里用实施方案的默认名单跑一遍完整流程（建模板、半年的模拟报送、汇总、催报）。")
@click.argument("directory", metavar="文件夹", type=click.Path(file_okay=False, path_type=Path))
@json_option
@reports_errors
def demo(directory: Path, as_json: bool) -> None:
    _finish(api.demo(directory), as_json)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script: Chinese messages for every way out, exit 2 for usage errors; with
    --json exactly one JSON object on stdout whatever happens."""
    args = sys.argv[1:] if argv is None else list(argv)
    as_json = "--json" in args  # click may fail before it has parsed the option

    def stop(issue, exit_code: int, shown: str | None = None, hint: str | None = None) -> int:
        if as_json:
            _json({"ok": False, "error": issue.to_dict()})
        else:
            _echo(shown or issue.render(), err=True)
            if hint:
                _echo(hint, err=True)
        return exit_code

    try:
        cli.main(args=args, prog_name="tuanjian", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        return stop(_bare_issue("cancelled", "已取消。"), EXIT_FAILED, shown="已取消。")
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "tuanjian"
        if type(exc).__name__ == "NoArgsIsHelpError":  # click 8.2+: a group given no command shows its help
            issue = _bare_issue("usage", f"缺少命令；运行 {command} --help 查看可用的命令")
            return stop(issue, EXIT_USAGE, shown=exc.format_message())
        message = _usage_zh(exc.format_message())
        return stop(_bare_issue("usage", message), EXIT_USAGE, shown=f"用法错误：{message}",
                    hint=f"运行 {command} --help 查看用法。")
    except click.ClickException as exc:
        return stop(_bare_issue("failed", _usage_zh(exc.format_message())), exc.exit_code)
    except SystemExit as exc:  # a command's own exit code (sys.exit in the commands above)
        return exc.code if isinstance(exc.code, int) else EXIT_OK if exc.code is None else EXIT_FAILED
    except BrokenPipeError:  # output piped into head or the like, which stopped reading: not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # raised outside the commands' own handling (while click reads its arguments)
        if "--debug" in args:
            raise
        issue = _os_issue(exc) if isinstance(exc, OSError) else _bare_issue("internal", _internal(exc))
        return stop(issue, EXIT_FAILED)
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
