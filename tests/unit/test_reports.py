"""Report figures as pure functions of rows: percentiles, stage stays, contact periods and outcomes."""

from __future__ import annotations

import dataclasses
import inspect
from datetime import UTC, date, datetime

import pytest

from engine.domain.definition import parse_definition
from engine.reporting import figures
from engine.store import report_queries
from engine.store.program_queries import OutcomeRow
from engine.store.report_queries import AssignmentFilter, AssignmentRow, ContactRow, TransitionRow
from workflows import builtin_workflow_texts

LEADERSHIP = parse_definition(builtin_workflow_texts()["leadership-development.yaml"])


def _noon(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 12, tzinfo=UTC)


def _history(*steps: tuple[str | None, str, date, str | None]) -> list[TransitionRow]:
    return [TransitionRow(1, source, dest, _noon(day), reason) for source, dest, day, reason in steps]


def _rows(stage: str, history: list[TransitionRow], contacts: list[date] | None = None) -> figures.ReportRows:
    assignment = AssignmentRow(id=1, workflow_id=1, stage=stage, home="BR", host="DE", start=date(2026, 1, 1),
                               end=date(2027, 6, 30), assignee_email="ana.lima@example.com",
                               assignee_name="Ana Lima", assignee_tz="UTC")
    return figures.ReportRows(workflows={1: ("leadership-development", 1, LEADERSHIP)}, assignments=[assignment],
                              transitions=history, overdue_tasks=[],
                              contacts=[ContactRow(1, "sponsor_contact", day) for day in contacts or []])


def _report(rows: figures.ReportRows, on: date) -> figures.ProgramReport:
    return figures.compute_report(rows, AssignmentFilter(), _noon(on))


@pytest.mark.parametrize(("values", "median", "p90"), [
    ([], None, None),
    ([7.0], 7.0, 7.0),
    ([5.0, 20.0, 10.0], 10.0, 20.0),
    ([1.0, 2.0, 3.0, 4.0], 2.5, 4.0),
    ([float(v) for v in range(1, 11)], 5.5, 9.0),
])
def test_median_and_nearest_rank_90th_percentile(values: list[float], median: float | None,
                                                 p90: float | None) -> None:
    """The median averages the two middle values; the 90th percentile is the value at rank ceil(0.9 n)."""
    assert figures.median(values) == median
    assert figures.percentile(values, 0.9) == p90


def test_stage_stays_run_from_entering_a_stage_to_the_next_change() -> None:
    """Each finished stay lasts from its entry to the next transition; the current stage has no stay yet."""
    history = _history((None, "interviews", date(2026, 1, 1), None),
                       ("interviews", "plan_agreed", date(2026, 1, 11), None),
                       ("plan_agreed", "orientation", date(2026, 2, 10), None))
    assert figures.stage_stays(history) == [("interviews", 10.0), ("plan_agreed", 30.0)]


def test_contact_periods_are_due_after_grace_and_held_by_a_contact_inside_them() -> None:
    """Monthly periods from the day orientation began (31 Jan: clamped to 28 Feb, 31 Mar); each counts once its
    7 grace days are over, and is held by a contact dated inside it."""
    history = _history((None, "interviews", date(2026, 1, 2), None),
                       ("interviews", "orientation", date(2026, 1, 31), None))
    rows = _rows("orientation", history, contacts=[date(2026, 2, 27), date(2026, 3, 31)])
    # periods: 01-31..02-27 (checked 03-07), 02-28..03-30 (checked 04-07), 03-31..04-29 (checked 05-07)
    by_day = {on: _report(rows, on).contact_compliance for on in (date(2026, 3, 6), date(2026, 3, 7),
                                                                     date(2026, 4, 7), date(2026, 5, 7))}
    assert [(c[0].periods_held, c[0].periods_due) for c in by_day.values()] == [(0, 0), (1, 1), (1, 2), (2, 3)]
    assert by_day[date(2026, 3, 6)][0].rate is None
    assert by_day[date(2026, 5, 7)][0].rate == 0.667


def test_contact_periods_stop_falling_due_when_the_assignment_leaves_the_cadence() -> None:
    """After the assignment left the cadence's stages (here: cancelled), no later period becomes due."""
    history = _history((None, "interviews", date(2026, 1, 2), None),
                       ("interviews", "orientation", date(2026, 1, 31), None),
                       ("orientation", "cancelled", date(2026, 4, 20), "moved on"))
    compliance = _report(_rows("cancelled", history), date(2026, 12, 1)).contact_compliance
    assert [(c.kind, c.periods_held, c.periods_due) for c in compliance] == [("sponsor_contact", 0, 2)]


def test_contact_periods_end_with_stages_passed_through_in_one_instant() -> None:
    """An assignment moved through the cadence's stages and out of them at one instant has no period due."""
    history = _history((None, "interviews", date(2026, 1, 2), None),
                       ("interviews", "orientation", date(2026, 1, 31), None),
                       ("orientation", "cancelled", date(2026, 1, 31), "moved on"))
    compliance = _report(_rows("cancelled", history), date(2026, 12, 1)).contact_compliance
    assert [(c.kind, c.periods_held, c.periods_due) for c in compliance] == [("sponsor_contact", 0, 0)]


def test_cancellations_name_the_stage_left_and_the_reason() -> None:
    """A cancelled assignment counts as cancelled with its last transition's stage, day and reason; with no outcome
    recorded after return, the list is empty and each milestone counts none."""
    history = _history((None, "interviews", date(2026, 1, 2), None),
                       ("interviews", "cancelled", date(2026, 1, 9), "visa refused"))
    outcome = _report(_rows("cancelled", history), date(2026, 2, 1)).outcomes
    assert outcome.view() == {"completed": 0, "cancelled": 1, "recorded": [], "cancellations": [
        {"assignment_id": 1, "assignee": "ana.lima@example.com", "from_stage": "interviews", "on": "2026-01-09",
         "reason": "visa refused"}],
        "retention": [{"months": 12, "recorded": 0, "retained": 0, "rate": None},
                      {"months": 24, "recorded": 0, "retained": 0, "rate": None}],
        "considered_for_promotion": 0, "promoted": 0,
        "competency_growth": {"competencies": [], "with_baseline": 0, "no_baseline": 0, "mean_growth": None,
                              "impact_statements": 0}}


def test_recorded_outcomes_are_listed_and_counted_per_milestone() -> None:
    """Each recorded outcome is listed with its assignee; retention counts the retained of those recorded at each
    milestone, and promotion counts assignments, not outcomes."""
    history = _history((None, "interviews", date(2026, 1, 2), None), ("interviews", "completed", date(2027, 7, 1),
                                                                      None))
    rows = dataclasses.replace(_rows("completed", history), outcomes=[
        OutcomeRow(1, 24, False, True, None), OutcomeRow(1, 12, True, True, "Head of Sales LATAM")])
    outcome = _report(rows, date(2029, 8, 1)).outcomes.view()
    assert outcome["recorded"] == [
        {"assignment_id": 1, "assignee": "ana.lima@example.com", "months": 12, "retained": True,
         "considered_for_promotion": True, "promoted_to": "Head of Sales LATAM"},
        {"assignment_id": 1, "assignee": "ana.lima@example.com", "months": 24, "retained": False,
         "considered_for_promotion": True, "promoted_to": None}]
    assert outcome["retention"] == [{"months": 12, "recorded": 1, "retained": 1, "rate": 1.0},
                                    {"months": 24, "recorded": 1, "retained": 0, "rate": 0.0}]
    assert (outcome["completed"], outcome["considered_for_promotion"], outcome["promoted"]) == (1, 1, 1)


def test_upcoming_repatriations_cover_the_next_180_days_of_running_assignments() -> None:
    """An assignment still running whose end date is within 180 days is listed with the days left."""
    history = _history((None, "interviews", date(2026, 1, 2), None))
    rows = _rows("interviews", history)
    listed = _report(rows, date(2027, 1, 1)).upcoming_repatriations
    assert [(r.assignment_id, r.days_left) for r in listed] == [(1, (date(2027, 6, 30) - date(2027, 1, 1)).days)]
    assert _report(rows, date(2026, 12, 31)).upcoming_repatriations == ()


def test_every_report_statement_docstring_starts_with_its_name() -> None:
    """Each public function of report_queries documents itself as `name: what it does`, under its real name."""
    statements = {name: function for name, function in vars(report_queries).items()
                  if inspect.isfunction(function) and function.__module__ == report_queries.__name__
                  and not name.startswith("_")}
    assert len(statements) == 7
    assert sorted(name for name, function in statements.items()
                  if not (function.__doc__ or "").startswith(f"{name}: ")) == []
