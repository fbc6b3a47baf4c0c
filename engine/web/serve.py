"""Runs the web app under waitress, and probes a running server for `sojourn serve --check`."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine

from engine.delivery.config import ServeSettings
from engine.delivery.links import signer_from
from engine.domain.errors import BadInput, SojournError
from engine.program.logging import get_logger
from engine.store.db import is_sqlite, require_schema

log = get_logger(__name__)
HEALTH_SERVICE = "sojourn"  # what `/healthz` says it is, so `--check` knows it reached Sojourn


def serve(db: Engine, settings: ServeSettings) -> None:
    """Serve until interrupted; refuses to start without a secret or a public URL to mint links for, and when the
    address cannot be listened on (BadInput). Logs `serving` once it listens."""
    from waitress import create_server

    from engine.web.app import create_app

    signer = signer_from(settings)
    if signer is None:
        raise BadInput("config [serve]: public_url and secret_env (naming a set environment variable) are needed",
                       details=["e.g. public_url = \"https://sojourn.example.com\", secret_env = "
                                "\"SOJOURN_LINK_SECRET\""])
    require_schema(db)
    try:
        # Slow clients only hold connections (waitress reads requests without a thread), so a connection limit
        # well above them keeps /healthz and the pages answering; the threads serve complete requests only.
        server = create_server(create_app(db, signer), host=settings.host, port=settings.port,
                               threads=settings.threads, connection_limit=settings.connection_limit,
                               channel_timeout=settings.channel_timeout, ident="sojourn")
    except OSError as exc:
        raise BadInput(f"sojourn serve cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc} "
                       "(is another program using the port? stop it, or set another [serve] port)") from None
    log.info("serving", host=settings.host, port=settings.port, public_url=settings.public_url,
             database=instance_database(db), version=sojourn_version())
    server.run()


def check(settings: ServeSettings, database: str, timeout: float = 5.0) -> str:
    """Ask the running server for its health, and that it is Sojourn serving `database` (as `instance_database`
    names it); what it answered, or SojournError when it is not healthy or not that instance."""
    url = f"{settings.local_url}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own http URL
            if response.status == 200:
                return _the_instance(url, response.read(4096), database)
            problem = f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        problem = f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        problem = str(getattr(exc, "reason", exc))
    raise SojournError(f"sojourn serve at {url} is not healthy: {problem}")


def _the_instance(url: str, body: bytes, database: str) -> str:
    try:
        health: Any = json.loads(body)
    except ValueError:
        health = None
    if not (isinstance(health, dict) and health.get("service") == HEALTH_SERVICE):
        raise SojournError(f"something answers at {url}, but it is not sojourn serve",
                           details=["another program may be using [serve] port; stop it, or change the port"])
    if health.get("database") != database:
        raise SojournError(f"sojourn serve at {url} serves the database {health.get('database')}, not {database}",
                           details=["check --db, SOJOURN_DATABASE_URL or [database] url, and [serve] port"])
    return f"{url} (sojourn {health.get('version')} on {database})"


def instance_database(db: Engine) -> str:
    """The database as `/healthz` names it: an SQLite file by its absolute path (a relative one depends on the
    folder `serve` started in), other URLs without password or query (which may hold credentials)."""
    given = db.url
    database = given.database
    if is_sqlite(db) and database and database != ":memory:" and not database.startswith("file:"):
        database = str(Path(database).resolve())
    url = URL.create(given.drivername, username=given.username, host=given.host, port=given.port, database=database)
    return url.render_as_string(hide_password=False)


def sojourn_version() -> str:
    try:
        return version("sojourn")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"
