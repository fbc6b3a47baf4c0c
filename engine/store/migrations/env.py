"""Alembic environment: runs against the engine Sojourn hands over, never a URL from an ini file."""

from alembic import context
from sqlmodel import SQLModel

import engine.store.models
from engine.store.db import serialize_schema_changes

target_metadata = SQLModel.metadata
engine = context.config.attributes["engine"]

with engine.begin() as connection:
    serialize_schema_changes(connection)
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()
