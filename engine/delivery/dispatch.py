"""Dispatch: claim due outbox rows, hand them to the routed notifiers, mark sent, retry later, or dead-letter.

Delivery is at-least-once. A row is claimed (and the claim committed) before anything is sent; each notifier
that accepts it is remembered in `delivered_to`, so a retry goes only to the notifiers that have not accepted
it yet. Only the rows in flight when a daemon dies can reach a notifier twice, and every notifier is handed
the row's key so the receiver can drop the repeat.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from engine.delivery.config import EVERYTHING_EVERYWHERE, DeliveryPolicy, Routing
from engine.delivery.links import LinkSigner
from engine.domain.digests import digest_body
from engine.domain.link_rules import NoticeFacts, notice_action, notice_token_id
from engine.domain.notices import NoticeKind, NoticeStatus, with_action_link
from engine.program.digests import gather_digests
from engine.store import digest_queries, queries
from engine.store.db import transaction
from engine.store.models import Outbox, pk
from notifiers import Notification, Notifier, PermanentDeliveryError, TransientDeliveryError

MAX_ERROR_LENGTH = 1000
FALLBACK_RETRY = timedelta(hours=1)  # when a row's next attempt cannot be worked out
EMPTY_DIGEST = "every notice it gathered was cancelled before it went"


# --- dispatching -----------------------------------------------------------------------------------------------


@dataclass
class DispatchReport:
    """What one batch did: rows claimed, and how many ended sent, failed (to retry), dead or handed back."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    dead: int = 0
    released: int = 0
    lost: int = 0  # outcomes not marked: the claim had expired and another holder took the row, or writing failed

    def add(self, other: DispatchReport) -> None:
        for name in ("claimed", "sent", "failed", "dead", "released", "lost"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True)
class _Outcome:
    delivered_to: list[str]
    transient: list[tuple[str, TransientDeliveryError | Exception]]
    permanent: list[tuple[str, PermanentDeliveryError]]


def dispatch_due(db: Engine, notifiers: Sequence[Notifier], *, holder: str, now: datetime,
                 routing: Routing = EVERYTHING_EVERYWHERE, policy: DeliveryPolicy | None = None,
                 rng: random.Random | None = None, should_stop: Callable[[], bool] = lambda: False,
                 log: Any = None, links: LinkSigner | None = None) -> DispatchReport:
    """Gather the digests that have come due, claim one batch of due rows for `holder`, deliver each, and mark
    every outcome at `now`.

    The claim is committed before anything is sent, and each outcome in its own transaction right after its
    sends, so a crash loses at most the outcomes of the row in flight. When `should_stop` turns true the row
    being delivered is finished and the rest of the batch is handed back unattempted. With `links`, each
    notification carries a link signed for its recipient, minted at sending so it is never stored in the outbox.
    """
    policy = policy or DeliveryPolicy()
    rng = rng or random.Random()
    with transaction(db) as session:
        gather_digests(session, now)  # in the claim's transaction: a digest written now is claimed now
        rows = queries.claim_due_notifications(session, holder=holder, now=now, limit=policy.batch_size,
                                               claim_until=now + timedelta(seconds=policy.claim_seconds))
    report = DispatchReport(claimed=len(rows))
    for position, row in enumerate(rows):
        if should_stop():
            with transaction(db) as session:
                report.released = queries.release_claims(session, holder, [r.id for r in rows[position:]
                                                                             if r.id is not None])
            break
        assert row.id is not None
        notification, carried = _notification_to_send(db, row, links, now)
        if notification is None:
            status, values = NoticeStatus.CANCELLED, {"status": NoticeStatus.CANCELLED, "last_error": EMPTY_DIGEST}
        else:
            outcome = _deliver(notification, row, routing.targets(row.kind, notifiers), log)
            status, values = _safe_outcome_values(row, outcome, policy, rng, now, log)
        try:
            with transaction(db) as session:
                marked = queries.mark_delivery(session, row.id, holder, values)
                if marked and status == NoticeStatus.SENT and carried:
                    digest_queries.mark_sent_with_digest(session, row.key, carried, now)
        except Exception as exc:  # the claim runs out and the row is tried again; the rest of the batch goes on
            _log(log, "error", "outcome_not_recorded", key=row.key, error_type=type(exc).__name__)
            report.lost += 1
            continue
        if not marked:
            report.lost += 1
            _log(log, "warning", "claim_lost", key=row.key)
            continue
        if status == NoticeStatus.SENT:
            report.sent += 1
        elif status == NoticeStatus.CANCELLED:
            _log(log, "info", "digest_cancelled", key=row.key)
            continue
        elif status == NoticeStatus.DEAD:
            report.dead += 1
        else:
            report.failed += 1
        _log_outcome(log, row, status, values)
    return report


def _notification_to_send(db: Engine, row: Outbox, links: LinkSigner | None,
                          now: datetime) -> tuple[Notification | None, list[int]]:
    """The notification of a row, and for a digest the ids of the notices it carries (None: it carries none)."""
    if row.kind != NoticeKind.DIGEST:
        return notification_of(row, links=links, now=now), []
    with transaction(db) as session:
        return digest_notification(session, row, links=links, now=now)


def digest_notification(session: Session, row: Outbox, *, links: LinkSigner | None = None,
                        now: datetime | None = None) -> tuple[Notification | None, list[int]]:
    """A digest row's notification: every notice it still carries, each with its own signed link, in its body and in
    `items`; and their ids. None when every notice it gathered was cancelled before it went."""
    carried = digest_queries.notices_in_digest(session, row.key)
    if not carried:
        return None, []
    items = tuple(notification_of(notice, links=links, now=now) for notice in carried)
    body = digest_body([(item.subject, item.body, item.action_url) for item in items])
    return (Notification(key=row.key, kind=row.kind, assignment_id=row.assignment_id, task_id=None,
                         recipient=row.recipient, role=row.role, subject=row.subject, body=body,
                         created_at=row.created_at, items=items),
            [pk(notice) for notice in carried])


def notification_of(row: Outbox, *, links: LinkSigner | None = None, now: datetime | None = None) -> Notification:
    """The value notifiers deliver, made from an outbox row, with its recipient's signed link when `links` is given."""
    action_url = None
    if links is not None:
        action, obj = notice_action(NoticeFacts.of_row(row))
        action_url = links.url(row.recipient, action, obj, now=now or row.created_at,
                               token_id=notice_token_id(row.key))
    body = row.body if action_url is None else with_action_link(row.body, action_url)
    return Notification(key=row.key, kind=row.kind, assignment_id=row.assignment_id, task_id=row.task_id,
                        recipient=row.recipient, role=row.role, subject=row.subject, body=body,
                        created_at=row.created_at, calendar=row.calendar, action_url=action_url)


def _deliver(notification: Notification, row: Outbox, targets: Sequence[Notifier], log: Any) -> _Outcome:
    outcome = _Outcome(delivered_to=list(row.delivered_to or []), transient=[], permanent=[])
    for notifier in targets:
        if notifier.name in outcome.delivered_to:
            continue
        try:
            notifier.send(notification)
        except PermanentDeliveryError as exc:
            outcome.permanent.append((notifier.name, exc))
        except TransientDeliveryError as exc:
            outcome.transient.append((notifier.name, exc))
        except Exception as exc:  # a broken notifier must not stop the others; it is retried as transient
            _log(log, "error", "notifier_crashed", key=row.key, notifier=notifier.name, error_type=type(exc).__name__)
            outcome.transient.append((notifier.name, exc))
        else:
            outcome.delivered_to.append(notifier.name)
    return outcome


def _safe_outcome_values(row: Outbox, outcome: _Outcome, policy: DeliveryPolicy, rng: random.Random,
                         now: datetime, log: Any) -> tuple[NoticeStatus, dict[str, Any]]:
    """The outcome to mark; when it cannot be worked out, the row is failed and tried again in an hour.

    One row's bookkeeping must never keep the rest of the batch from being marked.
    """
    try:
        return _outcome_values(row, outcome, policy, rng, now)
    except Exception as exc:
        _log(log, "error", "outcome_not_computed", key=row.key, error_type=type(exc).__name__)
        names = ", ".join(name for name, _ in [*outcome.permanent, *outcome.transient])
        return NoticeStatus.FAILED, {"attempts": row.attempts + 1, "delivered_to": outcome.delivered_to,
                                     "status": NoticeStatus.FAILED,
                          "last_error": f"{names}: not delivered, and the next attempt could not be scheduled "
                                        f"({type(exc).__name__}); trying again in an hour",
                          "next_attempt_at": now + FALLBACK_RETRY}


def _outcome_values(row: Outbox, outcome: _Outcome, policy: DeliveryPolicy, rng: random.Random,
                    now: datetime) -> tuple[NoticeStatus, dict[str, Any]]:
    attempts = row.attempts + 1
    values: dict[str, Any] = {"attempts": attempts, "delivered_to": outcome.delivered_to}
    if not outcome.transient and not outcome.permanent:
        return NoticeStatus.SENT, {**values, "status": NoticeStatus.SENT, "sent_at": now, "last_error": None}
    error = _describe([*outcome.permanent, *outcome.transient])
    if outcome.permanent:
        return NoticeStatus.DEAD, {**values, "status": NoticeStatus.DEAD, "last_error": error}
    if attempts >= policy.max_attempts:
        return NoticeStatus.DEAD, {**values, "status": NoticeStatus.DEAD,
                                   "last_error": f"gave up after {attempts} attempts: {error}"}
    retry_after = max((getattr(e, "retry_after", None) or 0.0 for _, e in outcome.transient), default=0.0)
    delay = policy.retry_delay(row.attempts, retry_after, rng)
    return NoticeStatus.FAILED, {**values, "status": NoticeStatus.FAILED, "last_error": error,
                      "next_attempt_at": now + timedelta(seconds=delay)}


def _describe(failures: Sequence[tuple[str, Exception]]) -> str:
    # Notifier errors are written to be shown to users (they never carry secrets); anything else is named by type.
    parts = [f"{name}: {exc}" if isinstance(exc, PermanentDeliveryError | TransientDeliveryError)
             else f"{name}: unexpected {type(exc).__name__}" for name, exc in failures]
    return "; ".join(parts)[:MAX_ERROR_LENGTH]


def _log_outcome(log: Any, row: Outbox, status: NoticeStatus, values: dict[str, Any]) -> None:
    fields = {"key": row.key, "kind": row.kind, "attempts": values["attempts"], "delivered_to": values["delivered_to"]}
    if status == NoticeStatus.SENT:
        _log(log, "info", "notification_sent", **fields)
    elif status == NoticeStatus.FAILED:
        _log(log, "warning", "delivery_failed", **fields, error=values["last_error"],
             next_attempt_at=values["next_attempt_at"].isoformat())
    else:
        _log(log, "error", "notification_dead", **fields, error=values["last_error"])


def _log(log: Any, level: str, event: str, **fields: Any) -> None:
    if log is not None:
        getattr(log, level)(event, **fields)
