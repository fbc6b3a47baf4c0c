"""Settings: options over environment variables over the TOML file over defaults; delivery policy and routing too.

`[delivery]` and `[routing]` are checked when the daemon asks for them, so a mistake there never stops a command
that does not deliver.
"""

from __future__ import annotations

import getpass
import math
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import BadInput
from engine.notices import NoticeKind

if TYPE_CHECKING:
    import random

    from notifiers import Notifier

DEFAULT_DATABASE_URL = "sqlite:///sojourn.db"
DEFAULT_CONFIG_FILE = "sojourn.toml"
DEFAULT_INTERVAL_SECONDS = 60.0
MAX_INTERVAL_SECONDS = 86_400.0
DEFAULT_ROUTE = "default"
MAX_RETRY_AFTER_SECONDS = 86400.0  # a longer Retry-After (or a date in the year 9999) is cut to one day


@dataclass(frozen=True)
class Settings:
    database_url: str
    actor: str
    interval_seconds: float
    notifiers: Mapping[str, Any] = field(default_factory=dict)
    routing: Mapping[str, Any] = field(default_factory=dict)
    delivery: Mapping[str, Any] = field(default_factory=dict)
    config_path: Path | None = None
    serve: Mapping[str, Any] = field(default_factory=dict)

    def serve_settings(self, environ: Mapping[str, str]) -> ServeSettings:
        """The `[serve]` table, checked when `sojourn serve` or the daemon's link minting needs it."""
        return ServeSettings.from_config(self.serve, environ)

    def delivery_policy(self) -> DeliveryPolicy:
        """The `[delivery]` table, checked when the daemon needs it (BadInput names a wrong key or value)."""
        return DeliveryPolicy.from_config(self.delivery)

    def routing_for(self, notifier_names: Sequence[str]) -> Routing:
        """The `[routing]` table, checked against the notifiers `[notifiers]` configures."""
        return Routing.from_config(self.routing, notifier_names)


def load_settings(*, db: str | None = None, config: str | None = None, actor: str | None = None,
                  interval: float | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Resolve every setting; `db`, `config` and `actor` are the command-line values (None when not given)."""
    env = os.environ if environ is None else environ
    config_path = _config_path(config or env.get("SOJOURN_CONFIG"))
    table = _read_toml(config_path) if config_path else {}
    database = _section(table, "database", config_path)
    daemon = _section(table, "daemon", config_path)
    return Settings(
        database_url=db or env.get("SOJOURN_DATABASE_URL") or database.get("url") or DEFAULT_DATABASE_URL,
        actor=actor or env.get("SOJOURN_ACTOR") or _login_name(),
        interval_seconds=_interval(interval if interval is not None else daemon.get("interval_seconds")),
        notifiers=_section(table, "notifiers", config_path),
        routing=_section(table, "routing", config_path),
        delivery=_section(table, "delivery", config_path),
        config_path=config_path,
        serve=_section(table, "serve", config_path),
    )


def _config_path(given: str | None) -> Path | None:
    if given:
        path = Path(given)
        if not path.is_file():
            raise BadInput(f"config file {given} does not exist")
        return path
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.is_file() else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"config file {path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise BadInput(f"config file {path}: not UTF-8 text") from None
    except OSError as exc:
        raise BadInput(f"config file {path}: cannot be read: {exc.strerror}") from None


def _section(table: Mapping[str, Any], name: str, path: Path | None) -> dict[str, Any]:
    value = table.get(name, {})
    if not isinstance(value, dict):
        raise BadInput(f"config file {path}: [{name}] must be a table")
    return value


def _interval(value: Any) -> float:
    if value is None:
        return DEFAULT_INTERVAL_SECONDS
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= MAX_INTERVAL_SECONDS:
        raise BadInput(f"daemon interval: {value!r} must be a number of seconds greater than 0 and at most "
                       f"{MAX_INTERVAL_SECONDS:.0f}")
    return float(value)


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


# --- delivery ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryPolicy:
    """How hard and how often delivery is tried: the `[delivery]` table of the config file.

    A failed attempt n (counting from 0) waits min(cap, base * 2**n) seconds, less up to `jitter` of it at
    random so that a burst of failures does not retry in lockstep, and never less than a channel's
    Retry-After, which is honoured up to one day. With the defaults the waits are about 30 s, 1, 2, 4, 8, 16
    and 32 minutes and 1 hour: the 8th failed attempt, about 2 hours after the first, dead-letters the
    notification.
    """

    base_seconds: float = 30.0
    cap_seconds: float = 3600.0
    max_attempts: int = 8
    jitter: float = 0.2
    batch_size: int = 50
    claim_seconds: float = 300.0  # a crashed holder's rows are free again after this, or once its heartbeat dies

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> DeliveryPolicy:
        """Read `[delivery]`, refusing unknown keys and values out of range with BadInput."""
        defaults = cls()
        known = {"base_seconds", "cap_seconds", "max_attempts", "jitter", "batch_size", "claim_seconds"}
        unknown = sorted(set(section) - known)
        if unknown:
            raise BadInput(f"config [delivery]: unknown key(s) {', '.join(unknown)} "
                           f"(known: {', '.join(sorted(known))})")
        policy = cls(
            base_seconds=_number(section, "base_seconds", defaults.base_seconds, low=0.001),
            cap_seconds=_number(section, "cap_seconds", defaults.cap_seconds, low=0.001),
            max_attempts=int(_number(section, "max_attempts", defaults.max_attempts, low=1, whole=True)),
            jitter=_number(section, "jitter", defaults.jitter, low=0, high=1),
            batch_size=int(_number(section, "batch_size", defaults.batch_size, low=1, high=10_000, whole=True)),
            claim_seconds=_number(section, "claim_seconds", defaults.claim_seconds, low=1),
        )
        if policy.cap_seconds < policy.base_seconds:
            raise BadInput("config [delivery]: cap_seconds must not be smaller than base_seconds")
        return policy

    def retry_delay(self, failed_attempts: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before the next attempt after `failed_attempts` earlier failures (0 for the first)."""
        delay = min(self.cap_seconds, self.base_seconds * 2.0 ** min(failed_attempts, 60))
        delay *= 1 - self.jitter * rng.random()
        asked = 0.0 if retry_after is None or math.isnan(retry_after) else retry_after
        return max(delay, min(asked, MAX_RETRY_AFTER_SECONDS))


def _number(section: Mapping[str, Any], key: str, default: float, *, low: float, high: float | None = None,
            whole: bool = False) -> float:
    value = section.get(key, default)
    kind_ok = isinstance(value, int) if whole else isinstance(value, int | float)
    if isinstance(value, bool) or not kind_ok or value < low or (high is not None and value > high):
        what = "a whole number" if whole else "a number"
        bounds = f"from {low:g} to {high:g}" if high is not None else f"of at least {low:g}"
        raise BadInput(f"config [delivery] {key}: {value!r} must be {what} {bounds}")
    return float(value)


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
        routes: dict[str, tuple[str, ...]] = {}
        problems: list[str] = []
        for kind, names in section.items():
            if kind not in (*NoticeKind, DEFAULT_ROUTE):
                problems.append(f"{kind}: unknown kind (known: {', '.join((*NoticeKind, DEFAULT_ROUTE))})")
                continue
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                problems.append(f"{kind}: must be a list of notifier names, e.g. [\"email\", \"webhook\"]")
                continue
            missing = [n for n in names if n not in notifier_names]
            if missing:
                problems.append(f"{kind}: notifier(s) {', '.join(missing)} not configured "
                                f"(configured: {', '.join(notifier_names)})")
                continue
            routes[kind] = tuple(dict.fromkeys(names))
        if problems:
            raise BadInput(f"config [routing]: {len(problems)} problem(s)",
                           details=[f"config [routing] {p}" for p in problems])
        return cls(routes)

    def targets(self, kind: str, notifiers: Sequence[Notifier]) -> list[Notifier]:
        """The notifiers a notification of `kind` goes to, in configuration order."""
        names = self.routes.get(kind, self.routes.get(DEFAULT_ROUTE))
        if names is None:
            return list(notifiers)
        return [n for n in notifiers if n.name in names]


EVERYTHING_EVERYWHERE = Routing({})


# --- serving signed links -----------------------------------------------------------------------------------------

DEFAULT_SERVE_PORT = 8080
MIN_SECRET_BYTES = 32  # shorter secrets were cracked offline from a single token


@dataclass(frozen=True)
class ServeSettings:
    """`[serve]`: where `sojourn serve` listens, the public base URL of its links, and the link-signing secret.

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
    secret_env: str | None = None

    @property
    def links_enabled(self) -> bool:
        return bool(self.public_url and self.secret)

    @property
    def local_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host  # noqa: S104 - compared, not bound
        return f"http://{host}:{self.port}"

    @classmethod
    def from_config(cls, section: Mapping[str, Any], environ: Mapping[str, str]) -> ServeSettings:
        known = {"host", "port", "public_url", "secret_env", "link_days", "threads", "connection_limit",
                 "channel_timeout"}
        unknown = sorted(set(section) - known)
        if unknown:
            raise BadInput(f"config [serve]: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        public_url = section.get("public_url")
        if public_url is not None and not (isinstance(public_url, str) and public_url.startswith(("http://",
                                                                                                   "https://"))):
            raise BadInput(f"config [serve] public_url: {public_url!r} must be an http:// or https:// URL")
        secret_env = section.get("secret_env")
        if secret_env is not None and not isinstance(secret_env, str):
            raise BadInput("config [serve] secret_env: must be the name of an environment variable")
        host = section.get("host", cls.host)
        if not isinstance(host, str):
            raise BadInput("config [serve] host: must be a host name or address")
        secret = environ.get(secret_env) or None if secret_env else None
        if secret is not None and len(secret.encode()) < MIN_SECRET_BYTES:
            raise BadInput(f"config [serve] secret_env: the secret in {secret_env} is {len(secret.encode())} bytes "
                           f"long; it must be at least {MIN_SECRET_BYTES}",
                           details=["make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"])
        return cls(host=host, port=_whole(section, "port", DEFAULT_SERVE_PORT, 1, 65535),
                   public_url=public_url.rstrip("/") if public_url else None, secret=secret, secret_env=secret_env,
                   link_days=_whole(section, "link_days", cls.link_days, 1, 365),
                   threads=_whole(section, "threads", cls.threads, 1, 64),
                   connection_limit=_whole(section, "connection_limit", cls.connection_limit, 1, 100_000),
                   channel_timeout=_whole(section, "channel_timeout", cls.channel_timeout, 1, 3600))


def _whole(section: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadInput(f"config [serve] {key}: {value!r} must be a whole number from {low} to {high}")
    return value
