"""Moving running assignments to a new workflow version: diff, dry run, apply, the daemon afterwards, races, errors."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from freezegun import freeze_time
from sqlalchemy import Engine, func, text
from sqlmodel import col, select

from engine.domain.cadences import add_months_clamped
from engine.domain.errors import BadInput, ConcurrentChange, SojournError
from engine.domain.views import views
from engine.planning.migration_preview import preview_migration
from engine.planning.planner import plan
from engine.program import advance, assignments, audit, migration, workflows
from engine.program.migration import MigrationRequest, migrate_workflow
from engine.program.people import list_people
from engine.store.db import transaction
from engine.store.models import CadenceState, Outbox, Task
from integration.conftest import Sojourn, snapshot
from tests.support import scenarios
from tests.support.scenarios import advance_to
from workflows import builtin_workflow_texts

NAME = "leadership-development"
CREATED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # within the cast's assignment (2026-03-01 to 2027-08-31)
MIGRATED = CREATED + timedelta(days=45)
PLAN_SIGNERS = ["assignee", "sending_manager", "host_manager", "talent", "mobility"]


@pytest.fixture
def spec(people: dict[str, str]) -> assignments.AssignmentSpec:
    """The cast's assignment, ending late enough for the goal `advance_to` adds."""
    return replace(scenarios.cast_spec(), end="2028-12-31")


def _current_text() -> str:
    return builtin_workflow_texts()[f"{NAME}.yaml"]


def _pilot_text() -> str:
    """The built-in as its first year ran it: no check-ins, no pulse, no plan rules (sign-off roles in the guard)."""
    raw = yaml.safe_load(_current_text())
    raw["cadences"] = [c for c in raw["cadences"] if c["kind"] not in ("checkin", "pulse")]
    del raw["plan"], raw["pulse"]
    for transition in raw["transitions"]:
        transition["guards"] = [{"guard": "plan_signed_off", "params": {"roles": PLAN_SIGNERS}}
                                if g == "plan_signed_off" else g for g in transition.get("guards", [])]
    return yaml.safe_dump(raw, sort_keys=False)


def _install(db: Engine, text_: str) -> int:
    return workflows.install_workflow(db, text_, source="test.yaml", now=CREATED).version


def _pilot_then_current(db: Engine) -> tuple[int, int]:
    """The pilot installed as the newest version, then the current built-in after it: (pilot, current)."""
    return _install(db, _pilot_text()), _install(db, _current_text())


def _in_coaching(db: Engine, spec: assignments.AssignmentSpec, at: datetime = CREATED) -> int:
    assignment_id = assignments.create_assignment(db, spec, actor="admin", now=at).id
    advance_to(db, assignment_id, "coaching", at)
    return assignment_id


def _pilot_assignment(db: Engine, spec: assignments.AssignmentSpec) -> tuple[int, int, int]:
    """An assignment in coaching on the pilot (the newest version when it was made), then the current installed."""
    pilot = _install(db, _pilot_text())
    assignment_id = _in_coaching(db, spec)
    return assignment_id, pilot, _install(db, _current_text())


def _request(version: int, **fields: Any) -> MigrationRequest:
    return MigrationRequest(NAME, version, fields.pop("reason", "the program's second year"), **fields)


def _sweep_until(db: Engine, until: datetime, clock: Any) -> None:
    """Plan at every instant a task or a cadence falls due up to `until`, moving the frozen clock there."""
    while True:
        with transaction(db) as session:
            task = session.exec(select(func.min(Task.next_reminder_at)).where(Task.status == "open")).one()
            cadence = session.exec(select(func.min(CadenceState.next_check_at))).one()
        found = [i.astimezone(UTC) for i in (task, cadence) if i is not None]
        if not found or min(found) > until:
            break
        clock.move_to(min(found))
        with transaction(db) as session:
            plan(session, datetime.now(UTC))
    clock.move_to(until)


def _assignee_tz(db: Engine) -> str:
    return next(p["tz"] for p in views(list_people(db)) if p["email"] == scenarios.cast_spec().assignee)


def _outbox(db: Engine, *kinds: str) -> list[Outbox]:
    with transaction(db) as session:
        return list(session.exec(select(Outbox).where(col(Outbox.kind).in_(kinds)).order_by(col(Outbox.id))))


# --- diff --------------------------------------------------------------------------------------------------------


def test_diff_lists_the_cadences_and_rules_the_current_version_adds(db: Engine) -> None:
    """The diff from the pilot to the current version adds the check-in and pulse cadences, pulse and plan rules."""
    pilot, current = _pilot_then_current(db)
    diff = migration.diff_workflow(db, NAME, from_version=pilot, to_version=current).view()
    assert diff["summary"]["cadence"] == {"added": ["checkin", "pulse"], "removed": [], "changed": []}
    assert diff["summary"]["plan"]["added"] == ["plan"]
    assert diff["summary"]["pulse"]["added"] == ["pulse"]
    changed = next(c for c in diff["changes"] if c["part"] == "transition" and c["key"] == "plan_agreed -> orientation")
    assert changed["change"] == "changed"
    assert "guards" in changed["fields"]
    assert "stage" not in diff["summary"]


# --- the pilot to the current version ----------------------------------------------------------------------------


def test_dry_run_lists_new_cadences_and_next_notices_and_writes_nothing(db: Engine, db_url: str,
                                                                        spec: assignments.AssignmentSpec) -> None:
    """A dry run shows the cadences that start and the next 90 days' notices before and after; nothing changes."""
    assignment_id, pilot, current = _pilot_assignment(db, spec)
    before = snapshot(db_url)
    view = preview_migration(db, _request(current), actor="admin", now=MIGRATED).view()
    assert snapshot(db_url) == before
    [move] = view["assignments"]
    assert (move["assignment_id"], move["from_version"], move["stage_to"]) == (assignment_id, pilot, "coaching")
    assert move["cadences_started"] == ["checkin", "pulse"]
    assert move["plan_rules"]["signers"] == {"from": None, "to": PLAN_SIGNERS}
    kinds_after = {n["kind"] for n in move["notices_after"]}
    assert {"checkin_due", "pulse_due"} <= kinds_after
    assert not {"checkin_due", "pulse_due"} & {n["kind"] for n in move["notices_before"]}
    horizon = (MIGRATED + timedelta(days=91)).isoformat()
    assert all(n["at"] < horizon for n in move["notices_after"])
    assert view["applied"] is False


def test_daemon_sends_checkins_and_pulses_after_migration_without_back_filling(
        db: Engine, spec: assignments.AssignmentSpec) -> None:
    """After the migration the daemon sends checkin_due and pulse_due in periods counted from the migration day, never
    a notice of a period before it; the sponsor cadence keeps its keys; history and audit show the migration."""
    with freeze_time(CREATED) as clock:
        assignment_id, pilot, current = _pilot_assignment(db, spec)
        _sweep_until(db, MIGRATED, clock)
        sponsor_before = {r.key for r in _outbox(db, "contact_due", "contact_missed")}
        assert not _outbox(db, "checkin_due", "pulse_due")
        migrate_workflow(db, _request(current), actor="admin", now=MIGRATED, dry_run=False)
        _sweep_until(db, MIGRATED + timedelta(days=120), clock)

    checkin_periods = sorted({date.fromisoformat(r.key.split("/")[3]) for r in _outbox(db, "checkin_due")})
    pulse_periods = sorted({date.fromisoformat(r.key.split("/")[3]) for r in _outbox(db, "pulse_due")})
    migration_day = MIGRATED.astimezone(ZoneInfo(_assignee_tz(db))).date()
    assert checkin_periods == [add_months_clamped(migration_day, k) for k in range(4)]  # monthly, from that day
    assert pulse_periods == [migration_day, add_months_clamped(migration_day, 3)]
    lapsed = {date.fromisoformat(r.key.split("/")[3]) for r in _outbox(db, "checkin_missed")}
    assert min(lapsed) == migration_day  # the first period looked for is the migration day's, never an earlier one
    # the cadences that went on keep their keys: nothing sent for them before is queued again
    sponsor_after = [r.key for r in _outbox(db, "contact_due", "contact_missed")]
    assert len(sponsor_after) == len(set(sponsor_after))
    assert sponsor_before <= set(sponsor_after)

    migrated = [h for h in views(assignments.history(db, assignment_id)) if h["event"] == audit.WORKFLOW_MIGRATED]
    assert [(h["from"], h["to"], h["actor"], h["reason"]) for h in migrated] == [
        (pilot, current, "admin", "the program's second year")]
    shown = assignments.show_assignment(db, assignment_id, now=MIGRATED).view()
    assert (shown["workflow_version"], shown["stage"]) == (current, "coaching")
    assert audit.verify_audit(db).intact


def test_an_edited_migration_event_fails_audit_verify(db: Engine, spec: assignments.AssignmentSpec) -> None:
    """Changing the recorded reason of a migration breaks the assignment's chain."""
    assignment_id, _, current = _pilot_assignment(db, spec)
    migrate_workflow(db, _request(current), actor="admin", now=MIGRATED, dry_run=False)
    with transaction(db) as session:
        session.connection().execute(text("UPDATE audit_event SET details = replace(details, 'second', 'third') "
                                          "WHERE action = :a"), {"a": audit.WORKFLOW_MIGRATED})
    report = audit.verify_audit(db)
    assert not report.intact
    assert {p.assignment_id for p in report.problems} == {assignment_id}


def test_an_assignment_already_on_the_version_is_skipped_and_finished_ones_never_move(
        db: Engine, spec: assignments.AssignmentSpec) -> None:
    """Named assignments already on the version, or cancelled, are reported as skipped and left as they are."""
    pilot = _install(db, _pilot_text())
    assignment_id, cancelled = _in_coaching(db, spec), _in_coaching(db, spec)
    advance.advance(db, cancelled, to="cancelled", reason="budget", actor="admin", now=CREATED)
    current = _install(db, _current_text())
    on_current = assignments.create_assignment(db, spec, actor="admin", now=CREATED).id
    view = migrate_workflow(db, _request(current, assignment_ids=(assignment_id, on_current, cancelled)),
                            actor="admin", now=MIGRATED, dry_run=False)
    assert [m.assignment_id for m in view.assignments] == [assignment_id]
    assert [s.assignment_id for s in view.skipped] == [on_current, cancelled]
    assert assignments.show_assignment(db, cancelled, now=MIGRATED).workflow_version == pilot


# --- a renamed stage and a removed task --------------------------------------------------------------------------


def _renamed_text() -> str:
    """The current built-in with coaching renamed coaching_abroad and its review task replaced by another."""
    raw = yaml.safe_load(_current_text())
    for stage in raw["stages"]:
        if stage["key"] == "coaching":
            stage["key"] = "coaching_abroad"
            stage["tasks"] = [{"key": "quarterly_review", "title": "Review the quarter with the assignee",
                               "owner": "coach", "due": {"days": 30}}]
    for transition in raw["transitions"]:
        transition["from"] = "coaching_abroad" if transition["from"] == "coaching" else transition["from"]
        transition["to"] = "coaching_abroad" if transition["to"] == "coaching" else transition["to"]
    for cadence in raw["cadences"]:
        for end in ("from_stage", "until_stage"):
            cadence[end] = "coaching_abroad" if cadence[end] == "coaching" else cadence[end]
    return yaml.safe_dump(raw, sort_keys=False)


def test_renamed_stage_is_refused_without_a_mapping_and_moves_with_it(db: Engine, db_url: str,
                                                                      spec: assignments.AssignmentSpec) -> None:
    """Without --map-stage the run is refused naming stage and assignment; with it the removed task and its queued
    reminders are cancelled, the new task is due from the stage's rule, and nothing is sent for the old task."""
    with freeze_time(CREATED) as clock:
        assignment_id = _in_coaching(db, spec)
        review = next(t for t in assignments.show_assignment(db, assignment_id, now=CREATED).view()["tasks"]
                      if t["key"] == "mid_assignment_review")
        with transaction(db) as session:  # the review falls due soon, so its reminder is queued
            session.connection().execute(text("UPDATE task SET due_on = :d, next_reminder_at = :r WHERE id = :i"),
                                         {"d": MIGRATED.date() + timedelta(days=2), "r": MIGRATED, "i": review["id"]})
        _sweep_until(db, MIGRATED, clock)
        queued = [r for r in _outbox(db, "task_due_soon") if r.task_id == review["id"]]
        assert [r.status for r in queued] == ["pending"]
        renamed = _install(db, _renamed_text())

        before = snapshot(db_url)
        with pytest.raises(SojournError) as refused:
            migrate_workflow(db, _request(renamed), actor="admin", now=MIGRATED, dry_run=False)
        assert refused.value.exit_code == 1
        assert "stage 'coaching' (assignment(s) " in " ".join(refused.value.lines())
        assert str(assignment_id) in " ".join(refused.value.lines())
        assert snapshot(db_url) == before

        view = migrate_workflow(db, _request(renamed, stage_map=("coaching=coaching_abroad",)), actor="admin",
                                now=MIGRATED, dry_run=False)
        [move] = view.assignments
        assert move.stage_to == "coaching_abroad"
        assert [t.key for t in move.tasks_cancelled] == ["mid_assignment_review"]
        assert [(t.key, t.due_on) for t in move.tasks_added] == [
            ("quarterly_review", MIGRATED.date() + timedelta(days=3))]  # entry + 30 days has passed
        _sweep_until(db, MIGRATED + timedelta(days=60), clock)

    with transaction(db) as session:
        old = session.get(Task, review["id"])
        assert old is not None
        assert old.status == "cancelled"
        about_old = session.exec(select(Outbox).where(Outbox.task_id == review["id"])).all()
    assert {r.status for r in about_old} == {"cancelled"}
    assert assignments.show_assignment(db, assignment_id, now=MIGRATED).stage == "coaching_abroad"
    assert audit.verify_audit(db).intact


# --- a race with advance -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_an_advance_committing_while_a_migration_plans_wins_and_the_migration_writes_nothing(
        db: Engine, db_url: str, spec: assignments.AssignmentSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    """The migration read the assignment, an advance commits meanwhile: the migration is refused, exit 1, whole."""
    assignment_id, _, current = _pilot_assignment(db, spec)
    other = _in_coaching(db, spec)
    planned = migration.plan_migration

    def advance_meanwhile(*args: Any) -> Any:
        found = planned(*args)
        advance.advance(db, assignment_id, to="cancelled", reason="budget", actor="rival", now=MIGRATED)
        return found

    monkeypatch.setattr(migration, "plan_migration", advance_meanwhile)
    before_other = assignments.show_assignment(db, other, now=MIGRATED).view()
    with pytest.raises(ConcurrentChange) as lost:
        migrate_workflow(db, _request(current), actor="admin", now=MIGRATED, dry_run=False)
    assert lost.value.exit_code == 1
    assert assignments.show_assignment(db, assignment_id, now=MIGRATED).stage == "cancelled"
    assert assignments.show_assignment(db, other, now=MIGRATED).view() == before_other
    assert not [h for h in views(assignments.history(db, other)) if h["event"] == audit.WORKFLOW_MIGRATED]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_migration_committing_while_an_advance_checks_wins_and_the_advance_writes_nothing(
        db: Engine, spec: assignments.AssignmentSpec, monkeypatch: pytest.MonkeyPatch) -> None:
    """An advance read the assignment, a migration commits meanwhile: the advance is refused and writes nothing."""
    assignment_id, _, current = _pilot_assignment(db, spec)
    fire = advance._fire

    def migrate_meanwhile(*args: Any) -> None:
        fire(*args)
        migrate_workflow(db, _request(current), actor="rival", now=MIGRATED, dry_run=False)

    monkeypatch.setattr(advance, "_fire", migrate_meanwhile)
    with pytest.raises(ConcurrentChange):
        advance.advance(db, assignment_id, to="cancelled", reason="budget", actor="admin", now=MIGRATED)
    shown = assignments.show_assignment(db, assignment_id, now=MIGRATED).view()
    assert (shown["stage"], shown["workflow_version"]) == ("coaching", current)


# --- the command line --------------------------------------------------------------------------------------------


def _cli_setup(db: Engine, spec: assignments.AssignmentSpec) -> tuple[int, int, int]:
    return _pilot_assignment(db, spec)


@pytest.mark.parametrize(("args", "code", "says"), [
    (["no-such-workflow", "--to", "2"], 1, "no workflow no-such-workflow"),
    ([NAME, "--to", "99"], 1, "no version 99 of workflow"),
    ([NAME, "--to", "{current}", "--map-stage", "coaching=nowhere"], 2, "has no stage 'nowhere'"),
    ([NAME, "--to", "{current}", "--map-stage", "abroad=coaching"], 2, "'abroad' is not a stage"),
    ([NAME, "--to", "{pilot}", "--assignment", "{newer}"], 2, "a migration only moves forward"),
    ([NAME, "--to", "{current}", "--map-stage", "coaching"], 2, "give OLD=NEW"),
    ([NAME, "--to", "{current}", "--map-stage", "coaching=completed"], 2, "'completed' is a final stage"),
])
def test_bad_migrations_say_why_exit_nonzero_and_change_nothing(
        sojourn: Sojourn, db: Engine, db_url: str, spec: assignments.AssignmentSpec, args: list[str], code: int,
        says: str) -> None:
    """Unknown workflow or version, bad mappings and a backward move: Error lines, the exit code, no write."""
    _, pilot, current = _cli_setup(db, spec)
    newer = assignments.create_assignment(db, spec, actor="admin", now=CREATED).id
    filled = [a.format(current=current, pilot=pilot, newer=newer) for a in args]
    before = snapshot(db_url)
    result = sojourn("--db", db_url, "workflow", "migrate", *filled, "--reason", "second year")
    assert result.code == code, result.stderr
    assert says in result.stderr
    assert result.stderr.startswith("Error: ")
    assert "Traceback" not in result.stderr
    assert snapshot(db_url) == before


def test_every_problem_of_a_migration_is_reported_at_once(db: Engine, spec: assignments.AssignmentSpec) -> None:
    """A backward move of a named assignment and a mapping to a missing stage come out together, as bad input."""
    _, pilot, _ = _pilot_assignment(db, spec)
    newer = assignments.create_assignment(db, spec, actor="admin", now=CREATED).id
    with pytest.raises(BadInput) as bad:
        migrate_workflow(db, _request(pilot, assignment_ids=(newer,), stage_map=("coaching=nowhere",)),
                         actor="admin", now=MIGRATED, dry_run=False)
    said = "\n".join(bad.value.lines())
    assert "a migration only moves forward" in said
    assert "has no stage 'nowhere'" in said


def test_cli_dry_run_then_migrate_then_history(sojourn: Sojourn, db: Engine, db_url: str,
                                               spec: assignments.AssignmentSpec) -> None:
    """The commands an administrator runs: diff, a dry run that writes nothing, the migration, its history entry."""
    assignment_id, pilot, current = _cli_setup(db, spec)
    diff = sojourn("--db", db_url, "workflow", "diff", NAME, "--from", str(pilot), "--to", str(current))
    assert diff.code == 0
    assert "+ cadence checkin" in diff.stdout
    before = snapshot(db_url)
    dry = sojourn("--db", db_url, "--actor", "admin@example.com", "workflow", "migrate", NAME, "--to", str(current),
                  "--reason", "second year", "--dry-run", "--json")
    assert dry.code == 0, dry.stderr
    assert json.loads(dry.stdout)["assignments"][0]["cadences_started"] == ["checkin", "pulse"]
    assert snapshot(db_url) == before
    done = sojourn("--db", db_url, "--actor", "admin@example.com", "workflow", "migrate", NAME, "--to", str(current),
                   "--reason", "second year")
    assert done.code == 0, done.stderr
    assert f"migrated 1 assignment(s) to version {current}" in done.stdout
    shown = json.loads(sojourn("--db", db_url, "history", str(assignment_id), "--json").stdout)
    assert shown[-1]["event"] == "workflow_migrated"
    assert shown[-1]["actor"] == "admin@example.com"


def test_init_reports_assignments_on_older_versions_in_its_own_result(db: Engine,
                                                                     spec: assignments.AssignmentSpec) -> None:
    """`init` is one use case: what a newer version left behind comes in its result, for every caller."""
    assignment_id = _in_coaching(db, spec)
    version = _install(db, _pilot_text())
    [older] = workflows.init(db, now=MIGRATED).on_older_versions
    assert (older.workflow, older.version, older.assignments) == (NAME, version, (assignment_id,))


def test_init_names_assignments_on_older_versions_and_the_command_to_move_them(
        sojourn: Sojourn, db: Engine, db_url: str, spec: assignments.AssignmentSpec) -> None:
    """After an upgrade `init` lists running assignments on an older built-in version with the migrate command."""
    assignment_id = _in_coaching(db, spec)
    _install(db, _pilot_text())  # stands in for the newer built-in an upgrade brings
    result = sojourn("--db", db_url, "init", "--json")
    assert result.code == 0, result.stderr
    [older] = json.loads(result.stdout)["on_older_versions"]
    assert older["assignments"] == [assignment_id]
    assert older["command"].startswith(f"sojourn workflow migrate {NAME} --to ")
