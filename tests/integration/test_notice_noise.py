"""Fewer, truer notices: a day of plan edits is one change, replaced and resolved causes cancel their queued
notices, stage changes reach their declared audience, and linked notices show the link instead of a command."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlalchemy import Engine, select

from engine.delivery.dispatch import dispatch_due
from engine.program import assignments, checkins, people
from engine.store.db import transaction
from engine.store.models import Outbox, Task
from notifiers import Notification
from tests.conftest import CAST, NOW
from tests.integration.conftest import Sojourn
from tests.support.scenarios import assignment_in_stage, make_task_overdue

NEW_COACH = "nia.coach@example.com"


def _long(spec: assignments.AssignmentSpec) -> assignments.AssignmentSpec:
    """The cast's assignment running long enough for the goal the scenario adds."""
    return dataclasses.replace(spec, end="2028-08-31")


def _outbox(db: Engine, kind: str) -> list[Outbox]:
    with transaction(db) as session:
        return list(session.execute(select(Outbox).where(Outbox.kind == kind).order_by(Outbox.id)).scalars())


def _task_keys(db: Engine, assignment_id: int) -> list[str]:
    with transaction(db) as session:
        return list(session.execute(select(Task.key).where(Task.assignment_id == assignment_id)
                                    .order_by(Task.id)).scalars())


def _add_goal(on_db: Sojourn, assignment_id: int, number: int) -> None:
    outcome = on_db("goal", "add", str(assignment_id), "--title", f"Goal {number}", "--measure", "m",
                    "--target", "t", "--due", "2027-06-30")
    assert outcome.code == 0, outcome.stderr


# --- plan changes within a day ------------------------------------------------------------------------------------


def test_five_plan_edits_within_a_day_make_one_follow_up_one_acknowledgement_and_one_notice(
        on_db: Sojourn, db: Engine, spec: assignments.AssignmentSpec) -> None:
    """Five `goal add` after agreement, an hour apart: one pending change whose notice names all five versions."""
    assignment_id = assignment_in_stage(db, _long(spec), "orientation", NOW)
    for hour in range(5):
        with freeze_time(NOW + timedelta(hours=hour + 1)):
            _add_goal(on_db, assignment_id, hour)
    plan_tasks = [k for k in _task_keys(db, assignment_id) if k.startswith("plan-")]
    assert plan_tasks == ["plan-follow-up/3", "plan-ack/3"]
    (notice,) = _outbox(db, "plan_changed")
    assert "(versions 3 to 7)" in notice.subject
    assert all(f"- version {v}: goal" in notice.body for v in range(3, 8))
    assert on_db("plan", "show", str(assignment_id)).stdout.endswith(
        "changes not acknowledged yet: version(s) 3, 4, 5, 6, 7\n")


def test_plan_edit_a_day_after_the_pending_change_opens_a_new_one(on_db: Sojourn, db: Engine,
                                                                  spec: assignments.AssignmentSpec) -> None:
    """An edit 24 hours or more after the first of a pending change is a change of its own, with its own tasks."""
    assignment_id = assignment_in_stage(db, _long(spec), "orientation", NOW)
    for at in (NOW + timedelta(hours=1), NOW + timedelta(hours=2), NOW + timedelta(hours=25)):
        with freeze_time(at):
            _add_goal(on_db, assignment_id, at.hour)
    plan_tasks = [k for k in _task_keys(db, assignment_id) if k.startswith("plan-")]
    assert plan_tasks == ["plan-follow-up/3", "plan-ack/3", "plan-follow-up/5", "plan-ack/5"]
    assert [n.key for n in _outbox(db, "plan_changed")] == ["plan_changed/1/3", "plan_changed/1/5"]


def test_plan_ack_acknowledges_every_change_gathered(on_db: Sojourn, db: Engine,
                                                     spec: assignments.AssignmentSpec) -> None:
    """One `plan ack` acknowledges all the versions gathered, and completes the one acknowledgement task."""
    assignment_id = assignment_in_stage(db, _long(spec), "orientation", NOW)
    for hour in range(3):
        with freeze_time(NOW + timedelta(hours=hour + 1)):
            _add_goal(on_db, assignment_id, hour)
    with freeze_time(NOW + timedelta(hours=5)):
        acked = on_db("plan", "ack", str(assignment_id), "--by", CAST["sending_manager"][0], "--json")
    assert acked.code == 0, acked.stderr
    assert '"plan_versions": [\n    3,\n    4,\n    5\n  ]' in acked.stdout


# --- a replaced stakeholder, a resolved alert ---------------------------------------------------------------------


def _weak_pulse(db: Engine, assignment_id: int) -> int:
    answered = checkins.record_pulse(db, assignment_id, by=CAST["assignee"][0], expectancy=4, instrumentality=3,
                                     valence=1, note=None, actor="admin", now=NOW)
    return answered.id


def test_replaced_coach_loses_queued_stage_change_and_pulse_alert(on_db: Sojourn, db: Engine,
                                                                 spec: assignments.AssignmentSpec) -> None:
    """set-stakeholder cancels every notice still queued for the old coach: the stage change naming tasks now the
    new coach's, and a pulse alert; the daemon then delivers none of them to the old coach."""
    assignment_id = assignment_in_stage(db, _long(spec), "orientation", NOW)
    _weak_pulse(db, assignment_id)
    people.add_person(db, NEW_COACH, name="Nia Coach", tz="Europe/Berlin")
    with freeze_time(NOW):
        changed = on_db("assignment", "set-stakeholder", str(assignment_id), f"coach={NEW_COACH}", "--reason", "x")
    assert changed.code == 0, changed.stderr
    old_coach = CAST["coach"][0]
    for kind in ("stage_changed", "pulse_alert"):
        rows = [r for r in _outbox(db, kind) if r.recipient == old_coach]
        assert rows
        assert {r.status for r in rows} == {"cancelled"}
    assert old_coach not in [n.recipient for n in _dispatched(db)]


def test_resolved_pulse_alert_is_not_delivered(on_db: Sojourn, db: Engine, spec: assignments.AssignmentSpec) -> None:
    """`alert resolve` cancels the alert's notices still queued, for every role it went to."""
    assignment_id = assignment_in_stage(db, _long(spec), "orientation", NOW)
    pulse_id = _weak_pulse(db, assignment_id)
    with freeze_time(NOW):
        resolved = on_db("alert", "resolve", str(pulse_id), "--by", CAST["talent"][0], "--note", "talked")
    assert resolved.code == 0, resolved.stderr
    assert {r.status for r in _outbox(db, "pulse_alert")} == {"cancelled"}
    assert "pulse_alert" not in [n.kind for n in _dispatched(db)]


def _dispatched(db: Engine) -> list[Notification]:
    sent: list[Notification] = []

    class Capture:
        name = "capture"

        def send(self, notification: Notification) -> None:
            sent.append(notification)

    dispatch_due(db, [Capture()], holder="test", now=NOW + timedelta(minutes=1))
    return sent


# --- who hears of a stage change ----------------------------------------------------------------------------------


def test_new_assignment_tells_the_assignee_mobility_and_the_coach_who_has_tasks(
        on_db: Sojourn, db: Engine, spec: assignments.AssignmentSpec) -> None:
    """Entering interviews is told to the declared roles (assignee, mobility) and the coach, who owns its tasks."""
    assignments.create_assignment(db, spec, actor="admin", now=NOW)
    listed = json.loads(on_db("outbox", "list", "--json").stdout)
    assert sorted(n["role"] for n in listed if n["kind"] == "stage_changed") == ["assignee", "coach", "mobility"]


def test_stage_with_its_own_notify_list_is_told_to_those_roles(db: Engine, spec: assignments.AssignmentSpec) -> None:
    """plan_agreed names the plan's signers; its task owners (coach, talent) hear of it too."""
    assignment_in_stage(db, _long(spec), "plan_agreed", NOW)
    told = sorted(r.role for r in _outbox(db, "stage_changed") if r.key.startswith("stage_changed/2/"))
    assert told == ["assignee", "coach", "host_manager", "mobility", "sending_manager", "talent"]


# --- links instead of commands ------------------------------------------------------------------------------------


@pytest.mark.parametrize("serve", [True, False], ids=["serve", "no-serve"])
def test_task_reminder_body_carries_the_link_instead_of_the_command_when_serve_is_configured(
        on_db: Sojourn, db: Engine, spec: assignments.AssignmentSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        serve: bool) -> None:
    """`daemon --once` with [serve]: `When it is done:` shows the signed link; without, `sojourn task done 1`."""
    assignments.create_assignment(db, spec, actor="admin", now=NOW)
    make_task_overdue(db, 1, now=NOW)
    out = tmp_path / "notifications.jsonl"
    config = f'[notifiers.file]\npath = "{out}"\n'
    if serve:
        monkeypatch.setenv("SOJOURN_LINK_SECRET", "a test secret that is long enough to sign links")
        config += '[serve]\npublic_url = "https://sojourn.example.com"\nsecret_env = "SOJOURN_LINK_SECRET"\n'
    (tmp_path / "sojourn.toml").write_text(config, encoding="utf-8")
    with freeze_time(NOW):
        assert on_db("--config", str(tmp_path / "sojourn.toml"), "daemon", "--once").code == 0
    delivered = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    (reminder,) = [n for n in delivered if n["key"] == "task_overdue/1"]
    if serve:
        assert f"When it is done: {reminder['action_url']}" in reminder["body"]
        assert reminder["action_url"].startswith("https://sojourn.example.com/a/task_done/")
        assert "sojourn task done" not in reminder["body"]
    else:
        assert "When it is done: sojourn task done 1" in reminder["body"]
        assert "action_url" not in reminder
