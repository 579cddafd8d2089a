"""Reporting periods: '2026-03' (month), '2026-Q1' (quarter), '2026' (year); parsing, labels, due dates."""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import re
from dataclasses import dataclass

_FULLWIDTH = str.maketrans("０１２３４５６７８９－／．Ｑｑ　", "0123456789-/.Qq ")
_CN_DIGITS = {"一": 1, "二": 2, "三": 3, "四": 4}

# The years a period may have. A due date lies up to 12 months after the period's last month (config's
# month_offset is at most 12) and dt.date stops at 9999, so 9998 is the last year all of whose due dates exist;
# Excel's dates begin in 1900.
FIRST_YEAR, LAST_YEAR = 1900, 9998
# The days a report may be looked at "as of" (--as-of, --since). The default reporting start is January of the
# year two months back (status.reporting_start), which must not fall before FIRST_YEAR; every period up to the
# day must end in LAST_YEAR at the latest.
FIRST_DAY, LAST_DAY = dt.date(FIRST_YEAR + 1, 1, 1), dt.date(LAST_YEAR, 12, 31)


@dataclass(frozen=True, order=True)
class Period:
    year: int
    kind: str  # 'month' | 'quarter' | 'year'
    index: int  # month 1-12, quarter 1-4, or 1 for a year

    @property
    def code(self) -> str:
        if self.kind == "month":
            return f"{self.year}-{self.index:02d}"
        if self.kind == "quarter":
            return f"{self.year}-Q{self.index}"
        return f"{self.year}"

    @property
    def label(self) -> str:
        if self.kind == "month":
            return f"{self.year}年{self.index}月"
        if self.kind == "quarter":
            return f"{self.year}年第{self.index}季度"
        return f"{self.year}年"

    @property
    def months(self) -> tuple[int, int]:
        """First and last month of the period."""
        if self.kind == "month":
            return self.index, self.index
        if self.kind == "quarter":
            return 3 * self.index - 2, 3 * self.index
        return 1, 12

    @property
    def first_day(self) -> dt.date:
        return dt.date(self.year, self.months[0], 1)

    @property
    def last_day(self) -> dt.date:
        m = self.months[1]
        return dt.date(self.year, m, calendar.monthrange(self.year, m)[1])

    def due(self, day: int, month_offset: int) -> dt.date:
        """Day `day` of the `month_offset`-th month after the period's last month (clamped to month end)."""
        y, m = divmod(self.year * 12 + self.months[1] - 1 + month_offset, 12)
        m += 1
        return dt.date(y, m, min(day, calendar.monthrange(y, m)[1]))


# 走基层周: the plan's "每月第一周", read as days 1–7 of each month; the validator's 提醒 and the assessment's
# 走基层周 item both ask `in_visit_week`.
VISIT_WEEK_DAYS = 7


def in_visit_week(day: dt.date) -> bool:
    """Whether a visit on `day` falls in 走基层周, the first week (days 1–7) of its month."""
    return day.day <= VISIT_WEEK_DAYS


PERIOD_KIND = {"monthly": "month", "quarterly": "quarter", "yearly": "year"}  # a due rule's cadence: its periods' kind


def parse_period(text: str) -> Period | None:
    """'2026-03', '2026年3月', '2026年3月份', '2026-Q1', '2026年第1季度', '2026年一季度', '2026' -> Period (spaces
    anywhere, full-width digits); else None, also for a year outside FIRST_YEAR..LAST_YEAR (a period whose due date
    cannot exist is not a period)."""
    period = _parse(text)
    return period if period and FIRST_YEAR <= period.year <= LAST_YEAR else None


def _parse(text: str) -> Period | None:
    s = re.sub(r"\s+", "", str(text).translate(_FULLWIDTH))
    m = re.fullmatch(r"(\d{4})(?:-|/|\.|年)(\d{1,2})(?:月份?)?", s)
    if m and 1 <= int(m.group(2)) <= 12:
        return Period(int(m.group(1)), "month", int(m.group(2)))
    m = re.fullmatch(r"(\d{4})(?:-|年)?(?:[Qq]([1-4])|第?([1-4一二三四])季度?)", s)
    if m:
        q = m.group(2) or m.group(3)
        return Period(int(m.group(1)), "quarter", _CN_DIGITS.get(q) or int(q))
    # a quarter's months: 2026年1-3月, 2026年1月至3月, 2026.1-2026.3
    m = re.fullmatch(r"(\d{4})(?:-|/|\.|年)(\d{1,2})月?(?:-|~|～|至|到|—|－|–)+(?:\1(?:-|/|\.|年))?(\d{1,2})月?份?", s)
    if m and int(m.group(3)) - int(m.group(2)) == 2 and int(m.group(2)) in (1, 4, 7, 10):
        return Period(int(m.group(1)), "quarter", (int(m.group(2)) + 2) // 3)
    m = re.fullmatch(r"(\d{4})年?(?:度)?", s)
    if m:
        return Period(int(m.group(1)), "year", 1)
    return None


@functools.lru_cache(maxsize=4096)
def parse_period_kept(text: str) -> Period | None:
    """parse_period for the codes the ledger and the files repeat (a row per record names one of a few dozen): each
    parsed once. Only for short texts (a long one is no period and is not kept)."""
    return parse_period(text)


def excel_serial(d: dt.date) -> int:
    """Excel's 1900 date system serial of a date (after 1900-03-01)."""
    return (d - dt.date(1899, 12, 30)).days
