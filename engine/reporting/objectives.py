"""The roll-up per objective: how many goals serve each organisation and mobility-team objective, how far they have
come, and what became of the assignees whose goals serve it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from engine.domain.views import Result
from engine.store.objective_queries import ObjectiveRow
from engine.store.program_queries import GoalProgressRow, ObjectiveLinkRow, OutcomeRow


@dataclass(frozen=True)
class MeanProgress(Result):
    """The mean of goals' latest progress, over the goals checked in on (None: none is)."""

    goals: int
    mean_percent: float | None

    @classmethod
    def of(cls, percents: Sequence[int]) -> MeanProgress:
        return cls(goals=len(percents), mean_percent=round(sum(percents) / len(percents), 1) if percents else None)


@dataclass(frozen=True)
class ObjectiveOutcomes(Result):
    """Counts over assignments, each counted once."""

    recorded: int
    considered_for_promotion: int
    promoted: int
    retained: int


@dataclass(frozen=True)
class ObjectiveRollup(Result):
    id: int
    level: str
    title: str
    owner: str | None
    year: int | None
    goals: int
    assignments: int
    progress: MeanProgress
    outcomes: ObjectiveOutcomes


def latest_percents(progress: Iterable[GoalProgressRow]) -> dict[int, int]:
    """Goal id -> its latest recorded percent (latest by check-in instant, then check-in id)."""
    latest: dict[int, GoalProgressRow] = {}
    for p in progress:
        if p.goal_id not in latest or (p.at, p.checkin_id) > (latest[p.goal_id].at, latest[p.goal_id].checkin_id):
            latest[p.goal_id] = p
    return {goal_id: p.percent for goal_id, p in latest.items()}


def objective_rollup(objectives: Sequence[ObjectiveRow], links: Iterable[ObjectiveLinkRow],
                     progress: Iterable[GoalProgressRow],
                     outcomes: Iterable[OutcomeRow]) -> tuple[ObjectiveRollup, ...]:
    """For every objective, over the selected assignments' live goals aligned to it: the goals and assignments, the
    mean of the goals' latest progress (over those checked in on), and the outcomes of those assignments (each
    counted once: considered for promotion or promoted at any milestone, retained at its latest one)."""
    goals: dict[int, set[int]] = defaultdict(set)
    assignments: dict[int, set[int]] = defaultdict(set)
    for link in links:
        goals[link.objective_id].add(link.goal_id)
        assignments[link.objective_id].add(link.assignment_id)
    percents = latest_percents(progress)
    by_assignment: dict[int, list[OutcomeRow]] = defaultdict(list)
    for outcome in outcomes:
        by_assignment[outcome.assignment_id].append(outcome)
    return tuple(ObjectiveRollup(id=o.id, level=o.level, title=o.title, owner=o.owner, year=o.year,
                                 goals=len(goals[o.id]), assignments=len(assignments[o.id]),
                                 progress=MeanProgress.of([percents[g] for g in sorted(goals[o.id]) if g in percents]),
                                 outcomes=_outcomes([by_assignment[a] for a in sorted(assignments[o.id])
                                                     if by_assignment[a]]))
                 for o in objectives)


def _outcomes(recorded: list[list[OutcomeRow]]) -> ObjectiveOutcomes:
    """Counts over assignments, each given as its recorded outcomes."""
    return ObjectiveOutcomes(
        recorded=len(recorded),
        considered_for_promotion=sum(any(o.considered_for_promotion for o in rows) for rows in recorded),
        promoted=sum(any(o.promoted_to is not None for o in rows) for rows in recorded),
        retained=sum(max(rows, key=lambda o: o.months).retained for rows in recorded))
