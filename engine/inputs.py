"""Checks on values users type or import: each failure is a BadInput that says how to fix it."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from engine.errors import BadInput

_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
MIN_YEAR, MAX_YEAR = 1950, 2200


def email(value: str, what: str = "email") -> str:
    cleaned = value.strip().lower()
    if not _EMAIL.match(cleaned):
        raise BadInput(f"{what}: {value!r} is not an email address like ana.lima@example.com")
    return cleaned


def country(value: str, what: str) -> str:
    cleaned = value.strip().upper()
    if not _COUNTRY.match(cleaned):
        raise BadInput(f"{what}: {value!r} is not a two-letter ISO 3166 country code such as BR or DE")
    return cleaned


def iso_date(value: str | date, what: str) -> date:
    """A calendar date written YYYY-MM-DD, within the years an assignment can plausibly touch."""
    if isinstance(value, date):
        return value
    if not _DATE.match(value.strip()):
        raise BadInput(f"{what}: {value!r} is not a date in the form YYYY-MM-DD")
    try:
        parsed = date.fromisoformat(value.strip())
    except ValueError:  # well formed, but no such day: 2027-02-30, 2026-13-01
        raise BadInput(f"{what}: {value!r} is not a real date") from None
    if not MIN_YEAR <= parsed.year <= MAX_YEAR:
        raise BadInput(f"{what}: {parsed.isoformat()} is outside the years {MIN_YEAR} to {MAX_YEAR}")
    return parsed


def text(value: str, what: str) -> str:
    cleaned = value.strip()
    if not cleaned:
        raise BadInput(f"{what}: must not be empty")
    return cleaned


def period(start: date, end: date) -> None:
    if end <= start:
        raise BadInput(f"end {end.isoformat()} must be after start {start.isoformat()}")


def stakeholder_pair(value: str) -> tuple[str, str]:
    """`ROLE=EMAIL` as given to --stakeholder."""
    role, sep, address = value.partition("=")
    if not sep or not role.strip():
        raise BadInput(f"--stakeholder {value!r}: give ROLE=EMAIL, e.g. sponsor=chief@example.com")
    return role.strip(), email(address, f"--stakeholder {role.strip()}")


def goal_progress(values: Iterable[str]) -> dict[int, int]:
    """`GOAL_ID=PERCENT` as given to --goal, once per goal; the percentage must lie in 0-100."""
    progress: dict[int, int] = {}
    for value in values:
        goal, sep, percent = value.partition("=")
        if not sep or not goal.strip().isdigit() or not percent.strip().lstrip("-").isdigit():
            raise BadInput(f"--goal {value!r}: give GOAL_ID=PERCENT, e.g. --goal 3=40")
        goal_id, share = int(goal), int(percent)
        if goal_id in progress:
            raise BadInput(f"--goal {goal_id}: given more than once")
        if not 0 <= share <= 100:
            raise BadInput(f"--goal {value!r}: progress is a percentage from 0 to 100")
        progress[goal_id] = share
    return progress


# Why an assignment ended before its time, as data the program summary counts (`advance --to cancelled`).
EARLY_RETURN_REASONS = ("family", "performance", "business_change", "health", "other")
# The milestones after return at which an outcome is recorded, in months (`outcome record --months`).
OUTCOME_MONTHS = (12, 24)
_CURRENCY = re.compile(r"^[A-Z]{3}$")
MAX_COST = Decimal("999999999999.99")  # what a Numeric(14, 2) column holds


def early_return_reason(value: str) -> str:
    cleaned = value.strip().lower()
    if cleaned not in EARLY_RETURN_REASONS:
        raise BadInput(f"--early-return: {value!r} is not a reason; give one of {', '.join(EARLY_RETURN_REASONS)}")
    return cleaned


def currency(value: str, what: str = "--currency") -> str:
    cleaned = value.strip().upper()
    if not _CURRENCY.match(cleaned):
        raise BadInput(f"{what}: {value!r} is not a three-letter ISO 4217 currency code such as EUR or USD")
    return cleaned


def amount(value: str | Decimal, what: str = "--cost") -> Decimal:
    """A sum of money: not negative, at most two decimal places."""
    try:
        parsed = Decimal(str(value).strip().replace("_", ""))
    except ArithmeticError:
        parsed = Decimal("NaN")
    if not parsed.is_finite() or parsed < 0 or parsed > MAX_COST or parsed != parsed.quantize(Decimal("0.01")):
        raise BadInput(f"{what}: {value!r} is not an amount like 250000 or 250000.50 (at most two decimals)")
    return parsed.quantize(Decimal("0.01"))
