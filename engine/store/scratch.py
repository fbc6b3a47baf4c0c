"""Scratch databases: in-memory copies of assignments with the real schema, for replays that write nothing real."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Table, func, insert, select, text, update
from sqlmodel import Session, SQLModel, col

from engine.domain.tasks import TaskStatus
from engine.store.db import SCHEMA_REVISION, connection_transaction, open_db
from engine.store.models import StageChange, Task

# The tables that describe an assignment, parents first, and how each row is found from the assignment ids.
_BY_ASSIGNMENT = ("assignment", "stakeholder", "task", "goal", "signoff", "contact", "transition", "cadencestate",
                  "cadence_start", "outbox")


def create_scratch_database() -> Engine:
    """An empty in-memory SQLite database with the newest schema, private to this process and thread.

    The tables come from the same SQLModel metadata the migrations are checked against, and the schema is stamped
    with SCHEMA_REVISION so the use cases accept it. SQLite keeps one connection per thread for `sqlite://`,
    so every session opened on the db sees the same database.
    """
    db = open_db("sqlite://")
    SQLModel.metadata.create_all(db)
    with connection_transaction(db) as connection:
        connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
        connection.execute(text("INSERT INTO alembic_version (version_num) VALUES (:revision)"),
                           {"revision": SCHEMA_REVISION})
    return db


def _table(name: str) -> Table:
    return SQLModel.metadata.tables[name]


def copy_assignments(source: Session, target: Session, assignment_ids: Collection[int]) -> None:
    """copy_assignments: copy assignments with their workflow versions, people and every row that hangs off them.

    The people are everyone those rows name, not only the current stakeholders, so no foreign key is left dangling.

    Rows keep their ids, so keys already in the outbox stay the same in the copy. Only reads `source`.
    """
    ids = list(assignment_ids)
    if not ids:
        return
    rows: dict[str, Sequence[Any]] = {}
    for name in _BY_ASSIGNMENT:
        table = _table(name)
        rows[name] = source.execute(select(table).where(table.c.assignment_id.in_(ids) if name != "assignment"
                                                        else table.c.id.in_(ids))).mappings().all()
    workflow_ids = {r["workflow_id"] for r in rows["assignment"]}
    person_ids = _people_named(rows)
    workflow, person = _table("workflow"), _table("person")
    rows["workflow"] = source.execute(select(workflow).where(workflow.c.id.in_(workflow_ids))).mappings().all()
    rows["person"] = source.execute(select(person).where(person.c.id.in_(person_ids))).mappings().all()
    for name in ("workflow", "person", *_BY_ASSIGNMENT):
        if rows[name]:
            target.execute(insert(_table(name)), [dict(r) for r in rows[name]])


def _people_named(rows: dict[str, Sequence[Any]]) -> set[int]:
    """Every person a copied row points at, past holders of a role included: a task done by the coach before a new
    one took over keeps its old owner, and so do sign-offs and logged contacts."""
    named: set[int] = set()
    for name in _BY_ASSIGNMENT:
        for column in _table(name).columns:
            if any(key.column.table.name == "person" for key in column.foreign_keys):
                named |= {r[column.name] for r in rows[name] if r[column.name] is not None}
    return named


def copy_latest_workflow(source: Session, target: Session, name: str) -> bool:
    """copy_latest_workflow: copy the newest installed version of workflow `name`; False when there is none."""
    workflow = _table("workflow")
    row = source.execute(select(workflow).where(workflow.c.name == name).order_by(workflow.c.version.desc())
                         .limit(1)).mappings().first()
    if row is not None:
        target.execute(insert(workflow), [dict(row)])
    return row is not None


def copy_workflow_versions(source: Session, target: Session, name: str) -> None:
    """copy_workflow_versions: copy every installed version of workflow `name` the copy does not hold yet."""
    workflow = _table("workflow")
    held = set(target.execute(select(workflow.c.id).where(workflow.c.name == name)).scalars())
    rows = [dict(r) for r in source.execute(select(workflow).where(workflow.c.name == name)).mappings()
            if r["id"] not in held]
    if rows:
        target.execute(insert(workflow), rows)


def copy_people(source: Session, target: Session, emails: Iterable[str]) -> set[str]:
    """copy_people: copy the people with these emails (compared in lower case); returns the emails found."""
    person = _table("person")
    wanted = {e.strip().lower() for e in emails if e.strip()}
    rows = source.execute(select(person).where(person.c.email.in_(wanted))).mappings().all() if wanted else []
    if rows:
        target.execute(insert(person), [dict(r) for r in rows])
    return {str(r["email"]) for r in rows}


def row_ids(session: Session) -> tuple[set[int], set[int], set[int]]:
    """row_ids: the ids of every task, of the tasks done, and of every transition record."""
    tasks = {(int(i), s) for i, s in session.execute(select(col(Task.id), col(Task.status)))}
    transitions = {int(i) for i in session.execute(select(col(StageChange.id))).scalars()}
    return {i for i, _ in tasks}, {i for i, s in tasks if s == TaskStatus.DONE}, transitions


def next_planning_instant(session: Session) -> datetime | None:
    """next_planning_instant: the earliest instant planning, dispatch or a digest has something to do (None: never
    again).

    One statement of three subqueries: a replay asks after every sweep."""
    task, cadence, outbox = _table("task"), _table("cadencestate"), _table("outbox")
    candidates = session.execute(select(
        select(func.min(task.c.next_reminder_at)).where(task.c.status == TaskStatus.OPEN).scalar_subquery(),
        select(func.min(cadence.c.next_check_at)).scalar_subquery(),
        select(func.min(outbox.c.next_attempt_at)).where(outbox.c.status.in_(("pending", "failed", "held")))
        .scalar_subquery())).one()
    found = [_utc(c) for c in candidates if c is not None]
    return min(found, default=None)


def _utc(instant: datetime | str) -> datetime:
    """An instant read through min(), which SQLite hands back as text without its zone (stored in UTC)."""
    value = datetime.fromisoformat(instant) if isinstance(instant, str) else instant
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class TakenNotice:
    """What a replay keeps of a notice it took: the columns a forecast lists (a forecast's notice adds when and in
    which zone)."""

    recipient: str
    role: str
    kind: str
    key: str
    assignment_id: int
    task_id: int | None
    subject: str


def take_deliverable(session: Session, now: datetime) -> list[TakenNotice]:
    """take_deliverable: the queued rows a dispatcher would send at `now`, marked sent at their own due instant.

    For replays on a scratch database only: nothing is handed to a notifier, the rows are just recorded as sent.
    Plain rows of the columns a forecast lists, not tracked objects: a replay takes tens of thousands.
    """
    outbox = _table("outbox")
    statement = (select(outbox.c.id, *(outbox.c[f.name] for f in fields(TakenNotice)))
                 .where(outbox.c.status.in_(("pending", "failed")), outbox.c.next_attempt_at <= now)
                 .order_by(outbox.c.next_attempt_at, outbox.c.id))
    rows = session.execute(statement).all()
    if rows:
        session.execute(update(outbox).where(outbox.c.id.in_([r.id for r in rows]))
                        .values(status="sent", sent_at=outbox.c.next_attempt_at, attempts=1))
    return [TakenNotice(*row[1:]) for row in rows]
