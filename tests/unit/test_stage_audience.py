"""Who hears of a stage change: the declared roles of the stage or the workflow, and the new stage's task owners."""

from __future__ import annotations

import pytest
import yaml

from engine.domain.definition import parse_definition
from engine.domain.errors import BadInput
from workflows import builtin_workflow_texts

LEADERSHIP = builtin_workflow_texts()["leadership-development.yaml"]
SHORT = builtin_workflow_texts()["short-term-project.yaml"]


def test_built_in_stage_changes_go_to_assignee_mobility_and_task_owners() -> None:
    """Entering orientation is told to the assignee and mobility (who owns its tasks), not to all seven roles."""
    definition = parse_definition(LEADERSHIP)
    assert definition.stage_change_audience("orientation") == ("assignee", "mobility")
    assert definition.stage_change_audience("coaching") == ("assignee", "coach", "mobility")


def test_stage_notify_replaces_the_workflow_list_and_task_owners_are_added() -> None:
    """A stage's own notify list replaces stage_changes.notify; the owners of its tasks still hear."""
    definition = parse_definition(LEADERSHIP)
    assert definition.stage_change_audience("plan_agreed") == (
        "assignee", "sending_manager", "host_manager", "coach", "talent", "mobility")
    assert definition.stage_change_audience("cancelled") == definition.roles


def test_default_audience_leaves_out_roles_the_workflow_lacks() -> None:
    """Without a stage_changes section the default (assignee, mobility) skips a role the workflow does not have."""
    raw = yaml.safe_load(SHORT)
    raw.pop("stage_changes", None)
    raw["roles"] = ["assignee", "sending_manager", "host_manager"]
    raw["stages"][0]["tasks"][1]["owner"] = "host_manager"
    raw["stages"][-1].pop("notify", None)
    raw["reminders"]["escalate_to"] = "host_manager"
    raw["transitions"][0]["guards"][1]["params"]["role"] = "host_manager"  # not_before's own default is mobility
    definition = parse_definition(yaml.safe_dump(raw))
    assert definition.stage_change_audience("completed") == ("assignee",)


def test_unknown_role_in_an_audience_is_reported_by_path() -> None:
    """A stage's notify and stage_changes.notify may name only the workflow's roles."""
    raw = yaml.safe_load(LEADERSHIP)
    raw["stages"][0]["notify"] = ["assignee", "board"]
    raw["stage_changes"] = {"notify": ["ghost"]}
    with pytest.raises(BadInput) as caught:
        parse_definition(yaml.safe_dump(raw), source="wf.yaml")
    assert {"wf.yaml: stages[0].notify: unknown role 'board'",
            "wf.yaml: stage_changes.notify: unknown role 'ghost'"} <= set(caught.value.details)
