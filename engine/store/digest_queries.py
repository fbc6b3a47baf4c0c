"""The statements of digests: holding informational notices, gathering them into one row, and releasing them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import CursorResult, bindparam, update
from sqlalchemy import select as core_select
from sqlmodel import Session, col, select

from engine.domain.digests import DigestChoice
from engine.domain.notices import NoticeStatus
from engine.store.models import Assignment, Outbox, Person
from engine.store.queries import digest_candidate


class WaitingNotice(NamedTuple):
    """A due notice that its recipient's digest holds, and what its digest instant is worked out from."""

    outbox_id: int
    deliver_at: datetime
    digest: str
    tz: str
    workflow_id: int


class HeldNotice(NamedTuple):
    """A held notice whose digest instant has come, with its recipient's person row's facts."""

    outbox_id: int
    assignment_id: int
    recipient: str
    role: str
    subject: str
    body: str
    digest_at: datetime
    person_id: int
    digest: str
    tz: str


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount or 0)


def anyone_takes_digests(session: Session) -> bool:
    """anyone_takes_digests: whether any person has chosen a digest; when nobody has, gathering has nothing to do."""
    return session.exec(select(Person.id).where(col(Person.digest) != DigestChoice.OFF).limit(1)).first() is not None


def notices_waiting_for_digest(session: Session, now: datetime, limit: int) -> list[WaitingNotice]:
    """notices_waiting_for_digest: pending informational notices due by `now` whose recipient takes digests."""
    statement = (core_select(col(Outbox.id), col(Outbox.deliver_at), col(Person.digest), col(Person.tz),
                             col(Assignment.workflow_id))
                 .join(Person, col(Person.email) == col(Outbox.recipient))
                 .join(Assignment, col(Assignment.id) == col(Outbox.assignment_id))
                 .where(col(Outbox.status) == NoticeStatus.PENDING, col(Outbox.next_attempt_at) <= now,
                        digest_candidate(), col(Person.digest) != DigestChoice.OFF)
                 .order_by(col(Outbox.next_attempt_at), col(Outbox.id)).limit(limit))
    return [WaitingNotice(*row) for row in session.execute(statement).all()]


def hold_for_digest(session: Session, holds: Sequence[tuple[int, datetime]]) -> None:
    """hold_for_digest: hold each (outbox id, digest instant) pair's notice, if still pending, until that instant."""
    if not holds:
        return
    outbox = Outbox.__table__  # type: ignore[attr-defined]
    statement = (update(outbox).where(outbox.c.id == bindparam("held_id"), outbox.c.status == NoticeStatus.PENDING)
                 .values(status=NoticeStatus.HELD, next_attempt_at=bindparam("held_until")))
    session.connection().execute(statement, [{"held_id": i, "held_until": at} for i, at in holds])


def held_notices_due(session: Session, now: datetime, limit: int) -> list[HeldNotice]:
    """held_notices_due: held notices whose digest instant has come, by recipient, instant and order written."""
    statement = (core_select(col(Outbox.id), col(Outbox.assignment_id), col(Outbox.recipient), col(Outbox.role),
                             col(Outbox.subject), col(Outbox.body), col(Outbox.next_attempt_at), col(Person.id),
                             col(Person.digest), col(Person.tz))
                 .join(Person, col(Person.email) == col(Outbox.recipient))
                 .where(col(Outbox.status) == NoticeStatus.HELD, col(Outbox.next_attempt_at) <= now)
                 .order_by(col(Outbox.recipient), col(Outbox.next_attempt_at), col(Outbox.deliver_at),
                           col(Outbox.id)).limit(limit))
    return [HeldNotice(*row) for row in session.execute(statement).all()]


def mark_gathered(session: Session, digest_key: str, outbox_ids: Sequence[int]) -> int:
    """mark_gathered: the held notices among `outbox_ids` now go with digest `digest_key`; returns how many.

    Concurrency contract. One UPDATE conditional on `status = 'held'`: of two gatherers of the same notices (two
    daemons on PostgreSQL) the second changes nothing, and as both name the same deterministic key it adds nothing.
    """
    statement = (update(Outbox).where(col(Outbox.id).in_(list(outbox_ids)), col(Outbox.status) == NoticeStatus.HELD)
                 .values(status=NoticeStatus.GATHERED, digest_key=digest_key)
                 .execution_options(synchronize_session=False))
    return _rowcount(session.execute(statement))


def digest_still_open(session: Session, digest_key: str) -> bool:
    """digest_still_open: whether the digest `digest_key` may still take notices: not sent, tried or being sent.

    Concurrency contract. The row is read FOR UPDATE, so on PostgreSQL a claim (SKIP LOCKED) passes it by until the
    gathering commits, and a gathering that comes after a claim sees the claim.
    """
    statement = (select(Outbox).where(col(Outbox.key) == digest_key).with_for_update()
                 .execution_options(populate_existing=True))
    row = session.exec(statement).first()
    return row is not None and row.status == NoticeStatus.PENDING and row.attempts == 0 and row.claimed_by is None


def hold_until(session: Session, outbox_ids: Sequence[int], at: datetime) -> None:
    """hold_until: the held notices among `outbox_ids` wait for the digest at `at` instead."""
    session.execute(update(Outbox).where(col(Outbox.id).in_(list(outbox_ids)), col(Outbox.status) == NoticeStatus.HELD)
                    .values(next_attempt_at=at).execution_options(synchronize_session=False))


def notices_in_digest(session: Session, digest_key: str) -> list[Outbox]:
    """notices_in_digest: the notices a digest carries (gathered into it, or sent with it), in the order written;
    one cancelled after gathering is left out."""
    statement = (select(Outbox).where(col(Outbox.digest_key) == digest_key,
                                      col(Outbox.status).in_((NoticeStatus.GATHERED, NoticeStatus.SENT)))
                 .order_by(col(Outbox.deliver_at), col(Outbox.id)).execution_options(populate_existing=True))
    return list(session.exec(statement).all())


def mark_sent_with_digest(session: Session, digest_key: str, outbox_ids: Sequence[int], now: datetime) -> int:
    """mark_sent_with_digest: the notices a sent digest carried are sent, at `now`.

    One cancelled while the digest was being delivered is marked sent too, as `mark_delivery` does for a single
    notice: it did reach its recipient.
    """
    statement = (update(Outbox).where(col(Outbox.id).in_(list(outbox_ids)), col(Outbox.digest_key) == digest_key,
                                      col(Outbox.status).in_((NoticeStatus.GATHERED, NoticeStatus.CANCELLED)))
                 .values(status=NoticeStatus.SENT, sent_at=now, attempts=1)
                 .execution_options(synchronize_session=False))
    return _rowcount(session.execute(statement))


def release_held_notices(session: Session, recipient: str, now: datetime) -> int:
    """release_held_notices: the notices held for `recipient`'s digest become pending, due at `now`.

    With digests off they go at the next sweep; with another period chosen the next gathering holds them again,
    until that period's digest.
    """
    statement = (update(Outbox).where(col(Outbox.recipient) == recipient, col(Outbox.status) == NoticeStatus.HELD)
                 .values(status=NoticeStatus.PENDING, next_attempt_at=now)
                 .execution_options(synchronize_session=False))
    return _rowcount(session.execute(statement))
