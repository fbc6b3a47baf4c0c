"""The transaction every use case runs in, on a prepared database, with write races turned into user errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session

from engine.domain.errors import ConcurrentChange
from engine.store.db import connection_transaction, require_schema, transaction


@contextmanager
def use_case_transaction(db: Engine, *, read_only: bool = False) -> Iterator[Session]:
    """A transaction on a database that `sojourn init` has prepared; write races become user errors.

    Read-only is for pages that only show: it never waits for writers."""
    require_schema(db)
    with _races_as_user_errors(read_only), transaction(db, read_only=read_only) as session:
        yield session


@contextmanager
def use_case_connection(db: Engine) -> Iterator[Connection]:
    """The same transaction on a bare Core connection, for use cases that write with named statements only."""
    require_schema(db)
    with _races_as_user_errors(False), connection_transaction(db) as connection:
        yield connection


def _races_as_user_errors(read_only: bool) -> AbstractContextManager[None]:
    # A reader races with no one, so what fails under it is a bug to see as it is.
    return nullcontext() if read_only else _write_races_as_user_errors()


@contextmanager
def _write_races_as_user_errors() -> Iterator[None]:
    try:
        yield
    except StaleDataError:
        raise ConcurrentChange("someone else changed this assignment at the same time; nothing was written",
                               details=["look at it again (sojourn assignment show ID) and retry"]) from None
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise  # a dangling reference or a missing value is a bug to see, never someone else's write
        raise ConcurrentChange("someone else wrote the same record at the same time; nothing was written",
                               details=["look again and retry"]) from None
    except OperationalError as exc:
        if "locked" in str(exc.orig):
            raise ConcurrentChange("the database stayed busy with another writer; nothing was written",
                                   details=["retry in a moment"]) from None
        raise


# SQLite's extended result codes and PostgreSQL's SQLSTATE for a duplicate key: the only integrity failure two
# writers racing for the same record can cause (Sojourn deletes no row another may still point at).
_SQLITE_DUPLICATE = ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY")
_POSTGRES_DUPLICATE = "23505"


def is_unique_violation(exc: IntegrityError) -> bool:
    """Whether the database refused a write because the same key was written first (a race, not a bug)."""
    original = exc.orig
    return (getattr(original, "sqlite_errorname", None) in _SQLITE_DUPLICATE
            or getattr(original, "sqlstate", None) == _POSTGRES_DUPLICATE)
