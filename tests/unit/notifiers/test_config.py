"""Tests for building notifiers from the [notifiers] table."""

from pathlib import Path
from typing import Any

import pytest

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


def test_empty_section_means_console() -> None:
    """With no notifier configured, notifications go to the console."""
    notifiers = build_notifiers({}, {})

    assert len(notifiers) == 1
    assert isinstance(notifiers[0], ConsoleNotifier)


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
    location = "notifiers.email.password_env" if "email" in section else "notifiers.webhook.secret_env"

    with pytest.raises(NotifierConfigError) as caught:
        build_notifiers(section, {})

    assert str(caught.value) == f"{location}: environment variable {variable} is not set"


def test_secret_values_never_appear_in_errors() -> None:
    """An error in a table whose secrets are set does not echo those secrets."""
    section = {"email": {**EMAIL, "port": "587"}, "webhook": WEBHOOK}

    with pytest.raises(NotifierConfigError) as caught:
        build_notifiers(section, ENVIRON)

    assert "hunter2" not in str(caught.value)


NO_AUTH = {"host": "smtp", "sender": "s@example.com"}
BAD_CONFIGS = [
    ({"sms": {}}, "notifiers.sms", "unknown notifier (expected one of console, email, file, webhook)"),
    (
        {"email": {**EMAIL, "tls": "tls"}},
        "notifiers.email.tls",
        "must be one of 'none', 'starttls', 'ssl', not 'tls'",
    ),
    ({"email": {**EMAIL, "port": "587"}}, "notifiers.email.port", "must be an integer from 1 to 65535"),
    ({"email": {**EMAIL, "port": True}}, "notifiers.email.port", "must be an integer from 1 to 65535"),
    ({"email": {**EMAIL, "port": 70000}}, "notifiers.email.port", "must be an integer from 1 to 65535"),
    (
        {"email": {**EMAIL, "prot": 25}},
        "notifiers.email.prot",
        "unknown key (expected host, port, sender, tls, username, password_env, timeout)",
    ),
    ({"email": {"sender": "s@example.com"}}, "notifiers.email.host", "is required"),
    (
        {"email": {**NO_AUTH, "sender": "sojourn"}},
        "notifiers.email.sender",
        "must be an email address, not 'sojourn'",
    ),
    ({"email": {**EMAIL, "password_env": ""}}, "notifiers.email.password_env", "must be a non-empty string"),
    (
        {"email": {**NO_AUTH, "username": "u"}},
        "notifiers.email.password_env",
        "is required when username is set",
    ),
    (
        {"email": {**NO_AUTH, "password_env": "P"}},
        "notifiers.email.username",
        "is required when password_env is set",
    ),
    ({"email": {**EMAIL, "timeout": 0}}, "notifiers.email.timeout", "must be a positive number of seconds"),
    ({"file": {}}, "notifiers.file.path", "is required"),
    ({"file": "notifications.jsonl"}, "notifiers.file", "must be a table"),
    ({"console": {"color": True}}, "notifiers.console.color", "unknown key (expected no keys)"),
    (
        {"webhook": {"url": "file:///etc/passwd"}},
        "notifiers.webhook.url",
        "must be an http:// or https:// URL",
    ),
    (
        {"webhook": {"url": "https://hooks.example.com:port/x"}},
        "notifiers.webhook.url",
        "has an invalid port",
    ),
]


@pytest.mark.parametrize(("section", "location", "problem"), BAD_CONFIGS)
def test_bad_config_error_locates_the_key(section: dict[str, Any], location: str, problem: str) -> None:
    """Each unusable setting is reported with the dotted path of its key."""
    with pytest.raises(NotifierConfigError) as caught:
        build_notifiers(section, ENVIRON)

    assert str(caught.value) == f"{location}: {problem}"


@pytest.mark.parametrize(("notifier", "key"), [("email", "password"), ("webhook", "secret")])
def test_secret_written_into_config_is_refused_with_a_hint(notifier: str, key: str) -> None:
    """A literal password or secret in the file is refused, pointing at the *_env key to use instead."""
    section = {notifier: {**(EMAIL if notifier == "email" else WEBHOOK), key: "hunter2"}}

    with pytest.raises(NotifierConfigError) as caught:
        build_notifiers(section, ENVIRON)

    assert str(caught.value).startswith(f"notifiers.{notifier}.{key}: keep secrets out of the config file")
    assert f"set {key}_env" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_section_that_is_not_a_table_is_refused() -> None:
    """[notifiers] itself must be a table."""
    with pytest.raises(NotifierConfigError, match="notifiers: must be a table"):
        build_notifiers(["console"], {})  # type: ignore[arg-type]
