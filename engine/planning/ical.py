"""iCalendar files for tasks and contact periods: stable UIDs, times in the person's zone, one VCALENDAR text.

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

Every iCalendar text Sojourn writes (`sojourn calendar` and the attachment of every notice that opens a period)
is written here, from a template, and every user-provided value in it goes through `escape_text` and every line
through `fold`. The daemon attaches a calendar to thousands of notices a sweep; building them as icalendar
objects cost two thirds of a sweep, so only the VTIMEZONE blocks come from icalendar, once per zone and years.
The text is what icalendar itself wrote for the same events (a test compares them byte for byte).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

from engine.domain import notices
from engine.domain.definition import Cadence
from engine.store.models import Assignment, Person, Task

# icalendar is imported only to write a VTIMEZONE (and to tell the zones it writes in UTC): planning imports this
# module, and every command would otherwise pay for the import (about 30 ms) whether or not it builds a calendar.

PRODID = "-//Sojourn//Sojourn assignments//EN"
CONTACT_EVENT = timedelta(minutes=30)
CRLF = "\r\n"
FOLD_AT = 75  # octets of a content line, line break excluded (RFC 5545, section 3.1); folded as icalendar folds


@dataclass(frozen=True)
class CalendarPeriod:
    """One period of one assignment's cadence as a calendar shows it: a contact with `partner` is due from
    `first_day` to `last_day`. Beside the period a message names (`notices.ContactPeriod`), an event names the
    assignee and takes its sequence from the assignment's row version."""

    assignment: Assignment
    assignee: Person
    cadence: Cadence
    partner: Person
    first_day: date
    last_day: date


@dataclass(frozen=True)
class CalendarEvent:
    """One VEVENT, its values as people wrote them (escaped when written). `tz` None: an all-day event on
    `start`; otherwise `start` is the wall-clock time in the IANA zone `tz`, for `duration`."""

    uid: str
    summary: str
    description: str
    start: date | datetime
    stamp: datetime
    sequence: int
    categories: tuple[str, ...]
    tz: str | None = None
    duration: timedelta = timedelta(days=1)

    @property
    def day(self) -> date:
        return self.start.date() if isinstance(self.start, datetime) else self.start

    def instant(self) -> date | datetime:
        """The start as an aware UTC instant, or the day of an all-day event."""
        if self.tz is None or not isinstance(self.start, datetime):
            return self.start
        from zoneinfo import ZoneInfo

        return self.start.replace(tzinfo=ZoneInfo(self.tz)).astimezone(UTC)


# --- escaping and folding: the one helper for every iCalendar writer ---------------------------------------------

# What TEXT may not hold once line breaks are escaped: control characters other than HTAB, and the characters
# parsers also take for line ends (NEL, LINE and PARAGRAPH SEPARATOR), which would start a line of their own.
_NOT_TEXT = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def escape_text(value: str) -> str:
    """`value` as an iCalendar TEXT value (RFC 5545, section 3.3.11): backslash, semicolon and comma escaped,
    every line break (CRLF, LF or CR) written `\\n`, any other control character replaced by U+FFFD, so no user
    text can end a property or start one of its own."""
    escaped = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    escaped = escaped.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n")
    return _NOT_TEXT.sub("\ufffd", escaped)


def fold(line: str) -> str:
    """A content line folded as RFC 5545 asks (CRLF and a space before each 75th octet), exactly where icalendar
    folds it: at most 74 octets a line, never between a backslash and the character it escapes."""
    if line.isascii():
        if len(line) < FOLD_AT:
            return line
        return _fold_ascii(line)
    return _fold_octets(line)


def _fold_ascii(line: str) -> str:
    parts, start, limit = [], 0, FOLD_AT - 1
    while len(line) - start > limit:
        end = start + limit
        if line[end - 1] in "\\^":
            end -= 1
        parts.append(line[start:end])
        start = end
    parts.append(line[start:])
    return (CRLF + " ").join(parts)


def _fold_octets(line: str) -> str:
    parts: list[str] = []
    current: list[str] = []
    octets = 0
    for char in line:
        size = len(char.encode())
        if current and octets + size >= FOLD_AT:
            carried = current.pop() if len(current) > 1 and current[-1] in "\\^" else None
            parts.append("".join(current))
            current, octets = ([carried], 1) if carried else ([], 0)
        current.append(char)
        octets += size
    parts.append("".join(current))
    return (CRLF + " ").join(parts)


def content_line(name: str, value: str) -> str:
    """One property, folded and ended; `value` is already in iCalendar form (`escape_text` for TEXT)."""
    return fold(f"{name}:{value}") + CRLF


# --- events ---------------------------------------------------------------------------------------------------


def task_uid(task_id: int) -> str:
    return f"task-{task_id}@sojourn"


def contact_uid(assignment_id: int, kind: str, first_day: date) -> str:
    return f"{kind}-{assignment_id}-{first_day.isoformat()}@sojourn"


def task_event(task: Task, assignment: Assignment, assignee: Person, now: datetime) -> CalendarEvent:
    """An all-day event on the day `task` is due."""
    assert task.id is not None
    description = (f"{_about(assignment, assignee)}\nTask {task.id} ({task.key}) is due on {task.due_on.isoformat()} "
                   f"and is overdue once that day ends.\nWhen it is done: sojourn task done {task.id}")
    return CalendarEvent(uid=task_uid(task.id), summary=f"Due: {task.title}", description=description,
                         start=task.due_on, stamp=now, sequence=assignment.row_version, categories=("sojourn", "task"))


def contact_event(period: CalendarPeriod, tz: str, local_hour: int, now: datetime) -> CalendarEvent:
    """The event of a contact period at `local_hour` on its first day in time zone `tz`."""
    a, cadence = period.assignment, period.cadence
    assert a.id is not None
    return CalendarEvent(uid=contact_uid(a.id, cadence.kind, period.first_day),
                         summary=f"{cadence.title}: due by {period.last_day.isoformat()}",
                         description=f"{_about(a, period.assignee)}\n{_what_is_due(period)}",
                         start=datetime.combine(period.first_day, time(local_hour)), stamp=now,
                         sequence=a.row_version, categories=("sojourn", cadence.kind), tz=tz,
                         duration=CONTACT_EVENT)


def _what_is_due(period: CalendarPeriod) -> str:
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


def in_date_order(events: Iterable[CalendarEvent]) -> list[CalendarEvent]:
    """`events` by the day they start on, then by UID, so the same events always come out in the same order."""
    return sorted(events, key=lambda e: (e.day, e.uid))


# --- writing --------------------------------------------------------------------------------------------------


def calendar_text(events: Iterable[CalendarEvent], *, tz: str, name: str | None = None) -> str:
    """One VCALENDAR (METHOD:PUBLISH) holding `events` in date order, with the VTIMEZONE their TZIDs name."""
    ordered = in_date_order(events)
    head = [content_line("VERSION", "2.0"), content_line("PRODID", PRODID), content_line("CALSCALE", "GREGORIAN"),
            content_line("METHOD", "PUBLISH")]
    if name is not None:
        head.append(content_line("X-WR-CALNAME", escape_text(name)))
    head.append(content_line("X-WR-TIMEZONE", escape_text(tz)))
    zones = sorted({e.tz for e in ordered if e.tz is not None and not _written_in_utc(e.tz)})
    timezones = ""
    if zones:
        # Only the rules of the years the events fall in: a zone's whole history would make every file long.
        years = [e.day.year for e in ordered]
        timezones = "".join(vtimezone_text(zone, min(years), max(years)) for zone in zones)
    return "".join(["BEGIN:VCALENDAR", CRLF, *head, timezones, *(event_text(e) for e in ordered), "END:VCALENDAR",
                    CRLF])


def event_text(event: CalendarEvent) -> str:
    """One VEVENT, its properties in the order icalendar wrote them."""
    return "".join(["BEGIN:VEVENT", CRLF,
                    content_line("SUMMARY", escape_text(event.summary)),
                    content_line(*_moment("DTSTART", event.start, event.tz)),
                    content_line(*_moment("DTEND", event.start + event.duration, event.tz)),
                    content_line("DTSTAMP", event.stamp.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")),
                    content_line("UID", escape_text(event.uid)),
                    content_line("SEQUENCE", str(event.sequence)),
                    content_line("CATEGORIES", ",".join(escape_text(c) for c in event.categories)),
                    content_line("DESCRIPTION", escape_text(event.description)),
                    content_line("TRANSP", "TRANSPARENT"),
                    "END:VEVENT", CRLF])


def _moment(name: str, value: date | datetime, tz: str | None) -> tuple[str, str]:
    """A DTSTART or DTEND: a DATE, a UTC time, or a wall-clock time with the TZID of its (IANA-named) zone."""
    if not isinstance(value, datetime):
        return f"{name};VALUE=DATE", value.strftime("%Y%m%d")
    if tz is None or _written_in_utc(tz):
        return name, value.strftime("%Y%m%dT%H%M%SZ")
    return f"{name};TZID={tz}", value.strftime("%Y%m%dT%H%M%S")


@lru_cache(maxsize=64)
def _written_in_utc(tz: str) -> bool:
    """Whether icalendar writes times of `tz` as UTC (a `Z` time, no VTIMEZONE): UTC and the zones equal to it."""
    from zoneinfo import ZoneInfo

    from icalendar import is_utc

    return bool(is_utc(ZoneInfo(tz)))


@lru_cache(maxsize=256)
def vtimezone_text(tzid: str, first_year: int, last_year: int) -> str:
    """The VTIMEZONE of `tzid` over the years `first_year` to `last_year`, as text ("" for a zone icalendar does
    not know), built once per process.

    Building one walks every hour of the years it spans (about 90 ms) and serialising it folds some thirty lines;
    planning attaches a calendar to every notice that opens a period, so a sweep would otherwise spend most of its
    time here.
    """
    from icalendar import Timezone

    try:
        timezone = Timezone.from_tzid(tzid, first_date=date(first_year, 1, 1), last_date=date(last_year + 1, 1, 1))
    except ValueError:
        return ""
    text: bytes = timezone.to_ical()
    return text.decode()


def period_calendar(period: CalendarPeriod, recipient: Person, local_hour: int, now: datetime) -> str:
    """The iCalendar attachment of a notice that opens a period (contact_due, checkin_due, pulse_due): the period's
    event in the recipient's zone, with the UID the exported calendar gives it."""
    return calendar_text([contact_event(period, recipient.tz, local_hour, now)], tz=recipient.tz)


def _about(assignment: Assignment, assignee: Person) -> str:
    return f"Assignment #{assignment.id} ({assignee.name}, {assignment.home} to {assignment.host})."
