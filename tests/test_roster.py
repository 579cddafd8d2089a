"""The roster's one due-date function: which day a unit's form for a period is due."""

from __future__ import annotations

import datetime as dt

import pytest

from tuanjian_xlsx.periods import parse_period
from tuanjian_xlsx.roster import DueRule, Roster, Unit, UnitType, default_roster

ROSTER = Roster(
    unit_types=[
        UnitType(name="县区", rules={"monthly": DueRule(cadence="monthly", day=10, month_offset=1),
                                     "quarterly": DueRule(cadence="quarterly", day=28),
                                     "late": DueRule(cadence="monthly", day=31, month_offset=1),
                                     "yearly": DueRule(cadence="yearly", day=15, month_offset=1),
                                     "never": DueRule(cadence="none")}),
        UnitType(name="部室", rules={}),
    ],
    units=[Unit(id="a", name="甲", type="县区"), Unit(id="b", name="乙", type="部室")],
    tasks=[],
)


@pytest.mark.parametrize("unit, form, period, due", [
    ("甲", "monthly", "2026-03", dt.date(2026, 4, 10)),  # the next month
    ("甲", "monthly", "2026-12", dt.date(2027, 1, 10)),  # into the next year
    ("甲", "quarterly", "2026-Q1", dt.date(2026, 3, 28)),  # the quarter's last month
    ("甲", "late", "2026-01", dt.date(2026, 2, 28)),  # the 31st of February is its last day
    ("甲", "late", "2028-01", dt.date(2028, 2, 29)),
    ("甲", "yearly", "2026", dt.date(2027, 1, 15)),
    ("甲", "never", "2026-03", None),  # 不报送
    ("甲", "unknown", "2026-03", None),  # a form the type has no rule for
    ("乙", "monthly", "2026-03", None),  # a unit whose type files nothing
    (None, "monthly", "2026-03", None),  # the unit is not known
    ("甲", "monthly", None, None),  # the period is not known
])
def test_due(unit, form, period, due):
    u = ROSTER.unit_by_name(unit) if unit else None
    assert ROSTER.due(u, form, parse_period(period) if period else None) == due


def test_the_plans_own_due_days(builtin):
    """附件1: 部室 by the 28th of the month, 县区 by the 10th of the next; 附件2 by the 28th of the quarter's end."""
    r = builtin.roster
    march, q1 = parse_period("2026-03"), parse_period("2026-Q1")
    assert r.due(r.unit_by_name("组织部"), "visit_report", march) == dt.date(2026, 3, 28)
    assert r.due(r.unit_by_name("源汇区团委"), "visit_report", march) == dt.date(2026, 4, 10)
    assert r.due(r.unit_by_name("源汇区团委"), "observation_report", q1) == dt.date(2026, 3, 28)


def test_the_default_assessment_rules_are_data_and_round_trip_through_the_roster_book(tmp_path, registry):
    """考核细则: the plan gives no weights, so the defaults (default_plan.toml) are product decisions, 100 points for a
    部室; 名单与目标.xlsx carries them (forms by their sheet names, the assessed types in full) and reads back equal."""
    from tuanjian_xlsx.assess_rules import default_rules
    from tuanjian_xlsx.plan import Workspace
    from tuanjian_xlsx.workspace import init_workspace

    rules = default_rules(registry)
    assert {r.item: r.points for r in rules.scored} == {"timeliness": 30, "visits": 20, "visit_week": 5,
                                                         "observation": 15, "targets": 25, "research": 5}
    assert rules.rule("research").unit_types == ["机关部室"] and rules.rule("research").task == "3-2"
    assert rules.late_credit == 0.5 and rules.adjustment.points == 5
    blank = rules.model_copy(update={"rows": [r.model_copy(update={"late_credit": None}) for r in rules.rows]})
    assert blank.late_credit == 0.5  # 逾期计分 left blank: default_plan.toml's, the one place it is set
    # 走基层: every type files 附件1 monthly and owes a visit a month, written out (blank or 0 = not counted)
    assert {t.name: t.min_visits for t in default_roster(registry).unit_types} == dict.fromkeys(
        ["县区团委", "功能区团工委", "系统团委", "机关部室", "直属单位"], 1)
    init_workspace(tmp_path)
    read = Workspace.load(tmp_path).assessment_rules()
    assert not read.builtin and read.rule("scope").unit_types == ["县区团委", "功能区团工委", "系统团委", "机关部室", "直属单位"]
    assert [r.model_copy(update={"unit_types": []}) if r.item == "scope" else r for r in read.rows] == rules.rows
