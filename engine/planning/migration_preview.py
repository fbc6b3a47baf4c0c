"""A migration's dry run with what the daemon would send: each assignment's next notices, before and after."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from engine.planning.forecast import ForecastNotice, ForecastOptions, forecast_after, forecast_assignments
from engine.program.migration import MigrationRequest, migrate_workflow

PREVIEW_DAYS = 90


def preview_migration(db: Engine, request: MigrationRequest, *, actor: str, now: datetime) -> dict[str, Any]:
    """The dry run of `request`, each assignment with the notices of the next PREVIEW_DAYS days on its current
    version (`notices_before`) and on the new one (`notices_after`); writes nothing."""
    view = migrate_workflow(db, request, actor=actor, now=now, dry_run=True)
    ids = [move["assignment_id"] for move in view["assignments"]]
    if not ids:
        return view
    options = ForecastOptions(until=(now + timedelta(days=PREVIEW_DAYS)).date())
    before = forecast_assignments(db, ids, now=now, options=options)
    moving = replace(request, assignment_ids=tuple(ids))
    after = forecast_after(db, ids, lambda scratch: migrate_workflow(scratch, moving, actor=actor, now=now,
                                                                      dry_run=False),
                           now=now, options=options, workflow=view["workflow"])
    for move in view["assignments"]:
        move["notices_before"] = _notices_of(before.notices, move["assignment_id"])
        move["notices_after"] = _notices_of(after.notices, move["assignment_id"])
    return {**view, "notice_days": PREVIEW_DAYS}


def _notices_of(notices: list[ForecastNotice], assignment_id: int) -> list[dict[str, Any]]:
    return [{"at": n.at.isoformat(), "kind": n.kind, "recipient": n.recipient, "role": n.role,
             "subject": n.subject} for n in notices if n.assignment_id == assignment_id]
