"""A fourth form is a spec and nothing else. 调研报告登记表 (tests/forms/research_report/v1.toml: four fields, its
明细 and 统计 sheets) is found through TUANJIAN_FORMS, switched on in tuanjian.toml and given a yearly rule for 机关部室
in 名单与目标.xlsx — configuration only — and goes through templates build → distribute → validate → merge → status
by the same library calls the commands make."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import pytest

from conftest import fill
from tuanjian_xlsx import api
from tuanjian_xlsx.plan import Workspace
from tuanjian_xlsx.specs import FORMS_PATH, SpecRegistry

FORMS = Path(__file__).parent / "forms"
FORM = "research_report"
DEPARTMENTS = ["组织部", "宣传部", "学校部", "青发部", "统战部", "社联部"]  # the plan's 机关部室
ON_TIME, LATE, RETURNED = ["组织部", "宣传部"], ["学校部"], ["青发部"]
AS_OF = dt.date(2027, 1, 20)  # the 2026 report was due on 2027-01-15
REPORT = {"调研时间": dt.datetime(2026, 6, 18), "调研题目": "青年就业创业情况", "调研方式": "座谈访谈",
          "主要成果": "形成调研报告一篇，提出建议五条。"}


def _yearly_for(book: Path, unit_type: str, sheet_name: str) -> None:
    """In 名单与目标.xlsx's 单位类型 sheet, as staff would: `unit_type` files the form yearly by 15 January of the
    next year; every other type does not file it."""
    wb = openpyxl.load_workbook(book)
    ws = wb["单位类型"]
    head = {c.value: c.column for c in ws[1]}
    cols = [head[f"{sheet_name}·{what}"] for what in ("报送周期", "截止日", "顺延月数")]
    for (name, *_) in ws.iter_rows(min_row=2):
        if name.value:
            rule = ("按年", 15, 1) if name.value == unit_type else ("不报送", None, None)
            for col, value in zip(cols, rule):
                ws.cell(row=name.row, column=col, value=value)
    wb.save(book)


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv(FORMS_PATH, str(FORMS))
    root = tmp_path / "工作区"
    api.init(root)
    with (root / "tuanjian.toml").open("a", encoding="utf-8") as f:
        f.write(f"\n[forms.{FORM}]\nenabled = true\ncurrent_version = 1\naccepted_versions = [1]\n")
    _yearly_for(root / "名单与目标.xlsx", "机关部室", SpecRegistry().get(FORM).sheet_name)
    return root


def _rows(ws, first: int = 2) -> list[tuple]:
    return [r for r in ws.iter_rows(min_row=first, values_only=True) if any(v is not None for v in r)]


def _block(ws, title: str) -> dict[str, tuple]:
    """The rows of one form's block in 报送情况, by unit, under their headings: {unit: (status, 应报, 已报, …)}."""
    rows = list(ws.iter_rows(values_only=True))
    start = next(i for i, r in enumerate(rows) if r[0] == title)
    head = rows[start + 1]
    out = {}
    for r in rows[start + 2:]:
        if r[0] is None or str(r[0]).startswith("合计"):
            break
        out[r[0]] = dict(zip(head, r))
    return out


def test_a_fourth_form_goes_through_with_its_spec_only(root, tmp_path):
    spec = SpecRegistry().get(FORM)
    assert [u.name for u in Workspace.load(root).roster.units_filing(FORM)] == DEPARTMENTS

    built = api.build_templates(root)
    assert root / "模板" / f"{spec.file_stem}_v1.xlsx" in built.written

    sent = api.distribute(root, "2026", now=dt.datetime(2026, 12, 1, 9)).result
    assert [p.unit.name for p in sent.packages] == DEPARTMENTS  # the year's only form: nobody else gets a copy
    copies = {p.unit.name: p for p in sent.packages}
    assert [s.form_id for s, _, _ in copies["组织部"].forms] == [FORM]
    assert "截止日期：2027年1月15日" in copies["组织部"].instructions.read_text(encoding="utf-8-sig")

    inbox = root / "收件箱"
    paths = {u: fill(copies[u].files[0], inbox / f"{u}_调研.xlsx",
                     {k: v for k, v in REPORT.items() if not (u in RETURNED and k == "主要成果")})
             for u in ON_TIME + LATE + RETURNED}
    checked = api.validate([paths[u] for u in ON_TIME + RETURNED], root, today=dt.date(2027, 1, 10))
    assert [(r.form_id, r.unit, r.period, r.valid) for r in checked.results] == [
        (FORM, "组织部", "2026", True), (FORM, "宣传部", "2026", True), (FORM, "青发部", "2026", False)]
    assert [i.code for i in checked.results[2].issues] == ["required-value"]

    api.merge(root, [paths[u] for u in ON_TIME + RETURNED], as_of=dt.date(2027, 1, 10),
              received_at=dt.datetime(2027, 1, 10, 9), now=dt.datetime(2027, 1, 10, 9))
    merged = api.merge(root, [paths[u] for u in LATE], as_of=AS_OF, received_at=dt.datetime(2027, 1, 18, 10),
                       now=dt.datetime(2027, 1, 20, 9)).merge
    assert merged.returns == []  # 青发部's 退回件 went out with the first run
    assert sorted(p.name for p in (root / "退回").iterdir()) == ["青发部_2026_调研报告登记表_退回.txt",
                                                                "青发部_2026_调研报告登记表_退回.xlsx"]

    wb = openpyxl.load_workbook(merged.master, data_only=True)
    assert wb.sheetnames == ["总览", "报送情况", "走基层明细", "走基层统计", "观摩明细", "观摩统计", "目标进度", "目标汇总",
                             "调研明细", "调研统计", "问题清单", "来源"]
    detail = _rows(wb["调研明细"])
    assert [r[0] for r in detail] == ON_TIME + LATE
    assert [r[3] for r in detail] == ["2026年"] * 3
    assert [c.value for c in wb["调研明细"][1][5:9]] == ["调研时间", "调研题目", "调研方式", "主要成果"]
    assert {r[6] for r in detail} == {"青年就业创业情况"}
    stats = {r[0]: r[3] for r in _rows(wb["调研统计"]) if r[0] in DEPARTMENTS}
    assert stats == {"组织部": 1, "宣传部": 1, "学校部": 1, "青发部": 0, "统战部": 0, "社联部": 0}

    block = _block(wb["报送情况"], spec.display_name)
    assert {u: row["2026年"] for u, row in block.items()} == {
        "组织部": "按时", "宣传部": "按时", "学校部": "逾期", "青发部": "未报", "统战部": "未报", "社联部": "未报"}
    assert block["学校部"]["逾期"] == 1 and block["统战部"]["未报"] == 1
    kpi = next(r for r in wb["总览"].iter_rows(values_only=True) if r[0] == spec.display_name)
    assert kpi[1:7] == ("2026年", 6, 3, 2, 1, 3)  # 报送期 应报 已报 按时 逾期 未报

    report = api.status(root, as_of=AS_OF, period="2026")
    mine = {i.unit: i.status for i in report.items if i.form_id == FORM}
    assert mine == {"组织部": "on_time", "宣传部": "on_time", "学校部": "late", "青发部": "missing",
                    "统战部": "missing", "社联部": "missing"}
    assert any(f"《{spec.display_name}》2026年，截止 2027-01-15" in text for text in report.reminders.values())
