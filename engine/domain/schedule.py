"""Calendar arithmetic: due dates from offsets, and local wall-clock hours turned into UTC instants."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from engine.domain.definition import DueOffset
from engine.domain.errors import BadInput


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`, or BadInput that says how to name one."""
    try:
        if ("/" not in name and name != "UTC") or name not in _known_zones():
            raise ZoneInfoNotFoundError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadInput(f"unknown time zone {name!r}; use an IANA name such as Europe/Berlin or Asia/Kolkata"
                       ) from None


def _known_zones() -> set[str]:
    global _ZONES
    if _ZONES is None:
        _ZONES = available_timezones()
    return _ZONES


_ZONES: set[str] | None = None


def local_date(instant: datetime, tz: str) -> date:
    """The calendar day `instant` falls on in time zone `tz`."""
    return instant.astimezone(ZoneInfo(tz)).date()


@lru_cache(maxsize=16384)
def local_instant(day: date, hour: int, tz: str) -> datetime:
    """`hour`:00 on `day` in `tz`, as an aware UTC instant (a gap or fold at DST resolves the usual way).

    Kept for the days asked again: planning turns the same few days, hours and zones into instants for every
    cadence of a batch, many times a sweep.
    """
    return datetime.combine(day, time(hour), tzinfo=ZoneInfo(tz)).astimezone(UTC)


def end_of_day(day: date, tz: str) -> datetime:
    """The instant `day` ends in `tz`: a task due that day is overdue from here on."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=ZoneInfo(tz)).astimezone(UTC)


def due_date(offset: DueOffset, *, stage_entered_on: date, start: date, end: date) -> date:
    anchor = {"stage_entry": stage_entered_on, "start": start, "end": end}[offset.anchor]
    return anchor + timedelta(days=offset.days)
