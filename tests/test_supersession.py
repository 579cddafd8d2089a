"""Which 附件1 visits a resubmission replaces, across template versions, and what staff are told when one is counted
again: through a real merge into the master's 走基层统计."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import pytest

from conftest import fill
from tuanjian_xlsx.merge import MergeResult, merge
from tuanjian_xlsx.workspace import init_workspace

TEMPLATES = Path(__file__).resolve().parent.parent / "workbook_templates" / "visit_report"
VISIT = {"报送单位": "源汇区团委", "报送期": "2026-03", "填表时间": dt.datetime(2026, 3, 5), "姓名": "张三",
         "单位职务": "书记", "走访团组织名称": "第一中学团委", "走访形式": "座谈交流", "团干部": 3, "团员青年": 15,
         "基层团组织工作开展情况": "好", "基层团组织工作亮点": "多"}
V2 = {"走访日期": dt.datetime(2026, 3, 3), "联系电话": "13800000000"}
AS_OF = dt.date(2026, 4, 30)


@pytest.fixture
def ws(tmp_path) -> Path:
    """A workspace distributing 附件1 第 2 版 and still taking 第 1 版."""
    root = tmp_path / "ws"
    init_workspace(root)
    toml = root / "tuanjian.toml"
    text = toml.read_text(encoding="utf-8")
    assert "current_version = 1\naccepted_versions = [1]" in text
    toml.write_text(text.replace("current_version = 1\naccepted_versions = [1]",
                                 "current_version = 2\naccepted_versions = [1, 2]", 1), encoding="utf-8")
    return root


def _send(ws: Path, tmp_path: Path, version: int, name: str, day: int, **values) -> MergeResult:
    """A 附件1 of `version` filled as a person would, merged on 2026-04-`day`."""
    filled = fill(TEMPLATES / f"v{version}.xlsx", tmp_path / name, {**VISIT, **(V2 if version == 2 else {}), **values})
    (ws / "收件箱" / name).write_bytes(filled.read_bytes())
    result = merge(ws, as_of=AS_OF, now=dt.datetime(2026, 4, day, 9, 0))
    assert [(i.outcome, i.valid) for i in result.ingested if i.path.name == name] == [("new", True)]
    return result


def _march(ws: Path) -> tuple[int, int]:
    """走访次数 and 团干部人数 of 源汇区团委 for 2026年3月 in the master."""
    sheet = openpyxl.load_workbook(ws / "汇总" / "汇总表.xlsx", data_only=True)["走基层统计"]
    head = [c.value for c in sheet[1]]
    (row,) = [r for r in sheet.iter_rows(min_row=2, values_only=True) if r[0] == "源汇区团委" and r[3] == "2026年3月"]
    return row[head.index("走访次数")], row[head.index("团干部人数")]


def test_a_visit_resent_on_the_new_version_replaces_the_old_versions(ws, tmp_path):
    _send(ws, tmp_path, 1, "第1版.xlsx", 1, 团干部=3)
    result = _send(ws, tmp_path, 2, "第2版.xlsx", 2, 团干部=5)
    assert _march(ws) == (1, 5) and result.superseded == 1
    assert not [n for n in result.notes if n.code == "visit-other-date"]


def test_an_old_version_resent_after_the_new_replaces_that_organisations_visits(ws, tmp_path):
    _send(ws, tmp_path, 2, "第2版.xlsx", 1, 团干部=5)
    _send(ws, tmp_path, 2, "第2版_另一次.xlsx", 2, 团干部=4, 走访日期=dt.datetime(2026, 3, 6))
    _send(ws, tmp_path, 2, "第2版_二中.xlsx", 3, 团干部=2, 走访团组织名称="第二中学团委")
    assert _march(ws) == (3, 11)
    _send(ws, tmp_path, 1, "第1版.xlsx", 4, 团干部=3)  # no date: it stands for every visit to 第一中学团委
    assert _march(ws) == (2, 5)


def test_a_visit_resent_with_another_date_counts_again_and_staff_are_told(ws, tmp_path):
    _send(ws, tmp_path, 2, "初报.xlsx", 1, 走访日期=dt.datetime(2026, 3, 13))
    result = _send(ws, tmp_path, 2, "更正.xlsx", 2, 走访日期=dt.datetime(2026, 3, 3))
    assert _march(ws) == (2, 6)  # two dates, two visits: as the spec says
    (note,) = [n for n in result.notes if n.code == "visit-other-date"]
    assert note.file == "更正.xlsx"
    assert note.message == ("源汇区团委2026-03的走访“第一中学团委”走访日期为 2026-03-03，与已收到的同一团组织的走访"
                            "（走访日期 2026-03-13）不同，已按另一次走访计入；若是同一次走访更正了日期，请与该单位核对")
    same = _send(ws, tmp_path, 2, "同日重报.xlsx", 3, 团干部=4)  # the same date again: it replaces, nothing to tell
    assert _march(ws) == (2, 7) and not [n for n in same.notes if n.code == "visit-other-date"]


def test_a_sheet_copied_and_left_unchanged_counts_once_as_the_same_visit_in_two_files_does(ws, tmp_path):
    """A unit copies the form's sheet for the next visit and sends the copy unchanged: the master counted the visit
    twice (the same two sheets sent as two files count once). Counted once, the file taken with a warning; a copy
    changed into another visit to the same organisation still counts as another."""
    path = fill(TEMPLATES / "v2.xlsx", tmp_path / "两页.xlsx", {**VISIT, **V2})
    book = openpyxl.load_workbook(path)
    book.copy_worksheet(book.worksheets[0])
    book.save(path)
    (ws / "收件箱" / "两页.xlsx").write_bytes(path.read_bytes())
    result = merge(ws, as_of=AS_OF, now=dt.datetime(2026, 4, 1, 9, 0))
    (item,) = result.ingested
    assert item.valid and _march(ws) == (1, 3)
    other = fill(TEMPLATES / "v2.xlsx", tmp_path / "两次.xlsx", {**VISIT, **V2})
    book = openpyxl.load_workbook(other)
    copy = book.copy_worksheet(book.worksheets[0])
    book.save(other)
    fill(other, other, {"团干部": 4, "走访日期": dt.datetime(2026, 3, 6)}, sheet=copy.title)
    (ws / "收件箱" / "两次.xlsx").write_bytes(other.read_bytes())
    merge(ws, as_of=AS_OF, now=dt.datetime(2026, 4, 2, 9, 0))
    assert _march(ws) == (2, 7)  # the later file's two visits replace the earlier file's one
