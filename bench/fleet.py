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
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from _common import ASSIGNMENT, CAST, WORKFLOW, machine, median, stakeholders, table, verdict
from sqlalchemy import Engine, create_engine, delete, func, select, update
from sqlalchemy.engine import make_url
from sqlmodel import col

GOAL_RATIO = 2.5
WEBHOOK_SECONDS = 0.020
INTERVAL = "0.2"
FLEETS = (1, 3)
ACTOR = "bench@example.com"
DEFAULT_ADMIN_URL = os.environ.get("SOJOURN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
RUN_DEADLINE_S = 600


class Receiver:
    """A webhook on 127.0.0.1 that answers 200 after a fixed delay and notes each key's arrival time."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.arrivals: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.note(self.headers.get("Idempotency-Key", ""))
                time.sleep(receiver.delay)
                with contextlib.suppress(OSError):
                    self.send_response(200)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 64

        self._server = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def note(self, key: str) -> None:
        with self._lock:
            self.arrivals.append((time.monotonic(), key))

    def take(self) -> list[tuple[float, str]]:
        with self._lock:
            taken, self.arrivals = self.arrivals, []
        return taken

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


@contextlib.contextmanager
def scratch_database(admin_url: str) -> Iterator[tuple[str, Engine]]:
    from engine import service
    from engine.store.db import open_db

    admin = create_engine(make_url(admin_url), isolation_level="AUTOCOMMIT")
    name = f"sojourn_fleet_{uuid.uuid4().hex[:10]}"
    with admin.connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    engine = open_db(url)
    try:
        now = datetime.now(UTC)
        service.init(engine, now=now)
        for email, person, tz in CAST.values():
            service.add_person(engine, email, name=person, tz=tz)
        spec = service.AssignmentSpec(workflow=WORKFLOW, assignee=CAST["assignee"][0], stakeholders=stakeholders(),
                                      **ASSIGNMENT)
        service.create_assignment(engine, spec, actor=ACTOR, now=now)
        yield url, engine
    finally:
        engine.dispose()
        with admin.connect() as c:
            c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def fill(engine: Engine, prefix: str, total: int) -> None:
    """`total` due notifications, and nothing else left to plan or send."""
    from engine.notices import NewNotice, NoticeKind
    from engine.store import queries
    from engine.store.db import transaction
    from engine.store.models import Assignment, CadenceState, Outbox, Task

    due = datetime.now(UTC) - timedelta(minutes=1)
    with transaction(engine) as session:
        assignment = session.execute(select(func.min(Assignment.id))).scalar_one()
        session.execute(delete(Outbox).where(col(Outbox.status) != "sent"))
        session.execute(update(Task).values(next_reminder_at=None))
        session.execute(update(CadenceState).values(next_check_at=None))
        rows = [NewNotice(key=f"{prefix}/{n}", kind=NoticeKind.TASK_DUE, assignment_id=assignment, task_id=None,
                          recipient=CAST["coach"][0], role="coach", subject=f"Notice {n}",
                          body="A notification for the fleet benchmark.", created_at=due, deliver_at=due)
                for n in range(total)]
        assert queries.insert_notifications(session, rows) == total


def unsent(engine: Engine) -> int:
    from engine.store.models import Outbox

    with engine.connect() as c:
        return int(c.execute(select(func.count()).select_from(Outbox).where(col(Outbox.status) != "sent")).scalar_one())


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_run(url: str, engine: Engine, receiver: Receiver, work: Path, daemons: int, total: int,
            label: str) -> dict[str, Any]:
    fill(engine, label, total)
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
    from engine.logging import configure_logging

    configure_logging("console", logging.WARNING)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="sojourn-fleet-") as directory, \
            Receiver(WEBHOOK_SECONDS) as receiver, scratch_database(admin_url) as (url, engine):
        for round_number in range(rounds):
            for daemons in FLEETS if round_number % 2 == 0 else tuple(reversed(FLEETS)):
                result = one_run(url, engine, receiver, Path(directory), daemons, total,
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
    parser.add_argument("--postgres", metavar="URL", default=DEFAULT_ADMIN_URL,
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
