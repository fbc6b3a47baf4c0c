"""A person's data: everything Sojourn holds about them (`person export`), and erasing them on request (`person erase`).

Erasure keeps the program's anonymous figures and the audit chain intact. The person row keeps its id under a
stable pseudonym; every copy of their email or name becomes that pseudonym; free text they wrote, or that carries
their name or email, is blanked; notices not sent to them are dropped and their links stop working. In the audit
trail the same rules rewrite the strings of each event (`audit.erase_strings`), whose hash does not change because
it covers salted digests of the strings, not the strings. Each chain touched gets a `person_erased` event saying who
erased, when and why. `docs/privacy.md` describes the design.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from engine.domain import inputs
from engine.domain.errors import BadInput, NotFound, SojournError
from engine.domain.link_rules import NoticeFacts, notice_action, notice_token_id
from engine.domain.views import Result
from engine.program import audit
from engine.program.logging import get_logger
from engine.program.records import AssignmentRecord, load_records
from engine.program.transactions import use_case_transaction
from engine.store import lookups, privacy_queries
from engine.store.db import is_sqlite
from engine.store.link_queries import revoke_links
from engine.store.models import Person, PersonErasure, pk
from engine.store.privacy_queries import column, rows_where

log = get_logger(__name__)

# keys of event details that hold free text; blanked in the events a person wrote (their `by`, else the actor)
FREE_TEXT_KEYS = frozenset({"note", "notes", "feedback", "reason", "impact", "left_reason", "summary", "title",
                            "measure", "target", "baseline", "aligned_to", "description", "removed_reason"})
# table -> (column naming the author, free-text columns): the same free text, as the tables keep it
AUTHORED_TEXT: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "transition": ("actor", ("reason",)),
    "task": ("completed_by", ("note",)),
    "contact": ("logged_by", ("notes",)),
    "checkin": ("person_id", ("note", "feedback")),
    "pulse": ("person_id", ("note",)),
    "outcome": ("recorded_by", ("impact", "left_reason")),
    "goal": ("created_by", ("title", "measure", "target", "baseline", "aligned_to", "removed_reason")),
    "plan_change": ("changed_by", ("summary",)),
    "activity": (None, ("description",)),
}
# free text kept whole unless it names the person: then blanked, as in the events (a count of promotions stays)
MENTIONING_TEXT = (("outcome", "promoted_to"),)
# columns that hold an email of whoever acted
IDENTITY_COLUMNS = (("transition", "actor"), ("task", "completed_by"), ("goal", "created_by"),
                    ("signoff", "recorded_by"), ("contact", "logged_by"), ("outcome", "recorded_by"),
                    ("competency_baseline", "recorded_by"), ("plan_change", "changed_by"),
                    ("plan_change", "acknowledged_by"), ("person_erasure", "erased_by"), ("objective", "created_by"))
# text Sojourn wrote itself: each mention becomes the pseudonym, the rest stays
GENERATED_TEXT = (("task", "title"), ("task", "description"), ("outbox", "subject"), ("outbox", "body"),
                  ("outbox", "calendar"), ("outbox", "last_error"), ("person_erasure", "reason"))
JSON_TEXT = (("plan_change", "snapshot"),)


@dataclass(frozen=True)
class ErasedPerson:
    """The person being erased, and the pseudonym that replaces them."""

    person_id: int
    email: str
    name: str
    pseudonymous_email: str
    pseudonymous_name: str

    @property
    def needles(self) -> tuple[str, str]:
        return self.email, self.name

    def _patterns(self) -> list[tuple[re.Pattern[str], str]]:
        return [(re.compile(re.escape(self.email), re.IGNORECASE), self.pseudonymous_email),
                (re.compile(rf"(?<!\w){re.escape(self.name)}(?!\w)", re.IGNORECASE), self.pseudonymous_name)]

    def mentioned_in(self, text: str) -> bool:
        return any(pattern.search(text) for pattern, _ in self._patterns())

    def substituted(self, text: str) -> str:
        for pattern, pseudonym in self._patterns():
            text = pattern.sub(pseudonym, text)
        return text

    def erased_value(self, value: str, key: str, *, authored: bool) -> str:
        """One string after erasure: their email or name becomes the pseudonym; text that mentions them, or free
        text they wrote, becomes blank."""
        if value.casefold() == self.email.casefold():
            return self.pseudonymous_email
        if value.casefold() == self.name.casefold():
            return self.pseudonymous_name
        if self.mentioned_in(value) or (authored and key in FREE_TEXT_KEYS):
            return ""
        return value


# --- export -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeldRole(Result):
    """A role the person holds (or held) in one assignment."""

    assignment_id: int
    role: str
    stage: str
    workflow: str
    start: date
    end: date


@dataclass(frozen=True)
class PersonErased(Result):
    """Whom `erase_person` erased, under which pseudonym, and the audit chains it touched."""

    person_id: int
    email: str
    name: str
    erased_at: datetime  # in UTC, as the export gives it
    erased_by: str
    reason: str
    assignments: tuple[int, ...]
    events_rewritten: int


def export_person(db: Engine, email: str) -> dict[str, Any]:
    """Everything Sojourn holds about one person, as one JSON-ready document: the export is the document itself,
    one key per kind of record, so it is returned as built."""
    address = inputs.email(email)
    with use_case_transaction(db) as session:
        person = _existing_person(session, address, erased_too=True)  # what is left of them is theirs to see
        person_id = pk(person)
        assignments = _assignment_ids(session, person_id)
        roles = _roles(session, person_id)
        checkin_rows = rows_where(session, "checkin", column("checkin", "person_id") == person_id)
        document = {
            "person": {"id": person_id, "email": person.email, "name": person.name, "tz": person.tz,
                       "digest": person.digest},
            "erasure": _jsonable(rows_where(session, "person_erasure",
                                            column("person_erasure", "person_id") == person_id)),
            "roles": [role.view() for role in roles],
            "tasks": rows_where(session, "task", (column("task", "owner_id") == person_id) |
                                (column("task", "completed_by") == person.email)),
            "goals": rows_where(session, "goal", column("goal", "assignment_id").in_(_as_assignee(roles))),
            "stage_changes": rows_where(session, "transition", column("transition", "actor") == person.email),
            "contacts": rows_where(session, "contact", (column("contact", "with_person_id") == person_id) |
                                   (column("contact", "logged_by") == person.email)),
            "checkins": _with_progress(session, checkin_rows),
            "feedback_received": _feedback_received(session, person_id, roles),
            "pulses": rows_where(session, "pulse", column("pulse", "person_id") == person_id),
            "signoffs": rows_where(session, "signoff", (column("signoff", "person_id") == person_id) |
                                   (column("signoff", "recorded_by") == person.email)),
            "outcomes": _with_competencies(session, rows_where(
                session, "outcome", column("outcome", "assignment_id").in_(_as_assignee(roles)) |
                (column("outcome", "recorded_by") == person.email))),
            "competency_baselines": rows_where(
                session, "competency_baseline",
                column("competency_baseline", "assignment_id").in_(_as_assignee(roles)) |
                (column("competency_baseline", "recorded_by") == person.email)),
            "notices": rows_where(session, "outbox", column("outbox", "recipient") == person.email),
            "objectives": rows_where(session, "objective", (column("objective", "owner_id") == person_id) |
                                     (column("objective", "created_by") == person.email)),
            "links": _links(session, person),
            "audit_events": [_event_view(row) for row in
                             privacy_queries.events_mentioning(session, person.email, [person.email, person.name])],
            "assignments": sorted(assignments),
        }
    jsonable: dict[str, Any] = _jsonable(document)
    return jsonable


def _roles(session: Session, person_id: int) -> list[HeldRole]:
    roles = [HeldRole(pk(r.assignment), role, r.assignment.stage, r.workflow.name, r.assignment.start,
                      r.assignment.end)
             for r in _records_of(session, person_id)
             for role, holder in sorted(r.stakeholders.items()) if holder.id == person_id]
    return sorted(roles, key=lambda r: (r.assignment_id, r.role))


def _as_assignee(roles: Iterable[HeldRole]) -> list[int]:
    return [r.assignment_id for r in roles if r.role == "assignee"]


def _with_progress(session: Session, checkins: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ids = [c["id"] for c in checkins]
    progress = rows_where(session, "goal_progress", column("goal_progress", "checkin_id").in_(ids))
    return [{**c, "progress": [p for p in progress if p["checkin_id"] == c["id"]]} for c in checkins]


def _feedback_received(session: Session, person_id: int, roles: list[HeldRole]) -> list[dict[str, Any]]:
    """Check-ins by the other side of the two that give each other feedback (assignee and host manager)."""
    where = [r.assignment_id for r in roles if r.role in ("assignee", "host_manager")]
    rows = rows_where(session, "checkin", column("checkin", "assignment_id").in_(where),
                      column("checkin", "person_id") != person_id)
    return [{k: row[k] for k in ("id", "assignment_id", "role", "at", "feedback")} for row in rows]


def _with_competencies(session: Session, outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ids = [o["id"] for o in outcomes]
    ratings = rows_where(session, "outcome_competency", column("outcome_competency", "outcome_id").in_(ids))
    return [{**o, "competencies": [r for r in ratings if r["outcome_id"] == o["id"]]} for o in outcomes]


def _links(session: Session, person: Person) -> dict[str, Any]:
    """Links are minted when a notice is sent and never stored: the issued ones are those of the notices sent to
    the person that carry one (their token ids), beside the uses recorded and any revocation."""
    used = rows_where(session, "link_use", column("link_use", "person_id") == person.id)
    used_ids = {u["token_id"] for u in used}
    issued = []
    for notice in rows_where(session, "outbox", column("outbox", "recipient") == person.email,
                             column("outbox", "sent_at").is_not(None)):
        action, obj = notice_action(NoticeFacts.of(notice))
        token_id = notice_token_id(notice["key"])
        issued.append({"notice": notice["key"], "action": str(action), "object": obj, "token_id": token_id,
                       "issued_at": notice["sent_at"], "used": token_id in used_ids})
    return {"issued": issued, "used": used,
            "revocations": rows_where(session, "link_revocation",
                                      column("link_revocation", "person_id") == person.id)}


def _event_view(row: Any) -> dict[str, Any]:
    event = audit.ChainEvent(**row._mapping)
    view = event.export_view()
    view.pop("committed")
    return view


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


# --- erasure ----------------------------------------------------------------------------------------------------


def erase_person(db: Engine, email: str, *, reason: str, actor: str, now: datetime) -> PersonErased:
    """Pseudonymise a person who holds no role in a running assignment, scrub what mentions them, and record it."""
    address, why = _checked(email, reason)
    with use_case_transaction(db) as session:
        person = _existing_person(session, address)
        _refuse_running_roles(session, person)
        token = secrets.token_hex(4)
        subject = ErasedPerson(pk(person), person.email, person.name, f"erased-{token}@{audit.ERASED_DOMAIN}",
                               f"{audit.ERASED_NAME_PREFIX}{token}")
        roles = _roles(session, subject.person_id)
        _scrub_tables(session, subject, now)
        erased_events, hashed_in_clear = _erase_events(session, subject)
        recorded_why = subject.substituted(why)
        actor = subject.substituted(actor)  # someone erasing themselves is recorded by their pseudonym
        session.add(PersonErasure(person_id=subject.person_id, erased_at=now, erased_by=actor, reason=recorded_why))
        person.email, person.name = subject.pseudonymous_email, subject.pseudonymous_name
        session.add(person)
        session.flush()
        chains = sorted({r.assignment_id for r in roles} | set(erased_events))
        for assignment_id in chains:
            audit.append_event(session, assignment_id, audit.PERSON_ERASED,
                               {"person": subject.pseudonymous_email, "reason": recorded_why,
                                "events": erased_events.get(assignment_id, []),
                                "hashed_in_clear": hashed_in_clear.get(assignment_id, [])}, actor=actor, at=now)
    if is_sqlite(db):
        privacy_queries.compact_sqlite(db)
    log.info("person erased", person=subject.person_id, actor=actor)
    return PersonErased(subject.person_id, subject.pseudonymous_email, subject.pseudonymous_name, now.astimezone(UTC),
                        actor, recorded_why, tuple(chains), sum(len(seqs) for seqs in erased_events.values()))


def _checked(email: str, reason: str) -> tuple[str, str]:
    """The email and the reason, each checked; both problems reported at once."""
    checks: list[Callable[[], str]] = [lambda: inputs.email(email), lambda: inputs.text(reason, "--reason")]
    checked: list[str] = []
    problems: list[str] = []
    for check in checks:
        try:
            checked.append(check())
        except BadInput as problem:
            problems.append(problem.message)
    if problems:
        raise BadInput(problems[0], details=problems[1:])
    return checked[0], checked[1]


def _existing_person(session: Session, email: str, *, erased_too: bool = False) -> Person:
    """The person with this email; one already erased (named by their pseudonym) only if `erased_too`."""
    person = lookups.person_by_email(session, email)
    if person is None:
        raise NotFound(f"no person {email}", details=["`sojourn person list` shows them"])
    if not erased_too and rows_where(session, "person_erasure",
                                     column("person_erasure", "person_id") == pk(person)):
        raise SojournError(f"{email} is the pseudonym of a person already erased")
    return person


def _records_of(session: Session, person_id: int) -> list[AssignmentRecord]:
    """The assignments in which the person holds a role, as assignee or stakeholder."""
    return load_records(session, privacy_queries.held_by(person_id))


def _assignment_ids(session: Session, person_id: int) -> set[int]:
    return {pk(r.assignment) for r in _records_of(session, person_id)}


def _refuse_running_roles(session: Session, person: Person) -> None:
    """Erasure waits until the person holds no role in an assignment still running: someone must take it over."""
    held = [(r, role) for r in _records_of(session, pk(person)) if not r.definition.is_terminal(r.assignment.stage)
            for role, holder in sorted(r.stakeholders.items()) if holder.id == person.id]
    if not held:
        return
    details = []
    for record, role in held:
        a = record.assignment
        if role == "assignee":
            details.append(f"assignment {a.id} ({a.stage}): assignee; it must end first (completed, or "
                           f"`sojourn advance {a.id} --to cancelled --reason TEXT`)")
        else:
            details.append(f"assignment {a.id} ({a.stage}): {role}; hand it over with `sojourn assignment "
                           f"set-stakeholder {a.id} {role}=EMAIL --reason TEXT`")
    raise SojournError(f"{person.email} holds {len(held)} role(s) in running assignments; nothing was erased",
                       details=details)


def _scrub_tables(session: Session, subject: ErasedPerson, now: datetime) -> None:
    """Every table but the audit trail: the person's free text blanked, also where notices to others quoted it;
    mentions blanked or replaced; their email replaced where it names who acted; their queued notices and links
    dropped."""
    quoted = _authored_texts(session, subject)
    for table, (author, columns) in AUTHORED_TEXT.items():
        if author is not None:
            privacy_queries.blank_where(session, table, columns, author,
                                        subject.person_id if author == "person_id" else subject.email)
    for table, (_, columns) in AUTHORED_TEXT.items():
        for name in columns:
            _blank_mentions(session, subject, table, name)
    for table, name in MENTIONING_TEXT:
        _blank_mentions(session, subject, table, name)
    privacy_queries.drop_queued_notices(session, subject.email)
    privacy_queries.blank_sent_notices(session, subject.email, subject.pseudonymous_email)
    for table, name in IDENTITY_COLUMNS:
        privacy_queries.replace_equal(session, table, name, subject.email, subject.pseudonymous_email)
    for table, name in GENERATED_TEXT:
        for row_id, value in privacy_queries.text_rows_containing(session, table, name, [*subject.needles, *quoted]):
            scrubbed = subject.substituted(value)
            for text in quoted:
                scrubbed = scrubbed.replace(text, "")
            if scrubbed != value:
                privacy_queries.set_value(session, table, row_id, name, scrubbed)
    for table, name in JSON_TEXT:
        for row_id, value in privacy_queries.text_rows_containing(session, table, name, subject.needles):
            privacy_queries.set_value(session, table, row_id, name, _blank_json_mentions(value, subject))
    privacy_queries.drop_link_uses(session, subject.person_id)
    revoke_links(session, subject.person_id, now=now)


QUOTED_MINIMUM = 8  # shorter texts they wrote ("ok", "done") are left where notices quote them: too common to tell


def _authored_texts(session: Session, subject: ErasedPerson) -> list[str]:
    """The free text the person wrote, longest first, to take out of notices that quoted it (a pulse alert quotes
    the pulse's note)."""
    found: set[str] = set()
    for table, (author, columns) in AUTHORED_TEXT.items():
        if author is None:
            continue
        value = subject.person_id if author == "person_id" else subject.email
        for row in rows_where(session, table, column(table, author) == value):
            found.update(row[c] for c in columns if isinstance(row[c], str) and len(row[c]) >= QUOTED_MINIMUM)
    return sorted(found, key=len, reverse=True)


def _blank_mentions(session: Session, subject: ErasedPerson, table: str, name: str) -> None:
    for row_id, value in privacy_queries.text_rows_containing(session, table, name, subject.needles):
        if isinstance(value, str) and subject.mentioned_in(value):
            privacy_queries.set_value(session, table, row_id, name, "")


def _blank_json_mentions(value: Any, subject: ErasedPerson) -> Any:
    if isinstance(value, str):
        return "" if subject.mentioned_in(value) else value
    if isinstance(value, dict):
        return {k: _blank_json_mentions(v, subject) for k, v in value.items()}
    if isinstance(value, list):
        return [_blank_json_mentions(v, subject) for v in value]
    return value


def _erase_events(session: Session, subject: ErasedPerson) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    """Rewrite the strings of every event that names the person; returns assignment id -> the seqs rewritten, and
    assignment id -> those of them written before commitments (hashed in clear)."""
    rewritten: dict[int, list[int]] = {}
    in_clear: dict[int, list[int]] = {}
    for row in privacy_queries.events_mentioning(session, subject.email, subject.needles):
        event = audit.ChainEvent(**row._mapping)
        replacements = event_replacements(event, subject)
        if not replacements:
            continue
        erased = audit.erase_strings(event, replacements)
        assert event.id is not None
        privacy_queries.rewrite_event(session, event.id, actor=erased.actor, details=erased.details,
                                      erased=erased.erased)
        rewritten.setdefault(event.assignment_id, []).append(event.seq)
        if audit.Erasure.read(erased.erased).clear_before:
            in_clear.setdefault(event.assignment_id, []).append(event.seq)
    return rewritten, in_clear


def event_replacements(event: audit.ChainEvent, subject: ErasedPerson) -> dict[str, str]:
    """path -> new value of each string of the event that the erasure changes (by the rules of `erased_value`)."""
    details = json.loads(event.details)
    author = details.get("by") if isinstance(details.get("by"), str) else event.actor
    authored = author.casefold() == subject.email.casefold()
    found = {}
    for path, value in audit.string_leaves(event.actor, details):
        new = subject.erased_value(value, path.rsplit("/", 1)[-1], authored=authored and path != "actor")
        if new != value:
            found[path] = new
    return found
