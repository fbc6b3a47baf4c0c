"""Check-in and pulse rules as pure functions: the pulse alert, `--goal` parsing, the workflow's pulse section."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from engine.domain.definition import PulseRules, parse_definition
from engine.domain.errors import BadInput
from engine.domain.inputs import goal_progress
from engine.domain.notices import NoticeKind, cadence_notice_kinds
from engine.program.checkins import pulse_alert_reason
from workflows import builtin_workflow_texts

LEADERSHIP = builtin_workflow_texts()["leadership-development.yaml"]
RULES = PulseRules(alert_at_or_below=2, alert_drop=2, notify=("coach", "talent"))


def _answers(expectancy: int, instrumentality: int, valence: int) -> dict[str, int]:
    return {"expectancy": expectancy, "instrumentality": instrumentality, "valence": valence}


@pytest.mark.parametrize(("answers", "previous", "reason"), [
    (_answers(3, 3, 3), None, None),
    (_answers(2, 3, 3), None, "expectancy 2 is at or below 2"),
    (_answers(3, 1, 2), None, "instrumentality 1 is at or below 2; valence 2 is at or below 2"),
    (_answers(3, 4, 4), _answers(5, 5, 5), "expectancy fell from 5 to 3"),
    (_answers(4, 4, 4), _answers(5, 5, 5), None),
    (_answers(5, 5, 5), _answers(1, 1, 1), None),
    (_answers(2, 5, 5), _answers(4, 5, 5), "expectancy 2 is at or below 2; expectancy fell from 4 to 2"),
])
def test_pulse_alert_reason_names_each_low_answer_and_each_drop(answers: dict[str, int],
                                                                previous: dict[str, int] | None,
                                                                reason: str | None) -> None:
    """An answer at or below the threshold, or a drop of two or more since the last pulse, is a reason to alert."""
    assert pulse_alert_reason(RULES, answers, previous) == reason


def test_pulse_alert_thresholds_come_from_the_rules() -> None:
    """With alert_at_or_below 3 and alert_drop 1, a 3 and a drop of one both alert."""
    rules = PulseRules(alert_at_or_below=3, alert_drop=1, notify=("coach",))
    assert pulse_alert_reason(rules, _answers(4, 3, 5), _answers(5, 3, 5)) == (
        "instrumentality 3 is at or below 3; expectancy fell from 5 to 4")


def test_goal_progress_parses_each_goal_once() -> None:
    """`--goal 3=40 --goal 7=100` gives {3: 40, 7: 100}."""
    assert goal_progress(["3=40", " 7 = 100 "]) == {3: 40, 7: 100}


@pytest.mark.parametrize(("values", "message"), [
    (["3"], "give GOAL_ID=PERCENT"), (["x=4"], "give GOAL_ID=PERCENT"), (["3=4.5"], "give GOAL_ID=PERCENT"),
    (["3=101"], "from 0 to 100"), (["3=-5"], "from 0 to 100"), (["3=1", "3=2"], "given more than once"),
])
def test_goal_progress_refuses_malformed_values(values: list[str], message: str) -> None:
    """A malformed, out-of-range or repeated --goal is bad input (exit 2)."""
    with pytest.raises(BadInput, match=message):
        goal_progress(values)


def test_each_cadence_kind_sends_its_own_due_notice_and_a_pulse_lapses_as_a_missed_checkin() -> None:
    """checkin -> checkin_due/checkin_missed, pulse -> pulse_due/checkin_missed, others -> contact_due/_missed."""
    assert cadence_notice_kinds("checkin") == (NoticeKind.CHECKIN_DUE, NoticeKind.CHECKIN_MISSED)
    assert cadence_notice_kinds("pulse") == (NoticeKind.PULSE_DUE, NoticeKind.CHECKIN_MISSED)
    assert cadence_notice_kinds("sponsor_contact") == (NoticeKind.CONTACT_DUE, NoticeKind.CONTACT_MISSED)


def test_builtin_workflow_declares_monthly_checkins_quarterly_pulses_and_their_alert() -> None:
    """The built-in program checks in monthly (home manager told), pulses quarterly and alerts coach and talent."""
    definition = parse_definition(LEADERSHIP)
    by_kind = {c.kind: c for c in definition.cadences}
    assert (by_kind["checkin"].every.months, by_kind["checkin"].notify) == (
        1, ("assignee", "host_manager", "sending_manager"))
    assert (by_kind["pulse"].every.months, by_kind["pulse"].notify) == (3, ("assignee",))
    assert definition.pulse == RULES


def _problems(mutate: Any) -> list[str]:
    raw = yaml.safe_load(LEADERSHIP)
    mutate(raw)
    with pytest.raises(BadInput) as caught:
        parse_definition(yaml.safe_dump(raw), source="wf.yaml")
    return caught.value.details


def test_pulse_section_with_unknown_role_or_bad_threshold_is_reported_by_path() -> None:
    """An unknown notify role and a threshold outside 1-5 are each located in the `pulse:` section."""
    assert _problems(lambda raw: raw["pulse"].update(notify=["coach", "hr"])) == [
        "wf.yaml: pulse.notify: unknown role 'hr'"]
    assert _problems(lambda raw: raw["pulse"].update(alert_at_or_below=6))[0].startswith(
        "wf.yaml: pulse.alert_at_or_below:")


def test_pulse_cadence_must_be_answered_by_the_assignee() -> None:
    """A pulse cadence with another with_role is refused: only the assignee answers a pulse."""
    def mutate(raw: dict[str, Any]) -> None:
        next(c for c in raw["cadences"] if c["kind"] == "pulse")["with_role"] = "coach"

    assert _problems(mutate) == ["wf.yaml: cadences[3].with_role: a pulse is answered by the assignee, so with_role "
                                 "must be assignee"]
