"""The text views an administrator reads (assignment show and list, task list, workflow show, program summary), and
the smaller refusals: one exit code for an unknown workflow, real dates, past end dates, the hints errors give."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from freezegun import freeze_time
from sqlalchemy import Engine
from structlog.testing import capture_logs

from engine.delivery.links import LinkSigner
from engine.domain.link_rules import LinkAction
from engine.program import advance, assignments, outcomes, plans
from engine.web import actions
from engine.web.app import create_app
from integration.conftest import Sojourn, snapshot
from tests.conftest import NOW
from tests.support import scenarios

ASSIGNMENT_FIELDS = {"id", "workflow", "workflow_version", "stage", "assignee", "home", "host", "start", "end",
                     "stakeholders", "tasks", "blocking", "goals", "signed_off_by", "cost", "early_return_reason"}
INTERVIEW_TITLE = "Interview the assignee on expectations, what to learn and which skills to build"


def text_of(on_db: Sojourn, *args: str) -> str:
    with freeze_time(NOW):
        outcome = on_db(*args)
    assert (outcome.code, outcome.stderr) == (0, ""), outcome
    return outcome.stdout


def refusal(on_db: Sojourn, db_url: str, *args: str) -> tuple[int, str]:
    """Run a command that must be refused: nothing written, nothing on stdout, only `Error:` lines on stderr."""
    before = snapshot(db_url)
    with freeze_time(NOW):
        outcome = on_db(*args)
    assert snapshot(db_url) == before
    assert outcome.stdout == ""
    assert outcome.stderr, outcome
    assert all(line.startswith("Error: ") for line in outcome.stderr.splitlines()), outcome
    return outcome.code, outcome.stderr


@pytest.fixture
def assignment_id(db: Engine, spec: assignments.AssignmentSpec) -> int:
    return outcomes.create_assignment(db, spec, amount="250000", currency="EUR", actor="admin", now=NOW).id


# --- assignment show ---------------------------------------------------------------------------------------------


def test_assignment_show_gives_task_titles_and_who_did_them_with_the_note(on_db: Sojourn, db: Engine,
                                                                            assignment_id: int) -> None:
    """A task line names the task by its title; a done task says when, by whom and the note it was done with."""
    on_db("--actor", "cole.coach@example.com", "task", "done", "1", "--note", "interviewed on site")
    lines = text_of(on_db, "assignment", "show", str(assignment_id)).splitlines()
    (task_line,) = [line for line in lines if "task 1 " in line]
    assert INTERVIEW_TITLE in task_line
    assert "interview_assignee (" not in task_line
    done_line = lines[lines.index(task_line) + 1]
    assert done_line.strip().startswith("done on ")
    assert "by cole.coach@example.com: interviewed on site" in done_line


def test_assignment_show_gives_cost_goals_and_sign_off_dates(on_db: Sojourn, db: Engine,
                                                            assignment_id: int) -> None:
    """The cost, each goal of the current plan, and who signed it on which day appear in the text view."""
    scenarios.finish_stage_tasks(db, assignment_id, NOW)
    advance.advance(db, assignment_id, to=None, reason=None, actor="admin", now=NOW)
    plans.add_goal(db, assignment_id, title="Lead the DACH sales team", measure="quarterly revenue", target="+10%",
                   due="2027-06-30", actor="admin", now=NOW)
    plans.sign_plan(db, assignment_id, role="host_manager", by=None, actor="admin", now=NOW + timedelta(days=2))
    text = text_of(on_db, "assignment", "show", str(assignment_id))
    assert "cost: 250000.00 EUR" in text
    assert "Lead the DACH sales team: quarterly revenue to +10% by 2027-06-30" in text
    assert "signed off: host_manager hanna.host@example.com on 2026-03-04" in text


def test_assignment_show_gives_the_outcomes_an_outcome_refusal_points_to(on_db: Sojourn, db: Engine, db_url: str,
                                                                        spec: assignments.AssignmentSpec,
                                                                        people: dict[str, str]) -> None:
    """A second 12-month outcome is refused, pointing to `assignment show ID`, which does show that outcome."""
    at = datetime(2027, 9, 1, 12, tzinfo=UTC)  # late enough for coaching to end, with the scenario's goal inside
    longer = dataclasses.replace(spec, start="2026-01-05", end="2028-01-31")
    assignment_id = assignments.create_assignment(db, longer, actor="admin", now=at).id
    scenarios.advance_to(db, assignment_id, "completed", at)
    outcomes.record_outcome(db, assignment_id, outcomes.OutcomeReport(
        months=12, retained=True, promoted_to="Head of Sales LATAM", impact="opened the Chilean market",
        competencies=(outcomes.CompetencyRating("negotiation", 3, 4),)), actor="admin", now=at)
    code, stderr = refusal(on_db, db_url, "outcome", "record", str(assignment_id), "--months", "12", "--retained",
                           "yes")
    assert code == 1
    assert f"`sojourn assignment show {assignment_id}` shows it" in stderr
    text = text_of(on_db, "assignment", "show", str(assignment_id))
    assert "12 months after return: still employed" in text
    assert "promoted to Head of Sales LATAM" in text
    assert "competency negotiation: 3 -> 4" in text
    assert "impact: opened the Chilean market" in text
    shown = json.loads(text_of(on_db, "assignment", "show", str(assignment_id), "--json"))
    assert [o["months"] for o in shown["outcomes"]] == [12]


def test_assignment_show_json_keeps_every_field_and_adds_sign_offs_and_outcomes(on_db: Sojourn,
                                                                               assignment_id: int) -> None:
    """The JSON document keeps the fields of the interface and adds `signoffs` and `outcomes`."""
    shown = json.loads(text_of(on_db, "assignment", "show", str(assignment_id), "--json"))
    assert set(shown) >= ASSIGNMENT_FIELDS
    assert (shown["signoffs"], shown["outcomes"]) == ([], [])


def test_text_views_escape_control_characters_in_user_text(on_db: Sojourn, assignment_id: int) -> None:
    """A note holding a newline cannot forge a line of output (escape sequences are refused when the note is given)."""
    on_db("task", "done", "1", "--note", "ok\nError: forged line")
    text = text_of(on_db, "assignment", "show", str(assignment_id))
    assert not any(line.startswith("Error: forged") for line in text.splitlines())
    assert "ok\\nError: forged line" in text


# --- lists ------------------------------------------------------------------------------------------------------


def test_assignment_list_says_what_blocks_and_who_must_act(on_db: Sojourn, assignment_id: int) -> None:
    """NEXT names the stage waited for, each unmet guard and the people who must act, not a count of blockers."""
    lines = text_of(on_db, "assignment", "list").splitlines()
    assert lines[0].split() == ["ID", "ASSIGNEE", "ROUTE", "STAGE", "END", "NEXT"]
    assert "blocker(s)" not in lines[1]
    assert lines[1].endswith("plan_agreed waits on stage_tasks_done: coach cole.coach@example.com")


def test_task_list_names_tasks_by_title(on_db: Sojourn, assignment_id: int) -> None:
    """`task list` has a TASK column holding each task's title."""
    lines = text_of(on_db, "task", "list", "--assignment", str(assignment_id)).splitlines()
    assert lines[0].split()[:3] == ["ID", "ASSIGNMENT", "TASK"]
    assert INTERVIEW_TITLE in lines[1]


def test_workflow_show_names_tasks_by_title(on_db: Sojourn) -> None:
    """Each task of `workflow show` leads with its title, its key beside it."""
    text = text_of(on_db, "workflow", "show", "leadership-development")
    assert f"  task {INTERVIEW_TITLE} (interview_assignee; coach, due" in text


# --- program summary ----------------------------------------------------------------------------------------------


def test_program_summary_reports_each_workflow_on_its_own_line(on_db: Sojourn, db: Engine, assignment_id: int,
                                                               spec: assignments.AssignmentSpec) -> None:
    """Two workflows give two lines, each with its own stages; the cost line says plainly no leader is retained."""
    short = assignments.AssignmentSpec("short-term-project", spec.assignee, "BR", "US", "2026-04-01", "2026-09-30",
                                       {role: email for role, email in spec.stakeholders.items()
                                        if role in ("sending_manager", "host_manager", "mobility")})
    assignments.create_assignment(db, short, actor="admin", now=NOW)
    lines = text_of(on_db, "program", "summary").splitlines()
    assert "workflow leadership-development: 1 assignment(s); by stage: interviews 1" in lines
    assert "workflow short-term-project: 1 assignment(s); by stage: preparation 1" in lines
    assert not any(line.startswith("by stage:") for line in lines)
    (cost,) = [line for line in lines if line.startswith("cost:")]
    assert cost == "cost: 250000.00 EUR for 1 assignment(s); no leader retained yet, so no cost per leader retained"
    assert "mean goal progress: no goal checked in on yet" in lines
    assert not any("n/a" in line for line in lines)


# --- one exit code for an unknown workflow ------------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["assignment", "create", "--workflow", "no-such-program", "--assignee", "ana.lima@example.com", "--home", "BR",
     "--host", "DE", "--start", "2026-04-01", "--end", "2027-03-31"],
    ["report", "--workflow", "no-such-program"],
    ["program", "summary", "--workflow", "no-such-program"],
    ["workflow", "show", "no-such-program"],
    ["forecast", "--workflow", "no-such-program", "--start", "2026-04-01", "--end", "2027-03-31"],
], ids=["assignment-create", "report", "program-summary", "workflow-show", "forecast"])
def test_an_unknown_workflow_is_refused_with_exit_1_everywhere(on_db: Sojourn, db_url: str, people: dict[str, str],
                                                               args: list[str]) -> None:
    """Every command naming a workflow that is not installed exits 1, as the README's table says, naming it."""
    code, stderr = refusal(on_db, db_url, *args)
    assert code == 1
    assert "no-such-program" in stderr
    assert "leadership-development" in stderr  # the installed ones are named


# --- dates --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("end", "message"), [
    ("2027-02-30", "end: '2027-02-30' is not a real date"),
    ("2027-2-28", "end: '2027-2-28' is not a date in the form YYYY-MM-DD"),
])
def test_a_well_formed_day_that_does_not_exist_is_not_a_real_date(on_db: Sojourn, db_url: str, people: dict[str, str],
                                                                  end: str, message: str) -> None:
    """February 30th is well formed but no day: it is called not a real date; a malformed date keeps its message."""
    code, stderr = refusal(on_db, db_url, *create_args(people, start="2026-04-01", end=end))
    assert code == 2
    assert stderr.splitlines()[0] == f"Error: {message}"


def create_args(people: dict[str, str], *, start: str, end: str) -> list[str]:
    args = ["assignment", "create", "--workflow", "leadership-development", "--assignee", people["assignee"],
            "--home", "BR", "--host", "DE", "--start", start, "--end", end]
    return args + [arg for role, email in people.items() if role != "assignee"
                   for arg in ("--stakeholder", f"{role}={email}")]


def test_an_end_date_already_past_needs_allow_past(on_db: Sojourn, db_url: str, people: dict[str, str]) -> None:
    """`assignment create` with an end before today exits 2 naming --allow-past; with it, the assignment is made."""
    args = create_args(people, start="2024-01-08", end="2025-12-31")
    code, stderr = refusal(on_db, db_url, *args)
    assert code == 2
    assert "end 2025-12-31 is already past" in stderr
    assert "--allow-past" in stderr
    created = json.loads(text_of(on_db, *args, "--allow-past", "--json"))
    assert created["end"] == "2025-12-31"


def test_import_refuses_a_line_whose_end_is_past_unless_allowed(on_db: Sojourn, db_url: str, people: dict[str, str],
                                                                tmp_path: Path) -> None:
    """`assignment import` names the line with a past end date and imports nothing; --allow-past imports both."""
    roles = [r for r in people if r != "assignee"]
    rows = [["leadership-development", people["assignee"], "BR", "DE", start, end, *(people[r] for r in roles)]
            for start, end in (("2026-04-01", "2027-03-31"), ("2024-01-08", "2025-12-31"))]
    csv_file = tmp_path / "assignments.csv"
    csv_file.write_text("\n".join(",".join(r) for r in [["workflow", "assignee", "home", "host", "start", "end",
                                                         *roles], *rows]) + "\n", encoding="utf-8")
    code, stderr = refusal(on_db, db_url, "assignment", "import", str(csv_file))
    assert code == 2
    assert f"{csv_file}, line 3: end 2025-12-31 is already past" in stderr
    assert "line 2" not in stderr
    imported = json.loads(text_of(on_db, "assignment", "import", str(csv_file), "--allow-past", "--json"))
    assert len(imported) == 2


# --- links --------------------------------------------------------------------------------------------------------


def test_links_revoke_of_an_unknown_person_points_to_person_list(on_db: Sojourn, db_url: str,
                                                                 people: dict[str, str]) -> None:
    """Revoking the links of someone unknown is a typo to look up, not a person to add: the hint is `person list`."""
    code, stderr = refusal(on_db, db_url, "links", "revoke", "--person", "nobody@example.com")
    assert code == 1
    assert "`sojourn person list` shows them" in stderr
    assert "person add" not in stderr


def test_a_revoked_link_is_logged_as_revoked_and_an_expired_one_as_expired(db: Engine, assignment_id: int,
                                                                           people: dict[str, str]) -> None:
    """Both are refused with 410, but the `link_refused` log line says which: revoked or expired."""
    signer = LinkSigner("a test secret that is long enough!", "https://sojourn.example.com", timedelta(days=14))
    revoked = signer.mint(people["coach"], LinkAction.TASK_DONE, {"task": 1}, now=NOW)
    expired = signer.mint(people["coach"], LinkAction.TASK_DONE, {"task": 1}, now=NOW - timedelta(days=30))
    actions.revoke_person_links(db, people["coach"], now=NOW + timedelta(minutes=1))
    client = create_app(db, signer, clock=lambda: NOW + timedelta(minutes=2)).test_client()
    with capture_logs() as logs:
        statuses = [client.get(f"/a/task_done/{token}").status_code for token in (revoked, expired)]
    assert statuses == [410, 410]
    assert [e["reason"] for e in logs if e["event"] == "link_refused"] == ["revoked", "expired"]
