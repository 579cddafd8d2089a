"""The master (汇总表) on paper: every sheet's print setup read back with openpyxl, and the pages LibreOffice prints."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import unicodedata
import zipfile

import openpyxl
import pytest
from defusedxml import ElementTree as ET

from conftest import IN_CI
from tuanjian_xlsx.master import SHEETS

PORTRAIT = {"走基层统计", "观摩统计"}  # narrow tables; every other sheet is landscape
KEY_COLUMNS = {"报送情况": "$A:$B", "目标进度": "$A:$D", "目标汇总": "$A:$B"}  # else the unit's (or file's) column A
A4_LANDSCAPE, A4_PORTRAIT = (842, 595), (595, 842)


@pytest.fixture(scope="session")
def master(demo):
    """The master of the session's demo run: sixteen units, every form, a quarter and more of real-looking data."""
    return demo.merge.master


@pytest.fixture(scope="session")
def pages(master, libreoffice, tmp_path_factory) -> list[tuple[str, tuple[int, int], str]]:
    """(sheet, (width, height) in points, text) of every page LibreOffice prints, the sheet read from the page
    header, which prints the sheet's name."""
    tools = {name: shutil.which(name) for name in ("pdfinfo", "pdftotext")}
    if not all(tools.values()):
        message = "poppler-utils (pdfinfo, pdftotext) is not installed; scripts/test installs it"
        (pytest.fail if IN_CI else pytest.skip)(message)
    pdf = libreoffice.convert(master, tmp_path_factory.mktemp("print-pdf"), to="pdf")
    info = subprocess.run([tools["pdfinfo"], "-f", "1", "-l", "999", str(pdf)], capture_output=True, text=True,
                          check=True).stdout
    sizes = [(round(float(w)), round(float(h))) for w, h in re.findall(r"Page +\d+ size: +([\d.]+) x ([\d.]+)", info)]
    text = subprocess.run([tools["pdftotext"], "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    texts = text.split("\f")[:len(sizes)]
    assert len(texts) == len(sizes)
    out = []
    for size, page in zip(sizes, texts):
        first = next(line for line in page.splitlines() if line.strip()).split()
        sheet = next((s for s in SHEETS if s in first), None)
        assert sheet, f"a page without the sheet's name in its header: {first}"
        out.append((sheet, size, page))
    return out


def test_every_sheet_has_its_print_setup(master):
    wb = openpyxl.load_workbook(master)
    assert wb.sheetnames == list(SHEETS)
    for ws in wb.worksheets:
        setup, name = ws.page_setup, ws.title
        assert setup.paperSize == 9, name
        assert setup.orientation == ("portrait" if name in PORTRAIT else "landscape"), name
        assert ws.sheet_properties.pageSetUpPr.fitToPage, name
        # one page wide (1 is the default, which XlsxWriter leaves out), as many pages tall as it takes
        assert setup.fitToWidth in (None, 1) and setup.fitToHeight == 0, name
        assert ws.print_area, name
        assert ws.print_options.horizontalCentered, name
        assert "&A" in ws.oddHeader.center.text, name  # the sheet's name on every page
        assert ws.oddFooter.center.text.endswith("第 &P 页 / 共 &N 页"), name
        if name == "报送情况":  # a block per form, each starting a page with its own heading row
            assert ws.print_title_rows is None and len(ws.row_breaks.brk) == 2
        else:
            assert ws.print_title_rows == ("$1:$3" if name == "总览" else "$1:$1"), name
        if name != "总览":
            assert ws.print_title_cols == KEY_COLUMNS.get(name, "$A:$A"), name


def test_every_page_is_a4_in_its_sheets_orientation(pages):
    assert {sheet for sheet, _, _ in pages} == set(SHEETS)
    for sheet, size, _ in pages:
        assert size == (A4_PORTRAIT if sheet in PORTRAIT else A4_LANDSCAPE), sheet
    for sheet, _, text in pages:
        assert re.search(r"第 \d+ 页 / 共 \d+ 页", text), sheet


def _status_blocks(master) -> list[tuple[str, list[str]]]:
    """(form's name, its units) of each block of 报送情况, read from the sheet."""
    ws = openpyxl.load_workbook(master)["报送情况"]
    blocks, units = [], None
    previous = None
    for (a,) in ws.iter_rows(min_col=1, max_col=1, values_only=True):
        if a == "单位":
            units = []
            blocks.append((previous, units))
        elif units is not None and a and not a.startswith("合计"):
            units.append(a)
        elif a and a.startswith("合计"):
            units = None
        previous = a
    return blocks


def test_status_pages_each_show_a_whole_block_with_the_units_names(master, pages):
    """Today's complaint: 报送情况 split over portrait pages, the later ones with statuses and no unit names."""
    printed = [re.sub(r"\s", "", text) for sheet, _, text in pages if sheet == "报送情况"]
    blocks = _status_blocks(master)
    assert len(blocks) == 3 and len(printed) == len(blocks)
    for (form, units), text in zip(blocks, printed):
        assert re.sub(r"\s", "", form) in text
        assert "按时" in text
        for unit in units:
            assert unit[:6] in text, (form, unit)  # the start of it: a long name wraps


def test_long_tables_repeat_their_heading_and_unit_on_every_page(pages):
    for sheet, heading in (("走基层明细", "报送期"), ("走基层统计", "月份"), ("目标进度", "完成率"), ("来源", "SHA-256")):
        printed = [text for s, _, text in pages if s == sheet]
        assert len(printed) >= 2, sheet
        for text in printed:
            assert heading in text and "单位" in text, sheet


def test_overview_prints_on_two_pages_with_readable_charts(master, pages):
    assert [s for s, _, _ in pages].count("总览") == 2
    with zipfile.ZipFile(master) as z:
        charts = [ET.fromstring(z.read(n)) for n in z.namelist() if n.startswith("xl/charts/chart")]
    assert len(charts) == 2
    a = "{http://schemas.openxmlformats.org/drawingml/2006/main}"
    c = "{http://schemas.openxmlformats.org/drawingml/2006/chart}"
    for chart in charts:
        assert chart.find(f".//{c}barDir").get("val") == "bar"  # category names read across, never rotated
        for part in ("catAx", "valAx", "dLbls"):
            sizes = [int(r.get("sz")) for p in chart.iter(f"{c}{part}") for r in p.iter(f"{a}defRPr") if r.get("sz")]
            assert sizes and min(sizes) >= 900, part  # 9 points at least


def _lines(text: str, width: float, size: float) -> int:
    """Lines of `text` in a column `width` wide, as Excel shows 仿宋: a width unit is 6 pt, a Chinese character
    `size` pt, any other half that."""
    used = sum(size if unicodedata.east_asian_width(ch) in "WF" else size / 2 for ch in text)
    return max(1, math.ceil(used / (6 * width)))


def test_no_text_is_cut_off(master):
    """A text longer than its column either runs on into empty cells or is wrapped in a row tall enough for its
    lines (neither Excel nor LibreOffice grows a row on opening a file); the 目标 of 目标汇总 was cut off."""
    wb = openpyxl.load_workbook(master)
    wrapped = 0
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                if not isinstance(cell.value, str) or cell.value.startswith("="):
                    continue
                width = ws.column_dimensions[cell.column_letter].width or 8.43
                size = cell.font.sz or 11
                wide = size * 1.2 if cell.font.name == "Courier New" else size  # 0.6 em, not 仿宋's 0.5
                lines = _lines(cell.value, width, wide)
                if lines == 1:
                    continue
                if not cell.alignment.wrap_text:
                    assert ws.cell(cell.row, cell.column + 1).value is None, (ws.title, cell.coordinate)
                    continue
                height = ws.row_dimensions[cell.row].height or 15
                assert height >= lines * size * 1.2, (ws.title, cell.coordinate, cell.value, height)
                wrapped += 1
    assert wrapped > 100
