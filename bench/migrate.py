"""Migration throughput: one `workflow migrate` run over N running assignments against N `advance` calls, in one run.

Prepares one SQLite database with N leadership-development assignments in `interviews`, their tasks done (the
preparation of `bench/advance.py`, reused), installs a second version of the workflow (the built-in with the pulse's
grace days changed) and copies the file. Then, side by side on the two copies:

- migrate: `engine.program.migration.migrate_workflow(db, MigrationRequest(NAME, 2, reason), ...)`, one transaction
           that moves all N assignments: each with its version check, its `workflow_migrated` audit event and the
           wake-up of its four cadence checks.
- advance: `engine.program.advance.advance(db, id, ...)` for each of the N assignments, one transaction each, from
           `interviews` to `plan_agreed` (a stage update with the version check, history, tasks, notices, audit).

Both write one version-checked update and at least one audit event per assignment; the ratio says how much cheaper
moving a cohort in one run is than touching each assignment with its own command. Reports assignments/s of each and
the ratio (advance time / migrate time); afterwards `audit verify` must pass on the template assignment's chain
(the clones hold copies of it).

    .venv/bin/python bench/migrate.py                  # N=1,000 (under two minutes on a busy machine)
    .venv/bin/python bench/migrate.py --count 10000    # the program-sized cohort
    .venv/bin/python bench/migrate.py --json           # one JSON document on stdout
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from _common import WORKFLOW, machine, table
from advance import ACTOR, ADVANCED_AT, CREATED_AT, prepare, quiet_logging

DEFAULT_COUNT = 1_000
MIGRATED_AT = ADVANCED_AT + timedelta(hours=1)


def _next_version_text() -> str:
    from workflows import builtin_workflow_texts

    text = builtin_workflow_texts()[f"{WORKFLOW}.yaml"]
    assert "grace_days: 14" in text
    return text.replace("grace_days: 14", "grace_days: 21")


def _copy(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite file written in WAL mode."""
    with sqlite3.connect(source) as original, sqlite3.connect(target) as copy:
        original.backup(copy)


def time_migration(url: str, count: int) -> float:
    from engine.program.audit import verify_audit
    from engine.program.migration import MigrationRequest, migrate_workflow
    from engine.store.db import open_db

    db = open_db(url)
    try:
        started = time.perf_counter()
        view = migrate_workflow(db, MigrationRequest(WORKFLOW, 2, "bench"), actor=ACTOR, now=MIGRATED_AT,
                                dry_run=False)
        elapsed = time.perf_counter() - started
        assert len(view.assignments) == count, len(view.assignments)
        # the clones carry copies of the template's chain, so only the template's own chain can verify
        assert verify_audit(db, assignment_id=1).intact, "audit verify failed on the migrated template"
        return elapsed
    finally:
        db.dispose()


def time_advances(url: str, count: int) -> float:
    from engine.program import advance
    from engine.store.db import open_db

    db = open_db(url)
    try:
        started = time.perf_counter()
        for assignment_id in range(1, count + 1):
            advance.advance(db, assignment_id, to=None, reason=None, actor=ACTOR, now=ADVANCED_AT)
        return time.perf_counter() - started
    finally:
        db.dispose()


def run(count: int) -> dict[str, Any]:
    quiet_logging()
    with tempfile.TemporaryDirectory(prefix="sojourn-bench-migrate-") as folder:
        migrated, advanced = Path(folder) / "migrate.db", Path(folder) / "advance.db"
        setup = prepare(f"sqlite:///{migrated}", count)
        from engine.program import workflows
        from engine.store.db import open_db

        db = open_db(f"sqlite:///{migrated}")
        workflows.install_workflow(db, _next_version_text(), source="bench", now=CREATED_AT)
        db.dispose()
        _copy(migrated, advanced)
        advance_s = time_advances(f"sqlite:///{advanced}", count)
        migrate_s = time_migration(f"sqlite:///{migrated}", count)
    return {"count": count, "backend": "sqlite", "setup": setup, "migrate_s": migrate_s, "advance_s": advance_s,
            "migrate_per_s": count / migrate_s, "advance_per_s": count / advance_s, "ratio": advance_s / migrate_s,
            "machine": machine()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT, help=f"assignments (default {DEFAULT_COUNT})")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()
    result = run(args.count)
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        print()
        return
    print(table([["migrate (one run)", f"{result['migrate_s']:.2f}", f"{result['migrate_per_s']:,.0f}"],
                 ["advance (one call each)", f"{result['advance_s']:.2f}", f"{result['advance_per_s']:,.0f}"]],
                ["N = " + f"{args.count:,}", "seconds", "assignments/s"]))
    print(f"ratio: one migration run moves the cohort {result['ratio']:.1f}x faster than as many advances")


if __name__ == "__main__":
    main()
