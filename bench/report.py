"""Report time: `sojourn report --format json` over N assignments against one plain SQL script, in one run.

Prepares one SQLite file with N leadership-development assignments and a varied history (made with a seeded random
generator and bulk inserts; not timed): each assignment started between 30 and 900 days before the report date and
moved through the stages with stays of 3 to 60 days, one in ten was cancelled on the way; every stage it entered has
its tasks (done for stages it left, about half still open in its current stage), and sponsor contacts and coaching
sessions were logged in four periods out of five. All instants are at 12:00 UTC, where the calendar day is the same
in every zone of the cast, so the plain script can count days without time zones.

- service:  `engine.reporting.figures.program_report(db, now=...)` then
            `engine.reporting.render.render(report, "json")`: one query per table (assignments, history, overdue tasks,
            contacts, workflows) and the figures in Python.
- baseline: plain `sqlite3`, one SQL statement per figure computing it in the database (window functions for the
            median and nearest-rank 90th percentile, a recursive CTE that walks the contact periods with the same
            clamped-month arithmetic), then `json.dumps` of what it fetched.

The two alternate over the rounds, the order flipping each round. After the run the script checks that both computed
the same figures (stage counts, stays with median and 90th percentile, overdue work by owner and role, periods held
and due for every assignment and cadence, repatriations, cancellations) and stops with an error otherwise.
Goal: the report within 3x of the plain script.

    .venv/bin/python bench/report.py              # N=10,000
    .venv/bin/python bench/report.py --n 1000     # quick check
    .venv/bin/python bench/report.py --json       # one JSON document on stdout
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sqlite3
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import CAST, WORKFLOW, interleaved_rounds, race_lines, race_result

GOAL_RATIO = 3.0
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SQLITE_INSTANT = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a UTC instant in SQLite
ASSIGNEES = 300
HOSTS = ("DE", "US", "GB", "SG", "JP")
ZONES = ("America/Sao_Paulo", "Europe/Berlin", "UTC", "Asia/Kolkata")
FORWARD = ("interviews", "plan_agreed", "orientation", "manager_briefing", "alignment_meetings", "coaching",
           "repatriation", "completed")
# What the plain script hard-codes about leadership-development: its cadences and the stages each runs in.
CADENCES = {"sponsor_contact": ("orientation", "manager_briefing", "alignment_meetings", "coaching", "repatriation"),
            "coaching": ("coaching",)}
WEEKS_OF = {"coaching": 4}  # the others are monthly
GRACE_DAYS = 7
REPATRIATION_WINDOW_DAYS = 180


def quiet_logging() -> None:
    from engine.program.logging import configure_logging

    configure_logging("console", logging.WARNING)


# --- preparing the database -------------------------------------------------------------------------------------


def _instant(value: datetime) -> str:
    return value.strftime(SQLITE_INSTANT)


def prepare(path: Path, total: int, seed: int) -> dict[str, Any]:
    """An initialised database with the cast, ASSIGNEES more people and `total` assignments with their history."""
    from engine.domain.definition import parse_definition
    from engine.program import people, workflows
    from engine.store.db import open_db
    from workflows import builtin_workflow_texts

    started = time.perf_counter()
    db = open_db(f"sqlite:///{path}")
    workflows.init(db, now=NOW - timedelta(days=1000))
    for email, name, tz in CAST.values():
        people.add_person(db, email, name=name, tz=tz)
    db.dispose()
    definition = parse_definition(builtin_workflow_texts()["leadership-development.yaml"])
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    people = {email: pid for pid, email in conn.execute("SELECT id, email FROM person")}
    workflow_id = conn.execute("SELECT id FROM workflow WHERE name = ?", (WORKFLOW,)).fetchone()[0]
    conn.executemany("INSERT INTO person (email, name, tz) VALUES (?, ?, ?)",
                     [(f"assignee{i}@example.com", f"Assignee {i}", ZONES[i % len(ZONES)]) for i in range(ASSIGNEES)])
    assignees = [pid for (pid,) in conn.execute("SELECT id FROM person WHERE email LIKE 'assignee%'")]
    holders = {role: people[email] for role, (email, _, _) in CAST.items() if role != "assignee"}
    rows = _generate(random.Random(seed), total, workflow_id, assignees, holders, definition)
    for statement, values in rows.items():
        conn.executemany(statement, values)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return {"prepare_s": time.perf_counter() - started,
            "rows": {statement.split()[2].strip('"'): len(values) for statement, values in rows.items()}}


def _generate(rng: random.Random, total: int, workflow_id: int, assignees: list[int], holders: dict[str, int],
              definition: Any) -> dict[str, list[tuple[Any, ...]]]:
    assignments, stakeholders, transitions, tasks, contacts = [], [], [], [], []
    for assignment_id in range(1, total + 1):
        created = NOW - timedelta(days=rng.randint(30, 900))
        start = created.date() + timedelta(days=rng.randint(30, 120))
        end = start + timedelta(days=rng.randint(180, 1000))
        history = _walk(rng, created)
        stage = history[-1][1]
        assignments.append((assignment_id, workflow_id, rng.choice(assignees), stage, "BR", rng.choice(HOSTS),
                            start.isoformat(), end.isoformat(), 1, _instant(history[-1][2]), _instant(created), 1))
        stakeholders += [(assignment_id, role, person) for role, person in holders.items()]
        transitions += [(assignment_id, source, dest, _instant(at), "bench@example.com",
                         "no longer needed" if dest == "cancelled" else None, 1) for source, dest, at in history]
        for number, (_, dest, at) in enumerate(history):
            current = number == len(history) - 1
            for template in definition.stage(dest).tasks:
                anchor = {"stage_entry": at.date(), "start": start, "end": end}[template.due.anchor]
                due_on = anchor + timedelta(days=template.due.days)
                status = "open" if current and rng.random() < 0.5 else "done"
                done_at = _instant(at + timedelta(days=1)) if status == "done" else None
                tasks.append((assignment_id, template.key, template.title, "", dest, template.owner,
                              holders[template.owner], due_on.isoformat(), _instant(_day_end(due_on)), status,
                              done_at, None, None, None))
        contacts += _contacts(rng, assignment_id, history, holders)
    return {
        'INSERT INTO assignment (id, workflow_id, assignee_id, stage, home, host, start, "end", plan_version, '
        "stage_entered_at, created_at, row_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)": assignments,
        "INSERT INTO stakeholder (assignment_id, role, person_id) VALUES (?, ?, ?)": stakeholders,
        'INSERT INTO "transition" (assignment_id, from_stage, to_stage, at, actor, reason, workflow_version) '
        "VALUES (?, ?, ?, ?, ?, ?, ?)": transitions,
        "INSERT INTO task (assignment_id, key, title, description, stage, owner_role, owner_id, due_on, due_at, "
        "status, completed_at, completed_by, note, next_reminder_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)":
            tasks,
        'INSERT INTO contact (assignment_id, kind, with_person_id, "on", notes, logged_by, logged_at) '
        "VALUES (?, ?, ?, ?, ?, ?, ?)": contacts,
    }


def _day_end(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)


def _walk(rng: random.Random, created: datetime) -> list[tuple[str | None, str, datetime]]:
    """(from, to, at) of an assignment's stage changes up to NOW: forward stays of 3 to 60 days, 1 in 10 cancelled."""
    history: list[tuple[str | None, str, datetime]] = [(None, FORWARD[0], created)]
    cancel_at = rng.randrange(len(FORWARD) - 1) if rng.random() < 0.1 else None
    for number, stage in enumerate(FORWARD[:-1]):
        at = history[-1][2] + timedelta(days=rng.randint(3, 60))
        if at > NOW:
            break
        dest = "cancelled" if number == cancel_at else FORWARD[number + 1]
        history.append((stage, dest, at))
        if dest == "cancelled":
            break
    return history


def _contacts(rng: random.Random, assignment_id: int, history: list[tuple[str | None, str, datetime]],
              holders: dict[str, int]) -> list[tuple[Any, ...]]:
    """A contact in four periods out of five of each cadence, on a random day, while the assignment is in its stages."""
    found = []
    for kind, stages in CADENCES.items():
        spans = [(at, history[i + 1][2] if i + 1 < len(history) else NOW)
                 for i, (_, dest, at) in enumerate(history) if dest in stages]
        if not spans:
            continue
        begin, finish = spans[0][0], spans[-1][1]
        step = 28 if kind in WEEKS_OF else 30
        day = begin
        while day < finish:
            if rng.random() < 0.8:
                on = day + timedelta(days=rng.randrange(step))
                if on <= NOW:
                    with_role = "sponsor" if kind == "sponsor_contact" else "coach"
                    found.append((assignment_id, kind, holders[with_role], on.date().isoformat(), "",
                                  "bench@example.com", _instant(on)))
            day += timedelta(days=step)
    return found


# --- the two contenders -----------------------------------------------------------------------------------------


class ServiceReport:
    name = "sojourn report --format json (engine)"

    def __init__(self, path: Path) -> None:
        from engine.reporting.figures import program_report
        from engine.reporting.render import render
        from engine.store.db import open_db

        self._render, self._report = render, program_report
        self.db = open_db(f"sqlite:///{path}")

    def __call__(self) -> dict[str, Any]:
        text = self._render(self._report(self.db, now=NOW), "json")
        return dict(json.loads(text))

    def html(self) -> tuple[float, int]:
        """Seconds to compute and render the HTML page once (charts included), and its size in bytes."""
        started = time.perf_counter()
        page = self._render(self._report(self.db, now=NOW), "html")
        return time.perf_counter() - started, len(page.encode())

    def close(self) -> None:
        self.db.dispose()


def _month_start(anchor: str, k: str) -> str:
    """SQL for `anchor` plus `k` months, clamped to the month's last day (what add_months_clamped computes)."""
    first = f"date({anchor}, 'start of month', '+' || ({k}) || ' months')"
    following = f"date({anchor}, 'start of month', '+' || (({k}) + 1) || ' months')"
    days_in_month = f"CAST(julianday({following}) - julianday({first}) AS INTEGER)"
    day = f"min(CAST(strftime('%d', {anchor}) AS INTEGER), {days_in_month})"
    return f"date({first}, '+' || ({day} - 1) || ' days')"


def _period_start(k: str) -> str:
    return (f"CASE WHEN e.weeks > 0 THEN date(e.anchor, '+' || (({k}) * 7 * e.weeks) || ' days') "
            f"ELSE {_month_start('e.anchor', k)} END")


_CADENCE_STAGES = " UNION ALL ".join(f"SELECT '{kind}', '{stage}'" for kind, stages in CADENCES.items()
                                     for stage in stages)
_CADENCE_WEEKS = " UNION ALL ".join(f"SELECT '{kind}', {WEEKS_OF.get(kind, 0)}" for kind in CADENCES)

PLAIN_SQL = {
    "pipeline": "SELECT stage, count(*) FROM assignment GROUP BY stage",
    "stage_durations": """
        WITH stays AS (
            SELECT to_stage AS stage, julianday(lead(at) OVER (PARTITION BY assignment_id ORDER BY id)) - julianday(at)
                   AS days
            FROM "transition"),
        ranked AS (
            SELECT stage, days, row_number() OVER (PARTITION BY stage ORDER BY days) AS rn,
                   count(*) OVER (PARTITION BY stage) AS n
            FROM stays WHERE days IS NOT NULL)
        SELECT stage, n, round(avg(CASE WHEN rn IN ((n + 1) / 2, (n + 2) / 2) THEN days END), 1),
               round(max(CASE WHEN rn = (9 * n + 9) / 10 THEN days END), 1)
        FROM ranked GROUP BY stage""",
    "overdue": """
        SELECT p.email, p.name, t.owner_role, count(*), count(DISTINCT t.assignment_id), min(t.due_on)
        FROM task AS t JOIN person AS p ON p.id = t.owner_id
        WHERE t.status = 'open' AND t.due_at <= :now
        GROUP BY p.email, t.owner_role ORDER BY count(*) DESC, min(t.due_on), p.email, t.owner_role""",
    "contact_compliance": f"""
        WITH RECURSIVE cadence_stage(kind, stage) AS ({_CADENCE_STAGES}),
        cadence(kind, weeks) AS ({_CADENCE_WEEKS}),
        entered AS MATERIALIZED (
            SELECT t.assignment_id, c.kind, c.weeks, max(t.at) AS at
            FROM "transition" AS t JOIN cadence AS c
              ON t.to_stage IN (SELECT stage FROM cadence_stage AS s WHERE s.kind = c.kind)
             AND (t.from_stage IS NULL OR t.from_stage NOT IN (SELECT stage FROM cadence_stage AS s
                                                               WHERE s.kind = c.kind))
            GROUP BY t.assignment_id, c.kind),
        e AS MATERIALIZED (
            SELECT n.assignment_id, n.kind, n.weeks, max(date(n.at), a.start) AS anchor,  -- never before the start
                   date(coalesce(min((SELECT min(x.at) FROM "transition" AS x
                                      WHERE x.assignment_id = n.assignment_id AND x.at > n.at
                                        AND x.to_stage NOT IN (SELECT stage FROM cadence_stage AS s
                                                               WHERE s.kind = n.kind)), :now), :now)) AS last_check
            FROM entered AS n JOIN assignment AS a ON a.id = n.assignment_id),
        periods(assignment_id, kind, k, first_day, next_day) AS (
            SELECT e.assignment_id, e.kind, 0, e.anchor, {_period_start('1')} FROM e
            WHERE date({_period_start('1')}, '+{GRACE_DAYS} days') <= e.last_check
            UNION ALL
            SELECT p.assignment_id, p.kind, p.k + 1, p.next_day, {_period_start('p.k + 2')}
            FROM periods AS p JOIN e ON e.assignment_id = p.assignment_id AND e.kind = p.kind
            WHERE date({_period_start('p.k + 2')}, '+{GRACE_DAYS} days') <= e.last_check),
        counted AS (
            SELECT p.assignment_id, p.kind, count(*) AS due,
                   sum(EXISTS (SELECT 1 FROM contact AS c WHERE c.assignment_id = p.assignment_id AND c.kind = p.kind
                               AND c."on" >= p.first_day AND c."on" < p.next_day)) AS held
            FROM periods AS p GROUP BY p.assignment_id, p.kind)
        SELECT e.assignment_id, pe.email, e.kind, coalesce(n.held, 0), coalesce(n.due, 0)
        FROM e JOIN assignment AS a ON a.id = e.assignment_id JOIN person AS pe ON pe.id = a.assignee_id
        LEFT JOIN counted AS n ON n.assignment_id = e.assignment_id AND n.kind = e.kind
        ORDER BY e.assignment_id, e.kind""",
    "upcoming_repatriations": f"""
        SELECT a.id, p.email, a.host, a.stage, a."end", CAST(julianday(a."end") - julianday(date(:now)) AS INTEGER)
        FROM assignment AS a JOIN person AS p ON p.id = a.assignee_id
        WHERE a."end" BETWEEN date(:now) AND date(:now, '+{REPATRIATION_WINDOW_DAYS} days')
          AND a.stage NOT IN ('completed', 'cancelled')
        ORDER BY a."end", a.id""",
    "completed": "SELECT count(*) FROM assignment WHERE stage = 'completed'",
    "cancellations": """
        SELECT a.id, p.email, t.from_stage, date(t.at), t.reason
        FROM assignment AS a JOIN person AS p ON p.id = a.assignee_id
        JOIN "transition" AS t ON t.id = (SELECT max(id) FROM "transition" WHERE assignment_id = a.id)
        WHERE a.stage = 'cancelled' ORDER BY a.id""",
}


class PlainReport:
    name = "plain sqlite3 script"

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path)

    def __call__(self) -> dict[str, Any]:
        now = {"now": _instant(NOW)}
        figures = {name: self.conn.execute(sql, now).fetchall() for name, sql in PLAIN_SQL.items()}
        return dict(json.loads(json.dumps(figures)))

    def close(self) -> None:
        self.conn.close()


# --- comparing and running ----------------------------------------------------------------------------------------


def same_figures(engine: dict[str, Any], plain: dict[str, Any]) -> list[str]:
    """Where the two disagree (empty when they computed the same figures)."""
    pairs = {
        "pipeline": ({p["stage"]: p["assignments"] for p in engine["pipeline"] if p["assignments"]},
                     dict(map(tuple, plain["pipeline"]))),
        "stage_durations": ({d["stage"]: [d["stays"], d["median_days"], d["p90_days"]]
                             for d in engine["stage_durations"] if d["stays"]},
                            {s: [n, m, p] for s, n, m, p in plain["stage_durations"]}),
        "overdue": ([[o["owner"], o["name"], o["role"], o["tasks"], o["assignments"], o["oldest_due_on"]]
                     for o in engine["overdue"]], plain["overdue"]),
        "contact_compliance": (sorted([c["assignment_id"], c["assignee"], c["kind"], c["periods_held"],
                                       c["periods_due"]] for c in engine["contact_compliance"]),
                               sorted(plain["contact_compliance"])),
        "upcoming_repatriations": ([[r["assignment_id"], r["assignee"], r["host"], r["stage"], r["end"],
                                     r["days_left"]] for r in engine["upcoming_repatriations"]],
                                   plain["upcoming_repatriations"]),
        "completed": (engine["outcomes"]["completed"], plain["completed"][0][0]),
        "cancellations": ([[c["assignment_id"], c["assignee"], c["from_stage"], c["on"], c["reason"]]
                           for c in engine["outcomes"]["cancellations"]], plain["cancellations"]),
    }
    return [name for name, (mine, theirs) in pairs.items() if mine != theirs]


def run(n: int, rounds: int, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sojourn-bench-report-") as workdir:
        path = Path(workdir) / "report.db"
        prepared = prepare(path, n, seed)
        service = ServiceReport(path)
        contenders: list[ServiceReport | PlainReport] = [service, PlainReport(path)]
        try:
            times, results = interleaved_rounds(contenders, rounds)
            html_s, html_bytes = service.html()
        finally:
            for contender in contenders:
                contender.close()
    engine_name, plain_name = (c.name for c in contenders)
    report = results[engine_name]
    figures = {"assignments": report["assignments"], "overdue_tasks": sum(o["tasks"] for o in report["overdue"]),
               "compliance_rows": len(report["contact_compliance"])}
    data = race_result(times, engine_name, plain_name, GOAL_RATIO, figures, same_figures, results,
                       {"n": n, "rounds": rounds, "seed": seed, "now": NOW.isoformat(), **prepared})
    return {**data, "html": {"seconds": html_s, "bytes": html_bytes}}


def describe(data: dict[str, Any]) -> str:
    return "\n".join([*race_lines("report", data),
                      f"reference, not a goal: --format html once took {data['html']['seconds']:.1f} s and wrote "
                      f"{data['html']['bytes'] / 1e6:.1f} MB"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="assignments (default 10000)")
    parser.add_argument("--rounds", type=int, default=10, help="timed runs of each contender (default 10)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated history (default 7)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    quiet_logging()
    data = run(args.n, args.rounds, args.seed)
    print(json.dumps(data, indent=2) if args.json else describe(data))


if __name__ == "__main__":
    main()
