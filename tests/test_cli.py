"""The command line as a user meets it: exit codes and the Chinese lines they read."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from tuanjian_xlsx.cli import cli, main
from tuanjian_xlsx.workspace import list_templates


def run(args, **kw):
    return CliRunner().invoke(cli, args, prog_name="tuanjian", **kw)


def test_init_then_build_makes_three_templates(tmp_path):
    ws = tmp_path / "演示"
    r = run(["init", str(ws)])
    assert r.exit_code == 0, r.output
    assert f"已新建工作区：{ws}" in r.output
    # a committee starting mid-year is told from when units count as owing reports, and how to count from now
    today = dt.date.today()
    start = dt.date.today() - dt.timedelta(days=62)
    assert f"应报从{start.year}年1月起统计" in r.output
    assert f'start = "" 改为 start = "{today.year}-{today.month:02d}"' in r.output
    r = run(["templates", "build", "--workspace", str(ws)])
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[0] == "已生成 3 个模板："
    names = sorted(p.name for p in (ws / "模板").iterdir())
    assert names == ["活力团建目标任务台账_v1.xlsx", "附件1_团干部走基层情况报告单_v1.xlsx", "附件2_共青团工作观摩情况报告单_v1.xlsx"]


def test_init_refuses_to_overwrite(tmp_path):
    assert run(["init", str(tmp_path)]).exit_code == 0
    r = run(["init", str(tmp_path)])
    assert r.exit_code == 1
    assert "错误：tuanjian.toml：工作区里已有此文件，为免覆盖，未做任何改动" in r.output


def test_bad_config_is_a_chinese_line_with_place_and_exit_1(tmp_path):
    run(["init", str(tmp_path)])
    toml = tmp_path / "tuanjian.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace("inbox =", "inbxo ="), encoding="utf-8")
    r = run(["templates", "build", "-w", str(tmp_path)])
    assert r.exit_code == 1
    line = next(i for i, t in enumerate(toml.read_text(encoding="utf-8").splitlines(), 1) if "inbxo" in t)
    assert f"错误：tuanjian.toml · 第 {line} 行 · folders.inbxo：未知的设置项“folders.inbxo”（是否拼写有误？）" in r.output
    assert "Traceback" not in r.output


def test_not_a_workspace(tmp_path):
    r = run(["templates", "build", "-w", str(tmp_path)])
    assert r.exit_code == 1 and "找不到文件" in r.output and "tuanjian init" in r.output


def test_list_json_equals_library():
    r = run(["templates", "list", "--json"])
    assert r.exit_code == 0
    assert json.loads(r.output) == {"ok": True, "templates": list_templates()}
    r = run(["templates", "list"])
    assert "visit_report" in r.output and "附件1 团干部走基层情况报告单" in r.output


def test_usage_error_is_chinese_with_exit_2(capsys):
    assert main(["templates", "build", "--bogus"]) == 2
    err = capsys.readouterr().err
    assert "用法错误：没有这个选项：--bogus" in err
    assert main(["init"]) == 2
    assert "用法错误：缺少参数 文件夹" in capsys.readouterr().err


def test_help_is_chinese():
    r = run(["--help"])
    assert r.exit_code == 0
    assert r.output.startswith("用法：tuanjian [选项] 命令")
    assert "选项：" in r.output and "命令：" in r.output and "显示本帮助" in r.output


def test_python_dash_m(tmp_path):
    out = subprocess.run([sys.executable, "-m", "tuanjian_xlsx", "templates", "list"], capture_output=True,
                         text=True, encoding="utf-8", check=True).stdout
    assert "target_tracker" in out


def _workspace_with_files(tmp_path):
    import datetime as dt

    from conftest import fill

    run(["init", str(tmp_path / "ws")])
    run(["templates", "build", "-w", str(tmp_path / "ws")])
    template = tmp_path / "ws" / "模板" / "附件1_团干部走基层情况报告单_v1.xlsx"
    good = {"报送单位": "源汇区团委", "报送期": "2026-03", "填表时间": dt.datetime(2026, 3, 5), "姓名": "张三",
            "单位职务": "书记", "走访团组织名称": "一中团委", "走访形式": "座谈交流", "团干部": 2, "团员青年": 15,
            "基层团组织工作开展情况": "好", "基层团组织工作亮点": "多"}
    inbox = tmp_path / "ws" / "收件箱"
    fill(template, inbox / "好.xlsx", good)
    fill(template, inbox / "坏.xlsx", {**good, "团干部": -2})
    return tmp_path / "ws", inbox


def test_validate_exit_codes_lines_and_returns(tmp_path):
    ws, inbox = _workspace_with_files(tmp_path)
    r = run(["validate", str(inbox / "好.xlsx"), "-w", str(ws)])
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[-1] == "共 1 个文件：通过 1 个，有错误 0 个。"
    r = run(["validate", str(inbox), "-w", str(ws), "--return-dir", str(ws / "退回")])
    assert r.exit_code == 1
    assert "    错误  走基层报告单 · C9  “团干部”不能为负数，现为 -2" in r.output.splitlines()
    assert "共 2 个文件：通过 1 个，有错误 1 个。" in r.output
    assert (ws / "退回" / "源汇区团委_2026-03_附件1_团干部走基层情况报告单_退回.xlsx").exists()


def test_validate_json_equals_library(tmp_path):
    from tuanjian_xlsx.workspace import validate_submissions

    ws, inbox = _workspace_with_files(tmp_path)
    r = run(["validate", str(inbox), "-w", str(ws), "--json"])
    assert r.exit_code == 1
    data = json.loads(r.output)
    assert (data.pop("ok"), data["error"]["code"]) == (False, "negative")  # the first error of the first bad file
    assert data == validate_submissions([inbox], ws).to_dict()
    assert set(data["files"][0]) == {"file", "sha256", "form_id", "version", "unit", "period", "records", "valid", "issues"}
    (issue,) = next(f for f in data["files"] if not f["valid"])["issues"]
    assert (issue["code"], issue["cell"], issue["field"]) == ("negative", "C9", "团干部")


def test_validate_missing_path_and_usage(tmp_path, capsys):
    ws, _ = _workspace_with_files(tmp_path)
    r = run(["validate", str(tmp_path / "没有.xlsx"), "-w", str(ws)])
    assert r.exit_code == 1 and "找不到文件" in r.output
    assert main(["validate"]) == 2
    assert "缺少参数 路径..." in capsys.readouterr().err


def test_progress_bar_on_a_terminal_ends_at_every_file(tmp_path, templates):
    """On a terminal merge shows a bar that ends at all the files received: the library reports how many are done
    once per batch (a copy of content already seen counts too), so the bar moves to that count, not one step."""
    import os
    import pty
    import shutil

    ws = tmp_path / "ws"
    assert run(["init", str(ws)]).exit_code == 0
    for k in range(3):  # three copies of one (blank) template: one new file, two duplicates, recorded in one batch
        shutil.copy(templates["visit_report"], ws / "收件箱" / f"copy{k}.xlsx")
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "tuanjian_xlsx", "merge", "-w", str(ws), "--as-of", "2026-04-20"],
                            stdout=follower, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    proc.wait(timeout=120)
    text = shown.decode("utf-8", "replace")
    assert "登记与校验" in text and "3/3" in text, text


@pytest.mark.parametrize("group", [[], ["ledger"], ["templates"]])
def test_every_command_in_a_list_says_what_it_does(group):
    """click cuts a command's line between words; Chinese has none, so assess, validate, watch and ledger void
    were listed as “...” alone."""
    r = CliRunner().invoke(cli, [*group, "--help"])
    listed = r.output.split("命令：", 1)[1].strip().splitlines()
    assert listed and all(len(line.split(None, 1)) == 2 and not line.split(None, 1)[1].startswith("...")
                          for line in listed), listed
