"""A daemon facing a large backlog: a long plan still leaves time to dispatch."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Engine

import engine.daemon
from engine import service
from engine.daemon import Daemon
from engine.dispatch import DeliveryPolicy, Routing
from engine.leases import DaemonIdentity
from notifiers import Notification


class Recorder:
    name = "file"

    def __init__(self) -> None:
        self.sent: list[Notification] = []

    def send(self, notification: Notification) -> None:
        self.sent.append(notification)


class SlowPlanningClock:
    """Stands in for the `time` module in engine.daemon: planning appears to take `planning_seconds`."""

    def __init__(self, planning_seconds: float) -> None:
        self.now = 1_000.0
        self.planning_seconds = planning_seconds

    def monotonic(self) -> float:
        return self.now


def test_sweep_dispatches_when_planning_took_longer_than_the_dispatch_budget(
        db: Engine, spec: service.AssignmentSpec, now: datetime, monkeypatch: pytest.MonkeyPatch) -> None:
    """The dispatch budget starts after planning: a sweep that planned for ages still sends what is due."""
    service.create_assignment(db, spec, actor="admin", now=now)  # seven stage_changed notices, due at once
    clock = SlowPlanningClock(planning_seconds=3_600)
    real_plan = engine.daemon.plan

    def slow_plan(session: Any, at: datetime) -> int:
        clock.now += clock.planning_seconds
        return real_plan(session, at)

    monkeypatch.setattr(engine.daemon, "time", clock)
    monkeypatch.setattr(engine.daemon, "plan", slow_plan)
    recorder = Recorder()
    daemon = Daemon(db, [recorder], routing=Routing({}), policy=DeliveryPolicy(), interval_seconds=60,
                    identity=DaemonIdentity("test-host", 1, "t1"), clock=lambda: now)
    daemon.start()
    report = daemon.sweep()
    daemon.stop()
    assert report.dispatched.sent == 7
    assert len(recorder.sent) == 7
