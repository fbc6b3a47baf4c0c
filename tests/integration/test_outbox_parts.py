"""What an outbox row is about lives in its columns: links follow them whatever the key, and upgrades fill them."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from alembic import command
from sqlalchemy import Engine, select, update

from engine.delivery.dispatch import notification_of
from engine.delivery.links import LinkSigner
from engine.domain.link_rules import LinkAction
from engine.domain.notices import NewNotice, NoticeKind
from engine.planning import planner
from engine.program import checkins, plans
from engine.store import queries
from engine.store.db import alembic_config, transaction
from engine.store.models import Outbox
from tests.conftest import NOW
from tests.support import scenarios

SIGNER = LinkSigner("test secret", "https://sojourn.example.com", timedelta(days=14))
PARTS = ("cadence", "plan_version", "pulse_id")


def _in_orientation(db: Engine, spec: Any) -> int:
    return scenarios.assignment_in_stage(db, dataclasses.replace(spec, end="2028-08-31"), "orientation", NOW)


def _opaque(assignment_id: int, number: int, kind: NoticeKind, role: str, **parts: Any) -> NewNotice:
    return NewNotice(key=f"opaque-{number}", kind=kind, assignment_id=assignment_id, task_id=None,
                     recipient=f"{role}@example.com", role=role, subject="s", body="b", created_at=NOW,
                     deliver_at=NOW, **parts)


def _link_of(db: Engine, key: str) -> tuple[str, dict[str, Any]]:
    with transaction(db) as session:
        row = session.execute(select(Outbox).where(Outbox.key == key)).scalar_one()
        url = notification_of(row, links=SIGNER, now=NOW).action_url
    assert url is not None
    action, token = url.split("/")[-2:]
    return action, SIGNER.read(action, token, now=NOW).object


def test_links_follow_the_columns_when_keys_name_nothing(db: Engine, spec: Any) -> None:
    """A notice whose key is opaque still carries the link its columns call for: the cadence to log, the plan
    version to acknowledge, the pulse whose alert to resolve, the check-in of a role that may record one."""
    assignment_id = _in_orientation(db, spec)
    with transaction(db) as session:
        queries.insert_notifications(session, [
            _opaque(assignment_id, 1, NoticeKind.CONTACT_DUE, "sponsor", cadence="sponsor_contact"),
            _opaque(assignment_id, 2, NoticeKind.PLAN_CHANGED, "sending_manager", plan_version=3),
            _opaque(assignment_id, 3, NoticeKind.PULSE_ALERT, "coach", pulse_id=8),
            _opaque(assignment_id, 4, NoticeKind.CHECKIN_MISSED, "assignee", cadence="pulse"),
            _opaque(assignment_id, 5, NoticeKind.CHECKIN_MISSED, "assignee", cadence="checkin")])
    assert _link_of(db, "opaque-1") == (LinkAction.CONTACT_HELD,
                                        {"assignment": assignment_id, "kind": "sponsor_contact"})
    assert _link_of(db, "opaque-2") == (LinkAction.PLAN_ACK, {"assignment": assignment_id, "plan_version": 3})
    assert _link_of(db, "opaque-3") == (LinkAction.ALERT_RESOLVE, {"pulse": 8})
    assert _link_of(db, "opaque-4") == (LinkAction.PULSE, {"assignment": assignment_id})
    assert _link_of(db, "opaque-5") == (LinkAction.CHECKIN, {"assignment": assignment_id})


def _queued_with_every_part(db: Engine, spec: Any, people: dict[str, str]) -> int:
    """An assignment whose planned cadence notices, plan change and pulse alert are all queued."""
    assignment_id = _in_orientation(db, spec)
    plans.add_goal(db, assignment_id, title="Run the DACH launch", measure="revenue", target="+10%",
                   due="2027-06-30", actor="admin", now=NOW)
    checkins.record_pulse(db, assignment_id, by=people["assignee"], expectancy=4, instrumentality=3, valence=1,
                          note=None, actor="admin", now=NOW)
    with transaction(db) as session:
        planner.plan(session, NOW + timedelta(days=120))
    return assignment_id


def _parts(db: Engine) -> dict[str, tuple[str, tuple[Any, ...]]]:
    with transaction(db) as session:
        rows = session.execute(select(Outbox)).scalars()
        return {r.key: (r.kind, tuple(getattr(r, name) for name in PARTS)) for r in rows}


def test_builders_fill_the_columns_their_keys_name(db: Engine, spec: Any, people: dict[str, str]) -> None:
    """Every cadence notice names its cadence, a plan change its plan version, a pulse alert its pulse."""
    _queued_with_every_part(db, spec, people)
    parts = _parts(db)
    kinds = {kind for kind, _ in parts.values()}
    assert {NoticeKind.CONTACT_DUE, NoticeKind.PULSE_DUE, NoticeKind.PLAN_CHANGED, NoticeKind.PULSE_ALERT} <= kinds
    for key, (kind, (cadence, plan_version, pulse_id)) in parts.items():
        pieces = key.split("/")
        assert cadence == (pieces[2] if kind in _CADENCE_KINDS else None), key
        assert plan_version == (int(pieces[2]) if kind == NoticeKind.PLAN_CHANGED else None), key
        assert pulse_id == (int(pieces[1]) if kind == NoticeKind.PULSE_ALERT else None), key


_CADENCE_KINDS = (NoticeKind.CONTACT_DUE, NoticeKind.CONTACT_MISSED, NoticeKind.CHECKIN_DUE,
                  NoticeKind.CHECKIN_MISSED, NoticeKind.PULSE_DUE)


def test_the_upgrade_fills_the_columns_of_notices_queued_before_it(db: Engine, spec: Any,
                                                                    people: dict[str, str]) -> None:
    """Notices queued before 0015 get their cadence, plan version and pulse from their keys, so the links they
    carry when sent stay the same; a notice whose key names none of them keeps them empty."""
    assignment_id = _queued_with_every_part(db, spec, people)
    with transaction(db) as session:
        queries.insert_notifications(session, [_opaque(assignment_id, 1, NoticeKind.PLAN_CHANGED, "coach")])
    queued = _parts(db)
    command.downgrade(alembic_config(db), "0014_baselines_on_behalf")
    command.upgrade(alembic_config(db), "head")
    assert _parts(db) == queued


def test_the_upgrade_leaves_columns_empty_for_keys_that_name_nothing(db: Engine, spec: Any,
                                                                      people: dict[str, str]) -> None:
    """A plan change whose key names no version gets none, rather than a guess."""
    assignment_id = _in_orientation(db, spec)
    with transaction(db) as session:
        queries.insert_notifications(session, [_opaque(assignment_id, 1, NoticeKind.PLAN_CHANGED, "coach")])
        session.execute(update(Outbox).values(plan_version=7))
    command.downgrade(alembic_config(db), "0014_baselines_on_behalf")
    command.upgrade(alembic_config(db), "head")
    assert _parts(db)["opaque-1"] == (NoticeKind.PLAN_CHANGED, (None, None, None))
