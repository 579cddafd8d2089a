"""The command line as a user meets it: exit codes and the Chinese lines they read."""

from __future__ import annotations

import json
import subprocess
import sys

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
    assert json.loads(r.output) == list_templates()
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
