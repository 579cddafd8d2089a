"""The built templates, read back with openpyxl as an independent oracle."""

from __future__ import annotations

import datetime as dt
import zipfile

import openpyxl
import pytest
from defusedxml import ElementTree as ET

from conftest import beside_label
from tuanjian_xlsx.build import Prefill, build_template
from tuanjian_xlsx.passport import PASSPORT_KEYS
from tuanjian_xlsx.selfcheck import summary_text

FORMS = ["visit_report", "observation_report"]


def _cached(path, ref: str, sheet_file: str = "xl/worksheets/sheet1.xml") -> tuple[str | None, str | None]:
    """(type, cached text) of a formula cell, read from the sheet XML itself."""
    ns = {"m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    with zipfile.ZipFile(path) as z:
        root = ET.fromstring(z.read(sheet_file))
    c = root.find(f".//m:c[@r='{ref}']", ns)
    v = c.find("m:v", ns)
    return c.get("t"), (v.text or "") if v is not None else None
ALL = FORMS + ["target_tracker"]


def _custom_props(path) -> dict[str, str]:
    with zipfile.ZipFile(path) as z:
        root = ET.fromstring(z.read("docProps/custom.xml"))
    return {p.get("name"): (p[0].text or "") for p in root}


@pytest.mark.parametrize("form_id", ALL)
def test_every_name_points_at_the_input_beside_its_label(form_id, templates, registry):
    spec = registry.get(form_id, 1)
    wb = openpyxl.load_workbook(templates[form_id])
    ws = wb[spec.sheet_name]
    for f in spec.fields:
        dn = wb.defined_names[f.name]
        (sheet, ref), = list(dn.destinations)
        assert sheet == spec.sheet_name
        assert ref.replace("$", "") == beside_label(ws, f.label_text) == f.input_cell, f.label


@pytest.mark.parametrize("form_id", FORMS)
def test_labels_are_exactly_the_attachments(form_id, templates, registry):
    spec = registry.get(form_id, 1)
    ws = openpyxl.load_workbook(templates[form_id])[spec.sheet_name]
    texts = {str(c.value).replace("\n", "").replace(" ", "").rstrip("：") for row in ws.iter_rows() for c in row if c.value}
    expected = {
        "visit_report": ["填表时间", "姓名", "单位职务", "走访团组织名称", "走访形式", "走访人数", "团干部", "团员青年",
                         "基层团组织工作开展情况", "基层团组织工作亮点", "基层团组织工作存在问题", "帮扶措施及成效"],
        "observation_report": ["填表时间", "组织观摩部室", "参加观摩人员", "观摩点及观摩内容", "观摩点亮点工作",
                               "观摩点存在问题", "整改措施"],
    }[form_id]
    assert set(expected) <= texts
    assert spec.title in texts and spec.attachment in texts


@pytest.mark.parametrize("form_id", ALL)
def test_inputs_unlocked_rest_locked_sheet_protected(form_id, templates, registry):
    spec = registry.get(form_id, 1)
    wb = openpyxl.load_workbook(templates[form_id])
    ws = wb[spec.sheet_name]
    assert ws.protection.sheet is True
    assert not wb.security or not wb.security.lockStructure  # staff may copy the form sheet
    for f in spec.fields:
        assert ws[f.input_cell].protection.locked is False, f.label
        r1 = f.label_range.split(":")[0]
        assert ws[r1].protection.locked is True, f.label
    assert ws[spec.layout.self_check.split(":")[0]].protection.locked is True


@pytest.mark.parametrize("form_id", ALL)
def test_validations_and_dropdowns(form_id, templates, registry, builtin):
    spec = registry.get(form_id, 1)
    wb = openpyxl.load_workbook(templates[form_id])
    ws = wb[spec.sheet_name]
    by_cell = {}
    for dv in ws.data_validations.dataValidation:
        for rng in dv.sqref.ranges:
            by_cell[rng.coord.split(":")[0]] = dv
    for f in spec.fields:
        dv = by_cell[f.input_cell]
        expected = {"integer": "whole", "number": "decimal", "date": "date", "choice": "list"}.get(f.type)
        assert dv.type == expected, f.label
        if f.type == "choice":
            # through a workbook-level name (old Excel and some WPS builds refuse sheet references there)
            (sheet, ref), = wb.defined_names[dv.formula1].destinations
            assert sheet == "_lists" and len(dv.formula1) < 255
            values = [c.value for row in wb[sheet][ref.replace("$", "")] for c in row]
            if f.choices_from == "units":
                assert values == [u.name for u in builtin.roster.units]
            else:
                assert values == f.choices
        if dv.type:
            assert dv.error and all(ord(ch) > 127 for ch in dv.error[:1] + dv.error[-1:]), "Chinese error message"
    units = [c.value for c in wb["_lists"]["A"][1:]]
    assert "源汇区团委" in units and len(units) == 16
    assert wb["_lists"].sheet_state == "hidden"


@pytest.mark.parametrize("form_id", ALL)
def test_passport_blank_in_template(form_id, templates, registry):
    spec = registry.get(form_id, 1)
    wb = openpyxl.load_workbook(templates[form_id])
    pp = wb["_passport"]
    assert pp.sheet_state == "hidden"
    rows = {r[0].value: r[1].value for r in pp.iter_rows()}
    assert list(rows) == list(PASSPORT_KEYS)
    assert rows["form_id"] == form_id and rows["version"] == spec.version
    assert rows["fingerprint"] == spec.fingerprint
    assert not rows["unit"] and not rows["period"] and not rows["due"]  # blank in a blank template
    props = _custom_props(templates[form_id])
    assert props["tj.form_id"] == form_id and props["tj.version"] == str(spec.version)
    assert props["tj.fingerprint"] == spec.fingerprint and props["tj.unit"] == ""


def test_prefilled_copy_carries_unit_period_and_locks_them(builtin, tmp_path):
    spec = builtin.registry.get("visit_report", 1)
    unit = builtin.roster.unit_by_name("舞阳县团委")
    p = tmp_path / "copy.xlsx"
    p.write_bytes(build_template(spec, builtin.roster,
                                 prefill=Prefill(unit, "2026-03", "2026年3月", dt.date(2026, 4, 10))))
    wb = openpyxl.load_workbook(p)
    ws = wb[spec.sheet_name]
    assert ws["B4"].value == "舞阳县团委" and ws["B4"].protection.locked is True
    assert ws["B5"].value == "2026年3月" and ws["B5"].protection.locked is True
    props = _custom_props(p)
    assert (props["tj.unit_id"], props["tj.period"], props["tj.due"]) == ("wuyang", "2026-03", "2026-04-10")
    wb = openpyxl.load_workbook(p, data_only=True)
    required = sum(f.required for f in spec.fields)
    assert wb[spec.sheet_name]["A1"].value == summary_text(required - 2, 0)


@pytest.mark.parametrize("form_id", FORMS)
def test_self_check_cached_value_and_formula(form_id, templates, registry):
    spec = registry.get(form_id, 1)
    cached = openpyxl.load_workbook(templates[form_id], data_only=True)[spec.sheet_name]["A1"].value
    assert cached == summary_text(sum(f.required for f in spec.fields), 0)
    formula = openpyxl.load_workbook(templates[form_id])[spec.sheet_name]["A1"].value
    assert formula.startswith("=IF(") and "COUNTIF($F$2:$F$" in formula  # counts the inputs' state cells
    state = openpyxl.load_workbook(templates[form_id])[spec.sheet_name]["F2"].value
    assert 'LEN(TRIM(SUBSTITUTE($B$4,"　","")))=0' in state  # a full-width space alone is still empty


def test_tracker_rows_formulas_and_cached_values(templates, builtin):
    spec = builtin.registry.get("target_tracker")
    wb = openpyxl.load_workbook(templates["target_tracker"])
    values = openpyxl.load_workbook(templates["target_tracker"], data_only=True)[spec.sheet_name]
    ws = wb[spec.sheet_name]
    head = spec.header_row
    assert [c.value for c in ws[head]][: len(spec.columns)] == [c.label for c in spec.columns]
    col = {c.id: openpyxl.utils.get_column_letter(i + 1) for i, c in enumerate(spec.columns)}
    rows = {ws[f"A{r}"].value: r for r in range(head + 1, ws.max_row + 1) if ws[f"A{r}"].value}
    assert list(rows) == [t.code for t in builtin.roster.tasks]  # blank template: every task
    r = rows["1-3-2"]
    assert ws[f"{col['target']}{r}"].value == 0.4 and ws[f"{col['target']}{r}"].protection.locked
    assert ws[f"{col['done']}{r}"].protection.locked is False and ws[f"{col['base']}{r}"].protection.locked is False
    rate = ws[f"{col['rate']}{r}"].value
    assert rate == f'=IF(OR(${col["done"]}${r}="",${col["base"]}${r}=""),"",IF(N(${col["base"]}${r})=0,"",${col["done"]}${r}/${col["base"]}${r}))'
    # blank while inputs are blank: openpyxl shows the cached "" as None; the XML says it is an empty string
    assert values[f"{col['rate']}{r}"].value is None and values[f"{col['met']}{r}"].value is None
    assert _cached(templates["target_tracker"], f"{col['rate']}{r}") == ("str", "")
    r = rows["2-3"]  # per-type target follows the chosen unit's type; cached: no type chosen yet
    assert ws[f"{col['target']}{r}"].value == '=IF($G$3="县区团委",3,IF($G$3="功能区团工委",1,""))'
    assert _cached(templates["target_tracker"], f"{col['target']}{r}") == ("str", "")
    r = rows["1-5"]  # qualitative: no numbers to fill
    assert ws[f"{col['done']}{r}"].protection.locked is True
    assert ws[f"{col['progress']}{r}"].protection.locked is False


def test_tracker_for_a_unit_type_has_only_its_tasks(builtin, tmp_path):
    spec = builtin.registry.get("target_tracker")
    unit = builtin.roster.unit_by_name("西城区团工委")
    p = tmp_path / "t.xlsx"
    p.write_bytes(build_template(spec, builtin.roster, prefill=Prefill(unit, "2026-Q1", "2026年第1季度")))
    ws = openpyxl.load_workbook(p)[spec.sheet_name]
    codes = [ws[f"A{r}"].value for r in range(spec.header_row + 1, ws.max_row + 1) if ws[f"A{r}"].value]
    assert codes == [t.code for t in builtin.roster.tasks if "功能区团工委" in t.unit_types]
    assert "2-3" in codes and "1-1-1" not in codes
    r = spec.header_row + 1 + codes.index("2-3")
    assert ws[f"G{r}"].value == 1  # 功能区 ≥ 1 written as a number
    assert ws["G3"].value == "功能区团工委"


@pytest.mark.parametrize("form_id, version", [(f, 1) for f in ALL] + [("visit_report", 2)])
def test_build_is_byte_identical_and_committed_file_is_fresh(form_id, version, builtin):
    spec = builtin.registry.get(form_id, version)
    first = build_template(spec, builtin.roster)
    assert first == build_template(spec, builtin.roster)
    committed = builtin.registry.template_path(spec)
    assert committed.read_bytes() == first, f"{committed} is stale: run scripts/build_templates"


def test_page_setup(templates, registry):
    for form_id in ALL:
        spec = registry.get(form_id, 1)
        ws = openpyxl.load_workbook(templates[form_id])[spec.sheet_name]
        assert ws.page_setup.paperSize == 9
        assert ws.page_setup.orientation == spec.orientation
        assert ws.sheet_properties.pageSetUpPr.fitToPage
        assert ws.print_area and "$1:" not in ws.print_area[0]  # 自查 row 1 is outside the print area


def test_user_text_starting_with_equals_is_never_a_formula(builtin, tmp_path):
    from tuanjian_xlsx.roster import Unit

    spec = builtin.registry.get("visit_report", 1)
    roster = builtin.roster.model_copy(update={"units": [Unit(id="x", name="=1+1", type="县区团委")]})
    p = tmp_path / "eq.xlsx"
    p.write_bytes(build_template(spec, roster, prefill=Prefill(roster.units[0], "2026-03", "2026年3月")))
    wb = openpyxl.load_workbook(p)
    assert wb[spec.sheet_name]["B4"].data_type == "s" and wb["_lists"]["A2"].data_type == "s"


# --- a recorded build is written again for the next copy of its shape: nothing of one copy reaches the next ------


def _fresh() -> None:
    """Forget the recorded builds and styles parts, as a new process has none."""
    from tuanjian_xlsx import build, xlsxio

    build._PROGRAMS.clear()
    xlsxio._Packager._STYLES.clear()


def _problems(wb, mark: bool = False) -> None:
    """A first sheet as a 退回件's 问题清单 stands; `mark`: with a conditional format of its own."""
    ws = wb.add_worksheet("问题清单")
    ws.write_string(0, 0, "问题")
    if mark:
        ws.conditional_format(0, 0, 0, 0, {"type": "cell", "criteria": ">", "value": 0,
                                           "format": wb.add_format({"bold": True})})


def _return(spec, roster, *records: tuple[dict, dict], mark: bool = False) -> bytes:
    from tuanjian_xlsx.build import Filled

    return build_template(spec, roster, filled=[Filled(v, m) for v, m in records],
                          first_sheet=lambda wb: _problems(wb, mark))


def test_copies_of_one_shape_are_each_what_a_fresh_build_makes(builtin):
    roster = builtin.roster
    one, other = [u for u in roster.units if u.type == "县区团委"][:2]
    for form_id in ALL:
        spec = builtin.registry.get(form_id, 1)
        build_template(spec, roster, prefill=Prefill(one, "2026-03", "2026年3月", dt.date(2026, 4, 10)))
        second = Prefill(other, "2026-Q1", "2026年第1季度", dt.date(2026, 4, 28))
        warm = build_template(spec, roster, prefill=second)
        _fresh()
        assert warm == build_template(spec, roster, prefill=second), form_id


def test_returns_of_one_shape_are_each_what_a_fresh_build_makes(builtin):
    roster = builtin.roster
    visit, tracker = builtin.registry.get("visit_report", 1), builtin.registry.get("target_tracker", 1)
    cases = [
        (visit, [({"name": "张三", "cadre_count": 2.5}, {"cadre_count": "应填写整数"})],
         [({"name": "李四", "fill_date": dt.datetime(2026, 3, 5), "unit": "某单位"}, {"unit": "不在名单中"}),
          ({"youth_count": "五人", "problems": "=1+1"}, {"youth_count": "应填写整数"})]),
        (tracker, [({"1-1-1:done": 3.0, "1-1-1:base": 2.0}, {"1-1-1:done": "完成数大于基数"})],
         [({"1-2:done": "三个", "fill_date": "三月"}, {"1-2:done": "应填写数字", "fill_date": "不是日期"})]),
    ]
    for spec, first, second in cases:
        _return(spec, roster, *first)
        _return(spec, roster, *([first[0]] * len(second)))  # the second's shape, with the first's values
        warm = _return(spec, roster, *second)
        _fresh()
        assert warm == _return(spec, roster, *second), spec.form_id


def test_a_first_sheet_with_marks_of_its_own_leaves_the_forms_marks_theirs(builtin):
    """The form's conditional formats are numbered after the first sheet's: the text kept from a copy where they
    came first cannot serve."""
    spec = builtin.registry.get("visit_report", 1)
    values = ({"name": "张三"}, {})
    _return(spec, builtin.roster, values)
    warm = _return(spec, builtin.roster, values, mark=True)
    _fresh()
    assert warm == _return(spec, builtin.roster, values, mark=True)


def test_a_recorded_build_is_not_reused_for_another_roster_or_password(builtin):
    """The recording is keyed by what the roster holds, not by the object: a roster changed in place, or another
    password, builds what a fresh process builds."""
    roster = builtin.roster.model_copy(deep=True)
    spec = builtin.registry.get("target_tracker", 1)
    unit = next(u for u in roster.units if u.type == "县区团委")
    prefill = Prefill(unit, "2026-Q1", "2026年第1季度", dt.date(2026, 4, 28))
    first = build_template(spec, roster, prefill=prefill)
    roster.tasks[0].indicator = roster.tasks[0].indicator + "（改）"  # changed in place
    changed = build_template(spec, roster, prefill=prefill)
    locked = build_template(spec, roster, prefill=prefill, password="另一个")
    _fresh()
    assert changed != first and changed == build_template(spec, roster, prefill=prefill)
    assert locked != changed and locked == build_template(spec, roster, prefill=prefill, password="另一个")


def test_a_part_that_cannot_be_written_fails_as_the_os_error_it_is(tmp_path):
    """A workbook made on disk (the master) whose temporary folder is gone: an OSError, which callers say in
    Chinese, not XlsxWriter's own exception (a 内部错误)."""
    import io

    from tuanjian_xlsx.xlsxio import close_workbook, new_workbook

    buf = io.BytesIO()
    wb = new_workbook(buf)
    wb.in_memory, wb.tmpdir = False, str(tmp_path / "已删除")
    wb.add_worksheet("表").write(0, 0, "值")
    with pytest.raises(FileNotFoundError):
        close_workbook(wb, buf)


def test_a_recorded_value_is_written_as_write_would_write_it():
    """A recorded build picks XlsxWriter's writer for a value once (chrome._writer); for every kind of value our
    workbooks hold, it writes the same cell as write() itself under new_workbook's options (text stays text)."""
    import io

    from tuanjian_xlsx.build.chrome import _writer
    from tuanjian_xlsx.xlsxio import close_workbook, new_workbook

    values = [None, "", "文字", "=1+1", "http://example.com", "123", " 1 ", 0, 7, 2.5, -0.0, 1e15, True, False,
              dt.date(2026, 3, 1), dt.datetime(2026, 3, 1, 9, 30), dt.time(9, 30)]

    def book(direct: bool) -> bytes:
        buf = io.BytesIO()
        wb = new_workbook(buf)
        ws, fmt = wb.add_worksheet("表"), wb.add_format({"num_format": "yyyy-mm-dd"})
        for r, v in enumerate(values):
            if direct:
                getattr(ws, _writer(v))(r, 0, v, fmt)
            else:
                ws.write(r, 0, v, fmt)
        return close_workbook(wb, buf)

    assert book(True) == book(False)
