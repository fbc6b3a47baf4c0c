"""The statements of a person's data: reading everything held about them, and rewriting it when they are erased."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Engine, Row, String, Table, cast, delete, func, or_, select, update
from sqlmodel import Session, SQLModel

from engine.domain.notices import NoticeStatus


def _table(name: str) -> Table:
    return SQLModel.metadata.tables[name]


def rows_where(session: Session, table_name: str, *conditions: Any) -> list[dict[str, Any]]:
    """rows_where: every column of the rows of `table_name` matching all `conditions` (built with `column`), by id.

    Each row is a column -> value mapping, as a person's export holds it: the table is named by the caller, so no
    one row type fits, and the export document is built from these mappings.
    """
    table = _table(table_name)
    statement = select(table).where(*conditions)
    if "id" in table.c:
        statement = statement.order_by(table.c.id)
    return [dict(row._mapping) for row in session.execute(statement)]


def column(table_name: str, name: str) -> Any:
    """A column of a table, for `rows_where` conditions."""
    return _table(table_name).c[name]


def held_by(person_id: int) -> Any:
    """held_by: the condition on assignments in which the person is the assignee or a stakeholder."""
    assignment, stakeholder = _table("assignment"), _table("stakeholder")
    holds = select(stakeholder.c.assignment_id).where(stakeholder.c.person_id == person_id)
    return or_(assignment.c.assignee_id == person_id, assignment.c.id.in_(holds))


def events_mentioning(session: Session, email: str, texts: Sequence[str]) -> list[Row[Any]]:
    """events_mentioning: the audit events whose actor is `email` or whose details contain one of `texts`
    (compared in lower case; the caller checks each candidate exactly), by assignment and seq."""
    table = _table("audit_event")
    statement = (select(table).where(or_(table.c.actor == email,
                                         *(func.lower(table.c.details).contains(t.lower(), autoescape=True)
                                           for t in texts)))
                 .order_by(table.c.assignment_id, table.c.seq))
    return list(session.execute(statement))


def rewrite_event(session: Session, event_id: int, *, actor: str, details: str, erased: str | None) -> None:
    """rewrite_event: an event's strings after an erasure; its hash, seq and links stay as they are."""
    table = _table("audit_event")
    session.execute(update(table).where(table.c.id == event_id)
                    .values(actor=actor, details=details, secret=None, erased=erased))


def text_rows_containing(session: Session, table_name: str, column_name: str,
                         texts: Sequence[str]) -> list[tuple[int, Any]]:
    """text_rows_containing: (id, value) of the rows whose column contains one of `texts`, compared in lower case
    (a JSON column as its text); the caller checks each candidate exactly."""
    table = _table(table_name)
    value = table.c[column_name]
    as_text = value if isinstance(value.type, String) else cast(value, String)
    statement = select(table.c.id, value).where(or_(*(func.lower(as_text).contains(t.lower(), autoescape=True)
                                                      for t in texts)))
    return [(row[0], row[1]) for row in session.execute(statement)]


def set_value(session: Session, table_name: str, row_id: int, column_name: str, value: Any) -> None:
    table = _table(table_name)
    session.execute(update(table).where(table.c.id == row_id).values({column_name: value}))


def replace_equal(session: Session, table_name: str, column_name: str, old: Any, new: Any) -> None:
    """replace_equal: set the column to `new` in every row where it equals `old`."""
    table = _table(table_name)
    session.execute(update(table).where(table.c[column_name] == old).values({column_name: new}))


def blank_where(session: Session, table_name: str, columns: Iterable[str], author_column: str, author: Any) -> None:
    """blank_where: empty the text columns of every row whose `author_column` is `author`."""
    table = _table(table_name)
    values = dict.fromkeys(columns, "")
    session.execute(update(table).where(table.c[author_column] == author).values(values))


def drop_queued_notices(session: Session, recipient: str) -> int:
    """drop_queued_notices: delete every notice to `recipient` not sent; returns how many."""
    table = _table("outbox")
    result = session.execute(delete(table).where(table.c.recipient == recipient,
                                                 table.c.status != NoticeStatus.SENT))
    return int(getattr(result, "rowcount", 0) or 0)


def blank_sent_notices(session: Session, recipient: str, pseudonym: str) -> int:
    """blank_sent_notices: keep each notice sent to `recipient` as a fact (kind, when) without its text or address."""
    table = _table("outbox")
    result = session.execute(update(table).where(table.c.recipient == recipient)
                             .values(recipient=pseudonym, subject="", body="", calendar=None, last_error=None))
    return int(getattr(result, "rowcount", 0) or 0)


def drop_link_uses(session: Session, person_id: int) -> None:
    """drop_link_uses: forget which of the person's links were used (their links no longer name anyone)."""
    table = _table("link_use")
    session.execute(delete(table).where(table.c.person_id == person_id))


def compact_sqlite(db: Engine) -> None:
    """compact_sqlite: rewrite an SQLite file without its free pages and empty its write-ahead log, so erased values
    are gone from the bytes on disk, not only from the rows. Runs outside any transaction."""
    raw = db.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("VACUUM")
        cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        cursor.close()
    finally:
        raw.close()
