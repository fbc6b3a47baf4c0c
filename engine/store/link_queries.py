"""The SQL of signed links: claiming a token id once, releasing it when the action was refused, revocations."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Session, col, select

from engine.store.models import LinkRevocation, LinkUse


def link_used(session: Session, token_id: str) -> bool:
    return session.exec(select(LinkUse.id).where(LinkUse.token_id == token_id)).first() is not None


def claim_link(session: Session, token_id: str, *, person_id: int, action: str, now: datetime) -> None:
    """Record the token id as used; a concurrent claim of the same id fails the flush on the unique constraint."""
    session.add(LinkUse(token_id=token_id, used_at=now, person_id=person_id, action=action))
    session.flush()


def release_link(session: Session, token_id: str) -> None:
    """Make a claimed token usable again: its action was refused and wrote nothing."""
    session.execute(delete(LinkUse).where(col(LinkUse.token_id) == token_id))


def revoked_before(session: Session, person_id: int) -> datetime | None:
    return session.exec(select(LinkRevocation.revoked_before)
                        .where(LinkRevocation.person_id == person_id)).one_or_none()


def revoke_links(session: Session, person_id: int, *, now: datetime) -> None:
    """Refuse every link of the person issued up to `now`, and their calendar feed; links minted later work again.

    The instant only moves forward, and every revocation moves it (by a microsecond at least, should the clock
    stand still or step back): a calendar feed is valid only under the instant it was issued with, so a feed once
    revoked never answers again."""
    row = session.exec(select(LinkRevocation).where(LinkRevocation.person_id == person_id)).one_or_none()
    if row is None:
        session.add(LinkRevocation(person_id=person_id, revoked_before=now))
    else:
        row.revoked_before = max(now, row.revoked_before + timedelta(microseconds=1))
        session.add(row)
    session.flush()
