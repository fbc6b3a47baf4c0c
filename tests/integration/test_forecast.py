"""Forecasts: the replay equals what the real daemon sends, writes nothing, and answers the CLI's questions."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from sqlalchemy import Engine, func
from sqlmodel import select

from engine.delivery.daemon import Daemon
from engine.delivery.dispatch import DeliveryPolicy, Routing
from engine.delivery.leases import DaemonIdentity
from engine.domain.errors import GuardsUnmet
from engine.domain.views import views
from engine.planning.forecast import ForecastOptions, forecast_assignments, forecast_new
from engine.program import advance, assignments, checkins, contacts, plans
from engine.program.tasks import complete_task, list_tasks
from engine.store.db import transaction
from engine.store.models import CadenceState, Outbox, Task
from integration.conftest import Recorder, Sojourn, snapshot
from tests.conftest import CAST

START, END = date(2027, 1, 4), date(2028, 6, 30)
UNTIL = date(2028, 7, 31)
HOUR = 9  # the built-in workflow's local hour
PLAN_ROLES = ("assignee", "sending_manager", "host_manager", "talent", "mobility")
Sent = tuple[str, str, str, datetime]  # key, kind, recipient, instant


def _spec(people: dict[str, str]) -> assignments.AssignmentSpec:
    return assignments.AssignmentSpec(workflow="leadership-development", assignee=people["assignee"], home="BR",
                                      host="DE", start=START, end=END,
                                      stakeholders={r: e for r, e in people.items() if r != "assignee"})


def _local(day: date, role: str) -> datetime:
    """The built-in workflow's local hour on `day` in the time zone of the person holding `role`."""
    return datetime.combine(day, time(HOUR), tzinfo=ZoneInfo(CAST[role][2])).astimezone(UTC)


class People:
    """What the stakeholders do when the forecast's assumptions hold: every task done on its due date at the local
    hour right after its reminder, each cadence contact logged as its contact_due arrives, goals and sign-offs given
    as soon as the plan stage's tasks are done, and the administrator advancing at once (a date guard: at the local
    hour in the assignee's zone on its first day)."""

    def __init__(self, db: Engine, assignment_id: int) -> None:
        self.db, self.assignment_id = db, assignment_id
        self.logged: set[tuple[str, str]] = set()
        self.owner_roles = {email: role for role, (email, _, _) in CAST.items()}

    def task_moments(self, now: datetime) -> list[tuple[datetime, int]]:
        tasks = views(list_tasks(self.db, now=now, assignment_id=self.assignment_id, status="open"))
        return [(_local(date.fromisoformat(t["due_on"]), self.owner_roles[t["owner"]]), t["id"]) for t in tasks]

    def repatriation_moment(self) -> datetime:
        return _local(END - timedelta(days=180), "assignee")  # the built-in not_before guard leaving coaching

    def act(self, received: list[Sent], now: datetime) -> bool:
        acted = self._answer_checkins_and_pulses(received, now)
        for key, kind, _, _ in received:
            _, _, cadence, period, _ = key.split("/") if kind == "contact_due" else ("",) * 5
            if kind == "contact_due" and (cadence, period) not in self.logged:
                self.logged.add((cadence, period))
                partner = "sponsor" if cadence == "sponsor_contact" else "coach"
                contacts.log_contact(self.db, self.assignment_id, kind=cadence, with_email=CAST[partner][0], on=period,
                                     notes=None, actor="people", now=now)
                acted = True
        for moment, task_id in self.task_moments(now):
            if moment <= now:
                complete_task(self.db, task_id, note=None, actor="people", now=now)
                acted = True
        return self._advance(now) or acted

    def _answer_checkins_and_pulses(self, received: list[Sent], now: datetime) -> bool:
        """The assignee checks in on every goal as their checkin_due arrives, and answers a pulse as their pulse_due
        does."""
        acted = False
        for _, kind, recipient, _ in received:
            if recipient != CAST["assignee"][0] or kind not in ("checkin_due", "pulse_due"):
                continue
            if kind == "checkin_due":
                goals = assignments.show_assignment(self.db, self.assignment_id, now=now).view()["goals"]
                checkins.record_checkin(self.db, self.assignment_id, by=recipient,
                                        progress={int(g["id"]): 50 for g in goals}, note=None, feedback=None,
                                        actor="people", now=now)
            else:
                checkins.record_pulse(self.db, self.assignment_id, by=recipient, expectancy=4, instrumentality=4,
                                      valence=4, note=None, actor="people", now=now)
            acted = True
        return acted

    def _advance(self, now: datetime) -> bool:
        shown = assignments.show_assignment(self.db, self.assignment_id, now=now).view()
        open_here = [t for t in shown["tasks"] if t["stage"] == shown["stage"] and t["status"] == "open"]
        if shown["next_stage"] is None or open_here:
            return False
        if shown["stage"] == "coaching" and now < self.repatriation_moment():
            return False
        if shown["stage"] == "plan_agreed":
            plans.add_goal(self.db, self.assignment_id, title="Lead the regional team", measure="engagement",
                           target="75", due=END.isoformat(), actor="people", now=now)
            for role in PLAN_ROLES:
                plans.sign_plan(self.db, self.assignment_id, role=role, by=None, actor="people", now=now)
        try:
            advance.advance(self.db, self.assignment_id, to=None, reason=None, actor="people", now=now)
        except GuardsUnmet:
            return False
        return self._advance(now) or True


def _next_daemon_instant(db: Engine) -> datetime | None:
    """When the daemon next has something to plan or deliver, read from the rows it keeps."""
    with transaction(db) as session:
        found = [session.exec(select(func.min(Task.next_reminder_at)).where(Task.status == "open")).one(),
                 session.exec(select(func.min(CadenceState.next_check_at))).one(),
                 session.exec(select(func.min(Outbox.next_attempt_at)).where(Outbox.status == "pending")).one()]
    return min((f.astimezone(UTC) for f in found if f is not None), default=None)


def _run_daemon_through(db: Engine, people: dict[str, str]) -> list[Sent]:
    """Create the assignment on its start date and move a frozen clock through every instant that matters,
    sweeping with the real daemon and letting people act after each sweep."""
    created = _local(START, "assignee")
    recorder = Recorder()
    sent: list[Sent] = []
    stop_at = datetime.combine(UNTIL + timedelta(days=1), time(), tzinfo=UTC)
    with freeze_time(created) as clock:
        assignment_id = int(assignments.create_assignment(db, _spec(people), actor="admin", now=created).id)
        crowd = People(db, assignment_id)
        daemon = Daemon(db, [recorder], routing=Routing({}), policy=DeliveryPolicy(), interval_seconds=60,
                        identity=DaemonIdentity("test-host", 1, "t1"))
        daemon.start()
        now = created
        while True:
            while True:  # the daemon sweeps every minute; people act between sweeps at the same instant
                daemon.heartbeat()
                before = len(recorder.sent)
                daemon.sweep()
                received = [(n.key, n.kind, n.recipient, now) for n in recorder.sent[before:]]
                sent += received
                if not crowd.act(received, now) and not received:
                    break
            candidates = [_next_daemon_instant(db), *(m for m, _ in crowd.task_moments(now)),
                          crowd.repatriation_moment()]
            following = min((c for c in candidates if c is not None and c > now), default=None)
            if following is None or following >= stop_at:
                break
            now = following
            clock.move_to(now)
        daemon.stop()
    return sent


def test_forecast_equals_notice_for_notice_what_the_daemon_sends_when_time_moves_through_the_same_dates(
        db: Engine, people: dict[str, str]) -> None:
    """The forecast of a new assignment from a fixed start date lists exactly the notices the real daemon sends."""
    forecast = forecast_new(db, _spec(people), options=ForecastOptions(until=UNTIL))
    predicted = [(n.key, n.kind, n.recipient, n.at) for n in forecast.notices]
    sent = _run_daemon_through(db, people)
    assert sorted(predicted) == sorted(sent)
    kinds = Counter(kind for _, kind, _, _ in sent)
    assert set(kinds) == {"stage_changed", "task_due_soon", "task_due", "contact_due", "checkin_due", "pulse_due"}
    assert [e.stage for e in forecast.stages[1]] == ["interviews", "plan_agreed", "orientation", "manager_briefing",
                                                    "alignment_meetings", "coaching", "repatriation", "completed"]


# --- what a forecast lists, and that it writes nothing -------------------------------------------------------------


def _created_in_interviews(db: Engine, people: dict[str, str], at: datetime) -> int:
    return int(assignments.create_assignment(db, _spec(people), actor="admin", now=at).id)


def test_forecast_writes_nothing_when_run_on_an_existing_assignment(db_url: str, db: Engine,
                                                                     people: dict[str, str]) -> None:
    """Forecasting and charting read the database and leave every row of every table as it was."""
    at = _local(START, "assignee")
    assignment_id = _created_in_interviews(db, people, at)
    before = snapshot(db_url)
    forecast = forecast_assignments(db, [assignment_id], now=at + timedelta(days=1))
    assert forecast.notices
    assert snapshot(db_url) == before


def test_forecast_of_existing_assignment_leaves_out_notices_already_sent_when_daemon_swept(
        db: Engine, people: dict[str, str]) -> None:
    """Stage-change notices the daemon delivered are not forecast again; those still queued are, at once."""
    at = _local(START, "assignee")
    assignment_id = _created_in_interviews(db, people, at)
    queued = forecast_assignments(db, [assignment_id], now=at, options=ForecastOptions(until=START))
    assert {n.key for n in queued.notices} == {f"stage_changed/1/{role}" for role in ("assignee", "coach", "mobility")}
    assert {n.at for n in queued.notices} == {at}
    daemon = Daemon(db, [Recorder()], routing=Routing({}), policy=DeliveryPolicy(), interval_seconds=60,
                    identity=DaemonIdentity("test-host", 1, "t1"), clock=lambda: at)
    daemon.start()
    daemon.sweep()
    daemon.stop()
    later = forecast_assignments(db, [assignment_id], now=at,
                                 options=ForecastOptions(until=START + timedelta(days=20)))
    assert [n.kind for n in later.notices][:2] == ["task_due_soon", "task_due_soon"]
    assert not [n for n in later.notices if n.key.startswith("stage_changed/1/")]


def test_forecast_lists_escalations_to_escalate_to_and_manager_when_tasks_are_done_late(
        db: Engine, people: dict[str, str]) -> None:
    """With --late 4 each interview task is overdue and escalated once to mobility and the coach's manager (talent),
    at 09:00 in the coach's zone; on time, nothing is escalated."""
    until = ForecastOptions(until=START + timedelta(days=30), late_days=4)
    late = forecast_new(db, _spec(people), options=until)
    escalations = [n for n in late.notices if n.kind == "escalation" and n.task_id in (1, 2)]
    assert sorted(n.key for n in escalations) == sorted(f"escalation/{t}/1/{r}" for t in (1, 2)
                                                         for r in ("mobility", "talent"))
    due = date(2027, 1, 18)  # interviews are due 14 days after the start
    assert {n.at for n in escalations} == {_local(due + timedelta(days=4), "coach")}
    on_time = forecast_new(db, _spec(people), options=ForecastOptions(until=START + timedelta(days=30)))
    assert not [n for n in on_time.notices if n.kind in ("escalation", "task_overdue")]


def test_forecast_lists_contact_missed_when_contacts_are_assumed_missed(db: Engine, people: dict[str, str]) -> None:
    """With missed contacts, each sponsor period ends in contact_missed to sponsor, assignee and mobility."""
    options = ForecastOptions(until=date(2027, 4, 30), missed_contacts=True)
    forecast = forecast_new(db, _spec(people), options=options)
    missed = [n for n in forecast.notices if n.kind == "contact_missed"]
    assert {n.role for n in missed} == {"sponsor", "assignee", "mobility"}
    orientation = next(e for e in forecast.stages[1] if e.stage == "orientation").at.astimezone(
        ZoneInfo(CAST["assignee"][2])).date()
    first = orientation.isoformat()
    assert {n.key for n in missed if first in n.key} == {
        f"contact_missed/1/sponsor_contact/{first}/{role}" for role in ("sponsor", "assignee", "mobility")}


# --- the command line ----------------------------------------------------------------------------------------------


def test_forecast_json_lists_notices_with_local_times_in_each_recipients_zone(on_db: Sojourn,
                                                                             people: dict[str, str]) -> None:
    """`forecast --workflow ... --json` lists notices; each local time is the instant in its recipient's zone."""
    args = ["forecast", "--workflow", "leadership-development", "--start", "2027-01-04", "--end", "2028-06-30",
            "--assignee", people["assignee"], "--until", "2027-02-28", "--json"]
    args += [f"--stakeholder={r}={e}" for r, e in people.items() if r != "assignee"]
    outcome = on_db(*args)
    assert outcome.code == 0, outcome.stderr
    notices = json.loads(outcome.stdout)
    assert {"at", "local_time", "recipient", "role", "kind", "key", "task_id"} <= set(notices[0])
    for notice in notices:
        zone = ZoneInfo(CAST[notice["role"]][2])
        assert datetime.fromisoformat(notice["local_time"]) == datetime.fromisoformat(notice["at"])
        assert datetime.fromisoformat(notice["local_time"]).utcoffset() == \
            datetime.fromisoformat(notice["at"]).astimezone(zone).utcoffset()
    reminders = [n for n in notices if n["kind"] in ("task_due_soon", "task_due")]
    assert reminders
    assert {datetime.fromisoformat(n["local_time"]).hour for n in reminders} == {HOUR}


def test_forecast_text_names_its_assumptions_when_run_for_an_assignment(on_db: Sojourn, db: Engine,
                                                                       people: dict[str, str]) -> None:
    """The human table ends with the assumptions, and a placeholder forecast needs no people at all."""
    outcome = on_db("forecast", "--workflow", "leadership-development", "--start", "2027-01-04", "--end",
                    "2027-12-31", "--until", "2027-01-31")
    assert outcome.code == 0, outcome.stderr
    assert "coach@forecast.invalid" in outcome.stdout
    assert "assumed:" in outcome.stdout
    assert "every task is done on its due date" in outcome.stdout


@pytest.mark.parametrize(("args", "code", "message"), [
    (["forecast"], 2, "give assignment IDs, or --workflow"),
    (["forecast", "1", "--workflow", "leadership-development"], 2, "not both"),
    (["forecast", "99"], 1, "no assignment 99"),
    (["forecast", "--workflow", "nope", "--start", "2027-01-04", "--end", "2027-12-31"], 1, "no workflow nope"),
    (["forecast", "--workflow", "leadership-development", "--start", "2027-01-04", "--end", "2027-12-31",
      "--until", "someday"], 2, "--until: 'someday' is not a date"),
    (["forecast", "--workflow", "leadership-development", "--start", "2027-01-04", "--end", "2027-12-31",
      "--assignee", "who@example.com"], 1, "no person with email who@example.com"),
    (["forecast", "--workflow", "leadership-development", "--start", "2027-01-04", "--end", "2027-12-31",
      "--stakeholder", "boss=ana.lima@example.com"], 2, "unknown role 'boss'"),
    (["forecast", "--workflow", "leadership-development", "--start", "2027-01-04", "--end", "2026-12-31"], 2,
     "must be after start"),
])
def test_forecast_refuses_with_error_line_when_asked_wrongly(on_db: Sojourn, args: list[str], code: int,
                                                           message: str) -> None:
    """Bad or impossible forecast requests are `Error:` lines with exit 1 or 2, never a traceback."""
    outcome = on_db(*args)
    assert outcome.code == code
    assert outcome.stderr.startswith("Error:")
    assert message in outcome.stderr
    assert "Traceback" not in outcome.stderr


@pytest.mark.parametrize(("args", "messages"), [
    (["forecast", "--workflow", "leadership-development", "--stakeholder", "coach", "--stakeholder", "=a@b.example"],
     ["give assignment IDs, or --workflow", "--stakeholder 'coach'", "--stakeholder '=a@b.example'"]),
    (["forecast", "1", "--workflow", "leadership-development", "--stakeholder", "coach"],
     ["not both", "--stakeholder 'coach'"]),
])
def test_forecast_lists_every_problem_of_how_it_is_asked_for_at_once(on_db: Sojourn, args: list[str],
                                                                    messages: list[str]) -> None:
    """Missing options, IDs given with --workflow and each malformed --stakeholder come in one error, exit 2."""
    outcome = on_db(*args)
    assert outcome.code == 2
    assert outcome.stderr.startswith("Error:")
    assert all(message in outcome.stderr for message in messages), outcome.stderr
