"""年底考核 (tuanjian assess): three units of three types through half a year of real files — one perfect, one late
and missing, one with partial targets — scored by hand and checked cell by cell in 考核得分 (openpyxl reading the
cached values); a weight changed in 名单与目标.xlsx, manual 加减分 kept over a re-run (the old file as .bak, one
beyond ±上限 counted at it, none lost when 考核细则 drops 加减分 or 考核得分 is renamed), the monthly minimum of
visits as 单位类型 sets it, an assessment with nothing to score, a bad 考核细则, a file that is not ours, formulas
that survive a sort in Excel, the command line. (That every cached value is LibreOffice's: tests/test_cached_values.py, with the demo's
assessment in its one batch.)"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import shutil
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from conftest import fill
from tuanjian_xlsx.assess import assess
from tuanjian_xlsx.build import build_template
from tuanjian_xlsx.cli import cli
from tuanjian_xlsx.issues import ConfigError, TuanjianError
from tuanjian_xlsx.ledger import Ledger
from tuanjian_xlsx.merge import merge
from tuanjian_xlsx.plan import Plan, Workspace
from tuanjian_xlsx.roster import Roster
from tuanjian_xlsx.roster_book import write_roster_book
from tuanjian_xlsx.workspace import init_workspace

AS_OF = dt.date(2026, 7, 15)
UNITS = ["组织部", "源汇区团委", "西城区团工委"]  # 机关部室, 县区团委, 功能区团工委
OUT = "汇总/年度考核表（2026年）.xlsx"


def _visit(template: Path, dst: Path, unit: str, month: int, day: int) -> Path:
    return fill(template, dst, {"报送单位": unit, "报送期": f"2026-{month:02d}", "填表时间": dt.datetime(2026, month, day),
                                "姓名": "张三", "单位职务": "书记", "走访日期": dt.datetime(2026, month, day),
                                "联系电话": "13800000000", "走访团组织名称": f"第{month}中学团委", "走访形式": "实地走访",
                                "团干部": 2, "团员青年": 10, "基层团组织工作开展情况": "开展主题团日。",
                                "基层团组织工作亮点": "团员参与积极。"})


def _observation(template: Path, dst: Path, unit: str, q: int) -> Path:
    return fill(template, dst, {"报送单位": unit, "报送期": f"2026-Q{q}", "填表时间": dt.datetime(2026, 3 * q, 20),
                                "组织观摩部室": unit, "参加观摩人员": "张三、李四", "观摩点及观摩内容": "第一中学团委：主题团日",
                                "观摩点亮点工作": "活动规范。", "观摩点存在问题": "经费不足。", "整改措施": "协调经费。"})


def _tracker(template: Path, dst: Path, spec, unit: str, q: int, values: dict[str, tuple]) -> Path:
    """Header by label, then each task's row by its number: (完成数, 基数) for a ratio, (完成数,) otherwise."""
    fill(template, dst, {"报送单位": unit, "报送期": f"2026-Q{q}", "填表时间": dt.datetime(2026, 3 * q, 28)})
    wb = openpyxl.load_workbook(dst)
    sh = wb[spec.sheet_name]
    col = {c.id: openpyxl.utils.get_column_letter(i + 1) for i, c in enumerate(spec.columns)}
    row = {sh[f"A{r}"].value: r for r in range(spec.header_row + 1, sh.max_row + 1)}
    for code, got in values.items():
        for key, v in zip(("done", "base"), got):
            sh[f"{col[key]}{row[code]}"] = v
        sh[f"{col['progress']}{row[code]}"] = "按计划推进。"
    wb.save(dst)
    return dst


RATIO_FULL = {code: (10, 10) for code in ("1-1-1", "1-1-2", "1-1-3", "1-2", "1-3-1", "1-3-2", "1-3-3", "1-4", "1-6",
                                          "2-1", "2-4")}
QUALITATIVE = {code: () for code in ("1-5", "2-2", "4-1", "4-2", "4-3")}


@pytest.fixture(scope="module")
def year_ws(tmp_path_factory, registry) -> Path:
    """A workspace of three units (附件1 v2, with 走访日期) and half a year of their files, merged."""
    root = tmp_path_factory.mktemp("assess") / "工作区"
    init_workspace(root)
    builtin = Plan.builtin(registry).roster
    roster = Roster(unit_types=builtin.unit_types, units=[builtin.unit_by_name(n) for n in UNITS], tasks=builtin.tasks)
    (root / "名单与目标.xlsx").write_bytes(write_roster_book(roster, registry))
    toml = root / "tuanjian.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace("current_version = 1\naccepted_versions = [1]",
                                                             "current_version = 2\naccepted_versions = [2]", 1),
                    encoding="utf-8")
    ws = Workspace.load(root)
    blank = {}
    for spec in ws.current_specs():
        blank[spec.form_id] = root / f"{spec.form_id}.xlsx"
        blank[spec.form_id].write_bytes(build_template(spec, ws.roster))
    tracker = ws.spec("target_tracker")
    sent = root / "收到"
    sent.mkdir()
    got: dict[Path, dt.datetime] = {}

    def arrive(path: Path, when: dt.datetime) -> None:
        got[path] = when

    at = lambda m, d: dt.datetime(2026, m, d, 10)  # noqa: E731
    # 组织部: everything on time (the 28th of the month), every visit in the first week
    for m in range(1, 7):
        arrive(_visit(blank["visit_report"], sent / f"组织部_{m}.xlsx", "组织部", m, 3), at(m, 20))
    for q in (1, 2):
        arrive(_observation(blank["observation_report"], sent / f"组织部_Q{q}_观摩.xlsx", "组织部", q), at(3 * q, 20))
        arrive(_tracker(blank["target_tracker"], sent / f"组织部_Q{q}_台账.xlsx", tracker, "组织部", q,
                        {"3-1": ("是",), "3-2": (1,), "5": ("是",)}), at(3 * q + 1, 5))
    # 源汇区团委: February late, May missing; visits on the 3rd, 12th, 5th, 9th, -, 1st; Q2 observation and
    # tracker missing, the Q1 tracker late (all its targets met)
    for m, day, when in ((1, 3, at(2, 5)), (2, 12, at(3, 15)), (3, 5, at(4, 8)), (4, 9, at(5, 9)), (6, 1, at(7, 8))):
        arrive(_visit(blank["visit_report"], sent / f"源汇_{m}.xlsx", "源汇区团委", m, day), when)
    arrive(_observation(blank["observation_report"], sent / "源汇_Q1_观摩.xlsx", "源汇区团委", 1), at(3, 20))
    arrive(_tracker(blank["target_tracker"], sent / "源汇_Q1_台账.xlsx", tracker, "源汇区团委", 1,
                    {**RATIO_FULL, **QUALITATIVE, "2-3": (3,)}), at(4, 15))
    # 西城区团工委: all on time; Q1's targets all met, Q2's (the latest) in part
    for m in range(1, 7):
        arrive(_visit(blank["visit_report"], sent / f"西城_{m}.xlsx", "西城区团工委", m, 2), at(m + 1, 5))
    for q in (1, 2):
        arrive(_observation(blank["observation_report"], sent / f"西城_Q{q}_观摩.xlsx", "西城区团工委", q), at(3 * q, 20))
    mine = ("1-2", "1-3-1", "1-3-2", "1-3-3", "1-4", "1-6", "2-1")
    full = {c: RATIO_FULL[c] for c in mine}
    arrive(_tracker(blank["target_tracker"], sent / "西城_Q1_台账.xlsx", tracker, "西城区团工委", 1,
                    {**full, "1-5": (), "2-2": (), "4-1": (), "4-2": (), "4-3": (), "2-3": (1,)}), at(4, 5))
    partial = {**full, "1-2": (5, 10), "1-3-2": (3, 10), "2-1": (3, 10)}
    arrive(_tracker(blank["target_tracker"], sent / "西城_Q2_台账.xlsx", tracker, "西城区团工委", 2,
                    {**partial, "1-5": (), "2-2": (), "4-1": (), "4-2": (), "4-3": (), "2-3": (0,)}), at(7, 5))
    result = merge(root, [sent], as_of=AS_OF, now=dt.datetime(2026, 7, 15, 9), received=got, received_basis="mailbox")
    assert result.valid == len(got) == 27, [i.path.name for i in result.invalid]
    return root


@pytest.fixture
def ws_copy(year_ws, tmp_path) -> Path:
    return Path(shutil.copytree(year_ws, tmp_path / "工作区"))


def _scores(path: Path) -> dict[str, list]:
    """考核得分's unit rows by unit name, from 报送及时 to 总排名, as the cached values read."""
    sh = openpyxl.load_workbook(path, data_only=True)["考核得分"]
    rows = list(sh.iter_rows(values_only=True))
    head = next(i for i, r in enumerate(rows) if r and r[0] == "序号")
    first, last = rows[head].index("报送及时"), rows[head].index("总排名")
    return {r[1]: list(r[first:last + 1]) for r in rows[head + 2:] if r[1] and r[0]}


# 报送及时 走基层 走基层周 观摩交流 目标完成 调研报告 | 适用满分 折算得分 加减分 原因 总分 类型内排名 总排名
EXPECTED = {
    # 10 of 10 on time; 6 of 6 months; 6 of 6 visits in the first week; 2 of 2 quarters; 3-1 是, 5 是; 3-2 one report
    "组织部": [30, 20, 5, 15, 25, 5, 100, 100, None, None, 100, 1, 1],
    # (5 on time + 0.5 × 2 late) / 10 owed × 30 = 18; 5 of 6 months × 20 = 16.67; 3 of 5 visits in the first week
    # × 5 = 3; 1 of 2 quarters × 15 = 7.5; the late Q1 tracker meets every target: 25; 调研报告 不适用:
    # 70.17 of 95 → 73.86
    "源汇区团委": [18, 16.67, 3, 7.5, 25, "不适用", 95, 73.86, None, None, 73.86, 1, 3],
    # the Q2 tracker: 1-2 5/10 of 100% → 0.5; 1-3-2 30% of 40% → 0.75; 2-1 30% of 20% → capped at 1; 2-3 0 of 1 → 0;
    # four more met → 6.25 / 8 × 25 = 19.53; 89.53 of 95 → 94.24
    "西城区团工委": [30, 20, 5, 15, 19.53, "不适用", 95, 94.24, None, None, 94.24, 1, 2],
}


def test_three_units_scored_by_hand(year_ws, ws_copy):
    result = assess(ws_copy, year=2026, as_of=AS_OF)
    assert result.path == ws_copy / OUT and not result.replaced and result.notes == []
    got = _scores(result.path)
    assert _close(got, EXPECTED)
    # by unit type in the roster's order, then the units' order
    assert [(u.unit, u.total, u.rank) for u in result.units] == [("源汇区团委", 73.86, 3), ("西城区团工委", 94.24, 2),
                                                                  ("组织部", 100, 1)]
    wb = openpyxl.load_workbook(result.path)
    score = wb["考核得分"]["D8"].value  # 组织部's 报送及时: 满分 × the average 计分 of its facts, from 考核依据
    assert score.startswith("=IF(COUNTIFS('考核依据'!$D$2:$D$95,\"报送及时\",'考核依据'!$B$2:$B$95,$A8)=0,\"不适用\",")
    assert "ROUND(($D$5*SUMIFS('考核依据'!$N$2:$N$95," in score
    assert _pinned(wb) == {("考核得分", 5), ("评分说明", 5)}  # a sort in Excel moves nothing else out of its row
    basis = openpyxl.load_workbook(result.path, data_only=True)["考核依据"]
    facts = [r for r in basis.iter_rows(min_row=2, values_only=True) if r[0] == "源汇区团委"]
    results = [r[9] for r in facts if r[3] == "报送及时"]
    assert sorted(results) == sorted(["按时"] * 5 + ["逾期"] * 2 + ["未报"] * 3)
    assert sorted(r[9] for r in facts if r[3] == "走基层周") == ["周内"] * 3 + ["周外"] * 2
    assert any(r[3] == "报送及时" and r[14] == "源汇_2.xlsx" for r in facts)  # each fact names its file


def _pinned(wb) -> set[tuple[str, int]]:
    """The cells the formulas of 考核得分's and 考核依据's rows refer to by an absolute row ($D$5), ranges apart."""
    out = set()
    for name, first in (("考核得分", 6), ("考核依据", 2)):
        for row in wb[name].iter_rows(min_row=first):
            for c in row:
                if isinstance(c.value, str) and c.value.startswith("="):
                    for sheet, r in re.findall(r"(?:'([^']+)'!)?(?<![:$A-Z])\$[A-Z]+\$(\d+)(?![\d:])", c.value):
                        out.add((sheet or name, int(r)))
    return out


def _close(got: dict, expected: dict) -> bool:
    for unit, row in expected.items():
        for ours, theirs in zip(got[unit], row):
            if isinstance(theirs, (int, float)):
                assert ours == pytest.approx(theirs, abs=1e-9), (unit, got[unit], row)
            else:
                assert ours == theirs, (unit, got[unit], row)
    return True


def test_a_weight_changed_in_the_roster_book_changes_the_scores(ws_copy):
    book = ws_copy / "名单与目标.xlsx"
    wb = openpyxl.load_workbook(book)
    sh = wb["考核细则"]
    row = next(c.row for c in sh["A"] if c.value == "报送及时")
    sh[f"B{row}"] = 40
    wb.save(book)
    result = assess(ws_copy, year=2026, as_of=AS_OF)
    got = _scores(result.path)
    assert got["源汇区团委"][0] == pytest.approx(24)  # 40 × 6 / 10
    assert got["源汇区团委"][7] == pytest.approx(72.54)  # 76.17 of 105
    assert got["组织部"][6:8] == [110, 100]
    assert openpyxl.load_workbook(result.path)["考核得分"]["D5"].value == 40


def test_manual_adjustments_survive_a_rerun(ws_copy):
    first = assess(ws_copy, year=2026, as_of=AS_OF).path
    wb = openpyxl.load_workbook(first)  # typed in as a person would, and saved
    sh = wb["考核得分"]
    head = [c.value for c in sh[4]]
    adj, why = head.index("加减分") + 1, head.index("原因") + 1
    sh.cell(row=8, column=adj, value=-2)  # 组织部
    sh.cell(row=8, column=why, value="讲评会议缺席一次")
    sh.cell(row=6, column=adj, value="三分")  # 源汇区团委: not a number
    sh.cell(row=7, column=adj, value=50)  # 西城区团工委: beyond the ±5 of 考核细则
    sh.cell(row=7, column=why, value="全国表彰")
    sh.cell(row=9, column=2, value="舞阳县团委")  # a unit this assessment does not cover
    sh.cell(row=9, column=adj, value=2)
    wb.save(first)
    typed = first.read_bytes()
    again = assess(ws_copy, year=2026, as_of=AS_OF)
    assert again.replaced and again.kept == 3
    assert sorted(n.code for n in again.notes) == ["assess-adjustment-dropped", "assess-adjustment-range",
                                                   "assess-adjustment-text"]
    assert "“西城区团工委”的加减分 50 超出“考核细则”的上限 ±5，已原样保留，总分中按 +5 计" in [n.message for n in again.notes]
    got = _scores(again.path)
    assert got["组织部"][8:13] == [-2, "讲评会议缺席一次", 98, 1, 2]
    assert got["源汇区团委"][8] == "三分" and got["源汇区团委"][10] == pytest.approx(73.86)  # counted as 0
    assert got["西城区团工委"][8:13] == [50, "全国表彰", pytest.approx(99.24), 1, 1]  # counted as +5
    assert "舞阳县团委" not in got
    assert again.backup == ws_copy / "汇总/年度考核表（2026年）.bak.xlsx" and again.backup.read_bytes() == typed
    r = CliRunner().invoke(cli, ["assess", "-w", str(ws_copy), "--year", "2026", "--as-of", "2026-07-15"])
    assert r.exit_code == 0 and "  保留了 3 项手工加减分；上一份另存为 年度考核表（2026年）.bak.xlsx" in r.output.splitlines()

    # 加减分 taken out of 考核细则: the new table would have nowhere to keep them, so nothing is overwritten
    book = ws_copy / "名单与目标.xlsx"
    rules = openpyxl.load_workbook(book)
    rules["考核细则"].delete_rows(next(c.row for c in rules["考核细则"]["A"] if c.value == "加减分"))
    rules.save(book)
    before = again.path.read_bytes()
    with pytest.raises(TuanjianError) as exc:
        assess(ws_copy, year=2026, as_of=AS_OF)
    assert [i.code for i in exc.value.issues] == ["assess-adjustment-nowhere"]
    assert "有 3 个单位填了加减分（源汇区团委、西城区团工委、组织部）" in exc.value.issues[0].message
    assert again.path.read_bytes() == before

    # 考核得分 renamed: its 加减分 cannot be found, and the run says so (the old file stays as .bak)
    wb = openpyxl.load_workbook(again.path)
    wb["考核得分"].title = "得分"
    wb.save(again.path)
    third = assess(ws_copy, year=2026, as_of=AS_OF)
    assert third.kept == 0 and [n.code for n in third.notes] == ["assess-previous-unreadable"]
    assert third.notes[0].message == ("上次的考核表中没有“考核得分”工作表，其中手工填写的加减分无法读出、未能保留；"
                                      "请从旧表的备份 年度考核表（2026年）.bak.xlsx 中抄回")
    assert "得分" in openpyxl.load_workbook(third.backup).sheetnames


def test_the_monthly_minimum_of_visits_is_the_roster_s_and_blank_or_0_is_not_counted(ws_copy):
    """单位类型's 每月至少走访次数 as typed: 机关部室 2 (组织部 filed one a month: no month met), 县区团委 0 and
    功能区团工委 blank (走基层 不适用 to both, out of their full marks); 评分说明 says so."""
    book = ws_copy / "名单与目标.xlsx"
    wb = openpyxl.load_workbook(book)
    sh = wb["单位类型"]
    assert sh["B1"].value == "每月至少走访次数"
    for c in sh["A"]:
        if c.value in ("机关部室", "县区团委", "功能区团工委"):
            sh[f"B{c.row}"] = {"机关部室": 2, "县区团委": 0, "功能区团工委": None}[c.value]
    wb.save(book)
    result = assess(ws_copy, year=2026, as_of=AS_OF)
    assert _close(_scores(result.path), {
        "组织部": [30, 0, 5, 15, 25, 5, 100, 80],
        "源汇区团委": [18, "不适用", 3, 7.5, 25, "不适用", 75, 71.33],  # 53.5 of 75
        "西城区团工委": [30, "不适用", 5, 15, 19.53, "不适用", 75, 92.71],  # 69.53 of 75
    })
    explain = [c.value for row in openpyxl.load_workbook(result.path)["评分说明"].iter_rows() for c in row]
    assert ("“走基层”的每月至少走访次数（《名单与目标.xlsx》的“单位类型”表）：系统团委 1 次、机关部室 2 次、直属单位 1 次；"
            "县区团委、功能区团工委留空或为 0，不考核走访次数，本项不适用。") in explain


def test_an_assessment_with_nothing_to_score_says_why(ws_copy, tmp_path):
    early = assess(ws_copy, year=2026, as_of=dt.date(2026, 1, 5), out=tmp_path / "一月.xlsx")
    assert [n.message for n in early.notes] == [
        "考核表中没有任何得分：截至统计日 2026-01-05，2026 年没有已到截止日期的报送期"]
    assert all(u.total is None for u in early.units)
    book = ws_copy / "名单与目标.xlsx"
    wb = openpyxl.load_workbook(book)
    wb["考核细则"].delete_rows(3, 20)  # only 考核范围 is left
    wb.save(book)
    empty = assess(ws_copy, year=2026, as_of=AS_OF, out=tmp_path / "空.xlsx")
    assert [n.message for n in empty.notes] == [
        "考核表中没有任何得分：《名单与目标.xlsx》的“考核细则”中没有计分的项目（报送及时、走基层、观摩交流、目标完成等）"]


def test_a_bad_rules_sheet_is_named_at_its_cell_and_stops_only_the_assessment(ws_copy):
    book = ws_copy / "名单与目标.xlsx"
    wb = openpyxl.load_workbook(book)
    sh = wb["考核细则"]
    sh["B3"] = "三十"  # 报送及时's 满分
    sh["A5"] = "走基层"  # a second 走基层
    sh["A9"] = "宣传信息"  # no such item
    wb.save(book)
    with pytest.raises(ConfigError) as exc:
        assess(ws_copy, year=2026, as_of=AS_OF)
    assert [(i.code, i.sheet, i.cell, i.message) for i in exc.value.issues] == [
        ("not-a-number", "考核细则", "B3", "“满分”应填数字，现为“三十”"),
        ("not-in-choices", "考核细则", "A9", "“考核项目”的值“宣传信息”不在可选项中（可选：考核范围、报送及时、走基层、走基层周、"
                                         "观摩交流、目标完成、调研报告、加减分）"),
        ("assess-item-twice", "考核细则", "A5", "考核项目“走基层”重复（第 4 行已有）"),
    ]
    assert Workspace.load(ws_copy).roster.units  # the monthly work goes on


def test_an_old_roster_book_without_rules_uses_the_defaults_and_says_so(ws_copy):
    book = ws_copy / "名单与目标.xlsx"
    wb = openpyxl.load_workbook(book)
    del wb["考核细则"]
    wb.save(book)
    result = assess(ws_copy, year=2026, as_of=AS_OF)
    assert [n.code for n in result.notes] == ["assess-rules-default"]
    assert _close(_scores(result.path), EXPECTED)


def test_a_file_that_is_not_ours_is_never_overwritten(ws_copy):
    path = ws_copy / OUT
    path.parent.mkdir(exist_ok=True)
    other = openpyxl.Workbook()
    other.active["A1"] = "组织部自己做的考核表"
    other.save(path)
    before = path.read_bytes()
    r = CliRunner().invoke(cli, ["assess", "-w", str(ws_copy), "--year", "2026", "--as-of", "2026-07-15"])
    assert r.exit_code == 1 and "不是 tuanjian 生成的年度考核表，为免覆盖，未写入" in r.output
    assert path.read_bytes() == before
    r = CliRunner().invoke(cli, ["assess", "-w", str(ws_copy), "--year", "2027", "--as-of", "2026-07-15"])
    assert r.exit_code == 1 and "错误：--as-of：统计日 2026-07-15 早于 2027 年" in r.output


def test_the_command_line_and_its_json(ws_copy):
    r = CliRunner().invoke(cli, ["assess", "-w", str(ws_copy), "--year", "2026", "--as-of", "2026-07-15", "--json"])
    assert r.exit_code == 0
    data = json.loads(r.output)
    assert data["ok"] and data["file"] == str(ws_copy / OUT) and data["kept"] == 0
    assert [(u["unit"], u["scores"]["目标完成"], u["total"], u["rank"]) for u in data["units"]] == [
        ("源汇区团委", 25, 73.86, 3), ("西城区团工委", 19.53, 94.24, 2), ("组织部", 25, 100, 1)]


def test_the_masters_overview_links_the_years_assessment_in_december_and_january(year_ws, tmp_path):
    from tuanjian_xlsx.master import render_master

    ws = Workspace.load(year_ws)
    empty = Ledger(tmp_path, readonly=True)  # no ledger there: an empty one
    for day, year in ((dt.date(2026, 12, 20), 2026), (dt.date(2027, 1, 5), 2026), (dt.date(2026, 7, 15), None)):
        data, _, _ = render_master(ws, empty, day)
        cell = openpyxl.load_workbook(io.BytesIO(data))["总览"]["A3"]
        if year is None:
            assert cell.value is None and cell.hyperlink is None
        else:
            assert cell.hyperlink.target == f"年度考核表（{year}年）.xlsx"
            assert f"tuanjian assess --year {year}" in cell.value
