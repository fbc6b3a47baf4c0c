"""Use cases of delivery for the CLI: list the outbox, send a notification again, see which daemons run."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine

from engine.delivery.config import Settings
from engine.delivery.dispatch import digest_notification, notification_of
from engine.delivery.leases import DISPATCHER, HEARTBEAT_PREFIX, DaemonIdentity, holder_is_gone
from engine.delivery.links import signer_from
from engine.domain.errors import BadInput, NotFound, SojournError
from engine.domain.notices import NoticeKind, NoticeStatus
from engine.domain.views import Result
from engine.program.records import instant
from engine.program.transactions import use_case_transaction
from engine.store import queries
from engine.store.models import DaemonLease, Outbox
from notifiers import DeliveryError, Notifier, NotifierConfigError, build_notifier, build_notifiers, close_notifiers


@dataclass(frozen=True)
class OutboxNotification(Result):
    """A notification as the public interface shapes it, plus the outbox's delivery state."""

    key: str
    kind: str
    assignment_id: int
    task_id: int | None
    recipient: str
    role: str
    subject: str
    body: str
    created_at: datetime
    deliver_at: datetime
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime
    sent_at: datetime | None
    delivered_to: tuple[str, ...]


@dataclass(frozen=True)
class ResentNotification(OutboxNotification):
    """A notification already sent, sent again at once to one notifier."""

    resent_to: str


def outbox_notification(row: Outbox) -> OutboxNotification:
    """The outbox row as the notification the CLI lists."""
    return OutboxNotification(row.key, row.kind, row.assignment_id, row.task_id, row.recipient, row.role, row.subject,
                              row.body, row.created_at, row.deliver_at, row.status, row.attempts, row.last_error,
                              row.next_attempt_at, row.sent_at, tuple(row.delivered_to or []))


def list_notifications(db: Engine, *, status: str | None = None, kind: str | None = None,
                       limit: int | None = None) -> list[OutboxNotification]:
    """Outbox rows, oldest first; with `limit`, only the newest that many."""
    if status is not None and status not in tuple(NoticeStatus):
        raise BadInput(f"--status: {status!r} is not one of {', '.join(NoticeStatus)}")
    if limit is not None and limit < 1:
        raise BadInput(f"--limit: {limit} must be at least 1")
    with use_case_transaction(db) as session:
        return [outbox_notification(r) for r in queries.outbox_rows(session, status=status, kind=kind, limit=limit)]


def configured_notifiers(settings: Settings, environ: Mapping[str, str]) -> list[Notifier]:
    """The notifiers `[notifiers]` configures, in file order; a secret variable not set is BadInput (exit 2)."""
    try:
        return build_notifiers(settings.notifiers, environ)
    except NotifierConfigError as exc:
        raise BadInput(f"config file {settings.config_source}: {exc}") from None


def named_notifier(settings: Settings, name: str, environ: Mapping[str, str]) -> Notifier:
    """The configured notifier called `name`; BadInput listing the configured ones when there is none."""
    configured = settings.notifiers.names()
    if name not in configured:
        raise BadInput(f"--to: no notifier {name!r} is configured (configured: {', '.join(configured) or 'none'})",
                       details=[f"config file: {settings.config_source}"])
    try:
        return build_notifier(settings.notifiers, name, environ)
    except NotifierConfigError as exc:
        raise BadInput(f"config file {settings.config_source}: {exc}") from None


def retry_notification(db: Engine, key: str, *, now: datetime, to: str | None = None, settings: Settings | None = None,
                       environ: Mapping[str, str] | None = None) -> OutboxNotification:
    """Make a dead or failed notification pending again, due now, with a fresh budget of attempts; with `to`,
    send a notification already sent again, at once, to the configured notifier of that name.

    Notifiers that already accepted a row not sent yet (`delivered_to`) are not sent it again: for such a row
    `to` is checked but changes nothing, the next sweep delivers it to every routed notifier still missing.
    """
    if to is not None:
        if settings is None or environ is None:
            raise ValueError("retry_notification: `to` needs the settings and the environment")
        notifier = named_notifier(settings, to, environ)
        try:
            resent = _resend_if_sent(db, key, notifier, settings, environ, now)
        finally:
            close_notifiers([notifier])
        if resent is not None:
            return resent
    with use_case_transaction(db) as session:
        requeued = queries.requeue_notification(session, key, now)
        row = queries.outbox_row(session, key)
        if row is None:
            raise NotFound(f"no notification with key {key!r}", details=["`sojourn outbox list` shows the keys"])
        if not requeued:
            raise _not_retryable(row, now)
        return outbox_notification(row)


def _resend_if_sent(db: Engine, key: str, notifier: Notifier, settings: Settings, environ: Mapping[str, str],
                    now: datetime) -> ResentNotification | None:
    """Send a sent row again to `notifier` and record it; None when the row is not sent (yet), to requeue it.

    The send happens between two short transactions, so a slow channel never holds the database's write lock.
    A channel that refuses is SojournError (exit 1) and nothing is recorded.
    """
    with use_case_transaction(db) as session:
        row = queries.outbox_row(session, key)
        if row is None or row.status != NoticeStatus.SENT:
            return None
        links = signer_from(settings.serve_settings(environ))
        notification = notification_of(row, links=links, now=now) if row.kind != NoticeKind.DIGEST else \
            digest_notification(session, row, links=links, now=now)[0]
        if notification is None:
            return None
    try:
        notifier.send(notification)
    except DeliveryError as exc:
        raise SojournError(f"notification {key} was not sent to {notifier.name}: {exc}",
                           details=["nothing was recorded; fix the channel and run the command again"]) from None
    with use_case_transaction(db) as session:
        queries.note_resent(session, key, notifier.name, now)
        row = queries.outbox_row(session, key)
        assert row is not None
        return ResentNotification(**vars(outbox_notification(row)), resent_to=notifier.name)


def _not_retryable(row: Outbox, now: datetime) -> SojournError:
    if row.status == NoticeStatus.SENT:
        return SojournError(f"notification {row.key} was already sent at {instant(row.sent_at)}; nothing to retry",
                            details=["`sojourn outbox retry KEY --to NOTIFIER` sends it again to one notifier"])
    if row.claimed_until is not None and row.claimed_until > now:
        return SojournError(f"notification {row.key} is being delivered right now by {row.claimed_by}",
                            details=["look again in a moment with `sojourn outbox list`"])
    return SojournError(f"notification {row.key} is {row.status}; only dead or failed notifications can be retried")


@dataclass(frozen=True)
class DaemonHeartbeat(Result):
    """One daemon's heartbeat row, and whether that daemon is alive."""

    name: str
    host: str
    pid: int
    holder: str
    started_at: datetime
    heartbeat_at: datetime
    expires_at: datetime
    alive: bool


@dataclass(frozen=True)
class DispatcherLease(Result):
    """Who holds the SQLite dispatcher lease, since when, and whether it still holds."""

    holder: str
    pid: int
    host: str
    since: datetime
    expires_at: datetime
    valid: bool


@dataclass(frozen=True)
class DaemonStatus(Result):
    """The daemons with a heartbeat, how many are alive, and the dispatcher lease if any."""

    running: bool
    alive: int
    daemons: tuple[DaemonHeartbeat, ...]
    dispatcher: DispatcherLease | None


def daemon_status(db: Engine, *, now: datetime) -> DaemonStatus:
    """Every daemon that has a heartbeat row, whether it is alive, and who holds the SQLite dispatcher lease.

    A row is alive until it expires, unless its daemon ran on this host and its process is gone (killed): that one is
    shown dead at once, as a daemon started now would take its place at once."""
    here = DaemonIdentity.of_this_process()
    with use_case_transaction(db) as session:
        daemons = tuple(_heartbeat(row, now, here) for row in queries.heartbeats(session, HEARTBEAT_PREFIX))
        lease = queries.lease_row(session, DISPATCHER)
        return DaemonStatus(
            running=any(d.alive for d in daemons), alive=sum(d.alive for d in daemons), daemons=daemons,
            dispatcher=None if lease is None else DispatcherLease(
                lease.holder, lease.pid, lease.host, lease.started_at, lease.expires_at, _alive(lease, now, here)))


def _heartbeat(row: DaemonLease, now: datetime, here: DaemonIdentity) -> DaemonHeartbeat:
    return DaemonHeartbeat(row.name, row.host, row.pid, row.holder, row.started_at, row.heartbeat_at, row.expires_at,
                           _alive(row, now, here))


def _alive(row: DaemonLease, now: datetime, here: DaemonIdentity) -> bool:
    return row.expires_at > now and not holder_is_gone(row, here)
