"""Scratch databases: a uniquely named PostgreSQL database or SQLite file, created for a run and dropped after it."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from engine.program import workflows
from engine.store.db import open_db

# The server on which scratch PostgreSQL databases are made: any database there that the user may connect to.
POSTGRES_ADMIN_URL = os.environ.get("SOJOURN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _server(admin_url: str) -> Engine:
    return create_engine(make_url(admin_url), isolation_level="AUTOCOMMIT")


def create_postgres_database(admin_url: str = POSTGRES_ADMIN_URL, *, prefix: str = "sojourn_scratch") -> str:
    """Create an empty database named `prefix_<random>` on the server of `admin_url`; returns its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    server = _server(admin_url)
    try:
        with server.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    finally:
        server.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(url: str, admin_url: str = POSTGRES_ADMIN_URL) -> None:
    """Drop the database of `url`, closing whatever sessions still use it."""
    name = make_url(url).database
    server = _server(admin_url)
    try:
        with server.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        server.dispose()


@contextlib.contextmanager
def postgres_database(admin_url: str = POSTGRES_ADMIN_URL, *, prefix: str = "sojourn_scratch") -> Iterator[str]:
    """The URL of an empty PostgreSQL database of its own, dropped afterwards."""
    url = create_postgres_database(admin_url, prefix=prefix)
    try:
        yield url
    finally:
        drop_postgres_database(url, admin_url)


def sqlite_url(directory: Path, name: str = "sojourn") -> str:
    """The URL of the SQLite file `name`.db in `directory`."""
    return f"sqlite:///{directory / name}.db"


@contextlib.contextmanager
def sqlite_database(directory: Path, name: str = "sojourn") -> Iterator[str]:
    """The URL of a new SQLite file in `directory`, removed afterwards with its journal files."""
    path = directory / f"{name}.db"
    try:
        yield sqlite_url(directory, name)
    finally:
        for leftover in (path, path.with_name(f"{path.name}-wal"), path.with_name(f"{path.name}-shm")):
            leftover.unlink(missing_ok=True)


def initialise(url: str, now: datetime) -> None:
    """Run `sojourn init` on `url`: the schema and the built-in workflows."""
    engine = open_db(url)
    try:
        workflows.init(engine, now=now)
    finally:
        engine.dispose()
