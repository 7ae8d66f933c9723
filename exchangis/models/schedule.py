"""Schedules: plans, their trigger items, and the contexts (one per fire) they create.

The guarantee "one run per plan item and fire" is the unique key of ``exg_schedule_context``
on (plan item, fire key), inserted in the transaction that advances the item's next fire.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from exchangis.db import Base, utcnow


class Plan(Base):
    """An execution plan of one job (the seed's ``entityGroup`` + ``entityKey``)."""

    __tablename__ = "exg_schedule"
    __table_args__ = {"sqlite_autoincrement": True}  # an id is never given out again

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entity_group: Mapped[str] = mapped_column(String(32))
    entity_key: Mapped[str] = mapped_column(String(64), index=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("exg_job.id", ondelete="CASCADE"), index=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    exec_detail: Mapped[dict[str, Any]]
    """``jobParams``, ``retryTimes``, ``permitPartialFailures`` of every run."""
    notify: Mapped[dict[str, Any] | None]
    """``{url, on: [...]}``: the webhook told of final contexts."""
    version: Mapped[int] = mapped_column(Integer, default=1)
    """Bumped by every change: a scheduler that read an older plan fires nothing."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(128))

    items: Mapped[list[PlanItem]] = relationship(
        back_populates="plan", order_by="PlanItem.id", cascade="all, delete-orphan"
    )


class PlanItem(Base):
    """One trigger of a plan: a cron expression, a dependency on other jobs, or run-once."""

    __tablename__ = "exg_schedule_item"
    __table_args__ = {"sqlite_autoincrement": True}  # contexts name items by id

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("exg_schedule.id", ondelete="CASCADE"))
    trigger_type: Mapped[str] = mapped_column(String(16))
    cron_desc: Mapped[str | None] = mapped_column(String(255))
    cron_type: Mapped[str | None] = mapped_column(String(16))
    time_zone: Mapped[str | None] = mapped_column(String(64))
    trigger_by_jobs: Mapped[list[Any] | None]
    misfire_policy: Mapped[str] = mapped_column(String(16), default="FIRE_ONCE_NOW")
    concurrency_policy: Mapped[str] = mapped_column(String(16), default="FORBID")
    next_fire_at: Mapped[datetime | None] = mapped_column(index=True)
    """UTC instant of the next cron fire (None: no further fire, or not a cron item)."""
    last_fire_at: Mapped[datetime | None]
    """UTC instant of the last fire handled: the start of the next run's window."""
    cursor: Mapped[datetime | None]
    """Dependency items: upstream completions before this were looked at already."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    plan: Mapped[Plan] = relationship(back_populates="items")


class Context(Base):
    """One run of a plan: a cron fire, a dependency trigger or a run-once (or its skip)."""

    __tablename__ = "exg_schedule_context"
    __table_args__ = (
        UniqueConstraint("plan_item_id", "fire_key", name="uq_exg_schedule_context_fire"),
        Index("ix_exg_schedule_context_plan_final", "plan_id", "final"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("exg_schedule.id", ondelete="CASCADE"))
    plan_item_id: Mapped[int | None] = mapped_column(
        ForeignKey("exg_schedule_item.id", ondelete="SET NULL")
    )
    fire_key: Mapped[str] = mapped_column(String(80))
    """What makes this run unique for its item: the fire's UTC instant, ``dep:<origin run>``
    or ``once:<id>``."""
    plan_item: Mapped[dict[str, Any]]
    """The item as it was when it fired."""
    trigger_type: Mapped[str] = mapped_column(String(16))
    job_id: Mapped[int] = mapped_column(Integer, index=True)
    scheduled_at: Mapped[datetime]
    """The run's logical time (UTC): its fire time, or its upstream run's."""
    time_zone: Mapped[str] = mapped_column(String(64))
    window_start: Mapped[datetime | None]
    window_end: Mapped[datetime | None]
    origin: Mapped[str] = mapped_column(String(64))
    """The run at the head of a dependency chain (its own execution id, for a head): a join
    runs once per origin."""
    triggered_by: Mapped[dict[str, Any]]
    exec_detail: Mapped[dict[str, Any]]
    job_execution_id: Mapped[str | None] = mapped_column(String(36), index=True)
    """Chosen when the context is made, so sending it twice makes one execution."""
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    """Runs asked of the execution so far (1 + retries requested)."""
    sent: Mapped[bool] = mapped_column(Boolean, default=False)
    final: Mapped[bool] = mapped_column(Boolean, default=False)
    job_status: Mapped[str] = mapped_column(String(16), index=True)
    execution_status: Mapped[str | None] = mapped_column(String(32))
    skip_reason: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    created_by: Mapped[str] = mapped_column(String(128))
    start_at: Mapped[datetime | None]
    stop_at: Mapped[datetime | None] = mapped_column(index=True)
    notify_state: Mapped[str | None] = mapped_column(String(16), index=True)
    """PENDING while a webhook is owed, then SENT or FAILED."""
    notify_tries: Mapped[int] = mapped_column(Integer, default=0)
    notify_next_at: Mapped[datetime | None]
    notifications: Mapped[list[Any] | None]
    """Each webhook send: time, HTTP status or error."""
