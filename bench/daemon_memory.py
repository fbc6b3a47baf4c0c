"""Daemon memory: peak RSS of the real `sojourn daemon` on a database of 100,000 assignments, against its imports.

One SQLite file gets 100,000 leadership-development assignments: one made through the service layer, then cloned
row for row with SQL (each with 6 stakeholders, 2 tasks, 1 history row, 2 cadence rows and 7 outbox rows). A copy
of it is brought to a quiet state. Each scenario runs the installed `sojourn` in a fresh process, with a file
notifier, and reads that process's own peak resident set size (`os.wait4`, `ru_maxrss`):

- baseline: `python -c "import engine.delivery.daemon"`, the floor every daemon pays before it touches the database.
- quiet, `daemon --once --interval 10`: nothing due, every notice sent; one sweep.
- backlog, `daemon --once --interval 10`: the daemon back after a long downtime. Every task's reminders have come
  (its overdue notice and its escalations are planned, 200,000 tasks in one planning transaction) and the 700,000
  notices of the cloned assignments wait in the outbox; the sweep then dispatches for its budget (10 s).
- backlog, running: `daemon --interval 1` on what the --once run left, for --run-seconds (default 30), then
  SIGTERM: several sweeps, each dispatching for its budget, with heartbeats between them.

Goal: under 150 MB peak RSS in every scenario. The ratio to the baseline says what the work itself adds.

    .venv/bin/python bench/daemon_memory.py              # 100,000 assignments (about 3 minutes)
    .venv/bin/python bench/daemon_memory.py --small      # 10,000 assignments, quick check
    .venv/bin/python bench/daemon_memory.py --json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import machine, table, verdict

GOAL_MB = 150
ACTOR = "bench@example.com"
CREATED_AT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # long enough ago that every step of the tasks has come
FAR_FUTURE = "2036-01-01 09:00:00.000000"  # SQLite's text form of an instant, as SQLAlchemy writes it
TEMPLATE_ID = 1


def sojourn_binary() -> Path:
    beside = Path(sys.executable).parent / "sojourn"
    found = beside if beside.is_file() else shutil.which("sojourn")
    assert found, "the sojourn console script is not installed (pip install -e .)"
    return Path(found)


# --- preparing the databases --------------------------------------------------------------------------------------


def prepare(path: Path, assignments: int) -> float:
    """`assignments` assignments in the state of a daemon coming back after months away; returns seconds taken."""
    from engine.program import workflows
    from engine.program.assignments import create_assignment
    from engine.program.logging import configure_logging
    from engine.store.db import open_db
    from tests.support.scenarios import add_cast, cast_spec

    configure_logging("console", logging.WARNING)
    started = time.perf_counter()
    db = open_db(f"sqlite:///{path}")
    workflows.init(db, now=CREATED_AT)
    add_cast(db)
    assert create_assignment(db, cast_spec(), actor=ACTOR, now=CREATED_AT).id == TEMPLATE_ID
    db.dispose()
    clone(path, assignments)
    return time.perf_counter() - started


def clone(path: Path, total: int) -> None:
    """Copy assignment 1 and every row that hangs off it until ids 1..total exist (outbox keys made unique)."""
    conn = sqlite3.connect(path, isolation_level=None)
    numbers = f"WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n WHERE i < {int(total)}) "
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                         "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
    conn.execute("BEGIN")
    for name in ["assignment", *(t for t in tables if t != "assignment")]:
        info = list(conn.execute(f'PRAGMA table_info("{name}")'))
        columns = [r[1] for r in info]
        if name == "assignment":
            copied, link = [c for c in columns if c != "id"], "id"
            names, values = ["id", *copied], ["n.i", *(f't."{c}"' for c in copied)]
        elif "assignment_id" in columns:
            own_id = [r[1] for r in info if r[5] == 1 and r[1] == "id"]
            copied, link = [c for c in columns if c not in own_id], "assignment_id"
            names = copied
            values = ["n.i" if c == "assignment_id" else
                      "t.\"key\" || '/copy-' || n.i" if (name, c) == ("outbox", "key") else f't."{c}"'
                      for c in copied]
        else:
            continue
        conn.execute(numbers + f'INSERT INTO "{name}" ({", ".join(f"{chr(34)}{c}{chr(34)}" for c in names)}) '
                     f'SELECT {", ".join(values)} FROM "{name}" AS t, n WHERE t."{link}" = {TEMPLATE_ID} '
                     "ORDER BY n.i")
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def quieten(path: Path) -> None:
    """Nothing due: every notice sent, every reminder and cadence check years ahead."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    conn.execute("UPDATE outbox SET status = 'sent', attempts = 1, sent_at = created_at, delivered_to = '[\"file\"]'")
    conn.execute("UPDATE task SET next_reminder_at = ? WHERE next_reminder_at IS NOT NULL", (FAR_FUTURE,))
    conn.execute("UPDATE cadencestate SET next_check_at = ? WHERE next_check_at IS NOT NULL", (FAR_FUTURE,))
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def row_counts(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        counts = {t: int(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0])
                  for t in ("assignment", "task", "stakeholder", "outbox", "cadencestate")}
        counts["outbox_pending"] = int(conn.execute("SELECT count(*) FROM outbox WHERE status = 'pending'")
                                       .fetchone()[0])
        return counts
    finally:
        conn.close()


# --- measuring ----------------------------------------------------------------------------------------------------


# Runs one command and reports its peak RSS. The measured process must not be a child of this script: Linux keeps
# a process's peak RSS across exec, and a child forked from this script (which has imported the engine and built
# the database) would start with this script's peak. This launcher is a bare interpreter (-S, a few MB), smaller
# than any process it measures. It forwards SIGTERM, and writes "peak_kb exit_code" to the file it is given.
LAUNCHER = """
import os, signal, sys
result, argv = sys.argv[1], sys.argv[2:]
pid = os.posix_spawn(argv[0], argv, os.environ)
signal.signal(signal.SIGTERM, lambda signum, frame: os.kill(pid, signum))
_, status, usage = os.wait4(pid, 0)
with open(result, "w") as out:
    out.write(f"{usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""


def peak_rss(argv: list[str], cwd: Path, log: Path, *, stop_after: float | None = None,
             timeout: float = 900) -> dict[str, Any]:
    """Run `argv` in a fresh process and return its own peak RSS in MB, wall time and exit code.

    With `stop_after`, SIGTERM it after that many seconds (a daemon that would otherwise run for ever).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOJOURN_")}
    result = log.with_suffix(".rss")
    started = time.monotonic()
    with log.open("wb") as stderr:
        launcher = subprocess.Popen([sys.executable, "-S", "-c", LAUNCHER, str(result), *argv], cwd=cwd, env=env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        launcher.wait(timeout=stop_after if stop_after is not None else timeout)
    except subprocess.TimeoutExpired:
        launcher.send_signal(signal.SIGTERM)
        launcher.wait(timeout=120)
    peak_kb, exit_code = (int(v) for v in result.read_text(encoding="utf-8").split())
    return {"peak_rss_mb": peak_kb / 1024, "seconds": time.monotonic() - started, "exit_code": exit_code,
            **sweep_totals(log)}


def sweep_totals(log: Path) -> dict[str, int]:
    """What the daemon's `sweep` log lines say it did, summed (nothing for processes that are not the daemon)."""
    totals = {"sweeps": 0, "planned": 0, "sent": 0}
    with log.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            if '"event": "sweep"' not in line:
                continue
            event = json.loads(line)
            totals["sweeps"] += 1
            totals["planned"] += int(event.get("planned", 0))
            totals["sent"] += int(event.get("sent", 0))
    return totals


def run(assignments: int, run_seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sojourn-memory-") as directory:
        work = Path(directory)
        backlog, quiet = work / "backlog.db", work / "quiet.db"
        print(f"preparing {assignments:,} assignments ...", file=sys.stderr, flush=True)
        prepare_s = prepare(backlog, assignments)
        shutil.copyfile(backlog, quiet)
        quieten(quiet)
        counts = {"backlog": row_counts(backlog), "quiet": row_counts(quiet)}
        (work / "sojourn.toml").write_text(f'[notifiers.file]\npath = "{work / "out.jsonl"}"\n', encoding="utf-8")
        binary = str(sojourn_binary())

        def daemon(db: Path, *args: str) -> list[str]:
            return [binary, "--db", f"sqlite:///{db}", "--config", str(work / "sojourn.toml"), "daemon", *args]

        scenarios = [
            ("baseline: python -c 'import engine.delivery.daemon'",
             [sys.executable, "-c", "import engine.delivery.daemon"], None),
            ("quiet: daemon --once", daemon(quiet, "--once", "--interval", "10"), None),
            ("backlog: daemon --once", daemon(backlog, "--once", "--interval", "10"), None),
            (f"backlog: daemon --interval 1, {run_seconds:g} s", daemon(backlog, "--interval", "1"), run_seconds),
        ]
        results = []
        for number, (name, argv, stop_after) in enumerate(scenarios):
            print(f"running {name} ...", file=sys.stderr, flush=True)
            result = peak_rss(argv, work, work / f"scenario-{number}.log", stop_after=stop_after)
            assert result["exit_code"] == 0, (name, (work / f"scenario-{number}.log").read_text()[-2000:])
            results.append({"name": name, **result})
    base = results[0]["peak_rss_mb"]
    for result in results:
        result["ratio_to_baseline"] = result["peak_rss_mb"] / base
    worst = max(r["peak_rss_mb"] for r in results[1:])
    return {"benchmark": "daemon_memory", "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(), "params": {"assignments": assignments, "run_seconds": run_seconds},
            "prepare_s": prepare_s, "rows": counts, "results": results,
            "goal": {"peak_rss_mb_under": GOAL_MB, "value": worst, "met": worst < GOAL_MB}}


def report(data: dict[str, Any]) -> str:
    p, m, rows = data["params"], data["machine"], data["rows"]["backlog"]
    lines = [f"daemon peak RSS with {p['assignments']:,} assignments ({rows['task']:,} tasks, {rows['outbox']:,} "
             f"outbox rows); {m['cpus']} CPUs, Python {m['python']}, load average {m['load_average_1m'] or 0:.2f} "
             "at the end", ""]
    lines.append(table([[r["name"], f"{r['peak_rss_mb']:.1f}", f"{r['ratio_to_baseline']:.2f}x",
                         f"{r['seconds']:.1f}", str(r["sweeps"]), f"{r['planned']:,}", f"{r['sent']:,}"]
                        for r in data["results"]],
                       ["scenario", "peak RSS MB", "vs baseline", "seconds", "sweeps", "planned", "sent"]))
    lines += ["", f"goal: under {GOAL_MB} MB in every scenario: worst {data['goal']['value']:.1f} MB -> "
                  f"{verdict(data['goal']['met'])}"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assignments", type=int, default=None, help="assignments (default 100000)")
    parser.add_argument("--small", action="store_true", help="quick check: 10,000 assignments")
    parser.add_argument("--run-seconds", type=float, default=30.0, help="how long the running daemon runs (30)")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    args = parser.parse_args()
    assignments = args.assignments or (10_000 if args.small else 100_000)
    if assignments < 2 or args.run_seconds <= 0:
        parser.error("--assignments must be at least 2 and --run-seconds positive")
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the report (or the one JSON document)
        data = run(assignments, args.run_seconds)
    print(json.dumps(data, indent=2) if args.json else report(data))


if __name__ == "__main__":
    main()
