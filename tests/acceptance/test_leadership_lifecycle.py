"""A leadership-development assignment walked from interviews to completed with the installed `sojourn`."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from acceptance.conftest import Sojourn
from tests.support.cast import CAST, emails

EMAIL = emails()
PLAN_SIGNERS = ["assignee", "sending_manager", "host_manager", "talent", "mobility"]


def day(offset: int) -> str:
    return (date.today() + timedelta(days=offset)).isoformat()


def add_cast(sojourn: Sojourn) -> None:
    for email, name, tz in CAST.values():
        sojourn.ok("person", "add", email, "--name", name, "--tz", tz)


def create(sojourn: Sojourn, start: str, end: str, *options: str) -> dict[str, Any]:
    stakeholders = [part for role, email in EMAIL.items() if role != "assignee"
                    for part in ("--stakeholder", f"{role}={email}")]
    return dict(sojourn.json("assignment", "create", "--workflow", "leadership-development", "--assignee",
                             EMAIL["assignee"], "--home", "BR", "--host", "DE", "--start", start, "--end", end,
                             *stakeholders, *options))


def open_stage_tasks(view: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for t in view["tasks"] if t["stage"] == view["stage"] and t["status"] == "open"]


def complete_stage_tasks(sojourn: Sojourn, view: dict[str, Any]) -> None:
    """Each open task of the current stage, done by its owner."""
    for task in open_stage_tasks(view):
        sojourn.ok("task", "done", str(task["id"]), "--note", "done", actor=task["owner"])


def add_goal(sojourn: Sojourn, assignment_id: str, title: str, due: str | None = None) -> dict[str, Any]:
    """A goal due `due`, by default 30 days from today."""
    return dict(sojourn.json("goal", "add", assignment_id, "--title", title, "--measure", "engagement survey",
                             "--target", "top quartile", "--due", due or day(30), actor=EMAIL["assignee"]))


def sign(sojourn: Sojourn, assignment_id: str, roles: list[str]) -> None:
    for role in roles:
        sojourn.ok("signoff", assignment_id, "--role", role, actor=EMAIL[role])


def assert_refused_with(stderr: str, *fragments: str) -> None:
    for fragment in fragments:
        assert fragment in stderr, f"{fragment!r} not in {stderr!r}"


def advance(sojourn: Sojourn, assignment_id: str, expected: str, reason: str, actor: str) -> dict[str, Any]:
    moved = dict(sojourn.json("advance", assignment_id, "--reason", reason, actor=actor))
    assert moved["stage"] == expected
    return moved


def walk_to(sojourn: Sojourn, view: dict[str, Any], stage: str) -> dict[str, Any]:
    """Do whatever each stage needs and advance, until the assignment is in `stage`."""
    assignment_id = str(view["id"])
    while view["stage"] != stage:
        complete_stage_tasks(sojourn, view)
        if view["stage"] == "plan_agreed":
            # no goal falls due in the first 90 days abroad
            due = (date.fromisoformat(view["start"]) + timedelta(days=120)).isoformat()
            add_goal(sojourn, assignment_id, "Lead the host team through one planning cycle", due)
            sign(sojourn, assignment_id, PLAN_SIGNERS)
        view = dict(sojourn.json("advance", assignment_id, actor=EMAIL["mobility"]))
    return view


def test_leadership_assignment_runs_from_interviews_to_completed(sojourn: Sojourn) -> None:
    """Every stage refuses to advance until its guards pass, names what is missing and who must act, then moves."""
    add_cast(sojourn)
    view = create(sojourn, start=day(-300), end=day(60))
    aid = str(view["id"])
    coach, mobility, talent = EMAIL["coach"], EMAIL["mobility"], EMAIL["talent"]

    # interviews: both interviews are the coach's
    assert_refused_with(sojourn.refused("advance", aid), "cannot move from interviews to plan_agreed yet",
                        "stage_tasks_done", "interview_assignee (coach)", "interview_sending_manager (coach)",
                        f"must act: coach {coach}")
    complete_stage_tasks(sojourn, view)
    view = advance(sojourn, aid, "plan_agreed", "both interviews held", coach)

    # plan_agreed: tasks, a SMART goal and five sign-offs of the current plan
    refused = sojourn.refused("advance", aid)
    assert_refused_with(refused, "stage_tasks_done", "draft_development_plan (coach)",
                        "share_plan_with_host_coach (talent)", "min_smart_goals", "plan_signed_off",
                        f"plan version 1 is not signed off by: {', '.join(PLAN_SIGNERS)}",
                        "must act: " + ", ".join(f"{role} {EMAIL[role]}" for role in PLAN_SIGNERS))
    assert add_goal(sojourn, aid, "Lead the host team through one planning cycle")["plan_version"] == 2
    complete_stage_tasks(sojourn, view)
    sign(sojourn, aid, PLAN_SIGNERS[:4])
    refused = sojourn.refused("advance", aid)
    assert_refused_with(refused, "plan version 2 is not signed off by: mobility", f"must act: mobility {mobility}")
    assert "stage_tasks_done" not in refused
    assert "min_smart_goals" not in refused
    sign(sojourn, aid, ["mobility"])
    assert sojourn.json("assignment", "show", aid)["blocking"] == []
    assert add_goal(sojourn, aid, "Build a peer network across both sites")["plan_version"] == 3
    refused = sojourn.refused("advance", aid)
    assert_refused_with(refused, f"plan version 3 is not signed off by: {', '.join(PLAN_SIGNERS)}",
                        "must act: " + ", ".join(f"{role} {EMAIL[role]}" for role in PLAN_SIGNERS))
    sign(sojourn, aid, PLAN_SIGNERS)
    view = advance(sojourn, aid, "orientation", "plan agreed by all", talent)

    # orientation, manager_briefing and alignment_meetings: each waits for its own tasks
    for stage, owners, nxt in [
        ("orientation", ["family_orientation (mobility)", "cross_cultural_immersion (mobility)",
                         f"must act: mobility {mobility}"], "manager_briefing"),
        ("manager_briefing", ["host_manager_briefing (host_manager)",
                              f"must act: host_manager {EMAIL['host_manager']}"], "alignment_meetings"),
        ("alignment_meetings", ["align_with_host_manager (coach)", "align_with_host_team (coach)",
                                f"must act: coach {coach}"], "coaching"),
    ]:
        assert_refused_with(sojourn.refused("advance", aid), f"cannot move from {stage} to {nxt} yet",
                            "stage_tasks_done", *owners)
        complete_stage_tasks(sojourn, view)
        view = advance(sojourn, aid, nxt, f"{stage} finished", mobility)

    # coaching: the review is due; the end date is 60 days away, so the 180-day date guard already passes
    sojourn.ok("contact", "log", aid, "--kind", "coaching", "--with", coach, "--on", day(0), actor=coach)
    refused = sojourn.refused("advance", aid)
    assert_refused_with(refused, "cannot move from coaching to repatriation yet", "mid_assignment_review (coach)")
    assert "not_before" not in refused
    complete_stage_tasks(sojourn, view)
    view = advance(sojourn, aid, "repatriation", "mid-assignment review held", coach)

    # repatriation: three owners must act before the assignment completes
    assert_refused_with(sojourn.refused("advance", aid), "cannot move from repatriation to completed yet",
                        "plan_repatriation (mobility)", "confirm_return_role (sending_manager)",
                        "final_coaching_session (coach)",
                        f"must act: mobility {mobility}, sending_manager {EMAIL['sending_manager']}, coach {coach}")
    complete_stage_tasks(sojourn, view)
    advance(sojourn, aid, "completed", "back home in the new role", mobility)

    final = sojourn.json("assignment", "show", aid)
    assert (final["stage"], final["blocking"], final["next_stage"]) == ("completed", [], None)
    assert sorted(t["key"] for t in open_stage_tasks(final)) == ["record_outcome_12_months",
                                                                 "record_outcome_24_months"]
    history = sojourn.json("history", aid)
    assert [(h["from"], h["to"], h["actor"], h["reason"]) for h in history] == [
        (None, "interviews", "admin@example.com", "created"),
        ("interviews", "plan_agreed", coach, "both interviews held"),
        ("plan_agreed", "orientation", talent, "plan agreed by all"),
        ("orientation", "manager_briefing", mobility, "orientation finished"),
        ("manager_briefing", "alignment_meetings", mobility, "manager_briefing finished"),
        ("alignment_meetings", "coaching", mobility, "alignment_meetings finished"),
        ("coaching", "repatriation", coach, "mid-assignment review held"),
        ("repatriation", "completed", mobility, "back home in the new role"),
    ]
    assert all(h["at"].endswith("+00:00") for h in history)

    assert_refused_with(sojourn.refused("advance", aid), "stage 'completed' is final")
    assert_refused_with(sojourn.refused("advance", aid, "--to", "cancelled", "--reason", "too late"),
                        "cannot go from completed to cancelled")
    assert len(sojourn.json("history", aid)) == len(history)


def test_repatriation_waits_until_180_days_before_the_end(sojourn: Sojourn) -> None:
    """With the end date 400 days away, coaching refuses to move on and names the first day it may."""
    add_cast(sojourn)
    view = walk_to(sojourn, create(sojourn, start=day(-10), end=day(400)), "coaching")
    complete_stage_tasks(sojourn, view)
    refused = sojourn.refused("advance", str(view["id"]))
    assert_refused_with(refused, "cannot move from coaching to repatriation yet",
                        f"not_before: not before {day(220)} (180 day(s) before the end date)",
                        f"must act: mobility {EMAIL['mobility']}")
    assert "stage_tasks_done" not in refused
    assert sojourn.json("assignment", "show", str(view["id"]))["stage"] == "coaching"


def test_cancellation_needs_a_reason_and_closes_open_tasks(sojourn: Sojourn) -> None:
    """Cancelling without a reason is bad input; with one, the assignment is cancelled and no task stays open."""
    add_cast(sojourn)
    kept = create(sojourn, start=day(-10), end=day(400))
    view = walk_to(sojourn, create(sojourn, day(-10), day(400), "--allow-overlap"), "plan_agreed")
    aid = str(view["id"])
    assert open_stage_tasks(view)

    assert_refused_with(sojourn.refused("advance", aid, "--to", "cancelled", code=2),
                        "moving to cancelled needs a reason")
    cancelled = sojourn.json("advance", aid, "--to", "cancelled", "--reason", "family emergency",
                             actor=EMAIL["mobility"])
    assert cancelled["stage"] == "cancelled"
    assert [t["status"] for t in cancelled["tasks"] if t["status"] == "open"] == []
    assert sojourn.json("task", "list", "--assignment", aid, "--status", "open") == []
    last = sojourn.json("history", aid)[-1]
    assert (last["from"], last["to"], last["actor"], last["reason"]) == (
        "plan_agreed", "cancelled", EMAIL["mobility"], "family emergency")
    assert_refused_with(sojourn.refused("advance", aid), "stage 'cancelled' is final")
    untouched = sojourn.json("task", "list", "--assignment", str(kept["id"]), "--status", "open")
    assert len(untouched) == 2

