"""Check-ins on goals and expectancy pulses: recording them, and the pulse alert that goes out with a weak answer.

A check-in (FAST: frequent, ambitious, specific, transparent) is recorded by the assignee or the host manager: the
progress of each goal in percent, a note, and feedback about the other side. Its feedback, with its progress per
goal, reaches the other side and home (the check-in cadence's other `notify` roles) at once in `checkin_feedback`.
While the plan's immersion days run, a note on how the assignee and family are settling in is enough; after them,
a check-in on a plan with goals must give progress. A pulse is the assignee's own answer to three questions of
expectancy theory, each 1 to 5; when the workflow's `pulse:` rules find it weak (a low answer or a drop since the
previous pulse) the `notify` roles get `pulse_alert` in the same transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from engine.domain import inputs, notices
from engine.domain.cadences import immersion_ends
from engine.domain.definition import PulseRules, WorkflowDefinition
from engine.domain.errors import BadInput, ConcurrentChange, NotFound, SojournError
from engine.domain.notices import CHECKIN_ROLES, PULSE_ROLE
from engine.domain.schedule import local_date
from engine.domain.views import Result
from engine.program import audit
from engine.program.people import require_person
from engine.program.records import AssignmentRecord, instant, load_record
from engine.program.transactions import use_case_transaction
from engine.store import checkin_queries
from engine.store.models import Checkin, Person, Pulse, pk
from engine.store.queries import cancel_queued_notifications, insert_notifications

PULSE_QUESTIONS = ("expectancy", "instrumentality", "valence")
PERCENT_RANGE = range(0, 101)
PULSE_RANGE = range(1, 6)


@dataclass(frozen=True)
class GoalProgress(Result):
    goal_id: int
    title: str
    percent: int


@dataclass(frozen=True)
class CheckinRecorded(Result):
    """A check-in just recorded; `immersion` while the immersion days run, `told` who heard its feedback."""

    id: int
    assignment_id: int
    by: str
    role: str
    at: datetime
    note: str | None
    feedback: str | None
    progress: tuple[GoalProgress, ...]
    immersion: bool
    told: tuple[str, ...]


@dataclass(frozen=True)
class CheckinLine(Result):
    """A check-in as `checkin list` and the person's page show it."""

    id: int
    assignment_id: int
    by: str
    name: str
    role: str
    at: datetime
    immersion: bool
    progress: tuple[GoalProgress, ...]
    note: str | None
    feedback: str | None


@dataclass(frozen=True)
class PulseRecorded(Result):
    """A pulse just recorded; `alerted` are who got its alert, when it raised one."""

    id: int
    assignment_id: int
    by: str
    at: datetime
    expectancy: int
    instrumentality: int
    valence: int
    note: str | None
    alert: bool
    alert_reason: str | None
    alerted: tuple[str, ...]


@dataclass(frozen=True)
class AlertResolved(Result):
    id: int  # the pulse's
    assignment_id: int
    alert_reason: str | None
    resolved_at: datetime
    by: str
    role: str
    note: str | None


def record_checkin(db: Engine, assignment_id: int, *, by: str, progress: Mapping[int, int], note: str | None,
                   feedback: str | None, actor: str, now: datetime) -> CheckinRecorded:
    """Record a check-in by the assignee or the host manager: each goal's progress, a note and feedback."""
    email = inputs.email(by, "--by")
    note, feedback = inputs.note(note, "--note"), inputs.note(feedback, "--feedback")
    for goal_id, percent in progress.items():
        if percent not in PERCENT_RANGE:
            raise BadInput(f"--goal {goal_id}={percent}: progress is a percentage from 0 to 100")
    with use_case_transaction(db) as session:
        record = _open_record(session, assignment_id)
        person = require_person(session, email, "--by")
        role = _role_of(record, person, CHECKIN_ROLES, "check in")
        goals = _goals_of_assignment(session, assignment_id, progress)
        settling_in = settling_in_until(record, now)
        _require_progress_after_immersion(record, progress, settling_in)
        checkin = Checkin(assignment_id=assignment_id, person_id=pk(person), role=role, at=now,
                          note=_optional(note), feedback=_optional(feedback))
        pairs = sorted(progress.items())
        checkin_id = checkin_queries.add_checkin(session, checkin, pairs)
        audit.append_event(session, assignment_id, audit.CHECKIN_RECORDED,
                           {"checkin": checkin_id, "by": person.email, "role": role,
                            "progress": {str(g): p for g, p in pairs}, "note": checkin.note,
                            "feedback": checkin.feedback}, actor=actor, at=now)
        told = _tell_about_checkin(session, record, notices.RecordedCheckin(
            checkin_id, person, role, now, checkin.note, checkin.feedback,
            [notices.GoalPercent(g, goals[g], p) for g, p in pairs], settling_in), now)
        return CheckinRecorded(id=checkin_id, assignment_id=assignment_id, by=person.email, role=role, at=now,
                               note=checkin.note, feedback=checkin.feedback,
                               progress=tuple(GoalProgress(g, goals[g], p) for g, p in pairs),
                               immersion=settling_in is not None, told=tuple(told))


def list_checkins(db: Engine, assignment_id: int) -> list[CheckinLine]:
    """Every check-in of the assignment's plan, newest first, both sides: progress per goal, note and feedback."""
    with use_case_transaction(db, read_only=True) as session:
        record = load_record(session, assignment_id)
        return checkin_views(record, checkin_queries.checkins_of(session, [assignment_id]))


def checkin_views(record: AssignmentRecord, rows: Sequence[checkin_queries.CheckinRow]) -> list[CheckinLine]:
    """The check-ins of one assignment as `checkin list` and the person's page show them."""
    ends = immersion_ends(record.definition, record.assignment.start)
    return [CheckinLine(id=pk(row.checkin), assignment_id=row.checkin.assignment_id, by=row.email, name=row.name,
                        role=row.checkin.role, at=row.checkin.at,
                        immersion=ends is not None and local_date(row.checkin.at, record.assignee.tz) < ends,
                        progress=tuple(GoalProgress(g, title, p) for g, title, p in row.progress),
                        note=row.checkin.note, feedback=row.checkin.feedback)
            for row in rows if row.checkin.assignment_id == record.assignment.id]


def checkin_audience(definition: WorkflowDefinition) -> tuple[str, ...]:
    """Who sees an assignment's check-ins: the two sides, and the `notify` roles of its check-in cadence."""
    cadence = next((c for c in definition.cadences if c.kind == notices.CHECKIN_CADENCE), None)
    return tuple(dict.fromkeys([*CHECKIN_ROLES, *(cadence.notify if cadence else ())]))


def settling_in_until(record: AssignmentRecord, now: datetime) -> date | None:
    """The first day after the immersion days while they still run at `now` (days in the assignee's zone), when a
    check-in asks how the assignee and family are settling in; None once progress per goal is asked."""
    ends = immersion_ends(record.definition, record.assignment.start)
    return ends if ends is not None and local_date(now, record.assignee.tz) < ends else None


def _require_progress_after_immersion(record: AssignmentRecord, progress: Mapping[int, int],
                                      settling_in: date | None) -> None:
    """Once the immersion days are over, a check-in on a plan with goals must give the progress of at least one."""
    live = [g for g in record.goals if g.removed_at is None]
    if progress or settling_in is not None or not live:
        return
    ends = immersion_ends(record.definition, record.assignment.start)
    since = f"; the immersion days ended on {(ends - timedelta(days=1)).isoformat()}" if ends else ""
    details = [f"goal {g.id}: {g.title}" for g in live]
    if ends is not None:
        details.append("during the immersion days a note on how the assignee and family settle in was enough")
    raise BadInput(f"give each goal's progress with --goal GOAL_ID=PERCENT{since}", details=details)


def _tell_about_checkin(session: Session, record: AssignmentRecord, checkin: notices.RecordedCheckin,
                        now: datetime) -> list[str]:
    """Write, in the check-in's own transaction, its feedback to the other side and to home (the check-in cadence's
    other `notify` roles); returns who was told. A check-in without feedback tells nobody: its progress reaches
    everyone in the next checkin_due."""
    if not checkin.feedback:
        return []
    other = next(r for r in CHECKIN_ROLES if r != checkin.role)
    roles = [other, *(r for r in checkin_audience(record.definition) if r not in CHECKIN_ROLES)]
    rows = [notices.checkin_feedback(record.assignment, record.assignee, checkin, role=role, recipient=holder,
                                     may_answer=role == other, now=now)
            for role in roles if (holder := record.person_for(role)) is not None]
    insert_notifications(session, rows)
    return [row.recipient for row in rows]


def record_pulse(db: Engine, assignment_id: int, *, by: str, expectancy: int, instrumentality: int, valence: int,
                 note: str | None, actor: str, now: datetime) -> PulseRecorded:
    """Record the assignee's expectancy pulse; a weak one alerts the workflow's `pulse.notify` roles at once."""
    answers = {"expectancy": expectancy, "instrumentality": instrumentality, "valence": valence}
    for question, value in answers.items():
        if value not in PULSE_RANGE:
            raise BadInput(f"--{question} {value}: answer from 1 (not at all) to 5 (fully)")
    email = inputs.email(by, "--by")
    note = inputs.note(note, "--note")
    with use_case_transaction(db) as session:
        record = _open_record(session, assignment_id)
        person = require_person(session, email, "--by")
        _role_of(record, person, (PULSE_ROLE,), "answer the expectancy pulse")
        previous = checkin_queries.latest_pulse(session, assignment_id)
        rules = record.definition.pulse
        reason = None if rules is None else pulse_alert_reason(rules, answers, _answers_of(previous))
        pulse = Pulse(assignment_id=assignment_id, person_id=pk(person), at=now, expectancy=expectancy,
                      instrumentality=instrumentality, valence=valence, note=_optional(note),
                      alert=reason is not None, alert_reason=reason)
        session.add(pulse)
        session.flush()
        audit.append_event(session, assignment_id, audit.PULSE_RECORDED,
                           {"pulse": pulse.id, "by": person.email, **answers, "note": pulse.note,
                            "alert_reason": reason}, actor=actor, at=now)
        alerted = _send_pulse_alert(session, record, pulse, rules, now) if reason and rules else []
        return PulseRecorded(id=pk(pulse), assignment_id=assignment_id, by=person.email, at=now, **answers,
                             note=pulse.note, alert=pulse.alert, alert_reason=reason, alerted=tuple(alerted))


def resolve_pulse_alert(db: Engine, pulse_id: int, *, by: str, note: str | None, actor: str,
                        now: datetime) -> AlertResolved:
    """Close a pulse alert once someone it went to has followed it up; the program summary counts only open ones.

    Only a holder of a role the workflow's `pulse.notify` names may resolve it (built-in: the coach and the talent
    team). The note is kept in the audit trail.
    """
    email = inputs.email(by, "--by")
    note = inputs.note(note, "--note")
    with use_case_transaction(db) as session:
        pulse = session.get(Pulse, pulse_id)
        if pulse is None:
            raise NotFound(f"no pulse {pulse_id}", details=["the pulse_alert notice names its pulse"])
        if not pulse.alert:
            raise SojournError(f"pulse {pulse_id} raised no alert; there is nothing to resolve")
        if pulse.resolved_at is not None:
            raise SojournError(f"the alert of pulse {pulse_id} was resolved already, at {instant(pulse.resolved_at)}")
        record = load_record(session, pulse.assignment_id)
        person = require_person(session, email, "--by")
        rules = record.definition.pulse
        role = _role_of(record, person, tuple(dict.fromkeys(rules.notify)) if rules else (), "resolve this alert")
        if not checkin_queries.resolve_pulse_alert(session, pulse_id, now):
            raise ConcurrentChange(f"the alert of pulse {pulse_id} was resolved at the same time; nothing was written")
        # an alert followed up needs no more telling: its notices not delivered yet are cancelled
        cancel_queued_notifications(session, assignment_id=pulse.assignment_id, kinds=(notices.NoticeKind.PULSE_ALERT,),
                                    pulse_id=pulse_id,
                                    reason="alert resolved before delivery")
        audit.append_event(session, pulse.assignment_id, audit.PULSE_ALERT_RESOLVED,
                           {"pulse": pulse_id, "by": person.email, "role": role, "note": _optional(note)},
                           actor=actor, at=now)
        return AlertResolved(id=pulse_id, assignment_id=pulse.assignment_id, alert_reason=pulse.alert_reason,
                             resolved_at=now, by=person.email, role=role, note=_optional(note))


def pulse_alert_reason(rules: PulseRules, answers: Mapping[str, int],
                       previous: Mapping[str, int] | None) -> str | None:
    """Why a pulse alerts (None: it does not): each answer at or below the threshold, each drop large enough."""
    reasons = [f"{q} {answers[q]} is at or below {rules.alert_at_or_below}" for q in PULSE_QUESTIONS
               if answers[q] <= rules.alert_at_or_below]
    if previous is not None:
        reasons += [f"{q} fell from {previous[q]} to {answers[q]}" for q in PULSE_QUESTIONS
                    if previous[q] - answers[q] >= rules.alert_drop]
    return "; ".join(reasons) or None


def _answers_of(pulse: Pulse | None) -> dict[str, int] | None:
    if pulse is None:
        return None
    return {"expectancy": pulse.expectancy, "instrumentality": pulse.instrumentality, "valence": pulse.valence}


def _send_pulse_alert(session: Session, record: AssignmentRecord, pulse: Pulse, rules: PulseRules,
                      now: datetime) -> list[str]:
    """Write pulse_alert to every `notify` role holder, in the pulse's own transaction; returns their emails."""
    assert pulse.alert_reason is not None
    answers = notices.PulseAnswers(pk(pulse), pulse.expectancy, pulse.instrumentality, pulse.valence, pulse.note)
    rows = [notices.pulse_alert(record.assignment, record.assignee, answers, pulse.alert_reason, role=role,
                                recipient=holder, now=now)
            for role in dict.fromkeys(rules.notify) if (holder := record.person_for(role)) is not None]
    insert_notifications(session, rows)
    return [row.recipient for row in rows]


def _open_record(session: Session, assignment_id: int) -> AssignmentRecord:
    record = load_record(session, assignment_id)
    stage = record.assignment.stage
    if record.definition.is_terminal(stage):
        raise SojournError(f"assignment {assignment_id} is {stage}; check-ins and pulses are closed")
    return record


def _role_of(record: AssignmentRecord, person: Person, roles: tuple[str, ...], what: str) -> str:
    """The first of `roles` that `person` holds in the assignment; refused when they hold none."""
    role = next((r for r in roles if (holder := record.person_for(r)) is not None and holder.id == person.id), None)
    if role is None:
        holders = ", ".join(f"the {r} {h.email}" for r in roles if (h := record.person_for(r)) is not None)
        raise SojournError(f"{person.email} may not {what} on assignment {record.assignment.id}; only {holders} "
                           "may")
    return role


def _goals_of_assignment(session: Session, assignment_id: int, progress: Mapping[int, int]) -> dict[int, str]:
    """The titles of the goals named, each of which must belong to the assignment."""
    goals = checkin_queries.goals_by_id(session, progress)
    problems = [f"--goal {g}: no goal {g}" if g not in goals else
                f"--goal {g}: goal {g} belongs to assignment {goals[g].assignment_id}, not {assignment_id}"
                for g in sorted(progress) if g not in goals or goals[g].assignment_id != assignment_id]
    if problems:
        raise NotFound(f"{len(problems)} goal(s) are not goals of assignment {assignment_id}; nothing was written",
                       details=[*problems, f"`sojourn assignment show {assignment_id}` lists its goals"])
    return {g: goals[g].title for g in progress}


def _optional(text: str | None) -> str | None:
    return text.strip() or None if text is not None else None
