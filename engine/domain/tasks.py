"""Where a task stands: the statuses stored in `task.status`."""

from __future__ import annotations

from enum import StrEnum


class TaskStatus(StrEnum):
    """A task's status; a StrEnum, so the stored text and the JSON views stay plain strings."""

    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"  # closed unfinished when its assignment reached a final stage
