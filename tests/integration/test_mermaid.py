"""The Mermaid text Sojourn prints is read without error by Mermaid's own parser (the npm package, run in Node)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import Engine

from engine.domain.views import views
from engine.planning.forecast import forecast_assignments
from engine.program import advance, assignments, tasks
from integration.conftest import Sojourn
from tests.conftest import NOW

JS = Path(__file__).resolve().parents[1] / "js"
INSTALL = "npm ci --prefix tests/js"

SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the text is the same on every backend


def mermaid_parse(text: str) -> dict[str, Any]:
    """What Mermaid makes of `text`; fails the test (never skips it) when Node or the package is missing."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH; install Node.js 20 or later", pytrace=False)
    if not (JS / "node_modules" / "mermaid").is_dir():
        pytest.fail(f"tests/js/node_modules is missing; run `{INSTALL}`", pytrace=False)
    parsed = subprocess.run([node, str(JS / "parse-mermaid.mjs")], input=text, capture_output=True, text=True,
                            timeout=120, check=False)
    assert parsed.returncode == 0, f"Mermaid refused the text: {parsed.stderr}\n{text}"
    result: dict[str, Any] = json.loads(parsed.stdout)
    return result


def test_parser_refuses_text_that_is_not_mermaid() -> None:
    """The check itself can fail: a gantt chart with an impossible date is refused."""
    node = shutil.which("node")
    assert node is not None
    mermaid_parse("stateDiagram-v2\n    [*] --> a")  # also checks the installation
    bad = "gantt\n    dateFormat YYYY-MM-DD\n    section S\n    A :a1, 2027-13-45, 3d"
    parsed = subprocess.run([node, str(JS / "parse-mermaid.mjs")], input=bad, capture_output=True, text=True,
                            timeout=120, check=False)
    assert parsed.returncode == 1
    assert "Invalid date" in parsed.stderr


@SQLITE_ONLY
@pytest.mark.parametrize("workflow", ["leadership-development", "short-term-project"])
def test_workflow_diagram_parses_with_every_stage_when_shown_with_diagram(on_db: Sojourn, workflow: str) -> None:
    """`workflow show --diagram` is a stateDiagram Mermaid reads, with one state per stage of the workflow."""
    outcome = on_db("workflow", "show", workflow, "--diagram")
    assert outcome.code == 0, outcome.stderr
    parsed = mermaid_parse(outcome.stdout)
    stages = json.loads(on_db("workflow", "show", workflow, "--json").stdout)["stages"]
    assert parsed["type"] == "stateDiagram"
    assert {s["key"] for s in stages} <= set(parsed["states"])
    assert parsed["relations"] == outcome.stdout.count("-->")


@SQLITE_ONLY
def test_gantt_parses_with_stage_bars_and_task_milestones_when_assignment_is_under_way(
        on_db: Sojourn, db: Engine, spec: assignments.AssignmentSpec) -> None:
    """`assignment show --gantt` is a gantt chart Mermaid reads: a bar per stage entry, actual then planned, on the
    forecast's dates, and a milestone on each task's due date."""
    assignment_id = assignments.create_assignment(db, spec, actor="admin", now=NOW).id
    for task in views(tasks.list_tasks(db, now=NOW, assignment_id=assignment_id)):
        tasks.complete_task(db, task["id"], note=None, actor="admin", now=NOW)
    advance.advance(db, assignment_id, to=None, reason=None, actor="admin", now=NOW)
    with freeze_time(NOW):
        outcome = on_db("assignment", "show", str(assignment_id), "--gantt")
    assert outcome.code == 0, outcome.stderr
    parsed = mermaid_parse(outcome.stdout)
    assert parsed["type"] == "gantt"
    assert all(t["processed"] for t in parsed["tasks"])
    forecast = forecast_assignments(db, [assignment_id], now=NOW)
    bars = [t for t in parsed["tasks"] if not t["milestone"]]
    assert [b["start"][:10] for b in bars] == [e.at.date().isoformat() for e in forecast.stages[assignment_id]]
    assert [b["name"].endswith("(planned)") for b in bars] == [e.planned for e in forecast.stages[assignment_id]]
    milestones = sorted(t["start"][:10] for t in parsed["tasks"] if t["milestone"])
    assert milestones == sorted(t.due_on.isoformat() for t in forecast.tasks[assignment_id])
