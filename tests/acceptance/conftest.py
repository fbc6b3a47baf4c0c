"""Acceptance fixtures: the installed `sojourn` in subprocesses, in a scratch directory, on a database of its own."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemons import WEBHOOK_DELAY, Daemons
from tests.support.scratch import postgres_database
from tests.support.webhook import Receiver


def installed_sojourn() -> Path:
    """The console script installed next to this interpreter, else the one on PATH."""
    beside = Path(sys.executable).parent / "sojourn"
    if beside.is_file():
        return beside
    found = shutil.which("sojourn")
    assert found, "the sojourn console script is not installed (pip install -e .)"
    return Path(found)


@dataclass(frozen=True)
class Run:
    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Sojourn:
    """The installed command, run the way an administrator's shell would run it."""

    cwd: Path
    env: dict[str, str]
    binary: Path

    def run(self, *args: str, actor: str = "admin@example.com") -> Run:
        argv = (str(self.binary), "--actor", actor, *args)
        done = subprocess.run(argv, cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=120,
                              check=False)
        assert "Traceback" not in done.stdout + done.stderr, done.stderr
        return Run(tuple(args), done.returncode, done.stdout, done.stderr)

    def ok(self, *args: str, actor: str = "admin@example.com") -> str:
        result = self.run(*args, actor=actor)
        assert result.code == 0, result
        return result.stdout

    def json(self, *args: str, actor: str = "admin@example.com") -> Any:
        """The one JSON document the command prints with --json."""
        return json.loads(self.ok(*args, "--json", actor=actor))

    def refused(self, *args: str, code: int = 1, actor: str = "admin@example.com") -> str:
        """The `Error:` lines of a command that must fail with `code` (1 refused, 2 bad input)."""
        result = self.run(*args, actor=actor)
        assert result.code == code, result
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert lines, result
        assert all(line.startswith("Error: ") for line in lines), result.stderr
        return result.stderr


def _clean_environment() -> dict[str, str]:
    """The caller's environment without Sojourn settings, so only what a test passes decides."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SOJOURN_")}


@pytest.fixture
def fresh_postgres_url(postgres_url: str) -> Iterator[str]:
    """An empty PostgreSQL database of its own on the test server, dropped afterwards."""
    with postgres_database(postgres_url, prefix="sojourn_acceptance") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def sojourn(request: pytest.FixtureRequest, tmp_path: Path) -> Sojourn:
    """`sojourn` in an empty directory: on SQLite through the default URL (sojourn.db there, no --db), on
    PostgreSQL through SOJOURN_DATABASE_URL naming a fresh database; `init` has run."""
    env = _clean_environment()
    if request.param == "postgresql":
        env["SOJOURN_DATABASE_URL"] = request.getfixturevalue("fresh_postgres_url")
    command = Sojourn(tmp_path, env, installed_sojourn())
    command.ok("init")
    if request.param == "sqlite":
        assert (tmp_path / "sojourn.db").is_file(), "the default database is sojourn.db in the working directory"
    return command


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver slow enough per request that a daemon killed at random dies mid-request now and then."""
    with Receiver(WEBHOOK_DELAY) as running:
        yield running


@pytest.fixture
def daemons(db_url: str, tmp_path: Path, receiver: Receiver) -> Iterator[Daemons]:
    """Daemons of the installed `sojourn` on the test's database, delivering to `receiver`; none outlives the test."""
    config = tmp_path / "sojourn.toml"
    config.write_text(f'[notifiers.webhook]\nurl = "{receiver.url}"\ntimeout = 30\n', encoding="utf-8")
    started = Daemons(installed_sojourn(), db_url, config, tmp_path)
    try:
        yield started
    finally:
        started.kill_all()
