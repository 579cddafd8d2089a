import pytest
from hypothesis import given
from hypothesis import strategies as st

from tuanjian_xlsx.cells import MAX_COL, MAX_ROW, cell_name, col_to_letters, letters_to_col, parse_cell, parse_range, quote_sheet


@pytest.mark.parametrize(
    "ref, rc",
    [("A1", (0, 0)), ("Z1", (0, 25)), ("AA1", (0, 26)), ("AZ9", (8, 51)), ("BA10", (9, 52)),
     ("XFD1", (0, 16383)), ("A1048576", (1048575, 0)), ("XFD1048576", (1048575, 16383)), ("$C$7", (6, 2))],
)
def test_edge_cells(ref, rc):
    assert parse_cell(ref) == rc
    assert cell_name(*rc) == ref.replace("$", "")


@pytest.mark.parametrize("bad", ["", "A0", "XFE1", "A1048577", "1A", "A-1", "AAAA1"])
def test_bad_cells(bad):
    with pytest.raises(ValueError):
        parse_cell(bad)


def test_ranges_and_quotes():
    assert parse_range("B4:D4") == (3, 1, 3, 3)
    assert parse_range("C5") == (4, 2, 4, 2)
    with pytest.raises(ValueError):
        parse_range("D4:B4")
    assert cell_name(3, 1, absolute=True) == "$B$4"
    assert quote_sheet("Sheet1") == "Sheet1"
    assert quote_sheet("走基层报告单") == "'走基层报告单'"
    assert quote_sheet("it's") == "'it''s'"


@given(st.integers(0, MAX_ROW - 1), st.integers(0, MAX_COL - 1))
def test_round_trip(row, col):
    assert parse_cell(cell_name(row, col)) == (row, col)
    assert letters_to_col(col_to_letters(col)) == col
