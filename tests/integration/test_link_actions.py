"""Acting on signed links in-process: previews write nothing, confirms call the CLI's use cases once, refusals."""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from engine.delivery.dispatch import dispatch_due, notification_of
from engine.delivery.links import LinkRefused, LinkSigner, Refusal
from engine.domain.errors import SojournError
from engine.domain.link_rules import LinkAction, NoticeFacts, notice_action
from engine.domain.views import views
from engine.program import assignments, audit, checkins, plans, tasks
from engine.store.db import transaction
from engine.store.models import (
    AuditEvent,
    Checkin,
    Contact,
    GoalProgress,
    LinkUse,
    Outbox,
    PlanChange,
    Pulse,
    Signoff,
    Task,
)
from engine.web import actions
from notifiers import Notification
from tests.conftest import NOW
from tests.support import scenarios

SIGNER = LinkSigner("test secret", "https://sojourn.example.com", timedelta(days=14))
LATER = NOW + timedelta(hours=1)


def _counts(db: Engine) -> dict[str, int]:
    with transaction(db) as session:
        return {model.__name__: session.execute(select(func.count()).select_from(model)).scalar_one()
                for model in (AuditEvent, LinkUse, Contact, Signoff, Checkin, GoalProgress, Pulse, PlanChange)}


def _link(person: str, action: LinkAction, obj: dict[str, Any]) -> tuple[str, str]:
    return str(action), SIGNER.mint(person, action, obj, now=NOW)


def _refused(call: Any) -> Refusal:
    with pytest.raises(LinkRefused) as caught:
        call()
    return caught.value.refusal


@pytest.fixture
def assignment(db: Engine, spec: assignments.AssignmentSpec) -> int:
    return assignments.create_assignment(db, spec, actor="admin", now=NOW).id


def _first_task(db: Engine, assignment_id: int) -> dict[str, Any]:
    return views(tasks.list_tasks(db, now=NOW, assignment_id=assignment_id))[0]


def test_preview_describes_the_task_and_writes_nothing(db: Engine, assignment: int) -> None:
    """Opening a task link (as a mail scanner would) shows the task and changes no row."""
    task = _first_task(db, assignment)
    before = _counts(db)
    shown = actions.preview(db, SIGNER, *_link(task["owner"], LinkAction.TASK_DONE, {"task": task["id"]}), now=LATER)
    assert task["title"] in shown.title
    assert _counts(db) == before
    assert _first_task(db, assignment)["status"] == "open"


def test_confirm_marks_the_task_done_with_the_person_as_actor(db: Engine, assignment: int) -> None:
    """The POST completes the task through the use case; the audit trail names the owner, not an admin."""
    task = _first_task(db, assignment)
    action, token = _link(task["owner"], LinkAction.TASK_DONE, {"task": task["id"]})
    actions.confirm(db, SIGNER, action, token, {"token": token, "note": "done in Berlin"}, now=LATER)
    done = _first_task(db, assignment)
    assert (done["status"], done["completed_by"], done["note"]) == ("done", task["owner"], "done in Berlin")
    out = io.StringIO()
    audit.export_audit(db, out, assignment_id=assignment)
    last = json.loads(out.getvalue().splitlines()[-1])
    assert (last["action"], last["actor"]) == (audit.TASK_COMPLETED, task["owner"])


def test_a_second_confirm_says_already_done_and_writes_nothing(db: Engine, assignment: int) -> None:
    """Reusing a link is refused with 409 and adds no row."""
    task = _first_task(db, assignment)
    action, token = _link(task["owner"], LinkAction.TASK_DONE, {"task": task["id"]})
    actions.confirm(db, SIGNER, action, token, {"token": token}, now=LATER)
    before = _counts(db)
    assert _refused(lambda: actions.confirm(db, SIGNER, action, token, {"token": token}, now=LATER)) == \
        Refusal.ALREADY_DONE
    assert _refused(lambda: actions.preview(db, SIGNER, action, token, now=LATER)) == Refusal.ALREADY_DONE
    assert _counts(db) == before


def test_a_link_for_someone_elses_task_is_refused(db: Engine, assignment: int, people: dict[str, str]) -> None:
    """A task link minted for a person who does not own the task is refused with 403 and leaves it open."""
    task = _first_task(db, assignment)
    action, token = _link(people["sponsor"], LinkAction.TASK_DONE, {"task": task["id"]})
    before = _counts(db)
    assert _refused(lambda: actions.confirm(db, SIGNER, action, token, {"token": token}, now=LATER)) == \
        Refusal.OTHER_PERSON
    assert _counts(db) == before
    assert _first_task(db, assignment)["status"] == "open"


def test_a_form_carrying_another_link_is_refused(db: Engine, assignment: int, people: dict[str, str]) -> None:
    """The POST must carry the link's own token: one person's form cannot confirm another's link."""
    task = _first_task(db, assignment)
    action, token = _link(task["owner"], LinkAction.TASK_DONE, {"task": task["id"]})
    _, other = _link(people["sponsor"], LinkAction.TASK_DONE, {"task": task["id"]})
    assert _refused(lambda: actions.confirm(db, SIGNER, action, token, {"token": other}, now=LATER)) == \
        Refusal.OTHER_PERSON
    assert _refused(lambda: actions.confirm(db, SIGNER, action, token, {}, now=LATER)) == Refusal.MALFORMED
    assert _first_task(db, assignment)["status"] == "open"


def test_an_unknown_task_is_404(db: Engine, assignment: int, people: dict[str, str]) -> None:
    """A link to a task that does not exist is refused with 404."""
    action, token = _link(people["coach"], LinkAction.TASK_DONE, {"task": 99_999})
    assert _refused(lambda: actions.preview(db, SIGNER, action, token, now=LATER)) == Refusal.UNKNOWN_OBJECT


def test_revoked_links_are_refused_and_new_ones_work(db: Engine, assignment: int) -> None:
    """`links revoke` ends every link issued before it (410); a link minted afterwards is accepted."""
    task = _first_task(db, assignment)
    action, token = _link(task["owner"], LinkAction.TASK_DONE, {"task": task["id"]})
    actions.revoke_person_links(db, task["owner"], now=LATER)
    assert _refused(lambda: actions.confirm(db, SIGNER, action, token, {"token": token}, now=LATER)) == \
        Refusal.EXPIRED
    assert _first_task(db, assignment)["status"] == "open"
    fresh = SIGNER.mint(task["owner"], LinkAction.TASK_DONE, {"task": task["id"]}, now=LATER + timedelta(seconds=1))
    actions.confirm(db, SIGNER, action, fresh, {"token": fresh}, now=LATER + timedelta(seconds=2))
    assert _first_task(db, assignment)["status"] == "done"


def _in_orientation(db: Engine, spec: assignments.AssignmentSpec) -> int:
    """An assignment past its agreed plan (long enough for the scenario's goal), in orientation."""
    return scenarios.assignment_in_stage(db, dataclasses.replace(spec, end="2028-08-31"), "orientation", NOW)


def test_contact_held_logs_the_contact_with_the_partner(db: Engine, spec: assignments.AssignmentSpec,
                                                        people: dict[str, str]) -> None:
    """The sponsor's contact link logs a sponsor_contact with them, on the day given, as the sponsor."""
    assignment_id = _in_orientation(db, spec)
    action, token = _link(people["sponsor"], LinkAction.CONTACT_HELD,
                          {"assignment": assignment_id, "kind": "sponsor_contact"})
    actions.confirm(db, SIGNER, action, token, {"token": token, "on": "2026-03-02", "notes": "call"}, now=LATER)
    with transaction(db) as session:
        (contact,) = session.execute(select(Contact)).scalars().all()
    assert (contact.kind, contact.on.isoformat(), contact.logged_by) == ("sponsor_contact", "2026-03-02",
                                                                          people["sponsor"])


def test_contact_held_is_refused_to_a_bystander(db: Engine, spec: assignments.AssignmentSpec,
                                                people: dict[str, str]) -> None:
    """Only the assignee or the partner may log the contact; the talent team's link is refused with 403."""
    assignment_id = _in_orientation(db, spec)
    action, token = _link(people["talent"], LinkAction.CONTACT_HELD,
                          {"assignment": assignment_id, "kind": "sponsor_contact"})
    assert _refused(lambda: actions.confirm(db, SIGNER, action, token, {"token": token}, now=LATER)) == \
        Refusal.OTHER_PERSON
    assert _counts(db)["Contact"] == 0


def _plan_agreed(db: Engine, spec: assignments.AssignmentSpec) -> int:
    assignment_id = scenarios.assignment_in_stage(db, spec, "plan_agreed", NOW)
    plans.add_goal(db, assignment_id, title="Lead the regional team", measure="engagement", target="75",
                   due="2027-06-30", actor="admin", now=NOW)
    return assignment_id


def test_plan_signoff_signs_the_current_version_for_the_holder(db: Engine, spec: assignments.AssignmentSpec,
                                                               people: dict[str, str]) -> None:
    """The host manager's link signs the current plan version for host_manager, recorded by them, and `plan show`
    says the holder gave it."""
    assignment_id = _plan_agreed(db, spec)
    action, token = _link(people["host_manager"], LinkAction.PLAN_SIGNOFF,
                          {"assignment": assignment_id, "role": "host_manager", "plan_version": 2})
    actions.confirm(db, SIGNER, action, token, {"token": token}, now=LATER)
    with transaction(db) as session:
        (signed,) = session.execute(select(Signoff)).scalars().all()
    assert (signed.role, signed.plan_version, signed.recorded_by) == ("host_manager", 2, people["host_manager"])
    assert [s.given_by for s in plans.show_plan(db, assignment_id).signoffs] == ["holder"]


def test_a_plan_cannot_be_signed_for_a_role_by_someone_who_does_not_hold_it(
        db: Engine, spec: assignments.AssignmentSpec, people: dict[str, str]) -> None:
    """Neither a link (403) nor the use case lets the coach sign as host_manager; nothing is recorded."""
    assignment_id = _plan_agreed(db, spec)
    action, token = _link(people["coach"], LinkAction.PLAN_SIGNOFF,
                          {"assignment": assignment_id, "role": "host_manager", "plan_version": 2})
    assert _refused(lambda: actions.confirm(db, SIGNER, action, token, {"token": token}, now=LATER)) == \
        Refusal.OTHER_PERSON
    with pytest.raises(SojournError, match="is not the host_manager"):
        plans.sign_plan(db, assignment_id, role="host_manager", by=people["coach"], actor=people["coach"], now=LATER)
    assert _counts(db)["Signoff"] == 0


def test_a_signoff_link_for_an_older_plan_version_is_stale(db: Engine, spec: assignments.AssignmentSpec,
                                                           people: dict[str, str]) -> None:
    """A plan changed after the link was sent is not signed by it: 409, nothing recorded."""
    assignment_id = _plan_agreed(db, spec)
    action, token = _link(people["talent"], LinkAction.PLAN_SIGNOFF,
                          {"assignment": assignment_id, "role": "talent", "plan_version": 1})
    assert _refused(lambda: actions.confirm(db, SIGNER, action, token, {"token": token}, now=LATER)) == \
        Refusal.ALREADY_DONE
    assert _counts(db)["Signoff"] == 0


def test_the_persons_page_lists_open_tasks_in_their_zone_and_owed_signoffs(
        db: Engine, spec: assignments.AssignmentSpec, people: dict[str, str]) -> None:
    """The host manager's page shows their open tasks due at the end of the day in Berlin, and the plan to sign."""
    assignment_id = _plan_agreed(db, spec)
    action, token = _link(people["host_manager"], LinkAction.MY_PAGE, {})
    page = actions.person_page(db, SIGNER, action, token, now=LATER)
    owned = tasks.list_tasks(db, now=LATER, owner=people["host_manager"], status="open")
    assert [t.title for t in page.tasks] == [t.title for t in owned]
    assert all(t.due_local.endswith("00:00") for t in page.tasks)  # midnight ending the day, Berlin time
    assert [(s.assignment_id, s.role, s.plan_version) for s in page.signoffs] == [
        (assignment_id, "host_manager", 2)]


def test_sent_notices_carry_a_link_for_their_recipient(db: Engine, assignment: int) -> None:
    """Dispatching with a signer gives every notification an action link that names its recipient."""
    sent: list[Notification] = []

    class Capture:
        name = "capture"

        def send(self, notification: Notification) -> None:
            sent.append(notification)

    dispatch_due(db, [Capture()], holder="test", now=LATER, links=SIGNER)
    assert sent
    for notification in sent:
        assert notification.action_url is not None
        assert notification.to_dict()["action_url"] == notification.action_url
        action, token = notification.action_url.removeprefix("https://sojourn.example.com/").split("/")[1:]
        assert SIGNER.read(action, token, now=LATER).person == notification.recipient


def test_without_a_signer_notices_keep_their_shape(db: Engine, assignment: int) -> None:
    """No [serve] secret or public URL: notifications carry no action_url at all."""
    with transaction(db) as session:
        row = session.execute(select(Outbox)).scalars().first()
    assert row is not None
    assert "action_url" not in notification_of(row).to_dict()


def test_a_task_done_from_the_cli_makes_its_link_say_already_done(db: Engine, assignment: int) -> None:
    """A task finished another way refuses its link with 409 and writes nothing more."""
    task = _first_task(db, assignment)
    tasks.complete_task(db, task["id"], note=None, actor="admin", now=NOW)
    before = _counts(db)
    action, token = _link(task["owner"], LinkAction.TASK_DONE, {"task": task["id"]})
    assert _refused(lambda: actions.confirm(db, SIGNER, action, token, {"token": token}, now=LATER)) == \
        Refusal.ALREADY_DONE
    assert _counts(db) == before
    with transaction(db) as session:
        assert session.get(Task, task["id"]).completed_by == "admin"  # type: ignore[union-attr]


# --- check-ins and pulses ------------------------------------------------------------------------------------------


def _goal_ids(db: Engine, assignment_id: int) -> list[int]:
    return [int(g["id"]) for g in assignments.show_assignment(db, assignment_id, now=NOW).view()["goals"]]


def _last_event(db: Engine, assignment_id: int) -> dict[str, Any]:
    out = io.StringIO()
    audit.export_audit(db, out, assignment_id=assignment_id)
    return dict(json.loads(out.getvalue().splitlines()[-1]))


def test_a_checkin_preview_asks_for_each_goal_and_writes_nothing(db: Engine, spec: assignments.AssignmentSpec,
                                                                 people: dict[str, str]) -> None:
    """The check-in page has one percentage field per goal, a note and feedback; opening it changes no row."""
    assignment_id = _in_orientation(db, spec)
    before = _counts(db)
    shown = actions.preview(db, SIGNER, *_link(people["assignee"], LinkAction.CHECKIN, {"assignment": assignment_id}),
                            now=LATER)
    assert [(f.name, f.kind) for f in shown.fields] == [
        *((f"goal_{g}", "percent") for g in _goal_ids(db, assignment_id)), ("note", "textarea"),
        ("feedback", "textarea")]
    assert _counts(db) == before


@pytest.mark.parametrize("role", ["assignee", "host_manager"])
def test_a_checkin_link_records_the_progress_as_its_person(db: Engine, spec: assignments.AssignmentSpec,
                                                           people: dict[str, str], role: str) -> None:
    """The POST records the check-in through record_checkin, by and on behalf of the link's person, in their role."""
    assignment_id = _in_orientation(db, spec)
    (goal,) = _goal_ids(db, assignment_id)
    action, token = _link(people[role], LinkAction.CHECKIN, {"assignment": assignment_id})
    form = {"token": token, f"goal_{goal}": "40", "note": "on track", "feedback": "clear priorities"}
    actions.confirm(db, SIGNER, action, token, form, now=LATER)
    with transaction(db) as session:
        (checkin,) = session.execute(select(Checkin)).scalars().all()
        (progress,) = session.execute(select(GoalProgress)).scalars().all()
    assert (checkin.role, checkin.note, checkin.feedback) == (role, "on track", "clear priorities")
    assert (progress.goal_id, progress.percent) == (goal, 40)
    last = _last_event(db, assignment_id)
    assert (last["action"], last["actor"], last["details"]["by"]) == (audit.CHECKIN_RECORDED, people[role],
                                                                     people[role])


def test_a_second_checkin_post_of_one_link_is_already_done(db: Engine, spec: assignments.AssignmentSpec,
                                                           people: dict[str, str]) -> None:
    """A check-in link is used up by its first POST: the second, even with other values, is 409 and writes nothing."""
    assignment_id = _in_orientation(db, spec)
    (goal,) = _goal_ids(db, assignment_id)
    action, token = _link(people["assignee"], LinkAction.CHECKIN, {"assignment": assignment_id})
    actions.confirm(db, SIGNER, action, token, {"token": token, f"goal_{goal}": "40"}, now=LATER)
    before = _counts(db)
    assert _refused(lambda: actions.confirm(db, SIGNER, action, token, {"token": token, f"goal_{goal}": "60"},
                                            now=LATER)) == Refusal.ALREADY_DONE
    assert _counts(db) == before


def test_a_checkin_link_of_someone_else_on_the_assignment_is_refused(db: Engine, spec: assignments.AssignmentSpec,
                                                                     people: dict[str, str]) -> None:
    """The sending manager may not check in (record_checkin refuses them): the page is 403 and nothing is written."""
    assignment_id = _in_orientation(db, spec)
    (goal,) = _goal_ids(db, assignment_id)
    action, token = _link(people["sending_manager"], LinkAction.CHECKIN, {"assignment": assignment_id})
    before = _counts(db)
    assert _refused(lambda: actions.preview(db, SIGNER, action, token, now=LATER)) == Refusal.OTHER_PERSON
    assert _refused(lambda: actions.confirm(db, SIGNER, action, token, {"token": token, f"goal_{goal}": "40"},
                                            now=LATER)) == Refusal.OTHER_PERSON
    with pytest.raises(SojournError, match="may not check in"):
        checkins.record_checkin(db, assignment_id, by=people["sending_manager"], progress={goal: 40}, note=None,
                                feedback=None, actor=people["sending_manager"], now=LATER)
    assert _counts(db) == before


@pytest.mark.parametrize("percent", ["101", "-5", "forty", "12.5"])
def test_a_bad_percentage_writes_nothing_and_leaves_the_link_usable(db: Engine, spec: assignments.AssignmentSpec,
                                                                    people: dict[str, str], percent: str) -> None:
    """A percentage that is not a whole number 0-100 is refused with 400, writes nothing; the link still works."""
    assignment_id = _in_orientation(db, spec)
    (goal,) = _goal_ids(db, assignment_id)
    action, token = _link(people["host_manager"], LinkAction.CHECKIN, {"assignment": assignment_id})
    before = _counts(db)
    with pytest.raises(actions.FormRejected) as caught:
        actions.confirm(db, SIGNER, action, token, {"token": token, f"goal_{goal}": percent}, now=LATER)
    assert caught.value.refusal == Refusal.MALFORMED
    assert _counts(db) == before
    actions.confirm(db, SIGNER, action, token, {"token": token, f"goal_{goal}": "100"}, now=LATER)
    assert _counts(db)["Checkin"] == 1


PULSE_FORM = {"expectancy": "4", "instrumentality": "3", "valence": "5", "note": "settling in"}


def test_a_pulse_link_records_the_assignees_answers_as_them(db: Engine, spec: assignments.AssignmentSpec,
                                                            people: dict[str, str]) -> None:
    """The pulse page asks three 1-5 questions and a note; the POST records them via record_pulse as the assignee."""
    assignment_id = _in_orientation(db, spec)
    action, token = _link(people["assignee"], LinkAction.PULSE, {"assignment": assignment_id})
    before = _counts(db)
    shown = actions.preview(db, SIGNER, action, token, now=LATER)
    assert [(f.name, f.kind, f.options) for f in shown.fields] == [
        *((q, "radio", ("1", "2", "3", "4", "5")) for q in checkins.PULSE_QUESTIONS), ("note", "textarea", ())]
    assert _counts(db) == before
    actions.confirm(db, SIGNER, action, token, {"token": token, **PULSE_FORM}, now=LATER)
    with transaction(db) as session:
        (pulse,) = session.execute(select(Pulse)).scalars().all()
    assert (pulse.expectancy, pulse.instrumentality, pulse.valence, pulse.note) == (4, 3, 5, "settling in")
    last = _last_event(db, assignment_id)
    assert (last["action"], last["actor"]) == (audit.PULSE_RECORDED, people["assignee"])


def test_a_second_pulse_post_of_one_link_is_already_done(db: Engine, spec: assignments.AssignmentSpec,
                                                         people: dict[str, str]) -> None:
    """A pulse link answers once: the second POST is 409 and records no second pulse."""
    assignment_id = _in_orientation(db, spec)
    action, token = _link(people["assignee"], LinkAction.PULSE, {"assignment": assignment_id})
    actions.confirm(db, SIGNER, action, token, {"token": token, **PULSE_FORM}, now=LATER)
    before = _counts(db)
    assert _refused(lambda: actions.confirm(db, SIGNER, action, token, {"token": token, **PULSE_FORM},
                                            now=LATER)) == Refusal.ALREADY_DONE
    assert _counts(db) == before


def test_a_pulse_link_of_anyone_but_the_assignee_is_refused(db: Engine, spec: assignments.AssignmentSpec,
                                                            people: dict[str, str]) -> None:
    """The host manager cannot answer the assignee's pulse: 403, nothing written."""
    assignment_id = _in_orientation(db, spec)
    action, token = _link(people["host_manager"], LinkAction.PULSE, {"assignment": assignment_id})
    before = _counts(db)
    assert _refused(lambda: actions.preview(db, SIGNER, action, token, now=LATER)) == Refusal.OTHER_PERSON
    assert _refused(lambda: actions.confirm(db, SIGNER, action, token, {"token": token, **PULSE_FORM},
                                            now=LATER)) == Refusal.OTHER_PERSON
    assert _counts(db) == before


@pytest.mark.parametrize("bad", [{"valence": ""}, {"expectancy": "6"}, {"instrumentality": "0"}])
def test_a_missing_or_bad_pulse_answer_writes_nothing_and_leaves_the_link_usable(
        db: Engine, spec: assignments.AssignmentSpec, people: dict[str, str], bad: dict[str, str]) -> None:
    """An answer left out or outside 1-5 is refused with 400 and no row; the same link then records the pulse."""
    assignment_id = _in_orientation(db, spec)
    action, token = _link(people["assignee"], LinkAction.PULSE, {"assignment": assignment_id})
    before = _counts(db)
    with pytest.raises(actions.FormRejected) as caught:
        actions.confirm(db, SIGNER, action, token, {"token": token, **PULSE_FORM, **bad}, now=LATER)
    assert caught.value.refusal == Refusal.MALFORMED
    assert _counts(db) == before
    actions.confirm(db, SIGNER, action, token, {"token": token, **PULSE_FORM}, now=LATER)
    assert _counts(db)["Pulse"] == 1


# --- pulse alert resolved ------------------------------------------------------------------------------------------


def _weak_pulse(db: Engine, spec: assignments.AssignmentSpec, people: dict[str, str]) -> tuple[int, int]:
    assignment_id = _in_orientation(db, spec)
    answered = checkins.record_pulse(db, assignment_id, by=people["assignee"], expectancy=4, instrumentality=3,
                                     valence=1, note=None, actor="admin", now=NOW)
    assert answered.alert
    return assignment_id, answered.id


def test_the_pulse_alert_link_resolves_the_alert_once(db: Engine, spec: assignments.AssignmentSpec,
                                                      people: dict[str, str]) -> None:
    """The coach's pulse_alert notice links to resolving that alert: the preview names the reason and writes
    nothing, the confirm resolves it as the coach with the note, and the talent team's link is then already done."""
    assignment_id, pulse_id = _weak_pulse(db, spec, people)
    with transaction(db) as session:
        (alert,) = session.execute(select(Outbox).where(Outbox.kind == "pulse_alert", Outbox.role == "coach",
                                                        Outbox.assignment_id == assignment_id)).scalars()
        link_action, obj = notice_action(NoticeFacts.of_row(alert))
    assert (link_action, obj) == (LinkAction.ALERT_RESOLVE, {"pulse": pulse_id})
    action, token = _link(people["coach"], link_action, obj)
    before = _counts(db)
    shown = actions.preview(db, SIGNER, action, token, now=LATER)
    assert any("valence 1 is at or below 2" in line for line in shown.lines)
    assert _counts(db) == before
    done = actions.confirm(db, SIGNER, action, token, {"token": token, "note": "called her"}, now=LATER)
    assert done.title == "Pulse alert resolved"
    with transaction(db) as session:
        pulse = session.get(Pulse, pulse_id)
        assert pulse is not None
        assert pulse.resolved_at is not None
    last = _last_event(db, assignment_id)
    assert (last["action"], last["actor"]) == (audit.PULSE_ALERT_RESOLVED, people["coach"])
    assert last["details"] == {"pulse": pulse_id, "by": people["coach"], "role": "coach", "note": "called her"}
    talent_action, talent_token = _link(people["talent"], link_action, obj)
    assert _refused(lambda: actions.preview(db, SIGNER, talent_action, talent_token, now=LATER)) == \
        Refusal.ALREADY_DONE


def test_a_pulse_alert_link_of_someone_it_did_not_go_to_is_refused(db: Engine, spec: assignments.AssignmentSpec,
                                                                   people: dict[str, str]) -> None:
    """The host manager was not told: 403 on preview and confirm, the alert stays open, nothing is written."""
    _, pulse_id = _weak_pulse(db, spec, people)
    action, token = _link(people["host_manager"], LinkAction.ALERT_RESOLVE, {"pulse": pulse_id})
    before = _counts(db)
    assert _refused(lambda: actions.preview(db, SIGNER, action, token, now=LATER)) == Refusal.OTHER_PERSON
    assert _refused(lambda: actions.confirm(db, SIGNER, action, token, {"token": token}, now=LATER)) == \
        Refusal.OTHER_PERSON
    assert _counts(db) == before


# --- plan acknowledgement ------------------------------------------------------------------------------------------


def _changed_after_agreement(db: Engine, spec: assignments.AssignmentSpec) -> tuple[int, int]:
    """An assignment past its agreed plan whose plan then changed: the sending manager must acknowledge the version."""
    assignment_id = _in_orientation(db, spec)
    view = plans.add_goal(db, assignment_id, title="Run the DACH launch", measure="revenue", target="+10%",
                          due="2027-06-30", actor="admin", now=NOW)
    return assignment_id, view.plan_version


def _acknowledged(db: Engine, assignment_id: int) -> list[tuple[int, str | None]]:
    with transaction(db) as session:
        changes = session.execute(select(PlanChange).where(PlanChange.assignment_id == assignment_id)).scalars()
        return [(c.plan_version, c.acknowledged_by) for c in changes if c.acknowledge_task_id is not None]


def test_a_plan_ack_link_acknowledges_the_change_as_the_acknowledging_role(
        db: Engine, spec: assignments.AssignmentSpec, people: dict[str, str]) -> None:
    """The sending manager's link shows the change (writing nothing), then acknowledges it through
    acknowledge_plan_change with them as the actor."""
    assignment_id, version = _changed_after_agreement(db, spec)
    action, token = _link(people["sending_manager"], LinkAction.PLAN_ACK,
                          {"assignment": assignment_id, "plan_version": version})
    before = _counts(db)
    shown = actions.preview(db, SIGNER, action, token, now=LATER)
    assert any("Run the DACH launch" in line for line in shown.lines)
    assert _counts(db) == before
    actions.confirm(db, SIGNER, action, token, {"token": token}, now=LATER)
    assert _acknowledged(db, assignment_id) == [(version, people["sending_manager"])]
    last = _last_event(db, assignment_id)
    assert (last["action"], last["actor"]) == (audit.PLAN_ACKNOWLEDGED, people["sending_manager"])


def test_a_second_plan_ack_and_an_ack_made_elsewhere_are_already_done(
        db: Engine, spec: assignments.AssignmentSpec, people: dict[str, str]) -> None:
    """Once the change is acknowledged (by this link or the CLI), its links are 409 and write nothing."""
    assignment_id, version = _changed_after_agreement(db, spec)
    obj = {"assignment": assignment_id, "plan_version": version}
    action, token = _link(people["sending_manager"], LinkAction.PLAN_ACK, obj)
    actions.confirm(db, SIGNER, action, token, {"token": token}, now=LATER)
    before = _counts(db)
    assert _refused(lambda: actions.confirm(db, SIGNER, action, token, {"token": token}, now=LATER)) == \
        Refusal.ALREADY_DONE
    _, other = _link(people["sending_manager"], LinkAction.PLAN_ACK, obj)
    assert _refused(lambda: actions.confirm(db, SIGNER, action, other, {"token": other}, now=LATER)) == \
        Refusal.ALREADY_DONE
    assert _counts(db) == before


def test_a_plan_ack_link_of_anyone_but_the_acknowledging_role_is_refused(
        db: Engine, spec: assignments.AssignmentSpec, people: dict[str, str]) -> None:
    """The host manager cannot acknowledge for home: 403 on preview and confirm, the change stays unacknowledged."""
    assignment_id, version = _changed_after_agreement(db, spec)
    action, token = _link(people["host_manager"], LinkAction.PLAN_ACK,
                          {"assignment": assignment_id, "plan_version": version})
    before = _counts(db)
    assert _refused(lambda: actions.preview(db, SIGNER, action, token, now=LATER)) == Refusal.OTHER_PERSON
    assert _refused(lambda: actions.confirm(db, SIGNER, action, token, {"token": token}, now=LATER)) == \
        Refusal.OTHER_PERSON
    assert _counts(db) == before
    assert _acknowledged(db, assignment_id) == [(version, None)]


def test_the_escalation_link_acknowledges_the_change_of_its_task(db: Engine, spec: assignments.AssignmentSpec,
                                                                 people: dict[str, str]) -> None:
    """plan_unacknowledged names the acknowledgement task: its link acknowledges that task's change."""
    assignment_id, version = _changed_after_agreement(db, spec)
    with transaction(db) as session:
        (change,) = session.execute(select(PlanChange).where(PlanChange.plan_version == version)).scalars()
        task_id = change.acknowledge_task_id
    assert task_id is not None
    link_action, obj = notice_action(NoticeFacts(kind="plan_unacknowledged", assignment_id=assignment_id,
                                                 task_id=task_id, role="mobility"))
    action, token = _link(people["sending_manager"], link_action, obj)
    actions.confirm(db, SIGNER, action, token, {"token": token}, now=LATER)
    assert _acknowledged(db, assignment_id) == [(version, people["sending_manager"])]
    assert _refused(lambda: actions.preview(db, SIGNER, *_link(people["sending_manager"], link_action, obj),
                                            now=LATER)) == Refusal.ALREADY_DONE


def test_the_acknowledgement_tasks_reminder_link_acknowledges_the_change(
        db: Engine, spec: assignments.AssignmentSpec, people: dict[str, str]) -> None:
    """The task_due reminder of an acknowledgement task carries a "task done" link: it shows the change and
    acknowledges it (the task cannot be marked done any other way), then is already done."""
    assignment_id, version = _changed_after_agreement(db, spec)
    with transaction(db) as session:
        (change,) = session.execute(select(PlanChange).where(PlanChange.plan_version == version)).scalars()
        task_id = change.acknowledge_task_id
    assert task_id is not None
    link_action, obj = notice_action(NoticeFacts(kind="task_due", assignment_id=assignment_id, task_id=task_id,
                                                 role="sending_manager"))
    assert link_action == LinkAction.TASK_DONE
    action, token = _link(people["sending_manager"], link_action, obj)
    shown = actions.preview(db, SIGNER, action, token, now=LATER)
    assert any("Run the DACH launch" in line for line in shown.lines)
    done = actions.confirm(db, SIGNER, action, token, {"token": token}, now=LATER)
    assert done.title == "Plan change acknowledged"
    assert _acknowledged(db, assignment_id) == [(version, people["sending_manager"])]
    last = _last_event(db, assignment_id)
    assert (last["action"], last["actor"]) == (audit.PLAN_ACKNOWLEDGED, people["sending_manager"])
    assert _refused(lambda: actions.preview(db, SIGNER, *_link(people["sending_manager"], link_action, obj),
                                            now=LATER)) == Refusal.ALREADY_DONE


def test_the_persons_page_links_an_acknowledgement_task_to_the_acknowledgement(
        db: Engine, spec: assignments.AssignmentSpec, people: dict[str, str]) -> None:
    """The acknowledgement task on the sending manager's page opens the acknowledgement, not task done."""
    assignment_id, version = _changed_after_agreement(db, spec)
    page = actions.person_page(db, SIGNER, *_link(people["sending_manager"], LinkAction.MY_PAGE, {}), now=LATER)
    (ack,) = [t for t in page.tasks if t.title == f"Acknowledge plan version {version}"]
    action, token = ack.url.removeprefix("https://sojourn.example.com/a/").split("/")
    assert action == LinkAction.PLAN_ACK
    actions.confirm(db, SIGNER, action, token, {"token": token}, now=LATER)
    assert _acknowledged(db, assignment_id) == [(version, people["sending_manager"])]


def test_a_removed_goal_is_left_out_of_the_checkin_form(db: Engine, spec: assignments.AssignmentSpec,
                                                        people: dict[str, str]) -> None:
    """Only the current plan's goals get a percentage field: a removed goal's progress is neither asked nor taken."""
    assignment_id = _in_orientation(db, spec)
    (kept,) = _goal_ids(db, assignment_id)
    removed = plans.add_goal(db, assignment_id, title="Run the DACH launch", measure="revenue", target="+10%",
                             due="2027-06-30", actor="admin", now=NOW).id
    plans.remove_goal(db, removed, reason="merged into the first", actor="admin", now=NOW)
    action, token = _link(people["assignee"], LinkAction.CHECKIN, {"assignment": assignment_id})
    shown = actions.preview(db, SIGNER, action, token, now=LATER)
    assert [f.name for f in shown.fields if f.kind == "percent"] == [f"goal_{kept}"]
    actions.confirm(db, SIGNER, action, token, {"token": token, f"goal_{kept}": "30", f"goal_{removed}": "90"},
                    now=LATER)
    with transaction(db) as session:
        assert [(p.goal_id, p.percent) for p in session.execute(select(GoalProgress)).scalars()] == [(kept, 30)]


def _page_links(page: actions.PersonPage) -> list[tuple[str, str]]:
    urls = [t.url for t in page.tasks] + [s.url for s in page.signoffs]
    return [tuple(url.removeprefix("https://sojourn.example.com/").split("/")[1:]) for url in urls]  # type: ignore[misc]


def test_links_on_the_persons_page_expire_with_the_link_that_opened_it(
        db: Engine, spec: assignments.AssignmentSpec, people: dict[str, str]) -> None:
    """A page opened on the link's last day mints links that expire with it, so following links renews nothing."""
    _plan_agreed(db, spec)
    action, token = _link(people["host_manager"], LinkAction.MY_PAGE, {})
    last_day = NOW + timedelta(days=13, hours=23)
    page = actions.person_page(db, SIGNER, action, token, now=last_day)
    minted = _page_links(page)
    assert minted
    for minted_action, minted_token in minted:
        assert SIGNER.read(minted_action, minted_token, now=NOW + timedelta(days=14)).person == people["host_manager"]
        with pytest.raises(LinkRefused) as caught:
            SIGNER.read(minted_action, minted_token, now=NOW + timedelta(days=14, seconds=1))
        assert caught.value.refusal == Refusal.EXPIRED
    first_action, first_token = minted[0]
    assert _refused(lambda: actions.person_page(db, SIGNER, first_action, first_token,
                                                now=NOW + timedelta(days=14, seconds=1))) == Refusal.EXPIRED


def test_a_used_up_expired_or_revoked_action_link_opens_no_page(db: Engine, assignment: int) -> None:
    """Once confirmed, an action link opens neither its confirm page nor the person's page (409); an expired or
    revoked one neither (410); the page after confirming links to the person's page with a fresh page link."""
    task = _first_task(db, assignment)
    action, token = _link(task["owner"], LinkAction.TASK_DONE, {"task": task["id"]})
    assert actions.person_page(db, SIGNER, action, token, now=LATER).email == task["owner"]
    done = actions.confirm(db, SIGNER, action, token, {"token": token}, now=LATER)
    assert _refused(lambda: actions.person_page(db, SIGNER, action, token, now=LATER)) == Refusal.ALREADY_DONE
    assert _refused(lambda: actions.preview(db, SIGNER, action, token, now=LATER)) == Refusal.ALREADY_DONE
    assert done.person_path is not None
    page_action, page_token = done.person_path.split("/")[2:]
    assert actions.person_page(db, SIGNER, page_action, page_token, now=LATER).email == task["owner"]
    assert SIGNER.read(page_action, page_token, now=LATER).expires_at == SIGNER.read(action, token, now=LATER
                                                                                     ).expires_at
    _, unused = _link(task["owner"], LinkAction.TASK_DONE, {"task": task["id"]})
    assert _refused(lambda: actions.person_page(db, SIGNER, action, unused,
                                                now=NOW + timedelta(days=15))) == Refusal.EXPIRED
    actions.revoke_person_links(db, task["owner"], now=LATER)
    assert _refused(lambda: actions.person_page(db, SIGNER, action, unused, now=LATER)) == Refusal.EXPIRED
