"""`sojourn calendar`: a person's open tasks and upcoming contact periods as one iCalendar file.

The contact periods are the ones planning sends contact_due notices for: a cadence the person is notified of
(a `notify` role they hold), of an assignment whose stage lies in the cadence's range. They run from the period
of the person's today up to the last period that starts on or before the assignment's end date. A cadence whose
stages have not begun yet has no anchor, so it has no events until they begin.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session, col

from engine.domain import inputs
from engine.domain.cadences import CadenceSchedule, counted_from, in_range, range_entered_at
from engine.domain.errors import NotFound
from engine.domain.views import Result
from engine.planning.ical import CalendarEvent, CalendarPeriod, calendar_text, contact_event, in_date_order, task_event
from engine.program.records import AssignmentRecord, load_records
from engine.program.transactions import use_case_transaction
from engine.store import lookups, queries
from engine.store.migration_queries import cadence_starts_of
from engine.store.models import Assignment, Person, StageChange, pk


@dataclass(frozen=True)
class CalendarEntry(Result):
    """One event of a calendar: a day for an all-day event, else an instant in UTC."""

    uid: str
    summary: str
    all_day: bool
    start: date | datetime


@dataclass(frozen=True)
class PersonCalendar(Result):
    """The iCalendar text for one person and its events."""

    person: Person
    events: tuple[CalendarEntry, ...]
    text: str

    def view(self) -> dict[str, Any]:
        # the person is shown by email, name and zone, and the text is the file, not part of the summary
        return {"person": self.person.email, "name": self.person.name, "tz": self.person.tz,
                "events": [e.view() for e in self.events]}


def person_calendar(db: Engine, email: str, *, now: datetime) -> PersonCalendar:
    """The calendar of the person with `email`: every open task they own and each upcoming contact period."""
    address = inputs.email(email, "--person")
    with use_case_transaction(db) as session:
        person = lookups.person_by_email(session, address)
        if person is None:
            raise NotFound(f"--person: no person with email {address}", details=["`sojourn person list` shows them"])
        return calendar_of(session, person, now=now)


def calendar_of(session: Session, person: Person, *, now: datetime) -> PersonCalendar:
    """`person_calendar` in the caller's transaction (a calendar feed reads it in a read-only one)."""
    person_id = pk(person)
    tasks = queries.open_tasks_owned_by(session, person_id)
    involved = {*queries.assignments_involving(session, person_id), *(t.assignment_id for t in tasks)}
    records = {pk(r.assignment): r for r in load_records(session, col(Assignment.id).in_(involved))}
    history = queries.stage_changes_of(session, records)
    starts = cadence_starts_of(session.connection(), records)
    events = [task_event(t, records[t.assignment_id].assignment, records[t.assignment_id].assignee, now)
              for t in tasks]
    for assignment_id, record in records.items():
        events += [contact_event(period, person.tz, record.definition.reminders.local_hour, now)
                   for period in contact_periods(record, history.get(assignment_id, []), person, now,
                                                 {k: at for (a, k), at in starts.items() if a == assignment_id})]
    ordered = in_date_order(events)
    name = f"Sojourn: {person.name}"
    return PersonCalendar(person, tuple(_entry(e) for e in ordered), calendar_text(ordered, tz=person.tz, name=name))


def contact_periods(record: AssignmentRecord, history: list[StageChange], person: Person, now: datetime,
                    starts: Mapping[str, datetime] | None = None) -> Iterator[CalendarPeriod]:
    """The contact periods of `record` that `person` is notified of, from the one running on their today on;
    `starts` holds, by kind, when a workflow migration started a cadence (see `cadences.counted_from`)."""
    definition, assignment = record.definition, record.assignment
    roles = {role for role, holder in record.stakeholders.items() if holder.id == person.id}
    today = now.astimezone(ZoneInfo(person.tz)).date()
    for cadence in definition.cadences:
        partner = record.person_for(cadence.with_role)
        entered = counted_from(range_entered_at(definition, cadence, history), (starts or {}).get(cadence.kind))
        if (roles.isdisjoint(cadence.notify) or partner is None or entered is None
                or not in_range(definition, cadence, assignment.stage)):
            continue
        # Periods are counted in the assignee's zone, as planning counts them.
        schedule = CadenceSchedule.of(definition, cadence, entered, record.assignee.tz, start=assignment.start)
        index = max(schedule.index_of(today), 0)
        while schedule.start(index) <= assignment.end:
            yield CalendarPeriod(assignment, record.assignee, cadence, partner, schedule.start(index),
                                schedule.last_day(index))
            index += 1


def _entry(event: CalendarEvent) -> CalendarEntry:
    start = event.instant()
    return CalendarEntry(uid=event.uid, summary=event.summary, all_day=event.tz is None,
                         start=start.astimezone(UTC) if isinstance(start, datetime) else start)
