"""The notifiers' escaping rules: Slack/Teams message text and email header values."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from notifiers import Notification
from notifiers.escape import header_text, slack_text
from notifiers.webhook import request_body

MakeNotification = Callable[..., Notification]


def test_slack_text_escapes_ampersand_and_angle_brackets() -> None:
    """`&`, `<` and `>` become entities, so `<!channel>` and `<url|label>` are shown instead of acted on."""
    assert slack_text("<!channel> <http://evil|click> & <@U1>") == (
        "&lt;!channel&gt; &lt;http://evil|click&gt; &amp; &lt;@U1&gt;")


def test_slack_text_escapes_an_ampersand_once() -> None:
    """An entity already in the text is shown as typed, not decoded into markup."""
    assert slack_text("&lt;!here&gt;") == "&amp;lt;!here&amp;gt;"


def test_webhook_text_escapes_subject_and_body_and_ends_with_the_signed_link(
        make_notification: MakeNotification) -> None:
    """The text is built from escaped parts, Sojourn's own bold marks and link kept; the JSON fields are unchanged."""
    notification = make_notification(subject="<!channel> due", body="Ask <ana@example.com> & co",
                                      action_url="https://sojourn.example.com/a/task_done/TOKEN")
    payload = json.loads(request_body(notification))
    assert payload["text"] == ("*&lt;!channel&gt; due*\nAsk &lt;ana@example.com&gt; &amp; co\n\n"
                               "Act on it here: https://sojourn.example.com/a/task_done/TOKEN")
    assert (payload["subject"], payload["body"]) == (notification.subject, notification.body)


@pytest.mark.parametrize(("text", "header"), [
    ("Plan\r\nBcc: spy@evil.example", "Plan Bcc: spy@evil.example"),
    ("a\nb\rc\x0bd\x0ce\x85f\u2028g\u2029h", "a b c d e f g h"),
    ("nul\x00and bell\x07", "nul and bell"),
    ("  Genève   ✓ ", "Genève ✓"),
])
def test_header_text_is_one_line_without_control_characters(text: str, header: str) -> None:
    """Line breaks (ASCII and Unicode) and control characters become single spaces, so no header can be added."""
    assert header_text(text) == header
