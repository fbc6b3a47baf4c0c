"""The living development plan on SQLite and PostgreSQL: versions, void sign-offs, changes after agreement that reach
home, acknowledgement and its escalation, on a custom workflow whose plan section names other roles."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session, col

from engine.domain.errors import BadInput, SojournError
from engine.planning import planner
from engine.program import advance, assignments, plans, tasks
from engine.store.db import transaction
from engine.store.models import Outbox, PlanChange, Task, pk
from integration.conftest import Outcome, Sojourn, snapshot
from tests.support.cast import CAST
from tests.support.scenarios import assignment_of_workflow

ACTOR = "admin@example.com"
EMAIL = {role: email for role, (email, _, _) in CAST.items()}

# Roles named for this program, none of them the built-in's: the home lead hears of changes and acknowledges them,
# the mentor writes the follow-up, hr is told when an acknowledgement is late.
STINT_YAML = """
name: mentoring-stint
title: Mentoring stint abroad
roles: [assignee, home_lead, mentor, hr]
initial: agree
stages:
  - {key: agree, title: Agree the plan}
  - {key: abroad, title: Abroad}
  - {key: done, title: Done}
transitions:
  - {from: agree, to: abroad, guards: [{guard: min_smart_goals, params: {count: 1}}, plan_signed_off]}
  - {from: abroad, to: done}
reminders:
  local_hour: 9
  due_soon_days: 1
  escalate_to: hr
  escalation_days: [2, 5]
plan:
  agreed_stage: agree
  signers: [assignee, home_lead]
  notify_change: home_lead
  follow_up: {role: mentor, days: 3}
  acknowledge: home_lead
  acknowledge_days: 1
"""
STINT_PEOPLE = {"home_lead": EMAIL["sending_manager"], "mentor": EMAIL["coach"], "hr": EMAIL["talent"]}
HOME_LEAD, MENTOR, HR = STINT_PEOPLE["home_lead"], STINT_PEOPLE["mentor"], STINT_PEOPLE["hr"]


@pytest.fixture
def stint(db: Engine, people: dict[str, str], now: datetime) -> int:
    """An assignment of the custom workflow, still agreeing its plan."""
    return assignment_of_workflow(db, STINT_YAML, source="stint.yaml", stakeholders=STINT_PEOPLE, actor=ACTOR,
                                  now=now)


def _add_goal(db: Engine, assignment_id: int, now: datetime, title: str = "Lead the host sales team",
              **extra: Any) -> dict[str, Any]:
    return plans.add_goal(db, assignment_id, title=title, measure="quarterly revenue", target="+10%",
                          due="2027-03-31", actor=ACTOR, now=now, **extra).view()


@pytest.fixture
def agreed(db: Engine, stint: int, now: datetime) -> int:
    """The stint with one goal, signed by both signers, moved abroad: its plan is agreed."""
    _add_goal(db, stint, now)
    for role in ("assignee", "home_lead"):
        plans.sign_plan(db, stint, role=role, by=None, actor=ACTOR, now=now)
    advance.advance(db, stint, to=None, reason=None, actor=ACTOR, now=now)
    return stint


def _count(db: Engine, model: Any, *where: Any) -> int:
    with Session(db) as session:
        return int(session.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


def _rows(db: Engine, model: Any, *where: Any) -> list[Any]:
    with Session(db) as session:
        return list(session.exec(select(model).where(*where)).scalars())  # type: ignore[call-overload]


def _plan_at(db: Engine, at: datetime) -> None:
    with transaction(db) as session:
        planner.plan(session, at)


def _after(day: date, days: int) -> datetime:
    """Noon UTC `days` after `day`: past the 09:00 local hour of every zone the cast lives in west of Asia."""
    return datetime.combine(day + timedelta(days=days), time(18, 0), tzinfo=UTC)


# --- versions and sign-offs -------------------------------------------------------------------------------------


def test_every_change_makes_a_version_that_plan_show_keeps(db: Engine, stint: int, now: datetime) -> None:
    """Adding, editing, adding an activity and removing each make a version; every version shows as it was."""
    goal = _add_goal(db, stint, now, competencies=["cultural agility", "resilience"], level="organisation",
                     aligned_to="Grow DACH revenue", baseline="-3%")
    other = _add_goal(db, stint, now, title="Build a peer network")
    plans.edit_goal(db, goal["id"], target="+15%", actor=ACTOR, now=now)
    activity = plans.add_activity(db, goal["id"], kind="mentoring", description="Monthly with the CFO",
                                  due="2026-09-30", actor=ACTOR, now=now).view()
    removed = plans.remove_goal(db, other["id"], reason="merged into the sales goal", actor=ACTOR, now=now).view()
    assert [goal["plan_version"], other["plan_version"], activity["plan_version"], removed["plan_version"]] == [
        2, 3, 5, 6]
    current = plans.show_plan(db, stint).view()
    assert (current["plan_version"], current["current"]) == (6, True)
    [shown] = current["goals"]
    assert (shown["target"], shown["baseline"], shown["competencies"], shown["alignment_level"],
            shown["aligned_to"]) == ("+15%", "-3%", ["cultural agility", "resilience"], "organisation",
                                     "Grow DACH revenue")
    assert [(a["kind"], a["description"], a["due_on"]) for a in shown["activities"]] == [
        ("mentoring", "Monthly with the CFO", "2026-09-30")]
    assert plans.show_plan(db, stint, version=1).goals == ()
    assert [g.target for g in plans.show_plan(db, stint, version=3).goals] == ["+10%", "+10%"]
    at_four = plans.show_plan(db, stint, version=4).view()
    assert ([g["title"] for g in at_four["goals"]], at_four["goals"][0]["target"], at_four["goals"][0]["activities"]
            ) == (["Lead the host sales team", "Build a peer network"], "+15%", [])
    change = plans.show_plan(db, stint, version=4).change
    assert change is not None
    assert change.summary.startswith(f"goal {goal['id']} edited (target)")



def test_a_version_kept_before_objectives_existed_shows_as_it_was_kept(db: Engine, stint: int,
                                                                       now: datetime) -> None:
    """A snapshot written before goals were aligned to objectives has no `objectives`; it shows without them."""
    goal = _add_goal(db, stint, now)
    plans.add_activity(db, goal["id"], kind="mentoring", description="Monthly with the CFO", due="2026-09-30",
                       actor=ACTOR, now=now)
    with transaction(db) as session:
        change = session.execute(select(PlanChange).where(PlanChange.assignment_id == stint,
                                                          PlanChange.plan_version == 2)).scalar_one()
        kept = [{k: v for k, v in g.items() if k != "objectives"} for g in change.snapshot["goals"]]
        change.snapshot = {"goals": kept}
        session.add(change)
    shown = plans.show_plan(db, stint, version=2)
    assert [g.objectives for g in shown.goals] == [None]
    assert shown.view()["goals"] == kept

def test_a_change_voids_exactly_that_versions_sign_offs(db: Engine, stint: int, now: datetime) -> None:
    """Sign-offs bind to their version: a change leaves them on it, void, and the new version starts unsigned."""
    _add_goal(db, stint, now)
    plans.sign_plan(db, stint, role="assignee", by=None, actor=ACTOR, now=now)
    goal = _add_goal(db, stint, now, title="Build a peer network")
    plans.sign_plan(db, stint, role="assignee", by=None, actor=ACTOR, now=now)
    plans.sign_plan(db, stint, role="home_lead", by=HOME_LEAD, actor=ACTOR, now=now)
    plans.edit_goal(db, goal["id"], title="Build a peer network across both sites", actor=ACTOR, now=now)
    assert plans.show_plan(db, stint, version=2).signed_off_by == ("assignee",)
    third = plans.show_plan(db, stint, version=3).view()
    assert third["signed_off_by"] == ["assignee", "home_lead"]
    assert {s["void"] for s in third["signoffs"]} == {True}
    fourth = plans.show_plan(db, stint).view()
    assert (fourth["plan_version"], fourth["signed_off_by"], fourth["unsigned"]) == (4, [], ["assignee", "home_lead"])
    blocking = assignments.show_assignment(db, stint, now=now).view()["blocking"]
    assert [b["reason"] for b in blocking] == ["plan version 4 is not signed off by: assignee, home_lead"]


def test_changes_before_agreement_tell_nobody(db: Engine, stint: int, now: datetime) -> None:
    """While the plan is still being agreed, a change opens no task and queues no plan_changed notice."""
    goal = _add_goal(db, stint, now)
    plans.edit_goal(db, goal["id"], measure="revenue", actor=ACTOR, now=now)
    assert _count(db, Outbox, Outbox.kind == "plan_changed") == 0
    assert _count(db, Task, col(Task.key).startswith("plan-")) == 0
    assert plans.show_plan(db, stint).unacknowledged_versions == ()


# --- changes after agreement ------------------------------------------------------------------------------------


def test_change_after_agreement_tells_home_and_opens_follow_up_in_one_go(db: Engine, agreed: int,
                                                                          now: datetime) -> None:
    """One plan_changed notice to the notify_change role and one follow-up task for the follow_up role."""
    goal = _add_goal(db, agreed, now, title="Run the DACH launch")
    [notice] = _rows(db, Outbox, Outbox.kind == "plan_changed")
    assert (notice.recipient, notice.role, notice.key) == (HOME_LEAD, "home_lead", f"plan_changed/{agreed}/3")
    assert "Run the DACH launch" in notice.body
    assert f"sojourn plan ack {agreed} --by {HOME_LEAD}" in notice.body
    [follow_up] = _rows(db, Task, col(Task.key).startswith("plan-follow-up/"))
    mentor_today = now.date()  # 10:00 UTC is already the same day in Berlin
    assert (follow_up.owner_role, follow_up.due_on, follow_up.id) == (
        "mentor", mentor_today + timedelta(days=3), goal["change"]["follow_up_task"])
    [ack] = _rows(db, Task, col(Task.key).startswith("plan-ack/"))
    assert (ack.owner_role, ack.status, ack.id) == ("home_lead", "open", goal["change"]["acknowledge_task"])
    assert plans.show_plan(db, agreed).unacknowledged_versions == (3,)


def test_refused_change_after_agreement_writes_nothing(db: Engine, db_url: str, agreed: int, now: datetime) -> None:
    """A change refused for a bad value leaves no goal, no notice and no task behind."""
    before = snapshot(db_url)
    with pytest.raises(BadInput, match="must fall within the assignment"):
        plans.add_goal(db, agreed, title="Late", measure="m", target="t", due="2030-01-01", actor=ACTOR, now=now)
    assert snapshot(db_url) == before


def test_notice_and_tasks_commit_with_the_change_or_not_at_all(db: Engine, db_url: str, agreed: int, now: datetime,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """When opening the follow-up fails, the goal and the plan_changed notice written before it roll back too."""
    before = snapshot(db_url)

    def broken(*args: Any, **kwargs: Any) -> Task:
        raise RuntimeError("disk full")

    monkeypatch.setattr(plans, "_plan_task", broken)
    with pytest.raises(RuntimeError):
        _add_goal(db, agreed, now, title="Run the DACH launch")
    assert snapshot(db_url) == before


def test_acknowledgement_stops_the_escalation(db: Engine, agreed: int, now: datetime) -> None:
    """An unacknowledged change escalates as plan_unacknowledged; `plan ack` cancels what is queued and stops more."""
    _add_goal(db, agreed, now, title="Run the DACH launch")
    [ack_task] = _rows(db, Task, col(Task.key).startswith("plan-ack/"))
    _plan_at(db, _after(ack_task.due_on, 4))  # escalation 1 falls 2 days after the task fell overdue
    [first] = _rows(db, Outbox, Outbox.kind == "plan_unacknowledged")
    assert (first.recipient, first.role, first.task_id, first.status) == (HR, "hr", ack_task.id, "pending")
    assert "has not acknowledged" in first.body
    acked = plans.acknowledge_plan_change(db, agreed, by=HOME_LEAD, actor=HOME_LEAD, now=now + timedelta(days=4)).view()
    assert acked["plan_versions"] == [3]
    _plan_at(db, _after(ack_task.due_on, 30))
    about_ack = _rows(db, Outbox, Outbox.task_id == ack_task.id)
    assert {r.status for r in about_ack} == {"cancelled"}
    assert [r.key for r in about_ack if r.kind == "plan_unacknowledged"] == [f"plan_unacknowledged/{ack_task.id}/1/hr"]
    assert plans.show_plan(db, agreed).unacknowledged_versions == ()


def test_without_acknowledgement_the_ladder_runs_to_its_end(db: Engine, agreed: int, now: datetime) -> None:
    """Left alone, the change escalates at every step of the ladder."""
    _add_goal(db, agreed, now, title="Run the DACH launch")
    [ack_task] = _rows(db, Task, col(Task.key).startswith("plan-ack/"))
    _plan_at(db, _after(ack_task.due_on, 30))
    assert sorted(r.key for r in _rows(db, Outbox, Outbox.kind == "plan_unacknowledged")) == [
        f"plan_unacknowledged/{ack_task.id}/1/hr", f"plan_unacknowledged/{ack_task.id}/2/hr"]


def test_acknowledgement_task_is_not_done_by_task_done(db: Engine, db_url: str, agreed: int, now: datetime) -> None:
    """Only `plan ack` closes an acknowledgement, so the change is recorded as acknowledged and by whom."""
    _add_goal(db, agreed, now, title="Run the DACH launch")
    [ack_task] = _rows(db, Task, col(Task.key).startswith("plan-ack/"))
    before = snapshot(db_url)
    with pytest.raises(SojournError, match="asks for the acknowledgement of a plan change") as refused:
        tasks.complete_task(db, pk(ack_task), note=None, actor=HOME_LEAD, now=now)
    assert refused.value.details == [f"the home_lead acknowledges with: sojourn plan ack {agreed} --by EMAIL"]
    assert snapshot(db_url) == before


def test_plan_tasks_do_not_hold_the_stage(db: Engine, agreed: int, now: datetime) -> None:
    """The follow-up and acknowledgement tasks run on the ladder but never block leaving the stage."""
    _add_goal(db, agreed, now, title="Run the DACH launch")
    assert advance.advance(db, agreed, to=None, reason=None, actor=ACTOR, now=now).stage == "done"


# --- the built-in program ---------------------------------------------------------------------------------------


def test_built_in_workflow_refuses_goals_due_during_immersion(db: Engine, spec: assignments.AssignmentSpec,
                                                              now: datetime) -> None:
    """No goal of leadership-development falls due in the first 90 days abroad; the error names the rule."""
    created = assignments.create_assignment(db, spec, actor=ACTOR, now=now).view()
    with pytest.raises(BadInput, match=r"first 90 days abroad \(rule plan.immersion_days") as refused:
        plans.add_goal(db, created["id"], title="Quick win", measure="m", target="t", due="2026-05-29", actor=ACTOR,
                       now=now)
    assert "the earliest due date is 2026-05-30" in refused.value.details[0]
    assert plans.add_goal(db, created["id"], title="First win", measure="m", target="t", due="2026-05-30",
                          actor=ACTOR, now=now).plan_version == 2


def test_workflow_without_plan_section_has_no_plan_rules(db: Engine, people: dict[str, str], now: datetime) -> None:
    """short-term-project declares no plan: goals change freely, nobody is told, nothing awaits acknowledgement."""
    spec = assignments.AssignmentSpec("short-term-project", EMAIL["assignee"], "BR", "DE", "2026-03-01", "2026-06-30",
                                      {role: EMAIL[role] for role in ("sending_manager", "host_manager", "mobility")})
    created = assignments.create_assignment(db, spec, actor=ACTOR, now=now).view()
    plans.add_goal(db, created["id"], title="Ship the pilot", measure="m", target="t", due="2026-03-15", actor=ACTOR,
                   now=now)
    assert _count(db, Outbox, Outbox.kind == "plan_changed") == 0
    assert plans.show_plan(db, created["id"]).signers == ()


# --- the command line -------------------------------------------------------------------------------------------


def _json(outcome: Outcome) -> Any:
    assert outcome.code == 0, outcome
    return json.loads(outcome.stdout)


def test_plan_commands_print_one_json_document(on_db: Sojourn, db: Engine, agreed: int) -> None:
    """goal edit, activity add, plan show and plan ack each print one JSON document."""
    goal_id = plans.show_plan(db, agreed).goals[0].id
    edited = _json(on_db("goal", "edit", str(goal_id), "--competency", "strategic thinking", "--level",
                         "individual", "--json"))
    assert (edited["plan_version"], edited["competencies"], edited["change"]["notified"]) == (
        3, ["strategic thinking"], [HOME_LEAD])
    added = _json(on_db("activity", "add", str(goal_id), "--kind", "reflection", "--description", "Weekly journal",
                        "--json"))
    assert (added["plan_version"], added["due_on"]) == (4, None)
    shown = _json(on_db("plan", "show", str(agreed), "--json"))
    assert (shown["plan_version"], shown["unacknowledged_versions"]) == (4, [3, 4])
    assert shown["goals"][0]["activities"][0]["kind"] == "reflection"
    assert _json(on_db("plan", "show", str(agreed), "--version", "2", "--json"))["signed_off_by"] == [
        "assignee", "home_lead"]
    acked = _json(on_db("plan", "ack", str(agreed), "--by", HOME_LEAD, "--json"))
    assert (acked["role"], acked["plan_versions"]) == ("home_lead", [3, 4])
    assert _count(db, Task, col(Task.key).startswith("plan-ack/"), Task.status == "open") == 0


@pytest.mark.parametrize(("args", "code", "fragments"), [
    (["goal", "edit", "999", "--title", "x"], 1, ["no goal 999"]),
    (["goal", "remove", "999", "--reason", "gone"], 1, ["no goal 999"]),
    (["activity", "add", "999", "--kind", "mentoring", "--description", "x"], 1, ["no goal 999"]),
    (["activity", "add", "{goal}", "--kind", "golf", "--description", "x"], 2, ["unknown activity kind 'golf'"]),
    (["goal", "edit", "{goal}"], 2, ["nothing to change"]),
    (["goal", "edit", "{goal}", "--level", "galaxy"], 2, ["unknown alignment level 'galaxy'"]),
    (["goal", "edit", "{goal}", "--due", "2030-01-01"], 2, ["must fall within the assignment"]),
    (["goal", "remove", "{goal}", "--reason", " "], 2, ["--reason: must not be empty"]),
    (["plan", "show", "{id}", "--version", "9"], 1, ["has no plan version 9"]),
    (["plan", "ack", "{id}", "--by", EMAIL["assignee"]], 1, [f"{EMAIL['assignee']} is not the home_lead",
                                                             f"{HOME_LEAD} is"]),
    (["signoff", "{id}", "--role", "home_lead", "--by", MENTOR], 1, [f"{MENTOR} is not the home_lead"]),
    (["signoff", "{id}", "--role", "mentor"], 1, ["the mentor does not sign plans", "signers: assignee, home_lead"]),
], ids=["edit-unknown-goal", "remove-unknown-goal", "activity-of-unknown-goal", "unknown-activity-kind",
        "edit-nothing", "unknown-level", "due-outside-assignment", "remove-without-reason", "unknown-version",
        "ack-by-someone-else", "signoff-by-someone-else", "signoff-by-a-role-that-does-not-sign"])
def test_plan_commands_refuse_bad_input_and_write_nothing(on_db: Sojourn, db: Engine, db_url: str, agreed: int,
                                                          now: datetime, args: list[str], code: int,
                                                          fragments: list[str]) -> None:
    """A bad goal, activity, person or value exits 1 or 2 with `Error:` lines and leaves the database as it was."""
    goal = plans.edit_goal(db, plans.show_plan(db, agreed).goals[0].id, target="+12%", actor=ACTOR, now=now).view()
    before = snapshot(db_url)
    outcome = on_db(*(a.format(id=agreed, goal=goal["id"]) for a in args))
    assert outcome.code == code, outcome
    assert outcome.stdout == ""
    assert "Traceback" not in outcome.stderr
    assert all(line.startswith("Error: ") for line in outcome.stderr.splitlines())
    for fragment in fragments:
        assert fragment in outcome.stderr
    assert snapshot(db_url) == before


@pytest.mark.parametrize(("args", "fragments"), [
    (["goal", "edit", "{goal}", "--title", "x"], ["goal {goal} was removed"]),
    (["plan", "ack", "{id}", "--by", HOME_LEAD], ["no plan change waiting for acknowledgement"]),
], ids=["edit-removed-goal", "ack-with-nothing-to-acknowledge"])
def test_refused_plan_commands_on_settled_state_write_nothing(on_db: Sojourn, db: Engine, db_url: str, stint: int,
                                                              now: datetime, args: list[str],
                                                              fragments: list[str]) -> None:
    """A removed goal cannot change, and there is nothing to acknowledge before the plan is agreed."""
    goal = _add_goal(db, stint, now)
    plans.remove_goal(db, goal["id"], reason="replaced", actor=ACTOR, now=now)
    before = snapshot(db_url)
    outcome = on_db(*(a.format(id=stint, goal=goal["id"]) for a in args))
    assert outcome.code == 1, outcome
    for fragment in fragments:
        assert fragment.format(goal=goal["id"]) in outcome.stderr
    assert snapshot(db_url) == before
