"""Use cases against a real database, run on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from engine.domain.errors import BadInput, GuardsUnmet, InvalidTransition, NotFound
from engine.domain.views import views
from engine.program import advance, assignments, imports, plans, tasks, workflows
from engine.store.models import Outbox, StageChange, Task
from workflows import builtin_workflow_texts

ACTOR = "admin@example.com"


def _create(db: Engine, spec: assignments.AssignmentSpec, now: datetime) -> dict[str, Any]:
    return assignments.create_assignment(db, spec, actor=ACTOR, now=now).view()


def _finish_stage_tasks(db: Engine, assignment: dict[str, Any], now: datetime) -> None:
    for task in assignment["tasks"]:
        if task["stage"] == assignment["stage"] and task["status"] == "open":
            tasks.complete_task(db, task["id"], note=None, actor=ACTOR, now=now)


def _agree_plan(db: Engine, assignment_id: int, now: datetime) -> None:
    plans.add_goal(db, assignment_id, title="Lead the host sales team", measure="quarterly revenue",
                   target="+10%", due="2027-03-31", actor=ACTOR, now=now)
    for role in ("assignee", "sending_manager", "host_manager", "talent", "mobility"):
        plans.sign_plan(db, assignment_id, role=role, by=None, actor=ACTOR, now=now)


def _count(db: Engine, model: Any, *where: Any) -> int:
    with Session(db) as session:
        return int(session.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


def test_create_starts_in_interviews_with_tasks_due_in_owner_zone(db: Engine, spec: assignments.AssignmentSpec,
                                                                   now: datetime) -> None:
    """A new assignment enters the first stage with its tasks, due 14 days later at the owner's midnight."""
    created = _create(db, spec, now)
    assert created["stage"] == "interviews"
    assert [t["key"] for t in created["tasks"]] == ["interview_assignee", "interview_sending_manager"]
    task = created["tasks"][0]
    assert (task["owner"], task["due_on"]) == ("cole.coach@example.com", "2026-03-16")
    assert task["due_at"] == "2026-03-16T23:00:00+00:00"  # midnight in Berlin, UTC+1 in March


def test_create_writes_history_and_stage_notices_in_the_same_transaction(db: Engine, spec: assignments.AssignmentSpec,
                                                                        now: datetime) -> None:
    """Creation appends history and tells every stakeholder through the outbox."""
    created = _create(db, spec, now)
    assert views(assignments.history(db, created["id"])) == [{
        "event": "stage_changed", "from": None, "to": "interviews", "at": now.isoformat(), "actor": ACTOR,
        "reason": "created", "workflow_version": 1}]
    assert _count(db, Outbox, Outbox.kind == "stage_changed") == 3  # assignee, mobility, the coach with tasks


def test_advance_refuses_when_stage_tasks_are_open(db: Engine, spec: assignments.AssignmentSpec, now: datetime) -> None:
    """The refusal names the open tasks and who must act, and writes nothing."""
    created = _create(db, spec, now)
    with pytest.raises(GuardsUnmet) as refused:
        advance.advance(db, created["id"], to=None, reason=None, actor=ACTOR, now=now)
    assert refused.value.details == [
        "stage_tasks_done: 2 task(s) of stage interviews still open: interview_assignee (coach); "
        "interview_sending_manager (coach); must act: coach cole.coach@example.com"]
    assert assignments.show_assignment(db, created["id"], now=now).stage == "interviews"
    assert _count(db, StageChange) == 1


def test_advance_refuses_when_plan_unsigned(db: Engine, spec: assignments.AssignmentSpec, now: datetime) -> None:
    """Leaving plan_agreed lists every missing sign-off with the person who must sign."""
    created = _create(db, spec, now)
    _finish_stage_tasks(db, created, now)
    moved = advance.advance(db, created["id"], to=None, reason=None, actor=ACTOR, now=now).view()
    _finish_stage_tasks(db, moved, now)
    plans.add_goal(db, created["id"], title="Lead", measure="NPS", target="40", due="2026-12-01", actor=ACTOR,
                   now=now)
    plans.sign_plan(db, created["id"], role="assignee", by=None, actor=ACTOR, now=now)
    with pytest.raises(GuardsUnmet) as refused:
        advance.advance(db, created["id"], to=None, reason=None, actor=ACTOR, now=now)
    assert refused.value.details == [
        "plan_signed_off: plan version 2 is not signed off by: sending_manager, host_manager, talent, mobility; "
        "must act: sending_manager sam.home@example.com, host_manager hanna.host@example.com, "
        "talent tess.talent@example.com, mobility mo.mobility@example.com"]


def test_new_goal_invalidates_earlier_signoffs(db: Engine, spec: assignments.AssignmentSpec, now: datetime) -> None:
    """Sign-offs bind to a plan version; changing the plan needs them again."""
    created = _create(db, spec, now)
    _agree_plan(db, created["id"], now)
    assert assignments.show_assignment(db, created["id"], now=now).view()["signed_off_by"] == [
        "assignee", "host_manager", "mobility", "sending_manager", "talent"]
    plans.add_goal(db, created["id"], title="Mentor two local leads", measure="mentees promoted", target="1",
                   due="2027-06-30", actor=ACTOR, now=now)
    shown = assignments.show_assignment(db, created["id"], now=now).view()
    assert (shown["plan_version"], shown["signed_off_by"]) == (3, [])


def test_plan_change_after_agreement_tells_the_sending_manager(db: Engine, spec: assignments.AssignmentSpec,
                                                              now: datetime) -> None:
    """A goal added abroad writes a plan_changed notice to the home manager at once."""
    created = _create(db, spec, now)
    _finish_stage_tasks(db, created, now)
    moved = advance.advance(db, created["id"], to=None, reason=None, actor=ACTOR, now=now).view()
    _finish_stage_tasks(db, moved, now)
    _agree_plan(db, created["id"], now)
    assert _count(db, Outbox, Outbox.kind == "plan_changed") == 0
    advance.advance(db, created["id"], to=None, reason=None, actor=ACTOR, now=now)
    plans.add_goal(db, created["id"], title="Run the DACH launch", measure="launch date", target="on time",
                   due="2027-01-15", actor=ACTOR, now=now)
    with Session(db) as session:
        notice = session.exec(select(Outbox).where(Outbox.kind == "plan_changed")).scalar_one()  # type: ignore[call-overload]
    assert notice.recipient == "sam.home@example.com"
    assert "Run the DACH launch" in notice.body


def test_cancel_needs_a_reason_and_closes_open_tasks(db: Engine, spec: assignments.AssignmentSpec,
                                                     now: datetime) -> None:
    """Cancellation is reachable from any stage, records its reason and stops the task reminders."""
    created = _create(db, spec, now)
    with pytest.raises(BadInput, match="needs a reason"):
        advance.advance(db, created["id"], to="cancelled", reason=None, actor=ACTOR, now=now)
    cancelled = advance.advance(db, created["id"], to="cancelled", reason="family emergency", actor=ACTOR,
                                now=now).view()
    assert cancelled["stage"] == "cancelled"
    assert {t["status"] for t in cancelled["tasks"]} == {"cancelled"}
    assert _count(db, Task, Task.next_reminder_at.is_not(None)) == 0  # type: ignore[union-attr]
    assert views(assignments.history(db, created["id"]))[-1]["reason"] == "family emergency"


def test_advance_to_unreachable_stage_is_invalid(db: Engine, spec: assignments.AssignmentSpec, now: datetime) -> None:
    """Skipping ahead is refused with the stages that are allowed."""
    created = _create(db, spec, now)
    with pytest.raises(InvalidTransition, match="allowed from interviews: plan_agreed, cancelled"):
        advance.advance(db, created["id"], to="coaching", reason=None, actor=ACTOR, now=now)


def test_full_lifecycle_reaches_completed(db: Engine, spec: assignments.AssignmentSpec) -> None:
    """Every stage can be passed once its conditions are met, ending in completed with outcome tasks."""
    now = datetime(2027, 3, 15, 9, tzinfo=UTC)  # within 180 days of the 2027-08-31 end date
    assignment = _create(db, spec, now)
    stages = [assignment["stage"]]
    while assignment["next_stage"]:
        _finish_stage_tasks(db, assignment, now)
        if assignment["stage"] == "plan_agreed":
            _agree_plan(db, assignment["id"], now)
        assignment = advance.advance(db, assignment["id"], to=None, reason=None, actor=ACTOR, now=now).view()
        stages.append(assignment["stage"])
        now += timedelta(days=1)
    assert stages == ["interviews", "plan_agreed", "orientation", "manager_briefing", "alignment_meetings",
                      "coaching", "repatriation", "completed"]
    outcome = [t for t in assignment["tasks"] if t["stage"] == "completed"]
    assert [(t["key"], t["due_on"]) for t in outcome] == [("record_outcome_12_months", "2028-08-30"),
                                                          ("record_outcome_24_months", "2029-08-30")]


def test_repatriation_waits_for_the_window_before_the_end_date(db: Engine, spec: assignments.AssignmentSpec,
                                                               now: datetime) -> None:
    """Leaving coaching is refused until 180 days before the end, naming that date."""
    assignment = _create(db, spec, now)
    while assignment["stage"] != "coaching":
        _finish_stage_tasks(db, assignment, now)
        if assignment["stage"] == "plan_agreed":
            _agree_plan(db, assignment["id"], now)
        assignment = advance.advance(db, assignment["id"], to=None, reason=None, actor=ACTOR, now=now).view()
    _finish_stage_tasks(db, assignment, now)
    with pytest.raises(GuardsUnmet) as refused:
        advance.advance(db, assignment["id"], to=None, reason=None, actor=ACTOR, now=now)
    assert refused.value.details == ["not_before: not before 2027-03-04 (180 day(s) before the end date); "
                                     "must act: mobility mo.mobility@example.com"]


def test_installed_version_applies_to_new_assignments_only(db: Engine, spec: assignments.AssignmentSpec,
                                                          now: datetime) -> None:
    """Running assignments keep their workflow version and tasks; new ones take the new version."""
    before = _create(db, spec, now)
    text = builtin_workflow_texts()["leadership-development.yaml"].replace(
        "      - key: interview_sending_manager",
        "      - key: interview_host_manager\n        title: Interview the host manager\n        owner: coach\n"
        "        due: {days: 10}\n      - key: interview_sending_manager")
    installed = workflows.install_workflow(db, text, source="v2.yaml", now=now).view()
    assert (installed["version"], installed["new"]) == (2, True)
    assert workflows.install_workflow(db, text, source="v2.yaml", now=now).new is False
    after = _create(db, spec, now)
    assert assignments.show_assignment(db, before["id"], now=now).workflow_version == 1
    assert len(assignments.show_assignment(db, before["id"], now=now).view()["tasks"]) == 2
    assert (after["workflow_version"], len(after["tasks"])) == (2, 3)


def test_import_is_all_or_nothing_with_line_numbers(db: Engine, people: dict[str, str]) -> None:
    """One bad line among good ones imports nothing and names the line."""
    roles = "sending_manager,host_manager,coach,sponsor,talent,mobility"
    holders = ",".join(people[r] for r in roles.split(","))
    good = f"leadership-development,{people['assignee']},BR,DE,2026-04-01,2027-04-01,{holders}"
    bad = f"leadership-development,{people['assignee']},BR,DE,2026-04-01,2025-04-01,{holders}"
    text = f"workflow,assignee,home,host,start,end,{roles}\n{good}\n{bad}\n{good}\n"
    with pytest.raises(BadInput) as refused:
        imports.import_assignments(db, text, source="hr.csv", actor=ACTOR, now=datetime(2026, 3, 2, tzinfo=UTC))
    assert refused.value.details == ["hr.csv, line 3: end 2025-04-01 must be after start 2026-04-01"]
    assert views(assignments.list_assignments(db, now=datetime(2026, 3, 2, tzinfo=UTC))) == []
    imported = views(imports.import_assignments(db, text.replace(bad, good), source="hr.csv", actor=ACTOR,
                                          now=datetime(2026, 3, 2, tzinfo=UTC)))
    assert len(imported) == 3


def test_unknown_assignment_is_not_found(db: Engine) -> None:
    """Naming an assignment that does not exist is refused."""
    with pytest.raises(NotFound, match="no assignment 42"):
        assignments.show_assignment(db, 42, now=datetime(2026, 3, 2, tzinfo=UTC))


def test_init_keeps_an_admins_newer_version(db: Engine, now: datetime) -> None:
    """Re-running init (as a service unit does at every start) does not reinstall a built-in over a custom version."""
    custom = builtin_workflow_texts()["leadership-development.yaml"].replace(
        "title: Leadership development assignment", "title: Leadership development (EMEA)")
    assert workflows.install_workflow(db, custom, source="emea.yaml", now=now).version == 2
    report = workflows.init(db, now=now).view()
    assert {w["name"]: (w["version"], w["new"]) for w in report["workflows"]} == {
        "leadership-development": (1, False), "short-term-project": (1, False)}
    assert workflows.show_workflow(db, "leadership-development").definition["title"] == "Leadership development (EMEA)"
