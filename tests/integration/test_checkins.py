"""Check-ins and pulses: recording, their cadences over a year in two time zones, pulse alerts, bad input, feedback
both ways, the list of a plan's check-ins, and the immersion days."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory
from sqlalchemy import Engine, func
from sqlmodel import col, select

from engine.delivery.links import LinkSigner
from engine.domain.cadences import add_months_clamped
from engine.domain.errors import SojournError
from engine.domain.link_rules import LinkAction
from engine.planning.planner import plan
from engine.program import advance, assignments, checkins, people
from engine.store.audit_events import audit_event_rows
from engine.store.db import transaction
from engine.store.models import CadenceState, Checkin, GoalProgress, Outbox, Pulse, Task
from engine.web import actions
from engine.web.app import create_app
from integration.conftest import Sojourn, snapshot
from tests.support.scenarios import advance_to
from tests.support.webhook import Receiver

ROLES = ("assignee", "sending_manager", "host_manager", "coach", "sponsor", "talent", "mobility")
CREATED = datetime(2027, 1, 4, 20, 0, tzinfo=UTC)  # already 5 January in Tokyo
# Two casts: the assignee west of UTC with the host manager east of it, and the other way round.
ZONES = {
    "sao_paulo_to_berlin": {"assignee": "America/Sao_Paulo", "host_manager": "Europe/Berlin",
                            "sending_manager": "America/Sao_Paulo", "mobility": "Asia/Kolkata"},
    "tokyo_to_los_angeles": {"assignee": "Asia/Tokyo", "host_manager": "America/Los_Angeles",
                             "sending_manager": "Asia/Tokyo", "mobility": "Europe/London"},
}
CHECKIN_NOTIFY = ("assignee", "host_manager", "sending_manager")
SIGNER = LinkSigner("test secret", "https://sojourn.example.com", timedelta(days=14))


def _cast(db: Engine, zones: dict[str, str], prefix: str = "") -> dict[str, str]:
    """One person per role, in the zone `zones` names (UTC otherwise); role -> email."""
    emails = {}
    for role in ROLES:
        email = f"{prefix}{role.replace('_', '.')}@example.com"
        people.add_person(db, email, name=role.replace("_", " ").title(), tz=zones.get(role, "UTC"))
        emails[role] = email
    return emails


def _create(db: Engine, cast: dict[str, str], at: datetime, workflow: str = "leadership-development") -> int:
    spec = assignments.AssignmentSpec(workflow=workflow, assignee=cast["assignee"], home="BR", host="DE",
                                      start="2027-01-01", end="2029-06-30",
                                      stakeholders={r: e for r, e in cast.items() if r != "assignee"})
    return assignments.create_assignment(db, spec, actor="admin", now=at).id


def _in_alignment(db: Engine, cast: dict[str, str], at: datetime) -> int:
    """An assignment that enters orientation and alignment_meetings at `at`: both cadences run from there."""
    assignment_id = _create(db, cast, at)
    advance_to(db, assignment_id, "alignment_meetings", at)
    return assignment_id


def _goal_id(db: Engine, assignment_id: int, now: datetime) -> int:
    return int(assignments.show_assignment(db, assignment_id, now=now).view()["goals"][0]["id"])


def _rows(db: Engine, kind: str) -> list[Outbox]:
    with transaction(db) as session:
        return list(session.exec(select(Outbox).where(Outbox.kind == kind).order_by(col(Outbox.id))).all())


def _next_instant(db: Engine) -> datetime | None:
    with transaction(db) as session:
        task = session.exec(select(func.min(Task.next_reminder_at)).where(Task.status == "open")).one()
        cadence = session.exec(select(func.min(CadenceState.next_check_at))).one()
    found = [i.astimezone(UTC) for i in (task, cadence) if i is not None]
    return min(found) if found else None


def _sweep_until(db: Engine, clock: FrozenDateTimeFactory, until: datetime) -> None:
    """Plan at every instant something falls due up to `until`, moving the frozen clock there, then stop at it."""
    while (following := _next_instant(db)) is not None and following <= until:
        clock.move_to(following)
        with transaction(db) as session:
            plan(session, datetime.now(UTC))
    clock.move_to(until)


def _local(day: date, hour: int, tz: str) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=ZoneInfo(tz)).astimezone(UTC)


def _period(row: Outbox) -> date:
    return date.fromisoformat(row.key.split("/")[3])


# --- cadences over a year ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("cast_name", list(ZONES))
def test_checkin_and_pulse_cadences_run_a_year_and_lapse_only_where_nothing_was_recorded(
        db: Engine, cast_name: str) -> None:
    """Over a year, checkin_due comes monthly and pulse_due quarterly at 09:00 local from the assignee's entry day;
    checkin_missed comes only for the months without a check-in and the quarters without a pulse."""
    zones = ZONES[cast_name]
    cast = _cast(db, zones)
    assignee_tz = zones["assignee"]
    anchor = CREATED.astimezone(ZoneInfo(assignee_tz)).date()
    year_end = _local(add_months_clamped(anchor, 12), 0, assignee_tz)
    with freeze_time(CREATED) as clock:
        assignment_id = _in_alignment(db, cast, CREATED)
        goal_id = _goal_id(db, assignment_id, CREATED)
        for month in range(6):  # the first six months: a check-in on the tenth day of the period
            _sweep_until(db, clock, _local(add_months_clamped(anchor, month) + timedelta(days=9), 10, assignee_tz))
            checkins.record_checkin(db, assignment_id, by=cast["host_manager" if month % 2 else "assignee"],
                                    progress={goal_id: 10 * month}, note=None, feedback=None, actor="admin",
                                    now=datetime.now(UTC))
            if month in (0, 3):  # the first two quarters: a pulse
                checkins.record_pulse(db, assignment_id, by=cast["assignee"], expectancy=4, instrumentality=4,
                                      valence=4, note=None, actor="admin", now=datetime.now(UTC))
        _sweep_until(db, clock, year_end)

    months = [add_months_clamped(anchor, k) for k in range(12)]
    due = _rows(db, "checkin_due")
    for role in CHECKIN_NOTIFY:
        mine = [r for r in due if r.role == role]
        local = [r.deliver_at.astimezone(ZoneInfo(zones.get(role, "UTC"))) for r in mine]
        assert [t.date() for t in local] == months
        assert {t.time() for t in local} == {time(9)}
        assert {r.recipient for r in mine} == {cast[role]}
    missed = _rows(db, "checkin_missed")
    checked_months = [m for k, m in enumerate(months) if add_months_clamped(anchor, k + 1) + timedelta(days=7)
                      < year_end.astimezone(ZoneInfo(assignee_tz)).date()]
    lapsed_months = sorted({_period(r) for r in missed if "/checkin/" in r.key})
    assert lapsed_months == checked_months[6:]
    assert {r.role for r in missed if "/checkin/" in r.key} == {*CHECKIN_NOTIFY, "mobility"}

    quarters = [add_months_clamped(anchor, 3 * k) for k in range(4)]
    pulse_due = _rows(db, "pulse_due")
    assert [r.deliver_at.astimezone(ZoneInfo(assignee_tz)) for r in pulse_due] == [
        datetime.combine(q, time(9), tzinfo=ZoneInfo(assignee_tz)) for q in quarters]
    assert {(r.role, r.recipient) for r in pulse_due} == {("assignee", cast["assignee"])}
    lapsed_quarters = sorted({_period(r) for r in missed if "/pulse/" in r.key})
    assert lapsed_quarters == [quarters[2]]  # the fourth quarter's grace has not run out within the year
    assert {r.role for r in missed if "/pulse/" in r.key} == {"assignee", "mobility"}


def test_checkin_due_shows_every_recipient_the_latest_progress_of_each_goal(db: Engine) -> None:
    """The sending manager's monthly checkin_due lists each goal with the percentage of its latest check-in."""
    cast = _cast(db, ZONES["sao_paulo_to_berlin"])
    assignment_id = _in_alignment(db, cast, CREATED)
    goal_id = _goal_id(db, assignment_id, CREATED)
    first = CREATED + timedelta(days=3)
    checkins.record_checkin(db, assignment_id, by=cast["host_manager"], progress={goal_id: 40}, note=None,
                            feedback="needs more delegation", actor="admin", now=first)
    checkins.record_checkin(db, assignment_id, by=cast["assignee"], progress={goal_id: 55}, note=None,
                            feedback=None, actor="admin", now=first + timedelta(days=5))
    with transaction(db) as session:
        plan(session, CREATED + timedelta(days=40))
    home = [r for r in _rows(db, "checkin_due") if r.role == "sending_manager"]
    latest = home[-1].body
    assert f"goal {goal_id}, Lead the regional team: 55% (check-in by the assignee on " in latest
    assert "40%" not in latest
    assert "sojourn checkin" not in latest  # the sending manager reads; the assignee and host manager record


# --- recording -------------------------------------------------------------------------------------------------


def test_checkin_records_progress_per_goal_and_feedback_with_the_role_of_who_checked_in(
        db: Engine, on_db: Sojourn) -> None:
    """`sojourn checkin --json` stores each goal's percentage and the host manager's feedback under their role."""
    cast = _cast(db, ZONES["sao_paulo_to_berlin"])
    assignment_id = _in_alignment(db, cast, CREATED)
    goal_id = _goal_id(db, assignment_id, CREATED)
    out = on_db("checkin", str(assignment_id), "--by", cast["host_manager"], "--goal", f"{goal_id}=35",
                "--note", "monthly one-to-one", "--feedback", "owns the forecast now", "--json")
    assert out.code == 0, out.stderr
    shown = json.loads(out.stdout)
    assert (shown["role"], shown["by"], shown["feedback"]) == ("host_manager", cast["host_manager"],
                                                               "owns the forecast now")
    assert shown["progress"] == [{"goal_id": goal_id, "title": "Lead the regional team", "percent": 35}]
    with transaction(db) as session:
        stored = session.exec(select(Checkin)).one()
        progress = session.exec(select(GoalProgress)).one()
    assert (stored.role, stored.note, progress.goal_id, progress.percent) == ("host_manager", "monthly one-to-one",
                                                                              goal_id, 35)
    assert progress.checkin_id == stored.id


def test_contact_log_refuses_checkin_kind_and_points_to_the_checkin_command(db: Engine, db_url: str,
                                                                            on_db: Sojourn) -> None:
    """A check-in cannot be logged as a contact: exit 2, the command to use instead, nothing written."""
    cast = _cast(db, {})
    assignment_id = _in_alignment(db, cast, CREATED)
    before = snapshot(db_url)
    out = on_db("contact", "log", str(assignment_id), "--kind", "checkin", "--with", cast["host_manager"])
    assert out.code == 2
    assert out.stderr.startswith(f"Error: --kind checkin: record it with `sojourn checkin {assignment_id}")
    assert snapshot(db_url) == before


# --- pulse alerts ------------------------------------------------------------------------------------------------


def _alerts(db: Engine) -> list[tuple[str, str]]:
    return sorted((r.role, r.recipient) for r in _rows(db, "pulse_alert"))


def test_pulse_with_an_answer_at_two_alerts_coach_and_talent_at_once(db: Engine) -> None:
    """Valence 2 writes pulse_alert to the coach and the talent team, deliverable at the pulse's instant."""
    cast = _cast(db, {})
    assignment_id = _in_alignment(db, cast, CREATED)
    at = CREATED + timedelta(days=2)
    answered = checkins.record_pulse(db, assignment_id, by=cast["assignee"], expectancy=4, instrumentality=3,
                                     valence=2, note="the promotion seems unlikely", actor="admin", now=at).view()
    assert answered["alert"] is True
    assert answered["alert_reason"] == "valence 2 is at or below 2"
    assert _alerts(db) == [("coach", cast["coach"]), ("talent", cast["talent"])]
    assert {r.deliver_at for r in _rows(db, "pulse_alert")} == {at}
    assert all("the promotion seems unlikely" in r.body for r in _rows(db, "pulse_alert"))


def test_alert_resolve_closes_the_alert_for_the_program_summary_once(db: Engine, db_url: str,
                                                                      on_db: Sojourn) -> None:
    """The coach resolves a pulse alert named in its notice: the summary's open alerts drop to 0, the audit trail
    keeps who and why; a second resolve, an outsider, a pulse without alert or an unknown pulse change nothing."""
    cast = _cast(db, {})
    assignment_id = _in_alignment(db, cast, CREATED)
    calm = checkins.record_pulse(db, assignment_id, by=cast["assignee"], expectancy=4, instrumentality=4,
                                 valence=4, note=None, actor="admin", now=CREATED).view()
    weak = checkins.record_pulse(db, assignment_id, by=cast["assignee"], expectancy=4, instrumentality=3,
                                 valence=2, note=None, actor="admin", now=CREATED + timedelta(days=1)).view()
    command = f"sojourn alert resolve {weak['id']} --by {cast['coach']} --note TEXT"
    assert all(command in r.body for r in _rows(db, "pulse_alert") if r.role == "coach")
    assert json.loads(on_db("program", "summary", "--json").stdout)["open_pulse_alerts"] == 1

    before = snapshot(db_url)
    refusals = [(["alert", "resolve", str(weak["id"]), "--by", cast["host_manager"]], 1,
                 f"Error: {cast['host_manager']} may not resolve this alert on assignment {assignment_id}"),
                (["alert", "resolve", str(calm["id"]), "--by", cast["coach"]], 1,
                 f"Error: pulse {calm['id']} raised no alert"),
                (["alert", "resolve", "999", "--by", cast["coach"]], 1, "Error: no pulse 999"),
                (["alert", "resolve", str(weak["id"]), "--by", "coach"], 2, "Error: --by: 'coach' is not an email")]
    for args, code, error in refusals:
        out = on_db(*args)
        assert (out.code, out.stderr.startswith(error)) == (code, True), out.stderr
        assert "Traceback" not in out.stderr
    assert snapshot(db_url) == before

    resolved = on_db("alert", "resolve", str(weak["id"]), "--by", cast["coach"], "--note", "talked it through",
                     "--json")
    assert resolved.code == 0, resolved.stderr
    view = json.loads(resolved.stdout)
    assert (view["role"], view["by"], view["note"]) == ("coach", cast["coach"], "talked it through")
    assert json.loads(on_db("program", "summary", "--json").stdout)["open_pulse_alerts"] == 0
    with transaction(db) as session:
        trail = [json.loads(e.details) for e in audit_event_rows(session, assignment_id)
                 if e.action == "pulse_alert_resolved"]
    assert trail == [{"pulse": weak["id"], "by": cast["coach"], "role": "coach", "note": "talked it through"}]
    again = on_db("alert", "resolve", str(weak["id"]), "--by", cast["talent"])
    assert again.code == 1
    assert again.stderr.startswith(f"Error: the alert of pulse {weak['id']} was resolved already")


@pytest.mark.parametrize(("second", "alerts"), [((3, 5, 5), True), ((4, 5, 5), False), ((3, 3, 3), False)])
def test_pulse_alerts_on_a_drop_of_two_since_the_previous_one_only(db: Engine, second: tuple[int, int, int],
                                                                   alerts: bool) -> None:
    """From 5/5/5, expectancy 3 (a drop of 2) alerts; a drop of 1 does not; a first pulse of 3s does not either."""
    cast = _cast(db, {})
    assignment_id = _in_alignment(db, cast, CREATED)
    first = (5, 5, 5) if second != (3, 3, 3) else None
    if first is not None:
        checkins.record_pulse(db, assignment_id, by=cast["assignee"], expectancy=first[0], instrumentality=first[1],
                              valence=first[2], note=None, actor="admin", now=CREATED)
    answered = checkins.record_pulse(db, assignment_id, by=cast["assignee"], expectancy=second[0],
                                     instrumentality=second[1], valence=second[2], note=None, actor="admin",
                                     now=CREATED + timedelta(days=90)).view()
    assert answered["alert"] is alerts
    assert (answered["alert_reason"] == "expectancy fell from 5 to 3") is alerts
    assert bool(_alerts(db)) is alerts


def test_pulse_is_not_written_when_its_alert_cannot_be(db: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pulse and its alert share one transaction: an alert that fails to be written leaves no pulse either."""
    cast = _cast(db, {})
    assignment_id = _in_alignment(db, cast, CREATED)

    def failing_insert(*_: object) -> int:
        raise RuntimeError("outbox unavailable")

    monkeypatch.setattr(checkins, "insert_notifications", failing_insert)
    with pytest.raises(RuntimeError):
        checkins.record_pulse(db, assignment_id, by=cast["assignee"], expectancy=1, instrumentality=1, valence=1,
                              note=None, actor="admin", now=CREATED)
    with transaction(db) as session:
        assert session.exec(select(Pulse)).all() == []


def test_pulse_never_alerts_in_a_workflow_without_pulse_rules(db: Engine) -> None:
    """short-term-project declares no `pulse:` section: a pulse of all 1s is stored without an alert."""
    cast = _cast(db, {})
    spec = assignments.AssignmentSpec(workflow="short-term-project", assignee=cast["assignee"], home="BR",
                                      host="DE", start="2027-01-01", end="2027-06-30",
                                      stakeholders={r: cast[r] for r in ("sending_manager", "host_manager",
                                                                         "mobility")})
    assignment_id = assignments.create_assignment(db, spec, actor="admin", now=CREATED).id
    answered = checkins.record_pulse(db, assignment_id, by=cast["assignee"], expectancy=1, instrumentality=1,
                                     valence=1, note=None, actor="admin", now=CREATED).view()
    assert (answered["alert"], answered["alerted"]) == (False, [])
    assert _rows(db, "pulse_alert") == []


# --- bad input ----------------------------------------------------------------------------------------------------


BAD_CHECKINS = [
    # (arguments after `checkin ID`, exit code, start of the first Error line)
    (["--by", "{host_manager}", "--goal", "999=10"], 1, "Error: 1 goal(s) are not goals of assignment"),
    (["--by", "{host_manager}", "--goal", "{other_goal}=10"], 1, "Error: 1 goal(s) are not goals of assignment"),
    (["--by", "{host_manager}", "--goal", "{goal}=101"], 2, "Error: --goal '{goal}=101': progress is a percentage"),
    (["--by", "{host_manager}", "--goal", "{goal}=-1"], 2, "Error: --goal '{goal}=-1': progress is a percentage"),
    (["--by", "{host_manager}", "--goal", "{goal}"], 2, "Error: --goal '{goal}': give GOAL_ID=PERCENT"),
    (["--by", "{host_manager}", "--goal", "{goal}=5", "--goal", "{goal}=6"], 2, "Error: --goal {goal}: given more"),
    (["--by", "{sponsor}", "--goal", "{goal}=10"], 1, "Error: {sponsor} may not check in on assignment"),
    (["--by", "nobody@example.com"], 1, "Error: --by: no person with email nobody@example.com"),
    (["--by", "not-an-email"], 2, "Error: --by: 'not-an-email' is not an email address"),
]
BAD_PULSES = [
    (["--by", "{assignee}", "--expectancy", "0", "--instrumentality", "3", "--valence", "3"], 2,
     "Error: --expectancy 0: answer from 1"),
    (["--by", "{assignee}", "--expectancy", "3", "--instrumentality", "6", "--valence", "3"], 2,
     "Error: --instrumentality 6: answer from 1"),
    (["--by", "{assignee}", "--expectancy", "3", "--instrumentality", "3", "--valence", "high"], 2,
     "Error: Invalid value for '--valence'"),
    (["--by", "{host_manager}", "--expectancy", "3", "--instrumentality", "3", "--valence", "3"], 1,
     "Error: {host_manager} may not answer the expectancy pulse"),
]


@pytest.mark.parametrize(("command", "args", "code", "error"),
                         [("checkin", *case) for case in BAD_CHECKINS] + [("pulse", *case) for case in BAD_PULSES])
def test_bad_checkin_or_pulse_is_refused_with_its_exit_code_and_changes_nothing(
        db: Engine, db_url: str, on_db: Sojourn, command: str, args: list[str], code: int, error: str) -> None:
    """Each bad check-in or pulse prints one clear Error line, exits 1 (refused) or 2 (malformed), writes nothing."""
    cast = _cast(db, {})
    assignment_id = _in_alignment(db, cast, CREATED)
    other_id = _in_alignment(db, _cast(db, {}, prefix="other."), CREATED)
    names = {**cast, "goal": _goal_id(db, assignment_id, CREATED), "other_goal": _goal_id(db, other_id, CREATED)}
    before = snapshot(db_url)
    out = on_db(command, str(assignment_id), *(a.format(**names) for a in args))
    assert out.code == code, out.stderr
    assert out.stderr.startswith(error.format(**names)), out.stderr
    assert "Traceback" not in out.stderr
    assert out.stdout == ""
    assert snapshot(db_url) == before


def test_checkin_on_a_cancelled_assignment_is_refused_and_changes_nothing(db: Engine, db_url: str,
                                                                          on_db: Sojourn) -> None:
    """Once cancelled, an assignment takes no check-in: exit 1, nothing written."""
    cast = _cast(db, {})
    assignment_id = _in_alignment(db, cast, CREATED)
    advance.advance(db, assignment_id, to="cancelled", reason="returned early", actor="admin", now=CREATED)
    before = snapshot(db_url)
    out = on_db("checkin", str(assignment_id), "--by", cast["assignee"])
    assert (out.code, out.stderr.splitlines()[0]) == (
        1, f"Error: assignment {assignment_id} is cancelled; check-ins and pulses are closed")
    assert snapshot(db_url) == before


def test_record_checkin_refuses_percentages_outside_0_to_100_when_called_directly(db: Engine) -> None:
    """The use case checks percentages itself, for callers other than the command line."""
    cast = _cast(db, {})
    assignment_id = _in_alignment(db, cast, CREATED)
    with pytest.raises(SojournError, match="from 0 to 100") as refused:
        checkins.record_checkin(db, assignment_id, by=cast["assignee"], progress={1: 150}, note=None, feedback=None,
                                actor="admin", now=CREATED)
    assert refused.value.exit_code == 2


# --- feedback both ways, the list of check-ins, and the immersion days ----------------------------------------------

AFTER_IMMERSION = datetime(2027, 4, 10, 12, 0, tzinfo=UTC)  # the start is 2027-01-01: 90 days ran until 2027-03-31
LINK_SECRET = "a link signing secret of at least 32 bytes"
SLACK_MARKUP = "<!channel> see <http://evil.example/x|this> & more"


def test_host_manager_feedback_reaches_the_assignee_with_an_answer_and_home_with_the_progress(db: Engine) -> None:
    """A host manager's feedback writes checkin_feedback at once: to the assignee, who may answer with a check-in of
    their own, and to the sending manager with each goal's progress; the host manager is not told their own."""
    cast = _cast(db, {})
    assignment_id = _in_alignment(db, cast, CREATED)
    goal_id = _goal_id(db, assignment_id, CREATED)
    recorded = checkins.record_checkin(db, assignment_id, by=cast["host_manager"], progress={goal_id: 35},
                                       note="first quarter review", feedback="Ana owns the DACH forecast now",
                                       actor="admin", now=AFTER_IMMERSION).view()
    rows = {r.role: r for r in _rows(db, "checkin_feedback")}
    assert set(rows) == {"assignee", "sending_manager"}
    assert recorded["told"] == [cast["assignee"], cast["sending_manager"]]
    for role, row in rows.items():
        assert (row.key, row.recipient, row.deliver_at) == (
            f"checkin_feedback/{recorded['id']}/{role}", cast[role], AFTER_IMMERSION)
        assert row.subject == f"Assignment #{assignment_id} (Assignee): feedback from the host_manager"
        assert "Feedback: Ana owns the DACH forecast now" in row.body
        assert f"- goal {goal_id}, Lead the regional team: 35%" in row.body
        assert "Note: first quarter review" in row.body
    assert "with feedback for you." in rows["assignee"].body
    assert rows["assignee"].body.endswith(f"Answer: sojourn checkin {assignment_id} --by YOUR_EMAIL --goal "
                                          "GOAL_ID=PERCENT ... [--feedback TEXT]")
    assert "sojourn checkin" not in rows["sending_manager"].body


def test_assignee_feedback_reaches_the_host_manager_and_a_checkin_without_feedback_tells_nobody(db: Engine) -> None:
    """Feedback runs the other way too; a check-in with progress only writes no notice (checkin_due carries it)."""
    cast = _cast(db, {})
    assignment_id = _in_alignment(db, cast, CREATED)
    goal_id = _goal_id(db, assignment_id, CREATED)
    quiet = checkins.record_checkin(db, assignment_id, by=cast["assignee"], progress={goal_id: 20}, note="busy",
                                    feedback=None, actor="admin", now=AFTER_IMMERSION).view()
    assert (quiet["told"], _rows(db, "checkin_feedback")) == ([], [])
    checkins.record_checkin(db, assignment_id, by=cast["assignee"], progress={goal_id: 25}, note=None,
                            feedback="my host manager makes time for me", actor="admin", now=AFTER_IMMERSION)
    assert {(r.role, r.recipient) for r in _rows(db, "checkin_feedback")} == {
        ("host_manager", cast["host_manager"]), ("sending_manager", cast["sending_manager"])}


def test_feedback_goes_out_once_through_the_outbox_with_its_link_and_escaped(
        db: Engine, on_db: Sojourn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With [serve] configured the daemon delivers each checkin_feedback once: the assignee's with a check-in link
    in place of the command, home's with its page; Slack markup in the feedback reaches the webhook as text."""
    cast = _cast(db, {})
    assignment_id = _in_alignment(db, cast, CREATED)
    goal_id = _goal_id(db, assignment_id, CREATED)
    checkins.record_checkin(db, assignment_id, by=cast["host_manager"], progress={goal_id: 35}, note=None,
                            feedback=SLACK_MARKUP, actor="admin", now=AFTER_IMMERSION)
    monkeypatch.setenv("SOJOURN_TEST_LINK_SECRET", LINK_SECRET)
    with Receiver(delay=0) as receiver:
        config = tmp_path / "sojourn.toml"
        config.write_text(f'[notifiers.webhook]\nurl = "{receiver.url}"\n[serve]\n'
                          'public_url = "https://sojourn.example.com"\nsecret_env = "SOJOURN_TEST_LINK_SECRET"\n',
                          encoding="utf-8")
        with freeze_time(AFTER_IMMERSION + timedelta(minutes=1)):
            for _ in range(2):
                outcome = on_db("--config", str(config), "daemon", "--once")
                assert outcome.code == 0, outcome.stderr
        posted = [json.loads(body) for body in receiver.bodies()]
    feedback = {p["role"]: p for p in posted if p["kind"] == "checkin_feedback"}
    assert sorted(p["role"] for p in posted if p["kind"] == "checkin_feedback") == ["assignee", "sending_manager"]
    assert {r.status for r in _rows(db, "checkin_feedback")} == {"sent"}
    assert feedback["assignee"]["action_url"].startswith("https://sojourn.example.com/a/checkin/")
    assert f"Answer: {feedback['assignee']['action_url']}" in feedback["assignee"]["text"]
    assert "sojourn checkin" not in feedback["assignee"]["text"]
    assert feedback["sending_manager"]["action_url"].startswith("https://sojourn.example.com/me/me/")
    for payload in feedback.values():
        assert "&lt;!channel&gt; see &lt;http://evil.example/x|this&gt; &amp; more" in payload["text"]
        assert "<!channel>" not in payload["text"]


def test_checkin_list_shows_both_sides_newest_first_as_text_and_json(db: Engine, on_db: Sojourn) -> None:
    """`checkin list ID` shows every check-in of the plan, the host manager's and the assignee's, newest first, with
    progress per goal, note and feedback; --json gives the same as one document; another plan's are not shown."""
    cast = _cast(db, {})
    assignment_id = _in_alignment(db, cast, CREATED)
    other_id = _in_alignment(db, _cast(db, {}, prefix="other."), CREATED)
    goal_id = _goal_id(db, assignment_id, CREATED)
    settling = checkins.record_checkin(db, assignment_id, by=cast["assignee"], progress={}, note="school found",
                                       feedback=None, actor="admin", now=CREATED + timedelta(days=20)).view()
    host = checkins.record_checkin(db, assignment_id, by=cast["host_manager"], progress={goal_id: 35}, note=None,
                                   feedback="owns the forecast\nnow", actor="admin", now=AFTER_IMMERSION).view()
    own = checkins.record_checkin(db, assignment_id, by=cast["assignee"], progress={goal_id: 40}, note="hiring",
                                  feedback="clear priorities", actor="admin",
                                  now=AFTER_IMMERSION + timedelta(days=1)).view()
    checkins.record_checkin(db, other_id, by=f"other.{cast['assignee']}", progress={}, note="elsewhere",
                            feedback=None, actor="admin", now=CREATED + timedelta(days=20))
    listed = json.loads(on_db("checkin", "list", str(assignment_id), "--json").stdout)
    assert [c["id"] for c in listed] == [own["id"], host["id"], settling["id"]]
    assert [(c["role"], c["by"], c["immersion"]) for c in listed] == [
        ("assignee", cast["assignee"], False), ("host_manager", cast["host_manager"], False),
        ("assignee", cast["assignee"], True)]
    assert listed[1] == {"id": host["id"], "assignment_id": assignment_id, "by": cast["host_manager"],
                         "name": "Host Manager", "role": "host_manager", "at": "2027-04-10T12:00:00+00:00",
                         "immersion": False, "note": None, "feedback": "owns the forecast\nnow",
                         "progress": [{"goal_id": goal_id, "title": "Lead the regional team", "percent": 35}]}
    text = on_db("checkin", "list", str(assignment_id))
    assert text.code == 0, text.stderr
    assert text.stdout.splitlines() == [
        f"check-in {own['id']} by the assignee {cast['assignee']} at 2027-04-11T12:00:00+00:00",
        f"  goal {goal_id} Lead the regional team: 40%", "  note: hiring", "  feedback: clear priorities",
        f"check-in {host['id']} by the host_manager {cast['host_manager']} at 2027-04-10T12:00:00+00:00",
        f"  goal {goal_id} Lead the regional team: 35%", "  feedback: owns the forecast\\nnow",
        f"check-in {settling['id']} by the assignee {cast['assignee']} at 2027-01-24T20:00:00+00:00 "
        "(immersion days)", "  note: school found"]


def test_checkin_list_of_an_unknown_assignment_is_refused(db: Engine, on_db: Sojourn) -> None:
    """`checkin list` of no assignment exits 1 with one Error line; recording still takes `checkin ID --by`."""
    out = on_db("checkin", "list", "999")
    assert (out.code, out.stdout) == (1, "")
    assert out.stderr.startswith("Error: ")
    assert "999" in out.stderr.splitlines()[0]
    assert "Traceback" not in out.stderr


def test_the_person_page_shows_the_other_sides_feedback_escaped(db: Engine) -> None:
    """The assignee's page lists the plan's check-ins newest first with the host manager's feedback and progress;
    the HTML page shows markup in the feedback as text."""
    cast = _cast(db, {})
    assignment_id = _in_alignment(db, cast, CREATED)
    goal_id = _goal_id(db, assignment_id, CREATED)
    checkins.record_checkin(db, assignment_id, by=cast["assignee"], progress={}, note="flat found", feedback=None,
                            actor="admin", now=CREATED + timedelta(days=20))
    checkins.record_checkin(db, assignment_id, by=cast["host_manager"], progress={goal_id: 35}, note=None,
                            feedback="<b>great</b> start", actor="admin", now=AFTER_IMMERSION)
    token = SIGNER.mint(cast["assignee"], LinkAction.MY_PAGE, {}, now=AFTER_IMMERSION)
    page = actions.person_page(db, SIGNER, str(LinkAction.MY_PAGE), token, now=AFTER_IMMERSION)
    (plan_checkins,) = page.checkins
    assert plan_checkins["assignment_id"] == assignment_id
    assert [(c["role"], c["feedback"], c["note"]) for c in plan_checkins["checkins"]] == [
        ("host_manager", "<b>great</b> start", None), ("assignee", None, "flat found")]
    assert plan_checkins["checkins"][0]["progress"] == [
        {"goal_id": goal_id, "title": "Lead the regional team", "percent": 35}]
    html = create_app(db, SIGNER, clock=lambda: AFTER_IMMERSION).test_client().get(f"/me/me/{token}")
    body = html.get_data(as_text=True)
    assert html.status_code == 200
    assert "Feedback: &lt;b&gt;great&lt;/b&gt; start" in body
    assert "Lead the regional team: 35%" in body
    assert "Settling in: flat found" in body
    assert body.index("great") < body.index("flat found")


def test_a_checkin_during_the_immersion_days_needs_no_percentages_and_one_after_them_does(
        db: Engine, db_url: str, on_db: Sojourn) -> None:
    """On the last immersion day a note is enough; from the day after, a check-in without progress exits 2, names
    the goals and writes nothing, and one with progress is taken as before."""
    cast = _cast(db, {"assignee": "America/Sao_Paulo"})
    assignment_id = _in_alignment(db, cast, CREATED)
    goal_id = _goal_id(db, assignment_id, CREATED)
    last_day = _local(date(2027, 3, 31), 23, "America/Sao_Paulo")  # already 1 April in UTC
    with freeze_time(last_day):
        settling = on_db("checkin", str(assignment_id), "--by", cast["assignee"], "--note", "school found", "--json")
    assert settling.code == 0, settling.stderr
    assert (json.loads(settling.stdout)["progress"], json.loads(settling.stdout)["immersion"]) == ([], True)
    with freeze_time(_local(date(2027, 4, 1), 9, "America/Sao_Paulo")):
        before = snapshot(db_url)
        refused = on_db("checkin", str(assignment_id), "--by", cast["assignee"], "--note", "busy")
        assert refused.code == 2
        assert refused.stderr.splitlines() == [
            "Error: give each goal's progress with --goal GOAL_ID=PERCENT; the immersion days ended on 2027-03-31",
            f"Error: goal {goal_id}: Lead the regional team",
            "Error: during the immersion days a note on how the assignee and family settle in was enough"]
        assert snapshot(db_url) == before
        taken = on_db("checkin", str(assignment_id), "--by", cast["assignee"], "--goal", f"{goal_id}=10")
    assert taken.code == 0, taken.stderr


def test_checkin_due_asks_how_the_family_settles_in_during_immersion_and_per_goal_after_it(db: Engine) -> None:
    """The checkin_due of a period that begins in the immersion days asks for a note on settling in and says from
    when progress per goal is asked; the first period after them asks for a check-in on every goal."""
    cast = _cast(db, ZONES["sao_paulo_to_berlin"])
    with freeze_time(CREATED) as clock:
        assignment_id = _in_alignment(db, cast, CREATED)
        _sweep_until(db, clock, _local(date(2027, 4, 5), 0, "America/Sao_Paulo"))
    due = {(_period(r), r.role): r.body for r in _rows(db, "checkin_due")}
    during, after = due[(date(2027, 3, 4), "assignee")], due[(date(2027, 4, 4), "assignee")]
    assert "The immersion days run until 2027-03-31: tell in a note how the assignee and family are settling in; " \
           "no progress per goal is needed yet." in during
    assert "Progress on every goal is asked from the first check-in on or after 2027-04-01." in during
    assert f"Record it: sojourn checkin {assignment_id} --by YOUR_EMAIL --note TEXT [--feedback TEXT]" in during
    assert "A check-in on every goal" not in during
    assert "A check-in on every goal by the assignee or the host_manager" in after
    assert "immersion" not in after
    assert f"Record it: sojourn checkin {assignment_id} --by YOUR_EMAIL --goal GOAL_ID=PERCENT" in after
    assert "immersion" in due[(date(2027, 3, 4), "sending_manager")]


def test_the_checkin_form_asks_about_settling_in_during_immersion_and_for_progress_after(db: Engine) -> None:
    """The check-in page says the same as checkin_due: a note on settling in while the immersion days run, with the
    percentages optional; progress per goal after them, and a form without any is shown again, nothing written."""
    cast = _cast(db, {})
    assignment_id = _in_alignment(db, cast, CREATED)
    goal_id = _goal_id(db, assignment_id, CREATED)

    def form(now: datetime) -> actions.Preview:
        token = SIGNER.mint(cast["assignee"], LinkAction.CHECKIN, {"assignment": assignment_id}, now=now)
        return actions.preview(db, SIGNER, str(LinkAction.CHECKIN), token, now=now)

    during = form(CREATED + timedelta(days=10))
    assert "The immersion days run until 2027-03-31: tell in a note how the assignee and family are settling in; " \
           "no progress per goal is needed yet." in during.lines
    assert {f.name: f.label for f in during.fields}["note"] == "How the assignee and family are settling in"
    assert {f.name: f.label for f in during.fields}[f"goal_{goal_id}"].endswith("(optional)")
    after = form(AFTER_IMMERSION)
    assert not any("immersion" in line for line in after.lines)
    assert {f.name: f.label for f in after.fields}[f"goal_{goal_id}"] == "Lead the regional team: progress in percent"
    token = SIGNER.mint(cast["assignee"], LinkAction.CHECKIN, {"assignment": assignment_id}, now=AFTER_IMMERSION)
    with pytest.raises(actions.FormRejected, match="give each goal's progress"):
        actions.confirm(db, SIGNER, str(LinkAction.CHECKIN), token, {"token": token, "note": "busy"},
                        now=AFTER_IMMERSION)
    assert _rows_of(db, Checkin) == 0
    actions.confirm(db, SIGNER, str(LinkAction.CHECKIN), token, {"token": token, f"goal_{goal_id}": "30"},
                    now=AFTER_IMMERSION)
    assert _rows_of(db, Checkin) == 1


def _rows_of(db: Engine, model: type[Checkin]) -> int:
    with transaction(db) as session:
        return len(session.exec(select(model)).all())
