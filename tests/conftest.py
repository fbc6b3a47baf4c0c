"""Shared fixtures: a clock, and one database fixture that runs the same tests on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from engine import service
from engine.store.db import open_engine
from notifiers import Notification

POSTGRES_ADMIN_URL = os.environ.get("SOJOURN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SKIP_POSTGRES = os.environ.get("SOJOURN_SKIP_POSTGRES") == "1"  # only ever set by hand, never in CI

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)

# One person per role of leadership-development, in several time zones: role -> (email, name, time zone).
CAST = {
    "assignee": ("ana.lima@example.com", "Ana Lima", "America/Sao_Paulo"),
    "sending_manager": ("sam.home@example.com", "Sam Home", "America/Sao_Paulo"),
    "host_manager": ("hanna.host@example.com", "Hanna Host", "Europe/Berlin"),
    "coach": ("cole.coach@example.com", "Cole Coach", "Europe/Berlin"),
    "sponsor": ("sara.sponsor@example.com", "Sara Sponsor", "America/Sao_Paulo"),
    "talent": ("tess.talent@example.com", "Tess Talent", "UTC"),
    "mobility": ("mo.mobility@example.com", "Mo Mobility", "Asia/Kolkata"),
}


@pytest.fixture
def now() -> datetime:
    return NOW


def _postgres_admin() -> Engine:
    return create_engine(make_url(POSTGRES_ADMIN_URL), isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session; an unreachable server fails the run, not skips it."""
    if SKIP_POSTGRES:
        pytest.skip("SOJOURN_SKIP_POSTGRES=1")
    admin = _postgres_admin()
    name = f"sojourn_test_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        pytest.fail(f"PostgreSQL at {POSTGRES_ADMIN_URL} is not reachable ({exc}); start it or set "
                    "SOJOURN_TEST_POSTGRES_URL", pytrace=False)
    url = make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


TABLES = ["outbox", "cadencestate", "transition", "contact", "signoff", "goal", "task", "stakeholder", "assignment",
          "person", "daemonlease", "audit_event"]


@pytest.fixture(scope="session")
def _postgres_initialised(postgres_url: str) -> str:
    engine = open_engine(postgres_url)
    service.init(engine, now=NOW)
    engine.dispose()
    return postgres_url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An initialised, empty database URL on each backend (workflow versions beyond the built-ins removed)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'sojourn.db'}"
        engine = open_engine(url)
        service.init(engine, now=NOW)
        engine.dispose()
        yield url
        return
    url = request.getfixturevalue("_postgres_initialised")
    yield url
    engine = open_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        connection.execute(text("DELETE FROM workflow WHERE version > 1"))
    engine.dispose()


@pytest.fixture
def db(db_url: str) -> Iterator[Engine]:
    engine = open_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def people(db: Engine) -> dict[str, str]:
    """One person per role of leadership-development, in several time zones; role -> email."""
    for email, name, tz in CAST.values():
        service.add_person(db, email, name=name, tz=tz)
    return {role: email for role, (email, _, _) in CAST.items()}


@pytest.fixture
def spec(people: dict[str, str]) -> service.AssignmentSpec:
    """A leadership-development assignment from Brazil to Germany with every role filled."""
    return service.AssignmentSpec(
        workflow="leadership-development", assignee=people["assignee"], home="BR", host="DE",
        start="2026-03-01", end="2027-08-31",
        stakeholders={role: email for role, email in people.items() if role != "assignee"})


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
