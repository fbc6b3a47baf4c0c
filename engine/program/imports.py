"""Creating assignments from an HR export, all lines or none, every problem of every line reported."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from sqlalchemy import Engine
from sqlmodel import Session

from engine.domain import inputs
from engine.domain.csv_tables import LineProblems, TableRow, TableSpec, read_table
from engine.domain.errors import SojournError
from engine.program.assignments import (
    AssignmentSpec,
    CreationLookups,
    NewAssignment,
    check_new_assignment,
    planned_stay,
    write_assignments,
)
from engine.program.overlaps import ALLOW_OVERLAP_HINT, overlap_refusals
from engine.program.records import AssignmentView, assignment_view, definition_of
from engine.program.transactions import use_case_transaction as _transaction
from engine.store import lookups


def import_assignments(db: Engine, data: bytes | str, *, source: str, actor: str, now: datetime,
                       allow_past: bool = True, allow_overlap: bool = True,
                       progress: Callable[[int, int], None] | None = None) -> tuple[AssignmentView, ...]:
    """Create one assignment per CSV line, all or nothing; every problem of every line is reported with its number.
    With `allow_past` False, a line whose end date has passed is one of them. With `allow_overlap` False, lines
    that pass every check are then held against running assignments and earlier lines of the same assignee, and
    every overlapping line is refused at once (exit 1).

    Every line is checked before anything is written, then all of them are written together, a few hundred rows
    per statement. `progress(done, total)` counts the lines checked as the first half, the writing as the second.
    """
    roles_by_workflow = _workflow_roles(db)
    table = read_table(data, _import_columns(roles_by_workflow), source=source)
    problems = table.problems
    rows = [(row.line, _import_spec(row, roles_by_workflow, problems)) for row in table.rows]
    with _transaction(db) as session:
        lookups = CreationLookups(session, [spec for _, spec in rows])
        checked: list[NewAssignment] = []
        for done, (line, spec) in enumerate(rows, start=1):
            try:
                checked.append(check_new_assignment(lookups, spec, ended_by=None if allow_past else now.date()))
            except SojournError as exc:
                for text in exc.lines():
                    problems.add(line, text)
            if progress is not None:
                progress(done, 2 * len(rows))
        problems.raise_if_any()
        if not allow_overlap:
            _refuse_overlapping_lines(session, source, [line for line, _ in rows], checked)
        created = write_assignments(session, checked, actor=actor, now=now)
        if progress is not None:
            progress(2 * len(rows), 2 * len(rows))
        return tuple(assignment_view(r, now) for r in created)


IMPORT_FIXED_COLUMNS = ("workflow", "assignee", "home", "host", "start", "end")


IMPORT_ROLE_COLUMNS = ("sending_manager", "host_manager", "coach", "sponsor", "talent", "mobility")


def _import_columns(roles_by_workflow: Mapping[str, Sequence[str]]) -> TableSpec:
    """An import's columns: the fixed ones, then the stakeholder roles of every installed workflow (without any
    workflow installed: the built-in roles)."""
    roles = sorted({r for roles in roles_by_workflow.values() for r in roles}) if roles_by_workflow else \
        IMPORT_ROLE_COLUMNS
    return TableSpec(required=IMPORT_FIXED_COLUMNS, optional=tuple(roles))


def _import_spec(row: TableRow, roles_by_workflow: Mapping[str, Sequence[str]],
                 problems: LineProblems) -> AssignmentSpec:
    """The assignment a line asks for; it may fill only the roles of the workflow it names (a role column of
    another workflow holding an email is a problem of the line)."""
    values = row.values
    role_columns = [c for c in values if c not in IMPORT_FIXED_COLUMNS]
    allowed = roles_by_workflow.get(values["workflow"], role_columns)
    for column in role_columns:
        if values[column] and column not in allowed:
            problems.add(row.line, f"column {column!r} is not a role of workflow {values['workflow']} "
                                   f"(roles: {', '.join(allowed)})")
    roles = {role: values[role] for role in role_columns if values[role] and role in allowed}
    return AssignmentSpec(values["workflow"], values["assignee"], values["home"], values["host"], values["start"],
                          values["end"], roles)


def _workflow_roles(db: Engine) -> dict[str, tuple[str, ...]]:
    """The stakeholder roles of the newest version of every installed workflow, by name: an import's role columns."""
    with _transaction(db) as session:
        return {w.name: definition_of(w).stakeholder_roles for w in lookups.all_workflows(session)}


def _refuse_overlapping_lines(session: Session, source: str, lines: Sequence[int],
                              checked: Sequence[NewAssignment]) -> None:
    """Every line of an import whose dates overlap, reported together; nothing is imported."""
    refusals = overlap_refusals(session, [planned_stay(n, f"line {line}")
                                          for line, n in zip(lines, checked, strict=True)])
    if refusals:
        raise SojournError(f"{source}: nothing imported; {len(refusals)} line(s) overlap another assignment of "
                           "their assignee",
                           details=[*inputs.capped([f"{source}, line {lines[index]}: {why}"
                                                    for index, why in refusals]), ALLOW_OVERLAP_HINT])
