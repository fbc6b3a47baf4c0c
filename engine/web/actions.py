"""What a signed link does: one registry entry per action, the checks every link passes, and the use cases it calls.

Nothing here imports Flask. A GET only reads (`preview`); a POST (`confirm`) claims the token id in `link_use` in a
transaction of its own, then calls the same use case as the command line with the person as the actor. A refused
use case releases the claim again, so the link stays usable and nothing is written.

Adding an action is one `LinkAction` member, one `ACTIONS` entry and, for the notices that carry it, one branch of
`engine.domain.link_rules.notice_action`. `describe(session, person, obj, now)` reads the object, raises
`LinkRefused` (403 not theirs, 404 unknown, 409 already done) and returns the `Preview` with the form's fields;
`perform(db, person, obj, form, now)` calls the part's use case with `actor=person.email` and returns `Done`. Its
`SojournError`s become refusals (NotFound 404, BadInput 400, others 409); a form value it cannot take raises
`FormRejected`, whose page shows the form again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlmodel import Session

from engine.delivery import feeds
from engine.delivery.links import LinkClaims, LinkRefused, LinkSigner, Refusal, link_url
from engine.domain import inputs, notices
from engine.domain.errors import BadInput, ConcurrentChange, NotFound, SojournError
from engine.domain.link_rules import LinkAction
from engine.domain.notices import CHECKIN_ROLES, PULSE_ROLE
from engine.domain.schedule import local_date, zone
from engine.domain.tasks import TaskStatus
from engine.domain.views import Result
from engine.program import checkins, contacts, plans
from engine.program.logging import get_logger
from engine.program.records import AssignmentRecord, load_record, load_records
from engine.program.tasks import complete_task
from engine.program.transactions import use_case_transaction
from engine.store import checkin_queries, link_queries, lookups, plan_queries
from engine.store.db import transaction
from engine.store.models import Assignment, Goal, Person, PlanChange, Pulse, Task, pk

log = get_logger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class FormField:
    """One input the confirm form asks for (a note, a date)."""

    name: str
    label: str
    kind: str = "text"  # an HTML input type, "textarea", "percent" (a whole number 0-100) or "radio" (`options`)
    value: str = ""
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class Preview:
    """What confirming will do, for the GET page."""

    title: str
    lines: list[str]
    button: str
    fields: list[FormField] = field(default_factory=list)


@dataclass(frozen=True)
class Done:
    """What a confirmed action did, for the page after the POST; `person_path` opens the person's page, the used
    link no longer does."""

    title: str
    lines: list[str]
    person_path: str | None = None


class FormRejected(LinkRefused):
    """A form value the action cannot take: the form is shown again (400), nothing is written, the link stays usable."""

    def __init__(self, message: str) -> None:
        super().__init__(Refusal.MALFORMED, message)


Describe = Callable[[Session, Person, Mapping[str, Any], datetime], Preview]
Perform = Callable[[Engine, Person, Mapping[str, Any], Mapping[str, str], datetime], Done]


@dataclass(frozen=True)
class ActionEntry:
    """One action a link can carry: how it is previewed (and refused) and which use case confirming it calls."""

    describe: Describe
    perform: Perform


# --- task done --------------------------------------------------------------------------------------------------


def _own_task(session: Session, person: Person, obj: Mapping[str, Any]) -> Task:
    task = session.get(Task, _int(obj, "task"))
    if task is None:
        raise LinkRefused(Refusal.UNKNOWN_OBJECT, "This task no longer exists.")
    if task.owner_id != person.id:
        raise LinkRefused(Refusal.OTHER_PERSON, "This task is not yours to mark done; its owner has their own link.")
    if task.status != TaskStatus.OPEN:
        raise LinkRefused(Refusal.ALREADY_DONE, f"Already done: the task “{task.title}” is {task.status}.")
    return task


def describe_task_done(session: Session, person: Person, obj: Mapping[str, Any], now: datetime) -> Preview:
    task = _own_task(session, person, obj)
    if _acknowledges_a_plan(task):
        return describe_plan_ack(session, person, _task_link(task)[1], now)
    return Preview(title=f"Mark “{task.title}” done", button="Mark done",
                   lines=[f"Task {task.id} of assignment #{task.assignment_id}, due {task.due_on.isoformat()}.",
                          "Confirming records it as done by you, with the note below if you write one."],
                   fields=[FormField("note", "Note (optional)", "textarea")])


def perform_task_done(db: Engine, person: Person, obj: Mapping[str, Any], form: Mapping[str, str],
                      now: datetime) -> Done:
    with use_case_transaction(db) as session:
        task = session.get(Task, _int(obj, "task"))
    if task is not None and _acknowledges_a_plan(task):
        return perform_plan_ack(db, person, _task_link(task)[1], form, now)
    view = complete_task(db, _int(obj, "task"), note=form.get("note", "").strip() or None,
                         actor=person.email, now=now)
    return Done(title="Task done", lines=[f"“{view.title}” (task {view.id}) is marked done by {person.email}."])


# --- contact held -----------------------------------------------------------------------------------------------


def _contact_partner(session: Session, person: Person, obj: Mapping[str, Any]) -> tuple[AssignmentRecord, Person]:
    record = _record(session, obj)
    kind = str(obj.get("kind", ""))
    cadence = next((c for c in record.definition.cadences if c.kind == kind), None)
    partner = record.person_for(cadence.with_role) if cadence else None
    if cadence is None or partner is None:
        raise LinkRefused(Refusal.UNKNOWN_OBJECT, "This assignment has no such recurring contact.")
    if person.id not in (record.assignee.id, partner.id):
        raise LinkRefused(Refusal.OTHER_PERSON, "Only the assignee or the contact's partner can log this contact.")
    return record, partner


def describe_contact_held(session: Session, person: Person, obj: Mapping[str, Any], now: datetime) -> Preview:
    record, partner = _contact_partner(session, person, obj)
    return Preview(title=f"Log a {obj['kind']} contact as held", button="Log contact",
                   lines=[f"Assignment #{record.assignment.id} ({record.assignee.name}): the {obj['kind']} contact "
                          f"with {partner.name} <{partner.email}>.",
                          "Confirming records that it happened on the day below."],
                   fields=[FormField("on", "Held on", "date", local_date(now, person.tz).isoformat()),
                           FormField("notes", "Notes (optional)", "textarea")])


def perform_contact_held(db: Engine, person: Person, obj: Mapping[str, Any], form: Mapping[str, str],
                         now: datetime) -> Done:
    with transaction(db) as session:
        record, partner = _contact_partner(session, person, obj)
    on = form.get("on", "").strip() or None
    view = contacts.log_contact(db, pk(record.assignment), kind=str(obj["kind"]), with_email=partner.email, on=on,
                                notes=form.get("notes", "").strip() or None, actor=person.email, now=now)
    return Done(title="Contact logged",
                lines=[f"The {view.kind} contact with {view.with_} on {view.on.isoformat()} is logged by "
                       f"{person.email}."])


# --- plan sign-off ----------------------------------------------------------------------------------------------


def _signable(session: Session, person: Person, obj: Mapping[str, Any]) -> AssignmentRecord:
    record = _record(session, obj)
    role = str(obj.get("role", ""))
    holder = record.person_for(role)
    if holder is None:
        raise LinkRefused(Refusal.UNKNOWN_OBJECT, "This assignment has no such role.")
    if holder.id != person.id:
        raise LinkRefused(Refusal.OTHER_PERSON, f"You do not hold the role {role} on this assignment, so you cannot "
                                                "sign the plan for it.")
    if _int(obj, "plan_version") != record.assignment.plan_version:
        raise LinkRefused(Refusal.ALREADY_DONE, "The plan has changed since this link was sent; open your page "
                                                "for a link to the current version.")
    if role in record.signed_roles:
        raise LinkRefused(Refusal.ALREADY_DONE, f"Already done: version {record.assignment.plan_version} of the "
                                                f"plan is signed for the {role}.")
    return record


def describe_plan_signoff(session: Session, person: Person, obj: Mapping[str, Any], now: datetime) -> Preview:
    record = _signable(session, person, obj)
    goals = [f"Goal: {g.title}; measure {g.measure}; target {g.target}; due {g.due.isoformat()}."
             for g in record.goals]
    return Preview(title=f"Sign plan version {record.assignment.plan_version} as {obj['role']}", button="Sign the plan",
                   lines=[f"Assignment #{record.assignment.id} ({record.assignee.name}, {record.assignment.home} to "
                          f"{record.assignment.host}).", *goals,
                          "Confirming records that you agree to this version of the plan."])


def perform_plan_signoff(db: Engine, person: Person, obj: Mapping[str, Any], form: Mapping[str, str],
                         now: datetime) -> Done:
    with transaction(db) as session:
        _signable(session, person, obj)
    view = plans.sign_plan(db, _int(obj, "assignment"), role=str(obj["role"]), by=person.email, actor=person.email,
                           now=now)
    if view.already_signed:
        raise LinkRefused(Refusal.ALREADY_DONE, "Already done: this plan version is signed for your role.")
    return Done(title="Plan signed", lines=[f"Version {view.plan_version} of the plan of assignment "
                                            f"#{view.assignment_id} is signed by {view.by} as {view.role}."])


# --- check-in -------------------------------------------------------------------------------------------------


def _open_for(session: Session, person: Person, obj: Mapping[str, Any], roles: tuple[str, ...],
              what: str) -> AssignmentRecord:
    """The assignment, when `person` holds one of `roles` on it and it is not closed."""
    record = _record(session, obj)
    if not any((holder := record.person_for(role)) is not None and holder.id == person.id for role in roles):
        names = " or ".join(f"the {role}" for role in roles)
        raise LinkRefused(Refusal.OTHER_PERSON, f"Only {names} can {what} for this assignment.")
    if record.definition.is_terminal(record.assignment.stage):
        raise LinkRefused(Refusal.ALREADY_DONE, f"Assignment #{record.assignment.id} is "
                                                f"{record.assignment.stage}; check-ins and pulses are closed.")
    return record


def _checkin_record(session: Session, person: Person, obj: Mapping[str, Any]) -> AssignmentRecord:
    return _open_for(session, person, obj, CHECKIN_ROLES, "record a check-in")


def _live_goals(record: AssignmentRecord) -> list[Goal]:
    """The goals of the current plan: a removed goal stays on record but is not checked in on."""
    return [g for g in record.goals if g.removed_at is None]


def _goal_field(goal_id: int | None) -> str:
    return f"goal_{goal_id}"


def describe_checkin(session: Session, person: Person, obj: Mapping[str, Any], now: datetime) -> Preview:
    """The check-in form; while the immersion days run it asks how the assignee and family are settling in, and
    progress per goal only after them."""
    record = _checkin_record(session, person, obj)
    settling_in = checkins.settling_in_until(record, now)
    optional = " (optional)" if settling_in is not None else ""
    goals = [FormField(_goal_field(g.id), f"{g.title}: progress in percent{optional}", "percent")
             for g in _live_goals(record)]
    opening = f"Assignment #{record.assignment.id} ({record.assignee.name}, {record.assignment.home} to " \
              f"{record.assignment.host})."
    if settling_in is not None:
        lines = [opening, *notices.immersion_lines(settling_in), "Feedback for the other side is welcome too."]
        note = FormField("note", "How the assignee and family are settling in", "textarea")
    else:
        lines = [opening, "Give each goal's progress from 0 to 100 (at least one; leave a goal empty to skip it), a "
                          "note and feedback for the other side."]
        note = FormField("note", "Note (optional)", "textarea")
    return Preview(title=f"Check in on assignment #{record.assignment.id}", button="Record the check-in",
                   lines=lines, fields=[*goals, note, FormField("feedback", "Feedback (optional)", "textarea")])


def checkin_progress(goal_ids: list[int], form: Mapping[str, str]) -> dict[int, int]:
    """Each filled percentage field of the form, by goal; a value that is not a whole number 0-100 is rejected."""
    progress = {}
    for goal_id in goal_ids:
        raw = form.get(_goal_field(goal_id), "").strip()
        if not raw:
            continue
        if not (raw.isdigit() and int(raw) in checkins.PERCENT_RANGE):
            raise FormRejected(f"Progress “{raw}” is not a whole percentage from 0 to 100.")
        progress[goal_id] = int(raw)
    return progress


def perform_checkin(db: Engine, person: Person, obj: Mapping[str, Any], form: Mapping[str, str],
                    now: datetime) -> Done:
    with transaction(db) as session:
        goal_ids = [pk(g) for g in _live_goals(_checkin_record(session, person, obj))]
    try:
        view = checkins.record_checkin(db, _int(obj, "assignment"), by=person.email,
                                       progress=checkin_progress(goal_ids, form), note=form.get("note"),
                                       feedback=form.get("feedback"), actor=person.email, now=now)
    except BadInput as exc:  # a progress the plan asks for and the form left out: shown with the form again
        raise FormRejected(exc.message) from None
    progress = [f"{p.title}: {p.percent}%." for p in view.progress]
    return Done(title="Check-in recorded",
                lines=[f"The check-in on assignment #{view.assignment_id} is recorded by {view.by} as "
                       f"{view.role}.", *progress])


# --- pulse -----------------------------------------------------------------------------------------------------

PULSE_LABELS = {"expectancy": "Expectancy: will your effort lead to the performance asked of you?",
                "instrumentality": "Instrumentality: will that performance lead to the promised reward?",
                "valence": "Valence: do you still value that reward?"}
PULSE_OPTIONS = tuple(str(value) for value in checkins.PULSE_RANGE)


def _pulse_record(session: Session, person: Person, obj: Mapping[str, Any]) -> AssignmentRecord:
    return _open_for(session, person, obj, (PULSE_ROLE,), "answer the expectancy pulse")


def describe_pulse(session: Session, person: Person, obj: Mapping[str, Any], now: datetime) -> Preview:
    record = _pulse_record(session, person, obj)
    questions = [FormField(q, f"{PULSE_LABELS[q]} 1 (not at all) to 5 (fully)", "radio", options=PULSE_OPTIONS)
                 for q in checkins.PULSE_QUESTIONS]
    return Preview(title=f"Expectancy pulse for assignment #{record.assignment.id}", button="Send my answers",
                   lines=[f"Assignment #{record.assignment.id} ({record.assignment.home} to "
                          f"{record.assignment.host}). Answer all three questions."],
                   fields=[*questions, FormField("note", "Note (optional)", "textarea")])


def pulse_answers(form: Mapping[str, str]) -> dict[str, int]:
    """The three answers of the form; a missing one, or one outside 1-5, is rejected."""
    answers = {}
    for question in checkins.PULSE_QUESTIONS:
        raw = form.get(question, "").strip()
        if raw not in PULSE_OPTIONS:
            raise FormRejected(f"Answer the {question} question with a value from 1 to 5.")
        answers[question] = int(raw)
    return answers


def perform_pulse(db: Engine, person: Person, obj: Mapping[str, Any], form: Mapping[str, str],
                  now: datetime) -> Done:
    answers = pulse_answers(form)
    view = checkins.record_pulse(db, _int(obj, "assignment"), by=person.email, note=form.get("note"),
                                 actor=person.email, now=now, **answers)
    return Done(title="Pulse recorded",
                lines=[f"Your pulse on assignment #{view.assignment_id} is recorded: expectancy "
                       f"{view.expectancy}, instrumentality {view.instrumentality}, valence {view.valence}."])


# --- plan acknowledgement -------------------------------------------------------------------------------------


def _acknowledgeable(session: Session, person: Person, obj: Mapping[str, Any]) -> tuple[AssignmentRecord,
                                                                                         PlanChange]:
    """The plan change the link asks its person to acknowledge, named by its version or by its acknowledgement task."""
    record = _record(session, obj)
    rules = record.definition.plan
    role = rules.acknowledge if rules is not None else None
    change = _plan_change(session, record, obj)
    if role is None or change is None or change.acknowledge_task_id is None:
        raise LinkRefused(Refusal.UNKNOWN_OBJECT, "This plan change asks nobody to acknowledge it.")
    holder = record.person_for(role)
    if holder is None or holder.id != person.id:
        raise LinkRefused(Refusal.OTHER_PERSON, f"Only the {role} of this assignment can acknowledge its plan "
                                                "changes.")
    if change.acknowledged_at is not None:
        raise LinkRefused(Refusal.ALREADY_DONE, f"Already done: plan version {change.plan_version} was acknowledged "
                                                f"by {change.acknowledged_by}.")
    return record, change


def _plan_change(session: Session, record: AssignmentRecord, obj: Mapping[str, Any]) -> PlanChange | None:
    assignment_id = pk(record.assignment)
    if "task" in obj:
        task_id = _int(obj, "task")
        return next((c for c in plan_queries.unacknowledged_plan_changes(session, assignment_id)
                     if c.acknowledge_task_id == task_id), None) or _acknowledged_by_task(session, record, task_id)
    return plan_queries.plan_change_of_version(session, assignment_id, _int(obj, "plan_version"))


def _acknowledged_by_task(session: Session, record: AssignmentRecord, task_id: int) -> PlanChange | None:
    """The change an acknowledgement task asked about, once it is no longer waiting (its key names the version)."""
    task = session.get(Task, task_id)
    if task is None or task.assignment_id != record.assignment.id or not task.key.startswith(notices.PLAN_ACK_TASK):
        return None
    version = task.key.removeprefix(notices.PLAN_ACK_TASK)
    if not version.isdigit():
        return None
    return plan_queries.plan_change_of_version(session, pk(record.assignment), int(version))


def describe_plan_ack(session: Session, person: Person, obj: Mapping[str, Any], now: datetime) -> Preview:
    record, change = _acknowledgeable(session, person, obj)
    pending = plan_queries.unacknowledged_plan_changes(session, pk(record.assignment))
    changes = [f"Version {c.plan_version}, changed on {c.changed_at.date().isoformat()}: {c.summary}"
               for c in pending]
    return Preview(title=f"Acknowledge plan version {change.plan_version}", button="Acknowledge",
                   lines=[f"Assignment #{record.assignment.id} ({record.assignee.name}, {record.assignment.home} to "
                          f"{record.assignment.host}).", *changes,
                          "Confirming records that you have heard of every change above."])


def perform_plan_ack(db: Engine, person: Person, obj: Mapping[str, Any], form: Mapping[str, str],
                     now: datetime) -> Done:
    view = plans.acknowledge_plan_change(db, _int(obj, "assignment"), by=person.email, actor=person.email, now=now)
    versions = ", ".join(str(v) for v in view.plan_versions)
    return Done(title="Plan change acknowledged",
                lines=[f"Plan version(s) {versions} of assignment #{view.assignment_id} are acknowledged by "
                       f"{view.by} as {view.role}."])


# --- pulse alert resolved ------------------------------------------------------------------------------------------


def _alerting_pulse(session: Session, person: Person, obj: Mapping[str, Any]) -> tuple[Pulse, AssignmentRecord]:
    """The pulse whose alert the link resolves, still open, for a person the alert went to."""
    pulse = session.get(Pulse, _int(obj, "pulse"))
    if pulse is None or not pulse.alert:
        raise LinkRefused(Refusal.UNKNOWN_OBJECT, "This pulse raised no alert.")
    if pulse.resolved_at is not None:
        raise LinkRefused(Refusal.ALREADY_DONE, f"Already done: this alert was resolved at "
                                                f"{local_date(pulse.resolved_at, person.tz).isoformat()}.")
    record = load_record(session, pulse.assignment_id)
    rules = record.definition.pulse
    told = (record.person_for(role) for role in (rules.notify if rules else ()))
    if not any(holder is not None and holder.id == person.id for holder in told):
        raise LinkRefused(Refusal.OTHER_PERSON, "Only those the alert went to can resolve it.")
    return pulse, record


def describe_alert_resolve(session: Session, person: Person, obj: Mapping[str, Any], now: datetime) -> Preview:
    pulse, record = _alerting_pulse(session, person, obj)
    return Preview(title=f"Resolve the pulse alert of assignment #{record.assignment.id}", button="Resolve",
                   lines=[f"{record.assignee.name}'s pulse of {local_date(pulse.at, person.tz).isoformat()}: "
                          f"{pulse.alert_reason}.",
                          "Confirming records that you have followed it up, with the note below if you write one."],
                   fields=[FormField("note", "What was done (optional)", "textarea")])


def perform_alert_resolve(db: Engine, person: Person, obj: Mapping[str, Any], form: Mapping[str, str],
                          now: datetime) -> Done:
    view = checkins.resolve_pulse_alert(db, _int(obj, "pulse"), by=person.email,
                                        note=form.get("note", "").strip() or None, actor=person.email, now=now)
    return Done(title="Pulse alert resolved",
                lines=[f"The alert of pulse {view.id} (assignment #{view.assignment_id}) is resolved by "
                       f"{view.by} as {view.role}."])


# --- the registry -----------------------------------------------------------------------------------------------

ACTIONS: dict[LinkAction, ActionEntry] = {
    LinkAction.TASK_DONE: ActionEntry(describe_task_done, perform_task_done),
    LinkAction.CONTACT_HELD: ActionEntry(describe_contact_held, perform_contact_held),
    LinkAction.PLAN_SIGNOFF: ActionEntry(describe_plan_signoff, perform_plan_signoff),
    LinkAction.CHECKIN: ActionEntry(describe_checkin, perform_checkin),
    LinkAction.PULSE: ActionEntry(describe_pulse, perform_pulse),
    LinkAction.PLAN_ACK: ActionEntry(describe_plan_ack, perform_plan_ack),
    LinkAction.ALERT_RESOLVE: ActionEntry(describe_alert_resolve, perform_alert_resolve),
}


# --- what every link goes through -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checked:
    claims: LinkClaims
    person: Person


def _check(session: Session, signer: LinkSigner, action_name: str, token: str, now: datetime) -> Checked:
    """Signature, expiry, the person and revocation; the same for every action and for the person's page."""
    claims = signer.read(action_name, token, now=now)
    person = lookups.person_by_email(session, claims.person)
    if person is None:
        raise LinkRefused(Refusal.OTHER_PERSON, "This link belongs to nobody Sojourn knows.", claims=claims)
    revoked = link_queries.revoked_before(session, pk(person))
    if revoked is not None and claims.issued_at <= revoked:
        raise LinkRefused(Refusal.EXPIRED, "This link was revoked. Ask the mobility team if you still need it.",
                          claims=claims, reason="revoked")
    return Checked(claims, person)


def _entry(claims: LinkClaims) -> ActionEntry:
    entry = ACTIONS.get(claims.action)
    if entry is None:
        raise LinkRefused(Refusal.MALFORMED, "This link does not lead to an action.", claims=claims)
    return entry


def preview(db: Engine, signer: LinkSigner, action_name: str, token: str, *, now: datetime) -> Preview:
    """What confirming the link would do; reads only (mail scanners follow links), so it never waits for writers."""
    with use_case_transaction(db, read_only=True) as session:
        checked = _check(session, signer, action_name, token, now)
        entry = _entry(checked.claims)
        if link_queries.link_used(session, checked.claims.token_id):
            raise LinkRefused(Refusal.ALREADY_DONE, "Already done: this link has been used.", claims=checked.claims)
        return _refusing(lambda: entry.describe(session, checked.person, checked.claims.object, now), checked.claims)


def confirm(db: Engine, signer: LinkSigner, action_name: str, token: str, form: Mapping[str, str], *,
            now: datetime) -> Done:
    """Do what the link says, once: the form must carry the link's own token; a second confirm writes nothing."""
    if form.get("token") != token:
        raise LinkRefused(Refusal.OTHER_PERSON if form.get("token") else Refusal.MALFORMED,
                          "This form was not sent from this link's own page.")
    with use_case_transaction(db) as session:
        checked = _check(session, signer, action_name, token, now)
        entry = _entry(checked.claims)
        # the preview's checks (whose object it is, whether it exists, whether it is still to do) guard the POST too
        _refusing(lambda: entry.describe(session, checked.person, checked.claims.object, now), checked.claims)
    claims, person = checked.claims, checked.person
    _claim(db, claims, person, now)
    try:
        done = _refusing(lambda: entry.perform(db, person, claims.object, form, now), claims)
    except Exception:  # refused or failed: the use case wrote nothing, so the link must stay usable
        with transaction(db) as session:
            link_queries.release_link(session, claims.token_id)
        raise
    log.info("link_confirmed", action=str(claims.action), person=person.email, token_id=claims.token_id)
    page = signer.mint(person.email, LinkAction.MY_PAGE, {}, now=now, until=claims.expires_at)
    return replace(done, person_path=link_url("", LinkAction.MY_PAGE, page))


def _claim(db: Engine, claims: LinkClaims, person: Person, now: datetime) -> None:
    try:
        with use_case_transaction(db) as session:
            if link_queries.link_used(session, claims.token_id):
                raise LinkRefused(Refusal.ALREADY_DONE, "Already done: this link has been used.", claims=claims)
            link_queries.claim_link(session, claims.token_id, person_id=pk(person), action=str(claims.action),
                                    now=now)
    except ConcurrentChange:
        raise LinkRefused(Refusal.ALREADY_DONE, "Already done: this link has been used.", claims=claims) from None


def _refusing(call: Callable[[], T], claims: LinkClaims) -> T:
    """A use case's refusal as a link refusal with the right status."""
    try:
        return call()
    except LinkRefused as exc:
        exc.claims = claims  # keeps its kind: a FormRejected shows the form again
        raise
    except NotFound as exc:
        raise LinkRefused(Refusal.UNKNOWN_OBJECT, exc.message, claims=claims) from None
    except BadInput as exc:
        raise LinkRefused(Refusal.MALFORMED, exc.message, claims=claims) from None
    except SojournError as exc:
        raise LinkRefused(Refusal.ALREADY_DONE, exc.message, claims=claims) from None


# --- the person's page --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageTask:
    """An open task on the person's page, due in their time zone, with a link to mark it done."""

    title: str
    assignment_id: int
    due_on: date
    due_local: str  # "YYYY-MM-DD HH:MM" where the person is
    url: str


@dataclass(frozen=True)
class OwedSignoff:
    """A plan version the person must sign for a role, with the link to review and sign it."""

    assignment_id: int
    role: str
    plan_version: int
    url: str


@dataclass(frozen=True)
class PersonPage:
    name: str
    email: str
    tz: str
    tasks: list[PageTask]
    signoffs: list[OwedSignoff]
    calendar_url: str  # the person's calendar feed, which outlives the links on the page
    checkins: list[dict[str, Any]] = field(default_factory=list)  # per assignment whose check-ins they see


def person_page(db: Engine, signer: LinkSigner, action_name: str, token: str, *, now: datetime) -> PersonPage:
    """The person's open tasks across assignments (due in their time zone) and plans awaiting their sign-off,
    each with a fresh link to act on it that expires with the link that opened the page (so following links
    never extends a link's life), and the address of their calendar feed. Any unexpired, unrevoked link of
    theirs opens it, unless it is a used-up action link."""
    with use_case_transaction(db, read_only=True) as session:
        checked = _check(session, signer, action_name, token, now)
        if checked.claims.action != LinkAction.MY_PAGE and link_queries.link_used(session, checked.claims.token_id):
            raise LinkRefused(Refusal.ALREADY_DONE, "This link has been used, so it opens nothing any more. Use a "
                                                    "newer message.", claims=checked.claims)
        person, until = checked.person, checked.claims.expires_at
        tasks = lookups.tasks_matching(session, owner_id=pk(person), status=TaskStatus.OPEN)
        tz = zone(person.tz)
        task_rows = [PageTask(t.title, t.assignment_id, t.due_on, t.due_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                              signer.url(person.email, *_task_link(t), now=now, until=until)) for t in tasks]
        signoffs = _owed_signoffs(session, signer, person, now, until)
        return PersonPage(person.name, person.email, person.tz, task_rows, signoffs,
                          calendar_url=feeds.calendar_url(session, signer, person),
                          checkins=_seen_checkins(session, person))


def _seen_checkins(session: Session, person: Person) -> list[dict[str, Any]]:
    """The check-ins of every assignment where the person is one whom check-ins concern (the two sides, and those
    the check-in cadence tells), newest first, with progress per goal, note and feedback; dates in their zone."""
    records = load_records(session, Assignment.id.in_(  # type: ignore[union-attr]
        lookups.assignment_ids_of_stakeholder(session, pk(person))))
    seen = [r for r in records if any((holder := r.person_for(role)) is not None and holder.id == person.id
                                      for role in checkins.checkin_audience(r.definition))]
    rows = checkin_queries.checkins_of(session, [pk(r.assignment) for r in seen])
    tz = zone(person.tz)
    return [{"assignment_id": r.assignment.id, "assignee": r.assignee.name,
             "checkins": [{**c.view(), "day": c.at.astimezone(tz).date().isoformat()}
                          for c in checkins.checkin_views(r, rows)]}
            for r in seen]


def _acknowledges_a_plan(task: Task) -> bool:
    """An acknowledgement task is done by acknowledging its plan change, so its reminders' "task done" links, and
    the person's page, lead to the acknowledgement."""
    return task.key.startswith(notices.PLAN_ACK_TASK)


def _task_link(task: Task) -> tuple[LinkAction, dict[str, Any]]:
    """A task's own action: an acknowledgement task is done by acknowledging its plan change."""
    if _acknowledges_a_plan(task):
        return LinkAction.PLAN_ACK, {"assignment": task.assignment_id, "task": task.id}
    return LinkAction.TASK_DONE, {"task": task.id}


def _owed_signoffs(session: Session, signer: LinkSigner, person: Person, now: datetime,
                   until: datetime) -> list[OwedSignoff]:
    """Plans the person must sign for a role before their assignment can leave its current stage."""
    ids = lookups.assignment_ids_of_stakeholder(session, pk(person))
    rows: list[OwedSignoff] = []
    for record in load_records(session, Assignment.id.in_(ids)):  # type: ignore[union-attr]
        for role in _signer_roles(record):
            holder = record.person_for(role)
            if holder is not None and holder.id == person.id and role not in record.signed_roles:
                obj = {"assignment": record.assignment.id, "role": role,
                       "plan_version": record.assignment.plan_version}
                rows.append(OwedSignoff(pk(record.assignment), role, record.assignment.plan_version,
                                        signer.url(person.email, LinkAction.PLAN_SIGNOFF, obj, now=now, until=until)))
    return rows


def _signer_roles(record: AssignmentRecord) -> list[str]:
    roles: list[str] = []
    for transition in record.definition.transitions_from(record.assignment.stage):
        for guard in transition.guards:
            if guard.name == "plan_signed_off":
                roles += [r for r in guard.params.get("roles", _plan_signers(record)) if r not in roles]
    return roles


def _plan_signers(record: AssignmentRecord) -> list[str]:
    """Who signs when the guard names nobody: the workflow's `plan.signers`."""
    rules = record.definition.plan
    return list(rules.signers) if rules is not None else []


# --- revocation ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinksRevoked(Result):
    """Whose links `revoke_person_links` ended: every one issued up to `revoked_before`."""

    person: str
    revoked_before: datetime


def revoke_person_links(db: Engine, email: str, *, now: datetime) -> LinksRevoked:
    """End every link the person has been sent so far, and their calendar feed; links minted after now work, and
    their feed gets a new address."""
    with use_case_transaction(db) as session:
        address = inputs.email(email, "--person")
        person = lookups.person_by_email(session, address)
        if person is None:
            raise NotFound(f"--person: no person with email {address}", details=["`sojourn person list` shows them"])
        link_queries.revoke_links(session, pk(person), now=now)
    log.info("links_revoked", person=person.email)
    return LinksRevoked(person.email, now)


def _record(session: Session, obj: Mapping[str, Any]) -> AssignmentRecord:
    try:
        return load_record(session, _int(obj, "assignment"))
    except NotFound:
        raise LinkRefused(Refusal.UNKNOWN_OBJECT, "This assignment no longer exists.") from None


def _int(obj: Mapping[str, Any], name: str) -> int:
    value = obj.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        raise LinkRefused(Refusal.MALFORMED, "This link is not one Sojourn sent.")
    return value
