"""The contract between writing a workbook and reading it back: the hidden sheets, the passport's keys and how
they are stored, the defined names' prefixes, and the 退回件's 问题清单 heading.

The builder (`build`) and 退回件 (`returns`) write through these names; the reader (`read`) finds things by them.
Neither side imports the other: a change here is a change to every file already sent out, so keep it rare.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

# --- the hidden sheets ------------------------------------------------------------------------------------

LISTS_SHEET = "_lists"  # one column per dropdown, each under a workbook-level name (LIST_NAME_PREFIX…)
PASSPORT_SHEET = "_passport"  # key | value rows, a copy of the custom properties for programs that drop them
HIDDEN_SHEETS = (LISTS_SHEET, PASSPORT_SHEET)

# --- the passport: which form, which version, whose copy ---------------------------------------------------

PASSPORT_KEYS = ("form_id", "version", "fingerprint", "unit_id", "unit", "period", "due")
# Written only where it has a value (a 退回件): the sheets this product put in front of the form (问题清单), which
# the reader never takes for a form. Sheet names cannot hold "/", so it separates them.
NOT_FORMS_KEY = "not_forms"
NOT_FORMS_SEP = "/"
PROPERTY_PREFIX = "tj."  # each passport entry is also a custom document property, tj.<key>

# --- defined names ----------------------------------------------------------------------------------------

NAME_PREFIX = "tj_"
COLUMN_NAME_PREFIX = NAME_PREFIX + "col_"  # a tracker column's task rows
LIST_NAME_PREFIX = NAME_PREFIX + "list_"  # a column of the _lists sheet

# --- the 退回件's first sheet (returns.py writes it): never a form, whatever fields it names ------------------

PROBLEM_SHEET = "问题清单"
PROBLEM_COLUMNS = ("表", "单元格", "字段", "原值", "问题", "应为")


def field_name(field_id: str) -> str:
    """The defined name of a field's input cell (workbook scope; sheet scope on a copied form sheet)."""
    return NAME_PREFIX + field_id


def column_name(column_id: str) -> str:
    """The defined name of a tracker column's task rows."""
    return COLUMN_NAME_PREFIX + column_id


def list_name(key: str) -> str:
    """The defined name of a dropdown's list on the _lists sheet (a key already so named is kept)."""
    return key if key.startswith(LIST_NAME_PREFIX) else LIST_NAME_PREFIX + key


def property_name(key: str) -> str:
    """The custom document property holding a passport entry."""
    return PROPERTY_PREFIX + key


def entries(spec, *, unit_id: str = "", unit: str = "", period: str = "", due: str = "",
            not_forms: Sequence[str] = ()) -> dict[str, object]:
    """The passport a workbook carries, in the order written: every PASSPORT_KEYS entry (the version a number,
    the rest text, "" for none), then NOT_FORMS_KEY where some sheets are not forms."""
    out: dict[str, object] = {"form_id": spec.form_id, "version": spec.version, "fingerprint": spec.fingerprint,
                              "unit_id": unit_id, "unit": unit, "period": period, "due": due}
    if not_forms:
        out[NOT_FORMS_KEY] = NOT_FORMS_SEP.join(not_forms)
    return out


def read(properties: Mapping[str, str], rows: Iterable[Sequence] = ()) -> dict[str, str]:
    """The passport as text, every key present: the tj.* custom properties first, the _passport sheet's rows for
    what they lack (a program that dropped the properties)."""
    out = {k: properties.get(property_name(k), "") for k in PASSPORT_KEYS + (NOT_FORMS_KEY,)}
    for row in rows:
        if len(row) >= 2 and row[0] in out and not out[row[0]]:
            out[row[0]] = _text(row[1])
    if out["version"]:
        out["version"] = _int_text(out["version"])
    return out


def not_forms(passport: Mapping[str, str]) -> set[str]:
    """The sheets a passport says are not forms."""
    return {s for s in passport.get(NOT_FORMS_KEY, "").split(NOT_FORMS_SEP) if s}


def is_problem_heading(row: Sequence) -> bool:
    """Whether a sheet's first row is a 问题清单's heading (how one is known where the passport was lost)."""
    return tuple(str(v).strip() for v in row[:len(PROBLEM_COLUMNS)]) == PROBLEM_COLUMNS


def _text(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return "" if v is None else str(v)


def _int_text(v: str) -> str:
    """LibreOffice writes the integer property 1 as 1.0."""
    try:
        f = float(v)
        return str(int(f)) if f.is_integer() else v
    except ValueError:
        return v
