"""Forecast cost: a forecast of 500 assignments over 24 months against the daemon's planning of the same months.

A forecast replays the daemon on a virtual clock in a scratch database: at every instant that matters it runs
`planning.plan` (what the daemon itself runs), takes the notices a dispatcher would send, and lets people act
through the real use cases (tasks done, goals, sign-offs, stage changes). Its baseline is that planning: the
time the same replay spends inside `planning.plan`, the sweeps the daemon runs over the same months at the same
instants on the same rows, measured in the same run (the replay plans without the iCalendar attachments, which it
never shows, so the baseline leaves them out too). The ratio says what the replay costs beyond the daemon's own
work; the goal is absolute: 500 assignments forecast in under 10 s.

Setup (not timed): a SQLite file database with the built-in workflows, the test cast of seven people in five time
zones, and N leadership-development assignments of 18 months created through the service layer, one a day
(start dates spread over the first weeks, so instants differ). Timed: `forecast_assignments` over all of them
from the first creation to 24 months later (copying them into the scratch database included), and the forecast
of one new assignment (`forecast --workflow`), median of three.

    .venv/bin/python bench/forecast.py                 # 500 assignments
    .venv/bin/python bench/forecast.py --count 50      # quick check
    .venv/bin/python bench/forecast.py --json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from _common import CAST, WORKFLOW, machine, median, stakeholders, table, verdict

GOAL_SECONDS = 10.0
MONTHS = 24
FIRST_START = date(2027, 1, 4)
ACTOR = "bench@example.com"


def quiet_logging() -> None:
    from engine.program.logging import configure_logging

    configure_logging("console", logging.WARNING)


def created_at(start: date) -> datetime:
    """09:00 on the start day in the assignee's zone, as the forecast of a new assignment assumes."""
    return datetime.combine(start, clock_time(9), tzinfo=ZoneInfo(CAST["assignee"][2])).astimezone(UTC)


def build(path: Path, count: int) -> tuple[Any, list[int]]:
    from engine.program import assignments, people, workflows
    from engine.store.db import open_db

    db = open_db(f"sqlite:///{path}")
    workflows.init(db, now=created_at(FIRST_START))
    for email, name, tz in CAST.values():
        people.add_person(db, email, name=name, tz=tz)
    ids = []
    for number in range(count):
        start = FIRST_START + timedelta(days=number % 28)
        spec = assignments.AssignmentSpec(WORKFLOW, CAST["assignee"][0], "BR", "DE", start, add_months(start, 18),
                                          stakeholders())
        ids.append(int(assignments.create_assignment(db, spec, actor=ACTOR, now=created_at(FIRST_START)).id))
    return db, ids


def add_months(day: date, months: int) -> date:
    year, month = divmod(day.month - 1 + months, 12)
    return date(day.year + year, month + 1, min(day.day, 28))


class PlanningClock:
    """Wraps `planning.plan` as the replay calls it, adding up the time spent inside (the daemon's own work)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0

    def wrap(self, plan: Callable[..., int]) -> Callable[..., int]:
        def timed(*args: Any, **kwargs: Any) -> int:
            began = time.perf_counter()
            try:
                return plan(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - began
                self.calls += 1
        return timed


def measure(count: int) -> dict[str, Any]:
    from engine.planning import forecast, planner
    from engine.program import assignments

    with tempfile.TemporaryDirectory() as tmp:
        db, ids = build(Path(tmp) / "bench.db", count)
        options = forecast.ForecastOptions(until=add_months(FIRST_START, MONTHS))
        clock = PlanningClock()
        original = planner.plan
        planner.plan = clock.wrap(original)  # type: ignore[method-assign]
        try:
            began, cpu_began = time.perf_counter(), time.process_time()
            result = forecast.forecast_assignments(db, ids, now=created_at(FIRST_START), options=options)
            total, cpu = time.perf_counter() - began, time.process_time() - cpu_began
        finally:
            planner.plan = original  # type: ignore[method-assign]
        spec = assignments.AssignmentSpec(WORKFLOW, CAST["assignee"][0], "BR", "DE", FIRST_START,
                                          add_months(FIRST_START, 18), stakeholders())
        single = []
        for _ in range(3):
            began = time.perf_counter()
            forecast.forecast_new(db, spec, options=options)
            single.append(time.perf_counter() - began)
        db.dispose()
    kinds = Counter(n.kind for n in result.notices)
    return {"assignments": count, "months": MONTHS, "forecast_seconds": total, "forecast_cpu_seconds": cpu,
            "planning_seconds": clock.seconds,
            "planning_calls": clock.calls, "ratio": total / clock.seconds, "notices": len(result.notices),
            "notices_by_kind": dict(sorted(kinds.items())), "per_assignment_ms": total / count * 1000,
            "one_new_assignment_seconds": median(single), "goal_seconds": GOAL_SECONDS,
            "goal_met": total < GOAL_SECONDS * count / 500}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500, help="assignments to forecast (default 500)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    quiet_logging()
    report = {"machine": machine(), **measure(args.count)}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(table([
        [f"forecast of {report['assignments']} assignments over {MONTHS} months", f"{report['forecast_seconds']:.1f} s",
         f"{report['per_assignment_ms']:.0f} ms", f"{report['ratio']:.2f}x",
         f"under {GOAL_SECONDS:g} s: {verdict(report['goal_met'])}"],
        ["daemon's planning of the same months (baseline)", f"{report['planning_seconds']:.1f} s",
         f"{report['planning_calls']} sweeps", "1x", ""],
        ["the forecast's CPU time (the machine is shared)", f"{report['forecast_cpu_seconds']:.1f} s", "", "", ""],
        ["forecast of one new assignment", f"{report['one_new_assignment_seconds']:.2f} s", "", "", ""],
    ], ["what", "time", "per unit", "ratio", "goal"]))
    print(f"notices forecast: {report['notices']} {report['notices_by_kind']}")
    print(f"load average (1 min): {report['machine']['load_average_1m']}")


if __name__ == "__main__":
    main()
