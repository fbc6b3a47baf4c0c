"""What an administrator changes mid-assignment: a stakeholder, the end date, and people brought in from a file.

A change moves the open tasks it concerns: a new holder of a role takes over that role's open tasks, in their own
time zone; a later end date carries with it the open tasks due relative to the end. A moved task starts a new
reminder round (`Task.reminder_round`): its queued notices are cancelled, and its steps are planned again from its
new due date under keys of their own, so the new owner hears the latest step that has come at the next sweep and
the rest on their days. Each change is appended to the audit trail with its actor and reason, raises the
assignment's row version (a concurrent change loses cleanly; calendars get a higher SEQUENCE), and shows in
`sojourn history`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Engine
from sqlalchemy.orm.attributes import flag_modified
from sqlmodel import Session

from engine.domain import inputs
from engine.domain.csv_tables import Table, TableSpec, read_table
from engine.domain.definition import Reminders
from engine.domain.errors import BadInput, SojournError
from engine.domain.notices import TASK_KINDS, NoticeKind
from engine.domain.reminders import task_steps
from engine.domain.schedule import end_of_day, zone
from engine.domain.tasks import TaskStatus
from engine.domain.views import Result
from engine.program import audit
from engine.program.people import find_person, require_person
from engine.program.records import AssignmentRecord, TaskView, load_record, task_view
from engine.program.transactions import use_case_transaction
from engine.store import lookups
from engine.store.change_queries import cancel_queued_notices_to
from engine.store.models import Person, Stakeholder, Task, pk
from engine.store.moves import wake_cadence_checks
from engine.store.queries import cancel_queued_notifications

# --- what the changes return ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StakeholderChanged(Result):
    """A role given to another person, and the open tasks they took over."""

    assignment_id: int
    event: str
    role: str
    from_: str
    to: str
    reason: str
    at: datetime
    actor: str
    tasks: tuple[TaskView, ...]


@dataclass(frozen=True)
class EndExtended(Result):
    """A later end date, and the open tasks due relative to the end that moved with it."""

    assignment_id: int
    event: str
    from_: date
    to: date
    reason: str
    at: datetime
    actor: str
    tasks: tuple[TaskView, ...]


@dataclass(frozen=True)
class ImportedPerson(Result):
    """A person added from a file, as `person list` shows them."""

    id: int
    email: str
    name: str
    tz: str
    digest: str


# --- a new stakeholder ------------------------------------------------------------------------------------------


def set_stakeholder(db: Engine, assignment_id: int, role: str, email: str, *, reason: str | None, actor: str,
                    now: datetime) -> StakeholderChanged:
    """Give `role` of a running assignment to another person, who takes over the role's open tasks."""
    why = inputs.text(reason or "", "--reason")
    address = inputs.email(email, role)
    with use_case_transaction(db) as session:
        record = load_record(session, assignment_id)
        _check_role(record, role)
        _refuse_when_finished(record, "its stakeholders")
        new = require_person(session, address, role)
        old = record.person_for(role)
        assert old is not None, "every role is filled when the assignment is created"
        if old.id == new.id:
            raise SojournError(f"{new.email} is already the {role} of assignment {assignment_id}; nothing to change")
        holder = session.get(Stakeholder, (assignment_id, role))
        assert holder is not None
        holder.person_id = pk(new)
        record.stakeholders[role] = new
        moved = [t for t in record.tasks if t.status == TaskStatus.OPEN and t.owner_role == role]
        for task in moved:
            _replan(session, task, new, task.due_on, record.definition.reminders, now, reason=f"new {role}")
        # nothing queued for the old holder in this role is theirs any more (a stage change naming tasks now the
        # new holder's, an alert to follow up, a plan change to acknowledge); cadences recompute with the new one. A
        # digest is left alone: it carries other assignments' notices too, and this one's are cancelled inside it
        cancel_queued_notices_to(session, assignment_id=assignment_id, recipient=old.email, role=role,
                                 kinds=[k for k in NoticeKind if k != NoticeKind.DIGEST],
                                 reason=f"{role} changed before delivery")
        wake_cadence_checks(session.connection(), [(assignment_id, c.kind) for c in record.definition.cadences], now)
        _bump_row_version(session, record)
        details = {"role": role, "from": old.email, "to": new.email, "reason": why, "tasks": [pk(t) for t in moved]}
        audit.append_event(session, assignment_id, audit.STAKEHOLDER_CHANGED, details, actor=actor, at=now)
        return StakeholderChanged(assignment_id=assignment_id, event=audit.STAKEHOLDER_CHANGED, role=role,
                                  from_=old.email, to=new.email, reason=why, at=now, actor=actor,
                                  tasks=_moved(record, moved))


def _check_role(record: AssignmentRecord, role: str) -> None:
    roles = record.definition.stakeholder_roles
    if role not in roles:
        raise BadInput(f"unknown role {role!r} for workflow {record.workflow.name}; roles: {', '.join(roles)}",
                       details=["give ROLE=EMAIL, e.g. coach=new.coach@example.com"])


# --- a later end date -------------------------------------------------------------------------------------------


def extend_assignment(db: Engine, assignment_id: int, *, end: str | date, reason: str | None, actor: str,
                      now: datetime) -> EndExtended:
    """Move an assignment's end date later; its open tasks due relative to the end move by as many days."""
    why = inputs.text(reason or "", "--reason")
    new_end = inputs.iso_date(end, "--end")
    with use_case_transaction(db) as session:
        record = load_record(session, assignment_id)
        _refuse_when_finished(record, "its end date")
        a = record.assignment
        old_end = a.end
        if new_end <= a.start:
            raise BadInput(f"--end {new_end.isoformat()} must be after the start, {a.start.isoformat()}")
        if new_end <= old_end:
            raise BadInput(f"--end {new_end.isoformat()} must be later than the current end, {old_end.isoformat()}",
                           details=["an assignment that ends early is cancelled: sojourn advance ID --to cancelled "
                                    "--reason TEXT"])
        a.end = new_end
        session.add(a)
        shift = new_end - old_end
        moved = [t for t in record.tasks if t.status == TaskStatus.OPEN and _due_from_end(record, t)]
        owners = lookups.people_by_id(session, (t.owner_id for t in moved))
        for task in moved:
            _replan(session, task, owners[task.owner_id], task.due_on + shift, record.definition.reminders, now,
                    reason="end date moved")
        details = {"from": old_end, "to": new_end, "reason": why, "tasks": [pk(t) for t in moved]}
        session.flush()
        audit.append_event(session, assignment_id, audit.END_EXTENDED, details, actor=actor, at=now)
        return EndExtended(assignment_id=assignment_id, event=audit.END_EXTENDED, from_=old_end, to=new_end,
                           reason=why, at=now, actor=actor, tasks=_moved(record, moved))


def _due_from_end(record: AssignmentRecord, task: Task) -> bool:
    """Whether the task's template counts its due date from the assignment's end."""
    templates = record.definition.stage(task.stage).tasks
    template = next((t for t in templates if t.key == task.key), None)
    return template is not None and template.due.anchor == "end"


# --- shared by both changes -------------------------------------------------------------------------------------


def _refuse_when_finished(record: AssignmentRecord, what: str) -> None:
    a = record.assignment
    if record.definition.is_terminal(a.stage):
        raise SojournError(f"assignment {a.id} is {a.stage}; {what} can no longer change")


def _replan(session: Session, task: Task, owner: Person, due_on: date, reminders: Reminders, now: datetime, *,
            reason: str) -> None:
    """Give a task its owner and due day, and start a new reminder round from the first step of the new plan.

    A step that has already come is due at once, so the planner sends the latest of them at its next sweep.
    """
    cancel_queued_notifications(session, assignment_id=task.assignment_id, kinds=TASK_KINDS, task_id=pk(task),
                                reason=f"{reason} before delivery")
    task.owner_id, task.due_on, task.due_at = pk(owner), due_on, end_of_day(due_on, owner.tz)
    task.reminder_round += 1
    task.next_reminder_at = max(task_steps(due_on, reminders, owner.tz)[0].at, now)
    session.add(task)


def _bump_row_version(session: Session, record: AssignmentRecord) -> None:
    """Write the assignment row itself, so its version rises and a concurrent change to it fails cleanly."""
    flag_modified(record.assignment, "stage")
    session.add(record.assignment)
    session.flush()


def _moved(record: AssignmentRecord, moved: list[Task]) -> tuple[TaskView, ...]:
    people = {p.id: p for p in record.stakeholders.values()}
    return tuple(task_view(t, people.get(t.owner_id)) for t in moved)


# --- people from a file -----------------------------------------------------------------------------------------

PERSON_COLUMNS = TableSpec(required=("email", "name"), optional=("tz",))


def import_people(db: Engine, data: bytes | str, *, source: str) -> list[ImportedPerson]:
    """Add one person per CSV line (email, name, tz), all or nothing; every problem of every line is reported."""
    table = read_table(data, PERSON_COLUMNS, source=source)
    with use_case_transaction(db) as session:
        _people_problems(session, table)
        table.problems.raise_if_any()
        people = [Person(email=inputs.email(r.values["email"]), name=r.values["name"],
                         tz=zone(r.values.get("tz") or "UTC").key) for r in table.rows]
        session.add_all(people)
        session.flush()
        return [ImportedPerson(pk(p), p.email, p.name, p.tz, p.digest) for p in people]


def _people_problems(session: Session, table: Table) -> None:
    """Every problem of every line, added to the table's: malformed values, people already there, repeated emails."""
    first_line: dict[str, int] = {}
    for row in table.rows:
        for message in _person_line_problems(session, row.values):
            table.problems.add(row.line, message)
        address = row.values["email"].lower()
        if address in first_line:
            table.problems.add(row.line, f"{address} is also on line {first_line[address]}")
        first_line.setdefault(address, row.line)


def _person_line_problems(session: Session, row: dict[str, str]) -> list[str]:
    messages = []
    checks = ((inputs.email, row["email"], "email"), (inputs.text, row["name"], "name"),
              (lambda value, _what: zone(value), row.get("tz") or "UTC", "tz"))
    for check, value, what in checks:
        try:
            check(value, what)
        except SojournError as exc:
            messages.append(exc.message)
    if not messages and find_person(session, row["email"]) is not None:
        messages.append(f"a person with email {row['email'].lower()} already exists")
    return messages
