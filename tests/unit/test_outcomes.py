"""Pure parts of outcomes and the program summary: ratings, amounts, currencies, retention and cost per leader."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from engine.domain import inputs
from engine.domain.errors import BadInput
from engine.program import outcomes
from engine.reporting import summary
from engine.store.program_queries import OutcomeRow, ProgramAssignmentRow

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)


def _assignment(assignment_id: int, end: date, cost: str | None = None, currency: str | None = None,
                stage: str = "completed") -> ProgramAssignmentRow:
    return ProgramAssignmentRow(assignment_id, 1, stage, end, None, None if cost is None else Decimal(cost), currency)


def _outcome(assignment_id: int, months: int, retained: bool) -> OutcomeRow:
    return OutcomeRow(assignment_id, months, retained, False, None)


def test_competency_rating_reads_name_before_and_after() -> None:
    """`NAME=BEFORE:AFTER` gives the name trimmed and both ratings."""
    assert outcomes.competency_rating(" cross-cultural leadership = 2:5") == outcomes.CompetencyRating(
        "cross-cultural leadership", 2, 5)


def test_competency_rating_reads_name_and_after_alone_to_grow_from_the_baseline() -> None:
    """`NAME=AFTER` leaves `before` to the baseline rated when the plan was agreed."""
    assert outcomes.competency_rating("negotiation=4") == outcomes.CompetencyRating("negotiation", None, 4)


@pytest.mark.parametrize("value", ["negotiation=0:3", "negotiation=3:6", "negotiation=a:3", "negotiation=6",
                                   "negotiation=:3", "=2:3", "negotiation", "negotiation=-1:3", "negotiation=²"])
def test_competency_rating_refuses_values_off_the_scale_or_malformed(value: str) -> None:
    """A rating outside 1 to 5, or a value not shaped NAME=AFTER or NAME=BEFORE:AFTER, is a BadInput."""
    with pytest.raises(BadInput):
        outcomes.competency_rating(value)


@pytest.mark.parametrize(("value", "expected"), [("250000", "250000.00"), ("1_000.5", "1000.50"), ("0", "0.00")])
def test_amount_keeps_cents(value: str, expected: str) -> None:
    """An amount is kept with two decimals."""
    assert str(inputs.amount(value)) == expected


@pytest.mark.parametrize("value", ["-1", "1.234", "abc", "NaN", "Infinity", "1e20", ""])
def test_amount_refuses_negative_fractional_cents_and_non_numbers(value: str) -> None:
    """A negative amount, one with fractions of a cent, a non-number or one too large for the column is refused."""
    with pytest.raises(BadInput):
        inputs.amount(value)


def test_currency_is_three_letters_upper_cased() -> None:
    """A currency code is upper-cased; anything but three letters is refused."""
    assert inputs.currency(" eur ") == "EUR"
    with pytest.raises(BadInput):
        inputs.currency("EURO")


def test_retention_counts_those_whose_milestone_came_or_whose_outcome_is_recorded() -> None:
    """Due: the milestone date (end + 365 or 730 days) has come, or the outcome is already recorded."""
    assignments = [_assignment(1, date(2025, 3, 1)), _assignment(2, date(2025, 3, 3)), _assignment(3, date(2025, 6, 1)),
                   _assignment(4, date(2023, 1, 1))]
    recorded = [_outcome(1, 12, True), _outcome(3, 12, False), _outcome(4, 12, True), _outcome(4, 24, True)]
    found = summary.retention(assignments, {1, 2, 3, 4}, recorded, NOW)
    # 12 months: 1 (2026-03-01 has come), 3 (recorded early), 4; not 2 (2026-03-03); 24 months: only 4
    assert [(r.months, r.due, r.recorded, r.retained) for r in found] == [(12, 3, 3, 2), (24, 1, 1, 1)]


def test_retained_leaders_follow_the_latest_outcome() -> None:
    """An assignee who left by 24 months is no longer a leader retained, whatever the 12-month outcome said."""
    recorded = [_outcome(1, 12, True), _outcome(1, 24, False), _outcome(2, 12, True), _outcome(3, 12, False)]
    assert summary.retained_leaders(recorded) == {2}


def test_cost_per_retained_leader_divides_each_currencys_total_by_its_leaders_retained() -> None:
    """Every costed assignment counts toward the total; the total is divided by the leaders retained among them."""
    assignments = [_assignment(1, date(2024, 1, 1), "100000", "EUR"), _assignment(2, date(2024, 1, 1), "50000", "EUR"),
                   _assignment(3, date(2024, 1, 1), "70000", "USD"), _assignment(4, date(2024, 1, 1))]
    assert [c.view() for c in summary.cost_per_retained_leader(assignments, {1, 4})] == [
        {"currency": "EUR", "assignments": 2, "total": "150000.00", "retained_leaders": 1,
         "per_retained_leader": "150000.00"},
        {"currency": "USD", "assignments": 1, "total": "70000.00", "retained_leaders": 0,
         "per_retained_leader": None}]
