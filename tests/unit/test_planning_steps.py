"""Reminder steps and cadence periods as pure calendar arithmetic: local hours, DST, clamped months, superseding."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger

from engine.domain.cadences import CadenceSchedule, add_months_clamped, anchor_day
from engine.domain.definition import Every, Reminders
from engine.domain.reminders import steps_to_send, task_steps

REMINDERS = Reminders(local_hour=9, due_soon_days=3, escalate_to="mobility", escalation_days=(3, 10))
ZONES = ["Asia/Kolkata", "Australia/Sydney", "America/Santiago", "America/New_York", "Europe/Berlin",
         "Pacific/Chatham"]


def _local(instant: datetime, tz: str) -> datetime:
    return instant.astimezone(ZoneInfo(tz))


def test_task_steps_fall_at_local_hour_of_owner_when_owner_is_in_half_hour_zone() -> None:
    """Every step of a task owned in Asia/Kolkata falls at 09:00 there, which is 03:30 UTC."""
    steps = task_steps(date(2026, 5, 20), REMINDERS, "Asia/Kolkata")
    assert [s.at.astimezone(UTC).time() for s in steps] == [time(3, 30)] * 5


def test_task_steps_are_due_soon_due_overdue_then_escalations_when_reminders_are_default() -> None:
    """The steps fall on D-3, D, D+1, D+4 and D+11 for the built-in reminder settings."""
    due = date(2026, 5, 20)
    steps = task_steps(due, REMINDERS, "UTC")
    assert [(s.kind, s.number, (s.day - due).days) for s in steps] == [
        ("task_due_soon", 0, -3), ("task_due", 0, 0), ("task_overdue", 0, 1), ("escalation", 1, 4),
        ("escalation", 2, 11)]


def test_task_steps_keep_local_hour_when_dst_starts_between_them() -> None:
    """Steps on both sides of Europe/Berlin's spring change stay at 09:00 local (08:00 then 07:00 UTC)."""
    steps = task_steps(date(2026, 3, 30), REMINDERS, "Europe/Berlin")
    assert {_local(s.at, "Europe/Berlin").time() for s in steps} == {time(9)}
    assert steps[0].at.astimezone(UTC).hour == 8
    assert steps[1].at.astimezone(UTC).hour == 7


def test_task_steps_skip_due_soon_when_due_soon_days_is_zero() -> None:
    """With due_soon_days 0 the task_due step is the first; no due-soon on the same day."""
    steps = task_steps(date(2026, 5, 20), REMINDERS.model_copy(update={"due_soon_days": 0}), "UTC")
    assert [s.kind for s in steps][:2] == ["task_due", "task_overdue"]


def test_steps_to_send_sends_only_latest_owner_step_when_downtime_spanned_several() -> None:
    """After downtime past due-soon, due and overdue, only task_overdue goes to the owner."""
    steps = task_steps(date(2026, 5, 20), REMINDERS, "UTC")
    chosen, next_at = steps_to_send(steps, datetime(2026, 5, 22, 12, tzinfo=UTC))
    assert [s.kind for s in chosen] == ["task_overdue"]
    assert next_at == datetime(2026, 5, 24, 9, tzinfo=UTC)


def test_steps_to_send_sends_every_escalation_when_downtime_spanned_both() -> None:
    """Escalations are never superseded: both come once, beside the latest owner step."""
    steps = task_steps(date(2026, 5, 20), REMINDERS, "UTC")
    chosen, next_at = steps_to_send(steps, datetime(2026, 6, 30, tzinfo=UTC))
    assert [(s.kind, s.number) for s in chosen] == [("task_overdue", 0), ("escalation", 1), ("escalation", 2)]
    assert next_at is None


def test_steps_to_send_drops_escalations_dated_before_creation_when_task_was_created_overdue() -> None:
    """Created between the two escalations, a task gets its owner's latest step and the second escalation only."""
    steps = task_steps(date(2026, 5, 20), REMINDERS, "UTC")
    created = datetime(2026, 5, 26, 12, tzinfo=UTC)
    chosen, next_at = steps_to_send(steps, created, created)
    assert [(s.kind, s.number) for s in chosen] == [("task_overdue", 0)]
    assert next_at == datetime(2026, 5, 31, 9, tzinfo=UTC)
    chosen, next_at = steps_to_send(steps, datetime(2026, 5, 31, 9, tzinfo=UTC), created)
    assert [(s.kind, s.number) for s in chosen] == [("task_overdue", 0), ("escalation", 2)]
    assert next_at is None


def test_steps_to_send_sends_nothing_when_one_minute_before_first_step() -> None:
    """At 08:59 on the due-soon day nothing is due yet and the next instant is 09:00."""
    steps = task_steps(date(2026, 5, 20), REMINDERS, "UTC")
    chosen, next_at = steps_to_send(steps, datetime(2026, 5, 17, 8, 59, tzinfo=UTC))
    assert chosen == []
    assert next_at == datetime(2026, 5, 17, 9, tzinfo=UTC)


def test_add_months_clamped_lands_on_month_ends_when_anchor_is_31_january() -> None:
    """31 January steps to 29 Feb in a leap year, 31 Mar, 30 Apr, and back to 31 in long months."""
    got = [add_months_clamped(date(2028, 1, 31), k) for k in range(13)]
    assert got == [date(2028, 1, 31), date(2028, 2, 29), date(2028, 3, 31), date(2028, 4, 30), date(2028, 5, 31),
                   date(2028, 6, 30), date(2028, 7, 31), date(2028, 8, 31), date(2028, 9, 30), date(2028, 10, 31),
                   date(2028, 11, 30), date(2028, 12, 31), date(2029, 1, 31)]


def test_add_months_clamped_counts_from_anchor_when_an_earlier_month_was_short() -> None:
    """30 March follows a clamped 28 February, rather than drifting to 28 March."""
    assert add_months_clamped(date(2027, 1, 30), 1) == date(2027, 2, 28)
    assert add_months_clamped(date(2027, 1, 30), 2) == date(2027, 3, 30)


def test_calendar_interval_trigger_skips_short_months_when_started_on_31st() -> None:
    """Why monthly periods are clamped by hand: APScheduler's monthly trigger skips February from a 31st."""
    zone = ZoneInfo("UTC")
    trigger = CalendarIntervalTrigger(months=1, hour=9, start_date=date(2027, 1, 31), timezone=zone)
    fire = trigger.get_next_fire_time(None, datetime(2027, 1, 30, tzinfo=zone))
    fires = []
    for _ in range(3):
        assert fire is not None
        fires.append(fire.date())
        fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
    assert date(2027, 2, 28) not in fires


def _monthly(anchor: date, due_zones: tuple[str, ...], missed_zones: tuple[str, ...] | None = None) -> CadenceSchedule:
    return CadenceSchedule(anchor=anchor, every=Every(months=1), grace_days=7, local_hour=9, due_zones=due_zones,
                           missed_zones=missed_zones or due_zones)


@pytest.mark.parametrize("zones", [("Asia/Kolkata", "Australia/Sydney"), ("America/Santiago", "Europe/Berlin"),
                                   ("America/New_York", "Pacific/Chatham")])
def test_monthly_cadence_has_one_due_per_month_for_36_months_when_recipients_span_zones(zones: tuple[str, str]) -> None:
    """Stepping from event to event over three years meets each period's contact_due exactly once."""
    schedule = _monthly(date(2027, 1, 31), zones)
    now = datetime(2027, 1, 31, 0, tzinfo=ZoneInfo(zones[1])).astimezone(UTC)
    seen: list[int] = []
    while now < datetime(2030, 1, 1, tzinfo=UTC):
        current = schedule.current_period(now)
        if current is not None and (not seen or seen[-1] != current):
            seen.append(current)
        following = schedule.next_event_after(now)
        assert following > now
        now = following
    assert seen == list(range(36))


def test_cadence_due_at_is_first_recipient_local_hour_when_zones_differ() -> None:
    """The daemon looks at a period when the recipient furthest east reaches 09:00 on its first day."""
    schedule = _monthly(date(2027, 3, 31), ("America/New_York", "Asia/Kolkata"))
    assert schedule.due_at(0) == datetime(2027, 3, 31, 3, 30, tzinfo=UTC)


def test_four_weekly_cadence_periods_are_28_days_when_every_is_weeks() -> None:
    """Weekly periods step by whole weeks from the anchor and their check falls after the grace days."""
    schedule = CadenceSchedule(anchor=date(2027, 3, 1), every=Every(weeks=4), grace_days=7, local_hour=9,
                               due_zones=("UTC",), missed_zones=("UTC",))
    assert [schedule.start(k) for k in range(3)] == [date(2027, 3, 1), date(2027, 3, 29), date(2027, 4, 26)]
    assert schedule.last_day(0) == date(2027, 3, 28)
    assert schedule.check_day(0) == date(2027, 4, 5)


def test_index_of_finds_period_when_day_is_on_clamped_boundary() -> None:
    """The day before a clamped start belongs to the previous period; the start itself to the next."""
    schedule = _monthly(date(2027, 1, 31), ("UTC",))
    assert schedule.index_of(date(2027, 2, 27)) == 0
    assert schedule.index_of(date(2027, 2, 28)) == 1
    assert schedule.index_of(date(2027, 1, 30)) == -1


def test_checks_between_lists_each_missed_check_once_when_window_spans_months() -> None:
    """A window of three months holds the checks of the three periods whose grace ended inside it."""
    schedule = _monthly(date(2027, 1, 31), ("UTC",))
    found = schedule.checks_between(datetime(2027, 2, 1, tzinfo=UTC), datetime(2027, 5, 8, 9, tzinfo=UTC))
    assert [schedule.check_day(k) for k in found] == [date(2027, 3, 7), date(2027, 4, 7), date(2027, 5, 7)]


@pytest.mark.parametrize("zone", ZONES)
def test_due_instants_stay_at_local_hour_across_dst_when_zone_changes_offset(zone: str) -> None:
    """Over three years, every period's due instant is 09:00 local on the clamped anniversary."""
    schedule = _monthly(date(2027, 1, 31), (zone,))
    for k in range(36):
        local = _local(schedule.due_at(k), zone)
        assert (local.date(), local.time()) == (add_months_clamped(date(2027, 1, 31), k), time(9))


def test_anchor_day_is_the_start_when_the_cadence_stages_were_entered_before_it() -> None:
    """Entering the stages on 2026-12-01 for an assignment starting 2027-01-04 anchors the periods on the start."""
    entered = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert anchor_day(entered, "America/Sao_Paulo", date(2027, 1, 4)) == date(2027, 1, 4)
    assert anchor_day(entered, "America/Sao_Paulo", date(2026, 11, 2)) == date(2026, 12, 1)
    assert anchor_day(datetime(2026, 12, 1, 1, 0, tzinfo=UTC), "America/Sao_Paulo", None) == date(2026, 11, 30)


def test_no_period_is_current_before_the_start_when_anchored_on_it() -> None:
    """Before the start no contact is due; the next event is the first period's due instant on the start date."""
    schedule = _monthly(anchor_day(datetime(2026, 12, 1, 12, 0, tzinfo=UTC), "UTC", date(2027, 1, 4)), ("UTC",))
    december = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert schedule.current_period(december) is None
    assert schedule.next_event_after(december) == datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
