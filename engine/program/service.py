"""Use cases: each public function is one transaction, takes the time it runs at, and returns JSON-ready data."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine
from sqlmodel import Session

from engine.domain import inputs, notices
from engine.domain.cadences import period_start_of
from engine.domain.csv_tables import LineProblems, TableRow, TableSpec, read_table
from engine.domain.definition import Transition, WorkflowDefinition, parse_definition
from engine.domain.errors import BadInput, GuardsUnmet, NotFound, SojournError
from engine.domain.lifecycle import Lifecycle
from engine.domain.notices import CADENCE_KINDS, RECORDED_CADENCES, TASK_KINDS, NewNotice, NoticeKind
from engine.domain.schedule import due_date, end_of_day, local_date, local_instant, zone
from engine.domain.tasks import TaskStatus
from engine.program import audit
from engine.program.competencies import competency_growth_view, current_baselines
from engine.program.logging import get_logger
from engine.program.overlaps import ALLOW_OVERLAP_HINT, PlannedStay, overlap_refusals
from engine.program.records import (
    AssignmentRecord,
    assignment_view,
    definition_of,
    instant,
    lifecycle_of,
    load_record,
    load_record_to_move,
    load_records,
    outcome_view,
    signoff_views,
    task_view,
)
from engine.program.transactions import use_case_connection as _connection
from engine.program.transactions import use_case_transaction as _transaction
from engine.store import lookups, program_queries
from engine.store.audit_events import audit_event_rows
from engine.store.db import serialize_schema_changes, session_in, transaction, upgrade_schema
from engine.store.migration_queries import cadence_starts_of
from engine.store.models import (
    Assignment,
    Contact,
    Person,
    StageChange,
    Task,
    Workflow,
    pk,
)
from engine.store.moves import (
    insert_assignments,
    insert_history,
    insert_stage_notices,
    insert_stakeholders,
    insert_tasks,
    move_assignment,
    people_by_email,
    tasks_of,
    typed_row,
    wake_cadence_checks,
)
from engine.store.program_queries import set_early_return_reason
from engine.store.queries import (
    cancel_queued_notifications,
    close_open_tasks,
    complete_open_task,
    stage_changes_of,
)
from workflows import builtin_workflow_texts

log = get_logger(__name__)
LATEST_UTC_OFFSET = timedelta(hours=14)  # somewhere on Earth (Kiribati) it is already this much later than UTC

# --- schema and workflows ---------------------------------------------------------------------------------------


def init(db: Engine, *, now: datetime) -> dict[str, Any]:
    """Create or upgrade the schema and install the built-in workflows; running it twice changes nothing."""
    before, after = upgrade_schema(db)
    installed = []
    with transaction(db) as session:
        serialize_schema_changes(session.connection())
        for file_name, text in builtin_workflow_texts().items():
            workflow, new = _install_builtin(session, parse_definition(text, source=file_name), text, now)
            installed.append({"name": workflow.name, "version": workflow.version, "new": new})
    return {"schema_before": before, "schema": after, "workflows": installed}


def _install_builtin(session: Session, definition: WorkflowDefinition, text: str,
                     now: datetime) -> tuple[Workflow, bool]:
    """Install a built-in unless some version already has its text: an admin's later version stays the newest."""
    same = lookups.workflow_with_source(session, definition.name, text)
    if same is not None:
        return same, False
    return _install(session, definition, text, now)


def validate_workflow(text: str, *, source: str) -> dict[str, Any]:
    definition = parse_definition(text, source=source)
    return {"name": definition.name, "stages": list(definition.stage_keys), "valid": True}


def install_workflow(db: Engine, text: str, *, source: str, now: datetime) -> dict[str, Any]:
    """Install a new version of the workflow the file names; assignments already running keep their version."""
    definition = parse_definition(text, source=source)
    with _transaction(db) as session:
        workflow, new = _install(session, definition, text, now)
        return {"name": workflow.name, "version": workflow.version, "new": new}


def _install(session: Session, definition: WorkflowDefinition, text: str, now: datetime) -> tuple[Workflow, bool]:
    latest = lookups.latest_workflow(session, definition.name)
    if latest is not None and latest.source == text:
        return latest, False
    workflow = Workflow(name=definition.name, version=(latest.version + 1) if latest else 1, source=text,
                        installed_at=now)
    session.add(workflow)
    session.flush()
    return workflow, True


def _workflow(session: Session, name: str, version: int | None = None) -> Workflow:
    if version is None:
        workflow = lookups.latest_workflow(session, name)
    else:
        workflow = lookups.workflow_version(session, name, version)
    if workflow is None:
        known = ", ".join(lookups.workflow_names(session)) or "none installed"
        which = f"{name} version {version}" if version else name
        raise NotFound(f"no workflow {which} (installed: {known})")
    return workflow


def list_workflows(db: Engine) -> list[dict[str, Any]]:
    with _transaction(db) as session:
        rows = lookups.all_workflows(session)
        latest: dict[str, Workflow] = {w.name: w for w in rows}
        return [{"name": w.name, "version": w.version, "versions": [r.version for r in rows if r.name == w.name],
                 "title": definition_of(w).title, "installed_at": instant(w.installed_at)} for w in latest.values()]


def show_workflow(db: Engine, name: str, version: int | None = None) -> dict[str, Any]:
    with _transaction(db) as session:
        workflow = _workflow(session, name, version)
        definition = definition_of(workflow)
        return {"version": workflow.version, "installed_at": instant(workflow.installed_at),
                **definition.model_dump(mode="json", by_alias=True), "diagram": lifecycle_of(workflow).diagram()}


# --- people ---------------------------------------------------------------------------------------------------


def add_person(db: Engine, email: str, *, name: str, tz: str = "UTC") -> dict[str, Any]:
    address = inputs.email(email)
    person = Person(email=address, name=inputs.text(name, "--name"), tz=zone(tz).key)
    with _transaction(db) as session:
        if find_person(session, address) is not None:
            raise SojournError(f"a person with email {address} already exists")
        session.add(person)
        session.flush()
        return person_view(person)


def list_people(db: Engine) -> list[dict[str, Any]]:
    with _transaction(db) as session:
        return [person_view(p) for p in lookups.people(session)]


def show_person(db: Engine, email: str) -> dict[str, Any]:
    """One person: email, name, time zone and digest choice; NotFound for someone never added."""
    with _transaction(db) as session:
        return person_view(require_person(session, inputs.email(email)))


def person_view(person: Person) -> dict[str, Any]:
    """A person as the CLI and JSON show them."""
    return {"id": person.id, "email": person.email, "name": person.name, "tz": person.tz, "digest": person.digest}


def find_person(session: Session, email: str) -> Person | None:
    """The person with this email, whatever its case or surrounding spaces; None when there is none."""
    return lookups.person_by_email(session, email.strip().lower())


def require_person(session: Session, email: str, what: str = "person") -> Person:
    person = find_person(session, email)
    if person is None:
        raise NotFound(f"{what}: no person with email {email}",
                       details=[f"add them first: sojourn person add {email} --name 'Full Name' --tz Area/City"])
    return person


# --- assignments ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AssignmentSpec:
    """What creating an assignment needs, as typed by a user or read from an HR export."""

    workflow: str
    assignee: str
    home: str
    host: str
    start: str | date
    end: str | date
    stakeholders: Mapping[str, str]

    @classmethod
    def typed(cls, workflow: str, assignee: str, home: str, host: str, start: str, end: str,
              stakeholders: Iterable[str]) -> AssignmentSpec:
        """The assignment `assignment create` asks for, its holders given as `ROLE=EMAIL` values: one holder per
        role, so a role given twice is refused rather than settled by whichever came last."""
        pairs = [inputs.stakeholder_pair(value) for value in stakeholders]
        roles = [role for role, _ in pairs]
        if duplicated := sorted({role for role in roles if roles.count(role) > 1}):
            raise BadInput(f"--stakeholder given more than once for: {', '.join(duplicated)}")
        return cls(workflow, assignee, home, host, start, end, dict(pairs))


def create_assignment(db: Engine, spec: AssignmentSpec, *, actor: str, now: datetime,
                      allow_past: bool = True, allow_overlap: bool = True) -> dict[str, Any]:
    """Create an assignment in its first stage; with `allow_past` False, one whose end date has passed is refused
    (the CLI's default: its tasks would all be counted from today); with `allow_overlap` False, one whose dates
    overlap a running assignment of the same assignee (the CLI's default too)."""
    with _transaction(db) as session:
        record = create_assignment_in(session, spec, actor=actor, now=now, allow_past=allow_past,
                                      allow_overlap=allow_overlap)
    log.info("assignment created", assignment=record.assignment.id, assignee=record.assignee.email, actor=actor)
    return assignment_view(record, now)


def import_assignments(db: Engine, data: bytes | str, *, source: str, actor: str, now: datetime,
                       allow_past: bool = True, allow_overlap: bool = True,
                       progress: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
    """Create one assignment per CSV line, all or nothing; every problem of every line is reported with its number.
    With `allow_past` False, a line whose end date has passed is one of them. With `allow_overlap` False, lines
    that pass every check are then held against running assignments and earlier lines of the same assignee, and
    every overlapping line is refused at once (exit 1).

    Every line is checked before anything is written, then all of them are written together, a few hundred rows
    per statement. `progress(done, total)` counts the lines checked as the first half, the writing as the second.
    """
    roles_by_workflow = _workflow_roles(db)
    table = read_table(data, _import_columns(roles_by_workflow), source=source)
    problems = table.problems
    rows = [(row.line, _import_spec(row, roles_by_workflow, problems)) for row in table.rows]
    with _transaction(db) as session:
        lookups = _CreationLookups(session, [spec for _, spec in rows])
        checked: list[_NewAssignment] = []
        for done, (line, spec) in enumerate(rows, start=1):
            try:
                checked.append(_check_new_assignment(lookups, spec, ended_by=None if allow_past else now.date()))
            except SojournError as exc:
                for text in exc.lines():
                    problems.add(line, text)
            if progress is not None:
                progress(done, 2 * len(rows))
        problems.raise_if_any()
        if not allow_overlap:
            _refuse_overlapping_lines(session, source, [line for line, _ in rows], checked)
        created = _create_assignments(session, checked, actor=actor, now=now)
        if progress is not None:
            progress(2 * len(rows), 2 * len(rows))
        return [assignment_view(r, now) for r in created]


IMPORT_FIXED_COLUMNS = ("workflow", "assignee", "home", "host", "start", "end")
IMPORT_ROLE_COLUMNS = ("sending_manager", "host_manager", "coach", "sponsor", "talent", "mobility")


def _import_columns(roles_by_workflow: Mapping[str, Sequence[str]]) -> TableSpec:
    """An import's columns: the fixed ones, then the stakeholder roles of every installed workflow (without any
    workflow installed: the built-in roles)."""
    roles = sorted({r for roles in roles_by_workflow.values() for r in roles}) if roles_by_workflow else \
        IMPORT_ROLE_COLUMNS
    return TableSpec(required=IMPORT_FIXED_COLUMNS, optional=tuple(roles))


def _import_spec(row: TableRow, roles_by_workflow: Mapping[str, Sequence[str]],
                 problems: LineProblems) -> AssignmentSpec:
    """The assignment a line asks for; it may fill only the roles of the workflow it names (a role column of
    another workflow holding an email is a problem of the line)."""
    values = row.values
    role_columns = [c for c in values if c not in IMPORT_FIXED_COLUMNS]
    allowed = roles_by_workflow.get(values["workflow"], role_columns)
    for column in role_columns:
        if values[column] and column not in allowed:
            problems.add(row.line, f"column {column!r} is not a role of workflow {values['workflow']} "
                                   f"(roles: {', '.join(allowed)})")
    roles = {role: values[role] for role in role_columns if values[role] and role in allowed}
    return AssignmentSpec(values["workflow"], values["assignee"], values["home"], values["host"], values["start"],
                          values["end"], roles)


def _workflow_roles(db: Engine) -> dict[str, tuple[str, ...]]:
    """The stakeholder roles of the newest version of every installed workflow, by name: an import's role columns."""
    with _transaction(db) as session:
        return {w.name: definition_of(w).stakeholder_roles for w in lookups.all_workflows(session)}


def create_assignment_in(session: Session, spec: AssignmentSpec, *, actor: str, now: datetime,
                         allow_past: bool = True, allow_overlap: bool = True) -> AssignmentRecord:
    """Check and write one assignment inside the caller's transaction (creation, or a follow-on assignment)."""
    checked = _check_new_assignment(_CreationLookups(session, [spec]), spec,
                                    ended_by=None if allow_past else now.date())
    if not allow_overlap and (refusals := overlap_refusals(session, [_planned_stay(checked, "")])):
        raise SojournError(f"refused: {refusals[0][1]}", details=[ALLOW_OVERLAP_HINT])
    return _create_assignments(session, [checked], actor=actor, now=now)[0]


def _planned_stay(new: _NewAssignment, label: str) -> PlannedStay:
    return PlannedStay(label, pk(new.assignee), new.assignee.email, new.start, new.end)


def _refuse_overlapping_lines(session: Session, source: str, lines: Sequence[int],
                              checked: Sequence[_NewAssignment]) -> None:
    """Every line of an import whose dates overlap, reported together; nothing is imported."""
    refusals = overlap_refusals(session, [_planned_stay(n, f"line {line}")
                                          for line, n in zip(lines, checked, strict=True)])
    if refusals:
        raise SojournError(f"{source}: nothing imported; {len(refusals)} line(s) overlap another assignment of "
                           "their assignee",
                           details=[*inputs.capped([f"{source}, line {lines[index]}: {why}"
                                                    for index, why in refusals]), ALLOW_OVERLAP_HINT])


@dataclass(frozen=True)
class _NewAssignment:
    """An assignment that passed every check and may be written."""

    workflow: Workflow
    assignee: Person
    holders: dict[str, Person]  # role -> person, the assignee not included
    home: str
    host: str
    start: date
    end: date


class _CreationLookups:
    """The workflows and people a batch of new assignments names, read once for the whole batch."""

    def __init__(self, session: Session, specs: Sequence[AssignmentSpec]) -> None:
        self.session = session
        named = [s.assignee for s in specs] + [email for s in specs for email in s.stakeholders.values()]
        self.people = people_by_email(session.connection(), (email.strip().lower() for email in named))
        self.workflows: dict[str, Workflow] = {}

    def workflow(self, name: str) -> Workflow:
        if name not in self.workflows:
            self.workflows[name] = _workflow(self.session, name)
        return self.workflows[name]

    def person(self, email: str, what: str) -> Person:
        found = self.people.get(email)
        return found if found is not None else require_person(self.session, email, what)


def _check_new_assignment(lookups: _CreationLookups, spec: AssignmentSpec, *,
                           ended_by: date | None = None) -> _NewAssignment:
    """Every check of a new assignment; all failures are raised together, so one run shows everything to fix. An end
    date before `ended_by` (today, in UTC) is refused: that assignment is over already."""
    problems = inputs.Problems()
    start, end = problems.check(inputs.iso_date, spec.start, "start"), problems.check(inputs.iso_date, spec.end, "end")
    if start is not None and end is not None:
        problems.check(inputs.period, start, end)
    if end is not None and ended_by is not None:
        problems.check(_not_past, end, ended_by)
    home, host = problems.check(inputs.country, spec.home, "home"), problems.check(inputs.country, spec.host, "host")
    workflow_name = problems.check(inputs.text, spec.workflow, "workflow")
    workflow = problems.check(lookups.workflow, workflow_name) if workflow_name is not None else None
    if workflow is not None:
        problems.check(_check_roles, definition_of(workflow), spec.stakeholders)
    assignee = problems.check(_person_named, lookups, spec.assignee, "assignee")
    holders = {role: problems.check(_person_named, lookups, email, role) for role, email in spec.stakeholders.items()}
    problems.raise_if_any()
    if workflow is None or assignee is None or home is None or host is None or start is None or end is None:
        raise AssertionError("a check failed without raising")  # raise_if_any raised every failure above
    return _NewAssignment(workflow, assignee, {r: p for r, p in holders.items() if p is not None}, home, host,
                          start, end)


def _not_past(end: date, today: date) -> None:
    if end < today:
        raise BadInput(f"end {end.isoformat()} is already past (today is {today.isoformat()} in UTC)",
                       details=["give --allow-past to record an assignment that has ended"])


def _person_named(lookups: _CreationLookups, email: str, what: str) -> Person:
    return lookups.person(inputs.email(email, what), what)


def _create_assignments(session: Session, checked: Sequence[_NewAssignment], *, actor: str,
                        now: datetime) -> list[AssignmentRecord]:
    """Write checked assignments, their stakeholders and their entry into the initial stage, in bulk."""
    connection = session.connection()
    rows = [{"workflow_id": pk(n.workflow), "assignee_id": pk(n.assignee), "stage": definition_of(n.workflow).initial,
             "home": n.home, "host": n.host, "start": n.start, "end": n.end, "stage_entered_at": now,
             "created_at": now} for n in checked]
    ids = insert_assignments(connection, rows)
    insert_stakeholders(connection, [{"assignment_id": assignment_id, "role": role, "person_id": pk(person)}
                                     for assignment_id, n in zip(ids, checked, strict=True)
                                     for role, person in n.holders.items()])
    records = [AssignmentRecord(typed_row(Assignment, {"id": assignment_id, **row, "plan_version": 1,
                                                       "row_version": 1}),
                                n.workflow, n.assignee, {"assignee": n.assignee, **n.holders})
               for assignment_id, row, n in zip(ids, rows, checked, strict=True)]
    _enter_stage(connection, [_StageEntry(r, None, r.assignment.stage, "created",
                                          opening=((audit.ASSIGNMENT_CREATED, audit.creation(r)),)) for r in records],
                 actor=actor, now=now)
    return records


def _check_roles(definition: WorkflowDefinition, given: Mapping[str, str]) -> None:
    unknown = [r for r in given if r not in definition.stakeholder_roles]
    missing = [r for r in definition.stakeholder_roles if r not in given]
    problems = [f"unknown role {r!r} for workflow {definition.name}" for r in unknown]
    problems += [f"missing stakeholder {r!r}" for r in missing]
    if problems:
        roles = ", ".join(definition.stakeholder_roles)
        raise BadInput("; ".join(problems), details=[f"workflow {definition.name} needs one person for each of: "
                                                     f"{roles} (--stakeholder ROLE=EMAIL)"])


def list_assignments(db: Engine, *, stage: str | None = None, now: datetime) -> list[dict[str, Any]]:
    with _transaction(db) as session:
        if stage is not None:
            _check_stage_name(session, stage)
        where = [] if stage is None else [Assignment.stage == stage]
        return [assignment_view(r, now) for r in load_records(session, *where)]


def _check_stage_name(session: Session, stage: str) -> None:
    known = {key for w in lookups.all_workflows(session) for key in definition_of(w).stage_keys}
    if stage not in known:
        raise BadInput(f"--stage: no installed workflow has a stage {stage!r}; stages: {', '.join(sorted(known))}")


def show_assignment(db: Engine, assignment_id: int, *, now: datetime) -> dict[str, Any]:
    """The assignment's view, with who signed the current plan version and when, and the outcomes recorded."""
    with _transaction(db) as session:
        record = load_record(session, assignment_id)
        signoffs = lookups.signoffs_of(session, [assignment_id])
        signers = lookups.people_by_id(session, (s.person_id for s in signoffs))
        outcomes = program_queries.outcomes_with_competencies(session, assignment_id)
        latest = [(r.name, r.before, r.after) for _, ratings in outcomes for r in ratings]  # 24 months after 12
        growth = competency_growth_view(current_baselines(session, assignment_id), latest)
        return {**assignment_view(record, now), "signoffs": signoff_views(record, signoffs, signers),
                "outcomes": [outcome_view(o, ratings) for o, ratings in outcomes],
                "competency_growth": [g.view() for g in growth],
                "impact_statements": sum(o.impact is not None for o, _ in outcomes)}


def history(db: Engine, assignment_id: int) -> list[dict[str, Any]]:
    """Stage changes and an administrator's changes (a new stakeholder, a later end date), oldest first."""
    with _transaction(db) as session:
        load_record(session, assignment_id)
        rows = stage_changes_of(session, [assignment_id])[assignment_id]
        stages = [{"event": audit.STAGE_CHANGED, "from": r.from_stage, "to": r.to_stage, "at": instant(r.at),
                   "actor": r.actor, "reason": r.reason, "workflow_version": r.workflow_version} for r in rows]
        changes = [_history_entry(e) for e in audit_event_rows(session, assignment_id)
                   if e.action in HISTORY_CHANGES]
    return sorted(stages + changes, key=lambda entry: datetime.fromisoformat(entry["at"]))  # stable: stages first


# audit actions `history` lists beside stages
HISTORY_CHANGES = (audit.STAKEHOLDER_CHANGED, audit.END_EXTENDED, audit.WORKFLOW_MIGRATED)


def _history_entry(event: Any) -> dict[str, Any]:
    """A change from the audit trail in the shape of a stage change; a stakeholder change also names its role."""
    details = json.loads(event.details)
    role = {"role": details["role"]} if "role" in details else {}
    return {"event": event.action, "from": details["from"], "to": details["to"], "at": instant(event.at),
            "actor": event.actor, "reason": details["reason"], **role, "tasks": details.get("tasks", [])}


# --- advancing ------------------------------------------------------------------------------------------------


def advance(db: Engine, assignment_id: int, *, to: str | None, reason: str | None, actor: str,
            now: datetime, early_return: str | None = None) -> dict[str, Any]:
    """Move an assignment to `to` (default: the next stage) if every guard passes; otherwise say who must act.

    Reads and writes with the named Core statements of `engine.store.moves`; the stage update checks the version
    read, so a concurrent change loses cleanly. `early_return` is the category of a cancellation
    (inputs.EARLY_RETURN_REASONS), kept for the program summary.
    """
    category = None if early_return is None else inputs.early_return_reason(early_return)
    reason = inputs.reason(reason)
    with _connection(db) as connection:
        record = load_record_to_move(connection, assignment_id)
        lifecycle = record.lifecycle
        transition = lifecycle.transition(record.assignment.stage, to)
        if transition.requires_reason and not (reason and reason.strip()):
            raise BadInput(f"moving to {transition.dest} needs a reason: add --reason TEXT")
        if category is not None and not transition.requires_reason:
            raise BadInput(f"--early-return is the category of a cancellation, not of moving to {transition.dest}")
        _fire(lifecycle, record, transition, now)
        source = record.assignment.stage
        _enter_stage(connection, [_StageEntry(record, source, transition.dest, reason)], actor=actor, now=now)
        if category is not None:
            _note_early_return(connection, record, category, actor=actor, now=now)
    log.info("assignment advanced", assignment=assignment_id, source=source, dest=transition.dest, actor=actor)
    return assignment_view(record, now)


def _note_early_return(connection: Connection, record: AssignmentRecord, category: str, *, actor: str,
                       now: datetime) -> None:
    record.assignment.early_return_reason = set_early_return_reason(connection, pk(record.assignment), category)
    with session_in(connection) as session:
        audit.append_event(session, pk(record.assignment), audit.EARLY_RETURN_RECORDED, {"category": category},
                           actor=actor, at=now)


def _fire(lifecycle: Lifecycle, record: AssignmentRecord, transition: Transition, now: datetime) -> None:
    """Refuse the move with every unmet guard of the transition and who must act."""
    unmet = lifecycle.move(record.assignment.stage, transition, record.guard_context(now))
    if unmet:
        raise GuardsUnmet(
            f"assignment {record.assignment.id} cannot move from {record.assignment.stage} to {transition.dest} yet",
            details=[f"{u.guard}: {u.reason}; must act: {record.who_must_act(u.who)}" for u in unmet])


@dataclass(frozen=True)
class _StageEntry:
    """One assignment entering a stage, from `source` (None: it has just been created)."""

    record: AssignmentRecord
    source: str | None
    dest: str
    reason: str | None
    opening: tuple[tuple[str, Mapping[str, Any]], ...] = ()  # audit events chained before the stage change's own


def _enter_stage(connection: Connection, entries: Sequence[_StageEntry], *, actor: str, now: datetime) -> None:
    """Set each stage, append history, create the stages' tasks and tell the stage's audience, in one transaction.

    A move checks the assignment's version (`move_assignment`); history, tasks, notices, cadence checks and audit
    events of all entries go in one multi-row INSERT (or executemany) each.
    """
    events: list[audit.ChainEvent] = []
    for entry in entries:
        assignment, definition = entry.record.assignment, entry.record.definition
        head: audit.Head = (0, None)  # a new assignment's chain starts here
        if entry.source is not None:
            moved = move_assignment(connection, pk(assignment), seen_version=assignment.row_version, stage=entry.dest,
                                    entered_at=now)
            assignment.row_version, head = moved.row_version, moved.audit_head
        assignment.stage, assignment.stage_entered_at = entry.dest, now
        events += audit.chained(pk(assignment), head, [*entry.opening, (audit.STAGE_CHANGED, {
            "from": entry.source, "to": entry.dest, "reason": entry.reason})], actor=actor, at=now)
        assignment.audit_seq, assignment.audit_head = events[-1].seq, events[-1].hash
        if definition.is_terminal(entry.dest) and not definition.stage(entry.dest).tasks:
            _close_open_tasks(connection, entry.record)
    history_ids = insert_history(connection, [
        {"assignment_id": pk(e.record.assignment), "from_stage": e.source, "to_stage": e.dest, "at": now,
         "actor": actor, "reason": e.reason, "workflow_version": e.record.workflow.version} for e in entries])
    new_tasks = [[_task_from_template(e.record, template, e.dest, now)
                  for template in e.record.definition.stage(e.dest).tasks] for e in entries]
    insert_tasks(connection, [task for tasks in new_tasks for task in tasks])
    queued: list[NewNotice] = []
    for entry, history_id, tasks in zip(entries, history_ids, new_tasks, strict=True):
        entry.record.tasks += tasks
        queued += _stage_change_notices(entry.record, entry, history_id, actor, tasks, now)
    insert_stage_notices(connection, queued)
    # the daemon decides whether a cadence starts, continues or stops with the new stage
    wake_cadence_checks(connection, [(pk(e.record.assignment), cadence.kind) for e in entries
                                     for cadence in e.record.definition.cadences], now)
    audit.append_sealed(connection, events)


def _close_open_tasks(connection: Connection, record: AssignmentRecord) -> None:
    """Cancel the assignment's open tasks with one conditional UPDATE, so a task done meanwhile stays done."""
    assignment_id = pk(record.assignment)
    with session_in(connection) as session:
        close_open_tasks(session, assignment_id)
        # reminders and cadence notices still queued would now mislead; stage_changed and plan_changed still go out
        cancel_queued_notifications(session, assignment_id=assignment_id, kinds=(*TASK_KINDS, *CADENCE_KINDS),
                                    reason=f"assignment {record.assignment.stage} before delivery")
    record.tasks = tasks_of(connection, assignment_id)  # so the returned view shows what was written


def _task_from_template(record: AssignmentRecord, template: Any, stage: str, now: datetime) -> Task:
    """A new open task of `stage`, due as the template says in its owner's time zone (its id comes on insert)."""
    owner = record.person_for(template.owner)
    assert owner is not None, "every workflow role is filled when the assignment is created"
    a = record.assignment
    due_on = due_date(template.due, stage_entered_on=local_date(now, owner.tz), start=a.start, end=a.end)
    reminders = record.definition.reminders
    first_reminder = local_instant(date.fromordinal(due_on.toordinal() - reminders.due_soon_days),
                                   reminders.local_hour, owner.tz)
    return typed_row(Task, {"id": None, "assignment_id": pk(a), "key": template.key, "title": template.title,
                            "description": template.description, "stage": stage, "owner_role": template.owner,
                            "owner_id": pk(owner), "due_on": due_on, "due_at": end_of_day(due_on, owner.tz),
                            "status": TaskStatus.OPEN, "completed_at": None, "completed_by": None, "note": None,
                            "next_reminder_at": first_reminder, "reminder_round": 0})


def _stage_change_notices(record: AssignmentRecord, entry: _StageEntry, history_id: int, actor: str,
                          new_tasks: list[Task], now: datetime) -> list[NewNotice]:
    change = typed_row(StageChange, {"id": history_id, "assignment_id": pk(record.assignment),
                                     "from_stage": entry.source, "to_stage": entry.dest, "at": now, "actor": actor,
                                     "reason": entry.reason, "workflow_version": record.workflow.version})
    audience = set(record.definition.stage_change_audience(entry.dest))
    return notices.stage_changed(record.assignment, record.assignee, change, now=now, recipients=[
        (role, person, [t for t in new_tasks if t.owner_id == person.id])
        for role, person in sorted(record.stakeholders.items()) if role in audience])


# --- tasks, goals, sign-offs, contacts -------------------------------------------------------------------------


def list_tasks(db: Engine, *, now: datetime, assignment_id: int | None = None, owner: str | None = None,
               status: str | None = None, overdue: bool = False) -> list[dict[str, Any]]:
    with _transaction(db) as session:
        if assignment_id is not None:
            load_record(session, assignment_id)
        owner_id = None if owner is None else pk(require_person(session, inputs.email(owner, "--owner")))
        tasks = lookups.tasks_matching(session, assignment_id=assignment_id, owner_id=owner_id, status=status,
                                       overdue_at=now if overdue else None)
        owners = lookups.people_by_id(session, (t.owner_id for t in tasks))
        return [task_view(t, owners.get(t.owner_id)) for t in tasks]


def complete_task(db: Engine, task_id: int, *, note: str | None, actor: str, now: datetime) -> dict[str, Any]:
    note = inputs.note(note, "--note")
    with _transaction(db) as session:
        task = session.get(Task, task_id)
        if (refusal := _refusal_to_complete(task, task_id)) is not None:
            raise refusal
        assert task is not None
        _complete_open_task(session, task, note=note, actor=actor, now=now)
        session.refresh(task)
        view = task_view(task, session.get(Person, task.owner_id))
    log.info("task done", task=task_id, key=view["key"], actor=actor)
    return view


def complete_tasks(db: Engine, task_ids: Iterable[int], *, note: str | None, actor: str, now: datetime) -> list[int]:
    """Complete several tasks in one transaction, in the order given, each as `complete_task` does; returns the ids
    done. A task `complete_task` would refuse is skipped, not refused: a replay completes what is still open."""
    done = []
    note = inputs.note(note, "--note")
    with _transaction(db) as session:
        for task_id in task_ids:
            task = session.get(Task, task_id)
            if task is None or _refusal_to_complete(task, task_id) is not None:  # cancelled meanwhile: left as is
                continue
            _complete_open_task(session, task, note=note, actor=actor, now=now)
            done.append((task_id, task.key))
    for task_id, key in done:
        log.info("task done", task=task_id, key=key, actor=actor)
    return [task_id for task_id, _ in done]


def _refusal_to_complete(task: Task | None, task_id: int) -> SojournError | None:
    if task is None:
        return NotFound(f"no task {task_id}", details=["`sojourn task list` shows them"])
    if task.key.startswith(notices.PLAN_ACK_TASK):
        return SojournError(f"task {task_id} asks for the acknowledgement of a plan change",
                            details=[f"the {task.owner_role} acknowledges with: "
                                     f"{notices.plan_ack_command(task.assignment_id, 'EMAIL')}"])
    if task.status != TaskStatus.OPEN:
        return _not_open(task)
    return None


def _complete_open_task(session: Session, task: Task, *, note: str | None, actor: str, now: datetime) -> None:
    """Mark a task read open done in the caller's transaction: the audit event, the row, its queued reminders."""
    task_id = pk(task)
    audit.append_event(session, task.assignment_id, audit.TASK_COMPLETED,
                       {"task": task_id, "key": task.key, "note": note}, actor=actor, at=now)
    if not complete_open_task(session, task_id, actor=actor, note=note, now=now):
        session.refresh(task)  # another transaction cancelled or completed it after it was read
        raise _not_open(task)
    cancel_queued_notifications(session, assignment_id=task.assignment_id, kinds=TASK_KINDS, task_id=task_id,
                                reason="task done before delivery")


def _not_open(task: Task) -> SojournError:
    return SojournError(f"task {task.id} ({task.key}) is already {task.status}")


def _cancel_missed_contact_notices(session: Session, record: AssignmentRecord, kind: str, day: date) -> None:
    """A contact logged after its period's contact_missed was queued (in the grace days of a later recipient's
    zone, or while delivery was failing) cancels the notices of that period not sent yet."""
    assignment_id = pk(record.assignment)
    start = period_start_of(record.definition, kind, stage_changes_of(session, [assignment_id])[assignment_id],
                            record.assignee.tz, day, start=record.assignment.start,
                            started=cadence_starts_of(session.connection(), [assignment_id]).get((assignment_id, kind)))
    if start is not None:
        cancel_queued_notifications(session, assignment_id=assignment_id, kinds=[NoticeKind.CONTACT_MISSED],
                                    key_prefixes=[notices.cadence_key_prefix(NoticeKind.CONTACT_MISSED, assignment_id,
                                                                             kind, start)],
                                    reason="contact logged before delivery")


def log_contact(db: Engine, assignment_id: int, *, kind: str, with_email: str, on: str | None, notes: str | None,
                actor: str, now: datetime) -> dict[str, Any]:
    notes = inputs.note(notes, "--notes")
    with _transaction(db) as session:
        record = load_record(session, assignment_id)
        cadence = next((c for c in record.definition.cadences if c.kind == kind), None)
        if cadence is not None and cadence.kind in RECORDED_CADENCES:
            raise BadInput(f"--kind {kind}: record it with `sojourn {kind} {assignment_id} --by EMAIL ...`, "
                           "not as a contact")
        if cadence is None:
            kinds = ", ".join(c.kind for c in record.definition.cadences if c.kind not in RECORDED_CADENCES) or "none"
            raise BadInput(f"--kind: unknown contact kind {kind!r}; kinds of {record.workflow.name}: {kinds}")
        person = require_person(session, inputs.email(with_email, "--with"), "--with")
        holder = record.person_for(cadence.with_role)
        if holder is None or holder.email != person.email:
            expected = holder.email if holder else "nobody"
            raise SojournError(f"a {kind} contact is with the {cadence.with_role} of assignment {assignment_id} "
                               f"({expected}), not {person.email}")
        day = inputs.iso_date(on, "--on") if on else local_date(now, record.assignee.tz)
        if day > (now + LATEST_UTC_OFFSET).date():
            raise BadInput(f"--on {day.isoformat()} is in the future; log a contact once it has happened")
        contact = Contact(assignment_id=assignment_id, kind=kind, with_person_id=pk(person), on=day,
                          notes=notes or "", logged_by=actor, logged_at=now)
        session.add(contact)
        session.flush()
        audit.append_event(session, assignment_id, audit.CONTACT_LOGGED,
                           {"contact": contact.id, "kind": kind, "with": person.email, "on": day,
                            "notes": contact.notes}, actor=actor, at=now)
        _cancel_missed_contact_notices(session, record, kind, day)
        return {"id": contact.id, "assignment_id": assignment_id, "kind": kind, "with": person.email,
                "on": day.isoformat(), "notes": contact.notes}

