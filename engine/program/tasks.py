"""Listing and completing tasks: completing one cancels its reminders in the same transaction."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session

from engine.domain import inputs, notices
from engine.domain.errors import NotFound, SojournError
from engine.domain.notices import TASK_KINDS
from engine.domain.tasks import TaskStatus
from engine.program import audit
from engine.program.logging import get_logger
from engine.program.people import require_person
from engine.program.records import TaskView, load_record, task_view
from engine.program.transactions import use_case_transaction as _transaction
from engine.store import lookups
from engine.store.models import Person, Task, pk
from engine.store.queries import cancel_queued_notifications, complete_open_task

log = get_logger(__name__)


def list_tasks(db: Engine, *, now: datetime, assignment_id: int | None = None, owner: str | None = None,
               status: str | None = None, overdue: bool = False) -> tuple[TaskView, ...]:
    with _transaction(db) as session:
        if assignment_id is not None:
            load_record(session, assignment_id)
        owner_id = None if owner is None else pk(require_person(session, inputs.email(owner, "--owner")))
        tasks = lookups.tasks_matching(session, assignment_id=assignment_id, owner_id=owner_id, status=status,
                                       overdue_at=now if overdue else None)
        owners = lookups.people_by_id(session, (t.owner_id for t in tasks))
        return tuple(task_view(t, owners.get(t.owner_id)) for t in tasks)


def complete_task(db: Engine, task_id: int, *, note: str | None, actor: str, now: datetime) -> TaskView:
    note = inputs.note(note, "--note")
    with _transaction(db) as session:
        task = session.get(Task, task_id)
        if (refusal := _refusal_to_complete(task, task_id)) is not None:
            raise refusal
        assert task is not None
        _complete_open_task(session, task, note=note, actor=actor, now=now)
        session.refresh(task)
        view = task_view(task, session.get(Person, task.owner_id))
    log.info("task done", task=task_id, key=view.key, actor=actor)
    return view


def complete_tasks(db: Engine, task_ids: Iterable[int], *, note: str | None, actor: str, now: datetime) -> list[int]:
    """Complete several tasks in one transaction, in the order given, each as `complete_task` does; returns the ids
    done. A task `complete_task` would refuse is skipped, not refused: a replay completes what is still open."""
    done = []
    note = inputs.note(note, "--note")
    with _transaction(db) as session:
        for task_id in task_ids:
            task = session.get(Task, task_id)
            if task is None or _refusal_to_complete(task, task_id) is not None:  # cancelled meanwhile: left as is
                continue
            _complete_open_task(session, task, note=note, actor=actor, now=now)
            done.append((task_id, task.key))
    for task_id, key in done:
        log.info("task done", task=task_id, key=key, actor=actor)
    return [task_id for task_id, _ in done]


def _refusal_to_complete(task: Task | None, task_id: int) -> SojournError | None:
    if task is None:
        return NotFound(f"no task {task_id}", details=["`sojourn task list` shows them"])
    if task.key.startswith(notices.PLAN_ACK_TASK):
        return SojournError(f"task {task_id} asks for the acknowledgement of a plan change",
                            details=[f"the {task.owner_role} acknowledges with: "
                                     f"{notices.plan_ack_command(task.assignment_id, 'EMAIL')}"])
    if task.status != TaskStatus.OPEN:
        return _not_open(task)
    return None


def _complete_open_task(session: Session, task: Task, *, note: str | None, actor: str, now: datetime) -> None:
    """Mark a task read open done in the caller's transaction: the audit event, the row, its queued reminders."""
    task_id = pk(task)
    audit.append_event(session, task.assignment_id, audit.TASK_COMPLETED,
                       {"task": task_id, "key": task.key, "note": note}, actor=actor, at=now)
    if not complete_open_task(session, task_id, actor=actor, note=note, now=now):
        session.refresh(task)  # another transaction cancelled or completed it after it was read
        raise _not_open(task)
    cancel_queued_notifications(session, assignment_id=task.assignment_id, kinds=TASK_KINDS, task_id=task_id,
                                reason="task done before delivery")


def _not_open(task: Task) -> SojournError:
    return SojournError(f"task {task.id} ({task.key}) is already {task.status}")
