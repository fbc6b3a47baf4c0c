"""The config file is strict: every unknown section or key and every bad value is reported at once, located."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from engine.delivery.config import ConfigFile, parse_config
from engine.domain.errors import BadInput

EMAIL = {"host": "smtp.example.com", "port": 587, "sender": "sojourn@example.com", "tls": "starttls",
         "username": "sojourn", "password_env": "SOJOURN_SMTP_PASSWORD"}
NO_AUTH = {"host": "smtp", "sender": "s@example.com"}


def _problems(document: str | dict[str, Any]) -> list[str]:
    table = tomllib.loads(document) if isinstance(document, str) else document
    with pytest.raises(BadInput) as caught:
        parse_config(table)
    return caught.value.lines()


@pytest.mark.parametrize(("document", "problem"), [
    ('[databse]\nurl = "sqlite:///x.db"\n', "[databse]: unknown section; did you mean [database]?"),
    ('[database]\nulr = "sqlite:///x.db"\n', "[database] ulr: unknown key; did you mean `url`?"),
    ("[daemon]\ninterval_second = 5\n", "[daemon] interval_second: unknown key; did you mean `interval_seconds`?"),
    ("[notifiers.emial]\n", "[notifiers.emial]: unknown notifier; did you mean [notifiers.email]?"),
    ("[notifiers.sms]\n", "[notifiers.sms]: unknown notifier (known: console, file, email, webhook)"),
    ('[routing]\nescalations = []\n', "[routing] escalations: unknown key; did you mean `escalation`?"),
    ("[delivery]\nretries = 3\n", "[delivery] retries: unknown key (known: base_seconds, cap_seconds, max_attempts, "
                                  "jitter, batch_size, claim_seconds)"),
    ('url = "sqlite:///x.db"\n', "url: unknown key outside any section (known: database, daemon, notifiers, "
                                 "routing, delivery, serve, audit)"),
], ids=["section", "database-key", "daemon-key", "notifier", "unknown-notifier", "route", "delivery-key", "top-key"])
def test_a_typo_is_an_error_naming_it_and_the_closest_known_name(document: str, problem: str) -> None:
    """A misspelt section, key or notifier is refused with its location and a suggestion (or the known names)."""
    assert _problems(document) == [problem]


def test_every_problem_of_the_file_is_reported_at_once() -> None:
    """Typos, wrong types and bad values in several sections all come back from one reading."""
    problems = _problems('[databse]\n[daemon]\ninterval_seconds = "5"\n[delivery]\nmax_attempts = 0\n'
                         '[notifiers.file]\n[serve]\nport = true\n[routing]\nescalation = ["email"]\n')
    assert problems == [
        "[daemon] interval_seconds: must be a number, not '5'",
        "[notifiers.file] path: is required",
        "[delivery] max_attempts: must be greater than or equal to 1, not 0",
        "[serve] port: must be a whole number, not True",
        "[databse]: unknown section; did you mean [database]?",
        "[routing] escalation: notifier(s) email not configured (configured: file)",
    ]


BAD_NOTIFIERS = [
    ({"email": {**EMAIL, "tls": "tls"}}, "[notifiers.email] tls: must be 'none', 'starttls' or 'ssl', not 'tls'"),
    ({"email": {**EMAIL, "port": "587"}}, "[notifiers.email] port: must be a whole number, not '587'"),
    ({"email": {**EMAIL, "port": 70000}}, "[notifiers.email] port: must be less than or equal to 65535, not 70000"),
    ({"email": {"sender": "s@example.com"}}, "[notifiers.email] host: is required"),
    ({"email": {**NO_AUTH, "sender": "sojourn"}}, "[notifiers.email] sender: must be an email address, not 'sojourn'"),
    ({"email": {**EMAIL, "password_env": " "}}, "[notifiers.email] password_env: must not be empty, not ' '"),
    ({"email": {**NO_AUTH, "username": "u"}}, "[notifiers.email]: password_env is required when username is set"),
    ({"email": {**NO_AUTH, "password_env": "P"}}, "[notifiers.email]: username is required when password_env is set"),
    ({"email": {**EMAIL, "timeout": 0}}, "[notifiers.email] timeout: must be greater than 0, not 0"),
    ({"file": "notifications.jsonl"}, "[notifiers.file]: must be a table"),
    ({"console": {"color": True}}, "[notifiers.console] color: unknown key (known: none)"),
    ({"webhook": {"url": "file:///etc/passwd"}}, "[notifiers.webhook] url: must be an http:// or https:// URL"),
    ({"webhook": {"url": "https://hooks.example.com:port/x"}}, "[notifiers.webhook] url: has an invalid port"),
]


@pytest.mark.parametrize(("section", "problem"), BAD_NOTIFIERS)
def test_a_bad_notifier_table_is_located_by_its_key(section: dict[str, Any], problem: str) -> None:
    """Each unusable notifier setting is reported with its table and key, and a URL is never repeated."""
    assert _problems({"notifiers": section}) == [problem]


@pytest.mark.parametrize(("document", "key", "variable_key"), [
    ({"notifiers": {"email": {**EMAIL, "password": "hunter2"}}}, "[notifiers.email] password", "password_env"),
    ({"notifiers": {"webhook": {"url": "https://h.example.com", "secret": "hunter2"}}}, "[notifiers.webhook] secret",
     "secret_env"),
    ({"serve": {"secret": "hunter2"}}, "[serve] secret", "secret_env"),
    ({"audit": {"key": "hunter2"}}, "[audit] key", "key_env"),
])
def test_a_secret_written_into_the_file_is_refused_with_a_hint(document: dict[str, Any], key: str,
                                                               variable_key: str) -> None:
    """A literal password, secret or key is refused, pointing at the *_env key to use, and never echoed."""
    (problem,) = _problems(document)
    assert problem.startswith(f"{key}: keep secrets out of the config file")
    assert f"set {variable_key} to the variable's name" in problem
    assert "hunter2" not in problem


def test_a_route_to_a_notifier_that_is_not_configured_is_refused() -> None:
    """[routing] may only name notifiers that [notifiers] configures."""
    assert _problems('[notifiers.file]\npath = "n.jsonl"\n[routing]\nescalation = ["webhook"]\n') == [
        "[routing] escalation: notifier(s) webhook not configured (configured: file)"]


def test_an_empty_file_gives_the_defaults_and_audit_key_env_is_read() -> None:
    """No section at all is every default; [audit] key_env and [daemon] interval_seconds are read as given."""
    assert parse_config({}) == ConfigFile()
    config = parse_config(tomllib.loads('[audit]\nkey_env = "SOJOURN_AUDIT_KEY"\n[daemon]\ninterval_seconds = 5\n'))
    assert (config.audit.key_env, config.daemon.interval_seconds) == ("SOJOURN_AUDIT_KEY", 5.0)
