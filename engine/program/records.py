"""Loading an assignment with everything around it, in a few bulk queries, and turning it into JSON-ready views."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import Connection
from sqlmodel import Session

from engine.domain.definition import WorkflowDefinition, parse_definition
from engine.domain.errors import NotFound
from engine.domain.guards import GoalFacts, GuardContext, TaskFacts
from engine.domain.lifecycle import Lifecycle, lifecycle_for
from engine.domain.notices import is_plan_change_task
from engine.domain.tasks import TaskStatus
from engine.domain.views import Result
from engine.store import lookups, objective_queries
from engine.store.models import Assignment, Goal, Outcome, Person, Signoff, Task, Workflow, pk
from engine.store.moves import AssignmentRows, load_assignment

# Keyed by the YAML text: row ids and version numbers repeat across databases one process may open.
_DEFINITIONS: dict[str, WorkflowDefinition] = {}


def definition_of(workflow: Workflow) -> WorkflowDefinition:
    """The parsed definition of an installed workflow version (installed sources are valid by construction)."""
    if workflow.source not in _DEFINITIONS:
        _DEFINITIONS[workflow.source] = parse_definition(workflow.source,
                                                         source=f"{workflow.name} v{workflow.version}")
    return _DEFINITIONS[workflow.source]


def lifecycle_of(workflow: Workflow) -> Lifecycle:
    return lifecycle_for(workflow.name, workflow.version, definition_of(workflow))


@dataclass
class AssignmentRecord:
    """An assignment and what hangs off it, loaded together so views and guards never query one row at a time."""

    assignment: Assignment
    workflow: Workflow
    assignee: Person
    stakeholders: dict[str, Person] = field(default_factory=dict)  # role -> person, assignee included
    tasks: list[Task] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    signed_roles: set[str] = field(default_factory=set)  # for the current plan version
    objective_levels: dict[int, frozenset[str]] = field(default_factory=dict)  # goal id -> its objectives' levels

    @property
    def definition(self) -> WorkflowDefinition:
        return definition_of(self.workflow)

    @property
    def lifecycle(self) -> Lifecycle:
        return lifecycle_of(self.workflow)

    def person_for(self, role: str) -> Person | None:
        return self.stakeholders.get(role)

    def guard_context(self, now: datetime) -> GuardContext:
        a = self.assignment
        stage_tasks = tuple(TaskFacts(t.key, t.title, t.owner_role, t.status == TaskStatus.DONE) for t in self.tasks
                            if t.stage == a.stage and not is_plan_change_task(t.key))
        goals = tuple(GoalFacts(g.title, g.measure, g.target, g.due, g.id,
                                self.objective_levels.get(pk(g), frozenset())) for g in self.goals)
        plan = self.definition.plan
        return GuardContext(stage=a.stage, start=a.start, end=a.end, today=now.date(), plan_version=a.plan_version,
                            stage_tasks=stage_tasks, goals=goals, signed_roles=frozenset(self.signed_roles),
                            plan_signers=plan.signers if plan else (),
                            goal_writers=("assignee", plan.notify_change) if plan and plan.notify_change
                            else ("assignee",))

    def who_must_act(self, roles: Iterable[str]) -> str:
        people = [f"{r} {p.email}" if (p := self.person_for(r)) else r for r in roles]
        return ", ".join(people)


def load_records(session: Session, *where: Any) -> list[AssignmentRecord]:
    """Records of the assignments matching `where`, by id, with one query per related table.

    The assignment, its workflow version and its assignee come in one joined query; stakeholders with their people in
    a second; then tasks, goals and sign-offs.
    """
    records = {pk(a): AssignmentRecord(a, w, p, {"assignee": p})
               for a, w, p in lookups.assignments_with_workflow_and_assignee(session, *where)}
    if not records:
        return []
    ids = list(records)
    for assignment_id, role, person in lookups.stakeholder_people_of(session, ids):
        records[assignment_id].stakeholders[role] = person
    for t in lookups.tasks_of(session, ids):
        records[t.assignment_id].tasks.append(t)
    for g in lookups.goals_of(session, ids):
        if g.removed_at is None:
            records[g.assignment_id].goals.append(g)
    for sign in lookups.signoffs_of(session, ids):
        record = records[sign.assignment_id]
        if sign.plan_version == record.assignment.plan_version:
            record.signed_roles.add(sign.role)
    levels = objective_queries.objective_levels_of_goals(session.connection(), ids)
    for record in records.values():
        record.objective_levels = {pk(g): levels[pk(g)] for g in record.goals if pk(g) in levels}
    return list(records.values())


def load_record(session: Session, assignment_id: int) -> AssignmentRecord:
    found = load_records(session, Assignment.id == assignment_id)
    if not found:
        raise NotFound(f"no assignment {assignment_id}", details=["`sojourn assignment list` shows them"])
    return found[0]


def load_record_to_move(connection: Connection, assignment_id: int) -> AssignmentRecord:
    """The record an advance reads, loaded with Core statements (`engine.store.moves`) into typed rows."""
    rows = load_assignment(connection, assignment_id)
    if rows is None:
        raise NotFound(f"no assignment {assignment_id}", details=["`sojourn assignment list` shows them"])
    return record_of(rows)


def record_of(rows: AssignmentRows) -> AssignmentRecord:
    version = rows.assignment.plan_version
    return AssignmentRecord(rows.assignment, rows.workflow, rows.assignee, {"assignee": rows.assignee,
                                                                             **rows.stakeholders},
                            rows.tasks, rows.goals, {s.role for s in rows.signoffs if s.plan_version == version},
                            rows.objective_levels)


# --- views: the JSON shapes of the public interface -------------------------------------------------------------


def instant(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


@dataclass(frozen=True)
class TaskView(Result):
    """A task with the email of its owner."""

    id: int
    key: str
    title: str
    stage: str
    owner_role: str
    owner: str | None
    due_on: date
    due_at: datetime
    status: str
    completed_at: datetime | None
    completed_by: str | None
    note: str | None
    assignment_id: int


def task_view(task: Task, owner: Person | None) -> TaskView:
    return TaskView(id=pk(task), key=task.key, title=task.title, stage=task.stage, owner_role=task.owner_role,
                    owner=owner.email if owner else None, due_on=task.due_on, due_at=task.due_at, status=task.status,
                    completed_at=task.completed_at, completed_by=task.completed_by, note=task.note,
                    assignment_id=task.assignment_id)


class Rating(Protocol):
    """A competency rated before and after an assignment, as typed or as stored."""

    @property
    def name(self) -> str: ...
    @property
    def before(self) -> int | None: ...
    @property
    def after(self) -> int: ...


@dataclass(frozen=True)
class CompetencyChange(Result):
    name: str
    before: int | None
    after: int
    growth: int | None


@dataclass(frozen=True)
class OutcomeView(Result):
    """An outcome recorded after return, with the competencies rated then."""

    id: int
    assignment_id: int
    months: int
    retained: bool
    left_on: date | None
    left_reason: str | None
    considered_for_promotion: bool
    promoted_to: str | None
    impact: str | None
    competencies: tuple[CompetencyChange, ...]
    recorded_at: datetime
    recorded_by: str


def outcome_view(outcome: Outcome, competencies: Iterable[Rating]) -> OutcomeView:
    return OutcomeView(
        id=pk(outcome), assignment_id=outcome.assignment_id, months=outcome.months, retained=outcome.retained,
        left_on=outcome.left_on, left_reason=outcome.left_reason,
        considered_for_promotion=outcome.considered_for_promotion, promoted_to=outcome.promoted_to,
        impact=outcome.impact,
        competencies=tuple(CompetencyChange(c.name, c.before, c.after, None if c.before is None else c.after - c.before)
                           for c in competencies),
        recorded_at=outcome.recorded_at, recorded_by=outcome.recorded_by)


@dataclass(frozen=True)
class SignoffLine(Result):
    role: str
    by: str | None
    plan_version: int
    signed_at: datetime
    recorded_by: str
    given_by: str  # "holder", or "on_behalf" when someone recorded it for them


def signoff_views(record: AssignmentRecord, signoffs: Iterable[Signoff],
                  people: dict[int, Person]) -> tuple[SignoffLine, ...]:
    """The sign-offs of the assignment's current plan version: who signed for which role, and when."""
    version = record.assignment.plan_version
    return tuple(SignoffLine(s.role, p.email if (p := people.get(s.person_id)) else None, version, s.signed_at,
                             s.recorded_by, "on_behalf" if s.on_behalf else "holder")
                 for s in sorted(signoffs, key=lambda s: s.signed_at) if s.plan_version == version)


@dataclass(frozen=True)
class RoleHolder(Result):
    role: str
    email: str | None


@dataclass(frozen=True)
class Blocker(Result):
    """A guard in the way of the next stage, and who must act on it."""

    guard: str
    reason: str
    who: tuple[RoleHolder, ...]


def blocking(record: AssignmentRecord, now: datetime) -> tuple[str | None, tuple[Blocker, ...]]:
    """The default next stage and every unmet guard in its way (empty when the assignment may advance)."""
    transition = record.definition.default_next(record.assignment.stage)
    if transition is None:
        return None, ()
    unmet = record.lifecycle.unmet(transition, record.guard_context(now))
    return transition.dest, tuple(Blocker(u.guard, u.reason, tuple(
        RoleHolder(role, p.email if (p := record.person_for(role)) else None) for role in u.who)) for u in unmet)


@dataclass(frozen=True)
class GoalLine(Result):
    id: int
    title: str
    measure: str
    target: str
    due: date
    plan_version: int


@dataclass(frozen=True)
class Cost(Result):
    amount: str
    currency: str | None


@dataclass(frozen=True)
class AssignmentView(Result):
    """An assignment where it stands: its stage, people, plan, tasks, and what blocks the next stage."""

    id: int
    workflow: str
    workflow_version: int
    stage: str
    stage_entered_at: datetime
    next_stage: str | None
    assignee: str
    assignee_name: str
    home: str
    host: str
    start: date
    end: date
    plan_version: int
    stakeholders: Mapping[str, str]  # role -> email, the assignee not included
    goals: tuple[GoalLine, ...]
    signed_off_by: tuple[str, ...]
    tasks: tuple[TaskView, ...]
    blocking: tuple[Blocker, ...]
    cost: Cost | None
    early_return_reason: str | None


def assignment_view(record: AssignmentRecord, now: datetime) -> AssignmentView:
    a = record.assignment
    people_by_id = {p.id: p for p in record.stakeholders.values()}
    next_stage, blockers = blocking(record, now)
    return AssignmentView(
        id=pk(a), workflow=record.workflow.name, workflow_version=record.workflow.version, stage=a.stage,
        stage_entered_at=a.stage_entered_at, next_stage=next_stage, assignee=record.assignee.email,
        assignee_name=record.assignee.name, home=a.home, host=a.host, start=a.start, end=a.end,
        plan_version=a.plan_version,
        stakeholders={role: p.email for role, p in record.stakeholders.items() if role != "assignee"},
        goals=tuple(GoalLine(pk(g), g.title, g.measure, g.target, g.due, g.plan_version) for g in record.goals),
        signed_off_by=tuple(sorted(record.signed_roles)),
        tasks=tuple(task_view(t, people_by_id.get(t.owner_id)) for t in record.tasks),
        blocking=blockers,
        cost=None if a.cost_amount is None else Cost(str(a.cost_amount), a.cost_currency),
        early_return_reason=a.early_return_reason)
