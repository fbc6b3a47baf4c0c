"""The lifecycle machine: fires allowed transitions, refuses others, draws itself."""

from __future__ import annotations

from datetime import date

import pytest

from engine.domain.definition import parse_definition
from engine.domain.errors import InvalidTransition
from engine.domain.guards import GuardContext, TaskFacts
from engine.domain.lifecycle import Lifecycle, Subject
from workflows import builtin_workflow_texts

DEFINITION = parse_definition(builtin_workflow_texts()["leadership-development.yaml"])


def _ctx(stage: str, *, tasks_done: bool = True) -> GuardContext:
    return GuardContext(stage=stage, start=date(2026, 1, 1), end=date(2027, 1, 1), today=date(2026, 6, 1),
                        plan_version=1, stage_tasks=(TaskFacts("t", "T", "coach", tasks_done),),
                        plan_signers=DEFINITION.plan.signers if DEFINITION.plan else ())


def test_fire_moves_the_subject_when_guards_pass() -> None:
    """A passing transition sets the subject's stage."""
    subject = Subject("interviews")
    assert Lifecycle(DEFINITION).fire(subject, "plan_agreed", _ctx("interviews"))
    assert subject.stage == "plan_agreed"


def test_fire_returns_false_and_keeps_the_stage_when_a_guard_fails() -> None:
    """The machine's condition is the conjunction of the guards."""
    subject = Subject("interviews")
    assert not Lifecycle(DEFINITION).fire(subject, "plan_agreed", _ctx("interviews", tasks_done=False))
    assert subject.stage == "interviews"


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
    with pytest.raises(InvalidTransition):
        lifecycle.fire(Subject("completed"), "cancelled", _ctx("completed"))


def test_diagram_is_mermaid_with_every_stage_and_guard() -> None:
    """The diagram is a stateDiagram-v2 naming stages and the guards on each arrow."""
    diagram = Lifecycle(DEFINITION).diagram()
    assert diagram.splitlines()[0] == "stateDiagram-v2"
    assert "    [*] --> interviews" in diagram
    assert "    plan_agreed --> orientation : stage_tasks_done, min_smart_goals, plan_signed_off" in diagram
    assert "    coaching --> cancelled : (reason required)" in diagram
    assert "    completed --> [*]" in diagram
    assert all(stage in diagram for stage in DEFINITION.stage_keys)
