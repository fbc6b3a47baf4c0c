"""Two admins advancing the same assignment at once: exactly one wins and nothing is half-written."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select
from sqlmodel import Session

from engine.domain.errors import SojournError
from engine.domain.views import views
from engine.program import advance, assignments, tasks, workflows
from engine.store.db import open_db
from engine.store.models import Outbox, StageChange, Task
from tests.support.scratch import postgres_database

RACERS = 4
NOW = datetime(2026, 3, 2, 10, tzinfo=UTC)


def _ready_to_advance(db: Engine, spec: assignments.AssignmentSpec) -> int:
    created = assignments.create_assignment(db, spec, actor="setup", now=NOW).view()
    for task in created["tasks"]:
        tasks.complete_task(db, task["id"], note=None, actor="setup", now=NOW)
    return int(created["id"])


RACER = """
import json, sys, time
from datetime import datetime
from pathlib import Path
from engine.program import advance, assignments, tasks, workflows
from engine.domain.errors import SojournError
from engine.store.db import open_db

url, assignment_id, racer, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
engine = open_db(url)
engine.connect().close()
(folder / f"ready-{racer}").touch()
while not (folder / "go").exists():
    time.sleep(0.001)
try:
    advance.advance(engine, assignment_id, to="plan_agreed", reason=None, actor=f"admin{racer}",
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


def test_parallel_advances_have_exactly_one_winner(db: Engine, db_url: str, spec: assignments.AssignmentSpec,
                                                   tmp_path: Path) -> None:
    """Processes released together: one advance commits, the others are refused, and one set of rows exists."""
    assignment_id = _ready_to_advance(db, spec)
    outcomes = _race(db_url, assignment_id, tmp_path)
    winners = [o for o in outcomes if o[0] == "won"]
    assert len(winners) == 1, outcomes
    assert {o[0] for o in outcomes if o[0] != "won"} <= {"ConcurrentChange", "InvalidTransition"}
    assert _count(db, StageChange, StageChange.to_stage == "plan_agreed") == 1
    assert _count(db, Task, Task.stage == "plan_agreed") == 2
    # 3 at creation (assignee, mobility, the coach with tasks), 6 for the one advance to plan_agreed
    assert _count(db, Outbox, Outbox.kind == "stage_changed") == 9
    assert views(assignments.history(db, assignment_id))[-1]["actor"] == f"admin{winners[0][1]}"


def test_losing_cli_advance_exits_1_with_a_clear_message(db: Engine, db_url: str, spec: assignments.AssignmentSpec,
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
    assert _count(db, StageChange, StageChange.to_stage == "plan_agreed") == 1


# --- a task done while its assignment is cancelled, on PostgreSQL where both transactions run at once ----------------


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_task_stays_done_when_done_commits_while_cancel_is_under_way(db: Engine, spec: assignments.AssignmentSpec,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A `task done` that commits after a cancel loaded the tasks keeps the task done; the cancel closes the rest."""
    created = assignments.create_assignment(db, spec, actor="setup", now=NOW).view()
    done_id, other_id = (t["id"] for t in created["tasks"])
    checked = advance._fire

    def done_meanwhile(*args: Any) -> None:
        checked(*args)
        tasks.complete_task(db, done_id, note="sent", actor="coach", now=NOW)

    monkeypatch.setattr(advance, "_fire", done_meanwhile)
    shown = advance.advance(db, created["id"], to="cancelled", reason="budget cut", actor="admin", now=NOW).view()
    with Session(db) as session:
        done, other = session.get(Task, done_id), session.get(Task, other_id)
        assert done is not None
        assert other is not None
        assert (done.status, done.completed_by) == ("done", "coach")
        assert (other.status, other.completed_at) == ("cancelled", None)
    assert {t["id"]: t["status"] for t in shown["tasks"]} == {done_id: "done", other_id: "cancelled"}


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_task_done_is_refused_when_cancel_commits_after_task_was_read(db: Engine,
                                                                      spec: assignments.AssignmentSpec) -> None:
    """A cancel that commits after `task done` read the task wins: done is refused and the task stays cancelled."""
    created = assignments.create_assignment(db, spec, actor="setup", now=NOW).view()
    task_id = created["tasks"][0]["id"]
    cancelled: list[bool] = []

    def cancel_meanwhile(target: Task, _context: Any) -> None:
        if target.id == task_id and not cancelled:
            cancelled.append(True)
            advance.advance(db, created["id"], to="cancelled", reason="budget cut", actor="admin", now=NOW)

    event.listen(Task, "load", cancel_meanwhile)
    try:
        with pytest.raises(SojournError, match=rf"task {task_id} \(interview_assignee\) is already cancelled"):
            tasks.complete_task(db, task_id, note=None, actor="coach", now=NOW)
    finally:
        event.remove(Task, "load", cancel_meanwhile)
    assert cancelled == [True]
    with Session(db) as session:
        task = session.get(Task, task_id)
        assert task is not None
        assert (task.status, task.completed_at, task.completed_by) == ("cancelled", None, None)


@pytest.mark.postgres
def test_concurrent_init_on_postgresql_all_succeed(postgres_url: str, tmp_path: Path) -> None:
    """Several hosts running `sojourn init` at once on a fresh database take turns instead of crashing."""
    with postgres_database(postgres_url, prefix="sojourn_init") as url:
        command = [sys.executable, "-c", "import cli; cli.main()", "--db", url, "init"]
        runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
                for _ in range(3)]
        results = [(p.returncode, err) for p in runs for _, err in [p.communicate(timeout=120)]]
        assert [code for code, _ in results] == [0, 0, 0], results
        engine = open_db(url)
        assert [(w["name"], w["version"]) for w in views(workflows.list_workflows(engine))] == [
            ("leadership-development", 1), ("short-term-project", 1)]
        engine.dispose()
