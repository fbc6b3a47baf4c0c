"""`sojourn backup FILE`: a SQLite copy that has every committed row while others write, and its refusals."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from engine.program import assignments
from engine.store.db import open_db
from integration.conftest import Sojourn, snapshot
from tests.conftest import NOW
from tests.support import scenarios
from tests.support.scratch import initialise, sqlite_url


@pytest.fixture
def live(tmp_path: Path) -> tuple[str, Path]:
    """An initialised SQLite database (its URL and file) with the cast and one assignment, committed."""
    url = sqlite_url(tmp_path, "live")
    initialise(url, NOW)
    db = open_db(url)
    scenarios.add_cast(db)
    assignments.create_assignment(db, scenarios.cast_spec(), actor="admin", now=NOW)
    db.dispose()
    return url, Path(url.removeprefix("sqlite:///"))


def _writer_in_wal_mode(path: Path) -> sqlite3.Connection:
    """A connection that never checkpoints, so what it commits stays in the -wal file beside the database."""
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    return writer


def test_backup_has_every_commit_still_in_the_wal_and_no_uncommitted_row(sojourn: Sojourn, live: tuple[str, Path],
                                                                         tmp_path: Path) -> None:
    """Taken while one connection's commits sit only in sojourn.db-wal and another holds an open write transaction,
    the backup opens on its own (no -wal beside it) and lists the committed assignment, not the uncommitted one."""
    url, path = live
    writer = _writer_in_wal_mode(path)
    writer.execute("UPDATE assignment SET host = 'FR' WHERE id = 1")  # committed, in the WAL only
    assert Path(f"{path}-wal").stat().st_size > 0
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE assignment SET host = 'JP' WHERE id = 1")  # never committed while the backup runs
    try:
        target = tmp_path / "backup.db"
        done = sojourn("--db", url, "backup", str(target), "--json")
        assert (done.code, done.stderr) == (0, ""), done
        assert json.loads(done.stdout)["assignments"] == 1
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert not Path(f"{target}-wal").exists()
    listed = sojourn("--db", f"sqlite:///{target}", "assignment", "list", "--json")
    assert listed.code == 0, listed
    assert [(a["id"], a["host"]) for a in json.loads(listed.stdout)] == [(1, "FR")]


def test_backup_refuses_an_existing_file_unless_forced(sojourn: Sojourn, live: tuple[str, Path],
                                                       tmp_path: Path) -> None:
    """An existing FILE is left as it was (exit 1, naming --force); with --force it is replaced by the backup."""
    url, _ = live
    target = tmp_path / "backup.db"
    target.write_text("an earlier file", encoding="utf-8")
    refused = sojourn("--db", url, "backup", str(target))
    assert (refused.code, refused.stdout) == (1, "")
    assert refused.stderr.startswith(f"Error: {target} already exists")
    assert "--force" in refused.stderr
    assert target.read_text(encoding="utf-8") == "an earlier file"
    forced = sojourn("--db", url, "backup", str(target), "--force")
    assert forced.code == 0, forced
    assert sojourn("--db", f"sqlite:///{target}", "assignment", "show", "1").code == 0


@pytest.mark.parametrize("suffix", ["", "-wal", "-shm"])
def test_backup_never_overwrites_the_live_database(sojourn: Sojourn, live: tuple[str, Path], suffix: str) -> None:
    """Naming the database itself (or a file SQLite keeps beside it) is refused with exit 2, even with --force."""
    url, path = live
    before = snapshot(url)
    refused = sojourn("--db", url, "backup", f"{path}{suffix}", "--force")
    assert (refused.code, refused.stdout) == (2, "")
    assert refused.stderr.startswith("Error: ")
    assert "is the live database" in refused.stderr
    assert snapshot(url) == before


def test_backup_into_a_missing_folder_exits_2_and_leaves_nothing(sojourn: Sojourn, live: tuple[str, Path],
                                                                 tmp_path: Path) -> None:
    """A FILE that cannot be written is an `Error:` with exit 2, and no partial file is left anywhere."""
    url, _ = live
    refused = sojourn("--db", url, "backup", str(tmp_path / "no-such-folder" / "backup.db"))
    assert (refused.code, refused.stdout) == (2, "")
    assert refused.stderr.startswith("Error: cannot write the backup")
    assert not list(tmp_path.glob("**/.*.partial"))


@pytest.mark.postgres
def test_backup_on_postgresql_says_to_use_pg_dump(sojourn: Sojourn, postgres_url: str, tmp_path: Path) -> None:
    """On PostgreSQL the command writes nothing and exits 2 with an `Error:` naming pg_dump."""
    refused = sojourn("--db", postgres_url, "backup", str(tmp_path / "backup.db"))
    assert (refused.code, refused.stdout) == (2, "")
    assert all(line.startswith("Error: ") for line in refused.stderr.splitlines())
    assert "pg_dump" in refused.stderr
    assert not (tmp_path / "backup.db").exists()
