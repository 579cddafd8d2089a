"""What arrives, as it arrives: spreadsheets, zips (GBK names from Chinese Windows tools, nested folders), saved
e-mails (.eml). Each spreadsheet inside becomes one submission that remembers where it came from."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import io
import zipfile
from dataclasses import dataclass
from email.utils import parseaddr, parsedate_to_datetime
from pathlib import Path, PurePosixPath
from typing import Iterator

from .issues import Issue
from .validate import SPREADSHEET_SUFFIXES, iter_submissions

MAX_MEMBER_BYTES = 50 * 1024 * 1024
MAX_ZIP_TOTAL = 200 * 1024 * 1024
MAX_RATIO = 200
MAX_DEPTH = 3
CONTAINERS = {".zip", ".eml"}


@dataclass(frozen=True)
class Submission:
    """One spreadsheet to ingest: on disk (data None) or in memory (a zip member, a mail attachment)."""

    path: Path  # what people see: the file, or container/member
    origin: str  # where it came from, kept in the ledger
    data: bytes | None = None
    received_at: dt.datetime | None = None  # a mail's date, when known
    sender: str | None = None  # a mail's From address
    refusal: Issue | None = None  # a member refused before reading (unsafe path, zip bomb)
    member: str | None = None  # a zip member's or attachment's own file name

    @property
    def name(self) -> str:
        return self.member or self.path.name

    def read(self) -> bytes:
        return self.data if self.data is not None else self.path.read_bytes()


def expand(paths: list[Path]) -> Iterator[Submission]:
    """Every submission under the given files and folders, containers opened (nothing extracted to disk)."""
    for path in iter_submissions(paths, extra_suffixes=CONTAINERS):
        suffix = path.suffix.lower()
        if suffix == ".zip":
            yield from _zip(path, path.read_bytes(), str(path), None, None, 0)
        elif suffix == ".eml":
            yield from _eml(path, path.read_bytes(), str(path))
        else:
            yield Submission(path, str(path))


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


def _zip(container: Path, data: bytes, origin: str, received, sender, depth: int) -> Iterator[Submission]:
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
        infos = z.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        yield Submission(container, origin, refusal=Issue.make("file-unreadable", file=container.name,
                                                                  detail=f"压缩包损坏（{type(exc).__name__}）"))
        return
    total = 0
    for info in infos:
        if info.is_dir():
            continue
        name = zip_name(info)
        member = PurePosixPath(name.replace("\\", "/"))
        shown = Path(f"{container}!{name}")
        where = f"{origin}!{name}"
        suffix = member.suffix.lower()
        if suffix not in SPREADSHEET_SUFFIXES | {".zip"} or member.name.startswith("~$"):
            continue
        total += info.file_size
        if _unsafe(name):
            yield Submission(shown, where, received_at=received, sender=sender, member=member.name,
                             refusal=Issue.make("zip-unsafe-path", file=member.name, detail=name))
            continue
        ratio = info.file_size / info.compress_size if info.compress_size else 0
        if info.file_size > MAX_MEMBER_BYTES or total > MAX_ZIP_TOTAL or (ratio > MAX_RATIO and info.file_size > 1 << 20):
            yield Submission(shown, where, received_at=received, sender=sender, member=member.name,
                             refusal=Issue.make("zip-bomb", file=member.name,
                                                detail=f"{name} 解压后 {info.file_size // 1048576} MB"))
            continue
        try:
            body = z.read(info)
        except (zipfile.BadZipFile, OSError, RuntimeError) as exc:  # corrupt, or encrypted (RuntimeError)
            yield Submission(shown, where, received_at=received, sender=sender, member=member.name,
                             refusal=Issue.make("file-unreadable", file=member.name, detail=type(exc).__name__))
            continue
        if suffix == ".zip":
            if depth + 1 < MAX_DEPTH:
                yield from _zip(shown, body, where, received, sender, depth + 1)
            else:
                yield Submission(shown, where, received_at=received, sender=sender, member=member.name,
                                 refusal=Issue.make("zip-bomb", file=member.name, detail=f"压缩包嵌套超过 {MAX_DEPTH} 层"))
            continue
        yield Submission(shown, where, data=body, received_at=received, sender=sender, member=member.name)


def _eml(path: Path, data: bytes, origin: str) -> Iterator[Submission]:
    msg = email.message_from_bytes(data, policy=email.policy.default)
    received = None
    try:
        if msg["Date"]:
            received = parsedate_to_datetime(str(msg["Date"]))
            if received.tzinfo is not None:
                received = received.astimezone().replace(tzinfo=None)
    except (TypeError, ValueError):
        received = None
    sender = parseaddr(str(msg["From"] or ""))[1] or None
    yield from attachments(msg, path, origin, received, sender)


def attachments(msg, container: Path, origin: str, received, sender) -> Iterator[Submission]:
    """Every spreadsheet (or zip) attached to a mail, names decoded from RFC 2047 / RFC 2231."""
    for part in msg.iter_attachments():
        name = (part.get_filename() or "").replace("\\", "/").split("/")[-1].strip()  # a name, never a path
        suffix = PurePosixPath(name).suffix.lower()
        if suffix not in SPREADSHEET_SUFFIXES | {".zip"}:
            continue
        body = part.get_payload(decode=True) or b""
        shown = Path(f"{container}#{name}")
        where = f"{origin}#{name}"
        if suffix == ".zip":
            yield from _zip(shown, body, where, received, sender, 0)
        else:
            yield Submission(shown, where, data=body, received_at=received, sender=sender, member=name)
