"""The one structlog configuration: console lines for people at the CLI, JSON lines for the daemon.

Until a process configures logging, engine code logs warnings and worse to stderr, never to stdout, where the CLI
prints its `--json` documents.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal

import structlog


class _StderrLoggerFactory:
    """Creates loggers that write to whatever `sys.stderr` is when they are made (tests swap it)."""

    def __call__(self, *args: Any) -> structlog.PrintLogger:
        return structlog.PrintLogger(sys.stderr)


def configure_logging(style: Literal["console", "json"], level: int = logging.INFO) -> None:
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if style == "json" else structlog.dev.ConsoleRenderer(colors=False)
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


def get_logger(name: str) -> Any:
    """A logger for `name`; configures the quiet stderr default if nobody has configured logging yet."""
    if not structlog.is_configured():
        configure_logging("console", logging.WARNING)
    return structlog.get_logger(name)
