"""The daemon: an APScheduler loop that plans reminders and dispatches the outbox every few seconds.

One sweep job plans, then dispatches; a heartbeat job keeps this daemon's heartbeat (and, on SQLite, the
dispatcher lease) fresh even while a long sweep runs. The database holds all state, so the jobs live in an
in-memory job store and a restarted daemon simply carries on where the rows say.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from engine.delivery.config import DeliveryPolicy, Routing, Settings
from engine.delivery.dispatch import DispatchReport, dispatch_due
from engine.delivery.leases import (
    DaemonIdentity,
    acquire_dispatcher_lease,
    lease_seconds,
    release_leases,
    renew_leases,
    start_heartbeat,
)
from engine.delivery.links import LinkSigner, required_signer_from
from engine.delivery.outbox import configured_notifiers
from engine.domain.errors import BadInput, SojournError
from engine.planning.planner import plan_in_batches
from engine.program.logging import LogFormat, Logger, configure_logging, get_logger
from engine.store import queries
from engine.store.db import is_sqlite, require_schema, transaction
from notifiers import Notifier, close_notifiers

MIN_DISPATCH_BUDGET_SECONDS = 10.0  # a sweep dispatches for max(interval, this) before planning again
STOP_WAIT_SECONDS = 30.0  # how long a stop waits for the batch in flight before cleaning up anyway
IDLE_LOG_EVERY = timedelta(minutes=1)  # while nothing happens, one `idle` line at most this often
# Sweeps of a 60 s interval land a few milliseconds either side of the minute; without slack half would be skipped.
IDLE_LOG_SLACK = timedelta(seconds=1)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class SweepReport:
    planned: int
    dispatched: DispatchReport
    seconds: float
    next_due: datetime | None = None  # the soonest instant something will be due, after this sweep

    @property
    def busy(self) -> bool:
        return bool(self.planned or self.dispatched.claimed)


class Daemon:
    """Sweeps (plan, then dispatch) for one daemon process, and keeps its heartbeat and lease."""

    def __init__(self, db: Engine, notifiers: Sequence[Notifier], *, routing: Routing, policy: DeliveryPolicy,
                 interval_seconds: float, identity: DaemonIdentity | None = None, clock: Clock = utc_now,
                 log: Logger | None = None, links: LinkSigner | None = None, config_file: str = "none") -> None:
        self.db = db
        self.config_file = config_file  # the config file read, for the start line: a path, or "none"
        self.links = links  # signs each notice's action link as it is sent
        self.notifiers = list(notifiers)
        self.routing = routing
        self.policy = policy
        self.interval_seconds = interval_seconds
        self.lease_seconds = lease_seconds(interval_seconds)
        self.identity = identity or DaemonIdentity.of_this_process()
        self.clock = clock
        self.log = log if log is not None else get_logger("sojourn.daemon")
        self.dispatcher_lease = is_sqlite(db)  # SQLite ignores SKIP LOCKED: one dispatcher at a time
        self.stopping = threading.Event()
        self.failure: SojournError | None = None  # why the daemon stopped on its own, if it did
        self._sweeping = threading.Lock()
        self._rng = random.Random()
        self._idle_logged_at: datetime | None = None  # None: the last sweep did work (or none ran yet)

    def start(self) -> None:
        """Register the heartbeat and, on SQLite, take the dispatcher lease (DaemonAlreadyRunning if held)."""
        now = self.clock()
        with transaction(self.db) as session:
            gone = start_heartbeat(session, self.identity, now, self.lease_seconds)
            taken_over = None
            if self.dispatcher_lease:
                taken_over = acquire_dispatcher_lease(session, self.identity, now, self.lease_seconds)
        self.log.info("daemon_started", holder=self.identity.holder, pid=self.identity.pid, host=self.identity.host,
                      interval_seconds=self.interval_seconds, lease_seconds=self.lease_seconds,
                      database=self.db.url.render_as_string(hide_password=True), config_file=self.config_file,
                      notifiers=[n.name for n in self.notifiers], dispatcher_lease=self.dispatcher_lease,
                      took_over_from=taken_over, forgot_gone_daemons=gone)

    def sweep(self) -> SweepReport:
        """Plan everything due, then dispatch due rows batch by batch until none are left, a stop is asked, or
        the sweep has dispatched for max(interval, 10 s), so that planning gets its turn during a long backlog."""
        with self._sweeping:
            began = time.monotonic()
            planned = self._plan()
            dispatched = DispatchReport()
            budget = max(self.interval_seconds, MIN_DISPATCH_BUDGET_SECONDS)
            # counted from the end of planning: a long plan (a backlog after downtime) must not use up the budget
            dispatching = time.monotonic()
            while not self.stopping.is_set() and time.monotonic() - dispatching < budget:
                batch = dispatch_due(self.db, self.notifiers, holder=self.identity.holder, now=self.clock(),
                                     routing=self.routing, policy=self.policy, rng=self._rng,
                                     should_stop=self.stopping.is_set, log=self.log, links=self.links)
                dispatched.add(batch)
                if batch.claimed < self.policy.batch_size:
                    break
            report = SweepReport(planned, dispatched, time.monotonic() - began, self._next_due())
        self._log_sweep(report)
        return report

    def _next_due(self) -> datetime | None:
        with transaction(self.db) as session:
            return queries.next_due_at(session)

    def _log_sweep(self, report: SweepReport) -> None:
        """A sweep that did work is an info line with its counts; idle sweeps are debug lines, and one `idle`
        info line a minute says the daemon is alive and when it next has work."""
        dispatched = report.dispatched
        next_due = _iso(report.next_due)
        (self.log.info if report.busy else self.log.debug)(
            "sweep", planned=report.planned, claimed=dispatched.claimed, sent=dispatched.sent,
            failed=dispatched.failed, dead=dispatched.dead, released=dispatched.released, next_due=next_due,
            duration_ms=round(report.seconds * 1000, 1))
        if report.busy:
            self._idle_logged_at = None
            return
        now = self.clock()
        if self._idle_logged_at is None or now - self._idle_logged_at >= IDLE_LOG_EVERY - IDLE_LOG_SLACK:
            self.log.info("idle", next_due=next_due)
            self._idle_logged_at = now

    def _plan(self) -> int:
        """Plan everything due, one committed batch at a time, so CLI writers never wait long for the lock."""
        return plan_in_batches(lambda: transaction(self.db), self.clock(), should_stop=self.stopping.is_set)

    def heartbeat(self) -> bool:
        """Renew the heartbeat and lease, and free the claims of daemons whose heartbeat has died.

        Returns False (and asks for a stop) when another daemon has taken the dispatcher lease over.
        """
        now = self.clock()
        with transaction(self.db) as session:
            held = renew_leases(session, self.identity, now, self.lease_seconds, dispatcher=self.dispatcher_lease)
            orphans = queries.release_orphaned_claims(session, now) if held else 0
        if orphans:
            self.log.warning("orphaned_claims_released", rows=orphans)
        if not held:
            self.failure = SojournError("this daemon lost the dispatcher lease to another daemon and stopped",
                                        details=["it was stalled for longer than the lease; `sojourn daemon status` "
                                                 "shows who runs now"])
            self.log.error("lease_lost", holder=self.identity.holder)
            self.stopping.set()
        return held

    def wait_for_sweep(self, timeout: float) -> bool:
        """Wait until the sweep in flight (if any) has finished its row; False on timeout."""
        if self._sweeping.acquire(timeout=timeout):
            self._sweeping.release()
            return True
        return False

    def stop(self) -> None:
        """Hand back unattempted claims and delete the heartbeat and lease, so a successor can start at once."""
        try:
            with transaction(self.db) as session:
                released = release_leases(session, self.identity)
        except OperationalError as exc:
            self.log.error("cleanup_failed", error=_first_line(exc))
            return
        self.log.info("daemon_stopped", holder=self.identity.holder, released_claims=released)


# --- the scheduler ---------------------------------------------------------------------------------------------


# max_instances=1: a sweep must never overlap the previous one (they would compete for the same rows).
# coalesce=True: a sweep covers everything due, so runs missed while one ran long are made up by one run.
# misfire_grace_time=None: a late sweep is still worth running, however late.
JOB_OPTIONS: dict[str, Any] = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}


def build_scheduler(daemon: Daemon, on_stop: Callable[[], None]) -> BlockingScheduler:
    """A BlockingScheduler with the sweep job and the heartbeat job (both with JOB_OPTIONS), both due at once.

    Two worker threads, so the heartbeat is renewed while a long sweep runs.
    """
    scheduler = BlockingScheduler(jobstores={"default": MemoryJobStore()},
                                  executors={"default": ThreadPoolExecutor(max_workers=2)}, timezone=UTC)
    now = datetime.now(UTC)
    scheduler.add_job(_guarded(daemon, daemon.sweep, "sweep_failed", on_stop),
                      IntervalTrigger(seconds=daemon.interval_seconds, timezone=UTC), id="sweep",
                      name="plan and dispatch", next_run_time=now, **JOB_OPTIONS)
    scheduler.add_job(_guarded(daemon, daemon.heartbeat, "heartbeat_failed", on_stop),
                      IntervalTrigger(seconds=daemon.lease_seconds / 3, timezone=UTC), id="heartbeat",
                      name="renew heartbeat and lease", next_run_time=now, **JOB_OPTIONS)
    return scheduler


def _guarded(daemon: Daemon, job: Callable[[], object], event: str, on_stop: Callable[[], None]) -> Callable[[], None]:
    """Run a job so that a failure is logged and retried on the next run, and a stop request ends the loop."""
    def run() -> None:
        if daemon.stopping.is_set():
            on_stop()
            return
        try:
            job()
        except Exception as exc:  # the next run retries; the daemon must outlive a database restart
            daemon.log.error(event, error=_first_line(exc), error_type=type(exc).__name__)
        if daemon.stopping.is_set():
            on_stop()
    return run


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat()


def _first_line(exc: BaseException) -> str:
    original = getattr(exc, "orig", None)
    text = str(original if original is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextlib.contextmanager
def stop_on_signals(daemon: Daemon, on_stop: Callable[[], None]) -> Iterator[None]:
    """While inside, SIGTERM and SIGINT ask the daemon to stop (it finishes the row in flight) and call `on_stop`."""
    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if not daemon.stopping.is_set():
            daemon.log.info("daemon_stopping", signal=signal.Signals(signum).name)
        daemon.stopping.set()
        on_stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def run_forever(daemon: Daemon) -> None:
    """Sweep every interval until SIGTERM or SIGINT (exit cleanly) or a lost lease (SojournError, exit 1)."""
    scheduler: BlockingScheduler | None = None

    def shut_down() -> None:
        # Called from the signal handler or a job thread; never waits, the caller below waits for the sweep.
        with contextlib.suppress(SchedulerNotRunningError):
            if scheduler is not None and scheduler.running:
                scheduler.shutdown(wait=False)

    scheduler = build_scheduler(daemon, shut_down)
    try:
        with stop_on_signals(daemon, shut_down):
            if not daemon.stopping.is_set():
                scheduler.start()
    finally:
        daemon.stopping.set()
        if not daemon.wait_for_sweep(STOP_WAIT_SECONDS):
            daemon.log.warning("stop_timeout", waited_seconds=STOP_WAIT_SECONDS)
        daemon.stop()
    if daemon.failure is not None:
        raise daemon.failure


def run_once(daemon: Daemon) -> SweepReport:
    """One heartbeat (which frees the claims of dead daemons) and one sweep; a signal cuts the sweep short."""
    try:
        with stop_on_signals(daemon, lambda: None):
            daemon.heartbeat()
            report = daemon.sweep()
        if daemon.failure is not None:
            raise daemon.failure
        return report
    except OperationalError as exc:
        raise SojournError(f"the sweep failed: {_first_line(exc)}", details=["nothing was lost; run it again"]
                           ) from None
    finally:
        daemon.stop()


# --- the command ---------------------------------------------------------------------------------------------


def run_daemon(db: Engine, settings: Settings, *, once: bool, environ: Mapping[str, str] | None = None,
               clock: Clock = utc_now, log_format: LogFormat = "auto") -> SweepReport | None:
    """`sojourn daemon`: check the configuration, then sweep once (`once`) or until stopped.

    Bad configuration, or none naming a notifier, raises BadInput before the database is touched: a daemon
    without a notifier would mark every notice sent and deliver it nowhere. An SQLite database with a live
    dispatcher elsewhere raises DaemonAlreadyRunning.
    """
    env = os.environ if environ is None else environ
    links = required_signer_from(settings.serve_settings(env))
    notifiers = configured_notifiers(settings, env)
    if not notifiers:
        where = "that file" if settings.config_path else "./sojourn.toml (or a file named by --config)"
        raise BadInput("no notifier is configured, so the daemon would deliver nothing",
                       details=[f"config file: {settings.config_source}",
                                f"add [notifiers.file], [notifiers.email] or [notifiers.webhook] to {where} "
                                "(docs/daemon.md), or [notifiers.console] to print notices here while trying it out"])
    routing = settings.routing_for([n.name for n in notifiers])
    policy = settings.delivery_policy()
    configure_logging(log_format)
    _route_library_logs()
    require_schema(db)
    daemon = Daemon(db, notifiers, routing=routing, policy=policy, interval_seconds=settings.interval_seconds,
                    clock=clock, links=links, config_file=settings.config_source)
    try:
        daemon.start()
        if once:
            return run_once(daemon)
        run_forever(daemon)
        return None
    finally:
        close_notifiers(notifiers)


class _StructlogHandler(logging.Handler):
    """Forwards APScheduler's warnings into the daemon's JSON log lines."""

    def emit(self, record: logging.LogRecord) -> None:
        logger = get_logger(record.name)
        log_at = (logger.error if record.levelno >= logging.ERROR else
                  logger.warning if record.levelno >= logging.WARNING else logger.info)
        log_at("scheduler", message=record.getMessage())


def _route_library_logs() -> None:
    scheduler_log = logging.getLogger("apscheduler")
    scheduler_log.handlers = [_StructlogHandler()]
    scheduler_log.setLevel(logging.WARNING)
    scheduler_log.propagate = False
