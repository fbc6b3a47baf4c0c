"""Named Core statements for stage changes: loading the assignment an advance reads, and writing a move or a creation.

Who may write what. Only the use cases that put an assignment into a stage (creating one, importing a CSV file,
advancing) write through this module: the assignment row (its stage, `stage_entered_at` and `row_version`), its
stakeholders, one history row per stage entered, the new stage's tasks, the `stage_changed` notices of the outbox,
the cadence checks the daemon must look at, and the audit events of the move with the chain's new head. The daemon
never calls it: it plans and dispatches through `engine.store.queries`, writing task reminder steps, cadence checks
and outbox state only.

The optimistic lock. `assignment.row_version` is read with the assignment and checked when it moves:
`move_assignment` runs `UPDATE assignment SET stage = ?, stage_entered_at = ?, row_version = row_version + 1
WHERE id = ? AND row_version = ? RETURNING audit_seq, audit_head`. No row back means another transaction moved or
changed the assignment after it was read; `StaleDataError` is raised, the use case's transaction rolls back, and the
user is told of a concurrent change (exit 1, nothing written). On PostgreSQL a second writer waits on the row lock of
the first and then re-checks the WHERE clause against the committed row, so it finds the version moved and loses. On
SQLite every transaction begins with `BEGIN IMMEDIATE`, so writers take turns and the second reads the stage the
first committed. ORM writes of the same row elsewhere (a goal bumping `plan_version`) check and bump the same column
through the mapper's `version_id_col`, so both paths honour one lock.

Statements are built once per dialect with bind parameters, so SQLAlchemy compiles each once per process. History
and tasks go in multi-row INSERTs whose RETURNING ids are matched back to their rows by key; rows that need no ids
back (stakeholders, notices, cadence checks) go to the driver as one `executemany` batch, which measured faster.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from itertools import accumulate
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, cast

from sqlalchemy import (
    Connection,
    Insert,
    bindparam,
    case,
    insert,
    literal_column,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.orm import configure_mappers
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.orm.instrumentation import manager_of_class
from sqlmodel import Session, SQLModel, col
from sqlmodel import select as orm_select

from engine.domain.notices import NewNotice
from engine.store.models import (
    Assignment,
    AuditEvent,
    CadenceState,
    Goal,
    Outbox,
    Person,
    Signoff,
    StageChange,
    Stakeholder,
    Task,
    Workflow,
    table_of,
)
from engine.store.objective_queries import objective_levels_of_goals
from engine.store.queries import dialect_insert

if TYPE_CHECKING:
    from sqlalchemy import Select
    from sqlmodel.sql.expression import SelectOfScalar

Row = TypeVar("Row", bound=SQLModel)
# SQLite allows 32,766 bound values a statement; 500 rows of up to 15 columns stay well inside on every backend.
ROWS_PER_STATEMENT = 500


@cache
def _layout(model: type[SQLModel]) -> tuple[Any, tuple[str, ...]]:
    """How to build instances of `model`: its class manager (mappers configured first) and its column keys."""
    configure_mappers()
    return manager_of_class(model), tuple(table_of(model).c.keys())


def typed_row(model: type[Row], values: Mapping[str, Any]) -> Row:
    """A model instance holding `values`, built the way the ORM builds a loaded row (no validation, no session).

    It reads like any loaded row; it is not attached to a session, so changing it writes nothing.
    """
    instance: Row = _layout(model)[0].new_instance()
    instance.__dict__.update(values)
    return instance


def _typed_rows(model: type[Row], rows: Iterable[Sequence[Any]]) -> list[Row]:
    """Instances of `model` from result rows whose columns are the table's, in order."""
    manager, keys = _layout(model)
    built = []
    for row in rows:
        instance: Row = manager.new_instance()
        instance.__dict__.update(zip(keys, row, strict=True))
        built.append(instance)
    return built


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
    objective_levels: dict[int, frozenset[str]] = field(default_factory=dict)  # goal id -> its objectives' levels


class _LoadStatements(NamedTuple):
    head: Select[Any]  # one row per stakeholder (one row with no role when there is none): the head repeats on each
    goals: Select[Any]
    signoffs: Select[Any]


@cache
def _load_statements() -> _LoadStatements:
    a, w, p, s = table_of(Assignment), table_of(Workflow), table_of(Person), table_of(Stakeholder)
    g, so = table_of(Goal), table_of(Signoff)
    wanted: Any = bindparam("assignment_id")
    holder = p.alias("holder")
    return _LoadStatements(
        head=select(a, w, p, s.c.role, holder).join(w, w.c.id == a.c.workflow_id)
        .join(p, p.c.id == a.c.assignee_id).outerjoin(s, s.c.assignment_id == a.c.id)
        .outerjoin(holder, holder.c.id == s.c.person_id).where(a.c.id == wanted).order_by(s.c.role),
        goals=select(g).where(g.c.assignment_id == wanted).order_by(g.c.id),
        signoffs=select(so).where(so.c.assignment_id == wanted).order_by(so.c.id),
    )


def load_assignment(connection: Connection, assignment_id: int) -> AssignmentRows | None:
    """load_assignment: an assignment with its workflow version, assignee, stakeholders, tasks, goals and sign-offs.

    Five indexed SELECTs: the assignment joined with its workflow version, its assignee and its stakeholders, then
    tasks, goals, sign-offs and the levels of the goals' objectives. None when there is no such assignment.
    """
    statements, key = _load_statements(), {"assignment_id": assignment_id}
    head = connection.execute(statements.head, key).all()
    if not head:
        return None
    assignment_end, workflow_end, person_end = accumulate(len(_layout(m)[1]) for m in (Assignment, Workflow, Person))
    first = tuple(head[0])
    rows = AssignmentRows(_typed_rows(Assignment, [first[:assignment_end]])[0],
                          _typed_rows(Workflow, [first[assignment_end:workflow_end]])[0],
                          _typed_rows(Person, [first[workflow_end:person_end]])[0])
    holders = [tuple(row)[person_end:] for row in head if row[person_end] is not None]  # (role, *person)
    for holder, person in zip(holders, _typed_rows(Person, (h[1:] for h in holders)), strict=True):
        rows.stakeholders[holder[0]] = person
    rows.tasks = tasks_of(connection, [assignment_id])
    rows.goals = _typed_rows(Goal, connection.execute(statements.goals, key))
    rows.signoffs = _typed_rows(Signoff, connection.execute(statements.signoffs, key))
    rows.objective_levels = objective_levels_of_goals(connection, [assignment_id])
    return rows


@cache
def _tasks_statement(one: bool) -> SelectOfScalar[Task]:
    wanted = col(Task.assignment_id)
    where = wanted == bindparam("assignment_id") if one else wanted.in_(bindparam("assignment_ids", expanding=True))
    return orm_select(Task).where(where).order_by(col(Task.id))


def tasks_of(db: Session | Connection, assignment_ids: Iterable[int]) -> list[Task]:
    """tasks_of: every task of these assignments as the database has them now, oldest first.

    One statement, built once, serves both readers: on a session it loads tracked instances a use case may change,
    on a connection (an advance's loading) detached rows built without the ORM's bookkeeping. One assignment's tasks
    are read with an equality, since an expanding IN made that read a fifth slower on the advance path.
    """
    ids = list(dict.fromkeys(assignment_ids))
    if not ids:
        return []
    one = len(ids) == 1
    values = {"assignment_id": ids[0]} if one else {"assignment_ids": ids}
    if isinstance(db, Session):
        return list(db.exec(_tasks_statement(one), params=values))
    return _typed_rows(Task, db.execute(_tasks_statement(one), values))


def people_by_email(connection: Connection, emails: Iterable[str]) -> dict[str, Person]:
    """people_by_email: the people with these (normalised) emails, by email, a few hundred per SELECT."""
    table, wanted = table_of(Person), sorted(set(emails))
    found: dict[str, Person] = {}
    for start in range(0, len(wanted), ROWS_PER_STATEMENT):
        chunk = wanted[start:start + ROWS_PER_STATEMENT]
        for person in _typed_rows(Person, connection.execute(select(table).where(table.c.email.in_(chunk)))):
            found[person.email] = person
    return found


# --- writing --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Moved:
    """What `move_assignment` leaves: the row's new version and its audit chain's head, read under the row's lock."""

    row_version: int
    audit_head: tuple[int, str | None]  # (newest seq, newest hash)


def move_assignment(connection: Connection, assignment_id: int, *, seen_version: int, stage: str,
                    entered_at: datetime) -> Moved:
    """move_assignment: set the stage if the row still has the version read; returns the new version and head.

    Raises StaleDataError when no row matched: another transaction changed the assignment since it was read. The
    head comes back from the UPDATE itself, so it is the newest one: an event another transaction chained since the
    load (a task done, which leaves the version alone) is followed, not overwritten.
    """
    return update_unchanged_assignment(connection, assignment_id, seen_version=seen_version,
                                       values={"stage": stage, "stage_entered_at": entered_at})


def update_unchanged_assignment(connection: Connection, assignment_id: int, *, seen_version: int,
                                values: Mapping[str, Any]) -> Moved:
    """update_unchanged_assignment: write `values` (column -> value) to the assignment if the row still has the
    version read, bumping it; returns the new version and the audit head the UPDATE read under the row's lock.

    Every write that moves an assignment (a stage, a workflow version) goes through this one optimistic lock.
    Raises StaleDataError when another transaction changed the assignment since it was read.
    """
    head = connection.execute(_versioned_update(tuple(values)), {
        "assignment_id": assignment_id, "seen_version": seen_version,
        **{f"new_{column}": value for column, value in values.items()}}).first()
    if head is None:
        raise StaleDataError(f"assignment {assignment_id} changed since version {seen_version} was read")
    return Moved(seen_version + 1, (head.audit_seq, head.audit_head))


@cache
def _versioned_update(columns: tuple[str, ...]) -> Any:
    table = table_of(Assignment)
    return (update(table).where(table.c.id == bindparam("assignment_id"),
                                table.c.row_version == bindparam("seen_version"))
            .values({**{column: bindparam(f"new_{column}") for column in columns},
                     "row_version": table.c.row_version + 1})
            .returning(table.c.audit_seq, table.c.audit_head))


@cache
def _insert_returning(model: Any, *columns: str, ordered: bool = False) -> Insert:
    """A cached INSERT into `model`'s table returning `columns`; `ordered` returns rows in the order given."""
    table = table_of(model)
    return insert(table).returning(*(table.c[c] for c in columns), sort_by_parameter_order=ordered)


def _execute_in_batches(connection: Connection, statement: Any, rows: Sequence[Mapping[str, Any]]) -> list[Any]:
    """Run `statement` (an INSERT, or an UPDATE by bound keys) over `rows`, a few hundred a time, and collect what
    it returns (if anything).

    A single row runs as a plain one-row statement, the cheapest form for the one advance of a CLI call.
    """
    returned: list[Any] = []
    for result in _results_in_batches(connection, statement, rows):
        if result.returns_rows:
            returned += result.all()
    return returned


def _results_in_batches(connection: Connection, statement: Any, rows: Sequence[Mapping[str, Any]]) -> Iterator[Any]:
    batches = [dict(rows[0])] if len(rows) == 1 else [list(rows[i:i + ROWS_PER_STATEMENT])
                                                        for i in range(0, len(rows), ROWS_PER_STATEMENT)]
    for batch in batches:
        yield connection.execute(statement, batch)


def insert_assignments(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """insert_assignments: new assignment rows at row_version 1 (as the ORM starts them); their ids, in order.

    New assignments have no key of their own to match returned ids with, so SQLAlchemy keeps the order: one
    multi-row INSERT per batch on PostgreSQL, one INSERT per row on SQLite (where it cannot order a batch).
    """
    statement = _insert_returning(Assignment, "id", ordered=True)
    complete = [{"plan_version": 1, "row_version": 1, **r} for r in rows]
    return [row.id for row in _execute_in_batches(connection, statement, complete)]


def insert_stakeholders(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """insert_stakeholders: who holds each role of new assignments (assignment_id, role, person_id)."""
    _execute_in_batches(connection, _plain_insert(Stakeholder), rows)


@cache
def _plain_insert(model: Any) -> Insert:
    return insert(table_of(model))


def insert_history(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> list[int]:
    """insert_history: append stage changes (one per assignment) in multi-row INSERTs; their ids, in order.

    Each returned id is matched to its row by assignment id, so no backend has to keep the rows' order.
    """
    assignment_ids = [r["assignment_id"] for r in rows]
    assert len(set(assignment_ids)) == len(assignment_ids), "one stage change per assignment and statement"
    returned = _execute_in_batches(connection, _insert_returning(StageChange, "id", "assignment_id"), rows)
    ids = {row.assignment_id: row.id for row in returned}
    return [ids[a] for a in assignment_ids]


def insert_tasks(connection: Connection, tasks: Sequence[Task]) -> None:
    """insert_tasks: write new tasks in multi-row INSERTs and give each instance the id it got.

    Ids are matched back by (assignment, key), which the schema keeps unique.
    """
    columns = [c.key for c in table_of(Task).c if c.key != "id"]
    statement = _insert_returning(Task, "id", "assignment_id", "key")
    returned = _execute_in_batches(connection, statement, [{c: task.__dict__[c] for c in columns} for task in tasks])
    ids = {(row.assignment_id, row.key): row.id for row in returned}
    for task in tasks:
        task.__dict__["id"] = ids[(task.assignment_id, task.key)]


@cache
def _outbox_insert(dialect: str) -> Insert:
    """`INSERT ... ON CONFLICT (key) DO NOTHING` of new pending notices, as `queries.insert_notifications` writes
    them; the columns every new notice shares are written into the statement, so each row binds only its own."""
    statement = dialect_insert(dialect, table_of(Outbox))
    fresh = {"task_id": null(), "status": literal_column("'pending'"), "attempts": literal_column("0"),
             "last_error": null(), "sent_at": null(), "claimed_by": null(), "claimed_until": null(),
             "delivered_to": literal_column("'[]'")}
    return cast(Insert, statement.values(fresh).on_conflict_do_nothing(index_elements=["key"]))


def insert_stage_notices(connection: Connection, notices: Sequence[NewNotice]) -> None:
    """insert_stage_notices: queue new `stage_changed` notices; a key already present is kept as it is.

    A stage notice is about no task and carries no calendar, so each row binds only its own values.
    """
    complete = [{"key": n.key, "kind": n.kind, "assignment_id": n.assignment_id, "recipient": n.recipient,
                 "role": n.role, "subject": n.subject, "body": n.body, "created_at": n.created_at,
                 "deliver_at": n.deliver_at, "next_attempt_at": n.deliver_at} for n in notices]
    _execute_in_batches(connection, _outbox_insert(connection.dialect.name), complete)


@cache
def _audit_head_statement() -> Any:
    table = table_of(Assignment)
    return (update(table)
            .where(table.c.id == bindparam("head_of"), table.c.audit_seq == bindparam("old_seq"),
                   table.c.audit_head.is_not_distinct_from(bindparam("old_hash")))
            .values(audit_seq=bindparam("new_seq"), audit_head=bindparam("new_hash")))


def append_audit_chains(connection: Connection, events: Sequence[Mapping[str, Any]]) -> bool:
    """append_audit_chains: insert sealed audit events (several per assignment, in chain order) and advance each
    assignment's head to its last one; False if a head had moved from the one its events were sealed on.

    Concurrency contract. Only a use case that changes an assignment's history appends, inside that use case's
    transaction, on a head it holds: one it read with `audit_events.lock_audit_head`, or from the assignment row it
    has just updated (`move_assignment`, under the row's lock) or inserted. Each head advances with one UPDATE
    conditional on still being where the events were sealed (the first event's seq - 1 and its `prev_hash`), so
    appends to one assignment serialise through its row (that lock, and the unique (assignment_id, seq)); appends to
    different assignments never wait for each other. False means another writer advanced a head unseen; the caller
    must roll back. The row's version column is left alone, so an append does not make a concurrent stage change
    fail.
    """
    if not events:
        return True
    oldest: dict[int, Mapping[str, Any]] = {}
    newest: dict[int, Mapping[str, Any]] = {}
    for event in events:
        oldest.setdefault(event["assignment_id"], event)
        newest[event["assignment_id"]] = event
    _execute_in_batches(connection, _plain_insert(AuditEvent), events)
    heads = [{"head_of": a, "old_seq": oldest[a]["seq"] - 1, "old_hash": oldest[a]["prev_hash"],
              "new_seq": e["seq"], "new_hash": e["hash"]} for a, e in newest.items()]
    advanced: int = sum(result.rowcount for result in _results_in_batches(connection, _audit_head_statement(), heads))
    return advanced == len(heads)


@cache
def _wake_statement(dialect: str) -> Insert:
    """The cadence upsert: an existing earlier check is kept, a later or empty one becomes the new instant."""
    table = table_of(CadenceState)
    statement = dialect_insert(dialect, table)
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
        _execute_in_batches(connection, _wake_statement(connection.dialect.name), rows)
