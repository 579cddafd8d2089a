"""One mail never blocks the mailbox: malformed headers, impossible dates, forwarded mails and a server that
answers BAD, as saved .eml files through merge and through a small fake IMAP server on loopback."""

from __future__ import annotations

import datetime as dt
import imaplib
import io
import json
import re
import socketserver
import sqlite3
import threading
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import openpyxl
import pytest

from conftest import fill
from tuanjian_xlsx.clock import BEIJING
from tuanjian_xlsx.fetchmail import fetch_mail
from tuanjian_xlsx.intake import read_mail
from tuanjian_xlsx.issues import TuanjianError
from tuanjian_xlsx.merge import merge
from tuanjian_xlsx.workspace import init_workspace

VISIT = {"报送单位": "源汇区团委", "报送期": "2026-03", "填表时间": dt.datetime(2026, 3, 5), "姓名": "张三",
         "单位职务": "书记", "走访团组织名称": "一中团委", "走访形式": "座谈交流", "团干部": 2, "团员青年": 15,
         "基层团组织工作开展情况": "好", "基层团组织工作亮点": "多"}
XLSX = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")
SENT = dt.datetime(2026, 4, 8, 9, 30)
NOW = dt.datetime(2026, 4, 20, 9, 0)
ARRIVED = imaplib.Time2Internaldate(dt.datetime(2026, 4, 9, 17, 0, tzinfo=BEIJING).timestamp()).strip('"')  # Beijing
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def reports(templates, tmp_path_factory):
    """Eight different filled reports: one per mail, so each is a new file in the ledger."""
    base = fill(templates["visit_report"], tmp_path_factory.mktemp("reports") / "base.xlsx", VISIT)
    out = []
    for n in range(8):
        wb = openpyxl.load_workbook(base)
        wb.worksheets[0]["B7"] = f"第{n + 1}中学团委"
        buf = io.BytesIO()
        wb.save(buf)
        out.append(buf.getvalue())
    return out


def mail(attachments: dict[str, bytes], n: int = 0) -> EmailMessage:
    """A well-formed report mail, Message-ID <ok-n@county.example>; tests then spoil one header."""
    msg = EmailMessage()
    msg["Subject"] = "报送3月走基层报告单"
    msg["From"] = "源汇区团委 <yuanhui@county.example>"
    msg["To"] = "lhtswzxb@test.local"
    msg["Date"] = format_datetime(SENT.replace(tzinfo=BEIJING))
    msg["Message-ID"] = f"<ok-{n}@county.example>"
    msg.set_content("请查收")
    for name, body in attachments.items():
        msg.add_attachment(body, maintype=XLSX[0], subtype=XLSX[1], filename=name)
    return msg


def spoil(raw: bytes, header: str, value: bytes) -> bytes:
    """The mail with one header's value replaced by bytes no well-behaved mailer writes."""
    return re.sub(rb"(?mi)^" + header.encode() + rb":.*\r?\n", header.encode() + b": " + value + b"\r\n", raw, count=1)


def forwarded(inner: EmailMessage, depth: int = 1) -> bytes:
    for _ in range(depth):
        outer = EmailMessage()
        outer["Subject"] = "转发：" + str(inner["Subject"])
        outer["From"] = "秘书 <mishu@county.example>"
        outer["Date"] = format_datetime(SENT.replace(tzinfo=BEIJING))
        outer.set_content("转给您")
        outer.add_attachment(inner)  # message/rfc822
        inner = outer
    return bytes(inner)


def ledger_rows(root) -> dict[str, dict]:
    con = sqlite3.connect(root / ".tuanjian" / "ledger.sqlite")
    rows = con.execute("SELECT origin, name, valid, received_at, result FROM files").fetchall()
    return {o: {"name": n, "valid": bool(v), "received": r, "issues": json.loads(res)["issues"]}
            for o, n, v, r, res in rows}


# --- saved mails through merge ------------------------------------------------------------------------------


def test_each_malformed_saved_mail_is_refused_alone_and_the_good_ones_are_taken(tmp_path, reports):
    root = tmp_path / "ws"
    init_workspace(root)
    box = tmp_path / "mails"
    box.mkdir()
    good = bytes(mail({"好.xlsx": reports[0]}))
    cases = {
        "01好.eml": good,
        "02单引号.eml": spoil(bytes(mail({"单引号.xlsx": reports[1]})), "From", b'"'),
        "03方括号.eml": spoil(bytes(mail({"方括号.xlsx": reports[2]})), "From", b"<a@[>"),
        "04空编号.eml": spoil(bytes(mail({"空编号.xlsx": reports[3]})), "Message-ID", b"<>"),
        "05年9999.eml": spoil(bytes(mail({"年9999.xlsx": reports[4]})), "Date", b"Fri, 31 Dec 9999 23:59:59 -1200"),
        "06怪月份.eml": spoil(bytes(mail({"怪月份.xlsx": reports[5]})), "Date", b"Wed, 8 Foo 2026 09:30:00 +0800"),
        "07长年份.eml": spoil(bytes(mail({"长年份.xlsx": reports[6]})), "Date",
                           b"Wed, 8 Apr 12345678901234567890 09:30:00 +0800"),
        "08无附件.eml": bytes(mail({})),
        "09转发.eml": forwarded(mail({"转发的.xlsx": reports[7]})),
        "10转发太深.eml": forwarded(mail({"深处.xlsx": reports[7]}), depth=4),
    }
    for name, raw in cases.items():
        (box / name).write_bytes(raw)

    result = merge(root, [box], as_of=dt.date(2026, 4, 20), now=NOW)

    rows = ledger_rows(root)
    by_name = {r["name"]: r for r in rows.values()}
    taken = {"好.xlsx", "空编号.xlsx", "年9999.xlsx", "怪月份.xlsx", "长年份.xlsx", "转发的.xlsx"}
    assert {n for n, r in by_name.items() if r["valid"]} == taken
    refused = {n: [(i["code"], i["message"]) for i in r["issues"]] for n, r in by_name.items() if not r["valid"]}
    assert {n: [c for c, _ in v] for n, v in refused.items()} == {
        "02单引号.eml": ["mail-unreadable"], "03方括号.eml": ["mail-unreadable"], "08无附件.eml": ["mail-no-report"],
        "转发邮件1.eml": ["mail-unreadable"]}  # the fourth forward inside 10转发太深.eml
    assert refused["02单引号.eml"][0][1] == "邮件无法解析（发件人“\"”不是有效的邮箱地址），已跳过；请让对方重新发送"
    assert "发件人“<a@[>”" in refused["03方括号.eml"][0][1]
    assert refused["转发邮件1.eml"][0][1].startswith("邮件无法解析（转发邮件嵌套超过 3 层）")
    assert all(CJK.search(m) for v in refused.values() for _, m in v)
    # a usable Date is the received time; an unusable one is no date, so the merge's `now` applies
    assert by_name["好.xlsx"]["received"].startswith("2026-04-08T09:30")
    for name in ("年9999.xlsx", "怪月份.xlsx", "长年份.xlsx"):
        assert by_name[name]["received"].startswith("2026-04-20"), name
    forward_origin = next(o for o, r in rows.items() if r["name"] == "转发的.xlsx")
    assert forward_origin.endswith("09转发.eml#转发邮件1.eml#转发的.xlsx")
    assert len(result.invalid) == 4

    again = merge(root, [box], as_of=dt.date(2026, 4, 20), now=NOW)  # nothing is new, nothing raises
    assert (again.duplicates, again.valid, len(again.invalid)) == (10, 0, 0)


def test_attached_eml_file_and_bounces():
    inner = mail({"附件里的.xlsx": b"PK fake"})
    outer = mail({})
    outer.add_attachment(bytes(inner), maintype="application", subtype="octet-stream", filename="原邮件.eml")
    got = read_mail(bytes(outer), Path("x.eml"), "x.eml")
    assert [s.name for s in got.submissions] == ["附件里的.xlsx"] and got.refusal is None
    # a delivery report returns a mail we sent (a blank template, say): it is not a submission
    report = EmailMessage()
    report["From"] = "MAILER-DAEMON@county.example"
    report.set_content("投递失败")
    report.add_attachment(mail({"模板.xlsx": b"PK template"}))
    report.replace_header("Content-Type", report["Content-Type"].replace("multipart/mixed", "multipart/report"))
    assert read_mail(bytes(report), Path("y.eml"), "y.eml").submissions == []


# --- a fake IMAP server on loopback -------------------------------------------------------------------------


class Mailbox:
    """What the fake server holds: uid -> (INTERNALDATE text, raw mail), and how it misbehaves per uid."""

    def __init__(self):
        self.mails: dict[int, tuple[str, bytes]] = {}
        self.bad_head: set[int] = set()  # UID FETCH of the header answers BAD
        self.bad_body_after_data: set[int] = set()  # the body is sent, then the command answers BAD
        self.drop: set[int] = set()  # the connection is closed on this uid's body
        self.body_fetches: list[int] = []


class _Handler(socketserver.StreamRequestHandler):
    def handle(self):
        box: Mailbox = self.server.mailbox
        self.wfile.write(b"* OK [CAPABILITY IMAP4rev1] fake ready\r\n")
        while line := self.rfile.readline():
            tag, _, rest = line.decode().strip().partition(" ")
            command = rest.split(" ")[0].upper()
            if command == "CAPABILITY":
                self.wfile.write(b"* CAPABILITY IMAP4rev1\r\n" + tag.encode() + b" OK done\r\n")
            elif command == "LOGIN":
                self.wfile.write(tag.encode() + b" OK logged in\r\n")
            elif command in ("SELECT", "EXAMINE"):
                self.wfile.write(b"* %d EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n%s OK [READ-ONLY] done\r\n"
                                 % (len(box.mails), tag.encode()))
            elif command == "UID" and rest.split(" ")[1].upper() == "SEARCH":
                uids = " ".join(str(u) for u in sorted(box.mails)).encode()
                self.wfile.write(b"* SEARCH " + uids + b"\r\n" + tag.encode() + b" OK done\r\n")
            elif command == "UID" and rest.split(" ")[1].upper() == "FETCH":
                if not self._fetch(box, tag.encode(), rest):
                    return
            elif command == "LOGOUT":
                self.wfile.write(b"* BYE bye\r\n" + tag.encode() + b" OK done\r\n")
                return
            else:
                self.wfile.write(tag.encode() + b" BAD unknown command\r\n")

    def _fetch(self, box: Mailbox, tag: bytes, rest: str) -> bool:
        uid = int(rest.split(" ")[2])
        date, raw = box.mails[uid]
        seq = sorted(box.mails).index(uid) + 1
        if "HEADER.FIELDS" in rest:
            if uid in box.bad_head:
                self.wfile.write(tag + b" BAD [SERVERBUG] Internal error occurred\r\n")
                return True
            header = b"".join(re.findall(rb"(?mi)^message-id:.*\r?\n", raw.split(b"\r\n\r\n")[0] + b"\r\n")) + b"\r\n"
            self.wfile.write(b'* %d FETCH (UID %d INTERNALDATE "%s" BODY[HEADER.FIELDS (MESSAGE-ID)] {%d}\r\n%s)\r\n'
                             % (seq, uid, date.encode(), len(header), header) + tag + b" OK done\r\n")
            return True
        box.body_fetches.append(uid)
        if uid in box.drop:
            return False
        self.wfile.write(b"* %d FETCH (UID %d BODY[] {%d}\r\n%s)\r\n" % (seq, uid, len(raw), raw))
        self.wfile.write(tag + (b" BAD [SERVERBUG] half sent\r\n" if uid in box.bad_body_after_data else b" OK done\r\n"))
        return True


@pytest.fixture
def fake_imap():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.mailbox = Mailbox()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], server.mailbox
    finally:
        server.shutdown()
        server.server_close()


def _workspace(root, port: int, monkeypatch):
    init_workspace(root)
    toml = root / "tuanjian.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('imap_host = ""', 'imap_host = "127.0.0.1"')
                    .replace("imap_port = 993", f"imap_port = {port}").replace('imap_security = "ssl"', 'imap_security = "none"')
                    .replace('imap_user = ""', 'imap_user = "lhtswzxb@test.local"'), encoding="utf-8")
    monkeypatch.setenv("TUANJIAN_IMAP_PASSWORD", "x")
    return root


def test_a_hostile_mailbox_is_fetched_around_its_bad_mails(tmp_path, reports, fake_imap, monkeypatch):
    port, box = fake_imap
    root = _workspace(tmp_path / "ws", port, monkeypatch)
    arrived = ARRIVED
    box.mails = {
        1: (arrived, bytes(mail({"一.xlsx": reports[0]}, n=1))),
        2: (arrived, spoil(bytes(mail({"二.xlsx": reports[1]}, n=2)), "From", b'"')),
        3: (arrived, spoil(bytes(mail({"三.xlsx": reports[2]}, n=3)), "From", b"<a@[>")),
        4: (arrived, spoil(bytes(mail({"四.xlsx": reports[3]}, n=4)), "Message-ID", b"<>")),
        5: ("31-Dec-9999 23:59:59 -1200", bytes(mail({"五.xlsx": reports[4]}, n=5))),  # Date header is fine
        6: ("09-Foo-2026 17:00:00 +0800",
            spoil(bytes(mail({"六.xlsx": reports[5]}, n=6)), "Date", b"Fri, 31 Dec 9999 23:59:59 -1200")),
        7: ("09-Apr-12345678901234567890 17:00:00 +0800",
            spoil(bytes(mail({"七.xlsx": reports[6]}, n=7)), "Date", b"Wed, 8 Apr 12345678901234567890 09:30:00 +0800")),
        8: (arrived, bytes(mail({"八.xlsx": reports[0]}, n=8))),
        9: (arrived, bytes(mail({"九.xlsx": reports[1]}, n=9))),
        10: (arrived, forwarded(mail({"十.xlsx": reports[7]}, n=10))),
        11: (arrived, bytes(mail({}, n=11))),
    }
    box.bad_head = {8}
    box.bad_body_after_data = {9}  # its data must not pass for mail 10's

    result = fetch_mail(root, now=NOW)

    assert sorted(m.key for m in result.taken) == sorted(
        ["<ok-1@county.example>", "<ok-2@county.example>", "<ok-3@county.example>", "INBOX/7/4",
         "<ok-5@county.example>", "<ok-6@county.example>", "<ok-7@county.example>", "<ok-10@county.example>",
         "<ok-11@county.example>"])
    assert sorted(m.key for m in result.refused) == ["<ok-2@county.example>", "<ok-3@county.example>"]
    assert all(m.refusal.code == "mail-unreadable" and CJK.search(m.refusal.message) for m in result.refused)
    assert [mail_ for mail_, _ in result.failed] == ["UID 8", "<ok-9@county.example>"]
    assert all(why.startswith("服务器未交出这封邮件（") and "SERVERBUG" in why for _, why in result.failed)
    assert [(n.code, n.file) for n in result.notes] == [("mail-bad-date", f"<ok-{k}@county.example>") for k in (5, 6, 7)]
    assert "按邮件的发信时间（2026-04-08 09:30）登记" in result.notes[0].message
    assert "按本次收信时间（2026-04-20 09:00）登记" in result.notes[1].message
    assert result.summary() == ("收取 9 封邮件 · 报表附件 6 份 · 已收过 0 封（INBOX） · 无法解析 2 封，已登记为退回"
                                " · 未能取回 2 封，下次再试")
    assert all(CJK.search(line) for line in result.lines())

    rows = ledger_rows(root)
    names = {r["name"]: r for r in rows.values()}
    assert {n for n, r in names.items() if r["valid"]} == {"一.xlsx", "四.xlsx", "五.xlsx", "六.xlsx", "七.xlsx", "十.xlsx"}
    assert {n for n, r in names.items() if not r["valid"]} == {"邮件2.eml", "邮件3.eml"}
    assert names["一.xlsx"]["received"].startswith("2026-04-09T17:00")
    assert names["五.xlsx"]["received"].startswith("2026-04-08T09:30")  # the mail's own Date
    assert names["六.xlsx"]["received"].startswith("2026-04-20T09:00")  # neither date usable: now
    assert next(o for o, r in rows.items() if r["name"] == "十.xlsx").endswith("#转发邮件1.eml#十.xlsx")

    again = fetch_mail(root, now=NOW + dt.timedelta(hours=1))  # nothing new, no exception, bad ones retried
    assert (again.taken, again.already, [m for m, _ in again.failed]) == ([], 9, ["UID 8", "<ok-9@county.example>"])
    box.bad_head, box.bad_body_after_data = set(), set()  # the server mends: they come in now
    third = fetch_mail(root, now=NOW + dt.timedelta(hours=2))
    assert sorted(m.key for m in third.taken) == ["<ok-8@county.example>", "<ok-9@county.example>"]
    assert third.failed == [] and third.already == 9


def test_a_dropped_connection_keeps_what_was_taken(tmp_path, reports, fake_imap, monkeypatch):
    port, box = fake_imap
    root = _workspace(tmp_path / "ws", port, monkeypatch)
    arrived = ARRIVED
    box.mails = {1: (arrived, bytes(mail({"一.xlsx": reports[0]}, n=1))),
                 2: (arrived, bytes(mail({"二.xlsx": reports[1]}, n=2)))}
    box.drop = {2}
    with pytest.raises(TuanjianError) as err:
        fetch_mail(root, now=NOW)
    assert err.value.issues[0].code == "mail-disconnected" and CJK.search(str(err.value))
    box.drop = set()
    result = fetch_mail(root, now=NOW)
    assert [m.key for m in result.taken] == ["<ok-2@county.example>"] and result.already == 1


def _nested(depth: int, lines: int) -> bytes:
    """A small mail the parser chokes on: multiparts nested `depth` deep, then `lines` empty lines (each line is
    tested against every open boundary)."""
    head = b"From: a@b.cn\r\nTo: c@d.cn\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
    out = [head]
    for k in range(depth):
        out.append(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (k, k))
    out.append(b"Content-Type: text/plain\r\n\r\n" + b"\r\n" * lines)
    return b"".join(out)


@pytest.mark.parametrize("depth, lines, said", [(900, 1_000_000, "900 个多段结构"), (150, 400_000, "行数过多")])
def test_a_small_mail_crafted_to_stall_the_parser_is_refused_unparsed_and_the_batch_goes_on(tmp_path, reports,
                                                                                             depth, lines, said):
    """A 1 MB saved mail of nested multiparts and empty lines took the parser minutes in merge's main process (no
    worker time limit there), the good files beside it waiting, and an interrupted run recording nothing. It is
    refused by counting, before any parsing; the report beside it is taken."""
    root = tmp_path / "ws"
    init_workspace(root)
    box = tmp_path / "mails"
    box.mkdir()
    (box / "01好.eml").write_bytes(bytes(mail({"好.xlsx": reports[0]})))
    (box / "02深.eml").write_bytes(_nested(depth, lines))
    merge(root, [box], as_of=dt.date(2026, 4, 20), now=NOW)
    by_name = {r["name"]: r for r in ledger_rows(root).values()}
    assert by_name["好.xlsx"]["valid"]
    (issue,) = by_name["02深.eml"]["issues"]
    assert issue["code"] == "mail-unreadable" and "嵌套过深" in issue["message"] and said in issue["message"]
    parsed = read_mail(_nested(depth, lines), Path("x.eml"), "x.eml")  # (as a mail fetched from the mailbox)
    assert parsed.refusal is not None and parsed.refusal.code == "mail-unreadable"


def test_a_bounce_that_is_no_delivery_report_carries_back_nothing_to_take_and_gets_no_reply(reports):
    """A bounce of a 退回 sent as multipart/mixed with the original attached (系统退信, from postmaster, null
    sender) was taken as the unit's new submission — our own 退回件 — and answered, in copy to postmaster. The null
    sender or a mailer daemon's address makes it a machine's mail: nothing in it is taken, nothing answers it."""
    original = mail({"源汇区团委_退回.xlsx": reports[0]})
    for headers in ({"Return-Path": "<>", "From": "系统管理员 <system@county.example>"},
                    {"From": "Mail Delivery Subsystem <MAILER-DAEMON@mx.county.example>"},
                    {"From": "postmaster@county.example"}):
        outer = EmailMessage()
        for k, v in headers.items():
            outer[k] = v
        outer["To"], outer["Subject"] = "lhtswzxb@163.com", "系统退信"
        outer["Date"] = format_datetime(SENT.replace(tzinfo=BEIJING))
        outer.set_content("很抱歉，您的邮件无法投递。")
        outer.add_attachment(original)  # message/rfc822
        parsed = read_mail(bytes(outer), Path("退信.eml"), "退信.eml")
        assert parsed.submissions == [] and parsed.head.automatic == "来信是退信或回执通知", headers


def test_a_long_legitimate_forward_of_many_mails_is_read(reports):
    """The check before parsing refused a legitimate mail — a forward of sixty mails beside a long text — by
    multiplying every multipart by every line; the parser tests a line only against the boundaries open around it
    (here one or two). The work is counted as the parser does it, and the report in the mail is read."""
    from tuanjian_xlsx.intake import _boundary_work, mail_shape

    outer = mail({"好.xlsx": reports[0]})
    outer.add_attachment("note\n" * 1_000_000, subtype="plain", filename="说明.txt", cte="7bit")
    for n in range(60):
        inner = EmailMessage()
        inner["From"], inner["To"], inner["Subject"] = f"u{n}@county.example", "lhtswzxb@163.com", f"转发{n}"
        inner.set_content("见附件")
        inner.add_alternative("<p>见附件</p>", subtype="html")
        outer.add_attachment(inner)
    raw = bytes(outer)
    assert raw.lower().count(b"multipart") * raw.count(b"\n") > 50_000_000  # what the old bound refused
    assert _boundary_work(raw) < 2_000_000 and mail_shape(raw) is None
    parsed = read_mail(raw, Path("转发.eml"), "转发.eml")
    assert parsed.refusal is None and [s.name for s in parsed.submissions] == ["好.xlsx"]


def test_heavy_mails_share_a_budget_per_run(tmp_path, monkeypatch):
    """Each crafted mail just inside the per-mail bound still costs seconds to parse, in the main process: a zip of
    five hundred would hold merge for half an hour. Mails heavier than the usual share one budget per run; past it
    the rest are left for the next run — not refused, nothing recorded, no 退回 — and the run says so (shown here
    with a small budget)."""
    import tuanjian_xlsx.intake as intake

    monkeypatch.setattr(intake, "MAIL_RUN_WORK", 3_000_000)
    crafted = _nested(20, 100_000)
    assert 1_000_000 < intake._boundary_work(crafted) < 3_000_000
    root = tmp_path / "ws"
    init_workspace(root)
    buf = io.BytesIO()
    import zipfile

    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for n in range(5):
            z.writestr(f"{n}.eml", crafted + b"\r\n%d" % n)
    (root / "收件箱" / "一包邮件.zip").write_bytes(buf.getvalue())
    first = merge(root, as_of=dt.date(2026, 4, 20), now=NOW)
    assert len(ledger_rows(root)) == 1  # one read (and refused: it brings no report); four left, none recorded
    (note,) = [n for n in first.notes if n.code == "mail-deferred"]
    assert "有 4 封结构复杂的邮件本次没有读取" in note.message and not list((root / "退回").glob("*.txt"))[1:]
    again = merge(root, as_of=dt.date(2026, 4, 20), now=NOW)  # the zip is opened again (not remembered as read)
    assert [n.code for n in again.notes].count("mail-deferred") == 1 and len(ledger_rows(root)) == 1


def test_a_report_forwarded_long_after_its_own_mail_was_sent_says_so(tmp_path, reports):
    """Staff forward a unit's mail months later: the report counts from the forward's arrival (the rule), and the
    unit's receipt said 逾期 232 天 with nothing telling staff that the unit had sent it on time. The report says
    when its own mail was sent and how to correct the received time; merge says it aloud."""
    inner = mail({"源汇区三月.xlsx": reports[0]})  # sent on SENT, 2026-04-08 09:30
    outer = EmailMessage()
    outer["Subject"], outer["From"] = "转发：报表", "秘书 <mishu@county.example>"
    outer["Date"] = format_datetime(dt.datetime(2026, 11, 25, 10, 0, tzinfo=BEIJING))
    outer.set_content("转给您")
    outer.add_attachment(inner)
    root = tmp_path / "ws"
    init_workspace(root)
    (root / "收件箱" / "转发.eml").write_bytes(bytes(outer))
    result = merge(root, as_of=dt.date(2026, 11, 26), now=NOW)
    (note,) = [n for n in result.notes if n.code == "forward-earlier"]
    assert "原邮件 2026-04-08 09:30 就已发出" in note.message and "--received-at 2026-04-08" in note.message
    same_day = forwarded(mail({"好.xlsx": reports[1]}))  # forwarded the day it was sent: nothing to say
    assert not [n for s in read_mail(same_day, Path("f.eml"), "f.eml").submissions for n in s.notes
                if n.code == "forward-earlier"]
