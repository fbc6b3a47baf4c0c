"""Guards: each says whether a transition may happen, why not, and which roles must act."""

from __future__ import annotations

from datetime import date

from engine.domain.guards import (
    GoalFacts,
    GuardContext,
    TaskFacts,
    goals_aligned,
    min_smart_goals,
    not_before,
    plan_signed_off,
    stage_tasks_done,
)

BASE = GuardContext(stage="plan_agreed", start=date(2026, 1, 31), end=date(2027, 6, 30), today=date(2026, 3, 1),
                    plan_version=3)
SIGNERS = ["assignee", "sending_manager", "host_manager", "talent", "mobility"]


def _with(**changes: object) -> GuardContext:
    return GuardContext(**{**BASE.__dict__, **changes})  # type: ignore[arg-type]


def test_stage_tasks_done_passes_when_every_task_is_done() -> None:
    """No open task in the stage means the guard passes."""
    ctx = _with(stage_tasks=(TaskFacts("a", "A", "coach", True), TaskFacts("b", "B", "talent", True)))
    assert stage_tasks_done(ctx).ok


def test_stage_tasks_done_names_open_tasks_and_their_owner_roles() -> None:
    """Open tasks are listed with their owners, who are the ones to act."""
    ctx = _with(stage_tasks=(TaskFacts("a", "A", "coach", False), TaskFacts("b", "B", "talent", False),
                             TaskFacts("c", "C", "coach", False), TaskFacts("d", "D", "mobility", True)))
    result = stage_tasks_done(ctx)
    assert not result.ok
    assert result.reason == "3 task(s) of stage plan_agreed still open: a (coach); b (talent); c (coach)"
    assert result.who == ("coach", "talent")


def test_min_smart_goals_ignores_goals_without_measure_target_or_due() -> None:
    """Only specific, measurable, time-limited goals count."""
    vague = GoalFacts("Grow", "", "", None)
    smart = GoalFacts("Lead the host team", "engagement score", ">= 75", date(2026, 12, 1))
    assert not min_smart_goals(_with(goals=(vague,)), count=1).ok
    assert min_smart_goals(_with(goals=(vague, smart)), count=1).ok
    refused = min_smart_goals(_with(goals=(smart,)), count=2)
    assert refused.reason == ("the plan has 1 goal(s) with a measure, a target and a due date; it needs at least 2")


def test_plan_signed_off_lists_missing_roles_in_order() -> None:
    """Every role still to sign the current plan version is named."""
    result = plan_signed_off(_with(signed_roles=frozenset({"assignee", "talent"})), roles=SIGNERS)
    assert not result.ok
    assert result.who == ("sending_manager", "host_manager", "mobility")
    assert result.reason == "plan version 3 is not signed off by: sending_manager, host_manager, mobility"


def test_plan_signed_off_passes_with_every_role() -> None:
    """All five sign-offs on the current version let the plan move on."""
    assert plan_signed_off(_with(signed_roles=frozenset(SIGNERS)), roles=SIGNERS).ok


def test_not_before_counts_from_the_end_date() -> None:
    """Repatriation may start 180 days before the end date, not a day earlier."""
    earliest = date(2027, 1, 1)  # 2027-06-30 minus 180 days
    assert not not_before(_with(today=date(2026, 12, 31)), days=-180, anchor="end").ok
    assert not_before(_with(today=earliest), days=-180, anchor="end").ok
    refused = not_before(_with(today=date(2026, 12, 31)), days=-180, anchor="end")
    assert refused.reason == "not before 2027-01-01 (180 day(s) before the end date)"
    assert refused.who == ("mobility",)


def test_not_before_counts_from_the_start_date() -> None:
    """A positive offset from the start date waits that many days."""
    assert not not_before(_with(today=date(2026, 3, 1)), days=90, anchor="start").ok
    assert not_before(_with(today=date(2026, 5, 1)), days=90, anchor="start").ok


def test_plan_signed_off_without_roles_reads_the_workflows_signers() -> None:
    """A bare plan_signed_off asks for the signers the plan section declares, in their order."""
    signers = ("assignee", "home_lead")
    result = plan_signed_off(_with(signed_roles=frozenset({"assignee"}), plan_signers=signers))
    assert (result.ok, result.who) == (False, ("home_lead",))
    assert plan_signed_off(_with(signed_roles=frozenset(signers), plan_signers=signers)).ok


def _goal(goal_id: int, title: str, *levels: str) -> GoalFacts:
    return GoalFacts(title, "a measure", "a target", date(2026, 12, 31), goal_id, frozenset(levels))


def test_goals_aligned_names_each_unaligned_goal_and_the_goal_writers() -> None:
    """Goals aligned to no objective are named by id and title; the assignee and goal writers must act."""
    ctx = _with(goals=(_goal(1, "Lead sales", "organisation", "mobility_team"), _goal(2, "Learn German"),
                       _goal(3, "Hire two")), goal_writers=("assignee", "sending_manager"))
    result = goals_aligned(ctx)
    assert not result.ok
    assert result.reason.startswith("2 goal(s) aligned to no objective: goal 2 (Learn German); goal 3 (Hire two) (")
    assert result.who == ("assignee", "sending_manager")


def test_goals_aligned_names_a_level_no_goal_reaches_and_the_named_role() -> None:
    """Every goal aligned, one level unreached: the level is named, and the `role` parameter is who must act."""
    ctx = _with(goals=(_goal(1, "Lead sales", "organisation"),))
    result = goals_aligned(ctx, role="talent")
    assert result.reason.startswith("no goal is aligned to an objective of level mobility_team (")
    assert result.who == ("talent",)
    assert goals_aligned(ctx, levels=["organisation"]).ok


def test_goals_aligned_passes_when_every_goal_and_level_is_covered() -> None:
    """Each goal serves an objective and both levels are reached between them."""
    ctx = _with(goals=(_goal(1, "Lead sales", "organisation"), _goal(2, "Retain the team", "mobility_team")))
    assert goals_aligned(ctx).ok
