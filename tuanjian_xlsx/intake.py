"""What arrives, as it arrives: spreadsheets, zips (GBK names from Chinese Windows tools, nested folders), saved
e-mails (.eml). Each spreadsheet inside becomes one submission that remembers where it came from."""

from __future__ import annotations

import datetime as dt
import functools
import io
import re
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from collections.abc import Callable, Iterator

from .filenames import display_name, undecoded
from .inbox import CONTAINERS, NOT_A_FILE, SPREADSHEET_SUFFIXES, Other, Refused, read_reason, walk
from .issues import Issue, one_line

MAX_MEMBER_BYTES = 50 * 1024 * 1024
MAX_ZIP_TOTAL = 200 * 1024 * 1024
MAX_RATIO = 200
MAX_DEPTH = 3
MAX_MAIL_BYTES = 100 * 1024 * 1024  # a saved mail with a few forms attached is well under a megabyte
MAX_MEMBERS = 500  # a unit zips a few forms; a staff member a folder of a year's files. 1,500 is not a report


@dataclass(frozen=True)
class Submission:
    """One spreadsheet to ingest: on disk, in memory (a mail attachment) or read on demand (a zip member, so a
    large zip is never held in memory whole). `path` and `origin` are what people see; names that are not UTF-8
    on disk are shown decoded (see filenames.display_name)."""

    path: Path  # what people see: the file, or container/member
    origin: str  # where it came from, kept in the ledger
    data: bytes | None = None
    received_at: dt.datetime | None = None  # a mail's date, when known
    sender: str | None = None  # a mail's From address
    refusal: Issue | None = None  # refused before reading (unsafe path, zip bomb, a link leading out, ...)
    member: str | None = None  # a zip member's or attachment's own file name
    loader: Callable[[], bytes] | None = None  # how to get the bytes when they are not on disk nor in `data`
    basis: str | None = None  # what received_at rests on (ledger.RECEIVED_BASES); None: first registration
    notes: tuple = ()  # warnings about how it arrived (a sender's clock that is off), added to its check
    deferred: bool = False  # a mail left for the next run (this run's budget for heavy mails spent): not recorded
    source: Path | None = None  # the file on disk holding it (the path itself for a plain file)

    @property
    def name(self) -> str:
        return display_name(self.member or self.path.name)

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        if self.loader is not None:
            return self.loader()
        return disk_bytes(self.path)


class _TooLarge(Exception):
    def __init__(self, size: int):
        self.size = size


class _NotAFile(Exception):
    pass


def disk_bytes(path: Path) -> bytes:
    """A file's bytes, looked at before they are read: a regular file (a named pipe would hold the run for ever, a
    device give bytes without end), no larger than read.MAX_FILE_BYTES (a 6 GB file would be held in memory whole
    only to be refused) — and never more than that read, should it grow meanwhile."""
    import os
    import stat

    from .read import MAX_FILE_BYTES

    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with open(fd, "rb") as f:  # (a pipe opened without waiting for a writer, only to be told apart)
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _NotAFile()
        if st.st_size > MAX_FILE_BYTES:
            raise _TooLarge(st.st_size)
        return f.read(MAX_FILE_BYTES + 1)


def load(sub: Submission) -> tuple[bytes | None, Issue | None]:
    """A submission's bytes, or why they cannot be had (in Chinese): unreadable on disk, no regular file, too
    large, a zip member damaged (zlib, LZMA, bzip2 errors), with a password, or packed in a way no common tool
    writes."""
    try:
        return sub.read(), None
    except _TooLarge as exc:
        return None, Issue.make("file-too-large", file=sub.name, size=exc.size // 1048576)
    except _NotAFile:
        reason = NOT_A_FILE
    except OSError as exc:
        reason = read_reason(exc) if exc.errno is not None else "压缩包中的文件已损坏，无法解压"
    except NotImplementedError:
        reason = "压缩包使用了不支持的压缩方式，请用常见的 zip 工具重新打包"
    except Exception:  # noqa: BLE001 — BadZipFile, zlib.error, lzma.LZMAError, EOFError, RuntimeError (password)
        reason = "压缩包中的文件已损坏或有密码，无法解压"
    return None, Issue.make("path-refused", file=sub.name, detail=str(sub.path), reason=reason)


def expand(paths: list[Path]) -> Iterator[Submission]:
    """Every submission under the given files and folders, containers opened (nothing extracted to disk); what
    cannot be read is a refused submission, never silence."""
    for path in walk(paths):
        if not isinstance(path, Other):  # (a Word copy, a photo beside a report: merge says so, once)
            yield from expand_one(path)


def expand_one(path: Path | Refused) -> Iterator[Submission]:
    """The submissions of one file `walk` found (a container's several), or the refusal it found. A file whose
    name has no spreadsheet's or container's suffix (one a mail or OA system dropped) is read as what its bytes
    are; one that is none of them (a note) brings nothing."""
    if isinstance(path, Refused):
        shown = Path(display_name(str(path.path)))
        yield Submission(shown, str(shown), refusal=path.issue, source=path.path)
        return
    suffix = path.suffix.lower()
    if suffix not in SPREADSHEET_SUFFIXES | CONTAINERS:
        found = sniffed(path)
        if found is None:
            return
        suffix = found
    shown = Path(display_name(str(path)))
    if suffix == ".zip":
        yield from _zip(shown, _DiskZip(path), str(shown), None, None, 0)
    elif suffix == ".eml":
        try:
            if path.stat().st_size > MAX_MAIL_BYTES:
                yield Submission(shown, str(shown), source=path, refusal=Issue.make(
                    "file-too-large", file=shown.name, size=path.stat().st_size // 1048576))
                return
            data = path.read_bytes()
        except OSError as exc:
            yield _unreadable(shown, path, exc)
            return
        yield from _eml(shown, data, str(shown))
    else:
        yield Submission(shown, str(shown), source=path,
                         loader=None if shown == path else functools.partial(disk_bytes, path))


_MAIL_START = re.compile(rb"(?i)[A-Za-z][\w-]{0,40}:[ \t]")  # a header line first (Apple Mail: Content-Type)
_MAIL_FROM = re.compile(rb"(?im)^from:")


def sniffed(path: Path) -> str | None:
    """What a file without a spreadsheet's or container's suffix is, by its bytes: a workbook (".xlsx", or ".xls"
    for an old one, which is then said), a zip, a saved mail; None for anything else (see `other_kind`)."""
    return _what(path)[0]


def other_kind(path: Path) -> str | None:
    """What a file without a spreadsheet's or container's suffix is when it is none of them — a Word or PowerPoint
    file whose extension was dropped, a note saved without one — as merge names it (inbox.Other); None when it is
    to be read."""
    if path.suffix.lower() in SPREADSHEET_SUFFIXES | CONTAINERS:
        return None
    return _what(path)[1]


def _what(path: Path) -> tuple[str | None, str | None]:
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return ".xlsx", None  # (read as a workbook: the reading says why it cannot be)
    if head.startswith(b"PK\x03\x04"):
        try:
            data = disk_bytes(path)
        except Exception:  # noqa: BLE001 — too large, unreadable: read as a workbook, which says why
            return ".xlsx", None
        if b"xl/workbook.xml" in data:
            return ".xlsx", None
        if b"word/document.xml" in data:
            return None, "Word 文档"
        if b"ppt/presentation.xml" in data:
            return None, "演示文稿"
        return ".zip", None
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        try:
            data = disk_bytes(path)
        except Exception:  # noqa: BLE001
            return ".xls", None
        return (None, "Word 文档") if "WordDocument".encode("utf-16-le") in data else (".xls", None)
    if _MAIL_START.match(head) and _MAIL_FROM.search(head):
        return ".eml", None
    return None, "没有扩展名、也不是表格的文件"


def containers(paths: list[Path]) -> Iterator[Path]:
    """The zips and mails under the given paths (kept in the archive as received)."""
    for path in walk(paths):
        if not isinstance(path, (Refused, Other)) and (path.suffix.lower() in CONTAINERS
                                                       or sniffed(path) in CONTAINERS):
            yield path


def _unreadable(shown: Path, path: Path, exc: OSError) -> Submission:
    return Submission(shown, str(shown), source=path, refusal=Issue.make(
        "path-refused", file=shown.name, detail=str(shown), reason=read_reason(exc)))


class _DiskZip:
    """A zip on disk, opened for reading members one at a time."""

    def __init__(self, path: Path):
        self.path = path

    def open(self) -> zipfile.ZipFile:
        return zipfile.ZipFile(self.path)

    def read_at(self, offset: int, size: int) -> bytes:
        with open(self.path, "rb") as f:
            f.seek(max(offset, 0) if offset >= 0 else max(f.seek(0, 2) + offset, 0))
            return f.read(size)


class _MemoryZip:
    def __init__(self, data: bytes):
        self.data = data

    def open(self) -> zipfile.ZipFile:
        return zipfile.ZipFile(io.BytesIO(self.data))

    def read_at(self, offset: int, size: int) -> bytes:
        start = offset if offset >= 0 else max(len(self.data) + offset, 0)
        return self.data[start:start + size]


MAX_ENTRIES = 4 * MAX_MEMBERS  # entries of a zip's directory, its folders' included
MAX_DIRECTORY_BYTES = MAX_ENTRIES * 512  # the directory itself, whatever count its end record states


def entry_count(source) -> int | None:
    """How many entries a zip's directory says it holds, read from its end record (and ZIP64's) before zipfile
    parses the directory: a zip of a million empty folder entries costs zipfile seconds and half a gigabyte to open,
    and each member read opens it again. None when the end record cannot be found (zipfile then says why)."""
    tail = source.read_at(-(22 + 0xFFFF + 20), 22 + 0xFFFF + 20)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) < at + 22:
        return None
    total = int.from_bytes(tail[at + 10:at + 12], "little")
    if int.from_bytes(tail[at + 12:at + 16], "little") > MAX_DIRECTORY_BYTES:  # zipfile reads the directory by
        return max(total, MAX_ENTRIES + 1)  # its size, not by the count stated beside it: a count can lie
    if total != 0xFFFF or at < 20 or tail[at - 20:at - 16] != b"PK\x06\x07":
        return total
    record = source.read_at(int.from_bytes(tail[at - 12:at - 4], "little"), 56)  # the ZIP64 end record
    return int.from_bytes(record[32:40], "little") if record[:4] == b"PK\x06\x06" else None


_OPEN: list = []  # [(source, its ZipFile)]: the zip whose members are being read, kept open between them


def _member_bytes(source, filename: str) -> bytes:
    """A member's bytes. The zip is opened (its directory parsed) once for all its members, read one after another,
    not once per member; only the last one opened is kept."""
    if not _OPEN or _OPEN[0][0] is not source:
        opened = source.open()  # (a zip inside a zip is opened by reading its outer one, through here)
        release()
        _OPEN.append((source, opened))
    return _OPEN[0][1].read(filename)


def release() -> None:
    """The zip kept open for its members, closed (when a run has read them all)."""
    while _OPEN:
        _OPEN.pop()[1].close()


def zip_name(info: zipfile.ZipInfo) -> str:
    """A member's real name: UTF-8 when flagged; otherwise UTF-8 if the bytes are valid UTF-8 (macOS, 7-Zip write
    it unflagged), else what Chinese Windows tools write (GBK, then GB18030)."""
    if info.flag_bits & 0x800:
        return info.filename
    raw = info.filename.encode("cp437")
    for codec in ("utf-8", "gbk", "gb18030"):
        try:
            return raw.decode(codec)
        except UnicodeDecodeError:
            continue
    return info.filename


def _unsafe(name: str) -> bool:
    p = PurePosixPath(name.replace("\\", "/"))
    return name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in p.parts


def _zip(container: Path, data, origin: str, received, sender, depth: int, mailed: bool = False) -> Iterator[Submission]:
    """The spreadsheets in a zip (bytes, or a zip on disk), each read only when it is needed; the zips and saved
    mails inside opened in turn. One zip brings at most MAX_MEMBERS submissions, however deep they lie in it (the
    zips and mails inside count by what they bring, not themselves): one past it refuses the zip whole, with one
    message, as a flat zip over the limit is — so the zip is gone through before anything of it is yielded (its
    members' bytes are still read only when needed). A zip with nothing to read is said to be one, never silence.
    `mailed`: the zip came attached to a mail (whose sender and arrival stand for what it holds)."""
    found: list[Submission] = []
    skipped: list[str] = []
    for sub in _zip_members(container, data, origin, received, sender, depth, mailed, skipped):
        found.append(sub)
        if len(found) > MAX_MEMBERS:  # refused whole, with one message: not a thousand 退回件
            yield Submission(container, origin, received_at=received, sender=sender, refusal=Issue.make(
                "zip-too-many", file=container.name, count=len(found), limit=MAX_MEMBERS))
            return
    if not found:
        shown = "、".join(skipped[:5]) + (f" 等 {len(skipped)} 个文件" if len(skipped) > 5 else "") if skipped else "空的压缩包"
        found.append(Submission(container, origin, received_at=received, sender=sender, refusal=Issue.make(
            "zip-no-report", file=container.name, detail=shown)))
    yield from found


def _zip_members(container: Path, data, origin: str, received, sender, depth: int, mailed: bool,
                 skipped: list[str]) -> Iterator[Submission]:
    source = data if hasattr(data, "open") else _MemoryZip(data)
    at = dict(received_at=received, sender=sender)
    try:
        entries = entry_count(source)
        if entries is not None and entries > MAX_ENTRIES:  # refused before zipfile reads a directory that large
            yield Submission(container, origin, **at, refusal=Issue.make(
                "zip-too-many", file=container.name, count=entries, limit=MAX_MEMBERS))
            return
        with source.open() as z:
            infos = [i for i in z.infolist() if not i.is_dir()]
    except Exception as exc:  # noqa: BLE001 — a damaged zip, or a nested one that cannot be inflated
        yield Submission(container, origin, **at, refusal=Issue.make(
            "file-unreadable", file=container.name, detail=f"压缩包损坏，无法打开（{_zip_reason(exc)}）"))
        return
    if len(infos) > MAX_MEMBERS:  # refused whole, with one message, whatever its files are
        yield Submission(container, origin, **at, refusal=Issue.make(
            "zip-too-many", file=container.name, count=len(infos), limit=MAX_MEMBERS))
        return
    total = 0
    for info in infos:
        name = zip_name(info)
        member = PurePosixPath(name.replace("\\", "/"))
        shown = Path(f"{container}!{name}")
        where = f"{origin}!{name}"
        suffix = member.suffix.lower()
        if _apple_double(member):  # what a Mac's Finder adds to every zip it makes: no file of the sender's
            continue
        if suffix not in SPREADSHEET_SUFFIXES | CONTAINERS or member.name.startswith("~$"):
            skipped.append(member.name)
            continue
        total += info.file_size
        refused = lambda issue: Submission(shown, where, **at, member=member.name, refusal=issue)  # noqa: E731, B023 — used within this iteration only
        if _unsafe(name):
            yield refused(Issue.make("zip-unsafe-path", file=member.name, detail=name))
            continue
        if info.flag_bits & 0x1:
            yield refused(Issue.make("zip-encrypted", file=member.name, name=name))
            continue
        ratio = info.file_size / info.compress_size if info.compress_size else 0
        if info.file_size > MAX_MEMBER_BYTES or total > MAX_ZIP_TOTAL or (ratio > MAX_RATIO and info.file_size > 1 << 20):
            yield refused(Issue.make("zip-bomb", file=member.name, detail=f"{name} 解压后 {info.file_size // 1048576} MB"))
            continue
        load = functools.partial(_member_bytes, source, info.filename)
        if suffix in CONTAINERS and depth + 1 >= MAX_DEPTH:
            yield refused(Issue.make("zip-bomb", file=member.name, detail=f"压缩包嵌套超过 {MAX_DEPTH} 层"))
        elif suffix == ".zip":
            yield from _zip(shown, _NestedZip(load), where, received, sender, depth + 1, mailed)
        elif suffix == ".eml":
            yield from _zipped_mail(shown, load, where, received, sender, depth + 1, refused, mailed)
        else:
            yield Submission(shown, where, **at, member=member.name, loader=load)


def _apple_double(member: PurePosixPath) -> bool:
    """macOS's resource forks and Finder data (__MACOSX/…, ._name): never a file anyone sent."""
    return member.parts[:1] == ("__MACOSX",) or member.name.startswith("._")


def _zipped_mail(shown: Path, read_member: Callable[[], bytes], where: str, received, sender, depth: int,
                 refused: Callable[[Issue], Submission], mailed: bool) -> Iterator[Submission]:
    """A saved mail inside a zip, opened as one given on its own: its attachments are submissions named
    zip!mail.eml#attachment; its zips lie one level deeper. When the zip came attached to a mail (`mailed`), that
    mail's sender and arrival stand (as for a forward: who sent it to us, and when — never the saved mail's own
    date, which would say it came earlier than it did); otherwise the saved mail's own, as for a loose .eml."""
    data, problem = load(Submission(shown, where, member=shown.name, loader=read_member))
    if problem is not None:
        yield refused(problem)
        return
    assert data is not None  # load gives the bytes whenever it gives no problem
    mail = read_mail(data, shown, where, within=depth)
    subs = mail.submissions or [no_report(shown, mail, origin=where)]
    if mailed:
        subs = [replace(s, received_at=received, sender=sender, basis=None, notes=()) for s in subs]
    yield from subs


class _TooManyFiles(Exception):
    """A mail brings more than MAX_MEMBERS files: `count` so far."""

    def __init__(self, count: int):
        super().__init__(count)
        self.count = count


class _NestedZip:
    """A zip inside a zip: its bytes come from the outer one when it is opened; the last one opened is kept (one
    at a time, so memory stays flat while its members are read one after another)."""

    _last: tuple[object, bytes] | None = None

    def __init__(self, load: Callable[[], bytes]):
        self.load = load

    def open(self) -> zipfile.ZipFile:
        last = _NestedZip._last
        if last is None or last[0] is not self:
            _NestedZip._last = last = (self, self.load())
        return zipfile.ZipFile(io.BytesIO(last[1]))

    def read_at(self, offset: int, size: int) -> bytes:
        last = _NestedZip._last
        if last is None or last[0] is not self:
            _NestedZip._last = last = (self, self.load())
        return _MemoryZip(last[1]).read_at(offset, size)


def _zip_reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno is not None:
        return read_reason(exc)
    return "文件不完整、已损坏或不是 zip 格式"


# --- mail: every header read on its own, so one malformed header never costs the mail or the mailbox ---------

MAX_MAIL_DEPTH = 3  # a forward of a forward of a forward; deeper is refused, not followed
MAX_MAIL_PARTS = 200  # parts looked at in one mail (and its forwards): a report mail has a handful
MAIL_YEARS = (1900, 9998)  # a date outside is no date: 9999 is where a time-zone shift overflows datetime


@dataclass
class MailHead:
    """What a mail's headers say. Absent or unusable headers are None, never an exception."""

    sender: str | None = None  # the From address
    subject: str = ""
    date: dt.datetime | None = None  # the Date header in local time, naive (the sender's computer's clock)
    server_date: dt.datetime | None = None  # the topmost Received: header's time (the mailbox's own server)
    bad_date: str | None = None  # the Date text, when there was one and it is not a date
    problem: str | None = None  # why the mail cannot be taken (Chinese), e.g. a From that is no address
    automatic: str | None = None  # why it is no person's mail (Chinese): it gets no automatic reply (replies.py)


@dataclass
class ParsedMail:
    head: MailHead
    submissions: list[Submission]  # the reports attached; a refused mail has its one refusal here
    refusal: Issue | None = None  # set when the mail as a whole is refused
    others: tuple[str, ...] = ()  # the names of what else was attached (a Word copy of the form, a scan…)


def no_report(shown: Path, mail: ParsedMail, **kw) -> Submission:
    """The one refusal of a mail that brought no report, naming what it did bring."""
    attached = f"；邮件里的附件是 {'、'.join(mail.others[:5])}{' 等' if len(mail.others) > 5 else ''}" if mail.others else ""
    return Submission(shown, kw.pop("origin"), received_at=mail.head.date, sender=mail.head.sender,
                      refusal=Issue.make("mail-no-report", file=shown.name, attached=attached), member=shown.name)


def read_mail(data: bytes, container: Path, origin: str, received: dt.datetime | None = None,
              basis: str | None = None, within: int | None = None) -> ParsedMail:
    """A mail's head and its reports (forwarded mails opened too); a mail that cannot be read is one refusal,
    never an exception. `received` is the arrival the caller knows (IMAP's INTERNALDATE); without it the
    mail's own Date, and with no usable Date None, so the caller's `now` applies as for any file. One mail
    brings at most MAX_MEMBERS files (its zips' included), or it is refused whole (a mail saved inside a zip
    counts in that zip's too, see _zip; `within`: that zip's nesting depth)."""
    import email  # (the email package is loaded when there is a mail: a merge of spreadsheets starts quicker)

    head, problem, too_many, deferred = MailHead(), None, 0, False
    subs: list[Submission] = []
    others: list[str] = []
    try:
        problem = mail_shape(data)
        if problem is not None:
            raise _Unreadable(problem)
        if not _within_budget(data):
            deferred, problem = True, "本次汇总已读过太多结构复杂的邮件，这封留到下次汇总再读"
        if problem is None:
            msg = email.message_from_bytes(data, policy=mail_policy())
            head = read_head(msg)
            problem = head.problem
        if problem is None:
            for sub in attachments(msg, container, origin, _when(received, head), head.sender, within=within,
                                   others=others):
                subs.append(sub)
                if len(subs) > MAX_MEMBERS:
                    raise _TooManyFiles(len(subs))
    except _TooManyFiles as exc:
        too_many, problem = exc.count, "too many"
    except _Unreadable as exc:
        problem = str(exc)
    except Exception:  # noqa: BLE001 — whatever the parser trips on, this mail alone is refused
        problem = "邮件结构损坏，无法读取"
    if basis is None and received is None:
        basis = "server" if head.server_date is not None else "mail-date" if head.date is not None else None
    if problem is None:
        notes = _clock_notes(head, received)
        subs = [replace(s, basis=basis, notes=s.notes + tuple(replace_file(n, s.name) for n in notes))
                if s.received_at is not None else s for s in subs]
        packed = [n for n in others if PurePosixPath(n).suffix.lower() in _OTHER_ARCHIVES]
        if subs and packed:  # a RAR beside the reports may hold other units' reports: said on the first report
            subs[0] = replace(subs[0], notes=subs[0].notes + (Issue.make(
                "mail-archive-skipped", file=subs[0].name, names=packed[:5]),))
        return ParsedMail(head, subs, others=tuple(others))
    shown = container if container.suffix.lower() == ".eml" else container.with_name(container.name + ".eml")
    refusal = Issue.make("mail-too-many", file=shown.name, count=too_many, limit=MAX_MEMBERS) if too_many else \
        Issue.make("mail-unreadable", file=shown.name, detail=problem)
    return ParsedMail(head, [Submission(shown, origin, received_at=_when(received, head), sender=head.sender,
                                        refusal=refusal, member=shown.name, basis=basis, deferred=deferred)], refusal)


MAIL_LINE_WORK = 50_000_000  # one mail: Σ over its lines of the boundaries open around them (≈ 4 s of parsing)
MAIL_LIGHT_WORK = 1_000_000  # a mail this light (nearly every mail: a forward of 30 mails is ~2,000,000) is free;
MAIL_RUN_WORK = 200_000_000  # heavier ones share this much per run, so that a zip of 500 just-allowed ones costs
#                              seconds, not half an hour
_spent = [0]  # the heavy mails' work so far in this run


def mail_budget_reset() -> None:
    """A new run (merge, fetch): the heavy mails' budget full again."""
    _spent[0] = 0


def mail_shape(data: bytes) -> str | None:
    """Why a mail must not be handed to the parser at all (in Chinese), found without parsing it: too large (a mail
    fetched from the mailbox has no file size to look at first), more multiparts than any mail has parts, more
    boundary lines than parts, or more work than parses in a few seconds — Python's parser tests every line against
    every boundary open around it, so one small crafted mail (900 nested multiparts, a million empty lines) would
    hold up the whole merge for minutes, in the main process, where no worker's time limit applies. The work is
    counted by following the boundaries as the parser would (`_boundary_work`); heavy mails share a budget per run
    (a zip of many just-allowed mails)."""
    if len(data) > MAX_MAIL_BYTES:
        return f"邮件过大（{len(data) // 1048576} MB）"
    multiparts = data.lower().count(b"multipart")
    if multiparts > MAX_MAIL_PARTS:
        return f"邮件分段过多或嵌套过深（{multiparts} 个多段结构）"
    if data.count(b"\n--") > 50 * MAX_MAIL_PARTS:
        return f"邮件分段超过 {MAX_MAIL_PARTS} 个"
    if _work(data, multiparts) > MAIL_LINE_WORK:
        _last_work.clear()
        return "邮件分段嵌套过深、行数过多，无法安全读取"
    return None


def _work(data: bytes, multiparts: int | None = None) -> int:
    """`_boundary_work`, or for the usual mail a bound on it that needs no scan (0 when below MAIL_LIGHT_WORK);
    the last mail's kept, as `mail_shape` and `_within_budget` ask it of the same mail in turn."""
    if _last_work and _last_work[0] is data:
        return _last_work[1]
    multiparts = data.lower().count(b"multipart") if multiparts is None else multiparts
    bound = multiparts * data.count(b"\n")
    work = 0 if bound <= MAIL_LIGHT_WORK else _boundary_work(data)
    _last_work[:] = [data, work]
    return work


_last_work: list = []


def _within_budget(data: bytes) -> bool:
    """Whether a mail that passed `mail_shape` may be parsed in this run: a light one always; a heavy one while the
    run's budget lasts (its work then spent). One past it is left for the next run, not refused."""
    work = _work(data)
    _last_work.clear()  # (the mail's bytes not held past its reading)
    if work <= MAIL_LIGHT_WORK:
        return True
    if _spent[0] + work > MAIL_RUN_WORK:
        return False
    _spent[0] += work
    return True


_MULTIPART = re.compile(rb'(?is)content-type:\s*multipart/[^;]*;.*?boundary\s*=\s*(?:"([^"\r\n]*)"|([^\s;]+))')
_RFC822 = re.compile(rb"(?i)content-type:\s*message/(?:rfc822|global)")


def _boundary_work(data: bytes) -> int:
    """Σ over the body lines of the boundaries open around each: the parser's work, found by following the MIME
    structure line by line (headers, multipart boundaries, forwarded mails) without building anything."""
    stack: list[bytes] = []
    work, in_head, head = 0, True, bytearray()
    for line in data.split(b"\n"):
        line = line.rstrip(b"\r")
        if in_head:
            if line.strip():
                if len(head) < 65536:
                    head += line + b"\n"
                continue
            m = _MULTIPART.search(head)
            if m:
                stack.append(b"--" + (m.group(1) if m.group(1) is not None else m.group(2)))
            in_head = bool(not m and _RFC822.search(head))  # a forwarded mail: its own head follows
            head = bytearray()
            continue
        work += len(stack)
        if stack and line.startswith(b"--"):
            for k in range(len(stack) - 1, -1, -1):
                b = stack[k]
                if line.startswith(b) and (len(line) == len(b) or line[len(b):].strip() in (b"", b"--")):
                    del stack[k + 1:]
                    if line[len(b):].strip() == b"--":  # its end: the multipart is closed
                        stack.pop()
                    else:  # a new part of it: its head follows
                        in_head = True
                    break
    return work


def mail_policy():
    """email.policy.default for reading one mail, each header parsed once: the default policy parses a header
    again at every look (a part's Content-Type some ten times as the parser and attachments() ask for its type,
    parameters and file name), which made reading a mail cost more than checking the workbook it carries. The
    parsed headers are kept for this mail only (a fresh policy per mail), at most _HEADERS_KEPT of them, each at
    most _HEADER_KEPT_CHARS long: a crafted mail cannot make it hold more than the parser would make anyway."""
    import email.policy

    return email.policy.default.clone(header_factory=_OnceParsed())


class _OnceParsed:
    """A header factory (email.headerregistry.HeaderRegistry's) that gives the header it made before for the same
    name and text: parsed headers are immutable, so the same object serves every look."""

    def __init__(self):
        import email.headerregistry

        self.registry = email.headerregistry.HeaderRegistry()
        self.kept: dict[tuple[str, str], object] = {}

    def __getitem__(self, name: str):  # the header class for a name (asked when a header is set)
        return self.registry[name]

    def __call__(self, name: str, value: str):
        made = self.kept.get((name, value))
        if made is None:
            made = self.registry(name, value)
            if len(self.kept) < _HEADERS_KEPT and len(value) <= _HEADER_KEPT_CHARS:
                self.kept[(name, value)] = made
        return made


_HEADERS_KEPT = 256
_HEADER_KEPT_CHARS = 4096


def _when(received: dt.datetime | None, head: MailHead) -> dt.datetime | None:
    """The arrival: what the caller knows (IMAP), else the receiving server's stamp, else the sender's Date."""
    if received is not None:
        return received
    return head.server_date if head.server_date is not None else head.date


CLOCK_TOLERANCE = dt.timedelta(days=1)


def _clock_notes(head: MailHead, received: dt.datetime | None) -> list[Issue]:
    """A Date more than a day from the server's time: the sender's computer clock is probably wrong."""
    server = received if received is not None else head.server_date
    if server is None or head.date is None or abs(head.date - server) <= CLOCK_TOLERANCE:
        return []
    return [Issue.make("mail-clock", date=f"{head.date:%Y-%m-%d %H:%M}", server=f"{server:%Y-%m-%d %H:%M}")]


def replace_file(issue: Issue, name: str) -> Issue:
    return replace(issue, file=name)


_RECEIVED_COMMENT = re.compile(r"\([^()]*\)")


def received_date(raw: str) -> dt.datetime | None:
    """The time a Received: header was stamped (after its last ';', comments such as "(CST)" dropped); None
    when it holds no date."""
    if ";" not in raw:
        return None
    text = _RECEIVED_COMMENT.sub(" ", raw.rsplit(";", 1)[1]).strip()
    return mail_date(" ".join(text.split())) if text else None


def read_head(msg) -> MailHead:
    """Sender, subject and date, each header guarded on its own (the email package raises on access for
    some malformed headers, e.g. `From: <a@[>` or `Message-ID: <>`)."""
    head = MailHead(subject=_subject(msg))
    raw_from = _raw_header(msg, "From")
    if raw_from:
        head.sender = _sender(msg, raw_from)
        if head.sender is None:
            head.problem = f"发件人“{_clip(raw_from)}”不是有效的邮箱地址"
    raw_date = _raw_header(msg, "Date")
    if raw_date:
        head.date = mail_date(raw_date)
        if head.date is None:
            head.bad_date = _clip(raw_date)
    top = _raw_header(msg, "Received")  # the first is the topmost: stamped by our own mailbox's server
    if top:
        head.server_date = received_date(top)
    head.automatic = _automatic(msg)
    return head


def _automatic(msg) -> str | None:
    """Why a mail was sent by a machine (RFC 3834: Auto-Submitted other than "no"; Precedence bulk, junk or list;
    a delivery report), in Chinese; None for a person's mail. Answering such mail by itself could loop for ever."""
    auto = (_raw_header(msg, "Auto-Submitted") or "").split(";")[0].strip()
    if auto and auto.lower() != "no":
        return f"来信是自动发送的（Auto-Submitted: {_clip(auto, 30)}）"
    precedence = (_raw_header(msg, "Precedence") or "").strip().lower()
    if precedence in ("bulk", "junk", "list"):
        return f"来信是群发或自动发送的（Precedence: {precedence}）"
    try:
        report = msg.get_content_type() == "multipart/report"
    except Exception:  # noqa: BLE001 — a Content-Type the parser trips on: not a report
        report = False
    return "来信是退信或回执通知" if report or bounce(msg) else None


_DAEMONS = re.compile(r"(?i)^(?:mailer-daemon|postmaster|mail-daemon|mailerdaemon)@")


def bounce(msg) -> bool:
    """A bounce written otherwise than as a delivery report (RFC 3464): the null sender every bounce must carry
    (Return-Path: <>, RFC 5321 4.5.5), or a mailer daemon or postmaster in From. What it carries back is a mail
    we sent (a 退回件, a blank form), never a submission."""
    if (_raw_header(msg, "Return-Path") or "").replace(" ", "") == "<>":
        return True
    raw = _raw_header(msg, "From") or ""
    m = re.search(r"<([^<>]*)>", raw)
    return bool(_DAEMONS.match((m.group(1) if m else raw).strip()))


def message_id(msg) -> str | None:
    """The Message-ID as the email package renders it (so keys stay those of earlier runs); None when absent,
    empty (`<>`) or unreadable, and the caller keys the mail otherwise."""
    try:
        value = msg["Message-ID"]
        text = _text(str(value)).strip() if value is not None else ""
    except Exception:  # noqa: BLE001 — the header parser raises on some malformed ids
        return None
    return text if text.strip("<> \t") and len(text) <= 500 else None


def mail_date(text: str) -> dt.datetime | None:
    """An RFC 5322 date as local naive time; None for anything else (parsedate_to_datetime raises ValueError,
    TypeError, OverflowError or IndexError on odd input, and a year like 9999 overflows the time-zone shift)."""
    from email.utils import parsedate_to_datetime

    if "cst" in text.lower() and not _NUMERIC_ZONE.search(text):  # China Standard Time, as Java and Chinese servers write it
        text = _CST.sub("+0800", text)  # (Python takes CST for US Central Time, 14 hours behind)
    try:
        parsed = parsedate_to_datetime(text)
    except Exception:  # noqa: BLE001
        return None
    if parsed.tzinfo is None and _UNKNOWN_ZONE.search(text):  # "-0000": the time is UTC, the sender's zone unknown
        parsed = parsed.replace(tzinfo=dt.timezone.utc)  # (RFC 5322 3.3; Python leaves it without a zone)
    return local_time(parsed)


_UNKNOWN_ZONE = re.compile(r"-0000(?![0-9])")
_NUMERIC_ZONE = re.compile(r"[+-]\d{4}(?![0-9])")
_CST = re.compile(r"(?i)\bCST\b")


def local_time(value: dt.datetime) -> dt.datetime | None:
    """A mail's time as the committee's naive wall-clock time (clock.py), or None when its year is outside MAIL_YEARS
    or it cannot convert."""
    from . import clock

    if not MAIL_YEARS[0] <= value.year <= MAIL_YEARS[1]:  # checked first: the shift itself can overflow
        return None
    if value.tzinfo is not None:
        try:
            value = clock.local(value)
        except (OverflowError, ValueError, OSError):  # OSError: Windows' localtime before 1970
            return None
    return value if MAIL_YEARS[0] <= value.year <= MAIL_YEARS[1] else None


def _raw_header(msg, name: str) -> str | None:
    """A header's text as sent, unfolded, without the email package's parsing (which can raise)."""
    for key, value in msg.raw_items():
        if key.lower() == name.lower():
            return " ".join(str(value).split())
    return None


def _sender(msg, raw: str) -> str | None:
    from email.utils import parseaddr

    candidates = []
    try:
        candidates += [a.addr_spec for a in msg["From"].addresses]
    except Exception:  # noqa: BLE001 — e.g. IndexError on `From: "`, AttributeError on `From: <a@[>`
        pass
    try:
        candidates.append(parseaddr(raw)[1])
    except Exception:  # noqa: BLE001
        pass
    return next((_text(a) for a in candidates if _is_address(a)), None)


def _is_address(addr: str) -> bool:
    """local@domain, the domain a dotted name or an [address literal]: enough to tell an address from junk."""
    local, at, domain = (addr or "").rpartition("@")
    if not at or not local or not domain or any(c.isspace() for c in domain):
        return False
    if not (local.startswith('"') and local.endswith('"') and len(local) > 1) and (
            any(c in '<>()[]\\,;:@"' or c.isspace() for c in local)):
        return False
    if domain.startswith("["):  # [192.0.2.1], [IPv6:2001:db8::1]
        return domain.endswith("]") and len(domain) > 2 and all(c.isalnum() or c in ".:-" for c in domain[1:-1])
    return all(label and all(c.isalnum() or c in "-_" for c in label) for label in domain.split("."))


def _subject(msg) -> str:
    raw = _raw_header(msg, "Subject")
    if raw is None:
        return ""
    if not _has_raw_bytes(raw):  # RFC 2047 words: the email package decodes them
        try:
            return _text(str(msg["Subject"]))
        except Exception:  # noqa: BLE001
            pass
    return _text(raw)


def _has_raw_bytes(text: str) -> bool:
    return any("\udc80" <= c <= "\udcff" for c in text)


def _text(text: str) -> str:
    """Undecoded 8-bit bytes (kept as surrogates by the parser) decoded as UTF-8, else GB18030 as Chinese
    mailers send them, so no lone surrogate reaches the ledger."""
    return undecoded(text, ("utf-8", "gb18030"))


def _clip(text: str, limit: int = 60) -> str:
    text = _text(text)
    return text if len(text) <= limit else text[:limit] + "…"


class _Unreadable(Exception):
    """A mail too deep or too large to open; its text is the Chinese reason."""


def _eml(path: Path, data: bytes, origin: str) -> Iterator[Submission]:
    # A saved mail's received time is its Date; with no usable Date it is None and the caller's `now` applies,
    # as for a mail without a Date. A mail with no report attached is refused, so it is not silently nothing.
    mail = read_mail(data, path, origin)
    if not mail.submissions:
        yield no_report(path, mail, origin=origin)
    yield from mail.submissions


def attachments(msg, container: Path, origin: str, received, sender, depth: int = 0,
                budget: list[int] | None = None, within: int | None = None,
                others: list[str] | None = None) -> Iterator[Submission]:
    """Every spreadsheet (or zip) in a mail, names decoded from RFC 2047 / RFC 2231; forwarded mails
    (message/rfc822 parts, attached .eml files) opened in turn, MAX_MAIL_DEPTH deep. A forward keeps the
    outer mail's sender and time: that is who sent it to us, and when it arrived. The zips of a mail saved in a
    zip (`within`: that zip's nesting depth) lie a level deeper."""
    budget = budget if budget is not None else [MAX_MAIL_PARTS]
    # a delivery report carries back a mail we sent (a template, say): never a submission
    bounced = msg.get_content_type() == "multipart/report" or (depth == 0 and bounce(msg))
    forwards = unnamed = 0
    for part in _leaves(msg, budget):
        name = _part_name(part).replace("\\", "/").split("/")[-1].strip()  # a name, never a path
        suffix = PurePosixPath(name).suffix.lower()
        if part.get_content_type() == "message/rfc822" or suffix == ".eml":
            if bounced:
                continue
            forwards += 1
            name = name or f"转发邮件{forwards}.eml"
            shown, where = Path(f"{container}#{name}"), f"{origin}#{name}"
            inner = _inner_mail(part)
            if depth + 1 > MAX_MAIL_DEPTH or inner is None:
                detail = f"转发邮件嵌套超过 {MAX_MAIL_DEPTH} 层" if inner is not None else "转发的邮件无法读取"
                yield Submission(shown, where, received_at=received, sender=sender, member=name,
                                 refusal=Issue.make("mail-unreadable", file=name, detail=detail))
                continue
            sent = _sent_before(inner, received)
            for sub in attachments(inner, shown, where, received, sender, depth + 1, budget, within, others):
                yield replace(sub, notes=sub.notes + (Issue.make(  # staff forwarding a unit's mail late
                    "forward-earlier", file=sub.name, sent=f"{sent:%Y-%m-%d %H:%M}", day=f"{sent:%Y-%m-%d}"),)) \
                    if sent is not None and sub.refusal is None else sub
            continue
        if part.get_content_type() == "application/ms-tnef" or name.lower() == "winmail.dat":
            # Outlook's own packing of the attachments (rich text mail): the reports are in it, not readable here
            name = name or "winmail.dat"
            yield Submission(Path(f"{container}#{name}"), f"{origin}#{name}", received_at=received, sender=sender,
                             member=name, refusal=Issue.make("mail-winmail", file=name))
            continue
        body = None
        if suffix not in SPREADSHEET_SUFFIXES | {".zip"}:
            body = part.get_payload(decode=True) or b""
            guessed = _suffix_by_content(part, suffix, body)
            if guessed is None:  # (a mail's own text and pictures have no name: not listed)
                if name and others is not None:
                    others.append(one_line(name, 40))
                continue
            unnamed += not name
            name, suffix = (name or f"附件{unnamed}") + guessed, guessed  # (a report whose name a mailer dropped)
        if body is None:
            body = part.get_payload(decode=True) or b""
        shown = Path(f"{container}#{name}")
        where = f"{origin}#{name}"
        if suffix == ".zip" and within is not None and within + 1 >= MAX_DEPTH:
            yield Submission(shown, where, received_at=received, sender=sender, member=name, refusal=Issue.make(
                "zip-bomb", file=name, detail=f"压缩包嵌套超过 {MAX_DEPTH} 层"))
        elif suffix == ".zip":
            yield from _zip(shown, body, where, received, sender, within + 1 if within is not None else 0, mailed=True)
        else:
            yield Submission(shown, where, data=body, received_at=received, sender=sender, member=name)


_SPREADSHEET_TYPES = {"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
                      "application/vnd.ms-excel": ".xls", "application/vnd.ms-excel.sheet.macroenabled.12": ".xlsm",
                      "application/vnd.oasis.opendocument.spreadsheet": ".ods", "application/zip": ".zip",
                      "application/x-zip-compressed": ".zip"}


def _suffix_by_content(part, suffix: str, body: bytes) -> str | None:
    """The suffix an attachment without a real one (its name dropped by a mailer or an OA system, or cut short) is
    read under: by its declared type, else — sent as just bytes — by what its bytes are; None for a named file of
    another kind (a .docx, a .jpg) and for anything that is no spreadsheet or zip."""
    if re.fullmatch(r"\.[A-Za-z][A-Za-z0-9]{0,5}", suffix):
        return None
    declared = _SPREADSHEET_TYPES.get(part.get_content_type())
    if declared is not None:
        return declared
    if part.get_content_type() != "application/octet-stream":
        return None
    if body.startswith(b"PK\x03\x04"):
        return ".xlsx" if b"xl/workbook.xml" in body else ".zip"
    return ".xls" if body.startswith(b"\xd0\xcf\x11\xe0") else None


def _part_name(part) -> str:
    """An attachment's file name. Raw 8-bit bytes in the header (older Foxmail, Outlook and OA systems send GBK so)
    the strict parser turns into replacement marks: read from the header as sent and decoded as Chinese mailers
    mean them. When the strict parser trips on the header (a NUL in an RFC 2231 value, say), the lenient compat32
    reading of the same header text, so one odd part does not cost the mail."""
    import email.message

    name: str | None
    try:
        name = part.get_filename() or ""
        if "\ufffd" not in name:
            return name
    except Exception:  # noqa: BLE001
        name = None
    for header, key in (("Content-Disposition", "filename"), ("Content-Type", "name")):
        raw = _raw_header(part, header)
        m = _RAW_PARAMS[key].search(raw) if raw is not None and _UNDECODED.search(raw) else None
        if m is not None:
            return _text(m.group(1) if m.group(1) is not None else m.group(2)).strip()
        decoded = _chinese_name(raw, key) if raw is not None else None
        if decoded:
            return decoded
    if name is not None:
        return name
    lenient = email.message.Message()
    for header in ("Content-Disposition", "Content-Type"):
        raw = _raw_header(part, header)
        if raw is not None:
            lenient[header] = raw
    return _text(lenient.get_filename() or "")


_UNDECODED = re.compile("[\udc80-\udcff]")
_OTHER_ARCHIVES = {".rar", ".7z", ".tar", ".gz", ".tgz", ".bz2", ".xz", ".cab"}
_GB = {"gb2312", "gbk", "x-gbk", "cp936", "gb18030", "euc-cn", "x-euc-cn"}  # all read as GB18030, their superset
_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")


def _chinese_name(raw: str, key: str) -> str | None:
    """A file name the email package could not decode whole, decoded as Chinese mailers mean it: RFC 2047 words
    or RFC 2231 pieces labelled gb2312 (Outlook's label for GBK text: 李喆 has a character GB2312 lacks), their
    bytes joined before decoding (a character may be split between two words or pieces); None if none apply."""
    import base64
    import binascii
    import quopri
    from urllib.parse import unquote_to_bytes

    pieces = sorted((int(n or 0), v) for n, v in re.findall(rf'(?i)(?:^|;)\s*{key}\*(?:(\d+)\*?)?\s*=\s*"?([^";]*)', raw))
    if pieces:
        first = pieces[0][1]
        charset, _, first = first.partition("'") if "'" in first else ("", "", first)
        first = first.partition("'")[2] if "'" in first else first
        if charset.lower() not in _GB:
            return None
        data = b"".join(unquote_to_bytes(v) for v in [first, *(v for _, v in pieces[1:])])
        return data.decode("gb18030", "replace").strip() or None
    m = _RAW_PARAMS[key].search(raw)
    value = (m.group(1) if m.group(1) is not None else m.group(2)) if m else ""
    words = list(_WORD.finditer(value))
    if not words or any(w.group(1).lower() not in _GB for w in words):
        return None
    out, data, end = [], b"", 0  # the text between words kept; words next to each other joined (RFC 2047 6.2)
    for w in words:
        gap = value[end:w.start()]
        if gap.strip() or not data:
            out.append(data.decode("gb18030", "replace") + gap)
            data = b""
        try:
            t = w.group(3)
            data += base64.b64decode(t + "=" * (-len(t) % 4)) if w.group(2) in "bB" else \
                quopri.decodestring(t.replace("_", " ").encode("ascii"))
        except (binascii.Error, ValueError):
            return None
        end = w.end()
    out.append(data.decode("gb18030", "replace") + value[end:])
    return "".join(out).strip() or None
_RAW_PARAMS = {key: re.compile(r'(?i)(?:^|;)\s*' + key + r'\s*=\s*(?:"([^"]*)"|([^;\s]+))') for key in ("filename", "name")}


def _leaves(msg, budget: list[int], level: int = 0):
    """The parts of a mail that are not multiparts, in order, forwarded mails not opened; at most budget[0]."""
    if level > 20:
        raise _Unreadable("邮件分段嵌套过深")
    if msg.get_content_maintype() == "multipart":
        payload = msg.get_payload()
        for sub in payload if isinstance(payload, list) else []:
            yield from _leaves(sub, budget, level + 1)
        return
    budget[0] -= 1
    if budget[0] < 0:
        raise _Unreadable(f"邮件分段超过 {MAX_MAIL_PARTS} 个")
    yield msg


def _sent_before(inner, received: dt.datetime | None) -> dt.datetime | None:
    """When a forwarded mail was itself sent, if that was more than a day before the forward arrived (its files
    count from the forward's arrival, which may make a unit that reported on time late)."""
    if received is None:
        return None
    try:
        sent = read_head(inner).date
    except Exception:  # noqa: BLE001 — a forwarded mail's head the parser trips on: nothing to say
        return None
    return sent if sent is not None and received - sent > dt.timedelta(days=1) else None


def _inner_mail(part):
    """The mail inside a message/rfc822 part or an attached .eml, or None when there is none to read."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload:
        return payload[0]
    import email

    data = part.get_payload(decode=True)
    return email.message_from_bytes(data, policy=part.policy) if data else None
