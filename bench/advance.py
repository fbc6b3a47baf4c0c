"""Advance throughput: `engine.service.advance` against a plain sqlite3 script doing the same writes, in one run.

Prepares one SQLite file with N leadership-development assignments whose `interviews` tasks are done (one assignment
made through the service layer, then cloned row for row with SQL; creation is not measured), copies it for the
baseline, then advances every assignment from `interviews` to `plan_agreed`, one transaction per advance:

- service:  `engine.service.advance(db, id, to=None, reason=None, actor=..., now=...)`; each call writes the stage
            update with the version check, one history row, 2 task rows and 7 outbox rows.
- baseline: plain `sqlite3` with the same PRAGMAs (WAL, synchronous=NORMAL, foreign_keys=ON, busy_timeout) on the
            copy: BEGIN; select the assignment (with its assignee), its tasks and its stakeholders; check the stage's
            tasks are done; update the stage with a version check; insert 1 history row, 2 task rows and 7 outbox rows
            (ON CONFLICT(key) DO NOTHING); where the schema has `cadencestate`, upsert the workflow's 2 cadence checks
            as the service does since stage changes wake them; COMMIT.

The two run interleaved in rounds so machine noise falls on both alike. Reports advances/s and the ratio.
Goals: at least 1,000 advances/s, and within 5x of the plain script.

    .venv/bin/python bench/advance.py                 # N=10,000 (about two minutes at ~120 advances/s)
    .venv/bin/python bench/advance.py --n 500         # quick check
    .venv/bin/python bench/advance.py --json          # one JSON document on stdout
    .venv/bin/python bench/advance.py --profile 300   # also cProfile 300 extra service advances
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import logging
import pstats
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import (
    ASSIGNMENT,
    CAST,
    WORKFLOW,
    machine,
    median,
    percentile,
    short_path,
    stakeholders,
    table,
    verdict,
)

GOAL_PER_SECOND = 1_000
GOAL_RATIO = 5.0
ACTOR = "bench@example.com"
CREATED_AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
ADVANCED_AT = CREATED_AT + timedelta(days=1)
TEMPLATE_ID = 1
BUSY_TIMEOUT_MS = 10_000
SQLITE_INSTANT = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a UTC instant in SQLite


# --- preparing the database -------------------------------------------------------------------------------------


def quiet_logging() -> None:
    """Log as the CLI does without -v (warnings and up, on stderr), so the service is measured as an admin runs it."""
    try:
        from engine.logging import configure_logging
    except ImportError:
        return
    configure_logging("console", logging.WARNING)


def prepare(path: Path, total: int) -> dict[str, float]:
    """An initialised database with `total` assignments in `interviews`, their interview tasks done."""
    from engine import service
    from engine.store.db import open_db

    quiet_logging()
    started = time.perf_counter()
    db = open_db(f"sqlite:///{path}")
    service.init(db, now=CREATED_AT)
    for email, name, tz in CAST.values():
        service.add_person(db, email, name=name, tz=tz)
    spec = service.AssignmentSpec(workflow=WORKFLOW, assignee=CAST["assignee"][0], stakeholders=stakeholders(),
                                  **ASSIGNMENT)
    template = service.create_assignment(db, spec, actor=ACTOR, now=CREATED_AT)
    assert template["id"] == TEMPLATE_ID, template["id"]
    for task in template["tasks"]:
        if task["stage"] == template["stage"]:
            service.complete_task(db, task["id"], note=None, actor=ACTOR, now=CREATED_AT)
    db.dispose()
    through_service = time.perf_counter() - started
    started = time.perf_counter()
    _clone(path, TEMPLATE_ID, total)
    return {"service_setup_s": through_service, "clone_s": time.perf_counter() - started}


def _clone(path: Path, template_id: int, total: int) -> None:
    """Copy the template assignment and every row hanging off it, so ids 1..total exist with identical shapes."""
    if total <= 1:
        return
    conn = sqlite3.connect(path, isolation_level=None)
    numbers = "WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE "
                                         "'sqlite_%' ORDER BY name")]
    conn.execute("BEGIN")
    columns = [r[1] for r in conn.execute("PRAGMA table_info(assignment)")]
    rest = [c for c in columns if c != "id"]
    conn.execute(numbers + f"INSERT INTO assignment (id, {_names(rest)}) SELECT n.i, {_names(rest, 'a')} "
                 "FROM assignment AS a, n WHERE a.id = ? ORDER BY n.i", (total, template_id))
    for name in tables:
        info = list(conn.execute(f'PRAGMA table_info("{name}")'))
        columns = [r[1] for r in info]
        if name == "assignment" or "assignment_id" not in columns:
            continue
        own_key = [r[1] for r in info if r[5] == 1 and r[1] == "id" and r[2].upper() == "INTEGER"]
        copied = [c for c in columns if c not in own_key]
        values = []
        for c in copied:
            if c == "assignment_id":
                values.append("n.i")
            elif name == "outbox" and c == "key":
                values.append("t.\"key\" || '/copy-' || n.i")  # keys are unique
            else:
                values.append(f't."{c}"')
        order = "n.i, t.rowid"
        conn.execute(numbers + f'INSERT INTO "{name}" ({_names(copied)}) SELECT {", ".join(values)} '
                     f'FROM "{name}" AS t, n WHERE t.assignment_id = ? ORDER BY {order}', (total, template_id))
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def _names(columns: list[str], alias: str | None = None) -> str:
    return ", ".join(f'{alias}."{c}"' if alias else f'"{c}"' for c in columns)


def copy_database(source: Path, target: Path) -> None:
    conn = sqlite3.connect(source)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    shutil.copyfile(source, target)


def counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        return {
            "plan_agreed": conn.execute("SELECT count(*) FROM assignment WHERE stage = 'plan_agreed'").fetchone()[0],
            "transition": conn.execute("SELECT count(*) FROM \"transition\"").fetchone()[0],
            "task": conn.execute("SELECT count(*) FROM task").fetchone()[0],
            "outbox": conn.execute("SELECT count(*) FROM outbox").fetchone()[0],
        }
    finally:
        conn.close()


# --- the two contenders -----------------------------------------------------------------------------------------


class ServiceAdvance:
    name = "service.advance (SQLModel)"

    def __init__(self, path: Path) -> None:
        from engine import service
        from engine.store.db import open_db

        self._service = service
        self.db = open_db(f"sqlite:///{path}")

    def __call__(self, assignment_id: int) -> None:
        result = self._service.advance(self.db, assignment_id, to=None, reason=None, actor=ACTOR, now=ADVANCED_AT)
        assert result["stage"] == "plan_agreed", result["stage"]

    def close(self) -> None:
        self.db.dispose()


# What a hand-written script hard-codes about leadership-development: the next stage and its task templates.
NEXT_STAGE = {"interviews": "plan_agreed"}
CADENCE_KINDS = ("sponsor_contact", "coaching")
NEW_TASKS = {
    "plan_agreed": [
        ("draft_development_plan", "Draft the development plan with SMART goals, metrics and learning activities",
         "coach", 14),
        ("share_plan_with_host_coach", "Share the agreed plan with the coach in the host country", "talent", 21),
    ],
}


class PlainAdvance:
    name = "plain sqlite3 script"

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        for pragma in ("journal_mode=WAL", f"busy_timeout={BUSY_TIMEOUT_MS}", "foreign_keys=ON", "synchronous=NORMAL"):
            self.conn.execute(f"PRAGMA {pragma}")
        # where the schema keeps per-assignment cadence checks, a stage change asks for them to be looked at now
        self.cadences = bool(self.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                                               "AND name = 'cadencestate'").fetchone())

    def __call__(self, assignment_id: int) -> None:
        c = self.conn
        now = ADVANCED_AT
        at = now.strftime(SQLITE_INSTANT)
        c.execute("BEGIN")
        try:
            a = c.execute('SELECT a.id, a.stage, a.row_version, a.home, a.host, p.id, p.email, p.name '
                          'FROM assignment AS a JOIN person AS p ON p.id = a.assignee_id WHERE a.id = ?',
                          (assignment_id,)).fetchone()
            if a is None:
                raise LookupError(f"no assignment {assignment_id}")
            _, stage, version, home, host, assignee_id, assignee_email, assignee_name = a
            tasks = c.execute("SELECT id, key, stage, status, owner_id FROM task WHERE assignment_id = ? ORDER BY id",
                              (assignment_id,)).fetchall()
            holders = {role: (pid, email) for role, pid, email in c.execute(
                "SELECT s.role, p.id, p.email FROM stakeholder AS s JOIN person AS p ON p.id = s.person_id "
                "WHERE s.assignment_id = ?", (assignment_id,))}
            holders["assignee"] = (assignee_id, assignee_email)
            if any(t[2] == stage and t[3] != "done" for t in tasks):
                raise RuntimeError(f"assignment {assignment_id}: tasks of {stage} still open")
            dest = NEXT_STAGE[stage]
            updated = c.execute("UPDATE assignment SET stage = ?, stage_entered_at = ?, row_version = ? "
                                "WHERE id = ? AND row_version = ?", (dest, at, version + 1, assignment_id, version))
            if updated.rowcount != 1:
                raise RuntimeError(f"assignment {assignment_id} changed concurrently")
            history_id = c.execute(
                'INSERT INTO "transition" (assignment_id, from_stage, to_stage, at, actor, reason, workflow_version) '
                "VALUES (?, ?, ?, ?, ?, ?, ?)", (assignment_id, stage, dest, at, ACTOR, None, 1)).lastrowid
            new_tasks = []
            for key, title, role, days in NEW_TASKS[dest]:
                due_on = date.fromordinal(now.date().toordinal() + days)
                new_tasks.append((assignment_id, key, title, "", dest, role, holders[role][0], due_on.isoformat(),
                                  f"{due_on.isoformat()} 23:59:59.000000", "open",
                                  f"{date.fromordinal(due_on.toordinal() - 3).isoformat()} 09:00:00.000000"))
            c.executemany("INSERT INTO task (assignment_id, key, title, description, stage, owner_role, owner_id, "
                          "due_on, due_at, status, next_reminder_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          new_tasks)
            subject = f"Assignment #{assignment_id} ({assignee_name}, {home} to {host}): from {stage} to {dest}"
            notices = []
            for role, (pid, email) in sorted(holders.items()):
                lines = [f"{subject}, by {ACTOR}."] + [f"Your task: {t[2]} (due {t[7]})" for t in new_tasks
                                                       if t[6] == pid]
                notices.append((f"stage_changed/{history_id}/{role}", "stage_changed", assignment_id, None, email,
                                role, subject, "\n".join(lines), at, at, "pending", 0, at, "[]"))
            c.executemany('INSERT INTO outbox ("key", kind, assignment_id, task_id, recipient, role, subject, body, '
                          "created_at, deliver_at, status, attempts, next_attempt_at, delivered_to) "
                          'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT("key") DO NOTHING', notices)
            if self.cadences:
                c.executemany("INSERT INTO cadencestate (assignment_id, kind, next_check_at) VALUES (?, ?, ?) "
                              "ON CONFLICT (assignment_id, kind) DO UPDATE SET next_check_at = CASE "
                              "WHEN cadencestate.next_check_at IS NULL OR cadencestate.next_check_at > "
                              "excluded.next_check_at THEN excluded.next_check_at ELSE cadencestate.next_check_at END",
                              [(assignment_id, kind, at) for kind in CADENCE_KINDS])
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.conn.close()


# --- measuring ----------------------------------------------------------------------------------------------------


def run(n: int, warmup: int, rounds: int, profile: int, keep: bool) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="sojourn-bench-advance-"))
    try:
        return _run(workdir, n, warmup, rounds, profile)
    finally:
        if keep:
            print(f"databases kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _run(workdir: Path, n: int, warmup: int, rounds: int, profile: int) -> dict[str, Any]:
    service_db, plain_db = workdir / "service.db", workdir / "plain.db"
    total = warmup + n + profile
    setup = prepare(service_db, total)
    copy_database(service_db, plain_db)
    before = counts(service_db)

    ids = list(range(1, total + 1))
    warm, timed, profiled = ids[:warmup], ids[warmup:warmup + n], ids[warmup + n:]
    service_advance = ServiceAdvance(service_db)
    contenders: dict[str, ServiceAdvance | PlainAdvance] = {"service": service_advance,
                                                            "plain": PlainAdvance(plain_db)}
    latencies: dict[str, list[float]] = {k: [] for k in contenders}
    for advance in contenders.values():
        for assignment_id in warm:
            advance(assignment_id)

    clock = time.perf_counter
    size = max(1, -(-len(timed) // rounds))
    for number, start in enumerate(range(0, len(timed), size)):
        chunk = timed[start:start + size]
        order = ["service", "plain"] if number % 2 == 0 else ["plain", "service"]
        for key in order:
            advance, sink = contenders[key], latencies[key]
            for assignment_id in chunk:
                t0 = clock()
                advance(assignment_id)
                sink.append(clock() - t0)

    hot_spots = None
    if profiled:
        hot_spots = _profile(service_advance, profiled)
    for advance in contenders.values():
        advance.close()

    results: dict[str, dict[str, Any]] = {}
    for key, advance in contenders.items():
        seconds = sum(latencies[key])
        results[key] = {
            "name": advance.name, "advances": len(latencies[key]), "seconds": seconds,
            "per_second": len(latencies[key]) / seconds if seconds else float("nan"),
            "p50_ms": median(latencies[key]) * 1000, "p95_ms": percentile(latencies[key], 0.95) * 1000,
            "p99_ms": percentile(latencies[key], 0.99) * 1000,
            # advances/s of each round in order: a drift shows whether cost grows with the data already written
            "per_round": [len(chunk) / sum(chunk) for chunk in
                          (latencies[key][i:i + size] for i in range(0, len(latencies[key]), size)) if sum(chunk)],
        }
    after = {"service": counts(service_db), "plain": counts(plain_db)}
    expected_moves = warmup + n
    for key, numbers in after.items():
        moved = expected_moves + (len(profiled) if key == "service" else 0)
        problems = []
        if numbers["plan_agreed"] != moved:
            problems.append(f"{numbers['plan_agreed']} assignments in plan_agreed, expected {moved}")
        for table_name, per_advance in (("transition", 1), ("task", 2), ("outbox", 7)):
            added = numbers[table_name] - before[table_name]
            if added != per_advance * moved:
                problems.append(f"{table_name}: {added} rows added, expected {per_advance * moved}")
        if problems:
            raise SystemExit(f"{key}: the advances did not write what they should: {'; '.join(problems)}")

    ratio = results["plain"]["per_second"] / results["service"]["per_second"]
    return {
        "benchmark": "advance", "machine": machine(),
        "params": {"n": n, "warmup": warmup, "rounds": rounds, "profiled": len(profiled), "assignments": total},
        "setup": setup, "rows_before": before, "rows_after": after, "results": results,
        "ratio_plain_over_service": ratio,
        "goals": {
            "per_second": {"goal": GOAL_PER_SECOND, "value": results["service"]["per_second"],
                           "met": results["service"]["per_second"] >= GOAL_PER_SECOND},
            "ratio": {"goal": GOAL_RATIO, "value": ratio, "met": ratio <= GOAL_RATIO},
        },
        "profile": hot_spots,
    }


def _profile(advance: ServiceAdvance, ids: list[int]) -> dict[str, Any]:
    profiler = cProfile.Profile()
    profiler.enable()
    for assignment_id in ids:
        advance(assignment_id)
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    entries = []
    for (file, line, function), (_, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        entries.append({"where": f"{short_path(file)}:{line}({function})", "calls": calls, "own_s": own,
                        "cumulative_s": cumulative})
    project = [e for e in entries if e["where"].startswith(("engine/", "cli.py"))]
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(30)
    return {
        "advances": len(ids), "total_s": total, "per_advance_ms": total / len(ids) * 1000,
        "project_by_cumulative": sorted(project, key=lambda e: -e["cumulative_s"])[:20],
        "all_by_cumulative": sorted(entries, key=lambda e: -e["cumulative_s"])[:30],
        "all_by_own": sorted(entries, key=lambda e: -e["own_s"])[:15],
    }


# --- reporting ----------------------------------------------------------------------------------------------------


def report(data: dict[str, Any]) -> str:
    r, p, m = data["results"], data["params"], data["machine"]
    lines = [f"advance throughput: {p['n']} timed advances each (after {p['warmup']} warm-up), {p['rounds']} "
             f"interleaved rounds; {m['cpus']} CPUs, Python {m['python']}, "
             f"load average {m['load_average_1m'] or 0:.2f} at the end", ""]
    rows = [[v["name"], str(v["advances"]), f"{v['seconds']:.2f}", f"{v['per_second']:,.0f}", f"{v['p50_ms']:.2f}",
             f"{v['p95_ms']:.2f}", f"{v['p99_ms']:.2f}"] for v in (r["service"], r["plain"])]
    lines.append(table(rows, ["contender", "advances", "seconds", "advances/s", "p50 ms", "p95 ms", "p99 ms"]))
    g = data["goals"]
    lines += ["", f"ratio plain/service: {data['ratio_plain_over_service']:.1f}x (the plain script's advances/s over "
                  "the service's)",
              f"goal >= {GOAL_PER_SECOND:,} advances/s: {r['service']['per_second']:,.0f}/s -> "
              f"{verdict(g['per_second']['met'])}",
              f"goal within {GOAL_RATIO:g}x of plain sqlite3: {data['ratio_plain_over_service']:.1f}x -> "
              f"{verdict(g['ratio']['met'])}"]
    if data["profile"]:
        prof = data["profile"]
        lines += ["", f"cProfile of {prof['advances']} more service advances ({prof['per_advance_ms']:.2f} ms each "
                      "under the profiler); project functions by cumulative time:"]
        lines.append(table([[e["where"], str(e["calls"]), f"{e['cumulative_s'] / prof['total_s']:.0%}",
                             f"{e['cumulative_s'] / prof['advances'] * 1000:.2f}"]
                            for e in prof["project_by_cumulative"][:12]],
                           ["function", "calls", "share", "ms/advance"]))
        lines += ["", "all functions by cumulative time:"]
        lines.append(table([[e["where"], str(e["calls"]), f"{e['cumulative_s'] / prof['total_s']:.0%}",
                             f"{e['cumulative_s'] / prof['advances'] * 1000:.2f}"]
                            for e in prof["all_by_cumulative"][:25]],
                           ["function", "calls", "share", "ms/advance"]))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="timed advances per contender (default 10000)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed advances per contender first (default 20)")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds (default 10)")
    parser.add_argument("--profile", type=int, default=0, metavar="K",
                        help="cProfile K extra service advances after the timed run and print the hot spots")
    parser.add_argument("--keep", action="store_true", help="keep the two database files and print where")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    args = parser.parse_args()
    if args.n < 1 or args.warmup < 0 or args.rounds < 1 or args.profile < 0:
        parser.error("--n and --rounds must be at least 1; --warmup and --profile at least 0")
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the report (or the one JSON document)
        data = run(args.n, args.warmup, args.rounds, args.profile, args.keep)
    print(json.dumps(data, indent=2) if args.json else report(data))


if __name__ == "__main__":
    main()
