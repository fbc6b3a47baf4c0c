"""--log-format: auto picks readable lines for a terminal and JSON lines for anything else."""

from __future__ import annotations

import io

import pytest

from engine.program.logging import resolved_format


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_is_console_on_a_terminal_and_json_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    """auto follows stderr: a terminal gets console lines, a pipe or a file gets JSON; console and json are forced."""
    monkeypatch.setattr("sys.stderr", Terminal())
    assert (resolved_format("auto"), resolved_format("json")) == ("console", "json")
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert (resolved_format("auto"), resolved_format("console")) == ("json", "console")


def test_scheduler_warnings_become_json_lines_at_their_level(monkeypatch: pytest.MonkeyPatch) -> None:
    """APScheduler's warnings and errors reach the daemon's JSON log at their own level; its info stays out."""
    import json
    import logging

    import structlog

    from engine.delivery.daemon import _route_library_logs
    from engine.program.logging import configure_logging

    stderr = io.StringIO()
    monkeypatch.setattr("sys.stderr", stderr)
    configure_logging("json", logging.INFO)
    scheduler = logging.getLogger("apscheduler")
    saved = (scheduler.handlers, scheduler.level, scheduler.propagate)
    try:
        _route_library_logs()
        scheduler.info("started")
        scheduler.warning("job missed by %s", "2s")
        scheduler.critical("stopped")
    finally:
        scheduler.handlers, scheduler.propagate = saved[0], saved[2]
        scheduler.setLevel(saved[1])
        structlog.reset_defaults()
    lines = [json.loads(line) for line in stderr.getvalue().splitlines()]
    assert [(line["level"], line["message"]) for line in lines] == [("warning", "job missed by 2s"),
                                                                    ("error", "stopped")]
