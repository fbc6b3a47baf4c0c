"""The `[notifiers]` tables of the configuration file as pydantic models, and the notifiers built from them.

The models check the file alone: they refuse unknown notifiers and keys, values of the wrong type and out of
range, and name each problem by its location. What depends on the environment (the secret a `*_env` key names)
is checked when the notifiers are built, by `build_notifiers`.
"""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import parseaddr
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    model_validator,
)

from notifiers.base import Notifier, NotifierConfigError

# TOML has real types: `port = "587"` or `port = true` is a mistake, not the number 587 or 1.
TABLE = ConfigDict(extra="forbid", strict=True, frozen=True)
DEFAULT_PORTS = {"none": 25, "starttls": 587, "ssl": 465}
DEFAULT_TIMEOUT = 10.0


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _email_address(value: str) -> str:
    if "@" not in parseaddr(value)[1]:
        raise ValueError("must be an email address")
    return value


def _http_url(value: str) -> str:
    from notifiers.webhook import check_url  # the notifiers are imported only by commands that send

    check_url(value)  # its ValueError says what is wrong without repeating the URL
    return value


Text = Annotated[str, AfterValidator(_not_blank)]
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class ConsoleConfig(BaseModel):
    """`[notifiers.console]`: prints each notice on standard output; for trying Sojourn out."""

    model_config = TABLE


class FileConfig(BaseModel):
    """`[notifiers.file]`: appends each notice as one JSON line to `path`."""

    model_config = TABLE
    path: Text


class EmailConfig(BaseModel):
    """`[notifiers.email]`: SMTP. The password is read from the environment variable `password_env` names."""

    model_config = TABLE
    host: Text
    port: Annotated[int, Field(ge=1, le=65535)] | None = None  # default: the usual port of the TLS mode
    sender: Annotated[str, AfterValidator(_email_address)]
    tls: Literal["none", "starttls", "ssl"] = "starttls"
    username: Text | None = None
    password_env: Text | None = None
    timeout: Seconds = DEFAULT_TIMEOUT

    @model_validator(mode="after")
    def _login_is_whole(self) -> EmailConfig:
        if self.username is not None and self.password_env is None:
            raise ValueError("password_env is required when username is set")
        if self.username is None and self.password_env is not None:
            raise ValueError("username is required when password_env is set")
        return self


class WebhookConfig(BaseModel):
    """`[notifiers.webhook]`: POSTs each notice; with `secret_env`, the body is signed with that variable's value."""

    model_config = TABLE
    url: Annotated[str, AfterValidator(_http_url)]
    secret_env: Text | None = None
    timeout: Seconds = DEFAULT_TIMEOUT


class NotifiersConfig(BaseModel):
    """`[notifiers]`: one table per notifier to deliver to; none at all means nothing is delivered."""

    model_config = TABLE
    console: ConsoleConfig | None = None
    file: FileConfig | None = None
    email: EmailConfig | None = None
    webhook: WebhookConfig | None = None
    _order: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="wrap")
    @classmethod
    def _keep_file_order(cls, data: Any, handler: ModelWrapValidatorHandler[NotifiersConfig]) -> NotifiersConfig:
        checked = handler(data)
        if isinstance(data, Mapping):
            checked._order = tuple(name for name in data if name in cls.model_fields)
        return checked

    def names(self) -> list[str]:
        """The configured notifiers, in the order of the file."""
        return [name for name in self._order if getattr(self, name) is not None]


def build_notifiers(section: NotifiersConfig | Mapping[str, Any], environ: Mapping[str, str]) -> list[Notifier]:
    """One notifier per configured table, in file order; an empty list when none is configured.

    `section` is the checked `[notifiers]` table (a raw mapping is checked first, raising pydantic's
    ValidationError). `environ` supplies the secrets that `password_env` and `secret_env` name; a variable
    that is not set is NotifierConfigError, whose message names the key and never contains a secret.
    """
    config = section if isinstance(section, NotifiersConfig) else NotifiersConfig.model_validate(section)
    return [build_notifier(config, name, environ) for name in config.names()]


def build_notifier(config: NotifiersConfig, name: str, environ: Mapping[str, str]) -> Notifier:
    """The notifier `name` of a checked `[notifiers]` table (KeyError when it is not configured)."""
    from notifiers.console import ConsoleNotifier
    from notifiers.email import EmailNotifier
    from notifiers.file import FileNotifier
    from notifiers.webhook import WebhookNotifier

    table = getattr(config, name, None) if name in NotifiersConfig.model_fields else None
    if isinstance(table, ConsoleConfig):
        return ConsoleNotifier()
    if isinstance(table, FileConfig):
        return FileNotifier(table.path)
    if isinstance(table, EmailConfig):
        return EmailNotifier(host=table.host, port=table.port or DEFAULT_PORTS[table.tls], sender=table.sender,
                             tls=table.tls, username=table.username,
                             password=_secret(environ, "email", "password_env", table.password_env),
                             timeout=table.timeout)
    if isinstance(table, WebhookConfig):
        return WebhookNotifier(table.url, secret=_secret(environ, "webhook", "secret_env", table.secret_env),
                               timeout=table.timeout)
    raise KeyError(name)


def _secret(environ: Mapping[str, str], notifier: str, key: str, variable: str | None) -> str | None:
    if variable is None:
        return None
    value = environ.get(variable)
    if not value:
        raise NotifierConfigError(f"[notifiers.{notifier}] {key}: environment variable {variable} is not set")
    return value
