"""Which notice carries which link: the action a notice's recipient may take from it, chosen from the notice's
columns alone. Pure, so the sending side and a person's data export read the same rule."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from engine.domain.notices import CHECKIN_ROLES, OWNER_STEPS, PULSE_CADENCE, PULSE_ROLE, NoticeKind


class LinkAction(StrEnum):
    """What a link lets its person do; each is one entry of the registry in `engine.web.actions`."""

    TASK_DONE = "task_done"
    CONTACT_HELD = "contact_held"
    PLAN_SIGNOFF = "plan_signoff"
    CHECKIN = "checkin"
    PULSE = "pulse"
    PLAN_ACK = "plan_ack"
    ALERT_RESOLVE = "alert_resolve"
    MY_PAGE = "me"  # the person's own page: reading only, never used up


@dataclass(frozen=True)
class NoticeFacts:
    """What an outbox row's columns say of a notice: all its link is chosen from (never its key, whose format may
    change)."""

    kind: str
    assignment_id: int
    task_id: int | None
    role: str
    cadence: str | None = None
    plan_version: int | None = None
    pulse_id: int | None = None

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> NoticeFacts:
        """The facts of an outbox row read as a mapping of its columns."""
        return cls(*(row[name] for name in _COLUMNS))

    @classmethod
    def of_row(cls, row: object) -> NoticeFacts:
        """The facts of a loaded outbox row (the store's `Outbox`), read from its attributes without copying it."""
        return cls(*(getattr(row, name) for name in _COLUMNS))


_COLUMNS = tuple(NoticeFacts.__dataclass_fields__)  # the outbox columns of the same names, in field order


def notice_action(notice: NoticeFacts) -> tuple[LinkAction, dict[str, Any]]:
    """The action a notice's recipient can take from it; the person's own page when the notice asks for none.

    The owner's task reminders mark the task done; contact_due and contact_missed log the period's contact (of
    the notice's cadence) as held. checkin_due and checkin_missed record a check-in, pulse_due and a pulse
    cadence's checkin_missed answer the pulse, each only for a role that may; other recipients get their page.
    plan_changed acknowledges the plan version it names; plan_unacknowledged, which names the acknowledgement task
    instead, the change of that task. pulse_alert resolves the alert of its pulse, once followed up.
    checkin_feedback lets the other side answer with a check-in of their own; home, who only reads it, gets the
    page that lists the check-ins.
    """
    kind, assignment_id, task_id = notice.kind, notice.assignment_id, notice.task_id
    if kind in OWNER_STEPS and task_id is not None:
        return LinkAction.TASK_DONE, {"task": task_id}
    if kind in (NoticeKind.CONTACT_DUE, NoticeKind.CONTACT_MISSED) and notice.cadence is not None:
        return LinkAction.CONTACT_HELD, {"assignment": assignment_id, "kind": notice.cadence}
    if kind == NoticeKind.PLAN_CHANGED and notice.plan_version is not None:
        return LinkAction.PLAN_ACK, {"assignment": assignment_id, "plan_version": notice.plan_version}
    if kind == NoticeKind.PLAN_UNACKNOWLEDGED and task_id is not None:
        return LinkAction.PLAN_ACK, {"assignment": assignment_id, "task": task_id}
    if kind in (NoticeKind.CHECKIN_DUE, NoticeKind.CHECKIN_MISSED, NoticeKind.PULSE_DUE):
        return _cadence_action(notice)
    if kind == NoticeKind.CHECKIN_FEEDBACK and notice.role in CHECKIN_ROLES:
        return LinkAction.CHECKIN, {"assignment": assignment_id}
    if kind == NoticeKind.PULSE_ALERT and notice.pulse_id is not None:
        return LinkAction.ALERT_RESOLVE, {"pulse": notice.pulse_id}
    return LinkAction.MY_PAGE, {}


def _cadence_action(notice: NoticeFacts) -> tuple[LinkAction, dict[str, Any]]:
    """A check-in or pulse link for a recipient whose role may record it; the person's page otherwise."""
    is_pulse = notice.kind == NoticeKind.PULSE_DUE or notice.cadence == PULSE_CADENCE
    action, roles = (LinkAction.PULSE, (PULSE_ROLE,)) if is_pulse else (LinkAction.CHECKIN, CHECKIN_ROLES)
    if notice.role in roles:
        return action, {"assignment": notice.assignment_id}
    return LinkAction.MY_PAGE, {}


def notice_token_id(key: str) -> str:
    """The token id of a notice's link: every delivery of one notice (a retry, another channel) is used up together."""
    return "n-" + hashlib.sha256(key.encode()).hexdigest()[:24]
