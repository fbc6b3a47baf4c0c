"""Dispatch: claim due outbox rows, hand them to the routed notifiers, record sent, retry later, or dead-letter.

Delivery is at-least-once. A row is claimed (and the claim committed) before anything is sent; each notifier
that accepts it is remembered in `delivered_to`, so a retry goes only to the notifiers that have not accepted
it yet. Only the rows in flight when a daemon dies can reach a notifier twice, and every notifier is handed
the row's key so the receiver can drop the repeat.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from engine.errors import BadInput
from engine.store import queries
from engine.store.db import transaction
from engine.store.models import Outbox
from notifiers import Notification, Notifier, PermanentDeliveryError, TransientDeliveryError

KINDS = ("task_due_soon", "task_due", "task_overdue", "escalation", "contact_due", "contact_missed",
         "stage_changed", "plan_changed")
DEFAULT_ROUTE = "default"
MAX_ERROR_LENGTH = 1000
MAX_RETRY_AFTER_SECONDS = 86400.0  # a longer Retry-After (or a date in the year 9999) is cut to one day
FALLBACK_RETRY = timedelta(hours=1)  # when a row's next attempt cannot be worked out


# --- settings --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard and how often delivery is tried: the `[delivery]` table of the config file.

    A failed attempt n (counting from 0) waits min(cap, base * 2**n) seconds, less up to `jitter` of it at
    random so that a burst of failures does not retry in lockstep, and never less than a channel's
    Retry-After, which is honoured up to one day. With the defaults the waits are about 30 s, 1, 2, 4, 8, 16
    and 32 minutes and 1 hour: the 8th failed attempt, about 2 hours after the first, dead-letters the
    notification.
    """

    base_seconds: float = 30.0
    cap_seconds: float = 3600.0
    max_attempts: int = 8
    jitter: float = 0.2
    batch_size: int = 50
    claim_seconds: float = 300.0  # a crashed holder's rows are free again after this, or once its heartbeat dies

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> DeliveryPolicy:
        """Read `[delivery]`, refusing unknown keys and values out of range with BadInput."""
        defaults = cls()
        known = {"base_seconds", "cap_seconds", "max_attempts", "jitter", "batch_size", "claim_seconds"}
        unknown = sorted(set(section) - known)
        if unknown:
            raise BadInput(f"config [delivery]: unknown key(s) {', '.join(unknown)} "
                           f"(known: {', '.join(sorted(known))})")
        policy = cls(
            base_seconds=_number(section, "base_seconds", defaults.base_seconds, low=0.001),
            cap_seconds=_number(section, "cap_seconds", defaults.cap_seconds, low=0.001),
            max_attempts=int(_number(section, "max_attempts", defaults.max_attempts, low=1, whole=True)),
            jitter=_number(section, "jitter", defaults.jitter, low=0, high=1),
            batch_size=int(_number(section, "batch_size", defaults.batch_size, low=1, high=10_000, whole=True)),
            claim_seconds=_number(section, "claim_seconds", defaults.claim_seconds, low=1),
        )
        if policy.cap_seconds < policy.base_seconds:
            raise BadInput("config [delivery]: cap_seconds must not be smaller than base_seconds")
        return policy

    def retry_delay(self, failed_attempts: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before the next attempt after `failed_attempts` earlier failures (0 for the first)."""
        delay = min(self.cap_seconds, self.base_seconds * 2.0 ** min(failed_attempts, 60))
        delay *= 1 - self.jitter * rng.random()
        asked = 0.0 if retry_after is None or math.isnan(retry_after) else retry_after
        return max(delay, min(asked, MAX_RETRY_AFTER_SECONDS))


def _number(section: Mapping[str, Any], key: str, default: float, *, low: float, high: float | None = None,
            whole: bool = False) -> float:
    value = section.get(key, default)
    kind_ok = isinstance(value, int) if whole else isinstance(value, int | float)
    if isinstance(value, bool) or not kind_ok or value < low or (high is not None and value > high):
        what = "a whole number" if whole else "a number"
        bounds = f"from {low:g} to {high:g}" if high is not None else f"of at least {low:g}"
        raise BadInput(f"config [delivery] {key}: {value!r} must be {what} {bounds}")
    return float(value)


@dataclass(frozen=True)
class Routing:
    """Which notifiers get which kinds: the `[routing]` table, kind -> list of notifier names.

    A kind without an entry goes to the `default` entry, and without that to every configured notifier. An
    empty list means the kind is not delivered anywhere (the row is marked sent).
    """

    routes: Mapping[str, tuple[str, ...]]

    @classmethod
    def from_config(cls, section: Mapping[str, Any], notifier_names: Sequence[str]) -> Routing:
        """Read `[routing]`, refusing unknown kinds and notifiers that are not configured with BadInput."""
        routes: dict[str, tuple[str, ...]] = {}
        problems: list[str] = []
        for kind, names in section.items():
            if kind not in (*KINDS, DEFAULT_ROUTE):
                problems.append(f"{kind}: unknown kind (known: {', '.join((*KINDS, DEFAULT_ROUTE))})")
                continue
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                problems.append(f"{kind}: must be a list of notifier names, e.g. [\"email\", \"webhook\"]")
                continue
            missing = [n for n in names if n not in notifier_names]
            if missing:
                problems.append(f"{kind}: notifier(s) {', '.join(missing)} not configured "
                                f"(configured: {', '.join(notifier_names)})")
                continue
            routes[kind] = tuple(dict.fromkeys(names))
        if problems:
            raise BadInput(f"config [routing]: {len(problems)} problem(s)",
                           details=[f"config [routing] {p}" for p in problems])
        return cls(routes)

    def targets(self, kind: str, notifiers: Sequence[Notifier]) -> list[Notifier]:
        """The notifiers a notification of `kind` goes to, in configuration order."""
        names = self.routes.get(kind, self.routes.get(DEFAULT_ROUTE))
        if names is None:
            return list(notifiers)
        return [n for n in notifiers if n.name in names]


EVERYTHING_EVERYWHERE = Routing({})


# --- dispatching -----------------------------------------------------------------------------------------------


@dataclass
class DispatchReport:
    """What one batch did: rows claimed, and how many ended sent, failed (to retry), dead or handed back."""

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    dead: int = 0
    released: int = 0
    lost: int = 0  # outcomes not recorded: the claim had expired and another holder took the row, or writing failed

    def add(self, other: DispatchReport) -> None:
        for name in ("claimed", "sent", "failed", "dead", "released", "lost"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True)
class _Outcome:
    delivered_to: list[str]
    transient: list[tuple[str, TransientDeliveryError | Exception]]
    permanent: list[tuple[str, PermanentDeliveryError]]


def dispatch_due(engine: Engine, notifiers: Sequence[Notifier], *, holder: str, now: datetime,
                 routing: Routing = EVERYTHING_EVERYWHERE, policy: DeliveryPolicy | None = None,
                 rng: random.Random | None = None, should_stop: Callable[[], bool] = lambda: False,
                 log: Any = None) -> DispatchReport:
    """Claim one batch of due rows for `holder`, deliver each, and record every outcome at `now`.

    The claim is committed before anything is sent, and each outcome in its own transaction right after its
    sends, so a crash loses at most the outcomes of the row in flight. When `should_stop` turns true the row
    being delivered is finished and the rest of the batch is handed back unattempted.
    """
    policy = policy or DeliveryPolicy()
    rng = rng or random.Random()
    with transaction(engine) as session:
        rows = queries.claim_due_notifications(session, holder=holder, now=now, limit=policy.batch_size,
                                               claim_until=now + timedelta(seconds=policy.claim_seconds))
    report = DispatchReport(claimed=len(rows))
    for position, row in enumerate(rows):
        if should_stop():
            with transaction(engine) as session:
                report.released = queries.release_claims(session, holder, [r.id for r in rows[position:]
                                                                             if r.id is not None])
            break
        assert row.id is not None
        outcome = _deliver(row, routing.targets(row.kind, notifiers), log)
        status, values = _safe_outcome_values(row, outcome, policy, rng, now, log)
        try:
            with transaction(engine) as session:
                recorded = queries.record_delivery(session, row.id, holder, values)
        except Exception as exc:  # the claim runs out and the row is tried again; the rest of the batch goes on
            _log(log, "error", "outcome_not_recorded", key=row.key, error_type=type(exc).__name__)
            report.lost += 1
            continue
        if not recorded:
            report.lost += 1
            _log(log, "warning", "claim_lost", key=row.key)
            continue
        if status == "sent":
            report.sent += 1
        elif status == "dead":
            report.dead += 1
        else:
            report.failed += 1
        _log_outcome(log, row, status, values)
    return report


def notification_of(row: Outbox) -> Notification:
    """The value notifiers deliver, made from an outbox row."""
    return Notification(key=row.key, kind=row.kind, assignment_id=row.assignment_id, task_id=row.task_id,
                        recipient=row.recipient, role=row.role, subject=row.subject, body=row.body,
                        created_at=row.created_at, calendar=row.calendar)


def _deliver(row: Outbox, targets: Sequence[Notifier], log: Any) -> _Outcome:
    notification = notification_of(row)
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
                         now: datetime, log: Any) -> tuple[str, dict[str, Any]]:
    """The outcome to record; when it cannot be worked out, the row is failed and tried again in an hour.

    One row's bookkeeping must never keep the rest of the batch from being recorded.
    """
    try:
        return _outcome_values(row, outcome, policy, rng, now)
    except Exception as exc:
        _log(log, "error", "outcome_not_computed", key=row.key, error_type=type(exc).__name__)
        names = ", ".join(name for name, _ in [*outcome.permanent, *outcome.transient])
        return "failed", {"attempts": row.attempts + 1, "delivered_to": outcome.delivered_to, "status": "failed",
                          "last_error": f"{names}: not delivered, and the next attempt could not be scheduled "
                                        f"({type(exc).__name__}); trying again in an hour",
                          "next_attempt_at": now + FALLBACK_RETRY}


def _outcome_values(row: Outbox, outcome: _Outcome, policy: DeliveryPolicy, rng: random.Random,
                    now: datetime) -> tuple[str, dict[str, Any]]:
    attempts = row.attempts + 1
    values: dict[str, Any] = {"attempts": attempts, "delivered_to": outcome.delivered_to}
    if not outcome.transient and not outcome.permanent:
        return "sent", {**values, "status": "sent", "sent_at": now, "last_error": None}
    error = _describe([*outcome.permanent, *outcome.transient])
    if outcome.permanent:
        return "dead", {**values, "status": "dead", "last_error": error}
    if attempts >= policy.max_attempts:
        return "dead", {**values, "status": "dead", "last_error": f"gave up after {attempts} attempts: {error}"}
    retry_after = max((getattr(e, "retry_after", None) or 0.0 for _, e in outcome.transient), default=0.0)
    delay = policy.retry_delay(row.attempts, retry_after, rng)
    return "failed", {**values, "status": "failed", "last_error": error,
                      "next_attempt_at": now + timedelta(seconds=delay)}


def _describe(failures: Sequence[tuple[str, Exception]]) -> str:
    # Notifier errors are written to be shown to users (they never carry secrets); anything else is named by type.
    parts = [f"{name}: {exc}" if isinstance(exc, PermanentDeliveryError | TransientDeliveryError)
             else f"{name}: unexpected {type(exc).__name__}" for name, exc in failures]
    return "; ".join(parts)[:MAX_ERROR_LENGTH]


def _log_outcome(log: Any, row: Outbox, status: str, values: dict[str, Any]) -> None:
    fields = {"key": row.key, "kind": row.kind, "attempts": values["attempts"], "delivered_to": values["delivered_to"]}
    if status == "sent":
        _log(log, "info", "notification_sent", **fields)
    elif status == "failed":
        _log(log, "warning", "delivery_failed", **fields, error=values["last_error"],
             next_attempt_at=values["next_attempt_at"].isoformat())
    else:
        _log(log, "error", "notification_dead", **fields, error=values["last_error"])


def _log(log: Any, level: str, event: str, **fields: Any) -> None:
    if log is not None:
        getattr(log, level)(event, **fields)
