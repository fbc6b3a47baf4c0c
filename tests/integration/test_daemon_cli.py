"""The daemon and outbox commands: `daemon --once` with a file notifier, `daemon status`, `outbox list|retry`."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
from apscheduler.triggers.interval import IntervalTrigger
from freezegun import freeze_time
from sqlalchemy import Engine
from sqlmodel import select
from structlog.testing import capture_logs
from structlog.typing import EventDict

from engine.delivery.config import DeliveryPolicy, Routing
from engine.delivery.daemon import Daemon, build_scheduler
from engine.delivery.leases import DaemonIdentity, acquire_dispatcher_lease, start_heartbeat
from engine.program import assignments
from engine.program.logging import configure_logging
from engine.store.db import transaction
from engine.store.models import Outbox
from integration.conftest import Recorder, Sojourn, snapshot

OUTBOX_FIELDS = {"key", "kind", "assignment_id", "task_id", "recipient", "role", "subject", "body", "created_at",
                 "status", "attempts", "last_error", "next_attempt_at"}


@pytest.fixture
def created(db: Engine, spec: assignments.AssignmentSpec) -> int:
    """An assignment created a minute ago: three stage_changed notices (assignee, mobility, coach) wait."""
    at = datetime.now(UTC) - timedelta(minutes=1)
    return assignments.create_assignment(db, spec, actor="admin", now=at).id


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "sojourn.toml"
    path.write_text(body, encoding="utf-8")
    return path


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_daemon_once_writes_json_lines_when_file_notifier_is_configured(on_db: Sojourn, created: int,
                                                                        tmp_path: Path) -> None:
    """One sweep delivers every due notice as one JSON object per line, logs JSON on stderr and exits 0."""
    out = tmp_path / "notifications.jsonl"
    config = _config(tmp_path, f'[notifiers.file]\npath = "{out}"\n')
    outcome = on_db("--config", str(config), "daemon", "--once")
    assert outcome.code == 0, outcome.stderr
    delivered = _json_lines(out.read_text(encoding="utf-8"))
    assert len(delivered) == 3
    assert {d["kind"] for d in delivered} == {"stage_changed"}
    assert {d["assignment_id"] for d in delivered} == {created}
    events = [line["event"] for line in _json_lines(outcome.stderr)]
    assert events[0] == "daemon_started"
    assert events[-2:] == ["sweep", "daemon_stopped"]
    assert events.count("notification_sent") == 3


def test_daemon_once_sends_nothing_twice_when_run_again(on_db: Sojourn, created: int, tmp_path: Path) -> None:
    """A second sweep finds nothing due: the file keeps its three lines."""
    out = tmp_path / "notifications.jsonl"
    config = _config(tmp_path, f'[notifiers.file]\npath = "{out}"\n')
    assert on_db("--config", str(config), "daemon", "--once").code == 0
    assert on_db("--config", str(config), "daemon", "--once").code == 0
    assert len(out.read_text(encoding="utf-8").splitlines()) == 3


@pytest.mark.parametrize(("body", "message"), [
    ("[notifiers.file]\n", "[notifiers.file] path: is required"),
    ('[notifiers.email]\nhost = "smtp.example.com"\nsender = "s@example.com"\npassword = "hunter2"\n',
     "[notifiers.email] password: keep secrets out of the config file"),
    ('[notifiers.file]\npath = "n.jsonl"\n[routing]\nescalation = ["webhook"]\n', "webhook not configured"),
    ("[delivery]\nmax_attempts = 0\n", "[delivery] max_attempts: must be greater than or equal to 1, not 0"),
])
def test_daemon_refuses_to_start_with_exit_2_when_config_is_bad(on_db: Sojourn, tmp_path: Path, body: str,
                                                                message: str) -> None:
    """Bad notifier, routing or delivery settings are `Error:` lines and exit 2, and never show a secret."""
    outcome = on_db("--config", str(_config(tmp_path, body)), "daemon", "--once")
    assert outcome.code == 2
    assert outcome.stderr.startswith("Error: ")
    assert message in outcome.stderr
    assert "hunter2" not in outcome.stderr


def test_daemon_refuses_to_start_when_no_notifier_is_configured(on_db: Sojourn, db_url: str, created: int) -> None:
    """Without a notifier the daemon exits 2, says which config file it read ("none") and what to add, and leaves
    every notice queued: nothing is marked sent that nobody received."""
    before = snapshot(db_url)
    outcome = on_db("daemon", "--once")
    assert (outcome.code, outcome.stdout) == (2, "")
    lines = outcome.stderr.splitlines()
    assert lines[:2] == ["Error: no notifier is configured, so the daemon would deliver nothing",
                         "Error: config file: none"]
    assert "[notifiers.console]" in lines[2]
    assert snapshot(db_url) == before


def test_daemon_names_the_config_file_it_read_when_it_has_no_notifier(on_db: Sojourn, tmp_path: Path) -> None:
    """A config file without [notifiers] is named by its full path in the refusal."""
    config = _config(tmp_path, "[daemon]\ninterval_seconds = 5\n")
    outcome = on_db("--config", str(config), "daemon", "--once")
    assert outcome.code == 2
    assert f"Error: config file: {config.resolve()}" in outcome.stderr.splitlines()


def test_daemon_prints_notices_on_the_console_when_console_is_the_named_notifier(on_db: Sojourn, created: int,
                                                                                   tmp_path: Path) -> None:
    """[notifiers.console] prints each notice on stdout, and the start line names the config file read."""
    config = _config(tmp_path, "[notifiers.console]\n")
    outcome = on_db("--config", str(config), "daemon", "--once")
    assert outcome.code == 0, outcome.stderr
    assert outcome.stdout.count("[stage_changed] to ") == 3  # assignee, mobility, the coach (first tasks)
    started = _json_lines(outcome.stderr)[0]
    assert (started["event"], started["config_file"], started["notifiers"]) == (
        "daemon_started", str(config.resolve()), ["console"])


def test_daemon_logs_readable_lines_when_log_format_is_console(on_db: Sojourn, created: int, tmp_path: Path) -> None:
    """--log-format console gives one human-readable line per event instead of JSON."""
    config = _config(tmp_path, f'[notifiers.file]\npath = "{tmp_path / "n.jsonl"}"\n')
    outcome = on_db("--log-format", "console", "--config", str(config), "daemon", "--once")
    assert outcome.code == 0, outcome.stderr
    lines = outcome.stderr.splitlines()
    assert not any(line.startswith("{") for line in lines)
    started = next(line for line in lines if "daemon_started" in line)
    assert "[info" in started
    assert f"config_file={config.resolve()}" in started
    sweep = next(line for line in lines if " sweep " in line)
    assert "planned=0" in sweep
    assert "sent=3" in sweep


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_daemon_refuses_to_start_with_exit_1_when_another_holds_sqlite_lease(on_db: Sojourn, db: Engine,
                                                                            tmp_path: Path) -> None:
    """On SQLite a second daemon is told which daemon holds the lease and until when."""
    other = DaemonIdentity(host="other-host", pid=4242, token="cafe")
    with transaction(db) as session:
        acquire_dispatcher_lease(session, other, datetime.now(UTC), 60)
    outcome = on_db("--config", str(_config(tmp_path, "[notifiers.console]\n")), "daemon", "--once")
    assert outcome.code == 1
    assert outcome.stderr.startswith("Error: another daemon (pid 4242 on other-host) holds the lease until ")


def test_daemon_status_shows_alive_and_stale_daemons_when_heartbeats_differ(on_db: Sojourn, db: Engine) -> None:
    """A fresh heartbeat is alive, an expired one stale; --json prints one document saying so."""
    now = datetime.now(UTC)
    with transaction(db) as session:
        start_heartbeat(session, DaemonIdentity("alpha", 11, "a1"), now, 60)
        start_heartbeat(session, DaemonIdentity("beta", 22, "b2"), now - timedelta(minutes=5), 5)
    status = json.loads(on_db("daemon", "status", "--json").stdout)
    assert status["running"] is True
    assert {(d["host"], d["pid"], d["alive"]) for d in status["daemons"]} == {("alpha", 11, True),
                                                                               ("beta", 22, False)}
    text = on_db("daemon", "status").stdout
    assert "1 daemon(s) alive" in text
    assert "stale" in text


def test_daemon_status_says_none_running_when_no_heartbeat(on_db: Sojourn) -> None:
    """With no daemon ever started, status exits 0 and says so."""
    outcome = on_db("daemon", "status", "--json")
    assert outcome.code == 0
    assert json.loads(outcome.stdout) == {"running": False, "alive": 0, "daemons": [], "dispatcher": None}


def test_outbox_list_prints_notification_shape_when_json(on_db: Sojourn, created: int) -> None:
    """Each row has the contract's notification fields plus status, attempts, last_error and next attempt."""
    rows = json.loads(on_db("outbox", "list", "--status", "pending", "--json").stdout)
    assert len(rows) == 3
    assert set(rows[0]) >= OUTBOX_FIELDS
    assert {(r["status"], r["attempts"], r["task_id"]) for r in rows} == {("pending", 0, None)}
    assert json.loads(on_db("outbox", "list", "--status", "dead", "--json").stdout) == []


def test_outbox_list_shows_cancelled_rows_when_status_cancelled_is_asked(on_db: Sojourn, db: Engine,
                                                                         created: int) -> None:
    """`outbox list --status cancelled` lists the rows whose cause went away, with the reason."""
    with transaction(db) as session:
        row = session.exec(select(Outbox)).first()
        assert row is not None
        row.status, row.last_error = "cancelled", "task done before delivery"
    outcome = on_db("outbox", "list", "--status", "cancelled", "--json")
    assert outcome.code == 0, outcome.stderr
    assert [(r["status"], r["last_error"]) for r in json.loads(outcome.stdout)] == [
        ("cancelled", "task done before delivery")]


def test_outbox_retry_exits_1_when_key_is_unknown(on_db: Sojourn) -> None:
    """Retrying a key that is not in the outbox is refused with exit 1."""
    outcome = on_db("outbox", "retry", "task_due/404")
    assert outcome.code == 1
    assert outcome.stderr.startswith("Error: no notification with key 'task_due/404'")


def test_outbox_retry_makes_dead_row_pending_when_key_exists(on_db: Sojourn, db: Engine, created: int) -> None:
    """A dead row comes back as pending with its attempts reset."""
    with transaction(db) as session:
        row = session.exec(select(Outbox)).first()
        assert row is not None
        row.status, row.attempts, row.last_error = "dead", 8, "webhook: HTTP 410"
        key = row.key
    revived = json.loads(on_db("outbox", "retry", key, "--json").stdout)
    assert (revived["status"], revived["attempts"], revived["last_error"]) == ("pending", 0, "webhook: HTTP 410")


def _sent_row(on_db: Sojourn, tmp_path: Path) -> str:
    """Deliver the three stage_changed notices to the console; the key of one of them, now sent."""
    assert on_db("--config", str(_config(tmp_path, "[notifiers.console]\n")), "daemon", "--once").code == 0
    rows = json.loads(on_db("outbox", "list", "--json").stdout)
    assert {r["status"] for r in rows} == {"sent"}
    return str(rows[0]["key"])


def test_outbox_retry_to_file_sends_a_sent_notification_again_to_that_notifier(on_db: Sojourn, created: int,
                                                                                  tmp_path: Path) -> None:
    """A notice only printed on the console is delivered again, at once, to the file notifier --to names."""
    key = _sent_row(on_db, tmp_path)
    out = tmp_path / "resent.jsonl"
    both = tmp_path / "both.toml"
    both.write_text(f'[notifiers.console]\n[notifiers.file]\npath = "{out}"\n', encoding="utf-8")
    outcome = on_db("--config", str(both), "outbox", "retry", key, "--to", "file", "--json")
    assert outcome.code == 0, outcome.stderr
    (delivered,) = _json_lines(out.read_text(encoding="utf-8"))
    assert (delivered["key"], delivered["kind"]) == (key, "stage_changed")
    shown = json.loads(outcome.stdout)
    assert (shown["status"], shown["delivered_to"], shown["resent_to"]) == ("sent", ["console", "file"], "file")
    assert on_db("--config", str(both), "outbox", "retry", key, "--to", "file").stdout == (
        f"notification {key} sent again to file\n")
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2


def test_outbox_retry_still_refuses_a_sent_notification_without_to(on_db: Sojourn, created: int,
                                                                   tmp_path: Path) -> None:
    """Without --to a sent row is refused (exit 1), with the hint to name a notifier."""
    key = _sent_row(on_db, tmp_path)
    outcome = on_db("outbox", "retry", key)
    assert outcome.code == 1
    assert "`sojourn outbox retry KEY --to NOTIFIER` sends it again to one notifier" in outcome.stderr


def test_outbox_retry_to_an_unknown_notifier_exits_2_listing_the_configured_ones(on_db: Sojourn, db_url: str,
                                                                                   created: int,
                                                                                   tmp_path: Path) -> None:
    """--to must name a notifier of the config file; otherwise exit 2, nothing sent or changed."""
    key = _sent_row(on_db, tmp_path)
    before = snapshot(db_url)
    outcome = on_db("--config", str(_config(tmp_path, "[notifiers.console]\n")), "outbox", "retry", key, "--to",
                    "sms")
    assert (outcome.code, outcome.stdout) == (2, "")
    assert outcome.stderr.startswith("Error: --to: no notifier 'sms' is configured (configured: console)\n")
    assert snapshot(db_url) == before


def test_outbox_retry_to_requeues_a_dead_row_as_before(on_db: Sojourn, db: Engine, created: int,
                                                       tmp_path: Path) -> None:
    """A row not sent yet keeps the retry it always had: pending again, for the next sweep."""
    with transaction(db) as session:
        row = session.exec(select(Outbox)).first()
        assert row is not None
        row.status, row.attempts = "dead", 8
        key = row.key
    config = _config(tmp_path, f'[notifiers.file]\npath = "{tmp_path / "n.jsonl"}"\n')
    revived = json.loads(on_db("--config", str(config), "outbox", "retry", key, "--to", "file", "--json").stdout)
    assert (revived["status"], revived["attempts"]) == ("pending", 0)
    assert not (tmp_path / "n.jsonl").exists()


# --- the daemon object and its scheduler ------------------------------------------------------------------------


def _daemon(db: Engine, clock: Callable[[], datetime], notifier: Recorder, interval: float = 60) -> Daemon:
    return Daemon(db, [notifier], routing=Routing({}), policy=DeliveryPolicy(), interval_seconds=interval,
                  identity=DaemonIdentity("test-host", 1, "t1"), clock=clock)


def test_sweep_plans_then_dispatches_when_a_reminder_falls_due(db: Engine, spec: assignments.AssignmentSpec,
                                                               now: datetime) -> None:
    """One sweep at the due-soon instant both plans the reminders and delivers them."""
    assignments.create_assignment(db, spec, actor="admin", now=now)
    recorder = Recorder()
    at = datetime(2026, 3, 13, 8, tzinfo=UTC)  # 09:00 in Berlin, three days before the coach's tasks are due
    daemon = _daemon(db, lambda: at, recorder)
    daemon.start()
    report = daemon.sweep()
    assert report.planned == 2
    assert report.dispatched.sent == 5  # the two reminders and the three stage_changed of the creation
    assert sorted(n.kind for n in recorder.sent if n.task_id is not None) == ["task_due_soon", "task_due_soon"]
    daemon.stop()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_heartbeat_stops_daemon_when_another_took_the_lease_over(db: Engine, now: datetime) -> None:
    """A daemon that stalled past its lease and lost it to another stops with an error instead of dispatching."""
    daemon = _daemon(db, lambda: now, Recorder())
    daemon.start()
    with transaction(db) as session:
        acquire_dispatcher_lease(session, DaemonIdentity("other", 2, "o2"), now + timedelta(minutes=5), 60)
    assert daemon.heartbeat() is False
    assert daemon.stopping.is_set()
    assert daemon.failure is not None
    assert "lost the dispatcher lease" in daemon.failure.message


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_scheduler_jobs_have_deliberate_options_when_built_for_short_interval(db: Engine, now: datetime) -> None:
    """Sweeps every interval with max_instances 1, coalescing and no misfire limit; heartbeat every lease/3."""
    daemon = _daemon(db, lambda: now, Recorder(), interval=0.2)
    scheduler = build_scheduler(daemon, lambda: None)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {"sweep", "heartbeat"}
    for job in jobs.values():
        assert (job.max_instances, job.coalesce, job.misfire_grace_time) == (1, True, None)
    sweep, heartbeat = jobs["sweep"].trigger, jobs["heartbeat"].trigger
    assert isinstance(sweep, IntervalTrigger)
    assert isinstance(heartbeat, IntervalTrigger)
    assert sweep.interval == timedelta(seconds=0.2)
    assert heartbeat.interval == timedelta(seconds=daemon.lease_seconds / 3)
    first = sweep.get_next_fire_time(None, now)
    assert first is not None
    assert sweep.get_next_fire_time(first, first) == first + timedelta(seconds=0.2)


@pytest.fixture
def logs() -> Iterator[list[EventDict]]:
    """Every log entry from here on, at every level, with the levels the daemon's logging passes on."""
    configure_logging("json", logging.DEBUG)
    with capture_logs() as entries:
        yield entries
    structlog.reset_defaults()


def test_sweep_logs_its_counts_and_next_due_at_info_when_it_did_work(db: Engine, spec: assignments.AssignmentSpec,
                                                                     now: datetime, logs: list[EventDict]) -> None:
    """A sweep that planned or sent logs planned, sent, failed and when work is next due, at info level."""
    assignments.create_assignment(db, spec, actor="admin", now=now)
    at = datetime(2026, 3, 13, 8, tzinfo=UTC)  # 09:00 in Berlin, three days before the coach's tasks are due
    daemon = _daemon(db, lambda: at, Recorder())
    daemon.start()
    report = daemon.sweep()
    daemon.stop()
    (sweep,) = [entry for entry in logs if entry["event"] == "sweep"]
    assert sweep["log_level"] == "info"
    assert (sweep["planned"], sweep["sent"], sweep["failed"], sweep["dead"]) == (2, 5, 0, 0)
    assert report.next_due is not None
    assert report.next_due > at
    assert sweep["next_due"] == report.next_due.isoformat()
    assert not [entry for entry in logs if entry["event"] == "idle"]


def test_idle_daemon_logs_one_line_a_minute_with_the_next_due_instant(db: Engine, spec: assignments.AssignmentSpec,
                                                                     now: datetime, logs: list[EventDict]) -> None:
    """Sweeping every 10 s with nothing to do, the daemon logs `idle` at info once a minute and its sweeps at debug."""
    with freeze_time(now) as frozen:
        assignments.create_assignment(db, spec, actor="admin", now=now - timedelta(days=1))
        daemon = _daemon(db, lambda: datetime.now(UTC), Recorder(), interval=10)
        daemon.start()
        assert daemon.sweep().busy  # delivers the stage_changed notices
        logs.clear()
        for _ in range(13):  # two minutes of sweeps, ten seconds apart
            frozen.tick(10)
            daemon.sweep()
        daemon.stop()
    idle = [entry for entry in logs if entry["event"] == "idle"]
    assert [entry["log_level"] for entry in idle] == ["info", "info", "info"]  # at 10 s, 70 s and 130 s
    assert idle[0]["next_due"] is not None
    assert {entry["log_level"] for entry in logs if entry["event"] == "sweep"} == {"debug"}
