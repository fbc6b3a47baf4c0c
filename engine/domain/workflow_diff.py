"""What changed between two versions of a workflow: roles, stages, tasks, guards, cadences, reminder and plan rules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from engine.domain.definition import WorkflowDefinition
from engine.domain.views import Result, plain

ChangeKind = Literal["added", "removed", "changed"]
# The parts of a workflow a diff compares, in the order it lists them.
PARTS = ("role", "stage", "task", "transition", "cadence", "reminders", "pulse", "plan", "stage_changes")


@dataclass(frozen=True)
class FieldChange(Result):
    """A field's JSON-ready value before and after a change."""

    before: Any
    after: Any

    def view(self) -> dict[str, Any]:
        # `from` is a Python keyword, so the fields cannot carry the JSON names
        return {"from": plain(self.before), "to": plain(self.after)}


@dataclass(frozen=True)
class DefinitionChange(Result):
    """One part of a workflow added, removed or changed, with each changed field."""

    part: str
    key: str
    change: ChangeKind
    fields: Mapping[str, FieldChange]


def diff_definitions(old: WorkflowDefinition, new: WorkflowDefinition) -> list[DefinitionChange]:
    """Every part of `old` that `new` adds, removes or changes, part by part, each in `new`'s order."""
    changes: list[DefinitionChange] = []
    for part in PARTS:
        changes += _diff_part(part, _parts_of(old, part), _parts_of(new, part))
    return changes


def _parts_of(d: WorkflowDefinition, part: str) -> dict[str, dict[str, Any]]:
    """The named pieces of one part of a definition, each as plain JSON-ready fields."""
    if part == "role":
        return {role: {} for role in d.roles}
    if part == "stage":
        return {s.key: {"title": s.title, "notify": _listed(s.notify), "tasks": [t.key for t in s.tasks]}
                for s in d.stages}
    if part == "task":
        return {t.key: {"stage": s.key, **t.model_dump(mode="json", by_alias=True, exclude={"key"})}
                for s in d.stages for t in s.tasks}
    if part == "transition":
        return {f"{t.source} -> {t.dest}": t.model_dump(mode="json", by_alias=True, exclude={"source", "dest"})
                for t in d.transitions}
    if part == "cadence":
        return {c.kind: c.model_dump(mode="json", by_alias=True, exclude={"kind"}) for c in d.cadences}
    rules = getattr(d, part)
    return {} if rules is None else {part: rules.model_dump(mode="json", by_alias=True)}


def _listed(values: tuple[str, ...] | None) -> list[str] | None:
    return None if values is None else list(values)


def _diff_part(part: str, old: dict[str, dict[str, Any]],
               new: dict[str, dict[str, Any]]) -> list[DefinitionChange]:
    changes = [DefinitionChange(part, key, "removed", {}) for key in old if key not in new]
    for key, fields in new.items():
        if key not in old:
            changes.append(DefinitionChange(part, key, "added", {}))
        elif changed := differing(old[key], fields):
            changes.append(DefinitionChange(part, key, "changed", changed))
    return changes


def differing(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, FieldChange]:
    """The fields whose values differ between `old` and `new` (a field one lacks is None there)."""
    return {name: FieldChange(old.get(name), new.get(name)) for name in dict.fromkeys([*old, *new])
            if old.get(name) != new.get(name)}


def diff_summary(changes: list[DefinitionChange]) -> dict[str, dict[str, list[str]]]:
    """The keys added, removed and changed, by part: what a reader scans first."""
    summary: dict[str, dict[str, list[str]]] = {}
    for c in changes:
        summary.setdefault(c.part, {"added": [], "removed": [], "changed": []})[c.change].append(c.key)
    return summary
