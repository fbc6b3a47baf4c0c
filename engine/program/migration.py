"""Moving running assignments to another version of their workflow: what changes for each, and writing it.

A migration is planned for every assignment first, and refused as a whole when any of them cannot move; applying
writes every assignment or none, in one transaction. Each assignment's row version is checked and raised as
`advance` does it (`engine.store.migration_queries`), so a migration that races an advance or another migration of
the same assignment is refused with nothing written. Completed and cancelled assignments never move.

What moving means for one assignment:
- it lands in the stage of the same key in the new version, or the one `--map-stage` names; its stage entry stays;
- the new version's tasks of that stage it does not have yet are created, due by the rule of the stage's entry; a
  due day already past becomes today plus the reminder rules' due-soon lead, so the owner hears before it falls due;
- its open tasks whose key the new version no longer has are cancelled with their queued notices; done tasks stay;
- cadences that now run in its stage start: their first period begins on the migration day (`CadenceStart`), so
  no earlier period is due or looked for; cadences that stop have their queued notices cancelled; cadences that go
  on keep their periods and keys, so nothing already sent for them is sent again;
- the plan rules of the new version are in force from now on; sign-offs already given stay valid.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine
from sqlmodel import Session, col

from engine.domain import inputs
from engine.domain.cadences import in_range
from engine.domain.definition import TaskTemplate, WorkflowDefinition
from engine.domain.errors import BadInput, NotFound, SojournError
from engine.domain.notices import CADENCE_KINDS, TASK_KINDS, is_plan_change_task
from engine.domain.schedule import due_date, end_of_day, local_date, local_instant
from engine.domain.views import Result
from engine.domain.workflow_diff import DefinitionChange, FieldChange, diff_definitions, diff_summary, differing
from engine.program import audit
from engine.program.logging import get_logger
from engine.program.records import AssignmentRecord, definition_of, load_records
from engine.program.transactions import use_case_transaction
from engine.store import lookups
from engine.store.db import session_in
from engine.store.migration_queries import cancel_open_tasks, migrate_assignment, record_cadence_starts
from engine.store.models import Assignment, Task, Workflow, pk
from engine.store.moves import insert_tasks, typed_row, wake_cadence_checks
from engine.store.queries import cancel_queued_cadence_notifications, cancel_queued_notifications

log = get_logger(__name__)


# --- the request -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MigrationRequest:
    """What `sojourn workflow migrate` asks for; `stage_map` holds the OLD=NEW texts as typed."""

    workflow: str
    to_version: int
    reason: str
    assignment_ids: tuple[int, ...] = ()
    stage_map: tuple[str, ...] = ()


def _stage_mapping(pairs: Iterable[str]) -> dict[str, str]:
    """OLD=NEW pairs as a mapping; every malformed or repeated pair is reported at once."""
    problems = inputs.Problems()
    mapping: dict[str, str] = {}
    for pair in pairs:
        problems.check(_add_stage_pair, mapping, pair)
    problems.raise_if_any()
    return mapping


def _add_stage_pair(mapping: dict[str, str], pair: str) -> None:
    old, sep, new = pair.partition("=")
    if not sep or not old.strip() or not new.strip():
        raise BadInput(f"--map-stage {pair!r}: give OLD=NEW, e.g. --map-stage coaching=coaching_abroad")
    if old.strip() in mapping:
        raise BadInput(f"--map-stage: stage {old.strip()!r} is mapped twice")
    mapping[old.strip()] = new.strip()


# --- the result --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskAdded(Result):
    key: str
    title: str
    owner_role: str
    owner: str | None  # email
    due_on: date


@dataclass(frozen=True)
class TaskCancelled(Result):
    id: int
    key: str
    title: str


@dataclass(frozen=True)
class MovedAssignment(Result):
    """What migrating one assignment changes (or would change, in a dry run)."""

    assignment_id: int
    assignee: str
    from_version: int
    stage_from: str
    stage_to: str
    tasks_added: tuple[TaskAdded, ...]
    tasks_cancelled: tuple[TaskCancelled, ...]
    cadences_started: tuple[str, ...]
    cadences_stopped: tuple[str, ...]
    plan_rules: Mapping[str, FieldChange]


@dataclass(frozen=True)
class SkippedAssignment(Result):
    assignment_id: int
    reason: str


@dataclass(frozen=True)
class Migration(Result):
    """A migration applied, or planned by a dry run (`applied` False)."""

    workflow: str
    to_version: int
    applied: bool
    reason: str
    stage_mapping: Mapping[str, str]
    assignments: tuple[MovedAssignment, ...]
    skipped: tuple[SkippedAssignment, ...]


@dataclass(frozen=True)
class WorkflowDiff(Result):
    workflow: str
    from_version: int
    to_version: int
    summary: Mapping[str, Mapping[str, list[str]]]  # part -> added, removed, changed -> keys
    changes: tuple[DefinitionChange, ...]

    def view(self) -> dict[str, Any]:
        # `from` is a Python keyword, so the versions' fields cannot carry the JSON names
        return {"workflow": self.workflow, "from": self.from_version, "to": self.to_version,
                "summary": self.summary, "changes": [c.view() for c in self.changes]}


@dataclass(frozen=True)
class OlderVersions(Result):
    """Running assignments of a workflow on versions older than its newest, and the command that moves them."""

    workflow: str
    version: int  # the newest
    assignments: tuple[int, ...]
    command: str


# --- the plan ----------------------------------------------------------------------------------------------------


@dataclass
class AssignmentMove:
    """What migrating one assignment changes."""

    record: AssignmentRecord
    stage: str  # where it lands
    new_tasks: list[Task] = field(default_factory=list)
    cancelled_tasks: list[Task] = field(default_factory=list)
    cadences_started: list[str] = field(default_factory=list)
    cadences_stopped: list[str] = field(default_factory=list)
    plan_rules: dict[str, FieldChange] = field(default_factory=dict)

    @property
    def assignment_id(self) -> int:
        return pk(self.record.assignment)

    def audit_details(self, target: Workflow, mapping: dict[str, str], reason: str) -> dict[str, Any]:
        """The details of the `workflow_migrated` audit event: the document itself, as the audit chain keeps it."""
        return {"workflow": target.name, "from": self.record.workflow.version, "to": target.version,
                "stage_from": self.record.assignment.stage, "stage_to": self.stage, "stage_mapping": mapping,
                "reason": reason, "tasks_added": [t.key for t in self.new_tasks],
                "tasks_cancelled": [pk(t) for t in self.cancelled_tasks],
                "cadences_started": self.cadences_started, "cadences_stopped": self.cadences_stopped}

    def result(self) -> MovedAssignment:
        a = self.record.assignment
        owners = {p.id: p.email for p in self.record.stakeholders.values()}
        return MovedAssignment(
            assignment_id=self.assignment_id, assignee=self.record.assignee.email,
            from_version=self.record.workflow.version, stage_from=a.stage, stage_to=self.stage,
            tasks_added=tuple(TaskAdded(key=t.key, title=t.title, owner_role=t.owner_role,
                                        owner=owners.get(t.owner_id), due_on=t.due_on) for t in self.new_tasks),
            tasks_cancelled=tuple(TaskCancelled(id=pk(t), key=t.key, title=t.title) for t in self.cancelled_tasks),
            cadences_started=tuple(self.cadences_started), cadences_stopped=tuple(self.cadences_stopped),
            plan_rules=self.plan_rules)


@dataclass
class MigrationPlan:
    """Every assignment a migration moves and every one it leaves, with why."""

    target: Workflow
    mapping: dict[str, str]
    reason: str
    moves: list[AssignmentMove] = field(default_factory=list)
    skipped: list[SkippedAssignment] = field(default_factory=list)

    def result(self, *, applied: bool) -> Migration:
        return Migration(workflow=self.target.name, to_version=self.target.version, applied=applied,
                         reason=self.reason, stage_mapping=self.mapping,
                         assignments=tuple(m.result() for m in self.moves), skipped=tuple(self.skipped))


def migrate_workflow(db: Engine, request: MigrationRequest, *, actor: str, now: datetime,
                     dry_run: bool) -> Migration:
    """Plan the migration and, unless `dry_run`, apply it: all assignments or none, in one transaction."""
    with use_case_transaction(db) as session:
        plan = plan_migration(session, request, now)
        if not dry_run:
            _apply(session.connection(), plan, actor=actor, now=now)
    if not dry_run:
        log.info("workflow migrated", workflow=plan.target.name, to=plan.target.version, moved=len(plan.moves),
                 actor=actor)
    return plan.result(applied=not dry_run)


def plan_migration(session: Session, request: MigrationRequest, now: datetime) -> MigrationPlan:
    """What the migration would do to each assignment it concerns; refused whole with every problem found."""
    problems = inputs.Problems()
    reason = problems.check(inputs.text, request.reason, "--reason")
    mapping = problems.check(_stage_mapping, request.stage_map)
    if request.to_version < 1:
        problems.check(_bad, f"--to {request.to_version}: versions count from 1")
    problems.raise_if_any()
    assert reason is not None
    assert mapping is not None
    target = _target_version(session, request.workflow, request.to_version)
    versions = {pk(w): w for w in lookups.all_workflows(session) if w.name == target.name}
    records, skipped = problems.check(_selected, session, request, target, versions) or ([], [])
    sources = {pk(r.workflow): definition_of(r.workflow) for r in records}
    problems.check(_check_mapping, mapping, definition_of(target), [*sources.values()] or
                   [definition_of(w) for w in versions.values() if w.version < target.version])
    problems.raise_if_any()  # the assignments named and the mapping, reported together
    _refuse_unmapped(records, mapping, definition_of(target))
    plan = MigrationPlan(target, mapping, reason, skipped=skipped)
    plan.moves = [_move(record, target, mapping, now) for record in records]
    return plan


def _bad(message: str) -> None:
    raise BadInput(message)


def _target_version(session: Session, name: str, version: int) -> Workflow:
    workflow = lookups.workflow_version(session, name, version)
    if workflow is not None:
        return workflow
    latest = lookups.latest_workflow(session, name)
    if latest is None:
        known = ", ".join(lookups.workflow_names(session)) or "none installed"
        raise NotFound(f"no workflow {name} (installed: {known})")
    raise NotFound(f"no version {version} of workflow {name} (installed: 1 to {latest.version})",
                   details=["install the new version first: sojourn workflow install FILE.yaml"])


def _selected(session: Session, request: MigrationRequest, target: Workflow,
              versions: dict[int, Workflow]) -> tuple[list[AssignmentRecord], list[SkippedAssignment]]:
    """The running assignments to move, and those named or found that stay, with why."""
    if request.assignment_ids:
        return _named(session, request.assignment_ids, target, versions)
    older = [i for i, w in versions.items() if w.version < target.version]
    records = [r for r in load_records(session, col(Assignment.workflow_id).in_(older)) if _running(r)] \
        if older else []
    if not records:
        _refuse_backwards(session, target, versions)
    return records, []


def _running(record: AssignmentRecord) -> bool:
    return not record.definition.is_terminal(record.assignment.stage)


def _named(session: Session, ids: Sequence[int], target: Workflow,
           versions: dict[int, Workflow]) -> tuple[list[AssignmentRecord], list[SkippedAssignment]]:
    found = {pk(r.assignment): r for r in load_records(session, col(Assignment.id).in_(list(ids)))}
    problems = inputs.Problems()
    moving: list[AssignmentRecord] = []
    skipped: list[SkippedAssignment] = []
    for assignment_id in dict.fromkeys(ids):
        record = found.get(assignment_id)
        if record is None:
            problems.check(_missing, assignment_id)
        elif record.assignment.workflow_id not in versions:
            problems.check(_bad, f"assignment {assignment_id} runs workflow {record.workflow.name}, not "
                                 f"{target.name}")
        elif record.workflow.version > target.version:
            problems.check(_bad, f"--to {target.version} is older than version {record.workflow.version} that "
                                 f"assignment {assignment_id} is on; a migration only moves forward")
        elif record.workflow.version == target.version:
            skipped.append(SkippedAssignment(assignment_id, f"already on version {target.version}"))
        elif not _running(record):
            skipped.append(SkippedAssignment(assignment_id,
                                             f"{record.assignment.stage}; finished assignments are never migrated"))
        else:
            moving.append(record)
    problems.raise_if_any()
    return moving, skipped


def _missing(assignment_id: int) -> None:
    raise NotFound(f"no assignment {assignment_id}", details=["`sojourn assignment list` shows them"])


def _refuse_backwards(session: Session, target: Workflow, versions: dict[int, Workflow]) -> None:
    """With nothing on an older version, a target older than the versions in use is a mistake worth saying."""
    newer = [i for i, w in versions.items() if w.version > target.version]
    if newer and any(_running(r) for r in load_records(session, col(Assignment.workflow_id).in_(newer))):
        raise BadInput(f"--to {target.version} is older than the versions running assignments of {target.name} "
                       "are on; a migration only moves forward")


def _check_mapping(mapping: dict[str, str], target: WorkflowDefinition,
                   sources: Sequence[WorkflowDefinition]) -> None:
    """Each OLD must be a stage of a version moved from, each NEW a stage of the version moved to."""
    problems = inputs.Problems()
    old_stages = {k for d in sources for k in d.stage_keys}
    for old, new in mapping.items():
        if old not in old_stages:
            problems.check(_bad, f"--map-stage {old}={new}: {old!r} is not a stage of the version(s) moved from "
                                 f"(stages: {', '.join(sorted(old_stages))})")
        if new not in target.stage_keys:
            problems.check(_bad, f"--map-stage {old}={new}: version of {target.name} moved to has no stage "
                                 f"{new!r} (stages: {', '.join(target.stage_keys)})")
        elif target.is_terminal(new):
            problems.check(_bad, f"--map-stage {old}={new}: {new!r} is a final stage; a running assignment "
                                 "ends there only through `sojourn advance`")
    problems.raise_if_any()


def _refuse_unmapped(records: Sequence[AssignmentRecord], mapping: dict[str, str],
                     target: WorkflowDefinition) -> None:
    """Refuse the whole run when any assignment's stage has no counterpart, naming every stage and assignment."""
    stranded: dict[str, list[int]] = {}
    for record in records:
        stage = record.assignment.stage
        if mapping.get(stage, stage) not in target.stage_keys:
            stranded.setdefault(stage, []).append(pk(record.assignment))
    if stranded:
        raise SojournError(f"{sum(map(len, stranded.values()))} assignment(s) are in a stage the new version does "
                           "not have; nothing was migrated",
                           details=[f"stage {stage!r} (assignment(s) {', '.join(map(str, ids))}): give --map-stage "
                                    f"{stage}=STAGE, one of {', '.join(target.stage_keys)}"
                                    for stage, ids in stranded.items()])


def _move(record: AssignmentRecord, target: Workflow, mapping: dict[str, str], now: datetime) -> AssignmentMove:
    old, new = record.definition, definition_of(target)
    stage = mapping.get(record.assignment.stage, record.assignment.stage)
    have = {t.key for t in record.tasks}
    kept = {t.key for s in new.stages for t in s.tasks}
    move = AssignmentMove(record, stage)
    move.new_tasks = [_new_task(record, new, template, stage, now) for template in new.stage(stage).tasks
                      if template.key not in have]
    move.cancelled_tasks = [t for t in record.tasks if t.status == "open" and t.key not in kept
                            and not is_plan_change_task(t.key)]
    before = {c.kind for c in old.cadences if in_range(old, c, record.assignment.stage)}
    after = {c.kind for c in new.cadences if in_range(new, c, stage)}
    move.cadences_started = sorted(after - before)
    move.cadences_stopped = sorted(before - after)
    move.plan_rules = _plan_rule_changes(old, new)
    return move


def _plan_rule_changes(old: WorkflowDefinition, new: WorkflowDefinition) -> dict[str, FieldChange]:
    """The plan rules in force from the migration on that differ from the old version's (none: None)."""
    return differing(old.plan.model_dump(mode="json") if old.plan else {},
                     new.plan.model_dump(mode="json") if new.plan else {})


def _new_task(record: AssignmentRecord, definition: WorkflowDefinition, template: TaskTemplate, stage: str,
              now: datetime) -> Task:
    """A task the new version gives the stage, due as on the stage's entry, never before today plus the lead."""
    owner = record.person_for(template.owner)
    if owner is None:
        raise SojournError(f"assignment {record.assignment.id} has no {template.owner}, who owns task "
                           f"{template.key} in the new version",
                           details=[f"give the role first: sojourn assignment set-stakeholder {record.assignment.id} "
                                    f"{template.owner}=EMAIL --reason TEXT"])
    a, reminders = record.assignment, definition.reminders
    today = local_date(now, owner.tz)
    due_on = due_date(template.due, stage_entered_on=local_date(a.stage_entered_at, owner.tz), start=a.start,
                      end=a.end)
    if due_on < today:
        due_on = today + timedelta(days=reminders.due_soon_days)
    first_reminder = local_instant(date.fromordinal(due_on.toordinal() - reminders.due_soon_days),
                                   reminders.local_hour, owner.tz)
    return typed_row(Task, {"id": None, "assignment_id": pk(a), "key": template.key, "title": template.title,
                            "description": template.description, "stage": stage, "owner_role": template.owner,
                            "owner_id": pk(owner), "due_on": due_on, "due_at": end_of_day(due_on, owner.tz),
                            "status": "open", "completed_at": None, "completed_by": None, "note": None,
                            "next_reminder_at": first_reminder, "reminder_round": 0})


# --- applying ----------------------------------------------------------------------------------------------------


def _apply(connection: Connection, plan: MigrationPlan, *, actor: str, now: datetime) -> None:
    """Write every move: the version check first, then tasks, notices, cadence checks and the audit events."""
    events: list[audit.ChainEvent] = []
    target_id = pk(plan.target)
    for move in plan.moves:
        moved = migrate_assignment(connection, move.assignment_id, seen_version=move.record.assignment.row_version,
                                   workflow_id=target_id, stage=move.stage)
        events += audit.chained(move.assignment_id, moved.audit_head, [
            (audit.WORKFLOW_MIGRATED, move.audit_details(plan.target, plan.mapping, plan.reason))],
            actor=actor, at=now)
    insert_tasks(connection, [task for move in plan.moves for task in move.new_tasks])
    _cancel_dropped_tasks(connection, plan.moves)
    with session_in(connection) as session:
        cancel_queued_cadence_notifications(
            session, [(m.assignment_id, kind) for m in plan.moves for kind in m.cadences_stopped],
            kinds=CADENCE_KINDS, reason="cadence stopped by a workflow migration before delivery")
    # a cadence new to the stage counts its periods from now, so none is due or missed before it existed
    record_cadence_starts(connection, [(m.assignment_id, kind) for m in plan.moves for kind in m.cadences_started],
                          now)
    # the daemon decides, at its next sweep, which periods of the new version's cadences fall due from now on
    wake_cadence_checks(connection, [(m.assignment_id, c.kind) for m in plan.moves
                                     for c in definition_of(plan.target).cadences], now)
    audit.append_sealed(connection, events)


def _cancel_dropped_tasks(connection: Connection, moves: Sequence[AssignmentMove]) -> None:
    dropped = [t for m in moves for t in m.cancelled_tasks]
    cancel_open_tasks(connection, [pk(t) for t in dropped])
    with session_in(connection) as session:
        for task in dropped:
            cancel_queued_notifications(session, assignment_id=task.assignment_id, kinds=TASK_KINDS,
                                        task_id=pk(task), reason="task dropped by a workflow migration")


# --- what to tell an administrator -------------------------------------------------------------------------------


def diff_workflow(db: Engine, name: str, *, from_version: int, to_version: int) -> WorkflowDiff:
    """What version `to_version` of workflow `name` adds, removes and changes against `from_version`."""
    with use_case_transaction(db) as session:
        old = _target_version(session, name, from_version)
        new = _target_version(session, name, to_version)
        changes = diff_definitions(definition_of(old), definition_of(new))
    return WorkflowDiff(workflow=name, from_version=from_version, to_version=to_version,
                        summary=diff_summary(changes), changes=tuple(changes))


def assignments_on_older_versions(db: Engine, names: Iterable[str]) -> list[OlderVersions]:
    """Per workflow of `names`: running assignments on versions older than the newest, and how to move them."""
    found: list[OlderVersions] = []
    with use_case_transaction(db) as session:
        for name in names:
            latest = lookups.latest_workflow(session, name)
            if latest is None:
                continue
            older = {pk(w): w.version for w in lookups.all_workflows(session)
                     if w.name == name and w.version < latest.version}
            records = [r for r in load_records(session, col(Assignment.workflow_id).in_(list(older)))
                       if _running(r)] if older else []
            if records:
                found.append(OlderVersions(workflow=name, version=latest.version,
                                           assignments=tuple(pk(r.assignment) for r in records),
                                           command=f"sojourn workflow migrate {name} --to {latest.version} "
                                                   "--reason TEXT --dry-run"))
    return found

