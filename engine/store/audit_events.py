"""The audit trail's reads: lock a chain's head to append on (`moves.append_audit_chains`), read chains back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Row, or_
from sqlalchemy import select as select_columns
from sqlmodel import Session, SQLModel, col, select

from engine.domain.tasks import TaskStatus
from engine.store.models import Assignment, AuditEvent, Person

AUDIT_EVENT_COLUMNS = ("id", "assignment_id", "seq", "at", "actor", "action", "details", "prev_hash", "hash", "secret",
                       "erased")


def lock_audit_head(session: Session, assignment_id: int) -> tuple[int, str | None] | None:
    """lock_audit_head: the newest seq and hash of an assignment's chain, locked until the transaction ends.

    None when the assignment does not exist. On PostgreSQL the assignment row is read FOR UPDATE, so a second
    transaction appending to the same assignment waits here until the first commits and then reads its new head.
    SQLite ignores FOR UPDATE; there every write transaction begins IMMEDIATE, so writers already run one at a time.
    """
    statement = (select(Assignment.audit_seq, Assignment.audit_head).where(col(Assignment.id) == assignment_id)
                 .with_for_update())
    row = session.exec(statement).first()
    return None if row is None else (row[0], row[1])


def read_one_snapshot(session: Session) -> None:
    """read_one_snapshot: make every later read of this transaction see the same committed state.

    Must run before the transaction's first statement. Checking a chain reads the heads and the events in two
    statements; on PostgreSQL (READ COMMITTED by default) an append committed between them would look like a
    broken chain, so the reads run REPEATABLE READ. SQLite transactions already read one snapshot.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def audit_heads(session: Session, assignment_id: int | None = None) -> dict[int, tuple[int, str | None]]:
    """audit_heads: assignment id -> (newest seq, newest hash) of every assignment's chain, or of one."""
    statement = select(Assignment.id, Assignment.audit_seq, Assignment.audit_head).order_by(col(Assignment.id))
    if assignment_id is not None:
        statement = statement.where(col(Assignment.id) == assignment_id)
    return {int(a_id): (seq, head) for a_id, seq, head in session.exec(statement) if a_id is not None}


def audit_hashes(session: Session, assignment_id: int | None = None) -> dict[tuple[int, int], tuple[int, str]]:
    """audit_hashes: (assignment id, seq) -> (event id, hash) of every event (or one assignment's)."""
    table = AuditEvent.metadata.tables[AuditEvent.__tablename__]
    statement = select_columns(table.c.assignment_id, table.c.seq, table.c.id, table.c.hash)
    if assignment_id is not None:
        statement = statement.where(table.c.assignment_id == assignment_id)
    return {(a, seq): (event_id, digest) for a, seq, event_id, digest in session.execute(statement)}


def audit_event_rows(session: Session, assignment_id: int | None = None) -> Iterator[Row[Any]]:
    """audit_event_rows: every audit event (or one assignment's), by assignment then seq, streamed in batches.

    Served by the unique (assignment_id, seq) index.
    """
    table = AuditEvent.metadata.tables[AuditEvent.__tablename__]
    columns = (table.c[name] for name in AUDIT_EVENT_COLUMNS)
    statement = select_columns(*columns).order_by(table.c.assignment_id, table.c.seq)
    if assignment_id is not None:
        statement = statement.where(table.c.assignment_id == assignment_id)
    yield from session.execute(statement.execution_options(yield_per=1000))


# --- the rows `audit verify` checks against the events -------------------------------------------------------------

# table -> the columns the events vouch for (plus id and assignment_id), ordered by assignment then id
CHECKED_ROWS: dict[str, tuple[str, ...]] = {
    "transition": ("from_stage", "to_stage", "at", "actor", "reason"),
    "task": ("key", "status", "completed_at", "completed_by", "note"),
    "signoff": ("role", "person_id", "plan_version", "signed_at", "recorded_by", "on_behalf"),
    "contact": ("kind", "with_person_id", "on", "notes", "logged_by", "logged_at"),
    "checkin": ("person_id", "role", "at", "note", "feedback"),
    "pulse": ("person_id", "at", "expectancy", "instrumentality", "valence", "note", "alert_reason", "resolved_at"),
    "competency_baseline": ("name", "level", "recorded_at", "recorded_by"),
    "outcome": ("months", "retained", "left_on", "left_reason", "considered_for_promotion", "promoted_to", "impact",
                "recorded_at", "recorded_by"),
}


def recorded_rows(session: Session, table_name: str,
                  assignment_id: int | None = None) -> dict[int, list[dict[str, Any]]]:
    """recorded_rows: assignment id -> the rows of `table_name` (one of CHECKED_ROWS) the audit events vouch for.

    Tasks are read only once completed (a done task, or one with a `completed_by`). A row is a column -> value
    mapping: its columns depend on the table named, and it is compared field by field with an event's details.
    """
    table = SQLModel.metadata.tables[table_name]
    statement = select_columns(table.c.id, table.c.assignment_id,
                               *(table.c[c] for c in CHECKED_ROWS[table_name])).order_by(table.c.assignment_id,
                                                                                          table.c.id)
    if assignment_id is not None:
        statement = statement.where(table.c.assignment_id == assignment_id)
    if table_name == "task":
        statement = statement.where(or_(table.c.status == TaskStatus.DONE, table.c.completed_by.is_not(None)))
    grouped: dict[int, list[dict[str, Any]]] = {}
    for row in session.execute(statement):
        grouped.setdefault(row.assignment_id, []).append(dict(row._mapping))
    return grouped


def checkin_progress(session: Session, assignment_id: int | None = None) -> dict[int, dict[str, int]]:
    """checkin_progress: check-in id -> {goal id (as text): percent}."""
    progress = SQLModel.metadata.tables["goal_progress"]
    checkin = SQLModel.metadata.tables["checkin"]
    statement = select_columns(progress.c.checkin_id, progress.c.goal_id, progress.c.percent)
    if assignment_id is not None:
        statement = statement.join(checkin, checkin.c.id == progress.c.checkin_id).where(
            checkin.c.assignment_id == assignment_id)
    found: dict[int, dict[str, int]] = {}
    for checkin_id, goal_id, percent in session.execute(statement):
        found.setdefault(checkin_id, {})[str(goal_id)] = percent
    return found


def outcome_competencies(session: Session,
                         assignment_id: int | None = None) -> dict[int, dict[str, list[int | None]]]:
    """outcome_competencies: outcome id -> {competency: [before, after]}."""
    competency = SQLModel.metadata.tables["outcome_competency"]
    outcome = SQLModel.metadata.tables["outcome"]
    statement = select_columns(competency.c.outcome_id, competency.c.name, competency.c.before, competency.c.after)
    if assignment_id is not None:
        statement = statement.join(outcome, outcome.c.id == competency.c.outcome_id).where(
            outcome.c.assignment_id == assignment_id)
    found: dict[int, dict[str, list[int | None]]] = {}
    for outcome_id, name, before, after in session.execute(statement):
        found.setdefault(outcome_id, {})[name] = [before, after]
    return found


def person_emails(session: Session) -> dict[int, str]:
    """person_emails: person id -> email, of everyone."""
    return {int(p_id): email for p_id, email in session.exec(select(Person.id, Person.email)) if p_id is not None}
