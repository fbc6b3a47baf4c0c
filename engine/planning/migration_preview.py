"""A migration's dry run with what the daemon would send: each assignment's next notices, before and after."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import Engine

from engine.domain.views import Result
from engine.planning.forecast import ForecastNotice, ForecastOptions, forecast_after, forecast_assignments
from engine.program.migration import Migration, MigrationRequest, MovedAssignment, migrate_workflow

PREVIEW_DAYS = 90


@dataclass(frozen=True)
class PreviewNotice(Result):
    at: datetime
    kind: str
    recipient: str
    role: str
    subject: str


@dataclass(frozen=True)
class PreviewedAssignment(MovedAssignment):
    """A move of the dry run, with the notices of the next PREVIEW_DAYS days on each version."""

    notices_before: tuple[PreviewNotice, ...]
    notices_after: tuple[PreviewNotice, ...]


@dataclass(frozen=True)
class MigrationPreview(Migration):
    """A dry run whose `assignments` are each a `PreviewedAssignment`."""

    notice_days: int


def preview_migration(db: Engine, request: MigrationRequest, *, actor: str,
                      now: datetime) -> Migration | MigrationPreview:
    """The dry run of `request`, each assignment with the notices of the next PREVIEW_DAYS days on its current
    version (`notices_before`) and on the new one (`notices_after`); writes nothing. A dry run that moves nothing
    has no notices to show, so it is the plain `Migration`."""
    planned = migrate_workflow(db, request, actor=actor, now=now, dry_run=True)
    ids = [move.assignment_id for move in planned.assignments]
    if not ids:
        return planned
    options = ForecastOptions(until=(now + timedelta(days=PREVIEW_DAYS)).date())
    before = forecast_assignments(db, ids, now=now, options=options)
    moving = replace(request, assignment_ids=tuple(ids))
    after = forecast_after(db, ids, lambda scratch: migrate_workflow(scratch, moving, actor=actor, now=now,
                                                                      dry_run=False),
                           now=now, options=options, workflow=planned.workflow)
    previewed = tuple(PreviewedAssignment(**vars(move), notices_before=_notices_of(before.notices, move.assignment_id),
                                          notices_after=_notices_of(after.notices, move.assignment_id))
                      for move in planned.assignments)
    return MigrationPreview(**{**vars(planned), "assignments": previewed}, notice_days=PREVIEW_DAYS)


def _notices_of(notices: list[ForecastNotice], assignment_id: int) -> tuple[PreviewNotice, ...]:
    return tuple(PreviewNotice(at=n.at, kind=n.kind, recipient=n.recipient, role=n.role, subject=n.subject)
                 for n in notices if n.assignment_id == assignment_id)
