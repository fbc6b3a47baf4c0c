"""Named Core statements for stage changes: loading the assignment an advance reads, and writing a move or a creation.

Who may write what. Only the use cases that put an assignment into a stage (creating one, importing a CSV file,
advancing) write through this module: the assignment row (its stage, `stage_entered_at` and `row_version`), its
stakeholders, one history row per stage entered, the new stage's tasks, the `stage_changed` notices of the outbox
and the cadence checks the daemon must look at. The daemon never calls it: it plans and dispatches through
`engine.store.queries`, writing task reminder steps, cadence checks and outbox state only.

The optimistic lock. `assignment.row_version` is read with the assignment and checked when it moves:
`move_assignment` runs `UPDATE assignment SET stage = ?, stage_entered_at = ?, row_version = row_version + 1
WHERE id = ? AND row_version = ?` and counts the rows it changed. Zero means another transaction moved or changed the
assignment after it was read; `StaleDataError` is raised, the use case's transaction rolls back, and the user is
told of a concurrent change (exit 1, nothing written). On PostgreSQL a second writer waits on the row lock of the
first and then re-checks the WHERE clause against the committed row, so it finds the version moved and loses. On
SQLite every transaction begins with `BEGIN IMMEDIATE`, so writers take turns and the second reads the stage the
first committed. ORM writes of the same row elsewhere (a goal bumping `plan_version`) check and bump the same column
through the mapper's `version_id_col`, so both paths honour one lock.

Statements are built once per dialect with bind parameters, so SQLAlchemy compiles each once per process; rows of
one kind go in one multi-row INSERT (RETURNING ids in the order given where the caller needs them).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any, TypeVar, cast

from sqlalchemy import Connection, CursorResult, Insert, Table, bindparam, case, insert, or_, select, update
from sqlalchemy.orm import configure_mappers
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.orm.instrumentation import manager_of_class
from sqlmodel import SQLModel

from engine.store.models import (
    Assignment,
    CadenceState,
    Goal,
    Outbox,
    Person,
    Signoff,
    Stakeholder,
    Task,
    TransitionRecord,
    Workflow,
)

Row = TypeVar("Row", bound=SQLModel)
# SQLite allows 32,766 bound values a statement; 500 rows of up to 15 columns stay well inside on every backend.
ROWS_PER_STATEMENT = 500


def _table(model: Any) -> Table:
    return cast(Table, model.__table__)


@cache
def _mappers_ready() -> bool:
    configure_mappers()
    return True


def typed_row(model: type[Row], values: Mapping[str, Any]) -> Row:
    """A model instance holding `values`, built the way the ORM builds a loaded row (no validation, no session).

    It reads like any loaded row; it is not attached to a session, so changing it writes nothing.
    """
    _mappers_ready()
    instance: Row = manager_of_class(model).new_instance()
    instance.__dict__.update(values)
    return instance


def _typed_rows(model: type[Row], rows: Iterable[Any]) -> list[Row]:
    return [typed_row(model, row._mapping) for row in rows]


# --- loading --------------------------------------------------------------------------------------------------


@dataclass
class AssignmentRows:
    """An assignment and the rows an advance reads around it, as typed model instances."""

    assignment: Assignment
    workflow: Workflow
    assignee: Person
    stakeholders: dict[str, Person] = field(default_factory=dict)  # role -> person, the assignee not included
    tasks: list[Task] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    signoffs: list[Signoff] = field(default_factory=list)


@cache
def _load_statements() -> dict[str, Any]:
    a, w, p, s = _table(Assignment), _table(Workflow), _table(Person), _table(Stakeholder)
    t, g, so = _table(Task), _table(Goal), _table(Signoff)
    wanted: Any = bindparam("assignment_id")
    return {
        "head": select(a, w, p).join(w, w.c.id == a.c.workflow_id).join(p, p.c.id == a.c.assignee_id)
        .where(a.c.id == wanted),
        "stakeholders": select(s.c.role, p).join(p, p.c.id == s.c.person_id).where(s.c.assignment_id == wanted),
        "tasks": select(t).where(t.c.assignment_id == wanted).order_by(t.c.id),
        "goals": select(g).where(g.c.assignment_id == wanted).order_by(g.c.id),
        "signoffs": select(so).where(so.c.assignment_id == wanted).order_by(so.c.id),
    }


def load_assignment(connection: Connection, assignment_id: int) -> AssignmentRows | None:
    """load_assignment: an assignment with its workflow version, assignee, stakeholders, tasks, goals and sign-offs.

    Five indexed SELECTs (the first joins the assignment, its workflow version and its assignee); None when there
    is no such assignment.
    """
    statements, key = _load_statements(), {"assignment_id": assignment_id}
    head = connection.execute(statements["head"], key).first()
    if head is None:
        return None
    widths = [len(_table(model).c) for model in (Assignment, Workflow)]
    values = tuple(head)
    assignment_values = values[:widths[0]]
    workflow_values = values[widths[0]:widths[0] + widths[1]]
    person_values = values[widths[0] + widths[1]:]
    rows = AssignmentRows(
        typed_row(Assignment, dict(zip(_table(Assignment).c.keys(), assignment_values, strict=True))),
        typed_row(Workflow, dict(zip(_table(Workflow).c.keys(), workflow_values, strict=True))),
        typed_row(Person, dict(zip(_table(Person).c.keys(), person_values, strict=True))))
    person_columns = _table(Person).c.keys()
    for role, *person in connection.execute(statements["stakeholders"], key):
        rows.stakeholders[role] = typed_row(Person, dict(zip(person_columns, person, strict=True)))
    rows.tasks = tasks_of(connection, assignment_id)
    rows.goals = _typed_rows(Goal, connection.execute(statements["goals"], key))
    rows.signoffs = _typed_rows(Signoff, connection.execute(statements["signoffs"], key))
    return rows


def tasks_of(connection: Connection, assignment_id: int) -> list[Task]:
    """tasks_of: an assignment's tasks as the database has them now, oldest first."""
    return _typed_rows(Task, connection.execute(_load_statements()["tasks"], {"assignment_id": assignment_id}))


def people_by_email(connection: Connection, emails: Iterable[str]) -> dict[str, Person]:
    """people_by_email: the people with these (normalised) emails, by email, a few hundred per SELECT."""
    table, wanted = _table(Person), sorted(set(emails))
    found: dict[str, Person] = {}
    for start in range(0, len(wanted), ROWS_PER_STATEMENT):
        chunk = wanted[start:start + ROWS_PER_STATEMENT]
        for person in _typed_rows(Person, connection.execute(select(table).where(table.c.email.in_(chunk)))):
            found[person.email] = person
    return found


# --- writing --------------------------------------------------------------------------------------------------


@cache
def _move_statement() -> Any:
    table = _table(Assignment)
    return (update(table).where(table.c.id == bindparam("assignment_id"),
                                table.c.row_version == bindparam("seen_version"))
            .values(stage=bindparam("stage"), stage_entered_at=bindparam("entered_at"),
                    row_version=table.c.row_version + 1))


def move_assignment(connection: Connection, assignment_id: int, *, seen_version: int, stage: str,
                    entered_at: datetime) -> int:
    """move_assignment: set the stage if the row still has the version read; returns the new version.

    Raises StaleDataError when no row matched: another transaction changed the assignment since it was read.
    """
    result = cast(CursorResult[Any], connection.execute(_move_statement(), {
        "assignment_id": assignment_id, "seen_version": seen_version, "stage": stage, "entered_at": entered_at}))
    if result.rowcount != 1:
        raise StaleDataError(f"assignment {assignment_id} changed since version {seen_version} was read")
    return seen_version + 1


def _insert_returning_ids(connection: Connection, model: Any, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """One multi-row INSERT per few hundred rows; the new ids come back in the order of `rows`."""
    if not rows:
        return []
    table = _table(model)
    statement = insert(table).returning(table.c.id, sort_by_parameter_order=True)
    ids: list[int] = []
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        ids += connection.execute(statement, list(rows[start:start + ROWS_PER_STATEMENT])).scalars().all()
    return ids


def _insert_all(connection: Connection, statement: Insert, rows: Sequence[Mapping[str, Any]]) -> None:
    for start in range(0, len(rows), ROWS_PER_STATEMENT):
        connection.execute(statement, list(rows[start:start + ROWS_PER_STATEMENT]))


def insert_assignments(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """insert_assignments: new assignment rows at row_version 1 (as the ORM starts them); their ids, in order."""
    return _insert_returning_ids(connection, Assignment, [{"plan_version": 1, "row_version": 1, **r} for r in rows])


def insert_stakeholders(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """insert_stakeholders: who holds each role of new assignments (assignment_id, role, person_id)."""
    _insert_all(connection, insert(_table(Stakeholder)), rows)


def insert_history(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """insert_history: append stage changes to the history; their ids, in order (notice keys carry them)."""
    return _insert_returning_ids(connection, TransitionRecord, rows)


def insert_tasks(connection: Connection, tasks: Sequence[Task]) -> None:
    """insert_tasks: write new tasks and give each instance the id it got."""
    columns = [c.key for c in _table(Task).c if c.key != "id"]
    ids = _insert_returning_ids(connection, Task, [{c: task.__dict__[c] for c in columns} for task in tasks])
    for task, task_id in zip(tasks, ids, strict=True):
        task.__dict__["id"] = task_id


@cache
def _outbox_insert(dialect: str) -> Insert:
    """`INSERT ... ON CONFLICT (key) DO NOTHING` into the outbox, as `queries.insert_notifications` writes it."""
    table = _table(Outbox)
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table).on_conflict_do_nothing(index_elements=["key"])
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table).on_conflict_do_nothing(index_elements=["key"])


def insert_stage_notices(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """insert_stage_notices: queue `stage_changed` notices; a key already present is kept as it is."""
    complete = [{"task_id": None, "status": "pending", "attempts": 0, "delivered_to": [], "last_error": None,
                 "sent_at": None, "claimed_by": None, "claimed_until": None, "next_attempt_at": r["deliver_at"], **r}
                for r in rows]
    _insert_all(connection, _outbox_insert(connection.dialect.name), complete)


@cache
def _wake_statement(dialect: str) -> Insert:
    """The cadence upsert: an existing earlier check is kept, a later or empty one becomes the new instant."""
    table = _table(CadenceState)
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        statement: Any = postgresql.insert(table)
    else:
        from sqlalchemy.dialects import sqlite

        statement = sqlite.insert(table)
    current, wanted = table.c.next_check_at, statement.excluded.next_check_at
    earlier = case((or_(current.is_(None), current > wanted), wanted), else_=current)
    return cast(Insert, statement.on_conflict_do_update(index_elements=["assignment_id", "kind"],
                                                        set_={"next_check_at": earlier}))


def wake_cadence_checks(connection: Connection, checks: Iterable[tuple[int, str]], now: datetime) -> None:
    """wake_cadence_checks: ask the daemon to look at these (assignment id, cadence kind) pairs at `now`.

    Written after a stage change. An existing earlier check is kept: moving it later could skip a period's check
    that is still pending.
    """
    rows = [{"assignment_id": a, "kind": kind, "next_check_at": now} for a, kind in dict.fromkeys(checks)]
    if rows:
        _insert_all(connection, _wake_statement(connection.dialect.name), rows)
