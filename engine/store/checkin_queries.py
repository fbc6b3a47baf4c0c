"""The reads and writes of check-ins and pulses: whether one fell in a cadence period, the latest, every one."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from sqlalchemy import CursorResult, Table, bindparam, update
from sqlmodel import Session, col, select

from engine.domain.notices import GoalProgressLine
from engine.store.models import Checkin, Goal, GoalProgress, Person, Pulse, pk

if TYPE_CHECKING:
    from sqlalchemy import Executable


def checkin_instants_of(session: Session, assignment_ids: Iterable[int], since: datetime,
                        before: datetime) -> dict[int, list[datetime]]:
    """checkin_instants_of: assignment id -> the instants, in order, of its check-ins in [since, before)
    (ix_checkin_assignment_at)."""
    return _instants_of(session, Checkin, assignment_ids, since, before)


def pulse_instants_of(session: Session, assignment_ids: Iterable[int], since: datetime,
                      before: datetime) -> dict[int, list[datetime]]:
    """pulse_instants_of: assignment id -> the instants, in order, the assignee answered a pulse in [since, before)
    (ix_pulse_assignment_at)."""
    return _instants_of(session, Pulse, assignment_ids, since, before)


def _instants_of(session: Session, model: type[Checkin] | type[Pulse], assignment_ids: Iterable[int],
                 since: datetime, before: datetime) -> dict[int, list[datetime]]:
    instants: dict[int, list[datetime]] = defaultdict(list)
    rows = session.connection().execute(_instants_statement(model), {
        "ids": list(set(assignment_ids)), "since": since, "before": before}).all()
    for assignment_id, at in rows:
        instants[assignment_id].append(at)
    return instants


@cache
def _instants_statement(model: type[Checkin] | type[Pulse]) -> Executable:
    """Built once per table: planning runs it at every batch that looks for a check-in or a pulse."""
    table = cast(Table, getattr(model, "__table__"))  # noqa: B009  (SQLModel types it on the metaclass only)
    statement: Executable = (select(table.c.assignment_id, table.c.at)
                             .where(table.c.assignment_id.in_(bindparam("ids", expanding=True)),
                                    table.c.at >= bindparam("since"), table.c.at < bindparam("before"))
                             .order_by(table.c.at))
    return statement


def goals_by_id(session: Session, goal_ids: Iterable[int]) -> dict[int, Goal]:
    """goals_by_id: the goals with these ids, of any assignment, by id."""
    wanted = set(goal_ids)
    if not wanted:
        return {}
    return {g.id: g for g in session.exec(select(Goal).where(col(Goal.id).in_(wanted))) if g.id is not None}


def latest_goal_progress_of(session: Session, assignment_ids: Iterable[int]) -> dict[int, list[GoalProgressLine]]:
    """latest_goal_progress_of: assignment id -> every goal of the assignment, oldest first, with the progress its
    latest check-in recorded (none when no check-in named it); two queries whatever the number of assignments."""
    wanted = set(assignment_ids)
    if not wanted:
        return {}
    connection, ids = session.connection(), {"ids": list(wanted)}
    goals = connection.execute(_goals_statement(), ids).all()
    latest = {goal_id: (percent, at, role) for goal_id, percent, at, role in connection.execute(
        _progress_statement(), ids)}
    lines: dict[int, list[GoalProgressLine]] = {a: [] for a in wanted}
    for assignment_id, goal_id, title in goals:
        if goal_id is not None:
            lines[assignment_id].append(GoalProgressLine(goal_id, title, *latest.get(goal_id, (None, None, None))))
    return lines


@cache
def _goals_statement() -> Executable:
    statement: Executable = (select(Goal.assignment_id, Goal.id, Goal.title)
                             .where(col(Goal.assignment_id).in_(bindparam("ids", expanding=True)))
                             .order_by(col(Goal.id)))
    return statement


@cache
def _progress_statement() -> Executable:
    statement: Executable = (select(GoalProgress.goal_id, GoalProgress.percent, Checkin.at, Checkin.role)
                             .join(Checkin, col(GoalProgress.checkin_id) == Checkin.id)
                             .where(col(Checkin.assignment_id).in_(bindparam("ids", expanding=True)))
                             .order_by(col(Checkin.at), col(Checkin.id)))
    return statement


def latest_goal_progress(session: Session, assignment_id: int) -> list[GoalProgressLine]:
    """latest_goal_progress: every goal of one assignment with the progress its latest check-in recorded."""
    return latest_goal_progress_of(session, [assignment_id])[assignment_id]


def latest_pulse(session: Session, assignment_id: int) -> Pulse | None:
    """latest_pulse: the assignment's most recent pulse, if any."""
    statement = (select(Pulse).where(Pulse.assignment_id == assignment_id)
                 .order_by(col(Pulse.at).desc(), col(Pulse.id).desc()).limit(1))
    return session.exec(statement).first()


def add_checkin(session: Session, checkin: Checkin, progress: Sequence[tuple[int, int]]) -> int:
    """add_checkin: store a check-in and its (goal id, percent) pairs; returns the check-in's id."""
    session.add(checkin)
    session.flush()
    assert checkin.id is not None
    session.add_all(GoalProgress(checkin_id=checkin.id, goal_id=goal_id, percent=percent)
                    for goal_id, percent in progress)
    session.flush()
    return checkin.id


def resolve_pulse_alert(session: Session, pulse_id: int, now: datetime) -> bool:
    """resolve_pulse_alert: mark an alerting pulse resolved at `now`; False if it was resolved meanwhile."""
    statement = (update(Pulse).where(col(Pulse.id) == pulse_id, col(Pulse.alert), col(Pulse.resolved_at).is_(None))
                 .values(resolved_at=now).execution_options(synchronize_session=False))
    return int(cast(CursorResult[Any], session.execute(statement)).rowcount or 0) == 1


class CheckinRow(NamedTuple):
    """One recorded check-in with who recorded it and each goal's progress (goal id, title, percent)."""

    checkin: Checkin
    email: str
    name: str
    progress: list[tuple[int, str, int]]


def checkins_of(session: Session, assignment_ids: Iterable[int]) -> list[CheckinRow]:
    """checkins_of: every check-in of these assignments, newest first (ix_checkin_assignment_at), each with its
    progress per goal in the order the goals were added; two queries whatever their number."""
    wanted = set(assignment_ids)
    if not wanted:
        return []
    statement = (select(Checkin, Person.email, Person.name).join(Person, col(Checkin.person_id) == Person.id)
                 .where(col(Checkin.assignment_id).in_(wanted))
                 .order_by(col(Checkin.at).desc(), col(Checkin.id).desc()))
    found = list(session.exec(statement).all())
    progress: dict[int, list[tuple[int, str, int]]] = defaultdict(list)
    if found:
        rows = session.exec(select(GoalProgress.checkin_id, GoalProgress.goal_id, Goal.title, GoalProgress.percent)
                            .join(Goal, col(GoalProgress.goal_id) == Goal.id)
                            .where(col(GoalProgress.checkin_id).in_([c.id for c, _, _ in found]))
                            .order_by(col(GoalProgress.goal_id)))
        for checkin_id, goal_id, title, percent in rows:
            progress[checkin_id].append((goal_id, title, percent))
    return [CheckinRow(c, email, name, progress.get(pk(c), [])) for c, email, name in found]
