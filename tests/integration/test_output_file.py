"""`--output FILE`: written whole through a temporary file nobody can predict, never onto the live database."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlalchemy import Engine

from engine.program import assignments
from integration.conftest import Sojourn, snapshot
from tests.conftest import NOW


@pytest.fixture
def exported(db: Engine, spec: assignments.AssignmentSpec) -> None:
    """An assignment, so that the audit trail has events to export."""
    assignments.create_assignment(db, spec, actor="admin", now=NOW)


@pytest.mark.usefixtures("exported")
@pytest.mark.parametrize("planted", [".events.jsonl.partial", ".events.jsonl.tmp", "events.jsonl.partial"])
def test_a_symlink_planted_at_a_predictable_temp_name_is_not_followed(on_db: Sojourn, tmp_path: Path,
                                                                      planted: str) -> None:
    """A symlink beside FILE at a name an attacker could guess is left alone: the file it points to keeps its
    content, and FILE gets the export."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious", encoding="utf-8")
    (tmp_path / planted).symlink_to(victim)
    target = tmp_path / "events.jsonl"
    outcome = on_db("audit", "export", "--output", str(target))
    assert outcome.code == 0, outcome.stderr
    assert victim.read_text(encoding="utf-8") == "precious"
    assert (tmp_path / planted).is_symlink()
    assert [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]


@pytest.mark.usefixtures("exported")
def test_output_is_readable_by_its_owner_only_and_keeps_an_earlier_files_permissions(on_db: Sojourn,
                                                                                   tmp_path: Path) -> None:
    """A new FILE, which may hold personal data, is 0600; a FILE that already exists keeps its mode."""
    fresh, shared = tmp_path / "fresh.jsonl", tmp_path / "shared.jsonl"
    shared.write_text("", encoding="utf-8")
    shared.chmod(0o640)
    for target in (fresh, shared):
        assert on_db("audit", "export", "--output", str(target)).code == 0
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600
    assert stat.S_IMODE(shared.stat().st_mode) == 0o640
    assert shared.read_text(encoding="utf-8")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # only SQLite keeps the database in a file
@pytest.mark.usefixtures("exported")
@pytest.mark.parametrize("aimed_at", ["itself", "its -wal", "its -shm", "a symlink to it", "a hard link to it",
                                      "a path through another folder"])
def test_output_onto_the_live_database_is_refused(on_db: Sojourn, db_url: str, tmp_path: Path,
                                                   aimed_at: str) -> None:
    """`audit export --output` (or report, calendar) aimed at the database it reads, its WAL files, or the same file
    under another name is an `Error:` line with exit 2, and the database stays as it was."""
    database = Path(db_url.removeprefix("sqlite:///"))
    assert database.is_file()
    targets = {"itself": database, "its -wal": database.with_name(database.name + "-wal"),
               "its -shm": database.with_name(database.name + "-shm"),
               "a symlink to it": tmp_path / "alias.db", "a hard link to it": tmp_path / "hard.db",
               "a path through another folder": database.parent / "cwd" / ".." / database.name}
    (tmp_path / "alias.db").symlink_to(database)
    (tmp_path / "hard.db").hardlink_to(database)
    before = snapshot(db_url)
    for command in (["audit", "export"], ["report"], ["calendar", "--person", "ana.lima@example.com"]):
        with freeze_time(NOW):
            outcome = on_db(*command, "--output", str(targets[aimed_at]))
        assert (outcome.code, outcome.stdout) == (2, ""), command
        assert outcome.stderr.startswith("Error: --output:")
        assert "database" in outcome.stderr
    assert snapshot(db_url) == before
    assert on_db("audit", "verify").code == 0


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_output_onto_the_default_database_in_the_current_folder_is_refused(sojourn: Sojourn, db_url: str) -> None:
    """With the default URL (sojourn.db in the current folder), `audit export --output sojourn.db` is refused and
    the database still opens and verifies."""
    assert sojourn("init").code == 0
    outcome = sojourn("audit", "export", "--output", "sojourn.db")
    assert outcome.code == 2
    assert outcome.stderr.startswith("Error: --output: sojourn.db is a file of the database")
    assert sojourn("audit", "verify").code == 0
