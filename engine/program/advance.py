"""Moving an assignment between stages: its guards, and what entering a stage creates and tells."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Engine

from engine.domain import inputs, notices
from engine.domain.definition import Transition
from engine.domain.errors import BadInput, GuardsUnmet
from engine.domain.lifecycle import Lifecycle
from engine.domain.notices import CADENCE_KINDS, TASK_KINDS, NewNotice
from engine.domain.schedule import due_date, end_of_day, local_date, local_instant
from engine.domain.tasks import TaskStatus
from engine.program import audit
from engine.program.logging import get_logger
from engine.program.records import AssignmentRecord, AssignmentView, assignment_view, load_record_to_move
from engine.program.transactions import use_case_connection as _connection
from engine.store.db import session_in
from engine.store.models import StageChange, Task, pk
from engine.store.moves import (
    insert_history,
    insert_stage_notices,
    insert_tasks,
    move_assignment,
    tasks_of,
    typed_row,
    wake_cadence_checks,
)
from engine.store.program_queries import set_early_return_reason
from engine.store.queries import cancel_queued_notifications, close_open_tasks

log = get_logger(__name__)


def advance(db: Engine, assignment_id: int, *, to: str | None, reason: str | None, actor: str,
            now: datetime, early_return: str | None = None) -> AssignmentView:
    """Move an assignment to `to` (default: the next stage) if every guard passes; otherwise say who must act.

    Reads and writes with the named Core statements of `engine.store.moves`; the stage update checks the version
    read, so a concurrent change loses cleanly. `early_return` is the category of a cancellation
    (inputs.EARLY_RETURN_REASONS), kept for the program summary.
    """
    category = None if early_return is None else inputs.early_return_reason(early_return)
    reason = inputs.reason(reason)
    with _connection(db) as connection:
        record = load_record_to_move(connection, assignment_id)
        lifecycle = record.lifecycle
        transition = lifecycle.transition(record.assignment.stage, to)
        if transition.requires_reason and not (reason and reason.strip()):
            raise BadInput(f"moving to {transition.dest} needs a reason: add --reason TEXT")
        if category is not None and not transition.requires_reason:
            raise BadInput(f"--early-return is the category of a cancellation, not of moving to {transition.dest}")
        _fire(lifecycle, record, transition, now)
        source = record.assignment.stage
        enter_stage(connection, [StageEntry(record, source, transition.dest, reason)], actor=actor, now=now)
        if category is not None:
            _note_early_return(connection, record, category, actor=actor, now=now)
    log.info("assignment advanced", assignment=assignment_id, source=source, dest=transition.dest, actor=actor)
    return assignment_view(record, now)


def _note_early_return(connection: Connection, record: AssignmentRecord, category: str, *, actor: str,
                       now: datetime) -> None:
    record.assignment.early_return_reason = set_early_return_reason(connection, pk(record.assignment), category)
    with session_in(connection) as session:
        audit.append_event(session, pk(record.assignment), audit.EARLY_RETURN_RECORDED, {"category": category},
                           actor=actor, at=now)


def _fire(lifecycle: Lifecycle, record: AssignmentRecord, transition: Transition, now: datetime) -> None:
    """Refuse the move with every unmet guard of the transition and who must act."""
    unmet = lifecycle.move(record.assignment.stage, transition, record.guard_context(now))
    if unmet:
        raise GuardsUnmet(
            f"assignment {record.assignment.id} cannot move from {record.assignment.stage} to {transition.dest} yet",
            details=[f"{u.guard}: {u.reason}; must act: {record.who_must_act(u.who)}" for u in unmet])


@dataclass(frozen=True)
class StageEntry:
    """One assignment entering a stage, from `source` (None: it has just been created)."""

    record: AssignmentRecord
    source: str | None
    dest: str
    reason: str | None
    opening: tuple[tuple[str, Mapping[str, Any]], ...] = ()  # audit events chained before the stage change's own


def enter_stage(connection: Connection, entries: Sequence[StageEntry], *, actor: str, now: datetime) -> None:
    """Set each stage, append history, create the stages' tasks and tell the stage's audience, in one transaction.

    A move checks the assignment's version (`move_assignment`); history, tasks, notices, cadence checks and audit
    events of all entries go in one multi-row INSERT (or executemany) each.
    """
    events: list[audit.ChainEvent] = []
    for entry in entries:
        assignment, definition = entry.record.assignment, entry.record.definition
        head: audit.Head = (0, None)  # a new assignment's chain starts here
        if entry.source is not None:
            moved = move_assignment(connection, pk(assignment), seen_version=assignment.row_version, stage=entry.dest,
                                    entered_at=now)
            assignment.row_version, head = moved.row_version, moved.audit_head
        assignment.stage, assignment.stage_entered_at = entry.dest, now
        events += audit.chained(pk(assignment), head, [*entry.opening, (audit.STAGE_CHANGED, {
            "from": entry.source, "to": entry.dest, "reason": entry.reason})], actor=actor, at=now)
        assignment.audit_seq, assignment.audit_head = events[-1].seq, events[-1].hash
        if definition.is_terminal(entry.dest) and not definition.stage(entry.dest).tasks:
            _close_open_tasks(connection, entry.record)
    history_ids = insert_history(connection, [
        {"assignment_id": pk(e.record.assignment), "from_stage": e.source, "to_stage": e.dest, "at": now,
         "actor": actor, "reason": e.reason, "workflow_version": e.record.workflow.version} for e in entries])
    new_tasks = [[_task_from_template(e.record, template, e.dest, now)
                  for template in e.record.definition.stage(e.dest).tasks] for e in entries]
    insert_tasks(connection, [task for tasks in new_tasks for task in tasks])
    queued: list[NewNotice] = []
    for entry, history_id, tasks in zip(entries, history_ids, new_tasks, strict=True):
        entry.record.tasks += tasks
        queued += _stage_change_notices(entry.record, entry, history_id, actor, tasks, now)
    insert_stage_notices(connection, queued)
    # the daemon decides whether a cadence starts, continues or stops with the new stage
    wake_cadence_checks(connection, [(pk(e.record.assignment), cadence.kind) for e in entries
                                     for cadence in e.record.definition.cadences], now)
    audit.append_sealed(connection, events)


def _close_open_tasks(connection: Connection, record: AssignmentRecord) -> None:
    """Cancel the assignment's open tasks with one conditional UPDATE, so a task done meanwhile stays done."""
    assignment_id = pk(record.assignment)
    with session_in(connection) as session:
        close_open_tasks(session, assignment_id)
        # reminders and cadence notices still queued would now mislead; stage_changed and plan_changed still go out
        cancel_queued_notifications(session, assignment_id=assignment_id, kinds=(*TASK_KINDS, *CADENCE_KINDS),
                                    reason=f"assignment {record.assignment.stage} before delivery")
    record.tasks = tasks_of(connection, [assignment_id])  # so the returned view shows what was written


def _task_from_template(record: AssignmentRecord, template: Any, stage: str, now: datetime) -> Task:
    """A new open task of `stage`, due as the template says in its owner's time zone (its id comes on insert)."""
    owner = record.person_for(template.owner)
    assert owner is not None, "every workflow role is filled when the assignment is created"
    a = record.assignment
    due_on = due_date(template.due, stage_entered_on=local_date(now, owner.tz), start=a.start, end=a.end)
    reminders = record.definition.reminders
    first_reminder = local_instant(date.fromordinal(due_on.toordinal() - reminders.due_soon_days),
                                   reminders.local_hour, owner.tz)
    return typed_row(Task, {"id": None, "assignment_id": pk(a), "key": template.key, "title": template.title,
                            "description": template.description, "stage": stage, "owner_role": template.owner,
                            "owner_id": pk(owner), "due_on": due_on, "due_at": end_of_day(due_on, owner.tz),
                            "status": TaskStatus.OPEN, "completed_at": None, "completed_by": None, "note": None,
                            "next_reminder_at": first_reminder, "reminder_round": 0})


def _stage_change_notices(record: AssignmentRecord, entry: StageEntry, history_id: int, actor: str,
                          new_tasks: list[Task], now: datetime) -> list[NewNotice]:
    change = typed_row(StageChange, {"id": history_id, "assignment_id": pk(record.assignment),
                                     "from_stage": entry.source, "to_stage": entry.dest, "at": now, "actor": actor,
                                     "reason": entry.reason, "workflow_version": record.workflow.version})
    audience = set(record.definition.stage_change_audience(entry.dest))
    return notices.stage_changed(record.assignment, record.assignee, change, now=now, recipients=[
        (role, person, [t for t in new_tasks if t.owner_id == person.id])
        for role, person in sorted(record.stakeholders.items()) if role in audience])
