"""A registered connection that jobs reference by id."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from exchangis.db import Base, utcnow


class DataSource(Base):
    """A data source of a project: type and connect parameters (secrets sealed, never sent out)."""

    __tablename__ = "exg_datasource"
    __table_args__ = (UniqueConstraint("project_name", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    project_name: Mapped[str] = mapped_column(String(128), default="default", index=True)
    """The project whose members may see (view), change and test (edit) it, and whose jobs
    alone may use it."""
    type: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text, default="")
    connect_params: Mapped[dict[str, Any]]
    create_user: Mapped[str] = mapped_column(String(128))
    create_time: Mapped[datetime] = mapped_column(default=utcnow)
    update_time: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
