"""Outcomes after return, early returns, cost and `sojourn program summary` on a seeded cohort, on each backend."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy.engine import Engine

from engine.domain.errors import BadInput
from engine.program import advance, assignments, checkins, contacts, outcomes, plans
from engine.program.outcomes import CompetencyRating, OutcomeReport
from engine.program.people import add_person
from engine.program.tasks import complete_task
from integration.conftest import Sojourn, snapshot
from tests.support.scenarios import PLAN_SIGNERS

ACTOR = "tess.talent@example.com"
SUMMARY_AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
RETURNED_GROUPS = {  # group -> (how many, start, end, host)
    "returned_2023": (6, "2021-07-01", "2023-06-30", "DE"),
    "returned_2024": (10, "2022-07-01", "2024-06-30", "US"),
    "returned_2025": (1, "2024-01-01", "2025-12-31", "DE"),
}
EARLY_RETURN_START, EARLY_RETURN_END, EARLY_RETURN_AT = "2024-03-01", "2026-08-31", datetime(2025, 6, 2, 12, tzinfo=UTC)
ACTIVE_START, ACTIVE_END = "2025-09-01", "2027-08-31"
ACTIVE_ORIENTATION_AT = datetime(2025, 12, 1, 12, 0, tzinfo=UTC)
SPONSOR_CONTACTS = ("2025-12-15", "2026-02-10")
# the active assignment's goal: recorded in February first, then in December; the later instant counts, not the id
ACTIVE_CHECKINS = ((datetime(2026, 2, 15, 12, tzinfo=UTC), 70), (datetime(2025, 12, 20, 12, tzinfo=UTC), 40))
EARLY_RETURN_PROGRESS = 20  # the family early return's goal, at a check-in just before going home
ACTIVE_PULSES = ((datetime(2025, 12, 10, 12, tzinfo=UTC), (4, 4, 4)),  # no alert
                 (datetime(2026, 1, 10, 12, tzinfo=UTC), (2, 4, 4)),  # alert, resolved on 2026-01-20
                 (datetime(2026, 2, 10, 12, tzinfo=UTC), (4, 4, 1)))  # alert, still open


def _noon(day: str | date) -> datetime:
    parsed = date.fromisoformat(day) if isinstance(day, str) else day
    return datetime(parsed.year, parsed.month, parsed.day, 12, 0, tzinfo=UTC)


def move_to(db: Engine, assignment_id: int, stage: str, at: datetime) -> None:
    """Finish each stage's tasks, agree a plan with a goal due a month before the end, and advance, all at `at`."""
    while (shown := assignments.show_assignment(db, assignment_id, now=at).view())["stage"] != stage:
        for task in shown["tasks"]:
            if task["stage"] == shown["stage"] and task["status"] == "open":
                complete_task(db, task["id"], note=None, actor=ACTOR, now=at)
        if shown["stage"] == "plan_agreed":
            due = (date.fromisoformat(shown["end"]) - timedelta(days=30)).isoformat()
            plans.add_goal(db, assignment_id, title="Lead the regional team", measure="engagement score",
                           target="75", due=due, actor=ACTOR, now=at)
            for role in PLAN_SIGNERS:
                plans.sign_plan(db, assignment_id, role=role, by=None, actor=ACTOR, now=at)
        advance.advance(db, assignment_id, to=None, reason=None, actor=ACTOR, now=at)


def new_assignment(db: Engine, spec: assignments.AssignmentSpec, number: int, start: str, end: str, host: str) -> int:
    """An assignment of its own assignee (`assigneeNN@example.com`), created the day before it starts."""
    email = f"assignee{number:02d}@example.com"
    created_at = _noon(start) - timedelta(days=1)
    add_person(db, email, name=f"Assignee {number:02d}", tz="UTC")
    each = replace(spec, assignee=email, start=start, end=end, host=host)
    return assignments.create_assignment(db, each, actor=ACTOR, now=created_at).id


def returned_assignment(db: Engine, spec: assignments.AssignmentSpec, number: int, start: str, end: str,
                        host: str) -> int:
    """An assignment completed the day after its end date."""
    assignment_id = new_assignment(db, spec, number, start, end, host)
    move_to(db, assignment_id, "completed", _noon(end) + timedelta(days=1))
    return assignment_id


def check_in(db: Engine, assignment_id: int, number: int, percent: int, at: datetime) -> None:
    """A check-in on the assignment's goal by its assignee (`assigneeNN@example.com`, as `new_assignment` names)."""
    goal_id = int(assignments.show_assignment(db, assignment_id, now=at).view()["goals"][0]["id"])
    checkins.record_checkin(db, assignment_id, by=f"assignee{number:02d}@example.com", progress={goal_id: percent},
                            note=None, feedback=None, actor=ACTOR, now=at)


def record(db: Engine, assignment_id: int, months: int, **fields: Any) -> None:
    report = OutcomeReport(months=months, retained=fields.pop("retained", True), **fields)
    outcomes.record_outcome(db, assignment_id, report, actor=ACTOR, now=SUMMARY_AT)


@dataclass(frozen=True)
class Cohort:
    ids: dict[str, list[int]]  # group -> assignment ids


def seed_cohort(db: Engine, spec: assignments.AssignmentSpec) -> Cohort:
    """Twenty assignees with known histories (their outcomes recorded on 2026-03-02):

    returned_2023  6, ended 2023-06-30 (DE): 12 months all retained, the first two considered for promotion, the
                   first promoted; 24 months recorded for the first five, the fifth has left
    returned_2024  10, ended 2024-06-30 (US): 12 months recorded, the last has left; the first three considered,
                   the first two promoted
    returned_2025  1, ended 2025-12-31: no outcome due yet
    early_return   2, cancelled from coaching on 2025-06-02: one for family, one for performance
    active         1, in coaching since 2025-12-01, sponsor contacts on 2025-12-15 and 2026-02-10; check-ins on
                   2025-12-20 (40%) and 2026-02-15 (70%), none in January; pulses on 2025-12-10, 2026-01-10 (alert,
                   resolved) and 2026-02-10 (alert, open)
    The family early return checked in at 20% on the day it was cancelled; no other goal was checked in on.
    Cost: the first 16 EUR 200,000 each, the early returns EUR 150,000 each, returned_2025 and active USD 300,000.
    """
    ids: dict[str, list[int]] = {}
    number = 0
    for group, (count, start, end, host) in RETURNED_GROUPS.items():
        for _ in range(count):
            number += 1
            ids.setdefault(group, []).append(returned_assignment(db, spec, number, start, end, host))
    for reason in ("family", "performance"):
        number += 1
        assignment_id = new_assignment(db, spec, number, EARLY_RETURN_START, EARLY_RETURN_END, "DE")
        move_to(db, assignment_id, "coaching", EARLY_RETURN_AT)
        if reason == "family":
            check_in(db, assignment_id, number, EARLY_RETURN_PROGRESS, EARLY_RETURN_AT)
        advance.advance(db, assignment_id, to="cancelled", reason="went home early", actor=ACTOR,
                        now=EARLY_RETURN_AT, early_return=reason)
        ids.setdefault("early_return", []).append(assignment_id)
    number += 1
    active = new_assignment(db, spec, number, ACTIVE_START, ACTIVE_END, "DE")
    move_to(db, active, "coaching", ACTIVE_ORIENTATION_AT)
    for day in SPONSOR_CONTACTS:
        contacts.log_contact(db, active, kind="sponsor_contact", with_email=spec.stakeholders["sponsor"], on=day,
                             notes=None, actor=ACTOR, now=SUMMARY_AT)
    for at, percent in ACTIVE_CHECKINS:
        check_in(db, active, number, percent, at)
    pulse_ids = [checkins.record_pulse(db, active, by=f"assignee{number:02d}@example.com", expectancy=expectancy,
                                       instrumentality=instrumentality, valence=valence, note=None, actor=ACTOR,
                                       now=at).id for at, (expectancy, instrumentality, valence) in ACTIVE_PULSES]
    checkins.resolve_pulse_alert(db, pulse_ids[1], by=spec.stakeholders["coach"], note="talked it through",
                                 actor=ACTOR, now=ACTIVE_PULSES[1][0] + timedelta(days=10))
    ids["active"] = [active]

    a2023, a2024 = ids["returned_2023"], ids["returned_2024"]
    for n, assignment_id in enumerate(a2023):
        record(db, assignment_id, 12, considered_for_promotion=n < 2,
               promoted_to="Head of Sales LATAM" if n == 0 else None,
               competencies=(CompetencyRating("cross-cultural leadership", 2, 4),))
    for assignment_id in a2023[:4]:
        record(db, assignment_id, 24, impact="opened two markets")
    record(db, a2023[4], 24, retained=False, left_on="2025-03-31", left_reason="joined a competitor")
    for n, assignment_id in enumerate(a2024):
        if n == len(a2024) - 1:
            record(db, assignment_id, 12, retained=False, left_on="2025-02-28", left_reason="relocated")
            continue
        record(db, assignment_id, 12, considered_for_promotion=n < 3,
               promoted_to="Country Manager" if n < 2 else None)
    for assignment_id in a2023 + a2024:
        outcomes.set_cost(db, assignment_id, amount="200000", currency="eur", actor=ACTOR, now=SUMMARY_AT)
    for assignment_id in ids["early_return"]:
        outcomes.set_cost(db, assignment_id, amount="150000.00", currency="EUR", actor=ACTOR, now=SUMMARY_AT)
    for assignment_id in ids["returned_2025"] + ids["active"]:
        outcomes.set_cost(db, assignment_id, amount="300000", currency="USD", actor=ACTOR, now=SUMMARY_AT)
    return Cohort(ids)


@pytest.fixture
def cohort(db: Engine, spec: assignments.AssignmentSpec, people: dict[str, str]) -> Cohort:
    return seed_cohort(db, spec)


def summary(on_db: Sojourn, *args: str) -> str:
    with freeze_time(SUMMARY_AT):
        outcome = on_db("program", "summary", *args)
    assert outcome.code == 0, outcome
    return outcome.stdout


# --- the seeded cohort ------------------------------------------------------------------------------------------


def test_program_summary_gives_the_seeded_cohorts_figures_in_json_and_text(on_db: Sojourn, cohort: Cohort) -> None:
    """20 assignees: 17 completed, 2 early returns, 5 considered, 3 promoted, 15 of 16 retained at 12 months."""
    figures = json.loads(summary(on_db, "--json"))
    assert figures["assignments"] == 20
    stages = {r["stage"]: r["assignments"] for r in figures["by_stage"]}
    assert {s: n for s, n in stages.items() if n} == {"completed": 17, "cancelled": 2, "coaching": 1}
    assert (figures["active"], figures["completed"]) == (1, 17)
    assert figures["early_returns"] == {"cancelled": 2, "total": 2, "by_reason": {
        "family": 1, "performance": 1, "business_change": 0, "health": 0, "other": 0}}
    assert (figures["considered_for_promotion"], figures["promoted"]) == (5, 3)
    # 12 months: the 16 that returned in 2023 and 2024 are due, one left; 24 months: the six of 2023 are due,
    # five recorded, one of them left.
    assert [(r["months"], r["retained"], r["due"], r["recorded"]) for r in figures["retention"]] == [
        (12, 15, 16, 16), (24, 4, 6, 5)]
    # still employed at the latest outcome: five of 2023 (the fifth left by 24 months), nine of 2024
    assert figures["retained_leaders"] == 14
    # anchored on 2025-12-01: December and January have passed their grace days by 2026-03-02, February has not;
    # 2025-12-15 holds December
    assert figures["sponsor_contact"] == {"periods_held": 1, "periods_due": 2, "rate": 0.5}
    # the active goal's latest check-in (70%, in February) and the family early return's (20%); no other goal
    assert figures["goal_progress"] == {"goals": 2, "mean_percent": 45.0}
    # the same periods as the sponsor contact: 2025-12-20 holds December, January has none; the early returns and
    # the returned passed through the check-in stages in an instant, so no period of theirs fell due
    assert figures["checkin_compliance"] == {"periods_held": 1, "periods_due": 2, "rate": 0.5}
    assert figures["open_pulse_alerts"] == 1  # of two alerts, the January one was resolved
    assert figures["cost"] == [
        {"currency": "EUR", "assignments": 18, "total": "3500000.00", "retained_leaders": 14,
         "per_retained_leader": "250000.00"},
        {"currency": "USD", "assignments": 2, "total": "600000.00", "retained_leaders": 0,
         "per_retained_leader": None}]

    text = summary(on_db).splitlines()
    assert "assignments: 20 (active 1, completed 17)" in text
    assert "early returns: 2 of 2 cancelled (family 1, performance 1, business_change 0, health 0, other 0)" in text
    assert "considered for promotion: 5" in text
    assert "promoted: 3" in text
    assert "retained at 12 months: 15 of 16 due (94%); 16 recorded" in text
    assert "retained at 24 months: 4 of 6 due (67%); 5 recorded" in text
    assert "sponsor contact: 1 of 2 periods held (50%)" in text
    assert "check-ins: 1 of 2 periods held (50%)" in text
    assert "mean goal progress: 45.0% over 2 goal(s) checked in on" in text
    assert "open pulse alerts: 1" in text
    assert "cost: 3500000.00 EUR for 18 assignment(s); 250000.00 per leader retained (14)" in text


def test_report_lists_the_recorded_outcomes_in_json_and_table(on_db: Sojourn, cohort: Cohort) -> None:
    """`sojourn report` shows what the cohort's outcomes record: 16 at 12 months (15 retained), 5 at 24 months (4)."""
    with freeze_time(SUMMARY_AT):
        printed = on_db("report", "--format", "json")
        table = on_db("report")
    assert (printed.code, table.code) == (0, 0)
    outcome = json.loads(printed.stdout)["outcomes"]
    assert [(r["months"], r["recorded"], r["retained"], r["rate"]) for r in outcome["retention"]] == [
        (12, 16, 15, 0.938), (24, 5, 4, 0.8)]
    assert (outcome["considered_for_promotion"], outcome["promoted"]) == (5, 3)
    returned = cohort.ids["returned_2023"] + cohort.ids["returned_2024"]
    assert sorted({r["assignment_id"] for r in outcome["recorded"]}) == sorted(returned)
    first = [r for r in outcome["recorded"] if r["assignment_id"] == cohort.ids["returned_2023"][0]]
    assert [(r["assignee"], r["months"], r["retained"], r["considered_for_promotion"], r["promoted_to"])
            for r in first] == [("assignee01@example.com", 12, True, True, "Head of Sales LATAM"),
                                ("assignee01@example.com", 24, True, False, None)]
    left = [r for r in outcome["recorded"] if not r["retained"]]
    assert [(r["assignment_id"], r["months"]) for r in left] == [
        (cohort.ids["returned_2023"][4], 24), (cohort.ids["returned_2024"][-1], 12)]
    lines = table.stdout.splitlines()
    assert any(line.split()[:6] == ["retained", "at", "12", "months", "15", "of"] for line in lines)
    assert any(line.split()[:6] == ["retained", "at", "24", "months", "4", "of"] for line in lines)
    assert any(line.startswith("Outcomes recorded after return") for line in lines)


def test_program_summary_filters_narrow_every_figure(on_db: Sojourn, cohort: Cohort) -> None:
    """--host and --start-year select the assignments every figure is computed over."""
    in_us = json.loads(summary(on_db, "--json", "--host", "us"))
    assert (in_us["assignments"], in_us["completed"], in_us["considered_for_promotion"], in_us["promoted"]) == (
        10, 10, 3, 2)
    assert [(r["retained"], r["due"]) for r in in_us["retention"]] == [(9, 10), (0, 0)]
    started_2021 = json.loads(summary(on_db, "--json", "--start-year", "2021"))
    assert started_2021["assignments"] == len(cohort.ids["returned_2023"])
    assert started_2021["early_returns"]["total"] == 0
    assert started_2021["cost"][0]["per_retained_leader"] == "240000.00"  # 6 x 200,000 over 5 still employed
    started_2024 = json.loads(summary(on_db, "--json", "--start-year", "2024"))  # the early returns, returned_2025
    assert started_2024["goal_progress"] == {"goals": 1, "mean_percent": float(EARLY_RETURN_PROGRESS)}
    assert (started_2024["checkin_compliance"]["periods_due"], started_2024["open_pulse_alerts"]) == (0, 0)


def test_outcome_record_completes_the_milestone_task_and_prints_the_outcome(
        on_db: Sojourn, db: Engine, returned: int) -> None:
    """Recording the 12-month outcome marks `record_outcome_12_months` done; the 24-month task stays open."""
    with freeze_time(SUMMARY_AT):
        outcome = on_db("outcome", "record", str(returned), "--months", "12", "--retained", "no",
                        "--left-on", "2025-01-31", "--left-reason", "joined a competitor", "--promoted-to",
                        "Regional Director", "--competency", "negotiation=2:4", "--impact", "a new plant", "--json")
    assert outcome.code == 0, outcome
    shown = json.loads(outcome.stdout)
    assert (shown["months"], shown["retained"], shown["left_on"], shown["promoted_to"]) == (
        12, False, "2025-01-31", "Regional Director")
    assert shown["considered_for_promotion"] is True  # a promotion implies it was considered
    assert shown["competencies"] == [{"name": "negotiation", "before": 2, "after": 4, "growth": 2}]
    tasks = {t["key"]: t for t in assignments.show_assignment(db, returned, now=SUMMARY_AT).view()["tasks"]}
    assert tasks["record_outcome_12_months"]["status"] == "done"
    assert tasks["record_outcome_12_months"]["id"] == shown["task_completed"]
    assert tasks["record_outcome_24_months"]["status"] == "open"


def test_early_return_category_and_cost_show_on_the_assignment(on_db: Sojourn, db: Engine,
                                                               spec: assignments.AssignmentSpec,
                                                               people: dict[str, str]) -> None:
    """`assignment create --cost`, `set-cost` and `advance --to cancelled --early-return` are kept as data."""
    args = ["assignment", "create", "--workflow", spec.workflow, "--assignee", spec.assignee, "--home", spec.home,
            "--host", spec.host, "--start", str(spec.start), "--end", str(spec.end),
            *[f"--stakeholder={role}={email}" for role, email in spec.stakeholders.items()]]
    created = on_db(*args, "--cost", "180000.50", "--currency", "chf", "--json")
    assert created.code == 0, created
    assignment_id = json.loads(created.stdout)["id"]
    assert json.loads(created.stdout)["cost"] == {"amount": "180000.50", "currency": "CHF"}
    assert on_db("assignment", "set-cost", str(assignment_id), "--cost", "190000", "--currency", "EUR").code == 0
    cancelled = on_db("advance", str(assignment_id), "--to", "cancelled", "--reason", "a sick parent at home",
                      "--early-return", "family", "--json")
    assert cancelled.code == 0, cancelled
    shown = json.loads(on_db("assignment", "show", str(assignment_id), "--json").stdout)
    assert shown["cost"] == {"amount": "190000.00", "currency": "EUR"}
    assert (shown["stage"], shown["early_return_reason"]) == ("cancelled", "family")


# --- bad input: an Error: line, the documented exit code, nothing written ----------------------------------------


@pytest.fixture
def returned(db: Engine, spec: assignments.AssignmentSpec, people: dict[str, str]) -> int:
    """One assignment completed on 2024-07-01, with no outcome yet."""
    return returned_assignment(db, spec, 1, "2022-07-01", "2024-06-30", "DE")


def refused(on_db: Sojourn, db_url: str, *args: str) -> tuple[int, str]:
    """Run a command that must fail; the database is unchanged and stderr holds only `Error:` lines."""
    before = snapshot(db_url)
    with freeze_time(SUMMARY_AT):
        outcome = on_db(*args)
    assert snapshot(db_url) == before
    assert outcome.stdout == ""
    assert outcome.stderr
    assert all(line.startswith("Error:") for line in outcome.stderr.splitlines())
    return outcome.code, outcome.stderr


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--months", "12", "--retained", "yes", "--left-on", "2025-01-31"], 2, "give them with --retained no"),
    (["--months", "12", "--retained", "yes", "--left-reason", "moved"], 2, "give them with --retained no"),
    (["--months", "12", "--retained", "no", "--competency", "negotiation=0:4"], 2, "outside the scale 1 to 5"),
    (["--months", "12", "--retained", "no", "--competency", "negotiation=2:6"], 2, "outside the scale 1 to 5"),
    (["--months", "12", "--retained", "no", "--competency", "negotiation"], 2, "NAME=BEFORE:AFTER"),
    (["--months", "12", "--retained", "no", "--competency", "a=1:2", "--competency", "A=2:3"], 2, "more than once"),
    (["--months", "18", "--retained", "yes"], 2, "18"),
    (["--months", "12", "--retained", "no", "--left-on", "2024-05-01"], 2, "between the end of the assignment"),
    (["--months", "12", "--retained", "no", "--left-on", "2026-03-04"], 2, "between the end of the assignment"),
    (["--months", "12", "--retained", "no", "--left-on", "2026-31-01"], 2, "'2026-31-01' is not a real date"),
])
def test_outcome_record_refuses_bad_values(on_db: Sojourn, db_url: str, returned: int, args: list[str], code: int,
                                           message: str) -> None:
    """A malformed outcome exits 2 with an `Error:` line and writes nothing."""
    result = refused(on_db, db_url, "outcome", "record", str(returned), *args)
    assert result[0] == code
    assert message in result[1]


def test_outcome_record_refuses_an_assignment_not_completed(on_db: Sojourn, db_url: str, db: Engine,
                                                            spec: assignments.AssignmentSpec,
                                                            people: dict[str, str]) -> None:
    """An outcome before `completed` is refused with exit 1 and nothing written."""
    assignment_id = assignments.create_assignment(db, spec, actor=ACTOR, now=SUMMARY_AT).id
    code, stderr = refused(on_db, db_url, "outcome", "record", str(assignment_id), "--months", "12",
                           "--retained", "yes")
    assert code == 1
    assert "is in stage interviews; outcomes are recorded after return, once it is completed" in stderr


def test_outcome_record_refuses_the_same_months_twice(on_db: Sojourn, db_url: str, db: Engine, returned: int) -> None:
    """A second 12-month outcome is refused with exit 1; the first stays as recorded."""
    record(db, returned, 12, considered_for_promotion=True)
    code, stderr = refused(on_db, db_url, "outcome", "record", str(returned), "--months", "12", "--retained", "no")
    assert code == 1
    assert "already has its 12-month outcome" in stderr


@pytest.mark.parametrize(("args", "code", "message"), [
    (["advance", "{id}", "--to", "repatriation", "--early-return", "family"], 2, "category of a cancellation"),
    (["advance", "{id}", "--to", "cancelled", "--reason", "x", "--early-return", "boredom"], 2, "boredom"),
    (["assignment", "set-cost", "{id}", "--cost", "-5", "--currency", "EUR"], 2, "is not an amount"),
    (["assignment", "set-cost", "{id}", "--cost", "10.555", "--currency", "EUR"], 2, "at most two decimals"),
    (["assignment", "set-cost", "{id}", "--cost", "100", "--currency", "euro"], 2, "three-letter ISO 4217"),
    (["assignment", "set-cost", "999", "--cost", "100", "--currency", "EUR"], 1, "no assignment 999"),
    (["outcome", "record", "999", "--months", "12", "--retained", "yes"], 1, "no assignment 999"),
    (["program", "summary", "--workflow", "no-such-program"], 1, "no workflow named"),
    (["program", "summary", "--start-year", "1800"], 2, "between 1950 and 2200"),
])
def test_cost_early_return_and_summary_refuse_bad_values(on_db: Sojourn, db_url: str, db: Engine,
                                                         spec: assignments.AssignmentSpec, people: dict[str, str],
                                                         args: list[str], code: int, message: str) -> None:
    """Bad categories, amounts, currencies, ids and filters: an `Error:` line, the exit code, nothing written."""
    assignment_id = assignments.create_assignment(db, spec, actor=ACTOR, now=SUMMARY_AT).id
    move_to(db, assignment_id, "coaching", SUMMARY_AT)
    result = refused(on_db, db_url, *[a.format(id=assignment_id) for a in args])
    assert result[0] == code
    assert message in result[1]


def test_assignment_create_refuses_a_cost_without_currency(on_db: Sojourn, db_url: str,
                                                           spec: assignments.AssignmentSpec,
                                                           people: dict[str, str]) -> None:
    """--cost needs --currency: exit 2 and no assignment created."""
    args = ["assignment", "create", "--workflow", spec.workflow, "--assignee", spec.assignee, "--home", spec.home,
            "--host", spec.host, "--start", str(spec.start), "--end", str(spec.end),
            *[f"--stakeholder={role}={email}" for role, email in spec.stakeholders.items()]]
    code, stderr = refused(on_db, db_url, *args, "--cost", "1000")
    assert code == 2
    assert "--cost and --currency go together" in stderr


@pytest.mark.parametrize(("amount", "currency", "wanted"), [
    ("-5", None, ["--cost and --currency go together", "--cost", "is not an amount"]),
    (None, "euro", ["--cost and --currency go together", "three-letter ISO 4217"]),
    ("10.555", "euro", ["at most two decimals", "three-letter ISO 4217"]),
])
def test_assignment_create_reports_every_problem_of_the_cost_and_the_assignment_at_once(
        db_url: str, db: Engine, spec: assignments.AssignmentSpec, people: dict[str, str], amount: str | None,
        currency: str | None, wanted: list[str]) -> None:
    """A bad cost, a missing half of it and a bad date come back in one error (exit 2), and nothing is written."""
    before = snapshot(db_url)
    with pytest.raises(BadInput) as caught:
        outcomes.create_assignment(db, replace(spec, end="2027-02-30"), amount=amount, currency=currency,
                                   actor=ACTOR, now=SUMMARY_AT)
    told = "\n".join(caught.value.lines())
    assert all(fragment in told for fragment in [*wanted, "end"]), told
    assert "2027-02-30" in told
    assert snapshot(db_url) == before
