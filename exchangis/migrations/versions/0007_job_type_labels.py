"""jobs: the released UI's job type (OFFLINE, STREAM) and labels

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("exg_job", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("job_type", sa.String(length=16), nullable=False, server_default="OFFLINE")
        )
        batch_op.add_column(
            sa.Column("job_labels", sa.String(length=200), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("exg_job", schema=None) as batch_op:
        batch_op.drop_column("job_labels")
        batch_op.drop_column("job_type")
