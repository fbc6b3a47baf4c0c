"""Settings: options over environment variables over the TOML file over defaults; the file is checked whole.

The file is read into pydantic models that refuse unknown sections and keys (naming the closest known one),
values of the wrong type and values out of range. Every problem of the file is reported at once, each located
by its section and key, whatever the command. What depends on the environment (the secrets that `*_env` keys
name) is checked when it is used: a command that never delivers does not need the SMTP password.
"""

from __future__ import annotations

import difflib
import getpass
import math
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator
from pydantic_core import ErrorDetails

from engine.domain.errors import BadInput
from engine.domain.notices import NoticeKind
from notifiers.config import NotifiersConfig

if TYPE_CHECKING:
    import random

    from notifiers import Notifier

DEFAULT_DATABASE_URL = "sqlite:///sojourn.db"
DEFAULT_CONFIG_FILE = "sojourn.toml"
DEFAULT_INTERVAL_SECONDS = 60.0
MAX_INTERVAL_SECONDS = 86_400.0
DEFAULT_ROUTE = "default"
MAX_RETRY_AFTER_SECONDS = 86400.0  # a longer Retry-After (or a date in the year 9999) is cut to one day
DEFAULT_SERVE_PORT = 8080
MIN_SECRET_BYTES = 32  # a link-signing secret shorter than this can be guessed offline from one signed link

# TOML has real types: `port = "587"` or `port = true` is a mistake, not the number 587 or 1.
TABLE = ConfigDict(extra="forbid", strict=True, frozen=True)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return value.rstrip("/")


Text = Annotated[str, AfterValidator(_not_blank)]
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


# --- the file -----------------------------------------------------------------------------------------------


class DatabaseSection(BaseModel):
    """`[database]`: the SQLAlchemy URL of the database."""

    model_config = TABLE
    url: Text | None = None


class DaemonSection(BaseModel):
    """`[daemon]`: the sweep period."""

    model_config = TABLE
    interval_seconds: Annotated[Seconds, Field(le=MAX_INTERVAL_SECONDS)] | None = None


class DeliveryPolicy(BaseModel):
    """How hard and how often delivery is tried: the `[delivery]` table of the config file.

    A failed attempt n (counting from 0) waits min(cap, base * 2**n) seconds, less up to `jitter` of it at
    random so that a burst of failures does not retry in lockstep, and never less than a channel's
    Retry-After, which is honoured up to one day. With the defaults the waits are about 30 s, 1, 2, 4, 8, 16
    and 32 minutes and 1 hour: the 8th failed attempt, about 2 hours after the first, dead-letters the
    notification.
    """

    model_config = TABLE
    base_seconds: Annotated[Seconds, Field(ge=0.001)] = 30.0
    cap_seconds: Annotated[Seconds, Field(ge=0.001)] = 3600.0
    max_attempts: Annotated[int, Field(ge=1)] = 8
    jitter: Annotated[float, Field(ge=0, le=1)] = 0.2
    batch_size: Annotated[int, Field(ge=1, le=10_000)] = 50
    claim_seconds: Annotated[Seconds, Field(ge=1)] = 300.0  # a crashed holder's rows are free again after this

    @model_validator(mode="after")
    def _cap_covers_base(self) -> DeliveryPolicy:
        if self.cap_seconds < self.base_seconds:
            raise ValueError("cap_seconds must not be smaller than base_seconds")
        return self

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> DeliveryPolicy:
        """Read a `[delivery]` table; BadInput names every wrong key or value."""
        return _checked(cls, section, ("delivery",))

    def retry_delay(self, failed_attempts: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before the next attempt after `failed_attempts` earlier failures (0 for the first)."""
        delay = min(self.cap_seconds, self.base_seconds * 2.0 ** min(failed_attempts, 60))
        delay *= 1 - self.jitter * rng.random()
        asked = 0.0 if retry_after is None or math.isnan(retry_after) else retry_after
        return max(delay, min(asked, MAX_RETRY_AFTER_SECONDS))


# `[routing]`: one optional list of notifier names per notice kind, and `default`.
RoutingSection = create_model(  # type: ignore[call-overload]
    "RoutingSection", __config__=TABLE, **dict.fromkeys((*NoticeKind, DEFAULT_ROUTE), (list[str] | None, None)))


class ServeSection(BaseModel):
    """`[serve]`: where `sojourn serve` listens, how much it takes on, its public URL and the secret's variable."""

    model_config = TABLE
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = DEFAULT_SERVE_PORT
    public_url: Annotated[str, AfterValidator(_http_url)] | None = None
    secret_env: Text | None = None
    link_days: Annotated[int, Field(ge=1, le=365)] = 14
    threads: Annotated[int, Field(ge=1, le=64)] = 8
    connection_limit: Annotated[int, Field(ge=1, le=100_000)] = 500
    channel_timeout: Annotated[int, Field(ge=1, le=86_400)] = 30  # seconds an idle connection is kept


class AuditSection(BaseModel):
    """`[audit]`: `key_env` names the environment variable holding the key of a keyed (HMAC) audit chain."""

    model_config = TABLE
    key_env: Text | None = None


class ConfigFile(BaseModel):
    """The whole TOML file; every section is optional."""

    model_config = TABLE
    database: DatabaseSection = DatabaseSection()
    daemon: DaemonSection = DaemonSection()
    notifiers: NotifiersConfig = NotifiersConfig()
    routing: RoutingSection = RoutingSection()  # type: ignore[valid-type]
    delivery: DeliveryPolicy = DeliveryPolicy()
    serve: ServeSection = ServeSection()
    audit: AuditSection = AuditSection()


def parse_config(table: Mapping[str, Any]) -> ConfigFile:
    """Check a parsed TOML document; BadInput lists every problem, each located like `[database] ulr`."""
    try:
        config = _checked(ConfigFile, table, ())
    except BadInput as exc:  # routes to notifiers not configured are mistakes too, whatever else is wrong
        raise BadInput(exc.message, details=[*exc.details, *_raw_route_problems(table)]) from None
    problems = route_problems(_routes(config.routing), config.notifiers.names())
    if problems:
        raise BadInput(problems[0], details=problems[1:])
    return config


def _raw_route_problems(table: Mapping[str, Any]) -> list[str]:
    """route_problems of a file that did not pass the models, for the routes well-formed enough to check."""
    routing, notifiers = table.get("routing"), table.get("notifiers", {})
    if not isinstance(routing, Mapping) or not isinstance(notifiers, Mapping):
        return []
    routes = {kind: names for kind, names in routing.items() if kind in RoutingSection.model_fields
              and isinstance(names, list) and all(isinstance(name, str) for name in names)}
    return route_problems(routes, [name for name in notifiers if name in NotifiersConfig.model_fields])


_Model = TypeVar("_Model", bound=BaseModel)


def _checked(model: type[_Model], table: Mapping[str, Any], where: tuple[str, ...]) -> _Model:
    try:
        return model.model_validate(table)
    except ValidationError as exc:
        problems = [describe_problem(error, where) for error in exc.errors()]
        raise BadInput(problems[0], details=problems[1:]) from None


# --- problems, located and explained --------------------------------------------------------------------------

_UNKNOWN = frozenset({"extra_forbidden", "unexpected_keyword_argument"})
_AS_TABLE = {"model_type", "model_attributes_type", "dict_type", "dataclass_type"}
_PLAIN = {"int_type": "must be a whole number", "int_from_float": "must be a whole number",
          "float_type": "must be a number", "string_type": "must be a string", "bool_type": "must be true or false",
          "list_type": "must be a list", "missing": "is required"}


def describe_problem(error: ErrorDetails, where: tuple[str, ...] = ()) -> str:
    """One pydantic error as a line for the user: `[section] key: what is wrong`, with a suggestion for a typo."""
    loc = (*where, *error["loc"])
    if error["type"] in _UNKNOWN:
        return _unknown(loc, error["input"])
    table, key = _split(loc)
    place = f"{table} {key}" if key else table
    return f"{place}: {_what_is_wrong(error)}"


def _what_is_wrong(error: ErrorDetails) -> str:
    """What is wrong, with the value given unless it may hold a credential (URLs often do)."""
    kind = error["type"]
    if kind in _AS_TABLE:
        return "must be a table"
    text = _PLAIN.get(kind) or error["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
    given = error.get("input")
    secretive = any("url" in str(part) for part in error["loc"])
    if kind != "missing" and not secretive and isinstance(given, str | int | float) and len(repr(given)) <= 80:
        text += f", not {given!r}"
    return text


def _unknown(loc: tuple[str | int, ...], given: object) -> str:
    *parent, name = (str(part) for part in loc)
    known = _known_names(tuple(parent))
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if name.endswith(("password", "secret", "key")) and f"{name}_env" in known:
        return (f"{_place(parent, name, given)}: keep secrets out of the config file; put it in an environment "
                f"variable and set {name}_env to the variable's name")
    what = "notifier" if parent == ["notifiers"] else "key" if parent else \
        "section" if isinstance(given, Mapping) else "key outside any section"
    if close:
        suggestion = _place(parent, close[0], given) if isinstance(given, Mapping) else f"`{close[0]}`"
        return f"{_place(parent, name, given)}: unknown {what}; did you mean {suggestion}?"
    return f"{_place(parent, name, given)}: unknown {what} (known: {', '.join(known) or 'none'})"


def _place(parent: Sequence[str], name: str, given: object) -> str:
    if isinstance(given, Mapping):
        return f"[{'.'.join([*parent, name])}]"
    return f"[{'.'.join(parent)}] {name}" if parent else name


def _split(loc: tuple[str | int, ...]) -> tuple[str, str]:
    """`[table.path]` and the key path below it, for a location in the file."""
    depth = 0
    while depth < len(loc) and _model_at(tuple(str(p) for p in loc[:depth + 1])) is not None:
        depth += 1
    table = "[" + ".".join(str(p) for p in loc[:depth]) + "]" if depth else "(top level)"
    key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc[depth:]).lstrip(".")
    return table, key


def _known_names(path: tuple[str, ...]) -> list[str]:
    model = _model_at(path)
    return list(model.model_fields) if model is not None else []


def _model_at(path: tuple[str, ...]) -> type[BaseModel] | None:
    """The model of the table at `path` in the file (None when `path` is a key, not a table)."""
    model: type[BaseModel] = ConfigFile
    for part in path:
        info = model.model_fields.get(part)
        found = None if info is None else next(
            (t for t in (info.annotation, *get_args(info.annotation)) if isinstance(t, type)
             and issubclass(t, BaseModel)), None)
        if found is None:
            return None
        model = found
    return model


# --- settings -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Every setting resolved; `file` is the checked config file (all defaults when there is none)."""

    database_url: str
    actor: str
    interval_seconds: float
    config_path: Path | None = None
    file: ConfigFile = field(default_factory=ConfigFile)

    @property
    def notifiers(self) -> NotifiersConfig:
        return self.file.notifiers

    @property
    def audit_key_env(self) -> str | None:
        """`[audit] key_env`: the name of the environment variable with the audit chain's HMAC key, if any."""
        return self.file.audit.key_env

    @property
    def config_source(self) -> str:
        """The config file read, as an absolute path, or "none"."""
        return str(self.config_path.resolve()) if self.config_path else "none"

    def serve_settings(self, environ: Mapping[str, str]) -> ServeSettings:
        """`[serve]` with the secret read from the environment (BadInput when it is too short)."""
        return ServeSettings.from_config(self.file.serve, environ)

    def delivery_policy(self) -> DeliveryPolicy:
        return self.file.delivery

    def routing_for(self, notifier_names: Sequence[str]) -> Routing:
        """`[routing]`, checked against the notifiers given."""
        return Routing.from_config(_routes(self.file.routing), notifier_names)


def load_settings(*, db: str | None = None, config: str | None = None, actor: str | None = None,
                  interval: float | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Resolve every setting; `db`, `config` and `actor` are the command-line values (None when not given)."""
    env = os.environ if environ is None else environ
    config_path = _config_path(config or env.get("SOJOURN_CONFIG"))
    file = _read_config(config_path) if config_path else ConfigFile()
    return Settings(
        database_url=db or env.get("SOJOURN_DATABASE_URL") or file.database.url or DEFAULT_DATABASE_URL,
        actor=actor or env.get("SOJOURN_ACTOR") or _login_name(),
        interval_seconds=_interval(interval) if interval is not None else (
            file.daemon.interval_seconds or DEFAULT_INTERVAL_SECONDS),
        config_path=config_path,
        file=file,
    )


def _config_path(given: str | None) -> Path | None:
    if given:
        path = Path(given)
        if not path.is_file():
            raise BadInput(f"config file {given} does not exist",
                           details=["--config and SOJOURN_CONFIG must name an existing TOML file"])
        return path
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def _read_config(path: Path) -> ConfigFile:
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"config file {path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise BadInput(f"config file {path}: not UTF-8 text") from None
    except OSError as exc:
        raise BadInput(f"config file {path}: cannot be read: {exc.strerror}") from None
    try:
        return parse_config(table)
    except BadInput as exc:
        lines = [f"config file {path}: {line}" for line in exc.lines()]
        raise BadInput(lines[0], details=lines[1:]) from None


def _interval(value: float) -> float:
    if not 0 < value <= MAX_INTERVAL_SECONDS:  # also refuses NaN
        raise BadInput(f"daemon interval: {value!r} must be a number of seconds greater than 0 and at most "
                       f"{MAX_INTERVAL_SECONDS:.0f}")
    return float(value)


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


# --- routing --------------------------------------------------------------------------------------------------


def _routes(section: BaseModel) -> dict[str, list[str]]:
    routes: dict[str, list[str]] = section.model_dump(exclude_none=True)
    return routes


def route_problems(routes: Mapping[str, Sequence[str]], notifier_names: Sequence[str]) -> list[str]:
    """A line for every route naming a notifier that `[notifiers]` does not configure."""
    problems = []
    for kind, names in routes.items():
        missing = [n for n in names if n not in notifier_names]
        if missing:
            problems.append(f"[routing] {kind}: notifier(s) {', '.join(missing)} not configured "
                            f"(configured: {', '.join(notifier_names) or 'none'})")
    return problems


@dataclass(frozen=True)
class Routing:
    """Which notifiers get which kinds: the `[routing]` table, kind -> list of notifier names.

    A kind without an entry goes to the `default` entry, and without that to every configured notifier. An
    empty list means the kind is not delivered anywhere (the row is marked sent).
    """

    routes: Mapping[str, tuple[str, ...]]

    @classmethod
    def from_config(cls, section: Mapping[str, Any], notifier_names: Sequence[str]) -> Routing:
        """Read `[routing]`, refusing unknown kinds and notifiers that are not configured with BadInput."""
        routes = _routes(_checked(RoutingSection, section, ("routing",)))
        problems = route_problems(routes, notifier_names)
        if problems:
            raise BadInput(problems[0], details=problems[1:])
        return cls({kind: tuple(dict.fromkeys(names)) for kind, names in routes.items()})

    def targets(self, kind: str, notifiers: Sequence[Notifier]) -> list[Notifier]:
        """The notifiers a notification of `kind` goes to, in configuration order."""
        names = self.routes.get(kind, self.routes.get(DEFAULT_ROUTE))
        if names is None:
            return list(notifiers)
        return [n for n in notifiers if n.name in names]


EVERYTHING_EVERYWHERE = Routing({})


# --- serving signed links -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServeSettings:
    """`[serve]` with its secret: where `sojourn serve` listens, what it takes on, and how links are signed.

    `secret` is read from the environment variable `secret_env` names; links are minted only when both it and
    `public_url` are set. A secret shorter than MIN_SECRET_BYTES is refused. `connection_limit`, `channel_timeout`
    and `threads` go to waitress: the limit is well above what slow clients holding connections open can use up,
    and the threads only ever serve complete requests.
    """

    host: str = "127.0.0.1"
    port: int = DEFAULT_SERVE_PORT
    public_url: str | None = None
    secret: str | None = None
    link_days: int = 14
    threads: int = 8
    connection_limit: int = 500
    channel_timeout: int = 30
    secret_env: str | None = None  # the variable's name, so an error can say which one to set

    @property
    def links_enabled(self) -> bool:
        return bool(self.public_url and self.secret)

    @property
    def local_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host  # noqa: S104 - compared, not bound
        return f"http://{host}:{self.port}"

    @classmethod
    def from_config(cls, section: ServeSection | Mapping[str, Any], environ: Mapping[str, str]) -> ServeSettings:
        """`[serve]` (checked here when given raw) with the secret its `secret_env` names, if that is set.

        A secret shorter than 32 bytes is BadInput: links signed with it could be forged.
        """
        serve = section if isinstance(section, ServeSection) else _checked(ServeSection, section, ("serve",))
        secret = environ.get(serve.secret_env) or None if serve.secret_env else None
        if secret is not None and len(secret.encode()) < MIN_SECRET_BYTES:
            raise BadInput(f"[serve] secret_env: the secret in {serve.secret_env} is {len(secret.encode())} bytes; "
                           f"a signing secret must be at least {MIN_SECRET_BYTES} bytes",
                           details=["make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"])
        return cls(host=serve.host, port=serve.port, public_url=serve.public_url, secret=secret,
                   secret_env=serve.secret_env,
                   link_days=serve.link_days, threads=serve.threads, connection_limit=serve.connection_limit,
                   channel_timeout=serve.channel_timeout)
