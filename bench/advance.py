"""Advance throughput: `engine.program.advance.advance` against a plain DB-API script doing the same writes, in one run.

Prepares one database with N leadership-development assignments whose `interviews` tasks are done (one assignment
made through the service layer, then cloned row for row with SQL; creation is not measured), copies it for the
baseline, then advances every assignment from `interviews` to `plan_agreed`, one transaction per advance:

- service:  `engine.program.advance.advance(db, id, to=None, reason=None, actor=..., now=...)`; each call writes the
            stage update with the version check, one history row, 2 task rows, 6 outbox rows and one audit event.
- baseline: the plain driver on the copy (`sqlite3` with the same PRAGMAs: WAL, synchronous=NORMAL,
            foreign_keys=ON, busy_timeout; or `psycopg` on PostgreSQL): BEGIN; select the assignment (with its
            assignee and audit head), its tasks and its stakeholders; check the stage's tasks are done; seal the
            audit event as the engine does (each string a salted SHA-256 commitment under a fresh secret, the hash
            over those and the previous hash: `_common.seal_event`); update the stage and the audit head with a
            version check; insert the audit event with its secret, 1 history row, 2 task rows and 6 outbox rows
            (ON CONFLICT(key) DO NOTHING); upsert the workflow's 4 cadence checks as the service does since stage
            changes wake them; COMMIT.

The two run interleaved in rounds so machine noise falls on both alike. Afterwards both sides must have written the
same rows and the same audit events (secrets and hashes aside), and the engine's `audit verify` must pass on the
plain side's chain of the template assignment. Reports advances/s and the ratio, on SQLite
and, with --postgres, on a scratch PostgreSQL database. Goals: at least 1,000 advances/s, and within 5x of the plain
script.

    .venv/bin/python bench/advance.py                 # SQLite, N=10,000 (under a minute)
    .venv/bin/python bench/advance.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres
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
import os
import pstats
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
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
    seal_event,
    short_path,
    stakeholders,
    table,
    verdict,
)
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.engine import make_url

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
        from engine.program.logging import configure_logging
    except ImportError:
        return
    configure_logging("console", logging.WARNING)


def prepare(url: str, total: int) -> dict[str, float]:
    """An initialised database with `total` assignments in `interviews`, their interview tasks done."""
    from engine.program import assignments, people, tasks, workflows
    from engine.store.db import open_db

    quiet_logging()
    started = time.perf_counter()
    db = open_db(url)
    workflows.init(db, now=CREATED_AT)
    for email, name, tz in CAST.values():
        people.add_person(db, email, name=name, tz=tz)
    spec = assignments.AssignmentSpec(workflow=WORKFLOW, assignee=CAST["assignee"][0], stakeholders=stakeholders(),
                                      **ASSIGNMENT)
    template = assignments.create_assignment(db, spec, actor=ACTOR, now=CREATED_AT).view()
    assert template["id"] == TEMPLATE_ID, template["id"]
    for task in template["tasks"]:
        if task["stage"] == template["stage"]:
            tasks.complete_task(db, task["id"], note=None, actor=ACTOR, now=CREATED_AT)
    through_service = time.perf_counter() - started
    started = time.perf_counter()
    _clone(db, TEMPLATE_ID, total)
    db.dispose()
    return {"service_setup_s": through_service, "clone_s": time.perf_counter() - started}


def _clone(db: Engine, template_id: int, total: int) -> None:
    """Copy the template assignment and every row hanging off it, so ids 1..total exist with identical shapes."""
    if total <= 1:
        return
    numbers = "WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n WHERE i < :total) "
    key = {"total": total, "template": template_id}
    with db.begin() as c:
        inspector = inspect(c)
        rest = [col["name"] for col in inspector.get_columns("assignment") if col["name"] != "id"]
        c.execute(text(numbers + f"INSERT INTO assignment (id, {_names(rest)}) SELECT n.i, {_names(rest, 'a')} "
                       "FROM assignment AS a, n WHERE a.id = :template ORDER BY n.i"), key)
        for name in sorted(inspector.get_table_names()):
            columns = [col["name"] for col in inspector.get_columns(name)]
            if name == "assignment" or "assignment_id" not in columns:
                continue
            own_key = inspector.get_pk_constraint(name)["constrained_columns"] == ["id"]
            copied = [c for c in columns if not (own_key and c == "id")]
            values = []
            for column in copied:
                if column == "assignment_id":
                    values.append("n.i")
                elif name == "outbox" and column == "key":
                    values.append("t.\"key\" || '/copy-' || n.i")  # keys are unique
                else:
                    values.append(f't."{column}"')
            order = "n.i" + (", t.id" if own_key else "")
            c.execute(text(numbers + f'INSERT INTO "{name}" ({_names(copied)}) SELECT {", ".join(values)} '
                           f'FROM "{name}" AS t, n WHERE t.assignment_id = :template ORDER BY {order}'), key)
        if db.dialect.name == "postgresql":
            c.execute(text("SELECT setval(pg_get_serial_sequence('assignment', 'id'), :total)"), key)


def _names(columns: list[str], alias: str | None = None) -> str:
    return ", ".join(f'{alias}."{c}"' if alias else f'"{c}"' for c in columns)


class SqliteFiles:
    """The service's database file and the baseline's copy, in a temporary directory."""

    backend = "sqlite"
    driver = "sqlite3"

    def __init__(self, workdir: Path) -> None:
        self.service_path, self.plain_path = workdir / "service.db", workdir / "plain.db"
        self.service_url, self.plain_url = f"sqlite:///{self.service_path}", f"sqlite:///{self.plain_path}"

    def copy_for_plain(self) -> None:
        conn = sqlite3.connect(self.service_path)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        shutil.copyfile(self.service_path, self.plain_path)

    def connect_plain(self) -> Any:
        conn = sqlite3.connect(self.plain_path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        for pragma in ("journal_mode=WAL", f"busy_timeout={BUSY_TIMEOUT_MS}", "foreign_keys=ON", "synchronous=NORMAL"):
            conn.execute(f"PRAGMA {pragma}")
        return conn

    def counts(self, which: str) -> dict[str, int]:
        conn = sqlite3.connect(self.service_path if which == "service" else self.plain_path)
        try:
            return _counts(conn)
        finally:
            conn.close()

    def events(self, which: str, upto: int) -> list[tuple[Any, ...]]:
        conn = sqlite3.connect(self.service_path if which == "service" else self.plain_path)
        try:
            return _events(conn, upto)
        finally:
            conn.close()

    def close(self) -> None:
        pass


class PostgresDatabases:
    """Two scratch databases on one PostgreSQL server: the service's, and the baseline's made from it as template."""

    backend = "postgresql"
    driver = "psycopg"

    def __init__(self, admin_url: str) -> None:
        self.admin = create_engine(make_url(admin_url), isolation_level="AUTOCOMMIT")
        suffix = uuid.uuid4().hex[:10]
        self.names = {"service": f"sojourn_bench_advance_{suffix}", "plain": f"sojourn_bench_plain_{suffix}"}
        self.urls = {which: make_url(admin_url).set(database=name) for which, name in self.names.items()}
        with self.admin.connect() as c:
            c.exec_driver_sql(f'CREATE DATABASE "{self.names["service"]}"')
        self.service_url = self.urls["service"].render_as_string(hide_password=False)
        self.plain_url = self.urls["plain"].render_as_string(hide_password=False)

    def copy_for_plain(self) -> None:
        with self.admin.connect() as c:
            c.exec_driver_sql(f'CREATE DATABASE "{self.names["plain"]}" TEMPLATE "{self.names["service"]}"')
        for which in self.names:
            with self._connect(which) as conn:
                conn.execute("VACUUM ANALYZE")  # what autovacuum does soon after a bulk load

    def _connect(self, which: str) -> Any:
        import psycopg

        url = self.urls[which]
        return psycopg.connect(host=url.host, port=url.port, user=url.username, password=url.password,
                               dbname=url.database, autocommit=True)

    def connect_plain(self) -> Any:
        return self._connect("plain")

    def counts(self, which: str) -> dict[str, int]:
        with self._connect(which) as conn:
            return _counts(conn)

    def events(self, which: str, upto: int) -> list[tuple[Any, ...]]:
        with self._connect(which) as conn:
            return _events(conn, upto)

    def close(self) -> None:
        with self.admin.connect() as c:
            for name in self.names.values():
                c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.admin.dispose()


def _counts(conn: Any) -> dict[str, int]:
    def count(sql: str) -> int:
        return int(conn.execute(sql).fetchone()[0])

    return {"plan_agreed": count("SELECT count(*) FROM assignment WHERE stage = 'plan_agreed'"),
            "transition": count('SELECT count(*) FROM "transition"'), "task": count("SELECT count(*) FROM task"),
            "outbox": count("SELECT count(*) FROM outbox"), "audit_event": count("SELECT count(*) FROM audit_event")}


def _events(conn: Any, upto: int) -> list[tuple[Any, ...]]:
    """The audit events of assignments 1..upto as stored, but for what is random in each: its secret and hash."""
    return [tuple(row) for row in conn.execute(
        "SELECT assignment_id, seq, at, actor, action, details, secret IS NOT NULL, erased FROM audit_event "
        f"WHERE assignment_id <= {int(upto)} ORDER BY assignment_id, seq").fetchall()]


def audit_problems(files: SqliteFiles | PostgresDatabases, upto: int) -> list[str]:
    """What differs between the two sides' audit events (assignments 1..upto), and what the engine's `audit verify`
    finds wrong with the plain side's chain of the template assignment (hashes recomputed from the committed
    strings, history and task rows held against their events); the clones' chains were copied from it, so their
    older events do not verify, but the plain script sealed every advance alike. Not timed."""
    from engine.program.audit import verify_audit
    from engine.store.db import open_db

    service, plain = files.events("service", upto), files.events("plain", upto)
    problems = [f"the plain script wrote {len(plain)} events, the service {len(service)}"] if len(plain) != len(
        service) else []
    problems += [f"event {s[:2]} differs: service {s[2:]}, plain {p[2:]}"
                 for s, p in zip(service, plain, strict=False) if s != p][:3]
    db = open_db(files.plain_url)
    try:
        problems += [f"plain: {p.message}" for p in verify_audit(db, assignment_id=TEMPLATE_ID).problems]
    finally:
        db.dispose()
    return problems


# --- the two contenders -----------------------------------------------------------------------------------------


class ServiceAdvance:
    name = "service.advance"

    def __init__(self, url: str) -> None:
        from engine.program import advance
        from engine.store.db import open_db

        self._advance = advance.advance
        self.db = open_db(url)

    def __call__(self, assignment_id: int) -> None:
        result = self._advance(self.db, assignment_id, to=None, reason=None, actor=ACTOR, now=ADVANCED_AT)
        assert result.stage == "plan_agreed", result.stage

    def close(self) -> None:
        self.db.dispose()


# What a hand-written script hard-codes about leadership-development: the next stage and its task templates.
NEXT_STAGE = {"interviews": "plan_agreed"}
# Who the built-in workflow tells of entering plan_agreed: its notify list (the plan's signers) and its task owners.
PLAN_AGREED_AUDIENCE = ("assignee", "coach", "host_manager", "mobility", "sending_manager", "talent")
CADENCE_KINDS = ("sponsor_contact", "coaching", "checkin", "pulse")
NEW_TASKS = {
    "plan_agreed": [
        ("draft_development_plan", "Draft the development plan with SMART goals, metrics and learning activities",
         "coach", 14),
        ("share_plan_with_host_coach", "Share the agreed plan with the coach in the host country", "talent", 21),
    ],
}


class PlainAdvance:
    """The same advance written by hand against the driver: `sqlite3` (`?`, instants as SQLAlchemy's text) or
    `psycopg` (`%s`, aware datetimes)."""

    def __init__(self, files: SqliteFiles | PostgresDatabases) -> None:
        self.name = f"plain {files.driver} script"
        self.conn = files.connect_plain()
        self.cursor = self.conn.cursor()
        self.sqlite = files.backend == "sqlite"

    def _sql(self, statement: str) -> str:
        return statement if self.sqlite else statement.replace("?", "%s")

    def _instant(self, value: datetime) -> Any:
        return value.strftime(SQLITE_INSTANT) if self.sqlite else value

    def __call__(self, assignment_id: int) -> None:
        c, sql = self.cursor, self._sql
        now = ADVANCED_AT
        at = self._instant(now)
        c.execute("BEGIN")
        try:
            a = c.execute(sql('SELECT a.id, a.stage, a.row_version, a.audit_seq, a.audit_head, a.home, a.host, p.id, '
                              'p.email, p.name FROM assignment AS a JOIN person AS p ON p.id = a.assignee_id '
                              'WHERE a.id = ?'), (assignment_id,)).fetchone()
            if a is None:
                raise LookupError(f"no assignment {assignment_id}")
            _, stage, version, seq, head, home, host, assignee_id, assignee_email, assignee_name = a
            tasks = c.execute(sql("SELECT id, key, stage, status, owner_id FROM task WHERE assignment_id = ? "
                                  "ORDER BY id"), (assignment_id,)).fetchall()
            holders = {role: (pid, email) for role, pid, email in c.execute(sql(
                "SELECT s.role, p.id, p.email FROM stakeholder AS s JOIN person AS p ON p.id = s.person_id "
                "WHERE s.assignment_id = ?"), (assignment_id,)).fetchall()}
            holders["assignee"] = (assignee_id, assignee_email)
            if any(t[2] == stage and t[3] != "done" for t in tasks):
                raise RuntimeError(f"assignment {assignment_id}: tasks of {stage} still open")
            dest = NEXT_STAGE[stage]
            details, secret, event_hash = seal_event(assignment_id, seq + 1, now, ACTOR, "stage_changed",
                                                     {"from": stage, "to": dest, "reason": None}, head)
            updated = c.execute(sql("UPDATE assignment SET stage = ?, stage_entered_at = ?, row_version = ?, "
                                    "audit_seq = ?, audit_head = ? WHERE id = ? AND row_version = ? AND audit_seq = ?"),
                                (dest, at, version + 1, seq + 1, event_hash, assignment_id, version, seq))
            if updated.rowcount != 1:
                raise RuntimeError(f"assignment {assignment_id} changed concurrently")
            c.execute(sql("INSERT INTO audit_event (assignment_id, seq, at, actor, action, details, prev_hash, hash, "
                          "secret) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                      (assignment_id, seq + 1, at, ACTOR, "stage_changed", details, head, event_hash, secret))
            history_id = c.execute(sql(
                'INSERT INTO "transition" (assignment_id, from_stage, to_stage, at, actor, reason, workflow_version) '
                "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id"), (assignment_id, stage, dest, at, ACTOR, None, 1)
            ).fetchone()[0]
            new_tasks = []
            for key, title, role, days in NEW_TASKS[dest]:
                due_on = date.fromordinal(now.date().toordinal() + days)
                due_at = datetime.combine(due_on, datetime.max.time(), UTC).replace(microsecond=0)
                reminder = datetime.combine(date.fromordinal(due_on.toordinal() - 3), datetime.min.time(), UTC)
                new_tasks.append((assignment_id, key, title, "", dest, role, holders[role][0], due_on,
                                  self._instant(due_at), "open", self._instant(reminder.replace(hour=9))))
            c.executemany(sql("INSERT INTO task (assignment_id, key, title, description, stage, owner_role, owner_id, "
                              "due_on, due_at, status, next_reminder_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
                          new_tasks)
            subject = f"Assignment #{assignment_id} ({assignee_name}, {home} to {host}): from {stage} to {dest}"
            notices = []
            for role, (pid, email) in sorted(holders.items()):
                if role not in PLAN_AGREED_AUDIENCE:
                    continue
                lines = [f"{subject}, by {ACTOR}."] + [f"Your task: {t[2]} (due {t[7].isoformat()})"
                                                       for t in new_tasks if t[6] == pid]
                notices.append((f"stage_changed/{history_id}/{role}", "stage_changed", assignment_id, None, email,
                                role, subject, "\n".join(lines), at, at, "pending", 0, at, "[]"))
            c.executemany(sql('INSERT INTO outbox ("key", kind, assignment_id, task_id, recipient, role, subject, '
                              "body, created_at, deliver_at, status, attempts, next_attempt_at, delivered_to) "
                              "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, " + ("?" if self.sqlite else "?::json")
                              + ') ON CONFLICT("key") DO NOTHING'), notices)
            c.executemany(sql("INSERT INTO cadencestate (assignment_id, kind, next_check_at) VALUES (?, ?, ?) "
                              "ON CONFLICT (assignment_id, kind) DO UPDATE SET next_check_at = CASE "
                              "WHEN cadencestate.next_check_at IS NULL OR cadencestate.next_check_at > "
                              "excluded.next_check_at THEN excluded.next_check_at "
                              "ELSE cadencestate.next_check_at END"),
                          [(assignment_id, kind, at) for kind in CADENCE_KINDS])
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self.conn.close()


# --- measuring ----------------------------------------------------------------------------------------------------


def run(n: int, warmup: int, rounds: int, profile: int, keep: bool, postgres: str | None) -> dict[str, Any]:
    load_at_start = list(os.getloadavg())
    backends = {"sqlite": run_sqlite(n, warmup, rounds, profile, keep)}
    if postgres:
        databases = PostgresDatabases(postgres)
        try:
            backends["postgresql"] = measure(databases, n, warmup, rounds, profile)
        finally:
            databases.close()
    # the machine may be shared: other work skews absolute figures more than the same-run ratios
    return {"benchmark": "advance", "machine": machine(),
            "load_average": {"start": load_at_start, "end": list(os.getloadavg())}, "backends": backends}


def run_sqlite(n: int, warmup: int, rounds: int, profile: int, keep: bool) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="sojourn-bench-advance-"))
    try:
        return measure(SqliteFiles(workdir), n, warmup, rounds, profile)
    finally:
        if keep:
            print(f"databases kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def measure(files: SqliteFiles | PostgresDatabases, n: int, warmup: int, rounds: int,
            profile: int) -> dict[str, Any]:
    total = warmup + n + profile
    setup = prepare(files.service_url, total)
    files.copy_for_plain()
    before = files.counts("service")

    ids = list(range(1, total + 1))
    warm, timed, profiled = ids[:warmup], ids[warmup:warmup + n], ids[warmup + n:]
    service_advance = ServiceAdvance(files.service_url)
    contenders: dict[str, ServiceAdvance | PlainAdvance] = {"service": service_advance,
                                                            "plain": PlainAdvance(files)}
    latencies: dict[str, list[float]] = {k: [] for k in contenders}
    for advance in contenders.values():
        for assignment_id in warm:
            advance(assignment_id)

    clock = time.perf_counter
    # CPU time of this process: on a loaded machine it moves far less than wall time; on PostgreSQL it leaves out
    # the server's work, which both contenders share
    cpu = dict.fromkeys(contenders, 0.0)
    size = max(1, -(-len(timed) // rounds))
    for number, start in enumerate(range(0, len(timed), size)):
        chunk = timed[start:start + size]
        order = ["service", "plain"] if number % 2 == 0 else ["plain", "service"]
        for key in order:
            advance, sink = contenders[key], latencies[key]
            cpu_started = time.process_time()
            for assignment_id in chunk:
                t0 = clock()
                advance(assignment_id)
                sink.append(clock() - t0)
            cpu[key] += time.process_time() - cpu_started

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
            "cpu_ms_per_advance": cpu[key] / len(latencies[key]) * 1000 if latencies[key] else float("nan"),
            # advances/s of each round in order: a drift shows whether cost grows with the data already written
            "per_round": [len(chunk) / sum(chunk) for chunk in
                          (latencies[key][i:i + size] for i in range(0, len(latencies[key]), size)) if sum(chunk)],
        }
    after = {"service": files.counts("service"), "plain": files.counts("plain")}
    expected_moves = warmup + n
    for key, numbers in after.items():
        moved = expected_moves + (len(profiled) if key == "service" else 0)
        problems = []
        if numbers["plan_agreed"] != moved:
            problems.append(f"{numbers['plan_agreed']} assignments in plan_agreed, expected {moved}")
        per_table = (("transition", 1), ("task", 2), ("outbox", len(PLAN_AGREED_AUDIENCE)), ("audit_event", 1))
        for table_name, per_advance in per_table:
            added = numbers[table_name] - before[table_name]
            if added != per_advance * moved:
                problems.append(f"{table_name}: {added} rows added, expected {per_advance * moved}")
        if problems:
            raise SystemExit(f"{key}: the advances did not write what they should: {'; '.join(problems)}")
    if problems := audit_problems(files, expected_moves):
        raise SystemExit(f"the audit events are not sealed alike: {'; '.join(problems)}")

    ratio = results["plain"]["per_second"] / results["service"]["per_second"]
    return {
        "backend": files.backend,
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
    m, load = data["machine"], data["load_average"]
    lines = [f"advance throughput; {m['cpus']} CPUs, Python {m['python']}; load average (1, 5, 15 min) "
             f"{_load(load['start'])} at the start, {_load(load['end'])} at the end"]
    for backend in data["backends"].values():
        lines += ["", *_backend_report(backend)]
    return "\n".join(lines)


def _load(averages: list[float]) -> str:
    return ", ".join(f"{a:.2f}" for a in averages)


def _backend_report(data: dict[str, Any]) -> list[str]:
    r, p = data["results"], data["params"]
    lines = [f"{data['backend']}: {p['n']} timed advances each (after {p['warmup']} warm-up), {p['rounds']} "
             "interleaved rounds", ""]
    rows = [[v["name"], str(v["advances"]), f"{v['seconds']:.2f}", f"{v['per_second']:,.0f}", f"{v['p50_ms']:.2f}",
             f"{v['p95_ms']:.2f}", f"{v['p99_ms']:.2f}", f"{v['cpu_ms_per_advance']:.2f}"]
            for v in (r["service"], r["plain"])]
    lines.append(table(rows, ["contender", "advances", "seconds", "advances/s", "p50 ms", "p95 ms", "p99 ms",
                              "CPU ms"]))
    g = data["goals"]
    cpu_ratio = r["service"]["cpu_ms_per_advance"] / r["plain"]["cpu_ms_per_advance"]
    lines += ["", f"ratio plain/service: {data['ratio_plain_over_service']:.1f}x (the plain script's advances/s over "
                  f"the service's); in this process's CPU time per advance: {cpu_ratio:.1f}x",
              f"goal >= {GOAL_PER_SECOND:,} advances/s: {r['service']['per_second']:,.0f}/s -> "
              f"{verdict(g['per_second']['met'])}",
              f"goal within {GOAL_RATIO:g}x of the {r['plain']['name']}: {data['ratio_plain_over_service']:.1f}x -> "
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
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="timed advances per contender (default 10000)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed advances per contender first (default 20)")
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds (default 10)")
    parser.add_argument("--profile", type=int, default=0, metavar="K",
                        help="cProfile K extra service advances after the timed run and print the hot spots")
    parser.add_argument("--keep", action="store_true", help="keep the two database files and print where")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    parser.add_argument("--postgres", metavar="URL", help="also measure on PostgreSQL; URL of a database on the "
                        "server (scratch databases are created and dropped next to it)")
    args = parser.parse_args()
    if args.n < 1 or args.warmup < 0 or args.rounds < 1 or args.profile < 0:
        parser.error("--n and --rounds must be at least 1; --warmup and --profile at least 0")
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the report (or the one JSON document)
        data = run(args.n, args.warmup, args.rounds, args.profile, args.keep, args.postgres)
    print(json.dumps(data, indent=2) if args.json else report(data))


if __name__ == "__main__":
    main()
