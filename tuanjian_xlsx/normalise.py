"""Turning what people type into typed values: numbers with units, full-width digits, dates in every local
spelling, choices with stray spaces. Every change is reported as a warning; nothing is changed silently.

Which reader a field uses is its type's entry in `fieldtypes`.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from typing import TypedDict

from .issues import Issue
from .periods import Period, excel_serial, parse_period, parse_period_kept



class Place(TypedDict, total=False):
    """Where a value was read: the Issue.make keywords that locate it."""

    file: str | None
    sheet: str | None
    cell: str | None
    field: str | None


# Measure words a number may carry ("5人", "3 次"): read as the number, with a warning
UNIT_WORDS = ("人次", "人", "次", "个", "名", "位", "篇", "家", "所", "场", "项")
_NUMBER = re.compile(rf"^([+-]?\d+(?:\.\d+)?)(?:{'|'.join(UNIT_WORDS)})?$")
_GROUPED = re.compile(rf"^[+-]?\d{{1,3}}(?:,\d{{3}})+(?:\.\d+)?(?:{'|'.join(UNIT_WORDS)})?$")
_SPACED_DIGITS = re.compile(r"\d\s+\d")
# What may follow a typed date and is dropped: a weekday, a time of day, in any order (2026-4-3 上午,
# 2026/4/3 10:30, 2026年4月3日 星期五, 4月3日（周五）下午3点半)
_DATE_TAIL = (r"(?:[\s,，]*(?:[(（]?(?:星期|周|礼拜)[一二三四五六日天1-7][)）]?|上午|下午|中午|晚上|早上|早晨|凌晨|傍晚"
              r"|\d{1,2}\s*[:：]\s*\d{2}(?:\s*[:：]\s*\d{2})?|\d{1,2}\s*[点时](?:\s*(?:\d{1,2}\s*分?|半))?)){0,4}\s*$")
DATE_CHARS = 40  # the longest date as typed (2026年12月31日（星期四）下午3点30分); longer text is no date and is not
#                  matched at all (the tail's alternatives could otherwise backtrack without end: 1点1点1…)
# 2026-4-3, 2026年4月3日, 2026.4.3, 26年4月3日 (two digits of a year only before 年), 2026年4月3号; with spaces between
_FULL_DATE = re.compile(r"^(\d{4}|\d{2}(?=\s*年))\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*[日号]?" + _DATE_TAIL)
_SHORT_DATE = re.compile(r"^(\d{1,2})\s*[月/.-]\s*(\d{1,2})\s*[日号]?" + _DATE_TAIL)
_COMPACT_DATE = re.compile(r"^((?:19|20)\d{2})(\d{2})(\d{2})" + _DATE_TAIL)  # 20260403
_EPOCH = dt.date(1899, 12, 30)
MAX_SERIAL = 2958465  # 9999-12-31


def fold(text: str) -> str:
    """Width-fold (NFKC: full-width digits, letters, spaces) and drop every space and invisible character."""
    return _SPACES.sub("", visible(unicodedata.normalize("NFKC", text)))


def visible(text: str) -> str:
    """The text without its invisible formatting characters (Unicode's Cf: a zero-width space, a byte-order mark,
    a direction mark or a soft hyphen pasted along), which no one typed on purpose."""
    return text if text.isascii() else "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


_SPACES = re.compile(r"\s+")


def is_blank(raw) -> bool:
    """Empty, or only spaces (str.strip also removes the full-width space)."""
    return raw is None or (isinstance(raw, str) and not raw.strip())


def _show(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, dt.datetime):
        return v.date().isoformat() if v.time() == dt.time() else v.isoformat(sep=" ")
    return str(v)


EXCEL_CELL_CHARS = 32767  # what one Excel cell holds; the master (XlsxWriter) keeps only that much


def as_text(raw, at: Place) -> tuple[str | None, list[Issue]]:
    if is_blank(raw):
        return None, []
    text = _show(raw).strip()
    if len(text) > EXCEL_CELL_CHARS:  # kept whole in the ledger; the master can show only the beginning
        return text, [Issue.make("text-cut", length=len(text), **at)]
    return text, []


_CN_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_CN_POWERS = {"十": 10, "百": 100, "千": 1000}
_CN_NUMERAL = re.compile(rf"^[{''.join(_CN_DIGITS)}{''.join(_CN_POWERS)}万]+$")
_VAGUE = re.compile(r"余|多|几|若干|左右|上下|约|近|来|以上|以下|大概|大约")


def chinese_number(text: str) -> int | None:
    """十五 -> 15, 二十三 -> 23, 一百零二 -> 102, 两 -> 2, 两千零五 -> 2005, 一万二千 -> 12000; a last digit right after
    百, 千 or 万 stands for the next place down, as everyone says it: 一百二 -> 120, 三千五 -> 3500, 一万二 -> 12000
    (一百零二 is 102). None if it is not a plain Chinese numeral."""
    if not text or not _CN_NUMERAL.match(text):
        return None
    if (text[0] in "百千" and text[1:] not in ("", "万")) or (text[0] == "万" and len(text) > 2) or text.count("万") > 1:
        return None  # 百八十 ("a hundred or so"), 万万: no exact count (万五 is 15000, as 一万五; 百万 is one)
    total = section = digit = 0
    seen_digit = False
    place = 1  # what the character before a digit makes of it: the place below 百/千/万 right before it, else 1
    last = 10000  # the place last written in this section of the number (each must be lower than the one before)
    for ch in text:
        if ch in _CN_DIGITS:
            if seen_digit and _CN_DIGITS[ch] != 0 and digit != 0:
                return None  # 三五: two digits in a row is a range, not a number
            digit, seen_digit = _CN_DIGITS[ch], True
            if digit == 0:
                place = 1  # 一百零二: the 零 says the next digit is units
        elif ch in _CN_POWERS:
            power = _CN_POWERS[ch]
            if section and (power >= last or (not seen_digit and power != 10)):
                return None  # 五十百, 三千百: places that do not fall in turn, or one without its digit: no number
            section += (digit if seen_digit else 1) * power
            digit, seen_digit = 0, False
            place, last = power // 10, power
        else:  # 万 (alone at the start: one 万, as 百 and 千 are one)
            total += (section + digit or (0 if total or seen_digit else 1)) * 10000
            section = digit = 0
            seen_digit = False
            place, last = 1000, 10000
    return total + section + digit * (place if seen_digit and digit else 1)


def _strip_unit(text: str) -> str:
    for word in UNIT_WORDS:
        if text.endswith(word) and len(text) > len(word):
            return text[: -len(word)]
    return text


def as_number(raw, at: Place, whole: bool, signed: bool = False,
              limit: float | None = None) -> tuple[float | int | None, list[Issue]]:
    """5, 5.0, '5', '５人', '3 次', '十五人', '两' -> the number (text with a warning); vague amounts (三十余人, 十几,
    若干) are refused, asking for an exact number; negatives (unless `signed`), fractions and numbers further from
    0 than `limit` (a phone number pasted, extra zeros) are errors."""
    if is_blank(raw):
        return None, []
    warn: list[Issue] = []
    if isinstance(raw, (bool, dt.date, dt.datetime)):
        return None, [Issue.make("not-a-number", value=_show(raw), **at)]
    if isinstance(raw, (int, float)):
        value = float(raw)
        if not math.isfinite(value):  # NaN or ∞ written into the file: no count (NaN passes every comparison below)
            return None, [Issue.make("not-a-number", value=_show(raw), **at)]
    else:
        text = fold(str(raw))
        if _GROUPED.match(text) and "，" not in str(raw):  # 1,200: the thousands written apart (a Chinese comma
            text = text.replace(",", "")                     # parts two counts: 35，120 is no 35120)
        elif _SPACED_DIGITS.search(visible(unicodedata.normalize("NFKC", str(raw)))):  # 15 20: two numbers
            return None, [Issue.make("not-a-number", value=_show(raw), **at)]
        m = _NUMBER.match(text)
        spoken = None if m else chinese_number(_strip_unit(text))
        if m is not None:
            value = float(m.group(1))
        elif spoken is not None:
            value = float(spoken)
        else:
            code = "vague-number" if _VAGUE.search(text) else "not-a-number"
            return None, [Issue.make(code, value=_show(raw), **at)]
        warn.append(Issue.make("normalised-number", value=_show(value), raw=raw, **at))
    if value < 0 and not signed:
        return None, [Issue.make("negative", value=_show(value), **at)]
    if limit is not None and abs(value) > limit:
        return None, [Issue.make("number-too-large", value=_show(raw), limit=_big(limit), **at)]
    if whole:
        if not value.is_integer():
            return None, [Issue.make("not-an-integer", value=_show(raw), **at)]
        return int(value), warn
    return (int(value) if value.is_integer() else value), warn


def _big(n: float) -> str:
    """1000000 -> 100 万, 100000000 -> 1 亿."""
    return f"{n / 1e8:g} 亿" if n >= 1e8 else f"{n / 1e4:g} 万"


def as_date(raw, at: Place, period: Period | None) -> tuple[dt.date | None, list[Issue]]:
    """Date cells, Excel serials, and typed 2020年7月3日 / 2020.7.3 / 2020/7/3 / 7月3日 (year from the period), in
    Chinese numerals too (七月三日, 二〇二〇年七月三日)."""
    if is_blank(raw):
        return None, []
    if isinstance(raw, dt.datetime):
        return raw.date(), []
    if isinstance(raw, dt.date):
        return raw, []
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        if 1 <= raw <= MAX_SERIAL:
            day = _EPOCH + dt.timedelta(days=int(raw))
            return day, [Issue.make("normalised-date", value=day.isoformat(), raw=_show(raw), **at)]
        m = _COMPACT_DATE.match(_show(raw))  # 20260403 typed in a General cell: a number
        compact = _safe_date(int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None
        if compact is not None:
            return compact, [Issue.make("normalised-date", value=compact.isoformat(), raw=_show(raw), **at)]
        return None, [Issue.make("bad-date", value=_show(raw), **at)]
    # spaces kept (one each): they part a date from its time, which folding them away ran together (4/3 10:30)
    text = _SPACES.sub(" ", visible(unicodedata.normalize("NFKC", str(raw)))).strip()
    if len(text) > DATE_CHARS:
        return None, [Issue.make("bad-date", value=_show(raw), **at)]
    text = _arabic_date(text)
    value: dt.date | None = None
    m = _FULL_DATE.match(text) or _COMPACT_DATE.match(text)
    if m:
        year = int(m.group(1))
        value = _safe_date(year + 2000 if year < 100 else year, int(m.group(2)), int(m.group(3)))
    else:
        m = _SHORT_DATE.match(text)
        if m and period is not None:
            value = _safe_date(period.year, int(m.group(1)), int(m.group(2)))
            later = _safe_date(period.year + 1, int(m.group(1)), int(m.group(2)))
            # 1月8日 on a Q4 or December form is the next January, filled after the period
            if value and later and value < period.first_day and (later - period.last_day).days <= 62:
                value = later
    if value is None:
        return None, [Issue.make("bad-date", value=_show(raw), **at)]
    return value, [Issue.make("normalised-date", value=value.isoformat(), raw=raw, **at)]


_CN_RUN = re.compile(rf"[{''.join(_CN_DIGITS)}十]+")


def _arabic_date(text: str) -> str:
    """A date written in Chinese numerals in Arabic ones: 七月五日 -> 7月5日, 二〇二六年十二月三十一日 -> 2026年12月31日
    (a year digit by digit, a month or day as spoken); text without a 月 as it is."""
    if "月" not in text or not _CN_RUN.search(text):
        return text

    def arabic(m: re.Match) -> str:
        run = m.group(0)
        if len(run) == 4 and all(ch in _CN_DIGITS for ch in run):  # a year: 二〇二六
            return "".join(str(_CN_DIGITS[ch]) for ch in run)
        n = chinese_number(run)
        return str(n) if n is not None else run

    return _CN_RUN.sub(arabic, text)


def _safe_date(y: int, m: int, d: int) -> dt.date | None:
    try:
        return dt.date(y, m, d)
    except ValueError:
        return None


def as_choice(raw, at: Place, choices: list[str]) -> tuple[str | None, list[Issue]]:
    """Matched after trimming and width-folding; a match that needed folding is a warning."""
    if is_blank(raw):
        return None, []
    text = _show(raw)
    if text in choices:
        return text, []
    folded = fold(text).casefold()
    for c in choices:
        if fold(c).casefold() == folded:
            return c, [Issue.make("normalised-choice", value=c, raw=text, **at)]
    shown = choices if len(choices) <= 8 else choices[:8] + ["…"]
    return None, [Issue.make("not-in-choices", value=text, choices=shown, **at)]


def as_period(raw, at: Place) -> tuple[Period | None, list[Issue]]:
    if is_blank(raw):
        return None, []
    if isinstance(raw, dt.date) and raw.day == 1 and (not isinstance(raw, dt.datetime) or raw.time() == dt.time()):
        # "2026年3月" typed in a General cell: Excel and WPS turn it into the date 2026-03-01
        month = Period(raw.year, "month", raw.month)
        return month, [Issue.make("normalised-period", value=month.label, raw=f"{raw:%Y-%m-%d}", **at)]
    if isinstance(raw, (int, float, dt.date)) and not isinstance(raw, bool):
        return None, [Issue.make("not-a-period", value=_show(raw), **at)]
    period = parse_period_kept(str(raw)) if len(str(raw)) <= 32 else parse_period(str(raw))  # (long ones not kept)
    if period is None:
        return None, [Issue.make("not-a-period", value=_show(raw), **at)]
    return period, []




__all__ = ["UNIT_WORDS", "as_choice", "chinese_number", "as_date", "as_number", "as_period", "as_text", "excel_serial", "fold", "is_blank"]
