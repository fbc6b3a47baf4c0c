"""iCalendar events for tasks and contact periods: stable UIDs, times in the person's zone, one VCALENDAR text.

An event's UID names what the event is (`task-42@sojourn`, `sponsor_contact-7-2027-02-04@sojourn`), so the
file exported today and the one exported next month, or the event attached to a notice, carry the same UID
for the same thing: a calendar that imports them again updates the event instead of adding a second one.
SEQUENCE is the assignment's `row_version`, which every change to the assignment raises, so a client that
compares SEQUENCE on import takes a newer file over an older one; DTSTAMP is when the file was made.

- A task is an all-day event on its due day. The due day is already a date in the owner's zone (the task is
  overdue once it ends there), so no zone conversion can move it to a neighbouring day.
- A contact period is a 30-minute event at the workflow's local hour on the period's first day, in the
  person's zone: when that person's contact_due notice arrives. It marks the period; it books no meeting, so
  it is transparent to free/busy, and its description gives the period's last day.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from engine import notices
from engine.definition import Cadence
from engine.store.models import Assignment, Person, Task

if TYPE_CHECKING:
    from icalendar import Event, Timezone

# icalendar is imported by the functions that build events: planning imports this module, and every command
# would otherwise pay for the import (about 30 ms) whether or not it builds a calendar.

PRODID = "-//Sojourn//Sojourn assignments//EN"
CONTACT_EVENT = timedelta(minutes=30)


@dataclass(frozen=True)
class ContactPeriod:
    """One period of one assignment's cadence: a contact with `partner` is due from `first_day` to `last_day`."""

    assignment: Assignment
    assignee: Person
    cadence: Cadence
    partner: Person
    first_day: date
    last_day: date


def task_uid(task_id: int) -> str:
    return f"task-{task_id}@sojourn"


def contact_uid(assignment_id: int, kind: str, first_day: date) -> str:
    return f"{kind}-{assignment_id}-{first_day.isoformat()}@sojourn"


def task_event(task: Task, assignment: Assignment, assignee: Person, now: datetime) -> Event:
    """An all-day event on the day `task` is due."""
    from icalendar import TRANSP, Event

    assert task.id is not None
    description = (f"{_about(assignment, assignee)}\nTask {task.id} ({task.key}) is due on {task.due_on.isoformat()} "
                   f"and is overdue once that day ends.\nWhen it is done: sojourn task done {task.id}")
    return Event.new(uid=task_uid(task.id), summary=f"Due: {task.title}", description=description,
                     start=task.due_on, end=task.due_on + timedelta(days=1), stamp=now, sequence=assignment.row_version,
                     transparency=TRANSP.TRANSPARENT, categories=["sojourn", "task"])


def contact_event(period: ContactPeriod, tz: str, local_hour: int, now: datetime) -> Event:
    """The event of a contact period at `local_hour` on its first day in time zone `tz`."""
    from icalendar import TRANSP, Event

    a, cadence = period.assignment, period.cadence
    assert a.id is not None
    start = datetime.combine(period.first_day, time(local_hour), tzinfo=ZoneInfo(tz))
    description = f"{_about(a, period.assignee)}\n{_what_is_due(period)}"
    return Event.new(uid=contact_uid(a.id, cadence.kind, period.first_day),
                     summary=f"{cadence.title}: due by {period.last_day.isoformat()}", description=description,
                     start=start, end=start + CONTACT_EVENT, stamp=now, sequence=a.row_version,
                     transparency=TRANSP.TRANSPARENT, categories=["sojourn", cadence.kind])


def _what_is_due(period: ContactPeriod) -> str:
    """The period's own words: a check-in and a pulse are recorded with their commands, a contact is logged."""
    a, cadence, partner = period.assignment, period.cadence, period.partner
    days = f"between {period.first_day.isoformat()} and {period.last_day.isoformat()}"
    if cadence.kind == notices.CHECKIN_CADENCE:
        return (f"A check-in on the goals is due {days}.\n"
                f"Record it: {notices.checkin_command(a.id)}")
    if cadence.kind == notices.PULSE_CADENCE:
        return (f"{period.assignee.name}'s expectancy pulse is due {days}.\n"
                f"Answer: {notices.pulse_command(a.id)}")
    return (f"A {cadence.kind} contact with the {cadence.with_role}, {partner.name} <{partner.email}>, is due "
            f"{days}.\nOnce it has happened: {notices.contact_log_command(a.id, cadence.kind, partner.email)}")


def calendar_text(events: Iterable[Event], *, tz: str, name: str | None = None) -> str:
    """One VCALENDAR (METHOD:PUBLISH) holding `events` in date order, with the VTIMEZONE their TZIDs name."""
    from icalendar import Calendar

    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    if name is not None:
        calendar.add("x-wr-calname", name)
    calendar.add("x-wr-timezone", tz)
    ordered = in_date_order(events)
    for event in ordered:
        calendar.add_component(event)
    if ordered:
        # Only the rules of the years the events fall in: a zone's whole history would make every file long.
        years = [_day(e.start).year for e in ordered]
        first, last = date(min(years), 1, 1), date(max(years) + 1, 1, 1)
        for position, tzid in enumerate(sorted(calendar.get_missing_tzids())):
            if (timezone := _vtimezone(tzid, first, last)) is not None:
                calendar.subcomponents.insert(position, timezone)
    data: bytes = calendar.to_ical()
    return data.decode()


@lru_cache(maxsize=256)
def _vtimezone(tzid: str, first: date, last: date) -> Timezone | None:
    """The VTIMEZONE of `tzid` between two dates (None for a zone icalendar does not know), built once per process.

    Building one walks every hour of the years it spans (about 90 ms); planning attaches a calendar to every
    contact_due notice, so a sweep would otherwise spend most of its time here. Calendars only serialise it.
    """
    from icalendar import Timezone

    try:
        return Timezone.from_tzid(tzid, first_date=first, last_date=last)
    except ValueError:
        return None


def in_date_order(events: Iterable[Event]) -> list[Event]:
    """`events` by the day they start on, then by UID, so the same events always come out in the same order."""
    return sorted(events, key=lambda e: (_day(e.start), str(e.uid)))


def period_calendar(period: ContactPeriod, recipient: Person, local_hour: int, now: datetime) -> str:
    """The iCalendar attachment of a notice that opens a period (contact_due, checkin_due, pulse_due): the period's
    event in the recipient's zone, with the UID the exported calendar gives it."""
    return calendar_text([contact_event(period, recipient.tz, local_hour, now)], tz=recipient.tz)


def _about(assignment: Assignment, assignee: Person) -> str:
    return f"Assignment #{assignment.id} ({assignee.name}, {assignment.home} to {assignment.host})."


def _day(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value
