"""Sweep cost: planning 1,000 due reminders among 10,000 tasks against the same 1,000 among 1,000,000, in one run.

What a sweep costs should follow the work that is due, not the history in the database. Two databases are built
with the same schema and the same due work, and differ only in how much else they hold:

- small: 10,000 tasks on 1,000 assignments; large: 1,000,000 tasks on 100,000 assignments (10 tasks each, every
  assignment with its 6 stakeholders, 1 history row and 2 cadence rows, and one sent outbox row per task).
- In both, exactly 1,000 open tasks have their `task_due` reminder due (one per assignment, spread evenly over the
  ids), 10% of the tasks are open with a reminder a month ahead, and the rest are done.

One assignment is made through the service layer; SQL clones it (INSERT ... SELECT over a recursive CTE), so a
million tasks take under a minute to create, not an hour. Creation is not measured.

Each timed sweep is the planning the daemon runs before dispatching: `plan_batch(session, now)`, each batch in a
transaction of its own and committed, repeated until no batch comes back full (1,000 outbox rows written, 1,000
tasks moved to their next step, in batches of `engine.planning.planner.BATCH_SIZE`). Between runs the script puts the
due work back (untimed). Also measured: an idle sweep (nothing due) on both. Sizes alternate in rounds so machine noise
falls on both alike. Goal: the large database's due sweep within 1.5x of the small one's.

    .venv/bin/python bench/sweep.py                       # SQLite, 10,000 vs 1,000,000 tasks (about 2 minutes)
    .venv/bin/python bench/sweep.py --small               # 10,000 vs 100,000: quick check
    .venv/bin/python bench/sweep.py --postgres URL        # also on PostgreSQL (URL of a server's admin database)
    .venv/bin/python bench/sweep.py --json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import CAST, machine, median, table, verdict
from sqlalchemy import Engine, delete, func, select, text, update
from sqlmodel import col

GOAL_RATIO = 1.5
TASKS_PER_ASSIGNMENT = 10
ACTOR = "bench@example.com"
CREATED_AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 20, 10, 0, tzinfo=UTC)  # the due tasks' task_due step (09:00 Berlin) has come
IDLE_NOW = NOW - timedelta(days=1)  # before any reminder: a sweep with nothing to do
DUE_ON = date(2026, 3, 20)
FUTURE = NOW + timedelta(days=30)


def quiet_logging() -> None:
    from engine.program.logging import configure_logging

    configure_logging("console", logging.WARNING)


# --- building a database ----------------------------------------------------------------------------------------


def _cte(name: str, upto: int, start: int = 1) -> str:
    return f"{name}(i) AS (SELECT {start} UNION ALL SELECT i + 1 FROM {name} WHERE i < {upto})"


def _columns(model: Any, *, without: tuple[str, ...] = ()) -> list[str]:
    return [c.name for c in model.__table__.columns if c.name not in without]


def _quoted(columns: list[str], alias: str | None = None) -> str:
    return ", ".join(f'{alias}."{c}"' if alias else f'"{c}"' for c in columns)


def build(engine: Engine, tasks: int, due: int) -> dict[str, Any]:
    """Fill an empty, initialised database: `tasks` tasks, of which `due` have a reminder due at NOW."""
    from engine.program.assignments import create_assignment
    from engine.store.models import Assignment, CadenceState, Outbox, StageChange, Stakeholder, Task
    from tests.support.scenarios import add_cast, cast_spec

    started = time.perf_counter()
    add_cast(engine)
    template = int(create_assignment(engine, cast_spec(), actor=ACTOR, now=CREATED_AT).id)
    assignments = tasks // TASKS_PER_ASSIGNMENT
    with engine.begin() as c:
        template_task = c.execute(select(func.min(Task.id)).where(col(Task.assignment_id) == template)).scalar_one()
        assert template_task is not None
        template_outbox = c.execute(select(func.min(Outbox.id)).where(col(Outbox.assignment_id) == template)
                                    ).scalar_one()
        rest = _columns(Assignment, without=("id",))
        c.execute(text(f"WITH RECURSIVE {_cte('n', assignments, 2)} INSERT INTO assignment (id, {_quoted(rest)}) "
                       f"SELECT n.i, {_quoted(rest, 'a')} FROM assignment AS a, n WHERE a.id = :t ORDER BY n.i"),
                  {"t": template})
        for model in (Stakeholder, StageChange, CadenceState):
            columns = _columns(model, without=("id",))
            values = ", ".join("n.i" if name == "assignment_id" else f'r."{name}"' for name in columns)
            c.execute(text(f'WITH RECURSIVE {_cte("n", assignments, 2)} INSERT INTO "{model.__tablename__}" '
                           f"({_quoted(columns)}) SELECT {values} FROM \"{model.__tablename__}\" AS r, n "
                           "WHERE r.assignment_id = :t ORDER BY n.i"), {"t": template})
        c.execute(update(CadenceState).values(next_check_at=None))
        task_columns = _columns(Task, without=("id",))
        overrides = {"assignment_id": "n.i", "key": "r.\"key\" || '-' || m.i", "status": "'done'",
                     "completed_at": 'r."due_at"', "completed_by": f"'{ACTOR}'", "next_reminder_at": "NULL"}
        values = ", ".join(overrides.get(name, f'r."{name}"') for name in task_columns)
        c.execute(text(f"WITH RECURSIVE {_cte('n', assignments)}, {_cte('m', TASKS_PER_ASSIGNMENT)} "
                       f"INSERT INTO task ({_quoted(task_columns)}) SELECT {values} FROM task AS r, n, m "
                       "WHERE r.id = :t ORDER BY n.i, m.i"), {"t": template_task})
        c.execute(delete(Outbox).where(col(Outbox.assignment_id) == template, col(Outbox.id) != template_outbox))
        c.execute(delete(Task).where(col(Task.assignment_id) == template, col(Task.id) <= template_task + 1))
        first = c.execute(select(func.min(Task.id))).scalar_one()
        assert first is not None
        outbox_columns = _columns(Outbox, without=("id",))
        overrides = {"key": "'history/' || t.id", "kind": "'task_due'", "assignment_id": "t.assignment_id",
                     "task_id": "t.id", "status": "'sent'", "attempts": "1", "sent_at": 'o."created_at"'}
        values = ", ".join(overrides.get(name, f'o."{name}"') for name in outbox_columns)
        c.execute(text(f"INSERT INTO outbox ({_quoted(outbox_columns)}) SELECT {values} FROM task AS t, outbox AS o "
                       "WHERE o.id = :o ORDER BY t.id"), {"o": template_outbox})
        c.execute(delete(Outbox).where(col(Outbox.id) == template_outbox))
        offset = col(Task.id) - first
        c.execute(update(Task).where(offset % 10 == 5)
                  .values(status="open", due_on=FUTURE.date(), completed_at=None, completed_by=None,
                          next_reminder_at=FUTURE))
        due_ids = due_task_ids(first, tasks, due)
        c.execute(update(Task).where(col(Task.id).in_(due_ids)).values(status="open", completed_at=None,
                                                                       completed_by=None))
        if engine.dialect.name == "postgresql":
            c.execute(text("SELECT setval(pg_get_serial_sequence('assignment', 'id'), (SELECT max(id) FROM "
                           "assignment))"))
    make_due(engine, due_ids)
    if engine.dialect.name == "sqlite":
        raw = engine.raw_connection()  # outside a transaction, which the engine would begin IMMEDIATE
        try:
            raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()
    elif engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM ANALYZE")  # what autovacuum does soon after a bulk load
    return {"tasks": tasks, "assignments": assignments, "due": len(due_ids), "first_task_id": first,
            "build_s": time.perf_counter() - started, **counts(engine)}


def due_task_ids(first: int, tasks: int, due: int) -> list[int]:
    step = tasks // due
    assert step >= TASKS_PER_ASSIGNMENT, "at most one due task per assignment"
    return [first + k * step for k in range(due)]


def make_due(engine: Engine, ids: list[int]) -> None:
    """Give the tasks `ids` the state a sweep at NOW finds: due today, next step (task_due) at 09:00 local."""
    from engine.domain.schedule import local_instant
    from engine.store.models import Outbox, Task

    at = local_instant(DUE_ON, 9, CAST["coach"][2])
    assert at <= NOW
    with engine.begin() as c:
        c.execute(update(Task).where(col(Task.id).in_(ids)).values(due_on=DUE_ON, next_reminder_at=at))
        c.execute(delete(Outbox).where(col(Outbox.kind) == "task_due", col(Outbox.status) == "pending"))


def counts(engine: Engine) -> dict[str, int]:
    from engine.store.models import Assignment, Outbox, Stakeholder, Task

    with engine.connect() as c:
        return {f"{m.__tablename__}_rows": c.execute(select(func.count()).select_from(m)).scalar_one()
                for m in (Assignment, Task, Stakeholder, Outbox)}


# --- measuring ----------------------------------------------------------------------------------------------------


def one_sweep(engine: Engine, now: datetime) -> tuple[float, int]:
    """Seconds for the planning of one sweep at `now`, as the daemon runs it: one committed transaction per batch
    until no batch comes back full (commits included); and the rows planned."""
    from engine.planning.planner import plan_batch
    from engine.store.db import transaction

    started = time.perf_counter()
    planned, more = 0, True
    while more:
        with transaction(engine) as session:
            batch = plan_batch(session, now)
        planned, more = planned + batch.added, batch.more
    return time.perf_counter() - started, planned


@contextlib.contextmanager
def initialised_engine(url: str) -> Iterator[Engine]:
    """An engine on `url` after `sojourn init`, disposed afterwards."""
    from engine.store.db import open_db
    from tests.support.scratch import initialise

    initialise(url, CREATED_AT)
    engine = open_db(url)
    try:
        yield engine
    finally:
        engine.dispose()


def scratch_engine(stack: contextlib.ExitStack, backend: str, directory: Path, name: str,
                   postgres: str | None) -> Engine:
    """A scratch database of `backend` for the life of `stack`: a SQLite file in `directory`, or a database of its
    own on the server of `postgres`."""
    from tests.support.scratch import postgres_database, sqlite_database

    if backend == "sqlite":
        url = stack.enter_context(sqlite_database(directory, name))
    else:
        assert postgres is not None
        url = stack.enter_context(postgres_database(postgres, prefix="sojourn_bench"))
    return stack.enter_context(initialised_engine(url))


def measure(engines: dict[str, Engine], info: dict[str, dict[str, Any]], rounds: int) -> dict[str, Any]:
    due: dict[str, list[float]] = {name: [] for name in engines}
    idle: dict[str, list[float]] = {name: [] for name in engines}
    order = list(engines)
    for name in order:  # warm-up: caches of the planner and of the database pages
        one_sweep(engines[name], NOW)
        make_due(engines[name], due_task_ids(info[name]["first_task_id"], info[name]["tasks"], info[name]["due"]))
    for round_number in range(rounds):
        for name in order if round_number % 2 == 0 else reversed(order):
            seconds, planned = one_sweep(engines[name], NOW)
            assert planned == info[name]["due"], (name, planned)
            due[name].append(seconds)
            make_due(engines[name], due_task_ids(info[name]["first_task_id"], info[name]["tasks"],
                                                 info[name]["due"]))
            seconds, planned = one_sweep(engines[name], IDLE_NOW)
            assert planned == 0, (name, planned)
            idle[name].append(seconds)
    return {name: {"due_ms": [s * 1000 for s in due[name]], "idle_ms": [s * 1000 for s in idle[name]],
                   "due_median_ms": median(due[name]) * 1000, "idle_median_ms": median(idle[name]) * 1000,
                   "due_stdev_ms": statistics.pstdev(due[name]) * 1000}
            for name in engines}


def run_backend(backend: str, sizes: dict[str, int], due: int, rounds: int, postgres: str | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sojourn-sweep-") as directory, contextlib.ExitStack() as stack:
        engines: dict[str, Engine] = {}
        info: dict[str, dict[str, Any]] = {}
        for name, tasks in sizes.items():
            engines[name] = scratch_engine(stack, backend, Path(directory), name, postgres)
            print(f"[{backend}] building {name}: {tasks:,} tasks ...", file=sys.stderr, flush=True)
            info[name] = build(engines[name], tasks, due)
            print(f"[{backend}]   {info[name]['build_s']:.1f} s", file=sys.stderr, flush=True)
        results = measure(engines, info, rounds)
    small, large = list(sizes)
    ratio = results[large]["due_median_ms"] / results[small]["due_median_ms"]
    idle_ratio = results[large]["idle_median_ms"] / results[small]["idle_median_ms"]
    return {"databases": info, "results": results, "ratio_large_over_small": ratio,
            "idle_ratio_large_over_small": idle_ratio,
            "goal": {"ratio_at_most": GOAL_RATIO, "value": ratio, "met": ratio <= GOAL_RATIO}}


def run(sizes: dict[str, int], due: int, rounds: int, postgres: str | None) -> dict[str, Any]:
    quiet_logging()
    started = datetime.now(UTC).isoformat(timespec="seconds")
    backends = {b: run_backend(b, sizes, due, rounds, postgres) for b in ["sqlite"] + (["postgresql"] if postgres
                                                                                       else [])}
    return {"benchmark": "sweep", "date": started, "machine": machine(),
            "params": {"sizes": sizes, "due": due, "rounds": rounds, "tasks_per_assignment": TASKS_PER_ASSIGNMENT},
            "backends": backends}


# --- reporting ----------------------------------------------------------------------------------------------------


def report(data: dict[str, Any]) -> str:
    p, m = data["params"], data["machine"]
    lines = [f"sweep cost: {p['due']:,} due reminders, {p['rounds']} interleaved rounds; {m['cpus']} CPUs, "
             f"Python {m['python']}, load average {m['load_average_1m'] or 0:.2f} at the end"]
    for backend, b in data["backends"].items():
        rows = []
        for name, r in b["results"].items():
            d = b["databases"][name]
            rows.append([f"{backend} {name}", f"{d['task_rows']:,}", f"{d['assignment_rows']:,}",
                         f"{d['outbox_rows']:,}", f"{d['build_s']:.1f}", f"{r['due_median_ms']:.1f}",
                         f"{min(r['due_ms']):.1f}", f"{max(r['due_ms']):.1f}", f"{r['idle_median_ms']:.2f}"])
        lines += ["", table(rows, ["database", "tasks", "assignments", "outbox", "build s", "due sweep ms (median)",
                                   "min", "max", "idle sweep ms"]),
                  "", f"{backend}: due sweep large/small {b['ratio_large_over_small']:.2f}x, idle sweep "
                      f"{b['idle_ratio_large_over_small']:.2f}x",
                  f"{backend}: goal large within {GOAL_RATIO:g}x of small -> {verdict(b['goal']['met'])}"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="quick check: 10,000 vs 100,000 tasks")
    parser.add_argument("--large", type=int, default=None, help="tasks in the large database (default 1,000,000)")
    parser.add_argument("--due", type=int, default=1_000, help="due reminders in each database (default 1000)")
    parser.add_argument("--rounds", type=int, default=7, help="timed sweeps per database (default 7)")
    parser.add_argument("--postgres", metavar="URL", help="also measure on PostgreSQL; URL of a database on the "
                        "server from which scratch databases are created and dropped")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    args = parser.parse_args()
    large = args.large or (100_000 if args.small else 1_000_000)
    sizes = {"small": 10_000, "large": large}
    if args.due < 1 or args.rounds < 1 or 10_000 // args.due < TASKS_PER_ASSIGNMENT or large < 10_000:
        parser.error("--due from 1 to 1000, --rounds at least 1, --large at least 10000")
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the report (or the one JSON document)
        data = run(sizes, args.due, args.rounds, args.postgres)
    print(json.dumps(data, indent=2) if args.json else report(data))


if __name__ == "__main__":
    main()
