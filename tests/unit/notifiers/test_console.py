"""Tests for the console notifier."""

import io
from collections.abc import Callable

import pytest

from notifiers import ConsoleNotifier, Notification

MakeNotification = Callable[..., Notification]


def test_console_prints_a_readable_block(make_notification: MakeNotification) -> None:
    """The block names kind, recipient, role, assignment, task, subject, every body line and the key."""
    stream = io.StringIO()

    ConsoleNotifier(stream).send(make_notification())

    assert stream.getvalue() == (
        "[task_due] to ada@example.com (assignee), assignment 7, task 42\n"
        "  Subject: Relocation checklist is due today\n"
        "  Please finish the relocation checklist.\n"
        "  It blocks the orientation stage.\n"
        "  key: task_due:7:42:2027-03-01\n"
        "\n"
    )


def test_console_omits_task_when_there_is_none(make_notification: MakeNotification) -> None:
    """A notification without a task mentions only its assignment."""
    stream = io.StringIO()

    ConsoleNotifier(stream).send(make_notification(kind="stage_changed", task_id=None))

    assert stream.getvalue().splitlines()[0] == "[stage_changed] to ada@example.com (assignee), assignment 7"


def test_console_writes_to_current_stdout_by_default(
    make_notification: MakeNotification, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a stream the notifier prints to whatever sys.stdout is when it sends."""
    notifier = ConsoleNotifier()

    notifier.send(make_notification())

    assert "Subject: Relocation checklist is due today" in capsys.readouterr().out


def test_console_notifier_is_named_console() -> None:
    """The notifier's name is its key in the [notifiers] table."""
    assert ConsoleNotifier().name == "console"
