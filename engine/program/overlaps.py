"""The guard that keeps one person from holding two running assignments whose dates overlap."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlmodel import Session, col

from engine.program.records import definition_of
from engine.store import lookups
from engine.store.models import Assignment, pk

ALLOW_OVERLAP_HINT = "give --allow-overlap to create it all the same (e.g. a short trip within a longer stay)"


@dataclass(frozen=True)
class PlannedStay:
    """A new assignment as the overlap guard sees it; `label` names it among others (a CSV line), or is blank."""

    label: str
    assignee_id: int
    assignee: str
    start: date
    end: date


def _overlap(first_start: date, first_end: date, second_start: date, second_end: date) -> bool:
    """Both periods hold at least one common day (start and end dates are days of the stay)."""
    return first_start <= second_end and second_start <= first_end


def _dates(start: date, end: date) -> str:
    return f"{start.isoformat()} to {end.isoformat()}"


def overlap_refusals(session: Session, planned: Sequence[PlannedStay]) -> list[tuple[int, str]]:
    """(position in `planned`, why) for each stay overlapping a running assignment of its assignee, or a stay
    earlier in `planned` of the same assignee: a finished or cancelled assignment no longer holds anyone."""
    running = [a for a, workflow, _ in lookups.assignments_with_workflow_and_assignee(
                   session, col(Assignment.assignee_id).in_({p.assignee_id for p in planned}))
               if not definition_of(workflow).is_terminal(a.stage)]
    refusals = []
    for index, stay in enumerate(planned):
        clashes = [f"running assignment {pk(a)} ({_dates(a.start, a.end)}, stage {a.stage})" for a in running
                   if a.assignee_id == stay.assignee_id and _overlap(a.start, a.end, stay.start, stay.end)]
        clashes += [f"{earlier.label} ({_dates(earlier.start, earlier.end)})" for earlier in planned[:index]
                    if earlier.assignee_id == stay.assignee_id
                    and _overlap(earlier.start, earlier.end, stay.start, stay.end)]
        if clashes:
            refusals.append((index, f"{_dates(stay.start, stay.end)} of assignee {stay.assignee} overlaps "
                                    f"{', '.join(clashes)}"))
    return refusals
