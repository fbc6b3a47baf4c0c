"""outbox columns for what a notice is about: its cadence, the plan version it names, the pulse it is about

Revision ID: 0015_outbox_parts
Revises: 0014_baselines_on_behalf
Create Date: 2026-12-07 15:00:00.000000

Notices queued before this upgrade get the columns from their keys, so the links they carry when sent stay the
same: `{kind}/{assignment}/{cadence}/{period}/{role}` for cadence notices, `plan_changed/{assignment}/{version}`,
`pulse_alert/{pulse}/{role}`.
"""
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '0015_outbox_parts'
down_revision: str | None = "0014_baselines_on_behalf"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CADENCE_KINDS = ("contact_due", "contact_missed", "checkin_due", "checkin_missed", "pulse_due")
KEYED_KINDS = (*CADENCE_KINDS, "plan_changed", "pulse_alert")


def upgrade() -> None:
    op.add_column('outbox', sa.Column('cadence', sqlmodel.sql.sqltypes.AutoString(), nullable=True))
    op.add_column('outbox', sa.Column('plan_version', sa.Integer(), nullable=True))
    op.add_column('outbox', sa.Column('pulse_id', sa.Integer(), nullable=True))
    outbox = sa.table('outbox', sa.column('id', sa.Integer()), sa.column('kind', sa.String()),
                      sa.column('key', sa.String()), sa.column('cadence', sa.String()),
                      sa.column('plan_version', sa.Integer()), sa.column('pulse_id', sa.Integer()))
    connection = op.get_bind()
    rows = connection.execute(sa.select(outbox.c.id, outbox.c.kind, outbox.c.key)
                              .where(outbox.c.kind.in_(KEYED_KINDS))).all()
    filled = [parts for row in rows if (parts := _parts_of(row.id, row.kind, row.key))]
    if filled:
        connection.execute(sa.update(outbox).where(outbox.c.id == sa.bindparam('row_id'))
                           .values(cadence=sa.bindparam('row_cadence'), plan_version=sa.bindparam('row_version'),
                                   pulse_id=sa.bindparam('row_pulse')), filled)


def _parts_of(row_id: int, kind: str, key: str) -> dict[str, Any] | None:
    """The columns a queued notice's key implies; None when the key names none of them."""
    parts = key.split("/")
    values: dict[str, Any] = {'row_id': row_id, 'row_cadence': None, 'row_version': None, 'row_pulse': None}
    if kind in CADENCE_KINDS and len(parts) > 2:
        values['row_cadence'] = parts[2]
    elif kind == "plan_changed" and len(parts) > 2 and parts[2].isdigit():
        values['row_version'] = int(parts[2])
    elif kind == "pulse_alert" and len(parts) > 1 and parts[1].isdigit():
        values['row_pulse'] = int(parts[1])
    else:
        return None
    return values


def downgrade() -> None:
    # plain DROP COLUMNs (SQLite 3.35 on), as in 0013
    op.drop_column('outbox', 'pulse_id')
    op.drop_column('outbox', 'plan_version')
    op.drop_column('outbox', 'cadence')
