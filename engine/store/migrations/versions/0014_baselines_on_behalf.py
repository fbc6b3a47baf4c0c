"""competency baselines rated when the plan is agreed; outcome ratings without one; sign-offs given on a holder's behalf

Revision ID: 0014_baselines_on_behalf
Revises: 0013_digests
Create Date: 2026-12-07 13:45:00.000000

A sign-off recorded before this upgrade was given on the holder's behalf when whoever recorded it is not the holder,
as its audit event (actor and `by`) says.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0014_baselines_on_behalf'
down_revision: str | None = "0013_digests"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('competency_baseline',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('assignment_id', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('level', sa.Integer(), nullable=False),
    sa.Column('recorded_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('recorded_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.ForeignKeyConstraint(['assignment_id'], ['assignment.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_competency_baseline_assignment_id'), 'competency_baseline', ['assignment_id'],
                    unique=False)
    with op.batch_alter_table('outcome_competency') as batch_op:
        batch_op.alter_column('before', existing_type=sa.Integer(), nullable=True)
    op.add_column('signoff', sa.Column('on_behalf', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.execute("UPDATE signoff SET on_behalf = (lower(recorded_by) <> "
               "(SELECT lower(person.email) FROM person WHERE person.id = signoff.person_id))")


def downgrade() -> None:
    with op.batch_alter_table('signoff') as batch_op:
        batch_op.drop_column('on_behalf')
    op.execute("DELETE FROM outcome_competency WHERE before IS NULL")
    with op.batch_alter_table('outcome_competency') as batch_op:
        batch_op.alter_column('before', existing_type=sa.Integer(), nullable=False)
    op.drop_index(op.f('ix_competency_baseline_assignment_id'), table_name='competency_baseline')
    op.drop_table('competency_baseline')
