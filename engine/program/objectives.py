"""Organisation and mobility-team objectives: adding and listing them, checking the ids goals are linked with, and
the hash chain that lets `audit verify` see an objective edited behind Sojourn's back.

Objectives belong to the program, not to one assignment, so they are chained among themselves rather than in an
assignment's audit chain: each row's `hash` is SHA-256 over its content and the previous objective's hash. Who added
an objective (`created_by`) stays outside the hash, so that erasing that person (`person erase`) replaces it without
breaking the chain; the links of goals to objectives are recorded by the goals' `plan_changed` events instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

from sqlalchemy import Engine
from sqlmodel import Session

from engine.domain import inputs
from engine.domain.errors import BadInput, NotFound
from engine.domain.inputs import Problems
from engine.domain.views import Result
from engine.program.audit import canonical_json
from engine.program.logging import get_logger
from engine.program.transactions import use_case_transaction
from engine.store import lookups, objective_queries
from engine.store.models import Objective, Person, pk

log = get_logger(__name__)


@dataclass(frozen=True)
class ObjectiveLine(Result):
    """An objective as added; `owner` is the owner's email."""

    id: int
    level: str
    title: str
    owner: str | None
    year: int | None
    created_at: datetime
    created_by: str

    @classmethod
    def of(cls, objective: Objective, owner: Person | None, **more: Any) -> Self:
        return cls(pk(objective), objective.level, objective.title, owner.email if owner else None, objective.year,
                   objective.created_at, objective.created_by, **more)


@dataclass(frozen=True)
class ObjectiveListed(ObjectiveLine):
    """An objective with how many live goals are aligned to it."""

    goals: int


def add_objective(db: Engine, *, level: str, title: str, owner: str | None = None, year: str | int | None = None,
                  actor: str, now: datetime) -> ObjectiveLine:
    """Add an objective goals can be aligned to; every problem of the input is reported at once."""
    problems = Problems()
    checked_level = problems.check(inputs.objective_level, level)
    checked_title = problems.check(inputs.text, title, "--title")
    checked_year = problems.check(inputs.year, year) if year is not None else None
    owner_email = problems.check(inputs.email, owner, "--owner") if owner is not None else None
    with use_case_transaction(db) as session:
        owner_person = _owner(session, owner_email, problems) if owner_email is not None else None
        problems.raise_if_any()
        assert checked_level is not None
        assert checked_title is not None
        newest = objective_queries.newest_objective(session)
        objective = Objective(level=checked_level, title=checked_title,
                              owner_id=pk(owner_person) if owner_person else None, year=checked_year,
                              created_at=now, created_by=actor, prev_hash=newest.hash if newest else None, hash="")
        session.add(objective)
        session.flush()
        objective.hash = objective_hash(objective)
        session.add(objective)
        session.flush()
        log.info("objective added", objective=objective.id, level=objective.level, actor=actor)
        return ObjectiveLine.of(objective, owner_person)


def _owner(session: Session, email: str, problems: Problems) -> Person | None:
    person = lookups.person_by_email(session, email)
    if person is None:
        problems.errors.append(NotFound(f"--owner: no person {email}",
                                        details=["add them first: sojourn person add EMAIL --name NAME"]))
    return person


def list_objectives(db: Engine) -> list[ObjectiveListed]:
    """Every objective, oldest first, with how many live goals are aligned to it."""
    with use_case_transaction(db) as session:
        found = objective_queries.objectives(session)
        goals = objective_queries.live_goal_counts(session)
        return [ObjectiveListed.of(o, owner, goals=goals.get(pk(o), 0)) for o, owner in found]


def checked_objective_ids(session: Session, values: Iterable[str], problems: Problems) -> list[int] | None:
    """The objective ids typed to `--objective`, once each, ascending; malformed or unknown ids are added to
    `problems` (all of them, named), and None returned."""
    ids = problems.check(inputs.row_ids, list(values), "--objective")
    if ids is None:
        return None
    known = objective_queries.objectives_by_id(session, ids)
    unknown = [i for i in ids if i not in known]
    if unknown:
        problems.errors.append(BadInput(f"--objective: no objective {', '.join(map(str, unknown))}",
                                        details=["`sojourn objective list` shows them; add one with "
                                                 "`sojourn objective add --level LEVEL --title TEXT`"]))
        return None
    return sorted(ids)


# --- the objectives' hash chain -------------------------------------------------------------------------------


def objective_hash(objective: Objective) -> str:
    """SHA-256 (hex) of an objective's content and the hash of the objective before it."""
    content = canonical_json(["objective", objective.id, objective.level, objective.title, objective.owner_id,
                              objective.year, objective.created_at, objective.prev_hash])
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ObjectiveProblem(Result):
    """An objective row that no longer reads as it was written."""

    objective_id: int
    kind: str  # content_edited or chain_broken
    reason: str

    @property
    def message(self) -> str:
        return f"objective {self.objective_id}: {self.kind.replace('_', ' ')}: {self.reason}"

    def view(self) -> dict[str, Any]:
        # the message is derived, yet readers of `audit verify --json` get it beside the fields
        return {**super().view(), "message": self.message}


def check_objective_chain(objectives: Sequence[Objective]) -> list[ObjectiveProblem]:
    """Every objective (oldest first) whose hash does not match its content, or that does not follow the one
    before it: the first problem is where the chain was edited."""
    problems = []
    previous: Objective | None = None
    for objective in objectives:
        if objective_hash(objective) != objective.hash:
            problems.append(ObjectiveProblem(pk(objective), "content_edited", "the row no longer matches its hash"))
        elif objective.prev_hash != (previous.hash if previous else None):
            problems.append(ObjectiveProblem(pk(objective), "chain_broken",
                                             "it does not follow the objective before it: a row was deleted or "
                                             "replaced"))
        previous = objective
    return problems


@dataclass(frozen=True)
class ObjectiveCheck(Result):
    """The objectives' part of `audit verify`: how many there are, and what is wrong with their chain."""

    objectives: int
    problems: tuple[ObjectiveProblem, ...]


def verify_objectives(session: Session) -> ObjectiveCheck:
    chain = objective_queries.objective_chain(session)
    return ObjectiveCheck(len(chain), tuple(check_objective_chain(chain)))
