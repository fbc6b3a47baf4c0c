"""Personal data on each backend: `person export` gathers everything held about a person, `person erase` removes
their email and name from the database while the audit trail still verifies and the program figures stay."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from engine.delivery.dispatch import dispatch_due
from engine.program import assignments, audit
from engine.store.db import alembic_config
from integration.conftest import Recorder, Sojourn, snapshot
from integration.test_audit import _raw
from tests.support import scenarios
from tests.support.cast import CAST

ASSIGNEE, NAME = CAST["assignee"][0], CAST["assignee"][1]
PG_DUMP = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_dump"))), None) or shutil.which("pg_dump")


@pytest.fixture
def ended(db: Engine, people: dict[str, str], spec: assignments.AssignmentSpec, now: datetime) -> int:
    """The assignee wrote notes, check-in feedback and a pulse note, held tasks and received notices (some
    delivered); then the assignment completed."""
    assignment_id = scenarios.assignment_with_every_record(db, spec, now.replace(microsecond=654321))
    report = dispatch_due(db, [Recorder()], holder="test", now=now + timedelta(days=600))
    assert report.sent > 0
    assert _raw_count(db, "SELECT count(*) FROM outbox WHERE recipient = :r AND status = 'sent'", r=ASSIGNEE) > 0
    return assignment_id


def _raw_count(db: Engine, statement: str, **params: str) -> int:
    return int(_raw(db.url.render_as_string(hide_password=False), statement, **params)[0][0])


def _summary(on_db: Sojourn) -> dict[str, object]:
    outcome = on_db("program", "summary", "--json")
    assert outcome.code == 0, outcome
    summary = json.loads(outcome.stdout)
    summary.pop("as_of")
    return dict(summary)


def _database_text(db_url: str, tmp_path: Path) -> str:
    """Every byte the database holds, lower-cased: the SQLite file and its log after a checkpoint, or pg_dump."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        path = Path(str(url.database))
        connection = sqlite3.connect(path)
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.close()
        files = [path, path.with_name(f"{path.name}-wal")]
        return b"".join(f.read_bytes() for f in files if f.exists()).decode("utf-8", "replace").lower()
    assert PG_DUMP is not None, "pg_dump is not installed"
    libpq = url.set(drivername="postgresql").render_as_string(hide_password=False)
    dumped = subprocess.run([PG_DUMP, "--no-owner", libpq], capture_output=True, text=True, check=True,
                            cwd=tmp_path)
    return dumped.stdout.lower()


def test_erased_person_is_gone_and_the_trail_and_figures_stay(ended: int, db_url: str, on_db: Sojourn,
                                                               tmp_path: Path) -> None:
    """After an erase, the person's email and name are nowhere in the database (SQLite bytes, pg_dump), `audit
    verify` exits 0, `history` shows the pseudonym and `program summary` gives the same figures."""
    before = _summary(on_db)
    held = _database_text(db_url, tmp_path)
    assert ASSIGNEE in held
    assert NAME.lower() in held
    outcome = on_db("person", "erase", ASSIGNEE, "--reason", f"{NAME} asked to be forgotten", "--json")
    assert outcome.code == 0, outcome
    erased = json.loads(outcome.stdout)
    assert erased["email"].endswith("@erased.invalid")
    assert erased["assignments"] == [ended]
    text = _database_text(db_url, tmp_path)
    assert ASSIGNEE not in text
    assert NAME.lower() not in text
    for written in ("my expectations, written down", "hiring is slow", "my host manager makes time for me",
                    "unsure the promotion is still on the table"):  # quoted by the pulse alert to the coach too
        assert written not in text
    verified = on_db("audit", "verify")
    assert verified.code == 0, verified
    history = json.loads(on_db("history", str(ended), "--json").stdout)
    assert erased["email"] in [entry["actor"] for entry in history]
    assert _summary(on_db) == before
    people = json.loads(on_db("person", "list", "--json").stdout)
    assert (erased["email"], erased["name"]) in [(p["email"], p["name"]) for p in people]


def test_erasure_is_recorded_in_the_trail_with_who_when_and_why(ended: int, db_url: str, on_db: Sojourn) -> None:
    """The erasure appends person_erased to each chain it touched: the actor, the instant, the reason (with the
    person's name replaced by the pseudonym) and the seqs rewritten."""
    outcome = on_db("--actor", "dpo@example.com", "person", "erase", ASSIGNEE, "--reason", f"request of {NAME}",
                    "--json")
    erased = json.loads(outcome.stdout)
    actor, details = _raw(db_url, "SELECT actor, details FROM audit_event WHERE action = :a",
                          a=audit.PERSON_ERASED)[0]
    recorded = json.loads(details)
    assert actor == "dpo@example.com"
    assert recorded["reason"] == f"request of {erased['name']}"
    assert recorded["person"] == erased["email"]
    assert len(recorded["events"]) == erased["events_rewritten"] > 0


def test_free_text_by_or_about_the_person_is_blank_and_the_rest_stays(ended: int, db_url: str,
                                                                      on_db: Sojourn) -> None:
    """Notes, feedback and pulse notes the person wrote, and text naming them, are blanked; others' text that does
    not name them stays; notices not sent to them are dropped and sent ones keep no text."""
    assert on_db("person", "erase", ASSIGNEE, "--reason", "left the company").code == 0
    assert _raw(db_url, "SELECT note, feedback FROM checkin ORDER BY id") == [("", ""), (None, "")]
    assert _raw(db_url, "SELECT note FROM pulse") == [("",)]
    assert _raw(db_url, "SELECT notes FROM contact") == [("",)]
    assert _raw(db_url, "SELECT impact FROM outcome") == [("",)]
    assert ("outcome recorded",) in _raw(db_url, "SELECT note FROM task WHERE note IS NOT NULL")
    queued = _raw(db_url, "SELECT count(*) FROM outbox WHERE role = 'assignee' AND status <> 'sent'")
    sent = _raw(db_url, "SELECT subject, body FROM outbox WHERE role = 'assignee' AND status = 'sent'")
    assert queued == [(0,)]
    assert sent
    assert set(sent) == {("", "")}


def test_erase_is_refused_while_the_person_holds_a_running_role(db: Engine, db_url: str, on_db: Sojourn,
                                                                spec: assignments.AssignmentSpec,
                                                                people: dict[str, str], now: datetime) -> None:
    """A person holding a role in a running assignment is not erased: exit 1 naming each assignment and role to
    hand over with set-stakeholder, nothing written."""
    assignment_id = assignments.create_assignment(db, spec, actor="admin", now=now).id
    before = snapshot(db_url)
    outcome = on_db("person", "erase", people["coach"], "--reason", "left")
    assert outcome.code == 1
    assert outcome.stderr.splitlines() == [
        f"Error: {people['coach']} holds 1 role(s) in running assignments; nothing was erased",
        f"Error: assignment {assignment_id} (interviews): coach; hand it over with `sojourn assignment "
        f"set-stakeholder {assignment_id} coach=EMAIL --reason TEXT`"]
    assignee = on_db("person", "erase", people["assignee"], "--reason", "left")
    assert assignee.code == 1
    assert f"assignment {assignment_id} (interviews): assignee; it must end first" in assignee.stderr
    assert snapshot(db_url) == before


@pytest.mark.parametrize(("args", "code", "first_line"), [
    (["person", "erase", "nobody@example.com", "--reason", "x"], 1, "Error: no person nobody@example.com"),
    (["person", "erase", ASSIGNEE], 2, "Error: Missing option '--reason'."),
    (["person", "erase", ASSIGNEE, "--reason", "  "], 2, "Error: --reason"),
    (["person", "export", "nobody@example.com"], 1, "Error: no person nobody@example.com"),
])
def test_bad_input_leaves_the_database_unchanged(args: list[str], code: int, first_line: str, ended: int,
                                                 db_url: str, on_db: Sojourn) -> None:
    """An unknown person (exit 1, with a hint to `sojourn person list`), a missing or blank --reason (exit 2):
    an Error line, no traceback, nothing written."""
    before = snapshot(db_url)
    outcome = on_db(*args)
    assert outcome.code == code, outcome
    assert "Traceback" not in outcome.stderr
    assert any(line.startswith(first_line) for line in outcome.stderr.splitlines()), outcome.stderr
    if code == 1:
        assert "Error: `sojourn person list` shows them" in outcome.stderr.splitlines()
    assert snapshot(db_url) == before


def test_pseudonym_of_an_erased_person_is_not_erased_again(ended: int, on_db: Sojourn) -> None:
    """Erasing the pseudonym again is refused (exit 1): the person is erased once, the pseudonym stays stable;
    exporting it shows what is left, with the erasure record."""
    erased = json.loads(on_db("person", "erase", ASSIGNEE, "--reason", "left", "--json").stdout)
    again = on_db("person", "erase", erased["email"], "--reason", "again")
    assert again.code == 1
    assert again.stderr.splitlines()[0] == f"Error: {erased['email']} is the pseudonym of a person already erased"
    left = json.loads(on_db("person", "export", erased["email"]).stdout)
    assert (left["person"]["email"], left["erasure"][0]["reason"]) == (erased["email"], "left")


def test_export_holds_everything_about_the_person(ended: int, on_db: Sojourn, tmp_path: Path) -> None:
    """`person export` writes one JSON document with the profile, roles, tasks and notes, check-ins and feedback
    received, pulses, sign-offs, outcomes, notices and links issued to them, and the audit events naming them."""
    file = tmp_path / "ana.json"
    outcome = on_db("person", "export", ASSIGNEE, "--output", str(file))
    assert outcome.code == 0, outcome
    document = json.loads(file.read_text(encoding="utf-8"))
    assert document["person"]["email"] == ASSIGNEE
    assert document["person"]["name"] == NAME
    assert [(r["assignment_id"], r["role"], r["stage"]) for r in document["roles"]] == [(ended, "assignee",
                                                                                          "completed")]
    assert "my expectations, written down" in [t["note"] for t in document["tasks"]]
    assert [c["feedback"] for c in document["checkins"]] == ["my host manager makes time for me"]
    assert [c["feedback"] for c in document["feedback_received"]] == [f"{NAME} ({ASSIGNEE}) learns fast"]
    assert [p["note"] for p in document["pulses"]] == ["unsure the promotion is still on the table"]
    assert [s["role"] for s in document["signoffs"]] == ["assignee"]
    assert [o["months"] for o in document["outcomes"]] == [12]
    assert document["notices"]
    assert {n["recipient"] for n in document["notices"]} == {ASSIGNEE}
    assert len(document["links"]["issued"]) == sum(1 for n in document["notices"] if n["sent_at"] is not None)
    assert audit.CHECKIN_RECORDED in [e["action"] for e in document["audit_events"]]
    stdout = on_db("person", "export", ASSIGNEE)
    assert json.loads(stdout.stdout) == document


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_events_from_before_the_upgrade_verify_and_can_be_erased(db: Engine, db_url: str, on_db: Sojourn,
                                                                   ended: int) -> None:
    """Events hashed in clear before 0009 keep verifying after the upgrade beside new ones; erasing a person from
    them keeps their hash and place in the chain, and `audit verify` still passes."""
    _reseal_in_clear(db_url, ended)
    command.downgrade(alembic_config(db), "0008_plan")
    command.upgrade(alembic_config(db), "head")
    assert on_db("audit", "verify").code == 0
    assert on_db("person", "erase", ASSIGNEE, "--reason", "left").code == 0
    erased = _raw(db_url, "SELECT erased FROM audit_event WHERE erased IS NOT NULL")
    assert erased
    assert all(json.loads(e[0])["clear_before"] for e in erased)
    details = _raw(db_url, "SELECT details FROM audit_event WHERE action = :a", a=audit.PERSON_ERASED)[0][0]
    recorded = json.loads(details)
    assert recorded["hashed_in_clear"] == recorded["events"]
    verified = on_db("audit", "verify")
    assert verified.code == 0, verified


def _reseal_in_clear(db_url: str, assignment_id: int) -> None:
    """Make the chain what a version before 0009 wrote: every event hashed with its strings in clear."""
    rows = _raw(db_url, "SELECT id, seq, at, actor, action, details FROM audit_event WHERE assignment_id = :a "
                        "ORDER BY seq", a=assignment_id)
    prev = None
    for event_id, seq, at, actor, action, details in rows:
        instant = at if isinstance(at, datetime) else datetime.fromisoformat(at)
        digest = audit.event_hash(assignment_id, seq, instant, actor, action, details, prev)
        _raw(db_url, "UPDATE audit_event SET prev_hash = :p, hash = :h, secret = NULL WHERE id = :id", p=prev,
             h=digest, id=event_id)
        prev = digest
    _raw(db_url, "UPDATE assignment SET audit_head = :h WHERE id = :a", h=prev, a=assignment_id)


def test_every_problem_of_an_erase_is_reported_at_once(ended: int, db_url: str, on_db: Sojourn) -> None:
    """A malformed email and a blank reason are both named (exit 2), and nothing is written."""
    before = snapshot(db_url)
    outcome = on_db("person", "erase", "not-an-email", "--reason", " ")
    assert outcome.code == 2
    assert outcome.stderr.splitlines() == ["Error: email: 'not-an-email' is not an email address like "
                                           "ana.lima@example.com", "Error: --reason: must not be empty"]
    assert snapshot(db_url) == before
