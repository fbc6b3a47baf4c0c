"""Digest rules without a database: which kinds wait, when a digest goes, and how its text and webhook read."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from engine.domain.digests import (
    DigestChoice,
    Urgency,
    digest_body,
    digest_instant,
    next_digest_instant,
    urgency_of,
)
from engine.domain.notices import NoticeKind
from notifiers import Notification
from notifiers.webhook import message_text, request_body

BERLIN = "Europe/Berlin"


def test_only_stage_changes_due_soon_reminders_and_feedback_wait_and_a_new_kind_goes_at_once() -> None:
    """Every kind that asks for action is immediate, and a kind the table does not know is immediate too."""
    waiting = {kind for kind in NoticeKind if urgency_of(kind) == Urgency.INFORMATIONAL}
    assert waiting == {NoticeKind.STAGE_CHANGED, NoticeKind.TASK_DUE_SOON, NoticeKind.CHECKIN_FEEDBACK}
    assert urgency_of("a_kind_of_the_future") == Urgency.IMMEDIATE


def test_daily_digest_goes_at_the_next_local_hour_and_weekly_on_the_next_monday() -> None:
    """09:00 Berlin is 08:00 UTC in winter: a notice after it waits for the next day, or for Monday if weekly."""
    wednesday = datetime(2027, 1, 6, 8, 30, tzinfo=UTC)
    assert digest_instant(DigestChoice.DAILY, wednesday, local_hour=9, tz=BERLIN) == \
        datetime(2027, 1, 7, 8, 0, tzinfo=UTC)
    assert digest_instant(DigestChoice.WEEKLY, wednesday, local_hour=9, tz=BERLIN) == \
        datetime(2027, 1, 11, 8, 0, tzinfo=UTC)
    at_the_hour = datetime(2027, 1, 7, 8, 0, tzinfo=UTC)
    assert digest_instant(DigestChoice.DAILY, at_the_hour, local_hour=9, tz=BERLIN) == at_the_hour


def test_digest_keeps_its_local_hour_across_a_daylight_saving_change() -> None:
    """The digest after the spring change goes at 09:00 Berlin summer time, 07:00 UTC."""
    saturday = datetime(2027, 3, 27, 8, 0, tzinfo=UTC)
    assert next_digest_instant(DigestChoice.DAILY, saturday, BERLIN) == datetime(2027, 3, 28, 7, 0, tzinfo=UTC)


def test_digest_body_heads_each_notice_with_its_subject_and_adds_a_link_its_body_lacks() -> None:
    """A link already in a body is not repeated; one a body lacks is added under it."""
    body = digest_body([("First", "Done? https://x.example/a", "https://x.example/a"),
                        ("Second", "Moved on.", "https://x.example/b")])
    assert body == ("2 notice(s) gathered for you:\n\n== First ==\nDone? https://x.example/a\n\n"
                    "== Second ==\nMoved on.\nAct on it here: https://x.example/b")


def _notification(key: str, subject: str, body: str, **extra: object) -> Notification:
    return Notification(key=key, kind=str(extra.pop("kind", "stage_changed")), assignment_id=1, task_id=None,
                        recipient="cole.coach@example.com", role="coach", subject=subject, body=body,
                        created_at=datetime(2027, 1, 5, 8, tzinfo=UTC), **extra)  # type: ignore[arg-type]


def test_webhook_shows_each_digest_notice_escaped_and_lists_them_in_items() -> None:
    """Slack markup in a gathered notice is shown, not acted on; the JSON carries each notice with its link."""
    item = _notification("stage_changed/7/coach", "<!channel> moved", "By <@U1>.", action_url="https://x.example/p")
    digest = _notification("digest/4/2027-01-05T08:00Z", "Your daily digest of 2027-01-05", "text",
                           kind="digest", items=(item,))
    text = message_text(digest)
    assert "&lt;!channel&gt; moved" in text
    assert "<!channel>" not in text
    assert "By &lt;@U1&gt;." in text
    assert "https://x.example/p" in text
    payload = json.loads(request_body(digest))
    assert [i["key"] for i in payload["items"]] == ["stage_changed/7/coach"]
    assert payload["items"][0]["action_url"] == "https://x.example/p"
    assert Notification.from_dict(payload) == digest
