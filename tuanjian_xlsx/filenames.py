"""File names, both ways: names we write (Windows-safe, short enough for any file system, one per unit whatever
the units are called) and names we read (a name that is not UTF-8 on disk still shows as readable Chinese)."""

from __future__ import annotations

import hashlib
import os
import re

from .issues import one_line

_WINDOWS_FORBIDDEN = re.compile(r'[\\/:*?"<>|\x00-\x1f]')
# NAME_MAX is 255 bytes on Linux/macOS (UTF-8: a Chinese character is 3 bytes) and 255 UTF-16 units on Windows;
# stems stay well below both, leaving room for a suffix such as "_2", the extension and a temporary prefix.
MAX_STEM_BYTES = 180
_SURROGATES = re.compile("[\udc80-\udcff]")


def safe_filename(name: str, max_bytes: int = MAX_STEM_BYTES) -> str:
    """A file name stem Windows accepts and every file system holds: forbidden characters become _, no trailing
    dots or spaces, at most `max_bytes` in UTF-8. Whenever the name had to change, a short hash of the original
    is appended, so two different names never come out the same ("单位*" and "单位?" stay apart)."""
    name = display_name(name)
    safe = _WINDOWS_FORBIDDEN.sub("_", name).rstrip(". ") or "_"
    if safe == name and len(safe.encode("utf-8")) <= max_bytes:
        return safe
    tag = "_" + hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:6]
    return _cut(safe, max_bytes - len(tag)).rstrip(". ") + tag


def _cut(text: str, max_bytes: int) -> str:
    """The longest prefix of `text` that fits in `max_bytes` of UTF-8, never splitting a character."""
    data = text.encode("utf-8")
    return data[:max(max_bytes, 0)].decode("utf-8", "ignore")


def display_name(name: str) -> str:
    """A name as a person should read it. A file name that is not UTF-8 on disk (GBK bytes unpacked by a tool
    that did not convert them) reaches Python with surrogate escapes, which can be neither printed nor stored;
    its bytes are decoded as Chinese Windows wrote them (GBK, then GB18030), else shown with replacement marks."""
    name = str(name)
    if _SURROGATES.search(name):
        name = os.sep.join(_component(part) for part in name.split(os.sep))  # each folder in its own encoding
    return one_line(name)  # (a line break or ESC in an attachment's name shown, never acted on by a console)


def _component(part: str) -> str:
    return undecoded(part, ("gbk", "gb18030"))


def undecoded(text: str, codecs: tuple[str, ...]) -> str:
    """Text holding undecoded bytes (surrogate escapes, as Python keeps bytes it could not decode) decoded with
    the first codec that reads them all, else with replacement marks; text without them as it is."""
    if not _SURROGATES.search(text):
        return text
    raw = text.encode("utf-8", "surrogateescape")
    for codec in codecs:
        try:
            return raw.decode(codec)
        except UnicodeDecodeError:
            continue
    return raw.decode("utf-8", "replace")
