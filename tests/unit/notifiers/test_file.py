"""Tests for the JSON Lines file notifier."""

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from notifiers import FileNotifier, Notification, TransientDeliveryError

MakeNotification = Callable[..., Notification]

WRITERS = 4
LINES_PER_WRITER = 300
# Larger than PIPE_BUF and a typical page, so interleaving would show if a line took more than one write.
BODY_CHARS = 9000

WRITER_SCRIPT = """
import sys
from datetime import UTC, datetime

from notifiers import FileNotifier, Notification

path, writer, lines, body_chars = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
notifier = FileNotifier(path)
for number in range(lines):
    notifier.send(Notification(
        key=f"{writer}:{number}", kind="task_due", assignment_id=writer, task_id=number,
        recipient="ada@example.com", role="assignee", subject="due", body=str(writer) * body_chars,
        created_at=datetime.now(UTC),
    ))
notifier.close()
"""


@pytest.fixture
def jsonl_path(tmp_path: Path) -> Path:
    """Return where the notifier under test writes."""
    return tmp_path / "notifications.jsonl"


@pytest.fixture
def file_notifier(jsonl_path: Path) -> Iterator[FileNotifier]:
    """Yield a FileNotifier on jsonl_path and close it afterwards."""
    notifier = FileNotifier(jsonl_path)
    yield notifier
    notifier.close()


def read_lines(path: Path) -> list[dict[str, object]]:
    """Parse every line of a JSON Lines file."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_file_appends_one_json_object_per_line(
    file_notifier: FileNotifier, jsonl_path: Path, make_notification: MakeNotification
) -> None:
    """Each send adds one line holding exactly the notification's to_dict."""
    first = make_notification()
    second = make_notification(key="task_overdue:7:42", kind="task_overdue", subject="Überfällig")

    file_notifier.send(first)
    file_notifier.send(second)

    assert read_lines(jsonl_path) == [first.to_dict(), second.to_dict()]


def test_file_keeps_existing_lines(jsonl_path: Path, make_notification: MakeNotification) -> None:
    """Lines already in the file stay; new ones go after them."""
    jsonl_path.write_text('{"earlier": true}\n', encoding="utf-8")
    notifier = FileNotifier(jsonl_path)

    notifier.send(make_notification())
    notifier.close()

    assert read_lines(jsonl_path) == [{"earlier": True}, make_notification().to_dict()]


def test_file_reopens_after_close(
    file_notifier: FileNotifier, jsonl_path: Path, make_notification: MakeNotification
) -> None:
    """A send after close opens the file again instead of failing."""
    file_notifier.send(make_notification(key="one"))
    file_notifier.close()
    file_notifier.send(make_notification(key="two"))

    assert [line["key"] for line in read_lines(jsonl_path)] == ["one", "two"]


def test_file_marks_unwritable_path_transient(tmp_path: Path, make_notification: MakeNotification) -> None:
    """A path in a missing directory is a transient failure that names the path."""
    missing = tmp_path / "missing" / "notifications.jsonl"

    with pytest.raises(TransientDeliveryError, match=r"missing/notifications\.jsonl"):
        FileNotifier(missing).send(make_notification())


def test_file_lines_never_interleave_across_processes(jsonl_path: Path) -> None:
    """Several processes appending at once leave only whole lines, none lost."""
    writers = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WRITER_SCRIPT,
                jsonl_path,
                str(writer),
                str(LINES_PER_WRITER),
                str(BODY_CHARS),
            ]
        )
        for writer in range(WRITERS)
    ]
    for process in writers:
        assert process.wait(timeout=120) == 0

    lines = read_lines(jsonl_path)
    assert len(lines) == WRITERS * LINES_PER_WRITER
    assert {line["key"] for line in lines} == {
        f"{writer}:{number}" for writer in range(WRITERS) for number in range(LINES_PER_WRITER)
    }
    assert all(line["body"] == str(line["assignment_id"]) * BODY_CHARS for line in lines)
