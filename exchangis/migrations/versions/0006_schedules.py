"""schedules: plans, their trigger items and the contexts they create; executions name the
context they run

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 13:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exg_schedule",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("entity_group", sa.String(length=32), nullable=False),
        sa.Column("entity_key", sa.String(length=64), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("exec_detail", sa.JSON(), nullable=False),
        sa.Column("notify", sa.JSON(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["exg_job.id"],
            name=op.f("fk_exg_schedule_job_id_exg_job"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exg_schedule")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_exg_schedule_entity_key"), "exg_schedule", ["entity_key"])
    op.create_index(op.f("ix_exg_schedule_job_id"), "exg_schedule", ["job_id"])
    op.create_table(
        "exg_schedule_item",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("trigger_type", sa.String(length=16), nullable=False),
        sa.Column("cron_desc", sa.String(length=255), nullable=True),
        sa.Column("cron_type", sa.String(length=16), nullable=True),
        sa.Column("time_zone", sa.String(length=64), nullable=True),
        sa.Column("trigger_by_jobs", sa.JSON(), nullable=True),
        sa.Column("misfire_policy", sa.String(length=16), nullable=False),
        sa.Column("concurrency_policy", sa.String(length=16), nullable=False),
        sa.Column("next_fire_at", sa.DateTime(), nullable=True),
        sa.Column("last_fire_at", sa.DateTime(), nullable=True),
        sa.Column("cursor", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["exg_schedule.id"],
            name=op.f("fk_exg_schedule_item_plan_id_exg_schedule"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exg_schedule_item")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_exg_schedule_item_next_fire_at"), "exg_schedule_item", ["next_fire_at"]
    )
    op.create_table(
        "exg_schedule_context",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("plan_item_id", sa.Integer(), nullable=True),
        sa.Column("fire_key", sa.String(length=80), nullable=False),
        sa.Column("plan_item", sa.JSON(), nullable=False),
        sa.Column("trigger_type", sa.String(length=16), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.DateTime(), nullable=True),
        sa.Column("window_end", sa.DateTime(), nullable=True),
        sa.Column("origin", sa.String(length=64), nullable=False),
        sa.Column("triggered_by", sa.JSON(), nullable=False),
        sa.Column("exec_detail", sa.JSON(), nullable=False),
        sa.Column("job_execution_id", sa.String(length=36), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("sent", sa.Boolean(), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("job_status", sa.String(length=16), nullable=False),
        sa.Column("execution_status", sa.String(length=32), nullable=True),
        sa.Column("skip_reason", sa.String(length=16), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("start_at", sa.DateTime(), nullable=True),
        sa.Column("stop_at", sa.DateTime(), nullable=True),
        sa.Column("notify_state", sa.String(length=16), nullable=True),
        sa.Column("notify_tries", sa.Integer(), nullable=False),
        sa.Column("notify_next_at", sa.DateTime(), nullable=True),
        sa.Column("notifications", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["exg_schedule.id"],
            name=op.f("fk_exg_schedule_context_plan_id_exg_schedule"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["plan_item_id"],
            ["exg_schedule_item.id"],
            name=op.f("fk_exg_schedule_context_plan_item_id_exg_schedule_item"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exg_schedule_context")),
        sa.UniqueConstraint("plan_item_id", "fire_key", name="uq_exg_schedule_context_fire"),
        sqlite_autoincrement=True,
    )
    for columns in (
        ["job_id"],
        ["job_execution_id"],
        ["job_status"],
        ["created_at"],
        ["stop_at"],
        ["notify_state"],
    ):
        op.create_index(
            op.f(f"ix_exg_schedule_context_{columns[0]}"), "exg_schedule_context", columns
        )
    op.create_index(
        "ix_exg_schedule_context_plan_final", "exg_schedule_context", ["plan_id", "final"]
    )
    with op.batch_alter_table("exg_job_execution", schema=None) as batch_op:
        batch_op.add_column(sa.Column("context_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_exg_job_execution_context_id"), ["context_id"])


def downgrade() -> None:
    with op.batch_alter_table("exg_job_execution", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_exg_job_execution_context_id"))
        batch_op.drop_column("context_id")
    op.drop_table("exg_schedule_context")
    op.drop_table("exg_schedule_item")
    op.drop_table("exg_schedule")
