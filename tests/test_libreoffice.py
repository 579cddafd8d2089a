"""Real LibreOffice headless: recalculation of 自查 and tracker formulas, round trips, and the printed page."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import zipfile

import openpyxl
import pytest
import xlsxwriter
from defusedxml import ElementTree as ET

from conftest import IN_CI, fill
from tuanjian_xlsx.selfcheck import Check, NotAbove


def _recalc(libreoffice, path, tmp_path):
    return openpyxl.load_workbook(libreoffice.convert(path, tmp_path / "lo"), data_only=True)


def test_self_check_follows_what_was_filled(templates, libreoffice, tmp_path, registry):
    spec = registry.get("visit_report", 1)
    partly = fill(templates["visit_report"], tmp_path / "partly.xlsx", {
        "报送单位": "源汇区团委", "报送期": "2026-03", "填表时间": dt.datetime(2026, 3, 5),
        "姓名": "张三", "团干部": -2, "团员青年": "五人", "走访形式": "步行",
    })
    ws = _recalc(libreoffice, partly, tmp_path)[spec.sheet_name]
    # empty: 单位职务, 走访团组织名称, 工作开展情况, 工作亮点; wrong: -2, 五人, 步行
    assert ws["A1"].value == "自查：还有4项必填未填，3项格式有误（见红色单元格）。"

    whole = fill(partly, tmp_path / "whole.xlsx", {
        "单位职务": "组织部部长", "走访团组织名称": "源汇区第一中学团委", "团干部": 2, "团员青年": 15,
        "走访形式": "座谈交流", "基层团组织工作开展情况": "开展主题团日", "基层团组织工作亮点": "志愿服务",
    })
    ws = _recalc(libreoffice, whole, tmp_path / "2")[spec.sheet_name]
    assert ws["A1"].value == "自查：必填项已填齐，未发现格式错误。"


def test_blank_template_self_check_matches_libreoffice(templates, libreoffice, tmp_path, registry):
    for form_id in ("visit_report", "observation_report", "target_tracker"):
        spec = registry.get(form_id, 1)
        ours = openpyxl.load_workbook(templates[form_id], data_only=True)[spec.sheet_name]["A1"].value
        theirs = _recalc(libreoffice, templates[form_id], tmp_path / form_id)[spec.sheet_name]["A1"].value
        assert ours == theirs, form_id


VALUES = [None, " ", "　", "abc", "=1+1", 0, 1, -1, 2.5, 3.0, "5", 36525, 36526, 73050, 73051,
          dt.date(2026, 3, 5), dt.date(1999, 12, 31), "实地走访", " 实地走访", "其他", "2026-03", 2026.03,
          "实*", "座谈?流", "~其他", "<>", ">a"]
# (No booleans: LibreOffice treats TRUE as a number and Excel does not; the Python rule follows Excel.)


def test_python_mirror_equals_libreoffice_for_every_check(libreoffice, tmp_path):
    """Each check's Python rule (used for cached values) gives what LibreOffice computes from its formula."""
    checks = [Check("$A${r}", t, True, "$Z$1:$Z$3", ("实地走访", "座谈交流", "其他"))
              for t in ("integer", "number", "date", "choice", "period", "text")]
    path = tmp_path / "mirror.xlsx"
    wb = xlsxwriter.Workbook(str(path), {"strings_to_formulas": False})
    ws = wb.add_worksheet("s")
    datefmt = wb.add_format({"num_format": "yyyy-mm-dd"})
    for i, choice in enumerate(("实地走访", "座谈交流", "其他")):
        ws.write_string(i, 25, choice)
    for r, v in enumerate(VALUES, start=1):
        if isinstance(v, dt.date):
            ws.write_datetime(r - 1, 0, dt.datetime.combine(v, dt.time()), datefmt)
        elif v is not None:
            ws.write(r - 1, 0, v)
        col = 1
        for c in checks:
            cell = c.cell.format(r=r)
            ws.write_formula(r - 1, col, f"=IF({c.empty_expr()},1,0)".replace(c.cell, cell))
            inv = c.invalid_expr()
            if inv:
                ws.write_formula(r - 1, col + 1, f"=IF({inv},1,0)".replace(c.cell, cell))
            col += 2
        pair = NotAbove(f"$A${r}", "$Y$1")
        ws.write_formula(r - 1, col, f"=IF({pair.invalid_expr()},1,0)")
    ws.write_number(0, 24, 2)
    wb.close()
    got = _recalc(libreoffice, path, tmp_path)["s"]
    for r, v in enumerate(VALUES, start=1):
        col = 2
        for c in checks:
            assert got.cell(r, col).value == int(c.is_empty(v)), (c.type, "empty", v)
            if c.invalid_expr():
                assert got.cell(r, col + 1).value == int(c.is_invalid(v)), (c.type, "invalid", v)
            col += 2
        assert got.cell(r, col).value == int(NotAbove("", "").is_invalid(v, 2)), ("pair", v)


def test_tracker_formulas_compute_in_libreoffice(templates, libreoffice, tmp_path, registry):
    spec = registry.get("target_tracker")
    wb = openpyxl.load_workbook(templates["target_tracker"])
    ws = wb[spec.sheet_name]
    rows = {ws[f"A{r}"].value: r for r in range(spec.header_row + 1, ws.max_row + 1) if ws[f"A{r}"].value}
    ws["C3"] = "源汇区团委"
    ws[f"K{rows['1-3-2']}"], ws[f"L{rows['1-3-2']}"] = 3, 5
    ws[f"K{rows['1-2']}"], ws[f"L{rows['1-2']}"] = 7, 7
    ws[f"K{rows['2-3']}"] = 2
    ws[f"K{rows['1-6']}"], ws[f"L{rows['1-6']}"] = 9, 4  # 完成数 > 基数
    wb.save(tmp_path / "t.xlsx")
    got = _recalc(libreoffice, tmp_path / "t.xlsx", tmp_path)[spec.sheet_name]
    assert got["G3"].value == "县区团委"
    assert (got[f"M{rows['1-3-2']}"].value, got[f"N{rows['1-3-2']}"].value) == (0.6, "达标")
    assert (got[f"M{rows['1-2']}"].value, got[f"N{rows['1-2']}"].value) == (1, "达标")
    assert got[f"G{rows['2-3']}"].value == 3 and got[f"N{rows['2-3']}"].value == "未达标"
    assert got[f"R{rows['1-6']}"].value == 1  # 本行有误
    assert got[f"N{rows['1-1-1']}"].value in (None, "")
    county = [t for t in registry_tasks(spec) if "县区团委" in t.unit_types]
    required = sum({"ratio": 2, "growth": 2}.get(t.kind, 1) for t in county)
    empty = 2 + required - 7  # 报送期, 填表时间, and the rows of 县区团委 less the 7 cells filled above
    assert got["A1"].value == f"自查：还有{empty}项必填未填，1项格式有误（见红色单元格）。"


def registry_tasks(spec):
    from tuanjian_xlsx.plan import Plan

    return Plan.builtin().roster.tasks


def _props(path) -> dict[str, str]:
    with zipfile.ZipFile(path) as z:
        if "docProps/custom.xml" not in z.namelist():
            return {}
        root = ET.fromstring(z.read("docProps/custom.xml"))
    return {p.get("name"): (p[0].text or "") for p in root}


@pytest.mark.parametrize("form_id", ["visit_report", "observation_report", "target_tracker"])
def test_round_trip_keeps_names_passport_validations_protection(form_id, templates, libreoffice, tmp_path, registry):
    spec = registry.get(form_id, 1)
    back = libreoffice.convert(templates[form_id], tmp_path / "rt")
    wb = openpyxl.load_workbook(back)
    ws = wb[spec.sheet_name]
    for f in spec.fields:
        (sheet, ref), = list(wb.defined_names[f.name].destinations)
        assert sheet.strip("'") == spec.sheet_name and ref.replace("$", "") == f.input_cell
        assert ws[f.input_cell].protection.locked is False
    assert ws.protection.sheet is True
    validated = {rng.coord.split(":")[0] for dv in ws.data_validations.dataValidation for rng in dv.sqref.ranges}
    assert {f.input_cell for f in spec.fields} <= validated
    assert wb["_passport"].sheet_state == "hidden"
    rows = {r[0].value: r[1].value for r in wb["_passport"].iter_rows()}
    assert rows["form_id"] == form_id and rows["fingerprint"] == spec.fingerprint
    props = _props(back)
    assert props["tj.form_id"] == form_id
    assert float(props["tj.version"]) == spec.version  # LibreOffice may write 1 as 1.0


@pytest.mark.parametrize("form_id", ["visit_report", "observation_report", "target_tracker"])
def test_prints_on_exactly_one_a4_page(form_id, templates, libreoffice, tmp_path):
    pdf = libreoffice.convert(templates[form_id], tmp_path / "pdf", to="pdf")
    pdfinfo = shutil.which("pdfinfo")
    if not pdfinfo:
        (pytest.fail if IN_CI else pytest.skip)("pdfinfo (poppler-utils) is not installed; scripts/test installs it")
    info = subprocess.run([pdfinfo, str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "Pages:           1" in info
    assert "(A4)" in info
