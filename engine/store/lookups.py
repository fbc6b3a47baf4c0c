"""The reads of the use cases and the planner, each named for what it answers: workflows, people, assignments.

The daemon's hot statements (outbox, due reminders, leases) live in `queries`; these are the look-ups around
them. Every read that loads rows for several assignments takes their ids and answers in one query.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from engine.domain.tasks import TaskStatus
from engine.store.models import Assignment, Goal, Person, Signoff, Stakeholder, Task, Workflow
from engine.store.moves import tasks_of as tasks_of  # the use cases' reads of tasks share the advance's statement

if TYPE_CHECKING:
    from sqlalchemy import Executable
    from sqlmodel.sql.expression import SelectOfScalar

_Row = TypeVar("_Row", Assignment, Person, Workflow)


@cache
def _by_ids(model: type[_Row]) -> SelectOfScalar[_Row]:
    """`select(model) WHERE id IN :ids`, built once per model: planning reads assignments, people and workflows
    by id at every batch of every sweep, and building the statement cost more than running it."""
    return select(model).where(col(model.id).in_(bindparam("ids", expanding=True)))


# --- workflows --------------------------------------------------------------------------------------------------


def latest_workflow(session: Session, name: str) -> Workflow | None:
    """latest_workflow: the newest installed version of workflow `name`, if any."""
    statement = select(Workflow).where(Workflow.name == name).order_by(col(Workflow.version).desc())
    return session.exec(statement).first()


def workflow_version(session: Session, name: str, version: int) -> Workflow | None:
    """workflow_version: version `version` of workflow `name`, if installed."""
    return session.exec(select(Workflow).where(Workflow.name == name, Workflow.version == version)).first()


def workflow_with_source(session: Session, name: str, source: str) -> Workflow | None:
    """workflow_with_source: an installed version of workflow `name` whose YAML text is exactly `source`."""
    return session.exec(select(Workflow).where(Workflow.name == name, Workflow.source == source)).first()


def workflow_names(session: Session) -> list[str]:
    """workflow_names: the names of the installed workflows, sorted, each once."""
    return sorted(set(session.exec(select(Workflow.name)).all()))


def all_workflows(session: Session) -> Sequence[Workflow]:
    """all_workflows: every installed version of every workflow, by name, then version."""
    return session.exec(select(Workflow).order_by(col(Workflow.name), col(Workflow.version))).all()


def workflows_by_id(session: Session, ids: Iterable[int]) -> dict[int, Workflow]:
    """workflows_by_id: the workflow versions with these ids, by id."""
    return {w.id: w for w in session.exec(_by_ids(Workflow), params={"ids": list(set(ids))}) if w.id is not None}


# --- people -----------------------------------------------------------------------------------------------------


def person_by_email(session: Session, email: str) -> Person | None:
    """person_by_email: the person whose (lower-case) email is `email`, if any."""
    return session.exec(select(Person).where(Person.email == email)).first()


def people(session: Session) -> Sequence[Person]:
    """people: everyone, by email."""
    return session.exec(select(Person).order_by(col(Person.email))).all()


def people_by_id(session: Session, ids: Iterable[int]) -> dict[int, Person]:
    """people_by_id: the people with these ids, by id, in one query (none asked: none read)."""
    wanted = set(ids)
    if not wanted:
        return {}
    return {p.id: p for p in session.exec(_by_ids(Person), params={"ids": list(wanted)}) if p.id is not None}


# --- assignments and what hangs off them --------------------------------------------------------------------------


def assignments_with_workflow_and_assignee(session: Session, *where: Any) -> list[tuple[Assignment, Workflow,
                                                                                          Person]]:
    """assignments_with_workflow_and_assignee: the assignments matching `where`, by id, each with its workflow
    version and its assignee, in one joined query."""
    statement = (select(Assignment, Workflow, Person).join(Workflow, col(Assignment.workflow_id) == Workflow.id)
                 .join(Person, col(Assignment.assignee_id) == Person.id).where(*where).order_by(col(Assignment.id)))
    return [(a, w, p) for a, w, p in session.exec(statement)]


def assignments_by_id(session: Session, ids: Iterable[int]) -> Sequence[Assignment]:
    """assignments_by_id: the assignments with these ids."""
    return session.exec(_by_ids(Assignment), params={"ids": list(set(ids))}).all()


def stakeholders_of(session: Session, assignment_ids: Iterable[int]) -> Sequence[Stakeholder]:
    """stakeholders_of: who holds which role in these assignments (the assignee is not a stakeholder row)."""
    return session.exec(select(Stakeholder).where(col(Stakeholder.assignment_id).in_(set(assignment_ids)))).all()


def stakeholder_roles_of(session: Session, assignment_ids: Iterable[int]) -> list[tuple[int, str, int]]:
    """stakeholder_roles_of: (assignment id, role, person id) for every role held in these assignments, as plain
    rows: planning reads them for a whole batch at every sweep."""
    rows = session.connection().execute(_stakeholder_roles_statement(), {"ids": list(set(assignment_ids))}).all()
    return [(assignment_id, role, person_id) for assignment_id, role, person_id in rows]


@cache
def _stakeholder_roles_statement() -> Executable:
    return select(Stakeholder.assignment_id, Stakeholder.role, Stakeholder.person_id).where(
        col(Stakeholder.assignment_id).in_(bindparam("ids", expanding=True)))


def stakeholder_people_of(session: Session, assignment_ids: Iterable[int]) -> list[tuple[int, str, Person]]:
    """stakeholder_people_of: (assignment id, role, person) for every role held in these assignments."""
    statement = select(Stakeholder.assignment_id, Stakeholder.role, Person).join(
        Person, col(Stakeholder.person_id) == Person.id).where(col(Stakeholder.assignment_id).in_(set(assignment_ids)))
    return [(assignment_id, role, person) for assignment_id, role, person in session.exec(statement)]


def goals_of(session: Session, assignment_ids: Iterable[int]) -> Sequence[Goal]:
    """goals_of: every goal of these assignments, oldest first."""
    statement = select(Goal).where(col(Goal.assignment_id).in_(set(assignment_ids))).order_by(col(Goal.id))
    return session.exec(statement).all()


def signoffs_of(session: Session, assignment_ids: Iterable[int]) -> Sequence[Signoff]:
    """signoffs_of: every sign-off of these assignments, of any plan version."""
    return session.exec(select(Signoff).where(col(Signoff.assignment_id).in_(set(assignment_ids)))).all()


# --- tasks ------------------------------------------------------------------------------------------------------


def tasks_matching(session: Session, *, assignment_id: int | None = None, owner_id: int | None = None,
                   status: str | None = None, overdue_at: datetime | None = None) -> Sequence[Task]:
    """tasks_matching: tasks, soonest due first, of one assignment, one owner, one status, or open and overdue at
    `overdue_at` (each filter only when given)."""
    statement = select(Task).order_by(col(Task.due_at), col(Task.id))
    if assignment_id is not None:
        statement = statement.where(Task.assignment_id == assignment_id)
    if owner_id is not None:
        statement = statement.where(Task.owner_id == owner_id)
    if status is not None:
        statement = statement.where(Task.status == status)
    if overdue_at is not None:
        statement = statement.where(Task.status == TaskStatus.OPEN, col(Task.due_at) <= overdue_at)
    return session.exec(statement).all()


def assignment_ids_of_stakeholder(session: Session, person_id: int) -> set[int]:
    """The assignments where the person holds some role (the assignee's own role included)."""
    held = session.exec(select(Stakeholder.assignment_id).where(Stakeholder.person_id == person_id)).all()
    assigned = session.exec(select(Assignment.id).where(Assignment.assignee_id == person_id)).all()
    return {*held, *(i for i in assigned if i is not None)}
