"""The installed `sojourn backup` while a real daemon sweeps and an administrator writes: each copy opens on its own."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from acceptance.conftest import Sojourn, installed_sojourn
from acceptance.test_leadership_lifecycle import add_cast, create, day

pytestmark = pytest.mark.slow


@pytest.fixture
def on_sqlite(tmp_path: Path) -> Sojourn:
    """`sojourn` in an empty directory on the default SQLite database `./sojourn.db`, initialised."""
    env = {"PATH": str(installed_sojourn().parent), "HOME": str(tmp_path)}
    command = Sojourn(tmp_path, env, installed_sojourn())
    command.ok("init")
    return command


def test_backups_taken_while_the_daemon_runs_open_with_every_committed_assignment(on_sqlite: Sojourn) -> None:
    """With the daemon sweeping every 0.2 s, each backup taken between two creations holds exactly the assignments
    created before it, and no backup leaves a -wal file beside it."""
    sojourn = on_sqlite
    add_cast(sojourn)
    out = sojourn.cwd / "notifications.jsonl"
    (sojourn.cwd / "daemon.toml").write_text(f'[notifiers.file]\npath = "{out}"\n', encoding="utf-8")
    daemon = subprocess.Popen([str(sojourn.binary), "--config", "daemon.toml", "daemon", "--interval", "0.2"],
                              cwd=sojourn.cwd, env=sojourn.env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        for count in (1, 2, 3):
            create(sojourn, day(0), day(500), "--allow-overlap")
            backup = sojourn.json("backup", f"backup-{count}.db")
            assert backup["assignments"] == count
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
    for count in (1, 2, 3):
        copy = sojourn.cwd / f"backup-{count}.db"
        assert not Path(f"{copy}-wal").exists()
        listed = json.loads(sojourn.ok("--db", f"sqlite:///{copy}", "assignment", "list", "--json"))
        assert [a["id"] for a in listed] == list(range(1, count + 1))
