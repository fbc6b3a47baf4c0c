"""The shipped migrations and the schema revision the engine expects stay in step."""

from __future__ import annotations

from sqlalchemy import inspect
from sqlmodel import SQLModel

from engine.store.db import SCHEMA_REVISION, head_revision, open_db, upgrade_schema


def test_schema_revision_is_alembics_head() -> None:
    """A new migration must also move SCHEMA_REVISION, or every command would refuse the upgraded database."""
    assert head_revision() == SCHEMA_REVISION


def test_migrations_create_every_table_the_models_declare(tmp_path: object) -> None:
    """Running the migrations yields the tables and columns of the SQLModel metadata."""
    engine = open_db(f"sqlite:///{tmp_path}/m.db")
    upgrade_schema(engine)
    inspector = inspect(engine)
    for table in SQLModel.metadata.sorted_tables:
        columns = {c["name"] for c in inspector.get_columns(table.name)}
        assert columns == {c.name for c in table.columns}, table.name
    engine.dispose()
