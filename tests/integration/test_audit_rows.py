"""One history: what history, plan show, task lists, contacts, check-ins, pulses and outcomes show is held against the
audit events, and a chain rewritten after an export is caught by `audit verify --against`."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from engine.program import assignments, audit
from integration.conftest import Sojourn, snapshot
from integration.test_audit import _raw
from tests.support import scenarios

FORGER = "eve@example.com"


@pytest.fixture
def recorded(db: Engine, people: dict[str, str], spec: assignments.AssignmentSpec, now: datetime) -> int:
    """A completed assignment with every kind of record the audit checks."""
    return scenarios.assignment_with_every_record(db, spec, now.replace(microsecond=654321))


def _first_error(on_db: Sojourn, *args: str) -> str:
    outcome = on_db("audit", "verify", *args)
    assert outcome.code == 1, outcome
    assert "Traceback" not in outcome.stderr
    return outcome.stderr.splitlines()[0]


def test_untouched_records_verify(recorded: int, on_db: Sojourn) -> None:
    """An assignment with a record of every kind, untouched, verifies (exit 0)."""
    outcome = on_db("audit", "verify", "--json")
    assert outcome.code == 0, outcome
    assert json.loads(outcome.stdout)["problems"] == []


TAMPERING = {
    "transition actor": ("UPDATE transition SET actor = :forger WHERE id = (SELECT max(id) FROM transition)",
                         "transition", "row edited", "actor"),
    "transition reason": ("UPDATE transition SET reason = 'forged' WHERE id = (SELECT max(id) FROM transition)",
                          "transition", "row edited", "reason"),
    "task completed_by": ("UPDATE task SET completed_by = :forger WHERE id = (SELECT min(id) FROM task "
                          "WHERE status = 'done')", "task", "row edited", "completed_by"),
    "sign-off": ("UPDATE signoff SET recorded_by = :forger WHERE id = (SELECT min(id) FROM signoff)", "signoff",
                 "row edited", "recorded_by"),
    "contact": ("UPDATE contact SET notes = 'a different call' WHERE id = (SELECT min(id) FROM contact)", "contact",
                "row edited", "notes"),
    "check-in": ("UPDATE checkin SET feedback = 'forged praise' WHERE id = (SELECT min(id) FROM checkin)",
                 "checkin", "row edited", "feedback"),
    "pulse": ("UPDATE pulse SET expectancy = 5 WHERE id = (SELECT min(id) FROM pulse)", "pulse", "row edited",
              "expectancy"),
    "outcome": ("UPDATE outcome SET retained = NOT retained WHERE id = (SELECT min(id) FROM outcome)", "outcome",
                "row edited", "retained"),
    "acknowledgement": ("UPDATE task SET completed_by = :forger WHERE key LIKE 'plan-ack/%'", "task",
                        "row unrecorded", "acknowledgement"),
    "task done by SQL": ("UPDATE task SET status = 'done', completed_by = :forger, completed_at = "
                         "(SELECT max(at) FROM transition) WHERE id = (SELECT max(id) FROM task WHERE status = 'open')",
                         "task", "row unrecorded", "completion"),
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_row_edited_behind_sojourns_back_is_named(case: str, recorded: int, db_url: str, on_db: Sojourn) -> None:
    """Editing a row that history, plan show, task lists, contacts, check-ins, pulses or outcomes show makes
    `audit verify` exit 1 naming the table, the row and what differs."""
    statement, table, kind, detail = TAMPERING[case]
    _raw(db_url, statement, forger=FORGER)
    line = _first_error(on_db)
    assert line.startswith(f"Error: audit trail broken at assignment {recorded}, {table} row "), line
    assert f": {kind}: " in line
    assert detail in line


def test_deleted_transition_row_is_named(recorded: int, db_url: str, on_db: Sojourn) -> None:
    """Deleting a stage change from `transition` names the stage_changed event whose row is gone."""
    first_move = _raw(db_url, "SELECT min(id) FROM transition WHERE from_stage IS NOT NULL")[0][0]
    seq = _raw(db_url, "SELECT min(seq) FROM audit_event WHERE action = 'stage_changed' AND details LIKE "
                       "'%\"from\":\"interviews\"%'")[0][0]
    _raw(db_url, "DELETE FROM transition WHERE id = :id", id=first_move)
    line = _first_error(on_db)
    assert line.startswith(f"Error: audit trail broken at assignment {recorded}, seq {seq} (event id "), line
    assert line.endswith("row missing: the transition row it recorded is gone")


def test_history_forged_in_both_places_is_caught_by_the_chain(recorded: int, db_url: str, on_db: Sojourn) -> None:
    """Editing the transition row and its event's actor together breaks the event's hash instead."""
    _raw(db_url, "UPDATE transition SET actor = :forger WHERE id = (SELECT max(id) FROM transition)",
         "UPDATE audit_event SET actor = :forger WHERE id = (SELECT max(id) FROM audit_event "
         "WHERE action = 'stage_changed')", forger=FORGER)
    assert "content edited" in _first_error(on_db)


def _rewrite_chain(db_url: str, assignment_id: int, actor: str) -> None:
    """What someone with write access and the code could do: put `actor` on the newest stage change in the table
    and its event, then re-seal every event from there on and move the head, so the chain verifies again."""
    rows = _raw(db_url, "SELECT id, assignment_id, seq, at, actor, action, details, prev_hash, hash, secret, erased "
                        "FROM audit_event WHERE assignment_id = :a ORDER BY seq", a=assignment_id)
    events = [audit.ChainEvent(r[1], r[2], r[3] if isinstance(r[3], datetime) else datetime.fromisoformat(r[3]),
                               r[4], r[5], r[6], r[7], r[8], r[0], r[9], r[10]) for r in rows]
    target = max(i for i, e in enumerate(events) if e.action == audit.STAGE_CHANGED)
    prev = events[target - 1].hash
    for event in events[target:]:
        forged = audit.seal(event.assignment_id, event.seq, event.at, actor if event is events[target] else
                            event.actor, event.action, json.loads(event.details), prev)
        _raw(db_url, "UPDATE audit_event SET actor = :actor, prev_hash = :prev, hash = :hash, secret = :secret "
                     "WHERE id = :id", actor=forged.actor, prev=prev, hash=forged.hash, secret=forged.secret,
             id=event.id)
        prev = replace(forged).hash
    _raw(db_url, "UPDATE transition SET actor = :actor WHERE id = (SELECT max(id) FROM transition)",
         "UPDATE assignment SET audit_head = :head WHERE id = :a", actor=actor, head=prev, a=assignment_id)


def test_recomputed_chain_is_caught_against_an_earlier_export(recorded: int, db_url: str, on_db: Sojourn,
                                                              tmp_path: Path) -> None:
    """A chain rewritten and re-sealed after an export verifies on its own, but `--against` the export exits 1
    naming the first event whose hash changed."""
    export = tmp_path / "anchor.jsonl"
    assert on_db("audit", "export", "--output", str(export)).code == 0
    assert on_db("audit", "verify", "--against", str(export)).code == 0
    _rewrite_chain(db_url, recorded, FORGER)
    assert on_db("audit", "verify").code == 0  # the forgery is consistent
    seq, event_id = _raw(db_url, "SELECT seq, id FROM audit_event WHERE actor = :f", f=FORGER)[0]
    line = _first_error(on_db, "--against", str(export))
    assert line == (f"Error: audit trail differs from the export at assignment {recorded}, seq {seq} (event id "
                    f"{event_id}): not as exported: its hash is not the exported one: the chain was rewritten after "
                    "the export")
    report = on_db("audit", "verify", "--against", str(export), "--json")
    assert report.code == 1
    assert json.loads(report.stdout)["against"]["differences"][0]["seq"] == seq


def test_against_a_file_that_is_not_an_export_exits_2(recorded: int, db_url: str, on_db: Sojourn,
                                                      tmp_path: Path) -> None:
    """A malformed export file is bad input: exit 2 naming every bad line, nothing written."""
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"assignment_id": 1}\nnot json\n', encoding="utf-8")
    before = snapshot(db_url)
    outcome = on_db("audit", "verify", "--against", str(bad))
    assert outcome.code == 2
    assert outcome.stderr.splitlines()[1:] == [f"Error: {bad} line 1: not an event of `sojourn audit export` (a JSON "
                                               "object with assignment_id, seq and hash)",
                                               f"Error: {bad} line 2: not an event of `sojourn audit export` (a JSON "
                                               "object with assignment_id, seq and hash)"]
    assert snapshot(db_url) == before
