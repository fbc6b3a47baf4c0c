"""Forecasts after routine changes: past role holders are copied, integrity failures are not races, replays end."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from freezegun import freeze_time
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from engine.domain.errors import ConcurrentChange
from engine.planning import forecast
from engine.program import assignments
from engine.program.people import add_person
from engine.program.transactions import use_case_transaction
from engine.store.models import Person, Task
from tests.integration.conftest import Sojourn

CREATED = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
NEW_COACH = "nia.coach@example.com"


@pytest.fixture
def replaced_coach(on_db: Sojourn, db: Engine, spec: assignments.AssignmentSpec) -> int:
    """An assignment whose first task the coach did before the role went to a new coach."""
    assignment_id = assignments.create_assignment(db, spec, actor="admin", now=CREATED).id
    add_person(db, NEW_COACH, name="Nia Coach", tz="Europe/Berlin")
    with freeze_time(CREATED):
        assert on_db("task", "done", "1").code == 0
        changed = on_db("assignment", "set-stakeholder", str(assignment_id), f"coach={NEW_COACH}", "--reason", "x")
        assert changed.code == 0, changed.stderr
    return assignment_id


def test_forecast_succeeds_after_a_role_holder_who_did_a_task_is_replaced(on_db: Sojourn,
                                                                          replaced_coach: int) -> None:
    """`forecast ID` copies the old coach who did a task too, and lists the new coach's reminders."""
    with freeze_time(CREATED):
        outcome = on_db("forecast", str(replaced_coach), "--until", "2026-04-30")
    assert outcome.code == 0, outcome.stderr
    assert NEW_COACH in outcome.stdout


def test_gantt_chart_succeeds_after_a_role_holder_who_did_a_task_is_replaced(on_db: Sojourn,
                                                                             replaced_coach: int) -> None:
    """`assignment show ID --gantt` charts the assignment whose done task names the coach no longer in the role."""
    with freeze_time(CREATED):
        outcome = on_db("assignment", "show", str(replaced_coach), "--gantt")
    assert outcome.code == 0, outcome.stderr
    assert outcome.stdout.startswith("gantt")


def test_foreign_key_failure_is_not_reported_as_a_concurrent_change(db: Engine, people: dict[str, str],
                                                                   spec: assignments.AssignmentSpec) -> None:
    """A row naming a person who does not exist is a bug that surfaces as such, not "someone else wrote"."""
    assignments.create_assignment(db, spec, actor="admin", now=CREATED)

    def give_task_to_nobody() -> None:
        with use_case_transaction(db) as session:
            task = session.get(Task, 1)
            assert task is not None
            task.owner_id = 999_999
            session.add(task)

    with pytest.raises(IntegrityError):
        give_task_to_nobody()


def test_duplicate_key_written_meanwhile_is_still_a_concurrent_change(db: Engine, people: dict[str, str]) -> None:
    """Two writers adding the same record: the loser's duplicate key is still a concurrent change, exit 1."""
    with pytest.raises(ConcurrentChange, match="someone else wrote the same record"), \
            use_case_transaction(db) as session:
        session.add(Person(email=people["coach"], name="Cole Again", tz="UTC"))


def test_forecast_stops_with_an_error_past_its_horizon(on_db: Sojourn, monkeypatch: pytest.MonkeyPatch) -> None:
    """A replay that would run past its horizon stops with `Error:` lines naming the stage, exit 1, no traceback.

    `workflow validate` refuses the cadences that would never stop, so the horizon is brought in to a day after the
    end date, which the built-in workflow's outcome tasks (12 and 24 months after return) run past."""
    monkeypatch.setattr(forecast, "HORIZON_DAYS", 1)
    outcome = on_db("forecast", "--workflow", "leadership-development", "--start", "2027-01-04", "--end", "2027-06-30")
    assert outcome.code == 1
    assert outcome.stderr.startswith("Error: the forecast ran past 2027-07-01, 1 days after the latest end date")
    assert "the assignment is in stage" in outcome.stderr
    assert "Traceback" not in outcome.stderr
