"""The hot statements, named and kept together: idempotent outbox inserts and the reads the daemon repeats."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Insert, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from engine.store.models import Outbox


def _insert_ignoring_duplicates(session: Session, table: Any, conflict_column: str) -> Insert:
    """`INSERT ... ON CONFLICT (column) DO NOTHING` in the dialect of the session's database."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=[conflict_column])
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing(index_elements=[conflict_column])
    return insert(table)


def insert_notifications(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """add_notifications: insert outbox rows whose key is new; a key already present is silently kept as it is.

    This is what makes planning idempotent: two daemons, or one daemon after a restart, planning the same
    reminder insert it once. Returns how many rows were new.
    """
    if not rows:
        return 0
    statement = _insert_ignoring_duplicates(session, Outbox.__table__, "key")  # type: ignore[attr-defined]
    result = session.execute(statement, [_with_defaults(r) for r in rows])
    return int(getattr(result, "rowcount", 0) or 0)


def _with_defaults(row: dict[str, Any]) -> dict[str, Any]:
    complete = {"task_id": None, "status": "pending", "attempts": 0, "delivered_to": [], **row}
    complete.setdefault("next_attempt_at", complete["deliver_at"])
    return complete
