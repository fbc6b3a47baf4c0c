"""The statements of an administrator's changes to a running assignment: a new stakeholder, a later end date."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import CursorResult, String, update
from sqlalchemy import cast as sql_cast
from sqlmodel import Session, col

from engine.domain.notices import NOT_SENT_YET, NoticeStatus
from engine.store.models import Outbox


def cancel_queued_notices_to(session: Session, *, assignment_id: int, recipient: str, role: str,
                             kinds: Iterable[str], reason: str) -> int:
    """cancel_queued_notices_to: stop the queued notices of `kinds` an assignment sends `recipient` as `role`.

    Only rows not sent yet (`NOT_SENT_YET`: pending, failed, or held or gathered for a digest) change, as in
    `cancel_queued_notifications`: they become `cancelled` with `reason` in `last_error` and stay for the record,
    under their key followed by `~` and their id. That frees the key, so planning can write the same notice for the
    role's new holder; a cadence notice's key names the role and its period, not the person. Returns the rows
    cancelled.
    """
    outbox = Outbox.__table__  # type: ignore[attr-defined]
    statement = (update(Outbox)
                 .where(col(Outbox.assignment_id) == assignment_id, col(Outbox.recipient) == recipient,
                        col(Outbox.role) == role, col(Outbox.kind).in_(list(kinds)),
                        col(Outbox.status).in_(NOT_SENT_YET))
                 .values(status=NoticeStatus.CANCELLED, last_error=reason,
                         key=outbox.c.key + "~" + sql_cast(outbox.c.id, String))
                 .execution_options(synchronize_session=False))
    return int(cast(CursorResult[Any], session.execute(statement)).rowcount or 0)
