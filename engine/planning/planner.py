"""Reminder planning: turns due task steps and contact cadences into outbox rows, idempotently, at a given instant.

`plan(session, now)` is a pure function of the database state and `now`: it never reads the clock. Every row
it writes has a unique key, and `insert_notifications` ignores keys already present, so planning the same
instant twice, by two daemons or after a restart, adds nothing.

Task reminders follow `engine.domain.reminders`: each open task due on day D brings task_due_soon, task_due and
task_overdue to its owner, and escalations to `reminders.escalate_to` and the owner's manager, each at the
workflow's local hour in the owner's time zone. A task is created when its stage is entered, so its creation
is the assignment's `stage_entered_at` for a task of the current stage, and the last entry into the task's
stage in the history otherwise; escalations dated before it are dropped.

Cadences follow the calendar of `engine.domain.cadences`. A cadence's kind decides what satisfies it and what it sends
(`notices.cadence_notice_kinds`): kind `checkin` is held by a check-in recorded in the period and sends
checkin_due / checkin_missed (checkin_due carries the latest progress on every goal), kind `pulse` is held by a
pulse and sends pulse_due / checkin_missed, any other kind is held by a logged contact of that kind and sends
contact_due / contact_missed. The keys below start with the notice kind sent. Each period brings
- `contact_due` to every `notify` role, at the local hour in each recipient's time zone on the period's first
  day (key contact_due/{assignment}/{kind}/{period start}/{role});
- `contact_missed` to the `notify` roles and `reminders.escalate_to`, at the local hour on the day after
  period end + grace_days, when no contact of that kind dated inside the period was logged by then
  (key contact_missed/{assignment}/{kind}/{period start}/{role}).
The daemon looks at a cadence when the first of the recipients' local hours comes. Nothing more is sent once
the assignment leaves the range, not even for a period whose grace time was still running: the first sweep
after the stage change cancels the cadence's notices still queued.

After downtime (`now` past several steps) each step that was missed is sent once, not once per missed sweep,
and a step superseded by a later one is dropped: of task_due_soon, task_due and task_overdue only the latest
that has come is sent (a "due in 3 days" after the due date would mislead), and only the contact_due of the
period that is running now. Escalations and contact_missed notices are each sent: every one records a
distinct lapse and goes to people who have not heard of it yet.

How much work a sweep does follows what is due, not history: tasks carry `next_reminder_at` and cadences
`CadenceState.next_check_at`, both indexed; a sweep reads only rows whose instant has come and moves the
instant to the next step (or to null when nothing is left).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session

from engine.domain import notices
from engine.domain.cadences import CadenceSchedule, counted_from, immersion_ends, in_range, range_entered_at
from engine.domain.definition import Cadence, WorkflowDefinition
from engine.domain.notices import (
    CADENCE_KINDS,
    CHECKIN_CADENCE,
    MISSED_KINDS,
    PERIOD_DUE_KINDS,
    PULSE_CADENCE,
    RECORDED_CADENCES,
    GoalProgressLine,
    NewNotice,
    NoticeKind,
)
from engine.domain.reminders import ReminderStep, steps_to_send, task_steps
from engine.domain.schedule import local_instant
from engine.planning.ical import CalendarPeriod, period_calendar
from engine.program.records import definition_of
from engine.store import checkin_queries, lookups, queries
from engine.store.migration_queries import cadence_starts_of
from engine.store.models import Assignment, Person, Task, Workflow
from engine.store.queries import StageStep

BATCH_SIZE = 500  # rows of one kind read at a time; a sweep repeats until nothing due is left



def plan(session: Session, now: datetime, *, attach_calendars: bool = True) -> int:
    """Write every task reminder, escalation and cadence notice due at `now` to the outbox; returns rows added.

    Every batch runs in the caller's transaction. `attach_calendars=False` leaves the iCalendar attachment off
    the notices that open a period (contact_due, checkin_due, pulse_due), for a replay that never delivers them:
    the attachment is made from a notice already decided (its period, recipient and instant) and nothing reads it
    back, so which notices are written, with which keys, texts and instants, stays the same.
    """
    return plan_in_batches(lambda: nullcontext(session), now, attach_calendars=attach_calendars)


def plan_in_batches(batch_transaction: Callable[[], AbstractContextManager[Session]], now: datetime, *,
                    should_stop: Callable[[], bool] = lambda: False, attach_calendars: bool = True) -> int:
    """Plan batch after batch, each in a transaction from `batch_transaction`, until nothing due is left or
    `should_stop` turns true; returns rows added.

    The daemon commits every batch on its own, so CLI writers never wait long for the lock.
    """
    added = 0
    while not should_stop():
        with batch_transaction() as session:
            batch = plan_batch(session, now, attach_calendars=attach_calendars)
        added += batch.added
        if not batch.more:
            break
    return added


@dataclass(frozen=True)
class PlannedBatch:
    added: int  # outbox rows written
    more: bool  # a batch came back full, so more may be due


def plan_batch(session: Session, now: datetime, *, attach_calendars: bool = True) -> PlannedBatch:
    """Plan one batch of due tasks and one of due cadences.

    Each batch is complete on its own (notices written, next instants moved), so the daemon commits after every
    batch: a backlog after long downtime never holds the database's write lock for more than one batch.

    Planning first decides which notices are due and their keys, then reads which of those keys the outbox holds
    already and builds texts and attachments only for the others: a task's earlier steps and a period's due notice
    come up again at every later check, and building them again only for the insert to ignore them cost a third
    of an hourly sweep. Not a filter on instants: a stage change moves `next_check_at` back, and what was sent
    before it must still be recognised by its key.
    """
    tasks_due, cadences_due = queries.anything_due(session, now)
    tasks = queries.due_task_reminders(session, now, BATCH_SIZE) if tasks_due else []
    states = queries.due_cadence_checks(session, now, BATCH_SIZE) if cadences_due else []
    if not tasks and not states:
        return PlannedBatch(0, False)
    # one read of the assignments for both halves: most sweeps find tasks and cadences of the same assignments
    context = _load_assignments(session, {t.assignment_id for t in tasks} | {s.assignment_id for s in states})
    context.history = queries.stage_steps_of(session, {s.assignment_id for s in states} | {
        t.assignment_id for t in tasks if t.stage != context.assignments[t.assignment_id].stage})
    context.cadence_starts = cadence_starts_of(session.connection(), {s.assignment_id for s in states})
    task_drafts, moves = _task_drafts(tasks, context, now)
    cadence_drafts, next_checks = _cadence_drafts(session, states, context, now, attach_calendars=attach_calendars)
    drafts = task_drafts + cadence_drafts
    existing = queries.existing_outbox_keys(session, [key for key, _ in drafts])
    added = queries.insert_notifications(session, [build() for key, build in drafts if key not in existing])
    queries.set_next_reminders(session, moves)
    queries.set_next_cadence_checks(session, next_checks)
    return PlannedBatch(added, len(tasks) == BATCH_SIZE or len(states) == BATCH_SIZE)


# A notice decided on but not written yet: its key, and how to build it (only done when the key is new).
_Draft = tuple[str, Callable[[], NewNotice]]


# --- task reminders --------------------------------------------------------------------------------------------


def _task_drafts(tasks: Sequence[Task], context: _Context,
                 now: datetime) -> tuple[list[_Draft], list[tuple[Task, datetime | None]]]:
    """The due steps of a batch of tasks whose `next_reminder_at` has come, and each task's next step."""
    drafts: list[_Draft] = []
    moves: list[tuple[Task, datetime | None]] = []
    for task in tasks:
        definition = context.definitions[task.assignment_id]
        owner = context.people[task.owner_id]
        created = _task_created_at(task, context.assignments[task.assignment_id],
                                   context.history.get(task.assignment_id, []))
        steps = task_steps(task.due_on, definition.reminders, owner.tz)
        chosen, next_at = steps_to_send(steps, now, created)
        moves.append((task, next_at))
        for step in chosen:
            drafts += _step_drafts(task, step, context, now)
    return drafts, moves


def _task_created_at(task: Task, assignment: Assignment, history: Iterable[StageStep]) -> datetime | None:
    """When a task was created: tasks are created as their stage is entered, so when the assignment last entered it."""
    if task.stage == assignment.stage:
        return assignment.stage_entered_at
    return max((step.at for step in history if step.to_stage == task.stage), default=None)


def _step_drafts(task: Task, step: ReminderStep, context: _Context, now: datetime) -> list[_Draft]:
    """One draft per recipient of a step: the owner's own reminder, or an escalation to each role it goes to."""
    assignment = context.assignments[task.assignment_id]
    holders = context.holders[task.assignment_id]
    owner = context.people[task.owner_id]

    def about() -> str:
        return notices.assignment_line(assignment, holders["assignee"])

    if step.kind != NoticeKind.ESCALATION:
        return [(notices.task_notice_key(step.kind, task),
                 lambda: notices.task_reminder(step.kind, task, owner, about(), day=step.day, at=step.at, now=now))]
    reminders = context.definitions[task.assignment_id].reminders
    roles = _unique([reminders.escalate_to, reminders.managers.get(task.owner_role)])
    plan_ack = task.key.startswith(notices.PLAN_ACK_TASK)
    kind = NoticeKind.PLAN_UNACKNOWLEDGED if plan_ack else NoticeKind.ESCALATION
    escalate = notices.plan_unacknowledged if plan_ack else notices.escalations

    def escalation(role: str, person: Person) -> Callable[[], NewNotice]:
        return lambda: escalate(task, owner, about(), [(role, person)], number=step.number,
                                overdue_days=step.overdue_days, at=step.at, now=now)[0]

    return [(notices.task_notice_key(kind, task, step.number, role), escalation(role, holders[role]))
            for role in roles if role in holders]


# --- cadences --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _CadenceCheck:
    """What one due cadence asks for at a sweep: the period whose due notice has come (if any) and the periods
    whose contact is looked for now."""

    assignment_id: int
    cadence: Cadence
    schedule: CadenceSchedule
    current: int | None
    checked: list[int]
    missed_roles: list[str]


def _cadence_drafts(session: Session, states: Sequence[queries.DueCadence], context: _Context, now: datetime, *,
                    attach_calendars: bool) -> tuple[list[_Draft], list[tuple[int, str, datetime | None]]]:
    """The contact_due and contact_missed notices of a batch of cadences whose `next_check_at` has come, and each
    cadence's next check; the queued notices of cadences whose stages the assignment has left are cancelled.

    What satisfies a period and the goal progress a checkin_due carries are read once for the whole batch, not
    once per period: planning writes neither, so reading them before the notices are made reads the same rows.
    """
    if not states:
        return [], []
    checks: list[_CadenceCheck] = []
    next_checks: list[tuple[int, str, datetime | None]] = []
    left: list[tuple[int, str]] = []
    for state in states:
        check, next_check_at, in_stages = _cadence_check(state.assignment_id, state.kind,
                                                         state.next_check_at or now, context, now)
        next_checks.append((state.assignment_id, state.kind, next_check_at))
        if not in_stages:
            left.append((state.assignment_id, state.kind))
        if check is not None:
            checks.append(check)
    queries.cancel_queued_cadence_notifications(session, left, kinds=CADENCE_KINDS,
                                                reason="assignment left the stages of this cadence before delivery")
    held = _held_periods(session, checks, context)
    progress = checkin_queries.latest_goal_progress_of(session, {
        c.assignment_id for c in checks if c.current is not None and c.cadence.kind == CHECKIN_CADENCE})
    drafts = [draft for check in checks
              for draft in _check_drafts(check, context, held, progress, now, attach_calendars=attach_calendars)]
    return drafts, next_checks


def _cadence_check(assignment_id: int, kind: str, since: datetime, context: _Context,
                   now: datetime) -> tuple[_CadenceCheck | None, datetime | None, bool]:
    """What a due cadence asks for at `now`, when to look at it next (None: never, the cadence is over), and
    whether the assignment is still in the cadence's stages."""
    assignment = context.assignments[assignment_id]
    definition = context.definitions[assignment_id]
    cadence = next((c for c in definition.cadences if c.kind == kind), None)
    if cadence is None:
        return None, None, True
    if not in_range(definition, cadence, assignment.stage):
        return None, None, False
    entered = counted_from(range_entered_at(definition, cadence, context.history.get(assignment_id, [])),
                           context.cadence_starts.get((assignment_id, kind)))
    holders = context.holders[assignment_id]
    missed_roles = _unique([*cadence.notify, definition.reminders.escalate_to])
    if entered is None or any(role not in holders for role in missed_roles):
        return None, None, True
    schedule = CadenceSchedule.of(definition, cadence, entered, holders["assignee"].tz, start=assignment.start,
                                  due_zones=[holders[r].tz for r in cadence.notify],
                                  missed_zones=[holders[r].tz for r in missed_roles])
    current, checked, next_check_at = schedule.look_at(min(since, now), now)
    return _CadenceCheck(assignment_id, cadence, schedule, current, checked, missed_roles), next_check_at, True


def _check_drafts(check: _CadenceCheck, context: _Context, held: set[tuple[int, str, int]],
                  progress: dict[int, list[GoalProgressLine]], now: datetime, *,
                  attach_calendars: bool) -> list[_Draft]:
    """The due notice of the current period and the missed notices of the periods looked for and not held."""
    drafts: list[_Draft] = []
    due_kind, missed_kind = notices.cadence_notice_kinds(check.cadence.kind)
    lines = progress.get(check.assignment_id, []) if due_kind == NoticeKind.CHECKIN_DUE else []
    if check.current is not None:
        drafts += _contact_drafts(due_kind, check.cadence.notify, check, check.current, context, lines, now,
                                  attach_calendars=attach_calendars)
    for index in check.checked:
        if (check.assignment_id, check.cadence.kind, index) not in held:
            drafts += _contact_drafts(missed_kind, check.missed_roles, check, index, context, [], now,
                                      attach_calendars=attach_calendars)
    return drafts
def _held_periods(session: Session, checks: Iterable[_CadenceCheck], context: _Context) -> set[tuple[int, str, int]]:
    """(assignment id, cadence kind, period index) of every period looked for whose contact happened: a check-in
    or a pulse recorded while the period ran (its days in the assignee's zone, as periods are counted), or a logged
    contact of the cadence's kind dated inside it. One query per kind of record for the whole batch."""
    windows = [(c, index) for c in checks for index in c.checked]
    held: set[tuple[int, str, int]] = set()
    contact_windows = [(c, i) for c, i in windows if c.cadence.kind not in RECORDED_CADENCES]
    if contact_windows:
        days = queries.contact_days_of(
            session, {c.assignment_id for c, _ in contact_windows}, {c.cadence.kind for c, _ in contact_windows},
            min(c.schedule.start(i) for c, i in contact_windows),
            max(c.schedule.last_day(i) for c, i in contact_windows))
        held |= {(c.assignment_id, c.cadence.kind, i) for c, i in contact_windows
                 if c.schedule.held(i, days.get((c.assignment_id, c.cadence.kind), []))}
    for kind, recorded_of in ((CHECKIN_CADENCE, checkin_queries.checkin_instants_of),
                              (PULSE_CADENCE, checkin_queries.pulse_instants_of)):
        spans = [(c, i, *_recorded_span(c, i, context)) for c, i in windows if c.cadence.kind == kind]
        if not spans:
            continue
        instants = recorded_of(session, {c.assignment_id for c, *_ in spans}, min(s for *_, s, _ in spans),
                               max(b for *_, b in spans))
        recorded_days = {assignment_id: _assignee_days(ordered, assignment_id, context)
                         for assignment_id, ordered in instants.items()}
        held |= {(c.assignment_id, kind, i) for c, i, *_ in spans
                 if c.schedule.held(i, recorded_days.get(c.assignment_id, []))}
    return held


def _recorded_span(check: _CadenceCheck, index: int, context: _Context) -> tuple[datetime, datetime]:
    """The instants a period ran for a check-in or pulse: its days in the assignee's zone, [since, before)."""
    tz = context.holders[check.assignment_id]["assignee"].tz
    return (local_instant(check.schedule.start(index), 0, tz),
            local_instant(check.schedule.start(index + 1), 0, tz))


def _assignee_days(ordered: list[datetime], assignment_id: int, context: _Context) -> list[date]:
    """The days, in order, of the sorted instants in the assignee's zone, where periods are counted."""
    zone = ZoneInfo(context.holders[assignment_id]["assignee"].tz)
    return [instant.astimezone(zone).date() for instant in ordered]


def _contact_drafts(kind: NoticeKind, roles: Iterable[str], check: _CadenceCheck, index: int, context: _Context,
                    progress: list[GoalProgressLine], now: datetime, *, attach_calendars: bool) -> list[_Draft]:
    """One draft per recipient of a period's notice of `kind`, keyed as `notices` keys it."""
    holders = context.holders[check.assignment_id]
    prefix = notices.cadence_key_prefix(kind, check.assignment_id, check.cadence.kind, check.schedule.start(index))

    def contact_notice(role: str) -> Callable[[], NewNotice]:
        return lambda: _contact_notice(kind, role, check, index, context, progress, now,
                                       attach_calendar=attach_calendars and kind in PERIOD_DUE_KINDS)

    return [(prefix + role, contact_notice(role)) for role in roles if role in holders]


def _contact_notice(kind: NoticeKind, role: str, check: _CadenceCheck, index: int, context: _Context,
                    progress: list[GoalProgressLine], now: datetime, *, attach_calendar: bool) -> NewNotice:
    cadence, schedule = check.cadence, check.schedule
    assignment, holders = context.assignments[check.assignment_id], context.holders[check.assignment_id]
    recipient = holders[role]
    period = notices.ContactPeriod(assignment, cadence, holders[cadence.with_role], schedule.start(index),
                                   schedule.last_day(index))
    day = schedule.check_day(index) if kind in MISSED_KINDS else period.first
    notice = notices.cadence_notice(kind, period, notices.assignment_line(assignment, holders["assignee"]), role=role,
                                    recipient=recipient, at=local_instant(day, schedule.local_hour, recipient.tz),
                                    now=now, progress=progress,
                                    immersion_ends=immersion_ends(context.definitions[check.assignment_id],
                                                                  assignment.start))
    if not attach_calendar:
        return notice
    calendar = CalendarPeriod(assignment, holders["assignee"], cadence, holders[cadence.with_role], period.first,
                              period.last)
    return notice._replace(calendar=period_calendar(calendar, recipient, schedule.local_hour, now))


# --- loading ---------------------------------------------------------------------------------------------------


@dataclass
class _Context:
    """What planning needs to know about a batch of assignments, loaded with one query per table."""

    assignments: dict[int, Assignment] = field(default_factory=dict)
    definitions: dict[int, WorkflowDefinition] = field(default_factory=dict)  # by assignment id
    holders: dict[int, dict[str, Person]] = field(default_factory=dict)  # assignment id -> role -> person
    people: dict[int, Person] = field(default_factory=dict)
    history: dict[int, list[StageStep]] = field(default_factory=dict)  # by assignment id, oldest first
    cadence_starts: dict[tuple[int, str], datetime] = field(default_factory=dict)  # (assignment id, kind) -> start


def _load_assignments(session: Session, assignment_ids: set[int]) -> _Context:
    """The batch's assignments, workflows, roles and people, one query each, as read-only values."""
    context = _Context()
    assignments = queries.values_by_id(session, Assignment, assignment_ids).values()
    workflows = queries.values_by_id(session, Workflow, {a.workflow_id for a in assignments})
    roles = lookups.stakeholder_roles_of(session, assignment_ids)
    context.people = queries.values_by_id(session, Person, {person_id for *_, person_id in roles} |
                                          {a.assignee_id for a in assignments})
    for a in assignments:
        assert a.id is not None
        workflow = workflows[a.workflow_id]
        context.assignments[a.id] = a
        context.definitions[a.id] = definition_of(workflow)
        context.holders[a.id] = {"assignee": context.people[a.assignee_id]}
    for assignment_id, role, person_id in roles:
        context.holders[assignment_id][role] = context.people[person_id]
    return context


def _unique(roles: Iterable[str | None]) -> list[str]:
    return [r for r in dict.fromkeys(roles) if r]
