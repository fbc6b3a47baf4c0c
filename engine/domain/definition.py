"""Workflow definitions: the YAML language, parsed into typed models and checked for meaning."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.domain.errors import BadInput
from engine.domain.inputs import capped, control_character
from engine.domain.notices import PULSE_CADENCE
from engine.domain.pruning import prune

ANY_STAGE = "*"
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C parser is ten times faster
Anchor = Literal["stage_entry", "start", "end"]



class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class DueOffset(_Strict):
    """A due date as whole days after (or, negative, before) an anchor date."""

    days: int = Field(ge=-3650, le=3650)
    anchor: Anchor = Field(default="stage_entry", alias="from")


class TaskTemplate(_Strict):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str = Field(min_length=1)
    owner: str
    due: DueOffset
    description: str = ""


class Stage(_Strict):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str = Field(min_length=1)
    tasks: tuple[TaskTemplate, ...] = ()
    notify: tuple[str, ...] | None = None  # who hears the assignment entered it; None: stage_changes.notify


class StageChangeRules(_Strict):
    """Who hears of a stage change (`stage_changed`): these roles, and the owners of the new stage's tasks.

    A stage's own `notify` replaces this list for entering that stage. The default names roles a workflow may
    lack; those are left out, while a role named in the file must be one of the workflow's.
    """

    notify: tuple[str, ...] = ("assignee", "mobility")


class GuardRef(_Strict):
    """A guard named by the lifecycle, with the parameters it is called with (a bare name means none)."""

    name: str = Field(alias="guard")
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _bare_name(cls, value: Any) -> Any:
        return {"guard": value} if isinstance(value, str) else value


class Transition(_Strict):
    source: str = Field(alias="from")
    dest: str = Field(alias="to")
    guards: tuple[GuardRef, ...] = ()
    requires_reason: bool = False


class Every(_Strict):
    months: int = Field(default=0, ge=0, le=12)
    weeks: int = Field(default=0, ge=0, le=52)

    @model_validator(mode="after")
    def _one_unit(self) -> Every:
        if bool(self.months) == bool(self.weeks):
            raise ValueError("give exactly one of months or weeks, greater than 0")
        return self


class Cadence(_Strict):
    """A recurring contact that must happen in every period while the assignment is in a range of stages.

    Kind `checkin` is satisfied by a `sojourn checkin` in the period and `pulse` by a `sojourn pulse`; any
    other kind by a contact of that kind logged with `sojourn contact log`.
    """

    kind: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    title: str = Field(min_length=1)
    with_role: str
    notify: tuple[str, ...]
    every: Every
    from_stage: str
    until_stage: str
    grace_days: int = Field(default=7, ge=0, le=60)


class Reminders(_Strict):
    """When task owners hear about their tasks, and who hears when they do not act.

    Each escalation step, `escalation_days[i]` days after a task fell overdue, goes to `escalate_to` and, when
    `managers` names one for the task owner's role, to that manager role too.
    """

    local_hour: int = Field(default=9, ge=0, le=23)
    due_soon_days: int = Field(default=3, ge=0, le=60)
    escalate_to: str = "mobility"
    escalation_days: tuple[int, ...] = (3, 10)
    managers: dict[str, str] = Field(default_factory=dict)

    @field_validator("escalation_days")
    @classmethod
    def _increasing(cls, days: tuple[int, ...]) -> tuple[int, ...]:
        if any(d < 1 for d in days) or list(days) != sorted(set(days)):
            raise ValueError("must be whole numbers of days, at least 1, strictly increasing")
        return days


class PulseRules(_Strict):
    """When an expectancy pulse alerts, and whom: any answer at or below `alert_at_or_below`, or any answer
    `alert_drop` or more below the assignee's previous pulse, sends `pulse_alert` to every `notify` role at once."""

    alert_at_or_below: int = Field(default=2, ge=1, le=5)
    alert_drop: int = Field(default=2, ge=1, le=4)
    notify: tuple[str, ...] = Field(min_length=1)


class FollowUp(_Strict):
    """Who writes up a change to an agreed plan, and within how many days."""

    role: str
    days: int = Field(default=2, ge=0, le=60)


class PlanRules(_Strict):
    """The development plan's rules: when it counts as agreed, who signs it, and what a later change sets off.

    Once the assignment has left `agreed_stage`, every change tells `notify_change`, opens a written follow-up task
    for `follow_up.role` and a task for `acknowledge` to confirm they heard of it (due in `acknowledge_days`),
    which the reminder ladder escalates while it stays open. No goal may fall due in the first `immersion_days`
    days after the start date.
    """

    agreed_stage: str | None = None
    signers: tuple[str, ...] = ()
    notify_change: str | None = None
    follow_up: FollowUp | None = None
    acknowledge: str | None = None
    acknowledge_days: int = Field(default=2, ge=0, le=60)
    immersion_days: int = Field(default=0, ge=0, le=3650)


class WorkflowDefinition(_Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    title: str = Field(min_length=1)
    description: str = ""
    roles: tuple[str, ...] = Field(min_length=1)
    initial: str
    stages: tuple[Stage, ...] = Field(min_length=2)
    transitions: tuple[Transition, ...] = Field(min_length=1)
    cadences: tuple[Cadence, ...] = ()
    reminders: Reminders = Reminders()
    pulse: PulseRules | None = None  # without it, pulses are recorded but never alert
    plan: PlanRules | None = None
    stage_changes: StageChangeRules = StageChangeRules()

    def stage(self, key: str) -> Stage:
        return next(s for s in self.stages if s.key == key)

    @property
    def stage_keys(self) -> tuple[str, ...]:
        return tuple(s.key for s in self.stages)

    def transitions_from(self, stage: str) -> list[Transition]:
        """Transitions leaving `stage`, the declared ones first, then wildcard ones."""
        own = [t for t in self.transitions if t.source == stage]
        wild = [t for t in self.transitions if t.source == ANY_STAGE and t.dest != stage]
        return own + ([] if self.is_terminal(stage) else wild)

    def default_next(self, stage: str) -> Transition | None:
        """The forward step `advance` takes without `--to`: the first transition declared from the stage."""
        own = [t for t in self.transitions if t.source == stage]
        return own[0] if own else None

    def stage_change_audience(self, stage: str) -> tuple[str, ...]:
        """The roles told that an assignment entered `stage`, in the workflow's order of roles."""
        entered = self.stage(stage)
        declared = entered.notify if entered.notify is not None else self.stage_changes.notify
        wanted = {*declared, *(t.owner for t in entered.tasks)}
        return tuple(r for r in self.roles if r in wanted)

    def is_terminal(self, stage: str) -> bool:
        return not any(t.source == stage for t in self.transitions)

    @property
    def stakeholder_roles(self) -> tuple[str, ...]:
        """Roles that must be filled when an assignment is created (everyone but the assignee)."""
        return tuple(r for r in self.roles if r != "assignee")


def parse_definition(text: str, *, source: str = "<workflow>") -> WorkflowDefinition:
    """Parse YAML text into a definition, raising BadInput with every problem located by path."""
    try:
        raw = yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506  (a safe loader, in C where built)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise BadInput(f"{source}: not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(raw, dict):
        raise BadInput(f"{source}: a workflow must be a YAML mapping with name, roles, stages and transitions")
    try:
        definition = WorkflowDefinition.model_validate(raw)
    except ValidationError as exc:
        problems = [f"{source}: {_path(e['loc'])}: {e['msg']}" for e in exc.errors()]
        problems += [f"{source}: {p}" for p in _problems_beside_schema_errors(raw, exc)]
        raise BadInput(f"{source}: the workflow has {len(problems)} problem(s)", details=capped(problems)) from None
    problems = [f"{source}: {p}" for p in semantic_problems(definition)]
    if problems:
        raise BadInput(f"{source}: the workflow has {len(problems)} problem(s)", details=capped(problems))
    return definition


# Values that stand in for a top-level field that failed the schema, so the rest can still be checked for meaning.
_PLACEHOLDERS: dict[str, Any] = {"name": "workflow", "title": "Workflow", "description": "", "cadences": [],
                                 "reminders": {}, "pulse": None, "plan": None}


def _problems_beside_schema_errors(raw: dict[str, Any], exc: ValidationError) -> list[str]:
    """The problems of meaning in the part of `raw` that passed the schema, so that one run reports everything."""
    pruned = prune(raw, [(tuple(e["loc"]), e["type"]) for e in exc.errors()], _PLACEHOLDERS)
    if pruned is None:
        return []
    try:
        definition = WorkflowDefinition.model_validate(pruned.document)
    except ValidationError:
        return []
    problems = [pruned.original_path(p) for p in semantic_problems(definition) if not pruned.concerns_removed(p)]
    if pruned.lists & {("stages",), ("transitions",)}:  # what a removed stage or transition made unreachable
        problems = [p for p in problems if "is unreachable" not in p]
    return problems


def _path(loc: Iterable[int | str]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top)"


def semantic_problems(d: WorkflowDefinition) -> list[str]:
    """Every problem a schema cannot see: unknown names, duplicates, unreachable stages, unknown guards."""
    from engine.domain.guards import GUARDS, guard_param_problems

    stages = set(d.stage_keys)
    roles = set(d.roles)
    problems: list[str] = []
    problems += [f"roles: duplicate role {r!r}" for r, n in Counter(d.roles).items() if n > 1]
    if "assignee" not in roles:
        problems.append("roles: must include 'assignee'")
    problems += [f"stages: duplicate stage {k!r}" for k, n in Counter(d.stage_keys).items() if n > 1]
    if d.initial not in stages:
        problems.append(f"initial: unknown stage {d.initial!r}")
    task_keys = Counter(t.key for s in d.stages for t in s.tasks)
    for i, stage in enumerate(d.stages):
        for j, task in enumerate(stage.tasks):
            where = f"stages[{i}].tasks[{j}]"
            if task_keys[task.key] > 1:
                problems.append(f"{where}.key: duplicate task key {task.key!r}")
            if task.owner not in roles:
                problems.append(f"{where}.owner: unknown role {task.owner!r}")
            if task.due.anchor == "stage_entry" and task.due.days < 0:
                problems.append(f"{where}.due.days: a task cannot fall due before its stage begins")
    for i, t in enumerate(d.transitions):
        where = f"transitions[{i}]"
        if t.source != ANY_STAGE and t.source not in stages:
            problems.append(f"{where}.from: unknown stage {t.source!r}")
        if t.dest not in stages:
            problems.append(f"{where}.to: unknown stage {t.dest!r}")
        for k, g in enumerate(t.guards):
            if g.name not in GUARDS:
                known = ", ".join(sorted(GUARDS))
                problems.append(f"{where}.guards[{k}].guard: unknown guard {g.name!r} (known: {known})")
                continue
            problems += [f"{where}.guards[{k}].params{p}" for p in guard_param_problems(g.name, g.params, roles)]
            if g.name == "plan_signed_off" and not g.params and not (d.plan and d.plan.signers):
                problems.append(f"{where}.guards[{k}]: plan_signed_off without roles needs plan.signers")
    pairs = Counter((t.source, t.dest) for t in d.transitions)
    problems += [f"transitions: duplicate transition {s} -> {t}" for (s, t), n in pairs.items() if n > 1]
    problems += [f"stages: stage {k!r} is unreachable from {d.initial!r}" for k in _unreachable(d)]
    problems += [f"stages[{i}]: stage {s.key!r} has tasks and can be entered more than once"
                 for i, s in enumerate(d.stages) if s.tasks and s.key in _reachable(d, _successors(d, s.key))]
    for i, c in enumerate(d.cadences):
        where = f"cadences[{i}]"
        for field, value in (("from_stage", c.from_stage), ("until_stage", c.until_stage)):
            if value not in stages:
                problems.append(f"{where}.{field}: unknown stage {value!r}")
        for role in (c.with_role, *c.notify):
            if role not in roles:
                problems.append(f"{where}: unknown role {role!r}")
        if c.kind == PULSE_CADENCE and c.with_role != "assignee":
            problems.append(f"{where}.with_role: a pulse is answered by the assignee, so with_role must be assignee")
        problems += _cadence_range_problems(d, c, where)
    if d.pulse is not None:
        problems += [f"pulse.notify: unknown role {r!r}" for r in d.pulse.notify if r not in roles]
    reminder_roles = [("escalate_to", d.reminders.escalate_to)]
    reminder_roles += [(f"managers.{k}", r) for k, v in d.reminders.managers.items() for r in (k, v)]
    problems += [f"reminders.{where}: unknown role {r!r}" for where, r in reminder_roles if r not in roles]
    if d.plan is not None:
        problems += _plan_problems(d.plan, stages, roles)
    problems += _audience_problems(d, roles)
    return problems + _text_problems(d)


def _text_problems(d: WorkflowDefinition) -> list[str]:
    """Titles are single lines and descriptions plain text: what a workflow says is shown in lists, diagrams,
    calendars and e-mail, where a control character could break the format."""
    texts = [("title", d.title, False), ("description", d.description, True)]
    for i, stage in enumerate(d.stages):
        texts.append((f"stages[{i}].title", stage.title, False))
        for j, task in enumerate(stage.tasks):
            texts += [(f"stages[{i}].tasks[{j}].title", task.title, False),
                      (f"stages[{i}].tasks[{j}].description", task.description, True)]
    texts += [(f"cadences[{i}].title", c.title, False) for i, c in enumerate(d.cadences)]
    return [f"{where}: {problem}" for where, value, lines in texts
            if (problem := control_character(value, lines=lines)) is not None]


def _cadence_range_problems(d: WorkflowDefinition, cadence: Cadence, where: str) -> list[str]:
    """A cadence must be active somewhere and must stop: a final stage in its range would keep it due forever,
    since nothing leaves a final stage (the forecast and the planner would never see it end)."""
    keys = d.stage_keys
    if cadence.from_stage not in keys or cadence.until_stage not in keys:
        return []  # reported as unknown stages
    first, last = keys.index(cadence.from_stage), keys.index(cadence.until_stage)
    if first > last:
        return [f"{where}: from_stage {cadence.from_stage!r} comes after until_stage {cadence.until_stage!r} in "
                "the order of stages, so the cadence is never active"]
    final = [k for k in keys[first:last + 1] if d.is_terminal(k)]
    if final:
        return [f"{where}.until_stage: the cadence runs in the final stage {final[0]!r}, which nothing leaves, so it "
                "would never stop; end it at a stage before the final one"]
    return []


def _audience_problems(d: WorkflowDefinition, roles: set[str]) -> list[str]:
    """Roles a stage change is told to that the workflow lacks (the built-in default list is exempt)."""
    named = [(f"stages[{i}].notify", r) for i, s in enumerate(d.stages) for r in s.notify or ()]
    if "stage_changes" in d.model_fields_set:
        named += [("stage_changes.notify", r) for r in d.stage_changes.notify]
    return [f"{where}: unknown role {r!r}" for where, r in named if r not in roles]


def _plan_problems(plan: PlanRules, stages: set[str], roles: set[str]) -> list[str]:
    problems: list[str] = []
    if plan.agreed_stage is not None and plan.agreed_stage not in stages:
        problems.append(f"plan.agreed_stage: unknown stage {plan.agreed_stage!r}")
    named = [("signers", r) for r in plan.signers] + [
        (field, role) for field, role in (("notify_change", plan.notify_change), ("acknowledge", plan.acknowledge),
                                          ("follow_up.role", plan.follow_up.role if plan.follow_up else None))
        if role is not None]
    problems += [f"plan.{field}: unknown role {role!r}" for field, role in named if role not in roles]
    problems += [f"plan.signers: duplicate role {r!r}" for r, n in Counter(plan.signers).items() if n > 1]
    after_agreement = [f for f in ("notify_change", "follow_up", "acknowledge") if getattr(plan, f) is not None]
    if after_agreement and plan.agreed_stage is None:
        problems.append(f"plan: {', '.join(after_agreement)} need agreed_stage, the stage whose end agrees the plan")
    return problems


def _successors(d: WorkflowDefinition, stage: str) -> set[str]:
    own = {t.dest for t in d.transitions if t.source == stage}
    return own | ({t.dest for t in d.transitions if t.source == ANY_STAGE} if own else set())


def _reachable(d: WorkflowDefinition, start: set[str]) -> set[str]:
    """Every stage reachable from `start`, `start` included."""
    seen, frontier = set(start), list(start)
    while frontier:
        for dest in _successors(d, frontier.pop()):
            if dest not in seen:
                seen.add(dest)
                frontier.append(dest)
    return seen


def _unreachable(d: WorkflowDefinition) -> list[str]:
    if d.initial not in d.stage_keys:
        return []
    seen = _reachable(d, {d.initial})
    return [k for k in d.stage_keys if k not in seen]
