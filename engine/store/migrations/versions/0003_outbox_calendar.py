"""outbox calendar: the iCalendar text a notice carries as an attachment

Revision ID: 0003_outbox_calendar
Revises: 0002_audit_event
Create Date: 2026-12-02 07:50:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0003_outbox_calendar'
down_revision: str | None = "0002_audit_event"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('calendar', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_column('calendar')
