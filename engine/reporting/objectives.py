"""The roll-up per objective: how many goals serve each organisation and mobility-team objective, how far they have
come, and what became of the assignees whose goals serve it."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from engine.store.objective_queries import ObjectiveRow
from engine.store.program_queries import GoalProgressRow, ObjectiveLinkRow, OutcomeRow


def latest_percents(progress: Iterable[GoalProgressRow]) -> dict[int, int]:
    """Goal id -> its latest recorded percent (latest by check-in instant, then check-in id)."""
    latest: dict[int, GoalProgressRow] = {}
    for p in progress:
        if p.goal_id not in latest or (p.at, p.checkin_id) > (latest[p.goal_id].at, latest[p.goal_id].checkin_id):
            latest[p.goal_id] = p
    return {goal_id: p.percent for goal_id, p in latest.items()}


def objective_rollup(objectives: Sequence[ObjectiveRow], links: Iterable[ObjectiveLinkRow],
                     progress: Iterable[GoalProgressRow], outcomes: Iterable[OutcomeRow]) -> list[dict[str, Any]]:
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
    return [{"id": o.id, "level": o.level, "title": o.title, "owner": o.owner, "year": o.year,
             "goals": len(goals[o.id]), "assignments": len(assignments[o.id]),
             "progress": _mean_progress([percents[g] for g in sorted(goals[o.id]) if g in percents]),
             "outcomes": _outcomes([by_assignment[a] for a in sorted(assignments[o.id]) if by_assignment[a]])}
            for o in objectives]


def _mean_progress(percents: list[int]) -> dict[str, Any]:
    return {"goals": len(percents), "mean_percent": round(sum(percents) / len(percents), 1) if percents else None}


def _outcomes(recorded: list[list[OutcomeRow]]) -> dict[str, int]:
    """Counts over assignments, each given as its recorded outcomes."""
    return {"recorded": len(recorded),
            "considered_for_promotion": sum(any(o.considered_for_promotion for o in rows) for rows in recorded),
            "promoted": sum(any(o.promoted_to is not None for o in rows) for rows in recorded),
            "retained": sum(max(rows, key=lambda o: o.months).retained for rows in recorded)}
