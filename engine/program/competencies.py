"""Competency ratings: the baseline a plan starts from, the rating after return, and the growth between them.

Every rating is on one scale, 1 (novice) to 5 (role model), the scale outcomes used from the start. A competency's
baseline is rated while the assignment runs, usually as its plan is agreed (`goal add/edit --competency NAME=LEVEL`,
`plan baseline`); rating it again corrects it (the newest rating counts, the earlier ones stay on record). Names
match without regard to case. Growth is the rating after return minus the baseline; a competency rated after return
with no baseline shows "no baseline" and counts in no growth figure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session

from engine.domain import inputs
from engine.domain.errors import BadInput, SojournError
from engine.domain.views import Result
from engine.program import audit
from engine.program.records import AssignmentRecord, load_record
from engine.program.transactions import use_case_transaction
from engine.store import program_queries
from engine.store.models import CompetencyBaseline, pk

RATING_SCALE = range(1, 6)  # competencies are rated 1 (novice) to 5 (role model)
SCALE_TEXT = f"{RATING_SCALE.start} to {RATING_SCALE.stop - 1}"


@dataclass(frozen=True)
class Baseline(Result):
    """A competency's baseline rating, as recorded."""

    name: str
    level: int
    recorded_at: datetime
    recorded_by: str

    @classmethod
    def of(cls, row: CompetencyBaseline) -> Baseline:
        return cls(row.name, row.level, row.recorded_at, row.recorded_by)


@dataclass(frozen=True)
class BaselinesSet(Result):
    """The baselines just rated, and every baseline of the assignment now (the newest of each competency)."""

    assignment_id: int
    recorded: tuple[Baseline, ...]
    baselines: tuple[Baseline, ...]


@dataclass(frozen=True)
class CompetencyGrowth(Result):
    """A competency's baseline, its latest rating after return, and the growth between them (None without both)."""

    name: str
    baseline: int | None
    after: int | None
    growth: int | None


@dataclass(frozen=True)
class CompetencyLevel:
    """A competency named with, or without, the level it is rated at."""

    name: str
    level: int | None


def rating_on_scale(text: str, what: str) -> int:
    """A rating typed as text, on RATING_SCALE."""
    if not (text.strip().isascii() and text.strip().isdigit()) or int(text) not in RATING_SCALE:
        raise BadInput(f"{what}: the rating {text.strip()!r} is outside the scale {SCALE_TEXT}")
    return int(text)


def _competency_level(value: str, option: str) -> CompetencyLevel:
    name, sep, level = value.partition("=")
    if not name.strip():
        raise BadInput(f"{option} {value!r}: give NAME or NAME=LEVEL, e.g. 'negotiation=2' (levels {SCALE_TEXT})")
    checked = inputs.text(name, option)
    return CompetencyLevel(checked, rating_on_scale(level, f"{option} {checked}") if sep else None)


def competency_levels(values: Iterable[str], option: str = "--competency") -> list[CompetencyLevel]:
    """`NAME` or `NAME=LEVEL` values, every problem of them reported at once (exit 2); a value given twice counts
    once, a competency rated at two levels is a problem."""
    problems = inputs.Problems()
    parsed = list(dict.fromkeys(p for value in values
                                if (p := problems.check(_competency_level, value, option)) is not None))
    names = [p.name.lower() for p in parsed if p.level is not None]
    if repeated := sorted({n for n in names if names.count(n) > 1}):
        problems.check(_refuse_repeated, option, repeated)
    problems.raise_if_any()
    return parsed


def _refuse_repeated(option: str, names: Sequence[str]) -> None:
    raise BadInput(f"{option} given more than once for: {', '.join(names)}")


def record_baselines(session: Session, record: AssignmentRecord, levels: Iterable[CompetencyLevel], *, actor: str,
                     now: datetime) -> tuple[Baseline, ...]:
    """Rate each competency that has a level as the assignment's baseline, each with its audit event."""
    rated = [c for c in levels if c.level is not None]
    if rated and record.definition.is_terminal(record.assignment.stage):
        raise SojournError(f"assignment {pk(record.assignment)} has ended (stage {record.assignment.stage}); "
                           "baselines are rated while it runs")
    views: list[Baseline] = []
    for competency in rated:
        assert competency.level is not None
        row = CompetencyBaseline(assignment_id=pk(record.assignment), name=competency.name, level=competency.level,
                                 recorded_at=now, recorded_by=actor)
        session.add(row)
        session.flush()
        audit.append_event(session, pk(record.assignment), audit.BASELINE_RECORDED,
                           {"baseline": row.id, "name": row.name, "level": row.level}, actor=actor, at=now)
        views.append(Baseline.of(row))
    return tuple(views)


def set_baselines(db: Engine, assignment_id: int, values: Iterable[str], *, actor: str,
                  now: datetime) -> BaselinesSet:
    """`plan baseline`: rate competencies as the assignment's baseline (each NAME=LEVEL), in one transaction."""
    levels = competency_levels(values)
    if not levels or any(c.level is None for c in levels):
        unrated = [c.name for c in levels if c.level is None]
        raise BadInput(f"--competency: give each as NAME=LEVEL (levels {SCALE_TEXT})" +
                       (f"; no level for: {', '.join(unrated)}" if unrated else ""))
    with use_case_transaction(db) as session:
        record = load_record(session, assignment_id)
        recorded = record_baselines(session, record, levels, actor=actor, now=now)
        return BaselinesSet(assignment_id=assignment_id, recorded=recorded,
                            baselines=tuple(Baseline.of(b) for b in current_baselines(session, assignment_id).values()))


def current_baselines(session: Session, assignment_id: int) -> dict[str, CompetencyBaseline]:
    """Lower-cased name -> the newest baseline of that competency, in the order first rated."""
    found: dict[str, CompetencyBaseline] = {}
    for row in program_queries.competency_baselines_of(session, assignment_id):
        found[row.name.lower()] = row
    return found


def growth(before: int | None, after: int) -> int | None:
    """After minus the baseline; None with no baseline."""
    return None if before is None else after - before


def competency_growth_view(baselines: dict[str, CompetencyBaseline],
                           latest_ratings: Sequence[tuple[str, int | None, int]]) -> list[CompetencyGrowth]:
    """Per competency of the assignment: its baseline, its latest rating after return, and the growth between."""
    after = {name.lower(): (name, before, rated) for name, before, rated in latest_ratings}
    keys = list(dict.fromkeys([*baselines, *after]))
    views: list[CompetencyGrowth] = []
    for key in keys:
        baseline = baselines.get(key)
        name, before, rated = after.get(key, (baseline.name if baseline else key, None, None))
        start = before if rated is not None else (baseline.level if baseline else None)
        views.append(CompetencyGrowth(name, start, rated, growth(start, rated) if rated is not None else None))
    return views
