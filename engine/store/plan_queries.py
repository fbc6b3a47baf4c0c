"""The reads of the development plan: goals with their learning activities, plan versions and their changes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import CursorResult, update
from sqlmodel import Session, col, select

from engine.domain.notices import NOT_SENT_YET
from engine.store.models import Activity, Goal, Outbox, PlanChange


def activities_of(session: Session, goal_ids: Iterable[int]) -> Sequence[Activity]:
    """activities_of: every learning activity of these goals, oldest first."""
    statement = select(Activity).where(col(Activity.goal_id).in_(set(goal_ids))).order_by(col(Activity.id))
    return session.exec(statement).all()


def plan_change_of_version(session: Session, assignment_id: int, plan_version: int) -> PlanChange | None:
    """plan_change_of_version: the change that made this plan version (None for version 1 or an older version)."""
    statement = select(PlanChange).where(PlanChange.assignment_id == assignment_id,
                                         PlanChange.plan_version == plan_version)
    return session.exec(statement).first()


def unacknowledged_plan_changes(session: Session, assignment_id: int) -> Sequence[PlanChange]:
    """unacknowledged_plan_changes: changes of an assignment's plan that asked for acknowledgement and got none."""
    statement = select(PlanChange).where(PlanChange.assignment_id == assignment_id,
                                         col(PlanChange.acknowledge_task_id).is_not(None),
                                         col(PlanChange.acknowledged_at).is_(None)).order_by(col(PlanChange.id))
    return session.exec(statement).all()


def goals_up_to_version(session: Session, assignment_id: int, plan_version: int) -> Sequence[Goal]:
    """goals_up_to_version: the goals that first appeared at or before a plan version, oldest first."""
    statement = select(Goal).where(Goal.assignment_id == assignment_id,
                                   col(Goal.plan_version) <= plan_version).order_by(col(Goal.id))
    return session.exec(statement).all()


def rewrite_queued_notice(session: Session, key: str, *, subject: str, body: str) -> bool:
    """rewrite_queued_notice: give a notice not sent yet a new subject and body; False when it is gone or sent."""
    statement = (update(Outbox).where(col(Outbox.key) == key, col(Outbox.status).in_(NOT_SENT_YET))
                 .values(subject=subject, body=body).execution_options(synchronize_session=False))
    return int(cast(CursorResult[Any], session.execute(statement)).rowcount or 0) == 1
