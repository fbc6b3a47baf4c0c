"""The lifecycle: one `transitions` state machine per workflow version, whose conditions are the guards.

The machine decides a move once: its condition evaluates every guard of the transition, collects the unmet ones with
their reasons, and lets the move happen only when there are none. `unmet` is that same evaluation without a move, for
the views that say what an assignment waits on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from engine.domain.definition import ANY_STAGE, Transition, WorkflowDefinition
from engine.domain.errors import BadInput, InvalidTransition
from engine.domain.escape import mermaid_id, mermaid_label
from engine.domain.guards import GuardContext, GuardResult, evaluate

if TYPE_CHECKING:
    from transitions import Machine


@dataclass
class _Move:
    """What the machine moves: a stage, and the guards that refused the move (SQLModel rows cannot carry the
    attributes transitions injects)."""

    stage: str
    refusals: list[UnmetGuard] = field(default_factory=list)


@dataclass(frozen=True)
class UnmetGuard:
    guard: str
    reason: str
    who: tuple[str, ...]


class Lifecycle:
    """The moves of one workflow version: the transition a move takes, the machine that makes it, and the diagram."""

    def __init__(self, definition: WorkflowDefinition) -> None:
        self.definition = definition

    @cached_property
    def machine(self) -> Machine:
        """Built on the first move, so the commands that only show stages never import transitions."""
        from transitions import Machine

        machine = Machine(model=None, states=list(self.definition.stage_keys), initial=self.definition.initial,
                          auto_transitions=False, model_attribute="stage", send_event=True)
        for t in self.definition.transitions:
            sources: list[Any] = self._sources(t)
            machine.add_transition(_trigger(t.dest), sources, t.dest, conditions=[self._guards_pass(t)])
        return machine

    @classmethod
    def _guards_pass(cls, transition: Transition) -> Any:
        def guards_pass(event: Any) -> bool:
            move: _Move = event.model
            move.refusals = cls.unmet(transition, event.kwargs["ctx"])
            return not move.refusals
        return guards_pass

    def move(self, stage: str, transition: Transition, ctx: GuardContext) -> list[UnmetGuard]:
        """Fire `transition` from `stage`: every guard is evaluated once, by the machine's condition. Returns the
        unmet guards; none means the move is allowed (the caller writes it)."""
        from transitions import MachineError

        move = _Move(stage)
        try:
            self.machine.events[_trigger(transition.dest)].trigger(move, ctx=ctx)
        except (MachineError, KeyError):
            raise InvalidTransition(f"cannot go from {stage} to {transition.dest}") from None
        return move.refusals

    def _sources(self, transition: Transition) -> list[str]:
        """The stages a transition leaves from; a wildcard means every stage that is not final."""
        if transition.source != ANY_STAGE:
            return [transition.source]
        d = self.definition
        return [s for s in d.stage_keys if not d.is_terminal(s) and s != transition.dest]

    def transition(self, stage: str, dest: str | None) -> Transition:
        """The transition `advance` would take from `stage` to `dest` (default: the next stage)."""
        if dest is None:
            default = self.definition.default_next(stage)
            if default is None:
                raise InvalidTransition(f"stage {stage!r} is final; there is no next stage")
            return default
        if dest not in self.definition.stage_keys:
            known = ", ".join(self.definition.stage_keys)
            raise BadInput(f"--to: unknown stage {dest!r}; stages of {self.definition.name}: {known}")
        if dest == stage:
            raise InvalidTransition(f"the assignment is already in stage {stage}")
        for t in self.definition.transitions_from(stage):
            if t.dest == dest:
                return t
        allowed = ", ".join(t.dest for t in self.definition.transitions_from(stage)) or "none: the stage is final"
        raise InvalidTransition(f"cannot go from {stage} to {dest} (allowed from {stage}: {allowed})")

    @staticmethod
    def unmet(transition: Transition, ctx: GuardContext) -> list[UnmetGuard]:
        """Every guard of the transition that does not pass, each with its reason and who must act."""
        results: list[tuple[str, GuardResult]] = [(g.name, evaluate(g.name, g.params, ctx)) for g in transition.guards]
        return [UnmetGuard(name, r.reason, r.who) for name, r in results if not r.ok]

    def diagram(self) -> str:
        """A Mermaid stateDiagram-v2 of the workflow, with each transition labelled by its guards."""
        lines = ["stateDiagram-v2", f"    [*] --> {mermaid_id(self.definition.initial)}"]
        for stage in self.definition.stages:
            lines.append(f"    {mermaid_id(stage.key)} : {mermaid_label(stage.title)}")
        for t in self.definition.transitions:
            notes = [", ".join(g.name for g in t.guards), "(reason required)" if t.requires_reason else ""]
            label = mermaid_label(" ".join(n for n in notes if n))
            lines += [f"    {mermaid_id(s)} --> {mermaid_id(t.dest)}" + (f" : {label}" if label else "")
                      for s in self._sources(t)]
        lines += [f"    {mermaid_id(s)} --> [*]" for s in self.definition.stage_keys if self.definition.is_terminal(s)]
        return "\n".join(lines)


def _trigger(dest: str) -> str:
    return f"to_{dest}"


_LIFECYCLES: dict[tuple[str, int], Lifecycle] = {}


def lifecycle_for(name: str, version: int, definition: WorkflowDefinition) -> Lifecycle:
    """One lifecycle per installed workflow version, built on first use and kept for the process."""
    key = (name, version)
    # Another database may hold a different text under the same name and version.
    if key not in _LIFECYCLES or _LIFECYCLES[key].definition is not definition:
        _LIFECYCLES[key] = Lifecycle(definition)
    return _LIFECYCLES[key]
