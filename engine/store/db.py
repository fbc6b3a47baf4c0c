"""Opening a database and every transaction on it: settings per backend, schema checks, `sojourn init` migrations."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlmodel import Session

from engine.domain.errors import DatabaseUnavailable, NotInitialised

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest migration in MIGRATIONS, so checking a database needs no alembic import; a test pins the two together.
SCHEMA_REVISION = "0015_outbox_parts"
SQLITE_BUSY_TIMEOUT_MS = 10_000
READ_ONLY_OPTION = "sojourn_read_only"  # an execution option: this connection's transactions only read
_SCHEMA_CHECKED: weakref.WeakSet[Engine] = weakref.WeakSet()


def open_db(url: str) -> Engine:
    """The database at `url`, a SQLAlchemy Engine with the SQLite settings a daemon and CLI users need side by side."""
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        if parsed.get_backend_name() == "sqlite":
            db = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
            event.listen(db, "connect", _sqlite_pragmas)
            event.listen(db, "begin", _sqlite_begin_immediate)
            return db
        return create_engine(parsed, pool_pre_ping=True)
    except (ArgumentError, ImportError, ValueError) as exc:
        raise DatabaseUnavailable(f"cannot use database URL {_redacted(url)}: {exc}",
                                  details=["give a URL like sqlite:///sojourn.db or postgresql+psycopg://user@host/db"]
                                  ) from None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # The driver's own transaction handling starts transactions late and breaks SAVEPOINT; we begin them ourselves.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL: a crash may lose the last commit, never corrupt
    cursor.close()


def _sqlite_begin_immediate(connection: Any) -> None:
    """Take the write lock when a transaction starts, so writers queue (busy_timeout) instead of failing midway;
    a read-only transaction (`connection_transaction`, `transaction`) never takes it."""
    read_only = connection.get_execution_options().get(READ_ONLY_OPTION, False)
    connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def database_files(url: str) -> list[Path]:
    """The files a SQLite database at `url` lives in: the database file and its -wal, -shm and -journal companions,
    as SQLite would find them from the current directory. None for a server database, an in-memory database or a
    URL that cannot be parsed (opening it reports that)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return []
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return []
    database = Path(parsed.database)
    return [database, *(database.with_name(database.name + suffix) for suffix in ("-wal", "-shm", "-journal"))]


def is_sqlite(db: Engine) -> bool:
    return db.dialect.name == "sqlite"


def _redacted(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "(unparseable URL)"


def alembic_config(db: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["db"] = db
    return config


def upgrade_schema(db: Engine) -> tuple[str | None, str]:
    """Bring the schema to the newest migration; returns the revisions before and after."""
    from alembic import command

    before = current_revision(db)
    try:
        command.upgrade(alembic_config(db), "head")
    except DBAPIError as exc:
        raise _unavailable(db, exc) from None
    return before, SCHEMA_REVISION


def serialize_schema_changes(connection: Any) -> None:
    """On PostgreSQL, make concurrent `sojourn init` runs (one per daemon host) take turns until commit."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(7243)"))


def head_revision() -> str | None:
    """The newest migration as alembic sees it (slow: it reads every migration file)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(MIGRATIONS)).get_current_head()


def current_revision(db: Engine) -> str | None:
    try:
        with connection_transaction(db) as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError as exc:
        raise _unavailable(db, exc) from None


def require_schema(db: Engine) -> None:
    """Refuse to work on a database that `sojourn init` has not brought to the newest schema.

    Checked once per database: a process does not see its schema change under it (`init` only ever upgrades).
    """
    if db in _SCHEMA_CHECKED:
        return
    path = db.url.database if is_sqlite(db) else None
    if path and path != ":memory:" and not path.startswith("file:") and not Path(path).exists():
        raise NotInitialised(f"the database file {path} does not exist",
                             details=["run `sojourn init` to create it, or point --db at an existing database"])
    current = current_revision(db)
    if current != SCHEMA_REVISION:
        state = "is not initialised" if current is None else f"has an older schema ({current})"
        raise NotInitialised(f"the database {_redacted(str(db.url))} {state}",
                             details=["run `sojourn init` to create or upgrade it"])
    _SCHEMA_CHECKED.add(db)


def _unavailable(db: Engine, exc: DBAPIError) -> DatabaseUnavailable:
    first_line = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
    return DatabaseUnavailable(f"cannot connect to {db.url.render_as_string(hide_password=True)}: {first_line}",
                               details=["check --db, SOJOURN_DATABASE_URL or [database] url in the config file"])


@contextmanager
def transaction(db: Engine, *, read_only: bool = False) -> Iterator[Session]:
    """One unit of work through the ORM: commits when the block ends, rolls everything back when it raises.

    Read-only, it reads beside writers (see `connection_transaction`) and writing in it fails."""
    if not read_only:
        with Session(db, expire_on_commit=False) as session, session.begin():
            yield session
        return
    with _read_only_connection(db) as connection, Session(connection, expire_on_commit=False) as session, \
            session.begin():
        yield session


@contextmanager
def connection_transaction(db: Engine, *, read_only: bool = False) -> Iterator[Connection]:
    """One unit of work on a bare Core connection, for named statements: commits when the block ends, rolls
    back when it raises.

    Read-only, it is on SQLite a deferred BEGIN, so it reads beside a writer (WAL) instead of queueing for the write
    lock, and on PostgreSQL a READ ONLY transaction; writing in it fails."""
    if not read_only:
        with db.begin() as connection:
            yield connection
        return
    with _read_only_connection(db) as connection, connection.begin():
        yield connection


@contextmanager
def session_in(connection: Connection) -> Iterator[Session]:
    """An ORM session inside the transaction `connection_transaction` opened: that transaction commits or rolls
    back, not the session."""
    with Session(connection) as session:
        yield session


def _read_only_connection(db: Engine) -> Connection:
    options = {READ_ONLY_OPTION: True, **({"postgresql_readonly": True} if db.dialect.name == "postgresql" else {})}
    return db.connect().execution_options(**options)
