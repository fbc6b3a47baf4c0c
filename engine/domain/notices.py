"""What Sojourn tells people: notice kinds and outbox statuses, the typed new notice, and every message's text.

Each message says what happened, to whom it matters, and the command its recipient can run about it. The
planner, the use cases, the dispatcher, the outbox views and the command line all take their words from here.
The module imports nothing heavy, so the command line can read the choices without loading the database.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import date, datetime

    from engine.domain.definition import Cadence


class PersonFacts(Protocol):
    """What a message names of a person; the store's Person row is one."""

    @property
    def email(self) -> str: ...

    @property
    def name(self) -> str: ...


class AssignmentFacts(Protocol):
    """What a message names of an assignment; the store's Assignment row is one."""

    @property
    def id(self) -> int | None: ...

    @property
    def home(self) -> str: ...

    @property
    def host(self) -> str: ...

    @property
    def stage(self) -> str: ...

    @property
    def plan_version(self) -> int: ...


class TaskFacts(Protocol):
    """What a reminder names of a task; the store's Task row is one."""

    @property
    def id(self) -> int | None: ...

    @property
    def assignment_id(self) -> int: ...

    @property
    def key(self) -> str: ...

    @property
    def title(self) -> str: ...

    @property
    def owner_role(self) -> str: ...

    @property
    def due_on(self) -> date: ...

    @property
    def reminder_round(self) -> int: ...


class StageChangeFacts(Protocol):
    """What a stage-change notice names of the step; the store's StageChange row is one."""

    @property
    def id(self) -> int | None: ...

    @property
    def assignment_id(self) -> int: ...

    @property
    def from_stage(self) -> str | None: ...

    @property
    def to_stage(self) -> str: ...

    @property
    def reason(self) -> str | None: ...

    @property
    def actor(self) -> str: ...


class NoticeKind(StrEnum):
    """What a notice is about; `[routing]` routes by these names."""

    TASK_DUE_SOON = "task_due_soon"
    TASK_DUE = "task_due"
    TASK_OVERDUE = "task_overdue"
    ESCALATION = "escalation"
    CONTACT_DUE = "contact_due"
    CONTACT_MISSED = "contact_missed"
    STAGE_CHANGED = "stage_changed"
    PLAN_CHANGED = "plan_changed"
    CHECKIN_DUE = "checkin_due"
    CHECKIN_MISSED = "checkin_missed"
    PULSE_DUE = "pulse_due"
    PULSE_ALERT = "pulse_alert"
    PLAN_UNACKNOWLEDGED = "plan_unacknowledged"  # the escalation of a plan change nobody acknowledged
    CHECKIN_FEEDBACK = "checkin_feedback"  # a check-in's feedback, to the other side and home
    DIGEST = "digest"  # the informational notices of one person's digest period, gathered into one message


class NoticeStatus(StrEnum):
    """Where a notice stands in the outbox."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # will be tried again
    DEAD = "dead"
    CANCELLED = "cancelled"  # queued but never to be sent: its cause went away first
    HELD = "held"  # waiting for its recipient's digest (`next_attempt_at` is the digest's instant)
    GATHERED = "gathered"  # in a digest not sent yet (`digest_key`); sent with it


# The task owner's own reminders: only the latest that has come is sent.
OWNER_STEPS = (NoticeKind.TASK_DUE_SOON, NoticeKind.TASK_DUE, NoticeKind.TASK_OVERDUE)
TASK_KINDS = (*OWNER_STEPS, NoticeKind.ESCALATION, NoticeKind.PLAN_UNACKNOWLEDGED)  # the notices about one task
CADENCE_KINDS = (NoticeKind.CONTACT_DUE, NoticeKind.CONTACT_MISSED, NoticeKind.CHECKIN_DUE, NoticeKind.CHECKIN_MISSED,
                 NoticeKind.PULSE_DUE)
MISSED_KINDS = (NoticeKind.CONTACT_MISSED, NoticeKind.CHECKIN_MISSED)  # a lapse, not a request
# The request that opens a cadence period; it carries the period's calendar event.
PERIOD_DUE_KINDS = (NoticeKind.CONTACT_DUE, NoticeKind.CHECKIN_DUE, NoticeKind.PULSE_DUE)
# Cadence kinds satisfied by a recorded check-in or pulse rather than by a logged contact.
CHECKIN_CADENCE = "checkin"
PULSE_CADENCE = "pulse"
CHECKIN_ROLES = ("assignee", "host_manager")  # whose check-ins count; feedback runs between the two
PULSE_ROLE = "assignee"  # who answers the expectancy pulse
RECORDED_CADENCES = (CHECKIN_CADENCE, PULSE_CADENCE)
DELIVERABLE = (NoticeStatus.PENDING, NoticeStatus.FAILED)  # statuses a dispatcher may still send
RETRYABLE = (NoticeStatus.DEAD, NoticeStatus.FAILED)  # statuses `outbox retry` makes pending again
# Statuses of a notice not sent yet, that a cancellation or a rewrite still reaches (in a digest or on its own).
NOT_SENT_YET = (*DELIVERABLE, NoticeStatus.HELD, NoticeStatus.GATHERED)


class NewNotice(NamedTuple):
    """One message for one recipient, ready for the outbox; `key` makes writing it twice a no-op."""

    key: str
    kind: NoticeKind
    assignment_id: int
    task_id: int | None
    recipient: str
    role: str
    subject: str
    body: str
    created_at: datetime
    deliver_at: datetime  # not before this instant (a local hour in the recipient's time zone)
    calendar: str | None = None  # an iCalendar attachment (METHOD:PUBLISH), for notices about a dated event
    cadence: str | None = None  # the cadence kind of a contact, check-in or pulse notice
    plan_version: int | None = None  # the plan version a plan_changed notice asks to acknowledge
    pulse_id: int | None = None  # the pulse a pulse_alert is about


# --- what a recipient can do ------------------------------------------------------------------------------------

# The labels of the lines that tell a recipient which command to run about a notice: with `[serve]` configured,
# the dispatcher puts the notice's signed link in place of the command (`with_action_link`).
ACTION_LINE = re.compile(r"^(When it is done|Once it has happened|Record it|Answer|To acknowledge it|"
                         r"Once it is followed up): sojourn .*$", re.MULTILINE)


def with_action_link(body: str, url: str) -> str:
    """The body with its command line (the last, should user text above imitate one) showing `url` instead.

    Stakeholders never touch the command line; a body without such a line is returned as it is.
    """
    found = list(ACTION_LINE.finditer(body))
    if not found:
        return body
    last = found[-1]
    return f"{body[:last.start()]}{last.group(1)}: {url}{body[last.end():]}"



def task_done_command(task_id: int | None) -> str:
    return f"sojourn task done {task_id}"


def alert_resolve_command(pulse_id: int, email: str) -> str:
    return f"sojourn alert resolve {pulse_id} --by {email} --note TEXT"


def contact_log_command(assignment_id: int | None, kind: str, partner: str) -> str:
    return f"sojourn contact log {assignment_id} --kind {kind} --with {partner} --on YYYY-MM-DD"


def checkin_command(assignment_id: int | None) -> str:
    return f"sojourn checkin {assignment_id} --by YOUR_EMAIL --goal GOAL_ID=PERCENT ... [--feedback TEXT]"


def settling_in_command(assignment_id: int | None) -> str:
    return f"sojourn checkin {assignment_id} --by YOUR_EMAIL --note TEXT [--feedback TEXT]"


def immersion_lines(immersion_ends: date) -> list[str]:
    """What a check-in during the immersion days asks for, and from when progress per goal is asked."""
    last_day = immersion_ends - timedelta(days=1)
    return [f"The immersion days run until {last_day.isoformat()}: tell in a note how the assignee and family are "
            "settling in; no progress per goal is needed yet.",
            f"Progress on every goal is asked from the first check-in on or after {immersion_ends.isoformat()}."]


def pulse_command(assignment_id: int | None) -> str:
    return (f"sojourn pulse {assignment_id} --by YOUR_EMAIL --expectancy 1-5 --instrumentality 1-5 "
            "--valence 1-5")


def cadence_notice_kinds(cadence_kind: str) -> tuple[NoticeKind, NoticeKind]:
    """The (due, missed) notice kinds of a cadence: a check-in's and a pulse's own, a logged contact's otherwise.

    A lapsed pulse sends checkin_missed: it is a missed check-in on the assignee's motivation, and the people
    who act on a lapsed check-in are the ones to ask why nobody answered.
    """
    if cadence_kind == CHECKIN_CADENCE:
        return NoticeKind.CHECKIN_DUE, NoticeKind.CHECKIN_MISSED
    if cadence_kind == PULSE_CADENCE:
        return NoticeKind.PULSE_DUE, NoticeKind.CHECKIN_MISSED
    return NoticeKind.CONTACT_DUE, NoticeKind.CONTACT_MISSED


def plan_ack_command(assignment_id: int | None, by: str) -> str:
    return f"sojourn plan ack {assignment_id} --by {by}"


# --- keys ---------------------------------------------------------------------------------------------------------


def cadence_key_prefix(kind: NoticeKind, assignment_id: int, cadence: str, period_start: date | None = None) -> str:
    """The start of the keys of an assignment's cadence notices of `kind`, narrowed to one period if given."""
    prefix = f"{kind}/{assignment_id}/{cadence}/"
    return prefix if period_start is None else f"{prefix}{period_start.isoformat()}/"


# Tasks a plan change opens have keys no workflow task can have (those match ^[a-z][a-z0-9_]*$).
PLAN_FOLLOW_UP_TASK = "plan-follow-up/"
PLAN_ACK_TASK = "plan-ack/"


def plan_task_key(prefix: str, plan_version: int) -> str:
    return f"{prefix}{plan_version}"


def is_plan_change_task(key: str) -> bool:
    """A task opened by a change to an agreed plan rather than by entering a stage."""
    return key.startswith((PLAN_FOLLOW_UP_TASK, PLAN_ACK_TASK))


# --- task reminders ---------------------------------------------------------------------------------------------


def task_key_part(task: TaskFacts) -> str:
    """How a task's reminder keys name it: its id, then `.N` from its Nth re-planning (a new owner or due date)."""
    return f"{task.id}.{task.reminder_round}" if task.reminder_round else f"{task.id}"


def task_notice_key(kind: NoticeKind, task: TaskFacts, number: int = 0, role: str = "") -> str:
    """The key of a notice about a task: an owner's step, escalation `number` to `role`, or the escalation of an
    unacknowledged plan change (keyed by the task id alone). Planning reads which keys exist before building texts."""
    if kind == NoticeKind.PLAN_UNACKNOWLEDGED:
        return f"{kind}/{task.id}/{number}/{role}"
    if kind == NoticeKind.ESCALATION:
        return f"{kind}/{task_key_part(task)}/{number}/{role}"
    return f"{kind}/{task_key_part(task)}"


def assignment_line(assignment: AssignmentFacts, assignee: PersonFacts) -> str:
    """The line that opens a reminder: which assignment, whose, and where it stands."""
    return (f"Assignment #{assignment.id} ({assignee.name}, {assignment.home} to {assignment.host}), "
            f"stage {assignment.stage}.")


def task_reminder(kind: NoticeKind, task: TaskFacts, owner: PersonFacts, about: str, *, day: date, at: datetime,
                  now: datetime) -> NewNotice:
    """A task_due_soon, task_due or task_overdue for the task's owner, for the step on `day`."""
    subject = {NoticeKind.TASK_DUE_SOON: f"Due in {(task.due_on - day).days} day(s): {task.title}",
               NoticeKind.TASK_DUE: f"Due today: {task.title}",
               NoticeKind.TASK_OVERDUE: f"Overdue since today: {task.title}"}[kind]
    body = (f"{about}\nYour task {task.id} ({task.key}) is due on {task.due_on.isoformat()}.\n"
            f"When it is done: {task_done_command(task.id)}")
    return NewNotice(key=task_notice_key(kind, task), kind=kind, assignment_id=task.assignment_id, task_id=task.id,
                     recipient=owner.email, role=task.owner_role, subject=subject, body=body, created_at=now,
                     deliver_at=at)


def escalations(task: TaskFacts, owner: PersonFacts, about: str, recipients: Iterable[tuple[str, PersonFacts]], *,
                number: int, overdue_days: int, at: datetime, now: datetime) -> list[NewNotice]:
    """Escalation `number` about an overdue task, one per (role, person) to follow up with its owner."""
    subject = f"Escalation {number}: {task.title} is {overdue_days + 1} day(s) overdue"
    body = (f"{about}\nTask {task.id} ({task.key}) of {owner.name} <{owner.email}> ({task.owner_role}) was due "
            f"on {task.due_on.isoformat()} and is still open.\nPlease follow up with {owner.name}.")
    return [NewNotice(key=task_notice_key(NoticeKind.ESCALATION, task, number, role), kind=NoticeKind.ESCALATION,
                      assignment_id=task.assignment_id, task_id=task.id, recipient=person.email, role=role,
                      subject=subject, body=body, created_at=now, deliver_at=at)
            for role, person in recipients]


# --- cadences -----------------------------------------------------------------------------------------------------


class ContactPeriod(NamedTuple):
    """One period of one cadence of one assignment, and who the contact is with."""

    assignment: AssignmentFacts
    cadence: Cadence
    partner: PersonFacts
    first: date
    last: date


def _due_subject(period: ContactPeriod) -> str:
    """The subject a contact, check-in and pulse request share: the cadence's title and the period's last day."""
    return f"{period.cadence.title}: due by {period.last.isoformat()}"


def _missed_subject(period: ContactPeriod) -> str:
    """The subject a lapsed contact and a lapsed check-in or pulse share: the cadence's title and the period."""
    return f"Missed: {period.cadence.title} for {period.first.isoformat()} to {period.last.isoformat()}"


def contact_due(period: ContactPeriod, about: str, *, role: str, recipient: PersonFacts, at: datetime,
                now: datetime) -> NewNotice:
    """The period's contact is due: sent on its first day."""
    cadence, partner, first, last = period.cadence, period.partner, period.first, period.last
    subject = _due_subject(period)
    body = (f"{about}\nA {cadence.kind} contact with the {cadence.with_role}, {partner.name} <{partner.email}>, "
            f"is due between {first.isoformat()} and {last.isoformat()}.\nOnce it has happened: "
            f"{contact_log_command(period.assignment.id, cadence.kind, partner.email)}")
    return _contact_notice(NoticeKind.CONTACT_DUE, period, subject, body, role, recipient, at, now)


def contact_missed(period: ContactPeriod, about: str, *, role: str, recipient: PersonFacts, at: datetime,
                   now: datetime) -> NewNotice:
    """No contact was logged for the period by the end of its grace days."""
    cadence, partner, first, last = period.cadence, period.partner, period.first, period.last
    subject = _missed_subject(period)
    body = (f"{about}\nNo {cadence.kind} contact with the {cadence.with_role}, {partner.name} <{partner.email}>, "
            f"was logged for {first.isoformat()} to {last.isoformat()}, {cadence.grace_days} day(s) of grace "
            "included.")
    return _contact_notice(NoticeKind.CONTACT_MISSED, period, subject, body, role, recipient, at, now)


def _contact_notice(kind: NoticeKind, period: ContactPeriod, subject: str, body: str, role: str, recipient: PersonFacts,
                    at: datetime, now: datetime) -> NewNotice:
    assignment = period.assignment
    assert assignment.id is not None, "planned assignments are stored ones"
    key = f"{cadence_key_prefix(kind, assignment.id, period.cadence.kind, period.first)}{role}"
    return NewNotice(key=key, kind=kind, assignment_id=assignment.id, task_id=None, recipient=recipient.email,
                     role=role, subject=subject, body=body, created_at=now, deliver_at=at,
                     cadence=period.cadence.kind)


class GoalProgressLine(NamedTuple):
    """The latest recorded progress of one goal (percent None: no check-in has named it yet)."""

    goal_id: int
    title: str
    percent: int | None = None
    at: datetime | None = None
    role: str | None = None

    def text(self) -> str:
        if self.percent is None or self.at is None:
            return f"- goal {self.goal_id}, {self.title}: no progress recorded yet"
        return (f"- goal {self.goal_id}, {self.title}: {self.percent}% (check-in by the {self.role} on "
                f"{self.at.date().isoformat()})")


def progress_lines(progress: Iterable[GoalProgressLine]) -> list[str]:
    lines = [line.text() for line in progress]
    return ["Latest progress on the goals:", *lines] if lines else ["No goals yet."]


def checkin_due(period: ContactPeriod, about: str, progress: Iterable[GoalProgressLine], *, role: str,
                recipient: PersonFacts, at: datetime, now: datetime, immersion_ends: date | None = None) -> NewNotice:
    """The period's check-in is due; every recipient sees the latest progress (home sees what the host sees).

    A period that begins before `immersion_ends` (the first day after the immersion days) asks how the assignee and
    family are settling in instead of progress per goal, and says from when progress is asked.
    """
    cadence, partner, first, last = period.cadence, period.partner, period.first, period.last
    subject = _due_subject(period)
    settling_in = immersion_ends is not None and first < immersion_ends
    what = "A check-in" if settling_in else "A check-in on every goal"
    lines = [about, f"{what} by the assignee or the {cadence.with_role}, {partner.name} <{partner.email}>, is due "
                    f"between {first.isoformat()} and {last.isoformat()}."]
    if settling_in:
        assert immersion_ends is not None
        lines += immersion_lines(immersion_ends)
    if role in ("assignee", cadence.with_role):
        command = settling_in_command if settling_in else checkin_command
        lines.append(f"Record it: {command(period.assignment.id)}")
    body = "\n".join([*lines, *progress_lines(progress)])
    return _contact_notice(NoticeKind.CHECKIN_DUE, period, subject, body, role, recipient, at, now)


def pulse_due(period: ContactPeriod, about: str, *, role: str, recipient: PersonFacts, at: datetime,
              now: datetime) -> NewNotice:
    """The assignee is asked for the period's expectancy pulse."""
    first, last = period.first, period.last
    subject = _due_subject(period)
    body = (f"{about}\nHow do you see it between {first.isoformat()} and {last.isoformat()}? Expectancy: will your "
            "effort lead to the performance asked of you? Instrumentality: will that performance lead to the "
            "promised reward? Valence: do you still value that reward? Answer 1 (not at all) to 5 (fully).\n"
            f"Answer: {pulse_command(period.assignment.id)}")
    return _contact_notice(NoticeKind.PULSE_DUE, period, subject, body, role, recipient, at, now)


def checkin_missed(period: ContactPeriod, about: str, *, role: str, recipient: PersonFacts, at: datetime,
                   now: datetime) -> NewNotice:
    """No check-in (or pulse) was recorded for the period by the end of its grace days."""
    cadence, first, last = period.cadence, period.first, period.last
    what = "pulse" if cadence.kind == PULSE_CADENCE else "check-in"
    subject = _missed_subject(period)
    body = (f"{about}\nNo {what} was recorded for {first.isoformat()} to {last.isoformat()}, "
            f"{cadence.grace_days} day(s) of grace included.")
    return _contact_notice(NoticeKind.CHECKIN_MISSED, period, subject, body, role, recipient, at, now)


def cadence_notice(kind: NoticeKind, period: ContactPeriod, about: str, *, role: str, recipient: PersonFacts,
                   at: datetime, now: datetime, progress: Iterable[GoalProgressLine] = (),
                   immersion_ends: date | None = None) -> NewNotice:
    """The notice of `kind` about one period of a cadence, whichever kind of cadence it is."""
    if kind == NoticeKind.CHECKIN_DUE:
        return checkin_due(period, about, progress, role=role, recipient=recipient, at=at, now=now,
                           immersion_ends=immersion_ends)
    builders = {NoticeKind.CONTACT_DUE: contact_due, NoticeKind.CONTACT_MISSED: contact_missed,
                NoticeKind.PULSE_DUE: pulse_due, NoticeKind.CHECKIN_MISSED: checkin_missed}
    return builders[kind](period, about, role=role, recipient=recipient, at=at, now=now)


# --- changes made by a use case ---------------------------------------------------------------------------------


def stage_changed(assignment: AssignmentFacts, assignee: PersonFacts, change: StageChangeFacts, *,
                  recipients: Iterable[tuple[str, PersonFacts, Iterable[TaskFacts]]], now: datetime) -> list[NewNotice]:
    """The stage's audience (`WorkflowDefinition.stage_change_audience`) hears that the assignment moved, and
    which of the new stage's tasks are theirs.

    `recipients` are (role, person, their new tasks); the text they share is built once, as an import sends
    thousands of these at a time.
    """
    moved = f"from {change.from_stage} to {change.to_stage}" if change.from_stage else \
        f"created in stage {change.to_stage}"
    subject = f"Assignment #{assignment.id} ({assignee.name}, {assignment.home} to {assignment.host}): {moved}"
    opening = f"{subject}, by {change.actor}." + (f"\nReason: {change.reason}" if change.reason else "")
    key, assignment_id = f"{NoticeKind.STAGE_CHANGED}/{change.id}/", change.assignment_id
    return [NewNotice(key=key + role, kind=NoticeKind.STAGE_CHANGED, assignment_id=assignment_id, task_id=None,
                      recipient=recipient.email, role=role, subject=subject,
                      body="\n".join([opening, *(f"Your task: {t.title} (due {t.due_on.isoformat()}, task {t.id})"
                                                  for t in tasks)]), created_at=now, deliver_at=now)
            for role, recipient, tasks in recipients]


def plan_changed(assignment: AssignmentFacts, assignee: PersonFacts, summary: str, *, role: str, recipient: PersonFacts,
                 acknowledge_by: PersonFacts | None, now: datetime,
                 gathered: Sequence[tuple[int, str]] = ()) -> NewNotice:
    """The home manager hears at once of any change to a plan agreed at home.

    `gathered` lists (version, summary) of every change gathered into one pending change, oldest first; the
    notice then names them all and keeps the key of the first.
    """
    first = gathered[0][0] if gathered else assignment.plan_version
    versions = f"version {first}" if first == assignment.plan_version else \
        f"versions {first} to {assignment.plan_version}"
    subject = f"Assignment #{assignment.id} ({assignee.name}): the development plan changed ({versions})"
    changes = [f"Change: {summary}"] if not gathered else \
        ["Changes:", *(f"- version {version}: {text}" for version, text in gathered)]
    lines = [f"{subject}.", *changes, "Please follow up with a call; this message is the written record."]
    if acknowledge_by is not None and acknowledge_by.email == recipient.email:
        lines.append(f"To acknowledge it: {plan_ack_command(assignment.id, recipient.email)}")
    assert assignment.id is not None, "a changed plan belongs to a stored assignment"
    return NewNotice(key=f"{NoticeKind.PLAN_CHANGED}/{assignment.id}/{first}",
                     kind=NoticeKind.PLAN_CHANGED, assignment_id=assignment.id, task_id=None,
                     recipient=recipient.email, role=role, subject=subject, body="\n".join(lines), created_at=now,
                     deliver_at=now, plan_version=first)


class PulseAnswers(NamedTuple):
    """One expectancy pulse as the alert tells it."""

    pulse_id: int
    expectancy: int
    instrumentality: int
    valence: int
    note: str | None


def pulse_alert(assignment: AssignmentFacts, assignee: PersonFacts, answers: PulseAnswers, reason: str, *, role: str,
                recipient: PersonFacts, now: datetime) -> NewNotice:
    """The coach and the talent team hear at once that the assignee's motivation is at risk."""
    assert assignment.id is not None, "alerts are about stored assignments"
    subject = f"Assignment #{assignment.id} ({assignee.name}): expectancy pulse alert"
    body = (f"{subject}.\n{reason}.\nExpectancy {answers.expectancy}, instrumentality {answers.instrumentality}, "
            f"valence {answers.valence} (1 to 5)." + (f"\nNote: {answers.note}" if answers.note else "")
            + f"\nPlease talk with {assignee.name} <{assignee.email}>."
            + f"\nOnce it is followed up: {alert_resolve_command(answers.pulse_id, recipient.email)}")
    return NewNotice(key=f"{pulse_alert_key_prefix(answers.pulse_id)}{role}", kind=NoticeKind.PULSE_ALERT,
                     assignment_id=assignment.id, task_id=None, recipient=recipient.email, role=role,
                     subject=subject, body=body, created_at=now, deliver_at=now, pulse_id=answers.pulse_id)


def pulse_alert_key_prefix(pulse_id: int) -> str:
    """The start of the keys of one pulse's alerts (one per role told)."""
    return f"{NoticeKind.PULSE_ALERT}/{pulse_id}/"


def plan_unacknowledged(task: TaskFacts, owner: PersonFacts, about: str,
                        recipients: Iterable[tuple[str, PersonFacts]], *, number: int, overdue_days: int, at: datetime,
                        now: datetime) -> list[NewNotice]:
    """Escalation `number` of a plan change its acknowledging role has not acknowledged."""
    version = task.key.removeprefix(PLAN_ACK_TASK)
    subject = (f"Escalation {number}: plan version {version} of assignment #{task.assignment_id} is "
               f"{overdue_days + 1} day(s) overdue for acknowledgement")
    body = (f"{about}\n{owner.name} <{owner.email}> ({task.owner_role}) has not acknowledged the change that made "
            f"plan version {version}, due on {task.due_on.isoformat()}.\nPlease make sure home has heard of it; "
            f"{owner.name} acknowledges with: {plan_ack_command(task.assignment_id, owner.email)}")
    return [NewNotice(key=task_notice_key(NoticeKind.PLAN_UNACKNOWLEDGED, task, number, role),
                      kind=NoticeKind.PLAN_UNACKNOWLEDGED, assignment_id=task.assignment_id, task_id=task.id,
                      recipient=person.email, role=role, subject=subject, body=body, created_at=now, deliver_at=at)
            for role, person in recipients]


# --- a recorded check-in ------------------------------------------------------------------------------------------


class GoalPercent(NamedTuple):
    """One goal's progress as a check-in recorded it."""

    goal_id: int
    title: str
    percent: int


class RecordedCheckin(NamedTuple):
    """One check-in as the notices about it tell it; `immersion_ends` is set when it fell in the immersion days."""

    checkin_id: int
    author: PersonFacts
    role: str
    at: datetime
    note: str | None
    feedback: str | None
    progress: Sequence[GoalPercent]
    immersion_ends: date | None = None


def checkin_key_prefix(kind: NoticeKind, checkin_id: int) -> str:
    """The start of the keys of one check-in's notices of `kind` (one per role told)."""
    return f"{kind}/{checkin_id}/"


def _checkin_lines(checkin: RecordedCheckin) -> list[str]:
    """The progress per goal, the note and the feedback of a check-in, as lines of a notice."""
    if checkin.progress:
        lines = ["Progress per goal:", *(f"- goal {p.goal_id}, {p.title}: {p.percent}%" for p in checkin.progress)]
    elif checkin.immersion_ends is not None:
        lines = [f"No progress per goal yet: it is asked from {checkin.immersion_ends.isoformat()}, after the "
                 "immersion days."]
    else:
        lines = ["No progress per goal was given."]
    settling_in = "How the assignee and family are settling in" if checkin.immersion_ends is not None else "Note"
    return [*lines, *([f"{settling_in}: {checkin.note}"] if checkin.note else []),
            *([f"Feedback: {checkin.feedback}"] if checkin.feedback else [])]


def checkin_feedback(assignment: AssignmentFacts, assignee: PersonFacts, checkin: RecordedCheckin, *, role: str,
                     recipient: PersonFacts, may_answer: bool, now: datetime) -> NewNotice:
    """A check-in's feedback, told at once with its progress per goal: the other side (assignee <-> host manager),
    who `may_answer` with a check-in of their own, and home, who reads it."""
    assert assignment.id is not None, "check-ins are about stored assignments"
    author = checkin.author
    subject = f"Assignment #{assignment.id} ({assignee.name}): feedback from the {checkin.role}"
    whom = " for you" if may_answer else ""
    opening = (f"{assignment_line(assignment, assignee)}\nThe {checkin.role}, {author.name} <{author.email}>, checked "
               f"in on {checkin.at.date().isoformat()} with feedback{whom}.")
    command = settling_in_command if checkin.immersion_ends is not None else checkin_command
    answer = [f"Answer: {command(assignment.id)}"] if may_answer else []
    return NewNotice(key=f"{checkin_key_prefix(NoticeKind.CHECKIN_FEEDBACK, checkin.checkin_id)}{role}",
                     kind=NoticeKind.CHECKIN_FEEDBACK, assignment_id=assignment.id, task_id=None,
                     recipient=recipient.email, role=role, subject=subject,
                     body="\n".join([opening, *_checkin_lines(checkin), *answer]), created_at=now, deliver_at=now)
