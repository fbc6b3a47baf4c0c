"""Named statements of a workflow migration: moving assignments to another version, cancelling tasks it drops.

The optimistic lock is the one `engine.store.moves` describes: `migrate_assignment` checks and raises
`assignment.row_version` in the same UPDATE that changes the version, so a migration and an advance of the same
assignment never both commit on what they read.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import cache
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, update
from sqlalchemy.orm.exc import StaleDataError

from engine.store.models import Assignment, Task
from engine.store.moves import Moved


def _table(model: Any) -> Table:
    return cast(Table, model.__table__)


@cache
def _migrate_statement() -> Any:
    table = _table(Assignment)
    return (update(table).where(table.c.id == bindparam("assignment_id"),
                                table.c.row_version == bindparam("seen_version"))
            .values(workflow_id=bindparam("to_workflow_id"), stage=bindparam("to_stage"),
                    row_version=table.c.row_version + 1)
            .returning(table.c.audit_seq, table.c.audit_head))


def migrate_assignment(connection: Connection, assignment_id: int, *, seen_version: int, workflow_id: int,
                       stage: str) -> Moved:
    """migrate_assignment: put the assignment on another workflow version (and stage) if it still has the version
    read; returns its new row version and its audit chain's head, read under the row's lock.

    Raises StaleDataError when another transaction changed the assignment since it was read.
    """
    head = connection.execute(_migrate_statement(), {
        "assignment_id": assignment_id, "seen_version": seen_version, "to_workflow_id": workflow_id,
        "to_stage": stage}).first()
    if head is None:
        raise StaleDataError(f"assignment {assignment_id} changed since version {seen_version} was read")
    return Moved(seen_version + 1, (head.audit_seq, head.audit_head))


def cancel_open_tasks(connection: Connection, task_ids: Collection[int]) -> int:
    """cancel_open_tasks: cancel these tasks where still open (a task done meanwhile stays done); how many."""
    if not task_ids:
        return 0
    table = _table(Task)
    statement = (update(table).where(table.c.id.in_(list(task_ids)), table.c.status == "open")
                 .values(status="cancelled", next_reminder_at=None))
    return int(connection.execute(statement).rowcount or 0)
