"""The audit trail on each backend: use cases chain their events, and rows changed with raw SQL are named."""

from __future__ import annotations

import io
import json
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, text

from engine.domain.errors import BadInput, GuardsUnmet, SojournError
from engine.program import advance, assignments, audit, contacts, plans, tasks
from engine.program.audit import check_chain, event_from_export, verify_audit
from engine.store.db import alembic_config
from integration.conftest import Sojourn, snapshot

ACTOR = "admin@example.com"
NO_OBJECTIVES = {"objectives": 0, "problems": []}  # the program's objectives, checked beside the chains
ACTIONS = ["assignment_created", "stage_changed", "task_completed", "plan_changed", "signed_off", "contact_logged",
           "task_completed", "stage_changed"]


def _history(db: Engine, spec: assignments.AssignmentSpec, people: dict[str, str], now: datetime) -> int:
    """One assignment taken through every use case that writes history (see ACTIONS); returns its id."""
    now = now.replace(microsecond=654321)  # instants must come back from the database exactly as they were hashed
    created = assignments.create_assignment(db, spec, actor=ACTOR, now=now).view()
    first, second = (t["id"] for t in created["tasks"])
    tasks.complete_task(db, first, note="done", actor=people["coach"], now=now)
    plans.add_goal(db, created["id"], title="Lead the host sales team", measure="quarterly revenue", target="+10%",
                   due="2027-03-31", actor=ACTOR, now=now)
    plans.sign_plan(db, created["id"], role="talent", by=None, actor=people["talent"], now=now)
    contacts.log_contact(db, created["id"], kind="sponsor_contact", with_email=people["sponsor"], on="2026-03-01",
                         notes="first call", actor=ACTOR, now=now)
    tasks.complete_task(db, second, note=None, actor=people["coach"], now=now)
    advance.advance(db, created["id"], to=None, reason=None, actor=ACTOR, now=now)
    return int(created["id"])


def _raw(db_url: str, *statements: str, **params: Any) -> list[Any]:
    """Run SQL behind Sojourn's back, as someone with database access would; returns the last statement's rows."""
    engine = create_engine(db_url)
    try:
        with engine.begin() as connection:
            result = None
            for statement in statements:
                result = connection.execute(text(statement), params)
            return list(result) if result is not None and result.returns_rows else []
    finally:
        engine.dispose()


def _event_id(db_url: str, assignment_id: int, seq: int) -> int:
    rows = _raw(db_url, "SELECT id FROM audit_event WHERE assignment_id = :a AND seq = :s", a=assignment_id, s=seq)
    return int(rows[0][0])


def _broken(on_db: Sojourn) -> str:
    """Run `audit verify`, which must refuse; returns its first Error line."""
    outcome = on_db("audit", "verify")
    assert outcome.code == 1, outcome
    assert outcome.stdout == ""
    assert "Traceback" not in outcome.stderr
    return outcome.stderr.splitlines()[0]


def test_use_cases_chain_their_events_and_verify_intact(db: Engine, db_url: str, on_db: Sojourn,
                                                        spec: assignments.AssignmentSpec, people: dict[str, str],
                                                        now: datetime) -> None:
    """Every history-writing use case appends one event, in order, and an untouched database verifies (exit 0)."""
    assignment_id = _history(db, spec, people, now)
    rows = _raw(db_url, "SELECT seq, action, actor, details FROM audit_event WHERE assignment_id = :a ORDER BY seq",
                a=assignment_id)
    assert [(r[0], r[1]) for r in rows] == list(enumerate(ACTIONS, start=1))
    assert (rows[4][2], json.loads(rows[4][3])) == (people["talent"], {"role": "talent", "by": people["talent"],
                                                                       "plan_version": 2, "on_behalf": False})
    assert json.loads(rows[-1][3]) == {"from": "interviews", "to": "plan_agreed", "reason": None}
    outcome = on_db("audit", "verify", "--json")
    assert outcome.code == 0, outcome
    assert json.loads(outcome.stdout) == {"intact": True, "assignments": 1, "events": len(ACTIONS), "problems": [],
                                          "objectives": NO_OBJECTIVES}
    text_outcome = on_db("audit", "verify")
    assert (text_outcome.code, text_outcome.stdout) == (0, f"audit trail intact: {len(ACTIONS)} event(s) in 1 "
                                                            "assignment(s)\n")


def test_edited_row_is_named(db: Engine, db_url: str, on_db: Sojourn, spec: assignments.AssignmentSpec,
                             people: dict[str, str], now: datetime) -> None:
    """A row edited with raw SQL makes verify exit 1 naming its assignment, seq and id as edited."""
    assignment_id = _history(db, spec, people, now)
    event_id = _event_id(db_url, assignment_id, 5)
    _raw(db_url, "UPDATE audit_event SET actor = 'someone.else@example.com' WHERE id = :id", id=event_id)
    assert _broken(on_db) == (f"Error: audit trail broken at assignment {assignment_id}, seq 5 (event id {event_id}): "
                              "content edited: the row no longer matches its hash")


def test_deleted_row_is_named(db: Engine, db_url: str, on_db: Sojourn, spec: assignments.AssignmentSpec,
                              people: dict[str, str], now: datetime) -> None:
    """A row deleted from the middle of a chain makes verify exit 1 naming the missing seq."""
    assignment_id = _history(db, spec, people, now)
    _raw(db_url, "DELETE FROM audit_event WHERE assignment_id = :a AND seq = 3", a=assignment_id)
    line = _broken(on_db)
    assert line.startswith(f"Error: audit trail broken at assignment {assignment_id}, seq 3 (row gone): row missing")


def test_deleted_newest_row_is_named(db: Engine, db_url: str, on_db: Sojourn, spec: assignments.AssignmentSpec,
                                     people: dict[str, str], now: datetime) -> None:
    """Deleting the newest row, which leaves no gap, is still caught through the head on the assignment."""
    assignment_id = _history(db, spec, people, now)
    newest = len(ACTIONS)
    _raw(db_url, "DELETE FROM audit_event WHERE assignment_id = :a AND seq = :s", a=assignment_id, s=newest)
    line = _broken(on_db)
    assert line.startswith(f"Error: audit trail broken at assignment {assignment_id}, seq {newest} (row gone): "
                           "row missing")


def test_reordered_rows_are_named(db: Engine, db_url: str, on_db: Sojourn, spec: assignments.AssignmentSpec,
                                  people: dict[str, str], now: datetime) -> None:
    """Swapping two rows' places in the chain makes verify exit 1 naming the first as out of order."""
    assignment_id = _history(db, spec, people, now)
    moved = _event_id(db_url, assignment_id, 4)
    _raw(db_url, "UPDATE audit_event SET seq = -1 WHERE assignment_id = :a AND seq = 3",
         "UPDATE audit_event SET seq = 3 WHERE assignment_id = :a AND seq = 4",
         "UPDATE audit_event SET seq = 4 WHERE assignment_id = :a AND seq = -1", a=assignment_id)
    line = _broken(on_db)
    assert line.startswith(f"Error: audit trail broken at assignment {assignment_id}, seq 3 (event id {moved}): "
                           "out of order")


def test_only_the_broken_assignment_is_named_and_others_verify(db: Engine, db_url: str, on_db: Sojourn,
                                                               spec: assignments.AssignmentSpec, people: dict[str, str],
                                                               now: datetime) -> None:
    """With two assignments and one tampered with, --assignment tells the intact one from the broken one."""
    intact = _history(db, spec, people, now)
    broken = assignments.create_assignment(db, spec, actor=ACTOR, now=now).id
    _raw(db_url, "UPDATE audit_event SET details = '{}' WHERE assignment_id = :a AND seq = 1", a=broken)
    assert on_db("audit", "verify", "--assignment", str(intact)).code == 0
    outcome = on_db("audit", "verify", "--assignment", str(broken), "--json")
    assert outcome.code == 1
    report = json.loads(outcome.stdout)
    assert (report["intact"], [(p["assignment_id"], p["seq"], p["kind"]) for p in report["problems"]]) == (
        False, [(broken, 1, "content_edited")])
    assert outcome.stderr.startswith(f"Error: audit trail broken at assignment {broken}, seq 1")


def test_verify_of_unknown_assignment_is_refused(on_db: Sojourn) -> None:
    """Naming an assignment that does not exist exits 1 with an Error line."""
    outcome = on_db("audit", "verify", "--assignment", "999")
    assert (outcome.code, outcome.stderr.splitlines()[0]) == (1, "Error: no assignment 999")


def test_refused_commands_append_nothing(db: Engine, db_url: str, spec: assignments.AssignmentSpec,
                                        now: datetime) -> None:
    """An advance refused by a guard and a goal refused for its date leave the audit trail as it was."""
    created = assignments.create_assignment(db, spec, actor=ACTOR, now=now).view()
    before = snapshot(db_url)
    with pytest.raises(GuardsUnmet):
        advance.advance(db, created["id"], to=None, reason=None, actor=ACTOR, now=now)
    with pytest.raises(BadInput):
        plans.add_goal(db, created["id"], title="t", measure="m", target="x", due="2030-01-01", actor=ACTOR,
                       now=now)
    after = snapshot(db_url)
    assert (after["audit_event"], after["assignment"]) == (before["audit_event"], before["assignment"])
    assert len(after["audit_event"]) == 2


def test_repeated_signoff_appends_nothing(db: Engine, db_url: str, spec: assignments.AssignmentSpec,
                                          now: datetime) -> None:
    """Signing a plan version already signed writes no second event."""
    created = assignments.create_assignment(db, spec, actor=ACTOR, now=now).view()
    plans.sign_plan(db, created["id"], role="talent", by=None, actor=ACTOR, now=now)
    before = snapshot(db_url)["audit_event"]
    assert plans.sign_plan(db, created["id"], role="talent", by=None, actor=ACTOR, now=now).already_signed
    assert snapshot(db_url)["audit_event"] == before


def test_export_round_trips_and_anchors_the_head(db: Engine, db_url: str, on_db: Sojourn, tmp_path: Path,
                                                 spec: assignments.AssignmentSpec, people: dict[str, str],
                                                 now: datetime) -> None:
    """The JSON lines export holds every event with its hashes; read back, it verifies and ends at the head."""
    assignment_id = _history(db, spec, people, now)
    file = tmp_path / "audit.jsonl"
    outcome = on_db("audit", "export", "--output", str(file))
    assert (outcome.code, outcome.stdout) == (0, f"exported {len(ACTIONS)} event(s) of 1 assignment(s) to {file}\n")
    lines = file.read_text(encoding="utf-8").splitlines()
    events = [event_from_export(json.loads(line)) for line in lines]
    assert [e.action for e in events] == ACTIONS
    head = _raw(db_url, "SELECT audit_seq, audit_head FROM assignment WHERE id = :a", a=assignment_id)[0]
    assert check_chain(assignment_id, events, (head[0], head[1])) is None
    stored = _raw(db_url, "SELECT hash FROM audit_event ORDER BY seq")
    assert [e.hash for e in events] == [r[0] for r in stored]
    to_stdout = on_db("audit", "export", "--assignment", str(assignment_id))
    assert (to_stdout.code, to_stdout.stdout.splitlines()) == (0, lines)


def test_verify_reads_an_export_and_compares_in_one_call(db: Engine, db_url: str, spec: assignments.AssignmentSpec,
                                                         people: dict[str, str], now: datetime) -> None:
    """`verify_audit` takes an export's lines: it names a chain re-sealed after the export, and every bad line."""
    assignment_id = _history(db, spec, people, now)
    out = io.StringIO()
    assert audit.export_audit(db, out).view() == {"assignments": 1, "events": len(ACTIONS)}
    lines = out.getvalue().splitlines()
    report = verify_audit(db, export=lines)
    assert (report.intact, report.against) == (True, audit.ExportComparison(len(ACTIONS), ()))
    report.require_intact()
    _raw(db_url, "UPDATE audit_event SET hash = 'x' WHERE assignment_id = :a AND seq = 2", a=assignment_id)
    (difference,) = verify_audit(db, export=lines, export_source="kept.jsonl").view()["against"]["differences"]
    assert (difference["seq"], difference["kind"]) == (2, "not_as_exported")
    with pytest.raises(BadInput) as refused:
        verify_audit(db, export=["{}", "", "not json"], export_source="kept.jsonl")
    assert (refused.value.message, refused.value.details) == ("--against: kept.jsonl is not an audit export", [
        "kept.jsonl line 1: not an event of `sojourn audit export` (a JSON object with assignment_id, seq and hash)",
        "kept.jsonl line 3: not an event of `sojourn audit export` (a JSON object with assignment_id, seq and hash)"])


def test_export_of_unknown_assignment_leaves_the_file_alone(on_db: Sojourn, tmp_path: Path) -> None:
    """A refused export exits 1 and does not overwrite the file it was to write."""
    folder = tmp_path / "anchors"
    folder.mkdir()
    file = folder / "anchor.jsonl"
    file.write_text("kept\n", encoding="utf-8")
    outcome = on_db("audit", "export", "--assignment", "999", "--output", str(file))
    assert (outcome.code, outcome.stderr.splitlines()[0]) == (1, "Error: no assignment 999")
    assert file.read_text(encoding="utf-8") == "kept\n"
    assert [p.name for p in folder.iterdir()] == ["anchor.jsonl"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_assignments_from_before_the_upgrade_start_an_empty_chain(db: Engine, spec: assignments.AssignmentSpec,
                                                                  now: datetime) -> None:
    """Upgrading a database without the audit trail gives its assignments empty, intact chains that then grow."""
    created = assignments.create_assignment(db, spec, actor=ACTOR, now=now).view()
    command.downgrade(alembic_config(db), "0001")
    command.upgrade(alembic_config(db), "head")
    assert verify_audit(db).view() == {"intact": True, "assignments": 1, "events": 0, "problems": [],
                                       "objectives": NO_OBJECTIVES}
    tasks.complete_task(db, created["tasks"][0]["id"], note=None, actor=ACTOR, now=now)
    assert verify_audit(db).view() == {"intact": True, "assignments": 1, "events": 1, "problems": [],
                                       "objectives": NO_OBJECTIVES}


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_concurrent_appends_to_one_assignment_queue_instead_of_failing(db: Engine, db_url: str,
                                                                       spec: assignments.AssignmentSpec,
                                                                       monkeypatch: pytest.MonkeyPatch,
                                                                       now: datetime) -> None:
    """On PostgreSQL a second append waits for the first transaction's head, then chains after it; both succeed."""
    created = assignments.create_assignment(db, spec, actor=ACTOR, now=now).view()
    task_id = created["tasks"][0]["id"]
    outcomes: list[Any] = []
    append = audit.append_audit_chains

    def complete_task() -> None:
        try:
            outcomes.append(tasks.complete_task(db, task_id, note=None, actor=ACTOR, now=now).status)
        except SojournError as exc:
            outcomes.append(exc.message)

    def append_then_wait_for_a_second_writer(connection: Any, events: list[dict[str, Any]]) -> bool:
        advanced = append(connection, events)
        monkeypatch.setattr(audit, "append_audit_chains", append)
        racer = threading.Thread(target=complete_task)
        racer.start()
        _wait_until_a_session_waits_for_a_lock(db_url)
        outcomes.append(racer)
        return advanced

    monkeypatch.setattr(audit, "append_audit_chains", append_then_wait_for_a_second_writer)
    plans.sign_plan(db, created["id"], role="talent", by=None, actor=ACTOR, now=now)
    racer = outcomes.pop(0)
    racer.join(timeout=30)
    assert outcomes == ["done"]
    rows = _raw(db_url, "SELECT seq, action FROM audit_event WHERE assignment_id = :a ORDER BY seq", a=created["id"])
    assert rows == [(1, "assignment_created"), (2, "stage_changed"), (3, "signed_off"), (4, "task_completed")]
    assert verify_audit(db).intact


def _wait_until_a_session_waits_for_a_lock(db_url: str) -> None:
    """Poll PostgreSQL until another session of this database is blocked on a row lock."""
    deadline = time.monotonic() + 30
    query = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
             "AND wait_event_type = 'Lock'")
    while _raw(db_url, query)[0][0] == 0:
        assert time.monotonic() < deadline, "the second writer never waited for the first"
        time.sleep(0.01)
