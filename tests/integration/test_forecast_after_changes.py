"""Forecasts after routine changes: past role holders are copied, integrity failures are not races, replays end."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from engine import service
from engine.errors import ConcurrentChange
from engine.store.models import Person, Task
from engine.transactions import use_case_transaction
from tests.integration.conftest import Sojourn

CREATED = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
NEW_COACH = "nia.coach@example.com"

# The README's "Writing a workflow" example: its check-in cadence runs in the final stage, so it never stops.
NEVER_STOPPING = """\
name: my-program
title: My program
roles: [assignee, sending_manager, mobility]
initial: preparation
stages:
  - key: preparation
    title: Preparation
    tasks:
      - {key: arrange_visa, title: Arrange the visa, owner: mobility, due: {days: -30, from: start}}
  - {key: abroad, title: Abroad}
  - {key: cancelled, title: Cancelled}
transitions:
  - from: preparation
    to: abroad
    guards: [stage_tasks_done, {guard: not_before, params: {days: -7, anchor: start}}]
  - {from: "*", to: cancelled, requires_reason: true}
cadences:
  - {kind: checkin, title: Check-in, with_role: sending_manager, notify: [sending_manager, assignee],
     every: {weeks: 2}, from_stage: abroad, until_stage: abroad, grace_days: 3}
"""


@pytest.fixture
def replaced_coach(on_db: Sojourn, db: Engine, spec: service.AssignmentSpec) -> int:
    """An assignment whose first task the coach did before the role went to a new coach."""
    assignment_id = int(service.create_assignment(db, spec, actor="admin", now=CREATED)["id"])
    service.add_person(db, NEW_COACH, name="Nia Coach", tz="Europe/Berlin")
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
                                                                   spec: service.AssignmentSpec) -> None:
    """A row naming a person who does not exist is a bug that surfaces as such, not "someone else wrote"."""
    service.create_assignment(db, spec, actor="admin", now=CREATED)

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


def test_forecast_stops_with_an_error_when_a_cadence_never_stops(on_db: Sojourn, tmp_path: Path) -> None:
    """A cadence running in a final stage makes the replay stop at its horizon with `Error:` lines, exit 1."""
    source = tmp_path / "my-program.yaml"
    source.write_text(NEVER_STOPPING)
    assert on_db("workflow", "install", str(source)).code == 0
    outcome = on_db("forecast", "--workflow", "my-program", "--start", "2027-01-04", "--end", "2027-06-30")
    assert outcome.code == 1
    assert outcome.stderr.startswith("Error: the forecast ran past 2038-")
    assert "the assignment is in stage abroad" in outcome.stderr
    assert "Traceback" not in outcome.stderr
