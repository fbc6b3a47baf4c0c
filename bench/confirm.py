"""Confirmations per second through `sojourn serve` against the same use case called in-process, in one run.

One SQLite file holds 2N open tasks (N assignments of the cast, two interview tasks each). Two contenders mark
N tasks done each:

- in-process: `engine.program.tasks.complete_task` called in a loop, as `sojourn task done` runs it (the floor).
- served: `sojourn serve` as a subprocess (waitress, 8 threads); 8 client threads each POST the confirm form of
          a signed link, so every confirmation also verifies the token, checks revocation and ownership, and
          claims the token id in `link_use` before the same use case runs.

The result is the ratio served / in-process in confirmations per second.

    .venv/bin/python bench/confirm.py            # N = 400
    .venv/bin/python bench/confirm.py --small    # N = 100
    .venv/bin/python bench/confirm.py --json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import machine, table

CLIENTS = 8


def prepare(directory: Path, assignments: int) -> tuple[str, list[dict[str, Any]]]:
    """An initialised SQLite database with the cast and `assignments` new assignments; their open tasks."""
    from engine.program import workflows
    from engine.program.assignments import create_assignment
    from engine.program.logging import configure_logging
    from engine.program.tasks import list_tasks
    from engine.store.db import open_db
    from tests.support.scenarios import add_cast, cast_spec

    configure_logging("console", logging.WARNING)
    url = f"sqlite:///{directory / 'sojourn.db'}"
    db = open_db(url)
    now = datetime.now(UTC)
    workflows.init(db, now=now)
    add_cast(db)
    for _ in range(assignments):
        create_assignment(db, cast_spec(), actor="bench", now=now)
    tasks = [t.view() for t in list_tasks(db, now=now, status="open")]
    db.dispose()
    return url, tasks


def in_process(url: str, tasks: list[dict[str, Any]]) -> float:
    from engine.program.tasks import complete_task
    from engine.store.db import open_db

    db = open_db(url)
    began = time.perf_counter()
    for task in tasks:
        complete_task(db, task["id"], note=None, actor=task["owner"], now=datetime.now(UTC))
    seconds = time.perf_counter() - began
    db.dispose()
    return len(tasks) / seconds


def served(directory: Path, tasks: list[dict[str, Any]]) -> float:
    from engine.domain.link_rules import LinkAction
    from tests.support.web import confirm, free_port, running_server, signer, write_config

    port = free_port()
    write_config(directory, port)
    links = signer(port)
    urls = [links.url(t["owner"], LinkAction.TASK_DONE, {"task": t["id"]}, now=datetime.now(UTC)) for t in tasks]
    binary = Path(sys.executable).parent / "sojourn"
    with running_server(binary, directory, {"PATH": str(binary.parent)}, port, directory / "serve.log"):
        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            statuses = list(pool.map(lambda u: confirm(u)[0], urls))
        seconds = time.perf_counter() - began
    assert statuses == [200] * len(urls), sorted(set(statuses))
    return len(urls) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="N = 100")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    n = 100 if args.small else 400
    with tempfile.TemporaryDirectory(prefix="sojourn-bench-confirm-") as scratch:
        directory = Path(scratch)
        url, tasks = prepare(directory, n)  # two tasks each: 2N open tasks
        local = in_process(url, tasks[:n])
        remote = served(directory, tasks[n:2 * n])
    result = {"n": n, "clients": CLIENTS, "in_process_per_second": round(local, 1),
              "served_per_second": round(remote, 1), "ratio_served_to_in_process": round(remote / local, 3),
              "machine": machine()}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(table([["in-process (complete_task)", f"{local:,.1f}", "1.00"],
                 [f"served (HTTP POST, {CLIENTS} clients)", f"{remote:,.1f}", f"{remote / local:.2f}"]],
                ["contender", "confirmations/s", "ratio"]))


if __name__ == "__main__":
    main()
