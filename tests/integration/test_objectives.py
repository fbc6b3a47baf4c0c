"""Objectives on SQLite and PostgreSQL: goals aligned to them, a workflow that holds an unaligned plan, the roll-up
per objective in the summary and the report, every bad input at once, and `audit verify` over objectives and links."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import Engine

from engine.domain.errors import GuardsUnmet
from engine.program import advance, assignments, checkins, objectives, outcomes, plans
from engine.program.people import add_person
from integration.conftest import Sojourn, snapshot
from integration.test_audit import _raw
from tests.support import scenarios
from tests.support.cast import emails
from tests.support.scenarios import PLAN_SIGNERS

ACTOR = "tess.talent@example.com"
EMAIL = emails()
GOAL_DUE = "2027-06-30"

# The plan cannot be agreed until every goal serves an objective and both levels above the person are reached; the
# talent team, which keeps the objectives, is who must act.
ALIGNED_YAML = """
name: aligned-stint
title: Aligned stint abroad
roles: [assignee, sending_manager, talent]
initial: agree
stages:
  - {key: agree, title: Agree the plan}
  - {key: abroad, title: Abroad}
  - {key: done, title: Done}
transitions:
  - {from: agree, to: abroad, guards: [plan_signed_off, {guard: goals_aligned, params: {role: talent}}]}
  - {from: abroad, to: done}
reminders: {escalate_to: talent}
plan:
  agreed_stage: agree
  signers: [assignee, sending_manager]
"""


def _objective(db: Engine, level: str, title: str, now: datetime, **extra: Any) -> int:
    return objectives.add_objective(db, level=level, title=title, actor=ACTOR, now=now, **extra).id


def _goal(db: Engine, assignment_id: int, title: str, now: datetime, *objective_ids: int) -> int:
    added = plans.add_goal(db, assignment_id, title=title, measure="a measure", target="a target", due=GOAL_DUE,
                           objectives=[str(o) for o in objective_ids], actor=ACTOR, now=now).view()
    return int(added["id"])


@pytest.fixture
def stint(db: Engine, people: dict[str, str], now: datetime) -> int:
    """An assignment of the workflow that requires alignment, agreeing its plan."""
    return scenarios.assignment_of_workflow(
        db, ALIGNED_YAML, source="aligned.yaml", actor=ACTOR, now=now,
        stakeholders={"sending_manager": EMAIL["sending_manager"], "talent": EMAIL["talent"]})


def _sign(db: Engine, assignment_id: int, now: datetime) -> None:
    plans.sign_plan_by_holders(db, assignment_id, ["assignee", "sending_manager"], actor=ACTOR, now=now)


def _move_to(db: Engine, assignment_id: int, stage: str, at: datetime) -> None:
    """Finish each stage's tasks, have every signer sign the plan as it stands, and advance, until `stage`."""
    while (current := assignments.show_assignment(db, assignment_id, now=at).stage) != stage:
        scenarios.finish_stage_tasks(db, assignment_id, at)
        if current == "plan_agreed":
            plans.sign_plan_by_holders(db, assignment_id, PLAN_SIGNERS, actor=ACTOR, now=at)
        advance.advance(db, assignment_id, to=None, reason=None, actor=ACTOR, now=at)


# --- the guard ----------------------------------------------------------------------------------------------------


def test_unaligned_goal_holds_the_plan_naming_the_goal_and_who_must_act(db: Engine, stint: int, on_db: Sojourn,
                                                                       now: datetime) -> None:
    """A plan with a goal aligned to no objective is not agreed: the refusal names that goal and the talent team's
    holder; once the goal is linked, the plan is agreed."""
    organisation = _objective(db, "organisation", "Grow revenue in Europe", now)
    mobility = _objective(db, "mobility_team", "Every repatriate in a leadership role", now)
    _goal(db, stint, "Lead the host sales team", now, organisation, mobility)
    loose = _goal(db, stint, "Learn German", now)
    _sign(db, stint, now)
    refused = on_db("advance", str(stint))
    assert refused.code == 1, refused
    assert "Traceback" not in refused.stderr
    assert f"goal {loose} (Learn German)" in refused.stderr
    assert EMAIL["talent"] in refused.stderr
    assert "Lead the host sales team" not in refused.stderr
    blocking = assignments.show_assignment(db, stint, now=now).view()["blocking"]
    assert [(b["guard"], [w["email"] for w in b["who"]]) for b in blocking] == [("goals_aligned", [EMAIL["talent"]])]

    plans.edit_goal(db, loose, objectives=[str(organisation)], actor=ACTOR, now=now)
    _sign(db, stint, now)
    moved = advance.advance(db, stint, to=None, reason=None, actor=ACTOR, now=now).view()
    assert moved["stage"] == "abroad"


def test_level_not_covered_is_named(db: Engine, stint: int, now: datetime) -> None:
    """Every goal aligned, but none to a mobility-team objective: the refusal names the level, not a goal."""
    organisation = _objective(db, "organisation", "Grow revenue in Europe", now)
    _goal(db, stint, "Lead the host sales team", now, organisation)
    _sign(db, stint, now)
    with pytest.raises(GuardsUnmet) as refused:
        advance.advance(db, stint, to=None, reason=None, actor=ACTOR, now=now)
    text = "\n".join(refused.value.lines())
    assert "no goal is aligned to an objective of level mobility_team" in text
    assert "aligned to no objective" not in text
    assert assignments.show_assignment(db, stint, now=now).stage == "agree"


def test_built_in_workflow_agrees_an_unaligned_plan(db: Engine, spec: assignments.AssignmentSpec,
                                                    now: datetime) -> None:
    """The built-in workflow does not require alignment: a plan whose goal serves no objective is agreed as before."""
    assignment_id = assignments.create_assignment(db, spec, actor=ACTOR, now=now).id
    _move_to(db, assignment_id, "plan_agreed", now)
    _goal(db, assignment_id, "Lead the host sales team", now)
    _move_to(db, assignment_id, "orientation", now)
    assert assignments.show_assignment(db, assignment_id, now=now).stage == "orientation"


def test_workflow_validate_reports_bad_guard_values(sojourn: Sojourn, tmp_path: Path) -> None:
    """`workflow validate` accepts goals_aligned and names an unknown level and an unknown role by path (exit 2)."""
    good = tmp_path / "good.yaml"
    good.write_text(ALIGNED_YAML, encoding="utf-8")
    assert sojourn("workflow", "validate", str(good)).code == 0
    for params, expected in (("{levels: [team]}", "transitions[0].guards[1].params.levels[0]: Input should be "
                                                  "'organisation' or 'mobility_team'"),
                             ("{role: coach}", "transitions[0].guards[1].params.role: unknown role 'coach'")):
        bad = tmp_path / "bad.yaml"
        bad.write_text(ALIGNED_YAML.replace("params: {role: talent}", f"params: {params}"), encoding="utf-8")
        refused = sojourn("workflow", "validate", str(bad))
        assert refused.code == 2, refused
        assert any(expected in line for line in refused.stderr.splitlines()), refused.stderr


# --- commands and bad input ---------------------------------------------------------------------------------------


def test_objective_add_and_list(on_db: Sojourn, people: dict[str, str]) -> None:
    """`objective add` prints the new objective; `objective list --json` lists every one with its goal count."""
    added = on_db("objective", "add", "--level", "organisation", "--title", "Grow revenue in Europe", "--owner",
                  EMAIL["sponsor"], "--year", "2027", "--json")
    assert added.code == 0, added
    assert json.loads(added.stdout)["owner"] == EMAIL["sponsor"]
    assert on_db("objective", "add", "--level", "mobility_team", "--title", "Keep repatriates").code == 0
    listed = json.loads(on_db("objective", "list", "--json").stdout)
    assert [(o["id"], o["level"], o["title"], o["owner"], o["year"], o["goals"]) for o in listed] == [
        (1, "organisation", "Grow revenue in Europe", EMAIL["sponsor"], 2027, 0),
        (2, "mobility_team", "Keep repatriates", None, None, 0)]
    table = on_db("objective", "list").stdout
    assert "Grow revenue in Europe" in table
    assert "mobility_team" in table


def test_objective_add_reports_every_problem_at_once(on_db: Sojourn, db_url: str, people: dict[str, str]) -> None:
    """A bad level, an empty title, a bad year and an unknown owner are all reported, exit 2, nothing written."""
    before = snapshot(db_url)
    refused = on_db("objective", "add", "--level", "team", "--title", "  ", "--year", "27", "--owner",
                    "nobody@example.com")
    assert refused.code == 2, refused
    lines = refused.stderr.splitlines()
    assert all(line.startswith("Error: ") for line in lines)
    for expected in ("--level: 'team' is not an objective level", "--title: must not be empty",
                     "--year: '27' is not a year", "--owner: no person nobody@example.com"):
        assert any(expected in line for line in lines), (expected, lines)
    assert snapshot(db_url) == before


def test_goal_add_reports_unknown_objectives_with_the_other_problems(db: Engine, on_db: Sojourn, db_url: str,
                                                                     stint: int, now: datetime) -> None:
    """Unknown and malformed objective ids are named together with an empty title and a bad level, exit 2, the
    database unchanged."""
    _objective(db, "organisation", "Grow revenue in Europe", now)
    before = snapshot(db_url)
    refused = on_db("goal", "add", str(stint), "--title", "", "--measure", "m", "--target", "t", "--due", GOAL_DUE,
                    "--level", "galaxy", "--objective", "1", "--objective", "98", "--objective", "99")
    assert refused.code == 2, refused
    lines = refused.stderr.splitlines()
    assert all(line.startswith("Error: ") for line in lines)
    for expected in ("--title: must not be empty", "--level: unknown alignment level 'galaxy'",
                     "--objective: no objective 98, 99"):
        assert any(expected in line for line in lines), (expected, lines)
    malformed = on_db("goal", "add", str(stint), "--title", "T", "--measure", "m", "--target", "t", "--due",
                      GOAL_DUE, "--objective", "first")
    assert malformed.code == 2, malformed
    assert "--objective: 'first' is not an id" in malformed.stderr
    assert snapshot(db_url) == before


def test_goal_edit_replaces_objectives_and_keeps_aligned_to(db: Engine, on_db: Sojourn, stint: int,
                                                            now: datetime) -> None:
    """`goal add --aligned-to` still keeps its note beside the objectives; `goal edit --objective` replaces the
    goal's objectives with those given, in a new plan version that `plan show` shows."""
    first = _objective(db, "organisation", "Grow revenue in Europe", now)
    second = _objective(db, "mobility_team", "Every repatriate in a leadership role", now)
    added = on_db("goal", "add", str(stint), "--title", "Lead the host sales team", "--measure", "revenue",
                  "--target", "+10%", "--due", GOAL_DUE, "--aligned-to", "DACH growth plan", "--objective",
                  str(first), "--json")
    assert added.code == 0, added
    goal = json.loads(added.stdout)
    assert (goal["aligned_to"], goal["objectives"]) == ("DACH growth plan", [first])
    edited = on_db("goal", "edit", str(goal["id"]), "--objective", str(second), "--json")
    assert edited.code == 0, edited
    assert json.loads(edited.stdout)["change"]["summary"].startswith(f"goal {goal['id']} edited (objectives)")
    shown = json.loads(on_db("plan", "show", str(stint), "--json").stdout)
    assert [(g["aligned_to"], g["objectives"]) for g in shown["goals"]] == [("DACH growth plan", [second])]
    again = on_db("goal", "edit", str(goal["id"]), "--objective", str(second))
    assert again.code == 1
    assert "nothing changed" in again.stderr


def test_goal_edit_no_objectives_unaligns_the_goal(db: Engine, on_db: Sojourn, db_url: str, stint: int, linked: int,
                                                  now: datetime) -> None:
    """`goal edit --no-objectives` aligns a goal to none, in a new plan version; given with --objective it is refused
    (exit 2) and nothing is written."""
    before = snapshot(db_url)
    both = on_db("goal", "edit", str(linked), "--no-objectives", "--objective", "1")
    assert (both.code, both.stderr.splitlines()[0]) == (
        2, "Error: --objective and --no-objectives exclude each other: give one")
    assert snapshot(db_url) == before
    version = json.loads(on_db("plan", "show", str(stint), "--json").stdout)["plan_version"]
    cleared = on_db("goal", "edit", str(linked), "--no-objectives", "--json")
    assert cleared.code == 0, cleared
    assert json.loads(cleared.stdout)["plan_version"] == version + 1
    shown = json.loads(on_db("plan", "show", str(stint), "--json").stdout)
    assert [g["objectives"] for g in shown["goals"] if g["id"] == linked] == [[]]
    assert on_db("audit", "verify").code == 0


# --- the roll-up per objective ------------------------------------------------------------------------------------

AGREED_AT = datetime(2026, 3, 2, 12, tzinfo=UTC)
COACHING_AT = datetime(2026, 7, 1, 12, tzinfo=UTC)  # after the 90 immersion days
RETURNED_AT = datetime(2027, 9, 3, 12, tzinfo=UTC)  # after the cast's end date


def _assignee_assignment(db: Engine, spec: assignments.AssignmentSpec, number: int) -> int:
    """An assignment of its own assignee, agreeing its plan."""
    email = f"assignee{number:02d}@example.com"
    add_person(db, email, name=f"Assignee {number:02d}", tz="UTC")
    created = assignments.create_assignment(db, replace(spec, assignee=email), actor=ACTOR, now=AGREED_AT).view()
    assignment_id = int(created["id"])
    _move_to(db, assignment_id, "plan_agreed", AGREED_AT)
    return assignment_id


def _check_in(db: Engine, assignment_id: int, number: int, progress: dict[int, int], at: datetime) -> None:
    checkins.record_checkin(db, assignment_id, by=f"assignee{number:02d}@example.com", progress=progress,
                            note=None, feedback=None, actor=ACTOR, now=at)


@pytest.fixture
def cohort(db: Engine, spec: assignments.AssignmentSpec) -> dict[str, int]:
    """Three assignees whose goals serve three objectives (a fourth objective has a removed goal only):

    A: goal a1 -> org, team; a2 -> org. Checked in: a1 40 then 60, a2 20. Completed; 12 months: retained,
       considered for promotion, promoted.
    B: goal b1 -> org. Checked in: b1 50. Completed; 12 months: left.
    C: goal c1 -> team, c2 -> none, c3 -> spare (removed). Not checked in. Still in coaching.
    """
    org = _objective(db, "organisation", "Grow revenue in Europe", AGREED_AT, owner=EMAIL["sponsor"], year=2026)
    team = _objective(db, "mobility_team", "Every repatriate in a leadership role", AGREED_AT)
    spare = _objective(db, "organisation", "Open the Chilean market", AGREED_AT)
    unused = _objective(db, "mobility_team", "Shorter relocations", AGREED_AT)
    a, b, c = (_assignee_assignment(db, spec, n) for n in (1, 2, 3))
    a1, a2 = _goal(db, a, "a1", AGREED_AT, org, team), _goal(db, a, "a2", AGREED_AT, org)
    b1 = _goal(db, b, "b1", AGREED_AT, org)
    _goal(db, c, "c1", AGREED_AT, team)
    _goal(db, c, "c2", AGREED_AT)
    c3 = _goal(db, c, "c3", AGREED_AT, spare)
    plans.remove_goal(db, c3, reason="out of scope", actor=ACTOR, now=AGREED_AT)
    for assignment_id in (a, b, c):
        _move_to(db, assignment_id, "coaching", COACHING_AT)
    _check_in(db, a, 1, {a1: 40, a2: 20}, COACHING_AT + timedelta(days=10))
    _check_in(db, a, 1, {a1: 60}, COACHING_AT + timedelta(days=40))
    _check_in(db, b, 2, {b1: 50}, COACHING_AT + timedelta(days=10))
    for assignment_id in (a, b):
        _move_to(db, assignment_id, "completed", RETURNED_AT)
    outcomes.record_outcome(db, a, outcomes.OutcomeReport(months=12, retained=True, considered_for_promotion=True,
                                                          promoted_to="Head of Sales"), actor=ACTOR, now=RETURNED_AT)
    outcomes.record_outcome(db, b, outcomes.OutcomeReport(months=12, retained=False), actor=ACTOR, now=RETURNED_AT)
    return {"org": org, "team": team, "spare": spare, "unused": unused}


def _expected_rollup(ids: dict[str, int]) -> list[tuple[Any, ...]]:
    """(id, goals, assignments, goals checked in on, mean percent, recorded, considered, promoted, retained), as
    the cohort's docstring gives them, computed here by hand."""
    org_percents = [60, 20, 50]  # a1's latest is 60, not 40
    return [
        (ids["org"], 3, 2, 3, round(sum(org_percents) / len(org_percents), 1), 2, 1, 1, 1),
        (ids["team"], 2, 2, 1, 60.0, 1, 1, 1, 1),  # a1 and c1; C has no outcome
        (ids["spare"], 0, 0, 0, None, 0, 0, 0, 0),  # only a removed goal served it
        (ids["unused"], 0, 0, 0, None, 0, 0, 0, 0),
    ]


def _rollup(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(o["id"], o["goals"], o["assignments"], o["progress"]["goals"], o["progress"]["mean_percent"],
             *(o["outcomes"][k] for k in ("recorded", "considered_for_promotion", "promoted", "retained")))
            for o in rows]


def test_summary_rolls_up_per_objective(on_db: Sojourn, cohort: dict[str, int]) -> None:
    """`program summary --json` gives, per objective, the goals, assignments, mean latest progress and outcomes;
    the text shows a line per objective."""
    with freeze_time(RETURNED_AT + timedelta(days=1)):
        printed = on_db("program", "summary", "--json")
        text = on_db("program", "summary")
    assert printed.code == 0, printed
    summary = json.loads(printed.stdout)
    assert _rollup(summary["objectives"]) == _expected_rollup(cohort)
    first = summary["objectives"][0]
    assert (first["level"], first["title"], first["owner"], first["year"]) == (
        "organisation", "Grow revenue in Europe", EMAIL["sponsor"], 2026)
    assert (f"objective {cohort['org']} (organisation) Grow revenue in Europe: 3 goal(s) in 2 assignment(s); mean "
            "progress 43.3% over 3 goal(s) checked in on") in text.stdout


def test_report_rolls_up_per_objective_in_json_and_html(on_db: Sojourn, cohort: dict[str, int],
                                                        db: Engine) -> None:
    """`report --format json` carries the same roll-up; the HTML page shows it as a table, titles escaped."""
    _objective(db, "organisation", "<b>Bold</b> & growth", AGREED_AT)
    with freeze_time(RETURNED_AT + timedelta(days=1)):
        printed = on_db("report", "--format", "json")
        html = on_db("report", "--format", "html")
        table = on_db("report")
    assert printed.code == 0, printed
    assert _rollup(json.loads(printed.stdout)["objectives"])[:4] == _expected_rollup(cohort)
    assert '<section id="objectives">' in html.stdout
    assert "Grow revenue in Europe" in html.stdout
    assert "&lt;b&gt;Bold&lt;/b&gt; &amp; growth" in html.stdout
    assert "<b>Bold</b>" not in html.stdout
    assert "Goals, progress and outcomes per objective" in table.stdout


def test_summary_filter_limits_the_rollup(on_db: Sojourn, cohort: dict[str, int]) -> None:
    """With a filter that selects no assignment, every objective is listed with nothing rolled up."""
    with freeze_time(RETURNED_AT + timedelta(days=1)):
        printed = on_db("program", "summary", "--host", "JP", "--json")
    assert printed.code == 0, printed
    rows = _rollup(json.loads(printed.stdout)["objectives"])
    assert [r[0] for r in rows] == [cohort[k] for k in ("org", "team", "spare", "unused")]
    assert all(r[1:] == (0, 0, 0, None, 0, 0, 0, 0) for r in rows)


# --- the audit trail ----------------------------------------------------------------------------------------------


@pytest.fixture
def linked(db: Engine, stint: int, now: datetime) -> int:
    """Two objectives, a goal linked to the first, then moved to both by an edit; returns the goal's id."""
    first = _objective(db, "organisation", "Grow revenue in Europe", now, owner=EMAIL["sponsor"])
    second = _objective(db, "mobility_team", "Every repatriate in a leadership role", now)
    goal = _goal(db, stint, "Lead the host sales team", now, first)
    plans.edit_goal(db, goal, objectives=[str(first), str(second)], actor=ACTOR, now=now)
    return goal


def _first_error(on_db: Sojourn) -> str:
    outcome = on_db("audit", "verify")
    assert outcome.code == 1, outcome
    assert "Traceback" not in outcome.stderr
    return outcome.stderr.splitlines()[0]


def test_untouched_objectives_and_links_verify(linked: int, on_db: Sojourn) -> None:
    """Objectives and goal links written by Sojourn verify (exit 0), the objectives counted in JSON and text."""
    outcome = on_db("audit", "verify", "--json")
    assert outcome.code == 0, outcome
    report = json.loads(outcome.stdout)
    assert report["objectives"] == {"objectives": 2, "problems": []}
    text = on_db("audit", "verify")
    assert text.stdout == (f"audit trail intact: {report['events']} event(s) in {report['assignments']} "
                           "assignment(s) and 2 objective(s)\n")


@pytest.mark.parametrize(("statement", "expected"), [
    ("UPDATE objective SET title = 'Forged' WHERE id = 1", "objective 1: content edited"),
    ("UPDATE objective SET level = 'mobility_team' WHERE id = 1", "objective 1: content edited"),
    ("DELETE FROM objective WHERE id = 1", "objective 2: chain broken"),
])
def test_edited_objective_fails_verify(linked: int, db_url: str, on_db: Sojourn, statement: str,
                                       expected: str) -> None:
    """An objective edited or deleted behind Sojourn's back makes `audit verify` exit 1 naming it."""
    if statement.startswith("DELETE"):
        _raw(db_url, "DELETE FROM goal_objective WHERE objective_id = 1")
    _raw(db_url, statement)
    outcome = on_db("audit", "verify")
    assert outcome.code == 1, outcome
    assert any(expected in line for line in outcome.stderr.splitlines()), outcome.stderr


def test_edited_goal_link_fails_verify(linked: int, stint: int, db_url: str, on_db: Sojourn) -> None:
    """A goal's objectives changed behind Sojourn's back no longer match the plan_changed event that set them."""
    _raw(db_url, "DELETE FROM goal_objective WHERE goal_id = :goal AND objective_id = 2", goal=linked)
    line = _first_error(on_db)
    assert line.startswith(f"Error: audit trail broken at assignment {stint}, goal_objective rows of goal {linked}")
    assert ": row edited: the goal is aligned to objective(s) 1, not as its plan_changed event recorded (1, 2)" in line


def test_link_added_behind_sojourns_back_fails_verify(db: Engine, stint: int, db_url: str, on_db: Sojourn,
                                                      now: datetime) -> None:
    """A link inserted for a goal that was added aligned to nothing no longer matches the event that added it."""
    objective = _objective(db, "organisation", "Grow revenue in Europe", now)
    goal = plans.add_goal(db, stint, title="Learn German", measure="level", target="B2", due=GOAL_DUE, actor=ACTOR,
                          now=now).view()
    _raw(db_url, "INSERT INTO goal_objective (goal_id, objective_id) VALUES (:goal, :objective)",
         goal=goal["id"], objective=objective)
    line = _first_error(on_db)
    assert line.startswith(f"Error: audit trail broken at assignment {stint}, goal_objective rows of goal {goal['id']}")
    assert (f": row edited: the goal is aligned to objective(s) {objective}, not as its plan_changed event recorded "
            "(none)") in line


def test_person_export_and_erase_cover_objectives(db: Engine, linked: int, on_db: Sojourn, now: datetime) -> None:
    """The owner's export lists the objectives they own; erasing whoever added one leaves the chain intact."""
    exported = objectives_of_export(on_db, EMAIL["sponsor"])
    assert [o["title"] for o in exported] == ["Grow revenue in Europe"]
    former = "former.admin@example.com"
    add_person(db, former, name="Former Admin", tz="UTC")
    objectives.add_objective(db, level="organisation", title="Lower costs", actor=former, now=now)
    assert [o["title"] for o in objectives_of_export(on_db, former)] == ["Lower costs"]
    erased = on_db("person", "erase", former, "--reason", "left the company")
    assert erased.code == 0, erased
    created_by = {o["created_by"] for o in json.loads(on_db("objective", "list", "--json").stdout)}
    assert former not in created_by
    assert on_db("audit", "verify").code == 0


def objectives_of_export(on_db: Sojourn, email: str) -> list[dict[str, Any]]:
    outcome = on_db("person", "export", email)
    assert outcome.code == 0, outcome
    found: list[dict[str, Any]] = json.loads(outcome.stdout)["objectives"]
    return found
