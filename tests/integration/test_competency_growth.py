"""Competency baselines rated as the plan is agreed, growth after return in `assignment show`, `program summary` and
`report`, the audit covering baselines, and bad ratings refused whole, on each backend."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import Engine

from engine.program import assignments, competencies, plans
from integration.conftest import Sojourn, snapshot
from integration.test_audit import _raw
from integration.test_outcomes import SUMMARY_AT, move_to, new_assignment

ACTOR = "tess.talent@example.com"
START, END = "2022-07-01", "2024-06-30"
RATED_AT = datetime(2022, 6, 30, 12, tzinfo=UTC)  # the day before the start, as `new_assignment` creates them
GOAL_DUE = "2024-05-31"


def _goal(db: Engine, assignment_id: int, *rated: str) -> None:
    plans.add_goal(db, assignment_id, title="Lead the regional team", measure="engagement score", target="75",
                   due=GOAL_DUE, competencies=rated, actor=ACTOR, now=RATED_AT)


def _returned(db: Engine, spec: assignments.AssignmentSpec, number: int) -> int:
    """An assignment of 2022-07-01 to 2024-06-30, still in its first stage."""
    return new_assignment(db, spec, number, START, END, "DE")


def _complete(db: Engine, assignment_id: int) -> None:
    move_to(db, assignment_id, "completed", datetime(2024, 7, 1, 12, tzinfo=UTC))


@pytest.fixture
def cohort(db: Engine, spec: assignments.AssignmentSpec, on_db: Sojourn) -> list[int]:
    """Three returned assignments, rated as follows (1 to 5):

    first   baselines: negotiation 2 (goal add), cultural agility 3 (plan baseline); 12 months: negotiation 4,
            cultural agility 3, with an impact statement; 24 months: negotiation 5
    second  baseline: negotiation 3, corrected to 1 (plan baseline again); 12 months: negotiation 2, and
            "Cultural Agility" 4 with no baseline; no impact statement
    third   no baseline; 12 months: negotiation typed as 1 before and 4 after, with an impact statement
    """
    first, second, third = (_returned(db, spec, n) for n in (1, 2, 3))
    _goal(db, first, "negotiation=2")
    competencies.set_baselines(db, first, ["cultural agility=3"], actor=ACTOR, now=RATED_AT)
    _goal(db, second, "negotiation=3")
    competencies.set_baselines(db, second, ["Negotiation=1"], actor=ACTOR, now=RATED_AT + timedelta(hours=1))
    for assignment_id in (first, second, third):
        _complete(db, assignment_id)
    with freeze_time(SUMMARY_AT):
        for args in ([first, "12", "--competency", "negotiation=4", "--competency", "cultural agility=3",
                      "--impact", "opened the Munich plant"],
                     [first, "24", "--competency", "negotiation=5"],
                     [second, "12", "--competency", "negotiation=2", "--competency", "Cultural Agility=4"],
                     [third, "12", "--competency", "negotiation=1:4", "--impact", "a new supplier network"]):
            assignment_id, months, *rest = args
            recorded = on_db("outcome", "record", str(assignment_id), "--months", str(months), "--retained", "yes",
                             *map(str, rest))
            assert recorded.code == 0, recorded
    return [first, second, third]


def test_program_summary_gives_growth_per_competency_and_over_the_cohort(cohort: list[int], on_db: Sojourn) -> None:
    """Growth is the latest rating after return minus the newest baseline; no baseline is counted apart."""
    with freeze_time(SUMMARY_AT):
        summary = on_db("program", "summary", "--json")
    assert summary.code == 0, summary
    growth = json.loads(summary.stdout)["competency_growth"]
    by_name = {c["name"]: c for c in growth["competencies"]}
    assert list(by_name) == ["cultural agility", "negotiation"]
    # negotiation: first 5 - 2 = 3 (24 months over 12), second 2 - 1 = 1 (the corrected baseline), third 4 - 1 = 3
    assert (by_name["negotiation"]["assignments"], by_name["negotiation"]["with_baseline"]) == (3, 3)
    assert by_name["negotiation"]["mean_growth"] == 2.33  # 7 / 3
    assert [r["growth"] for r in by_name["negotiation"]["ratings"]] == [3, 1, 3]
    # cultural agility: first 3 - 3 = 0; second rated 4 with no baseline, left out of the mean
    assert (by_name["cultural agility"]["with_baseline"], by_name["cultural agility"]["no_baseline"]) == (1, 1)
    assert by_name["cultural agility"]["mean_growth"] == 0.0
    assert by_name["cultural agility"]["ratings"][1] == {"assignment_id": cohort[1], "months": 12, "baseline": None,
                                                          "after": 4, "growth": None}
    assert (growth["with_baseline"], growth["no_baseline"], growth["mean_growth"]) == (4, 1, 1.75)  # 7 / 4
    assert growth["impact_statements"] == 2
    with freeze_time(SUMMARY_AT):
        text = on_db("program", "summary").stdout
    assert "competency growth: mean +1.75 over 4 rating(s); 1 rating(s) with no baseline" in text
    assert "  negotiation: mean +2.33 over 3 of 3 assignment(s)" in text
    assert "impact statements: 2" in text


def test_assignment_show_and_report_show_growth_and_impact(cohort: list[int], on_db: Sojourn) -> None:
    """`assignment show` lists each competency's baseline, latest rating and growth; the report has the cohort's."""
    first, second, _ = cohort
    with freeze_time(SUMMARY_AT):
        shown = json.loads(on_db("assignment", "show", str(first), "--json").stdout)
        other = on_db("assignment", "show", str(second)).stdout
        report = json.loads(on_db("report", "--format", "json").stdout)
        html = on_db("report", "--format", "html").stdout
    assert shown["competency_growth"] == [
        {"name": "negotiation", "baseline": 2, "after": 5, "growth": 3},
        {"name": "cultural agility", "baseline": 3, "after": 3, "growth": 0}]
    assert shown["impact_statements"] == 1
    assert "  Cultural Agility: no baseline -> 4 (no growth counted)" in other
    assert "  negotiation: 1 -> 2 (growth +1)" in other
    assert report["outcomes"]["competency_growth"]["mean_growth"] == 1.75
    assert report["outcomes"]["competency_growth"]["impact_statements"] == 2
    assert "Competency growth" in html
    assert "+2.33" in html


def test_audit_verify_covers_baselines(cohort: list[int], on_db: Sojourn, db_url: str) -> None:
    """Baselines verify as recorded; one edited behind Sojourn's back makes `audit verify` exit 1 naming it."""
    assert on_db("audit", "verify").code == 0
    _raw(db_url, "UPDATE competency_baseline SET level = 5 WHERE id = (SELECT min(id) FROM competency_baseline)")
    verified = on_db("audit", "verify")
    assert verified.code == 1, verified
    first_line = verified.stderr.splitlines()[0]
    assert f"assignment {cohort[0]}, competency_baseline row " in first_line
    assert "level" in first_line


def _refused(on_db: Sojourn, db_url: str, *args: str) -> str:
    before = snapshot(db_url)
    outcome = on_db(*args)
    assert outcome.code == 2, outcome
    assert snapshot(db_url) == before
    assert all(line.startswith("Error:") for line in outcome.stderr.splitlines())
    return outcome.stderr


@pytest.mark.parametrize("command", ["plan-baseline", "goal-add"])
def test_bad_levels_are_all_reported_and_nothing_is_written(command: str, db: Engine, spec: assignments.AssignmentSpec,
                                                            on_db: Sojourn, db_url: str) -> None:
    """Every malformed NAME=LEVEL is named at once (exit 2) and the database is unchanged."""
    assignment_id = str(_returned(db, spec, 1))
    bad = ["--competency", "negotiation=9", "--competency", "=3", "--competency", "agility=x",
           "--competency", "focus=2", "--competency", "Focus=3"]
    if command == "plan-baseline":
        errors = _refused(on_db, db_url, "plan", "baseline", assignment_id, *bad)
    else:
        errors = _refused(on_db, db_url, "goal", "add", assignment_id, "--title", "t", "--measure", "m",
                          "--target", "1", "--due", GOAL_DUE, *bad)
    assert "negotiation: the rating '9' is outside the scale 1 to 5" in errors
    assert "'=3': give NAME or NAME=LEVEL" in errors
    assert "agility: the rating 'x' is outside the scale 1 to 5" in errors
    assert "given more than once for: focus" in errors


def test_outcome_record_reports_every_bad_rating(cohort: list[int], on_db: Sojourn, db_url: str,
                                                 db: Engine, spec: assignments.AssignmentSpec) -> None:
    """Two bad --competency values of an outcome are both named (exit 2), and nothing is written."""
    fourth = _returned(db, spec, 4)
    _complete(db, fourth)
    with freeze_time(SUMMARY_AT):
        errors = _refused(on_db, db_url, "outcome", "record", str(fourth), "--months", "12", "--retained", "yes",
                          "--competency", "negotiation=7", "--competency", "agility=0:3")
    assert "negotiation (after): the rating '7' is outside the scale 1 to 5" in errors
    assert "agility (before): the rating '0' is outside the scale 1 to 5" in errors


def test_plan_baseline_is_refused_once_the_assignment_has_ended(cohort: list[int], on_db: Sojourn) -> None:
    """A baseline is rated while the assignment runs: a completed one refuses it (exit 1)."""
    refused = on_db("plan", "baseline", str(cohort[2]), "--competency", "negotiation=2")
    assert refused.code == 1, refused
    assert "baselines are rated while it runs" in refused.stderr
