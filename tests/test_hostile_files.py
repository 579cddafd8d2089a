"""Nothing that arrives may stop the loop: each hostile or broken file is refused alone, with a Chinese reason
naming it, the rest of the batch is recorded, the ledger stays sound and the next run is not blocked."""

from __future__ import annotations

import datetime as dt
import io
import os
import random
import re
import sqlite3
import subprocess
import zipfile
from pathlib import Path

import openpyxl
import pytest
from click.testing import CliRunner

from conftest import fill, set_passport
from tuanjian_xlsx.cli import cli
from tuanjian_xlsx.guard import ods_extent, xlsx_extent
from tuanjian_xlsx.isolation import Crashed, Workers
from tuanjian_xlsx.merge import merge
from tuanjian_xlsx.workspace import init_workspace

AS_OF = dt.date(2026, 4, 20)
NOW = dt.datetime(2026, 4, 1, 9)
VISIT = {"报送单位": "源汇区团委", "报送期": "2026-03", "填表时间": dt.datetime(2026, 3, 5), "姓名": "张三",
         "单位职务": "书记", "走访团组织名称": "一中团委", "走访形式": "座谈交流", "团干部": 2, "团员青年": 15,
         "基层团组织工作开展情况": "好", "基层团组织工作亮点": "多"}


@pytest.fixture(scope="module")
def good_files(templates, tmp_path_factory) -> list[bytes]:
    """70 valid, different visit reports (a busy month of one county)."""
    folder = tmp_path_factory.mktemp("good")
    out = []
    for n in range(70):
        out.append(fill(templates["visit_report"], folder / f"{n}.xlsx",
                        dict(VISIT, 走访团组织名称=f"第{n + 1}中学团委")).read_bytes())
    return out


@pytest.fixture
def ws(tmp_path) -> Path:
    root = tmp_path / "ws"
    init_workspace(root)
    return root


def rewrite(data: bytes, change) -> bytes:
    """The same package with each member's bytes passed through change(name, body)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, change(info.filename, src.read(info)))
    return out.getvalue()


def far(data: bytes, rows: bytes) -> bytes:
    """A form with extra rows at the end of its first sheet (a Ctrl+End slip, written by some program)."""
    return rewrite(data, lambda n, b: b.replace(b"</sheetData>", rows + b"</sheetData>")
                   if n == "xl/worksheets/sheet1.xml" else b)


FAR_CELLS = {
    "other-attribute-order": b'<row r="1048576"><c s="0" t="n" r="XFD1048576"><v>1</v></c></row>',
    "type-first": b'<row r="1048576"><c t="n" r="XFD1048576"><v>1</v></c></row>',
    "row-without-r": b'<row r="1048576">' + b"<c><v>1</v></c>" * 16384 + b"</row>",
}


def ledger_ok(root: Path) -> bool:
    con = sqlite3.connect(root / ".tuanjian" / "ledger.sqlite")
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        con.close()


def outcome(result) -> dict[str, tuple]:
    return {i.path.name: (i.valid, [x.code for x in i.result.issues if x.severity == "error"] if i.result else [])
            for i in result.ingested}


# --- the used range, however the XML is written -----------------------------------------------------------


@pytest.mark.parametrize("xml, extent", [
    (b'<row r="3"><c r="B3"><v>1</v></c></row>', (3, 2)),
    (FAR_CELLS["type-first"], (1048576, 16384)),
    (FAR_CELLS["row-without-r"], (1048576, 16384)),
    (b'<x:row><x:c r="B3" s="1"/><x:c r="C3"></x:c><x:c><x:v>2</x:v></x:c></x:row>', (3, 4)),  # empty cells
    (b'<row r="1048576"><c r="XFD1048576" s="3"/></row>', (0, 0)),  # formatting only: calamine reads nothing
    (b"<row><c><v>1</v></c></row><row><c><is><t>a</t></is></c><c r='C2'><v>2</v></c></row>", (2, 3)),
])
def test_extent_of_a_sheet(xml, extent):
    assert xlsx_extent(xml) == extent


def test_extent_of_an_ods_counts_repeats_of_what_holds_something():
    bomb = (b'<table:table><table:table-row table:number-rows-repeated="1000000"><table:table-cell '
            b'table:number-columns-repeated="100" office:value-type="float" office:value="1"/></table:table-row>'
            b"</table:table>")
    assert ods_extent(bomb) == (1000000, 100)
    trailing = (b"<table:table><table:table-row><table:table-cell><text:p>a</text:p></table:table-cell>"
                b'</table:table-row><table:table-row table:number-rows-repeated="1048575"><table:table-cell '
                b'table:number-columns-repeated="1024"/></table:table-row></table:table>')
    assert ods_extent(trailing) == (1, 1)  # LibreOffice's own trailing empty rows are harmless


# --- isolation ----------------------------------------------------------------------------------------------


def _setup() -> str:
    return "state"


def _job(state: str, job):
    if job == "abort":
        os.abort()
    if job == "hang":
        import time

        time.sleep(60)
    if job == "raise":
        raise ValueError("x")
    return f"{state}:{job}"


def test_a_worker_that_dies_costs_only_its_own_job():
    jobs = [1, 2, "abort", 3, 4, "abort", 5, "raise", 6]
    with Workers(2, _setup, (), _job) as pool:
        got = dict(pool.run(jobs))
    assert [got[i] for i in (0, 1, 3, 4, 6, 8)] == ["state:1", "state:2", "state:3", "state:4", "state:5", "state:6"]
    assert isinstance(got[2], Crashed) and "异常终止" in got[2].reason
    assert isinstance(got[5], Crashed) and isinstance(got[7], Crashed) and "意外错误" in got[7].reason


def test_a_worker_that_hangs_is_given_up():
    with Workers(1, _setup, (), _job, timeout=2) as pool:
        got = dict(pool.run(["hang", 1]))
    assert isinstance(got[0], Crashed) and "秒" in got[0].reason and got[1] == "state:1"


# --- one file never blocks the merge -------------------------------------------------------------------


def test_far_cells_are_refused_and_the_rest_recorded(ws, good_files):
    inbox = ws / "收件箱"
    for n, data in enumerate(good_files):
        (inbox / f"好{n:02d}.xlsx").write_bytes(data)
    for name, rows in FAR_CELLS.items():
        (inbox / f"{name}.xlsx").write_bytes(far(good_files[0], rows))
    # a <dimension> that lies and formatting far away are no reason to refuse
    (inbox / "dimension.xlsx").write_bytes(rewrite(good_files[1], lambda n, b: b.replace(
        b'<dimension ref="', b'<dimension ref="A1:XFD1048576" x="') if n.endswith("sheet1.xml") else b))
    result = merge(ws, as_of=AS_OF, now=NOW)
    got = outcome(result)
    assert all(got[f"{name}.xlsx"] == (False, ["sheet-too-large"]) for name in FAR_CELLS)
    assert sum(valid for valid, _ in got.values()) == 71 and got["dimension.xlsx"] == (True, [])
    assert ledger_ok(ws) and openpyxl.load_workbook(result.master)
    parsed: list = []
    again = merge(ws, as_of=AS_OF, now=NOW, parse_counter=parsed)
    assert parsed == [] and again.duplicates == 74  # nothing read twice, nothing retried


def test_a_file_that_exhausts_its_reader_is_refused_alone(ws, good_files):
    """A legal sheet of 450,000 numbers, read under a memory cap too small for it: the reader fails (a MemoryError,
    or Rust's allocation failure aborting the worker); that file alone is refused, recorded, and not read again.
    The merge runs as staff run it, in a fresh process (the cap counts from what a worker starts with)."""
    import json
    import sys

    rng = random.Random(1)
    columns = [b"A" + bytes([65 + i]) for i in range(26)] + [b"B" + bytes([65 + i]) for i in range(4)]  # AA..BD
    rows = b"".join(b'<row r="%d">' % r + b"".join(b'<c r="%s%d"><v>%d</v></c>' % (col, r, rng.randrange(10 ** 6))
                                                  for col in columns) + b"</row>" for r in range(30, 15030))
    inbox = ws / "收件箱"
    for n, data in enumerate(good_files):
        (inbox / f"好{n:02d}.xlsx").write_bytes(data)
    (inbox / "大表.xlsx").write_bytes(far(good_files[0], rows))
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, TUANJIAN_WORKER_MEMORY_MB="12", PYTHONPATH=str(root))
    cmd = [sys.executable, "-m", "tuanjian_xlsx", "merge", "-w", str(ws), "--as-of", AS_OF.isoformat(), "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    data = json.loads(proc.stdout)
    assert proc.returncode == 0 and (data["valid"], data["invalid"]) == (70, 1), proc.stdout + proc.stderr
    con = sqlite3.connect(ws / ".tuanjian" / "ledger.sqlite")
    (stored,) = con.execute("SELECT result FROM files WHERE name = '大表.xlsx'").fetchone()
    con.close()
    assert "reader-crashed" in stored and ledger_ok(ws)
    parsed: list = []
    merge(ws, as_of=AS_OF, now=NOW, parse_counter=parsed)
    assert parsed == []


def _ods(rows: bytes, cols: bytes) -> bytes:
    """An .ods of one table: a row of `cols` numbers repeated `rows` times (the attributes' text as given)."""
    content = (b'<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:'
               b'opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0">'
               b'<office:body><office:spreadsheet><table:table table:name="S"><table:table-row '
               b'table:number-rows-repeated="' + rows + b'"><table:table-cell table:number-columns-repeated="' + cols
               + b'" office:value-type="float" office:value="1"/>'
               b"</table:table-row></table:table></office:spreadsheet></office:body></office:document-content>")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet", compress_type=zipfile.ZIP_STORED)
        z.writestr("content.xml", content)
        z.writestr("META-INF/manifest.xml", b'<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest='
                   b'"urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"><manifest:file-entry manifest:full-path="/" '
                   b'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/></manifest:manifest>')
    return buf.getvalue()


def test_ods_that_repeats_a_row_a_million_times(ws):
    data = _ods(b"1048576", b"1024")
    assert len(data) < 1200
    (ws / "收件箱" / "炸弹.ods").write_bytes(data)
    result = merge(ws, as_of=AS_OF, now=NOW)
    assert outcome(result) == {"炸弹.ods": (False, ["sheet-too-large"])}


def test_names_that_are_not_utf8_and_names_too_long(ws, good_files):
    inbox = os.fsencode(ws / "收件箱")
    with open(inbox + b"/" + "源汇区三月.xlsx".encode("gbk"), "wb") as f:  # as a non-Chinese unzip tool leaves it
        f.write(good_files[0])
    long_name = "关于" + "团" * 81 + ".xlsx"  # 254 bytes of UTF-8: legal, and too long once 退回 is added
    assert len(long_name.encode()) == 254
    (ws / "收件箱" / long_name).write_bytes(b"PK\x03\x04 not really a zip")
    r = CliRunner().invoke(cli, ["merge", "-w", str(ws), "--as-of", AS_OF.isoformat()])
    assert r.exit_code == 0, r.output
    assert "源汇区三月.xlsx" in r.output or "收到 2 份" in r.output
    con = sqlite3.connect(ws / ".tuanjian" / "ledger.sqlite")
    assert sorted(n for (n,) in con.execute("SELECT name FROM files")) == sorted([long_name, "源汇区三月.xlsx"])
    returns = list((ws / "退回").iterdir())
    assert returns and all(len(p.name.encode()) <= 255 for p in returns)
    (ws / "收件箱" / long_name).unlink()
    r = CliRunner().invoke(cli, ["merge", "-w", str(ws), "--as-of", AS_OF.isoformat()])
    assert r.exit_code == 0 and "内部错误" not in r.output


def test_links_in_the_inbox(ws, good_files, tmp_path):
    secret = tmp_path / "私人.xlsx"
    secret.write_bytes(good_files[0])
    secret.chmod(0o600)
    inbox = ws / "收件箱"
    (inbox / "外面.xlsx").symlink_to(secret)
    (inbox / "断开.xlsx").symlink_to(tmp_path / "不存在.xlsx")
    (inbox / "循环.xlsx").symlink_to(inbox / "循环.xlsx")
    (inbox / "里面.xlsx").write_bytes(good_files[1])
    (inbox / "别名.xlsx").symlink_to(inbox / "里面.xlsx")  # inside the inbox: the same file, counted once
    result = merge(ws, as_of=AS_OF, now=NOW)
    got = outcome(result)
    assert got["外面.xlsx"] == (False, ["path-refused"]) and got["断开.xlsx"] == (False, ["path-refused"])
    assert got["循环.xlsx"] == (False, ["path-refused"]) and got["里面.xlsx"] == (True, [])
    messages = [i.result.issues[0].message for i in result.ingested if i.result and not i.valid]
    assert any("收件文件夹以外" in m for m in messages) and any("不存在或形成循环" in m for m in messages)
    archive = ws / ".tuanjian" / "archive"
    import hashlib

    assert not (archive / (hashlib.sha256(good_files[0]).hexdigest() + ".xlsx")).exists()  # never copied out


def test_macros_by_content_whatever_the_name(ws, good_files):
    def add_vba(name, body):
        if name == "[Content_Types].xml":
            return body.replace(b"</Types>", b'<Default Extension="bin" ContentType="application/vnd.ms-office.'
                                              b'vbaProject"/></Types>')
        return body

    buf = io.BytesIO(rewrite(good_files[0], add_vba))
    with zipfile.ZipFile(buf, "a") as z:
        z.writestr("xl/vbaProject.bin", b"\xd0\xcf\x11\xe0 macro")
    (ws / "收件箱" / "改了名的宏.xlsx").write_bytes(buf.getvalue())
    assert outcome(merge(ws, as_of=AS_OF, now=NOW)) == {"改了名的宏.xlsx": (False, ["macro-workbook"])}


def test_zips_too_many_members_or_with_a_password(ws, good_files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for n in range(1500):
            z.writestr(f"表{n}.xlsx", b"tiny")
    (ws / "收件箱" / "一千五.zip").write_bytes(buf.getvalue())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:  # compressed: no signatures of the inner zips show
        z.writestr("加密.xlsx", good_files[0])
        z.writestr("明文.xlsx", good_files[1])
    data = bytearray(buf.getvalue())  # set the "encrypted" flag a password-protected member carries
    data[6] |= 0x1  # the first member's local header
    central = data.index(b"PK\x01\x02")
    data[central + 8] |= 0x1  # and its central directory entry
    (ws / "收件箱" / "有密码.zip").write_bytes(bytes(data))
    result = merge(ws, as_of=AS_OF, now=NOW)
    got = outcome(result)
    assert got == {"一千五.zip": (False, ["zip-too-many"]), "加密.xlsx": (False, ["zip-encrypted"]),
                   "明文.xlsx": (True, [])}
    assert len(list((ws / "退回").glob("*.txt"))) == 2  # one message for the whole zip, not 1,500
    assert any("压缩包有密码" in i.result.issues[0].message for i in result.ingested if i.result and not i.valid)


def test_entity_bombs_and_broken_binaries_say_why_in_chinese(ws, good_files):
    dtd = b'<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>'
    data = rewrite(good_files[0], lambda n, b: (dtd + b.replace("好".encode(), b"&lol2;"))
                   if n == "xl/worksheets/sheet1.xml" else b)
    (ws / "收件箱" / "笑.xlsx").write_bytes(data)
    (ws / "收件箱" / "二进制.xlsb").write_bytes(b"PK\x03\x04" + bytes(200))
    result = merge(ws, as_of=AS_OF, now=NOW)
    got = outcome(result)
    assert got["笑.xlsx"] == (False, ["xml-attack"])
    assert got["二进制.xlsb"][0] is False
    for item in result.ingested:
        for issue in item.result.issues:
            assert "Error" not in issue.message and "Exception" not in issue.message


def test_a_date_cell_holding_minus_1e30(ws, templates, tmp_path):
    path = fill(templates["visit_report"], tmp_path / "负.xlsx", dict(VISIT, 填表时间=-1e30))
    wb = openpyxl.load_workbook(path)
    for row in wb.worksheets[0].iter_rows():
        for cell in row:
            if cell.value == -1e30:
                cell.number_format = "yyyy-mm-dd"
    wb.save(ws / "收件箱" / "负.xlsx")
    result = merge(ws, as_of=AS_OF, now=NOW)
    (item,) = result.ingested
    assert not item.valid and all("Error" not in i.message for i in item.result.issues)


def test_a_text_longer_than_a_cell_is_kept_and_said(ws, templates, tmp_path):
    path = fill(templates["visit_report"], tmp_path / "长.xlsx", VISIT)
    long_text = "很长的说明。" * 6000  # 36,000 characters
    data = rewrite(path.read_bytes(), lambda n, b: b.replace("好".encode(), long_text.encode())
                   if n == "xl/worksheets/sheet1.xml" else b)
    (ws / "收件箱" / "长.xlsx").write_bytes(data)
    result = merge(ws, as_of=AS_OF, now=NOW)
    (item,) = result.ingested
    assert item.valid
    con = sqlite3.connect(ws / ".tuanjian" / "ledger.sqlite")
    assert "text-cut" in con.execute("SELECT result FROM files").fetchone()[0]


def test_a_damaged_master_is_written_again(ws, good_files):
    (ws / "收件箱" / "a.xlsx").write_bytes(good_files[0])
    first = merge(ws, as_of=AS_OF, now=NOW)
    first.master.write_bytes(first.master.read_bytes()[:1000])  # damaged on disk, inputs unchanged
    again = merge(ws, as_of=AS_OF, now=NOW)
    assert openpyxl.load_workbook(again.master)["总览"]


def test_an_archived_original_lost_is_archived_again(ws, good_files):
    import hashlib

    (ws / "收件箱" / "a.xlsx").write_bytes(good_files[0])
    merge(ws, as_of=AS_OF, now=NOW)
    archived = ws / ".tuanjian" / "archive" / (hashlib.sha256(good_files[0]).hexdigest() + ".xlsx")
    archived.unlink()
    merge(ws, as_of=AS_OF, now=NOW)
    assert archived.read_bytes() == good_files[0]


def test_units_whose_names_differ_only_in_forbidden_characters(ws):
    book = ws / "名单与目标.xlsx"
    wb = openpyxl.load_workbook(book)
    sheet = wb["单位名单"]
    sheet["B2"], sheet["B3"] = "团委*", "团委?"
    wb.save(book)
    from tuanjian_xlsx.distribute import distribute

    result = distribute(ws, "2026-03", forms=["visit_report"])
    folders = {p.unit.name: p.files[0].parent for p in result.packages}
    assert folders["团委*"] != folders["团委?"]
    files = [f for p in result.packages for f in p.files]
    assert len({f.name for f in files}) == len(files)
    from tuanjian_xlsx.read import open_package

    for pkg in result.packages:  # each unit's copy is made (and locked) for that unit
        assert open_package(pkg.files[0]).passport()["unit"] in (pkg.unit.id, pkg.unit.name)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small file system to fill needs root (CI runs as root)")
def test_disk_full_during_merge(tmp_path, good_files):
    mount = tmp_path / "小盘"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(mount)], check=True)
    try:
        root = mount / "ws"
        init_workspace(root)
        inbox = tmp_path / "收件"
        inbox.mkdir()
        for n, data in enumerate(good_files[:60]):
            (inbox / f"{n}.xlsx").write_bytes(data)
        r = CliRunner().invoke(cli, ["merge", str(inbox), "-w", str(root), "--as-of", AS_OF.isoformat()])
        assert r.exit_code == 1 and "磁盘空间不足" in r.output and "内部错误" not in r.output, r.output
        assert not [p for p in root.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".~tj-")]
        assert ledger_ok(root)
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def _walk(folder: str) -> dict:
    from tuanjian_xlsx.inbox import Refused, walk

    return {Path(str(p.path if isinstance(p, Refused) else p)).name:
            (p.issue.code, p.issue.message) if isinstance(p, Refused) else "read" for p in walk([Path(folder)])}


def test_files_and_folders_the_user_may_not_read_are_named(good_files):
    import shutil
    import tempfile

    from conftest import as_nobody

    base = Path(tempfile.mkdtemp(prefix="tj-perm-"))  # under /tmp, reachable by nobody
    try:
        os.chmod(base, 0o755)
        (base / "可读.xlsx").write_bytes(good_files[0])
        (base / "不可读.xlsx").write_bytes(good_files[1])
        (base / "不可读.xlsx").chmod(0o000)
        (base / "锁住的文件夹").mkdir()
        (base / "锁住的文件夹" / "里面.xlsx").write_bytes(good_files[2])
        (base / "锁住的文件夹").chmod(0o000)
        for p in (base / "可读.xlsx",):
            p.chmod(0o644)
        got = as_nobody(_walk, str(base))
        assert got.get("crash") is None, got
        assert got["可读.xlsx"] == "read"
        assert got["不可读.xlsx"][0] == "path-refused" and "没有读取权限" in got["不可读.xlsx"][1]
        assert got["锁住的文件夹"][0] == "path-refused" and "没有读取权限" in got["锁住的文件夹"][1]
    finally:
        for p in [base, *base.rglob("*")]:
            os.chmod(p, 0o755)
        shutil.rmtree(base)


def test_a_far_cell_in_the_roster_book_is_a_chinese_config_error(ws):
    book = ws / "名单与目标.xlsx"
    book.write_bytes(rewrite(book.read_bytes(), lambda n, b: b.replace(
        b"</sheetData>", FAR_CELLS["type-first"] + b"</sheetData>") if n == "xl/worksheets/sheet1.xml" else b))
    r = CliRunner().invoke(cli, ["status", "-w", str(ws)])
    assert r.exit_code == 1 and "名单与目标.xlsx" in r.output and "区域过大" in r.output, r.output


def _echo_big(state: str, job: bytes) -> bytes:
    return job * 2  # an answer as large as the job, twice over


def test_large_jobs_and_large_answers_never_wait_on_each_other():
    """Jobs and answers far larger than a pipe's buffer (a zip member of megabytes, an answer with long texts)."""
    jobs = [bytes([n]) * (3 << 20) for n in range(6)]
    with Workers(2, _setup, (), _echo_big, timeout=60) as pool:
        got = dict(pool.run(jobs))
    assert [len(got[i]) for i in range(6)] == [6 << 20] * 6 and got[5][:1] == b"\x05"


def test_damaged_members_of_a_zip_are_refused_alone(ws, good_files):
    import lzma  # noqa: F401 — zipfile's LZMA members need it

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("坏.xlsx", good_files[0])
        z.writestr("好.xlsx", good_files[1])
        z.writestr("坏lzma.xlsx", good_files[2], compress_type=zipfile.ZIP_LZMA)
    data = bytearray(buf.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
        for name in ("坏.xlsx", "坏lzma.xlsx"):
            info = z.getinfo(name)
            start = info.header_offset + 30 + len(info.orig_filename.encode()) + 40
            data[start:start + 200] = bytes(200)  # the compressed bytes damaged, the sizes and names intact
    (ws / "收件箱" / "损坏.zip").write_bytes(bytes(data))
    result = merge(ws, as_of=AS_OF, now=NOW)
    got = outcome(result)
    assert got["好.xlsx"] == (True, [])
    for name in ("坏.xlsx", "坏lzma.xlsx"):
        assert got[name] == (False, ["path-refused"]), got
    messages = [i.result.issues[0].message for i in result.ingested if i.result and not i.valid]
    assert all("已损坏" in m and "Error" not in m for m in messages)
    again = merge(ws, as_of=AS_OF, now=NOW)
    assert again.new == 0


def _eocd_comment(data: bytes, length: int) -> bytes:
    """The zip with its end record's comment length set (the comment bytes themselves not changed)."""
    return data[:-2] + length.to_bytes(2, "little")


def test_two_archives_in_one_file_are_refused_so_the_checks_and_the_reader_see_the_same(good_files, tmp_path):
    """zipfile (the checks) takes the last end record, allows data before the archive and a comment running past
    the end; calamine may fall back to an earlier end record and read a workbook no check saw. A file that two
    readers could read differently is refused; ordinary workbooks are not."""
    from tuanjian_xlsx.read import open_package

    hidden, shown = good_files[0], good_files[1]
    layouts = {
        "comment-past-end": _eocd_comment(hidden, len(shown)) + _eocd_comment(shown, 100),
        "data-before": hidden[:100] + shown,
        "two-appended": hidden + shown,
        "volume": shown[:-22 + 4] + (3).to_bytes(2, "little") + shown[-22 + 6:],
    }
    for name, data in layouts.items():
        path = tmp_path / f"{name}.xlsx"
        path.write_bytes(data)
        pkg = open_package(path)
        assert [(i.code, "压缩结构不规范" in i.message) for i in pkg.issues] == [("file-unreadable", True)], name
    plain = tmp_path / "plain.xlsx"
    plain.write_bytes(shown)
    assert open_package(plain).issues == []


def _with_crc(data: bytes, member: str, crc: int) -> bytes:
    """The same bytes with the central directory stating another CRC-32 for `member` (an archive without comment)."""
    at = int.from_bytes(data[-6:-2], "little")  # where the directory starts, from the end record
    while True:
        name_len, extra_len, comment_len = (int.from_bytes(data[at + k:at + k + 2], "little") for k in (28, 30, 32))
        if data[at + 46:at + 46 + name_len] == member.encode():
            return data[:at + 16] + crc.to_bytes(4, "little") + data[at + 20:]
        at += 46 + name_len + extra_len + comment_len


def test_what_one_file_taught_the_reader_never_excuses_another(good_files, builtin, tmp_path):
    """Parts met before (a template's workbook.xml, its styles) are remembered by their bytes: a later file with the
    same bytes but a wrong checksum is still refused, and one whose workbook.xml differs reads its own names."""
    from tuanjian_xlsx import read
    from tuanjian_xlsx.validate import validate_file

    first = good_files[0]
    assert read.open_package(tmp_path / "a.xlsx", first).issues == []
    broken = _with_crc(first, "xl/workbook.xml", 0)
    assert [i.code for i in read.open_package(tmp_path / "b.xlsx", broken).issues] == ["file-unreadable"]
    moved = rewrite(first, lambda n, b: b.replace(b"$B$6<", b"$B$9<") if n == "xl/workbook.xml" else b)
    for data, cell in ((first, "B6"), (moved, "B9"), (first, "B6")):
        assert read.open_package(tmp_path / "c.xlsx", data).names["tj_name"][1] == cell
    # a sheet whose quick bound is large (a comment full of c's) is measured exactly, and read as before
    padded = rewrite(first, lambda n, b: b.replace(b"</sheetData>", b"</sheetData><!--" + b"c" * 20000 + b"-->")
                     if n == "xl/worksheets/sheet1.xml" else b)
    body = zipfile.ZipFile(io.BytesIO(padded)).read("xl/worksheets/sheet1.xml")
    from tuanjian_xlsx.guard import MAX_SHEET_CELLS, _quick_bound, bound

    assert _quick_bound(body) > MAX_SHEET_CELLS // 4 > bound(body)
    same = [validate_file(tmp_path / "d.xlsx", builtin, data=d) for d in (first, padded)]
    assert same[0].issues == same[1].issues and same[0].records == same[1].records and same[0].valid


def _package(data: bytes, change=lambda n, b: b, rename: dict | None = None, add: dict | None = None) -> bytes:
    """The package with members changed (change(name, body)), renamed and added, written as given (no check of
    the names: a backslash stays a backslash)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = change(info.filename, src.read(info))
            dst.writestr(zipfile.ZipInfo((rename or {}).get(info.filename, info.filename)), body)
        for name, body in (add or {}).items():
            dst.writestr(zipfile.ZipInfo(name), body)
    return out.getvalue()


def test_packages_that_two_readers_would_read_differently_are_refused(good_files, tmp_path):
    """Crafted packages the checks once let through to calamine (an attacker review): a sheet under a name with a
    backslash or in capitals, references of more letters or digits than any reference holds, a shared-strings part
    that asks for tens of millions of strings, an .xlsb (binary sheets no check can read), a sheet listed twice in
    workbook.xml or two sheets of one name, an .ods repeat count with a plus sign. Each is refused, in Chinese,
    before calamine sees it. (Each is sized so that calamine could read it without dying: a test that fails before
    the mend fails, it does not kill the test run.)"""
    from tuanjian_xlsx.read import open_package

    good = good_files[0]
    sheet, rels, book = "xl/worksheets/sheet1.xml", "xl/_rels/workbook.xml.rels", "xl/workbook.xml"

    def far(ref: bytes):
        row = bytes(c for c in ref if 48 <= c <= 57)  # (written as the cell's, leading zeros and all)
        return lambda n, b: b.replace(b"</sheetData>", b'<row r="' + row + b'"><c r="' + ref
                                      + b'" t="inlineStr"><is><t>x</t></is></c></row></sheetData>') if n == sheet else b

    def both(*changes):
        def change(n, b):
            for c in changes:
                b = c(n, b)
            return b
        return change

    retarget = lambda n, b: b.replace(b"/xl/worksheets/sheet1.xml", b"/xl/s1.dat") if n == rels else b  # noqa: E731
    dtd = b'<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">]>'
    twice = lambda n, b: b.replace(b"</sheets>", b[b.index(b"<sheet "):b.index(b"/>", b.index(b"<sheet ")) + 2]  # noqa: E731
                                   .replace(b'sheetId="1"', b'sheetId="9"') + b"</sheets>") if n == book else b

    def same_name(n, b):
        if n != book:
            return b
        first, second = [b.index(b'name="', b.index(b"<sheet ", 0 if k == 0 else b.index(b"<sheet ") + 1)) for k in (0, 1)]
        name1 = b[first:b.index(b'"', first + 6) + 1]
        return b[:second] + name1 + b[b.index(b'"', second + 6) + 1:]

    sst = (b'<?xml version="1.0"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
           b'count="1" uniqueCount="40000000"><si><t>x</t></si></sst>')
    cases = {
        "反斜杠.xlsx": (_package(good, both(far(b"Z100000"), lambda n, b: b.replace(b"/xl/worksheets/sheet1.xml",
                                                                                      b"/xl\\s1.dat") if n == rels else b),
                                  rename={sheet: "xl\\s1.dat"}), "file-unreadable"),
        "大小写重名.xlsx": (_package(good, add={"XL/worksheets/sheet1.xml": b"<worksheet/>"}), "file-unreadable"),
        "前导零.xlsx": (_package(good, far(b"Z0000100000")), "sheet-too-large"),
        "四个字母.xlsx": (_package(good, far(b"AAAA120")), "sheet-too-large"),
        "字符串表.xlsx": (_package(good, add={"xl/sharedStrings.xml": sst}), "zip-bomb"),
        "注释里的字符串表.xlsx": (_package(good, add={"xl/sharedStrings.xml": sst.replace(
            b"<sst ", b'<!-- <sst uniqueCount="1"> --><sst ', 1)}), "zip-bomb"),
        "二进制.xlsb": (good, "unsupported-format"),
        "改了名的二进制.xlsx": (_package(good, add={"xl/workbook.bin": b"\0" * 64}), "unsupported-format"),
        "列了两次.xlsx": (_package(good, twice), "file-unreadable"),
        "两张同名.xlsx": (_package(good, same_name), "file-unreadable"),
        "大写的表.xlsx": (_package(good, lambda n, b: dtd + b if n == sheet else b,
                                  rename={sheet: "xl/worksheets/sheet1.XML"}), "xml-attack"),
        "另一个名字.xlsx": (_package(good, both(retarget, lambda n, b: dtd + b if n == sheet else b),
                                  rename={sheet: "xl/s1.dat"}), "xml-attack"),
        "加号.ods": (_ods(b"+3000000", b"2"), "sheet-too-large"),
    }
    for name, (data, code) in cases.items():
        (tmp_path / name).write_bytes(data)
        pkg = open_package(tmp_path / name)
        assert [i.code for i in pkg.issues] == [code], name
        assert all("Error" not in i.message for i in pkg.issues)


def test_a_passport_version_beyond_any_integer_is_refused_alone(ws, good_files, tmp_path):
    """tj.version = 99999999999999999999999 was taken as the file's version and could not be stored: every merge
    (and every --fetch, the mail never taken) stopped with 内部错误, the good file beside it unrecorded."""
    src = tmp_path / "src.xlsx"
    src.write_bytes(good_files[0])
    set_passport(src, ws / "收件箱" / "巨版本.xlsx", version="99999999999999999999999")
    (ws / "收件箱" / "好.xlsx").write_bytes(good_files[1])
    result = merge(ws, as_of=AS_OF, now=NOW)
    assert merge(ws, as_of=AS_OF, now=NOW).new == 0  # nothing stuck for the next run
    con = sqlite3.connect(ws / ".tuanjian" / "ledger.sqlite")
    assert sorted(con.execute("SELECT name, valid FROM files").fetchall()) == [("好.xlsx", 1), ("巨版本.xlsx", 0)]
    assert result.received == 2


def test_nan_in_a_tracker_number_is_refused(builtin):
    """A NaN stored in a number cell passed the checks of a decimal field (NaN fails every comparison) and then
    stopped every master and assessment after it."""
    from tuanjian_xlsx.normalise import as_number

    for raw in (float("nan"), float("inf"), float("-inf")):
        got, issues = as_number(raw, {"field": "2-1 基数"}, whole=False)
        assert got is None and [i.code for i in issues] == ["not-a-number"]


@pytest.mark.parametrize("ref", [b"$B$99999999", b"$XFE$6"])
def test_a_defined_name_off_the_sheet_is_no_name(ws, good_files, ref):
    """A field's defined name pointing past the sheet's edge ended the reading with 读取时出现意外错误 (转交技术人员);
    such a name points nowhere: the field is found by its label, as in a copy that lost its names."""
    data = rewrite(good_files[0], lambda n, b: re.sub(rb"(<definedName name=\"tj_name\"[^>]*>[^<]*!)\$[A-Z]+\$[0-9]+",
                                                        rb"\g<1>" + ref, b) if n == "xl/workbook.xml" else b)
    assert ref in data or ref in zipfile.ZipFile(io.BytesIO(data)).read("xl/workbook.xml")
    (ws / "收件箱" / "名字越界.xlsx").write_bytes(data)
    (item,) = merge(ws, as_of=AS_OF, now=NOW).ingested
    assert item.valid, [i.message for i in item.result.issues]


def test_thousands_of_sheets_naming_one_part_are_refused(ws, good_files):
    """2,000 <sheet> entries naming one small part passed every check (the part counted once) and made a 40 MB
    退回件 in 44 s of the main process, again after every kill."""
    def many(name: str, body: bytes) -> bytes:
        if name != "xl/workbook.xml":
            return body
        first = re.search(rb"<sheet [^>]*/>", body).group(0)
        copies = b"".join(re.sub(rb'name="[^"]*"', b'name="S%d"' % k, first).replace(b'sheetId="1"', b'sheetId="%d"' % (k + 10))
                          for k in range(300))
        return body.replace(first, first + copies)

    (ws / "收件箱" / "三百表.xlsx").write_bytes(rewrite(good_files[0], many))
    (ws / "收件箱" / "好.xlsx").write_bytes(good_files[1])
    result = merge(ws, as_of=AS_OF, now=NOW)
    assert outcome(result) == {"三百表.xlsx": (False, ["too-many-sheets"]), "好.xlsx": (True, [])}
    assert "303 个工作表" in next(i for i in result.ingested if not i.valid).result.issues[0].message
