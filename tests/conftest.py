"""Shared fixtures: a clock, and one database fixture that runs the same tests on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from engine.program import assignments
from engine.store.db import open_db
from notifiers import Notification
from tests.support import scenarios
from tests.support.cast import CAST
from tests.support.scratch import (
    POSTGRES_ADMIN_URL,
    create_postgres_database,
    drop_postgres_database,
    initialise,
    sqlite_url,
)
from workflows import builtin_workflow_texts

__all__ = ["CAST", "NOW", "POSTGRES_ADMIN_URL"]

SKIP_POSTGRES = os.environ.get("SOJOURN_SKIP_POSTGRES") == "1"  # only ever set by hand, never in CI

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture
def now() -> datetime:
    return NOW


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session; an unreachable server fails the run, not skips it."""
    if SKIP_POSTGRES:
        pytest.skip("SOJOURN_SKIP_POSTGRES=1")
    try:
        url = create_postgres_database(POSTGRES_ADMIN_URL, prefix="sojourn_test")
    except Exception as exc:
        pytest.fail(f"PostgreSQL at {POSTGRES_ADMIN_URL} is not reachable ({exc}); start it or set "
                    "SOJOURN_TEST_POSTGRES_URL", pytrace=False)
    yield url
    drop_postgres_database(url, POSTGRES_ADMIN_URL)


TABLES = ["outcome_competency", "outcome", "competency_baseline", "goal_objective", "objective", "goal_progress",
          "checkin", "pulse", "activity", "plan_change", "outbox", "cadence_start", "cadencestate", "transition",
          "contact", "signoff", "goal", "task", "stakeholder", "assignment", "person", "daemonlease", "audit_event",
          "link_use", "link_revocation", "person_erasure"]


# A test may install a workflow of its own; the shared PostgreSQL database keeps only the built-ins between tests.
BUILTIN_WORKFLOWS = [file.removesuffix(".yaml") for file in builtin_workflow_texts()]


@pytest.fixture(scope="session")
def _postgres_initialised(postgres_url: str) -> str:
    initialise(postgres_url, NOW)
    return postgres_url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An initialised, empty database URL on each backend (workflow versions beyond the built-ins removed)."""
    if request.param == "sqlite":
        url = sqlite_url(tmp_path)
        initialise(url, NOW)
        yield url
        return
    url = request.getfixturevalue("_postgres_initialised")
    yield url
    engine = open_db(url)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        connection.execute(text("DELETE FROM workflow WHERE version > 1 OR NOT (name = ANY(:builtin))"),
                           {"builtin": BUILTIN_WORKFLOWS})
    engine.dispose()


@pytest.fixture
def db(db_url: str) -> Iterator[Engine]:
    engine = open_db(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def people(db: Engine) -> dict[str, str]:
    """One person per role of leadership-development, in several time zones; role -> email."""
    return scenarios.add_cast(db)


@pytest.fixture
def spec(people: dict[str, str]) -> assignments.AssignmentSpec:
    """A leadership-development assignment from Brazil to Germany with every role filled (the people added)."""
    return scenarios.cast_spec()


@pytest.fixture
def local_process() -> Iterator[subprocess.Popen[bytes]]:
    """A process of this host standing in for a daemon, until the test ends it or ends."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


@pytest.fixture
def make_notification() -> Callable[..., Notification]:
    """A factory for notifications with plausible values that a test can override."""

    def make(**overrides: Any) -> Notification:
        fields: dict[str, Any] = {
            "key": "task_due:7:42:2027-03-01",
            "kind": "task_due",
            "assignment_id": 7,
            "task_id": 42,
            "recipient": "ada@example.com",
            "role": "assignee",
            "subject": "Relocation checklist is due today",
            "body": "Please finish the relocation checklist.\nIt blocks the orientation stage.",
            "created_at": datetime(2027, 3, 1, 9, 0, tzinfo=UTC),
        }
        fields.update(overrides)
        return Notification(**fields)

    return make
