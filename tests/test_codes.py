"""Issue codes no other test reaches, each raised the way a person or a unit would raise it, through the product's
own entry points: the roster workbook staff keep in Excel, a tracker with a row copied twice, a file too large, a form
switched off, a ledger damaged on disk, a mailbox that answers NO and BAD, a workspace that cannot be written.
Each test asserts the code, its place (file · sheet · cell · field) and the Chinese message a person reads."""

from __future__ import annotations

import datetime as dt
import io
import os
import shutil
import socketserver
import sqlite3
import subprocess
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path

import openpyxl
import pytest
from openpyxl.formula.translate import Translator

from conftest import fill
from tuanjian_xlsx.build import Prefill, build_template
from tuanjian_xlsx.distribute import distribute
from tuanjian_xlsx.fetchmail import fetch_mail
from tuanjian_xlsx.issues import ConfigError, TuanjianError
from tuanjian_xlsx.ledger import Ledger
from tuanjian_xlsx.ledger_tools import check
from tuanjian_xlsx.merge import merge
from tuanjian_xlsx.plan import Workspace
from tuanjian_xlsx.validate import validate_file
from tuanjian_xlsx.workspace import init_workspace

ROSTER = "名单与目标.xlsx"
NOW = dt.datetime(2026, 4, 20, 9, 0)
VISIT = {"报送单位": "源汇区团委", "报送期": "2026-03", "填表时间": dt.datetime(2026, 3, 5), "姓名": "张三",
         "单位职务": "组织部部长", "走访团组织名称": "源汇区第一中学团委", "走访形式": "座谈交流", "团干部": 2,
         "团员青年": 15, "基层团组织工作开展情况": "开展主题团日", "基层团组织工作亮点": "志愿服务"}
OBSERVATION = {"报送单位": "源汇区团委", "报送期": "2026-Q1", "填表时间": dt.datetime(2026, 3, 20),
               "组织观摩部室": "组织部", "参加观摩人员": "各县区团委书记", "观摩点及观摩内容": "一中团校",
               "观摩点亮点工作": "团课进课堂"}


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    """A workspace as `tuanjian init` leaves it; tests work on copies."""
    root = tmp_path_factory.mktemp("fresh") / "工作区"
    init_workspace(root)
    return root


@pytest.fixture
def workspace(fresh, tmp_path) -> Path:
    root = tmp_path / "工作区"
    shutil.copytree(fresh, root)
    return root


def _errors(exc: TuanjianError) -> list:
    return [i for i in exc.issues if i.severity == "error"]


# --- 名单与目标.xlsx: what staff type into the roster workbook ------------------------------------------------


def edit_roster(root: Path, sheet: str, key_header: str, key: str, header: str, value) -> None:
    """In the sheet, the cell under `header` on the row whose `key_header` reads `key` set to `value`, with
    openpyxl, as a person editing in Excel would."""
    path = root / ROSTER
    wb = openpyxl.load_workbook(path)
    ws = wb[sheet]
    column = {c.value: c.column_letter for c in ws[1]}
    row = next(c.row for c in ws[column[key_header]] if c.value == key)
    ws[f"{column[header]}{row}"] = value
    wb.save(path)


def load_error(root: Path):
    """Loading the workspace fails with one ConfigError; its only error."""
    with pytest.raises(ConfigError) as caught:
        Workspace.load(root)
    [issue] = _errors(caught.value)
    return issue


ROSTER_CASES = [
    ("bad-email", "单位名单", "单位名称", "源汇区团委", "电子邮箱", "yuanhui at 163.com", "D2",
     "“电子邮箱”不是有效的电子邮箱：“yuanhui at 163.com”（几个邮箱之间用分号隔开）"),
    ("bad-id", "单位名单", "单位名称", "源汇区团委", "单位编号", "源汇", "A2",
     "“单位编号”只能用英文字母、数字、下划线和连字符：“源汇”"),
    ("duplicate-task", "目标任务", "编号", "1-1-2", "编号", "1-1-1", "A3",
     "任务编号“1-1-1”重复（第 2 行已有）"),
    ("ratio-needs-labels", "目标任务", "编号", "1-3-2", "完成数口径", None, "F7",
     "任务“1-3-2”是比率指标，须填写“完成数口径”和“基数口径”"),
    ("ratio-target-range", "目标任务", "编号", "1-3-2", "目标值", 40, "I7",  # 40 typed for 40%
     "任务“1-3-2”是比率指标，目标值应为 0%～100%（写小数，如 0.4 即 40%），现为 40"),
    ("ratio-target-range", "目标任务", "编号", "2-1", "目标值", 20, "I12",  # 20 typed for 20 %
     "任务“2-1”是增长指标，目标值应为 0%～1000%（写小数，如 0.4 即 40%），现为 20"),
    ("task-no-unit-types", "目标任务", "编号", "4-3", "报送单位类型", None, "O20",
     "任务“4-3”没有填写报送单位类型"),
]


@pytest.mark.parametrize("code, sheet, key_header, key, header, value, cell, message", ROSTER_CASES,
                         ids=[case[0] for case in ROSTER_CASES])
def test_a_roster_workbook_mistake_names_its_cell(workspace, code, sheet, key_header, key, header, value, cell,
                                                   message):
    edit_roster(workspace, sheet, key_header, key, header, value)
    issue = load_error(workspace)
    assert (issue.code, issue.file, issue.sheet, issue.cell, issue.field) == (code, ROSTER, sheet, cell, header)
    assert issue.message == message
    assert issue.render() == f"错误：{ROSTER} · {sheet} · {cell} · {header}：{message}"


def test_a_due_day_past_31_is_a_bad_cell(workspace):
    edit_roster(workspace, "单位类型", "单位类型", "县区团委", "走基层报告单·截止日", 40)
    issue = load_error(workspace)
    assert (issue.code, issue.file, issue.sheet, issue.cell, issue.field) == (
        "bad-cell", ROSTER, "单位类型", "D2", "走基层报告单·截止日")
    assert issue.message.startswith("“走基层报告单·截止日”的值“40")
    assert issue.message.endswith("”无效：应不大于 31")


def test_a_bad_cell_shows_the_number_as_typed(workspace):
    edit_roster(workspace, "单位类型", "单位类型", "县区团委", "走基层报告单·截止日", 40)
    assert load_error(workspace).message == "“走基层报告单·截止日”的值“40”无效：应不大于 31"


# --- the target tracker: a row copied twice, a row of no known task ------------------------------------------


def _own_rows_filled(builtin) -> tuple[openpyxl.Workbook, object, dict[str, int]]:
    """源汇区团委's distributed 2026-Q1 tracker, every row of its own filled in correctly."""
    spec = builtin.spec("target_tracker")
    unit = builtin.roster.unit_by_name("源汇区团委")
    data = build_template(spec, builtin.roster, prefill=Prefill(unit, "2026-Q1", "2026年第1季度"))
    wb = openpyxl.load_workbook(io.BytesIO(data))
    ws = wb[spec.sheet_name]
    rows = {ws[f"A{r}"].value: r for r in range(spec.header_row + 1, ws.max_row + 1) if ws[f"A{r}"].value}
    ws["O3"] = dt.datetime(2026, 4, 3)
    for t in builtin.roster.tasks_for(unit.type):
        r = rows[t.code]
        if t.kind in ("ratio", "growth"):
            ws[f"K{r}"], ws[f"L{r}"] = 3, 5
        elif t.kind in ("count", "yesno"):
            ws[f"K{r}"] = 3 if t.kind == "count" else "是"
        else:
            ws[f"O{r}"] = "已开展"
    return wb, ws, rows


def _paste_row(ws, src: int, dst: int) -> None:
    """The row copied and pasted below the table, formulas shifted as Excel shifts them."""
    for cell in ws[src]:
        value = cell.value
        if isinstance(value, str) and value.startswith("="):
            value = Translator(value, origin=cell.coordinate).translate_formula(f"{cell.column_letter}{dst}")
        ws.cell(row=dst, column=cell.column, value=value)


@pytest.mark.parametrize("code", ["duplicate-row", "unknown-task"])
def test_a_tracker_row_copied_twice_or_of_no_known_task(builtin, tmp_path, code):
    wb, ws, rows = _own_rows_filled(builtin)
    below = ws.max_row + 1
    _paste_row(ws, rows["2-3"], below)  # the 标准化团员活动室 row, copied to report a second room separately
    if code == "unknown-task":
        ws[f"A{below}"] = "2-5"  # and renumbered: no such task
    path = tmp_path / "台账.xlsx"
    wb.save(path)

    r = validate_file(path, builtin)

    [issue] = r.issues
    assert (issue.code, issue.file, issue.sheet, issue.cell, issue.field) == (
        code, "台账.xlsx", "目标任务台账", f"A{below}", "编号")
    assert issue.message == {"duplicate-row": f"任务“2-3”出现了不止一行（第一次在 A{rows['2-3']}）",
                             "unknown-task": "任务编号“2-5”不在目标任务中"}[code]
    assert [rec.values["code"] for rec in r.records].count("2-3") == 1  # the first row counts, once


# --- the file itself -----------------------------------------------------------------------------------------


def _sparse(path: Path, mb: int) -> Path:
    """A file of `mb` MB that takes no disk space."""
    path.write_bytes(b"PK\x03\x04")
    os.truncate(path, mb * 1024 * 1024)
    return path


def test_a_file_over_50_mb_is_refused_before_it_is_read(builtin, tmp_path):
    path = _sparse(tmp_path / "源汇区团委_2026年3月.xlsx", 51)
    r = validate_file(path, builtin)
    [issue] = r.issues
    assert (issue.code, issue.file, issue.sheet, issue.cell) == ("file-too-large", path.name, None, None)
    assert issue.message == "文件过大（51 MB），不是一张报表应有的大小"
    assert r.sha256 == "" and r.records == []  # refused on its size alone


@pytest.mark.parametrize("name, mb", [("源汇区团委_2026年3月.xlsx", 51), ("报表邮件.eml", 101)])
def test_merge_refuses_a_file_too_large_and_goes_on(workspace, templates, name, mb):
    inbox = Workspace.load(workspace).folder("inbox")
    _sparse(inbox / name, mb)
    fill(templates["visit_report"], inbox / "郾城区团委.xlsx", {**VISIT, "报送单位": "郾城区团委"})

    result = merge(workspace, as_of=NOW.date(), now=NOW)

    assert (result.received, result.valid) == (2, 1)
    [refused] = result.invalid
    [issue] = refused.result.issues
    assert (issue.code, issue.file) == ("file-too-large", name)
    assert issue.message == f"文件过大（{mb} MB），不是一张报表应有的大小"


def test_a_workbook_with_no_form_in_it(builtin, tmp_path):
    wb = openpyxl.Workbook()
    wb.active.title = "工作总结"
    wb.active["A1"] = "2026年3月团建工作总结"
    wb.active["A2"] = "本月开展主题团日活动 3 次，走访基层团组织 5 个。"
    path = tmp_path / "源汇区团委3月总结.xlsx"
    wb.save(path)

    r = validate_file(path, builtin)

    [issue] = r.issues
    assert (issue.code, issue.file, issue.sheet, issue.cell) == ("not-a-form", path.name, None, None)
    assert issue.message == ("文件中没有可识别的报表（应为附件1 团干部走基层情况报告单、附件2 共青团工作观摩情况报告单、"
                             "活力团建目标任务台账之一）")
    assert r.form_id is None and r.records == []


def test_a_form_switched_off_in_the_settings(workspace, templates, tmp_path):
    toml = workspace / "tuanjian.toml"
    text = toml.read_text(encoding="utf-8")
    head = "[forms.observation_report]"
    before, after = text.split(head)
    toml.write_text(before + head + after.replace("enabled = true", "enabled = false", 1), encoding="utf-8")
    ws = Workspace.load(workspace)
    assert not ws.settings.forms["observation_report"].enabled and ws.settings.forms["visit_report"].enabled
    path = fill(templates["observation_report"], tmp_path / "观摩.xlsx", OBSERVATION)

    r = validate_file(path, ws)

    [issue] = [i for i in r.issues if i.severity == "error"]
    assert (issue.code, issue.file, issue.sheet, issue.cell) == ("form-disabled", "观摩.xlsx", None, None)
    assert issue.message == "报表“附件2 共青团工作观摩情况报告单”未启用（见 tuanjian.toml 的 forms）"
    assert validate_file(fill(templates["visit_report"], tmp_path / "走访.xlsx", VISIT), ws).valid  # others go on


# --- the ledger ----------------------------------------------------------------------------------------------


@pytest.fixture
def merged(workspace, templates) -> Path:
    """The workspace after a merge of two valid reports."""
    inbox = Workspace.load(workspace).folder("inbox")
    fill(templates["visit_report"], inbox / "源汇区团委.xlsx", VISIT)
    fill(templates["visit_report"], inbox / "郾城区团委.xlsx", {**VISIT, "报送单位": "郾城区团委"})
    assert merge(workspace, as_of=NOW.date(), now=NOW).valid == 2
    return workspace


def _damage_a_page(root: Path, table: str) -> None:
    """The b-tree page of `table` overwritten past its 8-byte page header, as a bad sector or a torn copy from a
    USB stick leaves it; the database header and every other page untouched."""
    path = root / ".tuanjian" / "ledger.sqlite"
    con = sqlite3.connect(path)
    page_size = con.execute("PRAGMA page_size").fetchone()[0]
    page = con.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
    con.close()
    assert page > 1 and not path.with_name(path.name + "-wal").exists()
    with open(path, "r+b") as f:
        f.seek((page - 1) * page_size + 8)
        f.write((bytes(range(256)) * (page_size // 256))[: page_size - 8])


def test_ledger_check_finds_a_damaged_page(merged):
    assert check(merged).ok
    _damage_a_page(merged, "sightings")

    report = check(merged)

    [issue] = report.issues
    assert (issue.code, issue.file) == ("ledger-integrity", ".tuanjian/ledger.sqlite")
    assert issue.message.startswith("登记簿完整性检查未通过（")
    assert issue.message.endswith("）；运行 tuanjian ledger rebuild 从原件存档重建")
    assert "page" in issue.message  # SQLite's own finding, naming the page
    assert not report.ok and report.files == 2  # the rest is still read and checked
    assert report.lines()[-1] == "发现 1 个问题"


def test_ledger_integrity_is_one_line_without_sqlite_headings(merged):
    _damage_a_page(merged, "sightings")
    [issue] = check(merged).issues
    assert "\n" not in issue.message and "***" not in issue.message


def _os_call(*args: str) -> bool:
    return subprocess.run(args, capture_output=True).returncode == 0


@contextmanager
def _read_only_disk(folder: Path):
    """A small tmpfs mounted on `folder`, yielded writable, then remounted read-only (a read-only network share, a
    locked USB stick). Root only."""
    if os.geteuid() != 0:
        pytest.skip("mounting a read-only file system needs root")
    folder.mkdir()
    if not _os_call("mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(folder)):
        pytest.skip("mount -t tmpfs is not permitted here (a container without CAP_SYS_ADMIN)")
    try:
        yield lambda: _os_call("mount", "-o", "remount,ro", str(folder)) or pytest.fail("remount,ro failed")
    finally:
        _os_call("umount", str(folder))


@contextmanager
def _as_another_user():
    """Run as a user the workspace folder does not belong to: `nobody` while we are root (root ignores permissions),
    ourselves otherwise."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(65534)
    try:
        yield
    finally:
        os.seteuid(0)


def test_a_workspace_on_a_read_only_disk_refuses_merging(tmp_path, templates):
    with _read_only_disk(tmp_path / "盘") as lock:
        root = tmp_path / "盘" / "工作区"
        inbox = init_workspace(root).folder("inbox")
        fill(templates["visit_report"], inbox / "源汇区团委.xlsx", VISIT)
        merge(root, as_of=NOW.date(), now=NOW)
        fill(templates["visit_report"], inbox / "郾城区团委.xlsx", {**VISIT, "报送单位": "郾城区团委"})
        lock()

        with pytest.raises(TuanjianError) as caught:
            merge(root, as_of=NOW.date(), now=NOW)

        [issue] = caught.value.issues
        assert (issue.code, issue.file) == ("workspace-readonly", ".tuanjian/ledger.sqlite")
        assert issue.message == (f"工作区是只读的（{root / '.tuanjian'}：没有写入权限），无法登记；"
                                 "请复制到可写的文件夹或请管理员开放写权限")
        with Ledger(root, readonly=True) as ledger:  # still readable: status works
            assert [f.name for f in ledger.files()] == ["源汇区团委.xlsx"]


def test_a_workspace_folder_without_write_permission_refuses_merging(templates):
    base = Path(tempfile.mkdtemp(prefix="tj-codes-"))  # under /tmp, reachable by nobody (tmp_path is private)
    try:
        os.chmod(base, 0o755)
        root = base / "工作区"
        inbox = init_workspace(root).folder("inbox")
        fill(templates["visit_report"], inbox / "源汇区团委.xlsx", VISIT)
        for p in [root, *root.rglob("*")]:
            os.chmod(p, 0o555 if p.is_dir() else 0o444)

        with _as_another_user(), pytest.raises(TuanjianError) as caught:
            merge(root, as_of=NOW.date(), now=NOW)

        [issue] = caught.value.issues
        assert (issue.code, issue.file) == ("workspace-readonly", ".tuanjian")
        assert issue.message.startswith(f"工作区是只读的（{root / '.tuanjian'}：")
        assert issue.message.endswith("），无法登记；请复制到可写的文件夹或请管理员开放写权限")
        assert not (root / ".tuanjian").exists()
    finally:
        for p in [base, *base.rglob("*")]:
            os.chmod(p, 0o755)
        shutil.rmtree(base)


# --- mail ----------------------------------------------------------------------------------------------------


def test_fetching_mail_with_no_server_set(workspace, monkeypatch):
    monkeypatch.setenv("TUANJIAN_IMAP_PASSWORD", "x")
    with pytest.raises(TuanjianError) as caught:
        fetch_mail(workspace, now=NOW)
    [issue] = caught.value.issues
    assert (issue.code, issue.file, issue.field) == ("mail-not-configured", "tuanjian.toml", "mail.imap_host")
    assert issue.message == "未设置收信服务器：请在 tuanjian.toml 的 [mail] 中填写 imap_host"


@pytest.mark.parametrize("smtp_host, field, message", [
    ("", "mail.smtp_host", "未设置发信服务器：请在 tuanjian.toml 的 [mail] 中填写 smtp_host"),
    ("smtp.163.com", "mail.sender", "未设置发件人：请在 tuanjian.toml 的 [mail] 中填写 sender 或 smtp_user"),
], ids=["no-server", "no-sender"])
def test_sending_the_copies_with_mail_not_set(workspace, smtp_host, field, message):
    edit_roster(workspace, "单位名单", "单位名称", "源汇区团委", "电子邮箱", "yuanhui@163.com")
    toml = workspace / "tuanjian.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('smtp_host = ""', f'smtp_host = "{smtp_host}"'),
                    encoding="utf-8")
    with pytest.raises(TuanjianError) as caught:
        distribute(workspace, "2026-03", forms=["visit_report"], units=["源汇区团委"], send=True, now=NOW)
    [issue] = caught.value.issues
    assert (issue.code, issue.file, issue.field) == ("mail-not-configured", "tuanjian.toml", field)
    assert issue.message == message


class _Imap(socketserver.StreamRequestHandler):
    """Just enough IMAP: logs in, knows one folder (INBOX), and answers the UID SEARCH with the server's `search`."""

    def handle(self):
        self.wfile.write(b"* OK [CAPABILITY IMAP4rev1] fake ready\r\n")
        while line := self.rfile.readline():
            tag, _, rest = line.decode().strip().partition(" ")
            command, _, args = rest.partition(" ")
            command, t = command.upper(), tag.encode()
            self.server.seen.append(rest)
            if command == "CAPABILITY":
                self.wfile.write(b"* CAPABILITY IMAP4rev1\r\n" + t + b" OK done\r\n")
            elif command == "LOGIN":
                self.wfile.write(t + b" OK logged in\r\n")
            elif command == "ID":  # RFC 2971
                self.wfile.write(b'* ID ("name" "Coremail Imap")\r\n' + t + b" OK ID completed\r\n")
            elif command in ("SELECT", "EXAMINE") and self.server.netease and not any(
                    s.upper().startswith("ID ") for s in self.server.seen):  # as imap.163.com answers
                self.wfile.write(t + b" NO SELECT Unsafe Login. Please contact kefu@188.com for help\r\n")
            elif command in ("SELECT", "EXAMINE") and args == '"INBOX"':
                self.wfile.write(b"* 0 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n" + t + b" OK [READ-ONLY] done\r\n")
            elif command in ("SELECT", "EXAMINE"):
                self.wfile.write(t + b" NO [NONEXISTENT] Unknown Mailbox\r\n")
            elif command == "UID" and args.upper().startswith("SEARCH"):
                self.wfile.write(t + b" " + self.server.search + b"\r\n")
            elif command == "LOGOUT":
                self.wfile.write(b"* BYE bye\r\n" + t + b" OK done\r\n")
                return
            else:
                self.wfile.write(t + b" BAD unknown command\r\n")


@pytest.fixture
def imap(workspace, monkeypatch):
    """A fake IMAP server on loopback, and the workspace set to fetch from it."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Imap)
    server.daemon_threads, server.seen, server.search = True, [], b"OK [UNAVAILABLE] nothing"
    server.netease = False
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    toml = workspace / "tuanjian.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('imap_host = ""', 'imap_host = "127.0.0.1"')
                    .replace("imap_port = 993", f"imap_port = {server.server_address[1]}")
                    .replace('imap_security = "ssl"', 'imap_security = "none"')
                    .replace('imap_user = ""', 'imap_user = "lhtswzxb@test.local"'), encoding="utf-8")
    monkeypatch.setenv("TUANJIAN_IMAP_PASSWORD", "x")
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_fetching_from_a_folder_the_mailbox_does_not_have(workspace, imap):
    with pytest.raises(TuanjianError) as caught:
        fetch_mail(workspace, folder="团建报表", now=NOW)
    [issue] = caught.value.issues
    assert (issue.code, issue.file, issue.field) == ("mail-folder", None, "--folder")
    assert issue.message == ("打不开邮箱里的文件夹“团建报表”（服务器回答：[NONEXISTENT] Unknown Mailbox）；"
                             "请检查文件夹名称，或在邮箱网页的设置里开启 IMAP")
    assert 'EXAMINE "&VuJe+mKliGg-"' in imap.seen  # asked for in IMAP's modified UTF-7 (RFC 3501 5.1.3)
    assert not (workspace / ".tuanjian").exists()  # nothing recorded


def test_a_server_that_answers_bad_to_the_search(workspace, imap):
    imap.search = b"BAD [SERVERBUG] search backend unavailable"
    with pytest.raises(TuanjianError) as caught:
        fetch_mail(workspace, now=NOW)
    [issue] = caught.value.issues
    assert (issue.code, issue.field) == ("mail-server-error", None)
    assert issue.message.startswith("收信服务器拒绝了请求（")
    assert "[SERVERBUG] search backend unavailable" in issue.message  # the server's own words
    assert issue.message.endswith("），未收取任何邮件")
    assert not (workspace / ".tuanjian").exists()


def test_a_server_error_quotes_the_server_without_python_reprs(workspace, imap):
    imap.search = b"BAD [SERVERBUG] search backend unavailable"
    with pytest.raises(TuanjianError) as caught:
        fetch_mail(workspace, now=NOW)
    assert caught.value.issues[0].message == "收信服务器拒绝了请求（[SERVERBUG] search backend unavailable），未收取任何邮件"


def test_a_163_mailbox_that_wants_the_client_named_is_fetched(workspace, imap):
    """imap.163.com (the plan's own 报送邮箱) answers SELECT with "Unsafe Login" unless the client first says who
    it is (RFC 2971 ID): fetching never worked, and the message spoke of a missing folder. The client names
    itself; the folder opens."""
    imap.netease = True
    result = fetch_mail(workspace, now=NOW)
    assert result.folder == "INBOX"
    assert any(s.upper().startswith("ID ") for s in imap.seen)
