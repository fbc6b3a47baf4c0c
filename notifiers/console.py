"""Prints notifications for a person watching the terminal: `[notifiers.console]`, for trying Sojourn out."""

from __future__ import annotations

import sys
from typing import TextIO

from notifiers.base import Notification


class ConsoleNotifier:
    """Writes a short human-readable block per notification to `stream`, or else to the current stdout."""

    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def send(self, notification: Notification) -> None:
        """Print the notification and flush, so that it shows up even when stdout is a pipe."""
        # Resolved per send rather than in __init__ so a later redirection of sys.stdout is honoured.
        stream = self._stream if self._stream is not None else sys.stdout
        stream.write(format_notification(notification))
        stream.flush()


def format_notification(notification: Notification) -> str:
    """Render the block ConsoleNotifier prints, ending with a blank line that separates notifications."""
    target = f"assignment {notification.assignment_id}"
    if notification.items:
        target = f"{len(notification.items)} notice(s) gathered"
    elif notification.task_id is not None:
        target += f", task {notification.task_id}"
    lines = [
        f"[{notification.kind}] to {notification.recipient} ({notification.role}), {target}",
        f"  Subject: {notification.subject}",
        *(f"  {line}".rstrip() for line in notification.body.splitlines()),
        f"  key: {notification.key}",
        "",
    ]
    return "\n".join(lines) + "\n"
