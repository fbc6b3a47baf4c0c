"""The workflow language: built-ins parse, and every kind of mistake is reported with its path."""

from __future__ import annotations

import pytest
import yaml

from engine.domain.definition import parse_definition
from engine.domain.errors import BadInput
from workflows import builtin_workflow_texts

LEADERSHIP = builtin_workflow_texts()["leadership-development.yaml"]


def _problems(mutate: object) -> list[str]:
    raw = yaml.safe_load(LEADERSHIP)
    mutate(raw)  # type: ignore[operator]
    with pytest.raises(BadInput) as caught:
        parse_definition(yaml.safe_dump(raw), source="wf.yaml")
    return caught.value.details


def test_builtin_workflows_parse() -> None:
    """Both shipped workflows are valid definitions."""
    names = {parse_definition(text).name for text in builtin_workflow_texts().values()}
    assert names == {"leadership-development", "short-term-project"}


def test_leadership_development_has_the_contract_stages_in_order() -> None:
    """The built-in program runs interviews through completed, with cancellation on the side."""
    definition = parse_definition(LEADERSHIP)
    assert definition.stage_keys == ("interviews", "plan_agreed", "orientation", "manager_briefing",
                                     "alignment_meetings", "coaching", "repatriation", "completed", "cancelled")
    assert definition.roles == ("assignee", "sending_manager", "host_manager", "coach", "sponsor", "talent",
                                "mobility")


def test_cancellation_is_reachable_from_every_stage_before_completed() -> None:
    """The wildcard transition reaches cancelled from each non-final stage and never from completed."""
    definition = parse_definition(LEADERSHIP)
    reachable = [s for s in definition.stage_keys if any(t.dest == "cancelled" for t in definition.transitions_from(s))]
    assert reachable == list(definition.stage_keys[:7])


def test_default_next_is_the_first_declared_transition() -> None:
    """`advance` without --to follows the program's order, never the wildcard cancellation."""
    definition = parse_definition(LEADERSHIP)
    nexts = [t.dest if (t := definition.default_next(s)) else None for s in definition.stage_keys]
    assert nexts == ["plan_agreed", "orientation", "manager_briefing", "alignment_meetings", "coaching",
                     "repatriation", "completed", None, None]


def test_invalid_yaml_names_the_line() -> None:
    """A YAML syntax error is reported with its line number."""
    with pytest.raises(BadInput, match=r"line 3"):
        parse_definition("name: x\nroles: [a\nstages: {\n", source="bad.yaml")


def test_schema_errors_are_located_by_path() -> None:
    """A missing field or wrong type is reported with the path to it."""
    details = _problems(lambda raw: raw["stages"][1]["tasks"][0].pop("owner"))
    assert "wf.yaml: stages[1].tasks[0].owner: Field required" in details


def test_unknown_role_stage_and_guard_are_each_reported() -> None:
    """Semantic mistakes are all collected, not just the first."""
    def mutate(raw: dict) -> None:  # type: ignore[type-arg]
        raw["stages"][0]["tasks"][0]["owner"] = "ceo"
        raw["transitions"][0]["to"] = "nowhere"
        raw["transitions"][2]["guards"] = ["moon_is_full"]
    details = _problems(mutate)
    assert "wf.yaml: stages[0].tasks[0].owner: unknown role 'ceo'" in details
    assert "wf.yaml: transitions[0].to: unknown stage 'nowhere'" in details
    assert any(d.startswith("wf.yaml: transitions[2].guards[0].guard: unknown guard 'moon_is_full'") for d in details)


def test_unreachable_stage_is_reported() -> None:
    """A stage no transition leads to is a mistake."""
    def mutate(raw: dict) -> None:  # type: ignore[type-arg]
        raw["stages"].append({"key": "limbo", "title": "Limbo"})
    assert "wf.yaml: stages: stage 'limbo' is unreachable from 'interviews'" in _problems(mutate)


def test_duplicate_task_key_is_reported() -> None:
    """Task keys are unique within a workflow, so reminders and history can name them."""
    def mutate(raw: dict) -> None:  # type: ignore[type-arg]
        raw["stages"][1]["tasks"][0]["key"] = "interview_assignee"
    details = _problems(mutate)
    assert "wf.yaml: stages[1].tasks[0].key: duplicate task key 'interview_assignee'" in details


def test_task_due_before_its_stage_begins_is_a_bad_offset() -> None:
    """A negative offset from stage entry would be overdue on arrival."""
    def mutate(raw: dict) -> None:  # type: ignore[type-arg]
        raw["stages"][0]["tasks"][0]["due"] = {"days": -5}
    details = _problems(mutate)
    assert "wf.yaml: stages[0].tasks[0].due.days: a task cannot fall due before its stage begins" in details


def test_offset_anchor_must_be_known() -> None:
    """Offsets count from stage entry, the start date or the end date only."""
    def mutate(raw: dict) -> None:  # type: ignore[type-arg]
        raw["stages"][0]["tasks"][0]["due"] = {"days": 5, "from": "lunch"}
    assert any(d.startswith("wf.yaml: stages[0].tasks[0].due.from:") for d in _problems(mutate))


def test_guard_parameters_are_checked() -> None:
    """A sign-off guard naming an unknown role is refused at validation, not at run time."""
    def mutate(raw: dict) -> None:  # type: ignore[type-arg]
        raw["transitions"][1]["guards"][2] = {"guard": "plan_signed_off", "params": {"roles": ["assignee", "board"]}}
    assert "wf.yaml: transitions[1].guards[2].params.roles: unknown role 'board'" in _problems(mutate)


def test_plan_section_names_known_stages_and_roles() -> None:
    """Every stage and role the plan section names must exist in the workflow."""
    def mutate(raw: dict) -> None:  # type: ignore[type-arg]
        raw["plan"].update(agreed_stage="handshake", signers=["assignee", "board"], notify_change="boss",
                           follow_up={"role": "ghost", "days": 2}, acknowledge="nobody")
    details = _problems(mutate)
    assert {"wf.yaml: plan.agreed_stage: unknown stage 'handshake'", "wf.yaml: plan.signers: unknown role 'board'",
            "wf.yaml: plan.notify_change: unknown role 'boss'", "wf.yaml: plan.acknowledge: unknown role 'nobody'",
            "wf.yaml: plan.follow_up.role: unknown role 'ghost'"} <= set(details)


def test_rules_after_agreement_need_the_agreed_stage() -> None:
    """Telling home of a change means nothing without a stage that agrees the plan."""
    def mutate(raw: dict) -> None:  # type: ignore[type-arg]
        del raw["plan"]["agreed_stage"]
    assert ("wf.yaml: plan: notify_change, follow_up, acknowledge need agreed_stage, the stage whose end agrees the "
            "plan") in _problems(mutate)


def test_sign_off_guard_without_roles_needs_plan_signers() -> None:
    """A bare plan_signed_off reads the signers from the plan section, so a workflow without them is refused."""
    def mutate(raw: dict) -> None:  # type: ignore[type-arg]
        del raw["plan"]
    assert "wf.yaml: transitions[1].guards[2]: plan_signed_off without roles needs plan.signers" in _problems(mutate)


def test_built_in_workflow_declares_its_plan_rules() -> None:
    """The leadership program's plan rules are data: who signs, who hears, who follows up, and 90 days of immersion."""
    plan = parse_definition(LEADERSHIP).plan
    assert plan is not None
    assert (plan.agreed_stage, plan.notify_change, plan.acknowledge, plan.immersion_days) == (
        "plan_agreed", "sending_manager", "sending_manager", 90)
    assert plan.follow_up is not None
    assert (plan.follow_up.role, plan.follow_up.days) == ("coach", 2)
    assert plan.signers == ("assignee", "sending_manager", "host_manager", "talent", "mobility")


def test_cadence_needs_exactly_one_unit() -> None:
    """`every` takes months or weeks, not both and not neither."""
    def mutate(raw: dict) -> None:  # type: ignore[type-arg]
        raw["cadences"][0]["every"] = {"months": 1, "weeks": 4}
    assert any(d.startswith("wf.yaml: cadences[0].every: Value error, give exactly one") for d in _problems(mutate))


@pytest.mark.parametrize("every", [{}, {"months": 0}, {"weeks": 0}])
def test_cadence_without_a_period_is_refused(every: dict[str, int]) -> None:
    """A cadence that never advances would stall the daemon; it is refused at validation."""
    def mutate(raw: dict) -> None:  # type: ignore[type-arg]
        raw["cadences"][0]["every"] = every
    assert any(d.startswith("wf.yaml: cadences[0].every:") for d in _problems(mutate))


def test_not_before_days_are_bounded() -> None:
    """A date offset beyond ten years is refused instead of overflowing the calendar later."""
    def mutate(raw: dict) -> None:  # type: ignore[type-arg]
        raw["transitions"][5]["guards"][1]["params"]["days"] = -99999999999
    assert "wf.yaml: transitions[5].guards[1].params.days: Input should be greater than or equal to -3650" in \
        _problems(mutate)


def test_stage_with_tasks_cannot_be_entered_twice() -> None:
    """Tasks are created once per stage, so a loop back into a stage with tasks is refused."""
    def mutate(raw: dict) -> None:  # type: ignore[type-arg]
        raw["transitions"].insert(0, {"from": "orientation", "to": "plan_agreed"})
    assert "wf.yaml: stages[1]: stage 'plan_agreed' has tasks and can be entered more than once" in _problems(mutate)


def test_problems_of_meaning_beside_schema_errors_keep_the_paths_as_written() -> None:
    """A task that fails the schema is left out of the other checks, and later paths still count it."""
    def mutate(raw: dict) -> None:  # type: ignore[type-arg]
        del raw["stages"][0]["tasks"][0]["title"]
        raw["stages"][0]["tasks"][1]["owner"] = "nobody"
    assert _problems(mutate) == ["wf.yaml: stages[0].tasks[0].title: Field required",
                                 "wf.yaml: stages[0].tasks[1].owner: unknown role 'nobody'"]


def test_a_transition_failing_the_schema_makes_no_stage_unreachable() -> None:
    """Leaving out a malformed transition does not report the stages behind it as unreachable."""
    def mutate(raw: dict) -> None:  # type: ignore[type-arg]
        raw["transitions"][0]["to"] = ["plan_agreed"]
        raw["roles"].append("assignee")
    assert _problems(mutate) == ["wf.yaml: transitions[0].to: Input should be a valid string",
                                 "wf.yaml: roles: duplicate role 'assignee'"]
