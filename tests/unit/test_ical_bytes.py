"""The iCalendar text Sojourn writes stays byte for byte what it was, and icalendar still reads it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from icalendar import Calendar

from tests.unit.ical_cases import PERIODS, all_texts

CAPTURED = json.loads((Path(__file__).parent / "fixtures" / "ical_bytes.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("case", sorted(CAPTURED))
def test_calendar_text_is_byte_for_byte_the_captured_text(case: str) -> None:
    """Each fixed period, zone and recipient (and a two-year personal calendar) gives exactly the captured bytes."""
    assert all_texts()[case].encode() == CAPTURED[case].encode()


@pytest.mark.parametrize("case", [p[0] for p in PERIODS])
def test_attachment_parses_with_icalendar_as_one_event_in_the_recipients_zone(case: str) -> None:
    """icalendar reads every attachment back: one event at the recipient's local hour, its texts unescaped."""
    _, assignment, assignee, cadence, partner, first, _, recipient, hour, _ = next(p for p in PERIODS if p[0] == case)
    calendar = Calendar.from_ical(all_texts()[case])

    (event,) = calendar.events
    assert event.start.date() == first
    assert event.start.hour == hour
    assert str(event["SUMMARY"]).startswith(f"{cadence.title}: due by ")
    assert f"({assignee.name}, {assignment.home} to {assignment.host})" in str(event["DESCRIPTION"])
    assert partner.name in str(event["DESCRIPTION"]) or cadence.kind in ("pulse", "checkin")
    assert str(calendar["X-WR-TIMEZONE"]) == recipient.tz
