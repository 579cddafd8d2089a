"""Workspace configuration: the built-in plan, and bad configuration reported in Chinese with its place."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest

from tuanjian_xlsx.issues import ConfigError
from tuanjian_xlsx.plan import Workspace
from tuanjian_xlsx.settings import DATA, load_settings
from tuanjian_xlsx.workspace import init_workspace


def test_builtin_is_the_whole_plan(builtin):
    r = builtin.roster
    assert len(r.units) == 16
    assert r.type_names == ["县区团委", "功能区团工委", "系统团委", "机关部室", "直属单位"]
    assert [u.name for u in r.units if u.type == "机关部室"] == ["组织部", "宣传部", "学校部", "青发部", "统战部", "社联部"]
    owners = {(t.department, t.owner) for t in r.tasks}
    assert {("学校部", "封亚村"), ("组织部", "辛光辉"), ("青发部", "赵博"), ("统战部", "刘承韶"), ("社联部", "窦戈苒")} <= owners
    t = {t.code: t for t in r.tasks}
    assert t["1-3-2"].kind == "ratio" and t["1-3-2"].target == 0.4
    assert t["2-3"].target_for("县区团委") == 3 and t["2-3"].target_for("功能区团工委") == 1
    assert t["2-1"].target == 0.2 and t["1-1-1"].deadline.isoformat() == "2020-11-30"
    # due rules: 部室 附件1 by the 28th of the month; 县区 by the 10th of the next; 附件2 the 28th of the quarter's last
    assert r.rule("机关部室", "visit_report").model_dump() == {"cadence": "monthly", "day": 28, "month_offset": 0}
    assert r.rule("县区团委", "visit_report").model_dump() == {"cadence": "monthly", "day": 10, "month_offset": 1}
    assert r.rule("县区团委", "observation_report").model_dump() == {"cadence": "quarterly", "day": 28, "month_offset": 0}
    assert r.rule("县区团委", "target_tracker").cadence == "quarterly"
    assert builtin.settings.organisation.report_mailbox == "lhtswzxb@163.com"


def test_init_writes_a_workspace_that_loads_back_equal(tmp_path, builtin):
    ws = init_workspace(tmp_path / "演示")
    for folder in ("模板", "下发", "收件箱", "退回", "汇总"):
        assert (tmp_path / "演示" / folder).is_dir()
    assert "# tuanjian.toml" in (tmp_path / "演示" / "tuanjian.toml").read_text(encoding="utf-8")
    loaded = Workspace.load(ws.root)
    assert loaded.roster == builtin.roster and loaded.settings == builtin.settings


def test_init_never_overwrites(tmp_path):
    init_workspace(tmp_path)
    before = (tmp_path / "名单与目标.xlsx").read_bytes()
    with pytest.raises(Exception) as exc:
        init_workspace(tmp_path)
    assert "为免覆盖" in str(exc.value)
    assert (tmp_path / "名单与目标.xlsx").read_bytes() == before


# --- tuanjian.toml ------------------------------------------------------------------------------------

def _settings_with(tmp_path, old: str, new: str) -> Path:
    text = (DATA / "tuanjian.toml").read_text(encoding="utf-8")
    assert old in text
    p = tmp_path / "tuanjian.toml"
    p.write_text(text.replace(old, new, 1), encoding="utf-8")
    return p


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line)


def _issues(path, registry):
    with pytest.raises(ConfigError) as exc:
        load_settings(path, registry)
    return exc.value.issues


@pytest.mark.parametrize("old, new, needle, code, field, message", [
    ('inbox = "收件箱"', 'inbxo = "收件箱"', "inbxo", "unknown-key", "folders.inbxo",
     "未知的设置项“folders.inbxo”（是否拼写有误？）"),
    ("current_version = 1\naccepted_versions = [1]\n\n[forms.observation_report]",
     "current_version = \"一\"\naccepted_versions = [1]\n\n[forms.observation_report]", "current_version = \"一\"",
     "bad-value", "forms.visit_report.current_version", "设置项“forms.visit_report.current_version”的值无效：应为整数"),
    ("[forms.target_tracker]", "[forms.target_trackr]", "target_trackr", "unknown-form", "forms.target_trackr",
     "未知的报表“target_trackr”，可用的有：visit_report、observation_report、target_tracker"),
    ("accepted_versions = [1]\n\n[forms.observation_report]", "accepted_versions = [1, 7]\n\n[forms.observation_report]",
     "[1, 7]", "unknown-version", "forms.visit_report.accepted_versions", "报表“visit_report”没有第 7 版模板"),
    ('name = "共青团漯河市委"', 'name = "共青团漯河市委', 'name = "共青团漯河市委', "toml-syntax", None, None),
    ("accepted_versions = [1]\n\n[forms.observation_report]",
     "accepted_versions = [1]\naccepted_until = { 1 = 2026-12-31T18:00:00 }\n\n[forms.observation_report]",
     "accepted_until", "bad-value", "forms.visit_report.accepted_until.1",
     "设置项“forms.visit_report.accepted_until.1”的值无效：应为日期，不带时间，如 2026-01-31"),  # (said its code)
    # the current version left out of the accepted ones: every copy just sent out came back refused
    ("current_version = 1\naccepted_versions = [1]\n\n[forms.observation_report]",
     "current_version = 2\naccepted_versions = [1]\n\n[forms.observation_report]", "accepted_versions = [1]",
     "current-not-accepted", "forms.visit_report.accepted_versions",
     "当前版本第 2 版不在 accepted_versions 里：各单位收到的第 2 版交回来都会被拒收；请写成 accepted_versions = [1, 2]"),
    ("accepted_versions = [1]\n\n[forms.observation_report]",
     "accepted_versions = [1]\naccepted_until = { 1 = 2026-12-31 }\n\n[forms.observation_report]", "accepted_until",
     "accepted-until-unused", "forms.visit_report.accepted_until",
     "accepted_until 写了第 1 版的截止日，但它是当前版本或不在 accepted_versions 里，这个日期不会起作用；"
     "请删去这一项，或把第 1 版写进 accepted_versions"),
])
def test_bad_settings_name_key_and_line(tmp_path, registry, old, new, needle, code, field, message):
    path = _settings_with(tmp_path, old, new)
    (issue,) = _issues(path, registry)
    assert (issue.code, issue.file, issue.field, issue.line) == (code, "tuanjian.toml", field, _line_of(path, needle))
    if message:
        assert issue.message == message
    assert issue.render().startswith(f"错误：tuanjian.toml · 第 {issue.line} 行")


def test_missing_section(tmp_path, registry):
    path = _settings_with(tmp_path, "[organisation]", "[organisatoin]")
    codes = sorted((i.code, i.field) for i in _issues(path, registry))
    assert codes == [("missing-key", "organisation"), ("unknown-key", "organisatoin")]


# --- 名单与目标.xlsx ---------------------------------------------------------------------------------------

def _book_with(tmp_path, edits: dict[tuple[str, str], object]) -> Path:
    init_workspace(tmp_path)
    path = tmp_path / "名单与目标.xlsx"
    wb = openpyxl.load_workbook(path)
    for (sheet, cell), value in edits.items():
        wb[sheet][cell] = value
    wb.save(path)
    return tmp_path


def _workspace_issues(root):
    with pytest.raises(ConfigError) as exc:
        Workspace.load(root)
    return [(i.code, i.sheet, i.cell, i.field, i.message) for i in exc.value.issues if i.severity == "error"]




def _row_of(root, sheet, text) -> int:
    ws = openpyxl.load_workbook(root / "名单与目标.xlsx")[sheet]
    return next(c.row for c in ws["A"] if c.value == text)


def test_unknown_unit_type(tmp_path):
    root = _book_with(tmp_path, {("单位名单", "C3"): "县级团委"})
    assert _workspace_issues(root) == [("unknown-unit-type", "单位名单", "C3", "单位类型",
        "未知的单位类型“县级团委”（单位类型表中有：县区团委、功能区团工委、系统团委、机关部室、直属单位）")]


def test_duplicate_unit(tmp_path):
    root = _book_with(tmp_path, {("单位名单", "A5"): "yuanhui"})
    assert _workspace_issues(root) == [("duplicate-unit", "单位名单", "A5", "单位编号", "单位“yuanhui”重复（第 2 行已有）")]


def test_task_without_target(tmp_path):
    init_workspace(tmp_path)
    row = _row_of(tmp_path, "目标任务", "1-3-2")
    wb = openpyxl.load_workbook(tmp_path / "名单与目标.xlsx")
    wb["目标任务"][f"I{row}"] = None
    wb.save(tmp_path / "名单与目标.xlsx")
    assert _workspace_issues(tmp_path) == [("task-without-target", "目标任务", f"I{row}", "目标值",
        "任务“1-3-2”是比率指标，但没有目标值（县区团委、功能区团工委 没有目标值）")]


def test_bad_date_and_bad_cadence(tmp_path):
    init_workspace(tmp_path)
    row = _row_of(tmp_path, "目标任务", "1-1-1")
    wb = openpyxl.load_workbook(tmp_path / "名单与目标.xlsx")
    ws = wb["目标任务"]
    deadline_col = next(c.column_letter for c in ws[1] if c.value == "完成时限")
    ws[f"{deadline_col}{row}"] = "2020年13月40日"
    wb["单位类型"]["C2"] = "每月"
    wb.save(tmp_path / "名单与目标.xlsx")
    assert _workspace_issues(tmp_path) == [
        ("not-in-choices", "单位类型", "C2", "走基层报告单·报送周期",
         "“走基层报告单·报送周期”的值“每月”不在可选项中（可选：按月、按季、按年、不报送）"),
        ("bad-date", "目标任务", f"{deadline_col}{row}", "完成时限", "“完成时限”不是有效日期：“2020年13月40日”"),
    ]


def test_missing_column_and_sheet(tmp_path):
    init_workspace(tmp_path)
    wb = openpyxl.load_workbook(tmp_path / "名单与目标.xlsx")
    wb["单位名单"]["B1"] = "名称"
    del wb["目标任务"]
    wb.save(tmp_path / "名单与目标.xlsx")
    got = _workspace_issues(tmp_path)
    assert ("sheet-missing", "目标任务", None, None, "缺少工作表“目标任务”") in got
    assert any(code == "column-missing" and sheet == "单位名单" and "单位名称" in msg for code, sheet, _, _, msg in got)


def test_roster_book_has_dropdowns_and_protection(tmp_path):
    init_workspace(tmp_path)
    wb = openpyxl.load_workbook(tmp_path / "名单与目标.xlsx")
    ws = wb["单位名单"]
    assert ws.protection.sheet is True
    assert ws["A1"].protection.locked is True and ws["B2"].protection.locked is False
    # room for new units: empty cells take their column's style, which is unlocked
    assert ws.column_dimensions["B"].protection.locked is False
    sources = {dv.formula1 for dv in ws.data_validations.dataValidation}
    assert "单位类型!$A$2:$A$501" in sources
    kinds = wb["目标任务"].data_validations.dataValidation
    assert any(dv.formula1 == '"比率,增长,数量,是否,定性"' for dv in kinds)


def test_protection_password_from_settings(tmp_path):
    from tuanjian_xlsx.workspace import build_workspace_templates

    init_workspace(tmp_path)
    toml = tmp_path / "tuanjian.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('password = ""', 'password = "tw2026"'), encoding="utf-8")
    for path in build_workspace_templates(tmp_path):
        ws = openpyxl.load_workbook(path).worksheets[0]
        assert ws.protection.sheet is True and ws.protection.password  # hashed, not empty


def test_a_number_typed_in_a_text_column_is_text(tmp_path):
    _book_with(tmp_path, {("单位名单", "F2"): 13800000000, ("单位名单", "E2"): 12})
    ws = Workspace.load(tmp_path)
    assert (ws.roster.units[0].phone, ws.roster.units[0].contact) == ("13800000000", "12")


def test_unwritable_target_is_a_chinese_issue(tmp_path):
    from tuanjian_xlsx.issues import TuanjianError
    from tuanjian_xlsx.xlsxio import atomic_write

    target = tmp_path / "汇总.xlsx"
    target.mkdir()  # something that cannot be replaced, as a workbook open in Excel cannot on Windows
    (target / "x").write_text("x")
    with pytest.raises(TuanjianError) as exc:
        atomic_write(target, b"data")
    (issue,) = exc.value.issues
    assert issue.code == "file-locked" and issue.message.startswith(f"无法写入 {target}（")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["汇总.xlsx"]  # no temporary file left behind


# --- the plan and the workspace -----------------------------------------------------------------------


def test_a_workspace_is_a_plan_in_a_folder(tmp_path, builtin):
    from tuanjian_xlsx.plan import Plan

    ws = Workspace.of(builtin, tmp_path)
    assert isinstance(ws, Plan) and ws.root == tmp_path and ws.folder("inbox") == tmp_path / "收件箱"
    assert (ws.settings, ws.roster, ws.registry) == (builtin.settings, builtin.roster, builtin.registry)
    assert not hasattr(builtin, "root") and not hasattr(builtin, "folder")
    assert builtin.distributed_on("visit_report", 1) is None  # no workspace: nothing was distributed


def test_the_first_distribution_day_comes_from_the_ledger(tmp_path, builtin):
    import datetime as dt

    from tuanjian_xlsx.ledger import Ledger

    ws = Workspace.of(builtin, tmp_path)
    assert ws.distributed_on("visit_report", 2) is None
    assert not (tmp_path / ".tuanjian").exists()  # asking creates no ledger
    with Ledger(tmp_path) as ledger:
        ledger.note_sent("yuanhui", "visit_report", 2, "2026-03", dt.date(2026, 4, 1))
        ledger.note_sent("wuyang", "visit_report", 2, "2026-04", dt.date(2026, 5, 1))  # the first day stays
        assert (ledger.last_sent("wuyang", "visit_report"), ledger.last_sent("wuyang", "observation_report")) == (2, None)
    assert ws.distributed_on("visit_report", 2) == "2026-04-01"
    assert ws.distributed_on("visit_report", 1) is None


@pytest.mark.parametrize("typed", ["2026-07", "2026年7月", "2026-Q3", "__date__"])
def test_a_unit_added_mid_year_owes_reports_from_its_own_start(tmp_path, typed):
    """A unit added to 单位名单 in July was 未报 for January to June (and its 催报 listed them all): the roster's
    起报期 column says from when it owes reports, however it is typed (a month Excel turned into a date too)."""
    import datetime as dt

    from tuanjian_xlsx.status import expected

    init_workspace(tmp_path)
    path = tmp_path / "名单与目标.xlsx"
    wb = openpyxl.load_workbook(path)
    sheet = wb["单位名单"]
    head = [c.value for c in sheet[1]]
    assert "起报期" in head
    row = sheet.max_row + 1
    for key, value in (("单位编号", "xinqu"), ("单位名称", "新区团工委"), ("单位类型", "功能区团工委"),
                       ("起报期", dt.datetime(2026, 7, 1) if typed == "__date__" else typed)):
        sheet.cell(row, head.index(key) + 1, value)
    wb.save(path)
    owed = [(e.form_id, e.period.code) for e in expected(Workspace.load(tmp_path), dt.date(2026, 8, 15))
            if e.unit_id == "xinqu"]
    assert ("visit_report", "2026-07") in owed and ("target_tracker", "2026-Q3") in owed
    assert not [p for _, p in owed if p < "2026-07" and "Q" not in p] and ("target_tracker", "2026-Q2") not in owed
    others = [e.period.code for e in expected(Workspace.load(tmp_path), dt.date(2026, 8, 15)) if e.unit_id == "yuanhui"]
    assert "2026-01" in others  # everyone else as before


def test_a_start_that_is_no_period_is_named_at_its_cell(tmp_path):
    root = _book_with(tmp_path, {("单位名单", "G2"): "七月份以后"})
    assert _workspace_issues(root)[0][:4] == ("not-a-period", "单位名单", "G2", "起报期")


def test_months_before_a_units_start_are_not_judged_in_the_visit_statistics(tmp_path):
    """走基层统计 said 未达标 for a unit's months before its 起报期, which 报送情况 and the assessment skip."""
    import datetime as dt

    from tuanjian_xlsx.merge import merge

    init_workspace(tmp_path)
    path = tmp_path / "名单与目标.xlsx"
    wb = openpyxl.load_workbook(path)
    sheet = wb["单位名单"]
    head = [c.value for c in sheet[1]]
    row = sheet.max_row + 1
    for key, value in (("单位编号", "xinqu"), ("单位名称", "新区团委"), ("单位类型", "县区团委"), ("起报期", "2026-03")):
        sheet.cell(row, head.index(key) + 1, value)
    wb.save(path)
    master = openpyxl.load_workbook(merge(tmp_path, as_of=dt.date(2026, 4, 30)).master, data_only=True)
    rows = [r for r in master["走基层统计"].iter_rows(values_only=True) if r[0] == "新区团委"]
    assert [(r[3], r[-1]) for r in rows] == [("2026年1月", "—"), ("2026年2月", "—"), ("2026年3月", "未达标"),
                                             ("2026年4月", "未到期")]


@pytest.mark.parametrize("as_of, first", [("2027-02-28", "2026-01"), ("2027-03-01", "2027-01"), ("2027-03-03", "2027-01"),
                                          ("2027-01-01", "2026-01"), ("2026-12-31", "2026-01")])
def test_the_default_start_is_january_of_the_year_two_months_back(tmp_path, as_of, first):
    """tuanjian.toml says: January of the year two months back. It was 62 days back: on 1–3 March the whole
    previous year was still counted."""
    import datetime as dt

    from tuanjian_xlsx.status import reporting_start

    init_workspace(tmp_path)
    assert reporting_start(Workspace.load(tmp_path), dt.date.fromisoformat(as_of)).code == first


def test_a_unit_may_give_several_addresses(tmp_path):
    """yh@163.com；yhtw@qq.com in one 电子邮箱 cell (as units give them) stopped merge, status and distribute for
    every unit; it is two addresses: mail from either is the unit's own, and mail to it goes to both."""
    from tuanjian_xlsx.checking import validated

    root = _book_with(tmp_path, {("单位名单", "D2"): "yh@163.com；YHTW@qq.com"})
    ws = Workspace.load(root)
    unit = ws.roster.unit_by_name("源汇区团委")
    assert unit.email == "yh@163.com, YHTW@qq.com" and unit.emails == {"yh@163.com", "yhtw@qq.com"}
    job = (str(tmp_path / "x.xlsx"), b"", "x.xlsx", "yhtw@qq.com", [], None)
    assert not [i for i in validated(ws, job).issues if i.code == "sender-mismatch"]
    root2 = _book_with(tmp_path / "b", {("单位名单", "D2"): "yh@163.com；不是邮箱"})
    (issue,) = _workspace_issues(root2)
    assert issue[:4] == ("bad-email", "单位名单", "D2", "电子邮箱") and "用分号隔开" in issue[4]


def test_a_cleared_cadence_cell_is_an_error_at_its_cell(tmp_path):
    """Clearing 机关部室's 走基层报告单·报送周期 took all six 部室 off 附件1 (未报 16 → 10) without a word: a blank
    among the other types' rules is an error at that cell; 不报送 is written out."""
    root = _book_with(tmp_path, {("单位类型", "C5"): None})
    (issue,) = _workspace_issues(root)
    assert issue[:4] == ("rule-blank", "单位类型", "C5", "走基层报告单·报送周期") and "不报送" in issue[4]
    root = _book_with(tmp_path / "b", {("单位类型", "C5"): "不报送"})
    roster = Workspace.load(root).roster  # written out: loads, and the 部室 owe no 附件1
    assert not [u for u in roster.units_filing("visit_report") if u.type == "机关部室"]


def test_an_alias_that_is_another_units_name_is_refused(tmp_path):
    root = _book_with(tmp_path, {("单位名单", "H3"): "西城区团工委"})
    (issue,) = _workspace_issues(root)
    assert issue[:4] == ("alias-taken", "单位名单", "H3", "别名") and "也是“西城区团工委”的名称或别名" in issue[4]
    root = _book_with(tmp_path / "b", {("单位名单", "H3"): "市志愿者服务中心"})  # another's bracketed name
    assert _workspace_issues(root)[0][0] == "alias-taken"
    root = _book_with(tmp_path / "c", {("单位名单", "H3"): "人才办（市志愿者服务中心）"})  # … inside its own brackets
    assert _workspace_issues(root)[0][0] == "alias-taken"
