"""The installed daemon killed with SIGKILL again and again, or stopped and started: nothing is lost, little repeats."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import Engine, func
from sqlmodel import col, select

from acceptance.conftest import installed_sojourn
from engine.delivery.dispatch import DeliveryPolicy
from engine.delivery.leases import DISPATCHER, lease_seconds
from engine.program import assignments
from engine.store.db import transaction
from engine.store.models import DaemonLease, Outbox
from tests.support.scenarios import fill_outbox, make_task_overdue, quiet_assignment
from tests.support.webhook import Receiver

pytestmark = pytest.mark.slow

INTERVAL = 0.2  # seconds between sweeps; the lease is then its minimum, 5 s
NOTIFICATIONS = 1_000
WEBHOOK_DELAY = 0.003  # seconds the receiver takes per request: slow enough that kills land mid-request
SEED = 20261123
DEADLINE = 120.0  # seconds any single wait may take before the test fails


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver(WEBHOOK_DELAY) as running:
        yield running


class Daemons:
    """Starts `sojourn daemon` processes on one database and config; kills whatever is left at the end."""

    def __init__(self, db_url: str, config: Path, logs: Path) -> None:
        self.db_url, self.config, self.logs = db_url, config, logs
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = self.logs / f"daemon-{len(self.started)}.log"
        with log.open("wb") as stderr:  # a file, not a pipe: a daemon logging 1,000 lines must never block
            process = subprocess.Popen([str(installed_sojourn()), "--db", self.db_url, "--config", str(self.config),
                                        "daemon", "--interval", str(INTERVAL)],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
        self.started.append(process)
        return process

    def log_of(self, process: subprocess.Popen[bytes]) -> str:
        return (self.logs / f"daemon-{self.started.index(process)}.log").read_text(encoding="utf-8")

    def stop(self, process: subprocess.Popen[bytes]) -> int:
        process.send_signal(signal.SIGTERM)
        return process.wait(timeout=60)

    def kill_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)


@pytest.fixture
def daemons(db_url: str, tmp_path: Path, receiver: Receiver) -> Iterator[Daemons]:
    config = tmp_path / "sojourn.toml"
    config.write_text(f'[notifiers.webhook]\nurl = "{receiver.url}"\ntimeout = 30\n', encoding="utf-8")
    started = Daemons(db_url, config, tmp_path)
    try:
        yield started
    finally:
        started.kill_all()


def wait_for(condition: Callable[[], bool], what: str, process: subprocess.Popen[bytes] | None = None,
             daemons: Daemons | None = None, seconds: float = DEADLINE) -> None:
    """Poll `condition` until it holds; fail after `seconds`, or at once if `process` has exited."""
    deadline = time.monotonic() + seconds
    while not condition():
        if process is not None and process.poll() is not None:
            log = daemons.log_of(process) if daemons else ""
            pytest.fail(f"the daemon exited with {process.returncode} while waiting for {what}:\n{log[-3000:]}")
        assert time.monotonic() < deadline, f"timed out after {seconds:g} s waiting for {what}"
        time.sleep(0.02)


def status_counts(db: Engine) -> dict[str, int]:
    with transaction(db) as session:
        return dict(session.exec(select(Outbox.status, func.count()).group_by(Outbox.status)).all())


def dispatcher_lease_free(db: Engine) -> bool:
    """True when no live daemon holds the SQLite dispatcher lease (PostgreSQL never has one)."""
    with transaction(db) as session:
        lease = session.exec(select(DaemonLease).where(DaemonLease.name == DISPATCHER)).first()
        return lease is None or lease.expires_at <= datetime.now(UTC)


def test_daemon_loses_nothing_and_repeats_only_rows_in_flight_when_killed_repeatedly(
        db: Engine, spec: assignments.AssignmentSpec, receiver: Receiver, daemons: Daemons) -> None:
    """Killed with SIGKILL 5-8 times mid-delivery, every notice still arrives and only in-flight ones arrive twice."""
    keys = fill_outbox(db, quiet_assignment(db, spec), NOTIFICATIONS)
    rng = random.Random(SEED)
    kill_points = sorted(rng.sample(range(50, NOTIFICATIONS - 50), rng.randint(5, 8)))
    for point in kill_points:
        # A killed daemon's lease outlives it (one lease length); its successor may only start once it expired.
        wait_for(lambda: dispatcher_lease_free(db), "the dead daemon's dispatcher lease to expire",
                 seconds=lease_seconds(INTERVAL) + 30)
        daemon = daemons.start()
        wait_for(partial(receiver.reached, point), f"{point} distinct keys", daemon, daemons)
        time.sleep(rng.uniform(0, WEBHOOK_DELAY * 3))  # sometimes mid-request, sometimes mid-commit
        daemon.kill()
        daemon.wait(timeout=30)
    wait_for(lambda: dispatcher_lease_free(db), "the dead daemon's dispatcher lease to expire",
             seconds=lease_seconds(INTERVAL) + 30)
    last = daemons.start()
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
