"""Every command is one library call: its --json output is that call's result, to_dict(), plus "ok"."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from conftest import fill
from tuanjian_xlsx import api
from tuanjian_xlsx.cli import cli

VISIT = {"报送单位": "源汇区团委", "报送期": "2026-03", "填表时间": dt.datetime(2026, 3, 5), "姓名": "张三",
         "单位职务": "书记", "走访团组织名称": "一中团委", "走访形式": "座谈交流", "团干部": 2, "团员青年": 15,
         "基层团组织工作开展情况": "好", "基层团组织工作亮点": "多"}


def cli_json(args: list) -> tuple[int, dict]:
    r = CliRunner().invoke(cli, [*map(str, args), "--json"])
    return r.exit_code, json.loads(r.output)


def same(cli_result: tuple[int, dict], result, *paths: tuple[Path, Path]) -> None:
    """The command's JSON is the library result's, with the paths of one run read as the other's."""
    code, data = cli_result
    expected = json.loads(json.dumps({"ok": result.exit_code == 0, **result.to_dict()}, ensure_ascii=False,
                                     default=str))
    text = json.dumps(data, ensure_ascii=False)
    for theirs, ours in paths:
        text = text.replace(str(theirs), str(ours))
    assert code == result.exit_code and json.loads(text) == expected


def test_each_command_prints_its_library_result(tmp_path, templates):
    a, b = tmp_path / "a", tmp_path / "b"
    same(cli_json(["init", a]), api.init(b), (a, b))
    same(cli_json(["templates", "build", "-w", a]), api.build_templates(b), (a, b))
    same(cli_json(["templates", "list"]), api.list_templates())
    same(cli_json(["templates", "diff", "visit_report", "1", "2"]), api.diff_templates("visit_report", 1, 2))
    inbox = tmp_path / "收到"
    inbox.mkdir()
    fill(templates["visit_report"], inbox / "好.xlsx", VISIT)
    fill(templates["visit_report"], inbox / "坏.xlsx", dict(VISIT, 团干部=-2))
    same(cli_json(["validate", inbox, "-w", a]), api.validate([inbox], a))
    for ws in (a, b):
        shutil.copytree(inbox, ws / "收件箱", dirs_exist_ok=True)
    same(cli_json(["merge", "-w", a, "--as-of", "2026-04-20"]), api.merge(b, as_of=dt.date(2026, 4, 20)), (a, b))
    same(cli_json(["status", "-w", a, "--as-of", "2026-04-20", "--period", "2026-03"]),
         api.status(b, as_of=dt.date(2026, 4, 20), period="2026-03"))
    same(cli_json(["assess", "-w", a, "--as-of", "2026-04-20"]), api.assess(b, as_of=dt.date(2026, 4, 20)), (a, b))
    same(cli_json(["distribute", "-w", a, "--period", "2026-03", "--units", "源汇区团委"]),
         api.distribute(b, "2026-03", units="源汇区团委"), (a, b))
    same(cli_json(["ledger", "check", "-w", a]), api.ledger_check(b))
    old = fill(Path(__file__).resolve().parent.parent / "workbook_templates" / "visit_report" / "v1.xlsx",
               tmp_path / "旧.xlsx", VISIT)
    same(cli_json(["upgrade", old, "-w", a]), api.upgrade(b, [old]))


def test_command_bodies_are_one_library_call():
    """Each command parses options, calls one function of api and renders it: no body over 15 lines."""
    import ast

    source = (Path(__file__).resolve().parent.parent / "tuanjian_xlsx" / "cli.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    commands = [f for f in tree.body if isinstance(f, ast.FunctionDef) and any(
        isinstance(d, ast.Call) and getattr(d.func, "attr", "") in ("command", "group") for d in f.decorator_list)]
    assert len(commands) >= 14
    for f in commands:
        assert f.end_lineno - f.lineno + 1 <= 15, f.name
        calls = {n.func.attr for n in ast.walk(f) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                 and isinstance(n.func.value, ast.Name) and n.func.value.id == "api"}
        assert len(calls) <= 1, (f.name, calls)
