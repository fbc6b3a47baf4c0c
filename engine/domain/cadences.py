"""Cadence calendar: the periods of a recurring contact, month ends clamped, and the local hours they fall due.

A cadence is active while the assignment's stage lies between `from_stage` and `until_stage` (inclusive, in the
workflow's stage order). Its periods are anchored on the day the assignment entered that range (the last entry in
its stage history, as a date in the assignee's time zone), or on the assignment's start date if that is later, so no
period begins before the assignment does (an assignment created months ahead enters the cadence's stages early):
period k starts on the anchor plus k months, clamped to
the end of shorter months and always counted from the anchor (31 Jan, 28/29 Feb, 31 Mar, 30 Apr, ...), or on the
anchor plus k times the weeks. A period ends the day before the next one starts. Its contact is due from its first
day, at the workflow's local hour in each recipient's time zone, and looked for on the day after its end plus the
grace days.
"""

from __future__ import annotations

import calendar
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo

from engine.domain.definition import Cadence, Every, WorkflowDefinition
from engine.domain.schedule import local_instant


@lru_cache(maxsize=65536)
def add_months_clamped(anchor: date, months: int) -> date:
    """`anchor` plus `months` calendar months, on the anchor's day or the month's last day if that is shorter.

    Plain arithmetic on purpose: APScheduler's CalendarIntervalTrigger(months=1) started on the 31st skips
    the months without one, and CronTrigger(day="last") only knows month ends, not anniversaries. Kept for the
    anchors and months asked again: planning asks the same few for every cadence check of a sweep.
    """
    year, month = divmod(anchor.month - 1 + months, 12)
    year += anchor.year
    month += 1
    return date(year, month, min(anchor.day, calendar.monthrange(year, month)[1]))


def anchor_day(entered: datetime, tz: str, start: date | None) -> date:
    """The first day of a cadence's first period: the day the assignment entered the cadence's stages, in `tz`,
    but never before the assignment's `start`."""
    entered_on = entered.astimezone(ZoneInfo(tz)).date()
    return entered_on if start is None else max(entered_on, start)


@dataclass(frozen=True)
class CadenceSchedule:
    """The periods of one cadence of one assignment and the instants the daemon must act on them.

    Calendar days are computed with plain date arithmetic (clearer than triggers for clamped months);
    `zoneinfo` turns each day's local hour into an instant per recipient, so DST never moves the hour.
    """

    anchor: date
    every: Every
    grace_days: int
    local_hour: int
    due_zones: tuple[str, ...]  # time zones of the contact_due recipients
    missed_zones: tuple[str, ...]  # time zones of the contact_missed recipients

    @classmethod
    def of(cls, definition: WorkflowDefinition, cadence: Cadence, entered: datetime, assignee_tz: str, *,
           start: date | None = None, due_zones: Iterable[str] = (),
           missed_zones: Iterable[str] = ()) -> CadenceSchedule:
        """The schedule of `cadence` for an assignment that entered its stages at `entered` and starts on `start`."""
        return cls(anchor=anchor_day(entered, assignee_tz, start), every=cadence.every,
                   grace_days=cadence.grace_days, local_hour=definition.reminders.local_hour,
                   due_zones=tuple(due_zones), missed_zones=tuple(missed_zones))

    def start(self, index: int) -> date:
        """The first day of period `index` (0 is the period that starts on the anchor)."""
        if self.every.months:
            return add_months_clamped(self.anchor, index * self.every.months)
        return self.anchor + timedelta(weeks=index * self.every.weeks)

    def last_day(self, index: int) -> date:
        return self.start(index + 1) - timedelta(days=1)

    def check_day(self, index: int) -> date:
        """The day the period's contact is looked for: the day after its end plus the grace days."""
        return self.start(index + 1) + timedelta(days=self.grace_days)

    def index_of(self, day: date) -> int:
        """The period `day` falls in; -1 before the anchor."""
        if day < self.anchor:
            return -1
        if self.every.months:
            index = ((day.year - self.anchor.year) * 12 + day.month - self.anchor.month) // self.every.months
        else:
            index = (day - self.anchor).days // (7 * self.every.weeks)
        while index > 0 and self.start(index) > day:
            index -= 1
        while self.start(index + 1) <= day:
            index += 1
        return index

    def held(self, index: int, ordered_days: Sequence[date]) -> bool:
        """Whether a day of the sorted `ordered_days` falls in period `index`: what holds a period, for planning
        and for the report's figures alike."""
        position = bisect_left(ordered_days, self.start(index))
        return position < len(ordered_days) and ordered_days[position] < self.start(index + 1)

    def held_and_due(self, last_check_day: date, ordered_days: Sequence[date]) -> tuple[int, int]:
        """(held, due) over the periods whose check day has come by `last_check_day`."""
        held = due = 0
        while self.check_day(due) <= last_check_day:
            held += self.held(due, ordered_days)
            due += 1
        return held, due

    def due_at(self, index: int) -> datetime:
        """When the first recipient's local hour comes on the period's first day."""
        return _earliest(self.start(index), self.local_hour, self.due_zones)

    def check_at(self, index: int) -> datetime:
        return _earliest(self.check_day(index), self.local_hour, self.missed_zones)

    def current_period(self, now: datetime) -> int | None:
        """The latest period whose contact_due has come by `now` (None before the first one)."""
        index = max(self.index_of(_latest_local_date(now, self.due_zones)), 0)
        while index >= 0 and self.due_at(index) > now:
            index -= 1
        while self.due_at(index + 1) <= now:
            index += 1
        return index if index >= 0 else None

    def checks_between(self, since: datetime, until: datetime) -> list[int]:
        """Periods whose contact_missed check falls in [since, until]."""
        index = self._first_check_not_before(since)
        found = []
        while self.check_at(index) <= until:
            found.append(index)
            index += 1
        return found

    def next_event_after(self, now: datetime) -> datetime:
        """The first instant after `now` when a contact_due or a contact_missed check falls due."""
        current = self.current_period(now)
        next_due = self.due_at(0 if current is None else current + 1)
        index = self._first_check_not_before(now)
        while self.check_at(index) <= now:
            index += 1
        return min(next_due, self.check_at(index))

    def look_at(self, since: datetime, now: datetime) -> tuple[int | None, list[int], datetime]:
        """What a sweep at `now` finds, for a cadence last looked at `since` (<= now): `current_period(now)`,
        `checks_between(since, now)` and `next_event_after(now)`, each period's instants computed once."""
        current = self.current_period(now)
        index = self._first_check_not_before(since)
        checked = []
        while (check := self.check_at(index)) <= now:
            checked.append(index)
            index += 1
        # every earlier check fell before `since`, so this is the first one after `now`
        return current, checked, min(self.due_at(0 if current is None else current + 1), check)

    def _first_check_not_before(self, instant: datetime) -> int:
        # A check day lies grace days after a period's end; start a little early and walk forward, because
        # time zones put the same instant on neighbouring days.
        earliest_day = min(instant.astimezone(ZoneInfo(z)).date() for z in self.missed_zones)
        index = max(self.index_of(earliest_day - timedelta(days=self.grace_days + 2)) - 1, 0)
        while self.check_at(index) < instant:
            index += 1
        return index


def _earliest(day: date, hour: int, zones: Iterable[str]) -> datetime:
    return min(local_instant(day, hour, z) for z in zones)


def _latest_local_date(instant: datetime, zones: Iterable[str]) -> date:
    return max(instant.astimezone(ZoneInfo(z)).date() for z in zones)


def in_range(definition: WorkflowDefinition, cadence: Cadence, stage: str | None) -> bool:
    """Whether `stage` lies between the cadence's from_stage and until_stage, inclusive, in stage order."""
    order = stage_order(definition)
    position, first, last = order.get(stage or ""), order.get(cadence.from_stage), order.get(cadence.until_stage)
    return position is not None and first is not None and last is not None and first <= position <= last


def stage_order(definition: WorkflowDefinition) -> dict[str, int]:
    """Each stage key of `definition` with its position, built once per definition: planning asks for every cadence
    and every step of its history at each check."""
    known = _STAGE_ORDERS.get(id(definition))
    if known is None or known[0] is not definition:
        known = _STAGE_ORDERS[id(definition)] = (definition, {key: i for i, key in enumerate(definition.stage_keys)})
    return known[1]


# id -> (the definition, its stage order); the definition is kept so that its id is never reused by another
_STAGE_ORDERS: dict[int, tuple[WorkflowDefinition, dict[str, int]]] = {}


class StageStep(Protocol):
    """One step of a stage history: a stored StageChange, or a plain row with the same three values."""

    @property
    def from_stage(self) -> str | None: ...

    @property
    def to_stage(self) -> str: ...

    @property
    def at(self) -> datetime: ...


def range_entered_at(definition: WorkflowDefinition, cadence: Cadence,
                     history: Iterable[StageStep]) -> datetime | None:
    """When the assignment last moved into the cadence's stage range from outside it (None: never)."""
    entered = None
    for step in history:
        if in_range(definition, cadence, step.to_stage) and not in_range(definition, cadence, step.from_stage):
            entered = step.at
    return entered


def counted_from(entered: datetime | None, started: datetime | None) -> datetime | None:
    """When a cadence's periods count from: the last entry into its stages, or, when a workflow migration brought
    the cadence to an assignment already in them (`started`), that instant, whichever is later."""
    if entered is None or started is None:
        return entered
    return max(entered, started)


def period_start_of(definition: WorkflowDefinition, kind: str, history: Iterable[StageStep], tz: str,
                    day: date, *, start: date | None = None, started: datetime | None = None) -> date | None:
    """The first day of the period of cadence `kind` that `day` falls in, counted from the last entry into the
    cadence's stages (or `started`, see `counted_from`; in `tz`, the assignee's zone) or the assignment's `start`,
    whichever is later; None when there is no such period."""
    cadence = next((c for c in definition.cadences if c.kind == kind), None)
    entered = None if cadence is None else counted_from(range_entered_at(definition, cadence, history), started)
    if cadence is None or entered is None:
        return None
    schedule = CadenceSchedule.of(definition, cadence, entered, tz, start=start)
    index = schedule.index_of(day)
    return schedule.start(index) if index >= 0 else None


def immersion_ends(definition: WorkflowDefinition, start: date) -> date | None:
    """The first day after the plan's immersion days (`plan.immersion_days` from the start date), when check-ins
    begin to ask for progress per goal; None when the workflow has no immersion days."""
    rules = definition.plan
    if rules is None or not rules.immersion_days:
        return None
    return start + timedelta(days=rules.immersion_days)
