"""Two admins advancing the same assignment at once: exactly one wins and nothing is half-written."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from engine import service
from engine.store.models import Outbox, Task, TransitionRecord

RACERS = 4
NOW = datetime(2026, 3, 2, 10, tzinfo=UTC)


def _ready_to_advance(db: Engine, spec: service.AssignmentSpec) -> int:
    created = service.create_assignment(db, spec, actor="setup", now=NOW)
    for task in created["tasks"]:
        service.complete_task(db, task["id"], note=None, actor="setup", now=NOW)
    return int(created["id"])


RACER = """
import json, sys, time
from datetime import datetime
from pathlib import Path
from engine import service
from engine.errors import SojournError
from engine.store.db import open_engine

url, assignment_id, racer, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
engine = open_engine(url)
engine.connect().close()
(folder / f"ready-{racer}").touch()
while not (folder / "go").exists():
    time.sleep(0.001)
try:
    service.advance(engine, assignment_id, to="plan_agreed", reason=None, actor=f"admin{racer}",
                    now=datetime.fromisoformat(sys.argv[5]))
    print(json.dumps(["won", racer, ""]))
except SojournError as exc:
    print(json.dumps([type(exc).__name__, racer, exc.message]))
"""


def _race(url: str, assignment_id: int, folder: Path) -> list[list[str]]:
    """Start every racer, wait until each is connected, then release them together."""
    racers = [subprocess.Popen([sys.executable, "-c", RACER, url, str(assignment_id), str(i), str(folder),
                                NOW.isoformat()], stdout=subprocess.PIPE, text=True) for i in range(RACERS)]
    while len(list(folder.glob("ready-*"))) < RACERS and all(p.poll() is None for p in racers):
        time.sleep(0.005)
    (folder / "go").touch()
    return [json.loads(p.communicate(timeout=60)[0]) for p in racers]


def _count(db: Engine, model: Any, *where: Any) -> int:
    with Session(db) as session:
        return int(session.execute(select(func.count()).select_from(model).where(*where)).scalar_one())


def test_parallel_advances_have_exactly_one_winner(db: Engine, db_url: str, spec: service.AssignmentSpec,
                                                   tmp_path: Path) -> None:
    """Processes released together: one advance commits, the others are refused, and one set of rows exists."""
    assignment_id = _ready_to_advance(db, spec)
    outcomes = _race(db_url, assignment_id, tmp_path)
    winners = [o for o in outcomes if o[0] == "won"]
    assert len(winners) == 1, outcomes
    assert {o[0] for o in outcomes if o[0] != "won"} <= {"ConcurrentChange", "InvalidTransition"}
    assert _count(db, TransitionRecord, TransitionRecord.to_stage == "plan_agreed") == 1
    assert _count(db, Task, Task.stage == "plan_agreed") == 2
    assert _count(db, Outbox, Outbox.kind == "stage_changed") == 14  # 7 at creation, 7 for the one advance
    assert service.history(db, assignment_id)[-1]["actor"] == f"admin{winners[0][1]}"


def test_losing_cli_advance_exits_1_with_a_clear_message(db: Engine, db_url: str, spec: service.AssignmentSpec,
                                                         tmp_path: Path) -> None:
    """Several `sojourn advance` processes at once: one exits 0, every other exits 1 with an Error: line."""
    assignment_id = _ready_to_advance(db, spec)
    command = [sys.executable, "-c", "import cli; cli.main()", "--db", db_url, "advance", str(assignment_id),
               "--to", "plan_agreed"]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
                 for _ in range(RACERS)]
    finished = [(p.wait(timeout=60), p.stderr.read() if p.stderr else "") for p in processes]
    for p in processes:
        for stream in (p.stdout, p.stderr):
            if stream:
                stream.close()
    assert sorted(code for code, _ in finished) == [0] + [1] * (RACERS - 1)
    for code, stderr in finished:
        if code == 1:
            assert stderr.startswith("Error: ")
            assert "Traceback" not in stderr
    assert _count(db, TransitionRecord, TransitionRecord.to_stage == "plan_agreed") == 1
