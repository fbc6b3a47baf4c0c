"""Delivery of notifications to the console, a JSON Lines file, email and webhooks."""

from notifiers.base import (
    DeliveryError,
    Notification,
    Notifier,
    NotifierConfigError,
    PermanentDeliveryError,
    TransientDeliveryError,
    close_notifiers,
)
from notifiers.config import NotifiersConfig, build_notifier, build_notifiers
from notifiers.console import ConsoleNotifier
from notifiers.email import EmailNotifier
from notifiers.file import FileNotifier
from notifiers.webhook import WebhookNotifier

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
