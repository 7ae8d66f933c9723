"""execution control request kept in SQL; task run numbers (the sinks' ledger keys); whether
retention dropped an execution's archived logs

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 08:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("exg_job_execution", schema=None) as batch_op:
        batch_op.add_column(sa.Column("control", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("logs_dropped", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("exg_task_execution", schema=None) as batch_op:
        batch_op.add_column(sa.Column("run", sa.Integer(), server_default="1", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("exg_task_execution", schema=None) as batch_op:
        batch_op.drop_column("run")
    with op.batch_alter_table("exg_job_execution", schema=None) as batch_op:
        batch_op.drop_column("logs_dropped")
        batch_op.drop_column("control")
