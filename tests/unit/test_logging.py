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
