"""Named statements of a workflow migration: moving assignments to another version, cancelling tasks it drops.

The optimistic lock is the one `engine.store.moves` describes: `migrate_assignment` checks and raises
`assignment.row_version` in the same UPDATE that changes the version, so a migration and an advance of the same
assignment never both commit on what they read.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import datetime

from sqlalchemy import Connection, and_, delete, insert, or_, select, update

from engine.store.models import CadenceStart, Task, table_of
from engine.store.moves import Moved, update_unchanged_assignment


def migrate_assignment(connection: Connection, assignment_id: int, *, seen_version: int, workflow_id: int,
                       stage: str) -> Moved:
    """migrate_assignment: put the assignment on another workflow version (and stage) if it still has the version
    read; returns its new row version and its audit chain's head, read under the row's lock.

    Raises StaleDataError when another transaction changed the assignment since it was read.
    """
    return update_unchanged_assignment(connection, assignment_id, seen_version=seen_version,
                                       values={"workflow_id": workflow_id, "stage": stage})


def cancel_open_tasks(connection: Connection, task_ids: Collection[int]) -> int:
    """cancel_open_tasks: cancel these tasks where still open (a task done meanwhile stays done); how many."""
    if not task_ids:
        return 0
    table = table_of(Task)
    statement = (update(table).where(table.c.id.in_(list(task_ids)), table.c.status == "open")
                 .values(status="cancelled", next_reminder_at=None))
    return int(connection.execute(statement).rowcount or 0)


def record_cadence_starts(connection: Connection, starts: Sequence[tuple[int, str]], at: datetime) -> None:
    """record_cadence_starts: these (assignment id, cadence kind) pairs start at `at`, replacing an earlier start."""
    if not starts:
        return
    table = table_of(CadenceStart)
    pairs = list(dict.fromkeys(starts))
    for first in range(0, len(pairs), 500):
        chunk = pairs[first:first + 500]
        connection.execute(delete(table).where(or_(*(and_(table.c.assignment_id == a, table.c.kind == k)
                                                     for a, k in chunk))))
    connection.execute(insert(table), [{"assignment_id": a, "kind": k, "started_at": at} for a, k in pairs])


def cadence_starts_of(connection: Connection, assignment_ids: Iterable[int]) -> dict[tuple[int, str], datetime]:
    """cadence_starts_of: (assignment id, kind) -> when a migration started that cadence, for these assignments."""
    table, ids = table_of(CadenceStart), sorted(set(assignment_ids))
    found: dict[tuple[int, str], datetime] = {}
    for first in range(0, len(ids), 500):
        statement = select(table).where(table.c.assignment_id.in_(ids[first:first + 500]))
        found |= {(row.assignment_id, row.kind): row.started_at for row in connection.execute(statement)}
    return found
