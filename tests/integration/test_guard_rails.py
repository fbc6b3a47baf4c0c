"""Guard rails: one assignee's running assignments may not overlap unless allowed, and a sign-off given by someone
other than the role's holder is recorded and shown as given on their behalf, on each backend."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from engine.program import plans
from engine.program.people import add_person
from integration.conftest import Sojourn, snapshot
from integration.test_audit import _raw

ROLES = ("sending_manager", "host_manager", "coach", "sponsor", "talent", "mobility")
ADMIN = "admin@example.com"


def _create(on_db: Sojourn, people: dict[str, str], start: str, end: str, *extra: str) -> tuple[int, str, str]:
    created = on_db("assignment", "create", "--workflow", "leadership-development", "--assignee", people["assignee"],
                    "--home", "BR", "--host", "DE", "--start", start, "--end", end,
                    *[f"--stakeholder={role}={people[role]}" for role in ROLES], *extra, "--json")
    return created.code, created.stdout, created.stderr


@pytest.fixture
def running(on_db: Sojourn, people: dict[str, str]) -> int:
    """The cast's assignee on a running assignment from 2026-03-01 to 2027-08-31."""
    code, stdout, stderr = _create(on_db, people, "2026-03-01", "2027-08-31")
    assert code == 0, stderr
    return int(json.loads(stdout)["id"])


def test_overlapping_assignment_is_refused_naming_the_other(running: int, on_db: Sojourn, people: dict[str, str],
                                                            db_url: str) -> None:
    """A second running assignment of the same assignee whose dates overlap exits 1, names the first and its
    dates, and writes nothing."""
    before = snapshot(db_url)
    code, stdout, stderr = _create(on_db, people, "2027-08-31", "2028-12-31")  # one common day
    assert (code, stdout) == (1, "")
    assert snapshot(db_url) == before
    assert all(line.startswith("Error:") for line in stderr.splitlines())
    assert f"running assignment {running} (2026-03-01 to 2027-08-31, stage interviews)" in stderr
    assert "--allow-overlap" in stderr


def test_allow_overlap_creates_it_and_later_dates_need_nothing(running: int, on_db: Sojourn,
                                                               people: dict[str, str]) -> None:
    """`--allow-overlap` accepts the overlap; dates after the running assignment need no option."""
    assert _create(on_db, people, "2027-06-01", "2027-07-31", "--allow-overlap")[0] == 0
    assert _create(on_db, people, "2027-09-01", "2028-12-31")[0] == 0


def test_a_cancelled_assignment_holds_nobody(running: int, on_db: Sojourn, people: dict[str, str]) -> None:
    """Only running assignments count: once the first is cancelled, the same dates are free."""
    assert on_db("advance", str(running), "--to", "cancelled", "--reason", "postponed").code == 0
    assert _create(on_db, people, "2026-03-01", "2027-08-31")[0] == 0


def test_import_reports_every_overlapping_line_at_once(running: int, on_db: Sojourn, people: dict[str, str],
                                                       db: Engine, db_url: str, tmp_path: Path) -> None:
    """Lines overlapping a running assignment or an earlier line of the same assignee are all named (exit 1);
    nothing is imported until `--allow-overlap` is given."""
    add_person(db, "ravi.rao@example.com", name="Ravi Rao", tz="Asia/Kolkata")
    lines = [("ana.lima@example.com", "2027-01-01", "2027-12-31"),  # line 2: overlaps the running assignment
             ("ravi.rao@example.com", "2026-05-01", "2027-04-30"),  # line 3: fine on its own
             ("ravi.rao@example.com", "2027-04-30", "2028-04-30"),  # line 4: overlaps line 3 by one day
             ("ana.lima@example.com", "2028-01-01", "2028-12-31")]  # line 5: after the running one and line 2
    header = "workflow,assignee,home,host,start,end," + ",".join(ROLES)
    rows = [f"leadership-development,{who},BR,DE,{start},{end}," + ",".join(people[r] for r in ROLES)
            for who, start, end in lines]
    path = tmp_path / "hr-export.csv"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    before = snapshot(db_url)
    refused = on_db("assignment", "import", str(path))
    assert refused.code == 1, refused
    assert snapshot(db_url) == before
    assert "2 line(s) overlap another assignment of their assignee" in refused.stderr
    assert f"line 2: 2027-01-01 to 2027-12-31 of assignee ana.lima@example.com overlaps running assignment " \
           f"{running}" in refused.stderr
    assert "line 4: 2027-04-30 to 2028-04-30 of assignee ravi.rao@example.com overlaps line 3 " \
           "(2026-05-01 to 2027-04-30)" in refused.stderr
    assert "line 3:" not in refused.stderr
    assert "line 5:" not in refused.stderr
    imported = on_db("assignment", "import", str(path), "--allow-overlap", "--json")
    assert imported.code == 0, imported
    assert len(json.loads(imported.stdout)) == 4


def test_plan_show_tells_signoffs_by_the_holder_from_those_on_their_behalf(
        running: int, on_db: Sojourn, people: dict[str, str], db: Engine, now: datetime) -> None:
    """An administrator's sign-off for a holder keeps both in the row and its event; `plan show` says which
    sign-offs the holders gave themselves (as themselves at the CLI, or through their link) and which were given
    for them."""
    plans.add_goal(db, running, title="Lead the plant", measure="output", target="120", due="2027-06-30",
                     actor=ADMIN, now=now)
    host = on_db("--actor", ADMIN, "signoff", str(running), "--role", "host_manager", "--by", people["host_manager"])
    assert host.code == 0, host
    assert f"given on their behalf by {ADMIN}" in host.stdout
    assert on_db("--actor", people["talent"], "signoff", str(running), "--role", "talent").code == 0
    plan = json.loads(on_db("plan", "show", str(running), "--json").stdout)
    given = {s["role"]: (s["by"], s["given_by"], s["recorded_by"]) for s in plan["signoffs"]}
    assert given == {"host_manager": (people["host_manager"], "on_behalf", ADMIN),
                     "talent": (people["talent"], "holder", people["talent"])}
    text = on_db("plan", "show", str(running)).stdout
    assert f"host_manager: {people['host_manager']} on " in text
    assert f"on their behalf by {ADMIN}" in text
    assert f"talent: {people['talent']} on " in text
    assert "by the holder" in text
    event = _raw_event(on_db, running)
    assert (event["by"], event["on_behalf"]) == (people["host_manager"], True)


def _raw_event(on_db: Sojourn, assignment_id: int) -> dict[str, object]:
    """The details of the assignment's first `signed_off` event, as `audit export` writes them (JSON lines)."""
    exported = on_db("audit", "export", "--assignment", str(assignment_id)).stdout
    events = [json.loads(line) for line in exported.splitlines() if line.startswith("{")]
    return dict(next(e for e in events if e["action"] == "signed_off")["details"])


def test_audit_verify_covers_the_on_behalf_field(running: int, on_db: Sojourn, people: dict[str, str],
                                                 db: Engine, db_url: str, now: datetime) -> None:
    """Turning an on-behalf sign-off into the holder's own behind Sojourn's back makes `audit verify` fail."""
    plans.add_goal(db, running, title="Lead the plant", measure="output", target="120", due="2027-06-30",
                     actor=ADMIN, now=now)
    assert on_db("--actor", ADMIN, "signoff", str(running), "--role", "mobility").code == 0
    assert on_db("audit", "verify").code == 0
    _raw(db_url, "UPDATE signoff SET on_behalf = NOT on_behalf")
    verified = on_db("audit", "verify")
    assert verified.code == 1, verified
    assert f"assignment {running}, signoff row " in verified.stderr
    assert "on_behalf" in verified.stderr
