"""Bad input at the command line ends in a Chinese line and an exit code, never a traceback or 内部错误; with
--json, in exactly one JSON object on stdout."""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import re
import sys

import click
import pytest
from click.testing import CliRunner

from tuanjian_xlsx.cli import main, reports_errors
from tuanjian_xlsx.plan import Workspace
from tuanjian_xlsx.issues import ConfigError, TuanjianError
from tuanjian_xlsx.periods import FIRST_DAY, FIRST_YEAR, LAST_DAY, LAST_YEAR, Period, parse_period
from tuanjian_xlsx.workspace import init_workspace
from tuanjian_xlsx.xlsxio import atomic_write, os_reason

# words of click's English messages (8.1 to 8.5) that must never reach a user
ENGLISH = re.compile(r"Error|Usage|Invalid|Missing|No such|does not|is not|requires|Did you|Got unexpected|Traceback|"
                     r"Choose from|Possible options|Aborted")


def run(capsys, args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "内部错误" not in out + err
    return code, out, err


def run_json(capsys, args):
    code, out, err = run(capsys, [*args, "--json"])
    assert err == ""
    return code, json.loads(out)  # one object: two would not parse


@pytest.fixture
def ws(tmp_path):
    init_workspace(tmp_path / "ws")
    return tmp_path / "ws"


# --- dates and periods outside what the calendar arithmetic can do ------------------------------------------


@pytest.mark.parametrize("args, shown", [
    (["status", "--as-of", "9999-12-31"], "选项 --as-of 的值无效：日期应在 1901-01-01 至 9998-12-31 之间，现为 9999-12-31"),
    (["status", "--as-of", "0001-01-01"], "选项 --as-of 的值无效：日期应在 1901-01-01 至 9998-12-31 之间，现为 0001-01-01"),
    (["merge", "--as-of", "9999-12-31"], "选项 --as-of 的值无效：日期应在"),
    (["merge", "--as-of", "2026-13-01"], "选项 --as-of 的值无效：应为日期，如 2026-04-20，现为“2026-13-01”"),
    (["fetch-mail", "--since", "0001-01-01"], "选项 --since 的值无效：日期应在"),
    (["status", "--period", "0000-01"], "选项 --period 的值无效：应为报送期，如 2026-03、2026-Q1 或 2026（年份在 1900—9998 之间），现为“0000-01”"),
    (["status", "--period", "9999-12"], "现为“9999-12”"),
    (["distribute", "--period", "9999-12"], "现为“9999-12”"),
    (["distribute", "--period", "0000-Q1"], "现为“0000-Q1”"),
    (["distribute", "--period", "三月"], "现为“三月”"),
])
def test_dates_and_periods_out_of_range_are_usage_errors(capsys, ws, args, shown):
    code, out, err = run(capsys, [*args, "-w", ws])
    assert code == 2 and out == ""
    assert err.splitlines()[0].startswith("用法错误：") and shown in err
    assert f"运行 tuanjian {args[0]} --help 查看用法。" in err


def test_the_bounds_themselves_work(capsys, ws):
    for day in (FIRST_DAY, LAST_DAY):
        code, data = run_json(capsys, ["status", "-w", ws, "--as-of", day.isoformat()])
        assert code == 0 and data["ok"] and data["as_of"] == day.isoformat() and data["items"]
    for period in (f"{LAST_YEAR}-12", f"{FIRST_YEAR}-01"):
        code, out, _ = run(capsys, ["distribute", "-w", ws, "--period", period, "--units", "源汇区团委"])
        assert code == 0 and "已为 1 个单位生成" in out


def test_parse_period_refuses_years_whose_due_dates_cannot_exist():
    assert [parse_period(t) for t in ("0000-01", "9999-12", "1899-12", "9999", "0001-Q1")] == [None] * 5
    assert parse_period("1900-01") == Period(1900, "month", 1)
    for text in (f"{LAST_YEAR}-12", f"{LAST_YEAR}-Q4", f"{LAST_YEAR}"):
        assert parse_period(text).due(31, 12) == dt.date(LAST_YEAR + 1, 12, 31)  # the furthest due date exists


@pytest.mark.parametrize("typed", ["0000-01", "9999-12", "0000年第1季度"])
def test_a_period_cell_out_of_range_is_an_issue(capsys, ws, typed):
    from conftest import fill

    main(["templates", "build", "-w", str(ws)])
    capsys.readouterr()
    template = ws / "模板" / "附件1_团干部走基层情况报告单_v1.xlsx"
    path = fill(template, ws / "收件箱" / "坏.xlsx", {"报送单位": "源汇区团委", "报送期": typed, "姓名": "张三"})
    code, data = run_json(capsys, ["validate", path, "-w", ws])
    assert code == 1 and data["ok"] is False
    assert "not-a-period" in {i["code"] for f in data["files"] for i in f["issues"]}


# --- click's own messages, in Chinese --------------------------------------------------------------------


@pytest.mark.parametrize("args, shown", [
    (["templates", "build", "--bogus"], "用法错误：没有这个选项：--bogus。"),
    (["status", "--peroid", "2026-03"], "用法错误：没有这个选项：--peroid。是否想用 --period？"),
    (["frob"], "用法错误：没有这个命令：frob。"),
    (["init"], "用法错误：缺少参数 文件夹。"),
    (["validate"], "用法错误：缺少参数 路径...。"),
    (["distribute"], "用法错误：缺少选项 --period。"),
    (["status", "--as-of"], "用法错误：选项 --as-of 需要一个值。"),
    (["templates", "list", "--json=yes"], "用法错误：选项 --json 不需要值。"),
    (["templates", "diff", "visit_report", "一", "2"], "用法错误：参数 旧版本 的值无效：应为整数，现为“一”"),
    (["templates", "list", "多余"], "用法错误：多余的参数：多余"),
    (["upgrade", "没有这个文件.xlsx"], "用法错误：参数 文件... 的值无效：文件不存在：没有这个文件.xlsx"),
    (["upgrade", "{tmp}"], "用法错误：参数 文件... 的值无效：{tmp} 是文件夹，这里应为文件"),
    (["init", "{tmp}/ws/tuanjian.toml"], "用法错误：参数 文件夹 的值无效：{tmp}/ws/tuanjian.toml 是文件，这里应为文件夹"),
    (["merge", "-w", "{tmp}/ws", "-o", "{tmp}"], "用法错误：选项 -o / --output 的值无效：{tmp} 是文件夹，这里应为文件"),
    (["upgrade", "C:\\报表\\团's.xlsx"], "文件不存在：C:\\报表\\团's.xlsx"),  # as typed, not click's repr()
])
def test_click_messages_are_chinese(capsys, ws, args, shown):
    tmp = ws.parent
    code, out, err = run(capsys, [a.format(tmp=tmp) for a in args])
    assert code == 2 and out == ""
    assert shown.format(tmp=tmp) in err.splitlines()[0]
    assert not ENGLISH.search(err), err


def test_a_group_without_its_command_shows_its_help_in_chinese(capsys):
    code, out, err = run(capsys, ["templates"])
    assert code in (0, 2)  # click 8.1 exits 0 here, 8.2+ 2
    assert "用法：tuanjian templates [选项] 命令" in out + err and not ENGLISH.search(out + err)


@pytest.mark.parametrize("message, chinese", [
    ("'c' is not one of 'a', 'b'.", "“c”不是可选的值（可选：a、b）"),
    ("'c' is not 'a'.", "“c”不是可选的值（可选：a）"),
    ("9 is not in the range 1<=x<=3.", "9 不在范围 1<=x<=3 内"),
    ("'x' is not a valid float.", "应为数字，现为“x”"),
    ("'x' is not a valid integer range.", "应为整数，现为“x”"),
    ("'maybe' is not a valid boolean. Recognized values: 0, 1, false, true", "应为 true 或 false，现为“maybe”"),
    ("No such option: --x Did you mean --y?", "没有这个选项：--x。是否想用 --y？"),  # click 8.1
    ("No such option: --x (Possible options: --y, --z)", "没有这个选项：--x。（可能是：--y、--z）"),  # click 8.1
    ("No such option '--x'. (Did you mean one of: '--y', '--z'?)", "没有这个选项：--x。（是否想用：--y、--z？）"),
    ("Missing option '-o' / '--output'. Choose from:\n\ta,\n\tb", "缺少选项 -o / --output。可选：a、b"),
    ("Invalid value for '-o' / '--output': Path 'C:\\\\x' does not exist.", "选项 -o / --output 的值无效：路径不存在：C:\\x"),
    ("Option '--x' requires 2 arguments.", "选项 --x 需要 2 个值。"),
    ("Missing command.", "缺少命令。"),
])
def test_click_texts_of_every_version_translate(message, chinese):
    from tuanjian_xlsx.cli import _usage_zh

    assert _usage_zh(message) == chinese


# --- writing where one cannot ------------------------------------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/sys refuses files even to root on Linux only")
def test_merge_into_a_real_unwritable_folder(capsys, ws):
    code, out, err = run(capsys, ["merge", "-w", ws, "-o", "/sys/汇总表.xlsx"])
    assert code == 1 and "错误：无法在文件夹 /sys 中新建文件（没有写入权限）" in err
    code, data = run_json(capsys, ["merge", "-w", ws, "-o", "/sys/汇总表.xlsx"])
    assert code == 1 and data["ok"] is False
    assert (data["error"]["code"], data["error"]["message"]) == ("folder-not-writable",
                                                                  "无法在文件夹 /sys 中新建文件（没有写入权限）")


def test_merge_where_a_file_stands_in_for_the_folder(capsys, ws):
    code, out, err = run(capsys, ["merge", "-w", ws, "-o", ws / "tuanjian.toml" / "汇总表.xlsx"])
    assert code == 1 and f"错误：无法在文件夹 {ws / 'tuanjian.toml'} 中新建文件（已有同名的文件）" in err


def test_a_file_name_too_long_is_named_in_chinese(capsys, ws):
    code, out, err = run(capsys, ["merge", "-w", ws, "-o", ws / ("汇" * 200 + ".xlsx")])
    assert code == 1 and err.startswith("错误：") and "（文件名过长）" in err


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="mounting a small disk needs root")
def test_disk_full_leaves_no_temporary_file(tmp_path):
    import subprocess

    disk = tmp_path / "小盘"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], check=True)
    try:
        with pytest.raises(TuanjianError) as exc:
            atomic_write(disk / "汇总表.xlsx", b"x" * 200_000)
        (issue,) = exc.value.issues
        assert (issue.code, issue.message) == ("cannot-write", f"无法写入 {disk / '汇总表.xlsx'}（磁盘空间不足）")
        assert list(disk.iterdir()) == []
    finally:
        subprocess.run(["umount", str(disk)], check=False)


@pytest.mark.parametrize("exc, reason", [
    (PermissionError(errno.EACCES, "Permission denied"), "没有写入权限"),
    (OSError(errno.EROFS, "Read-only file system"), "没有写入权限"),
    (OSError(errno.ENOSPC, "No space left on device"), "磁盘空间不足"),
    (OSError(errno.ENAMETOOLONG, "File name too long"), "文件名过长"),
    (FileExistsError(errno.EEXIST, "File exists"), "已有同名的文件"),
    (OSError(errno.ELOOP, "本机的说法"), "本机的说法"),  # else the system's own words
    (OSError("no errno"), "OSError"),
])
def test_os_reason(exc, reason):
    assert os_reason(exc) == reason


def test_an_oserror_reaching_the_cli_names_its_path(capsys):
    @click.command()
    @reports_errors
    def boom():
        raise PermissionError(errno.EACCES, "Permission denied", "/srv/报表/汇总表.xlsx")

    r = CliRunner().invoke(boom, [])
    assert r.exit_code == 1
    assert r.output == "错误：汇总表.xlsx：无法读写 /srv/报表/汇总表.xlsx（没有写入权限）\n"

    @click.command()
    @reports_errors
    def unplugged():
        raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")

    r = CliRunner().invoke(unplugged, [])
    assert r.exit_code == 1 and r.output == "错误：系统拒绝了这项操作（连接被拒绝）\n"


# --- --json: one object on stdout, whatever the exit ------------------------------------------------------


def test_json_on_success(capsys, ws):
    code, data = run_json(capsys, ["templates", "list"])
    assert code == 0 and data["ok"] is True and {t["form_id"] for t in data["templates"]} >= {"visit_report"}
    code, data = run_json(capsys, ["status", "-w", ws, "--as-of", "2026-04-20"])
    assert code == 0 and data["ok"] is True and data["as_of"] == "2026-04-20"


@pytest.mark.parametrize("args, exit_code, error_code", [
    (["status", "--period", "9999-12"], 2, "usage"),
    (["merge", "--bogus"], 2, "usage"),
    (["status", "--as-of"], 2, "usage"),  # --json after a value-taking option: still seen
    (["validate", "{tmp}/没有.xlsx"], 1, "file-missing"),
    (["merge", "-o", "{tmp}/ws/tuanjian.toml/汇总表.xlsx"], 1, "folder-not-writable"),
])
def test_json_on_failure(capsys, ws, args, exit_code, error_code):
    tmp = ws.parent
    code, data = run_json(capsys, [a.format(tmp=tmp) for a in args] + ["-w", ws])
    assert code == exit_code and data["ok"] is False
    assert data["error"]["code"] == error_code and re.search(r"[\u4e00-\u9fff]", data["error"]["message"])
    assert not ENGLISH.search(data["error"]["message"])


def test_json_carries_every_issue(capsys, ws):
    toml = ws / "tuanjian.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace("inbox =", "inbxo =").replace("outbox =", "outbxo ="),
                    encoding="utf-8")
    code, data = run_json(capsys, ["status", "-w", ws])
    assert code == 1 and data["ok"] is False
    assert sorted(i["field"] for i in data["issues"]) == ["folders.inbxo", "folders.outbxo"]
    assert data["error"] == data["issues"][0] and data["error"]["code"] == "unknown-key"


# --- tuanjian.toml as Windows saves it, or as an attacker writes it ------------------------------------------


@pytest.mark.parametrize("encoding", ["gbk", "utf-8-sig", "utf-16"])
def test_settings_saved_by_notepad_are_read(ws, encoding):
    toml = ws / "tuanjian.toml"
    text = toml.read_text(encoding="utf-8")
    assert re.search(r"[\u4e00-\u9fff]", text)  # Chinese in it, so GBK differs from UTF-8
    expected = Workspace.load(ws).settings
    toml.write_bytes(text.encode(encoding))
    assert Workspace.load(ws).settings == expected


def test_settings_in_no_known_encoding(capsys, ws):
    (ws / "tuanjian.toml").write_bytes(b"a = \"\x80\xff\xfe\x81\"\n")
    with pytest.raises(ConfigError) as exc:
        Workspace.load(ws)
    assert exc.value.issues[0].code == "toml-encoding"
    code, out, err = run(capsys, ["status", "-w", ws])
    assert code == 1 and "错误：tuanjian.toml：文件既不是 UTF-8 也不是 GBK 编码" in err and "UTF-8" in err


@pytest.mark.parametrize("text", [
    "a = " + "[" * 100_000 + "]" * 100_000,
    "a = " + "{b = " * 50_000 + "1" + "}" * 50_000,
    "x" + ".y" * 100_000 + " = 1",  # not deep for the parser's stack, but quadratic time in tomllib
    "[" + ".".join(["k"] * 100_000) + "]",
])
def test_settings_nested_too_deep(capsys, ws, text):
    (ws / "tuanjian.toml").write_text(text, encoding="utf-8")
    code, out, err = run(capsys, ["status", "-w", ws])
    assert code == 1 and "错误：tuanjian.toml" in err and "配置文件语法错误：嵌套层数过多" in err


def test_ctrl_c_is_a_chinese_line_or_json(ws):
    """A real Ctrl+C (SIGINT) while merge --fetch waits on a mail server that never answers: one Chinese line,
    or with --json one JSON object; exit 1."""
    import signal
    import socket
    import subprocess

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    toml = ws / "tuanjian.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('imap_host = ""', 'imap_host = "127.0.0.1"')
                    .replace("imap_port = 993", f"imap_port = {server.getsockname()[1]}")
                    .replace('imap_security = "ssl"', 'imap_security = "none"'), encoding="utf-8")
    env = dict(os.environ, TUANJIAN_IMAP_PASSWORD="x")
    try:
        for extra in ([], ["--json"]):
            proc = subprocess.Popen([sys.executable, "-m", "tuanjian_xlsx", "merge", "--fetch", "-w", str(ws), *extra],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            conn, _ = server.accept()  # it is now waiting for the server's greeting
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
            conn.close()
            assert proc.returncode == 1, (out, err)
            assert "Traceback" not in out + err and not ENGLISH.search(err)
            if extra:
                assert json.loads(out)["error"]["code"] == "cancelled"
            else:
                assert err.strip().endswith("已取消。")
    finally:
        server.close()

def test_an_as_of_decades_after_the_reporting_start_is_refused_not_counted(capsys, ws):
    toml = ws / "tuanjian.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('start = ""', 'start = "2026-01"'), encoding="utf-8")
    code, out, err = run(capsys, ["status", "-w", ws, "--as-of", "3026-04-20"])  # a typo for 2026
    assert code == 1 and "统计日 3026-04-20 距报送起始期 2026-01 超过 20 年" in err
    code, out, err = run(capsys, ["status", "-w", ws, "--as-of", "2026-04-20"])
    assert code == 0
