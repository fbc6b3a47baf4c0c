"""Planning against a real database: task reminders at local hours, escalations, cadences, downtime, idempotence."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, update
from sqlmodel import col, select

from engine.delivery import outbox
from engine.domain.cadences import add_months_clamped
from engine.domain.errors import SojournError
from engine.planning.planner import plan
from engine.program import advance, assignments, people, tasks
from engine.program.contacts import log_contact
from engine.store.db import transaction
from engine.store.models import CadenceState, Outbox, Task
from tests.support.scenarios import advance_to, finish_stage_tasks

ROLES = ("assignee", "sending_manager", "host_manager", "coach", "sponsor", "talent", "mobility")
CREATED = datetime(2026, 12, 1, 12, tzinfo=UTC)


def _cast(db: Engine, zones: dict[str, str] | None = None) -> dict[str, str]:
    """One person per role, each in the zone `zones` names (UTC otherwise); role -> email."""
    emails = {}
    for role in ROLES:
        email = f"{role.replace('_', '.')}@example.com"
        people.add_person(db, email, name=role.replace("_", " ").title(), tz=(zones or {}).get(role, "UTC"))
        emails[role] = email
    return emails


def _create(db: Engine, cast: dict[str, str], at: datetime = CREATED, end: str = "2031-12-31") -> int:
    spec = assignments.AssignmentSpec(workflow="leadership-development", assignee=cast["assignee"], home="BR",
                                      host="DE", start="2027-01-01", end=end,
                                      stakeholders={r: e for r, e in cast.items() if r != "assignee"})
    return assignments.create_assignment(db, spec, actor="admin", now=at).id


def _plan(db: Engine, at: datetime) -> int:
    with transaction(db) as session:
        return plan(session, at)


def _rows(db: Engine, kind: str | None = None) -> list[Outbox]:
    with transaction(db) as session:
        statement = select(Outbox).order_by(col(Outbox.id))
        if kind is not None:
            statement = statement.where(Outbox.kind == kind)
        return list(session.exec(statement).all())


def _tasks(db: Engine, assignment_id: int) -> list[Task]:
    with transaction(db) as session:
        return list(session.exec(select(Task).where(Task.assignment_id == assignment_id).order_by(col(Task.id))))


def _next_instant(db: Engine) -> datetime | None:
    """The earliest instant at which planning has something to do."""
    with transaction(db) as session:
        task = session.exec(select(func.min(Task.next_reminder_at)).where(Task.status == "open")).one()
        cadence = session.exec(select(func.min(CadenceState.next_check_at))).one()
    candidates: list[Any] = [i for i in (task, cadence) if i is not None]
    return min(candidates).astimezone(UTC) if candidates else None


def _run_until(db: Engine, start: datetime, end: datetime) -> int:
    """Plan at every instant something falls due, from `start` to `end`, as a daemon that never sleeps past one."""
    now, sweeps = start, 0
    _plan(db, now)
    while (following := _next_instant(db)) is not None and following <= end:
        assert following > now, "planning must move every due instant past the sweep"
        now = following
        _plan(db, now)
        sweeps += 1
    return sweeps


def _at(day: date, hour: int, minute: int, tz: str) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(tz)).astimezone(UTC)


# --- task reminders --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "days_from_due"), [("task_due_soon", -3), ("task_due", 0), ("task_overdue", 1)])
def test_task_reminder_is_sent_at_local_hour_when_swept_one_minute_before_and_at(db: Engine, kind: str,
                                                                                 days_from_due: int) -> None:
    """At 08:59 in the owner's zone the step is not planned; at 09:00 it is, once per open task."""
    cast = _cast(db, {"coach": "Asia/Kolkata"})
    assignment_id = _create(db, cast)
    due_on = _tasks(db, assignment_id)[0].due_on
    day = due_on + timedelta(days=days_from_due)
    _plan(db, _at(day, 8, 59, "Asia/Kolkata"))
    assert _rows(db, kind) == []
    _plan(db, _at(day, 9, 0, "Asia/Kolkata"))
    rows = _rows(db, kind)
    assert sorted(r.key for r in rows) == sorted(f"{kind}/{t.id}" for t in _tasks(db, assignment_id))
    assert {r.recipient for r in rows} == {cast["coach"]}
    assert {r.deliver_at for r in rows} == {_at(day, 9, 0, "Asia/Kolkata")}


def test_escalation_steps_reach_escalate_to_and_manager_once_each_when_swept_often(db: Engine) -> None:
    """Each escalation step goes once to mobility and to the coach's manager role (talent), however often swept."""
    cast = _cast(db)
    assignment_id = _create(db, cast)
    task = _tasks(db, assignment_id)[0]
    now = CREATED
    while now < datetime.combine(task.due_on + timedelta(days=20), time(), tzinfo=UTC):
        _plan(db, now)
        now += timedelta(hours=6)
    escalations = [r for r in _rows(db, "escalation") if r.task_id == task.id]
    assert sorted(r.key for r in escalations) == [f"escalation/{task.id}/1/mobility", f"escalation/{task.id}/1/talent",
                                                  f"escalation/{task.id}/2/mobility", f"escalation/{task.id}/2/talent"]
    assert {r.recipient for r in escalations} == {cast["mobility"], cast["talent"]}
    first = datetime.combine(task.due_on + timedelta(days=4), time(9), tzinfo=UTC)
    assert sorted({r.deliver_at for r in escalations}) == [first, first + timedelta(days=7)]


def test_downtime_sends_only_latest_owner_step_when_due_soon_and_due_were_missed(db: Engine) -> None:
    """Back after due-soon and due have passed, the owner hears task_due once and no stale due-soon."""
    cast = _cast(db)
    assignment_id = _create(db, cast)
    due_on = _tasks(db, assignment_id)[0].due_on
    _plan(db, CREATED)
    _plan(db, datetime.combine(due_on, time(15), tzinfo=UTC))
    kinds = Counter(r.kind for r in _rows(db) if r.task_id is not None)
    assert kinds == {"task_due": 2}


def test_three_days_of_downtime_produce_one_reminder_each_when_daemon_returns(db: Engine) -> None:
    """A daemon down for three days sends each missed reminder once on return, and nothing more on later sweeps."""
    cast = _cast(db, {"coach": "Australia/Sydney"})
    first = _create(db, cast)
    _create(db, cast, at=CREATED + timedelta(days=1))
    due_on = _tasks(db, first)[0].due_on
    down_from = _at(due_on - timedelta(days=3), 8, 0, "Australia/Sydney")
    _run_until(db, CREATED, down_from)
    assert _rows(db, "task_due_soon") == []
    back = down_from + timedelta(days=3)  # 08:00 on the due day of the first assignment's tasks
    assert _plan(db, back) == 4
    for minutes in range(10, 60, 10):  # the sweeps that follow, up to 08:50, add nothing
        assert _plan(db, back + timedelta(minutes=minutes)) == 0
    per_task = Counter((r.task_id, r.kind) for r in _rows(db) if r.task_id is not None)
    assert set(per_task.values()) == {1}
    assert {kind for _, kind in per_task} == {"task_due_soon"}
    assert len(per_task) == 4  # two tasks of each assignment


def test_planning_twice_adds_nothing_when_state_is_unchanged(db: Engine) -> None:
    """A second plan at the same instant, even one that sees stale due instants, inserts no row."""
    cast = _cast(db)
    assignment_id = _create(db, cast)
    due_on = _tasks(db, assignment_id)[0].due_on
    at = datetime.combine(due_on + timedelta(days=12), time(12), tzinfo=UTC)
    assert _plan(db, at) > 0
    before = len(_rows(db))
    assert _plan(db, at) == 0
    with transaction(db) as session:  # as if another daemon had planned from an older view of the tasks
        session.execute(update(Task).values(next_reminder_at=CREATED))
    assert _plan(db, at) == 0
    assert len(_rows(db)) == before


def test_completed_task_gets_no_more_reminders_when_done_before_due(db: Engine) -> None:
    """A task done after its due-soon reminder gets no due, overdue or escalation."""
    cast = _cast(db)
    assignment_id = _create(db, cast)
    task = _tasks(db, assignment_id)[0]
    _run_until(db, CREATED, datetime.combine(task.due_on - timedelta(days=1), time(), tzinfo=UTC))
    tasks.complete_task(db, task.id or 0, note=None, actor="admin", now=CREATED)
    _run_until(db, CREATED, datetime.combine(task.due_on + timedelta(days=30), time(), tzinfo=UTC))
    assert sorted(r.kind for r in _rows(db) if r.task_id == task.id) == ["task_due_soon"]


def _short_project(db: Engine, cast: dict[str, str], created: datetime, start: str) -> int:
    spec = assignments.AssignmentSpec(workflow="short-term-project", assignee=cast["assignee"], home="BR",
                                      host="DE", start=start, end="2027-05-31",
                                      stakeholders={r: cast[r] for r in ("sending_manager", "host_manager",
                                                                         "mobility")})
    return assignments.create_assignment(db, spec, actor="admin", now=created).id


def test_task_overdue_at_creation_gets_one_overdue_reminder_and_no_escalation_when_first_swept(db: Engine) -> None:
    """Travel due 14 days before a start 5 days away: its owner hears it is overdue once; nobody is escalated to."""
    cast = _cast(db)
    created = datetime(2027, 2, 24, 12, tzinfo=UTC)
    assignment_id = _short_project(db, cast, created, start="2027-03-01")
    travel = next(t for t in _tasks(db, assignment_id) if t.key == "arrange_travel")
    assert travel.due_on == date(2027, 2, 15)  # escalations would have fallen on 18 and 21 February
    _plan(db, created)
    _run_until(db, created, datetime(2027, 4, 1, tzinfo=UTC))
    rows = [r for r in _rows(db) if r.task_id == travel.id]
    assert [(r.kind, r.recipient, r.deliver_at) for r in rows] == [
        ("task_overdue", cast["mobility"], datetime(2027, 2, 16, 9, tzinfo=UTC))]


def test_escalations_after_creation_still_come_when_task_was_created_overdue(db: Engine) -> None:
    """A task created on its due day is escalated as usual: only steps dated before it existed are dropped."""
    cast = _cast(db)
    created = datetime(2027, 2, 17, 12, tzinfo=UTC)
    assignment_id = _short_project(db, cast, created, start="2027-03-03")
    travel = next(t for t in _tasks(db, assignment_id) if t.key == "arrange_travel")
    assert travel.due_on == date(2027, 2, 17)
    _run_until(db, created, datetime(2027, 4, 1, tzinfo=UTC))
    rows = [r for r in _rows(db) if r.task_id == travel.id]
    assert [r.key for r in rows] == [f"task_due/{travel.id}", f"task_overdue/{travel.id}",
                                     f"escalation/{travel.id}/1/mobility", f"escalation/{travel.id}/2/mobility"]


# --- cadences --------------------------------------------------------------------------------------------------


def _enter_orientation(db: Engine, cast: dict[str, str], entered: datetime) -> int:
    """An assignment that reaches orientation at `entered` with every task done, so only cadences speak."""
    assignment_id = _create(db, cast, at=entered - timedelta(days=1))
    advance_to(db, assignment_id, "orientation", entered)
    finish_stage_tasks(db, assignment_id, entered)
    return assignment_id


@pytest.mark.parametrize(("sponsor_zone", "assignee_zone"), [("Asia/Kolkata", "Australia/Sydney"),
                                                             ("America/New_York", "Europe/Berlin")])
def test_monthly_contact_due_comes_once_a_month_on_clamped_days_when_run_36_months(
        db: Engine, sponsor_zone: str, assignee_zone: str) -> None:
    """From a 31 January anchor, each recipient gets one contact_due a month at 09:00 local on the clamped day."""
    cast = _cast(db, {"sponsor": sponsor_zone, "assignee": assignee_zone, "mobility": "America/Santiago"})
    entered = _at(date(2027, 1, 31), 12, 0, assignee_zone)
    assignment_id = _enter_orientation(db, cast, entered)
    _run_until(db, entered, datetime(2030, 1, 30, tzinfo=UTC))
    due = [r for r in _rows(db, "contact_due") if r.assignment_id == assignment_id]
    expected_days = [add_months_clamped(date(2027, 1, 31), k) for k in range(36)]
    for role, zone in (("sponsor", sponsor_zone), ("assignee", assignee_zone)):
        mine = [r for r in due if r.role == role]
        local = [r.deliver_at.astimezone(ZoneInfo(zone)) for r in mine]
        assert [t.date() for t in local] == expected_days
        assert {t.time() for t in local} == {time(9)}
        assert {r.recipient for r in mine} == {cast[role]}
    assert date(2028, 2, 29) in expected_days


def test_logged_contact_suppresses_contact_missed_when_on_date_inside_period(db: Engine) -> None:
    """A sponsor contact logged inside the first period silences its contact_missed; the second period's comes."""
    cast = _cast(db, {"sponsor": "Asia/Kolkata"})
    entered = datetime(2027, 3, 10, 12, tzinfo=UTC)
    assignment_id = _enter_orientation(db, cast, entered)
    log_contact(db, assignment_id, kind="sponsor_contact", with_email=cast["sponsor"], on="2027-04-02",
                notes=None, actor="admin", now=datetime(2027, 4, 2, 18, tzinfo=UTC))
    _run_until(db, entered, datetime(2027, 5, 20, tzinfo=UTC))
    missed = [r for r in _rows(db, "contact_missed") if r.assignment_id == assignment_id]
    assert {r.key.split("/")[3] for r in missed} == {"2027-04-10"}
    assert sorted(r.role for r in missed) == ["assignee", "mobility", "sponsor"]
    check_day = date(2027, 5, 17)  # period 10 Apr to 9 May, plus 7 days of grace, then the next morning
    assert {r.deliver_at.astimezone(ZoneInfo("UTC")).date() for r in missed if r.role == "assignee"} == {check_day}


def test_contact_missed_is_sent_once_per_period_when_daemon_was_down_for_months(db: Engine) -> None:
    """Back after three months away, each lapsed period gets one contact_missed and only today's contact_due."""
    cast = _cast(db)
    entered = datetime(2027, 3, 10, 12, tzinfo=UTC)
    assignment_id = _enter_orientation(db, cast, entered)
    _plan(db, entered)
    _plan(db, datetime(2027, 6, 20, 12, tzinfo=UTC))
    rows = [r for r in _rows(db) if r.assignment_id == assignment_id and r.kind.startswith("contact")]
    due_periods = {r.key.split("/")[3] for r in rows if r.kind == "contact_due"}
    missed_periods = sorted({r.key.split("/")[3] for r in rows if r.kind == "contact_missed"})
    assert due_periods == {"2027-03-10", "2027-06-10"}
    assert missed_periods == ["2027-03-10", "2027-04-10", "2027-05-10"]  # May's period is checked on 17 June
    assert _plan(db, datetime(2027, 6, 20, 12, tzinfo=UTC)) == 0


def test_cadence_stops_when_assignment_leaves_its_stage_range(db: Engine) -> None:
    """Cancelling the assignment ends its sponsor cadence: no due or missed notice after that."""
    cast = _cast(db)
    entered = datetime(2027, 3, 10, 12, tzinfo=UTC)
    assignment_id = _enter_orientation(db, cast, entered)
    _plan(db, entered)
    cancelled = datetime(2027, 3, 20, tzinfo=UTC)
    advance.advance(db, assignment_id, to="cancelled", reason="assignee resigned", actor="admin", now=cancelled)
    _run_until(db, cancelled, datetime(2027, 12, 31, tzinfo=UTC))
    rows = [r for r in _rows(db) if r.assignment_id == assignment_id and r.kind.startswith("contact")]
    assert {r.kind for r in rows} == {"contact_due"}
    assert {r.key.split("/")[3] for r in rows} == {"2027-03-10"}
    with transaction(db) as session:
        states = session.exec(select(CadenceState).where(CadenceState.assignment_id == assignment_id)).all()
    assert {s.next_check_at for s in states} == {None}


def test_cadence_does_not_start_when_assignment_is_before_from_stage(db: Engine) -> None:
    """An assignment still in interviews has no sponsor or coaching notices, and its cadences sleep."""
    cast = _cast(db)
    assignment_id = _create(db, cast)
    _plan(db, CREATED + timedelta(days=60))
    assert [r for r in _rows(db) if r.assignment_id == assignment_id and r.kind.startswith("contact")] == []


def test_four_weekly_coaching_cadence_runs_during_coaching_when_stage_is_reached(db: Engine) -> None:
    """The coaching cadence starts on entering coaching, every 28 days, to coach and assignee."""
    cast = _cast(db, {"coach": "Europe/Berlin"})
    entered = datetime(2027, 6, 1, 6, tzinfo=UTC)
    assignment_id = _create(db, cast, at=entered - timedelta(days=1))
    advance_to(db, assignment_id, "coaching", entered)
    finish_stage_tasks(db, assignment_id, entered)
    _run_until(db, entered, datetime(2027, 9, 1, tzinfo=UTC))
    coaching = [r for r in _rows(db, "contact_due") if r.key.split("/")[2] == "coaching" and r.role == "coach"]
    assert [r.deliver_at.astimezone(ZoneInfo("Europe/Berlin")) for r in coaching] == [
        datetime(2027, 6, 1, 9, tzinfo=ZoneInfo("Europe/Berlin")) + timedelta(days=28 * k) for k in range(4)]


# --- queued notices whose cause went away ------------------------------------------------------------------------


def _statuses(rows: list[Outbox]) -> dict[str, tuple[str, str | None]]:
    return {r.key: (r.status, r.last_error) for r in rows}


def test_queued_task_reminders_are_cancelled_when_task_is_done_before_delivery(db: Engine) -> None:
    """Done before its reminders went out, a task's pending and failed notices end `cancelled`; sent ones stay."""
    cast = _cast(db)
    assignment_id = _create(db, cast)
    task, other = _tasks(db, assignment_id)
    _plan(db, datetime.combine(task.due_on - timedelta(days=3), time(9), tzinfo=UTC))
    _plan(db, datetime.combine(task.due_on + timedelta(days=11), time(9), tzinfo=UTC))
    with transaction(db) as session:
        session.execute(update(Outbox).where(col(Outbox.key) == f"task_due_soon/{task.id}").values(status="sent"))
        session.execute(update(Outbox).where(col(Outbox.key) == f"escalation/{task.id}/1/mobility")
                        .values(status="failed"))
    tasks.complete_task(db, task.id or 0, note=None, actor="admin", now=CREATED + timedelta(days=40))
    mine = _statuses([r for r in _rows(db) if r.task_id == task.id])
    cancelled = ("cancelled", "task done before delivery")
    escalations = {f"escalation/{task.id}/{n}/{role}": cancelled for n in (1, 2) for role in ("mobility", "talent")}
    assert mine == {f"task_due_soon/{task.id}": ("sent", None), f"task_overdue/{task.id}": cancelled, **escalations}
    assert {r.status for r in _rows(db) if r.task_id == other.id} == {"pending"}
    assert {n.key for n in outbox.list_notifications(db, status="cancelled")} == {
        key for key, (status, _) in mine.items() if status == "cancelled"}


def test_queued_reminders_and_cadence_notices_are_cancelled_when_assignment_is_cancelled(db: Engine) -> None:
    """Cancelling stops the assignment's queued task and contact notices; stage_changed notices still go out."""
    cast = _cast(db)
    entered = datetime(2027, 3, 10, 12, tzinfo=UTC)
    assignment_id = _create(db, cast, at=entered - timedelta(days=1))
    advance_to(db, assignment_id, "orientation", entered)  # its tasks are due 14 and 21 days later
    _plan(db, entered + timedelta(days=12))
    cancelled_at = entered + timedelta(days=13)
    advance.advance(db, assignment_id, to="cancelled", reason="assignee resigned", actor="admin", now=cancelled_at)
    rows = [r for r in _rows(db) if r.assignment_id == assignment_id]
    queued = [r for r in rows if r.kind not in ("stage_changed", "plan_changed")]
    assert {r.kind for r in queued} >= {"contact_due", "task_due_soon"}
    assert {(r.status, r.last_error) for r in queued} == {("cancelled", "assignment cancelled before delivery")}
    assert {r.status for r in rows if r.kind in ("stage_changed", "plan_changed")} == {"pending"}
    with pytest.raises(SojournError, match="is cancelled; only dead or failed notifications can be retried"):
        outbox.retry_notification(db, queued[0].key, now=cancelled_at)


def test_queued_cadence_notices_are_cancelled_when_assignment_leaves_cadence_range(db: Engine) -> None:
    """Moving on from coaching cancels the coaching cadence's queued notices; the sponsor cadence's stay queued."""
    cast = _cast(db)
    entered = datetime(2027, 6, 1, 6, tzinfo=UTC)
    assignment_id = _create(db, cast, at=entered - timedelta(days=1), end="2027-12-31")
    advance_to(db, assignment_id, "coaching", entered)
    left = datetime(2027, 7, 10, 12, tzinfo=UTC)
    _run_until(db, entered, left)
    finish_stage_tasks(db, assignment_id, left)
    advance.advance(db, assignment_id, to=None, reason=None, actor="admin", now=left)
    _plan(db, left)
    contacts = [r for r in _rows(db) if r.assignment_id == assignment_id and r.kind.startswith("contact")]
    coaching = {(r.status, r.last_error) for r in contacts if r.key.split("/")[2] == "coaching"}
    assert coaching == {("cancelled", "assignment left the stages of this cadence before delivery")}
    assert {r.status for r in contacts if r.key.split("/")[2] == "sponsor_contact"} == {"pending"}


def test_queued_contact_missed_is_cancelled_when_contact_in_its_period_is_logged_late(db: Engine) -> None:
    """A contact dated inside a period, logged after its contact_missed was queued, cancels those notices only."""
    cast = _cast(db, {"sponsor": "Asia/Kolkata", "assignee": "America/Sao_Paulo"})
    entered = datetime(2027, 3, 10, 12, tzinfo=UTC)
    assignment_id = _enter_orientation(db, cast, entered)
    checked = _at(date(2027, 4, 17), 9, 0, "Asia/Kolkata")  # period 10 Mar to 9 Apr, plus 7 days of grace
    _run_until(db, entered, checked)
    missed = [r for r in _rows(db, "contact_missed") if r.assignment_id == assignment_id]
    assert sorted(r.role for r in missed) == ["assignee", "mobility", "sponsor"]

    def log(on: str) -> None:
        log_contact(db, assignment_id, kind="sponsor_contact", with_email=cast["sponsor"], on=on, notes=None,
                    actor="admin", now=checked + timedelta(hours=1))

    log("2027-04-12")  # in the next period: the lapse of March stands
    assert {r.status for r in _rows(db, "contact_missed") if r.assignment_id == assignment_id} == {"pending"}
    log("2027-04-09")
    assert {(r.status, r.last_error) for r in _rows(db, "contact_missed") if r.assignment_id == assignment_id} == {
        ("cancelled", "contact logged before delivery")}
