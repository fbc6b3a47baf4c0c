"""Builds notifiers from the `[notifiers]` table of the configuration file."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from email.utils import parseaddr
from typing import Any

from notifiers.base import Notifier, NotifierConfigError
from notifiers.console import ConsoleNotifier
from notifiers.email import TLS_MODES, EmailNotifier
from notifiers.file import FileNotifier
from notifiers.webhook import WebhookNotifier, check_url

_DEFAULT_PORTS = {"none": 25, "starttls": 587, "ssl": 465}
_DEFAULT_TIMEOUT = 10.0
# Keys people reach for first, and the key that keeps the secret out of the file instead.
_SECRET_KEYS = {"password": "password_env", "secret": "secret_env"}


class _Table:
    """One `[notifiers.NAME]` table; every getter names the offending key in its error."""

    def __init__(self, name: str, raw: object, allowed: tuple[str, ...]) -> None:
        self.where = f"notifiers.{name}"
        if not isinstance(raw, Mapping):
            raise NotifierConfigError(f"{self.where}: must be a table")
        for key in raw:
            if key in allowed:
                continue
            if _SECRET_KEYS.get(key) in allowed:
                raise NotifierConfigError(
                    f"{self.where}.{key}: keep secrets out of the config file; put it in an environment "
                    f"variable and set {_SECRET_KEYS[key]} to the variable's name"
                )
            expected = ", ".join(allowed) if allowed else "no keys"
            raise NotifierConfigError(f"{self.where}.{key}: unknown key (expected {expected})")
        self.raw: Mapping[str, Any] = raw

    def error(self, key: str, problem: str) -> NotifierConfigError:
        return NotifierConfigError(f"{self.where}.{key}: {problem}")

    def optional_string(self, key: str) -> str | None:
        value = self.raw.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, "must be a non-empty string")
        return value

    def string(self, key: str) -> str:
        value = self.optional_string(key)
        if value is None:
            raise self.error(key, "is required")
        return value

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.raw.get(key, default)
        # bool is an int subclass, but `port = true` is a mistake, not the number 1.
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise self.error(key, f"must be an integer from {low} to {high}")
        return value

    def positive_number(self, key: str, default: float) -> float:
        value = self.raw.get(key, default)
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            raise self.error(key, "must be a positive number of seconds")
        return float(value)

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.raw.get(key, default)
        if value not in choices:
            raise self.error(key, f"must be one of {', '.join(repr(c) for c in choices)}, not {value!r}")
        return str(value)

    def secret_from_env(self, key: str, environ: Mapping[str, str]) -> str | None:
        variable = self.optional_string(key)
        if variable is None:
            return None
        value = environ.get(variable)
        if not value:
            raise self.error(key, f"environment variable {variable} is not set")
        return value


def build_notifiers(section: Mapping[str, Any], environ: Mapping[str, str]) -> list[Notifier]:
    """Build one notifier per table under `[notifiers]`, in file order; none configured means the console.

    `environ` supplies the secrets that `password_env` and `secret_env` name. Raises NotifierConfigError,
    whose message names the offending key and never contains a secret.
    """
    if not isinstance(section, Mapping):
        raise NotifierConfigError("notifiers: must be a table")
    if not section:
        return [ConsoleNotifier()]
    notifiers: list[Notifier] = []
    for name, raw in section.items():
        builder = _BUILDERS.get(name)
        if builder is None:
            known = ", ".join(sorted(_BUILDERS))
            raise NotifierConfigError(f"notifiers.{name}: unknown notifier (expected one of {known})")
        notifiers.append(builder(raw, environ))
    return notifiers


def _console(raw: object, environ: Mapping[str, str]) -> Notifier:
    _Table("console", raw, ())
    return ConsoleNotifier()


def _file(raw: object, environ: Mapping[str, str]) -> Notifier:
    table = _Table("file", raw, ("path",))
    return FileNotifier(table.string("path"))


def _email(raw: object, environ: Mapping[str, str]) -> Notifier:
    table = _Table("email", raw, ("host", "port", "sender", "tls", "username", "password_env", "timeout"))
    tls = table.choice("tls", TLS_MODES, "starttls")
    sender = table.string("sender")
    if "@" not in parseaddr(sender)[1]:
        raise table.error("sender", f"must be an email address, not {sender!r}")
    username = table.optional_string("username")
    if username is not None and "password_env" not in table.raw:
        raise table.error("password_env", "is required when username is set")
    if username is None and "password_env" in table.raw:
        raise table.error("username", "is required when password_env is set")
    return EmailNotifier(
        host=table.string("host"),
        port=table.integer("port", _DEFAULT_PORTS[tls], 1, 65535),
        sender=sender,
        tls=tls,
        username=username,
        password=table.secret_from_env("password_env", environ),
        timeout=table.positive_number("timeout", _DEFAULT_TIMEOUT),
    )


def _webhook(raw: object, environ: Mapping[str, str]) -> Notifier:
    table = _Table("webhook", raw, ("url", "secret_env", "timeout"))
    url = table.string("url")
    try:
        check_url(url)
    except ValueError as exc:
        raise table.error("url", str(exc)) from None
    return WebhookNotifier(
        url,
        secret=table.secret_from_env("secret_env", environ),
        timeout=table.positive_number("timeout", _DEFAULT_TIMEOUT),
    )


_BUILDERS: dict[str, Callable[[object, Mapping[str, str]], Notifier]] = {
    "console": _console,
    "email": _email,
    "file": _file,
    "webhook": _webhook,
}
