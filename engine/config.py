"""Settings: command-line options over environment variables over the TOML file over defaults."""

from __future__ import annotations

import getpass
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import BadInput

DEFAULT_DATABASE_URL = "sqlite:///sojourn.db"
DEFAULT_CONFIG_FILE = "sojourn.toml"
DEFAULT_INTERVAL_SECONDS = 60.0
MAX_INTERVAL_SECONDS = 86_400.0


@dataclass(frozen=True)
class Settings:
    database_url: str
    actor: str
    interval_seconds: float
    notifiers: Mapping[str, Any] = field(default_factory=dict)
    routing: Mapping[str, Any] = field(default_factory=dict)
    delivery: Mapping[str, Any] = field(default_factory=dict)
    config_path: Path | None = None


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
