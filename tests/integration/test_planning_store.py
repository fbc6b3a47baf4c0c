"""The statements planning runs below the ORM store and read what the ORM would: outbox rows, values by id, keys."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, update
from sqlmodel import select

from engine.domain import notices
from engine.domain.notices import NewNotice, NoticeKind, NoticeStatus
from engine.planning.planner import plan
from engine.program import assignments
from engine.store import queries
from engine.store.db import transaction
from engine.store.models import Assignment, Outbox, Person, Task
from tests.support.cast import CAST, WORKFLOW, stakeholders
from tests.support.scenarios import add_cast

AT = datetime(2026, 3, 2, 12, 0, 0, 123456, tzinfo=UTC)
SPEC = assignments.AssignmentSpec(workflow=WORKFLOW, assignee=CAST["assignee"][0], home="BR", host="DE",
                                  start="2026-03-01", end="2028-02-29", stakeholders=stakeholders())


def _notice(key: str, assignment_id: int, *, calendar: str | None = None) -> NewNotice:
    return NewNotice(key=key, kind=NoticeKind.CONTACT_DUE, assignment_id=assignment_id, task_id=None,
                     recipient="ana.lima@example.com", role="assignee", subject="Subject; with, marks",
                     body="Line one\nLine two ✓", created_at=AT, deliver_at=AT + timedelta(hours=3),
                     calendar=calendar)


def test_inserted_notices_read_back_through_the_orm_as_planned(db: Engine) -> None:
    """A notice written by the driver-level insert reads back as a pending, untried row with its instants in UTC."""
    add_cast(db)
    assignment_id = assignments.create_assignment(db, SPEC, actor="admin", now=AT).id
    with transaction(db) as session:
        added = queries.insert_notifications(session, [_notice("test/one", assignment_id, calendar="BEGIN:X\r\n")])
    with transaction(db) as session:
        row = session.exec(select(Outbox).where(Outbox.key == "test/one")).one()

    assert added == 1
    assert (row.kind, row.recipient, row.role, row.subject, row.body, row.calendar) == (
        "contact_due", "ana.lima@example.com", "assignee", "Subject; with, marks", "Line one\nLine two ✓",
        "BEGIN:X\r\n")
    assert (row.created_at, row.deliver_at, row.next_attempt_at) == (AT, AT + timedelta(hours=3),
                                                                     AT + timedelta(hours=3))
    assert (row.status, row.attempts, row.delivered_to, row.last_error) == (NoticeStatus.PENDING, 0, [], None)


def test_insert_counts_only_new_keys_and_keeps_the_rows_already_there(db: Engine) -> None:
    """Of a batch holding a key already written (and one twice), only the new keys count; the old row is kept."""
    add_cast(db)
    assignment_id = assignments.create_assignment(db, SPEC, actor="admin", now=AT).id
    with transaction(db) as session:
        queries.insert_notifications(session, [_notice("test/old", assignment_id)])
    changed = _notice("test/old", assignment_id)._replace(body="a different text")
    with transaction(db) as session:
        added = queries.insert_notifications(session, [changed, _notice("test/new", assignment_id),
                                                       _notice("test/new", assignment_id)])
        existing = queries.existing_outbox_keys(session, ["test/old", "test/new", "test/none"])
        kept = session.exec(select(Outbox.body).where(Outbox.key == "test/old")).one()

    assert added == 1
    assert existing == {"test/old", "test/new"}
    assert kept == "Line one\nLine two ✓"


def test_values_by_id_follow_the_rows_they_were_read_from(db: Engine) -> None:
    """A value read again after its row changed shows the change; an unchanged row gives an equal value."""
    add_cast(db)
    assignment_id = assignments.create_assignment(db, SPEC, actor="admin", now=AT).id
    with transaction(db) as session:
        first = queries.values_by_id(session, Assignment, [assignment_id])[assignment_id]
        again = queries.values_by_id(session, Assignment, [assignment_id])[assignment_id]
        session.execute(update(Assignment).where(Assignment.id == assignment_id).values(host="FR"))
        moved = queries.values_by_id(session, Assignment, [assignment_id])[assignment_id]
        people = queries.values_by_id(session, Person, [first.assignee_id])

    assert (first.host, again.host, moved.host) == ("DE", "DE", "FR")
    assert first.stage_entered_at == AT
    assert people[first.assignee_id].email == CAST["assignee"][0]
    assert queries.values_by_id(session, Person, []) == {}


def test_planning_builds_no_notice_whose_key_is_already_in_the_outbox(db: Engine,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Planned again at the same instant (next reminders put back), no reminder text is built and none is added."""
    add_cast(db)
    assignments.create_assignment(db, SPEC, actor="admin", now=AT)
    later = AT + timedelta(days=40)
    with transaction(db) as session:
        first = plan(session, later)
        session.execute(update(Task).values(next_reminder_at=AT))
    built: list[str] = []
    task_reminder = notices.task_reminder
    monkeypatch.setattr(notices, "task_reminder", lambda *a, **k: built.append(a[0]) or task_reminder(*a, **k))
    with transaction(db) as session:
        again = plan(session, later)

    assert first > 0
    assert (again, built) == (0, [])
