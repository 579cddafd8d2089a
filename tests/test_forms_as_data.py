"""How a form is used is its spec's data: plan order, supersession, master sheets, instructions; the diff of two
versions as records."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import pytest

from tuanjian_xlsx.issues import ConfigError
from tuanjian_xlsx.ledger import FileRow
from tuanjian_xlsx.specs import SpecRegistry, load_spec, specs_root
from tuanjian_xlsx.status import close_names, effective
from tuanjian_xlsx.versions import diff_specs, spec_changes


def _copy(tmp_path, form_id="visit_report", version=1):
    root = tmp_path / "specs"
    shutil.copytree(specs_root() / form_id, root / form_id)
    return root / form_id / f"v{version}.toml"


def test_the_plan_order_and_the_master_sheets_come_from_the_specs(registry):
    assert [(s.form_id, s.order, s.master.sheet_names) for s in registry.latest()] == [
        ("visit_report", 1, ["走基层明细", "走基层统计"]),
        ("observation_report", 2, ["观摩明细", "观摩统计"]),
        ("target_tracker", 3, ["目标进度", "目标汇总"]),
    ]
    assert [registry.get("visit_report", v).supersede_by for v in (1, 2)] == [["org_name"], ["org_name", "visit_date"]]


def test_how_a_form_is_used_is_not_in_its_fingerprint(tmp_path, registry):
    p = _copy(tmp_path)
    text = p.read_text(encoding="utf-8")
    p.write_text(text.replace('detail_sheet = "走基层明细"', 'detail_sheet = "走访明细"').replace("order = 1", "order = 7"),
                 encoding="utf-8")
    spec, committed = load_spec(p), registry.get("visit_report", 1)
    assert spec.fingerprint == committed.fingerprint  # filled files of this version are still this version's
    assert spec.digest != committed.digest  # but the master, which shows the sheet, is not the same


@pytest.mark.parametrize("old, new", [
    ('supersede_by = ["org_name"]', 'supersede_by = ["org"]'),
    ('close_names = "org_name"', 'close_names = "orgname"'),
    ('{ field = "cadre_count"', '{ field = "cadres"'),
    ('detail_sheet = "走基层明细"', 'progress_sheet = "走基层明细"'),
    ('rows = "unit_period"', 'rows = "unit"'),  # a per-unit table counts; it has no sums
    ('detail_sheet = "走基层明细"', 'detail_sheet = "走基层:明细"'),
])
def test_a_use_key_that_does_not_fit_the_form_is_refused(tmp_path, old, new):
    p = _copy(tmp_path)
    p.write_text(p.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_spec(p)
    assert [i.code for i in exc.value.issues] == ["bad-value"]


def test_extra_folders_add_forms_but_never_versions_of_anothers(tmp_path):
    extra = tmp_path / "extra"
    (extra / "visit_report").mkdir(parents=True)
    text = (specs_root() / "visit_report" / "v2.toml").read_text(encoding="utf-8")
    (extra / "visit_report" / "v3.toml").write_text(text.replace("version = 2", "version = 3"), encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        SpecRegistry(extra_dirs=[extra])
    assert "已在" in exc.value.issues[0].message
    assert SpecRegistry(extra_dirs=[]).form_ids == ["visit_report", "observation_report", "target_tracker"]


def _file(id, unit, period, records, form_id="visit_report", day=1):
    return FileRow(id, f"{id:064x}", f"f{id}.xlsx", "", ".xlsx", dt.datetime(2026, 4, day, 9), True, form_id, 1, unit,
                   unit, period, [{"values": r} for r in records], [])


def test_supersession_follows_supersede_by(registry):
    forms = {f: registry.get(f, 1) for f in registry.form_ids}
    a = _file(1, "u1", "2026-03", [{"org_name": "一中团委"}, {"org_name": "二中团委"}])
    b = _file(2, "u1", "2026-03", [{"org_name": " 一中团委"}], day=2)  # the same visit, spelt with a space
    c = _file(3, "u1", "2026-03", [{"org_name": "二中团委"}], day=3)
    eff = effective([a, b], forms)
    assert [(f.id, r["org_name"]) for f, r in eff.records["visit_report"]] == [(1, "二中团委"), (2, " 一中团委")]
    assert eff.superseded_by == {}  # file 1 still holds a visit that counts
    assert effective([a, b, c], forms).superseded_by == {1: 3}
    whole = dict(forms, visit_report=forms["visit_report"].model_copy(update={"supersede_by": []}))
    assert effective([a, b], whole).superseded_by == {1: 2}  # without the key a later file replaces the whole file
    near = _file(4, "u1", "2026-03", [{"org_name": "一中团支部"}], day=4)
    assert [(f.id, new, old) for f, new, old in close_names([a, near], {4}, forms)] == [(4, "一中团支部", "一中团委")]


def test_close_names_are_two_edits_apart_by_the_full_distance():
    """The banded distance close_names uses decides "two edits or fewer" as the full Levenshtein table does."""
    import itertools
    import random

    from tuanjian_xlsx.status import _within_two

    def distance(a: str, b: str) -> int:
        prev = list(range(len(b) + 1))
        for i, ca in enumerate(a, start=1):
            row = [i]
            for j, cb in enumerate(b, start=1):
                row.append(min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ca != cb)))
            prev = row
        return prev[-1]

    rng = random.Random(17)
    words = ["".join(rng.choice("一中团委支" if n % 2 else "一中团委支部学校") for _ in range(rng.randint(0, 8)))
             for n in range(300)]  # (from eight characters, many pairs have more than four that one lacks)
    pairs = [(a, b) for a, b in itertools.product(words[:60], words) if a != b]
    assert [_within_two(a, b) for a, b in pairs] == [distance(a, b) <= 2 for a, b in pairs]
    assert any(_within_two(a, b) for a, b in pairs) and not all(_within_two(a, b) for a, b in pairs)


def test_the_diff_is_records_and_its_text_is_rendered_from_them(registry):
    diff = spec_changes(registry, "visit_report", 1, 2)
    assert [(c.kind, c.field) for c in diff.changes if c.kind != "moved"] == [("added", "visit_date"),
                                                                             ("added", "phone")]
    assert {c.field for c in diff.changes if c.kind == "moved"} >= {"cadre_count", "youth_count", "org_name"}
    assert diff.upgradable and diff_specs(registry, "visit_report", 1, 2) == diff.lines()
    assert json.loads(json.dumps(diff.to_dict()))["changes"][0] == {
        "kind": "added", "field": "visit_date", "label": "走访日期", "old": None,
        "new": {"type": "date", "required": True, "cell": "B7"}}
    assert spec_changes(registry, "visit_report", 2, 2).lines()[1:] == ["  字段没有变化。"]
