"""The one structlog configuration: readable lines for a person at a terminal, JSON lines for everything else.

`--log-format auto` (the default) picks by whether stderr is a terminal; `console` and `json` force one. Until a
process configures logging, engine code logs warnings and worse to stderr, never to stdout, where the CLI prints
its `--json` documents.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal, Protocol

LogFormat = Literal["auto", "console", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("auto", "console", "json")


class Logger(Protocol):
    """What engine code may ask of a logger: an event name and its fields, at one of four levels.

    structlog's bound loggers satisfy it, and so does any test double that records calls.
    """

    def debug(self, event: str, **fields: Any) -> Any: ...

    def info(self, event: str, **fields: Any) -> Any: ...

    def warning(self, event: str, **fields: Any) -> Any: ...

    def error(self, event: str, **fields: Any) -> Any: ...


class _StderrLoggerFactory:
    """Creates loggers that write to whatever `sys.stderr` is when they are made (tests swap it)."""

    def __call__(self, *args: Any) -> Any:
        import structlog

        return structlog.PrintLogger(sys.stderr)


def resolved_format(style: LogFormat) -> Literal["console", "json"]:
    """`auto` is `console` when stderr is a terminal, else `json` (a service manager, a pipe, a file)."""
    if style == "auto":
        isatty = getattr(sys.stderr, "isatty", None)
        return "console" if callable(isatty) and isatty() else "json"
    return style


def configure_logging(style: LogFormat, level: int = logging.INFO) -> None:
    """Log at `level` and above to stderr, as console lines or JSON lines (`auto`: see `resolved_format`)."""
    import structlog

    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if resolved_format(style) == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_StderrLoggerFactory(),
        cache_logger_on_first_use=False,
    )


class _LazyLogger:
    """Imports structlog on the first log call, so commands that log nothing start faster.

    Each call checks that logging is configured: a process (or a test) may reset structlog to its defaults, which
    print to stdout.
    """

    def __init__(self, name: str) -> None:
        self._name = name

    def debug(self, event: str, **fields: Any) -> Any:
        return self._bound().debug(event, **fields)

    def info(self, event: str, **fields: Any) -> Any:
        return self._bound().info(event, **fields)

    def warning(self, event: str, **fields: Any) -> Any:
        return self._bound().warning(event, **fields)

    def error(self, event: str, **fields: Any) -> Any:
        return self._bound().error(event, **fields)

    def _bound(self) -> Any:
        import structlog

        if not structlog.is_configured():
            configure_logging("console", logging.WARNING)
        return structlog.get_logger(self._name)


def get_logger(name: str) -> Logger:
    """A logger for `name`; until a process configures logging, warnings and worse go to stderr."""
    return _LazyLogger(name)
