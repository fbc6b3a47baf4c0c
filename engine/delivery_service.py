"""Use cases of delivery for the CLI: list the outbox, send a dead notification again, see which daemons run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from engine.errors import BadInput, NotFound, SojournError
from engine.leases import DISPATCHER, HEARTBEAT_PREFIX
from engine.notices import NoticeStatus
from engine.records import instant
from engine.store import queries
from engine.store.models import DaemonLease, Outbox
from engine.transactions import use_case_transaction


def notification_view(row: Outbox) -> dict[str, Any]:
    """The notification JSON shape of the public interface plus the outbox's delivery state."""
    return {
        "key": row.key, "kind": row.kind, "assignment_id": row.assignment_id, "task_id": row.task_id,
        "recipient": row.recipient, "role": row.role, "subject": row.subject, "body": row.body,
        "created_at": instant(row.created_at), "deliver_at": instant(row.deliver_at), "status": row.status,
        "attempts": row.attempts, "last_error": row.last_error, "next_attempt_at": instant(row.next_attempt_at),
        "sent_at": instant(row.sent_at), "delivered_to": list(row.delivered_to or []),
    }


def list_notifications(db: Engine, *, status: str | None = None, kind: str | None = None,
                       limit: int | None = None) -> list[dict[str, Any]]:
    """Outbox rows, oldest first; with `limit`, only the newest that many."""
    if status is not None and status not in tuple(NoticeStatus):
        raise BadInput(f"--status: {status!r} is not one of {', '.join(NoticeStatus)}")
    if limit is not None and limit < 1:
        raise BadInput(f"--limit: {limit} must be at least 1")
    with use_case_transaction(db) as session:
        return [notification_view(r) for r in queries.outbox_rows(session, status=status, kind=kind, limit=limit)]


def retry_notification(db: Engine, key: str, *, now: datetime) -> dict[str, Any]:
    """Make a dead or failed notification pending again, due now, with a fresh budget of attempts.

    Notifiers that already accepted it (`delivered_to`) are not sent it again.
    """
    with use_case_transaction(db) as session:
        requeued = queries.requeue_notification(session, key, now)
        row = queries.outbox_row(session, key)
        if row is None:
            raise NotFound(f"no notification with key {key!r}", details=["`sojourn outbox list` shows the keys"])
        if not requeued:
            raise _not_retryable(row, now)
        return notification_view(row)


def _not_retryable(row: Outbox, now: datetime) -> SojournError:
    if row.status == NoticeStatus.SENT:
        return SojournError(f"notification {row.key} was already sent at {instant(row.sent_at)}; nothing to retry")
    if row.claimed_until is not None and row.claimed_until > now:
        return SojournError(f"notification {row.key} is being delivered right now by {row.claimed_by}",
                            details=["look again in a moment with `sojourn outbox list`"])
    return SojournError(f"notification {row.key} is {row.status}; only dead or failed notifications can be retried")


def daemon_status(db: Engine, *, now: datetime) -> dict[str, Any]:
    """Every daemon that has a heartbeat row, whether it is alive, and who holds the SQLite dispatcher lease."""
    with use_case_transaction(db) as session:
        daemons = [_daemon_view(row, now) for row in queries.heartbeats(session, HEARTBEAT_PREFIX)]
        lease = queries.lease_row(session, DISPATCHER)
        return {
            "running": any(d["alive"] for d in daemons),
            "alive": sum(d["alive"] for d in daemons),
            "daemons": daemons,
            "dispatcher": None if lease is None else {
                "holder": lease.holder, "pid": lease.pid, "host": lease.host, "since": instant(lease.started_at),
                "expires_at": instant(lease.expires_at), "valid": lease.expires_at > now},
        }


def _daemon_view(row: DaemonLease, now: datetime) -> dict[str, Any]:
    return {"name": row.name, "host": row.host, "pid": row.pid, "holder": row.holder,
            "started_at": instant(row.started_at), "heartbeat_at": instant(row.heartbeat_at),
            "expires_at": instant(row.expires_at), "alive": row.expires_at > now}
