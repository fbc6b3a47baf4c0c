"""audit privacy: committed personal values, erasures

Revision ID: 0009_audit_privacy
Revises: 0008_plan
Create Date: 2026-12-07 11:00:00.000000

Events written before this upgrade keep `secret` null: their hash covers actor and details in clear, as it did, so
every earlier hash and export stays valid. Erasing a person from such an event keeps its hash and its place in the
chain, but its content can no longer be recomputed (`docs/privacy.md`).
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0009_audit_privacy'
down_revision: str | None = '0008_plan'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # plain ALTER TABLE on every backend: a batch copy of `audit_event` is not needed for nullable columns
    op.add_column('audit_event', sa.Column('secret', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    op.add_column('audit_event', sa.Column('erased', sa.Text(), nullable=True))
    op.create_table('person_erasure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('erased_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('erased_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('person_id')
    )


def downgrade() -> None:
    op.drop_table('person_erasure')
    op.drop_column('audit_event', 'erased')  # SQLite 3.35 and later drop columns in place
    op.drop_column('audit_event', 'secret')
