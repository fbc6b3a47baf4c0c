"""Reminder steps of a task: which notices an open task brings on which day, and which of them to send at an instant.

For an open task due on day D (a calendar day in its owner's time zone), with the workflow's
`reminders` (H = local_hour, S = due_soon_days, E = escalation_days), each step falls due at H:00 in the
owner's time zone on its day:

    step                day              to                                              key
    task_due_soon       D - S (S > 0)    the owner                                       task_due_soon/{task}
    task_due            D                the owner                                       task_due/{task}
    task_overdue        D + 1            the owner                                       task_overdue/{task}
    escalation i        D + 1 + E[i-1]   escalate_to and managers[owner role], if any    escalation/{task}/{i}/{role}

{task} is the task's id, followed by `.N` once its owner or due date has moved N times (`Task.reminder_round`),
so a re-planned task's steps go out again under keys of their own.
(D + 1 is the first day the task is overdue, so escalation i comes E[i-1] days after the task fell overdue;
with the built-in [3, 10] that is D + 4 and D + 11.) Escalations go out at the instant of the step, which
is the owner's local hour: an escalation is about how long the owner has let the task run over. So an
escalation dated before the task was created is dropped: a task created already overdue (due 14 days
before a start that is 5 days away) brings its owner one task_overdue and nobody an escalation about it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from engine.domain.definition import Reminders
from engine.domain.notices import OWNER_STEPS, NoticeKind
from engine.domain.schedule import local_instant


@dataclass(frozen=True)
class ReminderStep:
    """One step of a task's reminder schedule: what is sent, on which day, at which instant."""

    kind: NoticeKind
    day: date
    at: datetime
    number: int = 0  # escalation steps count from 1
    overdue_days: int = 0  # for escalations: days since the task fell overdue


def task_steps(due_on: date, reminders: Reminders, tz: str) -> list[ReminderStep]:
    """Every reminder step of a task due on `due_on` whose owner lives in `tz`, in time order."""
    days: list[tuple[NoticeKind, date, int, int]] = []
    if reminders.due_soon_days > 0:
        days.append((NoticeKind.TASK_DUE_SOON, due_on - timedelta(days=reminders.due_soon_days), 0, 0))
    overdue_on = due_on + timedelta(days=1)
    days += [(NoticeKind.TASK_DUE, due_on, 0, 0), (NoticeKind.TASK_OVERDUE, overdue_on, 0, 0)]
    days += [(NoticeKind.ESCALATION, overdue_on + timedelta(days=after), number, after)
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
        steps = [s for s in steps if s.kind != NoticeKind.ESCALATION or s.at >= created_at]
    come = [s for s in steps if s.at <= now]
    owner = [s for s in come if s.kind in OWNER_STEPS]
    chosen = owner[-1:] + [s for s in come if s.kind == NoticeKind.ESCALATION]
    upcoming = [s.at for s in steps if s.at > now]
    return chosen, min(upcoming, default=None)
