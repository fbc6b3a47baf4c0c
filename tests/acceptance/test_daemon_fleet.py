"""Three installed daemons on one PostgreSQL database share the outbox: every notice goes out once, by one of them."""

from __future__ import annotations

import json
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import col, select

from acceptance.conftest import installed_sojourn
from acceptance.test_daemon_crash import status_counts, wait_for
from engine.program import workflows
from engine.store.db import open_db, transaction
from engine.store.models import DaemonLease
from tests.support.scenarios import add_cast, cast_spec, fill_outbox, quiet_assignment

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

DAEMONS = 3
NOTIFICATIONS = 5_000
INTERVAL = 0.2


@pytest.fixture
def fleet_db(fresh_postgres_url: str) -> Iterator[Engine]:
    """A fresh PostgreSQL database, initialised, with one assignment that has nothing left to plan."""
    engine = open_db(fresh_postgres_url)
    now = datetime.now(UTC)
    workflows.init(engine, now=now)
    add_cast(engine)
    yield engine
    engine.dispose()


def _alive_daemons(db: Engine) -> int:
    with transaction(db) as session:
        rows = session.exec(select(DaemonLease).where(col(DaemonLease.name).startswith("daemon/"))).all()
        return sum(row.expires_at > datetime.now(UTC) for row in rows)


def test_three_daemons_send_each_notice_once_when_sharing_postgresql(fleet_db: Engine, fresh_postgres_url: str,
                                                                     tmp_path: Path) -> None:
    """With three daemons on one PostgreSQL database, all 5,000 notices go out, none twice, and each daemon helps."""
    keys = fill_outbox(fleet_db, quiet_assignment(fleet_db, cast_spec()), NOTIFICATIONS)
    outputs = [tmp_path / f"notifications-{n}.jsonl" for n in range(DAEMONS)]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for n, output in enumerate(outputs):
            config = tmp_path / f"daemon-{n}.toml"
            config.write_text(f'[notifiers.file]\npath = "{output}"\n', encoding="utf-8")
            with (tmp_path / f"daemon-{n}.log").open("wb") as log:
                processes.append(subprocess.Popen(
                    [str(installed_sojourn()), "--db", fresh_postgres_url, "--config", str(config), "daemon",
                     "--interval", str(INTERVAL)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log))

        def all_sent_while_all_run() -> bool:
            exited = [n for n, process in enumerate(processes) if process.poll() is not None]
            assert not exited, f"daemon(s) {exited} exited early; logs in {tmp_path}"
            return status_counts(fleet_db) == {"sent": NOTIFICATIONS}

        wait_for(all_sent_while_all_run, "every notice to be sent")
        assert _alive_daemons(fleet_db) == DAEMONS
        for process in processes:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(timeout=60) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
    logs = [(tmp_path / f"daemon-{n}.log").read_text(encoding="utf-8") for n in range(DAEMONS)]
    assert codes == [0] * DAEMONS, logs

    per_daemon = [[json.loads(line)["key"] for line in path.read_text(encoding="utf-8").splitlines()]
                  if path.exists() else [] for path in outputs]
    sent = Counter(key for lines in per_daemon for key in lines)
    assert [key for key, count in sent.items() if count > 1] == [], "a notice was sent by two daemons or twice"
    assert set(sent) == set(keys)
    assert all(per_daemon), f"a daemon sent nothing: {[len(lines) for lines in per_daemon]}"
