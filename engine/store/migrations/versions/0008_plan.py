"""living development plan: goal baseline, competencies and alignment, removal; learning activities; plan changes

Revision ID: 0008_plan
Revises: 0007_links
Create Date: 2026-12-02 08:40:00.000000

Plan versions made before this upgrade have no `plan_change` row: `plan show --version N` rebuilds them from the goals
that first appeared at or before N, which is exact because goals could then only be added.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0008_plan'
down_revision: str | None = "0007_links"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # plain ALTER TABLE on every backend: a batch copy of `goal` on SQLite would trip the foreign keys to it
    op.add_column('goal', sa.Column('baseline', sqlmodel.sql.sqltypes.AutoString(), server_default='',
                                    nullable=False))
    op.add_column('goal', sa.Column('competencies', sa.JSON(), server_default='[]', nullable=False))
    op.add_column('goal', sa.Column('alignment_level', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    op.add_column('goal', sa.Column('aligned_to', sqlmodel.sql.sqltypes.AutoString(), server_default='',
                                    nullable=False))
    op.add_column('goal', sa.Column('removed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
    op.add_column('goal', sa.Column('removed_reason', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    op.create_table('activity',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('goal_id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('description', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=True),
    sa.Column('plan_version', sa.Integer(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['goal_id'], ['goal.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_activity_goal_id'), 'activity', ['goal_id'], unique=False)
    op.create_table('plan_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('plan_version', sa.Integer(), nullable=False),
    sa.Column('summary', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('changed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('changed_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('acknowledged_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('acknowledged_by', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('snapshot', sa.JSON(), nullable=False),
    sa.Column('acknowledge_task_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignment.id'], ),
    sa.ForeignKeyConstraint(['acknowledge_task_id'], ['task.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('assignment_id', 'plan_version')
    )
    op.create_index(op.f('ix_plan_change_assignment_id'), 'plan_change', ['assignment_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_plan_change_assignment_id'), table_name='plan_change')
    op.drop_table('plan_change')
    op.drop_index(op.f('ix_activity_goal_id'), table_name='activity')
    op.drop_table('activity')
    for column in ('removed_reason', 'removed_at', 'aligned_to', 'alignment_level', 'competencies', 'baseline'):
        op.drop_column('goal', column)  # SQLite 3.35 and later drop columns in place
