"""Logging the contacts a workflow's cadences ask for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from engine.domain import inputs
from engine.domain.cadences import period_start_of
from engine.domain.errors import BadInput, SojournError
from engine.domain.notices import RECORDED_CADENCES, NoticeKind
from engine.domain.schedule import local_date
from engine.domain.views import Result
from engine.program import audit
from engine.program.people import require_person
from engine.program.records import AssignmentRecord, load_record
from engine.program.transactions import use_case_transaction as _transaction
from engine.store.migration_queries import cadence_starts_of
from engine.store.models import Contact, pk
from engine.store.queries import cancel_queued_notifications, stage_changes_of

LATEST_UTC_OFFSET = timedelta(hours=14)  # somewhere on Earth (Kiribati) it is already this much later than UTC


def _cancel_missed_contact_notices(session: Session, record: AssignmentRecord, kind: str, day: date) -> None:
    """A contact logged after its period's contact_missed was queued (in the grace days of a later recipient's
    zone, or while delivery was failing) cancels the notices of that period not sent yet."""
    assignment_id = pk(record.assignment)
    start = period_start_of(record.definition, kind, stage_changes_of(session, [assignment_id])[assignment_id],
                            record.assignee.tz, day, start=record.assignment.start,
                            started=cadence_starts_of(session.connection(), [assignment_id]).get((assignment_id, kind)))
    if start is not None:
        cancel_queued_notifications(session, assignment_id=assignment_id, kinds=[NoticeKind.CONTACT_MISSED],
                                    cadence=kind, period_start=start,
                                    reason="contact logged before delivery")


@dataclass(frozen=True)
class ContactLogged(Result):
    id: int
    assignment_id: int
    kind: str
    with_: str
    on: date
    notes: str


def log_contact(db: Engine, assignment_id: int, *, kind: str, with_email: str, on: str | None, notes: str | None,
                actor: str, now: datetime) -> ContactLogged:
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
        return ContactLogged(pk(contact), assignment_id, kind, person.email, day, contact.notes)
