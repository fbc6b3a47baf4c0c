"""A daemon facing a large backlog: a long plan still leaves time to dispatch, and a claim never scans the backlog."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event

import engine.delivery.daemon
import engine.planning.planner
from engine.delivery.config import DeliveryPolicy, Routing
from engine.delivery.daemon import Daemon
from engine.delivery.leases import DaemonIdentity
from engine.planning.planner import PlannedBatch
from engine.program import assignments
from engine.store import queries
from engine.store.db import transaction
from integration.conftest import Recorder


class SlowPlanningClock:
    """Stands in for the `time` module in engine.delivery.daemon: planning appears to take `planning_seconds`."""

    def __init__(self, planning_seconds: float) -> None:
        self.now = 1_000.0
        self.planning_seconds = planning_seconds

    def monotonic(self) -> float:
        return self.now


def test_sweep_dispatches_when_planning_took_longer_than_the_dispatch_budget(
        db: Engine, spec: assignments.AssignmentSpec, now: datetime, monkeypatch: pytest.MonkeyPatch) -> None:
    """The dispatch budget starts after planning: a sweep that planned for ages still sends what is due."""
    assignments.create_assignment(db, spec, actor="admin", now=now)  # three stage_changed notices, due at once
    clock = SlowPlanningClock(planning_seconds=3_600)
    real_plan_batch = engine.planning.planner.plan_batch

    def slow_plan_batch(session: Any, at: datetime, **options: Any) -> PlannedBatch:
        clock.now += clock.planning_seconds
        return real_plan_batch(session, at, **options)

    monkeypatch.setattr(engine.delivery.daemon, "time", clock)
    monkeypatch.setattr(engine.planning.planner, "plan_batch", slow_plan_batch)
    recorder = Recorder()
    daemon = Daemon(db, [recorder], routing=Routing({}), policy=DeliveryPolicy(), interval_seconds=60,
                    identity=DaemonIdentity("test-host", 1, "t1"), clock=lambda: now)
    daemon.start()
    report = daemon.sweep()
    daemon.stop()
    assert report.dispatched.sent == 3
    assert len(recorder.sent) == 3


@pytest.fixture
def statements(db: Engine) -> Iterator[list[tuple[str, Any]]]:
    """Every statement the database is sent while the test runs, with its parameters."""
    seen: list[tuple[str, Any]] = []

    def note(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        seen.append((statement, parameters))

    event.listen(db, "before_cursor_execute", note)
    yield seen
    event.remove(db, "before_cursor_execute", note)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_claim_finds_rows_by_primary_key_when_sqlite_has_no_statistics(
        db: Engine, spec: assignments.AssignmentSpec, now: datetime, statements: list[tuple[str, Any]]) -> None:
    """SQLite marks the claimed rows through the primary key, not by walking every due row of the status index."""
    assignments.create_assignment(db, spec, actor="admin", now=now)
    with transaction(db) as session:
        claimed = queries.claim_due_notifications(session, holder="h", now=now, limit=3,
                                                  claim_until=now + timedelta(minutes=5))
    assert len(claimed) == 3
    updates = [(s, p) for s, p in statements if s.lstrip().upper().startswith("UPDATE OUTBOX SET CLAIMED_BY")]
    assert len(updates) == 1
    statement, parameters = updates[0]
    with db.connect() as connection:
        plan = " ".join(str(row[-1]) for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}",
                                                                            parameters))
    assert "INTEGER PRIMARY KEY" in plan, plan
    assert "ix_outbox_status_next_attempt_at" not in plan, plan


def test_sweep_commits_planning_batch_by_batch(db: Engine, spec: assignments.AssignmentSpec, now: datetime,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Each planning batch commits on its own, so a long backlog never holds the write lock for the whole plan."""
    for _ in range(3):
        assignments.create_assignment(db, spec, actor="admin", now=now)
    # six due tasks and twelve due cadence checks (four cadences each): six full batches, then an empty one
    monkeypatch.setattr(engine.planning.planner, "BATCH_SIZE", 2)
    commits: list[int] = []
    real_plan_batch = engine.planning.planner.plan_batch

    def counting_plan_batch(session: Any, at: datetime, **options: Any) -> PlannedBatch:
        commits.append(len(commits))
        return real_plan_batch(session, at, **options)

    monkeypatch.setattr(engine.planning.planner, "plan_batch", counting_plan_batch)
    daemon = Daemon(db, [Recorder()], routing=Routing({}), policy=DeliveryPolicy(), interval_seconds=60,
                    identity=DaemonIdentity("test-host", 1, "t1"), clock=lambda: now + timedelta(days=30))
    daemon.start()
    report = daemon.sweep()
    daemon.stop()
    assert len(commits) == 7
    with transaction(db) as session:
        assert queries.due_task_reminders(session, now + timedelta(days=30), 100) == []
    assert report.planned >= 6
