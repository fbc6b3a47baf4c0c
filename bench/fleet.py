"""Fleet throughput: one daemon against three on one PostgreSQL database, delivering to a webhook that takes 20 ms.

A scratch PostgreSQL database gets N due notifications per run. A webhook receiver in this process (127.0.0.1,
a thread per request) answers each POST with 200 after 20 ms and notes when each Idempotency-Key arrived. Each run
starts K installed `sojourn daemon --interval 0.2` processes, waits until the outbox shows all N sent, and stops
them with SIGTERM. Runs with K = 1 (the baseline) and K = 3 alternate in rounds.

Throughput is N over the time from the first to the last arrival at the receiver (start-up is not counted; it is
reported as the wall time). The CPU the daemons used (user + system, from the reaped processes) is reported per
notification. Goal: three daemons deliver at least 2.5x what one does.

    .venv/bin/python bench/fleet.py                          # N=1,500, 2 rounds (about 2 minutes)
    .venv/bin/python bench/fleet.py --small                  # N=300, 1 round
    .venv/bin/python bench/fleet.py --postgres URL           # default: $SOJOURN_TEST_POSTGRES_URL or the local server
    .venv/bin/python bench/fleet.py --json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _common import machine, median, table, verdict
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url
from sqlmodel import col

from tests.support.scratch import POSTGRES_ADMIN_URL
from tests.support.webhook import Receiver

GOAL_RATIO = 2.5
WEBHOOK_SECONDS = 0.020
INTERVAL = "0.2"
FLEETS = (1, 3)
ACTOR = "bench@example.com"
RUN_DEADLINE_S = 600


@contextlib.contextmanager
def scratch_database(admin_url: str) -> Iterator[tuple[str, Engine, int]]:
    """A scratch PostgreSQL database with the cast and one assignment: its URL, an engine on it, the assignment."""
    from engine.program import assignments
    from engine.store.db import open_db
    from tests.support.scenarios import add_cast, cast_spec
    from tests.support.scratch import initialise, postgres_database

    with postgres_database(admin_url, prefix="sojourn_fleet") as url:
        now = datetime.now(UTC)
        initialise(url, now)
        engine = open_db(url)
        try:
            add_cast(engine)
            assignment_id = int(assignments.create_assignment(engine, cast_spec(), actor=ACTOR, now=now).id)
            yield url, engine, assignment_id
        finally:
            engine.dispose()


def fill(engine: Engine, assignment_id: int, prefix: str, total: int) -> None:
    """`total` due notifications, and nothing else left to plan or send."""
    from tests.support.scenarios import fill_outbox, silence_planning

    silence_planning(engine, keep_sent=True)
    fill_outbox(engine, assignment_id, total, prefix=prefix, body="A notification for the fleet benchmark.",
                due=datetime.now(UTC) - timedelta(minutes=1))


def unsent(engine: Engine) -> int:
    from engine.store.models import Outbox

    with engine.connect() as c:
        return int(c.execute(select(func.count()).select_from(Outbox).where(col(Outbox.status) != "sent")).scalar_one())


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_run(url: str, engine: Engine, assignment_id: int, receiver: Receiver, work: Path, daemons: int,
            total: int, label: str) -> dict[str, Any]:
    fill(engine, assignment_id, label, total)
    receiver.take()
    binary = shutil.which("sojourn", path=str(Path(sys.executable).parent)) or shutil.which("sojourn")
    assert binary, "the sojourn console script is not installed (pip install -e .)"
    config = work / "fleet.toml"
    config.write_text(f'[notifiers.webhook]\nurl = "{receiver.url}"\n', encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOJOURN_")}
    cpu_before = children_cpu()
    started = time.monotonic()
    processes = []
    for n in range(daemons):
        with (work / f"{label}-{n}.log").open("wb") as log:
            processes.append(subprocess.Popen([binary, "--db", url, "--config", str(config), "daemon", "--interval",
                                               INTERVAL], env=env, stdin=subprocess.DEVNULL,
                                              stdout=subprocess.DEVNULL, stderr=log))
    try:
        while unsent(engine):
            exited = [p.returncode for p in processes if p.poll() is not None]
            assert not exited, f"a daemon exited with {exited}; see the logs in {work}"
            assert time.monotonic() - started < RUN_DEADLINE_S, "the run did not finish in time"
            time.sleep(0.05)
        wall = time.monotonic() - started
        for process in processes:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(timeout=60) for process in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert codes == [0] * daemons, codes
    arrivals = receiver.take()
    keys = Counter(key for _, key in arrivals)
    assert len(keys) == total, (len(keys), total)
    first, last = arrivals[0][0], arrivals[-1][0]
    return {"daemons": daemons, "notifications": total, "wall_s": wall, "delivery_s": last - first,
            "per_second": (len(arrivals) - 1) / (last - first), "repeats": sum(keys.values()) - len(keys),
            "daemon_cpu_s": children_cpu() - cpu_before}


def run(admin_url: str, total: int, rounds: int) -> dict[str, Any]:
    from engine.program.logging import configure_logging

    configure_logging("console", logging.WARNING)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="sojourn-fleet-") as directory, \
            Receiver(WEBHOOK_SECONDS) as receiver, scratch_database(admin_url) as (url, engine, assignment_id):
        for round_number in range(rounds):
            for daemons in FLEETS if round_number % 2 == 0 else tuple(reversed(FLEETS)):
                result = one_run(url, engine, assignment_id, receiver, Path(directory), daemons, total,
                                 f"round{round_number + 1}-k{daemons}")
                runs.append(result)
                print(f"round {round_number + 1}: {daemons} daemon(s) {result['per_second']:.1f}/s",
                      file=sys.stderr, flush=True)
    summary = {}
    for daemons in FLEETS:
        mine = [r for r in runs if r["daemons"] == daemons]
        summary[str(daemons)] = {
            "per_second": median([r["per_second"] for r in mine]),
            "wall_s": median([r["wall_s"] for r in mine]),
            "cpu_ms_per_notification": median([r["daemon_cpu_s"] / r["notifications"] * 1000 for r in mine]),
            "repeats": sum(r["repeats"] for r in mine)}
    ratio = summary["3"]["per_second"] / summary["1"]["per_second"]
    return {"benchmark": "fleet", "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
            "params": {"n": total, "rounds": rounds, "webhook_ms": WEBHOOK_SECONDS * 1000, "interval": INTERVAL,
                       "database": make_url(admin_url).render_as_string(hide_password=True)},
            "runs": runs, "summary": summary, "ratio_three_over_one": ratio,
            "serial_ceiling_per_daemon": 1 / WEBHOOK_SECONDS,
            "goal": {"ratio_at_least": GOAL_RATIO, "value": ratio, "met": ratio >= GOAL_RATIO}}


def report(data: dict[str, Any]) -> str:
    p, m, s = data["params"], data["machine"], data["summary"]
    lines = [f"fleet throughput on PostgreSQL: {p['n']:,} notifications per run, webhook {p['webhook_ms']:g} ms a "
             f"request, {p['rounds']} round(s); {m['cpus']} CPUs, Python {m['python']}, load average "
             f"{m['load_average_1m'] or 0:.2f} at the end", ""]
    rows = [[f"{k} daemon(s)", f"{v['per_second']:.1f}", f"{v['per_second'] / s['1']['per_second']:.2f}x",
             f"{v['wall_s']:.1f}", f"{v['cpu_ms_per_notification']:.2f}", str(v["repeats"])] for k, v in s.items()]
    lines.append(table(rows, ["fleet", "notifications/s", "vs one", "wall s", "daemon CPU ms/notification",
                              "repeats"]))
    lines += ["", f"one request at a time per daemon cannot beat {data['serial_ceiling_per_daemon']:.0f}/s per daemon",
              f"goal three >= {GOAL_RATIO:g}x one: {data['ratio_three_over_one']:.2f}x -> "
              f"{verdict(data['goal']['met'])}"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=None, help="notifications per run (default 1500)")
    parser.add_argument("--small", action="store_true", help="quick check: 300 notifications, 1 round")
    parser.add_argument("--rounds", type=int, default=None, help="rounds of one and three daemons (default 2)")
    parser.add_argument("--postgres", metavar="URL", default=POSTGRES_ADMIN_URL,
                        help="a database on the server from which a scratch database is created and dropped")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    args = parser.parse_args()
    total = args.n or (300 if args.small else 1_500)
    rounds = args.rounds or (1 if args.small else 2)
    if total < 2 or rounds < 1:
        parser.error("--n must be at least 2 and --rounds at least 1")
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the report (or the one JSON document)
        data = run(args.postgres, total, rounds)
    print(json.dumps(data, indent=2) if args.json else report(data))


if __name__ == "__main__":
    main()
