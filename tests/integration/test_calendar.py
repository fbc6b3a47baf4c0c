"""`sojourn calendar` on both backends, and the contact_due email that carries the period's event."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from icalendar import Calendar, Event
from sqlalchemy import Engine
from sqlmodel import select

from engine.delivery.dispatch import dispatch_due
from engine.domain.cadences import add_months_clamped
from engine.domain.schedule import local_instant
from engine.domain.views import views
from engine.planning.planner import plan
from engine.program import advance, assignments, people, plans
from engine.program.tasks import complete_task, list_tasks
from engine.store.db import transaction
from engine.store.models import Outbox
from integration.conftest import Sojourn
from notifiers import EmailNotifier
from tests.support.scenarios import advance_to
from tests.support.smtp import smtp_server

ZONES = {"assignee": "America/Sao_Paulo", "sponsor": "Europe/Berlin", "mobility": "Asia/Kolkata"}
ENTERED = local_instant(date(2027, 1, 31), 12, ZONES["assignee"])  # orientation begins; periods clamp to month ends
END = date(2027, 6, 30)
MONTH_ENDS = [add_months_clamped(date(2027, 1, 31), k) for k in range(6)]  # the periods that start by END


def _email(role: str) -> str:
    return f"{role.replace('_', '.')}@example.com"


@pytest.fixture
def assignment(db: Engine) -> int:
    """A leadership-development assignment that entered orientation at ENTERED, with the sponsor in Berlin."""
    roles = ("assignee", "sending_manager", "host_manager", "coach", "sponsor", "talent", "mobility")
    for role in roles:
        people.add_person(db, _email(role), name=role.replace("_", " ").title(), tz=ZONES.get(role, "UTC"))
    spec = assignments.AssignmentSpec(workflow="leadership-development", assignee=_email("assignee"), home="BR",
                                      host="DE", start="2027-01-04", end=END.isoformat(),
                                      stakeholders={r: _email(r) for r in roles if r != "assignee"})
    created = ENTERED - timedelta(days=1)
    assignment_id = assignments.create_assignment(db, spec, actor="admin", now=created).id
    while (shown := assignments.show_assignment(db, assignment_id, now=ENTERED).view())["stage"] != "orientation":
        for task in shown["tasks"]:
            if task["stage"] == shown["stage"] and task["status"] == "open":
                complete_task(db, task["id"], note=None, actor="admin", now=created)
        if shown["stage"] == "plan_agreed":
            plans.add_goal(db, assignment_id, title="Lead the regional team", measure="engagement", target="75",
                           due="2027-06-01", actor="admin", now=created)
            for role in ("assignee", "sending_manager", "host_manager", "talent", "mobility"):
                plans.sign_plan(db, assignment_id, role=role, by=None, actor="admin", now=created)
        advance.advance(db, assignment_id, to=None, reason=None, actor="admin", now=ENTERED)
    return assignment_id


def _export(on_db: Sojourn, role: str, at: datetime, tmp_path: Path) -> Calendar:
    path = tmp_path / f"{role}-{at:%Y%m%d%H%M}.ics"
    with freeze_time(at):
        outcome = on_db("calendar", "--person", _email(role), "--output", str(path))
    assert outcome.code == 0, outcome.stderr
    return Calendar.from_ical(path.read_bytes())


def _contact_events(calendar: Calendar) -> list[tuple[str, datetime]]:
    return [(str(e.uid), e.start) for e in calendar.events if str(e.uid).startswith("sponsor_contact-")]


def test_calendar_shows_each_contact_period_at_nine_in_the_persons_zone(
        on_db: Sojourn, assignment: int, tmp_path: Path) -> None:
    """The sponsor's file has one event per period up to the end date, at 09:00 Berlin time on the clamped day."""
    calendar = _export(on_db, "sponsor", ENTERED + timedelta(hours=1), tmp_path)

    events = _contact_events(calendar)
    berlin = [start.astimezone(ZoneInfo("Europe/Berlin")) for _, start in events]
    assert [t.date() for t in berlin] == MONTH_ENDS
    assert {t.time() for t in berlin} == {time(9)}
    assert [start.astimezone(UTC).hour for _, start in events] == [8, 8, 7, 7, 7, 7]  # summer time from 28 March
    assert [uid for uid, _ in events] == [f"sponsor_contact-{assignment}-{d.isoformat()}@sojourn" for d in MONTH_ENDS]
    assert str(calendar["X-WR-CALNAME"]) == "Sojourn: Sponsor"
    assert [str(z["TZID"]) for z in calendar.walk("VTIMEZONE")] == ["Europe/Berlin"]


def test_calendar_event_falls_at_the_instant_the_persons_contact_due_notice_is_sent(
        on_db: Sojourn, db: Engine, assignment: int, tmp_path: Path) -> None:
    """For sponsor and assignee alike, the current period's event starts when planning delivers their notice."""
    at = ENTERED + timedelta(days=1)
    with transaction(db) as session:
        plan(session, at)
        due = {row.role: row for row in session.exec(select(Outbox).where(Outbox.kind == "contact_due"))
               if row.key.startswith(f"contact_due/{assignment}/sponsor_contact/")}
    for role in ("sponsor", "assignee"):
        first_uid, first_start = _contact_events(_export(on_db, role, at, tmp_path))[0]
        assert first_start == due[role].deliver_at
        assert first_uid == f"sponsor_contact-{assignment}-{due[role].key.split('/')[3]}@sojourn"


def test_checkin_and_pulse_periods_say_what_to_record_not_a_contact_to_log(
        on_db: Sojourn, db: Engine, assignment: int, tmp_path: Path) -> None:
    """The assignee's check-in and pulse periods name the check-in and the pulse with their commands; only a
    contact cadence's period asks for `contact log`."""
    advance_to(db, assignment, "alignment_meetings", ENTERED + timedelta(hours=1))  # where check-ins begin
    calendar = _export(on_db, "assignee", ENTERED + timedelta(hours=2), tmp_path)
    described = {str(e.uid).split("-")[0]: str(e.get("description")) for e in calendar.events}
    assert {"checkin", "pulse", "sponsor_contact"} <= described.keys()
    assert "A check-in on the goals is due between" in described["checkin"]
    assert f"Record it: sojourn checkin {assignment} --by YOUR_EMAIL" in described["checkin"]
    assert "Assignee's expectancy pulse is due" in described["pulse"]
    assert f"Answer: sojourn pulse {assignment} --by YOUR_EMAIL" in described["pulse"]
    assert all("contact log" not in described[kind] for kind in ("checkin", "pulse"))
    assert f"sojourn contact log {assignment} --kind sponsor_contact --with {_email('sponsor')}" in \
        described["sponsor_contact"]


def test_calendar_uids_stay_the_same_across_runs(on_db: Sojourn, assignment: int, tmp_path: Path) -> None:
    """Exporting again keeps every UID; a month later the past period is gone and the others keep theirs."""
    at = ENTERED + timedelta(hours=1)
    first, again = (_export(on_db, "sponsor", at, tmp_path), _export(on_db, "sponsor", at + timedelta(hours=1),
                                                                      tmp_path))
    later = _export(on_db, "sponsor", local_instant(date(2027, 3, 1), 12, "Europe/Berlin"), tmp_path)

    uids = [str(e.uid) for e in first.events]
    assert [str(e.uid) for e in again.events] == uids
    assert [e.start for e in again.events] == [e.start for e in first.events]
    assert [uid for uid, _ in _contact_events(later)] == [uid for uid, _ in _contact_events(first)][1:]


def test_calendar_sequence_rises_when_the_assignment_changes(
        on_db: Sojourn, db: Engine, assignment: int, tmp_path: Path) -> None:
    """After a change to the assignment the same events come back with the same UIDs and a higher SEQUENCE."""
    at = ENTERED + timedelta(hours=1)
    before = {str(e.uid): int(e["SEQUENCE"]) for e in _export(on_db, "sponsor", at, tmp_path).events}
    plans.add_goal(db, assignment, title="Win two key accounts", measure="accounts", target="2", due="2027-06-01",
                   actor="admin", now=at)

    after = {str(e.uid): int(e["SEQUENCE"]) for e in _export(on_db, "sponsor", at, tmp_path).events}

    assert after.keys() == before.keys()
    assert all(after[uid] > before[uid] for uid in before)


def test_calendar_lists_open_tasks_as_all_day_events_on_their_due_days(
        on_db: Sojourn, db: Engine, assignment: int, tmp_path: Path) -> None:
    """Each open task the person owns is an all-day event on its due day; a task done drops out of the next file."""
    at = ENTERED + timedelta(hours=1)
    tasks = views(list_tasks(db, now=at, owner=_email("mobility"), status="open"))
    assert len(tasks) >= 2

    events = {str(e.uid): e for e in _export(on_db, "mobility", at, tmp_path).events}
    assert {uid: e.start for uid, e in events.items()} == {
        f"task-{t['id']}@sojourn": date.fromisoformat(t["due_on"]) for t in tasks}
    assert all(e.end - e.start == timedelta(days=1) for e in events.values())

    complete_task(db, tasks[0]["id"], note=None, actor="admin", now=at)
    remaining = {str(e.uid) for e in _export(on_db, "mobility", at, tmp_path).events}
    assert remaining == set(events) - {f"task-{tasks[0]['id']}@sojourn"}


def test_calendar_prints_the_file_on_stdout_and_a_summary_with_json(on_db: Sojourn, assignment: int) -> None:
    """Without --output the iCalendar text goes to stdout; --json prints one document listing the same events."""
    with freeze_time(ENTERED + timedelta(hours=1)):
        printed = on_db("calendar", "--person", _email("assignee"))
        summary = on_db("calendar", "--person", _email("assignee"), "--json")

    assert printed.code == summary.code == 0
    uids = [str(e.uid) for e in Calendar.from_ical(printed.stdout).events]
    shown = json.loads(summary.stdout)
    assert shown["person"] == _email("assignee")
    assert shown["tz"] == "America/Sao_Paulo"
    assert shown["output"] is None
    assert [e["uid"] for e in shown["events"]] == uids
    assert shown["events"][0]["start"] == local_instant(MONTH_ENDS[0], 9, "America/Sao_Paulo").isoformat()
    assert {e["all_day"] for e in shown["events"]} == {False}


def test_calendar_of_a_person_without_assignments_is_an_empty_valid_calendar(on_db: Sojourn, tmp_path: Path) -> None:
    """Someone who takes part in nothing gets a named calendar with no events."""
    assert on_db("person", "add", "nobody@example.com", "--name", "No Body").code == 0
    calendar = Calendar.from_ical(on_db("calendar", "--person", "nobody@example.com").stdout)

    assert calendar.events == []
    assert str(calendar["X-WR-CALNAME"]) == "Sojourn: No Body"


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--person", "ghost@example.com"], 1, "no person with email ghost@example.com"),
    (["--person", "not-an-email"], 2, "is not an email address"),
    (["--person", "ana.lima@example.com", "--output", "/nonexistent/dir/a.ics"], 2, "cannot write"),
])
def test_calendar_refuses_unknown_people_bad_emails_and_unwritable_files(
        on_db: Sojourn, args: list[str], code: int, message: str) -> None:
    """A user error is an `Error:` line and its exit code, and nothing is written to stdout."""
    assert on_db("person", "add", "ana.lima@example.com", "--name", "Ana Lima").code == 0

    outcome = on_db("calendar", *args)

    assert outcome.code == code
    assert outcome.stderr.startswith("Error: ")
    assert message in outcome.stderr
    assert outcome.stdout == ""


def _planned_and_mailed(db: Engine, at: datetime) -> list[EmailMessage]:
    """Plan at `at`, then deliver what is due a day later through a real SMTP server; the messages it received."""
    with transaction(db) as session:
        plan(session, at)
    with smtp_server() as (inbox, port):
        notifier = EmailNotifier("127.0.0.1", port, "sojourn@example.com")
        try:
            dispatch_due(db, [notifier], holder="tester", now=at + timedelta(days=1))
        finally:
            notifier.close()
    return inbox.messages


def _attached_event(message: EmailMessage) -> Event:
    (attachment,) = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert attachment.get_param("method") == "PUBLISH"
    payload = attachment.get_payload(decode=True)
    assert isinstance(payload, bytes)
    (attached,) = Calendar.from_ical(payload).events
    return attached


def test_checkin_and_pulse_due_emails_carry_their_periods_event(on_db: Sojourn, db: Engine, assignment: int,
                                                                 tmp_path: Path) -> None:
    """The assignee's checkin_due and pulse_due emails attach the period's event, as its calendar file has it."""
    began = ENTERED + timedelta(hours=1)
    advance_to(db, assignment, "alignment_meetings", began)  # where check-ins begin
    messages = [m for m in _planned_and_mailed(db, began) if m["To"] == _email("assignee")]
    exported = {str(e.uid): e.start for e in _export(on_db, "assignee", began, tmp_path).events}
    for kind in ("checkin_due", "pulse_due"):
        (message,) = [m for m in messages if m["X-Sojourn-Key"].startswith(f"{kind}/")]
        attached = _attached_event(message)
        assert str(attached.uid).startswith(f"{kind.removesuffix('_due')}-{assignment}-")
        assert exported[str(attached.uid)] == attached.start
    assert all(not list(m.iter_attachments()) for m in messages if m["X-Sojourn-Key"].startswith("stage_changed/"))


def test_contact_due_email_carries_the_event_of_the_exported_calendar(
        on_db: Sojourn, db: Engine, assignment: int, tmp_path: Path) -> None:
    """The sponsor's contact_due email attaches the period's event with the UID and start of their calendar file."""
    at = ENTERED + timedelta(days=1)
    (message,) = [m for m in _planned_and_mailed(db, at) if m["To"] == _email("sponsor")
                  and m["X-Sojourn-Key"].startswith("contact_due/")]
    (attachment,) = [p for p in message.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert attachment.get_param("method") == "PUBLISH"
    payload = attachment.get_payload(decode=True)
    assert isinstance(payload, bytes)
    (attached,) = Calendar.from_ical(payload).events
    exported = _contact_events(_export(on_db, "sponsor", at, tmp_path))[0]
    assert (str(attached.uid), attached.start) == exported
    assert str(attached.start.tzinfo) == "Europe/Berlin"
