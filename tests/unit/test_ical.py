"""Building iCalendar events: stable UIDs, all-day due days, contact periods at the local hour, VTIMEZONEs."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event

from engine.domain.definition import Cadence, Every
from engine.domain.schedule import local_instant
from engine.planning.ical import CalendarPeriod, calendar_text, contact_event, period_calendar, task_event
from engine.store.models import Assignment, Person, Task

NOW = datetime(2027, 2, 1, 10, 0, tzinfo=UTC)
ASSIGNEE = Person(id=1, email="ana.lima@example.com", name="Ana Lima", tz="America/Sao_Paulo")
SPONSOR = Person(id=2, email="sara.sponsor@example.com", name="Sara Sponsor", tz="Europe/Berlin")
ASSIGNMENT = Assignment(id=7, workflow_id=1, assignee_id=1, stage="orientation", home="BR", host="DE",
                        start=date(2027, 1, 4), end=date(2028, 6, 30), stage_entered_at=NOW, created_at=NOW,
                        row_version=5)
SPONSOR_CONTACT = Cadence(kind="sponsor_contact", title="Monthly sponsor contact", with_role="sponsor",
                          notify=("sponsor", "assignee"), every=Every(months=1), from_stage="orientation",
                          until_stage="repatriation")


def _task(**overrides: object) -> Task:
    fields: dict[str, object] = {
        "id": 42, "assignment_id": 7, "key": "family_orientation", "title": "Family orientation",
        "stage": "orientation", "owner_role": "mobility", "owner_id": 3, "due_on": date(2027, 3, 1),
        "due_at": datetime(2027, 3, 1, 18, 30, tzinfo=UTC)}
    return Task(**{**fields, **overrides})


def _period(first: date, last: date) -> CalendarPeriod:
    return CalendarPeriod(ASSIGNMENT, ASSIGNEE, SPONSOR_CONTACT, SPONSOR, first, last)


def _parsed(text: str) -> Calendar:
    return Calendar.from_ical(text)


def test_task_event_is_an_all_day_event_on_the_due_day_with_a_uid_naming_the_task() -> None:
    """A task becomes an all-day event from its due day to the next, UID task-<id>@sojourn, stamped at `now`."""
    (event,) = _parsed(calendar_text([task_event(_task(), ASSIGNMENT, ASSIGNEE, NOW)], tz="Asia/Kolkata")).events

    assert event.uid == "task-42@sojourn"
    assert (event.start, event.end) == (date(2027, 3, 1), date(2027, 3, 2))
    assert event["DTSTAMP"].dt == NOW
    assert event["SEQUENCE"] == ASSIGNMENT.row_version
    assert str(event["TRANSP"]) == "TRANSPARENT"
    assert "Due: Family orientation" in str(event["SUMMARY"])
    assert "sojourn task done 42" in str(event["DESCRIPTION"])


def test_contact_event_starts_at_the_local_hour_of_the_first_day_in_the_persons_zone() -> None:
    """The period's event starts at 09:00 in the zone asked for: the instant that person's contact_due arrives."""
    event = contact_event(_period(date(2027, 2, 4), date(2027, 3, 3)), "Europe/Berlin", 9, NOW)
    (parsed,) = _parsed(calendar_text([event], tz="Europe/Berlin")).events

    assert parsed.start.tzinfo is not None
    assert str(parsed.start.tzinfo) == "Europe/Berlin"
    assert parsed.start.astimezone(ZoneInfo("Europe/Berlin")).time() == time(9)
    assert parsed.start == local_instant(date(2027, 2, 4), 9, "Europe/Berlin")
    assert (parsed.end - parsed.start).total_seconds() == 30 * 60
    assert parsed["SEQUENCE"] == ASSIGNMENT.row_version
    assert parsed.uid == "sponsor_contact-7-2027-02-04@sojourn"
    assert "due by 2027-03-03" in str(parsed["SUMMARY"])
    assert "sojourn contact log 7 --kind sponsor_contact --with sara.sponsor@example.com" in str(
        parsed["DESCRIPTION"])


def test_contact_events_keep_the_local_hour_across_daylight_saving_time() -> None:
    """Periods before and after Berlin's clock change both start at 09:00 local, so 08:00 and then 07:00 UTC."""
    winter = contact_event(_period(date(2027, 3, 4), date(2027, 4, 3)), "Europe/Berlin", 9, NOW)
    summer = contact_event(_period(date(2027, 4, 4), date(2027, 5, 3)), "Europe/Berlin", 9, NOW)
    events = _parsed(calendar_text([summer, winter], tz="Europe/Berlin")).events

    assert [e.start.astimezone(UTC).hour for e in events] == [8, 7]
    assert {e.start.astimezone(ZoneInfo("Europe/Berlin")).hour for e in events} == {9}


def test_calendar_names_the_person_publishes_and_defines_the_zone_its_events_use() -> None:
    """The file is METHOD:PUBLISH with X-WR-CALNAME, and holds a VTIMEZONE for every TZID its events name."""
    events = [contact_event(_period(date(2027, 2, 4), date(2027, 3, 3)), "America/Sao_Paulo", 9, NOW),
              task_event(_task(), ASSIGNMENT, ASSIGNEE, NOW)]
    calendar = _parsed(calendar_text(events, tz="America/Sao_Paulo", name="Sojourn: Ana Lima"))

    assert str(calendar["METHOD"]) == "PUBLISH"
    assert str(calendar["X-WR-CALNAME"]) == "Sojourn: Ana Lima"
    assert str(calendar["X-WR-TIMEZONE"]) == "America/Sao_Paulo"
    assert [str(z["TZID"]) for z in calendar.walk("VTIMEZONE")] == ["America/Sao_Paulo"]
    assert [e.uid for e in calendar.events] == ["sponsor_contact-7-2027-02-04@sojourn", "task-42@sojourn"]


def test_uids_name_what_the_event_is_so_rebuilding_it_gives_the_same_uid() -> None:
    """Built again later or for another zone, an event keeps its UID; another task or period gets another."""
    def uids(now: datetime, tz: str) -> list[str]:
        built = [task_event(_task(), ASSIGNMENT, ASSIGNEE, now), task_event(_task(id=43), ASSIGNMENT, ASSIGNEE, now),
                 contact_event(_period(date(2027, 2, 4), date(2027, 3, 3)), tz, 9, now),
                 contact_event(_period(date(2027, 3, 4), date(2027, 4, 3)), tz, 9, now)]
        return [str(e.uid) for e in built]

    first = uids(NOW, "Europe/Berlin")
    assert uids(datetime(2027, 6, 1, tzinfo=UTC), "America/Sao_Paulo") == first
    assert len(set(first)) == 4


def test_period_calendar_holds_the_one_event_in_the_recipients_zone() -> None:
    """A notice's attachment is one published event at the recipient's local hour, and no calendar name."""
    calendar = _parsed(period_calendar(_period(date(2027, 2, 4), date(2027, 3, 3)), ASSIGNEE, 9, NOW))

    (event,) = calendar.events
    assert isinstance(event, Event)
    assert str(calendar["METHOD"]) == "PUBLISH"
    assert "X-WR-CALNAME" not in calendar
    assert event.start == local_instant(date(2027, 2, 4), 9, "America/Sao_Paulo")
    assert event.uid == "sponsor_contact-7-2027-02-04@sojourn"


def test_commands_that_build_no_calendar_do_not_import_icalendar() -> None:
    """Loading the use cases (and planning, which imports this module) leaves icalendar unimported until needed."""
    probe = ("import sys, engine.program.assignments, engine.program.imports, engine.program.tasks, "
             "engine.program.contacts, engine.planning.planner; print('icalendar' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)

    assert done.stdout.strip() == "False"


HOSTILE = "Review\r\nEND:VEVENT\nBEGIN:VEVENT\rSUMMARY:forged;x,y\\N\\\x0bATTENDEE:mailto:evil@example.com\u2028X-Y:z"


def _unescaped(text: str) -> str:
    """A TEXT value as RFC 5545 reads it back."""
    return re.sub(r"\\([\\;,nN])", lambda m: "\n" if m[1] in "nN" else m[1], text)


def _property_names(calendar: Calendar) -> list[str]:
    return [name for component in calendar.walk() for name in component]


def test_hostile_text_stays_one_property_value_and_adds_no_properties() -> None:
    """Line breaks, `;`, `,` and `\\` in a title, a name and a calendar name come back intact as their one value."""
    hostile = Person(id=1, email="ana.lima@example.com", name=HOSTILE, tz="America/Sao_Paulo")
    plain = [task_event(_task(), ASSIGNMENT, ASSIGNEE, NOW),
             contact_event(_period(date(2027, 2, 4), date(2027, 3, 3)), "Europe/Berlin", 9, NOW)]
    forged = [task_event(_task(title=HOSTILE), ASSIGNMENT, hostile, NOW),
              contact_event(CalendarPeriod(ASSIGNMENT, hostile, SPONSOR_CONTACT, hostile, date(2027, 2, 4),
                                          date(2027, 3, 3)), "Europe/Berlin", 9, NOW)]
    expected = _parsed(calendar_text(plain, tz="Europe/Berlin", name="Sojourn: Ana Lima"))
    calendar = _parsed(calendar_text(forged, tz="Europe/Berlin", name=f"Sojourn: {HOSTILE}"))

    kept = HOSTILE.replace("\r\n", "\n").replace("\r", "\n").replace("\x0b", "\ufffd").replace("\u2028", "\ufffd")
    assert _property_names(calendar) == _property_names(expected)
    assert [e.uid for e in calendar.events] == ["sponsor_contact-7-2027-02-04@sojourn", "task-42@sojourn"]
    assert str(calendar.events[1]["SUMMARY"]) == f"Due: {kept}"
    assert f"({kept}, BR to DE)" in str(calendar.events[0]["DESCRIPTION"])
    assert f"{kept} <ana.lima@example.com>" in str(calendar.events[0]["DESCRIPTION"])
    # icalendar leaves X-* values as written; clients read X-WR-CALNAME as TEXT, so unescape it as TEXT
    assert _unescaped(str(calendar["X-WR-CALNAME"])) == f"Sojourn: {kept}"


def test_hostile_text_is_escaped_the_same_with_assertions_off() -> None:
    """Under `python -O` a line break in a name still cannot start a line of the calendar."""
    probe = ("from datetime import UTC, datetime; from engine.planning.ical import calendar_text; "
             "print(calendar_text([], tz='UTC', name='x\\nMETHOD:CANCEL'), end='')")
    done = subprocess.run([sys.executable, "-O", "-c", probe], capture_output=True, text=True, check=True)

    assert "X-WR-CALNAME:x\\nMETHOD:CANCEL\r\n" in done.stdout.replace("\n", "\r\n").replace("\r\r\n", "\r\n")
    assert [line for line in done.stdout.splitlines() if line.startswith("METHOD:")] == ["METHOD:PUBLISH"]
