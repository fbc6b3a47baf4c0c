"""Tests for the notification value and the shared notifier helpers."""

from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from notifiers import DeliveryError, Notification, TransientDeliveryError, close_notifiers

MakeNotification = Callable[..., Notification]


def test_to_dict_has_every_contract_field(make_notification: MakeNotification) -> None:
    """to_dict carries every field of the notification JSON shape, created_at as ISO 8601 in UTC."""
    assert make_notification().to_dict() == {
        "key": "task_due:7:42:2027-03-01",
        "kind": "task_due",
        "assignment_id": 7,
        "task_id": 42,
        "recipient": "ada@example.com",
        "role": "assignee",
        "subject": "Relocation checklist is due today",
        "body": "Please finish the relocation checklist.\nIt blocks the orientation stage.",
        "created_at": "2027-03-01T09:00:00+00:00",
    }


def test_to_dict_converts_other_offsets_to_utc(make_notification: MakeNotification) -> None:
    """An aware created_at in another zone is written as the same instant with a +00:00 offset."""
    paris = timezone(timedelta(hours=1))
    notification = make_notification(created_at=datetime(2027, 3, 1, 10, 0, tzinfo=paris))

    assert notification.to_dict()["created_at"] == "2027-03-01T09:00:00+00:00"


def test_from_dict_reverses_to_dict(make_notification: MakeNotification) -> None:
    """from_dict rebuilds an equal notification from to_dict's output, with and without a task."""
    for notification in (make_notification(), make_notification(task_id=None)):
        assert Notification.from_dict(notification.to_dict()) == notification


def test_calendar_travels_in_the_json_shape_only_when_present(make_notification: MakeNotification) -> None:
    """A notification's iCalendar text is to_dict's `calendar` field, absent without one; from_dict keeps it."""
    ics = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n"
    with_calendar = make_notification(kind="contact_due", calendar=ics)

    assert with_calendar.to_dict()["calendar"] == ics
    assert "calendar" not in make_notification().to_dict()
    assert Notification.from_dict(with_calendar.to_dict()) == with_calendar


def test_notification_refuses_naive_created_at(make_notification: MakeNotification) -> None:
    """A naive created_at is refused because its instant would be ambiguous."""
    with pytest.raises(ValueError, match="timezone-aware"):
        make_notification(created_at=datetime(2027, 3, 1, 9, 0))


def test_delivery_error_carries_retry_after() -> None:
    """retry_after defaults to None and keeps the seconds it was given."""
    assert DeliveryError("down").retry_after is None
    assert TransientDeliveryError("slow down", retry_after=7).retry_after == 7


def test_close_notifiers_closes_only_those_that_can_be_closed() -> None:
    """close_notifiers calls close where a notifier has one and skips the others."""

    class Closable:
        name = "closable"
        closed = False

        def send(self, notification: Notification) -> None:
            """Accept everything."""

        def close(self) -> None:
            """Remember being closed."""
            self.closed = True

    class Plain:
        name = "plain"

        def send(self, notification: Notification) -> None:
            """Accept everything."""

    closable = Closable()
    close_notifiers([closable, Plain()])

    assert closable.closed


def test_action_url_travels_in_the_json_shape_only_when_present(make_notification: MakeNotification) -> None:
    """A notification's signed link is to_dict's `action_url` (what webhooks post), absent without one."""
    linked = make_notification(action_url="https://sojourn.example.com/a/task_done/TOKEN")

    assert linked.to_dict()["action_url"] == "https://sojourn.example.com/a/task_done/TOKEN"
    assert "action_url" not in make_notification().to_dict()
    assert Notification.from_dict(linked.to_dict()) == linked


def test_email_and_webhook_carry_the_action_url(make_notification: MakeNotification) -> None:
    """The email body ends with the link; the webhook payload carries it as `action_url`."""
    import json

    from notifiers.email import build_message
    from notifiers.webhook import request_body

    linked = make_notification(action_url="https://sojourn.example.com/a/task_done/TOKEN")
    body = build_message(linked, "sojourn@example.com").get_content()
    assert body.rstrip().endswith("Act on it here: https://sojourn.example.com/a/task_done/TOKEN")
    assert json.loads(request_body(linked))["action_url"] == linked.action_url
    assert "Act on it here" not in build_message(make_notification(), "sojourn@example.com").get_content()
