"""The notification value, the notifier protocol and the delivery errors every notifier shares."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class Notification:
    """One message for one recipient; `key` stays the same across retries so receivers can deduplicate.

    `calendar`, when set, is an iCalendar text (METHOD:PUBLISH) about what the message concerns: the email
    notifier attaches it as a text/calendar part, the file and webhook notifiers carry it as the JSON field
    `calendar`, and the console notifier leaves it out. `action_url`, when set, is a link signed for this
    recipient to act on what the message asks: the email notifier ends the body with it, the webhook and file
    notifiers carry it as the JSON field `action_url`. `items`, set for a digest, are the notices it gathers, each
    with its own link; the body already shows them all under their subjects, and the JSON shape lists them in
    `items`.
    """

    key: str
    kind: str
    assignment_id: int
    task_id: int | None
    recipient: str
    role: str
    subject: str
    body: str
    created_at: datetime
    calendar: str | None = None
    action_url: str | None = None
    items: tuple[Notification, ...] = ()

    def __post_init__(self) -> None:
        # A naive datetime would be written without an offset and read back in whatever zone the reader uses.
        if self.created_at.tzinfo is None or self.created_at.utcoffset() is None:
            raise ValueError("Notification.created_at must be timezone-aware")

    def to_dict(self) -> dict[str, object]:
        """Return the JSON-ready shape that notifiers deliver; `created_at` is ISO 8601 in UTC.

        `calendar` and `items` are there only when the notification has them, so other notices keep their shape.
        """
        shape: dict[str, object] = {
            "key": self.key,
            "kind": self.kind,
            "assignment_id": self.assignment_id,
            "task_id": self.task_id,
            "recipient": self.recipient,
            "role": self.role,
            "subject": self.subject,
            "body": self.body,
            "created_at": self.created_at.astimezone(UTC).isoformat(),
        }
        if self.calendar is not None:
            shape["calendar"] = self.calendar
        if self.action_url is not None:
            shape["action_url"] = self.action_url
        if self.items:
            shape["items"] = [item.to_dict() for item in self.items]
        return shape

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Notification:
        """Rebuild a notification from the shape `to_dict` produces."""
        task_id = data["task_id"]
        return cls(
            key=str(data["key"]),
            kind=str(data["kind"]),
            assignment_id=int(data["assignment_id"]),
            task_id=None if task_id is None else int(task_id),
            recipient=str(data["recipient"]),
            role=str(data["role"]),
            subject=str(data["subject"]),
            body=str(data["body"]),
            created_at=datetime.fromisoformat(str(data["created_at"])),
            calendar=None if data.get("calendar") is None else str(data["calendar"]),
            action_url=None if data.get("action_url") is None else str(data["action_url"]),
            items=tuple(cls.from_dict(item) for item in data.get("items") or ()),
        )


class Notifier(Protocol):
    """Delivers notifications to one channel.

    `send` returns once the channel has accepted the notification and raises a `DeliveryError` subclass
    otherwise. The same notification may be sent again after a failure or a crash, so channels should
    deduplicate on `key`.
    """

    name: str

    def send(self, notification: Notification) -> None: ...


class DeliveryError(Exception):
    """A notification was not delivered; `retry_after` is the wait in seconds the channel asked for."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TransientDeliveryError(DeliveryError):
    """The channel may accept the same notification later; retry with backoff."""


class PermanentDeliveryError(DeliveryError):
    """The channel will never accept this notification as configured; retrying cannot help."""


class NotifierConfigError(Exception):
    """The `[notifiers]` configuration is unusable; the message names the key and is meant for users."""


def close_notifiers(notifiers: Iterable[Notifier]) -> None:
    """Release the connections and files held by the notifiers that hold any."""
    for notifier in notifiers:
        close = getattr(notifier, "close", None)
        if callable(close):
            close()
