"""Workspace faults: a ledger that cannot be used says so in Chinese; read-only workspaces; torn temporary files;
a full disk; archive permissions; `ledger check` and `ledger rebuild`; migrations from every past schema."""

from __future__ import annotations

import datetime as dt
import io
import os
import pickle
import shutil
import sqlite3
import stat
import tempfile
import zipfile
from pathlib import Path

import openpyxl
import pytest

from conftest import as_nobody, ledger_at
from tuanjian_xlsx import ledger as ledger_mod
from tuanjian_xlsx.issues import TuanjianError
from tuanjian_xlsx.ledger import MIGRATIONS, ArchiveError, Ledger, archive, sweep_temp
from tuanjian_xlsx.ledger_tools import check, rebuild

NOW = dt.datetime(2026, 4, 20, 9, 0)
WAY_OUT = "运行 tuanjian ledger check 检查，或 tuanjian ledger rebuild 从原件存档重建"


def _visit(ws, unit, n: int, *, valid: bool = True) -> bytes:
    """A 走基层 report for March 2026 filled in as a person would (an invalid one lacks the reporter's name)."""
    from tuanjian_xlsx.build import Prefill, build_template

    spec = ws.registry.get("visit_report", 1)
    book = openpyxl.load_workbook(io.BytesIO(build_template(spec, ws.roster,
                                                            prefill=Prefill(unit, "2026-03", "2026年3月"))))
    sheet = book[spec.sheet_name]
    values = {"fill_date": dt.datetime(2026, 3, 3), "name": "甲" if valid else None, "position": "乙",
              "org_name": "丙", "visit_form": "其他", "cadre_count": n + 1, "youth_count": n, "work_status": "丁",
              "highlights": "戊"}
    for f, v in values.items():
        sheet[spec.field(f).input_cell] = v
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


@pytest.fixture(scope="module")
def merged(tmp_path_factory) -> Path:
    """A workspace after one real merge: two plain files (one invalid), and a zip holding a third file and a member
    refused before reading (its path leaves the folder)."""
    from tuanjian_xlsx.plan import Workspace
    from tuanjian_xlsx.merge import merge
    from tuanjian_xlsx.workspace import init_workspace

    root = tmp_path_factory.mktemp("faults") / "ws"
    init_workspace(root)
    ws = Workspace.load(root)
    units = ws.roster.units
    inbox = ws.folder("inbox")
    (inbox / "甲单位.xlsx").write_bytes(_visit(ws, units[0], 0))
    (inbox / "乙单位.xlsx").write_bytes(_visit(ws, units[1], 1, valid=False))
    with zipfile.ZipFile(inbox / "打包.zip", "w") as z:
        z.writestr("丙单位.xlsx", _visit(ws, units[2], 2))
        z.writestr("../外面.xlsx", _visit(ws, units[3], 3))
    result = merge(root, as_of=NOW.date(), now=NOW)
    assert (result.received, result.valid, len(result.invalid)) == (4, 2, 2)
    return root


def _copy(merged: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "ws"
    shutil.copytree(merged, dst)  # copy2: archive mtimes kept, as rebuild dates plain files by them
    return dst


def _rows(root: Path) -> list[tuple]:
    with Ledger(root, readonly=True) as ledger:
        return sorted((f.sha256, f.valid, f.name) for f in ledger.files())


def _ledger_file(root: Path) -> Path:
    return root / ".tuanjian" / "ledger.sqlite"


# --- a ledger that cannot be used ----------------------------------------------------------------------------


def _newer(path: Path) -> None:
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    con.commit()
    con.close()


DAMAGE = {
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    "truncated-header": lambda p: p.write_bytes(p.read_bytes()[:50]),
    "garbage": lambda p: p.write_bytes(bytes(range(256)) * 64),
    "not-a-database": lambda p: p.write_text("这不是数据库\n" * 200, encoding="utf-8"),
    "newer-schema": _newer,
}


@pytest.mark.parametrize("readonly", [False, True], ids=["write", "read"])
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_an_unusable_ledger_is_one_chinese_error_naming_the_file(merged, tmp_path, damage, readonly):
    root = _copy(merged, tmp_path)
    DAMAGE[damage](_ledger_file(root))
    # damage may show only when a page is read
    with pytest.raises(TuanjianError) as caught, Ledger(root, readonly=readonly) as ledger:
        ledger.files()
        ledger.unreturned()
    [issue] = caught.value.issues
    assert issue.file == ".tuanjian/ledger.sqlite"
    assert issue.code == ("ledger-newer" if damage == "newer-schema" else "ledger-damaged")
    assert "tuanjian ledger rebuild 从原件存档重建" in issue.message
    if damage != "newer-schema":
        assert WAY_OUT in issue.message
    assert issue.render().startswith("错误：.tuanjian/ledger.sqlite：登记簿")
    exc = caught.value  # no sqlite3 traceback behind it
    assert exc.__cause__ is None and (exc.__context__ is None or exc.__suppress_context__)


def test_a_locked_ledger_says_another_run_holds_it(merged, tmp_path, monkeypatch):
    root = _copy(merged, tmp_path)
    monkeypatch.setattr(ledger_mod, "BUSY_TIMEOUT", 0.1)
    other = sqlite3.connect(_ledger_file(root), isolation_level=None)
    other.execute("PRAGMA locking_mode=EXCLUSIVE")
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(TuanjianError) as caught:
            Ledger(root)
        assert [i.code for i in caught.value.issues] == ["ledger-locked"]
        assert caught.value.issues[0].file == ".tuanjian/ledger.sqlite"
    finally:
        other.close()


def test_a_full_disk_while_recording_keeps_the_ledger_as_it_was(merged, tmp_path):
    root = _copy(merged, tmp_path)
    with Ledger(root) as ledger:
        pages = ledger.db.execute("PRAGMA page_count").fetchone()[0]
        ledger.db.execute(f"PRAGMA max_page_count = {pages}")  # what a full disk looks like to SQLite
        with pytest.raises(TuanjianError) as caught:
            ledger.put("big", "x" * 100_000)
        [issue] = caught.value.issues
        assert issue.code == "disk-full" and issue.message.startswith("磁盘空间不足，无法写入")
        assert ledger.get("big") is None and len(ledger.files()) == 4 and not ledger.db.in_transaction
        assert ledger.integrity_ok()


# --- read-only use -------------------------------------------------------------------------------------------


def test_reading_a_workspace_without_a_ledger_creates_nothing(tmp_path):
    with Ledger(tmp_path, readonly=True) as ledger:
        assert ledger.files() == [] and ledger.get("master") is None and ledger.unreturned() == []
        assert ledger.schema_version == len(MIGRATIONS)
        with pytest.raises(RuntimeError):
            ledger.put("x", "y")
    assert list(tmp_path.iterdir()) == []


def test_reading_leaves_the_ledger_file_as_it_is(merged, tmp_path):
    root = _copy(merged, tmp_path)
    before = _ledger_file(root).read_bytes()
    assert len(_rows(root)) == 4
    assert _ledger_file(root).read_bytes() == before


def _try_both(root: str) -> dict:
    out = {}
    with Ledger(Path(root), readonly=True) as ledger:
        out["files"] = len(ledger.files())
    try:
        Ledger(Path(root))
        out["write"] = "opened"
    except TuanjianError as exc:
        out["write"] = [(i.code, i.render()) for i in exc.issues]
    return out


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork to drop permissions")
def test_a_read_only_workspace_is_readable_and_refuses_writing_in_one_chinese_line(merged):
    base = Path(tempfile.mkdtemp(prefix="tj-ro-"))  # under /tmp, reachable by nobody (tmp_path is private)
    try:
        os.chmod(base, 0o755)
        root = base / "ws"
        shutil.copytree(merged, root)
        with Ledger(root) as ledger:  # as a merge leaves it: WAL mode, -wal and -shm gone on close
            assert ledger.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        for p in sorted(root.rglob("*"), reverse=True) + [root]:
            os.chmod(p, 0o555 if p.is_dir() else 0o444)
        before = sorted(str(p) for p in root.rglob("*"))
        got = as_nobody(_try_both, str(root))
        assert got.get("crash") is None, got
        assert got["files"] == 4
        [(code, line)] = got["write"]
        assert code == "workspace-readonly"
        assert line.startswith("错误：.tuanjian/ledger.sqlite：工作区是只读的（") and line.endswith(
            "），无法登记；请复制到可写的文件夹或请管理员开放写权限")
        assert sorted(str(p) for p in root.rglob("*")) == before  # nothing created, not even -shm
    finally:
        for p in [base, *base.rglob("*")]:
            os.chmod(p, 0o755)
        shutil.rmtree(base)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork to drop permissions")
def test_a_workspace_whose_folder_cannot_be_written_refuses_making_a_ledger(tmp_path):
    base = Path(tempfile.mkdtemp(prefix="tj-ro-"))
    try:
        os.chmod(base, 0o555)
        got = as_nobody(_try_both, str(base))
        assert got["files"] == 0
        assert [code for code, _ in got["write"]] == ["workspace-readonly"]
        assert list(base.iterdir()) == []
    finally:
        os.chmod(base, 0o755)
        shutil.rmtree(base)


# --- the archive: torn temporary files, a full disk, permissions ----------------------------------------------


def test_only_temporary_files_an_hour_old_are_swept(tmp_path):
    old, fresh = tmp_path / f".{'a' * 64}.xlsx.99999.tmp", tmp_path / f".{'b' * 64}.xlsx.{os.getpid()}.tmp"
    for p in (old, fresh):
        p.write_bytes(b"half")
    os.utime(old, (1_000_000, 1_000_000))
    os.utime(fresh, (1_000_000 + 3000, 1_000_000 + 3000))
    assert sweep_temp(tmp_path, now=1_000_000 + 3700) == [old]  # the other might be being written right now
    assert fresh.exists() and not old.exists()


def test_opening_for_writing_sweeps_torn_temporary_files(tmp_path):
    Ledger(tmp_path).close()
    torn = tmp_path / ".tuanjian" / "archive" / f".{'c' * 64}.xlsx.4242.tmp"
    torn.write_bytes(b"torn")
    os.utime(torn, (0, 0))
    Ledger(tmp_path, readonly=True).close()
    assert torn.exists()  # reading never removes anything
    Ledger(tmp_path).close()
    assert not torn.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small file system to fill needs root (CI runs as root)")
def test_a_full_disk_while_archiving_leaves_no_temporary_file_and_says_so(tmp_path):
    import subprocess

    disk = tmp_path / "小盘"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], check=True)
    try:
        with pytest.raises(ArchiveError) as caught:
            archive(disk, "d" * 64, ".xlsx", b"x" * 200_000)  # a real disk, really full
        [issue] = caught.value.issues
        assert issue.code == "disk-full" and issue.message.startswith("磁盘空间不足")
        assert list(disk.iterdir()) == []
    finally:
        subprocess.run(["umount", str(disk)], check=False)
    again = pickle.loads(pickle.dumps(caught.value))  # raised in a worker process, it crosses a pipe whole
    assert again.issues == caught.value.issues and str(again) == str(caught.value)


def test_archived_originals_never_get_wider_permissions_than_their_source(tmp_path):
    mask = os.umask(0o022)
    try:
        plain = archive(tmp_path, "e" * 64, ".xlsx", b"x")
        private = archive(tmp_path, "f" * 64, ".xlsx", b"y", mode=stat.S_IFREG | 0o600)
        shared = archive(tmp_path, "0" * 64, ".xlsx", b"z", mode=stat.S_IFREG | 0o777)
    finally:
        os.umask(mask)
    assert stat.S_IMODE(plain.stat().st_mode) == 0o644
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(shared.stat().st_mode) == 0o644  # never executable, never beyond the umask
    assert ledger_mod.source_mode(Path(f"{tmp_path / ('f' * 64 + '.xlsx')}!inner/member.xlsx")) == private.stat().st_mode
    assert ledger_mod.source_mode(Path("邮件12#附件.xlsx")) is None


# --- check ---------------------------------------------------------------------------------------------------


def test_check_passes_after_a_real_merge(merged):
    report = check(merged, now=NOW.timestamp())
    assert report.ok and report.issues == []
    assert (report.files, report.refusals, report.containers, report.unlisted) == (4, 1, 1, 0)
    assert report.lines()[-1] == "检查通过"
    assert report.to_dict()["ok"] is True and report.to_dict()["schema_version"] == len(MIGRATIONS)


def test_check_names_a_missing_and_an_altered_original_and_a_torn_temporary_file(merged, tmp_path):
    root = _copy(merged, tmp_path)
    with Ledger(root, readonly=True) as ledger:
        files = {f.name: ledger.archive_path(f.sha256, f.ext) for f in ledger.files()}
    files["甲单位.xlsx"].unlink()
    files["乙单位.xlsx"].write_bytes(b"changed")
    torn = files["丙单位.xlsx"].with_name(f".{files['丙单位.xlsx'].name}.777.tmp")
    torn.write_bytes(b"torn")
    report = check(root)
    assert not report.ok
    assert sorted((i.code, i.file) for i in report.issues) == sorted([
        ("archive-missing", f".tuanjian/archive/{files['甲单位.xlsx'].name}"),
        ("archive-altered", f".tuanjian/archive/{files['乙单位.xlsx'].name}"),
        ("archive-temp", f".tuanjian/archive/{torn.name}"),
    ])
    lines = report.lines()
    assert any("甲单位.xlsx" in line and "找不到" in line for line in lines)
    assert any("乙单位.xlsx" in line and "sha256 不符" in line for line in lines)
    assert any(torn.name in line and "请勿删除" in line for line in lines)  # fresh: maybe being written
    assert lines[-1] == "发现 2 个问题"


def test_check_reports_a_damaged_ledger_instead_of_failing(merged, tmp_path):
    root = _copy(merged, tmp_path)
    DAMAGE["garbage"](_ledger_file(root))
    report = check(root)
    assert [i.code for i in report.issues] == ["ledger-damaged"] and not report.ok
    _ledger_file(root).unlink()
    assert [i.code for i in check(root).issues] == ["ledger-missing"]


# --- rebuild -------------------------------------------------------------------------------------------------


def test_rebuild_after_truncation_recovers_every_file(merged, tmp_path):
    root = _copy(merged, tmp_path)
    before = _rows(root)
    damaged = _ledger_file(root)
    DAMAGE["truncated"](damaged)
    kept = damaged.read_bytes()
    report = rebuild(root, now=NOW)
    assert report.broken.name == "ledger.broken-20260420-090000.sqlite" and report.broken.read_bytes() == kept
    after = _rows(root)
    kept = {sha for sha, _, _ in before}
    assert [(sha, valid) for sha, valid, _ in after if sha in kept] == \
        [(sha, valid) for sha, valid, name in before if name != "外面.xlsx"]
    # the refusal has no bytes: found again in the archived zip, under a key made from its new origin
    assert [(valid, name) for sha, valid, name in after if sha not in kept] == [(False, "外面.xlsx")]
    with Ledger(root) as ledger:
        assert ledger.integrity_ok() and ledger.unreturned() == []  # no 退回件 made again for old files
    assert check(root).ok
    assert report.lines()[0] == "原登记簿已移到 .tuanjian/ledger.broken-20260420-090000.sqlite（保留，未删除）"


def test_rebuild_from_an_unreadable_ledger_says_what_is_lost(merged, tmp_path):
    root = _copy(merged, tmp_path)
    before = _rows(root)
    DAMAGE["garbage"](_ledger_file(root))
    report = rebuild(root, now=NOW)
    after = _rows(root)
    kept = {sha for sha, _, _ in before}
    assert [(sha, valid) for sha, valid, _ in after if sha in kept] == \
        [(sha, valid) for sha, valid, name in before if name != "外面.xlsx"]
    assert [(valid, name) for sha, valid, name in after if sha not in kept] == [(False, "外面.xlsx")]
    names = {name for _, _, name in after}
    assert {"丙单位.xlsx", "外面.xlsx"} <= names  # taken out of the archived zip again: their own names
    stand_ins = sorted(name for _, _, name in after if name.startswith("原件_"))
    assert stand_ins == sorted(f"原件_{sha[:8]}.xlsx" for sha, _, name in before if name in ("甲单位.xlsx", "乙单位.xlsx"))
    assert [i.code for i in report.issues] == ["rebuild-names", "rebuild-mails", "rebuild-refusals",
                                               "rebuild-replies", "rebuild-sightings"]
    assert (report.registered, report.valid, report.invalid, report.containers) == (4, 2, 2, 1)
    assert report.to_dict()["registered"] == 4
    assert any("原件_" in line and "无法恢复" in line for line in report.lines())
    with Ledger(root) as ledger:
        assert ledger.unreturned() == []
        assert {r.state for r in ledger.replies(REPLY_STATES)} == {"before"}  # nothing owed again: no reply storm


def test_rebuild_says_which_listed_originals_it_could_not_find(merged, tmp_path):
    root = _copy(merged, tmp_path)
    with Ledger(root, readonly=True) as ledger:
        [lost] = [f for f in ledger.files() if f.name == "甲单位.xlsx"]
        ledger.archive_path(lost.sha256, lost.ext).unlink()
    report = rebuild(root, now=NOW)
    assert [(i.code, i.file) for i in report.issues] == [
        ("rebuild-skipped", f".tuanjian/archive/{lost.sha256}.xlsx"), ("rebuild-sightings", ".tuanjian/ledger.sqlite")]
    assert "甲单位.xlsx" in report.issues[0].message and report.registered == 3


def test_a_second_rebuild_reads_everything_back_from_the_ledger_it_sets_aside(merged, tmp_path):
    root = _copy(merged, tmp_path)
    before = _rows(root)
    with Ledger(root) as ledger:
        ledger.take_mail("<m1@x>", "INBOX", NOW, "a@b", "报表", 1, NOW)
    report = rebuild(root, now=NOW)  # of a sound ledger: nothing is lost
    assert _rows(root) == before
    assert [i.code for i in report.issues] == ["rebuild-sightings"]
    assert (report.names_recovered, report.mails_recovered, report.refusals_recovered) == (3, 1, 1)
    again = rebuild(root, now=NOW)  # the same second: never over the ledger set aside before
    assert again.broken.name == "ledger.broken-20260420-090000-2.sqlite"
    assert report.broken.exists() and _rows(root) == before
    with Ledger(root) as ledger:
        assert ledger.mail_taken("<m1@x>")


REPLY_STATES = ["due", "sending", "sent", "refused", "uncertain", "no-address", "no-reply", "expired", "before"]


def test_a_rebuild_keeps_what_became_of_each_reply_and_waits_for_a_watch(merged, tmp_path):
    from tuanjian_xlsx import api
    from tuanjian_xlsx.watch import WatchLock

    root = _copy(merged, tmp_path)
    with Ledger(root) as ledger:
        sha = {f.name: f.sha256 for f in ledger.files()}
        ledger.set_replies([sha["甲单位.xlsx"]], "sent", NOW, was=["due"], recipient="jia@county.example",
                           message="<r1@city.example>")
        ledger.set_replies([sha["丙单位.xlsx"], sha["外面.xlsx"]], "no-address", NOW, was=["due"])
        ledger.set_reminders([("u1", "visit_report", "2026-03", "overdue", NOW.date())], "sent", NOW, "u1@x")
    lock = WatchLock.take(root, now=NOW, pid=os.getpid(), host="本机", stale_after=dt.timedelta(hours=1))
    try:
        with pytest.raises(TuanjianError) as exc:  # a watch sending from the ledger: not now
            api.ledger_rebuild(root, now=NOW)
        assert exc.value.issues[0].code == "watch-running"
    finally:
        lock.release()
    report = api.ledger_rebuild(root, now=NOW)
    assert report.replies_recovered == 4 and any("4 个文件的自动回复记录" in line for line in report.lines())
    with Ledger(root) as ledger:
        states = {r.file.name: (r.state, r.recipient, r.message) for r in ledger.replies(REPLY_STATES)}
        assert ledger.reminded("u1", "visit_report", "2026-03", "overdue") == (NOW.date(), "sent")
    assert states == {"甲单位.xlsx": ("sent", "jia@county.example", "<r1@city.example>"),
                      "乙单位.xlsx": ("due", None, None),  # still owed, as before
                      "丙单位.xlsx": ("no-address", None, None), "外面.xlsx": ("no-address", None, None)}


# --- migrations ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", range(len(MIGRATIONS) + 1))
def test_a_ledger_of_every_past_schema_is_migrated_with_its_data(tmp_path, version):
    path = _ledger_file(tmp_path)
    ledger_at(path, version) if version else path.parent.mkdir(parents=True)
    if version:
        with Ledger(tmp_path, readonly=True) as ledger:  # read as it is: migrated in memory, the file untouched
            assert [f.name for f in ledger.files()] == ["甲.xlsx"]
        assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == version
    with Ledger(tmp_path) as ledger:
        assert ledger.schema_version == len(MIGRATIONS)
        if version:
            [row] = ledger.files()
            assert (row.sha256, row.valid, row.unit_id, row.issues) == ("a1", False, "u1", [{"code": "required-value"}])
            assert row.received_at == dt.datetime(2026, 3, 5, 10)
            assert ledger.unreturned() == [(1, "a1", ".xlsx", "甲.xlsx", None)]  # v2's returned: 0 for files before it
            assert ledger.get("distributed:u1:visit_report") == ("1 2026-03" if version >= 2 else None)
            assert ledger.mail_taken("<m1@x>") == (version >= 3)
        ledger.take_mail("<m2@x>", "INBOX", NOW, None, None, 0, NOW)  # every current table is there to write
        ledger.put("k", "v")
        assert ledger.integrity_ok()


def test_returns_marked_beside_a_long_read_where_the_ledger_cannot_be_in_wal_mode(tmp_path):
    """The 退回件 thread records each as written on a connection of its own while the master's read transaction is
    open: in WAL mode at once; in a ledger that is not (some network shares), that would wait behind the read and
    stop the run as "locked", so the marks wait for the ledger's own thread instead."""
    import sqlite3

    from tuanjian_xlsx.ledger import Ledger, ReturnedMarks

    with Ledger(tmp_path) as ledger:
        when = dt.datetime(2026, 4, 1, 9)
        ledger.add(sha256="a" * 64, name="a.xlsx", origin="a.xlsx", ext=".xlsx", size=1, received_at=when, now=when,
                   result={"records": [], "issues": []}, valid=False, form_id=None, version=None, unit_id=None,
                   unit=None, period=None)
        marks = ReturnedMarks(ledger)
        with ledger.reading():
            ledger.files()
            marks.mark([1])  # beside the open read: at once
        assert marks.wal and marks.taken() == [] and ledger.unreturned() == []
        marks.close()
        ledger.db.execute("UPDATE files SET returned = 0")
        ledger.db.execute("PRAGMA journal_mode=DELETE")
        marks = ReturnedMarks(ledger)
        with ledger.reading():
            ledger.files()
            marks.mark([1])  # would wait for the read to end
        assert not marks.wal and marks.taken() == [1] and marks.taken() == []
        marks.close()
        assert sqlite3.connect(ledger.path).execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_a_container_is_archived_as_the_bytes_its_name_says(tmp_path):
    """A zip or saved mail was hashed in one reading and copied in a second: one still being written into the inbox
    was kept under the hash of other bytes. One reading now does both (a pipe can be read only once: it shows it)."""
    import hashlib
    import threading

    from tuanjian_xlsx.ledger import archive_file

    data = os.urandom(3 << 20)
    pipe = tmp_path / "邮件.eml"
    os.mkfifo(pipe)
    writer = threading.Thread(target=lambda: pipe.write_bytes(data))
    writer.start()
    done = threading.Event()

    def unblock() -> None:  # a second reading would wait for a writer for ever: give it an empty one
        while not done.wait(2):
            fd = os.open(pipe, os.O_WRONLY | os.O_NONBLOCK) if _has_reader(pipe) else None
            if fd is not None:
                os.close(fd)

    threading.Thread(target=unblock, daemon=True).start()
    store = tmp_path / "archive"
    store.mkdir()
    sha = archive_file(store, pipe, ".eml")
    done.set()
    writer.join()
    assert sha == hashlib.sha256(data).hexdigest() and (store / f"{sha}.eml").read_bytes() == data
    assert [p.name for p in store.iterdir()] == [f"{sha}.eml"]  # no temporary file left


def _has_reader(pipe: Path) -> bool:
    try:
        os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:  # ENXIO: nobody has it open for reading
        return False
    return True


def test_a_full_disk_while_the_master_is_made_is_said_with_its_folder(tmp_path):
    """Writes refused past 60 KB (a full disk, as RLIMIT_FSIZE makes one): merge said only 文件过大, naming no file,
    and the half-made package's zip printed a traceback from its __del__ at exit. Now one Chinese line names the
    master's scratch folder; the next run, with room again, makes the master."""
    import resource
    import subprocess
    import sys

    from tuanjian_xlsx.workspace import init_workspace

    root = tmp_path / "ws"
    init_workspace(root)

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))

    cmd = [sys.executable, "-m", "tuanjian_xlsx", "merge", "-w", str(root), "--as-of"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    assert subprocess.run(cmd + ["2026-03-31"], capture_output=True, env=env, timeout=120).returncode == 0
    cmd.append("2026-12-31")  # (the ledger made with room; the next master is larger)
    r = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=limited, env=env, timeout=120)
    assert r.returncode == 1 and "汇总表的临时文件" in r.stdout + r.stderr, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and "Exception ignored" not in r.stderr, r.stderr
    assert subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120).returncode == 0
