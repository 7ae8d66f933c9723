"""A registered connection that jobs reference by id."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, String, Text, UniqueConstraint, or_, select
from sqlalchemy.orm import Mapped, mapped_column

from exchangis.db import Base, utcnow


class DataSource(Base):
    """A data source of a project: type and connect parameters (secrets sealed, never sent out)."""

    __tablename__ = "exg_datasource"
    __table_args__ = (UniqueConstraint("project_name", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    project_name: Mapped[str] = mapped_column(String(128), default="default", index=True)
    """The project whose members may see (view), change and test (edit) it, and whose jobs may
    use it (with those of the projects it is shared with: :class:`SharedDataSource`)."""
    type: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text, default="")
    connect_params: Mapped[dict[str, Any]]
    create_user: Mapped[str] = mapped_column(String(128))
    create_time: Mapped[datetime] = mapped_column(default=utcnow)
    update_time: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SharedDataSource(Base):
    """A data source shared with a project besides its own: that project's jobs may use it
    (the released UI's project dialog binds data sources to a project)."""

    __tablename__ = "exg_shared_datasource"

    project_name: Mapped[str] = mapped_column(String(128), primary_key=True)
    datasource_id: Mapped[int] = mapped_column(primary_key=True, index=True)
    create_user: Mapped[str] = mapped_column(String(128))
    create_time: Mapped[datetime] = mapped_column(default=utcnow)


def usable_in(project: str) -> ColumnElement[bool]:
    """Return a filter on data sources: those a job of ``project`` may use (its own, and those
    shared with it)."""
    shared = select(SharedDataSource.datasource_id).where(SharedDataSource.project_name == project)
    return or_(DataSource.project_name == project, DataSource.id.in_(shared))
