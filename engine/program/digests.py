"""Digests: holding a person's informational notices and gathering them, at their digest instant, into one notice.

Gathering happens in one transaction: the digest row is written (its key is the person and the instant, so a
gathering repeated after a crash finds the row it wrote) and every notice it carries is marked as gathered into it.
A crash before the commit leaves the notices held, to be gathered again; after it, the dispatcher sends the digest
like any other notice, and the notices it carries are marked sent with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import groupby

from sqlalchemy import Engine
from sqlmodel import Session

from engine.domain import inputs
from engine.domain.digests import (
    DigestChoice,
    digest_body,
    digest_instant,
    digest_key,
    digest_subject,
    next_digest_instant,
)
from engine.domain.errors import BadInput, NotFound
from engine.domain.notices import NewNotice, NoticeKind
from engine.domain.views import Result
from engine.program.records import definition_of
from engine.program.transactions import use_case_transaction
from engine.store import digest_queries, lookups
from engine.store.digest_queries import HeldNotice, WaitingNotice
from engine.store.models import Workflow
from engine.store.queries import insert_notifications

GATHER_BATCH = 1000  # notices read per statement; a gathering reads batches until none is left


def gather_digests(session: Session, now: datetime) -> int:
    """Hold the informational notices due by `now` whose recipients take digests, then write the digests whose
    instant has come; returns how many digests were written."""
    if not digest_queries.anyone_takes_digests(session):
        return 0
    hours: dict[int, int] = {}
    while waiting := digest_queries.notices_waiting_for_digest(session, now, GATHER_BATCH):
        digest_queries.hold_for_digest(session, [(n.outbox_id, _digest_at(session, n, now, hours)) for n in waiting])
    written = 0
    while held := digest_queries.held_notices_due(session, now, GATHER_BATCH):
        for (_recipient, _at), notices in groupby(held, key=lambda n: (n.recipient, n.digest_at)):
            written += _gather(session, list(notices), now)
    return written


def _digest_at(session: Session, notice: WaitingNotice, now: datetime, hours: dict[int, int]) -> datetime:
    if notice.workflow_id not in hours:
        workflow = session.get(Workflow, notice.workflow_id)
        assert workflow is not None, "an assignment's workflow is never deleted"
        hours[notice.workflow_id] = definition_of(workflow).reminders.local_hour
    return digest_instant(DigestChoice(notice.digest), max(notice.deliver_at, now),
                          local_hour=hours[notice.workflow_id], tz=notice.tz)


def _gather(session: Session, notices: Sequence[HeldNotice], now: datetime) -> int:
    first = notices[0]
    key = digest_key(first.person_id, first.digest_at)
    digest = NewNotice(key=key, kind=NoticeKind.DIGEST, assignment_id=first.assignment_id, task_id=None,
                       recipient=first.recipient, role=", ".join(sorted({n.role for n in notices})),
                       subject=digest_subject(first.digest, first.digest_at, first.tz),
                       body=digest_body([(n.subject, n.body, None) for n in notices]), created_at=now,
                       deliver_at=first.digest_at)
    ids = [n.outbox_id for n in notices]
    written = insert_notifications(session, [digest])
    if not written and not digest_queries.digest_still_open(session, key):
        # held late (their digest had gone when they were held at its very instant): they wait for the next one
        digest_queries.hold_until(session, ids, next_digest_instant(DigestChoice(first.digest), first.digest_at,
                                                                    first.tz))
        return 0
    digest_queries.mark_gathered(session, key, ids)
    return written


# --- choosing a digest -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonDigest(Result):
    """The person as `set_person_digest` left them, and how many held notices it released."""

    id: int | None
    email: str
    name: str
    tz: str
    digest: str
    released: int


def set_person_digest(db: Engine, email: str, digest: str, *, now: datetime) -> PersonDigest:
    """Choose how a person receives informational notices; notices held for their digest are released, to go at the
    next sweep (digests off) or to wait for the new period's digest."""
    address = inputs.email(email)
    if digest not in tuple(DigestChoice):
        raise BadInput(f"--digest: {digest!r} is not one of {', '.join(DigestChoice)}")
    with use_case_transaction(db) as session:
        person = lookups.person_by_email(session, address)
        if person is None:
            raise NotFound(f"no person with email {address}",
                           details=[f"add them first: sojourn person add {address} --name 'Full Name' --tz Area/City"])
        released = 0
        if person.digest != digest:
            person.digest = digest
            released = digest_queries.release_held_notices(session, person.email, now)
        return PersonDigest(person.id, person.email, person.name, person.tz, person.digest, released)
