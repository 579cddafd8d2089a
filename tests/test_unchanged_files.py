"""A file merge read before and unchanged since is not read again (the stat cache), and what that must not cost:
containers come back as they were, an original lost from the archive is read and kept again, a stated arrival
still counts, a changed file is read. Also the package reader's own inflating of members keeps zipfile's checks."""

from __future__ import annotations

import datetime as dt
import io
import os
import sqlite3
import time
import zipfile
import zlib

import pytest

from conftest import fill
from test_intake import VISIT, _eml, gbk_zip
from tuanjian_xlsx.ledger import Ledger
from tuanjian_xlsx.merge import merge
from tuanjian_xlsx.validate import validate_file
from tuanjian_xlsx.workspace import init_workspace

AS_OF, NOW = dt.date(2026, 4, 20), dt.datetime(2026, 4, 20, 9)
OLD = time.time() - 3600  # files saved an hour ago: settled


@pytest.fixture(scope="module")
def forms(templates, tmp_path_factory) -> list[bytes]:
    """Four 附件1 of 源汇区团委 for 2026-03, visits to different organisations."""
    out = tmp_path_factory.mktemp("forms")
    return [fill(templates["visit_report"], out / f"{n}.xlsx", {**VISIT, "走访团组织名称": f"第{n}中学团委"}).read_bytes()
            for n in range(4)]


def _inbox(tmp_path, forms) -> tuple:
    root = tmp_path / "ws"
    init_workspace(root)
    inbox = root / "收件箱"
    (inbox / "甲.xlsx").write_bytes(forms[0])
    (inbox / "打包.zip").write_bytes(gbk_zip({"源汇区团委/三月/乙.xlsx": forms[1], "../逃出去.xlsx": forms[1]}))
    (inbox / "来信.eml").write_bytes(_eml(forms[2], "someone@else.example", dt.datetime(2026, 4, 8, 10)))
    for p in inbox.iterdir():
        os.utime(p, (OLD, OLD))
    return root, inbox


def _sightings(root) -> int:
    with sqlite3.connect(root / ".tuanjian" / "ledger.sqlite") as con:
        return con.execute("SELECT COUNT(*) FROM sightings").fetchone()[0]


def _seen(result) -> list[tuple]:
    return [(str(i.path), i.sha256, i.file_id) for i in result.ingested]


def test_unchanged_files_are_taken_as_they_were(tmp_path, forms):
    root, inbox = _inbox(tmp_path, forms)
    (inbox / "甲的副本.xlsx").write_bytes(forms[0])  # a copy of 甲 in the same run: its file id is known at the end
    (inbox / "说明.zip").write_bytes(gbk_zip({"说明.txt": b"x"}))  # a zip holding no spreadsheet
    for p in inbox.iterdir():
        os.utime(p, (OLD, OLD))
    first = merge(root, as_of=AS_OF, now=NOW)
    # 甲 and its copy, 乙, the unsafe member, two attachments, and 说明.zip said to hold no report
    assert (first.received, first.new, first.duplicates) == (7, 6, 1)
    with Ledger(root) as ledger:  # every file read is remembered, these two as well
        assert set(ledger.seen_paths()) == {str(p) for p in inbox.iterdir()}
    sightings = _sightings(root)
    parsed: list = []
    again = merge(root, as_of=AS_OF, now=NOW + dt.timedelta(hours=1), parse_counter=parsed)
    assert parsed == [] and again.duplicates == again.received == 7
    assert _seen(again) == _seen(first)  # zip members and attachments as a fresh read shows them
    assert _sightings(root) == sightings  # the same files in the same place are no new arrival
    assert again.summary().startswith("没有新文件（已登记过的 7 份未重复计数）")

    # an original lost from the archive: the file is read again and its original kept again (a zip's member too)
    for shown, content in (("甲.xlsx", forms[0]), ("乙.xlsx", forms[1])):
        sha = next(i.sha256 for i in first.ingested if i.path.name == shown)
        (root / ".tuanjian" / "archive" / f"{sha}.xlsx").unlink()
        merge(root, as_of=AS_OF, now=NOW + dt.timedelta(hours=2))
        assert (root / ".tuanjian" / "archive" / f"{sha}.xlsx").read_bytes() == content

    # a stated arrival still counts for a file not read again
    stated = merge(root, [inbox / "甲.xlsx"], as_of=AS_OF, now=NOW + dt.timedelta(hours=3),
                   received_at=dt.datetime(2026, 4, 1, 8))
    assert stated.corrected == 1

    # changed content is read (a new size, a new time: whatever changed)
    (inbox / "甲.xlsx").write_bytes(forms[3])
    os.utime(inbox / "甲.xlsx", (OLD + 60, OLD + 60))
    changed = merge(root, as_of=AS_OF, now=NOW + dt.timedelta(hours=4))
    assert [(i.path.name, i.outcome) for i in changed.ingested if i.outcome == "new"] == [("甲.xlsx", "new")]


def test_a_file_written_moments_ago_is_not_remembered(tmp_path, forms):
    root, inbox = _inbox(tmp_path, forms)
    os.utime(inbox / "甲.xlsx", None)  # modified just now: a second write within the clock's tick is possible
    merge(root, as_of=AS_OF, now=NOW)
    with sqlite3.connect(root / ".tuanjian" / "ledger.sqlite") as con:
        paths = {os.path.basename(p) for (p,) in con.execute("SELECT path FROM seen_paths")}
    assert paths == {"打包.zip", "来信.eml"}


def _package(data: bytes, change) -> bytes:
    """The workbook's zip with one byte changed by `change(data, offset of xl/workbook.xml's local header)`."""
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo("xl/workbook.xml")
    out = bytearray(data)
    change(out, info)
    return bytes(out)


def _flip_data(out: bytearray, info: zipfile.ZipInfo) -> None:
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    out[start + info.compress_size // 2] ^= 0x01  # the deflated data: a wrong CRC (or a broken stream)


def _rename_header(out: bytearray, info: zipfile.ZipInfo) -> None:
    out[info.header_offset + 30 + 3] ^= 0x20  # xl/workbook.xml -> xl/Workbook.xml in the local header only


@pytest.mark.parametrize("change", [_flip_data, _rename_header])
def test_members_are_checked_as_zipfile_checks_them(tmp_path, forms, builtin, change):
    path = tmp_path / "坏.xlsx"
    path.write_bytes(_package(forms[0], change))
    with pytest.raises((zipfile.BadZipFile, zlib.error)):
        zipfile.ZipFile(path).read("xl/workbook.xml")  # what zipfile itself says of it
    result = validate_file(path, builtin)
    assert [i.code for i in result.issues] == ["file-unreadable"]


# --- a merge that finds nothing new rests on the configuration the ledger stored ------------------------------

_QUICK = """
import datetime as dt, sys
from tuanjian_xlsx.ledger import Ledger
from tuanjian_xlsx.merge import merge
result = merge(sys.argv[1], as_of=dt.date(2026, 4, 20), now=dt.datetime(2026, 4, 20, 12))
print(result.new, result.duplicates, len(result.missing), "pydantic" in sys.modules, "xlsxwriter" in sys.modules)
"""


def _quick(root, **env) -> str:
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", _QUICK, str(root)], capture_output=True, text=True, timeout=120,
                         env={**os.environ, **env})
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def test_nothing_new_needs_no_loading_and_a_changed_configuration_is_loaded(tmp_path, forms):
    import openpyxl

    from tuanjian_xlsx.issues import ConfigError

    root, _ = _inbox(tmp_path, forms)
    first = merge(root, as_of=AS_OF, now=NOW)
    missing = len(first.missing)
    master = root / "汇总" / "汇总表.xlsx"
    made = master.read_bytes()
    # nothing new, configuration as it was: neither the plan's models nor the writer are loaded, the master stands
    assert _quick(root) == f"0 5 {missing} False False"
    assert master.read_bytes() == made

    # staff rename a unit in 名单与目标.xlsx: the next merge, with nothing new, loads it and the master shows it
    book = root / "名单与目标.xlsx"
    wb = openpyxl.load_workbook(book)
    row = next(c.row for c in wb["单位名单"]["B"] if c.value == "舞阳县团委")
    wb["单位名单"][f"B{row}"] = "舞阳县团委（更名）"
    wb.save(book)
    assert _quick(root) == f"0 5 {missing} True True"
    names = {c.value for ws in openpyxl.load_workbook(master).worksheets for r in ws.iter_rows() for c in r}
    assert "舞阳县团委（更名）" in names and "舞阳县团委" not in names
    assert _quick(root) == f"0 5 {missing} False False"  # and rests on it again
    extra = tmp_path / "自定义报表"
    extra.mkdir()
    assert _quick(root, TUANJIAN_FORMS=str(extra)).endswith("True True")  # more forms named: loaded again

    # a configuration broken meanwhile is said, not skipped over
    (root / "tuanjian.toml").write_text("[roster\n", encoding="utf-8")
    with pytest.raises(ConfigError):
        merge(root, as_of=AS_OF, now=NOW + dt.timedelta(hours=1))


def test_the_stored_configuration_is_the_same_by_any_path_and_sees_a_new_form(tmp_path, forms):
    from tuanjian_xlsx.issues import ConfigError

    root = tmp_path / "ws"
    init_workspace(root)
    (root / "收件箱" / "甲.xlsx").write_bytes(forms[0])
    os.utime(root / "收件箱" / "甲.xlsx", (OLD, OLD))
    merge(root, as_of=AS_OF, now=NOW)
    master = root / "汇总" / "汇总表.xlsx"
    made = master.stat().st_ino
    other = tmp_path / "另一条路径"
    other.symlink_to(root, target_is_directory=True)  # the same workspace by another path: the master stands
    for path in (other, root, other):
        assert merge(path, as_of=AS_OF, now=NOW).new == 0
    assert master.stat().st_ino == made and not (root / "汇总" / "汇总表.bak.xlsx").exists()

    # a killed render left its scratch folder in the workspace: cleared by the next render, none left behind
    stale = root / ".tuanjian" / "tj-master-killed"
    stale.mkdir()
    os.utime(stale, (OLD - 86400, OLD - 86400))
    merge(root, as_of=AS_OF + dt.timedelta(days=1), now=NOW)  # another date: rendered again
    assert not list((root / ".tuanjian").glob("tj-master-*"))

    # a form folder added under a spec folder, its spec broken: said on the next merge, new files or not
    extra = tmp_path / "自定义报表"
    (extra / "my_form").mkdir(parents=True)
    os.environ["TUANJIAN_FORMS"] = str(extra)
    try:
        assert merge(root, as_of=AS_OF, now=NOW).new == 0
        (extra / "my_form" / "v1.toml").write_text("form_id = \n", encoding="utf-8")
        with pytest.raises(ConfigError):
            merge(root, as_of=AS_OF, now=NOW)
    finally:
        del os.environ["TUANJIAN_FORMS"]


def test_a_run_killed_before_an_earlier_arrival_is_recorded_reads_that_copy_again(tmp_path, forms, monkeypatch):
    """A mail copy dated before the registered plain file moves its arrival earlier at the end of the run; a run
    killed before that must not have remembered the mail as read, or the correction would never be made."""
    import tuanjian_xlsx.merge as merging
    from tuanjian_xlsx.ledger import Ledger

    root = tmp_path / "ws"
    init_workspace(root)
    inbox = root / "收件箱"
    (inbox / "甲.xlsx").write_bytes(forms[0])
    os.utime(inbox / "甲.xlsx", (OLD, OLD))
    merge(root, as_of=AS_OF, now=dt.datetime(2026, 4, 12, 9))
    (inbox / "来信.eml").write_bytes(_eml(forms[0], "someone@else.example", dt.datetime(2026, 4, 8, 9)))
    os.utime(inbox / "来信.eml", (OLD, OLD))
    monkeypatch.setattr(merging, "BATCH", 1)  # stat-cache rows written as soon as each file settles

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed")

    with monkeypatch.context() as m:
        m.setattr(Ledger, "seen_again", killed)
        with pytest.raises(KeyboardInterrupt):
            merge(root, as_of=AS_OF, now=dt.datetime(2026, 4, 13, 9))
    again = merge(root, as_of=AS_OF, now=dt.datetime(2026, 4, 14, 9))
    assert again.corrected == 1
    with sqlite3.connect(root / ".tuanjian" / "ledger.sqlite") as con:
        assert con.execute("SELECT received_at, received_basis FROM files WHERE name = '甲.xlsx'").fetchall() == [
            ("2026-04-08T09:00:00", "mail-date")]


def test_a_name_not_utf8_on_disk_is_merged_again_and_again(tmp_path, forms):
    """A file whose name is not UTF-8 on disk (GBK bytes a tool did not convert) is read, shown decoded, and — as its
    path cannot be a key in the ledger — read again next time; it never stops a run."""
    root = tmp_path / "ws"
    init_workspace(root)
    raw = os.fsencode(root / "收件箱") + b"/" + "甲乙".encode("gbk") + b".xlsx"
    with open(raw, "wb") as f:
        f.write(forms[0])
    os.utime(raw, (OLD, OLD))
    first = merge(root, as_of=AS_OF, now=NOW)
    again = merge(root, as_of=AS_OF, now=NOW + dt.timedelta(hours=1))
    assert (first.new, again.duplicates) == (1, 1) and first.ingested[0].path.name == "甲乙.xlsx"
    assert Ledger(root).seen_paths() == {}


def test_a_file_moved_away_while_others_are_checked_is_not_refused(tmp_path, forms, monkeypatch):
    """The inbox is walked first and each file opened when the workers get to it: one moved away meanwhile is not
    this run's (no 退回件 saying it could not be read); it is read when it is back."""
    import shutil

    import tuanjian_xlsx.merge as merging

    root, inbox = _inbox(tmp_path, forms)
    walked = merging.walk_texts

    def walk_then_move(*args, **kwargs):
        found = list(walked(*args, **kwargs))
        shutil.move(inbox / "甲.xlsx", tmp_path / "甲.xlsx")  # staff tidy the inbox while merge runs
        return iter(found)

    monkeypatch.setattr(merging, "walk_texts", walk_then_move)
    first = merge(root, as_of=AS_OF, now=NOW)
    assert "甲.xlsx" not in [i.path.name for i in first.ingested] and first.received == 4
    monkeypatch.undo()
    shutil.move(tmp_path / "甲.xlsx", inbox / "甲.xlsx")
    back = merge(root, as_of=AS_OF, now=NOW + dt.timedelta(hours=1))
    assert [(i.path.name, i.outcome, i.valid) for i in back.ingested if i.outcome == "new"] == [("甲.xlsx", "new", True)]


def test_a_run_stopped_midway_marks_the_returns_it_wrote(tmp_path, monkeypatch):
    """A run that stops midway (a disk fault, say) has its 退回件 written so far marked as written: the next run
    writes none of them again (nor under the archive's name)."""
    import tuanjian_xlsx.merge as merging

    root = tmp_path / "ws"
    init_workspace(root)
    for n in range(20):  # (the workers are fed some files ahead: the run stops well after the first are recorded)
        (root / "收件箱" / f"坏{n:02d}.xlsx").write_bytes(b"not a workbook %d" % n)
    monkeypatch.setattr(merging, "BATCH", 1)
    monkeypatch.setattr(merging, "RETURNS_HELD", 1)  # each file's 退回件 handed over as it is recorded
    entry = merging._Gathering._entry

    def failing(self, text, *args):
        if str(text).endswith("坏15.xlsx"):
            raise OSError(5, "Input/output error")
        return entry(self, text, *args)

    import time as clock

    import tuanjian_xlsx.returns as returns

    write = returns.write_return
    begun: list[str] = []

    def slow(result, *args, **kwargs):  # a slow disk: 退回件 are still being written when the run stops
        begun.append(result.file)
        clock.sleep(0.3)
        return write(result, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(merging._Gathering, "_entry", failing)
        m.setattr(returns, "write_return", slow)
        with pytest.raises(OSError):
            merge(root, as_of=AS_OF, now=NOW)
    written = sorted(p.name for p in (root / "退回").iterdir())
    assert 0 < len(written) == len(begun) < 15  # those begun were finished; no more were begun once it stopped
    again = merge(root, as_of=AS_OF, now=NOW + dt.timedelta(hours=1))
    assert sorted(p.name for p in (root / "退回").iterdir()) == [f"坏{n:02d}_退回.txt" for n in range(20)]
    assert len(again.returns) == 20 - len(written)


def test_the_walk_as_texts_names_each_file_as_the_walk_of_paths_does(tmp_path, monkeypatch):
    """merge keys its stat cache by the walk's texts: for any folder given (".", relative, absolute, nested) they are
    what str() of the Path walk gives."""
    from pathlib import Path

    from tuanjian_xlsx.inbox import walk, walk_texts

    (tmp_path / "子" / "孙").mkdir(parents=True)
    for name in ("a.xlsx", "子/b.XLSX", "子/孙/c.zip", "子/说明.txt", "子/~$d.xlsx"):
        (tmp_path / name).write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    for given in (Path("."), Path("子"), Path("./子/"), tmp_path, tmp_path / "子" / "孙"):
        assert list(walk_texts([given])) == [str(p) for p in walk([given])] != []
