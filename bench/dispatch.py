"""Dispatch throughput to the file notifier: the daemon's sweep against plain Python doing the same, in one run.

One SQLite file holds N due notifications (pending, deliver_at in the past). Three contenders send all N to a
JSON Lines file, the same lines each time:

- daemon:  `engine.delivery.daemon.Daemon.sweep()` with `[notifiers.file]`, as `sojourn daemon` runs it: claims of 50
           committed before sending, the file notifier's O_APPEND write per line, each outcome committed on its
           own, a JSON log line per notification (to /dev/null here).
- plain dispatcher: a `sqlite3` script keeping the same guarantees by hand: claim 50 rows in one transaction,
           write each line with one os.write, mark each row sent in its own transaction.
- plain lines: `json.dumps` and one os.write per line of the same notifications, already in memory: the floor.

Between runs the outbox is put back to pending (untimed). The contenders alternate in rounds so machine noise
falls on all alike. Goal: the daemon sends at least 2,000 notifications/s.

    .venv/bin/python bench/dispatch.py                 # N=20,000, 3 rounds (about a minute)
    .venv/bin/python bench/dispatch.py --small         # N=2,000, quick check
    .venv/bin/python bench/dispatch.py --profile       # also cProfile one daemon run and list the hot spots
    .venv/bin/python bench/dispatch.py --json
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
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import CAST, machine, median, short_path, table, verdict

GOAL_PER_SECOND = 2_000
ACTOR = "bench@example.com"
CREATED_AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
BATCH = 50
SQLITE_INSTANT = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores a UTC instant in SQLite
BUSY_TIMEOUT_MS = 10_000


def prepare(path: Path, total: int) -> None:
    """An initialised database with `total` notifications due now, on one assignment that plans nothing more."""
    from engine.domain.notices import NewNotice, NoticeKind
    from engine.program import assignments, workflows
    from engine.program.logging import configure_logging
    from engine.store import queries
    from engine.store.db import open_db, transaction
    from tests.support.scenarios import add_cast, cast_spec, silence_planning

    configure_logging("console", logging.WARNING)
    db = open_db(f"sqlite:///{path}")
    workflows.init(db, now=CREATED_AT)
    add_cast(db)
    assignment = int(assignments.create_assignment(db, cast_spec(), actor=ACTOR, now=CREATED_AT).id)
    due = datetime.now(UTC) - timedelta(hours=1)
    body = ("Assignment #1 (Ana Lima, BR to DE): your task 'Interview the assignee on expectations' is due on "
            "2026-03-16.\nWhen it is done: sojourn task done 1")
    rows = [NewNotice(key=f"task_due/{n}", kind=NoticeKind.TASK_DUE, assignment_id=assignment, task_id=None,
                      recipient=CAST["coach"][0], role="coach", subject=f"Due today: interview number {n}", body=body,
                      created_at=due, deliver_at=due) for n in range(total)]
    silence_planning(db)
    with transaction(db) as session:
        assert queries.insert_notifications(session, rows) == total
    db.dispose()


def reset(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute("UPDATE outbox SET status = 'pending', attempts = 0, sent_at = NULL, delivered_to = '[]', "
                 "claimed_by = NULL, claimed_until = NULL, last_error = NULL")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def sent_count(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM outbox WHERE status = 'sent'").fetchone()[0])
    finally:
        conn.close()


# --- the contenders -----------------------------------------------------------------------------------------------


class DaemonSweep:
    name = "daemon sweep (engine.delivery.daemon)"

    def __init__(self, path: Path, out: Path) -> None:
        from engine.delivery.config import DeliveryPolicy, Routing
        from engine.delivery.daemon import Daemon
        from engine.store.db import open_db
        from notifiers.file import FileNotifier

        self.engine = open_db(f"sqlite:///{path}")
        self.notifier = FileNotifier(out)
        # a long interval only lifts the per-sweep dispatch budget, so one sweep sends everything
        self.daemon = Daemon(self.engine, [self.notifier], routing=Routing({}), policy=DeliveryPolicy(),
                             interval_seconds=3600)

    def __call__(self) -> int:
        from engine.program.logging import configure_logging

        configure_logging("json")  # as `sojourn daemon` logs: a JSON line per notification
        with Path(os.devnull).open("w") as sink, contextlib.redirect_stderr(sink):
            self.daemon.start()
            report = self.daemon.sweep()
            self.daemon.stop()
        self.notifier.close()
        return report.dispatched.sent

    def close(self) -> None:
        self.engine.dispose()


class PlainDispatcher:
    name = "plain sqlite3 dispatcher"

    def __init__(self, path: Path, out: Path) -> None:
        self.path, self.out = path, out

    def __call__(self) -> int:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        for pragma in ("journal_mode=WAL", f"busy_timeout={BUSY_TIMEOUT_MS}", "foreign_keys=ON", "synchronous=NORMAL"):
            conn.execute(f"PRAGMA {pragma}")
        fd = os.open(self.out, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
        holder = f"plain:{os.getpid()}"
        sent = 0
        try:
            while True:
                rows = self._claim(conn, holder)
                for row in rows:
                    os.write(fd, json_line(row).encode())
                    now = datetime.now(UTC).strftime(SQLITE_INSTANT)
                    conn.execute("BEGIN IMMEDIATE")
                    conn.execute("UPDATE outbox SET status = 'sent', sent_at = ?, attempts = attempts + 1, "
                                 "delivered_to = '[\"file\"]', last_error = NULL, claimed_by = NULL, "
                                 "claimed_until = NULL WHERE id = ? AND claimed_by = ?", (now, row["id"], holder))
                    conn.execute("COMMIT")
                    sent += 1
                if len(rows) < BATCH:
                    return sent
        finally:
            os.close(fd)
            conn.close()

    @staticmethod
    def _claim(conn: sqlite3.Connection, holder: str) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        at, until = now.strftime(SQLITE_INSTANT), (now + timedelta(minutes=5)).strftime(SQLITE_INSTANT)
        conn.execute("BEGIN IMMEDIATE")
        ids = [r[0] for r in conn.execute(
            "SELECT id FROM outbox WHERE status IN ('pending', 'failed') AND next_attempt_at <= ? "
            "AND (claimed_until IS NULL OR claimed_until <= ?) ORDER BY next_attempt_at, id LIMIT ?",
            (at, at, BATCH))]
        marks = ", ".join("?" * len(ids))
        rows: list[dict[str, Any]] = []
        if ids:
            conn.execute(f"UPDATE outbox SET claimed_by = ?, claimed_until = ? WHERE id IN ({marks})",
                         (holder, until, *ids))
            cursor = conn.execute("SELECT id, key, kind, assignment_id, task_id, recipient, role, subject, body, "
                                  f"created_at FROM outbox WHERE id IN ({marks}) ORDER BY next_attempt_at, id", ids)
            names = [d[0] for d in cursor.description]
            rows = [dict(zip(names, r, strict=True)) for r in cursor]
        conn.execute("COMMIT")
        return rows


class PlainLines:
    name = "plain JSON lines (no database)"

    def __init__(self, path: Path, out: Path) -> None:
        self.out = out
        conn = sqlite3.connect(path)
        cursor = conn.execute("SELECT id, key, kind, assignment_id, task_id, recipient, role, subject, body, "
                              "created_at FROM outbox ORDER BY next_attempt_at, id")
        names = [d[0] for d in cursor.description]
        self.rows = [dict(zip(names, r, strict=True)) for r in cursor]
        conn.close()

    def __call__(self) -> int:
        fd = os.open(self.out, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            for row in self.rows:
                os.write(fd, json_line(row).encode())
        finally:
            os.close(fd)
        return len(self.rows)


def json_line(row: dict[str, Any]) -> str:
    """The line the file notifier writes for an outbox row read with sqlite3."""
    created = datetime.fromisoformat(row["created_at"]).replace(tzinfo=UTC).isoformat()
    fields = {"key": row["key"], "kind": row["kind"], "assignment_id": row["assignment_id"],
              "task_id": row["task_id"], "recipient": row["recipient"], "role": row["role"],
              "subject": row["subject"], "body": row["body"], "created_at": created}
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":")) + "\n"


# --- running ------------------------------------------------------------------------------------------------------


def timed(contender: Callable[[], int], path: Path, out: Path, total: int, uses_outbox: bool) -> float:
    out.unlink(missing_ok=True)
    if uses_outbox:
        reset(path)
    started = time.perf_counter()
    sent = contender()
    seconds = time.perf_counter() - started
    lines = out.read_text(encoding="utf-8").splitlines()
    assert sent == total, (sent, total)
    assert len(lines) == len(set(lines)) == total, (len(lines), len(set(lines)), total)
    if uses_outbox:
        assert sent_count(path) == total
    return seconds


def run(total: int, rounds: int, profile: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sojourn-dispatch-") as directory:
        work = Path(directory)
        path = work / "sojourn.db"
        prepare(path, total)
        outs = {key: work / f"{key}.jsonl" for key in ("daemon", "plain_dispatcher", "plain_lines")}
        contenders: dict[str, Any] = {"daemon": DaemonSweep(path, outs["daemon"]),
                                      "plain_dispatcher": PlainDispatcher(path, outs["plain_dispatcher"]),
                                      "plain_lines": PlainLines(path, outs["plain_lines"])}
        seconds: dict[str, list[float]] = {key: [] for key in contenders}
        order = list(contenders)
        for round_number in range(rounds):
            for key in order if round_number % 2 == 0 else reversed(order):
                seconds[key].append(timed(contenders[key], path, outs[key], total, key != "plain_lines"))
                print(f"round {round_number + 1}: {key} {total / seconds[key][-1]:,.0f}/s", file=sys.stderr)
        same = {key: sorted(out.read_text(encoding="utf-8").splitlines()) for key, out in outs.items()}
        assert all(lines == same["daemon"] for lines in same.values()), "the contenders wrote different lines"
        hot_spots = _profile(contenders["daemon"], path, outs["daemon"], total) if profile else None
        for contender in contenders.values():
            if isinstance(contender, DaemonSweep):
                contender.close()
    results = {key: {"name": contenders[key].name, "seconds": s, "median_s": median(s),
                     "per_second": total / median(s)} for key, s in seconds.items()}
    rate = results["daemon"]["per_second"]
    return {
        "benchmark": "dispatch", "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
        "params": {"n": total, "rounds": rounds, "batch_size": BATCH},
        "results": results,
        "ratio_plain_dispatcher_over_daemon": results["plain_dispatcher"]["per_second"] / rate,
        "ratio_plain_lines_over_daemon": results["plain_lines"]["per_second"] / rate,
        "goal": {"per_second_at_least": GOAL_PER_SECOND, "value": rate, "met": rate >= GOAL_PER_SECOND},
        "profile": hot_spots,
    }


def _profile(daemon: DaemonSweep, path: Path, out: Path, total: int) -> dict[str, Any]:
    out.unlink(missing_ok=True)
    reset(path)
    profiler = cProfile.Profile()
    profiler.enable()
    daemon()
    profiler.disable()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    total_s = stats.total_tt  # type: ignore[attr-defined]
    entries = [{"where": f"{short_path(file)}:{line}({function})", "calls": calls, "cumulative_s": cumulative}
               for (file, line, function), (_, calls, _, cumulative, _) in stats.stats.items()]  # type: ignore[attr-defined]
    return {"notifications": total, "total_s": total_s,
            "by_cumulative": sorted(entries, key=lambda e: -e["cumulative_s"])[:30]}


def report(data: dict[str, Any]) -> str:
    r, p, m = data["results"], data["params"], data["machine"]
    lines = [f"dispatch throughput to the file notifier: {p['n']:,} notifications, {p['rounds']} interleaved rounds; "
             f"{m['cpus']} CPUs, Python {m['python']}, load average {m['load_average_1m'] or 0:.2f} at the end", ""]
    rows = [[v["name"], f"{v['median_s']:.2f}", f"{v['per_second']:,.0f}",
             f"{v['per_second'] / r['daemon']['per_second']:.1f}x"] for v in r.values()]
    lines.append(table(rows, ["contender", "seconds (median)", "notifications/s", "vs daemon"]))
    lines += ["", f"goal >= {GOAL_PER_SECOND:,} notifications/s: {r['daemon']['per_second']:,.0f}/s -> "
                  f"{verdict(data['goal']['met'])}"]
    if data["profile"]:
        prof = data["profile"]
        lines += ["", f"cProfile of one daemon run ({prof['total_s'] / prof['notifications'] * 1000:.3f} ms per "
                      "notification under the profiler), by cumulative time:"]
        lines.append(table([[e["where"], str(e["calls"]), f"{e['cumulative_s'] / prof['total_s']:.0%}",
                             f"{e['cumulative_s'] / prof['notifications'] * 1e6:.0f}"]
                            for e in prof["by_cumulative"][:30]], ["function", "calls", "share", "us/notification"]))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=None, help="notifications per run (default 20000)")
    parser.add_argument("--small", action="store_true", help="quick check: 2,000 notifications")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--profile", action="store_true", help="also cProfile one daemon run")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    args = parser.parse_args()
    total = args.n or (2_000 if args.small else 20_000)
    if total < 1 or args.rounds < 1:
        parser.error("--n and --rounds must be at least 1")
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the report (or the one JSON document)
        data = run(total, args.rounds, args.profile)
    print(json.dumps(data, indent=2) if args.json else report(data))


if __name__ == "__main__":
    main()
