"""The installed daemon killed with SIGKILL while it gathers and sends digests: no notice is lost or sent in two."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, update
from sqlmodel import col

from engine.delivery.dispatch import DeliveryPolicy
from engine.domain.notices import NewNotice, NoticeKind, NoticeStatus
from engine.program import assignments, digests, people
from engine.store import queries
from engine.store.db import transaction
from engine.store.models import Outbox
from tests.support.daemons import Daemons, status_counts, wait_for
from tests.support.scenarios import quiet_assignment
from tests.support.webhook import Receiver

pytestmark = pytest.mark.slow

PEOPLE = 150  # each on a daily digest, so one digest each
NOTICES_EACH = 4
STAGGER = timedelta(seconds=0.03)  # the digests fall due one after another, so gathering and sending interleave
SEED = 20261207


def hold_notices_for_digests(db: Engine, assignment_id: int) -> dict[str, set[str]]:
    """PEOPLE people on a daily digest, each with NOTICES_EACH stage_changed notices held as a gathering at an
    earlier sweep left them, their digests due one after another from now on; returns email -> notice keys."""
    now = datetime.now(UTC)
    held: dict[str, set[str]] = {}
    for number in range(PEOPLE):
        email = f"reader{number:03d}@example.com"
        people.add_person(db, email, name=f"Reader {number}", tz="Europe/Berlin")
        digests.set_person_digest(db, email, "daily", now=now)
        notices = [NewNotice(key=f"stage_changed/crash/{number:03d}/{n}", kind=NoticeKind.STAGE_CHANGED,
                             assignment_id=assignment_id, task_id=None, recipient=email, role="coach",
                             subject=f"Stage change {n} for reader {number}", body="Moved on.", created_at=now,
                             deliver_at=now) for n in range(NOTICES_EACH)]
        with transaction(db) as session:
            queries.insert_notifications(session, notices)
            session.execute(update(Outbox).where(col(Outbox.recipient) == email)
                            .values(status=NoticeStatus.HELD, next_attempt_at=now + STAGGER * number))
        held[email] = {n.key for n in notices}
    return held


def carried_by_digest(webhook: Receiver) -> dict[str, list[frozenset[str]]]:
    """Digest key -> the notice keys each delivery of it carried."""
    carried: dict[str, list[frozenset[str]]] = defaultdict(list)
    for body in webhook.bodies():
        payload = json.loads(body)
        carried[payload["key"]].append(frozenset(item["key"] for item in payload["items"]))
    return carried


def test_daemon_killed_while_gathering_and_sending_digests_loses_and_doubles_no_notice(
        db: Engine, spec: assignments.AssignmentSpec, receiver: Receiver, daemons: Daemons) -> None:
    """Killed with SIGKILL 4-6 times while digests fall due, every held notice arrives in exactly one digest."""
    held = hold_notices_for_digests(db, quiet_assignment(db, spec))
    rng = random.Random(SEED)
    kill_points = sorted(rng.sample(range(10, PEOPLE - 10), rng.randint(4, 6)))
    daemons.kill_at(db, kill_points, receiver.reached, "distinct digests", rng)
    last = daemons.start_once_lease_free(db)
    every_row = PEOPLE * NOTICES_EACH + PEOPLE
    wait_for(lambda: status_counts(db) == {"sent": every_row}, "every digest and notice to be sent", last, daemons)
    assert daemons.stop(last) == 0, daemons.log_of(last)

    carried = carried_by_digest(receiver)
    assert len(carried) == PEOPLE, "one digest a person"
    delivered: dict[str, str] = {}
    for key, deliveries in carried.items():
        assert len(set(deliveries)) == 1, f"{key} carried different notices when it was sent again"
        for notice in deliveries[0]:
            assert notice not in delivered, f"{notice} went in {delivered.get(notice)} and in {key}"
            delivered[notice] = key
    assert set(delivered) == set().union(*held.values()), "a held notice was lost"
    repeats = sum(len(d) for d in carried.values()) - len(carried)
    assert repeats <= DeliveryPolicy().batch_size * len(kill_points)
