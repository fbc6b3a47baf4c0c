"""Calendar arithmetic: due dates from offsets and local hours in each person's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from freezegun import freeze_time

from engine.domain.definition import DueOffset
from engine.domain.errors import BadInput
from engine.domain.schedule import due_date, end_of_day, local_date, local_instant, zone


def test_due_date_counts_from_each_anchor() -> None:
    """Offsets count from stage entry, the start date or the end date."""
    dates = {"stage_entered_on": date(2026, 3, 10), "start": date(2026, 1, 31), "end": date(2027, 1, 31)}
    assert due_date(DueOffset(days=14), **dates) == date(2026, 3, 24)
    assert due_date(DueOffset.model_validate({"days": 30, "from": "start"}), **dates) == date(2026, 3, 2)
    assert due_date(DueOffset.model_validate({"days": -90, "from": "end"}), **dates) == date(2026, 11, 2)


def test_local_instant_keeps_nine_oclock_across_dst() -> None:
    """09:00 in Berlin is 08:00 UTC in winter and 07:00 UTC in summer."""
    assert local_instant(date(2026, 3, 28), 9, "Europe/Berlin") == datetime(2026, 3, 28, 8, tzinfo=UTC)
    assert local_instant(date(2026, 3, 30), 9, "Europe/Berlin") == datetime(2026, 3, 30, 7, tzinfo=UTC)


def test_local_instant_handles_half_hour_offsets() -> None:
    """India is five and a half hours ahead of UTC."""
    assert local_instant(date(2026, 6, 1), 9, "Asia/Kolkata") == datetime(2026, 6, 1, 3, 30, tzinfo=UTC)


def test_end_of_day_is_local_midnight() -> None:
    """A task due on a day in Sao Paulo is overdue from that local midnight on."""
    assert end_of_day(date(2026, 7, 1), "America/Sao_Paulo") == datetime(2026, 7, 2, 3, tzinfo=UTC)


@freeze_time("2026-03-01 23:30:00+00:00")
def test_local_date_is_the_day_in_the_persons_zone() -> None:
    """Late evening UTC is already tomorrow in Kolkata and still today in Sao Paulo."""
    now = datetime.now(UTC)
    assert local_date(now, "Asia/Kolkata") == date(2026, 3, 2)
    assert local_date(now, "America/Sao_Paulo") == date(2026, 3, 1)


@pytest.mark.parametrize("name", ["Mars/Base", "CET5", "", "europe/berlin"])
def test_zone_refuses_names_that_are_not_iana_areas(name: str) -> None:
    """Only IANA Area/City names (and UTC) are accepted, with a hint."""
    with pytest.raises(BadInput, match="IANA"):
        zone(name)


def test_local_instant_asked_again_equals_the_instant_computed_afresh() -> None:
    """The kept instants are the ones computed without keeping, DST gaps and folds included, asked twice."""
    days = [date(2027, 3, d) for d in range(1, 32)] + [date(2027, 10, d) for d in range(20, 32)] + \
        [date(2027, 11, d) for d in range(1, 8)]
    zones = ["Europe/Berlin", "America/Sao_Paulo", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "UTC"]
    for _ in range(2):
        for day in days:
            for zone_name in zones:
                for hour in (0, 1, 2, 3, 9, 23):
                    assert local_instant(day, hour, zone_name) == local_instant.__wrapped__(day, hour, zone_name)
                    assert local_instant(day, hour, zone_name).tzinfo is UTC
