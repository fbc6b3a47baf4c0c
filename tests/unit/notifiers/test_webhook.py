"""Tests for the webhook notifier that need no server: which URLs it accepts."""

import pytest

from notifiers import WebhookNotifier


def test_webhook_refuses_urls_that_are_not_http() -> None:
    """Only http and https URLs are accepted, so the notifier can never read or write local files."""
    with pytest.raises(ValueError, match="http"):
        WebhookNotifier("file:///etc/passwd")
