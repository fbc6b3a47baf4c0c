"""Audit time: `sojourn audit verify` over N assignments against a plain SQL script reading the same rows, and the time
of `sojourn person erase` for a person named in 1,000 events.

Prepares the database of `bench/report.py` (N leadership-development assignments with a varied stage history, tasks
and contacts, bulk-inserted; see its docstring), then seals each assignment's audit chain as the use cases would
have (not timed): `assignment_created`, one `stage_changed` per stage change, one `task_completed` per task done
and one `contact_logged` per contact, in the order they happened, each sealed with `engine.program.audit.seal` (its
strings committed under a fresh secret) and chained to the one before; the assignment rows get their heads. The first
events in order, up to 1,000, are made the acts of one person, `leaver@example.com`, who holds no role.

- service:  `engine.program.audit.verify_audit(db)`: every chain's hashes recomputed from the committed strings, the
            heads checked, and every stage change, completed task, sign-off, contact, check-in, pulse and outcome held
            against its event.
- baseline: plain `sqlite3` reading the same rows (events with their secrets, heads, and the rows of the seven
            tables the check compares) with `fetchall`, and computing nothing.

The two alternate over the rounds, the order flipping each round, and must count the same events and assignments.
There is no goal for the ratio: the baseline only reads, the service hashes every string. Then `person erase` of
the leaver runs on fresh copies of the file, beside a plain `VACUUM` of the same copy (which the erase ends with on
SQLite), and `audit verify` of the chains it touched must pass afterwards.

    .venv/bin/python bench/audit_verify.py              # N=10,000
    .venv/bin/python bench/audit_verify.py --n 1000     # quick check
    .venv/bin/python bench/audit_verify.py --json       # one JSON document on stdout
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import interleaved_rounds, machine, median, race_lines, race_result
from report import NOW, SQLITE_INSTANT, prepare, quiet_logging

LEAVER = ("leaver@example.com", "Lee Leaver")
LEAVER_EVENTS = 1_000
ACTOR = "bench@example.com"


# --- sealing the chains -------------------------------------------------------------------------------------------


def seal_chains(path: Path) -> dict[str, int]:
    """Every assignment's audit chain, sealed from its rows in the order they happened; tasks done get their
    `completed_by`. The first LEAVER_EVENTS events are the leaver's acts."""
    from engine.program import audit

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    conn.execute("INSERT INTO person (email, name, tz) VALUES (?, ?, 'UTC')", LEAVER)
    conn.execute("UPDATE task SET completed_by = ? WHERE status = 'done'", (ACTOR,))
    entries = _entries(conn)
    rows, heads, acted = [], [], 0
    for assignment_id, events in sorted(entries.items()):
        prev, seq = None, 0
        for at, action, details, table, row_id in sorted(events, key=lambda e: (e[0], e[1] != "assignment_created")):
            seq += 1
            actor = ACTOR
            if acted < LEAVER_EVENTS and action != "assignment_created":
                actor, acted = LEAVER[0], acted + 1
                if table is not None:
                    conn.execute(f'UPDATE "{table}" SET {_ACTOR_COLUMN[table]} = ? WHERE id = ?', (actor, row_id))
            event = audit.seal(assignment_id, seq, at, actor, action, details, prev)
            rows.append((assignment_id, seq, _instant(at), actor, action, event.details, prev, event.hash,
                         event.secret))
            prev = event.hash
        heads.append((seq, prev, assignment_id))
    conn.executemany("INSERT INTO audit_event (assignment_id, seq, at, actor, action, details, prev_hash, hash, "
                     "secret) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.executemany("UPDATE assignment SET audit_seq = ?, audit_head = ? WHERE id = ?", heads)
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return {"audit_event": len(rows), "leaver_events": acted}


_ACTOR_COLUMN = {"transition": "actor", "task": "completed_by", "contact": "logged_by"}


def _entries(conn: sqlite3.Connection) -> dict[int, list[tuple[datetime, str, dict[str, Any], str | None, int]]]:
    """assignment id -> (at, action, details, table, row id) of every event its rows call for."""
    emails = dict(conn.execute("SELECT id, email FROM person"))
    found: dict[int, list[tuple[datetime, str, dict[str, Any], str | None, int]]] = {}
    holders: dict[int, dict[str, str]] = {}
    for assignment_id, role, person_id in conn.execute("SELECT assignment_id, role, person_id FROM stakeholder"):
        holders.setdefault(assignment_id, {})[role] = emails[person_id]
    for a, assignee, home, host, start, end, created in conn.execute(
            'SELECT id, assignee_id, home, host, start, "end", created_at FROM assignment'):
        details = {"workflow": "leadership-development", "workflow_version": 1, "assignee": emails[assignee],
                   "home": home, "host": host, "start": start, "end": end, "stakeholders": holders.get(a, {})}
        found.setdefault(a, []).append((_read(created), "assignment_created", details, None, a))
    for row_id, a, source, dest, at, reason in conn.execute(
            'SELECT id, assignment_id, from_stage, to_stage, at, reason FROM "transition" ORDER BY id'):
        found[a].append((_read(at), "stage_changed", {"from": source, "to": dest, "reason": reason}, "transition",
                         row_id))
    for row_id, a, key, at, note in conn.execute(
            "SELECT id, assignment_id, key, completed_at, note FROM task WHERE status = 'done'"):
        found[a].append((_read(at), "task_completed", {"task": row_id, "key": key, "note": note}, "task", row_id))
    for row_id, a, kind, with_id, on, notes, at in conn.execute(
            'SELECT id, assignment_id, kind, with_person_id, "on", notes, logged_at FROM contact'):
        found[a].append((_read(at), "contact_logged", {"contact": row_id, "kind": kind, "with": emails[with_id],
                                                        "on": on, "notes": notes}, "contact", row_id))
    return found


def _read(value: str) -> datetime:
    return datetime.strptime(value, SQLITE_INSTANT).replace(tzinfo=UTC)


def _instant(value: datetime) -> str:
    return value.strftime(SQLITE_INSTANT)


# --- the two contenders -----------------------------------------------------------------------------------------


class ServiceVerify:
    name = "sojourn audit verify (engine)"

    def __init__(self, path: Path) -> None:
        from engine.program.audit import verify_audit
        from engine.store.db import open_db

        self._verify = verify_audit
        self.db = open_db(f"sqlite:///{path}")

    def __call__(self) -> dict[str, Any]:
        report = self._verify(self.db)
        if not report.intact:
            raise SystemExit(f"the prepared trail does not verify: {[p.view() for p in report.problems[:3]]}")
        return {"events": report.events, "assignments": report.assignments}

    def close(self) -> None:
        self.db.dispose()


PLAIN_READS = (
    "SELECT id, assignment_id, seq, at, actor, action, details, prev_hash, hash, secret, erased FROM audit_event "
    "ORDER BY assignment_id, seq",
    "SELECT id, audit_seq, audit_head FROM assignment ORDER BY id",
    'SELECT id, assignment_id, from_stage, to_stage, at, actor, reason FROM "transition" ORDER BY assignment_id, id',
    "SELECT id, assignment_id, key, status, completed_at, completed_by, note FROM task "
    "WHERE status = 'done' OR completed_by IS NOT NULL ORDER BY assignment_id, id",
    "SELECT id, assignment_id, role, person_id, plan_version, signed_at, recorded_by FROM signoff",
    'SELECT id, assignment_id, kind, with_person_id, "on", notes, logged_by, logged_at FROM contact',
    "SELECT id, assignment_id, person_id, role, at, note, feedback FROM checkin",
    "SELECT checkin_id, goal_id, percent FROM goal_progress",
    "SELECT id, assignment_id, person_id, at, expectancy, instrumentality, valence, note, alert_reason, resolved_at "
    "FROM pulse",
    "SELECT * FROM outcome",
    "SELECT outcome_id, name, before, after FROM outcome_competency",
    "SELECT id, email FROM person",
)


class PlainRead:
    name = "plain sqlite3 reading the same rows"

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path)

    def __call__(self) -> dict[str, Any]:
        fetched = [self.conn.execute(statement).fetchall() for statement in PLAIN_READS]
        return {"events": len(fetched[0]), "assignments": len(fetched[1])}

    def close(self) -> None:
        self.conn.close()


def same_figures(engine: dict[str, Any], plain: dict[str, Any]) -> list[str]:
    return [key for key in ("events", "assignments") if engine[key] != plain[key]]


# --- erasing the leaver -------------------------------------------------------------------------------------------


def time_erasures(path: Path, workdir: Path, rounds: int) -> dict[str, Any]:
    """`person erase` of the leaver on fresh copies of the file, each beside a plain VACUUM of another copy."""
    from engine.program.audit import verify_audit
    from engine.program.privacy import erase_person
    from engine.store.db import open_db

    erase_s, vacuum_s, rewritten = [], [], 0
    for number in range(rounds):
        copy = workdir / f"erase{number}.db"
        shutil.copyfile(path, copy)
        db = open_db(f"sqlite:///{copy}")
        started = time.perf_counter()
        erased = erase_person(db, LEAVER[0], reason="left the company", actor=ACTOR, now=NOW)
        erase_s.append(time.perf_counter() - started)
        rewritten = erased.events_rewritten
        if not all(verify_audit(db, assignment_id=a).intact for a in erased.assignments):
            raise SystemExit("the chains the erasure touched do not verify")
        db.dispose()
        copy.unlink()
        shutil.copyfile(path, copy)
        conn = sqlite3.connect(copy, isolation_level=None)
        started = time.perf_counter()
        conn.execute("VACUUM")
        vacuum_s.append(time.perf_counter() - started)
        conn.close()
        copy.unlink()
    return {"rounds": rounds, "events_rewritten": rewritten, "erase_median_s": median(erase_s),
            "vacuum_median_s": median(vacuum_s), "erase_s": erase_s, "vacuum_s": vacuum_s,
            "file_mb": path.stat().st_size / 1e6}


def run(n: int, rounds: int, erase_rounds: int, seed: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sojourn-bench-audit-") as workdir:
        path = Path(workdir) / "audit.db"
        prepared = prepare(path, n, seed)
        prepared["rows"].update(seal_chains(path))
        contenders: list[ServiceVerify | PlainRead] = [ServiceVerify(path), PlainRead(path)]
        try:
            times, results = interleaved_rounds(contenders, rounds)
        finally:
            for contender in contenders:
                contender.close()
        erasure = time_erasures(path, Path(workdir), erase_rounds)
    engine_name, plain_name = (c.name for c in contenders)
    data = race_result(times, engine_name, plain_name, float("inf"), results[engine_name], same_figures, results,
                       {"n": n, "rounds": rounds, "seed": seed, "now": NOW.isoformat(), **prepared})
    events = results[engine_name]["events"]
    return {**data, "events_per_s": events / data["results"][engine_name]["median_s"], "erase": erasure,
            "machine": machine()}


def describe(data: dict[str, Any]) -> str:
    erase = data["erase"]
    lines = race_lines("audit verify", data)
    lines[-1] = (f"ratio {data['ratio']:.1f}x (no goal: the baseline only reads); {data['events_per_s']:,.0f} events "
                 f"verified per second ({data['figures']})")
    return "\n".join([*lines,
                      f"person erase of a person named in {erase['events_rewritten']} events: median "
                      f"{erase['erase_median_s']:.2f} s over {erase['rounds']} copies; a plain VACUUM of the same "
                      f"{erase['file_mb']:.0f} MB file took {erase['vacuum_median_s']:.2f} s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="assignments (default 10000)")
    parser.add_argument("--rounds", type=int, default=2, help="timed runs of each contender (default 2)")
    parser.add_argument("--erase-rounds", type=int, default=1, help="erasures timed, each on a copy (default 1)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated history (default 7)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    quiet_logging()
    data = run(args.n, args.rounds, args.erase_rounds, args.seed)
    print(json.dumps(data, indent=2) if args.json else describe(data))


if __name__ == "__main__":
    main()
