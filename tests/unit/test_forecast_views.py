"""Forecast options and notice views: the pure parts of a forecast."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from engine.domain.errors import BadInput
from engine.planning.forecast import ForecastNotice, ForecastOptions


def test_until_stops_the_replay_at_the_first_instant_of_the_next_utc_day() -> None:
    """`--until 2027-03-31` replays the whole of that UTC day and nothing after it."""
    assert ForecastOptions(until=date(2027, 3, 31)).stop_at == datetime(2027, 4, 1, tzinfo=UTC)
    assert ForecastOptions().stop_at is None


@pytest.mark.parametrize("late", [-1, 3651])
def test_late_days_out_of_range_are_bad_input(late: int) -> None:
    """A negative or absurd --late is a user error (exit 2), not a replay that never ends."""
    with pytest.raises(BadInput, match="--late"):
        ForecastOptions(late_days=late)


def test_notice_view_shows_the_instant_in_utc_and_in_the_recipients_zone() -> None:
    """`at` is UTC with an offset; `local_time` is the same instant on the recipient's wall clock, DST included."""
    notice = ForecastNotice(at=datetime(2027, 7, 1, 7, tzinfo=UTC), recipient="cole.coach@example.com",
                            tz="Europe/Berlin", role="coach", kind="task_due", key="task_due/3", assignment_id=1,
                            task_id=3, subject="Due today")
    view = notice.view()
    assert view["at"] == "2027-07-01T07:00:00+00:00"
    assert view["local_time"] == "2027-07-01T09:00:00+02:00"
    assert (view["recipient"], view["role"], view["kind"], view["key"], view["task_id"]) == (
        "cole.coach@example.com", "coach", "task_due", "task_due/3", 3)
