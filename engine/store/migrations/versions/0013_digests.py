"""digests: a person's digest choice, and the digest each gathered notice went into

Revision ID: 0013_digests
Revises: 0012_objectives
Create Date: 2026-12-07 14:00:00.000000

Everyone starts with digests off: notices go one by one, as before.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0013_digests'
down_revision: str | None = "0012_objectives"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('person', sa.Column('digest', sqlmodel.sql.sqltypes.AutoString(), server_default='off',
                                      nullable=False))
    op.add_column('outbox', sa.Column('digest_key', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    op.create_index(op.f('ix_outbox_digest_key'), 'outbox', ['digest_key'], unique=False)


def downgrade() -> None:
    # a plain DROP COLUMN (SQLite 3.35 on): a batch copy of person would break the foreign keys that name it
    op.drop_index(op.f('ix_outbox_digest_key'), table_name='outbox')
    op.drop_column('outbox', 'digest_key')
    op.drop_column('person', 'digest')
