"""The ledger: every file received, in SQLite inside the workspace; originals archived by hash, never changed.

The master is rendered from the ledger alone, so the ledger stores what validation found (records and issues)
as JSON beside each file's facts. Which submission replaced which is derived at render time, not stored.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator


LEDGER_DIR = ".tuanjian"
LEDGER_FILE = "ledger.sqlite"
ARCHIVE_DIR = "archive"

# Each migration takes the schema from version N to N+1; PRAGMA user_version records where a ledger stands.
MIGRATIONS = [
    """
    CREATE TABLE files (
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
    );
    CREATE INDEX files_key ON files (form_id, unit_id, period);
    CREATE TABLE sightings (         -- every arrival, duplicates included
        id        INTEGER PRIMARY KEY,
        file_id   INTEGER NOT NULL REFERENCES files (id),
        name      TEXT NOT NULL,
        origin    TEXT NOT NULL,
        seen_at   TEXT NOT NULL
    );
    """,
    # v2: whether an invalid file's 退回件 has been written, so a run killed before writing it makes it next time;
    # and a small key/value table (what the last master was made from)
    """
    ALTER TABLE files ADD COLUMN returned INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # v3: mails taken from the mailbox, so that a second fetch takes nothing twice
    """
    CREATE TABLE mails (
        key       TEXT PRIMARY KEY,  -- Message-ID, or folder/UIDVALIDITY/UID when a mail has none
        folder    TEXT NOT NULL,
        arrived   TEXT NOT NULL,
        sender    TEXT,
        subject   TEXT,
        files     INTEGER NOT NULL,
        taken_at  TEXT NOT NULL
    );
    """,
]


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


class Ledger:
    """SQLite at <workspace>/.tuanjian/ledger.sqlite; every write in a transaction."""

    def __init__(self, root: Path):
        self.dir = Path(root) / LEDGER_DIR
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / ARCHIVE_DIR).mkdir(exist_ok=True)
        self.path = self.dir / LEDGER_FILE
        self.db = sqlite3.connect(self.path, isolation_level=None)  # transactions are explicit
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        for n, script in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.transaction():
                for statement in script.split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {n}")

    @property
    def schema_version(self) -> int:
        return self.db.execute("PRAGMA user_version").fetchone()[0]

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- writing ---------------------------------------------------------------------------------------

    def known(self, sha256: str) -> int | None:
        row = self.db.execute("SELECT id FROM files WHERE sha256 = ?", (sha256,)).fetchone()
        return row[0] if row else None

    def archive_path(self, sha256: str, ext: str) -> Path:
        return self.dir / ARCHIVE_DIR / f"{sha256}{ext}"

    def archive(self, sha256: str, ext: str, data: bytes) -> Path:
        return archive(self.dir / ARCHIVE_DIR, sha256, ext, data)

    def add_many(self, rows: list[dict]) -> list[tuple[int, bool]]:
        """Several files in one transaction (see `add` for one)."""
        with self.transaction():
            return [self._add(**row) for row in rows]

    def add(self, *, sha256: str, name: str, origin: str, ext: str, size: int, received_at: dt.datetime,
            now: dt.datetime, result: dict, valid: bool, form_id, version, unit_id, unit, period) -> tuple[int, bool]:
        """Record a file; (id, True) when new, (id of the one already there, False) when another run was first."""
        with self.transaction():
            return self._add(sha256=sha256, name=name, origin=origin, ext=ext, size=size, received_at=received_at,
                             now=now, result=result, valid=valid, form_id=form_id, version=version, unit_id=unit_id,
                             unit=unit, period=period)

    def _add(self, *, sha256: str, name: str, origin: str, ext: str, size: int, received_at: dt.datetime,
             now: dt.datetime, result: dict | str, valid: bool, form_id, version, unit_id, unit, period) -> tuple[int, bool]:
        if not isinstance(result, str):
            result = json.dumps(result, ensure_ascii=False, default=_json_default)
        cur = self.db.execute(
            "INSERT INTO files (sha256, name, origin, ext, size, received_at, ingested_at, valid, form_id, "
            "version, unit_id, unit, period, result) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT (sha256) DO NOTHING",
            (sha256, name, origin, ext, size, _iso(received_at), _iso(now), int(valid), form_id, version,
             unit_id, unit, period, result))
        new = cur.rowcount == 1
        file_id = cur.lastrowid if new else self.known(sha256)
        self.db.execute("INSERT INTO sightings (file_id, name, origin, seen_at) VALUES (?,?,?,?)",
                        (file_id, name, origin, _iso(now)))
        return file_id, new

    def get(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, value: str) -> None:
        with self.transaction():
            self.db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = ?",
                            (key, value, value))

    def mail_taken(self, key: str) -> bool:
        return self.db.execute("SELECT 1 FROM mails WHERE key = ?", (key,)).fetchone() is not None

    def take_mail(self, key: str, folder: str, arrived: dt.datetime, sender: str | None, subject: str | None,
                  files: int, now: dt.datetime) -> None:
        with self.transaction():
            self.db.execute("INSERT OR IGNORE INTO mails (key, folder, arrived, sender, subject, files, taken_at) "
                            "VALUES (?,?,?,?,?,?,?)", (key, folder, _iso(arrived), sender, subject, files, _iso(now)))

    def unreturned(self) -> list[tuple[int, str, str, str]]:
        """Invalid files whose 退回件 has not been written yet: (id, sha256, ext, name)."""
        return self.db.execute("SELECT id, sha256, ext, name FROM files WHERE valid = 0 AND returned = 0 "
                               "ORDER BY received_at, id").fetchall()

    def mark_returned(self, file_ids: list[int]) -> None:
        with self.transaction():
            self.db.executemany("UPDATE files SET returned = 1 WHERE id = ?", [(i,) for i in file_ids])

    def seen_again(self, file_id: int, name: str, origin: str, now: dt.datetime) -> None:
        with self.transaction():
            self.db.execute("INSERT INTO sightings (file_id, name, origin, seen_at) VALUES (?,?,?,?)",
                            (file_id, name, origin, _iso(now)))

    # --- reading ---------------------------------------------------------------------------------------

    def files(self) -> list[FileRow]:
        """Every file, in the order received (ties by ingestion order)."""
        rows = self.db.execute(
            "SELECT id, sha256, name, origin, ext, received_at, valid, form_id, version, unit_id, unit, period, "
            "result FROM files ORDER BY received_at, id").fetchall()
        out = []
        for r in rows:
            result = json.loads(r[12])
            out.append(FileRow(r[0], r[1], r[2], r[3], r[4], dt.datetime.fromisoformat(r[5]), bool(r[6]), r[7], r[8],
                               r[9], r[10], r[11], result.get("records", []), result.get("issues", [])))
        return out

    def integrity_ok(self) -> bool:
        return self.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def archive(directory: Path, sha256: str, ext: str, data: bytes) -> Path:
    """Keep the original bytes under their hash; an archived file is never written again.

    Written to a temporary name and renamed, so a killed process leaves no torn original; not fsynced one by one
    (thousands of small files), since a process kill cannot lose what the OS already holds."""
    path = directory / f"{sha256}{ext}"
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    return path


def _iso(t: dt.datetime) -> str:
    """Naive local time, so that times sort as text and compare in Python (a mail's date may carry a zone)."""
    if t.tzinfo is not None:
        t = t.astimezone().replace(tzinfo=None)
    return t.isoformat(timespec="seconds")


def _json_default(v):
    if isinstance(v, (dt.date, dt.datetime)):
        return v.isoformat()
    raise TypeError(type(v).__name__)
