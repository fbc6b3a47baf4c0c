"""The living development plan: goals, learning activities, versions, sign-offs and changes made after agreement.

Every change (a goal added, edited or removed, an activity added) makes a new plan version in one transaction, so
the sign-offs of the version before no longer count. Once the plan is agreed (the assignment has left the workflow's
`plan.agreed_stage`), the same transaction tells the `plan.notify_change` role, opens a written follow-up task for
`plan.follow_up.role` and an acknowledgement task for `plan.acknowledge`. The acknowledgement task runs on the
ordinary reminder ladder, whose escalations of it are `plan_unacknowledged` notices; `plan ack` completes it and
cancels whatever about it is still queued. Changes made within a day of a pending change nobody has acted on yet
join it (`GATHER_WINDOW`): its tasks and its notice, if not sent yet, are brought up to date instead of new ones
being opened. A workflow without a `plan` section has none of these rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Self

from sqlalchemy import Engine
from sqlmodel import Session

from engine.domain import inputs, notices
from engine.domain.definition import PlanRules
from engine.domain.errors import BadInput, NotFound, SojournError
from engine.domain.inputs import Problems
from engine.domain.notices import TASK_KINDS
from engine.domain.schedule import end_of_day, local_date, local_instant
from engine.domain.tasks import TaskStatus
from engine.domain.views import Result
from engine.program import audit
from engine.program.competencies import Baseline, competency_levels, record_baselines
from engine.program.logging import get_logger
from engine.program.objectives import checked_objective_ids
from engine.program.records import AssignmentRecord, load_record
from engine.program.transactions import use_case_transaction as _transaction
from engine.store import lookups, objective_queries, plan_queries
from engine.store.models import Activity, Goal, Person, PlanChange, Signoff, Task, pk
from engine.store.queries import cancel_queued_notifications, complete_open_task, insert_notifications

log = get_logger(__name__)

ALIGNMENT_LEVELS = ("organisation", "mobility_team", "individual")
ACTIVITY_KINDS = ("reflection", "mentoring", "project", "training", "network")


# --- what the use cases return ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActivityLine(Result):
    """A learning activity of a goal, as a plan version shows it."""

    id: int
    kind: str
    description: str
    due_on: date | None
    added_in_version: int

    @classmethod
    def of(cls, activity: Activity, **more: Any) -> Self:
        return cls(pk(activity), activity.kind, activity.description, activity.due_on, activity.plan_version, **more)

    @classmethod
    def from_snapshot(cls, kept: Mapping[str, Any]) -> ActivityLine:
        due_on = kept.get("due_on")
        return cls(kept["id"], kept["kind"], kept["description"], date.fromisoformat(due_on) if due_on else None,
                   kept["added_in_version"])


@dataclass(frozen=True)
class GoalLine(Result):
    """A goal of a plan version with its activities; `objectives` is None in a version kept before goals were
    aligned to objectives."""

    id: int
    title: str
    measure: str
    baseline: str
    target: str
    due: date
    competencies: tuple[str, ...]
    alignment_level: str | None
    aligned_to: str
    objectives: tuple[int, ...] | None
    added_in_version: int
    activities: tuple[ActivityLine, ...]

    @classmethod
    def of(cls, goal: Goal, activities: Iterable[Activity], objectives: Iterable[int] = (), **more: Any) -> Self:
        return cls(pk(goal), goal.title, goal.measure, goal.baseline, goal.target, goal.due,
                   tuple(goal.competencies or ()), goal.alignment_level, goal.aligned_to, tuple(objectives),
                   goal.plan_version, tuple(ActivityLine.of(a) for a in activities), **more)

    @classmethod
    def from_snapshot(cls, kept: Mapping[str, Any]) -> GoalLine:
        objectives = kept.get("objectives")
        return cls(kept["id"], kept["title"], kept["measure"], kept["baseline"], kept["target"],
                   date.fromisoformat(kept["due"]), tuple(kept["competencies"]), kept["alignment_level"],
                   kept["aligned_to"], None if objectives is None else tuple(objectives), kept["added_in_version"],
                   tuple(ActivityLine.from_snapshot(a) for a in kept["activities"]))

    def view(self) -> dict[str, Any]:
        # a version kept before objectives existed shows as it was kept, without the key
        shown = super().view()
        if self.objectives is None:
            del shown["objectives"]
        return shown


@dataclass(frozen=True)
class PlanChangeLine(Result):
    """The change that made a plan version, and whether it has been acknowledged."""

    plan_version: int
    summary: str
    changed_at: datetime
    changed_by: str
    needs_acknowledgement: bool
    acknowledge_task: int | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None

    @classmethod
    def of(cls, change: PlanChange, **more: Any) -> Self:
        return cls(change.plan_version, change.summary, change.changed_at, change.changed_by,
                   change.acknowledge_task_id is not None, change.acknowledge_task_id, change.acknowledged_at,
                   change.acknowledged_by, **more)


@dataclass(frozen=True)
class ChangeMade(PlanChangeLine):
    """A change just made: who was told, and the follow-up task; `joins_version` names the pending change it was
    gathered into."""

    notified: tuple[str, ...]
    follow_up_task: int | None
    joins_version: int | None


@dataclass(frozen=True)
class GoalChanged(GoalLine):
    """A goal added or edited, with the plan version it made and the baselines rated with it."""

    assignment_id: int
    plan_version: int
    change: ChangeMade
    baselines_rated: tuple[Baseline, ...]


@dataclass(frozen=True)
class GoalRemoved(GoalLine):
    assignment_id: int
    plan_version: int
    removed_at: datetime
    removed_reason: str
    change: ChangeMade


@dataclass(frozen=True)
class ActivityAdded(ActivityLine):
    goal_id: int
    assignment_id: int
    plan_version: int
    change: ChangeMade


@dataclass(frozen=True)
class PlanSigned(Result):
    """A sign-off given (or found given already: `already_signed`)."""

    assignment_id: int
    role: str
    by: str
    plan_version: int
    already_signed: bool
    on_behalf: bool
    recorded_by: str


@dataclass(frozen=True)
class PlanAcknowledged(Result):
    assignment_id: int
    role: str
    by: str
    acknowledged_at: datetime
    plan_versions: tuple[int, ...]


@dataclass(frozen=True)
class SignoffLine(Result):
    """A sign-off of a shown plan version; `void` once the plan has changed since."""

    role: str
    by: str
    signed_at: datetime
    void: bool
    given_by: str  # holder or on_behalf
    recorded_by: str


@dataclass(frozen=True)
class PlanView(Result):
    """A plan version: its goals, who signed it, who still has to, and the change that made it."""

    assignment_id: int
    plan_version: int
    current_version: int
    current: bool
    agreed: bool
    goals: tuple[GoalLine, ...]
    signed_off_by: tuple[str, ...]
    signoffs: tuple[SignoffLine, ...]
    signers: tuple[str, ...]
    unsigned: tuple[str, ...]
    change: PlanChangeLine | None
    unacknowledged_versions: tuple[int, ...]


# --- goals and activities ---------------------------------------------------------------------------------------


def add_goal(db: Engine, assignment_id: int, *, title: str, measure: str, target: str, due: str,
             baseline: str = "", competencies: Iterable[str] = (), level: str | None = None, aligned_to: str = "",
             objectives: Iterable[str] = (), actor: str, now: datetime) -> GoalChanged:
    """Add a SMART goal, aligned to `objectives` (ids), rating any competency given a level as a baseline; the plan
    gets a new version, so earlier sign-offs no longer count. Every problem of the input is reported at once."""
    problems = Problems()
    goal_due = problems.check(inputs.iso_date, due, "--due")
    fields: dict[str, Any] = {name: problems.check(inputs.text, value, f"--{name}")
                              for name, value in (("title", title), ("measure", measure), ("target", target))}
    levels = problems.check(competency_levels, competencies) or []
    extra: dict[str, Any] = {"baseline": baseline.strip(), "competencies": list(dict.fromkeys(c.name for c in levels)),
                             "alignment_level": problems.check(_level, level), "aligned_to": aligned_to.strip()}
    with _transaction(db) as session:
        objective_ids = checked_objective_ids(session, objectives, problems)
        problems.raise_if_any()
        record = load_record(session, assignment_id)
        assert goal_due is not None
        assert objective_ids is not None
        _check_goal_due(record, goal_due)
        version = _begin_change(record)
        goal = Goal(assignment_id=assignment_id, due=goal_due, plan_version=version, created_at=now,
                    created_by=actor, **fields, **extra)
        session.add(goal)
        session.flush()
        objective_queries.link_goal(session, pk(goal), objective_ids)
        record.goals.append(goal)
        added = {**fields, **extra, "due": goal_due, "objectives": objective_ids}
        change = _finish_change(session, record, f"goal {goal.id} added: {goal.title}",
                                {"goal": goal.id, "added": added}, actor=actor, now=now)
        rated = record_baselines(session, record, levels, actor=actor, now=now)
        return GoalChanged.of(goal, [], objective_ids, assignment_id=assignment_id, plan_version=version,
                              change=change, baselines_rated=rated)


def edit_goal(db: Engine, goal_id: int, *, title: str | None = None, measure: str | None = None,
              baseline: str | None = None, target: str | None = None, due: str | None = None,
              competencies: Iterable[str] | None = None, level: str | None = None, aligned_to: str | None = None,
              objectives: Iterable[str] | None = None, actor: str, now: datetime) -> GoalChanged:
    """Change some of a goal's fields, or the objectives it is aligned to (`objectives` replaces them all); the plan
    gets a new version. Competencies given a level are rated as baselines. Every problem of the input is reported at
    once."""
    problems = Problems()
    levels = problems.check(competency_levels, competencies or ()) or []
    wanted = _wanted_goal_fields(problems, title=title, measure=measure, target=target, baseline=baseline,
                                 aligned_to=aligned_to, due=due, level=level)
    if competencies is not None:
        wanted["competencies"] = list(dict.fromkeys(c.name for c in levels))
    if not wanted and objectives is None:
        raise BadInput("nothing to change: give at least one of --title, --measure, --baseline, --target, --due, "
                       "--competency, --level, --aligned-to, --objective, --no-objectives")
    with _transaction(db) as session:
        objective_ids = checked_objective_ids(session, objectives, problems) if objectives is not None else None
        problems.raise_if_any()
        goal, record = _live_goal(session, goal_id)
        if "due" in wanted:
            _check_goal_due(record, wanted["due"])
        changed = {k: v for k, v in wanted.items() if getattr(goal, k) != v}
        before = {k: getattr(goal, k) for k in changed}
        linked = objective_queries.objectives_of_goals(session, [goal_id]).get(goal_id, [])
        if objective_ids is not None and sorted(objective_ids) != linked:
            before["objectives"], changed["objectives"] = linked, objective_ids
        if not changed:
            raise SojournError(f"goal {goal_id} already reads so; nothing changed",
                               details=[f"to rate baselines alone: `sojourn plan baseline {goal.assignment_id} "
                                        "--competency NAME=LEVEL`"] if any(c.level for c in levels) else None)
        version = _begin_change(record)
        for name, value in changed.items():
            if name != "objectives":
                setattr(goal, name, value)
        session.add(goal)
        session.flush()
        if "objectives" in changed:
            objective_queries.link_goal(session, goal_id, changed["objectives"])
        change = _finish_change(session, record, f"goal {goal_id} edited ({', '.join(changed)}): {goal.title}",
                                {"goal": goal_id, "before": before, "after": changed}, actor=actor, now=now)
        rated = record_baselines(session, record, levels, actor=actor, now=now)
        activities = plan_queries.activities_of(session, [goal_id])
        aligned = changed.get("objectives", linked)
        return GoalChanged.of(goal, activities, aligned, assignment_id=goal.assignment_id, plan_version=version,
                              change=change, baselines_rated=rated)


def _wanted_goal_fields(problems: Problems, *, title: str | None, measure: str | None, target: str | None,
                        baseline: str | None, aligned_to: str | None, due: str | None,
                        level: str | None) -> dict[str, Any]:
    """The goal fields an edit gives, checked; each bad one is added to `problems`."""
    wanted: dict[str, Any] = {}
    for name, value in (("title", title), ("measure", measure), ("target", target)):
        if value is not None:
            wanted[name] = problems.check(inputs.text, value, f"--{name}")
    for name, value in (("baseline", baseline), ("aligned_to", aligned_to)):
        if value is not None:
            wanted[name] = value.strip()
    if due is not None:
        wanted["due"] = problems.check(inputs.iso_date, due, "--due")
    if level is not None:
        wanted["alignment_level"] = problems.check(_level, level)
    return wanted


def remove_goal(db: Engine, goal_id: int, *, reason: str, actor: str, now: datetime) -> GoalRemoved:
    """Take a goal out of the plan, with the reason; it stays on record and in earlier versions."""
    why = inputs.text(reason, "--reason")
    with _transaction(db) as session:
        goal, record = _live_goal(session, goal_id)
        version = _begin_change(record)
        goal.removed_at, goal.removed_reason = now, why
        session.add(goal)
        session.flush()
        record.goals = [g for g in record.goals if g.id != goal_id]
        change = _finish_change(session, record, f"goal {goal_id} removed: {goal.title} (reason: {why})",
                                {"goal": goal_id, "removed": goal.title, "reason": why}, actor=actor, now=now)
        linked = objective_queries.objectives_of_goals(session, [goal_id]).get(goal_id, [])
        return GoalRemoved.of(goal, plan_queries.activities_of(session, [goal_id]), linked,
                              assignment_id=goal.assignment_id, plan_version=version, removed_at=now,
                              removed_reason=why, change=change)


def add_activity(db: Engine, goal_id: int, *, kind: str, description: str, due: str | None, actor: str,
                 now: datetime) -> ActivityAdded:
    """Add a learning activity to a goal; the plan gets a new version."""
    if kind not in ACTIVITY_KINDS:
        raise BadInput(f"--kind: unknown activity kind {kind!r}; kinds: {', '.join(ACTIVITY_KINDS)}")
    text = inputs.text(description, "--description")
    due_on = inputs.iso_date(due, "--due") if due else None
    with _transaction(db) as session:
        goal, record = _live_goal(session, goal_id)
        a = record.assignment
        if due_on is not None and not a.start <= due_on <= a.end:
            raise BadInput(f"--due {due_on.isoformat()} must fall within the assignment "
                           f"({a.start.isoformat()} to {a.end.isoformat()})")
        version = _begin_change(record)
        activity = Activity(goal_id=goal_id, kind=kind, description=text, due_on=due_on, plan_version=version,
                            created_at=now)
        session.add(activity)
        session.flush()
        change = _finish_change(session, record, f"{kind} activity added to goal {goal_id} ({goal.title}): {text}",
                                {"goal": goal_id, "activity": activity.id, "kind": kind, "description": text,
                                 "due": due_on}, actor=actor, now=now)
        return ActivityAdded.of(activity, goal_id=goal_id, assignment_id=pk(a), plan_version=version,
                                change=change)


def _level(level: str | None) -> str | None:
    if level is not None and level not in ALIGNMENT_LEVELS:
        raise BadInput(f"--level: unknown alignment level {level!r}; levels: {', '.join(ALIGNMENT_LEVELS)}")
    return level


def _live_goal(session: Session, goal_id: int) -> tuple[Goal, AssignmentRecord]:
    goal = session.get(Goal, goal_id)
    if goal is None:
        raise NotFound(f"no goal {goal_id}", details=["`sojourn plan show ID` lists an assignment's goals"])
    if goal.removed_at is not None:
        raise SojournError(f"goal {goal_id} was removed on {goal.removed_at.date().isoformat()} "
                           f"({goal.removed_reason}); it can no longer change")
    return goal, load_record(session, goal.assignment_id)


def _check_goal_due(record: AssignmentRecord, due: date) -> None:
    a = record.assignment
    if not a.start <= due <= a.end:
        raise BadInput(f"--due {due.isoformat()} must fall within the assignment "
                       f"({a.start.isoformat()} to {a.end.isoformat()})")
    rules = record.definition.plan
    if rules is not None and rules.immersion_days:
        earliest = a.start + timedelta(days=rules.immersion_days)
        if due < earliest:
            raise BadInput(f"--due {due.isoformat()}: no goal may fall due in the first {rules.immersion_days} days "
                           f"abroad (rule plan.immersion_days of workflow {record.workflow.name})",
                           details=[f"immersion runs from {a.start.isoformat()}; the earliest due date is "
                                    f"{earliest.isoformat()}"])


# --- versions and what a change sets off ------------------------------------------------------------------------


def _begin_change(record: AssignmentRecord) -> int:
    """Refuse a change to a finished assignment's plan; otherwise bump the plan version and return it."""
    a = record.assignment
    if record.definition.is_terminal(a.stage):
        raise SojournError(f"assignment {a.id} is {a.stage}; its plan can no longer change")
    a.plan_version += 1
    record.signed_roles = set()  # the sign-offs of the version before are void
    return a.plan_version


def _finish_change(session: Session, record: AssignmentRecord, summary: str, details: dict[str, Any], *,
                   actor: str, now: datetime) -> ChangeMade:
    """Record the new version (with what the plan now is) and, once the plan is agreed, tell home and open the
    follow-up and acknowledgement tasks."""
    a = record.assignment
    session.add(a)
    audit.append_event(session, pk(a), audit.PLAN_CHANGED,
                       {"plan_version": a.plan_version, "summary": summary, **details}, actor=actor, at=now)
    rules = record.definition.plan
    agreed = rules is not None and plan_agreed(record)
    follow_up = ack = None
    notified: list[str] = []
    gathering = _pending_gathering(session, record, now) if rules is not None and agreed else []
    if rules is not None and gathering:
        follow_up, ack, notified = _join_gathering(session, record, rules, gathering, summary, now)
    elif rules is not None and agreed:
        follow_up, ack, notified = _after_agreement(session, record, rules, summary, now)
    change = PlanChange(assignment_id=pk(a), plan_version=a.plan_version, summary=summary, changed_at=now,
                        changed_by=actor, snapshot={"goals": [g.view() for g in _live_goals(session, record)]},
                        acknowledge_task_id=ack.id if ack else None)
    session.add(change)
    session.flush()
    log.info("plan changed", assignment=a.id, plan_version=a.plan_version, agreed=agreed, actor=actor)
    return ChangeMade.of(change, notified=tuple(notified), follow_up_task=follow_up.id if follow_up else None,
                         joins_version=gathering[0].plan_version if gathering else None)


def plan_agreed(record: AssignmentRecord) -> bool:
    """Whether the assignment has left the stage that agrees its plan (never, without such a stage)."""
    rules, stages = record.definition.plan, record.definition.stage_keys
    if rules is None or rules.agreed_stage is None:
        return False
    return stages.index(record.assignment.stage) > stages.index(rules.agreed_stage)


def _after_agreement(session: Session, record: AssignmentRecord, rules: PlanRules, summary: str,
                     now: datetime) -> tuple[Task | None, Task | None, list[str]]:
    a = record.assignment
    acknowledger = record.person_for(rules.acknowledge) if rules.acknowledge else None
    notified: list[str] = []
    if rules.notify_change and (recipient := record.person_for(rules.notify_change)) is not None:
        insert_notifications(session, [notices.plan_changed(a, record.assignee, summary, role=rules.notify_change,
                                                            recipient=recipient, acknowledge_by=acknowledger,
                                                            now=now)])
        notified.append(recipient.email)
    follow_up = ack = None
    if rules.follow_up is not None:
        told = f"the {rules.notify_change}" if rules.notify_change else "home"
        follow_up = _plan_task(record, notices.PLAN_FOLLOW_UP_TASK, rules.follow_up.role, rules.follow_up.days,
                               f"Follow up in writing with {told} on plan version {a.plan_version}", summary, now)
    if rules.acknowledge is not None:
        ack = _plan_task(record, notices.PLAN_ACK_TASK, rules.acknowledge, rules.acknowledge_days,
                         f"Acknowledge plan version {a.plan_version}",
                         f"{summary}\nAcknowledge with: sojourn plan ack {a.id} --by EMAIL", now)
    opened = [t for t in (follow_up, ack) if t is not None]
    session.add_all(opened)
    session.flush()
    record.tasks += opened
    return follow_up, ack, notified


# Changes to an agreed plan made within this long of the first one that nobody has acted on yet are gathered into
# it: one notice, one follow-up task and one acknowledgement task for a day of edits, not one of each per edit.
GATHER_WINDOW = timedelta(hours=24)


def _pending_gathering(session: Session, record: AssignmentRecord, now: datetime) -> list[PlanChange]:
    """The pending change a new one joins, as the changes gathered in it so far (first one first); [] for none.

    It is the latest change waiting for acknowledgement, if the first change gathered in it is younger than
    GATHER_WINDOW and both its acknowledgement task and its follow-up task (if any) are still open.
    """
    pending = plan_queries.unacknowledged_plan_changes(session, pk(record.assignment))
    if not pending:
        return []
    task_id = pending[-1].acknowledge_task_id
    gathered = [c for c in pending if c.acknowledge_task_id == task_id]
    first = gathered[0]
    tasks = _gathering_tasks(record, first.plan_version)
    if now - _utc(first.changed_at) >= GATHER_WINDOW or not tasks or any(t.status != TaskStatus.OPEN for t in tasks):
        return []
    return gathered


def _gathering_tasks(record: AssignmentRecord, first_version: int) -> list[Task]:
    """The follow-up and acknowledgement tasks the change of `first_version` opened, in that order."""
    keys = [notices.plan_task_key(p, first_version) for p in (notices.PLAN_FOLLOW_UP_TASK, notices.PLAN_ACK_TASK)]
    return [t for key in keys for t in record.tasks if t.key == key]


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _join_gathering(session: Session, record: AssignmentRecord, rules: PlanRules, gathering: list[PlanChange],
                    summary: str, now: datetime) -> tuple[Task | None, Task | None, list[str]]:
    """Add a change to the pending one: its tasks now name every version gathered, and its notice, if not sent
    yet, tells them all. Nothing new is opened or queued."""
    a = record.assignment
    gathered = [(c.plan_version, c.summary) for c in gathering] + [(a.plan_version, summary)]
    first, versions = gathered[0][0], f"plan versions {gathered[0][0]} to {a.plan_version}"
    listed = "\n".join(f"Version {version}: {text}" for version, text in gathered)
    follow_up = ack = None
    for task in _gathering_tasks(record, first):
        if task.key.startswith(notices.PLAN_ACK_TASK):
            ack = task
            task.title = f"Acknowledge {versions}"
            task.description = f"{listed}\nAcknowledge with: sojourn plan ack {a.id} --by EMAIL"
        else:
            follow_up = task
            told = f"the {rules.notify_change}" if rules.notify_change else "home"
            task.title = f"Follow up in writing with {told} on {versions}"
            task.description = listed
        session.add(task)
    notified: list[str] = []
    if rules.notify_change and (recipient := record.person_for(rules.notify_change)) is not None:
        acknowledger = record.person_for(rules.acknowledge) if rules.acknowledge else None
        notice = notices.plan_changed(a, record.assignee, summary, role=rules.notify_change, recipient=recipient,
                                      acknowledge_by=acknowledger, now=now, gathered=gathered)
        if plan_queries.rewrite_queued_notice(session, notice.key, subject=notice.subject, body=notice.body):
            notified.append(recipient.email)
    session.flush()
    return follow_up, ack, notified


def _plan_task(record: AssignmentRecord, prefix: str, role: str, days: int, title: str, description: str,
               now: datetime) -> Task:
    """A task opened by a plan change, due `days` after today in its owner's zone, on the ordinary reminder ladder."""
    owner = record.person_for(role)
    assert owner is not None, "every workflow role is filled when the assignment is created"
    a, reminders = record.assignment, record.definition.reminders
    due_on = local_date(now, owner.tz) + timedelta(days=days)
    first_reminder = local_instant(due_on - timedelta(days=reminders.due_soon_days), reminders.local_hour, owner.tz)
    return Task(assignment_id=pk(a), key=notices.plan_task_key(prefix, a.plan_version), title=title,
                description=description, stage=a.stage, owner_role=role, owner_id=pk(owner), due_on=due_on,
                due_at=end_of_day(due_on, owner.tz), next_reminder_at=first_reminder)


# --- sign-offs and acknowledgement ------------------------------------------------------------------------------


def sign_plan(db: Engine, assignment_id: int, *, role: str, by: str | None, actor: str,
              now: datetime) -> PlanSigned:
    """Record that `role` agrees to the current plan version; a later change voids it."""
    with _transaction(db) as session:
        return _sign(session, load_record(session, assignment_id), role, by, actor=actor, now=now)


def sign_plan_by_holders(db: Engine, assignment_id: int, roles: Iterable[str], *, actor: str,
                         now: datetime) -> list[PlanSigned]:
    """The holder of each of `roles` signs the current plan, in one transaction, as `sign_plan` one by one would."""
    with _transaction(db) as session:
        record = load_record(session, assignment_id)
        return [_sign(session, record, role, None, actor=actor, now=now) for role in dict.fromkeys(roles)]


def _sign(session: Session, record: AssignmentRecord, role: str, by: str | None, *, actor: str,
          now: datetime) -> PlanSigned:
    assignment_id = pk(record.assignment)
    if role not in record.definition.roles:
        raise BadInput(f"--role: unknown role {role!r}; roles of {record.workflow.name}: "
                       f"{', '.join(record.definition.roles)}")
    holder = _holder(record, role, by)
    rules = record.definition.plan
    if rules is not None and rules.signers and role not in rules.signers:
        raise SojournError(f"the {role} does not sign plans of workflow {record.workflow.name}",
                           details=[f"signers: {', '.join(rules.signers)}"])
    version = record.assignment.plan_version
    already = role in record.signed_roles
    on_behalf = signed_on_behalf(actor, holder.email)
    if not already:
        session.add(Signoff(assignment_id=assignment_id, role=role, person_id=pk(holder), plan_version=version,
                            signed_at=now, recorded_by=actor, on_behalf=on_behalf))
        session.flush()
        audit.append_event(session, assignment_id, audit.SIGNED_OFF,
                           {"role": role, "by": holder.email, "plan_version": version, "on_behalf": on_behalf},
                           actor=actor, at=now)
    return PlanSigned(assignment_id=assignment_id, role=role, by=holder.email, plan_version=version,
                      already_signed=already, on_behalf=on_behalf and not already, recorded_by=actor)


def signed_on_behalf(actor: str, holder_email: str) -> bool:
    """Whether someone other than the role's holder (an administrator at the CLI) gave the sign-off: the holder
    signs through their link, or at the CLI as themselves."""
    return actor.strip().lower() != holder_email.lower()


def _holder(record: AssignmentRecord, role: str, by: str | None) -> Person:
    """The holder of `role`, who must be `by` when given."""
    holder = record.person_for(role)
    assert holder is not None, "every workflow role is filled when the assignment is created"
    if by is not None and inputs.email(by, "--by") != holder.email:
        raise SojournError(f"{by} is not the {role} of assignment {record.assignment.id}; {holder.email} is")
    return holder


def acknowledge_plan_change(db: Engine, assignment_id: int, *, by: str, actor: str,
                            now: datetime) -> PlanAcknowledged:
    """The acknowledging role confirms it heard of every change not acknowledged yet; their reminders stop."""
    with _transaction(db) as session:
        record = load_record(session, assignment_id)
        rules = record.definition.plan
        if rules is None or rules.acknowledge is None:
            raise SojournError(f"workflow {record.workflow.name} asks nobody to acknowledge plan changes")
        holder = _holder(record, rules.acknowledge, by)
        pending = plan_queries.unacknowledged_plan_changes(session, assignment_id)
        if not pending:
            raise SojournError(f"assignment {assignment_id} has no plan change waiting for acknowledgement",
                               details=[f"`sojourn plan show {assignment_id}` shows the plan"])
        for change in pending:
            change.acknowledged_at, change.acknowledged_by = now, holder.email
            session.add(change)
            task_id = change.acknowledge_task_id
            assert task_id is not None, "only changes that asked for acknowledgement wait for it"
            complete_open_task(session, task_id, actor=actor, note=f"acknowledged by {holder.email}", now=now)
            cancel_queued_notifications(session, assignment_id=assignment_id, kinds=TASK_KINDS, task_id=task_id,
                                        reason="plan change acknowledged before delivery")
        session.flush()
        versions = [c.plan_version for c in pending]
        audit.append_event(session, assignment_id, audit.PLAN_ACKNOWLEDGED,
                           {"by": holder.email, "role": rules.acknowledge, "plan_versions": versions},
                           actor=actor, at=now)
        log.info("plan change acknowledged", assignment=assignment_id, versions=versions, by=holder.email)
        return PlanAcknowledged(assignment_id=assignment_id, role=rules.acknowledge, by=holder.email,
                                acknowledged_at=now, plan_versions=tuple(versions))


# --- showing a plan ---------------------------------------------------------------------------------------------


def show_plan(db: Engine, assignment_id: int, *, version: int | None = None) -> PlanView:
    """A plan version (default: the current one): its goals with their activities, who signed it, what made it."""
    with _transaction(db) as session:
        record = load_record(session, assignment_id)
        current = record.assignment.plan_version
        shown = current if version is None else version
        if not 1 <= shown <= current:
            raise NotFound(f"assignment {assignment_id} has no plan version {shown}; versions: 1 to {current}")
        change = plan_queries.plan_change_of_version(session, assignment_id, shown)
        if shown == current:
            goals = _live_goals(session, record)
        elif change is not None:
            goals = [GoalLine.from_snapshot(kept) for kept in change.snapshot.get("goals", [])]
        else:
            goals = _rebuilt_goals(session, assignment_id, shown)
        signoffs = [s for s in lookups.signoffs_of(session, [assignment_id]) if s.plan_version == shown]
        signers = lookups.people_by_id(session, (s.person_id for s in signoffs))
        rules = record.definition.plan
        signed = sorted(s.role for s in signoffs)
        waiting = plan_queries.unacknowledged_plan_changes(session, assignment_id)
        return PlanView(
            assignment_id=assignment_id, plan_version=shown, current_version=current, current=shown == current,
            agreed=plan_agreed(record), goals=tuple(goals), signed_off_by=tuple(signed),
            signoffs=tuple(SignoffLine(role=s.role, by=signers[s.person_id].email, signed_at=s.signed_at,
                                       void=shown != current, given_by="on_behalf" if s.on_behalf else "holder",
                                       recorded_by=s.recorded_by)
                           for s in sorted(signoffs, key=lambda s: s.signed_at)),
            signers=tuple(rules.signers) if rules else (),
            unsigned=tuple(r for r in rules.signers if r not in signed) if rules else (),
            change=PlanChangeLine.of(change) if change is not None else None,
            unacknowledged_versions=tuple(c.plan_version for c in waiting))


def _live_goals(session: Session, record: AssignmentRecord) -> list[GoalLine]:
    goals = [g for g in record.goals if g.removed_at is None]
    by_goal: dict[int, list[Activity]] = {}
    for activity in plan_queries.activities_of(session, (pk(g) for g in goals)):
        by_goal.setdefault(activity.goal_id, []).append(activity)
    linked = objective_queries.objectives_of_goals(session, (pk(g) for g in goals))
    return [GoalLine.of(g, by_goal.get(pk(g), []), linked.get(pk(g), [])) for g in goals]


def _rebuilt_goals(session: Session, assignment_id: int, version: int) -> list[GoalLine]:
    """A version older than the kept snapshots: back then goals and activities could only be added."""
    goals = plan_queries.goals_up_to_version(session, assignment_id, version)
    by_goal: dict[int, list[Activity]] = {}
    for activity in plan_queries.activities_of(session, (pk(g) for g in goals)):
        if activity.plan_version <= version:
            by_goal.setdefault(activity.goal_id, []).append(activity)
    return [GoalLine.of(g, by_goal.get(pk(g), [])) for g in goals]

