"""The notices Sojourn writes: keys that make planning idempotent and cancellable, and the action each one offers."""

from __future__ import annotations

from datetime import UTC, date, datetime

from engine.domain import notices
from engine.domain.definition import Cadence, Every
from engine.domain.notices import NoticeKind
from engine.store.models import Assignment, Person, Task

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)
ANA = Person(id=1, email="ana.lima@example.com", name="Ana Lima", tz="America/Sao_Paulo")
SARA = Person(id=2, email="sara.sponsor@example.com", name="Sara Sponsor", tz="America/Sao_Paulo")
ASSIGNMENT = Assignment(id=4, workflow_id=1, assignee_id=1, stage="coaching", home="BR", host="DE",
                        start=date(2026, 4, 1), end=date(2027, 9, 30), stage_entered_at=NOW, created_at=NOW)
TASK = Task(id=7, assignment_id=4, key="interview_assignee", title="Interview the assignee", stage="interviews",
            owner_role="coach", owner_id=2, due_on=date(2026, 3, 16), due_at=NOW)
SPONSOR_CONTACT = Cadence(kind="sponsor_contact", title="Sponsor contact", with_role="sponsor",
                          notify=("assignee", "sponsor"), every=Every(months=1), from_stage="orientation",
                          until_stage="repatriation", grace_days=7)


def test_task_reminder_tells_owner_the_command_that_completes_it_when_due() -> None:
    """A task_due is keyed by its task, goes to the owner, and ends with the `sojourn task done` command."""
    about = notices.assignment_line(ASSIGNMENT, ANA)
    notice = notices.task_reminder(NoticeKind.TASK_DUE, TASK, SARA, about, day=TASK.due_on, at=NOW, now=NOW)
    assert (notice.key, notice.recipient, notice.role, notice.task_id) == ("task_due/7", SARA.email, "coach", 7)
    assert notice.body.splitlines()[0] == "Assignment #4 (Ana Lima, BR to DE), stage coaching."
    assert notice.body.splitlines()[-1] == "When it is done: sojourn task done 7"


def test_contact_notice_keys_start_with_the_prefix_that_cancels_them_when_a_period_is_named() -> None:
    """contact_due and contact_missed keys begin with cadence_key_prefix, so a logged contact can cancel them."""
    period = notices.ContactPeriod(ASSIGNMENT, SPONSOR_CONTACT, SARA, date(2026, 5, 1), date(2026, 5, 31))
    about = notices.assignment_line(ASSIGNMENT, ANA)
    due = notices.contact_due(period, about, role="assignee", recipient=ANA, at=NOW, now=NOW)
    missed = notices.contact_missed(period, about, role="assignee", recipient=ANA, at=NOW, now=NOW)
    for notice in (due, missed):
        assert notice.key.startswith(notices.cadence_key_prefix(notice.kind, 4, "sponsor_contact"))
        assert notice.key.startswith(notices.cadence_key_prefix(notice.kind, 4, "sponsor_contact", period.first))
    assert due.key == "contact_due/4/sponsor_contact/2026-05-01/assignee"
    assert due.body.endswith("sojourn contact log 4 --kind sponsor_contact --with sara.sponsor@example.com "
                             "--on YYYY-MM-DD")


def test_escalations_go_to_every_role_given_when_a_task_is_overdue() -> None:
    """One escalation per (role, person), each keyed by task, step and role."""
    about = notices.assignment_line(ASSIGNMENT, ANA)
    sent = notices.escalations(TASK, SARA, about, [("mobility", ANA), ("sending_manager", SARA)], number=2,
                               overdue_days=10, at=NOW, now=NOW)
    assert [(n.key, n.recipient) for n in sent] == [("escalation/7/2/mobility", ANA.email),
                                                    ("escalation/7/2/sending_manager", SARA.email)]
    assert {n.subject for n in sent} == {"Escalation 2: Interview the assignee is 11 day(s) overdue"}


def test_action_link_replaces_only_the_command_line() -> None:
    """The link takes the last command line's place; a body without one is unchanged."""
    body = notices.task_reminder(NoticeKind.TASK_DUE, TASK, SARA, "Assignment #4.", day=TASK.due_on, at=NOW,
                                 now=NOW).body
    assert notices.with_action_link(body, "https://s.example/a/task_done/T") == (
        "Assignment #4.\nYour task 7 (interview_assignee) is due on 2026-03-16.\n"
        "When it is done: https://s.example/a/task_done/T")
    assert notices.with_action_link("Moved to coaching.", "https://s.example/me/T") == "Moved to coaching."
