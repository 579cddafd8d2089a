"""The ledger: every file received, in SQLite inside the workspace; originals archived by hash, never changed.

The master is rendered from the ledger alone, so the ledger stores what validation found (records and issues)
as JSON beside each file's facts. Which submission replaced which is derived at render time, not stored.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import os
import sqlite3
import threading
import time
from typing import Any
from array import array
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from collections.abc import Collection, Iterable, Iterator

from .issues import Issue, TuanjianError


LEDGER_DIR = ".tuanjian"
LEDGER_FILE = "ledger.sqlite"
ARCHIVE_DIR = "archive"
LEDGER_SHOWN = f"{LEDGER_DIR}/{LEDGER_FILE}"  # how messages name the ledger: relative to the workspace
BUSY_TIMEOUT = 10.0  # seconds to wait for another tuanjian's write transaction before calling the ledger locked
TEMP_MAX_AGE = 3600.0  # seconds after which an archive temporary file is certainly torn (see sweep_temp)

MIGRATIONS: list[list[str]] = [
    [
        """CREATE TABLE files (
            id          INTEGER PRIMARY KEY,
            sha256      TEXT NOT NULL UNIQUE,
            name        TEXT NOT NULL,   -- the file's name as it arrived
            origin      TEXT NOT NULL,   -- where it came from: a path, later a zip member or a mail
            ext         TEXT NOT NULL,
            size        INTEGER NOT NULL,
            received_at TEXT NOT NULL,   -- ISO time: first ingestion, or what intake knew better (a mail's date)
            ingested_at TEXT NOT NULL,
            valid       INTEGER NOT NULL,
            form_id     TEXT,
            version     INTEGER,
            unit_id     TEXT,
            unit        TEXT,
            period      TEXT,
            result      TEXT NOT NULL    -- JSON: {"records": [...], "issues": [...]}
        )""",
        "CREATE INDEX files_key ON files (form_id, unit_id, period)",
        """CREATE TABLE sightings (         -- every arrival, duplicates included
            id        INTEGER PRIMARY KEY,
            file_id   INTEGER NOT NULL REFERENCES files (id),
            name      TEXT NOT NULL,
            origin    TEXT NOT NULL,
            seen_at   TEXT NOT NULL
        )""",
    ],
    # v2: whether an invalid file's 退回件 has been written, so a run killed before writing it makes it next time;
    # and a small key/value table (what the last master was made from)
    [
        "ALTER TABLE files ADD COLUMN returned INTEGER NOT NULL DEFAULT 0",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ],
    # v3: mails taken from the mailbox, so that a second fetch takes nothing twice
    [
        """CREATE TABLE mails (
            key       TEXT PRIMARY KEY,  -- Message-ID, or folder/UIDVALIDITY/UID when a mail has none
            folder    TEXT NOT NULL,
            arrived   TEXT NOT NULL,
            sender    TEXT,
            subject   TEXT,
            files     INTEGER NOT NULL,
            taken_at  TEXT NOT NULL
        )""",
    ],
    # v4: what each received time rests on (a mail's date, the mailbox's arrival, the first registration, a date
    # stated by staff), so that the master can say it and an earlier copy of the same content can correct it
    [
        "ALTER TABLE files ADD COLUMN received_basis TEXT NOT NULL DEFAULT 'first-seen'",
    ],
    # replies by mail (replies.py): one per file ever, keyed by its sha256 so that a re-merge, a rebuilt or a restored
    # ledger that knows the file never owes it again; the files known before count as answered. Reminders
    # (reminders.py): one per unit, form, period, kind and day.
    [
        """CREATE TABLE replies (
            sha256     TEXT PRIMARY KEY,  -- the file's (files.sha256)
            state      TEXT NOT NULL,     -- due | sending | sent | refused | uncertain | no-address | no-reply |
                                          -- expired | before
            kind       TEXT,              -- receipt | return
            recipient  TEXT,              -- the From of the mail the file came in (written with the file); once sent,
                                          -- where the reply went
            at         TEXT NOT NULL,     -- when the state was set
            detail     TEXT,              -- what the server said; why no reply goes
            mail       TEXT,              -- the mail the file came in (its origin): one reply answers all its files
            automatic  TEXT,              -- why that mail gets no automatic reply: it was itself sent by a machine
            message    TEXT,              -- the Message-ID of the reply that carried it (a day's are counted by it)
            forced     INTEGER NOT NULL DEFAULT 0,  -- staff asked for it (--resend): owed until it is sent or given up,
                                                    -- never expired, capped or held back as no-reply
            cc         TEXT               -- once sent to the unit's roster address: the mail's From, copied
        )""",
        "CREATE INDEX replies_state ON replies (state)",
        "INSERT INTO replies (sha256, state, at) SELECT sha256, 'before', ingested_at FROM files",
        """CREATE TABLE reminders (
            unit_id    TEXT NOT NULL,
            form_id    TEXT NOT NULL,
            period     TEXT NOT NULL,
            kind       TEXT NOT NULL,     -- overdue | advance
            day        TEXT NOT NULL,     -- the day it was sent (ISO date)
            state      TEXT NOT NULL,     -- sending | sent | refused | uncertain | no-address
            recipient  TEXT NOT NULL,
            at         TEXT NOT NULL,
            detail     TEXT,
            PRIMARY KEY (unit_id, form_id, period, kind, day)
        )""",
    ],
    # a stat cache (merge.py): each file merge read, by path, with the size, modification time and inode it had
    # then and the sha256 of what it held (a zip's or a mail's submissions too), so that a file unchanged since is
    # not read and hashed again
    [
        """CREATE TABLE seen_paths (
            path      TEXT PRIMARY KEY,  -- the file as found on disk
            size      INTEGER NOT NULL,
            mtime_ns  INTEGER NOT NULL,
            inode     INTEGER NOT NULL,
            sha256    TEXT NOT NULL,     -- the file's own (a zip or mail as archived)
            members   TEXT               -- a zip's or mail's submissions, JSON [[path, origin, name, sha256], ...]
        )""",
    ],
    # files withdrawn by staff (tuanjian ledger void): every void and undo kept, the latest one saying whether a file
    # is void now; keyed by sha256, as replies are, so that a rebuilt ledger keeps them. Nothing else is changed: the
    # file's row and its archived original stay as they were.
    [
        """CREATE TABLE voids (
            id      INTEGER PRIMARY KEY,
            sha256  TEXT NOT NULL,   -- the file's (files.sha256)
            action  TEXT NOT NULL,   -- void | undo
            reason  TEXT NOT NULL,   -- why, as staff gave it
            who     TEXT,            -- the account that ran the command
            at      TEXT NOT NULL
        )""",
        "CREATE INDEX voids_file ON voids (sha256, id)",
    ],
    # v8: the name an invalid file's 退回件 was given (without suffix), kept from when it is named until it is
    # written, so that a run killed meanwhile has the next one write it under that very name (never a second copy)
    [
        "ALTER TABLE files ADD COLUMN return_stem TEXT",
    ],
    # v9: the last file whose notes about earlier files merge worked out (merge.stored_notes) — from the files to
    # come in a ledger made before such notes were kept, from the first in a new one
    [
        "INSERT INTO meta (key, value) SELECT 'notes-through', CAST(coalesce(max(id), 0) AS TEXT) FROM files "
        "WHERE true ON CONFLICT (key) DO NOTHING",
    ],
]
# Each migration is a list of statements (never a script split on ";", which a default value or a comment with a
# semicolon would break), taking the schema from version N to N+1; PRAGMA user_version says where a ledger stands.

# The columns a rebuild reads back from an old ledger's replies and reminders (ledger_tools.py).
REPLY_COLUMNS = ("sha256", "state", "kind", "recipient", "at", "detail", "mail", "automatic", "message", "forced", "cc")
REMINDER_COLUMNS = ("unit_id", "form_id", "period", "kind", "day", "state", "recipient", "at", "detail")
VOID_COLUMNS = ("sha256", "action", "reason", "who", "at")


def void_of(table: str) -> str:
    """SQL for the reason a file of `table` (a name or alias of files) is void for, NULL when it counts: the latest
    of its voids and undos decides."""
    return (f"(SELECT CASE v.action WHEN 'void' THEN v.reason END FROM voids v WHERE v.sha256 = {table}.sha256 "
            "ORDER BY v.id DESC LIMIT 1)")

# What a received time rests on, most trusted first; the Chinese words are what 来源 shows.
RECEIVED_BASES = {"stated": "人工指定", "server": "服务器收信时间", "mailbox": "邮箱到达", "mail-date": "邮件日期",
                  "first-seen": "首次登记"}


# How iter_files reads the files: the columns a FileRow is made from; the order that keeps each of supersession's
# groups together (a form's files of one unit and period: status.supersession); the files received on or before a
# day (received_at is ISO text, its first ten characters the date); how many rows a query reads.
FILE_COLUMNS = ("id, sha256, name, origin, ext, received_at, valid, form_id, version, unit_id, unit, period, result, "
                f"received_basis, {void_of('files')}")
GROUPED_BY = "coalesce(form_id, ''), coalesce(unit_id, ''), coalesce(period, '')"
RECEIVED_BY = "substr(received_at, 1, 10) <= ?"
FILE_PAGE = 256  # rows read per query by iter_files
_NO_ISSUES = '"issues": []}'  # how the JSON of a file without issues ends, as `add` writes it (its last member)


@dataclass(frozen=True)
class FileRow:
    id: int
    sha256: str
    name: str
    origin: str
    ext: str
    received_at: dt.datetime
    valid: bool
    form_id: str | None
    version: int | None
    unit_id: str | None
    unit: str | None
    period: str | None
    records: list[dict]
    issues: list[dict]
    received_basis: str = "first-seen"  # a key of RECEIVED_BASES
    void: str | None = None  # why staff withdrew it (tuanjian ledger void); None: not withdrawn

    @property
    def counts(self) -> bool:
        """A submission whose records count: valid and not withdrawn. A void file is no submission at all."""
        return self.valid and self.void is None


class Ledger:
    """SQLite at <workspace>/.tuanjian/ledger.sqlite; every write in a transaction.

    `Ledger(root)` opens for writing: it makes the folders, migrates an older schema and clears torn temporary files
    from the archive. `Ledger(root, readonly=True)` only reads (for `status` and checks): nothing is created or
    migrated, and it works on a workspace without write permission; a missing ledger reads as an empty one.
    A ledger that cannot be used raises TuanjianError in Chinese (never a bare sqlite3 error)."""

    # How a new file's reply is written, in the same insert as the file (replies.py): `answered` — it counts as
    # answered already (a rebuild registers files that came before); `mail` — see `expect_mail`.
    answered = False
    mail: tuple[str, str | None, str | None] | None = None

    def __init__(self, root: Path, *, readonly: bool = False):
        self.dir = Path(root) / LEDGER_DIR
        self.path = self.dir / LEDGER_FILE
        self.readonly = readonly
        self.db = self._open_readonly() if readonly else self._open_writable()

    def expect_mail(self, origin: str | None, sender: str | None = None, automatic: str | None = None) -> None:
        """The files recorded next came in the mail `origin` (their origins begin with it; None: no mail): their
        reply goes to `sender`, one reply for all of them, or none when `automatic` says why the mail was itself
        sent by a machine. Written with each file, so that a run killed after it never loses the address."""
        self.mail = (origin, sender, automatic) if origin is not None else None

    @classmethod
    def open_readonly(cls, root: Path) -> Ledger:
        return cls(root, readonly=True)

    def _open_writable(self) -> sqlite3.Connection:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            (self.dir / ARCHIVE_DIR).mkdir(exist_ok=True)
        except OSError as exc:
            raise TuanjianError(_os_issue(exc, self.dir)) from None
        db = None
        try:
            db = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT)  # transactions are explicit
            # sqlite opens lazily: a file that is no database fails here, on the first statement
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA foreign_keys=ON")
            _refuse_newer(db)
            self.db = db
            self._migrate()
        except sqlite3.Error as exc:
            _close(db)
            raise TuanjianError(_fault(exc, self.path, writing=True)) from None
        except BaseException:
            _close(db)
            raise
        sweep_temp(self.dir / ARCHIVE_DIR, now=time.time())  # file ages, not business time: the clock is right here
        return db

    def _open_readonly(self) -> sqlite3.Connection:
        if not self.path.exists():  # no ledger yet: an empty one, in memory, so that nothing is created
            return _migrated(sqlite3.connect(":memory:", isolation_level=None))
        db = None
        try:
            db = connect_readonly(self.path)
            version = _refuse_newer(db)
            if version < len(MIGRATIONS):  # an older schema: read a migrated copy, the file stays as it is
                copy = sqlite3.connect(":memory:", isolation_level=None)
                db.backup(copy)
                _close(db)
                db = _migrated(copy)
            return db
        except sqlite3.Error as exc:
            _close(db)
            raise TuanjianError(_fault(exc, self.path, writing=False)) from None
        except BaseException:
            _close(db)
            raise

    def _migrate(self) -> None:
        _migrated(self.db)

    @property
    def schema_version(self) -> int:
        with _faults(self):
            return self.db.execute("PRAGMA user_version").fetchone()[0]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self.readonly:
            raise RuntimeError("the ledger was opened read-only")
        with _faults(self):
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                if self.db.in_transaction:  # sqlite may already have rolled back (disk full, for one)
                    self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- writing ---------------------------------------------------------------------------------------

    def known(self, sha256: str) -> int | None:
        with _faults(self):
            row = self.db.execute("SELECT id FROM files WHERE sha256 = ?", (sha256,)).fetchone()
        return row[0] if row else None

    @property
    def archive_dir(self) -> Path:
        """Where originals are kept, named by their sha256."""
        return self.dir / ARCHIVE_DIR

    def archive_path(self, sha256: str, ext: str) -> Path:
        return self.archive_dir / f"{sha256}{ext}"

    def rearchive(self, sha256: str, data: bytes) -> bool:
        """A known file seen again: if its archived original is gone (deleted, or its bytes no longer match),
        keep this copy instead, under the name the ledger knows. True when it was archived again."""
        row = self.db.execute("SELECT ext FROM files WHERE sha256 = ? AND size > 0", (sha256,)).fetchone()
        if row is None:
            return False
        path = self.archive_path(sha256, row[0])
        try:
            if path.exists() and path.stat().st_size == len(data):
                return False
        except OSError:
            pass
        path.unlink(missing_ok=True)
        self.archive(sha256, row[0], data)
        return True

    def archive(self, sha256: str, ext: str, data: bytes, mode: int | None = None) -> Path:
        if self.readonly:
            raise RuntimeError("the ledger was opened read-only")
        return archive(self.dir / ARCHIVE_DIR, sha256, ext, data, mode)

    def add_many(self, rows: list[dict]) -> list[tuple[int, bool]]:
        """Several files in one transaction (see `add` for one); their replies and sightings inserted together at
        the end of it (one statement each, not two per file)."""
        later: tuple[list, list] = ([], [])
        with self.transaction():
            out = [self._add(**row, later=later) for row in rows]
            self._added(later)
        return out

    def add(self, *, sha256: str, name: str, origin: str, ext: str, size: int, received_at: dt.datetime,
            now: dt.datetime, result: dict, valid: bool, form_id, version, unit_id, unit, period) -> tuple[int, bool]:
        """Record a file; (id, True) when new, (id of the one already there, False) when another run was first."""
        with self.transaction():
            return self._add(sha256=sha256, name=name, origin=origin, ext=ext, size=size, received_at=received_at,
                             now=now, result=result, valid=valid, form_id=form_id, version=version, unit_id=unit_id,
                             unit=unit, period=period)

    def _add(self, *, sha256: str, name: str, origin: str, ext: str, size: int, received_at: dt.datetime,
             now: dt.datetime, result: dict | str, valid: bool, form_id, version, unit_id, unit, period,
             received_basis: str = "first-seen", later: tuple[list, list] | None = None) -> tuple[int, bool]:
        """One file's row; its reply (when new) and its sighting inserted here, or added to `later` (replies,
        sightings) for _added to insert in the same transaction."""
        if not isinstance(result, str):
            result = json.dumps(result, ensure_ascii=False, default=_json_default)
        cur = self.db.execute(
            "INSERT INTO files (sha256, name, origin, ext, size, received_at, ingested_at, valid, form_id, "
            "version, unit_id, unit, period, result, received_basis) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT (sha256) DO NOTHING",
            (sha256, name, origin, ext, size, _iso(received_at), _iso(now), int(valid), form_id, version,
             unit_id, unit, period, result, received_basis))
        new = cur.rowcount == 1
        file_id = cur.lastrowid if new else self.known(sha256)
        assert file_id is not None  # the row is there: just inserted, or the one whose sha256 stopped the insert
        if not new:  # another run recorded it first: this copy may have arrived earlier
            self._earliest(file_id, received_at, received_basis)
        else:  # a new file is owed its reply from the moment it is recorded, in the same transaction (replies.py)
            mail, sender, automatic = self.mail if self.mail and origin.startswith(self.mail[0]) else (None,) * 3
            reply = (sha256, "before" if self.answered else "due", _iso(now), sender, mail, automatic)
            if later is None:
                self.db.execute(_REPLY_INSERT, reply)
            else:
                later[0].append(reply)
        sighting = (file_id, name, origin, _iso(now))
        if later is None:
            self.db.execute(_SIGHTING_INSERT, sighting)
        else:
            later[1].append(sighting)
        return file_id, new

    def _added(self, later: tuple[list, list]) -> None:
        """The replies and sightings _add set aside, inserted (inside the caller's transaction)."""
        replies, sightings = later
        if replies:
            self.db.executemany(_REPLY_INSERT, replies)
        if sightings:
            self.db.executemany(_SIGHTING_INSERT, sightings)

    def _earliest(self, file_id: int, received_at: dt.datetime, basis: str) -> bool:
        """The same content arrived again: its received time becomes the earliest arrival known, whatever the order
        of reading; a time stated by staff replaces what was known when it is no later (a copy sent again, named
        with the day it came, must not make the unit late: the earliest arrival counts whoever says it). True when
        the ledger changed."""
        if basis == "stated":
            cur = self.db.execute("UPDATE files SET received_at = ?, received_basis = ? WHERE id = ? AND "
                                  "(received_at > ? OR received_at = ? AND received_basis != ?)",
                                  (_iso(received_at), basis, file_id, _iso(received_at), _iso(received_at), basis))
        else:
            cur = self.db.execute("UPDATE files SET received_at = ?, received_basis = ? WHERE id = ? AND "
                                  "received_basis != 'stated' AND received_at > ?",
                                  (_iso(received_at), basis, file_id, _iso(received_at)))
        return cur.rowcount > 0

    def add_notes(self, notes: dict[int, list[dict]]) -> None:
        """Warnings learnt about recorded files after they were checked (what a later arrival says of them), kept
        with each file's own issues — the master's 问题清单 lists them on every run; one already kept is not added
        again."""
        with self.transaction():
            for file_id, issues in notes.items():
                row = self.db.execute("SELECT result FROM files WHERE id = ?", (file_id,)).fetchone()
                if row is None:
                    continue
                result = json.loads(row[0], parse_constant=_no_number)
                have = {(i.get("code"), i.get("message")) for i in result.get("issues", [])}
                fresh = [i for i in issues if (i.get("code"), i.get("message")) not in have]
                if fresh:
                    result["issues"] = result.get("issues", []) + fresh  # ("issues" stays the last member)
                    self.db.execute("UPDATE files SET result = ? WHERE id = ?",
                                    (json.dumps(result, ensure_ascii=False, default=_json_default), file_id))

    def notes_through(self) -> int | None:
        """The last file whose notes about earlier files were worked out (merge.stored_notes); None: never."""
        got = self.get("notes-through")
        return int(got) if got else None

    def note_notes_through(self, file_id: int) -> None:
        self.put("notes-through", str(file_id))

    def ids_after(self, file_id: int) -> set[int]:
        """The files recorded after this one (by whatever command: merge, fetch-mail, watch)."""
        with _faults(self):
            return {r[0] for r in self.db.execute("SELECT id FROM files WHERE id > ?", (file_id,))}

    def last_id(self) -> int:
        with _faults(self):
            return self.db.execute("SELECT coalesce(max(id), 0) FROM files").fetchone()[0]

    def received_of(self, file_id: int) -> tuple[dt.datetime, str] | None:
        """A file's received time and what it rests on (RECEIVED_BASES)."""
        row = self.db.execute("SELECT received_at, received_basis FROM files WHERE id = ?", (file_id,)).fetchone()
        return (dt.datetime.fromisoformat(row[0]), row[1]) if row else None

    def get(self, key: str) -> str | None:
        with _faults(self):
            row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, value: str) -> None:
        with self.transaction():
            self.db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = ?",
                            (key, value, value))

    # what the workspace remembers between runs: the meta keys are this class's own, callers use these names

    def note_sent(self, unit_id: str, form_id: str, version: int, period: str, day: dt.date | None,
                  due: dt.date | None = None) -> None:
        """A unit was sent `version` of a form for `period`, due on `due` (kept for "what changed" next time);
        `day` becomes the version's first distribution day unless one is known."""
        self.put(f"distributed:{unit_id}:{form_id}", f"{version} {period}" + (f" {due.isoformat()}" if due else ""))
        if day is not None and self.first_distributed(form_id, version) is None:
            self.put(f"first-distributed:{form_id}:{version}", day.isoformat())

    def last_sent(self, unit_id: str, form_id: str) -> int | None:
        """The version of a form a unit was last sent, if it was ever sent one."""
        last = self.last_distribution(unit_id, form_id)
        return last[0] if last else None

    def last_distribution(self, unit_id: str, form_id: str) -> tuple[int, str, dt.date | None] | None:
        """(version, period, due date if kept) of what a unit was last sent of a form."""
        last = self.get(f"distributed:{unit_id}:{form_id}")
        if not last:
            return None
        parts = last.split()
        return int(parts[0]), parts[1] if len(parts) > 1 else "", dt.date.fromisoformat(parts[2]) if len(parts) > 2 else None

    def copy_written(self, key: str, sha256: str) -> None:
        """A distributed copy was written at `key` (its path in the workspace) with these bytes."""
        self.put(f"distributed-copy:{key}", sha256)

    def copy_sha(self, key: str) -> str | None:
        """The hash of the bytes last written as the distributed copy at `key`."""
        return self.get(f"distributed-copy:{key}")

    def first_distributed(self, form_id: str, version: int) -> str | None:
        """The day (ISO) a version of a form was first distributed, if this ledger knows."""
        return self.get(f"first-distributed:{form_id}:{version}")

    def master_made_from(self) -> str | None:
        """What the last master written was made from (see merge)."""
        return self.get("master")

    def note_master(self, made_from: str) -> None:
        self.put("master", made_from)

    def seen_paths(self) -> dict[str, tuple[int, int, int, str, str | None]]:
        """What merge read before, by path: (size, mtime_ns, inode, sha256, members as JSON)."""
        with _faults(self):
            rows = self.db.execute("SELECT path, size, mtime_ns, inode, sha256, members FROM seen_paths").fetchall()
        return {r[0]: r[1:] for r in rows}

    def note_seen(self, rows: list[tuple[str, int, int, int, str, str | None]]) -> None:
        """Remember files as read now: (path, size, mtime_ns, inode, sha256, members as JSON)."""
        with self.transaction():
            self.db.executemany("INSERT INTO seen_paths (path, size, mtime_ns, inode, sha256, members) "
                                "VALUES (?,?,?,?,?,?) ON CONFLICT (path) DO UPDATE SET size = excluded.size, "
                                "mtime_ns = excluded.mtime_ns, inode = excluded.inode, sha256 = excluded.sha256, "
                                "members = excluded.members", rows)

    def file_ids(self) -> dict[str, int]:
        """sha256 -> id of every file recorded."""
        with _faults(self):
            return dict(self.db.execute("SELECT sha256, id FROM files").fetchall())

    def arrivals(self) -> list[tuple[int, str, str, str | None]]:
        """(id, received time as stored, its basis, why it is void or None) of every file in the order received: all
        the master's inputs key reads of the files, without their records."""
        with _faults(self):
            return self.db.execute(f"SELECT id, received_at, received_basis, {void_of('files')} FROM files "
                                   "ORDER BY received_at, id").fetchall()

    # withdrawn files (voiding.py)

    def find(self, text: str) -> list[FileRow]:
        """The files a person means by `text`: their name as received, or the start of their sha256 (as 来源 shows
        it), in the order received; records and issues not read."""
        sha = "".join(text.split()).lower()
        by_sha = len(sha) >= 8 and all(c in "0123456789abcdef" for c in sha)
        with _faults(self):
            ids = [i for (i,) in self.db.execute(
                "SELECT id FROM files WHERE name = ? OR (? AND substr(sha256, 1, ?) = ?) ORDER BY received_at, id",
                (text.strip(), by_sha, len(sha), sha))]
        return list(self.iter_files(records=False, issues=False, ids=set(ids)))

    def set_void(self, sha256: str, void: bool, reason: str, who: str | None, at: dt.datetime) -> str | None:
        """Withdraw a file (`void`) or restore it, unless it is so already; returns why it was void before (None: it
        counted), read in the transaction that writes, so that two runs at once record it once."""
        with self.transaction():
            was = self.db.execute(f"SELECT {void_of('files')} FROM files WHERE sha256 = ?", (sha256,)).fetchone()[0]
            if (was is not None) != void:
                self.db.execute("INSERT INTO voids (sha256, action, reason, who, at) VALUES (?,?,?,?,?)",
                                (sha256, "void" if void else "undo", reason, who, _iso(at)))
        return was

    def voids(self) -> list[tuple]:
        """Every void and undo recorded (rows of VOID_COLUMNS), oldest first."""
        with _faults(self):
            return self.db.execute(f"SELECT {', '.join(VOID_COLUMNS)} FROM voids ORDER BY id").fetchall()

    def note_voids(self, rows: list[tuple]) -> None:
        """Record voids and undos (rows of VOID_COLUMNS), in this order, in one transaction."""
        with self.transaction():
            self.db.executemany(f"INSERT INTO voids ({', '.join(VOID_COLUMNS)}) "
                                f"VALUES ({','.join('?' * len(VOID_COLUMNS))})", rows)

    def void_reasons(self, ids: Collection[int]) -> dict[int, str]:
        """id -> why it is void, of those of these files that are void now."""
        return {i: r for i, r in self._per_file(ids, void_of("files")).items() if r is not None}

    def mail_taken(self, key: str) -> bool:
        with _faults(self):
            return self.db.execute("SELECT 1 FROM mails WHERE key = ?", (key,)).fetchone() is not None

    def take_mail(self, key: str, folder: str, arrived: dt.datetime, sender: str | None, subject: str | None,
                  files: int, now: dt.datetime) -> None:
        with self.transaction():
            self.db.execute("INSERT OR IGNORE INTO mails (key, folder, arrived, sender, subject, files, taken_at) "
                            "VALUES (?,?,?,?,?,?,?)", (key, folder, _iso(arrived), sender, subject, files, _iso(now)))

    def unreturned(self) -> list[tuple[int, str, str, str, str | None]]:
        """Invalid files whose 退回件 has not been written yet: (id, sha256, ext, name, the name it was given or
        None)."""
        with _faults(self):
            return self.db.execute("SELECT id, sha256, ext, name, return_stem FROM files WHERE valid = 0 AND "
                                   "returned = 0 ORDER BY received_at, id").fetchall()

    def name_returns(self, stems: list[tuple[int, str]]) -> None:
        """The names (without suffix) given to files' 退回件, (file id, name), before they are written."""
        with self.transaction():
            self.db.executemany("UPDATE files SET return_stem = ? WHERE id = ?", [(s, i) for i, s in stems])

    def mark_returned(self, file_ids: list[int]) -> None:
        with self.transaction():
            self.db.executemany(_RETURNED, [(i,) for i in file_ids])

    def seen_again(self, file_id: int, name: str, origin: str, now: dt.datetime,
                   received_at: dt.datetime | None = None, basis: str = "first-seen") -> bool:
        """Another arrival of content already recorded; with its received time, the earliest one counts.
        True when that moved the file's received time."""
        with self.transaction():
            self.db.execute("INSERT INTO sightings (file_id, name, origin, seen_at) VALUES (?,?,?,?)",
                            (file_id, name, origin, _iso(now)))
            return received_at is not None and self._earliest(file_id, received_at, basis)

    # --- reading ---------------------------------------------------------------------------------------

    def files(self) -> list[FileRow]:
        """Every file, in the order received (ties by ingestion order)."""
        return list(self.iter_files())

    def iter_files(self, *, records: bool | Collection[str] = True, issues: bool = True,
                   ids: Collection[int] | None = None, forms: Collection[str] | None = None,
                   until: dt.date | None = None, grouped: bool = False, with_issues: bool = False) -> Iterator[FileRow]:
        """The files page by page (FILE_PAGE rows at a time, never all at once), in the order received (ties by
        ingestion order); `grouped`: by form, unit and period first (GROUPED_BY, each one's files together), in the
        order received within. Only those in `ids` (a set), of `forms`, received on or before `until` (its day included),
        and with `with_issues` only those that have issues (a few without may come too, with none).
        A file's records (`records`: of every file, or only of these forms' files) and issues are parsed from its
        JSON only when asked for (else empty lists).

        The order is settled first (the ids alone), the rows then read a page at a time: SQLite sorting whole rows
        would hold or spill every file's JSON. A file gone meanwhile is left out; `reading()` keeps passes whole."""
        where: list[str] = []
        params: list[object] = []
        if until is not None:
            where.append(RECEIVED_BY)
            params.append(until.isoformat())
        if forms is not None:
            where.append(f"form_id IN ({','.join('?' * len(forms))})")
            params += list(forms)
        if with_issues:
            where.append("substr(result, ?) != ?")
            params += [-len(_NO_ISSUES), _NO_ISSUES]
        order = f"{GROUPED_BY}, received_at, id" if grouped else "received_at, id"
        with _faults(self):
            found = self.db.execute(f"SELECT id FROM files {'WHERE ' + ' AND '.join(where) if where else ''} "
                                    f"ORDER BY {order}", params)
            wanted = array("q", (i for (i,) in found if ids is None or i in ids))
        columns = FILE_COLUMNS if records or issues else FILE_COLUMNS.replace("result", "NULL")
        for start in range(0, len(wanted), FILE_PAGE):
            page = wanted[start:start + FILE_PAGE]
            with _faults(self):
                rows = {r[0]: r for r in self.db.execute(
                    f"SELECT {columns} FROM files WHERE id IN ({','.join('?' * len(page))})", page.tolist())}
            for i in page:
                if i in rows:
                    r = rows[i]
                    yield _file_row(r, records=records if isinstance(records, bool) else r[7] in records,
                                    issues=issues)

    def names(self, ids: Collection[int]) -> dict[int, str]:
        """id -> name of these files (a few at a time: `来源` names the file that replaced each)."""
        return self._per_file(ids, "name")

    def _per_file(self, ids: Collection[int], expr: str) -> dict[int, Any]:
        """id -> the SQL expression `expr` over each of these files, read FILE_PAGE at a time."""
        out: dict[int, Any] = {}
        wanted = list(ids)
        for start in range(0, len(wanted), FILE_PAGE):
            page = wanted[start:start + FILE_PAGE]
            with _faults(self):
                out.update(self.db.execute(f"SELECT id, {expr} FROM files WHERE id IN ({','.join('?' * len(page))})",
                                           page).fetchall())
        return out

    @contextmanager
    def reading(self) -> Iterator[None]:
        """Several reads that must see one state of the ledger (the master's passes over it): one read transaction,
        whatever another process records meanwhile. Nothing is written inside; nested, the outer one holds."""
        if self.db.in_transaction:
            yield
            return
        with _faults(self):
            self.db.execute("BEGIN")
        try:
            yield
        finally:
            try:
                self.db.execute("ROLLBACK")  # nothing was written: ending the read is all there is to do
            except sqlite3.Error:
                pass

    # replies and reminders by mail (replies.py, reminders.py)

    def replies(self, states: Iterable[str]) -> list[ReplyRow]:
        """The replies in these states, with their files, in the order the files were received."""
        states = list(states)
        with _faults(self):
            rows = self.db.execute(
                "SELECT f.id, f.sha256, f.name, f.origin, f.ext, f.received_at, f.valid, f.form_id, f.version, "
                f"f.unit_id, f.unit, f.period, f.result, f.received_basis, {void_of('f')}, r.state, r.kind, r.recipient, "
                "r.at, r.detail, "
                "r.mail, r.automatic, r.message, r.forced, r.cc "
                f"FROM replies r JOIN files f ON f.sha256 = r.sha256 WHERE r.state IN ({','.join('?' * len(states))}) "
                "ORDER BY f.received_at, f.id", states).fetchall()
        return [ReplyRow(_file_row(r), r[15], r[16], r[17], dt.datetime.fromisoformat(r[18]), r[19], r[20], r[21],
                         r[22], bool(r[23]), r[24]) for r in rows]

    def set_replies(self, shas: Iterable[str], state: str, at: dt.datetime, *, was: Iterable[str],
                    kinds: dict[str, str] | None = None, recipient: str | None = None, detail: str | None = None,
                    message: str | None = None, forced: bool | None = None, cc: str | None = None) -> list[str]:
        """Move these files' replies to `state`, each only from one of the states `was`, in one committed
        transaction; kind (by sha256), recipient, message and forced are kept unless given — forced is cleared
        once the reply is in a final state (anything but 'due' or 'sending'). The sha256s moved."""
        was, moved = list(was), []
        with self.transaction():
            for sha in shas:
                cur = self.db.execute(
                    "UPDATE replies SET state = ?, at = ?, kind = coalesce(?, kind), recipient = coalesce(?, recipient), "
                    "detail = ?, message = coalesce(?, message), cc = coalesce(?, cc), "
                    "forced = CASE WHEN ? IN ('due', 'sending') THEN coalesce(?, forced) ELSE 0 END "
                    f"WHERE sha256 = ? AND state IN ({','.join('?' * len(was))})",
                    (state, _iso(at), (kinds or {}).get(sha), recipient, detail, message, cc, state,
                     None if forced is None else int(forced), sha, *was))
                if cur.rowcount:
                    moved.append(sha)
        return moved

    def replies_sent(self, recipient: str | None, day: dt.date) -> int:
        """How many replies were handed to the server for an address (None: for all) on a day (each mail once,
        however many files it answered; what became of them aside)."""
        with _faults(self):
            return self.db.execute(
                "SELECT count(DISTINCT message) FROM replies WHERE (? IS NULL OR lower(recipient) = lower(?)) "
                "AND substr(at, 1, 10) = ? AND state IN ('sending', 'sent', 'uncertain')",
                (recipient, recipient, day.isoformat())).fetchone()[0]

    def first_valid(self, unit_id: str, form_id: str, period: str) -> tuple[dt.datetime, str, str] | None:
        """The first valid file received for a unit's form and period — what 按时 / 逾期 rests on (status.py):
        (received, name, sha256). A void file is no submission."""
        with _faults(self):
            row = self.db.execute("SELECT received_at, name, sha256 FROM files WHERE valid = 1 AND unit_id = ? AND "
                                  f"form_id = ? AND period = ? AND {void_of('files')} IS NULL "
                                  "ORDER BY received_at, id LIMIT 1",
                                  (unit_id, form_id, period)).fetchone()
        return (dt.datetime.fromisoformat(row[0]), row[1], row[2]) if row else None

    def restore_replies(self, replies: list[tuple], reminders: list[tuple]) -> None:
        """What an old ledger said of replies (rows of REPLY_COLUMNS) and reminders (rows of REMINDER_COLUMNS), kept
        as it was: a rebuild writes them before it registers the files again (as answered), so that whenever it
        stops, no file is owed a reply it was not owed before."""
        with self.transaction():
            self.db.executemany(f"INSERT OR REPLACE INTO replies ({', '.join(REPLY_COLUMNS)}) "
                                f"VALUES ({','.join('?' * len(REPLY_COLUMNS))})", replies)
            self.db.executemany(f"INSERT OR IGNORE INTO reminders ({', '.join(REMINDER_COLUMNS)}) "
                                f"VALUES ({','.join('?' * len(REMINDER_COLUMNS))})", reminders)

    def reminded(self, unit_id: str, form_id: str, period: str, kind: str) -> tuple[dt.date, str] | None:
        """The last day a reminder of this kind was recorded for a unit's form and period, and its state."""
        with _faults(self):
            row = self.db.execute("SELECT day, state FROM reminders WHERE unit_id = ? AND form_id = ? AND period = ? "
                                  "AND kind = ? ORDER BY day DESC LIMIT 1", (unit_id, form_id, period, kind)).fetchone()
        return (dt.date.fromisoformat(row[0]), row[1]) if row else None

    def reminders_in(self, state: str) -> list[tuple[str, str, str, str, dt.date, str, dt.datetime]]:
        """(unit id, form, period, kind, day, recipient, when) of the reminders in `state`."""
        with _faults(self):
            rows = self.db.execute("SELECT unit_id, form_id, period, kind, day, recipient, at FROM reminders "
                                   "WHERE state = ? ORDER BY at, unit_id, form_id, period", (state,)).fetchall()
        return [(u, f, p, k, dt.date.fromisoformat(d), r, dt.datetime.fromisoformat(a)) for u, f, p, k, d, r, a in rows]

    def set_reminders(self, keys: Iterable[tuple[str, str, str, str, dt.date]], state: str | None, at: dt.datetime,
                      recipient: str = "", detail: str | None = None) -> None:
        """Record reminders (unit id, form, period, kind, day) in `state`, in one committed transaction; None
        forgets them (not sent after all: tried again later)."""
        rows = [(u, f, p, k, d.isoformat()) for u, f, p, k, d in keys]
        with self.transaction():
            if state is None:
                self.db.executemany("DELETE FROM reminders WHERE unit_id = ? AND form_id = ? AND period = ? AND "
                                    "kind = ? AND day = ?", rows)
            else:
                self.db.executemany(
                    "INSERT INTO reminders (unit_id, form_id, period, kind, day, state, recipient, at, detail) "
                    "VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (unit_id, form_id, period, kind, day) DO UPDATE SET "
                    "state = excluded.state, at = excluded.at, detail = excluded.detail, "
                    "recipient = CASE WHEN excluded.recipient = '' THEN recipient ELSE excluded.recipient END",
                    [(*r, state, recipient, _iso(at), detail) for r in rows])

    def integrity_ok(self) -> bool:
        with _faults(self):
            return self.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@dataclass(frozen=True)
class ReplyRow:
    """A file's reply as the ledger keeps it (see replies.py), with the file it answers."""

    file: FileRow
    state: str
    kind: str | None
    recipient: str | None
    at: dt.datetime
    detail: str | None
    mail: str | None = None  # the mail the file came in (its origin), when fetchmail recorded it
    automatic: str | None = None  # why that mail gets no automatic reply
    message: str | None = None  # the Message-ID of the reply that carried it
    forced: bool = False  # staff asked for it (--resend): owed until sent or given up, exempt from expiry and caps
    cc: str | None = None  # the mail's From, copied when the reply went to the unit's roster address


_FILE_FIELDS = tuple(f.name for f in fields(FileRow))


def _file_row(r, *, records: bool = True, issues: bool = True) -> FileRow:
    """A FileRow from FILE_COLUMNS, in their order; records and issues only when asked for (issues alone of a file
    whose JSON ends with an empty "issues" — its last member, the one json.loads keeps — need no parsing).

    Its fields are filled directly: a frozen dataclass's __init__ sets each through object.__setattr__, three times
    the cost of the rest, and the master reads every file several times over."""
    parse = records or (issues and not r[12].endswith(_NO_ISSUES))
    result = json.loads(r[12], parse_constant=_no_number) if parse else {}
    row = object.__new__(FileRow)
    row.__dict__.update(zip(_FILE_FIELDS, (
        r[0], r[1], r[2], r[3], r[4], dt.datetime.fromisoformat(r[5]), bool(r[6]), r[7], r[8], r[9], r[10], r[11],
        result.get("records", []) if records else [], result.get("issues", []) if issues else [], r[13], r[14])))
    return row


# --- opening and faults ------------------------------------------------------------------------------------

def connect_readonly(path: Path) -> sqlite3.Connection:
    """Open an existing ledger file for reading only (URI mode=ro): never creates, migrates or writes it.

    A WAL ledger needs its -shm file writable even to read; in a folder we may not write in, fall back to
    immutable=1, which reads the database file alone — right when nobody writes it, and nobody can write there
    but an administrator. Errors surface here, on the first statement, not later."""
    uri = Path(path).absolute().as_uri()
    db = sqlite3.connect(f"{uri}?mode=ro", uri=True, isolation_level=None, timeout=BUSY_TIMEOUT)
    try:
        db.execute("PRAGMA user_version").fetchone()
        return db
    except sqlite3.OperationalError as exc:
        db.close()
        if _primary(exc) not in (SQLITE_READONLY, SQLITE_CANTOPEN) or _writable(Path(path).parent):
            raise
    db = sqlite3.connect(f"{uri}?mode=ro&immutable=1", uri=True, isolation_level=None)
    db.execute("PRAGMA user_version").fetchone()
    return db


def _migrated(db: sqlite3.Connection) -> sqlite3.Connection:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    for n, script in enumerate(MIGRATIONS[version:], start=version + 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            for statement in script:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {n}")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    return db


def _refuse_newer(db: sqlite3.Connection) -> int:
    """The schema version; a ledger written by a newer tuanjian is not touched (its tables may mean other things)."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        _close(db)
        raise TuanjianError(Issue.make("ledger-newer", file=LEDGER_SHOWN, version=version, known=len(MIGRATIONS)))
    return version


def _close(db: sqlite3.Connection | None) -> None:
    if db is not None:
        try:
            db.close()
        except sqlite3.Error:
            pass


# SQLite's primary result codes (the low byte of an extended code)
SQLITE_PERM, SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY, SQLITE_IOERR, SQLITE_CORRUPT = 3, 5, 6, 8, 10, 11
SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_NOTADB = 13, 14, 26
_BY_MESSAGE = (("locked", SQLITE_BUSY), ("malformed", SQLITE_CORRUPT), ("not a database", SQLITE_NOTADB),
               ("readonly", SQLITE_READONLY), ("unable to open", SQLITE_CANTOPEN), ("is full", SQLITE_FULL),
               ("disk i/o", SQLITE_IOERR))
_REASON = {SQLITE_CORRUPT: "文件已损坏", SQLITE_NOTADB: "不是登记簿文件，或已损坏", SQLITE_IOERR: "读写出错（磁盘或网络故障）",
           SQLITE_CANTOPEN: "无法打开", SQLITE_BUSY: "被锁定", SQLITE_LOCKED: "被锁定"}


def _primary(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return code & 0xFF
    text = str(exc).lower()
    return next((c for words, c in _BY_MESSAGE if words in text), None)


def _writable(directory: Path) -> bool:
    return os.access(directory, os.W_OK)


def _fault(exc: sqlite3.Error, path: Path, *, writing: bool) -> Issue:
    """What a sqlite3 error means to the person running tuanjian."""
    code = _primary(exc)
    note = f"SQLite：{exc}"
    if code in (SQLITE_BUSY, SQLITE_LOCKED):
        return Issue.make("ledger-locked", file=LEDGER_SHOWN, reason=_REASON[code], note=note)
    if code == SQLITE_FULL:
        return Issue.make("disk-full", file=LEDGER_SHOWN, detail=str(path))
    if writing and (code in (SQLITE_READONLY, SQLITE_CANTOPEN, SQLITE_PERM, SQLITE_IOERR)
                    and not (_writable(path.parent) and (not path.exists() or os.access(path, os.W_OK)))):
        return Issue.make("workspace-readonly", file=LEDGER_SHOWN, detail=f"{path.parent}：没有写入权限")
    if code in (SQLITE_CANTOPEN, SQLITE_PERM) and path.exists() and not os.access(path, os.R_OK):
        return Issue.make("os-error", file=LEDGER_SHOWN, detail=str(path), reason="没有读取权限")  # not damaged
    return Issue.make("ledger-damaged", file=LEDGER_SHOWN, reason=_REASON.get(code, "无法读取") if code is not None else "无法读取",
                      note=note)


@contextmanager
def _faults(ledger: Ledger) -> Iterator[None]:
    """Errors of the file, not of the code, as TuanjianError: damage found by a query, a lock, a full disk."""
    try:
        yield
    except (sqlite3.IntegrityError, sqlite3.ProgrammingError, sqlite3.InterfaceError):
        raise  # a mistake in our SQL, not a fault of the ledger
    except sqlite3.Error as exc:
        raise TuanjianError(_fault(exc, ledger.path, writing=not ledger.readonly)) from None


def _os_issue(exc: OSError, path: Path) -> Issue:
    from .xlsxio import os_reason

    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return Issue.make("disk-full", file=path.name, detail=str(path))
    if isinstance(exc, PermissionError) or exc.errno == errno.EROFS:
        return Issue.make("workspace-readonly", file=LEDGER_DIR, detail=f"{path}：{os_reason(exc)}")
    return Issue.make("cannot-write", file=path.name, detail=str(path), reason=os_reason(exc))


# --- the archive of originals ------------------------------------------------------------------------------

class ArchiveError(TuanjianError):
    """An original could not be archived; pickles whole, since it is raised in worker processes."""

    def __reduce__(self):
        return (type(self), (self.issues,))


def _no_number(name: str) -> None:
    """NaN or ±Infinity in a stored result (an older release let a NaN cell through): no value, as a blank cell."""
    return None


def archive(directory: Path, sha256: str, ext: str, data: bytes | Iterable[bytes], mode: int | None = None) -> Path:
    """Keep the original bytes under their hash; an archived file is never written again.

    Written to a temporary name and renamed, so a killed process leaves no torn original; not fsynced one by one
    (thousands of small files), since a process kill cannot lose what the OS already holds. The file gets the
    workspace's usual permissions (0o666 less the umask), narrowed to the source's own when `mode` (its st_mode)
    is given: archiving never lets more people read an original than could read the file it came from.
    A failure (disk full…) leaves no temporary file and raises ArchiveError in Chinese."""
    path = Path(directory) / f"{sha256}{ext}"
    if path.exists():
        return path
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    perms = 0o666 & (mode if mode is not None else 0o666)  # the umask is applied by open(2)
    try:
        _write_new(tmp, data, perms)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise ArchiveError(_os_issue(exc, path)) from None
    except BaseException:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise
    return path


def _write_new(path: Path, data: bytes | Iterable[bytes], perms: int) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags, perms)
    except FileExistsError:  # left by a killed process whose pid this one now has: ours to replace
        path.unlink()
        fd = os.open(path, flags, perms)
    with os.fdopen(fd, "wb") as f:
        for chunk in [data] if isinstance(data, bytes) else data:
            f.write(chunk)


def archive_file(directory: Path, src: Path, ext: str, mode: int | None = None) -> str:
    """A file kept as received (a zip, a saved mail) without holding it in memory: copied in chunks and hashed as
    they are copied — one reading, so the copy is always the bytes its name says (a zip still being written into
    the inbox read twice gave two contents). Returns its sha256."""
    h = hashlib.sha256()
    unread: list[OSError] = []

    def chunks(source):
        while True:
            try:
                chunk = source.read(1 << 20)
            except OSError as exc:  # the source's fault, not the archive's
                unread.append(exc)
                raise
            if not chunk:
                return
            h.update(chunk)
            yield chunk

    tmp = Path(directory) / f".incoming{ext}.{os.getpid()}.tmp"  # (named as temp_files finds what a kill leaves)
    perms = 0o666 & (mode if mode is not None else 0o666)
    with open(src, "rb") as source:  # (a source that cannot be opened raises OSError: the caller refuses it)
        try:
            _write_new(tmp, chunks(source), perms)
            path = Path(directory) / f"{h.hexdigest()}{ext}"
            if path.exists():  # kept already: an archived file is never written again
                tmp.unlink()
            else:
                os.replace(tmp, path)
        except BaseException as exc:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
            if isinstance(exc, OSError) and not unread:  # writing the copy failed (a full disk): the workspace's
                raise ArchiveError(_os_issue(exc, Path(directory))) from None
            raise
    return h.hexdigest()


def source_mode(path: Path) -> int | None:
    """st_mode of a submission's file on disk, or of the container it came out of (a.zip!b.xlsx, m.eml#c.xlsx);
    None when nothing on disk holds it (a fetched mail's attachment)."""
    text = str(path)
    while text:
        try:
            return os.stat(text).st_mode
        except (OSError, ValueError):
            cut = max(text.rfind("!"), text.rfind("#"))
            if cut <= 0:
                return None
            text = text[:cut]
    return None


def temp_files(directory: Path) -> list[Path]:
    """Temporary files archive() left behind: .<sha256><ext>.<pid>.tmp (names looked at as text: the archive holds
    thousands of files, and this runs each time the ledger is opened)."""
    try:
        with os.scandir(directory) as entries:
            return sorted(Path(e.path) for e in entries if e.name.startswith(".") and e.name.endswith(".tmp"))
    except OSError:
        return []


def sweep_temp(directory: Path, *, now: float, max_age: float = TEMP_MAX_AGE) -> list[Path]:
    """Remove archive temporary files older than `max_age` seconds; return those removed.

    Age alone decides, not whether the pid in the name is alive: a workspace on a shared folder may be written from
    two computers, where a pid means nothing, and pids are reused. Writing one takes seconds (one write call, at
    most 50 MB), so an hour-old one is certainly torn, and one being written is never touched."""
    removed = []
    for tmp in temp_files(directory):
        try:
            if now - tmp.stat().st_mtime > max_age:
                tmp.unlink()
                removed.append(tmp)
        except OSError:  # gone already (another run swept it), or not ours to remove: harmless either way
            continue
    return removed


def refusal_key(origin: str) -> str:
    """The sha256 a submission refused before reading is recorded under: made from where it was, as it has no
    bytes (so no archived original; `ledger check` tells such rows by this key)."""
    return hashlib.sha256(b"refused\0" + origin.encode("utf-8", "replace")).hexdigest()


_RETURNED = "UPDATE files SET returned = 1 WHERE id = ?"


class ReturnedMarks:
    """A connection of its own to a ledger, for the thread that writes a run's 退回件: each is recorded as written
    as soon as it is on disk (so that a run killed meanwhile never has the next one write it again), while the
    ledger's own connection goes on reading — in WAL mode a reader never holds up this writer. A ledger not in WAL
    mode (a folder where sqlite cannot keep one: some network shares) would hold each mark up behind the master's
    read: there the marks wait in `waiting` for the ledger's own thread (Ledger.mark_returned); the names kept in
    the ledger (return_stem) still keep a killed run's 退回件 from being written twice."""

    def __init__(self, ledger: Ledger):
        self.path = ledger.path
        self.waiting: list[int] = []
        self.lock = threading.Lock()
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT, check_same_thread=False)
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.wal = str(self.db.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal"
        except sqlite3.Error as exc:
            raise TuanjianError(_fault(exc, self.path, writing=True)) from None

    def mark(self, file_ids: list[int]) -> None:
        if not self.wal:
            with self.lock:
                self.waiting += file_ids
            return
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.executemany(_RETURNED, [(i,) for i in file_ids])
            except BaseException:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise TuanjianError(_fault(exc, self.path, writing=True)) from None

    def taken(self) -> list[int]:
        """The marks waiting for the ledger's own thread (none in WAL mode), handed over once."""
        with self.lock:
            out, self.waiting = self.waiting, []
        return out

    def close(self) -> None:
        self.db.close()


_REPLY_INSERT = "INSERT OR IGNORE INTO replies (sha256, state, at, recipient, mail, automatic) VALUES (?,?,?,?,?,?)"
_SIGHTING_INSERT = "INSERT INTO sightings (file_id, name, origin, seen_at) VALUES (?,?,?,?)"


def _iso(t: dt.datetime) -> str:
    """The committee's naive wall-clock time (clock.py), so that times sort as text and compare in Python (a mail's
    date may carry a zone)."""
    if t.tzinfo is not None:
        from .clock import local

        t = local(t)
    return t.isoformat(timespec="seconds")


def _json_default(v):
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    raise TypeError(type(v).__name__)
