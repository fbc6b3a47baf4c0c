"""Delivery of notifications to the console, a JSON Lines file, email and webhooks.

The notifiers themselves (and the SMTP, HTTP and email libraries they need) are imported on first use: every
command reads the `[notifiers]` tables of the config file, only the daemon and `outbox retry --to` send.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from notifiers.base import (
    DeliveryError,
    Notification,
    Notifier,
    NotifierConfigError,
    PermanentDeliveryError,
    TransientDeliveryError,
    close_notifiers,
)

if TYPE_CHECKING:
    from notifiers.config import NotifiersConfig, build_notifier, build_notifiers
    from notifiers.console import ConsoleNotifier
    from notifiers.email import EmailNotifier
    from notifiers.file import FileNotifier
    from notifiers.webhook import WebhookNotifier

_LAZY = {
    "ConsoleNotifier": "notifiers.console",
    "EmailNotifier": "notifiers.email",
    "FileNotifier": "notifiers.file",
    "NotifiersConfig": "notifiers.config",
    "WebhookNotifier": "notifiers.webhook",
    "build_notifier": "notifiers.config",
    "build_notifiers": "notifiers.config",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'notifiers' has no attribute {name!r}")


__all__ = [
    "ConsoleNotifier",
    "DeliveryError",
    "EmailNotifier",
    "FileNotifier",
    "Notification",
    "Notifier",
    "NotifierConfigError",
    "NotifiersConfig",
    "PermanentDeliveryError",
    "TransientDeliveryError",
    "WebhookNotifier",
    "build_notifier",
    "build_notifiers",
    "close_notifiers",
]
