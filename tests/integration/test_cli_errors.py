"""The CLI's failures: documented exit codes, `Error:` lines on stderr, no traceback, and nothing written."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import Engine

from engine.program import advance, assignments, tasks
from integration.conftest import Outcome, Sojourn, snapshot
from workflows import builtin_workflow_texts

NOW_ISO = "2026-03-02"
LEADERSHIP_YAML = builtin_workflow_texts()["leadership-development.yaml"]


@pytest.fixture
def assignment_id(db: Engine, spec: assignments.AssignmentSpec, now: datetime) -> int:
    """An assignment in stage interviews, so every table the CLI writes already has rows to compare."""
    created = assignments.create_assignment(db, spec, actor="setup@example.com", now=now).view()
    return int(created["id"])


def assert_fails(outcome: Outcome, code: int, *fragments: str) -> None:
    """The failure has the exit code, only `Error:` lines on stderr, nothing on stdout, no traceback."""
    assert outcome.code == code, outcome
    assert "Traceback" not in outcome.stdout + outcome.stderr
    assert outcome.stdout == ""
    lines = outcome.stderr.splitlines()
    assert lines, "a failure says what is wrong"
    assert all(line.startswith("Error: ") for line in lines), outcome.stderr
    for fragment in fragments:
        assert fragment in outcome.stderr, f"{fragment!r} not in {outcome.stderr!r}"


def create_args(people: dict[str, str], **overrides: str) -> list[str]:
    """`assignment create` arguments for a valid leadership-development assignment, with overrides."""
    values = {"workflow": "leadership-development", "assignee": people["assignee"], "home": "BR", "host": "DE",
              "start": "2026-03-01", "end": "2027-08-31"}
    values.update({k: v for k, v in overrides.items() if k in values})
    args = ["assignment", "create"] + [part for key, value in values.items() for part in (f"--{key}", value)]
    stakeholders = overrides.get("stakeholders")
    if stakeholders is None:
        stakeholders = " ".join(f"{role}={email}" for role, email in people.items() if role != "assignee")
    return args + [part for pair in stakeholders.split() for part in ("--stakeholder", pair)]


# --- not found, unknown, malformed -----------------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["advance", "999"],
    ["assignment", "show", "999"],
    ["history", "999"],
    ["goal", "add", "999", "--title", "Lead", "--measure", "NPS", "--target", "60", "--due", "2026-09-01"],
    ["signoff", "999", "--role", "coach"],
    ["contact", "log", "999", "--kind", "coaching", "--with", "cole.coach@example.com"],
    ["task", "list", "--assignment", "999"],
], ids=lambda args: " ".join(args[:2]))
def test_commands_refuse_unknown_assignment(on_db: Sojourn, db_url: str, assignment_id: int, args: list[str]) -> None:
    """A command naming an assignment that does not exist exits 1, says so, and writes nothing."""
    before = snapshot(db_url)
    assert_fails(on_db(*args), 1, "no assignment 999", "sojourn assignment list")
    assert snapshot(db_url) == before


def test_task_done_refuses_unknown_task(on_db: Sojourn, db_url: str, assignment_id: int) -> None:
    """Completing a task that does not exist exits 1 and points at `task list`."""
    before = snapshot(db_url)
    assert_fails(on_db("task", "done", "999"), 1, "no task 999", "sojourn task list")
    assert snapshot(db_url) == before


@pytest.mark.parametrize(("overrides", "code", "fragments"), [
    ({"assignee": "nobody@example.com"}, 1, ["assignee: no person with email nobody@example.com",
                                             "sojourn person add nobody@example.com"]),
    ({"stakeholders": "sending_manager=sam.home@example.com host_manager=hanna.host@example.com "
                      "coach=nobody@example.com sponsor=sara.sponsor@example.com talent=tess.talent@example.com "
                      "mobility=mo.mobility@example.com"}, 1, ["coach: no person with email nobody@example.com"]),
    ({"workflow": "nope"}, 1, ["no workflow nope", "leadership-development"]),
    ({"start": "2026-13-01"}, 2, ["'2026-13-01' is not a real date"]),
    ({"end": "soon"}, 2, ["'soon' is not a date in the form YYYY-MM-DD"]),
    ({"start": "2027-09-01"}, 2, ["end 2027-08-31 must be after start 2027-09-01"]),
    ({"start": "2027-08-31"}, 2, ["end 2027-08-31 must be after start 2027-08-31"]),
    ({"home": "Brazil"}, 2, ["'Brazil' is not a two-letter ISO 3166 country code"]),
    ({"assignee": "ana.lima"}, 2, ["'ana.lima' is not an email address"]),
    ({"stakeholders": "sending_manager=sam.home@example.com host_manager=hanna.host@example.com "
                      "coach=cole.coach@example.com sponsor=sara.sponsor@example.com talent=tess.talent@example.com "
                      "mobility=mo.mobility@example.com boss=x@y.com"}, 2, ["unknown role 'boss'"]),
    ({"stakeholders": "sending_manager=sam.home@example.com host_manager=hanna.host@example.com "
                      "sponsor=sara.sponsor@example.com talent=tess.talent@example.com "
                      "mobility=mo.mobility@example.com"}, 2,
     ["missing stakeholder 'coach'", "--stakeholder ROLE=EMAIL"]),
    ({"stakeholders": "sending_manager=sam.home@example.com host_manager=hanna.host@example.com "
                      "coach=cole.coach@example.com sponsor=sara.sponsor@example.com talent=tess.talent@example.com "
                      "mobility=mo.mobility@example.com coach=cole.coach@example.com"}, 2,
     ["--stakeholder given more than once for: coach"]),
    ({"stakeholders": "sending_manager=sam.home@example.com host_manager=hanna.host@example.com "
                      "coach sponsor=sara.sponsor@example.com talent=tess.talent@example.com "
                      "mobility=mo.mobility@example.com"}, 2, ["--stakeholder 'coach': give ROLE=EMAIL"]),
    ({"stakeholders": "sending_manager=sam.home@example.com host_manager=hanna.host@example.com "
                      "coach sponsor=sara.sponsor@example.com talent=tess.talent@example.com "
                      "mobility=mo.mobility@example.com mobility=mo.mobility@example.com"}, 2,
     ["--stakeholder 'coach': give ROLE=EMAIL", "--stakeholder given more than once for: mobility"]),
], ids=["unknown-assignee", "unknown-stakeholder", "unknown-workflow", "bad-start", "bad-end", "end-before-start",
        "end-equals-start", "bad-country", "bad-assignee-email", "unknown-role", "missing-stakeholder",
        "repeated-role", "stakeholder-without-email", "stakeholder-without-email-and-repeated-role"])
def test_assignment_create_refuses_bad_values(on_db: Sojourn, db_url: str, people: dict[str, str],
                                              assignment_id: int, overrides: dict[str, str], code: int,
                                              fragments: list[str]) -> None:
    """Creating an assignment with an unknown or malformed value exits 1 or 2, names it, and creates nothing."""
    before = snapshot(db_url)
    assert_fails(on_db(*create_args(people, **overrides)), code, *fragments)
    assert snapshot(db_url) == before


@pytest.mark.parametrize(("args", "code", "fragments"), [
    (["advance", "{id}", "--to", "nowhere"], 2, ["unknown stage 'nowhere'", "interviews, plan_agreed"]),
    (["advance", "{id}", "--to", "completed"], 1, ["cannot go from interviews to completed",
                                                   "allowed from interviews: plan_agreed, cancelled"]),
    (["advance", "{id}", "--to", "cancelled"], 2, ["moving to cancelled needs a reason", "--reason"]),
    (["advance", "{id}", "--to", "cancelled", "--reason", "   "], 2, ["moving to cancelled needs a reason"]),
    (["signoff", "{id}", "--role", "boss"], 2, ["unknown role 'boss'", "host_manager"]),
    (["signoff", "{id}", "--role", "coach", "--by", "sam.home@example.com"], 1,
     ["sam.home@example.com is not the coach", "cole.coach@example.com is"]),
    (["goal", "add", "{id}", "--title", "Lead", "--measure", "NPS", "--target", "60", "--due", "tomorrow"], 2,
     ["--due: 'tomorrow' is not a date in the form YYYY-MM-DD"]),
    (["goal", "add", "{id}", "--title", "Lead", "--measure", "NPS", "--target", "60", "--due", "2030-01-01"], 2,
     ["--due 2030-01-01 must fall within the assignment"]),
    (["goal", "add", "{id}", "--title", " ", "--measure", "NPS", "--target", "60", "--due", "2026-09-01"], 2,
     ["--title: must not be empty"]),
    (["contact", "log", "{id}", "--kind", "gossip", "--with", "cole.coach@example.com"], 2,
     ["unknown contact kind 'gossip'", "sponsor_contact, coaching"]),
    (["contact", "log", "{id}", "--kind", "coaching", "--with", "cole.coach@example.com", "--on", "2026-02-30"], 2,
     ["--on: '2026-02-30' is not a real date"]),
    (["contact", "log", "{id}", "--kind", "coaching", "--with", "nobody@example.com"], 1,
     ["no person with email nobody@example.com"]),
], ids=["unknown-stage", "invalid-transition", "cancel-without-reason", "cancel-with-blank-reason",
        "unknown-signoff-role", "signoff-by-wrong-person", "goal-due-not-a-date", "goal-due-after-end",
        "goal-without-title", "unknown-contact-kind", "contact-on-impossible-date", "contact-with-unknown-person"])
def test_assignment_commands_refuse_bad_values(on_db: Sojourn, db_url: str, assignment_id: int, args: list[str],
                                               code: int, fragments: list[str]) -> None:
    """A bad stage, role, date or person given to an assignment command exits 1 or 2 and changes nothing."""
    before = snapshot(db_url)
    assert_fails(on_db(*(a.format(id=assignment_id) for a in args)), code, *fragments)
    assert snapshot(db_url) == before


# --- people ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "code", "fragments"), [
    (["person", "add", "new.person@example.com", "--name", "New Person", "--tz", "Mars/Base"], 2,
     ["unknown time zone 'Mars/Base'", "Europe/Berlin"]),
    (["person", "add", "new.person@example.com", "--name", "New Person", "--tz", "CET-ish"], 2,
     ["unknown time zone 'CET-ish'"]),
    (["person", "add", "not-an-email", "--name", "New Person"], 2, ["'not-an-email' is not an email address"]),
    (["person", "add", "new.person@example.com", "--name", "  "], 2, ["--name: must not be empty"]),
    (["person", "add", "ana.lima@example.com", "--name", "Ana Again"], 1,
     ["a person with email ana.lima@example.com already exists"]),
    (["person", "add", "ANA.LIMA@example.com", "--name", "Ana Again"], 1,
     ["a person with email ana.lima@example.com already exists"]),
    (["task", "list", "--owner", "nobody@example.com"], 1, ["no person with email nobody@example.com"]),
], ids=["unknown-zone", "zone-without-area", "bad-email", "blank-name", "duplicate", "duplicate-other-case",
        "unknown-owner"])
def test_person_commands_refuse_bad_values(on_db: Sojourn, db_url: str, people: dict[str, str], args: list[str],
                                           code: int, fragments: list[str]) -> None:
    """Adding a malformed or duplicate person exits 2 or 1 and adds nobody."""
    before = snapshot(db_url)
    assert_fails(on_db(*args), code, *fragments)
    assert snapshot(db_url) == before


# --- guards and tasks -----------------------------------------------------------------------------------------


def test_advance_refuses_when_interview_tasks_open(on_db: Sojourn, db_url: str, assignment_id: int) -> None:
    """Leaving interviews with open tasks exits 1, names each open task and who must act, and writes nothing."""
    before = snapshot(db_url)
    assert_fails(on_db("advance", str(assignment_id)), 1,
                 f"assignment {assignment_id} cannot move from interviews to plan_agreed yet",
                 "stage_tasks_done: 2 task(s) of stage interviews still open",
                 "interview_assignee (coach)", "interview_sending_manager (coach)",
                 "must act: coach cole.coach@example.com")
    assert snapshot(db_url) == before


def test_advance_refuses_when_plan_unsigned(on_db: Sojourn, db: Engine, db_url: str, assignment_id: int,
                                            people: dict[str, str], now: datetime) -> None:
    """Leaving plan_agreed lists every unmet guard, and the sign-off guard names each missing role with its email."""
    for task in assignments.show_assignment(db, assignment_id, now=now).view()["tasks"]:
        tasks.complete_task(db, task["id"], note=None, actor="setup@example.com", now=now)
    advance.advance(db, assignment_id, to=None, reason=None, actor="setup@example.com", now=now)
    before = snapshot(db_url)
    outcome = on_db("advance", str(assignment_id))
    signers = ["assignee", "sending_manager", "host_manager", "talent", "mobility"]
    assert_fails(outcome, 1, "cannot move from plan_agreed to orientation yet",
                 "stage_tasks_done: 2 task(s) of stage plan_agreed still open",
                 "draft_development_plan (coach)", "share_plan_with_host_coach (talent)",
                 "min_smart_goals: the plan has 0 goal(s)",
                 f"plan_signed_off: plan version 1 is not signed off by: {', '.join(signers)}",
                 "must act: " + ", ".join(f"{role} {people[role]}" for role in signers))
    assert len(outcome.stderr.splitlines()) == 4
    assert snapshot(db_url) == before


def test_task_done_refuses_second_completion(on_db: Sojourn, db: Engine, db_url: str, assignment_id: int,
                                             now: datetime) -> None:
    """Completing a task that is already done exits 1 and keeps the first completion as it was."""
    task_id = assignments.show_assignment(db, assignment_id, now=now).view()["tasks"][0]["id"]
    tasks.complete_task(db, task_id, note="first", actor="cole.coach@example.com", now=now)
    before = snapshot(db_url)
    assert_fails(on_db("task", "done", str(task_id), "--note", "second"), 1,
                 f"task {task_id} (interview_assignee) is already done")
    assert snapshot(db_url) == before


def test_advance_refuses_final_stage(on_db: Sojourn, db: Engine, db_url: str, assignment_id: int,
                                     now: datetime) -> None:
    """A cancelled assignment can go nowhere: advancing it exits 1 and writes nothing."""
    advance.advance(db, assignment_id, to="cancelled", reason="withdrew", actor="setup@example.com", now=now)
    before = snapshot(db_url)
    assert_fails(on_db("advance", str(assignment_id)), 1, "stage 'cancelled' is final")
    assert_fails(on_db("advance", str(assignment_id), "--to", "interviews"), 1, "cannot go from cancelled")
    assert snapshot(db_url) == before


# --- CSV import -----------------------------------------------------------------------------------------------

CSV_HEADER = "workflow,assignee,home,host,start,end,sending_manager,host_manager,coach,sponsor,talent,mobility"


def csv_row(people: dict[str, str], start: str = "2026-03-01", assignee: str | None = None) -> str:
    roles = ["sending_manager", "host_manager", "coach", "sponsor", "talent", "mobility"]
    return ",".join(["leadership-development", assignee or people["assignee"], "BR", "DE", start, "2027-08-31",
                     *(people[r] for r in roles)])


def test_import_refuses_whole_file_when_one_row_is_bad(on_db: Sojourn, db_url: str, people: dict[str, str],
                                                       assignment_id: int, tmp_path: Path) -> None:
    """One bad row among good ones exits 2, names its line, and imports none of the good rows."""
    rows = [CSV_HEADER, csv_row(people), csv_row(people, start="2026-13-01"), csv_row(people)]
    path = tmp_path / "hr-export.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    before = snapshot(db_url)
    outcome = on_db("assignment", "import", str(path))
    assert_fails(outcome, 2, "nothing imported", f"{path}, line 3: start: '2026-13-01' is not a real date")
    assert "line 2" not in outcome.stderr
    assert "line 4" not in outcome.stderr
    assert snapshot(db_url) == before


def test_import_names_every_bad_line(on_db: Sojourn, db_url: str, people: dict[str, str], assignment_id: int,
                                     tmp_path: Path) -> None:
    """Every bad row is reported with its own line number, whatever kind of problem it has."""
    rows = [CSV_HEADER, csv_row(people, assignee="nobody@example.com"), csv_row(people),
            csv_row(people, start="2028-01-01")]
    path = tmp_path / "hr-export.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    before = snapshot(db_url)
    assert_fails(on_db("assignment", "import", str(path)), 2, "nothing imported; 2 line(s) to fix",
                 "line 2: assignee: no person with email nobody@example.com",
                 "line 4: end 2027-08-31 must be after start 2028-01-01")
    assert snapshot(db_url) == before


@pytest.mark.parametrize(("header", "fragments"), [
    (CSV_HEADER + ",boss", ["line 1: unknown column 'boss'"]),
    (CSV_HEADER.replace("start,", ""), ["line 1: missing column 'start'"]),
], ids=["unknown-column", "missing-column"])
def test_import_refuses_wrong_header(on_db: Sojourn, db_url: str, people: dict[str, str], assignment_id: int,
                                     tmp_path: Path, header: str, fragments: list[str]) -> None:
    """A header with an unknown or missing column exits 2, names the column, and imports nothing."""
    path = tmp_path / "hr-export.csv"
    path.write_text(f"{header}\n{csv_row(people)}\n", encoding="utf-8")
    before = snapshot(db_url)
    assert_fails(on_db("assignment", "import", str(path)), 2, *fragments)
    assert snapshot(db_url) == before


def test_import_refuses_missing_file(on_db: Sojourn, db_url: str, tmp_path: Path) -> None:
    """Importing a file that does not exist exits 2 and says it cannot be read."""
    assert_fails(on_db("assignment", "import", str(tmp_path / "missing.csv")), 2, "cannot read", "missing.csv")


# --- workflow files -------------------------------------------------------------------------------------------


def mutated_workflow(change: Callable[[dict[str, Any]], None]) -> str:
    definition = yaml.safe_load(LEADERSHIP_YAML)
    change(definition)
    return yaml.safe_dump(definition, sort_keys=False)


def _set(path: list[str | int], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(definition: dict[str, Any]) -> None:
        node: Any = definition
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value
    return change


def _drop_owner(definition: dict[str, Any]) -> None:
    del definition["stages"][1]["tasks"][0]["owner"]


def _schema_problems(definition: dict[str, Any]) -> None:
    _drop_owner(definition)
    definition["stages"][2]["tasks"][0]["due"] = {"days": "soon"}
    definition["colour"] = "blue"


def _add_unreachable_stage(definition: dict[str, Any]) -> None:
    definition["stages"].append({"key": "limbo", "title": "Limbo"})


def _unknown_guard(definition: dict[str, Any]) -> None:
    definition["transitions"][0]["guards"].append("moon_phase")


def _many_semantic_problems(definition: dict[str, Any]) -> None:
    for change in (_set(["stages", 1, "tasks", 0, "owner"], "nobody"),
                   _set(["stages", 1, "tasks", 1, "key"], "interview_assignee"),
                   _set(["stages", 0, "tasks", 1, "due"], {"days": -3}), _unknown_guard, _add_unreachable_stage):
        change(definition)


@pytest.mark.parametrize(("change", "fragments"), [
    (_drop_owner, ["1 problem(s)", "stages[1].tasks[0].owner: Field required"]),
    (_schema_problems, ["3 problem(s)", "stages[1].tasks[0].owner: Field required",
                        "stages[2].tasks[0].due.days: Input should be a valid integer", "colour: Extra inputs"]),
    (_set(["stages", 1, "tasks", 0, "owner"], "nobody"), ["stages[1].tasks[0].owner: unknown role 'nobody'"]),
    (_unknown_guard, ["transitions[0].guards[1].guard: unknown guard 'moon_phase'", "stage_tasks_done"]),
    (_add_unreachable_stage, ["stages: stage 'limbo' is unreachable from 'interviews'"]),
    (_set(["stages", 1, "tasks", 1, "key"], "interview_assignee"),
     ["stages[0].tasks[0].key: duplicate task key 'interview_assignee'",
      "stages[1].tasks[1].key: duplicate task key 'interview_assignee'"]),
    (_set(["stages", 0, "tasks", 1, "due"], {"days": -3}),
     ["stages[0].tasks[1].due.days: a task cannot fall due before its stage begins"]),
    (_many_semantic_problems, ["6 problem(s)", "stages[1].tasks[0].owner", "stages[1].tasks[1].key",
                               "stages[0].tasks[1].due.days", "transitions[0].guards[1].guard", "'limbo'"]),
], ids=["schema-missing-field", "schema-several", "unknown-owner", "unknown-guard", "unreachable-stage",
        "duplicate-task-key", "negative-stage-entry-offset", "every-semantic-problem"])
def test_workflow_validate_reports_every_problem_by_path(sojourn: Sojourn, tmp_path: Path,
                                                         change: Callable[[dict[str, Any]], None],
                                                         fragments: list[str]) -> None:
    """An invalid workflow file exits 2 and prints every problem, each located by its path in the file."""
    path = tmp_path / "workflow.yaml"
    path.write_text(mutated_workflow(change), encoding="utf-8")
    outcome = sojourn("workflow", "validate", str(path))
    assert_fails(outcome, 2, *fragments)
    assert all(line.startswith(f"Error: {path}") for line in outcome.stderr.splitlines())


def test_workflow_validate_reports_yaml_syntax_error_with_line(sojourn: Sojourn, tmp_path: Path) -> None:
    """A file that is not YAML exits 2 and names the line the syntax breaks on."""
    lines = LEADERSHIP_YAML.splitlines()
    broken = next(i for i, line in enumerate(lines) if line.startswith("initial:"))
    lines[broken] = "initial: interviews: again"
    path = tmp_path / "workflow.yaml"
    path.write_text("\n".join(lines), encoding="utf-8")
    assert_fails(sojourn("workflow", "validate", str(path)), 2, f"not valid YAML (line {broken + 1},")


@pytest.mark.parametrize(("text", "fragment"), [
    ("- just\n- a list\n", "a workflow must be a YAML mapping"),
    ("", "a workflow must be a YAML mapping"),
], ids=["list", "empty"])
def test_workflow_validate_refuses_non_mapping(sojourn: Sojourn, tmp_path: Path, text: str, fragment: str) -> None:
    """A YAML document that is not a mapping exits 2 and says what a workflow looks like."""
    path = tmp_path / "workflow.yaml"
    path.write_text(text, encoding="utf-8")
    assert_fails(sojourn("workflow", "validate", str(path)), 2, fragment)


def test_workflow_validate_refuses_missing_file(sojourn: Sojourn, tmp_path: Path) -> None:
    """Validating a file that does not exist exits 2 and says it cannot be read."""
    assert_fails(sojourn("workflow", "validate", str(tmp_path / "nope.yaml")), 2, "cannot read", "nope.yaml")


def test_workflow_install_of_invalid_file_leaves_workflows_unchanged(on_db: Sojourn, db_url: str,
                                                                     tmp_path: Path) -> None:
    """Installing an invalid workflow exits 2 with its problems and installs no new version."""
    path = tmp_path / "workflow.yaml"
    path.write_text(mutated_workflow(_unknown_guard), encoding="utf-8")
    before = snapshot(db_url)
    assert_fails(on_db("workflow", "install", str(path)), 2, "unknown guard 'moon_phase'")
    assert snapshot(db_url) == before


def test_workflow_show_refuses_unknown_name_and_version(on_db: Sojourn) -> None:
    """Showing a workflow or version that is not installed exits 1 and lists what is."""
    assert_fails(on_db("workflow", "show", "nope"), 1, "no workflow nope", "leadership-development")
    assert_fails(on_db("workflow", "show", "leadership-development", "--version", "9"), 1,
                 "no workflow leadership-development version 9")


# --- database and configuration -------------------------------------------------------------------------------


def test_unreachable_database_exits_2_without_echoing_password(sojourn: Sojourn) -> None:
    """A database server that cannot be reached exits 2, names the URL with its password hidden, and says why."""
    outcome = sojourn("--db", "postgresql+psycopg://nobody:s3cr3t-pw@127.0.0.1:1/x", "person", "list")
    assert_fails(outcome, 2, "cannot connect to postgresql+psycopg://nobody:***@127.0.0.1:1/x", "--db")
    assert "s3cr3t-pw" not in outcome.stderr


def test_malformed_database_url_exits_2(sojourn: Sojourn) -> None:
    """A database URL that is not a URL exits 2 and shows what one looks like."""
    assert_fails(sojourn("--db", "notaurl", "person", "list"), 2, "cannot use database URL",
                 "sqlite:///sojourn.db")


def test_unknown_database_driver_exits_2(sojourn: Sojourn) -> None:
    """A URL naming a database driver that is not installed exits 2 instead of failing on import."""
    assert_fails(sojourn("--db", "nosuchdb://u@h/x", "person", "list"), 2, "cannot use database URL")


def test_uninitialised_database_exits_1_with_hint(sojourn: Sojourn, tmp_path: Path) -> None:
    """A database without the schema exits 1 and tells the user to run `sojourn init`."""
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()  # a database file without Sojourn's tables
    url = f"sqlite:///{empty}"
    assert_fails(sojourn("--db", url, "person", "list"), 1, "is not initialised", "sojourn init")
    assert_fails(sojourn("--db", url, "person", "add", "a@example.com", "--name", "A"), 1, "sojourn init")


def test_missing_database_file_is_refused_and_not_created(sojourn: Sojourn, tmp_path: Path) -> None:
    """A command other than init on a SQLite file that does not exist exits 1 and leaves no file behind."""
    missing = tmp_path / "missing.db"
    assert_fails(sojourn("--db", f"sqlite:///{missing}", "history", "1"), 1, "does not exist", "sojourn init")
    assert list(tmp_path.glob("missing.db*")) == []


def test_missing_config_file_exits_2(sojourn: Sojourn, tmp_path: Path) -> None:
    """A --config path that does not exist exits 2 and names it."""
    missing = tmp_path / "missing.toml"
    assert_fails(sojourn("--config", str(missing), "person", "list"), 2, f"config file {missing} does not exist")


def test_invalid_config_file_exits_2(sojourn: Sojourn, tmp_path: Path) -> None:
    """A config file that is not TOML exits 2 and says so."""
    config = tmp_path / "sojourn.toml"
    config.write_text("[database\nurl = 1\n", encoding="utf-8")
    assert_fails(sojourn("--config", str(config), "person", "list"), 2, "not valid TOML")


# --- values at the edges --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "code", "fragments"), [
    (["assignment", "show", "9223372036854775808"], 2,
     ["9223372036854775808 is not in the range", "see `sojourn assignment show --help`"]),
    (["assignment", "show", "0"], 2, ["0 is not in the range"]),
    (["task", "done", "3000000000"], 2, ["is not in the range"]),
    (["goal", "add", "{id}", "--title", "Lead", "--measure", "NPS", "--target", "60", "--due", "20260901"], 2,
     ["--due: '20260901' is not a date in the form YYYY-MM-DD"]),
    (["contact", "log", "{id}", "--kind", "coaching", "--with", "sam.home@example.com"], 1,
     ["a coaching contact is with the coach of assignment", "cole.coach@example.com", "not sam.home@example.com"]),
    (["contact", "log", "{id}", "--kind", "coaching", "--with", "cole.coach@example.com", "--on", "2099-01-01"], 2,
     ["is in the future"]),
    (["assignment", "list", "--stage", "limbo"], 2, ["--stage: no installed workflow has a stage 'limbo'"]),
    (["daemon", "--once", "--interval", "nan"], 2, ["daemon interval: nan must be a number of seconds"]),
], ids=["id-beyond-64-bits", "id-zero", "id-beyond-32-bits", "compact-date", "contact-with-wrong-person",
        "contact-in-future", "unknown-stage-filter", "interval-nan"])
def test_edge_values_are_refused_without_traceback(on_db: Sojourn, db_url: str, assignment_id: int,
                                                   args: list[str], code: int, fragments: list[str]) -> None:
    """Out-of-range ids, compact dates, the wrong contact person and a NaN interval are user errors."""
    before = snapshot(db_url)
    assert_fails(on_db(*(a.format(id=assignment_id) for a in args)), code, *fragments)
    assert snapshot(db_url) == before


def test_create_refuses_dates_outside_plausible_years(on_db: Sojourn, db_url: str, people: dict[str, str]) -> None:
    """A start in year 1 would overflow the calendar arithmetic; it is refused as a bad value."""
    before = snapshot(db_url)
    assert_fails(on_db(*create_args(people, start="0001-01-01")), 2, "start: 0001-01-01 is outside the years")
    assert snapshot(db_url) == before


def test_import_refuses_a_column_named_twice(on_db: Sojourn, db_url: str, people: dict[str, str],
                                             assignment_id: int, tmp_path: Path) -> None:
    """Two columns for one role would silently drop one email; the header is refused instead."""
    path = tmp_path / "hr-export.csv"
    path.write_text(f"{CSV_HEADER},coach\n{csv_row(people)},{people['coach']}\n", encoding="utf-8")
    before = snapshot(db_url)
    assert_fails(on_db("assignment", "import", str(path)), 2, "line 1: column 'coach' appears more than once")
    assert snapshot(db_url) == before


def test_config_file_that_is_not_utf8_exits_2(sojourn: Sojourn, tmp_path: Path) -> None:
    """A config file in another encoding is reported, not a UnicodeDecodeError."""
    config = tmp_path / "latin1.toml"
    config.write_bytes("[daemon]\n# caf\xe9\ninterval_seconds = 5\n".encode("latin-1"))
    assert_fails(sojourn("--config", str(config), "person", "list"), 2, "not UTF-8 text")


def test_database_url_naming_a_non_database_file_exits_2(sojourn: Sojourn, tmp_path: Path) -> None:
    """A SQLite URL pointing at some other file is a bad value, not a traceback."""
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list\n" * 200, encoding="utf-8")
    assert_fails(sojourn("--db", f"sqlite:///{notes}", "person", "list"), 2, "cannot connect to")
