"""Reminder planning: turns due task steps and contact cadences into outbox rows, idempotently, at a given instant.

`plan(session, now)` is a pure function of the database state and `now`: it never reads the clock. Every row
it writes has a unique key, and `insert_notifications` ignores keys already present, so planning the same
instant twice, by two daemons or after a restart, adds nothing.

Task reminders. For an open task due on day D (a calendar day in its owner's time zone), with the workflow's
`reminders` (H = local_hour, S = due_soon_days, E = escalation_days), each step falls due at H:00 in the
owner's time zone on its day:

    step                day              to                                              key
    task_due_soon       D - S (S > 0)    the owner                                       task_due_soon/{task}
    task_due            D                the owner                                       task_due/{task}
    task_overdue        D + 1            the owner                                       task_overdue/{task}
    escalation i        D + 1 + E[i-1]   escalate_to and managers[owner role], if any    escalation/{task}/{i}/{role}

(D + 1 is the first day the task is overdue, so escalation i comes E[i-1] days after the task fell overdue;
with the built-in [3, 10] that is D + 4 and D + 11.) Escalations go out at the instant of the step, which
is the owner's local hour: an escalation is about how long the owner has let the task run over. So an
escalation dated before the task was created is dropped: a task created already overdue (due 14 days
before a start that is 5 days away) brings its owner one task_overdue and nobody an escalation about it.
A task is created when its stage is entered, so its creation is the assignment's `stage_entered_at` for a
task of the current stage, and the last entry into the task's stage in the history otherwise.

Cadences. A cadence is active while the assignment's stage lies between `from_stage` and `until_stage`
(inclusive, in the workflow's stage order). Its periods are anchored on the day the assignment entered that
range (the last entry in its transition history, as a date in the assignee's time zone): period k starts on
the anchor plus k months, clamped to the end of shorter months and always counted from the anchor (31 Jan,
28/29 Feb, 31 Mar, 30 Apr, ...), or on the anchor plus k times the weeks. A period ends the day before the
next one starts. Each period brings
- `contact_due` to every `notify` role, at H:00 in each recipient's time zone on the period's first day
  (key contact_due/{assignment}/{kind}/{period start}/{role});
- `contact_missed` to the `notify` roles and `reminders.escalate_to`, at H:00 on the day after
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

import calendar
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from engine.definition import Cadence, Every, Reminders, WorkflowDefinition
from engine.ical import ContactPeriod, contact_due_calendar
from engine.records import definition_of
from engine.schedule import local_instant
from engine.store import queries
from engine.store.models import Assignment, CadenceState, Person, Stakeholder, Task, TransitionRecord, Workflow

BATCH_SIZE = 500  # rows of one kind read at a time; a sweep repeats until nothing due is left
OWNER_STEPS = ("task_due_soon", "task_due", "task_overdue")
TASK_KINDS = (*OWNER_STEPS, "escalation")  # the notices about one task
CADENCE_KINDS = ("contact_due", "contact_missed")


def plan(session: Session, now: datetime) -> int:
    """Write every task reminder, escalation and cadence notice due at `now` to the outbox; returns rows added."""
    added = 0
    while True:
        batch = plan_batch(session, now)
        added += batch.added
        if not batch.more:
            return added


@dataclass(frozen=True)
class PlannedBatch:
    added: int  # outbox rows written
    more: bool  # a batch came back full, so more may be due


def plan_batch(session: Session, now: datetime) -> PlannedBatch:
    """Plan one batch of due tasks and one of due cadences.

    Each batch is complete on its own (notices written, next instants moved), so the daemon commits after every
    batch: a backlog after long downtime never holds the database's write lock for more than one batch.
    """
    tasks_added, tasks_full = _plan_task_batch(session, now)
    cadences_added, cadences_full = _plan_cadence_batch(session, now)
    return PlannedBatch(tasks_added + cadences_added, tasks_full or cadences_full)


# --- task reminders --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReminderStep:
    """One step of a task's reminder schedule: what is sent, on which day, at which instant."""

    kind: str
    day: date
    at: datetime
    number: int = 0  # escalation steps count from 1
    overdue_days: int = 0  # for escalations: days since the task fell overdue


def task_steps(due_on: date, reminders: Reminders, tz: str) -> list[ReminderStep]:
    """Every reminder step of a task due on `due_on` whose owner lives in `tz`, in time order."""
    days: list[tuple[str, date, int, int]] = []
    if reminders.due_soon_days > 0:
        days.append(("task_due_soon", due_on - timedelta(days=reminders.due_soon_days), 0, 0))
    overdue_on = due_on + timedelta(days=1)
    days += [("task_due", due_on, 0, 0), ("task_overdue", overdue_on, 0, 0)]
    days += [("escalation", overdue_on + timedelta(days=after), number, after)
             for number, after in enumerate(reminders.escalation_days, start=1)]
    return [ReminderStep(kind, day, local_instant(day, reminders.local_hour, tz), number, after)
            for kind, day, number, after in days]


def steps_to_send(steps: Sequence[ReminderStep], now: datetime,
                  created_at: datetime | None = None) -> tuple[list[ReminderStep], datetime | None]:
    """The steps to send at `now` and the instant of the next step still to come (None: no more steps).

    Of the owner's own steps only the latest that has come is sent; every escalation that has come is sent,
    except those dated before the task was created (`created_at`): nobody let a task run over before it existed.
    """
    if created_at is not None:
        steps = [s for s in steps if s.kind != "escalation" or s.at >= created_at]
    come = [s for s in steps if s.at <= now]
    owner = [s for s in come if s.kind in OWNER_STEPS]
    chosen = owner[-1:] + [s for s in come if s.kind == "escalation"]
    upcoming = [s.at for s in steps if s.at > now]
    return chosen, min(upcoming, default=None)


def _plan_task_batch(session: Session, now: datetime) -> tuple[int, bool]:
    """Send the due steps of up to a batch of tasks whose `next_reminder_at` has come; move each to its next step."""
    tasks = queries.due_task_reminders(session, now, BATCH_SIZE)
    if not tasks:
        return 0, False
    context = _load_assignments(session, {t.assignment_id for t in tasks})
    earlier_stages = queries.transitions_of(session, {
        t.assignment_id for t in tasks if t.stage != context.assignments[t.assignment_id].stage})
    rows: list[dict[str, Any]] = []
    for task in tasks:
        definition = context.definitions[task.assignment_id]
        owner = context.people[task.owner_id]
        created = _task_created_at(task, context.assignments[task.assignment_id],
                                   earlier_stages.get(task.assignment_id, []))
        steps = task_steps(task.due_on, definition.reminders, owner.tz)
        chosen, task.next_reminder_at = steps_to_send(steps, now, created)
        rows += [row for step in chosen for row in _task_notices(task, step, context, now)]
        session.add(task)
    added = queries.insert_notifications(session, rows)
    session.flush()
    return added, len(tasks) == BATCH_SIZE


def _task_created_at(task: Task, assignment: Assignment, history: Iterable[TransitionRecord]) -> datetime | None:
    """When a task was created: tasks are created as their stage is entered, so when the assignment last entered it."""
    if task.stage == assignment.stage:
        return assignment.stage_entered_at
    return max((step.at for step in history if step.to_stage == task.stage), default=None)


def _task_notices(task: Task, step: ReminderStep, context: _Context, now: datetime) -> list[dict[str, Any]]:
    assignment = context.assignments[task.assignment_id]
    holders = context.holders[task.assignment_id]
    owner = context.people[task.owner_id]
    about = _assignment_line(assignment, holders)
    common = {"kind": step.kind, "assignment_id": assignment.id, "task_id": task.id, "created_at": now,
              "deliver_at": step.at}
    if step.kind != "escalation":
        subject = {"task_due_soon": f"Due in {(task.due_on - step.day).days} day(s): {task.title}",
                   "task_due": f"Due today: {task.title}",
                   "task_overdue": f"Overdue since today: {task.title}"}[step.kind]
        body = (f"{about}\nYour task {task.id} ({task.key}) is due on {task.due_on.isoformat()}.\n"
                f"When it is done: sojourn task done {task.id}")
        return [{**common, "key": f"{step.kind}/{task.id}", "recipient": owner.email, "role": task.owner_role,
                 "subject": subject, "body": body}]
    reminders = context.definitions[task.assignment_id].reminders
    roles = _unique([reminders.escalate_to, reminders.managers.get(task.owner_role)])
    subject = f"Escalation {step.number}: {task.title} is {step.overdue_days + 1} day(s) overdue"
    body = (f"{about}\nTask {task.id} ({task.key}) of {owner.name} <{owner.email}> ({task.owner_role}) was due "
            f"on {task.due_on.isoformat()} and is still open.\nPlease follow up with {owner.name}.")
    return [{**common, "key": f"escalation/{task.id}/{step.number}/{role}", "recipient": holders[role].email,
             "role": role, "subject": subject, "body": body} for role in roles if role in holders]


# --- cadences --------------------------------------------------------------------------------------------------


def add_months_clamped(anchor: date, months: int) -> date:
    """`anchor` plus `months` calendar months, on the anchor's day or the month's last day if that is shorter.

    Plain arithmetic on purpose: APScheduler's CalendarIntervalTrigger(months=1) started on the 31st skips
    the months without one, and CronTrigger(day="last") only knows month ends, not anniversaries.
    """
    year, month = divmod(anchor.month - 1 + months, 12)
    year += anchor.year
    month += 1
    return date(year, month, min(anchor.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class CadenceSchedule:
    """The periods of one cadence of one assignment and the instants the daemon must act on them.

    Calendar days are computed with plain date arithmetic (clearer than triggers for clamped months);
    `zoneinfo` turns each day's local hour into an instant per recipient, so DST never moves the hour.
    """

    anchor: date
    every: Every
    grace_days: int
    local_hour: int
    due_zones: tuple[str, ...]  # time zones of the contact_due recipients
    missed_zones: tuple[str, ...]  # time zones of the contact_missed recipients

    def start(self, index: int) -> date:
        """The first day of period `index` (0 is the period that starts on the anchor)."""
        if self.every.months:
            return add_months_clamped(self.anchor, index * self.every.months)
        return self.anchor + timedelta(weeks=index * self.every.weeks)

    def last_day(self, index: int) -> date:
        return self.start(index + 1) - timedelta(days=1)

    def check_day(self, index: int) -> date:
        """The day the period's contact is looked for: the day after its end plus the grace days."""
        return self.start(index + 1) + timedelta(days=self.grace_days)

    def index_of(self, day: date) -> int:
        """The period `day` falls in; -1 before the anchor."""
        if day < self.anchor:
            return -1
        if self.every.months:
            index = ((day.year - self.anchor.year) * 12 + day.month - self.anchor.month) // self.every.months
        else:
            index = (day - self.anchor).days // (7 * self.every.weeks)
        while index > 0 and self.start(index) > day:
            index -= 1
        while self.start(index + 1) <= day:
            index += 1
        return index

    def due_at(self, index: int) -> datetime:
        """When the first recipient's local hour comes on the period's first day."""
        return _earliest(self.start(index), self.local_hour, self.due_zones)

    def check_at(self, index: int) -> datetime:
        return _earliest(self.check_day(index), self.local_hour, self.missed_zones)

    def current_period(self, now: datetime) -> int | None:
        """The latest period whose contact_due has come by `now` (None before the first one)."""
        index = max(self.index_of(_latest_local_date(now, self.due_zones)), 0)
        while index >= 0 and self.due_at(index) > now:
            index -= 1
        while self.due_at(index + 1) <= now:
            index += 1
        return index if index >= 0 else None

    def checks_between(self, since: datetime, until: datetime) -> list[int]:
        """Periods whose contact_missed check falls in [since, until]."""
        index = self._first_check_not_before(since)
        found = []
        while self.check_at(index) <= until:
            found.append(index)
            index += 1
        return found

    def next_event_after(self, now: datetime) -> datetime:
        """The first instant after `now` when a contact_due or a contact_missed check falls due."""
        current = self.current_period(now)
        next_due = self.due_at(0 if current is None else current + 1)
        index = self._first_check_not_before(now)
        while self.check_at(index) <= now:
            index += 1
        return min(next_due, self.check_at(index))

    def _first_check_not_before(self, instant: datetime) -> int:
        # A check day lies grace days after a period's end; start a little early and walk forward, because
        # time zones put the same instant on neighbouring days.
        earliest_day = min(instant.astimezone(ZoneInfo(z)).date() for z in self.missed_zones)
        index = max(self.index_of(earliest_day - timedelta(days=self.grace_days + 2)) - 1, 0)
        while self.check_at(index) < instant:
            index += 1
        return index


def _earliest(day: date, hour: int, zones: Iterable[str]) -> datetime:
    return min(local_instant(day, hour, z) for z in zones)


def _latest_local_date(instant: datetime, zones: Iterable[str]) -> date:
    return max(instant.astimezone(ZoneInfo(z)).date() for z in zones)


def in_range(definition: WorkflowDefinition, cadence: Cadence, stage: str | None) -> bool:
    """Whether `stage` lies between the cadence's from_stage and until_stage, inclusive, in stage order."""
    stages = definition.stage_keys
    if stage is None or stage not in stages or cadence.from_stage not in stages or cadence.until_stage not in stages:
        return False
    return stages.index(cadence.from_stage) <= stages.index(stage) <= stages.index(cadence.until_stage)


def range_entered_at(definition: WorkflowDefinition, cadence: Cadence,
                     history: Iterable[TransitionRecord]) -> datetime | None:
    """When the assignment last moved into the cadence's stage range from outside it (None: never)."""
    entered = None
    for step in history:
        if in_range(definition, cadence, step.to_stage) and not in_range(definition, cadence, step.from_stage):
            entered = step.at
    return entered


def period_start_of(definition: WorkflowDefinition, kind: str, history: Iterable[TransitionRecord], tz: str,
                    day: date) -> date | None:
    """The first day of the period of cadence `kind` that `day` falls in, counted as planning counts periods from
    the last entry into the cadence's stages (in `tz`, the assignee's zone); None when there is no such period."""
    cadence = next((c for c in definition.cadences if c.kind == kind), None)
    entered = None if cadence is None else range_entered_at(definition, cadence, history)
    if cadence is None or entered is None:
        return None
    schedule = CadenceSchedule(anchor=entered.astimezone(ZoneInfo(tz)).date(), every=cadence.every,
                               grace_days=cadence.grace_days, local_hour=definition.reminders.local_hour,
                               due_zones=(), missed_zones=())
    index = schedule.index_of(day)
    return schedule.start(index) if index >= 0 else None


def _plan_cadence_batch(session: Session, now: datetime) -> tuple[int, bool]:
    """Send the contact_due and contact_missed notices of up to a batch of cadences whose `next_check_at` has come."""
    states = queries.due_cadence_checks(session, now, BATCH_SIZE)
    if not states:
        return 0, False
    assignment_ids = {s.assignment_id for s in states}
    context = _load_assignments(session, assignment_ids)
    history = queries.transitions_of(session, assignment_ids)
    rows: list[dict[str, Any]] = []
    for state in states:
        notices, state.next_check_at = _cadence_notices(session, state, context, history[state.assignment_id],
                                                        now)
        rows += notices
        session.add(state)
    added = queries.insert_notifications(session, rows)
    session.flush()
    return added, len(states) == BATCH_SIZE


def _cadence_notices(session: Session, state: CadenceState, context: _Context, history: list[TransitionRecord],
                     now: datetime) -> tuple[list[dict[str, Any]], datetime | None]:
    assignment = context.assignments[state.assignment_id]
    definition = context.definitions[state.assignment_id]
    cadence = next((c for c in definition.cadences if c.kind == state.kind), None)
    if cadence is None:
        return [], None
    if not in_range(definition, cadence, assignment.stage):
        queries.cancel_queued_notifications(
            session, assignment_id=state.assignment_id, kinds=CADENCE_KINDS,
            reason="assignment left the stages of this cadence before delivery",
            key_prefixes=[f"{kind}/{state.assignment_id}/{cadence.kind}/" for kind in CADENCE_KINDS])
        return [], None
    entered = range_entered_at(definition, cadence, history)
    holders = context.holders[state.assignment_id]
    missed_roles = _unique([*cadence.notify, definition.reminders.escalate_to])
    if entered is None or any(role not in holders for role in missed_roles):
        return [], None
    schedule = CadenceSchedule(
        anchor=entered.astimezone(ZoneInfo(holders["assignee"].tz)).date(), every=cadence.every,
        grace_days=cadence.grace_days, local_hour=definition.reminders.local_hour,
        due_zones=tuple(holders[r].tz for r in cadence.notify), missed_zones=tuple(holders[r].tz for r in missed_roles))
    rows: list[dict[str, Any]] = []
    current = schedule.current_period(now)
    if current is not None:
        rows += _contact_notices("contact_due", cadence.notify, cadence, schedule, current, assignment, holders, now)
    since = state.next_check_at or now
    for index in schedule.checks_between(since, now):
        if not queries.contact_logged(session, state.assignment_id, cadence.kind, schedule.start(index),
                                      schedule.last_day(index)):
            rows += _contact_notices("contact_missed", missed_roles, cadence, schedule, index, assignment, holders,
                                     now)
    return rows, schedule.next_event_after(now)


def _contact_notices(kind: str, roles: Iterable[str], cadence: Cadence, schedule: CadenceSchedule, index: int,
                     assignment: Assignment, holders: dict[str, Person], now: datetime) -> list[dict[str, Any]]:
    first, last = schedule.start(index), schedule.last_day(index)
    day = first if kind == "contact_due" else schedule.check_day(index)
    partner = holders[cadence.with_role]
    about = _assignment_line(assignment, holders)
    period = ContactPeriod(assignment, holders["assignee"], cadence, partner, first, last)
    if kind == "contact_due":
        subject = f"{cadence.title}: due by {last.isoformat()}"
        body = (f"{about}\nA {cadence.kind} contact with the {cadence.with_role}, {partner.name} <{partner.email}>, "
                f"is due between {first.isoformat()} and {last.isoformat()}.\nOnce it has happened: sojourn contact "
                f"log {assignment.id} --kind {cadence.kind} --with {partner.email} --on YYYY-MM-DD")
    else:
        subject = f"Missed: {cadence.title} for {first.isoformat()} to {last.isoformat()}"
        body = (f"{about}\nNo {cadence.kind} contact with the {cadence.with_role}, {partner.name} <{partner.email}>, "
                f"was logged for {first.isoformat()} to {last.isoformat()}, {cadence.grace_days} day(s) of grace "
                "included.")
    return [{"key": f"{kind}/{assignment.id}/{cadence.kind}/{first.isoformat()}/{role}", "kind": kind,
             "assignment_id": assignment.id, "task_id": None, "recipient": holders[role].email, "role": role,
             "subject": subject, "body": body, "created_at": now,
             "deliver_at": local_instant(day, schedule.local_hour, holders[role].tz),
             "calendar": contact_due_calendar(period, holders[role], schedule.local_hour, now)
             if kind == "contact_due" else None}
            for role in roles if role in holders]


# --- loading ---------------------------------------------------------------------------------------------------


@dataclass
class _Context:
    """What planning needs to know about a batch of assignments, loaded with one query per table."""

    assignments: dict[int, Assignment] = field(default_factory=dict)
    definitions: dict[int, WorkflowDefinition] = field(default_factory=dict)  # by assignment id
    holders: dict[int, dict[str, Person]] = field(default_factory=dict)  # assignment id -> role -> person
    people: dict[int, Person] = field(default_factory=dict)


def _load_assignments(session: Session, assignment_ids: set[int]) -> _Context:
    context = _Context()
    assignments = session.exec(select(Assignment).where(col(Assignment.id).in_(assignment_ids))).all()
    workflows = {w.id: w for w in session.exec(
        select(Workflow).where(col(Workflow.id).in_({a.workflow_id for a in assignments})))}
    roles = session.exec(select(Stakeholder).where(col(Stakeholder.assignment_id).in_(assignment_ids))).all()
    person_ids = {s.person_id for s in roles} | {a.assignee_id for a in assignments}
    context.people = {p.id: p for p in session.exec(select(Person).where(col(Person.id).in_(person_ids)))
                      if p.id is not None}
    for a in assignments:
        assert a.id is not None
        workflow = workflows[a.workflow_id]
        context.assignments[a.id] = a
        context.definitions[a.id] = definition_of(workflow)
        context.holders[a.id] = {"assignee": context.people[a.assignee_id]}
    for s in roles:
        context.holders[s.assignment_id][s.role] = context.people[s.person_id]
    return context


def _assignment_line(assignment: Assignment, holders: dict[str, Person]) -> str:
    assignee = holders["assignee"]
    return (f"Assignment #{assignment.id} ({assignee.name}, {assignment.home} to {assignment.host}), "
            f"stage {assignment.stage}.")


def _unique(roles: Iterable[str | None]) -> list[str]:
    return [r for r in dict.fromkeys(roles) if r]
