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


def test_move_evaluates_each_guard_once_and_returns_the_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's condition is the only evaluation of a move: each guard once, its reason kept."""
    from engine.domain import lifecycle as module

    calls: list[str] = []

    def counting(name: str, params: object, ctx: GuardContext) -> object:
        calls.append(name)
        return evaluate(name, params, ctx)  # type: ignore[arg-type]

    evaluate = module.evaluate
    monkeypatch.setattr(module, "evaluate", counting)
    lifecycle = Lifecycle(DEFINITION)
    unmet = lifecycle.move("plan_agreed", lifecycle.transition("plan_agreed", None), _ctx("plan_agreed",
                                                                                           tasks_done=False))
    assert [u.guard for u in unmet] == ["stage_tasks_done", "min_smart_goals", "plan_signed_off"]
    assert calls == ["stage_tasks_done", "min_smart_goals", "plan_signed_off"]


def test_move_with_every_guard_met_refuses_nothing() -> None:
    """A transition without unmet guards is allowed by the machine."""
    lifecycle = Lifecycle(DEFINITION)
    assert lifecycle.move("interviews", lifecycle.transition("interviews", "cancelled"), _ctx("interviews")) == []


def test_move_from_a_stage_the_transition_does_not_leave_is_invalid() -> None:
    """The machine refuses a transition fired from a stage it does not start from."""
    lifecycle = Lifecycle(DEFINITION)
    with pytest.raises(InvalidTransition, match="cannot go from completed to orientation"):
        lifecycle.move("completed", lifecycle.transition("plan_agreed", None), _ctx("completed"))
