"""The installed `sojourn daemon` as a real process: it delivers, reports itself alive, and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from acceptance.conftest import Sojourn
from acceptance.test_leadership_lifecycle import add_cast, create, day

pytestmark = pytest.mark.slow


def _wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def test_daemon_delivers_then_stops_cleanly_when_sent_sigterm(sojourn: Sojourn) -> None:
    """Run with --interval 0.2 it writes the outbox to the file, shows as alive, and exits 0 on SIGTERM."""
    add_cast(sojourn)
    create(sojourn, day(0), day(500))
    out = sojourn.cwd / "notifications.jsonl"
    (sojourn.cwd / "daemon.toml").write_text(f'[notifiers.file]\npath = "{out}"\n', encoding="utf-8")
    daemon = subprocess.Popen([str(sojourn.binary), "--config", "daemon.toml", "daemon", "--interval", "0.2"],
                              cwd=sojourn.cwd, env=sojourn.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        _wait_for(lambda: len(_lines(out)) >= 3, 30, "three notifications in the file")
        status = sojourn.json("daemon", "status")
        assert status["running"] is True
        assert [d["pid"] for d in status["daemons"] if d["alive"]] == [daemon.pid]
        if "SOJOURN_DATABASE_URL" not in sojourn.env:  # SQLite: one daemon at a time
            refused = sojourn.refused("--config", "daemon.toml", "daemon", "--once")
            assert refused.startswith(f"Error: another daemon (pid {daemon.pid} on ")
        daemon.send_signal(signal.SIGTERM)
        _, stderr = daemon.communicate(timeout=30)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
    assert daemon.returncode == 0, stderr
    events = [json.loads(line)["event"] for line in stderr.splitlines()]
    assert events[0] == "daemon_started"
    assert events[-2:] == ["daemon_stopping", "daemon_stopped"]
    assert {json.loads(line)["kind"] for line in _lines(out)} == {"stage_changed"}
    assert len(_lines(out)) == 3  # assignee, mobility and the coach, who has tasks
    assert sojourn.json("daemon", "status")["running"] is False


def _daemon_lease_taken(sojourn: Sojourn, pid: int) -> Callable[[], bool]:
    def taken() -> bool:
        status = sojourn.json("daemon", "status")
        alive = [d["pid"] for d in status["daemons"] if d["alive"]] == [pid]
        lease = status["dispatcher"]
        return alive and (lease is None if "SOJOURN_DATABASE_URL" in sojourn.env else lease["pid"] == pid)
    return taken


def test_a_daemon_killed_with_sigkill_is_replaced_at_once_on_the_same_host(sojourn: Sojourn) -> None:
    """While the daemon lives a second one is refused on SQLite; once it is killed with SIGKILL, `daemon --once`
    succeeds at once (no waiting out its 30 s lease) and the dead daemon is no longer shown as alive."""
    (sojourn.cwd / "daemon.toml").write_text(f'[notifiers.file]\npath = "{sojourn.cwd / "n.jsonl"}"\n',
                                             encoding="utf-8")
    daemon = subprocess.Popen([str(sojourn.binary), "--config", "daemon.toml", "daemon", "--interval", "10"],
                              cwd=sojourn.cwd, env=sojourn.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(_daemon_lease_taken(sojourn, daemon.pid), 30, "the daemon's heartbeat and lease")
        if "SOJOURN_DATABASE_URL" not in sojourn.env:  # SQLite: one daemon at a time while the first lives
            assert sojourn.refused("--config", "daemon.toml", "daemon", "--once").startswith(
                f"Error: another daemon (pid {daemon.pid} on ")
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=30)
        started = time.monotonic()
        sojourn.ok("--config", "daemon.toml", "daemon", "--once")
        assert time.monotonic() - started < 20  # far less than the lease of three 10 s intervals
        status = sojourn.json("daemon", "status")
        assert (status["running"], status["dispatcher"]) == (False, None)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
