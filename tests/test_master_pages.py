"""The master reads the ledger in passes, a page of files at a time (Ledger.iter_files), never all at once: the
pages hold every file once, in the order asked, filtered right; the passes see one state of the ledger; and a file
whose records were partly replaced shows its records that count in its own order."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import shutil

import openpyxl
import pytest

from tuanjian_xlsx.ledger import FILE_PAGE, Ledger
from tuanjian_xlsx.master import render_master
from tuanjian_xlsx.plan import Workspace
from tuanjian_xlsx.status import by_group, effective, forms_in_use, group_key
from tuanjian_xlsx.workspace import init_workspace

AS_OF = dt.date(2026, 4, 10)
N = FILE_PAGE * 2 + 37  # more files than two pages


def _row(n: int, unit, form_id: str, period: str, when: dt.datetime, records: list[dict], *, valid: bool = True,
         issues: list[dict] | None = None) -> dict:
    return {"sha256": hashlib.sha256(str(n).encode()).hexdigest(), "name": f"f{n}.xlsx", "origin": f"/in/f{n}.xlsx",
            "ext": ".xlsx", "size": 1, "received_at": when, "now": when, "valid": valid, "form_id": form_id,
            "version": 2, "unit_id": unit.id, "unit": unit.name, "period": period,
            "result": {"records": [{"values": r} for r in records], "issues": issues or []}}


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Workspace:
    """A workspace whose ledger holds N files: visits of four units over three periods, arriving out of id order
    around the as-of date (some on its last second, some on the next day's first), one in seven invalid with an
    issue, ties of received time."""
    root = tmp_path_factory.mktemp("pages") / "ws"
    init_workspace(root)
    ws = Workspace.load(root)
    units = ws.roster.units[:4]
    rows = []
    for n in range(N):
        day = dt.datetime(2026, 4, 1) + dt.timedelta(hours=(n * 37) % 240)  # 2026-04-01 … 04-10 23:00, shuffled
        when = {5: dt.datetime(2026, 4, 10, 23, 59, 59), 6: dt.datetime(2026, 4, 11)}.get(n % 50, day)
        bad = n % 7 == 0
        rows.append(_row(n, units[n % 4], "visit_report", f"2026-0{1 + n % 3}", when,
                         [{"org_name": f"团委{n % 11}", "visit_date": "2026-03-02"}], valid=not bad,
                         issues=[{"code": "required-value", "message": "缺"}] if bad else []))
    with Ledger(root) as ledger:
        ledger.add_many(rows)
    return ws


def test_pages_hold_every_file_once_in_the_order_asked_filtered_right(ws):
    with Ledger(ws.root, readonly=True) as ledger:
        every = ledger.files()
        assert len(every) == N and [f.id for f in every] == [f.id for f in sorted(every, key=lambda f: (f.received_at,
                                                                                                      f.id))]
        assert [f.id for f in ledger.iter_files(records=False, issues=False)] == [f.id for f in every]
        until = [f.id for f in ledger.iter_files(until=AS_OF)]
        assert until == [f.id for f in every if f.received_at.date() <= AS_OF] and len(until) < N
        assert any(f.received_at == dt.datetime(2026, 4, 10, 23, 59, 59) for f in every if f.id in until)
        some = {f.id for f in every[::3]}
        assert [f.id for f in ledger.iter_files(ids=some)] == [f.id for f in every if f.id in some]
        grouped = list(ledger.iter_files(grouped=True, until=AS_OF))
        assert [f.id for f in grouped] == [f.id for f in by_group(f for f in every if f.id in until)]
        assert len({group_key(f) for f in grouped}) == 12 and grouped == sorted(grouped, key=group_key)
        assert not list(ledger.iter_files(forms=["target_tracker"]))
        bare = {f.id: f for f in ledger.iter_files(records=False)}
        full = {f.id: f for f in every}
        assert all(b.records == [] and b.issues == full[i].issues for i, b in bare.items())
        assert sum(1 for f in every if f.issues) == len(range(0, N, 7))  # issues read back, parsed or known empty
        assert all(f.issues == [] and f.records == full[f.id].records for f in ledger.iter_files(issues=False))
        assert ledger.names({every[0].id, every[-1].id}) == {every[0].id: every[0].name, every[-1].id: every[-1].name}


def test_the_passes_read_one_state_of_the_ledger(ws, tmp_path):
    root = shutil.copytree(ws.root, tmp_path / "ws")
    with Ledger(root, readonly=True) as reader, reader.reading():
        before = sum(1 for _ in reader.iter_files(records=False, issues=False))
        with Ledger(root) as writer:  # another process records a file meanwhile
            writer.add_many([_row(N, ws.roster.units[0], "visit_report", "2026-01", dt.datetime(2026, 4, 2),
                                  [{"org_name": "新", "visit_date": "2026-01-05"}])])
        assert sum(1 for _ in reader.iter_files(records=False, issues=False)) == before == N
    with Ledger(root, readonly=True) as reader:
        assert sum(1 for _ in reader.iter_files(records=False, issues=False)) == N + 1


def test_a_partly_replaced_file_shows_its_records_that_count_in_its_own_order(tmp_path):
    """File 1 holds visits A, B; file 2 holds C, then A again (replacing file 1's A). The detail sheet shows B,
    then file 2's C and A — file 2's own order (before paging it showed A before C: the order A was first seen)."""
    root = tmp_path / "ws"
    init_workspace(root)
    ws = Workspace.load(root)
    unit = ws.roster.units[0]
    visit = {o: {"org_name": o, "visit_date": "2026-03-02", "name": n} for o, n in
             (("甲团委", "一"), ("乙团委", "一"), ("丙团委", "二"), ("甲团委 ", "二"))}
    with Ledger(root) as ledger:
        ledger.add_many([_row(1, unit, "visit_report", "2026-03", dt.datetime(2026, 4, 1),
                              [visit["甲团委"], visit["乙团委"]]),
                         _row(2, unit, "visit_report", "2026-03", dt.datetime(2026, 4, 2),
                              [visit["丙团委"], visit["甲团委 "]])])
        data, live, _ = render_master(ws, ledger, AS_OF)
        in_memory = effective(ledger.files(), forms_in_use(ws))
    assert data is not None and live.superseded_by == {} and live.partial == {1: frozenset({1})}
    sheet = openpyxl.load_workbook(io.BytesIO(data), read_only=True)["走基层明细"]
    head, *rows = sheet.iter_rows(values_only=True)
    shown = [(r[head.index("走访团组织名称")], r[head.index("来源文件")]) for r in rows]
    assert shown == [("乙团委", "f1.xlsx"), ("丙团委", "f2.xlsx"), ("甲团委 ", "f2.xlsx")]
    assert [(r["org_name"], f.name) for f, r in in_memory.records["visit_report"]] == shown
