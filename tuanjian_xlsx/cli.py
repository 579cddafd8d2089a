"""The `tuanjian` command: parses options, calls one library function, prints the result in Chinese."""

from __future__ import annotations

import functools
import json
import re
import sys
from pathlib import Path

import click

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


class Command(click.Command):
    context_class = ChineseContext
    get_help_option = _help_option


class Group(click.Group):
    context_class = ChineseContext
    command_class = Command
    get_help_option = _help_option

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.group_class = Group


_CLICK_ZH = [
    (r"Missing argument '(.+?)'\.?", r"缺少参数 \1"),
    (r"No such option:? '?([^'\s]+)'?\.?", r"没有这个选项：\1。"),
    (r"Did you mean '?([^'?]+)'?\?", r"是否想用 \1？"),
    (r"\(Possible options: (.+?)\)", r"（可能是：\1）"),
    (r"No such command '(.+?)'\.?", r"没有这个命令：\1"),
    (r"Got unexpected extra arguments? \((.+)\)", r"多余的参数：\1"),
    (r"Option '(.+?)' requires an argument\.", r"选项 \1 需要一个值"),
    (r"Invalid value for '(.+?)': ", r"参数 \1 的值无效："),
    (r"Directory '(.+?)' does not exist\.", r"文件夹不存在：\1"),
    (r"Path '(.+?)' does not exist\.", r"路径不存在：\1"),
]


def _usage_zh(message: str) -> str:
    for pattern, repl in _CLICK_ZH:
        message = re.sub(pattern, repl, message)
    return message


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


def reports_errors(fn):
    """One place that turns the library's errors into Chinese lines and exit codes."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from .issues import TuanjianError

        try:
            return fn(*args, **kwargs)
        except TuanjianError as exc:
            for issue in exc.issues:
                _echo(issue.render(), err=True)
            sys.exit(EXIT_FAILED)
        except (click.exceptions.Exit, click.ClickException, KeyboardInterrupt, BrokenPipeError):
            raise
        except Exception as exc:  # an unexpected failure: say so plainly; the traceback only with --debug
            if click.get_current_context().find_root().params.get("debug"):
                raise
            _echo(f"错误：内部错误（{type(exc).__name__}：{exc}）。加 --debug 可查看详细信息。", err=True)
            sys.exit(EXIT_FAILED)

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


@cli.command(help="新建工作区：写入 tuanjian.toml、《名单与目标.xlsx》（实施方案的默认名单与目标）和各文件夹。")
@click.argument("directory", metavar="文件夹", type=click.Path(file_okay=False, path_type=Path))
@reports_errors
def init(directory: Path) -> None:
    from .config import FOLDER_KEYS
    from .workspace import init_workspace

    ws = init_workspace(directory)
    _echo(f"已新建工作区：{ws.root}")
    _echo(f"  设置：{ws.root / 'tuanjian.toml'}")
    _echo(f"  名单与目标：{ws.root / ws.settings.roster.file}")
    folders = "、".join(f"{getattr(ws.settings.folders, k)}/" for k in FOLDER_KEYS)
    _echo(f"  文件夹：{folders}")
    _echo(f"下一步：tuanjian templates build --workspace {directory}")


@cli.group(help="报表模板：生成、列出。")
def templates() -> None:
    pass


@templates.command("build", help="按工作区的名单与设置生成各报表当前版本的空白模板（默认放在“模板”文件夹）。")
@workspace_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="文件夹",
              help="输出文件夹（默认为工作区的“模板”文件夹）")
@reports_errors
def templates_build(workspace: Path, out_dir: Path | None) -> None:
    from .workspace import build_workspace_templates

    written = build_workspace_templates(workspace, out_dir)
    _echo(f"已生成 {len(written)} 个模板：")
    for p in written:
        _echo(f"  {p}")


@templates.command("list", help="列出所有报表模板的版本、指纹和字段数。")
@json_option
@reports_errors
def templates_list(as_json: bool) -> None:
    from .workspace import list_templates

    rows = list_templates()
    if as_json:
        _echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for r in rows:
        _echo(f"{r['form_id']:<20} v{r['version']:<3} 字段 {r['fields']:>2} 个  指纹 {r['fingerprint'][:16]}  {r['title']}")


@templates.command("diff", help="列出一张报表两个版本之间的变化，如：tuanjian templates diff visit_report 1 2")
@click.argument("form_id", metavar="报表")
@click.argument("old", metavar="旧版本", type=int)
@click.argument("new", metavar="新版本", type=int)
@reports_errors
def templates_diff(form_id: str, old: int, new: int) -> None:
    from .specs import SpecRegistry
    from .versions import diff_specs

    for line in diff_specs(SpecRegistry(), form_id, old, new):
        _echo(line)


@cli.command(help="把已填写的旧版本报表转到当前版本的模板上：原有内容照搬，新增项留空并标出；原文件不动。")
@click.argument("files", metavar="文件...", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False,
                                                                                     path_type=Path))
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="文件夹",
              help="输出文件夹（默认：与原文件相同）")
@workspace_option
@reports_errors
def upgrade(files: tuple[Path, ...], out: Path | None, workspace: Path) -> None:
    from .versions import upgrade as run

    failed = 0
    for item in run(workspace, list(files), out):
        if item.target:
            _echo(f"已升级：{item.source.name} → {item.target}")
        else:
            failed += any(i.severity == "error" for i in item.issues)
            for issue in item.issues:
                _echo(issue.render(), err=issue.severity == "error")
    sys.exit(EXIT_FAILED if failed else EXIT_OK)


@cli.command(help="校验收到的报表文件（可给文件或文件夹），列出每个问题的位置；有错的可生成退回件。")
@click.argument("paths", metavar="路径...", nargs=-1, required=True, type=click.Path(path_type=Path))
@workspace_option
@click.option("--return-dir", "return_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              metavar="文件夹", help="为有错误的文件生成退回件和说明，放在此文件夹")
@json_option
@reports_errors
def validate(paths: tuple[Path, ...], workspace: Path, return_dir: Path | None, as_json: bool) -> None:
    from .workspace import validate_submissions

    outcome = validate_submissions(list(paths), workspace, return_dir)
    if as_json:
        _echo(json.dumps(outcome.to_dict(), ensure_ascii=False, indent=2, default=str))
    else:
        for line in outcome.lines():
            _echo(line)
    sys.exit(EXIT_OK if outcome.all_valid else EXIT_FAILED)


def _as_of(ctx, param, value):
    if value is None:
        return None
    import datetime as dt

    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"应为日期，如 2026-04-20，现为“{value}”") from None


def as_of_option(fn):
    return click.option("--as-of", "as_of", callback=_as_of, metavar="日期",
                        help="按哪一天判断按时/逾期/未报（默认今天），如 2026-04-20")(fn)


@cli.command(help="一键汇总：把收件箱（或给定路径）里的文件登记、校验，生成汇总表和退回件，并统计未报、逾期。")
@click.argument("paths", metavar="[路径...]", nargs=-1, type=click.Path(path_type=Path))
@workspace_option
@click.option("-o", "--output", "out", type=click.Path(dir_okay=False, path_type=Path), default=None, metavar="文件",
              help="汇总表保存为（默认：工作区“汇总”文件夹里的 汇总表.xlsx）")
@as_of_option
@click.option("--fetch", is_flag=True, help="先从邮箱收取新邮件的报表附件（设置见 tuanjian.toml 的 [mail]）")
@click.option("--open", "open_excel", is_flag=True, help="汇总后在 Excel 中打开汇总表（Windows/macOS，需要 Excel 联动组件）")
@json_option
@reports_errors
def merge(paths: tuple[Path, ...], workspace: Path, out: Path | None, as_of, fetch: bool, open_excel: bool,
          as_json: bool) -> None:
    from .merge import merge as run_merge

    excel_problem = None
    if open_excel:
        from . import excel

        excel_problem = excel.unavailable()
        if excel_problem is None:  # Excel would keep the old master locked: close it first, saving nothing
            from .config import Workspace
            from .merge import MASTER_NAME

            try:
                excel.close_if_open(out or Workspace.load(workspace).folder("master") / MASTER_NAME)
            except Exception as exc:  # Excel/COM trouble must not cost the merge
                excel_problem = f"未能通过 Excel 关闭旧的汇总表（{type(exc).__name__}）"

    if fetch:
        from .fetchmail import fetch_mail

        fetched = fetch_mail(workspace)
        if not as_json:
            _echo(fetched.summary())

    bar = None
    show = sys.stdout.isatty() and not as_json

    def progress(n: int, total: int, item) -> None:
        nonlocal bar
        if show and bar is None:
            bar = click.progressbar(length=total, label="登记与校验", show_pos=True)
            bar.__enter__()
        if bar is not None:
            bar.update(1)

    try:
        result = run_merge(workspace, list(paths) or None, out=out, as_of=as_of, progress=progress)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    if as_json:
        _echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
    else:
        _echo(result.summary())
        for item in result.invalid:
            first = next(i for i in item.result.issues if i.severity == "error")
            _echo(f"  退回  {item.path.name}：{first.render()}")
        for piece in result.returns:
            _echo(f"  退回件：{piece.workbook or piece.message}")
        for note in result.notes:
            _echo(note.render(), err=True)
        _echo(f"汇总表：{result.master}")
    if open_excel and result.master:
        if excel_problem:
            _echo(f"{excel_problem}；请手动打开：{result.master}")
        else:
            from . import excel

            try:
                excel.open_and_calculate(result.master)
            except Exception as exc:
                _echo(f"未能在 Excel 中打开（{type(exc).__name__}）；请手动打开：{result.master}")
    sys.exit(EXIT_OK if result.master else EXIT_FAILED)


@cli.command("fetch-mail", help="从团市委邮箱收取报表附件（每封邮件只收一次，以到达时间为收到时间）。")
@click.option("--since", callback=_as_of, metavar="日期", default=None, help="只看这一天及以后到达的邮件，如 2026-04-01")
@click.option("--folder", default=None, metavar="文件夹", help="邮箱文件夹（默认见 tuanjian.toml，一般为 INBOX）")
@click.option("--dry-run", is_flag=True, help="只列出会收取的邮件和附件，不登记")
@workspace_option
@reports_errors
def fetch_mail_command(since, folder: str | None, dry_run: bool, workspace: Path) -> None:
    from .fetchmail import fetch_mail

    result = fetch_mail(workspace, since=since, folder=folder, dry_run=dry_run)
    _echo(result.summary())
    for m in result.taken:
        names = "、".join(s.name for s in m.submissions) or "（无报表附件）"
        _echo(f"  {m.arrived:%Y-%m-%d %H:%M}  {m.sender or '?'}  {m.subject}：{names}")
    bad = [i for i in result.ingested if i.outcome == "new" and not i.valid]
    if bad:
        _echo(f"其中 {len(bad)} 份有错误，运行 tuanjian merge 生成退回件和汇总表。")


@cli.command(help="报送情况：按报表和报送期列出未报、逾期的单位，并给出可直接发送的催报文字。")
@workspace_option
@click.option("--period", metavar="报送期", default=None, help="只看某一期，如 2026-03 或 2026-Q1")
@as_of_option
@json_option
@reports_errors
def status(workspace: Path, period: str | None, as_of, as_json: bool) -> None:
    from .merge import status as run_status
    from .status import STATUS_ZH, reminders

    day, items, ws = run_status(workspace, as_of=as_of, period=period)
    if as_json:
        _echo(json.dumps({"as_of": day.isoformat(), "items": [i.to_dict() for i in items]}, ensure_ascii=False, indent=2))
        return
    names = {s.form_id: s.display_name for s in ws.registry.latest()}
    groups: dict[tuple, list] = {}
    for i in items:
        groups.setdefault((i.form_id, i.period), []).append(i)
    _echo(f"报送情况（截至 {day.isoformat()}）")
    for (form_id, p), rows in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        counts = {s: [r.unit for r in rows if r.status == s] for s in STATUS_ZH}
        dues = " / ".join(sorted({r.due.isoformat() for r in rows}))  # unit types may be due on different days
        line = f"{names.get(form_id, form_id)} {p.label}（截止 {dues}）："
        line += "，".join(f"{STATUS_ZH[s]} {len(u)}" for s, u in counts.items() if u)
        _echo(line)
        for s in ("missing", "late"):
            if counts[s]:
                _echo(f"    {STATUS_ZH[s]}：{'、'.join(counts[s])}")
    texts = reminders(ws, items, day)
    if texts:
        _echo("")
        _echo("催报文字（可直接复制发送）：")
        for text in texts.values():
            _echo("")
            _echo(text)


@cli.command(help="下发：为每个报送单位生成本期的表（单位、报送期、截止日期已填好并锁定）和填报说明。")
@click.option("--period", required=True, metavar="报送期", help="如 2026-03（附件1）或 2026-Q1（附件2、目标任务台账）")
@click.option("--form", "forms", multiple=True, metavar="报表", help="只下发某张表，如 visit_report；可重复")
@click.option("--units", default=None, metavar="单位,...", help="只下发给这些单位（编号或名称，逗号分隔）")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="文件夹",
              help="输出文件夹（默认：工作区“下发/报送期”）")
@click.option("--zip", "make_zip", is_flag=True, help="每个单位另打一个 zip 包（文件名用 UTF-8，Windows 可正常显示）")
@click.option("--send", is_flag=True, help="按名单中的邮箱发送（发信设置见 tuanjian.toml 的 [mail]）；不加则只生成文件")
@workspace_option
@reports_errors
def distribute(period: str, forms: tuple[str, ...], units: str | None, out: Path | None, make_zip: bool,
               send: bool, workspace: Path) -> None:
    from .distribute import distribute as run

    wanted = [u.strip() for u in units.replace("，", ",").split(",") if u.strip()] if units else None
    result = run(workspace, period, forms=list(forms) or None, units=wanted, out=out, make_zip=make_zip, send=send)
    files = sum(len(p.files) for p in result.packages)
    _echo(f"已为 {len(result.packages)} 个单位生成 {result.period.label} 的 {files} 份表：{result.folder}")
    for pkg in result.packages:
        verb = "发送至" if result.sent is not None else "将发送至"
        where = f"{verb} {pkg.unit.email}" if pkg.unit.email else "名单中没有邮箱，请另行发送"
        _echo(f"  {pkg.unit.name}：{len(pkg.files)} 份（{where}）" + (f"  {pkg.zip.name}" if pkg.zip else ""))
    if result.without_address:
        _echo(f"没有邮箱的单位 {len(result.without_address)} 个：{'、'.join(u.name for u in result.without_address)}"
              "（可在《名单与目标.xlsx》的“单位名单”中补填）")
    if result.sent is not None:
        _echo(f"已发送 {len(result.sent.sent)} 个单位：{'、'.join(u.name for u in result.sent.sent) or '无'}")
        for unit, why in result.sent.failed:
            _echo(f"  发送失败：{unit.name}（{unit.email}）：{why}", err=True)
        if result.sent.failed:
            sys.exit(EXIT_FAILED)


@cli.command(help="演示：在新文件夹里用实施方案的默认名单跑一遍完整流程（建模板、半年的模拟报送、汇总、催报）。")
@click.argument("directory", metavar="文件夹", type=click.Path(file_okay=False, path_type=Path))
@reports_errors
def demo(directory: Path) -> None:
    from .demo import run_demo

    result = run_demo(directory)
    m = result.merge
    _echo(f"演示工作区：{result.root}（模拟 2026 年 1—6 月的报送，统计日 {m.as_of.isoformat()}）")
    _echo(m.summary())
    _echo(f"汇总表：{m.master}")
    for piece in m.returns:
        _echo(f"退回件：{piece.workbook or piece.message}")
    _echo(f"催报文字：{len(result.reminders)} 个单位，运行 tuanjian status -w {directory} --as-of {m.as_of.isoformat()} 查看")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script: Chinese usage errors, exit 2."""
    try:
        cli.main(args=argv, prog_name="tuanjian", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.exceptions.Abort:
        _echo("已取消。", err=True)
        return EXIT_FAILED
    except click.UsageError as exc:
        _echo(f"用法错误：{_usage_zh(exc.format_message())}", err=True)
        _echo("运行 tuanjian --help 查看用法。", err=True)
        return EXIT_USAGE
    except click.ClickException as exc:
        _echo(f"错误：{_usage_zh(exc.format_message())}", err=True)
        return exc.exit_code
    except BrokenPipeError:  # output piped into head or the like, which stopped reading: not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
