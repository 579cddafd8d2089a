"""Form specs as data: loading, fingerprints, and located errors in a bad spec."""

from __future__ import annotations

import shutil

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tuanjian_xlsx.issues import ConfigError
from tuanjian_xlsx.periods import Period, parse_period
from tuanjian_xlsx.specs import SpecRegistry, load_spec, specs_root


def test_three_forms_version_one(registry):
    assert registry.form_ids == ["visit_report", "observation_report", "target_tracker"]
    assert [registry.versions(f) for f in registry.form_ids] == [[1, 2], [1], [1]]
    visit = registry.get("visit_report", 1)
    assert visit.field("visit_form").choices == ["实地走访", "座谈交流", "电话或视频访谈", "问卷调研", "其他"]
    assert [f.type for f in visit.fields if f.id in ("cadre_count", "youth_count")] == ["integer", "integer"]
    assert sum(f.type == "long_text" for f in visit.fields) == 4


def _copy_spec(tmp_path, form_id="visit_report"):
    root = tmp_path / "specs"
    shutil.copytree(specs_root() / form_id, root / form_id)
    return root / form_id / "v1.toml"


def test_fingerprint_ignores_comments_but_not_content(tmp_path, registry):
    p = _copy_spec(tmp_path)
    text = p.read_text(encoding="utf-8")
    p.write_text("# 多一行注释\n" + text, encoding="utf-8")
    assert load_spec(p).fingerprint == registry.get("visit_report", 1).fingerprint
    p.write_text(text.replace('label = "单位职务"', 'label = "单位及职务"'), encoding="utf-8")
    assert load_spec(p).fingerprint != registry.get("visit_report", 1).fingerprint


def test_bad_spec_names_key_and_line(tmp_path):
    p = _copy_spec(tmp_path)
    text = p.read_text(encoding="utf-8").replace('type = "integer"', 'type = "int"', 1)
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        SpecRegistry(p.parent.parent)
    (issue,) = exc.value.issues
    line = next(i for i, t in enumerate(text.splitlines(), 1) if 'type = "int"' in t)
    assert (issue.code, issue.file, issue.line, issue.field) == ("bad-value", "v1.toml", line, "fields[7].type")
    assert "可选值为" in issue.message


@given(st.integers(2000, 2099), st.integers(1, 12), st.integers(1, 4))
def test_periods_round_trip(year, month, quarter):
    for p in (Period(year, "month", month), Period(year, "quarter", quarter), Period(year, "year", 1)):
        assert parse_period(p.code) == p == parse_period(p.label)
        assert p.first_day <= p.last_day < p.due(1, 1)


def test_due_dates_from_rules():
    assert parse_period("2026-03").due(10, 1).isoformat() == "2026-04-10"
    assert parse_period("2026-12").due(10, 1).isoformat() == "2027-01-10"
    assert parse_period("2026年第1季度").due(28, 0).isoformat() == "2026-03-28"
    assert parse_period("2026-02").due(31, 0).isoformat() == "2026-02-28"
    assert parse_period("2026年13月") is None


@pytest.mark.parametrize("old, new, needle", [
    ('input_range = "B6"', 'input_range = "B66666666"', "fields[3].input_range"),
    ('input_range = "D6"', 'input_range = "B6"', "（整个文件）"),  # two fields on one cell
    ('table = "A6:D14"', 'table = "D14:A6"', "layout.table"),
])
def test_bad_layout_is_an_issue_not_a_crash(tmp_path, old, new, needle):
    p = _copy_spec(tmp_path)
    p.write_text(p.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_spec(p)
    (issue,) = exc.value.issues
    assert issue.code == "bad-value" and issue.field == needle
