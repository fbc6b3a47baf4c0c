"""Persistence: SQLModel tables (`models`), engine setup and migrations (`db`), named statements by room.

The hot queries of the daemon (`queries`), the write path of advance and creation (`moves`), the reads of use cases
(`lookups`) and one `*_queries` module per room above. Alembic revisions live in `migrations/`.

May import: `engine.domain` and `engine.store` itself.
"""
