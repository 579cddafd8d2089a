"""Who had to report what, by when, and what actually counts: deadlines, supersession and statuses.

Everything here is derived from the ledger and the configuration; nothing is stored.
"""

from __future__ import annotations

from functools import lru_cache

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from collections.abc import Collection, Iterable, Iterator, Mapping

from .issues import Issue, TuanjianError
from .ledger import FileRow, Ledger
from .normalise import fold
from .periods import PERIOD_KIND, Period, parse_period

if TYPE_CHECKING:  # (merge with nothing new reads stored statuses without loading the plan's models)
    from .plan import Workspace
    from .specs import FormSpec, TableSpec

def period_order(p: Period) -> tuple:
    """Periods in time order, whatever their kind (2026-12 before 2026-Q4's end is the same day: month first)."""
    return (p.last_day, p.kind != "month", p.kind)


STATUS_ZH = {"on_time": "按时", "late": "逾期", "missing": "未报", "not_due": "未到期"}
MAX_YEARS = 20  # from the configured reporting start to the as-of date


def periods_between(kind: str, start: Period, end: dt.date) -> list[Period]:
    """Every period of a kind from the one holding `start`'s first day up to the one holding `end`."""
    out: list[Period] = []
    y, m = start.year, start.months[0]
    while dt.date(y, m, 1) <= end:
        p = {"month": Period(y, "month", m), "quarter": Period(y, "quarter", (m - 1) // 3 + 1),
             "year": Period(y, "year", 1)}[kind]
        if not out or out[-1] != p:
            out.append(p)
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def reporting_start(ws: Workspace, as_of: dt.date) -> Period:
    """The configured start; by default January of the year two months back, so that in January and February
    the previous year's December and fourth quarter (due then) are still counted."""
    start = ws.settings.reporting.start
    if start:
        first = parse_period(start)
        assert first is not None  # settings.Reporting checks that `start` is a month
        if as_of.year - first.year > MAX_YEARS:  # a typo (3026 for 2026) would count a thousand years of forms
            raise TuanjianError(Issue.make("as-of-too-far", field="--as-of", as_of=as_of.isoformat(), start=start,
                                           years=MAX_YEARS))
        return first
    return Period(as_of.year - 1 if as_of.month <= 2 else as_of.year, "month", 1)  # (March 1st: this year)


def _own_start(code: str | None, start: Period) -> Period:
    """The first period a unit owes: the roster's 起报期 for it, when later than everyone's start."""
    mine = parse_period(code) if code else None
    return mine if mine is not None and period_order(mine) > period_order(start) else start


@dataclass
class Expected:
    unit_id: str
    unit: str
    unit_type: str
    form_id: str
    period: Period
    due: dt.date


def expected(ws: Workspace, as_of: dt.date) -> list[Expected]:
    """Each (unit, form, period) the roster says is owed, from the reporting start up to the as-of date."""
    start = reporting_start(ws, as_of)
    out = []
    own = {u.id: _own_start(u.start, start) for u in ws.roster.units}  # (a unit added mid-year: its own 起报期)
    for spec in ws.current_specs():
        for unit in ws.roster.units:
            rule = ws.roster.rule(unit.type, spec.form_id)
            if rule is None:
                continue
            for period in periods_between(PERIOD_KIND[rule.cadence], own[unit.id], as_of):
                due = ws.roster.due(unit, spec.form_id, period)
                assert due is not None  # the unit files this form (its rule is above): it has a due date
                out.append(Expected(unit.id, unit.name, unit.type, spec.form_id, period, due))
    return out


Forms = Mapping[str, "FormSpec | TableSpec"]  # form_id -> its spec as the workspace uses it


def forms_in_use(ws: Workspace) -> dict[str, FormSpec | TableSpec]:
    """Each form the workspace knows, as it uses it now (its current version): what supersession follows."""
    return {form_id: ws.spec(form_id) for form_id in ws.registry.form_ids}


@dataclass
class Supersession:
    """What supersession decides, small enough for any ledger: which files replaced which, which files' records
    count (ids, and the indices of a file's records that count where some were replaced; never the records
    themselves), each submission's first valid arrival, and how many files it went through (for 总览)."""

    superseded_by: dict[int, int] = field(default_factory=dict)
    partly_by: dict[int, int] = field(default_factory=dict)  # file id -> the latest file that replaced some (not
    #                                                          all) of its records
    first_valid: dict[tuple[str, str, str], dt.datetime] = field(default_factory=dict)  # (unit id, form, period)
    live: dict[str, set[int]] = field(default_factory=dict)  # form -> files holding records that count
    partial: dict[int, frozenset[int]] = field(default_factory=dict)  # file id -> indices of its records that
    #                                                                   count, when others were replaced
    files: int = 0
    valid: int = 0  # valid and not void
    void: int = 0  # withdrawn by staff (tuanjian ledger void)
    last: dt.datetime | None = None  # the latest received

    def records_of(self, files: Iterable[FileRow]) -> Iterator[tuple[FileRow, dict]]:
        """The records that count of a one-record form's live files, in the files' order, each file's in its own
        order, with their files."""
        for f in files:
            keep = self.partial.get(f.id)
            for n, rec in enumerate(f.records):
                if keep is None or n in keep:
                    yield f, rec["values"]

    @staticmethod
    def tables_of(files: Iterable[FileRow]) -> dict[tuple[str, str], tuple[FileRow, list[dict]]]:
        """A table form's live files (one per unit and period), by unit id and period, with their records."""
        out = {}
        for f in files:
            assert f.unit_id is not None and f.period is not None  # supersession keeps only files with both
            out[(f.unit_id, f.period)] = (f, [r["values"] for r in f.records])
        return out


@dataclass
class Effective(Supersession):
    """Supersession with the records that count, in memory: what the assessment and `status` read."""

    records: dict[str, list[tuple[FileRow, dict]]] = field(default_factory=dict)  # one-record forms, by form
    tables: dict[str, dict[tuple[str, str], tuple[FileRow, list[dict]]]] = field(default_factory=dict)  # by form,
    #                                                                            then (unit id, period)


def _same(value) -> object:
    """What two spellings of one value share: text folded and case-blind, other values as they are."""
    return fold(value).casefold() if isinstance(value, str) else value


class _Absent:
    """In a record key, a `supersede_by` field its version does not have (a blank value is None)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()


def record_key(spec: FormSpec | TableSpec, file: FileRow, record: dict) -> tuple:
    """A record's identity for supersession: unit, period and the values of the spec's `supersede_by` fields;
    ABSENT for a field the record's version does not have (a record holds every field of its own version, blank
    ones as None: validate.record_model)."""
    return (file.unit_id, file.period, *(_same(record[f]) if f in record else ABSENT for f in spec.supersede_by))


def _keys(spec: FormSpec | TableSpec, f: FileRow) -> dict[tuple, list[int]]:
    """A file's record keys, each with the indices of its records (two records with one key in one file are two,
    unless they are the same in every field: a sheet copied for the next visit and left as it was counts once, as
    the same visit sent in two files does)."""
    mine: dict[tuple, list[int]] = {}
    seen: set[str] = set()
    for n, rec in enumerate(f.records):
        if len(f.records) > 1:  # (most files hold one record: nothing to compare)
            whole = json.dumps(rec["values"], sort_keys=True, ensure_ascii=False, default=str)
            if whole in seen:
                continue
            seen.add(whole)
        mine.setdefault(record_key(spec, f, rec["values"]), []).append(n)
    return mine


def _mask(key: tuple) -> tuple[bool, ...]:
    return tuple(v is not ABSENT for v in key[2:])


def _agree(a: tuple, b: tuple) -> bool:
    """Two keys agree on every field both have."""
    return all(x == y for x, y in zip(a[2:], b[2:]) if x is not ABSENT and y is not ABSENT)


class _Live:
    """The record keys that count so far in one group (form, unit, period), each with its file and records' indices.
    A later key replaces the earlier ones that agree with it on every `supersede_by` field both have: of one version,
    the same key; a record of a version without one of the fields (附件1 第 1 版 has no 走访日期) matches on the
    others — it is replaced by a later record naming the same organisation whatever its date, and, later itself,
    replaces every earlier record of that organisation."""

    def __init__(self) -> None:
        self.keys: dict[tuple, tuple[int, list[int]]] = {}
        self.masks: set[tuple[bool, ...]] = set()  # the fields present, of every key added
        self.by_first: dict[object, set[tuple]] = {}  # the first field's value -> the keys holding it

    def earlier(self, key: tuple) -> list[tuple]:
        """The keys that `key` replaces."""
        mask, out = _mask(key), []
        for m in self.masks:
            if m == mask:  # the same fields (the same version): the same key
                if key in self.keys:
                    out.append(key)
            elif all(have or not need for need, have in zip(m, mask)):  # `key` has every field of these: one at most
                p = (*key[:2], *(v if keep else ABSENT for v, keep in zip(key[2:], m)))
                if p in self.keys:
                    out.append(p)
            else:  # `key` lacks a field these have (a later record of an older version): all that agree
                pool = self.by_first.get(key[2], ()) if m[0] and mask[0] else list(self.keys)
                out += [k for k in pool if _mask(k) == m and _agree(k, key)]
        return out

    def replace(self, file_id: int, mine: dict[tuple, list[int]]) -> dict[tuple, set[int]]:
        """A later file's keys in, each replacing the earlier keys it agrees with: per key, the files those came from.
        (Keys of one file never replace each other: of one version, different keys disagree on some field.)"""
        out = {}
        for k, indices in mine.items():
            out[k] = {self._pop(old) for old in self.earlier(k)}
            self.keys[k] = (file_id, indices)
            self.masks.add(_mask(k))
            self.by_first.setdefault(k[2], set()).add(k)
        return out

    def _pop(self, key: tuple) -> int:
        self.by_first[key[2]].discard(key)
        return self.keys.pop(key)[0]


def _bare(name: str) -> str:
    """A name with spaces and punctuation gone: what two spellings of one organisation share. (Each name is compared
    with every other of its unit and period: remembered, unless it is too long to be a name.)"""
    return _bare_kept(name) if len(name) <= 64 else _bare_kept.__wrapped__(name)


@lru_cache(maxsize=65536)
def _bare_kept(name: str) -> str:
    return "".join(ch for ch in fold(name).casefold() if ch.isalnum())


_NUMERALS = set("0123456789零〇一二三四五六七八九十百两")


@lru_cache(maxsize=65536)
def _unnumbered(bare: str) -> str:
    return "".join(c for c in bare if c not in _NUMERALS)


def _near(a: str, b: str) -> bool:
    """Equal but for spaces and punctuation, or a character or two apart (in names of four or more) — unless
    they differ only in numbers (一中 and 二中 are two schools)."""
    a, b = _bare(a), _bare(b)
    if a == b:
        return True
    if min(len(a), len(b)) < 4 or abs(len(a) - len(b)) > 2 or max(len(a), len(b)) > NEAR_CHARS:
        return False
    if (_unnumbered(a) == _unnumbered(b)) if len(a) + len(b) <= 128 else \
            (_unnumbered.__wrapped__(a) == _unnumbered.__wrapped__(b)):  # (long texts not remembered)
        return False
    return _within_two(a, b)


NEAR_CHARS = 64  # an organisation's name is a few dozen characters; longer texts (30,000 typed on purpose) are told
#                 apart exactly only — comparing them a character at a time is quadratic, in the main process


def _within_two(a: str, b: str) -> bool:
    """Levenshtein distance of at most 2, row by row over the only cells that can hold 2 or less (|i - j| ≤ 2;
    the others count as 3, which no path of 2 edits goes through); stops at a row where every cell exceeds 2.
    Two names with more than four characters that only one of them has are further apart: an edit adds at most
    one character to one side's and one to the other's (most names compared differ so)."""
    if len(set(a) ^ set(b)) > 4:
        return False
    far = 3
    prev = [j if j < far else far for j in range(len(b) + 1)]
    for i, ca in enumerate(a, start=1):
        row = [far] * (len(b) + 1)
        row[0] = i if i < far else far
        lo, hi = max(1, i - 2), min(len(b), i + 2)
        for j in range(lo, hi + 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ca != b[j - 1]))
        if min(row[lo - 1:hi + 1]) >= far:
            return False
        prev = row
    return prev[-1] < far


def group_key(f: FileRow) -> tuple[str, str, str]:
    """The group a file's supersession happens in — its form, unit and period — as `Ledger.iter_files(grouped=True)`
    orders them (ledger.GROUPED_BY)."""
    return f.form_id or "", f.unit_id or "", f.period or ""


def by_group(files: Iterable[FileRow]) -> list[FileRow]:
    """Files in the order received, grouped as `supersession` and `close_names` take them."""
    return sorted(files, key=group_key)  # a stable sort: each group's files stay in the order received


class _Groups:
    """Says when a new group begins in files that come grouped (group_key) — and refuses files that do not."""

    def __init__(self) -> None:
        self.current: tuple[str, str, str] | None = None
        self.done: set[tuple[str, str, str]] = set()

    def begins(self, f: FileRow) -> bool:
        key = group_key(f)
        if key == self.current:
            return False
        if key in self.done:
            raise ValueError(f"files not grouped by form, unit and period: {key} again")
        if self.current is not None:
            self.done.add(self.current)
        self.current = key
        return True


def close_names(files: Iterable[FileRow], new_ids: Collection[int],
                forms: Forms) -> list[tuple[FileRow, str, str]]:
    """New records whose `close_names` field (附件1's organisation visited) reads almost, not exactly, like one
    already received from the same unit for the same form and period: (new file, its name, the other name), in the
    order the new files were received. They count as two records; staff should know. `files` come grouped
    (`by_group`, `Ledger.iter_files(grouped=True)`): one group's names are held at a time."""
    # the names received so far in the group, by the length of their bare form: a name can be near only to one at
    # most two characters longer or shorter, so only those are compared (10,000 visits in a second)
    seen: dict[int, set[str]] = {}
    groups = _Groups()
    out = []
    for f in files:  # each group's in order received
        spec = forms.get(f.form_id or "")
        if not f.counts or spec is None or spec.close_names is None:
            continue
        if groups.begins(f):
            seen = {}
        names = {str(r["values"].get(spec.close_names) or "") for r in f.records}
        if f.id in new_ids:
            for name in sorted(names):
                size = len(_bare(name))
                others = (o for n in range(size - 2, size + 3) for o in seen.get(n, ()))
                other = min((o for o in others if _same(o) != _same(name) and _near(o, name)), default=None)
                if other is not None:  # the first in sorted order, as staff read the list
                    out.append((f, name, other))
        for name in names:
            seen.setdefault(len(_bare(name)), set()).add(name)
    return sorted(out, key=lambda hit: (hit[0].received_at, hit[0].id))  # stable: a file's names stay sorted


def named_again(files: Iterable[FileRow], new_ids: Collection[int],
                forms: Forms) -> list[tuple[FileRow, str, str, list[str]]]:
    """New records that replaced nothing, though a record still counting from an earlier file of the same unit, form
    and period has the same first `supersede_by` field and differs in the others (附件1: the same organisation
    visited on another 走访日期): (new file, that first field as written, its other fields as written, each such
    earlier record's), in the order received. Counted as another record, as the spec says — two visits on two days
    are real, a corrected date is not; staff should ask. `files` come grouped as for `close_names`."""
    groups = _Groups()
    live, written = _Live(), dict[tuple, str]()  # the group's keys that count; each one's other fields as written
    out = []
    for f in files:  # each group's in order received
        spec = forms.get(f.form_id or "")
        if not f.counts or not f.unit_id or not f.period or spec is None or len(spec.supersede_by) < 2:
            continue
        if groups.begins(f):
            live, written = _Live(), {}
        mine = _keys(spec, f)
        rest = {k: " ".join(_written(f.records[n]["values"].get(r)) for r in spec.supersede_by[1:])
                for k, (n, *_) in mine.items()}
        replaced = live.replace(f.id, mine)
        written.update(rest)
        if f.id not in new_ids:
            continue
        for k, (n, *_) in mine.items():
            others = sorted({written[o] for o in live.by_first.get(k[2], ()) if live.keys[o][0] != f.id})
            if not replaced[k] and k[2] is not ABSENT and others:
                out.append((f, _written(f.records[n]["values"].get(spec.supersede_by[0])), rest[k], others))
    return out


def _written(value: object) -> str:
    return "" if value is None else str(value)


def supersession(files: Iterable[FileRow], forms: Forms) -> Supersession:
    """Latest received wins: per record for a form with `supersede_by` (附件1: per visit), else per unit, form and
    period. `forms` are the specs as the workspace uses them (`forms_in_use`). `files` come grouped (`by_group`,
    `Ledger.iter_files(grouped=True)`): only one group's record keys are held at a time."""
    s = Supersession()
    groups = _Groups()
    group = _Group(s, "")
    for f in files:  # each group's in order received
        s.files += 1
        s.valid += f.counts  # a void file is no submission: neither counted nor replacing any other
        s.void += f.void is not None
        if s.last is None or f.received_at > s.last:
            s.last = f.received_at
        if not f.counts or not f.unit_id or not f.period:
            continue
        if groups.begins(f):
            group.end()
            group = _Group(s, f.form_id or "")
        s.first_valid.setdefault((f.unit_id, f.form_id or "", f.period), f.received_at)
        spec = forms.get(f.form_id or "")
        if spec is not None and spec.supersede_by:
            group.records(f, spec)
        else:
            group.whole(f)
    group.end()
    return s


def supersession_in(ledger: Ledger, forms: Forms, until: dt.date | None = None) -> Supersession:
    """`supersession` of the files a ledger holds (received on or before `until`), read a page at a time; only the
    records of forms with `supersede_by` are read."""
    keyed = [form_id for form_id, spec in forms.items() if spec.supersede_by]
    return supersession(ledger.iter_files(records=keyed, issues=False, until=until, grouped=True), forms)


class _Group:
    """One form's files of one unit and period, as supersession goes through them in the order received."""

    def __init__(self, s: Supersession, form_id: str):
        self.s, self.form_id = s, form_id
        self.live = _Live()  # the records that count so far, by key
        self.replaced: dict[int, set[int]] = {}  # file id -> ids of files that replaced some of its records
        self.latest: int | None = None  # the file that counts, of a form replaced whole
        self.repeated: set[int] = set()  # files holding one record twice (the second does not count)

    def records(self, f: FileRow, spec: FormSpec | TableSpec) -> None:
        mine = _keys(spec, f)
        if sum(map(len, mine.values())) < len(f.records):  # a record repeated within the file: counted once
            self.repeated.add(f.id)
        for by in self.live.replace(f.id, mine).values():  # a later file replaces earlier files' records
            for file_id in by:
                self.replaced.setdefault(file_id, set()).add(f.id)

    def whole(self, f: FileRow) -> None:
        if self.latest is not None:
            self.s.superseded_by[self.latest] = f.id
        self.latest = f.id

    def end(self) -> None:
        s = self.s
        kept: dict[int, list[int]] = {}
        for file_id, indices in self.live.keys.values():
            kept.setdefault(file_id, []).extend(indices)
        for file_id, by in self.replaced.items():
            if file_id not in kept:  # every record of that file was replaced
                s.superseded_by[file_id] = max(by)
            else:
                s.partial[file_id] = frozenset(kept[file_id])
                s.partly_by[file_id] = max(by)
        for file_id in self.repeated:
            if file_id in kept and file_id not in s.partial:
                s.partial[file_id] = frozenset(kept[file_id])
        live = [*kept, *([self.latest] if self.latest is not None else [])]
        if live:
            s.live.setdefault(self.form_id, set()).update(live)


def effective(files: list[FileRow], forms: Forms) -> Effective:
    """`supersession` of files in memory (in the order received), with the records that count: per form, in the
    order received and each file's own order; a table form's (`TableSpec`) by unit and period."""
    from .specs import TableSpec as table_spec

    eff = Effective(**vars(supersession(by_group(files), forms)))
    for f in files:
        form_id = f.form_id or ""
        if f.id not in eff.live.get(form_id, ()):
            continue
        if isinstance(forms.get(form_id), table_spec):
            eff.tables.setdefault(form_id, {}).update(eff.tables_of([f]))
        else:
            eff.records.setdefault(form_id, []).extend(eff.records_of([f]))
    return eff


@dataclass
class StatusItem(Expected):
    status: str  # on_time | late | missing | not_due
    received: dt.datetime | None

    def to_dict(self) -> dict:
        return {"unit": self.unit, "form_id": self.form_id, "period": self.period.code, "status": self.status,
                "due": self.due.isoformat(), "received": self.received.isoformat() if self.received else None}


def timeliness(received: dt.datetime | None, due: dt.date, as_of: dt.date) -> str:
    """The one rule for a unit's form and period: 按时 / 逾期 by its first valid file's arrival against the due date
    (the due day itself is on time); without one by `as_of`, 未到期 or 未报. The master, the assessment and the 回执
    all say what this says."""
    if received is not None:
        return "on_time" if received.date() <= due else "late"
    return "not_due" if as_of <= due else "missing"


def statuses(ws: Workspace, eff: Supersession, as_of: dt.date) -> list[StatusItem]:
    """按时 / 逾期 / 未报 / 未到期 for every owed submission; the first valid file's arrival is what counts."""
    out = []
    for e in expected(ws, as_of):
        received = eff.first_valid.get((e.unit_id, e.form_id, e.period.code))
        if received is not None and received.date() > as_of:
            received = None  # looking back: what arrived after the as-of date had not arrived then
        out.append(StatusItem(**vars(e), status=timeliness(received, e.due, as_of), received=received))
    return out


def reminders(ws: Workspace, items: list[StatusItem], as_of: dt.date) -> dict[str, str]:
    """A ready-to-send 催报 text per unit that has something missing (or late and still only partly in)."""
    from .mailtext import render_or_default

    owed: dict[str, list[StatusItem]] = {}
    for i in items:
        if i.status == "missing":
            owed.setdefault(i.unit, []).append(i)
    return {unit: render_or_default(ws, "reminder", reminder_values(ws, unit, rows, as_of)).body
            for unit, rows in owed.items()}


def reminder_values(ws: Workspace, unit: str, rows: list[StatusItem], day: dt.date) -> dict[str, str]:
    """What a 催报 or 提前提醒 says of a unit's forms not yet in (the placeholders of their mail templates)."""
    from .mailtext import common_values

    names = {s.form_id: s.display_name for s in ws.registry.latest()}
    order = ws.registry.form_ids  # the plan's order: 附件1, 附件2, 台账
    lines = []
    for n, i in enumerate(sorted(rows, key=lambda i: (order.index(i.form_id), i.period)), start=1):
        days = (day - i.due).days
        when = f"已逾期 {days} 天" if days > 0 else "今天截止" if days == 0 else f"还有 {-days} 天"
        lines.append(f"{n}. 《{names.get(i.form_id, i.form_id)}》{i.period.label}，截止 {i.due.isoformat()}，{when}")
    listing = "\n".join(lines)
    return {**common_values(ws), "单位": unit, "日期": f"{day.month}月{day.day}日", "份数": str(len(rows)),
            "未报清单": listing, "待报清单": listing, "截止日期": min(i.due for i in rows).isoformat()}
