"""The CLI's commands on each backend: what they print with --json, and where settings come from."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from freezegun import freeze_time
from sqlalchemy.engine import Engine

from engine.domain.views import views
from engine.program import advance, assignments, tasks, workflows
from engine.program.people import add_person
from engine.store.db import open_db
from integration.conftest import Outcome, Sojourn, snapshot
from workflows import builtin_workflow_texts

LEADERSHIP_YAML = builtin_workflow_texts()["leadership-development.yaml"]
LEADERSHIP_STAGES = ["interviews", "plan_agreed", "orientation", "manager_briefing", "alignment_meetings", "coaching",
                     "repatriation", "completed", "cancelled"]
ASSIGNMENT_FIELDS = {"id", "workflow", "workflow_version", "stage", "assignee", "home", "host", "start", "end",
                     "stakeholders", "tasks", "blocking"}
TASK_FIELDS = {"id", "key", "title", "stage", "owner_role", "owner", "due_at", "status", "completed_at"}
HISTORY_FIELDS = {"from", "to", "at", "actor", "reason"}


def succeeds(outcome: Outcome) -> str:
    assert outcome.code == 0, outcome
    assert outcome.stderr == ""
    return outcome.stdout


def as_json(outcome: Outcome) -> Any:
    """The one JSON document a --json command printed (json.loads refuses anything before or after it)."""
    return json.loads(succeeds(outcome))


def create_args(people: dict[str, str], *, start: str = "2026-03-01", end: str = "2027-08-31") -> list[str]:
    args = ["assignment", "create", "--workflow", "leadership-development", "--assignee", people["assignee"],
            "--home", "BR", "--host", "DE", "--start", start, "--end", end]
    for role, email in people.items():
        if role != "assignee":
            args += ["--stakeholder", f"{role}={email}"]
    return args


def complete_stage_tasks(db: Engine, assignment_id: int, now: datetime) -> None:
    view = assignments.show_assignment(db, assignment_id, now=now).view()
    for task in view["tasks"]:
        if task["stage"] == view["stage"] and task["status"] == "open":
            tasks.complete_task(db, task["id"], note=None, actor="setup@example.com", now=now)


# --- init and workflows ---------------------------------------------------------------------------------------


def test_init_twice_installs_nothing_new(on_db: Sojourn, db_url: str) -> None:
    """Running init on an initialised database reports every workflow as already there and changes nothing."""
    before = snapshot(db_url)
    report = as_json(on_db("init", "--json"))
    assert report["schema_before"] == report["schema"]
    assert {w["name"] for w in report["workflows"]} == {"leadership-development", "short-term-project"}
    assert not any(w["new"] for w in report["workflows"])
    assert snapshot(db_url) == before


def test_init_creates_schema_then_is_idempotent(sojourn: Sojourn, tmp_path: Path) -> None:
    """The first init creates the schema and installs version 1 of each built-in; the second adds nothing."""
    url = f"sqlite:///{tmp_path / 'new.db'}"
    first = as_json(sojourn("--db", url, "init", "--json"))
    assert first["schema_before"] is None
    assert [(w["version"], w["new"]) for w in first["workflows"]] == [(1, True), (1, True)]
    after_first = snapshot(url)
    second = as_json(sojourn("--db", url, "init", "--json"))
    assert second["schema_before"] == second["schema"] == first["schema"]
    assert [(w["version"], w["new"]) for w in second["workflows"]] == [(1, False), (1, False)]
    assert snapshot(url) == after_first


def test_workflow_list_json_has_name_version_and_title(on_db: Sojourn) -> None:
    """`workflow list --json` lists each installed workflow with its newest version and title."""
    listed = {w["name"]: w for w in as_json(on_db("workflow", "list", "--json"))}
    assert set(listed) == {"leadership-development", "short-term-project"}
    leadership = listed["leadership-development"]
    assert leadership["version"] == 1
    assert leadership["versions"] == [1]
    assert leadership["title"] == "Leadership development assignment"
    assert datetime.fromisoformat(leadership["installed_at"]).utcoffset() is not None


def test_workflow_show_json_describes_the_lifecycle(on_db: Sojourn) -> None:
    """`workflow show --json` gives roles, stages in order with their tasks, transitions with guards, cadences."""
    shown = as_json(on_db("workflow", "show", "leadership-development", "--json"))
    assert shown["name"] == "leadership-development"
    assert shown["version"] == 1
    assert shown["roles"] == ["assignee", "sending_manager", "host_manager", "coach", "sponsor", "talent", "mobility"]
    assert [s["key"] for s in shown["stages"]] == LEADERSHIP_STAGES
    interview_tasks = shown["stages"][0]["tasks"]
    assert [t["key"] for t in interview_tasks] == ["interview_assignee", "interview_sending_manager"]
    assert interview_tasks[0]["owner"] == "coach"
    leaving_plan = next(t for t in shown["transitions"] if t["from"] == "plan_agreed")
    assert [g["guard"] for g in leaving_plan["guards"]] == ["stage_tasks_done", "min_smart_goals", "plan_signed_off"]
    cancel = next(t for t in shown["transitions"] if t["to"] == "cancelled")
    assert cancel["requires_reason"] is True
    assert {c["kind"] for c in shown["cadences"]} == {"sponsor_contact", "coaching", "checkin", "pulse"}


def test_workflow_show_diagram_prints_mermaid_with_every_stage(on_db: Sojourn) -> None:
    """`workflow show --diagram` prints a Mermaid stateDiagram-v2 naming every stage and its guards."""
    diagram = succeeds(on_db("workflow", "show", "leadership-development", "--diagram"))
    lines = diagram.splitlines()
    assert lines[0] == "stateDiagram-v2"
    assert "    [*] --> interviews" in lines
    for stage in LEADERSHIP_STAGES:
        assert any(line.strip().startswith(f"{stage} :") for line in lines), stage
    assert "    coaching --> repatriation : stage_tasks_done, not_before" in lines
    assert "    completed --> [*]" in lines


def _with_reference_check(tmp_path: Path) -> Path:
    """leadership-development with one more interviews task, written to a file to install as a new version."""
    definition = yaml.safe_load(LEADERSHIP_YAML)
    definition["stages"][0]["tasks"].append(
        {"key": "reference_check", "title": "Check references", "owner": "talent", "due": {"days": 7}})
    path = tmp_path / "leadership-development.yaml"
    path.write_text(yaml.safe_dump(definition, sort_keys=False), encoding="utf-8")
    return path


def test_workflow_install_keeps_running_assignments_on_their_version(on_db: Sojourn, people: dict[str, str],
                                                                     tmp_path: Path) -> None:
    """A new workflow version applies to new assignments only; earlier ones keep their version and tasks."""
    earlier = as_json(on_db(*create_args(people), "--json"))
    path = _with_reference_check(tmp_path)

    installed = as_json(on_db("workflow", "install", str(path), "--json"))
    assert installed == {"name": "leadership-development", "version": 2, "new": True}
    assert as_json(on_db("workflow", "install", str(path), "--json"))["new"] is False
    later = as_json(on_db(*create_args(people), "--allow-overlap", "--json"))

    assert later["workflow_version"] == 2
    assert [t["key"] for t in later["tasks"]] == ["interview_assignee", "interview_sending_manager", "reference_check"]
    kept = as_json(on_db("assignment", "show", str(earlier["id"]), "--json"))
    assert kept["workflow_version"] == 1
    assert [t["key"] for t in kept["tasks"]] == ["interview_assignee", "interview_sending_manager"]
    listed = {w["name"]: w for w in as_json(on_db("workflow", "list", "--json"))}
    assert listed["leadership-development"]["versions"] == [1, 2]
    old = as_json(on_db("workflow", "show", "leadership-development", "--version", "1", "--json"))
    assert "reference_check" not in [t["key"] for t in old["stages"][0]["tasks"]]


def test_each_database_uses_its_own_text_of_a_workflow_version(sojourn: Sojourn, tmp_path: Path) -> None:
    """Two databases with different texts installed as version 2 each create assignments from their own text."""
    cast = {"assignee": "ana@example.com", "sending_manager": "sam@example.com", "host_manager": "hanna@example.com",
            "coach": "cole@example.com", "sponsor": "sara@example.com", "talent": "tess@example.com",
            "mobility": "mo@example.com"}
    for name in ("first", "second"):
        url = f"sqlite:///{tmp_path / name}.db"
        succeeds(sojourn("--db", url, "init"))
        for email in cast.values():
            succeeds(sojourn("--db", url, "person", "add", email, "--name", email))
        definition = yaml.safe_load(LEADERSHIP_YAML)
        definition["stages"][0]["tasks"].append(
            {"key": f"{name}_check", "title": "Check", "owner": "talent", "due": {"days": 7}})
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(definition, sort_keys=False), encoding="utf-8")
        assert as_json(sojourn("--db", url, "workflow", "install", str(path), "--json"))["version"] == 2
        created = as_json(sojourn("--db", url, *create_args(cast), "--json"))
        assert created["tasks"][-1]["key"] == f"{name}_check"


def test_assignment_on_old_version_advances_by_its_own_rules(on_db: Sojourn, people: dict[str, str],
                                                             tmp_path: Path) -> None:
    """An assignment started on version 1 leaves interviews without the task version 2 added to that stage."""
    earlier = as_json(on_db(*create_args(people), "--json"))
    path = _with_reference_check(tmp_path)
    succeeds(on_db("workflow", "install", str(path)))
    for task in earlier["tasks"]:
        succeeds(on_db("task", "done", str(task["id"])))
    moved = as_json(on_db("advance", str(earlier["id"]), "--json"))
    assert (moved["stage"], moved["workflow_version"]) == ("plan_agreed", 1)


# --- people and assignments -----------------------------------------------------------------------------------


def test_person_add_and_list_json(on_db: Sojourn) -> None:
    """`person add --json` returns the stored person (email lower-cased) and `person list --json` lists them."""
    added = as_json(on_db("person", "add", "Ana.Lima@Example.com", "--name", "Ana Lima", "--tz", "America/Sao_Paulo",
                          "--json"))
    assert {k: added[k] for k in ("email", "name", "tz")} == {
        "email": "ana.lima@example.com", "name": "Ana Lima", "tz": "America/Sao_Paulo"}
    as_json(on_db("person", "add", "bo@example.com", "--name", "Bo", "--json"))
    listed = as_json(on_db("person", "list", "--json"))
    assert [(p["email"], p["tz"]) for p in listed] == [("ana.lima@example.com", "America/Sao_Paulo"),
                                                       ("bo@example.com", "UTC")]


def test_person_list_json_is_an_empty_list_without_people(on_db: Sojourn) -> None:
    """With nobody added, `person list --json` prints an empty JSON list rather than a human placeholder."""
    assert as_json(on_db("person", "list", "--json")) == []


def test_assignment_create_json_has_every_contract_field(on_db: Sojourn, people: dict[str, str]) -> None:
    """`assignment create --json` prints the assignment with every contract field and its first stage's tasks."""
    created = as_json(on_db(*create_args(people), "--json"))
    assert set(created) >= ASSIGNMENT_FIELDS
    assert created["workflow"] == "leadership-development"
    assert (created["workflow_version"], created["stage"]) == (1, "interviews")
    assert (created["assignee"], created["home"], created["host"]) == (people["assignee"], "BR", "DE")
    assert (created["start"], created["end"]) == ("2026-03-01", "2027-08-31")
    assert created["stakeholders"] == {role: email for role, email in people.items() if role != "assignee"}
    assert len(created["tasks"]) == 2
    for task in created["tasks"]:
        assert set(task) >= TASK_FIELDS
        assert (task["stage"], task["owner_role"], task["owner"]) == ("interviews", "coach", people["coach"])
        assert (task["status"], task["completed_at"]) == ("open", None)
        assert datetime.fromisoformat(task["due_at"]).utcoffset() == timedelta(0)
    assert [b["guard"] for b in created["blocking"]] == ["stage_tasks_done"]
    assert {"guard", "reason"} <= set(created["blocking"][0])


def test_assignment_import_creates_every_row(on_db: Sojourn, people: dict[str, str], tmp_path: Path) -> None:
    """A valid CSV creates one assignment per line, in file order, and prints them all as JSON."""
    roles = ["sending_manager", "host_manager", "coach", "sponsor", "talent", "mobility"]
    header = "workflow,assignee,home,host,start,end," + ",".join(roles)
    rows = [f"leadership-development,{people['assignee']},{home},DE,2026-0{month}-01,2027-08-31,"
            + ",".join(people[r] for r in roles) for home, month in (("BR", 3), ("IN", 4), ("US", 5))]
    path = tmp_path / "hr-export.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    imported = as_json(on_db("assignment", "import", str(path), "--allow-overlap", "--json"))
    assert [(a["home"], a["start"], a["stage"]) for a in imported] == [
        ("BR", "2026-03-01", "interviews"), ("IN", "2026-04-01", "interviews"), ("US", "2026-05-01", "interviews")]
    assert all(set(a) >= ASSIGNMENT_FIELDS for a in imported)
    listed = as_json(on_db("assignment", "list", "--json"))
    assert [a["id"] for a in listed] == [a["id"] for a in imported]


def test_assignment_list_filters_by_stage(on_db: Sojourn, db: Engine, spec: assignments.AssignmentSpec,
                                          now: datetime) -> None:
    """`assignment list --stage` lists only the assignments in that stage."""
    staying = assignments.create_assignment(db, spec, actor="setup@example.com", now=now).id
    moving = assignments.create_assignment(db, spec, actor="setup@example.com", now=now).id
    complete_stage_tasks(db, moving, now)
    advance.advance(db, moving, to=None, reason=None, actor="setup@example.com", now=now)
    assert [a["id"] for a in as_json(on_db("assignment", "list", "--stage", "plan_agreed", "--json"))] == [moving]
    assert [a["id"] for a in as_json(on_db("assignment", "list", "--stage", "interviews", "--json"))] == [staying]
    assert as_json(on_db("assignment", "list", "--stage", "completed", "--json")) == []
    assert [a["id"] for a in as_json(on_db("assignment", "list", "--json"))] == [staying, moving]


def test_assignment_show_json_lists_what_blocks_the_plan(on_db: Sojourn, db: Engine, spec: assignments.AssignmentSpec,
                                                         people: dict[str, str], now: datetime) -> None:
    """`assignment show --json` lists each blocking guard of plan_agreed with its reason."""
    assignment_id = assignments.create_assignment(db, spec, actor="setup@example.com", now=now).id
    complete_stage_tasks(db, assignment_id, now)
    advance.advance(db, assignment_id, to=None, reason=None, actor="setup@example.com", now=now)
    shown = as_json(on_db("assignment", "show", str(assignment_id), "--json"))
    assert shown["stage"] == "plan_agreed"
    blocking = {b["guard"]: b["reason"] for b in shown["blocking"]}
    assert set(blocking) == {"stage_tasks_done", "min_smart_goals", "plan_signed_off"}
    assert blocking["plan_signed_off"].endswith("assignee, sending_manager, host_manager, talent, mobility")


# --- tasks and history ----------------------------------------------------------------------------------------


def test_task_list_filters_by_owner_and_status(on_db: Sojourn, db: Engine, spec: assignments.AssignmentSpec,
                                               people: dict[str, str], now: datetime) -> None:
    """`task list --owner` and `--status` narrow the list to that person's and that status's tasks."""
    assignment_id = assignments.create_assignment(db, spec, actor="setup@example.com", now=now).id
    complete_stage_tasks(db, assignment_id, now)
    advance.advance(db, assignment_id, to=None, reason=None, actor="setup@example.com", now=now)

    everything = as_json(on_db("task", "list", "--json"))
    assert len(everything) == 4
    assert all(set(t) >= TASK_FIELDS for t in everything)
    coach = as_json(on_db("task", "list", "--owner", people["coach"], "--json"))
    assert sorted(t["key"] for t in coach) == ["draft_development_plan", "interview_assignee",
                                               "interview_sending_manager"]
    talent_open = as_json(on_db("task", "list", "--owner", people["talent"], "--status", "open", "--json"))
    assert [t["key"] for t in talent_open] == ["share_plan_with_host_coach"]
    done = as_json(on_db("task", "list", "--status", "done", "--json"))
    assert sorted(t["key"] for t in done) == ["interview_assignee", "interview_sending_manager"]
    assert all(t["completed_at"] is not None for t in done)
    assert as_json(on_db("task", "list", "--owner", people["sponsor"], "--json")) == []
    only_this = as_json(on_db("task", "list", "--assignment", str(assignment_id), "--status", "open", "--json"))
    assert {t["assignment_id"] for t in only_this} == {assignment_id}


def test_task_list_overdue_follows_the_clock(on_db: Sojourn, db: Engine, spec: assignments.AssignmentSpec,
                                             now: datetime) -> None:
    """A task is overdue once its due day has ended in its owner's time zone, and no longer once it is done."""
    assignment_id = assignments.create_assignment(db, spec, actor="setup@example.com", now=now).id
    # Interview tasks fall due 14 days after entry, on 2026-03-16; the coach is in Berlin (UTC+1 in March).
    with freeze_time(datetime(2026, 3, 16, 22, 59, tzinfo=UTC)):
        assert as_json(on_db("task", "list", "--overdue", "--json")) == []
    with freeze_time(datetime(2026, 3, 16, 23, 1, tzinfo=UTC)):
        overdue = as_json(on_db("task", "list", "--overdue", "--json"))
        assert sorted(t["key"] for t in overdue) == ["interview_assignee", "interview_sending_manager"]
        succeeds(on_db("task", "done", str(overdue[0]["id"])))
        still = as_json(on_db("task", "list", "--overdue", "--assignment", str(assignment_id), "--json"))
        assert [t["id"] for t in still] == [overdue[1]["id"]]


def test_task_done_json_records_completion(on_db: Sojourn, db: Engine, spec: assignments.AssignmentSpec,
                                           now: datetime) -> None:
    """`task done --json` returns the task done, with when, by whom and the note."""
    task_id = assignments.create_assignment(db, spec, actor="setup@example.com", now=now).view()["tasks"][0]["id"]
    with freeze_time(datetime(2026, 3, 5, 8, 30, tzinfo=UTC)):
        done = as_json(on_db("--actor", "cole.coach@example.com", "task", "done", str(task_id), "--note",
                             "45 minutes", "--json"))
    assert (done["status"], done["completed_at"]) == ("done", "2026-03-05T08:30:00+00:00")
    assert (done["completed_by"], done["note"]) == ("cole.coach@example.com", "45 minutes")


def test_history_json_entries_have_contract_fields(on_db: Sojourn, people: dict[str, str]) -> None:
    """`history --json` lists every stage change, oldest first, with from, to, at, actor and reason."""
    with freeze_time(datetime(2026, 3, 10, 9, 0, tzinfo=UTC)):
        created = as_json(on_db("--actor", "admin@example.com", *create_args(people), "--json"))
        assignment_id = str(created["id"])
        for task in created["tasks"]:
            succeeds(on_db("task", "done", str(task["id"])))
        succeeds(on_db("--actor", "cole.coach@example.com", "advance", assignment_id, "--reason", "interviews held"))
        succeeds(on_db("--actor", "mo.mobility@example.com", "advance", assignment_id, "--to", "cancelled",
                       "--reason", "assignee withdrew"))
    entries = as_json(on_db("history", assignment_id, "--json"))
    assert all(set(e) >= HISTORY_FIELDS for e in entries)
    assert [(e["from"], e["to"], e["actor"], e["reason"]) for e in entries] == [
        (None, "interviews", "admin@example.com", "created"),
        ("interviews", "plan_agreed", "cole.coach@example.com", "interviews held"),
        ("plan_agreed", "cancelled", "mo.mobility@example.com", "assignee withdrew"),
    ]
    assert {e["at"] for e in entries} == {"2026-03-10T09:00:00+00:00"}


def test_cancel_closes_open_tasks(on_db: Sojourn, people: dict[str, str]) -> None:
    """Cancelling with a reason moves to cancelled and leaves no task open."""
    created = as_json(on_db(*create_args(people), "--json"))
    cancelled = as_json(on_db("advance", str(created["id"]), "--to", "cancelled", "--reason", "budget", "--json"))
    assert cancelled["stage"] == "cancelled"
    assert cancelled["blocking"] == []
    assert {t["status"] for t in cancelled["tasks"]} == {"cancelled"}
    assert as_json(on_db("task", "list", "--status", "open", "--json")) == []


def test_goal_signoff_and_contact_json(on_db: Sojourn, db: Engine, spec: assignments.AssignmentSpec,
                                       people: dict[str, str], now: datetime) -> None:
    """Goals bump the plan version, sign-offs bind to it and repeat harmlessly, contacts are logged as given."""
    assignment_id = str(assignments.create_assignment(db, spec, actor="setup@example.com", now=now).id)
    goal = as_json(on_db("goal", "add", assignment_id, "--title", "Lead the Berlin team", "--measure", "eNPS",
                         "--target", "40", "--due", "2027-03-01", "--json"))
    assert (goal["plan_version"], goal["due"], goal["measure"]) == (2, "2027-03-01", "eNPS")
    signed = as_json(on_db("signoff", assignment_id, "--role", "host_manager", "--json"))
    assert (signed["by"], signed["plan_version"], signed["already_signed"]) == (people["host_manager"], 2, False)
    again = as_json(on_db("signoff", assignment_id, "--role", "host_manager", "--by", people["host_manager"],
                          "--json"))
    assert again["already_signed"] is True
    contact = as_json(on_db("contact", "log", assignment_id, "--kind", "sponsor_contact", "--with",
                            people["sponsor"], "--on", "2026-03-02", "--notes", "monthly call", "--json"))
    assert (contact["kind"], contact["with"], contact["on"]) == ("sponsor_contact", people["sponsor"], "2026-03-02")


# --- settings -------------------------------------------------------------------------------------------------


def _history_actor(db: Engine, assignment_id: int) -> str:
    return str(views(assignments.history(db, assignment_id))[-1]["actor"])


def test_actor_option_beats_environment(on_db: Sojourn, db: Engine, people: dict[str, str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """--actor is recorded over SOJOURN_ACTOR, which is recorded over the login name."""
    without = as_json(on_db(*create_args(people), "--json"))
    assert _history_actor(db, without["id"]) == getpass.getuser()
    monkeypatch.setenv("SOJOURN_ACTOR", "env.actor@example.com")
    from_env = as_json(on_db(*create_args(people), "--allow-overlap", "--json"))
    assert _history_actor(db, from_env["id"]) == "env.actor@example.com"
    from_option = as_json(on_db("--actor", "option.actor@example.com", *create_args(people), "--allow-overlap",
                                "--json"))
    assert _history_actor(db, from_option["id"]) == "option.actor@example.com"


def _database_with_person(path: Path, email: str) -> str:
    url = f"sqlite:///{path}"
    engine = open_db(url)
    try:
        workflows.init(engine, now=datetime(2026, 3, 2, tzinfo=UTC))
        add_person(engine, email, name=email.split("@")[0])
    finally:
        engine.dispose()
    return url


def _people_listed(outcome: Outcome) -> list[str]:
    return [p["email"] for p in as_json(outcome)]


def test_database_url_precedence(sojourn: Sojourn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The database is --db over SOJOURN_DATABASE_URL over the config file's [database] url."""
    from_config = _database_with_person(tmp_path / "config.db", "config@example.com")
    from_env = _database_with_person(tmp_path / "env.db", "env@example.com")
    from_option = _database_with_person(tmp_path / "option.db", "option@example.com")
    Path("sojourn.toml").write_text(f'[database]\nurl = "{from_config}"\n', encoding="utf-8")

    assert _people_listed(sojourn("person", "list", "--json")) == ["config@example.com"]
    monkeypatch.setenv("SOJOURN_DATABASE_URL", from_env)
    assert _people_listed(sojourn("person", "list", "--json")) == ["env@example.com"]
    assert _people_listed(sojourn("--db", from_option, "person", "list", "--json")) == ["option@example.com"]


def test_config_option_and_environment_name_the_config_file(sojourn: Sojourn, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """--config beats SOJOURN_CONFIG, which beats ./sojourn.toml, in choosing the file that names the database."""
    configs = {}
    for name in ("default", "env", "option"):
        url = _database_with_person(tmp_path / f"{name}.db", f"{name}@example.com")
        configs[name] = tmp_path / f"{name}.toml"
        configs[name].write_text(f'[database]\nurl = "{url}"\n', encoding="utf-8")
    Path("sojourn.toml").write_text(configs["default"].read_text(encoding="utf-8"), encoding="utf-8")

    assert _people_listed(sojourn("person", "list", "--json")) == ["default@example.com"]
    monkeypatch.setenv("SOJOURN_CONFIG", str(configs["env"]))
    assert _people_listed(sojourn("person", "list", "--json")) == ["env@example.com"]
    assert _people_listed(sojourn("--config", str(configs["option"]), "person", "list", "--json")) == [
        "option@example.com"]


def test_default_database_is_sojourn_db_in_working_directory(sojourn: Sojourn) -> None:
    """Without --db, environment or config, init creates sojourn.db in the current directory."""
    as_json(sojourn("init", "--json"))
    assert Path("sojourn.db").is_file()
    assert as_json(sojourn("workflow", "list", "--json"))[0]["name"] == "leadership-development"


def test_import_accepts_a_spreadsheet_bom(on_db: Sojourn, people: dict[str, str], tmp_path: Path) -> None:
    """A CSV saved as "UTF-8 with BOM" by a spreadsheet imports like any other."""
    roles = ["sending_manager", "host_manager", "coach", "sponsor", "talent", "mobility"]
    row = ",".join(["leadership-development", people["assignee"], "BR", "DE", "2026-03-01", "2027-08-31",
                    *(people[r] for r in roles)])
    path = tmp_path / "excel.csv"
    path.write_text("\ufeffworkflow,assignee,home,host,start,end," + ",".join(roles) + "\n" + row + "\n",
                    encoding="utf-8")
    imported = as_json(on_db("assignment", "import", str(path), "--json"))
    assert [a["assignee"] for a in imported] == [people["assignee"]]
