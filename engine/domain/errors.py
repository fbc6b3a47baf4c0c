"""The one family of errors meant for users; the CLI turns each into `Error: ...` and an exit code."""

from __future__ import annotations

REFUSED = 1
BAD_INPUT = 2


class SojournError(Exception):
    """A user-facing failure: understood but refused (exit 1) unless a subclass says otherwise."""

    exit_code = REFUSED

    def __init__(self, message: str, *, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def lines(self) -> list[str]:
        """The message and every detail, each ready to print after `Error: `."""
        return [self.message, *self.details]


class BadInput(SojournError):
    """A value the user typed or supplied in a file is malformed (exit 2)."""

    exit_code = BAD_INPUT


class NotFound(SojournError):
    """Something named by the user does not exist."""


class InvalidTransition(SojournError):
    """The requested stage cannot be reached from the current one."""


class GuardsUnmet(SojournError):
    """The transition is allowed by the lifecycle but its conditions are not met yet."""


class ConcurrentChange(SojournError):
    """Someone else changed the same assignment first; nothing was written."""


class NotInitialised(SojournError):
    """The database has no Sojourn schema (or an old one)."""


class DatabaseUnavailable(BadInput):
    """The database URL is malformed or the server cannot be reached."""


class DaemonAlreadyRunning(SojournError):
    """Another daemon holds the dispatch lease on an embedded database."""


class AuditChainBroken(SojournError):
    """An audit chain no longer matches what Sojourn wrote: a row was edited, deleted or moved behind its back."""
