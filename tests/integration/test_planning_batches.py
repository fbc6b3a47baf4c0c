"""Batched paths give what the one-at-a-time paths give: records read per batch, tasks and sign-offs in one go,
planning without calendar attachments."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from engine.domain.notices import NewNotice, NoticeKind
from engine.domain.views import views
from engine.planning.planner import plan
from engine.program import assignments, checkins, plans, tasks
from engine.store import checkin_queries, queries
from engine.store import scratch as scratch_store
from engine.store.db import transaction
from engine.store.models import AuditEvent, Checkin, Contact, Outbox, Pulse, Signoff, Task
from tests.support.cast import CAST, WORKFLOW, stakeholders
from tests.support.scenarios import PLAN_SIGNERS, advance_to

AT = datetime(2026, 3, 2, 12, tzinfo=UTC)
SPEC = assignments.AssignmentSpec(workflow=WORKFLOW, assignee=CAST["assignee"][0], home="BR", host="DE",
                                  start="2026-03-01", end="2028-02-29", stakeholders=stakeholders())


def _two_assignments(db: Engine) -> tuple[int, int]:
    return (assignments.create_assignment(db, SPEC, actor="admin", now=AT).id,
            assignments.create_assignment(db, SPEC, actor="admin", now=AT).id)


# --- what holds a period, read once per batch --------------------------------------------------------------------


def _checkin_in(session: Session, assignment_id: int, since: datetime, before: datetime) -> bool:
    statement = (select(Checkin.id).where(Checkin.assignment_id == assignment_id, col(Checkin.at) >= since,
                                          col(Checkin.at) < before).limit(1))
    return session.exec(statement).first() is not None


def _pulse_in(session: Session, assignment_id: int, since: datetime, before: datetime) -> bool:
    statement = (select(Pulse.id).where(Pulse.assignment_id == assignment_id, col(Pulse.at) >= since,
                                        col(Pulse.at) < before).limit(1))
    return session.exec(statement).first() is not None


def _within(instants: list[Any], since: Any, before: Any) -> bool:
    return any(since <= i < before for i in instants)


def test_checkins_and_pulses_read_for_a_batch_hold_the_same_periods_as_one_query_per_period(
        db: Engine, people: dict[str, str]) -> None:
    """Instants read for many assignments and periods at once fall in exactly the windows a per-period query finds,
    at the edges too (a window includes its start and excludes its end)."""
    first, second = _two_assignments(db)
    edges = [AT + timedelta(days=d) for d in (3, 10, 17)]
    for moment in edges:
        checkins.record_checkin(db, first, by=people["assignee"], progress={}, note=None, feedback=None,
                                actor="admin", now=moment)
        checkins.record_pulse(db, second, by=people["assignee"], expectancy=4, instrumentality=4, valence=4,
                              note=None, actor="admin", now=moment)
    windows = [(start, start + timedelta(days=length)) for start in
               [AT + timedelta(days=d, microseconds=m) for d in range(0, 20) for m in (-1, 0, 1)]
               for length in (1, 7)]
    since, before = min(s for s, _ in windows), max(b for _, b in windows)
    with transaction(db) as session:
        batch_checkins = checkin_queries.checkin_instants_of(session, [first, second], since, before)
        batch_pulses = checkin_queries.pulse_instants_of(session, [first, second], since, before)
        for assignment_id in (first, second):
            for start, end in windows:
                assert _within(batch_checkins.get(assignment_id, []), start, end) == \
                    _checkin_in(session, assignment_id, start, end), (assignment_id, start, end)
                assert _within(batch_pulses.get(assignment_id, []), start, end) == \
                    _pulse_in(session, assignment_id, start, end), (assignment_id, start, end)


def test_contact_days_read_for_a_batch_hold_the_same_periods_as_one_query_per_period(
        db: Engine, people: dict[str, str]) -> None:
    """Contact days read for many assignments and kinds at once fall in exactly the periods a per-period query
    finds, the first and last day included."""
    first, second = _two_assignments(db)
    with transaction(db) as session:
        session.add_all([Contact(assignment_id=a, kind=kind, with_person_id=1, on=day, logged_by="admin", logged_at=AT)
                         for a, kind, day in [(first, "sponsor_contact", date(2027, 2, 1)),
                                              (first, "coaching", date(2027, 2, 14)),
                                              (second, "sponsor_contact", date(2027, 2, 28))]])
    periods = [(date(2027, 1, 20) + timedelta(days=d), date(2027, 1, 20) + timedelta(days=d + length))
               for d in range(0, 45) for length in (0, 6, 27)]
    with transaction(db) as session:
        days = queries.contact_days_of(session, [first, second], ["sponsor_contact", "coaching"],
                                       min(f for f, _ in periods), max(last for _, last in periods))
        for assignment_id in (first, second):
            for kind in ("sponsor_contact", "coaching"):
                for first_day, last_day in periods:
                    reference = session.exec(select(Contact.id).where(
                        Contact.assignment_id == assignment_id, Contact.kind == kind, col(Contact.on) >= first_day,
                        col(Contact.on) <= last_day)).first() is not None
                    assert _within(days.get((assignment_id, kind), []), first_day,
                                   last_day + timedelta(days=1)) == reference


def test_goal_progress_read_for_several_assignments_equals_each_read_alone(
        db: Engine, people: dict[str, str]) -> None:
    """The latest progress of every goal, read for several assignments in one go, is what each read alone gives."""
    first, second = _two_assignments(db)
    for assignment_id, percents in ((first, (10, 40)), (second, (70, 20))):
        advance_to(db, assignment_id, "orientation", AT)
        goals = [g.id for g in plans.show_plan(db, assignment_id).goals]
        for step, percent in enumerate(percents):
            checkins.record_checkin(db, assignment_id, by=people["assignee"], progress={goals[0]: percent},
                                    note=None, feedback=None, actor="admin", now=AT + timedelta(days=step + 1))
    with transaction(db) as session:
        together = checkin_queries.latest_goal_progress_of(session, [first, second])
        alone = {a: checkin_queries.latest_goal_progress(session, a) for a in (first, second)}
    assert together == alone
    assert [line.percent for line in together[first]] == [40]


# --- tasks and sign-offs in one transaction ------------------------------------------------------------------------


def _open_task_ids(db: Engine, assignment_id: int) -> list[int]:
    return [t["id"] for t in views(tasks.list_tasks(db, now=AT, assignment_id=assignment_id, status="open"))]


def _task_rows(db: Engine, assignment_id: int) -> list[tuple[Any, ...]]:
    with transaction(db) as session:
        return [(t.key, t.status, t.completed_at, t.completed_by, t.note, t.next_reminder_at)
                for t in session.exec(select(Task).where(Task.assignment_id == assignment_id).order_by(col(Task.id)))]


def _outbox_rows(db: Engine, assignment_id: int) -> list[tuple[Any, ...]]:
    with transaction(db) as session:
        return [(o.kind, o.role, o.status, o.last_error) for o in session.exec(
            select(Outbox).where(Outbox.assignment_id == assignment_id).order_by(col(Outbox.id)))]


def _audit_actions(db: Engine, assignment_id: int) -> list[tuple[str, str]]:
    with transaction(db) as session:
        return [(e.action, e.actor) for e in session.exec(
            select(AuditEvent).where(AuditEvent.assignment_id == assignment_id).order_by(col(AuditEvent.seq)))]


def _same_outcome(db: Engine, one: int, other: int) -> None:
    assert _task_rows(db, one) == _task_rows(db, other)
    assert _outbox_rows(db, one) == _outbox_rows(db, other)
    assert _audit_actions(db, one) == _audit_actions(db, other)


def test_completing_tasks_together_leaves_what_completing_them_one_by_one_leaves(
        db: Engine, people: dict[str, str]) -> None:
    """Tasks, queued reminders and audit events end the same whether tasks are done one by one or together."""
    one, other = _two_assignments(db)
    with transaction(db) as session:
        plan(session, AT + timedelta(days=30))  # queue reminders, so there is something to cancel
    done_at = AT + timedelta(days=31)
    for task_id in _open_task_ids(db, one):
        tasks.complete_task(db, task_id, note="n", actor="admin", now=done_at)
    ids = _open_task_ids(db, other)
    assert tasks.complete_tasks(db, ids, note="n", actor="admin", now=done_at) == ids
    _same_outcome(db, one, other)


def test_completing_tasks_together_skips_a_task_that_is_no_longer_open(
        db: Engine, people: dict[str, str]) -> None:
    """A task done already is skipped, and the others are still done."""
    assignment_id = assignments.create_assignment(db, SPEC, actor="admin", now=AT).id
    done_first, *rest = _open_task_ids(db, assignment_id)
    tasks.complete_task(db, done_first, note=None, actor="admin", now=AT)
    assert tasks.complete_tasks(db, [done_first, *rest], note=None, actor="admin", now=AT) == rest
    assert _open_task_ids(db, assignment_id) == []


def test_signing_a_plan_for_several_roles_together_leaves_what_signing_one_by_one_leaves(
        db: Engine, people: dict[str, str]) -> None:
    """Sign-offs and audit events are the same whether the roles sign one by one or together."""
    one, other = _two_assignments(db)
    for role in PLAN_SIGNERS:
        plans.sign_plan(db, one, role=role, by=None, actor="admin", now=AT)
    signed_now = plans.sign_plan_by_holders(db, other, [*PLAN_SIGNERS, PLAN_SIGNERS[0]], actor="admin", now=AT)
    assert [v.role for v in signed_now] == list(PLAN_SIGNERS)
    with transaction(db) as session:
        signed = {a: [(s.role, s.person_id, s.plan_version, s.signed_at) for s in session.exec(
            select(Signoff).where(Signoff.assignment_id == a).order_by(col(Signoff.id)))] for a in (one, other)}
    assert signed[one] == signed[other]
    assert _audit_actions(db, one) == _audit_actions(db, other)


# --- planning without calendar attachments ------------------------------------------------------------------------


def _planned_through(db: Engine, assignment_id: int, *, attach_calendars: bool) -> list[dict[str, Any]]:
    """Every outbox row a scratch copy of the assignment gets from planning daily for a year, with the stage moved
    on halfway so cadences start and stop."""
    scratch = scratch_store.create_scratch_database()
    try:
        with transaction(db) as source, transaction(scratch) as target:
            scratch_store.copy_assignments(source, target, [assignment_id])
        _plan_daily(scratch, AT, 180, attach_calendars)
        advance_to(scratch, assignment_id, "coaching", AT + timedelta(days=180))
        _plan_daily(scratch, AT + timedelta(days=180), 185, attach_calendars)
        with transaction(scratch) as session:
            return [o.model_dump(exclude={"calendar"}) | {"has_calendar": o.calendar is not None}
                    for o in session.exec(select(Outbox).order_by(col(Outbox.id)))]
    finally:
        scratch.dispose()


def _plan_daily(db: Engine, start: datetime, days: int, attach_calendars: bool) -> None:
    for day in range(days):
        with transaction(db) as session:
            plan(session, start + timedelta(days=day, hours=day % 24), attach_calendars=attach_calendars)


def test_planning_without_calendars_writes_the_same_notices_without_their_attachment(
        db: Engine, people: dict[str, str]) -> None:
    """Leaving the attachments off changes no notice's key, text, recipient or instant, only the attachment."""
    assignment_id = assignments.create_assignment(db, SPEC, actor="admin", now=AT).id
    advance_to(db, assignment_id, "orientation", AT)
    attached = _planned_through(db, assignment_id, attach_calendars=True)
    bare = _planned_through(db, assignment_id, attach_calendars=False)
    assert {r["kind"] for r in attached} >= {"contact_due", "checkin_due", "contact_missed"}
    assert [r | {"has_calendar": False} for r in attached] == bare
    assert {r["kind"] for r in attached if r["has_calendar"]} == {"contact_due", "checkin_due", "pulse_due"}
    assert not any(r["has_calendar"] for r in bare)


# --- cancelling queued notices -------------------------------------------------------------------------------------


def test_cancelling_one_period_of_a_cadence_leaves_other_cadences_and_periods(
        db: Engine, people: dict[str, str]) -> None:
    """A cadence named like a LIKE pattern (`_` matches any character there) names only itself, and a period only
    its own notices, whichever role they go to."""
    assignment_id = assignments.create_assignment(db, SPEC, actor="admin", now=AT).id
    first, later = date(2026, 3, 1), date(2026, 4, 1)
    parts = [("x_y", first, "assignee"), ("x_y", first, "home_manager"), ("xzy", first, "assignee"),
             ("x_y", later, "assignee"), ("x_y%", first, "assignee")]
    keys = {f"{NoticeKind.CONTACT_MISSED}/{assignment_id}/{cadence}/{day.isoformat()}/{role}": (cadence, role)
            for cadence, day, role in parts}
    with transaction(db) as session:
        queries.insert_notifications(session, [NewNotice(
            key=key, kind=NoticeKind.CONTACT_MISSED, assignment_id=assignment_id, task_id=None,
            recipient="a@example.com", role=role, subject="s", body="b", created_at=AT, deliver_at=AT,
            cadence=cadence) for key, (cadence, role) in keys.items()])
    with transaction(db) as session:
        cancelled = queries.cancel_queued_notifications(
            session, assignment_id=assignment_id, kinds=[NoticeKind.CONTACT_MISSED], reason="gone", cadence="x_y",
            period_start=first)
        statuses = {o.key: o.status for o in session.exec(select(Outbox).where(col(Outbox.key).in_(list(keys))))}
    assert cancelled == 2
    assert [k for k in keys if statuses[k] == "cancelled"] == [
        f"contact_missed/{assignment_id}/x_y/2026-03-01/assignee",
        f"contact_missed/{assignment_id}/x_y/2026-03-01/home_manager"]
