"""Forecasts: what the daemon will send, replayed on a virtual clock with its own planning code in a scratch database.

The assignments are copied (or, for one that does not exist yet, created) in an in-memory SQLite database with the
real schema. A virtual clock then steps through every instant that matters: each task's `next_reminder_at`, each
cadence's `next_check_at`, each queued notice's delivery instant, the moment each task is done and each date a
guard waits for. At every instant it runs what really runs: `planner.plan`, then the gathering of digests, then it
takes the queued notices a dispatcher would send (a digest as one notice, listing none of the notices it gathers),
then the people act through the real use cases (`complete_tasks` for the tasks done at that instant, `add_goal`,
`sign_plan_by_holders`, `advance`). The notices taken are the forecast. The real database is
only read. `_Replay` says why logged contacts are left out.

Planning runs without calendar attachments (`attach_calendars=False`): a forecast lists no attachment, and an
attachment is made from a notice already decided, so which notices go out, and when, is the same without it.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import col

from engine.domain import inputs
from engine.domain.definition import Transition, WorkflowDefinition
from engine.domain.errors import BadInput, SojournError
from engine.domain.escape import mermaid_label
from engine.domain.guards import GoalFacts, earliest_day
from engine.domain.notices import MISSED_KINDS
from engine.domain.schedule import local_instant
from engine.domain.tasks import TaskStatus
from engine.domain.views import Result
from engine.planning import planner
from engine.program import advance, assignments, people, plans, workflows
from engine.program.digests import gather_digests
from engine.program.records import AssignmentRecord, load_record, load_records
from engine.program.tasks import complete_tasks
from engine.program.transactions import use_case_transaction
from engine.store import scratch as scratch_store
from engine.store.db import transaction
from engine.store.models import Assignment, pk
from engine.store.queries import stage_changes_of

ACTOR = "forecast"
MAX_INSTANTS = 200_000  # a replay never needs this many; more means a bug would loop forever
# How far past the latest end date (and --late) a replay may run: a task falls due at most 3650 days from its anchor
# and its escalations follow within weeks, so only a cadence that never stops (one running in a final stage) or a
# chain of stages each waiting years goes further; the replay then stops with an error instead of running for ever.
HORIZON_DAYS = 3650 + 366
MAX_LATE_DAYS = 3650

ASSUMPTIONS = (
    "every task is done on its due date, at the workflow's local hour in its owner's time zone, right after its "
    "task_due reminder; with --late N, N days later; a task already past that moment is done at once",
    "an assignment moves to its next stage as soon as its guards allow: at once when its stage's tasks are done, "
    "or, for a date guard (not_before), at the local hour in the assignee's time zone on the first day it passes",
    "guards that need people's input are met when the stage's tasks are done: a SMART goal is added and every "
    "sign-off given then",
    "each cadence contact, check-in and pulse is held and recorded on the first day of its period, as its "
    "contact_due, checkin_due or pulse_due goes out; with --missed-contacts none is, which shows the "
    "contact_missed and checkin_missed notices",
    "nothing else changes: no plan changes, cancellations, new people or new workflow versions",
    "ids of tasks and stage changes that do not exist yet are provisional, and so are the keys that contain them",
)


@dataclass(frozen=True)
class ForecastNotice(scratch_store.TakenNotice, Result):
    """One notice the daemon would send: the notice taken from the queue, when, and the recipient's time zone."""

    at: datetime
    tz: str

    @property
    def local_time(self) -> datetime:
        """`at` on the recipient's wall clock."""
        return self.at.astimezone(ZoneInfo(self.tz))

    def view(self) -> dict[str, Any]:
        # the local time is derived, and the JSON lists the instants first
        return {"at": self.at.isoformat(), "local_time": self.local_time.isoformat(),
                "tz": self.tz, "recipient": self.recipient, "role": self.role, "kind": self.kind, "key": self.key,
                "assignment_id": self.assignment_id, "task_id": self.task_id, "subject": self.subject}


@dataclass(frozen=True)
class StageEntry:
    """An assignment entering a stage: `planned` entries lie in the forecast, the others in the history."""

    stage: str
    title: str
    at: datetime
    planned: bool


@dataclass(frozen=True)
class TaskDue:
    key: str
    title: str
    stage: str
    due_on: date
    status: str  # as the replay leaves it: done, open (past the forecast's end) or cancelled
    planned: bool  # created by the replay, not yet in the real database
    done_already: bool  # done in the real database before the forecast began


@dataclass
class Forecast:
    notices: list[ForecastNotice] = field(default_factory=list)
    stages: dict[int, list[StageEntry]] = field(default_factory=dict)  # assignment id -> entries, oldest first
    tasks: dict[int, list[TaskDue]] = field(default_factory=dict)  # assignment id -> tasks, by id


@dataclass(frozen=True)
class ForecastOptions:
    until: date | None = None  # last day replayed (UTC); None: until nothing more would be sent
    late_days: int = 0  # tasks are done this many days after their due date
    missed_contacts: bool = False  # no cadence contact is ever logged

    def __post_init__(self) -> None:
        if not 0 <= self.late_days <= MAX_LATE_DAYS:
            raise BadInput(f"--late: {self.late_days} must be a whole number of days from 0 to {MAX_LATE_DAYS}")

    @property
    def stop_at(self) -> datetime | None:
        """The first instant not replayed."""
        if self.until is None:
            return None
        return datetime.combine(self.until + timedelta(days=1), time(), tzinfo=UTC)


@dataclass(frozen=True)
class Hypothetical:
    """An assignment that does not exist yet, as `forecast --workflow` describes it; a role left out, or the
    assignee, is played by a placeholder."""

    workflow: str | None = None
    start: str | None = None
    end: str | None = None
    assignee: str | None = None
    stakeholders: tuple[str, ...] = ()  # ROLE=EMAIL values
    home: str = "XX"
    host: str = "XX"

    def spec(self) -> assignments.AssignmentSpec:
        """The assignment to create; every option missing or malformed is reported at once."""
        problems = inputs.Problems()
        if not (self.workflow and self.start and self.end):
            problems.check(_refuse, "give assignment IDs, or --workflow NAME --start DATE --end DATE")
        pairs = self.stakeholder_pairs(problems)
        problems.raise_if_any()
        assert self.workflow
        assert self.start
        assert self.end
        return assignments.AssignmentSpec(self.workflow, self.assignee or "", self.home, self.host, self.start,
                                          self.end, pairs)

    def stakeholder_pairs(self, problems: inputs.Problems) -> dict[str, str]:
        """Role -> email of each --stakeholder; each malformed one is kept in `problems`."""
        return dict(pair for value in self.stakeholders
                    if (pair := problems.check(inputs.stakeholder_pair, value)) is not None)


def _refuse(message: str) -> None:
    raise BadInput(message)


# --- entry points ------------------------------------------------------------------------------------------------


def forecast(db: Engine, assignment_ids: Iterable[int], hypothetical: Hypothetical, *, now: datetime,
             options: ForecastOptions = ForecastOptions(),
             progress: Callable[[int, int], None] | None = None) -> Forecast:
    """`forecast`: of existing assignments, or of one that does not exist yet, never both in one replay; every
    problem with how they are asked for is reported at once."""
    ids = tuple(assignment_ids)
    problems = inputs.Problems()
    if ids and hypothetical.workflow:
        problems.check(_refuse, "give assignment IDs or --workflow, not both")
        hypothetical.stakeholder_pairs(problems)
    spec = None if ids else problems.check(hypothetical.spec)
    problems.raise_if_any()
    if spec is None:
        return forecast_assignments(db, ids, now=now, options=options, progress=progress)
    return forecast_new(db, spec, options=options, progress=progress)


def forecast_assignments(db: Engine, assignment_ids: Iterable[int], *, now: datetime,
                         options: ForecastOptions = ForecastOptions(),
                         progress: Callable[[int, int], None] | None = None) -> Forecast:
    """What the daemon would send about existing assignments from `now` on; reads `db`, writes nothing to it.

    `progress(done, total)` is told the days replayed so far out of the days to the horizon.
    """
    ids = sorted(set(assignment_ids))
    scratch = scratch_store.create_scratch_database()
    try:
        with use_case_transaction(db) as source:
            for assignment_id in ids:
                load_record(source, assignment_id)  # NotFound for an unknown id, before any work
            with transaction(scratch) as target:
                scratch_store.copy_assignments(source, target, ids)
        already = _existing_rows(scratch)
        replay = _Replay(scratch, options, progress)
        return replay.run(ids, now, already)
    finally:
        scratch.dispose()


def forecast_after(db: Engine, assignment_ids: Iterable[int], change: Callable[[Engine], object], *, now: datetime,
                   options: ForecastOptions = ForecastOptions(), workflow: str | None = None) -> Forecast:
    """What the daemon would send about existing assignments from `now` on if `change` were made to them first.

    `change` runs on the scratch copy, which also holds every installed version of `workflow`; `db` is only read.
    """
    ids = sorted(set(assignment_ids))
    scratch = scratch_store.create_scratch_database()
    try:
        with use_case_transaction(db) as source, transaction(scratch) as target:
            scratch_store.copy_assignments(source, target, ids)
            if workflow is not None:
                scratch_store.copy_workflow_versions(source, target, workflow)
        already = _existing_rows(scratch)
        with _marked_logs():
            change(scratch)
        return _Replay(scratch, options).run(ids, now, already)
    finally:
        scratch.dispose()


def forecast_new(db: Engine, spec: assignments.AssignmentSpec, *, options: ForecastOptions = ForecastOptions(),
                 progress: Callable[[int, int], None] | None = None) -> Forecast:
    """What the daemon would send about an assignment created as `spec` says on its start date.

    It is created at the workflow's local hour in the assignee's time zone on the start date. People named by
    `spec` are read from `db`; roles it leaves out are filled by placeholders in UTC (`ROLE@forecast.invalid`).
    """
    scratch = scratch_store.create_scratch_database()
    try:
        with use_case_transaction(db) as source, transaction(scratch) as target:
            found = scratch_store.copy_latest_workflow(source, target, spec.workflow.strip())
            filled = scratch_store.copy_people(source, target, [spec.assignee, *spec.stakeholders.values()])
        if not found:
            workflows.show_workflow(db, spec.workflow.strip())  # raises NotFound naming the installed ones
        complete = _with_placeholders(scratch, spec, filled)
        shown = workflows.show_workflow(scratch, spec.workflow.strip())
        start = inputs.iso_date(spec.start, "--start")
        assignee_tz = _tz_of(scratch, complete.assignee)
        created = local_instant(start, shown.definition["reminders"]["local_hour"], assignee_tz)
        with _marked_logs():
            assignment_id = assignments.create_assignment(scratch, complete, actor=ACTOR, now=created).id
        replay = _Replay(scratch, options, progress)
        return replay.run([assignment_id], created, _Existing())
    finally:
        scratch.dispose()


def _with_placeholders(scratch: Engine, spec: assignments.AssignmentSpec,
                       filled: set[str]) -> assignments.AssignmentSpec:
    """`spec` with a placeholder person for the assignee and every role it does not name."""
    shown = workflows.show_workflow(scratch, spec.workflow.strip())
    roles = dict(spec.stakeholders)
    # roles the workflow does not know are passed on, so creating the assignment refuses them as `create` does
    known = shown.definition["roles"]
    wanted = {"assignee": spec.assignee, **{r: roles.get(r, "") for r in known if r != "assignee"}, **roles}
    for role, email in wanted.items():
        if (email.strip() and email.strip().lower() in filled) or role not in known:
            continue
        if email.strip():
            raise SojournError(f"{role}: no person with email {email}",
                               details=[f"add them first: sojourn person add {email} --name 'Full Name' --tz Area/City",
                                        f"or leave {role} out to forecast with a placeholder in UTC"])
        placeholder = f"{role.replace('_', '-')}@forecast.invalid"
        people.add_person(scratch, placeholder, name=f"({role})", tz="UTC")
        wanted[role] = placeholder
    return assignments.AssignmentSpec(spec.workflow, wanted["assignee"], spec.home, spec.host, spec.start, spec.end,
                                      {r: e for r, e in wanted.items() if r != "assignee"})


def _tz_of(scratch: Engine, email: str) -> str:
    return next(p.tz for p in people.list_people(scratch) if p.email == email.strip().lower())


@contextmanager
def _marked_logs() -> Iterator[None]:
    """Marks the log lines of replayed use cases, so `-v` never reads as if the real database changed."""
    import structlog

    with structlog.contextvars.bound_contextvars(forecast=True):
        yield


@dataclass
class _Existing:
    """What the scratch database held before the replay: rows already sent are not forecast again."""

    task_ids: set[int] = field(default_factory=set)
    done_task_ids: set[int] = field(default_factory=set)
    transition_ids: set[int] = field(default_factory=set)


def _existing_rows(scratch: Engine) -> _Existing:
    with transaction(scratch) as session:
        tasks, done, transitions = scratch_store.row_ids(session)
    return _Existing(tasks, done, transitions)


# --- the replay --------------------------------------------------------------------------------------------------


@dataclass
class _Tracked:
    """One replayed assignment: its record as loaded (people and definition never change in a replay) and where it
    stands, kept in memory so the replay asks the database only through the use cases themselves."""

    record: AssignmentRecord
    stage: str
    open_here: set[int]  # open tasks of the current stage
    smart_goals: int


class _Replay:
    """Steps a virtual clock through a scratch database, doing at each instant what the daemon and people would.

    Contacts, check-ins and pulses are not recorded: one only keeps its period's contact_missed or checkin_missed
    from being planned, and nothing else the replay sends reads it (a checkin_due's progress lines are body text),
    so a replay without them that drops every such notice sends exactly what one with them would (the test that
    drives the real daemon alongside checks this). With `missed_contacts` those notices are kept.
    """

    def __init__(self, scratch: Engine, options: ForecastOptions,
                 progress: Callable[[int, int], None] | None = None) -> None:
        self.scratch = scratch
        self.options = options
        self.progress = progress
        self.notices: list[ForecastNotice] = []
        self.completions: list[tuple[datetime, int, int]] = []  # (instant, task id, assignment id), a heap
        self.wakes: list[tuple[datetime, int]] = []  # (instant a date guard passes, assignment id), a heap
        self.assignments: dict[int, _Tracked] = {}
        self.zones: dict[str, str] = {}  # email -> time zone

    def run(self, assignment_ids: list[int], start: datetime, existing: _Existing) -> Forecast:
        with _marked_logs():
            self._load(assignment_ids, start)
            now, to_advance = start, set(assignment_ids)
            horizon = self._horizon()
            for _ in range(MAX_INSTANTS):
                following = self._settle(now, to_advance)
                stop_at = self.options.stop_at
                if following is None or (stop_at is not None and following >= stop_at):
                    self._report_progress(start, None)
                    return self._result(assignment_ids, existing)
                self._report_progress(start, now)
                if following <= now:
                    raise RuntimeError(f"the replay stands still at {now.isoformat()}")
                if following >= horizon:
                    raise _past_horizon(horizon, self._stage_at_horizon())
                now, to_advance = following, set()
        raise RuntimeError(f"the replay passed {MAX_INSTANTS} instants")

    def _report_progress(self, start: datetime, now: datetime | None) -> None:
        """Tell `progress` the days replayed out of those to the horizon (`until`, else the latest end date); the
        last day counts only once the replay is over (`now` None), as notices may follow an end date."""
        if self.progress is None:
            return
        ends = [datetime.combine(t.record.assignment.end, time(), tzinfo=UTC) for t in self.assignments.values()]
        horizon = self.options.stop_at or max(ends, default=start)
        total = max((horizon - start).days, 1)
        self.progress(total if now is None else min((now - start).days, total - 1), total)

    def _horizon(self) -> datetime:
        """The first instant the replay may not reach: HORIZON_DAYS (and --late) after the latest end date."""
        latest_end = max(t.record.assignment.end for t in self.assignments.values())
        last_day = latest_end + timedelta(days=HORIZON_DAYS + self.options.late_days)
        return datetime.combine(last_day, time(), tzinfo=UTC)

    def _stage_at_horizon(self) -> list[str]:
        """Where each replayed assignment stood when the replay gave up, to say which cadence never stopped."""
        if len(self.assignments) == 1:
            return [f"the assignment is in stage {tracked.stage}" for tracked in self.assignments.values()]
        return [f"assignment {assignment_id} is in stage {tracked.stage}"
                for assignment_id, tracked in sorted(self.assignments.items())]

    def _load(self, assignment_ids: list[int], start: datetime) -> None:
        with transaction(self.scratch) as session:
            records = load_records(session, col(Assignment.id).in_(assignment_ids))
        for record in records:
            a = record.assignment
            assert a.id is not None
            self.zones.update({p.email: p.tz for p in record.stakeholders.values()})
            smart = sum(GoalFacts(g.title, g.measure, g.target, g.due).is_smart for g in record.goals)
            self.assignments[a.id] = _Tracked(record, a.stage, {
                pk(t) for t in record.tasks if t.stage == a.stage and t.status == TaskStatus.OPEN}, smart)
            owners = {p.id: p.email for p in record.stakeholders.values()}
            for task in record.tasks:
                if task.status == TaskStatus.OPEN:
                    self._schedule_completion(pk(task), a.id, task.due_on, owners[task.owner_id], start)

    def _schedule_completion(self, task_id: int, assignment_id: int, due_on: date, owner: str,
                             not_before: datetime) -> None:
        hour = self.assignments[assignment_id].record.definition.reminders.local_hour
        day = due_on + timedelta(days=self.options.late_days)
        at = max(local_instant(day, hour, self.zones[owner]), not_before)
        heapq.heappush(self.completions, (at, task_id, assignment_id))

    def _settle(self, now: datetime, to_advance: set[int]) -> datetime | None:
        """Sweep and act at `now` until nothing more happens there, as a daemon sweeping every minute would;
        returns the next instant planning or delivery has something to do."""
        while True:
            with transaction(self.scratch) as session:
                planner.plan(session, now, attach_calendars=False)  # a forecast shows no attachment
                gather_digests(session, now)
                sent = scratch_store.take_deliverable(session, now)
                following = scratch_store.next_planning_instant(session)
            self._record(sent, now)
            acted = self._complete_due_tasks(now) | self._pop_wakes(now) | to_advance
            advanced = self._advance_all(acted, now)
            to_advance = set()
            if not acted and not advanced:  # sending alone changes nothing planning looks at
                candidates = [following, self.completions[0][0] if self.completions else None,
                              self.wakes[0][0] if self.wakes else None]
                return min((c for c in candidates if c is not None), default=None)

    def _record(self, rows: list[scratch_store.TakenNotice], now: datetime) -> None:
        """Keep the notices sent at `now` (the instant each was due, or the forecast's start for one overdue)."""
        stop_at = self.options.stop_at
        for row in rows:
            if (row.kind in MISSED_KINDS and not self.options.missed_contacts) or \
                    (stop_at is not None and now >= stop_at):
                continue
            self.notices.append(ForecastNotice(**vars(row), at=now, tz=self.zones.get(row.recipient, "UTC")))

    def _complete_due_tasks(self, now: datetime) -> set[int]:
        """Complete every task whose moment has come, in one transaction; a task cancelled meanwhile stays so."""
        due: dict[int, int] = {}  # task id -> assignment id, in the order they come due
        while self.completions and self.completions[0][0] <= now:
            _, task_id, assignment_id = heapq.heappop(self.completions)
            due[task_id] = assignment_id
        touched = set()
        for task_id in complete_tasks(self.scratch, due, note="forecast", actor=ACTOR, now=now) if due else []:
            tracked = self.assignments[due[task_id]]
            tracked.open_here.discard(task_id)
            if not tracked.open_here:
                touched.add(due[task_id])
        return touched

    def _pop_wakes(self, now: datetime) -> set[int]:
        woken = set()
        while self.wakes and self.wakes[0][0] <= now:
            woken.add(heapq.heappop(self.wakes)[1])
        return woken

    def _advance_all(self, assignment_ids: set[int], now: datetime) -> set[int]:
        return {a for a in sorted(assignment_ids) if self._advance_while_allowed(a, now)}

    def _advance_while_allowed(self, assignment_id: int, now: datetime) -> bool:
        """Advance stage after stage while the tasks are done and any date the guards wait for has come."""
        tracked = self.assignments[assignment_id]
        definition = tracked.record.definition
        advanced = False
        while not tracked.open_here and (transition := definition.default_next(tracked.stage)) is not None:
            ready_at = _date_guards_pass_at(tracked.record, transition)
            if ready_at is not None and ready_at > now:
                heapq.heappush(self.wakes, (ready_at, assignment_id))
                return advanced
            self._meet_people_guards(tracked, transition, now)
            try:
                moved = advance.advance(self.scratch, assignment_id, to=transition.dest,
                                        reason="forecast" if transition.requires_reason else None, actor=ACTOR,
                                        now=now)
            except SojournError:
                return advanced  # a guard the forecast cannot meet: the assignment stays
            advanced = True
            tracked.stage = moved.stage
            new_tasks = [t for t in moved.tasks if t.stage == tracked.stage and t.status == TaskStatus.OPEN]
            tracked.open_here = {t.id for t in new_tasks}
            for t in new_tasks:
                assert t.owner is not None, "every workflow role is filled when the assignment is created"
                self._schedule_completion(t.id, assignment_id, t.due_on, t.owner, now)
        return advanced

    def _meet_people_guards(self, tracked: _Tracked, transition: Transition, now: datetime) -> None:
        """Add the SMART goals and sign-offs a transition asks for, as the forecast assumes people do."""
        a = tracked.record.assignment
        assert a.id is not None
        for guard in transition.guards:
            while guard.name == "min_smart_goals" and tracked.smart_goals < int(guard.params.get("count", 1)):
                tracked.smart_goals += 1
                plans.add_goal(self.scratch, a.id, title=f"Goal {tracked.smart_goals} (assumed by the forecast)",
                               measure="as agreed", target="as agreed", due=a.end.isoformat(), actor=ACTOR, now=now)
        for guard in transition.guards:
            if guard.name == "plan_signed_off":
                plan = tracked.record.definition.plan
                plans.sign_plan_by_holders(self.scratch, a.id, guard.params.get("roles") or
                                           (plan.signers if plan else ()), actor=ACTOR, now=now)

    def _result(self, assignment_ids: list[int], existing: _Existing) -> Forecast:
        forecast = Forecast(notices=sorted(self.notices, key=lambda n: (n.at, n.assignment_id, n.key)))
        with transaction(self.scratch) as session:
            history = stage_changes_of(session, assignment_ids)
            records = {r.assignment.id: r for r in load_records(session, col(Assignment.id).in_(assignment_ids))}
        for assignment_id in assignment_ids:
            record = records[assignment_id]
            definition = record.definition
            forecast.stages[assignment_id] = [
                StageEntry(h.to_stage, _stage_title(definition, h.to_stage), h.at.astimezone(UTC),
                           h.id not in existing.transition_ids) for h in history[assignment_id]]
            forecast.tasks[assignment_id] = [
                TaskDue(t.key, t.title, t.stage, t.due_on, t.status, t.id not in existing.task_ids,
                        t.id in existing.done_task_ids) for t in record.tasks]
        return forecast


def _stage_title(definition: WorkflowDefinition, stage: str) -> str:
    """A stage's title; a stage a workflow migration renamed keeps its key in the history, shown as it is."""
    return definition.stage(stage).title if stage in definition.stage_keys else stage


def _past_horizon(horizon: datetime, stages: list[str]) -> SojournError:
    return SojournError(
        f"the forecast ran past {horizon.date().isoformat()}, {HORIZON_DAYS} days after the latest end date, and "
        "stopped; nothing was written",
        details=[*stages, "a cadence whose until_stage is a final stage never stops: end it in a stage the "
                          "assignment leaves (sojourn workflow validate FILE), then install the workflow again",
                 "to see the notices up to a day, add --until YYYY-MM-DD"])


def _date_guards_pass_at(record: AssignmentRecord, transition: Transition) -> datetime | None:
    """When the date guards (not_before) of a transition first pass: the local hour in the assignee's zone on the
    first day they allow, or that day's first instant in UTC if the local hour falls on the UTC day before."""
    a = record.assignment
    days = [day for g in transition.guards if (day := earliest_day(g.name, g.params, a.start, a.end)) is not None]
    if not days:
        return None
    day = max(days)
    at = local_instant(day, record.definition.reminders.local_hour, record.assignee.tz)
    return max(at, datetime.combine(day, time(), tzinfo=UTC))


# --- the Gantt chart ---------------------------------------------------------------------------------------------


def gantt_chart(db: Engine, assignment_id: int, *, now: datetime) -> str:
    """A Mermaid `gantt` chart of one assignment: stages so far as they happened, later ones as the forecast plans
    them, and every task's due date as a milestone. Dates are UTC days."""
    with use_case_transaction(db) as session:
        record = load_record(session, assignment_id)
        title = mermaid_label(f"Assignment {assignment_id} ({record.assignee.name}, {record.assignment.home} to "
                              f"{record.assignment.host})")
    forecast = forecast_assignments(db, [assignment_id], now=now)
    entries, tasks = forecast.stages[assignment_id], forecast.tasks[assignment_id]
    lines = ["gantt", f"    title {title}", "    dateFormat YYYY-MM-DD", "    axisFormat %Y-%m-%d"]
    last_actual = max((i for i, e in enumerate(entries) if not e.planned), default=-1)
    latest_entry = {e.stage: i for i, e in enumerate(entries)}  # a stage's tasks belong to its latest entry
    for index, entry in enumerate(entries):
        begins = entry.at.date()
        following = entries[index + 1].at.date() if index + 1 < len(entries) else None
        own = [t for t in tasks if t.stage == entry.stage and latest_entry[t.stage] == index]
        ends = following or max((t.due_on for t in own), default=begins)
        ends = max(ends, begins + timedelta(days=1))
        tag = "done, " if index < last_actual else "active, " if index == last_actual else ""
        lines.append(f"    section {mermaid_label(entry.title)}")
        lines.append(f"    {mermaid_label(entry.title)}{' (planned)' if entry.planned else ''} :{tag}stage{index + 1}, "
                     f"{begins.isoformat()}, {ends.isoformat()}")
        for number, task in enumerate(own, start=1):
            done = "done, " if task.done_already else ""
            lines.append(f"    {mermaid_label(task.title)} :milestone, {done}stage{index + 1}task{number}, "
                         f"{task.due_on.isoformat()}, 0d")
    return "\n".join(lines)
