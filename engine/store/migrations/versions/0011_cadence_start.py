"""cadence start: the instant a cadence began mid-stage, when a workflow migration brought it to a running assignment

Revision ID: 0011_cadence_start
Revises: 0010_lease_owner
Create Date: 2026-12-07 14:00:00.000000

Without a row a cadence's periods count from the assignment's entry into the cadence's stages, as before.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0011_cadence_start'
down_revision: str | None = "0010_lease_owner"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'cadence_start',
        sa.Column('assignment_id', sa.Integer(), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('started_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['assignment_id'], ['assignment.id']),
        sa.PrimaryKeyConstraint('assignment_id', 'kind'),
    )


def downgrade() -> None:
    op.drop_table('cadence_start')
