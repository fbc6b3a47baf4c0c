"""An administrator's changes mid-assignment: a new stakeholder, a later end date, people and assignments imported."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import Engine
from sqlmodel import select

from engine.domain.errors import BadInput, ConcurrentChange, NotFound, SojournError
from engine.domain.views import views
from engine.planning import planner
from engine.program import advance, assignments, audit, changes, workflows
from engine.program.people import add_person
from engine.store.db import transaction
from engine.store.models import Assignment, Outbox, Task
from tests.integration.conftest import Sojourn, snapshot
from tests.support.scenarios import assignment_in_stage

NEW_COACH = ("nia.newcoach@example.com", "Nia Newcoach", "Asia/Tokyo")
CREATED = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
LONG_END = "2028-01-31"  # the scenarios' goal is due 2027-12-31
REPATRIATION_AT = datetime(2027, 9, 15, 10, 0, tzinfo=UTC)  # within 180 days of LONG_END
DUE_SOON_SENT = datetime(2026, 3, 13, 12, 0, tzinfo=UTC)  # interview tasks due 03-16: due_soon came on 03-13 09:00


def _plan(db: Engine, now: datetime) -> None:
    with transaction(db) as session:
        planner.plan(session, now)


def _outbox(db: Engine, assignment_id: int) -> dict[str, tuple[str, str]]:
    with transaction(db) as session:
        rows = session.exec(select(Outbox).where(Outbox.assignment_id == assignment_id)).all()
        return {r.key: (r.recipient, r.status) for r in rows}


def _row_version(db: Engine, assignment_id: int) -> int:
    with transaction(db) as session:
        row = session.get(Assignment, assignment_id)
        assert row is not None
        return int(row.row_version)


def _coach_with_due_soon_queued(db: Engine, spec: assignments.AssignmentSpec) -> tuple[int, list[int]]:
    add_person(db, NEW_COACH[0], name=NEW_COACH[1], tz=NEW_COACH[2])
    created = assignments.create_assignment(db, spec, actor="admin", now=CREATED).view()
    _plan(db, DUE_SOON_SENT)
    return created["id"], [t["id"] for t in created["tasks"]]


def test_new_coach_takes_over_open_tasks_with_reminders_of_their_own(db: Engine,
                                                                     spec: assignments.AssignmentSpec) -> None:
    """The new coach owns the open tasks, due at the end of the day in their zone, and hears the due-soon step."""
    assignment_id, task_ids = _coach_with_due_soon_queued(db, spec)
    old_coach = spec.stakeholders["coach"]
    assert {_outbox(db, assignment_id)[f"task_due_soon/{t}"] for t in task_ids} == {(old_coach, "pending")}
    version = _row_version(db, assignment_id)
    change = changes.set_stakeholder(db, assignment_id, "coach", NEW_COACH[0].upper(), reason="coach moved on",
                                     actor="mo@example.com", now=DUE_SOON_SENT).view()
    assert (change["from"], change["to"], sorted(t["id"] for t in change["tasks"])) == (old_coach, NEW_COACH[0],
                                                                                       sorted(task_ids))
    assert {t["owner"] for t in change["tasks"]} == {NEW_COACH[0]}
    assert {t["due_at"] for t in change["tasks"]} == {"2026-03-16T15:00:00+00:00"}  # midnight in Tokyo
    assert _row_version(db, assignment_id) == version + 1
    _plan(db, DUE_SOON_SENT + timedelta(minutes=1))
    outbox = _outbox(db, assignment_id)
    for task_id in task_ids:
        assert outbox[f"task_due_soon/{task_id}"] == (old_coach, "cancelled")
        assert outbox[f"task_due_soon/{task_id}.1"] == (NEW_COACH[0], "pending")
    shown = assignments.show_assignment(db, assignment_id, now=DUE_SOON_SENT).view()
    assert shown["stakeholders"]["coach"] == NEW_COACH[0]


def test_stakeholder_change_is_in_history_and_the_audit_trail(db: Engine, spec: assignments.AssignmentSpec) -> None:
    """`history` lists the change beside stage changes with from, to, at, actor and reason; the chain stays intact."""
    assignment_id, _ = _coach_with_due_soon_queued(db, spec)
    changes.set_stakeholder(db, assignment_id, "coach", NEW_COACH[0], reason="coach moved on", actor="mo@x.org",
                            now=DUE_SOON_SENT)
    entries = views(assignments.history(db, assignment_id))
    assert [e["event"] for e in entries] == [audit.STAGE_CHANGED, audit.STAKEHOLDER_CHANGED]
    assert {k: entries[1][k] for k in ("from", "to", "at", "actor", "reason", "role")} == {
        "from": spec.stakeholders["coach"], "to": NEW_COACH[0], "at": DUE_SOON_SENT.isoformat(), "actor": "mo@x.org",
        "reason": "coach moved on", "role": "coach"}
    assert audit.verify_audit(db, assignment_id=assignment_id).intact is True


def test_new_sponsor_gets_the_queued_contact_due_of_the_old_one(db: Engine, spec: assignments.AssignmentSpec) -> None:
    """A contact_due still queued for the old sponsor is cancelled and planned again for the new sponsor."""
    at = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    assignment_id = assignment_in_stage(db, replace(spec, end=LONG_END), "orientation", at)
    at = datetime(2026, 3, 2, 12, 30, tzinfo=UTC)  # 09:30 in Sao Paulo: the period's contact_due is queued, unsent
    _plan(db, at)
    old = spec.stakeholders["sponsor"]
    queued = {k: v for k, v in _outbox(db, assignment_id).items() if k.startswith("contact_due/")}
    assert queued == {f"contact_due/{assignment_id}/sponsor_contact/2026-03-02/sponsor": (old, "pending"),
                      f"contact_due/{assignment_id}/sponsor_contact/2026-03-02/assignee": (spec.assignee, "pending")}
    add_person(db, "nel.newsponsor@example.com", name="Nel Newsponsor", tz="America/Sao_Paulo")
    changes.set_stakeholder(db, assignment_id, "sponsor", "nel.newsponsor@example.com", reason="reorganisation",
                            actor="admin", now=at)
    _plan(db, at + timedelta(minutes=1))
    outbox = _outbox(db, assignment_id)
    key = f"contact_due/{assignment_id}/sponsor_contact/2026-03-02/sponsor"
    assert outbox[key] == ("nel.newsponsor@example.com", "pending")
    assert [v for k, v in outbox.items() if k.startswith(key + "~")] == [(old, "cancelled")]


def test_extension_moves_tasks_due_from_the_end(db: Engine, spec: assignments.AssignmentSpec) -> None:
    """A later end date moves the open repatriation tasks by as many days; tasks due from stage entry stay."""
    at = REPATRIATION_AT
    with freeze_time(at):
        assignment_id = assignment_in_stage(db, replace(spec, end=LONG_END), "repatriation", at)
    before = {t["key"]: t for t in assignments.show_assignment(db, assignment_id, now=at).view()["tasks"]}
    version = _row_version(db, assignment_id)
    change = changes.extend_assignment(db, assignment_id, end="2028-04-30", reason="project phase two",
                                       actor="admin", now=at).view()
    after = {t["key"]: t for t in assignments.show_assignment(db, assignment_id, now=at).view()["tasks"]}
    shift = date(2028, 4, 30) - date.fromisoformat(LONG_END)
    moved = {"plan_repatriation", "confirm_return_role", "final_coaching_session"}
    assert {t["key"] for t in change["tasks"]} == moved
    for key in moved:
        assert date.fromisoformat(after[key]["due_on"]) == date.fromisoformat(before[key]["due_on"]) + shift
    assert all(after[k] == before[k] for k in before if k not in moved)
    assert _row_version(db, assignment_id) == version + 1
    entry = views(assignments.history(db, assignment_id))[-1]
    assert (entry["event"], entry["from"], entry["to"], entry["reason"]) == (
        audit.END_EXTENDED, LONG_END, "2028-04-30", "project phase two")
    with transaction(db) as session:
        rounds = {t.key: t.reminder_round for t in session.exec(select(Task).where(Task.assignment_id ==
                                                                                   assignment_id))}
    assert {k for k, r in rounds.items() if r == 1} == moved


def test_extended_overdue_task_is_reminded_of_its_new_date(db: Engine, spec: assignments.AssignmentSpec) -> None:
    """A task whose due-soon, due and overdue steps went out is reminded again, under new keys, of its new date."""
    with freeze_time(REPATRIATION_AT):
        assignment_id = assignment_in_stage(db, replace(spec, end=LONG_END), "repatriation", REPATRIATION_AT)
    task = next(t for t in assignments.show_assignment(db, assignment_id, now=REPATRIATION_AT).view()["tasks"]
                if t["key"] == "plan_repatriation")
    assert task["due_on"] == "2027-11-02"
    late = datetime(2027, 11, 4, 12, 0, tzinfo=UTC)  # overdue in Kolkata since 11-03
    _plan(db, late)
    assert _outbox(db, assignment_id)[f"task_overdue/{task['id']}"][1] == "pending"
    changes.extend_assignment(db, assignment_id, end="2028-04-30", reason="extended", actor="admin", now=late)
    assert _outbox(db, assignment_id)[f"task_overdue/{task['id']}"][1] == "cancelled"
    _plan(db, datetime(2028, 1, 29, 12, 0, tzinfo=UTC))  # new due day 2028-01-31: due-soon came on 01-28
    assert _outbox(db, assignment_id)[f"task_due_soon/{task['id']}.1"] == (spec.stakeholders["mobility"], "pending")


def test_sponsor_contact_never_falls_due_before_the_start(db: Engine, spec: assignments.AssignmentSpec) -> None:
    """An assignment starting 2027-01-04 in orientation from 2026-12-01 is asked for no contact before its start."""
    early = replace(spec, start="2027-01-04", end="2028-06-30")
    entered = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    with freeze_time(entered):
        assignment_id = assignment_in_stage(db, early, "orientation", entered)
        _plan(db, entered)
    for day in (datetime(2026, 12, 15, 12, 0, tzinfo=UTC), datetime(2027, 1, 3, 12, 0, tzinfo=UTC)):
        with freeze_time(day):
            _plan(db, day)
            assert not [k for k in _outbox(db, assignment_id) if k.startswith("contact_")]
    first = datetime(2027, 1, 4, 13, 0, tzinfo=UTC)  # 10:00 in Sao Paulo
    with freeze_time(first):
        _plan(db, first)
    due = sorted(k for k in _outbox(db, assignment_id) if k.startswith("contact_due/"))
    assert due == [f"contact_due/{assignment_id}/sponsor_contact/2027-01-04/{role}" for role in ("assignee", "sponsor")]


# --- refusals ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("call", "error", "words"), [
    (lambda db, a: changes.set_stakeholder(db, a, "coach", "nobody@example.com", reason="r", actor="x",
                                           now=CREATED), NotFound, "no person with email nobody@example.com"),
    (lambda db, a: changes.set_stakeholder(db, a, "buddy", "nia.newcoach@example.com", reason="r", actor="x",
                                           now=CREATED), BadInput, "unknown role 'buddy'"),
    (lambda db, a: changes.set_stakeholder(db, a, "coach", "cole.coach@example.com", reason="r", actor="x",
                                           now=CREATED), SojournError, "already the coach"),
    (lambda db, a: changes.set_stakeholder(db, a, "coach", "nia.newcoach@example.com", reason=" ", actor="x",
                                           now=CREATED), BadInput, "--reason: must not be empty"),
    (lambda db, a: changes.extend_assignment(db, a, end="2026-02-01", reason="r", actor="x", now=CREATED),
     BadInput, "must be after the start, 2026-03-01"),
    (lambda db, a: changes.extend_assignment(db, a, end="2027-06-30", reason="r", actor="x", now=CREATED),
     BadInput, "later than the current end, 2027-08-31"),
    (lambda db, a: changes.extend_assignment(db, a, end="31/12/2027", reason="r", actor="x", now=CREATED),
     BadInput, "not a date in the form YYYY-MM-DD"),
])
def test_bad_change_is_refused_and_writes_nothing(db: Engine, db_url: str, spec: assignments.AssignmentSpec,
                                                  call: object, error: type[Exception], words: str) -> None:
    """Each bad change raises its error with a clear message and leaves every table as it was."""
    add_person(db, NEW_COACH[0], name=NEW_COACH[1], tz=NEW_COACH[2])
    assignment_id = assignments.create_assignment(db, spec, actor="admin", now=CREATED).id
    before = snapshot(db_url)
    with pytest.raises(error) as raised:
        call(db, assignment_id)  # type: ignore[operator]
    assert words in "\n".join(raised.value.lines())  # type: ignore[attr-defined]
    assert snapshot(db_url) == before


def test_finished_assignment_refuses_changes(db: Engine, spec: assignments.AssignmentSpec) -> None:
    """A cancelled assignment keeps its stakeholders and end date."""
    add_person(db, NEW_COACH[0], name=NEW_COACH[1], tz=NEW_COACH[2])
    assignment_id = assignments.create_assignment(db, spec, actor="admin", now=CREATED).id
    advance.advance(db, assignment_id, to="cancelled", reason="withdrew", actor="admin", now=CREATED)
    with pytest.raises(SojournError, match="is cancelled; its end date can no longer change"):
        changes.extend_assignment(db, assignment_id, end="2027-12-31", reason="r", actor="x", now=CREATED)
    with pytest.raises(SojournError, match="is cancelled; its stakeholders can no longer change"):
        changes.set_stakeholder(db, assignment_id, "coach", NEW_COACH[0], reason="r", actor="x", now=CREATED)


# --- the command line ------------------------------------------------------------------------------------------


def test_cli_changes_print_json_and_history_shows_them(on_db: Sojourn, people: dict[str, str],
                                                       spec: assignments.AssignmentSpec, db: Engine) -> None:
    """set-stakeholder and extend print one JSON document each; `history --json` lists both with their actor."""
    add_person(db, NEW_COACH[0], name=NEW_COACH[1], tz=NEW_COACH[2])
    assignment_id = str(assignments.create_assignment(db, spec, actor="admin", now=CREATED).id)
    changed = on_db("--actor", "mo@example.com", "assignment", "set-stakeholder", assignment_id,
                    f"coach={NEW_COACH[0]}", "--reason", "coach moved on", "--json")
    assert changed.code == 0, changed.stderr
    assert json.loads(changed.stdout)["to"] == NEW_COACH[0]
    extended = on_db("--actor", "mo@example.com", "assignment", "extend", assignment_id, "--end", "2027-12-31",
                     "--reason", "phase two")
    assert (extended.code, extended.stdout.split(";")[0]) == (
        0, f"assignment {assignment_id}: end 2027-08-31 -> 2027-12-31")
    entries = json.loads(on_db("history", assignment_id, "--json").stdout)
    assert [(e["event"], e["to"], e["actor"]) for e in entries[1:]] == [
        ("stakeholder_changed", NEW_COACH[0], "mo@example.com"), ("end_extended", "2027-12-31", "mo@example.com")]


@pytest.mark.parametrize(("args", "code", "words"), [
    (["set-stakeholder", "coach=nobody@example.com", "--reason", "r"], 1,
     "Error: coach: no person with email nobody@example.com"),
    (["set-stakeholder", "buddy=cole.coach@example.com", "--reason", "r"], 2, "Error: unknown role 'buddy'"),
    (["set-stakeholder", "coach", "--reason", "r"], 2, "Error: 'coach': give ROLE=EMAIL"),
    (["extend", "--end", "2026-01-31", "--reason", "r"], 2, "Error: --end 2026-01-31 must be after the start"),
    (["extend", "--end", "2027-13-01", "--reason", "r"], 2, "Error: --end: '2027-13-01' is not a real date"),
    (["extend", "--end", "2027-12-31"], 2, "Error: Missing option '--reason'"),
])
def test_cli_bad_change_exits_with_its_code(on_db: Sojourn, db_url: str, spec: assignments.AssignmentSpec,
                                            db: Engine, args: list[str], code: int, words: str) -> None:
    """A bad set-stakeholder or extend prints an Error: line, exits 1 (refused) or 2 (bad value), writes nothing."""
    assignment_id = str(assignments.create_assignment(db, spec, actor="admin", now=CREATED).id)
    before = snapshot(db_url)
    outcome = on_db("assignment", args[0], assignment_id, *args[1:])
    assert (outcome.code, outcome.stderr.splitlines()[0].startswith(words)) == (code, True), outcome.stderr
    assert snapshot(db_url) == before


def test_person_import_adds_everyone(on_db: Sojourn, tmp_path: Path) -> None:
    """`person import` adds one person a line, tz defaulting to UTC, and prints them as JSON."""
    file = tmp_path / "people.csv"
    file.write_text("email,name,tz\nAna.Lima@example.com,Ana Lima,America/Sao_Paulo\nbo@example.com,Bo,\n")
    outcome = on_db("person", "import", str(file), "--json")
    assert outcome.code == 0, outcome.stderr
    assert [(p["email"], p["tz"]) for p in json.loads(outcome.stdout)] == [
        ("ana.lima@example.com", "America/Sao_Paulo"), ("bo@example.com", "UTC")]
    listed = json.loads(on_db("person", "list", "--json").stdout)
    assert {p["email"] for p in listed} == {"ana.lima@example.com", "bo@example.com"}


def test_person_import_with_bad_lines_writes_nothing(on_db: Sojourn, db_url: str, db: Engine,
                                                     tmp_path: Path) -> None:
    """Every bad line is reported by its number, the command exits 2, and nobody is added."""
    add_person(db, "sam@example.com", name="Sam", tz="UTC")
    file = tmp_path / "people.csv"
    file.write_text("email,name,tz\nok@example.com,Ok,UTC\nnot-an-email,X,UTC\nsam@example.com,Sam,UTC\n"
                    "ok@example.com,Again,UTC\nz@example.com,,Mars/Base\n")
    before = snapshot(db_url)
    outcome = on_db("person", "import", str(file))
    assert outcome.code == 2
    lines = outcome.stderr.splitlines()
    assert lines[0] == f"Error: {file}: nothing imported; 4 line(s) to fix"
    assert re.findall(r", line (\d+):", "\n".join(lines[1:])) == ["3", "4", "5", "6", "6"]
    assert "not an email address" in lines[1]
    assert "already exists" in lines[2]
    assert "also on line 2" in lines[3]
    assert lines[4].endswith("line 6: name: must not be empty")
    assert "unknown time zone 'Mars/Base'" in lines[5]
    assert snapshot(db_url) == before


# --- assignment import with a custom workflow ----------------------------------------------------------------------

# An administrator's own version of short-term-project, with other roles (the test databases keep only version 1).
BUDDY_WORKFLOW = """
name: short-term-project
title: Short-term project with a buddy
roles: [assignee, buddy, mobility]
initial: welcome
stages:
  - key: welcome
    title: Welcome
    tasks:
      - {key: meet_buddy, title: Meet your buddy, owner: buddy, due: {days: 7}}
  - key: done
    title: Done
transitions:
  - {from: welcome, to: done}
"""


def test_assignment_import_takes_role_columns_from_the_workflow(on_db: Sojourn, db: Engine, people: dict[str, str],
                                                                 db_url: str, tmp_path: Path) -> None:
    """A custom workflow's roles are import columns; a line may fill only the roles of its own workflow."""
    assert workflows.install_workflow(db, BUDDY_WORKFLOW, source="buddy.yaml", now=CREATED).version == 2
    header = "workflow,assignee,home,host,start,end,buddy,mobility,coach\n"
    line = (f"short-term-project,{people['assignee']},BR,DE,2026-03-01,2027-09-30,{people['coach']},"
            f"{people['mobility']},")
    bad = tmp_path / "bad.csv"
    bad.write_text(header + line + people["coach"] + "\n")
    before = snapshot(db_url)
    refused = on_db("assignment", "import", str(bad))
    assert refused.code == 2
    assert f"{bad}, line 2: column 'coach' is not a role of workflow short-term-project" in refused.stderr
    assert snapshot(db_url) == before
    good = tmp_path / "good.csv"
    good.write_text(header + line + "\n")
    imported = on_db("assignment", "import", str(good), "--allow-past", "--json")
    assert imported.code == 0, imported.stderr
    assert json.loads(imported.stdout)[0]["stakeholders"] == {"buddy": people["coach"],
                                                              "mobility": people["mobility"]}


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_stakeholder_change_loses_cleanly_to_an_extension_committed_meanwhile(
        db: Engine, db_url: str, spec: assignments.AssignmentSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    """An extension that commits after a stakeholder change loaded the assignment wins; the change writes nothing."""
    add_person(db, NEW_COACH[0], name=NEW_COACH[1], tz=NEW_COACH[2])
    assignment_id = assignments.create_assignment(db, spec, actor="admin", now=CREATED).id
    checked = changes._check_role

    def extend_meanwhile(*args: Any) -> None:
        checked(*args)
        changes.extend_assignment(db, assignment_id, end="2027-12-31", reason="phase two", actor="other", now=CREATED)

    monkeypatch.setattr(changes, "_check_role", extend_meanwhile)
    with pytest.raises(ConcurrentChange):
        changes.set_stakeholder(db, assignment_id, "coach", NEW_COACH[0], reason="r", actor="admin", now=CREATED)
    shown = assignments.show_assignment(db, assignment_id, now=CREATED).view()
    assert (shown["end"], shown["stakeholders"]["coach"]) == ("2027-12-31", spec.stakeholders["coach"])
    assert [e.event for e in assignments.history(db, assignment_id)] == [audit.STAGE_CHANGED, audit.END_EXTENDED]
