"""The lifecycle: finds the transition a move takes, lists its unmet guards, refuses others, draws itself."""

from __future__ import annotations

from datetime import date

import pytest

from engine.domain.definition import parse_definition
from engine.domain.errors import InvalidTransition
from engine.domain.guards import GuardContext, TaskFacts
from engine.domain.lifecycle import Lifecycle
from workflows import builtin_workflow_texts

DEFINITION = parse_definition(builtin_workflow_texts()["leadership-development.yaml"])


def _ctx(stage: str, *, tasks_done: bool = True) -> GuardContext:
    return GuardContext(stage=stage, start=date(2026, 1, 1), end=date(2027, 1, 1), today=date(2026, 6, 1),
                        plan_version=1, stage_tasks=(TaskFacts("t", "T", "coach", tasks_done),),
                        plan_signers=DEFINITION.plan.signers if DEFINITION.plan else ())


def test_unmet_lists_each_failing_guard() -> None:
    """Guards are evaluated one by one so every reason can be shown."""
    lifecycle = Lifecycle(DEFINITION)
    unmet = lifecycle.unmet(lifecycle.transition("plan_agreed", None), _ctx("plan_agreed", tasks_done=False))
    assert [u.guard for u in unmet] == ["stage_tasks_done", "min_smart_goals", "plan_signed_off"]


def test_transition_refuses_a_stage_not_reachable_from_here() -> None:
    """Skipping stages is an invalid transition that names what is allowed."""
    with pytest.raises(InvalidTransition, match=r"allowed from interviews: plan_agreed, cancelled"):
        Lifecycle(DEFINITION).transition("interviews", "completed")


def test_completed_is_final() -> None:
    """Nothing leaves completed, not even cancellation."""
    lifecycle = Lifecycle(DEFINITION)
    with pytest.raises(InvalidTransition, match="final"):
        lifecycle.transition("completed", None)
    with pytest.raises(InvalidTransition, match=r"allowed from completed: none: the stage is final"):
        lifecycle.transition("completed", "cancelled")


def test_diagram_is_mermaid_with_every_stage_and_guard() -> None:
    """The diagram is a stateDiagram-v2 naming stages and the guards on each arrow."""
    diagram = Lifecycle(DEFINITION).diagram()
    assert diagram.splitlines()[0] == "stateDiagram-v2"
    assert "    [*] --> interviews" in diagram
    assert "    plan_agreed --> orientation : stage_tasks_done, min_smart_goals, plan_signed_off" in diagram
    assert "    coaching --> cancelled : (reason required)" in diagram
    assert "    completed --> [*]" in diagram
    assert all(stage in diagram for stage in DEFINITION.stage_keys)
