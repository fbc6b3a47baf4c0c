"""Digests against a real database and a real SMTP server: held notices, one message a period, immediate notices."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from engine.delivery.dispatch import dispatch_due
from engine.delivery.links import LinkSigner
from engine.domain.notices import NewNotice, NoticeKind
from engine.domain.views import views
from engine.planning.forecast import forecast_assignments
from engine.program import assignments, digests, tasks
from engine.program.people import list_people
from engine.store import queries
from engine.store.db import transaction
from engine.store.models import Outbox
from notifiers import EmailNotifier, close_notifiers
from tests.integration.conftest import Sojourn
from tests.support.cast import CAST
from tests.support.scenarios import quiet_assignment
from tests.support.smtp import Mailbox, smtp_server

COACH, _, COACH_TZ = CAST["coach"]  # Europe/Berlin: the workflow's 09:00 is 08:00 UTC in winter
SIGNER = LinkSigner("test secret", "https://sojourn.example.com", timedelta(days=14))
MONDAY = datetime(2027, 1, 4, 10, 0, tzinfo=UTC)
TUESDAY_DIGEST = datetime(2027, 1, 5, 8, 0, tzinfo=UTC)
NEXT_MONDAY_DIGEST = datetime(2027, 1, 11, 8, 0, tzinfo=UTC)


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, EmailNotifier]]:
    with smtp_server() as (handler, port):
        notifier = EmailNotifier(host="127.0.0.1", port=port, sender="sojourn@example.com")
        try:
            yield handler, notifier
        finally:
            close_notifiers([notifier])


def notice(assignment_id: int, kind: NoticeKind, number: int, at: datetime, *, task_id: int | None = None,
           recipient: str = COACH) -> NewNotice:
    body = f"About assignment {assignment_id}, notice {number}."
    if task_id is not None:
        body += f"\nWhen it is done: sojourn task done {task_id}"
    return NewNotice(key=f"{kind}/test/{number}", kind=kind, assignment_id=assignment_id, task_id=task_id,
                     recipient=recipient, role="coach", subject=f"Subject {number} ({kind})", body=body,
                     created_at=at, deliver_at=at)


def queue(db: Engine, *notices: NewNotice) -> None:
    with transaction(db) as session:
        queries.insert_notifications(session, list(notices))


def send_due(db: Engine, notifier: EmailNotifier, now: datetime) -> None:
    dispatch_due(db, [notifier], holder="test", now=now, links=SIGNER)


def statuses(db: Engine) -> dict[str, str]:
    with transaction(db) as session:
        return {row.key: row.status for row in session.exec(select(Outbox).order_by(col(Outbox.id)))}


def coach_on_daily_digest(db: Engine, spec: assignments.AssignmentSpec) -> tuple[int, int]:
    """A quiet assignment and its first task, the coach on a daily digest from MONDAY; (assignment id, task id)."""
    assignment_id = quiet_assignment(db, spec)
    task_id = assignments.show_assignment(db, assignment_id, now=MONDAY).tasks[0].id
    digests.set_person_digest(db, COACH, "daily", now=MONDAY)
    return assignment_id, task_id


def test_daily_digest_sends_one_message_a_day_with_each_notice_and_its_link(
        db: Engine, spec: assignments.AssignmentSpec, mailbox: tuple[Mailbox, EmailNotifier]) -> None:
    """Stage changes and due-soon reminders wait for one email at 09:00 in the coach's zone; each keeps its link."""
    inbox, notifier = mailbox
    assignment_id, task_id = coach_on_daily_digest(db, spec)
    queue(db, notice(assignment_id, NoticeKind.STAGE_CHANGED, 1, MONDAY),
          notice(assignment_id, NoticeKind.TASK_DUE_SOON, 2, MONDAY + timedelta(hours=3), task_id=task_id))
    for at in (MONDAY, MONDAY + timedelta(hours=3), TUESDAY_DIGEST - timedelta(minutes=1)):
        send_due(db, notifier, at)
    assert inbox.take() == []
    send_due(db, notifier, TUESDAY_DIGEST)
    [digest] = inbox.take()
    text = digest.get_content().replace("\r\n", "\n")
    assert digest["To"] == COACH
    assert digest["Subject"] == "Your daily digest of 2027-01-05"
    assert "== Subject 1 (stage_changed) ==\nAbout assignment" in text
    assert "== Subject 2 (task_due_soon) ==\nAbout assignment" in text
    assert text.index("Subject 1") < text.index("Subject 2")
    assert text.count("https://sojourn.example.com/") == 2  # the person's page and the task's done link
    assert f"sojourn task done {task_id}" not in text
    assert set(statuses(db).values()) == {"sent"}
    send_due(db, notifier, TUESDAY_DIGEST + timedelta(days=1))
    assert inbox.take() == []


def test_actionable_notices_go_at_once_for_a_person_on_a_digest(
        db: Engine, spec: assignments.AssignmentSpec, mailbox: tuple[Mailbox, EmailNotifier]) -> None:
    """An escalation and an overdue reminder are sent on their own at once; the informational one waits."""
    inbox, notifier = mailbox
    assignment_id, task_id = coach_on_daily_digest(db, spec)
    queue(db, notice(assignment_id, NoticeKind.ESCALATION, 1, MONDAY, task_id=task_id),
          notice(assignment_id, NoticeKind.TASK_OVERDUE, 2, MONDAY, task_id=task_id),
          notice(assignment_id, NoticeKind.STAGE_CHANGED, 3, MONDAY))
    send_due(db, notifier, MONDAY)
    assert sorted(m["Subject"] for m in inbox.take()) == ["Subject 1 (escalation)", "Subject 2 (task_overdue)"]
    assert statuses(db)[f"{NoticeKind.STAGE_CHANGED}/test/3"] == "held"


def test_weekly_digest_gathers_the_whole_week_into_mondays_message(
        db: Engine, spec: assignments.AssignmentSpec, mailbox: tuple[Mailbox, EmailNotifier]) -> None:
    """Notices of Tuesday to Sunday arrive together the next Monday at 09:00 in the recipient's zone."""
    inbox, notifier = mailbox
    assignment_id = quiet_assignment(db, spec)
    digests.set_person_digest(db, COACH, "weekly", now=MONDAY)
    for day in range(1, 7):
        at = MONDAY + timedelta(days=day)
        queue(db, notice(assignment_id, NoticeKind.STAGE_CHANGED, day, at))
        send_due(db, notifier, at)
        send_due(db, notifier, at.replace(hour=8))  # a daily digest would go here
    assert inbox.take() == []
    send_due(db, notifier, NEXT_MONDAY_DIGEST)
    [digest] = inbox.take()
    assert digest["Subject"] == "Your weekly digest of 2027-01-11"
    assert digest.get_content().count("== Subject ") == 6


def test_switching_the_digest_off_releases_held_notices_to_the_next_sweep(
        db: Engine, spec: assignments.AssignmentSpec, mailbox: tuple[Mailbox, EmailNotifier]) -> None:
    """A held notice goes on its own at the first sweep after the digest is switched off."""
    inbox, notifier = mailbox
    assignment_id = quiet_assignment(db, spec)
    digests.set_person_digest(db, COACH, "daily", now=MONDAY)
    queue(db, notice(assignment_id, NoticeKind.STAGE_CHANGED, 1, MONDAY))
    send_due(db, notifier, MONDAY)
    assert inbox.take() == []
    later = MONDAY + timedelta(hours=2)
    assert digests.set_person_digest(db, COACH, "off", now=later).released == 1
    send_due(db, notifier, later)
    assert [m["Subject"] for m in inbox.take()] == ["Subject 1 (stage_changed)"]
    assert statuses(db) == {f"{NoticeKind.STAGE_CHANGED}/test/1": "sent"}


def test_a_notice_cancelled_after_gathering_is_left_out_of_its_digest(
        db: Engine, spec: assignments.AssignmentSpec, mailbox: tuple[Mailbox, EmailNotifier]) -> None:
    """Completing a task cancels its due-soon reminder inside a digest; a digest left empty is cancelled."""
    inbox, notifier = mailbox
    assignment_id, task_id = coach_on_daily_digest(db, spec)
    queue(db, notice(assignment_id, NoticeKind.STAGE_CHANGED, 1, MONDAY),
          notice(assignment_id, NoticeKind.TASK_DUE_SOON, 2, MONDAY, task_id=task_id))
    send_due(db, notifier, MONDAY)
    with transaction(db) as session:
        digests.gather_digests(session, TUESDAY_DIGEST)  # gathered, not sent yet
    assert statuses(db)[f"{NoticeKind.TASK_DUE_SOON}/test/2"] == "gathered"
    tasks.complete_task(db, task_id, note=None, actor=COACH, now=TUESDAY_DIGEST)
    send_due(db, notifier, TUESDAY_DIGEST)
    [digest] = inbox.take()
    assert "Subject 1" in digest.get_content()
    assert "Subject 2" not in digest.get_content()
    assert statuses(db)[f"{NoticeKind.TASK_DUE_SOON}/test/2"] == "cancelled"

    queue(db, notice(assignment_id, NoticeKind.STAGE_CHANGED, 3, TUESDAY_DIGEST))
    wednesday = TUESDAY_DIGEST + timedelta(days=1)
    with transaction(db) as session:
        digests.gather_digests(session, TUESDAY_DIGEST)
        digests.gather_digests(session, wednesday)
        queries.cancel_queued_notifications(session, assignment_id=assignment_id, kinds=[NoticeKind.STAGE_CHANGED],
                                            reason="the test cancels it")
    send_due(db, notifier, wednesday)
    assert inbox.take() == []
    assert statuses(db)["digest/" + _coach_id(db) + "/2027-01-06T08:00Z"] == "cancelled"


def _coach_id(db: Engine) -> str:
    return str(next(p["id"] for p in views(list_people(db)) if p["email"] == COACH))


def test_forecast_lists_digests_as_they_would_go_out(db: Engine, spec: assignments.AssignmentSpec) -> None:
    """The coach on a daily digest gets digests at 09:00 local time, and no informational notice on its own."""
    assignment_id = assignments.create_assignment(db, spec, actor="admin", now=MONDAY).id
    digests.set_person_digest(db, COACH, "daily", now=MONDAY)
    to_coach = [n for n in forecast_assignments(db, [assignment_id], now=MONDAY).notices if n.recipient == COACH]
    kinds = {n.kind for n in to_coach}
    assert "digest" in kinds
    assert not kinds & {"stage_changed", "task_due_soon"}
    for sent in to_coach:
        if sent.kind == "digest":
            local = sent.view()["local_time"]
            assert local[11:16] == "09:00", local
            assert sent.subject.startswith("Your daily digest of ")


def test_person_set_shows_the_choice_in_list_and_export(on_db: Sojourn, db: Engine,
                                                        people: dict[str, str]) -> None:
    """`person set --digest` is shown by `person list` (table and JSON), `person show` and `person export`."""
    assert on_db("person", "set", COACH, "--digest", "weekly").code == 0
    listed = json.loads(on_db("person", "list", "--json").stdout)
    assert {p["email"]: p["digest"] for p in listed}[COACH] == "weekly"
    table = on_db("person", "list").stdout.splitlines()
    assert "DIGEST" in table[0]
    assert any(COACH in line and line.rstrip().endswith("weekly") for line in table)
    assert json.loads(on_db("person", "show", COACH, "--json").stdout)["digest"] == "weekly"
    assert "digest: weekly" in on_db("person", "show", COACH).stdout.splitlines()
    exported: dict[str, Any] = json.loads(on_db("person", "export", COACH).stdout)
    assert exported["person"]["digest"] == "weekly"


def test_person_set_refuses_a_bad_digest_or_an_unknown_person(on_db: Sojourn, people: dict[str, str]) -> None:
    """A digest that is not daily, weekly or off exits 2; an unknown person exits 1; each says Error:."""
    bad = on_db("person", "set", COACH, "--digest", "fortnightly")
    assert bad.code == 2
    assert any(line.startswith("Error:") and "fortnightly" in line for line in bad.stderr.splitlines())
    unknown = on_db("person", "set", "nobody@example.com", "--digest", "daily")
    assert unknown.code == 1
    assert any(line.startswith("Error:") for line in unknown.stderr.splitlines())
