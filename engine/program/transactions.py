"""The transaction every use case runs in, on a prepared database, with write races turned into user errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import Session

from engine.domain.errors import ConcurrentChange
from engine.store.db import reading, require_schema, transaction


@contextmanager
def use_case_transaction(db: Engine) -> Iterator[Session]:
    """A transaction on a database that `sojourn init` has prepared; write races become user errors."""
    require_schema(db)
    with _write_races_as_user_errors(), transaction(db) as session:
        yield session


@contextmanager
def use_case_reading(db: Engine) -> Iterator[Session]:
    """A read-only transaction on a prepared database, for pages that only show (it never waits for writers)."""
    require_schema(db)
    with reading(db) as session:
        yield session


@contextmanager
def use_case_connection(db: Engine) -> Iterator[Connection]:
    """The same transaction on a bare Core connection, for use cases that write with named statements only."""
    require_schema(db)
    with _write_races_as_user_errors(), db.begin() as connection:
        yield connection


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
