"""Summary time: `sojourn program summary --json` over N assignments against plain SQL computing the same figures.

Prepares the database of `bench/report.py` (N leadership-development assignments with a varied stage history, tasks,
sponsor contacts and coaching sessions; see its docstring), then adds what the summary reads besides (not timed):
one to three plan goals per assignment past `plan_agreed`; a cost for every assignment (EUR, one in five in USD,
whole thousands from 100,000 to 400,000); an early-return category for four cancellations out of five; and for
every completed assignment the 12-month outcome (and the 24-month one when its date has come, or one time in ten
before), retained 85 % of the time, considered for promotion 30 %, promoted 15 %, with two competency ratings each;
while an assignment is in the `checkin` cadence's stages, a check-in by the assignee every 30 days four times in
five with the progress of each goal (the goal left out one time in five), and from orientation on a pulse every 90
days, one in four alerting, half of those resolved. Check-ins and pulses fall at noon UTC, the same day in every
assignee's zone, so the plain SQL may count check-in periods on the UTC date.

- service:  `engine.reporting.summary.program_summary(db, now=...)` then `json.dumps`: one query per table (workflows,
            assignments twice, stage history, contacts, outcomes, check-ins, goal progress, pulse alerts) and the
            figures in Python, the sponsor-contact periods by `engine.reporting.figures.contact_compliance`.
- baseline: plain `sqlite3`, one SQL statement per figure computing it in the database (the sponsor-contact
            periods with the recursive CTE of `bench/report.py`, summed in Python, the check-in periods with the
            same CTE over check-ins), then `json.dumps`.

The two alternate over the rounds, the order flipping each round; afterwards the script checks that both computed
the same figures and stops with an error otherwise. Goal: the summary within 3x of the plain SQL.

    .venv/bin/python bench/program_summary.py              # N=10,000
    .venv/bin/python bench/program_summary.py --n 1000     # quick check
    .venv/bin/python bench/program_summary.py --json       # one JSON document on stdout
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import interleaved_rounds, race_lines, race_result
from report import GRACE_DAYS, NOW, PLAIN_SQL, _instant, _period_start, prepare, quiet_logging

GOAL_RATIO = 3.0
REASONS = ("family", "performance", "business_change", "health", "other")
PAST_PLAN = ("orientation", "manager_briefing", "alignment_meetings", "coaching", "repatriation", "completed")
# What the plain script hard-codes about leadership-development's `checkin` and `pulse` cadences: their stages.
CHECKIN_STAGES = ("alignment_meetings", "coaching", "repatriation")
PULSE_STAGES = ("orientation", "manager_briefing", "alignment_meetings", "coaching", "repatriation")


# --- preparing the database -------------------------------------------------------------------------------------


def add_program_data(path: Path, seed: int) -> dict[str, int]:
    """Goals, costs, early-return categories and outcomes on top of the report benchmark's assignments."""
    rng = random.Random(seed)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    assignments = conn.execute('SELECT id, stage, "end" FROM assignment ORDER BY id').fetchall()
    goals, costs, returns, outcomes = [], [], [], []
    for assignment_id, stage, end in assignments:
        currency = "USD" if rng.random() < 0.2 else "EUR"
        costs.append((rng.randint(100, 400) * 1000, currency, assignment_id))
        if stage in PAST_PLAN:
            goals += [(assignment_id, f"Goal {n}", "a measure", "a target", end, 1, _instant(NOW), "bench@example.com")
                      for n in range(rng.randint(1, 3))]
        if stage == "cancelled" and rng.random() < 0.8:
            returns.append((rng.choice(REASONS), assignment_id))
        if stage == "completed":
            outcomes += _outcomes(rng, assignment_id, date.fromisoformat(end))
    conn.executemany("UPDATE assignment SET cost_amount = ?, cost_currency = ? WHERE id = ?", costs)
    conn.executemany("UPDATE assignment SET early_return_reason = ? WHERE id = ?", returns)
    conn.executemany("INSERT INTO goal (assignment_id, title, measure, target, due, plan_version, created_at, "
                     "created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", goals)
    for values, ratings in outcomes:
        outcome_id = conn.execute("INSERT INTO outcome (assignment_id, months, retained, left_on, left_reason, "
                                  "considered_for_promotion, promoted_to, impact, recorded_at, recorded_by) "
                                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values).lastrowid
        conn.executemany("INSERT INTO outcome_competency (outcome_id, name, before, after) VALUES (?, ?, ?, ?)",
                         [(outcome_id, *rating) for rating in ratings])
    recorded = _add_checkins_and_pulses(rng, conn)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()
    return {"goals": len(goals), "early_returns": len(returns), "outcomes": len(outcomes), **recorded}


def _add_checkins_and_pulses(rng: random.Random, conn: sqlite3.Connection) -> dict[str, int]:
    """Check-ins with goal progress and pulses, each while the assignment is in its cadence's stages."""
    goals_of: dict[int, list[int]] = {}
    for goal_id, assignment_id in conn.execute("SELECT id, assignment_id FROM goal ORDER BY id"):
        goals_of.setdefault(assignment_id, []).append(goal_id)
    history: dict[int, list[tuple[str, datetime]]] = {}
    for assignment_id, stage, at in conn.execute('SELECT assignment_id, to_stage, at FROM "transition" ORDER BY id'):
        history.setdefault(assignment_id, []).append((stage, datetime.fromisoformat(at).replace(tzinfo=UTC)))
    assignees = dict(conn.execute("SELECT id, assignee_id FROM assignment"))
    progress, pulses = 0, []
    for assignment_id, steps in history.items():
        for at in _days_in(steps, CHECKIN_STAGES, 30):
            if rng.random() >= 0.8:
                continue
            checkin_id = conn.execute("INSERT INTO checkin (assignment_id, person_id, role, at) VALUES (?, ?, ?, ?)",
                                      (assignment_id, assignees[assignment_id], "assignee", _instant(at))).lastrowid
            values = [(checkin_id, goal_id, rng.randint(0, 100)) for goal_id in goals_of.get(assignment_id, [])
                      if rng.random() < 0.8]
            conn.executemany("INSERT INTO goal_progress (checkin_id, goal_id, percent) VALUES (?, ?, ?)", values)
            progress += len(values)
        for at in _days_in(steps, PULSE_STAGES, 90):
            alert = rng.random() < 0.25
            resolved = _instant(at + timedelta(days=3)) if alert and rng.random() < 0.5 else None
            answers = (1, 3, 4) if alert else (4, 4, 5)
            pulses.append((assignment_id, assignees[assignment_id], _instant(at), *answers, alert,
                           "expectancy 1 is at or below 2" if alert else None, resolved))
    conn.executemany("INSERT INTO pulse (assignment_id, person_id, at, expectancy, instrumentality, valence, alert, "
                     "alert_reason, resolved_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", pulses)
    checkins = conn.execute("SELECT count(*) FROM checkin").fetchone()[0]
    return {"checkins": checkins, "goal_progress": progress, "pulses": len(pulses)}


def _days_in(steps: list[tuple[str, datetime]], stages: tuple[str, ...], every_days: int) -> list[datetime]:
    """Noon UTC on a random day of each `every_days` from entering `stages` until leaving them (or NOW)."""
    entered = next((at for stage, at in steps if stage in stages), None)
    if entered is None:
        return []
    left = next((at for stage, at in steps if at > entered and stage not in stages), NOW)
    found, day = [], entered
    while day < left:
        at = day + timedelta(days=random.Random(day.toordinal()).randrange(every_days))
        if at < left:
            found.append(at.replace(hour=12, minute=0, second=0, microsecond=0))
        day += timedelta(days=every_days)
    return found


def _outcomes(rng: random.Random, assignment_id: int, end: date) -> list[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]:
    found = []
    for months, days in ((12, 365), (24, 730)):
        if end + timedelta(days=days) > NOW.date() and rng.random() >= 0.1:
            continue
        retained = rng.random() < 0.85
        promoted = "Director" if rng.random() < 0.15 else None
        considered = promoted is not None or rng.random() < 0.3
        left_on = None if retained else (end + timedelta(days=rng.randint(1, days))).isoformat()
        values = (assignment_id, months, retained, left_on, None if retained else "left", considered, promoted,
                  "impact", _instant(NOW), "bench@example.com")
        found.append((values, [("leadership", rng.randint(1, 3), rng.randint(3, 5)),
                               ("negotiation", rng.randint(1, 3), rng.randint(2, 5))]))
    return found


# --- the two contenders -----------------------------------------------------------------------------------------


class ServiceSummary:
    name = "sojourn program summary --json (engine)"

    def __init__(self, path: Path) -> None:
        from engine.reporting.summary import program_summary
        from engine.store.db import open_db

        self._summary = program_summary
        self.db = open_db(f"sqlite:///{path}")

    def __call__(self) -> dict[str, Any]:
        return dict(json.loads(json.dumps(self._summary(self.db, now=NOW).view())))

    def close(self) -> None:
        self.db.dispose()


_COMPLETED_OUTCOME = "outcome AS o JOIN assignment AS a ON a.id = o.assignment_id AND a.stage = 'completed'"
_LATEST = f"""
    SELECT o.assignment_id, o.retained FROM {_COMPLETED_OUTCOME}
    WHERE o.months = (SELECT max(x.months) FROM outcome AS x WHERE x.assignment_id = o.assignment_id)"""

SUMMARY_SQL = {
    "by_stage": "SELECT stage, count(*) FROM assignment GROUP BY stage",
    "active": "SELECT count(*) FROM assignment WHERE stage NOT IN ('completed', 'cancelled')",
    "completed": "SELECT count(*) FROM assignment WHERE stage = 'completed'",
    "cancelled": "SELECT count(*) FROM assignment WHERE stage = 'cancelled'",
    "early_returns": """
        SELECT early_return_reason, count(*) FROM assignment
        WHERE stage = 'cancelled' AND early_return_reason IS NOT NULL GROUP BY early_return_reason""",
    "considered": f"SELECT count(DISTINCT o.assignment_id) FROM {_COMPLETED_OUTCOME} WHERE o.considered_for_promotion",
    "promoted": f"SELECT count(DISTINCT o.assignment_id) FROM {_COMPLETED_OUTCOME} WHERE o.promoted_to IS NOT NULL",
    "retention": """
        SELECT m.months, count(*), count(o.id), coalesce(sum(o.retained), 0)
        FROM (SELECT 12 AS months, 365 AS days UNION ALL SELECT 24, 730) AS m
        JOIN assignment AS a ON a.stage = 'completed'
        LEFT JOIN outcome AS o ON o.assignment_id = a.id AND o.months = m.months
        WHERE date(a."end", '+' || m.days || ' days') <= date(:now) OR o.id IS NOT NULL
        GROUP BY m.months ORDER BY m.months""",
    "retained_leaders": f"SELECT count(*) FROM ({_LATEST}) WHERE retained",
    "cost": f"""
        SELECT a.cost_currency, count(*), sum(a.cost_amount), coalesce(sum(l.retained), 0)
        FROM assignment AS a LEFT JOIN ({_LATEST}) AS l ON l.assignment_id = a.id
        WHERE a.cost_amount IS NOT NULL GROUP BY a.cost_currency ORDER BY a.cost_currency""",
    "contact_periods": PLAIN_SQL["contact_compliance"],
    "goal_progress": """
        SELECT count(*), round(avg(percent), 1) FROM (
            SELECT gp.percent, row_number() OVER (PARTITION BY gp.goal_id ORDER BY c.at DESC, c.id DESC) AS rn
            FROM goal_progress AS gp JOIN checkin AS c ON c.id = gp.checkin_id
            JOIN goal AS g ON g.id = gp.goal_id WHERE g.removed_at IS NULL) WHERE rn = 1""",
    "checkin_periods": f"""
        WITH RECURSIVE entered AS MATERIALIZED (
            SELECT t.assignment_id, max(t.at) AS at FROM "transition" AS t
            WHERE t.to_stage IN {CHECKIN_STAGES} AND (t.from_stage IS NULL OR t.from_stage NOT IN {CHECKIN_STAGES})
            GROUP BY t.assignment_id),
        e AS MATERIALIZED (
            SELECT n.assignment_id, 0 AS weeks, max(date(n.at), a.start) AS anchor,  -- never before the start
                   date(coalesce(min((SELECT min(x.at) FROM "transition" AS x
                                      WHERE x.assignment_id = n.assignment_id AND x.at > n.at
                                        AND x.to_stage NOT IN {CHECKIN_STAGES}), :now), :now)) AS last_check
            FROM entered AS n JOIN assignment AS a ON a.id = n.assignment_id),
        periods(assignment_id, k, first_day, next_day) AS (
            SELECT e.assignment_id, 0, e.anchor, {_period_start('1')} FROM e
            WHERE date({_period_start('1')}, '+{GRACE_DAYS} days') <= e.last_check
            UNION ALL
            SELECT p.assignment_id, p.k + 1, p.next_day, {_period_start('p.k + 2')}
            FROM periods AS p JOIN e ON e.assignment_id = p.assignment_id
            WHERE date({_period_start('p.k + 2')}, '+{GRACE_DAYS} days') <= e.last_check)
        SELECT coalesce(sum(EXISTS (SELECT 1 FROM checkin AS c WHERE c.assignment_id = p.assignment_id
                                    AND c.at >= p.first_day AND c.at < p.next_day)), 0), count(*)
        FROM periods AS p""",
    "open_pulse_alerts": "SELECT count(*) FROM pulse WHERE alert AND resolved_at IS NULL",
}


class PlainSummary:
    name = "plain sqlite3 script"

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path)

    def __call__(self) -> dict[str, Any]:
        now = {"now": _instant(NOW)}
        figures = {name: self.conn.execute(sql, now).fetchall() for name, sql in SUMMARY_SQL.items()}
        sponsor = [row for row in figures.pop("contact_periods") if row[2] == "sponsor_contact"]
        figures["sponsor_contact"] = [sum(row[3] for row in sponsor), sum(row[4] for row in sponsor)]
        figures["checkin_periods"] = list(figures["checkin_periods"][0])
        return dict(json.loads(json.dumps(figures)))

    def close(self) -> None:
        self.conn.close()


# --- comparing and running ----------------------------------------------------------------------------------------


def same_figures(engine: dict[str, Any], plain: dict[str, Any]) -> list[str]:
    """Where the two disagree (empty when they computed the same figures)."""
    early = engine["early_returns"]
    pairs = {
        "by_stage": ({r["stage"]: r["assignments"] for r in engine["by_stage"] if r["assignments"]},
                     dict(map(tuple, plain["by_stage"]))),
        "active": (engine["active"], plain["active"][0][0]),
        "completed": (engine["completed"], plain["completed"][0][0]),
        "early_returns": ((early["cancelled"], {k: v for k, v in early["by_reason"].items() if v}),
                          (plain["cancelled"][0][0], dict(map(tuple, plain["early_returns"])))),
        "considered": (engine["considered_for_promotion"], plain["considered"][0][0]),
        "promoted": (engine["promoted"], plain["promoted"][0][0]),
        "retention": ([[r["months"], r["due"], r["recorded"], r["retained"]] for r in engine["retention"]],
                      plain["retention"]),
        "retained_leaders": (engine["retained_leaders"], plain["retained_leaders"][0][0]),
        "cost": ([[c["currency"], c["assignments"], c["total"], c["retained_leaders"]] for c in engine["cost"]],
                 [[cur, n, f"{total:.2f}", kept] for cur, n, total, kept in plain["cost"]]),
        "sponsor_contact": ([engine["sponsor_contact"]["periods_held"], engine["sponsor_contact"]["periods_due"]],
                            plain["sponsor_contact"]),
        "goal_progress": ([engine["goal_progress"]["goals"], engine["goal_progress"]["mean_percent"]],
                          list(plain["goal_progress"][0])),
        "checkin_compliance": ([engine["checkin_compliance"]["periods_held"],
                                engine["checkin_compliance"]["periods_due"]], plain["checkin_periods"]),
        "open_pulse_alerts": (engine["open_pulse_alerts"], plain["open_pulse_alerts"][0][0]),
    }
    return [name for name, (mine, theirs) in pairs.items() if mine != theirs]


def run(n: int, rounds: int, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sojourn-bench-summary-") as workdir:
        path = Path(workdir) / "summary.db"
        prepared = prepare(path, n, seed)
        prepared["rows"].update(add_program_data(path, seed))
        contenders: list[ServiceSummary | PlainSummary] = [ServiceSummary(path), PlainSummary(path)]
        try:
            times, results = interleaved_rounds(contenders, rounds)
        finally:
            for contender in contenders:
                contender.close()
    engine_name, plain_name = (c.name for c in contenders)
    summary = results[engine_name]
    figures = {"completed": summary["completed"], "early_returns": summary["early_returns"]["total"],
               "retention": [[r["months"], r["retained"], r["due"]] for r in summary["retention"]],
               "sponsor_periods_due": summary["sponsor_contact"]["periods_due"],
               "checkin_periods_due": summary["checkin_compliance"]["periods_due"],
               "mean_goal_progress": summary["goal_progress"]["mean_percent"],
               "open_pulse_alerts": summary["open_pulse_alerts"]}
    return race_result(times, engine_name, plain_name, GOAL_RATIO, figures, same_figures, results,
                       {"n": n, "rounds": rounds, "seed": seed, "now": NOW.isoformat(), **prepared})


def describe(data: dict[str, Any]) -> str:
    return "\n".join(race_lines("program summary", data))


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
