"""lease owner: the process start of a lease's holder, so a crashed daemon's lease on this host is taken over at once

Revision ID: 0010_lease_owner
Revises: 0009_audit_privacy
Create Date: 2026-12-07 11:00:00.000000

Rows written before this upgrade have no process start; their holder is judged by its pid alone.
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0010_lease_owner'
down_revision: str | None = "0009_audit_privacy"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('daemonlease', sa.Column('process_start', sqlmodel.sql.sqltypes.AutoString(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('daemonlease') as batch_op:
        batch_op.drop_column('process_start')
