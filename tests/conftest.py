"""Shared fixtures: the specs, the built-in workspace, built templates, a person-like filler, LibreOffice."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import openpyxl
import pytest

from tuanjian_xlsx.build import build_template
from tuanjian_xlsx.ledger import MIGRATIONS
from tuanjian_xlsx.plan import Plan
from tuanjian_xlsx.specs import SpecRegistry

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def registry() -> SpecRegistry:
    return SpecRegistry()


@pytest.fixture(scope="session")
def builtin(registry) -> Plan:
    return Plan.builtin(registry)


@pytest.fixture(scope="session")
def templates(builtin, tmp_path_factory) -> dict[str, Path]:
    """Each form's blank template built from the built-in roster, on disk."""
    out = tmp_path_factory.mktemp("templates")
    paths = {}
    for spec in builtin.current_specs():
        p = out / f"{spec.form_id}.xlsx"
        p.write_bytes(build_template(spec, builtin.roster))
        paths[spec.form_id] = p
    return paths


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """`tuanjian demo` once per session: the workspace, the manifest of what was sent, and the merge result.
    Tests that change the workspace work on a copy."""
    from tuanjian_xlsx.demo import run_demo

    return run_demo(tmp_path_factory.mktemp("demo") / "演示")


# --- filling a form the way a person does: find the label, type into the cell beside it -------------------


def _norm(text) -> str:
    return re.sub(r"[\s:：]", "", str(text or ""))


def beside_label(ws, label: str) -> str:
    """The coordinate of the input cell right of the cell that reads `label` (merged label ranges skipped)."""
    want = _norm(label)
    for row in ws.iter_rows():
        for cell in row:
            if isinstance(cell.value, str) and _norm(cell.value) == want:
                right = cell.column
                for rng in ws.merged_cells.ranges:
                    if cell.coordinate in rng:
                        right = rng.max_col
                return ws.cell(row=cell.row, column=right + 1).coordinate
    raise KeyError(label)


def fill(src: Path, dst: Path, values: dict[str, object], sheet: str | None = None) -> Path:
    """Open with openpyxl, type each value beside its label, save as a new file."""
    wb = openpyxl.load_workbook(src)
    ws = wb[sheet] if sheet else wb.worksheets[0]
    for label, value in values.items():
        ws[beside_label(ws, label)] = value
    wb.save(dst)
    return dst


# --- LibreOffice headless ----------------------------------------------------------------------------------

_RECALC_ALWAYS = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="OOXMLRecalcMode" oor:op="fuse"><value>0</value></prop></item>
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="ODFRecalcMode" oor:op="fuse"><value>0</value></prop></item>
</oor:items>
"""


class LibreOffice:
    """soffice --headless with its own profile, set to recalculate every formula on load."""

    def __init__(self, binary: str, profile: Path):
        self.binary = binary
        self.profile = profile
        (profile / "user").mkdir(parents=True, exist_ok=True)
        (profile / "user" / "registrymodifications.xcu").write_text(_RECALC_ALWAYS, encoding="utf-8")

    def convert_many(self, srcs: list[Path], outdir: Path) -> list[Path]:
        """Several workbooks recalculated and saved as .xlsx in one soffice call (names must differ)."""
        outdir.mkdir(parents=True, exist_ok=True)
        cmd = [self.binary, f"-env:UserInstallation={self.profile.as_uri()}", "--headless", "--norestore",
               "--convert-to", "xlsx:Calc MS Excel 2007 XML", "--outdir", str(outdir), *map(str, srcs)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        outs = [outdir / (src.stem + ".xlsx") for src in srcs]
        missing = [o.name for o in outs if not o.exists()]
        assert not missing, f"LibreOffice did not convert {missing}: {proc.stdout} {proc.stderr}"
        return outs

    def disagreements(self, path: Path, outdir: Path, rows=None) -> tuple[int, list[tuple]]:
        """Every formula's cached value against what LibreOffice recalculates for it: (formulas compared, those that
        differ as (sheet, cell, formula, ours, theirs)). Blank and "" agree, numbers to pytest.approx. `rows(sheet
        title, row cells)` picks the rows compared (default: all)."""
        ours, formulas = openpyxl.load_workbook(path, data_only=True), openpyxl.load_workbook(path)
        theirs = openpyxl.load_workbook(self.convert(path, outdir), data_only=True)
        checked, bad = 0, []
        for sheet in formulas.worksheets:
            for row in sheet.iter_rows():
                if rows is not None and not rows(sheet.title, row):
                    continue
                for c in row:
                    if isinstance(c.value, str) and c.value.startswith("="):
                        a, b = ours[sheet.title][c.coordinate].value, theirs[sheet.title][c.coordinate].value
                        same = (a in (None, "") and b in (None, "")) or (
                            isinstance(a, (int, float)) and isinstance(b, (int, float)) and a == pytest.approx(b)) or a == b
                        if not same:
                            bad.append((sheet.title, c.coordinate, c.value, a, b))
                        checked += 1
        return checked, bad

    def convert(self, src: Path, outdir: Path, to: str = "xlsx") -> Path:
        outdir.mkdir(parents=True, exist_ok=True)
        target = {"xlsx": 'xlsx:Calc MS Excel 2007 XML', "pdf": "pdf", "ods": "ods", "xls": "xls:MS Excel 97"}[to]
        cmd = [self.binary, f"-env:UserInstallation={self.profile.as_uri()}", "--headless", "--norestore",
               "--convert-to", target, "--outdir", str(outdir), str(src)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        out = outdir / (src.stem + "." + to)
        assert out.exists(), f"LibreOffice did not convert {src.name}: {proc.stdout} {proc.stderr}"
        return out


@pytest.fixture(scope="session")
def libreoffice(tmp_path_factory) -> LibreOffice:
    binary = shutil.which("soffice") or shutil.which("libreoffice")
    if not binary:
        message = "LibreOffice (soffice) is not installed; scripts/test installs it"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return LibreOffice(binary, tmp_path_factory.mktemp("lo-profile"))


def ledger_at(path: Path, version: int) -> None:
    """A ledger as version `version` of tuanjian left it, with a row in each table it had."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, isolation_level=None)
    for n, statements in enumerate(MIGRATIONS[:version], start=1):
        for statement in statements:
            con.execute(statement)
        con.execute(f"PRAGMA user_version = {n}")
    con.execute("INSERT INTO files (sha256, name, origin, ext, size, received_at, ingested_at, valid, form_id, "
                "version, unit_id, unit, period, result) VALUES ('a1', '甲.xlsx', 'inbox/甲.xlsx', '.xlsx', 9, "
                "'2026-03-05T10:00:00', '2026-03-05T10:00:01', 0, 'visit_report', 1, 'u1', '甲', '2026-03', "
                "'{\"records\": [], \"issues\": [{\"code\": \"required-value\"}]}')")
    con.execute("INSERT INTO sightings (file_id, name, origin, seen_at) VALUES (1, '甲.xlsx', 'x', '2026-03-05')")
    if version >= 2:
        con.execute("INSERT INTO meta (key, value) VALUES ('distributed:u1:visit_report', '1 2026-03')")
    if version >= 3:
        con.execute("INSERT INTO mails (key, folder, arrived, sender, subject, files, taken_at) "
                    "VALUES ('<m1@x>', 'INBOX', '2026-03-05T09:00:00', 'a@b', '报表', 1, '2026-03-05T10:00:00')")
    con.close()


def set_passport(src: Path, dst: Path, **changes) -> Path:
    """Rewrite passport entries (custom properties and the _passport sheet), as a tampered or foreign file has them."""
    from openpyxl.packaging.custom import StringProperty

    wb = openpyxl.load_workbook(src)
    rows = {c.value: c.row for c in wb["_passport"]["A"]}
    for key, value in changes.items():
        name = "tj." + key
        if name in wb.custom_doc_props.names:
            del wb.custom_doc_props[name]
        wb.custom_doc_props.append(StringProperty(name=name, value=str(value)))
        wb["_passport"].cell(row=rows[key], column=2, value=str(value))
    wb.save(dst)
    return dst


def triples(result) -> list[tuple]:
    """(file, cell, code) of each issue: what the tests compare, not prose."""
    return sorted((i.file, i.cell, i.code) for i in result.issues)


def as_nobody(fn, *args) -> dict:
    """fn(*args) in a child process that cannot write the workspace: as `nobody` when we are root (root ignores
    permissions), as ourselves otherwise. The child is forked, so it needs nothing under root's home to run."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(read)
            if os.geteuid() == 0:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
            out = fn(*args)
        except BaseException as exc:
            out = {"crash": f"{type(exc).__name__}: {exc}"}
        os.write(write, json.dumps(out, ensure_ascii=False).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return json.loads(data)


# --- every problem the catalogue can report is reported by some test -----------------------------------------

RAISED: set[str] = set()
# codes raised only in a process of their own, checked there by the test named
NOT_RAISED_HERE: set[str] = {
    "reader-crashed",  # test_hostile_files.test_a_file_that_exhausts_its_reader_is_refused_alone: a fresh merge process
}


def pytest_configure(config):
    from tuanjian_xlsx.issues import Issue

    original = Issue.make.__func__
    main = os.getpid()
    # what forked worker processes raise comes back through a file any user can append to (the read-only
    # workspace tests run a child as `nobody`); pytest-xdist's workers inherit the controller's file and
    # write everything to it, since the controller runs no test itself
    import tempfile

    xdist_worker = hasattr(config, "workerinput")
    if not xdist_worker:
        shared = Path(tempfile.gettempdir()) / f"tuanjian-raised-{main}"
        shared.write_text("", encoding="utf-8")
        shared.chmod(0o666)
        os.environ["TUANJIAN_RAISED_FILE"] = str(shared)
    shared = Path(os.environ["TUANJIAN_RAISED_FILE"])

    def recording(cls, code, **kwargs):
        if code not in RAISED:
            RAISED.add(code)
            if xdist_worker or os.getpid() != main:
                try:
                    with open(shared, "a", encoding="utf-8") as f:
                        f.write(code + "\n")
                except OSError:  # a child running as another user (the read-only workspace tests)
                    pass
        return original(cls, code, **kwargs)

    Issue.make = classmethod(recording)


def pytest_sessionfinish(session, exitstatus):
    """On a full, green run: every catalogue code was raised somewhere (codes no test reaches are dead or
    untested). Subsets of the suite (-k, a file) are not judged."""
    from tuanjian_xlsx.issues import CATALOGUE

    if hasattr(session.config, "workerinput"):  # an xdist worker saw only its share; the controller judges
        return
    full = (exitstatus == 0 and not session.config.option.keyword and not session.config.option.markexpr
            and [Path(a).resolve() for a in session.config.args] in ([Path(session.config.rootpath, "tests")],
                                                                     [Path(session.config.rootpath)]))
    if not full:
        return
    missing = sorted(set(CATALOGUE) - RAISED - _raised_in_workers() - NOT_RAISED_HERE)
    if missing:
        session.exitstatus = 1
        print(f"\n问题代码没有任何测试触发过：{', '.join(missing)}")


def _raised_in_workers() -> set[str]:
    path = Path(os.environ.get("TUANJIAN_RAISED_FILE", ""))
    return set(path.read_text().split()) if path.is_file() else set()
