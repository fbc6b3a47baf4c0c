"""Outcomes after return, the cost of an assignment and the category of an early return: the program's proof."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Engine
from sqlmodel import Session

from engine.domain import inputs
from engine.domain.definition import WorkflowDefinition
from engine.domain.errors import BadInput, SojournError
from engine.domain.inputs import OUTCOME_MONTHS
from engine.domain.notices import TASK_KINDS
from engine.domain.tasks import TaskStatus
from engine.program import assignments, audit, contacts
from engine.program.competencies import current_baselines, rating_on_scale
from engine.program.records import (
    AssignmentRecord,
    AssignmentView,
    OutcomeView,
    assignment_view,
    load_record,
    outcome_view,
)
from engine.program.transactions import use_case_transaction
from engine.store import program_queries
from engine.store.models import CompetencyBaseline, Outcome, OutcomeCompetency, Task, pk
from engine.store.queries import cancel_queued_notifications, complete_open_task

# The task of the `completed` stage that recording the outcome of these months completes (when the workflow has it).
OUTCOME_TASK_KEYS = {12: "record_outcome_12_months", 24: "record_outcome_24_months"}


@dataclass(frozen=True)
class CompetencyRating:
    """A competency rated after return; `before` is typed, or None to take the baseline rated at the start."""

    name: str
    before: int | None
    after: int


@dataclass(frozen=True)
class OutcomeReport:
    """An outcome as typed: `retained` and `months` are required, the rest is what is known."""

    months: int
    retained: bool
    left_on: str | date | None = None
    left_reason: str | None = None
    considered_for_promotion: bool = False
    promoted_to: str | None = None
    competencies: tuple[CompetencyRating, ...] = ()
    impact: str | None = None


@dataclass(frozen=True)
class CheckedReport:
    """An outcome report's values once checked: the columns of its row."""

    months: int
    retained: bool
    left_on: date | None
    left_reason: str | None
    considered_for_promotion: bool
    promoted_to: str | None
    impact: str | None


@dataclass(frozen=True)
class OutcomeRecorded(OutcomeView):
    """An outcome just recorded, and the milestone task it completed (None: there was none open)."""

    task_completed: int | None = None


# --- checks on what was typed -----------------------------------------------------------------------------------


def competency_rating(value: str) -> CompetencyRating:
    """`NAME=AFTER` (growth from the baseline) or `NAME=BEFORE:AFTER` as given to --competency, 1 to 5."""
    name, sep, ratings = value.partition("=")
    if not sep or not name.strip():
        raise BadInput(f"--competency {value!r}: give NAME=AFTER or NAME=BEFORE:AFTER, e.g. 'negotiation=4' or "
                       "'cross-cultural leadership=2:4'")
    before, colon, after = ratings.rpartition(":")
    problems = inputs.Problems()
    typed_before = problems.check(rating_on_scale, before, f"--competency {name.strip()} (before)") if colon else None
    typed_after = problems.check(rating_on_scale, after, f"--competency {name.strip()} (after)")
    problems.raise_if_any()
    assert typed_after is not None, "raise_if_any raised a failed check"
    return CompetencyRating(name.strip(), typed_before, typed_after)


def competency_ratings(values: Iterable[str]) -> tuple[CompetencyRating, ...]:
    """Each --competency value, every problem of all of them reported at once (exit 2)."""
    problems = inputs.Problems()
    ratings = [r for value in values if (r := problems.check(competency_rating, value)) is not None]
    problems.raise_if_any()
    return tuple(ratings)


def _check_report(report: OutcomeReport) -> CheckedReport:
    """The report's values, checked: every problem of the input itself is a BadInput (exit 2)."""
    if report.months not in OUTCOME_MONTHS:
        raise BadInput(f"--months: {report.months} is not one of {', '.join(map(str, OUTCOME_MONTHS))}")
    if report.retained and (report.left_on is not None or report.left_reason is not None):
        raise BadInput("--left-on and --left-reason describe a departure: give them with --retained no")
    names = [c.name.lower() for c in report.competencies]
    if repeated := sorted({n for n in names if names.count(n) > 1}):
        raise BadInput(f"--competency given more than once for: {', '.join(repeated)}")
    return CheckedReport(
        months=report.months, retained=report.retained,
        left_on=inputs.iso_date(report.left_on, "--left-on") if report.left_on is not None else None,
        left_reason=inputs.text(report.left_reason, "--left-reason") if report.left_reason is not None else None,
        # a promotion implies the assignee was considered for one
        considered_for_promotion=report.considered_for_promotion or report.promoted_to is not None,
        promoted_to=inputs.text(report.promoted_to, "--promoted-to") if report.promoted_to is not None else None,
        impact=inputs.text(report.impact, "--impact") if report.impact is not None else None,
    )


# --- use cases --------------------------------------------------------------------------------------------------


def record_outcome(db: Engine, assignment_id: int, report: OutcomeReport, *, actor: str,
                   now: datetime) -> OutcomeRecorded:
    """Record what became of a returned assignee after 12 or 24 months, and complete that milestone's task."""
    checked = _check_report(report)
    fields = asdict(checked)
    with use_case_transaction(db) as session:
        record = load_record(session, assignment_id)
        _require_completed(record)
        left_on = checked.left_on
        latest_today = (now + contacts.LATEST_UTC_OFFSET).date()  # a day has begun once it has begun anywhere
        if left_on is not None and not record.assignment.end <= left_on <= latest_today:
            raise BadInput(f"--left-on {left_on.isoformat()} must fall between the end of the assignment "
                           f"({record.assignment.end.isoformat()}) and today")
        if program_queries.outcome_of(session, assignment_id, report.months) is not None:
            raise SojournError(f"assignment {assignment_id} already has its {report.months}-month outcome",
                               details=[f"an outcome is recorded once; `sojourn assignment show {assignment_id}` "
                                        "shows it"])
        outcome = Outcome(assignment_id=assignment_id, recorded_at=now, recorded_by=actor, **fields)
        session.add(outcome)
        session.flush()
        ratings = _from_baselines(report.competencies, current_baselines(session, assignment_id))
        session.add_all(OutcomeCompetency(outcome_id=pk(outcome), name=c.name, before=c.before, after=c.after)
                        for c in ratings)
        audit.append_event(session, assignment_id, audit.OUTCOME_RECORDED,
                           {**fields, "outcome": outcome.id,
                            "competencies": {c.name: [c.before, c.after] for c in ratings}},
                           actor=actor, at=now)
        task = _complete_milestone_task(session, record, report.months, actor=actor, now=now)
        return outcome_recorded(outcome, ratings, task)


def _from_baselines(ratings: Iterable[CompetencyRating],
                    baselines: Mapping[str, CompetencyBaseline]) -> list[CompetencyRating]:
    """Each rating with its `before`: as typed, else the competency's baseline, else none (no growth to count)."""
    return [c if c.before is not None or (b := baselines.get(c.name.lower())) is None
            else CompetencyRating(c.name, b.level, c.after) for c in ratings]


def _require_completed(record: AssignmentRecord) -> None:
    stage = record.assignment.stage
    if stage not in completed_stages(record):
        raise SojournError(f"assignment {pk(record.assignment)} is in stage {stage}; outcomes are recorded after "
                           f"return, once it is {' or '.join(sorted(completed_stages(record)))}")


def completed_stages(record: AssignmentRecord) -> frozenset[str]:
    return completed_stages_of(record.definition)


def completed_stages_of(definition: WorkflowDefinition) -> frozenset[str]:
    """Final stages reached without a reason: the assignment ran its course (the built-in `completed`)."""
    return frozenset(s for s in definition.stage_keys
                     if definition.is_terminal(s) and s not in cancelled_stages_of(definition))


def cancelled_stages_of(definition: WorkflowDefinition) -> frozenset[str]:
    """Stages entered only with a reason: the assignment was cancelled (the built-in `cancelled`)."""
    return frozenset(t.dest for t in definition.transitions if t.requires_reason)


def _complete_milestone_task(session: Session, record: AssignmentRecord, months: int, *, actor: str,
                             now: datetime) -> Task | None:
    """The open `record_outcome_N_months` task is done by recording the outcome; its queued reminders are void."""
    task = next((t for t in record.tasks if t.key == OUTCOME_TASK_KEYS[months] and t.status == TaskStatus.OPEN), None)
    if task is None or not complete_open_task(session, pk(task), actor=actor, note="outcome recorded", now=now):
        return None
    audit.append_event(session, task.assignment_id, audit.TASK_COMPLETED,
                       {"task": task.id, "key": task.key, "note": "outcome recorded"}, actor=actor, at=now)
    cancel_queued_notifications(session, assignment_id=task.assignment_id, kinds=TASK_KINDS, task_id=pk(task),
                                reason="task done before delivery")
    session.refresh(task)
    return task


def outcome_recorded(outcome: Outcome, competencies: Iterable[CompetencyRating], task: Task | None) -> OutcomeRecorded:
    completed = None if task is None else task.id
    return OutcomeRecorded(**vars(outcome_view(outcome, competencies)), task_completed=completed)


def set_cost(db: Engine, assignment_id: int, *, amount: str | Decimal, currency: str, actor: str,
             now: datetime) -> AssignmentView:
    """Set (or correct) what an assignment cost, so the program can show the cost per leader retained."""
    cost = inputs.amount(amount), inputs.currency(currency)
    with use_case_transaction(db) as session:
        record = load_record(session, assignment_id)
        _apply_cost(session, record, cost, actor=actor, now=now)
        return assignment_view(record, now)


def create_assignment(db: Engine, spec: assignments.AssignmentSpec, *, amount: str | None, currency: str | None,
                      actor: str, now: datetime, allow_past: bool = True, allow_overlap: bool = True) -> AssignmentView:
    """`assignment create`: the assignment, with its cost when one is given. A cost means nothing without its
    currency, so the two come together or not at all. Every problem of the input, the cost's and the assignment's,
    is reported at once."""
    problems = inputs.Problems()
    cost = _checked_cost(problems, amount, currency)
    if not problems.errors and cost is None:
        return assignments.create_assignment(db, spec, actor=actor, now=now, allow_past=allow_past,
                                             allow_overlap=allow_overlap)
    with use_case_transaction(db) as session:
        # the assignment's own checks run even when the cost is wrong, so one run shows everything to fix; a
        # failure rolls back whatever they wrote
        record = problems.check(lambda: assignments.create_assignment_in(session, spec, actor=actor, now=now,
                                                                         allow_past=allow_past,
                                                                         allow_overlap=allow_overlap))
        problems.raise_if_any()
        assert record is not None, "raise_if_any raised a failed check"
        assert cost is not None, "without problems, a cost was given"
        _apply_cost(session, record, cost, actor=actor, now=now)
        return assignment_view(record, now)


def _checked_cost(problems: inputs.Problems, amount: str | Decimal | None,
                  currency: str | None) -> tuple[Decimal, str] | None:
    """The cost typed, if both halves were given and are well formed; every problem is added to `problems`."""
    if (amount is None) != (currency is None):
        problems.errors.append(BadInput("--cost and --currency go together: give both, e.g. --cost 250000 "
                                        "--currency EUR"))
    checked_amount = problems.check(inputs.amount, amount) if amount is not None else None
    checked_currency = problems.check(inputs.currency, currency) if currency is not None else None
    return None if checked_amount is None or checked_currency is None else (checked_amount, checked_currency)


def _apply_cost(session: Session, record: AssignmentRecord, cost: tuple[Decimal, str], *, actor: str,
                now: datetime) -> None:
    assignment = record.assignment
    program_queries.set_assignment_cost(session.connection(), pk(assignment), *cost)
    if assignment in session:
        session.refresh(assignment)  # the row as written, with the version the UPDATE left
    else:
        assignment.cost_amount, assignment.cost_currency = cost
    audit.append_event(session, pk(assignment), audit.COST_SET, {"amount": str(cost[0]), "currency": cost[1]},
                       actor=actor, at=now)
