"""Writing and reading agree through passport.py alone: what the builder writes under its names, the reader finds
under the same names, and neither side imports the other."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest

from tuanjian_xlsx import passport
from tuanjian_xlsx.build import Prefill, build_template
from tuanjian_xlsx.read import open_package

PACKAGE = Path(passport.__file__).resolve().parent
FORMS = ["visit_report", "observation_report", "target_tracker"]


def _imports(module: str) -> set[str]:
    """The package modules a module imports (relative imports, resolved to their first name)."""
    tree = ast.parse((PACKAGE / module).read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            out |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
    return out


def _copy(builtin, form_id: str, **kw) -> tuple:
    spec = builtin.registry.get(form_id, 1)
    unit = builtin.roster.unit_by_name("舞阳县团委")
    prefill = Prefill(unit, "2026-03", "2026年3月", dt.date(2026, 4, 10))
    data = build_template(spec, builtin.roster, prefill=prefill, **kw)
    return spec, prefill, open_package(Path(f"{form_id}.xlsx"), data)


@pytest.mark.parametrize("form_id", FORMS)
def test_the_passport_written_is_the_passport_read(form_id, builtin):
    spec, prefill, pkg = _copy(builtin, form_id)
    written = prefill.passport(spec)
    assert list(written) == list(passport.PASSPORT_KEYS)  # no not_forms where every sheet is a form
    read = pkg.passport()
    assert read == {**{k: str(v) for k, v in written.items()}, passport.NOT_FORMS_KEY: ""}
    assert (read["unit_id"], read["unit"], read["period"], read["due"]) == ("wuyang", "舞阳县团委", "2026-03",
                                                                              "2026-04-10")
    assert set(pkg.properties) == {passport.property_name(k) for k in passport.PASSPORT_KEYS}


def test_the_passport_sheet_stands_in_for_lost_properties(builtin):
    spec, _, pkg = _copy(builtin, "visit_report")
    whole = pkg.passport()
    pkg.properties.clear()  # as a program that drops custom properties saves the file
    assert pkg.passport() == whole
    assert passport.read({}, pkg.rows(passport.PASSPORT_SHEET)) == whole


def test_sheets_not_forms_go_through_the_passport(builtin):
    def problem_list(wb):
        ws = wb.add_worksheet(passport.PROBLEM_SHEET)
        for c, title in enumerate(passport.PROBLEM_COLUMNS):
            ws.write_string(0, c, title)

    spec, _, pkg = _copy(builtin, "visit_report", first_sheet=problem_list)
    assert pkg.passport()[passport.NOT_FORMS_KEY] == passport.PROBLEM_SHEET
    assert passport.not_forms(pkg.passport()) == {passport.PROBLEM_SHEET}
    assert pkg.not_forms() == set(passport.HIDDEN_SHEETS) | {passport.PROBLEM_SHEET}
    pkg.properties.clear()
    pkg.sheets = [s for s in pkg.sheets if s[0] != passport.PASSPORT_SHEET]  # passport lost: the heading tells
    assert passport.PROBLEM_SHEET in pkg.not_forms()


@pytest.mark.parametrize("form_id", FORMS)
def test_hidden_sheets_and_defined_names_are_the_contracts(form_id, builtin):
    spec, _, pkg = _copy(builtin, form_id)
    hidden = [name for name, visible in pkg.sheets if not visible]
    assert hidden == list(passport.HIDDEN_SHEETS)
    for f in spec.fields:
        assert pkg.names[passport.field_name(f.id)][0] == spec.sheet_name
    for col in getattr(spec, "columns", []):
        assert pkg.names[passport.column_name(col.id)][0] == spec.sheet_name
    lists = {n for n, (sheet, _) in pkg.names.items() if sheet == passport.LISTS_SHEET}
    assert lists and all(n.startswith(passport.LIST_NAME_PREFIX) for n in lists)
    assert passport.list_name("units") in lists and passport.list_name(passport.list_name("units")) in lists


def test_both_sides_hold_the_same_objects():
    from tuanjian_xlsx import read, returns
    from tuanjian_xlsx.build import chrome, tracker

    assert chrome.passport is passport and tracker.passport is passport and read.passport is passport
    assert returns.PROBLEM_SHEET is passport.PROBLEM_SHEET and returns.PROBLEM_COLUMNS is passport.PROBLEM_COLUMNS


def test_the_reader_never_imports_the_builder_nor_intake_the_checks():
    assert "build" not in _imports("read.py")
    assert "passport" in _imports("read.py")
    assert not _imports("intake.py") & {"validate", "checking", "build", "returns"}
    assert "read" not in set().union(*(_imports(f"build/{m}") for m in ("__init__.py", "chrome.py", "forms.py",
                                                                       "tracker.py")))
