"""Executions and their tasks: inserted at submit, completed at the final state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from exchangis.db import Base, utcnow


class JobExecution(Base):
    """One run of a job."""

    __tablename__ = "exg_job_execution"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    job_id: Mapped[int] = mapped_column(
        ForeignKey("exg_job.id", ondelete="SET NULL"), index=True, nullable=True
    )
    job_name: Mapped[str] = mapped_column(String(255))
    project_name: Mapped[str] = mapped_column(String(128), index=True)
    engine_type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32), index=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    permit_partial_failures: Mapped[bool] = mapped_column(Boolean, default=False)
    job_params: Mapped[dict[str, Any]]
    labels: Mapped[dict[str, Any]]
    queue: Mapped[str] = mapped_column(String(128))
    create_user: Mapped[str] = mapped_column(String(128))
    execute_user: Mapped[str] = mapped_column(String(128))
    trigger_type: Mapped[str] = mapped_column(String(32), default="MANUAL")
    context_id: Mapped[int | None] = mapped_column(Integer, index=True)
    """The schedule context (``exg_schedule_context``) this execution runs, if any."""
    error: Mapped[str | None] = mapped_column(Text)
    control: Mapped[str | None] = mapped_column(String(16))
    """The kill, pause or timeout request, written before the live state's: a live state
    rebuilt after a Redis loss obeys it (``state.machine.Control``)."""
    logs_dropped: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Its archived logs were removed by ``log_retention_days``."""
    create_time: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    launch_time: Mapped[datetime | None] = mapped_column(index=True)
    last_update_time: Mapped[datetime] = mapped_column(default=utcnow)
    completed_time: Mapped[datetime | None]
    duration_ms: Mapped[int | None] = mapped_column(BigInteger)
    """Launch to completion, written at the final state."""
    flow: Mapped[int | None] = mapped_column(Integer)
    """Records written per second over the run, written at the final state."""
    execute_node: Mapped[str | None] = mapped_column(String(255))
    """Worker host(s) that ran the tasks."""

    tasks: Mapped[list[TaskExecution]] = relationship(
        back_populates="execution", order_by="TaskExecution.id", cascade="all, delete-orphan"
    )


class TaskExecution(Base):
    """One sub-job of one execution, run by one Celery task."""

    __tablename__ = "exg_task_execution"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    execution_id: Mapped[str] = mapped_column(
        ForeignKey("exg_job_execution.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(255))
    position: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(32))
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    plan: Mapped[dict[str, Any]]
    celery_id: Mapped[str] = mapped_column(String(64))
    worker_info: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    run: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    """Which run of the task (a resume or restart of a completed execution starts the next):
    with the execution and task ids, the key of its entry in the sink's ledger."""
    counted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """Whether this run's end is in the /metrics counters (added when its execution's record
    is completed: models/counter.py)."""
    metrics: Mapped[dict[str, Any] | None]
    error: Mapped[str | None] = mapped_column(Text)
    create_time: Mapped[datetime] = mapped_column(default=utcnow)
    launch_time: Mapped[datetime | None]
    last_update_time: Mapped[datetime] = mapped_column(default=utcnow)

    execution: Mapped[JobExecution] = relationship(back_populates="tasks")

    @property
    def ledger_key(self) -> str:
        """Return the key of this run's entry in its sink's ledger (connectors/ledger.py)."""
        return f"{self.execution_id}/{self.id}/{self.run}"
