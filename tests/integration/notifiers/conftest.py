"""Fixtures shared by the notifier integration tests."""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from notifiers import Notification

MakeNotification = Callable[..., Notification]


@pytest.fixture
def make_notification() -> MakeNotification:
    """Return a factory for notifications with plausible defaults that a test can override."""

    def make(**overrides: Any) -> Notification:
        fields: dict[str, Any] = {
            "key": "task_due:7:42:2027-03-01",
            "kind": "task_due",
            "assignment_id": 7,
            "task_id": 42,
            "recipient": "ada@example.com",
            "role": "assignee",
            "subject": "Relocation checklist is due today",
            "body": "Please finish the relocation checklist.\nIt blocks the orientation stage.",
            "created_at": datetime(2027, 3, 1, 9, 0, tzinfo=UTC),
        }
        fields.update(overrides)
        return Notification(**fields)

    return make
