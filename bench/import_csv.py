"""CSV import throughput: `engine.program.imports.import_assignments` of 10,000 lines against a plain DB-API script, one
run.

Prepares a database with the 6 stakeholders of the test suite's cast and N distinct assignees (people are not part of
the import; they are inserted with SQL, untimed), writes an HR export of N leadership-development assignments, copies
the database for the baseline, then imports the file, one transaction for the whole file:

- service:  `engine.program.imports.import_assignments(db, csv_text, source=..., actor=..., now=...)`, which checks
            every line, writes all of them and returns the JSON views; each line becomes 1 assignment, 6 stakeholder
            rows, 1 history row, 2 task rows, 3 outbox rows, 4 cadence checks and 2 audit events.
- baseline: the plain driver (`sqlite3` with the service's PRAGMAs, or `psycopg`) on the copy: BEGIN; parse the file
            with `csv`; look the people up by email; insert the same rows with `executemany` (the assignments one by
            one, as their ids are needed), seal the 2 audit events of each line as the engine does (each string a
            salted SHA-256 commitment under a fresh secret, chained: `_common.seal_event`), insert them with their
            secrets and set each assignment's audit head; COMMIT. It checks nothing and builds no views: the floor
            of the writes.

Each round imports into a fresh copy, service and baseline alternating. Afterwards both must have written the same
number of rows in every table and the same audit events (secrets and hashes aside), and the engine's `audit verify`
must pass on the plain import. Reports lines/s, the CPU time of this
process (on PostgreSQL it leaves out the server's work) and the ratio. Goal: at least 1,000 lines/s through the
service.

    .venv/bin/python bench/import_csv.py              # SQLite, 10,000 lines, 3 rounds
    .venv/bin/python bench/import_csv.py --n 1000     # quick check
    .venv/bin/python bench/import_csv.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/import_csv.py --json       # one JSON document on stdout
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import logging
import os
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import ASSIGNMENT, CAST, WORKFLOW, machine, median, seal_event, stakeholders, table, verdict
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

GOAL_PER_SECOND = 1_000
ACTOR = "bench@example.com"
CREATED_AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
BUSY_TIMEOUT_MS = 10_000
SQLITE_INSTANT = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a UTC instant in SQLite
COLUMNS = ["workflow", "assignee", "home", "host", "start", "end", *stakeholders()]


def quiet_logging() -> None:
    """Log as the CLI does without -v (warnings and up, on stderr)."""
    from engine.program.logging import configure_logging

    configure_logging("console", logging.WARNING)


def assignee_email(number: int) -> str:
    return f"assignee{number:05d}@example.com"


def hr_export(lines: int) -> str:
    """The CSV file an HR system would export: one assignment a line, every stakeholder column filled."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for number in range(1, lines + 1):
        writer.writerow([WORKFLOW, assignee_email(number), ASSIGNMENT["home"], ASSIGNMENT["host"],
                         ASSIGNMENT["start"], ASSIGNMENT["end"], *stakeholders().values()])
    return out.getvalue()


def prepare(url: str, lines: int) -> float:
    """Schema, workflows, the 6 stakeholders through the service; N assignees with one multi-row insert."""
    from engine.program import workflows
    from engine.program.people import add_person
    from engine.store.db import open_db

    quiet_logging()
    started = time.perf_counter()
    db = open_db(url)
    workflows.init(db, now=CREATED_AT)
    for role, (email, name, tz) in CAST.items():
        if role != "assignee":
            add_person(db, email, name=name, tz=tz)
    with db.begin() as c:
        c.execute(text("INSERT INTO person (email, name, tz) VALUES (:email, :name, :tz)"),
                  [{"email": assignee_email(i), "name": f"Assignee {i}", "tz": "America/Sao_Paulo"}
                   for i in range(1, lines + 1)])
    db.dispose()
    return time.perf_counter() - started


class SqliteFiles:
    """A prepared database file and a fresh copy of it per contender and round."""

    backend = "sqlite"
    driver = "sqlite3"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.template = workdir / "template.db"
        self.url = f"sqlite:///{self.template}"

    def fresh(self, name: str) -> str:
        conn = sqlite3.connect(self.template)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        target = self.workdir / f"{name}.db"
        for leftover in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
            leftover.unlink(missing_ok=True)
        shutil.copyfile(self.template, target)
        return f"sqlite:///{target}"

    def connect(self, url: str) -> Any:
        conn = sqlite3.connect(make_url(url).database or "", isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        for pragma in ("journal_mode=WAL", f"busy_timeout={BUSY_TIMEOUT_MS}", "foreign_keys=ON", "synchronous=NORMAL"):
            conn.execute(f"PRAGMA {pragma}")
        return conn

    def close(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)


class PostgresDatabases:
    """A prepared scratch database on one PostgreSQL server, copied (CREATE DATABASE ... TEMPLATE) for each import."""

    backend = "postgresql"
    driver = "psycopg"

    def __init__(self, admin_url: str) -> None:
        self.admin_url = make_url(admin_url)
        self.admin = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        self.prefix = f"sojourn_bench_import_{uuid.uuid4().hex[:8]}"
        self.names = [f"{self.prefix}_template"]
        with self.admin.connect() as c:
            c.exec_driver_sql(f'CREATE DATABASE "{self.names[0]}"')
        self.url = self.admin_url.set(database=self.names[0]).render_as_string(hide_password=False)

    def fresh(self, name: str) -> str:
        database = f"{self.prefix}_{name}"
        with self.admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            c.exec_driver_sql(f'CREATE DATABASE "{database}" TEMPLATE "{self.names[0]}"')
        self.names.append(database)
        url = self.admin_url.set(database=database).render_as_string(hide_password=False)
        with contextlib.closing(self.connect(url)) as conn:
            conn.execute("ANALYZE")
        return url

    def connect(self, url: str) -> Any:
        import psycopg

        parsed = make_url(url)
        return psycopg.connect(host=parsed.host, port=parsed.port, user=parsed.username, password=parsed.password,
                               dbname=parsed.database, autocommit=True)

    def close(self) -> None:
        with self.admin.connect() as c:
            for name in self.names:
                c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.admin.dispose()


def service_import(url: str, csv_text: str) -> int:
    from engine.program import imports
    from engine.store.db import open_db

    db = open_db(url)
    try:
        return len(imports.import_assignments(db, csv_text, source="hr.csv", actor=ACTOR, now=CREATED_AT))
    finally:
        db.dispose()


# What a hand-written script hard-codes about leadership-development: the first stage, its tasks, the cadences.
FIRST_STAGE = "interviews"
# Who the built-in workflow tells of entering interviews: stage_changes.notify and the coach, who owns its tasks.
INTERVIEWS_AUDIENCE = ("assignee", "coach", "mobility")
FIRST_TASKS = [("interview_assignee", "Interview the assignee on expectations, what to learn and which skills to "
                "build", "coach", 14),
               ("interview_sending_manager", "Interview the sending manager on what would most improve the home "
                "organisation on return", "coach", 14)]
CADENCE_KINDS = ("sponsor_contact", "coaching", "checkin", "pulse")


def plain_import(conn: Any, sqlite: bool, csv_text: str) -> int:
    """The same rows written by hand: no checks, no views, hard-coded templates."""
    c = conn.cursor()

    def sql(statement: str) -> str:
        return statement if sqlite else statement.replace("?", "%s")

    def instant(value: datetime) -> Any:
        return value.strftime(SQLITE_INSTANT) if sqlite else value

    now = instant(CREATED_AT)
    c.execute("BEGIN")
    try:
        rows = list(csv.DictReader(io.StringIO(csv_text)))
        emails = sorted({r[k] for r in rows for k in ("assignee", *stakeholders())})
        people: dict[str, tuple[int, str]] = {}
        for start in range(0, len(emails), 500):
            chunk = emails[start:start + 500]
            found = c.execute(sql(f"SELECT email, id, name FROM person WHERE email IN ({', '.join('?' * len(chunk))})"),
                              chunk).fetchall()
            people.update({email: (pid, name) for email, pid, name in found})
        workflow = c.execute(sql("SELECT id, version FROM workflow WHERE name = ? ORDER BY version DESC"),
                             (WORKFLOW,)).fetchone()
        ids = [c.execute(sql("INSERT INTO assignment (workflow_id, assignee_id, stage, home, host, start, \"end\", "
                             "plan_version, stage_entered_at, created_at, row_version) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?, 1) RETURNING id"),
                         (workflow[0], people[r["assignee"]][0], FIRST_STAGE, r["home"], r["host"],
                          date.fromisoformat(r["start"]), date.fromisoformat(r["end"]), now, now)).fetchone()[0]
               for r in rows]
        c.executemany(sql("INSERT INTO stakeholder (assignment_id, role, person_id) VALUES (?, ?, ?)"),
                      [(a, role, people[r[role]][0]) for a, r in zip(ids, rows, strict=True)
                       for role in stakeholders()])
        history = [c.execute(sql('INSERT INTO "transition" (assignment_id, from_stage, to_stage, at, actor, reason, '
                                 "workflow_version) VALUES (?, NULL, ?, ?, ?, 'created', ?) RETURNING id"),
                             (a, FIRST_STAGE, now, ACTOR, workflow[1])).fetchone()[0] for a in ids]
        due_on = CREATED_AT.date() + timedelta(days=14)
        due_at = instant(datetime.combine(due_on, datetime.max.time(), UTC).replace(microsecond=0))
        reminder = instant(datetime.combine(due_on - timedelta(days=3), datetime.min.time(), UTC).replace(hour=9))
        coach = people[stakeholders()["coach"]][0]
        c.executemany(sql("INSERT INTO task (assignment_id, key, title, description, stage, owner_role, owner_id, "
                          "due_on, due_at, status, next_reminder_at) VALUES (?, ?, ?, '', ?, ?, ?, ?, ?, 'open', ?)"),
                      [(a, key, title, FIRST_STAGE, role, coach, due_on, due_at, reminder)
                       for a in ids for key, title, role, _ in FIRST_TASKS])
        notices = []
        for a, h, r in zip(ids, history, rows, strict=True):
            subject = f"Assignment #{a} ({people[r['assignee']][1]}, {r['home']} to {r['host']}): created in stage " \
                      f"{FIRST_STAGE}"
            for role in sorted(INTERVIEWS_AUDIENCE):
                body = f"{subject}, by {ACTOR}.\nReason: created"
                notices.append((f"stage_changed/{h}/{role}", a, r[role], role, subject, body, now, now, now))
        c.executemany(sql('INSERT INTO outbox ("key", kind, assignment_id, recipient, role, subject, body, created_at, '
                          "deliver_at, status, attempts, next_attempt_at, delivered_to) VALUES (?, 'stage_changed', "
                          "?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, '[]') ON CONFLICT (\"key\") DO NOTHING"), notices)
        c.executemany(sql("INSERT INTO cadencestate (assignment_id, kind, next_check_at) VALUES (?, ?, ?) "
                          "ON CONFLICT (assignment_id, kind) DO NOTHING"),
                      [(a, kind, now) for a in ids for kind in CADENCE_KINDS])
        events, heads = [], []
        for a, r in zip(ids, rows, strict=True):
            previous = None
            created = {"workflow": r["workflow"], "workflow_version": workflow[1], "assignee": r["assignee"],
                       "home": r["home"], "host": r["host"], "start": r["start"], "end": r["end"],
                       "stakeholders": {role: r[role] for role in ("assignee", *stakeholders())}}
            for seq, (action, details) in enumerate([("assignment_created", created),
                                                     ("stage_changed", {"from": None, "to": FIRST_STAGE,
                                                                        "reason": "created"})], start=1):
                text, secret, digest = seal_event(a, seq, CREATED_AT, ACTOR, action, details, previous)
                events.append((a, seq, now, ACTOR, action, text, previous, digest, secret))
                previous = digest
            heads.append((2, previous, a))
        c.executemany(sql("INSERT INTO audit_event (assignment_id, seq, at, actor, action, details, prev_hash, hash, "
                          "secret) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"), events)
        c.executemany(sql("UPDATE assignment SET audit_seq = ?, audit_head = ? WHERE id = ?"), heads)
        c.execute("COMMIT")
    except BaseException:
        c.execute("ROLLBACK")
        raise
    return len(ids)


def events(conn: Any) -> list[tuple[Any, ...]]:
    """The audit events as stored, but for what is random in each: its secret and hash."""
    return [tuple(row) for row in conn.cursor().execute(
        "SELECT assignment_id, seq, at, actor, action, details, secret IS NOT NULL, erased FROM audit_event "
        "ORDER BY assignment_id, seq").fetchall()]


def audit_problems(databases: SqliteFiles | PostgresDatabases, urls: dict[str, str]) -> list[str]:
    """What differs between the audit events of the two imports, and what the engine's `audit verify` finds wrong
    with the plain import's chains: every hash recomputed from the committed strings, the heads, and the history
    and task rows held against their events. Not timed."""
    from engine.program.audit import verify_audit
    from engine.store.db import open_db

    stored = {}
    for key, url in urls.items():
        with contextlib.closing(databases.connect(url)) as conn:
            stored[key] = events(conn)
    service, plain = stored["service"], stored["plain"]
    problems = [f"the plain script wrote {len(plain)} events, the service {len(service)}"] if len(plain) != len(
        service) else []
    problems += [f"event {s[:2]} differs: service {s[2:]}, plain {p[2:]}"
                 for s, p in zip(service, plain, strict=False) if s != p][:3]
    db = open_db(urls["plain"])
    try:
        problems += [f"plain: {p.message}" for p in verify_audit(db).problems[:3]]
    finally:
        db.dispose()
    return problems


def counts(conn: Any) -> dict[str, int]:
    cursor = conn.cursor()
    return {name: int(cursor.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0])
            for name in ("assignment", "stakeholder", "transition", "task", "outbox", "cadencestate", "audit_event")}


def measure(databases: SqliteFiles | PostgresDatabases, lines: int, rounds: int) -> dict[str, Any]:
    setup_s = prepare(databases.url, lines)
    csv_text = hr_export(lines)
    seconds: dict[str, list[float]] = {"service": [], "plain": []}
    cpu: dict[str, list[float]] = {"service": [], "plain": []}
    written: dict[str, dict[str, int]] = {}
    urls: dict[str, str] = {}
    for number in range(rounds):
        for key in (["service", "plain"] if number % 2 == 0 else ["plain", "service"]):
            url = urls[key] = databases.fresh(f"{key}_{number}")
            started, cpu_started = time.perf_counter(), time.process_time()
            if key == "service":
                imported = service_import(url, csv_text)
            else:
                with contextlib.closing(databases.connect(url)) as conn:
                    imported = plain_import(conn, databases.backend == "sqlite", csv_text)
            seconds[key].append(time.perf_counter() - started)
            cpu[key].append(time.process_time() - cpu_started)
            assert imported == lines, (key, imported)
            with contextlib.closing(databases.connect(url)) as conn:
                written[key] = counts(conn)
    if written["service"] != written["plain"]:
        raise SystemExit(f"the two imports wrote different rows: {written}")
    if problems := audit_problems(databases, urls):
        raise SystemExit(f"the audit events are not sealed alike: {'; '.join(problems)}")
    results = {key: {"name": "imports.import_assignments" if key == "service" else f"plain {databases.driver} script",
                     "median_s": median(values), "min_s": min(values), "max_s": max(values),
                     "per_second": lines / median(values), "median_cpu_s": median(cpu[key])}
               for key, values in seconds.items()}
    ratio = results["service"]["median_s"] / results["plain"]["median_s"]
    return {"backend": databases.backend, "lines": lines, "rounds": rounds, "setup_s": setup_s, "rows": written,
            "results": results, "ratio_service_over_plain": ratio,
            "goal": {"per_second": GOAL_PER_SECOND, "value": results["service"]["per_second"],
                     "met": results["service"]["per_second"] >= GOAL_PER_SECOND}}


def run(lines: int, rounds: int, postgres: str | None) -> dict[str, Any]:
    load_at_start = list(os.getloadavg())
    backends = {}
    candidates: list[Any] = [lambda: SqliteFiles(Path(tempfile.mkdtemp(prefix="sojourn-bench-import-")))]
    if postgres:
        candidates.append(lambda: PostgresDatabases(postgres))
    for make in candidates:
        databases = make()
        try:
            backends[databases.backend] = measure(databases, lines, rounds)
        finally:
            databases.close()
    # the machine may be shared: other work skews absolute figures more than the same-run ratios
    return {"benchmark": "import_csv", "machine": machine(),
            "load_average": {"start": load_at_start, "end": list(os.getloadavg())}, "backends": backends}


def report(data: dict[str, Any]) -> str:
    m, load = data["machine"], data["load_average"]
    lines = [f"CSV import throughput; {m['cpus']} CPUs, Python {m['python']}; load average (1, 5, 15 min) "
             f"{', '.join(f'{a:.2f}' for a in load['start'])} at the start, "
             f"{', '.join(f'{a:.2f}' for a in load['end'])} at the end"]
    for b in data["backends"].values():
        r = b["results"]
        lines += ["", f"{b['backend']}: {b['lines']:,} lines, one transaction, {b['rounds']} rounds (fresh copy each)",
                  ""]
        lines.append(table([[v["name"], f"{v['median_s']:.2f}", f"{v['min_s']:.2f}", f"{v['max_s']:.2f}",
                             f"{v['per_second']:,.0f}", f"{v['median_cpu_s']:.2f}"]
                            for v in (r["service"], r["plain"])],
                           ["contender", "median s", "min s", "max s", "lines/s", "CPU s"]))
        lines += ["", f"ratio service/plain: {b['ratio_service_over_plain']:.1f}x (the plain script checks nothing "
                      "and returns nothing)",
                  f"goal >= {GOAL_PER_SECOND:,} lines/s: {r['service']['per_second']:,.0f}/s -> "
                  f"{verdict(b['goal']['met'])}"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="lines in the CSV file (default 10000)")
    parser.add_argument("--rounds", type=int, default=3, help="imports per contender (default 3)")
    parser.add_argument("--postgres", metavar="URL", help="also measure on PostgreSQL; URL of a database on the "
                        "server (scratch databases are created and dropped next to it)")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    args = parser.parse_args()
    if args.n < 1 or args.rounds < 1:
        parser.error("--n and --rounds must be at least 1")
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the report (or the one JSON document)
        data = run(args.n, args.rounds, args.postgres)
    print(json.dumps(data, indent=2) if args.json else report(data))


if __name__ == "__main__":
    main()
