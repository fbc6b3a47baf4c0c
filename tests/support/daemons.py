"""Installed `sojourn daemon` processes on one database, started, stopped and killed with SIGKILL, and the waits
that tell what they did meanwhile."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from sqlalchemy import Engine, func
from sqlmodel import select

from engine.delivery.leases import DISPATCHER, lease_seconds
from engine.store.db import transaction
from engine.store.models import DaemonLease, Outbox

INTERVAL = 0.2  # seconds between sweeps; the lease is then its minimum, 5 s
WEBHOOK_DELAY = 0.003  # seconds a receiver takes per request: slow enough that kills land mid-request
DEADLINE = 120.0  # seconds any single wait may take before the test fails


class Daemons:
    """Starts `sojourn daemon` processes on one database and config; kills whatever is left at the end."""

    def __init__(self, binary: Path, db_url: str, config: Path, logs: Path) -> None:
        self.binary, self.db_url, self.config, self.logs = binary, db_url, config, logs
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        log = self.logs / f"daemon-{len(self.started)}.log"
        with log.open("wb") as stderr:  # a file, not a pipe: a daemon logging 1,000 lines must never block
            process = subprocess.Popen([str(self.binary), "--db", self.db_url, "--config", str(self.config),
                                        "daemon", "--interval", str(INTERVAL)],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
        self.started.append(process)
        return process

    def start_once_lease_free(self, db: Engine) -> subprocess.Popen[bytes]:
        """A new daemon once no other holds the dispatcher lease: a killed daemon's lease outlives it by one lease
        length, and its successor may only start once it expired."""
        wait_for(lambda: dispatcher_lease_free(db), "the dead daemon's dispatcher lease to expire",
                 seconds=lease_seconds(INTERVAL) + 30)
        return self.start()

    def kill_at(self, db: Engine, points: Iterable[int], reached: Callable[[int], bool], what: str,
                rng: random.Random) -> None:
        """For each of `points` in turn, start a daemon, wait until `reached(point)`, and kill it with SIGKILL a
        random moment later (up to three requests' time: mid-request, mid-commit, or between the steps of a sweep)."""
        for point in points:
            daemon = self.start_once_lease_free(db)
            wait_for(partial(reached, point), f"{point} {what}", daemon, self)
            time.sleep(rng.uniform(0, WEBHOOK_DELAY * 3))
            daemon.kill()
            daemon.wait(timeout=30)

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


def wait_for(condition: Callable[[], bool], what: str, process: subprocess.Popen[bytes] | None = None,
             daemons: Daemons | None = None, seconds: float = DEADLINE) -> None:
    """Poll `condition` until it holds; fail after `seconds`, or at once if `process` has exited."""
    deadline = time.monotonic() + seconds
    while not condition():
        if process is not None and process.poll() is not None:
            log = daemons.log_of(process) if daemons else ""
            raise AssertionError(f"the daemon exited with {process.returncode} while waiting for {what}:\n"
                                 f"{log[-3000:]}")
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
