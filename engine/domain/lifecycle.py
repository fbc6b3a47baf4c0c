"""The lifecycle: one `transitions` state machine per workflow version, with guards that explain refusals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from transitions import Machine, MachineError

from engine.domain.definition import ANY_STAGE, Transition, WorkflowDefinition
from engine.domain.errors import BadInput, InvalidTransition
from engine.domain.escape import mermaid_id, mermaid_label
from engine.domain.guards import GuardContext, GuardResult, evaluate


@dataclass
class Subject:
    """The stage holder the machine moves; SQLModel rows cannot carry the attributes transitions injects."""

    stage: str


@dataclass(frozen=True)
class UnmetGuard:
    guard: str
    reason: str
    who: tuple[str, ...]


def trigger_name(dest: str) -> str:
    return f"to_{dest}"


class Lifecycle:
    """Moves a subject between stages of one workflow version; build it once per version (see `lifecycle_for`)."""

    def __init__(self, definition: WorkflowDefinition) -> None:
        self.definition = definition
        self.machine = Machine(model=None, states=list(definition.stage_keys), initial=definition.initial,
                               auto_transitions=False, model_attribute="stage", send_event=True)
        for t in definition.transitions:
            sources: list[Any] = list(self._sources(t))
            self.machine.add_transition(trigger_name(t.dest), sources, t.dest, conditions=[self._condition(t)])

    def _sources(self, transition: Transition) -> list[str]:
        """The stages a transition leaves from; a wildcard means every stage that is not final."""
        if transition.source != ANY_STAGE:
            return [transition.source]
        d = self.definition
        return [s for s in d.stage_keys if not d.is_terminal(s) and s != transition.dest]

    @staticmethod
    def _condition(transition: Transition) -> Any:
        def all_guards_pass(event: Any) -> bool:
            unmet: list[UnmetGuard] | None = event.kwargs.get("unmet")
            if unmet is not None:  # evaluated already by `attempt`
                return not unmet
            ctx: GuardContext = event.kwargs["ctx"]
            return all(evaluate(g.name, g.params, ctx).ok for g in transition.guards)
        return all_guards_pass

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

    def fire(self, subject: Subject, dest: str, ctx: GuardContext) -> bool:
        """Fire the trigger into `dest`; False when a guard fails, InvalidTransition when not allowed."""
        return self._trigger(subject, dest, ctx=ctx)

    def attempt(self, subject: Subject, transition: Transition, ctx: GuardContext) -> list[UnmetGuard]:
        """Evaluate the transition's guards once and fire the machine once with that verdict.

        Returns the unmet guards; when there are none the subject has moved to the transition's destination.
        """
        unmet = self.unmet(transition, ctx)
        moved = self._trigger(subject, transition.dest, ctx=ctx, unmet=unmet)
        assert moved == (not unmet), "the machine fires on the verdict it is given"
        return unmet

    def _trigger(self, subject: Subject, dest: str, **kwargs: Any) -> bool:
        try:
            return bool(self.machine.events[trigger_name(dest)].trigger(subject, **kwargs))
        except (MachineError, KeyError):
            raise InvalidTransition(f"cannot go from {subject.stage} to {dest}") from None

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


_LIFECYCLES: dict[tuple[str, int], Lifecycle] = {}


def lifecycle_for(name: str, version: int, definition: WorkflowDefinition) -> Lifecycle:
    """One machine per installed workflow version, built on first use and kept for the process."""
    key = (name, version)
    # Another database may hold a different text under the same name and version.
    if key not in _LIFECYCLES or _LIFECYCLES[key].definition is not definition:
        _LIFECYCLES[key] = Lifecycle(definition)
    return _LIFECYCLES[key]
