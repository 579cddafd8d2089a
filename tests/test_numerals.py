"""Counts as units write them: Chinese numerals with measure words are read (with a 提醒 showing the reading);
vague amounts are refused with a request for an exact number."""

from __future__ import annotations

import datetime as dt

import pytest

from conftest import fill
from tuanjian_xlsx.normalise import as_number, chinese_number
from tuanjian_xlsx.validate import validate_file

AT = {"field": "团员青年"}


@pytest.mark.parametrize("text, value", [
    ("十", 10), ("十五", 15), ("二十三", 23), ("一百零二", 102), ("两", 2), ("两百", 200), ("一百一十", 110),
    ("三千零五", 3005), ("一万二千", 12000), ("零", 0), ("〇", 0),
    # a last digit right after 百/千/万 is the next place down, as people say it (it was read as units: 102, 3005)
    ("一百二", 120), ("三千五", 3500), ("两百五", 250), ("一千二", 1200), ("一万二", 12000), ("两万五", 25000),
    ("一万零二", 10002), ("一千零二十", 1020), ("一万二千三", 12300),
    ("万", 10000), ("万五", 15000), ("十万", 100000),  # 万 alone was 0, and 万五 5000
    ("百八十", None), ("千二百", None), ("万万", None),  # “a hundred or so”: no exact count (it was 180)
    ("百万", 1000000), ("千万", 10000000),
    ("五十百", None), ("三千百", None),  # places that do not fall in turn: no number (read as 150 and 3100)
    ("一百十", 110), ("五千五百五十五", 5555), ("一千一百", 1100),
])
def test_plain_chinese_numerals(text, value):
    assert chinese_number(text) == value


@pytest.mark.parametrize("raw, value", [
    ("十五人", 15), ("二十三 人", 23), ("一百零二个", 102), ("两", 2), ("两人次", 2), ("３十", None), ("５人", 5),
    ("１２", 12), ("十五名", 15), ("三十 ", 30),
])
def test_numerals_with_measure_words_and_full_width_digits(raw, value):
    got, issues = as_number(raw, AT, whole=True)
    if value is None:
        assert got is None and [i.code for i in issues] == ["not-a-number"]
    else:
        assert got == value and [i.code for i in issues] == ["normalised-number"]
        assert f"按 {value} 读取" in issues[0].message and raw in issues[0].message


@pytest.mark.parametrize("raw, value", [("1,200", 1200), ("35，120", None), ("15\u200b 20", None), ("１，２００", None), ("12,000人", 12000),
                                        ("15 20", None), ("1 5", None), ("1,5", None), ("1,2345", None)])
def test_thousands_apart_are_one_number_and_two_numbers_are_refused(raw, value):
    """1,200 is twelve hundred; “15 20” (two counts typed in one cell) was read as 1520, and 1,5 is no count; a
    Chinese comma parts two counts (35，120 was read as 35120)."""
    got, issues = as_number(raw, AT, whole=True)
    assert got == value
    assert [i.code for i in issues] == (["normalised-number"] if value else ["not-a-number"])


@pytest.mark.parametrize("raw", ["三十余人", "十几", "若干", "二十多人", "约30人", "三五个"])
def test_vague_amounts_ask_for_an_exact_number(raw):
    got, issues = as_number(raw, AT, whole=True)
    assert got is None and len(issues) == 1 and issues[0].severity == "error"
    if raw != "三五个":
        assert issues[0].code == "vague-number" and "不是确切的数，请填写具体数字" in issues[0].message


def test_a_form_with_chinese_numerals_is_valid_with_a_warning(templates, tmp_path, builtin):
    visit = {"报送单位": "源汇区团委", "报送期": "2026-03", "填表时间": dt.datetime(2026, 3, 5), "姓名": "张三",
             "单位职务": "书记", "走访团组织名称": "一中团委", "走访形式": "座谈交流", "团干部": "两人",
             "团员青年": "十五人", "基层团组织工作开展情况": "好", "基层团组织工作亮点": "多"}
    result = validate_file(fill(templates["visit_report"], tmp_path / "f.xlsx", visit), builtin)
    assert result.valid and (result.records[0].values["cadre_count"], result.records[0].values["youth_count"]) == (2, 15)
    assert sorted(i.code for i in result.issues) == ["normalised-number", "normalised-number"]


@pytest.mark.parametrize("typed, quarter", [("2026年1-3月", 1), ("2026年1月至3月", 1), ("2026.1-2026.3", 1),
                                            ("2026年4～6月", 2), ("2026年7月-9月", 3), ("2026年10-12月份", 4),
                                            ("2026年1-2月", None), ("2026年2-4月", None)])
def test_a_quarter_written_as_its_months(typed, quarter):
    """A unit writes the observation report's quarter as its months (2026年1-3月): refused, with a month for an
    example that the quarterly form refuses too. Three months starting a quarter are that quarter."""
    from tuanjian_xlsx.periods import Period, parse_period

    assert parse_period(typed) == (Period(2026, "quarter", quarter) if quarter else None)
