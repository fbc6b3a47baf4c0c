"""The pure diff of two workflow definitions and the instant a migrated cadence counts from."""

from __future__ import annotations

from datetime import UTC, datetime

import yaml

from engine.domain.cadences import counted_from
from engine.domain.definition import parse_definition
from engine.domain.workflow_diff import diff_definitions, diff_summary
from workflows import builtin_workflow_texts

TEXT = builtin_workflow_texts()["short-term-project.yaml"]


def _edited(edit: dict[str, object]) -> str:
    raw = yaml.safe_load(TEXT)
    raw.update(edit)
    return yaml.safe_dump(raw, sort_keys=False)


def test_identical_definitions_have_no_differences() -> None:
    """A version compared with itself lists nothing."""
    definition = parse_definition(TEXT)
    assert diff_definitions(definition, definition) == []


def test_a_changed_due_rule_and_a_removed_cadence_are_listed_with_their_fields() -> None:
    """A task whose due rule moved shows the old and new rule; a dropped cadence shows as removed."""
    raw = yaml.safe_load(TEXT)
    raw["stages"][0]["tasks"][0]["due"] = {"days": 10}
    new = parse_definition(_edited({"stages": raw["stages"], "cadences": []}))
    changes = diff_definitions(parse_definition(TEXT), new)
    task = next(c for c in changes if c.part == "task")
    assert (task.key, task.change) == ("agree_project_scope", "changed")
    assert task.fields["due"].view() == {"from": {"days": 7, "from": "stage_entry"},
                                        "to": {"days": 10, "from": "stage_entry"}}
    assert diff_summary(changes)["cadence"] == {"added": [], "removed": ["sponsor_contact"], "changed": []}


def test_a_cadence_brought_by_a_migration_counts_from_the_later_instant() -> None:
    """Periods count from the migration when it came after the entry into the cadence's stages, else the entry."""
    entered, started = datetime(2027, 1, 4, tzinfo=UTC), datetime(2027, 3, 1, tzinfo=UTC)
    assert counted_from(entered, started) == started
    assert counted_from(started, entered) == started
    assert counted_from(entered, None) == entered
    assert counted_from(None, started) is None
