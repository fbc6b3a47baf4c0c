"""audit event chain

Revision ID: 0002_audit_event
Revises: 0001
Create Date: 2026-12-02 07:40:00.000000

Assignments that exist before this upgrade start with an empty chain (`audit_seq` 0): their earlier history is not
backfilled, because sealing rows nobody vouched for would make them look as trustworthy as rows chained when written.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0002_audit_event'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('audit_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('actor', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('details', sa.Text(), nullable=False),
    sa.Column('prev_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('hash', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignment.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('assignment_id', 'seq')
    )
    # plain ALTER TABLE on every backend: a batch copy of `assignment` on SQLite would trip the foreign keys to it
    op.add_column('assignment', sa.Column('audit_seq', sa.Integer(), server_default='0', nullable=False))
    op.add_column('assignment', sa.Column('audit_head', sqlmodel.sql.sqltypes.AutoString(), nullable=True))


def downgrade() -> None:
    op.drop_column('assignment', 'audit_head')  # SQLite 3.35 and later drop columns in place
    op.drop_column('assignment', 'audit_seq')
    op.drop_table('audit_event')
