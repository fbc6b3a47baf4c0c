"""Checks on values users type or import: each failure is a BadInput that says how to fix it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import date
from decimal import Decimal
from typing import TypeVar

from engine.domain.errors import BadInput, SojournError

T = TypeVar("T")

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


# Control characters (C0, DEL, C1) and the Unicode line and paragraph separators: none belongs in a name or a title,
# and each can break a line-based format (iCalendar, CSV, e-mail headers, Mermaid) that shows the text later.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def text(value: str, what: str) -> str:
    """A one-line text such as a name or a title: not empty, no control characters (not even a newline)."""
    cleaned = value.strip()
    if not cleaned:
        raise BadInput(f"{what}: must not be empty")
    return one_line(cleaned, what)


def one_line(value: str, what: str) -> str:
    """`value` unchanged, unless it holds a control character: names, titles and reasons are single lines."""
    problem = control_character(value)
    if problem:
        raise BadInput(f"{what}: {problem}")
    return value


def multiline(value: str, what: str) -> str:
    """Free text such as notes or feedback: several lines allowed (Windows line ends become plain newlines), no
    other control characters."""
    normalised = value.replace("\r\n", "\n")
    problem = control_character(normalised, lines=True)
    if problem:
        raise BadInput(f"{what}: {problem}")
    return normalised


def note(value: str | None, what: str) -> str | None:
    """An optional free text (a note, feedback, notes of a contact): None stays None, otherwise `multiline`."""
    return None if value is None else multiline(value, what)


def reason(value: str | None, what: str = "--reason") -> str | None:
    """An optional reason given for a change: None stays None, otherwise a single line (`one_line`)."""
    return None if value is None else one_line(value, what)


def control_character(value: str, *, lines: bool = False) -> str | None:
    """What is wrong with `value` if it holds a control character (`lines`: other than a newline), else None."""
    found = (_CONTROL_BUT_NEWLINE if lines else _CONTROL).search(value)
    if found is None:
        return None
    allowed = "only plain text and line breaks are allowed" if lines else "it must be a single line of plain text"
    return f"contains the control character {_describe(found.group())}; {allowed}"


def _describe(char: str) -> str:
    names = {"\t": "tab", "\r": "carriage return", "\n": "newline", "\x1b": "escape", "\x00": "NUL"}
    return f"U+{ord(char):04X}" + (f" ({names[char]})" if char in names else "")


# --- every problem at once ----------------------------------------------------------------------------------------

MAX_PROBLEMS = 100  # problem lines printed for one input; the rest are counted


def capped(problems: list[str], limit: int = MAX_PROBLEMS) -> list[str]:
    """`problems`, cut to `limit` lines with a last line that counts the rest, so a broken file stays readable."""
    if len(problems) <= limit:
        return problems
    return [*problems[:limit], f"... and {len(problems) - limit:,} more problems"]


class Problems:
    """The failures of independent checks on one input, collected so that the user sees all of them at once."""

    def __init__(self) -> None:
        self.errors: list[SojournError] = []

    def check(self, function: Callable[..., T], *args: object) -> T | None:
        """`function(*args)`, or None when it fails (the failure is kept)."""
        try:
            return function(*args)
        except SojournError as exc:
            self.errors.append(exc)
            return None

    def raise_if_any(self) -> None:
        """Raise the one failure as it is, or all of them as one error: bad input (exit 2) when any was bad input,
        otherwise of the first failure's kind."""
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            kind = BadInput if any(isinstance(e, BadInput) for e in self.errors) else type(self.errors[0])
            lines = [line for e in self.errors for line in e.lines()]
            raise kind(lines[0], details=capped(lines[1:]))


# --- files ------------------------------------------------------------------------------------------------------

_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def utf8_text(data: bytes, source: str) -> str:
    """The text of a file users give us, which must be UTF-8 (a leading byte-order mark is dropped); otherwise an
    error that says which encoding the file seems to use and how to convert it."""
    if data.startswith(_UTF16_BOMS):
        raise BadInput(f"{source}: the file is UTF-16 text, not UTF-8",
                       details=[f"save it as UTF-8 (e.g. 'CSV UTF-8' in a spreadsheet) or convert it: "
                                f"iconv -f UTF-16 -t UTF-8 {source}"])
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        guess, iconv = _legacy_encoding(data)
        raise BadInput(f"{source}, line {line}: not UTF-8 text; it seems to be {guess}",
                       details=[f"save it as UTF-8 (e.g. 'CSV UTF-8' in a spreadsheet) or convert it: "
                                f"iconv -f {iconv} -t UTF-8 {source}"]) from None


def _legacy_encoding(data: bytes) -> tuple[str, str]:
    """A guess at a non-UTF-8 file's encoding: Windows-1252 when it uses that code page's extra characters
    (curly quotes, the euro sign), otherwise Latin-1; both read every byte, so the guess names the likelier one."""
    if any(0x80 <= b <= 0x9F for b in data):
        return "Windows-1252 (Western European)", "CP1252"
    return "Latin-1 (ISO-8859-1)", "ISO-8859-1"


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


# The levels above the person that a goal is aligned to (`objective add --level`); the individual level is the goal.
OBJECTIVE_LEVELS = ("organisation", "mobility_team")


def objective_level(value: str, what: str = "--level") -> str:
    cleaned = value.strip().lower()
    if cleaned not in OBJECTIVE_LEVELS:
        raise BadInput(f"{what}: {value!r} is not an objective level; give one of {', '.join(OBJECTIVE_LEVELS)}")
    return cleaned


def year(value: str | int, what: str = "--year") -> int:
    """A calendar year written YYYY, within the years an assignment can plausibly touch."""
    cleaned = str(value).strip()
    if not (cleaned.isdigit() and len(cleaned) == 4) or not MIN_YEAR <= int(cleaned) <= MAX_YEAR:
        raise BadInput(f"{what}: {value!r} is not a year between {MIN_YEAR} and {MAX_YEAR} (YYYY)")
    return int(cleaned)


def row_ids(values: Iterable[str], what: str) -> list[int]:
    """Ids of rows as typed (each a whole number above 0), once each in the order given; every bad one is named."""
    bad = [v for v in values if not (v.strip().isdigit() and int(v) > 0)]
    if bad:
        raise BadInput(f"{what}: {', '.join(repr(v) for v in bad)} is not an id (a whole number above 0)")
    return list(dict.fromkeys(int(v) for v in values))


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
