"""Builders of database states that tests and benchmarks start from: the cast, an assignment at a stage, an overdue
task, an outbox full of due notices with nothing else to plan."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, delete, update
from sqlmodel import col

from engine.domain.definition import parse_definition
from engine.domain.notices import NewNotice, NoticeKind
from engine.program import advance, assignments, contacts, plans, tasks, workflows
from engine.program.people import add_person
from engine.store import queries
from engine.store.db import transaction
from engine.store.models import CadenceState, Outbox, Person, Task
from tests.support.cast import ASSIGNMENT, CAST, WORKFLOW, emails, stakeholders

PLAN_SIGNERS = ("assignee", "sending_manager", "host_manager", "talent", "mobility")


def add_cast(db: Engine) -> dict[str, str]:
    """Add every person of the cast; role -> email."""
    for email, name, tz in CAST.values():
        add_person(db, email, name=name, tz=tz)
    return emails()


def cast_spec() -> assignments.AssignmentSpec:
    """The cast's leadership-development assignment from Brazil to Germany, every role filled."""
    return assignments.AssignmentSpec(workflow=WORKFLOW, assignee=CAST["assignee"][0], stakeholders=stakeholders(),
                                      **ASSIGNMENT)


# --- an assignment moved along its lifecycle ---------------------------------------------------------------------


def finish_stage_tasks(db: Engine, assignment_id: int, at: datetime) -> None:
    """Mark every open task of the assignment's current stage done at `at`."""
    shown = assignments.show_assignment(db, assignment_id, now=at).view()
    for task in shown["tasks"]:
        if task["stage"] == shown["stage"] and task["status"] == "open":
            tasks.complete_task(db, task["id"], note=None, actor="admin", now=at)


def advance_to(db: Engine, assignment_id: int, stage: str, at: datetime) -> None:
    """Do whatever each stage needs and advance, until the assignment is in `stage` (all at instant `at`)."""
    while (current := assignments.show_assignment(db, assignment_id, now=at).stage) != stage:
        finish_stage_tasks(db, assignment_id, at)
        if current == "plan_agreed":
            plans.add_goal(db, assignment_id, title="Lead the regional team", measure="engagement score",
                           target="75", due="2027-12-31", actor="admin", now=at)
            for role in PLAN_SIGNERS:
                plans.sign_plan(db, assignment_id, role=role, by=None, actor="admin", now=at)
        advance.advance(db, assignment_id, to=None, reason=None, actor="admin", now=at)


def assignment_in_stage(db: Engine, spec: assignments.AssignmentSpec, stage: str, at: datetime) -> int:
    """An assignment created at `at` and moved on to `stage` at the same instant, its new stage's tasks open."""
    assignment_id = assignments.create_assignment(db, spec, actor="admin", now=at).id
    advance_to(db, assignment_id, stage, at)
    return assignment_id


def make_task_overdue(db: Engine, task_id: int, *, days: int = 2, now: datetime | None = None) -> None:
    """Move a task's due day `days` back from today in its owner's zone (at `now`, else the real clock), with its
    next reminder due, as if the days had passed while no daemon ran.

    With the default two days, the overdue step (the day after due, 09:00 local) has passed and the first
    escalation (three days after that) has not, so exactly one reminder is due for the task.
    """
    now = now or datetime.now(UTC)
    with transaction(db) as session:
        task = session.get(Task, task_id)
        assert task is not None
        owner = session.get(Person, task.owner_id)
        assert owner is not None
        today: date = now.astimezone(ZoneInfo(owner.tz)).date()
        task.due_on = today - timedelta(days=days)
        task.next_reminder_at = now - timedelta(seconds=1)
        session.add(task)


def assignment_of_workflow(db: Engine, text: str, *, source: str, stakeholders: Mapping[str, str], actor: str,
                           now: datetime) -> int:
    """Install the workflow `text` defines and create an assignment of it at `now` over the cast's dates, the cast's
    assignee with these stakeholders (role -> email), still in its initial stage. Returns its id."""
    workflows.install_workflow(db, text, source=source, now=now)
    spec = assignments.AssignmentSpec(parse_definition(text, source=source).name, CAST["assignee"][0],
                                  stakeholders=dict(stakeholders), **ASSIGNMENT)
    return assignments.create_assignment(db, spec, actor=actor, now=now).id


# --- an outbox to deliver and nothing else -----------------------------------------------------------------------


def silence_planning(db: Engine, *, keep_sent: bool = False) -> None:
    """Empty the outbox (but for sent rows with `keep_sent`) and leave no task reminder or cadence check to plan."""
    with transaction(db) as session:
        session.execute(delete(Outbox).where(col(Outbox.status) != "sent") if keep_sent else delete(Outbox))
        session.execute(update(Task).values(next_reminder_at=None))
        session.execute(update(CadenceState).values(next_check_at=None))


def quiet_assignment(db: Engine, spec: assignments.AssignmentSpec) -> int:
    """An assignment with nothing to plan and an empty outbox, for notifications a test puts there itself."""
    assignment_id = int(assignments.create_assignment(db, spec, actor="admin", now=datetime.now(UTC)).id)
    silence_planning(db)
    return assignment_id


def fill_outbox(db: Engine, assignment_id: int, count: int, *, prefix: str = "notice",
                body: str = "Put in the outbox by an acceptance test.", due: datetime | None = None) -> list[str]:
    """`count` task_due notices to the coach, already due (five minutes ago unless `due` says), inserted as planning
    would; returns their keys, `prefix/00000` onwards."""
    due = due or datetime.now(UTC) - timedelta(minutes=5)
    rows = [NewNotice(key=f"{prefix}/{n:05d}", kind=NoticeKind.TASK_DUE, assignment_id=assignment_id, task_id=None,
                      recipient=CAST["coach"][0], role="coach", subject=f"Notice {n}", body=body, created_at=due,
                      deliver_at=due) for n in range(count)]
    with transaction(db) as session:
        assert queries.insert_notifications(session, rows) == count
    return [r.key for r in rows]


# --- an assignment with a record of every kind -------------------------------------------------------------------


def assignment_with_every_record(db: Engine, spec: assignments.AssignmentSpec, at: datetime) -> int:
    """A completed assignment whose history holds every kind of record `audit verify` checks: stage changes, tasks
    done with notes, sign-offs, an acknowledged plan change, a contact, check-ins both ways, a pulse whose alert
    was resolved, and a 12-month outcome. The assignee (Ana Lima) wrote notes, feedback and a pulse note and is
    named in what others wrote. Returns its id."""
    from engine.program import checkins, outcomes, plans

    people = emails()
    assignee, name = CAST["assignee"][0], CAST["assignee"][1]
    assignment_id = assignments.create_assignment(db, spec, actor="admin@example.com", now=at).id
    first = assignments.show_assignment(db, assignment_id, now=at).view()["tasks"][0]
    tasks.complete_task(db, first["id"], note="my expectations, written down", actor=assignee, now=at)
    finish_stage_tasks(db, assignment_id, at)
    advance.advance(db, assignment_id, to=None, reason=f"{name} and her manager interviewed", actor=assignee, now=at)
    plans.add_goal(db, assignment_id, title="Lead the regional team", measure="engagement score", target="75",
                   due="2027-06-30", actor="admin@example.com", now=at)
    plans.sign_plan_by_holders(db, assignment_id, PLAN_SIGNERS, actor="admin@example.com", now=at)
    finish_stage_tasks(db, assignment_id, at)
    advance.advance(db, assignment_id, to=None, reason=None, actor="admin@example.com", now=at)
    goal = plans.add_goal(db, assignment_id, title="Grow the team", measure="hires", target="3", due="2027-06-30",
                          actor="admin@example.com", now=at)
    plans.acknowledge_plan_change(db, assignment_id, by=people["sending_manager"], actor=people["sending_manager"],
                                  now=at)
    contacts.log_contact(db, assignment_id, kind="sponsor_contact", with_email=people["sponsor"],
                         on=at.date().isoformat(), notes=f"call with {name} about her return", actor=people["sponsor"],
                         now=at)
    goal_id = goal.id
    checkins.record_checkin(db, assignment_id, by=assignee, progress={goal_id: 40}, note="hiring is slow",
                            feedback="my host manager makes time for me", actor=assignee, now=at)
    checkins.record_checkin(db, assignment_id, by=people["host_manager"], progress={goal_id: 45}, note=None,
                            feedback=f"{name} ({assignee}) learns fast", actor=people["host_manager"], now=at)
    pulse = checkins.record_pulse(db, assignment_id, by=assignee, expectancy=2, instrumentality=4, valence=4,
                                  note="unsure the promotion is still on the table", actor=assignee, now=at)
    checkins.resolve_pulse_alert(db, pulse.id, by=people["coach"], note=f"spoke with {name}",
                                 actor=people["coach"], now=at)
    returned = at + timedelta(days=550)  # after the cast's end date, which the last stages wait for
    advance_to(db, assignment_id, "completed", returned)
    outcomes.record_outcome(db, assignment_id, outcomes.OutcomeReport(
        months=12, retained=True, considered_for_promotion=True,
        competencies=(outcomes.CompetencyRating("negotiation", 2, 4),), impact=f"{name} opened the Chilean market"),
        actor=people["talent"], now=returned)
    return assignment_id
