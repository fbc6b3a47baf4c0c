"""Fixtures for integration tests: run the CLI in-process exactly as the console script does."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import structlog
from sqlalchemy import MetaData, create_engine, select
from sqlalchemy.engine import Engine

import cli
from engine.store import db as store_db
from notifiers import Notification


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str


Sojourn = Callable[..., Outcome]


@pytest.fixture
def sojourn(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Iterator[Sojourn]:
    """Run `sojourn ARGS...` in-process exactly as the console script does, in an empty working directory."""
    for variable in ("SOJOURN_DATABASE_URL", "SOJOURN_CONFIG", "SOJOURN_ACTOR"):
        monkeypatch.delenv(variable, raising=False)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    engines: list[Engine] = []
    open_db = store_db.open_db

    def tracked_open_db(url: str) -> Engine:
        engines.append(open_db(url))
        return engines[-1]

    # The console script exits with its process; in-process runs must close their connections themselves.
    monkeypatch.setattr(store_db, "open_db", tracked_open_db)

    def run(*args: str) -> Outcome:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["sojourn", *args])
        code = 0
        try:
            cli.main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            while engines:
                engines.pop().dispose()
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    yield run
    structlog.reset_defaults()  # a daemon run configures JSON logging for the whole process


@pytest.fixture
def on_db(sojourn: Sojourn, db_url: str) -> Sojourn:
    """`sojourn --db URL ARGS...` on the test database."""
    return lambda *args: sojourn("--db", db_url, *args)


def snapshot(db_url: str) -> dict[str, list[str]]:
    """Every row of every table, as text, so any write at all shows up as a difference."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as connection:
            metadata = MetaData()
            metadata.reflect(connection)
            return {name: sorted(repr(tuple(row)) for row in connection.execute(select(table)))
                    for name, table in metadata.tables.items()}
    finally:
        engine.dispose()


class Recorder:
    """A notifier that keeps what it is handed, for tests of the daemon's delivery."""

    name = "file"

    def __init__(self) -> None:
        self.sent: list[Notification] = []

    def send(self, notification: Notification) -> None:
        self.sent.append(notification)
