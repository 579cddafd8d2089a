"""Validation on a corpus built in code: templates filled by label as a person would, some re-saved by
LibreOffice; each case asserts the exact (file, cell, code) triples."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import fill, set_passport, triples
from tuanjian_xlsx.build import Prefill, build_template
from tuanjian_xlsx.checking import validate_many
from tuanjian_xlsx.intake import expand
from tuanjian_xlsx.validate import validate_file
from tuanjian_xlsx.xlsxio import excel_serial

VISIT = {"报送单位": "源汇区团委", "报送期": "2026-03", "填表时间": dt.datetime(2026, 3, 5), "姓名": "张三",
         "单位职务": "组织部部长", "走访团组织名称": "源汇区第一中学团委", "走访形式": "座谈交流", "团干部": 2,
         "团员青年": 15, "基层团组织工作开展情况": "开展主题团日", "基层团组织工作亮点": "志愿服务"}
F = "v.xlsx"


@pytest.fixture
def visit(templates, tmp_path, builtin):
    def make(changes=None, name=F, src=None, base=VISIT):
        values = {**base, **(changes or {})}
        path = fill(src or templates["visit_report"], tmp_path / name, {k: v for k, v in values.items()})
        return validate_file(path, builtin)
    return make


def test_clean_form(visit):
    r = visit()
    assert r.valid and r.issues == []
    assert (r.form_id, r.version, r.unit, r.unit_id, r.period) == ("visit_report", 1, "源汇区团委", "yuanhui", "2026-03")
    (rec,) = r.records
    assert rec.values["cadre_count"] == 2 and rec.values["fill_date"] == dt.date(2026, 3, 5)
    assert rec.values["visit_form"] == "座谈交流" and rec.values["problems"] is None


@pytest.mark.parametrize("label, typed, cell, code, value", [
    ("团干部", "５人", "C9", "normalised-number", 5),
    ("团员青年", "3 次", "C10", "normalised-number", 3),
    ("团员青年", "12", "C10", "normalised-number", 12),
    ("走访形式", "　座谈交流 ", "B8", "normalised-choice", "座谈交流"),
    ("走访形式", "座谈交流", "B8", None, "座谈交流"),
    ("填表时间", "2026年3月5日", "D5", "normalised-date", dt.date(2026, 3, 5)),
    ("填表时间", "2026.3.5", "D5", "normalised-date", dt.date(2026, 3, 5)),
    ("填表时间", "2026/3/5", "D5", "normalised-date", dt.date(2026, 3, 5)),
    ("填表时间", "3月5日", "D5", "normalised-date", dt.date(2026, 3, 5)),
    ("填表时间", "２０２６年３月５日", "D5", "normalised-date", dt.date(2026, 3, 5)),
    ("填表时间", "三月五日", "D5", "normalised-date", dt.date(2026, 3, 5)),
    ("填表时间", "二〇二六年三月五日", "D5", "normalised-date", dt.date(2026, 3, 5)),
    ("填表时间", excel_serial(dt.date(2026, 3, 5)), "D5", None, dt.date(2026, 3, 5)),  # the cell is a date cell
])
def test_normalised_with_a_warning(visit, label, typed, cell, code, value):
    r = visit({label: typed})
    assert r.valid
    assert triples(r) == ([(F, cell, code)] if code else [])
    fid = {"团干部": "cadre_count", "团员青年": "youth_count", "走访形式": "visit_form", "填表时间": "fill_date"}[label]
    assert r.records[0].values[fid] == value


@pytest.mark.parametrize("label, typed, cell, code", [
    ("单位职务", None, "D6", "required-value"),
    ("单位职务", "   ", "D6", "required-value"),
    ("团员青年", "五六人", "C10", "not-a-number"),
    ("团干部", -2, "C9", "negative"),
    ("团干部", 2.5, "C9", "not-an-integer"),
    ("团员青年", 13812345678, "C10", "number-too-large"),  # a phone number pasted into a count
    ("团干部", 1e20, "C9", "number-too-large"),
    ("走访形式", "步行", "B8", "not-in-choices"),
    ("填表时间", "2026年13月45日", "D5", "bad-date"),
    ("填表时间", dt.datetime(2025, 12, 1), "D5", "date-outside-period"),
    ("报送单位", "某某团委", "B4", "unknown-unit"),
    ("报送单位", None, "B4", "required-value"),
    ("报送期", "三月份", "B5", "not-a-period"),
    ("报送期", "2026-Q1", "B5", "wrong-period-kind"),
])
def test_errors_at_their_cells(visit, label, typed, cell, code):
    r = visit({label: typed})
    assert not r.valid
    assert triples(r) == [(F, cell, code)]


def test_messages_are_chinese_and_name_the_field(visit):
    r = visit({"团干部": -2})
    (issue,) = r.issues
    assert issue.render() == "错误：v.xlsx · 走基层报告单 · C9 · 团干部：“团干部”不能为负数，现为 -2"


def test_text_starting_with_equals_stays_text(templates, tmp_path, builtin):
    path = fill(templates["visit_report"], tmp_path / F, VISIT)
    wb = openpyxl.load_workbook(path)
    c = wb.worksheets[0]["B12"]
    c.value, c.data_type = "=不是公式", "s"
    wb.save(path)
    r = validate_file(path, builtin)
    assert r.valid and r.records[0].values["highlights"] == "=不是公式"


def _distributed(builtin, tmp_path, unit="舞阳县团委", period=("2026-03", "2026年3月"), form="visit_report"):
    spec = builtin.spec(form)
    p = tmp_path / "copy.xlsx"
    p.write_bytes(build_template(spec, builtin.roster, prefill=Prefill(builtin.roster.unit_by_name(unit), *period)))
    return p


def test_distributed_copy_and_passport_mismatch(visit, builtin, tmp_path):
    src = _distributed(builtin, tmp_path)
    values = {k: v for k, v in VISIT.items() if k not in ("报送单位", "报送期")}
    r = visit(src=src, base=values)
    assert r.valid and (r.unit, r.period) == ("舞阳县团委", "2026-03")
    r = visit({"报送单位": "源汇区团委", "报送期": "2026-04"}, src=src, name="x.xlsx", base=values)
    assert triples(r) == [("x.xlsx", "B4", "passport-mismatch"), ("x.xlsx", "B5", "passport-mismatch"),
                          ("x.xlsx", "D5", "date-outside-period")]  # 3月5日 is not in April


@pytest.mark.parametrize("changes, code", [
    ({"form_id": "weekly_report"}, "unknown-form"),
    ({"version": "9"}, "newer-version"),
    ({"fingerprint": "0" * 64}, "fingerprint-mismatch"),
    ({"form_id": "observation_report"}, "passport-other-form"),
])
def test_passport_problems(templates, tmp_path, builtin, changes, code):
    path = fill(templates["visit_report"], tmp_path / "a.xlsx", VISIT)
    set_passport(path, tmp_path / F, **changes)
    r = validate_file(tmp_path / F, builtin)
    assert (F, None, code) in triples(r) and not r.valid


def test_version_no_longer_accepted(templates, tmp_path, builtin):
    forms = dict(builtin.settings.forms)
    forms["visit_report"] = forms["visit_report"].model_copy(update={"accepted_versions": []})
    ws = replace(builtin, settings=builtin.settings.model_copy(update={"forms": forms}))
    r = validate_file(fill(templates["visit_report"], tmp_path / F, VISIT), ws)
    assert triples(r) == [(F, None, "version-not-accepted")]
    assert r.issues[0].message == "已不再接收“附件1 团干部走基层情况报告单”第 1 版，请改用第 1 版模板"


def test_retyped_form_without_passport_is_read_by_label(tmp_path, builtin):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    ws["B2"] = "团干部走基层情况报告单"
    layout = [("报送单位：", "源汇区团委"), ("报送期：", "2026年3月"), ("填表时间：", "2026-03-05"),
              ("姓  名", "李四"), ("单位职务", "书记"), ("走访团组织名称", "某中学团委"), ("走访形式", "实地走访"),
              ("团干部", 1), ("团员青年", 8), ("基层团组织\n工作开展情况", "好"), ("基层团组织\n工作亮点", "多")]
    for i, (label, value) in enumerate(layout, start=4):
        ws.cell(row=i, column=2, value=label)
        ws.cell(row=i, column=3, value=value)
    wb.save(tmp_path / "手工.xlsx")
    r = validate_file(tmp_path / "手工.xlsx", builtin)
    assert r.valid and r.records[0].values["cadre_count"] == 1 and r.unit == "源汇区团委"
    codes = {i.code for i in r.issues}
    assert {"no-passport", "template-modified"} <= codes


def test_several_visits_in_one_file(templates, tmp_path, builtin):
    path = fill(templates["visit_report"], tmp_path / "a.xlsx", VISIT)
    wb = openpyxl.load_workbook(path)
    second = wb.copy_worksheet(wb.worksheets[0])
    second["B7"] = "第二中学团委"
    third = wb.copy_worksheet(wb.worksheets[0])
    third["B4"] = "郾城区团委"
    wb.save(tmp_path / F)
    r = validate_file(tmp_path / F, builtin)
    assert [rec.values["org_name"] for rec in r.records] == ["源汇区第一中学团委", "第二中学团委", "源汇区第一中学团委"]
    assert [(i.sheet, i.cell, i.code) for i in r.issues if i.severity == "error"] == [(third.title, "B4", "record-mismatch")]


def test_a_sheet_copied_for_the_next_visit_and_left_unchanged_is_pointed_out(templates, tmp_path, builtin):
    """Two sheets holding the very same record: the copy is pointed out, as a warning — the file is still taken,
    both records kept as read (the master counts the visit once: test_supersession)."""
    path = fill(templates["visit_report"], tmp_path / "a.xlsx", VISIT)
    wb = openpyxl.load_workbook(path)
    copy = wb.copy_worksheet(wb.worksheets[0])
    wb.save(tmp_path / F)
    r = validate_file(tmp_path / F, builtin)
    assert r.valid and len(r.records) == 2
    (issue,) = [i for i in r.issues if i.code == "record-repeated"]
    assert issue.sheet == copy.title and wb.worksheets[0].title in issue.message


def test_form_this_unit_does_not_file(templates, tmp_path, builtin):
    path = fill(templates["target_tracker"], tmp_path / F, {"报送单位": "市青年创业服务中心（市志愿者服务中心）",
                                                            "报送期": "2026-Q1", "填表时间": dt.datetime(2026, 4, 2)})
    r = validate_file(path, builtin)
    assert (F, "C3", "form-not-filed") in triples(r)


def _tracker_rows(path, spec):
    wb = openpyxl.load_workbook(path)
    ws = wb[spec.sheet_name]
    return wb, ws, {ws[f"A{r}"].value: r for r in range(spec.header_row + 1, ws.max_row + 1) if ws[f"A{r}"].value}


def test_tracker_rows(builtin, tmp_path):
    spec = builtin.registry.get("target_tracker")
    src = _distributed(builtin, tmp_path, "源汇区团委", ("2026-Q1", "2026年第1季度"), "target_tracker")
    wb, ws, rows = _tracker_rows(src, spec)
    ws["O3"] = dt.datetime(2026, 4, 3)
    _fill_own_rows(ws, rows, builtin, "县区团委", done=3, base=5)
    ws[f"K{rows['1-3-2']}"] = 9                 # 完成数 > 基数
    ws[f"L{rows['1-2']}"] = None                # only one of the two
    ws[f"G{rows['1-6']}"] = 0.5                 # target typed over
    ws[f"K{rows['2-3']}"] = "三两个"               # not a number
    wb.save(tmp_path / F)
    r = validate_file(tmp_path / F, builtin)
    assert triples(r) == sorted([(F, f"K{rows['1-3-2']}", "done-above-base"), (F, f"L{rows['1-2']}", "ratio-incomplete"),
                                 (F, f"G{rows['1-6']}", "locked-changed"), (F, f"K{rows['2-3']}", "not-a-number")])
    done = {rec.values["code"]: rec.values["done"] for rec in r.records}
    assert done["1-1-1"] == 3 and done["1-3-2"] == 9


def test_tracker_other_types_rows_may_stay_empty_in_a_blank_tracker(templates, tmp_path, builtin):
    spec = builtin.registry.get("target_tracker")
    path = fill(templates["target_tracker"], tmp_path / "a.xlsx", {"报送单位": "西城区团工委", "报送期": "2026-Q1",
                                                                  "填表时间": dt.datetime(2026, 4, 2)})
    wb, ws, rows = _tracker_rows(path, spec)
    _fill_own_rows(ws, rows, builtin, "功能区团工委")
    ws[f"K{rows['1-1-1']}"], ws[f"L{rows['1-1-1']}"] = 1, 2  # a 县区/系统 task
    ws.delete_rows(rows["2-3"])  # and a row of its own deleted
    wb.save(tmp_path / F)
    r = validate_file(tmp_path / F, builtin)
    # another type's row filled in a blank tracker: said and left out (the form's own 自查 calls it fine, and the
    # unit's own rows are what counts); a row of its own deleted: refused
    assert [(i.cell, i.code) for i in r.issues if i.severity == "error"] == [(None, "task-missing")]
    assert [(i.cell, i.code) for i in r.issues if i.code == "task-not-for-unit"] == [
        (f"A{rows['1-1-1']}", "task-not-for-unit")]
    assert "1-1-1" not in {rec.values["code"] for rec in r.records}


def test_an_unfilled_tracker_names_every_empty_input(templates, tmp_path, builtin):
    spec = builtin.registry.get("target_tracker")
    path = fill(templates["target_tracker"], tmp_path / F, {"报送单位": "西城区团工委", "报送期": "2026-Q1",
                                                            "填表时间": "垃圾"})
    r = validate_file(path, builtin)
    _, _, rows = _tracker_rows(path, spec)
    own = builtin.roster.tasks_for("功能区团工委")
    expected = [(F, "O3", "bad-date")]
    for t in own:
        cols = {"ratio": "KL", "growth": "KL", "count": "K", "yesno": "K", "qualitative": "O"}[t.kind]
        expected += [(F, f"{c}{rows[t.code]}", "required-value") for c in cols]
    assert triples(r) == sorted(expected)


def _fill_own_rows(ws, rows, builtin, unit_type, done=1, base=2):
    """Every row of a unit type's tasks filled correctly, as a careful person would."""
    for t in builtin.roster.tasks_for(unit_type):
        r = rows[t.code]
        if t.kind in ("ratio", "growth"):
            ws[f"K{r}"], ws[f"L{r}"] = done, base
        elif t.kind == "count":
            ws[f"K{r}"] = done
        elif t.kind == "yesno":
            ws[f"K{r}"] = "是"
        else:
            ws[f"O{r}"] = "已开展"


def test_libreoffice_resave_validates_the_same(visit, templates, tmp_path, builtin, libreoffice):
    first = visit({"团干部": "５人"})
    back = libreoffice.convert(first.path, tmp_path / "lo")
    again = validate_file(back, builtin)
    assert [(i.cell, i.code) for i in again.issues] == [(i.cell, i.code) for i in first.issues]
    assert again.records[0].values == first.records[0].values


@pytest.mark.parametrize("name", ["旧.xls", "旧.et", "改了后缀的旧表.xlsx"])
def test_an_old_format_workbook_is_refused_whatever_it_is_called(visit, tmp_path, builtin, libreoffice, name):
    """Excel 2003's .xls was refused while the same bytes named .et were read — past every check, where one stray
    cell far away makes calamine take a gigabyte. Refused under any name, with how to resave it."""
    old = libreoffice.convert(visit({}).path, tmp_path / "lo", to="xls")
    assert old.read_bytes().startswith(b"\xd0\xcf\x11\xe0")
    again = validate_file(old.rename(tmp_path / name), builtin)
    assert [i.code for i in again.issues] == ["legacy-xls"] and "另存为" in again.issues[0].message


def test_hostile_and_odd_files_in_a_batch(tmp_path, builtin, templates):
    (tmp_path / "in").mkdir()
    good = fill(templates["visit_report"], tmp_path / "in" / "好.xlsx", VISIT)
    (tmp_path / "in" / "~$好.xlsx").write_bytes(b"lock")       # Excel's lock file: skipped silently
    (tmp_path / "in" / "空.xlsx").write_bytes(b"")
    (tmp_path / "in" / "旧.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512)
    (tmp_path / "in" / "说明.txt").write_text("not a spreadsheet")
    results = validate_many(builtin, list(expand([tmp_path / "in"])))
    assert [(r.path.name, r.valid, [i.code for i in r.issues]) for r in results] == [
        ("好.xlsx", True, []), ("旧.xls", False, ["legacy-xls"]), ("空.xlsx", False, ["empty-file"])]
    assert good.exists()


_cell_values = st.one_of(
    st.none(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=30),
    st.datetimes(min_value=dt.datetime(1901, 1, 1), max_value=dt.datetime(9998, 12, 31)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(list(VISIT)), _cell_values, min_size=1))
def test_validate_never_raises(templates, tmp_path, builtin, changes):
    path = fill(templates["visit_report"], tmp_path / "h.xlsx", {**VISIT, **changes})
    r = validate_file(path, builtin)
    assert all(i.message and i.code for i in r.issues)
    assert not any(i.code == "file-unreadable" for i in r.issues)  # no internal error surfaced as one


def test_a_serial_in_a_plain_cell_is_read_as_a_date_with_a_warning():
    from tuanjian_xlsx.normalise import as_date

    value, issues = as_date(float(excel_serial(dt.date(2026, 3, 5))), {"file": F, "cell": "D5", "field": "填表时间"}, None)
    assert value == dt.date(2026, 3, 5) and [(i.cell, i.code) for i in issues] == [("D5", "normalised-date")]


@pytest.mark.parametrize("period, typed, expected", [
    ("2026-Q4", "1月8日", dt.date(2027, 1, 8)),   # filled after a Q4 period: next January
    ("2026-12", "1月5日", dt.date(2027, 1, 5)),
    ("2026-03", "2月28日", dt.date(2026, 2, 28)),  # before the period: stays in its year (and is then outside it)
    ("2026-03", "3月5日", dt.date(2026, 3, 5)),
])
def test_short_dates_take_the_year_that_fits(period, typed, expected):
    from tuanjian_xlsx.normalise import as_date
    from tuanjian_xlsx.periods import parse_period

    value, _ = as_date(typed, {"field": "填表时间"}, parse_period(period))
    assert value == expected


@pytest.mark.parametrize("typed", ["2026-4-3 上午", "2026/4/3 10:30", "2026年4月3日 星期五", "2026年4月3号", "26年4月3日",
                                   "20260403", 20260403, "4月3日（周五）下午3点半", "2026 年 4 月 3 日",
                                   "2026-04-03 09:30:00", "2026年4月3日16:30"])
def test_dates_that_can_mean_only_one_day_are_read(typed):
    """A date as units type it, with a weekday, a time of day, 号, a two-digit year or no separators at all: they
    were refused as 不是有效日期 (spaces were folded away, so 4/3 10:30 ran together as the 31st)."""
    from tuanjian_xlsx.normalise import as_date
    from tuanjian_xlsx.periods import parse_period

    value, issues = as_date(typed, {"field": "填表时间"}, parse_period("2026-04"))
    assert value == dt.date(2026, 4, 3) and [i.code for i in issues] == ["normalised-date"]


def test_a_long_crafted_date_is_refused_at_once():
    """“2026年3月5日 ” + “1点1” × 28 made the time-of-day pattern backtrack for minutes (the worker gave up at 120 s,
    twice): a text longer than any date is no date, refused before any pattern looks at it."""
    import time

    from tuanjian_xlsx.normalise import as_date

    start = time.perf_counter()
    value, issues = as_date("2026年3月5日 " + "1点1" * 28 + "。", {"field": "填表时间"}, None)
    assert value is None and [i.code for i in issues] == ["bad-date"] and time.perf_counter() - start < 0.5


@pytest.mark.parametrize("typed", ["2026/4/310:30", "2026-4-31", "2026-4-3 10", "2026年4月3日 十点多", "20261403", 99999999])
def test_dates_that_cannot_be_told_stay_refused(typed):
    from tuanjian_xlsx.normalise import as_date
    from tuanjian_xlsx.periods import parse_period

    value, issues = as_date(typed, {"field": "填表时间"}, parse_period("2026-04"))
    assert value is None and [i.code for i in issues] == ["bad-date"]


def test_a_form_filled_late_after_a_reminder_is_late_not_wrong(templates, tmp_path, builtin):
    """A unit that catches up months later (after a 催报) fills the form the day it sends it: its 填表时间 may run to
    the day the file arrived, not only to a month after the due date; a date after its arrival stays wrong."""
    late = {**VISIT, "报送期": "2026-01", "填表时间": dt.datetime(2026, 4, 20)}
    path = fill(templates["visit_report"], tmp_path / "late.xlsx", late)
    assert validate_file(path, builtin, received=dt.date(2026, 4, 20)).valid
    r = validate_file(path, builtin, received=dt.date(2026, 4, 19))  # filled after it arrived: no
    assert triples(r) == [("late.xlsx", "D5", "date-outside-period")]
    assert "2026-01-01～2026-04-19" in r.issues[0].message
    r = validate_file(path, builtin)  # arrival unknown: a month after the due date, as before
    assert triples(r) == [("late.xlsx", "D5", "date-outside-period")]


def test_a_date_after_the_form_arrived_is_said(templates, tmp_path, builtin):
    """填表时间 3 May on a form received on 5 April (a 5 typed for a 4) passed without a word: it lay within a
    month of the due date. It is said (a warning: the received time may be the one that is off)."""
    april = {**VISIT, "报送期": "2026-04", "填表时间": dt.datetime(2026, 5, 3)}
    path = fill(templates["visit_report"], tmp_path / "typo.xlsx", april)
    r = validate_file(path, builtin, received=dt.date(2026, 4, 5))
    assert r.valid and triples(r) == [("typo.xlsx", "D5", "date-after-received")]
    assert triples(validate_file(path, builtin, received=dt.date(2026, 5, 3))) == []


def test_a_period_that_excel_turned_into_a_date_is_read_as_its_month(visit):
    """“2026年3月” typed into a General cell becomes the date 2026-03-01 in Excel and WPS; it was refused, the
    message asking for what the unit had typed. It is read as that month, with a warning saying why; another day of
    the month is no period."""
    r = visit({"报送期": dt.datetime(2026, 3, 1)})
    assert r.valid and r.period == "2026-03"
    assert triples(r) == [(F, "B5", "normalised-period")]
    assert "Excel、WPS 会把“2026年3月”这样的写法变成日期" in r.issues[0].message
    assert triples(visit({"报送期": dt.datetime(2026, 3, 15)})) == [(F, "B5", "not-a-period")]


@pytest.mark.parametrize("typed, unit", [("共青团源汇区委员会", "源汇区团委"), ("漯河市源汇区团委", "源汇区团委"), ("源汇区", "源汇区团委"),
                                         ("漯河市教育局青工委", "市教育局青工委"),
                                         ("示范区团工委", "城乡一体化示范区团工委"), ("经开区团工委", "经济技术开发区团工委"),
                                         ("市青年创业服务中心", "市青年创业服务中心（市志愿者服务中心）")])
def test_a_unit_written_by_another_of_its_names_is_read_as_it(templates, tmp_path, builtin, typed, unit):
    """Official, short and city-prefixed names in a blank template's 报送单位 were all refused as 不在单位名单中."""
    path = fill(templates["visit_report"], tmp_path / "v.xlsx", dict(VISIT, 报送单位=typed))
    r = validate_file(path, builtin)
    assert r.valid and r.unit == unit
    (note,) = [i for i in r.issues if i.code == "normalised-unit"]
    assert f"按“{unit}”读取（原为“{typed}”）" in note.message


@pytest.mark.parametrize("typed, near", [("源汇区团委会", "源汇区团委"), ("区团委", None), ("张三", None),
                                         # another body's name ending in a roster name is not that unit (it was
                                         # counted as the city's 宣传部, 郾城区团委 left 未报)
                                         ("郾城区团委宣传部", None), ("源汇区委组织部", None), ("城区团委", None),
                                         # another city's bureau is not the committee's own city's
                                         ("舞钢市教育局青工委", None), ("城市志愿者服务中心", None)])
def test_a_unit_that_cannot_be_told_is_refused_with_the_nearest_name(templates, tmp_path, builtin, typed, near):
    path = fill(templates["visit_report"], tmp_path / "v.xlsx", dict(VISIT, 报送单位=typed))
    r = validate_file(path, builtin)
    (issue,) = [i for i in r.issues if i.code.startswith("unknown-unit")]
    assert not r.valid and (f"是否为“{near}”" in issue.message if near else "不在单位名单中" in issue.message)


def test_a_copy_given_another_period_says_which_form_to_use(builtin, tmp_path):
    """Last month's copy with 报送期 changed to this month was refused with 与下发时的“2026-03”不一致, and nothing
    of what to do."""
    from tuanjian_xlsx.build import Prefill, build_template

    spec = builtin.registry.get("visit_report")
    copy = tmp_path / "三月.xlsx"
    copy.write_bytes(build_template(spec, builtin.roster, prefill=Prefill(builtin.roster.unit_by_name("源汇区团委"),
                                                                          "2026-03", "2026年3月")))
    path = fill(copy, tmp_path / "四月.xlsx", {**VISIT, "报送期": "2026年4月", "填表时间": dt.datetime(2026, 4, 5)})
    (issue,) = [i for i in validate_file(path, builtin).issues if i.code == "passport-mismatch"]
    assert "请用为它下发的表" in issue.message and issue.cell == "B5"


def test_an_invisible_character_pasted_into_a_name_is_dropped(templates, tmp_path, builtin):
    """源汇区团委 with a zero-width space pasted along was refused, suggesting 源汇区团委 — which looked the same."""
    for typed in ("\ufeff源汇区团委\u200b", "\u202a源汇区团委\u202c", "源汇区\xad团委"):
        path = fill(templates["visit_report"], tmp_path / "v.xlsx", dict(VISIT, 报送单位=typed, 填表时间="2026年3月5日\u200b"))
        r = validate_file(path, builtin)
        assert r.valid and r.unit == "源汇区团委", typed


def test_a_return_keeps_staffs_notes_to_staff(templates, tmp_path, builtin):
    """The 退回件's 问题清单 (mailed to the sender, with the unit's roster address in Cc) said the sender was not on
    the roster and showed the unit's addresses; notes on how a file came are staff's."""
    from tuanjian_xlsx.issues import Issue
    from tuanjian_xlsx.returns import build_return

    path = fill(templates["visit_report"], tmp_path / "v.xlsx", dict(VISIT, 团干部=-2))
    result = validate_file(path, builtin)
    result.issues.append(Issue.make("sender-mismatch", file="v.xlsx", sender="teacher@else.example", unit="源汇区团委",
                                    expected="yh@163.com"))  # (as checking.validated adds it for a unit's mail)
    _, rows, message = build_return(result, builtin)
    assert rows and not [r for r in rows if "teacher@else.example" in r.message] and "yh@163.com" not in message


@pytest.mark.parametrize("organisation, city", [("共青团漯河市委", "漯河市"), ("漯河团市委", "漯河市"), ("共青团漯河市委组织部", "漯河市"),
                                                ("共青团河南省漯河市委员会", "漯河市"), ("共青团团风县委", "团风县"),
                                                ("团市委组织部", None), ("某某单位", None)])
def test_the_committees_city_is_read_from_its_name(builtin, organisation, city):
    """漯河团市委 or 共青团河南省漯河市委员会 as the committee's name left no city, and 漯河市源汇区团委 was refused."""
    from tuanjian_xlsx.roster import city_of

    assert city_of(organisation) == city
    unit = builtin.roster.unit_called("漯河市源汇区团委", city)
    # the committee's own city before a name, or without a city told, a place before a name not starting with 市
    assert (unit.name if unit else None) == (None if city == "团风县" else "源汇区团委")
    named = builtin.roster.unit_called("漯河市教育局青工委", city)
    assert (named.name if named else None) == ("市教育局青工委" if city == "漯河市" else None)
