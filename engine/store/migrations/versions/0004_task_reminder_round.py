"""task reminder round: bumped when a task's owner or due date moves, so its reminders get keys of their own

Revision ID: 0004_task_reminder_round
Revises: 0003_outbox_calendar
Create Date: 2026-12-02 08:30:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004_task_reminder_round'
down_revision: str | None = "0003_outbox_calendar"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reminder_round', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('task', schema=None) as batch_op:
        batch_op.drop_column('reminder_round')
