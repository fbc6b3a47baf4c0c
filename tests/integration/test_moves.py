"""The named Core statements of a stage change: the load reads what the ORM reads, the lock refuses stale writes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session

from engine.domain import guards, lifecycle
from engine.program import advance, assignments, plans, tasks
from engine.program.records import assignment_view, load_record, load_record_to_move
from engine.store.models import Assignment
from engine.store.moves import move_assignment

NOW = datetime(2026, 3, 2, 10, tzinfo=UTC)


def test_core_load_gives_the_same_view_as_the_orm_load(db: Engine, spec: assignments.AssignmentSpec) -> None:
    """An assignment with a goal and a sign-off reads the same through `moves` as through the ORM."""
    created = assignments.create_assignment(db, spec, actor="setup", now=NOW).view()
    plans.add_goal(db, created["id"], title="Lead a team", measure="team survey", target="4 of 5", due="2026-12-01",
                   actor="setup", now=NOW)
    plans.sign_plan(db, created["id"], role="talent", by=None, actor="setup", now=NOW)
    with Session(db) as session:
        through_orm = assignment_view(load_record(session, created["id"]), NOW)
    with db.connect() as connection:
        through_core = assignment_view(load_record_to_move(connection, created["id"]), NOW)
    assert through_core == through_orm
    assert through_core.signed_off_by == ("talent",)
    assert [g.title for g in through_core.goals] == ["Lead a team"]


def test_move_with_a_stale_version_raises_and_changes_nothing(db: Engine, spec: assignments.AssignmentSpec) -> None:
    """The optimistic lock: a version other than the row's matches no row, so nothing is updated."""
    created = assignments.create_assignment(db, spec, actor="setup", now=NOW).view()
    with db.connect() as connection, connection.begin():
        current = load_record_to_move(connection, created["id"]).assignment.row_version
        with pytest.raises(StaleDataError):
            move_assignment(connection, created["id"], seen_version=current - 1, stage="cancelled", entered_at=NOW)
        moved = move_assignment(connection, created["id"], seen_version=current, stage="cancelled", entered_at=NOW)
        assert moved.row_version == current + 1
        assert moved.audit_head[0] == 2, "created and entered its first stage: two events chained"
    with Session(db) as session:
        stored = session.get(Assignment, created["id"])
        assert stored is not None
        assert (stored.stage, stored.row_version) == ("cancelled", current + 1)


def test_advance_evaluates_each_guard_once(db: Engine, spec: assignments.AssignmentSpec,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """An advance asks each guard of its transition once: the machine fires on the verdict already reached."""
    created = assignments.create_assignment(db, spec, actor="setup", now=NOW).view()
    for task in created["tasks"]:
        tasks.complete_task(db, task["id"], note=None, actor="coach", now=NOW)
    asked: list[str] = []

    def counted(name: str, params: Any, ctx: guards.GuardContext) -> guards.GuardResult:
        asked.append(name)
        return guards.GUARDS[name](ctx, **params)

    monkeypatch.setattr(lifecycle, "evaluate", counted)
    shown = advance.advance(db, created["id"], to=None, reason=None, actor="admin", now=NOW).view()
    assert shown["stage"] == "plan_agreed"
    # the move's one guard, then the guards of the next transition that the returned view lists as blocking
    assert asked == ["stage_tasks_done", "stage_tasks_done", "min_smart_goals", "plan_signed_off"]
