"""Fixed inputs of the iCalendar byte fixture: periods, zones and recipients whose attachments were captured.

`tests/unit/fixtures/ical_bytes.json` holds the text `engine.planning.ical` wrote for each case when the attachments
were still built through icalendar's objects; the tests compare today's output with it byte for byte.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from engine.domain.definition import Cadence, Every
from engine.planning.ical import CalendarPeriod, calendar_text, contact_event, period_calendar, task_event
from engine.store.models import Assignment, Person, Task

NOW = datetime(2027, 2, 1, 10, 0, tzinfo=UTC)
LATER = datetime(2027, 12, 30, 23, 59, 58, 654321, tzinfo=UTC)  # microseconds are not written
ASSIGNEE = Person(id=1, email="ana.lima@example.com", name="Ana Lima", tz="America/Sao_Paulo")
SPONSOR = Person(id=2, email="sara.sponsor@example.com", name="Sara Sponsor", tz="Europe/Berlin")
HOST = Person(id=3, email="hugo.host@example.com", name="Hugo Host", tz="America/New_York")
COACH = Person(id=4, email="kavya.coach@example.com", name="Kavya Coach", tz="Asia/Kolkata")
UTC_PERSON = Person(id=5, email="tom.talent@example.com", name="Tom Talent", tz="UTC")
ETC_PERSON = Person(id=6, email="mo.mobility@example.com", name="Mo Mobility", tz="Etc/GMT+5")
# commas, semicolons, a backslash and letters of several bytes, long enough to fold in the middle of escapes
PUNCTUATED = Person(id=7, email="zoe.odegard@example.com", name="Zoë Ødegård-Núñez; Jr., \\山田\\ 太郎, Łukasz",
                    tz="Europe/Berlin")
ASSIGNMENT = Assignment(id=7, workflow_id=1, assignee_id=1, stage="orientation", home="BR", host="DE",
                        start=date(2027, 1, 4), end=date(2028, 6, 30), stage_entered_at=NOW, created_at=NOW,
                        row_version=5)
BIG_ASSIGNMENT = Assignment(id=123456, workflow_id=1, assignee_id=7, stage="coaching", home="IN", host="US",
                            start=date(2027, 1, 4), end=date(2028, 6, 30), stage_entered_at=NOW, created_at=NOW,
                            row_version=0)
SPONSOR_CONTACT = Cadence(kind="sponsor_contact", title="Monthly contact with the executive sponsor at home base",
                          with_role="sponsor", notify=("sponsor", "assignee"), every=Every(months=1),
                          from_stage="orientation", until_stage="repatriation", grace_days=7)
CHECKIN = Cadence(kind="checkin", title="Monthly check-in on goals", with_role="host_manager",
                  notify=("assignee", "host_manager", "sending_manager"), every=Every(months=1),
                  from_stage="alignment_meetings", until_stage="repatriation", grace_days=7)
PULSE = Cadence(kind="pulse", title="Quarterly expectancy pulse", with_role="assignee", notify=("assignee",),
                every=Every(months=3), from_stage="orientation", until_stage="repatriation", grace_days=14)
COACHING = Cadence(kind="coaching", title="Coaching session; with the coach, in person", with_role="coach",
                   notify=("coach", "assignee"), every=Every(weeks=4), from_stage="coaching", until_stage="coaching",
                   grace_days=7)

# (case, assignment, assignee, cadence, partner, first day, last day, recipient, local hour, now)
PERIODS: list[tuple[str, Assignment, Person, Cadence, Person, date, date, Person, int, datetime]] = [
    ("sponsor-berlin-winter", ASSIGNMENT, ASSIGNEE, SPONSOR_CONTACT, SPONSOR, date(2027, 2, 4), date(2027, 3, 3),
     SPONSOR, 9, NOW),
    ("sponsor-sao-paulo", ASSIGNMENT, ASSIGNEE, SPONSOR_CONTACT, SPONSOR, date(2027, 2, 4), date(2027, 3, 3),
     ASSIGNEE, 9, NOW),
    ("sponsor-berlin-summer", ASSIGNMENT, ASSIGNEE, SPONSOR_CONTACT, SPONSOR, date(2027, 7, 31), date(2027, 8, 30),
     SPONSOR, 9, NOW),
    ("checkin-new-york-dst-gap", ASSIGNMENT, ASSIGNEE, CHECKIN, HOST, date(2027, 3, 14), date(2027, 4, 13), HOST, 2,
     NOW),
    ("checkin-sao-paulo", ASSIGNMENT, ASSIGNEE, CHECKIN, HOST, date(2027, 5, 31), date(2027, 6, 29), ASSIGNEE, 9,
     NOW),
    ("pulse-kolkata-new-year", ASSIGNMENT, ASSIGNEE, PULSE, ASSIGNEE, date(2027, 12, 31), date(2028, 3, 30),
     COACH, 9, LATER),
    ("pulse-utc", ASSIGNMENT, ASSIGNEE, PULSE, ASSIGNEE, date(2027, 4, 4), date(2027, 7, 3), UTC_PERSON, 9, NOW),
    ("coaching-etc-zone", BIG_ASSIGNMENT, PUNCTUATED, COACHING, COACH, date(2027, 10, 30), date(2027, 11, 26),
     ETC_PERSON, 17, LATER),
    ("coaching-punctuated-names", BIG_ASSIGNMENT, PUNCTUATED, COACHING, PUNCTUATED, date(2028, 1, 1),
     date(2028, 1, 28), PUNCTUATED, 9, LATER),
    ("sponsor-punctuated-partner", ASSIGNMENT, PUNCTUATED, SPONSOR_CONTACT, PUNCTUATED, date(2027, 2, 4),
     date(2027, 3, 3), ASSIGNEE, 23, NOW),
]


def _task(task_id: int, title: str, due_on: date) -> Task:
    return Task(id=task_id, assignment_id=7, key="family_orientation", title=title, stage="orientation",
                owner_role="mobility", owner_id=3, due_on=due_on, due_at=NOW)


def period_texts() -> dict[str, str]:
    """The attachment of every case of PERIODS, by case."""
    return {case: period_calendar(CalendarPeriod(assignment, assignee, cadence, partner, first, last), recipient,
                                  hour, now)
            for case, assignment, assignee, cadence, partner, first, last, recipient, hour, now in PERIODS}


def person_calendar_text() -> str:
    """A person's calendar over two years: tasks and contact periods in their zone, under a calendar name."""
    events = [task_event(_task(42, "Orient the family on social security, driving, shopping and schools",
                               date(2027, 3, 1)), ASSIGNMENT, ASSIGNEE, NOW),
              task_event(_task(43, "Réunion; «alignment», step 2\\3", date(2028, 2, 29)), ASSIGNMENT, PUNCTUATED,
                         NOW),
              *(contact_event(CalendarPeriod(ASSIGNMENT, ASSIGNEE, SPONSOR_CONTACT, SPONSOR, first, last),
                              "Europe/Berlin", 9, NOW)
                for first, last in ((date(2027, 10, 31), date(2027, 11, 29)), (date(2028, 1, 31),
                                                                             date(2028, 2, 28))))]
    return calendar_text(events, tz="Europe/Berlin", name="Sojourn: Sara Sponsor")


def all_texts() -> dict[str, str]:
    return {**period_texts(), "person-calendar-two-years": person_calendar_text()}
