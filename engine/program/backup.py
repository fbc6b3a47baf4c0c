"""`sojourn backup`: a consistent copy of the SQLite database, taken with SQLite's online backup API while others write.

Copying `sojourn.db` with `cp` is not a backup: in WAL mode the newest commits live in `sojourn.db-wal` until a
checkpoint, so a copy of the main file alone can miss them, even the schema. The backup API reads through SQLite
itself, so it sees every committed transaction, wherever it sits, and only those: a writer's open transaction is not
in the copy, and it neither waits for the backup nor spoils it.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from engine.domain.errors import BadInput, NotInitialised, SojournError
from engine.domain.views import Result
from engine.store.db import SQLITE_BUSY_TIMEOUT_MS, is_sqlite

# Files SQLite keeps beside a database in WAL mode; a backup written over one of them would corrupt the database.
COMPANION_SUFFIXES = ("", "-wal", "-shm", "-journal")


@dataclass(frozen=True)
class BackupMade(Result):
    """Where `backup_database` copied which database, how big the copy is and what it holds."""

    source: str
    backup: str
    bytes: int
    assignments: int
    at: datetime


def backup_database(db: Engine, target: Path, *, force: bool, now: datetime) -> BackupMade:
    """Copy the database `db` to `target` as one self-contained SQLite file (no -wal beside it).

    The copy is written beside `target` and renamed over it once complete and checked, so a failed backup leaves an
    earlier file as it was. An existing `target` is replaced only with `force`; the live database never is.
    """
    source = _source_path(db)
    _check_target(source, target, force=force)
    partial = target.with_name(f".{target.name}.partial")
    try:
        assignments = _copy(db, partial)
        partial.replace(target)
    except (OSError, sqlite3.Error) as exc:
        raise BadInput(f"cannot write the backup {target}: {getattr(exc, 'strerror', None) or exc}") from None
    finally:
        partial.unlink(missing_ok=True)  # gone already when the rename succeeded
    return BackupMade(str(source), str(target.resolve()), target.stat().st_size, assignments, now)


def _source_path(db: Engine) -> Path:
    if not is_sqlite(db):
        raise BadInput(f"sojourn backup copies SQLite databases; {db.dialect.name} has its own tools",
                       details=["on PostgreSQL use pg_dump, e.g. pg_dump --format=custom --file sojourn.dump "
                                "'postgresql://USER@HOST/DB', and pg_restore to restore it"])
    database = db.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BadInput("sojourn backup copies a SQLite database file; this URL names none",
                       details=["give --db sqlite:///path/to/sojourn.db"])
    path = Path(database).resolve()
    if not path.is_file():  # connecting would create an empty database there
        raise NotInitialised(f"the database file {path} does not exist; there is nothing to back up",
                             details=["check --db, SOJOURN_DATABASE_URL or [database] url in the config file"])
    return path


def _check_target(source: Path, target: Path, *, force: bool) -> None:
    resolved = target.resolve()
    if any(resolved == source.with_name(source.name + suffix) for suffix in COMPANION_SUFFIXES):
        raise BadInput(f"{target} is the live database (or a file SQLite keeps beside it); give another FILE")
    if target.is_dir():
        raise BadInput(f"{target} is a folder; give the name of the backup file, e.g. {target / 'sojourn-backup.db'}")
    if target.exists() and not force:
        raise SojournError(f"{target} already exists; nothing was written",
                           details=["give --force to replace it, or another FILE"])


def _copy(db: Engine, partial: Path) -> int:
    """Back the database up into `partial`, make that a rollback-journal file and check it; returns its number of
    assignments. One backup step copies every page under one read snapshot, so concurrent commits cannot tear it.

    No schema check comes first: that would open a write transaction (every Sojourn transaction on SQLite begins
    IMMEDIATE) and wait for any writer, and a database with an older schema is worth a backup before `init`
    upgrades it."""
    partial.unlink(missing_ok=True)  # left by a backup that was killed
    with db.connect() as connection:
        source = connection.connection.driver_connection
        assert isinstance(source, sqlite3.Connection)
        copy = sqlite3.connect(partial, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
        try:
            source.backup(copy)
            copy.execute("PRAGMA journal_mode=DELETE")  # one file: nothing left in a -wal beside it
            (verdict,) = copy.execute("PRAGMA quick_check").fetchone()
            if verdict != "ok":
                raise SojournError(f"the backup failed its integrity check ({verdict}); nothing was written")
            if copy.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'assignment'").fetchone() \
                    is None:
                raise NotInitialised(f"{db.url.database} is not a Sojourn database (no assignment table); "
                                     "nothing was written", details=["run `sojourn init` to create the schema"])
            (assignments,) = copy.execute("SELECT count(*) FROM assignment").fetchone()
        finally:
            copy.close()
    return int(assignments)
