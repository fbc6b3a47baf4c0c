"""Runs the web app under waitress, and probes a running server for `sojourn serve --check`."""

from __future__ import annotations

import urllib.error
import urllib.request

from sqlalchemy import Engine

from engine.config import ServeSettings
from engine.errors import BadInput, SojournError
from engine.links import signer_from
from engine.logging import get_logger
from engine.store.db import require_schema

log = get_logger(__name__)


def serve(db: Engine, settings: ServeSettings) -> None:
    """Serve until interrupted; refuses to start without a secret or a public URL to mint links for."""
    from waitress import serve as waitress_serve

    from engine.web.app import create_app

    signer = signer_from(settings)
    if signer is None:
        raise BadInput("config [serve]: public_url and secret_env (naming a set environment variable) are needed",
                       details=["e.g. public_url = \"https://sojourn.example.com\", secret_env = "
                                "\"SOJOURN_LINK_SECRET\""])
    require_schema(db)
    log.info("serving", host=settings.host, port=settings.port, public_url=settings.public_url)
    waitress_serve(create_app(db, signer), host=settings.host, port=settings.port, threads=settings.threads,
                   ident="sojourn")


def check(settings: ServeSettings, timeout: float = 5.0) -> str:
    """Ask the running server for its health; SojournError when it does not answer ok."""
    url = f"{settings.local_url}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - our own http URL
            if response.status == 200:
                return url
            problem = f"HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        problem = f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        problem = str(getattr(exc, "reason", exc))
    raise SojournError(f"sojourn serve at {url} is not healthy: {problem}")
