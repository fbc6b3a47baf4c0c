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
            refused = sojourn.refused("daemon", "--once")
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
