"""The fast reader: names and passport from the XML, values from calamine, fields by name then by label."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import openpyxl
import pytest

from conftest import fill
from tuanjian_xlsx.read import open_package, parse_name_ref, read_forms

VISIT = {"报送单位": "源汇区团委", "报送期": "2026-03", "填表时间": dt.datetime(2026, 3, 5), "姓名": "张三",
         "单位职务": "组织部部长", "走访团组织名称": "源汇区第一中学团委", "走访形式": "座谈交流", "团干部": 2,
         "团员青年": 15, "基层团组织工作开展情况": "开展主题团日", "基层团组织工作亮点": "志愿服务"}


@pytest.mark.parametrize("text, expected", [
    ("'走基层报告单'!$B$4", ("走基层报告单", "B4")),
    ("走基层报告单!$B$4", ("走基层报告单", "B4")),  # LibreOffice drops the quotes
    ("='it''s'!$C$3:$D$3", ("it's", "C3")),
    ("#REF!", None),
])
def test_name_refs(text, expected):
    assert parse_name_ref(text) == expected


def _values(form):
    return {k: (v.value, v.cell) for k, v in form.values.items()}


@pytest.fixture
def filled(templates, tmp_path):
    return fill(templates["visit_report"], tmp_path / "源汇区_2026-03.xlsx", VISIT)


def test_reads_a_filled_form_by_name(filled, registry):
    spec = registry.get("visit_report", 1)
    pkg = open_package(filled)
    assert pkg.ok and pkg.passport()["form_id"] == "visit_report" and pkg.passport()["version"] == "1"
    (form,) = read_forms(pkg, spec)
    assert form.issues == []
    got = _values(form)
    assert got["unit"] == ("源汇区团委", "B4") and got["cadre_count"] == (2.0, "C9")
    assert got["org_name"] == ("源汇区第一中学团委", "B7") and got["problems"] == ("", "B13")
    assert isinstance(got["fill_date"][0], (dt.date, dt.datetime))


def test_reads_after_a_libreoffice_resave(filled, registry, libreoffice, tmp_path):
    spec = registry.get("visit_report", 1)
    back = libreoffice.convert(filled, tmp_path / "lo")
    pkg = open_package(back)
    assert pkg.passport()["version"] == "1" and pkg.passport()["fingerprint"] == spec.fingerprint
    (form,) = read_forms(pkg, spec)
    assert form.issues == []
    assert _values(form)["youth_count"] == (15.0, "C10")


def test_copied_sheet_is_a_second_record_found_by_label(filled, registry, tmp_path):
    spec = registry.get("visit_report", 1)
    wb = openpyxl.load_workbook(filled)
    copy = wb.copy_worksheet(wb[spec.sheet_name])
    copy["B7"] = "召陵区实验中学团委"
    wb.save(tmp_path / "two.xlsx")
    forms = read_forms(open_package(tmp_path / "two.xlsx"), spec)
    assert [f.sheet for f in forms] == [spec.sheet_name, copy.title]
    assert _values(forms[1])["org_name"] == ("召陵区实验中学团委", "B7")
    # the copy keeps no names (a sheet copy does not carry workbook names), but every field stands where the
    # template puts it: what 填报说明 tells units to do is no "structure changed" (it was said on every copy)
    assert forms[1].issues == []


def test_inserted_rows_fall_back_to_labels_with_a_warning(filled, registry, tmp_path):
    spec = registry.get("visit_report", 1)
    wb = openpyxl.load_workbook(filled)
    wb[spec.sheet_name].protection.sheet = False
    wb[spec.sheet_name].insert_rows(7, 2)  # openpyxl leaves the names where they were, as a careless edit would
    wb.save(tmp_path / "moved.xlsx")
    (form,) = read_forms(open_package(tmp_path / "moved.xlsx"), spec)
    got = _values(form)
    assert got["org_name"] == ("源汇区第一中学团委", "B9") and got["cadre_count"] == (2.0, "C11")
    assert got["unit"] == ("源汇区团委", "B4")  # above the insertion: still by name
    (issue,) = form.issues
    assert issue.code == "template-modified" and "走访团组织名称" in issue.message


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, body in members.items():
            z.writestr(name, body)
    return buf.getvalue()


def test_a_dtd_however_far_down_its_prolog_is_refused(tmp_path, filled):
    """A DTD may follow comments and processing instructions of any length, and a part may be UTF-16: each is
    found (the head alone missed them all); a long comment with no DTD after it is no attack."""
    dtd = '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    with zipfile.ZipFile(filled) as src:
        parts = {i.filename: src.read(i) for i in src.infolist()}
    decl = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'

    def with_prolog(name: str, prolog: str, encoding: str = "utf-8") -> bytes:
        body = parts[name].decode("utf-8")
        body = body[body.index("?>") + 2:].lstrip() if body.startswith("<?xml") else body
        text = decl.replace("UTF-8", encoding.upper()) + prolog + body
        return _zip(dict(parts, **{name: ("\ufeff" + text).encode(encoding) if encoding != "utf-8"
                                   else text.encode(encoding)}))

    cases = {
        "注释之后.xlsx": (with_prolog("xl/worksheets/sheet1.xml", "<!--" + "说明" * 5000 + "-->" + dtd), "xml-attack"),
        "指令之后.xlsx": (with_prolog("xl/styles.xml", "<?note " + "x" * 70000 + "?>\n" + dtd), "xml-attack"),
        "UTF16.xlsx": (with_prolog("xl/styles.xml", dtd, "utf-16-le"), "xml-attack"),
        "只有注释.xlsx": (with_prolog("xl/worksheets/sheet1.xml", "<!--" + "说明" * 5000 + "-->"), None),
    }
    for name, (data, code) in cases.items():
        (tmp_path / name).write_bytes(data)
        pkg = open_package(tmp_path / name)
        assert [i.code for i in pkg.issues] == ([code] if code else []), name


def test_file_level_problems_are_issues(tmp_path, filled):
    billion = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>'
               b'<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">&lol2;</workbook>')
    cases = {
        "空.xlsx": (b"", "empty-file"),
        "宏.xlsm": (filled.read_bytes(), "macro-workbook"),
        "旧.xls": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "legacy-xls"),
        "加密.xlsx": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + "EncryptionInfo".encode("utf-16-le") + b"\0" * 600,
                     "encrypted"),
        "改了后缀的旧表.xlsx": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, "legacy-xls"),
        "表.csv": (b"a,b\n1,2\n", "unsupported-format"),
        "文本.xlsx": (b"just text", "file-unreadable"),
        "坏.xlsx": (b"PK\x03\x04broken", "file-unreadable"),
        "炸弹.xlsx": (_zip({"xl/workbook.xml": b"\0" * (60 * 1024 * 1024)}), "zip-bomb"),
        "实体.xlsx": (_zip({"xl/workbook.xml": billion}), "xml-attack"),
    }
    with zipfile.ZipFile(filled) as src:
        far = {i.filename: src.read(i) for i in src.infolist()}
    far["xl/worksheets/sheet1.xml"] = far["xl/worksheets/sheet1.xml"].replace(
        b"</sheetData>", b'<row r="1048576"><c r="XFD1048576"><v>1</v></c></row></sheetData>')
    cases["远.xlsx"] = (_zip(far), "sheet-too-large")  # calamine would try to allocate 512 GB and abort
    for name, (data, code) in cases.items():
        (tmp_path / name).write_bytes(data)
        pkg = open_package(tmp_path / name)
        assert [(i.file, i.code) for i in pkg.issues] == [(name, code)], name
        assert not pkg.ok


def test_wrong_sheet_dimension_as_wps_writes_it(filled, registry, tmp_path):
    import re

    src = zipfile.ZipFile(filled)
    out = tmp_path / "wps.xlsx"
    with zipfile.ZipFile(out, "w") as z:
        for info in src.infolist():
            body = src.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                body = re.sub(rb'<dimension ref="[^"]*"\s*/>', b'<dimension ref="A1"/>', body)
            z.writestr(info, body)
    (form,) = read_forms(open_package(out), registry.get("visit_report", 1))
    assert _values(form)["youth_count"] == (15.0, "C10")


def test_ods_is_read_by_name_with_its_hidden_passport(filled, registry, libreoffice, tmp_path, builtin):
    from tuanjian_xlsx.validate import validate_file

    ods = libreoffice.convert(filled, tmp_path / "ods", to="ods")
    result = validate_file(ods, builtin)
    assert result.valid and result.form_id == "visit_report" and result.records[0].values["youth_count"] == 15
    assert [i.code for i in result.issues] == []  # its named ranges are read from content.xml


def test_a_value_typed_the_same_as_a_label_is_not_taken_for_that_label(templates, tmp_path, builtin):
    """单位职务 typed as “团干部” stands before the label 团干部 itself: a form read by its labels (retyped in a new
    workbook, or a sheet copied for a second visit, which keeps no names) took the value for the label and read
    the count from beside it — a correct form refused, naming a cell the unit never used."""
    import openpyxl

    from conftest import fill
    from tuanjian_xlsx.validate import validate_file

    wb = openpyxl.Workbook()
    sheet = wb.active
    sheet.title = "走基层"
    rows = [("报送单位：", "召陵区团委"), ("报送期：", "2026年3月"), ("填表时间：", dt.datetime(2026, 3, 3)),
            ("姓  名", "张三"), ("单位职务", "团干部"), ("走访团组织名称", "某某中学团委"), ("走访形式", "实地走访"),
            ("团干部", 3), ("团员青年", 12), ("基层团组织工作开展情况", "正常"), ("基层团组织工作亮点", "亮点")]
    for i, (label, value) in enumerate(rows, start=3):
        sheet.cell(row=i, column=2, value=label)
        sheet.cell(row=i, column=3, value=value)
    wb.save(tmp_path / "自制表.xlsx")
    r = validate_file(tmp_path / "自制表.xlsx", builtin)
    assert r.valid, [i.message for i in r.issues]
    assert (r.records[0].values["position"], r.records[0].values["cadre_count"]) == ("团干部", 3)

    visit = {"报送单位": "源汇区团委", "报送期": "2026-03", "填表时间": dt.datetime(2026, 3, 5), "姓名": "张三",
             "团干部": 2, "单位职务": "团干部", "走访团组织名称": "一中团委", "走访形式": "座谈交流", "团员青年": 15,
             "基层团组织工作开展情况": "好", "基层团组织工作亮点": "多"}  # (the count typed before the value that
    #                                                                      reads as its label, as a person would find it)
    path = fill(templates["visit_report"], tmp_path / "两次.xlsx", visit)
    wb = openpyxl.load_workbook(path)
    second = wb.copy_worksheet(wb.worksheets[0])
    second.title = "第二次"
    wb.save(path)
    r = validate_file(path, builtin)
    assert r.valid, [i.message for i in r.issues if i.severity == "error"]
    assert [rec.values["cadre_count"] for rec in r.records] == [2, 2]
