"""The statements of objectives and of the goals aligned to them: add, list, link, and the reads behind the guard,
the roll-up per objective and `audit verify`."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from sqlalchemy import Connection, delete, func, insert, select, text
from sqlmodel import Session, col

from engine.store.models import Goal, GoalObjective, Objective, Person, pk


def objectives(session: Session) -> list[tuple[Objective, Person | None]]:
    """objectives: every objective with its owner (None: no owner), oldest first."""
    statement = (select(Objective, Person).outerjoin(Person, col(Objective.owner_id) == col(Person.id))
                 .order_by(col(Objective.id)))
    return [(objective, owner) for objective, owner in session.execute(statement)]


def objectives_by_id(session: Session, ids: Iterable[int]) -> dict[int, Objective]:
    """objectives_by_id: the objectives among `ids` that exist, by id."""
    statement = select(Objective).where(col(Objective.id).in_(set(ids)))
    return {int(o.id): o for o in session.scalars(statement) if o.id is not None}


def newest_objective(session: Session) -> Objective | None:
    """newest_objective: the objective added last, the head of the objectives' hash chain, locked for a new one.

    Writers of objectives take turns: on PostgreSQL the table is locked EXCLUSIVE (readers still read) until the
    transaction ends, so a second `objective add` waits and then chains onto the first, which a row lock could not
    promise (the newer row did not exist when the second writer looked). SQLite runs write transactions one at a
    time already.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE objective IN EXCLUSIVE MODE"))
    statement = select(Objective).order_by(col(Objective.id).desc()).limit(1)
    return session.scalars(statement).first()


def objectives_owned_by(session: Session, person_id: int) -> list[Objective]:
    """objectives_owned_by: the objectives whose owner is this person, oldest first."""
    statement = select(Objective).where(col(Objective.owner_id) == person_id).order_by(col(Objective.id))
    return list(session.scalars(statement))


def link_goal(session: Session, goal_id: int, objective_ids: Sequence[int]) -> None:
    """link_goal: make `objective_ids` the goal's objectives, replacing those it had."""
    session.execute(delete(GoalObjective).where(col(GoalObjective.goal_id) == goal_id))
    if objective_ids:
        session.execute(insert(GoalObjective), [{"goal_id": goal_id, "objective_id": o} for o in objective_ids])


def objectives_of_goals(session: Session, goal_ids: Iterable[int]) -> dict[int, list[int]]:
    """objectives_of_goals: goal id -> the ids of its objectives, ascending (goals without any left out)."""
    statement = (select(col(GoalObjective.goal_id), col(GoalObjective.objective_id))
                 .where(col(GoalObjective.goal_id).in_(set(goal_ids))).order_by(col(GoalObjective.objective_id)))
    found: dict[int, list[int]] = {}
    for goal_id, objective_id in session.execute(statement):
        found.setdefault(goal_id, []).append(objective_id)
    return found


def objective_levels_of_goals(connection: Connection, assignment_ids: Iterable[int]) -> dict[int, frozenset[str]]:
    """objective_levels_of_goals: goal id -> the levels of its objectives, for the goals of these assignments."""
    statement = (select(col(GoalObjective.goal_id), col(Objective.level))
                 .join(Objective, col(Objective.id) == col(GoalObjective.objective_id))
                 .join(Goal, col(Goal.id) == col(GoalObjective.goal_id))
                 .where(col(Goal.assignment_id).in_(set(assignment_ids))))
    found: dict[int, set[str]] = {}
    for goal_id, level in connection.execute(statement):
        found.setdefault(goal_id, set()).add(level)
    return {goal_id: frozenset(levels) for goal_id, levels in found.items()}


def goal_objective_links(session: Session, assignment_id: int | None = None) -> dict[int, dict[int, list[int]]]:
    """goal_objective_links: assignment id -> goal id -> its objectives' ids ascending, of every goal (or one
    assignment's), removed goals included."""
    statement = (select(col(Goal.assignment_id), col(GoalObjective.goal_id), col(GoalObjective.objective_id))
                 .join(Goal, col(Goal.id) == col(GoalObjective.goal_id))
                 .order_by(col(GoalObjective.goal_id), col(GoalObjective.objective_id)))
    if assignment_id is not None:
        statement = statement.where(col(Goal.assignment_id) == assignment_id)
    found: dict[int, dict[int, list[int]]] = {}
    for a_id, goal_id, objective_id in session.execute(statement):
        found.setdefault(a_id, {}).setdefault(goal_id, []).append(objective_id)
    return found


def objective_chain(session: Session) -> list[Objective]:
    """objective_chain: every objective, oldest first, as `audit verify` walks their hash chain."""
    return list(session.scalars(select(Objective).order_by(col(Objective.id))))


def live_goal_counts(session: Session) -> dict[int, int]:
    """live_goal_counts: objective id -> how many goals not removed are aligned to it."""
    statement = (select(col(GoalObjective.objective_id), func.count())
                 .join(Goal, col(Goal.id) == col(GoalObjective.goal_id)).where(col(Goal.removed_at).is_(None))
                 .group_by(col(GoalObjective.objective_id)))
    return {objective_id: int(count) for objective_id, count in session.execute(statement)}


class ObjectiveRow(NamedTuple):
    id: int
    level: str
    title: str
    owner: str | None  # the owner's email
    year: int | None


def objective_rows(session: Session) -> list[ObjectiveRow]:
    """objective_rows: every objective with its owner's email, oldest first, for the roll-up per objective."""
    return [ObjectiveRow(pk(o), o.level, o.title, owner.email if owner else None, o.year)
            for o, owner in objectives(session)]
