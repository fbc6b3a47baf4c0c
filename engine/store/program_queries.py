"""The reads behind outcomes and `sojourn program summary`: one query per table for all selected assignments.

Like `report_queries`, they select plain columns as Core statements; the figures are computed in
`engine.reporting.summary`.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import Connection, func, select, true, update
from sqlmodel import Session, col

from engine.store.models import (
    Assignment,
    Checkin,
    CompetencyBaseline,
    Goal,
    GoalObjective,
    GoalProgress,
    Outcome,
    OutcomeCompetency,
    Pulse,
)
from engine.store.report_queries import AssignmentFilter, rows_of, selected_ids


class ProgramAssignmentRow(NamedTuple):
    id: int
    workflow_id: int
    stage: str
    end: date
    early_return_reason: str | None
    cost_amount: Decimal | None
    cost_currency: str | None


class OutcomeRow(NamedTuple):
    assignment_id: int
    months: int
    retained: bool
    considered_for_promotion: bool
    promoted_to: str | None
    impact: str | None = None


class CompetencyRatingRow(NamedTuple):
    """A competency rated after return: `before` is the baseline (None when it had none)."""

    assignment_id: int
    months: int
    name: str
    before: int | None
    after: int


class CheckinRow(NamedTuple):
    assignment_id: int
    at: datetime


class GoalProgressRow(NamedTuple):
    goal_id: int
    percent: int
    at: datetime  # when the check-in that recorded it happened
    checkin_id: int


class ObjectiveLinkRow(NamedTuple):
    """A live goal of a selected assignment aligned to an objective."""

    objective_id: int
    goal_id: int
    assignment_id: int


def outcome_of(session: Session, assignment_id: int, months: int) -> Outcome | None:
    """outcome_of: the assignment's outcome at `months` after return, if recorded."""
    return session.scalars(select(Outcome).where(col(Outcome.assignment_id) == assignment_id,
                                                 col(Outcome.months) == months)).first()


def outcomes_with_competencies(session: Session,
                               assignment_id: int) -> list[tuple[Outcome, list[OutcomeCompetency]]]:
    """outcomes_with_competencies: the assignment's recorded outcomes, 12 months first, each with its competencies
    in the order recorded; two queries."""
    outcomes = list(session.scalars(select(Outcome).where(col(Outcome.assignment_id) == assignment_id)
                                    .order_by(col(Outcome.months))))
    ratings: dict[int | None, list[OutcomeCompetency]] = {o.id: [] for o in outcomes}
    if outcomes:
        for rating in session.scalars(select(OutcomeCompetency)
                                      .where(col(OutcomeCompetency.outcome_id).in_(list(ratings)))
                                      .order_by(col(OutcomeCompetency.id))):
            ratings[rating.outcome_id].append(rating)
    return [(o, ratings[o.id]) for o in outcomes]


def set_early_return_reason(connection: Connection, assignment_id: int, category: str) -> str:
    """set_early_return_reason: keep why a cancelled assignment ended early; returns the category written."""
    connection.execute(update(Assignment).where(col(Assignment.id) == assignment_id)
                       .values(early_return_reason=category))
    return category


def set_assignment_cost(connection: Connection, assignment_id: int, amount: Decimal, currency: str) -> None:
    """set_assignment_cost: what the assignment cost, in its currency."""
    connection.execute(update(Assignment).where(col(Assignment.id) == assignment_id)
                       .values(cost_amount=amount, cost_currency=currency))


def program_assignments(session: Session, selection: AssignmentFilter) -> list[ProgramAssignmentRow]:
    """program_assignments: stage, end date, early-return category and cost of the selected assignments, by id."""
    statement = (select(col(Assignment.id), col(Assignment.workflow_id), col(Assignment.stage), col(Assignment.end),
                        col(Assignment.early_return_reason), col(Assignment.cost_amount),
                        col(Assignment.cost_currency))
                 .where(col(Assignment.id).in_(selected_ids(selection))).order_by(col(Assignment.id)))
    return [ProgramAssignmentRow(*row) for row in rows_of(session, statement)]


def program_outcomes(session: Session, selection: AssignmentFilter) -> list[OutcomeRow]:
    """program_outcomes: the recorded outcomes of the selected assignments."""
    statement = (select(col(Outcome.assignment_id), col(Outcome.months), col(Outcome.retained),
                        col(Outcome.considered_for_promotion), col(Outcome.promoted_to), col(Outcome.impact))
                 .where(col(Outcome.assignment_id).in_(selected_ids(selection))))
    return [OutcomeRow(*row) for row in rows_of(session, statement)]


def program_competency_ratings(session: Session, selection: AssignmentFilter) -> list[CompetencyRatingRow]:
    """program_competency_ratings: every competency rated in the outcomes of the selected assignments."""
    statement = (select(col(Outcome.assignment_id), col(Outcome.months), col(OutcomeCompetency.name),
                        col(OutcomeCompetency.before), col(OutcomeCompetency.after))
                 .join(Outcome, col(OutcomeCompetency.outcome_id) == col(Outcome.id))
                 .where(col(Outcome.assignment_id).in_(selected_ids(selection)))
                 .order_by(col(Outcome.assignment_id), col(Outcome.months), col(OutcomeCompetency.id)))
    return [CompetencyRatingRow(*row) for row in rows_of(session, statement)]


def competency_baselines_of(session: Session, assignment_id: int) -> list[CompetencyBaseline]:
    """competency_baselines_of: every baseline rated for the assignment, oldest first."""
    return list(session.scalars(select(CompetencyBaseline).where(col(CompetencyBaseline.assignment_id) ==
                                                                 assignment_id).order_by(col(CompetencyBaseline.id))))


def program_checkins(session: Session, selection: AssignmentFilter) -> list[CheckinRow]:
    """program_checkins: when each check-in of the selected assignments happened."""
    statement = (select(col(Checkin.assignment_id), col(Checkin.at))
                 .where(col(Checkin.assignment_id).in_(selected_ids(selection))))
    return [CheckinRow(*row) for row in rows_of(session, statement)]


def program_goal_progress(session: Session, selection: AssignmentFilter) -> list[GoalProgressRow]:
    """program_goal_progress: every progress recorded on the selected assignments' goals not removed, with its
    check-in's instant."""
    statement = (select(col(GoalProgress.goal_id), col(GoalProgress.percent), col(Checkin.at), col(Checkin.id))
                 .join(Checkin, col(GoalProgress.checkin_id) == col(Checkin.id))
                 .join(Goal, col(GoalProgress.goal_id) == col(Goal.id))
                 .where(col(Goal.assignment_id).in_(selected_ids(selection)), col(Goal.removed_at).is_(None)))
    return [GoalProgressRow(*row) for row in rows_of(session, statement)]


def program_open_pulse_alerts(session: Session, selection: AssignmentFilter) -> int:
    """program_open_pulse_alerts: how many pulses of the selected assignments alerted and are not resolved yet."""
    statement = (select(func.count()).select_from(Pulse)
                 .where(col(Pulse.assignment_id).in_(selected_ids(selection)), col(Pulse.alert) == true(),
                        col(Pulse.resolved_at).is_(None)))
    return int(session.connection().execute(statement).scalar_one())


def program_objective_links(session: Session, selection: AssignmentFilter) -> list[ObjectiveLinkRow]:
    """program_objective_links: every link of a live goal of the selected assignments to an objective."""
    statement = (select(col(GoalObjective.objective_id), col(GoalObjective.goal_id), col(Goal.assignment_id))
                 .join(Goal, col(Goal.id) == col(GoalObjective.goal_id))
                 .where(col(Goal.assignment_id).in_(selected_ids(selection)), col(Goal.removed_at).is_(None)))
    return [ObjectiveLinkRow(*row) for row in rows_of(session, statement)]
