"""A job definition: sub-jobs that each move one table or file."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from exchangis.db import Base, utcnow


class Job(Base):
    """A job: its name, project, parameters and sub-jobs (``content``)."""

    __tablename__ = "exg_job"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_name: Mapped[str] = mapped_column(String(255), index=True)
    job_desc: Mapped[str] = mapped_column(Text, default="")
    project_name: Mapped[str] = mapped_column(String(128), default="default", index=True)
    engine_type: Mapped[str] = mapped_column(String(32), default="EXCHANGIS")
    job_type: Mapped[str] = mapped_column(String(16), default="OFFLINE", server_default="OFFLINE")
    """``OFFLINE`` (batch) or ``STREAM``: the released UI's two tabs; both run the same way."""
    job_labels: Mapped[str] = mapped_column(String(200), default="", server_default="")
    """Comma-separated tags the released UI shows on a job's card."""
    job_params: Mapped[dict[str, Any]]
    execute_user: Mapped[str | None] = mapped_column(String(128))
    content: Mapped[list[Any]]
    create_user: Mapped[str] = mapped_column(String(128))
    create_time: Mapped[datetime] = mapped_column(default=utcnow)
    update_time: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
