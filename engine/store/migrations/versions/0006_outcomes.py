"""outcomes after return, the cost of an assignment and the reason for an early return

Revision ID: 0006_outcomes
Revises: 0005_checkins
Create Date: 2026-12-02 08:30:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0006_outcomes'
down_revision: str | None = "0005_checkins"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('outcome',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('months', sa.Integer(), nullable=False),
    sa.Column('retained', sa.Boolean(), nullable=False),
    sa.Column('left_on', sa.Date(), nullable=True),
    sa.Column('left_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('considered_for_promotion', sa.Boolean(), nullable=False),
    sa.Column('promoted_to', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('impact', sa.Text(), nullable=True),
    sa.Column('recorded_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('recorded_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignment.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('assignment_id', 'months')
    )
    op.create_table('outcome_competency',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('outcome_id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('before', sa.Integer(), nullable=False),
    sa.Column('after', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['outcome_id'], ['outcome.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('outcome_id', 'name')
    )
    op.create_index(op.f('ix_outcome_competency_outcome_id'), 'outcome_competency', ['outcome_id'], unique=False)
    # plain ALTER TABLE on every backend: a batch copy of `assignment` on SQLite would trip the foreign keys to it
    op.add_column('assignment', sa.Column('cost_amount', sa.Numeric(14, 2), nullable=True))
    op.add_column('assignment', sa.Column('cost_currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=True))
    op.add_column('assignment', sa.Column('early_return_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True))


def downgrade() -> None:
    op.drop_column('assignment', 'early_return_reason')  # SQLite 3.35 and later drop columns in place
    op.drop_column('assignment', 'cost_currency')
    op.drop_column('assignment', 'cost_amount')
    op.drop_index(op.f('ix_outcome_competency_outcome_id'), table_name='outcome_competency')
    op.drop_table('outcome_competency')
    op.drop_table('outcome')
