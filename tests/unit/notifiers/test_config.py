"""Tests for building notifiers from the [notifiers] table."""

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from notifiers import (
    ConsoleNotifier,
    EmailNotifier,
    FileNotifier,
    NotifierConfigError,
    WebhookNotifier,
    build_notifiers,
)

EMAIL = {
    "host": "smtp.example.com",
    "port": 587,
    "sender": "sojourn@example.com",
    "tls": "starttls",
    "username": "sojourn",
    "password_env": "SOJOURN_SMTP_PASSWORD",
}
WEBHOOK = {"url": "https://hooks.example.com/T000/B000", "secret_env": "SOJOURN_WEBHOOK_SECRET"}
ENVIRON = {"SOJOURN_SMTP_PASSWORD": "smtp-hunter2", "SOJOURN_WEBHOOK_SECRET": "hook-hunter2"}


def test_empty_section_builds_no_notifier() -> None:
    """With no notifier configured nothing is built: the console is a notifier like the others, named to be used."""
    assert build_notifiers({}, {}) == []
    (console,) = build_notifiers({"console": {}}, {})
    assert isinstance(console, ConsoleNotifier)


def test_builds_every_configured_notifier_in_file_order(tmp_path: Path) -> None:
    """Each table becomes one notifier named after its key, in the order of the file."""
    section = {
        "webhook": WEBHOOK,
        "file": {"path": str(tmp_path / "n.jsonl")},
        "email": EMAIL,
        "console": {},
    }

    notifiers = build_notifiers(section, ENVIRON)

    assert [notifier.name for notifier in notifiers] == ["webhook", "file", "email", "console"]
    assert [type(notifier) for notifier in notifiers] == [
        WebhookNotifier,
        FileNotifier,
        EmailNotifier,
        ConsoleNotifier,
    ]


def test_file_path_comes_from_config(tmp_path: Path) -> None:
    """notifiers.file.path is where the file notifier writes."""
    (notifier,) = build_notifiers({"file": {"path": str(tmp_path / "n.jsonl")}}, {})

    assert isinstance(notifier, FileNotifier)
    assert notifier.path == tmp_path / "n.jsonl"


@pytest.mark.parametrize(
    ("tls", "port"),
    [("none", 25), ("starttls", 587), ("ssl", 465)],
)
def test_email_port_defaults_to_the_tls_mode_port(tls: str, port: int) -> None:
    """Without a port, the email notifier uses the usual port of its TLS mode."""
    (notifier,) = build_notifiers({"email": {"host": "smtp", "sender": "s@example.com", "tls": tls}}, {})

    assert isinstance(notifier, EmailNotifier)
    assert (notifier.tls, notifier.port) == (tls, port)


def test_email_tls_defaults_to_starttls() -> None:
    """An email table without tls upgrades the connection with STARTTLS."""
    (notifier,) = build_notifiers({"email": {"host": "smtp", "sender": "s@example.com"}}, {})

    assert isinstance(notifier, EmailNotifier)
    assert notifier.tls == "starttls"


@pytest.mark.parametrize(
    ("section", "variable"),
    [
        ({"email": EMAIL}, "SOJOURN_SMTP_PASSWORD"),
        ({"webhook": WEBHOOK}, "SOJOURN_WEBHOOK_SECRET"),
    ],
)
def test_missing_secret_variable_error_names_the_variable(section: dict[str, Any], variable: str) -> None:
    """A named but unset environment variable is an error that names the variable and its key."""
    location = "[notifiers.email] password_env" if "email" in section else "[notifiers.webhook] secret_env"

    with pytest.raises(NotifierConfigError) as caught:
        build_notifiers(section, {})

    assert str(caught.value) == f"{location}: environment variable {variable} is not set"


def test_section_that_is_not_a_table_is_refused() -> None:
    """[notifiers] itself must be a table; the model says so before anything is built."""
    with pytest.raises(ValidationError, match="valid dictionary or instance of NotifiersConfig"):
        build_notifiers(["console"], {})  # type: ignore[arg-type]
