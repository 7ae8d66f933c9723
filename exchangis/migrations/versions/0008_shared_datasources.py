"""data sources shared with other projects (the released UI's project dialog)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exg_shared_datasource",
        sa.Column("project_name", sa.String(length=128), nullable=False),
        sa.Column("datasource_id", sa.Integer(), nullable=False),
        sa.Column("create_user", sa.String(length=128), nullable=False),
        sa.Column("create_time", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("project_name", "datasource_id"),
    )
    op.create_index(
        "ix_exg_shared_datasource_datasource_id", "exg_shared_datasource", ["datasource_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_exg_shared_datasource_datasource_id", table_name="exg_shared_datasource")
    op.drop_table("exg_shared_datasource")
