"""Guards: small pure functions that say whether a transition may happen, why not, and who must act."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from engine.domain.inputs import OBJECTIVE_LEVELS


@dataclass(frozen=True)
class GuardResult:
    ok: bool
    reason: str = ""
    who: tuple[str, ...] = ()  # the roles that must act for the guard to pass


PASS = GuardResult(ok=True)


@dataclass(frozen=True)
class TaskFacts:
    key: str
    title: str
    owner_role: str
    done: bool


@dataclass(frozen=True)
class GoalFacts:
    title: str
    measure: str
    target: str
    due: date | None
    id: int | None = None
    objective_levels: frozenset[str] = frozenset()  # the levels of the objectives the goal is aligned to

    @property
    def is_smart(self) -> bool:
        """Specific (a title), measurable (a measure and target) and time-limited (a due date)."""
        return bool(self.title.strip() and self.measure.strip() and self.target.strip() and self.due)


@dataclass(frozen=True)
class GuardContext:
    """What guards may look at: a snapshot of one assignment, taken inside the advancing transaction."""

    stage: str
    start: date
    end: date
    today: date
    plan_version: int
    stage_tasks: tuple[TaskFacts, ...] = ()
    goals: tuple[GoalFacts, ...] = ()
    signed_roles: frozenset[str] = field(default_factory=frozenset)  # roles that signed the current plan
    plan_signers: tuple[str, ...] = ()  # the workflow's `plan.signers`
    goal_writers: tuple[str, ...] = ("assignee",)  # who must act when the plan lacks goals


def stage_tasks_done(ctx: GuardContext) -> GuardResult:
    open_tasks = [t for t in ctx.stage_tasks if not t.done]
    if not open_tasks:
        return PASS
    listed = "; ".join(f"{t.key} ({t.owner_role})" for t in open_tasks)
    return GuardResult(False, f"{len(open_tasks)} task(s) of stage {ctx.stage} still open: {listed}",
                       tuple(dict.fromkeys(t.owner_role for t in open_tasks)))


def min_smart_goals(ctx: GuardContext, count: int = 1) -> GuardResult:
    smart = sum(g.is_smart for g in ctx.goals)
    if smart >= count:
        return PASS
    return GuardResult(False, f"the plan has {smart} goal(s) with a measure, a target and a due date; "
                              f"it needs at least {count}", ctx.goal_writers)


def plan_signed_off(ctx: GuardContext, roles: list[str] | None = None) -> GuardResult:
    """Every role in `roles` (default: the workflow's plan signers) signed the current plan version."""
    missing = [r for r in (ctx.plan_signers if roles is None else roles) if r not in ctx.signed_roles]
    if not missing:
        return PASS
    return GuardResult(False, f"plan version {ctx.plan_version} is not signed off by: {', '.join(missing)}",
                       tuple(missing))


def goals_aligned(ctx: GuardContext, levels: list[str] | None = None, role: str | None = None) -> GuardResult:
    """Every goal is aligned to at least one objective, and the goals together reach every level in `levels`
    (default: organisation and mobility team; the individual level is the goal itself)."""
    unaligned = [g for g in ctx.goals if not g.objective_levels]
    reached = set().union(*(g.objective_levels for g in ctx.goals))
    uncovered = [level for level in (OBJECTIVE_LEVELS if levels is None else levels) if level not in reached]
    if not unaligned and not uncovered:
        return PASS
    problems = []
    if unaligned:
        named = "; ".join(f"goal {g.id} ({g.title})" if g.id is not None else g.title for g in unaligned)
        problems.append(f"{len(unaligned)} goal(s) aligned to no objective: {named}")
    if uncovered:
        problems.append(f"no goal is aligned to an objective of level {', '.join(uncovered)}")
    hint = "link goals with: sojourn goal edit GOAL_ID --objective OBJECTIVE_ID"
    return GuardResult(False, f"{'; '.join(problems)} ({hint})", (role,) if role else ctx.goal_writers)


def not_before(ctx: GuardContext, days: int, anchor: str, role: str = "mobility") -> GuardResult:
    """Refuses until `days` after (negative: before) the assignment's start or end date."""
    earliest = not_before_day(ctx.start, ctx.end, days, anchor)
    if ctx.today >= earliest:
        return PASS
    return GuardResult(False, f"not before {earliest.isoformat()} ({_describe_offset(days, anchor)})", (role,))


def not_before_day(start: date, end: date, days: int, anchor: str, role: str = "mobility") -> date:
    """The first day `not_before` passes: `days` after (negative: before) the start or end date."""
    return (start if anchor == "start" else end) + timedelta(days=days)


def _describe_offset(days: int, anchor: str) -> str:
    if days == 0:
        return f"the {anchor} date"
    side = "after" if days > 0 else "before"
    return f"{abs(days)} day(s) {side} the {anchor} date"


GuardFunction = Callable[..., GuardResult]
GUARDS: Mapping[str, GuardFunction] = {
    "stage_tasks_done": stage_tasks_done,
    "min_smart_goals": min_smart_goals,
    "plan_signed_off": plan_signed_off,
    "goals_aligned": goals_aligned,
    "not_before": not_before,
}

# The first day each guard that waits for a date could pass, from the assignment's start and end dates and the
# guard's parameters; the other guards wait for people, never for a date.
EARLIEST_DAYS: Mapping[str, Callable[..., date]] = {
    "not_before": not_before_day,
}


def earliest_day(name: str, params: Mapping[str, Any], start: date, end: date) -> date | None:
    """The first day guard `name` could pass for an assignment running from `start` to `end`; None when no date
    decides it."""
    earliest = EARLIEST_DAYS.get(name)
    return None if earliest is None else earliest(start, end, **params)


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _NoParams(_Params):
    """stage_tasks_done takes no parameters."""


class _MinSmartGoalsParams(_Params):
    count: int = Field(default=1, ge=1)


class _PlanSignedOffParams(_Params):
    roles: list[str] | None = Field(default=None, min_length=1)  # None: the workflow's plan.signers


class _GoalsAlignedParams(_Params):
    levels: list[Literal["organisation", "mobility_team"]] | None = Field(default=None, min_length=1)
    role: str | None = None  # who must act; default: the assignee and whoever hears of plan changes


class _NotBeforeParams(_Params):
    days: int = Field(ge=-3650, le=3650)
    anchor: Literal["start", "end"]
    role: str = "mobility"


# The parameters each guard takes, as a schema: a workflow file is checked against it before it is installed.
GUARD_PARAMS: Mapping[str, type[_Params]] = {
    "stage_tasks_done": _NoParams,
    "min_smart_goals": _MinSmartGoalsParams,
    "plan_signed_off": _PlanSignedOffParams,
    "goals_aligned": _GoalsAlignedParams,
    "not_before": _NotBeforeParams,
}


def guard_param_problems(name: str, params: Mapping[str, Any], roles: set[str]) -> list[str]:
    """What is wrong with the parameters a workflow gives a guard, each as `path: problem` with the path inside the
    parameters (empty for the parameters as a whole); checked at validation time."""
    try:
        checked = GUARD_PARAMS[name].model_validate(params)
    except ValidationError as exc:
        return [f"{_param_path(e['loc'])}: {e['msg']}" for e in exc.errors()]
    named = [("roles", r) for r in getattr(checked, "roles", None) or []]
    named += [("role", r) for r in [getattr(checked, "role", None)] if r is not None]
    return [f".{field}: unknown role {role!r}" for field, role in named if role not in roles]


def _param_path(loc: tuple[int | str, ...]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)


def evaluate(name: str, params: Mapping[str, Any], ctx: GuardContext) -> GuardResult:
    return GUARDS[name](ctx, **params)
