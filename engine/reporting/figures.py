"""Program reports: stages, stage durations, overdue work, sponsor contact, repatriations and outcomes of a program.

`program_report` is the use case: it reads the selected assignments with one query per table
(`engine.store.report_queries`) and hands the rows to `compute_report`, a pure function of rows and `now`. The result
is a `ProgramReport`; `engine.reporting.render` turns it into JSON, a table, CSV or a self-contained HTML page.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from engine.domain import inputs
from engine.domain.cadences import CadenceSchedule, in_range
from engine.domain.definition import Cadence, WorkflowDefinition
from engine.domain.errors import BadInput, NotFound
from engine.domain.inputs import OUTCOME_MONTHS
from engine.domain.notices import RECORDED_CADENCES
from engine.domain.views import Result
from engine.program.records import definition_of
from engine.program.transactions import use_case_transaction
from engine.reporting.objectives import ObjectiveRollup, objective_rollup
from engine.store import objective_queries, program_queries, report_queries
from engine.store.models import pk
from engine.store.objective_queries import ObjectiveRow
from engine.store.program_queries import CompetencyRatingRow, GoalProgressRow, ObjectiveLinkRow, OutcomeRow
from engine.store.report_queries import AssignmentFilter, AssignmentRow, ContactRow, OverdueTaskRow, TransitionRow

REPATRIATION_WINDOW_DAYS = 180  # repatriation planning starts three to six months before the end date
SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class ReportRows:
    """Everything a report is computed from, as read from the database."""

    workflows: dict[int, tuple[str, int, WorkflowDefinition]]  # workflow id -> (name, version, definition)
    assignments: list[AssignmentRow]
    transitions: list[TransitionRow]
    overdue_tasks: list[OverdueTaskRow]
    contacts: list[ContactRow]
    outcomes: list[OutcomeRow] = field(default_factory=list)  # recorded 12 and 24 months after return
    objectives: list[ObjectiveRow] = field(default_factory=list)
    objective_links: list[ObjectiveLinkRow] = field(default_factory=list)  # of the selected assignments' goals
    goal_progress: list[GoalProgressRow] = field(default_factory=list)
    competency_ratings: list[CompetencyRatingRow] = field(default_factory=list)  # rated in those outcomes


@dataclass(frozen=True)
class ReportFilters(Result):
    """The filters a report or summary was made with, as checked (None: not filtered on)."""

    workflow: str | None
    start_year: int | None
    host: str | None


@dataclass(frozen=True)
class StageCount(Result):
    workflow: str
    stage: str
    assignments: int


@dataclass(frozen=True)
class StageDuration(Result):
    workflow: str
    stage: str
    stays: int
    median_days: float | None
    p90_days: float | None


@dataclass(frozen=True)
class OverdueOwner(Result):
    owner: str  # email
    name: str
    role: str
    tasks: int
    assignments: int
    oldest_due_on: date


@dataclass(frozen=True)
class ContactCompliance(Result):
    assignment_id: int
    assignee: str
    kind: str
    periods_held: int
    periods_due: int
    rate: float | None  # None when no period is due yet


@dataclass(frozen=True)
class Repatriation(Result):
    assignment_id: int
    assignee: str
    name: str
    home: str
    host: str
    stage: str
    end: date
    days_left: int


@dataclass(frozen=True)
class Cancellation(Result):
    assignment_id: int
    assignee: str
    from_stage: str | None
    on: date | None
    reason: str | None


@dataclass(frozen=True)
class RecordedOutcome(Result):
    assignment_id: int
    assignee: str
    months: int
    retained: bool
    considered_for_promotion: bool
    promoted_to: str | None


@dataclass(frozen=True)
class RetentionAt(Result):
    months: int
    recorded: int
    retained: int
    rate: float | None


@dataclass(frozen=True)
class CompetencyRating(Result):
    assignment_id: int
    months: int
    baseline: int | None
    after: int
    growth: int | None


@dataclass(frozen=True)
class GrowthOf(Result):
    """One competency's growth over the cohort."""

    name: str
    assignments: int
    with_baseline: int
    no_baseline: int
    mean_growth: float | None
    ratings: tuple[CompetencyRating, ...]


@dataclass(frozen=True)
class CompetencyGrowth(Result):
    competencies: tuple[GrowthOf, ...]
    with_baseline: int
    no_baseline: int
    mean_growth: float | None
    impact_statements: int


@dataclass(frozen=True)
class Outcomes(Result):
    completed: int
    cancelled: int
    cancellations: tuple[Cancellation, ...]
    recorded: tuple[RecordedOutcome, ...]
    retention: tuple[RetentionAt, ...]
    considered_for_promotion: int
    promoted: int
    competency_growth: CompetencyGrowth


@dataclass(frozen=True)
class ProgramReport(Result):
    as_of: datetime
    filters: ReportFilters
    assignments: int
    pipeline: tuple[StageCount, ...]
    stage_durations: tuple[StageDuration, ...]
    overdue: tuple[OverdueOwner, ...]
    contact_compliance: tuple[ContactCompliance, ...]
    upcoming_repatriations: tuple[Repatriation, ...]
    outcomes: Outcomes
    objectives: tuple[ObjectiveRollup, ...]


def check_filter(*, workflow: str | None, start_year: int | None, host: str | None) -> AssignmentFilter:
    """The filter as typed, checked: a malformed value is a BadInput (exit 2)."""
    if start_year is not None and not inputs.MIN_YEAR <= start_year <= inputs.MAX_YEAR:
        raise BadInput(f"--start-year: {start_year} is not a year between {inputs.MIN_YEAR} and {inputs.MAX_YEAR}")
    return AssignmentFilter(workflow=inputs.text(workflow, "--workflow") if workflow is not None else None,
                            start_year=start_year, host=inputs.country(host, "--host") if host is not None else None)


def program_report(db: Engine, *, workflow: str | None = None, start_year: int | None = None,
                   host: str | None = None, now: datetime,
                   progress: Callable[[int, int], None] | None = None) -> ProgramReport:
    """The report over the assignments the filters select, as of `now`, in one read transaction.

    `progress(done, total)` is told of its two halves: reading the rows, then computing the figures.
    """
    selection = check_filter(workflow=workflow, start_year=start_year, host=host)
    with use_case_transaction(db) as session:
        workflows = {pk(w): (w.name, w.version, definition_of(w)) for w in report_queries.report_workflows(session)}
        if selection.workflow is not None and selection.workflow not in {n for n, _, _ in workflows.values()}:
            known = ", ".join(sorted({n for n, _, _ in workflows.values()})) or "none installed"
            raise NotFound(f"--workflow: no workflow named {selection.workflow!r} (installed: {known})")
        rows = ReportRows(workflows=workflows, assignments=report_queries.report_assignments(session, selection),
                          transitions=report_queries.report_transitions(session, selection),
                          overdue_tasks=report_queries.report_overdue_tasks(session, selection, now),
                          contacts=report_queries.report_contacts(session, selection),
                          outcomes=program_queries.program_outcomes(session, selection),
                          objectives=objective_queries.objective_rows(session),
                          objective_links=program_queries.program_objective_links(session, selection),
                          goal_progress=program_queries.program_goal_progress(session, selection),
                          competency_ratings=program_queries.program_competency_ratings(session, selection))
    if progress is not None:
        progress(1, 2)
    report = compute_report(rows, selection, now)
    if progress is not None:
        progress(2, 2)
    return report


# --- the figures ------------------------------------------------------------------------------------------------


def compute_report(rows: ReportRows, selection: AssignmentFilter, now: datetime) -> ProgramReport:
    """Every figure of the report, from rows alone: the same rows and `now` always give the same report."""
    history: dict[int, list[TransitionRow]] = defaultdict(list)
    for step in rows.transitions:
        history[step.assignment_id].append(step)
    orders = stage_orders(rows, selection)
    return ProgramReport(
        as_of=now, filters=filters_of(selection), assignments=len(rows.assignments),
        pipeline=pipeline(rows, orders), stage_durations=stage_durations(rows, history, orders),
        overdue=overdue_by_owner(rows.overdue_tasks), contact_compliance=contact_compliance(rows, history, now),
        upcoming_repatriations=upcoming_repatriations(rows, now), outcomes=outcomes(rows, history),
        objectives=objective_rollup(rows.objectives, rows.objective_links, rows.goal_progress, rows.outcomes))


def filters_of(selection: AssignmentFilter) -> ReportFilters:
    return ReportFilters(workflow=selection.workflow, start_year=selection.start_year, host=selection.host)


def stage_orders(rows: ReportRows, selection: AssignmentFilter) -> dict[str, list[str]]:
    """Workflow name -> its stages in the newest version's order, then stages only older versions had.

    Only workflows with a selected assignment are listed, and the workflow named by the filter always is.
    """
    newest: dict[str, tuple[int, WorkflowDefinition]] = {}
    for name, version, definition in rows.workflows.values():
        if name not in newest or version > newest[name][0]:
            newest[name] = (version, definition)
    used = {rows.workflows[a.workflow_id][0] for a in rows.assignments}
    if selection.workflow is not None:
        used.add(selection.workflow)
    orders: dict[str, list[str]] = {}
    for name in sorted(used):
        stages = list(newest[name][1].stage_keys)
        for workflow_name, _, definition in rows.workflows.values():
            stages += [s for s in definition.stage_keys if workflow_name == name and s not in stages]
        orders[name] = stages
    return orders


def pipeline(rows: ReportRows, stage_orders: dict[str, list[str]]) -> tuple[StageCount, ...]:
    """How many assignments stand in each stage, every stage of each workflow listed (zero included)."""
    counts = Counter((rows.workflows[a.workflow_id][0], a.stage) for a in rows.assignments)
    return tuple(StageCount(workflow=name, stage=stage, assignments=counts[(name, stage)])
                 for name, stages in stage_orders.items() for stage in stages)


def median(values: Sequence[float]) -> float | None:
    """The middle value (the mean of the two middle ones for an even count); None for no values."""
    return float(statistics.median(values)) if values else None


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile: the smallest value at or below which `fraction` of the values lie."""
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[max(math.ceil(fraction * len(ordered)), 1) - 1])


def stage_stays(history: Iterable[TransitionRow]) -> list[tuple[str, float]]:
    """(stage, days) for every stay an assignment has finished: from entering a stage to the next stage change."""
    steps = list(history)
    return [(entered.to_stage, (left.at - entered.at).total_seconds() / SECONDS_PER_DAY)
            for entered, left in itertools.pairwise(steps)]


def stage_durations(rows: ReportRows, history: dict[int, list[TransitionRow]],
                    stage_orders: dict[str, list[str]]) -> tuple[StageDuration, ...]:
    """Median and 90th percentile of the days spent in each stage, over stays that have ended.

    Final stages (nothing leaves them) have no stays and are not listed; a stage nobody has left yet is listed with
    no figures.
    """
    days: dict[tuple[str, str], list[float]] = defaultdict(list)
    final: dict[str, set[str]] = defaultdict(set)
    for name, _, definition in rows.workflows.values():
        final[name] |= {s for s in definition.stage_keys if definition.is_terminal(s)}
    for a in rows.assignments:
        name = rows.workflows[a.workflow_id][0]
        for stage, spent in stage_stays(history.get(a.id, [])):
            days[(name, stage)].append(spent)
    return tuple(StageDuration(workflow=name, stage=stage, stays=len(days[(name, stage)]),
                               median_days=_rounded(median(days[(name, stage)])),
                               p90_days=_rounded(percentile(days[(name, stage)], 0.9)))
                 for name, stages in stage_orders.items() for stage in stages if stage not in final[name])


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def overdue_by_owner(tasks: Iterable[OverdueTaskRow]) -> tuple[OverdueOwner, ...]:
    """Overdue open tasks counted by owner and the role they own them in, most first."""
    groups: dict[tuple[str, str], list[OverdueTaskRow]] = defaultdict(list)
    for task in tasks:
        groups[(task.owner_email, task.owner_role)].append(task)
    found = [OverdueOwner(owner=email, name=group[0].owner_name, role=role, tasks=len(group),
                          assignments=len({t.assignment_id for t in group}),
                          oldest_due_on=min(t.due_on for t in group))
             for (email, role), group in groups.items()]
    return tuple(sorted(found, key=lambda g: (-g.tasks, g.oldest_due_on, g.owner, g.role)))


def contact_compliance(rows: ReportRows, history: dict[int, list[TransitionRow]],
                       now: datetime) -> tuple[ContactCompliance, ...]:
    """For each assignment and cadence it has entered: periods held out of periods due, as the daemon counts them.

    Periods are anchored on the day the assignment entered the cadence's stages (in the assignee's zone), as
    planning anchors them. A period is due once it has ended and its grace days have passed (the day the daemon
    would send `contact_missed`), while the assignment was still in the cadence's stages; it is held when a contact
    of that kind is dated inside it.
    """
    logged: dict[tuple[int, str], list[date]] = defaultdict(list)
    for contact in rows.contacts:
        logged[(contact.assignment_id, contact.kind)].append(contact.on)
    found: list[ContactCompliance] = []
    stages_of: dict[tuple[int, str], frozenset[str]] = {}
    for a in rows.assignments:
        definition = rows.workflows[a.workflow_id][2]
        # check-ins and pulses are not logged contacts: they have no rows in `contacts` to count
        for cadence in (c for c in definition.cadences if c.kind not in RECORDED_CADENCES):
            key = (a.workflow_id, cadence.kind)
            if key not in stages_of:
                stages_of[key] = cadence_stages(definition, cadence)
            counted = periods_held_and_due(a, definition, cadence, stages_of[key], history.get(a.id, []),
                                           sorted(logged[(a.id, cadence.kind)]), now)
            if counted is None:
                continue
            held, due = counted
            found.append(ContactCompliance(assignment_id=a.id, assignee=a.assignee_email, kind=cadence.kind,
                                           periods_held=held, periods_due=due,
                                           rate=round(held / due, 3) if due else None))
    return tuple(found)


def periods_held_and_due(assignment: AssignmentRow, definition: WorkflowDefinition, cadence: Cadence,
                         stages: frozenset[str], history: Sequence[TransitionRow], ordered_days: Sequence[date],
                         now: datetime) -> tuple[int, int] | None:
    """(held, due) of one cadence of one assignment, its periods held by the sorted days given (in the assignee's
    zone); None when the assignment never entered the cadence's `stages`."""
    span = _time_in_stages(history, stages)
    if span is None:
        return None
    entered, left = span
    schedule = CadenceSchedule.of(definition, cadence, entered, assignment.assignee_tz, start=assignment.start)
    last_check = min(now, left) if left is not None else now
    return schedule.held_and_due(last_check.astimezone(ZoneInfo(assignment.assignee_tz)).date(), ordered_days)


def cadence_stages(definition: WorkflowDefinition, cadence: Cadence) -> frozenset[str]:
    """The stages a cadence runs in, as planning decides it (`in_range`)."""
    return frozenset(s for s in definition.stage_keys if in_range(definition, cadence, s))


def _time_in_stages(history: Sequence[TransitionRow],
                    stages: frozenset[str]) -> tuple[datetime, datetime | None] | None:
    """When the assignment last entered `stages` from outside them, and when it next left them (None: it has not);
    None when it never entered them. Planning anchors a cadence's periods on the same entry."""
    entry = None
    for index, step in enumerate(history):
        if step.to_stage in stages and step.from_stage not in stages:
            entry = index
    if entry is None:
        return None
    # the steps after the entry, not the later instants: stages passed through in one instant left at that instant
    left = next((s.at for s in history[entry + 1:] if s.to_stage not in stages), None)
    return history[entry].at, left


def upcoming_repatriations(rows: ReportRows, now: datetime) -> tuple[Repatriation, ...]:
    """Assignments still running whose end date falls within the next REPATRIATION_WINDOW_DAYS, soonest first."""
    today = now.date()
    horizon = today + timedelta(days=REPATRIATION_WINDOW_DAYS)
    found = [Repatriation(assignment_id=a.id, assignee=a.assignee_email, name=a.assignee_name, home=a.home,
                          host=a.host, stage=a.stage, end=a.end, days_left=(a.end - today).days)
             for a in rows.assignments
             if today <= a.end <= horizon and not rows.workflows[a.workflow_id][2].is_terminal(a.stage)]
    return tuple(sorted(found, key=lambda r: (r.end, r.assignment_id)))


def outcomes(rows: ReportRows, history: dict[int, list[TransitionRow]]) -> Outcomes:
    """How assignments ended and what became of the leaders after return.

    An assignment has ended when it stands in a final stage; it was cancelled when the workflow asks a reason for
    entering that stage (the built-in `cancelled`), and completed otherwise. `recorded` lists every outcome recorded
    12 or 24 months after return (`sojourn outcome record`), and `retention` counts them by milestone: of the
    outcomes recorded, how many say the leader is still employed. The program summary also counts the milestones
    due but not recorded yet.
    """
    completed = 0
    cancellations: list[Cancellation] = []
    for a in rows.assignments:
        definition = rows.workflows[a.workflow_id][2]
        if not definition.is_terminal(a.stage):
            continue
        if a.stage not in {t.dest for t in definition.transitions if t.requires_reason}:
            completed += 1
            continue
        last = history[a.id][-1] if history.get(a.id) else None
        cancellations.append(Cancellation(assignment_id=a.id, assignee=a.assignee_email,
                                          from_stage=last.from_stage if last else None,
                                          on=last.at.date() if last else None,
                                          reason=last.reason if last else None))
    assignees = {a.id: a.assignee_email for a in rows.assignments}
    recorded = sorted(rows.outcomes, key=lambda o: (o.assignment_id, o.months))
    return Outcomes(
        completed=completed, cancelled=len(cancellations), cancellations=tuple(cancellations),
        recorded=tuple(RecordedOutcome(assignment_id=o.assignment_id, assignee=assignees[o.assignment_id],
                                       months=o.months, retained=o.retained,
                                       considered_for_promotion=o.considered_for_promotion,
                                       promoted_to=o.promoted_to) for o in recorded),
        retention=tuple(_retention_at(months, [o for o in recorded if o.months == months])
                        for months in OUTCOME_MONTHS),
        considered_for_promotion=len({o.assignment_id for o in recorded if o.considered_for_promotion}),
        promoted=len({o.assignment_id for o in recorded if o.promoted_to is not None}),
        competency_growth=competency_growth(recorded, rows.competency_ratings))


def competency_growth(outcomes: Iterable[OutcomeRow], ratings: Iterable[CompetencyRatingRow]) -> CompetencyGrowth:
    """Growth per competency over the cohort, and how many outcomes state a business impact.

    Each assignment counts once per competency, with its latest rating after return (24 months over 12). Its growth
    is that rating minus the baseline rated when the plan was agreed (or the `before` typed with the outcome); a
    rating with no baseline is counted under `no_baseline` and in no mean. Means are rounded to two decimals. An
    impact statement blanked by an erasure still counts: the statement was made, only its text is gone.
    """
    latest: dict[tuple[int, str], CompetencyRatingRow] = {}
    for rating in sorted(ratings, key=lambda r: (r.assignment_id, r.months)):
        latest[(rating.assignment_id, rating.name.lower())] = rating
    by_name: dict[str, list[CompetencyRatingRow]] = defaultdict(list)
    for (_, key), rating in sorted(latest.items()):
        by_name[key].append(rating)
    competencies = tuple(_growth_of(found) for _, found in sorted(by_name.items()))
    growths = [r.after - r.before for r in latest.values() if r.before is not None]
    return CompetencyGrowth(competencies=competencies, with_baseline=len(growths),
                            no_baseline=len(latest) - len(growths), mean_growth=_mean_growth(growths),
                            impact_statements=sum(o.impact is not None for o in outcomes))


def _growth_of(ratings: Sequence[CompetencyRatingRow]) -> GrowthOf:
    growths = [r.after - r.before for r in ratings if r.before is not None]
    return GrowthOf(name=ratings[0].name, assignments=len(ratings), with_baseline=len(growths),
                    no_baseline=len(ratings) - len(growths), mean_growth=_mean_growth(growths),
                    ratings=tuple(CompetencyRating(assignment_id=r.assignment_id, months=r.months, baseline=r.before,
                                                   after=r.after,
                                                   growth=None if r.before is None else r.after - r.before)
                                  for r in ratings))


def _mean_growth(growths: Sequence[int]) -> float | None:
    return round(statistics.fmean(growths), 2) if growths else None


def _retention_at(months: int, recorded: Sequence[OutcomeRow]) -> RetentionAt:
    kept = sum(o.retained for o in recorded)
    return RetentionAt(months=months, recorded=len(recorded), retained=kept,
                       rate=round(kept / len(recorded), 3) if recorded else None)
