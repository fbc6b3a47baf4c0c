"""Planning cost: the daemon's planning against a plain-Python floor writing the same outbox rows, run in turns.

Planning (task reminders, escalations and cadence notices written to the outbox) is the daemon's main job and the
whole of a forecast's cost. This script measures it against the floor a careful engineer could write by hand for
the same rows: plain `sqlite3`, one query per table per batch, one `executemany` per write, the same texts, the
same iCalendar bytes and the same duplicate-ignoring insert.

Setup (not timed): a SQLite file database with the built-in workflows and N leadership-development assignments
(default 2,000) made with the project's use cases over 60 days: created, moved on to one of seven stages (from
interviews to repatriation), with goals and sign-offs where a stage needs them, and for some of them a logged
sponsor contact, a check-in or a pulse. Each assignee is a person of their own; the stakeholders come from pools
of people in eight time zones. The daemon planned once after the first 30 days, then was down for the last 30.

Workloads, each on a fresh copy of that database for each contender and round:
- backlog: one sweep when the daemon comes back after 30 days down;
- hourly: that sweep and then one every hour for 90 days;
each with the iCalendar attachments (the daemon) and without them (a forecast's mode). The project runs
`planning.plan_in_batches` with one transaction per batch, as the daemon does; the floor runs its batches of the
same size in transactions of its own. Rounds alternate the order of the two. Before any figure is reported the
script compares the two databases: every outbox row (key, kind, recipient, role, instants, subject, body,
attachment, status), every task's next reminder and every cadence's next check must be the same, or it stops.

    .venv/bin/python bench/planning.py                      # 2,000 assignments, 3 rounds (several minutes)
    .venv/bin/python bench/planning.py --assignments 200    # quick check
    .venv/bin/python bench/planning.py --json
    .venv/bin/python bench/planning.py --workload /tmp/w.db   # keep the workload to run again (or another version)
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sqlite3
import tempfile
import time
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from _common import WORKFLOW, machine, median, table

FIRST = datetime(2027, 1, 4, 8, 0, tzinfo=UTC)  # the first assignment is made
BUILD_DAYS = 60  # assignments are made over this many days
DOWN_DAYS = 30  # the daemon sweeps once after the first half of them, and is down for the rest
LAST_SWEEP = FIRST + timedelta(days=BUILD_DAYS - DOWN_DAYS)
COMEBACK = FIRST + timedelta(days=BUILD_DAYS, hours=1)  # the daemon is back: the backlog sweep
HOURLY_DAYS = 90
STAGES = ("interviews", "plan_agreed", "orientation", "manager_briefing", "alignment_meetings", "coaching",
          "repatriation")
ZONES = ("America/Sao_Paulo", "Europe/Berlin", "Asia/Kolkata", "UTC", "America/New_York", "Asia/Tokyo",
         "Australia/Sydney", "Africa/Lagos")
ROLES = ("sending_manager", "host_manager", "coach", "sponsor", "talent", "mobility")
POOL = 40  # people per stakeholder role
ACTOR = "bench@example.com"
BATCH_SIZE = 500  # as engine.planning.planner.BATCH_SIZE; checked at start


def quiet_logging() -> None:
    from engine.program.logging import configure_logging

    configure_logging("console", logging.WARNING)


# --- the workload, made with the project's use cases ---------------------------------------------------------------


def stakeholder_email(role: str, number: int) -> str:
    return f"{role.replace('_', '.')}.{number % POOL}@example.com"


def build(path: Path, count: int) -> None:
    """N assignments in mixed stages, made over BUILD_DAYS days through the use cases; the daemon's last sweep
    before it went down ran DOWN_DAYS days before the end."""
    from engine.program import assignments, people, workflows
    from engine.store.db import open_db

    db = open_db(f"sqlite:///{path}")
    workflows.init(db, now=FIRST - timedelta(days=1))
    for number, role in enumerate(ROLES):
        for member in range(POOL):
            people.add_person(db, stakeholder_email(role, member), name=f"{role.replace('_', ' ').title()} {member}",
                              tz=ZONES[(number + member) % len(ZONES)])
    swept = False
    for number in range(count):
        at = FIRST + timedelta(minutes=number * BUILD_DAYS * 24 * 60 // count)
        if not swept and at >= LAST_SWEEP:
            run_project(path, [LAST_SWEEP], True)
            swept = True
        assignee = f"assignee.{number}@example.com"
        people.add_person(db, assignee, name=f"Assignee {number}, Jr.", tz=ZONES[number % len(ZONES)])
        stage = STAGES[number % len(STAGES)]
        today = at.date()
        start = today + timedelta(days=10) if number % 5 == 0 else today - timedelta(days=number % 10)
        end = today + timedelta(days=150) if stage == "repatriation" else start + timedelta(days=540)
        spec = assignments.AssignmentSpec(WORKFLOW, assignee, "BR", "DE", start.isoformat(), end.isoformat(),
                                          {role: stakeholder_email(role, number + i) for i, role in enumerate(ROLES)})
        assignment_id = assignments.create_assignment(db, spec, actor=ACTOR, now=at).id
        advance_to(db, assignment_id, stage, at, goal_due=end - timedelta(days=30))
        _record_contacts(db, assignment_id, number, stage, at, spec)
    db.dispose()
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def advance_to(db: Any, assignment_id: int, stage: str, at: datetime, *, goal_due: date) -> None:
    """Do whatever each stage needs and advance, until the assignment is in `stage` (all at instant `at`)."""
    from engine.program import advance, assignments, plans
    from tests.support.scenarios import PLAN_SIGNERS, finish_stage_tasks

    while (current := assignments.show_assignment(db, assignment_id, now=at).stage) != stage:
        finish_stage_tasks(db, assignment_id, at)
        if current == "plan_agreed":
            plans.add_goal(db, assignment_id, title="Lead the regional team, with a 75% engagement score",
                           measure="engagement score", target="75", due=goal_due.isoformat(), actor=ACTOR, now=at)
            for role in PLAN_SIGNERS:
                plans.sign_plan(db, assignment_id, role=role, by=None, actor=ACTOR, now=at)
        advance.advance(db, assignment_id, to=None, reason=None, actor=ACTOR, now=at)


def _record_contacts(db: Any, assignment_id: int, number: int, stage: str, at: datetime, spec: Any) -> None:
    """Some assignments had their sponsor contact, a check-in or a pulse: periods held, not missed."""
    from engine.program import assignments, checkins, contacts

    later = at + timedelta(hours=2)
    position = STAGES.index(stage)
    if position >= STAGES.index("orientation") and number % 3 == 0:
        contacts.log_contact(db, assignment_id, kind="sponsor_contact", with_email=spec.stakeholders["sponsor"],
                             on=later.date().isoformat(), notes=None, actor=ACTOR, now=later)
    if position >= STAGES.index("alignment_meetings") and number % 4 == 0:
        goals = assignments.show_assignment(db, assignment_id, now=later).view()["goals"]
        checkins.record_checkin(db, assignment_id, by=spec.assignee, progress={g["id"]: 40 for g in goals},
                                note=None, feedback=None, actor=ACTOR, now=later)
    if position >= STAGES.index("orientation") and number % 5 == 0:
        checkins.record_pulse(db, assignment_id, by=spec.assignee, expectancy=4, instrumentality=4, valence=5,
                              note=None, actor=ACTOR, now=later)


# --- the project's planning, as the daemon runs it --------------------------------------------------------------


def run_project(path: Path, instants: list[datetime], attach: bool) -> int:
    """`plan_in_batches` at each instant, one committed transaction per batch (the daemon's `_plan`)."""
    from engine.planning import planner
    from engine.store.db import open_db, transaction

    db = open_db(f"sqlite:///{path}")
    try:
        return sum(planner.plan_in_batches(lambda: transaction(db), now, attach_calendars=attach)
                   for now in instants)
    finally:
        db.dispose()


# --- the plain floor ----------------------------------------------------------------------------------------------

CADENCE_KINDS = ("contact_due", "contact_missed", "checkin_due", "checkin_missed", "pulse_due")
CHECKIN_COMMAND = "sojourn checkin {} --by YOUR_EMAIL --goal GOAL_ID=PERCENT ... [--feedback TEXT]"
PULSE_COMMAND = "sojourn pulse {} --by YOUR_EMAIL --expectancy 1-5 --instrumentality 1-5 --valence 1-5"
PULSE_QUESTION = ("Expectancy: will your effort lead to the performance asked of you? Instrumentality: will that "
                  "performance lead to the promised reward? Valence: do you still value that reward? Answer 1 (not "
                  "at all) to 5 (fully).")
INSERT_OUTBOX = ("INSERT INTO outbox (key, kind, assignment_id, task_id, recipient, role, subject, body, created_at, "
                 "deliver_at, status, attempts, next_attempt_at, delivered_to, calendar) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, '[]', ?) ON CONFLICT (key) DO NOTHING")
CANCEL = ("UPDATE outbox SET status = 'cancelled', last_error = 'assignment left the stages of this cadence before "
          "delivery' WHERE assignment_id = ? AND kind IN ('contact_due', 'contact_missed', 'checkin_due', "
          "'checkin_missed', 'pulse_due') AND status IN ('pending', 'failed') AND (" +
          " OR ".join(["key LIKE ? ESCAPE '/'"] * len(CADENCE_KINDS)) + ")")


def stored(instant: datetime) -> str:
    """An instant as SQLAlchemy stores it in SQLite: naive UTC text with microseconds."""
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def read_instant(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def ics_text(value: str) -> str:
    """RFC 5545 TEXT escaping."""
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return value.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n")


def ics_line(line: str) -> str:
    """A content line folded where icalendar folds it (74 octets a line, an escape kept whole), with its CRLF."""
    if len(line) < 75 and line.isascii():
        return line + "\r\n"
    parts, current, size = [], "", 0
    for char in line:
        width = len(char.encode())
        if current and size + width >= 75:
            if len(current) > 1 and current[-1] in "\\^":
                parts.append(current[:-1])
                current, size = current[-1], 1
            else:
                parts.append(current)
                current, size = "", 0
        current += char
        size += width
    parts.append(current)
    return "\r\n ".join(parts) + "\r\n"


@dataclass
class Workflow:
    """What the floor knows of the workflow, as a hand-written script would have it: plain values."""

    workflow_id: int
    order: dict[str, int]
    local_hour: int
    due_soon_days: int
    escalate_to: str
    escalation_days: tuple[int, ...]
    managers: dict[str, str]
    cadences: dict[str, Any]


def floor_workflow(path: Path) -> Workflow:
    """The leadership-development workflow's reminders and cadences, read once before any timing."""
    from engine.domain.definition import parse_definition

    with sqlite3.connect(path) as connection:
        workflow_id, source = connection.execute(
            "SELECT id, source FROM workflow WHERE name = ? ORDER BY version DESC", (WORKFLOW,)).fetchone()
    definition = parse_definition(source, source=WORKFLOW)
    r = definition.reminders
    return Workflow(workflow_id, {key: i for i, key in enumerate(definition.stage_keys)}, r.local_hour,
                    r.due_soon_days, r.escalate_to, tuple(r.escalation_days), dict(r.managers),
                    {c.kind: c for c in definition.cadences})


class Floor:
    """The same planning in plain Python over plain sqlite3: what the project's planning costs at the least."""

    def __init__(self, path: Path, workflow: Workflow, attach: bool) -> None:
        self.connection = sqlite3.connect(path, isolation_level=None)
        for pragma in ("journal_mode=WAL", "busy_timeout=10000", "foreign_keys=ON", "synchronous=NORMAL"):
            self.connection.execute(f"PRAGMA {pragma}")
        self.w = workflow
        self.attach = attach
        self.instants: dict[tuple[date, int, str], datetime] = {}
        self.zones: dict[str, ZoneInfo] = {}
        self.timezones: dict[tuple[str, int], str] = {}
        self.months: dict[tuple[date, int], date] = {}

    def run(self, instants: list[datetime]) -> int:
        added = 0
        for now in instants:
            while True:
                self.connection.execute("BEGIN IMMEDIATE")
                count, more = self.batch(now)
                self.connection.execute("COMMIT")
                added += count
                if not more:
                    break
        self.connection.close()
        return added

    # -- one batch -------------------------------------------------------------------------------------------------

    def batch(self, now: datetime) -> tuple[int, bool]:
        sql = self.connection.execute
        at = stored(now)
        tasks = sql("SELECT id, assignment_id, key, title, stage, owner_role, owner_id, due_on, reminder_round "
                    "FROM task WHERE status = 'open' AND next_reminder_at <= ? ORDER BY next_reminder_at, id "
                    "LIMIT ?", (at, BATCH_SIZE)).fetchall()
        states = sql("SELECT assignment_id, kind, next_check_at FROM cadencestate WHERE next_check_at <= ? "
                     "ORDER BY next_check_at, assignment_id, kind LIMIT ?", (at, BATCH_SIZE)).fetchall()
        if not tasks and not states:
            return 0, False
        ids = {t[1] for t in tasks} | {s[0] for s in states}
        marks = ",".join("?" * len(ids))
        assignments = {row[0]: row for row in sql(
            "SELECT id, workflow_id, assignee_id, stage, home, host, start, stage_entered_at, row_version "
            f"FROM assignment WHERE id IN ({marks})", list(ids))}
        roles = sql(f"SELECT assignment_id, role, person_id FROM stakeholder WHERE assignment_id IN ({marks})",
                    list(ids)).fetchall()
        person_ids = {r[2] for r in roles} | {a[2] for a in assignments.values()}
        people = {row[0]: row for row in sql(
            f"SELECT id, email, name, tz FROM person WHERE id IN ({','.join('?' * len(person_ids))})",
            list(person_ids))}
        holders: dict[int, dict[str, tuple[Any, ...]]] = {i: {"assignee": people[a[2]]}
                                                          for i, a in assignments.items()}
        for assignment_id, role, person_id in roles:
            holders[assignment_id][role] = people[person_id]
        history: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
        wanted = {s[0] for s in states} | {t[1] for t in tasks if t[4] != assignments[t[1]][3]}
        if wanted:
            for row in sql("SELECT assignment_id, from_stage, to_stage, at FROM transition WHERE assignment_id IN "
                           f"({','.join('?' * len(wanted))}) ORDER BY id", list(wanted)):
                history[row[0]].append(row)
        for a in assignments.values():
            assert a[1] == self.w.workflow_id, "the floor knows one workflow"
        rows: list[tuple[Any, ...]] = []
        moved = self.plan_tasks(tasks, assignments, holders, people, history, now, rows)
        next_checks, cancels = self.plan_cadences(states, assignments, holders, history, now, rows)
        before = self.connection.total_changes
        self.connection.executemany(INSERT_OUTBOX, rows)
        added = self.connection.total_changes - before
        self.connection.executemany("UPDATE task SET next_reminder_at = ? WHERE id = ?", moved)
        self.connection.executemany(CANCEL, cancels)
        self.connection.executemany("UPDATE cadencestate SET next_check_at = ? WHERE assignment_id = ? AND kind = ?",
                                    next_checks)
        return added, len(tasks) == BATCH_SIZE or len(states) == BATCH_SIZE

    def local(self, day: date, hour: int, tz: str) -> datetime:
        key = (day, hour, tz)
        if (found := self.instants.get(key)) is None:
            zone = self.zones.get(tz) or self.zones.setdefault(tz, ZoneInfo(tz))
            found = self.instants[key] = datetime.combine(day, clock_time(hour), tzinfo=zone).astimezone(UTC)
        return found

    # -- tasks -----------------------------------------------------------------------------------------------------

    def plan_tasks(self, tasks: list[tuple[Any, ...]], assignments: dict[int, tuple[Any, ...]],
                   holders: dict[int, dict[str, tuple[Any, ...]]], people: dict[int, tuple[Any, ...]],
                   history: dict[int, list[tuple[Any, ...]]], now: datetime,
                   rows: list[tuple[Any, ...]]) -> list[tuple[str | None, int]]:
        w, created_at = self.w, stored(now)
        moved = []
        for task_id, assignment_id, key, title, stage, owner_role, owner_id, due_text, rounds in tasks:
            a = assignments[assignment_id]
            owner = people[owner_id]
            due_on = date.fromisoformat(due_text)
            if stage == a[3]:
                created: datetime | None = read_instant(a[7])
            else:
                entries = [h[3] for h in history[assignment_id] if h[2] == stage]
                created = read_instant(max(entries)) if entries else None
            overdue_on = due_on + timedelta(days=1)
            owner_steps = [("task_due", due_on), ("task_overdue", overdue_on)]
            if w.due_soon_days:
                owner_steps.insert(0, ("task_due_soon", due_on - timedelta(days=w.due_soon_days)))
            upcoming: list[datetime] = []
            latest = None
            for kind, day in owner_steps:
                instant = self.local(day, w.local_hour, owner[3])
                if instant <= now:
                    latest = (kind, day, instant)
                else:
                    upcoming.append(instant)
            part = f"{task_id}.{rounds}" if rounds else f"{task_id}"
            about = f"Assignment #{assignment_id} ({holders[assignment_id]['assignee'][2]}, {a[4]} to {a[5]}), " \
                    f"stage {a[3]}."
            if latest is not None:
                kind, day, instant = latest
                subject = {"task_due_soon": f"Due in {(due_on - day).days} day(s): {title}",
                           "task_due": f"Due today: {title}", "task_overdue": f"Overdue since today: {title}"}[kind]
                body = (f"{about}\nYour task {task_id} ({key}) is due on {due_text}.\n"
                        f"When it is done: sojourn task done {task_id}")
                rows.append((f"{kind}/{part}", kind, assignment_id, task_id, owner[1], owner_role, subject, body,
                             created_at, stored(instant), stored(instant), None))
            assert not key.startswith("plan-ack/"), "the workload has no plan changes"
            for number, after in enumerate(w.escalation_days, start=1):
                instant = self.local(overdue_on + timedelta(days=after), w.local_hour, owner[3])
                if created is not None and instant < created:
                    continue
                if instant > now:
                    upcoming.append(instant)
                    continue
                subject = f"Escalation {number}: {title} is {after + 1} day(s) overdue"
                body = (f"{about}\nTask {task_id} ({key}) of {owner[2]} <{owner[1]}> ({owner_role}) was due on "
                        f"{due_text} and is still open.\nPlease follow up with {owner[2]}.")
                for role in dict.fromkeys((w.escalate_to, w.managers.get(owner_role))):
                    if role and role in holders[assignment_id]:
                        person = holders[assignment_id][role]
                        rows.append((f"escalation/{part}/{number}/{role}", "escalation", assignment_id, task_id,
                                     person[1], role, subject, body, created_at, stored(instant), stored(instant),
                                     None))
            moved.append((stored(min(upcoming)) if upcoming else None, task_id))
        return moved

    # -- cadences --------------------------------------------------------------------------------------------------

    def start_of(self, anchor: date, every: Any, index: int) -> date:
        if every.weeks:
            return anchor + timedelta(weeks=index * every.weeks)
        key = (anchor, index * every.months)
        if (found := self.months.get(key)) is None:
            year, month = divmod(anchor.month - 1 + index * every.months, 12)
            year += anchor.year
            last = (date(year + (month + 1) // 12, (month + 1) % 12 + 1, 1) - timedelta(days=1)).day
            found = self.months[key] = date(year, month + 1, min(anchor.day, last))
        return found

    def plan_cadences(self, states: list[tuple[Any, ...]], assignments: dict[int, tuple[Any, ...]],
                      holders: dict[int, dict[str, tuple[Any, ...]]], history: dict[int, list[tuple[Any, ...]]],
                      now: datetime, rows: list[tuple[Any, ...]]) -> tuple[list[tuple[Any, ...]],
                                                                            list[tuple[Any, ...]]]:
        w = self.w
        next_checks: list[tuple[Any, ...]] = []
        cancels: list[tuple[Any, ...]] = []
        checks = []
        for assignment_id, kind, since_text in states:
            a, cadence = assignments[assignment_id], w.cadences.get(kind)
            check = None
            if cadence is not None:
                low, high = w.order[cadence.from_stage], w.order[cadence.until_stage]
                if not low <= w.order.get(a[3], -1) <= high:
                    cancels.append((assignment_id, *(_like_prefix(f"{k}/{assignment_id}/{kind}/")
                                                     for k in CADENCE_KINDS)))
                else:
                    check = self.cadence_check(a, cadence, holders[assignment_id], history[assignment_id],
                                               read_instant(since_text) if since_text else now, now, low, high)
            next_checks.append((stored(check[-1]) if check else None, assignment_id, kind))
            if check is not None:
                checks.append(check)
        held = self.held(checks, holders)
        progress = self.progress({c[0][0] for c in checks if c[4] is not None and c[1].kind == "checkin"})
        for check in checks:
            self.check_rows(check, holders, held, progress, now, rows)
        return next_checks, cancels

    def cadence_check(self, a: tuple[Any, ...], cadence: Any, holders: dict[str, tuple[Any, ...]],
                      history: list[tuple[Any, ...]], since: datetime, now: datetime, low: int,
                      high: int) -> tuple[Any, ...] | None:
        order = self.w.order
        entered = None
        for _, source, target, at in history:
            if low <= order.get(target, -1) <= high and not low <= order.get(source, -1) <= high:
                entered = at
        missed_roles = list(dict.fromkeys([*cadence.notify, self.w.escalate_to]))
        if entered is None or any(role not in holders for role in missed_roles):
            return None
        tz = holders["assignee"][3]
        entered_on = read_instant(entered).astimezone(self.zones.get(tz) or ZoneInfo(tz)).date()
        anchor = max(entered_on, date.fromisoformat(a[6]))
        due_zones = {holders[r][3] for r in cadence.notify}
        missed_zones = {holders[r][3] for r in missed_roles}
        hour, grace, every = self.w.local_hour, timedelta(days=cadence.grace_days), cadence.every

        def due_at(index: int) -> datetime:
            day = self.start_of(anchor, every, index)
            return min(self.local(day, hour, z) for z in due_zones)

        def check_at(index: int) -> datetime:
            day = self.start_of(anchor, every, index + 1) + grace
            return min(self.local(day, hour, z) for z in missed_zones)

        first_after = self.first_index(due_at, now, anchor, every, strictly=True)
        current = first_after - 1 if first_after > 0 else None
        first_check = self.first_index(check_at, since, anchor, every, strictly=False)
        checked = []
        while check_at(first_check) <= now:
            checked.append(first_check)
            first_check += 1
        next_check = first_check
        while check_at(next_check) <= now:
            next_check += 1
        return (a, cadence, anchor, every, current, checked, missed_roles, min(due_at(first_after),
                                                                              check_at(next_check)))

    @staticmethod
    def first_index(instant_of: Callable[[int], datetime], instant: datetime, anchor: date, every: Any, *,
                    strictly: bool) -> int:
        """The first period index whose instant is at or after `instant` (after it, `strictly`)."""
        if every.months:
            guess = ((instant.year - anchor.year) * 12 + instant.month - anchor.month) // every.months
        else:
            guess = (instant.date() - anchor).days // (7 * every.weeks)
        index = max(guess - 1, 0)

        def before(i: int) -> bool:
            return instant_of(i) <= instant if strictly else instant_of(i) < instant

        while index > 0 and not before(index - 1):
            index -= 1
        while before(index):
            index += 1
        return index

    def held(self, checks: list[tuple[Any, ...]], holders: dict[int, dict[str, tuple[Any, ...]]]) -> set[Any]:
        """(assignment id, cadence kind, index) of the periods looked for whose contact, check-in or pulse happened."""
        windows = [(c, i) for c in checks for i in c[5]]
        found: set[Any] = set()
        if not windows:
            return found
        sql = self.connection.execute
        contacts = [(c, i) for c, i in windows if c[1].kind not in ("checkin", "pulse")]
        if contacts:
            ids = {c[0][0] for c, _ in contacts}
            days: dict[tuple[int, str], list[str]] = defaultdict(list)
            for assignment_id, kind, on in sql('SELECT assignment_id, kind, "on" FROM contact WHERE assignment_id '
                                               f'IN ({",".join("?" * len(ids))}) ORDER BY "on"', list(ids)):
                days[(assignment_id, kind)].append(on)
            for c, i in contacts:
                first, after = self.start_of(c[2], c[3], i), self.start_of(c[2], c[3], i + 1)
                if _within(days.get((c[0][0], c[1].kind), []), first.isoformat(), after.isoformat()):
                    found.add((c[0][0], c[1].kind, i))
        for kind, table_name in (("checkin", "checkin"), ("pulse", "pulse")):
            spans = [(c, i) for c, i in windows if c[1].kind == kind]
            if not spans:
                continue
            ids = {c[0][0] for c, _ in spans}
            instants: dict[int, list[str]] = defaultdict(list)
            for assignment_id, at in sql(f"SELECT assignment_id, at FROM {table_name} WHERE assignment_id IN "
                                         f"({','.join('?' * len(ids))}) ORDER BY at", list(ids)):
                instants[assignment_id].append(at)
            for c, i in spans:
                tz = holders[c[0][0]]["assignee"][3]
                since = self.local(self.start_of(c[2], c[3], i), 0, tz)
                before = self.local(self.start_of(c[2], c[3], i + 1), 0, tz)
                if _within(instants.get(c[0][0], []), stored(since), stored(before)):
                    found.add((c[0][0], kind, i))
        return found

    def progress(self, assignment_ids: set[int]) -> dict[int, list[str]]:
        """The progress lines of checkin_due: every goal with its latest recorded percent."""
        if not assignment_ids:
            return {}
        sql, marks = self.connection.execute, ",".join("?" * len(assignment_ids))
        latest = {goal_id: (percent, at, role) for goal_id, percent, at, role in sql(
            "SELECT gp.goal_id, gp.percent, c.at, c.role FROM goal_progress gp JOIN checkin c ON gp.checkin_id = c.id "
            f"WHERE c.assignment_id IN ({marks}) ORDER BY c.at, c.id", list(assignment_ids))}
        lines: dict[int, list[str]] = {a: [] for a in assignment_ids}
        for assignment_id, goal_id, title in sql(
                f"SELECT assignment_id, id, title FROM goal WHERE assignment_id IN ({marks}) ORDER BY id",
                list(assignment_ids)):
            if goal_id in latest:
                percent, at, role = latest[goal_id]
                lines[assignment_id].append(f"- goal {goal_id}, {title}: {percent}% (check-in by the {role} on "
                                            f"{at[:10]})")
            else:
                lines[assignment_id].append(f"- goal {goal_id}, {title}: no progress recorded yet")
        return {a: ["Latest progress on the goals:", *found] if found else ["No goals yet."]
                for a, found in lines.items()}

    def check_rows(self, check: tuple[Any, ...], holders: dict[int, dict[str, tuple[Any, ...]]], held: set[Any],
                   progress: dict[int, list[str]], now: datetime, rows: list[tuple[Any, ...]]) -> None:
        a, cadence, anchor, every, current, checked, missed_roles, _ = check
        people = holders[a[0]]
        kind = cadence.kind
        due_kind, missed_kind = {"checkin": ("checkin_due", "checkin_missed"),
                                 "pulse": ("pulse_due", "checkin_missed")}.get(kind, ("contact_due", "contact_missed"))
        about = f"Assignment #{a[0]} ({people['assignee'][2]}, {a[4]} to {a[5]}), stage {a[3]}."
        partner = people[cadence.with_role]
        created_at = stored(now)
        if current is not None:
            first = self.start_of(anchor, every, current)
            last = self.start_of(anchor, every, current + 1) - timedelta(days=1)
            subject = f"{cadence.title}: due by {last.isoformat()}"
            description = None
            for role in cadence.notify:
                if role not in people:
                    continue
                person = people[role]
                body = self.due_body(due_kind, a, cadence, partner, first, last, about, role, progress)
                instant = self.local(first, self.w.local_hour, person[3])
                calendar = None
                if self.attach:
                    description = description or self.calendar_description(a, cadence, people, partner, first, last)
                    calendar = self.calendar(a, cadence, first, last, person[3], description, now)
                rows.append((f"{due_kind}/{a[0]}/{kind}/{first.isoformat()}/{role}", due_kind, a[0], None, person[1],
                             role, subject, body, created_at, stored(instant), stored(instant), calendar))
        for index in checked:
            if (a[0], kind, index) in held:
                continue
            first = self.start_of(anchor, every, index)
            after = self.start_of(anchor, every, index + 1)
            last = after - timedelta(days=1)
            day = after + timedelta(days=cadence.grace_days)
            subject = f"Missed: {cadence.title} for {first.isoformat()} to {last.isoformat()}"
            if missed_kind == "contact_missed":
                body = (f"{about}\nNo {kind} contact with the {cadence.with_role}, {partner[2]} <{partner[1]}>, was "
                        f"logged for {first.isoformat()} to {last.isoformat()}, {cadence.grace_days} day(s) of grace "
                        "included.")
            else:
                what = "pulse" if kind == "pulse" else "check-in"
                body = (f"{about}\nNo {what} was recorded for {first.isoformat()} to {last.isoformat()}, "
                        f"{cadence.grace_days} day(s) of grace included.")
            for role in missed_roles:
                if role in people:
                    person = people[role]
                    instant = self.local(day, self.w.local_hour, person[3])
                    rows.append((f"{missed_kind}/{a[0]}/{kind}/{first.isoformat()}/{role}", missed_kind, a[0], None,
                                 person[1], role, subject, body, created_at, stored(instant), stored(instant), None))

    @staticmethod
    def due_body(due_kind: str, a: tuple[Any, ...], cadence: Any, partner: tuple[Any, ...], first: date, last: date,
                 about: str, role: str, progress: dict[int, list[str]]) -> str:
        days = f"{first.isoformat()} and {last.isoformat()}"
        if due_kind == "checkin_due":
            lines = [about, f"A check-in on every goal by the assignee or the {cadence.with_role}, {partner[2]} "
                            f"<{partner[1]}>, is due between {days}."]
            if role in ("assignee", cadence.with_role):
                lines.append(f"Record it: {CHECKIN_COMMAND.format(a[0])}")
            return "\n".join([*lines, *progress.get(a[0], [])])
        if due_kind == "pulse_due":
            return (f"{about}\nHow do you see it between {days}? {PULSE_QUESTION}\n"
                    f"Answer: {PULSE_COMMAND.format(a[0])}")
        return (f"{about}\nA {cadence.kind} contact with the {cadence.with_role}, {partner[2]} <{partner[1]}>, is "
                f"due between {days}.\nOnce it has happened: sojourn contact log {a[0]} --kind {cadence.kind} "
                f"--with {partner[1]} --on YYYY-MM-DD")

    # -- calendars -------------------------------------------------------------------------------------------------

    @staticmethod
    def calendar_description(a: tuple[Any, ...], cadence: Any, people: dict[str, tuple[Any, ...]],
                             partner: tuple[Any, ...], first: date, last: date) -> str:
        assignee = people["assignee"][2]
        days = f"between {first.isoformat()} and {last.isoformat()}"
        if cadence.kind == "checkin":
            due = f"A check-in on the goals is due {days}.\nRecord it: {CHECKIN_COMMAND.format(a[0])}"
        elif cadence.kind == "pulse":
            due = f"{assignee}'s expectancy pulse is due {days}.\nAnswer: {PULSE_COMMAND.format(a[0])}"
        else:
            due = (f"A {cadence.kind} contact with the {cadence.with_role}, {partner[2]} <{partner[1]}>, is due "
                   f"{days}.\nOnce it has happened: sojourn contact log {a[0]} --kind {cadence.kind} --with "
                   f"{partner[1]} --on YYYY-MM-DD")
        return ics_line("DESCRIPTION:" + ics_text(f"Assignment #{a[0]} ({assignee}, {a[4]} to {a[5]}).\n{due}"))

    def calendar(self, a: tuple[Any, ...], cadence: Any, first: date, last: date, tz: str, description: str,
                 now: datetime) -> str:
        head = self.timezones.get((tz, first.year))
        if head is None:
            head = self.timezones[(tz, first.year)] = self.calendar_head(tz, first.year)
        hour = self.w.local_hour
        if head.endswith("Z"):
            start, end, head = f":{first:%Y%m%d}T{hour:02d}0000Z", f":{first:%Y%m%d}T{hour:02d}3000Z", head[:-1]
        else:
            start, end = f";TZID={tz}:{first:%Y%m%d}T{hour:02d}0000", f";TZID={tz}:{first:%Y%m%d}T{hour:02d}3000"
        return "".join((head, "BEGIN:VEVENT\r\n", ics_line(f"SUMMARY:{ics_text(cadence.title)}: due by {last}"),
                        "DTSTART", start, "\r\nDTEND", end, "\r\nDTSTAMP:", now.strftime("%Y%m%dT%H%M%SZ"),
                        f"\r\nUID:{cadence.kind}-{a[0]}-{first.isoformat()}@sojourn\r\nSEQUENCE:{a[8]}\r\n"
                        f"CATEGORIES:sojourn,{cadence.kind}\r\n", description,
                        "TRANSP:TRANSPARENT\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"))

    @staticmethod
    def calendar_head(tz: str, year: int) -> str:
        """The calendar's lines up to its event, with the zone's VTIMEZONE for the year (from icalendar, once);
        ends in Z for a zone written in UTC."""
        from icalendar import Timezone, is_utc

        head = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Sojourn//Sojourn assignments//EN\r\n"
                f"CALSCALE:GREGORIAN\r\nMETHOD:PUBLISH\r\nX-WR-TIMEZONE:{tz}\r\n")
        if is_utc(ZoneInfo(tz)):
            return head + "Z"
        zone = Timezone.from_tzid(tz, first_date=date(year, 1, 1), last_date=date(year + 1, 1, 1))
        return head + zone.to_ical().decode()


def _within(ordered: list[str], since: str, before: str) -> bool:
    position = bisect_left(ordered, since)
    return position < len(ordered) and ordered[position] < before


def _like_prefix(prefix: str) -> str:
    return prefix.replace("/", "//").replace("%", "/%").replace("_", "/_") + "%"


# --- the race -----------------------------------------------------------------------------------------------------

OUTBOX_COLUMNS = ("key, kind, assignment_id, task_id, recipient, role, subject, body, created_at, deliver_at, status, "
                  "attempts, next_attempt_at, last_error, delivered_to, calendar")


def written(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """What planning writes: every outbox row, every task's next reminder, every cadence's next check."""
    with sqlite3.connect(path) as connection:
        return {"outbox": connection.execute(f"SELECT {OUTBOX_COLUMNS} FROM outbox ORDER BY key").fetchall(),
                "task": connection.execute("SELECT id, next_reminder_at FROM task ORDER BY id").fetchall(),
                "cadencestate": connection.execute(
                    "SELECT assignment_id, kind, next_check_at FROM cadencestate ORDER BY 1, 2").fetchall()}


def same_rows(project: Path, floor: Path, workload: str) -> None:
    """Stop, naming the first difference, unless both contenders wrote the same rows."""
    mine, theirs = written(project), written(floor)
    for name in mine:
        if mine[name] != theirs[name]:
            keys = dict.fromkeys(r[0] for r in mine[name] + theirs[name])
            ours, plain = {r[0]: r for r in mine[name]}, {r[0]: r for r in theirs[name]}
            first = next(k for k in keys if ours.get(k) != plain.get(k))
            raise SystemExit(f"{workload}: the project and the floor wrote different {name} rows "
                             f"({len(mine[name])} against {len(theirs[name])}); first at {first!r}:\n"
                             f"  project: {ours.get(first)}\n  floor:   {plain.get(first)}")


@dataclass(frozen=True)
class Workload:
    name: str
    instants: list[datetime]
    attach: bool


def workloads() -> list[Workload]:
    hourly = [COMEBACK + timedelta(hours=h) for h in range(HOURLY_DAYS * 24)]
    return [Workload("backlog", [COMEBACK], True), Workload("hourly", hourly, True),
            Workload("backlog without calendars", [COMEBACK], False),
            Workload("hourly without calendars", hourly, False)]


def fresh_copy(base: Path, path: Path) -> None:
    """`base` copied to `path`, with no journal of an earlier database at `path` left to replay into it."""
    remove(path)
    shutil.copyfile(base, path)


def remove(path: Path) -> None:
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)


def warm(base: Path, work: Path, workflow: Workflow, attach: bool) -> None:
    """One backlog sweep by each contender, not timed."""
    for name in ("project", "floor"):
        path = work / f"warm-{name}.db"
        fresh_copy(base, path)
        if name == "project":
            run_project(path, [COMEBACK], attach)
        else:
            Floor(path, workflow, attach).run([COMEBACK])
        remove(path)


def race(base: Path, work: Path, rounds: int, chosen: Iterable[Workload]) -> dict[str, Any]:
    """Each workload in `rounds` rounds, project and floor on fresh copies, the order flipping every round."""
    from engine.planning import planner

    assert planner.BATCH_SIZE == BATCH_SIZE, "the floor plans batches of the project's size"
    workflow = floor_workflow(base)
    results: dict[str, Any] = {}
    warmed: set[bool] = set()
    for load in chosen:
        if load.attach not in warmed:  # imports, statement caches and the VTIMEZONEs both keep, untimed
            warm(base, work, workflow, load.attach)
            warmed.add(load.attach)
        times: dict[str, list[float]] = {"project": [], "floor": []}
        notices: dict[str, int] = {}
        for number in range(rounds):
            paths = {name: work / f"{name}.db" for name in times}
            for path in paths.values():
                fresh_copy(base, path)
            order = ["project", "floor"] if number % 2 == 0 else ["floor", "project"]
            for name in order:
                began = time.perf_counter()
                if name == "project":
                    notices[name] = run_project(paths[name], load.instants, load.attach)
                else:
                    notices[name] = Floor(paths[name], workflow, load.attach).run(load.instants)
                times[name].append(time.perf_counter() - began)
            same_rows(paths["project"], paths["floor"], load.name)
            for path in paths.values():
                remove(path)
        count = notices["project"]
        project_s, floor_s = median(times["project"]), median(times["floor"])
        results[load.name] = {"notices": count, "sweeps": len(load.instants), "calendars": load.attach,
                              "project_us_per_notice": project_s / count * 1e6,
                              "floor_us_per_notice": floor_s / count * 1e6,
                              "ratio_over_floor": project_s / floor_s,
                              "project_s": times["project"], "floor_s": times["floor"]}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignments", type=int, default=2000, help="assignments in the workload (default 2,000)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds of each workload (default 3)")
    parser.add_argument("--only", choices=("backlog", "hourly"), help="run one of the two workloads")
    parser.add_argument("--workload", type=Path, help="the workload database: used if it exists (it must hold "
                        "the same number of assignments), else built and kept there")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    quiet_logging()
    load_before = machine()["load_average_1m"]
    with tempfile.TemporaryDirectory() as tmp:
        base = args.workload or Path(tmp) / "workload.db"
        began = time.perf_counter()
        if not base.exists():
            build(base, args.assignments)
        built_s = time.perf_counter() - began
        with sqlite3.connect(base) as connection:
            (held,) = connection.execute("SELECT count(*) FROM assignment").fetchone()
        if held != args.assignments:
            raise SystemExit(f"{base} holds {held} assignments, not {args.assignments}")
        chosen = [w for w in workloads() if args.only is None or w.name.startswith(args.only)]
        results = race(base, Path(tmp), args.rounds, chosen)
    report = {"machine": machine(), "load_average_1m_at_start": load_before, "assignments": args.assignments,
              "rounds": args.rounds, "build_s": built_s, "rows_checked": True}
    for name, key in (("backlog", "backlog"), ("hourly", "hourly")):
        if name in results:
            report[key] = {**results[name], "without_calendars": results.get(f"{name} without calendars")}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    rows = [[name, f"{r['notices']:,}", str(r["sweeps"]), f"{r['project_us_per_notice']:.0f}",
             f"{r['floor_us_per_notice']:.0f}", f"{r['ratio_over_floor']:.2f}x"] for name, r in results.items()]
    print(f"{args.assignments} assignments, {args.rounds} interleaved rounds; load average {load_before:.2f} at start, "
          f"{report['machine']['load_average_1m']:.2f} at end; both wrote the same rows in every round")
    print(table(rows, ["workload", "notices", "sweeps", "project us/notice", "floor us/notice", "ratio"]))


if __name__ == "__main__":
    main()
