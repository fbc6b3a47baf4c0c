"""Alembic environment: runs against the database Sojourn hands over, never a URL from an ini file."""

from alembic import context
from sqlmodel import SQLModel

import engine.store.models  # noqa: F401  (defines the tables on SQLModel.metadata)
from engine.store.db import connection_transaction, serialize_schema_changes

target_metadata = SQLModel.metadata
db = context.config.attributes["db"]

with connection_transaction(db) as connection:
    serialize_schema_changes(connection)
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()
