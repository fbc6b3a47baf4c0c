"""The installed daemon killed with SIGKILL again and again, or stopped and started: nothing is lost, little repeats."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from engine.delivery.dispatch import DeliveryPolicy
from engine.delivery.leases import lease_seconds
from engine.program import assignments
from engine.store.db import transaction
from engine.store.models import DaemonLease
from tests.support.daemons import INTERVAL, Daemons, status_counts, wait_for
from tests.support.scenarios import fill_outbox, make_task_overdue, quiet_assignment
from tests.support.webhook import Receiver

pytestmark = pytest.mark.slow

NOTIFICATIONS = 1_000
SEED = 20261123


def test_daemon_loses_nothing_and_repeats_only_rows_in_flight_when_killed_repeatedly(
        db: Engine, spec: assignments.AssignmentSpec, receiver: Receiver, daemons: Daemons) -> None:
    """Killed with SIGKILL 5-8 times mid-delivery, every notice still arrives and only in-flight ones arrive twice."""
    keys = fill_outbox(db, quiet_assignment(db, spec), NOTIFICATIONS)
    rng = random.Random(SEED)
    kill_points = sorted(rng.sample(range(50, NOTIFICATIONS - 50), rng.randint(5, 8)))
    daemons.kill_at(db, kill_points, receiver.reached, "distinct keys", rng)
    last = daemons.start_once_lease_free(db)
    wait_for(lambda: status_counts(db) == {"sent": NOTIFICATIONS}, "every notification to be sent", last, daemons)
    assert daemons.stop(last) == 0, daemons.log_of(last)

    received = receiver.snapshot()
    repeats = sum(received.values()) - len(received)
    assert set(received) == set(keys), "a notification was lost or an unknown one was sent"
    assert len(received) == NOTIFICATIONS
    # The documented promise: only the batch in flight at a kill can be sent twice.
    assert repeats <= DeliveryPolicy().batch_size * len(kill_points), received.most_common(10)


def _heartbeat_after(db: Engine, instant: datetime) -> bool:
    with transaction(db) as session:
        beats = session.exec(select(DaemonLease.heartbeat_at).where(col(DaemonLease.name).startswith("daemon/")))
        return any(beat > instant for beat in beats)


def test_daemon_sends_reminder_once_when_it_fell_due_while_stopped(
        db: Engine, spec: assignments.AssignmentSpec, receiver: Receiver, daemons: Daemons) -> None:
    """Stopped with SIGTERM and started again, the daemon sends a reminder that came due meanwhile exactly once."""
    view = assignments.create_assignment(db, spec, actor="admin", now=datetime.now(UTC)).view()
    first = daemons.start()
    wait_for(lambda: status_counts(db) == {"sent": 3}, "the three stage_changed notices", first, daemons)
    assert daemons.stop(first) == 0, daemons.log_of(first)

    task_id = int(view["tasks"][0]["id"])
    make_task_overdue(db, task_id)
    second = daemons.start()
    key = f"task_overdue/{task_id}"
    wait_for(lambda: receiver.snapshot()[key] >= 1, f"the reminder {key}", second, daemons)
    wait_for(lambda: status_counts(db) == {"sent": 4}, "the reminder to be recorded as sent", second, daemons)
    # give the running daemon several more sweeps (two heartbeats later) in which it could repeat itself
    settled = datetime.now(UTC) + timedelta(seconds=lease_seconds(INTERVAL) / 3)
    wait_for(lambda: _heartbeat_after(db, settled), "two more heartbeats", second, daemons)
    assert daemons.stop(second) == 0, daemons.log_of(second)

    received = receiver.snapshot()
    reminders = {k: n for k, n in received.items() if not k.startswith("stage_changed/")}
    assert reminders == {key: 1}, "a superseded step was sent, or the reminder was sent more than once"
    assert sorted(received.values()) == [1] * 4
