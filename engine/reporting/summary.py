"""The cohort's figures for the program owner: stages, early returns, promotion, retention, sponsor contact, cost.

`program_summary` is the use case: one read transaction, one query per table (`engine.store.report_queries` and
`engine.store.program_queries`), then `compute_summary`, a pure function of the rows and `now`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from engine.domain.definition import WorkflowDefinition
from engine.domain.errors import NotFound
from engine.domain.inputs import EARLY_RETURN_REASONS, OUTCOME_MONTHS
from engine.domain.notices import CHECKIN_CADENCE
from engine.domain.views import Result
from engine.program.outcomes import cancelled_stages_of, completed_stages_of
from engine.program.records import definition_of
from engine.program.transactions import use_case_transaction
from engine.reporting import figures
from engine.reporting.objectives import MeanProgress, ObjectiveRollup, latest_percents, objective_rollup
from engine.store import objective_queries, program_queries, report_queries
from engine.store.models import pk
from engine.store.objective_queries import ObjectiveRow
from engine.store.program_queries import (
    CheckinRow,
    GoalProgressRow,
    ObjectiveLinkRow,
    OutcomeRow,
    ProgramAssignmentRow,
)
from engine.store.report_queries import AssignmentFilter

# An outcome falls due this many days after the end date, as the built-in workflow's `completed` tasks do.
OUTCOME_DUE_DAYS = {12: 365, 24: 730}
SPONSOR_ROLE = "sponsor"  # the cadences held with this role are the sponsor contact
CENTS = Decimal("0.01")


@dataclass(frozen=True)
class SummaryRows:
    """Everything the summary is computed from, as read from the database."""

    report: figures.ReportRows  # the report's rows: workflows, assignments, stage history, contacts
    assignments: list[ProgramAssignmentRow]
    outcomes: list[OutcomeRow]
    checkins: list[CheckinRow]
    goal_progress: list[GoalProgressRow]
    open_pulse_alerts: int
    objectives: list[ObjectiveRow] = field(default_factory=list)
    objective_links: list[ObjectiveLinkRow] = field(default_factory=list)  # of the selected assignments' goals


@dataclass(frozen=True)
class EarlyReturns(Result):
    cancelled: int
    total: int
    by_reason: Mapping[str, int]  # every reason category, in EARLY_RETURN_REASONS order


@dataclass(frozen=True)
class Retention(Result):
    months: int
    due: int
    recorded: int
    retained: int
    rate: float | None


@dataclass(frozen=True)
class PeriodsHeld(Result):
    periods_held: int
    periods_due: int
    rate: float | None  # None when no period is due yet

    @classmethod
    def of(cls, held: int, due: int) -> PeriodsHeld:
        return cls(periods_held=held, periods_due=due, rate=round(held / due, 3) if due else None)


@dataclass(frozen=True)
class CostPerRetainedLeader(Result):
    """Amounts as text with two decimals, so no rounding of a float ever shows."""

    currency: str
    assignments: int
    total: str
    retained_leaders: int
    per_retained_leader: str | None


@dataclass(frozen=True)
class ProgramSummary(Result):
    as_of: datetime
    filters: figures.ReportFilters
    assignments: int
    by_stage: tuple[figures.StageCount, ...]
    active: int
    completed: int
    early_returns: EarlyReturns
    considered_for_promotion: int
    promoted: int
    retention: tuple[Retention, ...]
    retained_leaders: int
    sponsor_contact: PeriodsHeld
    goal_progress: MeanProgress
    checkin_compliance: PeriodsHeld
    open_pulse_alerts: int
    cost: tuple[CostPerRetainedLeader, ...]
    objectives: tuple[ObjectiveRollup, ...]
    competency_growth: figures.CompetencyGrowth


def program_summary(db: Engine, *, workflow: str | None = None, start_year: int | None = None,
                    host: str | None = None, now: datetime) -> ProgramSummary:
    """The summary of the assignments the filters select, as of `now`, in one read transaction."""
    selection = figures.check_filter(workflow=workflow, start_year=start_year, host=host)
    with use_case_transaction(db) as session:
        workflows = {pk(w): (w.name, w.version, definition_of(w)) for w in report_queries.report_workflows(session)}
        names = sorted({name for name, _, _ in workflows.values()})
        if selection.workflow is not None and selection.workflow not in names:
            raise NotFound(f"--workflow: no workflow named {selection.workflow!r} "
                           f"(installed: {', '.join(names) or 'none installed'})")
        outcomes = program_queries.program_outcomes(session, selection)
        report_rows = figures.ReportRows(
            workflows=workflows, assignments=report_queries.report_assignments(session, selection),
            transitions=report_queries.report_transitions(session, selection), overdue_tasks=[],
            contacts=report_queries.report_contacts(session, selection), outcomes=outcomes,
            competency_ratings=program_queries.program_competency_ratings(session, selection))
        rows = SummaryRows(report=report_rows, assignments=program_queries.program_assignments(session, selection),
                           outcomes=outcomes,
                           checkins=program_queries.program_checkins(session, selection),
                           goal_progress=program_queries.program_goal_progress(session, selection),
                           open_pulse_alerts=program_queries.program_open_pulse_alerts(session, selection),
                           objectives=objective_queries.objective_rows(session),
                           objective_links=program_queries.program_objective_links(session, selection))
    return compute_summary(rows, selection, now)


def compute_summary(rows: SummaryRows, selection: AssignmentFilter, now: datetime) -> ProgramSummary:
    """Every figure of the summary, from rows alone: the same rows and `now` always give the same summary."""
    definitions = {workflow_id: definition for workflow_id, (_, _, definition) in rows.report.workflows.items()}
    completed = {a.id for a in rows.assignments if a.stage in completed_stages_of(definitions[a.workflow_id])}
    outcomes = [o for o in rows.outcomes if o.assignment_id in completed]
    retained = retained_leaders(outcomes)
    return ProgramSummary(
        as_of=now,
        filters=figures.filters_of(selection),
        assignments=len(rows.assignments),
        by_stage=figures.pipeline(rows.report, figures.stage_orders(rows.report, selection)),
        active=sum(not definitions[a.workflow_id].is_terminal(a.stage) for a in rows.assignments),
        completed=len(completed),
        early_returns=early_returns(rows.assignments, definitions),
        considered_for_promotion=len({o.assignment_id for o in outcomes if o.considered_for_promotion}),
        promoted=len({o.assignment_id for o in outcomes if o.promoted_to is not None}),
        retention=retention(rows.assignments, completed, outcomes, now),
        retained_leaders=len(retained),
        sponsor_contact=sponsor_contact(rows.report, now),
        goal_progress=mean_goal_progress(rows.goal_progress),
        checkin_compliance=checkin_compliance(rows.report, rows.checkins, now),
        open_pulse_alerts=rows.open_pulse_alerts,
        cost=cost_per_retained_leader(rows.assignments, retained),
        objectives=objective_rollup(rows.objectives, rows.objective_links, rows.goal_progress, outcomes),
        competency_growth=figures.competency_growth(
            outcomes, [r for r in rows.report.competency_ratings if r.assignment_id in completed]))


def early_returns(assignments: Iterable[ProgramAssignmentRow],
                  definitions: dict[int, WorkflowDefinition]) -> EarlyReturns:
    """Cancelled assignments, and those of them recorded as early returns, counted by reason category."""
    cancelled = [a for a in assignments if a.stage in cancelled_stages_of(definitions[a.workflow_id])]
    reasons = Counter(a.early_return_reason for a in cancelled if a.early_return_reason is not None)
    return EarlyReturns(cancelled=len(cancelled), total=sum(reasons.values()),
                        by_reason={reason: reasons[reason] for reason in EARLY_RETURN_REASONS})


def retention(assignments: Iterable[ProgramAssignmentRow], completed: set[int], outcomes: Iterable[OutcomeRow],
              now: datetime) -> tuple[Retention, ...]:
    """For 12 and 24 months: completed assignments due (the milestone has come, or its outcome is recorded
    already), outcomes recorded, and assignees still employed."""
    recorded = {(o.assignment_id, o.months): o for o in outcomes}
    today = now.date()
    found: list[Retention] = []
    for months in OUTCOME_MONTHS:
        due = [a.id for a in assignments if a.id in completed and
               (a.end + timedelta(days=OUTCOME_DUE_DAYS[months]) <= today or (a.id, months) in recorded)]
        known = [recorded[(i, months)] for i in due if (i, months) in recorded]
        kept = sum(o.retained for o in known)
        found.append(Retention(months=months, due=len(due), recorded=len(known), retained=kept,
                               rate=round(kept / len(due), 3) if due else None))
    return tuple(found)


def retained_leaders(outcomes: Iterable[OutcomeRow]) -> set[int]:
    """Assignments whose latest recorded outcome says the assignee is still employed."""
    latest: dict[int, OutcomeRow] = {}
    for o in outcomes:
        if o.assignment_id not in latest or o.months > latest[o.assignment_id].months:
            latest[o.assignment_id] = o
    return {i for i, o in latest.items() if o.retained}


def sponsor_contact(rows: figures.ReportRows, now: datetime) -> PeriodsHeld:
    """Periods of the sponsor cadences held out of periods due, over all selected assignments, as the report
    counts them for each assignment."""
    kinds = {c.kind for _, _, definition in rows.workflows.values() for c in definition.cadences
             if c.with_role == SPONSOR_ROLE}
    history: dict[int, list[report_queries.TransitionRow]] = defaultdict(list)
    for step in rows.transitions:
        history[step.assignment_id].append(step)
    periods = [p for p in figures.contact_compliance(rows, history, now) if p.kind in kinds]
    return PeriodsHeld.of(sum(p.periods_held for p in periods), sum(p.periods_due for p in periods))


def mean_goal_progress(progress: Iterable[GoalProgressRow]) -> MeanProgress:
    """The mean of each goal's latest recorded percent (latest by check-in instant), over the goals checked in on."""
    return MeanProgress.of(list(latest_percents(progress).values()))


def checkin_compliance(rows: figures.ReportRows, checkins: Iterable[CheckinRow], now: datetime) -> PeriodsHeld:
    """Periods of the `checkin` cadences held out of periods due, counted as the sponsor contact is; a check-in
    holds the period its instant falls in, in the assignee's zone, as planning decides it."""
    zones = {a.id: ZoneInfo(a.assignee_tz) for a in rows.assignments}
    days: dict[int, list[date]] = defaultdict(list)
    for c in checkins:
        days[c.assignment_id].append(c.at.astimezone(zones[c.assignment_id]).date())
    history: dict[int, list[report_queries.TransitionRow]] = defaultdict(list)
    for step in rows.transitions:
        history[step.assignment_id].append(step)
    held = due = 0
    for a in rows.assignments:
        definition = rows.workflows[a.workflow_id][2]
        for cadence in (c for c in definition.cadences if c.kind == CHECKIN_CADENCE):
            counted = figures.periods_held_and_due(a, definition, cadence, figures.cadence_stages(definition, cadence),
                                                   history.get(a.id, []), sorted(days[a.id]), now)
            if counted is None:
                continue
            a_held, a_due = counted
            held, due = held + a_held, due + a_due
    return PeriodsHeld.of(held, due)


def cost_per_retained_leader(assignments: Iterable[ProgramAssignmentRow],
                             retained: set[int]) -> tuple[CostPerRetainedLeader, ...]:
    """By currency: what the costed assignments cost in all (early returns included, as they were paid for too),
    and that total divided by the leaders among them still employed after return."""
    totals: dict[str, Decimal] = defaultdict(Decimal)
    counted: Counter[str] = Counter()
    kept: Counter[str] = Counter()
    for a in assignments:
        if a.cost_amount is None or a.cost_currency is None:
            continue
        totals[a.cost_currency] += Decimal(a.cost_amount)
        counted[a.cost_currency] += 1
        kept[a.cost_currency] += a.id in retained
    return tuple(CostPerRetainedLeader(
        currency=currency, assignments=counted[currency], total=str(totals[currency].quantize(CENTS)),
        retained_leaders=kept[currency],
        per_retained_leader=str((totals[currency] / kept[currency]).quantize(CENTS)) if kept[currency] else None)
        for currency in sorted(totals))
