"""Digests: which notices may wait for a person's daily or weekly digest, when a digest goes, and its text.

A notice kind is informational or immediate by `NOTICE_URGENCY`; a kind not listed there is immediate, so a new kind
never waits in a digest unless it is marked informational here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from engine.domain.notices import NoticeKind
from engine.domain.schedule import local_date, local_instant


class DigestChoice(StrEnum):
    """How a person receives informational notices: one by one (`off`), or gathered daily or weekly."""

    OFF = "off"
    DAILY = "daily"
    WEEKLY = "weekly"


class Urgency(StrEnum):
    INFORMATIONAL = "informational"  # may wait for the recipient's digest
    IMMEDIATE = "immediate"  # asks for action now: always sent on its own


NOTICE_URGENCY: dict[str, Urgency] = {
    NoticeKind.STAGE_CHANGED: Urgency.INFORMATIONAL,
    NoticeKind.TASK_DUE_SOON: Urgency.INFORMATIONAL,
    NoticeKind.CHECKIN_FEEDBACK: Urgency.INFORMATIONAL,
    NoticeKind.TASK_DUE: Urgency.IMMEDIATE,
    NoticeKind.TASK_OVERDUE: Urgency.IMMEDIATE,
    NoticeKind.ESCALATION: Urgency.IMMEDIATE,
    NoticeKind.PLAN_CHANGED: Urgency.IMMEDIATE,
    NoticeKind.PLAN_UNACKNOWLEDGED: Urgency.IMMEDIATE,
    NoticeKind.PULSE_ALERT: Urgency.IMMEDIATE,
    NoticeKind.CONTACT_DUE: Urgency.IMMEDIATE,
    NoticeKind.CONTACT_MISSED: Urgency.IMMEDIATE,
    NoticeKind.CHECKIN_DUE: Urgency.IMMEDIATE,
    NoticeKind.CHECKIN_MISSED: Urgency.IMMEDIATE,
    NoticeKind.PULSE_DUE: Urgency.IMMEDIATE,
    NoticeKind.DIGEST: Urgency.IMMEDIATE,
}


def urgency_of(kind: str) -> Urgency:
    return NOTICE_URGENCY.get(kind, Urgency.IMMEDIATE)


INFORMATIONAL_KINDS = tuple(kind for kind, urgency in NOTICE_URGENCY.items() if urgency == Urgency.INFORMATIONAL)

WEEKLY_DIGEST_WEEKDAY = 0  # Monday: the week's notices arrive as it starts (datetime.weekday numbering)
DIGEST_KEY_PREFIX = f"{NoticeKind.DIGEST}/"


def digest_instant(choice: DigestChoice, after: datetime, *, local_hour: int, tz: str) -> datetime:
    """The first digest instant at or after `after`: `local_hour`:00 in `tz` on any day (daily) or on a Monday
    (weekly)."""
    day = local_date(after, tz)
    while True:
        at = local_instant(day, local_hour, tz)
        if at >= after and (choice == DigestChoice.DAILY or day.weekday() == WEEKLY_DIGEST_WEEKDAY):
            return at
        day += timedelta(days=1)


def next_digest_instant(choice: DigestChoice, at: datetime, tz: str) -> datetime:
    """The digest instant one period after the digest instant `at`, at the same local hour in `tz`."""
    local = at.astimezone(ZoneInfo(tz))
    days = 7 if choice == DigestChoice.WEEKLY else 1
    return local_instant(local.date() + timedelta(days=days), local.hour, tz)


def digest_key(person_id: int, at: datetime) -> str:
    """The digest of one person at one instant: gathering it again after a crash finds the same row."""
    return f"{DIGEST_KEY_PREFIX}{person_id}/{at.strftime('%Y-%m-%dT%H:%MZ')}"


def digest_subject(choice: str, at: datetime, tz: str) -> str:
    """The subject of a digest: its period and its local date (the notices it carries are counted in its body)."""
    period = "weekly" if choice == DigestChoice.WEEKLY else "daily"
    return f"Your {period} digest of {local_date(at, tz).isoformat()}"


def digest_body(notices: Sequence[tuple[str, str, str | None]]) -> str:
    """Each (subject, body, link) under its subject as a heading, with its body and its link when the body does not
    show it already, in the order given."""
    sections = [f"{len(notices)} notice(s) gathered for you:"]
    for subject, body, link in notices:
        if link is not None and link not in body:
            body = f"{body}\nAct on it here: {link}"
        sections.append(f"== {subject} ==\n{body}")
    return "\n\n".join(sections)
