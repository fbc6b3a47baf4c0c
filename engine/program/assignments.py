"""Creating assignments, every check of a new one reported at once, and reading them back."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from engine.domain import inputs
from engine.domain.definition import WorkflowDefinition
from engine.domain.errors import BadInput, SojournError
from engine.domain.views import Result, plain
from engine.program import audit
from engine.program.advance import StageEntry, enter_stage
from engine.program.competencies import CompetencyGrowth, competency_growth_view, current_baselines
from engine.program.logging import get_logger
from engine.program.overlaps import ALLOW_OVERLAP_HINT, PlannedStay, overlap_refusals
from engine.program.people import require_person
from engine.program.records import (
    AssignmentRecord,
    AssignmentView,
    OutcomeView,
    SignoffLine,
    assignment_view,
    definition_of,
    load_record,
    load_records,
    outcome_view,
    signoff_views,
)
from engine.program.transactions import use_case_transaction as _transaction
from engine.program.workflows import workflow_named
from engine.store import lookups, program_queries
from engine.store.audit_events import audit_event_rows
from engine.store.models import Assignment, Person, Workflow, pk
from engine.store.moves import insert_assignments, insert_stakeholders, people_by_email, typed_row
from engine.store.queries import stage_changes_of

log = get_logger(__name__)


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
        role, so a role given twice is refused rather than settled by whichever came last. Every malformed value
        and the repeated roles are reported together, so one run shows everything to fix."""
        problems = inputs.Problems()
        pairs = [pair for value in stakeholders if (pair := problems.check(inputs.stakeholder_pair, value))]
        roles = [role for role, _ in pairs]
        if duplicated := sorted({role for role in roles if roles.count(role) > 1}):
            problems.errors.append(BadInput(f"--stakeholder given more than once for: {', '.join(duplicated)}"))
        problems.raise_if_any()
        return cls(workflow, assignee, home, host, start, end, dict(pairs))


def create_assignment(db: Engine, spec: AssignmentSpec, *, actor: str, now: datetime,
                      allow_past: bool = True, allow_overlap: bool = True) -> AssignmentView:
    """Create an assignment in its first stage; with `allow_past` False, one whose end date has passed is refused
    (the CLI's default: its tasks would all be counted from today); with `allow_overlap` False, one whose dates
    overlap a running assignment of the same assignee (the CLI's default too)."""
    with _transaction(db) as session:
        record = create_assignment_in(session, spec, actor=actor, now=now, allow_past=allow_past,
                                      allow_overlap=allow_overlap)
    log.info("assignment created", assignment=record.assignment.id, assignee=record.assignee.email, actor=actor)
    return assignment_view(record, now)


def create_assignment_in(session: Session, spec: AssignmentSpec, *, actor: str, now: datetime,
                         allow_past: bool = True, allow_overlap: bool = True) -> AssignmentRecord:
    """Check and write one assignment inside the caller's transaction (creation, or a follow-on assignment)."""
    checked = check_new_assignment(CreationLookups(session, [spec]), spec,
                                    ended_by=None if allow_past else now.date())
    if not allow_overlap and (refusals := overlap_refusals(session, [planned_stay(checked, "")])):
        raise SojournError(f"refused: {refusals[0][1]}", details=[ALLOW_OVERLAP_HINT])
    return write_assignments(session, [checked], actor=actor, now=now)[0]


def planned_stay(new: NewAssignment, label: str) -> PlannedStay:
    return PlannedStay(label, pk(new.assignee), new.assignee.email, new.start, new.end)


@dataclass(frozen=True)
class NewAssignment:
    """An assignment that passed every check and may be written."""

    workflow: Workflow
    assignee: Person
    holders: dict[str, Person]  # role -> person, the assignee not included
    home: str
    host: str
    start: date
    end: date


class CreationLookups:
    """The workflows and people a batch of new assignments names, read once for the whole batch."""

    def __init__(self, session: Session, specs: Sequence[AssignmentSpec]) -> None:
        self.session = session
        named = [s.assignee for s in specs] + [email for s in specs for email in s.stakeholders.values()]
        self.people = people_by_email(session.connection(), (email.strip().lower() for email in named))
        self.workflows: dict[str, Workflow] = {}

    def workflow(self, name: str) -> Workflow:
        if name not in self.workflows:
            self.workflows[name] = workflow_named(self.session, name)
        return self.workflows[name]

    def person(self, email: str, what: str) -> Person:
        found = self.people.get(email)
        return found if found is not None else require_person(self.session, email, what)


def check_new_assignment(lookups: CreationLookups, spec: AssignmentSpec, *,
                           ended_by: date | None = None) -> NewAssignment:
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
    return NewAssignment(workflow, assignee, {r: p for r, p in holders.items() if p is not None}, home, host,
                          start, end)


def _not_past(end: date, today: date) -> None:
    if end < today:
        raise BadInput(f"end {end.isoformat()} is already past (today is {today.isoformat()} in UTC)",
                       details=["give --allow-past to record an assignment that has ended"])


def _person_named(lookups: CreationLookups, email: str, what: str) -> Person:
    return lookups.person(inputs.email(email, what), what)


def write_assignments(session: Session, checked: Sequence[NewAssignment], *, actor: str,
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
    enter_stage(connection, [StageEntry(r, None, r.assignment.stage, "created",
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


def list_assignments(db: Engine, *, stage: str | None = None, now: datetime) -> tuple[AssignmentView, ...]:
    with _transaction(db) as session:
        if stage is not None:
            _check_stage_name(session, stage)
        where = [] if stage is None else [Assignment.stage == stage]
        return tuple(assignment_view(r, now) for r in load_records(session, *where))


def _check_stage_name(session: Session, stage: str) -> None:
    known = {key for w in lookups.all_workflows(session) for key in definition_of(w).stage_keys}
    if stage not in known:
        raise BadInput(f"--stage: no installed workflow has a stage {stage!r}; stages: {', '.join(sorted(known))}")


@dataclass(frozen=True)
class AssignmentShown(AssignmentView):
    """An assignment with who signed its current plan version, its outcomes and its competency growth."""

    signoffs: tuple[SignoffLine, ...]
    outcomes: tuple[OutcomeView, ...]
    competency_growth: tuple[CompetencyGrowth, ...]
    impact_statements: int


def show_assignment(db: Engine, assignment_id: int, *, now: datetime) -> AssignmentShown:
    """The assignment's view, with who signed the current plan version and when, and the outcomes recorded."""
    with _transaction(db) as session:
        record = load_record(session, assignment_id)
        signoffs = lookups.signoffs_of(session, [assignment_id])
        signers = lookups.people_by_id(session, (s.person_id for s in signoffs))
        outcomes = program_queries.outcomes_with_competencies(session, assignment_id)
        latest = [(r.name, r.before, r.after) for _, ratings in outcomes for r in ratings]  # 24 months after 12
        return AssignmentShown(**vars(assignment_view(record, now)),
                               signoffs=signoff_views(record, signoffs, signers),
                               outcomes=tuple(outcome_view(o, ratings) for o, ratings in outcomes),
                               competency_growth=tuple(competency_growth_view(current_baselines(session, assignment_id),
                                                                              latest)),
                               impact_statements=sum(o.impact is not None for o, _ in outcomes))


@dataclass(frozen=True)
class HistoryEntry(Result):
    """A stage change, or an administrator's change from the audit trail in the same shape."""

    event: str
    source: Any
    dest: Any
    at: datetime
    actor: str
    reason: str | None
    workflow_version: int | None = None  # a stage change's
    role: str | None = None  # a stakeholder change's
    tasks: tuple[Any, ...] | None = None  # an administrator's change's: the tasks it moved (None: a stage change)

    def view(self) -> dict[str, Any]:
        # `from` is a Python keyword; and each kind of entry shows only its own keys, as it always has
        shown = {"event": self.event, "from": plain(self.source), "to": plain(self.dest), "at": self.at.isoformat(),
                 "actor": self.actor, "reason": self.reason}
        if self.tasks is None:
            return {**shown, "workflow_version": self.workflow_version}
        return {**shown, **({"role": self.role} if self.role is not None else {}), "tasks": plain(self.tasks)}


def history(db: Engine, assignment_id: int) -> tuple[HistoryEntry, ...]:
    """Stage changes and an administrator's changes (a new stakeholder, a later end date), oldest first."""
    with _transaction(db) as session:
        load_record(session, assignment_id)
        rows = stage_changes_of(session, [assignment_id])[assignment_id]
        stages = [HistoryEntry(audit.STAGE_CHANGED, r.from_stage, r.to_stage, r.at, r.actor, r.reason,
                               workflow_version=r.workflow_version) for r in rows]
        changes = [_history_entry(e) for e in audit_event_rows(session, assignment_id)
                   if e.action in HISTORY_CHANGES]
    return tuple(sorted(stages + changes, key=lambda entry: entry.at))  # stable: stages first


# audit actions `history` lists beside stages
HISTORY_CHANGES = (audit.STAKEHOLDER_CHANGED, audit.END_EXTENDED, audit.WORKFLOW_MIGRATED)


def _history_entry(event: Any) -> HistoryEntry:
    """A change from the audit trail in the shape of a stage change; a stakeholder change also names its role."""
    details = json.loads(event.details)
    return HistoryEntry(event.action, details["from"], details["to"], event.at, event.actor, details["reason"],
                        role=details.get("role"), tasks=tuple(details.get("tasks", [])))
