"""The reads behind `sojourn report`: one query per table for all selected assignments, never one per assignment.

They select plain columns and run as Core statements on the session's connection: a report reads every row of a
program once, and ORM objects would cost more than the figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple

from sqlalchemy import Executable, Select, extract, select
from sqlmodel import Session, col

from engine.domain.tasks import TaskStatus
from engine.store.models import Assignment, Contact, Person, StageChange, Task, Workflow


@dataclass(frozen=True)
class AssignmentFilter:
    """Which assignments a report covers; None means no restriction."""

    workflow: str | None = None
    start_year: int | None = None
    host: str | None = None


# Rows are named tuples: a report reads hundreds of thousands of them, and a tuple is the cheapest to build.
class AssignmentRow(NamedTuple):
    id: int
    workflow_id: int
    stage: str
    home: str
    host: str
    start: date
    end: date
    assignee_email: str
    assignee_name: str
    assignee_tz: str


class TransitionRow(NamedTuple):
    assignment_id: int
    from_stage: str | None
    to_stage: str
    at: datetime
    reason: str | None


class OverdueTaskRow(NamedTuple):
    assignment_id: int
    owner_role: str
    owner_email: str
    owner_name: str
    due_on: date


class ContactRow(NamedTuple):
    assignment_id: int
    kind: str
    on: date


def selected_ids(selection: AssignmentFilter) -> Select[Any]:
    """selected_ids: the ids of the selected assignments, as a subquery the other reads filter on."""
    statement: Select[Any] = select(col(Assignment.id)).join(Workflow, col(Assignment.workflow_id) == col(Workflow.id))
    if selection.workflow is not None:
        statement = statement.where(col(Workflow.name) == selection.workflow)
    if selection.start_year is not None:
        statement = statement.where(extract("year", col(Assignment.start)) == selection.start_year)
    if selection.host is not None:
        statement = statement.where(col(Assignment.host) == selection.host)
    return statement


def rows_of(session: Session, statement: Executable) -> list[tuple[Any, ...]]:
    """rows_of: plain tuples from a Core execution on the session's connection, bypassing the ORM's row processing."""
    return [tuple(row) for row in session.connection().execute(statement)]


def report_workflows(session: Session) -> list[Workflow]:
    """report_workflows: every installed workflow version (a handful of rows), oldest first."""
    return list(session.scalars(select(Workflow).order_by(col(Workflow.id))))


def report_assignments(session: Session, selection: AssignmentFilter) -> list[AssignmentRow]:
    """report_assignments: the selected assignments with their assignee, by id."""
    statement = (select(col(Assignment.id), col(Assignment.workflow_id), col(Assignment.stage), col(Assignment.home),
                        col(Assignment.host), col(Assignment.start), col(Assignment.end), col(Person.email),
                        col(Person.name), col(Person.tz))
                 .join(Person, col(Assignment.assignee_id) == col(Person.id))
                 .where(col(Assignment.id).in_(selected_ids(selection))).order_by(col(Assignment.id)))
    return [AssignmentRow(*row) for row in rows_of(session, statement)]


def report_transitions(session: Session, selection: AssignmentFilter) -> list[TransitionRow]:
    """report_transitions: the stage history of the selected assignments, oldest first within each assignment."""
    statement = (select(col(StageChange.assignment_id), col(StageChange.from_stage),
                        col(StageChange.to_stage), col(StageChange.at), col(StageChange.reason))
                 .where(col(StageChange.assignment_id).in_(selected_ids(selection)))
                 .order_by(col(StageChange.assignment_id), col(StageChange.id)))
    return [TransitionRow(*row) for row in rows_of(session, statement)]


def report_overdue_tasks(session: Session, selection: AssignmentFilter, now: datetime) -> list[OverdueTaskRow]:
    """report_overdue_tasks: open tasks of the selected assignments whose due instant has passed at `now`."""
    statement = (select(col(Task.assignment_id), col(Task.owner_role), col(Person.email), col(Person.name),
                        col(Task.due_on))
                 .join(Person, col(Task.owner_id) == col(Person.id))
                 .where(col(Task.status) == TaskStatus.OPEN, col(Task.due_at) <= now,
                        col(Task.assignment_id).in_(selected_ids(selection)))
                 .order_by(col(Task.due_on), col(Task.id)))
    return [OverdueTaskRow(*row) for row in rows_of(session, statement)]


def report_contacts(session: Session, selection: AssignmentFilter) -> list[ContactRow]:
    """report_contacts: the logged contacts (kind and day) of the selected assignments."""
    statement = (select(col(Contact.assignment_id), col(Contact.kind), col(Contact.on))
                 .where(col(Contact.assignment_id).in_(selected_ids(selection))))
    return [ContactRow(*row) for row in rows_of(session, statement)]
