"""Files as they really arrive: zips with GBK names and folders, unsafe members, zip bombs, saved e-mails."""

from __future__ import annotations

import datetime as dt
import io
import sqlite3
import zipfile
from email.message import EmailMessage
from email.utils import format_datetime

import pytest

from conftest import fill
from test_read import _zip
from tuanjian_xlsx.clock import BEIJING
from tuanjian_xlsx.intake import expand
from tuanjian_xlsx.merge import merge
from tuanjian_xlsx.workspace import init_workspace

VISIT = {"报送单位": "源汇区团委", "报送期": "2026-03", "填表时间": dt.datetime(2026, 3, 5), "姓名": "张三",
         "单位职务": "书记", "走访团组织名称": "一中团委", "走访形式": "座谈交流", "团干部": 2, "团员青年": 15,
         "基层团组织工作开展情况": "好", "基层团组织工作亮点": "多"}


@pytest.fixture
def filled(templates, tmp_path):
    return fill(templates["visit_report"], tmp_path / "filled.xlsx", VISIT).read_bytes()


def gbk_zip(members: dict[str, bytes]) -> bytes:
    """A zip as Chinese Windows tools write it: names in GBK, no UTF-8 flag."""
    buf = io.BytesIO()
    placeholders = {}
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for n, (name, body) in enumerate(members.items()):
            raw = name.encode("gbk")
            ascii_name = f"{n:02d}" + "x" * (len(raw) - 2)
            placeholders[ascii_name.encode()] = raw
            z.writestr(ascii_name, body)
    data = buf.getvalue()
    for fake, raw in placeholders.items():
        data = data.replace(fake, raw)
    return data


def test_gbk_names_in_nested_folders(tmp_path, filled):
    init_workspace(tmp_path / "ws")
    inbox = tmp_path / "ws" / "收件箱"
    (inbox / "三月报表.zip").write_bytes(gbk_zip({"源汇区团委/三月/走基层报告单.xlsx": filled, "说明.txt": b"x"}))
    (sub,) = list(expand([inbox]))
    assert sub.name == "走基层报告单.xlsx" and sub.origin.endswith("三月报表.zip!源汇区团委/三月/走基层报告单.xlsx")
    result = merge(tmp_path / "ws", as_of=dt.date(2026, 4, 20), now=dt.datetime(2026, 4, 1, 9))
    assert (result.received, result.valid) == (1, 1)
    con = sqlite3.connect(tmp_path / "ws" / ".tuanjian" / "ledger.sqlite")
    assert con.execute("SELECT origin FROM files").fetchone()[0].endswith("!源汇区团委/三月/走基层报告单.xlsx")
    archived = {p.suffix for p in (tmp_path / "ws" / ".tuanjian" / "archive").iterdir()}
    assert archived == {".xlsx", ".zip"}  # the zip as received is kept too


def test_unsafe_members_and_zip_bombs_are_refused(tmp_path, filled):
    init_workspace(tmp_path / "ws")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("../../逃出去.xlsx", filled)
        z.writestr("/etc/绝对路径.xlsx", filled)
        z.writestr("炸弹.xlsx", b"\0" * (60 * 1024 * 1024))
        z.writestr("好的.xlsx", filled)
    (tmp_path / "ws" / "收件箱" / "混合.zip").write_bytes(buf.getvalue())
    result = merge(tmp_path / "ws", as_of=dt.date(2026, 4, 20), now=dt.datetime(2026, 4, 1, 9))
    got = sorted((i.path.name, i.valid, [x.code for x in i.result.issues] if i.result else []) for i in result.ingested)
    assert got == [("好的.xlsx", True, []), ("炸弹.xlsx", False, ["zip-bomb"]),
                   ("绝对路径.xlsx", False, ["zip-unsafe-path"]), ("逃出去.xlsx", False, ["zip-unsafe-path"])]
    again = merge(tmp_path / "ws", as_of=dt.date(2026, 4, 20), now=dt.datetime(2026, 4, 1, 9))
    assert again.duplicates == 4 and again.valid == 0  # refusals are not counted twice either


def _eml(filled: bytes, sender: str, when: dt.datetime) -> bytes:
    msg = EmailMessage()
    msg["Subject"] = "源汇区团委3月走基层报告单"
    msg["From"] = f"源汇区团委 <{sender}>"
    msg["To"] = "lhtswzxb@163.com"
    msg["Date"] = format_datetime(when.replace(tzinfo=BEIJING))
    msg.set_content("请查收。")
    msg.add_attachment(filled, maintype="application", subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                       filename="源汇区团委_2026年3月_走基层.xlsx")  # base64, RFC 2231 name
    other = fill_other(filled)
    msg.add_attachment(other, maintype="application", subtype="octet-stream", filename="第二次走访.xlsx",
                       cte="quoted-printable")
    return bytes(msg)


def fill_other(filled: bytes) -> bytes:
    import openpyxl

    wb = openpyxl.load_workbook(io.BytesIO(filled))
    wb.worksheets[0]["B7"] = "二中团委"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def with_address(root):
    """A new workspace whose roster gives 源汇区团委 its mail address (a mail from elsewhere is then noticed)."""
    import openpyxl

    init_workspace(root)
    book = root / "名单与目标.xlsx"
    wb = openpyxl.load_workbook(book)
    wb["单位名单"]["D2"] = "yuanhui@county.example"
    wb.save(book)
    return root


def test_saved_email_attachments_with_its_date_and_sender(tmp_path, filled):
    root = with_address(tmp_path / "ws")
    when = dt.datetime(2026, 4, 12, 16, 30)  # after 源汇区's due date, 2026-04-10
    (root / "收件箱" / "来信.eml").write_bytes(_eml(filled, "someone@else.example", when))
    subs = list(expand([root / "收件箱"]))
    assert [s.name for s in subs] == ["源汇区团委_2026年3月_走基层.xlsx", "第二次走访.xlsx"]
    assert all(s.received_at == when and s.sender == "someone@else.example" for s in subs)
    result = merge(root, as_of=dt.date(2026, 4, 20), now=dt.datetime(2026, 4, 20, 9))
    assert (result.received, result.valid) == (2, 2)
    status = {(i.unit, i.period.code): i for i in result.items if i.form_id == "visit_report"}
    assert status[("源汇区团委", "2026-03")].status == "late" and status[("源汇区团委", "2026-03")].received == when
    con = sqlite3.connect(root / ".tuanjian" / "ledger.sqlite")
    issues = [r[0] for r in con.execute("SELECT result FROM files")]
    assert all("sender-mismatch" in text and "someone@else.example" in text for text in issues)
    # said aloud by merge, not only in the master's 问题清单: the file may be another unit's copy sent in error
    loud = [n for n in result.notes if n.code == "sender-mismatch"]
    assert sorted(n.file for n in loud) == ["源汇区团委_2026年3月_走基层.xlsx", "第二次走访.xlsx"]
    assert "已按表中所填计入“源汇区团委”" in loud[0].message
    assert all(o.endswith(("#源汇区团委_2026年3月_走基层.xlsx", "#第二次走访.xlsx"))
               for (o,) in con.execute("SELECT origin FROM files"))


def test_unflagged_utf8_names_and_attachment_names_with_paths(tmp_path, filled):
    init_workspace(tmp_path / "ws")
    inbox = tmp_path / "ws" / "收件箱"
    buf = io.BytesIO()
    raw = "团建报表/三月走基层.xlsx".encode()  # as macOS or 7-Zip write it: UTF-8, no flag
    placeholder = "x" * (len(raw) - 5) + ".xlsx"
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(placeholder, filled)
    (inbox / "mac.zip").write_bytes(buf.getvalue().replace(placeholder.encode(), raw))
    msg = EmailMessage()
    msg["From"] = "a@b.example"
    msg.set_content("x")
    msg.add_attachment(filled, maintype="application", subtype="octet-stream", filename="../..\\\\目录\\\\表.xlsx")
    (inbox / "路径.eml").write_bytes(bytes(msg))  # no Date: received when ingested
    names = sorted(s.name for s in expand([inbox]))
    assert names == ["三月走基层.xlsx", "表.xlsx"]
    result = merge(tmp_path / "ws", as_of=dt.date(2026, 4, 20), now=dt.datetime(2026, 4, 1, 9))
    assert result.received == 2 and result.duplicates == 1  # the same workbook twice: counted once


def test_progress_counts_the_members_a_zip_brings_as_it_is_opened(tmp_path, filled):
    """The inbox is opened as the checking goes (a zip's members are known only once it is opened): the progress
    total grows with them and ends at what was received, never below the count done."""
    init_workspace(tmp_path / "ws")
    inbox = tmp_path / "ws" / "收件箱"
    other = fill_other(filled)
    (inbox / "a.zip").write_bytes(gbk_zip({"一.xlsx": filled, "二.xlsx": other, "三.xlsx": b"not a workbook"}))
    (inbox / "z.xlsx").write_bytes(filled[:-1] + b"\0")  # damaged: refused, still counted
    calls: list[tuple[int, int]] = []
    result = merge(tmp_path / "ws", as_of=dt.date(2026, 4, 20), now=dt.datetime(2026, 4, 1, 9),
                   progress=lambda n, total, item: calls.append((n, total)))
    assert result.received == 4 and calls[-1] == (4, 4)
    assert all(n <= total for n, total in calls) and [t for _, t in calls] == sorted(t for _, t in calls)


def test_an_inbox_of_zips_is_checked_by_as_many_workers_as_one_of_loose_files(tmp_path, monkeypatch):
    """How many workers check an inbox is decided by how many submissions it holds, learnt as its zips are opened:
    two zips of 40 members each are 80 jobs (two workers here), not the 2 files the walk found."""
    import os

    from tuanjian_xlsx.isolation import Workers

    if (os.cpu_count() or 1) < 2:
        pytest.skip("one core: one worker whatever the count")
    spawned = []
    real = Workers._spawn

    def spawn(self):
        from tuanjian_xlsx.checking import checked

        if self._args[2] is checked:  # (the 退回件 have workers of their own)
            spawned.append(1)
        return real(self)

    monkeypatch.setattr(Workers, "_spawn", spawn)
    init_workspace(tmp_path / "ws")
    for z in range(2):
        (tmp_path / "ws" / "收件箱" / f"{z}.zip").write_bytes(
            gbk_zip({f"{z}-{n}.xlsx": f"not a workbook {z}-{n}".encode() for n in range(40)}))
    result = merge(tmp_path / "ws", as_of=dt.date(2026, 4, 20), now=dt.datetime(2026, 4, 1, 9))
    assert result.received == 80 and len(spawned) == 2


def test_zips_inside_a_zip_share_its_member_limit(tmp_path):
    """3 zips of 200 junk forms each, in one zip of a few KB: 600 files, over the 500 one zip may bring however
    they are nested; the outer zip is refused whole, with one message (not 600 退回件). Within the limit, the
    nested members come through as before."""
    inner = [_zip({f"表{i}_{j}.xlsx": f"not a workbook {i} {j}".encode() for j in range(200)}) for i in range(3)]
    (tmp_path / "套娃.zip").write_bytes(_zip({f"包{i}.zip": body for i, body in enumerate(inner)}))
    (tmp_path / "两层.zip").write_bytes(_zip({"包0.zip": inner[0], "包1.zip": inner[1], "说明.txt": b"x"}))
    subs = list(expand([tmp_path / "套娃.zip"]))
    assert [(s.name, s.refusal.code if s.refusal else None) for s in subs] == [("套娃.zip", "zip-too-many")]
    assert "至少 " in subs[0].refusal.message and "最多接收 500 个" in subs[0].refusal.message
    subs = list(expand([tmp_path / "两层.zip"]))
    assert len(subs) == 400 and all(s.refusal is None for s in subs)
    assert subs[0].path.name == "两层.zip!包0.zip!表0_0.xlsx" and subs[0].read() == b"not a workbook 0 0"


def _mail(sender: str | None, when: dt.datetime, files: dict[str, bytes]) -> bytes:
    msg = EmailMessage()
    if sender is not None:
        msg["From"] = sender
    msg["To"] = "lhtswzxb@163.com"
    msg["Subject"] = "报表"
    msg["Date"] = format_datetime(when.replace(tzinfo=BEIJING))
    msg.set_content("见附件")
    for name, body in files.items():
        msg.add_attachment(body, maintype="application", subtype="octet-stream", filename=name)
    return bytes(msg)


def test_a_saved_mail_in_a_zip_is_opened_like_one_given_alone(tmp_path, filled):
    """A zip of saved mails (how a colleague passes on a folder of mail): each mail's attachments are submissions,
    named zip!mail.eml#attachment, with the mail's sender and date; a mail without a report says so. The same
    zip attached to a mail: the outer mail's sender and arrival stand, as for a forward."""
    when, outer_when = dt.datetime(2026, 4, 8, 10, 0), dt.datetime(2026, 4, 9, 11, 0)
    saved = _zip({"来信.eml": _mail("源汇区团委 <yuanhui@county.example>", when, {"报表.xlsx": filled}),
                     "空信.eml": _mail("a@county.example", when, {}), "说明.txt": b"x"})
    root = tmp_path / "ws"
    init_workspace(root)
    (root / "收件箱" / "转来的邮件.zip").write_bytes(saved)
    subs = list(expand([root / "收件箱"]))
    got = [(str(s.path.relative_to(root / "收件箱")), s.sender, s.received_at, s.refusal.code if s.refusal else None)
           for s in subs]
    assert got == [("转来的邮件.zip!来信.eml#报表.xlsx", "yuanhui@county.example", when, None),
                   ("转来的邮件.zip!空信.eml", "a@county.example", when, "mail-no-report")]
    assert subs[0].read() == filled
    result = merge(root, as_of=dt.date(2026, 4, 20), now=dt.datetime(2026, 4, 20, 9))
    assert (result.received, result.valid) == (2, 1)
    # its receipt goes to the saved mail's sender, read again from inside the zip (was: no address known)
    from tuanjian_xlsx.plan import Workspace
    from tuanjian_xlsx.replies import answer

    report = answer(Workspace.load(root), now=when + dt.timedelta(days=1), dry_run=True)
    assert [(r.to, r.cc) for r in report.would] == [("yuanhui@county.example", None)] and not report.no_address
    (tmp_path / "外层.eml").write_bytes(_mail("b@county.example", outer_when, {"转来的邮件.zip": saved}))
    first = next(iter(expand([tmp_path / "外层.eml"])))
    assert (first.path.name, first.sender, first.received_at) == (
        "外层.eml#转来的邮件.zip!来信.eml#报表.xlsx", "b@county.example", outer_when)
    # an outer mail without a sender: still its arrival, never the saved mail's earlier date (on time, not late)
    (tmp_path / "无名.eml").write_bytes(_mail(None, outer_when, {"转来的邮件.zip": saved}))
    first = next(iter(expand([tmp_path / "无名.eml"])))
    assert (first.sender, first.received_at) == (None, outer_when)


def test_a_saved_mail_is_found_again_for_its_reply_wherever_it_lies(tmp_path):
    """The mail a form came in, read again for its reply: on its own (in a folder whose name holds a "!"), in a zip,
    in a zip in a zip (named as intake names them); gone, or no mail at all: nothing."""
    from tuanjian_xlsx.replies import _saved_bytes

    mail = _mail("a@county.example", dt.datetime(2026, 4, 8), {})
    folder = tmp_path / "收件!箱"
    folder.mkdir()
    (folder / "来信.eml").write_bytes(mail)
    (folder / "包.zip").write_bytes(_zip({"子/来信.eml": mail, "内.zip": _zip({"来信.eml": mail})}))
    assert _saved_bytes(str(folder / "来信.eml")) == mail
    assert _saved_bytes(f"{folder / '包.zip'}!子/来信.eml") == mail
    assert _saved_bytes(f"{folder / '包.zip'}!内.zip!来信.eml") == mail
    assert _saved_bytes(f"{folder / '包.zip'}!别的.eml") is None and _saved_bytes(str(folder / "没有.eml")) is None


def test_a_report_packed_by_outlook_into_winmail_dat_is_said_to_be(tmp_path):
    """Outlook in rich text packs the attachments into winmail.dat: the mail is refused saying so and what to do
    (it said 邮件中没有报表附件, though the unit had attached its form)."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@county.example", "lhtswzxb@163.com", "报表"
    msg["Date"] = format_datetime(dt.datetime(2026, 4, 8, 10).replace(tzinfo=BEIJING))
    msg.set_content("见附件")
    msg.add_attachment(b"\x78\x9f\x3e\x22" + bytes(60), maintype="application", subtype="ms-tnef", filename="winmail.dat")
    (tmp_path / "来信.eml").write_bytes(bytes(msg))
    (sub,) = expand([tmp_path / "来信.eml"])
    assert sub.refusal.code == "mail-winmail" and "winmail.dat" in sub.refusal.message and sub.name == "winmail.dat"


def test_what_a_zip_brings_counts_by_its_files_and_a_mail_brings_at_most_as_many(tmp_path):
    """A zip's limit counts the files it brings, not the zips and mails holding them, nor other files: a staff zip
    of two units' zips of 250 forms each and a note brings its 500 forms; 4 saved mails of 150 forms each are 600,
    and the zip is refused whole; a mail with 2 zips of 300 forms each is refused whole, saying why."""
    forms250 = _zip({f"表{j}.xlsx": b"not a workbook" for j in range(250)})
    (tmp_path / "汇总.zip").write_bytes(_zip({"甲.zip": forms250, "乙.zip": forms250, "说明.docx": b"x"}))
    subs = list(expand([tmp_path / "汇总.zip"]))
    assert len(subs) == 500 and all(s.refusal is None for s in subs)
    forms = {f"表{j}.xlsx": b"not a workbook" for j in range(150)}
    mails = {f"信{i}.eml": _mail("a@county.example", dt.datetime(2026, 4, 8), forms) for i in range(4)}
    (tmp_path / "信件.zip").write_bytes(_zip(mails))
    assert [(s.name, s.refusal.code) for s in expand([tmp_path / "信件.zip"])] == [("信件.zip", "zip-too-many")]
    many = _zip({f"表{j}.xlsx": b"not a workbook" for j in range(300)})
    (tmp_path / "大信.eml").write_bytes(_mail("a@county.example", dt.datetime(2026, 4, 8),
                                             {"一.zip": many, "二.zip": many}))
    (sub,) = expand([tmp_path / "大信.eml"])
    assert sub.refusal.code == "mail-too-many" and "至少 501 个" in sub.refusal.message


def test_a_zip_with_nothing_to_read_says_so_and_a_macs_finder_files_are_no_files(tmp_path, filled):
    """A zip holding no report is refused with one message naming what it holds (it was silently nothing); what
    a Mac's Finder adds to a zip (__MACOSX/…, ._name) is no file of the sender's (each became a 退回件), nor is
    such a file left beside a form in the inbox."""
    (tmp_path / "资料.zip").write_bytes(_zip({"报表.rar": b"x", "说明.docx": b"x"}))
    (sub,) = expand([tmp_path / "资料.zip"])
    assert sub.refusal.code == "zip-no-report" and "报表.rar" in sub.refusal.message
    (tmp_path / "苹果.zip").write_bytes(_zip({"表.xlsx": filled, "__MACOSX/._表.xlsx": b"\0\5\26\7",
                                                 "._表.xlsx": b"\0\5\26\7"}))
    inbox = tmp_path / "收件箱"
    inbox.mkdir()
    (inbox / "表.xlsx").write_bytes(filled)
    (inbox / "._表.xlsx").write_bytes(b"\0\5\26\7")
    assert [(s.name, s.refusal) for s in expand([tmp_path / "苹果.zip", inbox])] == [("表.xlsx", None)] * 2




def test_a_named_pipe_is_refused_by_name_or_in_the_inbox_and_never_waited_on(tmp_path, filled):
    """A FIFO named like a report held `validate` and `merge` for ever (reading waits for a writer), and one in the
    inbox was passed over in silence; each is refused with its reason, and the report beside it is taken."""
    import os

    root = tmp_path / "ws"
    init_workspace(root)
    os.mkfifo(root / "收件箱" / "管道.xlsx")
    (root / "收件箱" / "好.xlsx").write_bytes(filled)
    result = merge(root, as_of=dt.date(2026, 4, 20))
    shown = {i.path.name: i for i in result.ingested}
    assert shown["好.xlsx"].valid
    (issue,) = shown["管道.xlsx"].result.issues
    assert issue.code == "path-refused" and "不是普通文件" in issue.message
    pipe = tmp_path / "given.xlsx"
    os.mkfifo(pipe)
    (sub,) = expand([pipe])
    assert sub.refusal is not None and "不是普通文件" in sub.refusal.message


def test_a_huge_file_is_refused_by_its_size_without_being_read(tmp_path, filled):
    """A 6 GB file in the inbox was read whole into memory before its size was looked at (6.3 GB at the peak; under
    a memory limit the MemoryError was reported as a damaged zip). Its size is looked at first: a sparse file of
    6 GB, refused with its size, in a process that could not hold it."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = tmp_path / "ws"
    init_workspace(root)
    with open(root / "收件箱" / "大.xlsx", "wb") as f:
        f.truncate(6 * 1024 ** 3)
    (root / "收件箱" / "好.xlsx").write_bytes(filled)
    code = ("import resource, json, datetime as dt; "
            "resource.setrlimit(resource.RLIMIT_AS, (3 * 1024 ** 3, 3 * 1024 ** 3)); "
            "from tuanjian_xlsx.merge import merge; "
            f"r = merge({str(root)!r}, as_of=dt.date(2026, 4, 20)); "
            "print(json.dumps({i.path.name: [i.valid, [x.code for x in i.result.issues] if i.result else []] "
            "for i in r.ingested}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["好.xlsx"][0] is True
    assert got["大.xlsx"] == [False, ["file-too-large"]]


def test_what_is_no_spreadsheet_is_said_once_and_a_report_that_lost_its_extension_is_read(tmp_path, filled):
    """A Word copy of the form, a scan, a photo, a RAR, an Outlook .msg in the inbox were passed over in silence
    (a unit that sent only that stayed 未报 and got a 催报): merge names them once, in a note — never counted as
    received nor returned (photos come beside reports). A report whose extension a mail or OA system dropped is
    read by its content (a zip too); a note without one is named too. What Windows, a Mac or a browser leave
    beside files is passed over; a report whose name starts with a dot is read."""
    root = tmp_path / "ws"
    init_workspace(root)
    box = root / "收件箱"
    (box / "源汇区团委11月走基层").write_bytes(filled)
    (box / ".郾城区团委走基层.xlsx").write_bytes(filled)
    (box / "打包的表").write_bytes(gbk_zip({"召陵区团委.xlsx": filled}))
    (box / "说明").write_bytes("这是工作人员的说明".encode())
    for name in ("走基层报告单.docx", "扫描件.pdf", "照片.JPG", "报表.rar", "来信.msg"):
        (box / name).write_bytes(b"not a spreadsheet")
    for name in ("Thumbs.db", ".DS_Store", "下载中.xlsx.crdownload", "desktop.ini"):
        (box / name).write_bytes(b"x")
    result = merge(root, as_of=dt.date(2026, 4, 20))
    shown = {i.path.name: i for i in result.ingested}
    assert set(shown) == {"源汇区团委11月走基层", ".郾城区团委走基层.xlsx", "召陵区团委.xlsx"}  # (a member: its own name)
    assert all(i.valid for i in shown.values())
    (note,) = [n for n in result.notes if n.code == "not-a-report-file"]
    for said in ("走基层报告单.docx（Word 文档）", "扫描件.pdf（PDF）", "照片.JPG（图片）", "报表.rar（zip 以外的压缩包",
                 "来信.msg（Outlook 邮件"):
        assert said in note.message
    assert "6 个" in note.message and "说明（没有扩展名" in note.message and "Thumbs" not in note.message
    again = merge(root, as_of=dt.date(2026, 4, 20), parse_counter=(parsed := []))
    assert parsed == [] and again.new == 0 and not [n for n in again.notes if n.code == "not-a-report-file"]
    (box / "第二张照片.png").write_bytes(b"x")
    third = merge(root, as_of=dt.date(2026, 4, 20))
    (note,) = [n for n in third.notes if n.code == "not-a-report-file"]
    assert "1 个" in note.message and "第二张照片.png" in note.message and "扫描件" not in note.message


def _mail_with(parts: list[tuple[bytes, str, str | None]]) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "yuanhui@example.cn", "tsw@example.cn", "报表"
    msg["Date"] = format_datetime(dt.datetime(2026, 4, 8, 10, tzinfo=dt.timezone(dt.timedelta(hours=8))))
    msg.set_content("见附件")
    for body, ctype, name in parts:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(body, maintype=maintype, subtype=subtype, filename=name)
        if name is None:
            del msg.get_payload()[-1]["Content-Disposition"]
            msg.get_payload()[-1]["Content-Disposition"] = "attachment"
    return bytes(msg)


def test_a_mailed_report_without_a_name_is_read_and_a_mail_without_one_names_what_it_brought(tmp_path, filled):
    """An attachment whose name a mailer dropped (its type still a spreadsheet's, or just bytes) was refused with
    "邮件中没有报表附件", which was false; it is read. A mail that brought only a Word file says so by name."""
    root = tmp_path / "ws"
    init_workspace(root)
    box = root / "收件箱"
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    (box / "1无名.eml").write_bytes(_mail_with([(filled, xlsx, None)]))
    (box / "2字节.eml").write_bytes(_mail_with([(filled, "application/octet-stream", "源汇区团委11月走基层")]))
    (box / "3只有Word.eml").write_bytes(_mail_with([(b"doc", "application/msword", "走基层报告单.doc"),
                                                   (b"\xff\xd8\xff", "image/jpeg", "照片.jpg")]))
    result = merge(root, as_of=dt.date(2026, 4, 20))
    shown = {i.path.name: i for i in result.ingested}
    assert shown["附件1.xlsx"].valid  # (an attachment is shown by its own name)
    assert shown["源汇区团委11月走基层.xlsx"].valid
    (issue,) = shown["3只有Word.eml"].result.issues
    assert issue.code == "mail-no-report" and "邮件里的附件是 走基层报告单.doc、照片.jpg" in issue.message


def test_an_attachment_named_in_raw_gbk_bytes_keeps_its_chinese_name(tmp_path, filled):
    """Older Foxmail, Outlook and OA systems put the attachment's name in the header as raw GBK bytes; it reached
    来源 and 明细 as replacement marks (staff could not tell which file it was). It is decoded as they mean it."""
    root = tmp_path / "ws"
    init_workspace(root)
    import base64

    raw = (b"From: a@example.cn\r\nTo: b@example.cn\r\nSubject: report\r\nDate: Wed, 8 Apr 2026 10:00:00 +0800\r\n"
           b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"BB\"\r\n\r\n--BB\r\n"
           b"Content-Type: text/plain; charset=utf-8\r\n\r\nhi\r\n--BB\r\n"
           b"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\""
           + "召陵区团委11月.xlsx".encode("gbk") + b"\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + base64.encodebytes(filled) + b"\r\n--BB--\r\n")
    (root / "收件箱" / "来信.eml").write_bytes(raw)
    result = merge(root, as_of=dt.date(2026, 4, 20))
    (item,) = result.ingested
    assert item.path.name == "召陵区团委11月.xlsx" and item.valid


def test_a_zip_of_countless_folder_entries_is_refused_before_its_directory_is_read(tmp_path, filled):
    """Folder entries were not counted against a zip's limit, and zipfile read the whole directory — a million
    empty folders cost seconds and half a gigabyte, again for every member — in merge's main process. A zip whose
    end record says it holds more entries than any report zip is refused whole by that count; a zip with a few
    folders is read as before."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("报表.xlsx", filled)
        for i in range(2500):
            z.writestr(zipfile.ZipInfo(f"空/{i}/"), b"")
    (tmp_path / "满是文件夹.zip").write_bytes(buf.getvalue())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(zipfile.ZipInfo("子/"), b"")
        z.writestr("子/报表.xlsx", filled)
    (tmp_path / "一个文件夹.zip").write_bytes(buf.getvalue())
    ((refused,),) = [list(expand([tmp_path / "满是文件夹.zip"]))]
    assert refused.refusal is not None and refused.refusal.code == "zip-too-many"
    assert "至少 2501 个" in refused.refusal.message
    (sub,) = expand([tmp_path / "一个文件夹.zip"])
    assert sub.refusal is None and sub.read() == filled


def test_a_zip_whose_end_record_understates_its_directory_is_refused_by_the_directorys_size(tmp_path, filled):
    """zipfile reads a zip's directory by its size, not by the count its end record states: a crafted zip stating
    11 entries over a directory of tens of thousands passed the count, and its directory was parsed again for
    every member. The directory's size bounds it; and a zip's members are read from one opening of it."""
    import struct

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("报表.xlsx", filled)
        for i in range(25_000):
            z.writestr(zipfile.ZipInfo(f"d{i}/"), b"")
    data = bytearray(buf.getvalue())
    at = data.rfind(b"PK\x05\x06")
    data[at + 8:at + 12] = struct.pack("<HH", 11, 11)  # entries on this disk, entries in all: a lie
    (tmp_path / "说少了.zip").write_bytes(bytes(data))
    (refused,) = expand([tmp_path / "说少了.zip"])
    assert refused.refusal is not None and refused.refusal.code == "zip-too-many"


@pytest.mark.parametrize("how", ["word", "split-word", "rfc2231", "word-and-text"])
def test_a_name_labelled_gb2312_holding_gbk_keeps_its_characters(tmp_path, filled, how):
    """Outlook labels GBK text gb2312: a name with a character GB2312 lacks (李喆) came out with replacement marks,
    as did a character split between two encoded words or two RFC 2231 pieces (both allowed). Decoded as GB18030,
    the bytes joined first."""
    import base64
    from urllib.parse import quote_from_bytes

    raw = "李喆3月走基层.xlsx".encode("gbk")
    if how == "word":
        disposition = f'attachment; filename="=?gb2312?B?{base64.b64encode(raw).decode()}?="'
    elif how == "split-word":
        disposition = (f'attachment; filename="=?gb2312?B?{base64.b64encode(raw[:3]).decode()}?= '
                       f'=?gb2312?B?{base64.b64encode(raw[3:]).decode()}?="')
    elif how == "rfc2231":
        disposition = f"attachment; filename*0*=gb2312''{quote_from_bytes(raw[:3])}; filename*1*={quote_from_bytes(raw[3:])}"
    else:  # only the Chinese part encoded, the rest as it is
        head = "李喆".encode("gbk")
        disposition = f'attachment; filename="=?gb2312?B?{base64.b64encode(head).decode()}?= 2026-03.xlsx"'
        raw = "李喆 2026-03.xlsx".encode("gbk")
    mail_bytes = (b"From: a@example.cn\r\nTo: b@example.cn\r\nSubject: r\r\nDate: Wed, 8 Apr 2026 10:00:00 +0800\r\n"
                  b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"BB\"\r\n\r\n--BB\r\n"
                  b"Content-Type: application/octet-stream\r\nContent-Disposition: " + disposition.encode() +
                  b"\r\nContent-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(filled) + b"\r\n--BB--\r\n")
    root = tmp_path / "ws"
    init_workspace(root)
    (root / "收件箱" / "来信.eml").write_bytes(mail_bytes)
    (item,) = merge(root, as_of=dt.date(2026, 4, 20)).ingested
    assert item.path.name == raw.decode("gbk") and item.valid


def test_a_rar_beside_a_report_in_a_mail_is_said_on_that_report(tmp_path, filled):
    """A mail bringing a report and a RAR (of sub-units' reports, perhaps): the RAR was passed over in silence. Its
    report is taken, and says the RAR was not read."""
    raw = _mail_with([(filled, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "源汇区.xlsx"),
                      (b"Rar!\x1a\x07\x00", "application/x-rar-compressed", "下属单位报表.rar")])
    from pathlib import Path

    from tuanjian_xlsx.intake import read_mail

    (sub,) = read_mail(raw, Path("来信.eml"), "来信.eml").submissions
    (note,) = [n for n in sub.notes if n.code == "mail-archive-skipped"]
    assert "下属单位报表.rar" in note.message and "未读取" in note.message


def test_files_without_their_extension_are_read_or_named_and_never_hold_the_reminders(tmp_path, filled):
    """A note saved as 新建文本文档 (no extension) was passed over in silence and then held `status --send` for
    ever; a mail saved without .eml whose first header is Content-Type (Apple Mail) was lost; a Word file without
    its extension was refused as a zip with no report (a 退回 to the unit). Now: the mail is read, the report
    with .txt typed after its name is read, the Word file and the note are named once, and a run from another
    spelling of the workspace's path does not take them for new."""
    import base64
    import os
    from pathlib import Path

    from tuanjian_xlsx.merge import unmerged
    from tuanjian_xlsx.ledger import Ledger

    root = tmp_path / "ws"
    init_workspace(root)
    box = root / "收件箱"
    (box / "新建文本文档").write_bytes("记得周五前汇总".encode("gbk"))
    mail_bytes = (b"Content-Type: multipart/mixed; boundary=\"BB\"\r\nFrom: a@example.cn\r\nTo: b@example.cn\r\n"
                  b"Subject: r\r\nDate: Wed, 8 Apr 2026 10:00:00 +0800\r\nMIME-Version: 1.0\r\n\r\n--BB\r\n"
                  b"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"a.xlsx\"\r\n"
                  b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(filled) + b"\r\n--BB--\r\n")
    (box / "临颍县团委来信").write_bytes(mail_bytes)
    word = io.BytesIO()
    with zipfile.ZipFile(word, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    (box / "走基层报告单").write_bytes(word.getvalue())
    (box / "源汇区团委.xlsx.txt").write_bytes(filled)
    result = merge(root, as_of=dt.date(2026, 4, 20))
    shown = {i.path.name: i.valid for i in result.ingested}
    assert shown == {"a.xlsx": True, "源汇区团委.xlsx.txt": True}
    (note,) = [n for n in result.notes if n.code == "not-a-report-file"]
    assert "新建文本文档（没有扩展名" in note.message and "走基层报告单（Word 文档）" in note.message
    with Ledger(root) as ledger:
        assert unmerged(ledger, box) == []
        here = os.getcwd()
        try:
            os.chdir(root)
            assert unmerged(ledger, Path("收件箱")) == []  # (the workspace named another way)
        finally:
            os.chdir(here)
